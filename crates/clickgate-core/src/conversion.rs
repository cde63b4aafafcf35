//! Conversion postbacks: an advertiser reports a conversion for a transaction id, and the edge
//! judges it against its click.
//!
//! The transaction id is the click's authenticated token ([`crate::token`]), so the click's time,
//! offer, affiliate and verdict come back without a lookup; a forged id is refused. Checks:
//!
//! - `flagged_click`: the click was blocked, or declined by a rule in monitor mode;
//! - `min_click_to_conversion` / `max_click_to_conversion`: the time from click to conversion is
//!   outside the window of the rule that judges the offer's conversions (level `conversion` or
//!   `both`);
//! - `duplicate_conversion`: a conversion for the same click and event was already reported (the
//!   network's Durable Object remembers it; see [`Judging::duplicate_key`]).
//!
//! Only conversions in status `approved` (the default), `hold` or `pending` are judged.

use serde_json::json;

use crate::click::Id;
use crate::config::Config;
use crate::hll::hash64;
use crate::log::JsonLine;
use crate::rules::FilterKind;
use crate::token::{ClickToken, TokenKey, TokenVerdict};

pub const INVALID_MESSAGE: &str = "clickgate flagged the conversion as fraudulent";
/// How long the duplicate record of a conversion is kept: a click's conversions come within this.
pub const DUPLICATE_WINDOW_MS: u64 = 90 * 86_400_000;
const MAX_FIELD_LEN: usize = 128;
/// The largest `POST /postback` form body: its few fields at their limits fit many times over.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// A postback as the advertiser sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postback {
    pub transaction_id: String,
    pub event: String,
    pub amount: Option<String>,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostbackError {
    Missing(&'static str),
    Invalid {
        name: &'static str,
        problem: String,
    },
    /// The transaction id is not one of ours (forged, damaged, or under another secret).
    UnknownTransaction(String),
}

impl std::fmt::Display for PostbackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostbackError::Missing(name) => write!(f, "`{name}` is required"),
            PostbackError::Invalid { name, problem } => write!(f, "`{name}` {problem}"),
            PostbackError::UnknownTransaction(why) => {
                write!(
                    f,
                    "the transaction id is not one this click filter issued ({why})"
                )
            }
        }
    }
}

/// Reads a postback's parameters (from the query and, for POST, a form body).
pub fn parse(params: &str) -> Result<Postback, PostbackError> {
    let mut tid = None;
    let mut event = None;
    let mut amount = None;
    let mut status = None;
    for (name, value) in form_urlencoded::parse(params.as_bytes()) {
        let slot = match name.as_ref() {
            "transaction_id" => &mut tid,
            "event" => &mut event,
            "amount" => &mut amount,
            "status" => &mut status,
            _ => continue,
        };
        if value.len() > MAX_FIELD_LEN * 2 {
            return Err(PostbackError::Invalid {
                name: static_name(&name),
                problem: "is too long".into(),
            });
        }
        if slot.replace(value.into_owned()).is_some() {
            return Err(PostbackError::Invalid {
                name: static_name(&name),
                problem: "is given more than once".into(),
            });
        }
    }
    let transaction_id = tid
        .filter(|t| !t.is_empty())
        .ok_or(PostbackError::Missing("transaction_id"))?;
    let event = event.unwrap_or_else(|| "conversion".into());
    if event.is_empty() || event.len() > MAX_FIELD_LEN {
        return Err(PostbackError::Invalid {
            name: "event",
            problem: format!("must be 1 to {MAX_FIELD_LEN} characters"),
        });
    }
    if let Some(a) = &amount {
        if a.parse::<f64>().map_or(true, |x| !x.is_finite()) {
            return Err(PostbackError::Invalid {
                name: "amount",
                problem: format!("`{a}` is not a number"),
            });
        }
    }
    Ok(Postback {
        transaction_id,
        event,
        amount,
        status: status
            .unwrap_or_else(|| "approved".into())
            .to_ascii_lowercase(),
    })
}

fn static_name(name: &str) -> &'static str {
    match name {
        "transaction_id" => "transaction_id",
        "event" => "event",
        "amount" => "amount",
        _ => "status",
    }
}

/// A postback whose click is known, before the duplicate check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judging {
    pub postback: Postback,
    pub click: ClickToken,
    pub click_to_conversion_ms: u64,
    pub rule_id: Option<String>,
    /// Reasons found without asking anyone (flagged click, CTIT).
    pub reasons: Vec<(&'static str, String)>,
    /// False for statuses that are not judged (`declined`, `rejected`, …).
    pub judged: bool,
}

