//! The start.sh replacement, end to end against a real bare git origin and `uv`.

use std::cell::RefCell;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::sshd::Fleet;
use crate::support::{
    alive, all_pids, environ, http_get, kill_group, read_pid, wait_until, GitOrigin, Reaper,
    Sandbox,
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

/// A bare origin on `BRANCH` holding the demo app, in `sb`.
fn app_origin(sb: &Sandbox) -> GitOrigin {
    let app_py =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/demo/app.py"))
            .unwrap();
    GitOrigin::new(
        sb.path(),
        BRANCH,
        &[
            ("app.py", &app_py),
            ("pyproject.toml", PYPROJECT),
            (".gitignore", GITIGNORE),
        ],
    )
}

/// Deploys with `deploy`, pushes a new commit, deploys again, and checks that exactly one app
/// process is left in `dir`, named by its pidfile and serving the new commit on `port`.
/// Every app pid it sees is given to `track` for the cleanup.
fn deploy_twice(
    origin: &GitOrigin,
    dir: &str,
    port: &str,
    deploy: impl Fn() -> std::process::Output,
    track: impl Fn(i64),
) {
    let first_sha = crate::support::sh(&origin.work, &["git", "rev-parse", "HEAD"]);
    let serving = |port: &str| http_get(port.parse().unwrap(), "/").unwrap_or_default();

    let out = deploy();
    assert!(
        out.status.success(),
        "first deploy failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let first_pid = read_pid(format!("{dir}/app.pid"));
    track(first_pid);
    assert!(serving(port).contains(&first_sha), "{}", serving(port));

    let second_sha = origin.push(&[("CHANGELOG", "second\n")], "second commit");
    let out = deploy();
    assert!(
        out.status.success(),
        "second deploy failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let pid = read_pid(format!("{dir}/app.pid"));
    track(pid);
    assert!(serving(port).contains(&second_sha), "{}", serving(port));
    wait_until("the old app to be gone", Duration::from_secs(10), || {
        !alive(first_pid)
    });
    assert_eq!(
        app_processes(dir),
        vec![pid],
        "exactly one app process, named by the pidfile"
    );
    assert!(serving(port).contains(&format!("pid {pid}")));
}

#[test]
fn start_recipe_twice_leaves_exactly_one_app_serving_the_new_commit() {
    let sb = Sandbox::new();
    let origin = app_origin(&sb);
    let dir = sb.join("app");
    let reaper = Reaper::new(&sb);
    let port = crate::support::free_port().to_string();
    let recipe = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/start.rhai");
    let url = origin.url();
    let deploy = || {
        sb.galley()
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env("UV_OFFLINE", "1")
            // Its own journal and locks: other tests deploy an `app` too.
            .env("GALLEY_STATE_DIR", sb.join("state"))
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
    deploy_twice(&origin, &dir, &port, deploy, |pid| reaper.track(pid));
}

/// The folder holding `uv` on this process's PATH, if any.
fn uv_dir() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|dir| {
        std::fs::metadata(dir.join("uv"))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Kills, when dropped, every app process Galley started in `dir` (the app of an ssh host
/// runs outside the sandbox, where the `Reaper` does not look) and the pids it was told about.
struct AppReaper {
    dir: String,
    pids: RefCell<Vec<i64>>,
}

impl Drop for AppReaper {
    fn drop(&mut self) {
        let mut pids = self.pids.borrow().clone();
        pids.extend(app_processes(&self.dir));
        for pid in pids.into_iter().filter(|pid| alive(*pid)) {
            kill_group(pid);
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

#[test]
fn start_recipe_runs_over_ssh_with_only_the_host_line_changed() {
    let Some(uv) = uv_dir() else {
        println!("skipped: no `uv` on PATH (scripts/test installs it into target/tools/venv/bin)");
        return;
    };
    let fleet = Fleet::start_with(
        1,
        &[format!(
            "SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin UV_PYTHON_DOWNLOADS=never UV_OFFLINE=1",
            uv.display()
        )],
    );
    let sb = Sandbox::new();
    let original =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/start.rhai"))
            .unwrap();
    let connect = format!(
        "let host = ssh::connect(\"{}\", {});",
        fleet.dest(0),
        fleet.options()
    );
    let changed: Vec<String> = original
        .lines()
        .map(|line| {
            if line.starts_with("let host = local();") {
                connect.clone()
            } else {
                line.to_string()
            }
        })
        .collect();
    let differing = original
        .lines()
        .zip(&changed)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        differing, 1,
        "recipes/start.rhai has exactly one `let host = local();` line"
    );
    assert_eq!(changed.len(), original.lines().count());
    let recipe = sb.write("start.rhai", &(changed.join("\n") + "\n"));

    let origin = app_origin(&sb);
    let dir = fleet.hosts[0].root.join("app").display().to_string();
    let reaper = AppReaper {
        dir: dir.clone(),
        pids: RefCell::new(Vec::new()),
    };
    let port = crate::support::free_port().to_string();
    let url = origin.url();
    let deploy = || {
        let out = fleet
            .galley(&sb)
            .arg("run")
            .arg(&recipe)
            .args(["--output", "plain", "--set", &format!("repo={url}")])
            .args([
                "--set",
                &format!("dir={dir}"),
                "--set",
                &format!("port={port}"),
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        if out.status.success() {
            let ran = format!("[{}] $ run uv sync", fleet.dest(0));
            assert!(stdout.contains(&ran), "`uv sync` ran over ssh:\n{stdout}");
        }
        out
    };
    deploy_twice(&origin, &dir, &port, deploy, |pid| {
        reaper.pids.borrow_mut().push(pid);
    });
}

#[test]
fn start_recipe_deployed_twice_rolls_back_to_the_first_commit() {
    let sb = Sandbox::new();
    let origin = app_origin(&sb);
    let dir = sb.join("app");
    let state = sb.join("state");
    let reaper = Reaper::new(&sb);
    let port = crate::support::free_port().to_string();
    let recipe = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/start.rhai");
    let url = origin.url();
    let galley = || {
        let mut cmd = sb.galley();
        cmd.env("UV_PYTHON_DOWNLOADS", "never")
            .env("UV_OFFLINE", "1")
            .env("GALLEY_STATE_DIR", &state);
        cmd
    };
    let deploy = || {
        galley()
            .args(["run", recipe, "--output", "plain"])
            .args([
                "--set",
                &format!("repo={url}"),
                "--set",
                &format!("dir={dir}"),
            ])
            .args(["--set", &format!("port={port}")])
            .output()
            .unwrap()
    };
    let first_sha = crate::support::sh(&origin.work, &["git", "rev-parse", "HEAD"]);
    deploy_twice(&origin, &dir, &port, deploy, |pid| reaper.track(pid));
    let out = galley().args(["rollback", "app"]).output().unwrap();
    let run = crate::support::Run::from(out).expect_code(0);
    assert!(
        run.stdout
            .contains(&format!("rolling app back to {first_sha}")),
        "{}",
        run.stdout
    );
    reaper.track(read_pid(format!("{dir}/app.pid")));
    let served = http_get(port.parse().unwrap(), "/").unwrap_or_default();
    assert!(
        served.contains(&first_sha),
        "the first commit serves again: {served}"
    );
    let history = galley().args(["history", "app"]).output().unwrap();
    let history = String::from_utf8_lossy(&history.stdout).into_owned();
    assert!(history.contains("rollback to"), "{history}");
}
