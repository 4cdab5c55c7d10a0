//! The whole recipe API as data, for `galley docs`, `galley check`, `galley defs` and editors:
//! the native functions as registered, and the stdlib's functions read from their compiled
//! modules (doc comments, and the option tables they pass to `options::check`).

use rhai::{ASTNode, Expr, Map, AST};
use serde::Serialize;

use super::{Kind, OptionSpec, Spec};
use crate::engine::{stdlib, Galley};

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
}

impl Function {
    /// `module::name`, `Type.name` or `name`, as a recipe writes it.
    pub fn qualified(&self) -> String {
        match (&self.module, self.kind) {
            (Some(module), _) => format!("{module}::{}", self.name),
            (None, Kind::Function) => self.name.clone(),
            (None, _) => format!(
                "{}.{}",
                self.params.first().map(|p| p.ty.as_str()).unwrap_or("?"),
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

/// The catalog of `galley`'s engine and the stdlib.
pub fn catalog(galley: &Galley) -> Catalog {
    let api = &galley.api;
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
    for (name, text) in stdlib::MODULES {
        // The stdlib is part of the binary and compiled by its tests: it always parses.
        let Ok(ast) = galley.engine.compile(*text) else {
            continue;
        };
        catalog.modules.push(ModuleInfo {
            name: name.to_string(),
            doc: module_doc(text),
            stdlib: true,
        });
        let mut functions = script_functions(name, &ast, &api.functions);
        // In the order the module defines them.
        functions.sort_by_key(|f| text.find(&format!("fn {}(", f.name)));
        catalog.functions.extend(functions);
    }
    catalog
}

/// The first paragraph of the comment that opens a stdlib module, without its `galley/NAME:`.
fn module_doc(text: &str) -> String {
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
                let table = literal(2).and_then(|t| t.try_cast::<Map>());
                let like = literal(3).and_then(|l| l.into_string().ok());
                if let (Some(name), Some(table)) = (name, table) {
                    if let Ok(mut options) = crate::primitives::options::script_table(&name, &table)
                    {
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
