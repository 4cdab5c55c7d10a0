//! `ci::output(name, value)`: values a recipe hands to the CI steps after it (in GitHub Actions,
//! `$GITHUB_OUTPUT`: `steps.<id>.outputs.<name>`).

use std::sync::Arc;

use super::options::bad_value;
use crate::api::{Api, Spec};
use crate::exec::Ctx;

/// Registers the `ci` module.
pub fn register(api: &mut Api, ctx: &Arc<Ctx>) {
    api.module(
        "ci",
        "Values a recipe hands to the CI steps after it (GitHub Actions: `$GITHUB_OUTPUT`).",
    );
    let c = ctx.clone();
    api.register(
        Spec::function("output", &[("name", "string"), ("value", "any")], "()")
            .module("ci")
            .doc("Sets a CI output: in GitHub Actions `steps.<id>.outputs.<name>`; elsewhere it is printed.")
            .example(r#"ci::output("url", `https://${host.name}/`);"#),
        move |call: rhai::NativeCallContext, name: &str, value: rhai::Dynamic| {
            // `$GITHUB_OUTPUT` is `name=value` lines: a name holding `=` or a newline breaks it.
            let plain = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !plain {
                let got = rhai::Dynamic::from(name.to_string());
                let failure = bad_value(
                    "ci::output",
                    "the name",
                    "letters, digits, `_` and `-` (such as \"url\")",
                    &got,
                );
                return Err(super::at_call(&call, failure));
            }
            c.printer.set_output(name, &value.to_string());
            Ok(())
        },
    );
}
