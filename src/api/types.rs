//! The types an option's value may have: what `galley docs` shows and what `Opts` checks.

use rhai::Dynamic;

/// The type of an option's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    String,
    Bool,
    Int,
    /// A number (int or float).
    Number,
    /// "500ms", "30s", "2m", "1h", or a number of seconds.
    Duration,
    /// An array of strings (numbers are converted).
    Strings,
    /// A map of environment variables: `#{ NAME: "value" }`.
    Env,
    /// An argv array or a shell string.
    Command,
    Array,
    Map,
    /// A closure or function pointer.
    Fn,
    /// A custom type of the API (`Host`, `Nginx`...), checked by name.
    Custom(&'static str),
    /// Anything; the function itself checks the value, described here.
    Other(&'static str),
}

/// Every type a table in a stdlib module can name, with its name.
const NAMED: &[(&str, Type)] = &[
    ("string", Type::String),
    ("bool", Type::Bool),
    ("int", Type::Int),
    ("number", Type::Number),
    ("duration", Type::Duration),
    ("strings", Type::Strings),
    ("string map", Type::Env),
    ("command", Type::Command),
    ("array", Type::Array),
    ("map", Type::Map),
    ("fn", Type::Fn),
    ("Host", Type::Custom("Host")),
    ("Nginx", Type::Custom("Nginx")),
    ("Service", Type::Custom("Service")),
    ("any", Type::Other("any")),
];

impl Type {
    /// The name shown in docs and definitions.
    pub fn name(&self) -> &'static str {
        match self {
            Type::Custom(name) | Type::Other(name) => name,
            Type::Fn => "fn",
            other => NAMED
                .iter()
                .find(|(_, t)| t == other)
                .map_or("any", |(n, _)| *n),
        }
    }

    /// What a value of this type is, for a report on another value or a missing one.
    pub fn expected(&self) -> &'static str {
        match self {
            Type::String => "a string",
            Type::Bool => "true or false",
            Type::Int => "a whole number",
            Type::Number => "a number",
            Type::Duration => "a duration such as \"30s\"",
            Type::Strings => "an array of strings",
            Type::Env => "a map such as #{ NAME: \"value\" }",
            Type::Command => "an argv array or a shell string",
            Type::Array => "an array",
            Type::Map => "a map",
            Type::Fn => "a closure such as |h| ...",
            Type::Custom("Host") => "a Host (local() or ssh::connect(...))",
            Type::Custom("Service") => "a Service (host.process(...))",
            Type::Custom("Nginx") => "an Nginx (host.nginx(...))",
            Type::Custom(name) | Type::Other(name) => name,
        }
    }

    /// The type a stdlib option table names (`type: "duration"`).
    pub fn from_name(name: &str) -> Option<Type> {
        NAMED.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// The names a table may use, for the report when one names another.
    pub fn names() -> Vec<&'static str> {
        NAMED.iter().map(|(n, _)| *n).collect()
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
