//! The admin API under /admin/: the report, explain, a network's block and the config document,
//! each checked in the core and carried to KV or the networks' objects.

use clickgate_core::admin::{self, AdminCall, AdminRequest};
use clickgate_core::click::Id;
use clickgate_core::config::{referenced_lists, Config, StoredLists};
use clickgate_core::http;
use clickgate_core::ip::IpSet;
use clickgate_core::log::{fault_line, JsonLine};
use clickgate_core::network::home::Home;
use clickgate_core::report;
use clickgate_core::token::ClickToken;
use worker::worker_sys::web_sys;
use worker::{console_error, console_log, Context, Env, Request, Result};

use crate::config::{self, read_lists, CONFIG_BINDING, CONFIG_KEY};
use crate::io::{read_body, respond, token_key};
use crate::objects;

/// An operator's request under /admin/: checked in the core, carried to the network's object.
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
            let Some(config) = config::current(env, ctx, now_ms).await else {
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
    let config = config::current(env, ctx, now_ms).await?;
    Some(Home::of(&config, network))
}
