//! A click, from what the edge read of it ([`Parts`]) to its answer, through the checks in the
//! order the product promises ([`Isolate::click`]).

use std::sync::Arc;

use crate::alerts::{Kind, Raised};
use crate::click::{self, Arrived, ClickParams, ClientInfo, Platform, Sent};
use crate::config::networks::ReplayCheck;
use crate::config::Config;
use crate::decide::{decide, reads_sent, servable_offer, Observed};
use crate::http::{self, click_response, HttpResponse};
use crate::ip::client_ip;
use crate::log::fault_line;
use crate::network::click_ids::{Asked, AskedAfter, Detected, Questions, Step, Ticket};
use crate::network::home::Home;
use crate::network::keys::ClickKeys;
use crate::report;
use crate::signing::{self, Check, ReplayAnswer};
use crate::token::{TokenKey, NONCE_LEN};
use crate::ua::UserAgent;

use super::state::{Answered, Effect, Isolate};

/// What the edge read of a request on the click path.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    pub method: String,
    /// The whole link as received, scheme and host included.
    pub url: String,
    /// Those of the headers [`crate::decide::reads`] names that the request carries.
    pub headers: Vec<(&'static str, String)>,
    /// The client's country and autonomous system, as the edge resolved them.
    pub country: Option<String>,
    pub asn: Option<u32>,
    /// `request.cf`'s `httpProtocol`, `tlsVersion` and `tlsCipher`, where the runtime gives them.
    pub http_protocol: Option<String>,
    pub tls_version: Option<String>,
    pub tls_cipher: Option<String>,
    /// `request.cf.botManagement` and `asOrganization`, on a zone with Bot Management.
    pub platform: Option<Platform>,
}

impl Parts {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// A request whose sizes are within bounds and whose path is a click or the health check.
#[derive(Debug)]
pub struct Arrival {
    parts: Parts,
    arrived: Arrived,
}

impl Arrival {
    /// The checks that need no config: sizes first, then whether it is the health check. Which
    /// link format it is in is the config's to say. `Err` is the answer.
    pub fn read(parts: Parts) -> Result<Arrival, HttpResponse> {
        let sizes = click::check_sizes(
            parts.url.len(),
            parts.headers.iter().map(|(n, v)| (*n, v.as_str())),
        );
        let (path, _) = click::split_url(&parts.url);
        match sizes.and_then(|()| click::arrive(&parts.method, path)) {
            Ok(arrived) => Ok(Arrival { parts, arrived }),
            Err(e) => Err(http::error_response(&e, parts.head())),
        }
    }

