//! Deploy strategies end to end: `galley/releases` (layout, keep, rollback on a failed health
//! check, `galley rollback`), `galley/in_place` with its journal record and lock, Ctrl-C during a
//! deploy, the lock on an ssh host, and `--dry-run` of a releases deploy.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::sshd::{CloseMasters, Fleet};
use crate::support::{
    flat, free_port, http_get, read_pid, value_of, wait_until, Reaper, Run, Sandbox,
};

const LIMIT: Duration = Duration::from_secs(30);
const DEMO_APP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/demo/app.py");

/// A releases deploy of the demo app on this machine. The app reads its version from the
/// release's VERSION file, so that the release `current` points at says which version it is.
const RELEASES_RECIPE: &str = r#"
import "galley/releases" as releases;

let h = local();
let root = params.root;
let port = params.port;
let version = params.version;
let source = params.source;
let retries = parse_int(params.retries ?? "40");
h.mkdir(root + "/shared");
if !h.exists(root + "/shared/app.env") {
    h.write(root + "/shared/app.env", "GREETING=hello\n");
}
let id = releases::deploy(#{
    app: "web",
    host: h,
    root: root,
    id: params.release ?? version,
    fetch: |dir| {
        h.write(dir + "/app.py", h.read(source));
        h.write(dir + "/VERSION", version);
    },
    "shared": ["app.env"],
    keep: 3,
    restart: |dir| {
        let s = h.process("web", #{
            cmd: "APP_VERSION=$(cat VERSION) exec python3 app.py",
            dir: dir,
            env: #{ PORT: port },
            pidfile: root + "/web.pid",
            log: root + "/web.log",
        });
        s.stop();
        s.start();
    },
    health: `http://127.0.0.1:${port}/health`,
    health_options: #{ retries: retries, interval: "100ms" },
});
print(`deployed=${id}`);
"#;

/// An in-place deploy of the demo app in `params.dir`: the update writes the VERSION file.
const IN_PLACE_RECIPE: &str = r#"
import "galley/in_place" as in_place;

let h = local();
let dir = params.dir;
let version = params.version;
let app = h.process("web", #{
    cmd: "APP_VERSION=$(cat VERSION) exec python3 app.py",
    dir: dir,
    env: #{ PORT: params.port },
});
let pid = in_place::deploy(app, #{
    update: || h.write(dir + "/VERSION", version),
    health: `http://127.0.0.1:${params.port}/health`,
    health_options: #{ retries: 40, interval: "100ms" },
});
print(`pid=${pid}`);
"#;

/// The state folder every run of a test uses (journal and local locks).
fn state_dir(sb: &Sandbox) -> PathBuf {
    sb.path().join("state")
}

/// Every record of the deploy journal, oldest first (each line must be JSON).
fn journal(sb: &Sandbox) -> Vec<serde_json::Value> {
    crate::support::journal_in(&state_dir(sb))
}

/// A string field of a journal record ("" when missing).
fn field<'a>(record: &'a serde_json::Value, key: &str) -> &'a str {
    record[key].as_str().unwrap_or("")
}

/// The local lock file of `app`.
fn lock_file(sb: &Sandbox, app: &str) -> PathBuf {
    state_dir(sb).join("locks").join(format!("{app}.lock"))
}

/// What the demo app on `port` answers at `/` (empty when nothing answers).
fn serving(port: u16) -> String {
    http_get(port, "/").unwrap_or_default()
}

/// Waits until the demo app on `port` says it is `version`.
fn wait_for_version(port: u16, version: &str) {
    let needle = format!("version {version},");
    wait_until(
        &format!("the app on port {port} to serve {version}"),
        LIMIT,
        || serving(port).contains(&needle),
    );
}

/// The target of a symlink, as text.
fn link(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_link(path)
        .unwrap_or_else(|e| panic!("{} is not a symlink: {e}", path.display()))
        .to_string_lossy()
        .into_owned()
}

