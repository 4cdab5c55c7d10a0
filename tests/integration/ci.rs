//! Galley in GitHub Actions: `--output github` (chosen by `GITHUB_ACTIONS=true`), the step summary
//! and outputs files, and the workflow in recipes/github.

use std::path::Path;

use crate::support::{Run, Sandbox};

/// Two steps, secrets (one from --secrets, one multi-line from the environment), a host line
/// that tries to issue a workflow command, and a failure in a file whose name has a comma.
const RECIPE: &str = r#"let token = secret("API_TOKEN");
let cert = secret("CERT");
step("build", || {
    local().run(["echo", "using " + token]);
    local().run(["echo", "::error::from the host"]);
});
ci::output("url", "https://staging.example.com");
ci::output("notes", "line one\nline two");
step("deploy", || {
    throw "bad, very\nbad";
});
"#;

/// Runs `recipe` as `deploy,prod.rhai` inside GitHub Actions (no --output given) with
/// the summary and output files in the sandbox.
fn in_actions(sb: &Sandbox, recipe: &str, extra: &[&str]) -> Run {
    sb.write("deploy,prod.rhai", recipe);
    sb.write(".secrets", "DB_PASSWORD=hunter22\n");
    let mut args = vec!["run", "deploy,prod.rhai", "--secrets", ".secrets"];
    args.extend_from_slice(extra);
    sb.invoke(&args)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", sb.path())
        .env("GITHUB_STEP_SUMMARY", sb.path().join("summary.md"))
        .env("GITHUB_OUTPUT", sb.path().join("output.txt"))
        .env("API_TOKEN", "tok-12345")
        .env("CERT", "-----BEGIN-----\nabc\n-----END-----")
        .run()
}

/// The stop-commands token replaced by TOKEN and every duration by N.NNs.
fn normalized(stdout: &str) -> String {
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("::stop-commands::"))
        .expect("a stop-commands line")
        .to_string();
    durations(&stdout.replace(&token, "TOKEN"))
}

