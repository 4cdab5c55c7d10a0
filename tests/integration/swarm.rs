//! `h.swarm()` and `galley/swarm` against this machine's real Docker Engine in swarm mode (a
//! single-node swarm that `support::swarm::ensure` initialises when the Engine is in none).
//! Images are built from the local static busybox; ports are host-mode (the routing mesh does
//! not work here), so a test that needs one address puts the real nginx in front of the task
//! ports. The docker CLI only sets up and checks; galley itself talks to the API.

use std::time::Duration;

use crate::support::docker::{self, cli, docker as docker_cli, lines, unique, Cleanup};
use crate::support::nginx::{Load, Nginx};
use crate::support::sshd::{CloseMasters, Fleet};
use crate::support::swarm::{self, images, running_ports, versions, UpstreamSync};
use crate::support::{flat, value_of, wait_until, Run, Sandbox};

const LIMIT: Duration = Duration::from_mins(1);

/// True (after a note) when no Docker daemon answers here; else makes sure it is a swarm manager.
fn skip() -> bool {
    if !docker::available() {
        eprintln!("note: the Docker daemon does not answer (`docker version` fails); skipping");
        return true;
    }
    swarm::ensure();
    false
}

/// A recipe deploying `app` with the `galley/swarm` strategy through `host`; the image comes
/// from `--set image=...` (as `galley rollback` sets it), replicas from `--set replicas=N`
/// (default 3). `stuck=yes` gives a health check that stays in its start period for an hour.
fn strategy_recipe(app: &str, host: &str) -> String {
    format!(
        r#"import "galley/swarm" as swarm;
let stuck = #{{ test: ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"],
               interval: "500ms", retries: 3, start_period: "1h" }};
let r = swarm::deploy(#{{
    app: {app:?}, host: {host}, image: params.image, replicas: parse_int(params.replicas ?? "3"),
    ports: ["mode=host,target=8080"],
    healthcheck: if params.stuck == "yes" {{ stuck }} else {{ () }},
    update: #{{ monitor: "1s" }}, rollback: #{{ monitor: "1s" }},
    stop_grace_period: "2s", timeout: params.timeout ?? "90s",
}});
print("replicas=" + r.replicas);
"#
    )
}

/// `galley run recipe.rhai --output plain --set image=IMAGE EXTRA...`.
fn deploy(sb: &Sandbox, image: &str, extra: &[&str]) -> Run {
    let set = format!("image={image}");
    let mut args = vec!["run", "recipe.rhai", "--output", "plain", "--set", &set];
    args.extend_from_slice(extra);
    sb.invoke(&args).state("state").run()
}

/// The newest journal record of `app`, as JSON (`history --json` lists the newest first).
fn last_record(sb: &Sandbox, app: &str) -> serde_json::Value {
    let run = sb
        .invoke(["history", app, "--json", "--limit", "1"])
        .state("state")
        .run()
        .expect_code(0);
    let line = run.stdout.lines().next().expect("a journal record");
    serde_json::from_str(line).expect("a JSON record")
}

/// Waits until `n` tasks of `app` run and every one answers with `version` on its own port.
fn wait_for_version(app: &str, n: usize, version: &str) {
    wait_until(
        &format!("{n} tasks of {app} serving {version}"),
        LIMIT,
        || {
            let served = versions(app);
            served.len() == n && served.iter().all(|(_, v)| v.as_deref() == Some(version))
        },
    );
}

#[test]
fn a_rolling_update_moves_every_task_to_v2_with_no_failed_request_through_nginx() {
    if skip() {
        return;
    }
    let images = images();
    let cleanup = Cleanup::new();
    let app = cleanup.service(&unique("roll"));
    let sb = Sandbox::new();
    sb.write("recipe.rhai", &strategy_recipe(&app, "local()"));
    deploy(&sb, &images.tag("v1"), &[]).expect_code(0);
    wait_for_version(&app, 3, "v1");

    let nginx = Nginx::start(sb.path(), "app", running_ports(&app)[0]);
    let sync = UpstreamSync::start(&nginx, &app);
    wait_until("nginx to list the three v1 tasks", LIMIT, || {
        sync.applied().len() == 3
    });
    let load = Load::start(nginx.port, 2, 2);
    wait_until("the load to get answers", LIMIT, || load.requests() > 20);

    let run = deploy(&sb, &images.tag("v2"), &[]).expect_code(0);
    assert!(
        run.stdout
            .contains(&format!("{}: running", images.tag("v2"))),
        "per-task progress is printed:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("swarm: update completed"),
        "{}",
        run.stdout
    );
    wait_for_version(&app, 3, "v2");
    wait_until("nginx to list only the v2 tasks", LIMIT, || {
        sync.applied() == running_ports(&app)
    });
    let served = load.requests();
    wait_until("the load to get answers from v2", LIMIT, || {
        load.requests() > served + 20
    });
    let stats = load.finish();
    assert_eq!(stats.failures, 0, "{stats}");
    assert!(
        stats.versions.contains_key("v1") && stats.versions.contains_key("v2"),
        "{stats}"
    );

    let record = last_record(&sb, &app);
    assert_eq!(record["result"], "ok");
    assert_eq!(record["strategy"], "swarm");
    assert_eq!(record["image"], images.tag("v2"));
    assert_eq!(record["replicas"], 3);
}

