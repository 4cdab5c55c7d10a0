//! An ssh host as a `Transport`: commands are channels on the host's one multiplexed master
//! connection, files go through sftp on that same connection, and tunnels are port forwards.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openssh::{ForwardType, Session, Socket, Stdio};
use openssh_sftp_client::error::SftpErrorKind;
use openssh_sftp_client::metadata::Permissions;
use openssh_sftp_client::{Error as SftpError, Sftp, SftpAuxiliaryData, SftpOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::OnceCell;

use super::executor::{self, Executor, Exit, Started};
use super::master::{control, Master};
use crate::error::Failure;
use crate::error::{last_lines, SshProblem, STDERR_TAIL};
use crate::exec::action::quote;
use crate::exec::env;
use crate::exec::stream::Reader;
use crate::exec::{Command, Ctx, Output, Stream};
use crate::primitives::host::Transport;

/// How long a killed remote command's process group gets between TERM and KILL.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long to keep reading output after a remote command exited or was killed: a background
/// process it left may hold its output open for much longer.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How often, at most, to look whether a remote command whose output is still open has exited.
const EXIT_POLL: Duration = Duration::from_secs(5);
/// Chunk size for uploads and downloads.
const CHUNK: usize = 256 * 1024;
/// Marks the stderr line of a remote command whose working directory is missing.
const NO_DIR: &str = "galley: no such working directory";

/// One host's master connection and what hangs off it.
pub struct Connection {
    session: Arc<Session>,
    socket: PathBuf,
    /// Leave the master running for the next run.
    persist: bool,
    /// Run commands and the sftp server through `sudo -n`.
    sudo: bool,
    sftp: OnceCell<Arc<Sftp>>,
    /// The process on the host that commands start through.
    executor: Executor,
    /// The tunnels opened in this run: what they reach on the host -> their local end
    /// (`127.0.0.1:PORT` or a socket path), spelled as `ssh -L` takes them.
    forwards: Mutex<HashMap<String, String>>,
}

impl Drop for Connection {
    /// Closes this run's tunnels (the master may outlive the run) and, unless it persists, the
    /// master itself. Plain `ssh -O` calls, because the runtime may already be gone.
    fn drop(&mut self) {
        let forwards = self.forwards.lock().map(|f| f.clone()).unwrap_or_default();
        for (remote, local) in forwards {
            if self.persist {
                control(
                    &self.socket,
                    &["-O", "cancel", "-L", &format!("{local}:{remote}")],
                );
            }
            if local.starts_with('/') {
                let _ = std::fs::remove_file(&local);
            }
        }
        if !self.persist {
            self.executor.quit();
            control(&self.socket, &["-O", "exit"]);
        }
    }
}

impl Connection {
    /// Wraps a master connection.
    pub fn new(master: Master, persist: bool, sudo: bool) -> Self {
        Connection {
            executor: Executor::new(&master.socket),
            session: Arc::new(master.session),
            socket: master.socket,
            persist,
            sudo,
            sftp: OnceCell::new(),
            forwards: Mutex::default(),
        }
    }
}

/// A host reached over ssh.
pub struct SshTransport {
    name: String,
    conn: Arc<Connection>,
    /// The `state_dir` connect option, or the host's default once asked.
    state_dir: Mutex<Option<String>>,
}

/// The host's default state folder, as its own shell sees it.
const STATE_DIR_PROBE: &str = r#"printf '%s' "${XDG_STATE_HOME:-$HOME/.local/state}/galley""#;

impl SshTransport {
    /// A transport named `name` over `conn`; `state_dir` overrides the host's default.
    pub fn new(name: String, conn: Arc<Connection>, state_dir: Option<String>) -> Self {
        SshTransport {
            name,
            conn,
            state_dir: Mutex::new(state_dir),
        }
    }

    fn lost(&self, what: &str, error: impl std::fmt::Display) -> Failure {
        Failure::Ssh {
            host: self.name.clone(),
            problem: SshProblem::Lost,
            message: format!("{what}: {error}"),
            detail: Vec::new(),
            help: "the connection to the host broke; check the host and the network, then run \
                   again"
                .into(),
        }
    }

    fn io_error(&self, operation: &str, path: &str, error: SftpError) -> Failure {
        let error = match &error {
            SftpError::SftpError(_, message) => message.to_string(),
            other => other.to_string(),
        };
        Failure::Io {
            host: self.name.clone(),
            operation: operation.into(),
            path: path.into(),
            error,
        }
    }

    /// The sftp session, started on first use: the `sftp` subsystem, or with sudo the
    /// sftp-server program under `sudo -n` so that files are read and written as root.
    async fn sftp(&self) -> Result<Arc<Sftp>, Failure> {
        self.conn
            .sftp
            .get_or_try_init(|| async {
                let session = self.conn.session.clone();
                let mut cmd = if self.conn.sudo {
                    Session::to_raw_command(session, "sudo -n /usr/lib/openssh/sftp-server")
                } else {
                    Session::to_subsystem(session, "sftp")
                };
                cmd.stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null());
                let mut child = cmd
                    .spawn()
                    .await
                    .map_err(|e| self.lost("cannot start sftp", e))?;
                let (Some(stdin), Some(stdout)) = (child.stdin().take(), child.stdout().take())
                else {
                    return Err(self.lost("cannot start sftp", "no pipes"));
                };
                Sftp::new_with_auxiliary(
                    stdin,
                    stdout,
                    SftpOptions::new(),
                    SftpAuxiliaryData::Boxed(Box::new(child)),
                )
                .await
                .map(Arc::new)
                .map_err(|e| Failure::Ssh {
                    host: self.name.clone(),
                    problem: SshProblem::Other,
                    message: format!("cannot start sftp: {e}"),
                    detail: Vec::new(),
                    help: "the host needs an sftp server (`Subsystem sftp` in sshd_config, \
                           /usr/lib/openssh/sftp-server for sudo)"
                        .into(),
                })
            })
            .await
            .cloned()
    }

    /// Runs `fut` (which needs the sftp session) on the runtime, honouring cancellation.
    fn with_sftp<T, F>(
        &self,
        ctx: &Ctx,
        what: &str,
        op: impl FnOnce(Arc<Sftp>) -> F,
    ) -> Result<T, Failure>
    where
        F: std::future::Future<Output = Result<T, Failure>>,
    {
        ctx.wait(what, async {
            let sftp = self.sftp().await?;
            op(sftp).await
        })?
    }

    /// Returns once the remote process `pid` no longer exists; looks first after 1 s, then less
    /// and less often (never, when the pid is unknown).
    async fn gone(&self, pid: Option<u32>) {
        let Some(pid) = pid else {
            return std::future::pending().await;
        };
        let mut interval = Duration::from_secs(1);
        loop {
            tokio::time::sleep(interval).await;
            let probe = format!("[ -d /proc/{pid} ] || kill -0 {pid} 2>/dev/null");
            if let Ok(out) = self.run_quiet(&probe).await {
                if !out.status.success() {
                    return;
                }
            }
            interval = (interval * 2).min(EXIT_POLL);
        }
    }

    /// Runs a command on the host's connection and returns its output (quietly).
    async fn run_quiet(&self, script: &str) -> Result<std::process::Output, openssh::Error> {
        Session::to_raw_command(self.conn.session.clone(), script)
            .stdin(Stdio::null())
            .output()
            .await
    }

    async fn run_remote(&self, ctx: &Ctx, cmd: &Command) -> Result<Output, Failure> {
        let started = Instant::now();
        let ran = match self.through_executor(ctx, cmd).await? {
            Some(ran) => ran,
            None => self.through_channel(ctx, cmd).await?,
        };
        self.result(cmd, ran, started)
    }

    /// Runs `cmd` through the connection's executor; `None` when this host has none.
    async fn through_executor(&self, ctx: &Ctx, cmd: &Command) -> Result<Option<Ran>, Failure> {
        let sent = executor_command(cmd, self.conn.sudo)?;
        let started = self
            .conn
            .executor
            .start(
                &self.conn.session,
                &sent.program.argv(),
                sent.dir.as_deref(),
                &sent.env,
                sent.stdin.is_some(),
            )
            .await;
        let job = match started {
            Ok(Started::Running(job)) => job,
            Ok(Started::NotStarted(what, errno, text)) => {
                return Err(Failure::Spawn {
                    host: self.name.clone(),
                    command: cmd.to_string(),
                    error: match (what.as_str(), errno) {
                        ("dir", _) => format!(
                            "working directory {} does not exist",
                            cmd.dir.as_deref().unwrap_or("")
                        ),
                        (_, 2) => format!("`{}` not found", cmd.program.name()),
                        _ => format!("cannot run `{}`: {text}", cmd.program.name()),
                    },
                })
            }
            Ok(Started::Unavailable) => return Ok(None),
            Err(why) => {
                ctx.printer.warn(&format!(
                    "{}: no command executor on the host ({why}); every command opens an ssh \
                     channel of its own, through the login shell",
                    self.name
                ));
                return Ok(None);
            }
        };
        let pgid = job.pid;
        let (from, to) = tokio::io::split(job.stream);
        tokio::spawn(executor::feed(to, sent.stdin.map(String::into_bytes)));
        let (out_in, out_pipe) = tokio::io::duplex(CHUNK);
        let (err_in, err_pipe) = tokio::io::duplex(CHUNK);
        let mut status = tokio::spawn(executor::demux(from, out_in, err_in));
        let mut out = self.reader(ctx, cmd, Some(out_pipe), Stream::Stdout);
        let mut err = self.reader(ctx, cmd, Some(err_pipe), Stream::Stderr);
        let end = {
            let exited = async {
                let exit = (&mut status).await.ok().flatten();
                out.eof().await;
                err.eof().await;
                exit
            };
            tokio::pin!(exited);
            let end = self.ended(ctx, cmd, &mut exited).await;
            let end = if let Some(end) = end {
                end
            } else {
                self.conn.executor.kill(pgid, "TERM").await;
                if tokio::time::timeout(KILL_GRACE, &mut exited).await.is_err() {
                    self.conn.executor.kill(pgid, "KILL").await;
                }
                stopped(ctx)
            };
            match end {
                End::Exited(Some(Exit::Code(code))) => Ended::Code(Some(code)),
                End::Exited(Some(Exit::Signal(_))) => Ended::Code(None),
                End::Exited(None) => {
                    let what = match self.conn.session.check().await {
                        Ok(()) => {
                            // Nothing on the host looks after the command any more.
                            let _ = self.run_quiet(&format!("kill -TERM -- -{pgid}")).await;
                            "the command executor on the host stopped (the next command starts \
                             a new one)"
                                .to_string()
                        }
                        Err(e) => e.to_string(),
                    };
                    return Err(self.lost(&format!("while running `{cmd}`"), what));
                }
                End::TimedOut => Ended::TimedOut,
                End::Cancelled => Ended::Cancelled,
            }
        };
        status.abort();
        let (stdout, stderr) = tokio::join!(out.finish(DRAIN_GRACE), err.finish(DRAIN_GRACE));
        Ok(Some(Ran {
            end,
            stdout,
            stderr,
        }))
    }

    /// Runs `cmd` as a channel of its own, through the login shell.
    async fn through_channel(&self, ctx: &Ctx, cmd: &Command) -> Result<Ran, Failure> {
        // The remote command is one string that any user of the host sees in `ps`: the
        // variables go on stdin instead, ahead of the command's own input.
        let sent = if cmd.env.is_empty() {
            cmd.clone()
        } else {
            env::via_stdin(cmd, &[])?
        };
        let script = remote_script(&sent, self.conn.sudo);
        let input = sent.stdin;
        let mut child = Session::to_raw_command(self.conn.session.clone(), &script)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|e| self.lost(&format!("cannot run `{cmd}`"), e))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin().take()) {
            tokio::spawn(async move {
                let _ = stdin.write_all(text.as_bytes()).await;
                let _ = stdin.shutdown().await;
            });
        }
        // The wrapper's first line is the remote pid, which is also its process group (sshd
        // starts each session's command in a session of its own).
        let mut stdout = child.stdout().take().map(BufReader::new);
        let mut first = String::new();
        if let Some(out) = stdout.as_mut() {
            let _ = out.read_line(&mut first).await;
        }
        let pgid: Option<u32> = first.trim().parse().ok();
        let mut out = self.reader(ctx, cmd, stdout, Stream::Stdout);
        let mut err = self.reader(ctx, cmd, child.stderr().take(), Stream::Stderr);

        // Output first, exit status second: the mux client closes its control connection as
        // soon as it has the exit message, and the master then throws away whatever output of
        // the channel it has not yet written to our pipes (openssh-mux-client `wait`, OpenSSH
        // mux.c `mux_master_control_cleanup_cb`). The pipes reach their end only once the
        // master closed the channel, so reading them to the end first loses nothing. When a
        // background process keeps them open after the command itself exited, Galley waits
        // `DRAIN_GRACE` more, then takes what it read.
        let end = {
            let exited = async {
                let drained = async {
                    out.eof().await;
                    err.eof().await;
                };
                let left = async {
                    self.gone(pgid).await;
                    tokio::time::sleep(DRAIN_GRACE).await;
                };
                tokio::select! {
                    () = drained => {}
                    () = left => {}
                }
                child.wait().await
            };
            tokio::pin!(exited);
            if let Some(end) = self.ended(ctx, cmd, &mut exited).await {
                end
            } else {
                if let Some(pgid) = pgid {
                    let _ = self.run_quiet(&format!("kill -TERM -- -{pgid}")).await;
                    if tokio::time::timeout(KILL_GRACE, &mut exited).await.is_err() {
                        let _ = self.run_quiet(&format!("kill -KILL -- -{pgid}")).await;
                    }
                }
                stopped(ctx)
            }
        };
        let end = match end {
            End::Exited(Ok(status)) => Ended::Code(status.code()),
            // The openssh crate reports exit code 127 as an error of its own.
            End::Exited(Err(openssh::Error::Remote(e)))
                if e.kind() == std::io::ErrorKind::NotFound =>
            {
                Ended::Code(Some(127))
            }
            // A signal and a lost connection look the same on a mux channel: ask the master.
            End::Exited(Err(e)) => match self.conn.session.check().await {
                Ok(()) => Ended::Code(None),
                Err(_) => return Err(self.lost(&format!("while running `{cmd}`"), e)),
            },
            End::TimedOut => Ended::TimedOut,
            End::Cancelled => Ended::Cancelled,
        };
        let (stdout, stderr) = tokio::join!(out.finish(DRAIN_GRACE), err.finish(DRAIN_GRACE));
        Ok(Ran {
            end,
            stdout,
            stderr,
        })
    }

    /// A reader that shows `pipe`'s lines under this host unless `cmd` is quiet.
    fn reader<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
        &self,
        ctx: &Ctx,
        cmd: &Command,
        pipe: Option<R>,
        stream: Stream,
    ) -> Reader {
        Reader::spawn(
            pipe,
            self.name.clone(),
            stream,
            ctx.printer.clone(),
            cmd.quiet,
        )
    }

    /// Waits for `exited`, the timeout of `cmd` or Ctrl-C; `None` when the command must be
    /// killed (then `stopped` says why).
    async fn ended<T>(
        &self,
        ctx: &Ctx,
        cmd: &Command,
        exited: &mut std::pin::Pin<&mut impl std::future::Future<Output = T>>,
    ) -> Option<End<T>> {
        let timeout = cmd.timeout.unwrap_or(Duration::from_secs(u64::MAX / 4));
        tokio::select! {
            status = exited => Some(End::Exited(status)),
            () = tokio::time::sleep(timeout) => None,
            () = ctx.cancel.cancelled() => None,
        }
    }

    /// The output of a command that ran, or the failure it is.
    fn result(&self, cmd: &Command, ran: Ran, started: Instant) -> Result<Output, Failure> {
        let output = Output::captured(None, ran.stdout, ran.stderr, Duration::ZERO);
        let stderr = output.stderr.clone();
        let code = match ran.end {
            Ended::Code(code) => code,
            Ended::TimedOut => {
                return Err(Failure::Timeout {
                    host: self.name.clone(),
                    command: cmd.to_string(),
                    after: cmd.timeout.unwrap_or_default(),
                    stderr_tail: last_lines(&stderr, STDERR_TAIL),
                })
            }
            Ended::Cancelled => {
                return Err(Failure::Interrupted {
                    what: format!("running `{cmd}` on {}", self.name),
                })
            }
        };
        // The local transport cannot start a missing program or enter a missing folder; the
        // remote shell reports the same with 127 and 126: make them the same failure.
        let not_started = match code {
            Some(126) if stderr.contains(NO_DIR) => Some(format!(
                "working directory {} does not exist",
                cmd.dir.as_deref().unwrap_or("")
            )),
            // `env K=V prog` says "No such file or directory" where the shell says "not found".
            Some(127)
                if !cmd.program.is_shell()
                    && (stderr.contains("not found")
                        || stderr.contains("No such file or directory")) =>
            {
                Some(format!("`{}` not found", cmd.program.name()))
            }
            _ => None,
        };
        if let Some(error) = not_started {
            return Err(Failure::Spawn {
                host: self.name.clone(),
                command: cmd.to_string(),
                error,
            });
        }
        Ok(Output {
            code,
            duration: started.elapsed(),
            ..output
        })
    }
}

