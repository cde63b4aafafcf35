//! What the report's tests share: a config, decided clicks, tallies and a network's hours.

use super::hours::HourRows;
use super::tally::Tally;
use crate::click::{route, ClientInfo, Route};
use crate::config::Config;
use crate::decide::{decide, ClickOutcome, Observed};
use crate::token::TokenKey;

/// 2026-11-23T10:00:00Z.
pub(super) const NOW: u64 = 1_795_428_000_000;
pub(super) const CONFIG: &str = r#"{"version": 1, "advertisers": [{"id": "adv"}],
    "offers": [{"id": "1", "advertiser_id": "adv", "landing_url": "https://x.example/?t={transaction_id}"},
               {"id": "2", "landing_url": "https://y.example/?t={transaction_id}"}],
    "lists": {"blocked_ips": ["203.0.113.0/24"]},
    "rules": [{"id": "r", "created_at": "2026-01-01", "scope": {"offers": ["2"]}, "decline": "high",
               "ignore_results": true, "strategy": {"filters": [{"type": "bot"}]}}]}"#;

pub(super) fn key() -> TokenKey {
    TokenKey::new(b"0123456789abcdef0123456789abcdef-test-only").unwrap()
}

pub(super) fn click(query: &str, ip: &str, ua: &str, at_ms: u64) -> ClickOutcome {
    let config = Config::compile(CONFIG).unwrap();
    let Ok(Route::Click(params)) = route("GET", "/c", query) else {
        panic!("{query}")
    };
    let client = ClientInfo {
        ip: ip.parse().ok(),
        ip_unreadable: false,
        user_agent: Some(ua.into()),
        ..ClientInfo::default()
    };
    decide(
        &config,
        &key(),
        params,
        client,
        Observed::default(),
        at_ms,
        [7; 8],
    )
    .unwrap()
}

/// One decided click's tally, as the isolate counts it.
pub(super) fn tally_of(outcome: &ClickOutcome) -> Tally {
    let mut tally = Tally::default();
    tally.count_click(outcome);
    tally
}

pub(super) const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

pub(super) fn tally(clicks: u64, blocked: u64, reason: &str) -> Tally {
    let mut t = Tally {
        clicks,
        allowed: clicks - blocked,
        blocked,
        ..Tally::default()
    };
    if blocked > 0 {
        t.reasons.insert(reason.into(), blocked);
    }
    t
}

/// An hour's rows as (advertiser, offer, tally).
pub(super) type Rows<'a> = &'a [(&'a str, &'a str, Tally)];

pub(super) fn network(hours: &[(u32, Rows)]) -> Vec<(u32, HourRows)> {
    hours
        .iter()
        .map(|(h, rows)| {
            let mut hr = HourRows::default();
            for (a, o, t) in rows.iter() {
                hr.add(a, o, t);
            }
            (*h, hr)
        })
        .collect()
}
