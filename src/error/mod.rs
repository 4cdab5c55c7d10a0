//! `Failure`: what a primitive throws into the recipe. It travels through Rhai as the value of a
//! runtime error, so `try`/`catch` sees it, and `report` turns it into a diagnostic.

use std::fmt;
use std::time::Duration;

use rhai::{Dynamic, EvalAltResult, Position};

/// What a native function of the recipe API returns: a `Failure` converts with `?`.
pub type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// How many lines of a failed command's stderr a report shows.
pub const STDERR_TAIL: usize = 20;

/// A failure of a Galley primitive, with the data a report needs.
#[derive(Clone, Debug)]
pub enum Failure {
    /// A command exited with a non-zero code (or was killed by a signal).
    CommandFailed {
        host: String,
        command: String,
        code: Option<i32>,
        stderr_tail: Vec<String>,
    },
    /// A command could not be started at all.
    Spawn {
        host: String,
        command: String,
        error: String,
    },
    /// A command ran longer than its timeout and was killed.
    Timeout {
        host: String,
        command: String,
        after: Duration,
        stderr_tail: Vec<String>,
    },
    /// The run was interrupted (Ctrl-C) while this was under way.
    Interrupted { what: String },
    /// A health check never passed.
    Health {
        target: String,
        attempts: u32,
        last: String,
    },
    /// A pidfile that cannot be read as a pid.
    Pidfile {
        host: String,
        path: String,
        problem: String,
    },
    /// A service that failed to start or stop.
    Service {
        host: String,
        service: String,
        problem: String,
        log_tail: Vec<String>,
        help: String,
    },
    /// A git operation that failed, with git's own words.
    Git {
        host: String,
        dir: String,
        problem: String,
        detail: Vec<String>,
        help: String,
    },
    /// A secret that is neither in the environment nor in the secrets file.
    MissingSecret {
        name: String,
        secrets_file: Option<String>,
    },
    /// An environment variable that is not set and has no default.
    MissingEnv { name: String },
    /// An options map with a key the function does not know.
    UnknownOption {
        function: String,
        key: String,
        valid: Vec<String>,
    },
    /// An options map without a key that the function needs.
    MissingOption { function: String, key: String },
    /// An option (or argument) of the wrong type or form.
    BadValue {
        function: String,
        what: String,
        expected: String,
        got: String,
    },
    /// A value that breaks the rule for where it goes (a name, a path, an option, a config line).
    InvalidValue {
        /// What the value is for ("docker container name").
        what: String,
        /// The value, quoted and escaped.
        value: String,
        rule: String,
    },
    /// An `import` whose path is not a string literal.
    ImportNotLiteral,
    /// Modules that import each other in a circle (or a module that imports itself).
    ImportCycle {
        /// The modules from the first import of the repeated one back to it.
        chain: Vec<String>,
    },
    /// A file operation on a host failed.
    Io {
        host: String,
        operation: String,
        path: String,
        error: String,
    },
    /// An SSH connection that could not be made, or that was lost.
    Ssh {
        host: String,
        problem: SshProblem,
        message: String,
        detail: Vec<String>,
        help: String,
    },
    /// A Docker Engine call that failed, in Docker's own words and with what to do.
    Docker {
        host: String,
        problem: DockerProblem,
        message: String,
        detail: Vec<String>,
        help: String,
    },
    /// A Swarm service whose rollout failed (paused, rolled back, a task that failed, Galley's
    /// deadline), or a swarm call on a node that is no manager.
    Swarm {
        host: String,
        service: String,
        problem: SwarmProblem,
        message: String,
        /// The failing task, its error, what Swarm did, the task's last log lines.
        detail: Vec<String>,
        /// Whether the previous spec is serving again (Swarm's rollback, or one Galley asked for).
        rolled_back: bool,
        help: String,
    },
    /// nginx refused a configuration or a reload, in its own words.
    Nginx {
        host: String,
        problem: String,
        detail: Vec<String>,
        help: String,
    },
    /// Another deploy holds the lock for this app on this host.
    Locked {
        host: String,
        app: String,
        holder: String,
        stale: bool,
    },
    /// The new version failed once it had taken traffic (or as a canary), and the old one was put back.
    RolledBack {
        app: String,
        cause: String,
        detail: Vec<String>,
    },
    /// A library import that cannot be served from the lock and the cache.
    Library(crate::libs::LibError),
    /// A fan-out went on past failures it was told to tolerate: the run still did not succeed.
    Partial {
        what: String,
        /// Each failed item and why.
        failed: Vec<(String, String)>,
        total: usize,
        tolerated: usize,
    },
    /// Anything else, with a hint.
    Other { message: String, help: String },
}

