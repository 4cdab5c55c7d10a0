//! `galley list FILE`: the recipe's tasks, in source order.

use std::path::Path;

use super::{print_report, EXIT_OK, EXIT_USAGE};
use crate::engine::tasks::{tasks, Task};
use crate::engine::Galley;
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
    let tasks = tasks(&galley.engine, &recipe.ast, &galley.text(&recipe));
    print_tasks(mode, &tasks);
    EXIT_OK
}

fn print_tasks(mode: OutputMode, tasks: &[Task]) {
    if mode == OutputMode::Json {
        for task in tasks {
            println!(
                "{}",
                serde_json::json!({
                    "task": task.name, "params": task.params, "doc": task.doc,
                    "line": task.position.line(),
                })
            );
        }
        return;
    }
    if tasks.is_empty() {
        println!("no tasks (a task is a top-level `fn` with a `///` doc comment)");
        return;
    }
    let signatures: Vec<String> = tasks
        .iter()
        .map(|task| {
            if task.params.is_empty() {
                task.name.clone()
            } else {
                format!("{}({})", task.name, task.params.join(", "))
            }
        })
        .collect();
    let width = signatures.iter().map(String::len).max().unwrap_or(0);
    for (signature, task) in signatures.iter().zip(tasks) {
        println!("{signature:width$}  # {}", task.doc);
    }
}
