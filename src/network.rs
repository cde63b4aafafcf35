//! The network's Durable Object and the isolate's side of talking to it.
//!
//! One object per network (the `aff_id`) adds up the duplicate-IP and sub-ID counts every isolate
//! sends it in batches (`clickgate_core::counts`). The click never waits for it: the isolate counts
//! locally, answers, and flushes in `ctx.wait_until`. Both halves only move bytes; the arithmetic
//! and the flush policy are the core's.
//!
//! The same class also keeps the networks' click-id replay records, in objects of their own
//! (`replay:{network}:{shard}`, see `clickgate_core::signing`), so one busy network's records are
//! spread over several objects and never queue behind its counts.
//!
//! The fraud report's hours live in the network's object too (`clickgate_core::report`), sent with
//! the counts. One more object, [`DIRECTORY`], knows which networks have report data since which
//! day: each network's object lists itself there on its first batch of a UTC day, and a report
//! asks the listed networks.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use clickgate_core::admin::Action;
use clickgate_core::click::Id;
use clickgate_core::click_ids::{self, Asked, AskedAfter, Detected, Outbox, Step, Ticket};
use clickgate_core::conversion::{self, Seen};
use clickgate_core::counts::{
    Batch, ClickKeys, Flush, FlushPolicy, LocalCounts, NetworkCounts, Reply, StoreKey,
};
use clickgate_core::decide::ClickOutcome;
use clickgate_core::flood::{Event, FloodBlock, FloodView, Thresholds};
use clickgate_core::home::{self, Home, Space};
use clickgate_core::log::fault_line;
use clickgate_core::report::{self, ConversionRow, HourRows, ReportQuery};
use clickgate_core::rules::Counters;
use clickgate_core::signing::{self, ReplayAnswer};
use clickgate_core::token::NONCE_LEN;
use futures_util::future::{join_all, select, Either};
use worker::js_sys::{Object, Reflect};
use worker::wasm_bindgen::JsValue;
use worker::worker_sys::web_sys;
use worker::{
    console_error, console_log, durable_object, Context, Delay, DurableObject, Env, ListOptions,
    Method, Request, Response, Result, State, Storage,
};

/// The Durable Object binding (see wrangler.toml).
pub const BINDING: &str = "NETWORK";
/// The object that lists the networks with report data. Ids cannot hold `:`, so no network's
/// object has this name.
const DIRECTORY: &str = "directory:networks";
/// A report asks this many networks' objects at once.
const REPORT_FAN_OUT: usize = 16;
/// Storage calls take at most this many keys.
const STORAGE_CHUNK: usize = 128;
/// A flush drive stops after this many steps; the next click picks it up again. Work after a
/// response is cut off by the runtime after about 30 s anyway.
const MAX_STEPS: usize = 8;
/// Keys read per page by the daily sweep.
const SWEEP_PAGE: usize = 1000;
/// A background replay drive stops after this long and leaves the rest to the next click's;
/// work after a response is cut off by the runtime after about 30 s.
const REPLAY_DRIVE_MS: u64 = 20_000;

thread_local! {
    static COUNTS: RefCell<Option<LocalCounts>> = const { RefCell::new(None) };
    static OUTBOX: RefCell<Outbox> = RefCell::new(Outbox::default());
    static NEXT_TICKET: Cell<Ticket> = const { Cell::new(0) };
}

/// Counts a click in this isolate and returns what its filters read (`None`: the network's object
/// has not answered for too long, or this isolate has no random id to name its batches).
pub fn record(env: &Env, keys: &ClickKeys, now_ms: u64) -> Option<Counters> {
    with_local(env, |counts| counts.record(keys, now_ms)).flatten()
}

/// Counts a decided click for its network: flood threshold, report, and its kept decision.
pub fn record_outcome(
    env: &Env,
    outcome: &ClickOutcome,
    log_line: &str,
    thresholds: Thresholds,
    nonce: &[u8; NONCE_LEN],
) {
    with_local(env, |counts| {
        counts.record_outcome(outcome, log_line, thresholds, nonce)
    });
}

/// Counts a postback in its network's report.
pub fn record_conversion(env: &Env, row: &ConversionRow, now_ms: u64) {
    with_local(env, |counts| counts.record_conversion(row, now_ms));
}

/// The isolate's counts, made on first use (`None` without a random id to name its batches).
fn with_local<T>(env: &Env, f: impl FnOnce(&mut LocalCounts) -> T) -> Option<T> {
    COUNTS.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = Some(LocalCounts::new(isolate_id()?, policy(env)));
        }
        let counts = cell.as_mut()?;
        let out = f(counts);
        log_eviction(counts);
        Some(out)
    })
}

