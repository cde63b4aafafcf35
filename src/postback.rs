//! Conversion postbacks: judged in the core; the edge reads the request, asks the network's
//! object whether the event was reported before, and carries out what the core asks for.

use std::cell::Cell;

use clickgate_core::alerts::{self, Kind};
use clickgate_core::click;
use clickgate_core::config::Config;
use clickgate_core::conversion;
use clickgate_core::http;
use clickgate_core::isolate::{self, PostbackArrival, PostbackStep, RejectionStep};
use worker::js_sys;
use worker::wasm_bindgen::JsCast as _;
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::web_sys;
use worker::{console_error, console_log, Context, Env, Request, Result};

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
        console_log!("{line}");
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

thread_local! {
    // Forwards and alerts this isolate has in flight, against conversion::MAX_FORWARDS_IN_FLIGHT.
    static IN_FLIGHT: Cell<usize> = const { Cell::new(0) };
}

/// Sends a judged conversion on to the tracker, after the response, on the core's schedule; logs
/// how it ended. A tracker that answers 2xx has it; an error or no answer is tried again.
pub(crate) async fn forward(url: String, tid: String, event: String) {
    let line = |result: &str, attempts: usize, detail: Option<&str>| {
        conversion::forward_line(&tid, &event, result, attempts, detail, crate::now_ms())
    };
    match deliver(&url, None, "tracker").await {
        Ok(attempts) => console_log!("{}", line("sent", attempts, None)),
        Err((0, problem)) => console_error!("{}", line("dropped", 0, Some(&problem))),
        Err((tried, problem)) => console_error!("{}", line("failed", tried, Some(&problem))),
    }
}

/// POSTs an alert's JSON body to the operator's webhook, after the response, on the forwards'
/// schedule; a webhook that is down costs the clicks nothing but this line.
pub(crate) async fn alert(url: String, kind: Kind, body: String) {
    match deliver(&url, Some(&body), "webhook").await {
        Ok(n) => console_log!("{}", alerts::delivery_line(kind, Ok(n), crate::now_ms())),
        Err((n, problem)) => {
            let sent = Err((n, problem.as_str()));
            console_error!("{}", alerts::delivery_line(kind, sent, crate::now_ms()))
        }
    }
}

/// Sends a GET (or, with a body, a JSON POST) until it is answered 2xx, on
/// [`conversion::FORWARD_SCHEDULE_MS`]: the attempts it took, or those made and the last problem
/// (none made: too many in flight), naming the server as `who`. The runtime's own fetch and timer are called directly: the
/// SDK's request and response wrappers cost the Worker's size more than this whole function.
async fn deliver(
    url: &str,
    body: Option<&str>,
    who: &str,
) -> std::result::Result<usize, (usize, String)> {
    if IN_FLIGHT.with(Cell::get) >= conversion::MAX_FORWARDS_IN_FLIGHT {
        return Err((0, "too many forwards in flight".to_owned()));
    }
    IN_FLIGHT.with(|n| n.set(n.get() + 1));
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let mut problem = String::new();
    let mut sent = None;
    let mut tried = 0;
    for (attempt, wait_ms) in conversion::FORWARD_SCHEDULE_MS.iter().enumerate() {
        tried = attempt + 1;
        if *wait_ms > 0 {
            let ms = i32::try_from(*wait_ms).unwrap_or(i32::MAX);
            let timer = js_sys::Promise::new(&mut |wake, _| {
                let _ = global.set_timeout_with_callback_and_timeout_and_arguments_0(&wake, ms);
            });
            let _ = JsFuture::from(timer).await;
        }
        let request = match body {
            None => global.fetch_with_str(url),
            Some(body) => {
                let init = web_sys::RequestInit::new();
                init.set_method("POST");
                init.set_body(&body.into());
                let headers = web_sys::Headers::new();
                if let Ok(headers) = &headers {
                    let _ = headers.set("content-type", "application/json");
                    init.set_headers(headers);
                }
                global.fetch_with_str_and_init(url, &init)
            }
        };
        match JsFuture::from(request).await {
            Ok(reply) => {
                let status = reply.unchecked_into::<web_sys::Response>().status();
                if (200..300).contains(&status) {
                    sent = Some(tried);
                    break;
                }
                problem = format!("the {who} answered {status}");
            }
            Err(e) => problem = e.as_string().unwrap_or_else(|| format!("{e:?}")),
        }
    }
    IN_FLIGHT.with(|n| n.set(n.get().saturating_sub(1)));
    sent.ok_or((tried, problem))
}
