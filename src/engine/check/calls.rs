//! Calls to functions that neither the engine, the recipe nor an imported module defines.

use std::collections::HashMap;

use rhai::{ASTNode, Expr, Stmt};

use crate::engine::{Galley, Recipe};
use crate::error::suggest;
use crate::report::{Known, Report};

/// Rhai functions that the parser handles itself and that no signature lists.
const KEYWORD_FUNCTIONS: &[&str] = &[
    "Fn",
    "call",
    "curry",
    "is_def_var",
    "is_def_fn",
    "is_shared",
    "type_of",
    "print",
    "debug",
    "eval",
    "this",
];

/// Every call in `recipe` to a function that neither the engine, the recipe nor an imported
/// module defines, as reports.
pub fn unknown_calls(galley: &Galley, recipe: &Recipe) -> Vec<Report> {
    let known = Known::from(&galley.engine, Some(&recipe.ast));
    let mut names: Vec<String> = known.names().into_iter().map(str::to_string).collect();
    names.extend(
        KEYWORD_FUNCTIONS
            .iter()
            .map(std::string::ToString::to_string),
    );
    let modules = imported_functions(galley, recipe);

    let mut reports = Vec::new();
    let mut problems: Vec<(String, rhai::Position, Vec<String>)> = Vec::new();
    recipe.ast.walk(&mut |path: &[ASTNode]| {
        let (name, namespace, pos) = match path.last() {
            Some(
                ASTNode::Expr(Expr::FnCall(call, pos)) | ASTNode::Stmt(Stmt::FnCall(call, pos)),
            ) => (call.name.to_string(), call.namespace.to_string(), *pos),
            Some(ASTNode::Expr(Expr::MethodCall(call, pos))) => {
                (call.name.to_string(), String::new(), *pos)
            }
            _ => return true,
        };
        if !name.starts_with(|c: char| c.is_alphabetic() || c == '_') || name.starts_with("anon$") {
            return true;
        }
        let (full, candidates) = if namespace.is_empty() {
            (name.clone(), names.clone())
        } else if let Some(fns) = modules.get(&namespace) {
            match fns {
                Some(fns) => (name.clone(), fns.clone()),
                // The import itself failed, and is reported: its calls cannot be checked.
                None => return true,
            }
        } else {
            let full = format!("{namespace}::{name}");
            (
                full,
                names.iter().filter(|n| n.contains("::")).cloned().collect(),
            )
        };
        if !candidates.contains(&full) {
            problems.push((full, pos, candidates));
        }
        true
    });
    for (name, pos, candidates) in problems {
        let help = match suggest(&name, candidates.iter().map(String::as_str)) {
            Some(near) => format!("did you mean `{near}`? `galley docs` lists every function"),
            None => "`galley docs` lists every function".to_string(),
        };
        let err = rhai::EvalAltResult::ErrorFunctionNotFound(name.clone(), pos);
        let mut report = galley.report(&err, &recipe.key, Some(&recipe.ast));
        report.set_help(help);
        reports.push(report);
    }
    reports
}

/// The functions of each imported module, by alias; `None` for an import that fails (`check`
/// reports it when it evaluates the imports).
fn imported_functions(galley: &Galley, recipe: &Recipe) -> HashMap<String, Option<Vec<String>>> {
    let mut found = HashMap::new();
    for stmt in recipe.ast.statements() {
        let Stmt::Import(import, _) = stmt else {
            continue;
        };
        let (path_expr, alias) = &**import;
        let Some(path) = path_expr
            .get_literal_value(None)
            .and_then(|v| v.into_string().ok())
        else {
            continue;
        };
        let resolver = galley.engine.module_resolver();
        let fns = resolver
            .resolve(
                &galley.engine,
                Some(&recipe.key),
                &path,
                rhai::Position::NONE,
            )
            .ok()
            .map(|module| {
                module
                    .gen_fn_signatures_with_mapper(std::convert::Into::into)
                    .map(|s| s.split('(').next().unwrap_or_default().trim().to_string())
                    .collect()
            });
        found.insert(alias.name.to_string(), fns);
    }
    found
}
