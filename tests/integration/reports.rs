//! Pins the exact plain-text rendering of every kind of error report, and the exit codes.
//!
//! Each test runs a short recipe and compares the whole of stderr (the report is all that galley
//! prints there) with the expected text, so any change in wording or layout fails a test. Reports
//! are wrapped at 100 columns, so recipes avoid absolute paths, whose length would move the wraps.

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::support::{self, Sandbox};

/// Fails with both texts printed in full unless `actual` is exactly `expected`.
#[track_caller]
fn assert_report(actual: &str, expected: &str) {
    assert_eq!(
        actual, expected,
        "the report changed.\n--- expected ---\n{expected}\n--- actual ---\n{actual}"
    );
}

/// Replaces the sandbox's absolute path with `<TMP>`.
fn normalize(sb: &Sandbox, text: &str) -> String {
    text.replace(&sb.path().to_string_lossy().into_owned(), "<TMP>")
}

/// A listener on 127.0.0.1 whose port has five digits, so that URLs in reports (which are wrapped
/// at a fixed width) always have the same length.
fn five_digit_listener() -> TcpListener {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        if listener.local_addr().unwrap().port() >= 10_000 {
            return listener;
        }
    }
    panic!("no five-digit port found");
}

/// A free port with five digits (see `five_digit_listener`).
fn five_digit_free_port() -> u16 {
    for _ in 0..100 {
        let port = support::free_port();
        if port >= 10_000 {
            return port;
        }
    }
    panic!("no five-digit free port found");
}

// ---------------------------------------------------------------------------------------------
// Exit codes

#[test]
fn exit_code_is_0_when_the_recipe_succeeds() {
    let sb = Sandbox::new();
    let run = sb.run_recipe(r#"log("all good");"#, &[]).expect_code(0);
    assert_report(&run.stderr, "");
}

#[test]
fn exit_code_is_1_when_the_recipe_fails_and_2_when_it_does_not_parse() {
    let sb = Sandbox::new();
    sb.run_recipe(r#"throw "stop";"#, &[]).expect_code(1);
    sb.run_recipe("let x = ;", &[]).expect_code(2);
    // `check` finds the same syntax error without running anything.
    sb.run(&["check", "recipe.rhai", "--output", "plain"])
        .expect_code(2);
}

// ---------------------------------------------------------------------------------------------
// Recipe errors: syntax, unknown functions, wrong arguments, options

#[test]
fn syntax_error() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe("let x = 1;\nlet y = (2 + ;\nlog(\"hi\");\n", &[])
        .expect_code(2);
    assert_report(
        &run.stderr,
        r#"galley::syntax

  x syntax error: Unexpected ';'
   ,-[recipe.rhai:2:14]
 1 | let x = 1;
 2 | let y = (2 + ;
   :              |
   :              `-- here
 3 | log("hi");
   `----
  help: fix the recipe at the marked spot; `galley check FILE` checks without running

"#,
    );
    // Nothing ran, so nothing was printed on stdout (not even "failed after").
    assert_report(&run.stdout, "");
}

#[test]
fn unknown_function_suggests_the_nearest_name() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe("let x = 1;\nlocal().rnu(\"x\");\n", &[])
        .expect_code(1);
    assert_report(
        &run.stderr,
        r#"galley::unknown_function

  x unknown function `rnu` (Host, string)
   ,-[recipe.rhai:2:9]
 1 | let x = 1;
 2 | local().rnu("x");
   :         ^|^
   :          `-- here
   `----
  help: did you mean `run`? `galley docs` lists every function

"#,
    );
}

#[test]
fn wrong_argument_type_lists_the_overloads() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe("local().write(\"f\", 42);\n", &[])
        .expect_code(1);
    assert_report(
        &run.stderr,
        r#"galley::wrong_arguments

  x `write` cannot be called with these arguments (Host, string, int)
   ,-[recipe.rhai:1:9]
 1 | local().write("f", 42);
   :         ^^|^^
   :           `-- here
   `----
  help: it takes: write(Host, string, string); write(Host, string, string, map)

"#,
    );
}

#[test]
fn unknown_option_names_the_key_and_lists_the_valid_ones() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe("local().run(\"true\", #{ tiemout: \"1s\" });\n", &[])
        .expect_code(1);
    assert_report(
        &run.stderr,
        r#"galley::unknown_option

  x unknown option `tiemout` for run
   ,-[recipe.rhai:1:9]
 1 | local().run("true", #{ tiemout: "1s" });
   :         ^|^
   :          `-- here
   `----
  help: did you mean `timeout`? valid options: check, dir, env, quiet, stdin, sudo, timeout

"#,
    );
    // The command did not run.
    assert!(!run.stdout.contains("$ run"), "{}", run.stdout);
}

