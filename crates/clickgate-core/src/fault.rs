//! Who is at fault when something fails: the operator's config or secrets, the client's request,
//! or the runtime (stored state that does not read back, an object that answered nonsense).
//!
//! The ground floor: every error type of the core says its [`Blame`], so an adapter chooses a 4xx
//! for the client, a config or startup message for the operator, and a fault line (with the
//! fail-open or fail-closed policy) for the runtime without reading the error's text.

use std::fmt;

/// The party a failure is owed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Blame {
    /// The deployment: the operator's config document and secrets.
    Operator,
    /// Whoever sent the request being answered: a browser, a network's postback, a caller of the
    /// admin API.
    Client,
    /// Neither: stored state, or an answer from another part of the system, is not what was written.
    Runtime,
}

impl Blame {
    pub fn as_str(self) -> &'static str {
        match self {
            Blame::Operator => "operator",
            Blame::Client => "client",
            Blame::Runtime => "runtime",
        }
    }
}

/// An error that says who is at fault.
pub trait Fault {
    fn blame(&self) -> Blame;
}

/// Stored state (or an object's answer) that does not read back: a runtime fault. `what` names
/// the stored thing, `detail` where in it the text went wrong; the message is the detail alone,
/// as the log lines and answers have always shown it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt {
    pub what: &'static str,
    pub detail: String,
}

impl Corrupt {
    pub fn new(what: &'static str, detail: impl Into<String>) -> Corrupt {
        Corrupt {
            what,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl Fault for Corrupt {
    fn blame(&self) -> Blame {
        Blame::Runtime
    }
}

/// Callers that still carry a message as text (a batch that embeds stored state, the adapter's
/// fault lines) take the same text.
impl From<Corrupt> for String {
    fn from(e: Corrupt) -> String {
        e.detail
    }
}

/// Input that does not parse, and who sent it: the same parsers read the operator's config and a
/// client's query, so the caller says whose text it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub by: Blame,
    pub problem: String,
}

impl Invalid {
    pub fn operator(problem: impl Into<String>) -> Invalid {
        Invalid {
            by: Blame::Operator,
            problem: problem.into(),
        }
    }

    pub fn client(problem: impl Into<String>) -> Invalid {
        Invalid {
            by: Blame::Client,
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem)
    }
}

impl Fault for Invalid {
    fn blame(&self) -> Blame {
        self.by
    }
}

impl From<Invalid> for String {
    fn from(e: Invalid) -> String {
        e.problem
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_corrupt_record_is_the_runtimes_fault_and_shows_its_detail_alone() {
        let e = Corrupt::new("flood state", "block: cause");
        assert_eq!(e.blame(), Blame::Runtime);
        assert_eq!(e.to_string(), "block: cause");
        assert_eq!(String::from(e), "block: cause");
    }

    #[test]
    fn invalid_input_is_owed_to_whoever_sent_it() {
        assert_eq!(Invalid::operator("bad").blame(), Blame::Operator);
        assert_eq!(Invalid::client("bad").blame(), Blame::Client);
        assert_eq!(Invalid::client("bad range").to_string(), "bad range");
    }

    #[test]
    fn each_blame_has_its_own_text() {
        let all = [Blame::Operator, Blame::Client, Blame::Runtime];
        let texts: std::collections::BTreeSet<_> = all.iter().map(|b| b.as_str()).collect();
        assert_eq!(texts.len(), all.len());
    }
}
