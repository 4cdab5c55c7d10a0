//! Reading a primitive's trailing options map: unknown keys and wrong types are reported with
//! the valid choices, so a typo never silently does nothing.

use std::time::Duration;

use rhai::{Dynamic, Map, NativeCallContext};

use crate::api::script::script_table;
use crate::api::{Api, OptionSpec, Spec, Type};
use crate::duration::{to_duration, DURATION_EXPECTED};
use crate::error::{Failure, RhaiResult};
use crate::exec::Command;

/// An options map checked against the table of the function it is for.
pub struct Opts {
    function: String,
    map: Map,
}

impl Opts {
    /// Checks `map` against `table`: every key known, every required one given, every value
    /// of its declared type.
    pub fn new(function: &str, map: Map, table: &[OptionSpec]) -> Result<Self, Failure> {
        Opts::against(
            function,
            map,
            &table
                .iter()
                .map(|o| (o.key, o.ty, o.required))
                .collect::<Vec<_>>(),
        )
    }

    /// `new` for a table of (key, type, required).
    fn against(function: &str, map: Map, table: &[(&str, Type, bool)]) -> Result<Self, Failure> {
        if let Some(key) = map
            .keys()
            .find(|k| !table.iter().any(|o| o.0 == k.as_str()))
        {
            let mut valid: Vec<String> = table.iter().map(|o| o.0.to_string()).collect();
            valid.sort();
            return Err(Failure::UnknownOption {
                function: function.to_string(),
                key: key.to_string(),
                valid,
            });
        }
        let opts = Opts {
            function: function.to_string(),
            map,
        };
        for &(key, ty, required) in table {
            if opts.get(key).is_some() {
                opts.check(key, ty)?;
            } else if required {
                return Err(Failure::MissingOption {
                    function: function.to_string(),
                    key: key.to_string(),
                    expected: ty.expected().to_string(),
                });
            }
        }
        Ok(opts)
    }

    /// Checks the value of `key` (given) with the reader of its type, so the report is the
    /// one that reading it would give.
    fn check(&self, key: &str, ty: Type) -> Result<(), Failure> {
        let is = |ok: bool, expected: &str| match self.get(key) {
            Some(v) if !ok => Err(self.bad(key, expected, v)),
            _ => Ok(()),
        };
        let v = self.get(key).cloned().unwrap_or_default();
        match ty {
            Type::String => self.string(key).map(drop),
            Type::Bool => self.bool(key).map(drop),
            Type::Int => self.int(key).map(drop),
            Type::Number => is(v.is_int() || v.is_float(), ty.expected()),
            Type::Duration => self.duration(key).map(drop),
            Type::Strings => self.strings(key).map(drop),
            Type::Env => self.string_map(key).map(drop),
            Type::Command => self.command(key).map(drop),
            Type::Array => is(v.is_array(), ty.expected()),
            Type::Map => is(v.is_map(), ty.expected()),
            Type::Fn => is(v.is_fnptr(), ty.expected()),
            // Galley's types are registered under their Rust names.
            Type::Custom(name) => is(
                v.type_name().rsplit("::").next() == Some(name),
                ty.expected(),
            ),
            Type::Other(_) => Ok(()),
        }
    }

    fn bad(&self, key: &str, expected: &str, got: &Dynamic) -> Failure {
        bad_value(&self.function, &format!("option `{key}`"), expected, got)
    }

    /// The raw value of `key`, if given (a `()` value counts as not given).
    pub fn get(&self, key: &str) -> Option<&Dynamic> {
        self.map.get(key).filter(|v| !v.is_unit())
    }

    /// A string option.
    pub fn string(&self, key: &str) -> Result<Option<String>, Failure> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.is_string() => Ok(Some(v.clone().into_string().expect("string"))),
            Some(v) => Err(self.bad(key, "a string", v)),
        }
    }

    /// A boolean option.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, Failure> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .map_err(|_| self.bad(key, "true or false", v)),
        }
    }

    /// An integer option.
    pub fn int(&self, key: &str) -> Result<Option<i64>, Failure> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_int()
                .map(Some)
                .map_err(|_| self.bad(key, "a whole number", v)),
        }
    }

    /// A duration option: "500ms", "30s", "2m", "1h", or a number of seconds.
    pub fn duration(&self, key: &str) -> Result<Option<Duration>, Failure> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => to_duration(v)
                .map(Some)
                .ok_or_else(|| self.bad(key, DURATION_EXPECTED, v)),
        }
    }

    /// A list of strings.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, Failure> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => string_list(v)
                .map(Some)
                .ok_or_else(|| self.bad(key, "an array of strings", v)),
        }
    }

    /// A map of strings (environment variables), in key order.
    pub fn string_map(&self, key: &str) -> Result<Vec<(String, String)>, Failure> {
        let Some(v) = self.get(key) else {
            return Ok(Vec::new());
        };
        let Some(map) = v.read_lock::<Map>() else {
            return Err(self.bad(key, "a map such as #{ NAME: \"value\" }", v));
        };
        Ok(map
            .iter()
            .map(|(k, v)| (k.to_string(), scalar_to_string(v)))
            .collect())
    }

    /// A command given as a string (run by `sh -c`) or an array (argv).
    pub fn command(&self, key: &str) -> Result<Option<Command>, Failure> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => to_command(&self.function, key, v).map(Some),
        }
    }
}

