//! `--dry-run` on the demo recipe changes nothing; a real run of the demo serves HTTP.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{alive, free_port, http_get, wait_until, Sandbox};
use crate::support::{all_pids, environ, Reaper};

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/demo.rhai");
const LIMIT: Duration = Duration::from_secs(20);

/// Every path under `dir`, sorted.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path.clone());
            }
            found.push(path);
        }
    }
    found.sort();
    found
}

/// Processes that are the demo app started for this test (by their mark and port).
fn demo_processes(port: u16) -> Vec<i64> {
    let port_var = format!("PORT={port}");
    all_pids()
        .into_iter()
        .filter(|pid| {
            let env = environ(*pid);
            env.iter().any(|v| v == "GALLEY_SERVICE=galley-demo") && env.contains(&port_var)
        })
        .filter(|pid| alive(*pid))
        .collect()
}

#[test]
fn a_dry_run_of_the_demo_prints_its_actions_and_changes_nothing() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let port = free_port();
    let demo_dir = sb.join("demo");
    let before = listing(sb.path());
    let run = sb
        .run(&[
            "run",
            DEMO,
            "--dry-run",
            "--output",
            "plain",
            "--set",
            &format!("dir={demo_dir}"),
            "--set",
            &format!("port={port}"),
        ])
        .expect_code(0);

    assert!(
        !Path::new(&demo_dir).exists(),
        "the dry run created {demo_dir}"
    );
    assert_eq!(
        listing(sb.path()),
        before,
        "the dry run changed the sandbox"
    );
    assert!(
        demo_processes(port).is_empty(),
        "the dry run started the app"
    );
    assert!(
        reaper.in_sandbox().is_empty(),
        "the dry run left a process in the sandbox"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something listens on the demo's port after a dry run"
    );

    let out = &run.stdout;
    let start = out
        .lines()
        .find(|l| l.starts_with("[local] would start galley-demo"))
        .unwrap_or_else(|| panic!("no `would start galley-demo` line in:\n{out}"));
    assert!(start.contains("python3 app.py"), "{start}");
    assert!(start.contains(&format!("PORT={port}")), "{start}");
    assert!(start.contains(&format!("(in {demo_dir})")), "{start}");
    assert!(
        out.contains(&format!("[local] would write {demo_dir}/app.py")),
        "the app's copy is a `would write` line:\n{out}"
    );
    assert!(
        out.contains(&format!("[local] would write {demo_dir}/galley-demo.pid")),
        "the pidfile is a `would write` line:\n{out}"
    );
    assert!(
        out.contains(&format!("[local] would mkdir -p {demo_dir}")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "[local] would check http://127.0.0.1:{port}/health"
        )),
        "{out}"
    );
    assert!(
        !out.contains("[local] $ "),
        "a dry run performed an action:\n{out}"
    );
}

#[test]
fn the_demo_serves_http_is_redeployed_in_place_and_down_stops_it() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let port = free_port();
    let demo_dir = sb.join("demo");
    let set_dir = format!("dir={demo_dir}");
    let set_port = format!("port={port}");
    let pidfile = format!("{demo_dir}/galley-demo.pid");
    let read_pid = || -> i64 {
        std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };

    let run = sb
        .run(&[
            "run", DEMO, "--output", "plain", "--set", &set_dir, "--set", &set_port,
        ])
        .expect_code(0);
    let first = read_pid();
    reaper.track(first);
    assert!(alive(first));
    assert!(
        run.stdout.contains(&format!(
            "the demo app is serving at http://127.0.0.1:{port}/ (pid {first})"
        )),
        "{}",
        run.stdout
    );
    assert_eq!(http_get(port, "/health").as_deref(), Some("ok\n"));
    let page = http_get(port, "/").expect("the demo answers");
    assert!(
        page.contains("hello from the galley demo app, version 1.0"),
        "{page}"
    );
    assert!(page.contains(&format!("pid {first}")), "{page}");
    assert_eq!(demo_processes(port), vec![first]);

    // Deploying again replaces the running version.
    let run = sb
        .run(&[
            "run",
            DEMO,
            "--output",
            "plain",
            "--set",
            &set_dir,
            "--set",
            &set_port,
            "--set",
            "version=2.0",
        ])
        .expect_code(0);
    let second = read_pid();
    reaper.track(second);
    assert_ne!(first, second);
    assert!(!alive(first), "the old version still runs");
    let page = http_get(port, "/").expect("the demo answers");
    assert!(page.contains("version 2.0"), "{page}\n{}", run.stdout);
    assert!(page.contains(&format!("pid {second}")), "{page}");

    let run = sb
        .run(&[
            "run", DEMO, "down", "--output", "plain", "--set", &set_dir, "--set", &set_port,
        ])
        .expect_code(0);
    assert!(run.stdout.lines().any(|l| l == "stopped"), "{}", run.stdout);
    assert!(!alive(second), "down did not stop the app");
    wait_until("the port to close", LIMIT, || {
        http_get(port, "/health").is_none()
    });
    assert!(demo_processes(port).is_empty());
    assert!(!Path::new(&pidfile).exists());

    let run = sb
        .run(&[
            "run", DEMO, "down", "--output", "plain", "--set", &set_dir, "--set", &set_port,
        ])
        .expect_code(0);
    assert!(
        run.stdout.lines().any(|l| l == "it was not running"),
        "{}",
        run.stdout
    );
}
