//! `--dry-run --diff`: the unified diff of what `write`, `upload`, nginx `upstream` and docker
//! `run` would change on the host, with secrets masked, and nothing changed.

use crate::support::docker::{self, base_image, cli, unique, Cleanup};
use crate::support::nginx::Nginx;
use crate::support::{free_port, Sandbox};

/// `galley run recipe.rhai --dry-run --diff --output plain` with TOKEN set; returns stdout.
fn dry_diff(sb: &Sandbox, recipe: &str) -> String {
    sb.write("recipe.rhai", recipe);
    let out = sb
        .galley()
        .env("TOKEN", "tok-12345")
        .args([
            "run",
            "recipe.rhai",
            "--dry-run",
            "--diff",
            "--output",
            "plain",
        ])
        .output()
        .unwrap();
    let run = crate::support::Run::from(out).expect_code(0);
    run.stdout
        .replace(&sb.path().to_string_lossy().into_owned(), "SB")
}

#[test]
fn write_and_upload_show_a_masked_unified_diff_and_change_nothing() {
    let sb = Sandbox::new();
    sb.write("app.conf", "port = 80\nmode = old\nname = web\n");
    sb.write("dist/app.env", "A=1\nB=2\n");
    sb.write("remote/app.env", "A=1\n");
    sb.write("same.txt", "same\n");
    let stdout = dry_diff(
        &sb,
        &format!(
            r#"let h = local();
h.write("{dir}/app.conf", "port = 80\nmode = new\nname = web\ntoken = " + secret("TOKEN") + "\n");
h.write("{dir}/fresh.txt", "hello\n");
h.write("{dir}/same.txt", "same\n");
h.upload("{dir}/dist/app.env", "{dir}/remote/app.env");
"#,
            dir = sb.path().display()
        ),
    );
    assert_eq!(
        stdout,
        "[local] would write SB/app.conf (50 bytes)
[local] --- SB/app.conf
[local] +++ SB/app.conf (after)
[local] @@ -1,3 +1,4 @@
[local]  port = 80
[local] -mode = old
[local] +mode = new
[local]  name = web
[local] +token = ***
[local] would write SB/fresh.txt (6 bytes)
[local] --- /dev/null
[local] +++ SB/fresh.txt (after)
[local] @@ -0,0 +1 @@
[local] +hello
[local] would write SB/same.txt (5 bytes)
[local] would upload SB/dist/app.env -> SB/remote/app.env
[local] --- SB/remote/app.env
[local] +++ SB/remote/app.env (after)
[local] @@ -1 +1,2 @@
[local]  A=1
[local] +B=2
done in N
"
        .replace("done in N\n", &stdout[stdout.rfind("done in").unwrap()..]),
    );
    let conf = std::fs::read_to_string(sb.path().join("app.conf")).unwrap();
    assert_eq!(
        conf, "port = 80\nmode = old\nname = web\n",
        "a dry run changed nothing"
    );
    assert!(!sb.path().join("fresh.txt").exists());
    assert_eq!(
        std::fs::read_to_string(sb.path().join("remote/app.env")).unwrap(),
        "A=1\n"
    );
}

#[test]
fn an_upstream_change_is_a_diff_of_the_real_nginx_config() {
    let sb = Sandbox::new();
    let blue = free_port();
    let nginx = Nginx::start(sb.path(), "web", blue);
    let green = free_port();
    let stdout = dry_diff(
        &sb,
        &format!(
            "let ng = local().nginx({});\nng.upstream(\"web\", [\"127.0.0.1:{green}\", #{{ server: \"127.0.0.1:{blue}\", backup: true }}]);\n",
            nginx.options()
        ),
    );
    let diff: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("[local] --- "))
        .take_while(|l| !l.contains("would run"))
        .collect();
    assert_eq!(
        diff.join("\n"),
        format!(
            "[local] --- SB/nginx/conf.d/upstream-web.conf
[local] +++ SB/nginx/conf.d/upstream-web.conf (after)
[local] @@ -1,4 +1,5 @@
[local] -# written by the test fixture
[local] +# written by galley: the upstream `web`
[local]  upstream web {{
[local] -    server 127.0.0.1:{blue};
[local] +    server 127.0.0.1:{green};
[local] +    server 127.0.0.1:{blue} backup;
[local]  }}"
        ),
        "{stdout}"
    );
    let file = std::fs::read_to_string(nginx.upstream_file("web")).unwrap();
    assert!(file.starts_with("# written by the test fixture"), "{file}");
}

#[test]
fn docker_run_diffs_against_the_container_it_replaces() {
    if !docker::available() {
        eprintln!("note: the Docker daemon does not answer; skipping");
        return;
    }
    let cleanup = Cleanup::new();
    let name = cleanup.container(&unique("galley-diff"));
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    cli(&[
        "create",
        "--name",
        &name,
        "-e",
        "MODE=old",
        "-p",
        &publish,
        "--label",
        "galley.app=diff",
        base_image(),
        "sleep",
        "600",
    ]);
    let sb = Sandbox::new();
    let stdout = dry_diff(
        &sb,
        &format!(
            r#"local().docker().run(#{{ name: "{name}", image: "{image}", ports: ["{publish}"],
    env: #{{ MODE: "new", TOKEN: secret("TOKEN") }}, labels: #{{ "galley.app": "diff" }} }});
"#,
            image = base_image()
        ),
    );
    let diff: Vec<&str> = stdout
        .lines()
        .take_while(|l| !l.contains("would docker run"))
        .collect();
    assert_eq!(
        diff.join("\n"),
        format!(
            "[local] --- container {name}
[local] +++ container {name} (after)
[local] @@ -1,4 +1,5 @@
[local]  image: {image}
[local] -env: MODE=old
[local] +env: MODE=new
[local] +env: TOKEN=***
[local]  port: {publish}/tcp
[local]  label: galley.app=diff",
            image = base_image()
        ),
        "{stdout}"
    );
    // A new name: everything is added.
    let fresh = unique("galley-diff-new");
    let stdout = dry_diff(
        &sb,
        &format!(
            "local().docker().run(#{{ name: \"{fresh}\", image: \"{}\" }});\n",
            base_image()
        ),
    );
    assert!(
        stdout.starts_with(&format!(
            "[local] --- /dev/null\n[local] +++ container {fresh} (after)\n[local] @@ -0,0 +1 @@\n[local] +image: {}\n",
            base_image()
        )),
        "{stdout}"
    );
}
