//! `galley lock`, `galley update [NAME]` and `galley fetch`: the only commands that reach a
//! library's repository. They resolve revs in the cache's mirrors, make checkouts and write
//! `galley.lock`.

use super::EXIT_OK;
use crate::error::{Code, LibError};

use crate::exec::{Masker, OutputMode};
use crate::libs::cache::{Cache, Checkout, RevKind};
use crate::libs::{self, short, Dep, Locked, Lockfile, Project};
use crate::report::Report;

/// How a lock-changing command was asked to work.
#[derive(Clone, Copy)]
pub struct Mode {
    /// Fail instead of changing galley.lock (`--locked`, or CI=true).
    pub locked: bool,
    /// Use only what the cache has.
    pub offline: bool,
}

/// `galley lock`: pins every library of galley.toml that the lock lacks (or has differently).
pub fn lock(mode: Mode) -> i32 {
    finish(with_project(|project, cache| {
        if mode.locked {
            project.require_in_sync()?;
            println!("galley.lock agrees with galley.toml");
            return Ok(());
        }
        let changed = lock_missing(project, cache, mode.offline)?;
        if !changed {
            println!("galley.lock is up to date");
        }
        Ok(())
    }))
}

/// `galley fetch`: fills the cache with every locked library (locking missing ones first unless
/// `--locked`), refusing a tag that moved since it was locked.
pub fn fetch(mode: Mode) -> i32 {
    finish(with_project(|project, cache| {
        if mode.locked {
            project.require_in_sync()?;
        } else {
            lock_missing(project, cache, mode.offline)?;
        }
        let entries = project.lock.clone().unwrap_or_default().deps;
        for entry in &entries {
            fetch_one(cache, entry, mode.offline)?;
        }
        if entries.is_empty() {
            println!("no libraries in galley.toml");
        }
        Ok(())
    }))
}

