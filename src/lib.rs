//! Galley runs deploy recipes written in Rhai against local and remote hosts.

pub mod cli;
pub mod engine;
pub mod exec;
pub mod primitives;
pub mod report;
