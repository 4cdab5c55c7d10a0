//! A real nginx (Debian's `/usr/sbin/nginx`) with a prefix of its own on a free loopback port,
//! proxying `/` to one upstream whose file lives in the prefix's `conf.d`, as Galley's
//! `h.nginx(...)` primitive writes it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{alive, free_port, http_get, wait_until};

/// The nginx binary: `$GALLEY_TEST_NGINX`, else Debian's.
pub fn bin() -> String {
    std::env::var("GALLEY_TEST_NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".into())
}

/// One nginx master (and its workers) serving 127.0.0.1:`port`.
pub struct Nginx {
    pub port: u16,
    pub prefix: PathBuf,
    pub conf: PathBuf,
    pub conf_dir: PathBuf,
    pub pidfile: PathBuf,
    pub error_log: PathBuf,
    pub upstream: String,
    pub bin: String,
    /// Lines added to the proxying `location` (see `start_without_retries`).
    location_extra: &'static str,
    child: Option<Child>,
}

impl Nginx {
    /// Writes a prefix under `dir` (`dir/nginx`) with `nginx.conf`, `conf.d/` holding the upstream
    /// `upstream_name` pointing at 127.0.0.1:`first_backend_port` (nginx refuses a `proxy_pass`
    /// to an upstream that does not exist), starts nginx on a free port (retrying if the port
    /// was taken meanwhile) and waits until it answers.
    pub fn start(dir: &Path, upstream_name: &str, first_backend_port: u16) -> Nginx {
        Nginx::start_with(dir, upstream_name, first_backend_port, "")
    }

    /// Like `start`, with `proxy_next_upstream off`: a request that fails on one server of the
    /// upstream is not sent again to another, so a load client sees every failed request.
    pub fn start_without_retries(
        dir: &Path,
        upstream_name: &str,
        first_backend_port: u16,
    ) -> Nginx {
        Nginx::start_with(
            dir,
            upstream_name,
            first_backend_port,
            "proxy_next_upstream off;",
        )
    }

