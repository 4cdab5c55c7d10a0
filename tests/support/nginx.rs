//! A real nginx (Debian's `/usr/sbin/nginx`) with a prefix of its own on a free loopback port,
//! proxying `/` to one upstream whose file lives in the prefix's `conf.d`, as Galley's
//! `h.nginx(...)` primitive writes it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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
}

impl Nginx {
    /// Writes a prefix under `dir` (`dir/nginx`) with `nginx.conf`, `conf.d/` holding the upstream
    /// `upstream_name` pointing at 127.0.0.1:`first_backend_port` (nginx refuses a `proxy_pass`
    /// to an upstream that does not exist), starts nginx on a free port (retrying if the port
    /// was taken meanwhile) and waits until it answers.
    pub fn start(dir: &Path, upstream_name: &str, first_backend_port: u16) -> Nginx {
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
            let nginx = Nginx {
                port,
                conf: prefix.join("nginx.conf"),
                pidfile: prefix.join("logs/nginx.pid"),
                error_log: prefix.join("logs/error.log"),
                conf_dir: conf_dir.clone(),
                prefix: prefix.clone(),
                upstream: upstream_name.to_string(),
                bin: bin(),
            };
            std::fs::write(&nginx.conf, nginx.config()).expect("write nginx.conf");
            let out = Command::new(&nginx.bin)
                .arg("-p")
                .arg(&nginx.prefix)
                .arg("-c")
                .arg(&nginx.conf)
                .arg("-e")
                .arg(&nginx.error_log)
                .current_dir("/")
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", nginx.bin));
            if out.status.success() {
                wait_until("nginx's pidfile", Duration::from_secs(10), || {
                    nginx.master().is_some()
                });
                wait_until(
                    &format!("nginx to answer on port {port}"),
                    Duration::from_secs(10),
                    || http_get(port, "/").is_some(),
                );
                return nginx;
            }
            last_error = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if !last_error.contains("Address already in use") {
                break;
            }
        }
        panic!("nginx did not start:\n{last_error}");
    }

    fn config(&self) -> String {
        let p = self.prefix.display();
        format!(
            r#"daemon on;
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
        }}
    }}
}}
"#,
            conf_dir = self.conf_dir.display(),
            port = self.port,
            upstream = self.upstream,
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
    /// A graceful stop (`kill -QUIT`), waiting until the master is gone; SIGKILL for whatever
    /// is left after 10 s.
    fn drop(&mut self) {
        let Some(master) = self.master() else {
            return;
        };
        let mut pids = self.workers();
        pids.push(master);
        let _ = Command::new("kill")
            .args(["-QUIT", &master.to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline && pids.iter().any(|p| alive(*p)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in pids.into_iter().filter(|p| alive(*p)) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}
