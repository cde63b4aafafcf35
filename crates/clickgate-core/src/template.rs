//! Landing-URL templates: `https://shop.example/land?tid={transaction_id}&s1={sub1}`.
//!
//! A template is compiled once, with the config, into literal and macro parts, so rendering a click is
//! a concatenation. Every substituted value is percent-encoded: a sub ID is whatever a publisher typed,
//! and must never be able to add a parameter or change the host of the offer's URL. Nor walk up its
//! path: a value that would make a whole path segment `.` or `..` has its dots written `%252E`, since a
//! browser reads `%2E` in a path as a dot too (`/a/%2E%2E/b` is `/b`).

use std::borrow::Cow;

use percent_encoding::percent_encode_byte;

use crate::click::{push_query_safe, AFF_ID, OFFER_ID, SOURCE_ID, SUB_IDS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Macro {
    TransactionId,
    OfferId,
    AffId,
    AdvertiserId,
    SourceId,
    /// `sub1` .. `sub5`, stored as index 0..=4.
    Sub(usize),
    /// `{param:NAME}`: the link's own parameter NAME, decoded and encoded again like any value;
    /// the index of its name in the template's `params`.
    Param(usize),
    /// `{query}`: the link's whole query as it arrived, less clickgate's signing parameters.
    Query,
    /// `{passthrough}`: the link's parameters clickgate does not read, as they arrived.
    Passthrough,
    /// A forwarded postback's verdict (`approved` or `rejected`), its first reason code and the
    /// conversion's event: only in a postback template.
    Status,
    Reason,
    Event,
}

/// The macros only a forwarded postback's template may use.
const POSTBACK_MACROS: [(&str, Macro); 3] = [
    ("status", Macro::Status),
    ("reason", Macro::Reason),
    ("event", Macro::Event),
];

/// The prefix of a macro that names any of the link's parameters.
const PARAM_PREFIX: &str = "param:";
/// The macros that put the link's raw parameters in: they stand only in the query or fragment.
const RAW_MACROS: [(&str, Macro); 2] =
    [("query", Macro::Query), ("passthrough", Macro::Passthrough)];

/// Each macro by its name: the click's own parameters spelled as the link spells them (see
/// [`crate::click`]), and the two values the link does not carry (the transaction id the edge
/// issues, the offer's advertiser).
const MACROS: [(&str, Macro); 10] = [
    ("transaction_id", Macro::TransactionId),
    (OFFER_ID, Macro::OfferId),
    (AFF_ID, Macro::AffId),
    ("advertiser_id", Macro::AdvertiserId),
    (SOURCE_ID, Macro::SourceId),
    (SUB_IDS[0], Macro::Sub(0)),
    (SUB_IDS[1], Macro::Sub(1)),
    (SUB_IDS[2], Macro::Sub(2)),
    (SUB_IDS[3], Macro::Sub(3)),
    (SUB_IDS[4], Macro::Sub(4)),
];

pub(crate) const MACRO_NAMES: [&str; 10] = {
    let mut names = [""; 10];
    let mut i = 0;
    while i < names.len() {
        names[i] = MACROS[i].0;
        i += 1;
    }
    names
};

impl Macro {
    fn from_name(name: &str) -> Option<Macro> {
        MACROS
            .iter()
            .chain(RAW_MACROS.iter())
            .find(|(n, _)| *n == name)
            .map(|&(_, m)| m)
    }

    fn is_raw(self) -> bool {
        matches!(self, Macro::Query | Macro::Passthrough)
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
    /// The names `{param:NAME}` macros read, by index.
    params: Vec<String>,
    literal_len: usize,
    /// The parts before the one where the query or fragment begins: macros among them are in the
    /// path.
    path_parts: usize,
    /// Whether the parts hold `{query}` and `{passthrough}`: asked on every click.
    uses_query: bool,
    uses_passthrough: bool,
}

/// The values a click supplies; a missing one renders as empty.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MacroValues<'a> {
    pub transaction_id: &'a str,
    pub offer_id: &'a str,
    pub aff_id: &'a str,
    pub advertiser_id: Option<&'a str>,
    pub(crate) source_id: Option<&'a str>,
    pub subs: [Option<&'a str>; 5],
    /// The link's query as it arrived, which `{param:NAME}` reads.
    pub(crate) link_query: &'a str,
    /// What `{query}` and `{passthrough}` put in, already safe for a query (see
    /// [`crate::click::pass_on`]); the caller fills only what [`Template::uses_query`] and [`Template::uses_passthrough`] ask for.
    pub query: &'a str,
    pub(crate) passthrough: &'a str,
    /// A forwarded postback's verdict, first reason code and event (empty for a click).
    pub status: &'a str,
    pub reason: &'a str,
    pub event: &'a str,
}

impl<'a> MacroValues<'a> {
    fn get(&self, m: Macro, params: &[String]) -> Cow<'a, str> {
        match m {
            Macro::TransactionId => Cow::Borrowed(self.transaction_id),
            Macro::OfferId => Cow::Borrowed(self.offer_id),
            Macro::AffId => Cow::Borrowed(self.aff_id),
            Macro::AdvertiserId => Cow::Borrowed(self.advertiser_id.unwrap_or("")),
            Macro::SourceId => Cow::Borrowed(self.source_id.unwrap_or("")),
            Macro::Sub(i) => Cow::Borrowed(self.subs[i].unwrap_or("")),
            Macro::Param(i) => {
                let name = params.get(i).map_or("", String::as_str);
                crate::click::query_pairs(self.link_query)
                    .find(|(n, _)| n == name)
                    .map_or(Cow::Borrowed(""), |(_, v)| Cow::Owned(v.into_owned()))
            }
            Macro::Query => Cow::Borrowed(self.query),
            Macro::Passthrough => Cow::Borrowed(self.passthrough),
            Macro::Status => Cow::Borrowed(self.status),
            Macro::Reason => Cow::Borrowed(self.reason),
            Macro::Event => Cow::Borrowed(self.event),
        }
    }
}

pub(crate) const MAX_TEMPLATE_LEN: usize = 4096;

impl Template {
    /// Compiles a landing URL. The problems are written for an operator reading `config validate`.
    pub fn compile(text: &str) -> Result<Template, String> {
        Template::compile_as(text, false)
    }

    /// Compiles the URL a judged conversion is forwarded to: the click's macros, `{param:NAME}`
    /// of the postback's own parameters, and `{status}`, `{reason}` and `{event}`; not `{query}`
    /// or `{passthrough}`, which would hand on the postback's secret.
    pub(crate) fn compile_postback(text: &str) -> Result<Template, String> {
        let t = Template::compile_as(text, true)?;
        if t.uses_query() || t.uses_passthrough() {
            return Err("a postback URL takes {param:NAME}, not {query} or {passthrough}".into());
        }
        Ok(t)
    }

    fn compile_as(text: &str, postback: bool) -> Result<Template, String> {
        if text.len() > MAX_TEMPLATE_LEN {
            return Err(format!(
                "is {} bytes; at most {MAX_TEMPLATE_LEN}",
                text.len()
            ));
        }
        let scheme = |s: &str| {
            text.get(..s.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(s))
        };
        if !(scheme("https://") || scheme("http://")) {
            return Err("must start with https:// or http://".into());
        }
        // The text is read byte by byte: every character searched for is ASCII, and a space or
        // control character has a byte outside printable ASCII (`!` to `~`), so characters are
        // decoded only for a text holding one. Reading it character by character cost a
        // production-sized document's 100 landing URLs a tenth of its compile, inside a fresh
        // isolate's first click.
        let bytes = text.as_bytes();
        if bytes.iter().any(|b| !b.is_ascii_graphic()) {
            if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "contains {c:?}; spaces and control characters must be percent-encoded"
                ));
            }
        }
        let host_start = match scheme("https://") {
            true => "https://".len(),
            false => "http://".len(),
        };
        let host_end = bytes[host_start..]
            .iter()
            .position(|b| matches!(b, b'/' | b'?' | b'#'))
            .map_or(text.len(), |i| i + host_start);
        let host = &bytes[host_start..host_end];
        if host.is_empty() {
            return Err("has no host".into());
        }
        if host.contains(&b'{') {
            // A macro in the host would let a click choose where it is sent.
            return Err("macros are not allowed in the host".into());
        }

        let mut parts = Vec::new();
        let mut params = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.bytes().position(|b| b == b'{' || b == b'}') {
            if rest.as_bytes()[open] == b'}' {
                return Err(format!(
                    "has a `}}` without `{{` at byte {}",
                    text.len() - rest.len() + open
                ));
            }
            let literal = &rest[..open];
            let after = &rest[open + 1..];
            let close = after.bytes().position(|b| b == b'}').ok_or_else(|| {
                format!(
                    "has a `{{` without `}}` at byte {}",
                    text.len() - rest.len() + open
                )
            })?;
            let m = macro_named(&after[..close], postback, &mut params)?;
            if !literal.is_empty() {
                parts.push(Part::Literal(literal.to_owned()));
            }
            parts.push(Part::Macro(m));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        assemble(parts, params)
    }

    /// Whether the template puts in `{query}` (`Macro::Query`) or `{passthrough}`, so the
    /// caller computes only what it reads.
    pub(crate) fn uses_query(&self) -> bool {
        self.uses_query
    }

    pub(crate) fn uses_passthrough(&self) -> bool {
        self.uses_passthrough
    }

    /// Renders the template, then adds `extra` (pairs already safe for a query) to its query,
    /// before any fragment: how the link's other parameters reach a destination that does not
    /// place them itself.
    pub(crate) fn render_adding(&self, values: &MacroValues<'_>, extra: &str) -> String {
        let mut out = self.render(values);
        if extra.is_empty() {
            return out;
        }
        // Values never hold a raw `#` (each is encoded), so the first one starts the fragment.
        let end = out.find('#').unwrap_or(out.len());
        let joint = match out[..end].find('?') {
            None => "?",
            Some(_) if out[..end].ends_with(['?', '&']) => "",
            Some(_) => "&",
        };
        if end == out.len() {
            out.push_str(joint);
            out.push_str(extra);
        } else {
            out.insert_str(end, &format!("{joint}{extra}"));
        }
        out
    }

    pub(crate) fn render(&self, values: &MacroValues<'_>) -> String {
        // Room for a transaction id (some 60 bytes) and a few short values: one allocation for
        // most clicks, where less grew the string once.
        let mut out = String::with_capacity(self.literal_len + 128);
        let mut dots_in_path = false;
        for (i, part) in self.parts.iter().enumerate() {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Macro(m) if m.is_raw() => {
                    push_query_safe(&mut out, &values.get(*m, &self.params))
                }
                Part::Macro(m) => {
                    let value = values.get(*m, &self.params);
                    dots_in_path |= i < self.path_parts && all_dots(&value);
                    push_encoded(&mut out, &value);
                }
            }
        }
        if dots_in_path {
            self.render_keeping_the_path(values)
        } else {
            out
        }
    }

    /// [`Template::render`] for the rare click whose values put dots alone in the path: segment by
    /// segment, and a segment the values made a dot segment gets their dots as `%252E`.
    fn render_keeping_the_path(&self, values: &MacroValues<'_>) -> String {
        let mut out = String::with_capacity(self.literal_len + 64);
        let mut in_path = true;
        let mut segment = 0;
        // Where values of dots alone went in the current segment.
        let mut dotted: Vec<std::ops::Range<usize>> = Vec::new();
        let close = |out: &mut String, segment: usize, dotted: &mut Vec<std::ops::Range<usize>>| {
            if !dotted.is_empty() && is_dot_segment(&out[segment..]) {
                for range in dotted.iter().rev() {
                    let escaped = "%252E".repeat(range.len());
                    out.replace_range(range.clone(), &escaped);
                }
            }
            dotted.clear();
        };
        for part in &self.parts {
            match part {
                Part::Literal(l) if in_path => {
                    for c in l.chars() {
                        if in_path && matches!(c, '/' | '?' | '#') {
                            close(&mut out, segment, &mut dotted);
                            in_path = c == '/';
                            segment = out.len() + 1;
                        }
                        out.push(c);
                    }
                }
                Part::Literal(l) => out.push_str(l),
                Part::Macro(m) if m.is_raw() => {
                    push_query_safe(&mut out, &values.get(*m, &self.params))
                }
                Part::Macro(m) => {
                    let value = values.get(*m, &self.params);
                    if in_path && all_dots(&value) {
                        dotted.push(out.len()..out.len() + value.len());
                    }
                    push_encoded(&mut out, &value);
                }
            }
        }
        if in_path {
            close(&mut out, segment, &mut dotted);
        }
        out
    }
}

