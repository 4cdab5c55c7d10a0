//! `host.docker()` against this machine's real Docker Engine: images built from the local static
//! busybox (nothing can be pulled), a local registry, and the socket forwarded over ssh. Every
//! container, image and network a test makes is removed by a `Cleanup` guard, even on failure.
//! The docker CLI only sets up and checks; galley itself talks to the API.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::docker::{self, base_image, cli, unique, Cleanup, Registry};
use crate::support::lit;
use crate::support::sshd::Fleet;
use crate::support::{flat, free_port, http_get, value_of, wait_until, Run, Sandbox};

const LIMIT: Duration = Duration::from_secs(30);

/// True (after a note) when no Docker daemon answers here, so the test has nothing to run against.
fn skip() -> bool {
    if docker::available() {
        return false;
    }
    eprintln!("note: the Docker daemon does not answer (`docker version` fails); skipping");
    true
}

/// `docker inspect --format FORMAT TARGET`, or None when there is no such object.
fn inspect(target: &str, format: &str) -> Option<String> {
    let out = docker::docker(&["inspect", "--format", format, target]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A container's state as the CLI sees it, or "missing".
fn state(name: &str) -> String {
    inspect(name, "{{.State.Status}}").unwrap_or_else(|| "missing".into())
}

/// Whether an image reference exists locally.
fn image_exists(reference: &str) -> bool {
    docker::docker(&["image", "inspect", reference])
        .status
        .success()
}

/// The full id (`sha256:...`) of an image.
fn image_id(reference: &str) -> String {
    cli(&["image", "inspect", "--format", "{{.Id}}", reference])
}

/// Whether `short` (as galley returned it) names the same object as the full id `full`.
fn same_id(short: &str, full: &str) -> bool {
    let short = short.trim().trim_start_matches("sha256:");
    let full = full.trim().trim_start_matches("sha256:");
    short.len() >= 12 && full.starts_with(short)
}

/// Writes a build context `dir` in the sandbox whose Dockerfile starts `FROM <base image>` and
/// goes on with `steps`, plus `files`.
fn context(sb: &Sandbox, dir: &str, steps: &str, files: &[(&str, &str)]) {
    sb.write(
        &format!("{dir}/Dockerfile"),
        &format!("FROM {}\n{steps}", base_image()),
    );
    for (path, text) in files {
        sb.write(&format!("{dir}/{path}"), text);
    }
}

/// Runs `docker run -d --name NAME ARGS... IMAGE sleep 600` for the test; the name is recorded.
fn cli_sleeper(cleanup: &Cleanup, name: &str, args: &[&str]) {
    cleanup.container(name);
    let mut all = vec!["run", "-d", "--name", name];
    all.extend_from_slice(args);
    all.extend_from_slice(&[base_image(), "sleep", "600"]);
    cli(&all);
}

/// The values of every `key=` line of galley's output, in order.
fn values_of(stdout: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(str::to_string)
        .collect()
}

/// Asserts that galley failed with exit code 1 and the report `code`, and returns the report with
/// its wrapped lines joined and every space removed: reports wrap at 100 columns, also inside
/// names at their dashes, so needles (which hold no spaces) are matched against this.
#[track_caller]
fn failed_with(run: Run, code: &str) -> String {
    let run = run.expect_code(1);
    assert!(
        run.stderr.contains(code),
        "expected the report {code}:\n--- stdout ---\n{}\n--- stderr ---\n{}",
        run.stdout,
        run.stderr
    );
    flat(&run.stderr).split_whitespace().collect()
}

// ---------------------------------------------------------------------------------------------
// The fixtures themselves, with the docker CLI only

#[test]
fn fixture_base_image_runs_busybox_and_derived_images_build_on_it() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let base = base_image();
    assert_eq!(
        cli(&[
            "run",
            "--rm",
            base,
            "sh",
            "-c",
            "echo hello from $(basename $0)"
        ]),
        "hello from sh"
    );
    let tag = cleanup.image(&format!("{}:1", unique("derived")));
    context(
        &sb,
        "ctx",
        "COPY hello.txt /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n",
        &[("hello.txt", "derived\n")],
    );
    cli(&["build", "-q", "-t", &tag, &sb.join("ctx")]);
    let name = cleanup.container(&unique("derived"));
    cli(&["run", "--name", &name, &tag]);
    assert_eq!(cli(&["logs", &name]), "derived");
    assert_eq!(
        inspect(
            &tag,
            &format!("{{{{index .Config.Labels \"{}\"}}}}", docker::PID_LABEL)
        ),
        Some(std::process::id().to_string()),
        "derived images inherit the pid label"
    );
}

#[test]
fn fixture_cleanup_removes_containers_networks_and_images() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let name = unique("cleanup");
    let tag = format!("{}:1", unique("cleanup"));
    let network = unique("cleanup");
    let label = format!("galley-test-case={name}");
    {
        let cleanup = Cleanup::new();
        cleanup.label(&label);
        context(
            &sb,
            "ctx",
            &format!("LABEL galley-test-case={name}\nRUN echo building && false\n"),
            &[],
        );
        // A failed build leaves its step's container and intermediate image behind.
        let failed = docker::docker(&["build", &sb.join("ctx")]);
        assert!(!failed.status.success());
        assert_eq!(
            docker::lines(&["ps", "-a", "-q", "--filter", &format!("label={label}")]).len(),
            1,
            "the failed step's container is left by the CLI"
        );
        cleanup.image(&tag);
        cli(&["tag", base_image(), &tag]);
        cleanup.network(&network);
        cli(&["network", "create", &network]);
        cli_sleeper(&cleanup, &name, &["--network", &network]);
        assert_eq!(state(&name), "running");
    }
    assert_eq!(state(&name), "missing");
    assert!(!image_exists(&tag));
    assert!(inspect(&network, "{{.Name}}").is_none());
    assert!(docker::lines(&["ps", "-a", "-q", "--filter", &format!("label={label}")]).is_empty());
    assert!(
        docker::lines(&["images", "-a", "-q", "--filter", &format!("label={label}")]).is_empty()
    );
    assert!(image_exists(base_image()), "the base image stays");
}

