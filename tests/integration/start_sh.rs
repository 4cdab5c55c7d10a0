//! The start.sh replacement, end to end against a real bare git origin and `uv`.

use std::time::Duration;

use crate::support::{alive, http_get, kill_group, wait_until, GitOrigin, Sandbox};

const BRANCH: &str = "release/0.0.1";
const PYPROJECT: &str = "[project]\nname = \"app\"\nversion = \"0.0.1\"\nrequires-python = \">=3.8\"\ndependencies = []\n";
const GITIGNORE: &str = ".venv/\napp.pid\napp.log\nuv.lock\n";

/// Every live process that Galley started as the service `app` from `dir`.
fn app_processes(dir: &str) -> Vec<i64> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let marked = environ
            .split(|b| *b == 0)
            .any(|var| var == b"GALLEY_SERVICE=app");
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        if marked && cwd.to_string_lossy() == dir && alive(pid) {
            found.push(pid);
        }
    }
    found
}

struct KillOnDrop(String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in app_processes(&self.0) {
            kill_group(pid);
        }
    }
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
    let _cleanup = KillOnDrop(dir.clone());
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
    let first_pid: i64 = std::fs::read_to_string(format!("{dir}/app.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let second_sha = origin.push(&[("CHANGELOG", "second\n")], "second commit");
    let out = deploy();
    assert!(
        out.status.success(),
        "second deploy failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(serving(&port).contains(&second_sha), "{}", serving(&port));
    let pid: i64 = std::fs::read_to_string(format!("{dir}/app.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
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
