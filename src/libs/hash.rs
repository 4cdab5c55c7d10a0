//! The hash of a library: Go's dirhash "h1", the sha256 of the sorted lines `<sha256 hex>  <path>\n`
//! of every file, in base64. The lines themselves are kept beside each checkout (`SUMS`), so that
//! a file changed in the cache can be named.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Every file under a folder: relative path (with `/`) → contents. A symlink counts as a file
/// whose contents are its target, so that a link cannot point a library outside its checkout.
pub type Files = BTreeMap<String, Vec<u8>>;

/// Reads every file under `root` into memory (libraries are small; a loaded file is then the one
/// that was hashed, with no window to change it in between).
pub fn read_files(root: &Path) -> io::Result<Files> {
    let mut files = Files::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let kind = std::fs::symlink_metadata(&path)?.file_type();
            if kind.is_dir() {
                todo.push(path);
                continue;
            }
            let contents = if kind.is_symlink() {
                std::fs::read_link(&path)?
                    .to_string_lossy()
                    .into_owned()
                    .into_bytes()
            } else {
                std::fs::read(&path)?
            };
            let relative = path
                .strip_prefix(root)
                .map_err(|e| io::Error::other(e.to_string()))?
                .to_string_lossy()
                .replace('\\', "/");
            files.insert(relative, contents);
        }
    }
    Ok(files)
}

/// The hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The summary that `h1` hashes: one `<sha256 hex>  <path>\n` line per file, sorted by path.
pub fn sums(files: &Files) -> String {
    files
        .iter()
        .map(|(path, contents)| format!("{}  {path}\n", sha256_hex(contents)))
        .collect()
}

/// The `h1:` hash of a summary made by `sums`.
pub fn h1(sums: &str) -> String {
    let digest = Sha256::digest(sums.as_bytes());
    format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// How two summaries differ, file by file: `rolling.rhai was changed`, `x.rhai was added`.
pub fn differences(expected: &str, actual: &str) -> Vec<String> {
    let parse = |text: &str| -> BTreeMap<String, String> {
        text.lines()
            .filter_map(|l| l.split_once("  "))
            .map(|(sum, path)| (path.to_string(), sum.to_string()))
            .collect()
    };
    let (expected, actual) = (parse(expected), parse(actual));
    let mut found = Vec::new();
    for (path, sum) in &expected {
        match actual.get(path) {
            None => found.push(format!("{path} was removed")),
            Some(other) if other != sum => found.push(format!("{path} was changed")),
            Some(_) => {}
        }
    }
    found.extend(
        actual
            .keys()
            .filter(|p| !expected.contains_key(*p))
            .map(|p| format!("{p} was added")),
    );
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Files {
        list.iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn h1_is_gos_dirhash() {
        // `echo -n hello > a.rhai; echo -n world > sub/b.rhai` hashed with Go's dirhash.Hash1
        // gives the sha256 of these exact lines, base64-encoded.
        let sums = sums(&files(&[("sub/b.rhai", "world"), ("a.rhai", "hello")]));
        assert_eq!(
            sums,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824  a.rhai\n\
             486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7  sub/b.rhai\n"
        );
        // printf '<the two lines>' | sha256sum | xxd -r -p | base64
        assert_eq!(h1(&sums), "h1:BR6H6LaQh9/JnxBJyjLpzCakrkgwQU8FXXOMjWTwhaU=");
    }

    #[test]
    fn any_change_changes_the_hash() {
        let base = h1(&sums(&files(&[("a.rhai", "x")])));
        assert_ne!(base, h1(&sums(&files(&[("a.rhai", "y")]))));
        assert_ne!(base, h1(&sums(&files(&[("b.rhai", "x")]))));
        assert_ne!(base, h1(&sums(&files(&[("a.rhai", "x"), ("c", "")]))));
    }

    #[test]
    fn names_the_files_that_differ() {
        let old = sums(&files(&[("a.rhai", "1"), ("b.rhai", "2")]));
        let new = sums(&files(&[("a.rhai", "changed"), ("c.rhai", "3")]));
        assert_eq!(
            differences(&old, &new),
            [
                "a.rhai was changed",
                "b.rhai was removed",
                "c.rhai was added"
            ]
        );
    }

    #[test]
    fn reads_a_tree_with_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a.rhai"), "hello").unwrap();
        std::fs::write(dir.path().join("sub/b.rhai"), "world").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        let found = read_files(dir.path()).unwrap();
        assert_eq!(
            found.keys().collect::<Vec<_>>(),
            ["a.rhai", "link", "sub/b.rhai"]
        );
        assert_eq!(found["link"], b"/etc/passwd");
    }
}
