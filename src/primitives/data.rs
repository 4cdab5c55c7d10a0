//! `yaml::` and `json::`: parse text into Rhai values and back.

use rhai::{Dynamic, Engine, Module, NativeCallContext};

use super::at_call;

use crate::report::Failure;

fn parse_failure(format: &str, e: impl std::fmt::Display) -> Box<rhai::EvalAltResult> {
    Failure::Other {
        message: format!("invalid {format}: {e}"),
        help: format!("check the {format} text; line and column are counted from its start"),
    }
    .into_rhai()
}

fn to_value(format: &str, value: &Dynamic) -> Result<serde_json::Value, Box<rhai::EvalAltResult>> {
    rhai::serde::from_dynamic(value).map_err(|e| parse_failure(format, e))
}

/// Registers the `yaml` and `json` modules.
pub fn register(engine: &mut Engine) {
    let mut yaml = Module::new();
    yaml.set_native_fn("parse", |call: NativeCallContext, text: &str| {
        (|| {
            let value: serde_json::Value =
                serde_norway::from_str(text).map_err(|e| parse_failure("YAML", e))?;
            rhai::serde::to_dynamic(value)
        })()
        .map_err(|e| at_call(&call, e))
    });
    yaml.set_native_fn("to_string", |call: NativeCallContext, value: Dynamic| {
        (|| {
            serde_norway::to_string(&to_value("YAML", &value)?)
                .map_err(|e| parse_failure("YAML", e))
        })()
        .map_err(|e| at_call(&call, e))
    });
    engine.register_static_module("yaml", yaml.into());

    let mut json = Module::new();
    json.set_native_fn("parse", |call: NativeCallContext, text: &str| {
        (|| {
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| parse_failure("JSON", e))?;
            rhai::serde::to_dynamic(value)
        })()
        .map_err(|e| at_call(&call, e))
    });
    json.set_native_fn("to_string", |call: NativeCallContext, value: Dynamic| {
        (|| {
        serde_json::to_string(&to_value("JSON", &value)?).map_err(|e| parse_failure("JSON", e))
        })()
        .map_err(|e| at_call(&call, e))
    });
    json.set_native_fn("to_pretty", |call: NativeCallContext, value: Dynamic| {
        (|| {
            serde_json::to_string_pretty(&to_value("JSON", &value)?)
                .map_err(|e| parse_failure("JSON", e))
        })()
        .map_err(|e| at_call(&call, e))
    });
    engine.register_static_module("json", json.into());
}
