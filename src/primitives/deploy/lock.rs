//! The deploy lock: one file per app on each host, created with O_EXCL so that exactly one of
//! two deploys that start together gets it. It records who holds it, so the other can say so.

use serde::{Deserialize, Serialize};

use crate::primitives::host::Host;
use crate::report::Failure;

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
}

/// The lock file of `app` on `host`: in the state folder on this machine, under `.galley/locks`
/// in the login folder on an ssh host.
pub fn path(host: &Host, app: &str) -> String {
    if host.is_local() {
        super::journal::state_dir()
            .join("locks")
            .join(format!("{app}.lock"))
            .to_string_lossy()
            .into_owned()
    } else {
        format!(".galley/locks/{app}.lock")
    }
}

/// Takes the lock or fails at once with the holder's details.
pub fn acquire(host: &Host, app: &str) -> Result<(), Failure> {
    let ctx = host.ctx();
    let (since, _) = super::journal::now();
    let holder = Holder {
        app: app.to_string(),
        who: super::journal::who(),
        machine: super::journal::machine(),
        pid: std::process::id(),
        since,
        recipe: ctx.run.recipe.clone(),
        task: ctx.run.task.clone(),
    };
    let text = serde_json::to_string_pretty(&holder).unwrap_or_default();
    let path = path(host, app);
    if ctx.dry_run {
        return Ok(());
    }
    if host.create_new(&path, text.as_bytes())? {
        return Ok(());
    }
    let existing = host.read_text(&path).unwrap_or_default();
    let held: Option<Holder> = serde_json::from_str(&existing).ok();
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
        return Ok(());
    }
    Err(Failure::Locked {
        host: host.name().to_string(),
        app: app.to_string(),
        holder: match held {
            Some(h) => format!(
                "{} (pid {} on {}) since {}, running {}{}",
                h.who,
                h.pid,
                h.machine,
                h.since,
                h.recipe,
                if h.task.is_empty() {
                    String::new()
                } else {
                    format!(" {}", h.task)
                }
            ),
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
    host.perform(crate::exec::Action::Remove {
        path: path(&host, app),
    })
    .map(|_| ())
}
