//! `galley/rolling`, `galley/canary` and `galley/blue_green` end to end on fleets: three real
//! sshd "hosts" on loopback, each running the demo app on a port and in a folder of its own,
//! behind one local nginx; blue/green of busybox httpd containers on the local Docker Engine; and
//! blue/green of the demo app on an ssh host, health-checked through the ssh tunnel. Requests go
//! through nginx from a load client while the deploys run.
//!
//! Every ssh host here has a login folder of its own (its root): the fleet's sshd all run on
//! this machine as root, and would otherwise share `/root`, hence `~/.galley/locks/APP.lock`, so
//! that a deploy over several of them would find its own lock on the second host. A `BASH_ENV`
//! script that the sshd set in every session (`SetEnv`, with `SHLVL=1` so that bash reads it
//! instead of root's `~/.bashrc`) changes into the root of the host whose port the session came
//! in on, before the command (or sftp-server) runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::docker::{self, base_image, cli, unique, Cleanup};
use crate::support::nginx::{Load, LoadStats, Nginx};
use crate::support::sshd::Fleet;
use crate::support::{
    alive, all_pids, flat, free_port, http_get, kill_group, stat_ids, wait_until, Reaper, Run,
    Sandbox,
};

const LIMIT: Duration = Duration::from_secs(60);
const DEMO_APP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/demo/app.py");

