//! `galley run FILE [TASK]`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{print_report, RunArgs, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE};
use crate::engine::tasks::unknown_task;
use crate::engine::Galley;
use crate::error::Code;
use crate::exec::{Ctx, Masker, Printer};
use crate::primitives::values::{params_from, RunInputs, SecretsFile};
use crate::report::Report;
use rhai::Map;

pub fn run(args: RunArgs) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            print_report(
                &Report::plain(Code::Runtime, format!("cannot start: {e}"), ""),
                args.output.mode(),
                &Masker::default(),
            );
            return EXIT_USAGE;
        }
    };
    let cancel = CancellationToken::new();
    // The handler is installed now, before the recipe starts, so no Ctrl-C can slip past it.
    interrupt_on_ctrl_c(&runtime, cancel.clone());
    let code = execute(&args, runtime.handle(), cancel, Shared::default()).code;
    runtime.shutdown_background();
    code
}

/// Cancels `cancel` on the first Ctrl-C (or SIGTERM, as a CI job's cancel sends); a second one
/// exits at once.
pub fn interrupt_on_ctrl_c(runtime: &tokio::runtime::Runtime, cancel: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let _context = runtime.enter();
    if let Ok(mut sigterm) = signal(SignalKind::terminate()) {
        let cancel = cancel.clone();
        runtime.spawn(async move {
            if sigterm.recv().await.is_some() {
                cancel.cancel();
                if sigterm.recv().await.is_some() {
                    std::process::exit(EXIT_INTERRUPTED);
                }
            }
        });
    }
    let sigint = signal(SignalKind::interrupt());
    if let Ok(mut sigint) = sigint {
        runtime.spawn(async move {
            if sigint.recv().await.is_some() {
                cancel.cancel();
                // A second Ctrl-C means "now": do not wait for cleanup.
                if sigint.recv().await.is_some() {
                    std::process::exit(EXIT_INTERRUPTED);
                }
            }
        });
    }
}

/// Compiles on a thread of its own while this one watches for Ctrl-C/SIGTERM, so that even a
/// compile that cannot stop between chunks (one huge statement) ends the run at once; the
/// compile left behind finishes unobserved.
fn compile_or_cancel(
    galley: &Arc<Galley>,
    file: &std::path::Path,
    cancel: &CancellationToken,
) -> Result<crate::engine::Recipe, Report> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (g, f) = (galley.clone(), file.to_path_buf());
    std::thread::spawn(move || {
        let _ = tx.send(g.compile(&f));
    });
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(50)) {
            Ok(result) => return result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if cancel.is_cancelled() => {
                return Err(crate::engine::interrupted_compile())
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Report::plain(
                    Code::Bug,
                    "the compile of the recipe stopped without a result",
                    "this is a bug in Galley, not in your recipe; please report it",
                ))
            }
        }
    }
}

/// With `--locked` (or CI=true): a report unless the recipe's galley.toml and galley.lock agree.
pub fn libraries_in_sync(recipe: &std::path::Path, locked: bool) -> Result<(), Report> {
    if !crate::libs::locked_mode(locked) {
        return Ok(());
    }
    let dir = std::path::absolute(recipe)
        .ok()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_default();
    match crate::libs::Project::find(&dir) {
        Ok(Some(project)) => project.require_in_sync().map_err(|e| e.report()),
        Ok(None) => Ok(()),
        Err(e) => Err(e.report()),
    }
}

/// How a run ended.
pub struct Ended {
    pub code: i32,
    /// The recipe and the modules it imported, for watch mode to watch.
    pub sources: Vec<String>,
    /// Paths the recipe declared with `watch([...])`.
    pub watch: Vec<String>,
}

impl Ended {
    /// A run that ended before the recipe ran.
    fn early(code: i32, sources: Vec<String>) -> Self {
        Ended {
            code,
            sources,
            watch: Vec::new(),
        }
    }
}

/// What watch mode hands to each run (a plain `galley run` takes the defaults).
#[derive(Default)]
pub struct Shared {
    /// Params added to `--set`'s.
    pub extra: Map,
    /// Collects the paths the recipe declares with `watch(...)`.
    pub watch: Option<Arc<Mutex<Vec<String>>>>,
    /// Collects the local paths the run writes (watch mode ignores them).
    pub written: Option<Arc<Mutex<Vec<String>>>>,
    /// The secrets to mask: watch mode shares one masker with every run, so that its own lines
    /// hide what the runs learnt is secret.
    pub masker: Masker,
}

/// Runs the recipe once.
pub fn execute(
    args: &RunArgs,
    runtime: &tokio::runtime::Handle,
    cancel: CancellationToken,
    shared: Shared,
) -> Ended {
    let printer = Printer::new(args.output.mode(), shared.masker.clone());
    let fail_early = |report: Report, sources: Vec<String>| {
        printer.report(&report);
        printer.close("failed");
        Ended::early(EXIT_USAGE, sources)
    };
    let inputs = match run_inputs(args, shared.extra, &shared.masker) {
        Ok(inputs) => inputs,
        Err(report) => return fail_early(report, Vec::new()),
    };
    let declared = shared.watch.unwrap_or_default();
    let ctx = run_context(
        args,
        runtime,
        &printer,
        cancel.clone(),
        declared.clone(),
        shared.written.unwrap_or_default(),
    );
    let galley = Arc::new(Galley::new(&ctx, inputs, args.max_operations, true));
    let recipe = compile_or_cancel(&galley, &args.file, &cancel);
    let sources = galley.sources.files();
    let recipe = match recipe {
        Ok(r) => r,
        Err(report) if cancel.is_cancelled() => {
            print_report(&report, args.output.mode(), &shared.masker);
            return Ended::early(EXIT_INTERRUPTED, sources);
        }
        Err(report) => return fail_early(report, sources),
    };
    if let Err(report) = known_task(args, &galley, &recipe) {
        return fail_early(report, sources);
    }
    let started = Instant::now();
    ctx.printer
        .run_start(&ctx.run.recipe, &ctx.run.task, ctx.dry_run);
    let ast = match with_task_call(args, &galley, &recipe) {
        Ok(ast) => ast,
        Err(report) => return fail_early(report, sources),
    };
    let code = run_recipe(args, &ctx, &galley, &recipe, &ast, started);
    Ended {
        code,
        // Modules imported while running are sources too.
        sources: galley.sources.files(),
        watch: declared.lock().map(|w| w.clone()).unwrap_or_default(),
    }
}

