//! Galley runs deploy recipes written in Rhai against local and remote hosts.

// A `Report` is built once, on the way out of a failed run: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod cli;
pub mod duration;
pub mod editors;
pub mod engine;
pub mod error;
pub mod exec;
pub mod libs;
pub mod primitives;
pub mod report;
pub mod watch;

#[cfg(test)]
mod layout;
