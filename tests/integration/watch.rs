//! `galley watch`: real files in temp dirs, the real binary as a child, its output read from a
//! file outside the watched folder; git mode against a real bare repository.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    alive, all_pids, read_pid, sh, stat_ids, wait_until, GitOrigin, Reaper, Sandbox,
};

const LIMIT: Duration = Duration::from_secs(30);

/// A `galley watch` running in a folder of the sandbox, its stdout and stderr going to one file
/// in the sandbox's root (outside the watched folder). Stopped with SIGINT (SIGKILL if that does
/// not work) when dropped; prints what it wrote if the test failed.
pub(crate) struct Watcher {
    child: Child,
    out: PathBuf,
}

impl Watcher {
    /// `galley watch ARGS... --output plain` in `sb/cwd`, writing to `sb/out`, with its state in
    /// `sb/state`.
    pub(crate) fn start(
        sb: &Sandbox,
        reaper: &Reaper,
        cwd: &str,
        out: &str,
        args: &[&str],
    ) -> Self {
        Watcher::start_as(sb, reaper, cwd, out, args, "plain")
    }

    /// `galley watch ARGS... --output OUTPUT`, as `start`.
    fn start_as(
        sb: &Sandbox,
        reaper: &Reaper,
        cwd: &str,
        out: &str,
        args: &[&str],
        output: &str,
    ) -> Self {
        let out = sb.path().join(out);
        let file = std::fs::File::create(&out).expect("output file");
        let child = sb
            .galley()
            .current_dir(sb.path().join(cwd))
            .env("GALLEY_STATE_DIR", sb.path().join("state"))
            .arg("watch")
            .args(args)
            .args(["--output", output])
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn galley watch");
        reaper.track(i64::from(child.id()));
        Watcher { child, out }
    }

    /// Everything it printed so far (stdout and stderr, interleaved as written).
    fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits until the output satisfies `condition`; returns the output.
    fn wait(&self, what: &str, condition: impl Fn(&str) -> bool) -> String {
        wait_until(what, LIMIT, || condition(&self.text()));
        self.text()
    }

    /// Waits until `n` runs have ended; returns the output.
    pub(crate) fn wait_runs(&self, n: usize) -> String {
        self.wait(&format!("{n} runs to end"), |t| runs(t).len() >= n)
    }

    /// Waits until a run has ended after the first line that contains `marker`.
    pub(crate) fn wait_run_after(&self, marker: &str) -> String {
        self.wait(&format!("a run to end after {marker:?}"), |t| {
            t.find(marker).is_some_and(|i| !runs(&t[i..]).is_empty())
        })
    }

    /// Whether the watcher is still running.
    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
    }

    /// Waits up to `limit` for the watcher to exit.
    fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ctrl-C: the watcher must exit with 130.
    fn ctrl_c(&mut self) {
        self.signal("INT");
        let status = self.exited_within(LIMIT);
        assert!(status.is_some(), "the watcher did not stop on SIGINT");
        assert_eq!(status.unwrap().code(), Some(130), "exit code after SIGINT");
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- galley watch output ({}) ---\n{}",
                self.out.display(),
                self.text()
            );
        }
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        self.signal("INT");
        if self.exited_within(Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `[watch] last run: ...` lines.
fn runs(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("[watch] last run:"))
        .collect()
}

/// The `[watch] changed: ...` lines.
fn changed(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("[watch] changed:"))
        .collect()
}

/// What was printed after the `n`th run ended.
fn after_run(text: &str, n: usize) -> &str {
    let mut rest = text;
    for _ in 0..n {
        let i = rest
            .find("[watch] last run:")
            .unwrap_or_else(|| panic!("fewer than {n} runs in:\n{text}"));
        rest = &rest[i..];
        rest = rest.find('\n').map_or("", |j| &rest[j + 1..]);
    }
    rest
}

/// How many lines are exactly `line`.
fn count(text: &str, line: &str) -> usize {
    text.lines().filter(|l| *l == line).count()
}

/// The sandbox's path as galley sees it (its working directory, symlinks resolved).
fn root(sb: &Sandbox) -> PathBuf {
    sb.path().canonicalize().unwrap()
}

fn path_of(sb: &Sandbox, path: &str) -> String {
    root(sb).join(path).to_string_lossy().into_owned()
}

