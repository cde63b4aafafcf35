//! Landing-URL templates: `https://shop.example/land?tid={transaction_id}&s1={sub1}`.
//!
//! A template is compiled once, with the config, into literal and macro parts, so rendering a click is
//! a concatenation. Every substituted value is percent-encoded: a sub ID is whatever a publisher typed,
//! and must never be able to add a parameter or change the host of the offer's URL.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters is encoded.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Macro {
    TransactionId,
    OfferId,
    AffId,
    AdvertiserId,
    SourceId,
    /// `sub1` .. `sub5`, stored as index 0..=4.
    Sub(usize),
}

pub const MACRO_NAMES: [&str; 10] = [
    "transaction_id",
    "offer_id",
    "aff_id",
    "advertiser_id",
    "source_id",
    "sub1",
    "sub2",
    "sub3",
    "sub4",
    "sub5",
];

impl Macro {
    fn from_name(name: &str) -> Option<Macro> {
        Some(match name {
            "transaction_id" => Macro::TransactionId,
            "offer_id" => Macro::OfferId,
            "aff_id" => Macro::AffId,
            "advertiser_id" => Macro::AdvertiserId,
            "source_id" => Macro::SourceId,
            "sub1" => Macro::Sub(0),
            "sub2" => Macro::Sub(1),
            "sub3" => Macro::Sub(2),
            "sub4" => Macro::Sub(3),
            "sub5" => Macro::Sub(4),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Macro(Macro),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    literal_len: usize,
}

/// The values a click supplies; a missing one renders as empty.
#[derive(Debug, Default, Clone, Copy)]
pub struct MacroValues<'a> {
    pub transaction_id: &'a str,
    pub offer_id: &'a str,
    pub aff_id: &'a str,
    pub advertiser_id: Option<&'a str>,
    pub source_id: Option<&'a str>,
    pub subs: [Option<&'a str>; 5],
}

impl MacroValues<'_> {
    fn get(&self, m: Macro) -> &str {
        match m {
            Macro::TransactionId => self.transaction_id,
            Macro::OfferId => self.offer_id,
            Macro::AffId => self.aff_id,
            Macro::AdvertiserId => self.advertiser_id.unwrap_or(""),
            Macro::SourceId => self.source_id.unwrap_or(""),
            Macro::Sub(i) => self.subs[i].unwrap_or(""),
        }
    }
}

pub const MAX_TEMPLATE_LEN: usize = 4096;

impl Template {
    /// Compiles a landing URL. The problems are written for an operator reading `config validate`.
    pub fn compile(text: &str) -> Result<Template, String> {
        if text.len() > MAX_TEMPLATE_LEN {
            return Err(format!(
                "is {} bytes; at most {MAX_TEMPLATE_LEN}",
                text.len()
            ));
        }
        let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err("must start with https:// or http://".into());
        }
        if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "contains {c:?}; spaces and control characters must be percent-encoded"
            ));
        }
        let host_start = text.find("://").map(|i| i + 3).unwrap_or(0);
        let host_end = text[host_start..]
            .find(['/', '?', '#'])
            .map(|i| i + host_start)
            .unwrap_or(text.len());
        let host = &text[host_start..host_end];
        if host.is_empty() {
            return Err("has no host".into());
        }
        if host.contains('{') {
            // A macro in the host would let a click choose where it is sent.
            return Err("macros are not allowed in the host".into());
        }

        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest.as_bytes()[open] == b'}' {
                return Err(format!(
                    "has a `}}` without `{{` at byte {}",
                    text.len() - rest.len() + open
                ));
            }
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| {
                format!(
                    "has a `{{` without `}}` at byte {}",
                    text.len() - rest.len() + open
                )
            })?;
            let name = &after[..close];
            let m = Macro::from_name(name).ok_or_else(|| {
                format!(
                    "unknown macro `{{{name}}}`; known: {}",
                    MACRO_NAMES.map(|n| format!("{{{n}}}")).join(" ")
                )
            })?;
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Macro(m));
            rest = &after[close + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        let literal_len = parts
            .iter()
            .map(|p| if let Part::Literal(l) = p { l.len() } else { 0 })
            .sum();
        Ok(Template { parts, literal_len })
    }

    pub fn render(&self, values: &MacroValues<'_>) -> String {
        let mut out = String::with_capacity(self.literal_len + 64);
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Macro(m) => out.extend(utf8_percent_encode(values.get(*m), VALUE)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn renders_every_macro_encoded() {
        let t = Template::compile(
            "https://shop.example/land?tid={transaction_id}&o={offer_id}&a={aff_id}&adv={advertiser_id}\
             &src={source_id}&s1={sub1}&s2={sub2}&s3={sub3}&s4={sub4}&s5={sub5}",
        )
        .unwrap();
        let v = MacroValues {
            transaction_id: "AbC-_9",
            offer_id: "1001",
            aff_id: "net.7",
            advertiser_id: Some("acme"),
            source_id: Some("src 1"),
            subs: [Some("a&b=c"), Some("ü"), Some("x/y?z#"), None, Some("~ok")],
        };
        assert_eq!(
            t.render(&v),
            "https://shop.example/land?tid=AbC-_9&o=1001&a=net.7&adv=acme&src=src%201\
             &s1=a%26b%3Dc&s2=%C3%BC&s3=x%2Fy%3Fz%23&s4=&s5=~ok"
        );
    }

    #[test]
    fn template_without_macros_renders_as_is() {
        let t = Template::compile("https://shop.example/").unwrap();
        assert_eq!(t.render(&MacroValues::default()), "https://shop.example/");
    }

    #[test]
    fn refuses_bad_templates_with_a_reason() {
        let cases = [
            ("ftp://x/", "must start with https://"),
            ("javascript:alert(1)", "must start with https://"),
            ("https://", "has no host"),
            ("https://{sub1}.example/", "not allowed in the host"),
            ("https://x/?a={nope}", "unknown macro `{nope}`"),
            ("https://x/?a={sub1", "without `}`"),
            ("https://x/?a=sub1}", "without `{`"),
            ("https://x/?a=b c", "spaces and control characters"),
        ];
        for (text, want) in cases {
            let err = Template::compile(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn scheme_is_case_insensitive() {
        assert!(Template::compile("HTTPS://shop.example/").is_ok());
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            // Whatever a publisher puts in a sub ID, the rendered URL keeps the template's own
            // structure: nothing but unreserved characters and %XX escapes come from the value.
            #[test]
            fn substituted_values_cannot_change_the_url_structure(sub in "\\PC{0,40}") {
                let t = Template::compile("https://shop.example/p?s={sub1}&k=v").unwrap();
                let v = MacroValues { subs: [Some(&sub), None, None, None, None], ..Default::default() };
                let out = t.render(&v);
                let inner = out.strip_prefix("https://shop.example/p?s=").unwrap().strip_suffix("&k=v").unwrap();
                prop_assert!(inner.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
                let decoded = percent_encoding::percent_decode_str(inner).decode_utf8().unwrap();
                prop_assert_eq!(decoded, sub.as_str());
            }

            #[test]
            fn compile_never_panics(text in "\\PC{0,80}") {
                let _ = Template::compile(&text);
            }
        }
    }
}
