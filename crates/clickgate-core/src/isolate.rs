//! The isolate: the whole click, in the order the product promises, over the state one Worker
//! isolate keeps between clicks (its local counts, the signing breakers, the click-id outbox); and
//! what runs once per isolate around it ([`warm_up`]). On the top floor, where every other module
//! may be used.
//!
//! The edge reads the request into [`Parts`], and [`Arrival::read`] checks its sizes and routes it
//! before any config is needed. [`Isolate::click`] then runs the rest in this order: the health
//! answer, the transaction-id key, the client, the nonce, the network's signature check, the
//! click-id replay question (answered from this isolate's memory, queued to ask after the
//! redirect, or asked before it: [`ClickStep::Ask`]), the signing breaker, the isolate's counts and
//! flood view, [`decide`], the decision's log line, its counts, its analytics point, the network's
//! flush, and the response. Nothing here waits or reads a clock: what the edge has to do with the
//! outside world comes back as [`Effect`]s, carried out in order.
//!
//! A conversion postback runs the same way: [`PostbackArrival`] checks its method and takes its
//! body, [`Isolate::postback`] judges it up to the question its network's object answers
//! ([`PostbackStep::Ask`]), and [`Isolate::resume_postback`] gives its log line, its forward to
//! the tracker, its counts and the answer.

use std::sync::Arc;

use crate::alerts::{Alerts, Due, Kind, Raised};
use crate::click::{self, Arrived, ClickParams, ClientInfo, Id, Platform, RequestError, Sent};
use crate::config::cache::SlotEvent;
use crate::config::networks::ReplayCheck;
use crate::config::Config;
use crate::conversion::{self, Judging, Prior, Rejected, Rejecting};
use crate::decide::{decide, reads_sent, servable_offer, Observed};
use crate::flood::Thresholds;
use crate::http::{self, click_response, HttpResponse};
use crate::ip::client_ip;
use crate::log::{fault_line, JsonLine};
use crate::network::click_ids::{Asked, AskedAfter, Detected, Outbox, Questions, Step, Ticket};
use crate::network::home::Home;
use crate::network::keys::ClickKeys;
use crate::network::local::{Flush, FlushPolicy, LocalCounts};
use crate::network::store::NetworkCounts;
use crate::network::wire::Reply;
use crate::report::{self, ConversionRow, DataPoint};
use crate::signing::{self, Breakers, Check, ReplayAnswer};
use crate::token::{TokenKey, NONCE_LEN};
use crate::ua::UserAgent;

/// The request headers a click reads; only these cross from the runtime into wasm: the address,
/// the User-Agent and the referrer, then what the `spoof` filter reads ([`click::SENT_HEADERS`],
/// `accept` among them), said once there.
pub const READ_HEADERS: [&str; 3 + click::SENT_HEADERS.len()] = {
    const OWN: [&str; 3] = ["cf-connecting-ip", "user-agent", "referer"];
    let mut all = [""; 3 + click::SENT_HEADERS.len()];
    let mut i = 0;
    while i < all.len() {
        all[i] = if i < OWN.len() {
            OWN[i]
        } else {
            click::SENT_HEADERS[i - OWN.len()]
        };
        i += 1;
    }
    all
};

/// What the edge read of a request on the click path.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    pub method: String,
    /// The whole link as received, scheme and host included.
    pub url: String,
    /// Those of [`READ_HEADERS`] the request carries.
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
    /// [`conversion::FORWARD_SCHEDULE_MS`]; its own log line names the transaction and event.
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

/// A postback's method and parameters, read before its body: a POST's form body is added to the
/// query's parameters ([`PostbackArrival::with_body`]).
#[derive(Debug)]
pub struct PostbackArrival {
    params: String,
    post: bool,
    /// The advertiser's secret from [`conversion::SECRET_HEADER`], if the request carries one.
    header_secret: Option<String>,
}

impl PostbackArrival {
    /// The method checked before anything else is read. `Err` is the answer.
    pub fn read(
        method: &str,
        query: &str,
        header_secret: Option<String>,
    ) -> Result<PostbackArrival, HttpResponse> {
        match click::check_method(method, click::POSTBACK_METHODS) {
            Ok(()) => Ok(PostbackArrival {
                params: query.to_owned(),
                post: method.eq_ignore_ascii_case("POST"),
                header_secret,
            }),
            Err(e) => Err(http::error_response(&e, false)),
        }
    }

