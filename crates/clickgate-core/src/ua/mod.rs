//! What a User-Agent header says about the client, read once per click: its product tokens
//! (`name/version`) and comments (`( … ; … )`), whether it is automation and how sure that is,
//! whether it is a known people's client (an in-app browser, a regional browser, a feature phone),
//! whether it is a link-preview fetcher, and how old its OS and browser are.
//!
//! Words are found with literal patterns (one Aho-Corasick automaton, one pass over the header)
//! and kept only where they stand on word boundaries, never with a regex: compiling a large Unicode
//! regex costs a fresh wasm isolate more than its whole per-request CPU budget. The patterns are
//! checked against the labelled corpora of `tests/bot_corpus.rs`.
//!
//! `reader.rs` reads a header; `patterns.rs` holds the automation words and the automaton that scans
//! for them; `clients.rs` names people's clients, previews and agents; `platform.rs` reads the OS
//! and browser versions; `signal.rs` is the sign the filters judge.

mod clients;
mod patterns;
mod platform;
mod reader;
mod signal;

pub use platform::{Browser, Os, Platform};
pub use reader::{is_link_preview, signal_of, Reading, UserAgent};
pub use signal::{Grade, Kind, Signal};

/// Headers and readings the files' tests share.
#[cfg(test)]
mod samples {
    use super::{Grade, Kind, Platform, UserAgent};

    /// The OS and browser of a header, read whole.
    pub(super) fn platform(user_agent: &str) -> Platform {
        UserAgent::parse(user_agent).platform()
    }

    pub(super) const IPHONE: &str =
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 \
                          (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    pub(super) const ANDROID: &str =
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                           Chrome/124.0.0.0 Mobile Safari/537.36";
    pub(super) const WINDOWS: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                           Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51";

    pub(super) fn signal(ua: &str) -> Option<(Grade, Kind, String)> {
        UserAgent::parse(ua)
            .reading()
            .signal
            .clone()
            .map(|s| (s.grade, s.kind, s.token))
    }

    pub(super) fn grade(ua: &str) -> Option<Grade> {
        signal(ua).map(|s| s.0)
    }
}
