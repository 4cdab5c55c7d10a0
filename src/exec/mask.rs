//! Secret masking: every line Galley prints passes through a `Masker`.

use std::sync::{Arc, RwLock};

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS, NON_ALPHANUMERIC};

/// Values shorter than this are not masked: masking "a" would garble every line.
const MIN_SECRET_LEN: usize = 3;

/// The url crate's percent-encode sets, each the one before plus a few characters.
const QUERY: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'<').add(b'>');
const PATH: &AsciiSet = &QUERY.add(b'?').add(b'`').add(b'{').add(b'}');
const USERINFO: &AsciiSet = &PATH
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'=')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'|');

/// Where a value is percent-encoded: the url crate's sets for a query, a path and userinfo, and
/// everything but letters and digits (what most encoders do).
const URL_SETS: [&AsciiSet; 4] = [NON_ALPHANUMERIC, QUERY, PATH, USERINFO];

/// `application/x-www-form-urlencoded`, before spaces become `+`.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// Every form in which `value` may be printed: whole, trimmed and each of its lines (a PEM key
/// is printed line by line); each raw, shell-quoted, percent-encoded (a token in a URL) and
/// form-encoded, and each of those as inside a JSON string.
fn forms(value: &str) -> Vec<String> {
    let mut bases = vec![value.to_string(), value.trim().to_string()];
    bases.extend(value.lines().map(|l| l.trim().to_string()));
    let mut forms = Vec::new();
    for base in bases {
        forms.push(base.replace('\'', "'\\''"));
        for set in URL_SETS {
            forms.push(utf8_percent_encode(&base, set).to_string());
        }
        forms.push(
            utf8_percent_encode(&base, FORM)
                .to_string()
                .replace("%20", "+"),
        );
        forms.push(base);
    }
    let json = |text: &str| {
        let quoted = serde_json::to_string(text).unwrap_or_default();
        quoted[1..quoted.len() - 1].to_string()
    };
    let escaped: Vec<String> = forms.iter().map(|f| json(f)).collect();
    forms.extend(escaped);
    forms
}

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
        {
            let mut added = self.added.write().expect("masker lock");
            if !added.iter().any(|a| a == value) {
                added.push(value.to_string());
            }
        }
        let forms = forms(value);
        let mut secrets = self.secrets.write().expect("masker lock");
        for form in forms {
            if form.chars().count() >= MIN_SECRET_LEN && !secrets.contains(&form) {
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
    fn masks_each_line_the_trimmed_and_the_url_encoded_forms() {
        let m = Masker::default();
        m.add("-----BEGIN KEY-----\nAAAAsecretline1\nBBBBsecretline2\n-----END KEY-----\n");
        assert_eq!(m.mask("got BBBBsecretline2 here"), "got *** here");
        assert_eq!(m.mask("[h] -----END KEY-----"), "[h] ***");
        m.add("tok en/+&=x\n");
        assert_eq!(m.mask("tok en/+&=x."), "***.");
        assert_eq!(
            m.mask("http://h/?t=tok%20en%2F%2B%26%3Dx"),
            "http://h/?t=***"
        );
        assert_eq!(m.mask("http://h/?t=tok%20en/+&=x"), "http://h/?t=***");
        assert_eq!(m.mask("t=tok+en%2F%2B%26%3Dx"), "t=***");
    }

    #[test]
    fn masks_the_shell_quoted_and_json_escaped_forms() {
        let m = Masker::default();
        m.add("it's \"x\"");
        assert_eq!(m.mask("echo 'it'\\''s \"x\"'"), "echo '***'");
        assert_eq!(m.mask(r#"{"a":"it's \"x\""}"#), r#"{"a":"***"}"#);
    }
}
