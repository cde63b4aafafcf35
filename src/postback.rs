//! Conversion postbacks: judged in the core; the network's object says whether the event was
//! reported before.

use clickgate_core::click;
use clickgate_core::conversion;
use clickgate_core::http;
use clickgate_core::network::home::Home;
use clickgate_core::report;
use worker::worker_sys::web_sys;
use worker::{console_log, Context, Env, Request, Result};

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
    let row = report::conversion_row(&config, &outcome, now_ms);
    let home = Home::of(&config, &row.network);
    let effects = objects::with_counting(env, |isolate| {
        let mut effects = isolate.conversion(&row, home, now_ms);
        effects.extend(isolate.drive_stranded(&config, now_ms));
        effects
    });
    carry_out(env, ctx, effects);
    respond(http::postback_response(&outcome))
}
