//! The Worker's I/O that every handler shares: the runtime response, a request's body, the
//! transaction-id key, and carrying out the effects the isolate asks for.

use std::cell::{Cell, RefCell};

use clickgate_core::click::{self, RequestError};
use clickgate_core::http::HttpResponse;
use clickgate_core::isolate::Effect;
use clickgate_core::log::fault_line;
use clickgate_core::report::DataPoint;
use clickgate_core::token::TokenKey;
use worker::js_sys::{Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::web_sys;
use worker::{AnalyticsEngineDataPointBuilder, Context, Env, Request, Result};

use crate::console::{log, log_error};
use crate::objects;
use crate::send::{alert, forward};

thread_local! {
    // An isolate runs one request at a time on one thread; these live as long as the isolate.
    static KEY: RefCell<Option<TokenKey>> = const { RefCell::new(None) };
    static ANALYTICS_FAULT_LOGGED: Cell<bool> = const { Cell::new(false) };
}

/// Does what the isolate asked for, in its order.
pub(crate) fn carry_out(env: &Env, ctx: &Context, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::Log(line) => log(&line),
            Effect::Fault(line) => log_error(&line),
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
            Effect::Forward {
                url,
                transaction_id,
                event,
            } => ctx.wait_until(forward(url, transaction_id, event)),
            Effect::Alert { url, kind, body } => ctx.wait_until(alert(url, kind, body)),
        }
    }
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
            log_error(&fault_line(
                "analytics_engine",
                &format!("binding {binding}: {e}"),
            ));
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
            log_error(&fault_line("token_secret", &problem));
            None
        }
    }
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
