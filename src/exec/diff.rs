//! Unified diffs for `--dry-run --diff`: what a write would change in a file on a host.

/// The unified diff from `old` (`None`: the file does not exist) to `new`, labelled with
/// `path`; `None` when nothing would change.
pub fn unified(path: &str, old: Option<&str>, new: &str) -> Option<String> {
    if old == Some(new) {
        return None;
    }
    let before = match old {
        Some(_) => path.to_string(),
        None => "/dev/null".to_string(),
    };
    let text = similar::TextDiff::from_lines(old.unwrap_or(""), new)
        .unified_diff()
        .context_radius(3)
        .header(&before, &format!("{path} (after)"))
        .to_string();
    Some(text.trim_end_matches('\n').to_string())
}

/// The diff between two byte contents, or one line saying they differ when either is binary.
pub fn of_bytes(path: &str, old: Option<&[u8]>, new: &[u8]) -> Option<String> {
    if old == Some(new) {
        return None;
    }
    let old_text = old.map(std::str::from_utf8);
    match (old_text, std::str::from_utf8(new)) {
        (None, Ok(new)) => unified(path, None, new),
        (Some(Ok(old)), Ok(new)) => unified(path, Some(old), new),
        _ => Some(format!(
            "Binary content of {path} would change ({} -> {} bytes)",
            old.map_or(0, <[u8]>::len),
            new.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_lines_with_context_and_headers() {
        let diff = unified("/etc/app.conf", Some("a\nb\nc\n"), "a\nB\nc\n").unwrap();
        assert_eq!(
            diff,
            "--- /etc/app.conf\n+++ /etc/app.conf (after)\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c"
        );
        assert_eq!(unified("x", Some("same\n"), "same\n"), None);
    }

    #[test]
    fn a_new_file_comes_from_dev_null_and_binary_is_one_line() {
        let diff = unified("new.txt", None, "hi\n").unwrap();
        assert!(
            diff.starts_with("--- /dev/null\n+++ new.txt (after)\n"),
            "{diff}"
        );
        assert_eq!(
            of_bytes("b.bin", Some(&[0xff, 0]), &[0xfe]).unwrap(),
            "Binary content of b.bin would change (2 -> 1 bytes)"
        );
    }
}
