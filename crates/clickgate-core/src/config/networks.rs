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
use super::secrets::Secrets;
use crate::click::Id;
use crate::fault::Invalid;
use crate::flood::{self, FloodMode, Thresholds};
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
    pub(crate) not_after_ms: Option<u64>,
    /// How many replay objects the click ids of this key's links are spread over
    /// ([`crate::signing::replay_object`]). A key's, not the network's: a link is always checked
    /// under the key that signed it, so its id is asked of the same object on every use, and a
    /// network changes the number by rotating to a key with another, never under a live link.
    pub(crate) replay_objects: u64,
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
            replay_objects: *RANGES.replay_objects.end(),
        })
    }

    /// The key with its click ids spread over `n` replay objects (the config allows 1 to 16; the
    /// default is 16).
    pub fn with_replay_objects(mut self, n: u64) -> SigningKey {
        self.replay_objects = n;
        self
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
/// as broken is in [`crate::signing::Breakers`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    pub share: f64,
    pub(crate) window_ms: u64,
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

/// The flood settings of the document: the defaults (the top-level `flood`, else the built-in
/// ones), and the networks that set their own on top of them.
#[derive(Debug, Clone, Default)]
pub struct FloodSettings {
    pub defaults: Thresholds,
    pub networks: FxHashMap<Id, Thresholds>,
}

impl FloodSettings {
    /// A network's thresholds: its own, or the defaults.
    pub fn of(&self, network: &Id) -> Thresholds {
        self.networks.get(network).copied().unwrap_or(self.defaults)
    }

    /// How many networks set their own.
    pub fn len(&self) -> usize {
        self.networks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }
}

// ---------------------------------------------------------------------------------------------
// Config.

/// The `networks[]` section and the top-level `flood` defaults: signing policies, and flood
/// thresholds where they differ from the defaults (each network's on top of them).
pub(crate) fn compile_networks(
    value: Option<&Value>,
    defaults: Option<&Value>,
    secrets: Secrets,
    errors: &mut Vec<ConfigError>,
) -> (
    FxHashMap<Id, Policy>,
    FloodSettings,
    rustc_hash::FxHashSet<Id>,
) {
    let defaults = defaults
        .and_then(|v| compile_thresholds(v, "flood", Thresholds::default(), errors))
        .unwrap_or_default();
    let (mut signing, mut flood) = (FxHashMap::default(), FxHashMap::default());
    let settings = |networks| FloodSettings { defaults, networks };
    let Some(value) = value else {
        return (signing, settings(flood), rustc_hash::FxHashSet::default());
    };
    let Some(list) = value.as_array() else {
        errors.push(err(
            "networks",
            format!("must be a list, found {}", kind(value)),
        ));
        return (signing, settings(flood), rustc_hash::FxHashSet::default());
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
            .and_then(|s| compile_policy(s, &f.child("signing"), secrets, errors));
        let thresholds = f
            .get("flood")
            .and_then(|v| compile_thresholds(v, &f.child("flood"), defaults, errors));
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
    (signing, settings(flood), seen)
}

fn compile_thresholds(
    value: &Value,
    path: &str,
    defaults: Thresholds,
    errors: &mut Vec<ConfigError>,
) -> Option<Thresholds> {
    let mut f = Fields::of(value, path, errors)?;
    let mut t = defaults;
    let clicks = RANGES.flood_clicks;
    for (key, slot) in [
        ("per_minute", &mut t.per_minute),
        ("per_hour", &mut t.per_hour),
        ("per_day", &mut t.per_day),
    ] {
        if let Some(n) = f.u32_in(key, clicks.clone(), errors) {
            *slot = Some(n);
        }
    }
    if f.get("mode").is_some() {
        t.mode = f.choice("mode", FloodMode::CHOICES, errors);
    }
    if let Some(n) = f.u32_in("floor", clicks, errors) {
        t.floor = n;
    }
    if let Some(n) = f.u32_in("baseline_days", RANGES.baseline_days, errors) {
        t.baseline_days = n;
    }
    if f.get("on_object_fault").is_some() {
        t.on_fault = f.choice("on_object_fault", FaultMode::CHOICES, errors);
    }
    if let Some(x) = f.f64_in("tolerance", RANGES.tolerance, errors) {
        t.tolerance = x;
    }
    if let Some(x) = f.f64_in("flagged_share", RANGES.share, errors) {
        t.flagged_share = x;
    }
    for (key, slot, range) in [
        ("tail", &mut t.tail, flood::TAIL),
        ("dispersion", &mut t.dispersion, flood::DISPERSION),
        (
            "burst_tolerance",
            &mut t.burst_tolerance,
            flood::BURST_TOLERANCE,
        ),
    ] {
        if let Some(x) = f.f64_in(key, range, errors) {
            *slot = x;
        }
    }
    for (key, slot) in [
        ("min_clicks", &mut t.min_clicks),
        ("min_flagged", &mut t.min_flagged),
    ] {
        if let Some(n) = f.u32_in(key, RANGES.flood_clicks, errors) {
            *slot = n;
        }
    }
    f.finish(errors);
    Some(t)
}

fn compile_policy(
    value: &Value,
    path: &str,
    secrets: Secrets,
    errors: &mut Vec<ConfigError>,
) -> Option<Policy> {
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
                if let Some(key) = compile_key(k, &kpath, secrets, errors) {
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

fn compile_key(
    value: &Value,
    path: &str,
    secrets: Secrets,
    errors: &mut Vec<ConfigError>,
) -> Option<SigningKey> {
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
    if f.map.get("secret").is_none_or(Value::is_null) {
        errors.push(err(&f.child("secret"), "is required"));
    }
    let secret = f.secret("secret", secrets, errors);
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
    let objects = f.u64_in("replay_objects", RANGES.replay_objects, errors);
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
    let key = SigningKey::new(&id?, secret?.as_bytes(), not_after).ok()?;
    Some(match objects {
        Some(n) => key.with_replay_objects(n),
        None => key,
    })
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

#[cfg(test)]
mod tests {
    use crate::click::Id;
    use crate::config::Config;
    use crate::flood::FloodMode;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn document(rest: &str) -> String {
        format!(
            r#"{{"version": 1, "offers": [{{"id": "1", "landing_url": "https://x.example/"}}]{rest}}}"#
        )
    }

    #[test]
    fn the_flood_mode_is_set_per_network_over_the_documents_default() {
        let config = Config::compile(&document(
            r#", "flood": {"mode": "report_only", "tolerance": 30},
               "networks": [{"id": "net-7", "flood": {"mode": "enforce"}}, {"id": "net-8", "flood": {"floor": 50}}]"#,
        ))
        .unwrap();
        let of = |id: &str| config.flood_thresholds(&Id::parse(id).unwrap());
        assert_eq!(
            (of("net-7").mode, of("net-7").tolerance),
            (FloodMode::Enforce, 30.0)
        );
        assert_eq!(
            (of("net-8").mode, of("net-8").floor),
            (FloodMode::ReportOnly, 50)
        );
        assert_eq!(of("unlisted").mode, FloodMode::ReportOnly);
        // Without a default, enforce.
        let plain = Config::compile(&document("")).unwrap();
        assert_eq!(
            plain.flood_thresholds(&Id::parse("x").unwrap()).mode,
            FloodMode::Enforce
        );
    }

    #[test]
    fn a_keys_replay_objects_are_read_and_default_to_sixteen() {
        let config = Config::compile(&document(
            r#", "networks": [{"id": "n", "signing": {"keys": [
                {"id": "wide", "secret": "a-secret-of-16-bytes"},
                {"id": "one", "secret": "another-secret-of-16-bytes", "replay_objects": 1}]}}]"#,
        ))
        .unwrap();
        let policy = config.networks.get(&Id::parse("n").unwrap()).unwrap();
        let objects: Vec<(&str, u64)> = policy
            .keys
            .iter()
            .map(|k| (k.id.as_str(), k.replay_objects))
            .collect();
        assert_eq!(objects, [("wide", 16), ("one", 1)]);
    }

    #[test]
    fn the_bounds_parameters_are_read_and_checked() {
        let config = Config::compile(&document(
            r#", "networks": [{"id": "n", "flood": {"tail": 1e-9, "dispersion": 0, "min_clicks": 5, "min_flagged": 3, "burst_tolerance": 60}}]"#,
        ))
        .unwrap();
        let t = config.flood_thresholds(&Id::parse("n").unwrap());
        assert_eq!(
            (
                t.tail,
                t.dispersion,
                t.min_clicks,
                t.min_flagged,
                t.burst_tolerance
            ),
            (1e-9, 0.0, 5, 3, 60.0)
        );
        for (flood, problem) in [
            (r#""tail": 0.5"#, "networks[0].flood.tail: must be a number from 0.000000000001 to 0.01, found 0.5"),
            (r#""dispersion": -1"#, "networks[0].flood.dispersion: must be a number from 0 to 10, found -1"),
            (r#""min_flagged": 0"#, "networks[0].flood.min_flagged: must be a whole number from 1 to 1000000000, found 0"),
            (r#""burst_tolerance": 0.5"#, "networks[0].flood.burst_tolerance: must be a number from 1 to 1000, found 0.5"),
        ] {
            let errors = Config::compile(&document(&format!(
                r#", "networks": [{{"id": "n", "flood": {{{flood}}}}}]"#
            )))
            .err()
            .unwrap();
            let said: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.path, e.problem)).collect();
            assert_eq!(said, [problem]);
        }
    }

    #[test]
    fn an_unknown_flood_mode_is_named_with_the_ones_there_are() {
        for (rest, path) in [
            (r#", "flood": {"mode": "monitor"}"#, "flood.mode"),
            (
                r#", "networks": [{"id": "n", "flood": {"mode": "Report_Only"}}]"#,
                "networks[0].flood.mode",
            ),
        ] {
            let errors = Config::compile(&document(rest)).err().unwrap();
            let e = errors
                .iter()
                .find(|e| e.path == path)
                .unwrap_or_else(|| panic!("{errors:?}"));
            assert!(
                e.problem
                    .starts_with(r#"must be "enforce" or "report_only", found"#),
                "{}",
                e.problem
            );
        }
    }
}
