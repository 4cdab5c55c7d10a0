//! `parallel` and `rolling`: run a closure for every host (or any item) on threads of its own,
//! each host going through its whole pipeline without waiting for the others, then print a
//! summary table of who succeeded, how long it took and why it failed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext};

use super::host::Host;
use super::options::Opts;
use crate::exec::output::{Outcome, SummaryRow};
use crate::exec::Ctx;
use crate::report::Failure;

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// Marks the frame that says on which item a fan-out failed (see `report::from_rhai`).
pub const ITEM_FRAME: &str = "\u{1}fanout\u{1}";

/// What happened to one item.
struct Done {
    result: RhaiResult<Dynamic>,
    took: Duration,
}

/// How a host or other item is named in output and reports.
fn label(item: &Dynamic) -> String {
    match item.clone().try_cast::<Host>() {
        Some(host) => host.name().to_string(),
        None => item.to_string(),
    }
}

/// The error a call chain ends in (the call frames around it stripped).
pub fn innermost(err: &EvalAltResult) -> &EvalAltResult {
    let mut current = err;
    while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _) = current {
        current = inner;
    }
    current
}

/// The one-line reason of a failure, for the summary table.
pub fn reason(err: &EvalAltResult) -> String {
    let text = match innermost(err) {
        EvalAltResult::ErrorRuntime(value, _) => match value.clone().try_cast::<Failure>() {
            Some(failure) => failure.to_string(),
            None => value.to_string(),
        },
        other => other.to_string(),
    };
    text.lines().next().unwrap_or_default().to_string()
}

/// Runs `f` for each of `items`, at most `limit` at a time, each on its own thread.
fn run_all(call: &NativeCallContext, items: &[Dynamic], f: &FnPtr, limit: usize) -> Vec<Done> {
    // Marked volatile (not deprecated) by Rhai; it is the way to call a closure from other threads.
    #[allow(deprecated)]
    let store = call.store_data();
    let engine = call.engine();
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<Done>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..limit.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                #[allow(deprecated)]
                let context = store.create_context(engine);
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    let started = Instant::now();
                    let result = f.call_within_context::<Dynamic>(&context, (item.clone(),));
                    let took = started.elapsed();
                    done.lock().expect("results lock")[i] = Some(Done { result, took });
                }
            });
        }
    });
    done.into_inner()
        .expect("results lock")
        .into_iter()
        .map(|d| d.expect("every item ran"))
        .collect()
}

/// Prints the table and turns the results into the closure's values, or the first failure.
fn finish(
    ctx: &Ctx,
    call: &NativeCallContext,
    title: &str,
    items: &[Dynamic],
    done: Vec<Option<Done>>,
    tolerated: usize,
) -> RhaiResult<Array> {
    let mut rows = Vec::new();
    let mut values = Array::new();
    let mut failures: Vec<(String, Box<EvalAltResult>)> = Vec::new();
    for (item, done) in items.iter().zip(done) {
        let name = label(item);
        match done {
            None => {
                rows.push(SummaryRow {
                    name,
                    outcome: Outcome::Skipped,
                    took: None,
                    note: "not started: an earlier batch failed".into(),
                });
                values.push(Dynamic::UNIT);
            }
            Some(Done {
                result: Ok(value),
                took,
            }) => {
                rows.push(SummaryRow {
                    name,
                    outcome: Outcome::Ok,
                    took: Some(took),
                    note: String::new(),
                });
                values.push(value);
            }
            Some(Done {
                result: Err(err),
                took,
            }) => {
                let interrupted = ctx.cancel.is_cancelled();
                rows.push(SummaryRow {
                    name: name.clone(),
                    outcome: if interrupted {
                        Outcome::Interrupted
                    } else {
                        Outcome::Failed
                    },
                    took: Some(took),
                    note: reason(&err),
                });
                values.push(Dynamic::UNIT);
                failures.push((name, err));
            }
        }
    }
    ctx.printer.summary(title, &rows);
    let skipped = rows.iter().any(|r| r.outcome == Outcome::Skipped);
    if failures.is_empty() || (failures.len() <= tolerated && !skipped) {
        return Ok(values);
    }
    let names: Vec<&str> = failures.iter().map(|(n, _)| n.as_str()).collect();
    let summary = format!(
        "{} of {} failed ({})",
        failures.len(),
        items.len(),
        names.join(", ")
    );
    let (name, err) = failures.swap_remove(0);
    // The first failure is the report; a frame names its item and how many others failed.
    Err(Box::new(EvalAltResult::ErrorInFunctionCall(
        format!("{ITEM_FRAME}{name}{ITEM_FRAME}{summary}"),
        String::new(),
        err,
        call.call_position(),
    )))
}

fn parallel(ctx: &Ctx, call: NativeCallContext, items: Array, f: FnPtr) -> RhaiResult<Array> {
    let done = run_all(&call, &items, &f, ctx.max_parallel);
    finish(
        ctx,
        &call,
        "parallel",
        &items,
        done.into_iter().map(Some).collect(),
        0,
    )
}

fn rolling(
    ctx: &Ctx,
    call: NativeCallContext,
    items: Array,
    opts: Map,
    f: FnPtr,
) -> RhaiResult<Array> {
    let opts =
        Opts::new("rolling", opts, &["batch", "max_failures"]).map_err(Failure::into_rhai)?;
    let batch = opts
        .int("batch")
        .map_err(Failure::into_rhai)?
        .unwrap_or(1)
        .max(1) as usize;
    let tolerated = opts
        .int("max_failures")
        .map_err(Failure::into_rhai)?
        .unwrap_or(0)
        .max(0) as usize;
    let mut done: Vec<Option<Done>> = Vec::new();
    let mut failed = 0;
    for (n, chunk) in items.chunks(batch).enumerate() {
        if failed > tolerated || ctx.cancel.is_cancelled() {
            break;
        }
        ctx.printer.step_start(&format!(
            "batch {} of {}: {}",
            n + 1,
            items.len().div_ceil(batch),
            chunk.iter().map(label).collect::<Vec<_>>().join(", ")
        ));
        let results = run_all(&call, chunk, &f, ctx.max_parallel.min(batch));
        failed += results.iter().filter(|d| d.result.is_err()).count();
        done.extend(results.into_iter().map(Some));
    }
    done.resize_with(items.len(), || None);
    finish(ctx, &call, "rolling", &items, done, tolerated)
}

/// Registers `parallel` and `rolling`.
pub fn register(engine: &mut rhai::Engine, ctx: &Arc<Ctx>) {
    let c = ctx.clone();
    engine.register_fn(
        "parallel",
        move |call: NativeCallContext, items: Array, f: FnPtr| parallel(&c, call, items, f),
    );
    let c = ctx.clone();
    engine.register_fn(
        "rolling",
        move |call: NativeCallContext, items: Array, opts: Map, f: FnPtr| {
            rolling(&c, call, items, opts, f)
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "rolling",
        move |call: NativeCallContext, items: Array, f: FnPtr| {
            rolling(&c, call, items, Map::new(), f)
        },
    );
}
