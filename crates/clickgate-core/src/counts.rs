//! The counts behind the duplicate-IP and sub-ID filters, shared by every isolate of a network.
//!
//! Each network (affiliate) has one Durable Object that holds its counts; the object is the only
//! place all isolates' clicks meet. A click never waits for it: the isolate counts locally, judges
//! the click on what it knows (the object's last answer plus its own clicks since), and sends what
//! it counted in a batch after the response. The object adds the batch and answers with the
//! totals for the keys in it, which refreshes what the isolate knows.
//!
//! This module is both halves as pure state machines: [`LocalCounts`] is the isolate's side (record
//! a click, say when to flush, take the answer), [`NetworkCounts`] the object's (apply a batch
//! exactly once, answer). The Worker moves the bytes and reads the clock; replay runs a
//! [`NetworkCounts`] directly, which is what the edge converges to.
//!
//! What is counted:
//! - clicks per IP on an offer of the network, in whole UTC hours: a window of `W` hours is the
//!   current hour and the `W - 1` before it; hours older than [`RETAIN_HOURS`] are dropped;
//! - distinct sub IDs per offer of the network in the current UTC day, as a [`HyperLogLog`].
//!
//! IPs are kept as 64-bit hashes, never as text: the object needs to tell them apart, not read them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::click::{ClickParams, ClientInfo, Id};
use crate::config::rules::{FilterKind, Rule};
use crate::config::Config;
use crate::decide::ClickOutcome;
use crate::flood::{Event, FloodBlock, FloodCause, FloodState, FloodView, Outcome, Thresholds};
use crate::hll::{hash64, HyperLogLog};
use crate::log::JsonLine;
use crate::report::{self, ConversionRow, HourRows, RowKey, Tally};
use crate::rules::Counters;
use crate::time::{rfc3339_ms, DAY_MS, HOUR_MS, MINUTE_MS};
use crate::token::NONCE_LEN;
use crate::ua::is_link_preview;

/// The longest duplicate-IP window a rule may ask for (30 days); older hours are dropped.
pub const RETAIN_HOURS: u32 = 24 * 30;
/// An isolate that has not been heard of for this long has stopped; its batch ids are forgotten.
const SEEN_RETAIN_HOURS: u32 = 48;

/// Which counts a click's deciding rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CountNeeds {
    /// The duplicate-IP window, when the rule has that filter (the widest, if several).
    pub ip_window_hours: Option<u32>,
    pub sub_ids: bool,
}

impl CountNeeds {
    pub fn of(rule: Option<&Rule>) -> CountNeeds {
        let mut needs = CountNeeds::default();
        for f in rule.iter().flat_map(|r| r.filters.iter()) {
            match f.kind {
                FilterKind::DuplicateIp { window_hours, .. } => {
                    needs.ip_window_hours = needs.ip_window_hours.max(Some(window_hours));
                }
                FilterKind::SubIdValidity { .. } => needs.sub_ids = true,
                _ => {}
            }
        }
        needs
    }

    pub fn any(&self) -> bool {
        self.ip_window_hours.is_some() || self.sub_ids
    }
}

/// What one click adds to its network's counts, and under which keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickKeys {
    pub network: Id,
    pub offer: Id,
    /// The IP's hash, when the rule counts IPs and the click has an IP.
    pub ip: Option<u64>,
    /// The sub ID, when the rule counts sub IDs and the click carries one.
    pub sub_id: Option<String>,
    pub needs: CountNeeds,
    /// Link previews are judged on the counts but not added to them: nobody clicked.
    pub adds: bool,
    pub hour: u32,
    pub day: u32,
}

impl ClickKeys {
    /// The keys a click counts under, or `None` when its deciding rule reads no counts.
    pub fn of(
        config: &Config,
        click: &ClickParams,
        client: &ClientInfo,
        now_ms: u64,
    ) -> Option<ClickKeys> {
        let rule = config.deciding_rule(&click.offer_id, &click.aff_id);
        let needs = CountNeeds::of(rule);
        if !needs.any() {
            return None;
        }
        let ip = needs
            .ip_window_hours
            .and(client.ip)
            .map(|ip| ip_hash(&ip.to_string()));
        let sub_id = rule
            .filter(|_| needs.sub_ids)
            .and_then(|r| r.sub_id.value(click))
            .map(str::to_owned);
        Some(ClickKeys {
            network: click.aff_id.clone(),
            offer: click.offer_id.clone(),
            ip,
            sub_id,
            needs,
            adds: !is_link_preview(client.user_agent.as_ref()),
            hour: (now_ms / HOUR_MS) as u32,
            day: (now_ms / DAY_MS) as u32,
        })
    }
}

pub fn ip_hash(ip: &str) -> u64 {
    hash64(ip.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Clicks per hour for one IP on one offer.

/// (UTC hour since the epoch, clicks), oldest first, one entry per hour that had clicks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History(Vec<(u32, u32)>);

impl History {
    pub fn add(&mut self, hour: u32, clicks: u32) {
        match self.0.binary_search_by_key(&hour, |(h, _)| *h) {
            Ok(i) => self.0[i].1 = self.0[i].1.saturating_add(clicks),
            Err(i) => self.0.insert(i, (hour, clicks)),
        }
    }

    /// Clicks in the `window` hours ending with `hour` (that hour included).
    pub fn in_window(&self, hour: u32, window: u32) -> u32 {
        let from = hour.saturating_sub(window.saturating_sub(1));
        self.0
            .iter()
            .rev()
            .take_while(|(h, _)| *h >= from)
            .filter(|(h, _)| *h <= hour)
            .fold(0u32, |sum, (_, c)| sum.saturating_add(*c))
    }

    /// Drops the hours no window can reach any more.
    pub fn prune(&mut self, hour: u32) {
        let keep_from = hour.saturating_sub(RETAIN_HOURS - 1);
        self.0.retain(|(h, _)| *h >= keep_from);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `hour:clicks,hour:clicks`: what the object stores.
    pub fn encode(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|(h, c)| format!("{h}:{c}")).collect();
        parts.join(",")
    }

    pub fn decode(text: &str) -> Result<History, String> {
        let mut history = History::default();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (h, c) = part
                .split_once(':')
                .ok_or_else(|| format!("'{part}' is not hour:clicks"))?;
            let h = h
                .parse()
                .map_err(|_| format!("hour '{h}' is not a number"))?;
            let c = c
                .parse()
                .map_err(|_| format!("clicks '{c}' is not a number"))?;
            history.add(h, c);
        }
        Ok(history)
    }

    fn to_json(&self) -> Value {
        Value::Array(self.0.iter().map(|(h, c)| json!([h, c])).collect())
    }

    fn from_json(v: &Value) -> Result<History, String> {
        let mut history = History::default();
        for pair in v.as_array().ok_or("history is not a list")? {
            let (h, c) = (u32_at(pair, 0)?, u32_at(pair, 1)?);
            history.add(h, c);
        }
        Ok(history)
    }
}

// ---------------------------------------------------------------------------------------------
// A batch: what one isolate counted for one network since its last flush.

#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// A random id the isolate picked at start; with `seq` it names the batch for deduplication.
    pub isolate: u64,
    /// 1, 2, 3… per isolate and network. A retried batch keeps its number.
    pub seq: u64,
    pub ips: Vec<IpDelta>,
    pub subs: Vec<SubDelta>,
    /// Clicks and flagged clicks per UTC minute (minutes since the epoch), for the flood threshold.
    pub flood: Vec<(u64, u32, u32)>,
    /// The network's flood thresholds as the sending isolate's config has them.
    pub thresholds: Thresholds,
    /// The network the batch counts for (its object registers itself for reports under it).
    pub network: Id,
    /// The fraud report's counts (see [`crate::report`]).
    pub report: Vec<(RowKey, Tally)>,
    /// Decisions kept for `explain`: storage key and log line.
    pub explain: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpDelta {
    pub offer: Id,
    pub ip: u64,
    pub hour: u32,
    pub clicks: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubDelta {
    pub offer: Id,
    pub day: u32,
    pub sketch: HyperLogLog,
}

/// The object's answer: the totals for every key of the batch, the batch included, and the
/// network's flood block, if one is in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    pub duplicate: bool,
    pub ips: Vec<(Id, u64, History)>,
    pub subs: Vec<(Id, u32, HyperLogLog)>,
    pub block: Option<FloodBlock>,
}

impl Batch {
    pub fn to_json(&self) -> String {
        json!({
            "isolate": format!("{:016x}", self.isolate),
            "seq": self.seq,
            "ips": self.ips.iter().map(|d| json!([d.offer.as_str(), format!("{:016x}", d.ip), d.hour, d.clicks])).collect::<Vec<_>>(),
            "subs": self.subs.iter().map(|d| json!([d.offer.as_str(), d.day, B64.encode(d.sketch.to_bytes())])).collect::<Vec<_>>(),
            "flood": self.flood,
            "thresholds": self.thresholds.to_json(),
            "network": self.network.as_str(),
            "report": self.report.iter().map(|(k, t)| json!([k.hour, k.advertiser, k.offer, t.to_wire()])).collect::<Vec<_>>(),
            "explain": self.explain,
        })
        .to_string()
    }

    /// Reads a batch sent to the object. Anything malformed is refused whole: a half-applied batch
    /// could not be retried safely.
    pub fn parse(text: &str) -> Result<Batch, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("batch is not JSON: {e}"))?;
        let isolate = hex_u64(v.get("isolate")).map_err(|e| format!("isolate: {e}"))?;
        let seq = v
            .get("seq")
            .and_then(Value::as_u64)
            .filter(|s| *s > 0)
            .ok_or("seq: must be a positive integer")?;
        let mut ips = Vec::new();
        for (i, d) in list(&v, "ips")?.iter().enumerate() {
            let delta = (|| {
                Ok::<_, String>(IpDelta {
                    offer: id_at(d, 0)?,
                    ip: hex_u64(d.get(1))?,
                    hour: u32_at(d, 2)?,
                    clicks: u32_at(d, 3)?,
                })
            })()
            .map_err(|e| format!("ips[{i}]: {e}"))?;
            ips.push(delta);
        }
        let mut subs = Vec::new();
        for (i, d) in list(&v, "subs")?.iter().enumerate() {
            let delta = (|| {
                Ok::<_, String>(SubDelta {
                    offer: id_at(d, 0)?,
                    day: u32_at(d, 1)?,
                    sketch: sketch_from(d.get(2))?,
                })
            })()
            .map_err(|e| format!("subs[{i}]: {e}"))?;
            subs.push(delta);
        }
        let mut flood = Vec::new();
        for (i, d) in list(&v, "flood")?.iter().enumerate() {
            let minute = d.get(0).and_then(Value::as_u64);
            match (minute, u32_at(d, 1), u32_at(d, 2)) {
                (Some(m), Ok(c), Ok(f)) => flood.push((m, c, f)),
                _ => return Err(format!("flood[{i}]: must be [minute, clicks, flagged]")),
            }
        }
        let thresholds = Thresholds::from_json(&v["thresholds"])?;
        let network = v
            .get("network")
            .and_then(Value::as_str)
            .ok_or("network: missing")
            .and_then(|n| Id::parse(n).map_err(|_| "network: not an id"))?;
        let mut report = Vec::new();
        for (i, d) in list(&v, "report")?.iter().enumerate() {
            let row = (|| {
                let text = |j: usize| {
                    d.get(j)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or("a name")
                };
                let key = RowKey {
                    hour: u32_at(d, 0)?,
                    advertiser: text(1)?,
                    offer: text(2)?,
                };
                Ok::<_, String>((key, Tally::from_wire(d.get(3).unwrap_or(&Value::Null))?))
            })()
            .map_err(|e| format!("report[{i}]: {e}"))?;
            report.push(row);
        }
        let mut explain = Vec::new();
        for (i, d) in list(&v, "explain")?.iter().enumerate() {
            match (
                d.get(0).and_then(Value::as_str),
                d.get(1).and_then(Value::as_str),
            ) {
                (Some(k), Some(line)) if StoreKey::parse(k).is_some() => {
                    explain.push((k.to_owned(), line.to_owned()));
                }
                _ => return Err(format!("explain[{i}]: must be [explain key, line]")),
            }
        }
        Ok(Batch {
            isolate,
            seq,
            ips,
            subs,
            flood,
            thresholds,
            network,
            report,
            explain,
        })
    }

    /// The storage keys the object reads to apply this batch.
    pub fn storage_keys(&self) -> Vec<String> {
        let keys: BTreeSet<StoreKey> = [StoreKey::Seen, StoreKey::Flood]
            .into_iter()
            .chain(self.ips.iter().map(|d| StoreKey::Ip(d.offer.clone(), d.ip)))
            .chain(
                self.subs
                    .iter()
                    .map(|d| StoreKey::Sub(d.offer.clone(), d.day)),
            )
            .chain(self.report.iter().map(|(k, _)| StoreKey::Report(k.hour)))
            .chain(
                self.explain
                    .iter()
                    .filter_map(|(k, _)| match StoreKey::parse(k) {
                        Some(StoreKey::Explain(hour, _)) => Some(StoreKey::Report(hour)),
                        _ => None,
                    }),
            )
            .collect();
        keys.iter().map(StoreKey::to_string).collect()
    }

    fn is_empty(&self) -> bool {
        self.ips.is_empty()
            && self.subs.is_empty()
            && self.flood.is_empty()
            && self.report.is_empty()
            && self.explain.is_empty()
    }
}

