//! Hostile values against the real components: each is refused with a report before it reaches
//! the Docker Engine, nginx, git, ssh or the file system, and nothing outside the intended object
//! changes. Also the inputs that used to crash Galley, and printed values that tried to forge lines.

use std::path::Path;
use std::time::Duration;

use crate::support::docker::{self, base_image, cli, unique, Cleanup};
use crate::support::lit;
use crate::support::nginx::Nginx;
use crate::support::sshd::{CloseMasters, Fleet};
use crate::support::{flat, free_port, http_get, value_of, GitOrigin, Run, Sandbox};

/// Asserts that the run failed with `exit` and the report `code`; returns stderr, unwrapped.
#[track_caller]
fn refused(run: Run, exit: i32, code: &str) -> String {
    let run = run.expect_code(exit);
    assert!(
        run.stderr.contains(code),
        "expected the report {code}:\n--- stdout ---\n{}\n--- stderr ---\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        !run.stderr.contains("galley::bug"),
        "a panic reached the hook:\n{}",
        run.stderr
    );
    flat(&run.stderr)
}

fn docker_missing() -> bool {
    if docker::available() {
        return false;
    }
    eprintln!("note: the Docker daemon does not answer; skipping");
    true
}

// ---------------------------------------------------------------------------------------------
// Docker: names never reach another Engine object

#[test]
fn docker_names_that_climb_the_api_path_are_refused_and_other_objects_survive() {
    if docker_missing() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let network = cleanup.network(&unique("net"));
    cli(&["network", "create", &network]);
    let other = cleanup.container(&unique("other"));
    cli(&["run", "-d", "--name", &other, base_image(), "sleep", "600"]);
    let image = cleanup.image(&format!("{}:kept", unique("img")));
    cli(&["tag", base_image(), &image]);

    let attacks = [
        format!(
            "d.rm({}, #{{ force: true }});",
            lit(&format!("x/../../networks/{network}"))
        ),
        format!("d.stop({});", lit(&format!("x/../../containers/{other}"))),
        format!(
            "d.rm({}, #{{ force: true }});",
            lit(&format!("x/../../images/{image}"))
        ),
        format!("d.tag({}, \"x/../y:1\");", lit(&image)),
        format!("d.network({});", lit("a/../../containers/x")),
        format!("d.run(#{{ image: {}, name: \"a/../b\" }});", lit(&image)),
    ];
    for attack in attacks {
        let recipe = format!("let d = local().docker();\n{attack}\n");
        let report = refused(sb.run_recipe(&recipe, &[]), 1, "galley::invalid_value");
        assert!(report.contains("Docker's"), "{attack}: {report}");
    }
    assert!(docker::docker(&["network", "inspect", &network])
        .status
        .success());
    assert_eq!(
        cli(&["inspect", "--format", "{{.State.Status}}", &other]),
        "running"
    );
    assert!(docker::docker(&["image", "inspect", &image])
        .status
        .success());
}

// ---------------------------------------------------------------------------------------------
// nginx: no value writes a config block

#[test]
fn nginx_values_with_config_syntax_are_refused_and_no_server_block_appears() {
    let sb = Sandbox::new();
    let backend = free_port();
    let nginx = Nginx::start(sb.path(), "app", backend);
    let file = nginx.upstream_file("app");
    let before = std::fs::read_to_string(&file).unwrap_or_default();
    let injected = free_port();
    let address = format!(
        "127.0.0.1:1; }} server {{ listen 127.0.0.1:{injected}; return 200 x; }} upstream y {{ server 127.0.0.1:2"
    );
    let attacks = [
        format!("n.upstream(\"app\", [{}]);", lit(&address)),
        format!(
            "n.upstream({}, [\"127.0.0.1:{backend}\"]);",
            lit(&format!(
                "app {{ }} server {{ listen 127.0.0.1:{injected}; }} upstream z"
            ))
        ),
        format!("n.upstream(\"app\", [#{{ server: \"127.0.0.1:{backend}\", weight: 0 }}]);"),
        format!("n.upstream(\"app\", [\"127.0.0.1:{backend}\\n}}\"]);"),
        "n.upstream(\"../../evil\", [\"127.0.0.1:1\"]);".to_string(),
    ];
    for attack in attacks {
        let recipe = format!("let n = local().nginx({});\n{attack}\n", nginx.options());
        refused(sb.run_recipe(&recipe, &[]), 1, "galley::invalid_value");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap_or_default(), before);
    assert!(!sb.path().join("evil.conf").exists());
    assert_eq!(
        http_get(injected, "/"),
        None,
        "nothing listens on the injected port"
    );
    let test = std::process::Command::new(&nginx.bin)
        .arg("-p")
        .arg(&nginx.prefix)
        .arg("-c")
        .arg(&nginx.conf)
        .arg("-t")
        .output()
        .expect("nginx -t");
    assert!(test.status.success(), "nginx -t still passes");
    // A well-formed upstream still works.
    let recipe = format!(
        "let n = local().nginx({});\nn.upstream(\"app\", [#{{ server: \"127.0.0.1:{backend}\", weight: 3 }}, \"unix:/run/x.sock\"]);\n",
        nginx.options()
    );
    sb.run_recipe(&recipe, &[]).expect_code(0);
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains(&format!("server 127.0.0.1:{backend} weight=3;")));
}

