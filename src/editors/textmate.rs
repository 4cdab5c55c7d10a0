//! The VS Code (`TextMate`) grammar: Rhai's syntax, with Galley's names from the API's catalog on top.

use serde_json::{json, Map, Value};

use super::names::Names;

/// The grammar's scope name.
const SCOPE: &str = "source.rhai.galley";

/// Rhai's own functions that every recipe may call.
const RHAI_BUILTINS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "is_def_fn",
    "is_def_var",
    "is_shared",
    "Fn",
    "call",
    "curry",
    "eval",
];

/// `a|b|c`: a regex alternation of identifiers (they need no escaping).
fn either<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().collect::<Vec<_>>().join("|")
}

/// A pattern that colours `alias::function` of one module.
fn module_pattern(module: &str, functions: &[&str], kind: &str) -> Value {
    json!({
        "match": format!(r"\b({module})(::)({})\b", either(functions.iter().copied())),
        "captures": {
            "1": { "name": format!("entity.name.namespace.{kind}.galley") },
            "2": { "name": "punctuation.separator.namespace.rhai" },
            "3": { "name": "support.function.galley" }
        }
    })
}

/// The stdlib's import paths (`"galley/rolling"`): strings, so tried before the string rule.
fn stdlib_imports(names: &Names) -> Value {
    json!({
        "match": format!(
            r#"(")(galley/(?:{}))(")"#,
            either(names.stdlib.keys().map(String::as_str))
        ),
        "captures": {
            "1": { "name": "string.quoted.double.rhai punctuation.definition.string.begin.rhai" },
            "2": { "name": "string.quoted.double.rhai entity.name.namespace.stdlib.galley" },
            "3": { "name": "string.quoted.double.rhai punctuation.definition.string.end.rhai" }
        }
    })
}

/// Galley's names: module functions, global functions and methods, property getters.
fn galley(names: &Names) -> Value {
    let mut patterns = Vec::new();
    for (group, kind) in [(&names.stdlib, "stdlib"), (&names.modules, "module")] {
        for (module, functions) in group {
            let functions: Vec<&str> = functions.iter().map(String::as_str).collect();
            patterns.push(module_pattern(module, &functions, kind));
        }
    }
    patterns.push(json!({
        "match": format!(
            r"\b({})\b(?=\s*\()",
            either(names.functions.iter().map(String::as_str))
        ),
        "name": "support.function.galley"
    }));
    patterns.push(json!({
        "match": format!(
            r"(\.)\s*({})\b(?!\s*\()",
            either(names.properties.iter().map(String::as_str))
        ),
        "captures": {
            "1": { "name": "punctuation.accessor.rhai" },
            "2": { "name": "variable.other.property.galley" }
        }
    }));
    json!({ "patterns": patterns })
}

