//! Integration tests: the real `galley` binary against real git, processes and HTTP servers.

#[path = "../support/mod.rs"]
mod support;

mod smoke;
