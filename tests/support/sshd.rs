//! Real `sshd` servers on 127.0.0.1, one per simulated host, each with its own host key, config,
//! free port and working root folder, plus a client key and a `known_hosts` file that trusts them.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{alive, all_pids, free_port, stat_ids, wait_until};

/// One client key, one sshd per simulated host on 127.0.0.1, and a `known_hosts` file for them.
pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    pub hosts: Vec<SshHost>,
}

/// One sshd on a free loopback port with its own host key and working root folder.
pub struct SshHost {
    pub port: u16,
    pub root: PathBuf,
    /// The host's public key as `ssh-ed25519 AAAA...` (no comment).
    pub host_key_pub: String,
    child: Option<Child>,
    pid: i64,
    dir: PathBuf,
}

impl Fleet {
    /// Generates keys, starts `n` sshd and waits until each answers with its SSH banner.
    pub fn start(n: usize) -> Fleet {
        Fleet::start_with(n, &[])
    }

    /// Like `start`, with `extra_config` lines (such as `SetEnv PATH=...`) added to each
    /// host's `sshd_config`.
    pub fn start_with(n: usize, extra_config: &[String]) -> Fleet {
        let dir = tempfile::Builder::new()
            .prefix("gs-")
            .tempdir_in("/tmp")
            .expect("fleet tempdir");
        let key = dir.path().join("id_ed25519");
        keygen(&key);
        let client_pub = dir.path().join("id_ed25519.pub");
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        std::fs::set_permissions("/run/sshd", std::fs::Permissions::from_mode(0o755))
            .expect("chmod /run/sshd");
        let hosts: Vec<SshHost> = (0..n)
            .map(|i| {
                SshHost::start(
                    &dir.path().join(format!("host{i}")),
                    &client_pub,
                    extra_config,
                )
            })
            .collect();
        let known_hosts = dir.path().join("known_hosts");
        let lines: String = hosts
            .iter()
            .map(|h| format!("[127.0.0.1]:{} {}\n", h.port, h.host_key_pub))
            .collect();
        std::fs::write(&known_hosts, lines).expect("write known_hosts");
        Fleet {
            dir,
            key,
            known_hosts,
            hosts,
        }
    }

    /// `root@127.0.0.1:PORT` for host `i`.
    pub fn dest(&self, i: usize) -> String {
        format!("root@127.0.0.1:{}", self.hosts[i].port)
    }

    /// A short folder (created, mode 0700) for ssh control sockets, which must stay under ~100 bytes.
    pub fn control_dir(&self) -> PathBuf {
        let dir = self.dir.path().join("c");
        std::fs::create_dir_all(&dir).expect("create control dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .expect("chmod control dir");
        dir
    }

    /// `galley ARGS` in `sb` keeping its ssh control sockets in the fleet's folder (the
    /// sandbox's builder: `.env(..)`, `.run()`).
    pub fn invoke<I, S>(&self, sb: &super::Sandbox, args: I) -> super::Invocation
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        sb.invoke(args)
            .env("GALLEY_CONTROL_DIR", self.control_dir())
    }

    /// A `galley` command in `sb` that keeps its ssh control sockets in the fleet's folder.
    pub fn galley(&self, sb: &super::Sandbox) -> Command {
        self.invoke(sb, std::iter::empty::<&str>()).command()
    }

