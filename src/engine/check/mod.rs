//! `galley check`: finds mistakes in a recipe before anything runs — modules that do not load,
//! unknown functions, calls with the wrong arguments or option keys, undefined variables and
//! recipe functions that hide built-in ones.

mod arguments;
mod calls;
mod shadowing;
mod variables;

use rhai::{Stmt, AST};

use super::{Galley, Recipe};
use crate::exec::output::Reportable;
use crate::report::Report;

/// Every problem `check` finds in a compiled recipe, errors and warnings, in source order.
pub fn problems(galley: &mut Galley, recipe: &Recipe) -> Vec<Report> {
    let mut found = Vec::new();
    if let Err(report) = check_imports(galley, recipe) {
        found.push(report);
    }
    found.extend(calls::unknown_calls(galley, recipe));
    found.extend(variables::undefined_variables(galley, recipe));
    found.extend(shadowing::shadowed(galley, recipe));
    found.extend(arguments::wrong_arguments(galley, recipe));
    // Reports without a place (none so far) come first; the sort is stable.
    found.sort_by_key(|r| r.location().map(|(_, line, column)| (line, column)));
    found
}

/// Evaluates an AST's imports (an inspecting engine loads modules for their functions only),
/// reporting modules that cannot be loaded.
fn check_imports(galley: &Galley, recipe: &Recipe) -> Result<(), Report> {
    let imports_only: Vec<Stmt> = recipe
        .ast
        .statements()
        .iter()
        .filter(|s| matches!(s, Stmt::Import(..)))
        .cloned()
        .collect();
    let mut ast = AST::new(imports_only, rhai::Module::new());
    ast.set_source(recipe.key.as_str());
    galley
        .engine
        .run_ast(&ast)
        .map_err(|e| galley.report(&e, &recipe.key, Some(&recipe.ast)))
}