/// The folder names under `dir`, sorted.
fn names(dir: impl AsRef<Path>) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", dir.as_ref().display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    found
}

/// Every path under `dir`, sorted.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                todo.push(path.clone());
            }
            found.push(path);
        }
    }
    found.sort();
    found
}

/// A sandbox with the releases recipe, the demo app as the source to fetch, and a port.
struct Releases {
    sb: Sandbox,
    port: u16,
    root: String,
    source: String,
}

impl Releases {
    fn new() -> Self {
        let sb = Sandbox::new();
        sb.write("releases.rhai", RELEASES_RECIPE);
        let app = std::fs::read_to_string(DEMO_APP).unwrap();
        let source = sb.write("src/app.py", &app).to_string_lossy().into_owned();
        let root = sb.join("srv");
        Releases {
            sb,
            port: free_port(),
            root,
            source,
        }
    }

    /// `galley run releases.rhai` of `version` with `extra` arguments.
    fn deploy(&self, version: &str, extra: &[&str]) -> Run {
        let sets = [
            format!("root={}", self.root),
            format!("port={}", self.port),
            format!("version={version}"),
            format!("source={}", self.source),
        ];
        let mut args = vec!["run", "releases.rhai", "--output", "plain"];
        for set in &sets {
            args.extend(["--set", set.as_str()]);
        }
        args.extend_from_slice(extra);
        self.sb.invoke(&args).state("state").run()
    }

    /// Where `current` points.
    fn current(&self) -> String {
        link(format!("{}/current", self.root))
    }

    /// The release folders.
    fn releases(&self) -> Vec<String> {
        names(format!("{}/releases", self.root))
    }

    /// Remembers the app's pid (from its pidfile) for the cleanup.
    fn track(&self, reaper: &Reaper) {
        let pidfile = format!("{}/web.pid", self.root);
        if Path::new(&pidfile).exists() {
            reaper.track(read_pid(pidfile));
        }
    }
}

#[test]
fn releases_deploys_keep_the_newest_and_link_shared_files() {
    let r = Releases::new();
    let reaper = Reaper::new(&r.sb);
    for version in ["v1", "v2", "v3", "v4"] {
        let out = r.deploy(version, &[]);
        r.track(&reaper);
        let out = out.expect_code(0);
        assert_eq!(value_of(&out.stdout, "deployed"), version, "{}", out.stdout);
        assert_eq!(r.current(), format!("releases/{version}"));
        wait_for_version(r.port, version);
    }
    assert_eq!(
        r.releases(),
        ["v2", "v3", "v4"],
        "keep: 3 leaves the 3 newest releases"
    );
    for id in r.releases() {
        let env = format!("{}/releases/{id}/app.env", r.root);
        assert_eq!(link(&env), format!("{}/shared/app.env", r.root));
        assert_eq!(std::fs::read_to_string(&env).unwrap(), "GREETING=hello\n");
        assert_eq!(
            std::fs::read_to_string(format!("{}/releases/{id}/VERSION", r.root)).unwrap(),
            id
        );
    }
    assert!(
        serving(r.port).contains("version v4,"),
        "{}",
        serving(r.port)
    );
    assert!(
        !lock_file(&r.sb, "web").exists(),
        "the lock is released after each deploy"
    );

    let records = journal(&r.sb);
    assert_eq!(records.len(), 4, "{records:#?}");
    for (record, version) in records.iter().zip(["v1", "v2", "v3", "v4"]) {
        assert_eq!(field(record, "result"), "ok", "{record}");
        assert_eq!(field(record, "strategy"), "releases", "{record}");
        assert_eq!(field(record, "release"), version, "{record}");
        assert_eq!(field(record, "app"), "web", "{record}");
        assert_eq!(record["hosts"], serde_json::json!(["local"]), "{record}");
        assert!(!field(record, "id").is_empty(), "{record}");
    }
}

