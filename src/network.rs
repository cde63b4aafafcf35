//! The network's Durable Object.
//!
//! One object per network listed in the config (the `aff_id`), and 16 shared by the networks that
//! are not (`clickgate_core::network::home`), adds up the duplicate-IP and sub-ID counts every
//! isolate sends it in batches (`clickgate_core::network::store`), keeps the flood state and the
//! fraud report's hours. It only moves bytes: what a request says is read by
//! `clickgate_core::network::wire`, and the arithmetic is the core's.
//!
//! The same class also keeps the networks' click-id replay records, in objects of their own
//! (`replay:{network}:{shard}`, see `clickgate_core::signing`), so one busy network's records are
//! spread over several objects and never queue behind its counts.
//!
//! One more object, `clickgate_core::stored::DIRECTORY`, knows which objects have report data since
//! which day: each lists itself there on its first batch of a UTC day, and a report asks the listed
//! ones (`clickgate_core::network::directory`). Every key and name is spelled by
//! `clickgate_core::stored`; this file only reads, writes and runs the sweep.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use clickgate_core::click::Id;
use clickgate_core::conversion;
use clickgate_core::log::fault_line;
use clickgate_core::network::click_ids::{self, Unstored};
use clickgate_core::network::directory;
use clickgate_core::network::home::Space;
use clickgate_core::network::store::{self, NetworkCounts};
use clickgate_core::network::wire::{self, Batch, ConversionUse, ObjectRequest, Operation, Reply};
use clickgate_core::report;
use clickgate_core::stored::{self, StoreKey, DIRECTORY, LISTING_PREFIX};
use clickgate_core::time;
use worker::js_sys::{Array, Object, Reflect};
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::spawn_local;
use worker::{
    durable_object, Delay, DurableObject, Env, ListOptions, Request, Response, ResponseBody,
    Result, State, Storage,
};

use crate::console::{log, log_error};
use crate::objects::{ask, deadline};

/// Storage calls take at most this many keys.
const STORAGE_CHUNK: usize = 128;
/// Keys read per page by the daily sweep.
const SWEEP_PAGE: usize = 1000;

/// The network's object. Between requests it keeps nothing but its storage and, as a replay object,
/// the click-id uses it answered in the last [`click_ids::STORE_AFTER_MS`]: each batch reads the keys
/// it touches, and the runtime's input gate holds other requests while storage calls are out, so
/// read-add-write is not interleaved.
#[durable_object(alarm)]
pub struct Network {
    state: State,
    env: Env,
    /// Whether this instance has made sure the daily sweep is scheduled: once is enough.
    sweep_scheduled: Cell<bool>,
    /// The UTC day this instance last listed its network in the directory.
    listed_day: Cell<u32>,
    /// Click-id uses answered and not yet stored (`Network::replay`).
    unstored: Rc<RefCell<Unstored>>,
    /// Test-only: the `NETWORK_FAULT_INJECTION` var (`hang`, `error`, or `error-until:MS` for an
    /// outage that ends at a Unix time in milliseconds), which the end-to-end suite sets to play an
    /// object that never answers or fails for a while. Unset in wrangler.toml and in any real
    /// deploy; read once per instance.
    fault: Option<InjectedFault>,
}

#[derive(Clone, Copy)]
enum InjectedFault {
    Hang,
    Error,
    ErrorUntil(u64),
}

impl DurableObject for Network {
    fn new(state: State, env: Env) -> Self {
        Network {
            state,
            sweep_scheduled: Cell::new(false),
            listed_day: Cell::new(0),
            unstored: Rc::default(),
            fault: match env.var("NETWORK_FAULT_INJECTION").map(|v| v.to_string()) {
                Ok(v) if v == "hang" => Some(InjectedFault::Hang),
                Ok(v) if v == "error" => Some(InjectedFault::Error),
                Ok(v) => v
                    .strip_prefix("error-until:")
                    .and_then(|ms| ms.parse().ok())
                    .map(InjectedFault::ErrorUntil),
                _ => None,
            },
            env,
        }
    }

