//! The `networks[]` section of the config document, compiled: each network's signing policy (its
//! keys, form, mode, replay check and breaker) and its flood thresholds where they differ from the
//! defaults. How a signature is checked is in [`crate::signing`]; how a flood is judged, in
//! [`crate::flood`].

use super::json::Value;
use hmac::{Hmac, Mac};
use rustc_hash::FxHashMap;
use sha2::Sha256;

use super::error::{err, ConfigError};
use super::fields::{kind, Fields};
use super::ranges::RANGES;
use crate::click::Id;
use crate::fault::Invalid;
use crate::flood::Thresholds;
use crate::time::parse_instant;
use crate::verdict::FaultMode;

const MAX_KEYS: usize = 8;
const MIN_SECRET_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    ReportOnly,
    Off,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::ReportOnly => "report_only",
            Mode::Off => "off",
        }
    }
}

/// When a click id is checked against the replay store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayCheck {
    /// The click waits for the store's answer: a click id is redirected once, at the cost of a
    /// round trip to the store on every such click.
    BeforeRedirect,
    /// The click is redirected at once and its id goes to the store in the isolate's next batch
    /// ([`crate::network::click_ids`]). A repeat in the same isolate is refused at once; one elsewhere is refused
    /// once the store has answered, and one that arrives before that is redirected and logged
    /// (`replay_detected`).
    AfterRedirect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Canonical,
    Url,
}

#[derive(Clone)]
pub struct SigningKey {
    pub id: String,
    mac: Hmac<Sha256>,
    /// After this the key no longer verifies: the overlap of a rotation ends here.
    pub not_after_ms: Option<u64>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.id)
    }
}

impl SigningKey {
    /// A network's key from the operator's config: one too short is the operator's to fix.
    pub fn new(id: &str, secret: &[u8], not_after_ms: Option<u64>) -> Result<SigningKey, Invalid> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(Invalid::operator(format!(
                "must be at least {MIN_SECRET_LEN} bytes"
            )));
        }
        let mac =
            Hmac::<Sha256>::new_from_slice(secret).map_err(|e| Invalid::operator(e.to_string()))?;
        Ok(SigningKey {
            id: id.to_owned(),
            mac,
            not_after_ms,
        })
    }

    /// Whether the key still verifies at `now_ms`: not yet past its `not_after`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.not_after_ms.is_none_or(|t| now_ms <= t)
    }

    pub fn sign(&self, message: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(message.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Constant time: the comparison must not tell a forger how many leading bytes were right.
    pub(crate) fn verifies(&self, message: &str, signature: &[u8; 32]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(message.as_bytes());
        mac.verify_slice(signature).is_ok()
    }
}

/// When a network's signer seems broken, enforcement pauses for `window_ms` at a time; what counts
/// as broken is in [`Breakers`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    pub share: f64,
    pub window_ms: u64,
    pub min_clicks: u32,
}

/// A network's signing policy, from the config's `networks[].signing`.
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    pub form: Form,
    pub keys: Vec<SigningKey>,
    pub max_age_s: u64,
    /// When the replay store cannot be asked: let the click through or refuse it.
    pub on_replay_fault: FaultMode,
    pub replay_check: ReplayCheck,
    pub breaker: Option<BreakerSettings>,
    /// Clicks with a valid signature skip the click-flood block.
    pub flood_exempt: bool,
}

// ---------------------------------------------------------------------------------------------
// Config.

/// The `networks[]` section: signing policies, and flood thresholds where they differ from the
/// defaults.
pub(crate) fn compile_networks(
    value: &Value,
    errors: &mut Vec<ConfigError>,
) -> (
    FxHashMap<Id, Policy>,
    FxHashMap<Id, Thresholds>,
    rustc_hash::FxHashSet<Id>,
) {
    let (mut signing, mut flood) = (FxHashMap::default(), FxHashMap::default());
    let Some(list) = value.as_array() else {
        errors.push(err(
            "networks",
            format!("must be a list, found {}", kind(value)),
        ));
        return (signing, flood, rustc_hash::FxHashSet::default());
    };
    let mut seen = rustc_hash::FxHashSet::default();
    seen.reserve(list.len());
    flood.reserve(list.len());
    for (i, item) in list.iter().enumerate() {
        let path = format!("networks[{i}]");
        let Some(mut f) = Fields::of(item, &path, errors) else {
            continue;
        };
        let id = f.id("id", true, errors);
        let policy = f
            .get("signing")
            .and_then(|s| compile_policy(s, &f.child("signing"), errors));
        let thresholds = f
            .get("flood")
            .and_then(|v| compile_thresholds(v, &f.child("flood"), errors));
        f.finish(errors);
        let Some(id) = id else { continue };
        if !seen.insert(id.clone()) {
            errors.push(err(
                &format!("{path}.id"),
                format!("`{id}` is declared twice"),
            ));
        }
        if let Some(p) = policy {
            signing.insert(id.clone(), p);
        }
        if let Some(t) = thresholds {
            flood.insert(id, t);
        }
    }
    (signing, flood, seen)
}