#[test]
fn releases_rolls_back_when_the_new_release_fails_its_health_check() {
    let r = Releases::new();
    let reaper = Reaper::new(&r.sb);
    let bad =
        r.sb.write("bad/app.py", "import sys\nsys.exit(3)\n")
            .to_string_lossy()
            .into_owned();
    let first = r.deploy("v1", &[]);
    r.track(&reaper);
    first.expect_code(0);
    wait_for_version(r.port, "v1");

    let source = format!("source={bad}");
    let failed = r.deploy("v2", &["--set", &source, "--set", "retries=3"]);
    r.track(&reaper);
    let failed = failed.expect_code(1);
    assert!(
        failed.stderr.contains("galley::rolled_back"),
        "{}",
        failed.stderr
    );
    assert!(
        flat(&failed.stderr).contains("current is v1 again"),
        "{}",
        failed.stderr
    );
    assert_eq!(r.current(), "releases/v1", "current points at v1 again");
    wait_for_version(r.port, "v1");
    assert!(!lock_file(&r.sb, "web").exists());

    let records = journal(&r.sb);
    assert_eq!(records.len(), 2, "{records:#?}");
    let last = &records[1];
    assert_eq!(field(last, "result"), "rolled_back", "{last}");
    assert_eq!(field(last, "release"), "v2", "{last}");
    assert_eq!(field(last, "strategy"), "releases", "{last}");
    assert!(
        field(last, "error").contains("rolled back"),
        "the record says why: {last}"
    );
}

#[test]
fn galley_rollback_goes_back_to_the_previous_release_without_fetching_it() {
    let r = Releases::new();
    let reaper = Reaper::new(&r.sb);
    for version in ["v1", "v2"] {
        let out = r.deploy(version, &[]);
        r.track(&reaper);
        out.expect_code(0);
        wait_for_version(r.port, version);
    }
    let v1_id = field(&journal(&r.sb)[0], "id").to_string();
    // A fetch writes the files anew (temp file + rename): a new inode.
    let version_file = format!("{}/releases/v1/VERSION", r.root);
    let inode = std::fs::metadata(&version_file).unwrap().ino();

    let back =
        r.sb.invoke(["rollback", "web", "--output", "plain"])
            .state("state")
            .run();
    r.track(&reaper);
    let back = back.expect_code(0);
    assert!(
        back.stdout.contains("rolling web back to v1"),
        "{}",
        back.stdout
    );
    assert!(
        !back.stdout.contains("fetch release"),
        "an existing release is not fetched again:\n{}",
        back.stdout
    );
    assert_eq!(
        std::fs::metadata(&version_file).unwrap().ino(),
        inode,
        "the release folder was not written again"
    );
    assert_eq!(r.current(), "releases/v1");
    wait_for_version(r.port, "v1");

    let records = journal(&r.sb);
    assert_eq!(records.len(), 3, "{records:#?}");
    let last = &records[2];
    assert_eq!(field(last, "result"), "ok", "{last}");
    assert_eq!(field(last, "release"), "v1", "{last}");
    assert_eq!(field(last, "rollback_to"), v1_id, "{last}");

    let json =
        r.sb.invoke(["history", "web", "--json"])
            .state("state")
            .run()
            .expect_code(0);
    let lines: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(lines.len(), 3, "{}", json.stdout);
    // Newest first, like the table.
    assert_eq!(field(&lines[0], "rollback_to"), v1_id);

    let one =
        r.sb.invoke(["history", "web", "--limit", "1"])
            .state("state")
            .run()
            .expect_code(0);
    let rows: Vec<&str> = one
        .stdout
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(rows.len(), 1, "{}", one.stdout);
    assert!(
        rows[0].starts_with(field(last, "id")),
        "the newest deploy: {}",
        one.stdout
    );
    assert!(rows[0].contains("releases"), "{}", one.stdout);
}

