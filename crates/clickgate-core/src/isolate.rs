//! The isolate: what runs once per Worker isolate around the click path, on the top floor, where
//! every other module may be used.

use crate::click::{route, ClientInfo, Id, Route};
use crate::config::Config;
use crate::decide::{decide, Observed};
use crate::flood::Thresholds;
use crate::http::click_response;
use crate::network::local::{Flush, FlushPolicy, LocalCounts};
use crate::network::store::NetworkCounts;
use crate::network::wire::Reply;
use crate::token::{TokenKey, NONCE_LEN};
use crate::verdict::Decision;

/// Runs the whole click path once on a built-in config: a browser click and a bot click, their
/// responses and log lines. The Worker calls it when its module starts, so that the engine compiles
/// the code of the click path (wasm is compiled function by function on first use) and builds the
/// bot patterns then, and not inside the first real click's CPU budget. Returns what it ran, with a
/// byte count so the work cannot be optimised away.
pub fn warm_up() -> WarmedUp {
    let mut done = WarmedUp::default();
    const CONFIG: &str = r#"{"version": 1, "advertisers": [{"id": "a"}],
        "offers": [{"id": "1", "advertiser_id": "a", "landing_url": "https://x.example/?t={transaction_id}&s={sub1}", "geo": {"deny": ["KP"]}}],
        "lists": {"blocked_ips": ["203.0.113.0/24"], "datacenter_asns": [64496], "datacenter_ips": ["100.64.0.0/10"],
                  "fraud_ips": ["198.51.100.1"], "blocked_referrers": ["*.spam.example"], "allowed_affiliates": ["t"]},
        "rules": [{"id": "w", "created_at": "2026-01-01", "scope": {"offers": ["1"]}, "decline": "high",
                   "strategy": {"filters": [{"type": "bot"}, {"type": "fraud_database"}, {"type": "datacenter_vpn"},
                                            {"type": "geo"}, {"type": "referrer"}, {"type": "old_os_browser"}]}},
                  {"id": "p", "created_at": "2026-02-01", "priority": 1, "decline": "medium_and_higher", "strategy": "lead",
                   "scope": {"advertisers": ["a"], "affiliates": {"include": "all", "exclude": ["x"]}}},
                  {"id": "q", "created_at": "2026-03-01", "strategy": "mobile_cpi", "scope": {"affiliates": ["n", "m"]}}]}"#;
    let Ok(config) = Config::compile(CONFIG) else {
        return done;
    };
    let Ok(key) = TokenKey::new(&[1u8; 32]) else {
        return done;
    };
    for ua in [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Version/17.4 Mobile/15E148 Safari/604.1",
        "curl/8.4.0",
    ] {
        let Ok(Route::Click(params)) = route("GET", "/c", "offer_id=1&aff_id=n&sub1=a%20b") else {
            return done;
        };
        let client = ClientInfo {
            ip: "192.0.2.1".parse().ok(),
            ip_unreadable: false,
            user_agent: Some(ua.into()),
            referer: Some("https://news.example/a".to_owned()),
            country: Some("DE".to_owned()),
            asn: Some(3320),
        };
        if let Ok(out) = decide(&config, &key, params, client, Observed::default(), 0, [0; NONCE_LEN]) {
            let response = click_response(&out, Some("text/html"), false);
            done.bytes += out.log_line().len() + response.body.len();
            match out.decision {
                Decision::Redirect { .. } => done.redirects += 1,
                Decision::Block { .. } => done.blocks += 1,
            }
        }
    }
    // The counting every click does: a click recorded, its batch sent and answered.
    let Ok(network) = Id::parse("n") else {
        return done;
    };
    let mut local = LocalCounts::new(1, FlushPolicy::default());
    local.record_flood(&network, Thresholds::default(), false, 0);
    if let Flush::Send(batch) = local.flush(&network, 60_000) {
        let reply = NetworkCounts::default().apply(&batch, 60_000);
        let answer = Reply::parse(&reply.to_json());
        done.bytes += batch.to_json().len();
        if let Ok(reply) = answer {
            done.counted = true;
            local.acked(&network, batch.seq, reply, 60_000);
        }
    }
    done
}

/// What [`warm_up`] ran: clicks redirected and blocked, a batch sent and its answer read, and the
/// bytes of what they produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WarmedUp {
    pub redirects: u32,
    pub blocks: u32,
    pub counted: bool,
    pub bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn warm_up_runs_both_paths() {
        // A redirect (no body) and a blocked bot (the 1021 page), each with its log line, and
        // the counting round trip.
        let done = warm_up();
        assert_eq!(
            (done.redirects, done.blocks, done.counted),
            (1, 1, true),
            "{done:?}"
        );
        assert!(done.bytes > 1000, "{done:?}");
    }
}