/// Why a command was killed: Ctrl-C, else its timeout.
fn stopped<T>(ctx: &Ctx) -> End<T> {
    if ctx.cancel.is_cancelled() {
        End::Cancelled
    } else {
        End::TimedOut
    }
}

/// How waiting for a remote command ended; `T` is how its exit looked.
enum End<T> {
    Exited(T),
    TimedOut,
    Cancelled,
}

/// How a remote command ended.
enum Ended {
    /// The exit code, `None` for a signal.
    Code(Option<i32>),
    TimedOut,
    Cancelled,
}

/// A remote command's end and what it wrote.
struct Ran {
    end: Ended,
    stdout: crate::exec::stream::Captured,
    stderr: crate::exec::stream::Captured,
}

/// `cmd` as the executor runs it: with the connection's `sudo`, under `sudo -n --` and with its
/// variables on stdin (sudo resets the environment); else the variables travel in the request.
fn executor_command(cmd: &Command, sudo: bool) -> Result<Command, Failure> {
    if !sudo {
        env::check_names(&cmd.env)?;
        return Ok(cmd.clone());
    }
    let mut sent = if cmd.env.is_empty() {
        cmd.clone()
    } else {
        env::via_stdin(cmd, &[])?
    };
    sent.program = sent.program.under(["sudo", "-n", "--"]);
    Ok(sent)
}

