//! Editor support: `galley defs` and the generated files of `editors/` (in sync with the engine),
//! the VS Code grammar (valid Oniguruma, naming every engine name), snippets (the templates),
//! the problem matcher and vim's errorformat against `galley check --format gnu` lines, vim's
//! filetype and syntax; `galley completions` and `galley man`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use onig::Regex;
use serde_json::Value;

use crate::support::Sandbox;

/// The repository's `editors/` folder.
fn editors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("editors")
}

/// Every file under `dir`, by path relative to it.
fn files_under(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(folder) = todo.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let relative = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.insert(relative, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    files
}

const REGENERATE: &str =
    "regenerate with `cargo run -- defs --editors editors` and commit the result";

#[test]
fn generated_editor_files_are_in_sync_with_the_engine() {
    let sb = Sandbox::new();
    sb.run(&["defs", "--editors", "out"]).expect_code(0);
    let generated = files_under(&sb.path().join("out"));
    assert!(generated.contains_key("vscode/syntaxes/galley.tmLanguage.json"));
    for (path, text) in &generated {
        let committed = std::fs::read_to_string(editors().join(path)).unwrap_or_default();
        assert!(
            committed == *text,
            "editors/{path} is stale (or missing): {REGENERATE}"
        );
    }
    let definitions = files_under(&editors().join("definitions"));
    for path in definitions.keys() {
        assert!(
            generated.contains_key(&format!("definitions/{path}")),
            "editors/definitions/{path} is no longer generated: remove it, {REGENERATE}"
        );
    }
}

#[test]
fn defs_writes_the_engine_and_stdlib_definitions() {
    let sb = Sandbox::new();
    let run = sb.run(&["defs", "--dir", "defs"]).expect_code(0);
    assert!(run.stdout.contains("__static__.d.rhai"), "{}", run.stdout);
    let defs = files_under(&sb.path().join("defs"));
    assert_eq!(
        defs,
        files_under(&editors().join("definitions")),
        "`galley defs --dir` writes what editors/definitions holds"
    );
    let global = &defs["__static__.d.rhai"];
    assert!(global.starts_with("module static;"), "{global}");
    assert!(global.contains("fn local("), "{global}");
    assert!(
        global.contains("fn run(host: Host, command: string | array, opts: map) -> map;"),
        "parameter names and types:\n{global}"
    );
    let health = &defs["health.d.rhai"];
    assert!(
        health.contains("/// - `retries`: int, default 30;"),
        "the options table in the doc comment:\n{health}"
    );
    let ssh = &defs["ssh.d.rhai"];
    assert!(
        ssh.starts_with("module ssh;") && ssh.contains("fn connect("),
        "{ssh}"
    );
    let rolling = &defs["galley-rolling.d.rhai"];
    assert!(
        rolling.starts_with("module \"galley/rolling\";"),
        "{rolling}"
    );
    assert!(
        rolling.contains("/// Deploys to `hosts` in batches")
            && rolling.contains("/// - `batch`: int, default 1;")
            && rolling.contains("fn deploy(opts: map) -> ?;"),
        "the stdlib's functions with their docs and options:\n{rolling}"
    );
    assert!(
        !rolling.contains("anon$"),
        "closures are not functions to call:\n{rolling}"
    );
    assert!(
        !global.contains("EvalAltResult"),
        "no Rust type leaks into the definitions:\n{global}"
    );

    let run = sb.run(&["defs"]).expect_code(2);
    assert!(run.stderr.contains("--dir"), "{}", run.stderr);
}

/// The names the engine has, read from the definition files: (global functions, properties,
/// module → functions).
type Names = (Vec<String>, Vec<String>, BTreeMap<String, Vec<String>>);

fn engine_names() -> Names {
    let fn_name = Regex::new(r"^fn (get )?([A-Za-z_][A-Za-z0-9_]*)\(").unwrap();
    let module = Regex::new(r#"^module (?:"galley/)?([A-Za-z_][A-Za-z0-9_]*)"?;"#).unwrap();
    let (mut functions, mut properties, mut modules) = (Vec::new(), Vec::new(), BTreeMap::new());
    for (file, text) in files_under(&editors().join("definitions")) {
        let header = text.lines().next().unwrap_or_default();
        let name = module
            .captures(header)
            .and_then(|c| c.at(1))
            .unwrap_or_else(|| panic!("{file} starts with a module header: {header}"))
            .to_string();
        for line in text.lines() {
            let Some(c) = fn_name.captures(line) else {
                continue;
            };
            let f = c.at(2).unwrap().to_string();
            match (name.as_str(), c.at(1).is_some()) {
                ("static", true) => properties.push(f),
                ("static", false) => functions.push(f),
                (_, _) => modules.entry(name.clone()).or_insert_with(Vec::new).push(f),
            }
        }
    }
    assert!(functions.len() > 40, "{functions:?}");
    assert!(
        modules.contains_key("rolling") && modules.contains_key("ssh"),
        "{modules:?}"
    );
    (functions, properties, modules)
}

/// Every regex of a grammar (under `match`, `begin`, `end`), with the path that leads to it.
fn regexes(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("match" | "begin" | "end" | "while", Value::String(re)) => {
                        out.push((format!("{at}.{key}"), re.clone()));
                    }
                    _ => regexes(v, &format!("{at}.{key}"), out),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                regexes(v, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The grammar's Galley patterns, compiled, with the scope each gives its name (a capture's or
/// the whole match's).
fn galley_patterns(grammar: &Value) -> Vec<(Regex, Value)> {
    let repository = &grammar["repository"];
    ["galley", "stdlib-imports"]
        .iter()
        .flat_map(|rule| {
            let rule = &repository[*rule];
            match rule["patterns"].as_array() {
                Some(patterns) => patterns.clone(),
                None => vec![rule.clone()],
            }
        })
        .map(|p| (Regex::new(p["match"].as_str().unwrap()).unwrap(), p))
        .collect()
}

/// Whether some Galley pattern matches at the start of `text` and gives `name` (a substring of
/// it) a `.galley` scope.
fn highlights(patterns: &[(Regex, Value)], text: &str, name: &str) -> bool {
    let start = text.find(name).unwrap();
    let range = (start, start + name.len());
    patterns.iter().any(|(re, p)| {
        let Some(c) = re.captures(text) else {
            return false;
        };
        if c.pos(0).map(|(s, _)| s) != Some(0) {
            return false;
        }
        let whole = p["name"].as_str().is_some_and(|n| n.ends_with(".galley"));
        (whole && c.pos(0).is_some_and(|(s, e)| s <= range.0 && e >= range.1))
            || (1..c.len()).any(|i| {
                let scope = p["captures"][i.to_string()]["name"]
                    .as_str()
                    .unwrap_or_default();
                c.pos(i) == Some(range) && scope.ends_with(".galley")
            })
    })
}

#[test]
fn the_grammar_is_valid_and_highlights_every_name_the_engine_has() {
    let text =
        std::fs::read_to_string(editors().join("vscode/syntaxes/galley.tmLanguage.json")).unwrap();
    let grammar: Value = serde_json::from_str(&text).expect("the grammar is JSON");
    let mut all = Vec::new();
    regexes(&grammar, "", &mut all);
    assert!(all.len() > 30, "{all:?}");
    for (at, re) in &all {
        // VS Code compiles a grammar's regexes with Oniguruma, as onig does here.
        Regex::new(re).unwrap_or_else(|e| panic!("{at}: {re}: {e}"));
    }
    for (rule, _) in grammar["repository"].as_object().unwrap() {
        assert!(
            text.contains(&format!("\"#{rule}\"")),
            "repository rule {rule} is never included"
        );
    }

    let patterns = galley_patterns(&grammar);
    let (functions, properties, modules) = engine_names();
    for f in &functions {
        assert!(highlights(&patterns, &format!("{f}(x)"), f), "function {f}");
        assert!(
            highlights(&patterns, &format!("{f} (x)"), f),
            "function {f} before a space"
        );
    }
    for p in &properties {
        assert!(
            highlights(&patterns, &format!(".{p} + 1"), p),
            "property {p}"
        );
    }
    for (module, names) in &modules {
        for f in names {
            let call = format!("{module}::{f}(x)");
            assert!(highlights(&patterns, &call, module), "module of {call}");
            assert!(highlights(&patterns, &call, f), "function of {call}");
        }
    }
    for module in ["rolling", "in_place", "swarm"] {
        let import = format!("\"galley/{module}\" as {module}");
        assert!(
            highlights(&patterns, &import, &format!("galley/{module}")),
            "{import}"
        );
    }
    assert!(
        !highlights(&patterns, "deployed(x)", "deployed"),
        "a name only starting like a Galley function is not one"
    );
}

#[test]
fn the_extension_manifest_points_at_its_files_and_matches_gnu_lines() {
    let dir = editors().join("vscode");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("package.json")).unwrap()).unwrap();
    let contributes = &manifest["contributes"];
    let grammar = &contributes["grammars"][0];
    let grammar_file: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(grammar["path"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(grammar["scopeName"], grammar_file["scopeName"]);
    let language = &contributes["languages"][0];
    assert_eq!(grammar["language"], language["id"]);
    let configuration = dir.join(language["configuration"].as_str().unwrap());
    let _: Value = serde_json::from_str(&std::fs::read_to_string(configuration).unwrap()).unwrap();
    let snippets = dir.join(contributes["snippets"][0]["path"].as_str().unwrap());
    assert!(snippets.exists(), "{}", snippets.display());

    // `galley check --format gnu`: file:line:col: severity: message.
    let pattern = &contributes["problemMatchers"][0]["pattern"];
    let re = Regex::new(pattern["regexp"].as_str().unwrap()).unwrap();
    for (line, severity) in [
        (
            "deploy.rhai:12:5: error: unknown option `timout` for health::http",
            "error",
        ),
        (
            "lib/a b.rhai:3:1: warning: fn stop shadows the method stop",
            "warning",
        ),
    ] {
        let c = re.captures(line).unwrap_or_else(|| panic!("{line}"));
        let group = |key: &str| c.at(pattern[key].as_u64().unwrap() as usize).unwrap();
        let (file, rest) = line.split_once(':').unwrap();
        assert_eq!(group("file"), file);
        assert_eq!(group("severity"), severity);
        assert!(rest.ends_with(group("message")), "{line}");
        assert!(group("line").parse::<u32>().is_ok() && group("column").parse::<u32>().is_ok());
    }
}

/// The templates, as the repository holds them: (name, text).
fn templates() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    files_under(&dir)
        .into_iter()
        .filter_map(|(file, text)| Some((file.strip_suffix(".rhai")?.to_string(), text)))
        .collect()
}

#[test]
fn each_template_is_a_snippet() {
    let snippets: Value = serde_json::from_str(
        &std::fs::read_to_string(editors().join("vscode/snippets/galley.json")).unwrap(),
    )
    .unwrap();
    let snippets = snippets.as_object().unwrap();
    let templates = templates();
    assert_eq!(snippets.len(), templates.len(), "{:?}", snippets.keys());
    for (name, text) in templates {
        let snippet = snippets
            .values()
            .find(|s| s["prefix"] == format!("galley-{name}"))
            .unwrap_or_else(|| panic!("no snippet for template {name}"));
        let body: Vec<String> = snippet["body"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().replace(r"\$", "$").replace(r"\\", r"\"))
            .collect();
        assert_eq!(body.last().map(String::as_str), Some("$0"));
        assert_eq!(
            body[..body.len() - 1].join("\n") + "\n",
            text,
            "snippet {name}"
        );
    }
}

/// Runs `commands` in batch-mode vim, with only the plugin on the runtime path, the binary under
/// test first on PATH (the compiler's makeprg calls `galley`) and `deploy.rhai` open; returns
/// the lines the commands add to `lines`, then one `qf=FILE:LINE:COL:TYPE:TEXT` line per
/// quickfix entry.
fn vim(sb: &Sandbox, commands: &str) -> String {
    let report = sb.join("vim.out");
    let script = format!(
        r"set nocompatible
let &runtimepath = '{plugin},' . &runtimepath . ',{plugin}/after'
filetype plugin on
syntax on
edit deploy.rhai
let lines = []
{commands}
for item in getqflist()
  call add(lines, printf('qf=%s:%d:%d:%s:%s', bufname(item.bufnr), item.lnum, item.col, item.type, item.text))
endfor
call writefile(lines, '{report}')
qall!
",
        plugin = editors().join("vim").display(),
        report = report,
    );
    sb.write("test.vim", &script);
    let bin = Path::new(env!("CARGO_BIN_EXE_galley")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = Command::new("vim")
        .args([
            "-N", "-u", "NONE", "-i", "NONE", "-n", "-es", "-S", "test.vim",
        ])
        .env("PATH", path)
        .current_dir(sb.path())
        .status()
        .expect("vim runs (scripts/test installs it)");
    std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("vim wrote no report ({status}): {e}"))
}

#[test]
fn vim_detects_recipes_highlights_galley_names_and_reads_gnu_lines() {
    let sb = Sandbox::new();
    sb.write(
        "deploy.rhai",
        "let h = ssh::connect(\"deploy@web1\");\nh.run([\"true\"]);\nimport \"galley/rolling\" as r;\nfn go() { r.code }\n",
    );
    // What `:make` reads: `galley check --format gnu` lines, and the line it prints for a good file.
    sb.write(
        "gnu.txt",
        "deploy.rhai:2:3: error: unknown function run\nok: other.rhai\ndeploy.rhai:1:9: warning: shadowed\n",
    );
    let out = vim(
        &sb,
        r"call add(lines, 'ft=' . &filetype)
call add(lines, 'connect=' . synIDattr(synID(1, 14, 1), 'name'))
call add(lines, 'run=' . synIDattr(synID(2, 3, 1), 'name'))
call add(lines, 'import=' . synIDattr(synID(3, 10, 1), 'name'))
call add(lines, 'fn=' . synIDattr(synID(4, 4, 1), 'name'))
call add(lines, 'code=' . synIDattr(synID(4, 14, 1), 'name'))
call add(lines, 'makeprg=' . &makeprg)
setlocal makeprg=cat\ gnu.txt
silent make!",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "ft=rhai",
            "connect=galleyModuleFunction",
            "run=galleyFunction",
            "import=galleyStdlib",
            "fn=rhaiFunctionDef",
            "code=galleyProperty",
            "makeprg=galley check --format gnu %:S",
            "qf=deploy.rhai:2:3:e:unknown function run",
            "qf=deploy.rhai:1:9:w:shadowed",
        ]
    );
}

#[test]
fn vim_make_runs_galley_check_into_the_quickfix_list() {
    let sb = Sandbox::new();
    sb.write(
        "deploy.rhai",
        "let h = local();\nh.run([\"true\"], #{ timout: \"1s\" });\n",
    );
    let out = vim(&sb, "silent make!");
    let errors: Vec<&str> = out.lines().filter(|l| l.contains(":e:")).collect();
    assert_eq!(errors.len(), 1, "{out}");
    assert!(
        errors[0].starts_with("qf=deploy.rhai:2:") && errors[0].contains("timout"),
        "{out}"
    );
}

#[test]
fn completions_for_each_shell_name_the_commands() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let run = sb.run(&["completions", shell]).expect_code(0);
        assert!(run.stdout.len() > 1000, "{shell}: {}", run.stdout);
        for command in ["run", "watch", "check", "init"] {
            assert!(run.stdout.contains(command), "{shell} completes {command}");
        }
    }
    // The template names are offered where --template is completed.
    let bash = sb.run(&["completions", "bash"]).stdout;
    assert!(
        bash.contains("blue-green") && bash.contains("canary"),
        "{bash}"
    );
    sb.run(&["completions", "tcsh"]).expect_code(2);
}

#[test]
fn man_is_roff_naming_the_commands() {
    let sb = Sandbox::new();
    let run = sb.run(&["man"]).expect_code(0);
    assert!(
        run.stdout.starts_with(".ie") || run.stdout.starts_with(".TH"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(".TH galley 1"), "{}", run.stdout);
    for command in ["run", "watch", "check", "rollback", "init", "completions"] {
        assert!(
            run.stdout.contains(&format!("galley\\-{command}(1)"))
                || run.stdout.contains(&format!("{command}(1)")),
            "man names {command}:\n{}",
            run.stdout
        );
    }
    sb.run(&["man", "--dir", "man"]).expect_code(0);
    let page = std::fs::read_to_string(sb.path().join("man/galley-run.1")).unwrap();
    assert!(
        page.contains(".TH galley-run 1") && page.contains("dry\\-run"),
        "{page}"
    );
}

/// A small `TextMate` tokenizer (the rules VS Code applies: at each point the pattern that matches
/// earliest wins, the first listed on a tie; `begin`/`end` rules nest), enough to read the scope
/// the grammar gives each piece of a line.
struct Tokenizer<'g> {
    grammar: &'g Value,
}

/// A rule list flattened through `include`s.
fn rules<'g>(grammar: &'g Value, patterns: &'g Value, out: &mut Vec<&'g Value>) {
    for p in patterns.as_array().into_iter().flatten() {
        match p["include"].as_str() {
            Some("$self") => rules(grammar, &grammar["patterns"], out),
            Some(name) => {
                let rule = &grammar["repository"][name.trim_start_matches('#')];
                if rule.get("match").is_some() || rule.get("begin").is_some() {
                    out.push(rule);
                } else {
                    rules(grammar, &rule["patterns"], out);
                }
            }
            None if p.get("patterns").is_some() && p.get("begin").is_none() => {
                rules(grammar, &p["patterns"], out);
            }
            None => out.push(p),
        }
    }
}

impl Tokenizer<'_> {
    /// (text, scopes) for each piece of `line`.
    fn tokens(&self, line: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.scan(
            line,
            0,
            line.len(),
            &self.grammar["patterns"],
            None,
            "",
            &mut out,
        );
        out
    }

    /// Tokenizes `line[from..]` with `patterns` until `end` (a compiled end regex) matches;
    /// returns where it stopped.
    #[allow(clippy::too_many_arguments)]
    fn scan(
        &self,
        line: &str,
        mut at: usize,
        limit: usize,
        patterns: &Value,
        end: Option<&Regex>,
        scope: &str,
        out: &mut Vec<(String, String)>,
    ) -> usize {
        let mut list = Vec::new();
        rules(self.grammar, patterns, &mut list);
        let search = |re: &Regex, at: usize| {
            let mut region = onig::Region::new();
            let options = onig::SearchOptions::SEARCH_OPTION_NONE;
            re.search_with_options(line, at, limit, options, Some(&mut region))?;
            Some(region)
        };
        while at < limit {
            let mut best: Option<(usize, usize, onig::Region, Option<&Value>)> = None;
            if let Some(end) = end {
                if let Some(r) = search(end, at) {
                    best = Some((r.pos(0).unwrap().0, usize::MAX, r, None));
                }
            }
            for (i, rule) in list.iter().enumerate() {
                let re = rule["match"].as_str().or(rule["begin"].as_str()).unwrap();
                if let Some(r) = search(&Regex::new(re).unwrap(), at) {
                    let start = r.pos(0).unwrap().0;
                    // An end that matches at the same point as a pattern wins only after it.
                    if best
                        .as_ref()
                        .is_none_or(|b| start < b.0 || (start == b.0 && i < b.1))
                    {
                        best = Some((start, i, r, Some(*rule)));
                    }
                }
            }
            let Some((start, _, region, rule)) = best else {
                out.push((line[at..limit].to_string(), scope.to_string()));
                return limit;
            };
            if start > at {
                out.push((line[at..start].to_string(), scope.to_string()));
            }
            let (s, e) = region.pos(0).unwrap();
            let Some(rule) = rule else {
                out.push((line[s..e].to_string(), scope.to_string()));
                return e;
            };
            let inner = match rule["name"].as_str() {
                Some(name) => format!("{scope} {name}").trim().to_string(),
                None => scope.to_string(),
            };
            if rule.get("begin").is_some() {
                out.push((line[s..e].to_string(), inner.clone()));
                let end = Regex::new(rule["end"].as_str().unwrap()).unwrap();
                at = self.scan(line, e, limit, &rule["patterns"], Some(&end), &inner, out);
            } else {
                let mut piece = s;
                for i in 1..region.len() {
                    let (Some((cs, ce)), Some(name)) = (
                        region.pos(i),
                        rule["captures"][i.to_string()]["name"].as_str(),
                    ) else {
                        continue;
                    };
                    if cs > piece {
                        out.push((line[piece..cs].to_string(), inner.clone()));
                    }
                    out.push((
                        line[cs..ce].to_string(),
                        format!("{inner} {name}").trim().to_string(),
                    ));
                    piece = ce;
                }
                if e > piece {
                    out.push((line[piece..e].to_string(), inner.clone()));
                }
                // A rule that matched nothing would loop forever.
                at = e.max(at + 1);
            }
        }
        at
    }
}