/// Replaces a file in one step: written next to the sandbox's root (outside every watched
/// folder), then renamed over `path`.
fn replace(sb: &Sandbox, path: &str, text: &str) {
    let tmp = sb.path().join(".replace.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, sb.path().join(path)).unwrap();
}

/// Asserts that exactly one run followed run `n` and that it was triggered by `file` alone.
fn assert_one_run_for(w: &Watcher, n: usize, file: &str) {
    let text = w.wait_run_after(&format!("[watch] changed: {file}"));
    assert_eq!(
        changed(after_run(&text, n)),
        vec![format!("[watch] changed: {file}")],
        "after run {n}, only {file} should have triggered a run"
    );
    assert_eq!(runs(&text).len(), n + 1, "exactly one run after run {n}");
}

/// The live processes in process group `pgid`.
fn group(pgid: i64) -> Vec<i64> {
    all_pids()
        .into_iter()
        .filter(|pid| stat_ids(*pid).is_some_and(|(_, g, _)| g == pgid))
        .filter(|pid| alive(*pid))
        .collect()
}

/// Waits for a file to hold a pid and returns it.
fn wait_pid(file: &Path, what: &str) -> i64 {
    let mut pid = 0;
    wait_until(what, LIMIT, || {
        pid = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        pid > 0
    });
    pid
}

const READS_DATA: &str = r#"let h = local();
log("content=" + h.read("data.txt"));
"#;

#[test]
fn a_write_and_an_editor_save_trigger_runs_that_see_the_new_content() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write("proj/recipe.rhai", READS_DATA);
    sb.write("proj/data.txt", "one");
    let w = Watcher::start(&sb, &reaper, "proj", "out.txt", &["recipe.rhai"]);
    let text = w.wait_runs(1);
    assert!(text.contains("content=one"), "first run at start");
    assert!(
        runs(&text)[0].contains("last run: ok"),
        "{}",
        runs(&text)[0]
    );
    assert!(
        runs(&text)[0].contains(&format!("watching {}", path_of(&sb, "proj"))),
        "{}",
        runs(&text)[0]
    );
    assert!(runs(&text)[0].contains("waiting for changes"));

    std::fs::write(sb.path().join("proj/data.txt"), "two").unwrap();
    let text = w.wait("a run that reads `two`", |t| t.contains("content=two"));
    assert!(
        changed(after_run(&text, 1))
            .first()
            .is_some_and(|l| l.contains(&path_of(&sb, "proj/data.txt"))),
        "the change names data.txt"
    );
    let text = w.wait_run_after("content=two");
    let done = runs(&text).len();

    // An editor's save: write a temp file next to it, then rename it over the file.
    std::fs::write(sb.path().join("proj/.data.txt.swp"), "three").unwrap();
    std::fs::rename(
        sb.path().join("proj/.data.txt.swp"),
        sb.path().join("proj/data.txt"),
    )
    .unwrap();
    let text = w.wait("a run that reads `three`", |t| t.contains("content=three"));
    assert!(
        changed(after_run(&text, done))
            .iter()
            .any(|l| l.contains(&path_of(&sb, "proj/data.txt"))),
        "the rename names data.txt"
    );
    let text = w.wait_run_after("content=three");
    assert!(
        runs(&text).last().unwrap().contains("last run: ok"),
        "{text}"
    );
}

/// The events of JSON lines; panics on a line that is not a JSON object of schema version 1.
fn json_events(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let event: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            assert_eq!(event["v"], 1, "{l}");
            assert!(event["event"].is_string(), "{l}");
            event
        })
        .collect()
}

