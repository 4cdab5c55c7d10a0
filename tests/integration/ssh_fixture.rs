//! The real-sshd fixture itself: logins and sftp work, and a stopped host is really gone.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::sshd::Fleet;
use crate::support::{alive, all_pids, stat_ids};

#[test]
fn a_fleet_answers_ssh_and_sftp_on_every_host() {
    let fleet = Fleet::start(2);
    assert_ne!(fleet.hosts[0].port, fleet.hosts[1].port);
    assert_eq!(
        fleet.dest(1),
        format!("root@127.0.0.1:{}", fleet.hosts[1].port)
    );
    for i in 0..2 {
        let out = fleet.ssh(i, "echo hi; pwd");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ssh to host {i} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.starts_with("hi\n"), "{stdout}");
    }

    let mut sftp = Command::new("sftp")
        .arg("-i")
        .arg(&fleet.key)
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            fleet.known_hosts.display()
        ))
        .args(["-o", "BatchMode=yes", "-P"])
        .arg(fleet.hosts[0].port.to_string())
        .args(["-b", "-", "root@127.0.0.1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sftp");
    sftp.stdin.take().unwrap().write_all(b"ls /\n").unwrap();
    let out = sftp.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sftp failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let control = fleet.control_dir();
    assert!(control.as_os_str().len() <= 40, "{}", control.display());
    assert!(control.is_dir());
    assert!(fleet.options().contains(&*fleet.key.to_string_lossy()));
}

#[test]
fn a_stopped_host_refuses_connections_and_leaves_no_sshd_behind() {
    let mut fleet = Fleet::start(2);
    let config = fleet.dir.path().join("host1/sshd_config");
    let config = config.to_string_lossy().into_owned();
    // An open session whose sshd children must die with the host.
    let mut session = Command::new("ssh")
        .arg("-i")
        .arg(&fleet.key)
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            fleet.known_hosts.display()
        ))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-p",
        ])
        .arg(fleet.hosts[1].port.to_string())
        .args(["root@127.0.0.1", "echo up; sleep 600"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run ssh");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(session.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "up\n");

    // sshd's per-connection processes (`sshd: root@notty`) and the remote `sleep`, found from the
    // listener; their command lines do not name the config.
    let listener = with_cmdline(&config);
    assert_eq!(listener.len(), 1, "listeners: {listener:?}");
    let mut tree = listener.clone();
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            all_pids()
                .into_iter()
                .filter(|pid| stat_ids(*pid).is_some_and(|(ppid, _, _)| ppid == parent)),
        );
        i += 1;
    }
    assert!(tree.len() >= 3, "sshd tree: {tree:?}");

    let port = fleet.hosts[1].port;
    fleet.hosts[1].stop();

    assert!(!fleet.ssh(1, "true").status.success());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert_eq!(with_cmdline(&config), Vec::<i64>::new());
    let left: Vec<&i64> = tree.iter().filter(|pid| alive(**pid)).collect();
    assert!(
        left.is_empty(),
        "processes of the stopped sshd left: {left:?}"
    );
    // The client's connection ended with the host.
    let status = session.wait().unwrap();
    assert!(!status.success());
    // The other host still answers.
    assert!(fleet.ssh(0, "true").status.success());
}

/// Live processes whose command line contains `text`.
fn with_cmdline(text: &str) -> Vec<i64> {
    all_pids()
        .into_iter()
        .filter(|pid| alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(text))
        })
        .collect()
}
