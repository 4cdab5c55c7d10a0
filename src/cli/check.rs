//! `galley check FILE...`: finds mistakes without running anything, and prints them for people
//! (`human`), for editors and CI log parsers (`gnu`) or for programs (`json`).

use std::path::{Path, PathBuf};

use super::{inspecting, print_report, run::libraries_in_sync, EXIT_OK, EXIT_USAGE};
use crate::engine::check::problems;
use crate::engine::Galley;
use crate::exec::output::escape_control;
use crate::exec::output::Reportable;
use crate::exec::OutputMode;
use crate::report::Report;

/// How `galley check` prints what it finds.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Format {
    /// Reports with the recipe line underlined (styled by --output), on stderr.
    Human,
    /// `file:line:col: severity: message [code]`, one line per problem, on stdout.
    Gnu,
    /// One JSON object per problem on stdout: file, line, column, severity, code, message, help.
    Json,
}

pub fn check(files: &[PathBuf], locked: bool, mode: OutputMode, format: Format) -> i32 {
    let (ctx, _runtime) = inspecting(mode);
    let mut errors = 0;
    for file in files {
        let reports = check_file(&ctx, file, locked);
        let warnings = reports.iter().filter(|r| r.is_warning()).count();
        errors += reports.len() - warnings;
        for report in &reports {
            match format {
                Format::Human => {
                    ctx.printer.annotate(report);
                    print_report(report, mode, ctx.printer.masker());
                }
                Format::Gnu => println!("{}", gnu(report, file)),
                Format::Json => println!("{}", json(report, file)),
            }
        }
        if format == Format::Human && mode != OutputMode::Json && warnings == reports.len() {
            match warnings {
                0 => println!("ok: {}", file.display()),
                1 => println!("ok: {} (1 warning)", file.display()),
                n => println!("ok: {} ({n} warnings)", file.display()),
            }
        }
    }
    if errors == 0 {
        EXIT_OK
    } else {
        EXIT_USAGE
    }
}

/// Everything wrong with one recipe file.
fn check_file(ctx: &std::sync::Arc<crate::exec::Ctx>, file: &Path, locked: bool) -> Vec<Report> {
    let mut galley = Galley::inspecting(ctx);
    // Unoptimized, the AST keeps every call and the position of each key of a literal map.
    galley
        .engine
        .set_optimization_level(rhai::OptimizationLevel::None);
    let mut reports = Vec::new();
    if let Err(report) = libraries_in_sync(file, locked) {
        reports.push(report);
    }
    match galley.compile(file) {
        Err(report) => reports.push(report),
        Ok(recipe) => reports.extend(problems(&mut galley, &recipe)),
    }
    reports
}

fn severity(report: &Report) -> &'static str {
    if report.is_warning() {
        "warning"
    } else {
        "error"
    }
}

/// One line: a report without a place in a file is put at line 1, column 1 of the recipe.
fn gnu(report: &Report, recipe: &Path) -> String {
    let (file, line, column) = report
        .location()
        .unwrap_or_else(|| (recipe.display().to_string(), 1, 1));
    let message = escape_control(&one_line(report.message()));
    format!(
        "{file}:{line}:{column}: {}: {message} [{}]",
        severity(report),
        report.code()
    )
}

/// One object; `line` and `column` are null for a report without a place in a file.
fn json(report: &Report, recipe: &Path) -> serde_json::Value {
    let location = report.location();
    serde_json::json!({
        "file": location.as_ref().map_or_else(|| recipe.display().to_string(), |l| l.0.clone()),
        "line": location.as_ref().map(|l| l.1),
        "column": location.as_ref().map(|l| l.2),
        "severity": severity(report),
        "code": report.code(),
        "message": report.message(),
        "help": report.help(),
    })
}

/// A message of several lines (a list of differences) joined into one.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
