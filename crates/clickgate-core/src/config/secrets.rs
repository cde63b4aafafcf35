//! Secrets in the document: each may be written as its value or name a Worker secret
//! (`{"secret": "ENV_NAME"}`), so the document pushed to KV and answered by `GET /admin/config`
//! need not hold it. The core reads no environment: whoever compiles says where a named secret is
//! found ([`Secrets`]), and [`redact`] takes every secret's value out of a document shown back.

use super::error::{err, ConfigError};
use super::fields::{kind, Fields};
use super::json::{parse, Object, Value};

/// What `GET /admin/config` writes in place of a secret's value. A document sent back with it
/// is refused at that field rather than compiled with the marker as the secret.
pub const REDACTED: &str = "(redacted: write the secret or {\"secret\": \"NAME\"})";

/// Where the secrets a document names are found.
#[derive(Clone, Copy)]
pub enum Secrets<'a> {
    /// Nowhere: a named secret is an error (a document compiled alone, in tests and tools).
    None,
    /// By name, from the Worker's secrets (or, for the CLI, its environment or a stand-in).
    Read(&'a dyn Fn(&str) -> Option<String>),
}

impl Secrets<'_> {
    fn get(&self, name: &str) -> Option<String> {
        match self {
            Secrets::None => None,
            Secrets::Read(read) => read(name),
        }
    }
}

/// Whether a name is one `wrangler secret put` takes: letters, digits and `_`, not led by a digit.
fn is_secret_name(name: &str) -> bool {
    name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl<'a> Fields<'a, '_> {
    /// A secret field: its value as written, or the Worker secret it names. A named secret that
    /// is not set, a name that is no secret's and the redaction marker are errors at the field.
    pub(crate) fn secret(
        &mut self,
        key: &'static str,
        secrets: Secrets,
        errors: &mut Vec<ConfigError>,
    ) -> Option<String> {
        let value = self.get(key)?;
        let path = || self.child(key);
        match value {
            Value::String(s) if s == REDACTED => {
                errors.push(err(
                    &path(),
                    "is the marker GET /admin/config shows in place of a secret: write the secret, or name a Worker secret as {\"secret\": \"NAME\"}",
                ));
                None
            }
            Value::String(s) => Some(s.to_string()),
            Value::Object(o) => match reference(o) {
                Some(name) => {
                    let value = secrets.get(name);
                    if value.is_none() {
                        errors.push(err(
                            &path(),
                            format!("names the Worker secret `{name}`, which is not set (wrangler secret put {name})"),
                        ));
                    }
                    value
                }
                None => {
                    errors.push(err(
                        &path(),
                        "must be a string or {\"secret\": \"NAME\"}, NAME a Worker secret's (letters, digits and _)",
                    ));
                    None
                }
            },
            other => {
                errors.push(err(
                    &path(),
                    format!(
                        "must be a string or {{\"secret\": \"NAME\"}}, found {}",
                        kind(other)
                    ),
                ));
                None
            }
        }
    }
}

/// The name in `{"secret": "NAME"}`, an object with that one field.
fn reference<'o>(o: &'o Object) -> Option<&'o str> {
    if o.len() != 1 {
        return None;
    }
    o.get("secret")?.as_str().filter(|n| is_secret_name(n))
}

