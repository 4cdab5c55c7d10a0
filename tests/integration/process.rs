//! `h.process(...)`: background services that outlive galley, tracked by a pidfile.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{alive, environ, read_pid, stat_ids, value_of, wait_until, Reaper, Sandbox};

const LIMIT: Duration = Duration::from_secs(20);

/// Waits until a file exists and holds a pid.
fn wait_pid(path: &str) -> i64 {
    wait_until(&format!("a pid in {path}"), LIMIT, || {
        std::fs::read_to_string(path).is_ok_and(|t| t.trim().parse::<i64>().is_ok())
    });
    read_pid(path)
}

/// A recipe declaring `app` as a service in `dir` with the options given, then running `body`.
fn recipe(dir: &str, opts: &str, body: &str) -> String {
    format!(
        "let h = local();\nlet app = h.process(\"app\", #{{ dir: {dir:?}, {opts} }});\n{body}\n"
    )
}

#[test]
fn start_runs_detached_in_its_own_session_and_survives_galley() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let dir = sb.join("svc");
    std::fs::create_dir_all(&dir).unwrap();
    let run = sb
        .run_recipe(
            &recipe(
                &dir,
                r#"cmd: ["sleep", "300"]"#,
                "let pid = app.start(); log(`started=${pid}`);",
            ),
            &[],
        )
        .expect_code(0);
    let pid = read_pid(format!("{dir}/app.pid"));
    reaper.track(pid);
    assert_eq!(
        value_of(&run.stdout, "started"),
        pid.to_string(),
        "start() returns the pid in the pidfile"
    );
    assert!(alive(pid), "the service died with galley");
    let (_, pgid, sid) = stat_ids(pid).expect("stat");
    assert_eq!(pgid, pid, "the service leads its own process group");
    assert_eq!(sid, pid, "the service leads its own session");
    assert_ne!(
        stat_ids(i64::from(std::process::id())).unwrap().2,
        sid,
        "not in the test's session"
    );
    assert!(
        environ(pid).iter().any(|v| v == "GALLEY_SERVICE=app"),
        "the service carries its GALLEY_SERVICE mark"
    );
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(
        cwd,
        Path::new(&dir).canonicalize().unwrap(),
        "the service runs in `dir`"
    );
    // The log file exists even though the app prints nothing.
    assert!(Path::new(&format!("{dir}/app.log")).exists());
}

#[test]
fn output_goes_to_the_log_and_env_and_env_file_reach_the_process() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let dir = sb.join("svc");
    sb.write(
        "svc/app.env",
        "# comment\nFROM_FILE=file-value\nexport QUOTED=\"two words\"\nBOTH=from-file\n",
    );
    let opts = r#"cmd: ["sh", "-c", "echo out FROM_ENV=$FROM_ENV FROM_FILE=$FROM_FILE QUOTED=$QUOTED BOTH=$BOTH; echo err-line >&2; exec sleep 300"],
        env: #{ FROM_ENV: "env-value", BOTH: "from-env", NUMBER: 42 },
        env_file: "app.env",
        log: "logs/app.log",
        pidfile: "app.pid""#;
    let run = sb
        .run_recipe(
            &recipe(
                &dir,
                opts,
                "app.start(); log(`log=${app.log}`); log(`pidfile=${app.pidfile}`);",
            ),
            &[],
        )
        .expect_code(0);
    let pid = read_pid(format!("{dir}/app.pid"));
    reaper.track(pid);
    let log = format!("{dir}/logs/app.log");
    assert_eq!(
        value_of(&run.stdout, "log"),
        log,
        "the `log` getter is the path inside dir"
    );
    assert_eq!(value_of(&run.stdout, "pidfile"), format!("{dir}/app.pid"));
    wait_until("both lines in the log", LIMIT, || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("err-line") && t.contains("out "))
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("out FROM_ENV=env-value FROM_FILE=file-value QUOTED=two words BOTH=from-env"),
        "env and env_file values (env wins) must reach the process; log:\n{text}"
    );
    assert!(
        !run.stdout
            .lines()
            .any(|l| l.starts_with("[local] out") || l.starts_with("[local] err-line")),
        "the service's output goes to the log, not to galley:\n{}",
        run.stdout
    );
    let env = environ(pid);
    assert!(env.iter().any(|v| v == "NUMBER=42"), "{env:?}");
    assert!(env.iter().any(|v| v == "FROM_FILE=file-value"), "{env:?}");
}

