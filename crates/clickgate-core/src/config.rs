//! The config document (JSON, kept in Workers KV) and its compiled form.
//!
//! The document is compiled once per isolate: ids parsed, templates split, IP lists sorted. The same
//! function backs `clickgate config validate`, `config push` and the Worker, so what the CLI accepts
//! is exactly what the edge will run. It reports every problem at once, each with its field path,
//! because an operator fixing a 2,000-line document one error per push would give up.

use std::collections::HashMap;
use std::fmt;

use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

use crate::click::Id;
use crate::ip::{IpNet, IpSet};
use crate::rules::{
    compile_asns, compile_geo, compile_rule, index_by_offer, select, Geo, Lists, RefererPattern,
    Rule,
};
use crate::template::Template;

pub const SCHEMA_VERSION: u64 = 1;
/// KV values are capped at 25 MiB; the document is kept well under so an isolate compiles it fast.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the problem is, as `offers[2].landing_url`; empty for the document itself.
    pub path: String,
    pub problem: String,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferStatus {
    Active,
    Paused,
}

#[derive(Debug, Clone)]
pub struct Offer {
    pub id: Id,
    pub name: Option<String>,
    pub advertiser_id: Option<Id>,
    pub status: OfferStatus,
    pub landing: Template,
    pub geo: Option<Geo>,
}

/// A document that has been checked and compiled; the only form the engine accepts.
///
/// Its tables, here and in [`Lists`] and the rules' scopes, are keyed by what the operator wrote, so
/// they hash with Fx rather than SipHash: SipHash guards tables whose keys a client can choose, and
/// its cost showed in every click's lookups and in compiling a document with many rules.
#[derive(Debug, Clone)]
pub struct Config {
    pub offers: FxHashMap<Id, Offer>,
    pub blocked_ips: IpSet,
    pub lists: Lists,
    pub rules: Vec<Rule>,
    /// Per offer, the indexes into `rules` that can decide its clicks, best first.
    pub rules_by_offer: FxHashMap<Id, Vec<usize>>,
    /// Per offer, the rules that judge its conversions (level `conversion` or `both`), best first.
    pub conversion_rules_by_offer: FxHashMap<Id, Vec<usize>>,
    /// Signing policies per network (affiliate), from `networks[]`.
    pub networks: FxHashMap<Id, crate::signing::Policy>,
    /// Flood thresholds of the networks that set their own; the others use the defaults.
    pub flood: FxHashMap<Id, crate::flood::Thresholds>,
    /// How each advertiser's conversion postbacks are checked, from `advertisers[]`.
    pub postbacks: FxHashMap<Id, crate::conversion::PostbackPolicy>,
    /// The Workers Analytics Engine binding each decision is also written to, from
    /// `analytics.binding`.
    pub analytics_binding: Option<String>,
    /// The keys of the lists kept apart in KV that the document uses.
    pub stored_lists: Vec<String>,
    /// A short hash of the source text, to tell in logs which document is in force.
    pub digest: String,
}

impl Config {
    /// A network's flood thresholds: its own, or the defaults.
    pub fn flood_thresholds(&self, network: &Id) -> crate::flood::Thresholds {
        self.flood.get(network).copied().unwrap_or_default()
    }

    /// The one rule that judges conversions of clicks on this offer from this affiliate.
    pub fn conversion_rule(&self, offer_id: &Id, aff_id: &Id) -> Option<&Rule> {
        let candidates = self
            .conversion_rules_by_offer
            .get(offer_id)
            .map_or(&[][..], Vec::as_slice);
        select(&self.rules, candidates, aff_id)
    }

    /// The one rule that decides clicks on this offer from this affiliate, if any covers them.
    pub fn deciding_rule(&self, offer_id: &Id, aff_id: &Id) -> Option<&Rule> {
        let candidates = self
            .rules_by_offer
            .get(offer_id)
            .map_or(&[][..], Vec::as_slice);
        select(&self.rules, candidates, aff_id)
    }

    pub fn compile(text: &str) -> Result<Config, Vec<ConfigError>> {
        Config::compile_with_lists(text, &StoredLists::new())
    }

    /// Compiles a document whose IP lists may live in their own KV keys (`{"kv": "iplist/…"}`),
    /// given those lists, already decoded.
    pub fn compile_with_lists(text: &str, lists: &StoredLists) -> Result<Config, Vec<ConfigError>> {
        Config::compile_digested(text, digest(text), lists)
    }