impl Reply {
    pub fn to_json(&self) -> String {
        json!({
            "duplicate": self.duplicate,
            "ips": self.ips.iter().map(|(o, ip, h)| json!([o.as_str(), format!("{ip:016x}"), h.to_json()])).collect::<Vec<_>>(),
            "subs": self.subs.iter().map(|(o, day, s)| json!([o.as_str(), day, B64.encode(s.to_bytes())])).collect::<Vec<_>>(),
            "block": self.block.as_ref().map(|b| json!([b.until_ms, b.cause.as_str(), b.detail])),
        })
        .to_string()
    }

    pub fn parse(text: &str) -> Result<Reply, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("reply is not JSON: {e}"))?;
        let mut reply = Reply {
            duplicate: v.get("duplicate").and_then(Value::as_bool).unwrap_or(false),
            ..Reply::default()
        };
        for (i, d) in list(&v, "ips")?.iter().enumerate() {
            let entry = (|| {
                let history = History::from_json(d.get(2).unwrap_or(&Value::Null))?;
                Ok::<_, String>((id_at(d, 0)?, hex_u64(d.get(1))?, history))
            })()
            .map_err(|e| format!("ips[{i}]: {e}"))?;
            reply.ips.push(entry);
        }
        for (i, d) in list(&v, "subs")?.iter().enumerate() {
            let entry =
                (|| Ok::<_, String>((id_at(d, 0)?, u32_at(d, 1)?, sketch_from(d.get(2))?)))()
                    .map_err(|e| format!("subs[{i}]: {e}"))?;
            reply.subs.push(entry);
        }
        if let Some(b) = v.get("block").filter(|b| !b.is_null()) {
            reply.block = Some(FloodBlock {
                until_ms: b.get(0).and_then(Value::as_u64).ok_or("block: until")?,
                cause: b
                    .get(1)
                    .and_then(Value::as_str)
                    .and_then(FloodCause::parse)
                    .ok_or("block: cause")?,
                detail: b.get(2).and_then(Value::as_str).unwrap_or("").to_owned(),
            });
        }
        Ok(reply)
    }
}

fn list<'a>(v: &'a Value, field: &str) -> Result<&'a Vec<Value>, String> {
    v.get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{field}: must be a list"))
}

fn hex_u64(v: Option<&Value>) -> Result<u64, String> {
    let text = v.and_then(Value::as_str).ok_or("must be a hex string")?;
    if text.len() != 16 {
        return Err(format!("'{text}' is not 16 hex digits"));
    }
    u64::from_str_radix(text, 16).map_err(|_| format!("'{text}' is not 16 hex digits"))
}

fn u32_at(v: &Value, i: usize) -> Result<u32, String> {
    v.get(i)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("item {i} must be a whole number below 2^32"))
}

fn id_at(v: &Value, i: usize) -> Result<Id, String> {
    let text = v
        .get(i)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("item {i} must be a string"))?;
    Id::parse(text).map_err(|e| format!("id '{text}' {e}"))
}

fn sketch_from(v: Option<&Value>) -> Result<HyperLogLog, String> {
    decode_sketch(v.and_then(Value::as_str).ok_or("sketch must be base64")?)
}

fn decode_sketch(text: &str) -> Result<HyperLogLog, String> {
    let bytes = B64.decode(text).map_err(|_| "sketch is not base64")?;
    HyperLogLog::from_bytes(&bytes).ok_or_else(|| "sketch is not a HyperLogLog of ours".into())
}

// ---------------------------------------------------------------------------------------------
// The object's side.

/// A key of the object's storage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum StoreKey {
    /// Which batches were applied, per isolate.
    Seen,
    /// One IP's history on one offer: `ip/{offer}/{hash}`.
    Ip(Id, u64),
    /// One offer's sub-ID sketch for one UTC day: `sub/{day}/{offer}`.
    Sub(Id, u32),
    /// The network's flood day (see [`crate::flood`]).
    Flood,
    /// The network's report rows for one UTC hour: `report/{hour:08}`.
    Report(u32),
    /// One click's kept decision: `explain/{hour:08}/{nonce}`. Written, never read back by a batch.
    Explain(u32, String),
}

impl StoreKey {
    pub fn parse(key: &str) -> Option<StoreKey> {
        match key {
            "seen" => return Some(StoreKey::Seen),
            "flood" => return Some(StoreKey::Flood),
            _ => {}
        }
        if let Some(hour) = report::parse_hour_key(key) {
            return Some(StoreKey::Report(hour));
        }
        if let Some(rest) = key.strip_prefix("explain/") {
            let (hour, nonce) = rest.split_once('/')?;
            let valid = hour.len() == 8
                && nonce.len() == 2 * NONCE_LEN
                && nonce
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
            return valid
                .then(|| Some(StoreKey::Explain(hour.parse().ok()?, nonce.to_owned())))
                .flatten();
        }
        if let Some(rest) = key.strip_prefix("ip/") {
            let (offer, ip) = rest.rsplit_once('/')?;
            let ip = u64::from_str_radix(ip, 16)
                .ok()
                .filter(|_| ip.len() == 16)?;
            return Some(StoreKey::Ip(Id::parse(offer).ok()?, ip));
        }
        let (day, offer) = key.strip_prefix("sub/")?.split_once('/')?;
        Some(StoreKey::Sub(Id::parse(offer).ok()?, day.parse().ok()?))
    }
}

impl std::fmt::Display for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreKey::Seen => f.write_str("seen"),
            StoreKey::Flood => f.write_str("flood"),
            StoreKey::Ip(offer, ip) => write!(f, "ip/{offer}/{ip:016x}"),
            StoreKey::Sub(offer, day) => write!(f, "sub/{day}/{offer}"),
            StoreKey::Report(hour) => f.write_str(&report::hour_key(*hour)),
            StoreKey::Explain(hour, nonce) => write!(f, "explain/{hour:08}/{nonce}"),
        }
    }
}

/// Which batches of one isolate were applied: every seq up to `upto`, and `above`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Seen {
    upto: u64,
    above: BTreeSet<u64>,
    last_hour: u32,
}

impl Seen {
    /// Marks `seq` applied; false when it already was.
    fn insert(&mut self, seq: u64) -> bool {
        if seq <= self.upto || !self.above.insert(seq) {
            return false;
        }
        while self.above.remove(&(self.upto + 1)) {
            self.upto += 1;
        }
        true
    }
}

/// A network's counts as its object holds them: all of them (replay), or the keys one batch needs
/// (the object loads those from storage, applies, and writes back [`NetworkCounts::changed`]).
#[derive(Debug, Clone, Default)]
pub struct NetworkCounts {
    seen: BTreeMap<u64, Seen>,
    ips: HashMap<(Id, u64), History>,
    subs: HashMap<(Id, u32), HyperLogLog>,
    flood: Option<FloodState>,
    reports: HashMap<u32, HourRows>,
    /// Decisions to keep, by their explain key.
    explained: Vec<(StoreKey, String)>,
    changed: BTreeSet<StoreKey>,
    /// Log lines for what changed in the flood state (a trip, a lift), for the object to print.
    events: Vec<String>,
}

impl NetworkCounts {
    /// Rebuilds the keys one batch needs from the object's storage. A stored value that cannot be
    /// read is reported and counted as empty rather than blocking the network's counting forever.
    pub fn load<'a>(
        stored: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> (NetworkCounts, Vec<String>) {
        let mut counts = NetworkCounts::default();
        let mut problems = Vec::new();
        for (key, value) in stored {
            if let Err(e) = counts.load_one(key, value) {
                problems.push(format!("{key}: {e}"));
            }
        }
        (counts, problems)
    }

