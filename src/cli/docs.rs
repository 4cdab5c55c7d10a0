//! `galley docs [FILTER]`: the recipe API reference, printed from the catalog of the engine and
//! the stdlib (`crate::api::catalog`), as text, markdown (docs/API.md) or JSON.

use super::{EXIT_OK, EXIT_USAGE};
use crate::api::catalog::{Catalog, Function, OptionInfo};
use crate::api::Kind;
use crate::engine::Galley;
use crate::exec::OutputMode;

/// How `galley docs` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

pub fn docs(filter: Option<&str>, format: Format) -> i32 {
    let (ctx, _runtime) = super::inspecting(OutputMode::Plain);
    let galley = Galley::inspecting(&ctx);
    let catalog = crate::api::catalog(&galley);
    match render(&catalog, filter, format) {
        Ok(text) => {
            print!("{text}");
            EXIT_OK
        }
        Err(message) => {
            eprintln!("{message}");
            EXIT_USAGE
        }
    }
}

/// A part of the reference: its title, what it is, and its functions.
struct Section<'a> {
    title: String,
    doc: String,
    /// How a recipe gets at it (`import "galley/rolling" as rolling;`).
    usage: Option<String>,
    functions: Vec<&'a Function>,
}

/// The reference for the functions whose name contains `filter`, or an error naming it.
pub fn render(catalog: &Catalog, filter: Option<&str>, format: Format) -> Result<String, String> {
    let matches = |f: &Function| filter.is_none_or(|text| f.qualified().contains(text));
    if let Some(text) = filter.filter(|_| !catalog.functions.iter().any(matches)) {
        let names: Vec<String> = catalog.functions.iter().map(Function::qualified).collect();
        let near = crate::error::suggest(text, names.iter().map(String::as_str))
            .map(|n| format!(" (did you mean `{n}`?)"))
            .unwrap_or_default();
        return Err(format!(
            "galley docs: no function matches `{text}`{near}; `galley docs` lists them all"
        ));
    }
    if format == Format::Json {
        let filtered = Catalog {
            functions: catalog
                .functions
                .iter()
                .filter(|f| matches(f))
                .cloned()
                .collect(),
            ..catalog.clone()
        };
        return Ok(serde_json::to_string_pretty(&filtered).unwrap_or_default() + "\n");
    }
    let sections: Vec<Section> = sections(catalog)
        .into_iter()
        .map(|s| Section {
            functions: s.functions.into_iter().filter(|f| matches(f)).collect(),
            ..s
        })
        .filter(|s| !s.functions.is_empty())
        .collect();
    Ok(match format {
        Format::Markdown => markdown(&sections),
        _ => text(&sections),
    })
}

/// Global functions, then each type with its methods, each module, each stdlib module.
fn sections(catalog: &Catalog) -> Vec<Section<'_>> {
    let receiver = |f: &Function| match f.kind {
        Kind::Function => None,
        _ => f.params.first().map(|p| p.ty.clone()),
    };
    let mut sections = vec![Section {
        title: "Functions".into(),
        doc: "Called by name anywhere in a recipe.".into(),
        usage: None,
        functions: catalog
            .functions
            .iter()
            .filter(|f| f.module.is_none() && receiver(f).is_none())
            .collect(),
    }];
    for ty in &catalog.types {
        sections.push(Section {
            title: ty.name.clone(),
            doc: ty.doc.clone(),
            usage: None,
            functions: catalog
                .functions
                .iter()
                .filter(|f| f.module.is_none() && receiver(f).as_deref() == Some(&ty.name))
                .collect(),
        });
    }
    for module in &catalog.modules {
        sections.push(Section {
            title: if module.stdlib {
                format!("galley/{}", module.name)
            } else {
                format!("{}::", module.name)
            },
            doc: module.doc.clone(),
            usage: module
                .stdlib
                .then(|| format!("import \"galley/{0}\" as {0};", module.name)),
            functions: catalog
                .functions
                .iter()
                .filter(|f| f.module.as_deref() == Some(&module.name) && f.stdlib == module.stdlib)
                .collect(),
        });
    }
    sections
}

/// The overloads of each name, in the order the names first appear.
fn groups<'a>(functions: &[&'a Function]) -> Vec<Vec<&'a Function>> {
    let mut groups: Vec<Vec<&Function>> = Vec::new();
    for f in functions {
        match groups
            .iter_mut()
            .find(|g| g[0].qualified() == f.qualified() && g[0].kind == f.kind)
        {
            Some(group) => group.push(f),
            None => groups.push(vec![f]),
        }
    }
    groups
}

