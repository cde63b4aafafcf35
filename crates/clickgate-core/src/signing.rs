//! Signed clicks: a network signs its tracking links with a shared secret, and the edge refuses a
//! forged, altered, expired or replayed click before it costs anything.
//!
//! **The canonical form** (`"form": "canonical"`, the default). The string signed is
//!
//! ```text
//! CLICKGATE-HMAC-SHA256\n{path}\n{query}
//! ```
//!
//! where `{path}` is the request path as sent (`/c` or `/c/1001/net-7`) and `{query}` is every query
//! parameter except `signature`, sorted by name then value (bytewise), joined as `name=value` with
//! `&`. Names and values must be percent-encoded canonically: every byte outside `A-Z a-z 0-9 - . _ ~`
//! as `%XX` with upper-case hex, and nothing else encoded (a space is `%20`, never `+`). The
//! parameters must include `expires` (Unix seconds) and `kid` (the key id). The signature is the
//! HMAC-SHA256 of that string under the key's secret, in lower-case hex, sent as `signature`.
//! Because the parameters are sorted, their order in the link does not matter; because the encoding
//! is canonical, any change to a byte of the link changes the string signed. `tests/vectors/` has
//! worked examples for checking a signer.
//!
//! **The URL form** (`"form": "url"`), as AppsFlyer's v1 and Kochava describe it: the HMAC-SHA256 of
//! the whole link, scheme and host included, up to the `signature` parameter, which must come last;
//! `expires` is required, `kid` optional (without it every valid key is tried).
//!
//! A click that carries the network's own click id (`click_id`) is accepted once while it is valid:
//! the edge asks a Durable Object ([`replay_step`]) before answering.

use std::collections::{HashMap, VecDeque};

use crate::click::{split_url, Id};
use crate::config::networks::{
    is_unreserved, BreakerSettings, Form, Mode, Policy, ReplayCheck, SigningKey,
};
use crate::config::RANGES;
use crate::hll::hash64;
use crate::ip::sort_indices;
use crate::log::JsonLine;
use crate::stored;
use crate::verdict::{FaultMode, ReasonCode};

pub const SCHEME: &str = "CLICKGATE-HMAC-SHA256";
/// Replay records are spread over at most this many objects per network (a key's
/// `replay_objects`, 16 unless it says fewer).
pub const REPLAY_SHARDS: u64 = *RANGES.replay_objects.end();
/// The parameters a signed link carries for its signature: read here, never passed on.
pub const SIGNING_PARAMS: [&str; 4] = ["signature", "expires", "kid", "click_id"];
// ---------------------------------------------------------------------------------------------
// The canonical form.

/// Percent-encodes bytes as the canonical form wants them.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether text is already in canonical encoding.
fn is_canonical(text: &str) -> bool {
    let upper_hex = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let decoded = match (
                b.get(i + 1).and_then(|&c| upper_hex(c)),
                b.get(i + 2).and_then(|&c| upper_hex(c)),
            ) {
                (Some(h), Some(l)) => h << 4 | l,
                _ => return false,
            };
            // An unreserved byte must be sent as itself.
            if is_unreserved(decoded) {
                return false;
            }
            i += 3;
        } else if is_unreserved(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// The query's parameters as (name, value), raw; `name` alone reads as an empty value.
fn pairs(query: &str) -> Vec<(&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect()
}

fn decoded(value: &str) -> String {
    percent_encoding::percent_decode_str(value)
        .decode_utf8_lossy()
        .into_owned()
}

/// The string a canonical-form signature covers, or why the link cannot be in canonical form.
pub fn canonical_string(path: &str, query: &str) -> Result<String, NotCanonical> {
    canonical_of(path, pairs(query))
}

/// Why a link cannot be in canonical form: a parameter is not canonically percent-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCanonical {
    pub(crate) parameter: String,
}

impl std::fmt::Display for NotCanonical {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = &self.parameter;
        write!(f, "parameter `{name}` is not canonically percent-encoded")
    }
}

impl std::error::Error for NotCanonical {}

fn canonical_of(path: &str, params: Vec<(&str, &str)>) -> Result<String, NotCanonical> {
    let mut signed: Vec<(&str, &str)> = Vec::with_capacity(params.len());
    let mut len = SCHEME.len() + path.len() + 2;
    for (name, value) in params {
        if name == "signature" {
            continue;
        }
        if !is_canonical(name) || !is_canonical(value) {
            return Err(NotCanonical {
                parameter: name.to_owned(),
            });
        }
        len += name.len() + value.len() + 2;
        signed.push((name, value));
    }
    // By name, then value: equal pairs are the same text, so any order of them writes the same.
    let mut order: Vec<usize> = (0..signed.len()).collect();
    sort_indices(&mut order, &|a, b| signed[a].cmp(&signed[b]));
    let mut out = String::with_capacity(len);
    out.push_str(SCHEME);
    out.push('\n');
    out.push_str(path);
    out.push('\n');
    for (i, (name, value)) in order.iter().map(|&i| signed[i]).enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    Ok(out)
}

/// Rewrites a query in canonical encoding (values decoded as a browser's form would send them).
pub fn canonical_query(query: &str) -> String {
    crate::click::query_pairs(query)
        .map(|(n, v)| format!("{}={}", encode(&n), encode(&v)))
        .collect::<Vec<_>>()
        .join("&")
}

// ---------------------------------------------------------------------------------------------
// Verification.

/// What a network's signing policy made of one click, before the replay check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The network has no policy, or it is off: nothing to say.
    NotSigned,
    Valid {
        kid: String,
        /// The network's own click id, to be accepted once.
        click_id: Option<String>,
        expires_ms: u64,
        /// The replay objects of the key that verified the link (its `replay_objects`).
        objects: u64,
    },
    Failed {
        /// `missing_signature`, `invalid_signature`, `expired`, `unknown_key`.
        code: ReasonCode,
        detail: String,
        /// A well-formed signature under a live key the network has, whose HMAC does not match:
        /// what a broken signer sends, and the only failure the breaker weighs.
        key_mismatch: bool,
    },
}

/// A valid click's id for the replay store: when this use of it expires, whether the click
/// waits for the answer, and how many objects the ids of the key that signed it are spread over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplayQuestion<'a> {
    pub click_id: &'a str,
    pub expires_ms: u64,
    pub(crate) when: ReplayCheck,
    pub(crate) objects: u64,
}

