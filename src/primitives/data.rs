//! `yaml::` and `json::`: parse text into Rhai values and back.

use rhai::{Dynamic, Engine, Module, NativeCallContext};
use serde_json::Value;

use super::at_call;
use crate::error::{Failure, RhaiResult};

type Parse = fn(&str) -> Result<Value, String>;
type Render = fn(&Value) -> Result<String, String>;

/// A data format: its module name, its label in errors, its parser and its named renderers.
type Format = (
    &'static str,
    &'static str,
    Parse,
    &'static [(&'static str, Render)],
);

const FORMATS: &[Format] = &[
    (
        "yaml",
        "YAML",
        |text| serde_norway::from_str(text).map_err(|e| e.to_string()),
        &[("to_string", |v| {
            serde_norway::to_string(v).map_err(|e| e.to_string())
        })],
    ),
    (
        "json",
        "JSON",
        |text| serde_json::from_str(text).map_err(|e| e.to_string()),
        &[
            ("to_string", |v| {
                serde_json::to_string(v).map_err(|e| e.to_string())
            }),
            ("to_pretty", |v| {
                serde_json::to_string_pretty(v).map_err(|e| e.to_string())
            }),
        ],
    ),
];

fn failure(label: &str, error: impl std::fmt::Display) -> Failure {
    Failure::Other {
        message: format!("invalid {label}: {error}"),
        help: format!("check the {label} text; line and column are counted from its start"),
    }
}

fn parse(label: &str, parse: Parse, text: &str) -> RhaiResult<Dynamic> {
    rhai::serde::to_dynamic(parse(text).map_err(|e| failure(label, e))?)
}

fn render(label: &str, render: Render, value: &Dynamic) -> RhaiResult<String> {
    let value: Value = rhai::serde::from_dynamic(value).map_err(|e| failure(label, e))?;
    Ok(render(&value).map_err(|e| failure(label, e))?)
}

/// Registers the `yaml` and `json` modules.
pub fn register(engine: &mut Engine) {
    for &(name, label, parser, renderers) in FORMATS {
        let mut module = Module::new();
        module.set_native_fn("parse", move |call: NativeCallContext, text: &str| {
            parse(label, parser, text).map_err(|e| at_call(&call, e))
        });
        for &(function, renderer) in renderers {
            module.set_native_fn(function, move |call: NativeCallContext, value: Dynamic| {
                render(label, renderer, &value).map_err(|e| at_call(&call, e))
            });
        }
        engine.register_static_module(name, module.into());
    }
}
