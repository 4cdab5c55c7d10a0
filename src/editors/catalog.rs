//! The names of the recipe API as the engine knows them: its global functions and methods, its
//! property getters, its static modules (`ssh::connect`) and the stdlib's script modules
//! (`galley/rolling`), read from Rhai's own metadata and the stdlib's compiled ASTs.

use std::collections::{BTreeMap, BTreeSet};

use rhai::Engine;
use serde::Deserialize;

use crate::engine::{resolver::stdlib_key, stdlib};
use crate::report::Report;

/// Every name a recipe can call, by where it lives.
pub struct Catalog {
    /// Global functions and methods (`local`, `step`, `run`, `git`): Rhai does not tell them apart.
    pub functions: BTreeSet<String>,
    /// Property getters (`r.stdout`, `h.name`).
    pub properties: BTreeSet<String>,
    /// Static modules and their functions (`ssh` → `connect`, `hosts`).
    pub modules: BTreeMap<String, BTreeSet<String>>,
    /// The stdlib's script modules, in the order of `engine::stdlib::MODULES`.
    pub stdlib: Vec<ScriptModule>,
}

/// A stdlib module (`import "galley/rolling" as rolling;`).
pub struct ScriptModule {
    /// Its alias by convention, the last segment of its path (`rolling`).
    pub name: String,
    /// What `import` takes (`galley/rolling`).
    pub path: String,
    /// Its public functions, by name.
    pub functions: Vec<ScriptFn>,
}

/// A function of a stdlib module.
pub struct ScriptFn {
    pub name: String,
    pub params: Vec<String>,
    /// Its `///` doc comment, line by line as written.
    pub doc: Vec<String>,
}

/// The part of `Engine::gen_fn_metadata_to_json` that names things.
#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    modules: BTreeMap<String, Metadata>,
    #[serde(default)]
    functions: Vec<FnMetadata>,
}

#[derive(Deserialize)]
struct FnMetadata {
    name: String,
}

/// The report for what only a bug in Galley causes: its own engine or stdlib unreadable.
fn bug(message: String) -> Report {
    Report::plain(
        "galley::bug",
        message,
        "this is a bug in Galley, not in your recipe; please report it",
    )
}

/// A name Rhai can call as `name(...)`; operators and indexers are not.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Catalog {
    /// Reads the catalog from `engine` (Galley's, with every primitive registered).
    pub fn of(engine: &Engine) -> Result<Catalog, Report> {
        let metadata: Metadata = engine
            .gen_fn_metadata_to_json(false)
            .and_then(|json| serde_json::from_str(&json))
            .map_err(|e| bug(format!("the engine's metadata cannot be read: {e}")))?;
        let mut functions = BTreeSet::new();
        let mut properties = BTreeSet::new();
        for f in metadata.functions {
            if let Some(property) = f.name.strip_prefix("get$") {
                properties.insert(property.to_string());
            } else if is_identifier(&f.name) {
                functions.insert(f.name);
            }
        }
        let modules = metadata
            .modules
            .into_iter()
            .map(|(name, module)| {
                let names = module
                    .functions
                    .into_iter()
                    .map(|f| f.name)
                    .filter(|n| is_identifier(n))
                    .collect();
                (name, names)
            })
            .collect();
        Ok(Catalog {
            functions,
            properties,
            modules,
            stdlib: script_modules(engine)?,
        })
    }
}

/// Compiles each stdlib module (nothing runs) and lists its public functions.
fn script_modules(engine: &Engine) -> Result<Vec<ScriptModule>, Report> {
    stdlib::MODULES
        .iter()
        .map(|&(name, text)| {
            let ast = engine.compile(text).map_err(|e| {
                bug(format!(
                    "the stdlib module galley/{name} does not compile: {e}"
                ))
            })?;
            let mut functions: Vec<ScriptFn> = ast
                .iter_functions()
                // Closures are functions of the AST too, named `anon$HASH`.
                .filter(|f| f.access != rhai::FnAccess::Private && !f.name.starts_with("anon$"))
                .map(|f| ScriptFn {
                    name: f.name.to_string(),
                    params: f.params.iter().map(|p| p.to_string()).collect(),
                    doc: f
                        .comments
                        .iter()
                        .flat_map(|c| c.lines())
                        .map(str::to_string)
                        .collect(),
                })
                .collect();
            // The AST keeps its functions in a hash map: sorted, the generated files are stable.
            functions.sort_by(|a, b| (&a.name, a.params.len()).cmp(&(&b.name, b.params.len())));
            Ok(ScriptModule {
                name: name.to_string(),
                path: stdlib_key(name),
                functions,
            })
        })
        .collect()
}
