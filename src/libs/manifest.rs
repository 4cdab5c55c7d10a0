//! `galley.toml`: the libraries a project uses, each a git repository, a rev and an optional
//! folder inside it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::LibError;
use crate::error::Code;

/// The libraries named in `galley.toml`, by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifest {
    pub deps: BTreeMap<String, Dep>,
}

/// One dependency: `{ git = URL, rev = "v1.2.0", path = "recipes" }`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Dep {
    pub git: String,
    /// A tag, a branch or a 40-hex commit.
    pub rev: String,
    /// The library's folder inside the repository ("" for its root).
    #[serde(default)]
    pub path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    deps: BTreeMap<String, Dep>,
}

/// Parses and validates the text of `galley.toml` (`file` names it in errors).
pub fn parse(text: &str, file: &Path) -> Result<Manifest, LibError> {
    let bad = |message: String| {
        LibError::new(
            Code::LibraryManifest,
            format!("{}: {message}", file.display()),
            "a dependency is `name = { git = \"URL\", rev = \"TAG|BRANCH|COMMIT\", path = \"DIR\" }` under [deps]; see docs/libraries.md",
        )
    };
    let parsed: File = toml::from_str(text)
        .map_err(|e| bad(e.message().to_string()).with_details(vec![e.to_string()]))?;
    let mut deps = BTreeMap::new();
    for (name, mut dep) in parsed.deps {
        validate_name(&name).map_err(bad)?;
        validate_url(&dep.git).map_err(|m| bad(format!("library `{name}`: {m}")))?;
        validate_rev(&dep.rev).map_err(|m| bad(format!("library `{name}`: {m}")))?;
        dep.path = validate_path(&dep.path).map_err(|m| bad(format!("library `{name}`: {m}")))?;
        deps.insert(name, dep);
    }
    Ok(Manifest { deps })
}

/// A name is the first segment of an import path: letters, digits, `-` and `_`, not `galley`.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name == "galley" {
        return Err("`galley` is the stdlib's prefix and cannot name a library".into());
    }
    if name.is_empty()
        || name.starts_with('-')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "library name `{name}` must be letters, digits, `-` and `_` (it is the first segment of `import \"{name}/...\"`)"
        ));
    }
    Ok(())
}

/// A git URL goes to `git` as one argument after `--`; it must still not look like an option.
fn validate_url(url: &str) -> Result<(), String> {
    if url.is_empty() || url.starts_with('-') || url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(format!("`{url}` is not a git URL"));
    }
    Ok(())
}

/// A rev must be a valid ref name or commit, and never start with `-` (git would read an option).
pub fn validate_rev(rev: &str) -> Result<(), String> {
    let bad = rev.is_empty()
        || rev.starts_with('-')
        || rev.starts_with('/')
        || rev.ends_with('/')
        || rev.ends_with(".lock")
        || rev.contains("..")
        || rev.contains("@{")
        || rev
            .chars()
            .any(|c| c.is_control() || " ~^:?*[\\".contains(c));
    if bad {
        return Err(format!("rev `{rev}` is not a tag, branch or commit"));
    }
    Ok(())
}

/// A path is a relative folder inside the repository, without `..`; returned without slashes
/// at its ends.
fn validate_path(path: &str) -> Result<String, String> {
    let trimmed = path.trim_matches('/');
    if path.starts_with('/')
        || trimmed
            .split('/')
            .any(|part| part == ".." || part == "." || (part.is_empty() && !trimmed.is_empty()))
        || trimmed.chars().any(char::is_control)
    {
        return Err(format!(
            "path `{path}` must be a folder inside the repository, like `recipes`"
        ));
    }
    Ok(trimmed.to_string())
}

/// Whether a rev is a full commit id.
pub fn is_commit(rev: &str) -> bool {
    rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Manifest, LibError> {
        parse(text, Path::new("galley.toml"))
    }

    #[test]
    fn parses_deps_with_and_without_path() {
        let m = parse_text(
            r#"
            [deps]
            team   = { git = "https://git.example.com/team/recipes", rev = "v1.2.0" }
            shared = { git = "git@git.example.com:org/private.git", rev = "main", path = "recipes/" }
            "#,
        )
        .unwrap();
        assert_eq!(m.deps.len(), 2);
        assert_eq!(m.deps["team"].rev, "v1.2.0");
        assert_eq!(m.deps["team"].path, "");
        assert_eq!(m.deps["shared"].path, "recipes");
        assert_eq!(parse_text("").unwrap(), Manifest::default());
    }

    #[test]
    fn refuses_what_git_would_read_as_an_option_or_a_path_outside() {
        for bad in [
            r#"[deps]
x = { git = "u", rev = "--upload-pack=sh" }"#,
            r#"[deps]
x = { git = "--upload-pack=sh", rev = "main" }"#,
            r#"[deps]
x = { git = "u", rev = "main", path = "../etc" }"#,
            r#"[deps]
galley = { git = "u", rev = "main" }"#,
            r#"[deps]
"a/b" = { git = "u", rev = "main" }"#,
            r#"[deps]
x = { git = "u" }"#,
            r#"[deps]
x = { git = "u", rev = "main", branch = "main" }"#,
        ] {
            let err = parse_text(bad).unwrap_err();
            assert_eq!(err.code, Code::LibraryManifest, "{bad}");
        }
    }

    #[test]
    fn a_toml_error_names_the_file_and_line() {
        let err = parse_text("[deps]\nx = { git = ").unwrap_err();
        assert!(err.message.starts_with("galley.toml: "), "{}", err.message);
        assert!(
            err.details.join("\n").contains("line 2"),
            "{:?}",
            err.details
        );
    }

    #[test]
    fn tells_commits_from_names() {
        assert!(is_commit("3f2c9d0e3f2c9d0e3f2c9d0e3f2c9d0e3f2c9d0e"));
        assert!(!is_commit("v1.2.0"));
    }
}
