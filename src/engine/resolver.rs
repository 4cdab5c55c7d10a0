//! Resolves `import` paths: `galley/NAME` from the embedded stdlib, other paths relative to the
//! importing file, then in each folder of `GALLEY_PATH`; a path whose first segment names a
//! library in `galley.toml` comes from the verified library cache. Records every source for reports.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rhai::module_resolvers::ModuleResolver;
use rhai::{ASTNode, Dynamic, Engine, EvalAltResult, Module, Position, Scope, Shared, Stmt, AST};

type SharedModule = Shared<Module>;

use super::stdlib;
use crate::error::Failure;
use crate::report::Sources;

/// The key of a stdlib module in `Sources` (and the source name Rhai reports).
pub fn stdlib_key(name: &str) -> String {
    format!("galley/{name}")
}

/// Appended to every module's text so that its top level defines at least one variable, which
/// gives it the run's shared global constants (see `engine::share_global_constants`). One line
/// at the end, so positions in the module are unchanged.
pub const MODULE_END: &str = "\nlet __galley_module_end__ = ();\n";

/// Import resolution for one run.
pub struct Resolver {
    sources: Sources,
    search: Vec<PathBuf>,
    /// Evaluate module top-level code (a run) or only collect functions (`galley check`).
    evaluate: bool,
    cache: Mutex<HashMap<String, SharedModule>>,
    /// Imports of locked libraries (`team/rolling`).
    libraries: crate::libs::Imports,
}

impl Resolver {
    /// A resolver that records sources into `sources` and the libraries it loads into `used`.
    pub fn new(sources: Sources, evaluate: bool, used: std::sync::Arc<Mutex<Vec<String>>>) -> Self {
        let search = std::env::var_os("GALLEY_PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        Resolver {
            sources,
            search,
            evaluate,
            cache: Mutex::default(),
            libraries: crate::libs::Imports::new(used),
        }
    }

    /// Finds the module: (key, display name, text).
    fn locate(&self, importer: Option<&str>, path: &str) -> Option<(String, String, String)> {
        if let Some(name) = path.strip_prefix("galley/") {
            let text = stdlib::get(name)?;
            return Some((
                stdlib_key(name),
                format!("<stdlib>/{name}.rhai"),
                text.to_string(),
            ));
        }
        let file = if path.ends_with(".rhai") {
            path.to_string()
        } else {
            format!("{path}.rhai")
        };
        let file = Path::new(&file);
        let mut candidates = Vec::new();
        if file.is_absolute() {
            candidates.push(file.to_path_buf());
        } else {
            if let Some(dir) = importer
                .map(Path::new)
                .and_then(Path::parent)
                .filter(|d| d.is_absolute())
            {
                candidates.push(dir.join(file));
            }
            candidates.extend(self.search.iter().map(|dir| dir.join(file)));
        }
        candidates.into_iter().find_map(|candidate| {
            let text = std::fs::read_to_string(&candidate).ok()?;
            let key = candidate
                .canonicalize()
                .ok()?
                .to_string_lossy()
                .into_owned();
            Some((key, display_name(&candidate), text))
        })
    }
}

/// A path as reports show it: relative to the working directory when it is below it.
pub fn display_name(path: &Path) -> String {
    let absolute = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    std::env::current_dir()
        .ok()
        .and_then(|cwd| absolute.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or(absolute)
        .to_string_lossy()
        .into_owned()
}

thread_local! {
    /// The modules being loaded on this thread, outermost first: a module's imports are
    /// resolved (and its code run) while it is still loading, so a repeat means a cycle.
    static LOADING: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Marks a module as loading for as long as it lives.
struct Loading;

impl Loading {
    /// Enters `key`, imported from `importer`; a module already loading is a cycle.
    fn enter(key: &str, importer: Option<&str>) -> Result<Loading, Failure> {
        LOADING.with(|loading| {
            let mut loading = loading.borrow_mut();
            let mut chain = loading.clone();
            if chain.is_empty() {
                // The recipe itself is not loaded through the resolver.
                chain.extend(importer.map(str::to_string));
            }
            if let Some(start) = chain.iter().position(|k| k == key) {
                let mut cycle = chain.split_off(start);
                cycle.push(key.to_string());
                return Err(Failure::ImportCycle {
                    chain: cycle.iter().map(|k| shown_key(k)).collect(),
                });
            }
            loading.push(key.to_string());
            Ok(Loading)
        })
    }
}

impl Drop for Loading {
    fn drop(&mut self) {
        LOADING.with(|loading| loading.borrow_mut().pop());
    }
}

/// A module key as a report shows it.
fn shown_key(key: &str) -> String {
    if key.starts_with("galley/") {
        key.to_string()
    } else {
        display_name(Path::new(key))
    }
}

/// Refuses an `import` whose path is not a string literal anywhere in `ast`: imports are
/// resolved, checked and watched before anything runs.
pub fn literal_imports(ast: &AST) -> Result<(), Box<EvalAltResult>> {
    let mut found = None;
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Stmt(Stmt::Import(import, pos))) = path.last() {
            if !import
                .0
                .get_literal_value(None)
                .is_some_and(|v| v.is_string())
            {
                found = Some(*pos);
                return false;
            }
        }
        true
    });
    match found {
        Some(pos) => Err(Box::new(EvalAltResult::ErrorRuntime(
            Dynamic::from(Failure::ImportNotLiteral),
            pos,
        ))),
        None => Ok(()),
    }
}

/// The literal import paths at the top level of `ast`, with their positions.
fn top_level_imports(ast: &AST) -> Vec<(String, Position)> {
    ast.statements()
        .iter()
        .filter_map(|stmt| match stmt {
            Stmt::Import(import, pos) => import
                .0
                .get_literal_value(None)
                .and_then(|v| v.into_string().ok())
                .map(|path| (path, *pos)),
            _ => None,
        })
        .collect()
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        let found = match self.libraries.locate(source, path) {
            Ok(Some(found)) => Some(found),
            Ok(None) => self.locate(source, path),
            Err(e) => return Err(Failure::Library(e).into_rhai_at(pos)),
        };
        let (key, name, text) = found
            .ok_or_else(|| Box::new(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos)))?;
        if let Some(module) = self.cache.lock().expect("cache lock").get(&key) {
            return Ok(module.clone());
        }
        let _loading = Loading::enter(&key, source).map_err(|failure| {
            Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(failure), pos))
        })?;
        self.sources.add(&key, &name, &text);
        let in_module =
            |e: Box<EvalAltResult>| Box::new(EvalAltResult::ErrorInModule(key.clone(), e, pos));
        let mut ast = super::compile::compile(engine, &format!("{text}{MODULE_END}"), &|| false)
            .ok_or_else(|| Box::new(EvalAltResult::ErrorTerminated(Dynamic::UNIT, pos)))?
            .map_err(|e| in_module(e.into()))?;
        ast.set_source(key.as_str());
        self.sources.add_closures(&key, &ast);
        literal_imports(&ast).map_err(in_module)?;
        let ast = if self.evaluate {
            ast
        } else {
            // Only functions are kept, so the module's own imports would go unchecked:
            // resolve them here (a missing module or a cycle is reported, in `check` too).
            for (path, at) in top_level_imports(&ast) {
                self.resolve(engine, Some(&key), &path, at)
                    .map_err(in_module)?;
            }
            ast.clone_functions_only()
        };
        let mut module = Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(in_module)?;
        module.set_id(key.as_str());
        let module: SharedModule = module.into();
        self.cache
            .lock()
            .expect("cache lock")
            .insert(key, module.clone());
        Ok(module)
    }
}
