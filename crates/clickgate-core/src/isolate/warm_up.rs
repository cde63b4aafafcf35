//! What runs once per isolate, when the Worker's module starts.

use crate::click::Id;
use crate::config::cache;
#[cfg(test)]
use crate::config::rules::PRESETS;
use crate::flood::Thresholds;
use crate::ip::{IpNet, IpSet};
use crate::network::local::{Flush, FlushPolicy, LocalCounts};
use crate::network::store::NetworkCounts;
use crate::network::wire::Reply;
use crate::token::{TokenKey, NONCE_LEN};

use super::click::{Arrival, ClickStep, Parts};
use super::state::{Effect, Isolate};

/// The warm-up's config: a rule of every filter over the clicked offer, and beside it enough
/// offers, rules and list entries to take the paths a production-sized document takes and a small
/// one does not (tables that grow, sorts past their small-input path of 20 items, every preset,
/// IPv6 networks), which a fresh isolate otherwise compiled inside its first click. Written out,
/// not generated: the text compresses to less than the code to make it would.
const CONFIG: &str = r#"{"version": 1, "advertisers": [{"id": "a"}],
    "offers": [{"id": "1", "advertiser_id": "a", "landing_url": "https://x.example/?t={transaction_id}&s={sub1}", "geo": {"deny": ["KP"]}},
               {"id": "o0", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o1", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o2", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o3", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o4", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o5", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o6", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o7", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o8", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o9", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o10", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o11", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o12", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o13", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o14", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o15", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o16", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o17", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o18", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o19", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o20", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o21", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o22", "advertiser_id": "a", "landing_url": "https://x.example/"}, {"id": "o23", "advertiser_id": "a", "landing_url": "https://x.example/"}],
    "lists": {"blocked_ips": ["203.0.113.0/24", "2001:db8::/32"], "datacenter_asns": [64496, 1, 8, 15, 22, 29, 36, 43, 50, 57, 64, 71, 78, 85, 92, 99, 106, 113, 120, 127, 134, 141, 148, 155, 162], "datacenter_ips": {"kv": "iplist/w"},
              "fraud_ips": ["198.51.100.1"], "blocked_referrers": ["*.spam.example", "*.s0.example", "*.s1.example", "*.s2.example", "*.s3.example", "*.s4.example", "*.s5.example", "*.s6.example", "*.s7.example", "*.s8.example", "*.s9.example", "*.s10.example", "*.s11.example", "*.s12.example", "*.s13.example", "*.s14.example", "*.s15.example", "*.s16.example", "*.s17.example", "*.s18.example", "*.s19.example", "*.s20.example", "*.s21.example", "*.s22.example", "*.s23.example"], "allowed_affiliates": ["t"]},
    "rules": [{"id": "w", "created_at": "2026-01-01", "scope": {"offers": ["1"]}, "decline": "high",
               "strategy": {"filters": [{"type": "bot"}, {"type": "fraud_database"}, {"type": "datacenter_vpn"},
                                        {"type": "geo"}, {"type": "referrer"}, {"type": "old_os_browser"},
                                        {"type": "spoof"}]}},
              {"id": "p", "created_at": "2026-02-01", "priority": 1, "decline": "medium_and_higher", "strategy": "lead",
               "scope": {"advertisers": ["a"], "affiliates": {"include": "all", "exclude": ["x"]}}},
              {"id": "q", "created_at": "2026-03-01", "strategy": "mobile_cpi", "scope": {"affiliates": ["n", "m"]}},
              {"id": "r0", "created_at": "2026-01-01", "scope": {"offers": ["1", "o0"]}, "strategy": "mobile_cpi"},
              {"id": "r1", "created_at": "2026-01-01", "scope": {"offers": ["1", "o1"]}, "strategy": "mobile_cpa"},
              {"id": "r2", "created_at": "2026-01-01", "scope": {"offers": ["1", "o2"]}, "strategy": "lead"},
              {"id": "r3", "created_at": "2026-01-01", "scope": {"offers": ["1", "o3"]}, "strategy": "ecommerce"},
              {"id": "r4", "created_at": "2026-01-01", "scope": {"offers": ["1", "o4"]}, "strategy": "mobile_cpi"},
              {"id": "r5", "created_at": "2026-01-01", "scope": {"offers": ["1", "o5"]}, "strategy": "mobile_cpa"},
              {"id": "r6", "created_at": "2026-01-01", "scope": {"offers": ["1", "o6"]}, "strategy": "lead"},
              {"id": "r7", "created_at": "2026-01-01", "scope": {"offers": ["1", "o7"]}, "strategy": "ecommerce"},
              {"id": "r8", "created_at": "2026-01-01", "scope": {"offers": ["1", "o8"]}, "strategy": "mobile_cpi"},
              {"id": "r9", "created_at": "2026-01-01", "scope": {"offers": ["1", "o9"]}, "strategy": "mobile_cpa"},
              {"id": "r10", "created_at": "2026-01-01", "scope": {"offers": ["1", "o10"]}, "strategy": "lead"},
              {"id": "r11", "created_at": "2026-01-01", "scope": {"offers": ["1", "o11"]}, "strategy": "ecommerce"},
              {"id": "r12", "created_at": "2026-01-01", "scope": {"offers": ["1", "o12"]}, "strategy": "mobile_cpi"},
              {"id": "r13", "created_at": "2026-01-01", "scope": {"offers": ["1", "o13"]}, "strategy": "mobile_cpa"},
              {"id": "r14", "created_at": "2026-01-01", "scope": {"offers": ["1", "o14"]}, "strategy": "lead"},
              {"id": "r15", "created_at": "2026-01-01", "scope": {"offers": ["1", "o15"]}, "strategy": "ecommerce"},
              {"id": "r16", "created_at": "2026-01-01", "scope": {"offers": ["1", "o16"]}, "strategy": "mobile_cpi"},
              {"id": "r17", "created_at": "2026-01-01", "scope": {"offers": ["1", "o17"]}, "strategy": "mobile_cpa"},
              {"id": "r18", "created_at": "2026-01-01", "scope": {"offers": ["1", "o18"]}, "strategy": "lead"},
              {"id": "r19", "created_at": "2026-01-01", "scope": {"offers": ["1", "o19"]}, "strategy": "ecommerce"},
              {"id": "r20", "created_at": "2026-01-01", "scope": {"offers": ["1", "o20"]}, "strategy": "mobile_cpi"},
              {"id": "r21", "created_at": "2026-01-01", "scope": {"offers": ["1", "o21"]}, "strategy": "mobile_cpa"},
              {"id": "r22", "created_at": "2026-01-01", "scope": {"offers": ["1", "o22"]}, "strategy": "lead"},
              {"id": "r23", "created_at": "2026-01-01", "scope": {"offers": ["1", "o23"]}, "strategy": "ecommerce"}]}"#;

