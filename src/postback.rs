//! Conversion postbacks: judged in the core; the edge reads the request, asks the network's
//! object whether the event was reported before, and carries out what the core asks for.

use clickgate_core::click;
use clickgate_core::config::Config;
use clickgate_core::conversion;
use clickgate_core::http;
use clickgate_core::isolate::{self, PostbackArrival, PostbackStep, RejectionStep};
use worker::worker_sys::web_sys;
use worker::{Context, Env, Request, Result};

use crate::console::log;
use crate::io::{carry_out, read_body, respond, token_key};
use crate::{config, objects};

/// A conversion postback, run by the isolate: the request read, the network's object asked when
/// the core has a question for it, the core's effects carried out, its answer sent.
/// `method` is the runtime's own: the SDK's `Request::method` reads a method it has no name for
/// (`PROPFIND`, `LOCK`) as GET. A rejection (`rejection`: [`conversion::REJECTION_PATH`]) is
/// read the same way, then kept by [`rejection`].
pub(crate) async fn postback(
    req: Request,
    env: &Env,
    ctx: &Context,
    (method, query): (&str, &str),
    rejection: bool,
    now_ms: u64,
) -> Result<web_sys::Response> {
    let header_secret = req.headers().get(conversion::SECRET_HEADER).ok().flatten();
    let mut arrival = match PostbackArrival::read(method, query, header_secret) {
        Ok(arrival) => arrival,
        Err(response) => return respond(response),
    };
    if arrival.wants_body() {
        let body = read_body(&req, conversion::MAX_BODY_BYTES).await;
        arrival = match arrival.with_body(body) {
            Ok(arrival) => arrival,
            Err(response) => return respond(response),
        };
    }
    let Some(config) = config::current(env, ctx, now_ms).await else {
        return respond(http::unavailable(false));
    };
    if rejection {
        return self::rejection(env, arrival, &config, now_ms).await;
    }
    let step = objects::with_counting(env, |isolate| {
        isolate.postback(arrival, &config, || token_key(env), now_ms)
    });
    let answered = match step {
        PostbackStep::Done(answered) => answered,
        PostbackStep::Ask { question, pending } => {
            let seen = objects::conversion_seen(env, question).await;
            objects::with_counting(env, |isolate| isolate.resume_postback(pending, seen))
        }
    };
    carry_out(env, ctx, answered.effects);
    // A postback, like a click, drives the batches of counts that other networks left unsent.
    let stranded = objects::with_counting(env, |isolate| isolate.drive_stranded(&config, now_ms));
    carry_out(env, ctx, stranded);
    respond(answered.response)
}

/// `/rejection`: another system reports a transaction id as rejected. The core reads and
/// authenticates it; the click's network's object keeps it; the core answers.
async fn rejection(
    env: &Env,
    arrival: PostbackArrival,
    config: &Config,
    now_ms: u64,
) -> Result<web_sys::Response> {
    let (home, rejecting) = match isolate::rejection(arrival, config, || token_key(env), now_ms) {
        RejectionStep::Done(response) => return respond(response),
        RejectionStep::Ask { home, rejecting } => (home, rejecting),
    };
    let kept = objects::reject(env, &home, &rejecting).await;
    let (response, line) = isolate::rejection_answer(&rejecting, kept.as_ref(), now_ms);
    if let Some(line) = line {
        log(&line);
    }
    respond(response)
}

/// `GET /verdict?transaction_id=…`: a click's verdict for the tracker that asks before it pays,
/// answered by the core from the transaction id alone, with the advertiser's secret.
pub(crate) async fn verdict(
    req: Request,
    env: &Env,
    ctx: &Context,
    method: &str,
    query: &str,
    now_ms: u64,
) -> Result<web_sys::Response> {
    if let Err(e) = click::check_method(method, click::CLICK_METHODS) {
        return respond(http::error_response(&e, false));
    }
    let Some(config) = config::current(env, ctx, now_ms).await else {
        return respond(http::unavailable(false));
    };
    let Some(key) = token_key(env) else {
        return respond(http::unavailable(false));
    };
    let header_secret = req.headers().get(conversion::SECRET_HEADER).ok().flatten();
    respond(http::verdict_response(conversion::click_verdict(
        &config,
        &key,
        query,
        header_secret,
    )))
}
