//! Every error becomes a miette report with a labelled span in the recipe (or module) source,
//! and for errors inside functions and modules, the chain of call sites back to the recipe.

pub mod excerpt;

pub mod sources;

use std::fmt;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceSpan};
use rhai::{Engine, EvalAltResult, Position};

use crate::error::{suggest, Code, Exit, Failure, LibError};
use excerpt::Excerpt;
pub use sources::Sources;

use crate::exec::output::{escape_control, Reportable};
use crate::exec::{Masker, OutputMode};

/// A rendered-ready error: message, code, help, an optional span, and the call chain.
#[derive(Debug, Clone)]
pub struct Report {
    code: String,
    exit: Exit,
    message: String,
    help: Option<String>,
    source: Option<Excerpt>,
    label: Option<LabeledSpan>,
    location: Option<(String, usize, usize)>,
    /// Lines shown after the report: the tail of stderr or of a log.
    details: Vec<String>,
    /// The call sites from the failing line back to the recipe, innermost first.
    related: Vec<Report>,
    /// A warning (`galley check`) rather than an error.
    warning: bool,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.code.is_empty()).then(|| Box::new(&self.code) as Box<dyn fmt::Display>)
    }
    fn severity(&self) -> Option<miette::Severity> {
        // Call-site frames are context for the error above them, not errors of their own.
        if self.code.is_empty() {
            Some(miette::Severity::Advice)
        } else if self.warning {
            Some(miette::Severity::Warning)
        } else {
            None
        }
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.label
            .clone()
            .map(|l| Box::new(std::iter::once(l)) as Box<dyn Iterator<Item = LabeledSpan>>)
    }
}

impl Report {
    /// A report with no source location (bad command line, unreadable file...).
    pub fn plain(code: Code, message: impl Into<String>, help: impl Into<String>) -> Self {
        Report::new(
            code.as_str().to_string(),
            code.exit(),
            message.into(),
            help.into(),
        )
    }

    /// The report of a failure, before it points anywhere.
    pub fn failure(failure: &Failure) -> Self {
        let help = failure.help().map(|h| h.to_string()).unwrap_or_default();
        Report::new(
            failure.code_text(),
            failure.exit(),
            failure.to_string(),
            help,
        )
        .with_details(failure.details())
    }

    /// A spot shown under the report (a call site): no code of its own.
    fn frame(message: &str) -> Self {
        Report::new(String::new(), Exit::Failed, message.into(), String::new())
    }

    fn new(code: String, exit: Exit, message: String, help: String) -> Self {
        Report {
            code,
            exit,
            message,
            help: (!help.is_empty()).then_some(help),
            source: None,
            label: None,
            location: None,
            details: Vec::new(),
            related: Vec::new(),
            warning: false,
        }
    }

    /// The same report as a warning: `galley check` prints it and still exits 0.
    pub fn warning(mut self) -> Self {
        self.warning = true;
        self
    }

