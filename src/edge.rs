use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use clickgate_core::admin::{self, AdminCall, AdminRequest};
use clickgate_core::click::{self, Id, RequestError};
use clickgate_core::config::cache::{ConfigSlot, Fetched, Need};
use clickgate_core::config::{referenced_lists, Config, StoredLists};
use clickgate_core::conversion;
use clickgate_core::http::{self, HttpResponse};
use clickgate_core::ip::IpSet;
use clickgate_core::isolate::{Arrival, ClickStep, Effect, Parts, READ_HEADERS};
use clickgate_core::log::fault_line;
use clickgate_core::log::JsonLine;
use clickgate_core::network::home::Home;
use clickgate_core::report::{self, DataPoint};
use clickgate_core::token::{ClickToken, TokenKey, NONCE_LEN};
use worker::js_sys::{Promise, Reflect, Uint8Array};
use worker::kv::KvStore;
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::wasm_bindgen_futures::{future_to_promise, JsFuture};
use worker::worker_sys::ext::RequestExt as _;
use worker::worker_sys::web_sys;
use worker::{
    console_error, console_log, event, AnalyticsEngineDataPointBuilder, Context, Env, Method,
    Request, Result,
};

use crate::objects;

/// The KV binding and key that hold the config document (see wrangler.toml and the README).
const CONFIG_BINDING: &str = "CLICKGATE_CONFIG";
const CONFIG_KEY: &str = "config";
/// How old the isolate's copy may get before it is re-read from KV, unless `CONFIG_REFRESH_SECONDS`
/// says otherwise.
const DEFAULT_REFRESH_SECONDS: u64 = 30;

