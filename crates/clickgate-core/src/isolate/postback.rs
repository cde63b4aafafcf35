//! A conversion postback, from its method and parameters ([`PostbackArrival`]) to its answer
//! ([`Isolate::postback`]), and another system's rejection of a click's transaction
//! ([`rejection`]).

use std::sync::Arc;

use crate::click::{self, RequestError};
use crate::config::Config;
use crate::conversion::{self, Judging, Prior, Rejected, Rejecting};
use crate::http::{self, HttpResponse};
use crate::log::JsonLine;
use crate::network::home::Home;
use crate::report::{self, ConversionRow};
use crate::token::TokenKey;

use super::state::{Answered, Effect, Isolate};

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

impl Isolate {
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
}

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

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::*;
    use crate::network::local::Flush;
    use crate::token::{ClickToken, TokenVerdict, NONCE_LEN};
    use serde_json::Value;
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
        let PostbackStep::Ask { question, .. } = postback(&mut isolate, arrive(&flagged)) else {
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
        let step = counting().postback(arrive(&query), &Arc::new(rejecting()), || Some(key()), T0);
        let PostbackStep::Ask { question, pending } = step else {
            panic!("answered without asking");
        };
        assert_eq!(question.rejection, Some(crate::stored::rejection_key(&t)));
        let answered = counting().resume_postback(pending, Some(Prior::Rejected("fraud".into())));
        assert_eq!(
            body(&answered.response)["reasons"],
            serde_json::json!(["third_party_rejection"])
        );
        // The forwarding config's offer has no such rule: nothing is asked.
        let plain = format!("transaction_id={t}");
        let PostbackStep::Ask { question, .. } = postback(&mut counting(), arrive(&plain)) else {
            panic!("answered without asking");
        };
        assert_eq!(question.rejection, None);
    }
}
