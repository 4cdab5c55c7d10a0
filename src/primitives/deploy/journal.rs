//! The deploy journal: one JSON line per deploy, appended with a single write and an fsync, so
//! that a crash leaves the file a list of whole records (a reader skips a line it cannot parse).

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Failure;

/// One deploy, as `galley history` shows it and `galley rollback` reads it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub who: String,
    pub when: String,
    pub recipe: String,
    pub task: String,
    #[serde(default)]
    pub params: Vec<(String, String)>,
    pub app: String,
    pub hosts: Vec<String>,
    pub strategy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// How many replicas a Swarm deploy asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
    /// "ok", "failed", "partial", "`rolled_back`", "interrupted" or "refused" (locked out).
    pub result: String,
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The libraries the recipe loaded, as `team @ 3f2c9d0`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub libraries: Vec<String>,
    /// The hosts (or items) that failed, for a deploy that failed or was `partial`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
    /// The id of the deploy this one rolled back to, for `galley rollback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<String>,
}

impl Record {
    /// This record with every secret in every field (params, sha, image, error...) as `***`.
    pub fn masked(&self, masker: &crate::exec::Masker) -> Record {
        fn mask(value: &mut serde_json::Value, masker: &crate::exec::Masker) {
            match value {
                serde_json::Value::String(text) => *text = masker.mask(text),
                serde_json::Value::Array(items) => items.iter_mut().for_each(|v| mask(v, masker)),
                serde_json::Value::Object(fields) => {
                    fields.values_mut().for_each(|v| mask(v, masker));
                }
                _ => {}
            }
        }
        let Ok(mut value) = serde_json::to_value(self) else {
            return self.clone();
        };
        mask(&mut value, masker);
        serde_json::from_value(value).unwrap_or_else(|_| self.clone())
    }

    /// The version this deploy put in place, as one short text.
    pub fn version(&self) -> String {
        [&self.release, &self.image, &self.sha]
            .into_iter()
            .find_map(std::clone::Clone::clone)
            .unwrap_or_default()
    }
}

/// Galley's state folder on this machine: `$GALLEY_STATE_DIR`, `$XDG_STATE_HOME/galley` or
/// `~/.local/state/galley`.
pub fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("GALLEY_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("galley");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    PathBuf::from(home).join(".local/state/galley")
}

/// The journal file.
pub fn path() -> PathBuf {
    state_dir().join("journal.jsonl")
}

/// Appends one record: one `write` of the whole line, then fsync.
pub fn append(record: &Record) -> std::io::Result<()> {
    let path = path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut line = serde_json::to_string(record).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    file.write_all(line.as_bytes())?;
    file.sync_all()
}

/// Appends `record` to the journal in `host`'s state folder: one `cat >>` of the whole line, which
/// a single write puts in place whole.
pub fn append_on(host: &crate::primitives::host::Host, record: &Record) -> Result<(), Failure> {
    let dir = host.state_dir()?;
    let mut line = serde_json::to_string(record).unwrap_or_default();
    line.push('\n');
    let mut cmd = crate::exec::Command::new([
        "sh",
        "-c",
        r#"mkdir -p -- "$1" && cat >> "$1/journal.jsonl""#,
        "sh",
        &dir,
    ])
    .quiet();
    cmd.stdin = Some(line);
    host.run_checked(cmd).map(|_| ())
}

/// Every record, oldest first, and how many lines could not be read.
pub fn read() -> (Vec<Record>, usize) {
    let text = std::fs::read_to_string(path()).unwrap_or_default();
    let mut records = Vec::new();
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(record) => records.push(record),
            Err(_) => bad += 1,
        }
    }
    (records, bad)
}

/// Who is deploying: the CI's actor when there is one, else the local user, with the machine.
pub fn who() -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    // The account from the password database: $USER may be unset (cron, CI) or say anything.
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| var("USER"))
        .or_else(|| var("LOGNAME"))
        .unwrap_or_else(|| format!("uid {}", nix::unistd::getuid()));
    let account = format!("{user}@{}", machine());
    let actor = var("GALLEY_ACTOR")
        .or_else(|| var("GITHUB_ACTOR").map(|a| format!("{a} (GitHub Actions)")))
        .or_else(|| var("GITLAB_USER_LOGIN").map(|a| format!("{a} (GitLab CI)")));
    match actor {
        Some(actor) => format!("{actor} as {account}"),
        None => account,
    }
}

/// This machine's host name.
pub fn machine() -> String {
    nix::unistd::gethostname()
        .map_or_else(|_| "unknown".into(), |h| h.to_string_lossy().into_owned())
}

/// Now, as RFC 3339 UTC, and a sortable id made from it.
pub fn now() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (days, rest) = (secs.as_secs() / 86_400, secs.as_secs() % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let (hh, mm, ss) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let when = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z");
    let id = format!(
        "{y:04}{m:02}{d:02}-{hh:02}{mm:02}{ss:02}-{:03}{:02}",
        secs.subsec_millis(),
        std::process::id() % 100
    );
    (when, id)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_415), (2025, 11, 23));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
