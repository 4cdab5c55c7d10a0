//! The deploy lock: one file per app in each host's state folder, created whole and atomically
//! (write, then link) so that exactly one of two deploys that start together gets it. It records
//! who holds it, so the other can say so, and which run: a run that meets its own lock (two hosts
//! that share a state folder) goes on, while any other run is refused.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::Failure;
use crate::primitives::host::Host;

/// What a lock file says.
#[derive(Debug, Serialize, Deserialize)]
pub struct Holder {
    pub app: String,
    pub who: String,
    pub machine: String,
    pub pid: u32,
    pub since: String,
    pub recipe: String,
    pub task: String,
    /// Which run holds it (machine, pid and start time): unique to one `galley` process.
    #[serde(default)]
    pub run: String,
}

impl Holder {
    /// The holder in one line, for reports and the journal.
    pub fn describe(&self) -> String {
        format!(
            "{} (pid {} on {}) since {}, running {}{}",
            self.who,
            self.pid,
            self.machine,
            self.since,
            self.recipe,
            if self.task.is_empty() {
                String::new()
            } else {
                format!(" {}", self.task)
            }
        )
    }
}

/// How a lock was got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// This run created the lock file: it removes it at the end.
    Created,
    /// The file was already this run's (another host shares the folder): the creator removes it.
    AlreadyOurs,
}

/// This process's run id.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        format!(
            "{}:{}:{started}",
            super::journal::machine(),
            std::process::id()
        )
    })
}

/// The lock file of `app` on `host`, in the host's state folder.
pub fn path(host: &Host, app: &str) -> Result<String, Failure> {
    Ok(format!("{}/locks/{app}.lock", host.state_dir()?))
}

/// Takes the lock or fails at once with the holder's details.
pub fn acquire(host: &Host, app: &str) -> Result<Taken, Failure> {
    let ctx = host.ctx();
    if ctx.dry_run {
        return Ok(Taken::Created);
    }
    let (since, _) = super::journal::now();
    let holder = Holder {
        app: app.to_string(),
        who: super::journal::who(),
        machine: super::journal::machine(),
        pid: std::process::id(),
        since,
        recipe: ctx.run.recipe.clone(),
        task: ctx.run.task.clone(),
        run: run_id().to_string(),
    };
    let text = serde_json::to_string_pretty(&holder).unwrap_or_default();
    let path = path(host, app)?;
    if host.create_new(&path, text.as_bytes())? {
        return Ok(Taken::Created);
    }
    let existing = host.read_text(&path).unwrap_or_default();
    let held: Option<Holder> = serde_json::from_str(&existing).ok();
    if held.as_ref().is_some_and(|h| h.run == holder.run) {
        return Ok(Taken::AlreadyOurs);
    }
    // A holder on this machine whose process is gone was killed: its lock is stale.
    let stale = held.as_ref().is_some_and(|h| {
        h.machine == holder.machine && !std::path::Path::new(&format!("/proc/{}", h.pid)).exists()
    });
    if ctx.run.force_unlock {
        ctx.printer.warn(&format!(
            "--force-unlock: taking the lock of {app} on {} from {}",
            host.name(),
            existing.split_whitespace().collect::<Vec<_>>().join(" ")
        ));
        host.write(&path, text.as_bytes(), None)?;
        return Ok(Taken::Created);
    }
    Err(Failure::Locked {
        host: host.name().to_string(),
        app: app.to_string(),
        holder: match held {
            Some(h) => h.describe(),
            None => format!("unreadable lock file {path}"),
        },
        stale,
    })
}

/// Releases the lock, even after Ctrl-C.
pub fn release(host: &Host, app: &str) -> Result<(), Failure> {
    if host.ctx().dry_run {
        return Ok(());
    }
    let host = host.uncancelled();
    let path = path(&host, app)?;
    host.perform(crate::exec::Action::Remove { path })
        .map(|_| ())
}

/// Removes the lock of `app` on `host` whoever holds it (`galley unlock`); what the lock file
/// said, if there was one.
pub fn clear(host: &Host, app: &str) -> Result<Option<String>, Failure> {
    let path = path(host, app)?;
    if !host.exists(&path)? {
        return Ok(None);
    }
    let text = host.read_text(&path)?;
    host.perform(crate::exec::Action::Remove { path })?;
    Ok(Some(text.trim_end().to_string()))
}
