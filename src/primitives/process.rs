//! `Service`: an app started in the background on a host. It outlives Galley (own session,
//! output to a log file), is tracked by a pidfile written atomically, and is recognised by the
//! `GALLEY_SERVICE=<name>` variable in its environment, so a stale pidfile whose pid now belongs
//! to another program is never signalled.

use std::time::{Duration, Instant};

use rhai::{Dynamic, Map};

use super::host::Host;
use super::options::Opts;
use crate::api::{opt, Api, OptionSpec, Spec, Type};
use crate::error::STDERR_TAIL;
use crate::error::{Failure, RhaiResult};
use crate::exec::{Action, Command, Program};

/// How long a freshly started process must stay up before `start` trusts it.
const START_GRACE: Duration = Duration::from_millis(300);
const POLL: Duration = Duration::from_millis(50);
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
const ENV_MARK: &str = "GALLEY_SERVICE";

/// A background process on a host.
#[derive(Clone)]
pub struct Service {
    host: Host,
    name: String,
    command: Command,
    env_file: Option<String>,
    pidfile: String,
    log: String,
    /// The log path as the start wrapper (running in `dir`) sees it.
    log_in_dir: String,
}

/// What the pidfile says about the service.
enum Tracked {
    /// No pidfile.
    None,
    /// The pidfile names a live process of this service.
    Running(i64),
    /// The pidfile names a process that is gone or is not ours.
    Stale,
}

fn join(dir: Option<&str>, path: &str) -> String {
    match dir {
        Some(dir) if !path.starts_with('/') => format!("{}/{path}", dir.trim_end_matches('/')),
        _ => path.to_string(),
    }
}

impl Service {
    fn new(host: Host, name: &str, opts: Map) -> Result<Self, Failure> {
        // The name becomes the default pidfile and log names, and the process's mark.
        super::validate::safe_name("service name", name)?;
        let opts = Opts::new("process", opts, PROCESS_OPTIONS)?;
        let mut command = opts.command("cmd")?.ok_or_else(|| Failure::Other {
            message: format!("process `{name}` needs a command"),
            help: "pass #{ cmd: [\"./app\", \"--port\", \"8080\"] } (or a shell string)".into(),
        })?;
        if let Program::Shell(script) = &command.program {
            if let Some(script) = exec_form(script) {
                command.program = Program::Shell(script);
            }
        }
        let dir = opts.string("dir")?;
        command.dir.clone_from(&dir);
        command.env = opts.string_map("env")?;
        let log_in_dir = opts.string("log")?.unwrap_or_else(|| format!("{name}.log"));
        Ok(Service {
            name: name.to_string(),
            env_file: opts.string("env_file")?.map(|p| join(dir.as_deref(), &p)),
            pidfile: join(
                dir.as_deref(),
                &opts
                    .string("pidfile")?
                    .unwrap_or_else(|| format!("{name}.pid")),
            ),
            log: join(dir.as_deref(), &log_in_dir),
            log_in_dir,
            command,
            host,
        })
    }

    /// The host it runs on.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its log file.
    pub fn log(&self) -> &str {
        &self.log
    }

    /// A failure of this service, with the tail of its log.
    pub fn failure(&self, problem: String, help: &str) -> Failure {
        let log_tail = self.log_tail(STDERR_TAIL).unwrap_or_default();
        Failure::Service {
            host: self.host.name().to_string(),
            service: self.name.clone(),
            problem,
            log_tail,
            help: help.to_string(),
        }
    }

    fn log_tail(&self, n: usize) -> Result<Vec<String>, Failure> {
        if !self.host.exists(&self.log)? {
            return Ok(Vec::new());
        }
        let text = self.host.read_text(&self.log)?;
        let lines: Vec<&str> = text.lines().collect();
        Ok(lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(std::string::ToString::to_string)
            .collect())
    }

    /// Whether `pid`'s environment carries this service's mark.
    fn has_mark(&self, pid: i64) -> bool {
        let mark = format!("{ENV_MARK}={}", self.name);
        let environ = self
            .host
            .read_text(&format!("/proc/{pid}/environ"))
            .unwrap_or_default();
        environ.split('\0').any(|var| var == mark)
    }

