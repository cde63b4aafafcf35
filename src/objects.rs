//! The isolate's side of the networks' objects (`network.rs`): the counts it keeps and flushes, the
//! click ids it asks about, and the operator's and the report's calls. The click never waits for a
//! flush: the isolate counts locally, answers, and flushes in `ctx.wait_until`. The flush policy
//! and every decision about what to send are the core's.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use clickgate_core::admin::Action;
use clickgate_core::click::Id;
use clickgate_core::conversion::{Prior, Rejected, Rejecting};
use clickgate_core::flood::FloodBlock;
use clickgate_core::isolate::{Isolate, Question, SeenQuestion};
use clickgate_core::log::fault_line;
use clickgate_core::network::click_ids::{self, Outbox, Step, Ticket};
use clickgate_core::network::home::{self, Home, Space};
use clickgate_core::network::local::{Flush, FlushPolicy, LocalCounts};
use clickgate_core::network::wire::{self, Batch, ConversionUse, ObjectRequest, Operation, Reply};
use clickgate_core::operator::ReportHours;
use clickgate_core::report::{self, Networks, ReportQuery};
use clickgate_core::signing::ReplayAnswer;
use clickgate_core::stored::DIRECTORY;
use futures_util::future::{join_all, select, Either};
use worker::js_sys::{Array, Function, Promise, Reflect};
use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Context, Delay, Env};

use crate::console::{log, log_error};

/// The Durable Object binding (see wrangler.toml).
const BINDING: &str = "NETWORK";

/// A report asks this many networks' objects at once.
const REPORT_FAN_OUT: usize = 16;
/// A flush drive stops after this long; any request to the isolate then picks up every network's
/// due step (`Isolate::drive_stranded`). Work after a response is cut off by the runtime after
/// about 30 s anyway.
const FLUSH_DRIVE_MS: u64 = 25_000;
/// A background replay drive stops after this long and leaves the rest to the next click's;
/// work after a response is cut off by the runtime after about 30 s.
const REPLAY_DRIVE_MS: u64 = 20_000;

thread_local! {
    // An isolate runs one request at a time on one thread; its click state lives as long as it.
    static ISOLATE: RefCell<Isolate> = RefCell::new(Isolate::default());
    // What wakes each click waiting for its replay answer, by its ticket.
    static WAKE: RefCell<HashMap<Ticket, Function>> = RefCell::new(HashMap::new());
}

/// Runs `f` on the isolate's click state, its counts started first if they are not yet (they
/// stay off while this isolate has no random id to name its batches, and the next call tries
/// again).
pub(crate) fn with_counting<T>(env: &Env, f: impl FnOnce(&mut Isolate) -> T) -> T {
    with_isolate(|isolate| {
        if !isolate.counting() {
            if let Some(id) = isolate_id() {
                isolate.start_counting(id, policy(env));
            }
        }
        f(isolate)
    })
}

/// Runs `f` on the isolate's click state.
pub(crate) fn with_isolate<T>(f: impl FnOnce(&mut Isolate) -> T) -> T {
    ISOLATE.with(|cell| f(&mut cell.borrow_mut()))
}

/// Carries out a network's counts step (a batch, or a timer for one) after the response, bound
/// for the object `home` names.
pub(crate) fn flush(env: &Env, ctx: &Context, network: Id, home: Home, step: Flush) {
    let env = env.clone();
    ctx.wait_until(async move { drive(&env, &network, &home, step).await });
}

fn with_counts(f: impl FnOnce(&mut LocalCounts) -> Flush) -> Flush {
    with_isolate(|isolate| isolate.counts_mut().map_or(Flush::Nothing, f))
}

async fn drive(env: &Env, network: &Id, home: &Home, mut step: Flush) {
    let started_ms = crate::now_ms();
    loop {
        let now = crate::now_ms();
        if now >= started_ms + FLUSH_DRIVE_MS {
            // A batch taken and not sent goes back to the isolate-wide look.
            if let Flush::Send(batch) = &step {
                with_isolate(|i| {
                    if let Some(counts) = i.counts_mut() {
                        counts.put_back(network, batch.seq, now);
                    }
                });
            }
            return;
        }
        step = match step {
            Flush::Nothing => return,
            Flush::WakeIn(ms) => {
                Delay::from(Duration::from_millis(ms)).await;
                let now = crate::now_ms();
                with_counts(|c| c.wake(network, now))
            }
            Flush::Send(batch) => {
                let seq = batch.seq;
                let answer = send(env, home, &batch).await;
                let now = crate::now_ms();
                match answer {
                    Ok(reply) => with_counts(|c| c.acked(network, seq, reply, now)),
                    Err(e) => {
                        log_error(&fault_line("network_object", &format!("{network}: {e}")));
                        let next = with_counts(|c| c.failed(network, seq, now));
                        let dropped = with_isolate(|i| i.counts_mut()?.take_drop_line());
                        if let Some(line) = dropped {
                            log_error(&line);
                        }
                        next
                    }
                }
            }
        };
    }
}