#[test]
fn stop_terminates_the_whole_process_group() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let dir = sb.join("svc");
    std::fs::create_dir_all(&dir).unwrap();
    let opts = r#"cmd: ["sh", "-c", "sleep 300 & echo $! > child.pid; wait"]"#;
    sb.run_recipe(&recipe(&dir, opts, "app.start();"), &[])
        .expect_code(0);
    let pid = read_pid(format!("{dir}/app.pid"));
    reaper.track(pid);
    let child = wait_pid(&format!("{dir}/child.pid"));
    reaper.track(child);
    assert!(alive(pid) && alive(child));
    assert_eq!(
        stat_ids(child).unwrap().1,
        pid,
        "the child is in the service's process group"
    );

    let run = sb
        .run_recipe(
            &recipe(
                &dir,
                opts,
                "log(`stopped=${app.stop()}`); log(`running=${app.is_running()}`);",
            ),
            &[],
        )
        .expect_code(0);
    assert_eq!(value_of(&run.stdout, "stopped"), "true");
    assert_eq!(value_of(&run.stdout, "running"), "false");
    assert!(
        run.stdout
            .contains(&format!("signal TERM to app (process group {pid})")),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("KILL"),
        "TERM was enough:\n{}",
        run.stdout
    );
    assert!(!alive(pid), "the service survived stop()");
    wait_until("the app's child to die with its group", LIMIT, || {
        !alive(child)
    });
    assert!(
        !Path::new(&format!("{dir}/app.pid")).exists(),
        "stop() removes the pidfile"
    );

    // Stopping again is not an error and reports that it was not running.
    let run = sb
        .run_recipe(&recipe(&dir, opts, "log(`stopped=${app.stop()}`);"), &[])
        .expect_code(0);
    assert_eq!(value_of(&run.stdout, "stopped"), "false");
}

#[test]
fn stop_sends_kill_after_the_timeout_to_an_app_that_ignores_term() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let dir = sb.join("svc");
    std::fs::create_dir_all(&dir).unwrap();
    // The ignored TERM is inherited by the background sleep too.
    let opts = r#"cmd: ["sh", "-c", "trap '' TERM; sleep 300 & echo $! > child.pid; wait; wait"]"#;
    sb.run_recipe(&recipe(&dir, opts, "app.start();"), &[])
        .expect_code(0);
    let pid = read_pid(format!("{dir}/app.pid"));
    reaper.track(pid);
    // child.pid is written after the trap is set.
    let child = wait_pid(&format!("{dir}/child.pid"));
    reaper.track(child);

    let run = sb
        .run_recipe(
            &recipe(
                &dir,
                opts,
                r#"log(`stopped=${app.stop(#{ timeout: "300ms" })}`);"#,
            ),
            &[],
        )
        .expect_code(0);
    assert_eq!(value_of(&run.stdout, "stopped"), "true");
    assert!(run.stdout.contains("signal TERM to app"), "{}", run.stdout);
    assert!(run.stdout.contains("did not stop within"), "{}", run.stdout);
    assert!(run.stdout.contains("signal KILL to app"), "{}", run.stdout);
    assert!(!alive(pid), "the service survived KILL");
    wait_until("the app's child to be killed with its group", LIMIT, || {
        !alive(child)
    });
    assert!(!Path::new(&format!("{dir}/app.pid")).exists());
}

