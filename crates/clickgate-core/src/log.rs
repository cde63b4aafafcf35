//! Log lines: one JSON object per line, for decisions, config events and faults alike, so one log
//! query finds all of them.
//!
//! Lines are written straight into a string rather than through `serde_json::Value`: a decision
//! line is written for every click, and building a map per click showed up in the Worker's profile.

use crate::hll::hash64;

/// A field's key as the per-click lines write it, `key!("ts")` for `","ts":"`: the name with the
/// punctuation that can stand around it (the quote closing a string before it, the comma, the
/// colon, the quote opening a string value). [`JsonLine`] writes the part a field needs in one
/// piece, where a plain name takes three.
macro_rules! key {
    ($name:literal) => {
        concat!("\",\"", $name, "\":\"")
    };
}
pub(crate) use key;

/// Builds one JSON object. Absent optional fields are left out rather than written as `null`,
/// which keeps the per-click line short.
///
/// A decision line has some thirty fields, and each piece written is a call: a field is written
/// in as few pieces as it can be. A string's closing quote is written with whatever follows it,
/// a key spelled by [`key!`] is one piece, and keys, the code's own names, are written without
/// the escape scan values need.
pub(crate) struct JsonLine {
    out: String,
    /// What the line ends with, which decides how the next field begins.
    end: End,
}

/// What a [`JsonLine`] ends with.
#[derive(Clone, Copy)]
enum End {
    /// The opening brace: the next field needs no comma.
    Brace,
    /// A string without its closing quote, which the next piece writes.
    OpenString,
    /// Any other value.
    Value,
}

impl JsonLine {
    pub(crate) fn new() -> JsonLine {
        // A decision line is 300 to 700 bytes: one allocation for most.
        let mut out = String::with_capacity(768);
        out.push('{');
        JsonLine {
            out,
            end: End::Brace,
        }
    }

    /// `"key":` after what the line ends with, and the quote opening a string value when the
    /// field is one. A key is the code's own name, plain (`ts`) or as [`key!`] spells it (which
    /// begins with the quote no plain name holds): nothing in it needs escaping.
    fn key(&mut self, key: &'static str, string: bool) {
        // By byte: `str::starts_with` is a call through the pattern machinery.
        if key.as_bytes().first() == Some(&b'"') {
            // `","name":"`, less what does not stand here.
            let from = match self.end {
                End::OpenString => 0,
                End::Value => 1,
                End::Brace => 2,
            };
            let to = key.len() - usize::from(!string);
            self.out.push_str(key.get(from..to).unwrap_or_default());
        } else {
            debug_assert!(clean_run(key.as_bytes()) == key.len(), "{key}");
            self.out.push_str(match self.end {
                End::OpenString => "\",\"",
                End::Value => ",\"",
                End::Brace => "\"",
            });
            self.out.push_str(key);
            self.out.push_str(if string { "\":\"" } else { "\":" });
        }
        self.end = if string { End::OpenString } else { End::Value };
    }

    pub(crate) fn str(mut self, key: &'static str, value: &str) -> JsonLine {
        self.key(key, true);
        escaped(value, |run| self.out.push_str(run));
        self
    }

    /// A string the code wrote or checked itself, in which nothing needs escaping: a time, a
    /// number, an address, a transaction id (base64url), an [`crate::click::Id`] or a name of the
    /// code's. Written without the escape scan, which costs more than the copy on short values.
    pub(crate) fn plain(mut self, key: &'static str, value: &str) -> JsonLine {
        debug_assert!(clean_run(value.as_bytes()) == value.len(), "{value}");
        self.key(key, true);
        self.out.push_str(value);
        self
    }

