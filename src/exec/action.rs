//! A command is data before it runs: dry-run, logging, masking and errors all read this value.

use std::fmt;
use std::time::Duration;

/// A process to run on a host: argv, never a string pasted into a shell (unless `shell` says so).
#[derive(Clone, Debug, Default)]
pub struct Command {
    /// Program and arguments; with `shell`, `["sh", "-c", script]`.
    pub argv: Vec<String>,
    /// Working directory on the host.
    pub dir: Option<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Kill the command's process group after this long.
    pub timeout: Option<Duration>,
    /// Text written to the command's standard input.
    pub stdin: Option<String>,
    /// Whether the recipe gave a shell string (shown as such in logs).
    pub shell: bool,
    /// Do not stream output lines.
    pub quiet: bool,
}

impl Command {
    /// A command from argv.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command {
            argv: argv.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// A shell string, run through `sh -c`.
    pub fn shell(script: &str) -> Self {
        Command {
            shell: true,
            ..Command::new(["sh", "-c", script])
        }
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
        let mut argv: Vec<String> = vec![
            "sh".into(),
            "-c".into(),
            SCRIPT.into(),
            "galley-start".into(),
            log.into(),
        ];
        argv.extend(self.argv.iter().cloned());
        Command {
            argv,
            dir: self.dir.clone(),
            env: self.env.clone(),
            quiet: true,
            ..Command::default()
        }
    }

    /// The command as a person would type it, each argument quoted when it needs to be.
    pub fn display(&self) -> String {
        let mut parts: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect();
        if self.shell {
            parts.push(format!("sh -c {}", quote(&self.argv[2])));
        } else {
            parts.extend(self.argv.iter().map(|a| quote(a)));
        }
        parts.join(" ")
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
    /// A call to the Docker Engine that changes something, described like the CLI would write it.
    Docker { what: String },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Run(cmd) => {
                write!(f, "run {}", cmd.display())?;
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
                write!(f, "start {service}: {}", command.display())?;
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
            Action::Docker { what } => write!(f, "docker {what}"),
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
        assert_eq!(cmd.display(), "sh -c 'echo hi && ls'");
        let argv = Command::new(["git", "commit", "-m", "two words"]);
        assert_eq!(argv.display(), "git commit -m 'two words'");
    }
}
