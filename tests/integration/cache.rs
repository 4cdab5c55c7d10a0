//! `cache::step`: skipped while its inputs hash the same on the host as after its last success,
//! run again when one changes or when the last run failed; locally and over a real sshd.

use std::process::Command;

use crate::support::sshd::{CloseMasters, Fleet};
use crate::support::{Run, Sandbox};

/// The recipe: a "uv sync" that appends to runs.log, failing while `app/fail` exists.
fn recipe(sb: &Sandbox, host: &str) -> String {
    let app = sb.join("app");
    format!(
        r#"let h = {host};
cache::step("uv sync", #{{ on: h, dir: "{app}", inputs: ["uv.lock", "pyproject.toml"] }}, || {{
    if h.exists("{app}/fail") {{ throw "sync failed"; }}
    h.run(["sh", "-c", "echo synced >> runs.log"], #{{ dir: "{app}" }});
}});
"#
    )
}

fn runs(sb: &Sandbox) -> usize {
    std::fs::read_to_string(sb.path().join("app/runs.log"))
        .unwrap_or_default()
        .lines()
        .count()
}

/// Runs the recipe again and again with `galley`, checking what is skipped; `name` is the
/// host's output prefix; `record` the folder where the hashes must be kept.
fn round_trip(sb: &Sandbox, galley: impl Fn() -> Command, name: &str, record: &str) {
    sb.write("app/uv.lock", "v1\n");
    sb.write("app/pyproject.toml", "[project]\n");
    let run = || Run::from(galley().output().expect("run galley"));
    let cached = format!("[{name}] cached: uv sync (inputs unchanged)");

    let first = run().expect_code(0);
    assert!(!first.stdout.contains("cached"), "{}", first.stdout);
    assert_eq!(runs(sb), 1);
    let hashes = std::fs::read_to_string(format!("{record}/cache/uv_sync.sha256"))
        .expect("the hashes recorded after the success");
    assert!(
        hashes.contains("  uv.lock\n") && hashes.contains("  pyproject.toml\n"),
        "{hashes}"
    );

    let second = run().expect_code(0);
    assert!(second.stdout.contains(&cached), "{}", second.stdout);
    assert_eq!(runs(sb), 1, "skipped the second time");

    // A new lockfile: the step runs again, and then is cached again.
    sb.write("app/uv.lock", "v2\n");
    run().expect_code(0);
    assert_eq!(runs(sb), 2);
    assert!(run().expect_code(0).stdout.contains(&cached));

    // A failed step records nothing: the next run tries again.
    sb.write("app/uv.lock", "v3\n");
    sb.write("app/fail", "");
    let failed = run().expect_code(1);
    assert!(failed.stderr.contains("sync failed"), "{}", failed.stderr);
    std::fs::remove_file(sb.path().join("app/fail")).unwrap();
    let retried = run().expect_code(0);
    assert!(!retried.stdout.contains("cached"), "{}", retried.stdout);
    assert_eq!(runs(sb), 3);

    // A missing input is a report, not a silent cache hit.
    std::fs::remove_file(sb.path().join("app/pyproject.toml")).unwrap();
    let missing = run().expect_code(1);
    assert!(
        missing.stderr.contains("cannot hash its inputs"),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_cached_step_is_skipped_until_its_inputs_change_locally() {
    let sb = Sandbox::new();
    sb.write("recipe.rhai", &recipe(&sb, "local()"));
    let state = sb.join("state");
    let galley = || {
        let mut cmd = sb.galley();
        cmd.env("GALLEY_STATE_DIR", &state)
            .args(["run", "recipe.rhai", "--output", "plain"]);
        cmd
    };
    round_trip(&sb, galley, "local", &state);
}

#[test]
fn a_cached_step_is_skipped_until_its_inputs_change_over_ssh() {
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let sb = Sandbox::new();
    let state = sb.join("remote-state");
    let options = fleet.options().replacen(
        "#{",
        &format!("#{{ name: \"web1\", state_dir: \"{state}\","),
        1,
    );
    let host = format!("ssh::connect(\"{}\", {options})", fleet.dest(0));
    sb.write("recipe.rhai", &recipe(&sb, &host));
    let galley = || {
        let mut cmd = fleet.galley(&sb);
        cmd.env("GALLEY_STATE_DIR", sb.join("local-state")).args([
            "run",
            "recipe.rhai",
            "--output",
            "plain",
        ]);
        cmd
    };
    round_trip(&sb, galley, "web1", &state);
    // The hashes live on the host, not in this machine's state folder.
    assert!(!sb.path().join("local-state/cache").exists());
}