    /// Adds lines shown after the report.
    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }

    /// A copy with every secret masked in its texts, before any wrapping can split a secret,
    /// and every control character escaped, so a value in a message cannot forge a line.
    fn masked(&self, masker: &Masker) -> Self {
        let clean = |text: &str| escape_control(&masker.mask(text));
        Report {
            message: clean(&self.message),
            help: self.help.as_deref().map(clean),
            details: self.details.iter().map(|d| clean(d)).collect(),
            related: self.related.iter().map(|r| r.masked(masker)).collect(),
            ..self.clone()
        }
    }

    /// Points the report at `pos` in the source `key`, underlined with `label`.
    pub fn at(mut self, sources: &Sources, key: &str, pos: Position, label: &str) -> Self {
        let (Some(source), Some(line)) = (sources.get(key), pos.line()) else {
            return self;
        };
        let column = pos.position().unwrap_or(1);
        let (excerpt, offset, len) = Excerpt::around(&source.name, &source.text, line, column);
        self.label = Some(LabeledSpan::new_with_span(
            Some(label.to_string()),
            SourceSpan::from((offset, len)),
        ));
        self.location = Some((source.name, line, column));
        self.source = Some(excerpt);
        self
    }

    /// Replaces the help line.
    pub fn set_help(&mut self, help: String) {
        self.help = Some(help);
    }

    /// The help line, if any.
    pub fn help(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// How a command that ends with this report exits.
    pub fn exit(&self) -> Exit {
        self.exit
    }

    /// Renders the report as text, with every secret masked.
    pub fn render(&self, mode: OutputMode, masker: &Masker) -> String {
        let this = self.masked(masker);
        if mode == OutputMode::Json {
            let (file, line, column) = this.location.clone().unwrap_or_default();
            let value = serde_json::json!({
                "v": crate::exec::output::JSON_VERSION, "event": if this.warning { "warning" } else { "error" }, "code": this.code, "message": this.message,
                "help": this.help, "details": this.details, "file": file, "line": line, "column": column,
                "called_from": this.related.iter().map(|r| {
                    let (file, line, column) = r.location.clone().unwrap_or_default();
                    serde_json::json!({ "file": file, "line": line, "column": column })
                }).collect::<Vec<_>>(),
            });
            // Texts were masked before encoding; mask again in case escaping made new forms.
            return masker.mask(&value.to_string());
        }
        let theme = if mode == OutputMode::Fancy {
            if crate::exec::output::colors_wanted() {
                GraphicalTheme::unicode()
            } else {
                GraphicalTheme::unicode_nocolor()
            }
        } else {
            GraphicalTheme::none()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .with_context_lines(1);
        let mut out = String::new();
        if handler.render_report(&mut out, &this).is_err() {
            out = format!("error[{}]: {}\n", this.code, this.message);
        }
        if !this.details.is_empty() {
            out.push('\n');
            for line in &this.details {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
        }
        // Each call site as a note of its own, innermost first.
        for frame in &this.related {
            out.push('\n');
            let _ = handler.render_report(&mut out, frame);
        }
        masker.mask(&out)
    }
}

/// Function names and signatures that the engine and the recipe define, for suggestions.
pub struct Known {
    /// `name(params) -> type`, one per overload.
    pub signatures: Vec<String>,
}

impl Known {
    /// Every function the engine knows plus the recipe's own.
    pub fn from(engine: &Engine, ast: Option<&rhai::AST>) -> Self {
        let mut signatures = engine.gen_fn_signatures(true);
        if let Some(ast) = ast {
            signatures.extend(
                ast.iter_functions()
                    .map(|f| format!("{}({})", f.name, f.params.join(", "))),
            );
        }
        Known { signatures }
    }

    fn name_of(signature: &str) -> &str {
        signature.split('(').next().unwrap_or(signature).trim()
    }

    /// The distinct function names.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.signatures.iter().map(|s| Self::name_of(s)).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The signatures of every overload of `name`.
    pub fn overloads(&self, name: &str) -> Vec<&str> {
        let mut found: Vec<&str> = self
            .signatures
            .iter()
            .filter(|s| Self::name_of(s) == name)
            .map(String::as_str)
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }
}

/// What the report needs to know about the run that failed.
pub struct Context<'a> {
    pub sources: &'a Sources,
    /// The key of the recipe file in `sources`.
    pub main: &'a str,
    pub known: &'a Known,
    /// The engine that ran, for the limits it set.
    pub engine: &'a Engine,
}

/// The frame that `in_callers_options` puts around a failure: a real call frame, that of
/// `options::check`.
const CALLERS_OPTIONS: &str = "options::check";

/// The error for a `failure` in the options map that a function written in Rhai was called
/// with (found by `options::check`): its report points at the call of that function, where the
/// map was written, with the check as a note.
pub fn in_callers_options(call: &rhai::NativeCallContext, failure: Failure) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorInFunctionCall(
        CALLERS_OPTIONS.into(),
        call.call_source().unwrap_or_default().into(),
        failure.into_rhai_at(call.call_position()),
        call.call_position(),
    ))
}

/// Turns an error from the engine into a report pointing at the recipe.
pub fn from_rhai(err: &EvalAltResult, cx: &Context) -> Report {
    let walk = Walk {
        frames: Vec::new(),
        key: cx.main.to_string(),
        fanout: None,
        in_call: false,
        checked: None,
    };
    walk.follow(err, cx)
}

/// The way from an error to what failed: the call sites passed, in which source, and the
/// summary of a fan-out it went through.
struct Walk {
    frames: Vec<(String, Position, String)>,
    key: String,
    fanout: Option<String>,
    /// Whether the last frame is a function call (whose options `options::check` may check).
    in_call: bool,
    /// Where `options::check` found a mistake in the options of the last call.
    checked: Option<(String, Position)>,
}