/// How a recipe calls it: `health::http(url: string) -> map`, `host.run(...)`, `host.name`.
fn signature(f: &Function) -> String {
    let returns = match f.returns.as_str() {
        "()" => String::new(),
        ty => format!(" -> {ty}"),
    };
    let params = |skip: usize| {
        f.params
            .iter()
            .skip(skip)
            .map(|p| format!("{}: {}", p.name, p.ty))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let receiver = f.params.first().map_or("value", |p| p.name.as_str());
    match (f.kind, &f.module) {
        (Kind::Property, _) => format!("{receiver}.{}{returns}", f.name),
        (Kind::Method, _) => format!("{receiver}.{}({}){returns}", f.name, params(1)),
        (Kind::Function, Some(module)) => format!("{module}::{}({}){returns}", f.name, params(0)),
        (Kind::Function, None) => format!("{}({}){returns}", f.name, params(0)),
    }
}

/// Each distinct value of `field` over the overloads, in order.
fn distinct<'a>(group: &[&'a Function], field: impl Fn(&'a Function) -> &'a str) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for f in group {
        let value = field(f);
        if !value.is_empty() && !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

/// The option table of the overloads (the one that takes options).
/// The option table of the overloads (the one that takes options), a map-valued option's own
/// keys after it as `option.key`.
fn options<'a>(group: &[&'a Function]) -> Vec<(String, &'a OptionInfo)> {
    fn rows<'a>(prefix: &str, options: &'a [OptionInfo], out: &mut Vec<(String, &'a OptionInfo)>) {
        for o in options {
            let key = format!("{prefix}{}", o.key);
            out.push((key.clone(), o));
            rows(&format!("{key}."), &o.keys, out);
        }
    }
    let mut out = Vec::new();
    if let Some(f) = group.iter().find(|f| !f.options.is_empty()) {
        rows("", &f.options, &mut out);
    }
    out
}

/// An option's type and default, as one column.
fn option_type(o: &OptionInfo) -> String {
    match (&o.default, o.required) {
        (_, true) => format!("{}, required", o.ty),
        (Some(default), _) => format!("{} = {default}", o.ty),
        (None, _) => o.ty.clone(),
    }
}

fn text(sections: &[Section]) -> String {
    let mut out = String::new();
    for section in sections {
        out.push_str(&format!("== {} ==\n", section.title));
        if !section.doc.is_empty() {
            out.push_str(&format!("{}\n", section.doc));
        }
        if let Some(usage) = &section.usage {
            out.push_str(&format!("{usage}\n"));
        }
        for group in groups(&section.functions) {
            out.push('\n');
            for f in &group {
                out.push_str(&signature(f));
                out.push('\n');
            }
            for doc in distinct(&group, |f| f.doc.as_str()) {
                out.push_str(&format!("    {doc}\n"));
            }
            for example in distinct(&group, |f| f.example.as_str()) {
                out.push_str(&format!("    example: {example}\n"));
            }
            let options = options(&group);
            if !options.is_empty() {
                out.push_str("    options:\n");
                let key_width = options.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                let type_width = options
                    .iter()
                    .map(|(_, o)| option_type(o).len())
                    .max()
                    .unwrap_or(0);
                for (key, o) in &options {
                    out.push_str(&format!(
                        "      {:key_width$}  {:type_width$}  {}\n",
                        key,
                        option_type(o),
                        o.doc
                    ));
                }
            }
        }
        out.push('\n');
    }
    out
}