    /// Whether the request was a HEAD (its answers carry no body).
    pub fn head(&self) -> bool {
        self.parts.head()
    }
}

/// Where a click stands after [`Isolate::click`].
#[derive(Debug)]
pub enum ClickStep {
    Done(Answered),
    /// The click waits for the replay object's answer about its click id; [`Isolate::resume`]
    /// finishes it. `effects` are carried out before the wait.
    Ask {
        question: Question,
        /// Boxed: the click it holds is large, and only a waiting click carries one.
        pending: Box<Pending>,
        effects: Vec<Effect>,
    },
}

/// A click id asked of its replay object before the redirect: the click's `ticket` in this
/// isolate's outbox, and the batch to send if this click found the object idle (`turn`).
#[derive(Debug)]
pub struct Question {
    pub object: String,
    pub ticket: Ticket,
    pub turn: Option<Questions>,
    pub asked_ms: u64,
}

/// A click waiting for its replay answer, with everything its decision reads but that answer.
#[derive(Debug)]
pub struct Pending {
    click: Click,
    check: Check,
}

/// A click with everything its decision reads but the signature check and the replay answer.
#[derive(Debug)]
struct Click {
    config: Arc<Config>,
    key: TokenKey,
    params: ClickParams,
    client: ClientInfo,
    nonce: [u8; NONCE_LEN],
    accept: Option<String>,
    head: bool,
    now_ms: u64,
}

impl Isolate {
    /// One routed request under the config in force, up to its response or its replay question.
    /// `key` and `nonce` are read only for a click (the health check needs neither); `None` from
    /// `key` means the secret is missing (the source logs why), `Err` from `nonce` says why the
    /// random source failed. Either answers 503.
    pub fn click(
        &mut self,
        arrival: Arrival,
        config: &Arc<Config>,
        key: impl FnOnce() -> Option<TokenKey>,
        now_ms: u64,
        nonce: impl FnOnce() -> Result<[u8; NONCE_LEN], String>,
    ) -> ClickStep {
        let Arrival { parts, arrived } = arrival;
        let head = parts.head();
        let done = |response| {
            ClickStep::Done(Answered {
                response,
                effects: Vec::new(),
            })
        };
        if arrived == Arrived::Health {
            return done(http::health_response(&config.digest, head));
        }
        let params = match config.links.route(&parts.method, &parts.url) {
            Ok(params) => params,
            Err(e) => return done(http::error_response(&e, head)),
        };
        let Some(key) = key() else {
            return done(http::unavailable(head));
        };
        // An offer the config does not serve is answered before anything is counted or asked:
        // such a click adds to no count and uses no click id, so made-up offer ids leave no state.
        if let Err(e) = servable_offer(config, &params) {
            return done(http::error_response(&e, head));
        }
        let mut effects = Vec::new();
        let (ip, ip_unreadable) = match client_ip(parts.header("cf-connecting-ip")) {
            Ok(ip) => (ip, false),
            Err(problem) => {
                effects.push(Effect::Fault(fault_line("client_ip", &problem)));
                (None, true)
            }
        };
        let client = ClientInfo {
            ip,
            ip_unreadable,
            user_agent: parts.header("user-agent").map(UserAgent::parse),
            referer: parts.header("referer").map(str::to_owned),
            country: parts.country.clone(),
            asn: parts.asn,
            sent: reads_sent(config).then(|| {
                Box::new(Sent::read(
                    |name| parts.header(name),
                    &parts.url,
                    parts.http_protocol.as_deref(),
                    parts.tls_version.as_deref(),
                    parts.tls_cipher.as_deref(),
                ))
            }),
            platform: parts.platform.clone().map(Box::new),
        };
        let nonce = match nonce() {
            Ok(nonce) => nonce,
            Err(e) => {
                effects.push(Effect::Fault(fault_line("random_source", &e)));
                return ClickStep::Done(Answered {
                    response: http::unavailable(head),
                    effects,
                });
            }
        };
        let policy = config.networks.get(&params.aff_id);
        let check = policy.map(|policy| {
            let (path, query) = click::split_url(&parts.url);
            signing::verify(policy, &parts.url, path, query, now_ms)
        });
        let question = check
            .as_ref()
            .zip(policy)
            .and_then(|(check, policy)| check.replay_question(policy))
            .map(|q| (q.click_id.to_owned(), q.expires_ms, q.when, q.objects));
        let click = Click {
            config: Arc::clone(config),
            key,
            params,
            client,
            nonce,
            accept: parts.header("accept").map(str::to_owned),
            head,
            now_ms,
        };
        let (check, (click_id, expires_ms, when, objects)) = match (check, question) {
            (Some(check), Some(question)) => (check, question),
            (check, _) => {
                return ClickStep::Done(self.finish(
                    click,
                    check,
                    ReplayAnswer::NotAsked,
                    effects,
                    Batches::Now,
                ))
            }
        };
        let network = &click.params.aff_id;
        let (object, use_key) = signing::replay_object(network, &click_id, objects);
        let ticket = self.next_ticket;
        self.next_ticket = ticket.wrapping_add(1);
        let replay = match when {
            ReplayCheck::AfterRedirect => {
                let who = Detected {
                    network: network.as_str().to_owned(),
                    click_id,
                };
                match self
                    .outbox
                    .ask_after(&object, ticket, &use_key, expires_ms, now_ms, who)
                {
                    AskedAfter::Replayed => ReplayAnswer::Replayed,
                    AskedAfter::Queued(step) => {
                        if step != Step::Nothing {
                            effects.push(Effect::Replay {
                                object,
                                step,
                                started_ms: now_ms,
                            });
                        }
                        ReplayAnswer::AfterRedirect
                    }
                }
            }
            ReplayCheck::BeforeRedirect => {
                let turn = match self
                    .outbox
                    .ask(&object, ticket, &use_key, expires_ms, now_ms)
                {
                    Asked::Replayed => None,
                    Asked::Send(batch) => Some(Some(batch)),
                    Asked::Wait => Some(None),
                };
                match turn {
                    // This isolate has seen the id in use: refused without a question.
                    None => ReplayAnswer::Replayed,
                    Some(turn) => {
                        // Its network's due batch goes out from this click's own request: once
                        // answered, it resumes in another's, which may start none (see `resume`).
                        let home = Home::of(&click.config, network);
                        self.flush(&mut effects, network.clone(), home, now_ms);
                        return ClickStep::Ask {
                            question: Question {
                                object,
                                ticket,
                                turn,
                                asked_ms: now_ms,
                            },
                            pending: Box::new(Pending { click, check }),
                            effects,
                        };
                    }
                }
            }
        };
        ClickStep::Done(self.finish(click, Some(check), replay, effects, Batches::Now))
    }

