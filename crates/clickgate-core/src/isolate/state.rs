//! The state one isolate keeps between requests, what it asks of the edge ([`Effect`]), and the
//! steps due on every request whatever it is ([`Isolate::drive_stranded`]).

use crate::alerts::{Alerts, Due, Kind, Raised};
use crate::click::Id;
use crate::config::cache::SlotEvent;
use crate::config::Config;
use crate::http::HttpResponse;
use crate::network::click_ids::{Outbox, Step, Ticket};
use crate::network::home::Home;
use crate::network::local::{Flush, FlushPolicy, LocalCounts};
use crate::report::DataPoint;
use crate::signing::Breakers;

/// A response and what the edge carries out with it, in order.
#[derive(Debug)]
pub struct Answered {
    pub response: HttpResponse,
    pub effects: Vec<Effect>,
}

/// Something the edge does for a click or a postback, because it needs the runtime.
#[derive(Debug)]
pub enum Effect {
    /// A line for the log (stdout).
    Log(String),
    /// A fault line (stderr).
    Fault(String),
    /// A data point for the Analytics Engine dataset the config names.
    Analytics { binding: String, point: DataPoint },
    /// The network's counts want this step (a batch to send, or a timer for one), bound for the
    /// object `home` names; carried out after the response.
    Flush {
        network: Id,
        home: Home,
        step: Flush,
    },
    /// A replay object's queue of after-redirect questions wants this step, begun at `started_ms`;
    /// carried out after the response.
    Replay {
        object: String,
        step: Step,
        started_ms: u64,
    },
    /// A judged conversion passed on to its advertiser's tracker at `url`, after the response, on
    /// [`conversion::FORWARD_SCHEDULE_MS`](crate::conversion::FORWARD_SCHEDULE_MS); its own log line names the transaction and event.
    Forward {
        url: String,
        transaction_id: String,
        event: String,
    },
    /// An alert's JSON `body` POSTed to the operator's webhook at `url`, after the response, on
    /// the same schedule as a forward.
    Alert {
        url: String,
        kind: Kind,
        body: String,
    },
}

/// The state one isolate keeps between clicks. Counting starts once the edge gives it an id to
/// name its batches by ([`Isolate::start_counting`]); until then the counts' filters see nothing.
#[derive(Debug, Default)]
pub struct Isolate {
    pub(super) counts: Option<LocalCounts>,
    pub(super) breakers: Breakers,
    pub(super) outbox: Outbox,
    pub(super) next_ticket: Ticket,
    pub(super) alerts: Alerts,
}

impl Isolate {
    /// Whether this isolate keeps counts yet.
    pub fn counting(&self) -> bool {
        self.counts.is_some()
    }

    /// Starts the isolate's counts, its batches named by `id`.
    pub fn start_counting(&mut self, id: u64, policy: FlushPolicy) {
        self.counts = Some(LocalCounts::new(id, policy));
    }

    /// The isolate's counts, for the edge's flush drive.
    pub fn counts_mut(&mut self) -> Option<&mut LocalCounts> {
        self.counts.as_mut()
    }

