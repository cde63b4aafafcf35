//! What runs once per isolate, when the Worker's module starts.

use crate::click::Id;
use crate::config::cache;
use crate::flood::Thresholds;
use crate::ip::{IpNet, IpSet};
use crate::network::local::{Flush, FlushPolicy, LocalCounts};
use crate::network::store::NetworkCounts;
use crate::network::wire::Reply;
use crate::token::{TokenKey, NONCE_LEN};

use super::click::{Arrival, ClickStep, Parts};
use super::state::{Effect, Isolate};

/// Runs the whole click path once on a built-in config: a browser click and a bot click, their
/// responses and log lines. The Worker calls it when its module starts, so that the engine compiles
/// the code of the click path (wasm is compiled function by function on first use) and builds the
/// bot patterns then, and not inside the first real click's CPU budget. Returns what it ran, with a
/// byte count so the work cannot be optimised away.
pub fn warm_up() -> WarmedUp {
    let mut done = WarmedUp::default();
    const CONFIG: &str = r#"{"version": 1, "advertisers": [{"id": "a"}],
        "offers": [{"id": "1", "advertiser_id": "a", "landing_url": "https://x.example/?t={transaction_id}&s={sub1}", "geo": {"deny": ["KP"]}}],
        "lists": {"blocked_ips": ["203.0.113.0/24"], "datacenter_asns": [64496], "datacenter_ips": {"kv": "iplist/w"},
                  "fraud_ips": ["198.51.100.1"], "blocked_referrers": ["*.spam.example"], "allowed_affiliates": ["t"]},
        "rules": [{"id": "w", "created_at": "2026-01-01", "scope": {"offers": ["1"]}, "decline": "high",
                   "strategy": {"filters": [{"type": "bot"}, {"type": "fraud_database"}, {"type": "datacenter_vpn"},
                                            {"type": "geo"}, {"type": "referrer"}, {"type": "old_os_browser"},
                                            {"type": "spoof"}]}},
                  {"id": "p", "created_at": "2026-02-01", "priority": 1, "decline": "medium_and_higher", "strategy": "lead",
                   "scope": {"advertisers": ["a"], "affiliates": {"include": "all", "exclude": ["x"]}}},
                  {"id": "q", "created_at": "2026-03-01", "strategy": "mobile_cpi", "scope": {"affiliates": ["n", "m"]}}]}"#;
    let Ok(list) = IpNet::parse("100.64.0.0/10") else {
        return done;
    };
    let Some(config) = cache::warm_up(CONFIG, &IpSet::new([list])) else {
        return done;
    };
    let Ok(key) = TokenKey::new(&[1u8; 32]) else {
        return done;
    };
    let mut isolate = Isolate::default();
    isolate.start_counting(1, FlushPolicy::default());
    for ua in [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Version/17.4 Mobile/15E148 Safari/604.1",
        "curl/8.4.0",
    ] {
        let parts = Parts {
            method: "GET".to_owned(),
            url: "https://clicks.example/c?offer_id=1&aff_id=n&sub1=a%20b".to_owned(),
            headers: vec![
                ("cf-connecting-ip", "192.0.2.1".to_owned()),
                ("user-agent", ua.to_owned()),
                ("referer", "https://news.example/a".to_owned()),
                ("accept", "text/html".to_owned()),
                ("sec-fetch-mode", "navigate".to_owned()),
                ("accept-language", "de".to_owned()),
            ],
            country: Some("DE".to_owned()),
            asn: Some(3320),
            http_protocol: Some("HTTP/2".to_owned()),
            tls_version: Some("TLSv1.3".to_owned()),
            tls_cipher: Some("AEAD-AES128-GCM-SHA256".to_owned()),
            platform: None,
        };
        let Ok(arrival) = Arrival::read(parts) else {
            return done;
        };
        let step = isolate.click(arrival, &config, || Some(key.clone()), 0, || Ok([0; NONCE_LEN]));
        if let ClickStep::Done(answered) = step {
            for effect in &answered.effects {
                if let Effect::Log(line) = effect {
                    done.bytes += line.len();
                }
            }
            done.bytes += answered.response.body.len();
            match answered.response.status {
                302 => done.redirects += 1,
                _ => done.blocks += 1,
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
    pub(crate) redirects: u32,
    pub(crate) blocks: u32,
    pub(crate) counted: bool,
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
