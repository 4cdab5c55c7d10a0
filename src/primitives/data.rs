//! `yaml::` and `json::`: parse text into Rhai values and back.

use rhai::{Dynamic, NativeCallContext};
use serde_json::Value;

use super::at_call;
use crate::api::{Api, Spec};
use crate::error::{Failure, RhaiResult};

type Parse = fn(&str) -> Result<Value, String>;
type Render = fn(&Value) -> Result<String, String>;

/// A renderer: its function name, what it does and an example call.
type Renderer = (&'static str, Render, &'static str, &'static str);

/// A data format: its module name, its label in errors, its parser (with an example call) and
/// its named renderers.
type Format = (
    &'static str,
    &'static str,
    Parse,
    &'static str,
    &'static [Renderer],
);

const FORMATS: &[Format] = &[
    (
        "yaml",
        "YAML",
        |text| serde_norway::from_str(text).map_err(|e| e.to_string()),
        r#"let config = yaml::parse(host.read("/srv/app/config.yml"));"#,
        &[(
            "to_string",
            |v| serde_norway::to_string(v).map_err(|e| e.to_string()),
            "Renders a value (map, array, scalar) as YAML text.",
            r#"host.write("/srv/app/config.yml", yaml::to_string(config));"#,
        )],
    ),
    (
        "json",
        "JSON",
        |text| serde_json::from_str(text).map_err(|e| e.to_string()),
        r#"let pkg = json::parse(local().read("package.json"));"#,
        &[
            (
                "to_string",
                |v| serde_json::to_string(v).map_err(|e| e.to_string()),
                "Renders a value (map, array, scalar) as compact JSON text.",
                r#"host.write("/srv/app/meta.json", json::to_string(#{ sha: sha }));"#,
            ),
            (
                "to_pretty",
                |v| serde_json::to_string_pretty(v).map_err(|e| e.to_string()),
                "Renders a value as indented JSON text.",
                r"log(json::to_pretty(params));",
            ),
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
pub fn register(api: &mut Api) {
    api.module(
        "yaml",
        "YAML text to Rhai values (maps, arrays, scalars) and back.",
    );
    api.module(
        "json",
        "JSON text to Rhai values (maps, arrays, scalars) and back.",
    );
    for &(name, label, parser, example, renderers) in FORMATS {
        api.register(
            Spec::function("parse", &[("text", "string")], "any")
                .module(name)
                .doc("Parses the text into maps, arrays and scalars; an error names the line and column.")
                .example(example),
            move |call: NativeCallContext, text: &str| {
                parse(label, parser, text).map_err(|e| at_call(&call, e))
            },
        );
        for &(function, renderer, doc, example) in renderers {
            api.register(
                Spec::function(function, &[("value", "any")], "string")
                    .module(name)
                    .doc(doc)
                    .example(example),
                move |call: NativeCallContext, value: Dynamic| {
                    render(label, renderer, &value).map_err(|e| at_call(&call, e))
                },
            );
        }
    }
}