    /// Whether the parameters go on in a body the edge must read (up to
    /// [`conversion::MAX_BODY_BYTES`]) and hand to [`PostbackArrival::with_body`].
    pub fn wants_body(&self) -> bool {
        self.post
    }

    /// The body's parameters after the query's; `Err` (the body refused) is the answer.
    pub fn with_body(
        mut self,
        body: Result<String, RequestError>,
    ) -> Result<PostbackArrival, HttpResponse> {
        let body = body.map_err(|e| http::error_response(&e, false))?;
        self.params.push('&');
        self.params.push_str(&body);
        Ok(self)
    }
}

/// Where a postback stands after [`Isolate::postback`].
#[derive(Debug)]
pub enum PostbackStep {
    Done(Answered),
    /// The conversion waits for its network's object to say whether it saw the event before (and
    /// to record it); [`Isolate::resume_postback`] finishes it.
    Ask {
        question: SeenQuestion,
        pending: Box<PendingPostback>,
    },
}

/// What a conversion asks its network's object: whether `key` was reported before (kept until
/// `expires_ms`, and counted toward the network's conversion rate when `counts`), and with
/// `approvals`, whether its click has room left for an approved conversion under that key.
#[derive(Debug)]
pub struct SeenQuestion {
    pub home: Home,
    pub key: String,
    pub expires_ms: u64,
    pub counts: bool,
    pub approvals: Option<(String, u32)>,
    /// The click's rejection key, when the conversion's rule reads rejections.
    pub rejection: Option<String>,
}

/// Where a rejection report stands after [`rejection`]: answered, or waiting for the click's
/// network's object to keep it ([`rejection_answer`] finishes it).
#[derive(Debug)]
pub enum RejectionStep {
    Done(HttpResponse),
    Ask { home: Home, rejecting: Rejecting },
}

/// A conversion waiting for its network's object, judged on everything but that answer.
#[derive(Debug)]
pub struct PendingPostback {
    config: Arc<Config>,
    judging: Judging,
    now_ms: u64,
}