    /// [`Config::compile`] for a caller that already hashed the text (the isolate's cache does, to
    /// tell an unchanged document without compiling it).
    pub(crate) fn compile_digested(
        text: &str,
        digest: String,
        lists: &StoredLists,
    ) -> Result<Config, Vec<ConfigError>> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(vec![err(
                "",
                format!("is {} bytes; at most {MAX_DOCUMENT_BYTES}", text.len()),
            )]);
        }
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| vec![err("", format!("is not valid JSON: {e}"))])?;
        let mut errors = Vec::new();
        let config = compile_document(&doc, &mut errors, digest, lists);
        match config {
            Some(c) if errors.is_empty() => Ok(c),
            _ => Err(errors),
        }
    }
}

/// IP lists kept in their own KV keys, by key, decoded once per isolate.
pub type StoredLists = HashMap<String, IpSet>;

/// Keys of lists kept apart start with this; the rest is a hash of the compiled list, so a key's
/// content never changes and an isolate never has to re-read one it has.
pub const LIST_KEY_PREFIX: &str = "iplist/";

/// The KV key a compiled list is stored under.
pub fn list_key(compiled: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(compiled);
    let hex: String = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("{LIST_KEY_PREFIX}{hex}")
}

/// The keys of the lists a document keeps apart: what the edge fetches before compiling it. A
/// document that does not parse refers to none (compiling it reports why). Only `lists` is looked
/// at, and nothing is built for the rest of the document: the parser skips it (building the whole
/// document here, then again to compile it, cost a fresh isolate's first click milliseconds).
pub fn referenced_lists(text: &str) -> Vec<String> {
    let Ok(ListKeys(mut keys)) = serde_json::from_str::<ListKeys>(text) else {
        return Vec::new();
    };
    keys.retain(|k| k.starts_with(LIST_KEY_PREFIX));
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The `kv` keys in a document's `lists`, read by [`referenced_lists`].
struct ListKeys(Vec<String>);

impl<'de> serde::Deserialize<'de> for ListKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(Walk::Document).map(ListKeys)
    }
}

/// Where [`ListKeys`] is in the document: its top level, the `lists` object, or one list.
enum Walk {
    Document,
    Lists,
    List,
}

