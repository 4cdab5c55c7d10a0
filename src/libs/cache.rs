//! The library cache: `${GALLEY_CACHE:-$XDG_CACHE_HOME/galley}` (or `~/.cache/galley`) holds a
//! bare mirror per repository, `git/<sha256(url)>.git`, and a read-only checkout per commit,
//! `checkouts/<commit>/tree`, with `checkouts/<commit>/SUMS`, the per-file hashes taken when it
//! was made. A mirror is changed only under its lock file; a checkout is made in a temp folder
//! and renamed into place, so concurrent fetches of one cache never see half a checkout.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::{Flock, FlockArg};

use super::hash::{self, Files};
use super::manifest::is_commit;
use super::{short, LibError, Locked};
use crate::error::last_lines;
use crate::error::Code;

/// The cache folder of this machine.
pub struct Cache {
    pub root: PathBuf,
}

impl Cache {
    /// `$GALLEY_CACHE`, `$XDG_CACHE_HOME/galley` or `~/.cache/galley`.
    pub fn from_env() -> Cache {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let root = var("GALLEY_CACHE")
            .map(PathBuf::from)
            .or_else(|| var("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("galley")))
            .unwrap_or_else(|| {
                PathBuf::from(var("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache/galley")
            });
        Cache { root }
    }

    /// The mirror of `url` (not opened).
    pub fn mirror(&self, url: &str) -> Mirror {
        let name = &hash::sha256_hex(url.as_bytes())[..32];
        Mirror {
            url: url.to_string(),
            dir: self.root.join("git").join(format!("{name}.git")),
        }
    }

    /// The folder of a commit's checkout.
    pub fn checkout_dir(&self, commit: &str) -> PathBuf {
        self.root.join("checkouts").join(commit)
    }

    /// The `h1:` hash of the library at `path` in the checkout of `commit` (for the lock).
    pub fn hash(&self, commit: &str, path: &str) -> Result<String, LibError> {
        let dir = self.checkout_dir(commit).join("tree").join(path);
        if !dir.is_dir() {
            return Err(LibError::new(
                Code::LibraryManifest,
                format!("commit {} has no folder `{path}`", short(commit)),
                "check `path` in galley.toml: it is a folder inside the repository",
            ));
        }
        let files = hash::read_files(&dir).map_err(|e| {
            LibError::new(
                Code::LibraryCache,
                format!("cannot read {}: {e}", dir.display()),
                "run `galley fetch` to replace the checkout",
            )
        })?;
        Ok(hash::h1(&hash::sums(&files)))
    }

    /// The files of a locked library, read from its checkout and verified against the lock's
    /// hash. Never touches the network.
    pub fn load(&self, entry: &Locked) -> Result<Files, LibError> {
        let dir = self.checkout_dir(&entry.commit);
        if !dir.join("SUMS").is_file() {
            return Err(LibError::new(
                Code::LibraryNotFetched,
                format!(
                    "library {} is not in the cache ({})",
                    entry.label(),
                    dir.display()
                ),
                "run `galley fetch` (it fills the cache from galley.lock; it needs the network once)",
            ));
        }
        let files = hash::read_files(&dir.join("tree").join(&entry.path)).map_err(|e| {
            LibError::new(
                Code::LibraryTampered,
                format!("cannot read library {} in the cache: {e}", entry.label()),
                "run `galley fetch` to replace the checkout",
            )
        })?;
        let actual = hash::sums(&files);
        if hash::h1(&actual) == entry.hash {
            return Ok(files);
        }
        let recorded = std::fs::read_to_string(dir.join("SUMS")).unwrap_or_default();
        let changed = hash::differences(&subtree(&recorded, &entry.path), &actual);
        let message = match changed.first() {
            Some(first) => format!(
                "library {} in the cache was changed after it was fetched: {first}{}",
                entry.label(),
                match changed.len() {
                    1 => String::new(),
                    n => format!(" (and {} more)", n - 1),
                }
            ),
            None => format!(
                "library {}: its files hash to {}, galley.lock says {}",
                entry.label(),
                hash::h1(&actual),
                entry.hash
            ),
        };
        Err(LibError::new(
            Code::LibraryTampered,
            message,
            format!(
                "nothing from it was run; `galley fetch` replaces the checkout ({}) with a fresh one; if galley.lock was edited by hand, restore it",
                dir.display()
            ),
        )
        .with_details(if changed.len() > 1 { changed } else { Vec::new() }))
    }

    /// Makes the checkout of `commit` from the (open) mirror unless a good one exists; a checkout
    /// whose files changed is replaced.
    pub fn checkout(&self, mirror: &OpenMirror, commit: &str) -> Result<Checkout, LibError> {
        let dir = self.checkout_dir(commit);
        let mut replaced = false;
        if dir.join("SUMS").is_file() {
            let recorded = std::fs::read_to_string(dir.join("SUMS")).unwrap_or_default();
            let intact = hash::read_files(&dir.join("tree"))
                .is_ok_and(|files| hash::sums(&files) == recorded);
            if intact {
                return Ok(Checkout::Cached);
            }
            // Move it aside first: a run reading it sees either the old or the new checkout.
            let aside = self.root.join("checkouts").join(temp_name("bad", commit));
            if std::fs::rename(&dir, &aside).is_ok() {
                remove_tree(&aside);
            }
            replaced = true;
        }
        let parent = self.root.join("checkouts");
        let tmp = parent.join(temp_name("tmp", commit));
        let io = |what: &str, e: std::io::Error| {
            LibError::new(
                Code::LibraryCache,
                format!("cannot {what} in the cache {}: {e}", self.root.display()),
                "check that GALLEY_CACHE (or ~/.cache/galley) is writable",
            )
        };
        std::fs::create_dir_all(tmp.join("tree")).map_err(|e| io("create a checkout", e))?;
        let made = mirror.archive(commit, &tmp.join("tree")).and_then(|()| {
            let files =
                hash::read_files(&tmp.join("tree")).map_err(|e| io("read a checkout", e))?;
            std::fs::write(tmp.join("SUMS"), hash::sums(&files))
                .map_err(|e| io("write SUMS", e))?;
            make_read_only(&tmp).map_err(|e| io("make a checkout read-only", e))
        });
        if let Err(e) = made {
            remove_tree(&tmp);
            return Err(e);
        }
        match std::fs::rename(&tmp, &dir) {
            Ok(()) if replaced => Ok(Checkout::Replaced),
            Ok(()) => Ok(Checkout::Made),
            // Another fetch put the same commit in place first: theirs is as good as ours.
            Err(_) if dir.join("SUMS").is_file() => {
                remove_tree(&tmp);
                Ok(Checkout::Cached)
            }
            Err(e) => {
                remove_tree(&tmp);
                Err(io("put a checkout in place", e))
            }
        }
    }
}

/// What `Cache::checkout` found or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checkout {
    /// A good checkout was there already.
    Cached,
    /// A new checkout was made.
    Made,
    /// The checkout's files had changed; it was replaced by a fresh one.
    Replaced,
}

/// The lines of a `SUMS` text below `path`, relative to it.
fn subtree(sums: &str, path: &str) -> String {
    if path.is_empty() {
        return sums.to_string();
    }
    let prefix = format!("{path}/");
    sums.lines()
        .filter_map(|l| {
            let (sum, file) = l.split_once("  ")?;
            Some(format!("{sum}  {}\n", file.strip_prefix(&prefix)?))
        })
        .collect()
}

/// A name for a temp folder beside the checkouts, unique to this process and moment.
fn temp_name(kind: &str, commit: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(".{kind}-{commit}-{}-{nanos}", std::process::id())
}

/// Makes every file under `dir` read-only, so that an editor warns before changing a checkout.
/// Folders stay writable: `rm -rf` of the cache must keep working without a chmod first.
fn make_read_only(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let kind = std::fs::symlink_metadata(&path)?.file_type();
        if kind.is_dir() {
            make_read_only(&path)?;
        } else if kind.is_file() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444))?;
        }
    }
    Ok(())
}

