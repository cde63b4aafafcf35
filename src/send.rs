//! What the Worker sends out after a response: a judged conversion forwarded to the tracker's own
//! postback URL, and an alert posted to the operator's webhook, both tried again on the core's
//! schedule. Kept apart from the handlers, which only hand the core's effects here.

use std::cell::Cell;

use clickgate_core::alerts::{self, Kind};
use clickgate_core::conversion;
use worker::js_sys;
use worker::wasm_bindgen::JsCast as _;
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::web_sys;

use crate::console::{log, log_error};

thread_local! {
    // Forwards and alerts this isolate has in flight, against conversion::MAX_FORWARDS_IN_FLIGHT.
    static IN_FLIGHT: Cell<usize> = const { Cell::new(0) };
}

/// Sends a judged conversion on to the tracker, after the response, on the core's schedule; logs
/// how it ended. A tracker that answers 2xx has it; an error or no answer is tried again.
pub(crate) async fn forward(url: String, tid: String, event: String) {
    let line = |result: &str, attempts: usize, detail: Option<&str>| {
        conversion::forward_line(&tid, &event, result, attempts, detail, crate::now_ms())
    };
    match deliver(&url, None, "tracker").await {
        Ok(attempts) => log(&line("sent", attempts, None)),
        Err((0, problem)) => log_error(&line("dropped", 0, Some(&problem))),
        Err((tried, problem)) => log_error(&line("failed", tried, Some(&problem))),
    }
}

/// POSTs an alert's JSON body to the operator's webhook, after the response, on the forwards'
/// schedule; a webhook that is down costs the clicks nothing but this line.
pub(crate) async fn alert(url: String, kind: Kind, body: String) {
    match deliver(&url, Some(&body), "webhook").await {
        Ok(n) => log(&alerts::delivery_line(kind, Ok(n), crate::now_ms())),
        Err((n, problem)) => {
            let sent = Err((n, problem.as_str()));
            log_error(&alerts::delivery_line(kind, sent, crate::now_ms()))
        }
    }
}

/// Sends a GET (or, with a body, a JSON POST) until it is answered 2xx, on
/// [`conversion::FORWARD_SCHEDULE_MS`]: the attempts it took, or those made and the last problem
/// (none made: too many in flight), naming the server as `who`. The runtime's own fetch and timer are called directly: the
/// SDK's request and response wrappers cost the Worker's size more than this whole function.
async fn deliver(
    url: &str,
    body: Option<&str>,
    who: &str,
) -> std::result::Result<usize, (usize, String)> {
    if IN_FLIGHT.with(Cell::get) >= conversion::MAX_FORWARDS_IN_FLIGHT {
        return Err((0, "too many forwards in flight".to_owned()));
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
        let request = match body {
            None => global.fetch_with_str(url),
            Some(body) => {
                let init = web_sys::RequestInit::new();
                init.set_method("POST");
                init.set_body(&body.into());
                let headers = web_sys::Headers::new();
                if let Ok(headers) = &headers {
                    let _ = headers.set("content-type", "application/json");
                    init.set_headers(headers);
                }
                global.fetch_with_str_and_init(url, &init)
            }
        };
        match JsFuture::from(request).await {
            Ok(reply) => {
                let status = reply.unchecked_into::<web_sys::Response>().status();
                if (200..300).contains(&status) {
                    sent = Some(tried);
                    break;
                }
                problem = format!("the {who} answered {status}");
            }
            Err(e) => problem = e.as_string().unwrap_or_else(|| format!("{e:?}")),
        }
    }
    IN_FLIGHT.with(|n| n.set(n.get().saturating_sub(1)));
    sent.ok_or((tried, problem))
}
