//! `galley defs`: the recipe API as files for editors and Rhai tooling, generated from the engine.

use std::path::{Path, PathBuf};

use super::{print_report, EXIT_OK};
use crate::editors;
use crate::engine::Galley;
use crate::error::Code;
use crate::exec::{Masker, OutputMode};
use crate::report::Report;

/// Writes the definition files into `dir` and/or every generated file of the folder `editors`.
pub fn defs(dir: Option<&Path>, editors_dir: Option<&Path>) -> i32 {
    let (ctx, _runtime) = super::inspecting(OutputMode::Plain);
    let galley = Galley::inspecting(&ctx);
    type Generate = fn(&Galley) -> Vec<(String, String)>;
    let wanted: [(Option<&Path>, Generate); 2] = [
        (dir, editors::definition_files),
        (editors_dir, editors::editor_files),
    ];
    let files: Vec<(PathBuf, String)> = wanted
        .into_iter()
        .filter_map(|(target, generate)| Some((target?, generate)))
        .flat_map(|(target, generate)| {
            generate(&galley)
                .into_iter()
                .map(|(n, t)| (target.join(n), t))
        })
        .collect();
    for (path, text) in &files {
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(path, text));
        if let Err(e) = written {
            let report = Report::plain(
                Code::Io,
                format!("cannot write {}: {e}", path.display()),
                "check that the folder is writable",
            );
            print_report(&report, OutputMode::Plain, &Masker::default());
            return report.exit().code();
        }
        println!("wrote {}", path.display());
    }
    EXIT_OK
}
