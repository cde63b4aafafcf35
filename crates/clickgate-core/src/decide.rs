//! The click decision: a parsed click and a compiled config in, a verdict out.
//!
//! Pure: the time and the random nonce are passed in by the edge, so the same inputs always give the
//! same decision, and the replay tool and the tests run exactly what the Worker runs.
//!
//! A block is a value ([`Decision::Block`]) carrying its reasons; an `Err` here means the request was
//! not a servable click at all (unknown offer), which is the client's problem, not a verdict.

use crate::click::{is_link_preview, ClickParams, ClientInfo, Id, RequestError};
use crate::config::{Config, OfferStatus};
use crate::log::JsonLine;
use crate::template::MacroValues;
use crate::token::{ClickToken, TokenKey, TokenVerdict, NONCE_LEN};

/// Why a filter fired: a stable code for machines, the rule that decided, and what matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// Stable reason code, e.g. `ip_blocklist`. Reports and alerts key on it; never rename one.
    pub code: &'static str,
    /// The rule or list that fired, e.g. `lists.blocked_ips`.
    pub rule_id: String,
    /// The list entry or pattern that matched.
    pub matched: String,
    /// The click's value that matched it.
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Redirect { location: String },
    Block { reasons: Vec<Reason> },
}

/// Everything about one decided click: what the HTTP layer answers and what the log records.
#[derive(Debug, Clone)]
pub struct ClickOutcome {
    pub transaction_id: String,
    pub decision: Decision,
    pub at_ms: u64,
    pub click: ClickParams,
    pub advertiser_id: Option<Id>,
    pub client: ClientInfo,
    /// A chat app or social site unfurling the link: redirected, but not a person's click.
    pub preview: bool,
    pub config_digest: String,
}

pub fn decide(
    config: &Config,
    key: &TokenKey,
    click: ClickParams,
    client: ClientInfo,
    now_ms: u64,
    nonce: [u8; NONCE_LEN],
) -> Result<ClickOutcome, RequestError> {
    let offer = config
        .offers
        .get(&click.offer_id)
        .ok_or_else(|| RequestError::UnknownOffer {
            offer_id: click.offer_id.clone(),
        })?;
    if offer.status == OfferStatus::Paused {
        return Err(RequestError::OfferPaused {
            offer_id: click.offer_id.clone(),
        });
    }

    let mut reasons = Vec::new();
    if let Some(ip) = client.ip {
        if let Some(entry) = config.blocked_ips.lookup(ip) {
            reasons.push(Reason {
                code: "ip_blocklist",
                rule_id: "lists.blocked_ips".into(),
                matched: entry.to_string(),
                value: ip.to_string(),
            });
        }
    }

    let verdict = if reasons.is_empty() {
        TokenVerdict::Redirected
    } else {
        TokenVerdict::Blocked
    };
    let token = ClickToken {
        issued_ms: now_ms,
        nonce,
        verdict,
        offer_id: click.offer_id.clone(),
        aff_id: click.aff_id.clone(),
    };
    let transaction_id = token.seal(key);

    let decision = if reasons.is_empty() {
        let subs = [0, 1, 2, 3, 4].map(|i| click.subs[i].as_deref());
        let location = offer.landing.render(&MacroValues {
            transaction_id: &transaction_id,
            offer_id: click.offer_id.as_str(),
            aff_id: click.aff_id.as_str(),
            advertiser_id: offer.advertiser_id.as_ref().map(Id::as_str),
            source_id: click.source_id.as_deref(),
            subs,
        });
        Decision::Redirect { location }
    } else {
        Decision::Block { reasons }
    };

    Ok(ClickOutcome {
        transaction_id,
        decision,
        at_ms: now_ms,
        advertiser_id: offer.advertiser_id.clone(),
        preview: is_link_preview(client.user_agent.as_deref()),
        click,
        client,
        config_digest: config.digest.clone(),
    })
}

impl ClickOutcome {
    pub fn is_blocked(&self) -> bool {
        matches!(self.decision, Decision::Block { .. })
    }

    /// The decision as one JSON log line. It carries every input of the decision (ip, user agent,
    /// referrer, ids, time), so a day of these lines can be replayed through another config.
    /// Absent values are left out.
    pub fn log_line(&self) -> String {
        let (verdict, reasons): (&str, &[Reason]) = match &self.decision {
            Decision::Redirect { .. } => ("redirect", &[]),
            Decision::Block { reasons } => ("block", reasons),
        };
        let mut reasons_json = String::from("[");
        for (i, r) in reasons.iter().enumerate() {
            if i > 0 {
                reasons_json.push(',');
            }
            let one = JsonLine::new()
                .str("code", r.code)
                .str("rule_id", &r.rule_id)
                .str("matched", &r.matched)
                .str("value", &r.value)
                .finish();
            reasons_json.push_str(&one);
        }
        reasons_json.push(']');
        let c = &self.click;
        let ip = self.client.ip.map(|ip| ip.to_string());
        JsonLine::new()
            .str("event", "click")
            .str("ts", &rfc3339_ms(self.at_ms))
            .str("transaction_id", &self.transaction_id)
            .str("verdict", verdict)
            .raw("reasons", &reasons_json)
            .opt("rule_id", reasons.first().map(|r| r.rule_id.as_str()))
            .str("offer_id", c.offer_id.as_str())
            .str("aff_id", c.aff_id.as_str())
            .opt("advertiser_id", self.advertiser_id.as_ref().map(Id::as_str))
            .opt("source_id", c.source_id.as_deref())
            .opt("sub1", c.subs[0].as_deref())
            .opt("sub2", c.subs[1].as_deref())
            .opt("sub3", c.subs[2].as_deref())
            .opt("sub4", c.subs[3].as_deref())
            .opt("sub5", c.subs[4].as_deref())
            .opt("ip", ip.as_deref())
            .opt("user_agent", self.client.user_agent.as_deref())
            .opt("referer", self.client.referer.as_deref())
            .bool("preview", self.preview)
            .str("config", &self.config_digest)
            .finish()
    }
}