#[test]
fn fixture_registry_takes_a_push_and_gives_it_back() {
    if skip() {
        return;
    }
    let cleanup = Cleanup::new();
    let registry = Registry::start();
    assert_eq!(registry.status("/v2/", None), Some(200));
    let repo = unique("cli-push");
    let remote = cleanup.image(&format!("{}/{repo}:1", registry.host()));
    cli(&["tag", base_image(), &remote]);
    cli(&["push", &remote]);
    assert_eq!(registry.tags(&repo, None), vec!["1".to_string()]);
    cli(&["rmi", &remote]);
    assert!(!image_exists(&remote));
    cli(&["pull", &remote]);
    assert_eq!(image_id(&remote), image_id(base_image()));
}

#[test]
fn fixture_auth_registry_wants_the_password() {
    if skip() {
        return;
    }
    let Some(registry) = Registry::start_with_auth("galley", "right-pw") else {
        eprintln!("note: no bcrypt tool (python3 crypt/bcrypt, htpasswd -B); skipping");
        return;
    };
    assert_eq!(registry.status("/v2/", None), Some(401));
    assert_eq!(
        registry.status("/v2/", Some(("galley", "wrong"))),
        Some(401)
    );
    assert_eq!(
        registry.status("/v2/", Some(("galley", "right-pw"))),
        Some(200)
    );
    // The daemon logs in too (into a config folder of the test's own).
    let config = tempfile::tempdir().unwrap();
    let login = |password: &str| {
        let mut child = Command::new("docker")
            .arg("--config")
            .arg(config.path())
            .args([
                "login",
                "-u",
                "galley",
                "--password-stdin",
                &registry.host(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        child.wait().unwrap().success()
    };
    assert!(!login("wrong"));
    assert!(login("right-pw"));
}

// ---------------------------------------------------------------------------------------------
// Build, run, status, inspect, logs, exec

#[test]
fn build_and_run_an_httpd_that_answers_on_its_published_port() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let name = cleanup.container(&unique("web"));
    let tag = cleanup.image(&format!("{}:1", unique("web")));
    let latest = cleanup.image(&tag.replace(":1", ":latest"));
    let page = format!("hello from {name}\n");
    context(
        &sb,
        "web",
        "COPY index.html /www/index.html\nCMD [\"sh\"]\n",
        &[("index.html", &page)],
    );
    let port = free_port();
    let recipe = format!(
        r#"let d = local().docker();
let id = d.build(#{{ context: "web", file: "Dockerfile", tags: [{tag}, {latest}], labels: #{{ role: "web" }} }});
print("image=" + id);
let c = d.run(#{{
    name: {name},
    image: {tag},
    ports: ["127.0.0.1:{port}:80"],
    command: ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"],
}});
print("container=" + c);
"#,
        tag = lit(&tag),
        latest = lit(&latest),
        name = lit(&name),
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("[local]") && l.contains("COPY index.html")),
        "the build's steps stream as [local] lines:\n{}",
        run.stdout
    );
    let id = value_of(&run.stdout, "image");
    assert!(
        same_id(&id, &image_id(&tag)),
        "build returns the image id: {id} vs {}",
        image_id(&tag)
    );
    assert_eq!(
        image_id(&latest),
        image_id(&tag),
        "every tag names the image"
    );
    assert_eq!(
        inspect(&tag, "{{index .Config.Labels \"role\"}}").as_deref(),
        Some("web")
    );
    let container = value_of(&run.stdout, "container");
    let full = inspect(&name, "{{.Id}}").expect("the container exists");
    assert!(same_id(&container, &full), "{container} vs {full}");
    assert_eq!(state(&name), "running");
    wait_until("the httpd to serve the page", LIMIT, || {
        http_get(port, "/index.html").as_deref() == Some(page.as_str())
    });
}