    pub(crate) fn opt(self, key: &'static str, value: Option<&str>) -> JsonLine {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    pub(crate) fn bool(mut self, key: &'static str, value: bool) -> JsonLine {
        self.key(key, false);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    pub(crate) fn num(mut self, key: &'static str, value: u64) -> JsonLine {
        self.key(key, false);
        self.out.push_str(Digits::of(value).as_str());
        self
    }

    /// A value that is already JSON (an array or object written by another `JsonLine`).
    pub(crate) fn raw(mut self, key: &'static str, json: &str) -> JsonLine {
        self.key(key, false);
        self.out.push_str(json);
        self
    }

    /// [`JsonLine::plain`] of a value there may not be.
    pub(crate) fn opt_plain(self, key: &'static str, value: Option<&str>) -> JsonLine {
        match value {
            Some(v) => self.plain(key, v),
            None => self,
        }
    }

    /// A field holding JSON already written, when there is one.
    pub(crate) fn opt_raw(self, key: &'static str, json: Option<&str>) -> JsonLine {
        match json {
            Some(j) => self.raw(key, j),
            None => self,
        }
    }

    pub(crate) fn finish(mut self) -> String {
        self.out.push_str(match self.end {
            End::OpenString => "\"}",
            End::Brace | End::Value => "}",
        });
        self.out
    }
}

impl Default for JsonLine {
    fn default() -> Self {
        JsonLine::new()
    }
}

/// A number's decimal digits, written without the formatting machinery (a decision line has
/// one or two per click).
pub(crate) struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    pub(crate) fn of(mut value: u64) -> Digits {
        let mut buf = [b'0'; 20];
        let mut start = buf.len();
        loop {
            start -= 1;
            buf[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                return Digits { buf, start };
            }
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII digits were written.
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or("0")
    }
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    escaped(s, |run| out.push_str(run));
    out.push('"');
}

/// `s` escaped for a JSON string, without the quotes, handed to `put` in pieces: runs of plain
/// text whole (most of a decision line), and each escape.
fn escaped(s: &str, mut put: impl FnMut(&str)) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rest = s;
    loop {
        let clean = clean_run(rest.as_bytes());
        let Some(&b) = rest.as_bytes().get(clean) else {
            put(rest);
            return;
        };
        // Escaped bytes are ASCII, so the run ends and the next begins on character boundaries.
        put(&rest[..clean]);
        rest = &rest[clean + 1..];
        let control = [
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 15)],
        ];
        put(match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            // Only ASCII was written.
            _ => std::str::from_utf8(&control).unwrap_or_default(),
        });
    }
}

/// How many bytes at the start of `bytes` need no escaping: eight at a time while none of them
/// does, then one by one up to the first that does.
fn clean_run(bytes: &[u8]) -> usize {
    let mut rest = bytes;
    while let Some((word, tail)) = rest.split_first_chunk::<8>() {
        if any_needs_escape(u64::from_le_bytes(*word)) {
            break;
        }
        rest = tail;
    }
    // The last few bytes as one word, padded with plain ones: most strings, and all keys, end
    // without an escape, and the check of a word costs less than a byte-by-byte walk.
    if rest.len() < 8 {
        let padded = u64::from_le_bytes(*b"........");
        let word = rest
            .iter()
            .fold(padded, |word, &b| word << 8 | u64::from(b));
        if !any_needs_escape(word) {
            return bytes.len();
        }
    }
    let clean = bytes.len() - rest.len();
    clean
        + rest
            .iter()
            .position(|&b| needs_escape(b))
            .unwrap_or(rest.len())
}

/// A control character, `"` or `\\`: what a JSON string may not hold as it is.
const fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether any of eight bytes is a control character, `"` or `\\` (the classic bit tricks for
/// "some byte is zero" and "some byte is below n"; exact about whether, not about which). XOR
/// with `"` or `\\` leaves each byte's high bit as it was, so the three tests share one mask.
#[inline(always)]
const fn any_needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20);
    let quote = (word ^ (ONES * b'"' as u64)).wrapping_sub(ONES);
    let backslash = (word ^ (ONES * b'\\' as u64)).wrapping_sub(ONES);
    (below_space | quote | backslash) & !word & HIGHS != 0
}

/// A fault that no client caused: a missing secret, a broken random source.
pub fn fault_line(what: &str, problem: &str) -> String {
    JsonLine::new()
        .str("event", "fault")
        .str("level", "error")
        .str("what", what)
        .str("problem", problem)
        .finish()
}