    /// Whether `pid` is alive (not a zombie); an unreadable stat counts as gone.
    fn is_alive(&self, pid: i64) -> bool {
        let Ok(stat) = self.host.read_text(&format!("/proc/{pid}/stat")) else {
            return false;
        };
        // The state follows the command name, which is in parentheses and may contain spaces.
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.trim_start().chars().next());
        !matches!(state, None | Some('Z' | 'X'))
    }

    fn tracked(&self) -> Result<Tracked, Failure> {
        if !self.host.exists(&self.pidfile)? {
            return Ok(Tracked::None);
        }
        let text = self.host.read_text(&self.pidfile)?;
        let pid: i64 = match text.trim().parse() {
            Ok(pid) if pid > 1 => pid,
            _ => {
                return Err(Failure::Pidfile {
                    host: self.host.name().to_string(),
                    path: self.pidfile.clone(),
                    problem: format!("expected a process id, found {:?}", text.trim()),
                })
            }
        };
        if !self.is_alive(pid) {
            return Ok(Tracked::Stale);
        }
        if self.has_mark(pid) {
            return Ok(Tracked::Running(pid));
        }
        self.host.ctx().printer.warn(&format!(
            "{} names pid {pid}, which is not `{}` (another program has that pid now); ignoring it",
            self.pidfile, self.name
        ));
        Ok(Tracked::Stale)
    }

    /// The pid of the running service, if it runs.
    pub fn pid(&self) -> Result<Option<i64>, Failure> {
        Ok(match self.tracked()? {
            Tracked::Running(pid) => Some(pid),
            _ => None,
        })
    }

    /// Starts the service detached and records its pid.
    pub fn start(&self) -> Result<i64, Failure> {
        // A dry run did not really stop it: what it would do next is start it.
        let running = if self.host.ctx().dry_run {
            None
        } else {
            self.pid()?
        };
        if let Some(pid) = running {
            return Err(self.failure(
                format!("already running as pid {pid}"),
                "call restart(), or stop() first",
            ));
        }
        if self.host.is_local() {
            // The app writes its log for as long as it runs; Galley writes the pidfile.
            self.host.ctx().wrote(&self.log);
            self.host.ctx().wrote(&self.pidfile);
        }
        let mut command = self.command.clone();
        command.env = self.environment()?;
        // Both folders must exist before the process does: a pidfile that cannot be written
        // would leave a process running that nothing tracks.
        for file in [&self.log, &self.pidfile] {
            let Some(parent) = std::path::Path::new(file)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            else {
                continue;
            };
            let parent = parent.to_string_lossy().into_owned();
            if !self.host.exists(&parent)? {
                self.host.perform(Action::Mkdir { path: parent })?;
            }
        }
        let out = self.host.perform(Action::Start {
            service: self.name.clone(),
            command: command.clone(),
            log: self.log_in_dir.clone(),
        })?;
        if self.host.ctx().dry_run {
            self.host.write(&self.pidfile, b"<pid>\n", None)?;
            return Ok(0);
        }
        if !out.success() {
            return Err(self.host.command_failed(&command.to_string(), &out));
        }
        let pid: i64 = out.stdout.trim().parse().map_err(|_| {
            self.failure(
                format!(
                    "the start wrapper printed {:?} instead of a pid",
                    out.stdout.trim()
                ),
                "check that `sh` and `setsid` exist on the host",
            )
        })?;
        self.host
            .write(&self.pidfile, format!("{pid}\n").as_bytes(), None)?;
        let deadline = Instant::now() + START_GRACE;
        while Instant::now() < deadline {
            if !self.is_alive(pid) {
                let _ = self.host.perform(Action::Remove {
                    path: self.pidfile.clone(),
                });
                return Err(self.failure(
                    format!("exited right after starting (pid {pid})"),
                    &format!("its output is in {}", self.log),
                ));
            }
            self.host.ctx().sleep(POLL)?;
        }
        Ok(pid)
    }

    /// The variables the process starts with: its mark, then `env_file`, then `env`.
    fn environment(&self) -> Result<Vec<(String, String)>, Failure> {
        let mut env = vec![(ENV_MARK.to_string(), self.name.clone())];
        if let Some(path) = &self.env_file {
            if self.host.exists(path)? || !self.host.ctx().dry_run {
                env.extend(parse_env_file(&self.host.read_text(path)?));
            }
        }
        env.extend(self.command.env.iter().cloned());
        Ok(env)
    }

    /// Stops the service: TERM to its process group, KILL after `timeout`. True if it was running.
    pub fn stop(&self, timeout: Duration) -> Result<bool, Failure> {
        let pid = match self.tracked()? {
            Tracked::Running(pid) => pid,
            Tracked::Stale => {
                self.host.perform(Action::Remove {
                    path: self.pidfile.clone(),
                })?;
                return Ok(false);
            }
            Tracked::None => return Ok(false),
        };
        self.signal(pid, "TERM")?;
        if !self.wait_gone(pid, timeout)? {
            self.host.ctx().printer.warn(&format!(
                "{} did not stop within {timeout:?}; sending KILL",
                self.name
            ));
            self.signal(pid, "KILL")?;
            if !self.wait_gone(pid, Duration::from_secs(5))? {
                return Err(self.failure(
                    format!("pid {pid} survived KILL"),
                    "the process may be stuck in the kernel (state D); look at it with `ps`",
                ));
            }
        }
        self.host.perform(Action::Remove {
            path: self.pidfile.clone(),
        })?;
        Ok(true)
    }

    fn signal(&self, pid: i64, signal: &str) -> Result<(), Failure> {
        let out = self.host.perform(Action::Signal {
            service: self.name.clone(),
            pid,
            signal: signal.to_string(),
        })?;
        // The group may already be gone between our check and the signal: that is success.
        if !out.success() && self.is_alive(pid) {
            return Err(self
                .host
                .command_failed(&format!("kill -{signal} -- -{pid}"), &out));
        }
        Ok(())
    }

    fn wait_gone(&self, pid: i64, timeout: Duration) -> Result<bool, Failure> {
        if self.host.ctx().dry_run {
            return Ok(true);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if !self.is_alive(pid) {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            self.host.ctx().sleep(POLL)?;
        }
    }
}

