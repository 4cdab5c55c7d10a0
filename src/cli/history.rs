//! `galley history`, `galley rollback` and `galley unlock`: the deploy journal and locks.

use super::{print_report, RunArgs, EXIT_OK, EXIT_USAGE};
use crate::error::Code;
use crate::exec::output::escape_control;
use crate::exec::{Masker, OutputMode};
use crate::primitives::deploy::journal::{self, Record};
use crate::report::Report;

fn usage(report: Report) -> i32 {
    print_report(&report, OutputMode::Plain, &Masker::default());
    EXIT_USAGE
}

/// The journal's records of `app` (all apps when `None`), oldest first, warning about bad lines.
fn records(app: Option<&str>) -> Vec<Record> {
    let (records, bad) = journal::read();
    if bad > 0 {
        eprintln!(
            "warning: skipped {bad} unreadable line{} of {}",
            if bad == 1 { "" } else { "s" },
            journal::path().display()
        );
    }
    records
        .into_iter()
        .filter(|r| app.is_none_or(|a| r.app == a))
        .collect()
}

/// Prints the newest `limit` deploys, newest first, as a table or as JSON lines (same order).
pub fn history(app: Option<&str>, limit: usize, json: bool) -> i32 {
    let all = records(app);
    let shown: Vec<&Record> = all.iter().rev().take(limit).collect();
    if json {
        for record in shown {
            println!("{}", serde_json::to_string(record).unwrap_or_default());
        }
        return EXIT_OK;
    }
    if shown.is_empty() {
        println!("no deploys recorded in {}", journal::path().display());
        return EXIT_OK;
    }
    let rows: Vec<[String; 9]> = shown
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.when.replace('T', " ").trim_end_matches('Z').to_string(),
                r.app.clone(),
                r.hosts.join(","),
                r.strategy.clone(),
                r.version(),
                match &r.rollback_to {
                    Some(to) => format!("{} (rollback to {to})", r.result),
                    None => r.result.clone(),
                },
                format!("{:.1}s", r.seconds),
                r.who.clone(),
            ]
        })
        // A journal value with a newline or an escape must not forge a row.
        .map(|row: [String; 9]| row.map(|cell| escape_control(&cell)))
        .collect();
    let header = [
        "id",
        "when (UTC)",
        "app",
        "hosts",
        "strategy",
        "version",
        "result",
        "took",
        "who",
    ];
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(&header.map(String::from)));
    for (row, record) in rows.iter().zip(&shown) {
        println!("{}", line(row));
        if let Some(error) = &record.error {
            println!("    {}", escape_control(error));
        }
    }
    EXIT_OK
}

pub fn rollback(app: &str, to: Option<&str>, output: OutputMode) -> i32 {
    let all = records(Some(app));
    let good: Vec<&Record> = all.iter().filter(|r| r.result == "ok").collect();
    let target = if let Some(id) = to {
        match all.iter().find(|r| r.id == id) {
            Some(r) if r.result == "ok" => r,
            Some(r) => {
                return usage(Report::plain(
                    Code::Usage,
                    format!(
                        "deploy {id} of {app} did not succeed (result: {})",
                        r.result
                    ),
                    "roll back to a deploy whose result is ok; `galley history APP` lists them",
                ))
            }
            None => {
                return usage(Report::plain(
                    Code::Usage,
                    format!("no deploy {id} of {app} in {}", journal::path().display()),
                    "`galley history APP` lists the ids",
                ))
            }
        }
    } else {
        let current = good.last().map(|r| r.version());
        match good.iter().rev().find(|r| Some(r.version()) != current) {
            Some(r) => r,
            None => {
                return usage(Report::plain(
                    Code::Usage,
                    format!("no earlier good version of {app} to roll back to"),
                    "`galley history APP` shows what was deployed",
                ))
            }
        }
    };
    println!(
        "rolling {app} back to {} (deploy {} of {} by {})",
        target.version(),
        target.id,
        target.when,
        target.who
    );
    // The same recipe and task with the same params, pinned to the old version.
    let pinned = ["sha", "image", "release", "rollback_to"];
    let mut set: Vec<String> = target
        .params
        .iter()
        .filter(|(k, _)| !pinned.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for (key, value) in [
        ("sha", &target.sha),
        ("image", &target.image),
        ("release", &target.release),
    ] {
        if let Some(value) = value {
            set.push(format!("{key}={value}"));
        }
    }
    set.push(format!("rollback_to={}", target.id));
    let args = RunArgs {
        file: target.recipe.clone().into(),
        task: (!target.task.is_empty()).then(|| target.task.clone()),
        set,
        dry_run: false,
        secrets: None,
        max_operations: crate::engine::DEFAULT_MAX_OPERATIONS,
        max_parallel: 16,
        force_unlock: false,
        diff: false,
        // A rollback is a deploy: it notifies the GALLEY_NOTIFY webhooks too.
        notify: std::env::var("GALLEY_NOTIFY")
            .unwrap_or_default()
            .split(',')
            .filter(|u| !u.trim().is_empty())
            .map(|u| u.trim().to_string())
            .collect(),
        locked: super::LockedArg { locked: false },
        output: super::OutputArgs {
            output: Some(output),
        },
    };
    super::run::run(args)
}