    fn load_one(&mut self, key: &str, value: &str) -> Result<(), String> {
        match StoreKey::parse(key).ok_or("unknown key")? {
            StoreKey::Seen => self.seen = decode_seen(value)?,
            StoreKey::Ip(offer, ip) => {
                self.ips.insert((offer, ip), History::decode(value)?);
            }
            StoreKey::Sub(offer, day) => {
                self.subs.insert((offer, day), decode_sketch(value)?);
            }
            StoreKey::Flood => self.flood = Some(FloodState::decode(value)?),
            StoreKey::Report(hour) => {
                self.reports.insert(hour, HourRows::decode(value)?);
            }
            StoreKey::Explain(..) => {}
        }
        Ok(())
    }

    /// Adds a batch once: a batch seen before (a retried flush whose answer was lost) changes
    /// nothing and gets the same totals back.
    pub fn apply(&mut self, batch: &Batch, now_ms: u64) -> Reply {
        let hour = (now_ms / HOUR_MS) as u32;
        let seen = self.seen.entry(batch.isolate).or_default();
        let fresh = seen.insert(batch.seq);
        seen.last_hour = hour;
        self.seen
            .retain(|_, s| s.last_hour + SEEN_RETAIN_HOURS > hour);
        self.changed.insert(StoreKey::Seen);

        let mut reply = Reply {
            duplicate: !fresh,
            ..Reply::default()
        };
        for d in &batch.ips {
            let key = (d.offer.clone(), d.ip);
            let history = self.ips.entry(key.clone()).or_default();
            if fresh {
                history.add(d.hour, d.clicks);
                history.prune(hour);
                self.changed.insert(StoreKey::Ip(d.offer.clone(), d.ip));
            }
            reply.ips.push((key.0, key.1, history.clone()));
        }
        for d in &batch.subs {
            let key = (d.offer.clone(), d.day);
            let sketch = self.subs.entry(key.clone()).or_default();
            // A sketch merge is idempotent by itself; only new days are stored.
            sketch.merge(&d.sketch);
            self.changed.insert(StoreKey::Sub(d.offer.clone(), d.day));
            reply.subs.push((key.0, key.1, sketch.clone()));
        }
        let flood = self.flood.get_or_insert_with(|| FloodState::new(now_ms));
        let mut outcomes = vec![flood.step(Event::Tick, &batch.thresholds, now_ms)];
        if fresh {
            for &(minute, clicks, flagged) in &batch.flood {
                let event = Event::Clicks {
                    minute,
                    clicks,
                    flagged,
                };
                outcomes.push(flood.step(event, &batch.thresholds, now_ms));
            }
        }
        self.changed.insert(StoreKey::Flood);
        reply.block = flood.current_block();
        self.log_outcomes(outcomes, now_ms);
        if fresh {
            for (key, tally) in &batch.report {
                let rows = self.reports.entry(key.hour).or_default();
                rows.add(&key.advertiser, &key.offer, tally);
                self.changed.insert(StoreKey::Report(key.hour));
            }
            for (key, line) in &batch.explain {
                if let Some(key @ StoreKey::Explain(hour, _)) = StoreKey::parse(key) {
                    if self.reports.entry(hour).or_default().keep_explanation() {
                        self.changed.insert(StoreKey::Report(hour));
                        self.explained.push((key, line.clone()));
                    }
                }
            }
        }
        reply
    }

    /// A conversion reported for one of the network's clicks: the flood day's conversion rate.
    pub fn count_conversion(&mut self, now_ms: u64) {
        let flood = self.flood.get_or_insert_with(|| FloodState::new(now_ms));
        let outcome = flood.step(
            Event::Conversions { count: 1 },
            &Thresholds::default(),
            now_ms,
        );
        self.changed.insert(StoreKey::Flood);
        self.log_outcomes(vec![outcome], now_ms);
    }

    /// An operator lifts or imposes the network's block; the isolates hear of it with their next
    /// answer.
    pub fn operate(&mut self, event: Event, now_ms: u64) -> Option<FloodBlock> {
        let flood = self.flood.get_or_insert_with(|| FloodState::new(now_ms));
        let outcome = flood.step(event, &Thresholds::default(), now_ms);
        let block = flood.current_block();
        self.changed.insert(StoreKey::Flood);
        self.log_outcomes(vec![outcome], now_ms);
        block
    }

    fn log_outcomes(&mut self, outcomes: Vec<Outcome>, now_ms: u64) {
        for outcome in outcomes {
            let line = JsonLine::new()
                .str("event", "flood")
                .str("ts", &rfc3339_ms(now_ms));
            let line = match outcome {
                Outcome::Nothing => continue,
                Outcome::Tripped(b) | Outcome::Imposed(b) => line
                    .str("level", "error")
                    .str("state", "blocked")
                    .str("cause", b.cause.as_str())
                    .str("detail", &b.detail)
                    .opt("by", b.by.as_deref()),
                Outcome::Lifted { by } => line
                    .str("level", "info")
                    .str("state", "lifted")
                    .str("by", &by),
                Outcome::NewDay { ended_block } => line
                    .str("level", "info")
                    .str("state", "new_day")
                    .bool("ended_block", ended_block),
            };
            self.events.push(line.finish());
        }
    }

    /// Log lines for flood changes since the last call.
    pub fn take_events(&mut self) -> Vec<String> {
        std::mem::take(&mut self.events)
    }

    /// The keys `apply` changed since the last call, with what to store (`None`: delete).
    pub fn take_changes(&mut self) -> Vec<(String, Option<String>)> {
        let explained = std::mem::take(&mut self.explained)
            .into_iter()
            .map(|(key, line)| (key.to_string(), Some(line)));
        let changed: Vec<_> = std::mem::take(&mut self.changed)
            .into_iter()
            .map(|key| {
                let value = match &key {
                    StoreKey::Seen => Some(encode_seen(&self.seen)),
                    StoreKey::Flood => self.flood.as_ref().map(FloodState::encode),
                    StoreKey::Ip(offer, ip) => self
                        .ips
                        .get(&(offer.clone(), *ip))
                        .filter(|h| !h.is_empty())
                        .map(History::encode),
                    StoreKey::Sub(offer, day) => self
                        .subs
                        .get(&(offer.clone(), *day))
                        .map(|s| B64.encode(s.to_bytes())),
                    StoreKey::Report(hour) => self.reports.get(hour).map(HourRows::encode),
                    StoreKey::Explain(..) => None,
                };
                (key.to_string(), value)
            })
            .collect();
        changed.into_iter().chain(explained).collect()
    }

    /// Counts one click directly, as the object would once it has every isolate's batches: what
    /// replay runs.
    pub fn count(&mut self, keys: &ClickKeys) -> Counters {
        let mut counters = Counters::default();
        if let (Some(window), Some(ip)) = (keys.needs.ip_window_hours, keys.ip) {
            let history = self.ips.entry((keys.offer.clone(), ip)).or_default();
            if keys.adds {
                history.add(keys.hour, 1);
                history.prune(keys.hour);
            }
            counters.ip_clicks = history.in_window(keys.hour, window);
        }
        if keys.needs.sub_ids {
            let sketch = self.subs.entry((keys.offer.clone(), keys.day)).or_default();
            if let (Some(sub), true) = (&keys.sub_id, keys.adds) {
                sketch.insert(sub);
            }
            counters.distinct_sub_ids = clamp_u32(sketch.estimate());
        }
        counters
    }

    /// Keys whose data no window reaches any more: sub-ID days before today, IP histories that are
    /// empty once pruned, report hours and kept decisions past their retention. What the object's
    /// daily alarm deletes.
    pub fn expired_key(key: &str, value: &str, now_ms: u64) -> bool {
        match StoreKey::parse(key) {
            Some(StoreKey::Seen | StoreKey::Flood) => false,
            Some(StoreKey::Report(hour)) => {
                report::past_retention(hour, report::REPORT_RETAIN_DAYS, now_ms)
            }
            Some(StoreKey::Explain(hour, _)) => {
                report::past_retention(hour, report::EXPLAIN_RETAIN_DAYS, now_ms)
            }
            Some(StoreKey::Sub(_, day)) => day < (now_ms / DAY_MS) as u32,
            Some(StoreKey::Ip(..)) => History::decode(value).map_or(true, |mut h| {
                h.prune((now_ms / HOUR_MS) as u32);
                h.is_empty()
            }),
            // Not ours to judge: left alone.
            None => false,
        }
    }
}

fn encode_seen(seen: &BTreeMap<u64, Seen>) -> String {
    let map: serde_json::Map<String, Value> = seen
        .iter()
        .map(|(isolate, s)| {
            (
                format!("{isolate:016x}"),
                json!([s.upto, s.above.iter().collect::<Vec<_>>(), s.last_hour]),
            )
        })
        .collect();
    Value::Object(map).to_string()
}

fn decode_seen(text: &str) -> Result<BTreeMap<u64, Seen>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let map = v.as_object().ok_or("not an object")?;
    let mut seen = BTreeMap::new();
    for (isolate, s) in map {
        let isolate = hex_u64(Some(&Value::String(isolate.clone())))?;
        let upto = s.get(0).and_then(Value::as_u64).ok_or("upto")?;
        let above = s
            .get(1)
            .and_then(Value::as_array)
            .ok_or("above")?
            .iter()
            .map(|n| n.as_u64().ok_or("above"))
            .collect::<Result<_, _>>()?;
        let last_hour = u32_at(s, 2)?;
        seen.insert(
            isolate,
            Seen {
                upto,
                above,
                last_hour,
            },
        );
    }
    Ok(seen)
}

fn clamp_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------------------------
// The isolate's side.

/// When an isolate sends what it counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushPolicy {
    /// A click waits at most this long to be sent (unless the object is failing).
    pub interval_ms: u64,
    /// A batch goes out at once when it holds this many keys...
    pub max_keys: usize,
    /// ...or this many clicks: under load the flood count reaches the object within a round trip
    /// rather than a whole interval, and a tripped block comes back as fast.
    pub max_clicks: u32,
    /// The object has not answered for this long: the counters are reported unavailable and the
    /// rule's fault mode decides.
    pub stale_ms: u64,
    /// Retries after a failed flush back off from `interval_ms` up to this.
    pub max_backoff_ms: u64,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        FlushPolicy {
            interval_ms: 1_000,
            max_keys: 500,
            max_clicks: 500,
            stale_ms: 30_000,
            max_backoff_ms: 15_000,
        }
    }
}

