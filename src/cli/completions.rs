//! `galley completions SHELL`: the shell's completion script, generated from the command line's
//! own definition.

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, EXIT_OK};

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: Shell) -> i32 {
    clap_complete::generate(shell, &mut Cli::command(), "galley", &mut std::io::stdout());
    EXIT_OK
}
