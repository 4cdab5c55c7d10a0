//! Everything Galley prints during a run goes through the `Printer`: one place for the host
//! prefix, colors, JSON lines and secret masking.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::github::Github;
use super::mask::Masker;

/// The version of the JSON event schema (docs/json.md): every event carries it as `"v"`.
pub const JSON_VERSION: u64 = 1;

/// How output is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputMode {
    /// Colors and spinners when stdout is a terminal (and `NO_COLOR` is unset).
    Fancy,
    /// Plain text, no colors, no spinners: for logs and CI.
    Plain,
    /// One JSON object per line: for tools (the events are listed in docs/json.md).
    Json,
    /// GitHub Actions workflow commands: groups, masks, annotations, step summary, outputs.
    Github,
}

impl OutputMode {
    /// The mode asked for, or when none was: `github` inside GitHub Actions, else `fancy`.
    pub fn resolve(asked: Option<OutputMode>) -> OutputMode {
        asked.unwrap_or_else(|| {
            if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
                OutputMode::Github
            } else {
                OutputMode::Fancy
            }
        })
    }
}

/// Which stream of a command a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How one item of a fan-out ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    Interrupted,
    Skipped,
}

impl Outcome {
    /// The outcome as one word.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One line of a fan-out's summary table.
pub struct SummaryRow {
    pub name: String,
    pub outcome: Outcome,
    /// How long it ran; `None` when it never started.
    pub took: Option<Duration>,
    /// Why it failed or was skipped.
    pub note: String,
}

/// A failure report as the printer needs it (`report::Report` is one): its text in each output
/// mode, and what a CI annotation shows.
pub trait Reportable {
    /// The report's text, every secret masked.
    fn render(&self, mode: OutputMode, masker: &Masker) -> String;
    /// The stable code (`galley::...`).
    fn code(&self) -> &str;
    /// The message, unmasked.
    fn message(&self) -> &str;
    /// Where in which recipe file it points: file as named, line, column.
    fn location(&self) -> Option<(String, usize, usize)>;
    /// A warning (`galley check`) rather than an error.
    fn is_warning(&self) -> bool {
        false
    }
}

/// Prints run events; cheap to clone, safe to share between threads.
#[derive(Clone)]
pub struct Printer {
    mode: OutputMode,
    color: bool,
    masker: Masker,
    spinner: Arc<Mutex<Option<ProgressBar>>>,
    /// The run's GitHub Actions state, in `--output github`.
    github: Option<Arc<Github>>,
}

const DIM: &str = "2";
const BOLD: &str = "1";
const RED: &str = "31";
const GREEN: &str = "32";
const YELLOW: &str = "33";
const CYAN: &str = "36";

impl Printer {
    /// A printer for `mode`; colors only on a terminal and never with `NO_COLOR`.
    pub fn new(mode: OutputMode, masker: Masker) -> Self {
        let color = mode == OutputMode::Fancy && colors_wanted();
        Printer {
            mode,
            color,
            masker,
            spinner: Arc::default(),
            github: (mode == OutputMode::Github).then(Arc::default),
        }
    }