/// What the isolate should do about a network's counts now.
// One value per flush, moved straight into a request: boxing the batch would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Flush {
    Nothing,
    /// Send this batch to the network's object, then report `acked` or `failed`.
    Send(Batch),
    /// Call `wake` for this network after this many milliseconds (one timer at a time).
    WakeIn(u64),
}

/// Past this many remembered totals the isolate forgets them (not its unsent counts) and learns
/// them again from the next answers: an isolate's memory stays bounded under an IP flood.
const MAX_KNOWN_KEYS: usize = 50_000;
/// Decisions an isolate keeps for `explain` per network and minute. A flood of flagged clicks is
/// counted in full by the report; keeping every one of its decisions would cost each of them a
/// log line's worth of batch and storage, so past this a flood is sampled, the first of each
/// minute kept.
pub const MAX_EXPLAINED_PER_MINUTE: u32 = 300;

#[derive(Debug, Default)]
struct ExplainBudget {
    minute: u64,
    kept: u32,
}

impl ExplainBudget {
    /// Whether one more decision may be kept this minute (and counts it).
    fn take(&mut self, minute: u64) -> bool {
        if minute != self.minute {
            *self = ExplainBudget { minute, kept: 0 };
        }
        let keep = self.kept < MAX_EXPLAINED_PER_MINUTE;
        self.kept += u32::from(keep);
        keep
    }
}

#[derive(Debug, Default)]
struct NetworkLocal {
    /// The name its batches carry as `isolate`: the isolate's id, or one derived from it for a
    /// network made again after its state was evicted (see [`LocalCounts`]).
    name: u64,
    next_seq: u64,
    /// The isolate's use counter when a click last touched this network: the least recently used
    /// is evicted first.
    last_use: u64,
    /// Counted here and not yet sent.
    pending_ips: HashMap<(Id, u64), History>,
    pending_subs: HashMap<(Id, u32), HyperLogLog>,
    /// Clicks and flagged clicks per minute, for the flood threshold.
    pending_flood: BTreeMap<u64, (u32, u32)>,
    thresholds: Thresholds,
    /// Report rows by offer, then hour (with the offer's advertiser): looked up by the click's own
    /// offer id, so counting a click allocates nothing once its row exists.
    pending_report: HashMap<Id, BTreeMap<u32, (String, Tally)>>,
    pending_explain: Vec<(String, String)>,
    explain_budget: ExplainBudget,
    pending_since_ms: Option<u64>,
    /// Sent and not yet answered; resent as it is until it is.
    in_flight: Option<(Batch, InFlight)>,
    /// The IP part of `in_flight`, by key, for the click path.
    in_flight_ips: HashMap<(Id, u64), History>,
    /// The object's last totals.
    known_ips: HashMap<(Id, u64), History>,
    /// The object's last sketch merged with every sub ID seen here: merging is idempotent, so
    /// this is always the best estimate without tracking what was sent.
    view_subs: HashMap<(Id, u32), (HyperLogLog, u32)>,
    /// The network's flood block as the object last told it.
    block: Option<FloodBlock>,
    /// When the armed timer should fire; a timer long overdue was lost with its request's
    /// background work and may be armed again.
    timer_due_ms: Option<u64>,
}

impl NetworkLocal {
    fn count_flood(&mut self, thresholds: Thresholds, flagged: bool, now_ms: u64) {
        let minute = self.pending_flood.entry(now_ms / MINUTE_MS).or_default();
        minute.0 += 1;
        minute.1 += u32::from(flagged);
        self.thresholds = thresholds;
        self.pending_since_ms.get_or_insert(now_ms);
    }

    /// The object has left a batch unanswered for `stale_ms`: what it last said is no longer to
    /// be relied on.
    fn silent(&self, policy: &FlushPolicy, now_ms: u64) -> bool {
        self.in_flight
            .as_ref()
            .is_some_and(|(_, f)| now_ms.saturating_sub(f.first_sent_ms) >= policy.stale_ms)
    }

    /// Nothing counted here waits to be sent or answered: dropping this state loses no click,
    /// only what the object last said, which its next answer tells again.
    fn idle(&self) -> bool {
        self.in_flight.is_none()
            && self.pending_since_ms.is_none()
            && self.pending_ips.is_empty()
            && self.pending_subs.is_empty()
            && self.pending_flood.is_empty()
            && self.pending_report.is_empty()
            && self.pending_explain.is_empty()
    }
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    first_sent_ms: u64,
    last_sent_ms: u64,
    /// None while a send is under way; the time to resend after a failure.
    retry_at_ms: Option<u64>,
    failures: u32,
}

/// The networks an isolate keeps state for. Past it the least recently clicked networks with
/// nothing unsent are forgotten, [`EVICT_TO`] left: made-up `aff_id`s cannot grow an isolate
/// without bound. Networks with counts not yet acknowledged are never forgotten, so the cap is
/// exceeded only by those (at most the clicks of one flush interval, or of an object outage).
pub const MAX_NETWORKS: usize = 1_024;
/// What an eviction leaves: evicting an eighth at a time keeps the scan for the least recently
/// used off most clicks.
pub const EVICT_TO: usize = MAX_NETWORKS - MAX_NETWORKS / 8;

/// One isolate's counts, per network. See the module documentation.
///
/// A network's state is evicted when the isolate holds [`MAX_NETWORKS`] and another arrives; only
/// state with nothing unsent or unanswered goes, so no counted click is lost. A network that
/// returns starts over like one this isolate never saw: its object's totals come back with its
/// first answer. Its batches are numbered from 1 again, so they carry a new name (derived from the
/// isolate's id and its count of evictions, never used before) in place of the isolate's id: the
/// object deduplicates by (name, seq), and would otherwise take the new batch 1 for a retry of
/// the old one and drop it.
#[derive(Debug)]
pub struct LocalCounts {
    isolate: u64,
    policy: FlushPolicy,
    networks: HashMap<Id, NetworkLocal>,
    /// Counts every touch of a network: the order of least recent use.
    uses: u64,
    /// Networks evicted so far; names a network made again after an eviction.
    evictions: u64,
    /// Networks ever evicted (a figure for tests and benches).
    evicted_total: u64,
    /// Networks forgotten by the last eviction, until its log line is taken.
    unlogged_eviction: Option<usize>,
}

impl LocalCounts {
    pub fn new(isolate: u64, policy: FlushPolicy) -> LocalCounts {
        LocalCounts {
            isolate,
            policy,
            networks: HashMap::new(),
            uses: 0,
            evictions: 0,
            evicted_total: 0,
            unlogged_eviction: None,
        }
    }

    /// The network's state, made on first use (evicting others if the isolate is full), marked
    /// as just used. Looked up by reference, so a known network costs no copy of its id.
    fn touch(&mut self, network: &Id, now_ms: u64) -> &mut NetworkLocal {
        self.uses += 1;
        if !self.networks.contains_key(network) {
            self.add(network, now_ms);
        }
        let net = self.networks.get_mut(network).expect("added above");
        net.last_use = self.uses;
        net
    }

