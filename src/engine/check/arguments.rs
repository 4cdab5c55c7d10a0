//! Calls to the recipe API that cannot work, as their literals show before anything runs: the
//! wrong number of arguments (`h.git()`), a literal of the wrong type (`health::http(8000)`),
//! and option keys a function does not take (`#{ timout: "5s" }`). The catalog (`crate::api`)
//! says what each function and stdlib strategy takes; for a native function the engine's own
//! metadata (the Rust types Rhai dispatches on, Rhai's packages included) decides whether some
//! overload can take the call, so a report is never about a call that would work.

use std::any::TypeId;
use std::collections::HashMap;

use rhai::{ASTNode, Dynamic, Expr, FnPtr, Map, Stmt};

use crate::api::catalog::{Function, OptionInfo};
use crate::api::{Catalog, Type};
use crate::engine::{Galley, Recipe};
use crate::error::{Code, Failure};
use crate::report::Report;

/// Every call in `recipe` to a function of the catalog that its literals show to be wrong.
pub fn wrong_arguments(galley: &Galley, recipe: &Recipe) -> Vec<Report> {
    let checker = Checker {
        galley,
        recipe,
        catalog: crate::api::catalog(galley),
        natives: natives(galley),
        imports: imports(recipe),
        own: recipe
            .ast
            .iter_functions()
            .map(|f| f.name.to_string())
            .collect(),
    };
    let mut reports = Vec::new();
    recipe.ast.walk(&mut |path: &[ASTNode]| {
        let (call, pos, method) = match path.last() {
            Some(
                ASTNode::Expr(Expr::FnCall(call, pos)) | ASTNode::Stmt(Stmt::FnCall(call, pos)),
            ) => (call, *pos, false),
            Some(ASTNode::Expr(Expr::MethodCall(call, pos))) => (call, *pos, true),
            _ => return true,
        };
        if call.op_token.is_none() {
            reports.extend(checker.call(call, pos, method));
        }
        true
    });
    reports
}

/// The parameter types of each overload of each native function, as Rhai dispatches on them,
/// by (namespace, "" for global; name).
type Natives = HashMap<(String, String), Vec<Vec<TypeId>>>;

/// Every native function of the engine, Rhai's packages included.
fn natives(galley: &Galley) -> Natives {
    let all = galley.engine.collect_fn_metadata(
        None,
        |info| {
            info.script.is_none().then(|| {
                (
                    (info.namespace.to_string(), info.metadata.name.to_string()),
                    info.metadata.param_types.to_vec(),
                )
            })
        },
        true,
    );
    let mut natives = Natives::new();
    for (key, params) in all {
        natives.entry(key).or_default().push(params);
    }
    natives
}

/// The stdlib module each import alias names (`import "galley/rolling" as r;` gives r ->
/// rolling), `None` for the recipe's own modules.
fn imports(recipe: &Recipe) -> HashMap<String, Option<String>> {
    recipe
        .ast
        .statements()
        .iter()
        .filter_map(|stmt| match stmt {
            Stmt::Import(import, _) => {
                let path = import.0.get_literal_value(None)?.into_string().ok()?;
                let module = path.strip_prefix("galley/").map(str::to_string);
                Some((import.1.name.to_string(), module))
            }
            _ => None,
        })
        .collect()
}

struct Checker<'a> {
    galley: &'a Galley,
    recipe: &'a Recipe,
    catalog: Catalog,
    natives: Natives,
    imports: HashMap<String, Option<String>>,
    /// The recipe's own functions: Rhai calls them before any native one.
    own: Vec<String>,
}

/// What a call reaches: the catalog's module and name, and whether a stdlib module defines it.
struct Target {
    module: Option<String>,
    name: String,
    stdlib: bool,
    method: bool,
}

impl Target {
    fn qualified(&self) -> String {
        match &self.module {
            Some(module) => format!("{module}::{}", self.name),
            None => self.name.clone(),
        }
    }
}

