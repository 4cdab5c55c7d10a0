//! The errors of Galley: `Failure`, what a primitive throws into the recipe (it travels through
//! Rhai as the value of a runtime error, so `try`/`catch` sees it, and `report` turns it into a
//! diagnostic), the report codes that are not a failure's (`Code`) and how each kind of error
//! exits (`Exit`). Every code Galley prints is written once, here; docs/reports.md lists them all.

mod code;
mod library;

use std::sync::Arc;
use std::time::Duration;

use miette::Diagnostic;
use rhai::{Dynamic, EvalAltResult, Position};

pub use code::{Code, Exit};
pub use library::LibError;

/// What a native function of the recipe API returns: a `Failure` converts with `?`.
pub type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// How many lines of a failed command's stderr a report shows.
pub const STDERR_TAIL: usize = 20;

/// A failure of a Galley primitive, with the data a report needs; its code and help are on
/// its variant.
#[derive(Clone, Debug, thiserror::Error, Diagnostic)]
pub enum Failure {
    /// A command exited with a non-zero code (or was killed by a signal).
    #[error("{}", command_failed(.host, .command, *.code))]
    #[diagnostic(
        code(galley::command_failed),
        help("the command's own output is above; pass #{{ check: false }} to handle the exit code in the recipe")
    )]
    CommandFailed {
        host: String,
        command: String,
        code: Option<i32>,
        stderr_tail: Vec<String>,
    },
    /// A command could not be started at all.
    #[error("could not start command on {host}: {command}: {error}")]
    #[diagnostic(
        code(galley::command_not_started),
        help("check that the program is installed on that host and on its PATH")
    )]
    Spawn {
        host: String,
        command: String,
        error: String,
    },
    /// A command ran longer than its timeout and was killed.
    #[error("command timed out after {} on {host}: {command}", crate::duration::format_duration(*.after))]
    #[diagnostic(
        code(galley::timeout),
        help("the command's process group was killed; raise #{{ timeout: \"...\" }} if it needs longer")
    )]
    Timeout {
        host: String,
        command: String,
        after: Duration,
        stderr_tail: Vec<String>,
    },
    /// The run was interrupted (Ctrl-C) while this was under way.
    #[error("interrupted while {what}")]
    #[diagnostic(
        code(galley::interrupted),
        help("the running command was stopped; run the recipe again to finish")
    )]
    Interrupted { what: String },
    /// A health check never passed.
    #[error("health check of {target} did not pass after {attempts} attempt{}; last: {last}", if *.attempts == 1 { "" } else { "s" })]
    #[diagnostic(
        code(galley::health),
        help("look at the app's logs; raise `retries` or `interval` if it needs longer to start")
    )]
    Health {
        target: String,
        attempts: u32,
        last: String,
    },
    /// A pidfile that cannot be read as a pid.
    #[error("bad pidfile {path} on {host}: {problem}")]
    #[diagnostic(
        code(galley::pidfile),
        help("if no such process is running, remove {path} and run again")
    )]
    Pidfile {
        host: String,
        path: String,
        problem: String,
    },
    /// A service that failed to start or stop.
    #[error("service `{service}` on {host}: {problem}")]
    #[diagnostic(code(galley::service))]
    Service {
        host: String,
        service: String,
        problem: String,
        log_tail: Vec<String>,
        #[help]
        help: String,
    },
    /// A git operation that failed, with git's own words.
    #[error("git in {dir} on {host}: {problem}")]
    #[diagnostic(code(galley::git))]
    Git {
        host: String,
        dir: String,
        problem: String,
        detail: Vec<String>,
        #[help]
        help: String,
    },
    /// A secret that is neither in the environment nor in the secrets file.
    #[error("{}", missing_secret(.name, .secrets_file.as_deref()))]
    #[diagnostic(
        code(galley::secret),
        help("export {name}=... before running, or put `{name}=...` in a file passed with --secrets FILE")
    )]
    MissingSecret {
        name: String,
        secrets_file: Option<String>,
    },
    /// An environment variable that is not set and has no default.
    #[error("environment variable `{name}` is not set")]
    #[diagnostic(
        code(galley::env),
        help("export {name}, or give a default: env(\"{name}\", \"...\")")
    )]
    MissingEnv { name: String },
    /// An options map with a key the function does not know.
    #[error("unknown option `{key}` for {function}")]
    #[diagnostic(code(galley::unknown_option), help("{}", unknown_option_help(.key, .valid)))]
    UnknownOption {
        function: String,
        key: String,
        valid: Vec<String>,
    },
    /// A required option that the options map does not have.
    #[error("missing option `{key}` for {function}")]
    #[diagnostic(
        code(galley::missing_option),
        help("pass `{key}` ({expected}) in the options map")
    )]
    MissingOption {
        function: String,
        key: String,
        /// What the option takes ("a closure (|h| ...)").
        expected: String,
    },
    /// An option (or argument) of the wrong type or form.
    #[error("{function}: {what} must be {expected}, got {got}")]
    #[diagnostic(code(galley::bad_value), help("pass {expected}"))]
    BadValue {
        function: String,
        what: String,
        expected: String,
        got: String,
    },
    /// A value that breaks the rule for where it goes (a name, a path, an option, a config line).
    #[error("invalid {what} {value}, refused before it reached anything")]
    #[diagnostic(code(galley::invalid_value), help("a valid {what}: {rule}"))]
    InvalidValue {
        /// What the value is for ("docker container name").
        what: String,
        /// The value, quoted and escaped.
        value: String,
        rule: String,
    },
    /// An `import` whose path is not a string literal.
    #[error("the path of an import must be a string literal")]
    #[diagnostic(
        code(galley::import_not_literal),
        help("write the path as a string: import \"lib/tools\" as tools; (Galley resolves, checks and watches imports before running)")
    )]
    ImportNotLiteral,
    /// Modules that import each other in a circle (or a module that imports itself).
    #[error("import cycle: {}", .chain.join(" -> "))]
    #[diagnostic(
        code(galley::import_cycle),
        help("a module cannot import itself, directly or through others: move what both need into a third module")
    )]
    ImportCycle {
        /// The modules from the first import of the repeated one back to it.
        chain: Vec<String>,
    },
    /// A file operation on a host failed (in the words of the host's file protocol).
    #[error("{operation} {path} on {host} failed: {error}")]
    #[diagnostic(
        code(galley::io),
        help("check the path and its permissions on that host")
    )]
    Io {
        host: String,
        operation: String,
        path: String,
        error: String,
    },
    /// A file operation on this machine failed.
    #[error("{operation} {path} on local failed: {error}")]
    #[diagnostic(
        code(galley::io),
        help("check the path and its permissions on that host")
    )]
    LocalIo {
        operation: String,
        path: String,
        #[source]
        error: Arc<std::io::Error>,
    },
    /// An SSH connection that could not be made, or that was lost.
    #[error("ssh to {host}: {message}")]
    #[diagnostic(forward(problem))]
    Ssh {
        host: String,
        problem: SshProblem,
        message: String,
        detail: Vec<String>,
        #[help]
        help: String,
    },
    /// A Docker Engine call that failed, in Docker's own words and with what to do.
    #[error("docker on {host}: {message}")]
    #[diagnostic(forward(problem))]
    Docker {
        host: String,
        problem: DockerProblem,
        message: String,
        detail: Vec<String>,
        #[help]
        help: String,
    },
    /// A Swarm service whose rollout failed (paused, rolled back, a task that failed, Galley's
    /// deadline), or a swarm call on a node that is no manager.
    #[error("{}", swarm(.host, .service, .message))]
    #[diagnostic(forward(problem))]
    Swarm {
        host: String,
        service: String,
        problem: SwarmProblem,
        message: String,
        /// The failing task, its error, what Swarm did, the task's last log lines.
        detail: Vec<String>,
        /// Whether the previous spec is serving again (Swarm's rollback, or one Galley asked for).
        rolled_back: bool,
        #[help]
        help: String,
    },
    /// nginx refused a configuration or a reload, in its own words.
    #[error("nginx on {host}: {problem}")]
    #[diagnostic(code(galley::nginx))]
    Nginx {
        host: String,
        problem: String,
        detail: Vec<String>,
        #[help]
        help: String,
    },
    /// Another deploy holds the lock for this app on this host.
    #[error("{app} on {host} is locked by {}another deploy: {holder}", if *.stale { "a stale lock of " } else { "" })]
    #[diagnostic(code(galley::locked), help("{}", locked_help(.app, .host, *.stale)))]
    Locked {
        host: String,
        app: String,
        holder: String,
        stale: bool,
    },
    /// The new version failed once it had taken traffic (or as a canary), and the old one was put back.
    #[error("the new version of {app} failed and was rolled back: {cause}")]
    #[diagnostic(
        code(galley::rolled_back),
        help("the old version is serving again; fix the new version (its failure is above) and deploy again")
    )]
    RolledBack {
        app: String,
        cause: String,
        detail: Vec<String>,
    },
    /// A library import that cannot be served from the lock and the cache.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Library(LibError),
    /// A fan-out went on past failures it was told to tolerate: the run still did not succeed.
    #[error("{}", partial(.what, .failed, *.total, *.tolerated))]
    #[diagnostic(
        code(galley::partial),
        help("the others were updated; the failed ones are as they were left (a strategy keeps them out of its upstream): fix them and deploy again")
    )]
    Partial {
        what: String,
        /// Each failed item and why.
        failed: Vec<(String, String)>,
        total: usize,
        tolerated: usize,
    },
    /// A fan-out stopped: the first failed item's own error, with which item it was and which
    /// others failed. Its text, code and help are the item's.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Item(ItemFailure),
    /// Anything else, with a hint.
    #[error("{message}")]
    #[diagnostic(code(galley::error))]
    Other {
        message: String,
        #[help]
        help: String,
    },
}