/// Appends `value` percent-encoded: every byte but RFC 3986's unreserved characters as `%XX`,
/// the text `utf8_percent_encode` writes with that set, but a run at a time rather than a call
/// per byte (a test holds the two to the same text).
fn push_encoded(out: &mut String, value: &str) {
    let mut start = 0;
    for (i, &b) in value.as_bytes().iter().enumerate() {
        if !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')) {
            // A run of unreserved bytes is ASCII, and the byte after it starts a character.
            if start < i {
                out.push_str(value.get(start..i).unwrap_or_default());
            }
            out.push_str(percent_encode_byte(b));
            start = i + 1;
        }
    }
    if start < value.len() {
        out.push_str(value.get(start..).unwrap_or_default());
    }
}

fn all_dots(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b == b'.')
}

/// Whether a path segment is `.` or `..` as the WHATWG URL parser reads it (`%2e` for either dot).
fn is_dot_segment(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "." | "%2e" | ".." | ".%2e" | "%2e." | "%2e%2e"
    )
}

/// The macro `{name}` of a template (a postback's when `postback`); `{param:NAME}` adds its name
/// to `params`.
fn macro_named(name: &str, postback: bool, params: &mut Vec<String>) -> Result<Macro, String> {
    match name.strip_prefix(PARAM_PREFIX) {
        Some(param) => {
            if param.is_empty() || param.len() > 64 || param.as_bytes().contains(&b'{') {
                return Err(format!(
                    "`{{{name}}}` must name a parameter of 1 to 64 bytes"
                ));
            }
            params.push(param.to_owned());
            Ok(Macro::Param(params.len() - 1))
        }
        None if postback && POSTBACK_MACROS.iter().any(|(n, _)| *n == name) => Ok(POSTBACK_MACROS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(Macro::Event, |&(_, m)| m)),
        None => Macro::from_name(name).ok_or_else(|| {
            format!(
                "unknown macro `{{{name}}}`; known: {} {{param:NAME}} {{query}} {{passthrough}}",
                MACRO_NAMES.map(|n| format!("{{{n}}}")).join(" ")
            )
        }),
    }
}