#[test]
fn the_grammar_colours_a_recipe_as_expected() {
    let text =
        std::fs::read_to_string(editors().join("vscode/syntaxes/galley.tmLanguage.json")).unwrap();
    let grammar: Value = serde_json::from_str(&text).unwrap();
    let tokenizer = Tokenizer { grammar: &grammar };
    // The scope at the first occurrence of `piece` in `line`, the same over all of it.
    let scope_of = |line: &str, piece: &str| -> String {
        let tokens = tokenizer.tokens(line);
        let start = line.find(piece).unwrap();
        let at = |offset: usize| {
            let mut end = 0;
            tokens
                .iter()
                .find(|(text, _)| {
                    end += text.len();
                    end > offset
                })
                .map(|(_, scope)| scope.clone())
                .unwrap_or_default()
        };
        let scope = at(start);
        assert_eq!(
            scope,
            at(start + piece.len() - 1),
            "{piece:?} in {tokens:?}"
        );
        scope
    };
    let line = r#"import "galley/rolling" as rolling;"#;
    assert!(scope_of(line, "import").contains("keyword.control.import.rhai"));
    assert!(scope_of(line, "galley/rolling").contains("entity.name.namespace.stdlib.galley"));
    let line = "rolling::deploy(#{ hosts: fleet, batch: 2 });";
    assert!(scope_of(line, "rolling").contains("entity.name.namespace.stdlib.galley"));
    assert!(scope_of(line, "deploy").contains("support.function.galley"));
    assert!(scope_of(line, "2").contains("constant.numeric.integer.decimal.rhai"));
    let line = r#"let h = ssh::connect("deploy@web1"); h.run(["true"]);"#;
    assert!(scope_of(line, "let").contains("storage.type.rhai"));
    assert!(scope_of(line, "connect").contains("support.function.galley"));
    assert!(scope_of(line, "run").contains("support.function.galley"));
    assert!(scope_of(line, r#""deploy@web1""#).contains("string.quoted.double.rhai"));
    let line = "let r = h.run(`echo ${ssh::hosts([]).len()} ${ #{a: 1}.a }`); r.code";
    assert!(scope_of(line, "hosts").contains("meta.interpolation.rhai"));
    assert!(scope_of(line, "hosts").contains("support.function.galley"));
    assert!(scope_of(line, "code").contains("variable.other.property.galley"));
    // Inside a comment or a string, a Galley name is just text.
    assert_eq!(
        scope_of("// ssh::connect(x)", "// ssh::connect(x)"),
        "comment.line.double-slash.rhai"
    );
    assert_eq!(
        scope_of(r#""local()""#, r#""local()""#),
        "string.quoted.double.rhai"
    );
    assert!(scope_of("/// Deploys.", "/// Deploys.").contains("comment.line.documentation.rhai"));
    // A recipe's own function is a definition, a call of an unknown function a plain call.
    let line = "fn release(h) { mine(h) }";
    assert!(scope_of(line, "release").contains("entity.name.function.rhai"));
    assert!(scope_of(line, "mine").contains("entity.name.function.call.rhai"));
}
