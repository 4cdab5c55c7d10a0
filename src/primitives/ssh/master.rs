//! The OpenSSH master connection behind an ssh host: launched once, kept alive in a Galley-owned
//! control directory (`ControlPersist`) so that later runs resume it instead of paying for a new
//! key exchange, and turned into a clear report when it cannot be made.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use openssh::Session;

use crate::error::Failure;
use crate::error::SshProblem;
use crate::exec::Ctx;

/// Where to connect: `user@host:port`, each part but the host optional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl Destination {
    /// Parses `user@host:port`, `host`, `user@host` or `[::1]:22`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (user, rest) = match text.rsplit_once('@') {
            Some((user, rest)) if !user.is_empty() => (Some(user.to_string()), rest),
            Some(_) => return Err("the user before `@` is empty".into()),
            None => (None, text),
        };
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or("an IPv6 address needs a closing `]`")?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(format!("unexpected {after:?} after the address")),
            };
            (host.to_string(), port)
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host.to_string(), Some(port)),
                None => (rest.to_string(), None),
            }
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err("the host name is missing or contains spaces".into());
        }
        let port = match port {
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("`{p}` is not a port number"))?,
            ),
            None => None,
        };
        Ok(Destination { user, host, port })
    }

    /// The address as ssh and `known_hosts` spell it: `host` or `[host]:port`.
    pub fn address(&self) -> String {
        match self.port {
            Some(port) if port != 22 => format!("[{}]:{port}", self.host),
            _ => self.host.clone(),
        }
    }
}

/// How to connect and how long to keep the connection.
#[derive(Clone, Debug)]
pub struct MasterOptions {
    pub identity: Option<String>,
    pub known_hosts_file: Option<String>,
    /// `StrictHostKeyChecking=accept-new` instead of `yes`.
    pub accept_new: bool,
    pub jump: Vec<String>,
    pub connect_timeout: Duration,
    /// Keep the master alive this long after the last use; `None` closes it when the run ends.
    pub persist: Option<Duration>,
    /// Commands and files go through sudo (not a master setting, but part of the socket's name
    /// so that each connection has one meaning).
    pub sudo: bool,
}

/// A live master connection.
pub struct Master {
    pub session: Session,
    pub socket: PathBuf,
}

/// The folder for control sockets: `$GALLEY_CONTROL_DIR`, `$XDG_RUNTIME_DIR/galley` or
/// `/tmp/galley-UID`. Created with mode 0700 and refused unless it is ours and private: anyone
/// who can reach a control socket can run commands on that host.
pub fn control_dir() -> Result<PathBuf, Failure> {
    let dir = if let Some(dir) = std::env::var_os("GALLEY_CONTROL_DIR").filter(|d| !d.is_empty()) {
        PathBuf::from(dir)
    } else if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        PathBuf::from(runtime).join("galley")
    } else {
        PathBuf::from(format!("/tmp/galley-{}", nix::unistd::getuid()))
    };
    let problem = |what: String| Failure::Other {
        message: format!(
            "cannot use {} for ssh control sockets: {what}",
            dir.display()
        ),
        help: "set GALLEY_CONTROL_DIR to a private folder (mode 0700) with a short path".into(),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| problem(e.to_string()))?;
    let meta = std::fs::metadata(&dir).map_err(|e| problem(e.to_string()))?;
    if meta.uid() != nix::unistd::getuid().as_raw() {
        return Err(problem("it belongs to another user".into()));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| problem(e.to_string()))?;
    }
    Ok(dir)
}

/// Whether `path`, a socket in the control folder, is a master's control socket rather than the
/// local end of a forward through one (`NAME.x`, tunnels), which does not speak the mux protocol.
pub fn is_control_socket(path: &Path) -> bool {
    path.extension().is_none()
}