/// How long each kind of object call may take before it counts as failed (docs/operations.md lists
/// them). An object that never answers must not hold a click, a postback or an operator for longer:
/// past its deadline a call is a fault like any other, handled by its caller's policy.
pub(crate) mod deadline {
    /// A batch of click-id replay checks: the clicks waiting on it are judged by
    /// `on_replay_store_fault` once this has passed, as docs/signing.md promises.
    pub(crate) const REPLAY_MS: u64 = clickgate_core::network::click_ids::LOST_AFTER_MS;
    /// A postback's duplicate lookup: past it the conversion is judged on its other checks.
    pub(crate) const CONVERSION_MS: u64 = 5_000;
    /// An operator's block, lift or explain, the directory's network list, and each network's
    /// report hours (a network that misses it is named in `missing_networks`).
    pub(crate) const ADMIN_MS: u64 = 5_000;
    /// A counts batch, sent after the response: past it the batch is sent again later.
    pub(crate) const BATCH_MS: u64 = 10_000;
    /// A network object listing itself in the directory (retried with its next batch).
    pub(crate) const LIST_MS: u64 = 5_000;
}

/// One request to a Network object, sent as the core encodes it to the object named `object`; the
/// answer's text when it is 200 within `deadline_ms`, otherwise why not.
pub(crate) async fn ask(
    env: &Env,
    object: &str,
    request: &ObjectRequest,
    deadline_ms: u64,
) -> std::result::Result<String, String> {
    let (method, path, body) = request.encode();
    let call = Box::pin(ask_now(env, object, method, &path, &body));
    let timer = Box::pin(Delay::from(Duration::from_millis(deadline_ms)));
    // Bound before it is returned: the select's temporary borrows `path`, which a tail
    // expression would keep past the function's locals.
    let answer = match select(call, timer).await {
        Either::Left((answer, _)) => answer,
        Either::Right(((), _)) => Err(format!("{object}{path}: no answer in {deadline_ms} ms")),
    };
    answer
}

async fn ask_now(
    env: &Env,
    object: &str,
    method: &str,
    path: &str,
    body: &str,
) -> std::result::Result<String, String> {
    let stub: JsValue = env
        .durable_object(BINDING)
        .and_then(|ns| ns.get_by_name(object))
        .map_err(|e| format!("binding {BINDING}: {e}"))?
        .into_rpc();
    // `Network::ask` (src/network.rs) as a JavaScript RPC: no Request, headers, body stream or
    // Response on either side. The stub answers any method name with a call, so `ask` is read
    // from it, not from a class.
    let fault = |e: JsValue| worker::Error::from(e).to_string();
    let call: Function = Reflect::get(&stub, &JsValue::from_str("ask"))
        .map_err(fault)?
        .unchecked_into();
    // `Reflect.apply`, not `call.call(…)`: the stub's method answers any property read with
    // another remote name, `call` included, so `call3` would ask the object for `ask.call`.
    let arguments = Array::of3(
        &JsValue::from_str(method),
        &JsValue::from_str(path),
        &JsValue::from_str(body),
    );
    let called = Reflect::apply(&call, &stub, &arguments).map_err(fault)?;
    // The call's promise is the runtime's own thenable; `resolve` adopts it.
    let answer = JsFuture::from(Promise::resolve(&called))
        .await
        .map_err(fault)?;
    let status = Reflect::get_u32(&answer, 0)
        .ok()
        .and_then(|s| s.as_f64())
        .filter(|s| s.fract() == 0.0 && (100.0..600.0).contains(s))
        .map(|s| s as u16);
    let text = Reflect::get_u32(&answer, 1)
        .ok()
        .and_then(|t| t.as_string())
        .unwrap_or_default();
    match status {
        Some(200) => Ok(text),
        Some(status) => Err(format!("{object}{path}: status {status}: {text}")),
        None => Err(format!("{object}{path}: an answer without a status")),
    }
}

async fn send(env: &Env, home: &Home, batch: &Batch) -> std::result::Result<Reply, String> {
    let request = ObjectRequest::Batch {
        space: home.space(),
        batch: batch.clone(),
    };
    let text = ask(env, &home.object(), &request, deadline::BATCH_MS).await?;
    Ok(Reply::parse(&text)?)
}

