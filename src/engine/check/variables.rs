//! Variables used where none is defined, found by compiling with Rhai's strict variables mode.
//! A strict compile stops at the first undefined name, so each one found is declared (in the
//! scope the compile starts from) and the compile repeated: every name is reported at its first
//! use. The common case is a top-level `let` read inside a `fn`: Rhai functions do not see the
//! caller's scope.

use rhai::{ASTFlags, ASTNode, Engine, ParseError, ParseErrorType, Position, Scope, Stmt, AST};

use crate::engine::compile::compile_pieces;
use crate::engine::tasks::{definitions, Definition};
use crate::engine::{Galley, Recipe};
use crate::error::{suggest, Code};
use crate::report::Report;

/// The variables that every function sees without declaring them (`primitives::values`).
const PROVIDED: &[&str] = &["params", "task"];

/// The most undefined names looked for in one recipe: each costs a compile of a piece.
const MAX_FOUND: usize = 50;

/// Every variable of `recipe` used where it is not defined, as reports.
pub fn undefined_variables(galley: &mut Galley, recipe: &Recipe) -> Vec<Report> {
    let text = galley.text(recipe);
    galley.engine.set_strict_variables(true);
    let found = undefined(&galley.engine, &text);
    galley.engine.set_strict_variables(false);
    let defs = definitions(&galley.engine, &text);
    let declared = Declared::of(&recipe.ast, &defs);
    found
        .into_iter()
        .map(|(name, pos)| {
            let (message, help) = declared.explain(&name, pos);
            Report::plain(Code::UnknownVariable, message, help).at(
                &galley.sources,
                &recipe.key,
                pos,
                "not defined here",
            )
        })
        .collect()
}

/// The undefined names in `text` with the position of their first use; `engine` compiles in
/// strict variables mode.
fn undefined(engine: &Engine, text: &str) -> Vec<(String, Position)> {
    let mut strict = Strict {
        engine,
        scope: Scope::new(),
        imports: Vec::new(),
        found: Vec::new(),
    };
    for name in PROVIDED {
        strict.scope.push_dynamic(*name, rhai::Dynamic::UNIT);
    }
    // Another error (there is none in a recipe that compiled) ends the search where it stands.
    let _ = compile_pieces(text, &|| false, &mut |piece| strict.piece(piece));
    strict.found
}

/// The state of a strict compile over the pieces of a recipe.
struct Strict<'a> {
    engine: &'a Engine,
    /// The names declared so far: `PROVIDED`, earlier pieces' top-level variables, and the
    /// undefined names already found.
    scope: Scope<'static>,
    /// Module aliases of earlier pieces, and undefined ones (`check::calls` reports their calls).
    imports: Vec<String>,
    found: Vec<(String, Position)>,
}

impl Strict<'_> {
    /// Compiles one piece until no undefined name is left in it.
    fn piece(&mut self, piece: &str) -> Result<AST, ParseError> {
        loop {
            // The imports go on a line of their own in front: positions are one line down.
            let header: String = self
                .imports
                .iter()
                .map(|alias| format!("import \"\" as {alias}; "))
                .collect();
            let text = format!("{header}\n{piece}");
            let err = match self.engine.compile_with_scope(&self.scope, text) {
                Ok(ast) => {
                    self.declare_top_level(&ast);
                    return Ok(ast);
                }
                Err(err) => err,
            };
            let ParseError(kind, pos) = &err;
            match &**kind {
                ParseErrorType::VariableUndefined(name) if self.found.len() < MAX_FOUND => {
                    let line = pos.line().unwrap_or(1).saturating_sub(1).max(1);
                    let at = Position::new(line as u16, pos.position().unwrap_or(1) as u16);
                    self.found.push((name.clone(), at));
                    self.scope.push_dynamic(name.clone(), rhai::Dynamic::UNIT);
                }
                ParseErrorType::ModuleUndefined(alias) if !self.imports.contains(alias) => {
                    self.imports.push(alias.clone());
                }
                _ => return Err(err),
            }
        }
    }

    /// Makes a piece's top-level variables and imports known to the pieces after it.
    fn declare_top_level(&mut self, ast: &AST) {
        for stmt in ast.statements() {
            match stmt {
                Stmt::Var(var, ..) => {
                    self.scope
                        .push_dynamic(var.0.name.to_string(), rhai::Dynamic::UNIT);
                }
                Stmt::Import(import, _) => {
                    let alias = import.1.name.to_string();
                    if !alias.is_empty() && !self.imports.contains(&alias) {
                        self.imports.push(alias);
                    }
                }
                _ => {}
            }
        }
    }
}

/// What the recipe declares, to say why a name is undefined where it is used.
struct Declared<'a> {
    /// Top-level `let` and `const`: name, position, whether it is a `const`.
    top_level: Vec<(String, Position, bool)>,
    /// Every variable and parameter name anywhere, for suggestions.
    names: Vec<String>,
    functions: &'a [Definition],
}

