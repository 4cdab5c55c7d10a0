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
            tidy(&script_module(&path, &module.doc, &functions)),
        ));
    }
    files
}

/// Rhai writes the types as registered; the definitions' own spelling is `?` for any type and
/// no `-> ...` for a function that returns nothing (Rhai leaves an empty `-> ;` for those). A
/// type Rhai could not read from a Rust closure (`EvalAltResult>>`, the tail of
/// `Result<T, Box<EvalAltResult>>`) is any type too.
fn tidy(text: &str) -> String {
    let mut tidied: String = text
        .lines()
        .map(|line| {
            let line = line.replace(": any,", ": ?,").replace(": any)", ": ?)");
            match line.rsplit_once(") -> ") {
                Some((head, ty)) if line.ends_with(';') => {
                    let ty = ty.trim_end_matches(';');
                    if ty.is_empty() {
                        format!("{head});")
                    } else if ty == "any" || ty.matches('<').count() != ty.matches('>').count() {
                        format!("{head}) -> ?;")
                    } else {
                        line
                    }
                }
                _ => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    tidied.push('\n');
    tidied
}

/// A stdlib module in the form Rhai writes a static one: its functions' docs (with the example
/// and the options as Galley's native functions have them), then `fn name(p: type) -> type;`
/// (types as the catalog spells them: `tidy` turns them into the definitions' spelling).
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
            .map(|p| format!("{}: {}", p.name, p.ty))
            .collect();
        let _ = writeln!(
            text,
            "fn {}({}) -> {};",
            f.name,
            params.join(", "),
            f.returns
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::tidy;

    #[test]
    fn types_are_spelled_as_definitions_spell_them() {
        let text = "module static;\n\n/// Doc: any.\nfn branch(_: Repo) -> EvalAltResult>>;\n\
fn log(message: any) -> ;\nfn env(name: string, default: any) -> any;\nfn keys(m: map) -> Array<string>;";
        assert_eq!(
            tidy(text),
            "module static;\n\n/// Doc: any.\nfn branch(_: Repo) -> ?;\nfn log(message: ?);\n\
fn env(name: string, default: ?) -> ?;\nfn keys(m: map) -> Array<string>;\n"
        );
    }
}