/// The messages of the watcher's own events.
fn watch_messages(text: &str) -> Vec<String> {
    json_events(text)
        .iter()
        .filter(|e| e["event"] == "watch")
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn with_output_json_every_line_is_an_event_and_the_watchers_own_lines_too() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write("proj/recipe.rhai", READS_DATA);
    sb.write("proj/data.txt", "one");
    let w = Watcher::start_as(&sb, &reaper, "proj", "out.jsonl", &["recipe.rhai"], "json");
    let last_runs = |t: &str| {
        watch_messages(t)
            .into_iter()
            .filter(|m| m.starts_with("last run: "))
            .count()
    };
    let text = w.wait("the first run's `watch` event", |t| last_runs(t) >= 1);
    let events = json_events(&text);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "log" && e["message"] == "content=one"),
        "{text}"
    );
    let messages = watch_messages(&text);
    assert!(
        messages[0].starts_with("last run: ok in ")
            && messages[0].contains(&format!("watching {}", path_of(&sb, "proj"))),
        "{messages:?}"
    );

    std::fs::write(sb.path().join("proj/data.txt"), "two").unwrap();
    let text = w.wait("the second run's `watch` event", |t| last_runs(t) >= 2);
    let messages = watch_messages(&text);
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("changed: ") && m.contains(&path_of(&sb, "proj/data.txt"))),
        "{messages:?}"
    );
    assert!(!text.contains("[watch]"), "no plain line:\n{text}");
}

#[test]
fn the_watchers_own_lines_mask_the_secrets() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let token = "tok-7e3d91c4b2";
    sb.write("secrets.env", &format!("GIT_TOKEN={token}\n"));
    sb.write("proj/deploy.rhai", "log(\"deploy\");\n");
    // Nothing listens on port 9: every poll fails, and git's error names the remote.
    let remote = format!("https://deploy:{token}@127.0.0.1:9/app.git");
    let w = Watcher::start(
        &sb,
        &reaper,
        "proj",
        "out.txt",
        &[
            "deploy.rhai",
            "--git",
            &remote,
            "--interval",
            "1s",
            "--secrets",
            &path_of(&sb, "secrets.env"),
        ],
    );
    let text = w.wait("a failed poll", |t| {
        t.lines().any(|l| l.starts_with("warning: [watch]"))
    });
    assert!(
        text.contains("[watch] polling https://deploy:***@127.0.0.1:9/app.git every 1s"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("warning: [watch]") && l.contains("deploy:***@")),
        "{text}"
    );
    assert!(!text.contains(token), "{text}");
}

#[test]
fn ignored_files_do_not_trigger_runs() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write("proj/recipe.rhai", r#"log("ran");"#);
    sb.write("proj/.gitignore", "*.log\n");
    sb.write("proj/.galleyignore", "tmp/\n");
    sb.write("proj/.ignore", "*.cache\n");
    sb.write("proj/tmp/.keep", "");
    sb.write("proj/.git/HEAD", "ref: refs/heads/main\n");
    let w = Watcher::start(
        &sb,
        &reaper,
        "proj",
        "out.txt",
        &["recipe.rhai", "--ignore", "**/*.bak"],
    );
    w.wait_runs(1);

    sb.write("proj/app.log", "gitignored\n");
    sb.write("proj/tmp/scratch.txt", "galleyignored\n");
    sb.write("proj/data.cache", "ignored by .ignore\n");
    sb.write("proj/notes.bak", "--ignore'd\n");
    sb.write("proj/.git/index", "never counts\n");
    sb.write("proj/.git/refs/heads/main", "0000\n");
    // The positive change: if any of the above counted, it would be named before or with it.
    sb.write("proj/trigger.txt", "go\n");
    assert_one_run_for(&w, 1, &path_of(&sb, "proj/trigger.txt"));
}

#[test]
fn a_burst_of_writes_gives_one_run_naming_them() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write("proj/recipe.rhai", r#"log("ran");"#);
    let w = Watcher::start(
        &sb,
        &reaper,
        "proj",
        "out.txt",
        &["recipe.rhai", "--debounce", "500ms"],
    );
    w.wait_runs(1);
    let names = ["a.txt", "b.txt", "c.txt", "d.txt"];
    for name in names {
        std::fs::write(sb.path().join("proj").join(name), name).unwrap();
    }
    let text = w.wait_runs(2);
    let lines = changed(after_run(&text, 1));
    assert_eq!(lines.len(), 1, "one batch: {lines:?}");
    for name in names {
        assert!(
            lines[0].contains(&path_of(&sb, &format!("proj/{name}"))),
            "{name} is named in {:?}",
            lines[0]
        );
    }
    // Exactly one run: a later positive change is the only other trigger.
    sb.write("proj/z.txt", "z");
    assert_one_run_for(&w, 2, &path_of(&sb, "proj/z.txt"));
}