/// `script` with `exec` in front when it is one simple command, so that the shell becomes the
/// app: one process, and the pidfile names the process that serves. A compound script (`;`,
/// `&&`, pipes, a leading `cd` or assignment) keeps its shell.
fn exec_form(script: &str) -> Option<String> {
    let script = script.trim();
    let first = script.split_whitespace().next()?;
    let compound = script.contains([';', '&', '|', '\n', '(', ')']);
    let keyword = matches!(
        first,
        "if" | "for"
            | "while"
            | "until"
            | "case"
            | "{"
            | "!"
            | "exec"
            | "cd"
            | "export"
            | "."
            | "set"
            | "eval"
            | "trap"
            | "ulimit"
            | "umask"
    );
    (!compound && !keyword && !first.contains('=')).then(|| format!("exec {script}"))
}

/// Parses `KEY=value` lines: `#` comments, blank lines, `export ` prefixes and quotes allowed.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

fn stop_timeout(opts: Map) -> Result<Duration, Failure> {
    let opts = Opts::new("stop", opts, STOP_OPTIONS)?;
    Ok(opts.duration("timeout")?.unwrap_or(DEFAULT_STOP_TIMEOUT))
}

const PROCESS_OPTIONS: &[OptionSpec] = &[
    opt(
        "cmd",
        Type::Command,
        "",
        "the command (required): an argv array, or a shell string (a simple one is exec'd)",
    ),
    opt(
        "dir",
        Type::String,
        "",
        "the folder it runs in; relative pidfile, log and env_file paths are in it",
    ),
    opt(
        "env",
        Type::Env,
        "",
        "environment variables: #{ NAME: \"value\" }",
    ),
    opt(
        "env_file",
        Type::String,
        "",
        "a file of NAME=value lines read at each start",
    ),
    opt(
        "pidfile",
        Type::String,
        "\"NAME.pid\"",
        "where its pid is kept",
    ),
    opt(
        "log",
        Type::String,
        "\"NAME.log\"",
        "the file its output goes to",
    ),
];

const STOP_OPTIONS: &[OptionSpec] = &[opt(
    "timeout",
    Type::Duration,
    "\"10s\"",
    "how long to wait after SIGTERM before SIGKILL",
)];

const LOGS_OPTIONS: &[OptionSpec] = &[opt("tail", Type::Int, "50", "how many of the last lines")];

const SERVICE: &[(&str, &str)] = &[("service", "Service")];

