//! The Cron Trigger's run: each feed the config names that the core says is due is fetched,
//! judged by the core, and its list stored under its content's key when the core accepts it; the
//! feeds' state is written back, and the isolates' next refresh compiles the document with it.

use clickgate_core::alerts::Raised;
use clickgate_core::config::feeds::{FeedStates, Good, Judgement};
use clickgate_core::log::fault_line;
use clickgate_core::stored::FEED_STATE_KEY;
use worker::js_sys;
use worker::kv::KvStore;
use worker::wasm_bindgen::JsCast as _;
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::web_sys;
use worker::{event, Env, ScheduleContext, ScheduledEvent};

use crate::config::{self, CONFIG_BINDING};
use crate::console::{log, log_error};

#[event(scheduled)]
pub(crate) async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    // The run's scheduled time, not the clock: a run that starts late is still the run for its
    // time, and a local run can be fired for any time.
    let now_ms = event.schedule() as u64;
    if let Err(problem) = run(&env, now_ms).await {
        log_error(&fault_line("feed", &problem));
    }
}

async fn run(env: &Env, now_ms: u64) -> Result<(), String> {
    // The config in KV, read afresh as an isolate's refresh reads it (the last good one if that
    // read fails): its feeds are the ones fetched.
    let Some(config) = config::first(env, crate::now_ms()).await else {
        return Ok(());
    };
    let feeds = &config.feeds;
    if feeds.is_empty() {
        return Ok(());
    }
    let kv = env
        .kv(CONFIG_BINDING)
        .map_err(|e| format!("binding {CONFIG_BINDING}: {e}"))?;
    let state = kv
        .get(FEED_STATE_KEY)
        .text()
        .await
        .map_err(|e| format!("KV read of `{FEED_STATE_KEY}` failed: {e}"))?;
    let mut states = FeedStates::read(state.as_deref())?;
    let mut ran = false;
    for feed in feeds {
        if !states.due(feed, now_ms) {
            continue;
        }
        let fetched = fetch(&feed.url).await;
        let outcome = match states.judge(feed, fetched.as_deref().map_err(Clone::clone)) {
            Judgement::Accept {
                kv: key,
                bytes,
                entries,
                stored,
            } => match stored {
                true => Ok(()),
                false => put(&kv, &key, &bytes).await,
            }
            .map(|()| Good {
                kv: key,
                at_ms: now_ms,
                entries,
            })
            .map_err(|e| format!("storing the list failed: {e}")),
            Judgement::Refuse(why) => Err(why),
        };
        let refused = outcome.as_ref().err().cloned();
        let line = states.record(feed, now_ms, outcome);
        if let Some(why) = refused {
            // The operator's webhook hears of it with the isolate's next request.
            let detail = format!("lists.{} from {}: {why}", feed.list, feed.url);
            crate::objects::with_isolate(|i| i.raise(Raised::feed_failed(detail)));
            log_error(&line);
        } else {
            log(&line);
        }
        ran = true;
    }
    if ran {
        put(&kv, FEED_STATE_KEY, states.to_json().as_bytes()).await?;
    }
    Ok(())
}

async fn put(kv: &KvStore, key: &str, value: &[u8]) -> Result<(), String> {
    kv.put_bytes(key, value)
        .map_err(|e| e.to_string())?
        .execute()
        .await
        .map_err(|e| format!("KV write of `{key}` failed: {e}"))
}

/// The feed's text, or why there is none. The runtime's fetch is called directly, as the
/// conversions' forwards call it (see `postback::forward`).
async fn fetch(url: &str) -> Result<String, String> {
    let said = |e: worker::wasm_bindgen::JsValue| e.as_string().unwrap_or_else(|| format!("{e:?}"));
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let reply: web_sys::Response = JsFuture::from(global.fetch_with_str(url))
        .await
        .map_err(said)?
        .unchecked_into();
    let status = reply.status();
    if !(200..300).contains(&status) {
        return Err(format!("the server answered {status}"));
    }
    let text = JsFuture::from(reply.text().map_err(said)?)
        .await
        .map_err(said)?;
    text.as_string()
        .ok_or_else(|| "the answer is not text".to_owned())
}
