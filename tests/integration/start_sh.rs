//! The start.sh replacement, end to end against a real bare git origin and `uv`.

use std::time::Duration;

use crate::support::{
    alive, all_pids, environ, http_get, read_pid, wait_until, GitOrigin, Reaper, Sandbox,
};

const BRANCH: &str = "release/0.0.1";
const PYPROJECT: &str = "[project]\nname = \"app\"\nversion = \"0.0.1\"\nrequires-python = \">=3.8\"\ndependencies = []\n";
const GITIGNORE: &str = ".venv/\napp.pid\napp.log\nuv.lock\n";

/// Every live process that Galley started as the service `app` from `dir`.
fn app_processes(dir: &str) -> Vec<i64> {
    all_pids()
        .into_iter()
        .filter(|pid| environ(*pid).iter().any(|var| var == "GALLEY_SERVICE=app"))
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd"))
                .is_ok_and(|cwd| cwd.to_string_lossy() == dir)
        })
        .filter(|pid| alive(*pid))
        .collect()
}

#[test]
fn start_recipe_twice_leaves_exactly_one_app_serving_the_new_commit() {
    let sb = Sandbox::new();
    let app_py =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/demo/app.py"))
            .unwrap();
    let origin = GitOrigin::new(
        sb.path(),
        BRANCH,
        &[
            ("app.py", &app_py),
            ("pyproject.toml", PYPROJECT),
            (".gitignore", GITIGNORE),
        ],
    );
    let first_sha = crate::support::sh(&origin.work, &["git", "rev-parse", "HEAD"]);
    let dir = sb.join("app");
    let _reaper = Reaper::new(&sb);
    let port = crate::support::free_port().to_string();
    let recipe = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/start.rhai");
    let url = origin.url();
    let deploy = || {
        sb.galley()
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env("UV_OFFLINE", "1")
            .args([
                "run",
                recipe,
                "--output",
                "plain",
                "--set",
                &format!("repo={url}"),
            ])
            .args([
                "--set",
                &format!("dir={dir}"),
                "--set",
                &format!("port={port}"),
            ])
            .output()
            .unwrap()
    };
    let serving = |port: &str| http_get(port.parse().unwrap(), "/").unwrap_or_default();

    let out = deploy();
    assert!(
        out.status.success(),
        "first deploy failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(serving(&port).contains(&first_sha), "{}", serving(&port));
    let first_pid = read_pid(format!("{dir}/app.pid"));

    let second_sha = origin.push(&[("CHANGELOG", "second\n")], "second commit");
    let out = deploy();
    assert!(
        out.status.success(),
        "second deploy failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(serving(&port).contains(&second_sha), "{}", serving(&port));
    let pid = read_pid(format!("{dir}/app.pid"));
    wait_until("the old app to be gone", Duration::from_secs(10), || {
        !alive(first_pid)
    });
    assert_eq!(
        app_processes(&dir),
        vec![pid],
        "exactly one app process, named by the pidfile"
    );
    assert!(serving(&port).contains(&format!("pid {pid}")));
}
