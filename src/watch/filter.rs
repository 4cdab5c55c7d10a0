//! Which changed paths count: not ignored by the `.gitignore`, `.ignore` and `.galleyignore`
//! files of the watched folders and of every folder below them (the deeper file decides, as in
//! git), nor by `--ignore`; never inside `.git`, never Galley's own temp files, its state
//! folder or a path the run itself writes; and matching `--paths` when given.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use globset::{Glob, GlobSet, GlobSetBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

const IGNORE_FILES: [&str; 3] = [".gitignore", ".ignore", ".galleyignore"];

/// The rules for one run of the watcher.
pub struct Filter {
    roots: Vec<PathBuf>,
    /// Each folder's own ignore files, read on first use.
    rules: Mutex<HashMap<PathBuf, Gitignore>>,
    only: Option<GlobSet>,
    ignore: GlobSet,
    /// Always relevant, whatever the rules say: the recipe, its modules and the files it declared.
    always: Vec<PathBuf>,
    /// Paths the runs write (shared with the running run, so known before its writes arrive).
    written: Arc<Mutex<Vec<String>>>,
    /// Galley's state folder (journal, locks, watcher state).
    state: PathBuf,
}

fn globs(patterns: &[String]) -> Result<GlobSet, String> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        set.add(Glob::new(pattern).map_err(|e| format!("{pattern:?}: {e}"))?);
    }
    set.build().map_err(|e| e.to_string())
}

/// The rules of the ignore files in `dir` itself; an error names the bad file.
fn folder_rules(dir: &Path) -> Result<Gitignore, String> {
    let mut builder = GitignoreBuilder::new(dir);
    for name in IGNORE_FILES {
        let file = dir.join(name);
        if file.is_file() {
            if let Some(e) = builder.add(&file) {
                return Err(format!("{}: {e}", file.display()));
            }
        }
    }
    builder.build().map_err(|e| e.to_string())
}

/// Whether `path` is a temp file of Galley's atomic writes (`.galley-XXXXXX`, `.NAME.galley-...`).
fn is_galley_temp(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        n.starts_with(".galley-") || (n.starts_with('.') && n.contains(".galley-"))
    })
}

impl Filter {
    /// Rules for `roots`; `only` and `ignore` are globs relative to the working directory (or
    /// absolute); `written` lists the paths runs write, `state` is Galley's state folder.
    pub fn new(
        roots: &[PathBuf],
        only: &[String],
        ignore: &[String],
        always: Vec<PathBuf>,
        written: Arc<Mutex<Vec<String>>>,
        state: PathBuf,
    ) -> Result<Self, String> {
        let mut rules = HashMap::new();
        for root in roots {
            rules.insert(root.clone(), folder_rules(root)?);
        }
        Ok(Filter {
            roots: roots.to_vec(),
            rules: Mutex::new(rules),
            only: (!only.is_empty()).then(|| globs(only)).transpose()?,
            ignore: globs(ignore)?,
            always,
            written,
            state,
        })
    }

    /// What the ignore files of `dir` say about `path` (inside it): ignored, re-included, or
    /// nothing (None).
    fn decision(&self, dir: &Path, path: &Path, is_dir: bool) -> Option<bool> {
        let mut rules = self.rules.lock().expect("rules lock");
        let rules = rules
            .entry(dir.to_path_buf())
            // A broken nested ignore file counts as empty; the roots' are reported up front.
            .or_insert_with(|| folder_rules(dir).unwrap_or_else(|_| Gitignore::empty()));
        match rules.matched(path, is_dir) {
            Match::Ignore(_) => Some(true),
            Match::Whitelist(_) => Some(false),
            Match::None => None,
        }
    }

    /// Whether the ignore files ignore `path` (under `root`), the way git reads them: a path is
    /// ignored when it or a folder above it is; for each, the deepest ignore file with a rule
    /// that matches decides.
    fn ignored(&self, root: &Path, path: &Path) -> bool {
        let Ok(relative) = path.strip_prefix(root) else {
            return false;
        };
        let mut folders = vec![root.to_path_buf()];
        for part in relative.components() {
            let target = folders.last().expect("a folder").join(part);
            let is_dir = target != path || path.is_dir();
            let decided = folders
                .iter()
                .rev()
                .find_map(|dir| self.decision(dir, &target, is_dir));
            if decided == Some(true) {
                return true;
            }
            folders.push(target);
        }
        false
    }

