//! Commands as data and the context that runs them: the printer, dry-run, cancellation and the
//! async runtime that the blocking recipe thread borrows.

pub mod action;
pub mod mask;
pub mod output;
pub mod stream;

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use action::{Action, Command};
pub use mask::Masker;
pub use output::{OutputMode, Printer, Stream};

use crate::report::Failure;

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
            runtime: self.runtime.clone(),
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
                _ = cancel.cancelled() => Err(Failure::Interrupted { what: what.to_string() }),
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
    pub stdout: String,
    pub stderr: String,
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

    /// Whether the command exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}