// ---------------------------------------------------------------------------------------------
// git: no value becomes an option

#[test]
fn git_arguments_that_look_like_options_are_refused_and_the_working_copy_is_untouched() {
    let sb = Sandbox::new();
    let origin = GitOrigin::new(sb.path(), "main", &[("app.txt", "one\n")]);
    crate::support::sh(sb.path(), &["git", "clone", "-q", &origin.url(), "work"]);
    let work = sb.path().join("work");
    let head = crate::support::sh(&work, &["git", "rev-parse", "HEAD"]);
    for (attack, code) in [
        ("g.switch_to(\"--orphan=x\");", "galley::invalid_value"),
        ("g.switch_to(\"--detach\");", "galley::invalid_value"),
        ("g.switch_to(\"a..b\");", "galley::invalid_value"),
        (
            "g.changed(\"--output=written.txt\", \"HEAD\");",
            "galley::invalid_value",
        ),
        (
            "g.changed(\"HEAD\", \"--output=written.txt\");",
            "galley::invalid_value",
        ),
        (
            "local().git(\"again\").clone(\".\", #{ branch: \"--upload-pack=touch pwned\" });",
            "galley::invalid_value",
        ),
    ] {
        let recipe = format!("let g = local().git(\"work\");\n{attack}\n");
        let report = refused(sb.run_recipe(&recipe, &[]), 1, code);
        assert!(report.contains("git"), "{attack}: {report}");
    }
    assert_eq!(
        std::fs::read_to_string(work.join("app.txt")).unwrap(),
        "one\n"
    );
    assert_eq!(
        crate::support::sh(&work, &["git", "rev-parse", "HEAD"]),
        head
    );
    assert_eq!(
        crate::support::sh(&work, &["git", "branch", "--show-current"]),
        "main"
    );
    for leftover in ["written.txt", "work/written.txt", "pwned", "again"] {
        assert!(!sb.path().join(leftover).exists(), "{leftover}");
    }
}

// ---------------------------------------------------------------------------------------------
// Environment names, NUL bytes and names that become paths

#[test]
fn env_keys_that_are_options_are_refused_locally_and_over_ssh() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let marker = sb.join("pwned");
    let key = lit(&format!("-Stouch {marker}"));
    let hosts = [
        "local()".to_string(),
        format!("ssh::connect(\"{}\", {})", fleet.dest(0), fleet.options()),
    ];
    for host in &hosts {
        for attack in [
            format!("h.run([\"true\"], #{{ env: #{{ {key}: \"1\" }} }});"),
            format!(
                "h.process(\"svc\", #{{ cmd: [\"true\"], env: #{{ {key}: \"1\" }} }}).start();"
            ),
            "h.run([\"true\"], #{ env: #{ \"A=B\": \"1\" } });".to_string(),
        ] {
            let recipe = format!("let h = {host};\n{attack}\n");
            sb.write("recipe.rhai", &recipe);
            let run = Run::from(
                fleet
                    .galley(&sb)
                    .args(["run", "recipe.rhai", "--output", "plain"])
                    .output()
                    .unwrap(),
            );
            let report = refused(run, 1, "galley::invalid_value");
            assert!(report.contains("[A-Za-z_][A-Za-z0-9_]*"), "{report}");
        }
    }
    assert!(!Path::new(&marker).exists(), "env -S ran a command");
}