    /// Makes a network's state, evicting others first if the isolate is full. Not inlined into
    /// each click path: it runs once per network.
    #[inline(never)]
    fn add(&mut self, network: &Id, now_ms: u64) {
        if self.networks.len() >= MAX_NETWORKS {
            self.evict(now_ms);
        }
        // The isolate's id until the first eviction; after it, a name no batch carried yet.
        let name = if self.evictions == 0 {
            self.isolate
        } else {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&self.isolate.to_le_bytes());
            bytes[8..].copy_from_slice(&self.evictions.to_le_bytes());
            hash64(&bytes)
        };
        let net = NetworkLocal {
            name,
            ..NetworkLocal::default()
        };
        self.networks.insert(network.clone(), net);
    }

    /// Forgets idle networks down to [`EVICT_TO`]: those least recently used first, and those
    /// under a flood block in force only after all others (forgetting one would let its clicks
    /// through until its object's next answer).
    fn evict(&mut self, now_ms: u64) {
        let excess = self.networks.len().saturating_sub(EVICT_TO);
        // A network's rank, lowest evicted first: its last use (each is unique), with the top bit
        // set under a block in force.
        let rank = |n: &NetworkLocal| {
            let blocked = n.block.as_ref().is_some_and(|b| now_ms < b.until_ms);
            n.last_use | (u64::from(blocked) << 63)
        };
        // The `excess` lowest ranks, in order: kept by binary search rather than a sort, which
        // would cost the Worker a sort routine of its own.
        let mut lowest: Vec<u64> = Vec::with_capacity(excess);
        for r in self.networks.values().filter(|n| n.idle()).map(rank) {
            if lowest.len() == excess && lowest.last().is_none_or(|&last| r >= last) {
                continue;
            }
            let at = lowest.binary_search(&r).unwrap_or_else(|i| i);
            lowest.insert(at, r);
            lowest.truncate(excess);
        }
        let Some(&cut) = lowest.last() else {
            return;
        };
        let before = self.networks.len();
        self.networks.retain(|_, n| !(n.idle() && rank(n) <= cut));
        let gone = before - self.networks.len();
        self.evictions += 1;
        self.evicted_total += gone as u64;
        *self.unlogged_eviction.get_or_insert(0) += gone;
    }

    /// The log line of the evictions since the last call, if any: `counts_evicted` with how many
    /// networks were forgotten and how many are kept.
    pub fn take_eviction_line(&mut self) -> Option<String> {
        let evicted = self.unlogged_eviction.take()?;
        Some(
            JsonLine::new()
                .str("event", "counts_evicted")
                .str("level", "info")
                .num("networks_evicted", evicted as u64)
                .num("networks_kept", self.networks.len() as u64)
                .num("max_networks", MAX_NETWORKS as u64)
                .finish(),
        )
    }

    /// Networks this isolate holds state for.
    pub fn networks(&self) -> usize {
        self.networks.len()
    }

    /// Networks whose state was evicted so far.
    pub fn evicted(&self) -> u64 {
        self.evicted_total
    }

    /// Counts a click and returns what its filters read: the object's last totals plus this
    /// isolate's clicks since. `None` when the object has not answered for `stale_ms`.
    pub fn record(&mut self, keys: &ClickKeys, now_ms: u64) -> Option<Counters> {
        let policy = self.policy;
        let net = self.touch(&keys.network, now_ms);
        let mut counters = Counters::default();
        if let (Some(window), Some(ip)) = (keys.needs.ip_window_hours, keys.ip) {
            let key = (keys.offer.clone(), ip);
            if keys.adds {
                net.pending_ips
                    .entry(key.clone())
                    .or_default()
                    .add(keys.hour, 1);
            }
            let window_sum = |m: &HashMap<(Id, u64), History>| {
                m.get(&key).map_or(0, |h| h.in_window(keys.hour, window))
            };
            counters.ip_clicks = window_sum(&net.known_ips)
                .saturating_add(window_sum(&net.in_flight_ips))
                .saturating_add(window_sum(&net.pending_ips));
        }
        if keys.needs.sub_ids {
            let key = (keys.offer.clone(), keys.day);
            let view = net
                .view_subs
                .entry(key.clone())
                .or_insert_with(|| (HyperLogLog::default(), 0));
            if let (Some(sub), true) = (&keys.sub_id, keys.adds) {
                net.pending_subs.entry(key).or_default().insert(sub);
                if view.0.insert(sub) {
                    view.1 = clamp_u32(view.0.estimate());
                }
            }
            counters.distinct_sub_ids = view.1;
        }
        if keys.adds && net.pending_since_ms.is_none() {
            net.pending_since_ms = Some(now_ms);
        }
        (!net.silent(&policy, now_ms)).then_some(counters)
    }

    /// Counts a decided click for its network: toward the flood threshold, in the report, and its
    /// decision (`log_line`, as logged) kept for `explain` when a filter fired on it. A link
    /// preview is nobody's click: it is counted nowhere (its log line says `"preview": true`).
    pub fn record_outcome(
        &mut self,
        outcome: &ClickOutcome,
        log_line: &str,
        thresholds: Thresholds,
        nonce: &[u8; NONCE_LEN],
    ) {
        if outcome.preview {
            return;
        }
        let now_ms = outcome.at_ms;
        let net = self.touch(&outcome.click.aff_id, now_ms);
        net.count_flood(thresholds, outcome.flagged(), now_ms);
        let hour = (now_ms / HOUR_MS) as u32;
        let row = pending_row(
            &mut net.pending_report,
            &outcome.click.offer_id,
            hour,
            || {
                outcome
                    .advertiser_id
                    .as_ref()
                    .map_or_else(String::new, Id::to_string)
            },
        );
        row.count_click(outcome);
        if report::worth_explaining(outcome) && net.explain_budget.take(now_ms / MINUTE_MS) {
            let key = report::explain_key(hour, nonce);
            net.pending_explain.push((key, log_line.to_owned()));
        }
    }

    /// Counts a postback in its click's network's report.
    pub fn record_conversion(&mut self, row: &ConversionRow, now_ms: u64) {
        let net = self.touch(&row.network, now_ms);
        pending_row(&mut net.pending_report, &row.offer, row.hour, || {
            row.advertiser.clone()
        })
        .add(&row.tally);
        net.pending_since_ms.get_or_insert(now_ms);
    }

    /// Counts a click for its network's flood threshold: every click of every network, after its
    /// decision (`flagged`: the filters declined it, blocked or in monitor mode).
    pub fn record_flood(
        &mut self,
        network: &Id,
        thresholds: Thresholds,
        flagged: bool,
        now_ms: u64,
    ) {
        self.touch(network, now_ms)
            .count_flood(thresholds, flagged, now_ms);
    }

    /// What this isolate knows of the network's flood state: the block in force as the object last
    /// answered (it ends by itself at its `until`, 00:00 UTC, even if no answer comes), and whether
    /// the object has stopped answering.
    pub fn flood_view(&self, network: &Id, thresholds: &Thresholds, now_ms: u64) -> FloodView {
        let net = self.networks.get(network);
        FloodView {
            block: net
                .and_then(|n| n.block.clone())
                .filter(|b| now_ms < b.until_ms),
            unreachable: net.is_some_and(|n| n.silent(&self.policy, now_ms)),
            on_fault: thresholds.on_fault,
        }
    }

    /// What to do for a network after a click or when its timer fires.
    pub fn flush(&mut self, network: &Id, now_ms: u64) -> Flush {
        let policy = self.policy;
        let Some(net) = self.networks.get_mut(network) else {
            return Flush::Nothing;
        };
        if let Some((batch, state)) = &mut net.in_flight {
            let resend = match state.retry_at_ms {
                // A send under way drives what comes next, unless it was lost without a word
                // (the runtime may cancel work left after a response).
                None => now_ms.saturating_sub(state.last_sent_ms) >= policy.stale_ms,
                Some(at) => at <= now_ms,
            };
            if resend {
                state.retry_at_ms = None;
                state.last_sent_ms = now_ms;
                return Flush::Send(batch.clone());
            }
            return match state.retry_at_ms {
                Some(at) => arm(&mut net.timer_due_ms, now_ms, at - now_ms),
                None => Flush::Nothing,
            };
        }
        let Some(since) = net.pending_since_ms else {
            return Flush::Nothing;
        };
        let keys = net.pending_ips.len()
            + net.pending_subs.len()
            + net.pending_flood.len()
            + net
                .pending_report
                .values()
                .map(BTreeMap::len)
                .sum::<usize>()
            + net.pending_explain.len();
        let clicks: u32 = net.pending_flood.values().map(|(c, _)| c).sum();
        let due = since + policy.interval_ms;
        if keys < policy.max_keys && clicks < policy.max_clicks && now_ms < due {
            return arm(&mut net.timer_due_ms, now_ms, due - now_ms);
        }
        net.next_seq += 1;
        net.in_flight_ips = std::mem::take(&mut net.pending_ips);
        let batch = Batch {
            isolate: net.name,
            seq: net.next_seq,
            ips: net
                .in_flight_ips
                .iter()
                .flat_map(|((offer, ip), h)| {
                    h.0.iter().map(move |&(hour, clicks)| IpDelta {
                        offer: offer.clone(),
                        ip: *ip,
                        hour,
                        clicks,
                    })
                })
                .collect(),
            subs: net
                .pending_subs
                .drain()
                .map(|((offer, day), sketch)| SubDelta { offer, day, sketch })
                .collect(),
            flood: std::mem::take(&mut net.pending_flood)
                .into_iter()
                .map(|(minute, (clicks, flagged))| (minute, clicks, flagged))
                .collect(),
            thresholds: net.thresholds,
            network: network.clone(),
            report: net
                .pending_report
                .drain()
                .flat_map(|(offer, hours)| {
                    hours.into_iter().map(move |(hour, (advertiser, tally))| {
                        let key = RowKey {
                            hour,
                            advertiser,
                            offer: offer.to_string(),
                        };
                        (key, tally)
                    })
                })
                .collect(),
            explain: std::mem::take(&mut net.pending_explain),
        };
        net.pending_since_ms = None;
        if batch.is_empty() {
            return Flush::Nothing;
        }
        net.in_flight = Some((
            batch.clone(),
            InFlight {
                first_sent_ms: now_ms,
                last_sent_ms: now_ms,
                retry_at_ms: None,
                failures: 0,
            },
        ));
        Flush::Send(batch)
    }

    /// The network's timer fired.
    pub fn wake(&mut self, network: &Id, now_ms: u64) -> Flush {
        if let Some(net) = self.networks.get_mut(network) {
            net.timer_due_ms = None;
        }
        self.flush(network, now_ms)
    }

    /// The object applied batch `seq` and answered.
    pub fn acked(&mut self, network: &Id, seq: u64, reply: Reply, now_ms: u64) -> Flush {
        let Some(net) = self.networks.get_mut(network) else {
            return Flush::Nothing;
        };
        if net.in_flight.as_ref().map(|(b, _)| b.seq) != Some(seq) {
            return Flush::Nothing;
        }
        net.in_flight = None;
        net.in_flight_ips.clear();
        net.block = reply.block.clone();
        if net.known_ips.len() + reply.ips.len() > MAX_KNOWN_KEYS {
            net.known_ips.clear();
        }
        for (offer, ip, history) in reply.ips {
            net.known_ips.insert((offer, ip), history);
        }
        let today = (now_ms / DAY_MS) as u32;
        net.view_subs.retain(|(_, day), _| *day >= today);
        for (offer, day, sketch) in reply.subs.into_iter().filter(|(_, d, _)| *d >= today) {
            let view = net
                .view_subs
                .entry((offer, day))
                .or_insert_with(|| (HyperLogLog::default(), 0));
            view.0.merge(&sketch);
            view.1 = clamp_u32(view.0.estimate());
        }
        self.flush(network, now_ms)
    }

    /// Sending batch `seq` failed (or its answer was unreadable): it is resent as it is, later.
    pub fn failed(&mut self, network: &Id, seq: u64, now_ms: u64) -> Flush {
        let policy = self.policy;
        let Some(net) = self.networks.get_mut(network) else {
            return Flush::Nothing;
        };
        match &mut net.in_flight {
            Some((batch, state)) if batch.seq == seq => {
                state.failures += 1;
                let backoff = policy
                    .interval_ms
                    .saturating_mul(1 << state.failures.min(16))
                    .min(policy.max_backoff_ms);
                state.retry_at_ms = Some(now_ms + backoff);
                arm(&mut net.timer_due_ms, now_ms, backoff)
            }
            _ => Flush::Nothing,
        }
    }

    /// Networks with counts not yet acknowledged by their object.
    pub fn unsent(&self) -> usize {
        self.networks
            .values()
            .filter(|n| n.in_flight.is_some() || n.pending_since_ms.is_some())
            .count()
    }
}

/// The value under an id, made on first use. Looked up by reference, so on the click path a known
/// network or offer costs no copy of its id.
fn by_id<'a, V: Default>(map: &'a mut HashMap<Id, V>, id: &Id) -> &'a mut V {
    if !map.contains_key(id) {
        map.insert(id.clone(), V::default());
    }
    map.get_mut(id).expect("inserted above")
}

/// The pending report row of an offer and hour, made on first use.
fn pending_row<'a>(
    rows: &'a mut HashMap<Id, BTreeMap<u32, (String, Tally)>>,
    offer: &Id,
    hour: u32,
    advertiser: impl FnOnce() -> String,
) -> &'a mut Tally {
    &mut by_id(rows, offer)
        .entry(hour)
        .or_insert_with(|| (advertiser(), Tally::default()))
        .1
}

/// How late a timer may be before it counts as lost.
const LOST_TIMER_MS: u64 = 5_000;

