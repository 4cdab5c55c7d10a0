//! The VS Code snippets: one per `galley init` template, so the two never disagree.

use serde_json::{json, Map, Value};

use super::templates::TEMPLATES;

/// A line of recipe as snippet text: `$` and `\` are snippet syntax.
fn literal(line: &str) -> String {
    line.replace('\\', r"\\").replace('$', r"\$")
}

/// The snippets file's text (pretty JSON).
pub fn snippets() -> String {
    let snippets: Map<String, Value> = TEMPLATES
        .iter()
        .map(|t| {
            let mut body: Vec<String> = t.text.lines().map(literal).collect();
            body.push("$0".into());
            (
                format!("Galley: {}", t.name),
                json!({
                    "prefix": format!("galley-{}", t.name),
                    "description": format!("{} (galley init --template {})", t.summary, t.name),
                    "body": body
                }),
            )
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&Value::Object(snippets)).unwrap_or_default();
    text.push('\n');
    text
}
