//! The local machine as a `Transport`: processes through tokio, files through std.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncWriteExt;

use super::host::Transport;
use crate::error::Failure;
use crate::error::{last_lines, STDERR_TAIL};
use crate::exec::stream::Reader;
use crate::exec::{Command, Ctx, Output, Printer, Stream};

/// How long a killed command's process group gets between TERM and KILL.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long to keep reading output after a command exited (a detached grandchild may hold the pipe).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// The machine Galley runs on.
pub struct LocalTransport;

impl Transport for LocalTransport {
    fn name(&self) -> &'static str {
        "local"
    }

    fn run(&self, ctx: &Ctx, cmd: &Command) -> Result<Output, Failure> {
        let printer = ctx.printer.clone();
        let cancel = ctx.cancel.clone();
        let cmd = cmd.clone();
        ctx.runtime
            .block_on(async move { run_command(&cmd, &printer, cancel).await })
    }

    fn write(
        &self,
        _ctx: &Ctx,
        path: &str,
        content: &[u8],
        mode: Option<u32>,
    ) -> Result<(), Failure> {
        let target = Path::new(path);
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let err = |e| Failure::local_io("write", path, e);
        // Keep an existing file's mode unless one is given; new files get 0644, not tempfile's 0600.
        let mode = mode.unwrap_or_else(|| {
            std::fs::metadata(target).map_or(0o644, |m| m.permissions().mode() & 0o7777)
        });
        let mut tmp = tempfile::Builder::new()
            .prefix(".galley-")
            .tempfile_in(parent)
            .map_err(err)?;
        tmp.write_all(content).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode)).map_err(err)?;
        tmp.persist(target).map_err(|e| err(e.error))?;
        Ok(())
    }

    fn read(&self, _ctx: &Ctx, path: &str) -> Result<Vec<u8>, Failure> {
        std::fs::read(path).map_err(|e| Failure::local_io("read", path, e))
    }

    fn exists(&self, _ctx: &Ctx, path: &str) -> Result<bool, Failure> {
        Ok(std::fs::symlink_metadata(path).is_ok())
    }

    fn mkdir(&self, _ctx: &Ctx, path: &str) -> Result<(), Failure> {
        std::fs::create_dir_all(path).map_err(|e| Failure::local_io("mkdir", path, e))
    }

    fn remove(&self, _ctx: &Ctx, path: &str) -> Result<(), Failure> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Failure::local_io("remove", path, e))
            }
            _ => Ok(()),
        }
    }

    fn symlink(&self, _ctx: &Ctx, target: &str, link: &str) -> Result<(), Failure> {
        let link_path = Path::new(link);
        let parent = link_path.parent().filter(|p| !p.as_os_str().is_empty());
        let name = link_path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let tmp = parent
            .unwrap_or(Path::new("."))
            .join(format!(".{name}.galley-{}", std::process::id()));
        let err = |e| Failure::local_io("symlink", link, e);
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(target, &tmp).map_err(err)?;
        // rename(2) replaces the old link in one step: readers see the old or the new target.
        std::fs::rename(&tmp, link_path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })
    }

    fn upload(&self, ctx: &Ctx, local: &str, remote: &str) -> Result<(), Failure> {
        self.copy(ctx, local, remote)
    }

    fn download(&self, ctx: &Ctx, remote: &str, local: &str) -> Result<(), Failure> {
        self.copy(ctx, remote, local)
    }

    fn forward(&self, _ctx: &Ctx, port: u16) -> Result<String, Failure> {
        Ok(format!("127.0.0.1:{port}"))
    }

    fn forward_socket(&self, _ctx: &Ctx, path: &str) -> Result<String, Failure> {
        Ok(path.to_string())
    }

    fn is_local(&self) -> bool {
        true
    }

    fn state_dir(&self, _ctx: &Ctx) -> Result<String, Failure> {
        Ok(crate::primitives::deploy::journal::state_dir()
            .to_string_lossy()
            .into_owned())
    }

    fn create_new(&self, _ctx: &Ctx, path: &str, content: &[u8]) -> Result<bool, Failure> {
        let err = |e| Failure::local_io("create", path, e);
        let target = Path::new(path);
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(parent) = parent {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        // The whole content first, then link(2), which fails if the name exists: a reader never
        // sees the file empty, and exactly one of two creators wins.
        let mut tmp = tempfile::Builder::new()
            .prefix(".galley-")
            .tempfile_in(parent.unwrap_or(Path::new(".")))
            .map_err(err)?;
        tmp.write_all(content).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        match std::fs::hard_link(tmp.path(), target) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(err(e)),
        }
    }
}