/// Which allowed clean clicks the decision log keeps: the config document's `log`. Every other
/// decision (blocked, declined, would-block, allowlisted, a preview, one decided with something
/// unavailable) is logged in full whatever it says, and the report counts every click either way.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LogClean {
    /// `"all"`: every click has its line (the default: `clickgate replay` reads whole days).
    #[default]
    All,
    /// `{"sample": rate}`: the clean clicks whose transaction id hashes below `rate` of the hash's
    /// range, so the same click is in the sample however often the log is read or the click
    /// replayed.
    Sample(f64),
    /// `"none"`: no clean click is logged.
    None,
}

impl LogClean {
    /// Whether the clean click with this transaction id is logged.
    pub(crate) fn keeps(self, transaction_id: &str) -> bool {
        match self {
            LogClean::All => true,
            LogClean::None => false,
            LogClean::Sample(rate) if rate >= 1.0 => true,
            LogClean::Sample(rate) => {
                // 2^64: the hash's range; a rate of 0.01 keeps the lowest hundredth of it.
                let below = rate * 18_446_744_073_709_551_616.0;
                (hash64(transaction_id.as_bytes()) as f64) < below
            }
        }
    }

    /// The share of clean clicks logged.
    pub(crate) fn rate(self) -> f64 {
        match self {
            LogClean::All => 1.0,
            LogClean::Sample(rate) => rate,
            LogClean::None => 0.0,
        }
    }