/// The state one isolate keeps between clicks. Counting starts once the edge gives it an id to
/// name its batches by ([`Isolate::start_counting`]); until then the counts' filters see nothing.
#[derive(Debug, Default)]
pub struct Isolate {
    counts: Option<LocalCounts>,
    breakers: Breakers,
    outbox: Outbox,
    next_ticket: Ticket,
    alerts: Alerts,
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
                    parts.http_protocol.clone(),
                    parts.tls_version.clone(),
                    parts.tls_cipher.clone(),
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
            .map(|q| (q.click_id.to_owned(), q.expires_ms, q.when));
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
        let (check, (click_id, expires_ms, when)) = match (check, question) {
            (Some(check), Some(question)) => (check, question),
            (check, _) => {
                return ClickStep::Done(self.finish(click, check, ReplayAnswer::NotAsked, effects))
            }
        };
        let network = &click.params.aff_id;
        let (object, use_key) = signing::replay_object(network, &click_id);
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
                        return ClickStep::Ask {
                            question: Question {
                                object,
                                ticket,
                                turn,
                                asked_ms: now_ms,
                            },
                            pending: Box::new(Pending { click, check }),
                            effects,
                        }
                    }
                }
            }
        };
        ClickStep::Done(self.finish(click, Some(check), replay, effects))
    }

    /// A click that waited for its replay answer, decided as of its arrival.
    pub fn resume(&mut self, pending: Box<Pending>, answer: ReplayAnswer) -> Answered {
        let Pending { click, check } = *pending;
        self.finish(click, Some(check), answer, Vec::new())
    }

    /// The signing verdict through the breaker, the counts, the decision, its log line, counts
    /// and analytics point, the network's flush, and the response.
    fn finish(
        &mut self,
        click: Click,
        check: Option<Check>,
        replay: ReplayAnswer,
        mut effects: Vec<Effect>,
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
        let home = Home::of(&config, &network);
        self.flush(&mut effects, network, home, now_ms);
        // The device's ledger, which this click may have counted in.
        if let Some(ledger) = keys.and_then(|k| k.ledger) {
            let home = Home::of(&config, &ledger);
            self.flush(&mut effects, ledger, home, now_ms);
        }
        Answered {
            response: click_response(&outcome, accept.as_deref(), head),
            effects,
        }
    }

    /// A postback under the config in force, up to its response or its question to the network's
    /// object. `key` is read once the request is known to be a postback; `None` means the secret
    /// is missing (the source logs why) and answers 503.
    pub fn postback(
        &mut self,
        arrival: PostbackArrival,
        config: &Arc<Config>,
        key: impl FnOnce() -> Option<TokenKey>,
        now_ms: u64,
    ) -> PostbackStep {
        let done = |response| {
            PostbackStep::Done(Answered {
                response,
                effects: Vec::new(),
            })
        };
        let Some(key) = key() else {
            return done(http::unavailable(false));
        };
        let PostbackArrival {
            params,
            header_secret,
            ..
        } = arrival;
        let judging = match conversion::parse(&params)
            .map(|p| p.with_header_secret(header_secret))
            .and_then(|p| Judging::new(config, &key, p, now_ms))
        {
            Ok(judging) => judging,
            Err(e) => return done(http::postback_error(&e)),
        };
        let pending = Box::new(PendingPostback {
            config: Arc::clone(config),
            judging,
            now_ms,
        });
        match pending.judging.duplicate_key() {
            Some((network, key, expires_ms)) => PostbackStep::Ask {
                question: SeenQuestion {
                    home: Home::of(config, &network),
                    key,
                    expires_ms,
                    counts: pending.judging.counts_toward_flood(),
                    approvals: pending.judging.approvals_key(),
                    rejection: pending.judging.rejection_key.clone(),
                },
                pending,
            },
            None => PostbackStep::Done(self.resume_postback(pending, None)),
        }
    }

    /// A conversion given what its network's object said (`None`: it was not asked, or could not
    /// say): its log line, its forward to the tracker, its count in the report and the network's
    /// flush, and the answer.
    pub fn resume_postback(
        &mut self,
        pending: Box<PendingPostback>,
        seen: Option<Prior>,
    ) -> Answered {
        let PendingPostback {
            config,
            mut judging,
            now_ms,
        } = *pending;
        // The share filters count the conversion with the network's other counts, as a click's
        // duplicate-IP count is: this isolate's view, never a wait on the network's object.
        if let Some(counts) = self.counts.as_mut().filter(|_| !judging.shares.is_empty()) {
            let (network, offer) = (judging.click.aff_id.clone(), judging.click.offer_id.clone());
            judging.judge_shares(seen == Some(Prior::Duplicate), |measure, hit, window| {
                counts.record_share(&network, &offer, measure, hit, window, now_ms)
            });
        }
        let outcome = judging.finish(seen);
        let mut effects = vec![Effect::Log(outcome.log_line(now_ms))];
        if let Some(url) = outcome.forward_url() {
            let postback = &outcome.judging.postback;
            effects.push(Effect::Forward {
                url,
                transaction_id: postback.transaction_id.clone(),
                event: postback.event.clone(),
            });
        }
        let row = report::conversion_row(&config, &outcome, now_ms);
        let home = Home::of(&config, &row.network);
        effects.append(&mut self.conversion(&row, home, now_ms));
        Answered {
            response: http::postback_response(&outcome),
            effects,
        }
    }

    /// A judged postback counted in its network's report, and the flush that may follow.
    fn conversion(&mut self, row: &ConversionRow, home: Home, now_ms: u64) -> Vec<Effect> {
        let mut effects = Vec::new();
        self.with_counts(&mut effects, |c| c.record_conversion(row, now_ms));
        self.flush(&mut effects, row.network.clone(), home, now_ms);
        effects
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
    fn with_counts<T>(
        &mut self,
        effects: &mut Vec<Effect>,
        f: impl FnOnce(&mut LocalCounts) -> T,
    ) -> Option<T> {
        let counts = self.counts.as_mut()?;
        let out = f(counts);
        effects.extend(counts.take_eviction_line().map(Effect::Log));
        Some(out)
    }

    fn flush(&mut self, effects: &mut Vec<Effect>, network: Id, home: Home, now_ms: u64) {
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

/// Runs the whole click path once on a built-in config: a browser click and a bot click, their
/// responses and log lines. The Worker calls it when its module starts, so that the engine compiles
/// the code of the click path (wasm is compiled function by function on first use) and builds the
/// bot patterns then, and not inside the first real click's CPU budget. Returns what it ran, with a
/// byte count so the work cannot be optimised away.
/// Another system's rejection of a transaction id under the config in force, up to its answer
/// or its question to the click's network's object. `key` as for [`Isolate::postback`].
pub fn rejection(
    arrival: PostbackArrival,
    config: &Config,
    key: impl FnOnce() -> Option<TokenKey>,
    now_ms: u64,
) -> RejectionStep {
    let Some(key) = key() else {
        return RejectionStep::Done(http::unavailable(false));
    };
    match Rejecting::new(config, &key, &arrival.params, arrival.header_secret, now_ms) {
        Ok(rejecting) => RejectionStep::Ask {
            home: Home::of(config, &rejecting.network),
            rejecting,
        },
        Err(e) => RejectionStep::Done(http::rejection_response(Err(e))),
    }
}

/// The answer to a rejection given what the object kept (`None`: it did not answer), and its line
/// in the decision log.
pub fn rejection_answer(
    rejecting: &Rejecting,
    kept: Option<&Rejected>,
    now_ms: u64,
) -> (HttpResponse, Option<String>) {
    let line = kept.map(|kept| {
        JsonLine::new()
            .str("event", "rejection")
            .str("ts", &crate::time::rfc3339_ms(now_ms))
            .str("transaction_id", &rejecting.transaction_id)
            .str("aff_id", rejecting.network.as_str())
            .str("reason", &kept.reason)
            .bool("new", kept.new)
            .bool("judged", rejecting.judged)
            .finish()
    });
    (http::rejection_response(Ok((rejecting, kept))), line)
}

pub fn warm_up() -> WarmedUp {
    let mut done = WarmedUp::default();
    const CONFIG: &str = r#"{"version": 1, "advertisers": [{"id": "a"}],
        "offers": [{"id": "1", "advertiser_id": "a", "landing_url": "https://x.example/?t={transaction_id}&s={sub1}", "geo": {"deny": ["KP"]}}],
        "lists": {"blocked_ips": ["203.0.113.0/24"], "datacenter_asns": [64496], "datacenter_ips": ["100.64.0.0/10"],
                  "fraud_ips": ["198.51.100.1"], "blocked_referrers": ["*.spam.example"], "allowed_affiliates": ["t"]},
        "rules": [{"id": "w", "created_at": "2026-01-01", "scope": {"offers": ["1"]}, "decline": "high",
                   "strategy": {"filters": [{"type": "bot"}, {"type": "fraud_database"}, {"type": "datacenter_vpn"},
                                            {"type": "geo"}, {"type": "referrer"}, {"type": "old_os_browser"},
                                            {"type": "spoof"}]}},
                  {"id": "p", "created_at": "2026-02-01", "priority": 1, "decline": "medium_and_higher", "strategy": "lead",
                   "scope": {"advertisers": ["a"], "affiliates": {"include": "all", "exclude": ["x"]}}},
                  {"id": "q", "created_at": "2026-03-01", "strategy": "mobile_cpi", "scope": {"affiliates": ["n", "m"]}}]}"#;
    let Ok(config) = Config::compile(CONFIG) else {
        return done;
    };
    let Ok(key) = TokenKey::new(&[1u8; 32]) else {
        return done;
    };
    let config = Arc::new(config);
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

    use crate::flood::{FloodBlock, FloodCause};
    use crate::network::local::Flush;
    use crate::time::MINUTE_MS;
    use serde_json::Value;

    /// 2026-06-01T00:00:00Z.
    const T0: u64 = 1_780_272_000_000;
    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Version/17.4 Mobile/15E148 Safari/604.1";
    const CONFIG: &str = r#"{"version": 1,
        "offers": [{"id": "1", "landing_url": "https://x.example/?t={transaction_id}"}],
        "lists": {"blocked_ips": ["203.0.113.0/24"]},
        "networks": [
            {"id": "net-7", "signing": {"mode": "enforce", "keys": [{"id": "k1", "secret": "network-7-signing-secret-0001"}]}},
            {"id": "net-8", "signing": {"mode": "enforce", "replay_check": "after_redirect",
                                        "keys": [{"id": "k1", "secret": "network-8-signing-secret-0001"}]}},
            {"id": "net-9", "signing": {"mode": "enforce", "flood_exempt": false,
                                        "keys": [{"id": "k1", "secret": "network-9-signing-secret-0001"}]}}]}"#;

    fn config() -> Arc<Config> {
        Arc::new(Config::compile(CONFIG).unwrap())
    }

    fn id(network: &str) -> Id {
        Id::parse(network).unwrap()
    }

    /// The offer's link for `network`, signed with its key, valid for an hour from `T0`.
    fn signed(config: &Config, network: &str, click_id: Option<&str>) -> String {
        let policy = &config.networks[&id(network)];
        let link = format!("https://clicks.example/c?offer_id=1&aff_id={network}");
        signing::sign_link(policy, &policy.keys[0], &link, T0 / 1000 + 3600, click_id)
    }

    fn parts(url: &str, ip: &str, ua: &str) -> Parts {
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

    fn counting() -> Isolate {
        let mut isolate = Isolate::default();
        isolate.start_counting(7, FlushPolicy::default());
        isolate
    }

    fn step(isolate: &mut Isolate, config: &Arc<Config>, parts: Parts, now_ms: u64) -> ClickStep {
        let key = TokenKey::new(&[9u8; 32]).unwrap();
        let arrival = Arrival::read(parts).unwrap();
        isolate.click(arrival, config, || Some(key), now_ms, || Ok([3; NONCE_LEN]))
    }

    fn done(step: ClickStep) -> Answered {
        match step {
            ClickStep::Done(answered) => answered,
            ClickStep::Ask { question, .. } => panic!("asked {question:?}"),
        }
    }

    fn click(isolate: &mut Isolate, config: &Arc<Config>, url: &str, ip: &str) -> Answered {
        done(step(isolate, config, parts(url, ip, IPHONE), T0))
    }

    /// The click's decision line among the effects.
    fn decision(answered: &Answered) -> Value {
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

    fn codes(answered: &Answered) -> Vec<String> {
        decision(answered)["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap().to_owned())
            .collect()
    }

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

    mod alerting {
        use super::*;
        use crate::alerts::Kind;
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
            let mut sent = Vec::new();
            for i in 0..10 {
                sent.extend(request(
                    &mut isolate,
                    &config,
                    &genuine,
                    "192.0.2.1",
                    T0 + i * 1_000,
                ));
            }
            assert!(sent.is_empty(), "{sent:?}");
            for i in 0..10 {
                sent.extend(request(
                    &mut isolate,
                    &config,
                    &forged,
                    "192.0.2.1",
                    T0 + 60_000 + i * 1_000,
                ));
            }
            assert_eq!(sent.len(), 1, "{sent:?}");
            assert_eq!(sent[0].0, Kind::BreakerOpened);
            assert_eq!(sent[0].1["network"], "net-7");
            // The signer is fixed: the breaker closes, a kind of its own.
            for i in 0..10 {
                sent.extend(request(
                    &mut isolate,
                    &config,
                    &genuine,
                    "192.0.2.1",
                    T0 + 80_000 + i * 1_000,
                ));
            }
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

    mod postbacks {
        use super::*;
        use crate::token::{ClickToken, TokenVerdict};
        #[cfg(target_arch = "wasm32")]
        use wasm_bindgen_test::wasm_bindgen_test as test;

        const FORWARDING: &str = r#"{"version": 1,
            "advertisers": [{"id": "adv", "forward": {
                "approved": "https://tracker.example/pb?click={param:click_id}&ev={event}",
                "rejected": "https://tracker.example/pb?click={param:click_id}&status={status}&why={reason}"}}],
            "offers": [{"id": "1", "advertiser_id": "adv", "landing_url": "https://x.example/"}]}"#;

        fn forwarding() -> Arc<Config> {
            Arc::new(Config::compile(FORWARDING).unwrap())
        }

        fn key() -> TokenKey {
            TokenKey::new(&[9u8; 32]).unwrap()
        }

        /// A transaction id for a click on offer 1 from net-7, ten minutes before `T0`.
        fn tid(verdict: TokenVerdict) -> String {
            ClickToken {
                issued_ms: T0 - 600_000,
                nonce: [1; NONCE_LEN],
                verdict,
                offer_id: id("1"),
                aff_id: id("net-7"),
                profile: 0,
            }
            .seal(&key())
        }

        fn arrive(query: &str) -> PostbackArrival {
            PostbackArrival::read("GET", query, None).unwrap()
        }

        fn postback(isolate: &mut Isolate, arrival: PostbackArrival) -> PostbackStep {
            isolate.postback(arrival, &forwarding(), || Some(key()), T0)
        }

        /// The postback through its question, answered `seen`.
        fn judged(isolate: &mut Isolate, arrival: PostbackArrival, seen: Prior) -> Answered {
            match postback(isolate, arrival) {
                PostbackStep::Ask { pending, .. } => isolate.resume_postback(pending, Some(seen)),
                PostbackStep::Done(a) => panic!("answered without asking: {:?}", a.effects),
            }
        }

        fn kinds(answered: &Answered) -> Vec<&'static str> {
            answered
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
                .collect()
        }

        fn forwarded(answered: &Answered) -> Vec<&str> {
            answered
                .effects
                .iter()
                .filter_map(|e| match e {
                    Effect::Forward { url, .. } => Some(url.as_str()),
                    _ => None,
                })
                .collect()
        }

        fn conversion_line(answered: &Answered) -> Value {
            match answered.effects.first() {
                Some(Effect::Log(line)) => serde_json::from_str(line).unwrap(),
                other => panic!("the first effect is not the log line: {other:?}"),
            }
        }

        const SPAM: &str = r#"{"version": 1,
            "offers": [{"id": "1", "landing_url": "https://x.example/?t={transaction_id}"}],
            "rules": [{"id": "spam", "created_at": "2026-05-01", "scope": {"offers": ["1"]}, "level": "both",
                       "strategy": {"filters": [{"type": "click_spam", "seconds": 7200, "percent": 50, "min": 4}]}}]}"#;

        #[test]
        fn an_affiliate_whose_conversions_all_come_after_two_hours_is_judged_click_spam() {
            let cfg = Arc::new(Config::compile(SPAM).unwrap());
            let mut isolate = counting();
            let late = |n: u8| {
                ClickToken {
                    issued_ms: T0 - 3 * crate::time::HOUR_MS,
                    nonce: [n; NONCE_LEN],
                    verdict: TokenVerdict::Redirected,
                    offer_id: id("1"),
                    aff_id: id("net-7"),
                    profile: 0,
                }
                .seal(&key())
            };
            let convert = |isolate: &mut Isolate, n: u8, seen: Prior| {
                let arrival = arrive(&format!("transaction_id={}", late(n)));
                let PostbackStep::Ask { pending, .. } =
                    isolate.postback(arrival, &cfg, || Some(key()), T0)
                else {
                    panic!("a judged postback asks its object")
                };
                conversion_line(&isolate.resume_postback(pending, Some(seen)))
            };
            for n in 1..=3 {
                let line = convert(&mut isolate, n, Prior::Fresh);
                assert_eq!(line["status"], "approved", "short of the minimum: {line}");
            }
            let fourth = convert(&mut isolate, 4, Prior::Fresh);
            assert_eq!(fourth["status"], "invalid");
            assert_eq!(fourth["reasons"][0]["code"], "click_spam");
            assert_eq!(
                fourth["shares"]["click_spam"],
                serde_json::json!({"share": 1, "bound": 0.5, "over": 4, "of": 4})
            );
            // A duplicate is judged on the share without counting toward it again.
            let again = convert(&mut isolate, 4, Prior::Duplicate);
            assert_eq!(again["shares"]["click_spam"]["of"], 4);
            // The rule judges clicks too: the affiliate's next click gets the filter's points.
            let url = "https://clicks.example/c?offer_id=1&aff_id=net-7";
            let answered = done(step(
                &mut isolate,
                &cfg,
                parts(url, "192.0.2.1", IPHONE),
                T0,
            ));
            assert_eq!(codes(&answered), ["click_spam"]);
            assert_eq!(decision(&answered)["verdict"], "block");
            let url = "https://clicks.example/c?offer_id=1&aff_id=net-8";
            let other = done(step(
                &mut isolate,
                &cfg,
                parts(url, "192.0.2.1", IPHONE),
                T0,
            ));
            assert_eq!(
                codes(&other),
                Vec::<String>::new(),
                "another affiliate's share is its own"
            );
        }

        #[test]
        fn the_log_line_comes_before_the_forward_and_the_flush() {
            let mut isolate = counting();
            let query = format!(
                "transaction_id={}&click_id=c9",
                tid(TokenVerdict::Redirected)
            );
            let answered = judged(&mut isolate, arrive(&query), Prior::Fresh);
            assert_eq!(kinds(&answered), ["log", "forward", "flush"]);
            assert_eq!(answered.response.status, 200);
            let line = conversion_line(&answered);
            assert_eq!(
                (line["event"].as_str(), line["status"].as_str()),
                (Some("conversion"), Some("approved"))
            );
            let Some(Effect::Forward {
                transaction_id,
                event,
                ..
            }) = answered.effects.get(1)
            else {
                panic!("{:?}", answered.effects);
            };
            assert_eq!(
                (transaction_id.as_str(), event.as_str()),
                (tid(TokenVerdict::Redirected).as_str(), "conversion")
            );
        }

        #[test]
        fn the_question_asks_the_click_s_network_object_with_its_approvals() {
            let mut isolate = counting();
            let query = format!("transaction_id={}", tid(TokenVerdict::Redirected));
            let PostbackStep::Ask { question, .. } = postback(&mut isolate, arrive(&query)) else {
                panic!("answered without asking");
            };
            assert_eq!(question.home, Home::of(&forwarding(), &id("net-7")));
            assert!(question.key.starts_with("cv/"), "{}", question.key);
            assert!(question.expires_ms > T0);
            // Without its advertiser's secret, an approval never counts toward the flood ceiling.
            assert!(!question.counts);
            assert_eq!(question.approvals.map(|(_, max)| max), Some(1));
            // A flagged click's conversion cannot be approved: no approval is asked for.
            let flagged = format!("transaction_id={}", tid(TokenVerdict::Flagged));
            let PostbackStep::Ask { question, .. } = postback(&mut isolate, arrive(&flagged))
            else {
                panic!("answered without asking");
            };
            assert_eq!(question.approvals, None);
        }

        #[test]
        fn a_duplicate_is_never_forwarded() {
            let mut isolate = counting();
            let query = format!(
                "transaction_id={}&click_id=c9",
                tid(TokenVerdict::Redirected)
            );
            let again = judged(&mut isolate, arrive(&query), Prior::Duplicate);
            assert_eq!(kinds(&again), ["log", "flush"]);
            assert_eq!(
                conversion_line(&again)["reasons"][0]["code"],
                "duplicate_conversion"
            );
            // Rejected for another reason, the same conversion goes to the `rejected` URL.
            let flagged = format!("transaction_id={}&click_id=c9", tid(TokenVerdict::Flagged));
            let rejected = judged(&mut isolate, arrive(&flagged), Prior::Fresh);
            assert_eq!(
                forwarded(&rejected),
                ["https://tracker.example/pb?click=c9&status=rejected&why=flagged_click"]
            );
        }

        #[test]
        fn a_forward_url_carries_the_params_of_the_query_and_the_body() {
            let mut isolate = counting();
            let query = format!("transaction_id={}", tid(TokenVerdict::Redirected));
            let arrival = PostbackArrival::read("POST", &query, None).unwrap();
            assert!(arrival.wants_body());
            let arrival = arrival.with_body(Ok("click_id=from-body&event=sale".to_owned()));
            let answered = judged(&mut isolate, arrival.unwrap(), Prior::Fresh);
            assert_eq!(
                forwarded(&answered),
                ["https://tracker.example/pb?click=from-body&ev=sale"]
            );
        }

        #[test]
        fn an_unknown_transaction_gets_400_and_no_effects() {
            let mut isolate = counting();
            let forged = format!("transaction_id={}x", tid(TokenVerdict::Redirected));
            let PostbackStep::Done(answered) = postback(&mut isolate, arrive(&forged)) else {
                panic!("a forged transaction id was asked about");
            };
            assert_eq!(answered.response.status, 400);
            assert!(answered.response.body.contains("unknown_transaction"));
            assert!(answered.effects.is_empty(), "{:?}", answered.effects);
            let counts = isolate.counts_mut().unwrap();
            assert_eq!(counts.flush(&id("net-7"), T0 + 3_600_000), Flush::Nothing);
        }

        #[test]
        fn a_status_not_judged_is_answered_without_a_question() {
            let mut isolate = counting();
            let query = format!(
                "transaction_id={}&status=declined",
                tid(TokenVerdict::Redirected)
            );
            let PostbackStep::Done(answered) = postback(&mut isolate, arrive(&query)) else {
                panic!("asked about a status that is not judged");
            };
            assert_eq!(conversion_line(&answered)["status"], "not_judged");
            assert!(forwarded(&answered).is_empty());
        }

        #[test]
        fn the_method_and_the_body_are_checked_before_the_key() {
            let refused = PostbackArrival::read("PUT", "transaction_id=x", None).unwrap_err();
            assert_eq!(refused.status, 405);
            assert!(!arrive("transaction_id=x").wants_body());
            let too_large = RequestError::BodyTooLarge {
                limit: conversion::MAX_BODY_BYTES,
            };
            let arrival = PostbackArrival::read("POST", "", None).unwrap();
            assert_eq!(arrival.with_body(Err(too_large)).unwrap_err().status, 413);
            // Without the key nothing is judged.
            let query = format!("transaction_id={}", tid(TokenVerdict::Redirected));
            let step = counting().postback(arrive(&query), &forwarding(), || None, T0);
            let PostbackStep::Done(answered) = step else {
                panic!("asked without a key");
            };
            assert_eq!(answered.response.status, 503);
            assert!(answered.effects.is_empty(), "{:?}", answered.effects);
        }

        /// Offer 1's advertiser with a secret, its conversions judged by a rule reading rejections.
        fn rejecting() -> Config {
            Config::compile(
                r#"{"version": 1,
                    "advertisers": [{"id": "adv", "postback_secret": "adv-postback-secret"}],
                    "offers": [{"id": "1", "advertiser_id": "adv", "landing_url": "https://x.example/"}],
                    "rules": [{"id": "mmp", "created_at": "2026-11-01", "scope": {"offers": ["1"]},
                               "level": "conversion", "strategy": "mobile_cpi"}]}"#,
            )
            .unwrap()
        }

        fn reject(query: &str) -> RejectionStep {
            rejection(arrive(query), &rejecting(), || Some(key()), T0)
        }

        fn body(response: &HttpResponse) -> Value {
            serde_json::from_str(&response.body).unwrap()
        }

        #[test]
        fn a_rejection_asks_the_click_s_network_object_and_answers_what_it_kept() {
            let t = tid(TokenVerdict::Redirected);
            let query =
                format!("transaction_id={t}&reason=install+rejected&secret=adv-postback-secret");
            let RejectionStep::Ask { home, rejecting: r } = reject(&query) else {
                panic!("answered without asking");
            };
            assert_eq!(home, Home::of(&rejecting(), &id("net-7")));
            assert_eq!(r.key, crate::stored::rejection_key(&t));
            let kept = Rejected {
                reason: "install rejected".into(),
                new: true,
            };
            let (response, line) = rejection_answer(&r, Some(&kept), T0);
            assert_eq!(response.status, 200);
            assert_eq!(
                body(&response),
                serde_json::json!({"transaction_id": t, "status": "rejected",
                                   "reason": "install rejected", "new": true, "judged": true})
            );
            let line: Value = serde_json::from_str(&line.unwrap()).unwrap();
            assert_eq!(
                (&line["event"], &line["reason"], &line["aff_id"]),
                (
                    &"rejection".into(),
                    &"install rejected".into(),
                    &"net-7".into()
                )
            );
            // The object did not answer: retry later, nothing logged as kept.
            let (response, line) = rejection_answer(&r, None, T0);
            assert_eq!((response.status, line), (503, None));
        }

        #[test]
        fn an_unknown_transaction_is_404_and_bad_auth_401_without_asking() {
            let unknown = reject("transaction_id=nope&reason=r&secret=adv-postback-secret");
            let RejectionStep::Done(response) = unknown else {
                panic!("asked about an id never issued");
            };
            assert_eq!(response.status, 404);
            assert_eq!(body(&response)["error"]["code"], "unknown_transaction");
            let t = tid(TokenVerdict::Redirected);
            for query in [
                format!("transaction_id={t}&reason=r"),
                format!("transaction_id={t}&reason=r&secret=wrong-postback-secret"),
            ] {
                let RejectionStep::Done(response) = reject(&query) else {
                    panic!("asked without the secret: {query}");
                };
                assert_eq!(response.status, 401, "{query}");
            }
            let RejectionStep::Done(response) = reject(&format!("transaction_id={t}")) else {
                panic!("asked without a reason");
            };
            assert_eq!(response.status, 400);
            let step = rejection(
                arrive("transaction_id=x&reason=r"),
                &rejecting(),
                || None,
                T0,
            );
            assert!(matches!(step, RejectionStep::Done(r) if r.status == 503));
        }

        #[test]
        fn a_conversion_under_a_rule_reading_rejections_asks_for_the_click_s_rejection() {
            let t = tid(TokenVerdict::Redirected);
            let query = format!("transaction_id={t}&secret=adv-postback-secret");
            let step =
                counting().postback(arrive(&query), &Arc::new(rejecting()), || Some(key()), T0);
            let PostbackStep::Ask { question, pending } = step else {
                panic!("answered without asking");
            };
            assert_eq!(question.rejection, Some(crate::stored::rejection_key(&t)));
            let answered =
                counting().resume_postback(pending, Some(Prior::Rejected("fraud".into())));
            assert_eq!(
                body(&answered.response)["reasons"],
                serde_json::json!(["third_party_rejection"])
            );
            // The forwarding config's offer has no such rule: nothing is asked.
            let plain = format!("transaction_id={t}");
            let PostbackStep::Ask { question, .. } = postback(&mut counting(), arrive(&plain))
            else {
                panic!("answered without asking");
            };
            assert_eq!(question.rejection, None);
        }
    }
}