/// Removes a leftover tree, best effort: nothing the user asked for depends on it.
fn remove_tree(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// A bare mirror of one repository in the cache.
pub struct Mirror {
    pub url: String,
    pub dir: PathBuf,
}

impl Mirror {
    /// Takes the mirror's lock (waiting for another fetch to finish with it) and creates the
    /// mirror if it does not exist yet.
    pub fn open(&self) -> Result<OpenMirror<'_>, LibError> {
        let io = |e: std::io::Error| {
            LibError::new(
                Code::LibraryCache,
                format!("cannot open the mirror {}: {e}", self.dir.display()),
                "check that GALLEY_CACHE (or ~/.cache/galley) is writable",
            )
        };
        let parent = self.dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(io)?;
        let file = File::create(self.dir.with_extension("lock")).map_err(io)?;
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io(e.into()))?;
        let open = OpenMirror {
            mirror: self,
            _lock: lock,
        };
        if !self.dir.join("HEAD").is_file() {
            // Made under a temp name and renamed, so an interrupted init leaves no broken mirror.
            let tmp = parent.join(temp_name("init", "mirror"));
            let tmp_arg = tmp.to_string_lossy().into_owned();
            git(None, &["init", "--quiet", "--bare", "--", &tmp_arg])?;
            std::fs::rename(&tmp, &self.dir).map_err(io)?;
        }
        Ok(open)
    }
}

