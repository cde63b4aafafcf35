//! Reading one object of the document: its fields by name, each checked for its type and range,
//! with a problem for every field nobody asked for.

use std::borrow::Cow;
use std::fmt;
use std::ops::RangeInclusive;

use super::error::{err, ConfigError};
use super::json::{Object, Value};
use crate::click::Id;
use crate::ip::sort_strings;
use crate::template::Template;

/// Reads fields of one JSON object, recording problems under its path, and at the end complains about
/// every field it was not asked for (a misspelt `landing_ulr` must not pass silently).
pub(crate) struct Fields<'a, 'p> {
    pub(crate) path: At<'p>,
    pub(crate) map: &'a Object<'a>,
    read: Asked,
}

/// Where a value sits in the document, written out only when a problem there is reported: a
/// production document's offers, rules, scopes and filters each had a path formatted for them,
/// a tenth of compiling it, and almost never needed one.
#[derive(Clone)]
pub(crate) enum At<'p> {
    Path(Cow<'p, str>),
    /// The `i`th item of a list at the top of the document, as `offers[3]`.
    Item(&'static str, usize),
    /// A field of the object at the first, as `rules[3].scope`.
    Key(&'p At<'p>, &'static str),
    /// The `i`th item of the list at the first, as `rules[3].strategy.filters[0]`.
    Index(&'p At<'p>, usize),
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Path(p) => f.write_str(p),
            At::Item(list, i) => write!(f, "{list}[{i}]"),
            At::Key(at, key) => write!(f, "{at}.{key}"),
            At::Index(at, i) => write!(f, "{at}[{i}]"),
        }
    }
}

impl From<String> for At<'_> {
    fn from(path: String) -> Self {
        At::Path(Cow::Owned(path))
    }
}

impl<'p> From<&'p str> for At<'p> {
    fn from(path: &'p str) -> Self {
        At::Path(Cow::Borrowed(path))
    }
}

impl<'p> From<&'p String> for At<'p> {
    fn from(path: &'p String) -> Self {
        At::Path(Cow::Borrowed(path))
    }
}

/// The keys a [`Fields`] was asked for, in order, to name them when its object has another. The
/// first few are kept inline: a `Vec` growing for every object cost a large document an
/// allocation or two per offer and per network.
struct Asked {
    first: [&'static str; ASKED_INLINE],
    len: usize,
    more: Vec<&'static str>,
}

/// More than any object of the document is asked for but `lists` and a rule.
const ASKED_INLINE: usize = 16;

impl Asked {
    fn new() -> Asked {
        Asked {
            first: [""; ASKED_INLINE],
            len: 0,
            more: Vec::new(),
        }
    }

    fn push(&mut self, key: &'static str) {
        match self.first.get_mut(self.len) {
            Some(slot) => {
                *slot = key;
                self.len += 1;
            }
            None => self.more.push(key),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.first[..self.len].iter().chain(&self.more).copied()
    }
}

impl<'a, 'p> Fields<'a, 'p> {
    /// The fields of `value`, an object at `path`; a caller that built the path for this object
    /// alone hands it over rather than have it copied.
    pub(crate) fn of(
        value: &'a Value<'a>,
        path: impl Into<At<'p>>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Fields<'a, 'p>> {
        match value.as_object() {
            Some(map) => Some(Fields {
                path: path.into(),
                map,
                read: Asked::new(),
            }),
            None => {
                errors.push(err(
                    &path.into().to_string(),
                    format!("must be an object, found {}", kind(value)),
                ));
                None
            }
        }
    }

    pub(crate) fn child(&self, key: &str) -> String {
        match &self.path {
            At::Path(p) if p.is_empty() => key.to_owned(),
            at => format!("{at}.{key}"),
        }
    }

