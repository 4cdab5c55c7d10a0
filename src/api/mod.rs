//! The recipe API, described once. Every native function is declared as a `Spec` (module, name,
//! parameters, return type, doc, example, option table) and registered through `Api`, so Rhai's
//! own metadata (`Engine::definitions`, `gen_fn_signatures`), option validation (`Opts`),
//! `galley docs`, `galley check` and the editor definitions all read the same description.

pub mod catalog;
pub mod script;
mod types;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use rhai::{Engine, FuncRegistration, Module, RhaiNativeFunc, Variant};

pub use catalog::{catalog, Catalog};
pub use types::{describe, Type};

/// One key of a function's options map.
#[derive(Clone, Copy, Debug)]
pub struct OptionSpec {
    pub key: &'static str,
    pub ty: Type,
    /// The default as a recipe would write it; "" when there is none.
    pub default: &'static str,
    /// A call without this key is refused (`galley::missing_option`).
    pub required: bool,
    pub doc: &'static str,
    /// The keys of a map-valued option (`update: #{ parallelism, ... }`), when it has a table.
    pub keys: &'static [OptionSpec],
}

impl OptionSpec {
    /// The same option, a map with the keys of `table`.
    pub const fn with_keys(self, keys: &'static [OptionSpec]) -> OptionSpec {
        OptionSpec { keys, ..self }
    }
}

/// An option that may be left out.
pub const fn opt(
    key: &'static str,
    ty: Type,
    default: &'static str,
    doc: &'static str,
) -> OptionSpec {
    OptionSpec {
        key,
        ty,
        default,
        required: false,
        doc,
        keys: &[],
    }
}

/// An option that every call must give.
pub const fn required(key: &'static str, ty: Type, doc: &'static str) -> OptionSpec {
    OptionSpec {
        key,
        ty,
        default: "",
        required: true,
        doc,
        keys: &[],
    }
}

/// How a recipe calls a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `name(args)` or `module::name(args)`.
    Function,
    /// `value.name(args)`: the first parameter is the receiver.
    Method,
    /// `value.name`: a read-only property.
    Property,
}

/// The description of one native function (one overload).
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// `Some("health")` for `health::http`; `None` for global functions and methods.
    pub module: Option<&'static str>,
    pub name: &'static str,
    pub kind: Kind,
    /// (name, type) of each parameter, the receiver of a method or property first.
    pub params: &'static [(&'static str, &'static str)],
    /// The type of the value it returns ("()" for none).
    pub returns: &'static str,
    /// One line saying what it does.
    pub doc: &'static str,
    /// One line of recipe code calling it.
    pub example: &'static str,
    /// The keys of its options map (the parameter named `opts`), empty when it takes none.
    pub options: &'static [OptionSpec],
}

impl Spec {
    /// A global function, or a module function with `.module(..)`.
    pub const fn function(
        name: &'static str,
        params: &'static [(&'static str, &'static str)],
        returns: &'static str,
    ) -> Spec {
        Spec {
            module: None,
            name,
            kind: Kind::Function,
            params,
            returns,
            doc: "",
            example: "",
            options: &[],
        }
    }

    /// A method: `params[0]` is the receiver.
    pub const fn method(
        name: &'static str,
        params: &'static [(&'static str, &'static str)],
        returns: &'static str,
    ) -> Spec {
        Spec {
            kind: Kind::Method,
            ..Spec::function(name, params, returns)
        }
    }

    /// A read-only property `name` of values of type `on`.
    pub const fn property(
        on: &'static [(&'static str, &'static str)],
        name: &'static str,
        returns: &'static str,
    ) -> Spec {
        Spec {
            kind: Kind::Property,
            ..Spec::function(name, on, returns)
        }
    }

    /// The same function in module `module` (`module::name`).
    pub const fn module(self, module: &'static str) -> Spec {
        Spec {
            module: Some(module),
            ..self
        }
    }

    /// With its doc line.
    pub const fn doc(self, doc: &'static str) -> Spec {
        Spec { doc, ..self }
    }

    /// With its one-line example.
    pub const fn example(self, example: &'static str) -> Spec {
        Spec { example, ..self }
    }

    /// With the table of its options map (the parameter named `opts`).
    pub const fn options(self, options: &'static [OptionSpec]) -> Spec {
        Spec { options, ..self }
    }

    /// The overload without the trailing options map (every option at its default).
    pub const fn without_options(self) -> Spec {
        let params = match self.params.split_last() {
            Some((_, rest)) => rest,
            None => self.params,
        };
        Spec {
            params,
            options: &[],
            ..self
        }
    }

    /// `module::name`, `Type.name`, or `name`, as a recipe writes it.
    pub fn qualified(&self) -> String {
        match (self.module, self.kind) {
            (Some(module), _) => format!("{module}::{}", self.name),
            (None, Kind::Function) => self.name.to_string(),
            (None, _) => format!("{}.{}", self.params.first().map_or("?", |p| p.1), self.name),
        }
    }

