//! The text of every recipe and module loaded in a run, so reports can underline any of them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Loaded sources by key (the path Rhai knows them by).
#[derive(Clone, Default)]
pub struct Sources {
    inner: Arc<RwLock<HashMap<String, Source>>>,
    /// Which source defines each closure (Rhai reports closures without one).
    closures: Arc<RwLock<HashMap<String, String>>>,
}

/// One loaded source.
#[derive(Clone)]
pub struct Source {
    /// The name printed in reports (a path relative to the working directory where possible).
    pub name: String,
    pub text: String,
}

impl Sources {
    /// Records a source under `key`.
    pub fn add(&self, key: &str, name: &str, text: &str) {
        self.inner.write().expect("sources lock").insert(
            key.to_string(),
            Source {
                name: name.to_string(),
                text: text.to_string(),
            },
        );
    }

    /// Records the source of every closure defined in `ast` (compiled from the source `key`).
    pub fn add_closures(&self, key: &str, ast: &rhai::AST) {
        let mut closures = self.closures.write().expect("sources lock");
        for f in ast.iter_functions().filter(|f| f.name.starts_with("anon$")) {
            closures.insert(f.name.to_string(), key.to_string());
        }
    }

    /// The key of the source that defines the closure `name`.
    pub fn closure_source(&self, name: &str) -> Option<String> {
        self.closures
            .read()
            .expect("sources lock")
            .get(name)
            .cloned()
    }

    /// The keys of every source that is a file on disk (not the embedded stdlib).
    pub fn files(&self) -> Vec<String> {
        self.inner
            .read()
            .expect("sources lock")
            .keys()
            .filter(|k| std::path::Path::new(k).is_file())
            .cloned()
            .collect()
    }

    /// The source recorded under `key`.
    pub fn get(&self, key: &str) -> Option<Source> {
        self.inner.read().expect("sources lock").get(key).cloned()
    }
}