impl Walk {
    /// Follows `err` through its call frames, modules and fan-out items to what failed.
    fn follow(mut self, err: &EvalAltResult, cx: &Context) -> Report {
        let mut current = err;
        loop {
            match current {
                EvalAltResult::ErrorRuntime(value, pos) => {
                    let Some(Failure::Item(item)) = value.clone().try_cast::<Failure>() else {
                        break;
                    };
                    let note = format!("on {}, in this fan-out", item.item);
                    self.frames.push((self.key.clone(), *pos, note));
                    self.fanout = Some(item.summary);
                    self.in_call = false;
                    return self.follow(&item.error, cx);
                }
                EvalAltResult::ErrorInFunctionCall(name, _, inner, pos)
                    if name == CALLERS_OPTIONS =>
                {
                    if self.in_call {
                        self.checked = Some((self.key.clone(), *pos));
                    }
                    current = inner;
                }
                EvalAltResult::ErrorInFunctionCall(name, source, inner, pos) => {
                    if let Some(owner) = cx.sources.closure_source(name) {
                        // A fan-out's item frame already marks this spot.
                        if self.fanout.is_none() || self.frames.last().map(|f| f.1) != Some(*pos) {
                            let note = "in this call of a closure".to_string();
                            self.frames.push((self.key.clone(), *pos, note));
                        }
                        self.key = owner;
                    } else {
                        let note = format!("in this call to `{name}`");
                        self.frames.push((self.key.clone(), *pos, note));
                        if !source.is_empty() {
                            self.key.clone_from(source);
                        }
                    }
                    self.in_call = true;
                    current = inner;
                }
                EvalAltResult::ErrorInModule(path, inner, pos) => {
                    if cx.sources.get(path).is_some() {
                        let note = format!("while loading module `{path}`");
                        self.frames.push((self.key.clone(), *pos, note));
                        self.key.clone_from(path);
                    }
                    self.in_call = false;
                    current = inner;
                }
                _ => break,
            }
        }
        let mut report = innermost(current, cx);
        let mut notes = Vec::new();
        match (self.checked, self.frames.pop()) {
            // The mistake is in the map the call passed: point there, the check is a note.
            (Some((key, pos)), Some((call_key, call_pos, _))) => {
                report = report.at(cx.sources, &call_key, call_pos, "here");
                notes.push(Report::frame("checked here").at(
                    cx.sources,
                    &key,
                    pos,
                    "against this options table",
                ));
            }
            (_, frame) => {
                self.frames.extend(frame);
                report = report.at(cx.sources, &self.key, current.position(), "here");
            }
        }
        if let Some(summary) = self.fanout {
            let help = report.help.take().unwrap_or_default();
            report.help = Some(format!(
                "{summary}; this is the first failure, the table above has the others. {help}"
            ));
        }
        notes.extend(self.frames.into_iter().rev().map(|(key, pos, note)| {
            Report::frame("called from here").at(cx.sources, &key, pos, &note)
        }));
        report.related = notes;
        report
    }
}

fn strip_position(text: &str) -> String {
    match text.rfind(" (line ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text.to_string(),
    }
}

fn innermost(err: &EvalAltResult, cx: &Context) -> Report {
    use EvalAltResult as E;
    match err {
        E::ErrorParsing(kind, _) => Report::plain(
            Code::Syntax,
            format!("syntax error: {kind}"),
            "fix the recipe at the marked spot; `galley check FILE` checks without running",
        ),
        E::ErrorFunctionNotFound(signature, _) => unknown_function(signature, cx.known),
        E::ErrorRuntime(value, _) => match value.clone().try_cast::<Failure>() {
            Some(failure) => Report::failure(&failure),
            None => Report::plain(
                Code::Throw,
                format!("the recipe threw: {value}"),
                "a `throw` in the recipe stopped the run; catch it with try { } catch (e) { } to handle it",
            ),
        },
        E::ErrorTooManyOperations(_) => Report::plain(
            Code::OperationsLimit,
            format!("the recipe ran more than {} operations and was stopped (an endless loop?)", cx.engine.max_operations()),
            "look for a loop that never ends; raise the limit with --max-operations N if the work is real",
        ),
        E::ErrorTerminated(_, _) => Report::plain(
            Code::Interrupted,
            "interrupted",
            "the running command was stopped; run the recipe again to finish",
        ),
        E::ErrorMismatchDataType(expected, actual, _) => Report::plain(
            Code::Type,
            format!("wrong type: expected {expected}, got {actual}"),
            "convert the value first (to_string(), parse_int(...)) or pass the expected type",
        ),
        E::ErrorMismatchOutputType(expected, actual, _) => Report::plain(
            Code::Type,
            format!("wrong type: expected {expected}, got {actual}"),
            "",
        ),
        E::ErrorVariableNotFound(name, _) => Report::plain(
            Code::UnknownVariable,
            format!("unknown variable `{name}`"),
            "declare it with `let`; a function sees only its arguments, `params`, `task` and top-level `const`s as `global::NAME`",
        ),
        E::ErrorDataTooLarge(what, _) => Report::plain(
            Code::DataTooLarge,
            format!("{} grew past Galley's limit and the recipe was stopped", what.to_lowercase()),
            format!(
                "a string may hold {} MiB, an array {} items, a map {} entries; look for a loop that keeps growing a value (docs/safety.md)",
                cx.engine.max_string_size() / (1024 * 1024),
                cx.engine.max_array_size(),
                cx.engine.max_map_size()
            ),
        ),
        E::ErrorStackOverflow(_) => Report::plain(
            Code::CallDepth,
            format!(
                "functions called each other more than {} levels deep and the recipe was stopped",
                cx.engine.max_call_levels()
            ),
            "look for a function that calls itself without an end (recursion with no base case)",
        ),
        E::ErrorModuleNotFound(path, _) => Report::plain(
            Code::ModuleNotFound,
            format!("module `{path}` not found"),
            "stdlib modules are `galley/NAME`; other paths are relative to the importing file, then to each folder in GALLEY_PATH",
        ),
        other => Report::plain(Code::Script, strip_position(&other.to_string()), ""),
    }
}