/// FNV-1a: a hash that stays the same across builds, so a new Galley finds the old sockets.
pub(super) fn stable_hash(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The control socket for a destination and the options that shape its connection; short,
/// because socket paths over ~107 bytes fail. A connection that does not persist belongs to
/// this run alone, so that closing it can never cut off another run's commands.
fn socket_path(dir: &Path, dest: &Destination, opts: &MasterOptions) -> PathBuf {
    let port = dest.port.map(|p| p.to_string()).unwrap_or_default();
    let jump = opts.jump.join(",");
    let hash = stable_hash(&[
        dest.user.as_deref().unwrap_or(""),
        &dest.host,
        &port,
        opts.identity.as_deref().unwrap_or(""),
        opts.known_hosts_file.as_deref().unwrap_or(""),
        &jump,
        if opts.sudo { "sudo" } else { "" },
    ]);
    match opts.persist {
        Some(_) => dir.join(format!("{hash:016x}")),
        None => dir.join(format!("{hash:016x}-{}", std::process::id())),
    }
}

/// The `known_hosts` files that a new connection with `opts` checks the host key against.
fn known_hosts_files(opts: &MasterOptions) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"]
        .map(PathBuf::from)
        .to_vec();
    match &opts.known_hosts_file {
        Some(file) => files.push(PathBuf::from(file)),
        None => {
            if let Some(home) = std::env::var_os("HOME") {
                let ssh = Path::new(&home).join(".ssh");
                files.extend([ssh.join("known_hosts"), ssh.join("known_hosts2")]);
            }
        }
    }
    files
}

/// A digest of what those files say now (a missing file counts as empty).
fn known_hosts_digest(opts: &MasterOptions) -> String {
    let contents: Vec<String> = known_hosts_files(opts)
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect();
    let parts: Vec<&str> = contents.iter().map(String::as_str).collect();
    format!("{:016x}", stable_hash(&parts))
}

/// Where a kept master records the `known_hosts` digest it was verified against.
fn digest_path(socket: &Path) -> PathBuf {
    socket.with_extension("known")
}

/// The control socket `open` uses for this destination and these options.
pub fn socket_for(dest: &Destination, opts: &MasterOptions) -> Result<PathBuf, Failure> {
    Ok(socket_path(&control_dir()?, dest, opts))
}

/// The ssh config for connections through jump hosts: the identity, `known_hosts` and checking
/// mode apply to the jump hosts too, and the user's and the system's own config still follow.
fn jump_config(opts: &MasterOptions) -> String {
    let mut lines = vec![
        "Host *".to_string(),
        "  BatchMode yes".into(),
        format!(
            "  StrictHostKeyChecking {}",
            if opts.accept_new { "accept-new" } else { "yes" }
        ),
        format!("  ConnectTimeout {}", opts.connect_timeout.as_secs().max(1)),
    ];
    if let Some(identity) = &opts.identity {
        lines.push(format!("  IdentityFile \"{identity}\""));
        lines.push("  IdentitiesOnly yes".into());
    }
    if let Some(file) = &opts.known_hosts_file {
        lines.push(format!("  UserKnownHostsFile \"{file}\""));
    }
    lines.push("  Include ~/.ssh/config".into());
    lines.push("  Include /etc/ssh/ssh_config".into());
    lines.join("\n") + "\n"
}