    /// The masker that this printer applies to every line.
    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn emit(&self, text: &str) {
        if let Some(github) = &self.github {
            return github.text(&self.masker, text);
        }
        let spinner = self.spinner.lock().expect("spinner lock");
        let write = || {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        };
        match spinner.as_ref() {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    fn emit_json(&self, mut value: serde_json::Value) {
        if let Some(object) = value.as_object_mut() {
            object.insert("v".into(), JSON_VERSION.into());
        }
        let text = self.masker.mask(&value.to_string());
        self.emit(&text);
    }

    /// One line of a command's output, prefixed with its host.
    pub fn line(&self, host: &str, stream: Stream, text: &str) {
        if let Some(github) = &self.github {
            github.saw_host(host);
        }
        if self.mode == OutputMode::Json {
            let stream = if stream == Stream::Stdout {
                "stdout"
            } else {
                "stderr"
            };
            return self.emit_json(serde_json::json!({
                "event": "output", "host": host, "stream": stream, "line": text,
            }));
        }
        let prefix = self.paint(CYAN, &format!("[{}]", escape_control(host)));
        // Output is data: escape sequences from it must not drive the terminal.
        let text = neutralise_terminal(&self.masker.mask(text), self.color);
        let text = if stream == Stream::Stderr {
            self.paint(YELLOW, &text)
        } else {
            text
        };
        self.emit(&format!("{prefix} {text}"));
    }

    /// An action about to run (or, in a dry run, that would run).
    pub fn action(&self, host: &str, action: &str, dry_run: bool) {
        if let Some(github) = &self.github {
            github.saw_host(host);
        }
        if self.mode == OutputMode::Json {
            return self.emit_json(serde_json::json!({
                "event": "action", "host": host, "action": action, "dry_run": dry_run,
            }));
        }
        let prefix = self.paint(CYAN, &format!("[{}]", escape_control(host)));
        let verb = if dry_run { "would" } else { "$" };
        let line = escape_control(&self.masker.mask(&format!("{verb} {action}")));
        self.emit(&format!("{prefix} {}", self.paint(DIM, &line)));
    }

    /// A message from the recipe (`log`, `print`).
    pub fn log(&self, message: &str) {
        if self.mode == OutputMode::Json {
            return self.emit_json(serde_json::json!({ "event": "log", "message": message }));
        }
        // The recipe's own line breaks stay; other control characters are shown escaped.
        let masked = self.masker.mask(message);
        let lines: Vec<String> = masked.split('\n').map(escape_control).collect();
        self.emit(&lines.join("\n"));
    }

    /// A warning that does not stop the run.
    pub fn warn(&self, message: &str) {
        if self.mode == OutputMode::Json {
            return self.emit_json(serde_json::json!({ "event": "warning", "message": message }));
        }
        let label = self.paint(YELLOW, "warning:");
        self.emit(&format!(
            "{label} {}",
            escape_control(&self.masker.mask(message))
        ));
    }

    /// The start of a `step`.
    pub fn step_start(&self, name: &str) {
        if self.mode == OutputMode::Json {
            return self.emit_json(serde_json::json!({ "event": "step_start", "name": name }));
        }
        if let Some(github) = &self.github {
            if github.step_start(&self.masker, name) {
                return;
            }
        }
        let line = escape_control(&self.masker.mask(&format!("==> {name}")));
        self.emit(&self.paint(BOLD, &line));
    }

    /// The end of a `step`, with its duration.
    pub fn step_end(&self, name: &str, took: Duration, ok: bool) {
        let secs = took.as_secs_f64();
        if self.mode == OutputMode::Json {
            return self.emit_json(serde_json::json!({
                "event": "step_end", "name": name, "ok": ok, "seconds": secs,
            }));
        }
        let (mark, code) = if ok { ("ok", GREEN) } else { ("failed", RED) };
        let line = self.masker.mask(&format!(
            "<== {}: {mark} in {secs:.2}s",
            escape_control(name)
        ));
        self.emit(&self.paint(code, &line));
        if let Some(github) = &self.github {
            github.step_end(&self.masker, name, took, ok);
        }
    }

    /// The start of a run (JSON only: the other modes print the recipe's own first lines).
    pub fn run_start(&self, recipe: &str, task: &str, dry_run: bool) {
        if self.mode == OutputMode::Json {
            self.emit_json(serde_json::json!({
                "event": "run_start", "recipe": recipe, "task": task, "dry_run": dry_run,
                "galley": env!("CARGO_PKG_VERSION"),
            }));
        }
    }

    /// A failure report: on stderr, or in `--output github` an annotation and the report
    /// fenced on stdout (its stderr tail came from a host).
    pub fn report(&self, report: &dyn Reportable) {
        let text = report.render(self.mode, &self.masker);
        if self.github.is_none() {
            eprintln!("{text}");
            return;
        }
        self.annotate(report);
        self.emit(text.trim_end());
    }

    /// In `--output github`, the report as an `::error` annotation at its recipe line.
    pub fn annotate(&self, report: &dyn Reportable) {
        if let Some(github) = &self.github {
            let at = report.location();
            let at = at.as_ref().map(|(f, l, c)| (f.as_str(), *l, *c));
            github.error(
                &self.masker,
                report.code(),
                report.message(),
                at,
                report.is_warning(),
            );
        }
    }

    /// An output of the run for later CI steps (`ci::output`): `$GITHUB_OUTPUT` in GitHub
    /// Actions, an event in JSON, a line otherwise.
    pub fn set_output(&self, name: &str, value: &str) {
        match (&self.github, self.mode) {
            (Some(github), _) => github.set_output(name, value),
            (None, OutputMode::Json) => self.emit_json(serde_json::json!({
                "event": "ci_output", "name": name, "value": value,
            })),
            (None, _) => self.emit(&self.masker.mask(&format!("output {name}={value}"))),
        }
    }

    /// An output Galley knows itself (the version a deploy put in place): in `--output github`
    /// only, and only when the recipe does not set the same name with `ci::output`.
    pub fn default_output(&self, name: &str, value: &str) {
        if let Some(github) = &self.github {
            github.default_output(name, value);
        }
    }

    /// A step that `cache::step` skipped because its inputs did not change.
    pub fn cached(&self, host: &str, name: &str) {
        if self.mode == OutputMode::Json {
            return self.emit_json(serde_json::json!({
                "event": "cached", "host": host, "name": name,
            }));
        }
        let prefix = self.paint(CYAN, &format!("[{host}]"));
        let line = self
            .masker
            .mask(&format!("cached: {name} (inputs unchanged)"));
        self.emit(&format!("{prefix} {}", self.paint(GREEN, &line)));
    }

    /// What an action would change in a file on a host (`--dry-run --diff`): a unified diff.
    pub fn diff(&self, host: &str, path: &str, diff: &str) {
        if self.mode == OutputMode::Json {
            return self.emit_json(serde_json::json!({
                "event": "diff", "host": host, "path": path, "diff": diff,
            }));
        }
        let prefix = self.paint(CYAN, &format!("[{host}]"));
        let lines: Vec<String> = self
            .masker
            .mask(diff)
            .lines()
            .map(|line| {
                let line = match line.chars().next() {
                    Some('+') if !line.starts_with("+++") => self.paint(GREEN, line),
                    Some('-') if !line.starts_with("---") => self.paint(RED, line),
                    _ => line.to_string(),
                };
                format!("{prefix} {line}")
            })
            .collect();
        self.emit(&lines.join("\n"));
    }

    /// A line from `galley watch` itself (what changed, what it does next).
    pub fn watch(&self, message: &str) {
        if self.mode == OutputMode::Json {
            return self.emit_json(serde_json::json!({ "event": "watch", "message": message }));
        }
        self.emit(&self.masker.mask(&format!("[watch] {message}")));
    }

    /// Clears the terminal (`galley watch --clear`, before each run); JSON lines are never
    /// cleared.
    pub fn clear(&self) {
        if self.mode != OutputMode::Json {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\x1b[2J\x1b[H");
            let _ = out.flush();
        }
    }

    /// The end of the run's output: in `--output github`, commands back on, the step summary
    /// and the outputs written. `result` is ok, failed or interrupted.
    pub fn close(&self, result: &str) {
        if let Some(github) = &self.github {
            github.finish(&self.masker, result);
        }
    }

    /// The closing line of a run.
    pub fn finished(&self, ok: bool, took: Duration) {
        let secs = took.as_secs_f64();
        if self.mode == OutputMode::Json {
            return self
                .emit_json(serde_json::json!({ "event": "finished", "ok": ok, "seconds": secs }));
        }
        let (text, code) = if ok {
            (format!("done in {secs:.2}s"), GREEN)
        } else {
            (format!("failed after {secs:.2}s"), RED)
        };
        self.emit(&self.paint(code, &text));
    }

    /// The closing line of a run that was cancelled (Ctrl-C, SIGTERM, or a newer change in
    /// watch mode): it did not fail, it was stopped.
    pub fn interrupted(&self, took: Duration) {
        let secs = took.as_secs_f64();
        if self.mode == OutputMode::Json {
            return self.emit_json(serde_json::json!({
                "event": "finished", "ok": false, "interrupted": true, "seconds": secs,
            }));
        }
        self.emit(&self.paint(YELLOW, &format!("interrupted after {secs:.2}s")));
    }

    /// The table at the end of `parallel` or `rolling`: each item's result and duration.
    pub fn summary(&self, title: &str, rows: &[SummaryRow]) {
        if self.mode == OutputMode::Json {
            let rows: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "name": r.name, "result": r.outcome.word(),
                        "seconds": r.took.map(|t| t.as_secs_f64()), "note": r.note,
                    })
                })
                .collect();
            return self
                .emit_json(serde_json::json!({ "event": "summary", "of": title, "rows": rows }));
        }
        if let Some(github) = &self.github {
            github.summary(&self.masker, title, rows);
        }
        let ok = rows.iter().filter(|r| r.outcome == Outcome::Ok).count();
        let width = rows
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(4);
        let mut lines =
            vec![self.paint(BOLD, &format!("{title}: {ok} of {} succeeded", rows.len()))];
        lines.push(format!(
            "  {:width$}  {:11}  {:>8}",
            "host", "result", "time"
        ));
        for row in rows {
            let took = row
                .took
                .map_or_else(|| "-".into(), |t| format!("{:.2}s", t.as_secs_f64()));
            let word = format!("{:11}", row.outcome.word());
            let word = match row.outcome {
                Outcome::Ok => self.paint(GREEN, &word),
                Outcome::Skipped => self.paint(DIM, &word),
                _ => self.paint(RED, &word),
            };
            let mut line = format!("  {:width$}  {word}  {took:>8}", escape_control(&row.name));
            if !row.note.is_empty() {
                line.push_str("  ");
                line.push_str(&escape_control(&row.note));
            }
            lines.push(line);
        }
        self.emit(&self.masker.mask(&lines.join("\n")));
    }