#[test]
fn a_nul_byte_and_a_missing_program_over_ssh_are_clear_reports() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let connect = format!(
        "let h = ssh::connect(\"{}\", {});\n",
        fleet.dest(0),
        fleet.options()
    );
    for (body, code) in [
        ("h.run([\"echo\", \"a\\x00b\"]);", "galley::invalid_value"),
        (
            "h.run([\"no-such-program-xyz\"]);",
            "galley::command_not_started",
        ),
        (
            "h.run([\"no-such-program-xyz\"], #{ env: #{ K: \"v\" } });",
            "galley::command_not_started",
        ),
    ] {
        sb.write("recipe.rhai", &format!("{connect}{body}\n"));
        let run = Run::from(
            fleet
                .galley(&sb)
                .args(["run", "recipe.rhai", "--output", "plain"])
                .output()
                .unwrap(),
        );
        let report = refused(run, 1, code);
        assert!(!report.contains("ssh_connection_lost"), "{report}");
    }
}

#[test]
fn app_and_service_names_that_climb_out_are_refused_and_nothing_is_written_outside() {
    let sb = Sandbox::new();
    let state = sb.path().join("deep/state");
    std::fs::create_dir_all(&state).unwrap();
    for (body, what) in [
        (
            "deploy::run(#{ app: \"../../x\" }, || log(\"ran\"));",
            "app name",
        ),
        ("deploy::run(#{ app: \"\" }, || log(\"ran\"));", "app name"),
        (
            "deploy::run(#{ app: \"a\\nb\" }, || log(\"ran\"));",
            "app name",
        ),
        (
            "import \"galley/releases\" as r;\nr::deploy(#{ app: \"web\", host: local(), root: \"rel\", id: \"../../x\", fetch: |d| log(\"ran\"), restart: |d| log(\"ran\") });",
            "release id",
        ),
        (
            "local().process(\"../../svc\", #{ cmd: [\"sleep\", \"60\"] }).start();",
            "service name",
        ),
        (
            "local().process(\"a/b\", #{ cmd: [\"sleep\", \"60\"] }).start();",
            "service name",
        ),
    ] {
        sb.write("recipe.rhai", &format!("{body}\n"));
        let run = sb
            .invoke(["run", &sb.join("recipe.rhai"), "--output", "plain"])
            .env("GALLEY_STATE_DIR", &state)
            .dir(&state)
            .run();
        assert!(!run.stdout.contains("ran"), "the body ran:\n{}", run.stdout);
        let report = refused(run, 1, "galley::invalid_value");
        assert!(report.contains(what), "{report}");
    }
    for leftover in [
        "x.lock",
        "locks/x.lock",
        "svc.pid",
        "svc.log",
        "deep/svc.pid",
    ] {
        assert!(!sb.path().join(leftover).exists(), "{leftover}");
    }
    let run = sb.galley().args(["unlock", "../x"]).output().unwrap();
    refused(Run::from(run), 1, "galley::invalid_value");
}

// ---------------------------------------------------------------------------------------------
// Inputs that used to crash Galley

#[test]
fn huge_durations_are_reports_not_panics() {
    let sb = Sandbox::new();
    for body in [
        "sleep(1e30);",
        "sleep(9223372036854775807);",
        "sleep(\"999999999999999999999s\");",
        "local().run([\"true\"], #{ timeout: 1e30 });",
        "local().run([\"true\"], #{ timeout: \"8761h\" });",
        "ssh::connect(\"root@127.0.0.1:1\", #{ connect_timeout: 1.8e19 });",
        "ssh::connect(\"root@127.0.0.1:1\", #{ persist: 1e300 });",
        "health::http(\"http://127.0.0.1:1/\", #{ timeout: 1e30 });",
    ] {
        let report = refused(sb.run_recipe(body, &[]), 1, "galley::bad_value");
        assert!(report.contains("at most 365 days"), "{body}: {report}");
    }
}

#[test]
fn stopping_a_service_with_a_huge_timeout_is_a_report_and_a_normal_stop_still_works() {
    let sb = Sandbox::new();
    let reaper = crate::support::Reaper::new(&sb);
    let start = "let s = local().process(\"svc\", #{ cmd: [\"sleep\", \"600\"] });\ns.start();\n";
    sb.run_recipe(start, &[]).expect_code(0);
    let pid = crate::support::read_pid(sb.path().join("svc.pid"));
    reaper.track(pid);
    let stop = "local().process(\"svc\", #{ cmd: [\"sleep\", \"600\"] }).stop(#{ timeout: 9223372036854775807 });";
    refused(sb.run_recipe(stop, &[]), 1, "galley::bad_value");
    assert!(crate::support::alive(pid), "a refused stop does nothing");
    let stop =
        "local().process(\"svc\", #{ cmd: [\"sleep\", \"600\"] }).stop(#{ timeout: \"5s\" });";
    sb.run_recipe(stop, &[]).expect_code(0);
    crate::support::wait_until("the service to stop", Duration::from_secs(10), || {
        !crate::support::alive(pid)
    });
}