#[test]
fn in_place_records_its_deploy_and_respects_the_lock() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write("deploy.rhai", IN_PLACE_RECIPE);
    sb.write("app/app.py", &std::fs::read_to_string(DEMO_APP).unwrap());
    let dir = sb.join("app");
    let port = free_port();
    let sets = |version: &str| {
        vec![
            format!("dir={dir}"),
            format!("port={port}"),
            format!("version={version}"),
        ]
    };
    let deploy = |version: &str, extra: &[&str]| {
        let sets = sets(version);
        let mut args = vec!["run", "deploy.rhai", "--output", "plain"];
        for set in &sets {
            args.extend(["--set", set.as_str()]);
        }
        args.extend_from_slice(extra);
        let out = sb.invoke(&args).state("state").run();
        let pidfile = format!("{dir}/web.pid");
        if Path::new(&pidfile).exists() {
            reaper.track(read_pid(pidfile));
        }
        out
    };

    let first = deploy("v1", &[]).expect_code(0);
    wait_for_version(port, "v1");
    let pid = value_of(&first.stdout, "pid");
    assert_eq!(pid, read_pid(format!("{dir}/web.pid")).to_string());
    let records = journal(&sb);
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(field(&records[0], "result"), "ok");
    assert_eq!(field(&records[0], "strategy"), "in_place");
    assert_eq!(field(&records[0], "app"), "web");
    assert!(!lock_file(&sb, "web").exists());

    // Another deploy holds the lock: this one stops before it changes anything.
    let holder = r#"{
  "app": "web",
  "who": "alice@build-box",
  "machine": "build-box",
  "pid": 4242,
  "since": "2025-01-01T00:00:00Z",
  "recipe": "/srv/deploy.rhai",
  "task": "ship"
}"#;
    let lock = lock_file(&sb, "web");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, holder).unwrap();
    let locked = deploy("v2", &[]).expect_code(1);
    let report = flat(&locked.stderr);
    assert!(report.contains("galley::locked"), "{}", locked.stderr);
    assert!(
        report.contains("alice@build-box (pid 4242 on build-box)"),
        "the report names the holder: {}",
        locked.stderr
    );
    assert!(
        report.contains("galley unlock web"),
        "and says how to clear it: {}",
        locked.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        holder,
        "the holder's lock is left alone"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/VERSION")).unwrap(),
        "v1",
        "the update did not run"
    );
    assert!(serving(port).contains("version v1,"), "{}", serving(port));

    // --force-unlock takes it, warns, deploys, and releases it at the end.
    let forced = deploy("v2", &["--force-unlock"]).expect_code(0);
    let printed = format!("{}{}", forced.stdout, forced.stderr);
    assert!(
        printed.contains("warning: --force-unlock: taking the lock of web")
            && printed.contains("alice@build-box"),
        "{printed}"
    );
    wait_for_version(port, "v2");
    assert!(!lock.exists(), "the forced deploy released the lock");
    let records = journal(&sb);
    let last = records.last().unwrap();
    assert_eq!(field(last, "result"), "ok", "{last}");
    assert_eq!(field(last, "strategy"), "in_place", "{last}");
    assert_eq!(
        records
            .iter()
            .filter(|r| field(r, "result") == "ok")
            .count(),
        2,
        "{records:#?}"
    );

    // `galley unlock` removes a lock by hand and says whose it was.
    std::fs::write(&lock, holder).unwrap();
    let unlocked = sb
        .invoke(["unlock", "web"])
        .state("state")
        .run()
        .expect_code(0);
    assert!(
        unlocked.stdout.contains("removed the lock of web")
            && unlocked.stdout.contains("alice@build-box"),
        "{}",
        unlocked.stdout
    );
    assert!(!lock.exists());
    let again = sb
        .invoke(["unlock", "web"])
        .state("state")
        .run()
        .expect_code(0);
    assert!(
        again.stdout.contains("web is not locked"),
        "{}",
        again.stdout
    );
}

/// A `galley` started with its stdout collected line by line; killed when dropped.
struct Spawned {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Option<String>>>,
}

