use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use clickgate_core::admin::is_admin_path;
use clickgate_core::click;
use clickgate_core::config::Config;
use clickgate_core::conversion;
use clickgate_core::decide::reads;
use clickgate_core::http::{self, HttpResponse};
use clickgate_core::isolate::{Arrival, ClickStep, Parts};
use clickgate_core::token::NONCE_LEN;
use worker::js_sys::{Promise, Reflect};
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::wasm_bindgen_futures::{future_to_promise, JsFuture};
use worker::worker_sys::ext::RequestExt as _;
use worker::worker_sys::{web_sys, IncomingRequestCfProperties};
use worker::{event, Context, Env, Request, Result};

use crate::io::{carry_out, respond, token_key};
use crate::{admin, config, objects, postback};

thread_local! {
    // An isolate runs one request at a time on one thread; these live as long as the isolate.
    static RANDOM: RefCell<RandomPool> = const { RefCell::new(RandomPool { bytes: Vec::new(), used: 0 }) };
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
    // Module start has its own CPU budget; spend it compiling the click path, not the first click's.
    clickgate_core::isolate::warm_up();
    warm_up_glue();
    warm_up_heap();
}

/// The edge's side of answering a click, run once on a response made here and dropped: wasm code
/// and its JS glue are compiled on first use, and the core's warm-up reaches neither. Nothing is
/// sent and nothing kept; a failure only leaves that code for the first click to compile.
fn warm_up_glue() {
    let _ = respond(http::unavailable(true));
}

/// The wasm memory a large first click fills, grown and written once at module start: the first
/// write to a fresh page of memory faults into the operating system, which cost the first click
/// about half a millisecond for the 900 KB of a 50,000-entry IP list copied in from KV. Freed, the
/// block stays with the allocator, and the list is copied into pages already written.
fn warm_up_heap() {
    // One byte a page: the allocator takes fresh memory as zeroed and leaves it unwritten, and
    // filling the whole block ran as a loop of byte stores in baseline-compiled code.
    let mut block = vec![0u8; WARM_HEAP_BYTES];
    for at in (0..WARM_HEAP_BYTES).step_by(4096) {
        block[at] = 1;
    }
    std::hint::black_box(block);
}

/// Room for a list of about 100,000 entries, beside the document and what the click allocates.
const WARM_HEAP_BYTES: usize = 2 << 20;