#[test]
fn a_version_failing_its_health_check_is_rolled_back_by_swarm_and_reported() {
    if skip() {
        return;
    }
    let images = images();
    let cleanup = Cleanup::new();
    let app = cleanup.service(&unique("unhealthy"));
    let sb = Sandbox::new();
    sb.write("recipe.rhai", &strategy_recipe(&app, "local()"));
    deploy(&sb, &images.tag("v2"), &[]).expect_code(0);

    let run = deploy(&sb, &images.tag("broken"), &[]).expect_code(1);
    let report = flat(&run.stderr);
    for expected in [
        "galley::swarm_rolled_back",
        &format!("swarm service {app} on local: a task of the new spec failed, and Swarm rolled the service back"),
        &format!("task {app}."),
        &format!("running {}: failed", images.tag("broken")),
        "error: task: non-zero exit",
        "unhealthy container",
        "version broken starting without /health",
        "Swarm rolled back to the previous spec",
    ] {
        assert!(report.contains(expected), "no {expected:?} in:\n{}", run.stderr);
    }
    wait_for_version(&app, 3, "v2");
    let record = last_record(&sb, &app);
    assert_eq!(record["result"], "rolled_back");
    assert_eq!(record["image"], images.tag("broken"));
}

#[test]
fn a_rollout_past_its_deadline_is_reported_and_rolled_back() {
    if skip() {
        return;
    }
    let images = images();
    let cleanup = Cleanup::new();
    let app = cleanup.service(&unique("deadline"));
    let sb = Sandbox::new();
    sb.write("recipe.rhai", &strategy_recipe(&app, "local()"));
    deploy(&sb, &images.tag("v2"), &["--set", "replicas=2"]).expect_code(0);

    let run = deploy(
        &sb,
        &images.tag("broken"),
        &[
            "--set",
            "replicas=2",
            "--set",
            "stuck=yes",
            "--set",
            "timeout=8s",
        ],
    )
    .expect_code(1);
    let report = flat(&run.stderr);
    for expected in [
        "galley::swarm_deadline",
        "the rollout did not converge within 8s: 0 of 2 tasks on the new spec are running",
        "is starting",
        "its log (last",
        "it has no deadline of its own",
        "Galley asked Swarm to roll back (failure_action \"rollback\"): the previous spec serves again",
    ] {
        assert!(report.contains(expected), "no {expected:?} in:\n{}", run.stderr);
    }
    // The task's own log: its first line, or (on a slow machine, after many checks) the 404s
    // its health check got.
    assert!(
        report.contains("version broken starting without /health")
            || report.contains("response:404"),
        "no line of the task's log in:\n{}",
        run.stderr
    );
    wait_for_version(&app, 2, "v2");
    assert_eq!(last_record(&sb, &app)["result"], "rolled_back");
}

#[test]
fn galley_rollback_redeploys_the_previous_image() {
    if skip() {
        return;
    }
    let images = images();
    let cleanup = Cleanup::new();
    let app = cleanup.service(&unique("rollback"));
    let sb = Sandbox::new();
    sb.write("recipe.rhai", &strategy_recipe(&app, "local()"));
    deploy(&sb, &images.tag("v1"), &["--set", "replicas=2"]).expect_code(0);
    deploy(&sb, &images.tag("v2"), &["--set", "replicas=2"]).expect_code(0);
    wait_for_version(&app, 2, "v2");

    let run = sb
        .invoke(["rollback", &app, "--output", "plain"])
        .state("state")
        .run()
        .expect_code(0);
    assert!(
        run.stdout
            .contains(&format!("rolling {app} back to {}", images.tag("v1"))),
        "{}",
        run.stdout
    );
    wait_for_version(&app, 2, "v1");
    let record = last_record(&sb, &app);
    assert_eq!(record["result"], "ok");
    assert_eq!(record["image"], images.tag("v1"));
    assert!(record["rollback_to"].is_string(), "{record}");
}

