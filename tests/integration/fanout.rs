//! `parallel` and `rolling` over a fleet of real sshd servers on loopback: every host runs its
//! whole pipeline on its own, failures are reported per host, and a summary table ends the run.

use std::path::Path;

use crate::support::sshd::Fleet;
use crate::support::{flat, Run, Sandbox};

/// Writes `recipe.rhai` and runs it with plain output (plus `args`) against the fleet.
fn run(sb: &Sandbox, fleet: &Fleet, recipe: &str, args: &[&str]) -> Run {
    sb.write("recipe.rhai", recipe);
    let run = fleet
        .invoke(sb, ["run", "recipe.rhai", "--output", "plain"])
        .args(args)
        .run();
    println!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        run.stdout, run.stderr
    );
    run
}

/// A shell loop that waits (at most 30 s) for `file` to exist, as a Rhai argv.
fn wait_for(file: &Path) -> String {
    format!(
        r#"["sh", "-c", "for i in $(seq 600); do [ -e '{}' ] && exit 0; sleep 0.05; done; exit 1"]"#,
        file.display()
    )
}

/// Rhai code that connects to the first `n` hosts of the fleet as `hs`, and a map `roots` from
/// each host's name to its root folder.
fn connect_all(fleet: &Fleet, n: usize) -> String {
    let dests: Vec<String> = (0..n).map(|i| format!("\"{}\"", fleet.dest(i))).collect();
    let roots: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "\"{}\": \"{}\"",
                fleet.dest(i),
                fleet.hosts[i].root.display()
            )
        })
        .collect();
    format!(
        "let hs = ssh::hosts([{}], {});\nlet roots = #{{ {} }};\n",
        dests.join(", "),
        fleet.options(),
        roots.join(", ")
    )
}

/// The fields of the summary table's row for `name`: [name, result, time, note...].
fn row(stdout: &str, name: &str) -> Vec<String> {
    let prefix = format!("  {name} ");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no summary row for {name} in:\n{stdout}"));
    line.split_whitespace().map(str::to_string).collect()
}

/// `text` without any whitespace, to match text that a report may have wrapped anywhere.
fn squash(text: &str) -> String {
    text.split_whitespace().collect()
}

/// The result word in the summary table for `name`.
fn result_of(stdout: &str, name: &str) -> String {
    row(stdout, name)[1].clone()
}

#[test]
fn parallel_runs_every_host_and_prints_a_summary() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(3);
    let recipe = format!(
        r#"{connect}
let results = parallel(hs, |h| {{
    let root = roots[h.name];
    h.write(root + "/name", h.name);
    h.run(["echo", "out:" + h.name]);
    "done:" + h.name
}});
print("results=" + results);
"#,
        connect = connect_all(&fleet, 3)
    );
    let r = run(&sb, &fleet, &recipe, &[]).expect_code(0);
    for i in 0..3 {
        let dest = fleet.dest(i);
        let written = std::fs::read_to_string(fleet.hosts[i].root.join("name")).unwrap();
        assert_eq!(written, dest, "host {i} wrote its own name");
        assert!(
            r.stdout
                .lines()
                .any(|l| l == format!("[{dest}] out:{dest}")),
            "the output of {dest} carries its own prefix:\n{}",
            r.stdout
        );
        assert_eq!(result_of(&r.stdout, &dest), "ok");
    }
    // No host's output line carries another host's prefix.
    for line in r.stdout.lines().filter(|l| l.contains("] out:")) {
        let (prefix, rest) = line.split_once("] out:").unwrap();
        assert_eq!(prefix.trim_start_matches('['), rest, "{line}");
    }
    let expected = format!(
        "results=[\"done:{}\", \"done:{}\", \"done:{}\"]",
        fleet.dest(0),
        fleet.dest(1),
        fleet.dest(2)
    );
    assert!(
        r.stdout.lines().any(|l| l == expected),
        "results in the order of the hosts ({expected}):\n{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("parallel: 3 of 3 succeeded"),
        "{}",
        r.stdout
    );
}