/// Which of the usual Docker problems it was; each has its own report code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DockerProblem {
    Unreachable,
    ImageNotFound,
    PortAllocated,
    NameInUse,
    Build,
    Auth,
    Other,
}

/// How a Swarm rollout (or call) went wrong; each has its own report code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwarmProblem {
    /// The node is not in a swarm, or not a manager.
    NotManager,
    /// Swarm paused the update (or the rollback) after a task failed.
    Paused,
    /// Swarm rolled the service back to its previous spec after a task failed.
    RolledBack,
    /// A task of the new spec failed or was rejected, and Swarm does not roll back by itself.
    TaskFailed,
    /// The rollout did not converge within Galley's deadline.
    Deadline,
}

/// Which of the usual SSH problems it was; each has its own report code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SshProblem {
    Unreachable,
    Auth,
    HostKeyUnknown,
    HostKeyChanged,
    Lost,
    Other,
}

impl Failure {
    /// A stable diagnostic code (`galley::...`).
    pub fn code(&self) -> &'static str {
        match self {
            Failure::CommandFailed { .. } => "galley::command_failed",
            Failure::Spawn { .. } => "galley::command_not_started",
            Failure::Timeout { .. } => "galley::timeout",
            Failure::Interrupted { .. } => "galley::interrupted",
            Failure::Health { .. } => "galley::health",
            Failure::Pidfile { .. } => "galley::pidfile",
            Failure::Service { .. } => "galley::service",
            Failure::Git { .. } => "galley::git",
            Failure::MissingSecret { .. } => "galley::secret",
            Failure::MissingEnv { .. } => "galley::env",
            Failure::UnknownOption { .. } => "galley::unknown_option",
            Failure::MissingOption { .. } => "galley::missing_option",
            Failure::BadValue { .. } => "galley::bad_value",
            Failure::InvalidValue { .. } => "galley::invalid_value",
            Failure::ImportNotLiteral => "galley::import_not_literal",
            Failure::ImportCycle { .. } => "galley::import_cycle",
            Failure::Io { .. } => "galley::io",
            Failure::Ssh { problem, .. } => match problem {
                SshProblem::Unreachable => "galley::ssh_unreachable",
                SshProblem::Auth => "galley::ssh_auth",
                SshProblem::HostKeyUnknown => "galley::ssh_host_key_unknown",
                SshProblem::HostKeyChanged => "galley::ssh_host_key_changed",
                SshProblem::Lost => "galley::ssh_connection_lost",
                SshProblem::Other => "galley::ssh",
            },
            Failure::Docker { problem, .. } => match problem {
                DockerProblem::Unreachable => "galley::docker_unreachable",
                DockerProblem::ImageNotFound => "galley::docker_image_not_found",
                DockerProblem::PortAllocated => "galley::docker_port_allocated",
                DockerProblem::NameInUse => "galley::docker_name_in_use",
                DockerProblem::Build => "galley::docker_build",
                DockerProblem::Auth => "galley::docker_auth",
                DockerProblem::Other => "galley::docker",
            },
            Failure::Swarm { problem, .. } => match problem {
                SwarmProblem::NotManager => "galley::swarm_not_manager",
                SwarmProblem::Paused => "galley::swarm_paused",
                SwarmProblem::RolledBack => "galley::swarm_rolled_back",
                SwarmProblem::TaskFailed => "galley::swarm_task_failed",
                SwarmProblem::Deadline => "galley::swarm_deadline",
            },
            Failure::Nginx { .. } => "galley::nginx",
            Failure::Locked { .. } => "galley::locked",
            Failure::RolledBack { .. } => "galley::rolled_back",
            Failure::Library(e) => e.code,
            Failure::Partial { .. } => "galley::partial",
            Failure::Other { .. } => "galley::error",
        }
    }

    /// What to do about it.
    pub fn help(&self) -> String {
        match self {
            Failure::CommandFailed { .. } => {
                "the command's own output is above; pass #{ check: false } to handle the exit code in the recipe".into()
            }
            Failure::Spawn { .. } => "check that the program is installed on that host and on its PATH".into(),
            Failure::Timeout { .. } => {
                "the command's process group was killed; raise #{ timeout: \"...\" } if it needs longer".into()
            }
            Failure::Interrupted { .. } => "the running command was stopped; run the recipe again to finish".into(),
            Failure::Health { .. } => {
                "look at the app's logs; raise `retries` or `interval` if it needs longer to start".into()
            }
            Failure::Pidfile { path, .. } => {
                format!("if no such process is running, remove {path} and run again")
            }
            Failure::Service { help, .. }
            | Failure::Git { help, .. }
            | Failure::Ssh { help, .. }
            | Failure::Docker { help, .. }
            | Failure::Swarm { help, .. }
            | Failure::Nginx { help, .. }
            | Failure::Other { help, .. } => help.clone(),
            Failure::Library(e) => e.help.clone(),
            Failure::MissingSecret { name, .. } => format!(
                "export {name}=... before running, or put `{name}=...` in a file passed with --secrets FILE"
            ),
            Failure::MissingEnv { name } => {
                format!("export {name}, or give a default: env(\"{name}\", \"...\")")
            }
            Failure::UnknownOption { valid, key, .. } => {
                let mut help = format!("valid options: {}", valid.join(", "));
                if let Some(near) = crate::report::suggest(key, valid.iter().map(String::as_str)) {
                    help = format!("did you mean `{near}`? {help}");
                }
                help
            }
            Failure::MissingOption { function, key } => {
                format!("add `{key}: ...` to the options; `galley docs {function}` describes it")
            }
            Failure::BadValue { expected, .. } => format!("pass {expected}"),
            Failure::InvalidValue { what, rule, .. } => format!("a valid {what}: {rule}"),
            Failure::ImportNotLiteral => {
                "write the path as a string: import \"lib/tools\" as tools; (Galley resolves, checks and watches imports before running)".into()
            }
            Failure::ImportCycle { .. } => {
                "a module cannot import itself, directly or through others: move what both need into a third module".into()
            }
            Failure::Io { .. } => "check the path and its permissions on that host".into(),
            Failure::Locked {
                app, stale, host, ..
            } => {
                if *stale {
                    format!("the deploy that took it is gone (killed?): clear the lock with `galley unlock {app}{}` and run again", unlock_host(host))
                } else {
                    format!("wait for that deploy to finish; if it is gone, `galley unlock {app}{}` clears the lock", unlock_host(host))
                }
            }
            Failure::RolledBack { .. } => "the old version is serving again; fix the new version (its failure is above) and deploy again".into(),
            Failure::Partial { .. } => "the others were updated; the failed ones are as they were left (a strategy keeps them out of its upstream): fix them and deploy again".into(),
        }
    }

    /// Extra lines shown under the message (stderr tail, last response...).
    pub fn details(&self) -> Vec<String> {
        match self {
            Failure::CommandFailed { stderr_tail, .. } | Failure::Timeout { stderr_tail, .. } => {
                tail_block("stderr", stderr_tail)
            }
            Failure::Service { log_tail, .. } => tail_block("log", log_tail),
            Failure::Git { detail, .. } => tail_block("git said", detail),
            Failure::Ssh { detail, .. } => tail_block("ssh said", detail),
            Failure::Docker { detail, .. } => tail_block("docker said", detail),
            Failure::Nginx { detail, .. } => tail_block("nginx said", detail),
            Failure::RolledBack { detail, .. } | Failure::Swarm { detail, .. } => detail.clone(),
            Failure::Library(e) => e.details.clone(),
            Failure::Partial { failed, .. } => failed
                .iter()
                .map(|(name, why)| format!("  {name}: {why}"))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the old version serves again after this failure (the journal's "rolled_back").
    pub fn is_rolled_back(&self) -> bool {
        matches!(
            self,
            Failure::RolledBack { .. }
                | Failure::Swarm {
                    rolled_back: true,
                    ..
                }
        )
    }

    /// The failure as a Rhai error at `pos` (for errors raised outside a function call).
    pub fn into_rhai_at(self, pos: Position) -> Box<EvalAltResult> {
        Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(self), pos))
    }

    /// The failure as a Rhai error; the engine fills in the call-site position.
    pub fn into_rhai(self) -> Box<EvalAltResult> {
        Box::new(EvalAltResult::ErrorRuntime(
            Dynamic::from(self),
            Position::NONE,
        ))
    }
}