    /// A click that waited for its replay answer, decided as of its arrival. It is counted, but
    /// starts no batch: it resumes in whichever request delivered its answer, and the runtime
    /// refuses I/O that one request starts on another's behalf (a batch begun there failed as a
    /// `network_object` fault, and its network's counts piled up behind the back-off). The next
    /// click to arrive, waiting or not, sends its network's due batch from its own request, and
    /// the isolate-wide look (`drive_stranded`) any request makes sends every other network's.
    pub fn resume(&mut self, pending: Box<Pending>, answer: ReplayAnswer) -> Answered {
        let Pending { click, check } = *pending;
        self.finish(click, Some(check), answer, Vec::new(), Batches::Later)
    }

    /// The signing verdict through the breaker, the counts, the decision, its log line, counts
    /// and analytics point, the network's flush, and the response.
    fn finish(
        &mut self,
        click: Click,
        check: Option<Check>,
        replay: ReplayAnswer,
        mut effects: Vec<Effect>,
        batches: Batches,
    ) -> Answered {
        let Click {
            config,
            key,
            params,
            client,
            nonce,
            accept,
            head,
            now_ms,
        } = click;
        let network = params.aff_id.clone();
        let signature = match (check, config.networks.get(&network)) {
            (Some(check), Some(policy)) => {
                let (signature, event) =
                    self.breakers.judge(&network, policy, check, replay, now_ms);
                if let Some(event) = event {
                    let kind = match event.open {
                        true => Kind::BreakerOpened,
                        false => Kind::BreakerClosed,
                    };
                    self.alerts
                        .raise(Raised::network(kind, network.as_str(), event.detail));
                    effects.push(Effect::Fault(event.line));
                }
                signature
            }
            _ => None,
        };
        // Duplicate-IP and sub-ID counts: this isolate's view, never a wait on the network's object.
        let keys = ClickKeys::of(&config, &params, &client, now_ms);
        let counters = keys
            .as_ref()
            .and_then(|keys| self.with_counts(&mut effects, |c| c.record(keys, now_ms)))
            .flatten();
        let thresholds = config.flood_thresholds(&network);
        let flood = self
            .counts
            .as_ref()
            .map(|c| c.flood_view(&network, &thresholds, now_ms))
            .unwrap_or_default();
        let observed = Observed {
            counters,
            signature,
            flood,
        };
        let outcome = match decide(&config, &key, params, client, observed, now_ms, nonce) {
            Ok(outcome) => outcome,
            Err(e) => {
                return Answered {
                    response: http::error_response(&e, head),
                    effects,
                }
            }
        };
        self.alerts.click(
            config.alerts.as_ref(),
            outcome.click.offer_id.as_str(),
            outcome.is_blocked(),
            now_ms,
        );
        // A clean click the config's `log` leaves out costs no line at all; every other decision
        // is logged, and kept for explain from the same line. The report counts either way.
        let logged = !outcome.clean() || config.log.keeps(&outcome.transaction_id);
        let line = match logged {
            true => outcome.log_line_under(config.log),
            false => String::new(),
        };
        // The decision's line is printed before any line its counting adds.
        let mut after = Vec::new();
        self.with_counts(&mut after, |c| {
            c.record_outcome(&outcome, &line, thresholds, &nonce)
        });
        if logged {
            effects.push(Effect::Log(line));
        }
        effects.append(&mut after);
        if let Some(binding) = &config.analytics_binding {
            effects.push(Effect::Analytics {
                binding: binding.clone(),
                point: report::data_point(&outcome),
            });
        }
        if batches == Batches::Now {
            let home = Home::of(&config, &network);
            self.flush(&mut effects, network, home, now_ms);
            // The device's ledger, which this click may have counted in.
            if let Some(ledger) = keys.and_then(|k| k.ledger) {
                let home = Home::of(&config, &ledger);
                self.flush(&mut effects, ledger, home, now_ms);
            }
        }
        Answered {
            response: click_response(&outcome, accept.as_deref(), head),
            effects,
        }
    }
}

/// Whether a click's step may start its networks' batches (I/O), or leaves them to the next click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Batches {
    Now,
    Later,
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::*;
    use crate::flood::{FloodBlock, FloodCause};
    use crate::network::local::Flush;
    use crate::network::store::NetworkCounts;
    use crate::network::wire::Reply;
    use crate::time::MINUTE_MS;
    use serde_json::Value;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn replay_questions(answered: &Answered) -> usize {
        let is_question = |e: &&Effect| matches!(e, Effect::Replay { .. });
        answered.effects.iter().filter(is_question).count()
    }

    #[test]
    fn sizes_are_checked_before_the_route() {
        let long = format!("https://clicks.example/nowhere?x={}", "a".repeat(20_000));
        let too_long = click::check_sizes(long.len(), []).unwrap_err();
        let refused = Arrival::read(parts(&long, "192.0.2.1", IPHONE)).unwrap_err();
        assert_eq!(
            refused.status,
            http::error_response(&too_long, false).status
        );
        assert_ne!(refused.status, 404);
        // A path no link format serves passes the size check and is refused under the config.
        let short = Arrival::read(parts("https://clicks.example/nowhere", "192.0.2.1", IPHONE));
        let answered = done(step(
            &mut counting(),
            &config(),
            parts("https://clicks.example/nowhere", "192.0.2.1", IPHONE),
            0,
        ));
        assert!(short.is_ok());
        assert_eq!(answered.response.status, 404);
    }

