//! The text of every recipe and module loaded in a run, so reports can underline any of them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Loaded sources by key (the path Rhai knows them by).
#[derive(Clone, Default)]
pub struct Sources {
    inner: Arc<RwLock<HashMap<String, Source>>>,
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

    /// The source recorded under `key`.
    pub fn get(&self, key: &str) -> Option<Source> {
        self.inner.read().expect("sources lock").get(key).cloned()
    }
}