/// The `ssh` argv that starts a master in the background once it is connected and authenticated.
fn master_argv(dest: &Destination, opts: &MasterOptions, socket: &Path, log: &Path) -> Vec<String> {
    let persist = match opts.persist {
        Some(idle) => format!("ControlPersist={}s", idle.as_secs().max(1)),
        // Until the run ends and closes it explicitly.
        None => "ControlPersist=yes".into(),
    };
    let mut argv: Vec<String> = vec![
        "ssh".into(),
        "-M".into(),
        "-f".into(),
        "-N".into(),
        "-S".into(),
        socket.to_string_lossy().into(),
        "-E".into(),
        log.to_string_lossy().into(),
        "-o".into(),
        persist,
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        format!(
            "StrictHostKeyChecking={}",
            if opts.accept_new { "accept-new" } else { "yes" }
        ),
        "-o".into(),
        format!("ConnectTimeout={}", opts.connect_timeout.as_secs().max(1)),
        "-o".into(),
        "ServerAliveInterval=15".into(),
        "-o".into(),
        "ServerAliveCountMax=3".into(),
    ];
    if let Some(port) = dest.port {
        argv.extend(["-p".into(), port.to_string()]);
    }
    if let Some(user) = &dest.user {
        argv.extend(["-l".into(), user.clone()]);
    }
    if let Some(identity) = &opts.identity {
        argv.extend([
            "-i".into(),
            identity.clone(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
        ]);
    }
    if let Some(file) = &opts.known_hosts_file {
        argv.extend(["-o".into(), format!("UserKnownHostsFile={file}")]);
    }
    if !opts.jump.is_empty() {
        // ssh hands `-F FILE` (and nothing else) on to the connections to the jump hosts.
        argv.extend([
            "-F".into(),
            socket.with_extension("config").to_string_lossy().into(),
            "-J".into(),
            opts.jump.join(","),
        ]);
    }
    // `--` so that a host name can never be taken for an option.
    argv.extend(["--".into(), dest.host.clone()]);
    argv
}

/// Sends a control command (`-O exit`, `-O cancel -L ...`) to the master behind `socket`, with
/// plain `ssh` so that it works without the runtime; true when the master accepted it.
pub fn control(socket: &Path, args: &[&str]) -> bool {
    std::process::Command::new("ssh")
        .arg("-S")
        .arg(socket)
        .args(args)
        .arg("none")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Resumes the master a previous run left for this destination, or launches a new one.
pub fn open(
    ctx: &Ctx,
    name: &str,
    dest: &Destination,
    opts: &MasterOptions,
    socket: PathBuf,
) -> Result<Master, Failure> {
    let log = socket.with_extension("log");
    // One launcher at a time per socket: two runs that start together share one master.
    let lock_file = File::create(socket.with_extension("lock")).map_err(|e| Failure::Io {
        host: "local".into(),
        operation: "create".into(),
        path: socket.with_extension("lock").display().to_string(),
        error: e.to_string(),
    })?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive).map_err(|(_, e)| Failure::Io {
        host: "local".into(),
        operation: "lock".into(),
        path: socket.with_extension("lock").display().to_string(),
        error: e.to_string(),
    })?;

    if socket.exists() {
        // A kept master checked the host key when it connected, against the known_hosts of
        // that time. If those files changed since (an entry removed or replaced), it is closed
        // and a new connection checks the key again, exactly as a first connection would.
        let verified = std::fs::read_to_string(digest_path(&socket))
            .is_ok_and(|digest| digest == known_hosts_digest(opts));
        let session = Session::resume_mux(socket.clone().into_boxed_path(), None);
        if verified
            && ctx
                .wait("checking the ssh connection", session.check())?
                .is_ok()
        {
            return Ok(Master { session, socket });
        }
        if !verified {
            control(&socket, &["-O", "exit"]);
        }
        // A master that died (host rebooted, persist expired mid-check) leaves its socket behind.
        let _ = std::fs::remove_file(&socket);
    }

    if !opts.jump.is_empty() {
        let config = socket.with_extension("config");
        std::fs::write(&config, jump_config(opts)).map_err(|e| Failure::Io {
            host: "local".into(),
            operation: "write".into(),
            path: config.display().to_string(),
            error: e.to_string(),
        })?;
    }
    let argv = master_argv(dest, opts, &socket, &log);
    let _ = std::fs::remove_file(&log);
    let limit = opts.connect_timeout + Duration::from_secs(10);
    let launch = async {
        let mut child = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        match tokio::time::timeout(limit, child.wait()).await {
            Ok(status) => status.map(Some),
            Err(_) => Ok(None),
        }
    };
    let status = ctx
        .wait(&format!("connecting to {name}"), launch)?
        .map_err(|e| Failure::Spawn {
            host: "local".into(),
            command: "ssh".into(),
            error: format!("cannot run the OpenSSH client: {e}"),
        })?;
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    match status {
        Some(status) if status.success() => {
            // After the connection: with accept-new it may have added the host's key.
            std::fs::write(digest_path(&socket), known_hosts_digest(opts)).map_err(|e| {
                Failure::Io {
                    host: "local".into(),
                    operation: "write".into(),
                    path: digest_path(&socket).display().to_string(),
                    error: e.to_string(),
                }
            })?;
            Ok(Master {
                session: Session::resume_mux(socket.clone().into_boxed_path(), None),
                socket,
            })
        }
        Some(_) => Err(classify(name, dest, opts, &said)),
        None => Err(unreachable(
            name,
            dest,
            opts,
            &format!("no answer within {}s", limit.as_secs()),
        )),
    }
}

fn unreachable(name: &str, dest: &Destination, opts: &MasterOptions, why: &str) -> Failure {
    Failure::Ssh {
        host: name.to_string(),
        problem: SshProblem::Unreachable,
        message: format!(
            "cannot reach {} (connect timeout {}s): {why}",
            dest.address(),
            opts.connect_timeout.as_secs()
        ),
        detail: Vec::new(),
        help: "check that the host is up, that sshd listens on that port, and that no firewall \
               is in the way; raise #{ connect_timeout: \"30s\" } for a slow network"
            .into(),
    }
}

/// Turns what `ssh` wrote to its log into a report that says which of the usual things went wrong.
fn classify(name: &str, dest: &Destination, opts: &MasterOptions, said: &str) -> Failure {
    let said = Said::new(name, dest, opts, said);
    said.host_key_changed()
        .or_else(|| said.host_key_unknown())
        .or_else(|| said.auth_refused())
        .or_else(|| said.unreachable())
        .unwrap_or_else(|| {
            said.failure(
                SshProblem::Other,
                format!("ssh could not connect to {}", dest.address()),
                "ssh's own words are above; `ssh -v` with the same options shows more".into(),
            )
        })
}

/// What a failed `ssh` wrote, and what a report about it names.
struct Said<'a> {
    name: &'a str,
    dest: &'a Destination,
    opts: &'a MasterOptions,
    text: &'a str,
    /// Its last lines, for the report's detail.
    tail: Vec<String>,
    known_hosts: String,
}