/// A markdown table cell: pipes escaped, so a type like `string | array` stays in its column.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as dashes.
fn anchor(title: &str) -> String {
    title
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn markdown(sections: &[Section]) -> String {
    let mut out = String::from(
        "# The recipe API\n\n\
         Generated from the engine by `galley docs --format markdown` (a test fails when this file \
         is stale; regenerate it with `galley docs --format markdown > docs/API.md`). \
         `galley docs FILTER` prints the same for the functions whose name contains FILTER.\n",
    );
    if sections.len() > 1 {
        let contents: Vec<String> = sections
            .iter()
            .map(|s| format!("[{}](#{})", s.title, anchor(&s.title)))
            .collect();
        out.push_str(&format!("\nContents: {}.\n", contents.join(", ")));
    }
    for section in sections {
        out.push_str(&format!("\n## {}\n\n", section.title));
        if !section.doc.is_empty() {
            out.push_str(&format!("{}\n\n", section.doc));
        }
        if let Some(usage) = &section.usage {
            out.push_str(&format!("```rhai\n{usage}\n```\n\n"));
        }
        for group in groups(&section.functions) {
            out.push_str(&format!("### `{}`\n\n```\n", group[0].qualified()));
            for f in &group {
                out.push_str(&signature(f));
                out.push('\n');
            }
            out.push_str("```\n\n");
            for doc in distinct(&group, |f| f.doc.as_str()) {
                out.push_str(&format!("{doc}\n\n"));
            }
            for example in distinct(&group, |f| f.example.as_str()) {
                out.push_str(&format!("```rhai\n{example}\n```\n\n"));
            }
            let options = options(&group);
            if !options.is_empty() {
                out.push_str("| option | type | default | |\n| --- | --- | --- | --- |\n");
                for (key, o) in &options {
                    let default = match (&o.default, o.required) {
                        (_, true) => "required".to_string(),
                        (Some(default), _) => cell(default),
                        (None, _) => String::new(),
                    };
                    out.push_str(&format!(
                        "| `{}` | {} | {} | {} |\n",
                        key,
                        cell(&o.ty),
                        default,
                        cell(&o.doc)
                    ));
                }
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::OutputMode;
    use crate::api::catalog::{Catalog, Function};
    use crate::engine::Galley;

    fn catalog() -> (Catalog, Galley) {
        let (ctx, _runtime) = super::super::inspecting(OutputMode::Plain);
        let galley = Galley::inspecting(&ctx);
        (crate::api::catalog(&galley), galley)
    }

    fn takes_options(f: &Function) -> bool {
        f.params.iter().any(|p| p.name == "opts")
    }

    #[test]
    fn every_function_has_a_doc_an_example_that_compiles_and_its_option_table() {
        let (catalog, galley) = catalog();
        assert!(catalog.functions.len() > 100, "{}", catalog.functions.len());
        for f in &catalog.functions {
            let name = f.qualified();
            assert!(!f.doc.is_empty(), "{name} has no doc");
            assert!(!f.example.is_empty(), "{name} has no example");
            if let Err(e) = galley.engine.compile(&f.example) {
                panic!("the example of {name} does not compile: {e}\n{}", f.example);
            }
            // A stdlib helper that is handed its strategy's options says whose they are.
            let passed_on = f.stdlib && f.doc.contains("are those of");
            if takes_options(f) && !passed_on {
                assert!(
                    !f.options.is_empty(),
                    "{name} takes options but has no table"
                );
            }
            for o in f
                .options
                .iter()
                .chain(f.options.iter().flat_map(|o| &o.keys))
            {
                assert!(!o.doc.is_empty(), "option `{}` of {name} has no doc", o.key);
            }
        }
        for t in &catalog.types {
            assert!(!t.doc.is_empty(), "type {} has no doc", t.name);
        }
        for m in &catalog.modules {
            assert!(!m.doc.is_empty(), "module {} has no doc", m.name);
        }
    }

    #[test]
    fn every_stdlib_strategy_is_listed_with_its_option_table() {
        let (catalog, _) = catalog();
        for (module, _) in crate::engine::stdlib::MODULES {
            let deploy = catalog
                .overloads(Some(module), "deploy")
                .find(|f| f.stdlib)
                .unwrap_or_else(|| panic!("{module}::deploy is not in the catalog"));
            assert!(!deploy.options.is_empty(), "{module}::deploy has no table");
            assert!(deploy.options.iter().any(|o| o.key == "app"), "{module}");
        }
        // swarm::deploy takes SwarmService.deploy's options without repeating them.
        let swarm = catalog.options(Some("swarm"), "deploy").unwrap();
        for key in ["app", "image", "replicas", "healthcheck", "timeout"] {
            assert!(
                swarm.iter().any(|o| o.key == key),
                "swarm::deploy lacks {key}"
            );
        }
    }

    #[test]
    fn the_engine_knows_parameter_names_types_and_docs() {
        let (_, galley) = catalog();
        let signatures = galley.engine.gen_fn_signatures(false);
        for expected in [
            "run(host: Host, command: string|array, opts: map) -> map",
            "health::http(url: string, opts: map) -> map",
            "get$name(host: Host) -> string",
        ] {
            assert!(
                signatures.iter().any(|s| s == expected),
                "{expected} not in {signatures:#?}"
            );
        }
        let definitions = galley
            .engine
            .definitions()
            .include_standard_packages(false)
            .single_file();
        assert!(
            definitions.contains("/// Runs a command on the host"),
            "{definitions}"
        );
        assert!(
            definitions.contains("/// - `timeout`: duration"),
            "{definitions}"
        );
    }
}
