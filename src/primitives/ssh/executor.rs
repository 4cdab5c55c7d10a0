//! The executor: one small perl process per ssh connection on the host, started through the
//! login shell once (so the user's rc runs once and its PATH and variables are what commands
//! see), reached through a forward of its unix socket on the master. Commands then start
//! without a shell, an rc file or a new session each. `executor.pl` is the host's side; the
//! protocol is described at its top. docs/ssh.md says why perl.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use openssh::{ForwardType, Session, Socket, Stdio};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::exec::action::quote;

/// The host's side, sent as `perl -e` text (it holds nothing secret).
const SCRIPT: &str = include_str!("executor.pl");
/// `off` makes every command open a channel of its own, as without a usable perl.
pub const SWITCH: &str = "GALLEY_SSH_EXECUTOR";
/// Stdin goes to the executor in frames of at most this many bytes.
const FRAME: usize = 64 * 1024;

/// One connection's executor, as Galley reaches it.
pub struct Executor {
    /// The local end of the forward, beside the control socket.
    local: PathBuf,
    /// The executor's private folder on the host; its socket is `DIR/s`.
    remote_dir: String,
    /// Held while (re)starting it, so that two runs sharing the master start one.
    lock: PathBuf,
    /// Counts restarts, so that commands that failed together restart it once.
    generation: AtomicU64,
    restart: tokio::sync::Mutex<()>,
    /// Set when it cannot run on this host (or is switched off): commands use channels.
    off: AtomicBool,
}

/// A command the executor started.
pub struct Job {
    /// Its pid, which is also its process group.
    pub pid: u32,
    /// The connection its output and exit status come on, and its stdin goes on.
    pub stream: UnixStream,
}

/// What became of a command request.
pub enum Started {
    Running(Job),
    /// The working directory or the program could not be entered or run: `(what, errno, text)`.
    NotStarted(String, i32, String),
    /// No executor on this host: use a channel.
    Unavailable,
}

/// How a command the executor ran ended.
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Executor {
    /// The executor of the master behind `control` (its socket path, unique to this machine).
    pub fn new(control: &Path) -> Self {
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let hash = super::master::stable_hash(&[&control.to_string_lossy(), &host]);
        let off = std::env::var(SWITCH).is_ok_and(|v| v == "off");
        Executor {
            local: control.with_extension("x"),
            remote_dir: format!("/tmp/galley-x-{hash:016x}"),
            lock: control.with_extension("xlock"),
            generation: AtomicU64::new(0),
            restart: tokio::sync::Mutex::new(()),
            off: AtomicBool::new(off),
        }
    }

    /// Starts `argv` (in `dir`, with `env` added, reading `stdin`) through the executor,
    /// starting or restarting the executor when it does not answer. `Err` says why it could not
    /// be started and was switched off for this connection (say so once).
    pub async fn start(
        &self,
        session: &Arc<Session>,
        argv: &[String],
        dir: Option<&str>,
        env: &[(String, String)],
        stdin: bool,
    ) -> Result<Started, String> {
        let mut fields: Vec<&[u8]> = vec![
            dir.unwrap_or("").as_bytes(),
            if stdin { b"1" } else { b"0" },
        ];
        let argc = argv.len().to_string();
        fields.push(argc.as_bytes());
        fields.extend(argv.iter().map(std::string::String::as_bytes));
        for (k, v) in env {
            fields.extend([k.as_bytes(), v.as_bytes()]);
        }
        let request = encode(&fields);
        for attempt in 0..2 {
            if self.off.load(Ordering::SeqCst) {
                return Ok(Started::Unavailable);
            }
            let generation = self.generation.load(Ordering::SeqCst);
            if let Some(started) = self.try_start(&request).await {
                return Ok(started);
            }
            if attempt == 0 {
                if let Err(why) = self.revive(session, generation).await {
                    self.off.store(true, Ordering::SeqCst);
                    return Err(why);
                }
            }
        }
        self.off.store(true, Ordering::SeqCst);
        Err("it did not answer after it was started".into())
    }

    /// Sends the command request; `None` when no executor answered it.
    async fn try_start(&self, request: &[u8]) -> Option<Started> {
        let mut stream = UnixStream::connect(&self.local).await.ok()?;
        put(&mut stream, b'C', request).await.ok()?;
        match get(&mut stream).await.ok()?? {
            (b'P', pid) => Some(Started::Running(Job {
                pid: String::from_utf8_lossy(&pid).parse().ok()?,
                stream,
            })),
            (b'F', why) => {
                let why = String::from_utf8_lossy(&why).into_owned();
                let mut parts = why.splitn(3, ' ');
                let what = parts.next().unwrap_or("exec").to_string();
                let errno = parts.next().and_then(|e| e.parse().ok()).unwrap_or(0);
                let text = parts.next().unwrap_or("").to_string();
                Some(Started::NotStarted(what, errno, text))
            }
            _ => None,
        }
    }

    /// Makes the executor answer again: adds the forward when the master has none (a new
    /// master) and starts the executor when nothing listens behind it.
    async fn revive(&self, session: &Arc<Session>, seen: u64) -> Result<(), String> {
        let _one = self.restart.lock().await;
        if self.generation.load(Ordering::SeqCst) != seen {
            return Ok(());
        }
        let file = std::fs::File::create(&self.lock).map_err(|e| e.to_string())?;
        let _lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| e.to_string())?;
        match self.hello().await {
            Hello::Answered => {}
            Hello::NoForward => {
                self.launch(session).await?;
                self.forward(session).await?;
            }
            Hello::NoExecutor => self.launch(session).await?,
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn hello(&self) -> Hello {
        let Ok(mut stream) = UnixStream::connect(&self.local).await else {
            return Hello::NoForward;
        };
        if put(&mut stream, b'H', b"").await.is_err() {
            return Hello::NoExecutor;
        }
        match get(&mut stream).await {
            Ok(Some((b'H', _))) => Hello::Answered,
            _ => Hello::NoExecutor,
        }
    }

    /// Starts the executor through the login shell and waits until it listens.
    async fn launch(&self, session: &Arc<Session>) -> Result<(), String> {
        let script = format!("exec perl -e {} {}", quote(SCRIPT), quote(&self.remote_dir));
        let out = Session::to_raw_command(session.clone(), &script)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| e.to_string())?;
        if out.status.success() && out.stdout == b"ready\n" {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&out.stderr);
        let said = said.lines().last().unwrap_or("").trim();
        Err(if said.is_empty() {
            format!("perl exited with {}", out.status)
        } else {
            said.to_string()
        })
    }

    /// Forwards the local socket to the executor's on this master.
    async fn forward(&self, session: &Arc<Session>) -> Result<(), String> {
        let remote = PathBuf::from(format!("{}/s", self.remote_dir));
        // A forward this master kept from an earlier run whose local socket file was removed
        // would be taken for this one: close it first (an error just means there was none).
        let _ = session
            .close_port_forward(
                ForwardType::Local,
                Socket::from(self.local.clone()),
                Socket::from(remote.clone()),
            )
            .await;
        let _ = std::fs::remove_file(&self.local);
        session
            .request_port_forward(
                ForwardType::Local,
                Socket::from(self.local.clone()),
                Socket::from(remote),
            )
            .await
            .map_err(|e| format!("the master refused to forward its socket: {e}"))
    }

    /// Sends `signal` (`TERM`, `KILL`) to the process group `pgid` on the host.
    pub async fn kill(&self, pgid: u32, signal: &str) {
        if let Ok(mut stream) = UnixStream::connect(&self.local).await {
            if put(&mut stream, b'K', format!("{signal} {pgid}").as_bytes())
                .await
                .is_ok()
            {
                let _ = get(&mut stream).await;
            }
        }
    }

    /// Asks the executor to end now (when its master is closed at the end of the run), without
    /// the async runtime, which may be gone.
    pub fn quit(&self) {
        use std::io::{Read, Write};
        if let Ok(mut stream) = std::os::unix::net::UnixStream::connect(&self.local) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            if stream.write_all(&[b'Q', 0, 0, 0, 0]).is_ok() {
                let _ = stream.read(&mut [0u8; 1]);
            }
        }
        let _ = std::fs::remove_file(&self.local);
    }
}