/// `2026-11-23T10:04:05.123Z` from Unix milliseconds (proleptic Gregorian, UTC).
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::click::{route, Route};
    use crate::config::tests::DEMO;
    use serde_json::Value;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const NOW: u64 = 1_795_435_445_123; // 2026-11-23T12:04:05.123Z

    fn key() -> TokenKey {
        TokenKey::new(b"0123456789abcdef0123456789abcdef-test-only").unwrap()
    }

    fn params(query: &str) -> ClickParams {
        match route("GET", "/c", query).unwrap() {
            Route::Click(c) => c,
            other => panic!("{other:?}"),
        }
    }

    fn from(ip: &str) -> ClientInfo {
        ClientInfo {
            ip: ip.parse().ok(),
            user_agent: Some("Mozilla/5.0".into()),
            referer: None,
        }
    }

    fn run(query: &str, ip: &str) -> Result<ClickOutcome, RequestError> {
        let config = Config::compile(DEMO).unwrap();
        decide(&config, &key(), params(query), from(ip), NOW, [7; 8])
    }

    #[test]
    fn clean_click_redirects_with_its_transaction_id() {
        let out = run("offer_id=1001&aff_id=net-7&sub1=a b", "192.0.2.1").unwrap();
        let Decision::Redirect { location } = &out.decision else {
            panic!("{out:?}")
        };
        assert_eq!(
            location,
            &format!(
                "https://shop.example/land?tid={}&o=1001&a=net-7&s1=a%20b",
                out.transaction_id
            )
        );
        let token = ClickToken::open(&out.transaction_id, &key()).unwrap();
        assert_eq!(token.issued_ms, NOW);
        assert_eq!(token.verdict, TokenVerdict::Redirected);
        assert_eq!(
            (token.offer_id.as_str(), token.aff_id.as_str()),
            ("1001", "net-7")
        );
    }

    #[test]
    fn blocklisted_address_and_block_are_blocked_with_reasons() {
        for (ip, entry) in [
            ("203.0.113.7", "203.0.113.7"),
            ("198.51.100.77", "198.51.100.0/24"),
            ("2001:db8:bad::9", "2001:db8:bad::/48"),
        ] {
            let out = run("offer_id=1001&aff_id=net-7", ip).unwrap();
            let Decision::Block { reasons } = &out.decision else {
                panic!("{ip} not blocked")
            };
            assert_eq!(
                reasons,
                &[Reason {
                    code: "ip_blocklist",
                    rule_id: "lists.blocked_ips".into(),
                    matched: entry.into(),
                    value: ip.into()
                }]
            );
            let token = ClickToken::open(&out.transaction_id, &key()).unwrap();
            assert_eq!(token.verdict, TokenVerdict::Blocked);
        }
    }

    #[test]
    fn unknown_and_paused_offers_are_request_errors() {
        assert!(matches!(
            run("offer_id=9&aff_id=1", "192.0.2.1"),
            Err(RequestError::UnknownOffer { .. })
        ));
        assert!(matches!(
            run("offer_id=1002&aff_id=1", "192.0.2.1"),
            Err(RequestError::OfferPaused { .. })
        ));
    }

    #[test]
    fn click_without_a_client_address_is_not_blocked_by_ip_lists() {
        assert!(!run("offer_id=1001&aff_id=1", "").unwrap().is_blocked());
    }

    #[test]
    fn log_line_carries_every_input_and_the_reasons() {
        let out = run(
            "offer_id=1001&aff_id=net-7&sub2=x&source_id=s",
            "198.51.100.77",
        )
        .unwrap();
        let line: Value = serde_json::from_str(&out.log_line()).unwrap();
        assert_eq!(line["event"], "click");
        assert_eq!(line["ts"], "2026-11-23T12:04:05.123Z");
        assert_eq!(line["verdict"], "block");
        assert_eq!(line["rule_id"], "lists.blocked_ips");
        assert_eq!(line["reasons"][0]["code"], "ip_blocklist");
        assert_eq!(line["reasons"][0]["matched"], "198.51.100.0/24");
        assert_eq!(line["ip"], "198.51.100.77");
        assert_eq!(line["sub2"], "x");
        assert_eq!(line["source_id"], "s");
        assert_eq!(line["advertiser_id"], "acme");
        assert_eq!(line["transaction_id"], out.transaction_id.as_str());
        assert!(
            line.get("sub1").is_none(),
            "absent values are left out: {line}"
        );
        assert_eq!(line["user_agent"], "Mozilla/5.0");
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_798_761_599_999), "2026-12-31T23:59:59.999Z");
    }

    #[test]
    fn same_inputs_same_decision() {
        let a = run("offer_id=1001&aff_id=1", "192.0.2.1").unwrap();
        let b = run("offer_id=1001&aff_id=1", "192.0.2.1").unwrap();
        assert_eq!(a.transaction_id, b.transaction_id);
        assert_eq!(a.decision, b.decision);
    }
}
