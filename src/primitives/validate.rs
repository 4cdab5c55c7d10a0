//! The rules a value must follow before it becomes a path, a command-line option, a line of a
//! config file or part of an Engine API route. Every boundary calls one of these; a value that
//! breaks its rule is refused with `galley::invalid_value`, naming the value and the rule.
//! docs/safety.md lists the rules.

use crate::error::Failure;
use crate::exec::output::escape_control;
use crate::exec::{Action, Command};

/// Longest value shown in a report; the rest is elided.
const SHOWN: usize = 120;

/// A refusal of `value` as a `what`, because it breaks `rule`.
pub fn invalid(what: &str, value: &str, rule: &str) -> Failure {
    let mut shown: String = value.chars().take(SHOWN).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    Failure::InvalidValue {
        what: what.to_string(),
        value: escape_control(&format!("{shown:?}")),
        rule: rule.to_string(),
    }
}

fn check(ok: bool, what: &str, value: &str, rule: &str) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(invalid(what, value, rule))
    }
}

const SAFE_NAME_RULE: &str = "1 to 128 characters of letters, digits, `.`, `_`, `-` and `@`, \
     not starting with `-` or `.` (no `/`, no `..`, no spaces or control characters)";

/// An app or service name that becomes part of a file name (lock, pidfile, log).
pub fn safe_name(what: &str, value: &str) -> Result<(), Failure> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && !value.starts_with(['-', '.'])
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    check(ok, what, value, SAFE_NAME_RULE)
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn env_key(value: &str) -> Result<(), Failure> {
    let ok = value.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    check(
        ok,
        "environment variable name",
        value,
        "a letter or `_` followed by letters, digits and `_` ([A-Za-z_][A-Za-z0-9_]*)",
    )
}

/// A docker container or network name (or a container id): Docker's
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 255 characters.
pub fn docker_name(what: &str, value: &str) -> Result<(), Failure> {
    let ok = value.len() <= 255
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    check(
        ok,
        what,
        value,
        "Docker's name grammar: a letter or digit, then letters, digits, `_`, `.` and `-` \
         ([a-zA-Z0-9][a-zA-Z0-9_.-]*)",
    )
}

const IMAGE_RULE: &str = "Docker's reference grammar: [registry[:port]/]path[:tag][@digest], \
     path components of lowercase letters and digits joined by `.`, `_`, `__` or `-`, a tag of \
     up to 128 letters, digits, `_`, `.` and `-` not starting with `.` or `-`";

/// A docker image reference: `[domain[:port]/]name[:tag][@digest]`, or an image id
/// (`sha256:` and 64 hex digits).
pub fn image_reference(value: &str) -> Result<(), Failure> {
    check(
        is_image_id(value) || is_reference(value),
        "docker image reference",
        value,
        IMAGE_RULE,
    )
}

fn is_image_id(value: &str) -> bool {
    value
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_reference(value: &str) -> bool {
    if value.len() > 255 + 128 + 80 {
        return false;
    }
    let (rest, digest) = match value.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (value, None),
    };
    if let Some(digest) = digest {
        let Some((algorithm, hex)) = digest.split_once(':') else {
            return false;
        };
        let algorithm_ok = !algorithm.is_empty()
            && algorithm
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '_' | '-'));
        if !algorithm_ok || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
    }
    // A tag follows the last `:` that comes after the last `/` (an earlier one is a port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        if !is_tag(tag) {
            return false;
        }
    }
    is_repository(name)
}

/// A tag: `[\w][\w.-]{0,127}`.
pub fn is_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `[domain[:port]/]component(/component)*`.
fn is_repository(name: &str) -> bool {
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 && is_domain(parts[0]) && !is_component(parts[0]) {
        parts.remove(0);
    }
    !parts.is_empty() && parts.iter().all(|p| is_component(p))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &part[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A registry host: DNS labels (or `[ipv6]`) and an optional `:port`.
fn is_domain(part: &str) -> bool {
    let (host, port) = match part.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || part.starts_with('[') => (host, Some(port)),
        _ => (part, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit())) {
        return false;
    }
    if let Some(ip) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !ip.is_empty() && ip.chars().all(|c| c.is_ascii_hexdigit() || c == ':');
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// An nginx upstream name (it also names the upstream's file): letters, digits, `_`, `.`, `-`.
pub fn upstream_name(value: &str) -> Result<(), Failure> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && !value.starts_with(['-', '.'])
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    check(
        ok,
        "nginx upstream name",
        value,
        "1 to 128 letters, digits, `_`, `.` and `-`, not starting with `-` or `.`",
    )
}

/// An nginx upstream server address: `host:port`, `[ipv6]:port`, a bare host, or `unix:/path`,
/// with none of nginx's syntax characters (`;{}#'"\`), whitespace or control characters.
pub fn upstream_server(value: &str) -> Result<(), Failure> {
    let clean = !value.is_empty()
        && value.len() <= 1024
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || ";{}#'\"\\$".contains(c));
    let ok = clean
        && match value.strip_prefix("unix:") {
            Some(path) => path.starts_with('/'),
            None => is_domain(value) && !value.starts_with('-'),
        };
    check(
        ok,
        "nginx upstream server",
        value,
        "host:port, [ipv6]:port or unix:/path, with no whitespace and none of ;{}#'\"\\$",
    )
}