impl Check {
    /// The click id to ask the replay store about, under the network's policy.
    pub(crate) fn replay_question(&self, policy: &Policy) -> Option<ReplayQuestion<'_>> {
        match self {
            Check::Valid {
                click_id: Some(id),
                expires_ms,
                objects,
                ..
            } => Some(ReplayQuestion {
                click_id: id,
                expires_ms: *expires_ms,
                when: policy.replay_check,
                objects: *objects,
            }),
            _ => None,
        }
    }
}

/// Verifies a click's signature under its network's policy. `url` is the whole link as received;
/// `path` and `query` are its parts.
pub fn verify(policy: &Policy, url: &str, path: &str, query: &str, now_ms: u64) -> Check {
    if policy.mode == Mode::Off {
        return Check::NotSigned;
    }
    let failed = |code, detail: String| Check::Failed {
        code,
        detail,
        key_mismatch: false,
    };
    // One pass for the four parameters signing reads; each may appear once.
    const NAMES: [&str; 4] = SIGNING_PARAMS;
    let mut found: [Option<&str>; 4] = [None; 4];
    let params = pairs(query);
    for &(name, value) in &params {
        if let Some(i) = NAMES.iter().position(|n| *n == name) {
            if found[i].replace(value).is_some() {
                return failed(
                    ReasonCode::InvalidSignature,
                    format!("`{name}` is given more than once"),
                );
            }
        }
    }
    let [signature, expires, kid, click_id] = found;
    let Some(signature) = signature else {
        return failed(
            ReasonCode::MissingSignature,
            "no `signature` parameter".into(),
        );
    };
    let Some(signature) = parse_hex32(signature) else {
        return failed(
            ReasonCode::InvalidSignature,
            "`signature` is not 64 lower-case hex digits".into(),
        );
    };
    let Some(expires_s) = expires.and_then(|e| e.parse::<u64>().ok()) else {
        return failed(
            ReasonCode::InvalidSignature,
            "`expires` is missing or not Unix seconds".into(),
        );
    };
    let message = match policy.form {
        Form::Canonical => {
            if kid.is_none() {
                return failed(ReasonCode::InvalidSignature, "`kid` is missing".into());
            }
            match canonical_of(path, params) {
                Ok(m) => m,
                Err(e) => return failed(ReasonCode::InvalidSignature, e.to_string()),
            }
        }
        Form::Url => match url_message(url) {
            Some(m) => m.to_owned(),
            None => {
                return failed(
                    ReasonCode::InvalidSignature,
                    "`signature` must be the last parameter of the link".into(),
                )
            }
        },
    };
    // Keys: the one named, or (URL form without kid) every key; only those not yet retired.
    let named = |k: &&SigningKey| kid.is_none_or(|kid| k.id == kid);
    let Some(first) = policy.keys.iter().find(named) else {
        return failed(
            ReasonCode::UnknownKey,
            format!("no key `{}`", kid.unwrap_or_default()),
        );
    };
    let mut live = policy
        .keys
        .iter()
        .filter(named)
        .filter(|k| k.is_live(now_ms))
        .peekable();
    if live.peek().is_none() {
        return failed(
            ReasonCode::UnknownKey,
            format!("key `{}` is past its not_after", first.id),
        );
    }
    let Some(key) = live.find(|k| k.verifies(&message, &signature)) else {
        return Check::Failed {
            code: ReasonCode::InvalidSignature,
            detail: "the signature does not match".into(),
            key_mismatch: true,
        };
    };
    // Age is judged only on a genuine signature: `expires` is part of what was signed.
    let expires_ms = expires_s.saturating_mul(1000);
    if now_ms > expires_ms {
        return failed(
            ReasonCode::Expired,
            format!("expired {} s ago", (now_ms - expires_ms) / 1000),
        );
    }
    if expires_ms - now_ms > policy.max_age_s * 1000 {
        return failed(
            ReasonCode::Expired,
            format!(
                "valid for {} s, longer than max_age_seconds {}",
                (expires_ms - now_ms) / 1000,
                policy.max_age_s
            ),
        );
    }
    Check::Valid {
        kid: key.id.clone(),
        click_id: click_id.filter(|c| !c.is_empty()).map(decoded),
        expires_ms,
        objects: key.replay_objects,
    }
}

/// The URL form's signed message: the link up to its final `signature` parameter.
fn url_message(url: &str) -> Option<&str> {
    let at = url.rfind("signature=")?;
    let before = url[..at].chars().last()?;
    let value = &url[at + "signature=".len()..];
    ((before == '&' || before == '?') && !value.contains('&')).then(|| &url[..at - 1])
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// Signs a link: its query is rewritten canonically, `expires` and `kid` are added (and `click_id`
/// when given), then `signature`. What `clickgate sign` prints; networks can port it.
pub fn sign_link(
    policy: &Policy,
    key: &SigningKey,
    link: &str,
    expires_s: u64,
    click_id: Option<&str>,
) -> String {
    let (base, query) = link.split_once('?').unwrap_or((link, ""));
    let mut params: Vec<String> = crate::click::query_pairs(query)
        .filter(|(n, _)| !matches!(n.as_ref(), "signature" | "expires" | "kid" | "click_id"))
        .map(|(n, v)| format!("{}={}", encode(&n), encode(&v)))
        .collect();
    params.push(format!("expires={expires_s}"));
    params.push(format!("kid={}", encode(&key.id)));
    if let Some(c) = click_id {
        params.push(format!("click_id={}", encode(c)));
    }
    let query = params.join("&");
    let unsigned = format!("{base}?{query}");
    let message = match policy.form {
        // The path as the edge will read it from the link (`click::split_url`), so what is signed
        // is what is verified.
        Form::Canonical => canonical_string(split_url(base).0, &query).unwrap_or_default(),
        Form::Url => unsigned.clone(),
    };
    format!("{unsigned}&signature={}", key.sign(&message))
}

// ---------------------------------------------------------------------------------------------
// Replays.

/// The object that remembers a network's click id, one of `objects` (its key's
/// `replay_objects`), and the key it stores it under. Object `n` of a smaller number is object `n`
/// of a larger one, so keys of different numbers share objects, never records' meanings.
pub(crate) fn replay_object(network: &Id, click_id: &str, objects: u64) -> (String, String) {
    let shard = hash64(click_id.as_bytes()) % objects.max(1);
    (
        stored::replay_object(network, shard),
        stored::replay_key(network, click_id),
    )
}

/// A record of a one-time use whose validity has passed: a network's click id (`r/…`, written by
/// [`replay_step`]) or a click's conversion event (`cv/…`, see [`crate::conversion`]); both store
/// their expiry in milliseconds. What the object's daily sweep deletes besides its counts.
pub(crate) fn use_record_expired(key: &str, value: &str, now_ms: u64) -> bool {
    stored::is_use_record(key) && value.parse::<u64>().map_or(true, |t| t < now_ms)
}

/// The replay object's step for one click id: `stored` is when a previous use of it expires.
/// Returns whether this use is a replay, and what to store (the later expiry).
pub(crate) fn replay_step(
    stored_expires_ms: Option<u64>,
    expires_ms: u64,
    now_ms: u64,
) -> (bool, u64) {
    match stored_expires_ms {
        Some(t) if t >= now_ms => (true, t.max(expires_ms)),
        _ => (false, expires_ms),
    }
}

// ---------------------------------------------------------------------------------------------
// The circuit breaker, per isolate.

/// What the check and the replay store made of a click's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureStatus {
    Valid,
    /// Refused: a missing, malformed, forged, expired or reused signature, or an unknown key.
    Failed(ReasonCode),
}

