//! The API of modules written in Rhai (the stdlib, libraries): their public functions with
//! their `///` comments (an `Example:` line is the example), and the option tables they pass to
//! `options::check`, read from the compiled module without running it.

use rhai::{ASTNode, Dynamic, Expr, Map, AST};

use super::catalog::{Function, OptionInfo, Param};
use super::{describe, Kind, Spec, Type};
use crate::error::Failure;

/// A `BadValue` of `options::check` about its table.
fn bad(function: &str, what: &str, expected: &str, got: &Dynamic) -> Failure {
    Failure::BadValue {
        function: function.to_string(),
        what: what.to_string(),
        expected: expected.to_string(),
        got: describe(got),
    }
}

/// The option table of a function written in Rhai: `#{ KEY: #{ type: "duration", "default": "30s",
/// required: false, doc: "..." }, ... }` (`default` is quoted: it is a reserved word in Rhai).
/// The type is one of `Type::names()` or several joined by `|` ("string | fn"); default,
/// required and doc may be left out.
pub fn script_table(function: &str, table: &Map) -> Result<Vec<OptionInfo>, Failure> {
    let mut options = Vec::new();
    for (key, entry) in table {
        let what = format!("the table entry `{key}` of {function}");
        let Some(entry) = entry.read_lock::<Map>() else {
            return Err(bad(
                "options::check",
                &what,
                "a map such as #{ type: \"string\", doc: \"...\" }",
                entry,
            ));
        };
        let field = |name: &str| entry.get(name).filter(|v| !v.is_unit());
        let ty = field("type").cloned().unwrap_or_else(|| "any".into());
        let known = ty.clone().into_string().ok().filter(|t| {
            t.split('|')
                .all(|alternative| Type::from_name(alternative.trim()).is_some())
        });
        let Some(ty) = known else {
            return Err(bad(
                "options::check",
                &format!("{what}: its type"),
                &format!("one or more of {} joined by |", Type::names().join(", ")),
                &ty,
            ));
        };
        let default = field("default").map(|v| {
            if v.is_string() {
                format!("{:?}", v.to_string())
            } else {
                v.to_string()
            }
        });
        options.push(OptionInfo {
            key: key.to_string(),
            ty,
            default,
            required: field("required").is_some_and(|v| v.as_bool().unwrap_or(false)),
            doc: field("doc")
                .map(std::string::ToString::to_string)
                .unwrap_or_default(),
            keys: Vec::new(),
        });
    }
    // A map has no order of its own: the required keys first, then by name.
    options.sort_by_key(|o| !o.required);
    Ok(options)
}

/// The first paragraph of the comment that opens a stdlib module, without its `galley/NAME:`.
pub fn module_doc(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map_while(|l| l.strip_prefix("//"))
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect();
    let doc = lines.join(" ");
    let doc = match doc.split_once(": ") {
        Some((head, rest)) if head.starts_with("galley/") => rest,
        _ => doc.as_str(),
    };
    let mut chars = doc.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The public functions of a module compiled from Rhai, with their doc comments and the option
/// tables they check (`natives`: the native functions a table may extend with `like`).
pub fn script_functions(module: &str, ast: &AST, natives: &[Spec]) -> Vec<Function> {
    let tables = option_tables(ast, natives);
    ast.iter_functions()
        .filter(|f| f.access != rhai::FnAccess::Private && !f.name.starts_with("anon$"))
        .map(|f| {
            let qualified = format!("{module}::{}", f.name);
            let options = tables
                .iter()
                .find(|(name, _)| *name == qualified)
                .map(|(_, table)| table.clone())
                .unwrap_or_default();
            let text: Vec<&str> = f
                .comments
                .iter()
                .flat_map(|c| c.lines())
                .map(|l| l.trim().trim_start_matches("///").trim())
                .collect();
            let example = text
                .iter()
                .find_map(|l| l.strip_prefix("Example:"))
                .map(|e| e.trim().trim_matches('`').to_string())
                .unwrap_or_default();
            let doc = text
                .iter()
                .filter(|l| !l.is_empty() && !l.starts_with("Example:"))
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            let last = f.params.len().saturating_sub(1);
            Function {
                module: Some(module.to_string()),
                name: f.name.to_string(),
                kind: Kind::Function,
                params: f
                    .params
                    .iter()
                    .enumerate()
                    .map(|(i, p)| Param {
                        name: p.to_string(),
                        ty: if i == last && !options.is_empty() {
                            "map"
                        } else {
                            "any"
                        }
                        .to_string(),
                    })
                    .collect(),
                returns: "any".to_string(),
                doc,
                example,
                options,
                stdlib: true,
            }
        })
        .collect()
}

/// Every `options::check("NAME", opts, #{ ... }[, "LIKE"])` in `ast` whose table is a literal:
/// (NAME, its options, then those of the native function LIKE that the table does not list).
pub fn option_tables(ast: &AST, natives: &[Spec]) -> Vec<(String, Vec<OptionInfo>)> {
    let mut found = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Expr(Expr::FnCall(call, _))) = path.last() {
            if call.namespace.to_string() == "options" && call.name == "check" {
                let literal = |i: usize| call.args.get(i).and_then(|a| a.get_literal_value(None));
                let name = literal(0).and_then(|n| n.into_string().ok());
                let table = literal(2).and_then(rhai::Dynamic::try_cast::<Map>);
                let like = literal(3).and_then(|l| l.into_string().ok());
                if let (Some(name), Some(table)) = (name, table) {
                    if let Ok(mut options) = script_table(&name, &table) {
                        let native = like.and_then(|like| {
                            natives
                                .iter()
                                .find(|f| f.qualified() == like && !f.options.is_empty())
                        });
                        for o in native.map(|f| f.options).unwrap_or_default() {
                            if !options.iter().any(|own| own.key == o.key) {
                                options.push(OptionInfo::from(o));
                            }
                        }
                        found.push((name, options));
                    }
                }
            }
        }
        true
    });
    found
}
