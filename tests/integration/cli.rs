//! The command line: `list`, `check`, tasks, `--help` and exit codes.

use std::path::Path;

use crate::support::Sandbox;

const TASKS: &str = r#"
/// Deploy the app.
/// Then check that it answers.
fn deploy() { log("deploying"); }

/// Stop the app.
fn down() { log("stopping"); }

fn helper(x, y) { x + y }

private fn hidden() { }

fn undocumented() { }
"#;

#[test]
fn list_shows_the_documented_functions_in_source_order() {
    let sb = Sandbox::new();
    sb.write(
        "tasks.rhai",
        &format!("local().write(\"ran.txt\", \"x\");\n{TASKS}"),
    );
    let run = sb
        .run(&["list", "tasks.rhai", "--output", "plain"])
        .expect_code(0);
    // Helpers (undocumented functions), private functions and closures are not tasks.
    assert_eq!(
        run.stdout,
        "deploy  # Deploy the app. Then check that it answers.\n\
         down    # Stop the app.\n"
    );
    assert!(
        !Path::new(&sb.join("ran.txt")).exists(),
        "list ran the recipe"
    );

    sb.write(
        "order.rhai",
        "/// Last in the alphabet, first in the file.\nfn zeta() { let f = |x| x + 1; f.call(1) }\n\
         /// Takes a name.\nfn alpha(name, count) { }\n",
    );
    let run = sb
        .run(&["list", "order.rhai", "--output", "plain"])
        .expect_code(0);
    assert_eq!(
        run.stdout,
        "zeta                # Last in the alphabet, first in the file.\n\
         alpha(name, count)  # Takes a name.\n"
    );

    sb.write("none.rhai", "log(1);\nfn helper() { }\n");
    let run = sb
        .run(&["list", "none.rhai", "--output", "plain"])
        .expect_code(0);
    assert_eq!(
        run.stdout,
        "no tasks (a task is a top-level `fn` with a `///` doc comment)\n"
    );
}

#[test]
fn list_in_json_gives_one_object_per_task() {
    let sb = Sandbox::new();
    sb.write(
        "tasks.rhai",
        &format!("{TASKS}\n/// Greets.\nfn greet(name, loud) {{ }}\n"),
    );
    let run = sb
        .run(&["list", "tasks.rhai", "--output", "json"])
        .expect_code(0);
    let tasks: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let names: Vec<&str> = tasks.iter().map(|t| t["task"].as_str().unwrap()).collect();
    assert_eq!(names, ["deploy", "down", "greet"], "{}", run.stdout);
    assert_eq!(
        tasks[0]["doc"],
        "Deploy the app. Then check that it answers."
    );
    assert_eq!(tasks[0]["line"], 4);
    assert_eq!(tasks[2]["params"], serde_json::json!(["name", "loud"]));
}

#[test]
fn check_passes_a_good_recipe_without_running_it() {
    let sb = Sandbox::new();
    sb.write(
        "lib.rhai",
        "local().write(\"lib-ran.txt\", \"x\");\nfn greet(name) { `hi ${name}` }\n",
    );
    sb.write(
        "good.rhai",
        &format!(
            "import \"lib\" as lib;\nimport \"galley/in_place\" as in_place;\nlocal().write(\"ran.txt\", \"x\");\nlocal().run([\"touch\", \"touched.txt\"]);\nlog(lib::greet(\"x\"));\n{TASKS}"
        ),
    );
    let run = sb
        .run(&["check", "good.rhai", "--output", "plain"])
        .expect_code(0);
    assert!(run.stdout.contains("ok: good.rhai"), "{}", run.stdout);
    for file in ["ran.txt", "touched.txt", "lib-ran.txt"] {
        assert!(
            !Path::new(&sb.join(file)).exists(),
            "check ran code that creates {file}"
        );
    }
}