    /// Shows a spinner with `message` on a terminal until the returned guard is dropped.
    pub fn spinner(&self, message: &str) -> SpinnerGuard {
        let mut current = self.spinner.lock().expect("spinner lock");
        // One spinner at a time: with hosts in parallel, the first wait keeps the line.
        if !self.color || current.is_some() {
            return SpinnerGuard { printer: None };
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("template"),
        );
        bar.set_message(self.masker.mask(message));
        bar.enable_steady_tick(Duration::from_millis(100));
        *current = Some(bar);
        SpinnerGuard {
            printer: Some(self.clone()),
        }
    }

    fn set_spinner_message(&self, message: &str) {
        if let Some(bar) = self.spinner.lock().expect("spinner lock").as_ref() {
            bar.set_message(self.masker.mask(message));
        }
    }
}

/// Keeps a spinner on screen; clears it when dropped.
pub struct SpinnerGuard {
    printer: Option<Printer>,
}

impl SpinnerGuard {
    /// Updates the spinner's text (for example the attempt count).
    pub fn update(&self, message: &str) {
        if let Some(printer) = &self.printer {
            printer.set_spinner_message(message);
        }
    }
}

impl Drop for SpinnerGuard {
    fn drop(&mut self) {
        if let Some(printer) = &self.printer {
            if let Some(bar) = printer.spinner.lock().expect("spinner lock").take() {
                bar.finish_and_clear();
            }
        }
    }
}

/// Whether to use colors: stdout is a terminal and `NO_COLOR` is unset or empty.
pub fn colors_wanted() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal()
}