/// Runs the whole click path once on a built-in config: a browser click and a bot click, their
/// responses and log lines. The Worker calls it when its module starts, so that the engine compiles
/// the code of the click path (wasm is compiled function by function on first use) and builds the
/// bot patterns then, and not inside the first real click's CPU budget. Returns what it ran, with a
/// byte count so the work cannot be optimised away.
pub fn warm_up() -> WarmedUp {
    let mut done = WarmedUp::default();
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
        // What the edge runs after every click, the stranded batches and due alerts.
        done.bytes += isolate.drive_stranded(&config, 0).len();
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

    #[test]
    fn warm_up_document_takes_the_large_paths() {
        // More than 20 rules judging the clicked offer (their order is sorted), more than 20
        // offers and list entries, every preset, and networks of both families.
        let lists = [("iplist/w".to_owned(), IpSet::default())].into();
        let config = crate::config::Config::compile_with_lists(CONFIG, &lists).unwrap();
        let offer = Id::parse("1").unwrap();
        assert!(
            config
                .candidates(&offer, crate::config::rules::Level::Click)
                .len()
                > 20
        );
        assert!(config.offers.len() > 20);
        assert!(config.lists.blocked_referrers.len() > 20);
        assert!(config
            .blocked_ips
            .lookup("2001:db8::1".parse().unwrap())
            .is_some());
        for preset in PRESETS {
            assert!(
                CONFIG.contains(&format!(r#""strategy": "{preset}""#)),
                "{preset}"
            );
        }
    }
}
