//! `--output github`: GitHub Actions workflow commands. One group per top-level step, secrets
//! registered with `::add-mask::` before anything else is printed, everything that is not a
//! Galley command fenced with `::stop-commands::` (host output is untrusted), failures as
//! `::error` annotations, and at the end a step summary and outputs for later steps.
//! The escaping follows actions/toolkit (packages/core/src/command.ts).

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::mask::Masker;
use super::output::{Outcome, SummaryRow};

/// GitHub shows at most this many error annotations per step; the rest go to the summary only.
pub const MAX_ANNOTATIONS: usize = 10;
/// `$GITHUB_STEP_SUMMARY` refuses more than 1 MiB.
pub const SUMMARY_LIMIT: usize = 1024 * 1024;

/// Escapes a command's data: `%`, `\r`, `\n` (`%` first: the runner unescapes it last).
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value: as data, plus `:` and `,` (an unescaped comma drops the annotation).
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// `::error file=..,line=..,col=..,title=Galley: CODE::MESSAGE` (or `::warning ...` when
/// `warning`), escaped; no file when unknown.
pub fn error_command(
    code: &str,
    message: &str,
    at: Option<(&str, usize, usize)>,
    warning: bool,
) -> String {
    let mut props = Vec::new();
    if let Some((file, line, col)) = at {
        props.push(format!(
            "file={}",
            escape_property(&workspace_relative(file))
        ));
        props.push(format!("line={line}"));
        props.push(format!("col={col}"));
    }
    props.push(format!(
        "title={}",
        escape_property(&format!("Galley: {code}"))
    ));
    let level = if warning { "warning" } else { "error" };
    format!("::{level} {}::{}", props.join(","), escape_data(message))
}

/// `file` relative to `$GITHUB_WORKSPACE` (annotations attach only to files in the repository).
fn workspace_relative(file: &str) -> String {
    let Some(workspace) = std::env::var_os("GITHUB_WORKSPACE") else {
        return file.to_string();
    };
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.into());
    match absolute.strip_prefix(&workspace) {
        Ok(relative) => relative.to_string_lossy().into_owned(),
        Err(_) => file.to_string(),
    }
}