/// Whether `c` can break or rewrite a printed line: control characters (newline, carriage
/// return, escape...) and Unicode's line separators and direction overrides.
fn is_forging(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escaped(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x1b' => out.push_str("\\e"),
        c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// A value (name, path, argument) made safe to print on one line: every control character
/// is written as an escape (`\n`, `\e`, `\x07`...), so a value cannot forge a line.
pub fn escape_control(text: &str) -> String {
    if !text.chars().any(is_forging) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_forging(c) {
            escaped(c, &mut out);
        } else {
            out.push(c);
        }
    }
    out
}

/// A line of a command's output made safe for a terminal: escape sequences and control
/// characters are shown as escapes, except tabs and, when `keep_colors`, SGR color sequences
/// (`ESC [ ... m`), which cannot move the cursor or rewrite what was printed.
pub fn neutralise_terminal(text: &str, keep_colors: bool) -> String {
    if !text.chars().any(|c| c != '\t' && is_forging(c)) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\x1b' && keep_colors {
            if let Some(len) = sgr_len(rest) {
                out.push_str(&rest[..len]);
                rest = &rest[len..];
                continue;
            }
        }
        if c != '\t' && is_forging(c) {
            escaped(c, &mut out);
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The length of the SGR sequence `ESC [ digits;... m` at the start of `text`, if it is one.
fn sgr_len(text: &str) -> Option<usize> {
    let body = text.strip_prefix("\x1b[")?;
    let params = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    (body.as_bytes().get(params) == Some(&b'm')).then_some(2 + params + 1)
}
