//! `galley man`: the man page (roff), generated from the command line's own definition.

use std::path::Path;

use clap::CommandFactory;

use super::{print_report, Cli, EXIT_OK};
use crate::error::Code;
use crate::exec::{Masker, OutputMode};
use crate::report::Report;

/// Prints galley(1) on stdout, or writes it and one page per command (galley-run.1, ...) into `dir`.
pub fn man(dir: Option<&Path>) -> i32 {
    let written = match dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), dir))
            .map(|()| println!("wrote the man pages into {}", dir.display())),
        None => clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()),
    };
    match written {
        Ok(()) => EXIT_OK,
        Err(e) => {
            let report = Report::plain(
                Code::Io,
                format!("cannot write the man page: {e}"),
                "check that the folder is writable",
            );
            print_report(&report, OutputMode::Plain, &Masker::default());
            report.exit().code()
        }
    }
}
