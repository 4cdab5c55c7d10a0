//! Integration tests: the real `galley` binary against real git, processes and HTTP servers.

#[path = "../support/mod.rs"]
mod support;

mod blue_green;
mod cli;
mod docker;
mod dry_run;
mod fanout;
mod fleet_strategies;
mod fuzz;
mod git;
mod health;
mod hostile;
mod interrupt;
mod libraries;
mod process;
mod reports;
mod smoke;
mod ssh;
mod ssh_fixture;
mod start_sh;
mod strategies;
mod values;
mod watch;
