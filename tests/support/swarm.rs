//! Docker Swarm fixtures: a single-node swarm on this machine's Engine, shared by every test
//! process that needs one, the test app's images (busybox httpd with a HEALTHCHECK), and what a
//! test reads back from Swarm through the docker CLI (task ports, versions served).
//!
//! The Engine is one for the whole machine, and several test processes (other engineers', other
//! test binaries) may use its swarm at once. So: every process that uses the swarm holds a
//! shared `flock` on /tmp/galley-test-swarm.lock until it exits; the swarm is initialised under
//! the exclusive lock when the Engine is in none, and the lock file then says a test made it.
//! At exit, a process leaves the swarm only when the file says a test made it and it can take the
//! lock exclusively (no other process is using the swarm). A swarm that was there before any test
//! is never left.

use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::time::Duration;

use super::docker::{base_image, cli, docker, lines};
use super::http_get;

const LOCK_FILE: &str = "/tmp/galley-test-swarm.lock";
const MADE_BY_TESTS: &str = "initialised by galley tests";

const LOCK_SH: i32 = 1;
const LOCK_EX: i32 = 2;
const LOCK_NB: i32 = 4;

extern "C" {
    fn flock(fd: std::os::raw::c_int, operation: std::os::raw::c_int) -> std::os::raw::c_int;
    fn atexit(callback: extern "C" fn()) -> std::os::raw::c_int;
}

static LOCK: OnceLock<std::fs::File> = OnceLock::new();

fn lock(file: &std::fs::File, operation: i32) -> bool {
    // SAFETY: flock on a descriptor this process owns for its whole life.
    unsafe { flock(file.as_raw_fd(), operation) == 0 }
}

fn node_state() -> String {
    lines(&["info", "--format", "{{.Swarm.LocalNodeState}}"])
        .first()
        .cloned()
        .unwrap_or_default()
}

/// Makes sure the Engine is a swarm manager for the rest of this process (see the module doc).
pub fn ensure() {
    LOCK.get_or_init(|| {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(LOCK_FILE)
            .expect("open the swarm lock file");
        assert!(lock(&file, LOCK_EX), "lock {LOCK_FILE}");
        if node_state() != "active" {
            cli(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
            file.set_len(0).expect("truncate the swarm lock file");
            file.rewind().expect("rewind the swarm lock file");
            file.write_all(MADE_BY_TESTS.as_bytes())
                .expect("write the swarm lock file");
        }
        // Downgrade: other processes may use the swarm too from now on.
        assert!(lock(&file, LOCK_SH), "share {LOCK_FILE}");
        extern "C" fn at_exit() {
            leave_if_last();
        }
        // SAFETY: `atexit` only stores the pointer of a function that lives for the whole program.
        unsafe {
            atexit(at_exit);
        }
        file
    });
}

/// At exit: leaves the swarm when tests made it and no other process uses it.
fn leave_if_last() {
    let Some(file) = LOCK.get() else {
        return;
    };
    if !lock(file, LOCK_EX | LOCK_NB) {
        return;
    }
    let mut text = String::new();
    let mut reader = file;
    let _ = reader.rewind();
    let _ = reader.read_to_string(&mut text);
    if text.trim() == MADE_BY_TESTS {
        docker(&["swarm", "leave", "--force"]);
        let _ = file.set_len(0);
    }
}

/// The test app's images, built once per process: `version` serves
/// "hello from the galley demo app, version V, ..." on :8080 with busybox httpd, and a
/// HEALTHCHECK on /health (every 500ms, 3 retries). `broken` has no /health, so it never
/// becomes healthy; it says so on its output first.
pub struct Images {
    pub repo: String,
}

impl Images {
    /// `repo:version`.
    pub fn tag(&self, version: &str) -> String {
        format!("{}:{version}", self.repo)
    }
}

/// The images `v1`, `v2` and `broken` of this process (removed when it exits, with the rest).
pub fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let repo = super::docker::unique("swarmapp");
        let dir = tempfile::Builder::new()
            .prefix("galley-test-swarmapp-")
            .tempdir()
            .expect("tempdir for the app images");
        for version in ["v1", "v2", "broken"] {
            let health = if version == "broken" {
                ""
            } else {
                " && echo ok > /www/health"
            };
            let command = if version == "broken" {
                r#"CMD ["sh", "-c", "echo version broken starting without /health; exec httpd -f -v -p 8080 -h /www"]"#
            } else {
                r#"CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]"#
            };
            let dockerfile = format!(
                "FROM {base}\n\
                 RUN mkdir /www && echo 'hello from the galley demo app, version {version}, on swarm' > /www/index.html{health}\n\
                 HEALTHCHECK --interval=500ms --timeout=2s --retries=3 CMD wget -q -O /dev/null http://127.0.0.1:8080/health || exit 1\n\
                 {command}\n",
                base = base_image()
            );
            let file = dir.path().join(format!("Dockerfile.{version}"));
            std::fs::write(&file, dockerfile).expect("write the app Dockerfile");
            cli(&[
                "build",
                "-q",
                "-f",
                file.to_str().unwrap(),
                "-t",
                &format!("{repo}:{version}"),
                dir.path().to_str().unwrap(),
            ]);
        }
        Images { repo }
    })
}

