//! `ci::output(name, value)`: values a recipe hands to the CI steps after it (in GitHub Actions,
//! `$GITHUB_OUTPUT`: `steps.<id>.outputs.<name>`).

use std::sync::Arc;

use rhai::{Engine, Module};

use crate::exec::Ctx;

/// Registers the `ci` module.
pub fn register(engine: &mut Engine, ctx: &Arc<Ctx>) {
    let mut module = Module::new();
    let c = ctx.clone();
    module.set_native_fn("output", move |name: &str, value: rhai::Dynamic| {
        c.printer.set_output(name, &value.to_string());
        Ok(())
    });
    engine.register_static_module("ci", module.into());
}
