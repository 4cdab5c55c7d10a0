//! Rhai definition files (`.d.rhai`, read by Rhai's language tooling): Rhai writes those of the
//! engine's static modules itself; the stdlib's script modules, which it does not see, are
//! written here in the same form.

use std::fmt::Write;

use rhai::Engine;

use super::catalog::{Catalog, ScriptModule};

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
    files.extend(catalog.stdlib.iter().map(|module| {
        (
            format!("{}.d.rhai", module.path.replace('/', "-")),
            script_module(module),
        )
    }));
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

/// A stdlib module in the form Rhai writes a static one: doc comments, then `fn name(p: ?) -> ?;`
/// (script functions have no declared types).
fn script_module(module: &ScriptModule) -> String {
    let mut text = format!("module {:?};\n", module.path);
    for f in &module.functions {
        text.push('\n');
        for line in &f.doc {
            text.push_str(line.trim());
            text.push('\n');
        }
        let params: Vec<String> = f.params.iter().map(|p| format!("{p}: ?")).collect();
        // Writing to a String cannot fail.
        let _ = writeln!(text, "fn {}({}) -> ?;", f.name, params.join(", "));
    }
    text
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
