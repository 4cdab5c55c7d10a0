//! `LibError`: a problem with a shared library, its manifest, lock or cache.

use std::fmt;

use miette::Diagnostic;

use super::Code;

/// A problem with a library, its manifest, lock or cache: a stable code, what happened and what
/// to run about it.
#[derive(Clone, Debug)]
pub struct LibError {
    pub code: Code,
    pub message: String,
    pub help: String,
    pub details: Vec<String>,
}

impl LibError {
    /// An error with no detail lines.
    pub fn new(code: Code, message: impl Into<String>, help: impl Into<String>) -> Self {
        LibError {
            code,
            message: message.into(),
            help: help.into(),
            details: Vec::new(),
        }
    }

    /// Adds lines shown under the message.
    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }
}

impl fmt::Display for LibError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LibError {}

impl Diagnostic for LibError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code.as_str()))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.help))
    }
}
