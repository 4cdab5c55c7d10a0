//! `galley init [--template NAME] [DIR]`: writes a commented starter recipe and a
//! `.galleyignore`; `galley init --lib [DIR]`: the skeleton of a shared recipe library. A
//! skeleton is a list of files; each kind of `init` only says which files, and writing them
//! (never over an existing file) is shared.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::editors::templates::{Template, GALLEYIGNORE, RECIPE_FILE};
use crate::error::Code;
use crate::exec::{Masker, OutputMode};
use crate::report::Report;

/// What `galley init` is asked to write.
pub enum Kind {
    /// A shared recipe library: `lib.rhai`, a README and a test recipe.
    Library,
    /// A starter recipe (`deploy.rhai`) and a `.galleyignore`.
    Recipe(&'static Template),
}

/// A set of files to write, by path relative to the target folder.
struct Skeleton {
    files: Vec<(&'static str, String)>,
    /// What to tell the user once written.
    next: String,
}

/// Writes the skeleton of `kind` into `dir` (created if missing); refuses to overwrite a file.
pub fn init(dir: &Path, kind: Kind) -> i32 {
    let skeleton = match kind {
        Kind::Library => library(&library_name(dir)),
        Kind::Recipe(template) => recipe(dir, template),
    };
    match write_all(dir, &skeleton) {
        Ok(written) => {
            for path in written {
                println!("wrote {}", path.display());
            }
            println!("{}", skeleton.next);
            EXIT_OK
        }
        Err((report, code)) => {
            eprintln!("{}", report.render(OutputMode::Plain, &Masker::default()));
            code
        }
    }
}

/// The library's name: its folder's name, as an import prefix would spell it.
fn library_name(dir: &Path) -> String {
    let folder = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let name: String = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name == "galley" {
        "mylib".into()
    } else {
        name
    }
}

/// Checks every target first, so that a refusal leaves nothing half-written.
fn write_all(dir: &Path, skeleton: &Skeleton) -> Result<Vec<PathBuf>, (Report, i32)> {
    let targets: Vec<PathBuf> = skeleton.files.iter().map(|(p, _)| dir.join(p)).collect();
    let existing: Vec<String> = targets
        .iter()
        .filter(|t| t.exists())
        .map(|t| t.display().to_string())
        .collect();
    if !existing.is_empty() {
        return Err((
            Report::plain(
                Code::Usage,
                format!("galley init would overwrite {}", existing.join(", ")),
                "nothing was written; run it in an empty folder or give another one: `galley init [--template NAME] DIR`",
            ),
            EXIT_USAGE,
        ));
    }
    for ((_, text), target) in skeleton.files.iter().zip(&targets) {
        let written = target
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                // create_new: a file that appeared since the check above is still not overwritten.
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(target)?;
                file.write_all(text.as_bytes())
            });
        if let Err(e) = written {
            return Err((
                Report::plain(
                    Code::Io,
                    format!("cannot write {}: {e}", target.display()),
                    "check that the folder is writable",
                ),
                EXIT_FAILED,
            ));
        }
    }
    Ok(targets)
}

/// A template's recipe and the `.galleyignore` that `galley watch` reads.
fn recipe(dir: &Path, template: &Template) -> Skeleton {
    let recipe = dir.join(RECIPE_FILE);
    let recipe = recipe.display();
    Skeleton {
        files: vec![
            (RECIPE_FILE, template.text.to_string()),
            (".galleyignore", GALLEYIGNORE.to_string()),
        ],
        next: format!(
            "{}: read the comments and adapt it, then `galley check {recipe}` and `galley run {recipe} --dry-run`",
            template.summary
        ),
    }
}

fn library(name: &str) -> Skeleton {
    // The alias of an import is an identifier: `team-recipes` is imported as `team_recipes`.
    let alias = name.replace('-', "_");
    let lib = format!(
        r#"// {name}: a shared recipe library. Recipes use it through galley.toml:
//
//   [deps]
//   {name} = {{ git = "URL of this repository", rev = "v0.1.0" }}
//
//   import "{name}/lib" as {alias};
//   {alias}::deploy(local().process("web", #{{ cmd: ["python3", "-m", "http.server", "8000"] }}), #{{ health: "http://127.0.0.1:8000/" }});
//
// Write it like the stdlib's strategies (`galley/in_place`, `galley/blue_green`): functions that
// take the host or service and an options map, check the options' keys, and leave what is
// specific to an app (how to update, how to start) to closures the recipe passes. A library may
// import its own files (relative to the importing file) and `galley/` modules, not other
// libraries.

/// Restarts `service` and, if `opts.health` is given, waits until that URL answers.
/// opts: health (a URL), stop_timeout (a duration).
fn deploy(service, opts) {{
    let known = ["health", "stop_timeout"];
    for key in opts.keys() {{
        if !known.contains(key) {{
            throw "{name}::deploy: unknown option `" + key + "`; valid options: " + known;
        }}
    }}
    step("restart", || {{
        service.stop(#{{ timeout: opts.stop_timeout ?? "10s" }});
        service.start();
    }});
    if "health" in opts {{
        let url = opts.health;
        step("health check", || health::http(url, #{{ on: service.host }}));
    }}
    service.pid()
}}
"#
    );
    let test = format!(
        r#"// A recipe that exercises the library from its own repository (a relative import):
//   galley check test.rhai
//   galley run test.rhai --dry-run
import "lib" as {alias};

let web = local().process("{name}-test", #{{ cmd: ["python3", "-m", "http.server", "8765"] }});
{alias}::deploy(web, #{{ health: "http://127.0.0.1:8765/" }});
log("{name}: deployed");
"#
    );
    let readme = format!(
        r#"# {name}

A shared Galley recipe library.

## Use it

In the project that deploys, add it to `galley.toml` and lock it:

```toml
[deps]
{name} = {{ git = "URL of this repository", rev = "v0.1.0" }}
```

```sh
galley lock          # pins v0.1.0 to its commit and hash in galley.lock (commit that file)
```

```rhai
import "{name}/lib" as {alias};
{alias}::deploy(service, #{{ health: "http://127.0.0.1:8000/" }});
```

## Develop it

- `galley check test.rhai` and `galley run test.rhai --dry-run` exercise `lib.rhai` from here.
- Release with a tag (`git tag v0.1.1 && git push --tags`); users move to it with
  `galley update {name}`, which lists the commits in between. Never move a released tag:
  `galley fetch` refuses a tag that moved since it was locked.
- Modules import their own files relatively (`import "helpers" as h;`) and `galley/` modules;
  a library cannot depend on another library.
"#
    );
    Skeleton {
        files: vec![("lib.rhai", lib), ("README.md", readme), ("test.rhai", test)],
        next: format!(
            "library `{name}`: check it with `galley check test.rhai`, commit it, tag a release; docs/libraries.md says how projects use it"
        ),
    }
}
