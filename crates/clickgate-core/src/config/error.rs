//! A problem with the document: where it is and what is wrong, blamed on the operator.

use std::fmt;

use crate::fault::{Blame, Fault};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the problem is, as `offers[2].landing_url`; empty for the document itself.
    pub path: String,
    pub problem: String,
}

impl Fault for ConfigError {
    fn blame(&self) -> Blame {
        Blame::Operator
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.problem)
        } else {
            write!(f, "{}: {}", self.path, self.problem)
        }
    }
}

pub(crate) fn err(path: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.to_owned(),
        problem: problem.into(),
    }
}
