//! `galley/blue_green` end to end against a real nginx: ten switches under load without a lost
//! request, a new version that never becomes healthy, a verify failure after the switch that
//! rolls back, two deploys racing for the lock, `kill -9` mid-deploy (stale lock, `galley
//! unlock`), and `galley history` / `galley rollback`.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::nginx::{Load, LoadStats, Nginx};
use crate::support::{alive, flat, free_port, wait_until, Invocation, Reaper, Run, Sandbox};

const LIMIT: Duration = Duration::from_mins(1);
const DEMO_APP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/demo/app.py");

/// Blue/green deploys of the demo app behind the fixture's nginx. `--set version=V` (or
/// `sha=V`, which `galley rollback` sets) is the version; the version `broken` starts a process
/// that never listens. `gate=PATH` makes the start closure, once the new colour runs, write
/// `PATH.waiting` and wait until PATH exists. `verify=TEXT` checks after the switch that nginx
/// serves a page containing TEXT.
const RECIPE: &str = r#"
import "galley/blue_green" as blue_green;

let h = local();
let ng = h.nginx(@NGINX@);
let version = params.sha ?? params.version ?? "v1";
let gate = params.gate ?? "";
let svc = |colour, port| {
    let cmd = if version == "broken" {
        ["python3", "-c", "import time; time.sleep(3600)"]
    } else {
        ["python3", "@APP@"]
    };
    h.process(`web-${colour}`, #{ cmd: cmd, dir: "@DIR@", env: #{ PORT: port, APP_VERSION: version } })
};
let opts = #{
    app: "web", host: h, nginx: ng, upstream: "web",
    colours: #{ blue: @BLUE@, green: @GREEN@ },
    start: |c, p| {
        let s = svc.call(c, p);
        s.stop();
        let pid = s.start();
        print(`started=${c}:${pid}`);
        if gate != "" {
            h.write(gate + ".waiting", c);
            h.run(["sh", "-c", `while [ ! -e '${gate}' ]; do sleep 0.05; done`]);
        }
    },
    stop: |c, p| svc.call(c, p).stop(),
    health: "/health",
    health_options: #{ retries: parse_int(params.retries ?? "300"), interval: "100ms" },
    sha: version,
};
if "verify" in params {
    opts.verify = "http://127.0.0.1:@NGINX_PORT@/";
    opts.verify_options = #{ contains: params.verify, retries: 2, interval: "100ms" };
}
let colour = blue_green::deploy(opts);
print(`serving=${colour}`);
"#;

/// A sandbox with the recipe, an nginx in front of the blue and green ports, and a state folder.
/// Fields drop in order: the reaper and nginx go before the sandbox is deleted.
struct Stage {
    reaper: Reaper,
    nginx: Nginx,
    state: PathBuf,
    sb: Sandbox,
}

impl Stage {
    fn new() -> Stage {
        let sb = Sandbox::new();
        let reaper = Reaper::new(&sb);
        let (blue, green) = (free_port(), free_port());
        let nginx = Nginx::start(sb.path(), "web", blue);
        let recipe = RECIPE
            .replace("@NGINX@", &nginx.options())
            .replace("@NGINX_PORT@", &nginx.port.to_string())
            .replace("@APP@", DEMO_APP)
            .replace("@DIR@", &sb.join("app"))
            .replace("@BLUE@", &blue.to_string())
            .replace("@GREEN@", &green.to_string());
        sb.write("recipe.rhai", &recipe);
        std::fs::create_dir_all(sb.path().join("app")).unwrap();
        Stage {
            state: sb.path().join("state"),
            reaper,
            nginx,
            sb,
        }
    }

    /// `galley ARGS...` with the stage's state folder.
    fn galley(&self, args: &[&str]) -> Invocation {
        self.sb.invoke(args).env("GALLEY_STATE_DIR", &self.state)
    }

    /// `galley run recipe.rhai --output plain --set S...` to completion.
    fn deploy(&self, sets: &[&str]) -> Run {
        self.deploy_cmd(sets).run()
    }

    fn deploy_cmd(&self, sets: &[&str]) -> Invocation {
        let mut args = vec!["run", "recipe.rhai", "--output", "plain"];
        for set in sets {
            args.extend(["--set", set]);
        }
        self.galley(&args)
    }

    /// A deploy running in the background, output piped.
    fn spawn(&self, sets: &[&str]) -> Child {
        let child = self
            .deploy_cmd(sets)
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn galley");
        self.reaper.track(i64::from(child.id()));
        child
    }

