//! `health::http` and `health::tcp` against real servers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::support::{flat, free_port, http_get, kill_group, value_of, wait_until, Sandbox};

const LIMIT: Duration = Duration::from_secs(20);

/// A minimal HTTP server in a thread, answering every request with `status` and `body`.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(listener: TcpListener, status: u16, body: &'static str) -> Self {
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (s, r) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                r.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Server {
            port,
            stop,
            requests,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `python3 -m http.server` serving a folder; killed (with its group) when dropped.
struct Python {
    child: Child,
    port: u16,
}

impl Python {
    fn serve(sb: &Sandbox, folder: &str) -> Self {
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(sb.join(folder))
            .current_dir(sb.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("python3");
        let server = Python { child, port };
        wait_until("python3 -m http.server to answer", LIMIT, || {
            http_get(port, "/").is_some()
        });
        server
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        kill_group(i64::from(self.child.id()));
        let _ = self.child.wait();
    }
}

#[test]
fn http_passes_against_a_real_server_with_expect_and_contains() {
    let sb = Sandbox::new();
    sb.write("www/index.html", "hello galley, all is well\n");
    let server = Python::serve(&sb, "www");
    let base = format!("http://127.0.0.1:{}", server.port);
    let recipe = format!(
        r#"
        let r = health::http("{base}/index.html", #{{ expect: 200, contains: "all is well" }});
        log(`status=${{r.status}}`);
        log(`attempts=${{r.attempts}}`);
        let body = r.body;
        body.trim();
        log(`body=${{body}}`);
        let missing = health::http("{base}/missing", #{{ expect: 404, retries: 1 }});
        log(`missing=${{missing.status}}`);
        let plain = health::http("{base}/");
        log(`plain=${{plain.status}}`);
        "#
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    assert_eq!(value_of(&run.stdout, "status"), "200");
    assert_eq!(value_of(&run.stdout, "attempts"), "1");
    assert_eq!(value_of(&run.stdout, "body"), "hello galley, all is well");
    assert_eq!(value_of(&run.stdout, "missing"), "404");
    assert_eq!(value_of(&run.stdout, "plain"), "200");
}

#[test]
fn http_fails_when_the_body_does_not_contain_the_text() {
    let sb = Sandbox::new();
    let server = Server::start(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        200,
        "the wrong page",
    );
    let recipe = format!(
        r#"health::http("{}", #{{ contains: "welcome", retries: 3, interval: "10ms" }}); log("went on");"#,
        server.url("/health")
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(1);
    let report = flat(&run.stderr);
    assert!(report.contains("galley::health"), "{report}");
    assert!(report.contains("did not pass after 3 attempts"), "{report}");
    assert!(
        report.contains(r#"the body does not contain "welcome""#),
        "{report}"
    );
    assert!(
        report.contains("the wrong page"),
        "the report shows the body: {report}"
    );
    assert!(!run.stdout.contains("went on"));
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        3,
        "one request per attempt"
    );
}

#[test]
fn http_fails_on_an_unexpected_status() {
    let sb = Sandbox::new();
    let server = Server::start(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        503,
        "starting up",
    );
    let recipe = format!(
        r#"health::http("{}", #{{ retries: 2, interval: "10ms" }});"#,
        server.url("/health")
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(1);
    let report = flat(&run.stderr);
    assert!(report.contains("HTTP 503 (expected 200)"), "{report}");
    assert!(report.contains("starting up"), "{report}");
}

#[test]
fn http_retries_until_a_server_that_starts_late_comes_up() {
    let sb = Sandbox::new();
    // Nothing answers HTTP on the port at first: the first connection is accepted and dropped
    // unanswered, then the port is closed, and only then does a real server start on it.
    let first = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = first.local_addr().unwrap().port();
    let first_failed = Arc::new(AtomicBool::new(false));
    let flag = first_failed.clone();
    let late = std::thread::spawn(move || {
        let (conn, _) = first.accept().unwrap();
        drop(conn);
        drop(first);
        flag.store(true, Ordering::SeqCst);
        let mut listener = None;
        wait_until("the port to be bound again", LIMIT, || {
            listener = TcpListener::bind(("127.0.0.1", port)).ok();
            listener.is_some()
        });
        Server::start(listener.unwrap(), 200, "late but ok")
    });
    let recipe = format!(
        r#"let r = health::http("http://127.0.0.1:{port}/health", #{{ contains: "late", retries: 400, interval: "50ms", timeout: "2s" }});
        log(`attempts=${{r.attempts}}`);"#
    );
    let run = sb.run_recipe(&recipe, &[]);
    if !first_failed.load(Ordering::SeqCst) {
        // galley never connected: unblock the thread so that the test reports instead of hanging.
        let _ = TcpStream::connect(("127.0.0.1", port));
    }
    let server = late.join().unwrap();
    let run = run.expect_code(0);
    assert!(first_failed.load(Ordering::SeqCst));
    let attempts: u32 = value_of(&run.stdout, "attempts").parse().unwrap();
    assert!(
        attempts >= 2,
        "the first attempt cannot have passed; attempts={attempts}"
    );
    assert!(server.requests.load(Ordering::SeqCst) >= 1);
}

#[test]
fn tcp_passes_against_a_listener_and_fails_on_a_closed_port() {
    let sb = Sandbox::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let recipe =
        format!(r#"let r = health::tcp("127.0.0.1:{port}"); log(`attempts=${{r.attempts}}`);"#);
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    assert_eq!(value_of(&run.stdout, "attempts"), "1");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_ok(), "health::tcp really connected");
    drop(listener);

    let closed = free_port();
    let recipe =
        format!(r#"health::tcp("127.0.0.1:{closed}", #{{ retries: 2, interval: "10ms" }});"#);
    let run = sb.run_recipe(&recipe, &[]).expect_code(1);
    let report = flat(&run.stderr);
    assert!(
        report.contains(&format!(
            "health check of 127.0.0.1:{closed} did not pass after 2 attempts"
        )),
        "{report}"
    );
    assert!(report.to_lowercase().contains("refused"), "{report}");
}

#[test]
fn a_dry_run_prints_the_check_and_connects_to_nothing() {
    let sb = Sandbox::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let recipe = format!(
        r#"let r = health::http("http://127.0.0.1:{port}/health", #{{ expect: 204 }});
        log(`status=${{r.status}}`);
        health::tcp("127.0.0.1:{port}");"#
    );
    let run = sb.run_recipe(&recipe, &["--dry-run"]).expect_code(0);
    assert!(
        run.stdout.contains(&format!(
            "[local] would check http://127.0.0.1:{port}/health"
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("[local] would check 127.0.0.1:{port}")),
        "{}",
        run.stdout
    );
    assert_eq!(value_of(&run.stdout, "status"), "204");
    listener.set_nonblocking(true).unwrap();
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a dry run connected to the endpoint"
    );
}

#[test]
fn unknown_health_options_are_reported() {
    let sb = Sandbox::new();
    let run = sb
        .run_recipe(
            r#"health::http("http://127.0.0.1:1/", #{ retires: 3 });"#,
            &[],
        )
        .expect_code(1);
    assert!(
        run.stderr
            .contains("unknown option `retires` for health::http"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `retries`?"),
        "{}",
        run.stderr
    );
}

/// The pid holding the socket that listens on `port` of this machine, from /proc.
fn listening_pid(port: u16) -> Option<i64> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port_hex = f[1].rsplit_once(':').unwrap().1;
            if f[3] == "0A" && u16::from_str_radix(port_hex, 16).unwrap() == port {
                inodes.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    crate::support::all_pids().into_iter().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .any(|link| inodes.iter().any(|i| link.to_string_lossy() == *i))
        })
    })
}

#[test]
fn a_string_cmd_service_is_one_process_and_its_pidfile_names_the_listener() {
    let sb = Sandbox::new();
    let _reaper = crate::support::Reaper::new(&sb);
    let port = free_port();
    let recipe = format!(
        r#"
let web = local().process("web", #{{ cmd: "python3 -m http.server {port} --bind 127.0.0.1", dir: "{dir}" }});
web.start();
health::http("http://127.0.0.1:{port}/", #{{ service: web, retries: 100, interval: "100ms" }});
print(`pid=${{web.pid()}}`);
"#,
        dir = sb.path().display()
    );
    let run = sb.run_recipe(&recipe, &[]).expect_code(0);
    let pid: i64 = value_of(&run.stdout, "pid").parse().unwrap();
    assert_eq!(crate::support::read_pid(sb.path().join("web.pid")), pid);
    assert_eq!(
        listening_pid(port),
        Some(pid),
        "the pidfile names the listener"
    );
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let program = String::from_utf8_lossy(cmdline.split(|b| *b == 0).next().unwrap()).into_owned();
    assert!(
        program.rsplit('/').next().unwrap().starts_with("python"),
        "one process, not a shell: {program}"
    );
}

#[test]
fn a_port_held_by_another_program_that_answers_fails_the_deploy() {
    let sb = Sandbox::new();
    let _reaper = crate::support::Reaper::new(&sb);
    // An old hand-started copy: it answers /health, and the new version can never bind.
    let old = Server::start(TcpListener::bind("127.0.0.1:0").unwrap(), 200, "ok");
    let state = sb.join("state");
    for (name, cmd) in [
        // Dies when it tries to bind, after the start grace.
        (
            "dies",
            format!(
                "[\"sh\", \"-c\", \"sleep 0.5; exec python3 -m http.server {} --bind 127.0.0.1\"]",
                old.port
            ),
        ),
        // Stays up but never listens.
        ("idle", "[\"sleep\", \"30\"]".to_string()),
    ] {
        let recipe = format!(
            r#"
import "galley/in_place" as in_place;
let app = local().process("{name}", #{{ cmd: {cmd}, dir: "{dir}" }});
in_place::deploy(app, #{{
    health: "{url}",
    health_options: #{{ retries: 20, interval: "100ms" }},
}});
"#,
            url = old.url("/health"),
            dir = sb.path().display()
        );
        sb.write("recipe.rhai", &recipe);
        let run = sb
            .invoke(["run", "recipe.rhai", "--output", "plain"])
            .env("GALLEY_STATE_DIR", &state)
            .run()
            .expect_code(1);
        let report = flat(&run.stderr);
        assert!(
            report.contains("exited while its health check waited")
                || report.contains("answers, but from another program"),
            "{name}: {report}"
        );
        assert!(!run.stdout.contains("done in"), "{}", run.stdout);
        let history = sb
            .invoke(["history", name, "--json"])
            .env("GALLEY_STATE_DIR", &state)
            .run()
            .expect_code(0);
        assert!(
            history.stdout.contains("\"result\":\"failed\""),
            "{}",
            history.stdout
        );
        assert!(
            !history.stdout.contains("\"result\":\"ok\""),
            "{}",
            history.stdout
        );
    }
    // The old version keeps serving.
    assert_eq!(http_get(old.port, "/health").as_deref(), Some("ok"));
}