#[test]
fn status_goes_from_missing_to_running_to_exited_to_missing() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let name = cleanup.container(&unique("status"));
    let recipe = format!(
        r#"let d = local().docker();
print("before=" + d.status({name}));
d.run(#{{ name: {name}, image: {base}, command: ["sleep", "600"] }});
print("started=" + d.status({name}));
d.stop({name}, #{{ timeout: "1s" }});
print("stopped=" + d.status({name}));
d.rm({name});
print("removed=" + d.status({name}));
"#,
        name = lit(&name),
        base = lit(base_image()),
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    assert_eq!(value_of(&run.stdout, "before"), "missing");
    assert_eq!(value_of(&run.stdout, "started"), "running");
    assert_eq!(value_of(&run.stdout, "stopped"), "exited");
    assert_eq!(value_of(&run.stdout, "removed"), "missing");
    assert_eq!(state(&name), "missing");

    let created = cleanup.container(&unique("created"));
    cli(&["create", "--name", &created, base_image(), "sleep", "600"]);
    let recipe = format!(
        "print(\"status=\" + local().docker().status({}));\n",
        lit(&created)
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    assert_eq!(value_of(&run.stdout, "status"), "created");
}

#[test]
fn rm_with_force_removes_a_running_container() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let name = unique("force");
    cli_sleeper(&cleanup, &name, &[]);
    let recipe = format!(
        "let d = local().docker();\nd.rm({n}, #{{ force: true }});\nprint(\"after=\" + d.status({n}));\n",
        n = lit(&name)
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    assert_eq!(value_of(&run.stdout, "after"), "missing");
    assert_eq!(state(&name), "missing");
}

#[test]
fn inspect_shows_the_environment_exec_runs_and_logs_tail() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let name = cleanup.container(&unique("inspect"));
    let recipe = format!(
        r#"let d = local().docker();
d.run(#{{
    name: {name},
    image: {base},
    env: #{{ GREETING: "hello world" }},
    restart: "unless-stopped",
    labels: #{{ team: "deploy" }},
    command: ["sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; exec sleep 600"],
}});
let info = d.inspect({name});
print("state=" + info.State.Status);
for e in info.Config.Env {{ if e.starts_with("GREETING=") {{ print("env=" + e); }} }}
let r = d.exec({name}, ["sh", "-c", "cat /etc/hostname; echo to-stderr >&2"]);
print("code=" + r.code);
let out = r.stdout; out.trim(); print("stdout=" + out);
let err = r.stderr; err.trim(); print("stderr=" + err);
"#,
        name = lit(&name),
        base = lit(base_image()),
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    assert_eq!(value_of(&run.stdout, "state"), "running");
    assert_eq!(value_of(&run.stdout, "env"), "GREETING=hello world");
    assert_eq!(value_of(&run.stdout, "code"), "0");
    let full = inspect(&name, "{{.Id}}").unwrap();
    assert_eq!(value_of(&run.stdout, "stdout"), full[..12]);
    assert_eq!(value_of(&run.stdout, "stderr"), "to-stderr");
    assert_eq!(
        inspect(&name, "{{.HostConfig.RestartPolicy.Name}}").as_deref(),
        Some("unless-stopped")
    );
    assert_eq!(
        inspect(&name, "{{index .Config.Labels \"team\"}}").as_deref(),
        Some("deploy")
    );

    // The five lines are written right after the start: wait for them, then tail.
    wait_until("the container to print its lines", LIMIT, || {
        cli(&["logs", &name]).ends_with("line5")
    });
    let recipe = format!(
        "let logs = local().docker().logs({name}, #{{ tail: 2 }});\nfor l in logs.split(\"\\n\") {{ if l != \"\" {{ print(\"log=\" + l); }} }}\n",
        name = lit(&name)
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    assert_eq!(values_of(&run.stdout, "log"), vec!["line4", "line5"]);
}

#[test]
fn dockerignore_keeps_listed_files_out_of_the_image() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let name = cleanup.container(&unique("ignore"));
    let tag = cleanup.image(&format!("{}:1", unique("ignore")));
    context(
        &sb,
        "ctx",
        "COPY . /ctx\n",
        &[
            ("keep.txt", "kept\n"),
            ("secret.txt", "must not be in the image\n"),
            ("logs/app.log", "nor this\n"),
            ("src/main.txt", "kept too\n"),
            (".dockerignore", "secret.txt\nlogs\n"),
        ],
    );
    let recipe = format!(
        r#"let d = local().docker();
d.build(#{{ context: "ctx", tags: [{tag}] }});
d.run(#{{ name: {name}, image: {tag}, command: ["sleep", "600"] }});
let r = d.exec({name}, ["ls", "-a", "/ctx"]);
for f in r.stdout.split("\n") {{ if f != "" {{ print("file=" + f); }} }}
"#,
        tag = lit(&tag),
        name = lit(&name),
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    let files = values_of(&run.stdout, "file");
    assert!(files.contains(&"keep.txt".to_string()), "{files:?}");
    assert!(files.contains(&"src".to_string()), "{files:?}");
    assert!(!files.contains(&"secret.txt".to_string()), "{files:?}");
    assert!(!files.contains(&"logs".to_string()), "{files:?}");
}

#[test]
fn a_dockerignore_exception_brings_back_a_file_inside_an_excluded_folder() {
    if skip() {
        return;
    }
    // As with `docker build`: `docs` excludes the folder, `!docs/keep.md` brings that one file back.
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let tag = cleanup.image(&format!("{}:1", unique("exception")));
    context(
        &sb,
        "ctx",
        "COPY . /ctx\n",
        &[
            ("docs/keep.md", "kept\n"),
            ("docs/other.md", "left out\n"),
            (".dockerignore", "docs\n!docs/keep.md\n"),
        ],
    );
    let recipe = format!(
        "local().docker().build(#{{ context: \"ctx\", tags: [{}] }});\n",
        lit(&tag)
    );
    sb.run_recipe(&recipe, &[]).expect_code(0);
    let listing = cli(&["run", "--rm", &tag, "find", "/ctx/"]);
    let mut files: Vec<&str> = listing.lines().collect();
    files.sort_unstable();
    assert!(files.contains(&"/ctx/docs/keep.md"), "{files:?}");
    assert!(!files.contains(&"/ctx/docs/other.md"), "{files:?}");
}

#[test]
fn volumes_mount_a_host_folder_and_env_file_values_arrive() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let name = cleanup.container(&unique("volume"));
    sb.write("data/note.txt", "written on the host\n");
    sb.write(
        "app.env",
        "# settings\nexport FROM_FILE=one\nQUOTED=\"two words\"\n",
    );
    let recipe = format!(
        r#"let d = local().docker();
d.run(#{{ name: {name}, image: {base}, volumes: [{volume}], env_file: "app.env", command: ["sleep", "600"] }});
let r = d.exec({name}, ["sh", "-c", "cat /data/note.txt; echo \"$FROM_FILE/$QUOTED\" > /data/back.txt"]);
for l in r.stdout.split("\n") {{ if l != "" {{ print("out=" + l); }} }}
"#,
        name = lit(&name),
        base = lit(base_image()),
        volume = lit(&format!("{}:/data", sb.join("data"))),
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    assert_eq!(values_of(&run.stdout, "out"), vec!["written on the host"]);
    // (Printed, the env_file's values would show as ***: they are masked like secrets.)
    assert_eq!(
        std::fs::read_to_string(sb.path().join("data/back.txt")).unwrap(),
        "one/two words\n"
    );
}

#[test]
fn build_args_and_target_pick_the_stage_and_values() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let tag = cleanup.image(&format!("{}:1", unique("stages")));
    let base = base_image();
    sb.write(
        "ctx/Dockerfile",
        &format!(
            "FROM {base} AS first\nARG FLAVOR=plain\nRUN echo \"first $FLAVOR\" > /built\n\
             FROM {base} AS second\nRUN echo second > /built\n"
        ),
    );
    let recipe = format!(
        "local().docker().build(#{{ context: \"ctx\", tags: [{tag}], build_args: #{{ FLAVOR: \"spicy\" }}, target: \"first\" }});\n",
        tag = lit(&tag)
    );
    sb.run_recipe(&recipe, &[]).expect_code(0);
    assert_eq!(cli(&["run", "--rm", &tag, "cat", "/built"]), "first spicy");
}

// ---------------------------------------------------------------------------------------------
// Secrets and --dry-run

#[test]
fn secret_and_env_file_values_are_masked_and_a_dry_run_creates_nothing() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let name = cleanup.container(&unique("masked"));
    let tag = cleanup.image(&format!("{}:1", unique("masked")));
    context(&sb, "ctx", "CMD [\"sleep\", \"600\"]\n", &[]);
    sb.write("app.env", "DB_PASSWORD=envfile-pw-123\n");
    let recipe = format!(
        r#"let d = local().docker();
d.build(#{{ context: "ctx", tags: [{tag}] }});
d.run(#{{ name: {name}, image: {tag}, env: #{{ TOKEN: secret("X"), MODE: "prod" }}, env_file: "app.env" }});
let r = d.exec({name}, ["sh", "-c", "echo token=$TOKEN password=$DB_PASSWORD"]);
print("echoed=" + r.stdout);
"#,
        tag = lit(&tag),
        name = lit(&name),
    );
    sb.write("recipe.rhai", &recipe);
    let galley = |extra: &[&str]| {
        let mut cmd = sb.galley();
        cmd.args(["run", "recipe.rhai", "--output", "plain"])
            .args(extra)
            .env("X", "s3cr3t-value");
        Run::from(cmd.output().expect("run galley"))
    };
    let check = |run: &Run| {
        for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            for value in ["s3cr3t-value", "envfile-pw-123"] {
                assert!(
                    !text.contains(value),
                    "{value} printed on {stream}:\n{text}"
                );
            }
        }
        assert!(
            run.stdout.contains("***"),
            "the masked values show as ***:\n{}",
            run.stdout
        );
    };

    let dry = galley(&["--dry-run"]).expect_code(0);
    check(&dry);
    assert_eq!(state(&name), "missing", "a dry run creates no container");
    assert!(!image_exists(&tag), "a dry run builds no image");

    let real = galley(&[]).expect_code(0);
    check(&real);
    assert_eq!(
        value_of(&real.stdout, "echoed"),
        "token=*** password=***",
        "what the container prints is masked too"
    );
    let env = inspect(&name, "{{json .Config.Env}}").expect("the container exists");
    assert!(env.contains("\"TOKEN=s3cr3t-value\""), "{env}");
    assert!(env.contains("\"DB_PASSWORD=envfile-pw-123\""), "{env}");
    assert!(env.contains("\"MODE=prod\""), "{env}");
    assert_eq!(state(&name), "running");
}

#[test]
fn a_dry_run_prints_the_changes_and_makes_none() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let running = unique("keepsrunning");
    cli_sleeper(&cleanup, &running, &[]);
    let repo = unique("dryold");
    let old = cleanup.image(&format!("{repo}:1"));
    cli(&["tag", base_image(), &old]);
    let new_tag = cleanup.image(&format!("{}:1", unique("drynew")));
    let retag = cleanup.image(&format!("{repo}:2"));
    let new_name = cleanup.container(&unique("drynew"));
    let network = cleanup.network(&unique("drynet"));
    context(&sb, "ctx", "RUN echo built > /built\n", &[]);
    let recipe = format!(
        r#"let d = local().docker();
print("status=" + d.status({running}));
d.build(#{{ context: "ctx", tags: [{new_tag}] }});
d.network({network});
d.run(#{{ name: {new_name}, image: {new_tag}, network: {network} }});
d.tag({old}, {retag});
d.stop({running});
d.rm({running}, #{{ force: true }});
d.prune_images(#{{ reference: {repo}, keep: 0 }});
"#,
        running = lit(&running),
        new_tag = lit(&new_tag),
        network = lit(&network),
        new_name = lit(&new_name),
        old = lit(&old),
        retag = lit(&retag),
        repo = lit(&repo),
    );
    let run = sb.run_recipe(&recipe, &["--dry-run"]).expect_code(0);
    assert_eq!(
        value_of(&run.stdout, "status"),
        "running",
        "queries still run"
    );
    for action in [
        "build",
        "network create",
        "run",
        "tag",
        "stop",
        "rm",
        &format!("rmi {old}"),
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with("[local] would docker ") && l.contains(action)),
            "a `would docker {action}` line:\n{}",
            run.stdout
        );
    }
    assert_eq!(state(&running), "running");
    assert_eq!(state(&new_name), "missing");
    assert!(!image_exists(&new_tag));
    assert!(!image_exists(&retag));
    assert!(image_exists(&old));
    assert!(inspect(&network, "{{.Name}}").is_none());
}

// ---------------------------------------------------------------------------------------------
// Reports

#[test]
fn a_failing_build_step_is_reported_with_its_output_and_the_recipe_line() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let case = unique("badbuild");
    let label = cleanup.label(&format!("galley-test-case={case}"));
    let tag = cleanup.image(&format!("{case}:1"));
    context(
        &sb,
        "bad",
        &format!("LABEL {label}\nRUN echo fine > /fine\nRUN echo \"marker-$((6*7))\" && false\n"),
        &[],
    );
    let recipe = format!(
        "let d = local().docker();\nlet id = d.build(#{{ context: \"bad\", tags: [{}] }});\nlog(\"not reached\");\n",
        lit(&tag)
    );
    let run = sb.run_recipe(&recipe, &[]);
    let stdout = run.stdout.clone();
    let report = failed_with(run, "galley::docker_build");
    assert!(!stdout.contains("not reached"));
    assert!(
        report.contains("RUNecho\"marker-$((6*7))\"&&false"),
        "the report shows the failing step:\n{report}"
    );
    assert!(
        report.contains("marker-42"),
        "the report shows the step's output:\n{report}"
    );
    assert!(
        report.contains("recipe.rhai:2:") && report.contains("d.build("),
        "the report points at the build line:\n{report}"
    );
    assert!(!image_exists(&tag));
    let left = docker::lines(&["ps", "-a", "-q", "--filter", &format!("label={label}")]);
    assert!(
        left.is_empty(),
        "the failed step's container is removed, not left on the host: {left:?}"
    );
}

#[test]
fn a_second_run_with_the_same_name_is_refused() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let name = cleanup.container(&unique("twice"));
    let recipe = format!(
        "local().docker().run(#{{ name: {}, image: {}, command: [\"sleep\", \"600\"] }});\n",
        lit(&name),
        lit(base_image())
    );
    sb.run_recipe(&recipe, &[]).expect_code(0);
    let first = inspect(&name, "{{.Id}}").unwrap();
    let report = failed_with(sb.run_recipe(&recipe, &[]), "galley::docker_name_in_use");
    assert!(report.contains(&name), "the report names it:\n{report}");
    assert_eq!(
        inspect(&name, "{{.Id}}").unwrap(),
        first,
        "the first one is untouched"
    );
    assert_eq!(state(&name), "running");
}

#[test]
fn a_host_port_held_by_another_container_is_reported_with_that_container() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let holder = unique("holder");
    let port = free_port();
    cli_sleeper(&cleanup, &holder, &["-p", &format!("127.0.0.1:{port}:80")]);
    let name = cleanup.container(&unique("second"));
    let recipe = format!(
        "local().docker().run(#{{ name: {}, image: {}, ports: [\"127.0.0.1:{port}:80\"], command: [\"sleep\", \"600\"] }});\n",
        lit(&name),
        lit(base_image())
    );
    let report = failed_with(sb.run_recipe(&recipe, &[]), "galley::docker_port_allocated");
    assert!(
        report.contains(&port.to_string()),
        "names the port:\n{report}"
    );
    assert!(report.contains(&holder), "names the holder:\n{report}");
    assert_eq!(state(&holder), "running");
    assert_eq!(
        state(&name),
        "missing",
        "the container that could not start is not left behind (a second run would find its name taken)"
    );
}

#[test]
fn running_an_image_that_does_not_exist_is_reported() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let name = cleanup.container(&unique("noimage"));
    let image = format!("{}:nope", unique("absent"));
    let recipe = format!(
        "local().docker().run(#{{ name: {}, image: {} }});\n",
        lit(&name),
        lit(&image)
    );
    let report = failed_with(
        sb.run_recipe(&recipe, &[]),
        "galley::docker_image_not_found",
    );
    assert!(report.contains(&image), "names the image:\n{report}");
    assert_eq!(state(&name), "missing");
}

#[test]
fn an_unreachable_daemon_is_reported_with_its_socket() {
    // Needs no daemon at all.
    let sb = Sandbox::new();
    sb.write(
        "recipe.rhai",
        "let d = local().docker();\nprint(d.status(\"anything\"));\n",
    );
    let out = sb
        .galley()
        .args(["run", "recipe.rhai", "--output", "plain"])
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .output()
        .expect("run galley");
    let report = failed_with(Run::from(out), "galley::docker_unreachable");
    assert!(
        report.contains("/nonexistent.sock"),
        "names the socket:\n{report}"
    );
}

// ---------------------------------------------------------------------------------------------
// Registry: tag, push, pull, auth

#[test]
fn tag_push_and_pull_through_a_local_registry() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let registry = Registry::start();
    let repo = unique("pushed");
    let tag = cleanup.image(&format!("{repo}:1"));
    let remote = cleanup.image(&format!("{}/{repo}:1", registry.host()));
    context(&sb, "ctx", "RUN echo pushed > /pushed\n", &[]);
    cli(&["build", "-q", "-t", &tag, &sb.join("ctx")]);
    let recipe = format!(
        "let d = local().docker();\nd.tag({tag}, {remote});\nd.push({remote});\n",
        tag = lit(&tag),
        remote = lit(&remote)
    );
    sb.run_recipe(&recipe, &[]).expect_code(0);
    assert_eq!(image_id(&remote), image_id(&tag));
    assert_eq!(registry.tags(&repo, None), vec!["1".to_string()]);

    cli(&["rmi", &remote]);
    assert!(!image_exists(&remote));
    let recipe = format!("local().docker().pull({});\n", lit(&remote));
    sb.run_recipe(&recipe, &[]).expect_code(0);
    assert!(image_exists(&remote), "pull brings the image back");
    assert_eq!(image_id(&remote), image_id(&tag));
}

