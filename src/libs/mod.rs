//! Shared recipe libraries pinned from git: `galley.toml` names them, `galley.lock` pins each to
//! a commit and a hash, and the cache holds a bare mirror per repository and a read-only checkout
//! per commit. Runs only read the lock and the cache; `galley lock|update|fetch` use the network.

pub mod cache;
pub mod hash;
pub mod imports;
pub mod lock;
pub mod manifest;

use std::path::{Path, PathBuf};

pub use imports::Imports;
pub use lock::{Locked, Lockfile};
pub use manifest::{Dep, Manifest};

use crate::error::Code;
use crate::error::LibError;

/// The manifest's file name.
pub const MANIFEST: &str = "galley.toml";
/// The lockfile's file name.
pub const LOCKFILE: &str = "galley.lock";

/// The first 7 hex digits of a commit, as reports and the journal show it.
pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(7)]
}

/// A folder with a `galley.toml`, its manifest and (if there is one) its lock.
pub struct Project {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub lock: Option<Lockfile>,
}

impl Project {
    /// The project of `start`: the nearest folder at or above it that has a `galley.toml`.
    pub fn find(start: &Path) -> Result<Option<Project>, LibError> {
        let start = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
        let Some(dir) = start.ancestors().find(|d| d.join(MANIFEST).is_file()) else {
            return Ok(None);
        };
        Project::load(dir).map(Some)
    }

    /// Reads the manifest and the lock of the project in `dir`.
    pub fn load(dir: &Path) -> Result<Project, LibError> {
        let manifest_path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            LibError::new(
                Code::LibraryManifest,
                format!("cannot read {}: {e}", manifest_path.display()),
                "check the file and its permissions",
            )
        })?;
        let manifest = manifest::parse(&text, &manifest_path)?;
        let lock_path = dir.join(LOCKFILE);
        let lock = match std::fs::read_to_string(&lock_path) {
            Ok(text) => Some(lock::parse(&text, &lock_path)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(LibError::new(
                    Code::LibraryLock,
                    format!("cannot read {}: {e}", lock_path.display()),
                    "check the file and its permissions",
                ))
            }
        };
        Ok(Project {
            dir: dir.to_path_buf(),
            manifest,
            lock,
        })
    }

    /// The path of the lockfile.
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(LOCKFILE)
    }

    /// The lock entry of dependency `name`, which must agree with the manifest; otherwise an
    /// error that says to run `galley lock`.
    pub fn locked(&self, name: &str) -> Result<&Locked, LibError> {
        let entry = self
            .lock
            .as_ref()
            .and_then(|l| l.deps.iter().find(|d| d.name == name));
        let (Some(dep), Some(entry)) = (self.manifest.deps.get(name), entry) else {
            return Err(LibError::new(
                Code::LibraryNotLocked,
                format!(
                    "library `{name}` is in {} but not in {}",
                    MANIFEST,
                    self.lock_path().display()
                ),
                "run `galley lock` to pin it to a commit (and commit galley.lock)",
            ));
        };
        match entry.disagreement(dep) {
            None => Ok(entry),
            Some(what) => Err(LibError::new(
                Code::LibraryNotLocked,
                format!("galley.lock is out of date for library `{name}`: {what}"),
                format!("run `galley lock` (or `galley update {name}`) to pin what galley.toml asks for"),
            )),
        }
    }

    /// With `--locked`: an error unless the manifest and the lock list the same libraries with
    /// the same sources.
    pub fn require_in_sync(&self) -> Result<(), LibError> {
        let problems = lock::disagreements(&self.manifest, self.lock.as_ref());
        if problems.is_empty() {
            return Ok(());
        }
        Err(LibError::new(
            Code::LibraryLockMismatch,
            format!("{MANIFEST} and {LOCKFILE} disagree (--locked)"),
            "run `galley lock` where you may change the lock, and commit galley.lock",
        )
        .with_details(problems))
    }
}

/// `galley.toml` and `galley.lock` of the project of `start`, for `galley watch` to watch (the
/// lock may not exist yet: `galley lock` writing it is a change too).
pub fn project_files(start: &Path) -> Vec<String> {
    let start = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
    start
        .ancestors()
        .find(|d| d.join(MANIFEST).is_file())
        .map(|dir| {
            [MANIFEST, LOCKFILE]
                .iter()
                .map(|f| dir.join(f).to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `--locked` holds: the flag, or `CI=true` in the environment.
pub fn locked_mode(flag: bool) -> bool {
    flag || std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}
