//! Passing variables to a command without putting them on any command line: for programs that
//! reset the environment (`sudo`) and for ssh, where the remote command is one shell string
//! that every user of the host can read in `ps`.

use super::Command;
use crate::error::Failure;

/// Reads the variables that `block` wrote on stdin and exports them. `read` takes one byte at a
/// time from a pipe, so the command's own input after the block stays unread.
const PROLOGUE: &str = r#"IFS= read -r n; s=; while [ "$n" -gt 0 ]; do IFS= read -r l; s="$s$l
"; n=$((n-1)); done; eval "$s"; unset n s l; exec "$@""#;

/// Whether `key` can be a shell variable name (it is pasted unquoted into `export`).
pub fn is_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The variables as `PROLOGUE` reads them: a line count, then one quoted `export` each.
fn block(env: &[(String, String)]) -> String {
    let script: String = env
        .iter()
        .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', "'\\''")))
        .collect();
    format!("{}\n{script}", script.matches('\n').count())
}

/// `cmd` rewritten so that its variables arrive on its stdin (ahead of its own input) and a
/// `sh` started under `prefix` (e.g. `sudo -n --`) exports them before it execs the command.
pub fn via_stdin(cmd: &Command, prefix: &[&str]) -> Result<Command, Failure> {
    if let Some((key, _)) = cmd.env.iter().find(|(k, _)| !is_name(k)) {
        return Err(Failure::Other {
            message: format!("`{key}` is not a valid environment variable name"),
            help: "names are letters, digits and `_`, not starting with a digit".into(),
        });
    }
    let wrapper = prefix
        .iter()
        .copied()
        .chain(["sh", "-c", PROLOGUE, "galley-env"]);
    let stdin = format!("{}{}", block(&cmd.env), cmd.stdin.as_deref().unwrap_or(""));
    Ok(Command {
        program: cmd.program.under(wrapper),
        env: Vec::new(),
        stdin: Some(stdin),
        ..cmd.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_go_on_stdin_never_in_argv() {
        let mut cmd = Command::new(["env"]);
        cmd.env = vec![("TOKEN".into(), "s3cr3t 'x'\nline".into())];
        cmd.stdin = Some("input".into());
        let wrapped = via_stdin(&cmd, &["sudo", "-n", "--"]).unwrap();
        let argv = wrapped.program.argv();
        assert!(!argv.join(" ").contains("s3cr3t"));
        assert_eq!(argv[..4], ["sudo", "-n", "--", "sh"]);
        assert_eq!(argv[6..], ["galley-env", "env"]);
        assert_eq!(
            wrapped.stdin.as_deref(),
            Some("2\nexport TOKEN='s3cr3t '\\''x'\\''\nline'\ninput")
        );
        assert!(wrapped.env.is_empty());
        cmd.env = vec![("A-B".into(), "v".into())];
        assert!(via_stdin(&cmd, &[]).is_err());
        assert!(is_name("_A1") && !is_name("1A") && !is_name("$(x)"));
    }
}