/// Waits for the replay object's answer to a click's id: the one Durable Object call a click
/// waits for (only signed clicks that carry a click id and ask before their redirect, and not when
/// this isolate already knows the id in use). The question goes out with the others that arrive
/// meanwhile (`clickgate_core::network::click_ids`): the click whose question found its object idle
/// sends in its own background, which sends the next batches too; every waiting click, that one
/// included, is woken by its batch's answers, or gives up when its deadline from its arrival passes.
pub(crate) async fn wait_for_answer(env: &Env, ctx: &Context, question: Question) -> ReplayAnswer {
    let Question {
        object,
        ticket,
        turn,
        asked_ms,
    } = question;
    // A promise of the runtime's, not a future's waker: resolved from the sender's request, its
    // waiter still runs in its own.
    let answered = Promise::new(&mut |resolve, _| {
        WAKE.with(|w| w.borrow_mut().insert(ticket, resolve));
    });
    if let Some(batch) = turn {
        replay_after(env, ctx, object.clone(), Step::Send(batch), crate::now_ms());
    }
    let left = click_ids::wait_left(asked_ms, crate::now_ms());
    let timer = Delay::from(Duration::from_millis(left));
    let _ = select(JsFuture::from(answered), timer).await;
    WAKE.with(|w| w.borrow_mut().remove(&ticket));
    if let Some(answer) = with_outbox(|o| o.answer(ticket)) {
        return answer;
    }
    with_outbox(|o| o.give_up(&object, ticket));
    log_error(&fault_line(
        "replay_store",
        &format!("{object}: no answer in time"),
    ));
    ReplayAnswer::Unavailable
}

/// Carries out a replay object's background steps after the response (the questions of clicks
/// redirected before their id was checked), begun at `started_ms`.
pub(crate) fn replay_after(env: &Env, ctx: &Context, object: String, step: Step, started_ms: u64) {
    let env = env.clone();
    ctx.wait_until(async move { drive_replay(&env, &object, step, started_ms).await });
}

/// Carries out an object's background replay steps: wait, send, and on.
async fn drive_replay(env: &Env, object: &str, mut step: Step, started_ms: u64) {
    loop {
        step = match step {
            Step::Nothing => return,
            // Only the wait for after-redirect questions stops: clicks may be waiting on a send.
            Step::WakeIn(_) if crate::now_ms() > started_ms + REPLAY_DRIVE_MS => return,
            Step::WakeIn(ms) => {
                Delay::from(Duration::from_millis(ms)).await;
                with_outbox(|o| o.wake(object, crate::now_ms()))
            }
            Step::Send(batch) => {
                send_replay_batch(env, &batch).await;
                with_outbox(|o| o.next_step(object, crate::now_ms()))
            }
        };
    }
}

fn with_outbox<T>(f: impl FnOnce(&mut Outbox) -> T) -> T {
    with_isolate(|isolate| f(isolate.outbox_mut()))
}

/// Sends one batch of click ids and records each click's answer for it to collect; logs the ids
/// asked after their redirect that the object had seen.
async fn send_replay_batch(env: &Env, batch: &click_ids::Questions) {
    let request = ObjectRequest::ClickIds {
        space: Space::Whole,
        uses: batch.uses.clone(),
    };
    let answers = ask(env, &batch.object, &request, deadline::REPLAY_MS)
        .await
        .and_then(|text| {
            wire::parse_click_id_answers(&text, batch.tickets.len()).map_err(|e| e.to_string())
        })
        .unwrap_or_else(|e| {
            log_error(&fault_line(
                "replay_store",
                &format!("{}: {e}", batch.object),
            ));
            vec![ReplayAnswer::Unavailable; batch.tickets.len()]
        });
    for detected in with_outbox(|o| o.returned(batch, &answers)) {
        log(&detected.log_line());
    }
    let woken: Vec<_> = WAKE.with(|w| {
        let mut w = w.borrow_mut();
        batch.tickets.iter().filter_map(|t| w.remove(t)).collect()
    });
    for resolve in woken {
        let _ = resolve.call0(&JsValue::UNDEFINED);
    }
}

/// Carries an operator's lift or block to the network's object (`home`, where the network's
/// counts go); returns the block left in force.
pub(crate) async fn operate(
    env: &Env,
    home: &Home,
    action: &Action,
) -> std::result::Result<Option<FloodBlock>, String> {
    let operation = match action {
        Action::Block { by, .. } => Operation::Block { by: by.clone() },
        Action::Unblock { by, .. } => Operation::Unblock { by: by.clone() },
    };
    let request = ObjectRequest::Operate {
        space: home.space(),
        operation,
    };
    let text = ask(env, &home.object(), &request, deadline::ADMIN_MS).await?;
    let reply = Reply::parse(&text)?;
    with_isolate(|isolate| isolate.object_alerts(action.network(), reply.alerts));
    Ok(reply.block)
}

