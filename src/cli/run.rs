//! `galley run FILE [TASK]`.

use std::sync::Arc;
use std::time::Instant;

use rhai::{CallFnOptions, Scope};
use tokio_util::sync::CancellationToken;

use super::{print_report, RunArgs, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE};
use crate::engine::{tasks, Galley};
use crate::exec::{Ctx, Masker, Printer};
use crate::primitives::values::{params_from, SecretsFile};
use crate::report::Report;

pub fn run(args: RunArgs) -> i32 {
    let mode = args.output.output;
    let masker = Masker::default();
    let usage = |report: Report| {
        print_report(&report, mode, &masker);
        EXIT_USAGE
    };
    let params = match params_from(&args.set) {
        Ok(p) => p,
        Err(e) => return usage(Report::plain("galley::usage", e, "write --set key=value")),
    };
    let secrets = match &args.secrets {
        Some(path) => match SecretsFile::load(&path.to_string_lossy()) {
            Ok(s) => s,
            Err(f) => return usage(Report::plain(f.code(), f.to_string(), f.help())),
        },
        None => SecretsFile::default(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage(Report::plain("galley::runtime", format!("cannot start: {e}"), "")),
    };
    let cancel = CancellationToken::new();
    let ctx = Arc::new(Ctx {
        printer: Printer::new(mode, masker.clone()),
        dry_run: args.dry_run,
        cancel: cancel.clone(),
        runtime: runtime.handle().clone(),
    });
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
            // A second Ctrl-C means "now": do not wait for cleanup.
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(EXIT_INTERRUPTED);
            }
        }
    });

    let galley = Galley::new(&ctx, params, secrets, args.max_operations, true);
    let recipe = match galley.compile(&args.file) {
        Ok(r) => r,
        Err(report) => return usage(report),
    };
    if let Some(task) = &args.task {
        let known = tasks(&recipe.ast);
        if !known.iter().any(|(name, params, _)| name == task && params.is_empty()) {
            let names: Vec<&str> = known.iter().filter(|t| t.1.is_empty()).map(|t| t.0.as_str()).collect();
            let near = crate::report::suggest(task, names.iter().copied())
                .map(|n| format!("did you mean `{n}`? "))
                .unwrap_or_default();
            return usage(Report::plain(
                "galley::unknown_task",
                format!("{} has no task `{task}`", args.file.display()),
                format!("{near}tasks: {} (see `galley list {}`)", names.join(", "), args.file.display()),
            ));
        }
    }

    let started = Instant::now();
    let mut scope = Scope::new();
    let mut result = galley.engine.run_ast_with_scope(&mut scope, &recipe.ast);
    if let (Ok(()), Some(task)) = (&result, &args.task) {
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        result = galley
            .engine
            .call_fn_with_options::<rhai::Dynamic>(options, &mut scope, &recipe.ast, task, ())
            .map(|_| ());
    }
    let code = match result {
        Ok(()) => {
            ctx.printer.finished(true, started.elapsed());
            EXIT_OK
        }
        Err(err) => {
            let report = galley.report(&err, &recipe.key, Some(&recipe.ast));
            ctx.printer.finished(false, started.elapsed());
            print_report(&report, mode, &masker);
            if ctx.cancel.is_cancelled() {
                EXIT_INTERRUPTED
            } else if report.code() == "galley::syntax" {
                EXIT_USAGE
            } else {
                EXIT_FAILED
            }
        }
    };
    runtime.shutdown_background();
    code
}
