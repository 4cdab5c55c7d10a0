//! `galley check`: undefined variables, functions that hide built-ins, and the output formats.
//! (Unknown functions, syntax errors and imports: cli.rs.)

use std::path::Path;

use crate::support::Sandbox;

/// A recipe that uses every way Rhai defines a name; it runs, and check finds nothing in it.
const VALID: &str = r#"
import "lib" as lib;
import "galley/in_place" as in_place;
const GREETING = "hi";
let names = ["a", "b"];
let total = 0;
for (name, i) in names { total += i; }
let seen = [];
try { throw "boom"; } catch (err) { seen.push(err); }
let add = |x| x + total;
let nested = |a| |b| a + b + names.len();

/// Greets someone.
fn greet(who) { `${global::GREETING} ${who} ${params.name ?? "?"} ${task}` }

fn shout() { this.to_upper() }

/// Deploys.
fn deploy() {
    let inner = |x| x + 1;
    log(greet(lib::name()));
    log(`inner=${inner.call(1)}`);
}

log(`add=${add.call(1)} nested=${nested.call(1).call(2)} shout=${"x".shout()} seen=${seen[0]}`);
let f = Fn("greet");
log(f.call("x"));
let counter = 0;
do { counter += 1; } while counter < 3;
switch counter { 3 => log("three"), _ => log("other") }
if task == "" { deploy(); }
"#;

#[test]
fn recipes_that_run_today_pass() {
    let sb = Sandbox::new();
    sb.write("lib.rhai", "fn name() { \"lib\" }\n");
    sb.write("valid.rhai", VALID);
    let run = sb
        .run(&["run", "valid.rhai", "--output", "plain"])
        .expect_code(0);
    assert!(
        run.stdout.contains("add=2 nested=5 shout=X seen=boom"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("hi lib ? "), "{}", run.stdout);
    let run = sb
        .run(&["check", "valid.rhai", "--output", "plain"])
        .expect_code(0);
    assert_eq!(run.stdout, "ok: valid.rhai\n");
    assert_eq!(run.stderr, "");

    // The repository's recipes, and the stdlib modules read as recipes (their functions hide
    // built-ins within the module, which is a warning: `swarm::deploy` calls `deploy(svc, spec)`).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = Vec::new();
    for dir in ["recipes", "recipes/github", "stdlib"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rhai") {
                files.push(path.to_string_lossy().into_owned());
            }
        }
    }
    assert!(files.len() >= 10, "{files:?}");
    let mut args = vec!["check", "--format", "gnu"];
    args.extend(files.iter().map(String::as_str));
    let run = sb.run(&args).expect_code(0);
    for line in run.stdout.lines() {
        assert!(
            line.contains("/stdlib/") && line.contains(": warning: "),
            "{line}"
        );
    }
}