/// Prints the isolate's `counts_evicted` line when it forgot networks. Kept out of the generic
/// `with_local`, so its formatting is in the Worker once.
#[inline(never)]
fn log_eviction(counts: &mut LocalCounts) {
    if let Some(line) = counts.take_eviction_line() {
        console_log!("{line}");
    }
}

/// What this isolate knows of the network's flood state (its object's last answer).
pub fn flood_view(network: &Id, thresholds: &Thresholds, now_ms: u64) -> FloodView {
    COUNTS.with(|cell| {
        cell.borrow()
            .as_ref()
            .map(|c| c.flood_view(network, thresholds, now_ms))
            .unwrap_or_default()
    })
}

/// Starts whatever the network's counts need after this click (a batch, or a timer for one),
/// bound for the object `home` names.
pub fn after_click(env: &Env, ctx: &Context, network: &Id, home: Home, now_ms: u64) {
    let step = with_counts(|c| c.flush(network, now_ms));
    if step != Flush::Nothing {
        let (env, network) = (env.clone(), network.clone());
        ctx.wait_until(async move { drive(&env, &network, &home, step).await });
    }
}

fn with_counts(f: impl FnOnce(&mut LocalCounts) -> Flush) -> Flush {
    COUNTS.with(|cell| cell.borrow_mut().as_mut().map_or(Flush::Nothing, f))
}

async fn drive(env: &Env, network: &Id, home: &Home, mut step: Flush) {
    for _ in 0..MAX_STEPS {
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
                        console_error!(
                            "{}",
                            fault_line("network_object", &format!("{network}: {e}"))
                        );
                        with_counts(|c| c.failed(network, seq, now))
                    }
                }
            }
        };
    }
}

/// How long each kind of object call may take before it counts as failed (the README lists them).
/// An object that never answers must not hold a click, a postback or an operator for longer:
/// past its deadline a call is a fault like any other, handled by its caller's policy.
mod deadline {
    /// A batch of click-id replay checks: the clicks waiting on it are judged by
    /// `on_replay_store_fault` once this has passed, as the README promises.
    pub const REPLAY_MS: u64 = clickgate_core::click_ids::LOST_AFTER_MS;
    /// A postback's duplicate lookup: past it the conversion is judged on its other checks.
    pub const CONVERSION_MS: u64 = 5_000;
    /// An operator's block, lift or explain, the directory's network list, and each network's
    /// report hours (a network that misses it is named in `missing_networks`).
    pub const ADMIN_MS: u64 = 5_000;
    /// A counts batch, sent after the response: past it the batch is sent again later.
    pub const BATCH_MS: u64 = 10_000;
    /// A network object listing itself in the directory (retried with its next batch).
    pub const LIST_MS: u64 = 5_000;
}

/// One request to a Network object: POST `body` to `path` on the object named `object`; the answer's
/// text when it is 200 within `deadline_ms`, otherwise why not.
async fn ask(
    env: &Env,
    object: &str,
    path: &str,
    body: &str,
    deadline_ms: u64,
) -> std::result::Result<String, String> {
    let call = Box::pin(ask_now(env, object, path, body));
    let timer = Box::pin(Delay::from(Duration::from_millis(deadline_ms)));
    match select(call, timer).await {
        Either::Left((answer, _)) => answer,
        Either::Right(((), _)) => Err(format!("{object}{path}: no answer in {deadline_ms} ms")),
    }
}

async fn ask_now(
    env: &Env,
    object: &str,
    path: &str,
    body: &str,
) -> std::result::Result<String, String> {
    let stub = env
        .durable_object(BINDING)
        .and_then(|ns| ns.get_by_name(object))
        .map_err(|e| format!("binding {BINDING}: {e}"))?;
    // Built with the runtime's own RequestInit: the SDK's carries every `cf` option (image
    // resizing and the rest) and their names into the Worker for nothing.
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    let request = web_sys::Request::new_with_str_and_init(&format!("https://network{path}"), &init)
        .map(Request::from)
        .map_err(|e| format!("{e:?}"))?;
    let mut response = stub
        .fetch_with_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let text = response.text().await.map_err(|e| e.to_string())?;
    match response.status_code() {
        200 => Ok(text),
        status => Err(format!("{object}{path}: status {status}: {text}")),
    }
}

async fn send(env: &Env, home: &Home, batch: &Batch) -> std::result::Result<Reply, String> {
    Reply::parse(
        &ask(
            env,
            &home.object(),
            &home.path("/batch"),
            &batch.to_json(),
            deadline::BATCH_MS,
        )
        .await?,
    )
}