    /// The version nginx serves now (on a new connection), or what it answered instead.
    fn served(&self) -> String {
        let body = self.nginx.get("/").unwrap_or_default();
        body.strip_prefix("hello from the galley demo app, version ")
            .and_then(|rest| rest.split(',').next())
            .map_or_else(|| format!("<not the app: {body:?}>"), str::to_string)
    }

    fn lock_file(&self) -> PathBuf {
        self.state.join("locks/web.lock")
    }

    /// Every journal line, parsed (panics on a line that is not JSON).
    fn journal(&self) -> Vec<serde_json::Value> {
        crate::support::journal_in(&self.state)
    }

    fn last_record(&self) -> serde_json::Value {
        self.journal().pop().expect("a journal record")
    }
}

/// The `started=COLOUR:PID` lines of a run.
fn started(run: &Run) -> Vec<(String, i64)> {
    run.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("started="))
        .filter_map(|rest| {
            let (colour, pid) = rest.split_once(':')?;
            Some((colour.to_string(), pid.trim().parse().ok()?))
        })
        .collect()
}

fn wait_output(child: Child) -> Run {
    Run::from(child.wait_with_output().expect("wait for galley"))
}

/// Fails with the load's details unless no request failed (and some were served).
fn assert_no_failures(what: &str, stats: &LoadStats) {
    println!("{what}: {stats}");
    assert_eq!(stats.failures, 0, "{what}: requests failed: {stats}");
    assert!(stats.requests > 0, "{what}: no request was served: {stats}");
}

/// A load client through nginx that has served a few requests already.
fn load(stage: &Stage) -> Load {
    let load = Load::start(stage.nginx.port, 3, 3);
    wait_until("the load client's first requests", LIMIT, || {
        load.requests() >= 20
    });
    load
}

#[test]
fn ten_switches_under_load_lose_no_request() {
    let stage = Stage::new();
    stage.deploy(&["version=v0"]).expect_code(0);
    assert_eq!(stage.served(), "v0");
    let load = load(&stage);
    for i in 1..=10 {
        let version = format!("v{i}");
        let run = stage
            .deploy(&[&format!("version={version}")])
            .expect_code(0);
        let colour = if i % 2 == 1 { "blue" } else { "green" };
        assert!(
            run.stdout.contains(&format!("serving={colour}")),
            "deploy {i} should have switched to {colour}:\n{}",
            run.stdout
        );
        assert_eq!(stage.served(), version, "after deploy {i}");
    }
    let stats = load.finish();
    assert_no_failures("10 blue/green switches under load", &stats);
    let records = stage.journal();
    assert_eq!(records.len(), 11);
    assert!(records
        .iter()
        .all(|r| r["result"] == "ok" && r["strategy"] == "blue_green" && r["app"] == "web"));
    assert!(!stage.lock_file().exists());
}

#[test]
fn a_new_version_that_never_gets_healthy_is_stopped_and_the_old_one_keeps_serving() {
    let stage = Stage::new();
    stage.deploy(&["version=v1"]).expect_code(0);
    assert_eq!(stage.served(), "v1");
    let load = load(&stage);
    let run = stage
        .deploy(&["version=broken", "retries=10"])
        .expect_code(1);
    let stats = load.finish();
    assert_no_failures("a failed health check under load", &stats);
    assert!(
        run.stderr.contains("galley::health"),
        "stderr:\n{}",
        run.stderr
    );
    assert_eq!(stage.served(), "v1");
    // v1 went to green (the fixture's upstream named blue), so the broken version went to blue.
    let broken = started(&run);
    assert_eq!(broken.len(), 1, "stdout:\n{}", run.stdout);
    assert_eq!(broken[0].0, "blue");
    wait_until("the broken blue process to be stopped", LIMIT, || {
        !alive(broken[0].1)
    });
    let record = stage.last_record();
    assert_eq!(record["result"], "failed", "{record}");
    assert_eq!(record["sha"], "broken", "{record}");
    let error = record["error"].as_str().unwrap_or_default();
    assert!(error.contains("health check"), "journal error: {record}");
    assert!(!stage.lock_file().exists());
    // The old colour was not touched; the next good deploy goes to blue again.
    stage.deploy(&["version=v2"]).expect_code(0);
    assert_eq!(stage.served(), "v2");
}

