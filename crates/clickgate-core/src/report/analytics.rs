//! Workers Analytics Engine: one decision as one data point.

use crate::decide::ClickOutcome;
use crate::verdict::Verdict;

/// One decision as an Analytics Engine data point, for operators who query at scale. The columns
/// are fixed (the README lists them); never reorder them, only append.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    /// The sampling key: the network, so a busy one is sampled apart from the others.
    pub index: String,
    /// blob1..blob9: verdict, offer, affiliate, advertiser, rule, first reason, probability,
    /// country, transaction id.
    pub blobs: Vec<String>,
    /// double1..double4: clicks (1), blocked (0/1), would-block (0/1), score.
    pub doubles: Vec<f64>,
}

pub fn data_point(outcome: &ClickOutcome) -> DataPoint {
    let blocked = outcome.is_blocked();
    let would_block = outcome.flagged() && !blocked;
    let verdict = match (blocked, would_block) {
        (true, _) => Verdict::Block,
        (_, true) => Verdict::WouldBlock,
        _ => Verdict::Redirect,
    };
    let assessment = outcome.assessment.as_ref();
    let text = |s: Option<&str>| s.unwrap_or("").to_owned();
    DataPoint {
        index: outcome.click.aff_id.to_string(),
        blobs: vec![
            verdict.as_str().to_owned(),
            outcome.click.offer_id.to_string(),
            outcome.click.aff_id.to_string(),
            text(outcome.advertiser_id.as_ref().map(|a| a.as_str())),
            text(outcome.rule_id()),
            text(outcome.reasons().first().map(|r| r.code.as_str())),
            text(assessment.map(|a| a.probability.name())),
            text(outcome.client.country.as_deref()),
            outcome.transaction_id.clone(),
        ],
        doubles: vec![
            1.0,
            f64::from(u8::from(blocked)),
            f64::from(u8::from(would_block)),
            f64::from(assessment.map_or(0, |a| a.score)),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_decision_becomes_one_analytics_point_with_fixed_columns() {
        let blocked = data_point(&click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW));
        assert_eq!(blocked.index, "n1");
        assert_eq!(
            &blocked.blobs[..6],
            [
                "block",
                "1",
                "n1",
                "adv",
                "lists.blocked_ips",
                "ip_blocklist"
            ]
        );
        assert_eq!(blocked.doubles, vec![1.0, 1.0, 0.0, 0.0]);
        let monitored = data_point(&click(
            "offer_id=2&aff_id=n1",
            "192.0.2.1",
            "curl/8.4.0",
            NOW,
        ));
        assert_eq!(
            (monitored.blobs[0].as_str(), monitored.blobs[3].as_str()),
            ("would_block", "")
        );
        assert_eq!(monitored.blobs[5], "bot");
        assert_eq!(&monitored.doubles[..3], [1.0, 0.0, 1.0]);
        assert!(monitored.doubles[3] > 0.0);
        let clean = data_point(&click("offer_id=1&aff_id=n1", "192.0.2.1", BROWSER, NOW));
        assert_eq!(clean.blobs[0], "redirect");
        assert_eq!(clean.blobs.len(), 9);
    }
}