/// `galley check` and `galley run` of the recipe `main.rhai` (with other files in `files`).
fn check_and_run(sb: &Sandbox, files: &[(&str, &str)]) -> (Run, Run) {
    for (path, text) in files {
        sb.write(path, text);
    }
    (
        sb.run(&["check", "main.rhai"]),
        sb.run(&["run", "main.rhai"]),
    )
}

#[test]
fn a_non_literal_import_is_a_report_in_check_and_run() {
    let sb = Sandbox::new();
    let (check, run) = check_and_run(&sb, &[("main.rhai", "let m = \"x\"; import m as q;\n")]);
    refused(check, 2, "galley::import_not_literal");
    // Refused when the recipe is compiled, before anything runs, like a syntax error.
    refused(run, 2, "galley::import_not_literal");
    // Inside a function too.
    let (check, _) = check_and_run(
        &sb,
        &[("main.rhai", "fn f(m) { import m as q; }\nlog(1);\n")],
    );
    refused(check, 2, "galley::import_not_literal");
}

#[test]
fn self_imports_and_import_cycles_are_reports_naming_the_cycle() {
    let sb = Sandbox::new();
    let (check, run) = check_and_run(&sb, &[("main.rhai", "import \"main\" as me;\nlog(1);\n")]);
    for report in [
        refused(check, 2, "galley::import_cycle"),
        refused(run, 1, "galley::import_cycle"),
    ] {
        assert!(report.contains("main.rhai -> main.rhai"), "{report}");
    }
    let (check, run) = check_and_run(
        &sb,
        &[
            ("a.rhai", "import \"b\" as b;\nfn fa() { 1 }\n"),
            ("b.rhai", "import \"a\" as a;\nfn fb() { 2 }\n"),
            ("main.rhai", "import \"a\" as a;\nlog(a::fa());\n"),
        ],
    );
    for report in [
        refused(check, 2, "galley::import_cycle"),
        refused(run, 1, "galley::import_cycle"),
    ] {
        assert!(report.contains("a.rhai -> b.rhai -> a.rhai"), "{report}");
    }
    // A module imported twice along different paths (a diamond) is not a cycle.
    let (check, run) = check_and_run(
        &sb,
        &[
            ("a.rhai", "import \"c\" as c;\nfn fa() { c::fc() }\n"),
            ("b.rhai", "import \"c\" as c;\nfn fb() { c::fc() }\n"),
            ("c.rhai", "fn fc() { 3 }\n"),
            (
                "main.rhai",
                "import \"a\" as a;\nimport \"b\" as b;\nprint(`sum=${a::fa() + b::fb()}`);\n",
            ),
        ],
    );
    check.expect_code(0);
    assert_eq!(value_of(&run.expect_code(0).stdout, "sum"), "6");
}

// ---------------------------------------------------------------------------------------------
// Bounded memory

/// Runs `galley ARGS` under python's resource module; returns the run and its peak RSS in KiB.
fn with_peak_rss(sb: &Sandbox, args: &[&str]) -> (Run, u64) {
    let script = "import resource, subprocess, sys\n\
                  p = subprocess.run(sys.argv[1:], capture_output=True)\n\
                  sys.stdout.buffer.write(p.stdout)\n\
                  sys.stderr.buffer.write(p.stderr)\n\
                  print('peak_rss=%d' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
                  sys.exit(p.returncode)\n";
    let out = std::process::Command::new("python3")
        .current_dir(sb.path())
        .env("NO_COLOR", "1")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_galley"))
        .args(args)
        .output()
        .expect("python3 runs");
    let run = Run::from(out);
    let peak = value_of(&run.stdout, "peak_rss").parse().unwrap();
    (run, peak)
}

/// The documented bounds (docs/safety.md) on a recipe that grows a string, or an array, without
/// end: an array's items are 16-byte values and its limit must fit a command's kept output.
const PEAK_RSS_BOUND_KIB: u64 = 400 * 1024;
const PEAK_RSS_ARRAY_BOUND_KIB: u64 = 3 * 1024 * 1024;

