//! The document's JSON, parsed into a tree that borrows its text, with every key an object gives
//! more than once reported.

use std::borrow::Cow;
use std::fmt;

use rustc_hash::FxHashSet;

use super::error::{err, ConfigError};

/// Parses a document as `serde_json::from_str` would, and reports every key an object gives more
/// than once (serde_json keeps the last one silently, so a second `"status": "active"` further down
/// an offer would undo the first without a word). The path is kept as a stack of steps and written
/// out only for a duplicate, so the parse costs what serde_json's own does.
pub(crate) fn parse(text: &str) -> Result<(Value<'_>, Vec<ConfigError>), serde_json::Error> {
    let mut walk = Parsing {
        path: Vec::new(),
        fields: Vec::new(),
        twice: Vec::new(),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde::de::DeserializeSeed::deserialize(Node(&mut walk), &mut de)?;
    de.end()?;
    Ok((value, walk.twice))
}

/// Every key an object of `text` gives more than once, with its path (none when `text` is not
/// JSON: compiling it says why). For a tool that rewrites a document before it is compiled: the
/// rewrite keeps one of the repeated keys, so the compile could no longer see them.
pub fn repeated_keys(text: &str) -> Vec<ConfigError> {
    parse(text).map(|(_, twice)| twice).unwrap_or_default()
}

/// One value of the document, as [`parse`] reads it. Unlike `serde_json::Value` it borrows every
/// string and key without an escape from the text, and keeps an object's fields in one list:
/// a 17 MB document of 300,000 small objects spent most of its compile allocating a `String` per
/// key and value and a tree map per object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'a, str>),
    Array(Vec<Value<'a>>),
    Object(Object<'a>),
}

/// An object's fields, each key once, in the order written. Nothing reads them in order (a
/// reader asks for its fields by name and sorts the unknown ones it names), and a reader asks for
/// a few fields of a small object, so they are searched in turn.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Object<'a>(Vec<(Cow<'a, str>, Value<'a>)>);

impl<'a> Object<'a> {
    pub(crate) fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_ref())
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Value<'a>> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(crate) fn fields_mut(&mut self) -> impl Iterator<Item = (&str, &mut Value<'a>)> {
        self.0.iter_mut().map(|(k, v)| (&**k, v))
    }
}

impl<'a> Value<'a> {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_array(&self) -> Option<&Vec<Value<'a>>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub(crate) fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    pub(crate) fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The same value as serde_json builds it, to write it out in an error exactly as before.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s) => serde_json::Value::String(s.as_ref().to_owned()),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(Value::to_json).collect()),
            Value::Object(o) => {
                // Inserted one by one: collecting would bring its own copy of the stable sort.
                let mut map = serde_json::Map::new();
                for (k, v) in o.0.iter() {
                    map.insert(k.as_ref().to_owned(), v.to_json());
                }
                serde_json::Value::Object(map)
            }
        }
    }
}

impl Value<'_> {
    /// As compact JSON with each object's fields in the order written (`serde_json::Value`
    /// sorts them), for a document shown back to the operator who wrote it.
    pub(crate) fn to_json_ordered(&self) -> String {
        let mut out = String::new();
        self.write_ordered(&mut out);
        out
    }

    fn write_ordered(&self, out: &mut String) {
        match self {
            Value::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_ordered(out);
                }
                out.push(']');
            }
            Value::Object(o) => {
                out.push('{');
                for (i, (k, v)) in o.0.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::from(k.as_ref()).to_string());
                    out.push(':');
                    v.write_ordered(out);
                }
                out.push('}');
            }
            scalar => out.push_str(&scalar.to_json().to_string()),
        }
    }
}

/// As JSON, compact, as `serde_json::Value` writes it.
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_json(), f)
    }
}

/// Where [`parse`] is in the document, and the duplicates found so far.
struct Parsing<'de> {
    path: Vec<Step<'de>>,
    /// The fields of the objects being read, innermost last: an object gathers its fields here and
    /// moves them out in one allocation of the right size when it ends.
    fields: Vec<(Cow<'de, str>, Value<'de>)>,
    twice: Vec<ConfigError>,
}

enum Step<'de> {
    Key(Cow<'de, str>),
    Index(usize),
}

