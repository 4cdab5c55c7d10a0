//! Builds the Rhai engine for a run: limits, cancellation, import resolution and every primitive.

pub mod check;
pub mod compile;
pub mod resolver;
pub mod stdlib;
pub mod tasks;

use std::path::Path;
use std::sync::Arc;

use rhai::{Engine, AST};

use crate::error::Code;
use crate::exec::Ctx;
use crate::primitives::{self, values::RunInputs};
use crate::report::{self, Report, Sources};

/// The default limit on script operations: far above any real recipe, reached in about a second by an endless loop.
pub const DEFAULT_MAX_OPERATIONS: u64 = 50_000_000;

/// The longest string a recipe may build (bytes): far above any real value, and a loop that
/// doubles a string stops here instead of exhausting memory.
pub const MAX_STRING_SIZE: usize = 32 * 1024 * 1024;
/// The most items in one array, and bytes in blobs: Rhai counts both with one limit, summed over
/// a map, and a command's result holds the kept output of both streams as blobs.
pub const MAX_ARRAY_SIZE: usize = 2 * crate::exec::stream::KEEP_LIMIT;
/// The most entries in one object map.
pub const MAX_MAP_SIZE: usize = 100_000;
/// The deepest nesting of function calls.
pub const MAX_CALL_LEVELS: usize = 128;

/// An engine together with the sources it loaded.
pub struct Galley {
    pub engine: Engine,
    pub sources: Sources,
    /// The recipe API as registered (`crate::api::catalog` reads it).
    pub api: crate::api::Registered,
    /// Ctrl-C or SIGTERM: also stops a long compile.
    cancel: tokio_util::sync::CancellationToken,
}

/// A compiled recipe.
pub struct Recipe {
    pub ast: AST,
    /// The key of the recipe in `Sources`.
    pub key: String,
}

impl Galley {
    /// An engine whose primitives act through `ctx`; `evaluate_imports` is false for `galley check`.
    pub fn new(
        ctx: &Arc<Ctx>,
        inputs: RunInputs,
        max_operations: u64,
        evaluate_imports: bool,
    ) -> Self {
        let sources = Sources::default();
        let mut engine = Engine::new();
        engine.set_max_operations(max_operations);
        engine.set_max_expr_depths(128, 64);
        // Rhai's default is 8 in debug builds; strategies nest closures deeper than that.
        engine.set_max_call_levels(MAX_CALL_LEVELS);
        // Rhai leaves data sizes unlimited: a runaway recipe would grow until the process dies.
        engine.set_max_string_size(MAX_STRING_SIZE);
        engine.set_max_array_size(MAX_ARRAY_SIZE);
        engine.set_max_map_size(MAX_MAP_SIZE);
        engine.set_module_resolver(resolver::Resolver::new(
            sources.clone(),
            evaluate_imports,
            ctx.run.libraries.clone(),
        ));
        let cancel = ctx.cancel.clone();
        engine.on_progress(move |_| cancel.is_cancelled().then(|| "interrupted".into()));
        share_global_constants(&mut engine);
        let api = primitives::register_all(&mut engine, ctx, inputs);
        Galley {
            engine,
            sources,
            api,
            cancel: ctx.cancel.clone(),
        }
    }

    /// An engine for reading recipes without running them: imports give only their functions.
    pub fn inspecting(ctx: &Arc<Ctx>) -> Self {
        Galley::new(ctx, RunInputs::default(), DEFAULT_MAX_OPERATIONS, false)
    }

    /// Reads and compiles a recipe file; a syntax error becomes a report.
    pub fn compile(&self, path: &Path) -> Result<Recipe, Report> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Report::plain(
                Code::RecipeNotFound,
                format!("cannot read recipe {}: {e}", path.display()),
                "give the path of a .rhai file; `galley init` writes a starter recipe",
            )
        })?;
        let key = path
            .canonicalize()
            .unwrap_or_else(|_| path.to_path_buf())
            .to_string_lossy()
            .into_owned();
        self.sources.add(&key, &path.to_string_lossy(), &text);
        let cancelled = || self.cancel.is_cancelled();
        let compiled =
            compile::compile(&self.engine, &text, &cancelled).ok_or_else(interrupted_compile)?;
        let mut ast = compiled.map_err(|e| {
            let err: Box<rhai::EvalAltResult> = e.into();
            self.report(&err, &key, None)
        })?;
        ast.set_source(key.as_str());
        self.sources.add_closures(&key, &ast);
        resolver::literal_imports(&ast).map_err(|e| self.report(&e, &key, None))?;
        Ok(Recipe { ast, key })
    }

    /// The text of a compiled recipe.
    pub fn text(&self, recipe: &Recipe) -> String {
        self.sources
            .get(&recipe.key)
            .map(|s| s.text)
            .unwrap_or_default()
    }

    /// Turns an engine error into a report pointing into the recipe `key`.
    pub fn report(&self, err: &rhai::EvalAltResult, key: &str, ast: Option<&AST>) -> Report {
        let known = report::Known::from(&self.engine, ast);
        report::from_rhai(
            err,
            &report::Context {
                sources: &self.sources,
                main: key,
                known: &known,
                engine: &self.engine,
            },
        )
    }
}

impl crate::api::catalog::Source for Galley {
    fn engine(&self) -> &Engine {
        &self.engine
    }
    fn registered(&self) -> &crate::api::Registered {
        &self.api
    }
    fn script_modules(&self) -> &[(&'static str, &'static str)] {
        stdlib::MODULES
    }
}

/// The report for a compile stopped by Ctrl-C or SIGTERM.
pub fn interrupted_compile() -> Report {
    Report::plain(
        Code::Interrupted,
        "interrupted while compiling the recipe",
        "nothing ran; run the recipe again",
    )
}

/// The global constants (`global::NAME`) that the recipe and every module it imports share.
type Constants =
    Arc<std::sync::RwLock<std::collections::BTreeMap<rhai::ImmutableString, rhai::Dynamic>>>;

/// Makes the recipe's `const`s visible as `global::NAME` in every function, also when a module
/// (the stdlib's strategies) calls back into a closure or function of the recipe. Rhai gives each
/// module the constants that were current when it was evaluated and swaps them in for the
/// module's functions, so a callback from a module would see the module's (none) instead. Here
/// one map serves the whole run: each top-level variable definition — in the recipe, and in each
/// module (the resolver ends every module with one, see `resolver::MODULE_END`) — installs it,
/// so modules capture it, and the recipe's later `const`s land in it.
fn share_global_constants(engine: &mut Engine) {
    let shared: Constants = Arc::default();
    // Marked volatile (not deprecated) by Rhai.
    #[allow(deprecated)]
    engine.on_def_var(move |is_runtime, info, mut context| {
        if !is_runtime || info.nesting_level() > 0 {
            return Ok(true);
        }
        let global = context.global_runtime_state_mut();
        if global
            .constants
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &shared))
        {
            return Ok(true);
        }
        if let Some(earlier) = global.constants.take() {
            if let (Ok(earlier), Ok(mut all)) = (earlier.read(), shared.write()) {
                all.extend(earlier.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        global.constants = Some(shared.clone());
        Ok(true)
    });
}
