//! Who listens on a TCP port of a host, from its /proc: the listening sockets' inodes in
//! /proc/net/tcp and tcp6, and the sockets a process tree holds open in /proc/PID/fd.

use super::host::Host;
use crate::exec::Command;

/// What the host's /proc says about a port and a process tree.
#[derive(Debug, PartialEq, Eq)]
pub enum Listener {
    /// The process or one of its descendants holds the listening socket.
    Ours,
    /// Nothing listens on the port.
    Nobody,
    /// Another process holds it.
    Other,
    /// The host does not tell (no /proc, or not readable).
    Unknown,
}

/// The inodes of the sockets listening on `port` in a /proc/net/tcp table.
fn listening_in(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st ... inode (field 9); st 0A is LISTEN.
            let (_, hex_port) = fields.get(1)?.rsplit_once(':')?;
            let listening = fields.get(3) == Some(&"0A")
                && u16::from_str_radix(hex_port, 16).ok() == Some(port);
            listening.then(|| fields.get(9)?.parse().ok()).flatten()
        })
        .collect()
}

/// The socket inodes in `ls -l /proc/PID/fd/` output (`... -> socket:[12345]`).
fn sockets_in(listing: &str) -> Vec<u64> {
    listing
        .lines()
        .filter_map(|line| {
            let rest = line.split("socket:[").nth(1)?;
            rest.split(']').next()?.parse().ok()
        })
        .collect()
}

/// `pid` and its descendants (through /proc/PID/task/PID/children).
fn tree(host: &Host, pid: i64) -> Vec<i64> {
    let mut all = vec![pid];
    let mut next = 0;
    while next < all.len() && all.len() < 4096 {
        let p = all[next];
        next += 1;
        let children = host
            .read_text(&format!("/proc/{p}/task/{p}/children"))
            .unwrap_or_default();
        all.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<i64>().ok()),
        );
    }
    all
}

/// Whether `pid` (or a process it started) is the one listening on `port` of `host`.
pub fn listener(host: &Host, pid: i64, port: u16) -> Listener {
    let tables: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|t| host.read_text(t).ok())
        .collect();
    if tables.is_empty() {
        return Listener::Unknown;
    }
    let listening: Vec<u64> = tables.iter().flat_map(|t| listening_in(t, port)).collect();
    if listening.is_empty() {
        return Listener::Nobody;
    }
    let mut argv = vec!["ls".to_string(), "-l".into()];
    argv.extend(tree(host, pid).iter().map(|p| format!("/proc/{p}/fd/")));
    let Ok(out) = host.probe(Command::new(argv)) else {
        return Listener::Unknown;
    };
    let held = sockets_in(&out.stdout);
    if held.is_empty() && !out.success() {
        // The process may have exited meanwhile: then it holds nothing. Otherwise its fds are
        // not ours to read.
        return match host.exists(&format!("/proc/{pid}/fd")) {
            Ok(false) => Listener::Other,
            _ => Listener::Unknown,
        };
    }
    if listening.iter().any(|inode| held.contains(inode)) {
        Listener::Ours
    } else {
        Listener::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_listening_sockets_and_open_fds() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1\n   1: 0100007F:1F40 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1\n";
        assert_eq!(listening_in(table, 8000), vec![4242]);
        assert!(listening_in(table, 8001).is_empty());
        let listing = "lrwx------ 1 root root 64 Dec  1 10:00 3 -> socket:[4242]\nl-wx------ 1 root root 64 Dec  1 10:00 1 -> /tmp/app.log\n";
        assert_eq!(sockets_in(listing), vec![4242]);
    }
}