/// How often a click waiting for its replay answer looks again. It looks on its own timer, so
/// whatever it does next (collecting its answer, or sending the next batch) runs in its own request.
const REPLAY_LOOK_MS: u64 = 1;

/// How a click's replay check begins: answered at once, or a wait for the replay object.
pub enum Replay<W> {
    /// This isolate knows the id in use: a replay, no question asked.
    Known(ReplayAnswer),
    Wait(W),
}

/// Asks the replay object whether a network's click id was used before (and records this use).
/// The one Durable Object call a click waits for: only signed clicks that carry a click id make it,
/// and not when this isolate already knows the id in use. The question goes out with the others
/// that arrive meanwhile (`clickgate_core::click_ids`): the click whose question finds its object idle
/// sends; the others look again every millisecond, and the first to find the object idle sends
/// the questions queued by then.
pub fn replay(
    env: &Env,
    network: &Id,
    click_id: &str,
    expires_ms: u64,
    now_ms: u64,
) -> Replay<impl std::future::Future<Output = ReplayAnswer>> {
    let (object, key) = signing::replay_object(network, click_id);
    let ticket = next_ticket();
    let turn = match with_outbox(|o| o.ask(&object, ticket, &key, expires_ms, now_ms)) {
        Asked::Replayed => return Replay::Known(ReplayAnswer::Replayed),
        Asked::Send(batch) => Some(batch),
        Asked::Wait => None,
    };
    let env = env.clone();
    Replay::Wait(async move { wait_for_answer(&env, &object, ticket, turn, now_ms).await })
}

async fn wait_for_answer(
    env: &Env,
    object: &str,
    ticket: Ticket,
    mut turn: Option<click_ids::Questions>,
    asked_ms: u64,
) -> ReplayAnswer {
    loop {
        if let Some(batch) = turn.take() {
            send_replay_batch(env, &batch).await;
        }
        if let Some(answer) = with_outbox(|o| o.answer(ticket)) {
            return answer;
        }
        let now_ms = crate::now_ms();
        if now_ms >= asked_ms.saturating_add(click_ids::LOST_AFTER_MS) {
            with_outbox(|o| o.give_up(object, ticket));
            console_error!(
                "{}",
                fault_line("replay_store", &format!("{object}: no answer in time"))
            );
            return ReplayAnswer::Unavailable;
        }
        turn = with_outbox(|o| o.take_turn(object, now_ms));
        if turn.is_none() {
            Delay::from(Duration::from_millis(REPLAY_LOOK_MS)).await;
        }
    }
}

fn next_ticket() -> Ticket {
    NEXT_TICKET.with(|t| t.replace(t.get().wrapping_add(1)))
}

/// A click redirected before its id is checked (`replay_check: after_redirect`): `Replayed` if
/// this isolate has seen the id in use, else `AfterRedirect`, its question queued for the replay
/// object and sent in the background with the others that arrive meanwhile.
pub fn replay_after(
    env: &Env,
    ctx: &Context,
    network: &Id,
    click_id: &str,
    expires_ms: u64,
    now_ms: u64,
) -> ReplayAnswer {
    let (object, key) = signing::replay_object(network, click_id);
    let ticket = next_ticket();
    let who = Detected {
        network: network.as_str().to_owned(),
        click_id: click_id.to_owned(),
    };
    match with_outbox(|o| o.ask_after(&object, ticket, &key, expires_ms, now_ms, who)) {
        AskedAfter::Replayed => ReplayAnswer::Replayed,
        AskedAfter::Queued(step) => {
            if step != Step::Nothing {
                let env = env.clone();
                ctx.wait_until(async move { drive_replay(&env, &object, step, now_ms).await });
            }
            ReplayAnswer::AfterRedirect
        }
    }
}

/// Carries out an object's background replay steps: wait, send, and on.
async fn drive_replay(env: &Env, object: &str, mut step: Step, started_ms: u64) {
    loop {
        step = match step {
            Step::Nothing => return,
            Step::WakeIn(ms) => {
                Delay::from(Duration::from_millis(ms)).await;
                with_outbox(|o| o.wake(object, crate::now_ms()))
            }
            Step::Send(batch) => {
                send_replay_batch(env, &batch).await;
                with_outbox(|o| o.next_step(object, crate::now_ms()))
            }
        };
        if crate::now_ms() > started_ms + REPLAY_DRIVE_MS {
            return;
        }
    }
}