    /// The doc comment Rhai keeps with the function: the doc, the example and the options.
    fn comments(&self) -> String {
        let mut lines = vec![format!("/// {}", self.doc)];
        if !self.example.is_empty() {
            lines.push("///".into());
            lines.push(format!("/// Example: `{}`", self.example));
        }
        if !self.options.is_empty() {
            lines.push("///".into());
            lines.push("/// Options:".into());
            for o in self.options {
                lines.push(format!("/// - `{}`: {}", o.key, option_line(o)));
            }
        }
        lines.join("\n")
    }

    /// `name: type` of each parameter, then the return type, as Rhai's metadata wants them.
    fn params_info(&self) -> Vec<String> {
        let mut info: Vec<String> = self
            .params
            .iter()
            .map(|(name, ty)| format!("{name}: {ty}"))
            .collect();
        if self.returns != "()" {
            info.push(self.returns.to_string());
        }
        info
    }
}

/// An option's type, default and doc on one line.
pub fn option_line(o: &OptionSpec) -> String {
    let mut line = o.ty.name().to_string();
    if o.required {
        line.push_str(", required");
    } else if !o.default.is_empty() {
        line.push_str(&format!(", default {}", o.default));
    }
    format!("{line}; {}", o.doc)
}

/// A custom type of the API (`Host`, `Repo`...) and what it is.
#[derive(Clone, Copy, Debug)]
pub struct TypeSpec {
    pub name: &'static str,
    pub doc: &'static str,
}

/// A module of the API (`health`, `ssh`...) and what it holds.
#[derive(Clone, Copy, Debug)]
pub struct ModuleSpec {
    pub name: &'static str,
    pub doc: &'static str,
}

/// What registration recorded: every function, type and module, in registration order.
#[derive(Clone, Debug, Default)]
pub struct Registered {
    pub functions: Vec<Spec>,
    pub types: Vec<TypeSpec>,
    pub modules: Vec<ModuleSpec>,
}

/// Registers the API into an engine and records its description.
pub struct Api<'e> {
    engine: &'e mut Engine,
    modules: BTreeMap<&'static str, Module>,
    registered: Registered,
    /// Every function, once registration is over, for natives that look others up.
    later: Arc<OnceLock<Vec<Spec>>>,
}

impl<'e> Api<'e> {
    /// Registration into `engine`.
    pub fn new(engine: &'e mut Engine) -> Self {
        Api {
            engine,
            modules: BTreeMap::new(),
            registered: Registered::default(),
            later: Arc::default(),
        }
    }

    /// The engine, for what is not a function (print handlers, variable resolvers).
    pub fn engine(&mut self) -> &mut Engine {
        self.engine
    }

    /// Registers the custom type `T` under `name`.
    pub fn register_type<T: Variant + Clone>(&mut self, name: &'static str, doc: &'static str) {
        self.engine.register_type_with_name::<T>(name);
        self.registered.types.push(TypeSpec { name, doc });
    }

    /// Declares the module `name` (its functions come with `Spec::module`).
    pub fn module(&mut self, name: &'static str, doc: &'static str) {
        self.modules
            .entry(name)
            .or_default()
            .set_doc(format!("//! {doc}"));
        self.registered.modules.push(ModuleSpec { name, doc });
    }

    /// Registers `func` as described by `spec`.
    pub fn register<A: 'static, const N: usize, const X: bool, R, const F: bool, FUNC>(
        &mut self,
        spec: Spec,
        func: FUNC,
    ) where
        R: Variant + Clone,
        FUNC: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
    {
        debug_assert_eq!(
            FUNC::num_params(),
            spec.params.len(),
            "the spec of `{}` names a different number of parameters than the function takes",
            spec.qualified()
        );
        let name = match spec.kind {
            Kind::Property => format!("get${}", spec.name),
            _ => spec.name.to_string(),
        };
        let registration = FuncRegistration::new(name)
            .with_params_info(spec.params_info())
            .with_comments([spec.comments()]);
        match spec.module {
            Some(module) => {
                let module = self.modules.entry(module).or_default();
                registration
                    .in_internal_namespace()
                    .set_into_module(module, func);
            }
            None => {
                registration.register_into_engine(self.engine, func);
            }
        }
        self.registered.functions.push(spec);
    }

    /// Every function registered, filled in by `finish` (for a native that looks others up
    /// when it is called).
    pub fn functions_later(&self) -> Arc<OnceLock<Vec<Spec>>> {
        self.later.clone()
    }

    /// Registers the modules into the engine; returns what was registered.
    pub fn finish(self) -> Registered {
        let _ = self.later.set(self.registered.functions.clone());
        for (name, module) in self.modules {
            self.engine.register_static_module(name, module.into());
        }
        self.registered
    }
}
