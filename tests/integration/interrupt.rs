//! Ctrl-C stops galley and the command it runs; an endless loop is stopped by the operations limit.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{alive, wait_until, Sandbox};
use crate::support::{all_pids, stat_ids, Reaper};

const LIMIT: Duration = Duration::from_secs(30);

/// A `galley run` spawned with its stdout collected line by line; killed when dropped.
struct Spawned {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Spawned {
    fn new(sb: &Sandbox, recipe: &str) -> Self {
        sb.write("recipe.rhai", recipe);
        let mut child = sb
            .galley()
            .args(["run", "recipe.rhai", "--output", "plain"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn galley");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                l.lock().unwrap().push(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let e = stderr.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut err_pipe, &mut text);
            *e.lock().unwrap() = text;
        });
        Spawned {
            child,
            lines,
            stderr,
        }
    }

    fn pid(&self) -> i64 {
        i64::from(self.child.id())
    }

    fn wait_for_line(&self, line: &str) {
        wait_until(&format!("galley to print {line:?}"), LIMIT, || {
            self.lines.lock().unwrap().iter().any(|l| l == line)
        });
    }

    /// Sends a signal with the `kill` command.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for galley to exit and returns its exit code.
    fn exit_code(&mut self) -> i32 {
        let mut status = None;
        wait_until("galley to exit", LIMIT, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status
            .unwrap()
            .code()
            .unwrap_or_else(|| panic!("galley was killed by a signal: {status:?}"))
    }

    /// Everything galley printed, for messages.
    fn output(&self) -> String {
        let stdout = self.lines.lock().unwrap().join("\n");
        // The stderr reader finishes once galley has exited and closed the pipe.
        wait_until("galley's stderr", LIMIT, || {
            Arc::strong_count(&self.stderr) == 1
        });
        format!(
            "--- stdout ---\n{stdout}\n--- stderr ---\n{}",
            self.stderr.lock().unwrap()
        )
    }

    /// Whether galley printed this exact line on stdout.
    fn printed(&self, line: &str) -> bool {
        self.lines.lock().unwrap().iter().any(|l| l == line)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The live processes in process group `pgid`.
fn group(pgid: i64) -> Vec<i64> {
    all_pids()
        .into_iter()
        .filter(|pid| stat_ids(*pid).is_some_and(|(_, g, _)| g == pgid))
        .filter(|pid| alive(*pid))
        .collect()
}

fn comm(pid: i64) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn sigint_exits_130_and_kills_the_running_command() {
    let sb = Sandbox::new();
    let reaper = Reaper::new(&sb);
    let mut galley = Spawned::new(
        &sb,
        r#"local().run(["sh", "-c", "echo $$ > sh.pid; echo started; sleep 300"]); log("went on");"#,
    );
    reaper.track(galley.pid());
    galley.wait_for_line("[local] started");
    let sh_pid: i64 = std::fs::read_to_string(sb.join("sh.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    reaper.track(sh_pid);
    // The command runs in its own process group, led by the shell; find the sleep in it.
    wait_until("the sleep to start", LIMIT, || {
        group(sh_pid).iter().any(|p| comm(*p) == "sleep")
    });
    let members = group(sh_pid);
    let sleep = *members.iter().find(|p| comm(**p) == "sleep").unwrap();
    assert_eq!(stat_ids(sleep).unwrap().1, sh_pid);

    galley.signal("INT");
    let code = galley.exit_code();
    let output = galley.output();
    assert_eq!(code, 130, "{output}");
    assert!(output.contains("galley::interrupted"), "{output}");
    assert!(!galley.printed("went on"), "{output}");
    // Reported as interrupted, never as a failure.
    assert!(output.contains("interrupted after "), "{output}");
    assert!(!output.contains("failed after"), "{output}");
    for pid in members {
        wait_until(&format!("pid {pid} ({}) to die", comm(pid)), LIMIT, || {
            !alive(pid)
        });
    }
    assert!(!alive(sleep), "the sleep survived the interrupt");
}

#[test]
fn sigint_interrupts_a_recipe_sleep() {
    let sb = Sandbox::new();
    let _reaper = Reaper::new(&sb);
    let mut galley = Spawned::new(&sb, r#"log("waiting"); sleep("5m"); log("went on");"#);
    galley.wait_for_line("waiting");
    galley.signal("INT");
    let code = galley.exit_code();
    let output = galley.output();
    assert_eq!(code, 130, "{output}");
    assert!(!galley.printed("went on"), "{output}");
}

#[test]
fn sigint_interrupts_a_health_check_that_would_retry_for_long() {
    let sb = Sandbox::new();
    let _reaper = Reaper::new(&sb);
    let port = crate::support::free_port();
    let mut galley = Spawned::new(
        &sb,
        &format!(
            r#"log("checking"); health::http("http://127.0.0.1:{port}/", #{{ retries: 100000, interval: "1s" }}); log("went on");"#
        ),
    );
    galley.wait_for_line("checking");
    galley.signal("INT");
    let code = galley.exit_code();
    let output = galley.output();
    assert_eq!(code, 130, "{output}");
    assert!(!galley.printed("went on"), "{output}");
}

#[test]
fn an_endless_loop_is_stopped_by_the_operations_limit() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe(
            "log(\"looping\");\nloop {}\n",
            &["--max-operations", "100000"],
        )
        .expect_code(1);
    assert!(run.stdout.contains("looping"));
    assert!(
        run.stderr.contains("galley::operations_limit"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("more than 100000 operations"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("recipe.rhai:2"),
        "the report points at the loop: {}",
        run.stderr
    );

    let run = sb
        .run_recipe(
            "let n = 0;\nwhile true { n += 1; }\n",
            &["--max-operations", "50000"],
        )
        .expect_code(1);
    assert!(
        run.stderr.contains("galley::operations_limit"),
        "{}",
        run.stderr
    );
}