impl<'a> Said<'a> {
    fn new(name: &'a str, dest: &'a Destination, opts: &'a MasterOptions, text: &'a str) -> Self {
        let lines: Vec<String> = text
            .lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .filter(|l| !l.trim().is_empty() && !l.starts_with("@@@"))
            .collect();
        Said {
            name,
            dest,
            opts,
            text,
            tail: crate::error::last_lines(&lines.join("\n"), 12),
            known_hosts: opts
                .known_hosts_file
                .clone()
                .unwrap_or_else(|| "~/.ssh/known_hosts".into()),
        }
    }

    fn has(&self, needle: &str) -> bool {
        self.text.contains(needle)
    }

    fn failure(&self, problem: SshProblem, message: String, help: String) -> Failure {
        Failure::Ssh {
            host: self.name.to_string(),
            problem,
            message,
            detail: self.tail.clone(),
            help,
        }
    }

    /// The host sent another key than `known_hosts` has for it.
    fn host_key_changed(&self) -> Option<Failure> {
        if !self.has("REMOTE HOST IDENTIFICATION HAS CHANGED")
            && !self.has("has changed and you have requested")
        {
            return None;
        }
        let address = self.dest.address();
        let fingerprint = self
            .text
            .split_whitespace()
            .find(|w| w.starts_with("SHA256:"))
            .map_or_else(
                || "(not shown)".into(),
                |w| w.trim_end_matches('.').to_string(),
            );
        let offending = self
            .text
            .lines()
            .filter(|l| l.starts_with("Offending"))
            .find_map(|l| {
                l.split_once(" key in ")
                    .map(|(_, at)| at.trim().to_string())
            })
            .unwrap_or_else(|| self.known_hosts.clone());
        let file = offending
            .rsplit_once(':')
            .map_or_else(|| offending.clone(), |(f, _)| f.to_string());
        Some(self.failure(
            SshProblem::HostKeyChanged,
            format!(
                "the host key of {address} has changed: it now sends {fingerprint}, which does \
                 not match {offending}"
            ),
            format!(
                "this is what a man-in-the-middle attack looks like, so Galley refuses to connect. \
                 If the server was reinstalled or its key rotated, confirm the new fingerprint with \
                 its administrator, then remove the old key with `ssh-keygen -R '{address}' -f {file}` \
                 and connect once with #{{ known_hosts: \"accept-new\" }}"
            ),
        ))
    }