enum Hello {
    Answered,
    NoForward,
    NoExecutor,
}

/// Feeds `input` to a running command as stdin frames, then its end.
pub async fn feed<W: AsyncWrite + Unpin>(mut to: W, input: Option<Vec<u8>>) {
    for chunk in input.as_deref().unwrap_or_default().chunks(FRAME) {
        if put(&mut to, b'I', chunk).await.is_err() {
            return;
        }
    }
    let _ = put(&mut to, b'E', b"").await;
}

/// Copies a running command's stdout and stderr frames to `out` and `err` until its exit
/// frame; `None` when the connection ended first (the executor or the connection died).
pub async fn demux<R, W>(mut from: R, mut out: W, mut err: W) -> Option<Exit>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        match get(&mut from).await.ok()?? {
            // The readers may have stopped (a timeout); the exit frame still matters.
            (b'O', data) => {
                let _ = out.write_all(&data).await;
            }
            (b'R', data) => {
                let _ = err.write_all(&data).await;
            }
            (b'X', end) => {
                let end = String::from_utf8_lossy(&end).into_owned();
                let (kind, number) = end.split_once(' ')?;
                let number = number.parse().ok()?;
                return Some(if kind == "s" {
                    Exit::Signal(number)
                } else {
                    Exit::Code(number)
                });
            }
            _ => return None,
        }
    }
}

/// Length-prefixed fields, as the executor's `unpack('(N/a*)*')` reads them.
fn encode(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

async fn put<W: AsyncWrite + Unpin>(to: &mut W, kind: u8, data: &[u8]) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(5 + data.len());
    frame.push(kind);
    frame.extend_from_slice(&(data.len() as u32).to_be_bytes());
    frame.extend_from_slice(data);
    to.write_all(&frame).await
}

async fn get<R: AsyncRead + Unpin>(from: &mut R) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match from.read_exact(&mut head).await {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    };
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut data = vec![0u8; len];
    from.read_exact(&mut data).await?;
    Ok(Some((head[0], data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_length_prefixed() {
        assert_eq!(
            encode(&[b"ab", b"", b"\0"]),
            [0, 0, 0, 2, b'a', b'b', 0, 0, 0, 0, 0, 0, 0, 1, 0]
        );
    }
}