fn compile_thresholds(
    value: &Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Thresholds> {
    let mut f = Fields::of(value, path, errors)?;
    let mut t = Thresholds::default();
    let clicks = RANGES.flood_clicks;
    t.per_minute = f.u32_in("per_minute", clicks.clone(), errors);
    t.per_hour = f.u32_in("per_hour", clicks.clone(), errors);
    t.per_day = f.u32_in("per_day", clicks.clone(), errors);
    if let Some(n) = f.u32_in("floor", clicks, errors) {
        t.floor = n;
    }
    if let Some(n) = f.u32_in("baseline_days", RANGES.baseline_days, errors) {
        t.baseline_days = n;
    }
    t.on_fault = f.choice("on_object_fault", FaultMode::CHOICES, errors);
    if let Some(x) = f.f64_in("tolerance", RANGES.tolerance, errors) {
        t.tolerance = x;
    }
    if let Some(x) = f.f64_in("flagged_share", RANGES.share, errors) {
        t.flagged_share = x;
    }
    f.finish(errors);
    Some(t)
}

fn compile_policy(value: &Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Policy> {
    let mut f = Fields::of(value, path, errors)?;
    let before = errors.len();
    let mode = f.choice(
        "mode",
        &[
            ("enforce", Mode::Enforce),
            ("report_only", Mode::ReportOnly),
            ("off", Mode::Off),
        ],
        errors,
    );
    let form = f.choice(
        "form",
        &[("canonical", Form::Canonical), ("url", Form::Url)],
        errors,
    );
    let on_replay_fault = f.choice("on_replay_store_fault", FaultMode::CHOICES, errors);
    let replay_check = f.choice(
        "replay_check",
        &[
            ("before_redirect", ReplayCheck::BeforeRedirect),
            ("after_redirect", ReplayCheck::AfterRedirect),
        ],
        errors,
    );
    let max_age_s = f
        .u64_in("max_age_seconds", RANGES.max_age_seconds, errors)
        .unwrap_or(86_400);
    let flood_exempt = match f.get("flood_exempt") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            errors.push(err(
                &f.child("flood_exempt"),
                format!("must be true or false, found {}", kind(other)),
            ));
            true
        }
    };
    let mut keys = Vec::new();
    match f.required("keys", errors).map(|k| (k, k.as_array())) {
        Some((_, Some(list))) if !list.is_empty() && list.len() <= MAX_KEYS => {
            for (i, k) in list.iter().enumerate() {
                let kpath = format!("{path}.keys[{i}]");
                if let Some(key) = compile_key(k, &kpath, errors) {
                    if keys.iter().any(|x: &SigningKey| x.id == key.id) {
                        errors.push(err(
                            &format!("{kpath}.id"),
                            format!("`{}` is declared twice", key.id),
                        ));
                    }
                    keys.push(key);
                }
            }
        }
        Some(_) => errors.push(err(
            &f.child("keys"),
            format!("must be a list of 1 to {MAX_KEYS} keys"),
        )),
        None => {}
    }
    let breaker = f
        .get("breaker")
        .and_then(|b| compile_breaker(b, &f.child("breaker"), errors));
    f.finish(errors);
    (errors.len() == before).then_some(Policy {
        mode,
        form,
        keys,
        max_age_s,
        on_replay_fault,
        replay_check,
        breaker,
        flood_exempt,
    })
}

fn compile_key(value: &Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<SigningKey> {
    let mut f = Fields::of(value, path, errors)?;
    let id = f.required_string("id", errors).map(str::to_owned);
    let id = id.filter(|id| {
        let ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(is_unreserved);
        if !ok {
            errors.push(err(
                &f.child("id"),
                "must be 1 to 64 of A-Z a-z 0-9 - . _ ~",
            ));
        }
        ok
    });
    let secret = f.required("secret", errors).and_then(|s| match s.as_str() {
        Some(s) => Some(s.to_owned()),
        None => {
            errors.push(err(&f.child("secret"), "must be a string"));
            None
        }
    });
    let not_after = match f.string("not_after", errors) {
        None => None,
        Some(t) => match parse_instant(t) {
            Ok(ms) => Some(ms),
            Err(e) => {
                errors.push(err(&f.child("not_after"), e));
                None
            }
        },
    };
    let secret = secret.filter(|s| {
        let ok = s.len() >= MIN_SECRET_LEN;
        if !ok {
            errors.push(err(
                &f.child("secret"),
                format!("must be at least {MIN_SECRET_LEN} bytes"),
            ));
        }
        ok
    });
    f.finish(errors);
    SigningKey::new(&id?, secret?.as_bytes(), not_after).ok()
}

fn compile_breaker(
    value: &Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<BreakerSettings> {
    let mut f = Fields::of(value, path, errors)?;
    let share = f
        .f64_in("invalid_share", RANGES.share, errors)
        .unwrap_or(0.5);
    let window_s = f
        .u64_in("window_seconds", RANGES.breaker_window_seconds, errors)
        .unwrap_or(300);
    let min_clicks = f
        .u32_in("min_clicks", RANGES.breaker_min_clicks, errors)
        .unwrap_or(50);
    f.finish(errors);
    Some(BreakerSettings {
        share,
        window_ms: window_s * 1000,
        min_clicks,
    })
}

/// Lower-case hex, as signatures are sent.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes the canonical form leaves unencoded; a key id is made of them only.
// Inlined: every byte of every signed parameter is checked, and the size-optimised build would
// otherwise call it byte by byte.
#[inline(always)]
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}