#[test]
fn string_doubling_stops_with_a_report_under_the_memory_bound() {
    let sb = Sandbox::new();
    for (body, bound) in [
        ("let s = \"x\"; loop { s += s; }", PEAK_RSS_BOUND_KIB),
        ("let a = [1]; loop { a += a; }", PEAK_RSS_ARRAY_BOUND_KIB),
    ] {
        sb.write("grow.rhai", body);
        let (run, peak) = with_peak_rss(&sb, &["run", "grow.rhai", "--output", "plain"]);
        let report = refused(run, 1, "galley::data_too_large");
        assert!(report.contains("docs/safety.md"), "{report}");
        assert!(
            peak < bound,
            "{body}: peak RSS {peak} KiB is over the bound of {bound} KiB"
        );
    }
    let report = refused(
        sb.run_recipe("fn f(n) { f(n + 1) }\nf(0);\n", &[]),
        1,
        "galley::call_depth",
    );
    assert!(report.contains("128"), "{report}");
}

// ---------------------------------------------------------------------------------------------
// Printed values cannot forge lines

#[test]
fn control_characters_in_values_are_escaped_in_action_lines_reports_and_history() {
    let sb = Sandbox::new();
    let state = sb.path().join("state");
    let recipe = "step(\"one\\nFORGED step\", || {\n\
                  local().write(\"a\\nFORGED write.txt\", \"x\");\n\
                  });\n\
                  deploy::run(#{ app: \"web\", host: local(), sha: \"abc\\nFORGED sha\" }, || {});\n\
                  local().read(\"no\\nFORGED such\");\n";
    sb.write("recipe.rhai", recipe);
    let run = sb
        .invoke(["run", &sb.join("recipe.rhai"), "--output", "plain"])
        .env("GALLEY_STATE_DIR", &state)
        .run()
        .expect_code(1);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        !all.lines().any(|l| l.starts_with("FORGED")),
        "a value started a line of its own:\n{all}"
    );
    assert!(all.contains("one\\nFORGED step"), "{all}");
    assert!(all.contains("a\\nFORGED write.txt"), "{all}");
    assert!(run.stderr.contains("no\\nFORGED such"), "{}", run.stderr);
    let history = sb
        .invoke(["history"])
        .env("GALLEY_STATE_DIR", &state)
        .run()
        .expect_code(0);
    assert!(
        !history.stdout.lines().any(|l| l.starts_with("FORGED")),
        "{}",
        history.stdout
    );
    assert!(
        history.stdout.contains("abc\\nFORGED sha"),
        "{}",
        history.stdout
    );
}

#[test]
fn escape_sequences_from_output_are_neutralised_when_printed_and_kept_raw_as_data() {
    let sb = Sandbox::new();
    let recipe =
        "let r = local().run([\"printf\", \"a\\u001b]0;title\\u0007b\\u001b[2Jc\\rFORGED\\n\"]);\n\
                  print(`raw=${r.stdout.contains(\"\\u001b[2J\")}`);\n";
    let run = sb.run_recipe(recipe, &[]).expect_code(0);
    assert!(!run.stdout.contains('\x1b'), "{:?}", run.stdout);
    assert!(!run.stdout.contains('\r'), "{:?}", run.stdout);
    assert!(run.stdout.contains("\\e[2J"), "{:?}", run.stdout);
    assert_eq!(
        value_of(&run.stdout, "raw"),
        "true",
        "r.stdout keeps the bytes"
    );
    sb.write("recipe.rhai", recipe);
    let json = sb
        .invoke(["run", "recipe.rhai", "--output", "json"])
        .run()
        .expect_code(0);
    let line: serde_json::Value = json
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "output")
        .expect("an output event");
    assert!(line["line"].as_str().unwrap().contains("\x1b[2J"), "{line}");
}

#[test]
fn a_syntax_error_on_a_huge_line_shows_a_clipped_line() {
    let sb = Sandbox::new();
    let line = format!("let x = \"{}\";\nlet y = 1 +* 2;\n", "y".repeat(10_000_000));
    sb.write("big.rhai", &line);
    let run = sb.run(&["check", "big.rhai"]);
    refused(run, 2, "galley::syntax");
    let one_line = format!("let x = \"{}\" +* 1;\n", "y".repeat(10_000_000));
    sb.write("wide.rhai", &one_line);
    let run = sb.run(&["check", "wide.rhai"]).expect_code(2);
    assert!(
        run.stderr.len() < 10_000,
        "{} bytes of report",
        run.stderr.len()
    );
}