/// Rust type names as a recipe author knows them.
fn tidy_types(text: &str) -> String {
    let mut text = text
        .replace("&str | ImmutableString | String", "string")
        .replace("ImmutableString", "string")
        .replace("&mut ", "")
        .replace("types::dynamic::Dynamic", "any")
        .replace("_: ", "");
    for (rust, rhai) in [
        ("i64", "int"),
        ("f64", "float"),
        ("Array", "array"),
        ("Map", "map"),
    ] {
        text = text
            .split_inclusive(|c: char| !c.is_alphanumeric() && c != '_')
            .map(
                |word| match word.strip_suffix(|c: char| !c.is_alphanumeric() && c != '_') {
                    Some(w) if w == rust => format!("{rhai}{}", &word[w.len()..]),
                    _ if word == rust => rhai.to_string(),
                    _ => word.to_string(),
                },
            )
            .collect();
    }
    text
}

/// A signature without its return type and parameter names, for help lines.
pub fn tidy_signature(signature: &str) -> String {
    let without_return = signature.split(" -> ").next().unwrap_or(signature);
    let typed = match (without_return.find('('), without_return.rfind(')')) {
        (Some(open), Some(close)) if open < close => format!(
            "{}({})",
            &without_return[..open],
            without_return[open + 1..close]
                .split(", ")
                .map(|p| p.split_once(": ").map_or(p, |(_, ty)| ty))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => without_return.to_string(),
    };
    tidy_types(&typed)
}

fn unknown_function(signature: &str, known: &Known) -> Report {
    let name = signature.split([' ', '(']).next().unwrap_or(signature);
    let args = tidy_types(signature[name.len()..].trim());
    let overloads = known.overloads(name);
    if !overloads.is_empty() {
        let takes: Vec<String> = overloads.iter().map(|s| tidy_signature(s)).collect();
        return Report::plain(
            Code::WrongArguments,
            format!("`{name}` cannot be called with these arguments {args}"),
            format!("it takes: {}", takes.join("; ")),
        );
    }
    let help = match suggest(name, known.names().into_iter()) {
        Some(near) => format!("did you mean `{near}`? `galley docs` lists every function"),
        None => "`galley docs` lists every function".to_string(),
    };
    Report::plain(
        Code::UnknownFunction,
        format!("unknown function `{name}` {args}"),
        help,
    )
}

impl Reportable for Report {
    fn render(&self, mode: OutputMode, masker: &Masker) -> String {
        Report::render(self, mode, masker)
    }
    fn code(&self) -> &str {
        &self.code
    }
    fn message(&self) -> &str {
        &self.message
    }
    fn location(&self) -> Option<(String, usize, usize)> {
        self.location.clone()
    }
    fn is_warning(&self) -> bool {
        self.warning
    }
}

impl LibError {
    /// The error as a report of its own (for `galley lock`, `update`, `fetch`).
    pub fn report(&self) -> Report {
        Report::failure(&Failure::Library(self.clone()))
    }
}

/// Lets recipes inspect a caught failure: `catch (e) { e.message }`.
pub fn register(api: &mut crate::api::Api) {
    use crate::api::Spec;
    const FAILURE: &[(&str, &str)] = &[("failure", "Failure")];
    api.register_type::<Failure>(
        "Failure",
        "What a Galley function throws: `catch (e)` gets it, with its message and code.",
    );
    api.register(
        Spec::method("to_string", FAILURE, "string")
            .doc("The failure's message.")
            .example("try { host.run(\"false\"); } catch (e) { log(e.to_string()); }"),
        |f: &mut Failure| f.to_string(),
    );
    api.register(
        Spec::property(FAILURE, "message", "string")
            .doc("The failure's message.")
            .example("try { host.run(\"false\"); } catch (e) { log(e.message); }"),
        |f: &mut Failure| f.to_string(),
    );
    api.register(
        Spec::property(FAILURE, "code", "string")
            .doc("The failure's stable code, listed in docs/reports.md (galley::timeout, galley::health...).")
            .example("try { host.run(\"false\"); } catch (e) { log(e.code); }"),
        |f: &mut Failure| f.code_text(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidies_rust_type_names() {
        assert_eq!(
            tidy_signature("write(_: &mut Host, _: &str | ImmutableString | String, _: i64) -> Result<(), Box<E>>"),
            "write(Host, string, int)"
        );
    }
}
