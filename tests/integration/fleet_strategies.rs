//! `galley/rolling`, `galley/canary` and `galley/blue_green` end to end on fleets: real sshd
//! "hosts" on loopback, each running the demo app on a port and in a folder of its own, behind
//! one local nginx with `proxy_next_upstream off` (a request that fails is not retried on
//! another server, so the load client sees it); blue/green of busybox httpd containers on an ssh
//! host's Docker Engine and of the demo app on an ssh host; the deploy lock in the hosts' state
//! folder (`state_dir`, shared by the hosts of one test, as hosts sharing an NFS home would);
//! `galley unlock --host`. Requests go through nginx from a load client while the deploys run.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::docker::{self, base_image, cli, unique, Cleanup};
use crate::support::nginx::{Load, LoadStats, Nginx};
use crate::support::sshd::{CloseMasters, Fleet};
use crate::support::{
    alive, flat, free_port, http_get, journal_in as journal, lit, wait_until, Reaper, Run, Sandbox,
};

/// How long a wait may take: generous, for a machine shared by many test runs (deploys there have
/// taken minutes); a wait ends as soon as its condition holds.
const LIMIT: Duration = Duration::from_mins(4);
const DEMO_APP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/demo/app.py");

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

/// Fails with the load's details unless no request failed (and some were served).
fn assert_no_failures(what: &str, stats: &LoadStats) {
    println!("{what}: {stats}");
    assert_eq!(stats.failures, 0, "{what}: requests failed: {stats}");
    assert!(stats.requests > 0, "{what}: no request was served: {stats}");
}

