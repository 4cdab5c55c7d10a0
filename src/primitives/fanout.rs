//! `parallel` and `rolling`: run a closure for every host (or any item) on threads of its own,
//! each host going through its whole pipeline without waiting for the others, then print a
//! summary table of who succeeded, how long it took and why it failed.
//!
//! Each item runs on its own deep copy of the closure and of everything it captures (see
//! `detach`): Rhai keeps a captured variable in one locked cell, and two threads calling into the
//! same cell is a data race. So a write to a captured variable inside an item is that item's own:
//! other items and the code after the fan-out do not see it; results come back as return values.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext};

use super::host::Host;
use super::options::{bad_value, Opts};
use crate::api::{opt, Api, OptionSpec, Spec, Type};
use crate::error::{reason, Failure, ItemFailure, RhaiResult};
use crate::exec::output::{Outcome, SummaryRow};
use crate::exec::Ctx;

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

/// A deep copy of `value` that shares no cell with the original: every captured (shared) value
/// in it — inside arrays, maps and the captures of closures, at any depth — gets a cell of its own.
pub fn detach(value: &Dynamic) -> Dynamic {
    let shared = value.is_shared();
    let inner = value.flatten_clone();
    let copy = if inner.is_array() {
        let items: Array = inner.cast::<Array>().iter().map(detach).collect();
        Dynamic::from_array(items)
    } else if inner.is_map() {
        let map: Map = inner
            .cast::<Map>()
            .iter()
            .map(|(k, v)| (k.clone(), detach(v)))
            .collect();
        Dynamic::from_map(map)
    } else if inner.is_fnptr() {
        Dynamic::from(detach_fn(&inner.cast::<FnPtr>()))
    } else {
        inner
    };
    if shared {
        copy.into_shared()
    } else {
        copy
    }
}

/// A closure whose captured variables are deep copies (see `detach`).
pub fn detach_fn(f: &FnPtr) -> FnPtr {
    let mut copy = f.clone();
    let curry: Vec<Dynamic> = f.iter_curry().map(detach).collect();
    copy.set_curry(curry);
    copy
}