impl SignatureStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureStatus::Valid => "valid",
            SignatureStatus::Failed(code) => code.as_str(),
        }
    }
}

/// The signing outcome a decision acts on: the check, the replay answer, and the mode in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub status: SignatureStatus,
    pub detail: String,
    pub kid: Option<String>,
    /// The mode in force for this click (`report_only` while the breaker is open).
    pub mode: Mode,
    pub(crate) breaker_open: bool,
    /// The replay store could not be asked.
    pub(crate) replay_unavailable: bool,
    /// The click id goes to the replay store after the redirect ([`ReplayCheck::AfterRedirect`]).
    pub(crate) replay_after_redirect: bool,
    pub on_replay_fault: FaultMode,
    pub flood_exempt: bool,
}

impl Signature {
    pub(crate) fn valid(&self) -> bool {
        self.status == SignatureStatus::Valid
    }

    /// Whether the decision must refuse the click on signing grounds alone.
    pub(crate) fn blocks(&self) -> bool {
        self.mode == Mode::Enforce
            && (!self.valid()
                || (self.replay_unavailable && self.on_replay_fault == FaultMode::Closed))
    }

    /// The reason code a refusal records.
    pub fn code(&self) -> ReasonCode {
        match self.status {
            SignatureStatus::Valid => ReasonCode::ReplayStoreUnavailable,
            SignatureStatus::Failed(code) => code,
        }
    }

    pub(crate) fn log_json(&self) -> String {
        JsonLine::new()
            .str("status", self.status.as_str())
            .str("mode", self.mode.name())
            .opt("kid", self.kid.as_deref())
            .opt(
                "detail",
                (!self.detail.is_empty()).then_some(self.detail.as_str()),
            )
            .bool("breaker_open", self.breaker_open)
            .bool("replay_unavailable", self.replay_unavailable)
            .opt(
                "replay_check",
                self.replay_after_redirect.then_some("after_redirect"),
            )
            .finish()
    }
}

/// What the replay store said about a valid click's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayAnswer {
    NotAsked,
    Fresh,
    Replayed,
    Unavailable,
    /// Asked after the redirect; this isolate had not seen the id in use.
    AfterRedirect,
}

/// Per network, what its signer sent lately, and whether its enforcement is paused. Each isolate
/// keeps its own: a broken signer fails everywhere, so every isolate trips on its own within a
/// window, without waiting on shared state.
///
/// The breaker is for a broken signer, so it trips only on evidence an outsider cannot produce.
/// Anyone can send clicks with no signature, with a made-up `kid`, or with a network's real `kid`
/// (it is in every link) and a wrong HMAC; nobody but the network can make its valid signatures
/// stop. So two outcomes are counted, valid signatures and mismatches (a well-formed signature
/// under a live key the network has, whose HMAC does not match), and the breaker opens only when,
/// over the last window, mismatches are at least `min_clicks` and `share` of the two together,
/// *and* the network's valid signatures fell: at least `min_clicks` in the window before, and at
/// most `1 - share` of that number in the last one. A flood of forgeries on a network whose signer
/// works leaves its valid signatures where they were, and the breaker shut.
#[derive(Debug, Default)]
pub(crate) struct Breakers {
    networks: HashMap<Id, BreakerState>,
}

#[derive(Debug, Default)]
struct BreakerState {
    /// Counts per eighth of a window, oldest first, over the last two windows: a fixed bound
    /// however many clicks arrive, and no count can be pushed out by a flood.
    slots: VecDeque<Slot>,
    open: Option<Open>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    index: u64,
    valid: u32,
    mismatched: u32,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    until_ms: u64,
    /// Valid signatures in the window before it opened: the level a recovered signer returns to.
    baseline: u32,
}

const SLOTS_PER_WINDOW: u64 = 8;

/// A window's counts: valid signatures and mismatches in the last window, valid signatures in the
/// window before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WindowCounts {
    valid: u32,
    mismatched: u32,
    valid_before: u32,
}

impl BreakerState {
    fn record(
        &mut self,
        now_ms: u64,
        b: BreakerSettings,
        valid: bool,
        mismatched: bool,
    ) -> WindowCounts {
        let width = (b.window_ms / SLOTS_PER_WINDOW).max(1);
        let now = now_ms / width;
        if self.slots.back().is_none_or(|s| s.index < now) {
            self.slots.push_back(Slot {
                index: now,
                valid: 0,
                mismatched: 0,
            });
        }
        while self
            .slots
            .front()
            .is_some_and(|s| s.index + 2 * SLOTS_PER_WINDOW <= now)
        {
            self.slots.pop_front();
        }
        if let Some(last) = self.slots.back_mut() {
            last.valid = last.valid.saturating_add(u32::from(valid));
            last.mismatched = last.mismatched.saturating_add(u32::from(mismatched));
        }
        let mut t = WindowCounts {
            valid: 0,
            mismatched: 0,
            valid_before: 0,
        };
        for s in &self.slots {
            if s.index + SLOTS_PER_WINDOW > now {
                t.valid = t.valid.saturating_add(s.valid);
                t.mismatched = t.mismatched.saturating_add(s.mismatched);
            } else {
                t.valid_before = t.valid_before.saturating_add(s.valid);
            }
        }
        t
    }
}

