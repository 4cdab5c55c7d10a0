//! Commands as data and the context that runs them: the printer, dry-run, cancellation and the
//! async runtime that the blocking recipe thread borrows.

pub mod action;
pub mod diff;
pub mod docker;
pub mod env;
pub mod github;
pub mod mask;
pub mod output;
pub mod stream;

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use action::{Action, Command, Program};
pub use mask::Masker;
pub use output::{OutputMode, Printer, Stream};

use crate::error::Failure;

/// What every primitive shares during one run.
pub struct Ctx {
    /// Where output goes.
    pub printer: Printer,
    /// Print actions instead of performing them.
    pub dry_run: bool,
    /// Set by Ctrl-C (or by watch mode); every wait observes it.
    pub cancel: CancellationToken,
    /// How many hosts `parallel` and `rolling` work on at once.
    pub max_parallel: usize,
    /// What this run is: recipe, task, params (for the deploy journal and locks).
    pub run: RunInfo,
    /// Paths the recipe asked `galley watch` to watch, with `watch([...])`.
    pub watch: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Local paths this run writes (files, links, folders it creates, service pidfiles and logs),
    /// as absolute paths, and folders it changes throughout (git checkouts), ending in `/`:
    /// `galley watch` ignores changes there, so a run never triggers itself.
    pub written: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The runtime whose clients (process, http) the primitives drive.
    pub runtime: tokio::runtime::Handle,
}

/// What the command line asked for, as the deploy journal records it.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    /// The recipe file, absolute.
    pub recipe: String,
    /// The task named on the command line ("" for none).
    pub task: String,
    /// The `--set` values.
    pub params: Vec<(String, String)>,
    /// `--force-unlock`: take deploy locks even when another deploy holds them.
    pub force_unlock: bool,
    /// `--diff` (with `--dry-run`): show what each write would change.
    pub diff: bool,
    /// `--notify` webhooks: each gets a summary of every deploy.
    pub notify: Vec<String>,
    /// The libraries the recipe loaded, as `team @ 3f2c9d0`.
    pub libraries: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Ctx {
    /// A copy of this context that no Ctrl-C stops: for releasing locks and writing the journal
    /// after a run was interrupted.
    pub fn uncancelled(&self) -> Ctx {
        Ctx {
            printer: self.printer.clone(),
            dry_run: self.dry_run,
            cancel: CancellationToken::new(),
            max_parallel: self.max_parallel,
            run: self.run.clone(),
            watch: self.watch.clone(),
            written: self.written.clone(),
            runtime: self.runtime.clone(),
        }
    }

    /// Records that this run writes the local `path` (see `written`).
    pub fn wrote(&self, path: &str) {
        self.record_written(path, "");
    }

    /// Records that this run changes anything inside the local folder `dir` (see `written`).
    pub fn wrote_inside(&self, dir: &str) {
        self.record_written(dir, "/");
    }

    fn record_written(&self, path: &str, suffix: &str) {
        let path = std::path::absolute(path)
            .map_or_else(|_| path.to_string(), |p| p.to_string_lossy().into_owned());
        let path = format!("{}{suffix}", path.trim_end_matches('/'));
        let mut written = self.written.lock().expect("written lock");
        if !written.contains(&path) {
            written.push(path);
        }
    }

    /// Runs `fut` to completion on the runtime, or fails with `Interrupted` when the run is cancelled.
    pub fn wait<F: Future>(&self, what: &str, fut: F) -> Result<F::Output, Failure> {
        // Futures such as timers must be created inside the runtime's context.
        let _context = self.runtime.enter();
        let cancel = self.cancel.clone();
        self.runtime.block_on(async move {
            tokio::select! {
                out = fut => Ok(out),
                () = cancel.cancelled() => Err(Failure::Interrupted { what: what.to_string() }),
            }
        })
    }

    /// Sleeps unless the run is cancelled first.
    pub fn sleep(&self, duration: Duration) -> Result<(), Failure> {
        self.wait(
            "sleeping",
            async move { tokio::time::sleep(duration).await },
        )
    }
}

/// What a finished command returned.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// What the command wrote on stdout (lossy when it was not UTF-8: see `stdout_bytes`).
    pub stdout: String,
    pub stderr: String,
    /// The exact bytes of stdout when they are not valid UTF-8 (`stdout` is then lossy).
    pub stdout_bytes: Option<Vec<u8>>,
    pub stderr_bytes: Option<Vec<u8>>,
    /// Whether a stream wrote more than `stream::KEEP_LIMIT` bytes, of which only the first were kept.
    pub truncated: bool,
    pub duration: Duration,
}

impl Output {
    /// The result of an action that succeeded and printed nothing.
    pub fn ok() -> Self {
        Output {
            code: Some(0),
            ..Output::default()
        }
    }

    /// The result of a command that exited with `code` after writing `stdout` and `stderr`.
    pub fn captured(
        code: Option<i32>,
        stdout: stream::Captured,
        stderr: stream::Captured,
        duration: Duration,
    ) -> Self {
        let truncated = stdout.truncated || stderr.truncated;
        let (stdout, stdout_bytes) = stdout.into_text();
        let (stderr, stderr_bytes) = stderr.into_text();
        Output {
            code,
            stdout,
            stderr,
            stdout_bytes,
            stderr_bytes,
            truncated,
            duration,
        }
    }

    /// Whether the command exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}
