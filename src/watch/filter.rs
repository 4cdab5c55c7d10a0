//! Which changed paths count: not ignored by the `.gitignore`, `.ignore` and `.galleyignore` of a
//! watched folder (nor by `--ignore`), never inside `.git`, and matching `--paths` when given.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// The rules for one run of the watcher.
pub struct Filter {
    roots: Vec<(PathBuf, Gitignore)>,
    only: Option<GlobSet>,
    ignore: GlobSet,
    /// Always relevant, whatever the rules say: the recipe, its modules and the files it declared.
    always: Vec<PathBuf>,
}

fn globs(patterns: &[String]) -> Result<GlobSet, String> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        set.add(Glob::new(pattern).map_err(|e| format!("{pattern:?}: {e}"))?);
    }
    set.build().map_err(|e| e.to_string())
}

impl Filter {
    /// Rules for `roots`; `only` and `ignore` are globs relative to the working directory (or
    /// absolute).
    pub fn new(
        roots: &[PathBuf],
        only: &[String],
        ignore: &[String],
        always: Vec<PathBuf>,
    ) -> Result<Self, String> {
        let roots = roots
            .iter()
            .map(|root| {
                let mut builder = GitignoreBuilder::new(root);
                for name in [".gitignore", ".ignore", ".galleyignore"] {
                    let file = root.join(name);
                    if file.is_file() {
                        if let Some(e) = builder.add(&file) {
                            return Err(format!("{}: {e}", file.display()));
                        }
                    }
                }
                let rules = builder.build().map_err(|e| e.to_string())?;
                Ok((root.clone(), rules))
            })
            .collect::<Result<_, String>>()?;
        Ok(Filter {
            roots,
            only: (!only.is_empty()).then(|| globs(only)).transpose()?,
            ignore: globs(ignore)?,
            always,
        })
    }

    /// Whether a change of `path` should trigger a run.
    pub fn wants(&self, path: &Path) -> bool {
        if self.always.iter().any(|a| a == path) {
            return true;
        }
        if path.components().any(|c| c.as_os_str() == ".git") {
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
        if !self.roots.iter().any(|(root, _)| path.starts_with(root)) {
            return false;
        }
        for (root, rules) in &self.roots {
            if path.starts_with(root)
                && rules
                    .matched_path_or_any_parents(path, path.is_dir())
                    .is_ignore()
            {
                return false;
            }
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
        )
        .unwrap();
        assert!(only.wants(&root.join("src/app.py")));
        assert!(!only.wants(&root.join("README.md")));
    }
}