/// Whether the last window looks like a signer that broke, against `baseline` valid signatures
/// per window while it worked.
fn signer_broke(t: WindowCounts, baseline: u32, b: BreakerSettings) -> bool {
    let (valid, mismatched) = (f64::from(t.valid), f64::from(t.mismatched));
    t.mismatched >= b.min_clicks
        && mismatched >= b.share * (mismatched + valid)
        && valid <= (1.0 - b.share) * f64::from(baseline)
}

impl Breakers {
    /// Combines a check, the replay answer and the breaker into what the decision acts on. Also
    /// returns what changed when the breaker opens or closes.
    pub(crate) fn judge(
        &mut self,
        network: &Id,
        policy: &Policy,
        check: Check,
        replay: ReplayAnswer,
        now_ms: u64,
    ) -> (Option<Signature>, Option<BreakerEvent>) {
        let (status, detail, kid, key_mismatch) = match check {
            Check::NotSigned => return (None, None),
            Check::Valid { kid, .. } => match replay {
                ReplayAnswer::Replayed => (
                    SignatureStatus::Failed(ReasonCode::Replayed),
                    "click_id seen before".to_owned(),
                    Some(kid),
                    false,
                ),
                _ => (SignatureStatus::Valid, String::new(), Some(kid), false),
            },
            Check::Failed {
                code,
                detail,
                key_mismatch,
            } => (SignatureStatus::Failed(code), detail, None, key_mismatch),
        };
        let mut event = None;
        let mut breaker_open = false;
        if let (Some(b), Mode::Enforce) = (policy.breaker, policy.mode) {
            let state = self.networks.entry(network.clone()).or_default();
            let tally = state.record(now_ms, b, status == SignatureStatus::Valid, key_mismatch);
            if let Some(open) = state.open {
                // Closed as soon as valid signatures are back above `1 - share` of what they were
                // while the signer worked; kept open a window at a time while it still looks
                // broken against that.
                let recovered = f64::from(tally.valid) > (1.0 - b.share) * f64::from(open.baseline);
                let ended = open.until_ms <= now_ms;
                if recovered || (ended && !signer_broke(tally, open.baseline, b)) {
                    state.open = None;
                    event = Some(breaker_event(network, false, tally, b));
                } else if ended {
                    state.open = Some(Open {
                        until_ms: now_ms + b.window_ms,
                        ..open
                    });
                }
            }
            if state.open.is_none()
                && tally.valid_before >= b.min_clicks
                && signer_broke(tally, tally.valid_before, b)
            {
                state.open = Some(Open {
                    until_ms: now_ms + b.window_ms,
                    baseline: tally.valid_before,
                });
                event = Some(breaker_event(network, true, tally, b));
            }
            breaker_open = state.open.is_some();
        }
        let mode = if breaker_open {
            Mode::ReportOnly
        } else {
            policy.mode
        };
        let signature = Signature {
            status,
            detail,
            kid,
            mode,
            breaker_open,
            replay_unavailable: replay == ReplayAnswer::Unavailable,
            replay_after_redirect: replay == ReplayAnswer::AfterRedirect,
            on_replay_fault: policy.on_replay_fault,
            flood_exempt: policy.flood_exempt,
        };
        (Some(signature), event)
    }
}

/// A breaker that opened or closed: its log line, and its counts in words for an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BreakerEvent {
    pub open: bool,
    pub line: String,
    pub detail: String,
}

fn breaker_event(network: &Id, open: bool, t: WindowCounts, b: BreakerSettings) -> BreakerEvent {
    BreakerEvent {
        open,
        line: breaker_line(network, if open { "open" } else { "closed" }, t, b),
        detail: format!(
            "{} mismatched and {} valid signatures in the last {} s, {} valid in the {} s before",
            t.mismatched,
            t.valid,
            b.window_ms / 1000,
            t.valid_before,
            b.window_ms / 1000
        ),
    }
}