#[test]
fn check_reports_an_unknown_function_in_an_expression_without_running_anything() {
    let sb = Sandbox::new();
    sb.write(
        "bad.rhai",
        "local().write(\"ran.txt\", \"x\");\nlet answer = no_such_function(1);\nlog(lgo(\"x\"));\nlocal().rnu([\"ls\"]);\n",
    );
    let run = sb
        .run(&["check", "bad.rhai", "--output", "plain"])
        .expect_code(2);
    assert!(
        run.stderr.contains("unknown function `no_such_function`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("bad.rhai:2"),
        "points at the call: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("unknown function `lgo`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("did you mean `log`?"), "{}", run.stderr);
    assert!(
        run.stderr.contains("unknown function `rnu`"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("ok:"), "{}", run.stdout);
    assert!(
        !Path::new(&sb.join("ran.txt")).exists(),
        "check ran the recipe"
    );
}

#[test]
fn check_reports_an_unknown_function_called_as_a_statement() {
    let sb = Sandbox::new();
    sb.write(
        "top.rhai",
        "local().write(\"ran.txt\", \"x\");\nno_such_function(1);\n",
    );
    let run = sb
        .run(&["check", "top.rhai", "--output", "plain"])
        .expect_code(2);
    assert!(
        run.stderr.contains("unknown function `no_such_function`"),
        "{}",
        run.stderr
    );
    assert!(
        !Path::new(&sb.join("ran.txt")).exists(),
        "check ran the recipe"
    );

    sb.write("in_fn.rhai", "fn deploy() {\n    lgo(\"deploying\");\n}\n");
    let run = sb
        .run(&["check", "in_fn.rhai", "--output", "plain"])
        .expect_code(2);
    assert!(
        run.stderr.contains("unknown function `lgo`"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_reports_syntax_errors_and_missing_imports_with_exit_2() {
    let sb = Sandbox::new();
    sb.write("syntax.rhai", "let x = ;\n");
    let run = sb
        .run(&["check", "syntax.rhai", "--output", "plain"])
        .expect_code(2);
    assert!(run.stderr.contains("galley::syntax"), "{}", run.stderr);

    sb.write("import.rhai", "import \"no_such_lib\" as l;\nlog(1);\n");
    let run = sb
        .run(&["check", "import.rhai", "--output", "plain"])
        .expect_code(2);
    assert!(run.stderr.contains("no_such_lib"), "{}", run.stderr);

    // A good and a bad file: both are checked, the exit code says there was a problem.
    sb.write("good.rhai", "log(1);\n");
    let run = sb
        .run(&["check", "good.rhai", "syntax.rhai", "--output", "plain"])
        .expect_code(2);
    assert!(run.stdout.contains("ok: good.rhai"), "{}", run.stdout);
}

#[test]
fn running_an_unknown_task_exits_2_and_lists_the_tasks() {
    let sb = Sandbox::new();
    sb.write(
        "tasks.rhai",
        &format!("local().write(\"ran.txt\", \"x\");\n{TASKS}"),
    );
    let run = sb
        .run(&["run", "tasks.rhai", "nosuchtask", "--output", "plain"])
        .expect_code(2);
    assert!(
        run.stderr.contains("has no task `nosuchtask`"),
        "{}",
        run.stderr
    );
    for task in ["deploy", "down", "undocumented"] {
        assert!(
            run.stderr.contains(task),
            "{task} is listed: {}",
            run.stderr
        );
    }
    assert!(
        !Path::new(&sb.join("ran.txt")).exists(),
        "the top level ran before the task was checked"
    );

    let run = sb
        .run(&["run", "tasks.rhai", "deplyo", "--output", "plain"])
        .expect_code(2);
    assert!(
        run.stderr.contains("did you mean `deploy`?"),
        "{}",
        run.stderr
    );

    // A known task runs after the top level.
    let run = sb
        .run(&["run", "tasks.rhai", "down", "--output", "plain"])
        .expect_code(0);
    assert!(
        run.stdout.lines().any(|l| l == "stopping"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("deploying"));
    assert!(Path::new(&sb.join("ran.txt")).exists());
}

#[test]
fn run_help_mentions_an_example_and_the_exit_codes() {
    let sb = Sandbox::new();
    let run = sb.run(&["run", "--help"]).expect_code(0);
    assert!(run.stdout.contains("Example"), "{}", run.stdout);
    assert!(run.stdout.contains("galley run "), "{}", run.stdout);
    assert!(run.stdout.contains("Exit codes"), "{}", run.stdout);
    for code in ["0 ok", "1 the recipe failed", "2 usage", "130 interrupted"] {
        assert!(run.stdout.contains(code), "{code}: {}", run.stdout);
    }
    for flag in [
        "--set",
        "--dry-run",
        "--secrets",
        "--output",
        "--max-operations",
    ] {
        assert!(run.stdout.contains(flag), "{flag}: {}", run.stdout);
    }
}

#[test]
fn an_unknown_flag_or_command_is_a_usage_error() {
    let sb = Sandbox::new();
    sb.write("recipe.rhai", "local().write(\"ran.txt\", \"x\");\n");
    let run = sb.run(&["run", "recipe.rhai", "--bogus"]).expect_code(2);
    assert!(run.stderr.contains("--bogus"), "{}", run.stderr);
    assert!(!Path::new(&sb.join("ran.txt")).exists());
    sb.run(&["--bogus"]).expect_code(2);
    sb.run(&["frobnicate"]).expect_code(2);
    sb.run(&[]).expect_code(2);
    sb.run(&["run", "recipe.rhai", "--output", "purple"])
        .expect_code(2);
}

#[test]
fn a_missing_recipe_or_a_syntax_error_exits_2_and_a_failing_recipe_exits_1() {
    let sb = Sandbox::new();
    let run = sb.run(&["run", "missing.rhai"]).expect_code(2);
    assert!(run.stderr.contains("missing.rhai"), "{}", run.stderr);
    let run = sb.run_recipe("let x = ;", &[]).expect_code(2);
    assert!(run.stderr.contains("galley::syntax"), "{}", run.stderr);
    let run = sb.run_recipe(r#"throw "nope";"#, &[]).expect_code(1);
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
    let run = sb
        .run_recipe(r#"local().run(["false"]);"#, &[])
        .expect_code(1);
    assert!(
        run.stderr.contains("galley::command_failed"),
        "{}",
        run.stderr
    );
    let run = sb.run_recipe(r#"log("fine");"#, &[]).expect_code(0);
    assert!(
        run.stdout.lines().any(|l| l.starts_with("done in ")),
        "{}",
        run.stdout
    );
}