    #[test]
    fn the_health_check_needs_no_key_and_counts_nothing() {
        let config = config();
        let mut isolate = counting();
        let arrival = Arrival::read(parts("https://clicks.example/healthz", "192.0.2.1", IPHONE));
        let step = isolate.click(arrival.unwrap(), &config, || None, T0, || Err("no".into()));
        let answered = done(step);
        assert_eq!(answered.response.status, 200);
        assert!(answered.effects.is_empty(), "{:?}", answered.effects);
    }

    #[test]
    fn a_click_without_the_key_is_unavailable_and_not_decided() {
        let config = config();
        let mut isolate = counting();
        let url = signed(&config, "net-7", None);
        let arrival = Arrival::read(parts(&url, "192.0.2.1", IPHONE)).unwrap();
        let answered = done(isolate.click(arrival, &config, || None, T0, || Ok([0; 8])));
        assert_eq!(answered.response.status, 503);
        assert!(answered.effects.is_empty(), "{:?}", answered.effects);
    }

    #[test]
    fn a_blocklisted_ip_with_a_bad_signature_reports_the_signature() {
        let config = config();
        let mut isolate = counting();
        let forged = format!("{}&sub1=altered", signed(&config, "net-7", None));
        let blocked = click(&mut isolate, &config, &forged, "203.0.113.5");
        assert_eq!(blocked.response.status, 403);
        assert_eq!(codes(&blocked), ["invalid_signature"]);
        assert_eq!(decision(&blocked)["rule_id"], "networks.net-7.signing");
        // Validly signed, the same address meets the blocklist.
        let genuine = signed(&config, "net-7", None);
        let listed = click(&mut isolate, &config, &genuine, "203.0.113.5");
        assert_eq!(codes(&listed), ["ip_blocklist"]);
        assert_eq!(
            click(&mut isolate, &config, &genuine, "192.0.2.1")
                .response
                .status,
            302
        );
    }

    #[test]
    fn a_preview_is_redirected_and_counted_toward_floods_not_duplicate_ips() {
        let config = config();
        let url = signed(&config, "net-7", None);
        let later = T0 + 3_600_000;
        let mut isolate = counting();
        let slack = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";
        let preview = done(step(
            &mut isolate,
            &config,
            parts(&url, "192.0.2.1", slack),
            T0,
        ));
        assert_eq!(preview.response.status, 302);
        assert_eq!(decision(&preview)["preview"], true);
        let flushes = |a: &Answered| {
            let is_flush = |e: &&Effect| matches!(e, Effect::Flush { .. });
            a.effects.iter().filter(is_flush).count()
        };
        // Sent for the flood count and the report...
        assert_eq!(flushes(&preview), 1);
        let counts = isolate.counts_mut().unwrap();
        let Flush::Send(batch) = counts.flush(&id("net-7"), later) else {
            panic!("the preview's counts are due")
        };
        // ...but no address of a person: a preview fetcher's IP is its service's.
        assert!(batch.ips.is_empty() && batch.subs.is_empty());
        assert_eq!(batch.report[0].1.previews, 1);
        // A person's click is counted and sent.
        let mut isolate = counting();
        let person = click(&mut isolate, &config, &url, "192.0.2.1");
        assert_eq!(decision(&person)["preview"], false);
        assert_eq!(flushes(&person), 1);
        let counts = isolate.counts_mut().unwrap();
        assert!(matches!(counts.flush(&id("net-7"), later), Flush::Send(_)));
    }