/// Runs `f` for each of `items`, at most `limit` at a time, each on its own thread and with its
/// own copy of the closure and the item.
fn run_all(call: &NativeCallContext, items: &[Dynamic], f: &FnPtr, limit: usize) -> Vec<Done> {
    // Marked volatile (not deprecated) by Rhai; it is the way to call a closure from other threads.
    #[allow(deprecated)]
    let store = call.store_data();
    let engine = call.engine();
    // Copied here, before any thread starts, while nothing else touches the cells.
    let work: Vec<(FnPtr, Dynamic)> = items
        .iter()
        .map(|item| (detach_fn(f), detach(item)))
        .collect();
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<Done>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..limit.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                #[allow(deprecated)]
                let context = store.create_context(engine);
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((f, item)) = work.get(i) else { break };
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

/// Prints the summary table; the values of the items that succeeded, and the failures by item.
fn tally(
    ctx: &Ctx,
    title: &str,
    items: &[Dynamic],
    done: Vec<Option<Done>>,
) -> (Array, Vec<(String, Box<EvalAltResult>)>, bool) {
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
    (values, failures, skipped)
}

/// Prints the table and turns the results into the closure's values or an error: the first
/// failure when the fan-out stopped (more than `tolerated` failed), `Failure::Partial` when it
/// went on past failures it tolerated — a run that left an item behind never ends as success.
fn finish(
    ctx: &Ctx,
    call: &NativeCallContext,
    title: &str,
    items: &[Dynamic],
    done: Vec<Option<Done>>,
    tolerated: usize,
) -> RhaiResult<Array> {
    let (values, mut failures, skipped) = tally(ctx, title, items, done);
    if failures.is_empty() {
        return Ok(values);
    }
    if failures.len() <= tolerated && !skipped {
        let failed = failures
            .iter()
            .map(|(name, err)| (name.clone(), reason(err)))
            .collect();
        return Err(super::at_call(
            call,
            Failure::Partial {
                what: title.to_string(),
                failed,
                total: items.len(),
                tolerated,
            },
        ));
    }
    let names: Vec<&str> = failures.iter().map(|(n, _)| n.as_str()).collect();
    let summary = format!(
        "{} of {} failed ({})",
        failures.len(),
        items.len(),
        names.join(", ")
    );
    let failed = names.iter().map(std::string::ToString::to_string).collect();
    let (item, error) = failures.swap_remove(0);
    // The first failure is the report; it says on which item, and how many others failed.
    Err(super::at_call(
        call,
        Failure::Item(ItemFailure {
            item,
            summary,
            failed,
            error: error.into(),
        }),
    ))
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

/// How many failed items a rollout goes on past: `max_failures` as a count, or as a share of
/// the items ("25%", rounded down).
fn tolerance(opts: &Opts, total: usize) -> Result<usize, Failure> {
    let Some(value) = opts.get("max_failures") else {
        return Ok(0);
    };
    if let Ok(count) = value.as_int() {
        return Ok(count.max(0) as usize);
    }
    let share = value
        .clone()
        .into_string()
        .ok()
        .and_then(|t| t.trim().strip_suffix('%').map(|p| p.trim().parse::<f64>()))
        .and_then(Result::ok)
        .filter(|p| (0.0..=100.0).contains(p));
    match share {
        Some(percent) => Ok((total as f64 * percent / 100.0).floor() as usize),
        None => Err(bad_value(
            "rolling",
            "option `max_failures`",
            "a count (1) or a share of the items (\"25%\")",
            value,
        )),
    }
}

/// A closure option, if given.
fn closure(opts: &Opts, key: &str) -> Result<Option<FnPtr>, Failure> {
    match opts.get(key) {
        None => Ok(None),
        Some(v) => v.clone().try_cast::<FnPtr>().map(Some).ok_or_else(|| {
            bad_value(
                "rolling",
                &format!("option `{key}`"),
                "a closure taking the batch's items (|items| ...)",
                v,
            )
        }),
    }
}

fn rolling(
    ctx: &Ctx,
    call: NativeCallContext,
    items: Array,
    opts: Map,
    f: FnPtr,
) -> RhaiResult<Array> {
    let opts = Opts::new("rolling", opts, ROLLING_OPTIONS)?;
    let batch = opts.int("batch")?.unwrap_or(1).max(1) as usize;
    let tolerated = tolerance(&opts, items.len())?;
    let before = closure(&opts, "before")?;
    let after = closure(&opts, "after")?;
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
        if let Some(before) = &before {
            if let Err(err) = before.call_within_context::<Dynamic>(&call, (chunk.to_vec(),)) {
                return stopped_by_hook(ctx, &items, done, err);
            }
        }
        let results = run_all(&call, chunk, &f, ctx.max_parallel.min(batch));
        failed += results.iter().filter(|d| d.result.is_err()).count();
        let updated: Array = chunk
            .iter()
            .zip(&results)
            .filter(|(_, d)| d.result.is_ok())
            .map(|(item, _)| item.clone())
            .collect();
        done.extend(results.into_iter().map(Some));
        if let Some(after) = &after {
            if let Err(err) = after.call_within_context::<Dynamic>(&call, (updated,)) {
                return stopped_by_hook(ctx, &items, done, err);
            }
        }
    }
    done.resize_with(items.len(), || None);
    finish(ctx, &call, "rolling", &items, done, tolerated)
}

/// A `before`/`after` closure failed: the rollout stops there, with its table.
fn stopped_by_hook(
    ctx: &Ctx,
    items: &[Dynamic],
    mut done: Vec<Option<Done>>,
    err: Box<EvalAltResult>,
) -> RhaiResult<Array> {
    done.resize_with(items.len(), || None);
    tally(ctx, "rolling", items, done);
    Err(err)
}

const ROLLING_OPTIONS: &[OptionSpec] = &[
    opt("batch", Type::Int, "1", "how many items run at once"),
    opt(
        "max_failures",
        Type::Other("int | string"),
        "0",
        "failures tolerated before it stops: a count (1) or a share of the items (\"25%\")",
    ),
    opt(
        "before",
        Type::Fn,
        "",
        "called with each batch's items before the batch runs (|items| ...)",
    ),
    opt(
        "after",
        Type::Fn,
        "",
        "called after each batch with the items that succeeded (|items| ...)",
    ),
];

const ROLLING: Spec = Spec::function(
    "rolling",
    &[("items", "array"), ("opts", "map"), ("f", "fn")],
    "array",
)
.doc("Runs the closure for the items a batch at a time, each item on a thread of its own; stops after the batch in which more than `max_failures` failed, and returns the closures' results in order.")
.example(r#"rolling(fleet, #{ batch: 2, max_failures: 1 }, |h| h.run("systemctl restart app"));"#)
.options(ROLLING_OPTIONS);

/// Registers `parallel` and `rolling`.
pub fn register(api: &mut Api, ctx: &Arc<Ctx>) {
    let c = ctx.clone();
    api.register(
        Spec::function("parallel", &[("items", "array"), ("f", "fn")], "array")
            .doc("Runs the closure for every item at once (at most --max-parallel), each on a thread of its own, then prints who succeeded; returns the results in order and fails if any item failed.")
            .example(r#"parallel(fleet, |h| h.git("/srv/app").pull());"#),
        move |call: NativeCallContext, items: Array, f: FnPtr| parallel(&c, call, items, f),
    );
    let c = ctx.clone();
    api.register(
        ROLLING,
        move |call: NativeCallContext, items: Array, opts: Map, f: FnPtr| {
            rolling(&c, call, items, opts, f)
        },
    );
    let c = ctx.clone();
    api.register(
        Spec {
            params: &[("items", "array"), ("f", "fn")],
            options: &[],
            ..ROLLING
        },
        move |call: NativeCallContext, items: Array, f: FnPtr| {
            rolling(&c, call, items, Map::new(), f)
        },
    );
}
