//! IP lists kept in their own KV keys: their keys, the walk that finds the ones a document names
//! without building the document, and the document's digest that names it.

use std::collections::HashMap;

use super::error::{err, ConfigError};
use super::fields::{kind, Fields};
use super::json::{Object, Value};
use super::rules::compile_asns;
use crate::click::Id;
use crate::filters::asn_sets::{AsnList, BuiltinSet};
use crate::filters::{referrer::RefererPattern, Lists};
use crate::ip::{sort_strings, IpNet, IpSet};
use crate::stored::LIST_KEY_PREFIX;

/// IP lists kept in their own KV keys, by key, decoded once per isolate.
pub type StoredLists = HashMap<String, IpSet>;

/// The keys of the lists a document keeps apart: what the edge fetches before compiling it. A
/// document that does not parse refers to none (compiling it reports why). Only `lists` is looked
/// at, and nothing is built for the rest of the document: the parser skips it (building the whole
/// document here, then again to compile it, cost a fresh isolate's first click milliseconds).
pub fn referenced_lists(text: &str) -> Vec<String> {
    references(text).0
}

/// [`referenced_lists`], and whether the document has `feeds` (then the edge reads the feeds'
/// state too), in one pass over the text.
pub(crate) fn references(text: &str) -> (Vec<String>, bool) {
    let Ok(ListKeys(mut keys)) = serde_json::from_str::<ListKeys>(text) else {
        return (Vec::new(), false);
    };
    let feeds = keys.iter().any(|k| k == FEEDS_MARK);
    keys.retain(|k| k.starts_with(LIST_KEY_PREFIX));
    let mut keys = sort_strings(keys);
    keys.dedup();
    (keys, feeds)
}

/// What the walk notes for a top-level `feeds`: not a list key, so never taken for one.
const FEEDS_MARK: &str = "feeds";

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
                (Walk::Document, "feeds") => {
                    map.next_value::<IgnoredAny>()?;
                    keys.push(FEEDS_MARK.to_owned());
                }
                // Each relay is a list of its own.
                (Walk::Lists, "relays") => keys.extend(map.next_value_seed(Walk::Lists)?),
                (Walk::Lists, _) => keys.extend(map.next_value_seed(Walk::List)?),
                (Walk::List, "kv") => {
                    if let serde_json::Value::String(key) = map.next_value::<serde_json::Value>()? {
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

/// `lists`: the blocked addresses, and the lists the filters read, with the keys of those kept
/// apart in KV that the document used.
pub(super) fn compile_lists(
    value: &Value,
    stored: &StoredLists,
    errors: &mut Vec<ConfigError>,
) -> (IpSet, Lists, Vec<String>) {
    let mut blocked = IpSet::default();
    let mut lists = Lists::default();
    let mut stored_lists = Vec::new();
    let Some(mut f) = Fields::of(value, "lists", errors) else {
        return (blocked, lists, stored_lists);
    };
    let mut ips = |f: &mut Fields, key: &'static str, errors: &mut Vec<ConfigError>| {
        if let Some(Value::Object(reference)) = f.map.get(key) {
            f.get(key);
            return stored_list(reference, &f.child(key), stored, &mut stored_lists, errors);
        }
        let entries = f.array(key, errors).map(|e| e.as_slice()).unwrap_or(&[]);
        written_list(entries, &f.child(key), errors)
    };
    blocked = ips(&mut f, "blocked_ips", errors);
    lists.allowed_ips = ips(&mut f, "allowed_ips", errors);
    lists.fraud_ips = ips(&mut f, "fraud_ips", errors);
    lists.datacenter_ips = ips(&mut f, "datacenter_ips", errors);
    lists.vpn_ips = ips(&mut f, "vpn_ips", errors);
    if let Some(value) = f.get("relays") {
        lists.relays = relays(value, stored, &mut stored_lists, errors);
    }
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
        if let Some(value) = f.get(key) {
            *slot = asn_list(value, &format!("lists.{key}"), errors);
        }
    }
    f.finish(errors);
    (blocked, lists, stored_lists)
}

/// A list written out in the document.
fn written_list(entries: &[Value], path: &str, errors: &mut Vec<ConfigError>) -> IpSet {
    IpSet::new(entries.iter().enumerate().filter_map(|(i, e)| {
        let path = || format!("{path}[{i}]");
        match e.as_str().map(IpNet::parse) {
            Some(Ok(net)) => Some(net),
            Some(Err(p)) => {
                errors.push(err(&path(), p));
                None
            }
            None => {
                errors.push(err(&path(), format!("must be a string, found {}", kind(e))));
                None
            }
        }
    }))
}

