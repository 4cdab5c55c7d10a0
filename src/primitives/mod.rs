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

/// Gives an error (a `Failure` or a Rhai error) from a module function (`health::http`,
/// `yaml::parse`) the position of its call: Rhai leaves those without one.
pub fn at_call(
    call: &rhai::NativeCallContext,
    err: impl Into<Box<rhai::EvalAltResult>>,
) -> Box<rhai::EvalAltResult> {
    let mut err = err.into();
    if err.position().is_none() {
        err.set_position(call.call_position());
    }
    err
}

/// Registers every primitive; returns the description of what was registered.
pub fn register_all(
    engine: &mut Engine,
    ctx: &Arc<Ctx>,
    inputs: values::RunInputs,
) -> crate::api::Registered {
    let mut api = crate::api::Api::new(engine);
    host::register(&mut api, ctx);
    ssh::register(&mut api, ctx);
    fanout::register(&mut api, ctx);
    process::register(&mut api);
    docker::register(&mut api);
    nginx::register(&mut api);
    deploy::register(&mut api, ctx);
    git::register(&mut api);
    health::register(&mut api, ctx);
    data::register(&mut api);
    flow::register(&mut api, ctx);
    ci::register(&mut api, ctx);
    cache::register(&mut api, ctx);
    notify::register(&mut api, ctx);
    values::register(&mut api, ctx, inputs);
    crate::report::register(&mut api);
    options::register(&mut api);
    api.finish()
}