/// Which of the usual Docker problems it was; each has its own report code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Diagnostic)]
pub enum DockerProblem {
    #[error("the Docker Engine does not answer")]
    #[diagnostic(code(galley::docker_unreachable))]
    Unreachable,
    #[error("no such image")]
    #[diagnostic(code(galley::docker_image_not_found))]
    ImageNotFound,
    #[error("a published port is taken")]
    #[diagnostic(code(galley::docker_port_allocated))]
    PortAllocated,
    #[error("a container of that name exists")]
    #[diagnostic(code(galley::docker_name_in_use))]
    NameInUse,
    #[error("a build failed")]
    #[diagnostic(code(galley::docker_build))]
    Build,
    #[error("the registry refused the credentials")]
    #[diagnostic(code(galley::docker_auth))]
    Auth,
    #[error("another Engine error")]
    #[diagnostic(code(galley::docker))]
    Other,
}

/// How a Swarm rollout (or call) went wrong; each has its own report code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Diagnostic)]
pub enum SwarmProblem {
    /// The node is not in a swarm, or not a manager.
    #[error("the node is no swarm manager")]
    #[diagnostic(code(galley::swarm_not_manager))]
    NotManager,
    /// Swarm paused the update (or the rollback) after a task failed.
    #[error("Swarm paused the update")]
    #[diagnostic(code(galley::swarm_paused))]
    Paused,
    /// Swarm rolled the service back to its previous spec after a task failed.
    #[error("Swarm rolled the service back")]
    #[diagnostic(code(galley::swarm_rolled_back))]
    RolledBack,
    /// A task of the new spec failed or was rejected, and Swarm does not roll back by itself.
    #[error("a task failed")]
    #[diagnostic(code(galley::swarm_task_failed))]
    TaskFailed,
    /// The rollout did not converge within Galley's deadline.
    #[error("the rollout did not converge in time")]
    #[diagnostic(code(galley::swarm_deadline))]
    Deadline,
}

