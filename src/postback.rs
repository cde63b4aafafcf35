//! Conversion postbacks: judged in the core; the network's object says whether the event was
//! reported before.

use std::cell::Cell;

use clickgate_core::click;
use clickgate_core::conversion;
use clickgate_core::http;
use clickgate_core::network::home::Home;
use clickgate_core::report;
use worker::js_sys;
use worker::wasm_bindgen::JsCast as _;
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::web_sys;
use worker::{console_error, console_log, Context, Env, Request, Result};

use crate::io::{carry_out, read_body, respond, token_key};
use crate::{config, objects};

/// A conversion postback: judged in the core against the click its transaction id carries; the
/// network's object answers whether it was reported before. `method` is the runtime's own: the
/// SDK's `Request::method` reads a method it has no name for (`PROPFIND`, `LOCK`) as GET.
pub(crate) async fn postback(
    req: Request,
    env: &Env,
    ctx: &Context,
    method: &str,
    query: &str,
    now_ms: u64,
) -> Result<web_sys::Response> {
    if let Err(e) = click::check_method(method, click::POSTBACK_METHODS) {
        return respond(http::error_response(&e, false));
    }
    let mut params = query.to_owned();
    if method.eq_ignore_ascii_case("POST") {
        let body = match read_body(&req, conversion::MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(e) => return respond(http::error_response(&e, false)),
        };
        params.push('&');
        params.push_str(&body);
    }
    let Some(config) = config::current(env, ctx, now_ms).await else {
        return respond(http::unavailable(false));
    };
    let Some(key) = token_key(env) else {
        return respond(http::unavailable(false));
    };
    let header_secret = req.headers().get(conversion::SECRET_HEADER).ok().flatten();
    let judging = match conversion::parse(&params)
        .map(|p| p.with_header_secret(header_secret))
        .and_then(|p| conversion::Judging::new(&config, &key, p, now_ms))
    {
        Ok(j) => j,
        Err(e) => return respond(http::postback_error(&e)),
    };
    // `None` when nothing needs asking or the object did not answer (its fault is logged).
    let seen = match judging.duplicate_key() {
        Some((network, key, until)) => {
            objects::conversion_seen(
                env,
                &Home::of(&config, &network),
                &key,
                until,
                judging.counts_toward_flood(),
                judging.approvals_key(),
            )
            .await
        }
        None => None,
    };
    let outcome = judging.finish(seen);
    console_log!("{}", outcome.log_line(now_ms));
    if let Some(url) = outcome.forward_url() {
        let j = &outcome.judging;
        let (tid, event) = (j.postback.transaction_id.clone(), j.postback.event.clone());
        ctx.wait_until(forward(url, tid, event));
    }
    let row = report::conversion_row(&config, &outcome, now_ms);
    let home = Home::of(&config, &row.network);
    let effects = objects::with_counting(env, |isolate| isolate.conversion(&row, home, now_ms));
    carry_out(env, ctx, effects);
    respond(http::postback_response(&outcome))
}

thread_local! {
    // Forwards this isolate has in flight, against conversion::MAX_FORWARDS_IN_FLIGHT.
    static IN_FLIGHT: Cell<usize> = const { Cell::new(0) };
}

/// Sends a judged conversion on to the tracker, after the response, on the core's schedule; logs
/// how it ended. A tracker that answers 2xx has it; an error or no answer is tried again. The
/// runtime's own fetch and timer are called directly: the SDK's request and response wrappers
/// cost the Worker's size more than this whole function.
async fn forward(url: String, tid: String, event: String) {
    let line = |result: &str, attempts: usize, detail: Option<&str>| {
        conversion::forward_line(&tid, &event, result, attempts, detail, crate::now_ms())
    };
    if IN_FLIGHT.with(Cell::get) >= conversion::MAX_FORWARDS_IN_FLIGHT {
        console_error!(
            "{}",
            line("dropped", 0, Some("too many forwards in flight"))
        );
        return;
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
        match JsFuture::from(global.fetch_with_str(&url)).await {
            Ok(reply) => {
                let status = reply.unchecked_into::<web_sys::Response>().status();
                if (200..300).contains(&status) {
                    sent = Some(tried);
                    break;
                }
                problem = format!("the tracker answered {status}");
            }
            Err(e) => problem = e.as_string().unwrap_or_else(|| format!("{e:?}")),
        }
    }
    IN_FLIGHT.with(|n| n.set(n.get().saturating_sub(1)));
    match sent {
        Some(attempts) => console_log!("{}", line("sent", attempts, None)),
        None => console_error!("{}", line("failed", tried, Some(&problem))),
    }
}