    /// What each decision line says of the setting, so a reader of the log knows its clean clicks
    /// are a sample: nothing under `"all"`, whose lines stay as they always were.
    pub(crate) fn line_field(self) -> Option<String> {
        match self {
            LogClean::All => None,
            // Through serde_json's float writer, which the Worker has already: `{rate}` would
            // bring the standard library's own.
            LogClean::Sample(rate) => Some(format!("{{\"sample\":{}}}", serde_json::json!(rate))),
            LogClean::None => Some("\"none\"".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn fault_line_is_json_with_escaped_text() {
        let v: serde_json::Value =
            serde_json::from_str(&fault_line("token_secret", "a \"quoted\"\nproblem")).unwrap();
        assert_eq!(v["event"], "fault");
        assert_eq!(v["problem"], "a \"quoted\"\nproblem");
    }

    #[test]
    fn absent_fields_are_left_out() {
        let line = JsonLine::new()
            .str("a", "1")
            .opt("b", None)
            .bool("c", true)
            .raw("d", "[]")
            .finish();
        assert_eq!(line, r#"{"a":"1","c":true,"d":[]}"#);
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            // Whatever a client puts in a header ends up in the log; it must stay one valid JSON string.
            #[test]
            fn any_text_round_trips_through_a_line(text in "\\PC{0,60}|[\\x00-\\x1f\"\\\\]{0,10}") {
                let line = JsonLine::new().str("v", &text).finish();
                let back: serde_json::Value = serde_json::from_str(&line).unwrap();
                prop_assert_eq!(back["v"].as_str(), Some(text.as_str()));
                prop_assert!(!line.contains('\n'));
            }
        }

        /// One field of a line, and how it is written.
        #[derive(Debug, Clone)]
        enum Field {
            Str(String),
            /// A value written without the escape scan (plain text of `Id`'s alphabet).
            Plain(String),
            Absent,
            Num(u64),
            Bool(bool),
            Raw(&'static str),
        }

        /// The keys the test writes, each by its plain name and as [`key!`] spells it.
        const KEYS: [(&str, &str); 3] = [
            ("ts", key!("ts")),
            ("user_agent", key!("user_agent")),
            ("a", key!("a")),
        ];

        /// A string as serde_json writes it, but for the two control characters it writes as `\b`
        /// and `\f`, which the log writes as `\u0008` and `\u000c` like every other one.
        fn serde_json_string(text: &str) -> String {
            let mut out = String::from("\"");
            for c in text.chars() {
                match c {
                    '\u{8}' => out.push_str("\\u0008"),
                    '\u{c}' => out.push_str("\\u000c"),
                    c => {
                        let one = serde_json::to_string(&c.to_string()).unwrap();
                        out.push_str(&one[1..one.len() - 1]);
                    }
                }
            }
            out.push('"');
            out
        }

        fn arb_field() -> impl Strategy<Value = Field> {
            prop_oneof![
                "\\PC{0,30}|[\\x00-\\x7f]{0,20}".prop_map(Field::Str),
                "[A-Za-z0-9._-]{0,20}".prop_map(Field::Plain),
                Just(Field::Absent),
                any::<u64>().prop_map(Field::Num),
                any::<bool>().prop_map(Field::Bool),
                proptest::sample::select(vec!["[]", "{\"a\":[1]}", "true"]).prop_map(Field::Raw),
            ]
        }

        proptest! {
            // What the decision line writes without the escape scan (`JsonLine::plain`) needs
            // none: an id as a link's parameter gives it, a transaction id, a time, an address.
            #[test]
            fn what_is_written_plain_needs_no_escaping(
                text in "\\PC{1,20}|[\\x00-\\x7f]{1,20}|[A-Za-z0-9._\"\\\\\\x01-]{1,10}",
                ms in any::<u64>(),
                nonce in any::<[u8; 8]>(),
                ip in any::<std::net::IpAddr>(),
            ) {
                use crate::click::Id;
                use crate::token::{ClickToken, TokenKey, TokenVerdict};
                let plain = |v: &str| clean_run(v.as_bytes()) == v.len();
                if let Ok(id) = Id::parse(&text) {
                    prop_assert!(plain(id.as_str()), "{}", id);
                }
                let token = ClickToken {
                    issued_ms: ms,
                    nonce,
                    verdict: TokenVerdict::Redirected,
                    offer_id: Id::parse("1").unwrap(),
                    aff_id: Id::parse("net-7").unwrap(),
                    profile: 0,
                };
                let tid = token.seal(&TokenKey::new(&[5; 32]).unwrap());
                prop_assert!(plain(&tid));
                prop_assert!(plain(&crate::time::rfc3339_ms(ms)));
                prop_assert!(plain(crate::ip::IpText::of(ip).as_str()));
                prop_assert!(plain(Digits::of(ms).as_str()));
            }

            // The line writes a string's closing quote with what follows it and a `key!` key in
            // one piece: whatever the fields and however their keys are spelled, the line is the
            // one written field by field, each string as serde_json writes it.
            #[test]
            fn a_line_is_its_fields_written_one_by_one(
                fields in proptest::collection::vec(
                    (0..KEYS.len(), any::<bool>(), arb_field()), 0..8),
            ) {
                let mut line = JsonLine::new();
                let mut expected = Vec::new();
                for (k, spelled, field) in &fields {
                    let (name, spelled_key) = KEYS[*k];
                    let key = if *spelled { spelled_key } else { name };
                    let json = match field {
                        Field::Str(v) => { line = line.opt(key, Some(v)); Some(serde_json_string(v)) }
                        Field::Plain(v) => { line = line.opt_plain(key, Some(v)); Some(serde_json_string(v)) }
                        Field::Absent => { line = line.opt(key, None).opt_plain(key, None).opt_raw(key, None); None }
                        Field::Num(n) => { line = line.num(key, *n); Some(n.to_string()) }
                        Field::Bool(b) => { line = line.bool(key, *b); Some(b.to_string()) }
                        Field::Raw(j) => { line = line.raw(key, j); Some(j.to_string()) }
                    };
                    if let Some(json) = json {
                        expected.push(format!("\"{name}\":{json}"));
                    }
                }
                prop_assert_eq!(line.finish(), format!("{{{}}}", expected.join(",")));
            }
        }
    }

    #[test]
    fn plain_runs_and_escapes_mix_at_any_offset() {
        for text in [
            "",
            "plain text longer than eight bytes",
            "a\"b",
            "0123456\\89abcdef\u{1}x",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4) \"quoted\" \t\n ünïcödé ✓",
        ] {
            let mut out = String::new();
            push_json_str(&mut out, text);
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), text, "{out}");
        }
    }

    /// The word test against the byte test, for every pair of neighbouring bytes at either end of
    /// a word of plain text: a borrow from one byte into the next is what could fool it.
    #[test]
    fn a_word_needs_escaping_exactly_when_one_of_its_bytes_does() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let byte_wise = needs_escape(a) || needs_escape(b);
                for word in [
                    [a, b, b'x', b'x', b'x', b'x', b'x', b'x'],
                    [b'x', b'x', b'x', b'x', b'x', b'x', a, b],
                    [b'x', b'x', b'x', a, b, b'x', b'x', b'x'],
                ] {
                    let word = u64::from_le_bytes(word);
                    assert_eq!(any_needs_escape(word), byte_wise, "{a:#04x} {b:#04x}");
                }
            }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn a_clean_run_ends_at_the_first_byte_to_escape(bytes in proptest::collection::vec(
            proptest::prop_oneof![proptest::num::u8::ANY, b'a'..=b'z'], 0..40)) {
            let first = bytes.iter().position(|&b| needs_escape(b)).unwrap_or(bytes.len());
            proptest::prop_assert_eq!(clean_run(&bytes), first);
        }

