//! `Host`: the one interface that `local()` and ssh hosts share. A `Transport` moves bytes and
//! runs commands; `Host` turns every operation into an `Action`, announces it, and performs it
//! for real or (in a dry run) only prints it.

use std::sync::Arc;

use rhai::{Dynamic, Map};

use super::options::{to_command, Opts};
use crate::api::{opt, Api, OptionSpec, Spec, Type};
use crate::error::{last_lines, STDERR_TAIL};
use crate::error::{Failure, RhaiResult};
use crate::exec::{Action, Command, Ctx, Output};

/// How a host runs commands and moves files.
pub trait Transport: Send + Sync {
    /// The name printed before each line from this host.
    fn name(&self) -> &str;
    /// Runs a command to completion, streaming its output unless it is quiet.
    fn run(&self, ctx: &Ctx, cmd: &Command) -> Result<Output, Failure>;
    /// Writes a file atomically (temp file + rename); `mode` defaults to the old file's or 0644.
    fn write(
        &self,
        ctx: &Ctx,
        path: &str,
        content: &[u8],
        mode: Option<u32>,
    ) -> Result<(), Failure>;
    /// Reads a whole file.
    fn read(&self, ctx: &Ctx, path: &str) -> Result<Vec<u8>, Failure>;
    /// Whether a path exists (a dangling symlink counts).
    fn exists(&self, ctx: &Ctx, path: &str) -> Result<bool, Failure>;
    /// Creates a directory and its parents.
    fn mkdir(&self, ctx: &Ctx, path: &str) -> Result<(), Failure>;
    /// Removes a file; a missing file is not an error.
    fn remove(&self, ctx: &Ctx, path: &str) -> Result<(), Failure>;
    /// Points `link` at `target`, atomically replacing an existing link.
    fn symlink(&self, ctx: &Ctx, target: &str, link: &str) -> Result<(), Failure>;
    /// Copies a local file to the host, atomically, keeping its mode.
    fn upload(&self, ctx: &Ctx, local: &str, remote: &str) -> Result<(), Failure>;
    /// Copies a file from the host to a local path, atomically.
    fn download(&self, ctx: &Ctx, remote: &str, local: &str) -> Result<(), Failure>;
    /// A local address (`127.0.0.1:PORT`) that reaches `127.0.0.1:port` on the host.
    fn forward(&self, ctx: &Ctx, port: u16) -> Result<String, Failure>;
    /// A local path of a Unix socket that reaches the socket `path` on the host.
    fn forward_socket(&self, ctx: &Ctx, path: &str) -> Result<String, Failure>;
    /// Whether this is the machine Galley runs on.
    fn is_local(&self) -> bool {
        false
    }
    /// Creates `path` with `content` unless it exists (atomically: `O_EXCL`); false if it existed.
    fn create_new(&self, ctx: &Ctx, path: &str, content: &[u8]) -> Result<bool, Failure>;
    /// Galley's state folder on the host (deploy locks, the host's journal): absolute, or
    /// relative to the login folder.
    fn state_dir(&self, ctx: &Ctx) -> Result<String, Failure>;
}

/// A machine that recipes act on.
#[derive(Clone)]
pub struct Host {
    transport: Arc<dyn Transport>,
    ctx: Arc<Ctx>,
}

impl Host {
    /// A host over `transport`.
    pub fn new(transport: Arc<dyn Transport>, ctx: Arc<Ctx>) -> Self {
        Host { transport, ctx }
    }

    /// The host's display name.
    pub fn name(&self) -> &str {
        self.transport.name()
    }

    /// The run's context.
    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// The same host in a context that Ctrl-C does not stop, for cleanup after an interrupt.
    pub fn uncancelled(&self) -> Host {
        Host {
            transport: self.transport.clone(),
            ctx: Arc::new(self.ctx.uncancelled()),
        }
    }

    /// Creates a file unless it exists, atomically; false when it existed.
    pub fn create_new(&self, path: &str, content: &[u8]) -> Result<bool, Failure> {
        self.transport.create_new(&self.ctx, path, content)
    }