/// The shell text that runs `cmd` on the remote side: every word quoted, so that what arrives
/// is exactly the argv the recipe gave. It first prints its pid (for timeouts and Ctrl-C).
/// Variables must already be on stdin (`env::via_stdin`).
fn remote_script(cmd: &Command, sudo: bool) -> String {
    let mut words: Vec<String> = Vec::new();
    if sudo {
        words.extend(["sudo", "-n", "--"].map(String::from));
    }
    words.extend(cmd.program.argv());
    let exec: Vec<String> = words.iter().map(|w| quote(w)).collect();
    let cd = match &cmd.dir {
        Some(dir) => format!(
            "cd -- {} 2>/dev/null || {{ echo '{NO_DIR}' >&2; exit 126; }}; ",
            quote(dir)
        ),
        None => String::new(),
    };
    format!("echo $$; {cd}exec {}", exec.join(" "))
}

/// A name beside `path` for writing before the atomic rename.
fn temp_beside(path: &str) -> String {
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (format!("{dir}/"), name),
        None => (String::new(), path),
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{dir}.{name}.galley-{}-{nanos}", std::process::id())
}

fn is_missing(e: &SftpError) -> bool {
    matches!(e, SftpError::SftpError(SftpErrorKind::NoSuchFile, _))
}

impl SshTransport {
    /// Writes `source` to `path` through a temp file beside it, fsync, then rename.
    async fn write_atomic(
        &self,
        sftp: &Sftp,
        path: &str,
        mode: Option<u32>,
        mut source: impl tokio::io::AsyncRead + Unpin,
    ) -> Result<(), Failure> {
        let err = |e| self.io_error("write", path, e);
        let mut fs = sftp.fs();
        let mode = match mode {
            Some(mode) => mode,
            None => match fs.metadata(path).await {
                Ok(meta) => meta
                    .permissions()
                    .map_or(0o644, |p| p.as_raw().bits() & 0o7777),
                Err(_) => 0o644,
            },
        };
        let tmp = temp_beside(path);
        let written = async {
            let mut file = sftp
                .options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .await?;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = source.read(&mut buf).await.map_err(SftpError::IOError)?;
                if n == 0 {
                    break;
                }
                file.write_all(&buf[..n]).await?;
            }
            if sftp.support_fsync() {
                file.sync_all().await?;
            }
            file.set_permissions(Permissions::from(mode as u16)).await?;
            file.close().await?;
            // posix-rename replaces the old file in one step: readers see old or new, never half.
            fs.rename(&tmp, path).await
        }
        .await;
        if let Err(e) = written {
            let _ = fs.remove_file(&tmp).await;
            return Err(err(e));
        }
        Ok(())
    }
}