impl LocalTransport {
    /// Copies `from` to `to` through a temp file beside `to`, keeping `from`'s mode.
    fn copy(&self, ctx: &Ctx, from: &str, to: &str) -> Result<(), Failure> {
        let content = self.read(ctx, from)?;
        let mode = std::fs::metadata(from)
            .map(|m| m.permissions().mode() & 0o7777)
            .ok();
        self.write(ctx, to, &content, mode)
    }
}

/// Runs `cmd` in its own process group, streaming its lines, honouring timeout and cancellation.
async fn run_command(
    cmd: &Command,
    printer: &Printer,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<Output, Failure> {
    let started = Instant::now();
    let argv = cmd.program.argv();
    let Some((program, args)) = argv.split_first() else {
        return Err(Failure::Spawn {
            host: "local".into(),
            command: cmd.to_string(),
            error: "the command is empty".into(),
        });
    };
    let mut child_cmd = tokio::process::Command::new(program);
    child_cmd
        .args(args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .process_group(0)
        .stdin(if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = &cmd.dir {
        child_cmd.current_dir(dir);
    }
    let mut child = child_cmd.spawn().map_err(|e| Failure::Spawn {
        host: "local".into(),
        command: cmd.to_string(),
        error: match (&cmd.dir, e.kind()) {
            (Some(dir), std::io::ErrorKind::NotFound) if !Path::new(dir).is_dir() => {
                format!("working directory {dir} does not exist")
            }
            (_, std::io::ErrorKind::NotFound) => format!("`{program}` not found"),
            _ => e.to_string(),
        },
    })?;
    let pid = child.id().map(|id| Pid::from_raw(id as i32));
    let quiet = cmd.quiet;
    let out = Reader::spawn(
        child.stdout.take(),
        "local".into(),
        Stream::Stdout,
        printer.clone(),
        quiet,
    );
    let err = Reader::spawn(
        child.stderr.take(),
        "local".into(),
        Stream::Stderr,
        printer.clone(),
        quiet,
    );
    if let (Some(text), Some(mut stdin)) = (&cmd.stdin, child.stdin.take()) {
        let text = text.clone();
        tokio::spawn(async move {
            let _ = stdin.write_all(text.as_bytes()).await;
        });
    }

    let timeout = cmd.timeout.unwrap_or(Duration::from_secs(u64::MAX / 4));
    enum End {
        Exited(Option<i32>),
        TimedOut,
        Cancelled,
    }
    let end = tokio::select! {
        status = child.wait() => End::Exited(status.ok().and_then(|s| s.code())),
        () = tokio::time::sleep(timeout) => End::TimedOut,
        () = cancel.cancelled() => End::Cancelled,
    };
    if !matches!(end, End::Exited(_)) {
        if let Some(pid) = pid {
            let _ = killpg(pid, Signal::SIGTERM);
            if tokio::time::timeout(KILL_GRACE, child.wait())
                .await
                .is_err()
            {
                let _ = killpg(pid, Signal::SIGKILL);
                let _ = child.wait().await;
            }
        }
    }
    let (stdout, stderr) = tokio::join!(out.finish(DRAIN_GRACE), err.finish(DRAIN_GRACE));
    match end {
        End::Exited(code) => Ok(Output::captured(code, stdout, stderr, started.elapsed())),
        End::TimedOut => Err(Failure::Timeout {
            host: "local".into(),
            command: cmd.to_string(),
            after: timeout,
            stderr_tail: last_lines(&stderr.into_text().0, STDERR_TAIL),
        }),
        End::Cancelled => Err(Failure::Interrupted {
            what: format!("running `{cmd}` on local"),
        }),
    }
}