#[test]
fn a_top_level_variable_read_in_a_function_says_how_to_pass_it() {
    let sb = Sandbox::new();
    sb.write(
        "deploy.rhai",
        "let dir = \"/srv/app\";\nlocal().write(\"ran.txt\", \"x\");\n\n/// Deploy the app.\nfn deploy() {\n    local().mkdir(dir);\n}\n",
    );
    let run = sb
        .run(&["check", "deploy.rhai", "--output", "plain"])
        .expect_code(2);
    assert_eq!(
        run.stderr,
        "galley::unknown_variable

  x function `deploy` cannot see `dir`, a top-level variable (line 1)
   ,-[deploy.rhai:6:19]
 5 | fn deploy() {
 6 |     local().mkdir(dir);
   :                   ^|^
   :                    `-- not defined here
 7 | }
   `----
  help: Rhai functions do not see the caller's variables: pass it as a parameter (`fn
        deploy(dir)`), or declare it `const dir = ...;` and read `global::dir`; a function sees
        only its parameters, `params`, `task` and `global::NAME`

"
    );
    assert_eq!(run.stdout, "");
    assert!(
        !Path::new(&sb.join("ran.txt")).exists(),
        "check ran the recipe"
    );

    // A top-level `const` is there already: read it through `global::`.
    sb.write(
        "port.rhai",
        "const PORT = 8080;\nfn serve(host) {\n    host.run([\"serve\", `${PORT}`]);\n}\n",
    );
    let run = sb
        .run(&["check", "port.rhai", "--format", "json"])
        .expect_code(2);
    let problem: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(
        problem["message"],
        "function `serve` cannot see `PORT`, a top-level variable (line 1)"
    );
    assert_eq!(
        problem["help"],
        "Rhai functions do not see the caller's variables: read it as `global::PORT`; a function \
         sees only its parameters, `params`, `task` and `global::NAME`"
    );
}

#[test]
fn an_unknown_variable_suggests_a_near_name_and_a_late_one_says_to_move_it() {
    let sb = Sandbox::new();
    sb.write(
        "typo.rhai",
        "let release = \"v1\";\nlog(relaese);\nlog(later);\nlet later = 1;\n",
    );
    let run = sb
        .run(&["check", "typo.rhai", "--output", "plain"])
        .expect_code(2);
    assert_eq!(
        run.stderr,
        "galley::unknown_variable

  x unknown variable `relaese`
   ,-[typo.rhai:2:5]
 1 | let release = \"v1\";
 2 | log(relaese);
   :     ^^^|^^^
   :        `-- not defined here
 3 | log(later);
   `----
  help: did you mean `release`? declare it with `let` before its use; a function sees only its
        parameters, `params`, `task` and top-level `const`s as `global::NAME`

galley::unknown_variable

  x `later` is used before it is declared
   ,-[typo.rhai:3:5]
 2 | log(relaese);
 3 | log(later);
   :     ^^|^^
   :       `-- not defined here
 4 | let later = 1;
   `----
  help: move the declaration (line 4) above its first use

"
    );
}

#[test]
fn a_function_named_like_a_method_is_a_warning_naming_both() {
    let sb = Sandbox::new();
    sb.write(
        "shadow.rhai",
        "let app = local().process(\"web\", #{ cmd: [\"sleep\", \"1\"] });\n\n/// Stops the app.\nfn stop() {\n    log(\"stopping\");\n}\n",
    );
    let run = sb
        .run(&["check", "shadow.rhai", "--output", "plain"])
        .expect_code(0);
    assert_eq!(run.stdout, "ok: shadow.rhai (1 warning)\n");
    assert_eq!(
        run.stderr,
        "galley::shadowed_function

  ! the recipe function `stop()` hides the built-in `stop(Service)`
   ,-[shadow.rhai:4:4]
 3 | /// Stops the app.
 4 | fn stop() {
   :    ^^|^
   :      `-- defined here
 5 |     log(\"stopping\");
   `----
  help: Rhai calls a recipe function before a built-in one with the same name and number of
        arguments: `x.stop()` now runs the recipe's `stop`; give it another name

"
    );

    // In GitHub Actions it is a warning annotation.
    let run = sb
        .invoke(["check", "shadow.rhai"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", sb.path())
        .run()
        .expect_code(0);
    assert!(
        run.stdout.starts_with(
            "::warning file=shadow.rhai,line=4,col=4,title=Galley%3A galley%3A%3Ashadowed_function::\
             the recipe function `stop()` hides the built-in `stop(Service)`\n"
        ),
        "{}",
        run.stdout
    );

    // A Rhai method: both the method and the function form reach the recipe's function.
    sb.write("index.rhai", "fn index_of(text, part) { 0 }\n");
    let run = sb
        .run(&["check", "index.rhai", "--format", "gnu"])
        .expect_code(0);
    assert_eq!(
        run.stdout,
        "index.rhai:1:4: warning: the recipe function `index_of(text, part)` hides the built-in \
         `index_of(array, Dynamic)`, `index_of(array, Dynamic, int)` and 8 more [galley::shadowed_function]\n"
    );
}

#[test]
fn gnu_format_prints_one_line_per_problem() {
    let sb = Sandbox::new();
    sb.write(
        "deploy.rhai",
        "let dir = \"/srv\";\nfn deploy() {\n    lgo(dir);\n}\nfn stop() { }\nlocal().rnu([\"ls\"]);\n",
    );
    sb.write("syntax.rhai", "let x = ;\n");
    sb.write("good.rhai", "log(1);\n");
    let run = sb
        .run(&[
            "check",
            "deploy.rhai",
            "good.rhai",
            "syntax.rhai",
            "missing.rhai",
            "--format",
            "gnu",
        ])
        .expect_code(2);
    assert_eq!(
        run.stdout,
        "deploy.rhai:3:5: error: unknown function `lgo` [galley::unknown_function]
deploy.rhai:3:9: error: function `deploy` cannot see `dir`, a top-level variable (line 1) [galley::unknown_variable]
deploy.rhai:5:4: warning: the recipe function `stop()` hides the built-in `stop(Service)` [galley::shadowed_function]
deploy.rhai:6:9: error: unknown function `rnu` [galley::unknown_function]
syntax.rhai:1:9: error: syntax error: Unexpected ';' [galley::syntax]
missing.rhai:1:1: error: cannot read recipe missing.rhai: No such file or directory (os error 2) [galley::recipe_not_found]
"
    );
    assert_eq!(run.stderr, "");

    // Warnings alone exit 0.
    sb.write("warn.rhai", "fn stop() { }\n");
    sb.run(&["check", "warn.rhai", "--format", "gnu"])
        .expect_code(0);
}

#[test]
fn json_format_gives_one_object_per_problem() {
    let sb = Sandbox::new();
    sb.write("deploy.rhai", "fn stop() { }\nlog(nope);\n");
    let run = sb
        .run(&["check", "deploy.rhai", "--format", "json"])
        .expect_code(2);
    let problems: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(problems.len(), 2, "{}", run.stdout);
    for problem in &problems {
        let mut keys: Vec<&str> = problem
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["code", "column", "file", "help", "line", "message", "severity"]
        );
    }
    assert_eq!(problems[0]["severity"], "warning");
    assert_eq!(problems[0]["code"], "galley::shadowed_function");
    assert_eq!(
        (
            &problems[0]["file"],
            &problems[0]["line"],
            &problems[0]["column"]
        ),
        (&"deploy.rhai".into(), &1.into(), &4.into())
    );
    assert_eq!(problems[1]["severity"], "error");
    assert_eq!(problems[1]["code"], "galley::unknown_variable");
    assert_eq!(problems[1]["message"], "unknown variable `nope`");

    // A problem that is nowhere in the file has no line and column.
    let run = sb
        .run(&["check", "missing.rhai", "--format", "json"])
        .expect_code(2);
    let problem: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(problem["file"], "missing.rhai");
    assert!(problem["line"].is_null() && problem["column"].is_null());

    sb.run(&["check", "deploy.rhai", "--format", "xml"])
        .expect_code(2);
}

#[test]
fn wrong_arity_literal_types_and_option_keys_are_found_before_running() {
    let sb = Sandbox::new();
    sb.write(
        "args.rhai",
        "import \"galley/rolling\" as rolling;\nlet h = local();\nlet repo = h.git();\nhealth::http(8000);\nh.run([\"make\"], #{ timout: \"5m\", quiet: \"yes\" });\nrolling::deploy();\n",
    );
    let run = sb
        .run(&["check", "args.rhai", "--output", "plain"])
        .expect_code(2);
    assert_eq!(
        run.stderr,
        "galley::wrong_arguments

  x `.git(...)` is given 0 arguments, but it takes 1
   ,-[args.rhai:3:14]
 2 | let h = local();
 3 | let repo = h.git();
   :              ^|^
   :               `-- this call
 4 | health::http(8000);
   `----
  help: it takes: Host.git(dir: string); `galley docs git` describes it

galley::wrong_arguments

  x `health::http` takes a string as `url`, not an int (8000)
   ,-[args.rhai:4:14]
 3 | let repo = h.git();
 4 | health::http(8000);
   :              ^^|^
   :                `-- this argument
 5 | h.run([\"make\"], #{ timout: \"5m\", quiet: \"yes\" });
   `----
  help: it takes: health::http(url: string); health::http(url: string, opts: map); `galley docs
        health` describes it

galley::unknown_option

  x unknown option `timout` for run
   ,-[args.rhai:5:20]
 4 | health::http(8000);
 5 | h.run([\"make\"], #{ timout: \"5m\", quiet: \"yes\" });
   :                    ^^^|^^
   :                       `-- this option
 6 | rolling::deploy();
   `----
  help: did you mean `timeout`? valid options: check, dir, env, quiet, stdin, sudo, timeout

galley::bad_value

  x run: option `quiet` must be true or false, got string \"yes\"
   ,-[args.rhai:5:34]
 4 | health::http(8000);
 5 | h.run([\"make\"], #{ timout: \"5m\", quiet: \"yes\" });
   :                                  ^^|^^
   :                                    `-- this option
 6 | rolling::deploy();
   `----
  help: pass true or false

galley::wrong_arguments

  x `rolling::deploy` is given 0 arguments, but it takes 1
   ,-[args.rhai:6:10]
 5 | h.run([\"make\"], #{ timout: \"5m\", quiet: \"yes\" });
 6 | rolling::deploy();
   :          ^^^|^^
   :             `-- this call
   `----
  help: it takes: rolling::deploy(opts: map); `galley docs rolling` describes it

"
    );

    // The same calls with what they take pass; values known only when the recipe runs are
    // checked then, and a recipe function of the same name is the recipe's business.
    sb.write(
        "fine.rhai",
        "let h = local();\nlet dir = \"app\";\nlet repo = h.git(dir);\nhealth::http(`http://127.0.0.1:${8000}/`, #{ retries: 3 });\n\
         h.run([\"make\"], #{ timeout: dir, quiet: true, env: #{ CI: \"1\" } });\n\
         fn checkout() { }\nlet s = \"abc\".index_of(\"b\");\n",
    );
    let run = sb
        .run(&["check", "fine.rhai", "--format", "gnu"])
        .expect_code(0);
    assert_eq!(run.stdout, "");

    let run = sb
        .run(&["check", "args.rhai", "--format", "gnu"])
        .expect_code(2);
    assert_eq!(
        run.stdout.lines().nth(2),
        Some("args.rhai:5:20: error: unknown option `timout` for run [galley::unknown_option]")
    );
}

#[test]
fn stdlib_strategies_have_their_options_checked_like_native_functions() {
    let sb = Sandbox::new();
    sb.write(
        "strategy.rhai",
        "import \"galley/rolling\" as rolling;\nimport \"galley/blue_green\" as bg;\n\
         rolling::deploy(#{ hostz: [], batch: 2 });\n\
         bg::deploy(#{ app: \"web\", host: local(), helth: \"5s\", nginx: (), start: |c| c, stop: |c| c });\n",
    );
    let run = sb
        .run(&["check", "strategy.rhai", "--format", "gnu"])
        .expect_code(2);
    assert_eq!(
        run.stdout,
        "strategy.rhai:3:10: error: missing option `addr` for rolling::deploy [galley::missing_option]
strategy.rhai:3:10: error: missing option `app` for rolling::deploy [galley::missing_option]
strategy.rhai:3:10: error: missing option `hosts` for rolling::deploy [galley::missing_option]
strategy.rhai:3:10: error: missing option `nginx` for rolling::deploy [galley::missing_option]
strategy.rhai:3:10: error: missing option `update` for rolling::deploy [galley::missing_option]
strategy.rhai:3:20: error: unknown option `hostz` for rolling::deploy [galley::unknown_option]
strategy.rhai:4:42: error: unknown option `helth` for blue_green::deploy [galley::unknown_option]
"
    );
    let run = sb
        .run(&["check", "strategy.rhai", "--format", "json"])
        .expect_code(2);
    let helps: Vec<String> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["help"].to_string())
        .collect();
    assert!(
        helps[5].starts_with("\"did you mean `hosts`? valid options: "),
        "{}",
        helps[5]
    );
    assert!(
        helps[6].starts_with("\"did you mean `health`? "),
        "{}",
        helps[6]
    );
}
