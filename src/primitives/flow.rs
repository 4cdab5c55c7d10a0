//! Recipe flow helpers: `log`, `print`, `step`, `sleep`, `watch`.

use std::sync::Arc;
use std::time::Instant;

use rhai::{Dynamic, Engine, FnPtr, NativeCallContext};

use super::options::bad_value;
use crate::duration::{to_duration, DURATION_EXPECTED};
use crate::error::Failure;
use crate::exec::Ctx;

/// Registers `log`, `step` and `sleep`, and sends `print`/`debug` to the printer.
pub fn register(engine: &mut Engine, ctx: &Arc<Ctx>) {
    let c = ctx.clone();
    engine.on_print(move |text| c.printer.log(text));
    let c = ctx.clone();
    engine.on_debug(move |text, _, pos| c.printer.log(&format!("[debug {pos}] {text}")));

    let c = ctx.clone();
    engine.register_fn("log", move |message: Dynamic| {
        c.printer.log(&message.to_string())
    });

    let c = ctx.clone();
    engine.register_fn(
        "step",
        move |call: NativeCallContext,
              name: &str,
              body: FnPtr|
              -> Result<Dynamic, Box<rhai::EvalAltResult>> {
            c.printer.step_start(name);
            let started = Instant::now();
            let result = body.call_within_context(&call, ());
            c.printer.step_end(name, started.elapsed(), result.is_ok());
            result
        },
    );

    let c = ctx.clone();
    engine.register_fn("watch", move |paths: rhai::Array| {
        let mut watch = c.watch.lock().expect("watch lock");
        for path in paths {
            let path = path.to_string();
            if !watch.contains(&path) {
                watch.push(path);
            }
        }
    });

    let c = ctx.clone();
    let sleep = move |duration: Dynamic| {
        let d = to_duration(&duration).ok_or_else(|| {
            bad_value("sleep", "the duration", DURATION_EXPECTED, &duration).into_rhai()
        })?;
        c.sleep(d).map_err(Failure::into_rhai)
    };
    // Rhai's own `sleep(int)` and `sleep(float)` panic on a huge value; these take precedence.
    let (s1, s2) = (sleep.clone(), sleep.clone());
    engine.register_fn("sleep", move |n: i64| s1(Dynamic::from(n)));
    engine.register_fn("sleep", move |f: f64| s2(Dynamic::from(f)));
    engine.register_fn("sleep", sleep);
}
