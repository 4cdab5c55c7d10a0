//! Values from outside (`--set`, `env`, `secret`), masking, data formats, `step` and imports.

use std::path::Path;

use crate::support::{alive, Run, Sandbox};
use crate::support::{value_of, Reaper};

#[test]
fn set_values_reach_params_at_the_top_level_and_in_a_task() {
    let sb = Sandbox::new();
    let recipe = r#"
        log(`top=${params.name}`);
        log(`task_name=${task}`);
        log(`default=${params.missing ?? "fallback"}`);
        fn deploy() {
            log(`in_task=${params.name} ${params.expr} ${type_of(params.count)}`);
        }
        fn nested() { deploy(); }
    "#;
    let run = sb
        .run_recipe(
            recipe,
            &[
                "deploy",
                "--set",
                "name=web 1",
                "--set",
                "expr=a=b",
                "--set",
                "count=3",
            ],
        )
        .expect_code(0);
    assert_eq!(value_of(&run.stdout, "top"), "web 1");
    assert_eq!(value_of(&run.stdout, "task_name"), "deploy");
    assert_eq!(value_of(&run.stdout, "default"), "fallback");
    assert_eq!(
        value_of(&run.stdout, "in_task"),
        "web 1 a=b string",
        "values are strings, split at the first ="
    );

    // Without a task, the top level runs alone and `task` is empty.
    let run = sb
        .run_recipe(recipe, &["--set", "name=solo"])
        .expect_code(0);
    assert_eq!(value_of(&run.stdout, "top"), "solo");
    assert_eq!(value_of(&run.stdout, "task_name"), "");
    assert!(!run.stdout.contains("in_task="));
}

#[test]
fn a_set_without_an_equals_sign_is_a_usage_error() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe(r#"local().write("ran.txt", "x");"#, &["--set", "novalue"])
        .expect_code(2);
    assert!(run.stderr.contains("expected key=value"), "{}", run.stderr);
    assert!(
        !Path::new(&sb.join("ran.txt")).exists(),
        "the recipe ran despite the usage error"
    );
}

