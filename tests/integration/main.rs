//! Integration tests: the real `galley` binary against real git, processes and HTTP servers.

// A scenario test reads top to bottom: setting up real servers, running, checking.
#![allow(clippy::too_many_lines)]

#[path = "../support/mod.rs"]
mod support;

mod blue_green;
mod cache;
mod check;
mod ci;
mod cli;
mod diff;
mod docker;
mod docs;
mod dry_run;
mod editors;
mod exact;
mod fanout;
mod fleet_strategies;
mod fuzz;
mod git;
mod health;
mod hostile;
mod init;
mod interrupt;
mod json;
mod libraries;
mod notify;
mod process;
mod reports;
mod smoke;
mod ssh;
mod ssh_executor;
mod ssh_fixture;
mod start_sh;
mod strategies;
mod swarm;
mod values;
mod watch;
