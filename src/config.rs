//! The isolate's config: its compiled copy of the document in KV, loaded on the first request
//! and refreshed in the background as the core's [`ConfigSlot`] says, with the operator's
//! blocklist read beside it; the last good one stays in force while KV is down or holds a broken
//! document.

use std::cell::RefCell;
use std::sync::Arc;

use clickgate_core::config::cache::{ConfigSlot, Fetched, Need};
use clickgate_core::config::feeds::FeedStates;
use clickgate_core::config::{Config, Secrets};
use clickgate_core::stored::{BLOCKLIST_KEY, CONFIG_KEY, FEED_STATE_KEY};
use worker::kv::KvStore;
use worker::{Context, Env};

use crate::console::{log, log_error};

/// The KV binding that holds the config document under `stored::CONFIG_KEY` (see wrangler.toml
/// and docs/config.md).
pub(crate) const CONFIG_BINDING: &str = "CLICKGATE_CONFIG";
/// How old the isolate's copy may get before it is re-read from KV, unless `CONFIG_REFRESH_SECONDS`
/// says otherwise.
const DEFAULT_REFRESH_SECONDS: u64 = 30;

thread_local! {
    // An isolate runs one request at a time on one thread; the slot lives as long as the isolate.
    static SLOT: RefCell<Option<ConfigSlot>> = const { RefCell::new(None) };
}

/// The isolate's config, refreshed from KV per the core's [`ConfigSlot`] policy. A stale copy is
/// served while the refresh runs after the response; `None` when the isolate has never loaded one,
/// and the caller reads it from KV itself ([`first`]).
pub(crate) fn now(env: &Env, ctx: &Context, now_ms: u64) -> Option<Arc<Config>> {
    let need = SLOT.with(|cell| {
        let mut cell = cell.borrow_mut();
        let slot = cell.get_or_insert_with(|| new_slot(env));
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

/// [`now`] for requests that wait anyway (postbacks): loads the config if none is here.
pub(crate) async fn current(env: &Env, ctx: &Context, now_ms: u64) -> Option<Arc<Config>> {
    match now(env, ctx, now_ms) {
        Some(config) => Some(config),
        None => first(env, now_ms).await,
    }
}

/// The isolate's config read afresh from KV: its first (the refresh [`now`] began when it found
/// none), or the scheduled run's, which may be the first event of an isolate that has no slot yet.
pub(crate) async fn first(env: &Env, now_ms: u64) -> Option<Arc<Config>> {
    SLOT.with(|cell| {
        cell.borrow_mut().get_or_insert_with(|| new_slot(env));
    });
    refresh(env, now_ms).await;
    cached_config()
}

/// The isolate's slot, made by its first request or scheduled run.
fn new_slot(env: &Env) -> ConfigSlot {
    let slot = ConfigSlot::new(refresh_seconds(env) * 1000);
    // `make dev` sets it, so a config pushed there answers the next request.
    match env.var("CONFIG_REFRESH_WAITS").map(|v| v.to_string()) {
        Ok(v) if v == "true" => slot.waiting_when_stale(),
        _ => slot,
    }
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
                Ok(text) => fetch_lists(&kv, text).await.unwrap_or_else(Fetched::Failed),
                Err(e) => Fetched::Failed(format!("the value is not UTF-8 text: {e}")),
            },
            Ok(None) => Fetched::Missing,
            Err(e) => Fetched::Failed(e.to_string()),
        },
        Err(e) => Fetched::Failed(format!("binding {CONFIG_BINDING}: {e}")),
    };
    let event = SLOT.with(|cell| {
        cell.borrow_mut().as_mut().map(|slot| {
            slot.finish(
                started_ms,
                fetched,
                Secrets::Read(&|name| secret(env, name)),
            )
        })
    });
    if let Some(event) = event {
        crate::objects::with_isolate(|isolate| isolate.config_event(&event));
        match event.log_line() {
            Some(line) if event.is_error() => log_error(&line),
            Some(line) => log(&line),
            None => {}
        }
    }
}

/// Reads the operator's blocklist, and the IP lists the document keeps in their own keys and this
/// isolate does not hold yet; for a document with feeds, the feeds' state too, and the lists it
/// holds in force.
async fn fetch_lists(kv: &KvStore, text: String) -> std::result::Result<Fetched, String> {
    let listed = kv.get(BLOCKLIST_KEY).text().await;
    let listed = listed.map_err(|e| format!("the blocklist: {e}"))?;
    SLOT.with(|cell| {
        cell.borrow_mut()
            .as_mut()
            .map_or(Ok(()), |slot| slot.read_blocklist(listed.as_deref()))
    })?;
    let (mut keys, feeds) = SLOT.with(|cell| {
        cell.borrow()
            .as_ref()
            .map(|slot| slot.to_fetch(&text))
            .unwrap_or_default()
    });
    let fed = match feeds {
        true => {
            let state = kv.get(FEED_STATE_KEY).text().await;
            let state = state.map_err(|e| format!("the feeds' state: {e}"))?;
            let fed = FeedStates::read(state.as_deref())?;
            keys.extend(SLOT.with(|cell| {
                cell.borrow()
                    .as_ref()
                    .map(|slot| slot.fed_lists_to_fetch(&fed))
                    .unwrap_or_default()
            }));
            Some(fed)
        }
        false => None,
    };
    for (key, bytes) in read_lists(kv, keys).await? {
        SLOT.with(|cell| {
            cell.borrow_mut()
                .as_mut()
                .map_or(Ok(()), |slot| slot.add_list(key, bytes))
        })?;
    }
    Ok(match fed {
        Some(fed) => Fetched::Fed(text, fed),
        None => Fetched::Text(text),
    })
}

/// The compiled IP lists under these KV keys; a missing one is left out (compiling the document
/// names it), a failed read is an error.
pub(crate) async fn read_lists(
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

/// A Worker secret the document names (`{"secret": "NAME"}`): set with `wrangler secret put`, or
/// in `.dev.vars` under `wrangler dev`.
pub(crate) fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name).ok().map(|s| s.to_string())
}

fn refresh_seconds(env: &Env) -> u64 {
    env.var("CONFIG_REFRESH_SECONDS")
        .ok()
        .and_then(|v| v.to_string().parse().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_REFRESH_SECONDS)
}
