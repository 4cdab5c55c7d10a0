//! Tests of how the code is laid out: the top-level modules import each other without cycles,
//! with the errors and durations as leaves, and every report code is written once, in
//! `error`, and listed in docs/reports.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::Code;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The lines of `text` that are code, not comments.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim_start().starts_with("//"))
}

/// The identifier at the start of `text`.
fn ident(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The top-level modules that `text` names as `crate::X` or `crate::{X, ...}`.
fn imported(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in code_lines(text) {
        for (i, _) in line.match_indices("crate::") {
            let rest = &line[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                found.extend(group.split(',').map(|p| ident(p.trim()).to_string()));
            } else {
                found.insert(ident(rest).to_string());
            }
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// Each top-level module (a folder or a file of src/) and the others it imports.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(src()).expect("read src").flatten() {
        let path = entry.path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        let files = if path.is_dir() {
            rust_files(&path)
        } else {
            vec![path]
        };
        let mut uses = BTreeSet::new();
        for file in files {
            uses.extend(imported(&std::fs::read_to_string(file).unwrap()));
        }
        uses.remove(&name);
        graph.insert(name, uses);
    }
    graph
}

/// A chain of imports that comes back to where it started, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        module: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut chain = path[start..].to_vec();
            chain.push(module.to_string());
            return Some(chain);
        }
        if !done.insert(module.to_string()) {
            return None;
        }
        path.push(module.to_string());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(chain) = visit(graph, next, path, done) {
                return Some(chain);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|m| visit(graph, m, &mut Vec::new(), &mut done))
}

#[test]
fn finds_imports_and_cycles() {
    let text =
        "use crate::{exec::Ctx, report};\n// crate::watch\nlet x = crate::error::Failure::X;";
    let names: Vec<String> = imported(text).into_iter().collect();
    assert_eq!(names, ["error", "exec", "report"]);
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]
    .into();
    assert_eq!(cycle(&graph).unwrap(), ["a", "b", "a"]);
}

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let graph = module_graph();
    assert!(graph.contains_key("report") && graph.contains_key("exec"));
    if let Some(chain) = cycle(&graph) {
        panic!("import cycle: {}", chain.join(" -> "));
    }
}

#[test]
fn errors_and_durations_are_leaves() {
    let graph = module_graph();
    let leaves = BTreeSet::from(["duration".to_string()]);
    assert!(
        graph["duration"].is_empty(),
        "duration imports {:?}",
        graph["duration"]
    );
    assert!(
        graph["error"].is_subset(&leaves),
        "error imports {:?}",
        graph["error"]
    );
}

/// Every `galley::name` that `text` holds.
fn codes_in(text: &str) -> BTreeSet<String> {
    text.match_indices("galley::")
        .map(|(i, _)| format!("galley::{}", ident(&text[i + "galley::".len()..])))
        .filter(|code| code.len() > "galley::".len())
        .collect()
}

/// Every code Galley can print: the `Code` list and the codes on the variants of the error types.
fn known_codes() -> BTreeSet<String> {
    let on_variants = codes_in(include_str!("error/mod.rs"));
    let listed = Code::ALL.iter().map(|c| c.as_str().to_string());
    on_variants.into_iter().chain(listed).collect()
}

#[test]
fn every_code_is_documented_and_every_documented_code_exists() {
    let docs = codes_in(include_str!("../docs/reports.md"));
    let known = known_codes();
    let undocumented: Vec<&String> = known.difference(&docs).collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/reports.md: {undocumented:?}"
    );
    let unknown: Vec<&String> = docs.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "docs/reports.md lists codes that do not exist: {unknown:?}"
    );
}

#[test]
fn codes_are_written_only_in_the_error_module() {
    let error = src().join("error");
    for file in rust_files(&src()) {
        if file.starts_with(&error) || file.ends_with("layout.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let bare: Vec<&str> = code_lines(&text)
            .filter(|l| l.contains("\"galley::"))
            .collect();
        assert!(
            bare.is_empty(),
            "{} writes a report code itself (use error::Code or a Failure): {bare:?}",
            file.display()
        );
    }
}