/// Which of the usual SSH problems it was; each has its own report code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Diagnostic)]
pub enum SshProblem {
    #[error("the host does not answer")]
    #[diagnostic(code(galley::ssh_unreachable))]
    Unreachable,
    #[error("the host refused the login")]
    #[diagnostic(code(galley::ssh_auth))]
    Auth,
    #[error("the host key is not known")]
    #[diagnostic(code(galley::ssh_host_key_unknown))]
    HostKeyUnknown,
    #[error("the host key changed")]
    #[diagnostic(code(galley::ssh_host_key_changed))]
    HostKeyChanged,
    #[error("the connection was lost")]
    #[diagnostic(code(galley::ssh_connection_lost))]
    Lost,
    #[error("another ssh problem")]
    #[diagnostic(code(galley::ssh))]
    Other,
}

/// The first failed item of a fan-out that stopped: which item, how many others failed, and the
/// item's own error (which a report follows into the item's closure).
#[derive(Clone, Debug)]
pub struct ItemFailure {
    /// The item (a host's name).
    pub item: String,
    /// "2 of 3 failed (a, b)".
    pub summary: String,
    /// Every failed item, this one first.
    pub failed: Vec<String>,
    /// What went wrong on the item.
    pub error: Arc<EvalAltResult>,
}