/// A Rhai string literal holding exactly `text`.
fn lit(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Kills, when dropped, every process whose working directory is inside a folder: the apps that
/// the recipes started on the ssh hosts (detached, in their own sessions).
struct KillInside(PathBuf);

impl Drop for KillInside {
    fn drop(&mut self) {
        for pid in all_pids() {
            let inside = std::fs::read_link(format!("/proc/{pid}/cwd"))
                .map(|cwd| cwd.starts_with(&self.0))
                .unwrap_or(false);
            if !inside || !alive(pid) {
                continue;
            }
            if stat_ids(pid).is_some_and(|(_, pgid, _)| pgid == pid) {
                kill_group(pid);
            }
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Closes, when dropped, every ssh master left in a control folder.
struct CloseMasters(PathBuf);

impl Drop for CloseMasters {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some() {
                continue;
            }
            let _ = Command::new("ssh")
                .arg("-S")
                .arg(&path)
                .args(["-O", "exit", "none"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Starts `n` sshd whose sessions start in the host's own root (see the module's doc), and
/// checks that they do.
fn fleet_with_own_login_folders(sb: &Sandbox, n: usize) -> Fleet {
    let script = sb.path().join("login.sh");
    std::fs::write(&script, "").unwrap();
    // bash reads BASH_ENV only when it does not read ~/.bashrc, which it does for a command
    // sent over ssh unless SHLVL says that it is not the first shell.
    let fleet = Fleet::start_with(
        n,
        &[format!("SetEnv SHLVL=1 BASH_ENV={}", script.display())],
    );
    let mut text = String::from("case \"${SSH_CONNECTION##* }\" in\n");
    for host in &fleet.hosts {
        text.push_str(&format!(
            "    {}) cd '{}' ;;\n",
            host.port,
            host.root.display()
        ));
    }
    text.push_str("esac\nunset BASH_ENV\n");
    std::fs::write(&script, text).unwrap();
    for (i, host) in fleet.hosts.iter().enumerate() {
        let out = fleet.ssh(i, "pwd");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            host.root.display().to_string(),
            "host {i} logs in to its own root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fleet
}

/// The version the demo app (or the test's httpd) answers with on `port` ("" when nothing
/// answers or the answer names no version).
fn version_at(port: u16) -> String {
    http_get(port, "/")
        .unwrap_or_default()
        .strip_prefix("hello from the galley demo app, version ")
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_default()
        .to_string()
}

/// The `server ...;` lines of an upstream file, trimmed.
fn upstream_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("server "))
        .map(str::to_string)
        .collect()
}

/// The addresses an upstream file lists, sorted.
fn upstream_servers(path: &Path) -> Vec<String> {
    let mut servers: Vec<String> = upstream_lines(path)
        .iter()
        .filter_map(|l| l.strip_prefix("server "))
        .filter_map(|rest| rest.trim_end_matches(';').split_whitespace().next())
        .map(str::to_string)
        .collect();
    servers.sort();
    servers
}

/// Every journal record in `state`, oldest first (each line must be JSON).
fn journal(state: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(state.join("journal.jsonl")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("journal line is not JSON ({e}): {l:?}"))
        })
        .collect()
}

/// Fails with the load's details unless no request failed (and some were served).
fn assert_no_failures(what: &str, stats: &LoadStats) {
    println!("{what}: {stats}");
    assert_eq!(stats.failures, 0, "{what}: requests failed: {stats}");
    assert!(stats.requests > 0, "{what}: no request was served: {stats}");
}

/// A load client through nginx on `port` that has already been served a few requests.
fn load(port: u16) -> Load {
    let load = Load::start(port, 3, 3);
    wait_until("the load client's first requests", LIMIT, || {
        load.requests() >= 20
    });
    load
}

/// Prints a run's output (shown when the test fails) and returns it.
fn shown(run: Run) -> Run {
    println!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        run.stdout, run.stderr
    );
    run
}

// ---------------------------------------------------------------------------------------------
// rolling and canary over three ssh hosts

/// One recipe for both strategies. Every host runs the demo app as the process `web` in its own
/// root, on its own port. `--set strategy=rolling|canary`, `version=V` the new version, `old=V`
/// the version a canary rollback restarts; `fail=HOST` makes the update of that host throw
/// before it touches anything, `broken=HOST` gives that host a new version that never listens
/// (`version=broken` does that for every host); `batch` is rolling's (default 1);
/// `probe=pass|fail`, `window`, `interval` are the canary's (its probe prints the upstream file
/// as `probe_upstream=...`).
const FLEET_RECIPE: &str = r#"
import "galley/rolling" as rolling;
import "galley/canary" as canary;

let hs = ssh::hosts([@DESTS@], @OPTS@);
let ports = #{ @PORTS@ };
let roots = #{ @ROOTS@ };
let ng = local().nginx(@NGINX@);
let version = params.version;
let old = params.old ?? "";
let fail = params.fail ?? "";
let broken = params.broken ?? "";

let svc = |h, v| {
    let cmd = if v == "broken" {
        ["python3", "-c", "import time; time.sleep(3600)"]
    } else {
        ["python3", @APP@]
    };
    h.process("web", #{ cmd: cmd, dir: roots[h.name], env: #{ PORT: `${ports[h.name]}`, APP_VERSION: v } })
};
let opts = #{
    app: "web", hosts: hs, nginx: ng, upstream: "web",
    addr: |h| `127.0.0.1:${ports[h.name]}`,
    update: |h| {
        if h.name == fail {
            throw `the update of ${h.name} failed on purpose`;
        }
        let v = if h.name == broken { "broken" } else { version };
        let s = svc.call(h, v);
        s.stop();
        s.start();
    },
    health: |h| `http://127.0.0.1:${ports[h.name]}/health`,
    health_options: #{ retries: parse_int(params.retries ?? "300"), interval: "100ms" },
    sha: version,
};
if params.strategy == "rolling" {
    opts.batch = parse_int(params.batch ?? "1");
    print(`updated=${rolling::deploy(opts)}`);
} else {
    opts.rollback = |h| {
        let s = svc.call(h, old);
        s.stop();
        s.start();
        print(`rolled back ${h.name} to ${old}`);
    };
    opts.weight = 1;
    opts.window = params.window ?? "2s";
    opts.interval = params.interval ?? "500ms";
    let pass = params.probe == "pass";
    opts.probe = || {
        let text = local().read(@UPSTREAM_FILE@);
        text.replace("\n", " ");
        print("probe_upstream=" + text);
        pass
    };
    print(`updated=${canary::deploy(opts)}`);
}
"#;

/// Three ssh hosts, each with a port for its app, behind one local nginx; a state folder.
/// Fields drop in order: galley runs, then the hosts' apps, the ssh masters, nginx, the sshd,
/// and the sandbox last.
struct Hosts {
    reaper: Reaper,
    _apps: KillInside,
    _masters: CloseMasters,
    nginx: Nginx,
    fleet: Fleet,
    ports: Vec<u16>,
    state: PathBuf,
    sb: Sandbox,
}

impl Hosts {
    fn new() -> Hosts {
        let sb = Sandbox::new();
        let reaper = Reaper::new(&sb);
        let fleet = fleet_with_own_login_folders(&sb, 3);
        let apps = KillInside(fleet.dir.path().canonicalize().unwrap());
        let masters = CloseMasters(fleet.control_dir());
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let nginx = Nginx::start(sb.path(), "web", ports[0]);
        let dests: Vec<String> = (0..3).map(|i| lit(&fleet.dest(i))).collect();
        let map = |value: &dyn Fn(usize) -> String| -> String {
            (0..3)
                .map(|i| format!("{}: {}", lit(&fleet.dest(i)), value(i)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let recipe = FLEET_RECIPE
            .replace("@DESTS@", &dests.join(", "))
            .replace("@OPTS@", &fleet.options())
            .replace("@PORTS@", &map(&|i| ports[i].to_string()))
            .replace(
                "@ROOTS@",
                &map(&|i| lit(&fleet.hosts[i].root.to_string_lossy())),
            )
            .replace("@NGINX@", &nginx.options())
            .replace("@APP@", &lit(DEMO_APP))
            .replace(
                "@UPSTREAM_FILE@",
                &lit(&nginx.upstream_file("web").to_string_lossy()),
            );
        sb.write("recipe.rhai", &recipe);
        Hosts {
            reaper,
            _apps: apps,
            _masters: masters,
            nginx,
            fleet,
            ports,
            state: sb.path().join("state"),
            sb,
        }
    }

    /// `galley run recipe.rhai --output plain --set S...`, not started yet.
    fn command(&self, sets: &[String]) -> Command {
        let mut cmd = self.fleet.galley(&self.sb);
        cmd.env("GALLEY_STATE_DIR", &self.state)
            .args(["run", "recipe.rhai", "--output", "plain"]);
        for set in sets {
            cmd.args(["--set", set]);
        }
        cmd
    }

    /// Runs the recipe to completion.
    fn deploy(&self, sets: &[String]) -> Run {
        let child: Child = self
            .command(sets)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run galley");
        self.reaper.track(child.id() as i64);
        shown(Run::from(
            child.wait_with_output().expect("wait for galley"),
        ))
    }

    /// The name (destination) of host `i`, as the recipe and the journal know it.
    fn name(&self, i: usize) -> String {
        self.fleet.dest(i)
    }

    /// `127.0.0.1:PORT` of host `i`'s app, as the upstream lists it.
    fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i])
    }

    /// The sorted addresses of hosts `which`.
    fn addrs(&self, which: &[usize]) -> Vec<String> {
        let mut addrs: Vec<String> = which.iter().map(|i| self.addr(*i)).collect();
        addrs.sort();
        addrs
    }

    /// The pid in host `i`'s pidfile of the app (None without one).
    fn pid(&self, i: usize) -> Option<i64> {
        std::fs::read_to_string(self.fleet.hosts[i].root.join("web.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The version host `i`'s app answers with.
    fn version(&self, i: usize) -> String {
        version_at(self.ports[i])
    }

    fn upstream_file(&self) -> PathBuf {
        self.nginx.upstream_file("web")
    }

    /// Deploys `version` to all three with `rolling` (how every test starts) and waits until
    /// each host and nginx serve it.
    fn first_deploy(&self, version: &str) {
        self.deploy(&["strategy=rolling".into(), format!("version={version}")])
            .expect_code(0);
        for i in 0..3 {
            assert_eq!(self.version(i), version, "host {i} after the first deploy");
        }
        assert_eq!(self.upstream_servers(), self.addrs(&[0, 1, 2]));
    }

    fn upstream_servers(&self) -> Vec<String> {
        upstream_servers(&self.upstream_file())
    }

    fn last_record(&self) -> serde_json::Value {
        journal(&self.state).pop().expect("a journal record")
    }

    /// No host (and not this machine) keeps a lock of `web` after a deploy.
    fn assert_unlocked(&self) {
        for (i, host) in self.fleet.hosts.iter().enumerate() {
            let lock = host.root.join(".galley/locks/web.lock");
            assert!(!lock.exists(), "host {i} keeps {}", lock.display());
        }
        assert!(!self.state.join("locks/web.lock").exists());
    }
}

#[test]
fn rolling_updates_three_hosts_one_by_one_under_load_without_a_lost_request() {
    let hosts = Hosts::new();
    hosts.first_deploy("v1");
    let records_before = journal(&hosts.state).len();
    let load = load(hosts.nginx.port);
    let run = hosts
        .deploy(&["strategy=rolling".into(), "version=v2".into()])
        .expect_code(0);
    let stats = load.finish();
    assert_no_failures("a rolling deploy of 3 hosts under load", &stats);
    assert!(run.stdout.contains("updated=3"), "{}", run.stdout);
    for i in 0..3 {
        assert_eq!(hosts.version(i), "v2", "host {i}");
    }
    assert_eq!(
        hosts.upstream_servers(),
        hosts.addrs(&[0, 1, 2]),
        "every host is back in the upstream"
    );
    let lines = upstream_lines(&hosts.upstream_file());
    assert!(lines.iter().all(|l| !l.contains("weight")), "{lines:?}");
    let records = journal(&hosts.state);
    assert_eq!(
        records.len(),
        records_before + 1,
        "one record: {records:#?}"
    );
    let record = records.last().unwrap();
    assert_eq!(record["result"], "ok", "{record}");
    assert_eq!(record["strategy"], "rolling", "{record}");
    assert_eq!(record["app"], "web", "{record}");
    assert_eq!(record["sha"], "v2", "{record}");
    assert_eq!(
        record["hosts"],
        serde_json::json!([hosts.name(0), hosts.name(1), hosts.name(2)]),
        "{record}"
    );
    hosts.assert_unlocked();
}

#[test]
fn rolling_in_batches_of_two_updates_both_hosts_of_a_batch_at_once() {
    let hosts = Hosts::new();
    hosts.first_deploy("v1");
    let load = load(hosts.nginx.port);
    let run = hosts
        .deploy(&[
            "strategy=rolling".into(),
            "version=v2".into(),
            "batch=2".into(),
        ])
        .expect_code(0);
    let stats = load.finish();
    assert_no_failures("a rolling deploy in batches of 2 under load", &stats);
    assert!(run.stdout.contains("updated=3"), "{}", run.stdout);
    for i in 0..3 {
        assert_eq!(hosts.version(i), "v2", "host {i}");
    }
    assert_eq!(hosts.upstream_servers(), hosts.addrs(&[0, 1, 2]));
    assert_eq!(hosts.last_record()["result"], "ok");
    hosts.assert_unlocked();
}

/// What the hosts look like after a rolling deploy of v2 that failed on host 1 (batch 2).
fn assert_stopped_at_host_1(hosts: &Hosts, run: &Run, third_pid: Option<i64>) {
    assert_eq!(hosts.version(0), "v2", "the first batch's host was updated");
    assert_eq!(
        hosts.version(2),
        "v1",
        "the third host was never updated:\n{}",
        run.stdout
    );
    assert_eq!(
        hosts.pid(2),
        third_pid,
        "the third host's app was not restarted"
    );
    assert_eq!(
        hosts.upstream_servers(),
        hosts.addrs(&[0, 2]),
        "the failing host stays out of the upstream"
    );
    let record = hosts.last_record();
    assert_eq!(record["result"], "failed", "{record}");
    assert_eq!(record["strategy"], "rolling", "{record}");
    hosts.assert_unlocked();
}

#[test]
fn rolling_stops_at_a_host_whose_update_throws_and_leaves_it_out_of_the_upstream() {
    let hosts = Hosts::new();
    hosts.first_deploy("v1");
    let (second_pid, third_pid) = (hosts.pid(1), hosts.pid(2));
    assert!(third_pid.is_some());
    let load = load(hosts.nginx.port);
    let run = hosts
        .deploy(&[
            "strategy=rolling".into(),
            "version=v2".into(),
            format!("fail={}", hosts.name(1)),
        ])
        .expect_code(1);
    let stats = load.finish();
    assert_no_failures("a rolling deploy failing at host 1 under load", &stats);
    assert!(
        flat(&run.stderr).contains("failed on purpose"),
        "the report is the update's error:\n{}",
        run.stderr
    );
    assert_stopped_at_host_1(&hosts, &run, third_pid);
    // The update threw before it touched the app: host 1 still runs v1, out of the upstream.
    assert_eq!(hosts.pid(1), second_pid);
    assert_eq!(hosts.version(1), "v1");
}

#[test]
fn rolling_stops_at_a_host_whose_new_version_never_gets_healthy() {
    let hosts = Hosts::new();
    hosts.first_deploy("v1");
    let third_pid = hosts.pid(2);
    assert!(third_pid.is_some());
    let load = load(hosts.nginx.port);
    let run = hosts
        .deploy(&[
            "strategy=rolling".into(),
            "version=v2".into(),
            format!("broken={}", hosts.name(1)),
            "retries=10".into(),
        ])
        .expect_code(1);
    let stats = load.finish();
    assert_no_failures("a rolling deploy failing at host 1 under load", &stats);
    let report = flat(&run.stderr);
    assert!(report.contains("galley::health"), "{}", run.stderr);
    assert!(
        report.contains(&format!("/health on {}", hosts.name(1))),
        "the report names the check on host 1:\n{}",
        run.stderr
    );
    assert_stopped_at_host_1(&hosts, &run, third_pid);
    assert_eq!(hosts.version(1), "", "host 1 runs the broken version");
}

/// The canary's `probe_upstream=` lines: the upstream file as the probe saw it in the window.
fn probe_views(run: &Run) -> Vec<String> {
    run.stdout
        .lines()
        .filter_map(|l| l.split_once("probe_upstream=").map(|(_, v)| v.to_string()))
        .collect()
}

/// A canary deploy of v2 whose probe passes, with the window and interval given.
fn canary_goes_through(window: &str, interval: &str) {
    let hosts = Hosts::new();
    hosts.first_deploy("v1");
    let (second_pid, third_pid) = (hosts.pid(1), hosts.pid(2));
    let run = hosts
        .deploy(&[
            "strategy=canary".into(),
            "version=v2".into(),
            "old=v1".into(),
            "probe=pass".into(),
            format!("window={window}"),
            format!("interval={interval}"),
        ])
        .expect_code(0);
    // During the window, the canary (host 0) had weight 1 against the others' 10.
    let views = probe_views(&run);
    assert!(
        views.len() >= 2,
        "the probe ran through the {window} window every {interval}:\n{}",
        run.stdout
    );
    for view in &views {
        assert!(
            view.contains(&format!("server {} weight=1;", hosts.addr(0))),
            "the canary has weight 1 while it is watched: {view}"
        );
        for i in [1, 2] {
            assert!(
                view.contains(&format!("server {} weight=10;", hosts.addr(i))),
                "host {i} has weight 10 while the canary is watched: {view}"
            );
        }
    }
    assert!(run.stdout.contains("updated=3"), "{}", run.stdout);
    for i in 0..3 {
        assert_eq!(hosts.version(i), "v2", "host {i}");
    }
    assert_ne!(hosts.pid(1), second_pid);
    assert_ne!(hosts.pid(2), third_pid);
    assert_eq!(hosts.upstream_servers(), hosts.addrs(&[0, 1, 2]));
    let lines = upstream_lines(&hosts.upstream_file());
    assert!(
        lines.iter().all(|l| !l.contains("weight")),
        "the final upstream has no weights: {lines:?}"
    );
    let record = hosts.last_record();
    assert_eq!(record["result"], "ok", "{record}");
    assert_eq!(record["strategy"], "canary", "{record}");
    assert_eq!(record["sha"], "v2", "{record}");
    assert_eq!(
        record["hosts"],
        serde_json::json!([hosts.name(0), hosts.name(1), hosts.name(2)]),
        "{record}"
    );
    hosts.assert_unlocked();
}

#[test]
fn canary_watches_the_canary_at_weight_1_then_updates_the_others() {
    canary_goes_through("2s", "500ms");
}

#[test]
fn canary_with_a_whole_second_interval_goes_through() {
    canary_goes_through("2s", "1s");
}

/// Asserts the state after a canary of v2 on host 0 that was rolled back: host 0 serves v1 again,
/// hosts 1 and 2 were never touched.
fn assert_canary_rolled_back(hosts: &Hosts, run: &Run, pids: (Option<i64>, Option<i64>)) {
    assert!(
        run.stdout
            .contains(&format!("rolled back {} to v1", hosts.name(0))),
        "the rollback closure ran for the canary:\n{}",
        run.stdout
    );
    assert_eq!(
        hosts.version(0),
        "v1",
        "the canary serves the old version again"
    );
    assert_eq!(
        (hosts.pid(1), hosts.pid(2)),
        pids,
        "hosts 1 and 2 were not restarted"
    );
    assert_eq!(hosts.version(1), "v1");
    assert_eq!(hosts.version(2), "v1");
    let record = hosts.last_record();
    assert_eq!(record["result"], "rolled_back", "{record}");
    assert_eq!(record["strategy"], "canary", "{record}");
    hosts.assert_unlocked();
}

#[test]
fn canary_whose_probe_fails_is_rolled_back_and_the_others_never_change() {
    let hosts = Hosts::new();
    hosts.first_deploy("v1");
    let pids = (hosts.pid(1), hosts.pid(2));
    let run = hosts
        .deploy(&[
            "strategy=canary".into(),
            "version=v2".into(),
            "old=v1".into(),
            "probe=fail".into(),
            "window=2s".into(),
            "interval=1s".into(),
        ])
        .expect_code(1);
    let report = flat(&run.stderr);
    assert!(report.contains("galley::rolled_back"), "{}", run.stderr);
    assert!(
        report.contains("the error-rate probe failed"),
        "the report says why:\n{}",
        run.stderr
    );
    assert!(
        !probe_views(&run).is_empty(),
        "the probe ran:\n{}",
        run.stdout
    );
    assert_canary_rolled_back(&hosts, &run, pids);
    // The canary is out of the upstream; the others serve.
    assert_eq!(hosts.upstream_servers(), hosts.addrs(&[1, 2]));
}

#[test]
fn canary_whose_new_version_never_gets_healthy_is_rolled_back() {
    let hosts = Hosts::new();
    hosts.first_deploy("v1");
    let pids = (hosts.pid(1), hosts.pid(2));
    let run = hosts
        .deploy(&[
            "strategy=canary".into(),
            "version=broken".into(),
            "old=v1".into(),
            "probe=pass".into(),
            "window=2s".into(),
            "interval=1s".into(),
            "retries=10".into(),
        ])
        .expect_code(1);
    assert!(
        flat(&run.stderr).contains("galley::health")
            || flat(&run.stderr).contains("galley::rolled_back"),
        "{}",
        run.stderr
    );
    assert!(
        probe_views(&run).is_empty(),
        "the canary never got to the window:\n{}",
        run.stdout
    );
    assert_canary_rolled_back(&hosts, &run, pids);
}

// ---------------------------------------------------------------------------------------------
// blue/green of containers on this machine

/// Blue/green of busybox httpd containers, one image per version, behind the fixture's nginx.
/// `--set version=V` picks the image; each colour is the container `@NAME@-COLOUR`.
const DOCKER_RECIPE: &str = r#"
import "galley/blue_green" as blue_green;

let h = local();
let d = h.docker();
let images = #{ @IMAGES@ };
let version = params.version;
let image = images[version];
let colour = blue_green::deploy(#{
    app: "web", host: h, nginx: h.nginx(@NGINX@), upstream: "web",
    colours: #{ blue: @BLUE@, green: @GREEN@ },
    start: |c, p| {
        d.rm(@NAME@ + "-" + c, #{ force: true });
        d.run(#{ name: @NAME@ + "-" + c, image: image, ports: [`127.0.0.1:${p}:80`] });
    },
    stop: |c, p| d.rm(@NAME@ + "-" + c, #{ force: true }),
    health: "/",
    health_options: #{ contains: `version ${version},`, retries: 300, interval: "100ms" },
    sha: version, image: image,
});
print(`serving=${colour}`);
"#;

/// The state of a container as the docker CLI sees it, or "missing".
fn container_state(name: &str) -> String {
    let out = docker::docker(&["inspect", "--format", "{{.State.Status}}", name]);
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    } else {
        "missing".into()
    }
}

#[test]
fn blue_green_of_containers_switches_twice_under_load_and_removes_the_old_one() {
    if !docker::available() {
        eprintln!("note: the Docker daemon does not answer (`docker version` fails); skipping");
        return;
    }
    let cleanup = Cleanup::new();
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let name = unique("bg");
    for colour in ["blue", "green"] {
        cleanup.container(&format!("{name}-{colour}"));
    }
    let repository = unique("bg-web");
    let mut images = Vec::new();
    for version in ["v1", "v2", "v3"] {
        let tag = cleanup.image(&format!("{repository}:{version}"));
        let dir = format!("image-{version}");
        sb.write(
            &format!("{dir}/Dockerfile"),
            &format!(
                "FROM {}\nCOPY index.html /www/index.html\n\
                 CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n",
                base_image()
            ),
        );
        sb.write(
            &format!("{dir}/index.html"),
            &format!("hello from the galley demo app, version {version}, commit none\n"),
        );
        cli(&["build", "-q", "-t", &tag, &sb.join(&dir)]);
        images.push(format!("{version}: {}", lit(&tag)));
    }
    let (blue, green) = (free_port(), free_port());
    let nginx = Nginx::start(sb.path(), "web", blue);
    let recipe = DOCKER_RECIPE
        .replace("@IMAGES@", &images.join(", "))
        .replace("@NGINX@", &nginx.options())
        .replace("@BLUE@", &blue.to_string())
        .replace("@GREEN@", &green.to_string())
        .replace("@NAME@", &lit(&name));
    sb.write("recipe.rhai", &recipe);
    let state = sb.path().join("state");
    let deploy = |version: &str| -> Run {
        let child = sb
            .galley()
            .env("GALLEY_STATE_DIR", &state)
            .args(["run", "recipe.rhai", "--output", "plain", "--set"])
            .arg(format!("version={version}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run galley");
        reaper.track(child.id() as i64);
        shown(Run::from(
            child.wait_with_output().expect("wait for galley"),
        ))
    };
    let served = || version_at(nginx.port);

    // The fixture's upstream names blue, where nothing runs: the first deploy goes to green.
    let run = deploy("v1").expect_code(0);
    assert!(run.stdout.contains("serving=green"), "{}", run.stdout);
    assert_eq!(served(), "v1");
    assert_eq!(container_state(&format!("{name}-green")), "running");
    assert_eq!(container_state(&format!("{name}-blue")), "missing");

    let load = load(nginx.port);
    for (version, new, old) in [("v2", "blue", "green"), ("v3", "green", "blue")] {
        let run = deploy(version).expect_code(0);
        assert!(
            run.stdout.contains(&format!("serving={new}")),
            "{version} goes to {new}:\n{}",
            run.stdout
        );
        assert_eq!(served(), version);
        assert_eq!(container_state(&format!("{name}-{new}")), "running");
        assert_eq!(
            container_state(&format!("{name}-{old}")),
            "missing",
            "the old colour's container was removed"
        );
        assert_eq!(
            upstream_servers(&nginx.upstream_file("web")),
            [format!(
                "127.0.0.1:{}",
                if new == "blue" { blue } else { green }
            )]
        );
    }
    let stats = load.finish();
    assert_no_failures("two container blue/green deploys under load", &stats);
    assert!(
        stats.versions.contains_key("v2"),
        "the load saw v2 in between: {stats}"
    );
    let records = journal(&state);
    assert_eq!(records.len(), 3, "{records:#?}");
    for (record, version) in records.iter().zip(["v1", "v2", "v3"]) {
        assert_eq!(record["result"], "ok", "{record}");
        assert_eq!(record["strategy"], "blue_green", "{record}");
        assert_eq!(record["sha"], version, "{record}");
        assert_eq!(
            record["image"].as_str(),
            Some(format!("{repository}:{version}").as_str()),
            "{record}"
        );
    }
    assert!(!state.join("locks/web.lock").exists());
}

// ---------------------------------------------------------------------------------------------
// blue/green on an ssh host

/// Blue/green of the demo app as processes on an ssh host, nginx on this machine. The version
/// `broken` starts a process that never listens; `--set retries=N` bounds its health check.
const SSH_BLUE_GREEN_RECIPE: &str = r#"
import "galley/blue_green" as blue_green;

let h = ssh::connect(@DEST@, @OPTS@);
let version = params.version;
let cmd = if version == "broken" {
    ["python3", "-c", "import time; time.sleep(3600)"]
} else {
    ["python3", @APP@]
};
let svc = |c, p| h.process(`web-${c}`, #{
    cmd: cmd, dir: @ROOT@, env: #{ PORT: `${p}`, APP_VERSION: version },
});
let colour = blue_green::deploy(#{
    app: "web", host: h, nginx: local().nginx(@NGINX@), upstream: "web",
    colours: #{ blue: @BLUE@, green: @GREEN@ },
    start: |c, p| { let s = svc.call(c, p); s.stop(); s.start(); },
    stop: |c, p| svc.call(c, p).stop(),
    health: "/health",
    health_options: #{ retries: parse_int(params.retries ?? "300"), interval: "100ms" },
    sha: version,
});
print(`serving=${colour}`);
"#;

#[test]
fn blue_green_on_an_ssh_host_switches_to_the_new_version() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let fleet = fleet_with_own_login_folders(&sb, 1);
    let _apps = KillInside(fleet.dir.path().canonicalize().unwrap());
    let _masters = CloseMasters(fleet.control_dir());
    let root = fleet.hosts[0].root.clone();
    let (blue, green) = (free_port(), free_port());
    let nginx = Nginx::start(sb.path(), "web", blue);
    let recipe = SSH_BLUE_GREEN_RECIPE
        .replace("@DEST@", &lit(&fleet.dest(0)))
        .replace("@OPTS@", &fleet.options())
        .replace("@APP@", &lit(DEMO_APP))
        .replace("@ROOT@", &lit(&root.to_string_lossy()))
        .replace("@NGINX@", &nginx.options())
        .replace("@BLUE@", &blue.to_string())
        .replace("@GREEN@", &green.to_string());
    sb.write("recipe.rhai", &recipe);
    let state = sb.path().join("state");
    let deploy_with = |version: &str, retries: &str| -> Run {
        let child = fleet
            .galley(&sb)
            .env("GALLEY_STATE_DIR", &state)
            .args(["run", "recipe.rhai", "--output", "plain", "--set"])
            .arg(format!("version={version}"))
            .args(["--set", &format!("retries={retries}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run galley");
        reaper.track(child.id() as i64);
        shown(Run::from(
            child.wait_with_output().expect("wait for galley"),
        ))
    };
    let deploy = |version: &str| deploy_with(version, "300");
    let pid_of = |colour: &str| -> Option<i64> {
        std::fs::read_to_string(root.join(format!("web-{colour}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    };

    let run = deploy("v1").expect_code(0);
    assert!(run.stdout.contains("serving=green"), "{}", run.stdout);
    assert_eq!(version_at(nginx.port), "v1");
    let green_pid = pid_of("green").expect("green's pidfile on the host");

    let load = load(nginx.port);
    let run = deploy("v2").expect_code(0);
    let stats = load.finish();
    assert_no_failures("a blue/green deploy on an ssh host under load", &stats);
    assert!(run.stdout.contains("serving=blue"), "{}", run.stdout);
    assert_eq!(version_at(nginx.port), "v2");
    assert_eq!(version_at(blue), "v2");
    assert_eq!(
        upstream_servers(&nginx.upstream_file("web")),
        [format!("127.0.0.1:{blue}")]
    );
    wait_until("the old colour (green) to be stopped", LIMIT, || {
        !alive(green_pid)
    });
    assert!(pid_of("green").is_none(), "green's pidfile is removed");
    let blue_pid = pid_of("blue").expect("blue's pidfile on the host");
    assert_eq!(
        std::fs::read_link(format!("/proc/{blue_pid}/cwd")).unwrap(),
        root.canonicalize().unwrap(),
        "blue runs in the host's folder"
    );
    let records = journal(&state);
    assert_eq!(records.len(), 2, "{records:#?}");
    let record = &records[1];
    assert_eq!(record["result"], "ok", "{record}");
    assert_eq!(record["strategy"], "blue_green", "{record}");
    assert_eq!(record["sha"], "v2", "{record}");
    assert_eq!(
        record["hosts"],
        serde_json::json!([fleet.dest(0)]),
        "{record}"
    );
    assert!(
        !root.join(".galley/locks/web.lock").exists(),
        "the lock on the host is released"
    );

    // A version that never listens: the strategy checks it on the host, through a tunnel (the
    // report names the host and the tunnel's own port), stops it, and blue keeps serving.
    let run = deploy_with("broken", "5").expect_code(1);
    let report = flat(&run.stderr);
    assert!(report.contains("galley::health"), "{}", run.stderr);
    let checked = format!("http://127.0.0.1:{green}/health on {}", fleet.dest(0));
    assert!(
        report.contains(&checked),
        "the check ran on the host ({checked}):\n{}",
        run.stderr
    );
    let tunnel = report
        .split("(http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|port| port.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("the report names the URL it requested:\n{}", run.stderr));
    assert_ne!(tunnel, green, "the request went to the tunnel's local end");
    assert_eq!(version_at(nginx.port), "v2");
    assert!(pid_of("green").is_none(), "the broken green was stopped");
    assert_eq!(pid_of("blue"), Some(blue_pid));
    let record = journal(&state).pop().unwrap();
    assert_eq!(record["result"], "failed", "{record}");
    assert!(!root.join(".galley/locks/web.lock").exists());
}