fn arm(timer_due_ms: &mut Option<u64>, now_ms: u64, in_ms: u64) -> Flush {
    if timer_due_ms.is_some_and(|due| now_ms < due + LOST_TIMER_MS) {
        return Flush::Nothing;
    }
    *timer_due_ms = Some(now_ms + in_ms);
    Flush::WakeIn(in_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const T0: u64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

    fn id(s: &str) -> Id {
        Id::parse(s).unwrap()
    }

    fn keys(ip: &str, sub: Option<&str>, now_ms: u64) -> ClickKeys {
        ClickKeys {
            network: id("net"),
            offer: id("1"),
            ip: Some(ip_hash(ip)),
            sub_id: sub.map(str::to_owned),
            needs: CountNeeds {
                ip_window_hours: Some(24),
                sub_ids: true,
            },
            adds: true,
            hour: (now_ms / HOUR_MS) as u32,
            day: (now_ms / DAY_MS) as u32,
        }
    }

    fn batch(isolate: u64, seq: u64, ip: &str, hour: u32, clicks: u32) -> Batch {
        Batch {
            isolate,
            seq,
            ips: vec![IpDelta {
                offer: id("1"),
                ip: ip_hash(ip),
                hour,
                clicks,
            }],
            subs: vec![],
            flood: vec![],
            thresholds: Thresholds::default(),
            network: id("net-1"),
            report: vec![],
            explain: vec![],
        }
    }

    fn policy() -> FlushPolicy {
        FlushPolicy {
            interval_ms: 1_000,
            max_keys: 100,
            max_clicks: 1_000,
            stale_ms: 30_000,
            max_backoff_ms: 8_000,
        }
    }

    #[test]
    fn history_windows_are_whole_hours_and_old_hours_are_dropped() {
        let mut h = History::default();
        h.add(100, 2);
        h.add(103, 1);
        h.add(100, 1);
        assert_eq!(h.in_window(103, 1), 1);
        assert_eq!(h.in_window(103, 4), 4);
        assert_eq!(h.in_window(103, 3), 1);
        // Hours after the one asked about are not in its window.
        assert_eq!(h.in_window(101, 24), 3);
        h.prune(100 + RETAIN_HOURS);
        assert_eq!(h, History(vec![(103, 1)]));
        assert_eq!(History::decode(&h.encode()), Ok(h));
        assert!(History::decode("12").is_err());
        assert!(History::decode("a:1").is_err());
    }

    #[test]
    fn batches_and_replies_survive_the_wire_and_bad_ones_name_the_problem() {
        let mut b = batch(0xfeed, 3, "192.0.2.1", 499_000, 4);
        let mut sketch = HyperLogLog::default();
        sketch.insert("s1");
        b.subs.push(SubDelta {
            offer: id("1"),
            day: 20_000,
            sketch: sketch.clone(),
        });
        let mut tally = Tally {
            clicks: 3,
            blocked: 1,
            allowed: 2,
            ..Tally::default()
        };
        tally.reasons.insert("bot".into(), 1);
        b.report.push((
            RowKey {
                hour: 499_000,
                advertiser: "adv".into(),
                offer: "1".into(),
            },
            tally,
        ));
        b.explain.push((
            report::explain_key(499_000, &[1; NONCE_LEN]),
            "{\"event\":\"click\"}".into(),
        ));
        assert_eq!(Batch::parse(&b.to_json()), Ok(b.clone()));
        let bad = b.to_json().replace("explain/00499000", "explain/x");
        assert!(Batch::parse(&bad).unwrap_err().starts_with("explain[0]"));
        let reply = Reply {
            duplicate: true,
            ips: vec![(id("1"), 7, History(vec![(1, 2)]))],
            subs: vec![(id("1"), 20_000, sketch)],
            block: Some(FloodBlock {
                until_ms: 86_400_000,
                cause: FloodCause::PerMinute,
                detail: "12 clicks, ceiling 10".into(),
            }),
        };
        assert_eq!(Reply::parse(&reply.to_json()), Ok(reply));

        let bad = b.to_json().replace("\"seq\":3", "\"seq\":0");
        assert_eq!(
            Batch::parse(&bad),
            Err("seq: must be a positive integer".into())
        );
        let bad = b.to_json().replace(",4]", ",-4]");
        assert!(Batch::parse(&bad)
            .unwrap_err()
            .starts_with("ips[0]: item 3"));
        assert!(Batch::parse("{")
            .unwrap_err()
            .starts_with("batch is not JSON"));
    }

    #[test]
    fn store_keys_round_trip_and_foreign_keys_are_refused() {
        for key in [
            StoreKey::Seen,
            StoreKey::Ip(id("o-1"), 0xabc),
            StoreKey::Sub(id("o.2"), 20_415),
            StoreKey::Report(499_001),
            StoreKey::Explain(499_001, "00ff00ff00ff00ff".into()),
        ] {
            assert_eq!(StoreKey::parse(&key.to_string()), Some(key));
        }
        assert_eq!(StoreKey::parse("ip/1/xyz"), None);
        assert_eq!(StoreKey::parse("explain/00499001/00FF00FF00FF00FF"), None);
        assert_eq!(StoreKey::parse("explain/00499001/00ff"), None);
        assert_eq!(StoreKey::parse("report/499001"), None);
        assert_eq!(StoreKey::parse("other"), None);
    }

    #[test]
    fn a_retried_batch_is_counted_once_and_gets_the_same_totals() {
        let mut object = NetworkCounts::default();
        let b = batch(1, 1, "192.0.2.1", 10, 3);
        let first = object.apply(&b, 10 * HOUR_MS);
        let again = object.apply(&b, 10 * HOUR_MS);
        assert!(!first.duplicate);
        assert!(again.duplicate);
        assert_eq!(first.ips, again.ips);
        assert_eq!(first.ips[0].2.in_window(10, 1), 3);
    }

    #[test]
    fn what_the_object_writes_is_what_it_reads_back() {
        // The object keeps nothing between requests but its storage: apply, store, reload, apply
        // must equal applying both in one memory.
        let mut kept = NetworkCounts::default();
        let mut storage: HashMap<String, String> = HashMap::new();
        let mut sub = batch(2, 1, "192.0.2.9", 10, 1);
        let mut sketch = HyperLogLog::default();
        sketch.insert("x");
        sub.subs.push(SubDelta {
            offer: id("1"),
            day: 0,
            sketch,
        });
        let batches = [
            batch(1, 1, "192.0.2.1", 10, 2),
            sub,
            batch(1, 2, "192.0.2.1", 11, 5),
        ];
        for b in &batches {
            let expected = kept.apply(b, 11 * HOUR_MS);
            let wanted = b.storage_keys();
            let (mut object, problems) = NetworkCounts::load(
                storage
                    .iter()
                    .filter(|(k, _)| wanted.contains(k))
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            );
            assert!(problems.is_empty(), "{problems:?}");
            assert_eq!(object.apply(b, 11 * HOUR_MS), expected);
            for (key, value) in object.take_changes() {
                match value {
                    Some(v) => storage.insert(key, v),
                    None => storage.remove(&key),
                };
            }
        }
        assert_eq!(
            storage.len(),
            5,
            "seen, flood, two IPs and a sketch: {storage:?}"
        );
        assert_eq!(
            storage[&StoreKey::Ip(id("1"), ip_hash("192.0.2.1")).to_string()],
            "10:2,11:5"
        );
        let (_, problems) = NetworkCounts::load([("ip/1/0000000000000001", "x"), ("zz", "")]);
        assert_eq!(problems.len(), 2);
    }

    #[test]
    fn expired_keys_are_yesterdays_sketches_and_histories_past_the_longest_window() {
        let now = T0 + 5 * HOUR_MS;
        let hour = (now / HOUR_MS) as u32;
        let day = (now / DAY_MS) as u32;
        assert!(NetworkCounts::expired_key(
            &format!("sub/{}/1", day - 1),
            "",
            now
        ));
        assert!(!NetworkCounts::expired_key(
            &format!("sub/{day}/1"),
            "",
            now
        ));
        let old = format!("{}:1", hour - RETAIN_HOURS);
        let recent = format!("{}:1", hour - RETAIN_HOURS + 1);
        assert!(NetworkCounts::expired_key(
            "ip/1/0000000000000001",
            &old,
            now
        ));
        assert!(!NetworkCounts::expired_key(
            "ip/1/0000000000000001",
            &recent,
            now
        ));
        assert!(!NetworkCounts::expired_key("seen", "{}", now));
    }

    #[test]
    fn an_isolate_counts_its_own_clicks_at_once_and_flushes_after_the_interval() {
        let mut local = LocalCounts::new(7, policy());
        let net = id("net");
        let c1 = local.record(&keys("192.0.2.1", Some("a"), T0), T0).unwrap();
        assert_eq!((c1.ip_clicks, c1.distinct_sub_ids), (1, 1));
        // One timer, not one per click.
        assert_eq!(local.flush(&net, T0), Flush::WakeIn(1_000));
        let c2 = local
            .record(&keys("192.0.2.1", Some("b"), T0 + 10), T0 + 10)
            .unwrap();
        assert_eq!((c2.ip_clicks, c2.distinct_sub_ids), (2, 2));
        assert_eq!(local.flush(&net, T0 + 10), Flush::Nothing);
        let Flush::Send(b) = local.wake(&net, T0 + 1_000) else {
            panic!("due")
        };
        assert_eq!((b.isolate, b.seq), (7, 1));
        assert_eq!(b.ips.len(), 1);
        assert_eq!(b.ips[0].clicks, 2);
        // While the batch is out, its clicks still count.
        let c3 = local
            .record(&keys("192.0.2.1", None, T0 + 1_100), T0 + 1_100)
            .unwrap();
        assert_eq!(c3.ip_clicks, 3);
        assert_eq!(local.unsent(), 1);
    }

    #[test]
    fn a_timer_lost_with_its_request_is_armed_again() {
        let net = id("net");
        let mut local = LocalCounts::new(7, policy());
        local.record(&keys("192.0.2.1", None, T0), T0);
        assert_eq!(local.flush(&net, T0), Flush::WakeIn(1_000));
        // That timer never fires (its background work was cut off). A click much later sends the
        // batch itself, and the click after that arms a new timer instead of waiting for the lost.
        local.record(&keys("192.0.2.1", None, T0 + 6_500), T0 + 6_500);
        let Flush::Send(b) = local.flush(&net, T0 + 6_500) else {
            panic!("overdue")
        };
        let reply = NetworkCounts::default().apply(&b, T0 + 6_500);
        assert_eq!(local.acked(&net, b.seq, reply, T0 + 6_500), Flush::Nothing);
        local.record(&keys("192.0.2.1", None, T0 + 7_000), T0 + 7_000);
        assert_eq!(local.flush(&net, T0 + 7_000), Flush::WakeIn(1_000));
    }

    #[test]
    fn flood_counts_travel_in_batches_and_the_block_comes_back() {
        let net = id("net");
        let t = Thresholds {
            per_minute: Some(5),
            ..Thresholds::default()
        };
        let mut object = NetworkCounts::default();
        let mut local = LocalCounts::new(1, policy());
        for i in 0..6u64 {
            assert_eq!(local.flood_view(&net, &t, T0 + i).block, None);
            local.record_flood(&net, t, i == 0, T0 + i);
        }
        let Flush::Send(b) = local.wake(&net, T0 + 1_000) else {
            panic!("due")
        };
        assert_eq!(b.flood, vec![(T0 / MINUTE_MS, 6, 1)]);
        let reply = object.apply(&b, T0 + 1_000);
        let block = reply
            .block
            .clone()
            .expect("six clicks in a minute, ceiling five");
        assert_eq!(
            (block.cause.as_str(), block.until_ms),
            ("per_minute", T0 + DAY_MS)
        );
        assert!(object.take_events()[0].contains("\"state\":\"blocked\""));
        // A retried batch does not count twice, and still carries the block.
        let again = object.apply(&b, T0 + 1_500);
        assert_eq!(again.block, reply.block);
        local.acked(&net, b.seq, reply, T0 + 1_000);
        assert_eq!(local.flood_view(&net, &t, T0 + 2_000).block, Some(block));
        // It ends at midnight UTC by itself.
        assert_eq!(local.flood_view(&net, &t, T0 + DAY_MS).block, None);
        // An operator lift reaches the isolate with the next answer.
        assert_eq!(
            object.operate(Event::Lift { by: "ops".into() }, T0 + 3_000),
            None
        );
        local.record_flood(&net, t, false, T0 + 3_000);
        let Flush::Send(b) = local.wake(&net, T0 + 4_000) else {
            panic!("due")
        };
        let reply = object.apply(&b, T0 + 4_000);
        local.acked(&net, b.seq, reply, T0 + 4_000);
        assert_eq!(local.flood_view(&net, &t, T0 + 4_001).block, None);
    }

    #[test]
    fn an_object_silent_past_the_stale_time_is_reported_unreachable() {
        let net = id("net");
        let t = Thresholds {
            on_fault: crate::verdict::FaultMode::Closed,
            ..Thresholds::default()
        };
        let mut local = LocalCounts::new(1, policy());
        local.record_flood(&net, t, false, T0);
        assert!(matches!(local.wake(&net, T0 + 1_000), Flush::Send(_)));
        assert!(!local.flood_view(&net, &t, T0 + 30_000).unreachable);
        let view = local.flood_view(&net, &t, T0 + 31_000);
        assert!(view.unreachable);
        assert_eq!(view.on_fault, crate::verdict::FaultMode::Closed);
    }

    #[test]
    fn under_load_a_batch_goes_out_every_max_clicks() {
        let net = id("net");
        let mut local = LocalCounts::new(1, policy());
        for i in 0..999u64 {
            local.record_flood(&net, Thresholds::default(), false, T0 + i);
        }
        assert!(!matches!(local.flush(&net, T0 + 999), Flush::Send(_)));
        local.record_flood(&net, Thresholds::default(), false, T0 + 999);
        assert!(matches!(local.flush(&net, T0 + 999), Flush::Send(_)));
    }

    #[test]
    fn an_evicted_isolate_loses_at_most_its_unanswered_batch_and_a_restarted_object_nothing() {
        // An isolate takes 1,000 clicks a second with batches answered at once, then is evicted
        // at an arbitrary moment: what the object holds is every click but the last batch's.
        let net = id("net");
        let t = Thresholds::default();
        let policy = FlushPolicy::default();
        let mut local = LocalCounts::new(1, policy);
        let mut storage: HashMap<String, String> = HashMap::new();
        for i in 0..2_345u64 {
            let now = T0 + i;
            local.record_flood(&net, t, false, now);
            if let Flush::Send(b) = local.flush(&net, now) {
                // The object keeps nothing but its storage: load, apply, store, as a restart would.
                let (mut object, _) =
                    NetworkCounts::load(storage.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let reply = object.apply(&b, now);
                for (k, v) in object.take_changes() {
                    if let Some(v) = v {
                        storage.insert(k, v);
                    }
                }
                local.acked(&net, b.seq, reply, now);
            }
        }
        drop(local);
        let flood = FloodState::decode(&storage["flood"]).unwrap();
        let lost = 2_345 - flood.day_clicks;
        assert!(lost < u64::from(policy.max_clicks), "{lost} clicks lost");
        assert_eq!(
            flood.day_clicks % u64::from(policy.max_clicks),
            0,
            "whole batches only"
        );
    }

    #[test]
    fn a_full_batch_goes_out_without_waiting() {
        let mut local = LocalCounts::new(7, policy());
        for i in 0..100 {
            local.record(&keys(&format!("192.0.2.{i}"), None, T0), T0);
        }
        assert!(matches!(local.flush(&id("net"), T0), Flush::Send(_)));
    }

    #[test]
    fn isolates_learn_each_others_clicks_through_the_object() {
        let net = id("net");
        let mut object = NetworkCounts::default();
        let mut a = LocalCounts::new(1, policy());
        let mut b = LocalCounts::new(2, policy());
        for i in 0..3 {
            a.record(&keys("198.51.100.4", Some(&format!("a{i}")), T0), T0);
        }
        b.record(&keys("198.51.100.4", Some("b0"), T0), T0);
        for (local, seq) in [(&mut a, 1), (&mut b, 1)] {
            let Flush::Send(batch) = local.wake(&net, T0 + 1_000) else {
                panic!("due")
            };
            assert_eq!(batch.seq, seq);
            let reply = Reply::parse(&object.apply(&batch, T0 + 1_000).to_json()).unwrap();
            assert_eq!(
                local.acked(&net, batch.seq, reply, T0 + 1_000),
                Flush::Nothing
            );
        }
        // B heard all four clicks back; A sent first and learns B's with its next flush.
        let seen_by_b = b
            .record(&keys("198.51.100.4", None, T0 + 2_000), T0 + 2_000)
            .unwrap();
        assert_eq!((seen_by_b.ip_clicks, seen_by_b.distinct_sub_ids), (5, 4));
        let seen_by_a = a
            .record(&keys("198.51.100.4", None, T0 + 2_000), T0 + 2_000)
            .unwrap();
        assert_eq!((seen_by_a.ip_clicks, seen_by_a.distinct_sub_ids), (4, 3));
    }

    #[test]
    fn a_failed_flush_is_resent_as_it_was_with_backoff_and_staleness_is_reported() {
        let net = id("net");
        let mut local = LocalCounts::new(1, policy());
        local.record(&keys("192.0.2.1", None, T0), T0);
        let Flush::Send(first) = local.wake(&net, T0 + 1_000) else {
            panic!("due")
        };
        assert_eq!(
            local.failed(&net, first.seq, T0 + 1_050),
            Flush::WakeIn(2_000)
        );
        local.record(&keys("192.0.2.1", None, T0 + 1_100), T0 + 1_100);
        // Not before the backoff; then the same batch, not a new one with the newer click in it.
        assert_eq!(local.flush(&net, T0 + 1_200), Flush::Nothing);
        assert_eq!(local.wake(&net, T0 + 3_050), Flush::Send(first.clone()));
        assert_eq!(
            local.failed(&net, first.seq, T0 + 3_100),
            Flush::WakeIn(4_000)
        );
        let c = local.record(&keys("192.0.2.1", None, T0 + 29_999), T0 + 29_999);
        assert_eq!(c.map(|c| c.ip_clicks), Some(3));
        // 30 s without an answer: the filters are told the counts are unavailable.
        assert_eq!(
            local.record(&keys("192.0.2.1", None, T0 + 31_000), T0 + 31_000),
            None
        );
        // The answer for the retried batch comes; the pending clicks go next, as batch 2.
        let reply = NetworkCounts::default().apply(&first, T0 + 31_000);
        let Flush::Send(next) = local.acked(&net, first.seq, reply, T0 + 31_000) else {
            panic!("pending clicks are overdue")
        };
        assert_eq!(next.seq, 2);
        // The three clicks since, the one judged without counts included: nothing is dropped.
        assert_eq!(next.ips[0].clicks, 3);
        assert!(local
            .record(&keys("192.0.2.1", None, T0 + 31_001), T0 + 31_001)
            .is_some());
    }

    #[test]
    fn a_send_lost_without_an_answer_is_resent_after_the_stale_time() {
        let net = id("net");
        let mut local = LocalCounts::new(1, policy());
        local.record(&keys("192.0.2.1", None, T0), T0);
        let Flush::Send(b) = local.wake(&net, T0 + 1_000) else {
            panic!("due")
        };
        assert_eq!(local.flush(&net, T0 + 20_000), Flush::Nothing);
        assert_eq!(local.flush(&net, T0 + 31_000), Flush::Send(b));
    }

    #[test]
    fn previews_read_the_counts_without_adding_to_them() {
        let mut local = LocalCounts::new(1, policy());
        let mut preview = keys("192.0.2.1", Some("a"), T0);
        preview.adds = false;
        let c = local.record(&preview, T0).unwrap();
        assert_eq!((c.ip_clicks, c.distinct_sub_ids), (0, 0));
        assert_eq!(local.flush(&id("net"), T0 + 5_000), Flush::Nothing);
    }

    #[test]
    fn duplicate_ip_leak_across_isolates_is_bounded_by_one_flush_each() {
        // Ten isolates, one IP clicking round-robin across them every 100 ms, a limit of 3 per
        // day. Every isolate judges on its own clicks until its first answer; after that on the
        // object's totals. Clicks that pass past the limit stay under isolates x (limit + clicks
        // per isolate per flush interval).
        let net = id("net");
        let limit = 3;
        let mut object = NetworkCounts::default();
        let mut isolates: Vec<LocalCounts> =
            (0..10).map(|i| LocalCounts::new(i, policy())).collect();
        let mut passed = 0;
        let mut due: Vec<Option<u64>> = vec![None; 10];
        for n in 0..600u64 {
            let now = T0 + n * 100;
            let i = (n % 10) as usize;
            let c = isolates[i]
                .record(&keys("203.0.113.50", None, now), now)
                .unwrap();
            if c.ip_clicks <= limit {
                passed += 1;
            }
            for (j, local) in isolates.iter_mut().enumerate() {
                let step = if due[j].is_some_and(|t| t <= now) {
                    due[j] = None;
                    local.wake(&net, now)
                } else if j == i {
                    local.flush(&net, now)
                } else {
                    Flush::Nothing
                };
                match step {
                    Flush::WakeIn(ms) => due[j] = Some(now + ms),
                    Flush::Send(b) => {
                        let reply = object.apply(&b, now);
                        if let Flush::WakeIn(ms) = local.acked(&net, b.seq, reply, now) {
                            due[j] = Some(now + ms);
                        }
                    }
                    Flush::Nothing => {}
                }
            }
        }
        let past_limit = passed - limit;
        // Each isolate sees one click per second here: at most `limit` before it hears back. The
        // simulation is deterministic: the README quotes its figure, checked here word for word.
        let bound = 10 * limit;
        assert_eq!(past_limit, 18, "clicks passed past the limit");
        assert!(past_limit <= bound);
        let readme = include_str!("../../../README.md");
        let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
        let sentence = format!(
            "simulation of 10 isolates taking one IP's clicks in turn with a limit of {limit}, \
             {past_limit} clicks passed past the limit against the bound of {bound}."
        );
        assert!(flat.contains(&sentence), "README lacks: {sentence}");
        // And the object counted every click exactly once.
        let total = object.count(&ClickKeys {
            adds: false,
            ..keys("203.0.113.50", None, T0 + 60_000)
        });
        let in_flight_or_pending = 600 - total.ip_clicks;
        assert!(
            in_flight_or_pending <= 10,
            "{in_flight_or_pending} not yet flushed"
        );
    }

    /// Every network's object as storage only, the way the Worker runs them: each batch loads the
    /// keys, applies, and stores what changed.
    #[derive(Default)]
    struct Objects(HashMap<Id, HashMap<String, String>>);

    impl Objects {
        fn apply(&mut self, b: &Batch, now: u64) -> Reply {
            let storage = self.0.entry(b.network.clone()).or_default();
            let (mut object, _) =
                NetworkCounts::load(storage.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let reply = object.apply(b, now);
            for (k, v) in object.take_changes() {
                match v {
                    Some(v) => storage.insert(k, v),
                    None => storage.remove(&k),
                };
            }
            reply
        }

        fn day_clicks(&self, network: &Id) -> u64 {
            FloodState::decode(&self.0[network]["flood"])
                .unwrap()
                .day_clicks
        }
    }

    /// One click for `network`, flushed at once and answered by its object.
    fn click_and_flush(local: &mut LocalCounts, objects: &mut Objects, network: &Id, now: u64) {
        local.record_flood(network, Thresholds::default(), false, now);
        let Flush::Send(b) = local.wake(network, now + 1_000) else {
            panic!("{network}: a pending click is due after the interval")
        };
        let reply = objects.apply(&b, now + 1_000);
        assert!(!reply.duplicate, "{network}: batch {} dropped", b.seq);
        assert_eq!(
            local.acked(network, b.seq, reply, now + 1_000),
            Flush::Nothing
        );
    }

    #[test]
    fn thousands_of_made_up_networks_keep_an_isolate_under_its_network_cap() {
        let mut local = LocalCounts::new(1, policy());
        let mut objects = Objects::default();
        for i in 0..5_000u64 {
            click_and_flush(
                &mut local,
                &mut objects,
                &id(&format!("made-up-{i}")),
                T0 + i,
            );
            assert!(
                local.networks() <= MAX_NETWORKS,
                "{} networks",
                local.networks()
            );
        }
        assert_eq!(local.evicted(), 5_000 - local.networks() as u64);
        assert!(local.networks() > EVICT_TO);
        let line: Value = serde_json::from_str(&local.take_eviction_line().unwrap()).unwrap();
        assert_eq!(line["event"], "counts_evicted");
        assert_eq!(line["max_networks"], MAX_NETWORKS);
        assert_eq!(
            local.take_eviction_line(),
            None,
            "each eviction is logged once"
        );
        // The README states the bounds this test holds the isolate to.
        let readme = include_str!("../../../README.md");
        let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
        for sentence in [
            format!("an isolate keeps counts, totals and flood state for at most {MAX_NETWORKS} networks"),
            format!("that have nothing unsent or unanswered, down to {EVICT_TO};"),
            format!("5,000 made-up networks clicking once each left an isolate holding at most {MAX_NETWORKS}."),
        ] {
            let sentence = sentence.replace("1024", "1,024");
            assert!(flat.contains(&sentence), "README lacks: {sentence}");
        }
    }

    #[test]
    fn an_evicted_network_that_returns_has_its_batches_applied_exactly_once() {
        // Regression: a network's state made again after eviction numbers its batches from 1; under
        // the isolate's own id the object would take them for retries of the old ones and drop them.
        let net = id("net");
        let mut local = LocalCounts::new(1, policy());
        let mut objects = Objects::default();
        for i in 0..3 {
            click_and_flush(&mut local, &mut objects, &net, T0 + i);
        }
        // Other networks push it out: it is the least recently used and has nothing unsent.
        for i in 0..MAX_NETWORKS as u64 {
            click_and_flush(
                &mut local,
                &mut objects,
                &id(&format!("other-{i}")),
                T0 + 10 + i,
            );
        }
        assert!(local.evicted() > 0);
        assert_eq!(local.flush(&net, T0 + 5_000), Flush::Nothing, "forgotten");
        // It returns, twice over another round of evictions: every batch counts, none twice.
        for round in 0..2u64 {
            let at = T0 + 10_000 + round * 10_000;
            for i in 0..4 {
                click_and_flush(&mut local, &mut objects, &net, at + i);
            }
            for i in 0..MAX_NETWORKS as u64 {
                let other = id(&format!("round-{round}-{i}"));
                click_and_flush(&mut local, &mut objects, &other, at + 100 + i);
            }
        }
        assert_eq!(objects.day_clicks(&net), 3 + 4 + 4);
        // A retry of an answered batch is still recognised as one.
        local.record_flood(&net, Thresholds::default(), false, T0 + 40_000);
        let Flush::Send(b) = local.wake(&net, T0 + 41_000) else {
            panic!("due")
        };
        assert!(!objects.apply(&b, T0 + 41_000).duplicate);
        assert!(objects.apply(&b, T0 + 41_001).duplicate);
        assert_eq!(objects.day_clicks(&net), 12);
    }

    #[test]
    fn a_network_with_unsent_or_unanswered_counts_is_never_evicted() {
        let (pending, out) = (id("pending"), id("out"));
        let mut local = LocalCounts::new(1, policy());
        let mut objects = Objects::default();
        local.record_flood(&pending, Thresholds::default(), false, T0);
        local.record_flood(&out, Thresholds::default(), false, T0);
        let Flush::Send(sent) = local.wake(&out, T0 + 1_000) else {
            panic!("due")
        };
        for i in 0..3 * MAX_NETWORKS as u64 {
            click_and_flush(&mut local, &mut objects, &id(&format!("n{i}")), T0 + 10 + i);
        }
        assert!(local.evicted() > 2 * MAX_NETWORKS as u64);
        // The batch out is still known when its answer comes, and the pending click goes next.
        let reply = objects.apply(&sent, T0 + 20_000);
        assert_eq!(
            local.acked(&out, sent.seq, reply, T0 + 20_000),
            Flush::Nothing
        );
        let Flush::Send(b) = local.wake(&pending, T0 + 20_000) else {
            panic!("the pending click survived")
        };
        objects.apply(&b, T0 + 20_000);
        assert_eq!(objects.day_clicks(&out), 1);
        assert_eq!(objects.day_clicks(&pending), 1);
    }

    #[test]
    fn a_network_under_a_block_is_evicted_after_every_other_idle_one() {
        let blocked = id("blocked");
        let mut local = LocalCounts::new(1, policy());
        let mut objects = Objects::default();
        local.record_flood(&blocked, Thresholds::default(), false, T0);
        let Flush::Send(b) = local.wake(&blocked, T0 + 1_000) else {
            panic!("due")
        };
        let mut reply = objects.apply(&b, T0 + 1_000);
        reply.block = Some(FloodBlock {
            until_ms: T0 + DAY_MS,
            cause: FloodCause::Operator,
            detail: String::new(),
        });
        local.acked(&blocked, b.seq, reply, T0 + 1_000);
        for i in 0..2 * MAX_NETWORKS as u64 {
            click_and_flush(&mut local, &mut objects, &id(&format!("n{i}")), T0 + 10 + i);
        }
        let view = local.flood_view(&blocked, &Thresholds::default(), T0 + 60_000);
        assert!(view.block.is_some(), "the block is still known");
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // Batches applied in any order, any number of times, give the same totals.
            #[test]
            fn applying_batches_is_idempotent_and_order_independent(
                deltas in proptest::collection::vec((0u64..3, 0u32..4, 0u32..5, 1u32..9), 1..30),
                order in any::<proptest::sample::Index>(),
                repeats in proptest::collection::vec(any::<proptest::sample::Index>(), 0..10),
            ) {
                let batches: Vec<Batch> = deltas.iter().enumerate().map(|(n, &(iso, ip, hour, clicks))| {
                    batch(iso, n as u64 + 1, &format!("192.0.2.{ip}"), 1000 + hour, clicks)
                }).collect();
                let apply_all = |list: &[&Batch]| {
                    let mut o = NetworkCounts::default();
                    for b in list { o.apply(b, 1004 * HOUR_MS); }
                    let mut ips: Vec<_> = o.ips.into_iter().collect();
                    ips.sort_by_key(|(k, _)| k.1);
                    ips
                };
                let in_order: Vec<&Batch> = batches.iter().collect();
                let mut shuffled = in_order.clone();
                let by = order.index(shuffled.len());
                shuffled.rotate_left(by);
                shuffled.reverse();
                for r in &repeats {
                    let b = in_order[r.index(in_order.len())];
                    let at = r.index(shuffled.len() + 1);
                    shuffled.insert(at, b);
                }
                prop_assert_eq!(apply_all(&in_order), apply_all(&shuffled));
            }

            #[test]
            fn any_history_text_round_trips(entries in proptest::collection::vec((0u32..1_000_000, 1u32..1000), 0..20)) {
                let mut h = History::default();
                for (hour, clicks) in entries { h.add(hour, clicks); }
                prop_assert_eq!(History::decode(&h.encode()), Ok(h));
            }

            #[test]
            fn batch_parsing_never_panics(text in ".{0,200}") {
                let _ = Batch::parse(&text);
                let _ = Reply::parse(&text);
            }
        }
    }
}
