//! The recipe API: one module per domain, each registering itself into the engine.

pub mod cache;
pub mod ci;
pub mod data;
pub mod deploy;
pub mod docker;
pub mod fanout;
pub mod flow;
pub mod git;
pub mod health;
pub mod host;
pub mod listen;
pub mod local;
pub mod nginx;
pub mod notify;
pub mod options;
pub mod process;
pub mod ssh;
pub mod validate;
pub mod values;

use std::sync::Arc;

use rhai::Engine;

use crate::exec::Ctx;

/// Gives an error from a module function (`health::http`, `yaml::parse`) the position of its
/// call: Rhai leaves those without one.
pub fn at_call(
    call: &rhai::NativeCallContext,
    mut err: Box<rhai::EvalAltResult>,
) -> Box<rhai::EvalAltResult> {
    if err.position().is_none() {
        err.set_position(call.call_position());
    }
    err
}

/// Registers every primitive.
pub fn register_all(engine: &mut Engine, ctx: &Arc<Ctx>, inputs: values::RunInputs) {
    host::register(engine, ctx);
    ssh::register(engine, ctx);
    fanout::register(engine, ctx);
    process::register(engine);
    docker::register(engine);
    nginx::register(engine);
    deploy::register(engine, ctx);
    git::register(engine);
    health::register(engine, ctx);
    data::register(engine);
    flow::register(engine, ctx);
    ci::register(engine, ctx);
    cache::register(engine, ctx);
    notify::register(engine, ctx);
    values::register(engine, ctx, inputs);
    crate::report::register(engine);
}
