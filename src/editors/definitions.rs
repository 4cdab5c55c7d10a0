//! Rhai definition files (`.d.rhai`, read by Rhai's language tooling): Rhai writes those of the
//! engine's static modules itself; the stdlib's script modules, which it does not see, are
//! written here in the same form from the API's catalog.

use std::fmt::Write;

use rhai::Engine;

use crate::api::catalog::{Catalog, Function};
use crate::engine::resolver::stdlib_key;

/// Every definition file: (file name, text). Rhai's standard library is left out: the tooling
/// that reads these knows it already.
pub fn files(engine: &Engine, catalog: &Catalog) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = engine
        .definitions()
        .include_standard_packages(false)
        .with_headers(true)
        .iter_files()
        .map(|(name, text)| (name, tidy(&text)))
        .collect();
    for module in catalog.modules.iter().filter(|m| m.stdlib) {
        let path = stdlib_key(&module.name);
        let mut functions: Vec<&Function> = catalog
            .functions
            .iter()
            .filter(|f| f.stdlib && f.module.as_deref() == Some(module.name.as_str()))
            .collect();
        // A compiled module keeps its functions in a hash map: sorted, the files are stable.
        functions.sort_by_key(|f| (&f.name, f.params.len()));
        files.push((
            format!("{}.d.rhai", path.replace('/', "-")),
            script_module(&path, &module.doc, &functions),
        ));
    }
    files
}

/// Rhai names the return type of a function registered as a closure from the last `::` segment
/// of its Rust type, which for `Result<T, Box<EvalAltResult>>` is `EvalAltResult>>`, and leaves it
/// empty for module functions: both become `?`, the definitions' "any type".
fn tidy(text: &str) -> String {
    let mut tidied: String = text
        .lines()
        .map(|line| match line.rsplit_once(") -> ") {
            Some((head, ty)) if line.ends_with(';') => {
                let ty = ty.trim_end_matches(';');
                let balanced = ty.matches('<').count() == ty.matches('>').count();
                if ty.is_empty() || !balanced {
                    format!("{head}) -> ?;")
                } else {
                    line.to_string()
                }
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    tidied.push('\n');
    tidied
}

/// A stdlib module in the form Rhai writes a static one: its functions' docs (with the example
/// and the options as Galley's native functions have them), then `fn name(p: type) -> type;`.
fn script_module(path: &str, doc: &str, functions: &[&Function]) -> String {
    // Writing to a String cannot fail.
    let mut text = format!("module {path:?};\n");
    if !doc.is_empty() {
        let _ = writeln!(text, "\n//! {doc}");
    }
    for f in functions {
        text.push('\n');
        if !f.doc.is_empty() {
            let _ = writeln!(text, "/// {}", f.doc);
        }
        if !f.example.is_empty() {
            let _ = writeln!(text, "///\n/// Example: `{}`", f.example);
        }
        if !f.options.is_empty() {
            text.push_str("///\n/// Options:\n");
            for o in &f.options {
                let default = match &o.default {
                    _ if o.required => ", required".to_string(),
                    Some(default) => format!(", default {default}"),
                    None => String::new(),
                };
                let _ = writeln!(text, "/// - `{}`: {}{default}; {}", o.key, o.ty, o.doc);
            }
        }
        let params: Vec<String> = f
            .params
            .iter()
            .map(|p| format!("{}: {}", p.name, def_type(&p.ty)))
            .collect();
        let _ = writeln!(
            text,
            "fn {}({}) -> {};",
            f.name,
            params.join(", "),
            def_type(&f.returns)
        );
    }
    text
}

/// A catalog type as definitions write it: `?` for any.
fn def_type(ty: &str) -> &str {
    if ty == "any" {
        "?"
    } else {
        ty
    }
}

#[cfg(test)]
mod tests {
    use super::tidy;

    #[test]
    fn unreadable_return_types_become_any() {
        let text = "module static;\n\n/// Doc.\nfn branch(_: Repo) -> EvalAltResult>>;\n\
fn connect(_: ?) -> ;\nfn env(_: string, _: string) -> string;\nfn keys(m: map) -> Array<string>;";
        assert_eq!(
            tidy(text),
            "module static;\n\n/// Doc.\nfn branch(_: Repo) -> ?;\nfn connect(_: ?) -> ?;\n\
fn env(_: string, _: string) -> string;\nfn keys(m: map) -> Array<string>;\n"
        );
    }
}
