//! The transaction id: an authenticated token that carries the click.
//!
//! A conversion postback arrives hours or days after its click, often at another edge location. The
//! token carries what judging it needs (the click's time, offer, affiliate and verdict) under an
//! HMAC-SHA256 tag, so no database is consulted and nobody without the secret can mint or alter one.
//!
//! Layout before base64url (no padding):
//!
//! ```text
//! version(1)=1 | issued_ms(6, big-endian) | nonce(8) | verdict(1) | len(1) offer_id | len(1) aff_id | tag(16)
//! ```
//!
//! The verdict byte: its low 2 bits the verdict (0 redirected, 1 blocked, 2 flagged (monitor
//! mode), 3 a link preview), its high 6 bits the link profile the click came in by (0 for
//! clickgate's own format and for every id issued before profiles, so those still open).
//!
//! The tag is HMAC-SHA256(secret, every preceding byte) truncated to 128 bits, checked in constant time.
//! The nonce comes from the edge's random source, so two clicks in the same millisecond differ.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::click::{Id, MAX_ID_LEN};
use crate::fault::{Blame, Fault, Invalid};
use crate::verdict::Verdict;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
pub const NONCE_LEN: usize = 8;
/// Enough for two 64-byte ids; anything longer is refused before decoding.
pub const MAX_TOKEN_LEN: usize = 256;
/// Shorter secrets are refused: the tag is only as strong as the key.
pub const MIN_SECRET_LEN: usize = 32;

/// What the click's verdict was, as far as a later conversion cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVerdict {
    Redirected = 0,
    Blocked = 1,
    /// Redirected because the rule was in monitor mode, but it would have been blocked.
    Flagged = 2,
    /// Redirected as a link-preview fetcher unfurling the link: nobody clicked. A new byte value
    /// in the same layout, so the ids issued before it still open.
    Preview = 3,
}

impl TokenVerdict {
    /// The verdict as `explain` and `/verdict` write it for a click known only by its id.
    pub fn verdict(self) -> Verdict {
        match self {
            TokenVerdict::Redirected => Verdict::Redirect,
            TokenVerdict::Blocked => Verdict::Block,
            TokenVerdict::Flagged => Verdict::RedirectFlagged,
            TokenVerdict::Preview => Verdict::RedirectPreview,
        }
    }

    fn from_byte(b: u8) -> Option<TokenVerdict> {
        match b {
            0 => Some(TokenVerdict::Redirected),
            1 => Some(TokenVerdict::Blocked),
            2 => Some(TokenVerdict::Flagged),
            3 => Some(TokenVerdict::Preview),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickToken {
    pub issued_ms: u64,
    pub nonce: [u8; NONCE_LEN],
    pub verdict: TokenVerdict,
    pub offer_id: Id,
    pub aff_id: Id,
    /// The link profile the click came in by (its position in `links[]`, below
    /// [`MAX_TOKEN_PROFILES`]): a conversion on an offer the document does not list finds its
    /// advertiser through it.
    pub profile: u8,
}

/// How many link profiles the verdict byte's high bits can name.
pub(crate) const MAX_TOKEN_PROFILES: usize = 64;

/// [`ClickToken::seal`] of the click's own fields, borrowed: each click seals one, and a token
/// of its own would copy both ids only to be dropped. Built on the stack: ids are at most 64
/// bytes (click::Id), so each length fits a byte and the whole fits the buffer.
pub(crate) fn seal(
    key: &TokenKey,
    issued_ms: u64,
    nonce: [u8; NONCE_LEN],
    verdict: TokenVerdict,
    ids: [&Id; 2],
    profile: u8,
) -> String {
    let mut buf = [0u8; 1 + 6 + NONCE_LEN + 1 + 2 + 2 * MAX_ID_LEN + TAG_LEN];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        buf[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    put(&[VERSION]);
    put(&issued_ms.to_be_bytes()[2..]);
    put(&nonce);
    // A profile past the byte's room reads as the first; the config allows far fewer.
    let profile = if usize::from(profile) < MAX_TOKEN_PROFILES {
        profile
    } else {
        0
    };
    put(&[verdict as u8 | profile << 2]);
    for id in ids {
        put(&[id.as_str().len() as u8]);
        put(id.as_str().as_bytes());
    }
    let tag = key.tag(&buf[..len]);
    buf[len..len + TAG_LEN].copy_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(&buf[..len + TAG_LEN])
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    BadTag,
    UnknownVersion(u8),
}

/// A transaction id comes back in a postback: one that does not verify is the sender's.
impl Fault for TokenError {
    fn blame(&self) -> Blame {
        Blame::Client
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Malformed => f.write_str("not a clickgate transaction id"),
            TokenError::BadTag => f.write_str("transaction id was not issued by this deployment"),
            TokenError::UnknownVersion(v) => write!(f, "transaction id version {v} is not known"),
        }
    }
}

/// The HMAC key, from the Worker secret `TOKEN_SECRET`.
#[derive(Clone)]
pub struct TokenKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// The deployment's secret: one too short to keep is the operator's to fix.
    pub fn new(secret: &[u8]) -> Result<TokenKey, Invalid> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(Invalid::operator(format!(
                "TOKEN_SECRET is {} bytes; it must be at least {MIN_SECRET_LEN} (try `openssl rand -base64 48`)",
                secret.len()
            )));
        }
        let mac =
            Hmac::<Sha256>::new_from_slice(secret).map_err(|e| Invalid::operator(e.to_string()))?;
        Ok(TokenKey { mac })
    }