    #[test]
    fn a_spray_of_clicks_claiming_to_be_link_previews_trips_the_flood_threshold() {
        // A preview's User-Agent is only a claim: clicks sending one skipped the flood count, so
        // 1,500 of them from one address were all redirected where `curl` was blocked.
        let config = Arc::new(
            Config::compile(
                r#"{"version": 1,
                    "offers": [{"id": "1", "landing_url": "https://x.example/?t={transaction_id}"}],
                    "networks": [{"id": "net-5", "flood": {"per_minute": 100}}]}"#,
            )
            .unwrap(),
        );
        let url = "https://clicks.example/c?offer_id=1&aff_id=net-5";
        let slack = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";
        let mut isolate = counting();
        for i in 0..101 {
            let sprayed = done(step(
                &mut isolate,
                &config,
                parts(url, "192.0.2.1", slack),
                T0 + i,
            ));
            assert_eq!(decision(&sprayed)["preview"], true);
        }
        let counts = isolate.counts_mut().unwrap();
        let Flush::Send(batch) = counts.wake(&id("net-5"), T0 + 1_000) else {
            panic!("the previews' flood count is due")
        };
        assert_eq!(batch.flood, vec![(T0 / MINUTE_MS, 101, 0)]);
        assert_eq!(batch.report[0].1.previews, 101);
        assert_eq!(batch.report[0].1.clicks, 0);
        let reply = NetworkCounts::default().apply(&batch, T0 + 1_000);
        assert!(reply.block.is_some(), "101 clicks in a minute, ceiling 100");
        counts.acked(&id("net-5"), batch.seq, reply, T0 + 1_000);
        let blocked = done(step(
            &mut isolate,
            &config,
            parts(url, "192.0.2.1", slack),
            T0 + 2_000,
        ));
        assert_eq!(blocked.response.status, 403);
        assert_eq!(codes(&blocked), ["click_flood"]);
    }

    #[test]
    fn a_device_on_an_offer_through_a_second_affiliate_is_declined_and_its_ledger_flushed() {
        let config = Arc::new(
            Config::compile(
                r#"{"version": 1,
                    "offers": [{"id": "1", "landing_url": "https://x.example/"},
                               {"id": "2", "landing_url": "https://y.example/"}],
                    "rules": [{"id": "dev", "created_at": "2026-05-01", "scope": {"offers": ["1", "2"]},
                               "decline": "medium_and_higher",
                               "strategy": {"filters": [{"type": "duplicate_device_id"}]}}]}"#,
            )
            .unwrap(),
        );
        let mut isolate = counting();
        let url = |offer, aff| {
            format!("https://clicks.example/c?offer_id={offer}&aff_id={aff}&device_id=D")
        };
        let first = click(&mut isolate, &config, &url(1, "net-a"), "192.0.2.1");
        assert_eq!(first.response.status, 302);
        let ledger = crate::network::keys::ledger(crate::network::keys::device_hash("D"));
        let flushes: Vec<_> = first
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::Flush { network, home, .. } => Some((network.clone(), home.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            flushes,
            [
                (id("net-a"), Home::of(&config, &id("net-a"))),
                (ledger.clone(), Home::of(&config, &ledger)),
            ]
        );
        assert!(matches!(Home::of(&config, &ledger), Home::Shared { .. }));
        let second = click(&mut isolate, &config, &url(1, "net-b"), "192.0.2.2");
        assert_ne!(second.response.status, 302);
        let line = decision(&second);
        assert_eq!(line["reasons"][0]["code"], "duplicate_device_id");
        assert_eq!(line["reasons"][0]["value"], "offer: 2");
        let other = click(&mut isolate, &config, &url(2, "net-b"), "192.0.2.2");
        assert_eq!(other.response.status, 302, "another offer");
    }

    #[test]
    fn a_click_on_an_offer_not_served_counts_nothing() {
        // Counted clicks used to be counted before the offer was looked up, so a paused offer's
        // clicks, or made-up offer ids, added state a network's object then stored.
        let config = Arc::new(
            Config::compile(
                r#"{"version": 1,
                    "offers": [{"id": "1", "landing_url": "https://x.example/"},
                               {"id": "2", "landing_url": "https://x.example/", "status": "paused"}],
                    "rules": [{"id": "dup", "created_at": "2026-05-01", "scope": {"affiliates": ["net-7"]},
                               "strategy": {"filters": [{"type": "duplicate_ip", "max": 3, "window_hours": 24}]}}]}"#,
            )
            .unwrap(),
        );
        let mut isolate = counting();
        for offer in ["2", "99"] {
            let url = format!("https://clicks.example/c?offer_id={offer}&aff_id=net-7");
            let refused = click(&mut isolate, &config, &url, "192.0.2.1");
            assert_eq!(refused.response.status, 404, "offer {offer}");
            assert!(refused.effects.is_empty(), "{:?}", refused.effects);
        }
        let counts = isolate.counts_mut().unwrap();
        assert_eq!(counts.flush(&id("net-7"), T0 + 3_600_000), Flush::Nothing);
        // The served offer's click is counted.
        let served = click(
            &mut isolate,
            &config,
            "https://clicks.example/c?offer_id=1&aff_id=net-7",
            "192.0.2.1",
        );
        assert_eq!(served.response.status, 302);
        let counts = isolate.counts_mut().unwrap();
        assert!(matches!(
            counts.flush(&id("net-7"), T0 + 3_600_000),
            Flush::Send(_)
        ));
    }

    #[test]
    fn a_click_id_known_in_use_is_refused_without_a_question() {
        let config = config();
        let mut isolate = counting();
        // Asked before the redirect: the first use waits for the replay object.
        let url = signed(&config, "net-7", Some("c-1"));
        let (question, pending) =
            match step(&mut isolate, &config, parts(&url, "192.0.2.1", IPHONE), T0) {
                ClickStep::Ask {
                    question, pending, ..
                } => (question, pending),
                ClickStep::Done(a) => panic!("answered without asking: {:?}", a.effects),
            };
        let batch = question
            .turn
            .expect("the object was idle: this click sends");
        let outbox = isolate.outbox_mut();
        assert!(outbox.returned(&batch, &[ReplayAnswer::Fresh]).is_empty());
        let answer = outbox.answer(question.ticket).unwrap();
        let first = isolate.resume(pending, answer);
        assert_eq!(first.response.status, 302);
        assert!(decision(&first)["transaction_id"].is_string());
        // The second use is known here: refused at once.
        let again = click(&mut isolate, &config, &url, "192.0.2.2");
        assert_eq!(again.response.status, 403);
        assert_eq!(codes(&again), ["replayed"]);

        // Asked after the redirect: the first use is redirected and its question queued; the
        // second is refused with no question of its own.
        let url = signed(&config, "net-8", Some("c-2"));
        let first = click(&mut isolate, &config, &url, "192.0.2.1");
        assert_eq!(first.response.status, 302);
        assert_eq!(replay_questions(&first), 1);
        let again = click(&mut isolate, &config, &url, "192.0.2.2");
        assert_eq!(codes(&again), ["replayed"]);
        assert_eq!(replay_questions(&again), 0);
    }

    #[test]
    fn a_click_id_is_asked_of_one_of_the_objects_its_links_key_names() {
        let one = CONFIG.replace(
            r#""network-7-signing-secret-0001"}"#,
            r#""network-7-signing-secret-0001", "replay_objects": 1}"#,
        );
        let objects = |config: &Arc<Config>| {
            let mut isolate = counting();
            let mut asked: Vec<String> = (0..40)
                .map(|i| {
                    let url = signed(config, "net-7", Some(&format!("c-{i}")));
                    match step(&mut isolate, config, parts(&url, "192.0.2.1", IPHONE), T0) {
                        ClickStep::Ask { question, .. } => question.object,
                        ClickStep::Done(a) => panic!("answered without asking: {:?}", a.effects),
                    }
                })
                .collect();
            asked.sort();
            asked.dedup();
            asked
        };
        assert_eq!(
            objects(&Arc::new(Config::compile(&one).unwrap())),
            ["replay:net-7:0"]
        );
        assert!(objects(&config()).len() > 1, "the default spreads them");
    }

    #[test]
    fn a_replay_answer_is_applied_when_the_click_resumes() {
        let config = config();
        let mut isolate = counting();
        let url = signed(&config, "net-7", Some("c-3"));
        let ClickStep::Ask { pending, .. } =
            step(&mut isolate, &config, parts(&url, "192.0.2.1", IPHONE), T0)
        else {
            panic!("answered without asking");
        };
        let replayed = isolate.resume(pending, ReplayAnswer::Replayed);
        assert_eq!(replayed.response.status, 403);
        assert_eq!(codes(&replayed), ["replayed"]);
    }

    #[test]
    fn a_resumed_click_leaves_its_networks_batch_to_the_next_arrival() {
        // A click resumed after its replay answer runs in the request that delivered the answer,
        // which may not start I/O for it: it is counted, but starts no batch. The next click to
        // arrive, past the flush interval, sends the batch holding that count from its own step.
        let config = config();
        let mut isolate = counting();
        let ask = |isolate: &mut Isolate, click_id: &str, at: u64| {
            let url = signed(&config, "net-7", Some(click_id));
            match step(isolate, &config, parts(&url, "192.0.2.1", IPHONE), at) {
                ClickStep::Ask {
                    pending, effects, ..
                } => (pending, effects),
                ClickStep::Done(a) => panic!("answered without asking: {:?}", a.effects),
            }
        };
        let flushes = |effects: &[Effect]| -> Vec<Flush> {
            effects
                .iter()
                .filter_map(|e| match e {
                    Effect::Flush { step, .. } => Some(step.clone()),
                    _ => None,
                })
                .collect()
        };
        let (pending, effects) = ask(&mut isolate, "c-10", T0);
        assert_eq!(flushes(&effects), [], "nothing counted yet");
        let resumed = isolate.resume(pending, ReplayAnswer::Fresh);
        assert_eq!(resumed.response.status, 302);
        assert_eq!(
            flushes(&resumed.effects),
            [],
            "a resumed click starts no batch"
        );
        let (_, effects) = ask(&mut isolate, "c-11", T0 + 60_000);
        let sent: Vec<u32> = flushes(&effects)
            .into_iter()
            .filter_map(|f| match f {
                Flush::Send(batch) => Some(batch.flood.iter().map(|(_, clicks, _)| clicks).sum()),
                _ => None,
            })
            .collect();
        assert_eq!(
            sent,
            [1],
            "the next arrival sends the resumed click's count"
        );
    }

    #[test]
    fn a_flood_block_passes_a_validly_signed_click_where_the_network_exempts_them() {
        let config = config();
        let mut isolate = counting();
        // Past the flush interval, within the links' hour.
        let later = T0 + 10_000;
        for network in ["net-7", "net-9"] {
            click(
                &mut isolate,
                &config,
                &signed(&config, network, None),
                "192.0.2.1",
            );
            let counts = isolate.counts_mut().unwrap();
            let Flush::Send(batch) = counts.flush(&id(network), later) else {
                panic!("nothing to send for {network}");
            };
            let block = FloodBlock {
                until_ms: later + 86_400_000,
                cause: FloodCause::PerMinute,
                detail: "600 clicks in a minute".to_owned(),
            };
            let reply = Reply {
                block: Some(block),
                ..Reply::default()
            };
            counts.acked(&id(network), batch.seq, reply, later);
        }
        let run = |isolate: &mut Isolate, url: &str| {
            done(step(
                isolate,
                &config,
                parts(url, "192.0.2.1", IPHONE),
                later + 1,
            ))
        };
        let exempt = run(&mut isolate, &signed(&config, "net-7", None));
        assert_eq!(exempt.response.status, 302);
        let not_exempt = run(&mut isolate, &signed(&config, "net-9", None));
        assert_eq!(codes(&not_exempt), ["click_flood"]);
        // A forged click on the flooding network reports its signature, not the flood.
        let forged = format!("{}&sub1=x", signed(&config, "net-7", None));
        assert_eq!(codes(&run(&mut isolate, &forged)), ["invalid_signature"]);
    }

    #[test]
    fn the_decision_line_comes_before_the_flush_and_faults_before_both() {
        let config = config();
        let mut isolate = counting();
        let url = signed(&config, "net-7", None);
        let answered = click(&mut isolate, &config, &url, "not-an-address");
        let kinds: Vec<&str> = answered
            .effects
            .iter()
            .map(|e| match e {
                Effect::Log(_) => "log",
                Effect::Fault(_) => "fault",
                Effect::Analytics { .. } => "analytics",
                Effect::Flush { .. } => "flush",
                Effect::Replay { .. } => "replay",
                Effect::Forward { .. } => "forward",
                Effect::Alert { .. } => "alert",
            })
            .collect();
        assert_eq!(kinds, ["fault", "log", "flush"]);
        assert_eq!(codes(&answered), ["ip_unreadable"]);
    }

    /// The config's `log`: which clean clicks are logged, and that nothing else is left out.
    mod log_setting {
        use super::*;
        #[cfg(target_arch = "wasm32")]
        use wasm_bindgen_test::wasm_bindgen_test as test;

        fn with_log(log: &str) -> Arc<Config> {
            let doc = r#"{"version": 1, "log": LOG,
                "offers": [{"id": "1", "landing_url": "https://x.example/?t={transaction_id}"},
                           {"id": "2", "landing_url": "https://x.example/?t={transaction_id}"},
                           {"id": "3", "landing_url": "https://x.example/?t={transaction_id}"},
                           {"id": "4", "landing_url": "https://x.example/?t={transaction_id}"}],
                "lists": {"blocked_ips": ["203.0.113.0/24"], "allowed_ips": ["192.0.2.200"]},
                "rules": [
                  {"id": "bots", "created_at": "2026-01-01", "scope": {"offers": ["2"]},
                   "decline": "high", "strategy": {"filters": [{"type": "bot"}]}},
                  {"id": "watch", "created_at": "2026-01-01", "scope": {"offers": ["3"]},
                   "decline": "high", "ignore_results": true, "strategy": {"filters": [{"type": "bot"}]}},
                  {"id": "dups", "created_at": "2026-01-01", "scope": {"offers": ["4"]},
                   "decline": "high", "strategy": {"filters": [{"type": "duplicate_ip"}]}}]}"#;
            Arc::new(Config::compile(&doc.replace("LOG", log)).unwrap())
        }

        const CURL: &str = "curl/8.4.0";
        const SLACK: &str = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";

        /// Every kind of decision but a clean one: (what, offer, address, User-Agent).
        const ALWAYS: [(&str, &str, &str, &str); 5] = [
            ("blocked", "1", "203.0.113.9", IPHONE),
            ("declined", "2", "192.0.2.1", CURL),
            ("would_block", "3", "192.0.2.1", CURL),
            ("allowlisted", "2", "192.0.2.200", CURL),
            ("preview", "1", "192.0.2.1", SLACK),
        ];

        fn run(
            isolate: &mut Isolate,
            config: &Arc<Config>,
            offer: &str,
            ip: &str,
            ua: &str,
        ) -> Answered {
            let url = format!("https://clicks.example/c?offer_id={offer}&aff_id=net-1");
            done(step(isolate, config, parts(&url, ip, ua), T0))
        }

        fn lines(answered: &Answered) -> Vec<Value> {
            answered
                .effects
                .iter()
                .filter_map(|e| match e {
                    Effect::Log(line) => serde_json::from_str(line).ok(),
                    _ => None,
                })
                .collect()
        }

        /// The report's counts of net-1 this isolate would send.
        fn counted(isolate: &mut Isolate) -> crate::report::Tally {
            let counts = isolate.counts_mut().unwrap();
            let Flush::Send(batch) = counts.flush(&id("net-1"), T0 + 60_000) else {
                panic!("nothing to send");
            };
            let mut total = crate::report::Tally::default();
            // The offers' rows: the same clicks are counted again under sub IDs and countries.
            batch
                .report
                .iter()
                .filter(|(k, _)| !k.advertiser.starts_with('('))
                .for_each(|(_, t)| total.add(t));
            total
        }

        #[test]
        fn a_clean_click_is_left_out_under_none_and_every_other_decision_is_logged() {
            let config = with_log(r#""none""#);
            let mut isolate = counting();
            let clean = run(&mut isolate, &config, "1", "192.0.2.1", IPHONE);
            assert_eq!(clean.response.status, 302);
            assert!(lines(&clean).is_empty(), "{:?}", clean.effects);
            for (what, offer, ip, ua) in ALWAYS {
                let answered = run(&mut isolate, &config, offer, ip, ua);
                let line = decision(&answered);
                assert_eq!(line["log"], "none", "{what}: {line}");
                let kind = match what {
                    "blocked" | "declined" => line["verdict"] == "block",
                    "would_block" => line["verdict"] == "redirect" && line["monitor"] == true,
                    "allowlisted" => line["allowlisted"].is_string(),
                    _ => line["preview"] == true,
                };
                assert!(kind, "{what}: {line}");
            }
            // A decision made with a filter's counts unavailable: a fault, logged.
            let mut uncounted = Isolate::default();
            let fault = run(&mut uncounted, &config, "4", "192.0.2.1", IPHONE);
            assert!(
                decision(&fault)["unavailable"].is_string(),
                "{:?}",
                fault.effects
            );
            // The report counts every click, the one left out of the log among them.
            let t = counted(&mut isolate);
            assert_eq!(
                (t.clicks, t.allowed, t.blocked, t.would_block, t.previews),
                (5, 3, 2, 1, 1)
            );
        }

        #[test]
        fn all_logs_every_clean_click_as_it_always_was() {
            let mut isolate = counting();
            let default = run(
                &mut isolate,
                &with_log(r#""all""#),
                "1",
                "192.0.2.1",
                IPHONE,
            );
            let line = decision(&default);
            assert!(line.get("log").is_none(), "{line}");
            // A document without `log` logs the same line, byte for byte.
            let plain = done(step(
                &mut counting(),
                &config(),
                parts(
                    "https://clicks.example/c?offer_id=1&aff_id=net-1",
                    "192.0.2.1",
                    IPHONE,
                ),
                T0,
            ));
            let text = |a: &Answered| match a.effects.iter().find(|e| matches!(e, Effect::Log(_))) {
                Some(Effect::Log(l)) => l.clone(),
                _ => panic!("no line"),
            };
            let strip = |l: String| l[..l.find(",\"config\"").unwrap()].to_owned();
            assert_eq!(strip(text(&default)), strip(text(&plain)));
        }

        #[test]
        fn a_sample_logs_the_clean_clicks_its_transaction_ids_pick_and_says_so() {
            let config = with_log(r#"{"sample": 0.5}"#);
            let mut isolate = counting();
            let (mut logged, mut left_out) = (0, 0);
            for i in 0..64u64 {
                let url = "https://clicks.example/c?offer_id=1&aff_id=net-1";
                let key = TokenKey::new(&[9u8; 32]).unwrap();
                let arrival = Arrival::read(parts(url, "192.0.2.1", IPHONE)).unwrap();
                let nonce = i.to_le_bytes();
                let answered =
                    done(isolate.click(arrival, &config, || Some(key), T0, || Ok(nonce)));
                let tid = answered
                    .response
                    .header("location")
                    .unwrap_or_default()
                    .to_owned();
                let tid = tid.rsplit("t=").next().unwrap_or_default().to_owned();
                let lines = lines(&answered);
                assert_eq!(lines.is_empty(), !config.log.keeps(&tid), "{tid}");
                match lines.first() {
                    Some(line) => {
                        assert_eq!(line["log"]["sample"], 0.5);
                        logged += 1;
                    }
                    None => left_out += 1,
                }
            }
            assert!(
                logged > 0 && left_out > 0,
                "{logged} logged, {left_out} left out"
            );
            assert_eq!(counted(&mut isolate).clicks, 64);
        }
    }
}
