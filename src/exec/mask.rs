//! Secret masking: every line Galley prints passes through a `Masker`.

use std::sync::{Arc, RwLock};

/// Values shorter than this are not masked: masking "a" would garble every line.
const MIN_SECRET_LEN: usize = 3;

/// The set of secret values known so far; shared by every printer and report.
#[derive(Clone, Default)]
pub struct Masker {
    secrets: Arc<RwLock<Vec<String>>>,
    /// Each secret as it was added, in order (for `::add-mask::` in GitHub Actions).
    added: Arc<RwLock<Vec<String>>>,
}

impl Masker {
    /// Remembers `value` so that it is printed as `***` from now on; false if it is too short to mask.
    pub fn add(&self, value: &str) -> bool {
        if value.chars().count() < MIN_SECRET_LEN {
            return false;
        }
        // The value as printed raw and inside shell quotes, each also as inside a JSON string.
        let json = |text: &str| {
            let quoted = serde_json::to_string(text).unwrap_or_default();
            quoted[1..quoted.len() - 1].to_string()
        };
        {
            let mut added = self.added.write().expect("masker lock");
            if !added.iter().any(|a| a == value) {
                added.push(value.to_string());
            }
        }
        let raw = value.to_string();
        let shell = value.replace('\'', "'\\''");
        let forms = [json(&raw), json(&shell), raw, shell];
        let mut secrets = self.secrets.write().expect("masker lock");
        for form in forms {
            if !secrets.contains(&form) {
                secrets.push(form);
            }
        }
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        true
    }

    /// The secrets added after the first `seen`, in the order they were added.
    pub fn added_since(&self, seen: usize) -> Vec<String> {
        let added = self.added.read().expect("masker lock");
        added[seen.min(added.len())..].to_vec()
    }

    /// Returns `text` with every known secret replaced by `***`.
    pub fn mask(&self, text: &str) -> String {
        let secrets = self.secrets.read().expect("masker lock");
        let mut out = text.to_string();
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence_longest_first() {
        let m = Masker::default();
        assert!(m.add("hunter2"));
        assert!(m.add("hunter2-extra"));
        assert!(!m.add("ab"));
        assert_eq!(m.mask("a hunter2 b hunter2-extra"), "a *** b ***");
        assert_eq!(m.mask("ab"), "ab");
    }

    #[test]
    fn masks_the_shell_quoted_and_json_escaped_forms() {
        let m = Masker::default();
        m.add("it's \"x\"");
        assert_eq!(m.mask("echo 'it'\\''s \"x\"'"), "echo '***'");
        assert_eq!(m.mask(r#"{"a":"it's \"x\""}"#), r#"{"a":"***"}"#);
    }
}
