//! The command executor on ssh hosts (docs/ssh.md): the login user's rc runs once per
//! connection and what it exports is what commands see; it is restarted when killed; without
//! perl (or with `GALLEY_SSH_EXECUTOR=off`) every command opens a channel of its own. The rest of
//! the ssh suite runs through the executor by default and through channels with
//! `GALLEY_SSH_EXECUTOR=off cargo test --test integration ssh`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::sshd::{CloseMasters, Fleet};
use crate::support::{all_pids, environ, stat_ids, wait_until, Run, Sandbox};

/// A login folder whose `.bashrc` counts its runs in `rc-runs`, exports a variable and puts
/// `bin/` (holding `hello-from-rc`) first on PATH.
fn rc_home(sb: &Sandbox) -> PathBuf {
    let home = sb.path().join("home");
    std::fs::create_dir_all(home.join("bin")).unwrap();
    std::fs::write(
        home.join(".bashrc"),
        "echo run >> \"$HOME/rc-runs\"\nexport GALLEY_RC_VAR=from-rc\nexport PATH=\"$HOME/bin:$PATH\"\n",
    )
    .unwrap();
    let hello = home.join("bin/hello-from-rc");
    std::fs::write(&hello, "#!/bin/sh\necho hello from the rc PATH\n").unwrap();
    std::fs::set_permissions(&hello, std::fs::Permissions::from_mode(0o755)).unwrap();
    home
}

/// One host whose sessions use `home` as HOME (so bash runs its `.bashrc`).
fn fleet_with_home(home: &Path) -> Fleet {
    Fleet::start_with(1, &[format!("SetEnv HOME={}", home.display())])
}

fn rc_runs(home: &Path) -> usize {
    std::fs::read_to_string(home.join("rc-runs"))
        .unwrap_or_default()
        .lines()
        .count()
}

fn galley(sb: &Sandbox, fleet: &Fleet, recipe: &str, executor: Option<&str>) -> Command {
    sb.write("recipe.rhai", recipe);
    let mut cmd = fleet.galley(sb);
    cmd.args(["run", "recipe.rhai", "--output", "plain"]);
    match executor {
        Some(value) => cmd.env("GALLEY_SSH_EXECUTOR", value),
        None => cmd.env_remove("GALLEY_SSH_EXECUTOR"),
    };
    cmd
}

fn run(sb: &Sandbox, fleet: &Fleet, recipe: &str, executor: Option<&str>) -> Run {
    Run::from(galley(sb, fleet, recipe, executor).output().unwrap())
}