impl Parsing<'_> {
    fn path_to(&self, key: &str) -> String {
        let mut path = String::new();
        for step in &self.path {
            match step {
                Step::Key(k) if path.is_empty() => path.push_str(k),
                Step::Key(k) => {
                    path.push('.');
                    path.push_str(k);
                }
                Step::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        path
    }
}

/// One value of the document, built by [`parse`].
struct Node<'w, 'de>(&'w mut Parsing<'de>);

impl<'de> serde::de::DeserializeSeed<'de> for Node<'_, 'de> {
    type Value = Value<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

/// Objects up to this many fields look a key up among those before it; larger ones keep a set of
/// their keys, so an object of many keys is still read in linear time.
const SCAN_FIELDS: usize = 16;

impl<'de> serde::de::Visitor<'de> for Node<'_, 'de> {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
        let start = self.0.fields.len();
        let mut keys: FxHashSet<String> = FxHashSet::default();
        while let Some(key) = map.next_key_seed(Key)? {
            self.0.path.push(Step::Key(key));
            let value = map.next_value_seed(Node(&mut *self.0))?;
            let Some(Step::Key(key)) = self.0.path.pop() else {
                continue;
            };
            let ours = &self.0.fields[start..];
            // Whether the key may be one given before: always worth a look in a small object.
            let maybe_twice = if ours.len() < SCAN_FIELDS {
                true
            } else {
                if keys.is_empty() {
                    keys = ours.iter().map(|(k, _)| k.as_ref().to_owned()).collect();
                }
                !keys.insert(key.as_ref().to_owned())
            };
            let earlier = match maybe_twice {
                true => ours.iter().position(|(k, _)| *k == key),
                false => None,
            };
            match earlier {
                None => {
                    self.0.fields.push((key, value));
                }
                Some(i) => {
                    let path = self.0.path_to(&key);
                    self.0.twice.push(err(&path, "is given more than once"));
                    self.0.fields[start + i].1 = value;
                }
            }
        }
        Ok(Value::Object(Object(
            self.0.fields.drain(start..).collect(),
        )))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        loop {
            self.0.path.push(Step::Index(out.len()));
            let next = seq.next_element_seed(Node(&mut *self.0));
            self.0.path.pop();
            match next? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Owned(v)))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value<'de>, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value<'de>, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value<'de>, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value<'de>, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_unit<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }
}

/// An object's key, borrowed from the text unless it has an escape (serde's own `Cow` always
/// copies).
struct Key;

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{problems, DEMO};
    use crate::config::Config;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_key_given_twice_is_refused_with_its_path() {
        let got = problems(
            r#"{"version": 1, "version": 1,
                "offers": [{"id": "1", "landing_url": "https://x/", "status": "paused", "status": "active"}],
                "lists": {"blocked_ips": ["10.0.0.1"], "blocked_ips": []},
                "rules": [{"id": "r", "created_at": "2026-11-01", "strategy": "lead",
                           "scope": {"offers": ["1"], "offers": ["1"]}}]}"#,
        );
        assert_eq!(
            got,
            [
                "version: is given more than once",
                "offers[0].status: is given more than once",
                "lists.blocked_ips: is given more than once",
                "rules[0].scope.offers: is given more than once",
            ]
        );
        // The same keys in different objects, and an escaped spelling of a different key, are fine.
        assert!(Config::compile(
            r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x/"},
                                          {"id": "2", "landing_url": "https://x/"}],
                "advertisers": [], "\u0061nalytics": {"binding": "A"}}"#
        )
        .is_ok());
        // An escaped spelling of the same key is the same key.
        assert_eq!(
            problems(
                r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x/", "\u0069d": "2"}]}"#
            ),
            ["offers[0].id: is given more than once"]
        );
    }

    #[test]
    fn a_key_given_twice_in_an_object_of_many_fields_is_found_and_the_last_one_kept() {
        // Past SCAN_FIELDS fields an object keeps a set of its keys rather than look among those
        // before: both ways find the second `k3`, and the later value stands, as serde_json keeps.
        let fields: Vec<String> = (0..40).map(|i| format!(r#""k{i}": {i}"#)).collect();
        let text = format!(r#"{{"a": [{{{}, "k3": "again"}}]}}"#, fields.join(", "));
        let (value, twice) = parse(&text).unwrap();
        assert_eq!(twice, [err("a[0].k3", "is given more than once")]);
        let object = &value.to_json()["a"][0];
        assert_eq!(object["k3"], "again");
        assert_eq!(object.as_object().map(|o| o.len()), Some(40));
        let few = r#"{"b": 1, "a": 2, "b": 3}"#;
        let (value, twice) = parse(few).unwrap();
        assert_eq!(twice, [err("b", "is given more than once")]);
        assert_eq!(value.to_json(), serde_json::json!({"a": 2, "b": 3}));
    }

    #[test]
    fn parse_builds_what_serde_json_builds() {
        for text in [
            DEMO,
            r#"{"a": [1, -2, 3.5, 1e300, "x\n", true, false, null, {}, []], "b": {"c": {"d": [[]]}}}"#,
            "18446744073709551615",
            "-9223372036854775808",
            "[]",
        ] {
            let (ours, twice) = parse(text).unwrap();
            assert_eq!(
                ours.to_json(),
                serde_json::from_str::<serde_json::Value>(text).unwrap(),
                "{text}"
            );
            assert!(twice.is_empty());
        }
        for broken in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "1 2",
            "[[[[",
            &"[".repeat(10_000),
        ] {
            assert!(parse(broken).is_err(), "{broken}");
        }
    }
}