/// How a rev resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevKind {
    Tag,
    Branch,
    Commit,
}

/// A mirror whose lock this process holds.
pub struct OpenMirror<'a> {
    mirror: &'a Mirror,
    _lock: Flock<File>,
}

impl OpenMirror<'_> {
    fn git(&self, args: &[&str]) -> Result<String, LibError> {
        git(Some(&self.mirror.dir), args)
    }

    /// Fetches every branch and tag from the origin (tags that moved are moved here too: the lock,
    /// not the mirror, is what pins).
    pub fn update(&self) -> Result<(), LibError> {
        self.git(&[
            "fetch",
            "--quiet",
            "--prune",
            "--force",
            "--no-write-fetch-head",
            "--",
            &self.mirror.url,
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
        ])
        .map(drop)
    }

    /// Whether the mirror has this commit.
    pub fn has(&self, commit: &str) -> bool {
        is_commit(commit)
            && self
                .git(&["cat-file", "-e", &format!("{commit}^{{commit}}")])
                .is_ok()
    }

    /// Makes sure the mirror has `commit`, fetching it by id unless `offline`.
    pub fn ensure(&self, commit: &str, offline: bool) -> Result<(), LibError> {
        if self.has(commit) {
            return Ok(());
        }
        if !offline {
            // A commit no branch or tag points at any more can still be fetched by id.
            let _ = self.git(&[
                "fetch",
                "--quiet",
                "--no-write-fetch-head",
                "--",
                &self.mirror.url,
                commit,
            ]);
            if self.has(commit) {
                return Ok(());
            }
        }
        Err(LibError::new(
            Code::LibraryFetch,
            format!(
                "commit {} is not in {}{}",
                short(commit),
                self.mirror.url,
                if offline {
                    " as far as the cache knows"
                } else {
                    ""
                }
            ),
            if offline {
                "run `galley fetch` without --offline, where the repository can be reached"
            } else {
                "it was force-pushed away? `galley update NAME` locks what the rev names now"
            },
        ))
    }

    /// The commit a rev names in the mirror, and what kind of rev it is.
    pub fn resolve(&self, rev: &str) -> Result<(String, RevKind), LibError> {
        if is_commit(rev) {
            return Ok((rev.to_ascii_lowercase(), RevKind::Commit));
        }
        for (prefix, kind) in [
            ("refs/tags/", RevKind::Tag),
            ("refs/heads/", RevKind::Branch),
        ] {
            let spec = format!("{prefix}{rev}^{{commit}}");
            if let Ok(commit) = self.git(&["rev-parse", "--verify", "--quiet", &spec]) {
                return Ok((commit, kind));
            }
        }
        Err(LibError::new(
            Code::LibraryRevNotFound,
            format!(
                "rev `{rev}` is neither a tag nor a branch of {}",
                self.mirror.url
            ),
            format!(
                "check the rev in galley.toml; `git ls-remote {}` lists them",
                self.mirror.url
            ),
        ))
    }

    /// `abc1234 subject` for each commit in `new` that is not in `old`, newest first.
    pub fn log(&self, old: &str, new: &str) -> Vec<String> {
        self.git(&["log", "--format=%h %s", &format!("{old}..{new}")])
            .map(|out| out.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Whether `old` is an ancestor of `new` (an update that only adds commits).
    pub fn is_ancestor(&self, old: &str, new: &str) -> bool {
        self.git(&["merge-base", "--is-ancestor", old, new]).is_ok()
    }

    /// Writes the files of `commit` into `dir` (git archive, so no index or work tree is shared).
    fn archive(&self, commit: &str, dir: &Path) -> Result<(), LibError> {
        let mut child = git_command(Some(&self.mirror.dir))
            .args(["archive", "--format=tar", commit])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(not_started)?;
        let unpacked = match child.stdout.take() {
            Some(out) => tar::Archive::new(out).unpack(dir),
            None => Ok(()),
        };
        let output = child.wait_with_output().map_err(not_started)?;
        if !output.status.success() || unpacked.is_err() {
            let mut detail = last_lines(&String::from_utf8_lossy(&output.stderr), 20);
            detail.extend(unpacked.err().map(|e| e.to_string()));
            return Err(LibError::new(
                Code::LibraryFetch,
                format!("cannot check out {} of {}", short(commit), self.mirror.url),
                "run `galley fetch` again; if it keeps failing, remove the mirror so it is made anew",
            )
            .with_details(detail));
        }
        Ok(())
    }
}

/// `git` with the options every call gets: no `ext::` transport (it runs commands), and the
/// library's own settings never read from the user's working directory.
fn git_command(git_dir: Option<&Path>) -> Command {
    let mut cmd = Command::new("git");
    cmd.args([
        "-c",
        "protocol.ext.allow=never",
        "-c",
        "core.autocrlf=false",
    ])
    .stdin(Stdio::null());
    // A hook or a shell inside another repository may have these set; they would redirect git.
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
    ] {
        cmd.env_remove(var);
    }
    if let Some(dir) = git_dir {
        cmd.arg("--git-dir").arg(dir);
    }
    cmd
}