fn with_outbox<T>(f: impl FnOnce(&mut Outbox) -> T) -> T {
    OUTBOX.with(|o| f(&mut o.borrow_mut()))
}

/// Sends one batch of click ids and records each click's answer for it to collect; logs the ids
/// asked after their redirect that the object had seen.
async fn send_replay_batch(env: &Env, batch: &click_ids::Questions) {
    let answers = ask(
        env,
        &batch.object,
        "/replay",
        &batch.body,
        deadline::REPLAY_MS,
    )
    .await
    .and_then(|text| click_ids::parse_answers(&text, batch.tickets.len()))
    .unwrap_or_else(|e| {
        console_error!(
            "{}",
            fault_line("replay_store", &format!("{}: {e}", batch.object))
        );
        vec![ReplayAnswer::Unavailable; batch.tickets.len()]
    });
    for detected in with_outbox(|o| o.returned(batch, &answers)) {
        console_log!("{}", detected.log_line());
    }
}

/// Carries an operator's lift or block to the network's object (`home`, where the network's
/// counts go); returns the block left in force.
pub async fn operate(
    env: &Env,
    home: &Home,
    action: &Action,
) -> std::result::Result<Option<FloodBlock>, String> {
    let body = match action {
        Action::Block { by, .. } => format!("block\n{by}"),
        Action::Unblock { by, .. } => format!("unblock\n{by}"),
    };
    let text = ask(
        env,
        &home.object(),
        &home.path("/operate"),
        &body,
        deadline::ADMIN_MS,
    )
    .await?;
    Reply::parse(&text).map(|r| r.block)
}

/// Asks the network's object whether a conversion was reported before (and records it, counting
/// it toward the network's conversion rate when `counts`); with `approvals`, whether its click
/// still has room for an approved conversion under that key (and takes it). `None`: the object
/// did not answer.
pub async fn conversion_seen(
    env: &Env,
    home: &Home,
    key: &str,
    expires_ms: u64,
    counts: bool,
    approvals: Option<(String, u32)>,
) -> Option<Seen> {
    let mut body = format!("{key}\n{expires_ms}\n{}", u8::from(counts));
    if let Some((key, max)) = approvals {
        body.push_str(&format!("\n{key}\n{max}"));
    }
    let answer = ask(
        env,
        &home.object(),
        &home.path("/conversion"),
        &body,
        deadline::CONVERSION_MS,
    )
    .await;
    match answer.as_deref() {
        Ok("fresh") => Some(Seen::Fresh),
        Ok("replayed") => Some(Seen::Duplicate),
        Ok("capped") => Some(Seen::Capped),
        other => {
            console_error!(
                "{}",
                fault_line(
                    "conversion_store",
                    &format!("{}: {other:?}", home.network())
                )
            );
            None
        }
    }
}

/// The report hours in the query's range of every network in the objects the directory lists (a
/// shared object answers for each of its networks); the objects that did not answer are named,
/// not guessed at.
pub async fn report(
    env: &Env,
    query: &ReportQuery,
) -> std::result::Result<(Vec<(String, Vec<(u32, HourRows)>)>, Vec<String>), String> {
    let listed = ask(
        env,
        DIRECTORY,
        "/networks",
        &query.from_day().to_string(),
        deadline::ADMIN_MS,
    )
    .await?;
    let objects: Vec<String> = listed.lines().map(str::to_owned).collect();
    let body = format!("{}\n{}", query.from_hour, query.to_hour);
    let mut answered = Vec::new();
    let mut missing = Vec::new();
    for chunk in objects.chunks(REPORT_FAN_OUT) {
        let body = body.as_str();
        let answers = join_all(chunk.iter().map(|object| {
            let path = home::report_path(object);
            async move { ask(env, object, &path, body, deadline::ADMIN_MS).await }
        }))
        .await;
        for (object, answer) in chunk.iter().zip(answers) {
            match answer.and_then(|text| report::parse_object_answer(object, &text)) {
                Ok(networks) => answered.extend(networks),
                Err(e) => {
                    console_error!("{}", fault_line("report", &format!("{object}: {e}")));
                    missing.push(object.clone());
                }
            }
        }
    }
    Ok((answered, missing))
}