        #[test]
        fn any_text_round_trips_through_json(text in "\\PC*|[\\x00-\\x7f]{0,40}") {
            let mut out = String::new();
            push_json_str(&mut out, &text);
            proptest::prop_assert_eq!(serde_json::from_str::<String>(&out).unwrap(), text);
        }
    }

    /// The transaction ids of 100,000 clicks, as the isolate seals them.
    fn transaction_ids() -> Vec<String> {
        use crate::click::Id;
        use crate::token::{ClickToken, TokenKey, TokenVerdict};
        let key = TokenKey::new(&[5u8; 32]).unwrap();
        (0..100_000u64)
            .map(|i| {
                ClickToken {
                    issued_ms: 1_780_272_000_000 + i,
                    nonce: i.to_le_bytes(),
                    verdict: TokenVerdict::Redirected,
                    offer_id: Id::parse("1").unwrap(),
                    aff_id: Id::parse("net-7").unwrap(),
                    profile: 0,
                }
                .seal(&key)
            })
            .collect()
    }

    #[test]
    fn a_sample_keeps_its_share_of_clean_clicks_within_a_binomial_bound() {
        let ids = transaction_ids();
        let kept = |log: LogClean| ids.iter().filter(|t| log.keeps(t)).count();
        assert_eq!(kept(LogClean::Sample(0.0)), 0);
        assert_eq!(kept(LogClean::None), 0);
        assert_eq!(kept(LogClean::Sample(1.0)), ids.len());
        assert_eq!(kept(LogClean::All), ids.len());
        // n = 100,000, p = 0.01: mean 1,000, standard deviation 31.5; five of them either side.
        for (rate, low, high) in [(0.01, 843, 1_157), (0.5, 49_209, 50_791)] {
            let n = kept(LogClean::Sample(rate));
            assert!((low..=high).contains(&n), "{n} kept at {rate}");
        }
    }

    #[test]
    fn a_sample_is_the_same_clicks_every_time() {
        let ids = transaction_ids();
        let sample = LogClean::Sample(0.01);
        let first: Vec<&String> = ids.iter().filter(|t| sample.keeps(t)).collect();
        let again: Vec<&String> = ids.iter().filter(|t| sample.keeps(t)).collect();
        assert_eq!(first, again);
        // A larger sample holds the smaller one: raising the rate only adds clicks.
        let larger = LogClean::Sample(0.1);
        assert!(first.iter().all(|t| larger.keeps(t)));
    }

    #[test]
    fn a_line_names_the_setting_unless_it_is_all() {
        assert_eq!(LogClean::All.line_field(), None);
        assert_eq!(LogClean::None.line_field().as_deref(), Some("\"none\""));
        assert_eq!(
            LogClean::Sample(0.01).line_field().as_deref(),
            Some(r#"{"sample":0.01}"#)
        );
    }
}