#[test]
fn a_service_is_deployed_through_a_manager_reached_over_ssh() {
    if skip() {
        return;
    }
    let images = images();
    let cleanup = Cleanup::new();
    let app = cleanup.service(&unique("overssh"));
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    sb.write(
        "recipe.rhai",
        &format!(
            r#"import "galley/swarm" as swarm;
let h = ssh::connect({dest:?}, {opts});
swarm::deploy(#{{
    app: {app:?}, host: h,
    image: params.image, replicas: 2, ports: ["mode=host,target=8080"],
    update: #{{ order: "start-first", failure_action: "rollback", monitor: "1s" }},
    stop_grace_period: "2s", timeout: "90s",
}});
"#,
            dest = fleet.dest(0),
            opts = fleet.options()
        ),
    );
    for version in ["v1", "v2"] {
        let set = format!("image={}", images.tag(version));
        let run = Run::from(
            fleet
                .galley(&sb)
                .env("GALLEY_STATE_DIR", sb.path().join("state"))
                .args(["run", "recipe.rhai", "--output", "plain", "--set", &set])
                .output()
                .expect("run galley"),
        )
        .expect_code(0);
        let shown = format!("[{}] $ docker service", fleet.dest(0));
        assert!(run.stdout.contains(&shown), "{}", run.stdout);
        wait_for_version(&app, 2, version);
        let record = last_record(&sb, &app);
        assert_eq!(record["result"], "ok", "{record}");
        assert_eq!(record["strategy"], "swarm", "{record}");
        assert_eq!(
            record["hosts"],
            serde_json::json!([fleet.dest(0)]),
            "{record}"
        );
    }
}

/// The recipe of the primitive test: deploy with a secret in env and as a Docker secret.
fn primitive_recipe(app: &str, image: &str) -> String {
    format!(
        r#"let sw = local().swarm();
print("role=" + sw.status().role);
let svc = sw.service({app:?});
let r = svc.deploy(#{{
    image: {image:?}, replicas: 1, ports: ["mode=host,target=8080"],
    env: #{{ TOKEN: secret("SWARM_TOKEN") }}, secrets: #{{ token: secret("SWARM_TOKEN") }},
    stop_grace_period: "1s", timeout: "60s",
}});
print("created=" + r.created);
if task != "dry" {{
    print("running=" + svc.status().running);
    print("port=" + svc.tasks()[0].ports[0]);
    svc.scale(2);
    print("scaled=" + svc.status().running);
    print("logs=" + svc.logs(#{{ tail: 5 }}).len());
    svc.rm();
    print("after_rm=" + svc.status().exists);
}}
fn dry() {{}}
fn real() {{}}
"#
    )
}

#[test]
fn deploy_scale_and_rm_mask_the_secrets_and_dry_run_changes_nothing() {
    if skip() {
        return;
    }
    let images = images();
    let cleanup = Cleanup::new();
    let app = cleanup.service(&unique("prim"));
    let sb = Sandbox::new();
    let token = "swarm-token-e4d1c0ffee";
    sb.write("recipe.rhai", &primitive_recipe(&app, &images.tag("v1")));
    let run_task = |task: &str, extra: &[&str]| {
        let mut args = vec!["run", "recipe.rhai", task, "--output", "plain"];
        args.extend_from_slice(extra);
        sb.invoke(&args)
            .state("state")
            .env("SWARM_TOKEN", token)
            .run()
    };

    let dry = run_task("dry", &["--dry-run"]).expect_code(0);
    assert!(
        dry.stdout.contains(&format!(
            "would docker service create --name {app} --replicas 1 --publish mode=host,target=8080 --env TOKEN=*** --secret token"
        )),
        "{}",
        dry.stdout
    );
    assert!(!dry.stdout.contains(token) && !dry.stderr.contains(token));
    assert!(
        !docker_cli(&["service", "inspect", &app]).status.success(),
        "a dry run creates no service"
    );

    // Watch the task's container while the recipe runs: it is gone again at the end (rm).
    let watcher = {
        let app = app.clone();
        std::thread::spawn(move || {
            let mut seen = None;
            wait_until("the service's container", LIMIT, || {
                seen = lines(&[
                    "ps",
                    "-q",
                    "--filter",
                    &format!("label=com.docker.swarm.service.name={app}"),
                ])
                .first()
                .map(|id| {
                    (
                        cli(&["exec", id, "cat", "/run/secrets/token"]),
                        cli(&["exec", id, "sh", "-c", "echo $TOKEN"]),
                    )
                });
                seen.is_some()
            });
            seen.unwrap()
        })
    };
    let run = run_task("real", &[]).expect_code(0);
    let (file, env) = watcher.join().expect("the container watcher");
    assert_eq!(file, token, "the Docker secret holds the value");
    assert_eq!(env, token, "the env value reaches the task");
    assert!(
        !run.stdout.contains(token) && !run.stderr.contains(token),
        "{}",
        run.stdout
    );
    assert_eq!(value_of(&run.stdout, "role"), "manager");
    assert_eq!(value_of(&run.stdout, "created"), "true");
    assert_eq!(value_of(&run.stdout, "running"), "1");
    assert!(value_of(&run.stdout, "port").parse::<u16>().is_ok());
    assert_eq!(value_of(&run.stdout, "scaled"), "2");
    assert_eq!(value_of(&run.stdout, "after_rm"), "false");
    assert!(run
        .stdout
        .contains(&format!("$ docker service scale {app}=2")));
    assert!(run.stdout.contains(&format!("$ docker service rm {app}")));
}