#[test]
fn a_failed_verify_after_the_switch_rolls_back() {
    let stage = Stage::new();
    stage.deploy(&["version=v1"]).expect_code(0);
    let load = load(&stage);
    // The new version is healthy, but the page nginx serves after the switch never says this.
    let run = stage
        .deploy(&["version=v2", "verify=commit deadbeef"])
        .expect_code(1);
    let stats = load.finish();
    assert_no_failures("a rollback after the switch under load", &stats);
    let report = flat(&run.stderr);
    assert!(
        report.contains("galley::rolled_back"),
        "stderr:\n{}",
        run.stderr
    );
    assert!(report.contains("switched back to green"), "{report}");
    assert_eq!(stage.served(), "v1");
    let new = started(&run);
    assert_eq!(new.len(), 1, "stdout:\n{}", run.stdout);
    wait_until("the rolled-back v2 process to be stopped", LIMIT, || {
        !alive(new[0].1)
    });
    let record = stage.last_record();
    assert_eq!(record["result"], "rolled_back", "{record}");
    assert_eq!(record["sha"], "v2", "{record}");
    assert!(!stage.lock_file().exists());
    // A verify that passes keeps the new version.
    stage
        .deploy(&["version=v3", "verify=version v3"])
        .expect_code(0);
    assert_eq!(stage.served(), "v3");
    assert_eq!(stage.last_record()["result"], "ok");
}

#[test]
fn of_two_deploys_started_together_one_gets_the_lock() {
    let stage = Stage::new();
    let gate = stage.sb.join("gate");
    let gate_set = format!("gate={gate}");
    let mut a = Some(stage.spawn(&["version=v1", &gate_set]));
    let mut b = Some(stage.spawn(&["version=v2", &gate_set]));
    // The winner waits at the gate while it holds the lock, so the loser fails meanwhile.
    let mut loser = None;
    wait_until("one of the two deploys to exit", LIMIT, || {
        for slot in [&mut a, &mut b] {
            if let Some(child) = slot {
                if child.try_wait().unwrap().is_some() {
                    loser = slot.take();
                    return true;
                }
            }
        }
        false
    });
    let winner = a.or(b).unwrap();
    let winner_pid = winner.id();
    let lost = wait_output(loser.unwrap()).expect_code(1);
    let report = flat(&lost.stderr);
    assert!(report.contains("galley::locked"), "{}", lost.stderr);
    assert!(
        report.contains(&format!("(pid {winner_pid} on")),
        "the report should name the holder, pid {winner_pid}:\n{}",
        lost.stderr
    );
    assert!(!report.contains("stale"), "{}", lost.stderr);
    assert!(stage.lock_file().exists());
    wait_until("the winner to wait at the gate", LIMIT, || {
        std::path::Path::new(&format!("{gate}.waiting")).exists()
    });
    std::fs::write(&gate, "").unwrap();
    let won = wait_output(winner).expect_code(0);
    assert!(won.stdout.contains("serving=green"), "{}", won.stdout);
    assert!(!stage.lock_file().exists(), "the lock file is left");
    let records = stage.journal();
    assert_eq!(
        records.len(),
        2,
        "the refused deploy, then the winner: {records:?}"
    );
    assert_eq!(records[0]["result"], "refused", "{records:?}");
    let holder = records[0]["error"].as_str().unwrap_or_default();
    assert!(
        holder.contains(&format!("(pid {winner_pid} on")),
        "the refused record names the holder: {holder}"
    );
    assert_eq!(records[1]["result"], "ok");
    assert_ne!(records[0]["sha"], records[1]["sha"], "{records:?}");
    let version = records[1]["sha"].as_str().unwrap().to_string();
    assert_eq!(stage.served(), version);
}