#[test]
fn parallel_hosts_do_not_run_in_lockstep() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(3);
    // Host 0 ("B") waits in its first command for a file that host 1 ("A") creates in its
    // second. Running the hosts one after the other (B first), or step by step in lockstep,
    // would never create it; only hosts that each go through their own pipeline finish.
    let a_step2 = fleet.hosts[1].root.join("a_step2");
    let b_done = fleet.hosts[0].root.join("b_done");
    let recipe = format!(
        r#"{connect}
let a = "{a}";
let b = "{b}";
parallel(hs, |h| {{
    let root = roots[h.name];
    if h.name == b {{
        h.run({wait});
        h.run(["touch", "{b_done}"]);
    }} else if h.name == a {{
        h.run(["touch", root + "/a_step1"]);
        h.run(["touch", "{a_step2}"]);
    }} else {{
        h.run(["touch", root + "/c_done"]);
    }}
}});
"#,
        connect = connect_all(&fleet, 3),
        a = fleet.dest(1),
        b = fleet.dest(0),
        wait = wait_for(&a_step2),
        a_step2 = a_step2.display(),
        b_done = b_done.display(),
    );
    let r = run(&sb, &fleet, &recipe, &[]).expect_code(0);
    assert!(b_done.exists(), "host B went on after A's second step");
    assert!(fleet.hosts[2].root.join("c_done").exists());
    assert!(
        r.stdout.contains("parallel: 3 of 3 succeeded"),
        "{}",
        r.stdout
    );
}

#[test]
fn one_failing_host_fails_the_run_after_the_others_finish() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(3);
    let bad = fleet.dest(1);
    // The others wait until the failing host is about to fail, so that their later steps run
    // after the failure.
    let failing_now = sb.path().join("failing_now");
    let failing = format!("touch {}; echo boom >&2; exit 3", failing_now.display());
    let recipe = format!(
        r#"{connect}
parallel(hs, |h| {{
    let root = roots[h.name];
    h.run(["touch", root + "/step1"]);
    if h.name == "{bad}" {{
        h.run(["sh", "-c", "{failing}"]);
    }} else {{
        h.run({wait});
    }}
    h.run(["touch", root + "/after"]);
}});
print("not reached");
"#,
        connect = connect_all(&fleet, 3),
        failing = failing,
        wait = wait_for(&failing_now),
    );
    let r = run(&sb, &fleet, &recipe, &[]).expect_code(1);
    for i in [0, 2] {
        assert!(
            fleet.hosts[i].root.join("after").exists(),
            "host {i} finished its pipeline"
        );
        assert_eq!(result_of(&r.stdout, &fleet.dest(i)), "ok");
    }
    assert!(fleet.hosts[1].root.join("step1").exists());
    assert!(
        !fleet.hosts[1].root.join("after").exists(),
        "the failing host stopped at its failure"
    );
    assert!(!r.stdout.contains("not reached"));

    let failed = row(&r.stdout, &bad);
    assert_eq!(failed[1], "failed", "{failed:?}");
    let note = failed[3..].join(" ");
    assert!(note.contains("exit code 3"), "{note}");
    assert!(
        r.stdout.contains("parallel: 2 of 3 succeeded"),
        "{}",
        r.stdout
    );

    let report = flat(&r.stderr);
    assert!(report.contains("galley::command_failed"), "{}", r.stderr);
    assert!(
        squash(&report).contains(&squash(&format!(
            "command failed on {bad} with exit code 3"
        ))),
        "{}",
        r.stderr
    );
    assert!(
        squash(&report).contains(&squash(&format!("exit code 3: sh -c '{failing}'"))),
        "the report shows the command:\n{}",
        r.stderr
    );
    assert!(report.contains("boom"), "stderr tail:\n{}", r.stderr);
    assert!(
        squash(&report).contains(&squash(&format!("1 of 3 failed ({bad})"))),
        "{}",
        r.stderr
    );
    for other in [fleet.dest(0), fleet.dest(2)] {
        assert!(
            !r.stderr.contains(&other),
            "only the failing host is in the report:\n{}",
            r.stderr
        );
    }
}

