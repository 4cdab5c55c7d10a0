//! `galley check FILE...`: syntax, imports and unknown functions, with no side effects.

use std::path::PathBuf;

use super::{inspecting, print_report, run::libraries_in_sync, EXIT_OK, EXIT_USAGE};
use crate::engine::check::{check_imports, unknown_calls};
use crate::engine::Galley;
use crate::exec::OutputMode;

pub fn check(files: &[PathBuf], locked: bool, mode: OutputMode) -> i32 {
    let (ctx, _runtime) = inspecting(mode);
    let mut problems = 0;
    for file in files {
        let galley = Galley::inspecting(&ctx);
        let mut reports = Vec::new();
        if let Err(report) = libraries_in_sync(file, locked) {
            reports.push(report);
        }
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