fn not_started(e: std::io::Error) -> LibError {
    LibError::new(
        Code::LibraryFetch,
        format!("cannot run git: {e}"),
        "install git: libraries are fetched with the system git",
    )
}

/// Runs git with argv (never a shell) and returns its trimmed stdout, or git's words as an error.
fn git(git_dir: Option<&Path>, args: &[&str]) -> Result<String, LibError> {
    let output = git_command(git_dir)
        .args(args)
        .output()
        .map_err(not_started)?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).trim().to_string());
    }
    let what = args
        .iter()
        .take(1)
        .chain(args.iter().skip_while(|a| **a != "--").skip(1).take(1));
    Err(LibError::new(
        Code::LibraryFetch,
        format!("git {} failed", what.copied().collect::<Vec<_>>().join(" ")),
        "check the URL and your access: git uses your ssh keys and agent, ~/.ssh/config, insteadOf and credential helpers; `git ls-remote URL` tries the same",
    )
    .with_details(last_lines(&String::from_utf8_lossy(&output.stderr), 20)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_lines_below_a_path() {
        let sums = "aa  README.md\nbb  recipes/x.rhai\ncc  recipes/sub/y.rhai\n";
        assert_eq!(subtree(sums, "recipes"), "bb  x.rhai\ncc  sub/y.rhai\n");
        assert_eq!(subtree(sums, ""), sums);
    }
}