/// Writes 5 files 40 ms apart (160 ms in all) with a 400 ms debounce: every write comes well
/// within the debounce of the one before, so this is one burst and must make one run.
#[test]
fn a_burst_spread_within_the_debounce_gives_one_run() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write("proj/recipe.rhai", r#"log("ran");"#);
    let w = Watcher::start(
        &sb,
        &reaper,
        "proj",
        "out.txt",
        &["recipe.rhai", "--debounce", "400ms"],
    );
    w.wait_runs(1);
    let names = ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"];
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            // Shapes the burst (a tool writing files one after another); not a wait.
            std::thread::sleep(Duration::from_millis(40));
        }
        std::fs::write(sb.path().join("proj").join(name), name).unwrap();
    }
    let text = w.wait_run_after(&path_of(&sb, "proj/e.txt"));
    let lines = changed(after_run(&text, 1));
    assert_eq!(
        lines.len(),
        1,
        "a burst within --debounce should make one run, got {} batches: {lines:#?}",
        lines.len()
    );
    for name in names {
        assert!(lines[0].contains(&path_of(&sb, &format!("proj/{name}"))));
    }
}

const WAITS_FOREVER: &str = r#"let h = local();
log("run starting");
h.run("echo $$ > '" + params.pidfile + "'; i=0; while [ ! -f never.txt ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done");
log("run finished");
"#;

#[test]
fn restart_cancels_the_running_run_kills_its_command_and_starts_over() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write("proj/recipe.rhai", WAITS_FOREVER);
    let pidfile = sb.path().join("cmd.pid");
    let set = format!("pidfile={}", pidfile.display());
    let mut w = Watcher::start(
        &sb,
        &reaper,
        "proj",
        "out.txt",
        &["recipe.rhai", "--on-busy", "restart", "--set", &set],
    );
    let first = wait_pid(&pidfile, "the first run's command to start");
    assert!(alive(first));
    std::fs::remove_file(&pidfile).unwrap();

    sb.write("proj/change.txt", "x");
    let text = w.wait_runs(1);
    assert!(
        runs(&text)[0].contains("last run: cancelled"),
        "{}",
        runs(&text)[0]
    );
    assert!(
        text.contains("galley::interrupted"),
        "the run reports it was interrupted"
    );
    assert!(text.contains(&format!(
        "[watch] changed: {}",
        path_of(&sb, "proj/change.txt")
    )));
    assert_eq!(count(&text, "run finished"), 0);
    wait_until("the cancelled run's command to be gone", LIMIT, || {
        !alive(first)
    });
    assert_eq!(
        group(first),
        Vec::<i64>::new(),
        "nothing of its process group is left"
    );

    // And a new run starts (its command writes a new pid).
    let second = wait_pid(&pidfile, "the second run's command to start");
    assert_ne!(first, second);
    assert!(alive(second));
    assert_eq!(count(&w.text(), "run starting"), 2);

    // Ctrl-C stops the watcher and the run in progress with it.
    w.ctrl_c();
    assert!(!alive(second), "Ctrl-C killed the running command");
    assert_eq!(group(second), Vec::<i64>::new());
    assert!(runs(&w.text())[1].contains("last run: cancelled"));
}

const WAITS_FOR_GO: &str = r#"let h = local();
log("run starting");
h.run("i=0; while [ ! -f '" + params.gofile + "' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; test -f '" + params.gofile + "'");
log("run finished");
"#;

#[test]
fn queue_lets_the_run_finish_then_runs_once_more() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write("proj/recipe.rhai", WAITS_FOR_GO);
    let go = sb.path().join("go");
    let set = format!("gofile={}", go.display());
    let w = Watcher::start(
        &sb,
        &reaper,
        "proj",
        "out.txt",
        &["recipe.rhai", "--on-busy", "queue", "--set", &set],
    );
    w.wait("the first run to start", |t| t.contains("run starting"));

    let a = path_of(&sb, "proj/a.txt");
    let b = path_of(&sb, "proj/b.txt");
    sb.write("proj/a.txt", "a");
    w.wait("the change to be queued", |t| {
        t.contains(&format!("[watch] changed: {a}")) && t.contains("[watch] a run is in progress")
    });
    sb.write("proj/b.txt", "b");
    w.wait("the second change", |t| {
        t.contains(&format!("[watch] changed: {b}"))
    });
    assert!(runs(&w.text()).is_empty(), "the first run is still going");

    std::fs::write(&go, "").unwrap();
    let text = w.wait_runs(2);
    let ended = runs(&text);
    assert!(ended[0].contains("last run: ok"), "{}", ended[0]);
    assert!(ended[1].contains("last run: ok"), "{}", ended[1]);
    assert_eq!(count(&text, "run starting"), 2);
    assert_eq!(count(&text, "run finished"), 2);
    assert!(!text.contains("cancelled") && !text.contains("galley::interrupted"));

    // Both queued changes made one run: the next change is the only other trigger.
    sb.write("proj/c.txt", "c");
    assert_one_run_for(&w, 2, &path_of(&sb, "proj/c.txt"));
}