const FIVE_COMMANDS: &str = r#"
for i in 0..4 {
    let r = h.run(["sh", "-c", "printf '%s' \"$GALLEY_RC_VAR\""], #{ quiet: true });
    print(`var=${r.stdout}`);
}
print(h.run(["hello-from-rc"], #{ quiet: true }).stdout);
"#;

#[test]
fn the_rc_runs_once_per_connection_and_commands_see_what_it_exports() {
    let sb = Sandbox::new();
    let home = rc_home(&sb);
    let fleet = fleet_with_home(&home);
    let _close = CloseMasters(fleet.control_dir());
    let recipe = format!(
        "let h = ssh::connect(\"{}\", {});\n{FIVE_COMMANDS}",
        fleet.dest(0),
        fleet.options()
    );
    for _ in 0..2 {
        let r = run(&sb, &fleet, &recipe, None).expect_code(0);
        assert_eq!(r.stdout.matches("var=from-rc").count(), 4, "{}", r.stdout);
        assert!(r.stdout.contains("hello from the rc PATH"), "{}", r.stdout);
        assert!(!r.stderr.contains("executor"), "{}", r.stderr);
    }
    // Five commands in each of two runs, one rc: the executor outlives a run with its master.
    assert_eq!(rc_runs(&home), 1);

    // Forced off, every command pays for the rc, and sees the same.
    let r = run(&sb, &fleet, &recipe, Some("off")).expect_code(0);
    assert_eq!(r.stdout.matches("var=from-rc").count(), 4, "{}", r.stdout);
    assert!(r.stdout.contains("hello from the rc PATH"), "{}", r.stdout);
    assert_eq!(rc_runs(&home), 6);
}

/// The pids of `sleep 60` commands whose HOME is `home` (only this test's host has it).
fn sleepers(home: &Path) -> Vec<i64> {
    let wanted = format!("HOME={}", home.display());
    all_pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x0060\x00")
                && environ(*pid).contains(&wanted)
        })
        .collect()
}

/// The parent of `pid`.
fn parent(pid: i64) -> i64 {
    stat_ids(pid).map_or(0, |(ppid, _, _)| ppid)
}

#[test]
fn a_killed_executor_is_reported_for_its_command_and_the_next_command_restarts_it() {
    let sb = Sandbox::new();
    let home = rc_home(&sb);
    let fleet = fleet_with_home(&home);
    let _close = CloseMasters(fleet.control_dir());
    let mark = sb.path().join("started");
    let recipe = format!(
        r#"let h = ssh::connect("{}", {});
try {{
    h.run(["sh", "-c", "touch {}; exec sleep 60"]);
    print("no failure");
}} catch (e) {{
    print(`failed: ${{e}}`);
}}
print(h.run(["echo", "after"], #{{ quiet: true }}).stdout);
"#,
        fleet.dest(0),
        fleet.options(),
        mark.display()
    );
    let child = galley(&sb, &fleet, &recipe, None)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the command to start", Duration::from_secs(30), || {
        mark.exists() && !sleepers(&home).is_empty()
    });
    // The command's parent is the executor's handler of its request, whose parent is the
    // executor: kill both, as an out-of-memory killer or an admin would.
    let command = sleepers(&home);
    assert_eq!(command.len(), 1, "the command runs once");
    let handler = parent(command[0]);
    let killed = [handler, parent(handler)];
    for pid in killed {
        assert!(std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.starts_with(b"galley-executor")));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let r = Run::from(child.wait_with_output().unwrap()).expect_code(0);
    assert!(
        r.stdout.contains("failed:") && r.stdout.contains("executor"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("after"), "{}", r.stdout);
    // A new executor served the last command; the old one's command is not left behind.
    wait_until(
        "the orphaned command to be killed",
        Duration::from_secs(10),
        || sleepers(&home).is_empty(),
    );
    // The first executor, the channel that killed the orphan, the new executor.
    assert_eq!(rc_runs(&home), 3);
}

/// A folder of links to every program in /usr/bin and /bin but perl.
fn path_without_perl(sb: &Sandbox) -> PathBuf {
    let dir = sb.path().join("noperl");
    std::fs::create_dir_all(&dir).unwrap();
    for from in ["/bin", "/usr/bin"] {
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with("perl") {
                continue;
            }
            let _ = std::os::unix::fs::symlink(entry.path(), dir.join(&name));
        }
    }
    dir
}

#[test]
fn without_perl_commands_use_channels_and_galley_says_so_once() {
    let sb = Sandbox::new();
    let path = path_without_perl(&sb);
    // SHLVL=1: bash skips root's rc, which would put perl back on PATH.
    let fleet = Fleet::start_with(1, &[format!("SetEnv PATH={} SHLVL=1", path.display())]);
    let _close = CloseMasters(fleet.control_dir());
    let recipe = format!(
        r#"let h = ssh::connect("{}", {});
for i in 0..3 {{ print(h.run(["sh", "-c", "echo ran $0", "{}"], #{{ quiet: true }}).stdout); }}
"#,
        fleet.dest(0),
        fleet.options(),
        "x"
    );
    let r = run(&sb, &fleet, &recipe, None).expect_code(0);
    assert_eq!(r.stdout.matches("ran x").count(), 3, "{}", r.stdout);
    let said = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(said.matches("no command executor").count(), 1, "{said}");
}

#[test]
fn large_stdin_and_concurrent_commands_on_one_host_through_the_executor() {
    let sb = Sandbox::new();
    let home = rc_home(&sb);
    let fleet = fleet_with_home(&home);
    let _close = CloseMasters(fleet.control_dir());
    // More than one stdin frame and many pipe buffers, read slowly by the command.
    let input: String = (0..30_000).map(|i| format!("line {i}\n")).collect();
    let recipe = format!(
        r#"let h = ssh::connect("{}", {});
let input = "{}";
let r = h.run(["sh", "-c", "sleep 0.2; cat; echo done >&2"], #{{ stdin: input, quiet: true }});
print(`same=${{r.stdout == input}} err=${{r.stderr}}`);
let pids = parallel([1, 2, 3, 4, 5, 6], |i| h.run(["sh", "-c", "sleep 0.5; echo $$"], #{{ quiet: true }}).stdout);
print(`pids=${{pids}}`);
"#,
        fleet.dest(0),
        fleet.options(),
        input.replace('\n', "\\n")
    );
    let r = run(&sb, &fleet, &recipe, None).expect_code(0);
    assert!(r.stdout.contains("same=true err=done"), "{}", r.stdout);
    let line = r.stdout.lines().find(|l| l.starts_with("pids=")).unwrap();
    let mut pids: Vec<&str> = line
        .trim_start_matches("pids=[")
        .trim_end_matches(']')
        .split(", ")
        .collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 6, "six commands, six processes: {line}");
    assert_eq!(rc_runs(&home), 1);
}