impl Checker<'_> {
    fn call(&self, call: &rhai::FnCallExpr, pos: rhai::Position, method: bool) -> Vec<Report> {
        let Some(target) = self.target(call, method) else {
            return Vec::new();
        };
        let overloads: Vec<&Function> = self
            .catalog
            .overloads(target.module.as_deref(), &target.name)
            .filter(|f| f.stdlib == target.stdlib)
            .collect();
        if overloads.is_empty() {
            return Vec::new();
        }
        // The receiver of a method call is its first argument.
        let count = call.args.len() + usize::from(method);
        let shapes: Vec<Option<Shape>> = (0..usize::from(method))
            .map(|_| None)
            .chain(call.args.iter().map(Shape::of))
            .collect();
        let fitting: Vec<&Function> = overloads
            .iter()
            .copied()
            .filter(|f| f.params.len() == count)
            .collect();
        if !self.reachable(&target, count, &[]) {
            return vec![self.arity(&target, &overloads, call.args.len(), pos)];
        }
        if !self.reachable(&target, count, &shapes) {
            if let Some(report) = self.mistyped(&target, &overloads, &fitting, &shapes, call) {
                return vec![report];
            }
        }
        let Some(f) = fitting.iter().find(|f| !f.options.is_empty()) else {
            return Vec::new();
        };
        let function = target.qualified();
        // The options map is the parameter named `opts` (not always the last one).
        let opts = f.params.iter().position(|p| p.name == "opts");
        let arg = opts.and_then(|i| i.checked_sub(usize::from(method)));
        match arg.and_then(|i| call.args.get(i)).and_then(literal_entries) {
            Some(entries) => self.options(&function, &f.options, entries, pos),
            None => Vec::new(),
        }
    }

    /// The catalog function a call reaches, if it is one.
    fn target(&self, call: &rhai::FnCallExpr, method: bool) -> Option<Target> {
        let name = call.name.to_string();
        let namespace = call.namespace.to_string();
        let (module, stdlib) = if namespace.is_empty() {
            if self.own.contains(&name) {
                return None;
            }
            (None, false)
        } else if let Some(module) = self.imports.get(&namespace) {
            // A module of the recipe's own (even one named like Galley's): `check::calls`
            // knows its functions.
            (Some(module.clone()?), true)
        } else if self
            .catalog
            .modules
            .iter()
            .any(|m| !m.stdlib && m.name == namespace)
        {
            (Some(namespace), false)
        } else {
            return None;
        };
        Some(Target {
            module,
            name,
            stdlib,
            method,
        })
    }

    /// Whether some overload takes `count` arguments whose known shapes fit its parameters.
    fn reachable(&self, target: &Target, count: usize, shapes: &[Option<Shape>]) -> bool {
        let fits = |i: usize, param: &dyn Fn(&Shape) -> bool| {
            shapes.get(i).copied().flatten().is_none_or(|s| param(&s))
        };
        if target.stdlib {
            return self
                .catalog
                .overloads(target.module.as_deref(), &target.name)
                .filter(|f| f.stdlib && f.params.len() == count)
                .any(|f| {
                    f.params
                        .iter()
                        .enumerate()
                        .all(|(i, p)| fits(i, &|s| s.fits_type(&p.ty)))
                });
        }
        let key = (
            target.module.clone().unwrap_or_default(),
            target.name.clone(),
        );
        self.natives
            .get(&key)
            .into_iter()
            .flatten()
            .filter(|params| params.len() == count)
            .any(|params| {
                params
                    .iter()
                    .enumerate()
                    .all(|(i, t)| fits(i, &|s| s.fits_type_id(*t)))
            })
    }

    fn at(&self, report: Report, pos: rhai::Position, label: &str) -> Report {
        report.at(&self.galley.sources, &self.recipe.key, pos, label)
    }

    /// The report for a call with a number of arguments that no overload takes.
    fn arity(
        &self,
        target: &Target,
        overloads: &[&Function],
        given: usize,
        pos: rhai::Position,
    ) -> Report {
        let mut counts: Vec<usize> = overloads.iter().map(|f| args_of(f, target).len()).collect();
        counts.sort_unstable();
        counts.dedup();
        let counts: Vec<String> = counts.iter().map(usize::to_string).collect();
        let takes = match counts.as_slice() {
            [one] => one.clone(),
            [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
            [] => "none".to_string(),
        };
        let called = if target.method {
            format!(".{}(...)", target.name)
        } else {
            target.qualified()
        };
        let report = Report::plain(
            Code::WrongArguments,
            format!(
                "`{called}` is given {given} argument{}, but it takes {takes}",
                plural(given)
            ),
            takes_help(target, overloads),
        );
        self.at(report, pos, "this call")
    }

    /// The report for a literal argument that no overload of its arity takes.
    fn mistyped(
        &self,
        target: &Target,
        overloads: &[&Function],
        fitting: &[&Function],
        shapes: &[Option<Shape>],
        call: &rhai::FnCallExpr,
    ) -> Option<Report> {
        let offset = usize::from(target.method);
        // The first literal that the overloads of this arity all refuse.
        let (i, shape) = shapes.iter().enumerate().find_map(|(i, shape)| {
            let shape = (*shape)?;
            let refused = fitting
                .iter()
                .all(|f| f.params.get(i).is_some_and(|p| !shape.fits_type(&p.ty)));
            refused.then_some((i, shape))
        })?;
        let param = fitting.first().and_then(|f| f.params.get(i))?;
        let arg = call.args.get(i - offset)?;
        let report = Report::plain(
            Code::WrongArguments,
            format!(
                "`{}` takes {} as `{}`, not {}",
                target.qualified(),
                a(&param.ty),
                param.name,
                shape.describe(arg)
            ),
            takes_help(target, overloads),
        );
        Some(self.at(report, arg.position(), "this argument"))
    }

    /// The reports for the entries (key, literal value if it is one, position) of an options
    /// map that the function's table refuses; a missing required key is reported at the call.
    fn options(
        &self,
        function: &str,
        table: &[OptionInfo],
        entries: Vec<(String, Option<Dynamic>, rhai::Position)>,
        call_pos: rhai::Position,
    ) -> Vec<Report> {
        let mut reports = Vec::new();
        for (key, literal, pos) in &entries {
            let mut one = Map::new();
            // A value known only when the recipe runs is checked then: here only its key.
            one.insert(key.into(), literal.clone().unwrap_or(Dynamic::TRUE));
            let types = table.iter().map(|o| {
                let ty = match (literal, Type::from_name(&o.ty)) {
                    (Some(_), Some(ty)) => ty.name(),
                    _ => "any",
                };
                (o.key.as_str(), ty, false)
            });
            if let Err(failure) = self.check_options(function, one, types) {
                reports.push(self.at(Report::failure(&failure), *pos, "this option"));
            }
        }
        for o in table.iter().filter(|o| o.required) {
            if !entries.iter().any(|(k, ..)| *k == o.key) {
                let failure = Failure::MissingOption {
                    function: function.to_string(),
                    key: o.key.clone(),
                    expected: Type::from_name(&o.ty)
                        .map_or(o.ty.as_str(), |t| t.expected())
                        .to_string(),
                };
                reports.push(self.at(Report::failure(&failure), call_pos, "this call"));
            }
        }
        reports
    }

    /// Runs the API's own `options::check` on `map`, so that a report here is the one the call
    /// would give when it runs.
    fn check_options<'t>(
        &self,
        function: &str,
        map: Map,
        table: impl Iterator<Item = (&'t str, &'static str, bool)>,
    ) -> Result<(), Failure> {
        let mut spec = Map::new();
        for (key, ty, required) in table {
            let mut entry = Map::new();
            entry.insert("type".into(), ty.into());
            entry.insert("required".into(), required.into());
            spec.insert(key.into(), entry.into());
        }
        let mut scope = rhai::Scope::new();
        scope.push("function", function.to_string());
        scope.push("opts", map);
        scope.push("table", spec);
        let Err(mut err) = self
            .galley
            .engine
            .eval_with_scope::<Dynamic>(&mut scope, "options::check(function, opts, table)")
        else {
            return Ok(());
        };
        loop {
            match *err {
                rhai::EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => err = inner,
                rhai::EvalAltResult::ErrorRuntime(value, _) => {
                    return value.try_cast::<Failure>().map_or(Ok(()), Err)
                }
                _ => return Ok(()),
            }
        }
    }
}