/// Rhai's syntax: what the engine cannot tell, so written here once.
fn rhai() -> Map<String, Value> {
    let escape = r"\\(?:x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.|$)";
    let repository = json!({
        "comments": { "patterns": [
            { "match": r"(///|//!)(?!/).*$", "name": "comment.line.documentation.rhai" },
            { "match": r"//.*$", "name": "comment.line.double-slash.rhai" },
            { "begin": r"/\*\*(?![*/])", "end": r"\*/", "name": "comment.block.documentation.rhai",
              "patterns": [{ "include": "#nested-comment" }] },
            { "include": "#nested-comment" }
        ]},
        "nested-comment": {
            "begin": r"/\*", "end": r"\*/", "name": "comment.block.rhai",
            "patterns": [{ "include": "#nested-comment" }]
        },
        "strings": { "patterns": [
            { "begin": "\"", "end": "\"", "name": "string.quoted.double.rhai",
              "patterns": [{ "match": escape, "name": "constant.character.escape.rhai" }] },
            { "begin": "#\"", "end": "\"#", "name": "string.quoted.raw.rhai" },
            { "begin": "`", "end": "`", "name": "string.interpolated.rhai",
              "patterns": [
                  { "match": escape, "name": "constant.character.escape.rhai" },
                  { "include": "#interpolation" }
              ] },
            { "match": format!(r"'(?:[^'\\]|{escape})'"), "name": "string.quoted.single.rhai" }
        ]},
        "interpolation": {
            "begin": r"\$\{", "end": r"\}", "name": "meta.interpolation.rhai",
            "beginCaptures": { "0": { "name": "punctuation.section.interpolation.begin.rhai" } },
            "endCaptures": { "0": { "name": "punctuation.section.interpolation.end.rhai" } },
            "contentName": "source.rhai.embedded",
            "patterns": [{ "include": "#braces" }, { "include": "$self" }]
        },
        "braces": {
            "begin": r"\{", "end": r"\}",
            "patterns": [{ "include": "#braces" }, { "include": "$self" }]
        },
        "numbers": { "patterns": [
            { "match": r"\b0x[0-9A-Fa-f_]+\b", "name": "constant.numeric.integer.hexadecimal.rhai" },
            { "match": r"\b0o[0-7_]+\b", "name": "constant.numeric.integer.octal.rhai" },
            { "match": r"\b0b[01_]+\b", "name": "constant.numeric.integer.binary.rhai" },
            { "match": r"\b[0-9][0-9_]*(?:\.[0-9][0-9_]*(?:[eE][+-]?[0-9_]+)?|[eE][+-]?[0-9_]+)\b",
              "name": "constant.numeric.float.rhai" },
            { "match": r"\b[0-9][0-9_]*\b", "name": "constant.numeric.integer.decimal.rhai" }
        ]},
        "function-definition": {
            "match": r"\b(fn)\s+([A-Za-z_][A-Za-z0-9_]*)",
            "captures": {
                "1": { "name": "storage.type.function.rhai" },
                "2": { "name": "entity.name.function.rhai" }
            }
        },
        "keywords": { "patterns": [
            { "match": r"\b(?:if|else|switch|do|while|until|loop|for|in|break|continue|return|throw|try|catch)\b",
              "name": "keyword.control.rhai" },
            { "match": r"\b(?:import|export|as)\b", "name": "keyword.control.import.rhai" },
            { "match": r"\b(?:let|const)\b", "name": "storage.type.rhai" },
            { "match": r"\bfn\b", "name": "storage.type.function.rhai" },
            { "match": r"\bprivate\b", "name": "storage.modifier.rhai" },
            { "match": r"\b(?:true|false)\b", "name": "constant.language.boolean.rhai" },
            { "match": r"\(\)", "name": "constant.language.unit.rhai" },
            { "match": r"\bthis\b", "name": "variable.language.this.rhai" },
            { "match": r"\bglobal(?=::)", "name": "variable.language.global.rhai" }
        ]},
        "builtins": {
            "match": format!(r"\b(?:{})\b(?=\s*\()", either(RHAI_BUILTINS.iter().copied())),
            "name": "support.function.builtin.rhai"
        },
        "calls": { "patterns": [
            { "match": r"\b([A-Za-z_][A-Za-z0-9_]*)(::)",
              "captures": {
                  "1": { "name": "entity.name.namespace.rhai" },
                  "2": { "name": "punctuation.separator.namespace.rhai" }
              } },
            { "match": r"\b[A-Za-z_][A-Za-z0-9_]*(?=\s*\()", "name": "entity.name.function.call.rhai" }
        ]},
        "operators": { "patterns": [
            { "match": r"#\{", "name": "punctuation.definition.map.begin.rhai" },
            { "match": r"\?\?|\?\.|\?\[|\.\.=?|==|!=|<=|>=|&&|\|\||<<=?|>>=?|\*\*=?|[-+*/%&|^]=?|[!<>=]",
              "name": "keyword.operator.rhai" }
        ]}
    });
    repository.as_object().cloned().unwrap_or_default()
}

/// The grammar file's text (pretty JSON).
pub fn grammar(names: &Names) -> String {
    let mut repository = rhai();
    repository.insert("stdlib-imports".into(), stdlib_imports(names));
    repository.insert("galley".into(), galley(names));
    // Where two rules match at the same place, the first listed wins: Galley's names before
    // Rhai's generic calls, a function's definition before a call of the same name.
    let patterns: Vec<Value> = [
        "comments",
        "stdlib-imports",
        "strings",
        "function-definition",
        "galley",
        "builtins",
        "keywords",
        "numbers",
        "calls",
        "operators",
    ]
    .iter()
    .map(|name| json!({ "include": format!("#{name}") }))
    .collect();
    let grammar = json!({
        "$comment": "Generated by `galley defs --editors editors` from the engine: do not edit.",
        "name": "Galley recipe (Rhai)",
        "scopeName": SCOPE,
        "fileTypes": ["rhai"],
        "patterns": patterns,
        "repository": repository
    });
    let mut text = serde_json::to_string_pretty(&grammar).unwrap_or_default();
    text.push('\n');
    text
}
