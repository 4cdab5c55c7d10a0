//! Reading a primitive's trailing options map: unknown keys and wrong types are reported with
//! the valid choices, so a typo never silently does nothing.

use std::time::Duration;

use rhai::{Dynamic, Map, NativeCallContext};

use crate::api::catalog::OptionInfo;
use crate::api::{Api, OptionSpec, Spec, Type};
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
            Type::Number => is(v.is_int() || v.is_float(), "a number"),
            Type::Duration => self.duration(key).map(drop),
            Type::Strings => self.strings(key).map(drop),
            Type::Env => self.string_map(key).map(drop),
            Type::Command => self.command(key).map(drop),
            Type::Array => is(v.is_array(), "an array"),
            Type::Map => is(v.is_map(), "a map"),
            Type::Fn => is(v.is_fnptr(), "a closure such as |h| ..."),
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

/// The option table of a function written in Rhai: `#{ KEY: #{ type: "duration", "default": "30s",
/// required: false, doc: "..." }, ... }` (`default` is quoted: it is a reserved word in Rhai). The type is one of `Type::names()` or several joined by
/// `|` ("string | fn"); default, required and doc may be left out.
pub fn script_table(function: &str, table: &Map) -> Result<Vec<OptionInfo>, Failure> {
    let mut options = Vec::new();
    for (key, entry) in table {
        let what = format!("the table entry `{key}` of {function}");
        let Some(entry) = entry.read_lock::<Map>() else {
            return Err(bad_value(
                "options::check",
                &what,
                "a map such as #{ type: \"string\", doc: \"...\" }",
                entry,
            ));
        };
        let field = |name: &str| entry.get(name).filter(|v| !v.is_unit());
        let ty = field("type").cloned().unwrap_or_else(|| "any".into());
        let known = ty.clone().into_string().ok().filter(|t| {
            t.split('|')
                .all(|alternative| Type::from_name(alternative.trim()).is_some())
        });
        let Some(ty) = known else {
            return Err(bad_value(
                "options::check",
                &format!("{what}: its type"),
                &format!("one or more of {} joined by |", Type::names().join(", ")),
                &ty,
            ));
        };
        let default = field("default").map(|v| {
            if v.is_string() {
                format!("{:?}", scalar_to_string(v))
            } else {
                v.to_string()
            }
        });
        options.push(OptionInfo {
            key: key.to_string(),
            ty,
            default,
            required: field("required").is_some_and(|v| v.as_bool().unwrap_or(false)),
            doc: field("doc").map(scalar_to_string).unwrap_or_default(),
        });
    }
    // A map has no order of its own: the required keys first, then by name.
    options.sort_by_key(|o| !o.required);
    Ok(options)
}

/// `options::check(function, opts, table[, like])`: checks a Rhai function's options map like a
/// native one's, against `table` plus the options of the native function `like` (its table
/// wins for a key both have); gives the map back with the defaults of the keys it leaves out.
fn check(function: &str, map: Map, table: &Map, like: &[OptionSpec]) -> Result<Map, Failure> {
    let own = script_table(function, table)?;
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
    let mut opts = Opts::against(function, map, &checked)?.map;
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
            check(function, opts, &table, &[]).map_err(|f| super::at_call(&call, f.into_rhai()))
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
                });
            like.and_then(|like| check(function, opts, &table, like))
                .map_err(|f| super::at_call(&call, f.into_rhai()))
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

/// A short description of a value for error messages: its type and, when short, its value.
pub fn describe(v: &Dynamic) -> String {
    let text = v.to_string();
    if text.len() <= 40 {
        format!(
            "{} {}",
            v.type_name(),
            if v.is_string() {
                format!("{text:?}")
            } else {
                text
            }
        )
    } else {
        v.type_name().to_string()
    }
}

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

/// The longest duration Galley accepts anywhere (a sleep, a timeout, a persist time): one
/// year. Longer ones are refused with a report rather than overflowing a clock.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// What a duration option must be, for reports.
pub const DURATION_EXPECTED: &str =
    "a duration such as \"500ms\", \"30s\", \"2m\" or \"1h\" (at most 365 days)";

/// `seconds` as a duration, if it is a number from 0 to `MAX_DURATION`.
fn seconds(seconds: f64) -> Option<Duration> {
    (seconds.is_finite() && (0.0..=MAX_DURATION.as_secs_f64()).contains(&seconds))
        .then(|| Duration::from_secs_f64(seconds))
}

/// A duration from a string such as "250ms", "30s", "2m", "1h", or a number of seconds.
pub fn to_duration(v: &Dynamic) -> Option<Duration> {
    if let Ok(n) = v.as_int() {
        return u64::try_from(n)
            .ok()
            .map(Duration::from_secs)
            .filter(|d| *d <= MAX_DURATION);
    }
    if let Ok(f) = v.as_float() {
        return seconds(f);
    }
    parse_duration(&v.clone().into_string().ok()?)
}

/// Parses "250ms", "30s", "1.5s", "2m", "1h".
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    self::seconds(seconds)
}

/// Formats a duration the way recipes write them.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("ten"), None);
        assert_eq!(parse_duration("10"), None);
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_millis(300)), "300ms");
    }

    #[test]
    fn refuses_durations_past_a_year() {
        assert_eq!(parse_duration("999999999999999999999s"), None);
        assert_eq!(parse_duration("8761h"), None);
        assert_eq!(parse_duration("8760h"), Some(MAX_DURATION));
        assert_eq!(to_duration(&Dynamic::from(1e30_f64)), None);
        assert_eq!(to_duration(&Dynamic::from(f64::NAN)), None);
        assert_eq!(to_duration(&Dynamic::from(i64::MAX)), None);
        assert_eq!(to_duration(&Dynamic::from(-1_i64)), None);
    }

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
        assert!(err.help().contains("did you mean `timeout`?"));
    }
}
