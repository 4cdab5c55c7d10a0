//! Shared fixtures for the integration tests: the real `galley` binary in a temp dir, real git
//! origins, free ports, and waiting for conditions (never sleeping and hoping).
#![allow(dead_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod docker;
pub mod nginx;
pub mod sshd;
pub mod swarm;

/// A temporary working directory in which recipes are written and `galley` is run.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

/// What a `galley` run printed and returned.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with everything printed unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit code {code}, got {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::Builder::new()
                .prefix("galley-test-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `path` inside the sandbox, as a string.
    pub fn join(&self, path: &str) -> String {
        self.path().join(path).to_string_lossy().into_owned()
    }

    /// Writes a file (creating folders) and returns its path.
    pub fn write(&self, path: &str, text: &str) -> PathBuf {
        let file = self.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, text).unwrap();
        file
    }

    /// A `galley` command running in the sandbox, with plain output and no color.
    pub fn galley(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_galley"));
        cmd.current_dir(self.path())
            .env("NO_COLOR", "1")
            .env_remove("GALLEY_PATH")
            // Tests that want GitHub Actions or webhooks set these themselves.
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_WORKSPACE")
            .env_remove("GALLEY_NOTIFY")
            // Libraries are cached in the sandbox, and CI=true (which implies --locked) is only
            // ever set by the tests that are about it.
            .env("GALLEY_CACHE", self.path().join(".cache/galley"))
            .env_remove("CI")
            .stdin(Stdio::null());
        cmd
    }

    /// `galley ARGS...` in the sandbox, to be given what it needs and then run:
    /// `sb.invoke(["run", "recipe.rhai"]).env("TOKEN", "x").state("state").run()`.
    pub fn invoke<I, S>(&self, args: I) -> Invocation
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.galley();
        cmd.args(args);
        Invocation {
            cmd,
            root: self.path().to_path_buf(),
        }
    }

    /// Runs `galley ARGS...` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        self.invoke(args).run()
    }

    /// Writes `recipe.rhai` with `text` and runs `galley run recipe.rhai --output plain ARGS...`.
    pub fn run_recipe(&self, text: &str, args: &[&str]) -> Run {
        self.write("recipe.rhai", text);
        let mut all = vec!["run", "recipe.rhai", "--output", "plain"];
        all.extend_from_slice(args);
        self.run(&all)
    }
}

/// A `galley` command line being put together (`Sandbox::invoke`); `run` runs it to completion.
pub struct Invocation {
    cmd: Command,
    root: PathBuf,
}

impl Invocation {
    /// More arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// An environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Without this environment variable.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Galley's state folder (journal, locks) at `dir` inside the sandbox.
    pub fn state(self, dir: &str) -> Self {
        let path = self.root.join(dir);
        self.env("GALLEY_STATE_DIR", path)
    }

    /// Runs in the folder `dir`: inside the sandbox when relative.
    pub fn dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(self.root.join(dir));
        self
    }

    /// The command, not yet started (for tests that spawn it and signal it).
    pub fn command(self) -> Command {
        self.cmd
    }

    /// Runs galley to completion.
    pub fn run(mut self) -> Run {
        Run::from(self.cmd.output().expect("run galley"))
    }
}

/// Runs a command and panics with its output if it fails.
pub fn sh(dir: &Path, argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A bare git repository (the "origin") plus a working clone used to push commits to it.
pub struct GitOrigin {
    pub bare: PathBuf,
    pub work: PathBuf,
}

impl GitOrigin {
    /// Creates `origin.git` and `seed/` under `root`, with `files` committed on `branch` and pushed.
    pub fn new(root: &Path, branch: &str, files: &[(&str, &str)]) -> Self {
        let bare = root.join("origin.git");
        let work = root.join("seed");
        sh(
            root,
            &[
                "git",
                "init",
                "-q",
                "--bare",
                "-b",
                branch,
                bare.to_str().unwrap(),
            ],
        );
        sh(
            root,
            &["git", "init", "-q", "-b", branch, work.to_str().unwrap()],
        );
        sh(
            &work,
            &["git", "remote", "add", "origin", bare.to_str().unwrap()],
        );
        let origin = GitOrigin { bare, work };
        origin.commit(files, "first commit");
        sh(&origin.work, &["git", "push", "-q", "-u", "origin", branch]);
        origin
    }

    /// The URL to clone from.
    pub fn url(&self) -> String {
        self.bare.to_string_lossy().into_owned()
    }

    /// Writes `files`, commits them and returns the new commit's sha (not pushed).
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, text) in files {
            let file = self.work.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        sh(&self.work, &["git", "add", "-A"]);
        sh(&self.work, &["git", "commit", "-q", "-m", message]);
        sh(&self.work, &["git", "rev-parse", "HEAD"])
    }

    /// Commits `files` and pushes the current branch; returns the sha.
    pub fn push(&self, files: &[(&str, &str)], message: &str) -> String {
        let sha = self.commit(files, message);
        sh(&self.work, &["git", "push", "-q"]);
        sha
    }
}