    /// The isolate's click-id questions, for the edge's replay drive.
    pub fn outbox_mut(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    /// Keeps an alert for the next request to send: what a source outside the click path (a
    /// scheduled feed's failure, [`Kind::FeedFailed`]) raises.
    pub fn raise(&mut self, raised: Raised) {
        self.alerts.raise(raised);
    }

    /// What the network's object answered an operator's block or lift with: the change it made,
    /// alerted like a trip or a lift.
    pub fn object_alerts(&mut self, network: &Id, alerts: Vec<(Kind, String)>) {
        for (kind, detail) in alerts {
            self.alerts
                .raise(Raised::network(kind, network.as_str(), detail));
        }
    }

    /// A refresh of the config ended: a document that could not be used, while an older one
    /// stays in force, is alerted (under the older one's `alerts`). With none in force there is
    /// no webhook to tell.
    pub fn config_event(&mut self, event: &SlotEvent) {
        if let SlotEvent::KeptLastGood { digest, problem } = event {
            self.alerts.raise(Raised {
                kind: Kind::ConfigFailed,
                network: None,
                offer: None,
                detail: format!("{problem}; config {digest} stays in force"),
            });
        }
    }

    /// The steps due for every network's counts (a failed batch whose retry is due, a timer lost
    /// with its request), bound for their homes under `config`, the log line of any counted
    /// clicks dropped, and the alerts due: run on every request, so a network that went quiet is
    /// not left waiting for its own next click, and an alert raised between requests goes with
    /// the next one.
    pub fn drive_stranded(&mut self, config: &Config, now_ms: u64) -> Vec<Effect> {
        let mut effects = self.stranded(config, now_ms);
        if let Some(counts) = self.counts.as_mut() {
            for raised in counts.take_alerts() {
                self.alerts.raise(raised);
            }
        }
        let due = self
            .alerts
            .due(config.alerts.as_ref(), &config.digest, now_ms);
        effects.extend(due.into_iter().map(|d| match d {
            Due::Send { url, kind, body } => Effect::Alert { url, kind, body },
            Due::Held(line) => Effect::Log(line),
        }));
        effects
    }

    fn stranded(&mut self, config: &Config, now_ms: u64) -> Vec<Effect> {
        let Some(counts) = self.counts.as_mut() else {
            return Vec::new();
        };
        let mut effects: Vec<Effect> = counts
            .take_drop_line()
            .map(Effect::Fault)
            .into_iter()
            .collect();
        for (network, step) in counts.stranded(now_ms) {
            let home = Home::of(config, &network);
            effects.push(Effect::Flush {
                network,
                home,
                step,
            });
        }
        effects
    }

    /// Runs `f` on the counts, if this isolate keeps them, and logs the networks it forgot.
    pub(super) fn with_counts<T>(
        &mut self,
        effects: &mut Vec<Effect>,
        f: impl FnOnce(&mut LocalCounts) -> T,
    ) -> Option<T> {
        let counts = self.counts.as_mut()?;
        let out = f(counts);
        effects.extend(counts.take_eviction_line().map(Effect::Log));
        Some(out)
    }

    pub(super) fn flush(
        &mut self,
        effects: &mut Vec<Effect>,
        network: Id,
        home: Home,
        now_ms: u64,
    ) {
        let step = self
            .counts
            .as_mut()
            .map_or(Flush::Nothing, |c| c.flush(&network, now_ms));
        if step != Flush::Nothing {
            effects.push(Effect::Flush {
                network,
                home,
                step,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::*;
    use crate::network::store::NetworkCounts;
    use serde_json::Value;
    use std::sync::Arc;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The alerts among a request's effects: their kind and their body read back.
    fn alerts(effects: &[Effect]) -> Vec<(Kind, Value)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Alert { url, kind, body } => {
                    assert_eq!(url, "https://hooks.example/alerts");
                    Some((*kind, serde_json::from_str(body).unwrap()))
                }
                _ => None,
            })
            .collect()
    }

    /// One click as the edge runs it: the click, then the stranded steps and alerts due.
    fn request(
        isolate: &mut Isolate,
        config: &Arc<Config>,
        url: &str,
        ip: &str,
        at: u64,
    ) -> Vec<(Kind, Value)> {
        let answered = done(step(isolate, config, parts(url, ip, IPHONE), at));
        let mut effects = answered.effects;
        effects.extend(isolate.drive_stranded(config, at));
        alerts(&effects)
    }

    fn alerting(extra: &str) -> Arc<Config> {
        let doc = CONFIG.replacen(
            '{',
            &format!(r#"{{"alerts": {{"webhook": "https://hooks.example/alerts"{extra}}},"#),
            1,
        );
        Arc::new(Config::compile(&doc).unwrap())
    }

    #[test]
    fn a_trip_the_object_answered_with_is_sent_once_with_the_next_request() {
        let config = alerting("");
        let mut isolate = counting();
        let link = "https://clicks.example/c?offer_id=1&aff_id=net-5";
        request(&mut isolate, &config, link, "192.0.2.1", T0);
        let counts = isolate.counts_mut().unwrap();
        let Flush::Send(batch) = counts.wake(&id("net-5"), T0 + 1_000) else {
            panic!("due")
        };
        let mut reply = NetworkCounts::default().apply(&batch, T0 + 1_000);
        reply.alerts = vec![(Kind::FloodTripped, "per_minute: 6 clicks, ceiling 5".into())];
        counts.acked(&id("net-5"), batch.seq, reply, T0 + 1_000);
        let sent = request(&mut isolate, &config, link, "192.0.2.1", T0 + 2_000);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].0, Kind::FloodTripped);
        assert_eq!(sent[0].1["network"], "net-5");
        assert!(request(&mut isolate, &config, link, "192.0.2.1", T0 + 3_000).is_empty());
        // An operator's block within the window is not sent again; a lift is its own kind.
        isolate.object_alerts(
            &id("net-5"),
            vec![(Kind::FloodLifted, "lifted by ops".into())],
        );
        isolate.object_alerts(
            &id("net-5"),
            vec![(Kind::FloodTripped, "imposed by ops".into())],
        );
        let sent = request(&mut isolate, &config, link, "192.0.2.1", T0 + 4_000);
        assert_eq!(
            sent.iter().map(|s| s.0).collect::<Vec<_>>(),
            [Kind::FloodLifted]
        );
    }

    #[test]
    fn a_signing_breaker_opening_and_closing_is_alerted_with_its_network() {
        let doc = CONFIG.replacen(
            r#""keys": [{"id": "k1", "secret": "network-7-signing-secret-0001"}]"#,
            r#""keys": [{"id": "k1", "secret": "network-7-signing-secret-0001"}],
               "breaker": {"window_seconds": 60, "min_clicks": 5, "invalid_share": 0.5}"#,
            1,
        );
        let doc = doc.replacen(
            '{',
            r#"{"alerts": {"webhook": "https://hooks.example/alerts"},"#,
            1,
        );
        let config = Arc::new(Config::compile(&doc).unwrap());
        let mut isolate = counting();
        let genuine = signed(&config, "net-7", None);
        let forged = format!("{genuine}&sub1=altered");
        // Ten clicks of `link`, one a second from `from`: the alerts they raised.
        let mut ten = |link: &str, from: u64| -> Vec<_> {
            (0..10)
                .flat_map(|i| request(&mut isolate, &config, link, "192.0.2.1", from + i * 1_000))
                .collect()
        };
        let mut sent = ten(&genuine, T0);
        assert!(sent.is_empty(), "{sent:?}");
        sent.extend(ten(&forged, T0 + 60_000));
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].0, Kind::BreakerOpened);
        assert_eq!(sent[0].1["network"], "net-7");
        // The signer is fixed: the breaker closes, a kind of its own.
        sent.extend(ten(&genuine, T0 + 80_000));
        assert_eq!(
            sent.iter().map(|s| s.0).collect::<Vec<_>>(),
            [Kind::BreakerOpened, Kind::BreakerClosed]
        );
    }

    #[test]
    fn a_config_that_could_not_be_used_is_alerted_once_per_window() {
        let config = alerting(r#", "window_seconds": 600"#);
        let mut isolate = counting();
        let kept = SlotEvent::KeptLastGood {
            digest: config.digest.clone(),
            problem: "offers[0].landing_url: is required".into(),
        };
        isolate.config_event(&kept);
        let sent = alerts(&isolate.drive_stranded(&config, T0));
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].0, Kind::ConfigFailed);
        assert_eq!(sent[0].1["network"], Value::Null);
        assert!(sent[0].1["detail"]
            .as_str()
            .unwrap()
            .starts_with("offers[0].landing_url"));
        isolate.config_event(&kept);
        assert!(alerts(&isolate.drive_stranded(&config, T0 + 599_999)).is_empty());
        isolate.config_event(&kept);
        assert_eq!(
            alerts(&isolate.drive_stranded(&config, T0 + 600_000)).len(),
            1
        );
        // A good load or an unchanged one says nothing.
        isolate.config_event(&SlotEvent::Unchanged {
            digest: config.digest.clone(),
        });
        assert!(alerts(&isolate.drive_stranded(&config, T0 + 2 * 600_000)).is_empty());
    }

    #[test]
    fn an_offers_blocked_share_jump_is_alerted_with_the_offer() {
        let config = alerting(r#", "window_seconds": 60, "blocked_share_min_clicks": 5"#);
        let mut isolate = counting();
        let link = "https://clicks.example/c?offer_id=1&aff_id=net-5";
        let mut sent = Vec::new();
        for i in 0..10 {
            sent.extend(request(&mut isolate, &config, link, "192.0.2.1", T0 + i));
        }
        // The next minute, every click comes from a blocklisted range.
        for i in 0..10 {
            sent.extend(request(
                &mut isolate,
                &config,
                link,
                "203.0.113.9",
                T0 + 60_000 + i,
            ));
        }
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].0, Kind::BlockedShareJump);
        assert_eq!(sent[0].1["offer"], "1");
        assert_eq!(
            sent[0].1["detail"],
            "5 of 5 clicks blocked this window, 0 of 10 the window before"
        );
    }

    #[test]
    fn without_an_alerts_section_nothing_is_sent() {
        let config = config();
        let mut isolate = counting();
        isolate.raise(crate::alerts::Raised {
            kind: Kind::FeedFailed,
            network: None,
            offer: None,
            detail: "x".into(),
        });
        assert!(alerts(&isolate.drive_stranded(&config, T0)).is_empty());
    }

    #[test]
    fn a_quiet_networks_failed_batch_is_resent_on_any_request() {
        // Regression: only a network's own click restarted its batch's retries, so after an
        // outage a network that went quiet kept its clicks out of the report.
        let config = config();
        let mut isolate = counting();
        let link = |network: &str| format!("https://clicks.example/c?offer_id=1&aff_id={network}");
        click(&mut isolate, &config, &link("net-7"), "192.0.2.1");
        let counts = isolate.counts_mut().unwrap();
        let Flush::Send(batch) = counts.wake(&id("net-7"), T0 + 1_000) else {
            panic!("due")
        };
        // The send fails; the drive that would retry it is cut off with its request.
        assert!(matches!(
            counts.failed(&id("net-7"), batch.seq, T0 + 1_100),
            Flush::WakeIn(_)
        ));
        let later = T0 + 40_000;
        let quiet = isolate.drive_stranded(&config, later);
        let resent = quiet.iter().any(|e| {
            matches!(e, Effect::Flush { network, home, step: Flush::Send(b) }
                if *network == id("net-7") && *home == Home::of(&config, network) && *b == batch)
        });
        assert!(resent, "{quiet:?}");
        assert!(
            isolate.drive_stranded(&config, later + 1).is_empty(),
            "once per interval"
        );
    }
}
