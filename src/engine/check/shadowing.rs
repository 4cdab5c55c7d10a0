//! Recipe functions that hide a built-in function or method. Rhai looks for a script function
//! first, and calls one with N parameters both for `name(N args)` and, with `this` bound, for
//! `value.name(N args)`: a recipe `fn stop()` takes the place of every `process.stop()`.

use crate::engine::tasks::definitions;
use crate::engine::{Galley, Recipe};
use crate::error::Code;
use crate::report::{tidy_signature, Report};

/// A warning for each function of `recipe` that hides a built-in one.
pub fn shadowed(galley: &Galley, recipe: &Recipe) -> Vec<Report> {
    let builtins: Vec<(String, usize, String)> = galley
        .engine
        .gen_fn_signatures(true)
        .iter()
        .filter_map(|s| parse(s))
        .collect();
    let text = galley.text(recipe);
    definitions(&galley.engine, &text)
        .into_iter()
        .filter_map(|def| {
            let n = def.params.len();
            let name = def.name.as_str();
            let same = |arity: usize| {
                builtins
                    .iter()
                    .filter(move |(n, a, _)| n == name && *a == arity)
            };
            let mut hidden: Vec<String> = same(n)
                .chain(same(n + 1))
                .map(|(_, _, signature)| format!("`{signature}`"))
                .collect();
            hidden.sort();
            hidden.dedup();
            if hidden.is_empty() {
                return None;
            }
            let args = def.params.join(", ");
            // The calls that now reach the recipe's function: as a method (the value becomes
            // `this`) and as a plain function.
            let mut calls = Vec::new();
            if same(n + 1).next().is_some() {
                calls.push(format!("`x.{}({args})`", def.name));
            }
            if same(n).next().is_some() {
                calls.push(format!("`{}({args})`", def.name));
            }
            let report = Report::plain(
                Code::ShadowedFunction,
                format!(
                    "the recipe function `{}({args})` hides the built-in {}",
                    def.name,
                    listed(&hidden)
                ),
                format!(
                    "Rhai calls a recipe function before a built-in one with the same name and \
                     number of arguments: {} now {} the recipe's `{}`; give it another name",
                    calls.join(" and "),
                    if calls.len() == 1 { "runs" } else { "run" },
                    def.name
                ),
            );
            Some(
                report
                    .at(&galley.sources, &recipe.key, def.name_at, "defined here")
                    .warning(),
            )
        })
        .collect()
}

/// The first few signatures, and how many more there are.
fn listed(signatures: &[String]) -> String {
    const SHOWN: usize = 2;
    let first = signatures[..signatures.len().min(SHOWN)].join(", ");
    match signatures.len().saturating_sub(SHOWN) {
        0 => first,
        more => format!("{first} and {more} more"),
    }
}

/// The name, parameter count and readable form of a built-in's signature; `None` for
/// operators, property accessors and functions of a module (`health::http`), which no recipe
/// function can hide.
fn parse(signature: &str) -> Option<(String, usize, String)> {
    let (name, rest) = signature.split_once('(')?;
    let name = name.trim();
    let plain = name.chars().next()?.is_alphabetic() || name.starts_with('_');
    if !plain || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let mut depth = 0usize;
    let mut params = 0;
    let mut any = false;
    for c in rest.chars() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' if depth == 0 => break,
            ')' | '>' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => params += 1,
            c if !c.is_whitespace() => any = true,
            _ => {}
        }
    }
    let count = if any { params + 1 } else { 0 };
    Some((name.to_string(), count, tidy_signature(signature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_and_parameter_counts_of_signatures() {
        assert_eq!(
            parse("stop(_: &mut Process) -> Result<bool, Box<EvalAltResult>>"),
            Some(("stop".into(), 1, "stop(Process)".into()))
        );
        assert_eq!(
            parse("index_of(string: &mut ImmutableString, find: &str | ImmutableString | String, start: i64) -> i64")
                .map(|p| p.1),
            Some(3)
        );
        assert_eq!(parse("timestamp() -> Instant").map(|p| p.1), Some(0));
        assert_eq!(parse("get$name(_: &mut Host) -> String"), None);
        assert_eq!(parse("health::http(_: &str) -> Health"), None);
        assert_eq!(parse("+(x: i64, y: i64) -> i64"), None);
    }
}
