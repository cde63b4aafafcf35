//! Explaining one click: which decisions are kept, in what form, and what `GET
//! /admin/explain/{id}` answers.

use serde_json::{json, Value};

use super::bounds::{MAX_EXPLAINED_PER_HOUR, MAX_EXPLAINED_PER_MINUTE};
use crate::decide::ClickOutcome;
use crate::stored::{explain_key, EXPLAIN_RETAIN_DAYS};
use crate::time::{rfc3339_ms, HOUR_MS};
use crate::token::{ClickToken, TokenVerdict};

/// Where the decision of the click behind a transaction id is kept.
pub(crate) fn explain_key_of(token: &ClickToken) -> String {
    explain_key((token.issued_ms / HOUR_MS) as u32, &token.nonce)
}

/// Whether a click's decision is kept for `explain`: something fired, or it was not let through.
pub(crate) fn worth_explaining(outcome: &ClickOutcome) -> bool {
    outcome.flagged() || !outcome.reasons().is_empty() || outcome.allowlisted.is_some()
}

/// The decision kept for `explain`: the log line, with the client's IP as the 64-bit hash the
/// duplicate-IP counts key on (`ip_hash`, and `ip_hash:…` as a reason's value), never as text. A
/// record kept before, with `ip`, reads the same way: the answer holds whichever the record has.
pub(crate) fn kept_decision(outcome: &ClickOutcome, log_line: &str) -> String {
    let Some(ip) = outcome.client.ip.map(|ip| ip.to_string()) else {
        return log_line.to_owned();
    };
    let Ok(Value::Object(mut line)) = serde_json::from_str::<Value>(log_line) else {
        return log_line.to_owned();
    };
    // The same hash as `network::keys::ip_hash`, so a kept click can be matched to its counts.
    let hash = format!("{:016x}", crate::hll::hash64(ip.as_bytes()));
    if line.remove("ip").is_some() {
        line.insert("ip_hash".into(), json!(hash));
    }
    if let Some(reasons) = line.get_mut("reasons").and_then(Value::as_array_mut) {
        for value in reasons.iter_mut().filter_map(|r| r.get_mut("value")) {
            if value.as_str() == Some(ip.as_str()) {
                *value = json!(format!("ip_hash:{hash}"));
            }
        }
    }
    Value::Object(line).to_string()
}