/// The document with every secret written as its value replaced by [`REDACTED`] (a reference
/// stays as written: it names, it does not tell), compact, its fields in the order written.
/// `None` for a text that is not JSON, which is then shown to no one.
pub fn redact(text: &str) -> Option<String> {
    let (mut doc, _) = parse(text).ok()?;
    if let Value::Object(top) = &mut doc {
        for (key, section) in top.fields_mut() {
            match (key, section) {
                ("advertisers", Value::Array(list)) => {
                    for advertiser in list {
                        hide(advertiser, "postback_secret");
                    }
                }
                ("networks", Value::Array(list)) => {
                    for network in list {
                        let keys = object_field(network, "signing")
                            .and_then(|signing| object_field(signing, "keys"));
                        if let Some(Value::Array(keys)) = keys {
                            for k in keys {
                                hide(k, "secret");
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Some(doc.to_json_ordered())
}

fn object_field<'v, 'a>(value: &'v mut Value<'a>, key: &str) -> Option<&'v mut Value<'a>> {
    match value {
        Value::Object(o) => o.get_mut(key),
        _ => None,
    }
}

/// Replaces a secret's value (a string) in `value`'s field `key`.
fn hide(value: &mut Value, key: &str) {
    if let Some(v @ Value::String(_)) = object_field(value, key) {
        *v = Value::String(REDACTED.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, StoredLists};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// An advertiser's postback secret and a network's two signing keys, each `{}` of `secrets`.
    fn document(postback: &str, key1: &str, key2: &str) -> String {
        format!(
            r#"{{"version": 1, "offers": [{{"id": "1", "landing_url": "https://x.example/", "advertiser_id": "acme"}}],
               "advertisers": [{{"id": "acme", "postback_secret": {postback}}}],
               "networks": [{{"id": "net-7", "signing": {{"mode": "enforce",
                  "keys": [{{"id": "k1", "secret": {key1}}}, {{"id": "k2", "secret": {key2}}}]}}}}]}}"#
        )
    }

    const POSTBACK: &str = "acme-postback-secret-0001";
    const SIGNING: &str = "network-7-signing-secret-0001";

    fn worker_secrets(name: &str) -> Option<String> {
        match name {
            "ACME_POSTBACK" => Some(POSTBACK.into()),
            "NET7_K1" => Some(SIGNING.into()),
            _ => None,
        }
    }

    fn compile(text: &str, secrets: Secrets) -> Result<Config, Vec<String>> {
        Config::compile_with(text, &StoredLists::new(), secrets)
            .map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_named_secret_compiles_as_its_value() {
        let by_value = compile(
            &document(
                &format!("\"{POSTBACK}\""),
                &format!("\"{SIGNING}\""),
                &format!("\"{SIGNING}-2\""),
            ),
            Secrets::None,
        )
        .unwrap();
        let by_name = compile(
            &document(
                r#"{"secret": "ACME_POSTBACK"}"#,
                r#"{"secret": "NET7_K1"}"#,
                &format!("\"{SIGNING}-2\""),
            ),
            Secrets::Read(&worker_secrets),
        )
        .unwrap();
        let acme = crate::click::Id::parse("acme").unwrap();
        assert_eq!(by_name.postbacks[&acme].secret.as_deref(), Some(POSTBACK));
        let net = crate::click::Id::parse("net-7").unwrap();
        let (a, b) = (
            &by_value.networks[&net].keys[0],
            &by_name.networks[&net].keys[0],
        );
        assert_eq!(a.sign("message"), b.sign("message"), "the same key");
    }

    #[test]
    fn a_named_secret_that_is_not_set_is_an_error_naming_it() {
        let text = document(
            r#"{"secret": "ACME_POSTBACK"}"#,
            r#"{"secret": "NET7_K9"}"#,
            r#"{"secret": "NET7_K1"}"#,
        );
        let errors = compile(&text, Secrets::Read(&worker_secrets)).unwrap_err();
        assert_eq!(
            errors,
            ["networks[0].signing.keys[0].secret: names the Worker secret `NET7_K9`, which is not set (wrangler secret put NET7_K9)"]
        );
        // Compiled alone, every named secret is missing.
        assert_eq!(compile(&text, Secrets::None).unwrap_err().len(), 3);
    }

    #[test]
    fn a_reference_is_one_field_naming_a_secret() {
        for bad in [
            r#"{"secret": "not a name"}"#,
            r#"{"secret": "9LIVES"}"#,
            r#"{"secret": "ACME_POSTBACK", "also": 1}"#,
            r#"{"env": "ACME_POSTBACK"}"#,
            r#"{"secret": 7}"#,
        ] {
            let errors = compile(
                &document(bad, &format!("\"{SIGNING}\""), &format!("\"{SIGNING}\"")),
                Secrets::Read(&worker_secrets),
            )
            .unwrap_err();
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
            assert!(
                errors[0].starts_with(
                    "advertisers[0].postback_secret: must be a string or {\"secret\": \"NAME\"}"
                ),
                "{bad}: {errors:?}"
            );
        }
        let errors = compile(
            &document("[1]", &format!("\"{SIGNING}\""), &format!("\"{SIGNING}\"")),
            Secrets::None,
        )
        .unwrap_err();
        assert!(errors[0].ends_with("found an array"), "{errors:?}");
    }

    #[test]
    fn a_named_secret_is_held_to_the_length_of_a_written_one() {
        let short = |name: &str| (name == "SHORT").then(|| "short".to_owned());
        let errors = compile(
            &document(
                r#"{"secret": "SHORT"}"#,
                r#"{"secret": "SHORT"}"#,
                &format!("\"{SIGNING}\""),
            ),
            Secrets::Read(&short),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("advertisers[0].postback_secret: must be at least"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("networks[0].signing.keys[0].secret: must be at least"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_document_shown_back_holds_no_secret_and_cannot_be_pushed_as_it_is() {
        let text = document(
            &format!("\"{POSTBACK}\""),
            r#"{"secret": "NET7_K1"}"#,
            &format!("\"{SIGNING}-2\""),
        );
        let shown = redact(&text).unwrap();
        assert!(
            !shown.contains(POSTBACK) && !shown.contains(SIGNING),
            "{shown}"
        );
        let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(v["advertisers"][0]["postback_secret"], REDACTED);
        assert_eq!(
            v["networks"][0]["signing"]["keys"][0]["secret"],
            serde_json::json!({"secret": "NET7_K1"})
        );
        assert_eq!(v["networks"][0]["signing"]["keys"][1]["secret"], REDACTED);
        // Everything else as written, fields in their order.
        assert!(shown.starts_with(r#"{"version":1,"offers":[{"id":"1","landing_url":"https://x.example/","advertiser_id":"acme"}],"advertisers""#), "{shown}");
        let errors = compile(&shown, Secrets::Read(&worker_secrets)).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors
                .iter()
                .all(|e| e.contains("is the marker GET /admin/config shows")),
            "{errors:?}"
        );
        assert_eq!(redact("{not json"), None);
        assert_eq!(redact("null").as_deref(), Some("null"));
    }
}