#[test]
fn max_parallel_one_runs_one_host_at_a_time() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(3);
    let lock = sb.path().join("lock");
    std::fs::create_dir(&lock).unwrap();
    let ids: Vec<String> = (0..3)
        .map(|i| format!("\"{}\": \"{i}\"", fleet.dest(i)))
        .collect();
    let recipe = format!(
        r#"{connect}
let ids = #{{ {ids} }};
parallel(hs, |h| {{
    let mine = "{lock}/running." + ids[h.name];
    h.run(["touch", mine]);
    // Fails when another host's marker is there too.
    h.run(["sh", "-c", "n=$(ls '{lock}' | grep -c '^running[.]'); echo \"running: $n\"; [ \"$n\" -eq 1 ]"]);
    h.run(["touch", "{lock}/seen." + ids[h.name]]);
    h.run(["rm", mine]);
}});
"#,
        connect = connect_all(&fleet, 3),
        ids = ids.join(", "),
        lock = lock.display(),
    );
    let r = run(&sb, &fleet, &recipe, &["--max-parallel", "1"]).expect_code(0);
    for i in 0..3 {
        assert!(lock.join(format!("seen.{i}")).exists(), "host {i} ran");
    }
    assert_eq!(r.stdout.matches("running: 1").count(), 3, "{}", r.stdout);
    assert!(
        r.stdout.contains("parallel: 3 of 3 succeeded"),
        "{}",
        r.stdout
    );
}

#[test]
fn parallel_runs_all_hosts_at_once_by_default() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(3);
    let barrier = sb.path().join("barrier");
    std::fs::create_dir(&barrier).unwrap();
    // Each host arrives, then waits until all three have arrived: only hosts running at the
    // same time get past it.
    let recipe = format!(
        r#"{connect}
let n = 0;
parallel(hs, |h| {{
    h.run(["sh", "-c", "mktemp '{barrier}/here.XXXXXX'"]);
    h.run(["sh", "-c", "for i in $(seq 600); do [ $(ls '{barrier}' | wc -l) -ge 3 ] && exit 0; sleep 0.05; done; exit 1"]);
}});
"#,
        connect = connect_all(&fleet, 3),
        barrier = barrier.display(),
    );
    run(&sb, &fleet, &recipe, &[]).expect_code(0);
}

/// A rolling deploy over 4 hosts in batches of 2 in which host 1 (in the first batch) fails.
fn rolling_recipe(fleet: &Fleet, max_failures: &str) -> String {
    format!(
        r#"{connect}
let results = rolling(hs, #{{ batch: 2, max_failures: {max_failures} }}, |h| {{
    let root = roots[h.name];
    if h.name == "{bad}" {{
        h.run(["sh", "-c", "echo boom >&2; exit 3"]);
    }}
    h.run(["touch", root + "/deployed"]);
    h.name
}});
print("results=" + results);
"#,
        connect = connect_all(fleet, 4),
        bad = fleet.dest(1),
    )
}

#[test]
fn rolling_stops_after_the_batch_that_exceeds_max_failures() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(4);
    let r = run(&sb, &fleet, &rolling_recipe(&fleet, "0"), &[]).expect_code(1);
    let batch1 = format!("==> batch 1 of 2: {}, {}", fleet.dest(0), fleet.dest(1));
    assert!(
        r.stdout.lines().any(|l| l == batch1),
        "{batch1}:\n{}",
        r.stdout
    );
    assert!(!r.stdout.contains("==> batch 2 of 2"), "{}", r.stdout);
    assert!(fleet.hosts[0].root.join("deployed").exists());
    assert!(!fleet.hosts[1].root.join("deployed").exists());
    for i in [2, 3] {
        assert!(
            !fleet.hosts[i].root.join("deployed").exists(),
            "host {i} in the second batch never ran"
        );
        assert_eq!(result_of(&r.stdout, &fleet.dest(i)), "skipped");
    }
    assert_eq!(result_of(&r.stdout, &fleet.dest(0)), "ok");
    assert_eq!(result_of(&r.stdout, &fleet.dest(1)), "failed");
    assert!(
        r.stdout.contains("rolling: 1 of 4 succeeded"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("results="));
    let report = flat(&r.stderr);
    assert!(report.contains("galley::command_failed"), "{}", r.stderr);
    assert!(
        squash(&report).contains(&squash(&format!("1 of 4 failed ({})", fleet.dest(1)))),
        "{}",
        r.stderr
    );
}