    /// Prints `action` (as "would ..." in a dry run); true when it should be carried out.
    pub fn announce(&self, action: &Action) -> bool {
        let quiet = matches!(action, Action::Run(cmd) if cmd.quiet);
        if !quiet || self.ctx.dry_run {
            self.ctx
                .printer
                .action(self.name(), &action.to_string(), self.ctx.dry_run);
        }
        if self.ctx.dry_run && self.ctx.run.diff {
            self.show_diff(action);
        }
        !self.ctx.dry_run
    }

    /// `--dry-run --diff`: prints what a write or upload would change in the file on the host.
    fn show_diff(&self, action: &Action) {
        let (path, new) = match action {
            Action::Write { path, content, .. } => (path, content.clone()),
            Action::Upload { local, remote } => match std::fs::read(local) {
                Ok(bytes) => (remote, bytes),
                // The upload itself reports the missing file when it runs for real.
                Err(_) => return,
            },
            _ => return,
        };
        let old = match self.exists(path) {
            Ok(true) => self.transport.read(&self.ctx, path).ok(),
            _ => None,
        };
        if let Some(diff) = crate::exec::diff::of_bytes(path, old.as_deref(), &new) {
            self.ctx.printer.diff(self.name(), path, &diff);
        }
    }

    /// Announces `action` and performs it, unless this is a dry run. A run's `Output` is returned.
    pub fn perform(&self, action: Action) -> Result<Output, Failure> {
        super::validate::action_paths(&action)?;
        if !self.announce(&action) {
            return Ok(Output::ok());
        }
        // Recorded before the change happens, so that watch mode knows it before it sees it.
        match &action {
            Action::Write { path, .. }
            | Action::Remove { path }
            | Action::Symlink { link: path, .. }
            | Action::Mkdir { path }
            | Action::Upload { remote: path, .. }
                if self.is_local() =>
            {
                self.ctx.wrote(path);
            }
            Action::Download { local, .. } => self.ctx.wrote(local),
            _ => {}
        }
        let t = &self.transport;
        let ctx = &self.ctx;
        match action {
            Action::Run(cmd) => t.run(ctx, &cmd),
            Action::Start { command, log, .. } => t.run(ctx, &command.detached(&log)),
            Action::Remove { path } => t.remove(ctx, &path).map(|()| Output::ok()),
            Action::Write {
                path,
                content,
                mode,
            } => t.write(ctx, &path, &content, mode).map(|()| Output::ok()),
            Action::Mkdir { path } => t.mkdir(ctx, &path).map(|()| Output::ok()),
            Action::Symlink { target, link } => {
                t.symlink(ctx, &target, &link).map(|()| Output::ok())
            }
            Action::Signal { pid, signal, .. } => {
                let cmd =
                    Command::new(["kill", &format!("-{signal}"), "--", &format!("-{pid}")]).quiet();
                t.run(ctx, &cmd)
            }
            Action::Upload { local, remote } => {
                t.upload(ctx, &local, &remote).map(|()| Output::ok())
            }
            Action::Download { remote, local } => {
                t.download(ctx, &remote, &local).map(|()| Output::ok())
            }
            Action::Check { .. } | Action::Docker(_) => Ok(Output::ok()),
        }
    }

    /// Runs a command and fails unless it exits with 0.
    pub fn run_checked(&self, cmd: Command) -> Result<Output, Failure> {
        let display = cmd.to_string();
        let out = self.perform(Action::Run(cmd))?;
        if out.success() {
            Ok(out)
        } else {
            Err(self.command_failed(&display, &out))
        }
    }

    /// Runs a read-only command that is safe to run even in a dry run (nothing is announced).
    pub fn probe(&self, cmd: Command) -> Result<Output, Failure> {
        super::validate::command(&cmd)?;
        self.transport.run(&self.ctx, &cmd.quiet())
    }

    /// The failure for a command that exited non-zero.
    pub fn command_failed(&self, command: &str, out: &Output) -> Failure {
        Failure::CommandFailed {
            host: self.name().to_string(),
            command: command.to_string(),
            code: out.code,
            stderr_tail: last_lines(&out.stderr, STDERR_TAIL),
        }
    }