/// Every request starts here: this is the Worker's `fetch` handler (worker-build's module calls it
/// with the runtime's request, env and context). A click that needs nothing but this isolate's
/// state is answered before this returns, as a Response: no future, no task, none of the promise
/// plumbing of an `async` handler, which together cost more per click than the decision itself.
/// Only what has to wait (an isolate's first config load, a click id's replay check, postbacks and
/// the admin API) is answered with a promise.
///
/// The runtime's own request is read, not the SDK's: converting it would copy the URL, method,
/// header list and request.cf into wasm on every click, and a click reads less than that.
#[wasm_bindgen(js_name = fetch)]
#[allow(unreachable_pub)] // wasm-bindgen exports only `pub` functions
pub fn handle(
    req: web_sys::Request,
    env: Env,
    ctx: worker::worker_sys::Context,
) -> std::result::Result<JsValue, JsValue> {
    let now_ms = crate::now_ms();
    let ctx = Context::new(ctx);
    let method = req.method();
    let url = req.url();
    let (path, query) = click::split_url(&url);
    if is_admin_path(path) {
        let (path, query) = (path.to_owned(), query.to_owned());
        return Ok(later(async move {
            admin::request(
                Request::from(req),
                &env,
                &ctx,
                &method,
                (&path, &query),
                now_ms,
            )
            .await
        }));
    }
    if path == click::VERDICT_PATH {
        let query = query.to_owned();
        return Ok(later(async move {
            postback::verdict(Request::from(req), &env, &ctx, &method, &query, now_ms).await
        }));
    }
    let rejection = path == conversion::REJECTION_PATH;
    if path == click::POSTBACK_PATH || rejection {
        let query = query.to_owned();
        return Ok(later(async move {
            let asked = (method.as_str(), query.as_str());
            postback::postback(Request::from(req), &env, &ctx, asked, rejection, now_ms).await
        }));
    }
    // Only what the config's decision uses crosses into wasm: each crossing costs, on every click.
    let loaded = config::now(&env, &ctx, now_ms);
    let reads = reads(loaded.as_deref());
    let request_headers = req.headers();
    let mut headers: Vec<(&'static str, String)> = reads
        .headers
        .iter()
        .filter_map(|name| {
            let value = request_headers.get(name).ok().flatten()?;
            Some((*name, value))
        })
        .collect();
    let cf = req.cf();
    let sent = |key| cf_text(cf.as_ref().filter(|_| reads.connection), key);
    // Where Cloudflare replaced the client's Accept-Encoding with its own, the client's is here.
    if let Some(client) = sent("clientAcceptEncoding") {
        headers.retain(|(name, _)| *name != "accept-encoding");
        if !client.is_empty() {
            headers.push(("accept-encoding", client));
        }
    }
    let parts = Parts {
        method,
        url,
        headers,
        country: cf.as_ref().and_then(|cf| cf.country().ok().flatten()),
        asn: cf.as_ref().and_then(|cf| cf.asn().ok().flatten()),
        http_protocol: sent("httpProtocol"),
        tls_version: sent("tlsVersion"),
        tls_cipher: sent("tlsCipher"),
        platform: platform(cf.as_ref()),
    };
    let arrival = match Arrival::read(parts) {
        Ok(arrival) => arrival,
        Err(response) => return answer(response),
    };
    match loaded {
        Some(config) => click(arrival, &config, env, ctx, now_ms),
        None => Ok(later(async move {
            let Some(config) = config::first(&env, now_ms).await else {
                return respond(http::unavailable(arrival.head()));
            };
            let answered = click(arrival, &config, env, ctx, now_ms)?;
            // A Response, or the promise of one when the click waits for its replay check.
            let response = JsFuture::from(Promise::resolve(&answered)).await?;
            Ok(response.unchecked_into())
        })),
    }
}

/// A routed request under a config, run by the isolate: the response now, or the promise of one
/// when the click waits for its click id's replay answer.
fn click(
    arrival: Arrival,
    config: &Arc<Config>,
    env: Env,
    ctx: Context,
    now_ms: u64,
) -> std::result::Result<JsValue, JsValue> {
    let (step, stranded) = objects::with_counting(&env, |isolate| {
        let step = isolate.click(arrival, config, || token_key(&env), now_ms, nonce);
        (step, isolate.drive_stranded(config, now_ms))
    });
    carry_out(&env, &ctx, stranded);
    match step {
        ClickStep::Done(answered) => {
            carry_out(&env, &ctx, answered.effects);
            answer(answered.response)
        }
        ClickStep::Ask {
            question,
            pending,
            effects,
        } => {
            carry_out(&env, &ctx, effects);
            Ok(later(async move {
                let replay = objects::wait_for_answer(&env, &ctx, question).await;
                let answered = objects::with_isolate(|isolate| isolate.resume(pending, replay));
                carry_out(&env, &ctx, answered.effects);
                respond(answered.response)
            }))
        }
    }
}

/// A text field of `request.cf`, read from the object itself: the SDK's getters for these fields
/// expect a string and fail where the runtime gives none (locally, or over plain HTTP).
fn cf_text(cf: Option<&IncomingRequestCfProperties>, key: &str) -> Option<String> {
    Reflect::get(cf?, &JsValue::from_str(key)).ok()?.as_string()
}

/// `request.cf.botManagement`, on a zone with Bot Management, and the network's name with it;
/// nothing without it, so the click is judged and logged as it always was.
fn platform(cf: Option<&IncomingRequestCfProperties>) -> Option<click::Platform> {
    let cf: &JsValue = cf?;
    let bot = Reflect::get(cf, &JsValue::from_str("botManagement")).ok()?;
    if !bot.is_object() {
        return None;
    }
    let field = |key: &str| Reflect::get(&bot, &JsValue::from_str(key)).ok();
    Some(click::Platform {
        score: field("score")
            .and_then(|s| s.as_f64())
            .filter(|s| s.fract() == 0.0 && (0.0..=255.0).contains(s))
            .map(|s| s as u8),
        verified_bot: field("verifiedBot").and_then(|b| b.as_bool()) == Some(true),
        static_resource: field("staticResource").and_then(|b| b.as_bool()) == Some(true),
        as_organization: Reflect::get(cf, &JsValue::from_str("asOrganization"))
            .ok()
            .and_then(|o| o.as_string()),
    })
}

/// A click's nonce for its transaction id, from the isolate's pool of random bytes.
fn nonce() -> std::result::Result<[u8; NONCE_LEN], String> {
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce).map_err(|e| e.to_string())?;
    Ok(nonce)
}

/// A response now, as the value `handle` returns.
fn answer(r: HttpResponse) -> std::result::Result<JsValue, JsValue> {
    Ok(respond(r)?.into())
}

/// A response later: the promise `handle` returns when the request has to wait.
fn later(work: impl Future<Output = Result<web_sys::Response>> + 'static) -> JsValue {
    future_to_promise(async move {
        work.await
            .map(JsValue::from)
            .map_err(|e| JsValue::from_str(&e.to_string()))
    })
    .into()
}

/// Random bytes from the runtime's CSPRNG, drawn 4 KiB at a time: one call into the runtime per
/// 512 clicks (8-byte nonces) instead of one per click. Each byte is handed out once.
struct RandomPool {
    bytes: Vec<u8>,
    used: usize,
}

const RANDOM_POOL_BYTES: usize = 4096;

fn random_bytes(out: &mut [u8]) -> std::result::Result<(), getrandom::Error> {
    RANDOM.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.bytes.len() < pool.used + out.len() {
            let mut fresh = vec![0u8; RANDOM_POOL_BYTES.max(out.len())];
            getrandom::fill(&mut fresh)?;
            pool.bytes = fresh;
            pool.used = 0;
        }
        let start = pool.used;
        out.copy_from_slice(&pool.bytes[start..start + out.len()]);
        pool.used += out.len();
        Ok(())
    })
}
