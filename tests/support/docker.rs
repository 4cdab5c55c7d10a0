//! Docker fixtures: a tiny busybox base image built from this machine's static busybox (nothing
//! can be pulled), a local registry (Debian's `docker-registry`) on a free loopback port, and a
//! guard that removes the services, containers, images and networks a test made.
//!
//! Every name starts with `galley-test-<pid>-`, and every image built from the base image carries
//! the label `galley-test-pid=<pid>` (labels are inherited by the images and containers built on
//! top of it), so what a test process leaves behind is found and removed: by the first test of a
//! later process (when that pid is no longer alive) and when this process exits.

use base64::Engine as _;
use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use super::{alive, free_port, wait_until};

/// The label that marks every image (and container) derived from this process's base image.
pub const PID_LABEL: &str = "galley-test-pid";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this process and call, valid for containers, networks and image repositories:
/// `galley-test-<pid>-<n>-<prefix>`.
pub fn unique(prefix: &str) -> String {
    assert!(
        prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "name prefix {prefix:?} must be lowercase letters, digits and dashes"
    );
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("galley-test-{}-{n}-{prefix}", std::process::id())
}

/// Runs `docker ARGS...` and returns what it printed and returned.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("docker {args:?}: {e}"))
}

/// Runs `docker ARGS...`, panics with its output unless it succeeds, and returns its trimmed stdout.
#[track_caller]
pub fn cli(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The non-empty lines `docker ARGS...` printed (none if it failed).
pub fn lines(args: &[&str]) -> Vec<String> {
    let out = docker(args);
    if !out.status.success() {
        return Vec::new();
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether the Docker daemon answers (`docker version` exits 0). Checked once per process.
pub fn available() -> bool {
    static ANSWERS: OnceLock<bool> = OnceLock::new();
    *ANSWERS.get_or_init(|| {
        Command::new("docker")
            .arg("version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Writes a build context into `dir` (created): a copy of /bin/busybox and a Dockerfile that
/// installs its applets into /bin. Returns `dir`.
pub fn busybox_context(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create busybox context");
    std::fs::copy("/bin/busybox", dir.join("busybox")).unwrap_or_else(|e| {
        panic!("copy /bin/busybox ({e}); it comes with Debian's busybox-static (scripts/test installs it)")
    });
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\n\
         COPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         CMD [\"/bin/sh\"]\n",
    )
    .expect("write busybox Dockerfile");
    dir.to_path_buf()
}

/// The tag of this process's busybox base image, `galley-test-base:<pid>`, built on first use
/// (after removing what earlier test processes that are gone left behind). It is labelled
/// `galley-test-pid=<pid>`, and removed when this process exits.
pub fn base_image() -> &'static str {
    static BASE: OnceLock<String> = OnceLock::new();
    BASE.get_or_init(|| {
        sweep(|pid| !alive(pid));
        let tag = format!("galley-test-base:{}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix("galley-test-base-")
            .tempdir()
            .expect("tempdir for the base image");
        let context = busybox_context(&dir.path().join("ctx"));
        let label = format!("{PID_LABEL}={}", std::process::id());
        cli(&[
            "build",
            "-q",
            "--label",
            &label,
            "-t",
            &tag,
            context.to_str().unwrap(),
        ]);
        register_exit_sweep();
        tag
    })
}

/// Removes, when the test process exits, everything it left (its base image above all).
fn register_exit_sweep() {
    extern "C" {
        fn atexit(callback: extern "C" fn()) -> std::os::raw::c_int;
    }
    extern "C" fn at_exit() {
        let me = i64::from(std::process::id());
        sweep(|pid| pid == me);
    }
    // SAFETY: `atexit` only stores the pointer of a function that lives for the whole program.
    unsafe {
        atexit(at_exit);
    }
}

/// The test pid in a name like `galley-test-<pid>-...` or `[registry/]galley-test-base:<pid>`.
fn pid_in_name(name: &str) -> Option<i64> {
    let last = name.rsplit('/').next()?;
    let rest = last.strip_prefix("galley-test-")?;
    if let Some(pid) = rest.strip_prefix("base:") {
        return pid.parse().ok();
    }
    rest.split(['-', ':']).next()?.parse().ok()
}

/// Removes every container, network and image of the test processes whose pid `doomed` picks,
/// found by name (`galley-test-<pid>-...`) and by the `galley-test-pid` label. Ignores errors.
pub fn sweep(doomed: impl Fn(i64) -> bool) {
    let label_of = |line: &str| -> Option<(String, i64)> {
        let (id, pid) = line.split_once(' ')?;
        Some((id.to_string(), pid.trim().parse().ok()?))
    };
    // Swarm services first (by name): Swarm would restart their containers.
    let services: Vec<String> = lines(&["service", "ls", "--format", "{{.Name}}"])
        .into_iter()
        .filter(|n| pid_in_name(n).is_some_and(&doomed))
        .collect();
    remove_services(&services);
    // Containers: by label (everything made from a test image) and by name.
    let mut containers: Vec<String> = lines(&[
        "ps",
        "-a",
        "--filter",
        &format!("label={PID_LABEL}"),
        "--format",
        &format!("{{{{.ID}}}} {{{{.Label \"{PID_LABEL}\"}}}}"),
    ])
    .iter()
    .filter_map(|l| label_of(l))
    .filter(|(_, pid)| doomed(*pid))
    .map(|(id, _)| id)
    .collect();
    containers.extend(
        lines(&[
            "ps",
            "-a",
            "--filter",
            "name=galley-test-",
            "--format",
            "{{.Names}}",
        ])
        .into_iter()
        .filter(|n| pid_in_name(n).is_some_and(&doomed)),
    );
    if !containers.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(containers.iter().map(String::as_str));
        docker(&args);
    }
    // Networks: by name.
    let networks: Vec<String> = lines(&[
        "network",
        "ls",
        "--filter",
        "name=galley-test-",
        "--format",
        "{{.Name}}",
    ])
    .into_iter()
    .filter(|n| pid_in_name(n).is_some_and(&doomed))
    .collect();
    if !networks.is_empty() {
        let mut args = vec!["network", "rm"];
        args.extend(networks.iter().map(String::as_str));
        docker(&args);
    }
    // Images: the tags by name first, then every image (intermediate ones too) by label. A parent
    // can only go once its children are gone, so this repeats while it makes progress.
    let named: Vec<String> = lines(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .into_iter()
        .filter(|r| pid_in_name(r).is_some_and(&doomed))
        .collect();
    if !named.is_empty() {
        let mut args = vec!["rmi", "-f"];
        args.extend(named.iter().map(String::as_str));
        docker(&args);
    }
    let pick = |value: &str| value.parse().is_ok_and(&doomed);
    remove_images_labelled(&format!("label={PID_LABEL}"), Some(&pick));
}

/// Removes Swarm services, waits (a while) until their containers are gone, then removes the
/// Docker secrets Galley made for them (named `SERVICE-...`; in use until the tasks are gone).
fn remove_services(services: &[String]) {
    if services.is_empty() {
        return;
    }
    let mut args = vec!["service", "rm"];
    args.extend(services.iter().map(String::as_str));
    docker(&args);
    let gone = || {
        services.iter().all(|s| {
            lines(&[
                "ps",
                "-a",
                "-q",
                "--filter",
                &format!("label=com.docker.swarm.service.name={s}"),
            ])
            .is_empty()
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !gone() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let secrets: Vec<String> = lines(&["secret", "ls", "--format", "{{.Name}}"])
        .into_iter()
        .filter(|n| services.iter().any(|s| n.starts_with(&format!("{s}-"))))
        .collect();
    if !secrets.is_empty() {
        let mut args = vec!["secret", "rm"];
        args.extend(secrets.iter().map(String::as_str));
        docker(&args);
    }
}

/// Removes every image (intermediate ones included) matching the docker `filter` (and, when
/// given, whose value of the `galley-test-pid` label `pick` accepts), children before parents.
fn remove_images_labelled(filter: &str, pick: Option<&dyn Fn(&str) -> bool>) {
    let mut before = usize::MAX;
    for _ in 0..10 {
        let ids: Vec<String> = lines(&["images", "-a", "--no-trunc", "--filter", filter, "-q"])
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|id| {
                let Some(pick) = pick else {
                    return true;
                };
                let value = lines(&[
                    "image",
                    "inspect",
                    "--format",
                    &format!("{{{{index .Config.Labels \"{PID_LABEL}\"}}}}"),
                    id,
                ]);
                value.first().is_some_and(|v| pick(v))
            })
            .collect();
        if ids.is_empty() || ids.len() >= before {
            return;
        }
        before = ids.len();
        for id in &ids {
            docker(&["rmi", "-f", id]);
        }
    }
}

/// Records what a test created and force-removes it when dropped, ignoring errors: containers
/// first, then networks, then images. Declare it before anything that uses what it records.
#[derive(Default)]
pub struct Cleanup {
    services: RefCell<Vec<String>>,
    containers: RefCell<Vec<String>>,
    networks: RefCell<Vec<String>>,
    images: RefCell<Vec<String>>,
    labels: RefCell<Vec<String>>,
}

impl Cleanup {
    pub fn new() -> Self {
        Cleanup::default()
    }

    /// Removes the Swarm service `name` (and the secrets Galley made for it) at the end, before
    /// anything else; returns `name`.
    pub fn service(&self, name: &str) -> String {
        self.services.borrow_mut().push(name.to_string());
        name.to_string()
    }

    /// Removes the container `name` at the end (`docker rm -f`); returns `name`.
    pub fn container(&self, name: &str) -> String {
        self.containers.borrow_mut().push(name.to_string());
        name.to_string()
    }

    /// Removes the image `reference` at the end (`docker rmi -f`); returns `reference`.
    pub fn image(&self, reference: &str) -> String {
        self.images.borrow_mut().push(reference.to_string());
        reference.to_string()
    }

    /// Removes the network `name` at the end (`docker network rm`); returns `name`.
    pub fn network(&self, name: &str) -> String {
        self.networks.borrow_mut().push(name.to_string());
        name.to_string()
    }

    /// Removes at the end every container and image (intermediate ones too) carrying the label
    /// `key=value` (given as `key=value`), such as the leftovers of a build that failed.
    pub fn label(&self, key_value: &str) -> String {
        self.labels.borrow_mut().push(key_value.to_string());
        key_value.to_string()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        remove_services(&self.services.borrow());
        let mut containers = self.containers.borrow().clone();
        for label in self.labels.borrow().iter() {
            containers.extend(lines(&[
                "ps",
                "-a",
                "-q",
                "--filter",
                &format!("label={label}"),
            ]));
        }
        if !containers.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(containers.iter().map(String::as_str));
            docker(&args);
        }
        for network in self.networks.borrow().iter() {
            docker(&["network", "rm", network]);
        }
        let images = self.images.borrow();
        if !images.is_empty() {
            let mut args = vec!["rmi", "-f"];
            args.extend(images.iter().map(String::as_str));
            docker(&args);
        }
        for label in self.labels.borrow().iter() {
            remove_images_labelled(&format!("label={label}"), None);
        }
    }
}

/// A `docker-registry serve` (Debian's /usr/bin/docker-registry) on 127.0.0.1:`port`, storing
/// into a temp dir, optionally with htpasswd basic auth. Killed when dropped.
pub struct Registry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Registry {
    /// A registry without authentication.
    pub fn start() -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("galley-test-registry-")
            .tempdir()
            .expect("registry tempdir");
        Registry::start_in(dir, "")
    }

    /// A registry that requires `user` and `password` (htpasswd, bcrypt); None when nothing
    /// here can make a bcrypt hash (python3's `crypt` or `bcrypt`, or `htpasswd -B`).
    pub fn start_with_auth(user: &str, password: &str) -> Option<Registry> {
        let dir = tempfile::Builder::new()
            .prefix("galley-test-registry-")
            .tempdir()
            .expect("registry tempdir");
        let hash = bcrypt_hash(password)?;
        let htpasswd = dir.path().join("htpasswd");
        std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("write htpasswd");
        let auth = format!(
            "auth:\n  htpasswd:\n    realm: galley-test\n    path: {}\n",
            htpasswd.display()
        );
        Some(Registry::start_in(dir, &auth))
    }

    fn start_in(dir: tempfile::TempDir, extra: &str) -> Registry {
        let storage = dir.path().join("data");
        std::fs::create_dir_all(&storage).expect("create registry storage");
        let config = dir.path().join("config.yml");
        let log = dir.path().join("registry.log");
        for _ in 0..5 {
            let port = free_port();
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\n\
                     log:\n  level: warn\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: 127.0.0.1:{port}\n  secret: galley-test-secret\n\
                     {extra}",
                    storage.display()
                ),
            )
            .expect("write registry config");
            let out = std::fs::File::create(&log).expect("create registry log");
            let mut child = Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("clone log handle"))
                .stderr(out)
                .spawn()
                .expect(
                    "start /usr/bin/docker-registry (Debian's docker-registry; scripts/test installs it)",
                );
            let mut exited = false;
            wait_until("the registry to answer", Duration::from_secs(20), || {
                exited = matches!(child.try_wait(), Ok(Some(_)));
                exited || matches!(http_status(port, "/v2/", None), Some(200 | 401))
            });
            if !exited {
                return Registry { port, dir, child };
            }
        }
        panic!(
            "docker-registry did not start after 5 ports; last log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The status code of a GET of `path`, with basic auth when given.
    pub fn status(&self, path: &str, auth: Option<(&str, &str)>) -> Option<u16> {
        http_status(self.port, path, auth)
    }

    /// The tags the registry holds for `repository` (empty when it has none).
    pub fn tags(&self, repository: &str, auth: Option<(&str, &str)>) -> Vec<String> {
        let Some((200, body)) = http(self.port, &format!("/v2/{repository}/tags/list"), auth)
        else {
            return Vec::new();
        };
        // {"name":"...","tags":["1","2"]}
        let Some(list) = body.split("\"tags\":").nth(1) else {
            return Vec::new();
        };
        let list = list.split(']').next().unwrap_or("");
        list.trim_start_matches('[')
            .split(',')
            .map(|t| t.trim().trim_matches('"').to_string())
            .filter(|t| !t.is_empty() && t != "null")
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bcrypt hash of `password` for an htpasswd file, or None if no tool here makes one.
fn bcrypt_hash(password: &str) -> Option<String> {
    let scripts = [
        "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
        "import bcrypt, sys; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt()).decode())",
    ];
    for python in ["python3", "/usr/bin/python3"] {
        for script in scripts {
            let out = Command::new(python)
                .args(["-W", "ignore", "-c", script, password])
                .stdin(Stdio::null())
                .output();
            if let Ok(out) = out {
                let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if out.status.success() && hash.starts_with("$2") {
                    return Some(hash);
                }
            }
        }
    }
    let out = Command::new("htpasswd")
        .args(["-Bbn", "user", password])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let hash = line.split_once(':')?.1.to_string();
    (out.status.success() && hash.starts_with("$2")).then_some(hash)
}

/// The status code of a GET of `path` on 127.0.0.1:port, or None if nothing answers.
pub fn http_status(port: u16, path: &str, auth: Option<(&str, &str)>) -> Option<u16> {
    http(port, path, auth).map(|(status, _)| status)
}

/// A GET of `path` on 127.0.0.1:port with optional basic auth: (status, body).
fn http(port: u16, path: &str, auth: Option<(&str, &str)>) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let authorization = auth
        .map(|(u, p)| {
            format!(
                "Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        })
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n{authorization}\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

#[cfg(test)]
mod tests {
    #[test]
    fn pids_in_names() {
        assert_eq!(super::pid_in_name("galley-test-base:123"), Some(123));
        assert_eq!(super::pid_in_name("galley-test-45-0-web:1"), Some(45));
        assert_eq!(
            super::pid_in_name("127.0.0.1:5000/galley-test-45-0-web:1"),
            Some(45)
        );
        assert_eq!(super::pid_in_name("galley-test-base-x"), None);
        assert_eq!(super::pid_in_name("other:1"), None);
    }
}