impl ItemFailure {
    /// The item's failure, if a primitive threw it.
    pub fn failure(&self) -> Option<Failure> {
        Failure::of(&self.error)
    }
}

impl std::fmt::Display for ItemFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(&self.error))
    }
}

impl std::error::Error for ItemFailure {}

impl Diagnostic for ItemFailure {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(self.failure()?.code_text()))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        let help = self.failure()?.help()?.to_string();
        Some(Box::new(help))
    }
}

impl Failure {
    /// The stable code (`galley::...`), as recipes read it with `e.code`.
    pub fn code_text(&self) -> String {
        self.code().map(|c| c.to_string()).unwrap_or_default()
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
            Failure::Item(item) => item.failure().map(|f| f.details()).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// How a run that ends with this failure exits.
    pub fn exit(&self) -> Exit {
        match self {
            Failure::Interrupted { .. } => Exit::Interrupted,
            Failure::ImportNotLiteral => Exit::Usage,
            Failure::Library(e) => e.code.exit(),
            Failure::Item(item) => item.failure().map_or(Exit::Failed, |f| f.exit()),
            _ => Exit::Failed,
        }
    }

    /// Whether the old version serves again after this failure (the journal's "`rolled_back`").
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

    /// The items a fan-out failure names as failed (none for other failures).
    pub fn failed_items(&self) -> Vec<String> {
        match self {
            Failure::Item(item) => item.failed.clone(),
            Failure::Partial { failed, .. } => {
                failed.iter().map(|(name, _)| name.clone()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// A failed file operation on this machine.
    pub fn local_io(operation: &str, path: &str, error: std::io::Error) -> Self {
        Failure::LocalIo {
            operation: operation.into(),
            path: path.into(),
            error: Arc::new(error),
        }
    }

    /// The failure that `err` carries (through its call frames), if a primitive threw it.
    pub fn thrown(err: &EvalAltResult) -> Option<Failure> {
        match innermost(err) {
            EvalAltResult::ErrorRuntime(value, _) => value.clone().try_cast::<Failure>(),
            _ => None,
        }
    }

    /// What failed in `err`: the failure it carries, or for a fan-out that stopped, the failed
    /// item's.
    pub fn of(err: &EvalAltResult) -> Option<Failure> {
        match Failure::thrown(err)? {
            Failure::Item(item) => item.failure(),
            failure => Some(failure),
        }
    }

    /// The failure as a Rhai error at `pos` (for errors raised outside a function call; in a
    /// native function, `?` or `primitives::at_call` give it the call's position).
    pub fn into_rhai_at(self, pos: Position) -> Box<EvalAltResult> {
        Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(self), pos))
    }
}

/// The one conversion into a Rhai error; the engine fills in the call-site position.
impl From<Failure> for Box<EvalAltResult> {
    fn from(failure: Failure) -> Self {
        failure.into_rhai_at(Position::NONE)
    }
}

/// The error a call chain ends in (the call frames around it stripped).
pub fn innermost(err: &EvalAltResult) -> &EvalAltResult {
    let mut current = err;
    while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _) = current {
        current = inner;
    }
    current
}

/// What went wrong, in words: a failure's message, a thrown value, or the engine's text.
pub fn describe(err: &EvalAltResult) -> String {
    match innermost(err) {
        EvalAltResult::ErrorRuntime(value, _) => match value.clone().try_cast::<Failure>() {
            Some(failure) => failure.to_string(),
            None => value.to_string(),
        },
        other => other.to_string(),
    }
}

/// The one-line reason of a failure, for a summary table or a journal.
pub fn reason(err: &EvalAltResult) -> String {
    describe(err).lines().next().unwrap_or_default().to_string()
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    // Edits (a swap counts as one) catch short typos; similarity ranks the ties.
    let allowed = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .filter(|c| *c != word)
        .map(|c| {
            (
                strsim::damerau_levenshtein(word, c),
                -strsim::jaro_winkler(word, c),
                c,
            )
        })
        .filter(|(edits, _, _)| *edits <= allowed)
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .map(|(_, _, c)| c.to_string())
}

/// Keeps the last `n` non-empty lines of `text`.
pub fn last_lines(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(std::string::ToString::to_string)
        .collect()
}

fn command_failed(host: &str, command: &str, code: Option<i32>) -> String {
    match code {
        Some(code) => format!("command failed on {host} with exit code {code}: {command}"),
        None => format!("command was killed by a signal on {host}: {command}"),
    }
}

fn missing_secret(name: &str, secrets_file: Option<&str>) -> String {
    match secrets_file {
        Some(file) => format!("secret `{name}` is neither in the environment nor in {file}"),
        None => {
            format!("secret `{name}` is not in the environment, and no --secrets FILE was given")
        }
    }
}

fn unknown_option_help(key: &str, valid: &[String]) -> String {
    let help = format!("valid options: {}", valid.join(", "));
    match suggest(key, valid.iter().map(String::as_str)) {
        Some(near) => format!("did you mean `{near}`? {help}"),
        None => help,
    }
}

fn swarm(host: &str, service: &str, message: &str) -> String {
    if service.is_empty() {
        format!("swarm on {host}: {message}")
    } else {
        format!("swarm service {service} on {host}: {message}")
    }
}

fn locked_help(app: &str, host: &str, stale: bool) -> String {
    // The `--host` part of the `galley unlock` that clears a lock on `host`.
    let on = if host == "local" {
        String::new()
    } else {
        format!(" --host {host}")
    };
    if stale {
        format!("the deploy that took it is gone (killed?): clear the lock with `galley unlock {app}{on}` and run again")
    } else {
        format!("wait for that deploy to finish; if it is gone, `galley unlock {app}{on}` clears the lock")
    }
}

fn partial(what: &str, failed: &[(String, String)], total: usize, tolerated: usize) -> String {
    let names: Vec<&str> = failed.iter().map(|(name, _)| name.as_str()).collect();
    format!(
        "{what}: {} of {total} failed ({}), within max_failures {tolerated}, so the rest went on",
        failed.len(),
        names.join(", ")
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names_only() {
        let names = ["run", "read", "write"];
        assert_eq!(suggest("rnu", names.into_iter()).as_deref(), Some("run"));
        assert_eq!(suggest("xyzzy", names.into_iter()), None);
    }

    #[test]
    fn codes_and_help_come_from_the_variant() {
        let failure = Failure::Locked {
            host: "web-1".into(),
            app: "shop".into(),
            holder: "ana (pid 7)".into(),
            stale: true,
        };
        assert_eq!(failure.code_text(), "galley::locked");
        assert_eq!(
            failure.to_string(),
            "shop on web-1 is locked by a stale lock of another deploy: ana (pid 7)"
        );
        let help = failure.help().unwrap().to_string();
        assert!(help.contains("`galley unlock shop --host web-1`"), "{help}");
        let ssh = Failure::Ssh {
            host: "web-1".into(),
            problem: SshProblem::HostKeyChanged,
            message: "the host key changed".into(),
            detail: Vec::new(),
            help: "check the new key".into(),
        };
        assert_eq!(ssh.code_text(), "galley::ssh_host_key_changed");
        assert_eq!(ssh.help().unwrap().to_string(), "check the new key");
    }

    #[test]
    fn a_fan_out_item_reads_as_the_item_own_failure() {
        let inner = Failure::Interrupted {
            what: "deploying".into(),
        };
        let item = Failure::Item(ItemFailure {
            item: "web-2".into(),
            summary: "1 of 2 failed (web-2)".into(),
            failed: vec!["web-2".into()],
            error: Arc::from(Box::<EvalAltResult>::from(inner.clone())),
        });
        assert_eq!(item.to_string(), inner.to_string());
        assert_eq!(item.code_text(), "galley::interrupted");
        assert_eq!(item.exit(), Exit::Interrupted);
        assert_eq!(item.failed_items(), ["web-2"]);
        let err = Box::<EvalAltResult>::from(item);
        assert!(matches!(
            Failure::of(&err),
            Some(Failure::Interrupted { .. })
        ));
        assert!(matches!(Failure::thrown(&err), Some(Failure::Item(_))));
    }

    #[test]
    fn every_code_is_galley_s_and_written_once() {
        let mut texts: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert!(texts.iter().all(|t| t.starts_with("galley::")));
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), Code::ALL.len());
        assert_eq!(Code::Syntax.exit().code(), 2);
        assert_eq!(Code::Throw.exit().code(), 1);
    }
}