    pub(crate) fn get(&mut self, key: &'static str) -> Option<&'a Value<'a>> {
        self.read.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn required(
        &mut self,
        key: &'static str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<&'a Value<'a>> {
        let v = self.get(key);
        if v.is_none() {
            errors.push(err(&self.child(key), "is required"));
        }
        v
    }

    /// [`Fields::string`] for a field that must be given: missing or `null`, it is reported as
    /// required rather than read as a reason to drop what holds it.
    pub(crate) fn required_string(
        &mut self,
        key: &'static str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<&'a str> {
        self.required(key, errors)?;
        self.string(key, errors)
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

    /// A whole number in `range`, or `None` when the field is absent; a value outside the range
    /// (or not a whole number) is reported with its path and reads as absent. Every number in the
    /// document is read through these, so none can wrap when it is narrowed or multiplied.
    pub(crate) fn u64_in(
        &mut self,
        key: &'static str,
        range: RangeInclusive<u64>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<u64> {
        self.number_in(key, Value::as_u64, "a whole number", range, errors)
    }

    pub(crate) fn u32_in(
        &mut self,
        key: &'static str,
        range: RangeInclusive<u32>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<u32> {
        let wide = u64::from(*range.start())..=u64::from(*range.end());
        self.u64_in(key, wide, errors)
            .and_then(|n| u32::try_from(n).ok())
    }

    pub(crate) fn i64_in(
        &mut self,
        key: &'static str,
        range: RangeInclusive<i64>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<i64> {
        self.number_in(key, Value::as_i64, "a whole number", range, errors)
    }

    pub(crate) fn f64_in(
        &mut self,
        key: &'static str,
        range: RangeInclusive<f64>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<f64> {
        self.number_in(key, Value::as_f64, "a number", range, errors)
    }

    /// The one reader behind the ranged numbers: `read` says what kind of number the field must
    /// be, `what` names it in the error.
    fn number_in<T: PartialOrd + fmt::Display>(
        &mut self,
        key: &'static str,
        read: fn(&Value<'a>) -> Option<T>,
        what: &str,
        range: RangeInclusive<T>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<T> {
        let v = self.get(key)?;
        let n = read(v).filter(|n| range.contains(n));
        if n.is_none() {
            self.out_of_range(key, v, what, range, errors);
        }
        n
    }

    fn out_of_range<T: fmt::Display>(
        &self,
        key: &str,
        found: &Value,
        what: &str,
        range: RangeInclusive<T>,
        errors: &mut Vec<ConfigError>,
    ) {
        let found = match found {
            Value::Number(n) => n.to_string(),
            other => kind(other).to_owned(),
        };
        errors.push(err(
            &self.child(key),
            format!(
                "must be {what} from {} to {}, found {found}",
                range.start(),
                range.end()
            ),
        ));
    }

    /// [`Fields::array`] for a field that must be given, as [`Fields::required_string`].
    pub(crate) fn required_array(
        &mut self,
        key: &'static str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<&'a Vec<Value<'a>>> {
        self.required(key, errors)?;
        self.array(key, errors)
    }

    pub(crate) fn array(
        &mut self,
        key: &'static str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<&'a Vec<Value<'a>>> {
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
        // Owned, so they share the sort of strings the list keys already bring.
        let unknown = sort_strings(
            self.map
                .keys()
                .filter(|k| !self.read.iter().any(|r| r == *k))
                .map(str::to_owned)
                .collect(),
        );
        for key in &unknown {
            let known = self.read.iter().collect::<Vec<_>>().join(", ");
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
        Value::String(s) => Cow::Borrowed(s.as_ref()),
        Value::Number(n) if n.is_u64() => Cow::Owned(n.to_string()),
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

#[cfg(test)]
mod tests {
    use crate::config::Config;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Every field of every object in `doc`, as the keys and indexes that lead to it.
    fn field_paths(doc: &serde_json::Value) -> Vec<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        let mut stack = vec![(Vec::new(), doc)];
        while let Some((path, v)) = stack.pop() {
            match v {
                serde_json::Value::Object(map) => {
                    for (k, child) in map {
                        let mut p = path.clone();
                        p.push(serde_json::Value::from(k.as_str()));
                        out.push(p.clone());
                        stack.push((p, child));
                    }
                }
                serde_json::Value::Array(items) => {
                    for (i, child) in items.iter().enumerate() {
                        let mut p = path.clone();
                        p.push(serde_json::Value::from(i));
                        stack.push((p, child));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// `doc` with the field at `path` set to `value`, or removed when `value` is `None`.
    fn with_field(
        doc: &serde_json::Value,
        path: &[serde_json::Value],
        value: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let mut doc = doc.clone();
        let (last, parents) = path.split_last().unwrap();
        let mut at = &mut doc;
        for step in parents {
            at = match step {
                serde_json::Value::String(k) => &mut at[k.as_str()],
                i => &mut at[i.as_u64().unwrap() as usize],
            };
        }
        let map = at.as_object_mut().unwrap();
        let key = last.as_str().unwrap();
        match value {
            Some(v) => {
                map.insert(key.to_owned(), v);
            }
            None => {
                map.remove(key);
            }
        }
        doc
    }

    #[test]
    fn a_null_field_is_refused_or_read_as_absent_never_dropping_what_holds_it() {
        // `"filters": null`, a filter's `"type": null` or a key's `"id": null` used to drop the
        // rule, the filter or the key without a word. A null field must now either be refused, or
        // compile to what leaving the field out compiles to.
        let mut doc: serde_json::Value =
            serde_json::from_str(include_str!("../../../../demo/rules.json")).unwrap();
        doc["networks"] = serde_json::json!([{"id": "net-7", "signing": {"mode": "enforce",
            "keys": [{"id": "k1", "secret": "network-7-signing-secret-0001"},
                     {"id": "k2", "secret": "network-7-signing-secret-0002"}]}}]);
        // The whole compiled config but its digest, which hashes the text.
        let compiled = |mut c: Config| {
            c.digest.clear();
            format!("{c:?}")
        };
        let paths = field_paths(&doc);
        assert!(paths.len() > 40, "{} fields", paths.len());
        for path in paths {
            let nulled = with_field(&doc, &path, Some(serde_json::Value::Null)).to_string();
            let Ok(config) = Config::compile(&nulled) else {
                continue;
            };
            let left_out = with_field(&doc, &path, None).to_string();
            let without = Config::compile(&left_out).unwrap_or_else(|e| {
                panic!("{path:?}: null accepted, leaving it out refused: {e:?}")
            });
            assert_eq!(compiled(config), compiled(without), "{path:?}");
        }
    }
}