/// An nginx server weight: a whole number from 1 to 1,000,000.
pub fn upstream_weight(value: i64) -> Result<(), Failure> {
    check(
        (1..=1_000_000).contains(&value),
        "nginx upstream weight",
        &value.to_string(),
        "a whole number from 1 to 1000000",
    )
}

/// A git revision (a sha, `HEAD~2`, a tag or branch) given as an argument: it must not look
/// like an option, and holds no whitespace or control characters.
pub fn git_revision(value: &str) -> Result<(), Failure> {
    let ok = !value.is_empty()
        && !value.starts_with('-')
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && !value.contains("..");
    check(
        ok,
        "git revision",
        value,
        "a sha, tag, branch or expression such as HEAD~1: not starting with `-`, without `..`, \
         whitespace or control characters",
    )
}

/// The first check of a git branch name, before `git check-ref-format --branch` has its say:
/// never an option, no control characters.
pub fn git_branch(value: &str) -> Result<(), Failure> {
    let ok = !value.is_empty()
        && !value.starts_with('-')
        && !value.chars().any(|c| c.is_control() || c.is_whitespace());
    check(ok, "git branch name", value, GIT_BRANCH_RULE)
}

/// The rule shown for a refused branch name.
pub const GIT_BRANCH_RULE: &str = "a name that `git check-ref-format --branch` accepts and that \
     does not start with `-`";

/// An argument to a program over ssh: C strings end at a NUL byte.
pub fn no_nul(what: &str, value: &str) -> Result<(), Failure> {
    check(
        !value.contains('\0'),
        what,
        value,
        "no NUL byte (\\0): a program's arguments and environment end at the first one",
    )
}

/// A command about to run on a host: environment names follow `env_key` (over ssh they are
/// words given to `env`, where `-S...` would be an option), and no argument, variable or
/// directory holds a NUL byte.
pub fn command(cmd: &Command) -> Result<(), Failure> {
    for (key, value) in &cmd.env {
        env_key(key)?;
        no_nul("environment value", value)?;
    }
    for arg in &cmd.program.argv() {
        no_nul("command argument", arg)?;
    }
    if let Some(dir) = &cmd.dir {
        no_nul("working directory", dir)?;
    }
    Ok(())
}

/// The paths of a file action: no NUL byte (the file system would cut the path there).
pub fn action_paths(action: &Action) -> Result<(), Failure> {
    let paths: Vec<&String> = match action {
        Action::Run(cmd) | Action::Start { command: cmd, .. } => return command(cmd),
        Action::Write { path, .. } | Action::Mkdir { path } | Action::Remove { path } => {
            vec![path]
        }
        Action::Symlink { target, link } => vec![target, link],
        Action::Upload { local, remote } | Action::Download { remote, local } => {
            vec![local, remote]
        }
        _ => Vec::new(),
    };
    paths.into_iter().try_for_each(|p| no_nul("path", p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names() {
        for good in ["app", "my-app_2", "web.1", "a@b"] {
            assert!(safe_name("app name", good).is_ok(), "{good}");
        }
        for bad in [
            "", "../../x", "a/b", "..", ".hidden", "-x", "a b", "a\nb", "a\u{1b}",
        ] {
            assert!(safe_name("app name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn env_keys() {
        assert!(env_key("PATH").is_ok());
        assert!(env_key("_x1").is_ok());
        for bad in ["", "1A", "-Stouch /tmp/p", "A=B", "A B", "Ä"] {
            assert!(env_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn docker_names_and_references() {
        assert!(docker_name("container name", "web-blue_1.x").is_ok());
        assert!(docker_name("container name", "x/../../networks/NET").is_err());
        assert!(docker_name("container name", "").is_err());
        for good in [
            "app",
            "app:1.2",
            "library/busybox:latest",
            "127.0.0.1:5000/team/app:sha-abc",
            "localhost:5000/app",
            "registry.example.com/a__b/c-d",
            "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(image_reference(good).is_ok(), "{good}");
        }
        for bad in [
            "x/../../images/IMG",
            "App",
            "app:",
            "app:-x",
            "a//b",
            "app:1 2",
            "app?x=1",
            "",
            "-x",
        ] {
            assert!(image_reference(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nginx_values() {
        assert!(upstream_name("app_blue").is_ok());
        assert!(upstream_name("a; } server {").is_err());
        for good in [
            "127.0.0.1:3031",
            "localhost:80",
            "[::1]:8080",
            "unix:/run/app.sock",
            "app",
        ] {
            assert!(upstream_server(good).is_ok(), "{good}");
        }
        for bad in [
            "127.0.0.1:1; } server { listen 127.0.0.1:9999; return 200 x; } upstream y { server 127.0.0.1:2",
            "a b",
            "a\nb",
            "a#b",
            "unix:rel",
            "",
        ] {
            assert!(upstream_server(bad).is_err(), "{bad:?}");
        }
        assert!(upstream_weight(0).is_err());
        assert!(upstream_weight(5).is_ok());
    }

    #[test]
    fn git_arguments() {
        assert!(git_revision("HEAD~1").is_ok());
        assert!(git_revision("--output=FILE").is_err());
        assert!(git_branch("release/1.2").is_ok());
        assert!(git_branch("--orphan=x").is_err());
    }

    #[test]
    fn shown_values_are_escaped_and_clipped() {
        let failure = invalid("x", &format!("a\nb{}", "y".repeat(500)), "r");
        let text = failure.to_string();
        assert!(!text.contains('\n'));
        assert!(text.len() < 300);
    }
}