/// `galley update [NAME]`: locks what each rev names now, listing the commits in between.
pub fn update(name: Option<&str>, offline: bool) -> i32 {
    finish(with_project(|project, cache| {
        let names: Vec<String> = match name {
            Some(name) if !project.manifest.deps.contains_key(name) => {
                let near =
                    crate::error::suggest(name, project.manifest.deps.keys().map(String::as_str))
                        .map(|n| format!("did you mean `{n}`? "))
                        .unwrap_or_default();
                return Err(LibError::new(
                    Code::Usage,
                    format!("galley.toml has no library `{name}`"),
                    format!(
                        "{near}its libraries: {}",
                        project
                            .manifest
                            .deps
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            Some(name) => vec![name.to_string()],
            None => project.manifest.deps.keys().cloned().collect(),
        };
        let mut lock = project.lock.clone().unwrap_or_else(new_lock);
        for name in &names {
            let dep = &project.manifest.deps[name];
            let new = resolve(cache, name, dep, offline)?;
            let mirror = cache.mirror(&dep.git);
            let open = mirror.open()?;
            match lock.get(name) {
                Some(old) if old.commit == new.commit => {
                    println!("{name}: {} is up to date ({})", short(&new.commit), new.rev);
                }
                Some(old) => {
                    println!(
                        "{name}: {} → {} ({})",
                        short(&old.commit),
                        short(&new.commit),
                        new.rev
                    );
                    let mut log = Vec::new();
                    if open.ensure(&old.commit, offline).is_ok() {
                        log = open.log(&old.commit, &new.commit);
                        if !open.is_ancestor(&old.commit, &new.commit) {
                            println!("  ({} is not in the new history: the rev was rewritten or moved back)", short(&old.commit));
                        }
                    }
                    for line in log {
                        println!("  {line}");
                    }
                }
                None => println!("{name}: locked at {} ({})", short(&new.commit), new.rev),
            }
            lock.put(new);
        }
        lock.deps
            .retain(|d| project.manifest.deps.contains_key(&d.name));
        libs::lock::write(&project.lock_path(), &lock)
    }))
}

fn new_lock() -> Lockfile {
    Lockfile {
        version: libs::lock::VERSION,
        deps: Vec::new(),
    }
}

/// Locks the manifest's libraries that the lock lacks or has differently, drops entries the
/// manifest no longer has, and writes the lock if that changed it. Updates `project.lock`.
fn lock_missing(project: &mut Project, cache: &Cache, offline: bool) -> Result<bool, LibError> {
    let mut lock = project.lock.clone().unwrap_or_else(new_lock);
    for (name, dep) in &project.manifest.deps {
        if lock
            .get(name)
            .is_some_and(|e| e.disagreement(dep).is_none())
        {
            continue;
        }
        let entry = resolve(cache, name, dep, offline)?;
        println!("locked {} ({})", entry.label(), entry.rev);
        lock.put(entry);
    }
    lock.deps
        .retain(|d| project.manifest.deps.contains_key(&d.name));
    let changed = project.lock.as_ref() != Some(&lock);
    if changed {
        libs::lock::write(&project.lock_path(), &lock)?;
    }
    project.lock = Some(lock);
    Ok(changed)
}

/// Resolves a dependency's rev in its (updated) mirror, checks the commit out and hashes it.
fn resolve(cache: &Cache, name: &str, dep: &Dep, offline: bool) -> Result<Locked, LibError> {
    let mirror = cache.mirror(&dep.git);
    let open = mirror.open()?;
    if !offline {
        open.update()?;
    }
    let (commit, kind) = open.resolve(&dep.rev)?;
    open.ensure(&commit, offline)?;
    if kind == RevKind::Branch {
        warn_branch(name, &dep.rev);
    }
    cache.checkout(&open, &commit)?;
    Ok(Locked {
        name: name.to_string(),
        git: dep.git.clone(),
        rev: dep.rev.clone(),
        path: dep.path.clone(),
        hash: cache.hash(&commit, &dep.path)?,
        commit,
    })
}

fn warn_branch(name: &str, rev: &str) {
    eprintln!(
        "warning: library `{name}` follows branch `{rev}`: the lock pins today's commit, `galley update {name}` moves it; a tag or a commit id pins a reviewed version"
    );
}

/// Puts one locked library in the cache, refusing a tag that now names another commit.
fn fetch_one(cache: &Cache, entry: &Locked, offline: bool) -> Result<(), LibError> {
    let mirror = cache.mirror(&entry.git);
    let open = mirror.open()?;
    if !offline {
        open.update()?;
        match open.resolve(&entry.rev) {
            Ok((now, RevKind::Tag)) if now != entry.commit => {
                return Err(LibError::new(
                    Code::LibraryTagMoved,
                    format!(
                        "tag `{}` of library `{}` moved: it was {} when locked, it is {} now",
                        entry.rev,
                        entry.name,
                        short(&entry.commit),
                        short(&now)
                    ),
                    format!(
                        "a released tag should not move; nothing was fetched. If the move is intended, review it and run `galley update {}`",
                        entry.name
                    ),
                ));
            }
            Ok((now, RevKind::Branch)) => {
                warn_branch(&entry.name, &entry.rev);
                if now != entry.commit {
                    println!(
                        "note: branch `{}` of `{}` is at {} now; the lock keeps {} (`galley update {}` moves it)",
                        entry.rev,
                        entry.name,
                        short(&now),
                        short(&entry.commit),
                        entry.name
                    );
                }
            }
            Ok(_) => {}
            Err(_) => eprintln!(
                "warning: rev `{}` of library `{}` no longer names anything in {}; the locked commit {} is used",
                entry.rev,
                entry.name,
                entry.git,
                short(&entry.commit)
            ),
        }
    }
    open.ensure(&entry.commit, offline)?;
    let checkout = cache.checkout(&open, &entry.commit)?;
    cache.load(entry)?;
    match checkout {
        Checkout::Cached => println!("cached  {}", entry.label()),
        Checkout::Made => println!("fetched {}", entry.label()),
        Checkout::Replaced => println!(
            "fetched {} again: its checkout in the cache had been changed",
            entry.label()
        ),
    }
    Ok(())
}

/// Runs `work` on the project of the working directory and the cache.
fn with_project(
    work: impl FnOnce(&mut Project, &Cache) -> Result<(), LibError>,
) -> Result<(), Report> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut project = Project::find(&cwd)
        .map_err(|e| e.report())?
        .ok_or_else(|| {
            Report::plain(
                Code::Usage,
                format!("no {} in {} or any folder above it", libs::MANIFEST, cwd.display()),
                "write one with a [deps] table (see docs/libraries.md); run this command in the project's folder",
            )
        })?;
    work(&mut project, &Cache::from_env()).map_err(|e| e.report())
}

fn finish(result: Result<(), Report>) -> i32 {
    match result {
        Ok(()) => EXIT_OK,
        Err(report) => {
            eprintln!("{}", report.render(OutputMode::Plain, &Masker::default()));
            report.exit().code()
        }
    }
}