#[test]
fn pulling_what_the_registry_does_not_have_is_image_not_found() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let registry = Registry::start();
    let remote = format!("{}/{}:1", registry.host(), unique("never-pushed"));
    let recipe = format!("local().docker().pull({});\n", lit(&remote));
    let report = failed_with(
        sb.run_recipe(&recipe, &[]),
        "galley::docker_image_not_found",
    );
    assert!(report.contains(&remote), "names the image:\n{report}");
    assert!(!image_exists(&remote));
}

#[test]
fn push_with_wrong_credentials_is_an_auth_error_and_right_ones_push() {
    if skip() {
        return;
    }
    let Some(registry) = Registry::start_with_auth("galley", "right-pw") else {
        eprintln!("note: no bcrypt tool (python3 crypt/bcrypt, htpasswd -B); skipping");
        return;
    };
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let repo = unique("private");
    let remote = cleanup.image(&format!("{}/{repo}:1", registry.host()));
    cli(&["tag", base_image(), &remote]);
    let recipe = format!(
        "local().docker().push({}, #{{ auth: #{{ username: \"galley\", password: secret(\"REG_PASSWORD\") }} }});\n",
        lit(&remote)
    );
    sb.write("recipe.rhai", &recipe);
    let push = |password: &str| {
        let out = sb
            .galley()
            .args(["run", "recipe.rhai", "--output", "plain"])
            .env("REG_PASSWORD", password)
            .output()
            .expect("run galley");
        Run::from(out)
    };

    let anonymous = format!("local().docker().push({});\n", lit(&remote));
    failed_with(sb.run_recipe(&anonymous, &[]), "galley::docker_auth");
    sb.write("recipe.rhai", &recipe);

    let wrong = push("wrong-pw-987");
    assert!(
        !wrong.stdout.contains("wrong-pw-987") && !wrong.stderr.contains("wrong-pw-987"),
        "the password is masked:\n{}\n{}",
        wrong.stdout,
        wrong.stderr
    );
    failed_with(wrong, "galley::docker_auth");
    assert!(registry
        .tags(&repo, Some(("galley", "right-pw")))
        .is_empty());

    let right = push("right-pw").expect_code(0);
    assert!(!right.stdout.contains("right-pw") && !right.stderr.contains("right-pw"));
    assert_eq!(
        registry.tags(&repo, Some(("galley", "right-pw"))),
        vec!["1".to_string()]
    );
}