impl From<Failure> for Box<EvalAltResult> {
    fn from(failure: Failure) -> Self {
        failure.into_rhai()
    }
}

/// The `--host` part of the `galley unlock` that clears a lock on `host`.
fn unlock_host(host: &str) -> String {
    if host == "local" {
        String::new()
    } else {
        format!(" --host {host}")
    }
}

fn tail_block(title: &str, lines: &[String]) -> Vec<String> {
    if lines.is_empty() {
        return Vec::new();
    }
    let mut out = vec![match lines.len() {
        1 => format!("{title} (last line):"),
        n => format!("{title} (last {n} lines):"),
    }];
    out.extend(lines.iter().map(|l| format!("  | {l}")));
    out
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::CommandFailed {
                host,
                command,
                code,
                ..
            } => match code {
                Some(code) => write!(
                    f,
                    "command failed on {host} with exit code {code}: {command}"
                ),
                None => write!(f, "command was killed by a signal on {host}: {command}"),
            },
            Failure::Spawn {
                host,
                command,
                error,
            } => write!(f, "could not start command on {host}: {command}: {error}"),
            Failure::Timeout {
                host,
                command,
                after,
                ..
            } => write!(
                f,
                "command timed out after {} on {host}: {command}",
                crate::primitives::options::format_duration(*after)
            ),
            Failure::Interrupted { what } => write!(f, "interrupted while {what}"),
            Failure::Health {
                target,
                attempts,
                last,
            } => write!(
                f,
                "health check of {target} did not pass after {attempts} attempt{}; last: {last}",
                if *attempts == 1 { "" } else { "s" }
            ),
            Failure::Pidfile {
                host,
                path,
                problem,
            } => write!(f, "bad pidfile {path} on {host}: {problem}"),
            Failure::Service {
                host,
                service,
                problem,
                ..
            } => write!(f, "service `{service}` on {host}: {problem}"),
            Failure::Git {
                host, dir, problem, ..
            } => write!(f, "git in {dir} on {host}: {problem}"),
            Failure::MissingSecret { name, secrets_file } => match secrets_file {
                Some(file) => write!(
                    f,
                    "secret `{name}` is neither in the environment nor in {file}"
                ),
                None => write!(
                    f,
                    "secret `{name}` is not in the environment, and no --secrets FILE was given"
                ),
            },
            Failure::MissingEnv { name } => write!(f, "environment variable `{name}` is not set"),
            Failure::UnknownOption { function, key, .. } => {
                write!(f, "unknown option `{key}` for {function}")
            }
            Failure::MissingOption { function, key } => {
                write!(f, "{function} needs the option `{key}`")
            }
            Failure::BadValue {
                function,
                what,
                expected,
                got,
            } => write!(f, "{function}: {what} must be {expected}, got {got}"),
            Failure::InvalidValue { what, value, .. } => {
                write!(
                    f,
                    "invalid {what} {value}, refused before it reached anything"
                )
            }
            Failure::ImportNotLiteral => {
                write!(f, "the path of an import must be a string literal")
            }
            Failure::ImportCycle { chain } => {
                write!(f, "import cycle: {}", chain.join(" -> "))
            }
            Failure::Io {
                host,
                operation,
                path,
                error,
            } => write!(f, "{operation} {path} on {host} failed: {error}"),
            Failure::Ssh { host, message, .. } => write!(f, "ssh to {host}: {message}"),
            Failure::Docker { host, message, .. } => write!(f, "docker on {host}: {message}"),
            Failure::Swarm {
                host,
                service,
                message,
                ..
            } if service.is_empty() => write!(f, "swarm on {host}: {message}"),
            Failure::Swarm {
                host,
                service,
                message,
                ..
            } => write!(f, "swarm service {service} on {host}: {message}"),
            Failure::Nginx { host, problem, .. } => write!(f, "nginx on {host}: {problem}"),
            Failure::Locked {
                host,
                app,
                holder,
                stale,
            } => write!(
                f,
                "{app} on {host} is locked by {}another deploy: {holder}",
                if *stale { "a stale lock of " } else { "" }
            ),
            Failure::RolledBack { app, cause, .. } => {
                write!(
                    f,
                    "the new version of {app} failed and was rolled back: {cause}"
                )
            }
            Failure::Partial {
                what,
                failed,
                total,
                tolerated,
            } => write!(
                f,
                "{what}: {} of {total} failed ({}), within max_failures {tolerated}, so the rest went on",
                failed.len(),
                failed
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Failure::Other { message, .. } => write!(f, "{message}"),
            Failure::Library(e) => write!(f, "{}", e.message),
        }
    }
}

/// Keeps the last `n` non-empty lines of `text`.
pub fn last_lines(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}