#[test]
fn an_update_that_swarm_pauses_is_reported_with_the_failing_task() {
    if skip() {
        return;
    }
    let images = images();
    let cleanup = Cleanup::new();
    let app = cleanup.service(&unique("paused"));
    let sb = Sandbox::new();
    let recipe = |image: &str| {
        format!(
            r#"local().swarm().service({app:?}).deploy(#{{
    image: {image:?}, replicas: 1, ports: ["mode=host,target=8080"],
    update: #{{ order: "start-first", failure_action: "pause", monitor: "1s" }},
    stop_grace_period: "1s", timeout: "60s",
}});
"#
        )
    };
    sb.run_recipe(&recipe(&images.tag("v1")), &[])
        .expect_code(0);
    let run = sb
        .run_recipe(&recipe(&images.tag("broken")), &[])
        .expect_code(1);
    let report = flat(&run.stderr);
    for expected in [
        "galley::swarm_paused",
        &format!("swarm service {app} on local: Swarm paused the update"),
        "unhealthy container",
        "Swarm paused it: update paused due to failure or early termination of task",
        "version broken starting without /health",
    ] {
        assert!(
            report.contains(expected),
            "no {expected:?} in:\n{}",
            run.stderr
        );
    }
    // start-first: the old task was never stopped.
    wait_for_version(&app, 1, "v1");
}

#[test]
fn a_new_service_whose_task_exits_is_reported_at_once_with_its_output() {
    if skip() {
        return;
    }
    let images = images();
    let cleanup = Cleanup::new();
    let app = cleanup.service(&unique("exits"));
    let sb = Sandbox::new();
    let recipe = format!(
        r#"local().swarm().service({app:?}).deploy(#{{
    image: {image:?}, command: "echo crashing on purpose; exit 3", timeout: "60s",
}});
"#,
        image = images.tag("v1")
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(1);
    let report = flat(&run.stderr);
    for expected in [
        "galley::swarm_task_failed",
        &format!("swarm service {app} on local: a task of the new spec failed"),
        "error: task: non-zero exit (3)",
        "crashing on purpose",
        "Swarm restarts the task (restart policy)",
    ] {
        assert!(
            report.contains(expected),
            "no {expected:?} in:\n{}",
            run.stderr
        );
    }
}

#[test]
fn ctrl_c_stops_the_wait_for_a_rollout() {
    if skip() {
        return;
    }
    let images = images();
    let cleanup = Cleanup::new();
    let app = cleanup.service(&unique("ctrlc"));
    let sb = Sandbox::new();
    sb.write("recipe.rhai", &strategy_recipe(&app, "local()"));
    let out = sb.path().join("out.txt");
    let set = format!("image={}", images.tag("broken"));
    let mut child = sb
        .galley()
        .env("GALLEY_STATE_DIR", sb.path().join("state"))
        .args(["run", "recipe.rhai", "--output", "plain", "--set", &set])
        .args(["--set", "replicas=1", "--set", "stuck=yes"])
        .stdout(std::fs::File::create(&out).expect("create out.txt"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn galley");
    wait_until("the task to be starting", LIMIT, || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.contains(": starting"))
    });
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let mut code = None;
    wait_until("galley to exit", LIMIT, || {
        code = child.try_wait().expect("wait for galley");
        code.is_some()
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(code.unwrap().code(), Some(130), "{stderr}");
    assert!(stderr.contains("galley::interrupted"), "{stderr}");
    assert_eq!(last_record(&sb, &app)["result"], "interrupted");
}