/// `relays`: each relay's name and its ranges, written out or kept apart as any IP list is.
fn relays(
    value: &Value,
    stored: &StoredLists,
    used: &mut Vec<String>,
    errors: &mut Vec<ConfigError>,
) -> Vec<(String, IpSet)> {
    let Some(map) = value.as_object() else {
        errors.push(err(
            "lists.relays",
            format!("must be an object of relays by name, found {}", kind(value)),
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in map.keys() {
        let path = format!("lists.relays.{name}");
        let named = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !named {
            errors.push(err(
                &path,
                "a relay's name is 1 to 64 of a-z, 0-9, `_` and `-`",
            ));
            continue;
        }
        let set = match map.get(name) {
            Some(Value::Object(reference)) => stored_list(reference, &path, stored, used, errors),
            Some(Value::Array(entries)) => written_list(entries, &path, errors),
            Some(other) => {
                errors.push(err(
                    &path,
                    format!(
                        "must be a list of addresses and blocks, or {{\"kv\": \"{LIST_KEY_PREFIX}…\"}}, found {}",
                        kind(other)
                    ),
                ));
                continue;
            }
            None => continue,
        };
        out.push((name.to_owned(), set));
    }
    out
}

/// An AS list: the operator's numbers, or `{"builtin": "hosting", "add": [...], "except": [...]}`
/// (`builtin` one set's name or several), the sets clickgate ships with the operator's own
/// numbers added and some taken out.
fn asn_list(value: &Value, path: &str, errors: &mut Vec<ConfigError>) -> AsnList {
    if let Some(entries) = value.as_array() {
        return AsnList::new(
            compile_asns(entries, path, errors),
            Vec::new(),
            Default::default(),
        );
    }
    if value.as_object().is_none() {
        errors.push(err(
            path,
            format!(
                "must be an array of AS numbers or {{\"builtin\": \"hosting\"}}, found {}",
                kind(value)
            ),
        ));
        return AsnList::default();
    }
    let Some(mut f) = Fields::of(value, path, errors) else {
        return AsnList::default();
    };
    let mut sets = Vec::new();
    let names: Vec<(String, &Value)> = match f.required("builtin", errors) {
        Some(Value::Array(names)) => names
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{path}.builtin[{i}]"), v))
            .collect(),
        Some(v) => vec![(format!("{path}.builtin"), v)],
        None => Vec::new(),
    };
    for (at, v) in names {
        match BuiltinSet::ALL.iter().find(|(n, _)| Some(*n) == v.as_str()) {
            Some((_, set)) if !sets.contains(set) => sets.push(*set),
            Some(_) => errors.push(err(&at, "names a set already named")),
            None => {
                let known: Vec<String> = BuiltinSet::ALL
                    .iter()
                    .map(|(n, _)| format!("\"{n}\""))
                    .collect();
                errors.push(err(&at, format!("must be {}", known.join(" or "))));
            }
        }
    }
    let mut numbers = |key: &'static str, f: &mut Fields| {
        f.array(key, errors)
            .map(|entries| compile_asns(entries, &format!("{path}.{key}"), errors))
            .unwrap_or_default()
    };
    let own = numbers("add", &mut f);
    let except = numbers("except", &mut f);
    f.finish(errors);
    AsnList::new(own, sets, except)
}

fn stored_list(
    reference: &Object,
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

/// A short hash of a document's text: which config is in force, as logs and `/healthz` show it,
/// and whether a refresh read the same document again. 48 bits of FNV-1a, mixed so that each of
/// them depends on every byte. It names a document its operator wrote, so nothing is gained by
/// forging one and it need not be cryptographic; SHA-256, which wasm runs without the CPU's SHA
/// instructions, took a fresh isolate's first click 1.3 ms over a 55 KB document.
pub fn digest(text: &str) -> String {
    format!("{:012x}", mix64(crate::hll::fnv1a64(text.as_bytes())) >> 16)
}

/// The 64-bit finaliser of MurmurHash3: FNV-1a leaves the last bytes in the low bits only.
fn mix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::DEMO;
    use crate::config::Config;
    use crate::stored::list_key;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn digest_changes_with_the_text() {
        let a = Config::compile(DEMO).unwrap().digest;
        let b = Config::compile(&DEMO.replace("Spring", "Summer"))
            .unwrap()
            .digest;
        assert_ne!(a, b);
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