/// A random hex token (for stop-commands and output delimiters) that a host cannot guess.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if read.is_err() {
        // No /dev/urandom: the std hasher's random keys, mixed with the time.
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        bytes[..8].copy_from_slice(&hasher.finish().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One finished step, for the summary.
struct StepRow {
    name: String,
    ok: bool,
    took: Duration,
}

/// A host's fan-out result and how long it took, when a fan-out ran on it.
type HostResult = Option<(Outcome, Option<Duration>)>;

#[derive(Default)]
struct State {
    /// How many of the masker's secrets have been registered with `::add-mask::`.
    masked: usize,
    /// Whether `::stop-commands::` is in force.
    fenced: bool,
    /// How many steps are open (only the outermost is a group: groups do not nest).
    depth: usize,
    steps: Vec<StepRow>,
    /// Hosts in the order they first appeared, with their fan-out result when there was one.
    hosts: Vec<(String, HostResult)>,
    annotations: usize,
    /// Errors over the annotation limit, listed in the summary instead.
    overflow: Vec<String>,
    /// Outputs the recipe set with `ci::output`.
    outputs: Vec<(String, String)>,
    /// Outputs Galley knows itself (the version a deploy put in place), unless the recipe set them.
    defaults: Vec<(String, String)>,
}

/// The state of one run's GitHub output; shared by every clone of the printer.
pub struct Github {
    token: String,
    started: Instant,
    state: Mutex<State>,
}

impl Default for Github {
    fn default() -> Self {
        Github {
            token: random_token(),
            started: Instant::now(),
            state: Mutex::default(),
        }
    }
}

impl Github {
    fn write(lines: &[String]) {
        let mut out = std::io::stdout().lock();
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }

    /// The `::add-mask::` lines for secrets the masker learnt since the last call (line by line).
    fn new_masks(&self, state: &mut State, masker: &Masker, out: &mut Vec<String>) {
        let secrets = masker.added_since(state.masked);
        state.masked += secrets.len();
        for secret in &secrets {
            for line in secret.lines().filter(|l| !l.trim().is_empty()) {
                self.unfence(state, out);
                out.push(format!("::add-mask::{}", escape_data(line)));
            }
        }
    }

    fn unfence(&self, state: &mut State, out: &mut Vec<String>) {
        if state.fenced {
            out.push(format!("::{}::", self.token));
            state.fenced = false;
        }
    }

    /// Prints `text` (already masked) with workflow commands off: it may come from a host.
    pub fn text(&self, masker: &Masker, text: &str) {
        let mut state = self.state.lock().expect("github lock");
        let mut out = Vec::new();
        self.new_masks(&mut state, masker, &mut out);
        if !state.fenced {
            out.push(format!("::stop-commands::{}", self.token));
            state.fenced = true;
        }
        out.push(text.to_string());
        Self::write(&out);
    }

    /// Prints Galley's own workflow command `line`.
    fn command(&self, state: &mut State, masker: &Masker, line: String) {
        let mut out = Vec::new();
        self.new_masks(state, masker, &mut out);
        self.unfence(state, &mut out);
        out.push(line);
        Self::write(&out);
    }

    /// Notes a host that an action or output line named.
    pub fn saw_host(&self, host: &str) {
        let mut state = self.state.lock().expect("github lock");
        if !state.hosts.iter().any(|(h, _)| h == host) {
            state.hosts.push((host.to_string(), None));
        }
    }

    /// A step starts: a group when no other step is open.
    pub fn step_start(&self, masker: &Masker, name: &str) -> bool {
        let mut state = self.state.lock().expect("github lock");
        state.depth += 1;
        if state.depth > 1 {
            return false;
        }
        let title = escape_data(&masker.mask(name));
        self.command(&mut state, masker, format!("::group::{title}"));
        true
    }

    /// A step ended (its closing line is printed): kept for the summary table, and its group
    /// closed if it was the outermost step.
    pub fn step_end(&self, masker: &Masker, name: &str, took: Duration, ok: bool) {
        let mut state = self.state.lock().expect("github lock");
        state.steps.push(StepRow {
            name: name.to_string(),
            ok,
            took,
        });
        state.depth = state.depth.saturating_sub(1);
        if state.depth == 0 {
            self.command(&mut state, masker, "::endgroup::".into());
        }
    }

    /// An error (or warning) annotation (the first `MAX_ANNOTATIONS`; later ones are listed in
    /// the summary).
    pub fn error(
        &self,
        masker: &Masker,
        code: &str,
        message: &str,
        at: Option<(&str, usize, usize)>,
        warning: bool,
    ) {
        let mut state = self.state.lock().expect("github lock");
        let message = masker.mask(message);
        if state.annotations >= MAX_ANNOTATIONS {
            state.overflow.push(format!("{code}: {message}"));
            return;
        }
        state.annotations += 1;
        self.command(
            &mut state,
            masker,
            error_command(code, &message, at, warning),
        );
    }

    /// The results of a fan-out: each failed item an annotation, each host's result kept.
    pub fn summary(&self, masker: &Masker, title: &str, rows: &[SummaryRow]) {
        {
            let mut state = self.state.lock().expect("github lock");
            for row in rows {
                let result = Some((row.outcome, row.took));
                match state.hosts.iter_mut().find(|(h, _)| *h == row.name) {
                    Some(host) => host.1 = result,
                    None => state.hosts.push((row.name.clone(), result)),
                }
            }
        }
        for row in rows.iter().filter(|r| r.outcome == Outcome::Failed) {
            let message = format!("{title}: {} failed: {}", row.name, row.note);
            self.error(masker, "host_failed", &message, None, false);
        }
    }

    /// Records an output for `$GITHUB_OUTPUT` (the last value of a name wins).
    pub fn set_output(&self, name: &str, value: &str) {
        let mut state = self.state.lock().expect("github lock");
        state.outputs.retain(|(n, _)| n != name);
        state.outputs.push((name.to_string(), value.to_string()));
    }

    /// Records an output that `ci::output` of the same name overrides.
    pub fn default_output(&self, name: &str, value: &str) {
        let mut state = self.state.lock().expect("github lock");
        state.defaults.retain(|(n, _)| n != name);
        state.defaults.push((name.to_string(), value.to_string()));
    }

    /// The outputs for `$GITHUB_OUTPUT`: the recipe's, then the defaults it did not override.
    fn all_outputs(state: &State) -> Vec<(String, String)> {
        let mut outputs = state.outputs.clone();
        for (name, value) in &state.defaults {
            if !outputs.iter().any(|(n, _)| n == name) {
                outputs.push((name.clone(), value.clone()));
            }
        }
        outputs
    }

    /// The end of the run: writes the step summary and the outputs (a file that cannot be
    /// written is a warning), and turns workflow commands back on for what runs after Galley.
    pub fn finish(&self, masker: &Masker, result: &str) {
        let mut state = self.state.lock().expect("github lock");
        let mut warnings = Vec::new();
        if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
            let text = masker.mask(&self.summary_markdown(&state, result));
            if let Err(e) = append(&path, &text, SUMMARY_LIMIT) {
                warnings.push(format!("cannot write GITHUB_STEP_SUMMARY: {e}"));
            }
        }
        if let Some(path) = std::env::var_os("GITHUB_OUTPUT") {
            let mut outputs = vec![("result".to_string(), result.to_string())];
            outputs.extend(Self::all_outputs(&state));
            let text: String = outputs
                .iter()
                .map(|(name, value)| output_line(name, &masker.mask(value)))
                .collect();
            if let Err(e) = append(&path, &text, usize::MAX) {
                warnings.push(format!("cannot write GITHUB_OUTPUT: {e}"));
            }
        }
        let mut out = Vec::new();
        self.new_masks(&mut state, masker, &mut out);
        self.unfence(&mut state, &mut out);
        for warning in warnings {
            out.push(format!(
                "::warning::{}",
                escape_data(&masker.mask(&warning))
            ));
        }
        Self::write(&out);
    }

    fn summary_markdown(&self, state: &State, result: &str) -> String {
        let cell = |text: &str| text.replace('|', "\\|").replace('\n', " ");
        let secs = |d: Duration| format!("{:.2}s", d.as_secs_f64());
        let mark = if result == "ok" { "✅" } else { "❌" };
        let mut md = format!(
            "### {mark} Galley: {result} in {}\n\n",
            secs(self.started.elapsed())
        );
        if !state.hosts.is_empty() {
            md.push_str("| host | result | time |\n| --- | --- | --- |\n");
            for (host, outcome) in &state.hosts {
                let (word, took) = match outcome {
                    Some((o, t)) => (o.word(), t.map_or_else(|| "-".into(), secs)),
                    None => ("ran", "-".into()),
                };
                md.push_str(&format!("| {} | {word} | {took} |\n", cell(host)));
            }
            md.push('\n');
        }
        if !state.steps.is_empty() {
            md.push_str("| step | result | time |\n| --- | --- | --- |\n");
            for step in &state.steps {
                let word = if step.ok { "ok" } else { "failed" };
                md.push_str(&format!(
                    "| {} | {word} | {} |\n",
                    cell(&step.name),
                    secs(step.took)
                ));
            }
            md.push('\n');
        }
        if !state.overflow.is_empty() {
            md.push_str("More errors than GitHub annotates:\n\n");
            for error in &state.overflow {
                md.push_str(&format!("- {}\n", cell(error)));
            }
            md.push('\n');
        }
        for (name, value) in &Self::all_outputs(state) {
            if name == "version" || name == "url" {
                md.push_str(&format!("{name}: `{}`  \n", cell(value)));
            }
        }
        md.push_str(&format!("galley {}\n", env!("CARGO_PKG_VERSION")));
        md
    }
}