    /// Runs `script` on host `i` with the plain `ssh` client, trusting only the fleet's `known_hosts`.
    pub fn ssh(&self, i: usize, script: &str) -> Output {
        Command::new("ssh")
            .arg("-i")
            .arg(&self.key)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
            .args([
                "-p",
                &self.hosts[i].port.to_string(),
                "root@127.0.0.1",
                script,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run ssh")
    }

    /// The Rhai map literal a recipe passes to `ssh::connect` to use the fleet's key and `known_hosts`.
    pub fn options(&self) -> String {
        format!(
            "#{{ identity: \"{}\", known_hosts_file: \"{}\" }}",
            self.key.display(),
            self.known_hosts.display()
        )
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for host in &mut self.hosts {
            host.stop();
        }
    }
}

impl SshHost {
    /// Writes the host key and config into `dir` and starts sshd, retrying on a port taken meanwhile.
    fn start(dir: &Path, client_pub: &Path, extra_config: &[String]) -> SshHost {
        let root = dir.join("root");
        std::fs::create_dir_all(&root).expect("create host root");
        let host_key = dir.join("host_key");
        keygen(&host_key);
        let public = std::fs::read_to_string(dir.join("host_key.pub")).expect("read host key");
        let host_key_pub = public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let authorized = dir.join("authorized_keys");
        std::fs::copy(client_pub, &authorized).expect("write authorized_keys");
        let config = dir.join("sshd_config");
        let log = dir.join("sshd.log");
        for _ in 0..5 {
            let port = free_port();
            let mut text = sshd_config(port, &host_key, &dir.join("sshd.pid"), &authorized);
            for line in extra_config {
                text.push_str(line);
                text.push('\n');
            }
            std::fs::write(&config, text).expect("write sshd_config");
            let out = std::fs::File::create(&log).expect("create sshd.log");
            let mut child = Command::new("/usr/sbin/sshd")
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("clone log handle"))
                .stderr(out)
                .process_group(0)
                .spawn()
                .expect("start /usr/sbin/sshd");
            let mut exited = false;
            wait_until("sshd to answer", Duration::from_secs(10), || {
                exited = matches!(child.try_wait(), Ok(Some(_)));
                exited || banner(port)
            });
            if !exited {
                let pid = i64::from(child.id());
                return SshHost {
                    port,
                    root,
                    host_key_pub,
                    child: Some(child),
                    pid,
                    dir: dir.to_path_buf(),
                };
            }
        }
        panic!(
            "sshd did not start after 5 ports; last log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Kills this host's sshd and every process it forked for connections (idempotent).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Stop the listener and its descendants first, so that none forks or is reparented
        // before the whole tree is known; sshd's connection children call setsid().
        signal(self.pid, Signal::SIGSTOP);
        let mut tree = BTreeSet::new();
        loop {
            let found = descendants(self.pid);
            let new: Vec<i64> = found.difference(&tree).copied().collect();
            if new.is_empty() {
                break;
            }
            for &pid in &new {
                signal(pid, Signal::SIGSTOP);
            }
            tree.extend(new);
        }
        for &pid in &tree {
            signal(pid, Signal::SIGKILL);
        }
        let _ = child.kill();
        let _ = child.wait();
        let listed = self.dir.join("sshd_config").display().to_string();
        wait_until(
            &format!("the processes of {listed} to end"),
            Duration::from_secs(10),
            || tree.iter().all(|pid| !alive(*pid)),
        );
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Generates an ed25519 key pair without passphrase at `path` and `path.pub`.
fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `sshd_config` text of one host.
fn sshd_config(port: u16, host_key: &Path, pid_file: &Path, authorized: &Path) -> String {
    format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {}\n\
         PidFile {}\n\
         AuthorizedKeysFile {}\n\
         PermitRootLogin prohibit-password\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes no\n\
         Subsystem sftp /usr/lib/openssh/sftp-server\n\
         MaxSessions 100\n\
         MaxStartups 100:30:200\n\
         LogLevel ERROR\n\
         AllowTcpForwarding yes\n\
         AllowStreamLocalForwarding yes\n\
         PermitUserEnvironment no\n\
         PrintMotd no\n",
        host_key.display(),
        pid_file.display(),
        authorized.display()
    )
}

/// Whether something on 127.0.0.1:port answers with an `SSH-2.0` banner.
fn banner(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut got = [0u8; 7];
    stream.read_exact(&mut got).is_ok() && &got == b"SSH-2.0"
}

/// Every live descendant of `root` (not `root` itself), found through the parent pids in /proc.
fn descendants(root: i64) -> BTreeSet<i64> {
    let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
    for pid in all_pids() {
        if let Some((ppid, _, _)) = stat_ids(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            if found.insert(child) {
                todo.push(child);
            }
        }
    }
    found
}

/// Sends `sig` to `pid`, ignoring a process that is already gone.
fn signal(pid: i64, sig: Signal) {
    let _ = kill(Pid::from_raw(pid as i32), sig);
}

/// Closes, when dropped, every master left in a control dir (`ssh -S SOCKET -O exit none`).
pub struct CloseMasters(pub PathBuf);

impl Drop for CloseMasters {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some() {
                continue;
            }
            let _ = Command::new("ssh")
                .arg("-S")
                .arg(&path)
                .args(["-O", "exit", "none"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
