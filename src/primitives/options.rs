//! Reading a primitive's trailing options map: unknown keys and wrong types are reported with
//! the valid choices, so a typo never silently does nothing.

use std::time::Duration;

use rhai::{Dynamic, Map};

use crate::duration::{to_duration, DURATION_EXPECTED};
use crate::error::Failure;
use crate::exec::Command;

/// An options map checked against the keys a function accepts.
pub struct Opts {
    function: String,
    map: Map,
}

impl Opts {
    /// Checks `map` for keys outside `valid`.
    pub fn new(function: &str, map: Map, valid: &[&str]) -> Result<Self, Failure> {
        if let Some(key) = map.keys().find(|k| !valid.contains(&k.as_str())) {
            let mut valid: Vec<String> = valid.iter().map(|s| s.to_string()).collect();
            valid.sort();
            return Err(Failure::UnknownOption {
                function: function.to_string(),
                key: key.to_string(),
                valid,
            });
        }
        Ok(Opts {
            function: function.to_string(),
            map,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_keys_with_the_valid_ones() {
        let mut map = Map::new();
        map.insert("tiemout".into(), Dynamic::from("1s"));
        let err = Opts::new("run", map, &["timeout", "dir"]).err().unwrap();
        assert_eq!(err.to_string(), "unknown option `tiemout` for run");
        let help = miette::Diagnostic::help(&err).unwrap().to_string();
        assert!(help.contains("did you mean `timeout`?"));
    }
}