/// A template from its parts, in order, and the parameters its `{param:NAME}` macros name.
fn assemble(parts: Vec<Part>, params: Vec<String>) -> Result<Template, String> {
    let literal_len = parts
        .iter()
        .map(|p| if let Part::Literal(l) = p { l.len() } else { 0 })
        .sum();
    let path_parts = parts
        .iter()
        .position(|p| matches!(p, Part::Literal(l) if l.bytes().any(|b| b == b'?' || b == b'#')))
        .unwrap_or(parts.len());
    // The link's raw parameters may only land in the query (or fragment), where they can
    // neither reach the host nor walk the path.
    if let Some(Part::Macro(m)) = parts[..path_parts]
        .iter()
        .find(|p| matches!(p, Part::Macro(m) if m.is_raw()))
    {
        let name = RAW_MACROS
            .iter()
            .find(|(_, r)| r == m)
            .map_or("", |(n, _)| n);
        return Err(format!("`{{{name}}}` must come after the `?`"));
    }
    Ok(Template {
        uses_query: parts.contains(&Part::Macro(Macro::Query)),
        uses_passthrough: parts.contains(&Part::Macro(Macro::Passthrough)),
        parts,
        params,
        literal_len,
        path_parts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn the_macros_name_the_clicks_parameters_as_the_link_does() {
        for (i, name) in crate::click::SUB_IDS.into_iter().enumerate() {
            assert_eq!(Macro::from_name(name), Some(Macro::Sub(i)));
        }
        assert_eq!(
            Macro::from_name(crate::click::OFFER_ID),
            Some(Macro::OfferId)
        );
        assert_eq!(Macro::from_name(crate::click::AFF_ID), Some(Macro::AffId));
        assert_eq!(
            Macro::from_name(crate::click::SOURCE_ID),
            Some(Macro::SourceId)
        );
        assert_eq!(Macro::from_name("sub6"), None);
        assert_eq!(
            MACRO_NAMES.map(|n| Macro::from_name(n).is_some()),
            [true; 10]
        );
    }

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
            ..Default::default()
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
    fn a_sub_id_of_dots_cannot_walk_up_the_landing_path() {
        let render = |template: &str, subs: [Option<&str>; 2]| {
            let v = MacroValues {
                subs: [subs[0], subs[1], None, None, None],
                ..Default::default()
            };
            Template::compile(template).unwrap().render(&v)
        };
        let t = "https://shop.example/land/{sub1}/page?s={sub1}#{sub1}";
        assert_eq!(
            render(t, [Some(".."), None]),
            "https://shop.example/land/%252E%252E/page?s=..#.."
        );
        assert_eq!(
            render(t, [Some("."), None]),
            "https://shop.example/land/%252E/page?s=.#."
        );
        // Two values that make `..` together; a value at the end of the path; a literal `%2e`
        // beside a value; a template whose path ends where its query begins.
        assert_eq!(
            render("https://s.example/{sub1}{sub2}/x", [Some("."), Some(".")]),
            "https://s.example/%252E%252E/x"
        );
        assert_eq!(
            render("https://s.example/a/{sub1}", [Some(".."), None]),
            "https://s.example/a/%252E%252E"
        );
        assert_eq!(
            render("https://s.example/a/%2E{sub1}/b", [Some("."), None]),
            "https://s.example/a/%2E%252E/b"
        );
        assert_eq!(
            render(
                "https://s.example/a/{sub1}?q={sub2}",
                [Some(".."), Some("..")]
            ),
            "https://s.example/a/%252E%252E?q=.."
        );
        // Dots that do not make a dot segment, and the template's own, are left as they are.
        for (template, sub, want) in [
            (
                "https://s.example/a/{sub1}/b",
                "...",
                "https://s.example/a/.../b",
            ),
            (
                "https://s.example/a/x{sub1}/b",
                "..",
                "https://s.example/a/x../b",
            ),
            (
                "https://s.example/a/{sub1}.x/b",
                ".",
                "https://s.example/a/..x/b",
            ),
            (
                "https://s.example/../{sub1}",
                "a.b",
                "https://s.example/../a.b",
            ),
            ("https://s.example/a?{sub1}", "..", "https://s.example/a?.."),
        ] {
            assert_eq!(render(template, [Some(sub), None]), want, "{template}");
        }
    }

    #[test]
    fn scheme_is_case_insensitive() {
        assert!(Template::compile("HTTPS://shop.example/").is_ok());
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::super::*;
        use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
        use proptest::prelude::*;

        /// Everything but RFC 3986's unreserved characters is encoded.
        const VALUE: &AsciiSet = &NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');

        /// The compile's reading of the text as it was when it went character by character (the
        /// macros' names and the assembled template are the compile's own), kept to hold the
        /// byte-by-byte reading to the same templates and the same problems.
        fn by_characters(text: &str, postback: bool) -> Result<Template, String> {
            if text.len() > MAX_TEMPLATE_LEN {
                return Err(format!(
                    "is {} bytes; at most {MAX_TEMPLATE_LEN}",
                    text.len()
                ));
            }
            let scheme = |s: &str| {
                text.get(..s.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(s))
            };
            if !(scheme("https://") || scheme("http://")) {
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
            let mut params = Vec::new();
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
                let m = macro_named(&after[..close], postback, &mut params)?;
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
            assemble(parts, params)
        }

        /// Texts made of the pieces that steer the compile: schemes, hosts, braces and every kind of
        /// macro, spaces and control characters ASCII or not, and other characters beyond ASCII.
        fn texts() -> impl Strategy<Value = String> {
            let start = prop::sample::select(vec![
                "https://", "http://", "HTTPS://", "hTtP://", "", "ftp://", "https:/",
            ]);
            let piece = prop::sample::select(vec![
                "s.example",
                "/",
                "?",
                "#",
                "&",
                "=",
                "a",
                ".",
                "{",
                "}",
                "{sub1}",
                "{sub5}",
                "{transaction_id}",
                "{advertiser_id}",
                "{param:",
                "{param:x}",
                "{param:}",
                "{param:{x}",
                "{query}",
                "{passthrough}",
                "{status}",
                "{reason}",
                "{event}",
                "{nope}",
                " ",
                "\u{a0}",
                "\u{85}",
                "\u{2003}",
                "\t",
                "\n",
                "\u{7f}",
                "\u{9f}",
                "\u{0}",
                "ü",
                "€",
                "%2E",
            ]);
            (start, prop::collection::vec(piece, 0..14))
                .prop_map(|(s, p)| s.to_owned() + &p.concat())
        }

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
            fn a_value_is_encoded_as_percent_encoding_encodes_it(value in "\\PC{0,40}|[ -~]{0,40}") {
                let mut out = String::from("x");
                push_encoded(&mut out, &value);
                let expected = percent_encoding::utf8_percent_encode(&value, VALUE).to_string();
                prop_assert_eq!(&out[1..], expected.as_str());
            }

            // Reading bytes rather than characters changed no template and no problem reported.
            #[test]
            fn compiles_as_reading_characters_did(text in texts(), postback in any::<bool>(), long in 0usize..3) {
                // Past the cap, at it, and under it.
                let text = match long {
                    0 => text,
                    n => format!("{text}{}", "a".repeat((MAX_TEMPLATE_LEN + 2 - n).saturating_sub(text.len()))),
                };
                prop_assert_eq!(Template::compile_as(&text, postback), by_characters(&text, postback), "{:?}", text);
            }

            #[test]
            fn compile_never_panics(text in "\\PC{0,80}") {
                let _ = Template::compile(&text);
            }

            // No values, however they are split between macros, make a dot segment in the path
            // that the template did not have.
            #[test]
            fn values_never_make_a_dot_segment(
                a in "[./%2eE]{1,4}",
                b in "[./%2eE]{1,4}",
                template in prop::sample::select(vec![
                    "https://s.example/p/{sub1}/q", "https://s.example/{sub1}{sub2}",
                    "https://s.example/%2e{sub1}/{sub2}?x", "https://s.example/{sub1}.{sub2}/",
                ]),
            ) {
                let v = MacroValues { subs: [Some(&a), Some(&b), None, None, None], ..Default::default() };
                let out = Template::compile(template).unwrap().render(&v);
                let path = out["https://s.example".len()..].split(['?', '#']).next().unwrap();
                for segment in path.split('/').skip(1) {
                    prop_assert!(!is_dot_segment(segment), "{template} {a:?} {b:?}: {out}");
                }
            }
        }
    }
}