#[test]
fn a_syntax_error_is_reported_and_the_fix_runs_again() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write("proj/recipe.rhai", r#"log("version one");"#);
    let mut w = Watcher::start(&sb, &reaper, "proj", "out.txt", &["recipe.rhai"]);
    w.wait_runs(1);

    replace(&sb, "proj/recipe.rhai", "log(\"broken\";\nlet x = ;\n");
    w.wait("the syntax error", |t| t.contains("galley::syntax"));
    let text = w.wait_run_after("galley::syntax");
    assert!(
        runs(&text).last().unwrap().contains("did not start"),
        "{}",
        runs(&text).last().unwrap()
    );
    assert!(runs(&text).last().unwrap().contains("waiting for changes"));
    assert!(w.running(), "the watcher keeps running");

    replace(&sb, "proj/recipe.rhai", r#"log("version two");"#);
    let text = w.wait_run_after("version two");
    assert!(runs(&text).last().unwrap().contains("last run: ok"));
    assert!(w.running());
}

#[test]
fn a_folder_declared_with_watch_triggers_runs() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write(
        "proj/recipe.rhai",
        "watch([\"../elsewhere\"]);\nlog(\"config=\" + local().read(\"../elsewhere/config.txt\"));\n",
    );
    sb.write("elsewhere/config.txt", "one");
    let w = Watcher::start(&sb, &reaper, "proj", "out.txt", &["recipe.rhai"]);
    let text = w.wait_runs(1);
    assert!(
        runs(&text)[0].contains(&path_of(&sb, "elsewhere")),
        "the declared folder is watched after the first run: {}",
        runs(&text)[0]
    );

    std::fs::write(sb.path().join("elsewhere/config.txt"), "two").unwrap();
    let text = w.wait_run_after("config=two");
    assert_eq!(
        changed(after_run(&text, 1)),
        vec![format!(
            "[watch] changed: {}",
            path_of(&sb, "elsewhere/config.txt")
        )]
    );
    assert_eq!(runs(&text).len(), 2);
}

/// `watch([FILE])` declares one file (here by its absolute path): its neighbours in the same
/// folder are not dependencies and do not trigger runs.
#[test]
fn a_file_declared_with_watch_triggers_runs_and_its_neighbours_do_not() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write(
        "proj/recipe.rhai",
        "watch([params.env_file]);\nlog(\"ran\");\n",
    );
    sb.write("shared/app.env", "A=1\n");
    sb.write("shared/other.txt", "unrelated\n");
    let set = format!("env_file={}", path_of(&sb, "shared/app.env"));
    let w = Watcher::start(
        &sb,
        &reaper,
        "proj",
        "out.txt",
        &["recipe.rhai", "--set", &set],
    );
    w.wait_runs(1);

    sb.write("shared/other.txt", "still unrelated\n");
    sb.write("shared/app.env", "A=2\n");
    assert_one_run_for(&w, 1, &path_of(&sb, "shared/app.env"));
}

/// The same as `watch(["../elsewhere"])`, with the folder's absolute path.
#[test]
fn a_folder_declared_by_its_absolute_path_triggers_runs() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write("proj/recipe.rhai", "watch([params.dir]);\nlog(\"ran\");\n");
    sb.write("elsewhere/sub/config.txt", "one");
    let set = format!("dir={}", path_of(&sb, "elsewhere"));
    let w = Watcher::start(
        &sb,
        &reaper,
        "proj",
        "out.txt",
        &["recipe.rhai", "--set", &set],
    );
    let text = w.wait_runs(1);
    assert!(runs(&text)[0].contains(&path_of(&sb, "elsewhere")));
    sb.write("elsewhere/sub/config.txt", "two");
    assert_one_run_for(&w, 1, &path_of(&sb, "elsewhere/sub/config.txt"));
}