    /// Whether a run wrote `path`: it is one of the paths written, or inside a folder a run
    /// changes throughout (those end in `/`), unless that folder holds a watched folder (a
    /// checkout of `.` does not mute the project).
    fn written_by_a_run(&self, path: &Path) -> bool {
        let written = self.written.lock().expect("written lock");
        written.iter().any(|w| match w.strip_suffix('/') {
            Some(dir) => {
                path.starts_with(dir) && !self.roots.iter().any(|root| root.starts_with(dir))
            }
            None => path == Path::new(w),
        })
    }

    /// Whether a change of `path` should trigger a run.
    pub fn wants(&self, path: &Path) -> bool {
        if self.always.iter().any(|a| a == path) {
            return true;
        }
        if path.components().any(|c| c.as_os_str() == ".git") || is_galley_temp(path) {
            return false;
        }
        if path.starts_with(&self.state) {
            return false;
        }
        if self.written_by_a_run(path) {
            return false;
        }
        let relative = std::env::current_dir()
            .ok()
            .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
            .unwrap_or_else(|| path.to_path_buf());
        if self.ignore.is_match(&relative) || self.ignore.is_match(path) {
            return false;
        }
        // Only the files themselves count in a folder watched for single files.
        let Some(root) = self
            .roots
            .iter()
            .filter(|root| path.starts_with(root))
            .max_by_key(|root| root.components().count())
        else {
            return false;
        };
        if self.ignored(root, path) {
            return false;
        }
        match &self.only {
            Some(only) => only.is_match(&relative) || only.is_match(path),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_files_and_globs_filter_changes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join(".gitignore"), "target/\n*.log\n").unwrap();
        std::fs::write(root.join(".galleyignore"), "tmp/\n").unwrap();
        let recipe = root.join("deploy.rhai");
        let filter = Filter::new(
            std::slice::from_ref(&root),
            &[],
            &["**/*.bak".into()],
            vec![recipe.clone()],
            Arc::default(),
            root.join("state"),
        )
        .unwrap();
        assert!(filter.wants(&root.join("src/app.py")));
        assert!(!filter.wants(&root.join("target/debug/x")));
        assert!(!filter.wants(&root.join("app.log")));
        assert!(!filter.wants(&root.join("tmp/scratch")));
        assert!(!filter.wants(&root.join("notes.bak")));
        assert!(!filter.wants(&root.join(".git/index")));
        assert!(filter.wants(&recipe));
        let only = Filter::new(
            std::slice::from_ref(&root),
            &[format!("{}/src/**", root.display())],
            &[],
            vec![],
            Arc::default(),
            root.join("state"),
        )
        .unwrap();
        assert!(only.wants(&root.join("src/app.py")));
        assert!(!only.wants(&root.join("README.md")));
    }

    #[test]
    fn nested_ignore_files_temp_files_state_and_written_paths_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join(".gitignore"), "*.log\nbuild/\n").unwrap();
        std::fs::create_dir_all(root.join("web/keep")).unwrap();
        std::fs::write(root.join("web/.gitignore"), "*.tmp\n!important.log\n").unwrap();
        std::fs::write(root.join("web/keep/.gitignore"), "!*.tmp\n").unwrap();
        let written = Arc::new(Mutex::new(vec![
            format!("{}/", root.join("deploy").display()),
            root.join("web/app.pid").display().to_string(),
        ]));
        let filter = Filter::new(
            std::slice::from_ref(&root),
            &[],
            &[],
            vec![],
            written.clone(),
            root.join("state"),
        )
        .unwrap();
        assert!(!filter.wants(&root.join("web/x.tmp")));
        assert!(
            filter.wants(&root.join("web/keep/x.tmp")),
            "the deeper file re-includes"
        );
        assert!(!filter.wants(&root.join("web/app.log")));
        assert!(filter.wants(&root.join("web/important.log")));
        assert!(
            !filter.wants(&root.join("build/important.log")),
            "inside an ignored folder"
        );
        assert!(filter.wants(&root.join("web/app.py")));
        assert!(!filter.wants(&root.join("src/.galley-AbC123")));
        assert!(!filter.wants(&root.join("src/.current.galley-42")));
        assert!(!filter.wants(&root.join("state/journal.jsonl")));
        assert!(!filter.wants(&root.join("deploy/app.pid")));
        assert!(!filter.wants(&root.join("web/app.pid")));
        assert!(filter.wants(&root.join("web/app.pid.old")));
        // Writing into the watched folder itself does not mute it.
        written.lock().unwrap().push(format!("{}/", root.display()));
        assert!(filter.wants(&root.join("web/app.py")));
    }
}