/// A load client through nginx on `port` that has already been served a few requests.
fn load(port: u16) -> Load {
    let load = Load::start(port, 1, 1);
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

/// Waits for a spawned galley and returns what it printed.
fn finished(child: Child) -> Run {
    shown(Run::from(
        child.wait_with_output().expect("wait for galley"),
    ))
}

// ---------------------------------------------------------------------------------------------
// rolling and canary over ssh hosts

/// One recipe for both strategies. Every host runs the demo app as the process `web` in a folder
/// of its own, on its own port; the hosts share one state folder, as if they shared a home
/// folder (`@STATE_DIR@` gives it to `ssh::hosts`, or is empty for the hosts' default one).
/// `--set strategy=rolling|canary`, `version=V` the new version, `old=V` the version a canary
/// rollback restarts (no `rollback` without it); `broken=HOST,...` gives those hosts a new version that
/// never listens; `batch` and `max_failures` go to the strategy; `retries` bounds each health
/// check (every 100 ms); `gate=PATH` makes the update of the first host create `PATH.waiting`,
/// then wait until PATH exists (a deploy held inside its lock). `probe=pass|fail`, `window`,
/// `interval` are the canary's (its probe prints the upstream file as `probe_upstream=...`).
const FLEET_RECIPE: &str = r#"
import "galley/rolling" as rolling;
import "galley/canary" as canary;

let connect = @OPTS@;
@STATE_DIR@
let hs = ssh::hosts([@DESTS@], connect);
let ports = #{ @PORTS@ };
let dirs = #{ @DIRS@ };
let ng = local().nginx(@NGINX@);
let version = params.version;
let old = params.old ?? "";
let broken = (params.broken ?? "").split(",");
let gate = params.gate ?? "";
let first = hs[0].name;

let svc = |h, v| {
    let cmd = if v == "broken" {
        ["python3", "-c", "import time; time.sleep(3600)"]
    } else {
        ["python3", @APP@]
    };
    h.process("web", #{ cmd: cmd, dir: dirs[h.name], env: #{ PORT: `${ports[h.name]}`, APP_VERSION: v } })
};
let opts = #{
    app: "web", hosts: hs, nginx: ng, upstream: "web",
    addr: |h| `127.0.0.1:${ports[h.name]}`,
    update: |h| {
        if gate != "" && h.name == first {
            h.run(["sh", "-c", `touch '${gate}.waiting'; while [ ! -e '${gate}' ]; do sleep 0.05; done`]);
        }
        let v = if broken.contains(h.name) { "broken" } else { version };
        let s = svc.call(h, v);
        s.stop();
        s.start();
    },
    health: |h| `http://127.0.0.1:${ports[h.name]}/health`,
    health_options: #{ retries: parse_int(params.retries ?? "300"), interval: "100ms" },
    sha: version,
};
if "batch" in params { opts.batch = parse_int(params.batch); }
if "max_failures" in params {
    let m = params.max_failures;
    opts.max_failures = if m.ends_with("%") { m } else { parse_int(m) };
}
if params.strategy == "rolling" {
    print(`updated=${rolling::deploy(opts)}`);
} else {
    if old != "" {
        opts.rollback = |h| {
            let s = svc.call(h, old);
            s.stop();
            s.start();
            print(`rolled back ${h.name} to ${old}`);
        };
    }
    opts.weight = 1;
    opts.window = params.window ?? "1s";
    opts.interval = params.interval ?? "250ms";
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

/// Health checks of a version that is never healthy give up after this many tries (100 ms
/// apart); the healthy ones get 300 (the demo app starts in well under a second).
const BROKEN_RETRIES: &str = "retries=30";

/// `n` ssh hosts, each with a port and a folder for its app, behind one local nginx; this
/// machine's state folder and the hosts' one. Fields drop in order: galley runs and the hosts'
/// apps (their folders are in the sandbox), the ssh masters, nginx, the sshd, the sandbox last.
struct Hosts {
    reaper: Reaper,
    _masters: CloseMasters,
    nginx: Nginx,
    fleet: Fleet,
    ports: Vec<u16>,
    dirs: Vec<PathBuf>,
    /// This machine's state folder (`GALLEY_STATE_DIR`): its journal.
    state: PathBuf,
    /// The hosts' state folder (`state_dir`): their locks and journal.
    host_state: PathBuf,
    sb: Sandbox,
}

/// Where the hosts keep Galley's state (one folder for all of them).
#[derive(Clone, Copy, PartialEq)]
enum HostState {
    /// `SANDBOX/hoststate`, given to `ssh::hosts` as the `state_dir` option.
    Option,
    /// The hosts' default, `$XDG_STATE_HOME/galley`, with the sshd setting `XDG_STATE_HOME` to
    /// `SANDBOX/xdg` in every session.
    Default,
}

impl Hosts {
    /// `n` hosts with the `state_dir` option.
    fn new(n: usize) -> Hosts {
        Hosts::start(n, HostState::Option)
    }

    fn start(n: usize, where_state: HostState) -> Hosts {
        let sb = Sandbox::new();
        let reaper = Reaper::new(&sb);
        let xdg = sb.path().join("xdg");
        let (fleet, host_state) = match where_state {
            HostState::Option => (Fleet::start(n), sb.path().join("hoststate")),
            HostState::Default => (
                Fleet::start_with(n, &[format!("SetEnv XDG_STATE_HOME={}", xdg.display())]),
                xdg.join("galley"),
            ),
        };
        let state_dir = match where_state {
            HostState::Option => format!(
                "connect.state_dir = {};",
                lit(&host_state.to_string_lossy())
            ),
            HostState::Default => String::new(),
        };
        let masters = CloseMasters(fleet.control_dir());
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let dirs: Vec<PathBuf> = (0..n)
            .map(|i| {
                let dir = sb.path().join(format!("host{i}"));
                std::fs::create_dir_all(&dir).unwrap();
                dir
            })
            .collect();
        let nginx = Nginx::start_without_retries(sb.path(), "web", ports[0]);
        let map = |value: &dyn Fn(usize) -> String| -> String {
            (0..n)
                .map(|i| format!("{}: {}", lit(&fleet.dest(i)), value(i)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let dests: Vec<String> = (0..n).map(|i| lit(&fleet.dest(i))).collect();
        let recipe = FLEET_RECIPE
            .replace("@DESTS@", &dests.join(", "))
            .replace("@OPTS@", &fleet.options())
            .replace("@STATE_DIR@", &state_dir)
            .replace("@PORTS@", &map(&|i| ports[i].to_string()))
            .replace("@DIRS@", &map(&|i| lit(&dirs[i].to_string_lossy())))
            .replace("@NGINX@", &nginx.options())
            .replace("@APP@", &lit(DEMO_APP))
            .replace(
                "@UPSTREAM_FILE@",
                &lit(&nginx.upstream_file("web").to_string_lossy()),
            );
        sb.write("recipe.rhai", &recipe);
        Hosts {
            reaper,
            _masters: masters,
            nginx,
            fleet,
            ports,
            dirs,
            state: sb.path().join("state"),
            host_state,
            sb,
        }
    }

    /// Starts `galley run recipe.rhai --output plain --set S...`.
    fn spawn(&self, sets: &[String]) -> Child {
        let mut cmd = self.fleet.galley(&self.sb);
        cmd.env("GALLEY_STATE_DIR", &self.state)
            .args(["run", "recipe.rhai", "--output", "plain"]);
        for set in sets {
            cmd.args(["--set", set]);
        }
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run galley");
        self.reaper.track(i64::from(child.id()));
        child
    }

    /// Runs the recipe to completion.
    fn deploy(&self, sets: &[String]) -> Run {
        finished(self.spawn(sets))
    }

    /// The number of hosts.
    fn len(&self) -> usize {
        self.ports.len()
    }

    /// The name (destination) of host `i`, as the recipe and the journal know it.
    fn name(&self, i: usize) -> String {
        self.fleet.dest(i)
    }

    /// The names of every host, in order.
    fn names(&self) -> Vec<String> {
        (0..self.len()).map(|i| self.name(i)).collect()
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

    /// The sorted addresses of every host.
    fn all_addrs(&self) -> Vec<String> {
        self.addrs(&(0..self.len()).collect::<Vec<_>>())
    }

    /// The pid in host `i`'s pidfile of the app (None without one).
    fn pid(&self, i: usize) -> Option<i64> {
        std::fs::read_to_string(self.dirs[i].join("web.pid"))
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

    fn upstream_servers(&self) -> Vec<String> {
        upstream_servers(&self.upstream_file())
    }

    /// Fails unless the upstream lists every host, none with a weight.
    fn assert_everyone_in_the_upstream(&self) {
        assert_eq!(
            self.upstream_servers(),
            self.all_addrs(),
            "every host is in the upstream"
        );
        let lines = upstream_lines(&self.upstream_file());
        assert!(
            lines.iter().all(|l| !l.contains("weight")),
            "no weight is left in the upstream: {lines:?}"
        );
    }

    /// Deploys `version` to every host at once with `rolling` (how every test starts) and
    /// checks that each host and nginx serve it.
    fn first_deploy(&self, version: &str) {
        self.deploy(&[
            "strategy=rolling".into(),
            format!("version={version}"),
            format!("batch={}", self.len()),
        ])
        .expect_code(0);
        for i in 0..self.len() {
            // The app passed its health check; on a starved machine its next answer may be slow.
            wait_until(&format!("host {i} to answer {version}"), LIMIT, || {
                self.version(i) == version
            });
        }
        self.assert_everyone_in_the_upstream();
    }

    /// The last record of this machine's journal.
    fn last_record(&self) -> serde_json::Value {
        journal(&self.state).pop().expect("a journal record")
    }

    fn lock_file(&self) -> PathBuf {
        self.host_state.join("locks/web.lock")
    }

    /// No host (and not this machine) keeps a lock of `web` after a deploy.
    fn assert_unlocked(&self) {
        assert!(
            !self.lock_file().exists(),
            "the hosts keep {}",
            self.lock_file().display()
        );
        assert!(!self.state.join("locks/web.lock").exists());
    }
}

#[test]
fn rolling_in_batches_of_two_over_four_hosts_under_load_loses_no_request() {
    let hosts = Hosts::new(4);
    hosts.first_deploy("v1");
    let records_before = journal(&hosts.state).len();
    let load = load(hosts.nginx.port);
    let run = hosts
        .deploy(&[
            "strategy=rolling".into(),
            "version=v2".into(),
            "batch=2".into(),
        ])
        .expect_code(0);
    let stats = load.finish();
    assert_no_failures("a rolling deploy of 4 hosts, batch 2, under load", &stats);
    assert!(run.stdout.contains("updated=4"), "{}", run.stdout);
    for i in 0..4 {
        assert_eq!(hosts.version(i), "v2", "host {i}");
    }
    assert!(
        stats.versions.contains_key("v2"),
        "the load saw v2 during the rollout: {stats}"
    );
    hosts.assert_everyone_in_the_upstream();
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
        serde_json::json!(hosts.names()),
        "{record}"
    );
    // The hosts' journal (one folder for all four) has one line per deploy, not one per host.
    let on_hosts = journal(&hosts.host_state);
    assert_eq!(on_hosts.len(), 2, "{on_hosts:#?}");
    assert_eq!(on_hosts[1]["result"], "ok");
    assert_eq!(on_hosts[1]["id"], record["id"]);
    hosts.assert_unlocked();
}

#[test]
fn rolling_stops_at_a_broken_host_keeps_it_out_and_leaves_the_rest_untouched() {
    let hosts = Hosts::new(4);
    hosts.first_deploy("v1");
    let later = (hosts.pid(2), hosts.pid(3));
    assert!(later.0.is_some() && later.1.is_some());
    let load = load(hosts.nginx.port);
    let run = hosts
        .deploy(&[
            "strategy=rolling".into(),
            "version=v2".into(),
            "batch=2".into(),
            format!("broken={}", hosts.name(1)),
            BROKEN_RETRIES.into(),
        ])
        .expect_code(1);
    let stats = load.finish();
    assert_no_failures("a rolling deploy stopping at host 1 under load", &stats);
    let report = flat(&run.stderr);
    assert!(report.contains("galley::health"), "{}", run.stderr);
    assert!(
        report.contains(&format!("/health on {}", hosts.name(1))),
        "the report names the check on host 1:\n{}",
        run.stderr
    );
    assert_eq!(
        hosts.version(0),
        "v2",
        "host 0, in the first batch, was updated"
    );
    assert_eq!(hosts.version(1), "", "host 1 runs the broken version");
    assert_eq!(
        (hosts.pid(2), hosts.pid(3)),
        later,
        "the hosts after the broken one were not restarted"
    );
    assert_eq!(hosts.version(2), "v1");
    assert_eq!(hosts.version(3), "v1");
    assert_eq!(
        hosts.upstream_servers(),
        hosts.addrs(&[0, 2, 3]),
        "the broken host stays out of the upstream, the others serve"
    );
    let record = hosts.last_record();
    assert_eq!(record["result"], "failed", "{record}");
    assert_eq!(record["strategy"], "rolling", "{record}");
    assert_eq!(
        record["failed"],
        serde_json::json!([hosts.name(1)]),
        "{record}"
    );
    hosts.assert_unlocked();
}

/// A rolling deploy of v2 over 4 hosts with host `broken` broken and `max_failures` and `batch`
/// as given: it goes on to the end and ends as `galley::partial`. Then the fix, v3 (batch 1):
/// the broken host, out of the upstream, goes back in only once it was updated and checked.
/// (The broken host and the batches are such that two hosts always serve the load.)
fn rolling_goes_on_past_a_tolerated_failure(max_failures: &str, batch: usize, broken: usize) {
    let hosts = Hosts::new(4);
    let fine: Vec<usize> = (0..4).filter(|i| *i != broken).collect();
    hosts.first_deploy("v1");
    let partial = load(hosts.nginx.port);
    let run = hosts
        .deploy(&[
            "strategy=rolling".into(),
            "version=v2".into(),
            format!("batch={batch}"),
            format!("max_failures={max_failures}"),
            format!("broken={}", hosts.name(broken)),
            BROKEN_RETRIES.into(),
        ])
        .expect_code(1);
    let stats = partial.finish();
    assert_no_failures("a rolling deploy past a broken host under load", &stats);
    let report = flat(&run.stderr);
    assert!(report.contains("galley::partial"), "{}", run.stderr);
    assert!(
        report.contains(&format!("1 of 4 failed ({})", hosts.name(broken))),
        "the report names the broken host:\n{}",
        run.stderr
    );
    for &i in &fine {
        assert_eq!(hosts.version(i), "v2", "host {i}");
    }
    assert_eq!(
        hosts.version(broken),
        "",
        "the broken host runs the broken version"
    );
    assert_eq!(
        hosts.upstream_servers(),
        hosts.addrs(&fine),
        "the broken host stays out of the upstream"
    );
    let record = hosts.last_record();
    assert_eq!(record["result"], "partial", "{record}");
    assert_eq!(
        record["failed"],
        serde_json::json!([hosts.name(broken)]),
        "{record}"
    );
    let on_hosts = journal(&hosts.host_state)
        .pop()
        .expect("a record on the hosts");
    assert_eq!(on_hosts["result"], "partial", "{on_hosts}");
    hosts.assert_unlocked();

    let fixed = load(hosts.nginx.port);
    hosts
        .deploy(&[
            "strategy=rolling".into(),
            "version=v3".into(),
            "batch=1".into(),
        ])
        .expect_code(0);
    let stats = fixed.finish();
    assert_no_failures("the deploy after a partial one, under load", &stats);
    for i in 0..4 {
        assert_eq!(hosts.version(i), "v3", "host {i}");
    }
    hosts.assert_everyone_in_the_upstream();
}

#[test]
fn rolling_with_max_failures_1_goes_on_past_a_broken_host_and_ends_partial() {
    rolling_goes_on_past_a_tolerated_failure("1", 2, 3);
}

#[test]
fn rolling_with_max_failures_25_percent_goes_on_past_a_broken_host_and_ends_partial() {
    rolling_goes_on_past_a_tolerated_failure("25%", 1, 1);
}

#[test]
fn rolling_stops_after_the_batch_in_which_failures_exceed_max_failures() {
    let hosts = Hosts::new(4);
    hosts.first_deploy("v1");
    let last = hosts.pid(3);
    let load = load(hosts.nginx.port);
    let run = hosts
        .deploy(&[
            "strategy=rolling".into(),
            "version=v2".into(),
            "batch=1".into(),
            "max_failures=1".into(),
            format!("broken={},{}", hosts.name(1), hosts.name(2)),
            BROKEN_RETRIES.into(),
        ])
        .expect_code(1);
    let stats = load.finish();
    assert_no_failures("a rolling deploy past max_failures under load", &stats);
    let report = flat(&run.stderr);
    assert!(report.contains("galley::health"), "{}", run.stderr);
    assert!(
        report.contains(&format!(
            "2 of 4 failed ({}, {})",
            hosts.name(1),
            hosts.name(2)
        )),
        "the report names both broken hosts:\n{}",
        run.stderr
    );
    assert_eq!(hosts.version(0), "v2");
    assert_eq!(
        hosts.pid(3),
        last,
        "the host after the second failure was not reached"
    );
    assert_eq!(hosts.version(3), "v1");
    assert_eq!(
        hosts.upstream_servers(),
        hosts.addrs(&[0, 3]),
        "both broken hosts stay out of the upstream"
    );
    let record = hosts.last_record();
    assert_eq!(record["result"], "failed", "{record}");
    assert_eq!(
        record["failed"],
        serde_json::json!([hosts.name(1), hosts.name(2)]),
        "{record}"
    );
    hosts.assert_unlocked();
}

/// The canary's `probe_upstream=` lines: the upstream file as the probe saw it in the window.
fn probe_views(run: &Run) -> Vec<String> {
    run.stdout
        .lines()
        .filter_map(|l| l.split_once("probe_upstream=").map(|(_, v)| v.to_string()))
        .collect()
}

#[test]
fn canary_over_four_hosts_watches_the_weighted_canary_then_updates_the_others() {
    let hosts = Hosts::new(4);
    hosts.first_deploy("v1");
    let before: Vec<Option<i64>> = (1..4).map(|i| hosts.pid(i)).collect();
    let load = load(hosts.nginx.port);
    let run = hosts
        .deploy(&[
            "strategy=canary".into(),
            "version=v2".into(),
            "old=v1".into(),
            "probe=pass".into(),
            "batch=2".into(),
        ])
        .expect_code(0);
    let stats = load.finish();
    assert_no_failures("a canary deploy of 4 hosts under load", &stats);
    // During the window the canary (host 0) had weight 1 against the others' 10.
    let views = probe_views(&run);
    assert!(
        views.len() >= 2,
        "the probe ran through the window:\n{}",
        run.stdout
    );
    for view in &views {
        assert!(
            view.contains(&format!("server {} weight=1;", hosts.addr(0))),
            "the canary has weight 1 while it is watched: {view}"
        );
        for i in 1..4 {
            assert!(
                view.contains(&format!("server {} weight=10;", hosts.addr(i))),
                "host {i} has weight 10 while the canary is watched: {view}"
            );
        }
    }
    assert!(run.stdout.contains("updated=4"), "{}", run.stdout);
    assert!(
        run.stdout.contains("batch 2 of 2"),
        "the others went in batches of 2:\n{}",
        run.stdout
    );
    for i in 0..4 {
        assert_eq!(hosts.version(i), "v2", "host {i}");
    }
    for (i, pid) in (1..4).zip(before) {
        assert_ne!(hosts.pid(i), pid, "host {i} was restarted");
    }
    hosts.assert_everyone_in_the_upstream();
    let record = hosts.last_record();
    assert_eq!(record["result"], "ok", "{record}");
    assert_eq!(record["strategy"], "canary", "{record}");
    assert_eq!(record["sha"], "v2", "{record}");
    assert_eq!(
        record["hosts"],
        serde_json::json!(hosts.names()),
        "{record}"
    );
    hosts.assert_unlocked();
}

#[test]
fn canary_after_a_partial_deploy_keeps_the_host_left_out_until_it_is_updated() {
    let hosts = Hosts::new(4);
    hosts.first_deploy("v1");
    hosts
        .deploy(&[
            "strategy=rolling".into(),
            "version=v2".into(),
            "max_failures=1".into(),
            format!("broken={}", hosts.name(3)),
            BROKEN_RETRIES.into(),
        ])
        .expect_code(1);
    assert_eq!(hosts.upstream_servers(), hosts.addrs(&[0, 1, 2]));
    let load = load(hosts.nginx.port);
    let run = hosts
        .deploy(&[
            "strategy=canary".into(),
            "version=v3".into(),
            "old=v2".into(),
            "probe=pass".into(),
            "batch=1".into(),
        ])
        .expect_code(0);
    let stats = load.finish();
    assert_no_failures("a canary after a partial deploy, under load", &stats);
    let views = probe_views(&run);
    assert!(!views.is_empty(), "the probe ran:\n{}", run.stdout);
    for view in &views {
        assert!(
            view.contains(&format!("server {} weight=10;", hosts.addr(1))),
            "{view}"
        );
        assert!(
            !view.contains(&hosts.addr(3)),
            "the host left out is not in the upstream in the window: {view}"
        );
    }
    for i in 0..4 {
        assert_eq!(hosts.version(i), "v3", "host {i}");
    }
    hosts.assert_everyone_in_the_upstream();
    assert_eq!(hosts.last_record()["result"], "ok");
}

/// A canary deploy of v2 over 3 hosts (host 0 the canary) with `sets` added, under load, that
/// must be rolled back: the rollback closure ran, every host serves v1, the others were never
/// restarted, the upstream lists everyone without weights, the journal says `rolled_back`.
fn canary_is_rolled_back(sets: &[&str]) -> Run {
    let hosts = Hosts::new(3);
    hosts.first_deploy("v1");
    let others = (hosts.pid(1), hosts.pid(2));
    let load = load(hosts.nginx.port);
    let mut all: Vec<String> = vec![
        "strategy=canary".into(),
        "version=v2".into(),
        "old=v1".into(),
    ];
    all.extend(sets.iter().map(|s| s.replace("@CANARY@", &hosts.name(0))));
    let run = hosts.deploy(&all).expect_code(1);
    let stats = load.finish();
    assert_no_failures("a canary rolled back under load", &stats);
    assert!(
        flat(&run.stderr).contains("galley::rolled_back"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .contains(&format!("rolled back {} to v1", hosts.name(0))),
        "the rollback closure ran for the canary:\n{}",
        run.stdout
    );
    for i in 0..3 {
        assert_eq!(hosts.version(i), "v1", "host {i} serves the old version");
    }
    assert_eq!(
        (hosts.pid(1), hosts.pid(2)),
        others,
        "hosts 1 and 2 were not restarted"
    );
    hosts.assert_everyone_in_the_upstream();
    let record = hosts.last_record();
    assert_eq!(record["result"], "rolled_back", "{record}");
    assert_eq!(record["strategy"], "canary", "{record}");
    hosts.assert_unlocked();
    run
}

#[test]
fn canary_whose_new_version_fails_its_first_health_check_is_rolled_back() {
    let run = canary_is_rolled_back(&["probe=pass", "broken=@CANARY@", BROKEN_RETRIES]);
    // Without whitespace: the report may wrap anywhere, also inside the URL.
    let report: String = flat(&run.stderr).split_whitespace().collect();
    assert!(
        report.contains("/healthonroot@127.0.0.1:") && report.contains("didnotpass"),
        "the report says that the canary's health check failed:\n{}",
        run.stderr
    );
    assert!(
        probe_views(&run).is_empty(),
        "the canary never got to the window:\n{}",
        run.stdout
    );
}

#[test]
fn canary_whose_probe_fails_in_the_window_is_rolled_back() {
    let run = canary_is_rolled_back(&["probe=fail"]);
    assert!(
        flat(&run.stderr).contains("the error-rate probe failed"),
        "the report says why:\n{}",
        run.stderr
    );
    let views = probe_views(&run);
    assert_eq!(views.len(), 1, "the probe ran once:\n{}", run.stdout);
    assert!(views[0].contains("weight=1;"), "{}", views[0]);
}

#[test]
fn canary_without_a_rollback_is_taken_out_of_the_upstream_when_its_probe_fails() {
    let hosts = Hosts::new(3);
    hosts.first_deploy("v1");
    let others = (hosts.pid(1), hosts.pid(2));
    let load = load(hosts.nginx.port);
    let run = hosts
        .deploy(&[
            "strategy=canary".into(),
            "version=v2".into(),
            "probe=fail".into(),
        ])
        .expect_code(1);
    let stats = load.finish();
    assert_no_failures("a canary taken out under load", &stats);
    let report = flat(&run.stderr);
    assert!(report.contains("galley::rolled_back"), "{}", run.stderr);
    assert!(
        report.contains(&format!(
            "the canary {} was taken out of the upstream (no rollback given)",
            hosts.name(0)
        )),
        "the report says what became of the canary:\n{}",
        run.stderr
    );
    assert_eq!(hosts.version(0), "v2", "the canary was left as it was");
    assert_eq!((hosts.pid(1), hosts.pid(2)), others);
    assert_eq!(
        hosts.upstream_servers(),
        hosts.addrs(&[1, 2]),
        "the canary is out of the upstream"
    );
    let lines = upstream_lines(&hosts.upstream_file());
    assert!(lines.iter().all(|l| !l.contains("weight")), "{lines:?}");
    assert_eq!(hosts.last_record()["result"], "rolled_back");
    hosts.assert_unlocked();
}

// ---------------------------------------------------------------------------------------------
// locks in a state folder that hosts share

#[test]
fn hosts_sharing_their_default_state_folder_deploy_in_one_run_and_a_second_run_is_refused() {
    let hosts = Hosts::start(2, HostState::Default);
    // Both hosts keep their lock in the same folder: the run meets its own lock and goes on.
    hosts.first_deploy("v1");
    let on_hosts = journal(&hosts.host_state);
    assert_eq!(
        on_hosts.len(),
        1,
        "the hosts' default state folder has the journal"
    );
    assert_eq!(on_hosts[0]["result"], "ok", "{}", on_hosts[0]);
    hosts.assert_unlocked();
    let gate = hosts.sb.path().join("gate");
    let first = hosts.spawn(&[
        "strategy=rolling".into(),
        "version=v2".into(),
        format!("gate={}", gate.display()),
    ]);
    let holder = first.id();
    let waiting = gate.with_extension("waiting");
    wait_until("the first deploy to hold its lock", LIMIT, || {
        waiting.exists()
    });
    assert!(hosts.lock_file().exists());
    let second = hosts
        .deploy(&["strategy=rolling".into(), "version=v3".into()])
        .expect_code(1);
    let report = flat(&second.stderr);
    assert!(report.contains("galley::locked"), "{}", second.stderr);
    assert!(
        report.contains(&format!("pid {holder} ")),
        "the report names the holder (pid {holder}):\n{}",
        second.stderr
    );
    let record = hosts.last_record();
    assert_eq!(record["result"], "refused", "{record}");
    assert!(
        record["error"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("pid {holder} "))),
        "the journal names the holder: {record}"
    );
    std::fs::write(&gate, "").unwrap();
    finished(first).expect_code(0);
    for i in 0..2 {
        assert_eq!(hosts.version(i), "v2", "host {i}: the first deploy went on");
    }
    assert_eq!(hosts.last_record()["result"], "ok");
    hosts.assert_unlocked();
}

#[test]
fn galley_unlock_with_host_removes_a_lock_left_on_an_ssh_host_by_a_killed_deploy() {
    let hosts = Hosts::new(1);
    hosts.first_deploy("v1");
    let gate = hosts.sb.path().join("gate");
    let mut killed = hosts.spawn(&[
        "strategy=rolling".into(),
        "version=v2".into(),
        format!("gate={}", gate.display()),
    ]);
    let pid = killed.id();
    let waiting = gate.with_extension("waiting");
    wait_until("the deploy to hold its lock", LIMIT, || waiting.exists());
    killed.kill().expect("kill -9 the deploy");
    killed.wait().expect("reap the deploy");
    // Lets the update's command on the host end.
    std::fs::write(&gate, "").unwrap();
    assert!(
        hosts.lock_file().exists(),
        "the killed deploy left its lock"
    );

    let refused = hosts
        .deploy(&["strategy=rolling".into(), "version=v2".into()])
        .expect_code(1);
    let report = flat(&refused.stderr);
    assert!(report.contains("galley::locked"), "{}", refused.stderr);
    assert!(report.contains("stale lock"), "{}", refused.stderr);

    let unlock = |sb: &Sandbox| -> Run {
        shown(Run::from(
            hosts
                .fleet
                .galley(sb)
                .args(["unlock", "web", "--output", "plain", "--host"])
                .arg(hosts.name(0))
                .arg("--identity")
                .arg(&hosts.fleet.key)
                .arg("--known-hosts-file")
                .arg(&hosts.fleet.known_hosts)
                .arg("--state-dir")
                .arg(&hosts.host_state)
                .env("GALLEY_STATE_DIR", &hosts.state)
                .output()
                .expect("run galley unlock"),
        ))
    };
    let run = unlock(&hosts.sb).expect_code(0);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains(&format!("removed the lock of web on {}", hosts.name(0))),
        "{said}"
    );
    assert!(
        said.contains(&format!("\"pid\": {pid}")),
        "it shows the holder (pid {pid}):\n{said}"
    );
    assert!(!hosts.lock_file().exists(), "the lock is gone");
    let again = unlock(&hosts.sb).expect_code(0);
    assert!(
        format!("{}{}", again.stdout, again.stderr).contains("web is not locked on"),
        "{}{}",
        again.stdout,
        again.stderr
    );
    hosts
        .deploy(&["strategy=rolling".into(), "version=v2".into()])
        .expect_code(0);
    assert_eq!(hosts.version(0), "v2");
    hosts.assert_unlocked();
}

// ---------------------------------------------------------------------------------------------
// blue/green on an ssh host

/// Blue/green of busybox httpd containers on an ssh host's Docker Engine (its socket forwarded
/// over ssh), nginx on this machine pointing at the ports the containers publish. `--set
/// version=V` picks the image; each colour is the container `@NAME@-COLOUR`.
const DOCKER_RECIPE: &str = r#"
import "galley/blue_green" as blue_green;

let connect = @OPTS@;
connect.state_dir = @HOST_STATE@;
let h = ssh::connect(@DEST@, connect);
let d = h.docker();
let images = #{ @IMAGES@ };
let version = params.version;
let image = images[version];
let colour = blue_green::deploy(#{
    app: "web", host: h, nginx: local().nginx(@NGINX@), upstream: "web",
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
fn blue_green_of_containers_on_an_ssh_host_under_load_loses_no_request() {
    if !docker::available() {
        eprintln!("note: the Docker daemon does not answer (`docker version` fails); skipping");
        return;
    }
    let cleanup = Cleanup::new();
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let fleet = Fleet::start(1);
    let _masters = CloseMasters(fleet.control_dir());
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
    let nginx = Nginx::start_without_retries(sb.path(), "web", blue);
    let host_state = sb.path().join("hoststate");
    let recipe = DOCKER_RECIPE
        .replace("@OPTS@", &fleet.options())
        .replace("@HOST_STATE@", &lit(&host_state.to_string_lossy()))
        .replace("@DEST@", &lit(&fleet.dest(0)))
        .replace("@IMAGES@", &images.join(", "))
        .replace("@NGINX@", &nginx.options())
        .replace("@BLUE@", &blue.to_string())
        .replace("@GREEN@", &green.to_string())
        .replace("@NAME@", &lit(&name));
    sb.write("recipe.rhai", &recipe);
    let state = sb.path().join("state");
    let deploy = |version: &str| -> Run {
        let child = fleet
            .galley(&sb)
            .env("GALLEY_STATE_DIR", &state)
            .args(["run", "recipe.rhai", "--output", "plain", "--set"])
            .arg(format!("version={version}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run galley");
        reaper.track(i64::from(child.id()));
        finished(child)
    };

    // The fixture's upstream names blue, where nothing runs: the first deploy goes to green.
    let run = deploy("v1").expect_code(0);
    assert!(run.stdout.contains("serving=green"), "{}", run.stdout);
    assert_eq!(version_at(nginx.port), "v1");
    assert_eq!(container_state(&format!("{name}-green")), "running");

    let load = load(nginx.port);
    for (version, new, old) in [("v2", "blue", "green"), ("v3", "green", "blue")] {
        let run = deploy(version).expect_code(0);
        assert!(
            run.stdout.contains(&format!("serving={new}")),
            "{version} goes to {new}:\n{}",
            run.stdout
        );
        assert_eq!(version_at(nginx.port), version);
        assert_eq!(container_state(&format!("{name}-{new}")), "running");
        assert_eq!(
            container_state(&format!("{name}-{old}")),
            "missing",
            "the old colour's container was removed"
        );
        let port = if new == "blue" { blue } else { green };
        assert_eq!(
            upstream_servers(&nginx.upstream_file("web")),
            [format!("127.0.0.1:{port}")]
        );
    }
    let stats = load.finish();
    assert_no_failures(
        "two container blue/green deploys on an ssh host under load",
        &stats,
    );
    assert!(
        stats.versions.contains_key("v2"),
        "the load saw v2 in between: {stats}"
    );
    let records = journal(&state);
    assert_eq!(records.len(), 3, "{records:#?}");
    for (record, version) in records.iter().zip(["v1", "v2", "v3"]) {
        assert_eq!(record["result"], "ok", "{record}");
        assert_eq!(record["strategy"], "blue_green", "{record}");
        assert_eq!(
            record["hosts"],
            serde_json::json!([fleet.dest(0)]),
            "{record}"
        );
        assert_eq!(
            record["image"].as_str(),
            Some(format!("{repository}:{version}").as_str()),
            "{record}"
        );
    }
    assert_eq!(journal(&host_state).len(), 3, "the host's journal too");
    assert!(!host_state.join("locks/web.lock").exists());
}

/// Blue/green of the demo app as processes on an ssh host, nginx on this machine. The version
/// `broken` starts a process that never listens; `--set retries=N` bounds its health check.
const SSH_BLUE_GREEN_RECIPE: &str = r#"
import "galley/blue_green" as blue_green;

let connect = @OPTS@;
connect.state_dir = @HOST_STATE@;
let h = ssh::connect(@DEST@, connect);
let version = params.version;
let cmd = if version == "broken" {
    ["python3", "-c", "import time; time.sleep(3600)"]
} else {
    ["python3", @APP@]
};
let svc = |c, p| h.process(`web-${c}`, #{
    cmd: cmd, dir: @DIR@, env: #{ PORT: `${p}`, APP_VERSION: version },
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
fn blue_green_of_a_process_on_an_ssh_host_under_load_loses_no_request() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let fleet = Fleet::start(1);
    let _masters = CloseMasters(fleet.control_dir());
    let dir = sb.path().join("app");
    std::fs::create_dir_all(&dir).unwrap();
    let host_state = sb.path().join("hoststate");
    let (blue, green) = (free_port(), free_port());
    let nginx = Nginx::start_without_retries(sb.path(), "web", blue);
    let recipe = SSH_BLUE_GREEN_RECIPE
        .replace("@OPTS@", &fleet.options())
        .replace("@HOST_STATE@", &lit(&host_state.to_string_lossy()))
        .replace("@DEST@", &lit(&fleet.dest(0)))
        .replace("@APP@", &lit(DEMO_APP))
        .replace("@DIR@", &lit(&dir.to_string_lossy()))
        .replace("@NGINX@", &nginx.options())
        .replace("@BLUE@", &blue.to_string())
        .replace("@GREEN@", &green.to_string());
    sb.write("recipe.rhai", &recipe);
    let state = sb.path().join("state");
    let deploy = |version: &str, retries: &str| -> Run {
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
        reaper.track(i64::from(child.id()));
        finished(child)
    };
    let pid_of = |colour: &str| -> Option<i64> {
        std::fs::read_to_string(dir.join(format!("web-{colour}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    };

    let run = deploy("v1", "300").expect_code(0);
    assert!(run.stdout.contains("serving=green"), "{}", run.stdout);
    assert_eq!(version_at(nginx.port), "v1");
    let green_pid = pid_of("green").expect("green's pidfile on the host");

    let load = load(nginx.port);
    let run = deploy("v2", "300").expect_code(0);
    assert!(run.stdout.contains("serving=blue"), "{}", run.stdout);
    // A version that never listens: the strategy checks it on the host, through a tunnel,
    // stops it, and blue keeps serving.
    let broken = deploy("broken", "10").expect_code(1);
    let stats = load.finish();
    assert_no_failures(
        "blue/green deploys of a process on an ssh host under load",
        &stats,
    );
    assert!(
        stats.versions.contains_key("v2"),
        "the load saw v2: {stats}"
    );
    assert_eq!(version_at(nginx.port), "v2");
    assert_eq!(
        upstream_servers(&nginx.upstream_file("web")),
        [format!("127.0.0.1:{blue}")]
    );
    wait_until("the old colour (green) to be stopped", LIMIT, || {
        !alive(green_pid)
    });
    let report = flat(&broken.stderr);
    assert!(report.contains("galley::health"), "{}", broken.stderr);
    let checked = format!("http://127.0.0.1:{green}/health on {}", fleet.dest(0));
    assert!(
        report.contains(&checked),
        "the check ran on the host ({checked}):\n{}",
        broken.stderr
    );
    assert!(pid_of("green").is_none(), "the broken green was stopped");
    let records = journal(&state);
    let results: Vec<&str> = records
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["ok", "ok", "failed"], "{records:#?}");
    assert_eq!(records[1]["sha"], "v2");
    assert_eq!(records[1]["hosts"], serde_json::json!([fleet.dest(0)]));
    assert!(!host_state.join("locks/web.lock").exists());
}
