//! ssh hosts against real sshd servers on loopback. Every host shares this machine's
//! filesystem and process table, so results are checked directly with `std::fs` and /proc.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::lit;
use crate::support::sshd::{CloseMasters, Fleet};
use crate::support::{
    alive, all_pids, environ, flat, free_port, http_get, read_pid, stat_ids, value_of, wait_until,
    GitOrigin, Reaper, Run, Sandbox,
};

const LIMIT: Duration = Duration::from_secs(20);

/// A galley command that keeps its control sockets in the fleet's folder.
fn run(sb: &Sandbox, fleet: &Fleet, recipe: &str) -> Run {
    sb.write("recipe.rhai", recipe);
    fleet
        .invoke(sb, ["run", "recipe.rhai", "--output", "plain"])
        .run()
}

/// `galley run recipe.rhai` with the fleet's control folder, not yet started.
fn galley(sb: &Sandbox, fleet: &Fleet) -> Command {
    fleet
        .invoke(sb, ["run", "recipe.rhai", "--output", "plain"])
        .command()
}

/// The `ssh::connect` options map with the fleet's key and `known_hosts` plus `extra` entries.
fn opts(fleet: &Fleet, extra: &str) -> String {
    let mut entries = vec![
        format!("identity: {}", lit(&fleet.key.to_string_lossy())),
        format!(
            "known_hosts_file: {}",
            lit(&fleet.known_hosts.to_string_lossy())
        ),
    ];
    if !extra.is_empty() {
        entries.push(extra.to_string());
    }
    format!("#{{ {} }}", entries.join(", "))
}

/// The pids of the ssh master processes (`ssh -M ... -S <control dir>/...`) of this control dir.
fn masters(control: &Path) -> Vec<i64> {
    let control = format!("{}/", control.display());
    all_pids()
        .into_iter()
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.first()
                .is_some_and(|a| a == "ssh" || a.ends_with("/ssh"))
                && args.iter().any(|a| a == "-M")
                && args.iter().any(|a| a.starts_with(&control))
        })
        .filter(|pid| alive(*pid))
        .collect()
}

/// Kills a child (and waits for it) when dropped.
struct KillOnDrop(Child);