impl Spawned {
    fn new(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn galley");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                l.lock().unwrap().push(line);
            }
        });
        let stderr = Arc::new(Mutex::new(None));
        let mut pipe = child.stderr.take().unwrap();
        let e = stderr.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            *e.lock().unwrap() = Some(text);
        });
        Spawned {
            child,
            lines,
            stderr,
        }
    }

    fn pid(&self) -> i64 {
        i64::from(self.child.id())
    }

    fn stdout(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn wait_for_line(&self, line: &str) {
        wait_until(&format!("galley to print {line:?}"), LIMIT, || {
            self.lines.lock().unwrap().iter().any(|l| l == line)
        });
    }

    /// Waits for galley to exit; its exit code and everything it printed.
    fn finish(&mut self) -> Run {
        let mut status = None;
        wait_until("galley to exit", LIMIT, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        wait_until("galley's stderr", LIMIT, || {
            self.stderr.lock().unwrap().is_some()
        });
        let status = status.unwrap();
        Run {
            code: status
                .code()
                .unwrap_or_else(|| panic!("galley was killed by a signal: {status:?}")),
            stdout: self.stdout(),
            stderr: self.stderr.lock().unwrap().clone().unwrap_or_default(),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ctrl_c_during_a_deploy_releases_the_lock_and_records_the_interruption() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write(
        "recipe.rhai",
        r#"
let h = local();
deploy::run(#{ app: "web", host: h, strategy: "custom", sha: "abc123" }, || {
    step("wait for go", || {
        h.run(["sh", "-c", "echo waiting; while [ ! -e go ]; do sleep 0.05; done"]);
    });
});
log("went on");
"#,
    );
    let mut galley = Spawned::new(
        sb.invoke(["run", "recipe.rhai", "--output", "plain"])
            .state("state")
            .command(),
    );
    reaper.track(galley.pid());
    galley.wait_for_line("[local] waiting");
    let lock = lock_file(&sb, "web");
    let holder: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&lock).expect("the lock is held")).unwrap();
    assert_eq!(holder["pid"].as_i64(), Some(galley.pid()), "{holder}");
    assert_eq!(field(&holder, "app"), "web", "{holder}");

    let status = Command::new("kill")
        .args(["-INT", &galley.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = galley.finish();
    let printed = format!("{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.code, 130, "{printed}");
    assert!(!out.stdout.contains("went on"), "{printed}");
    assert!(!lock.exists(), "the lock was released: {printed}");

    let records = journal(&sb);
    assert_eq!(records.len(), 1, "{records:#?}");
    let last = &records[0];
    assert_eq!(field(last, "result"), "interrupted", "{last}");
    assert_eq!(field(last, "app"), "web", "{last}");
    assert_eq!(field(last, "sha"), "abc123", "{last}");
}

#[test]
fn a_deploy_over_ssh_holds_its_lock_and_journal_in_the_hosts_state_folder() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let app = "web";
    let state = sb.path().join("host-state");
    let remote_lock = state.join(format!("locks/{app}.lock"));
    let lock = remote_lock.display();
    let recipe = format!(
        r#"
let h = ssh::connect("{dest}", {opts_without_end}, state_dir: "{state}" }});
deploy::run(#{{ app: "{app}", host: h, strategy: "custom" }}, || {{
    print("during=" + h.exists("{lock}"));
    print("holder=" + h.read("{lock}").contains("\"app\": \"{app}\""));
}});
print("after=" + h.exists("{lock}"));
"#,
        dest = fleet.dest(0),
        opts_without_end = fleet.options().trim_end_matches(" }"),
        state = state.display(),
    );
    sb.write("recipe.rhai", &recipe);
    let out = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .state("state")
        .env("GALLEY_CONTROL_DIR", fleet.control_dir())
        .run()
        .expect_code(0);
    assert_eq!(value_of(&out.stdout, "during"), "true", "{}", out.stdout);
    assert_eq!(value_of(&out.stdout, "holder"), "true", "{}", out.stdout);
    assert_eq!(value_of(&out.stdout, "after"), "false", "{}", out.stdout);
    assert!(!remote_lock.exists(), "{} is left", remote_lock.display());
    assert!(
        !lock_file(&sb, app).exists(),
        "an ssh host's lock is not taken on this machine"
    );
    let records = journal(&sb);
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(field(&records[0], "result"), "ok");
    assert_eq!(field(&records[0], "app"), app);
    assert_eq!(records[0]["hosts"], serde_json::json!([fleet.dest(0)]));
    // The host keeps the same record in its own journal.
    assert_eq!(
        crate::support::journal_in(&state),
        records,
        "the host's journal has the same record"
    );
}