#[test]
fn restart_is_running_pid_and_logs() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let dir = sb.join("svc");
    std::fs::create_dir_all(&dir).unwrap();
    let opts = r#"cmd: "echo one; echo two; echo three; exec sleep 300""#;
    let run = sb
        .run_recipe(
            &recipe(
                &dir,
                opts,
                "log(`before=${app.is_running()} ${type_of(app.pid())}`); app.start();",
            ),
            &[],
        )
        .expect_code(0);
    assert_eq!(value_of(&run.stdout, "before"), "false ()");
    let first = read_pid(format!("{dir}/app.pid"));
    reaper.track(first);
    let log = format!("{dir}/app.log");
    wait_until("the app's output", LIMIT, || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("three"))
    });

    let body = r#"
        log(`running=${app.is_running()}`);
        log(`pid=${app.pid()}`);
        log(`tail=${app.logs(#{ tail: 2 }).split("\n")}`);
        log(`all=${app.logs().split("\n")}`);
        let second = app.restart();
        log(`new=${second}`);
        log(`now=${app.pid()}`);
    "#;
    let run = sb.run_recipe(&recipe(&dir, opts, body), &[]).expect_code(0);
    assert_eq!(value_of(&run.stdout, "running"), "true");
    assert_eq!(value_of(&run.stdout, "pid"), first.to_string());
    assert_eq!(value_of(&run.stdout, "tail"), r#"["two", "three"]"#);
    assert_eq!(value_of(&run.stdout, "all"), r#"["one", "two", "three"]"#);
    let second: i64 = value_of(&run.stdout, "new").parse().unwrap();
    reaper.track(second);
    assert_ne!(second, first);
    assert_eq!(value_of(&run.stdout, "now"), second.to_string());
    assert_eq!(
        read_pid(format!("{dir}/app.pid")),
        second,
        "the pidfile names the new process"
    );
    assert!(!alive(first), "restart() stops the old process");
    assert!(alive(second), "restart() leaves the new process running");

    let run = sb
        .run_recipe(
            &recipe(
                &dir,
                opts,
                "app.stop(); log(`after=${app.is_running()} ${type_of(app.pid())}`);",
            ),
            &[],
        )
        .expect_code(0);
    assert_eq!(value_of(&run.stdout, "after"), "false ()");
    assert!(!alive(second));
}

#[test]
fn start_while_running_fails_with_a_report() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let dir = sb.join("svc");
    std::fs::create_dir_all(&dir).unwrap();
    let opts = r#"cmd: ["sleep", "300"]"#;
    sb.run_recipe(&recipe(&dir, opts, "app.start();"), &[])
        .expect_code(0);
    let pid = read_pid(format!("{dir}/app.pid"));
    reaper.track(pid);

    let run = sb
        .run_recipe(&recipe(&dir, opts, "app.start();"), &[])
        .expect_code(1);
    assert!(run.stderr.contains("galley::service"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("already running as pid {pid}")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("restart()"),
        "the help names restart(): {}",
        run.stderr
    );
    assert_eq!(
        read_pid(format!("{dir}/app.pid")),
        pid,
        "the pidfile is untouched"
    );
    assert!(alive(pid), "the running service is untouched");
    // Exactly one `sleep 300` runs in the service dir.
    let sleepers: Vec<i64> = reaper
        .in_sandbox()
        .into_iter()
        .filter(|p| environ(*p).iter().any(|v| v == "GALLEY_SERVICE=app"))
        .collect();
    assert_eq!(sleepers, vec![pid]);
}

#[test]
fn a_process_that_exits_at_once_fails_start_with_its_log_tail() {
    let sb = Sandbox::new();
    let _reaper = Reaper::new(&sb);
    let dir = sb.join("svc");
    std::fs::create_dir_all(&dir).unwrap();
    let opts = r#"cmd: ["sh", "-c", "echo boom; exit 1"]"#;
    let run = sb
        .run_recipe(
            &recipe(&dir, opts, "app.start(); log(\"after start\");"),
            &[],
        )
        .expect_code(1);
    assert!(
        run.stderr.contains("exited right after starting"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("| boom"),
        "the report shows the log tail: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("{dir}/app.log")),
        "the help names the log: {}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("after start"),
        "the recipe stops at the failed start"
    );
    assert!(
        !Path::new(&format!("{dir}/app.pid")).exists(),
        "no pidfile is left behind"
    );
}

#[test]
fn a_stale_pidfile_naming_another_program_is_never_signalled() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let dir = sb.join("svc");
    std::fs::create_dir_all(&dir).unwrap();
    let mut other = {
        use std::os::unix::process::CommandExt;
        Command::new("sleep")
            .arg("300")
            .current_dir(&dir)
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let other_pid = i64::from(other.id());
    reaper.track(other_pid);
    let pidfile = format!("{dir}/app.pid");
    std::fs::write(&pidfile, format!("{other_pid}\n")).unwrap();

    let body = r"
        log(`running=${app.is_running()}`);
        log(`stopped=${app.stop()}`);
        log(`running_after=${app.is_running()}`);
    ";
    let run = sb
        .run_recipe(&recipe(&dir, r#"cmd: ["sleep", "300"]"#, body), &[])
        .expect_code(0);
    assert!(
        alive(other_pid),
        "galley signalled a process that is not its service"
    );
    assert!(
        other.try_wait().unwrap().is_none(),
        "the other program was killed"
    );
    assert_eq!(value_of(&run.stdout, "running"), "false");
    assert_eq!(value_of(&run.stdout, "stopped"), "false");
    assert_eq!(value_of(&run.stdout, "running_after"), "false");
    let warning = run
        .stdout
        .lines()
        .find(|l| l.starts_with("warning:"))
        .unwrap_or_else(|| panic!("no warning in:\n{}", run.stdout));
    assert!(
        warning.contains(&pidfile),
        "the warning names the pidfile: {warning}"
    );
    assert!(
        warning.contains(&other_pid.to_string()),
        "the warning names the pid: {warning}"
    );
    assert!(!run.stdout.contains("signal TERM"), "{}", run.stdout);

    other.kill().unwrap();
    other.wait().unwrap();
}

#[test]
fn a_pidfile_naming_a_dead_process_does_not_block_start() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let dir = sb.join("svc");
    std::fs::create_dir_all(&dir).unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = i64::from(gone.id());
    gone.wait().unwrap();
    std::fs::write(format!("{dir}/app.pid"), format!("{gone_pid}\n")).unwrap();

    let run = sb
        .run_recipe(
            &recipe(
                &dir,
                r#"cmd: ["sleep", "300"]"#,
                "log(`running=${app.is_running()}`); app.start();",
            ),
            &[],
        )
        .expect_code(0);
    let pid = read_pid(format!("{dir}/app.pid"));
    reaper.track(pid);
    assert_eq!(value_of(&run.stdout, "running"), "false");
    assert_ne!(pid, gone_pid);
    assert!(alive(pid));
}

#[test]
fn a_pidfile_that_is_not_a_pid_is_reported() {
    let sb = Sandbox::new();
    let _reaper = Reaper::new(&sb);
    let dir = sb.join("svc");
    sb.write("svc/app.pid", "garbage\n");
    let run = sb
        .run_recipe(
            &recipe(&dir, r#"cmd: ["sleep", "300"]"#, "app.start();"),
            &[],
        )
        .expect_code(1);
    assert!(run.stderr.contains("galley::pidfile"), "{}", run.stderr);
    assert!(run.stderr.contains("\"garbage\""), "{}", run.stderr);
}

#[test]
fn start_creates_missing_folders_for_the_pidfile_and_the_log() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let dir = sb.join("svc");
    std::fs::create_dir_all(&dir).unwrap();
    let opts = r#"cmd: ["sleep", "300"], pidfile: "run/app.pid", log: "logs/app.log""#;
    let run = sb.run_recipe(&recipe(&dir, opts, "app.start();"), &[]);
    let services: Vec<i64> = reaper
        .in_sandbox()
        .into_iter()
        .filter(|p| environ(*p).iter().any(|v| v == "GALLEY_SERVICE=app"))
        .collect();
    // Whatever happens, no service may be left running that no pidfile tracks.
    assert!(
        run.code == 0 || services.is_empty(),
        "start failed but left the service running untracked as {services:?}:\n{}",
        run.stderr
    );
    let run = run.expect_code(0);
    assert_eq!(
        services,
        vec![read_pid(format!("{dir}/run/app.pid"))],
        "{}",
        run.stdout
    );
    assert!(Path::new(&format!("{dir}/logs/app.log")).exists());
}

#[test]
fn a_process_without_a_command_or_with_an_unknown_option_is_reported() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe(r#"local().process("app", #{ dir: "." });"#, &[])
        .expect_code(1);
    assert!(
        run.stderr.contains("process `app` needs a command"),
        "{}",
        run.stderr
    );
    let run = sb
        .run_recipe(
            r#"local().process("app", #{ cmd: ["true"], pidfil: "x" });"#,
            &[],
        )
        .expect_code(1);
    assert!(
        run.stderr.contains("unknown option `pidfil`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `pidfile`?"),
        "{}",
        run.stderr
    );
}
