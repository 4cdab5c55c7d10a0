//! `galley defs`: the recipe API as files for editors and Rhai tooling, generated from the engine.

use std::path::{Path, PathBuf};

use super::{print_report, EXIT_FAILED, EXIT_OK};
use crate::editors;
use crate::engine::Galley;
use crate::exec::{Masker, OutputMode};
use crate::report::Report;

/// Writes the definition files into `dir` and/or every generated file of the folder `editors`.
pub fn defs(dir: Option<&Path>, editors_dir: Option<&Path>) -> i32 {
    let (ctx, _runtime) = super::inspecting(OutputMode::Plain);
    let galley = Galley::inspecting(&ctx);
    type Generate = fn(&rhai::Engine) -> Result<Vec<(String, String)>, Report>;
    let wanted: [(Option<&Path>, Generate); 2] = [
        (dir, editors::definition_files),
        (editors_dir, editors::editor_files),
    ];
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for (target, generate) in wanted {
        let Some(target) = target else { continue };
        match generate(&galley.engine) {
            Ok(found) => files.extend(found.into_iter().map(|(n, t)| (target.join(n), t))),
            Err(report) => {
                print_report(&report, OutputMode::Plain, &Masker::default());
                return EXIT_FAILED;
            }
        }
    }
    for (path, text) in &files {
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(path, text));
        if let Err(e) = written {
            let report = Report::plain(
                "galley::io",
                format!("cannot write {}: {e}", path.display()),
                "check that the folder is writable",
            );
            print_report(&report, OutputMode::Plain, &Masker::default());
            return EXIT_FAILED;
        }
        println!("wrote {}", path.display());
    }
    EXIT_OK
}