impl Transport for SshTransport {
    fn name(&self) -> &str {
        &self.name
    }

    fn state_dir(&self, ctx: &Ctx) -> Result<String, Failure> {
        if let Some(dir) = self.state_dir.lock().expect("state dir lock").clone() {
            return Ok(dir);
        }
        let out = self.run(ctx, &Command::new(["sh", "-c", STATE_DIR_PROBE]).quiet())?;
        let dir = out.stdout.trim_end_matches('\n').to_string();
        if !out.success() || !dir.starts_with('/') {
            return Err(Failure::Other {
                message: format!(
                    "cannot find Galley's state folder on {}: the shell printed {dir:?}",
                    self.name
                ),
                help: "pass #{ state_dir: \"/absolute/path\" } to ssh::connect".into(),
            });
        }
        *self.state_dir.lock().expect("state dir lock") = Some(dir.clone());
        Ok(dir)
    }

    fn run(&self, ctx: &Ctx, cmd: &Command) -> Result<Output, Failure> {
        let _context = ctx.runtime.enter();
        ctx.runtime.block_on(self.run_remote(ctx, cmd))
    }

    fn write(
        &self,
        ctx: &Ctx,
        path: &str,
        content: &[u8],
        mode: Option<u32>,
    ) -> Result<(), Failure> {
        self.with_sftp(ctx, &format!("writing {path}"), |sftp| async move {
            self.write_atomic(&sftp, path, mode, content).await
        })
    }

