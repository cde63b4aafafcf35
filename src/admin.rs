//! The admin API under /admin/: the core's operator runs the call ([`operator`]); the edge reads
//! the request, carries out each read and write it asks for (KV, the networks' objects, the config
//! in force) and sends its answer.

use clickgate_core::admin;
use clickgate_core::config::Secrets;
use clickgate_core::operator::{self, AdminStep, Ask};
use clickgate_core::stored::{BLOCKLIST_KEY, CONFIG_KEY, FEED_STATE_KEY};
use worker::kv::{KvError, KvStore, ToRawKvValue};
use worker::wasm_bindgen::JsValue;
use worker::worker_sys::web_sys;
use worker::{Context, Env, Request, Result};

use crate::config::{self, read_lists, CONFIG_BINDING};
use crate::io::{carry_out, read_body, respond, token_key};
use crate::objects;

/// An operator's request under /admin/, run by the core's operator step by step.
pub(crate) async fn request(
    req: Request,
    env: &Env,
    ctx: &Context,
    method: &str,
    (path, query): (&str, &str),
    now_ms: u64,
) -> Result<web_sys::Response> {
    let authorization = req.headers().get("authorization").ok().flatten();
    let token = env.secret("ADMIN_TOKEN").ok().map(|s| s.to_string());
    let admitted = match operator::admit(method, (path, query), authorization, token) {
        Ok(admitted) => admitted,
        Err(answered) => {
            carry_out(env, ctx, answered.effects);
            return respond(answered.response);
        }
    };
    let body = read_body(&req, admin::MAX_BODY_BYTES).await;
    let mut step = admitted.with_body(body, || store(env).map(drop), || token_key(env), now_ms);
    loop {
        let ask = match step {
            AdminStep::Done(answered) => {
                carry_out(env, ctx, answered.effects);
                return respond(answered.response);
            }
            AdminStep::Ask(ask) => ask,
        };
        step = match ask {
            Ask::Config(next) => next.answered(config::current(env, ctx, now_ms).await),
            Ask::Report(next) => {
                let hours = objects::report(env, &next.query).await;
                next.answered(hours)
            }
            Ask::Explanation(next) => {
                let kept = objects::explanation(env, &next.homes, &next.key).await;
                next.answered(kept)
            }
            Ask::Operate(next) => {
                let block = objects::operate(env, &next.home, &next.action).await;
                next.answered(block)
            }
            Ask::Document(next) => next.answered(document(env).await),
            Ask::FeedState(next) => next.answered(read_text(env, FEED_STATE_KEY).await),
            Ask::Blocklist(next) => next.answered(read_text(env, BLOCKLIST_KEY).await),
            Ask::SaveBlocklist(next) => {
                let written = save(env, BLOCKLIST_KEY, &next.text).await;
                next.answered(written)
            }
            Ask::Lists(next) => {
                let found = match store(env) {
                    Ok(kv) => read_lists(&kv, next.keys.clone()).await,
                    Err(e) => Err(e),
                };
                next.answered(found, Secrets::Read(&|name| config::secret(env, name)))
            }
            Ask::Save(next) => {
                let written = save(env, CONFIG_KEY, &next.text).await;
                next.answered(written)
            }
        };
    }
}

/// The KV namespace the config document and its lists are kept in.
fn store(env: &Env) -> std::result::Result<KvStore, String> {
    env.kv(CONFIG_BINDING)
        .map_err(|e| format!("binding {CONFIG_BINDING}: {e}"))
}

/// The config document as KV holds it (`None`: it holds none).
async fn document(env: &Env) -> std::result::Result<Option<String>, String> {
    read_text(env, CONFIG_KEY).await
}

/// A text value of the config's KV namespace (`None`: there is none).
async fn read_text(env: &Env, key: &str) -> std::result::Result<Option<String>, String> {
    store(env)?.get(key).text().await.map_err(|e| e.to_string())
}

/// A KV value written as the string it is. `put` takes a `&str` as any serialisable value: through
/// serde-wasm-bindgen to the same JS string, with a number's formatting brought along.
struct Text<'a>(&'a str);

impl ToRawKvValue for Text<'_> {
    fn raw_kv_value(&self) -> std::result::Result<JsValue, KvError> {
        Ok(JsValue::from_str(self.0))
    }
}

/// Writes a text value of the config's KV namespace: the document, or the blocklist.
async fn save(env: &Env, key: &str, text: &str) -> std::result::Result<(), String> {
    store(env)?
        .put(key, Text(text))
        .map_err(|e| e.to_string())?
        .execute()
        .await
        .map_err(|e| e.to_string())
}