fn breaker_line(network: &Id, state: &str, t: WindowCounts, b: BreakerSettings) -> String {
    JsonLine::new()
        .str("event", "signing_breaker")
        .str("level", "error")
        .str("network", network.as_str())
        .str("state", state)
        .str(
            "mode",
            if state == "open" {
                "report_only"
            } else {
                "enforce"
            },
        )
        .num("mismatched", u64::from(t.mismatched))
        .num("valid", u64::from(t.valid))
        .num("valid_window_before", u64::from(t.valid_before))
        .num("window_seconds", b.window_ms / 1000)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const VECTORS: &str = include_str!("../../../tests/vectors/signing.json");
    const NOW: u64 = 1_795_431_600_000; // 2026-11-22T09:00:00Z, an hour before the vectors expire

    fn policy(form: Form, keys: &[(&str, &str, Option<u64>)]) -> Policy {
        Policy {
            mode: Mode::Enforce,
            form,
            keys: keys
                .iter()
                .map(|(id, secret, not_after)| {
                    SigningKey::new(id, secret.as_bytes(), *not_after).unwrap()
                })
                .collect(),
            max_age_s: 86_400,
            on_replay_fault: FaultMode::Open,
            replay_check: ReplayCheck::BeforeRedirect,
            breaker: None,
            flood_exempt: true,
        }
    }

    fn check(p: &Policy, link: &str, now: u64) -> Check {
        let (path, query) = split_url(link);
        verify(p, link, path, query, now)
    }

    fn code(c: &Check) -> &'static str {
        match c {
            Check::NotSigned => "not_signed",
            Check::Valid { .. } => "valid",
            Check::Failed { code, .. } => code.as_str(),
        }
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // Test cases 1, 6 and 7 (the ones with keys long enough for a network secret).
        let cases: [(&[u8], &str, &str); 3] = [
            (&[0x0b; 20], "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (&[0xaa; 131], "Test Using Larger Than Block-Size Key - Hash Key First",
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            (&[0xaa; 131], "This is a test using a larger than block-size key and a larger than block-size data. \
                           The key needs to be hashed before being used by the HMAC algorithm.",
             "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        ];
        for (key, message, expected) in cases {
            assert_eq!(
                SigningKey::new("t", key, None).unwrap().sign(message),
                expected
            );
        }
    }

    #[test]
    fn the_published_vectors_verify() {
        let doc: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        for v in doc["canonical"].as_array().unwrap() {
            let name = v["name"].as_str().unwrap();
            let (path, query) = (v["path"].as_str().unwrap(), v["query"].as_str().unwrap());
            assert_eq!(
                canonical_string(path, query).unwrap(),
                v["string_to_sign"].as_str().unwrap(),
                "{name}"
            );
            let p = policy(
                Form::Canonical,
                &[(
                    v["kid"].as_str().unwrap(),
                    v["secret"].as_str().unwrap(),
                    None,
                )],
            );
            let key = &p.keys[0];
            assert_eq!(
                key.sign(v["string_to_sign"].as_str().unwrap()),
                v["signature"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(
                code(&check(&p, v["link"].as_str().unwrap(), NOW)),
                "valid",
                "{name}"
            );
        }
        for v in doc["url_form"].as_array().unwrap() {
            let p = policy(Form::Url, &[("any", v["secret"].as_str().unwrap(), None)]);
            assert_eq!(code(&check(&p, v["link"].as_str().unwrap(), NOW)), "valid");
        }
    }

    #[test]
    fn a_link_signed_in_any_shape_verifies_as_the_edge_splits_it() {
        let p = policy(
            Form::Canonical,
            &[("k1", "network-7-signing-secret-0001", None)],
        );
        for link in [
            "https://t.example/c?offer_id=1&aff_id=n",
            "https://t.example/c/1/n",
            "/c?offer_id=1&aff_id=n",
            "/c?offer_id=1&aff_id=n&u=https://x.example/y",
            "https://t.example/c?offer_id=1&aff_id=n#top",
        ] {
            let signed = sign_link(&p, &p.keys[0], link, NOW / 1000 + 600, None);
            assert_eq!(code(&check(&p, &signed, NOW)), "valid", "{link}: {signed}");
        }
        // The path signed is the path the edge reads: the root for a bare host, and never the
        // fragment, which no browser sends.
        let signature = |link: &str| {
            let signed = sign_link(&p, &p.keys[0], link, NOW / 1000 + 600, None);
            signed.rsplit_once("signature=").map(|(_, s)| s.to_owned())
        };
        assert_eq!(
            signature("https://t.example?offer_id=1"),
            signature("https://t.example/?offer_id=1")
        );
        assert_eq!(
            signature("https://t.example/c#top"),
            signature("https://t.example/c")
        );
        assert_ne!(signature("/c?offer_id=1"), signature("/d?offer_id=1"));
    }

    #[test]
    fn each_failure_has_its_code() {
        let p = policy(
            Form::Canonical,
            &[("k1", "network-7-signing-secret-0001", None)],
        );
        let signed = sign_link(
            &p,
            &p.keys[0],
            "https://t.example/c?offer_id=1&aff_id=n&sub1=x",
            NOW / 1000 + 600,
            Some("c-1"),
        );
        assert_eq!(code(&check(&p, &signed, NOW)), "valid");
        let Check::Valid { click_id, kid, .. } = check(&p, &signed, NOW) else {
            panic!()
        };
        assert_eq!((click_id.as_deref(), kid.as_str()), (Some("c-1"), "k1"));

        assert_eq!(
            code(&check(&p, "https://t.example/c?offer_id=1&aff_id=n", NOW)),
            "missing_signature"
        );
        assert_eq!(
            code(&check(&p, &signed.replace("sub1=x", "sub1=y"), NOW)),
            "invalid_signature"
        );
        assert_eq!(code(&check(&p, &signed, NOW + 601_000)), "expired");
        assert_eq!(
            code(&check(&p, &signed.replace("kid=k1", "kid=k9"), NOW)),
            "unknown_key"
        );
        // A canonical link must stay canonical: `%2b` for `%2B` is refused, not normalised.
        let plus = sign_link(
            &p,
            &p.keys[0],
            "https://t.example/c?offer_id=1&aff_id=n&sub1=a%2Bb",
            NOW / 1000 + 600,
            None,
        );
        assert_eq!(code(&check(&p, &plus, NOW)), "valid");
        assert_eq!(
            code(&check(&p, &plus.replace("%2B", "%2b"), NOW)),
            "invalid_signature"
        );
        // A link valid for longer than the policy allows is refused as expired.
        let long = sign_link(
            &p,
            &p.keys[0],
            "https://t.example/c?offer_id=1&aff_id=n",
            NOW / 1000 + 2 * 86_400,
            None,
        );
        assert_eq!(code(&check(&p, &long, NOW)), "expired");
        // Off: nothing is checked.
        let off = Policy {
            mode: Mode::Off,
            ..p.clone()
        };
        assert_eq!(
            check(&off, "https://t.example/c?offer_id=1", NOW),
            Check::NotSigned
        );
    }

    #[test]
    fn rotated_keys_overlap_until_the_old_ones_not_after() {
        let retire = NOW + 3_600_000;
        let p = policy(
            Form::Canonical,
            &[
                ("old", "the-old-secret-of-network-7", Some(retire)),
                ("new", "the-new-secret-of-network-7", None),
            ],
        );
        let link = "https://t.example/c?offer_id=1&aff_id=n";
        let by_old = sign_link(&p, &p.keys[0], link, NOW / 1000 + 7200, None);
        let by_new = sign_link(&p, &p.keys[1], link, NOW / 1000 + 7200, None);
        assert_eq!(code(&check(&p, &by_old, NOW)), "valid");
        assert_eq!(code(&check(&p, &by_new, NOW)), "valid");
        assert_eq!(code(&check(&p, &by_old, retire + 1)), "unknown_key");
        assert_eq!(code(&check(&p, &by_new, retire + 1)), "valid");
    }

    // A stop's CI once failed because a property expected `sub1=&` → `sub1&&` to break the
    // signature. Both say "sub1 is empty" to every form parser, so the canonical form signs them
    // alike; giving the empty value any content still fails.
    #[test]
    fn an_empty_value_spelled_without_its_equals_sign_is_the_same_parameter() {
        let p = policy(
            Form::Canonical,
            &[("k1", "network-7-signing-secret-0001", None)],
        );
        let link = "https://t.example/c?offer_id=1001&sub1=&aff_id=net-7";
        let signed = sign_link(&p, &p.keys[0], link, NOW / 1000 + 600, None);
        assert_eq!(code(&check(&p, &signed, NOW)), "valid");
        let bare = signed.replace("&sub1=&", "&sub1&&");
        assert_ne!(bare, signed);
        assert_eq!(code(&check(&p, &bare, NOW)), "valid");
        let filled = signed.replace("&sub1=&", "&sub1=x&");
        assert_eq!(code(&check(&p, &filled, NOW)), "invalid_signature");
    }

    #[test]
    fn the_url_form_signs_the_link_as_sent() {
        let p = policy(Form::Url, &[("a", "url-form-secret-for-network-9", None)]);
        let signed = sign_link(
            &p,
            &p.keys[0],
            "https://t.example/c?offer_id=1&aff_id=n",
            NOW / 1000 + 60,
            None,
        );
        assert_eq!(code(&check(&p, &signed, NOW)), "valid");
        assert_eq!(
            code(&check(&p, &signed.replace("t.example", "u.example"), NOW)),
            "invalid_signature"
        );
        let (unsigned, sig) = signed.rsplit_once("&signature=").unwrap();
        let moved = format!("{}&signature={sig}&x=1", unsigned);
        assert_eq!(code(&check(&p, &moved, NOW)), "invalid_signature");
    }

    #[test]
    fn a_keys_click_ids_are_spread_over_its_replay_objects_and_stored_alike() {
        let net = Id::parse("net-7").unwrap();
        let objects = |n: u64| {
            let mut names: Vec<String> = (0..400)
                .map(|i| replay_object(&net, &format!("c-{i}"), n).0)
                .collect();
            names.sort();
            names.dedup();
            names
        };
        assert_eq!(objects(1), vec!["replay:net-7:0".to_owned()]);
        assert_eq!(objects(4).len(), 4);
        assert_eq!(objects(REPLAY_SHARDS).len(), REPLAY_SHARDS as usize);
        // The stored key is the id's whatever the number: a record means the same in any object.
        assert_eq!(
            replay_object(&net, "c-1", 1).1,
            replay_object(&net, "c-1", REPLAY_SHARDS).1
        );
    }

    #[test]
    fn a_click_ids_question_names_the_objects_of_the_key_that_signed_its_link() {
        let mut p = policy(
            Form::Canonical,
            &[
                ("wide", "network-7-signing-secret-0001", None),
                ("one", "network-7-signing-secret-0002", None),
            ],
        );
        p.keys[1] = p.keys[1].clone().with_replay_objects(1);
        let objects_of = |key: &SigningKey| {
            let link = sign_link(
                &p,
                key,
                "https://t.example/c?offer_id=1",
                NOW / 1000 + 600,
                Some("c-1"),
            );
            let check = check(&p, &link, NOW);
            check.replay_question(&p).map(|q| q.objects)
        };
        assert_eq!(objects_of(&p.keys[0]), Some(REPLAY_SHARDS), "the default");
        assert_eq!(objects_of(&p.keys[1]), Some(1));
        // The URL form without `kid` finds its key by trying each: the one that verified counts.
        p.form = Form::Url;
        let without_kid = |key: &SigningKey| {
            let unsigned = format!(
                "https://t.example/c?offer_id=1&expires={}&click_id=c-1",
                NOW / 1000 + 600
            );
            let link = format!("{unsigned}&signature={}", key.sign(&unsigned));
            check(&p, &link, NOW).replay_question(&p).map(|q| q.objects)
        };
        assert_eq!(without_kid(&p.keys[1]), Some(1));
        assert_eq!(without_kid(&p.keys[0]), Some(REPLAY_SHARDS));
    }

    #[test]
    fn a_click_id_is_accepted_once_while_valid() {
        assert_eq!(replay_step(None, NOW + 10, NOW), (false, NOW + 10));
        assert_eq!(replay_step(Some(NOW + 10), NOW + 10, NOW), (true, NOW + 10));
        // After its validity, the stored record no longer counts.
        assert_eq!(replay_step(Some(NOW - 1), NOW + 20, NOW), (false, NOW + 20));
        let net = Id::parse("net-7").unwrap();
        let (object, key) = replay_object(&net, "c-1", REPLAY_SHARDS);
        assert!(object.starts_with("replay:net-7:"));
        assert_eq!(
            replay_object(&net, "c-1", REPLAY_SHARDS),
            (object, key.clone())
        );
        assert_ne!(
            replay_object(&Id::parse("net-8").unwrap(), "c-1", REPLAY_SHARDS).1,
            key
        );
        assert!(use_record_expired(&key, &(NOW - 1).to_string(), NOW));
        assert!(!use_record_expired(&key, &NOW.to_string(), NOW));
        assert!(!use_record_expired("ip/1/0000000000000001", "1:1", NOW));
        assert!(use_record_expired(
            "cv/00000000000000aa",
            &(NOW - 1).to_string(),
            NOW
        ));
        assert!(!use_record_expired(
            "cv/00000000000000aa",
            &NOW.to_string(),
            NOW
        ));
    }

    fn breaker_policy() -> Policy {
        let mut p = policy(
            Form::Canonical,
            &[("k1", "network-7-signing-secret-0001", None)],
        );
        p.breaker = Some(BreakerSettings {
            share: 0.5,
            window_ms: 60_000,
            min_clicks: 10,
        });
        p
    }

    fn valid_check() -> Check {
        Check::Valid {
            kid: "k1".into(),
            click_id: None,
            expires_ms: NOW + 1,
            objects: REPLAY_SHARDS,
        }
    }

    /// A well-formed signature under the network's key whose HMAC does not match.
    fn mismatch() -> Check {
        Check::Failed {
            code: ReasonCode::InvalidSignature,
            detail: "the signature does not match".into(),
            key_mismatch: true,
        }
    }

    fn failure(code: ReasonCode) -> Check {
        Check::Failed {
            code,
            detail: "x".into(),
            key_mismatch: false,
        }
    }

    #[test]
    fn the_breaker_opens_on_a_broken_signer_and_closes_once_it_recovers() {
        let net = Id::parse("net-7").unwrap();
        let p = breaker_policy();
        let mut b = Breakers::default();
        let mut events = Vec::new();
        // One click a second: two minutes of valid signatures, two minutes of mismatches (the
        // signer broke), then valid signatures again.
        for s in 0..360u64 {
            let check = if (120..240).contains(&s) {
                mismatch()
            } else {
                valid_check()
            };
            let (sig, event) = b.judge(&net, &p, check, ReplayAnswer::NotAsked, NOW + s * 1000);
            let sig = sig.unwrap();
            if let Some(event) = event {
                events.push((s, event.line));
            }
            let open = events.last().is_some_and(|(_, l)| l.contains("\"open\""));
            assert_eq!(sig.breaker_open, open, "second {s}");
            // A mismatch blocks until the breaker opens; while it is open it is only reported.
            assert_eq!(sig.blocks(), !sig.valid() && !open, "second {s}");
        }
        assert_eq!(events.len(), 2, "{events:?}");
        let (opened, closed) = (events[0].0, events[1].0);
        assert!(events[0].1.contains(r#""state":"open""#), "{events:?}");
        assert!(events[1].1.contains(r#""state":"closed""#), "{events:?}");
        // It opens once mismatches are half of the last window and valid signatures have halved:
        // about 30 s after the break, give or take the 7.5 s eighths the window is counted in. It
        // stays open while the signer stays broken, and closes once valid signatures are back
        // above half of what they were: about 30 s after the recovery.
        assert!((142..=158).contains(&opened), "opened at {opened}");
        assert!((262..=278).contains(&closed), "closed at {closed}");
    }

    #[test]
    fn an_outsider_cannot_open_the_breaker() {
        let net = Id::parse("net-7").unwrap();
        let p = breaker_policy();
        type Forgery = (&'static str, fn() -> Check);
        let floods: [Forgery; 4] = [
            ("missing signatures", || {
                failure(ReasonCode::MissingSignature)
            }),
            ("made-up kids", || failure(ReasonCode::UnknownKey)),
            ("malformed signatures", || {
                failure(ReasonCode::InvalidSignature)
            }),
            ("forgeries under the real kid", mismatch),
        ];
        // While the network's signer works (a valid click a second), 50 forged clicks a second of
        // any kind, for ten minutes.
        for (what, forged) in floods {
            let mut b = Breakers::default();
            for s in 0..600u64 {
                let (sig, event) = b.judge(
                    &net,
                    &p,
                    valid_check(),
                    ReplayAnswer::NotAsked,
                    NOW + s * 1000,
                );
                assert!(!sig.unwrap().breaker_open && event.is_none(), "{what}");
                for i in 0..50 {
                    let at = NOW + s * 1000 + i * 20 + 1;
                    let (sig, event) = b.judge(&net, &p, forged(), ReplayAnswer::NotAsked, at);
                    let sig = sig.unwrap();
                    assert!(sig.blocks() && event.is_none(), "{what}, second {s}");
                }
            }
        }
        // Clicks without a signature or with a made-up kid never count, even when the network's
        // own clicks stop.
        for (what, forged) in &floods[..3] {
            let mut b = Breakers::default();
            for s in 0..600u64 {
                if s < 120 {
                    b.judge(
                        &net,
                        &p,
                        valid_check(),
                        ReplayAnswer::NotAsked,
                        NOW + s * 1000,
                    );
                }
                for i in 0..50 {
                    let at = NOW + s * 1000 + i * 20 + 1;
                    let (sig, event) = b.judge(&net, &p, forged(), ReplayAnswer::NotAsked, at);
                    assert!(
                        sig.unwrap().blocks() && event.is_none(),
                        "{what}, second {s}"
                    );
                }
            }
        }
        // A network whose signer never sent a window of valid signatures has nothing to fall:
        // forgeries under its real kid are refused however many come.
        let mut b = Breakers::default();
        for s in 0..600u64 {
            if s % 10 == 0 {
                b.judge(
                    &net,
                    &p,
                    valid_check(),
                    ReplayAnswer::NotAsked,
                    NOW + s * 1000,
                );
            }
            for i in 0..50 {
                let at = NOW + s * 1000 + i * 20 + 1;
                let (sig, event) = b.judge(&net, &p, mismatch(), ReplayAnswer::NotAsked, at);
                assert!(sig.unwrap().blocks() && event.is_none(), "second {s}");
            }
        }
    }

    #[test]
    fn a_verified_link_under_a_wrong_secret_is_a_key_mismatch_and_nothing_else_is() {
        let signer = policy(
            Form::Canonical,
            &[("k1", "not-the-secret-of-network-7", None)],
        );
        let p = policy(
            Form::Canonical,
            &[("k1", "network-7-signing-secret-0001", None)],
        );
        let exp = NOW / 1000 + 600;
        let wrong = sign_link(
            &signer,
            &signer.keys[0],
            "https://t.example/c?offer_id=1",
            exp,
            None,
        );
        let mismatched = |c: &Check| {
            matches!(
                c,
                Check::Failed {
                    key_mismatch: true,
                    ..
                }
            )
        };
        assert!(mismatched(&check(&p, &wrong, NOW)));
        let other_kid = policy(
            Form::Canonical,
            &[("k9", "network-7-signing-secret-0001", None)],
        );
        let right = sign_link(&p, &p.keys[0], "https://t.example/c?offer_id=1", exp, None);
        for link in [
            "https://t.example/c?offer_id=1".to_owned(),
            sign_link(
                &other_kid,
                &other_kid.keys[0],
                "https://t.example/c?offer_id=1",
                exp,
                None,
            ),
            right.replace("&signature=", "&signature=zz"),
            right.replace("offer_id=1", "offer_id=%7e"),
        ] {
            assert!(!mismatched(&check(&p, &link, NOW)), "{link}");
        }
        assert!(matches!(check(&p, &right, NOW), Check::Valid { .. }));
    }

    #[test]
    fn replay_answers_and_faults_reach_the_verdict() {
        let net = Id::parse("net-7").unwrap();
        let mut p = policy(
            Form::Canonical,
            &[("k1", "network-7-signing-secret-0001", None)],
        );
        let valid = || Check::Valid {
            kid: "k1".into(),
            click_id: Some("c".into()),
            expires_ms: NOW + 1,
            objects: REPLAY_SHARDS,
        };
        let mut b = Breakers::default();
        let judge = |b: &mut Breakers, p: &Policy, answer| {
            b.judge(&net, p, valid(), answer, NOW).0.unwrap()
        };
        assert!(!judge(&mut b, &p, ReplayAnswer::Fresh).blocks());
        let replayed = judge(&mut b, &p, ReplayAnswer::Replayed);
        assert_eq!(
            (replayed.status.as_str(), replayed.blocks()),
            ("replayed", true)
        );
        assert!(!judge(&mut b, &p, ReplayAnswer::Unavailable).blocks());
        p.on_replay_fault = FaultMode::Closed;
        let closed = judge(&mut b, &p, ReplayAnswer::Unavailable);
        assert_eq!(
            (closed.code(), closed.blocks()),
            (ReasonCode::ReplayStoreUnavailable, true)
        );
        // Asked after the redirect: valid, and the log says the check comes later.
        let later = judge(&mut b, &p, ReplayAnswer::AfterRedirect);
        assert!(later.valid() && !later.blocks());
        assert!(later
            .log_json()
            .contains(r#""replay_check":"after_redirect""#));
        assert!(!judge(&mut b, &p, ReplayAnswer::Fresh)
            .log_json()
            .contains("replay_check"));
        p.mode = Mode::ReportOnly;
        assert!(!judge(&mut b, &p, ReplayAnswer::Replayed).blocks());
    }

    #[test]
    fn networks_in_the_config_are_checked_with_paths() {
        let doc = |signing: &str| {
            format!(
                r#"{{"version": 1, "offers": [{{"id": "1", "landing_url": "https://x.example/"}}],
                    "networks": [{{"id": "net-7", "signing": {signing}}}]}}"#
            )
        };
        let ok = crate::config::Config::compile(&doc(
            r#"{"mode": "enforce", "keys": [{"id": "k1", "secret": "network-7-signing-secret-0001", "not_after": "2027-01-01"}],
                "breaker": {"invalid_share": 0.3}}"#,
        ))
        .unwrap();
        let p = &ok.networks[&Id::parse("net-7").unwrap()];
        assert_eq!(
            (p.mode, p.form, p.keys.len(), p.max_age_s),
            (Mode::Enforce, Form::Canonical, 1, 86_400)
        );
        assert_eq!(p.breaker.unwrap().share, 0.3);
        assert_eq!(p.replay_check, ReplayCheck::BeforeRedirect, "the default");
        let later = crate::config::Config::compile(&doc(
            r#"{"mode": "enforce", "replay_check": "after_redirect", "keys": [{"id": "k1", "secret": "network-7-signing-secret-0001"}]}"#,
        ))
        .unwrap();
        assert_eq!(
            later.networks[&Id::parse("net-7").unwrap()].replay_check,
            ReplayCheck::AfterRedirect
        );

        let errors = crate::config::Config::compile(&doc(
            r#"{"mode": "strict", "replay_check": "later", "keys": [{"id": "k 1", "secret": "short"}], "max_age_seconds": 0}"#,
        ))
        .unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "networks[0].signing.mode",
                "networks[0].signing.replay_check",
                "networks[0].signing.max_age_seconds",
                "networks[0].signing.keys[0].id",
                "networks[0].signing.keys[0].secret"
            ],
            "{errors:?}"
        );
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn signed(sub: &str) -> (Policy, String) {
            let p = policy(
                Form::Canonical,
                &[("k1", "network-7-signing-secret-0001", None)],
            );
            let link = format!(
                "https://t.example/c?offer_id=1001&aff_id=net-7&sub1={}",
                encode(sub)
            );
            let s = sign_link(&p, &p.keys[0], &link, NOW / 1000 + 600, Some("click-9"));
            (p, s)
        }

        /// A link's path and its parameters in sorted order, as the canonical form reads them.
        fn meaning(link: &str) -> (String, Vec<(String, String)>) {
            let (base, query) = link.split_once('?').unwrap();
            let mut params: Vec<(String, String)> = pairs(query)
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect();
            params.sort();
            (base.to_owned(), params)
        }

        proptest! {
            // Any one-byte change to a signed link fails unless the link still reads as the same
            // path and parameters: `sub1=&` and `sub1&&` are one empty `sub1`, and the signature
            // covers what the link says, not how its separators are spelled.
            #[test]
            fn changing_any_byte_fails_or_changes_nothing(sub in "[ -~]{0,20}", at in any::<proptest::sample::Index>(), byte in 0x21u8..0x7f) {
                let (p, link) = signed(&sub);
                let start = link.find("/c?").unwrap();
                let i = start + at.index(link.len() - start);
                prop_assume!(link.as_bytes()[i] != byte);
                let mut bytes = link.clone().into_bytes();
                bytes[i] = byte;
                let changed = String::from_utf8(bytes).unwrap();
                if code(&check(&p, &changed, NOW)) == "valid" {
                    prop_assert_eq!(meaning(&link), meaning(&changed), "{} -> {}", link, changed);
                }
            }

            // The order of the parameters in the link does not matter.
            #[test]
            fn parameter_order_does_not_matter(sub in "[ -~]{0,20}", seed in any::<u64>()) {
                let (p, link) = signed(&sub);
                let (base, query) = link.split_once('?').unwrap();
                let mut params: Vec<&str> = query.split('&').collect();
                let n = params.len();
                for i in 0..n {
                    params.swap(i, (seed.rotate_left(i as u32 * 7) as usize) % n);
                }
                let shuffled = format!("{base}?{}", params.join("&"));
                prop_assert_eq!(code(&check(&p, &shuffled, NOW)), "valid");
            }

            #[test]
            fn verify_never_panics(query in "\\PC{0,120}") {
                let p = policy(Form::Url, &[("k1", "network-7-signing-secret-0001", None)]);
                let _ = verify(&p, &format!("https://t/c?{query}"), "/c", &query, NOW);
                let p = policy(Form::Canonical, &[("k1", "network-7-signing-secret-0001", None)]);
                let _ = verify(&p, &format!("https://t/c?{query}"), "/c", &query, NOW);
            }
        }
    }
}