/// The kept decision of a click, by its network's home and explain key (`None`: not kept).
pub async fn explanation(
    env: &Env,
    home: &Home,
    key: &str,
) -> std::result::Result<Option<String>, String> {
    let path = home.path("/explain");
    let text = ask(env, &home.object(), &path, key, deadline::ADMIN_MS).await?;
    Ok((!text.is_empty()).then_some(text))
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

/// The network's object. Between requests it keeps nothing but its storage: each batch reads the
/// keys it touches, and the runtime's input gate holds other requests while storage calls are out,
/// so read-add-write is not interleaved.
#[durable_object(alarm)]
pub struct Network {
    state: State,
    env: Env,
    /// Whether this instance has made sure the daily sweep is scheduled: once is enough.
    sweep_scheduled: Cell<bool>,
    /// The UTC day this instance last listed its network in the directory.
    listed_day: Cell<u32>,
    /// Test-only: the `NETWORK_FAULT_INJECTION` var (`hang` or `error`), which the end-to-end
    /// suite sets to play an object that never answers or always fails. Unset in wrangler.toml
    /// and in any real deploy; read once per instance.
    fault: Option<InjectedFault>,
}

#[derive(Clone, Copy)]
enum InjectedFault {
    Hang,
    Error,
}

impl DurableObject for Network {
    fn new(state: State, env: Env) -> Self {
        Network {
            state,
            sweep_scheduled: Cell::new(false),
            listed_day: Cell::new(0),
            fault: match env.var("NETWORK_FAULT_INJECTION").map(|v| v.to_string()) {
                Ok(v) if v == "hang" => Some(InjectedFault::Hang),
                Ok(v) if v == "error" => Some(InjectedFault::Error),
                _ => None,
            },
            env,
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match self.fault {
            None => {}
            // A timer, not a promise that never settles: the runtime fails a request whose
            // promise can never settle, which would make this an error, not a hang.
            Some(InjectedFault::Hang) => Delay::from(Duration::from_secs(600)).await,
            Some(InjectedFault::Error) => return Response::error("injected fault", 500),
        }
        if req.method() != Method::Post {
            return Response::error("POST /batch or /replay only", 404);
        }
        // The raw URL, split by the core: parsing it into a `Url` brings the url crate (and its
        // tables) into the Worker.
        let url = req.inner().url();
        let (_, query) = clickgate_core::click::split_url(&url);
        let space = match Space::from_query(query) {
            Ok(space) => space,
            Err(e) => return Response::error(e, 400),
        };
        let space = &space;
        match req.path().as_str() {
            "/batch" => {}
            "/replay" => return self.replay(space, &req.text().await?).await,
            "/operate" => return self.operate(space, &req.text().await?).await,
            "/conversion" => return self.conversion(space, &req.text().await?).await,
            "/report" => return self.report(space, &req.text().await?).await,
            "/explain" => return self.explain(space, &req.text().await?).await,
            "/list" => return self.list(&req.text().await?).await,
            "/networks" => return self.networks(&req.text().await?).await,
            _ => return Response::error("POST /batch or /replay only", 404),
        }
        let batch = match Batch::parse(&req.text().await?) {
            Ok(batch) => batch,
            Err(e) => return Response::error(e, 400),
        };
        if !space.admits(&batch.network) {
            return Response::error("a batch of another network", 400);
        }
        let now_ms = crate::now_ms();
        let reply = self
            .with_stored(space, batch.storage_keys(), |counts| {
                counts.apply(&batch, now_ms)
            })
            .await?;
        self.schedule_sweep(now_ms).await?;
        if let Space::Of(network) = space {
            self.list_member(network, now_ms).await?;
        }
        self.list_network(&space.listing(&batch.network), now_ms)
            .await;
        Response::ok(reply.to_json())
    }

    /// Once a day, after 00:00 UTC: deletes yesterday's sketches and histories no window reaches.
    async fn alarm(&self) -> Result<Response> {
        let now_ms = crate::now_ms();
        let storage = self.state.storage();
        let (mut deleted, mut seen) = (0, 0);
        // In pages, so a network with millions of IPs is swept in bounded memory.
        let mut after: Option<String> = None;
        loop {
            let page = page_after(&storage, "", after.as_deref()).await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            seen += page.len();
            let expired: Vec<String> = page
                .into_iter()
                .filter(|(k, v)| {
                    // A shared object's keys are judged without their network's prefix.
                    let key = home::inner_key(k);
                    NetworkCounts::expired_key(key, v, now_ms)
                        || signing::use_record_expired(key, v, now_ms)
                        || report::listing_expired(key, v, now_ms)
                })
                .map(|(k, _)| k)
                .collect();
            for keys in expired.chunks(STORAGE_CHUNK) {
                storage.delete_multiple(keys.to_vec()).await?;
            }
            deleted += expired.len();
        }
        let kept = seen - deleted;
        console_log!("{{\"event\":\"network_sweep\",\"deleted\":{deleted},\"kept\":{kept}}}");
        storage.set_alarm(next_sweep_ms(now_ms) as i64).await?;
        Response::ok("swept")
    }
}

impl Network {
    /// A batch of click-id uses (`clickgate_core::click_ids`), answered in order.
    async fn replay(&self, space: &Space, body: &str) -> Result<Response> {
        let questions = match click_ids::parse_questions(body) {
            Ok(q) => q,
            Err(e) => return Response::error(e, 400),
        };
        let now_ms = crate::now_ms();
        let used = self.used_before(space, &questions, now_ms).await?;
        Response::ok(click_ids::answer_body(&used))
    }

    /// Whether each of these uses (click ids, a click's conversion event) repeats one made before
    /// while still valid; each is recorded until its expiry. One storage read for all their keys,
    /// the core's step in order, one write of what changed. The input gate holds other requests
    /// while the storage calls are out, so two uses of one key cannot both be fresh.
    async fn used_before(
        &self,
        space: &Space,
        uses: &[(&str, u64)],
        now_ms: u64,
    ) -> Result<Vec<bool>> {
        let mut keys: Vec<String> = uses.iter().map(|(k, _)| (*k).to_owned()).collect();
        keys.sort_unstable();
        keys.dedup();
        let stored = read(&self.state, space, keys)
            .await?
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.parse::<u64>().ok()?)))
            .collect();
        let (used, writes) = click_ids::uses(uses, stored, now_ms);
        let changes = writes
            .into_iter()
            .map(|(k, t)| (k, Some(t.to_string())))
            .collect();
        write(&self.state, space, changes).await?;
        self.schedule_sweep(now_ms).await?;
        Ok(used)
    }

    /// An operator's `block\n{by}` or `unblock\n{by}`; answers with the block left in force.
    async fn operate(&self, space: &Space, body: &str) -> Result<Response> {
        let now_ms = crate::now_ms();
        let event = match body.split_once('\n') {
            Some(("block", by)) => Event::Impose { by: by.to_owned() },
            Some(("unblock", by)) => Event::Lift { by: by.to_owned() },
            _ => return Response::error("expected `block|unblock\\n<by>`", 400),
        };
        let block = self
            .with_stored(space, vec![StoreKey::Flood.to_string()], |counts| {
                counts.operate(event, now_ms)
            })
            .await?;
        let reply = Reply {
            block,
            ..Reply::default()
        };
        Response::ok(reply.to_json())
    }

    /// One conversion report: `cv/<key>\n<expires ms>\n<1 to count it>`, optionally followed by
    /// `\ncv/<click key>\n<max approved>` for one that would be approved; answers `fresh`,
    /// `replayed`, or `capped` when the click already holds `max` approvals. A click's approvals
    /// are kept as use records `<click key>/<n>`, so the daily sweep expires them like the rest.
    /// A fresh one that counts adds to the flood day's conversions.
    async fn conversion(&self, space: &Space, body: &str) -> Result<Response> {
        let mut parts = body.split('\n');
        let (Some(key), Some(Ok(expires_ms)), Some(counts)) = (
            parts.next().filter(|k| k.starts_with("cv/")),
            parts.next().map(str::parse::<u64>),
            parts.next(),
        ) else {
            return Response::error("expected `cv/<key>\\n<expires ms>\\n<0|1>`", 400);
        };
        let approvals = match (parts.next(), parts.next().map(str::parse::<u32>)) {
            (Some(k), Some(Ok(max))) if k.starts_with("cv/") => Some((k, max)),
            (None, None) => None,
            _ => return Response::error("expected `cv/<click key>\\n<max approved>`", 400),
        };
        let now_ms = crate::now_ms();
        let seen = self
            .used_before(space, &[(key, expires_ms)], now_ms)
            .await?
            .contains(&true);
        if seen {
            return Response::ok("replayed");
        }
        if let Some((click_key, max)) = approvals {
            let slots = conversion::approval_slots(click_key, max);
            let stored = read(&self.state, space, slots.clone()).await?;
            let Some(slot) = conversion::free_approval_slot(&slots, &stored, now_ms) else {
                return Response::ok("capped");
            };
            self.used_before(space, &[(slot, expires_ms)], now_ms)
                .await?;
        }
        if counts == "1" {
            self.with_stored(space, vec![StoreKey::Flood.to_string()], |c| {
                c.count_conversion(now_ms)
            })
            .await?;
        }
        Response::ok("fresh")
    }

    /// The one way the object changes its counts: load `keys` from storage, let the core step
    /// them, store what changed and print the log lines the step made.
    async fn with_stored<T>(
        &self,
        space: &Space,
        keys: Vec<String>,
        step: impl FnOnce(&mut NetworkCounts) -> T,
    ) -> Result<T> {
        let stored = read(&self.state, space, keys).await?;
        let (mut counts, problems) =
            NetworkCounts::load(stored.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        for problem in problems {
            console_error!("{}", fault_line("network_storage", &problem));
        }
        let out = step(&mut counts);
        write(&self.state, space, counts.take_changes()).await?;
        for line in counts.take_events() {
            console_log!("{line}");
        }
        Ok(out)
    }

    /// The hours of the report in `from_hour\nto_hour`, as stored: the space's, or for a shared
    /// object's members every network listed in it since the first hour's day.
    async fn report(&self, space: &Space, body: &str) -> Result<Response> {
        let Some((from, to)) = body
            .split_once('\n')
            .and_then(|(f, t)| Some((f.parse::<u32>().ok()?, t.parse::<u32>().ok()?)))
        else {
            return Response::error("expected `<from hour>\\n<to hour>`", 400);
        };
        if *space != Space::Members {
            return Response::ok(self.hours(space, from, to).await?);
        }
        let since = from / 24;
        let mut members = Vec::new();
        let storage = self.state.storage();
        let mut after: Option<String> = None;
        loop {
            let page = page_after(&storage, "n/", after.as_deref()).await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (key, day) in &page {
                let network = key.strip_prefix("n/").and_then(|n| Id::parse(n).ok());
                if let Some(network) =
                    network.filter(|_| day.parse().is_ok_and(|d: u32| d >= since))
                {
                    members.push(network);
                }
            }
        }
        let mut answers = Vec::with_capacity(members.len());
        for network in members {
            let hours = self.hours(&Space::Of(network.clone()), from, to).await?;
            answers.push((network, hours));
        }
        Response::ok(report::members_answer(answers))
    }

    /// One space's report hours from `from` up to `to`, as [`report::network_answer`] writes them.
    async fn hours(&self, space: &Space, from: u32, to: u32) -> Result<String> {
        let (start, end) = (
            space.key(&report::hour_key(from)),
            space.key(&report::hour_key(to)),
        );
        let options = ListOptions::new().start(&start).end(&end);
        let mut hours = Vec::new();
        self.state
            .storage()
            .list_with_options(options)
            .await?
            .for_each(&mut |value, key| {
                let key = key.as_string();
                let hour = key
                    .as_deref()
                    .and_then(|k| space.strip(k))
                    .and_then(report::parse_hour_key);
                if let (Some(hour), Some(v)) = (hour, value.as_string()) {
                    hours.push((hour, v));
                }
            });
        Ok(report::network_answer(
            hours.iter().map(|(h, v)| (*h, v.as_str())),
        ))
    }

    /// One click's kept decision by its explain key; empty when there is none.
    async fn explain(&self, space: &Space, key: &str) -> Result<Response> {
        if !matches!(StoreKey::parse(key), Some(StoreKey::Explain(..))) {
            return Response::error("expected an explain key", 400);
        }
        let kept = self.state.storage().get::<String>(&space.key(key)).await?;
        Response::ok(kept.unwrap_or_default())
    }

    /// Lists the object (`name`: its network's, or a shared object's) in the directory once per
    /// UTC day and instance. A failure is logged and tried again with the next batch: the counts
    /// are stored whatever happens here.
    async fn list_network(&self, name: &str, now_ms: u64) {
        let today = (now_ms / clickgate_core::time::DAY_MS) as u32;
        if self.listed_day.get() == today {
            return;
        }
        let body = format!("{name}\n{today}");
        match ask(&self.env, DIRECTORY, "/list", &body, deadline::LIST_MS).await {
            Ok(_) => self.listed_day.set(today),
            Err(e) => console_error!("{}", fault_line("directory", &e)),
        }
    }

    /// A shared object's own list of its networks, `n/{network}` → the last day it had a batch:
    /// what its report reads. Written with every batch (the runtime coalesces it with the batch's
    /// own writes), so the object keeps no list of its networks in memory.
    async fn list_member(&self, network: &Id, now_ms: u64) -> Result<()> {
        let today = (now_ms / clickgate_core::time::DAY_MS) as u32;
        let key = format!("n/{network}");
        self.state.storage().put(&key, today.to_string()).await
    }

    /// The directory's side of `list_network`: `object\nday`.
    async fn list(&self, body: &str) -> Result<Response> {
        let Some((network, day)) = body
            .split_once('\n')
            .filter(|(n, _)| home::is_listable(n))
            .and_then(|(n, d)| Some((n, d.parse::<u32>().ok()?)))
        else {
            return Response::error("expected `<object>\\n<day>`", 400);
        };
        let key = format!("n/{network}");
        let storage = self.state.storage();
        let stored = storage
            .get::<String>(&key)
            .await?
            .and_then(|d| d.parse::<u32>().ok());
        if stored.is_none_or(|d| d < day) {
            storage.put(&key, day.to_string()).await?;
        }
        self.schedule_sweep(crate::now_ms()).await?;
        Response::ok("listed")
    }

    /// The directory's networks with report data on or after the day in `body`, one per line.
    async fn networks(&self, body: &str) -> Result<Response> {
        let Ok(since) = body.trim().parse::<u32>() else {
            return Response::error("expected a day number", 400);
        };
        let mut out = String::new();
        let storage = self.state.storage();
        let mut after: Option<String> = None;
        loop {
            let page = page_after(&storage, "n/", after.as_deref()).await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (key, day) in &page {
                if day.parse::<u32>().is_ok_and(|d| d >= since) {
                    if let Some(network) = key.strip_prefix("n/") {
                        out.push_str(network);
                        out.push('\n');
                    }
                }
            }
        }
        Response::ok(out)
    }

    async fn schedule_sweep(&self, now_ms: u64) -> Result<()> {
        if !self.sweep_scheduled.get() {
            let storage = self.state.storage();
            if storage.get_alarm().await?.is_none() {
                storage.set_alarm(next_sweep_ms(now_ms) as i64).await?;
            }
            self.sweep_scheduled.set(true);
        }
        Ok(())
    }
}

