//! `referrer`: the click's Referer in the referrer blacklist, by host (and its parent domains, for
//! `*.` patterns) and path prefix.

use std::borrow::Cow;

use rustc_hash::FxHashMap;

use crate::click::authority_end;
use crate::fault::Invalid;
use crate::filters::{Hit, Judge, Seen, Settings, Stage, Unavailable};
use crate::verdict::ReasonCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Referrer;

impl Judge for Referrer {
    const NAME: &'static str = "referrer";
    const POINTS: u32 = 60;
    const STAGE: Stage = Stage::Click;
    const CODES: &'static [ReasonCode] = &[ReasonCode::ReferrerBlacklist];

    fn compile(_: &mut impl Settings) -> Self {
        Referrer
    }

    fn judge_click(&self, seen: &Seen, points: u32) -> Result<Option<Hit>, Unavailable> {
        let blocked = &seen.lists.blocked_referrers;
        Ok(seen.client.referer.as_deref().and_then(|referer| {
            if blocked.is_empty() {
                return None;
            }
            let (host, path) = referer_parts(referer)?;
            let pattern = blocked.find(&host, &path)?;
            Some(Hit {
                code: ReasonCode::ReferrerBlacklist,
                matched: pattern.text.clone(),
                value: referer.to_owned(),
                points,
            })
        }))
    }
}

/// Host or host-and-path pattern for the referrer blacklist: `spam.example` (and its subdomains
/// with `*.spam.example`), or `ads.example/cheap` for a path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefererPattern {
    pub(crate) text: String,
    host: String,
    any_subdomain: bool,
    path_prefix: String,
}

impl RefererPattern {
    /// A pattern from the operator's referrer blocklist: a bad one is the operator's.
    pub fn parse(text: &str) -> Result<RefererPattern, Invalid> {
        RefererPattern::read(text).map_err(Invalid::operator)
    }

    fn read(text: &str) -> Result<RefererPattern, String> {
        let lower = text.trim().to_ascii_lowercase();
        let (host_part, path) = match lower.find('/') {
            Some(i) => (&lower[..i], &lower[i..]),
            None => (lower.as_str(), ""),
        };
        let (any_subdomain, host) = match host_part.strip_prefix("*.") {
            Some(h) => (true, h),
            None => (false, host_part),
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
        if host.is_empty()
            || !host.chars().all(valid)
            || host.starts_with('.')
            // Bytes, not a substring search: setting one up cost more than a pattern's whole
            // check, for each of a document's hundreds of patterns.
            || lower.as_bytes().windows(3).any(|w| w == b"://")
        {
            return Err(format!("`{text}` is not a host pattern (`spam.example`, `*.spam.example`, `spam.example/path`)"));
        }
        Ok(RefererPattern {
            text: text.trim().to_owned(),
            host: host.to_owned(),
            any_subdomain,
            path_prefix: path.to_owned(),
        })
    }

    /// `*.spam.example` is its subdomains only, not `spam.example` itself (which
    /// [`Referrers::find`] never asks it about either).
    fn matches(&self, host: &str, path: &str) -> bool {
        let host_ok = if self.any_subdomain {
            host.len() > self.host.len()
                && host.ends_with(&self.host)
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host == self.host
        };
        host_ok && path.starts_with(&self.path_prefix)
    }
}

/// Splits a Referer header into lower-cased host and path. Byte by byte, every cut at an ASCII
/// byte: `str`'s searchers cost several times as much, on every click with a Referer. Most are
/// lower case already, and are not copied.
pub(crate) fn referer_parts(referer: &str) -> Option<(Cow<'_, str>, Cow<'_, str>)> {
    let scheme = referer.as_bytes().windows(3).position(|w| w == b"://")?;
    let rest = &referer[scheme + 3..];
    let end = authority_end(rest);
    let authority = &rest[..end];
    let user_end = authority.bytes().rposition(|c| c == b'@').map_or(0, |i| i + 1);
    let host = &authority[user_end..];
    let host = &host[..host.bytes().position(|c| c == b':').unwrap_or(host.len())];
    let path = &rest[end..];
    let path = &path[..path.bytes().position(|c| c == b'?' || c == b'#').unwrap_or(path.len())];
    Some((lower(host), lower(path)))
}

fn lower(text: &str) -> Cow<'_, str> {
    match text.bytes().any(|b| b.is_ascii_uppercase()) {
        true => Cow::Owned(text.to_ascii_lowercase()),
        false => Cow::Borrowed(text),
    }
}

/// The referrer blacklist, indexed by host: a click's referrer is looked up under its host and, for
/// `*.` patterns, under each parent domain, instead of being compared with every pattern.
#[derive(Debug, Clone, Default)]
pub struct Referrers {
    exact: FxHashMap<String, Vec<RefererPattern>>,
    wildcard: FxHashMap<String, Vec<RefererPattern>>,
}

impl Referrers {
    pub fn insert(&mut self, p: RefererPattern) {
        let map = if p.any_subdomain {
            &mut self.wildcard
        } else {
            &mut self.exact
        };
        map.entry(p.host.clone()).or_default().push(p);
    }

    pub fn len(&self) -> usize {
        self.exact
            .values()
            .chain(self.wildcard.values())
            .map(Vec::len)
            .sum()
    }

    /// Asked on every click with a Referer: each host's list holds a pattern (see
    /// [`Referrers::insert`]), so whether the maps are empty says it without counting them.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty()
    }

    pub(crate) fn find(&self, host: &str, path: &str) -> Option<&RefererPattern> {
        let exact = self.exact.get(host).into_iter().flatten();
        let parents = host
            .match_indices('.')
            .filter_map(|(i, _)| self.wildcard.get(&host[i + 1..]))
            .flatten();
        exact.chain(parents).find(|p| p.matches(host, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::harness::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn referrer_patterns() {
        let p = RefererPattern::parse("*.spam.example").unwrap();
        assert!(p.matches("a.spam.example", "/"));
        assert!(!p.matches("spam.example.com", "/"));
        assert!(!p.matches("notspam.example", "/"));
        let p = RefererPattern::parse("ads.example/cheap").unwrap();
        assert!(p.matches("ads.example", "/cheap/x"));
        assert!(!p.matches("ads.example", "/good"));
        let scheme = RefererPattern::parse("https://x.example").unwrap_err();
        assert_eq!(scheme.by, crate::fault::Blame::Operator);
        assert!(RefererPattern::parse("").is_err());
        // A scheme further on, where the host before it is one.
        assert!(RefererPattern::parse("ads.example/r?u=https://x.example").is_err());
        assert!(RefererPattern::parse("ads.example/r:/x").is_ok());
        assert_eq!(
            referer_parts("https://User@News.Example:8443/A/b?q=1#f"),
            Some(("news.example".into(), "/a/b".into()))
        );
        assert_eq!(referer_parts("not a url"), None);
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        // A host or path already in lower case is handed back as it is, not copied.
        #[test]
        fn a_part_is_lowered_as_a_copy_would_be(text in "[A-Za-z0-9./ÄÖü-]{0,20}") {
            proptest::prop_assert_eq!(lower(&text), text.to_ascii_lowercase());
        }
    }

    #[test]
    fn fires_on_a_listed_host_or_path() {
        fires_alone(vec![
                ("referrer host", Click { referer: Some("https://x.spam.example/p"), ..Click::default() }, "referrer_blacklist"),
                ("referrer path", Click { referer: Some("http://ads.example/cheap/1"), ..Click::default() }, "referrer_blacklist"),
        ]);
    }
}