const STOP: Spec = Spec::method("stop", &[("service", "Service"), ("opts", "map")], "bool")
    .doc("Stops the service: SIGTERM to its process group, SIGKILL after `timeout`; returns whether it was running (one that is not is no error).")
    .example(r#"app.stop(#{ timeout: "30s" });"#)
    .options(STOP_OPTIONS);

const LOGS: Spec = Spec::method("logs", &[("service", "Service"), ("opts", "map")], "string")
    .doc("The last lines of the service's log.")
    .example(r"log(app.logs(#{ tail: 20 }));")
    .options(LOGS_OPTIONS);

/// Registers `host.process(...)` and the `Service` methods.
pub fn register(api: &mut Api) {
    api.register_type::<Service>(
        "Service",
        "An app started in the background on a host (host.process(...)), tracked by a pidfile and outliving Galley.",
    );
    api.register(
        Spec::method("to_string", SERVICE, "string")
            .doc("The service as text: `Service(NAME on HOST)`.")
            .example("log(app.to_string());"),
        |s: &mut Service| format!("Service({} on {})", s.name, s.host.name()),
    );
    api.register(
        Spec::method("process", &[("host", "Host"), ("name", "string"), ("opts", "map")], "Service")
            .doc("A background process on the host, started and stopped by Galley; nothing runs until `start`.")
            .example(r#"let app = local().process("web", #{ cmd: ["./app", "--port", "8000"], dir: "/srv/app" });"#)
            .options(PROCESS_OPTIONS),
        |h: &mut Host, name: &str, opts: Map| -> RhaiResult<Service> {
            Ok(Service::new(h.clone(), name, opts)?)
        },
    );
    api.register(
        Spec::method("start", SERVICE, "int")
            .doc("Starts the service unless it runs already; fails if it exits within 300 ms. Returns its pid.")
            .example("app.start();"),
        |s: &mut Service| -> RhaiResult<i64> { Ok(s.start()?) },
    );
    api.register(
        STOP.without_options(),
        |s: &mut Service| -> RhaiResult<bool> { Ok(s.stop(DEFAULT_STOP_TIMEOUT)?) },
    );
    api.register(STOP, |s: &mut Service, opts: Map| -> RhaiResult<bool> {
        Ok(s.stop(stop_timeout(opts)?)?)
    });
    api.register(
        Spec::method("restart", SERVICE, "int")
            .doc("Stops the service (if it runs) and starts it again; returns the new pid.")
            .example("app.restart();"),
        |s: &mut Service| -> RhaiResult<i64> {
            s.stop(DEFAULT_STOP_TIMEOUT)?;
            Ok(s.start()?)
        },
    );
    api.register(
        Spec::method("is_running", SERVICE, "bool")
            .doc("Whether the service's process is alive (its pidfile names a live process of this service).")
            .example(r"if !app.is_running() { app.start(); }"),
        |s: &mut Service| -> RhaiResult<bool> { Ok(s.pid()?.is_some()) },
    );
    api.register(
        Spec::method("pid", SERVICE, "int | ()")
            .doc("The pid of the running service, or () when it is not running.")
            .example(r"log(`pid: ${app.pid()}`);"),
        |s: &mut Service| -> RhaiResult<Dynamic> {
            Ok(s.pid()?.map_or(Dynamic::UNIT, Dynamic::from))
        },
    );
    api.register(
        Spec::property(SERVICE, "pidfile", "string")
            .doc("The path of the service's pidfile.")
            .example("log(app.pidfile);"),
        |s: &mut Service| s.pidfile.clone(),
    );
    api.register(
        Spec::property(SERVICE, "host", "Host")
            .doc("The host the service runs on.")
            .example("log(app.host.name);"),
        |s: &mut Service| s.host.clone(),
    );
    api.register(
        Spec::property(SERVICE, "name", "string")
            .doc("The service's name.")
            .example("log(app.name);"),
        |s: &mut Service| s.name.clone(),
    );
    api.register(
        Spec::property(SERVICE, "log", "string")
            .doc("The path of the service's log file.")
            .example("log(app.log);"),
        |s: &mut Service| s.log.clone(),
    );
    api.register(
        LOGS.without_options(),
        |s: &mut Service| -> RhaiResult<String> { Ok(s.log_tail(50)?.join("\n")) },
    );
    api.register(LOGS, |s: &mut Service, opts: Map| -> RhaiResult<String> {
        let opts = Opts::new("logs", opts, LOGS_OPTIONS)?;
        let tail = opts.int("tail")?.unwrap_or(50).max(0) as usize;
        Ok(s.log_tail(tail)?.join("\n"))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simple_shell_command_becomes_the_process() {
        assert_eq!(
            exec_form(" python3 app.py $PORT > out.log").as_deref(),
            Some("exec python3 app.py $PORT > out.log")
        );
        for script in [
            "cd app && ./run",
            "a; b",
            "a | b",
            "PORT=1 ./app",
            "exec ./app",
            "",
        ] {
            assert_eq!(exec_form(script), None, "{script}");
        }
    }

    #[test]
    fn parses_env_files() {
        let env = parse_env_file("# c\nexport A=1\nB=\"two words\"\n\nC='x=y'\nnot a pair\n");
        assert_eq!(
            env,
            vec![
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), "two words".to_string()),
                ("C".to_string(), "x=y".to_string())
            ]
        );
    }
}