    /// Reads a file as text (runs even in a dry run: reading changes nothing).
    pub fn read_text(&self, path: &str) -> Result<String, Failure> {
        let bytes = self.transport.read(&self.ctx, path)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Whether a path exists (runs even in a dry run).
    pub fn exists(&self, path: &str) -> Result<bool, Failure> {
        self.transport.exists(&self.ctx, path)
    }

    /// A local address that reaches `127.0.0.1:port` on the host (itself, for the local host).
    pub fn forward(&self, port: u16) -> Result<String, Failure> {
        self.transport.forward(&self.ctx, port)
    }

    /// A local socket path that reaches the Unix socket `path` on the host.
    pub fn forward_socket(&self, path: &str) -> Result<String, Failure> {
        self.transport.forward_socket(&self.ctx, path)
    }

    /// Whether this is the machine Galley runs on.
    pub fn is_local(&self) -> bool {
        self.transport.is_local()
    }

    /// Galley's state folder on the host.
    pub fn state_dir(&self) -> Result<String, Failure> {
        self.transport.state_dir(&self.ctx)
    }

    /// Writes a file atomically.
    pub fn write(&self, path: &str, content: &[u8], mode: Option<u32>) -> Result<(), Failure> {
        self.perform(Action::Write {
            path: path.to_string(),
            content: content.to_vec(),
            mode,
        })
        .map(|_| ())
    }
}

/// A finished command as the map recipes get back (`code`, `ok`, `stdout`, `stderr`, their exact
/// bytes `stdout_bytes` and `stderr_bytes`, `lossy`, `truncated`, `duration`).
pub fn output_map(out: &Output) -> Map {
    let mut map = Map::new();
    map.insert("code".into(), Dynamic::from(out.code.map_or(-1, i64::from)));
    map.insert("ok".into(), Dynamic::from(out.success()));
    map.insert("stdout".into(), out.stdout.clone().into());
    map.insert("stderr".into(), out.stderr.clone().into());
    let bytes = |exact: &Option<Vec<u8>>, text: &str| {
        Dynamic::from_blob(exact.clone().unwrap_or_else(|| text.as_bytes().to_vec()))
    };
    map.insert("stdout_bytes".into(), bytes(&out.stdout_bytes, &out.stdout));
    map.insert("stderr_bytes".into(), bytes(&out.stderr_bytes, &out.stderr));
    let lossy = out.stdout_bytes.is_some() || out.stderr_bytes.is_some();
    map.insert("lossy".into(), Dynamic::from(lossy));
    map.insert("truncated".into(), Dynamic::from(out.truncated));
    map.insert("duration".into(), Dynamic::from(out.duration.as_secs_f64()));
    map
}

const RUN_OPTIONS: &[OptionSpec] = &[
    opt(
        "dir",
        Type::String,
        "",
        "the folder to run in (default: the login folder, or the working folder for local())",
    ),
    opt(
        "env",
        Type::Env,
        "",
        "environment variables for the command: #{ NAME: \"value\" }",
    ),
    opt(
        "check",
        Type::Bool,
        "true",
        "fail the recipe when the command exits non-zero; false returns the result instead",
    ),
    opt(
        "timeout",
        Type::Duration,
        "",
        "kill the command's process group after this long (default: no limit)",
    ),
    opt(
        "quiet",
        Type::Bool,
        "false",
        "do not print the command or stream its output",
    ),
    opt(
        "stdin",
        Type::String,
        "",
        "text written to the command's standard input",
    ),
    opt(
        "sudo",
        Type::Bool,
        "false",
        "run through `sudo -n` (the variables of `env` reach it through stdin)",
    ),
];

const WRITE_OPTIONS: &[OptionSpec] = &[opt(
    "mode",
    Type::Other("string | int"),
    "the old file's mode, or \"0644\"",
    "the file's permissions: an octal string such as \"0640\" or a number such as 0o640",
)];

fn run(host: &Host, cmd: Dynamic, opts: Map) -> RhaiResult<Map> {
    let opts = Opts::new("run", opts, RUN_OPTIONS)?;
    let mut command = to_command("run", "the command", &cmd)?;
    let check = opts.bool("check")?.unwrap_or(true);
    command.dir = opts.string("dir")?;
    command.env = opts.string_map("env")?;
    command.timeout = opts.duration("timeout")?;
    command.quiet = opts.bool("quiet")?.unwrap_or(false);
    command.stdin = opts.string("stdin")?;
    if opts.bool("sudo")?.unwrap_or(false) {
        // sudo resets the environment: the variables reach the command through its stdin.
        command = if command.env.is_empty() {
            Command {
                program: command.program.under(["sudo", "-n", "--"]),
                ..command
            }
        } else {
            crate::exec::env::via_stdin(&command, &["sudo", "-n", "--"])?
        };
    }
    let out = if check {
        host.run_checked(command)
    } else {
        host.perform(Action::Run(command))
    }?;
    Ok(output_map(&out))
}

fn write(host: &Host, path: &str, text: &str, opts: Map) -> RhaiResult<()> {
    let opts = Opts::new("write", opts, WRITE_OPTIONS)?;
    let mode = match opts.get("mode") {
        None => None,
        Some(v) => Some(parse_mode(v).ok_or_else(|| {
            super::options::bad_value(
                "write",
                "option `mode`",
                "an octal string such as \"0640\" or a number such as 0o640",
                v,
            )
        })?),
    };
    Ok(host.write(path, text.as_bytes(), mode)?)
}

fn parse_mode(v: &Dynamic) -> Option<u32> {
    if let Ok(n) = v.as_int() {
        return u32::try_from(n).ok().filter(|m| *m <= 0o7777);
    }
    let text = v.clone().into_string().ok()?;
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
}

const HOST: &[(&str, &str)] = &[("host", "Host")];

const RUN: Spec = Spec::method(
    "run",
    &[("host", "Host"), ("command", "string | array"), ("opts", "map")],
    "map",
)
.doc("Runs a command on the host: an argv array runs as is, a string runs with `sh -c`; returns #{ code, ok, stdout, stderr, duration } and fails on a non-zero exit unless `check: false`.")
.example(r#"let out = local().run(["git", "rev-parse", "HEAD"], #{ dir: "/srv/app", quiet: true });"#)
.options(RUN_OPTIONS);

const WRITE: Spec = Spec::method(
    "write",
    &[
        ("host", "Host"),
        ("path", "string"),
        ("text", "string"),
        ("opts", "map"),
    ],
    "()",
)
.doc("Writes a text file on the host atomically (a temporary file renamed into place).")
.example(r#"local().write("/srv/app/.env", "PORT=8000\n", #{ mode: "0640" });"#)
.options(WRITE_OPTIONS);

const PATH: &[(&str, &str)] = &[("host", "Host"), ("path", "string")];

/// Registers the `Host` type, `local()` and the host methods.
// One registration per function of the API: a list, not logic.
#[allow(clippy::too_many_lines)]
pub fn register(api: &mut Api, ctx: &Arc<Ctx>) {
    api.register_type::<Host>(
        "Host",
        "A machine recipes act on: local() or ssh::connect(...); every domain (git, process, docker, nginx) starts from one.",
    );
    api.register(
        Spec::method("to_string", HOST, "string")
            .doc("The host as text: `Host(NAME)`.")
            .example(r"log(local().to_string());"),
        |h: &mut Host| format!("Host({})", h.name()),
    );
    api.register(
        Spec::property(HOST, "name", "string")
            .doc("The host's name, printed before each of its lines (`local`, or the ssh target).")
            .example(r"log(`deploying to ${host.name}`);"),
        |h: &mut Host| h.name().to_string(),
    );

    let local_ctx = ctx.clone();
    api.register(
        Spec::function("local", &[], "Host")
            .doc("The machine Galley runs on.")
            .example("let here = local();"),
        move || Host::new(Arc::new(super::local::LocalTransport), local_ctx.clone()),
    );

    api.register(RUN.without_options(), |h: &mut Host, cmd: Dynamic| {
        run(h, cmd, Map::new())
    });
    api.register(RUN, |h: &mut Host, cmd: Dynamic, opts: Map| {
        run(h, cmd, opts)
    });
    api.register(
        WRITE.without_options(),
        |h: &mut Host, path: &str, text: &str| write(h, path, text, Map::new()),
    );
    api.register(WRITE, |h: &mut Host, path: &str, text: &str, opts: Map| {
        write(h, path, text, opts)
    });
    api.register(
        Spec::method("read", PATH, "string")
            .doc("Reads a text file on the host (also in a dry run: reading changes nothing).")
            .example(r#"let config = host.read("/etc/app/config.yml");"#),
        |h: &mut Host, path: &str| -> RhaiResult<String> { Ok(h.read_text(path)?) },
    );
    api.register(
        Spec::method("exists", PATH, "bool")
            .doc("Whether a path exists on the host (a dangling symlink counts).")
            .example(r#"if !host.exists("/srv/app") { host.mkdir("/srv/app"); }"#),
        |h: &mut Host, path: &str| -> RhaiResult<bool> { Ok(h.exists(path)?) },
    );
    api.register(
        Spec::method("mkdir", PATH, "()")
            .doc("Creates a folder on the host, with its parents.")
            .example(r#"host.mkdir("/srv/app/releases");"#),
        |h: &mut Host, path: &str| perform(h, Action::Mkdir { path: path.into() }),
    );
    api.register(
        Spec::method("remove", PATH, "()")
            .doc("Removes a file on the host; a missing file is not an error.")
            .example(r#"host.remove("/srv/app/maintenance.html");"#),
        |h: &mut Host, path: &str| perform(h, Action::Remove { path: path.into() }),
    );
    api.register(
        Spec::method(
            "upload",
            &[("host", "Host"), ("local", "string"), ("remote", "string")],
            "()",
        )
        .doc("Copies a local file to the host, atomically, keeping its mode.")
        .example(r#"host.upload("dist/app.tar.gz", "/srv/app/app.tar.gz");"#),
        |h: &mut Host, local: &str, remote: &str| {
            perform(
                h,
                Action::Upload {
                    local: local.into(),
                    remote: remote.into(),
                },
            )
        },
    );
    api.register(
        Spec::method(
            "download",
            &[("host", "Host"), ("remote", "string"), ("local", "string")],
            "()",
        )
        .doc("Copies a file from the host to a local path, atomically.")
        .example(r#"host.download("/var/log/app.log", "app.log");"#),
        |h: &mut Host, remote: &str, local: &str| {
            perform(
                h,
                Action::Download {
                    remote: remote.into(),
                    local: local.into(),
                },
            )
        },
    );
    api.register(
        Spec::method("forward", &[("host", "Host"), ("port", "int")], "string")
            .doc("A local address (`127.0.0.1:PORT`) that reaches `127.0.0.1:port` on the host, through the ssh connection.")
            .example(r"health::http(`http://${host.forward(8000)}/health`);"),
        |h: &mut Host, port: i64| -> RhaiResult<String> {
            let port = u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| {
                super::options::bad_value(
                    "forward",
                    "the port",
                    "a port number (1-65535)",
                    &Dynamic::from(port),
                )
            })?;
            Ok(h.forward(port)?)
        },
    );
    api.register(
        Spec::method(
            "symlink",
            &[("host", "Host"), ("target", "string"), ("link", "string")],
            "()",
        )
        .doc("Points `link` at `target` on the host, atomically replacing an existing link.")
        .example(r#"host.symlink("/srv/app/releases/42", "/srv/app/current");"#),
        |h: &mut Host, target: &str, link: &str| {
            perform(
                h,
                Action::Symlink {
                    target: target.into(),
                    link: link.into(),
                },
            )
        },
    );
}

/// Performs a file action for a recipe.
fn perform(host: &Host, action: Action) -> RhaiResult<()> {
    host.perform(action)?;
    Ok(())
}