/// Asks the network's object the conversion's question: whether it was reported before (and
/// records it, counting it toward the network's conversion rate when the question says so), and
/// with approvals, whether its click still has room for an approved conversion under that key
/// (and takes it). `None`: the object did not answer.
pub(crate) async fn conversion_seen(env: &Env, question: SeenQuestion) -> Option<Prior> {
    let SeenQuestion {
        home,
        key,
        expires_ms,
        counts,
        approvals,
        rejection,
    } = question;
    let request = ObjectRequest::Conversion {
        space: home.space(),
        conversion: ConversionUse {
            key,
            expires_ms,
            counts,
            approvals,
            rejection,
        },
    };
    let answer = ask(env, &home.object(), &request, deadline::CONVERSION_MS).await;
    match answer.and_then(|text| Ok(wire::parse_seen(&text)?)) {
        Ok(seen) => Some(seen),
        Err(e) => {
            log_error(&fault_line(
                "conversion_store",
                &format!("{}: {e}", home.network()),
            ));
            None
        }
    }
}

/// Asks the click's network's object to keep another system's rejection of it; the rejection it
/// keeps (the first reported) comes back. `None`: the object did not answer.
pub(crate) async fn reject(env: &Env, home: &Home, rejecting: &Rejecting) -> Option<Rejected> {
    let request = ObjectRequest::Reject {
        space: home.space(),
        key: rejecting.key.clone(),
        expires_ms: rejecting.expires_ms,
        reason: rejecting.reason.clone(),
    };
    let answer = ask(env, &home.object(), &request, deadline::CONVERSION_MS).await;
    match answer.and_then(|text| Ok(wire::parse_rejected(&text)?)) {
        Ok(kept) => Some(kept),
        Err(e) => {
            log_error(&fault_line(
                "rejection_store",
                &format!("{}: {e}", home.network()),
            ));
            None
        }
    }
}

/// The report hours in the query's range of every network in the objects the directory lists (a
/// shared object answers for each of its networks), folded as each answer arrives so the long
/// tail of made-up ids costs bounded memory; the objects that did not answer are named, not
/// guessed at.
pub(crate) async fn report(
    env: &Env,
    query: &ReportQuery,
) -> std::result::Result<ReportHours, String> {
    let listed = ObjectRequest::Networks {
        since_day: query.from_day(),
    };
    let listed = wire::parse_objects(&ask(env, DIRECTORY, &listed, deadline::ADMIN_MS).await?);
    if listed.malformed > 0 {
        let problem = format!("{} malformed directory entries", listed.malformed);
        log_error(&fault_line("report", &problem));
    }
    let mut answered = Networks::default();
    let mut missing = Vec::new();
    for chunk in listed.objects.chunks(REPORT_FAN_OUT) {
        let answers = join_all(chunk.iter().map(|object| {
            let request = ObjectRequest::Report {
                space: home::report_space(object),
                from_hour: query.from_hour,
                to_hour: query.to_hour,
            };
            async move { ask(env, object, &request, deadline::ADMIN_MS).await }
        }))
        .await;
        for (object, answer) in chunk.iter().zip(answers) {
            let read = |text: String| {
                report::parse_object_answer(object, &text).map_err(|e| e.to_string())
            };
            match answer.and_then(read) {
                Ok(networks) => answered.merge(networks),
                Err(e) => {
                    log_error(&fault_line("report", &format!("{object}: {e}")));
                    missing.push(object.clone());
                }
            }
        }
    }
    Ok((answered, listed.missing(missing)))
}

/// The kept decision of a click, by its explain key, from the first of its network's homes that
/// kept it (`None`: none did).
pub(crate) async fn explanation(
    env: &Env,
    homes: &[Home],
    key: &str,
) -> std::result::Result<Option<String>, String> {
    for home in homes {
        let request = ObjectRequest::Explain {
            space: home.space(),
            key: key.to_owned(),
        };
        let text = ask(env, &home.object(), &request, deadline::ADMIN_MS).await?;
        if !text.is_empty() {
            return Ok(Some(text));
        }
    }
    Ok(None)
}

fn isolate_id() -> Option<u64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).ok()?;
    Some(u64::from_le_bytes(bytes))
}

fn policy(env: &Env) -> FlushPolicy {
    let mut policy = FlushPolicy::default();
    if let Some(ms) = env
        .var("COUNTS_FLUSH_MS")
        .ok()
        .and_then(|v| v.to_string().parse().ok())
        .filter(|ms| *ms > 0)
    {
        policy.interval_ms = ms;
    }
    policy
}
