//! A command is data before it runs: dry-run, logging, masking and errors all read this value.

use std::fmt;
use std::time::Duration;

/// What a command runs: a program with its arguments, or a shell script as the recipe wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// A program and its arguments, passed as they are (never through a shell).
    Exec(Vec<String>),
    /// A script that `sh -c` runs.
    Shell(String),
}

impl Program {
    /// The argv that runs it: `sh -c SCRIPT` for a script.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Program::Exec(argv) => argv.clone(),
            Program::Shell(script) => vec!["sh".into(), "-c".into(), script.clone()],
        }
    }

    /// The program that is started (`sh` for a script), as reports name it.
    pub fn name(&self) -> &str {
        match self {
            Program::Exec(argv) => argv.first().map_or("", String::as_str),
            Program::Shell(_) => "sh",
        }
    }

    /// Whether the recipe gave a shell script.
    pub fn is_shell(&self) -> bool {
        matches!(self, Program::Shell(_))
    }

    /// This program started by a wrapper (`sudo -n --`, a `sh -c` prologue) that execs it.
    pub fn under<I, S>(&self, wrapper: I) -> Program
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut argv: Vec<String> = wrapper.into_iter().map(Into::into).collect();
        argv.extend(self.argv());
        Program::Exec(argv)
    }
}

impl fmt::Display for Program {
    /// The program as a person would type it, each argument quoted when it needs to be.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Program::Exec(argv) => {
                let words: Vec<String> = argv.iter().map(|a| quote(a)).collect();
                write!(f, "{}", words.join(" "))
            }
            Program::Shell(script) => write!(f, "sh -c {}", quote(script)),
        }
    }
}

/// A process to run on a host: what runs, and where, with what, for how long.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// What runs.
    pub program: Program,
    /// Working directory on the host.
    pub dir: Option<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Kill the command's process group after this long.
    pub timeout: Option<Duration>,
    /// Text written to the command's standard input.
    pub stdin: Option<String>,
    /// Do not stream output lines.
    pub quiet: bool,
}

impl Command {
    /// A command running `program` with nothing else set.
    pub fn of(program: Program) -> Self {
        Command {
            program,
            dir: None,
            env: Vec::new(),
            timeout: None,
            stdin: None,
            quiet: false,
        }
    }

    /// A command from argv.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command::of(Program::Exec(argv.into_iter().map(Into::into).collect()))
    }

    /// A shell string, run through `sh -c`.
    pub fn shell(script: &str) -> Self {
        Command::of(Program::Shell(script.to_string()))
    }

    /// Hides the streamed output.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// This command wrapped so that it runs detached: its own session (so its process group id is
    /// its pid), stdin from /dev/null, output appended to `log`; the wrapper prints the pid.
    /// Plain `sh` and `setsid` so that it works the same on any Linux host. The variables stay in
    /// `env`, which the transports pass through the environment, never on a command line.
    pub fn detached(&self, log: &str) -> Command {
        const SCRIPT: &str = r#"log=$1; shift; setsid "$@" </dev/null >>"$log" 2>&1 & echo $!"#;
        Command {
            program: self
                .program
                .under(["sh", "-c", SCRIPT, "galley-start", log]),
            dir: self.dir.clone(),
            env: self.env.clone(),
            timeout: None,
            stdin: None,
            quiet: true,
        }
    }
}

impl fmt::Display for Command {
    /// The command as a person would type it: its variables, then the program.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.env {
            write!(f, "{k}={} ", quote(v))?;
        }
        write!(f, "{}", self.program)
    }
}

