//! The whole recipe API as data, for `galley docs`, `galley check`, `galley defs` and editors:
//! the native functions as registered, and the stdlib's functions read from their compiled
//! modules (doc comments, and the option tables they pass to `options::check`).

use rhai::Engine;
use serde::Serialize;

use super::{Kind, OptionSpec, Registered, Spec};

/// Every module, type and function a recipe can use.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Catalog {
    pub modules: Vec<ModuleInfo>,
    pub types: Vec<TypeInfo>,
    /// One entry per overload, native ones in registration order, then the stdlib's.
    pub functions: Vec<Function>,
}

/// A module: `health`, or a stdlib strategy imported as `galley/rolling`.
#[derive(Clone, Debug, Serialize)]
pub struct ModuleInfo {
    pub name: String,
    pub doc: String,
    /// Imported with `import "galley/NAME" as NAME;` (the name recipes usually give it).
    pub stdlib: bool,
}

/// A custom type (`Host`, `Repo`...).
#[derive(Clone, Debug, Serialize)]
pub struct TypeInfo {
    pub name: String,
    pub doc: String,
}

/// One overload of a function.
#[derive(Clone, Debug, Serialize)]
pub struct Function {
    /// The module (`health`, `rolling`), or none for global functions, methods and properties.
    pub module: Option<String>,
    pub name: String,
    pub kind: Kind,
    /// Every parameter, a method's or property's receiver first.
    pub params: Vec<Param>,
    pub returns: String,
    pub doc: String,
    pub example: String,
    /// The keys of its options map (the parameter named `opts`); empty when it takes none.
    pub options: Vec<OptionInfo>,
    /// Defined by a stdlib module (in Rhai) rather than natively.
    pub stdlib: bool,
}

/// A parameter: its name and type.
#[derive(Clone, Debug, Serialize)]
pub struct Param {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

/// One key of an options map.
#[derive(Clone, Debug, Serialize)]
pub struct OptionInfo {
    pub key: String,
    #[serde(rename = "type")]
    pub ty: String,
    /// As a recipe would write it.
    pub default: Option<String>,
    pub required: bool,
    pub doc: String,
    /// The keys of a map-valued option that has a table of its own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<OptionInfo>,
}

impl Function {
    /// `module::name`, `Type.name` or `name`, as a recipe writes it.
    pub fn qualified(&self) -> String {
        match (&self.module, self.kind) {
            (Some(module), _) => format!("{module}::{}", self.name),
            (None, Kind::Function) => self.name.clone(),
            (None, _) => format!(
                "{}.{}",
                self.params.first().map_or("?", |p| p.ty.as_str()),
                self.name
            ),
        }
    }

    /// The number of arguments a call passes (a method's receiver not counted).
    pub fn arity(&self) -> usize {
        match self.kind {
            Kind::Function => self.params.len(),
            Kind::Method | Kind::Property => self.params.len().saturating_sub(1),
        }
    }

    fn from_spec(spec: &Spec) -> Self {
        Function {
            module: spec.module.map(str::to_string),
            name: spec.name.to_string(),
            kind: spec.kind,
            params: spec
                .params
                .iter()
                .map(|(name, ty)| Param {
                    name: name.to_string(),
                    ty: ty.to_string(),
                })
                .collect(),
            returns: spec.returns.to_string(),
            doc: spec.doc.to_string(),
            example: spec.example.to_string(),
            options: spec.options.iter().map(OptionInfo::from).collect(),
            stdlib: false,
        }
    }
}

impl From<&OptionSpec> for OptionInfo {
    fn from(o: &OptionSpec) -> Self {
        OptionInfo {
            key: o.key.to_string(),
            ty: o.ty.name().to_string(),
            default: (!o.default.is_empty()).then(|| o.default.to_string()),
            required: o.required,
            doc: o.doc.to_string(),
            keys: o.keys.iter().map(OptionInfo::from).collect(),
        }
    }
}

impl Catalog {
    /// Every overload of `module::name` (`module` none for global functions and methods).
    pub fn overloads<'a>(
        &'a self,
        module: Option<&'a str>,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Function> + 'a {
        self.functions
            .iter()
            .filter(move |f| f.module.as_deref() == module && f.name == name)
    }

    /// The option table of `module::name`, if an overload takes options.
    pub fn options<'a>(
        &'a self,
        module: Option<&'a str>,
        name: &'a str,
    ) -> Option<&'a [OptionInfo]> {
        self.overloads(module, name)
            .find(|f| !f.options.is_empty())
            .map(|f| f.options.as_slice())
    }
}

/// What a catalog is read from: an engine (`engine::Galley`), what was registered into it, and
/// the Rhai modules it ships (the stdlib).
pub trait Source {
    fn engine(&self) -> &Engine;
    fn registered(&self) -> &Registered;
    /// Each module as (name, source text).
    fn script_modules(&self) -> &[(&'static str, &'static str)];
}

/// The catalog of an engine (`crate::api::catalog(&galley)`) and its stdlib.
pub fn catalog(source: &impl Source) -> Catalog {
    let api = source.registered();
    let mut catalog = Catalog {
        modules: api
            .modules
            .iter()
            .map(|m| ModuleInfo {
                name: m.name.to_string(),
                doc: m.doc.to_string(),
                stdlib: false,
            })
            .collect(),
        types: api
            .types
            .iter()
            .map(|t| TypeInfo {
                name: t.name.to_string(),
                doc: t.doc.to_string(),
            })
            .collect(),
        functions: api.functions.iter().map(Function::from_spec).collect(),
    };
    for (name, text) in source.script_modules() {
        // The stdlib is part of the binary and compiled by its tests: it always parses.
        let Ok(ast) = source.engine().compile(*text) else {
            continue;
        };
        catalog.modules.push(ModuleInfo {
            name: name.to_string(),
            doc: super::script::module_doc(text),
            stdlib: true,
        });
        let mut functions = super::script::script_functions(name, &ast, &api.functions);
        // In the order the module defines them.
        functions.sort_by_key(|f| text.find(&format!("fn {}(", f.name)));
        catalog.functions.extend(functions);
    }
    catalog
}
