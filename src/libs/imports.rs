//! The resolver's lookup for library imports: `import "team/rolling"` where `team` is a
//! dependency in the importer's `galley.toml`, and the relative imports inside a library. Reads
//! only the lock and the cache, and verifies each library's hash before any of it is used.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::cache::Cache;
use super::hash::Files;
use super::{short, LibError, Locked, Project};
use crate::error::Code;

/// A verified library, held in memory for the run.
struct Library {
    entry: Locked,
    files: Files,
}

/// One module found: (key in `Sources`, name shown in reports, text).
pub type Found = (String, String, String);

/// A folder's project, or why it could not be read (remembered so each import reports it).
type ProjectOf = Result<Option<Arc<Project>>, LibError>;

/// Library lookups for one run.
pub struct Imports {
    cache: Cache,
    /// The project of each importer folder (found by walking up to a `galley.toml`).
    projects: Mutex<HashMap<PathBuf, ProjectOf>>,
    /// Verified libraries by `name @ commit`.
    libraries: Mutex<HashMap<String, Arc<Library>>>,
    /// Each library module's key → its library and its path inside the library.
    modules: Mutex<HashMap<String, (Arc<Library>, String)>>,
    /// `team @ 3f2c9d0` for every library loaded, for the deploy journal.
    used: Arc<Mutex<Vec<String>>>,
}

impl Imports {
    /// Lookups that record the libraries they load into `used`.
    pub fn new(used: Arc<Mutex<Vec<String>>>) -> Self {
        Imports {
            cache: Cache::from_env(),
            projects: Mutex::default(),
            libraries: Mutex::default(),
            modules: Mutex::default(),
            used,
        }
    }

    /// The module `path` imported from `importer`, when it is a library's: `Ok(None)` when the
    /// path is not a library import, so the usual lookup applies.
    pub fn locate(&self, importer: Option<&str>, path: &str) -> Result<Option<Found>, LibError> {
        if path.starts_with("galley/") {
            return Ok(None);
        }
        let inside =
            importer.and_then(|i| self.modules.lock().expect("imports lock").get(i).cloned());
        if let Some((library, from)) = inside {
            // A library imports its own files relative to the importing one (no deps in v1).
            let base = Path::new(&from).parent().unwrap_or(Path::new(""));
            return self.module(&library, normalize(&base.join(path))).map(Some);
        }
        let Some((name, rest)) = path.split_once('/') else {
            return Ok(None);
        };
        let dir = importer
            .map(Path::new)
            .filter(|p| p.is_absolute())
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_default();
        let Some(project) = self.project(&dir)? else {
            return Ok(None);
        };
        if !project.manifest.deps.contains_key(name) {
            return Ok(None);
        }
        let library = self.library(project.locked(name)?)?;
        self.module(&library, normalize(Path::new(rest))).map(Some)
    }

    fn project(&self, dir: &Path) -> Result<Option<Arc<Project>>, LibError> {
        self.projects
            .lock()
            .expect("imports lock")
            .entry(dir.to_path_buf())
            .or_insert_with(|| Project::find(dir).map(|p| p.map(Arc::new)))
            .clone()
    }

    fn library(&self, entry: &Locked) -> Result<Arc<Library>, LibError> {
        let label = entry.label();
        if let Some(found) = self.libraries.lock().expect("imports lock").get(&label) {
            return Ok(found.clone());
        }
        let library = Arc::new(Library {
            entry: entry.clone(),
            files: self.cache.load(entry)?,
        });
        self.libraries
            .lock()
            .expect("imports lock")
            .insert(label.clone(), library.clone());
        if let Ok(mut used) = self.used.lock() {
            used.push(label);
        }
        Ok(library)
    }

    /// The library file `file` (a `.rhai` path relative to the library) as a module.
    fn module(&self, library: &Arc<Library>, file: Option<String>) -> Result<Found, LibError> {
        let entry = &library.entry;
        let wanted = file.map(|f| {
            if f.ends_with(".rhai") {
                f
            } else {
                format!("{f}.rhai")
            }
        });
        let Some((file, text)) = wanted
            .as_ref()
            .and_then(|f| Some((f.clone(), library.files.get(f)?)))
        else {
            let files: Vec<&str> = library
                .files
                .keys()
                .filter(|f| f.ends_with(".rhai"))
                .map(|f| f.trim_end_matches(".rhai"))
                .collect();
            return Err(LibError::new(
                Code::ModuleNotFound,
                format!(
                    "library {} has no module `{}`",
                    entry.label(),
                    wanted.as_deref().unwrap_or("(outside the library)").trim_end_matches(".rhai")
                ),
                format!(
                    "its modules: {}; inside a library, imports are relative to the importing file (v1 libraries use no other libraries)",
                    files.join(", ")
                ),
            ));
        };
        let text = String::from_utf8(text.clone()).map_err(|_| {
            LibError::new(
                Code::ModuleNotFound,
                format!("{file} in library {} is not UTF-8 text", entry.label()),
                "a module is a .rhai text file",
            )
        })?;
        let key = format!(
            "{}/{} @ {}",
            entry.name,
            file.trim_end_matches(".rhai"),
            short(&entry.commit)
        );
        self.modules
            .lock()
            .expect("imports lock")
            .insert(key.clone(), (library.clone(), file));
        Ok((key.clone(), key, text))
    }
}

/// A relative path with `.` and `..` applied, as a `/` path; `None` when it leaves its root.
fn normalize(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths_inside_a_library() {
        assert_eq!(normalize(Path::new("sub/./x")).as_deref(), Some("sub/x"));
        assert_eq!(normalize(Path::new("sub/../x")).as_deref(), Some("x"));
        assert_eq!(normalize(Path::new("../x")), None);
        assert_eq!(normalize(Path::new("/etc/x")), None);
    }
}