#[test]
fn a_dry_run_of_a_releases_deploy_creates_nothing() {
    let r = Releases::new();
    let reaper = Reaper::new(&r.sb);
    let before = listing(r.sb.path());
    let out = r.deploy("v1", &["--dry-run"]);
    r.track(&reaper);
    assert_eq!(
        listing(r.sb.path()),
        before,
        "no release, no lock, no journal:\n{}{}",
        out.stdout,
        out.stderr
    );
    assert!(!Path::new(&r.root).exists());
    assert!(!state_dir(&r.sb).join("journal.jsonl").exists());
    assert!(!lock_file(&r.sb, "web").exists());
    let out = out.expect_code(0);
    assert!(
        out.stdout.contains("would symlink") && out.stdout.contains("releases/v1"),
        "it says what it would do:\n{}",
        out.stdout
    );

    // After a real deploy, a dry run of the next one leaves it in place.
    let real = r.deploy("v1", &[]);
    r.track(&reaper);
    real.expect_code(0);
    wait_for_version(r.port, "v1");
    let out = r.deploy("v2", &["--dry-run"]);
    r.track(&reaper);
    let out = out.expect_code(0);
    assert!(
        out.stdout.contains("would symlink") && out.stdout.contains("releases/v2"),
        "{}",
        out.stdout
    );
    assert_eq!(r.releases(), ["v1"]);
    assert_eq!(r.current(), "releases/v1");
    assert_eq!(journal(&r.sb).len(), 1);
    assert!(!lock_file(&r.sb, "web").exists());
    assert!(
        serving(r.port).contains("version v1,"),
        "{}",
        serving(r.port)
    );
}

#[test]
fn a_dry_run_of_an_in_place_redeploy_leaves_the_running_app_alone() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write("deploy.rhai", IN_PLACE_RECIPE);
    sb.write("app/app.py", &std::fs::read_to_string(DEMO_APP).unwrap());
    let dir = sb.join("app");
    let port = free_port();
    let deploy = |version: &str, extra: &[&str]| {
        let sets = [
            format!("dir={dir}"),
            format!("port={port}"),
            format!("version={version}"),
        ];
        let mut args = vec!["run", "deploy.rhai", "--output", "plain"];
        for set in &sets {
            args.extend(["--set", set.as_str()]);
        }
        args.extend_from_slice(extra);
        let out = sb.invoke(&args).state("state").run();
        let pidfile = format!("{dir}/web.pid");
        if Path::new(&pidfile).exists() {
            reaper.track(read_pid(pidfile));
        }
        out
    };
    deploy("v1", &[]).expect_code(0);
    wait_for_version(port, "v1");
    let pid = read_pid(format!("{dir}/web.pid"));

    let out = deploy("v2", &["--dry-run"]);
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/VERSION")).unwrap(),
        "v1",
        "{}{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(read_pid(format!("{dir}/web.pid")), pid);
    assert!(
        crate::support::alive(pid),
        "the running app was not stopped"
    );
    assert!(serving(port).contains("version v1,"), "{}", serving(port));
    assert_eq!(journal(&sb).len(), 1, "a dry run writes no journal record");
    assert!(!lock_file(&sb, "web").exists());
    let out = out.expect_code(0);
    assert!(
        out.stdout.contains("would signal TERM to web") && out.stdout.contains("would start web"),
        "it says it would restart the app:\n{}",
        out.stdout
    );
}
