use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use clickgate_core::admin::is_admin_path;
use clickgate_core::click::{self, RequestError};
use clickgate_core::config::Config;
use clickgate_core::http::{self, HttpResponse};
use clickgate_core::isolate::{Arrival, ClickStep, Effect, Parts, READ_HEADERS};
use clickgate_core::log::fault_line;
use clickgate_core::report::DataPoint;
use clickgate_core::token::{TokenKey, NONCE_LEN};
use worker::js_sys::{Promise, Reflect, Uint8Array};
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::wasm_bindgen_futures::{future_to_promise, JsFuture};
use worker::worker_sys::ext::RequestExt as _;
use worker::worker_sys::web_sys;
use worker::{
    console_error, console_log, event, AnalyticsEngineDataPointBuilder, Context, Env, Request,
    Result,
};

use crate::{admin, config, objects, postback};

thread_local! {
    // An isolate runs one request at a time on one thread; these live as long as the isolate.
    static KEY: RefCell<Option<TokenKey>> = const { RefCell::new(None) };
    static ANALYTICS_FAULT_LOGGED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static RANDOM: RefCell<RandomPool> = const { RefCell::new(RandomPool { bytes: Vec::new(), used: 0 }) };
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
    // Module start has its own CPU budget; spend it compiling the click path, not the first click's.
    clickgate_core::isolate::warm_up();
}

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
    if path == "/postback" {
        let query = query.to_owned();
        return Ok(later(async move {
            postback::postback(Request::from(req), &env, &ctx, &query, now_ms).await
        }));
    }
    // Only the headers the decision uses cross into wasm: each crossing costs, on every click.
    let request_headers = req.headers();
    let headers: Vec<(&'static str, String)> = READ_HEADERS
        .iter()
        .filter_map(|name| {
            let value = request_headers.get(name).ok().flatten()?;
            Some((*name, value))
        })
        .collect();
    let cf = req.cf();
    let parts = Parts {
        method,
        url,
        headers,
        country: cf.as_ref().and_then(|cf| cf.country().ok().flatten()),
        asn: cf.as_ref().and_then(|cf| cf.asn().ok().flatten()),
    };
    let arrival = match Arrival::read(parts) {
        Ok(arrival) => arrival,
        Err(response) => return answer(response),
    };
    match config::now(&env, &ctx, now_ms) {
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
    let step = objects::with_counting(&env, |isolate| {
        isolate.click(arrival, config, || token_key(&env), now_ms, nonce)
    });
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
                let replay = objects::wait_for_answer(&env, question).await;
                let answered = objects::with_isolate(|isolate| isolate.resume(pending, replay));
                carry_out(&env, &ctx, answered.effects);
                respond(answered.response)
            }))
        }
    }
}

/// Does what the isolate asked for, in its order.
pub(crate) fn carry_out(env: &Env, ctx: &Context, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::Log(line) => console_log!("{line}"),
            Effect::Fault(line) => console_error!("{line}"),
            Effect::Analytics { binding, point } => write_analytics(env, &binding, point),
            Effect::Flush {
                network,
                home,
                step,
            } => objects::flush(env, ctx, network, home, step),
            Effect::Replay {
                object,
                step,
                started_ms,
            } => objects::replay_after(env, ctx, object, step, started_ms),
        }
    }
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

/// The request's body as text, refused past `limit` bytes: by its `Content-Length` before a byte
/// is read, then by what has arrived as it is read. No body, a failed read or bytes that are not
/// UTF-8 read as empty, which the parsers then refuse. Read with the runtime's own stream reader:
/// the SDK's byte stream brings a stream adapter into the Worker for this one loop.
pub(crate) async fn read_body(
    req: &Request,
    limit: usize,
) -> std::result::Result<String, RequestError> {
    let declared = req.headers().get("content-length").ok().flatten();
    click::check_body(declared.as_deref(), 0, limit)?;
    let Some(reader) = req.inner().body().and_then(|body| {
        body.get_reader()
            .dyn_into::<web_sys::ReadableStreamDefaultReader>()
            .ok()
    }) else {
        return Ok(String::new());
    };
    let (done, value) = (JsValue::from_str("done"), JsValue::from_str("value"));
    let mut bytes = Vec::new();
    loop {
        let Ok(step) = JsFuture::from(reader.read()).await else {
            return Ok(String::new());
        };
        if Reflect::get(&step, &done).map_or(true, |d| d.is_truthy()) {
            break;
        }
        let Ok(chunk) = Reflect::get(&step, &value).map(Uint8Array::from) else {
            return Ok(String::new());
        };
        let arrived = bytes.len().saturating_add(chunk.length() as usize);
        if let Err(e) = click::check_body(None, arrived, limit) {
            // The rest is not wanted: let the runtime drop it rather than buffer it.
            let _ = reader.cancel();
            return Err(e);
        }
        let start = bytes.len();
        bytes.resize(arrived, 0);
        chunk.copy_to(&mut bytes[start..]);
    }
    Ok(String::from_utf8(bytes).unwrap_or_default())
}

/// Writes the decision to the Analytics Engine dataset the config names. Writes are buffered by
/// the runtime, so the click does not wait. A missing binding is reported once per isolate: the
/// decision log and the report still have every click.
fn write_analytics(env: &Env, binding: &str, point: DataPoint) {
    let written = env.analytics_engine(binding).and_then(|dataset| {
        let built = AnalyticsEngineDataPointBuilder::new()
            .indexes([point.index.as_str()])
            .blobs(point.blobs)
            .doubles(point.doubles)
            .build();
        dataset.write_data_point(&built)
    });
    if let Err(e) = written {
        if !ANALYTICS_FAULT_LOGGED.with(|f| f.replace(true)) {
            console_error!(
                "{}",
                fault_line("analytics_engine", &format!("binding {binding}: {e}"))
            );
        }
    }
}

/// The transaction-id key from the `TOKEN_SECRET` secret, derived once per isolate.
pub(crate) fn token_key(env: &Env) -> Option<TokenKey> {
    if let Some(key) = KEY.with(|k| k.borrow().clone()) {
        return Some(key);
    }
    let made = env
        .secret("TOKEN_SECRET")
        .map_err(|_| {
            "the TOKEN_SECRET secret is not set (wrangler secret put TOKEN_SECRET)".to_owned()
        })
        .and_then(|s| TokenKey::new(s.to_string().as_bytes()).map_err(String::from));
    match made {
        Ok(key) => {
            KEY.with(|k| *k.borrow_mut() = Some(key.clone()));
            Some(key)
        }
        Err(problem) => {
            console_error!("{}", fault_line("token_secret", &problem));
            None
        }
    }
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

/// Copies the core's response onto a runtime response. Built on the runtime's own Response
/// directly: the SDK's builder copies headers and body once more, on every click.
pub(crate) fn respond(r: HttpResponse) -> Result<web_sys::Response> {
    let headers = web_sys::Headers::new()?;
    for (name, value) in &r.headers {
        headers.set(name, value)?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(r.status);
    init.set_headers(&headers);
    let body = (!r.body.is_empty()).then_some(r.body.as_str());
    Ok(web_sys::Response::new_with_opt_str_and_init(body, &init)?)
}