/// Every duration ("<digits>.<digits>s") replaced by N.NNs.
fn durations(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let digits = tail
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(tail.len());
        let number = &tail[..digits];
        if number.contains('.') && tail[digits..].starts_with('s') {
            out.push_str("N.NN");
        } else {
            out.push_str(number);
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

const PINNED: &str = "::add-mask::hunter22
::add-mask::tok-12345
::add-mask::-----BEGIN-----
::add-mask::abc
::add-mask::-----END-----
::group::build
::stop-commands::TOKEN
[local] $ run echo 'using ***'
[local] using ***
[local] $ run echo '::error::from the host'
[local] ::error::from the host
<== build: ok in N.NNs
::TOKEN::
::endgroup::
::group::deploy
::stop-commands::TOKEN
<== deploy: failed in N.NNs
::TOKEN::
::endgroup::
::stop-commands::TOKEN
failed after N.NNs
::TOKEN::
::error file=deploy%2Cprod.rhai,line=10,col=5,title=Galley%3A galley%3A%3Athrow::the recipe threw: bad, very%0Abad
::stop-commands::TOKEN
";

#[test]
fn github_output_groups_masks_fences_and_annotates() {
    let sb = Sandbox::new();
    let run = in_actions(&sb, RECIPE, &[]).expect_code(1);
    let text = normalized(&run.stdout);
    assert!(
        text.starts_with(PINNED),
        "--- got ---\n{text}\n--- expected to start with ---\n{PINNED}"
    );
    // Then the report itself, fenced (its stderr tail may come from a host), and the fence
    // lifted at the very end so that the workflow's next commands work.
    let report = &text[PINNED.len()..];
    assert!(report.contains("the recipe threw: bad, very"), "{report}");
    assert!(report.ends_with("::TOKEN::\n"), "{report}");
    let clear: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("tok-12345") || l.contains("hunter22"))
        .collect();
    assert_eq!(clear, ["::add-mask::hunter22", "::add-mask::tok-12345"]);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn github_summary_and_outputs_are_written() {
    let sb = Sandbox::new();
    in_actions(&sb, RECIPE, &[]).expect_code(1);
    let summary = std::fs::read_to_string(sb.path().join("summary.md")).expect("summary written");
    let summary = durations(&summary);
    for row in [
        "### ❌ Galley: failed in N.NNs",
        "| host | result | time |",
        "| local | ran | - |",
        "| step | result | time |",
        "| build | ok | N.NNs |",
        "| deploy | failed | N.NNs |",
        "url: `https://staging.example.com`",
        concat!("galley ", env!("CARGO_PKG_VERSION")),
    ] {
        assert!(summary.contains(row), "no {row:?} in\n{summary}");
    }
    let outputs = std::fs::read_to_string(sb.path().join("output.txt")).expect("outputs written");
    let lines: Vec<&str> = outputs.lines().collect();
    assert_eq!(lines[0], "result=failed", "{outputs}");
    assert_eq!(lines[1], "url=https://staging.example.com", "{outputs}");
    let delimiter = lines[2].strip_prefix("notes<<").expect(&outputs);
    assert!(delimiter.starts_with("ghadelimiter_"), "{outputs}");
    assert_eq!(
        &lines[3..],
        ["line one", "line two", delimiter],
        "{outputs}"
    );
}

#[test]
fn at_most_ten_error_annotations_the_rest_in_the_summary() {
    let sb = Sandbox::new();
    let recipe = "let items = [];\nfor i in range(0, 12) { items.push(i); }\n\
parallel(items, |i| { throw `item ${i} broke`; });\n";
    let run = in_actions(&sb, recipe, &["--max-parallel", "2"]).expect_code(1);
    let errors = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("::error "))
        .count();
    assert_eq!(errors, 10, "{}", run.stdout);
    let summary = std::fs::read_to_string(sb.path().join("summary.md")).unwrap();
    assert!(
        summary.contains("More errors than GitHub annotates"),
        "{summary}"
    );
    assert!(summary.contains("| 11 | failed |"), "{summary}");
}

#[test]
fn an_explicit_output_wins_over_github_actions() {
    let sb = Sandbox::new();
    let run = in_actions(
        &sb,
        "step(\"a\", || log(\"hi\"));\n",
        &["--output", "plain"],
    )
    .expect_code(0);
    assert!(!run.stdout.contains("::"), "{}", run.stdout);
    assert!(run.stdout.contains("==> a"), "{}", run.stdout);
    assert!(!sb.path().join("summary.md").exists());
}

#[test]
fn check_annotates_problems_in_github_actions() {
    let sb = Sandbox::new();
    sb.write("bad.rhai", "let x = 1;\nlocal().rnu(\"x\");\n");
    let run = sb
        .invoke(["check", "bad.rhai"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", sb.path())
        .run()
        .expect_code(2);
    assert_eq!(
        run.stdout.trim_end(),
        "::error file=bad.rhai,line=2,col=9,title=Galley%3A galley%3A%3Aunknown_function::\
unknown function `rnu`",
    );
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_github_workflow_calls_a_recipe_that_passes_check() {
    let text = std::fs::read_to_string(repo().join("recipes/github/deploy.yml")).unwrap();
    let workflow: serde_norway::Value = serde_norway::from_str(&text).expect("valid YAML");
    let on = &workflow["on"];
    let branches = on["push"]["branches"].as_sequence().expect("push.branches");
    assert!(branches.iter().any(|b| b == "main"), "{branches:?}");
    assert!(branches.iter().any(|b| b == "release/*"), "{branches:?}");
    assert!(on["push"]["paths"]
        .as_sequence()
        .is_some_and(|p| !p.is_empty()));
    let inputs = on["workflow_dispatch"]["inputs"]
        .as_mapping()
        .expect("inputs");
    assert!(inputs.contains_key("environment"), "{inputs:?}");
    let group = workflow["concurrency"]["group"]
        .as_str()
        .expect("concurrency group");
    assert!(group.contains("environment"), "{group}");

    let steps = workflow["jobs"]["deploy"]["steps"]
        .as_sequence()
        .expect("steps");
    let uses = |name: &str| {
        steps
            .iter()
            .any(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(name)))
    };
    assert!(uses("actions/checkout@") && uses("actions/cache@"));
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    assert!(runs
        .iter()
        .any(|r| r.contains("cargo install --locked galley")));
    // Secrets only through env, never pasted into a command line.
    assert!(runs.iter().all(|r| !r.contains("secrets.")), "{runs:?}");
    let deploy = steps
        .iter()
        .find(|s| s["run"].as_str().is_some_and(|r| r.contains("galley run")))
        .expect("a galley run step");
    let env = deploy["env"].as_mapping().expect("env");
    let password = env
        .get("DB_PASSWORD")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    assert!(password.contains("secrets.DB_PASSWORD"), "{env:?}");

    let command = deploy["run"].as_str().unwrap();
    let recipe = command
        .split_whitespace()
        .skip_while(|w| *w != "run")
        .nth(1)
        .expect("the recipe after `galley run`");
    let sb = Sandbox::new();
    let run = sb
        .invoke(["check", recipe, "--output", "plain"])
        .dir(repo())
        .run();
    let run = run.expect_code(0);
    assert_eq!(run.stdout.trim(), format!("ok: {recipe}"));
}

#[test]
fn a_deploy_sets_the_version_output_unless_the_recipe_does() {
    let deploy = "deploy::run(#{ app: \"web\", host: local(), sha: \"abc123\" }, || log(\"x\"));\n";
    for (extra, version) in [("", "abc123"), ("ci::output(\"version\", \"v2\");\n", "v2")] {
        let sb = Sandbox::new();
        sb.write("recipe.rhai", &format!("{deploy}{extra}"));
        let run = sb
            .invoke(["run", "recipe.rhai"])
            .env("GITHUB_ACTIONS", "true")
            .state("state")
            .env("GITHUB_OUTPUT", sb.path().join("output.txt"))
            .run();
        run.expect_code(0);
        let outputs = std::fs::read_to_string(sb.path().join("output.txt")).unwrap();
        assert_eq!(outputs, format!("result=ok\nversion={version}\n"));
    }
}

#[test]
fn an_output_name_that_would_break_github_output_is_refused() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe("ci::output(\"a=b\", \"x\");\n", &[])
        .expect_code(1);
    assert!(run.stderr.contains("galley::bad_value"), "{}", run.stderr);
    assert!(run.stderr.contains("recipe.rhai:1:"), "{}", run.stderr);
}