/// A TCP port that is free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `condition` every 20 ms until it holds; panics with `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process with this pid is alive (and not a zombie).
pub fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit(')')
                .next()
                .and_then(|r| r.trim_start().chars().next()),
            Some('Z' | 'X') | None
        ),
        Err(_) => false,
    }
}

/// A plain HTTP GET against 127.0.0.1:port; the body, or None if nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// Kills a process group if it is still there (cleanup after a test).
pub fn kill_group(pid: i64) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status();
}

/// Kills, when dropped, every process the test started: the pids it was told about (and their
/// process groups) and every process whose working directory is inside the sandbox. Declare it
/// after the sandbox so that it runs before the sandbox is deleted.
pub struct Reaper {
    dir: PathBuf,
    pids: RefCell<Vec<i64>>,
}

impl Reaper {
    pub fn new(sb: &Sandbox) -> Self {
        Reaper {
            dir: sb.path().canonicalize().unwrap(),
            pids: RefCell::new(Vec::new()),
        }
    }

    /// Remembers a pid (and its process group) to kill at the end.
    pub fn track(&self, pid: i64) {
        self.pids.borrow_mut().push(pid);
    }

    /// Live processes whose working directory is inside the sandbox.
    pub fn in_sandbox(&self) -> Vec<i64> {
        all_pids()
            .into_iter()
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(&self.dir))
            })
            .filter(|pid| alive(*pid))
            .collect()
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let mut pids = self.pids.borrow().clone();
        pids.extend(self.in_sandbox());
        for pid in pids.into_iter().filter(|pid| alive(*pid)) {
            if stat_ids(pid).is_some_and(|(_, pgid, _)| pgid == pid) {
                kill_group(pid);
            }
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Every pid in /proc.
pub fn all_pids() -> Vec<i64> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// (ppid, pgid, sid) of a process, from /proc/PID/stat.
pub fn stat_ids(pid: i64) -> Option<(i64, i64, i64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // state ppid pgrp session ...
    Some((
        fields[1].parse().ok()?,
        fields[2].parse().ok()?,
        fields[3].parse().ok()?,
    ))
}

/// The environment of a process as `KEY=value` strings (empty if unreadable).
pub fn environ(pid: i64) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .filter(|v| !v.is_empty())
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a pid from a file.
pub fn read_pid(path: impl AsRef<Path>) -> i64 {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{} holds {text:?}, not a pid", path.display()))
}

/// The value after `key=` on a line of galley's output.
pub fn value_of(stdout: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no `{key}=` line in:\n{stdout}"))
        .to_string()
}

/// A report with its wrapped lines joined, so that a message can be matched whole.
pub fn flat(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| {
            let l = l.trim_start();
            l.strip_prefix("| ")
                .or_else(|| l.strip_prefix('|'))
                .unwrap_or(l)
        })
        .collect();
    lines.join(" ")
}

/// Every record of the deploy journal in the state folder `state`, oldest first; panics on a
/// line that is not JSON (a journal line is always written whole).
pub fn journal_in(state: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(state.join("journal.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("journal line is not JSON ({e}): {l:?}"))
        })
        .collect()
}

/// A Rhai string literal holding exactly `text`, for pasting values into a recipe.
pub fn lit(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