    fn read(&self, ctx: &Ctx, path: &str) -> Result<Vec<u8>, Failure> {
        self.with_sftp(ctx, &format!("reading {path}"), |sftp| async move {
            let bytes = sftp
                .fs()
                .read(path)
                .await
                .map_err(|e| self.io_error("read", path, e))?;
            Ok(bytes.to_vec())
        })
    }

    fn exists(&self, ctx: &Ctx, path: &str) -> Result<bool, Failure> {
        self.with_sftp(ctx, &format!("looking for {path}"), |sftp| async move {
            match sftp.fs().symlink_metadata(path).await {
                Ok(_) => Ok(true),
                Err(e) if is_missing(&e) => Ok(false),
                Err(e) => Err(self.io_error("stat", path, e)),
            }
        })
    }

    fn mkdir(&self, ctx: &Ctx, path: &str) -> Result<(), Failure> {
        self.with_sftp(ctx, &format!("creating {path}"), |sftp| async move {
            let mut fs = sftp.fs();
            let mut prefix = PathBuf::new();
            for part in Path::new(path).components() {
                prefix.push(part);
                if fs
                    .metadata(&prefix)
                    .await
                    .is_ok_and(|m| m.file_type().is_some_and(|t| t.is_dir()))
                {
                    continue;
                }
                if let Err(e) = fs.create_dir(&prefix).await {
                    // Another process may have made it meanwhile.
                    if !fs
                        .metadata(&prefix)
                        .await
                        .is_ok_and(|m| m.file_type().is_some_and(|t| t.is_dir()))
                    {
                        return Err(self.io_error("mkdir", path, e));
                    }
                }
            }
            Ok(())
        })
    }