    fn tag(&self, body: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac.clone();
        mac.update(body);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    fn verify(&self, body: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(body);
        // Constant time: the comparison must not tell an attacker how many leading bytes were right.
        mac.verify_truncated_left(tag).is_ok()
    }
}

impl ClickToken {
    pub fn seal(&self, key: &TokenKey) -> String {
        let ids = [&self.offer_id, &self.aff_id];
        seal(
            key,
            self.issued_ms,
            self.nonce,
            self.verdict,
            ids,
            self.profile,
        )
    }

    pub fn open(text: &str, key: &TokenKey) -> Result<ClickToken, TokenError> {
        if text.is_empty() || text.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| TokenError::Malformed)?;
        if raw.len() < 1 + 6 + NONCE_LEN + 1 + 2 + 2 + TAG_LEN {
            return Err(TokenError::Malformed);
        }
        let (body, tag) = raw.split_at(raw.len() - TAG_LEN);
        if body[0] != VERSION {
            return Err(TokenError::UnknownVersion(body[0]));
        }
        // The tag is checked before any field is trusted.
        if !key.verify(body, tag) {
            return Err(TokenError::BadTag);
        }
        let mut r = Reader { rest: &body[1..] };
        let mut ms = [0u8; 8];
        ms[2..].copy_from_slice(r.take(6)?);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(r.take(NONCE_LEN)?);
        let byte = r.take(1)?[0];
        let verdict = TokenVerdict::from_byte(byte & 0b11).ok_or(TokenError::Malformed)?;
        let profile = byte >> 2;
        let offer_id = r.id()?;
        let aff_id = r.id()?;
        if !r.rest.is_empty() {
            return Err(TokenError::Malformed);
        }
        Ok(ClickToken {
            issued_ms: u64::from_be_bytes(ms),
            nonce,
            verdict,
            offer_id,
            aff_id,
            profile,
        })
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TokenError> {
        if self.rest.len() < n {
            return Err(TokenError::Malformed);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn id(&mut self) -> Result<Id, TokenError> {
        let len = usize::from(self.take(1)?[0]);
        let bytes = self.take(len)?;
        let text = std::str::from_utf8(bytes).map_err(|_| TokenError::Malformed)?;
        Id::parse(text).map_err(|_| TokenError::Malformed)
    }
}

/// Compares two secrets in time independent of where they differ (and of their lengths, by
/// comparing their hashes).
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::click::MAX_ID_LEN;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    pub(crate) fn key() -> TokenKey {
        TokenKey::new(b"0123456789abcdef0123456789abcdef-test-only").unwrap()
    }

    fn token() -> ClickToken {
        ClickToken {
            issued_ms: 1_795_000_000_123,
            nonce: [1, 2, 3, 4, 5, 6, 7, 8],
            verdict: TokenVerdict::Flagged,
            offer_id: Id::parse("1001").unwrap(),
            aff_id: Id::parse("net-7").unwrap(),
            profile: 0,
        }
    }

    /// One id in the layout the module's head gives, its tag computed apart from this code
    /// (Python's `hmac`, SHA-256): ids already issued must keep opening, and the same click
    /// must keep the same id.
    #[test]
    fn a_sealed_token_has_the_documented_bytes() {
        let t = ClickToken {
            profile: 3,
            ..token()
        };
        assert_eq!(
            t.seal(&key()),
            "AQGh7lZeewECAwQFBgcIDgQxMDAxBW5ldC03QZU4yyx7K0yjIIKhpAGMQg"
        );
    }

    #[test]
    fn the_link_profile_rides_in_the_verdict_bytes_high_bits() {
        for (verdict, profile) in [
            (TokenVerdict::Preview, 63),
            (TokenVerdict::Redirected, 1),
            (TokenVerdict::Blocked, 31),
        ] {
            let t = ClickToken {
                verdict,
                profile,
                ..token()
            };
            assert_eq!(ClickToken::open(&t.seal(&key()), &key()).unwrap(), t);
        }
        // An id sealed before profiles had a verdict byte of 0..=3: it opens as profile 0.
        let sealed = ClickToken {
            verdict: TokenVerdict::Preview,
            ..token()
        }
        .seal(&key());
        let raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        assert_eq!(raw[1 + 6 + NONCE_LEN], 3);
        assert_eq!(ClickToken::open(&sealed, &key()).unwrap().profile, 0);
        // A profile the byte has no room for is sealed as the first, not into the verdict.
        let wide = ClickToken {
            profile: 64,
            ..token()
        };
        let opened = ClickToken::open(&wide.seal(&key()), &key()).unwrap();
        assert_eq!((opened.verdict, opened.profile), (TokenVerdict::Flagged, 0));
    }

    #[test]
    fn seal_then_open_round_trips() {
        let sealed = token().seal(&key());
        assert!(sealed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(ClickToken::open(&sealed, &key()).unwrap(), token());
    }

    #[test]
    fn every_verdict_round_trips() {
        for verdict in [
            TokenVerdict::Redirected,
            TokenVerdict::Blocked,
            TokenVerdict::Flagged,
            TokenVerdict::Preview,
        ] {
            let t = ClickToken { verdict, ..token() };
            assert_eq!(ClickToken::open(&t.seal(&key()), &key()).unwrap(), t);
        }
    }

    #[test]
    fn other_key_is_refused() {
        let sealed = token().seal(&key());
        let other = TokenKey::new(b"another-secret-another-secret-another").unwrap();
        assert_eq!(ClickToken::open(&sealed, &other), Err(TokenError::BadTag));
    }

    #[test]
    fn short_secret_is_refused() {
        let short = TokenKey::new(b"short").unwrap_err();
        assert_eq!(short.blame(), Blame::Operator);
        assert!(short.problem.contains("at least 32"));
    }

    /// A sealed token's length for ids of these lengths, from the layout in the module's doc:
    /// version 1, time 6, nonce 8, verdict 1, each id after its length byte, tag 16 bytes, in
    /// base64url without padding.
    fn layout_len(offer: usize, aff: usize) -> usize {
        let bytes = 1 + 6 + 8 + 1 + (1 + offer) + (1 + aff) + 16;
        (bytes * 4).div_ceil(3)
    }

    #[test]
    fn the_longest_token_is_216_characters_and_opens() {
        let longest = ClickToken {
            offer_id: Id::parse(&"o".repeat(MAX_ID_LEN)).unwrap(),
            aff_id: Id::parse(&"a".repeat(MAX_ID_LEN)).unwrap(),
            ..token()
        };
        let sealed = longest.seal(&key());
        assert_eq!(layout_len(64, 64), 216);
        assert_eq!(sealed.len(), 216);
        // Within what open reads: the longest a click can be given comes back.
        assert_eq!(ClickToken::open(&sealed, &key()).unwrap(), longest);
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for text in ["", "!!!!", "AAAA", &"A".repeat(MAX_TOKEN_LEN + 1)] {
            assert!(ClickToken::open(text, &key()).is_err(), "{text}");
        }
    }

    #[test]
    fn unknown_version_is_named() {
        let mut raw = URL_SAFE_NO_PAD.decode(token().seal(&key())).unwrap();
        raw[0] = 9;
        assert_eq!(
            ClickToken::open(&URL_SAFE_NO_PAD.encode(raw), &key()),
            Err(TokenError::UnknownVersion(9))
        );
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // Flipping any bit of a sealed token must make it unopenable.
            #[test]
            fn any_bit_flip_is_refused(byte in 0usize..200, bit in 0u8..8) {
                let mut raw = URL_SAFE_NO_PAD.decode(token().seal(&key())).unwrap();
                let i = byte % raw.len();
                raw[i] ^= 1 << bit;
                prop_assert!(ClickToken::open(&URL_SAFE_NO_PAD.encode(raw), &key()).is_err());
            }

            #[test]
            fn open_never_panics(text in "[A-Za-z0-9_-]{0,120}") {
                let _ = ClickToken::open(&text, &key());
            }

            #[test]
            fn round_trips_any_click(ms in 0u64..(1 << 48), nonce in any::<[u8; 8]>(),
                                     o in "[A-Za-z0-9._-]{0,40}[A-Za-z0-9_-][A-Za-z0-9._-]{0,23}",
                                     a in "[A-Za-z0-9._-]{0,40}[A-Za-z0-9_-][A-Za-z0-9._-]{0,23}") {
                let t = ClickToken { issued_ms: ms, nonce, verdict: TokenVerdict::Redirected, profile: 0,
                                     offer_id: Id::parse(&o).unwrap(), aff_id: Id::parse(&a).unwrap() };
                let sealed = t.seal(&key());
                prop_assert_eq!(sealed.len(), layout_len(o.len(), a.len()));
                prop_assert_eq!(ClickToken::open(&sealed, &key()).unwrap(), t);
            }
        }
    }
}