/// The entries of a literal map: key, value if it is a literal, position of the key.
fn literal_entries(expr: &Expr) -> Option<Vec<(String, Option<Dynamic>, rhai::Position)>> {
    match expr {
        Expr::Map(map, _) => Some(
            map.0
                .iter()
                .map(|(key, value)| (key.name.to_string(), value.get_literal_value(None), key.pos))
                .collect(),
        ),
        // A map of constants that the optimizer folded (`check` compiles without it).
        Expr::DynamicConstant(value, at) => value.read_lock::<Map>().map(|map| {
            map.iter()
                .map(|(k, v)| (k.to_string(), Some(v.clone()), *at))
                .collect()
        }),
        _ => None,
    }
}

/// The parameters a call writes in its parentheses: a method call's receiver is the first.
fn args_of<'f>(f: &'f Function, target: &Target) -> &'f [crate::api::catalog::Param] {
    if target.method {
        f.params.get(1..).unwrap_or_default()
    } else {
        &f.params
    }
}

/// "it takes: ..." with every overload, as the recipe writes the call.
fn takes_help(target: &Target, overloads: &[&Function]) -> String {
    let forms: Vec<String> = overloads
        .iter()
        .map(|f| {
            let params: Vec<String> = args_of(f, target)
                .iter()
                .map(|p| format!("{}: {}", p.name, p.ty))
                .collect();
            let name = if target.method {
                format!(
                    "{}.{}",
                    f.params.first().map_or("?", |p| p.ty.as_str()),
                    f.name
                )
            } else {
                target.qualified()
            };
            format!("{name}({})", params.join(", "))
        })
        .collect();
    let docs = target.module.as_deref().unwrap_or(&target.name);
    format!(
        "it takes: {}; `galley docs {docs}` describes it",
        forms.join("; ")
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// "a string", "an int", "a Host".
fn a(ty: &str) -> String {
    let article = if ty.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {ty}")
}

/// What a literal argument is, whatever the values inside it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    String,
    Int,
    Float,
    Bool,
    Char,
    Array,
    Map,
    Unit,
    Fn,
}

impl Shape {
    fn of(expr: &Expr) -> Option<Shape> {
        Some(match expr {
            Expr::StringConstant(..) | Expr::InterpolatedString(..) => Shape::String,
            Expr::IntegerConstant(..) => Shape::Int,
            Expr::FloatConstant(..) => Shape::Float,
            Expr::BoolConstant(..) => Shape::Bool,
            Expr::CharConstant(..) => Shape::Char,
            Expr::Array(..) => Shape::Array,
            Expr::Map(..) => Shape::Map,
            Expr::Unit(..) => Shape::Unit,
            Expr::DynamicConstant(value, _) => Shape::of_value(value)?,
            // A closure that captures variables is curried with them.
            Expr::FnCall(call, _) if call.name == "curry" => Shape::Fn,
            _ => return None,
        })
    }

    fn of_value(value: &Dynamic) -> Option<Shape> {
        Some(if value.is_string() {
            Shape::String
        } else if value.is_int() {
            Shape::Int
        } else if value.is_float() {
            Shape::Float
        } else if value.is_bool() {
            Shape::Bool
        } else if value.is_char() {
            Shape::Char
        } else if value.is_array() {
            Shape::Array
        } else if value.is_map() {
            Shape::Map
        } else if value.is_unit() {
            Shape::Unit
        } else if value.is_fnptr() {
            Shape::Fn
        } else {
            return None;
        })
    }

    fn type_id(self) -> TypeId {
        match self {
            Shape::String => TypeId::of::<rhai::ImmutableString>(),
            Shape::Int => TypeId::of::<rhai::INT>(),
            Shape::Float => TypeId::of::<rhai::FLOAT>(),
            Shape::Bool => TypeId::of::<bool>(),
            Shape::Char => TypeId::of::<char>(),
            Shape::Array => TypeId::of::<rhai::Array>(),
            Shape::Map => TypeId::of::<Map>(),
            Shape::Unit => TypeId::of::<()>(),
            Shape::Fn => TypeId::of::<FnPtr>(),
        }
    }

    /// Whether Rhai can pass it for a parameter of this Rust type.
    fn fits_type_id(self, param: TypeId) -> bool {
        param == TypeId::of::<Dynamic>() || param == self.type_id()
    }

    /// Whether it fits a type as the catalog names it (`string`, `map`, `string | array`...).
    fn fits_type(self, ty: &str) -> bool {
        let name = self.name();
        ty.split('|').map(str::trim).any(|t| {
            t == name
                || t == "any"
                || (t == "number" && matches!(self, Shape::Int | Shape::Float))
                // A lowercase type it does not know (a description) takes anything; a custom
                // type (`Host`) takes no literal.
                || !matches!(
                    t,
                    "string" | "int" | "float" | "bool" | "char" | "array" | "map" | "()" | "fn"
                        | "number"
                ) && t.starts_with(char::is_lowercase)
        })
    }

    fn name(self) -> &'static str {
        match self {
            Shape::String => "string",
            Shape::Int => "int",
            Shape::Float => "float",
            Shape::Bool => "bool",
            Shape::Char => "char",
            Shape::Array => "array",
            Shape::Map => "map",
            Shape::Unit => "()",
            Shape::Fn => "fn",
        }
    }

    /// "an int (8000)", "a map".
    fn describe(self, expr: &Expr) -> String {
        let value = expr
            .get_literal_value(None)
            .filter(|_| {
                matches!(
                    self,
                    Shape::String | Shape::Int | Shape::Float | Shape::Bool
                )
            })
            .map(|v| {
                if v.is_string() {
                    format!(" ({:?})", v.to_string())
                } else {
                    format!(" ({v})")
                }
            })
            .unwrap_or_default();
        format!("{}{value}", a(self.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_shapes_fit_the_types_the_catalog_names() {
        assert!(Shape::String.fits_type("string"));
        assert!(Shape::Array.fits_type("string | array"));
        assert!(Shape::Int.fits_type("number"));
        assert!(Shape::Int.fits_type("any"));
        assert!(!Shape::Int.fits_type("string"));
        assert!(!Shape::String.fits_type("Host"));
        assert!(!Shape::Map.fits_type("fn"));
        assert!(Shape::Int.fits_type_id(TypeId::of::<Dynamic>()));
        assert!(!Shape::Int.fits_type_id(TypeId::of::<rhai::ImmutableString>()));
    }

    #[test]
    fn reads_the_shape_of_literals() {
        let engine = rhai::Engine::new();
        let ast = engine
            .compile("f(\"a\", `b${1}`, 8000, 1.5, [x], #{ a: y }, || 1, true);")
            .unwrap();
        let Some(Stmt::FnCall(call, _)) = ast.statements().first() else {
            panic!("{:?}", ast.statements());
        };
        let shapes: Vec<Option<Shape>> = call.args.iter().map(Shape::of).collect();
        use Shape::*;
        assert_eq!(
            shapes,
            [String, String, Int, Float, Array, Map, Fn, Bool].map(Some)
        );
        assert_eq!(Int.describe(&call.args[2]), "an int (8000)");
    }
}
