//! The isolate: the whole click, in the order the product promises, over the state one Worker
//! isolate keeps between clicks (its local counts, the signing breakers, the click-id outbox); and
//! what runs once per isolate around it ([`warm_up()`]). On the top floor, where every other module
//! may be used.
//!
//! The edge reads the request into [`Parts`], and [`Arrival::read`] checks its sizes and routes it
//! before any config is needed. [`Isolate::click`] then runs the rest in this order: the health
//! answer, the transaction-id key, the client, the nonce, the network's signature check, the
//! click-id replay question (answered from this isolate's memory, queued to ask after the
//! redirect, or asked before it: [`ClickStep::Ask`]), the signing breaker, the isolate's counts and
//! flood view, [`decide`](crate::decide::decide), the decision's log line, its counts, its
//! analytics point, the network's flush, and the response. Nothing here waits or reads a clock:
//! what the edge has to do with the outside world comes back as [`Effect`]s, carried out in order.
//!
//! A conversion postback runs the same way: [`PostbackArrival`] checks its method and takes its
//! body, [`Isolate::postback`] judges it up to the question its network's object answers
//! ([`PostbackStep::Ask`]), and [`Isolate::resume_postback`] gives its log line, its forward to
//! the tracker, its counts and the answer.
//!
//! Its files: `state.rs`, the [`Isolate`] itself (what it keeps between requests, the [`Effect`]s
//! it asks of the edge, the steps due on every request); `click.rs`, a click from its [`Parts`] to
//! its answer, and `postback.rs`, a postback or another system's rejection, each over `state.rs`;
//! and `warm_up.rs`, what runs once per isolate, over both.

mod click;
mod postback;
mod state;
mod warm_up;

pub use click::{Arrival, ClickStep, Parts, Pending, Question};
pub use postback::{
    rejection, rejection_answer, PendingPostback, PostbackArrival, PostbackStep, RejectionStep,
    SeenQuestion,
};
pub use state::{Answered, Effect, Isolate};
pub use warm_up::{warm_up, WarmedUp};

/// What the tests of every file here share: a config of signed networks, a click through it.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::click::Id;
    use crate::config::Config;
    use crate::network::local::FlushPolicy;
    use crate::signing;
    use crate::token::{TokenKey, NONCE_LEN};
    use serde_json::Value;
    use std::sync::Arc;

    /// 2026-06-01T00:00:00Z.
    pub(super) const T0: u64 = 1_780_272_000_000;
    pub(super) const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Version/17.4 Mobile/15E148 Safari/604.1";
    pub(super) const CONFIG: &str = r#"{"version": 1,
        "offers": [{"id": "1", "landing_url": "https://x.example/?t={transaction_id}"}],
        "lists": {"blocked_ips": ["203.0.113.0/24"]},
        "networks": [
            {"id": "net-7", "signing": {"mode": "enforce", "keys": [{"id": "k1", "secret": "network-7-signing-secret-0001"}]}},
            {"id": "net-8", "signing": {"mode": "enforce", "replay_check": "after_redirect",
                                        "keys": [{"id": "k1", "secret": "network-8-signing-secret-0001"}]}},
            {"id": "net-9", "signing": {"mode": "enforce", "flood_exempt": false,
                                        "keys": [{"id": "k1", "secret": "network-9-signing-secret-0001"}]}}]}"#;

    pub(super) fn config() -> Arc<Config> {
        Arc::new(Config::compile(CONFIG).unwrap())
    }

    pub(super) fn id(network: &str) -> Id {
        Id::parse(network).unwrap()
    }

    /// The offer's link for `network`, signed with its key, valid for an hour from `T0`.
    pub(super) fn signed(config: &Config, network: &str, click_id: Option<&str>) -> String {
        let policy = &config.networks[&id(network)];
        let link = format!("https://clicks.example/c?offer_id=1&aff_id={network}");
        signing::sign_link(policy, &policy.keys[0], &link, T0 / 1000 + 3600, click_id)
    }

    pub(super) fn parts(url: &str, ip: &str, ua: &str) -> Parts {
        Parts {
            method: "GET".to_owned(),
            url: url.to_owned(),
            headers: vec![
                ("cf-connecting-ip", ip.to_owned()),
                ("user-agent", ua.to_owned()),
            ],
            country: Some("DE".to_owned()),
            asn: Some(3320),
            ..Parts::default()
        }
    }

    pub(super) fn counting() -> Isolate {
        let mut isolate = Isolate::default();
        isolate.start_counting(7, FlushPolicy::default());
        isolate
    }

    pub(super) fn step(
        isolate: &mut Isolate,
        config: &Arc<Config>,
        parts: Parts,
        now_ms: u64,
    ) -> ClickStep {
        let key = TokenKey::new(&[9u8; 32]).unwrap();
        let arrival = Arrival::read(parts).unwrap();
        isolate.click(arrival, config, || Some(key), now_ms, || Ok([3; NONCE_LEN]))
    }

    pub(super) fn done(step: ClickStep) -> Answered {
        match step {
            ClickStep::Done(answered) => answered,
            ClickStep::Ask { question, .. } => panic!("asked {question:?}"),
        }
    }

    pub(super) fn click(
        isolate: &mut Isolate,
        config: &Arc<Config>,
        url: &str,
        ip: &str,
    ) -> Answered {
        done(step(isolate, config, parts(url, ip, IPHONE), T0))
    }

    /// The click's decision line among the effects.
    pub(super) fn decision(answered: &Answered) -> Value {
        let lines: Vec<Value> = answered
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::Log(line) => serde_json::from_str(line).ok(),
                _ => None,
            })
            .filter(|line: &Value| line["event"] == "click")
            .collect();
        assert_eq!(lines.len(), 1, "{:?}", answered.effects);
        lines[0].clone()
    }

    pub(super) fn codes(answered: &Answered) -> Vec<String> {
        decision(answered)["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap().to_owned())
            .collect()
    }
}