    /// `known_hosts` has no key for the host.
    fn host_key_unknown(&self) -> Option<Failure> {
        if !self.has("host key is known for") && !self.has("Host key verification failed") {
            return None;
        }
        let known_hosts = &self.known_hosts;
        Some(self.failure(
            SshProblem::HostKeyUnknown,
            format!(
                "the host key of {} is not in {known_hosts}",
                self.dest.address()
            ),
            format!(
                "add it after checking its fingerprint: `ssh-keyscan -p {} {} >> {known_hosts}`, \
                 or accept a new host once with #{{ known_hosts: \"accept-new\" }}",
                self.dest.port.unwrap_or(22),
                self.dest.host
            ),
        ))
    }

    /// The host refused every key offered.
    fn auth_refused(&self) -> Option<Failure> {
        if !self.has("Permission denied") && !self.has("Too many authentication failures") {
            return None;
        }
        let tried = match &self.opts.identity {
            Some(identity) => format!("the identity {identity}"),
            None => "ssh's default identities (~/.ssh/id_*) and the agent".into(),
        };
        let user = self
            .dest
            .user
            .clone()
            .unwrap_or_else(|| "(your local user)".into());
        Some(self.failure(
            SshProblem::Auth,
            format!(
                "{} refused to authenticate user {user} with {tried}",
                self.dest.address()
            ),
            "add the public key to that user's ~/.ssh/authorized_keys on the host, or pass the \
             right key with #{ identity: \"~/.ssh/deploy_key\" }"
                .into(),
        ))
    }

    /// The network or the server's port is the problem.
    fn unreachable(&self) -> Option<Failure> {
        const REASONS: &[(&str, &str)] = &[
            (
                "Connection refused",
                "connection refused (is sshd running on that port?)",
            ),
            ("timed out", "the connection timed out"),
            ("No route to host", "no route to host"),
            (
                "Could not resolve hostname",
                "the host name does not resolve",
            ),
            (
                "Name or service not known",
                "the host name does not resolve",
            ),
            ("Network is unreachable", "the network is unreachable"),
            ("Connection reset", "the connection was reset"),
            ("Connection closed", "the server closed the connection"),
        ];
        let (_, why) = REASONS.iter().find(|(needle, _)| self.has(needle))?;
        Some(match unreachable(self.name, self.dest, self.opts, why) {
            Failure::Ssh {
                host,
                problem,
                message,
                help,
                ..
            } => Failure::Ssh {
                host,
                problem,
                message,
                detail: self.tail.clone(),
                help,
            },
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_destinations() {
        let d = Destination::parse("deploy@web1:2222").unwrap();
        assert_eq!(d.user.as_deref(), Some("deploy"));
        assert_eq!(d.host, "web1");
        assert_eq!(d.port, Some(2222));
        assert_eq!(d.address(), "[web1]:2222");
        let d = Destination::parse("web1").unwrap();
        assert_eq!(
            (d.user.clone(), d.port, d.address()),
            (None, None, "web1".into())
        );
        assert_eq!(Destination::parse("[::1]:22").unwrap().host, "::1");
        assert!(Destination::parse("web1:http").is_err());
        assert!(Destination::parse("@web1").is_err());
    }

    #[test]
    fn socket_names_depend_on_every_connection_option() {
        let dest = Destination::parse("root@h:1").unwrap();
        let opts = MasterOptions {
            identity: None,
            known_hosts_file: None,
            accept_new: false,
            jump: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            persist: Some(Duration::from_secs(1)),
            sudo: false,
        };
        let a = socket_path(Path::new("/d"), &dest, &opts);
        let b = socket_path(
            Path::new("/d"),
            &dest,
            &MasterOptions {
                identity: Some("k".into()),
                ..opts.clone()
            },
        );
        assert_ne!(a, b);
        assert_eq!(a, socket_path(Path::new("/d"), &dest, &opts));
        assert!(a.to_string_lossy().len() < 24);
        let private = MasterOptions {
            persist: None,
            ..opts.clone()
        };
        assert!(socket_path(Path::new("/d"), &dest, &private)
            .to_string_lossy()
            .ends_with(&format!("-{}", std::process::id())));
    }
}