#[test]
fn throw_in_an_imported_module_shows_the_throw_and_every_call_site() {
    let sb = Sandbox::new();
    sb.write(
        "lib.rhai",
        "// helpers\nfn check(v) {\n    if v > 2 {\n        throw `too big: ${v}`;\n    }\n    v\n}\n",
    );
    let run = sb
        .run_recipe(
            "import \"lib\" as lib;\n\nfn deploy(n) {\n    lib::check(n)\n}\n\ndeploy(5);\n",
            &[],
        )
        .expect_code(1);
    // The throw in lib.rhai, then the call sites from the innermost out: `lib::check(n)` in
    // `deploy`, then the top-level call of `deploy`.
    assert_report(
        &run.stderr,
        r"galley::throw

  x the recipe threw: too big: 5
   ,-[lib.rhai:4:9]
 3 |     if v > 2 {
 4 |         throw `too big: ${v}`;
   :         ^^|^^
   :           `-- here
 5 |     }
   `----
  help: a `throw` in the recipe stopped the run; catch it with try { } catch (e) { } to handle it

  > called from here
   ,-[recipe.rhai:4:10]
 3 | fn deploy(n) {
 4 |     lib::check(n)
   :          ^^|^^
   :            `-- in this call to `check`
 5 | }
   `----

  > called from here
   ,-[recipe.rhai:7:1]
 6 | 
 7 | deploy(5);
   : ^^^|^^
   :    `-- in this call to `deploy`
   `----

",
    );
}

// ---------------------------------------------------------------------------------------------
// Commands

#[test]
fn failed_command_shows_argv_host_exit_code_and_stderr_tail() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe(
            r#"local().run(["sh", "-c", "echo one >&2; echo two >&2; exit 3"]);"#,
            &[],
        )
        .expect_code(1);
    assert_report(
        &run.stderr,
        r#"galley::command_failed

  x command failed on local with exit code 3: sh -c 'echo one >&2; echo two >&2; exit 3'
   ,-[recipe.rhai:1:9]
 1 | local().run(["sh", "-c", "echo one >&2; echo two >&2; exit 3"]);
   :         ^|^
   :          `-- here
   `----
  help: the command's own output is above; pass #{ check: false } to handle the exit code in the
        recipe

  stderr (last 2 lines):
    | one
    | two

"#,
    );
    // The lines were streamed on stdout as they came.
    assert!(
        run.stdout.contains("[local] one\n[local] two\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn failed_command_stderr_tail_is_capped_at_20_lines() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe(r#"local().run(["sh", "-c", "seq 1 30 >&2; exit 1"]);"#, &[])
        .expect_code(1);
    let tail: String = (11..=30).map(|n| format!("    | {n}\n")).collect();
    let expected = format!(
        r#"galley::command_failed

  x command failed on local with exit code 1: sh -c 'seq 1 30 >&2; exit 1'
   ,-[recipe.rhai:1:9]
 1 | local().run(["sh", "-c", "seq 1 30 >&2; exit 1"]);
   :         ^|^
   :          `-- here
   `----
  help: the command's own output is above; pass #{{ check: false }} to handle the exit code in the
        recipe

  stderr (last 20 lines):
{tail}
"#
    );
    assert_report(&run.stderr, &expected);
    // All 30 lines were still streamed while the command ran.
    assert!(run.stdout.contains("[local] 1\n"), "{}", run.stdout);
    assert!(run.stdout.contains("[local] 30\n"), "{}", run.stdout);
}

#[test]
fn command_timeout() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe(
            r#"local().run(["sleep", "30"], #{ timeout: "200ms" });"#,
            &[],
        )
        .expect_code(1);
    assert_report(
        &run.stderr,
        r#"galley::timeout

  x command timed out after 200ms on local: sleep 30
   ,-[recipe.rhai:1:9]
 1 | local().run(["sleep", "30"], #{ timeout: "200ms" });
   :         ^|^
   :          `-- here
   `----
  help: the command's process group was killed; raise #{ timeout: "..." } if it needs longer

"#,
    );
}

// ---------------------------------------------------------------------------------------------
// Health checks

#[test]
fn health_check_against_a_closed_port() {
    let sb = Sandbox::new();
    let port = five_digit_free_port();
    let run = sb
        .run_recipe(
            &format!(
                r#"health::http("http://127.0.0.1:{port}/health", #{{ retries: 2, interval: "10ms" }});"#
            ),
            &[],
        )
        .expect_code(1);
    // Only the operating system's own words for the refused connection are normalized.
    let stderr = run
        .stderr
        .replace(&format!("127.0.0.1:{port}"), "127.0.0.1:PORT")
        .replace("Connection refused (os error 111)", "<connection refused>");
    assert_report(
        &stderr,
        r#"galley::health

  x health check of http://127.0.0.1:PORT/health did not pass after 2 attempts; last: error
  | sending request for url (http://127.0.0.1:PORT/health): client error (Connect): tcp connect
  | error: <connection refused>
   ,-[recipe.rhai:1:9]
 1 | health::http("http://127.0.0.1:PORT/health", #{ retries: 2, interval: "10ms" });
   :         ^^|^
   :           `-- here
   `----
  help: look at the app's logs; raise `retries` or `interval` if it needs longer to start

"#,
    );
}

/// Answers every request on `listener` with `HTTP/1.0 500` and `body`, from a background thread.
fn serve_500(listener: TcpListener, body: &'static str) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            // Read the request head, then answer and close.
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.flush();
        }
    });
}

#[test]
fn health_check_against_a_server_answering_500_shows_the_status_and_body() {
    let sb = Sandbox::new();
    let listener = five_digit_listener();
    let port = listener.local_addr().unwrap().port();
    serve_500(listener, "database is down");
    let run = sb
        .run_recipe(
            &format!(
                r#"health::http("http://127.0.0.1:{port}/health", #{{ retries: 2, interval: "10ms" }});"#
            ),
            &[],
        )
        .expect_code(1);
    let stderr = run
        .stderr
        .replace(&format!("127.0.0.1:{port}"), "127.0.0.1:PORT");
    assert_report(
        &stderr,
        r#"galley::health

  x health check of http://127.0.0.1:PORT/health did not pass after 2 attempts; last: HTTP 500
  | (expected 200), body: "database is down"
   ,-[recipe.rhai:1:9]
 1 | health::http("http://127.0.0.1:PORT/health", #{ retries: 2, interval: "10ms" });
   :         ^^|^
   :           `-- here
   `----
  help: look at the app's logs; raise `retries` or `interval` if it needs longer to start

"#,
    );
}

// ---------------------------------------------------------------------------------------------
// Processes, git, secrets, limits

#[test]
fn bad_pidfile() {
    let sb = Sandbox::new();
    sb.write("app.pid", "garbage\n");
    // `dir: "."` is the sandbox (galley runs there); a relative path keeps the wrapping of the
    // message independent of the length of the temp dir's path.
    let run = sb
        .run_recipe(
            r#"local().process("app", #{ cmd: ["sleep", "5"], dir: "." }).stop();"#,
            &[],
        )
        .expect_code(1);
    assert_report(
        &run.stderr,
        r#"galley::pidfile

  x bad pidfile ./app.pid on local: expected a process id, found "garbage"
   ,-[recipe.rhai:1:60]
 1 | local().process("app", #{ cmd: ["sleep", "5"], dir: "." }).stop();
   :                                                            ^^|^
   :                                                              `-- here
   `----
  help: if no such process is running, remove ./app.pid and run again

"#,
    );
}

#[test]
fn bad_pidfile_in_an_absolute_dir_names_the_full_path() {
    let sb = Sandbox::new();
    sb.write("app.pid", "garbage\n");
    let dir = sb.path().to_string_lossy().into_owned();
    let run = sb
        .run_recipe(
            &format!(r#"local().process("app", #{{ cmd: ["sleep", "5"], dir: "{dir}" }}).stop();"#),
            &[],
        )
        .expect_code(1);
    // The message may wrap differently with a long temp dir; pin its parts, not its layout.
    let stderr = normalize(&sb, &run.stderr);
    assert!(stderr.starts_with("galley::pidfile\n"), "{stderr}");
    let flat = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    for part in [
        "x bad pidfile <TMP>/app.pid on local: expected a process id, found \"garbage\"",
        "help: if no such process is running, remove <TMP>/app.pid and run again",
    ] {
        assert!(flat.contains(part), "missing {part:?} in:\n{stderr}");
    }
}

#[test]
fn git_in_a_missing_directory() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe(r#"local().git("nope").sha();"#, &[])
        .expect_code(1);
    assert_report(
        &run.stderr,
        r#"galley::git

  x git in nope on local: reading HEAD failed
   ,-[recipe.rhai:1:21]
 1 | local().git("nope").sha();
   :                     ^|^
   :                      `-- here
   `----
  help: clone the repository first: h.git(dir).clone(url)

  git said (last line):
    | fatal: cannot change to 'nope': No such file or directory

"#,
    );
}

#[test]
fn git_in_a_directory_that_is_not_a_repository() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path().join("site")).unwrap();
    // Stop git from finding a repository above the sandbox (if the temp dir is inside one).
    let ceiling = sb.path().parent().unwrap().to_string_lossy().into_owned();
    sb.write("recipe.rhai", r#"local().git("site").sha();"#);
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .env("GIT_CEILING_DIRECTORIES", &ceiling)
        .env_remove("GIT_DIR")
        .run()
        .expect_code(1);
    assert_report(
        &run.stderr,
        r#"galley::git

  x git in site on local: reading HEAD failed
   ,-[recipe.rhai:1:21]
 1 | local().git("site").sha();
   :                     ^|^
   :                      `-- here
   `----
  help: clone the repository first: h.git(dir).clone(url)

  git said (last line):
    | fatal: not a git repository (or any of the parent directories): .git

"#,
    );
}

#[test]
fn require_branch_names_the_branch_and_the_patterns() {
    let sb = Sandbox::new();
    support::sh(sb.path(), &["git", "init", "-q", "-b", "feature/x", "app"]);
    let run = sb
        .run_recipe(
            r#"local().git("app").require_branch(["main", "release/*"]);"#,
            &[],
        )
        .expect_code(1);
    assert_report(
        &run.stderr,
        r#"galley::git

  x git in app on local: branch `feature/x` is not one of the allowed branches: main, release/*
   ,-[recipe.rhai:1:20]
 1 | local().git("app").require_branch(["main", "release/*"]);
   :                    ^^^^^^^|^^^^^^
   :                           `-- here
   `----
  help: switch to an allowed branch, or add this one to require_branch([...]) in the recipe

"#,
    );
}

#[test]
fn missing_secret() {
    let sb = Sandbox::new();
    sb.write("recipe.rhai", r#"let token = secret("DEPLOY_TOKEN");"#);
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .env_remove("DEPLOY_TOKEN")
        .run()
        .expect_code(1);
    assert_report(
        &run.stderr,
        r#"galley::secret

  x secret `DEPLOY_TOKEN` is not in the environment, and no --secrets FILE was given
   ,-[recipe.rhai:1:13]
 1 | let token = secret("DEPLOY_TOKEN");
   :             ^^^|^^
   :                `-- here
   `----
  help: export DEPLOY_TOKEN=... before running, or put `DEPLOY_TOKEN=...` in a file passed with
        --secrets FILE

"#,
    );
}

#[test]
fn operations_limit() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe("loop {}\n", &["--max-operations", "100000"])
        .expect_code(1);
    assert_report(
        &run.stderr,
        r"galley::operations_limit

  x the recipe ran more than 100000 operations and was stopped (an endless loop?)
   ,-[recipe.rhai:1:6]
 1 | loop {}
   :      |
   :      `-- here
   `----
  help: look for a loop that never ends; raise the limit with --max-operations N if the work is
        real

",
    );
}

// ---------------------------------------------------------------------------------------------
// JSON output and masking

#[test]
fn json_report_is_one_object_with_code_message_and_location() {
    let sb = Sandbox::new();
    sb.write("recipe.rhai", "let x = 1;\nlocal().rnu(\"x\");\n");
    let run = sb
        .run(&["run", "recipe.rhai", "--output", "json"])
        .expect_code(1);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr:\n{}",
        run.stderr
    );
    let report: serde_json::Value =
        serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stderr));
    assert_eq!(
        report,
        serde_json::json!({
            "v": 1,
            "event": "error",
            "code": "galley::unknown_function",
            "message": "unknown function `rnu` (Host, string)",
            "help": "did you mean `run`? `galley docs` lists every function",
            "details": [],
            "file": "recipe.rhai",
            "line": 2,
            "column": 9,
            "called_from": [],
        }),
        "{}",
        run.stderr
    );
    // Stdout is JSON lines too: the run's start, then the closing event.
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert_eq!(events.len(), 2, "{}", run.stdout);
    assert_eq!(events[0]["event"], "run_start", "{}", run.stdout);
    assert_eq!(events[1]["event"], "finished", "{}", run.stdout);
    assert_eq!(events[1]["ok"], false, "{}", run.stdout);
}

#[test]
fn json_report_of_a_module_throw_lists_the_call_sites() {
    let sb = Sandbox::new();
    sb.write("lib.rhai", "fn fail() {\n    throw \"no\";\n}\n");
    sb.write("recipe.rhai", "import \"lib\" as lib;\nlib::fail();\n");
    let run = sb
        .run(&["run", "recipe.rhai", "--output", "json"])
        .expect_code(1);
    let report: serde_json::Value = serde_json::from_str(run.stderr.trim_end())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", run.stderr));
    assert_eq!(report["code"], "galley::throw", "{}", run.stderr);
    assert_eq!(report["message"], "the recipe threw: no", "{}", run.stderr);
    assert_eq!(
        (&report["file"], &report["line"], &report["column"]),
        (
            &serde_json::json!("lib.rhai"),
            &serde_json::json!(2),
            &serde_json::json!(5)
        ),
        "{}",
        run.stderr
    );
    assert_eq!(
        report["called_from"],
        serde_json::json!([{ "file": "recipe.rhai", "line": 2, "column": 6 }]),
        "{}",
        run.stderr
    );
}

#[test]
fn secrets_are_masked_in_output_and_reports() {
    let sb = Sandbox::new();
    sb.write(
        "recipe.rhai",
        "let t = secret(\"TOKEN\");\nlocal().run([\"sh\", \"-c\", `echo ${t} >&2; exit 1`]);\n",
    );
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .env("TOKEN", "s3cr3t-value")
        .run()
        .expect_code(1);
    assert!(!run.stdout.contains("s3cr3t-value"), "{}", run.stdout);
    assert!(!run.stderr.contains("s3cr3t-value"), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("[local] $ run sh -c 'echo *** >&2; exit 1'\n[local] ***\n"),
        "{}",
        run.stdout
    );
    assert_report(
        &run.stderr,
        r#"galley::command_failed

  x command failed on local with exit code 1: sh -c 'echo *** >&2; exit 1'
   ,-[recipe.rhai:2:9]
 1 | let t = secret("TOKEN");
 2 | local().run(["sh", "-c", `echo ${t} >&2; exit 1`]);
   :         ^|^
   :          `-- here
   `----
  help: the command's own output is above; pass #{ check: false } to handle the exit code in the
        recipe

  stderr (last line):
    | ***

"#,
    );
}

#[test]
fn secrets_are_masked_in_json_reports() {
    let sb = Sandbox::new();
    sb.write(
        "recipe.rhai",
        "let t = secret(\"TOKEN\");\nlocal().run([\"sh\", \"-c\", `echo ${t} >&2; exit 1`]);\n",
    );
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "json"])
        .env("TOKEN", "s3cr3t-value")
        .run()
        .expect_code(1);
    assert!(!run.stdout.contains("s3cr3t-value"), "{}", run.stdout);
    assert!(!run.stderr.contains("s3cr3t-value"), "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(run.stderr.trim_end()).unwrap();
    assert_eq!(
        report["message"], "command failed on local with exit code 1: sh -c 'echo *** >&2; exit 1'",
        "{}",
        run.stderr
    );
    // The stderr tail is in the report too (wherever it goes), masked.
    for detail in ["stderr (last line):", "  | ***"] {
        assert!(
            run.stderr.contains(detail),
            "missing {detail:?} in: {}",
            run.stderr
        );
    }
}

// Secrets in forms that a plain search for the value would miss: split by wrapping, shell-quoted,
// JSON-escaped.

/// Runs the masking recipe with `TOKEN=secret` and asserts the value appears nowhere.
fn assert_secret_never_printed(secret: &str, echo_prefix: &str, mode: &str) {
    let sb = Sandbox::new();
    sb.write(
        "recipe.rhai",
        &format!(
            "let t = secret(\"TOKEN\");\nlocal().run([\"sh\", \"-c\", `echo {echo_prefix}${{t}} >&2; exit 1`]);\n"
        ),
    );
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", mode])
        .env("TOKEN", secret)
        .run();
    assert_ne!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // Also look for the value with the line wraps, shell quoting and JSON escapes it may get.
    let flat = |text: &str| {
        text.replace("\n  | ", " ")
            .replace("'\\''", "'")
            .replace("\\\"", "\"")
            .replace("\\\\", "\\")
    };
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !flat(text).contains(secret),
            "the secret leaked on {name}:\n{text}"
        );
    }
}

#[test]
fn secrets_split_by_line_wrapping_are_still_masked() {
    assert_secret_never_printed(
        "correct horse battery staple",
        "aaaaaaaaaaaaaaaaaaaa ",
        "plain",
    );
}

#[test]
fn secrets_with_a_single_quote_are_still_masked() {
    assert_secret_never_printed("it's-s3cr3t", "", "plain");
}

#[test]
fn secrets_with_json_escapes_are_still_masked() {
    assert_secret_never_printed("ab\"cd\\ef", "", "json");
}
