//! Command results are exactly what the command wrote, nothing is lost under load, and secrets
//! passed as variables never appear on a command line: locally and over real sshd servers.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::sshd::{CloseMasters, Fleet};
use crate::support::{all_pids, value_of, Reaper, Run, Sandbox};

/// The bytes as Rhai prints a blob: lowercase hex in groups of 8 bytes, in brackets.
fn hex(bytes: &[u8]) -> String {
    let groups: Vec<String> = bytes
        .chunks(8)
        .map(|g| g.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    format!("[{}]", groups.join(" "))
}

const CASES: &[&[u8]] = &[
    b"",
    b"x",
    b"no newline at the end",
    b"a\r\nb",
    b"\n\n",
    b"a\n\nb\n",
    b"nul\0byte and \xff\xfe invalid",
];

#[test]
fn results_are_exactly_what_commands_wrote_locally_and_over_ssh() {
    let sb = Sandbox::new();
    // SHLVL=1: the remote bash skips root's ~/.bashrc, whose pyenv complaints on stderr are the
    // login shell's, not the command's.
    let fleet = Fleet::start_with(1, &["SetEnv SHLVL=1".to_string()]);
    let _close = CloseMasters(fleet.control_dir());
    for (i, case) in CASES.iter().enumerate() {
        std::fs::write(sb.path().join(format!("case{i}")), case).unwrap();
    }
    let recipe = format!(
        r#"
for h in [local(), ssh::connect("{dest}", {opts})] {{
    for i in 0..{n} {{
        let file = `{dir}/case${{i}}`;
        let out = h.run(["cat", file], #{{ quiet: true }});
        let err = h.run(["sh", "-c", "cat \"$0\" >&2", file], #{{ quiet: true }});
        print(`${{h.name}} ${{i}} out=${{out.stdout_bytes}} err=${{err.stderr_bytes}} lossy=${{out.lossy}}`);
        if !out.lossy && (out.stdout != out.stdout_bytes.as_string()) {{ print("string differs"); }}
    }}
    let big = h.run(["sh", "-c", "head -c 10000000 /dev/zero | tr '\\0' a; echo"], #{{ quiet: true }});
    let plain = big.stdout.starts_with("aaaa") && big.stdout.ends_with("aaaa\n") && big.stdout.index_of("\n") == 10000000;
    print(`${{h.name}} big=${{big.stdout.len()}} truncated=${{big.truncated}} plain=${{plain}}`);
    h.run(["printf", "first\nlast partial"]);
}}
"#,
        dest = fleet.dest(0),
        opts = fleet.options(),
        n = CASES.len(),
        dir = sb.path().display(),
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    let ssh_name = fleet.dest(0);
    for host in ["local", ssh_name.as_str()] {
        for (i, case) in CASES.iter().enumerate() {
            let lossy = std::str::from_utf8(case).is_err();
            let line = format!(
                "{host} {i} out={} err={} lossy={lossy}",
                hex(case),
                hex(case)
            );
            assert!(run.stdout.contains(&line), "{line}\n{}", run.stdout);
        }
        let big = format!("{host} big=10000001 truncated=false plain=true");
        assert!(run.stdout.contains(&big), "{big}\n{}", run.stdout);
        let partial = format!("[{host}] last partial");
        assert!(run.stdout.contains(&partial), "{partial}\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("string differs"), "{}", run.stdout);
}

#[test]
fn a_huge_output_is_shown_whole_and_kept_bounded() {
    let sb = Sandbox::new();
    let status = sb.join("status.txt");
    sb.write(
        "recipe.rhai",
        &format!(
            r#"
let h = local();
let r = h.run(["sh", "-c", "head -c 200000000 /dev/zero | tr '\\0' Q; echo; echo end"]);
h.write("{status}", h.read("/proc/self/status") + "kept=" + r.stdout.len() + "\ntruncated=" + r.truncated);
"#
        ),
    );
    // Everything shown: count what galley printed without keeping it.
    let mut child = sb
        .galley()
        .args(["run", "recipe.rhai", "--output", "plain"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut shown = 0usize;
    let mut tail = Vec::new();
    {
        use std::io::Read;
        let mut pipe = child.stdout.take().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = pipe.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            #[allow(clippy::naive_bytecount)] // a test counts a few kilobytes: no crate for that
            {
                shown += buf[..n].iter().filter(|b| **b == b'Q').count();
            }
            tail.extend_from_slice(&buf[..n]);
            let keep = tail.len().saturating_sub(4096);
            tail.drain(..keep);
        }
    }
    assert!(child.wait().unwrap().success());
    // Every byte is shown, plus the one `Q` of the action line that shows the command and any
    // that the sandbox's random name puts in the line of the status file's write.
    let in_path = status.matches('Q').count();
    assert_eq!(shown, 200_000_001 + in_path);
    assert!(String::from_utf8_lossy(&tail).contains("[local] end"));
    let status = std::fs::read_to_string(&status).unwrap();
    assert_eq!(value_of(&status, "kept"), (16 * 1024 * 1024).to_string());
    assert_eq!(value_of(&status, "truncated"), "true");
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM in /proc/self/status");
    assert!(
        peak_kib < 160 * 1024,
        "galley's peak memory was {peak_kib} KiB for 200 MB of output"
    );
}

/// A recipe that runs `n` commands on `h` and prints how many came back altered.
fn integrity_loop(n: usize) -> String {
    format!(
        r#"
let bad = 0;
for i in 0..{n} {{
    let word = `w${{i}}-${{TAG}}`;
    let r = h.run(["sh", "-c", "printf '%s\n%s' \"$0\" \"$0\"; printf '%s' \"$0\" >&2", word], #{{ quiet: true }});
    if r.stdout != word + "\n" + word || r.stderr != word || r.code != 0 {{
        bad += 1;
        print(`altered: ${{i}} out=${{r.stdout}} err=${{r.stderr}}`);
    }}
}}
"#
    )
}

#[test]
fn no_output_is_lost_under_concurrent_ssh_load() {
    let sb = Sandbox::new();
    // SHLVL=1 makes the remote bash skip root's ~/.bashrc, which on this machine costs 0.2 s of
    // CPU per command and, under load, writes pyenv complaints on stderr.
    let fleet = Fleet::start_with(10, &["SetEnv SHLVL=1".to_string()]);
    let _close = CloseMasters(fleet.control_dir());
    let one_host = format!(
        "const TAG = params.tag;\nlet h = ssh::connect(\"{}\", {});\n{}\nprint(`bad=${{bad}}`);",
        fleet.dest(0),
        fleet.options(),
        integrity_loop(300)
    );
    sb.write("one.rhai", &one_host);
    let dests: Vec<String> = (0..10).map(|i| format!("\"{}\"", fleet.dest(i))).collect();
    let fleet_recipe = format!(
        "const TAG = \"fleet\";\nlet hosts = ssh::hosts([{}], {});\nlet counts = parallel(hosts, |h| {{\n{}\nbad\n}});\nprint(`bad=${{counts.reduce(|s, c| s + c, 0)}}`);",
        dests.join(", "),
        fleet.options(),
        integrity_loop(20)
    );
    sb.write("fleet.rhai", &fleet_recipe);
    let mut children: Vec<_> = (0..4)
        .map(|i| {
            fleet
                .galley(&sb)
                .args(["run", "one.rhai", "--output", "plain"])
                .args(["--set", &format!("tag={i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children.push(
        fleet
            .galley(&sb)
            .args(["run", "fleet.rhai", "--output", "plain"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    for child in children {
        let run = Run::from(child.wait_with_output().unwrap()).expect_code(0);
        assert_eq!(value_of(&run.stdout, "bad"), "0", "{}", run.stdout);
    }
}

/// Reads every process's command line until stopped; returns the ones containing `needle`.
fn watch_cmdlines(
    needle: &'static str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let seen = Mutex::new(Vec::new());
        while !stop.load(Ordering::Relaxed) {
            for pid in all_pids() {
                let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                    continue;
                };
                let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if text.contains(needle) {
                    seen.lock().unwrap().push(text);
                }
            }
        }
        seen.into_inner().unwrap()
    })
}

#[test]
fn variables_never_appear_on_a_command_line() {
    let sb = Sandbox::new();
    let _reaper = Reaper::new(&sb);
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let recipe = format!(
        r#"
let env = #{{ TOKEN: "tok-SECRET-9f3a", MULTI: "line one\nline 'two'" }};
let l = local();
let plain = ssh::connect("{dest}", {opts});
let sudo = ssh::connect("{dest}", #{{ identity: "{key}", known_hosts_file: "{kh}", sudo: true }});
for h in [l, plain, sudo] {{
    let r = h.run(["sh", "-c", "sleep 0.3; printf '%s|%s' \"$TOKEN\" \"$MULTI\""], #{{ env: env, quiet: true }});
    print(`${{h.name}} got=${{r.stdout == "tok-SECRET-9f3a|line one\nline 'two'"}}`);
    let r = h.run(["sh", "-c", "sleep 0.3; printf '%s' \"$TOKEN\"; cat"], #{{ env: env, sudo: true, stdin: "in", quiet: true }});
    print(`${{h.name}} sudo=${{r.stdout == "tok-SECRET-9f3ain"}}`);
}}
// A positive control: the watcher does see what is on a command line.
l.run(["sh", "-c", "sleep 0.3", "visible-SECRET-control"]);
let app = l.process("app", #{{ cmd: ["sleep", "30"], dir: "{dir}", env: #{{ TOKEN: "tok-SECRET-9f3a" }} }});
app.start();
let far = plain.process("far", #{{ cmd: ["sleep", "30"], dir: "{dir}", env: #{{ TOKEN: "tok-SECRET-9f3a" }} }});
far.start();
sleep("300ms");
app.stop(); far.stop();
"#,
        dest = fleet.dest(0),
        opts = fleet.options(),
        key = fleet.key.display(),
        kh = fleet.known_hosts.display(),
        dir = sb.path().display(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_cmdlines("SECRET", stop.clone());
    let run = sb.run_recipe(&recipe, &[]);
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    let run = run.expect_code(0);
    assert_eq!(run.stdout.matches(" got=true").count(), 3, "{}", run.stdout);
    assert_eq!(
        run.stdout.matches(" sudo=true").count(),
        3,
        "{}",
        run.stdout
    );
    assert!(
        seen.iter().any(|c| c.contains("visible-SECRET-control")),
        "the watcher saw nothing at all: {seen:?}"
    );
    let leaked: Vec<&String> = seen.iter().filter(|c| c.contains("tok-SECRET")).collect();
    assert!(leaked.is_empty(), "secrets on command lines: {leaked:?}");
}

#[test]
fn a_background_process_holding_the_output_only_bounds_the_wait() {
    let sb = Sandbox::new();
    let _reaper = Reaper::new(&sb);
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    // Without the bound this would wait for the 300 s sleep; what was read is kept.
    let recipe = format!(
        r#"
for h in [local(), ssh::connect("{dest}", {opts})] {{
    let r = h.run(["sh", "-c", "echo hi; printf partial; sleep 300 &"], #{{ dir: "{dir}" }});
    print(`${{h.name}} kept=${{r.stdout == "hi\npartial"}} code=${{r.code}}`);
}}
"#,
        dest = fleet.dest(0),
        opts = fleet.options(),
        dir = sb.path().display(),
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    assert!(
        run.stdout.contains("local kept=true code=0"),
        "{}",
        run.stdout
    );
    let remote = format!("{} kept=true code=0", fleet.dest(0));
    assert!(run.stdout.contains(&remote), "{}", run.stdout);
}