/// Up to a page of the entries whose keys start with `prefix`, after the key `after`, values as
/// text. The storage's `start` is inclusive, so the previous page's last key is left out here.
async fn page_after(
    storage: &Storage,
    prefix: &str,
    after: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let mut options = ListOptions::new().limit(SWEEP_PAGE);
    if !prefix.is_empty() {
        options = options.prefix(prefix);
    }
    if let Some(last) = after {
        options = options.start(last);
    }
    let mut page = Vec::new();
    storage
        .list_with_options(options)
        .await?
        .for_each(&mut |value, key| {
            if let Some(k) = key.as_string().filter(|k| Some(k.as_str()) != after) {
                page.push((k, value.as_string().unwrap_or_default()));
            }
        });
    Ok(page)
}

/// A minute past the next 00:00 UTC.
fn next_sweep_ms(now_ms: u64) -> u64 {
    const DAY: u64 = clickgate_core::time::DAY_MS;
    (now_ms / DAY + 1) * DAY + 60_000
}

/// The stored text values of `keys` in `space` (absent keys and non-text values left out), under
/// the keys as the core names them.
async fn read(state: &State, space: &Space, keys: Vec<String>) -> Result<Vec<(String, String)>> {
    let storage = state.storage();
    let keys: Vec<String> = keys.iter().map(|k| space.key(k)).collect();
    let mut stored = Vec::new();
    for chunk in keys.chunks(STORAGE_CHUNK) {
        storage
            .get_multiple(chunk.to_vec())
            .await?
            .for_each(&mut |value, key| {
                let key = key.as_string();
                let key = key.as_deref().and_then(|k| space.strip(k));
                if let (Some(k), Some(v)) = (key, value.as_string()) {
                    stored.push((k.to_owned(), v));
                }
            });
    }
    Ok(stored)
}

/// Stores `changes` (`None`: delete) under their keys in `space`.
async fn write(state: &State, space: &Space, changes: Vec<(String, Option<String>)>) -> Result<()> {
    let changes = changes.into_iter().map(|(k, v)| (space.key(&k), v));
    let storage = state.storage();
    let (puts, deletes): (Vec<_>, Vec<_>) = changes.into_iter().partition(|(_, v)| v.is_some());
    for chunk in puts.chunks(STORAGE_CHUNK) {
        let object = Object::new();
        for (key, value) in chunk {
            let value = value.as_deref().unwrap_or_default();
            Reflect::set(&object, &JsValue::from_str(key), &JsValue::from_str(value))?;
        }
        storage.put_multiple_raw(object).await?;
    }
    let deletes: Vec<String> = deletes.into_iter().map(|(k, _)| k).collect();
    for chunk in deletes.chunks(STORAGE_CHUNK) {
        storage.delete_multiple(chunk.to_vec()).await?;
    }
    Ok(())
}