#[test]
fn an_imported_module_triggers_runs() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write(
        "proj/recipe.rhai",
        "import \"../lib/util\" as util;\nlog(\"value=\" + util::value());\n",
    );
    sb.write("lib/util.rhai", "fn value() { \"one\" }\n");
    let w = Watcher::start(&sb, &reaper, "proj", "out.txt", &["recipe.rhai"]);
    let text = w.wait_runs(1);
    assert!(text.contains("value=one"));
    assert!(
        runs(&text)[0].contains(&path_of(&sb, "lib")),
        "{}",
        runs(&text)[0]
    );

    replace(&sb, "lib/util.rhai", "fn value() { \"two\" }\n");
    let text = w.wait_run_after("value=two");
    assert_eq!(
        changed(after_run(&text, 1)),
        vec![format!(
            "[watch] changed: {}",
            path_of(&sb, "lib/util.rhai")
        )]
    );
    assert_eq!(runs(&text).len(), 2);
}

// ---- git mode ----

const DEPLOY: &str = r#"log("deploy branch=" + params.branch + " sha=" + params.sha);
log("changed is " + type_of(params.changed) + " of " + params.changed.len());
for c in params.changed { log("changed path=" + c); }
if params.changed.contains("backend/server/broken.py") { throw "broken commit"; }
"#;

/// Commits `files` on `branch` of the origin's working clone and pushes it; returns the sha.
fn push_to(origin: &GitOrigin, branch: &str, files: &[(&str, &str)], message: &str) -> String {
    sh(&origin.work, &["git", "checkout", "-q", branch]);
    let sha = origin.commit(files, message);
    sh(&origin.work, &["git", "push", "-q", "origin", branch]);
    sha
}

/// An origin with `main`, `release/x` and `release/y`.
fn release_origin(sb: &Sandbox) -> GitOrigin {
    std::fs::create_dir_all(sb.path().join("git")).unwrap();
    let origin = GitOrigin::new(
        &sb.path().join("git"),
        "main",
        &[("README.md", "hello\n"), ("backend/server/app.py", "v1\n")],
    );
    for branch in ["release/x", "release/y"] {
        sh(
            &origin.work,
            &["git", "checkout", "-q", "-b", branch, "main"],
        );
        sh(&origin.work, &["git", "push", "-q", "origin", branch]);
    }
    origin
}

/// Everything in the watcher's saved state files.
fn state(sb: &Sandbox) -> String {
    let mut text = String::new();
    if let Ok(dirs) = std::fs::read_dir(sb.path().join("state/watch")) {
        for dir in dirs.flatten() {
            text += &std::fs::read_to_string(dir.path().join("state.json")).unwrap_or_default();
        }
    }
    text
}

fn git_watcher(sb: &Sandbox, reaper: &Reaper, origin: &GitOrigin, out: &str) -> Watcher {
    Watcher::start(
        sb,
        reaper,
        "proj",
        out,
        &[
            "deploy.rhai",
            "--git",
            &origin.url(),
            "--branch",
            "release/*",
            "--paths",
            "backend/server/**",
            "--interval",
            "1s",
        ],
    )
}

/// The `[watch] deploy of BRANCH SHA12: RESULT ...` lines, as (branch, sha12, result).
fn deploys(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("[watch] deploy of "))
        .map(|l| {
            let mut words = l.split_whitespace();
            let branch = words.next().unwrap_or_default().to_string();
            let sha = words.next().unwrap_or_default().trim_end_matches(':');
            let result = words.next().unwrap_or_default().to_string();
            (branch, sha.to_string(), result)
        })
        .collect()
}

fn deploy(branch: &str, sha: &str, result: &str) -> (String, String, String) {
    (branch.into(), sha[..12].into(), result.into())
}

