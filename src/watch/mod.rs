//! Watch mode's parts: which file changes count, and the git push trigger.

pub mod filter;
pub mod git;