impl<'a> Declared<'a> {
    fn of(ast: &AST, functions: &'a [Definition]) -> Self {
        let top_level = ast
            .statements()
            .iter()
            .filter_map(|stmt| match stmt {
                Stmt::Var(var, flags, pos) => Some((
                    var.0.name.to_string(),
                    *pos,
                    flags.contains(ASTFlags::CONSTANT),
                )),
                _ => None,
            })
            .collect();
        let mut names: Vec<String> = PROVIDED
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        ast.walk(&mut |path: &[ASTNode]| {
            if let Some(ASTNode::Stmt(Stmt::Var(var, ..))) = path.last() {
                names.push(var.0.name.to_string());
            }
            true
        });
        names.extend(functions.iter().flat_map(|f| f.params.iter().cloned()));
        names.sort();
        names.dedup();
        Declared {
            top_level,
            names,
            functions,
        }
    }

    /// The message and help for `name`, undefined at `pos`.
    fn explain(&self, name: &str, pos: Position) -> (String, String) {
        let function = self.functions.iter().find(|f| f.contains(pos));
        let top = self.top_level.iter().find(|(n, ..)| n == name);
        match (function, top) {
            (Some(f), Some((_, at, is_const))) => {
                let line = at.line().unwrap_or_default();
                let read = if *is_const {
                    format!("read it as `global::{name}`")
                } else {
                    format!("or declare it `const {name} = ...;` and read `global::{name}`")
                };
                let pass = if *is_const {
                    String::new()
                } else {
                    let mut params = f.params.clone();
                    params.push(name.to_string());
                    format!(
                        "pass it as a parameter (`fn {}({})`), ",
                        f.name,
                        params.join(", ")
                    )
                };
                (
                    format!(
                        "function `{}` cannot see `{name}`, a top-level variable (line {line})",
                        f.name
                    ),
                    format!(
                        "Rhai functions do not see the caller's variables: {pass}{read}; a \
                         function sees only its parameters, `params`, `task` and `global::NAME`"
                    ),
                )
            }
            (None, Some((_, at, _))) if *at > pos => (
                format!("`{name}` is used before it is declared"),
                format!(
                    "move the declaration (line {}) above its first use",
                    at.line().unwrap_or_default()
                ),
            ),
            _ => {
                let near = suggest(name, self.names.iter().map(String::as_str))
                    .map(|n| format!("did you mean `{n}`? "))
                    .unwrap_or_default();
                (
                    format!("unknown variable `{name}`"),
                    format!(
                        "{near}declare it with `let` before its use; a function sees only its \
                         parameters, `params`, `task` and top-level `const`s as `global::NAME`"
                    ),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict(text: &str) -> Vec<(String, usize, usize)> {
        let mut engine = Engine::new();
        engine.set_strict_variables(true);
        undefined(&engine, text)
            .into_iter()
            .map(|(n, p)| (n, p.line().unwrap(), p.position().unwrap()))
            .collect()
    }

    #[test]
    fn finds_each_undefined_name_at_its_first_use() {
        let text =
            "let dir = \"/srv\";\nfn deploy() {\n  log(dir);\n  log(dir + nope);\n}\nlog(other);\n";
        assert_eq!(
            strict(text),
            vec![
                ("dir".to_string(), 3, 7),
                ("nope".to_string(), 4, 13),
                ("other".to_string(), 6, 5)
            ]
        );
    }

    #[test]
    fn accepts_what_rhai_defines() {
        let text = r#"
            import "galley/in_place" as in_place;
            const PORT = 80;
            let hosts = [1, 2];
            let total = 0;
            for (h, i) in hosts { total += h + i; }
            try { throw 1; } catch (e) { log(e); }
            let add = |x| x + total + PORT;
            let nested = |a| |b| a + b + hosts.len();
            fn task_fn(a, b) {
                let inner = |c| a + b + c + global::PORT;
                in_place::deploy(params.x, task);
                this.x = a;
                switch a { 1 => b, _ => inner.call(1) }
            }
            do { total -= 1; } while total > 0;
            let f = Fn("task_fn");
            let s = `${total} ${ if total > 0 { PORT } else { 0 } }`;
        "#;
        assert_eq!(strict(text), vec![]);
    }

    #[test]
    fn finds_names_across_the_pieces_of_a_large_recipe() {
        let mut text = String::from("import \"x\" as m;\n");
        for i in 0..12_000 {
            text.push_str(&format!("let v{i} = {i};\n"));
        }
        text.push_str("log(v0 + v11999 + m::f() + missing);\n");
        assert_eq!(strict(&text), vec![("missing".to_string(), 12_002, 28)]);
    }
}