/// `options::check(function, opts, table[, like])`: checks a Rhai function's options map like a
/// native one's, against `table` plus the options of the native function `like` (its table
/// wins for a key both have); gives the map back with the defaults of the keys it leaves out.
/// Checks a Rhai function's options `map` against its `table` (plus the options of the native
/// function `like`, if any) and fills in the defaults. A mistake in the table or in `like` is
/// the library's, reported at the `options::check` line; a mistake in the map is the caller's,
/// reported at the call of the function whose options these are.
fn check(
    call: &NativeCallContext,
    function: &str,
    map: Map,
    table: &Map,
    like: &[OptionSpec],
) -> RhaiResult<Map> {
    let own = script_table(function, table).map_err(|f| super::at_call(call, f))?;
    let mut checked: Vec<(&str, Type, bool)> = own
        .iter()
        .map(|o| {
            // A union is checked by the function itself.
            let ty = Type::from_name(&o.ty).unwrap_or(Type::Other("any"));
            (o.key.as_str(), ty, o.required)
        })
        .collect();
    for native in like {
        if !own.iter().any(|o| o.key == native.key) {
            checked.push((native.key, native.ty, native.required));
        }
    }
    let mut opts = Opts::against(function, map, &checked)
        .map_err(|f| crate::report::in_callers_options(call, f))?
        .map;
    for (key, entry) in table {
        let default = entry
            .read_lock::<Map>()
            .and_then(|e| e.get("default").cloned())
            .filter(|v| !v.is_unit());
        if let Some(default) = default {
            if opts.get(key.as_str()).is_none_or(Dynamic::is_unit) {
                opts.insert(key.clone(), default);
            }
        }
    }
    Ok(opts)
}

const CHECK: Spec = Spec::function(
    "check",
    &[("function", "string"), ("map", "map"), ("table", "map")],
    "map",
)
.module("options")
.doc("Checks the options map of a function written in Rhai against its table, as the native functions check theirs (an unknown key with did-you-mean, a missing required key, a wrong type); returns the map with the defaults of the keys left out. `galley docs` shows the table.")
.example(r#"let opts = options::check("mylib::deploy", opts, #{ app: #{ type: "string", required: true, doc: "the app" }, timeout: #{ type: "duration", "default": "30s", doc: "how long to wait" } });"#);

/// Registers the `options` module.
pub fn register(api: &mut Api) {
    api.module(
        "options",
        "Option tables for functions written in Rhai (libraries, the stdlib).",
    );
    api.register(
        CHECK,
        |call: NativeCallContext, function: &str, opts: Map, table: Map| -> RhaiResult<Map> {
            check(&call, function, opts, &table, &[])
        },
    );
    let natives = api.functions_later();
    api.register(
        Spec {
            params: &[("function", "string"), ("map", "map"), ("table", "map"), ("like", "string")],
            ..CHECK
        }
        .doc("The same, also accepting every option of the native function `like` (\"SwarmService.deploy\"), for a function that passes them on.")
        .example(r#"let opts = options::check("mylib::deploy", opts, #{ app: #{ type: "string", required: true } }, "SwarmService.deploy");"#),
        move |call: NativeCallContext, function: &str, opts: Map, table: Map, like: &str| -> RhaiResult<Map> {
            let like = natives
                .get()
                .and_then(|all| all.iter().find(|f| f.qualified() == like && !f.options.is_empty()))
                .map(|f| f.options)
                .ok_or_else(|| {
                    bad_value(
                        "options::check",
                        "`like`",
                        "the name of a native function that takes options, such as \"SwarmService.deploy\"",
                        &Dynamic::from(like.to_string()),
                    )
                })
                .map_err(|f| super::at_call(&call, f))?;
            check(&call, function, opts, &table, like)
        },
    );
}

/// A `BadValue` failure naming what was given.
pub fn bad_value(function: &str, what: &str, expected: &str, got: &Dynamic) -> Failure {
    Failure::BadValue {
        function: function.to_string(),
        what: what.to_string(),
        expected: expected.to_string(),
        got: describe(got),
    }
}

pub use crate::api::describe;

/// Renders numbers, booleans and strings as text for the environment.
pub fn scalar_to_string(v: &Dynamic) -> String {
    if v.is_string() {
        v.clone().into_string().expect("string")
    } else {
        v.to_string()
    }
}

/// An array of strings, if `v` is one (other scalars are converted).
pub fn string_list(v: &Dynamic) -> Option<Vec<String>> {
    let array = v.read_lock::<rhai::Array>()?;
    Some(array.iter().map(scalar_to_string).collect())
}

/// A command from a string (`sh -c`) or an array of arguments.
pub fn to_command(function: &str, what: &str, v: &Dynamic) -> Result<Command, Failure> {
    if v.is_string() {
        return Ok(Command::shell(&scalar_to_string(v)));
    }
    match string_list(v) {
        Some(argv) if !argv.is_empty() => Ok(Command::new(argv)),
        _ => Err(bad_value(
            function,
            what,
            "an argv array such as [\"git\", \"pull\"] or a shell string",
            v,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_keys_with_the_valid_ones() {
        let mut map = Map::new();
        map.insert("tiemout".into(), Dynamic::from("1s"));
        let table = [
            crate::api::opt("timeout", Type::Duration, "", "how long"),
            crate::api::opt("dir", Type::String, "", "where"),
        ];
        let err = Opts::new("run", map, &table).err().unwrap();
        assert_eq!(err.to_string(), "unknown option `tiemout` for run");
        let help = miette::Diagnostic::help(&err).unwrap().to_string();
        assert!(help.contains("did you mean `timeout`?"));
    }
}