    /// The object's HTTP entry point, which the trait requires: the isolates call [`Network::ask`]
    /// instead, and both answer the same requests the same way.
    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // The raw URL, split by the core: parsing it into a `Url` brings the url crate (and its
        // tables) into the Worker.
        let url = req.inner().url();
        let method = req.method();
        let body = req.text().await?;
        self.answer(method.as_ref(), &url, &body).await
    }

    /// Once a day, after 00:00 UTC: deletes what has expired (counts no window reaches, applied
    /// batches and flood states of quiet networks, replay and conversion records, report hours,
    /// kept decisions, and `n/` listings).
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
                .filter(|(k, v)| store::expired(k, v, now_ms))
                .map(|(k, _)| k)
                .collect();
            for keys in expired.chunks(STORAGE_CHUNK) {
                storage.delete_multiple(keys.to_vec()).await?;
            }
            deleted += expired.len();
        }
        let kept = seen - deleted;
        log(&format!(
            "{{\"event\":\"network_sweep\",\"deleted\":{deleted},\"kept\":{kept}}}"
        ));
        storage.set_alarm(next_sweep_ms(now_ms) as i64).await?;
        Response::ok("swept")
    }
}

/// The call the isolates make (`crate::objects::ask`): a method on the object's class, called
/// through the stub as a JavaScript RPC, where `fetch` would build a Request, its headers and a body
/// stream on each side of every call and a Response on the way back (and bring the code that builds
/// them into the Worker). The answer is `[status, text]`, as `fetch` would have answered.
#[wasm_bindgen(
    wasm_bindgen = ::worker::wasm_bindgen,
    wasm_bindgen_futures = ::worker::wasm_bindgen_futures,
    js_sys = ::worker::js_sys
)]
impl Network {
    #[wasm_bindgen(js_name = ask)]
    #[allow(unreachable_pub)] // wasm-bindgen exports only `pub` methods
    pub async fn ask_call(
        &self,
        method: String,
        target: String,
        body: String,
    ) -> std::result::Result<JsValue, JsValue> {
        let answer = self.answer(&method, &target, &body).await?;
        let text = match answer.body() {
            ResponseBody::Body(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            ResponseBody::Empty | ResponseBody::Stream(_) => String::new(),
        };
        let pair = Array::of2(&JsValue::from(answer.status_code()), &JsValue::from(text));
        Ok(pair.into())
    }
}

impl Network {
    /// One request, however it came (`fetch` or [`Network::ask`]): `target` is the path and query
    /// the core encoded (`ObjectRequest::encode`), with or without a scheme and host.
    async fn answer(&self, method: &str, target: &str, body: &str) -> Result<Response> {
        match self.fault {
            None => {}
            // A timer, not a promise that never settles: the runtime fails a request whose
            // promise can never settle, which would make this an error, not a hang.
            Some(InjectedFault::Hang) => Delay::from(Duration::from_secs(600)).await,
            Some(InjectedFault::Error) => return Response::error("injected fault", 500),
            Some(InjectedFault::ErrorUntil(end_ms)) if crate::now_ms() < end_ms => {
                return Response::error("injected fault", 500)
            }
            Some(InjectedFault::ErrorUntil(_)) => {}
        }
        let (path, query) = clickgate_core::click::split_url(target);
        let request = match ObjectRequest::parse(method, path, query, body) {
            Ok(request) => request,
            Err(e) => return Response::error(e.to_string(), e.status()),
        };
        match request {
            ObjectRequest::Batch { space, batch } => self.batch(&space, &batch).await,
            ObjectRequest::ClickIds { space, uses } => self.replay(&space, &uses).await,
            ObjectRequest::Conversion { space, conversion } => {
                self.conversion(&space, conversion).await
            }
            ObjectRequest::Reject {
                space,
                key,
                expires_ms,
                reason,
            } => self.reject(&space, key, expires_ms, &reason).await,
            ObjectRequest::Operate { space, operation } => self.operate(&space, operation).await,
            ObjectRequest::Report {
                space,
                from_hour,
                to_hour,
            } => self.report(&space, from_hour, to_hour).await,
            ObjectRequest::Explain { space, key } => self.explain(&space, &key).await,
            ObjectRequest::List { object, day } => self.list(&object, day).await,
            ObjectRequest::Networks { since_day } => self.networks(since_day).await,
        }
    }