    fn start_with(
        dir: &Path,
        upstream_name: &str,
        first_backend_port: u16,
        location_extra: &'static str,
    ) -> Nginx {
        let prefix = dir.join("nginx");
        let conf_dir = prefix.join("conf.d");
        for sub in ["conf.d", "logs", "temp"] {
            std::fs::create_dir_all(prefix.join(sub)).expect("create nginx prefix");
        }
        std::fs::write(
            conf_dir.join(format!("upstream-{upstream_name}.conf")),
            format!(
                "# written by the test fixture\nupstream {upstream_name} {{\n    server 127.0.0.1:{first_backend_port};\n}}\n"
            ),
        )
        .expect("write the first upstream");
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut nginx = Nginx {
                port,
                conf: prefix.join("nginx.conf"),
                pidfile: prefix.join("logs/nginx.pid"),
                error_log: prefix.join("logs/error.log"),
                conf_dir: conf_dir.clone(),
                prefix: prefix.clone(),
                upstream: upstream_name.to_string(),
                bin: bin(),
                location_extra,
                child: None,
            };
            std::fs::write(&nginx.conf, nginx.config()).expect("write nginx.conf");
            let _ = std::fs::remove_file(&nginx.error_log);
            // In the foreground (`daemon off`), as this process's child: the test reaps it.
            let child = Command::new(&nginx.bin)
                .arg("-p")
                .arg(&nginx.prefix)
                .arg("-c")
                .arg(&nginx.conf)
                .arg("-e")
                .arg(&nginx.error_log)
                .current_dir("/")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", nginx.bin));
            let pid = i64::from(child.id());
            nginx.child = Some(child);
            let mut exited = false;
            wait_until(
                &format!("nginx to answer on port {port}"),
                Duration::from_secs(10),
                || {
                    exited = nginx
                        .child
                        .as_mut()
                        .is_some_and(|c| c.try_wait().ok().flatten().is_some());
                    exited || (nginx.master() == Some(pid) && http_get(port, "/").is_some())
                },
            );
            if !exited {
                return nginx;
            }
            nginx.child = None;
            last_error = std::fs::read_to_string(&nginx.error_log).unwrap_or_default();
            if !last_error.contains("Address already in use") {
                break;
            }
        }
        panic!("nginx did not start:\n{last_error}");
    }

    fn config(&self) -> String {
        let p = self.prefix.display();
        format!(
            r"daemon off;
worker_processes 2;
pid {p}/logs/nginx.pid;
error_log {p}/logs/error.log warn;
events {{
    worker_connections 512;
}}
http {{
    access_log off;
    client_body_temp_path {p}/temp/client_body;
    proxy_temp_path {p}/temp/proxy;
    fastcgi_temp_path {p}/temp/fastcgi;
    uwsgi_temp_path {p}/temp/uwsgi;
    scgi_temp_path {p}/temp/scgi;
    keepalive_timeout 30s;
    include {conf_dir}/*.conf;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://{upstream};
            {location_extra}
        }}
    }}
}}
",
            conf_dir = self.conf_dir.display(),
            port = self.port,
            upstream = self.upstream,
            location_extra = self.location_extra,
        )
    }

    /// The Rhai map a recipe passes to `h.nginx(...)` to manage this nginx.
    pub fn options(&self) -> String {
        format!(
            "#{{ conf_dir: \"{}\", bin: \"{}\", prefix: \"{}\", conf: \"{}\", pidfile: \"{}\" }}",
            self.conf_dir.display(),
            self.bin,
            self.prefix.display(),
            self.conf.display(),
            self.pidfile.display()
        )
    }

    /// The upstream file Galley writes for `name`.
    pub fn upstream_file(&self, name: &str) -> PathBuf {
        self.conf_dir.join(format!("upstream-{name}.conf"))
    }

    /// The master's pid, if the pidfile names a live process.
    pub fn master(&self) -> Option<i64> {
        let pid: i64 = std::fs::read_to_string(&self.pidfile)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        alive(pid).then_some(pid)
    }

    /// The master's worker processes (and any other children, such as a cache manager).
    pub fn workers(&self) -> Vec<i64> {
        let Some(master) = self.master() else {
            return Vec::new();
        };
        std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// GET `path` through nginx; the body, or None.
    pub fn get(&self, path: &str) -> Option<String> {
        http_get(self.port, path)
    }

    /// The last lines of nginx's error log, for failure messages.
    pub fn error_log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.error_log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Nginx {
    /// A graceful stop (`kill -QUIT`), waiting until the master has exited (after its
    /// workers); SIGKILL for whatever is left after 10 s.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let master = i64::from(child.id());
        let mut pids = self.workers();
        let _ = Command::new("kill")
            .args(["-QUIT", &master.to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        pids.push(master);
        for pid in pids.into_iter().filter(|p| alive(*p)) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = child.wait();
    }
}

/// What a load client saw.
#[derive(Clone, Debug, Default)]
pub struct LoadStats {
    /// Responses that were a 200 naming a version.
    pub requests: u64,
    /// Requests that failed: no connection, an error or a cut response, a non-200, a body that
    /// names no version.
    pub failures: u64,
    /// Keep-alive connections nginx closed between two requests (an old worker shutting down
    /// after a reload, or `keepalive_requests` reached): the client noticed before any byte of
    /// a response came back and sent the request again on a new connection, as HTTP clients
    /// do with idempotent requests (RFC 9112, 9.3.1). Not a failure.
    pub reconnects: u64,
    /// The first failures, described.
    pub examples: Vec<String>,
    /// How many responses named each version.
    pub versions: std::collections::BTreeMap<String, u64>,
}

/// A load client: threads doing HTTP/1.1 GETs against 127.0.0.1:port in a loop, without pauses.
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
    threads: Vec<std::thread::JoinHandle<LoadStats>>,
}

impl Load {
    /// Starts `close` threads that open a new connection per request (`Connection: close`) and
    /// `keepalive` threads that reuse theirs.
    pub fn start(port: u16, close: usize, keepalive: usize) -> Load {
        use std::sync::atomic::{AtomicBool, AtomicU64};
        use std::sync::Arc;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let threads = (0..close + keepalive)
            .map(|i| {
                let stop = stop.clone();
                let requests = requests.clone();
                let keep = i >= close;
                std::thread::spawn(move || client(port, keep, &stop, &requests))
            })
            .collect();
        Load {
            stop,
            requests,
            threads,
        }
    }

    /// Good responses so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops the threads and adds up what they saw.
    pub fn finish(mut self) -> LoadStats {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut total = LoadStats::default();
        for thread in self.threads.drain(..) {
            let stats = thread.join().expect("load thread panicked");
            total.requests += stats.requests;
            total.failures += stats.failures;
            total.reconnects += stats.reconnects;
            for e in stats.examples {
                if total.examples.len() < 10 {
                    total.examples.push(e);
                }
            }
            for (version, n) in stats.versions {
                *total.versions.entry(version).or_default() += n;
            }
        }
        total
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl std::fmt::Display for LoadStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "requests served: {}, failed: {}, keep-alive reconnects: {}, by version: {:?}",
            self.requests, self.failures, self.reconnects, self.versions
        )?;
        for e in &self.examples {
            write!(f, "\n  failure: {e}")?;
        }
        Ok(())
    }
}

/// One response: status, body, and whether the server closes the connection after it.
struct Response {
    status: u16,
    body: String,
    close: bool,
}

/// Why a request failed; `NothingBack` when the connection ended before any byte came back.
enum Failed {
    NothingBack(String),
    Other(String),
}

fn connect(port: u16) -> std::io::Result<std::net::TcpStream> {
    let stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// `read`, again when a signal interrupted it (EINTR is no answer from the server).
fn read_retrying(stream: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn client(
    port: u16,
    keepalive: bool,
    stop: &std::sync::atomic::AtomicBool,
    good: &std::sync::atomic::AtomicU64,
) -> LoadStats {
    use std::sync::atomic::Ordering;
    let mut stats = LoadStats::default();
    let mut conn: Option<std::net::TcpStream> = None;
    let fail = |stats: &mut LoadStats, what: String| {
        stats.failures += 1;
        if stats.examples.len() < 10 {
            stats.examples.push(what);
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let reused = conn.is_some();
        let mut stream = match conn.take() {
            Some(stream) => stream,
            None => match connect(port) {
                Ok(stream) => stream,
                Err(e) => {
                    fail(&mut stats, format!("connect: {e}"));
                    // Do not spin on a port that refuses.
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        match request(&mut stream, keepalive) {
            Ok(response) => {
                let version = response
                    .body
                    .strip_prefix("hello from the galley demo app, version ")
                    .and_then(|rest| rest.split(',').next());
                match (response.status, version) {
                    (200, Some(version)) => {
                        stats.requests += 1;
                        good.fetch_add(1, Ordering::Relaxed);
                        *stats.versions.entry(version.to_string()).or_default() += 1;
                    }
                    _ => fail(
                        &mut stats,
                        format!("status {}: {:?}", response.status, response.body),
                    ),
                }
                if keepalive && !response.close {
                    conn = Some(stream);
                }
            }
            Err(Failed::NothingBack(_)) if reused => stats.reconnects += 1,
            Err(Failed::NothingBack(e) | Failed::Other(e)) => fail(&mut stats, e),
        }
    }
    stats
}

/// Sends one GET / and reads the whole response (Content-Length, chunked, or until EOF).
fn request(stream: &mut std::net::TcpStream, keepalive: bool) -> Result<Response, Failed> {
    use std::io::Write;
    let connection = if keepalive { "keep-alive" } else { "close" };
    let req = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: {connection}\r\n\r\n");
    if let Err(e) = stream.write_all(req.as_bytes()) {
        return Err(Failed::NothingBack(format!("write: {e}")));
    }
    let mut data = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match read_retrying(stream, &mut chunk) {
            Ok(0) if data.is_empty() => return Err(Failed::NothingBack("closed".into())),
            Ok(0) => return Err(Failed::Other("closed in the headers".into())),
            Ok(n) => data.extend_from_slice(&chunk[..n]),
            Err(e) if data.is_empty() => return Err(Failed::NothingBack(format!("read: {e}"))),
            Err(e) => return Err(Failed::Other(format!("read in the headers: {e}"))),
        }
    };
    let head = String::from_utf8_lossy(&data[..header_end]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Failed::Other(format!("bad status line in {head:?}")))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = !keepalive;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close |= value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = data[header_end..].to_vec();
    let mut more = |body: &mut Vec<u8>| -> Result<bool, Failed> {
        match read_retrying(stream, &mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                body.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) => Err(Failed::Other(format!("read in the body: {e}"))),
        }
    };
    if let Some(length) = length {
        while body.len() < length {
            if !more(&mut body)? {
                return Err(Failed::Other(format!(
                    "body cut at {} of {length} bytes",
                    body.len()
                )));
            }
        }
        body.truncate(length);
    } else if chunked {
        while !body.ends_with(b"0\r\n\r\n") {
            if !more(&mut body)? {
                return Err(Failed::Other("chunked body cut".into()));
            }
        }
        body = dechunk(&body);
    } else {
        while more(&mut body)? {}
        close = true;
    }
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        close,
    })
}

/// The data of a complete chunked body.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = raw.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&raw[..i]).trim(), 16).unwrap_or(0);
        if size == 0 || raw.len() < i + 2 + size {
            break;
        }
        out.extend_from_slice(&raw[i + 2..i + 2 + size]);
        raw = &raw[(i + 2 + size + 2).min(raw.len())..];
    }
    out
}