/// The answer to `GET /admin/explain/{id}`: the kept decision, or what the id itself says.
pub(crate) fn explain_answer(
    transaction_id: &str,
    token: &ClickToken,
    kept: Option<&str>,
) -> String {
    let verdict = token.verdict.verdict();
    let mut answer = json!({
        "transaction_id": transaction_id,
        "at": rfc3339_ms(token.issued_ms),
        "verdict": verdict.as_str(),
        "offer_id": token.offer_id.as_str(),
        "aff_id": token.aff_id.as_str(),
        "kept": kept.is_some(),
    });
    match kept.and_then(|k| serde_json::from_str::<Value>(k).ok()) {
        Some(decision) => answer["decision"] = decision,
        None => {
            let why = if matches!(
                token.verdict,
                TokenVerdict::Redirected | TokenVerdict::Preview
            ) {
                format!("no filter fired on this click, or its record is gone: decisions are kept only when a filter fired, for {EXPLAIN_RETAIN_DAYS} days, up to {MAX_EXPLAINED_PER_HOUR} per network and hour and, from each isolate, {MAX_EXPLAINED_PER_MINUTE} per network and minute")
            } else {
                format!("the decision's record is gone: records are kept {EXPLAIN_RETAIN_DAYS} days, up to {MAX_EXPLAINED_PER_HOUR} per network and hour and, from each isolate, {MAX_EXPLAINED_PER_MINUTE} per network and minute")
            };
            answer["note"] = json!(why);
        }
    }
    answer.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::bounds::*;
    use crate::report::fixtures::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn explain_answers_with_the_kept_decision_or_what_the_id_says() {
        let out = click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW);
        assert!(worth_explaining(&out));
        assert!(!worth_explaining(&click(
            "offer_id=1&aff_id=n1",
            "192.0.2.1",
            BROWSER,
            NOW
        )));
        let token = ClickToken::open(&out.transaction_id, &key()).unwrap();
        assert_eq!(
            explain_key_of(&token),
            explain_key((NOW / HOUR_MS) as u32, &[7; 8])
        );

        let kept: Value = serde_json::from_str(&explain_answer(
            &out.transaction_id,
            &token,
            Some(&out.log_line()),
        ))
        .unwrap();
        assert_eq!(kept["kept"], true);
        assert_eq!(kept["verdict"], "block");
        assert_eq!(kept["decision"]["reasons"][0]["code"], "ip_blocklist");
        assert_eq!(kept["decision"]["ip"], "203.0.113.9");

        let gone: Value =
            serde_json::from_str(&explain_answer(&out.transaction_id, &token, None)).unwrap();
        assert_eq!(gone["kept"], false);
        assert_eq!(gone["aff_id"], "n1");
        assert!(gone["note"].as_str().unwrap().contains("record is gone"));
    }

    #[test]
    fn a_kept_decision_holds_the_client_ip_as_its_hash_never_as_text() {
        // The decision kept for explain was the log line as logged, the client's IP in it as text
        // for seven days, where the duplicate-IP counts keep only its 64-bit hash.
        use crate::flood::Thresholds;
        use crate::network::keys::ip_hash;
        use crate::network::local::{Flush, FlushPolicy, LocalCounts};
        let mut isolate = LocalCounts::new(1, FlushPolicy::default());
        let out = click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW);
        isolate.record_outcome(&out, &out.log_line(), Thresholds::default(), &[7; 8]);
        let Flush::Send(batch) = isolate.flush(&out.click.aff_id, NOW + 60_000) else {
            panic!("a batch is due")
        };
        let kept = &batch.explain[0].1;
        assert!(!kept.contains("203.0.113.9"), "{kept}");
        let token = ClickToken::open(&out.transaction_id, &key()).unwrap();
        let answer: Value =
            serde_json::from_str(&explain_answer(&out.transaction_id, &token, Some(kept))).unwrap();
        let hash = format!("{:016x}", ip_hash("203.0.113.9"));
        let decision = &answer["decision"];
        assert_eq!(
            (&decision["ip"], &decision["ip_hash"]),
            (&Value::Null, &json!(hash))
        );
        assert_eq!(decision["reasons"][0]["code"], "ip_blocklist");
        assert_eq!(decision["reasons"][0]["value"], format!("ip_hash:{hash}"));
        assert_eq!(decision["offer_id"], "1");
        // A record kept before, with the IP as text, still reads.
        let old: Value = serde_json::from_str(&explain_answer(
            &out.transaction_id,
            &token,
            Some(&out.log_line()),
        ))
        .unwrap();
        assert_eq!(old["decision"]["ip"], "203.0.113.9");
    }

    #[test]
    fn a_flood_of_flagged_clicks_is_counted_in_full_and_sampled_for_explain() {
        use crate::flood::Thresholds;
        use crate::network::local::{Flush, FlushPolicy, LocalCounts};
        let policy = FlushPolicy {
            max_keys: usize::MAX,
            max_clicks: u32::MAX,
            ..FlushPolicy::default()
        };
        let mut isolate = LocalCounts::new(1, policy);
        let blocked = click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW);
        let line = blocked.log_line();
        let n = MAX_EXPLAINED_PER_MINUTE + 50;
        for i in 0..n {
            isolate.record_outcome(
                &blocked,
                &line,
                Thresholds::default(),
                &i.to_be_bytes().repeat(2).try_into().unwrap(),
            );
        }
        // The next minute has a budget of its own.
        let later = click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW + 60_000);
        isolate.record_outcome(&later, &line, Thresholds::default(), &[9; 8]);
        let Flush::Send(batch) = isolate.flush(&blocked.click.aff_id, NOW + 61_000) else {
            panic!("a batch is due")
        };
        assert_eq!(batch.explain.len() as u32, MAX_EXPLAINED_PER_MINUTE + 1);
        for tag in ["adv", SUB_ID, COUNTRY] {
            let clicks: u64 = batch
                .report
                .iter()
                .filter(|(k, _)| k.advertiser == tag)
                .map(|(_, t)| t.clicks)
                .sum();
            assert_eq!(clicks, u64::from(n) + 1, "every click is counted: {tag}");
        }
    }
}