/// Quotes one word for a POSIX shell; plain words stay as they are.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// What a primitive is about to do on a host.
#[derive(Clone, Debug)]
pub enum Action {
    /// Run a command and wait for it.
    Run(Command),
    /// Write a file atomically.
    Write {
        path: String,
        content: Vec<u8>,
        mode: Option<u32>,
    },
    /// Create a directory and its parents.
    Mkdir { path: String },
    /// Point `link` at `target`, replacing any old link atomically.
    Symlink { target: String, link: String },
    /// Start a detached background process (own session, output appended to `log`).
    Start {
        service: String,
        command: Command,
        log: String,
    },
    /// Remove a file if it exists.
    Remove { path: String },
    /// Copy a local file to the host.
    Upload { local: String, remote: String },
    /// Copy a file from the host to the local machine.
    Download { remote: String, local: String },
    /// Send a signal to a service's process group.
    Signal {
        service: String,
        pid: i64,
        signal: String,
    },
    /// Wait for an endpoint to become healthy.
    Check { what: String },
    /// A call to the Docker Engine that changes something: the request that is sent.
    Docker(Box<super::docker::Request>),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Run(cmd) => {
                write!(f, "run {cmd}")?;
                if let Some(dir) = &cmd.dir {
                    write!(f, "  (in {dir})")?;
                }
                Ok(())
            }
            Action::Write {
                path,
                content,
                mode,
            } => {
                write!(f, "write {path} ({} bytes", content.len())?;
                if let Some(mode) = mode {
                    write!(f, ", mode {mode:o}")?;
                }
                write!(f, ")")
            }
            Action::Mkdir { path } => write!(f, "mkdir -p {}", quote(path)),
            Action::Symlink { target, link } => {
                write!(f, "symlink {} -> {}", quote(link), quote(target))
            }
            Action::Start {
                service, command, ..
            } => {
                write!(f, "start {service}: {command}")?;
                if let Some(dir) = &command.dir {
                    write!(f, "  (in {dir})")?;
                }
                Ok(())
            }
            Action::Signal {
                service,
                pid,
                signal,
            } => write!(f, "signal {signal} to {service} (process group {pid})"),
            Action::Check { what } => write!(f, "check {what}"),
            Action::Docker(request) => write!(f, "docker {request}"),
            Action::Remove { path } => write!(f, "rm -f {}", quote(path)),
            Action::Upload { local, remote } => {
                write!(f, "upload {} -> {}", quote(local), quote(remote))
            }
            Action::Download { remote, local } => {
                write!(f, "download {} -> local {}", quote(remote), quote(local))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(quote("git"), "git");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn displays_shell_commands_as_written() {
        let cmd = Command::shell("echo hi && ls");
        assert_eq!(cmd.to_string(), "sh -c 'echo hi && ls'");
        let argv = Command::new(["git", "commit", "-m", "two words"]);
        assert_eq!(argv.to_string(), "git commit -m 'two words'");
        let mut with_env = Command::new(["env"]);
        with_env.env = vec![("A".into(), "1 2".into()), ("B".into(), "x".into())];
        assert_eq!(with_env.to_string(), "A='1 2' B=x env");
    }

    #[test]
    fn a_program_is_one_value_whatever_wraps_it() {
        let script = Program::Shell("echo $HOME".into());
        assert_eq!(script.argv(), ["sh", "-c", "echo $HOME"]);
        assert_eq!(script.name(), "sh");
        let sudo = script.under(["sudo", "-n", "--"]);
        assert_eq!(
            sudo,
            Program::Exec(vec![
                "sudo".into(),
                "-n".into(),
                "--".into(),
                "sh".into(),
                "-c".into(),
                "echo $HOME".into()
            ])
        );
        assert_eq!(sudo.to_string(), "sudo -n -- sh -c 'echo $HOME'");
        assert!(!sudo.is_shell() && script.is_shell());
        assert_eq!(Program::Exec(Vec::new()).name(), "");
    }

    #[test]
    fn a_detached_command_starts_the_same_argv_under_setsid() {
        let mut cmd = Command::new(["./app", "--port", "8080"]);
        cmd.dir = Some("/srv/app".into());
        cmd.env = vec![("MODE".into(), "prod".into())];
        let detached = cmd.detached("app.log");
        assert_eq!(
            detached.program.argv()[3..],
            ["galley-start", "app.log", "./app", "--port", "8080"]
        );
        assert_eq!(detached.program.argv()[..2], ["sh", "-c"]);
        assert!(detached.quiet);
        assert_eq!((detached.dir, detached.env), (cmd.dir, cmd.env));
    }
}