impl KillOnDrop {
    /// Waits for a `galley` started with piped stdout and stderr, and returns what it printed.
    fn finish(&mut self) -> Run {
        use std::io::Read;
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.0.stdout.take() {
            pipe.read_to_string(&mut stdout).unwrap();
        }
        if let Some(mut pipe) = self.0.stderr.take() {
            pipe.read_to_string(&mut stderr).unwrap();
        }
        let status = self.0.wait().expect("wait for galley");
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Whether `program` is on this machine's PATH (which the local sshd sessions share).
fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a report says `needle`, however its lines were wrapped (even inside a path): both are
/// compared with the wrapping margin and all whitespace removed.
fn says(stderr: &str, needle: &str) -> bool {
    let squash = |t: &str| t.split_whitespace().collect::<String>();
    squash(&flat(stderr)).contains(&squash(needle))
}

#[test]
fn runs_commands_and_files_over_ssh() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let root = fleet.hosts[0].root.display().to_string();
    std::fs::create_dir_all(format!("{root}/my dir")).unwrap();
    let args = [
        "a b",
        "  two  spaces  ",
        "it's",
        "say \"hi\"",
        "$(echo no)",
        "`echo no`",
        "${HOME}",
        ";",
        "a;b",
        "*",
        "|",
        "&&",
        ">out",
        "x\ny",
        "-n",
        "--",
        "tab\there",
        "back\\slash",
        "",
        "~",
        "#hash",
        "ünïcode",
    ];
    let args_rhai: Vec<String> = args.iter().map(|a| lit(a)).collect();
    let env_value = "two words; $(echo no) 'q' \"dq\" `bt`";
    let stdin_text = "line 1\n$(echo no) 'q'\n\nno newline at the end";
    let recipe = format!(
        r#"
let h = ssh::connect("{dest}", {opts});
let out = h.run(["printf", "%s|", "a b", "$(echo no)", "it's", ";", "*", "x\ny"]);
print("got=" + out.stdout);
h.run(["sh", "-c", "printf '%s\\0' \"$@\" > \"$0\"", "{root}/args.bin", {args}]);
h.run(["sh", "-c", "printf '%s' \"$GREETING\" > {root}/env.txt"], #{{ env: #{{ GREETING: {env} }} }});
h.run(["sh", "-c", "pwd > ../pwd.txt"], #{{ dir: "{root}/my dir" }});
h.run(["sh", "-c", "cat > {root}/stdin.txt"], #{{ stdin: {stdin} }});
let r = h.run("echo \"$PWD\"", #{{ dir: "{root}/my dir" }});
print("shellpwd=" + r.stdout);
h.mkdir("{root}/a/b");
h.write("{root}/a/b/f.txt", "hello");
print("read=" + h.read("{root}/a/b/f.txt"));
print("exists=" + h.exists("{root}/a/b/f.txt") + "," + h.exists("{root}/nope"));
h.symlink("{root}/a/b/f.txt", "{root}/link");
print("link=" + h.read("{root}/link"));
h.remove("{root}/link");
print("gone=" + h.exists("{root}/link"));
let r = h.run("echo $PWD", #{{ dir: "{root}/a" }});
print("pwd=" + r.stdout);
"#,
        dest = fleet.dest(0),
        opts = fleet.options(),
        args = args_rhai.join(", "),
        env = lit(env_value),
        stdin = lit(stdin_text),
    );
    let r = run(&sb, &fleet, &recipe);
    let r = r.expect_code(0);
    assert!(
        r.stdout.contains("got=a b|$(echo no)|it's|;|*|x\ny|"),
        "{}",
        r.stdout
    );
    let bytes = std::fs::read(format!("{root}/args.bin")).expect("the remote wrote args.bin");
    let mut got: Vec<String> = bytes
        .split(|b| *b == 0)
        .map(|a| String::from_utf8(a.to_vec()).unwrap())
        .collect();
    assert_eq!(got.pop().as_deref(), Some(""), "ends with a NUL");
    assert_eq!(got, args, "every argument arrives verbatim, in order");
    assert_eq!(
        std::fs::read_to_string(format!("{root}/env.txt")).unwrap(),
        env_value,
        "an env value arrives verbatim"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{root}/pwd.txt")).unwrap(),
        format!("{root}/my dir\n"),
        "a dir with a space in its name"
    );
    assert_eq!(
        std::fs::read(format!("{root}/stdin.txt")).unwrap(),
        stdin_text.as_bytes(),
        "stdin arrives verbatim"
    );
    let out = &r.stdout;
    assert_eq!(value_of(out, "shellpwd"), format!("{root}/my dir"), "{out}");
    assert_eq!(value_of(out, "read"), "hello", "{out}");
    assert_eq!(value_of(out, "exists"), "true,false", "{out}");
    assert_eq!(value_of(out, "link"), "hello", "{out}");
    assert_eq!(value_of(out, "gone"), "false", "{out}");
    assert_eq!(value_of(out, "pwd"), format!("{root}/a"), "{out}");
}

#[test]
fn files_are_written_atomically_with_their_mode_and_links_switch() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let root = fleet.hosts[0].root.clone();
    let r = root.display().to_string();
    let recipe = format!(
        r#"
let h = ssh::connect("{dest}", {opts});
h.write("{r}/secret.env", "one\n", #{{ mode: "0600" }});
h.write("{r}/plain.txt", "plain");
h.write("{r}/num.txt", "num", #{{ mode: 0o640 }});
h.mkdir("{r}/releases/1/deep");
h.mkdir("{r}/releases/1/deep");
h.mkdir("{r}/releases/2");
h.write("{r}/releases/1/v", "1");
h.write("{r}/releases/2/v", "2");
h.symlink("releases/1", "{r}/current");
print("first=" + h.read("{r}/current/v"));
h.remove("{r}/no-such-file");
print("exists=" + h.exists("{r}/releases/1/deep") + "," + h.exists("{r}/missing"));
"#,
        dest = fleet.dest(0),
        opts = fleet.options(),
    );
    let first = run(&sb, &fleet, &recipe).expect_code(0);
    assert_eq!(value_of(&first.stdout, "first"), "1");
    assert_eq!(value_of(&first.stdout, "exists"), "true,false");
    let secret = root.join("secret.env");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "one\n");
    assert_eq!(mode(&secret), 0o600, "mode \"0600\" is set");
    assert_eq!(mode(&root.join("plain.txt")), 0o644, "a new file is 0644");
    assert_eq!(mode(&root.join("num.txt")), 0o640, "mode 0o640 as a number");
    assert!(root.join("releases/1/deep").is_dir(), "mkdir makes parents");
    assert_eq!(
        std::fs::read_link(root.join("current")).unwrap(),
        Path::new("releases/1")
    );

    // A hard link keeps the old file: a write that replaces (rename) leaves it untouched, one
    // that rewrites in place would change it.
    let old = root.join("secret.old");
    std::fs::hard_link(&secret, &old).unwrap();
    let inode = std::fs::metadata(&secret).unwrap().ino();
    std::fs::set_permissions(
        root.join("plain.txt"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let recipe = format!(
        r#"
let h = ssh::connect("{dest}", {opts});
h.write("{r}/secret.env", "two\n");
h.write("{r}/plain.txt", "replaced");
h.symlink("releases/2", "{r}/current");
print("second=" + h.read("{r}/current/v"));
h.symlink("{r}/nowhere", "{r}/dangling");
print("dangling=" + h.exists("{r}/dangling"));
h.remove("{r}/dangling");
print("removed=" + h.exists("{r}/dangling"));
"#,
        dest = fleet.dest(0),
        opts = fleet.options(),
    );
    let second = run(&sb, &fleet, &recipe).expect_code(0);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "two\n");
    assert_eq!(
        std::fs::read_to_string(&old).unwrap(),
        "one\n",
        "the old file was replaced by a rename, not rewritten in place"
    );
    assert_ne!(std::fs::metadata(&secret).unwrap().ino(), inode);
    assert_eq!(mode(&secret), 0o600, "a replaced file keeps its mode");
    assert_eq!(
        mode(&root.join("plain.txt")),
        0o755,
        "a replaced file keeps its (changed) mode"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("plain.txt")).unwrap(),
        "replaced"
    );
    assert_eq!(value_of(&second.stdout, "second"), "2");
    assert_eq!(
        std::fs::read_link(root.join("current")).unwrap(),
        Path::new("releases/2"),
        "the existing link now points at the new target"
    );
    assert!(
        std::fs::symlink_metadata(root.join("current"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "current is still a link"
    );
    assert!(
        !root.join("releases/1/2").exists() && !root.join("releases/1/releases").exists(),
        "the switch did not create a link inside the old target"
    );
    assert_eq!(value_of(&second.stdout, "dangling"), "true");
    assert_eq!(value_of(&second.stdout, "removed"), "false");
    let leftovers: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".galley-"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");

    let recipe = format!(
        "let h = ssh::connect(\"{dest}\", {opts});\nh.read(\"{r}/missing.txt\");\n",
        dest = fleet.dest(0),
        opts = fleet.options(),
    );
    let missing = run(&sb, &fleet, &recipe).expect_code(1);
    assert!(says(&missing.stderr, "galley::io"), "{}", missing.stderr);
    assert!(
        says(&missing.stderr, &format!("{r}/missing.txt")),
        "{}",
        missing.stderr
    );
}

#[test]
fn uploads_and_downloads_a_large_file_over_sftp() {
    use std::io::Read;
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let source = sb.path().join("big.bin");
    let mut bytes = Vec::with_capacity(50 << 20);
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .take(50 << 20)
        .read_to_end(&mut bytes)
        .unwrap();
    assert_eq!(bytes.len(), 50 << 20);
    std::fs::write(&source, &bytes).unwrap();
    drop(bytes);
    std::fs::set_permissions(&source, std::fs::Permissions::from_mode(0o751)).unwrap();
    let uploaded = fleet.hosts[0].root.join("up/big.bin");
    std::fs::create_dir_all(uploaded.parent().unwrap()).unwrap();
    let back = sb.path().join("back/big.bin");
    std::fs::create_dir_all(back.parent().unwrap()).unwrap();
    let recipe = format!(
        r#"
let h = ssh::connect("{dest}", {opts});
h.upload({source}, {uploaded});
h.download({uploaded}, {back});
"#,
        dest = fleet.dest(0),
        opts = fleet.options(),
        source = lit(&source.to_string_lossy()),
        uploaded = lit(&uploaded.to_string_lossy()),
        back = lit(&back.to_string_lossy()),
    );
    run(&sb, &fleet, &recipe).expect_code(0);
    let digest = sha256(&source);
    assert_eq!(sha256(&uploaded), digest, "uploaded copy");
    assert_eq!(sha256(&back), digest, "downloaded copy");
    assert_eq!(mode(&uploaded), 0o751, "the upload keeps the source's mode");
}

#[test]
fn sudo_runs_commands_and_files_as_root() {
    if !installed("sudo") {
        println!("note: sudo is not installed; skipping the sudo test");
        return;
    }
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let root = fleet.hosts[0].root.display().to_string();
    let recipe = format!(
        r#"
let h = ssh::connect("{dest}", {opts});
print("uid=" + h.run(["id", "-u"]).stdout);
print("sudo_user=" + h.run(["sh", "-c", "echo \"$SUDO_USER\""]).stdout);
h.write("{root}/sudo.txt", "as root", #{{ mode: "0640" }});
print("read=" + h.read("{root}/sudo.txt"));
let plain = ssh::connect("{dest}", {plain});
print("plain_sudo_user=" + plain.run(["sh", "-c", "echo \"x$SUDO_USER\""]).stdout);
print("opt_sudo_user=" + plain.run(["sh", "-c", "echo \"$SUDO_USER\""], #{{ sudo: true }}).stdout);
"#,
        dest = fleet.dest(0),
        opts = opts(&fleet, "sudo: true"),
        plain = fleet.options(),
    );
    let r = run(&sb, &fleet, &recipe).expect_code(0);
    assert_eq!(value_of(&r.stdout, "uid"), "0");
    assert_eq!(
        value_of(&r.stdout, "sudo_user"),
        "root",
        "the command ran through sudo"
    );
    assert_eq!(value_of(&r.stdout, "read"), "as root");
    let file = fleet.hosts[0].root.join("sudo.txt");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "as root");
    assert_eq!(mode(&file), 0o640);
    assert_eq!(value_of(&r.stdout, "plain_sudo_user"), "x");
    assert_eq!(value_of(&r.stdout, "opt_sudo_user"), "root");
}

#[test]
fn clones_and_pulls_git_over_ssh() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let origin = GitOrigin::new(sb.path(), "main", &[("app.txt", "v1\n")]);
    let head = crate::support::sh(&origin.bare, &["git", "rev-parse", "HEAD"]);
    let dir = fleet.hosts[0].root.join("app");
    let recipe = format!(
        r#"
let h = ssh::connect("{dest}", {opts});
let repo = h.git({dir});
if !h.exists({dir}) {{
    repo.clone({url}, #{{ branch: "main" }});
}} else {{
    repo.pull();
}}
print("sha=" + repo.sha());
print("branch=" + repo.branch());
print("clean=" + repo.is_clean());
"#,
        dest = fleet.dest(0),
        opts = fleet.options(),
        dir = lit(&dir.to_string_lossy()),
        url = lit(&origin.url()),
    );
    let r = run(&sb, &fleet, &recipe).expect_code(0);
    assert_eq!(value_of(&r.stdout, "sha"), head);
    assert_eq!(value_of(&r.stdout, "branch"), "main");
    assert_eq!(value_of(&r.stdout, "clean"), "true");
    assert_eq!(
        std::fs::read_to_string(dir.join("app.txt")).unwrap(),
        "v1\n"
    );

    let new = origin.push(&[("app.txt", "v2\n")], "second");
    let r = run(&sb, &fleet, &recipe).expect_code(0);
    assert_eq!(
        value_of(&r.stdout, "sha"),
        new,
        "pull reached the new commit"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("app.txt")).unwrap(),
        "v2\n"
    );
}

#[test]
fn a_process_started_over_ssh_outlives_the_connection_and_stops_later() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let reaper = Reaper::new(&sb);
    let control = fleet.control_dir();
    let _close = CloseMasters(control.clone());
    let root = fleet.hosts[0].root.clone();
    let port = free_port();
    let recipe = |body: &str| {
        format!(
            r#"
let h = ssh::connect("{dest}", {opts});
let app = h.process("app", #{{ cmd: ["python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"], dir: {root} }});
{body}
"#,
            dest = fleet.dest(0),
            opts = opts(&fleet, "persist: false"),
            root = lit(&root.to_string_lossy()),
        )
    };
    let started = run(&sb, &fleet, &recipe("print(\"pid=\" + app.start());"));
    let pidfile = root.join("app.pid");
    if let Ok(text) = std::fs::read_to_string(&pidfile) {
        if let Ok(pid) = text.trim().parse() {
            reaper.track(pid);
        }
    }
    let started = started.expect_code(0);
    let pid = read_pid(&pidfile);
    assert_eq!(value_of(&started.stdout, "pid"), pid.to_string());
    wait_until("the master to close (persist: false)", LIMIT, || {
        masters(&control).is_empty()
    });
    wait_until("the app to serve", LIMIT, || http_get(port, "/").is_some());
    assert!(alive(pid), "the app died with the connection");
    assert!(
        environ(pid).iter().any(|v| v == "GALLEY_SERVICE=app"),
        "the app carries its mark: {:?}",
        environ(pid)
    );
    let (_, pgid, sid) = stat_ids(pid).expect("stat");
    assert_eq!((pgid, sid), (pid, pid), "own session and process group");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        root.canonicalize().unwrap()
    );

    let stopped = run(
        &sb,
        &fleet,
        &recipe("print(\"was=\" + app.pid()); app.stop(); print(\"running=\" + app.is_running());"),
    )
    .expect_code(0);
    assert_eq!(value_of(&stopped.stdout, "was"), pid.to_string());
    assert_eq!(value_of(&stopped.stdout, "running"), "false");
    wait_until("the app to be gone", LIMIT, || !alive(pid));
    assert!(!pidfile.exists(), "stop removes the pidfile");
    assert!(http_get(port, "/").is_none(), "nothing serves any more");
}

#[test]
fn tunnels_reach_the_hosts_loopback_and_health_checks_use_them() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let control = fleet.control_dir();
    let _close = CloseMasters(control.clone());
    let port = free_port();
    let _server = KillOnDrop(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(&fleet.hosts[0].root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 http.server"),
    );
    wait_until("the remote app to serve", LIMIT, || {
        http_get(port, "/").is_some()
    });
    let recipe = format!(
        r#"
let h = ssh::connect("{dest}", {opts});
let a = h.forward({port});
print("addr=" + a);
print("again=" + h.forward({port}));
health::http("http://127.0.0.1:{port}/", #{{ on: h }});
health::tcp("127.0.0.1:{port}", #{{ on: h }});
print("healthy=yes");
"#,
        dest = fleet.dest(0),
        opts = opts(&fleet, "name: \"web1\""),
    );
    let r = run(&sb, &fleet, &recipe).expect_code(0);
    let addr = value_of(&r.stdout, "addr");
    assert_eq!(value_of(&r.stdout, "again"), addr, "one tunnel per port");
    assert_eq!(value_of(&r.stdout, "healthy"), "yes");
    let local: u16 = addr
        .strip_prefix("127.0.0.1:")
        .unwrap_or_else(|| panic!("{addr} is not on 127.0.0.1"))
        .parse()
        .unwrap();
    assert_ne!(local, port, "the tunnel has a port of its own");
    // The master persists for the next run, but this run's tunnel is closed.
    assert_eq!(masters(&control).len(), 1, "the master persists");
    wait_until("the run's tunnel to close", LIMIT, || {
        std::net::TcpStream::connect(("127.0.0.1", local)).is_err()
    });

    let dead = free_port();
    let recipe = format!(
        r#"
let h = ssh::connect("{dest}", {opts});
health::http("http://127.0.0.1:{dead}/health", #{{ on: h, retries: 2, interval: "100ms" }});
"#,
        dest = fleet.dest(0),
        opts = opts(&fleet, "name: \"web1\""),
    );
    let r = run(&sb, &fleet, &recipe).expect_code(1);
    assert!(says(&r.stderr, "galley::health"), "{}", r.stderr);
    assert!(
        says(&r.stderr, &format!("http://127.0.0.1:{dead}/health")),
        "the report names the original URL:\n{}",
        r.stderr
    );
    assert!(says(&r.stderr, "web1"), "and the host:\n{}", r.stderr);
}

/// Kills, when dropped, the processes a test saw on the remote (cleanup after a failure only:
/// the assertions run before it).
struct KillPids(Vec<i64>);

impl Drop for KillPids {
    fn drop(&mut self) {
        for pid in self.0.iter().filter(|p| alive(**p)) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The live processes in process group `pgid`.
fn group(pgid: i64) -> Vec<i64> {
    all_pids()
        .into_iter()
        .filter(|p| alive(*p) && stat_ids(*p).is_some_and(|(_, g, _)| g == pgid))
        .collect()
}

/// What a remote `sh -c '...; sleep 600; ...'` left behind.
struct Slept {
    run: Run,
    /// The remote shell, which leads the remote process group.
    sh: i64,
    pgid: i64,
    sleep: i64,
    _cleanup: KillPids,
}

/// Runs `sh -c "PREFIX echo $$ > PIDFILE; sleep 600; echo after"` on host 0 with the run options
/// `run_opts`, waits until the remote sleep runs in the shell's process group, calls `poke` with
/// galley's pid, and waits for galley to end.
fn remote_sleep(
    sb: &Sandbox,
    fleet: &Fleet,
    prefix: &str,
    run_opts: &str,
    poke: impl FnOnce(u32),
) -> Slept {
    let pidfile = fleet.hosts[0].root.join("sh.pid");
    let script = format!(
        "{prefix} echo $$ > {}; sleep 600; echo after",
        pidfile.display()
    );
    sb.write(
        "recipe.rhai",
        &format!(
            "let h = ssh::connect(\"{dest}\", {opts});\nh.run([\"sh\", \"-c\", {script}], {run_opts});\n",
            dest = fleet.dest(0),
            opts = fleet.options(),
            script = lit(&script),
        ),
    );
    let child = galley(sb, fleet)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start galley");
    let galley_pid = child.id();
    let mut cleanup = KillPids(Vec::new());
    wait_until("the remote shell's pid", LIMIT, || {
        std::fs::read_to_string(&pidfile).is_ok_and(|t| t.ends_with('\n'))
    });
    let sh = read_pid(&pidfile);
    cleanup.0.push(sh);
    let pgid = stat_ids(sh).expect("the remote shell runs").1;
    let mut sleep = None;
    wait_until("the remote sleep to run", LIMIT, || {
        sleep = sleep.or_else(|| {
            group(pgid).into_iter().find(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.starts_with(b"sleep\x00600"))
            })
        });
        sleep.is_some()
    });
    let sleep = sleep.expect("found");
    cleanup.0.push(sleep);
    poke(galley_pid);
    let run = Run::from(child.wait_with_output().expect("galley ends"));
    Slept {
        run,
        sh,
        pgid,
        sleep,
        _cleanup: cleanup,
    }
}

impl Slept {
    /// Waits until the remote shell, its sleep and its whole process group are gone.
    fn assert_all_gone(&self) {
        assert_eq!(
            self.pgid, self.sh,
            "the remote shell leads its process group"
        );
        wait_until("the remote shell and sleep to be gone", LIMIT, || {
            !alive(self.sh) && !alive(self.sleep)
        });
        wait_until("the remote process group to be empty", LIMIT, || {
            group(self.pgid).is_empty()
        });
    }
}

#[test]
fn a_timeout_kills_the_remote_process_group() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let slept = remote_sleep(&sb, &fleet, "", "#{ timeout: \"1s\" }", |_| {});
    let r = &slept.run;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(says(&r.stderr, "galley::timeout"), "{}", r.stderr);
    slept.assert_all_gone();
}

#[test]
fn a_timeout_kills_a_remote_group_that_ignores_term() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let slept = remote_sleep(&sb, &fleet, "trap '' TERM;", "#{ timeout: \"1s\" }", |_| {});
    let r = &slept.run;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(says(&r.stderr, "galley::timeout"), "{}", r.stderr);
    slept.assert_all_gone();
}

#[test]
fn ctrl_c_kills_the_remote_process_group() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let slept = remote_sleep(&sb, &fleet, "", "#{}", |galley| {
        crate::support::sh(sb.path(), &["kill", "-INT", &galley.to_string()]);
    });
    let r = &slept.run;
    assert_eq!(r.code, 130, "{}\n{}", r.stdout, r.stderr);
    assert!(says(&r.stderr, "galley::interrupted"), "{}", r.stderr);
    slept.assert_all_gone();
}

#[test]
fn an_unreachable_host_is_reported() {
    let sb = Sandbox::new();
    let mut fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    fleet.hosts[0].stop();
    let recipe = format!(
        r#"let h = ssh::connect("{dest}", {opts});"#,
        dest = fleet.dest(0),
        opts = opts(&fleet, "connect_timeout: \"3s\""),
    );
    let r = run(&sb, &fleet, &recipe).expect_code(1);
    assert!(says(&r.stderr, "galley::ssh_unreachable"), "{}", r.stderr);
    assert!(says(&r.stderr, "connection refused"), "{}", r.stderr);
    assert!(says(&r.stderr, "connect timeout 3s"), "{}", r.stderr);
    assert!(
        says(&r.stderr, &format!("[127.0.0.1]:{}", fleet.hosts[0].port)),
        "{}",
        r.stderr
    );
}

#[test]
fn a_refused_key_is_an_auth_failure_naming_the_identity() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let key = sb.path().join("stranger_key");
    crate::support::sh(
        sb.path(),
        &[
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            &key.to_string_lossy(),
        ],
    );
    let recipe = format!(
        r#"let h = ssh::connect("{dest}", #{{ identity: {key}, known_hosts_file: {kh} }});"#,
        dest = fleet.dest(0),
        key = lit(&key.to_string_lossy()),
        kh = lit(&fleet.known_hosts.to_string_lossy()),
    );
    let r = run(&sb, &fleet, &recipe).expect_code(1);
    assert!(says(&r.stderr, "galley::ssh_auth"), "{}", r.stderr);
    assert!(
        says(&r.stderr, &key.to_string_lossy()),
        "the report names the identity:\n{}",
        r.stderr
    );
    assert!(says(&r.stderr, "root"), "and the user:\n{}", r.stderr);
}

#[test]
fn an_unknown_host_key_is_refused_unless_accept_new() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let control = fleet.control_dir();
    let _close = CloseMasters(control.clone());
    let known = sb.write("known_hosts", "");
    let recipe = |extra: &str| {
        format!(
            r#"
let h = ssh::connect("{dest}", #{{ identity: {key}, known_hosts_file: {kh}, persist: false{extra} }});
print("ran=" + h.run(["echo", "ok"]).stdout);
"#,
            dest = fleet.dest(0),
            key = lit(&fleet.key.to_string_lossy()),
            kh = lit(&known.to_string_lossy()),
        )
    };
    let r = run(&sb, &fleet, &recipe("")).expect_code(1);
    assert!(
        says(&r.stderr, "galley::ssh_host_key_unknown"),
        "{}",
        r.stderr
    );
    assert!(says(&r.stderr, "accept-new"), "{}", r.stderr);
    assert!(
        says(&r.stderr, &known.to_string_lossy()),
        "names the file:\n{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        "",
        "nothing added"
    );

    let r = run(&sb, &fleet, &recipe(", known_hosts: \"accept-new\"")).expect_code(0);
    assert_eq!(value_of(&r.stdout, "ran"), "ok");
    let added = std::fs::read_to_string(&known).unwrap();
    assert!(
        added.contains(&fleet.hosts[0].host_key_pub),
        "the host key was added: {added:?}"
    );
    wait_until("the master to close", LIMIT, || {
        masters(&control).is_empty()
    });

    // A fresh strict connection now trusts the added key.
    let r = run(&sb, &fleet, &recipe("")).expect_code(0);
    assert_eq!(value_of(&r.stdout, "ran"), "ok");
}

#[test]
fn a_changed_host_key_is_refused_even_with_accept_new() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(2);
    let _close = CloseMasters(fleet.control_dir());
    let known = sb.write(
        "known_hosts",
        &format!(
            "[127.0.0.1]:{} {}\n",
            fleet.hosts[0].port, fleet.hosts[1].host_key_pub
        ),
    );
    let known_text = known.to_string_lossy().into_owned();
    let sent = sb.write("host0.pub", &format!("{}\n", fleet.hosts[0].host_key_pub));
    let fingerprint =
        crate::support::sh(sb.path(), &["ssh-keygen", "-lf", &sent.to_string_lossy()])
            .split_whitespace()
            .nth(1)
            .expect("a fingerprint")
            .to_string();
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
    for extra in ["", ", known_hosts: \"accept-new\""] {
        let recipe = format!(
            r#"let h = ssh::connect("{dest}", #{{ identity: {key}, known_hosts_file: {kh}{extra} }});
print("connected");"#,
            dest = fleet.dest(0),
            key = lit(&fleet.key.to_string_lossy()),
            kh = lit(&known_text),
        );
        let r = run(&sb, &fleet, &recipe).expect_code(1);
        assert!(
            says(&r.stderr, "galley::ssh_host_key_changed"),
            "{extra}: {}",
            r.stderr
        );
        assert!(
            says(&r.stderr, &format!("it now sends {fingerprint}")),
            "{extra}: the report shows host 0's fingerprint {fingerprint}:\n{}",
            r.stderr
        );
        assert!(
            says(&r.stderr, &format!("{known_text}:1")),
            "{extra}: the report names the offending line:\n{}",
            r.stderr
        );
        assert!(!r.stdout.contains("connected"), "{}", r.stdout);
    }
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        format!(
            "[127.0.0.1]:{} {}\n",
            fleet.hosts[0].port, fleet.hosts[1].host_key_pub
        ),
        "the known_hosts file is untouched"
    );
}

/// A remote shell loop that waits until `file` exists; it also ends when `dir` (the test's
/// sandbox) is gone, so that a loop orphaned by a broken connection cannot outlive the test.
fn wait_for(file: &Path, dir: &Path) -> String {
    format!(
        "while [ ! -e {} ] && [ -d {} ]; do sleep 0.05; done",
        file.display(),
        dir.display()
    )
}

#[test]
fn the_master_persists_across_runs_unless_persist_is_false() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(2);
    let control = fleet.control_dir();
    let _close = CloseMasters(control.clone());
    let recipe = |i: usize, extra: &str, body: &str| {
        format!(
            "let h = ssh::connect(\"{dest}\", {opts});\n{body}\n",
            dest = fleet.dest(i),
            opts = opts(&fleet, extra),
        )
    };
    run(&sb, &fleet, &recipe(0, "", "h.run([\"true\"]);")).expect_code(0);
    let first = masters(&control);
    assert_eq!(first.len(), 1, "one master after the first run");
    run(&sb, &fleet, &recipe(0, "", "h.run([\"true\"]);")).expect_code(0);
    assert_eq!(
        masters(&control),
        first,
        "the second run resumed the same master"
    );

    // Host 1 without persistence: while the run waits, its master is there; when the run ends
    // it is gone, also when the run fails.
    let go = sb.path().join("go");
    sb.write(
        "recipe.rhai",
        &recipe(
            1,
            "persist: false",
            &format!(
                "h.run([\"sh\", \"-c\", {}]);",
                lit(&wait_for(&go, sb.path()))
            ),
        ),
    );
    let mut waiting = KillOnDrop(
        galley(&sb, &fleet)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start galley"),
    );
    wait_until("host 1's master to start", LIMIT, || {
        masters(&control).len() == 2
    });
    std::fs::write(&go, "").unwrap();
    waiting.finish().expect_code(0);
    wait_until("host 1's master to close", LIMIT, || {
        masters(&control) == first
    });
    run(
        &sb,
        &fleet,
        &recipe(1, "persist: false", "h.run([\"false\"]);"),
    )
    .expect_code(1);
    wait_until("host 1's master to close after a failure", LIMIT, || {
        masters(&control) == first
    });
    assert!(alive(first[0]), "host 0's master is still there");

    // A master that died leaves its socket behind; the next run starts a new one.
    crate::support::sh(sb.path(), &["kill", "-KILL", &first[0].to_string()]);
    wait_until("the master to die", LIMIT, || !alive(first[0]));
    let r = run(
        &sb,
        &fleet,
        &recipe(0, "", "print(\"ran=\" + h.run([\"echo\", \"ok\"]).stdout);"),
    )
    .expect_code(0);
    assert_eq!(value_of(&r.stdout, "ran"), "ok");
    let second = masters(&control);
    assert_eq!(second.len(), 1, "one new master: {second:?}");
    assert_ne!(second, first);
}

#[test]
fn runs_that_start_together_share_one_master() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let control = fleet.control_dir();
    let _close = CloseMasters(control.clone());
    let runs: Vec<KillOnDrop> = (0..3)
        .map(|i| {
            let name = format!("recipe{i}.rhai");
            sb.write(
                &name,
                &format!(
                    "let h = ssh::connect(\"{}\", {});\nprint(\"ran=\" + h.run([\"echo\", \"{i}\"]).stdout);\n",
                    fleet.dest(0),
                    fleet.options()
                ),
            );
            let mut cmd = sb.galley();
            cmd.env("GALLEY_CONTROL_DIR", &control)
                .args(["run", &name, "--output", "plain"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            KillOnDrop(cmd.spawn().expect("start galley"))
        })
        .collect();
    for (i, mut child) in runs.into_iter().enumerate() {
        let r = child.finish().expect_code(0);
        assert_eq!(value_of(&r.stdout, "ran"), i.to_string());
    }
    let left = masters(&control);
    assert_eq!(left.len(), 1, "the runs share one master: {left:?}");
}

#[test]
fn persist_false_keeps_the_master_while_another_host_of_the_run_uses_it() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let control = fleet.control_dir();
    let _close = CloseMasters(control.clone());
    // `check` connects to the same destination with the same options, so both hosts share one
    // master; `check`'s host goes out of scope while `h` still needs the connection.
    let recipe = format!(
        r#"
fn check(dest, o) {{
    let inner = ssh::connect(dest, o);
    inner.run(["true"]);
}}
let h = ssh::connect("{dest}", {o});
h.run(["true"]);
check("{dest}", {o});
print("after=" + h.run(["echo", "still"]).stdout);
"#,
        dest = fleet.dest(0),
        o = opts(&fleet, "persist: false"),
    );
    let r = run(&sb, &fleet, &recipe).expect_code(0);
    assert_eq!(value_of(&r.stdout, "after"), "still");
    wait_until("the master to close at the end of the run", LIMIT, || {
        masters(&control).is_empty()
    });
}

#[test]
fn a_persist_false_run_does_not_break_another_run_using_the_same_master() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let control = fleet.control_dir();
    let _close = CloseMasters(control.clone());
    let started = sb.path().join("started");
    let go = sb.path().join("go");
    // Run A (default persist) launches the master and waits in a remote command until `go`.
    let wait = format!(
        "touch {}; {}; echo done",
        started.display(),
        wait_for(&go, sb.path())
    );
    sb.write(
        "a.rhai",
        &format!(
            "let h = ssh::connect(\"{}\", {});\nprint(\"a=\" + h.run([\"sh\", \"-c\", {}]).stdout);\n",
            fleet.dest(0),
            fleet.options(),
            lit(&wait)
        ),
    );
    let mut a = sb.galley();
    a.env("GALLEY_CONTROL_DIR", &control)
        .args(["run", "a.rhai", "--output", "plain"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut a = KillOnDrop(a.spawn().expect("start run A"));
    wait_until("run A's remote command to start", LIMIT, || {
        started.exists()
    });
    // Run B, with the same destination and options but persist: false, resumes A's master.
    let b = run(
        &sb,
        &fleet,
        &format!(
            "let h = ssh::connect(\"{}\", {});\nh.run([\"true\"]);\n",
            fleet.dest(0),
            opts(&fleet, "persist: false")
        ),
    );
    std::fs::write(&go, "").unwrap();
    let a = a.finish();
    b.expect_code(0);
    let a = a.expect_code(0);
    assert_eq!(value_of(&a.stdout, "a"), "done");
}

/// A recipe that connects `h` to host 0 of `fleet`, then runs `body`.
fn on_host0(fleet: &Fleet, body: &str) -> String {
    format!(
        "let h = ssh::connect(\"{dest}\", {opts});\n{body}\n",
        dest = fleet.dest(0),
        opts = fleet.options(),
    )
}

#[test]
fn a_missing_remote_program_is_not_started() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let r = run(
        &sb,
        &fleet,
        &on_host0(&fleet, "h.run([\"no-such-program-xyz\", \"x\"]);"),
    )
    .expect_code(1);
    assert!(
        says(&r.stderr, "galley::command_not_started"),
        "{}",
        r.stderr
    );
    assert!(
        says(&r.stderr, "`no-such-program-xyz` not found"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_remote_exit_code_of_127_is_kept() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let body = "for n in [3, 126, 127] {\n\
                let r = h.run([\"sh\", \"-c\", \"exit \" + n], #{ check: false });\n\
                print(`code${n}=${r.code}`);\n}";
    let r = run(&sb, &fleet, &on_host0(&fleet, body)).expect_code(0);
    assert_eq!(value_of(&r.stdout, "code3"), "3");
    assert_eq!(value_of(&r.stdout, "code126"), "126");
    assert_eq!(
        value_of(&r.stdout, "code127"),
        "127",
        "a program that ran and exited with 127 is not \"killed by a signal\""
    );
}

#[test]
fn a_missing_remote_dir_is_not_started() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(1);
    let _close = CloseMasters(fleet.control_dir());
    let root = fleet.hosts[0].root.display().to_string();
    let body = format!("h.run([\"true\"], #{{ dir: \"{root}/no/such dir\" }});");
    let r = run(&sb, &fleet, &on_host0(&fleet, &body)).expect_code(1);
    assert!(
        says(&r.stderr, "galley::command_not_started"),
        "{}",
        r.stderr
    );
    assert!(
        says(
            &r.stderr,
            &format!("working directory {root}/no/such dir does not exist")
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn a_jump_host_reaches_the_target_through_it() {
    let sb = Sandbox::new();
    let mut fleet = Fleet::start(3);
    let recipe = format!(
        r#"
let h = ssh::connect("{dest}", #{{ identity: "{key}", known_hosts_file: "{kh}", jump: "{jump}" }});
print("via=" + h.run(["sh", "-c", "echo $SSH_CLIENT"]).stdout);
"#,
        dest = fleet.dest(1),
        key = fleet.key.display(),
        kh = fleet.known_hosts.display(),
        jump = fleet.dest(0),
    );
    let r = run(&sb, &fleet, &recipe).expect_code(0);
    assert!(
        r.stdout.contains(&format!("[{}] $ run", fleet.dest(1))),
        "{}",
        r.stdout
    );
    // The same connection through a jump host that is down fails: the jump is really taken.
    fleet.hosts[2].stop();
    let through_dead = recipe.replace(&fleet.dest(0), &fleet.dest(2));
    let r = run(&sb, &fleet, &through_dead).expect_code(1);
    assert!(r.stderr.contains("galley::ssh_unreachable"), "{}", r.stderr);
}

#[test]
fn disconnect_closes_the_connections_runs_kept() {
    let sb = Sandbox::new();
    let fleet = Fleet::start(2);
    let recipe = format!(
        "ssh::hosts([{}, {}], {});",
        lit(&fleet.dest(0)),
        lit(&fleet.dest(1)),
        opts(&fleet, "")
    );
    run(&sb, &fleet, &recipe).expect_code(0);
    let control = fleet.control_dir();
    assert_eq!(masters(&control).len(), 2, "both connections are kept");
    let out = sb
        .galley()
        .env("GALLEY_CONTROL_DIR", &control)
        .arg("disconnect")
        .output()
        .expect("galley runs");
    let r = Run::from(out).expect_code(0);
    assert!(
        r.stdout.contains("closed 2 ssh connections"),
        "{}",
        r.stdout
    );
    wait_until("the masters to exit", Duration::from_secs(10), || {
        masters(&control).is_empty()
    });
}