/// A rollout that went on past a failure it tolerated ran every batch, but still fails: a CI job
/// must not go green over a broken host.
fn assert_partial_after_every_batch(fleet: &Fleet, r: &Run) {
    for (n, pair) in [(1, [0, 1]), (2, [2, 3])] {
        let line = format!(
            "==> batch {n} of 2: {}, {}",
            fleet.dest(pair[0]),
            fleet.dest(pair[1])
        );
        assert!(r.stdout.lines().any(|l| l == line), "{line}:\n{}", r.stdout);
    }
    for i in [0, 2, 3] {
        assert!(fleet.hosts[i].root.join("deployed").exists(), "host {i}");
        assert_eq!(result_of(&r.stdout, &fleet.dest(i)), "ok");
    }
    assert!(!fleet.hosts[1].root.join("deployed").exists());
    let failed = row(&r.stdout, &fleet.dest(1));
    assert_eq!(failed[1], "failed", "{failed:?}");
    assert!(failed[3..].join(" ").contains("exit code 3"), "{failed:?}");
    assert!(
        r.stdout.contains("rolling: 3 of 4 succeeded"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("results="), "{}", r.stdout);
    let report = flat(&r.stderr);
    assert!(report.contains("galley::partial"), "{}", r.stderr);
    assert!(
        squash(&report).contains(&squash(&format!(
            "rolling: 1 of 4 failed ({}), within max_failures 1",
            fleet.dest(1)
        ))),
        "{}",
        r.stderr
    );
    assert!(
        squash(&report).contains(&squash(&format!("{}: command failed", fleet.dest(1)))),
        "the report lists the failed host and why:\n{}",
        r.stderr
    );
}

#[test]
fn rolling_within_max_failures_runs_every_batch_and_still_fails() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(4);
    let r = run(&sb, &fleet, &rolling_recipe(&fleet, "1"), &[]).expect_code(1);
    assert_partial_after_every_batch(&fleet, &r);
}

#[test]
fn rolling_takes_max_failures_as_a_share_of_the_hosts() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(4);
    // 25% of 4 hosts is 1.
    let r = run(&sb, &fleet, &rolling_recipe(&fleet, "\"25%\""), &[]).expect_code(1);
    assert_partial_after_every_batch(&fleet, &r);
}

#[test]
fn rolling_refuses_a_max_failures_that_is_neither_a_count_nor_a_share() {
    let sb = Sandbox::new();
    let r = sb
        .run_recipe(
            "rolling([1, 2], #{ max_failures: \"half\" }, |x| x);\n",
            &[],
        )
        .expect_code(1);
    let report = flat(&r.stderr);
    assert!(report.contains("galley::bad_value"), "{}", r.stderr);
    assert!(
        report.contains(
            "option `max_failures` must be a count (1) or a share of the items (\"25%\")"
        ),
        "{}",
        r.stderr
    );
}