// ---------------------------------------------------------------------------------------------
// A kept ssh connection is checked against the current known_hosts

#[track_caller]
fn connects(run: Run) {
    let run = run.expect_code(0);
    assert!(
        run.stdout.contains("ran=ok"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn a_kept_connection_is_refused_once_its_known_hosts_entry_is_replaced_or_removed() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(2);
    let _close = CloseMasters(fleet.control_dir());
    let known = sb.join("known_hosts");
    let entry = |key: &str| format!("[127.0.0.1]:{} {key}\n", fleet.hosts[0].port);
    std::fs::write(&known, entry(&fleet.hosts[0].host_key_pub)).unwrap();
    let recipe = format!(
        "let h = ssh::connect(\"{}\", #{{ identity: {}, known_hosts_file: {}, persist: \"5m\" }});\nprint(`ran=${{h.run([\"echo\", \"ok\"]).stdout}}`);\n",
        fleet.dest(0),
        lit(&fleet.key.to_string_lossy()),
        lit(&known),
    );
    let run = |sb: &Sandbox| {
        sb.write("recipe.rhai", &recipe);
        Run::from(
            fleet
                .galley(sb)
                .args(["run", "recipe.rhai", "--output", "plain"])
                .output()
                .unwrap(),
        )
    };
    connects(run(&sb));
    connects(run(&sb));
    // The entry now names another key: the kept master is not trusted any more.
    std::fs::write(&known, entry(&fleet.hosts[1].host_key_pub)).unwrap();
    refused(run(&sb), 1, "galley::ssh_host_key_changed");
    // The entry is gone.
    std::fs::write(&known, "").unwrap();
    refused(run(&sb), 1, "galley::ssh_host_key_unknown");
    // Back as it was: connects again.
    std::fs::write(&known, entry(&fleet.hosts[0].host_key_pub)).unwrap();
    connects(run(&sb));
}

// ---------------------------------------------------------------------------------------------
// Large recipes: compiled in time linear in their size, and a compile can be interrupted

/// `n` lines of `let vI = I;`, about 22 bytes each.
fn let_lines(n: usize) -> String {
    (0..n).map(|i| format!("let v{i} = {i};\n")).collect()
}

#[test]
fn a_ten_megabyte_recipe_of_let_lines_compiles() {
    let sb = Sandbox::new();
    let mut text = let_lines(470_000);
    text.push_str("print(`last=${v469999 + v0}`);\nlet = ;\n");
    assert!(text.len() > 10_000_000);
    sb.write("big.rhai", &text);
    // The syntax error on the last line is found, so every chunk was compiled; its line is
    // Rhai's last (65,535), the furthest it counts.
    let report = refused(sb.run(&["check", "big.rhai"]), 2, "galley::syntax");
    assert!(report.contains("big.rhai:65535"), "{report}");
    // Running it is left out: with an `on_def_var` callback set (the shared global constants),
    // Rhai looks up every `let` in the scope when it runs, which is quadratic again.
    let small: String = let_lines(5_000) + "print(`last=${v4999 + v0}`);\n";
    sb.write("small.rhai", &small);
    let run = sb
        .run(&["run", "small.rhai", "--output", "plain"])
        .expect_code(0);
    assert_eq!(value_of(&run.stdout, "last"), "4999");
}

#[test]
fn sigterm_during_a_long_compile_exits_130() {
    let sb = Sandbox::new();
    // Inside one function body the recipe cannot be cut into chunks: Rhai's parser takes long
    // over these, and the run must still end at once.
    let path = sb.write(
        "big.rhai",
        &format!("fn f() {{\n{}}}\n", let_lines(150_000)),
    );
    let size = std::fs::metadata(&path).unwrap().len();
    let child = sb
        .galley()
        .args(["run", "big.rhai", "--output", "plain"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Once the whole file has been read, galley is compiling it.
    crate::support::wait_until("galley to read the recipe", Duration::from_mins(1), || {
        std::fs::read_to_string(format!("/proc/{pid}/io"))
            .ok()
            .and_then(|io| {
                io.lines()
                    .find_map(|l| l.strip_prefix("rchar: ").map(|n| n.trim().parse::<u64>()))
            })
            .and_then(Result::ok)
            .is_some_and(|read| read >= size)
    });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted while compiling"), "{stderr}");
}