thread_local! {
    // An isolate runs one request at a time on one thread; these live as long as the isolate.
    static SLOT: RefCell<Option<ConfigSlot>> = const { RefCell::new(None) };
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
    if admin::is_admin_path(path) {
        let (path, query) = (path.to_owned(), query.to_owned());
        return Ok(later(async move {
            admin_request(
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
            postback(Request::from(req), &env, &ctx, &query, now_ms).await
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
    match config_now(&env, &ctx, now_ms) {
        Some(config) => click(arrival, &config, env, ctx, now_ms),
        None => Ok(later(async move {
            let Some(config) = first_config(&env, now_ms).await else {
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
fn carry_out(env: &Env, ctx: &Context, effects: Vec<Effect>) {
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

/// A conversion postback: judged in the core against the click its transaction id carries; the
/// network's object answers whether it was reported before.
async fn postback(
    req: Request,
    env: &Env,
    ctx: &Context,
    query: &str,
    now_ms: u64,
) -> Result<web_sys::Response> {
    let method = req.method();
    if let Err(e) = click::check_method(method.as_ref(), click::POSTBACK_METHODS) {
        return respond(http::error_response(&e, false));
    }
    let mut params = query.to_owned();
    if method == Method::Post {
        let body = match read_body(&req, conversion::MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(e) => return respond(http::error_response(&e, false)),
        };
        params.push('&');
        params.push_str(&body);
    }
    let Some(config) = current_config(env, ctx, now_ms).await else {
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
    let effects = objects::with_counting(env, |isolate| isolate.conversion(&row, home, now_ms));
    carry_out(env, ctx, effects);
    respond(http::postback_response(&outcome))
}

/// An operator's request under /admin/: checked in the core, carried to the network's object.
async fn admin_request(
    req: Request,
    env: &Env,
    ctx: &Context,
    method: &str,
    (path, query): (&str, &str),
    now_ms: u64,
) -> Result<web_sys::Response> {
    let authorization = req.headers().get("authorization").ok().flatten();
    let token = env.secret("ADMIN_TOKEN").ok().map(|s| s.to_string());
    // The credentials first: an unauthenticated caller's body is never read.
    if let Err(e) = admin::authorize(method, path, authorization.as_deref(), token.as_deref()) {
        if let Some(line) = e.fault_line() {
            console_error!("{line}");
        }
        return respond(http::admin_error_response(&e));
    }
    let body = match read_body(&req, admin::MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) => return respond(http::error_response(&e, false)),
    };
    let call = AdminCall {
        method,
        path,
        query,
        authorization: authorization.as_deref(),
        body: &body,
    };
    let request = match admin::parse(call, token.as_deref(), now_ms) {
        Ok(request) => request,
        Err(e) => return respond(http::admin_error_response(&e)),
    };
    let kv = match env.kv(CONFIG_BINDING) {
        Ok(kv) => kv,
        Err(e) => {
            return respond(http::admin_unavailable(&format!(
                "binding {CONFIG_BINDING}: {e}"
            )))
        }
    };
    match request {
        AdminRequest::Page => respond(http::admin_page()),
        AdminRequest::Report(query) => match objects::report(env, &query).await {
            Ok((answered, missing)) => {
                let parts = answered.iter().map(|(n, h)| (n.as_str(), h.as_slice()));
                respond(http::admin_report(&report::aggregate(
                    &query, parts, missing,
                )))
            }
            Err(e) => respond(http::admin_unavailable(&format!(
                "the network directory did not answer: {e}"
            ))),
        },
        AdminRequest::Explain(id) => {
            let Some(key) = token_key(env) else {
                return respond(http::admin_unavailable("TOKEN_SECRET is not set"));
            };
            let token = match ClickToken::open(&id, &key) {
                Ok(token) => token,
                Err(e) => return respond(http::admin_unknown_transaction(&e.to_string())),
            };
            let key = report::explain_key_of(&token);
            let Some(config) = current_config(env, ctx, now_ms).await else {
                return respond(http::admin_unavailable("no config is loaded"));
            };
            let homes = Home::now_and_before(&config, &token.aff_id);
            match objects::explanation(env, &homes, &key).await {
                Ok(kept) => respond(http::admin_explain(report::explain_answer(
                    &id,
                    &token,
                    kept.as_deref(),
                ))),
                Err(e) => respond(http::admin_unavailable(&format!(
                    "the network's object did not answer: {e}"
                ))),
            }
        }
        AdminRequest::Network(action) => {
            let Some(home) = home_of(env, ctx, action.network(), now_ms).await else {
                return respond(http::admin_unavailable("no config is loaded"));
            };
            match objects::operate(env, &home, &action).await {
                Ok(block) => respond(http::admin_response(&action, block.as_ref(), now_ms)),
                Err(e) => {
                    console_error!("{}", fault_line("admin", &e));
                    respond(http::admin_unavailable(
                        "the network's object did not answer; retry",
                    ))
                }
            }
        }
        AdminRequest::GetConfig => match kv.get(CONFIG_KEY).text().await {
            Ok(Some(text)) => respond(http::admin_config(&text)),
            Ok(None) => respond(http::admin_config("null")),
            Err(e) => respond(http::admin_unavailable(&format!("KV read failed: {e}"))),
        },
        // Validated exactly as `clickgate config push` does, lists in their own keys included;
        // a refused document leaves KV, and so every isolate, as it was.
        AdminRequest::PutConfig(text) => {
            let lists: StoredLists = match read_lists(&kv, referenced_lists(&text)).await {
                // An unreadable list is left out: the compile refuses the document naming it.
                Ok(found) => found
                    .into_iter()
                    .filter_map(|(key, bytes)| Some((key, IpSet::from_bytes(bytes).ok()?)))
                    .collect(),
                Err(e) => return respond(http::admin_unavailable(&format!("KV read failed: {e}"))),
            };
            match Config::compile_with_lists(&text, &lists) {
                Ok(config) => match kv.put(CONFIG_KEY, text) {
                    Ok(put) => match put.execute().await {
                        Ok(()) => {
                            console_log!(
                                "{}",
                                JsonLine::new()
                                    .str("event", "config")
                                    .str("level", "info")
                                    .str("status", "saved")
                                    .str("config", &config.digest)
                                    .str("via", "admin")
                                    .finish()
                            );
                            respond(http::admin_config_saved(&config))
                        }
                        Err(e) => {
                            respond(http::admin_unavailable(&format!("KV write failed: {e}")))
                        }
                    },
                    Err(e) => respond(http::admin_unavailable(&format!("KV write failed: {e}"))),
                },
                Err(errors) => respond(http::admin_config_invalid(&errors)),
            }
        }
    }
}

/// Where a network's state lives under the config in force (`None`: no config can be loaded).
async fn home_of(env: &Env, ctx: &Context, network: &Id, now_ms: u64) -> Option<Home> {
    let config = current_config(env, ctx, now_ms).await?;
    Some(Home::of(&config, network))
}

/// The request's body as text, refused past `limit` bytes: by its `Content-Length` before a byte
/// is read, then by what has arrived as it is read. No body, a failed read or bytes that are not
/// UTF-8 read as empty, which the parsers then refuse. Read with the runtime's own stream reader:
/// the SDK's byte stream brings a stream adapter into the Worker for this one loop.
async fn read_body(req: &Request, limit: usize) -> std::result::Result<String, RequestError> {
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

/// The isolate's config, refreshed from KV per the core's [`ConfigSlot`] policy. A stale copy is
/// served while the refresh runs after the response; `None` when the isolate has never loaded one,
/// and the caller reads it from KV itself ([`first_config`]).
fn config_now(env: &Env, ctx: &Context, now_ms: u64) -> Option<Arc<Config>> {
    let need = SLOT.with(|cell| {
        let mut cell = cell.borrow_mut();
        let slot = cell.get_or_insert_with(|| ConfigSlot::new(refresh_seconds(env) * 1000));
        let need = slot.need(now_ms);
        if need != Need::Nothing {
            slot.begin(now_ms);
        }
        need
    });
    match need {
        Need::Nothing => {}
        Need::Background => {
            let env = env.clone();
            ctx.wait_until(async move { refresh(&env, now_ms).await });
        }
        Need::Blocking => return None,
    }
    cached_config()
}

/// [`config_now`] for requests that wait anyway (postbacks): loads the config if none is here.
async fn current_config(env: &Env, ctx: &Context, now_ms: u64) -> Option<Arc<Config>> {
    match config_now(env, ctx, now_ms) {
        Some(config) => Some(config),
        None => first_config(env, now_ms).await,
    }
}

/// The isolate's first config, read from KV (the refresh [`config_now`] began when it found none).
async fn first_config(env: &Env, now_ms: u64) -> Option<Arc<Config>> {
    refresh(env, now_ms).await;
    cached_config()
}

/// The isolate's copy of the config, if it has loaded one.
fn cached_config() -> Option<Arc<Config>> {
    SLOT.with(|cell| cell.borrow().as_ref().and_then(ConfigSlot::current))
}

async fn refresh(env: &Env, started_ms: u64) {
    let fetched = match env.kv(CONFIG_BINDING) {
        // Read as bytes, not text: the glue's conversion of a JS string walks it character by
        // character in JS, which in a fresh isolate is still interpreted and cost the first click
        // 1-2 ms for a 55 KB document; bytes are copied into wasm memory in one call.
        Ok(kv) => match kv.get(CONFIG_KEY).bytes().await {
            Ok(Some(bytes)) => match String::from_utf8(bytes) {
                Ok(text) => fetch_lists(&kv, &text)
                    .await
                    .map_or_else(Fetched::Failed, |()| Fetched::Text(text)),
                Err(e) => Fetched::Failed(format!("the value is not UTF-8 text: {e}")),
            },
            Ok(None) => Fetched::Missing,
            Err(e) => Fetched::Failed(e.to_string()),
        },
        Err(e) => Fetched::Failed(format!("binding {CONFIG_BINDING}: {e}")),
    };
    let event = SLOT.with(|cell| {
        cell.borrow_mut()
            .as_mut()
            .map(|slot| slot.finish(started_ms, fetched))
    });
    if let Some(event) = event {
        match event.log_line() {
            Some(line) if event.is_error() => console_error!("{line}"),
            Some(line) => console_log!("{line}"),
            None => {}
        }
    }
}

/// Reads the IP lists the document keeps in their own keys and this isolate does not hold yet.
async fn fetch_lists(kv: &KvStore, text: &str) -> std::result::Result<(), String> {
    let keys = SLOT.with(|cell| {
        cell.borrow()
            .as_ref()
            .map(|slot| slot.lists_to_fetch(text))
            .unwrap_or_default()
    });
    for (key, bytes) in read_lists(kv, keys).await? {
        SLOT.with(|cell| {
            cell.borrow_mut()
                .as_mut()
                .map_or(Ok(()), |slot| slot.add_list(key, bytes))
        })?;
    }
    Ok(())
}

/// The compiled IP lists under these KV keys; a missing one is left out (compiling the document
/// names it), a failed read is an error.
async fn read_lists(
    kv: &KvStore,
    keys: Vec<String>,
) -> std::result::Result<Vec<(String, Vec<u8>)>, String> {
    let mut found = Vec::new();
    for key in keys {
        match kv.get(&key).bytes().await {
            Ok(Some(bytes)) => found.push((key, bytes)),
            Ok(None) => {}
            Err(e) => return Err(format!("list `{key}`: {e}")),
        }
    }
    Ok(found)
}

fn refresh_seconds(env: &Env) -> u64 {
    env.var("CONFIG_REFRESH_SECONDS")
        .ok()
        .and_then(|v| v.to_string().parse().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_REFRESH_SECONDS)
}

/// The transaction-id key from the `TOKEN_SECRET` secret, derived once per isolate.
fn token_key(env: &Env) -> Option<TokenKey> {
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
fn respond(r: HttpResponse) -> Result<web_sys::Response> {
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
