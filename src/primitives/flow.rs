//! Recipe flow helpers: `log`, `print`, `step`, `sleep`, `watch`.

use std::sync::Arc;
use std::time::Instant;

use rhai::{Dynamic, FnPtr, NativeCallContext};

use super::options::bad_value;
use crate::api::{Api, Spec};
use crate::duration::{to_duration, DURATION_EXPECTED};
use crate::error::RhaiResult;
use crate::exec::Ctx;

/// Registers `log`, `step` and `sleep`, and sends `print`/`debug` to the printer.
pub fn register(api: &mut Api, ctx: &Arc<Ctx>) {
    let engine = api.engine();
    let c = ctx.clone();
    engine.on_print(move |text| c.printer.log(text));
    let c = ctx.clone();
    engine.on_debug(move |text, _, pos| c.printer.log(&format!("[debug {pos}] {text}")));

    let c = ctx.clone();
    api.register(
        Spec::function("log", &[("message", "any")], "()")
            .doc("Prints a line of the recipe's own (masked, like every output).")
            .example(r"log(`deploying ${sha} to ${host.name}`);"),
        move |message: Dynamic| c.printer.log(&message.to_string()),
    );

    let c = ctx.clone();
    api.register(
        Spec::function("step", &[("name", "string"), ("body", "fn")], "any")
            .doc("Runs the closure as a named step: its start, end and duration are printed, and a report names the step it failed in. Returns the closure's value.")
            .example(r#"step("migrate", || host.run(["./manage.py", "migrate"]));"#),
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
    api.register(
        Spec::function("watch", &[("paths", "array")], "()")
            .doc("Adds paths (globs) that `galley watch` reruns the recipe on, beside the recipe and its modules.")
            .example(r#"watch(["src/**/*.py", "templates/*"]);"#),
        move |paths: rhai::Array| {
            let mut watch = c.watch.lock().expect("watch lock");
            for path in paths {
                let path = path.to_string();
                if !watch.contains(&path) {
                    watch.push(path);
                }
            }
        },
    );

    let c = ctx.clone();
    let sleep = move |duration: Dynamic| -> RhaiResult<()> {
        let d = to_duration(&duration)
            .ok_or_else(|| bad_value("sleep", "the duration", DURATION_EXPECTED, &duration))?;
        Ok(c.sleep(d)?)
    };
    const SLEEP: Spec = Spec::function("sleep", &[("duration", "string")], "()")
        .doc("Waits: \"500ms\", \"30s\", \"2m\", \"1h\", or a number of seconds (Ctrl-C stops it).")
        .example(r#"sleep("2s");"#);
    // Rhai's own `sleep(int)` and `sleep(float)` panic on a huge value; these take precedence.
    let (s1, s2) = (sleep.clone(), sleep.clone());
    api.register(
        Spec {
            params: &[("seconds", "int")],
            ..SLEEP
        },
        move |n: i64| s1(Dynamic::from(n)),
    );
    api.register(
        Spec {
            params: &[("seconds", "float")],
            ..SLEEP
        },
        move |f: f64| s2(Dynamic::from(f)),
    );
    api.register(SLEEP, sleep);
}