    /// An isolate's counts: added once, answered with the totals of their keys and the block.
    async fn batch(&self, space: &Space, batch: &Batch) -> Result<Response> {
        let now_ms = crate::now_ms();
        let reply = self
            .with_stored(space, batch.storage_keys(), |counts| {
                counts.apply(batch, now_ms)
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

    /// A batch of click-id uses (`clickgate_core::network::click_ids`), answered in order from one
    /// storage read and the uses answered but not yet stored, which are stored together
    /// [`click_ids::STORE_AFTER_MS`] after the first of them: one commit for every batch in that
    /// window, not one per batch. The input gate holds other requests while the read is out, so
    /// two uses of one key cannot both be fresh.
    async fn replay(&self, space: &Space, uses: &[(String, u64)]) -> Result<Response> {
        let keyed: Vec<(String, u64)> = uses.iter().map(|(k, e)| (space.key(k), *e)).collect();
        let questions: Vec<(&str, u64)> = keyed.iter().map(|(k, e)| (k.as_str(), *e)).collect();
        let now_ms = crate::now_ms();
        let keys = self.unstored.borrow().to_read(&questions);
        let stored: HashMap<String, u64> = read(&self.state, &Space::Whole, keys)
            .await?
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
            .collect();
        let (used, schedule) = self
            .unstored
            .borrow_mut()
            .answer(&questions, stored, now_ms);
        if schedule {
            self.store_later();
        }
        self.schedule_sweep(now_ms).await?;
        Response::ok(wire::encode_click_id_answers(&used))
    }

    /// Stores the held click-id uses once [`click_ids::STORE_AFTER_MS`] has passed. A task of the
    /// object's own, not of the request that held the first use: an object's timers and storage
    /// outlive each of its requests, and a task costs the Worker less code than a request's
    /// `waitUntil`. A failed store is logged; its uses are lost, as in a crash.
    fn store_later(&self) {
        let storage = self.state.storage();
        let unstored = Rc::clone(&self.unstored);
        spawn_local(async move {
            Delay::from(Duration::from_millis(click_ids::STORE_AFTER_MS)).await;
            let held = unstored.borrow_mut().take();
            let changes = held.into_iter().map(|(k, t)| (k, Some(t.to_string())));
            // The held keys are storage keys already (`Network::replay`).
            if let Err(e) = write(&storage, &Space::Whole, changes.collect()).await {
                log_error(&fault_line("replay_store", &e.to_string()));
            }
        });
    }

    /// Stores one-time use records (a click id, a conversion event, an approval slot) with their
    /// expiry; the daily sweep deletes them once past it.
    async fn record_uses(
        &self,
        space: &Space,
        writes: Vec<(String, u64)>,
        now_ms: u64,
    ) -> Result<()> {
        let changes = writes
            .into_iter()
            .map(|(k, t)| (k, Some(t.to_string())))
            .collect();
        write(&self.state.storage(), space, changes).await?;
        self.schedule_sweep(now_ms).await
    }

    /// An operator's block or lift; answers with the block left in force.
    async fn operate(&self, space: &Space, operation: Operation) -> Result<Response> {
        let now_ms = crate::now_ms();
        let event = operation.event();
        let (block, alerts) = self
            .with_stored(space, vec![StoreKey::Flood.to_string()], |counts| {
                (counts.operate(event, now_ms), counts.take_alerts())
            })
            .await?;
        let reply = Reply {
            block,
            alerts,
            ..Reply::default()
        };
        Response::ok(reply.to_json())
    }

    /// One conversion report: one storage read of its event's use record and its click's
    /// approval slots, the core's step, one write of what changed; a fresh one that counts adds
    /// to the flood day's conversions. The approval slots are use records `<click key>/<n>`, so
    /// the daily sweep expires them like the rest.
    async fn conversion(&self, space: &Space, asked: ConversionUse) -> Result<Response> {
        let now_ms = crate::now_ms();
        let stored = read(&self.state, space, store::conversion_keys(&asked)).await?;
        let step = store::conversion_step(&asked, &stored, now_ms);
        self.record_uses(space, step.writes, now_ms).await?;
        if step.counts_toward_flood {
            self.with_stored(space, vec![StoreKey::Flood.to_string()], |c| {
                c.count_conversion(now_ms)
            })
            .await?;
        }
        Response::ok(wire::encode_seen(&step.seen))
    }

    /// Another system's rejection of a click: kept beside its conversion records unless one is
    /// kept already, answered with the one kept.
    async fn reject(
        &self,
        space: &Space,
        key: String,
        expires_ms: u64,
        reason: &str,
    ) -> Result<Response> {
        let now_ms = crate::now_ms();
        let stored = read(&self.state, space, vec![key.clone()]).await?;
        let held = stored.first().map(|(_, v)| v.as_str());
        let (kept, value) = conversion::reject_step(held, reason, expires_ms, now_ms);
        if let Some(value) = value {
            write(&self.state.storage(), space, vec![(key, Some(value))]).await?;
            self.schedule_sweep(now_ms).await?;
        }
        Response::ok(wire::encode_rejected(&kept))
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
            log_error(&fault_line("network_storage", &problem));
        }
        let out = step(&mut counts);
        write(&self.state.storage(), space, counts.take_changes()).await?;
        for line in counts.take_events() {
            log(&line);
        }
        Ok(out)
    }

    /// The hours of the report from `from` up to `to`, as stored: the space's, or for a shared
    /// object's members every network listed in it since the first hour's day, read one page of
    /// members at a time and folded as they are read ([`report::Networks`]), so made-up ids cost
    /// the answer bounded memory.
    async fn report(&self, space: &Space, from: u32, to: u32) -> Result<Response> {
        if *space != Space::Members {
            let hours = self.hours(space, from, to).await?;
            return Response::ok(report::network_answer(
                hours.iter().map(|(h, v)| (*h, v.as_str())),
            ));
        }
        let storage = self.state.storage();
        let since = time::day_of_hour(from);
        let mut members = report::Networks::default();
        let mut after: Option<String> = None;
        loop {
            let page = page_after(&storage, LISTING_PREFIX, after.as_deref()).await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (key, day) in &page {
                let network =
                    directory::listed_since(key, day, since).and_then(|n| Id::parse(n).ok());
                let Some(network) = network else {
                    continue;
                };
                let mut hours = Vec::new();
                for (hour, stored) in self.hours(&Space::Of(network.clone()), from, to).await? {
                    match report::HourRows::decode(&stored) {
                        Ok(rows) => hours.push((hour, rows)),
                        Err(e) => log_error(&fault_line("report", &format!("{network}: {e}"))),
                    }
                }
                members.add(network.as_str(), hours);
            }
        }
        Response::ok(members.answer())
    }

    /// One space's report hours from `from` up to `to`, as stored.
    async fn hours(&self, space: &Space, from: u32, to: u32) -> Result<Vec<(u32, String)>> {
        let (start, end) = (
            space.key(&stored::hour_key(from)),
            space.key(&stored::hour_key(to)),
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
                    .and_then(stored::parse_hour_key);
                if let (Some(hour), Some(v)) = (hour, value.as_string()) {
                    hours.push((hour, v));
                }
            });
        Ok(hours)
    }

    /// One click's kept decision by its explain key; empty when there is none.
    async fn explain(&self, space: &Space, key: &str) -> Result<Response> {
        let kept = self.state.storage().get::<String>(&space.key(key)).await?;
        Response::ok(kept.unwrap_or_default())
    }

    /// Lists the object (`name`: its network's, or a shared object's) in the directory once per
    /// UTC day and instance. A failure is logged and tried again with the next batch: the counts
    /// are stored whatever happens here.
    async fn list_network(&self, name: &str, now_ms: u64) {
        let today = time::utc_day(now_ms);
        if self.listed_day.get() == today {
            return;
        }
        let request = ObjectRequest::List {
            object: name.to_owned(),
            day: today,
        };
        match ask(&self.env, DIRECTORY, &request, deadline::LIST_MS).await {
            Ok(_) => self.listed_day.set(today),
            Err(e) => log_error(&fault_line("directory", &e)),
        }
    }

    /// A shared object's own list of its networks, `n/{network}` → the last day it had a batch:
    /// what its report reads. Written with every batch (the runtime coalesces it with the batch's
    /// own writes), so the object keeps no list of its networks in memory.
    async fn list_member(&self, network: &Id, now_ms: u64) -> Result<()> {
        let today = time::utc_day(now_ms);
        let key = stored::listing_key(network.as_str());
        self.state.storage().put(&key, today.to_string()).await
    }

    /// The directory's side of `list_network`: `object` had report data on `day`.
    async fn list(&self, object: &str, day: u32) -> Result<Response> {
        let key = stored::listing_key(object);
        let storage = self.state.storage();
        let listed = storage.get::<String>(&key).await?;
        if directory::relists(listed.as_deref(), day) {
            storage.put(&key, day.to_string()).await?;
        }
        self.schedule_sweep(crate::now_ms()).await?;
        Response::ok(wire::LISTED)
    }

    /// The directory's objects with report data on or after `since`.
    async fn networks(&self, since: u32) -> Result<Response> {
        let out = listed_since(&self.state.storage(), since).await?;
        Response::ok(wire::encode_objects(out.iter().map(String::as_str)))
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

/// The names listed under `n/` (a directory's objects, a shared object's networks) with report
/// data on or after `since`, in key order.
async fn listed_since(storage: &Storage, since: u32) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = page_after(storage, LISTING_PREFIX, after.as_deref()).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        names.extend(
            page.iter()
                .filter_map(|(key, day)| directory::listed_since(key, day, since))
                .map(str::to_owned),
        );
    }
    Ok(names)
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
    time::next_midnight_ms(now_ms) + 60_000
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
async fn write(
    storage: &Storage,
    space: &Space,
    changes: Vec<(String, Option<String>)>,
) -> Result<()> {
    let changes = changes.into_iter().map(|(k, v)| (space.key(&k), v));
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
