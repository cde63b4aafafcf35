//! Log lines: one JSON object per line, for decisions, config events and faults alike, so one log
//! query finds all of them.
//!
//! Lines are written straight into a string rather than through `serde_json::Value`: a decision
//! line is written for every click, and building a map per click showed up in the Worker's profile.

/// Builds one JSON object. Absent optional fields are left out rather than written as `null`,
/// which keeps the per-click line short.
pub struct JsonLine {
    out: String,
    first: bool,
}

impl JsonLine {
    pub fn new() -> JsonLine {
        let mut out = String::with_capacity(512);
        out.push('{');
        JsonLine { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        push_json_str(&mut self.out, key);
        self.out.push(':');
    }

    pub fn str(mut self, key: &str, value: &str) -> JsonLine {
        self.key(key);
        push_json_str(&mut self.out, value);
        self
    }

    pub fn opt(self, key: &str, value: Option<&str>) -> JsonLine {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    pub fn bool(mut self, key: &str, value: bool) -> JsonLine {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    pub fn num(mut self, key: &str, value: u64) -> JsonLine {
        use std::fmt::Write;
        self.key(key);
        // Writing into a String cannot fail.
        let _ = write!(self.out, "{value}");
        self
    }

    /// A value that is already JSON (an array or object written by another `JsonLine`).
    pub fn raw(mut self, key: &str, json: &str) -> JsonLine {
        self.key(key);
        self.out.push_str(json);
        self
    }

    /// A field holding JSON already written, when there is one.
    pub fn opt_raw(self, key: &str, json: Option<&str>) -> JsonLine {
        match json {
            Some(j) => self.raw(key, j),
            None => self,
        }
    }

    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

impl Default for JsonLine {
    fn default() -> Self {
        JsonLine::new()
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Eight bytes at a time while none needs escaping: a decision line is mostly plain text,
        // and it is written for every click.
        if let Some(word) = bytes.get(i..i + 8) {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(word);
            if !any_needs_escape(u64::from_le_bytes(eight)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => {
                i += 1;
                continue;
            }
        };
        // Escaped bytes are ASCII, so `start` and `i` are always on character boundaries.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escape);
        }
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Whether any of eight bytes is a control character, `"` or `\\` (the classic bit tricks for
/// "some byte is zero" and "some byte is below n"; exact about whether, not about which).
const fn any_needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    let x = word ^ (ONES * b'"' as u64);
    let quote = x.wrapping_sub(ONES) & !x & HIGHS;
    let y = word ^ (ONES * b'\\' as u64);
    let backslash = y.wrapping_sub(ONES) & !y & HIGHS;
    below_space | quote | backslash != 0
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

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn any_text_round_trips_through_json(text in "\\PC*|[\\x00-\\x7f]{0,40}") {
            let mut out = String::new();
            push_json_str(&mut out, &text);
            proptest::prop_assert_eq!(serde_json::from_str::<String>(&out).unwrap(), text);
        }
    }
}