    fn remove(&self, ctx: &Ctx, path: &str) -> Result<(), Failure> {
        self.with_sftp(ctx, &format!("removing {path}"), |sftp| async move {
            match sftp.fs().remove_file(path).await {
                Err(e) if !is_missing(&e) => Err(self.io_error("remove", path, e)),
                _ => Ok(()),
            }
        })
    }

    fn symlink(&self, ctx: &Ctx, target: &str, link: &str) -> Result<(), Failure> {
        self.with_sftp(ctx, &format!("linking {link}"), |sftp| async move {
            let mut fs = sftp.fs();
            let tmp = temp_beside(link);
            let made = async {
                fs.symlink(target, &tmp).await?;
                fs.rename(&tmp, link).await
            }
            .await;
            if let Err(e) = made {
                let _ = fs.remove_file(&tmp).await;
                return Err(self.io_error("symlink", link, e));
            }
            Ok(())
        })
    }

    fn upload(&self, ctx: &Ctx, local: &str, remote: &str) -> Result<(), Failure> {
        let local_error = |e: std::io::Error| Failure::Io {
            host: "local".into(),
            operation: "read".into(),
            path: local.into(),
            error: e.to_string(),
        };
        let file = std::fs::File::open(local).map_err(local_error)?;
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            file.metadata().map_err(local_error)?.permissions().mode() & 0o7777
        };
        self.with_sftp(ctx, &format!("uploading {local}"), |sftp| async move {
            let source = tokio::fs::File::from_std(file);
            self.write_atomic(&sftp, remote, Some(mode), source).await
        })
    }

    fn download(&self, ctx: &Ctx, remote: &str, local: &str) -> Result<(), Failure> {
        let content = self.with_sftp(ctx, &format!("downloading {remote}"), |sftp| async move {
            let err = |e| self.io_error("download", remote, e);
            let mut file = sftp.open(remote).await.map_err(err)?;
            let mut all = Vec::new();
            let chunk = CHUNK as u32;
            while let Some(bytes) = file
                .read(chunk, bytes::BytesMut::with_capacity(chunk as usize))
                .await
                .map_err(err)?
            {
                all.extend_from_slice(&bytes);
            }
            Ok(all)
        })?;
        super::super::local::LocalTransport.write(ctx, local, &content, None)
    }

    fn forward(&self, ctx: &Ctx, port: u16) -> Result<String, Failure> {
        // The free port is found by binding 0; another program may take it before ssh does,
        // hence a few tries.
        self.tunnel(ctx, &format!("127.0.0.1:{port}"), 3, || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| format!("127.0.0.1:{}", a.port()))
                .map_err(|e| self.lost("cannot find a free local port", e))
        })
    }

    fn create_new(&self, ctx: &Ctx, path: &str, content: &[u8]) -> Result<bool, Failure> {
        if let Some((parent, _)) = path.rsplit_once('/').filter(|(p, _)| !p.is_empty()) {
            self.mkdir(ctx, parent)?;
        }
        self.with_sftp(ctx, &format!("creating {path}"), |sftp| async move {
            // The whole content first, then a hard link (fails if the name exists): a reader
            // never sees the file empty, and exactly one of two creators wins.
            let tmp = temp_beside(path);
            let mut fs = sftp.fs();
            let written = async {
                let mut file = sftp.options().write(true).create(true).open(&tmp).await?;
                file.write_all(content).await?;
                if sftp.support_fsync() {
                    file.sync_all().await?;
                }
                file.close().await
            }
            .await;
            if let Err(e) = written {
                let _ = fs.remove_file(&tmp).await;
                return Err(self.io_error("create", path, e));
            }
            let linked = fs.hard_link(&tmp, path).await;
            let _ = fs.remove_file(&tmp).await;
            match linked {
                Ok(()) => Ok(true),
                // sftp v3 has no "exists" code: tell a clash from a real failure by looking.
                Err(e) => match fs.symlink_metadata(path).await {
                    Ok(_) => Ok(false),
                    Err(_) => Err(self.io_error("create", path, e)),
                },
            }
        })
    }

    fn forward_socket(&self, ctx: &Ctx, path: &str) -> Result<String, Failure> {
        let local = format!(
            "{}.{}-{}.sock",
            self.conn.socket.display(),
            std::process::id(),
            self.conn.forwards.lock().expect("forwards lock").len()
        );
        self.tunnel(ctx, path, 1, || {
            let _ = std::fs::remove_file(&local);
            Ok(local.clone())
        })
    }
}