// ---------------------------------------------------------------------------------------------
// images, prune_images, network

#[test]
fn prune_images_keeps_the_three_newest_builds_of_a_repository() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let repo = unique("app");
    for i in 1..=5 {
        cleanup.image(&format!("{repo}:{i}"));
        context(
            &sb,
            &format!("ctx{i}"),
            // The repository's unique name in the layer: a build cached from another test
            // process would share its image, which that process force-removes by id.
            &format!("RUN echo build {i} {repo} > /build\n"),
            &[],
        );
    }
    // Another repository, built first, stays whatever its age.
    let other = cleanup.image(&format!("{}:1", unique("other")));
    cli(&["tag", base_image(), &other]);

    let recipe = format!(
        r#"let d = local().docker();
for i in 1..=5 {{
    d.build(#{{ context: "ctx" + i, tags: [{repo} + ":" + i], labels: #{{ build: "" + i }} }});
}}
for img in d.images(#{{ reference: {repo} }}) {{
    print("image=" + img.tags[0]);
    print("id=" + img.id);
}}
for r in d.prune_images(#{{ reference: {repo}, keep: 3 }}) {{ print("removed=" + r); }}
"#,
        repo = lit(&repo)
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    let listed = values_of(&run.stdout, "image");
    let expected: Vec<String> = (1..=5).rev().map(|i| format!("{repo}:{i}")).collect();
    assert_eq!(listed, expected, "images, newest first:\n{}", run.stdout);
    let mut removed = values_of(&run.stdout, "removed");
    removed.sort();
    assert_eq!(
        removed,
        vec![format!("{repo}:1"), format!("{repo}:2")],
        "{}",
        run.stdout
    );
    let mut left = docker::lines(&["images", &repo, "--format", "{{.Tag}}"]);
    left.sort();
    assert_eq!(left, vec!["3", "4", "5"]);
    assert!(image_exists(&other), "another repository is untouched");
    assert!(image_exists(base_image()));
}

#[test]
fn prune_images_keeps_an_image_that_a_container_uses() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let repo = unique("inuse");
    for i in 1..=3 {
        cleanup.image(&format!("{repo}:{i}"));
        context(
            &sb,
            &format!("ctx{i}"),
            // The repository's unique name in the layer: a build cached from another test
            // process would share its image, which that process force-removes by id.
            &format!("RUN echo build {i} {repo} > /build\n"),
            &[],
        );
    }
    let user = cleanup.container(&unique("inuse"));
    let recipe = format!(
        r#"let d = local().docker();
for i in 1..=3 {{ d.build(#{{ context: "ctx" + i, tags: [{repo} + ":" + i] }}); }}
d.run(#{{ name: {user}, image: {repo} + ":1", command: ["sleep", "600"] }});
for r in d.prune_images(#{{ reference: {repo}, keep: 1 }}) {{ print("removed=" + r); }}
"#,
        repo = lit(&repo),
        user = lit(&user),
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    assert_eq!(values_of(&run.stdout, "removed"), vec![format!("{repo}:2")]);
    assert!(image_exists(&format!("{repo}:1")), "in use: kept");
    assert!(!image_exists(&format!("{repo}:2")));
    assert!(image_exists(&format!("{repo}:3")), "the newest: kept");
    assert_eq!(state(&user), "running");
}

#[test]
fn an_unknown_option_is_an_error_that_lists_the_valid_ones() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let name = cleanup.container(&unique("typo"));
    let recipe = format!(
        "local().docker().run(#{{ name: {}, image: {}, prots: [\"127.0.0.1:1:80\"] }});\n",
        lit(&name),
        lit(base_image())
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(1);
    assert!(run.stderr.contains("prots"), "{}", run.stderr);
    assert!(run.stderr.contains("ports"), "{}", run.stderr);
    assert_eq!(state(&name), "missing");
}

/// Loads (`docker load`) one image per `(tag, created)`, each a single small layer with a config
/// that says it was created at `created` (RFC 3339). The bytes depend only on `created`, so the
/// image ids are the same on every run.
fn load_images_created_at(sb: &Sandbox, images: &[(String, String)]) {
    let dir = sb.path().join("load");
    std::fs::create_dir_all(dir.join("layer")).unwrap();
    std::fs::write(dir.join("layer/hello.txt"), "hello\n").unwrap();
    crate::support::sh(
        &dir,
        &[
            "tar",
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--format=ustar",
            "-cf",
            "layer.tar",
            "-C",
            "layer",
            "hello.txt",
        ],
    );
    let sum = crate::support::sh(&dir, &["sha256sum", "layer.tar"]);
    let diff_id = sum.split_whitespace().next().unwrap();
    let mut manifest = Vec::new();
    let mut files = vec!["manifest.json".to_string(), "layer.tar".to_string()];
    for (i, (tag, created)) in images.iter().enumerate() {
        let config = format!("config{i}.json");
        std::fs::write(
            dir.join(&config),
            format!(
                "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"{created}\",\
                 \"config\":{{\"Labels\":{{\"build\":\"{i}\"}}}},\
                 \"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"sha256:{diff_id}\"]}}}}"
            ),
        )
        .unwrap();
        manifest.push(format!(
            "{{\"Config\":\"{config}\",\"RepoTags\":[\"{tag}\"],\"Layers\":[\"layer.tar\"]}}"
        ));
        files.push(config);
    }
    std::fs::write(
        dir.join("manifest.json"),
        format!("[{}]", manifest.join(",")),
    )
    .unwrap();
    let mut args = vec!["tar", "-cf", "images.tar"];
    args.extend(files.iter().map(String::as_str));
    crate::support::sh(&dir, &args);
    cli(&["load", "-i", dir.join("images.tar").to_str().unwrap()]);
}

#[test]
fn images_created_within_one_second_are_still_ordered_newest_first() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let repo = unique("samesecond");
    // Five images created 1 ms apart within the same second: the list API's `Created` (whole
    // seconds) ties them, the image's own `Created` (nanoseconds) does not.
    let images: Vec<(String, String)> = (1..=5)
        .map(|i| {
            (
                cleanup.image(&format!("{repo}:{i}")),
                format!("2030-01-02T03:04:05.{:03}000000Z", i * 100 + i),
            )
        })
        .collect();
    load_images_created_at(&sb, &images);
    let recipe = format!(
        r#"let d = local().docker();
for img in d.images(#{{ reference: {repo} }}) {{ print("image=" + img.tags[0]); }}
for r in d.prune_images(#{{ reference: {repo}, keep: 3 }}) {{ print("removed=" + r); }}
"#,
        repo = lit(&repo)
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    let expected: Vec<String> = (1..=5).rev().map(|i| format!("{repo}:{i}")).collect();
    let mut removed = values_of(&run.stdout, "removed");
    removed.sort();
    let mut left = docker::lines(&["images", &repo, "--format", "{{.Tag}}"]);
    left.sort();
    assert_eq!(
        values_of(&run.stdout, "image"),
        expected,
        "newest first by the images' own creation times:\n{}",
        run.stdout
    );
    assert_eq!(
        removed,
        vec![format!("{repo}:1"), format!("{repo}:2")],
        "{}",
        run.stdout
    );
    assert_eq!(left, vec!["3", "4", "5"]);
}

#[test]
fn network_is_created_once_and_a_container_joins_it() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let network = cleanup.network(&unique("net"));
    let name = cleanup.container(&unique("member"));
    let recipe = format!(
        r#"let d = local().docker();
d.network({network});
d.network({network});
d.run(#{{ name: {name}, image: {base}, network: {network}, command: ["sleep", "600"] }});
"#,
        network = lit(&network),
        name = lit(&name),
        base = lit(base_image()),
    );
    sb.run_recipe(&recipe, &[]).expect_code(0);
    let count = || {
        docker::lines(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("name=^{network}$"),
        ])
        .len()
    };
    assert_eq!(count(), 1);
    let networks = inspect(&name, "{{json .NetworkSettings.Networks}}").unwrap();
    assert!(networks.contains(&format!("\"{network}\"")), "{networks}");
    // Again in a later run: still one.
    sb.run_recipe(
        &format!("local().docker().network({});\n", lit(&network)),
        &[],
    )
    .expect_code(0);
    assert_eq!(count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Over ssh

/// Closes the ssh masters left in a control folder when dropped (`galley disconnect`).
struct Disconnect<'a>(&'a Sandbox, PathBuf);

impl Drop for Disconnect<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .galley()
            .arg("disconnect")
            .env("GALLEY_CONTROL_DIR", &self.1)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn the_socket_forwarded_over_ssh_reaches_the_same_daemon() {
    if skip() {
        return;
    }
    let sb = Sandbox::new();
    let cleanup = Cleanup::new();
    let fleet = Fleet::start(1);
    let _disconnect = Disconnect(&sb, fleet.control_dir());
    let existing = unique("viacli");
    cli_sleeper(&cleanup, &existing, &[]);
    let created = cleanup.container(&unique("viassh"));
    let tag = cleanup.image(&format!("{}:1", unique("viassh")));
    context(
        &sb,
        "ctx",
        "COPY hello.txt /hello.txt\n",
        &[("hello.txt", "sent over ssh\n")],
    );
    let recipe = format!(
        r#"let h = ssh::connect({dest}, {opts});
let d = h.docker();
print("existing=" + d.status({existing}));
print("before=" + d.status({created}));
d.build(#{{ context: "ctx", tags: [{tag}] }});
d.run(#{{ name: {created}, image: {tag}, command: ["sleep", "600"] }});
print("after=" + d.status({created}));
let r = d.exec({created}, ["cat", "/hello.txt"]);
print("file=" + r.stdout);
"#,
        dest = lit(&fleet.dest(0)),
        opts = fleet.options(),
        existing = lit(&existing),
        created = lit(&created),
        tag = lit(&tag),
    );
    sb.write("recipe.rhai", &recipe);
    let out = fleet
        .galley(&sb)
        .args(["run", "recipe.rhai", "--output", "plain"])
        .output()
        .expect("run galley");
    let run = Run::from(out).expect_code(0);
    assert_eq!(value_of(&run.stdout, "existing"), "running");
    assert_eq!(value_of(&run.stdout, "before"), "missing");
    assert_eq!(value_of(&run.stdout, "after"), "running");
    assert_eq!(value_of(&run.stdout, "file"), "sent over ssh");
    assert_eq!(state(&created), "running", "the CLI sees it");
    assert!(
        image_exists(&tag),
        "the local context was built on the host's daemon"
    );
}