impl Judging {
    /// Opens the transaction id and runs the checks that need no state.
    pub fn new(
        config: &Config,
        key: &TokenKey,
        postback: Postback,
        now_ms: u64,
    ) -> Result<Judging, PostbackError> {
        let click = ClickToken::open(&postback.transaction_id, key)
            .map_err(|e| PostbackError::UnknownTransaction(e.to_string()))?;
        let ctit = now_ms.saturating_sub(click.issued_ms);
        let judged = matches!(postback.status.as_str(), "approved" | "hold" | "pending");
        let rule = config.conversion_rule(&click.offer_id, &click.aff_id);
        let mut reasons = Vec::new();
        if judged {
            if click.verdict != TokenVerdict::Redirected {
                let what = if click.verdict == TokenVerdict::Blocked {
                    "blocked"
                } else {
                    "declined in monitor mode"
                };
                reasons.push(("flagged_click", format!("the click was {what}")));
            }
            for f in rule.iter().flat_map(|r| r.filters.iter()) {
                match f.kind {
                    FilterKind::MinClickToConversion { seconds } if ctit < seconds * 1000 => {
                        reasons.push((
                            "min_click_to_conversion",
                            format!("{} s after the click, minimum {seconds} s", ctit / 1000),
                        ));
                    }
                    FilterKind::MaxClickToConversion { seconds } if ctit > seconds * 1000 => {
                        reasons.push((
                            "max_click_to_conversion",
                            format!("{} s after the click, maximum {seconds} s", ctit / 1000),
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(Judging {
            postback,
            click_to_conversion_ms: ctit,
            rule_id: rule.map(|r| r.id.to_string()),
            click,
            reasons,
            judged,
        })
    }

    /// The network object to ask whether this click's event was reported before, the key it keeps
    /// the answer under, and until when; `None` when the status is not judged.
    pub fn duplicate_key(&self) -> Option<(Id, String, u64)> {
        self.judged.then(|| {
            let key = format!(
                "cv/{:016x}",
                hash64(
                    format!("{}\n{}", self.postback.transaction_id, self.postback.event).as_bytes()
                )
            );
            (
                self.click.aff_id.clone(),
                key,
                self.click.issued_ms + DUPLICATE_WINDOW_MS,
            )
        })
    }

    /// Whether the conversion counts toward the network's conversion rate if it is not a duplicate.
    pub fn approvable(&self) -> bool {
        self.judged && self.reasons.is_empty()
    }

    /// The verdict, given whether the object had seen this click's event before.
    pub fn finish(mut self, duplicate: bool) -> ConversionOutcome {
        if duplicate && self.judged {
            self.reasons.push((
                "duplicate_conversion",
                format!(
                    "event `{}` was already reported for this click",
                    self.postback.event
                ),
            ));
        }
        let status = match (self.judged, self.reasons.is_empty()) {
            (false, _) => "not_judged",
            (true, true) => "approved",
            (true, false) => "invalid",
        };
        ConversionOutcome {
            status,
            judging: self,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionOutcome {
    /// `approved`, `invalid` or `not_judged`.
    pub status: &'static str,
    pub judging: Judging,
}

impl ConversionOutcome {
    /// The JSON answer to the advertiser.
    pub fn answer(&self) -> String {
        let j = &self.judging;
        let mut body = json!({
            "status": self.status,
            "transaction_id": j.postback.transaction_id,
            "event": j.postback.event,
            "reasons": j.reasons.iter().map(|(code, _)| *code).collect::<Vec<_>>(),
        });
        if self.status == "invalid" {
            body["message"] = json!(INVALID_MESSAGE);
        }
        body.to_string()
    }

    /// The conversion's line in the decision log.
    pub fn log_line(&self, now_ms: u64) -> String {
        let j = &self.judging;
        let mut reasons = String::from("[");
        for (i, (code, detail)) in j.reasons.iter().enumerate() {
            if i > 0 {
                reasons.push(',');
            }
            reasons.push_str(
                &JsonLine::new()
                    .str("code", code)
                    .str("detail", detail)
                    .finish(),
            );
        }
        reasons.push(']');
        JsonLine::new()
            .str("event", "conversion")
            .str("ts", &crate::decide::rfc3339_ms(now_ms))
            .str("status", self.status)
            .str("transaction_id", &j.postback.transaction_id)
            .str("conversion_event", &j.postback.event)
            .str("postback_status", &j.postback.status)
            .opt("amount", j.postback.amount.as_deref())
            .str("offer_id", j.click.offer_id.as_str())
            .str("aff_id", j.click.aff_id.as_str())
            .str("click_ts", &crate::decide::rfc3339_ms(j.click.issued_ms))
            .num(
                "click_to_conversion_seconds",
                j.click_to_conversion_ms / 1000,
            )
            .opt("rule_id", j.rule_id.as_deref())
            .raw("reasons", &reasons)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const NOW: u64 = 1_795_435_445_123;

    fn key() -> TokenKey {
        TokenKey::new(b"0123456789abcdef0123456789abcdef-test-only").unwrap()
    }

    fn config() -> Config {
        Config::compile(
            r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"},
                                         {"id": "2", "landing_url": "https://x.example/"}],
                "rules": [{"id": "ctit", "created_at": "2026-11-01", "scope": {"offers": ["1"]}, "level": "conversion",
                           "strategy": {"filters": [{"type": "min_click_to_conversion", "seconds": 20},
                                                    {"type": "max_click_to_conversion", "seconds": 3600}]}}]}"#,
        )
        .unwrap()
    }

    fn tid(offer: &str, verdict: TokenVerdict, clicked_ms: u64) -> String {
        ClickToken {
            issued_ms: clicked_ms,
            nonce: [1; 8],
            verdict,
            offer_id: Id::parse(offer).unwrap(),
            aff_id: Id::parse("net-7").unwrap(),
        }
        .seal(&key())
    }

    fn judge(query: &str, duplicate: bool) -> Result<ConversionOutcome, PostbackError> {
        let postback = parse(query)?;
        Ok(Judging::new(&config(), &key(), postback, NOW)?.finish(duplicate))
    }

    fn codes(o: &ConversionOutcome) -> Vec<&'static str> {
        o.judging.reasons.iter().map(|(c, _)| *c).collect()
    }

    #[test]
    fn a_conversion_in_the_window_is_approved() {
        let t = tid("1", TokenVerdict::Redirected, NOW - 600_000);
        let o = judge(&format!("transaction_id={t}&amount=12.50"), false).unwrap();
        assert_eq!(
            (o.status, o.judging.click_to_conversion_ms),
            ("approved", 600_000)
        );
        assert_eq!(o.judging.rule_id.as_deref(), Some("ctit"));
        let answer: serde_json::Value = serde_json::from_str(&o.answer()).unwrap();
        assert_eq!(answer["status"], "approved");
        assert!(answer.get("message").is_none());
    }

    #[test]
    fn each_check_has_its_reason() {
        let too_soon = tid("1", TokenVerdict::Redirected, NOW - 5_000);
        assert_eq!(
            codes(&judge(&format!("transaction_id={too_soon}"), false).unwrap()),
            ["min_click_to_conversion"]
        );
        let too_late = tid("1", TokenVerdict::Redirected, NOW - 7_200_000);
        assert_eq!(
            codes(&judge(&format!("transaction_id={too_late}"), false).unwrap()),
            ["max_click_to_conversion"]
        );
        let flagged = tid("1", TokenVerdict::Flagged, NOW - 600_000);
        let o = judge(&format!("transaction_id={flagged}"), false).unwrap();
        assert_eq!((o.status, codes(&o)), ("invalid", vec!["flagged_click"]));
        let answer: serde_json::Value = serde_json::from_str(&o.answer()).unwrap();
        assert_eq!(answer["message"], INVALID_MESSAGE);
        let fine = tid("1", TokenVerdict::Redirected, NOW - 600_000);
        assert_eq!(
            codes(&judge(&format!("transaction_id={fine}"), true).unwrap()),
            ["duplicate_conversion"]
        );
        // Offer 2 has no conversion rule: no CTIT window, the other checks still hold.
        let other = tid("2", TokenVerdict::Redirected, NOW - 1_000);
        assert_eq!(
            judge(&format!("transaction_id={other}"), false)
                .unwrap()
                .status,
            "approved"
        );
    }

    #[test]
    fn only_approved_hold_and_pending_are_judged() {
        let flagged = tid("1", TokenVerdict::Blocked, NOW - 1_000);
        for status in ["hold", "Pending"] {
            assert_eq!(
                judge(&format!("transaction_id={flagged}&status={status}"), false)
                    .unwrap()
                    .status,
                "invalid"
            );
        }
        let o = judge(&format!("transaction_id={flagged}&status=declined"), true).unwrap();
        assert_eq!((o.status, codes(&o).len()), ("not_judged", 0));
        assert_eq!(
            Judging::new(
                &config(),
                &key(),
                parse(&format!("transaction_id={flagged}&status=declined")).unwrap(),
                NOW
            )
            .unwrap()
            .duplicate_key(),
            None
        );
    }

    #[test]
    fn forged_and_malformed_postbacks_are_refused() {
        let t = tid("1", TokenVerdict::Redirected, NOW - 600_000);
        let mut forged = t.clone().into_bytes();
        forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(matches!(
            judge(&format!("transaction_id={forged}"), false),
            Err(PostbackError::UnknownTransaction(_))
        ));
        assert_eq!(
            judge("event=sale", false),
            Err(PostbackError::Missing("transaction_id"))
        );
        assert!(matches!(
            judge(&format!("transaction_id={t}&amount=lots"), false),
            Err(PostbackError::Invalid { name: "amount", .. })
        ));
        assert!(matches!(
            judge(&format!("transaction_id={t}&transaction_id={t}"), false),
            Err(PostbackError::Invalid { .. })
        ));
    }

    #[test]
    fn the_duplicate_key_is_per_click_and_event() {
        let t = tid("1", TokenVerdict::Redirected, NOW - 600_000);
        let key_of = |q: &str| {
            Judging::new(&config(), &key(), parse(q).unwrap(), NOW)
                .unwrap()
                .duplicate_key()
                .unwrap()
        };
        let sale = key_of(&format!("transaction_id={t}&event=sale"));
        assert_eq!(sale.0.as_str(), "net-7");
        assert_eq!(
            sale,
            key_of(&format!("transaction_id={t}&event=sale&amount=3"))
        );
        assert_ne!(
            sale.1,
            key_of(&format!("transaction_id={t}&event=install")).1
        );
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parsing_never_panics(q in "\\PC{0,200}") {
                let _ = parse(&q);
            }
        }
    }
}
