//! `--output json`: every event of a full run (and of `galley watch`) has exactly the fields that
//! docs/json.md documents for it, and the schema version.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{wait_until, Sandbox};

/// The events table of docs/json.md: event name -> its fields.
fn schema() -> BTreeMap<String, BTreeSet<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md");
    let text = std::fs::read_to_string(path).expect("docs/json.md");
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    let mut events = BTreeMap::new();
    let table = text.split("## Events").nth(1).expect("an Events section");
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let name = ticked(cells[0]).remove(0);
        events.insert(name, ticked(cells[1]).into_iter().collect());
    }
    assert!(events.len() >= 10, "the table was not read: {events:?}");
    events
}

/// Checks every line of `text` against the schema; returns the event names seen.
fn validate(text: &str, schema: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(event["v"], 1, "no schema version: {line}");
        let name = event["event"]
            .as_str()
            .unwrap_or_else(|| panic!("no event: {line}"));
        let documented = schema
            .get(name)
            .unwrap_or_else(|| panic!("event `{name}` is not in docs/json.md: {line}"));
        let keys: BTreeSet<String> = event
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "v" && *k != "event")
            .cloned()
            .collect();
        assert_eq!(
            &keys, documented,
            "fields of `{name}` differ from docs/json.md: {line}"
        );
        seen.insert(name.to_string());
    }
    seen
}

const FULL: &str = r#"let short = secret("SHORT");
log("hello");
step("one", || {
    local().run(["echo", "out"]);
    step("nested", || local().run(["sh", "-c", "echo err >&2"]));
});
for i in range(0, 2) {
    cache::step("deps", #{ inputs: ["uv.lock"], dir: recipe_dir() }, || log("installing"));
}
ci::output("url", "https://staging.example.com");
parallel(["a", "b"], |x| x);
local().write(recipe_dir() + "/conf.txt", "new\n");
throw "the end";
"#;

#[test]
fn every_event_of_a_run_and_of_watch_matches_the_documented_schema() {
    let schema = schema();
    let sb = Sandbox::new();
    sb.write("uv.lock", "v1\n");
    sb.write("conf.txt", "old\n");
    sb.write("recipe.rhai", FULL);
    let galley = |args: &[&str]| sb.invoke(args).state("state").env("SHORT", "ab").run();
    let mut seen = BTreeSet::new();
    for args in [
        // The dry run first, while conf.txt still differs from what the recipe writes.
        &[
            "run",
            "recipe.rhai",
            "--output",
            "json",
            "--dry-run",
            "--diff",
        ][..],
        &["run", "recipe.rhai", "--output", "json"][..],
    ] {
        let run = galley(args).expect_code(1);
        seen.extend(validate(&run.stdout, &schema));
        seen.extend(validate(&run.stderr, &schema));
    }

    // The watcher's own lines are events too.
    let out = sb.path().join("watch.jsonl");
    let mut child = sb
        .galley()
        .env("GALLEY_STATE_DIR", sb.path().join("state"))
        .env("SHORT", "ab")
        .args(["watch", "recipe.rhai", "--output", "json"])
        .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let text = || std::fs::read_to_string(&out).unwrap_or_default();
    wait_until(
        "the watcher's first run to end",
        Duration::from_secs(30),
        || text().contains(r#""event":"watch""#),
    );
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    seen.extend(validate(&text(), &schema));

    let missing: Vec<&String> = schema.keys().filter(|e| !seen.contains(*e)).collect();
    assert!(
        missing.is_empty(),
        "documented but never emitted: {missing:?}"
    );
}