/// The `changed path=` lines logged by the deploy of `sha`.
fn changed_paths(text: &str, sha: &str) -> Vec<String> {
    let start = text
        .find(&format!("sha={sha}"))
        .unwrap_or_else(|| panic!("no deploy of {sha}"));
    let rest = &text[start..];
    let end = rest.find("[watch] deploy of").unwrap_or(rest.len());
    rest[..end]
        .lines()
        .filter_map(|l| l.strip_prefix("changed path="))
        .map(String::from)
        .collect()
}

#[test]
fn git_deploys_new_matching_commits_once_and_remembers_them_across_restarts() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write("proj/deploy.rhai", DEPLOY);
    let origin = release_origin(&sb);
    let mut w = git_watcher(&sb, &reaper, &origin, "out-1.txt");
    // The branches already there are the baseline: not deployed.
    wait_until("the first poll's baseline", LIMIT, || {
        let s = state(&sb);
        s.contains("release/x") && s.contains("release/y")
    });

    let s1 = push_to(
        &origin,
        "release/x",
        &[("backend/server/app.py", "v2\n")],
        "s1",
    );
    let text = w.wait("the deploy of s1", |t| {
        deploys(t).contains(&deploy("release/x", &s1, "ok"))
    });
    assert!(text.contains(&format!("deploy branch=release/x sha={s1}")));
    assert!(
        text.contains("changed is array of 1"),
        "params.changed is an array"
    );
    assert_eq!(changed_paths(&text, &s1), vec!["backend/server/app.py"]);

    // Another branch, and a push that touches only other paths: no deploy.
    let m = push_to(&origin, "main", &[("backend/server/app.py", "main\n")], "m");
    let r = push_to(&origin, "release/x", &[("README.md", "docs\n")], "r");
    wait_until("the README-only push to be seen", LIMIT, || {
        state(&sb).contains(&r)
    });
    let s2 = push_to(
        &origin,
        "release/x",
        &[("backend/server/b.py", "b\n")],
        "s2",
    );
    let text = w.wait("the deploy of s2", |t| {
        deploys(t).contains(&deploy("release/x", &s2, "ok"))
    });
    assert_eq!(
        deploys(&text),
        vec![
            deploy("release/x", &s1, "ok"),
            deploy("release/x", &s2, "ok")
        ],
        "only s1 and s2 were deployed"
    );
    assert_eq!(changed_paths(&text, &s2), vec!["backend/server/b.py"]);
    assert!(!text.contains(&m) && !text.contains(&r[..12]));
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("deploy branch="))
            .count(),
        2,
        "the recipe ran twice"
    );
    w.ctrl_c();

    // While it is stopped, release/y gets a matching commit; s2 (deployed) stays release/x's head.
    let y = push_to(&origin, "release/y", &[("backend/server/y.py", "y\n")], "y");
    let mut w = git_watcher(&sb, &reaper, &origin, "out-2.txt");
    w.wait("the deploy of y", |t| {
        deploys(t).contains(&deploy("release/y", &y, "ok"))
    });
    // release/x was looked at in the same poll (or before): a new commit on it is deployed next.
    let s3 = push_to(
        &origin,
        "release/x",
        &[("backend/server/c.py", "c\n")],
        "s3",
    );
    let text = w.wait("the deploy of s3", |t| {
        deploys(t).contains(&deploy("release/x", &s3, "ok"))
    });
    assert_eq!(
        deploys(&text),
        vec![
            deploy("release/y", &y, "ok"),
            deploy("release/x", &s3, "ok")
        ],
        "after the restart s2 is not deployed again"
    );
    assert_eq!(changed_paths(&text, &s3), vec!["backend/server/c.py"]);
    w.ctrl_c();
}