/// A recipe whose fan-out closures capture everything a recipe captures — a map, an array, a
/// host, another closure that captures a map of its own — and call a function of the recipe and
/// one of a module; each item also writes to a captured map, which is its own copy.
const CAPTURING: &str = r#"
import "lib" as lib;
const TAG = "t";
fn label(x) { `${global::TAG}${x}` }
let h = local();
let conf = #{ base: 100, seen: [] };
let list = [1, 2, 3];
let scale = #{ by: 2 };
// Called through a captured map: Rhai locks the map for as long as the call runs.
let ops = #{ times: |x| { sleep("10ms"); x * scale.by } };
let items = [];
for i in 0..parse_int(params.n) { items.push(i); }
let work = |x| {
    conf.seen.push(x);
    h.run(["sleep", "0.05"], #{ quiet: true });
    `${label(x)}:${conf.base + ops.times.call(x) + list.len()}:${lib::twice(x)}:${conf.seen.len()}`
};
let expected = items.map(|x| `t${x}:${100 + 2 * x + 3}:${2 * x}:1`);
let out = parallel(items, work);
if out != expected { throw `parallel gave ${out}, expected ${expected}`; }
let rolled = rolling(items, #{ batch: 3 }, work);
if rolled != expected { throw `rolling gave ${rolled}, expected ${expected}`; }
let nested = lib::each(items, |x| work.call(x));
if nested != expected { throw `lib::each gave ${nested}, expected ${expected}`; }
if conf.seen.len() != 0 { throw `an item's write reached the recipe: ${conf.seen}`; }
print(`ok ${items.len()}`);
"#;

const CAPTURING_LIB: &str = r"
fn twice(x) { x * 2 }
fn each(items, f) { parallel(items, |x| f.call(x)) }
";

#[test]
fn fan_out_never_races_at_any_max_parallel_and_batch() {
    let sb = Sandbox::new();
    sb.write("lib.rhai", CAPTURING_LIB);
    sb.write("recipe.rhai", CAPTURING);
    for max_parallel in ["1", "2", "16"] {
        for n in ["2", "6", "16"] {
            let r = sb
                .run(&[
                    "run",
                    "recipe.rhai",
                    "--output",
                    "plain",
                    "--max-parallel",
                    max_parallel,
                    "--set",
                    &format!("n={n}"),
                ])
                .expect_code(0);
            assert!(
                r.stdout.lines().any(|l| l == format!("ok {n}")),
                "--max-parallel {max_parallel}, {n} items:\n{}\n{}",
                r.stdout,
                r.stderr
            );
        }
    }
}

#[test]
fn callbacks_from_modules_and_fan_out_see_the_recipes_globals() {
    let sb = Sandbox::new();
    sb.write(
        "lib.rhai",
        "fn apply(f, x) { f.call(x) }\nfn each(items, f) { parallel(items, |x| f.call(x)) }\n",
    );
    let r = sb
        .run_recipe(
            r#"
import "lib" as lib;
const FIXTURE = "fx";
fn helper(x) { `${global::FIXTURE}-${x}` }
print(lib::apply(|x| helper(x), 1));
print(lib::apply(|x| global::FIXTURE + x, 2));
print(lib::each([3, 4], |x| helper(x)));
print(parallel([5], |x| global::FIXTURE + x));
"#,
            &[],
        )
        .expect_code(0);
    for line in ["fx-1", "fx2", "[\"fx-3\", \"fx-4\"]", "[\"fx5\"]"] {
        assert!(r.stdout.lines().any(|l| l == line), "{line}:\n{}", r.stdout);
    }
}

#[test]
fn parallel_over_plain_values_returns_results_in_order() {
    let sb = Sandbox::new();
    let r = sb
        .run_recipe(
            "let h = local();\nlet out = parallel([1, 2, 3], |x| x * 10);\nprint(out);\n",
            &[],
        )
        .expect_code(0);
    println!("{}", r.stdout);
    assert!(
        r.stdout.lines().any(|l| l == "[10, 20, 30]"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("parallel: 3 of 3 succeeded"),
        "{}",
        r.stdout
    );
    for item in ["1", "2", "3"] {
        assert_eq!(result_of(&r.stdout, item), "ok");
    }
}

#[test]
fn json_output_has_one_summary_event() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(3);
    let recipe = format!(
        "{connect}\nparallel(hs, |h| h.run([\"true\"]));\n",
        connect = connect_all(&fleet, 3)
    );
    sb.write("recipe.rhai", &recipe);
    let out = fleet
        .galley(&sb)
        .args(["run", "recipe.rhai", "--output", "json"])
        .output()
        .expect("galley runs");
    let r = Run::from(out).expect_code(0);
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let summaries: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "summary").collect();
    assert_eq!(summaries.len(), 1, "{}", r.stdout);
    let summary = summaries[0];
    assert_eq!(summary["of"], "parallel");
    let rows = summary["rows"].as_array().expect("rows");
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, [fleet.dest(0), fleet.dest(1), fleet.dest(2)]);
    for row in rows {
        assert_eq!(row["result"], "ok", "{row}");
        assert!(row["seconds"].as_f64().is_some(), "{row}");
    }
}