/// The host ports of the tasks of `service` that run and that Swarm wants running.
pub fn running_ports(service: &str) -> Vec<u16> {
    let ids = lines(&["service", "ps", "-q", "--no-trunc", service]);
    if ids.is_empty() {
        return Vec::new();
    }
    let mut args = vec![
        "inspect",
        "--format",
        "{{.Status.State}} {{.DesiredState}} {{range .Status.PortStatus.Ports}}{{.PublishedPort}} {{end}}",
    ];
    args.extend(ids.iter().map(String::as_str));
    let mut ports: Vec<u16> = lines(&args)
        .iter()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (state, desired) = (words.next()?, words.next()?);
            (state == "running" && desired == "running").then(|| words.next()?.parse().ok())?
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The version each running task of `service` serves, by port (None when a port does not answer).
pub fn versions(service: &str) -> Vec<(u16, Option<String>)> {
    running_ports(service)
        .into_iter()
        .map(|port| {
            let version = http_get(port, "/").and_then(|body| {
                body.strip_prefix("hello from the galley demo app, version ")
                    .and_then(|rest| rest.split(',').next())
                    .map(str::to_string)
            });
            (port, version)
        })
        .collect()
}

/// Keeps an nginx upstream pointing at the running tasks' host ports while a rollout replaces
/// them (what the routing mesh would do, which does not work on this machine): polls the tasks
/// and, when the set changed, rewrites the upstream file and reloads nginx. Stops when dropped.
pub struct UpstreamSync {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    applied: std::sync::Arc<std::sync::Mutex<Vec<u16>>>,
}

impl UpstreamSync {
    /// Starts syncing `nginx`'s upstream to the tasks of `service`.
    pub fn start(nginx: &super::nginx::Nginx, service: &str) -> UpstreamSync {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let stop = Arc::new(AtomicBool::new(false));
        let applied = Arc::new(Mutex::new(Vec::new()));
        let file = nginx.upstream_file(&nginx.upstream);
        let upstream = nginx.upstream.clone();
        let pidfile = nginx.pidfile.clone();
        let service = service.to_string();
        let thread = {
            let (stop, applied) = (stop.clone(), applied.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let ports = running_ports(&service);
                    if !ports.is_empty() && *applied.lock().unwrap() != ports {
                        let servers: String = ports
                            .iter()
                            .map(|p| format!("    server 127.0.0.1:{p};\n"))
                            .collect();
                        let tmp = file.with_extension("tmp");
                        std::fs::write(&tmp, format!("upstream {upstream} {{\n{servers}}}\n"))
                            .expect("write the upstream");
                        std::fs::rename(&tmp, &file).expect("replace the upstream");
                        let pid = std::fs::read_to_string(&pidfile).unwrap_or_default();
                        std::process::Command::new("kill")
                            .args(["-HUP", pid.trim()])
                            .status()
                            .expect("reload nginx");
                        *applied.lock().unwrap() = ports;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        UpstreamSync {
            stop,
            thread: Some(thread),
            applied,
        }
    }

    /// The ports the upstream lists now.
    pub fn applied(&self) -> Vec<u16> {
        self.applied.lock().unwrap().clone()
    }
}

impl Drop for UpstreamSync {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