impl<'de> serde::de::Visitor<'de> for Walk {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a config document")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::IgnoredAny;
        let mut keys = Vec::new();
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match (&self, name.as_ref()) {
                (Walk::Document, "lists") => keys.extend(map.next_value_seed(Walk::Lists)?),
                (Walk::Lists, _) => keys.extend(map.next_value_seed(Walk::List)?),
                (Walk::List, "kv") => {
                    if let Value::String(key) = map.next_value::<Value>()? {
                        keys.push(key);
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(keys)
    }

    // A list written out in the document, or any other value where a list or `lists` belongs:
    // skipped, not built (the compile says what is wrong with it).
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Vec::new())
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Walk {
    type Value = Vec<String>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn stored_list(
    reference: &Map<String, Value>,
    path: &str,
    stored: &StoredLists,
    used: &mut Vec<String>,
    errors: &mut Vec<ConfigError>,
) -> IpSet {
    let key = match (reference.get("kv").and_then(Value::as_str), reference.len()) {
        (Some(key), 1) if key.starts_with(LIST_KEY_PREFIX) => key,
        _ => {
            errors.push(err(
                path,
                format!(
                    "must be a list of addresses and blocks, or {{\"kv\": \"{LIST_KEY_PREFIX}…\"}}"
                ),
            ));
            return IpSet::default();
        }
    };
    match stored.get(key) {
        Some(set) => {
            used.push(key.to_owned());
            set.clone()
        }
        None => {
            errors.push(err(
                &format!("{path}.kv"),
                format!("list `{key}` is not in KV (`clickgate config push` uploads a document's lists before the document)"),
            ));
            IpSet::default()
        }
    }
}

pub(crate) fn err(path: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

/// A short hash of a document's text: which config is in force, as logs and `/healthz` show it,
/// and whether a refresh read the same document again. 48 bits of FNV-1a, mixed so that each of
/// them depends on every byte. It names a document its operator wrote, so nothing is gained by
/// forging one and it need not be cryptographic; SHA-256, which wasm runs without the CPU's SHA
/// instructions, took a fresh isolate's first click 1.3 ms over a 55 KB document.
pub fn digest(text: &str) -> String {
    format!("{:012x}", mix64(fnv1a64(text.as_bytes())) >> 16)
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The 64-bit finaliser of MurmurHash3: FNV-1a leaves the last bytes in the low bits only.
fn mix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Reads fields of one JSON object, recording problems under its path, and at the end complains about
/// every field it was not asked for (a misspelt `landing_ulr` must not pass silently).
pub(crate) struct Fields<'a> {
    pub(crate) path: String,
    pub(crate) map: &'a Map<String, Value>,
    read: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    pub(crate) fn of(
        value: &'a Value,
        path: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Fields<'a>> {
        match value.as_object() {
            Some(map) => Some(Fields {
                path: path.to_owned(),
                map,
                read: Vec::new(),
            }),
            None => {
                errors.push(err(
                    path,
                    format!("must be an object, found {}", kind(value)),
                ));
                None
            }
        }
    }

    pub(crate) fn child(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(crate) fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.read.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn required(
        &mut self,
        key: &'static str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<&'a Value> {
        let v = self.get(key);
        if v.is_none() {
            errors.push(err(&self.child(key), "is required"));
        }
        v
    }

    pub(crate) fn string(
        &mut self,
        key: &'static str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<&'a str> {
        let v = self.get(key)?;
        let s = v.as_str();
        if s.is_none() {
            errors.push(err(
                &self.child(key),
                format!("must be a string, found {}", kind(v)),
            ));
        }
        s
    }

    pub(crate) fn id(
        &mut self,
        key: &'static str,
        required: bool,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Id> {
        let v = if required {
            self.required(key, errors)?
        } else {
            self.get(key)?
        };
        id_value(v, || self.child(key), errors)
    }

    /// One of a few names, each standing for a value; the first is the default when the field is
    /// absent, and stands in after a wrong name has been reported.
    pub(crate) fn choice<T: Copy>(
        &mut self,
        key: &'static str,
        options: &[(&'static str, T)],
        errors: &mut Vec<ConfigError>,
    ) -> T {
        let default = options[0].1;
        let Some(name) = self.string(key, errors) else {
            return default;
        };
        if let Some((_, value)) = options.iter().find(|(n, _)| *n == name) {
            return *value;
        }
        let quoted: Vec<String> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        let listed = match quoted.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => quoted.concat(),
        };
        errors.push(err(
            &self.child(key),
            format!("must be {listed}, found \"{name}\""),
        ));
        default
    }

    /// A required landing or fallback URL, compiled as a template.
    pub(crate) fn template(
        &mut self,
        key: &'static str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Template> {
        match self.required(key, errors)? {
            Value::String(s) => Template::compile(s)
                .map_err(|p| errors.push(err(&self.child(key), p)))
                .ok(),
            other => {
                errors.push(err(
                    &self.child(key),
                    format!("must be a URL string, found {}", kind(other)),
                ));
                None
            }
        }
    }

    pub(crate) fn array(
        &mut self,
        key: &'static str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<&'a Vec<Value>> {
        let v = self.get(key)?;
        let a = v.as_array();
        if a.is_none() {
            errors.push(err(
                &self.child(key),
                format!("must be an array, found {}", kind(v)),
            ));
        }
        a
    }

    pub(crate) fn finish(self, errors: &mut Vec<ConfigError>) {
        let mut unknown: Vec<&String> = self
            .map
            .keys()
            .filter(|k| !self.read.contains(&k.as_str()))
            .collect();
        unknown.sort();
        for key in unknown {
            let known = self.read.join(", ");
            errors.push(err(
                &self.child(key),
                format!("is not a known field (known here: {known})"),
            ));
        }
    }
}

/// An id in the document. Numbers are accepted because trackers export offer ids as numbers. The
/// path is only written out for a problem: lists of ids are long, and formatting a path for every
/// entry was a tenth of compiling a document.
pub(crate) fn id_value(
    v: &Value,
    path: impl FnOnce() -> String,
    errors: &mut Vec<ConfigError>,
) -> Option<Id> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_u64() => n.to_string(),
        other => {
            errors.push(err(
                &path(),
                format!("must be a string id, found {}", kind(other)),
            ));
            return None;
        }
    };
    Id::parse(&text)
        .map_err(|p| errors.push(err(&path(), p)))
        .ok()
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn compile_document(
    doc: &Value,
    errors: &mut Vec<ConfigError>,
    digest: String,
    stored: &StoredLists,
) -> Option<Config> {
    let mut top = Fields::of(doc, "", errors)?;
    match top.required("version", errors) {
        Some(v) if v.as_u64() == Some(SCHEMA_VERSION) => {}
        Some(v) => errors.push(err(
            "version",
            format!("must be {SCHEMA_VERSION}, found {v}"),
        )),
        None => {}
    }

    let mut advertisers: Vec<Id> = Vec::new();
    let mut postbacks = FxHashMap::default();
    if let Some(list) = top.array("advertisers", errors) {
        for (i, item) in list.iter().enumerate() {
            let path = format!("advertisers[{i}]");
            let Some(mut f) = Fields::of(item, &path, errors) else {
                continue;
            };
            let postback = crate::conversion::PostbackPolicy::compile(&mut f, errors);
            if let Some(id) = f.id("id", true, errors) {
                if advertisers.contains(&id) {
                    errors.push(err(&f.child("id"), format!("`{id}` is declared twice")));
                }
                postbacks.insert(id.clone(), postback);
                advertisers.push(id);
            }
            f.string("name", errors);
            f.finish(errors);
        }
    }

    let mut offers = FxHashMap::default();
    match top.array("offers", errors) {
        Some(list) if list.is_empty() => errors.push(err("offers", "must list at least one offer")),
        Some(list) => {
            for (i, item) in list.iter().enumerate() {
                if let Some(offer) =
                    compile_offer(item, &format!("offers[{i}]"), &advertisers, errors)
                {
                    if offers.contains_key(&offer.id) {
                        errors.push(err(
                            &format!("offers[{i}].id"),
                            format!("`{}` is declared twice", offer.id),
                        ));
                    }
                    offers.insert(offer.id.clone(), offer);
                }
            }
        }
        None => {
            if top.map.get("offers").is_none_or(Value::is_null) {
                errors.push(err("offers", "is required"));
            }
        }
    }

    let mut blocked = IpSet::default();
    let mut lists = Lists::default();
    let mut stored_lists = Vec::new();
    if let Some(value) = top.get("lists") {
        if let Some(mut f) = Fields::of(value, "lists", errors) {
            let mut ips = |f: &mut Fields, key: &'static str, errors: &mut Vec<ConfigError>| {
                if let Some(Value::Object(reference)) = f.map.get(key) {
                    f.get(key);
                    return stored_list(
                        reference,
                        &f.child(key),
                        stored,
                        &mut stored_lists,
                        errors,
                    );
                }
                let entries = f.array(key, errors).map(|e| e.as_slice()).unwrap_or(&[]);
                IpSet::new(entries.iter().enumerate().filter_map(|(i, e)| {
                    let path = || format!("lists.{key}[{i}]");
                    match e.as_str().map(IpNet::parse) {
                        Some(Ok(net)) => Some(net),
                        Some(Err(p)) => {
                            errors.push(err(&path(), p));
                            None
                        }
                        None => {
                            errors
                                .push(err(&path(), format!("must be a string, found {}", kind(e))));
                            None
                        }
                    }
                }))
            };
            blocked = ips(&mut f, "blocked_ips", errors);
            lists.allowed_ips = ips(&mut f, "allowed_ips", errors);
            lists.fraud_ips = ips(&mut f, "fraud_ips", errors);
            lists.datacenter_ips = ips(&mut f, "datacenter_ips", errors);
            lists.vpn_ips = ips(&mut f, "vpn_ips", errors);
            let strings = |f: &mut Fields, key: &'static str, errors: &mut Vec<ConfigError>| {
                let entries = f.array(key, errors).map(|e| e.as_slice()).unwrap_or(&[]);
                let mut out = Vec::new();
                for (i, e) in entries.iter().enumerate() {
                    match e.as_str() {
                        Some(s) if !s.is_empty() && s.len() <= 512 => out.push(s.to_owned()),
                        _ => errors.push(err(
                            &format!("lists.{key}[{i}]"),
                            "must be a non-empty string of at most 512 bytes",
                        )),
                    }
                }
                out
            };
            lists.allowed_sub_ids = strings(&mut f, "allowed_sub_ids", errors)
                .into_iter()
                .collect();
            lists.fraud_device_ids = strings(&mut f, "fraud_device_ids", errors)
                .into_iter()
                .collect();
            for (i, text) in strings(&mut f, "allowed_affiliates", errors)
                .into_iter()
                .enumerate()
            {
                match Id::parse(&text) {
                    Ok(id) => {
                        lists.allowed_affiliates.insert(id);
                    }
                    Err(p) => errors.push(err(&format!("lists.allowed_affiliates[{i}]"), p)),
                }
            }
            for (i, text) in strings(&mut f, "blocked_referrers", errors)
                .into_iter()
                .enumerate()
            {
                match RefererPattern::parse(&text) {
                    Ok(p) => lists.blocked_referrers.insert(p),
                    Err(p) => errors.push(err(&format!("lists.blocked_referrers[{i}]"), p)),
                }
            }
            for (key, slot) in [
                ("datacenter_asns", &mut lists.datacenter_asns),
                ("vpn_asns", &mut lists.vpn_asns),
            ] {
                if let Some(entries) = f.array(key, errors) {
                    *slot = compile_asns(entries, &format!("lists.{key}"), errors);
                }
            }
            f.finish(errors);
        }
    }

    let (networks, flood) = top
        .get("networks")
        .map(|n| crate::signing::compile_networks(n, errors))
        .unwrap_or_default();

    let analytics_binding = top.get("analytics").and_then(|a| {
        let mut f = Fields::of(a, "analytics", errors)?;
        let binding = f.string("binding", errors).map(str::to_owned);
        f.finish(errors);
        match binding {
            // What wrangler accepts as a binding name.
            Some(b)
                if b.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && b.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                Some(b)
            }
            Some(b) => {
                errors.push(err(
                    "analytics.binding",
                    format!("`{b}` is not a binding name (letters, digits and _)"),
                ));
                None
            }
            None => {
                errors.push(err("analytics.binding", "is required".to_owned()));
                None
            }
        }
    });

    let mut rules: Vec<Rule> = Vec::new();
    if let Some(list) = top.array("rules", errors) {
        for (i, item) in list.iter().enumerate() {
            if let Some(rule) = compile_rule(item, &format!("rules[{i}]"), errors) {
                if rules.iter().any(|r| r.id == rule.id) {
                    errors.push(err(
                        &format!("rules[{i}].id"),
                        format!("`{}` is declared twice", rule.id),
                    ));
                }
                // A scope naming an offer or advertiser the document does not have is a typo that
                // would silently leave the real one unprotected.
                let mut unknown = |dim: &str, id: &Id, known: bool| {
                    if !known {
                        let what = &dim[..dim.len() - 1];
                        errors.push(err(
                            &format!("rules[{i}].scope.{dim}"),
                            format!("{what} `{id}` is not in {dim}"),
                        ));
                    }
                };
                for id in rule.scope.offers.named_ids() {
                    unknown("offers", id, offers.contains_key(id));
                }
                for id in rule.scope.advertisers.named_ids() {
                    unknown("advertisers", id, advertisers.contains(id));
                }
                rules.push(rule);
            }
        }
    }
    top.finish(errors);

    let rules_by_offer = index_by_offer(&rules, &offers, crate::rules::Level::Click);
    let conversion_rules_by_offer =
        index_by_offer(&rules, &offers, crate::rules::Level::Conversion);
    Some(Config {
        offers,
        blocked_ips: blocked,
        lists,
        rules,
        rules_by_offer,
        conversion_rules_by_offer,
        networks,
        flood,
        postbacks,
        analytics_binding,
        stored_lists,
        digest,
    })
}

fn compile_offer(
    item: &Value,
    path: &str,
    advertisers: &[Id],
    errors: &mut Vec<ConfigError>,
) -> Option<Offer> {
    let mut f = Fields::of(item, path, errors)?;
    let id = f.id("id", true, errors);
    let name = f.string("name", errors).map(str::to_owned);
    let advertiser_id = f.id("advertiser_id", false, errors);
    if let Some(a) = &advertiser_id {
        if !advertisers.contains(a) {
            errors.push(err(
                &f.child("advertiser_id"),
                format!("`{a}` is not in advertisers"),
            ));
        }
    }
    let status = f.choice(
        "status",
        &[
            ("active", OfferStatus::Active),
            ("paused", OfferStatus::Paused),
        ],
        errors,
    );
    let geo = f
        .get("geo")
        .and_then(|g| compile_geo(g, &f.child("geo"), errors));
    let landing = f.template("landing_url", errors);
    f.finish(errors);
    Some(Offer {
        id: id?,
        name,
        advertiser_id,
        status,
        landing: landing?,
        geo,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    pub(crate) const DEMO: &str = r#"{
        "version": 1,
        "advertisers": [{"id": "acme", "name": "Acme Shop"}],
        "offers": [
            {"id": "1001", "name": "Spring sale", "advertiser_id": "acme",
             "landing_url": "https://shop.example/land?tid={transaction_id}&o={offer_id}&a={aff_id}&s1={sub1}"},
            {"id": 1002, "landing_url": "https://other.example/", "status": "paused"}
        ],
        "lists": {"blocked_ips": ["203.0.113.7", "198.51.100.0/24", "2001:db8:bad::/48"]}
    }"#;

    fn problems(text: &str) -> Vec<String> {
        Config::compile(text)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn demo_document_compiles() {
        let c = Config::compile(DEMO).unwrap();
        assert_eq!(c.offers.len(), 2);
        assert_eq!(c.blocked_ips.len(), 3);
        let paused = &c.offers[&Id::parse("1002").unwrap()];
        assert_eq!(paused.status, OfferStatus::Paused);
        assert_eq!(c.digest.len(), 12);
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_path() {
        let got = problems(
            r#"{
            "version": 2,
            "advertisers": [{"id": "acme"}, {"id": "acme"}, {"nme": "x"}],
            "offers": [
                {"id": "bad id", "landing_url": "ftp://x"},
                {"id": "2", "advertiser_id": "ghost", "landing_url": "https://x/?a={nope}", "status": "on"},
                {"id": "2", "landing_url": 5},
                "not an object"
            ],
            "lists": {"blocked_ips": ["10.0.0.1/8", 7, "nonsense"], "extra": []},
            "landing_ulr": "typo"
        }"#,
        );
        let want = [
            "version: must be 1, found 2",
            "advertisers[1].id: `acme` is declared twice",
            "advertisers[2].id: is required",
            "advertisers[2].nme: is not a known field",
            "offers[0].id: contains ' '",
            "offers[0].landing_url: must start with https://",
            "offers[1].advertiser_id: `ghost` is not in advertisers",
            "offers[1].status: must be \"active\" or \"paused\", found \"on\"",
            "offers[1].landing_url: unknown macro `{nope}`",
            "offers[2].landing_url: must be a URL string, found a number",
            "offers[3]: must be an object, found a string",
            "lists.blocked_ips[0]: `10.0.0.1/8` has host bits set",
            "lists.blocked_ips[1]: must be a string, found a number",
            "lists.blocked_ips[2]: `nonsense` is not an IPv4 or IPv6 address",
            "lists.extra: is not a known field",
            "landing_ulr: is not a known field",
        ];
        for w in want {
            assert!(
                got.iter().any(|g| g.starts_with(w)),
                "missing {w:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
    }

    #[test]
    fn an_analytics_binding_is_a_binding_name() {
        let with = |analytics: &str| {
            let doc = DEMO.replacen('{', &format!("{{\"analytics\": {analytics},"), 1);
            Config::compile(&doc)
        };
        assert_eq!(
            with(r#"{"binding": "DECISIONS"}"#)
                .unwrap()
                .analytics_binding
                .as_deref(),
            Some("DECISIONS")
        );
        assert_eq!(Config::compile(DEMO).unwrap().analytics_binding, None);
        for (bad, says) in [
            (
                r#"{"binding": "my-dataset"}"#,
                "analytics.binding: `my-dataset` is not a binding name",
            ),
            (r#"{}"#, "analytics.binding: is required"),
            (
                r#"{"binding": "A", "dataset": "x"}"#,
                "analytics.dataset: is not a known field",
            ),
        ] {
            let errors = with(bad).unwrap_err();
            assert!(
                errors.iter().any(|e| e.to_string().starts_with(says)),
                "{bad}: {errors:?}"
            );
        }
    }

    #[test]
    fn duplicate_offer_ids_are_refused() {
        let got = problems(
            r#"{"version":1,"offers":[{"id":"1","landing_url":"https://x/"},{"id":"1","landing_url":"https://y/"}]}"#,
        );
        assert_eq!(got, ["offers[1].id: `1` is declared twice"]);
    }

    #[test]
    fn not_json_and_not_an_object() {
        assert!(problems("{").remove(0).starts_with("is not valid JSON"));
        assert_eq!(problems("[]"), ["must be an object, found an array"]);
        assert_eq!(
            problems("{}"),
            ["version: is required", "offers: is required"]
        );
        assert_eq!(
            problems(r#"{"version":1,"offers":[]}"#),
            ["offers: must list at least one offer"]
        );
    }

    #[test]
    fn digest_changes_with_the_text() {
        let a = Config::compile(DEMO).unwrap().digest;
        let b = Config::compile(&DEMO.replace("Spring", "Summer"))
            .unwrap()
            .digest;
        assert_ne!(a, b);
    }

    #[test]
    fn fnv1a_matches_its_published_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn digest_is_12_hex_digits_and_changes_with_any_one_byte() {
        let base = digest(DEMO);
        assert_eq!(base.len(), 12);
        assert!(base.bytes().all(|b| b.is_ascii_hexdigit()));
        let mut bytes = DEMO.as_bytes().to_vec();
        for i in 0..bytes.len() {
            let was = bytes[i];
            bytes[i] = if was == b'x' { b'y' } else { b'x' };
            let changed = std::str::from_utf8(&bytes).map(digest).unwrap();
            assert_ne!(changed, base, "byte {i}");
            bytes[i] = was;
        }
    }

    #[test]
    fn ip_lists_can_live_in_their_own_kv_keys() {
        let list = IpSet::new(["192.0.2.0/24", "2001:db8::/32"].map(|e| IpNet::parse(e).unwrap()));
        let key = list_key(&list.to_bytes());
        assert!(key.starts_with("iplist/") && key.len() == "iplist/".len() + 24);
        let doc = format!(
            r#"{{"version": 1, "offers": [{{"id": "1", "landing_url": "https://x.example/"}}],
                "lists": {{"datacenter_ips": {{"kv": "{key}"}}, "blocked_ips": {{"kv": "{key}"}},
                           "fraud_ips": ["203.0.113.1"]}}}}"#
        );
        assert_eq!(referenced_lists(&doc), vec![key.clone()]);
        let stored = StoredLists::from([(key.clone(), list)]);
        let c = Config::compile_with_lists(&doc, &stored).unwrap();
        assert!(c.blocked_ips.lookup("192.0.2.9".parse().unwrap()).is_some());
        assert_eq!(c.lists.datacenter_ips.len(), 2);
        assert_eq!(c.lists.fraud_ips.len(), 1);

        let errors = Config::compile(&doc).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].path, "lists.blocked_ips.kv");
        assert!(errors[0].problem.contains("is not in KV"));

        let bad = doc.replace(
            &format!(r#"{{"kv": "{key}"}}, "blocked_ips""#),
            r#"{"file": "x"}, "blocked_ips""#,
        );
        let errors = Config::compile_with_lists(&bad, &stored).unwrap_err();
        assert_eq!(errors[0].path, "lists.datacenter_ips");
        assert!(errors[0]
            .problem
            .starts_with("must be a list of addresses and blocks, or"));
    }

    #[test]
    fn list_references_are_read_from_lists_only_and_however_the_json_is_written() {
        let refs = |doc: &str| referenced_lists(doc);
        // Escaped key names are the same names; a key inside `lists` twice is asked once.
        assert_eq!(
            refs(
                r#"{"lists": {"fraud_ips": {"\u006bv": "iplist/a"}, "vpn_ips": {"kv": "iplist/a"},
                    "blocked_ips": ["10.0.0.0/8", {"kv": "iplist/inside-a-written-list"}]}}"#
            ),
            vec!["iplist/a".to_owned()]
        );
        // `kv` anywhere but a list is not a reference; keys of another shape are not ours.
        assert_eq!(
            refs(
                r#"{"offers": [{"id": "1", "kv": "iplist/b"}], "kv": "iplist/c",
                    "lists": {"datacenter_asns": [1, 2], "fraud_ips": {"kv": "other/d"},
                              "vpn_ips": {"kv": 7}, "x": null, "y": true, "z": 1.5}}"#
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            refs(r#"{"lists": {"b": {"kv": "iplist/z"}, "a": {"kv": "iplist/y"}}}"#),
            vec!["iplist/y".to_owned(), "iplist/z".to_owned()]
        );
        for broken in [
            "",
            "[]",
            "{\"lists\": ",
            "{\"lists\": {\"a\": {\"kv\": \"iplist/q\"}}",
        ] {
            assert!(refs(broken).is_empty(), "{broken}");
        }
    }
}