/// The `--set` params with `extra`, and the secrets file, each of whose values is masked
/// (and in GitHub Actions registered with `::add-mask::`) before anything is printed, whether or
/// not the recipe reads it. With `--locked`, the libraries must agree with galley.lock.
fn run_inputs(args: &RunArgs, extra: Map, masker: &Masker) -> Result<RunInputs, Report> {
    let mut params = params_from(&args.set)
        .map_err(|e| Report::plain(Code::Usage, e, "write --set key=value"))?;
    params.extend(extra);
    let secrets = secrets_file(args, masker)?;
    libraries_in_sync(&args.file, args.locked.locked)?;
    let recipe_dir = std::path::absolute(&args.file)
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_string_lossy().into_owned()))
        .unwrap_or_else(|| ".".into());
    Ok(RunInputs {
        params,
        task: args.task.clone().unwrap_or_default(),
        recipe_dir,
        secrets,
    })
}

/// The `--secrets` file (empty without one), its values added to `masker`.
pub fn secrets_file(args: &RunArgs, masker: &Masker) -> Result<SecretsFile, Report> {
    let secrets = match &args.secrets {
        Some(path) => {
            SecretsFile::load(&path.to_string_lossy()).map_err(|f| Report::failure(&f))?
        }
        None => SecretsFile::default(),
    };
    for value in secrets.values() {
        masker.add(value);
    }
    Ok(secrets)
}

/// The context every primitive of this run shares.
fn run_context(
    args: &RunArgs,
    runtime: &tokio::runtime::Handle,
    printer: &Printer,
    cancel: CancellationToken,
    watch: Arc<Mutex<Vec<String>>>,
    written: Arc<Mutex<Vec<String>>>,
) -> Arc<Ctx> {
    Arc::new(Ctx {
        printer: printer.clone(),
        dry_run: args.dry_run,
        cancel,
        max_parallel: args.max_parallel as usize,
        watch,
        written,
        run: crate::exec::RunInfo {
            recipe: std::path::absolute(&args.file)
                .unwrap_or_else(|_| args.file.clone())
                .to_string_lossy()
                .into_owned(),
            task: args.task.clone().unwrap_or_default(),
            params: args
                .set
                .iter()
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .collect(),
            force_unlock: args.force_unlock,
            diff: args.diff,
            notify: args
                .notify
                .iter()
                .filter(|u| !u.trim().is_empty())
                .cloned()
                .collect(),
            libraries: Default::default(),
        },
        runtime: runtime.clone(),
    })
}

/// A report unless the recipe has a function the task named on the command line can call.
fn known_task(
    args: &RunArgs,
    galley: &Galley,
    recipe: &crate::engine::Recipe,
) -> Result<(), Report> {
    let Some(task) = &args.task else {
        return Ok(());
    };
    let file = args.file.display().to_string();
    let text = galley.text(recipe);
    match unknown_task(&galley.engine, &recipe.ast, &text, &file, task) {
        Some(report) => Err(report),
        None => Ok(()),
    }
}

/// The recipe with the task call appended: both run as one script, so that the task sees the
/// top level's `const`s as `global::NAME` just as a call from the top level would.
fn with_task_call(
    args: &RunArgs,
    galley: &Galley,
    recipe: &crate::engine::Recipe,
) -> Result<rhai::AST, Report> {
    match &args.task {
        Some(task) => match galley.engine.compile(format!("{task}();")) {
            Ok(call) => Ok(recipe.ast.merge(&call)),
            Err(e) => Err(Report::plain(Code::Usage, e.to_string(), "")),
        },
        None => Ok(recipe.ast.clone()),
    }
}

/// Runs `ast`, prints how it ended (and the report of a failure); returns the exit code.
fn run_recipe(
    args: &RunArgs,
    ctx: &Ctx,
    galley: &Galley,
    recipe: &crate::engine::Recipe,
    ast: &rhai::AST,
    started: Instant,
) -> i32 {
    let result = galley.engine.run_ast(ast);
    let mut err = match result {
        Ok(()) => {
            ctx.printer.finished(true, started.elapsed());
            ctx.printer.close("ok");
            return EXIT_OK;
        }
        Err(err) => *err,
    };
    if args.task.is_some() {
        // The outermost frame is the appended task call, which has no place in the recipe.
        if let rhai::EvalAltResult::ErrorInFunctionCall(_, _, inner, _) = err {
            err = *inner;
        }
    }
    let report = galley.report(&err, &recipe.key, Some(&recipe.ast));
    if ctx.cancel.is_cancelled() {
        ctx.printer.interrupted(started.elapsed());
    } else {
        ctx.printer.finished(false, started.elapsed());
    }
    ctx.printer.report(&report);
    if ctx.cancel.is_cancelled() {
        ctx.printer.close("interrupted");
        EXIT_INTERRUPTED
    } else {
        ctx.printer.close("failed");
        report.exit().code()
    }
}