#[test]
fn env_with_and_without_a_default() {
    let sb = Sandbox::new();
    let recipe = r#"
        log(`x=${env("GALLEY_TEST_X")}`);
        log(`x_default=${env("GALLEY_TEST_X", "unused")}`);
        log(`y=${env("GALLEY_TEST_UNSET_Y", "the default")}`);
        fn f() { env("GALLEY_TEST_X") }
        log(`in_fn=${f()}`);
    "#;
    sb.write("recipe.rhai", recipe);
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .env("GALLEY_TEST_X", "from the env")
        .run()
        .expect_code(0);
    assert_eq!(value_of(&run.stdout, "x"), "from the env");
    assert_eq!(value_of(&run.stdout, "x_default"), "from the env");
    assert_eq!(value_of(&run.stdout, "y"), "the default");
    assert_eq!(value_of(&run.stdout, "in_fn"), "from the env");

    let run = sb
        .run_recipe(
            r#"let v = env("GALLEY_TEST_UNSET_Y"); log("went on");"#,
            &[],
        )
        .expect_code(1);
    assert!(
        run.stderr
            .contains("environment variable `GALLEY_TEST_UNSET_Y` is not set"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(r#"env("GALLEY_TEST_UNSET_Y", "...")"#),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("went on"));
}

#[test]
fn secrets_come_from_the_environment_and_from_a_secrets_file() {
    let sb = Sandbox::new();
    sb.write(
        ".secrets",
        "# deploy secrets\nFILE_TOKEN=from-the-file\nBOTH=file-loses\n",
    );
    // `==` compares inside the recipe, so the values never need to be printed.
    let recipe = r#"
        log(`file=${secret("FILE_TOKEN") == "from-the-file"}`);
        log(`env=${secret("ENV_TOKEN") == "from-the-env"}`);
        log(`both=${secret("BOTH") == "env-wins"}`);
    "#;
    sb.write("recipe.rhai", recipe);
    let run = sb
        .invoke([
            "run",
            "recipe.rhai",
            "--output",
            "plain",
            "--secrets",
            ".secrets",
        ])
        .env("ENV_TOKEN", "from-the-env")
        .env("BOTH", "env-wins")
        .run()
        .expect_code(0);
    assert_eq!(value_of(&run.stdout, "file"), "true");
    assert_eq!(value_of(&run.stdout, "env"), "true");
    assert_eq!(
        value_of(&run.stdout, "both"),
        "true",
        "the environment wins over the file"
    );

    let run = sb
        .run_recipe(r#"secret("NO_SUCH_SECRET");"#, &["--secrets", ".secrets"])
        .expect_code(1);
    assert!(run.stderr.contains("galley::secret"), "{}", run.stderr);
    assert!(run.stderr.contains("`NO_SUCH_SECRET`"), "{}", run.stderr);
    assert!(
        run.stderr.contains(".secrets"),
        "names the file it looked in: {}",
        run.stderr
    );

    let run = sb
        .run_recipe(r#"log("x");"#, &["--secrets", "missing.env"])
        .expect_code(2);
    assert!(run.stderr.contains("missing.env"), "{}", run.stderr);
}

#[test]
fn a_secret_is_masked_in_command_output_logs_and_reports() {
    let sb = Sandbox::new();
    let secret = "s3cr3t-T0ken";
    sb.write(".secrets", &format!("API_TOKEN={secret}\n"));
    let recipe = r#"
        let t = secret("API_TOKEN");
        local().run(["echo", `token is ${t}`]);
        local().run(["sh", "-c", "echo \"stderr has $T\" >&2"], #{ env: #{ T: t } });
        log(`log says ${t}`);
        print(`print says ${t}`);
        step(`step ${t}`, || {});
        local().run(["sh", "-c", "echo \"failing with $T\" >&2; exit 3"], #{ env: #{ T: t } });
    "#;
    let run = sb
        .run_recipe(recipe, &["--secrets", ".secrets"])
        .expect_code(1);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!all.contains(secret), "the secret leaked:\n{all}");
    assert!(!all.contains("s3cr3t"), "part of the secret leaked:\n{all}");
    assert!(
        run.stdout.contains("[local] $ run echo 'token is ***'"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("[local] token is ***"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("[local] stderr has ***"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("T=*** sh -c"), "{}", run.stdout);
    assert!(
        run.stdout.lines().any(|l| l == "log says ***"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.lines().any(|l| l == "print says ***"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("==> step ***"), "{}", run.stdout);
    assert!(
        run.stderr.contains("failing with ***"),
        "the report's stderr tail is masked: {}",
        run.stderr
    );
}

#[test]
fn a_secret_is_masked_in_dry_run_action_lines() {
    let sb = Sandbox::new();
    let secret = "hunter2-abc";
    let recipe = r#"
        let t = secret("DB_PASSWORD");
        let h = local();
        h.run(["psql", `postgres://app:${t}@db/app`, "-c", "select 1"]);
        h.run(`mysql --password=${t}`);
        h.process("db", #{ cmd: ["app", "--password", t], env: #{ PASS: t } }).start();
        h.write("config.env", `PASSWORD=${t}`);
        log(`done with ${t}`);
    "#;
    sb.write("recipe.rhai", recipe);
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain", "--dry-run"])
        .env("DB_PASSWORD", secret)
        .run()
        .expect_code(0);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!all.contains(secret), "the secret leaked:\n{all}");
    assert!(
        run.stdout
            .contains("[local] would run psql postgres://app:***@db/app"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("[local] would run sh -c 'mysql --password=***'"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("[local] would start db: "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("PASS=***"), "{}", run.stdout);
    assert!(run.stdout.contains("app --password ***"), "{}", run.stdout);
    assert!(
        run.stdout.contains("[local] would write config.env"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("done with ***"), "{}", run.stdout);
    assert!(!Path::new(&sb.join("config.env")).exists());
}

#[test]
fn a_secret_with_quotes_is_masked_in_shell_quoted_output() {
    let sb = Sandbox::new();
    let secret = r#"it's a "pass\word""#;
    let recipe = r#"
        let t = secret("TRICKY");
        local().run(["echo", t]);
        log(t);
    "#;
    sb.write("recipe.rhai", recipe);
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain", "--dry-run"])
        .env("TRICKY", secret)
        .run()
        .expect_code(0);
    assert!(
        !run.stdout.contains("it's") && !run.stdout.contains("it'\\''s"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("pass"), "{}", run.stdout);
    assert!(
        run.stdout.contains("would run echo '***'"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.lines().any(|l| l == "***"), "{}", run.stdout);
}

#[test]
fn a_secret_with_quotes_is_masked_in_json_output() {
    let sb = Sandbox::new();
    let secret = r#"it's a "pass\word""#;
    let recipe = r#"
        let t = secret("TRICKY");
        local().run(["echo", t]);
        log(t);
    "#;
    sb.write("recipe.rhai", recipe);
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "json"])
        .env("TRICKY", secret)
        .run()
        .expect_code(0);
    for line in run.stdout.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    assert!(run.stdout.contains(r#""line":"***""#), "{}", run.stdout);
    assert!(run.stdout.contains(r#""message":"***""#), "{}", run.stdout);
}

#[test]
fn a_secret_with_a_single_quote_is_masked_in_json_action_lines() {
    let sb = Sandbox::new();
    let recipe = r#"let t = secret("TRICKY"); local().run(["echo", t]);"#;
    for secret in ["it's-secret", r#"it's a "pass\word""#] {
        sb.write("recipe.rhai", recipe);
        let run = sb
            .invoke(["run", "recipe.rhai", "--output", "json", "--dry-run"])
            .env("TRICKY", secret)
            .run()
            .expect_code(0);
        assert!(
            !run.stdout.contains("secret") && !run.stdout.contains("pass"),
            "the secret leaked:\n{}",
            run.stdout
        );
        assert!(
            run.stdout.contains(r#""action":"run echo '***'""#),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn yaml_and_json_round_trips() {
    let sb = Sandbox::new();
    let recipe = r#"
        let doc = yaml::parse("name: web\nreplicas: 3\nratio: 0.5\nenabled: true\nports: [80, 443]\nenv:\n  MODE: prod\n  EMPTY: null\n");
        log(`yaml_fields=${doc.name} ${doc.replicas + 1} ${doc.ratio} ${doc.enabled} ${doc.ports[1]} ${doc.env.MODE} ${type_of(doc.env.EMPTY)}`);
        let again = yaml::parse(yaml::to_string(doc));
        log(`yaml_round=${json::to_string(again) == json::to_string(doc)}`);
        doc.replicas = 5;
        log(`yaml_changed=${yaml::parse(yaml::to_string(doc)).replicas}`);

        let text = `{"a":[1,2,{"b":null}],"s":"quote \" and \\ backslash","t":true,"x":1.5}`;
        let value = json::parse(text);
        log(`json_fields=${value.a[2].b == ()} ${value.s} ${value.x}`);
        log(`json_same=${json::to_string(value) == text}`);
        log(`json_out=${json::to_string(#{ list: [1, "two"], n: 7 })}`);
        log(`pretty_lines=${json::to_pretty(#{ a: 1, b: 2 }).split("\n").len()}`);
    "#;
    let run = sb.run_recipe(recipe, &[]).expect_code(0);
    assert_eq!(
        value_of(&run.stdout, "yaml_fields"),
        "web 4 0.5 true 443 prod ()"
    );
    assert_eq!(value_of(&run.stdout, "yaml_round"), "true");
    assert_eq!(value_of(&run.stdout, "yaml_changed"), "5");
    assert_eq!(
        value_of(&run.stdout, "json_fields"),
        r#"true quote " and \ backslash 1.5"#
    );
    assert_eq!(value_of(&run.stdout, "json_same"), "true");
    assert_eq!(
        value_of(&run.stdout, "json_out"),
        r#"{"list":[1,"two"],"n":7}"#
    );
    assert_eq!(value_of(&run.stdout, "pretty_lines"), "4");
}

#[test]
fn invalid_yaml_or_json_is_reported() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe(r#"json::parse("{not json");"#, &[])
        .expect_code(1);
    assert!(run.stderr.contains("invalid JSON"), "{}", run.stderr);
    let run = sb
        .run_recipe("yaml::parse(\"a: [1, 2\");", &[])
        .expect_code(1);
    assert!(run.stderr.contains("invalid YAML"), "{}", run.stderr);
}

#[test]
fn step_prints_its_start_and_end_and_returns_the_body_value() {
    let sb = Sandbox::new();
    let recipe = r#"
        let v = step("build", || { log("inside build"); 41 + 1 });
        log(`value=${v}`);
        step("broken", || { throw "it broke"; });
        log("after broken");
    "#;
    let run = sb.run_recipe(recipe, &[]).expect_code(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == "==> build")
        .expect(&run.stdout);
    let inside = lines
        .iter()
        .position(|l| *l == "inside build")
        .expect(&run.stdout);
    let end = lines
        .iter()
        .position(|l| l.starts_with("<== build: ok in "))
        .expect(&run.stdout);
    assert!(start < inside && inside < end, "{}", run.stdout);
    assert_eq!(value_of(&run.stdout, "value"), "42");
    assert!(run.stdout.contains("==> broken"), "{}", run.stdout);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("<== broken: failed in ")),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("after broken"));
    assert!(run.stderr.contains("it broke"), "{}", run.stderr);
}

#[test]
fn import_of_the_stdlib_in_place_module() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let dir = sb.join("svc");
    std::fs::create_dir_all(&dir).unwrap();
    let recipe = format!(
        r#"
        import "galley/in_place" as in_place;
        let h = local();
        let dir = {dir:?};
        let app = h.process("app", #{{ cmd: ["sleep", "300"], dir: dir }});
        let pid = in_place::deploy(app, #{{ update: || h.write(dir + "/updated.txt", "yes"), stop_timeout: "5s" }});
        log(`pid=${{pid}}`);
        "#
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    let pid: i64 = value_of(&run.stdout, "pid").parse().unwrap();
    reaper.track(pid);
    assert!(run.stdout.contains("==> update"), "{}", run.stdout);
    assert!(run.stdout.contains("==> restart"), "{}", run.stdout);
    assert!(alive(pid));
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/updated.txt")).unwrap(),
        "yes"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/app.pid"))
            .unwrap()
            .trim(),
        pid.to_string()
    );

    let run = sb
        .run_recipe(
            r#"import "galley/in_place" as in_place; in_place::deploy(local().process("x", #{ cmd: "true" }), #{ bogus: 1 });"#,
            &[],
        )
        .expect_code(1);
    assert!(
        run.stderr.contains("unknown option `bogus`"),
        "{}",
        run.stderr
    );
}

#[test]
fn import_relative_to_the_recipe_not_the_working_directory() {
    let sb = Sandbox::new();
    sb.write("lib.rhai", r"fn greet(name) { `wrong lib for ${name}` }");
    sb.write(
        "deploy/lib.rhai",
        r"fn greet(name) { `hello ${name} from the recipe's folder` }",
    );
    sb.write("deploy/helpers/more.rhai", "fn twice(x) { x * 2 }");
    sb.write(
        "deploy/recipe.rhai",
        r#"
        import "lib" as lib;
        import "helpers/more" as more;
        import "lib.rhai" as same;
        log(`greet=${lib::greet("web")}`);
        log(`twice=${more::twice(21)}`);
        log(`same=${same::greet("x") == lib::greet("x")}`);
        "#,
    );
    let run = sb
        .run(&["run", "deploy/recipe.rhai", "--output", "plain"])
        .expect_code(0);
    assert_eq!(
        value_of(&run.stdout, "greet"),
        "hello web from the recipe's folder"
    );
    assert_eq!(value_of(&run.stdout, "twice"), "42");
    assert_eq!(value_of(&run.stdout, "same"), "true");

    let run = sb
        .run_recipe(r#"import "no_such_module" as m;"#, &[])
        .expect_code(1);
    assert!(run.stderr.contains("no_such_module"), "{}", run.stderr);
}

#[test]
fn import_from_a_folder_in_galley_path() {
    let sb = Sandbox::new();
    sb.write("first/other.rhai", "fn x() { 1 }");
    sb.write(
        "second/shared.rhai",
        r"fn greet(name) { `shared hello ${name}` }",
    );
    sb.write(
        "recipe.rhai",
        r#"import "shared" as common; log(`greet=${common::greet("db")}`);"#,
    );
    let path = format!("{}:{}", sb.join("first"), sb.join("second"));
    let out = sb
        .galley()
        .args(["run", "recipe.rhai", "--output", "plain"])
        .env("GALLEY_PATH", &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(value_of(&stdout, "greet"), "shared hello db");

    // Without GALLEY_PATH the module is not found.
    sb.run(&["run", "recipe.rhai", "--output", "plain"])
        .expect_code(1);
}

#[test]
fn every_form_of_every_secret_is_masked_in_every_output_and_the_journal() {
    let sb = Sandbox::new();
    let state = sb.join("state");
    sb.write(
        ".secrets",
        "UNREAD=file-unread-7731\nURL_TOKEN=\"sp ace/tok&x=1\"\n",
    );
    let pem = "-----BEGIN GALLEY KEY-----\nline-one-AAAA1111\nline-two-BBBB2222\n-----END GALLEY KEY-----\n";
    let recipe = r#"
print("early file-unread-7731");
let pem = secret("PEM_KEY");
let trail = secret("TRAIL");
let url_token = secret("URL_TOKEN");
local().run(["printf", "%s", pem]);
local().run(["sh", "-c", "printf '%s' \"$0\" >&2", pem]);
let trimmed = trail;
trimmed.trim();
log(trimmed);
log(#{ key: pem }.to_json());
deploy::run(#{ app: "masked", host: local(), strategy: "test", sha: trimmed, branch: url_token }, || {
    local().run(["sh", "-c", "printf '%s' \"$0\" >&2; exit 3", pem], #{ check: false });
    health::http("http://127.0.0.1:1/health?t=" + url_token, #{ retries: 1, timeout: "200ms" });
});
"#;
    let needles = [
        "file-unread-7731",
        "line-one-AAAA1111",
        "line-two-BBBB2222",
        "trail-secret-99",
        "sp ace/tok",
        "sp%20ace",
        "sp+ace",
        "BEGIN GALLEY KEY",
    ];
    for mode in ["plain", "json"] {
        sb.write("recipe.rhai", recipe);
        let run = sb
            .invoke([
                "run",
                "recipe.rhai",
                "--output",
                mode,
                "--secrets",
                ".secrets",
            ])
            .env("PEM_KEY", pem)
            .env("TRAIL", "trail-secret-99\n")
            .env("GALLEY_STATE_DIR", &state)
            .run();
        assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("***"), "{}", run.stdout);
        for needle in needles {
            assert!(
                !run.stdout.contains(needle) && !run.stderr.contains(needle),
                "{mode}: {needle} printed:\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
    }
    let journal = std::fs::read_to_string(Path::new(&state).join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"app\":\"masked\""), "{journal}");
    for needle in needles {
        assert!(
            !journal.contains(needle),
            "{needle} in the journal: {journal}"
        );
    }
}

#[test]
fn the_journal_names_the_user_and_the_ci_actor() {
    let sb = Sandbox::new();
    let state = sb.join("state");
    sb.write(
        "recipe.rhai",
        r#"deploy::run(#{ app: "who", host: local() }, || 1);"#,
    );
    for actor in [None, Some("alice")] {
        let mut cmd = sb.galley();
        cmd.args(["run", "recipe.rhai"])
            .env("GALLEY_STATE_DIR", &state)
            .env_remove("GALLEY_ACTOR")
            .env_remove("GITLAB_USER_LOGIN")
            .env_remove("GITHUB_ACTOR")
            .env_remove("USER");
        if let Some(actor) = actor {
            cmd.env("GITHUB_ACTOR", actor);
        }
        Run::from(cmd.output().unwrap()).expect_code(0);
    }
    let journal = std::fs::read_to_string(Path::new(&state).join("journal.jsonl")).unwrap();
    let who: Vec<String> = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["who"].to_string())
        .collect();
    let user = crate::support::sh(sb.path(), &["id", "-un"]);
    let user = user.trim();
    assert!(who[0].starts_with(&format!("\"{user}@")), "{who:?}");
    assert!(
        who[1].starts_with(&format!("\"alice (GitHub Actions) as {user}@")),
        "{who:?}"
    );
}