impl SshTransport {
    /// Opens (once per run) a local forward to `remote` (`127.0.0.1:PORT` or a socket path) and
    /// returns its local end, which `pick` chooses.
    fn tunnel(
        &self,
        ctx: &Ctx,
        remote: &str,
        tries: usize,
        pick: impl Fn() -> Result<String, Failure>,
    ) -> Result<String, Failure> {
        let mut forwards = self.conn.forwards.lock().expect("forwards lock");
        if let Some(local) = forwards.get(remote) {
            return Ok(local.clone());
        }
        let socket = |end: &str| -> Socket<'static> {
            match end
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            {
                Some((host, port)) if !end.starts_with('/') => Socket::new(host.to_string(), port),
                _ => Socket::from(PathBuf::from(end)),
            }
        };
        let mut last_error = String::new();
        for _ in 0..tries {
            let local = pick()?;
            let request = self.conn.session.request_port_forward(
                ForwardType::Local,
                socket(&local),
                socket(remote),
            );
            match ctx.wait(&format!("opening a tunnel to {remote}"), request)? {
                Ok(()) => {
                    forwards.insert(remote.to_string(), local.clone());
                    return Ok(local);
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        Err(Failure::Ssh {
            host: self.name.clone(),
            problem: SshProblem::Other,
            message: format!("cannot open a tunnel to {remote}: {last_error}"),
            detail: Vec::new(),
            help: "the host's sshd must allow it (`AllowTcpForwarding yes`, and \
                   `AllowStreamLocalForwarding yes` for sockets)"
                .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_scripts_quote_every_word() {
        let mut cmd = Command::new(["printf", "%s\n", "a b", "$(x)", "it's"]);
        cmd.dir = Some("/srv/my app".into());
        assert_eq!(
            remote_script(&cmd, false),
            "echo $$; cd -- '/srv/my app' 2>/dev/null || { echo 'galley: no such working \
             directory' >&2; exit 126; }; exec printf '%s\n' 'a b' '$(x)' 'it'\\''s'"
        );
        assert!(remote_script(&Command::new(["id"]), true).ends_with("exec sudo -n -- id"));
    }
}
