//! The push trigger: poll a remote's branches, and when a branch that matches gets a new commit
//! that changes a matching path, say so. What was seen survives restarts (a state file), so a
//! commit is deployed once, and a failed deploy is not retried until a newer commit arrives.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use globset::GlobMatcher;
use serde::{Deserialize, Serialize};

use crate::primitives::validate;

/// What the watcher remembers per branch.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Seen {
    pub sha: String,
    /// "ok", "failed", "skipped" (no matching path) or "baseline" (there when watching began).
    pub result: String,
}

/// A commit to deploy.
pub struct Push {
    pub branch: String,
    pub sha: String,
    pub changed: Vec<String>,
}

/// A remote being polled.
pub struct Poller {
    remote: String,
    branch: GlobMatcher,
    paths: Vec<GlobMatcher>,
    dir: PathBuf,
    pub seen: BTreeMap<String, Seen>,
}

fn git(args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`git {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Poller {
    /// A poller of `remote` for branches matching `branch` and paths matching `paths` (any path
    /// when empty); its mirror and state live under `state_dir`.
    pub fn new(
        remote: &str,
        branch: &str,
        paths: &[String],
        state_dir: PathBuf,
    ) -> Result<Self, String> {
        let glob = |p: &str| {
            globset::GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map(|g| g.compile_matcher())
                .map_err(|e| format!("{p:?}: {e}"))
        };
        let key = format!("{:016x}", fnv(remote));
        let dir = state_dir.join("watch").join(key);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let seen = std::fs::read_to_string(dir.join("state.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Ok(Poller {
            remote: remote.to_string(),
            branch: glob(branch)?,
            paths: paths.iter().map(|p| glob(p)).collect::<Result<_, _>>()?,
            dir,
            seen,
        })
    }

    fn mirror(&self) -> PathBuf {
        self.dir.join("mirror.git")
    }

    /// Records `branch` at `sha` with `result`, durably (temp file + rename).
    pub fn record(&mut self, branch: &str, sha: &str, result: &str) -> Result<(), String> {
        self.seen.insert(
            branch.to_string(),
            Seen {
                sha: sha.to_string(),
                result: result.to_string(),
            },
        );
        let text = serde_json::to_string_pretty(&self.seen).map_err(|e| e.to_string())?;
        let tmp = self.dir.join("state.json.tmp");
        std::fs::write(&tmp, text).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, self.dir.join("state.json")).map_err(|e| e.to_string())
    }

    /// The matching branches and their head commits, from `git ls-remote`. A branch whose
    /// name could act as an option (`--orphan=x`) or forge a line, or a head that is not a
    /// sha, is never passed on: a remote's names are input like any other.
    fn heads(&self) -> Result<Vec<(String, String)>, String> {
        let out = git(&["ls-remote", "--heads", &self.remote])?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let (sha, name) = l.split_once('\t')?;
                let branch = name.strip_prefix("refs/heads/")?;
                let usable = validate::git_branch(branch).is_ok()
                    && sha.len() >= 40
                    && sha.chars().all(|c| c.is_ascii_hexdigit());
                (usable && self.branch.is_match(branch))
                    .then(|| (branch.to_string(), sha.to_string()))
            })
            .collect())
    }

    /// The paths `sha` changed since `old` (or in `sha` itself), after fetching into the mirror.
    fn changed(&self, old: Option<&str>, sha: &str) -> Result<Vec<String>, String> {
        let mirror = self.mirror();
        let mirror_s = mirror.to_string_lossy().into_owned();
        if mirror.exists() {
            git(&["-C", &mirror_s, "fetch", "--quiet", "--prune", "origin"])?;
        } else {
            git(&["clone", "--quiet", "--mirror", &self.remote, &mirror_s])?;
        }
        let out = match old {
            Some(old) if git(&["-C", &mirror_s, "cat-file", "-e", old]).is_ok() => {
                git(&["-C", &mirror_s, "diff", "--name-only", old, sha])?
            }
            _ => git(&["-C", &mirror_s, "show", "--name-only", "--format=", sha])?,
        };
        Ok(out
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect())
    }

    /// The next commit to deploy, if any; branches seen for the first time with no state are
    /// recorded as the baseline, not deployed.
    pub fn poll(&mut self, first: bool) -> Result<Option<Push>, String> {
        for (branch, sha) in self.heads()? {
            let old = self.seen.get(&branch).map(|s| s.sha.clone());
            if old.as_deref() == Some(sha.as_str()) {
                continue;
            }
            if old.is_none() && first {
                self.record(&branch, &sha, "baseline")?;
                continue;
            }
            let changed = self.changed(old.as_deref(), &sha)?;
            let wanted = self.paths.is_empty()
                || changed
                    .iter()
                    .any(|c| self.paths.iter().any(|p| p.is_match(c)));
            if !wanted {
                self.record(&branch, &sha, "skipped")?;
                continue;
            }
            return Ok(Some(Push {
                branch,
                sha,
                changed,
            }));
        }
        Ok(None)
    }
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &std::path::Path, args: &[&str]) {
        let ok = Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .status()
            .expect("git runs")
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn a_remote_branch_named_like_an_option_is_never_passed_on() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("origin");
        std::fs::create_dir_all(&repo).unwrap();
        run(&repo, &["init", "-q", "-b", "main"]);
        run(&repo, &["commit", "-q", "--allow-empty", "-m", "one"]);
        // git's porcelain refuses this name, but a remote can hold it.
        run(&repo, &["update-ref", "refs/heads/--orphan=x", "HEAD"]);
        let mut poller =
            Poller::new(&repo.to_string_lossy(), "*", &[], tmp.path().join("state")).unwrap();
        let heads = poller.heads().unwrap();
        assert_eq!(
            heads.iter().map(|(b, _)| b.as_str()).collect::<Vec<_>>(),
            ["main"]
        );
        // The first poll records the baselines; only `main` is there.
        assert!(poller.poll(true).unwrap().is_none());
        assert_eq!(poller.seen.keys().collect::<Vec<_>>(), ["main"]);
    }
}
