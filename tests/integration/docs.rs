//! `galley docs`: the reference printed from the engine and the stdlib, docs/API.md kept in sync
//! with it, and the option tables it shows being the ones that calls are checked against.

use crate::support::Sandbox;

/// `galley docs ARGS...`, expected to succeed.
fn docs(args: &[&str]) -> String {
    let mut all = vec!["docs"];
    all.extend_from_slice(args);
    Sandbox::new().run(&all).expect_code(0).stdout
}

#[test]
fn docs_api_md_is_the_markdown_reference() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md");
    let written = std::fs::read_to_string(path).unwrap_or_default();
    let generated = docs(&["--format", "markdown"]);
    assert!(
        written == generated,
        "docs/API.md is stale: regenerate it with `galley docs --format markdown > docs/API.md`"
    );
}

#[test]
fn a_native_function_shows_its_signatures_doc_example_and_options() {
    assert_eq!(
        docs(&["health::tcp"]),
        r#"== health:: ==
Health checks that wait for an endpoint to answer, from the local machine or through a host.

health::tcp(addr: string) -> map
health::tcp(addr: string, opts: map) -> map
    Polls a TCP address (HOST:PORT) until it accepts a connection; returns #{ attempts }.
    example: health::tcp("127.0.0.1:5432", #{ on: db, timeout: "2s" });
    options:
      on        Host = local()   check from this host: the endpoint is reached through its ssh connection
      timeout   duration = "5s"  how long one attempt may take
      retries   int = 30         how many attempts before it fails
      interval  duration = "1s"  the pause between attempts
      service   Service          an answer counts only while this service's process runs and listens on the port; fails at once when it exits

"#
    );
}

#[test]
fn methods_and_properties_are_shown_on_their_type() {
    assert_eq!(
        docs(&["Repo.dir"]),
        r"== Repo ==
A git working copy on a host (host.git(dir)), driven through the git CLI with argv.

repo.dir -> string
    The repo's folder.
    example: log(repo.dir);

"
    );
    let out = docs(&["Host.write"]);
    assert!(
        out.contains("host.write(path: string, text: string, opts: map)\n    Writes a text file"),
        "{out}"
    );
    assert!(
        out.contains("      mode  string | int = the old file's mode"),
        "{out}"
    );
}

#[test]
fn a_stdlib_strategy_shows_its_doc_comment_and_option_table() {
    assert_eq!(
        docs(&["in_place::deploy"]),
        r#"== galley/in_place ==
Update the code, stop the running app, start the new one, health-check it. The start.sh flow, for a process on any Host.
import "galley/in_place" as in_place;

in_place::deploy(service: any, opts: map) -> any
    Deploys `service` in place under the app's lock, journaled: update, stop, start, health check. Returns the new pid.
    example: in_place::deploy(app, #{ update: || repo.pull(), health: "http://127.0.0.1:8000/health" });
    options:
      app             string            the name in the lock and the journal (default: the service's)
      branch          string | fn       the branch, for the journal
      health          string            a URL checked on the service's host after the start
      health_options  map               options for health::http (`on` and `service` default to the service's)
      sha             string | fn       the version, for the journal; a closure is called after the update
      stop_first      bool = false      stop the app before the update instead of after it
      stop_timeout    duration = "10s"  how long the old process has to stop
      update          fn                brings the new version (a pull, a build); runs while the old one serves

"#
    );
}

#[test]
fn json_gives_the_catalog_for_tools() {
    let out = docs(&["notify::slack", "--format", "json"]);
    let catalog: serde_json::Value = serde_json::from_str(&out).expect("json");
    let functions = catalog["functions"].as_array().unwrap();
    assert_eq!(functions.len(), 1, "{out}");
    assert_eq!(
        functions[0],
        serde_json::json!({
            "module": "notify", "name": "slack", "kind": "function",
            "params": [{ "name": "url", "type": "string" }, { "name": "text", "type": "string" }],
            "returns": "bool",
            "doc": "POSTs `#{ text }` to a Slack (or compatible) incoming webhook; true when it answered 2xx.",
            "example": "notify::slack(secret(\"SLACK_HOOK\"), \"deploy finished\");",
            "options": [], "stdlib": false,
        })
    );
    let rolling = docs(&["rolling::deploy", "--format", "json"]);
    let catalog: serde_json::Value = serde_json::from_str(&rolling).expect("json");
    let batch = catalog["functions"][0]["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == "batch")
        .cloned();
    assert_eq!(
        batch,
        Some(serde_json::json!({
            "key": "batch", "type": "int", "default": "1", "required": false,
            "doc": "how many hosts are updated at once",
        }))
    );
}

#[test]
fn an_unknown_filter_says_so_and_exits_2() {
    let run = Sandbox::new().run(&["docs", "helth::http"]).expect_code(2);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "galley docs: no function matches `helth::http` (did you mean `health::http`?); `galley docs` lists them all\n"
    );
}

#[test]
fn a_typo_in_a_strategy_option_is_an_unknown_option_report_at_the_recipe_call() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe(
            "import \"galley/rolling\" as rolling;\n\nrolling::deploy(#{ app: \"web\", hosts: [], batchh: 2 });\n",
            &[],
        )
        .expect_code(1);
    assert!(
        run.stderr.starts_with("galley::unknown_option\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("unknown option `batchh` for rolling::deploy"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `batch`?"),
        "{}",
        run.stderr
    );
    // The report points at the recipe's call, where the typo is, like a native function's.
    assert!(
        run.stderr.contains(
            "[recipe.rhai:3:10]\n 2 | \n 3 | rolling::deploy(#{ app: \"web\", hosts: [], batchh: 2 });\n   :          ^^^|^^\n   :             `-- here\n"
        ),
        "{}",
        run.stderr
    );
    // The stdlib's check is a note under it, and no call frame repeats the recipe line.
    assert!(
        run.stderr
            .contains("checked here\n    ,-[<stdlib>/rolling.rhai:27:25]"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(" 27 |     let opts = options::check(\"rolling::deploy\", opts, #{"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("called from here"), "{}", run.stderr);
}

#[test]
fn a_missing_required_strategy_option_is_reported_by_name() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe(
            "import \"galley/blue_green\" as bg;\nbg::deploy(#{ app: \"web\" });\n",
            &[],
        )
        .expect_code(1);
    assert!(
        run.stderr.starts_with("galley::missing_option\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("missing option `host` for blue_green::deploy"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "help: pass `host` (a Host (local() or ssh::connect(...))) in the options map"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn option_values_are_checked_against_the_table_before_anything_runs() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe("local().run(\"touch ran\", #{ quiet: \"yes\" });\n", &[])
        .expect_code(1);
    assert!(
        run.stderr
            .contains("run: option `quiet` must be true or false, got string \"yes\""),
        "{}",
        run.stderr
    );
    assert!(!sb.path().join("ran").exists());
    // A strategy's table is typed too.
    let run = sb
        .run_recipe(
            "import \"galley/rolling\" as rolling;\nrolling::deploy(#{ app: \"web\", hosts: \"web1\", nginx: local().nginx(), addr: |h| h, update: |h| h });\n",
            &[],
        )
        .expect_code(1);
    assert!(
        run.stderr
            .contains("rolling::deploy: option `hosts` must be an array, got string \"web1\""),
        "{}",
        run.stderr
    );
}

#[test]
fn a_library_checks_its_options_like_the_stdlib() {
    let sb = Sandbox::new();
    sb.write(
        "lib.rhai",
        r#"/// Greets.
fn greet(opts) {
    let opts = options::check("lib::greet", opts, #{
        name: #{ type: "string", required: true, doc: "who" },
        times: #{ type: "int", "default": 2, doc: "how often" },
    });
    `${opts.name} x${opts.times}`
}
"#,
    );
    let run = sb
        .run_recipe(
            "import \"lib\" as lib;\nprint(lib::greet(#{ name: \"ada\" }));\nlib::greet(#{ name: \"ada\", times: \"3\" });\n",
            &[],
        )
        .expect_code(1);
    assert!(run.stdout.contains("ada x2"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("lib::greet: option `times` must be a whole number, got string \"3\""),
        "{}",
        run.stderr
    );
    // A wrong value in the caller's map is reported at the caller's line.
    assert!(
        run.stderr.contains(
            "[recipe.rhai:3:6]\n 2 | print(lib::greet(#{ name: \"ada\" }));\n 3 | lib::greet(#{ name: \"ada\", times: \"3\" });\n   :      ^^|^^\n   :        `-- here\n"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("checked here\n   ,-[lib.rhai:3:25]"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_mistake_in_a_library_options_table_is_reported_at_the_table() {
    let sb = Sandbox::new();
    sb.write(
        "lib.rhai",
        "fn greet(opts) {\n    options::check(\"lib::greet\", opts, #{ name: #{ type: \"strin\" } })\n}\n",
    );
    let run = sb
        .run_recipe(
            "import \"lib\" as lib;\nlib::greet(#{ name: \"ada\" });\n",
            &[],
        )
        .expect_code(1);
    assert!(
        run.stderr.starts_with("galley::bad_value\n"),
        "{}",
        run.stderr
    );
    // The library's author has to fix it, so the table is the spot and the call a frame.
    assert!(run.stderr.contains("[lib.rhai:2:14]"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("called from here\n   ,-[recipe.rhai:2:6]"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_strategy_option_typo_in_a_recipe_function_points_at_the_strategy_call() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe(
            "import \"galley/rolling\" as rolling;\nfn release() {\n    rolling::deploy(#{ app: \"web\", hosts: [], batchh: 2 });\n}\ntry { release(); } catch (e) { print(e.code); }\nrelease();\n",
            &[],
        )
        .expect_code(1);
    // `catch` still sees the failure itself.
    assert!(
        run.stdout.contains("galley::unknown_option"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains(
            "[recipe.rhai:3:14]\n 2 | fn release() {\n 3 |     rolling::deploy(#{ app: \"web\", hosts: [], batchh: 2 });\n"
        ),
        "{}",
        run.stderr
    );
    // The calls around it stay frames, after the note of the check.
    let checked = run.stderr.find("checked here").expect("the check's note");
    let called = run
        .stderr
        .find("called from here\n   ,-[recipe.rhai:6:1]")
        .expect("the call of release()");
    assert!(checked < called, "{}", run.stderr);
}