/// One `$GITHUB_OUTPUT` entry: `name=value`, or `name<<DELIM` … `DELIM` for multi-line values,
/// with a random delimiter that the value does not contain.
pub fn output_line(name: &str, value: &str) -> String {
    if !value.contains('\n') && !value.contains('\r') {
        return format!("{name}={value}\n");
    }
    let mut delimiter = format!("ghadelimiter_{}", random_token());
    while value.contains(&delimiter) {
        delimiter = format!("ghadelimiter_{}", random_token());
    }
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

/// Appends `text` to the file at `path`, cut so that the file stays within `limit` bytes.
fn append(path: &std::ffi::OsStr, text: &str, limit: usize) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let used = file.metadata()?.len() as usize;
    let room = limit.saturating_sub(used);
    let text = if text.len() > room {
        const CUT: &str = "\n(summary cut: GitHub takes at most 1 MiB)\n";
        let mut end = room.saturating_sub(CUT.len());
        while end > 0 && !text.is_char_boundary(end) {
            end -= 1;
        }
        format!(
            "{}{}",
            &text[..end],
            if room > CUT.len() { CUT } else { "" }
        )
    } else {
        text.to_string()
    };
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    #[test]
    fn escapes_like_the_toolkit() {
        assert_eq!(escape_data("50% a\r\nb"), "50%25 a%0D%0Ab");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
        assert_eq!(
            error_command(
                Code::Usage.as_str(),
                "bad, very\nbad",
                Some(("r,1.rhai", 2, 9)),
                false
            ),
            "::error file=r%2C1.rhai,line=2,col=9,title=Galley%3A galley%3A%3Ausage::bad, very%0Abad"
        );
    }

    #[test]
    fn multi_line_outputs_get_a_delimiter_they_do_not_contain() {
        assert_eq!(output_line("url", "https://x"), "url=https://x\n");
        let text = output_line("notes", "a\nb");
        let delimiter = text
            .lines()
            .next()
            .unwrap()
            .strip_prefix("notes<<")
            .unwrap();
        assert!(delimiter.starts_with("ghadelimiter_"));
        assert_eq!(text, format!("notes<<{delimiter}\na\nb\n{delimiter}\n"));
    }

    #[test]
    fn appends_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        std::fs::write(&path, "x".repeat(90)).unwrap();
        append(path.as_os_str(), &"y".repeat(100), 150).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() <= 150, "{}", text.len());
        assert!(text.ends_with("(summary cut: GitHub takes at most 1 MiB)\n"));
    }
}
