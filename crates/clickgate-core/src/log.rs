//! Log lines the edge writes about itself (faults), in the same JSON shape as decision lines, so
//! one log query finds both.

use serde_json::json;

/// A fault that no client caused: a missing secret, a broken random source.
pub fn fault_line(what: &str, problem: &str) -> String {
    json!({"event": "fault", "level": "error", "what": what, "problem": problem}).to_string()
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
}