#[test]
fn git_does_not_retry_a_failed_deploy_until_a_newer_commit() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write("proj/deploy.rhai", DEPLOY);
    let origin = release_origin(&sb);
    let w = git_watcher(&sb, &reaper, &origin, "out.txt");
    wait_until("the first poll's baseline", LIMIT, || {
        let s = state(&sb);
        s.contains("release/x") && s.contains("release/y")
    });

    let bad = push_to(
        &origin,
        "release/x",
        &[("backend/server/broken.py", "x\n")],
        "bad",
    );
    w.wait("the failed deploy", |t| {
        deploys(t).contains(&deploy("release/x", &bad, "failed"))
    });
    // Later polls look at release/x before (or with) release/y: a retry would come first.
    let y = push_to(&origin, "release/y", &[("backend/server/y.py", "y\n")], "y");
    w.wait("the deploy of y", |t| {
        deploys(t).contains(&deploy("release/y", &y, "ok"))
    });
    let fix = push_to(
        &origin,
        "release/x",
        &[("backend/server/fixed.py", "ok\n")],
        "fix",
    );
    let text = w.wait("the deploy of the fix", |t| {
        deploys(t).contains(&deploy("release/x", &fix, "ok"))
    });
    assert_eq!(
        deploys(&text),
        vec![
            deploy("release/x", &bad, "failed"),
            deploy("release/y", &y, "ok"),
            deploy("release/x", &fix, "ok"),
        ],
        "the failed commit was deployed once"
    );
}

#[test]
fn a_recipe_deploying_inside_the_watched_folder_runs_once_per_edit_and_never_for_its_own_writes() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write("proj/src/version.txt", "v0");
    sb.write("proj/.gitignore", "*.bak\n");
    sb.write(
        "proj/deploy.rhai",
        r#"
let h = local();
let version = h.read("src/version.txt");
h.mkdir("deploy");
h.write("deploy/config.txt", version);
h.symlink("config.txt", "deploy/current");
let app = h.process("ticker", #{
    cmd: "while true; do echo tick; sleep 0.1; done",
    dir: "deploy", pidfile: "ticker.pid", log: "ticker.log",
});
deploy::run(#{ app: "ticker", host: h, sha: version }, || {
    app.stop();
    app.start();
});
log("deployed=" + version);
"#,
    );
    let out = sb.path().join("out.txt");
    let file = std::fs::File::create(&out).unwrap();
    let child = sb
        .galley()
        .current_dir(sb.path().join("proj"))
        // The journal and the locks inside the watched folder too.
        .env("GALLEY_STATE_DIR", sb.path().join("proj/.state"))
        .args(["watch", "deploy.rhai", "--output", "plain"])
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap();
    reaper.track(i64::from(child.id()));
    let w = Watcher { child, out };
    w.wait_runs(1);
    for i in 1..=5 {
        replace(&sb, "proj/src/version.txt", &format!("v{i}"));
        let text = w.wait(&format!("the run for edit {i}"), |t| {
            t.contains(&format!("deployed=v{i}")) && runs(t).len() > i
        });
        assert_eq!(runs(&text).len(), i + 1, "one run per edit:\n{text}");
    }
    let pid = read_pid(sb.path().join("proj/deploy/ticker.pid"));
    reaper.track(pid);
    // The app keeps writing its log inside the watched folder: let it write well past the
    // debounce, then no run may have followed.
    let log = sb.path().join("proj/deploy/ticker.log");
    let ticks = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let seen = ticks();
    wait_until("the app to log 10 more ticks", LIMIT, || {
        ticks() >= seen + 10
    });
    let text = w.text();
    assert_eq!(
        runs(&text).len(),
        6,
        "5 edits, 5 runs, none for the run's own writes:\n{text}"
    );
    assert_eq!(changed(&text).len(), 5, "{text}");
    assert!(
        changed(&text)
            .iter()
            .all(|l| l.ends_with("src/version.txt")),
        "{text}"
    );
}

#[test]
fn paths_outside_the_watched_folder_add_their_folder_or_are_refused() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    sb.write("proj/recipe.rhai", "log(\"ran\");\n");
    sb.write("shared/conf/app.yml", "one");
    let glob = format!("{}/**", path_of(&sb, "shared"));
    let w = Watcher::start(
        &sb,
        &reaper,
        "proj",
        "out.txt",
        &["recipe.rhai", "--paths", &glob],
    );
    let text = w.wait_runs(1);
    assert!(runs(&text)[0].contains(&path_of(&sb, "shared")), "{text}");
    sb.write("shared/conf/app.yml", "two");
    assert_one_run_for(&w, 1, &path_of(&sb, "shared/conf/app.yml"));
    drop(w);

    let missing = format!("{}/**", path_of(&sb, "nowhere"));
    let run = sb
        .invoke(["watch", "recipe.rhai", "--paths", &missing])
        .dir("proj")
        .run()
        .expect_code(2);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
}
