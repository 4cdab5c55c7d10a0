//! `galley check FILE...`: syntax, imports and unknown functions, with no side effects.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{print_report, EXIT_OK, EXIT_USAGE};
use crate::engine::check::{check_imports, unknown_calls};
use crate::engine::Galley;
use crate::exec::{Ctx, Masker, OutputMode, Printer};

/// A dry-run context for commands that must not act (check, list), and its runtime.
pub fn quiet_ctx(mode: OutputMode) -> (Arc<Ctx>, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let ctx = Arc::new(Ctx {
        printer: Printer::new(mode, Masker::default()),
        dry_run: true,
        cancel: CancellationToken::new(),
        runtime: runtime.handle().clone(),
    });
    (ctx, runtime)
}

pub fn check(files: &[PathBuf], mode: OutputMode) -> i32 {
    let (ctx, _runtime) = quiet_ctx(mode);
    let mut problems = 0;
    for file in files {
        let galley = Galley::new(
            &ctx,
            Default::default(),
            crate::engine::DEFAULT_MAX_OPERATIONS,
            false,
        );
        let mut reports = Vec::new();
        match galley.compile(file) {
            Err(report) => reports.push(report),
            Ok(recipe) => {
                if let Err(report) = check_imports(&galley, &recipe) {
                    reports.push(report);
                }
                reports.extend(unknown_calls(&galley, &recipe));
            }
        }
        if reports.is_empty() && mode != OutputMode::Json {
            println!("ok: {}", file.display());
        }
        problems += reports.len();
        for report in reports {
            print_report(&report, mode, ctx.printer.masker());
        }
    }
    if problems == 0 {
        EXIT_OK
    } else {
        EXIT_USAGE
    }
}
