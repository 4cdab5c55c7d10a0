//! `galley list FILE`.

use std::path::Path;

use super::{print_report, EXIT_OK, EXIT_USAGE};
use crate::engine::{tasks, Galley};
use crate::exec::OutputMode;

pub fn list(file: &Path, mode: OutputMode) -> i32 {
    let (ctx, _runtime) = super::inspecting(mode);
    let galley = Galley::inspecting(&ctx);
    let recipe = match galley.compile(file) {
        Ok(r) => r,
        Err(report) => {
            print_report(&report, mode, ctx.printer.masker());
            return EXIT_USAGE;
        }
    };
    let tasks = tasks(&recipe.ast);
    print_tasks(mode, &tasks);
    EXIT_OK
}

fn print_tasks(mode: OutputMode, tasks: &[(String, Vec<String>, String)]) {
    if mode == OutputMode::Json {
        for (name, params, doc) in tasks {
            println!(
                "{}",
                serde_json::json!({ "task": name, "params": params, "doc": doc })
            );
        }
        return;
    }
    if tasks.is_empty() {
        println!("no tasks (a task is a top-level `fn`)");
        return;
    }
    let signatures: Vec<String> = tasks
        .iter()
        .map(|(name, params, _)| {
            if params.is_empty() {
                name.clone()
            } else {
                format!("{name}({})", params.join(", "))
            }
        })
        .collect();
    let width = signatures.iter().map(String::len).max().unwrap_or(0);
    for (signature, (_, _, doc)) in signatures.iter().zip(tasks) {
        if doc.is_empty() {
            println!("{signature}");
        } else {
            println!("{signature:width$}  # {doc}");
        }
    }
}