#[test]
fn kill_9_mid_deploy_leaves_a_stale_lock_that_unlock_clears() {
    let stage = Stage::new();
    stage.deploy(&["version=v1"]).expect_code(0);
    let gate = stage.sb.join("gate");
    let mut child = stage.spawn(&["version=v2", &format!("gate={gate}")]);
    let pid = child.id();
    // Killed after the new colour (blue) started, before the switch.
    wait_until("the deploy to reach the gate", LIMIT, || {
        std::path::Path::new(&format!("{gate}.waiting")).exists()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // Lets the orphaned `sh` that waited at the gate finish.
    std::fs::write(&gate, "").unwrap();

    let served = stage.served();
    assert!(
        served == "v1" || served == "v2",
        "nginx serves neither version: {served}"
    );
    assert_eq!(served, "v1", "the switch had not happened yet");
    let records = stage.journal();
    assert_eq!(records.len(), 1, "{records:?}");
    let lock = std::fs::read_to_string(stage.lock_file()).expect("the lock file is left");
    assert!(lock.contains(&format!("\"pid\": {pid}")), "{lock}");

    let refused = stage.deploy(&["version=v3"]).expect_code(1);
    let report = flat(&refused.stderr);
    assert!(report.contains("galley::locked"), "{}", refused.stderr);
    assert!(report.contains("stale"), "{}", refused.stderr);
    assert!(report.contains("galley unlock web"), "{}", refused.stderr);
    assert_eq!(stage.served(), "v1");

    let unlock = stage.galley(&["unlock", "web"]).run().expect_code(0);
    assert!(
        unlock.stdout.contains(&format!("\"pid\": {pid}")),
        "{}",
        unlock.stdout
    );
    assert!(!stage.lock_file().exists());

    // The next deploy stops the v2 process the killed deploy left on blue and takes its place.
    let run = stage.deploy(&["version=v3"]).expect_code(0);
    assert!(run.stdout.contains("serving=blue"), "{}", run.stdout);
    assert_eq!(stage.served(), "v3");
    assert!(!stage.lock_file().exists());
    let records = stage.journal();
    assert_eq!(records.len(), 3, "{records:?}");
    assert_eq!(records[1]["result"], "refused", "{records:?}");
    assert!(
        records[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("stale") && e.contains(&format!("(pid {pid} on"))),
        "{records:?}"
    );
    assert_eq!(records[2]["result"], "ok");
    assert_eq!(records[2]["sha"], "v3");
}

#[test]
fn history_lists_the_deploys_and_rollback_redeploys_the_previous_version() {
    let stage = Stage::new();
    for version in ["v1", "v2", "v3"] {
        stage
            .deploy(&[&format!("version={version}")])
            .expect_code(0);
    }
    assert_eq!(stage.served(), "v3");
    let history = stage.galley(&["history", "web"]).run().expect_code(0);
    let lines: Vec<&str> = history.stdout.lines().collect();
    assert!(
        lines[0].starts_with("id") && lines[0].contains("version") && lines[0].contains("result"),
        "{}",
        history.stdout
    );
    // Newest first.
    assert!(lines[0].contains(" hosts "), "{}", history.stdout);
    for (line, version) in lines[1..].iter().zip(["v3", "v2", "v1"]) {
        assert!(
            line.contains(" web ")
                && line.contains(" local ")
                && line.contains(" blue_green ")
                && line.contains(&format!(" {version} "))
                && line.contains(" ok "),
            "{}",
            history.stdout
        );
    }
    let json = stage
        .galley(&["history", "web", "--json"])
        .run()
        .expect_code(0);
    let records: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(records.len(), 3);
    // The same order as the table: newest first; --limit keeps the newest.
    assert_eq!(records[0]["sha"], "v3");
    assert!(
        records[0]["who"].as_str().unwrap().starts_with("root@"),
        "{}",
        records[0]
    );
    assert_eq!(records[0]["hosts"][0], "local");
    let v2_id = records[1]["id"].as_str().unwrap().to_string();
    assert_eq!(records[1]["sha"], "v2");
    let newest = stage
        .galley(&["history", "web", "--json", "--limit", "1"])
        .run()
        .expect_code(0);
    assert_eq!(newest.stdout.lines().count(), 1);
    assert!(
        newest.stdout.contains("\"sha\":\"v3\""),
        "{}",
        newest.stdout
    );

    let rollback = stage
        .galley(&["rollback", "web", "--output", "plain"])
        .run()
        .expect_code(0);
    assert!(
        rollback
            .stdout
            .contains(&format!("rolling web back to v2 (deploy {v2_id}")),
        "{}",
        rollback.stdout
    );
    assert_eq!(stage.served(), "v2");

    let json = stage
        .galley(&["history", "web", "--json"])
        .run()
        .expect_code(0);
    let last: serde_json::Value =
        serde_json::from_str(json.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(last["result"], "ok", "{last}");
    assert_eq!(last["sha"], "v2", "{last}");
    assert_eq!(last["rollback_to"], v2_id.as_str(), "{last}");
    let history = stage.galley(&["history", "web"]).run().expect_code(0);
    let newest = history
        .stdout
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(
        newest.contains(" v2 ") && newest.contains(" ok "),
        "{}",
        history.stdout
    );
    assert_eq!(history.stdout.lines().count(), 5, "{}", history.stdout);
    assert!(!stage.lock_file().exists());
}
