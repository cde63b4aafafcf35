//! What a network's object stores: its counts, applied from the isolates' batches exactly once, and
//! the keys they live under.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::alerts::Kind;
use crate::click::Id;
use crate::conversion::{self, free_approval_slot};
use crate::fault::Corrupt;
use crate::flood::{Event, FloodBlock, FloodState, Outcome};
use crate::hll::HyperLogLog;
use crate::log::JsonLine;
use crate::report::HourRows;
use crate::rules::Counters;
use crate::signing;
use crate::time::{rfc3339_ms, utc_day, HOUR_MS};

use super::click_ids::uses;
use super::directory;
use super::keys::{clamp_u32, share_tally, u32_at, ClickKeys, History};
use super::wire::{decode_sketch, hex_u64, Batch, ConversionUse, Reply};
use crate::filters::share::{Measure, ShareTally};
use crate::stored::{
    approval_slots, StoreKey, EXPLAIN_RETAIN_DAYS, FLOOD_RETAIN_DAYS, REPORT_RETAIN_DAYS,
    SEEN_RETAIN_HOURS,
};

/// Which batches of one isolate were applied: every seq up to `upto`, and `above`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Applied {
    upto: u64,
    above: BTreeSet<u64>,
    last_hour: u32,
}

impl Applied {
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
/// (the object loads those from storage, applies, and writes back what
/// [`NetworkCounts::take_changes`] names).
#[derive(Debug, Clone, Default)]
pub struct NetworkCounts {
    seen: BTreeMap<u64, Applied>,
    pub(super) ips: HashMap<(Id, u64), History>,
    subs: HashMap<(Id, u32), HyperLogLog>,
    flood: Option<FloodState>,
    reports: HashMap<u32, HourRows>,
    /// Decisions to keep, by their explain key.
    explained: Vec<(StoreKey, String)>,
    changed: BTreeSet<StoreKey>,
    /// Log lines for what changed in the flood state (a trip, a lift), for the object to print.
    events: Vec<String>,
    /// The same changes as alerts, for the answer to the request that made them.
    alerts: Vec<(Kind, String)>,
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

    fn load_one(&mut self, key: &str, value: &str) -> Result<(), Corrupt> {
        match StoreKey::parse(key).ok_or(Corrupt::new("store key", "unknown key"))? {
            StoreKey::Seen => {
                self.seen = decode_seen(value).map_err(|e| Corrupt::new("applied batches", e))?
            }
            StoreKey::Ip(offer, ip) => {
                self.ips.insert((offer, ip), History::decode(value)?);
            }
            StoreKey::Sub(offer, day) => {
                let sketch = decode_sketch(value).map_err(|e| Corrupt::new("sub-ID sketch", e))?;
                self.subs.insert((offer, day), sketch);
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
            // Sub IDs the sketch already holds change nothing, and need no write.
            if sketch.merge(&d.sketch) {
                self.changed.insert(StoreKey::Sub(d.offer.clone(), d.day));
            }
            reply.subs.push((key.0, key.1, sketch.clone()));
        }
        let flood = self.flood.get_or_insert_with(|| FloodState::new(now_ms));
        let mut outcomes = vec![flood.step(Event::Tick, &batch.thresholds, now_ms)];
        if fresh {
            flood.config_in_force(batch.config, now_ms);
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
        reply.alerts = self.take_alerts();
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
        let outcome = flood.step_between_batches(Event::Conversions { count: 1 }, now_ms);
        self.changed.insert(StoreKey::Flood);
        self.log_outcomes(vec![outcome], now_ms);
    }

    /// An operator lifts or imposes the network's block; the isolates hear of it with their next
    /// answer.
    pub fn operate(&mut self, event: Event, now_ms: u64) -> Option<FloodBlock> {
        let flood = self.flood.get_or_insert_with(|| FloodState::new(now_ms));
        let outcome = flood.step_between_batches(event, now_ms);
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
            let alert = match &outcome {
                Outcome::Nothing => continue,
                Outcome::Tripped(b) => Some((
                    Kind::FloodTripped,
                    format!("{}: {}", b.cause.as_str(), b.detail),
                )),
                Outcome::Imposed(b) => Some((Kind::FloodTripped, b.detail.clone())),
                Outcome::AfterConfigChange(b) => Some((
                    Kind::FloodAfterConfigChange,
                    format!("{}: {}", b.cause.as_str(), b.detail),
                )),
                Outcome::Lifted { by } => Some((Kind::FloodLifted, format!("lifted by {by}"))),
                Outcome::NewDay { ended_block } => {
                    ended_block.then(|| (Kind::FloodLifted, "the UTC day ended".to_owned()))
                }
            };
            self.alerts.extend(alert);
            let line = match outcome {
                Outcome::Nothing => continue,
                Outcome::Tripped(b) | Outcome::Imposed(b) => line
                    .str("level", "error")
                    .str("state", "blocked")
                    .str("cause", b.cause.as_str())
                    .str("detail", &b.detail)
                    .opt("by", b.by.as_deref()),
                Outcome::AfterConfigChange(b) => line
                    .str("level", "warn")
                    .str("state", "not_blocked")
                    .str("cause", "config_change")
                    .str("would_block", b.cause.as_str())
                    .str("detail", &b.detail),
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

    /// Alerts for flood changes since the last call: a trip or an operator's block
    /// ([`Kind::FloodTripped`]), a lift or the day's end of a block ([`Kind::FloodLifted`]).
    pub fn take_alerts(&mut self) -> Vec<(Kind, String)> {
        std::mem::take(&mut self.alerts)
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
            counters.ip_clicks = self.count_clicks(&keys.offer, ip, keys.hour, keys.adds, window);
        }
        if let (Some(window), Some(device)) = (keys.needs.device_window_hours[1], keys.device) {
            let n = self.count_clicks(&keys.offer, device, keys.hour, keys.adds, window);
            counters.device_clicks[1] = Some(n);
        }
        if keys.needs.sub_ids {
            let sketch = self.subs.entry((keys.offer.clone(), keys.day)).or_default();
            if let (Some(sub), true) = (&keys.sub_id, keys.adds) {
                sketch.insert(sub);
            }
            counters.distinct_sub_ids = clamp_u32(sketch.estimate());
        }
        keys.count_shares(keys.adds, &mut counters.shares, |measure, hit, window| {
            self.count_share(&keys.offer, measure, keys.hour, hit, window)
        });
        counters
    }

    /// Counts one click (`add`) under `key` on `offer` (an IP's or a device's hash) directly, and
    /// answers its clicks over `window` hours: what replay runs.
    pub(crate) fn count_clicks(
        &mut self,
        offer: &Id,
        key: u64,
        hour: u32,
        add: bool,
        window: u32,
    ) -> u32 {
        let history = self.ips.entry((offer.clone(), key)).or_default();
        if add {
            history.add(hour, 1);
            history.prune(hour);
        }
        history.in_window(hour, window)
    }

    /// Counts one event toward a share directly (`hit`: whether it is one of its hits; `None`: it
    /// only reads), as the object would once it has every isolate's batches, and answers the
    /// share's tally over `window_hours`: what replay runs.
    pub(crate) fn count_share(
        &mut self,
        offer: &Id,
        measure: Measure,
        hour: u32,
        hit: Option<bool>,
        window_hours: u32,
    ) -> ShareTally {
        share_tally(measure, hit, |key, n| {
            let history = self.ips.entry((offer.clone(), key)).or_default();
            if let Some(n) = n {
                history.add(hour, n);
                history.prune(hour);
            }
            history.in_window(hour, window_hours)
        })
    }

    /// Keys whose data no window reaches any more: sub-ID days before today, IP histories that are
    /// empty once pruned, report hours and kept decisions past their retention, applied batches of
    /// isolates all unheard of for [`SEEN_RETAIN_HOURS`], a flood state untouched for
    /// [`FLOOD_RETAIN_DAYS`]. What the object's daily alarm deletes. A flood or batch record that
    /// does not read is left for the load that reports it.
    pub(crate) fn expired_key(key: &str, value: &str, now_ms: u64) -> bool {
        let hour = (now_ms / HOUR_MS) as u32;
        match StoreKey::parse(key) {
            Some(StoreKey::Seen) => decode_seen(value).is_ok_and(|seen| {
                seen.values()
                    .all(|s| s.last_hour.saturating_add(SEEN_RETAIN_HOURS) <= hour)
            }),
            Some(StoreKey::Flood) => FloodState::decode(value)
                .is_ok_and(|f| f.day + FLOOD_RETAIN_DAYS < u64::from(utc_day(now_ms))),
            Some(StoreKey::Report(hour)) => past_retention(hour, REPORT_RETAIN_DAYS, now_ms),
            Some(StoreKey::Explain(hour, _)) => past_retention(hour, EXPLAIN_RETAIN_DAYS, now_ms),
            Some(StoreKey::Sub(_, day)) => day < utc_day(now_ms),
            Some(StoreKey::Ip(..)) => History::decode(value).map_or(true, |mut h| {
                h.prune((now_ms / HOUR_MS) as u32);
                h.is_empty()
            }),
            // Not ours to judge: left alone.
            None => false,
        }
    }
}

/// The daily sweep's one rule: whether an entry of an object's storage (a shared object's with its
/// network's prefix) is past its retention or expiry: a count ([`NetworkCounts::expired_key`]), a
/// use record, a rejection or a directory listing. Keys of no known family are left alone.
pub fn expired(stored: &str, value: &str, now_ms: u64) -> bool {
    let key = crate::stored::inner_key(stored);
    NetworkCounts::expired_key(key, value, now_ms)
        || signing::use_record_expired(key, value, now_ms)
        || conversion::rejection_expired(key, value, now_ms)
        || directory::listing_expired(key, value, now_ms)
}

/// Whether an hour kept for `days` days is past it.
fn past_retention(hour: u32, days: u32, now_ms: u64) -> bool {
    hour + days * 24 <= (now_ms / HOUR_MS) as u32
}

fn encode_seen(seen: &BTreeMap<u64, Applied>) -> String {
    // Inserted one by one: collecting into a map would bring its own copy of the stable sort.
    let mut map = serde_json::Map::new();
    for (isolate, s) in seen {
        map.insert(
            format!("{isolate:016x}"),
            json!([s.upto, s.above.iter().collect::<Vec<_>>(), s.last_hour]),
        );
    }
    Value::Object(map).to_string()
}

fn decode_seen(text: &str) -> Result<BTreeMap<u64, Applied>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let map = v.as_object().ok_or("not an object")?;
    let mut seen = BTreeMap::new();
    for (isolate, s) in map {
        let isolate = hex_u64(Some(&Value::String(isolate.clone())))?;
        let upto = s.get(0).and_then(Value::as_u64).ok_or("upto")?;
        let mut above = BTreeSet::new();
        for n in s.get(1).and_then(Value::as_array).ok_or("above")? {
            above.insert(n.as_u64().ok_or("above")?);
        }
        let last_hour = u32_at(s, 2)?;
        seen.insert(
            isolate,
            Applied {
                upto,
                above,
                last_hour,
            },
        );
    }
    Ok(seen)
}

/// What the object does with one conversion: what it answers, what it stores, and whether the
/// conversion counts toward the network's flood day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionStep {
    pub seen: conversion::Prior,
    pub writes: Vec<(String, u64)>,
    pub counts_toward_flood: bool,
}

/// The keys the object reads for one conversion: its event's use record, its click's approval
/// slots, and its click's rejection.
pub fn conversion_keys(asked: &ConversionUse) -> Vec<String> {
    let mut keys = vec![asked.key.clone()];
    if let Some((click_key, max)) = &asked.approvals {
        keys.extend(approval_slots(click_key, *max));
    }
    keys.extend(asked.rejection.clone());
    keys
}

/// The object's step for one conversion over the stored values of [`conversion_keys`]. Its event
/// is recorded as used until it expires, and a repeat is a duplicate. A click another system
/// rejected is rejected, and takes no approval slot. An approvable one then takes
/// its click's first free approval slot; with none free it is capped (its event still recorded).
/// A fresh one counts toward the flood day when the isolate said it does.
pub fn conversion_step(
    asked: &ConversionUse,
    stored: &[(String, String)],
    now_ms: u64,
) -> ConversionStep {
    let held = |key: &str| -> HashMap<String, u64> {
        stored
            .iter()
            .filter(|(k, _)| k == key)
            .filter_map(|(k, v)| Some((k.clone(), v.parse().ok()?)))
            .collect()
    };
    let event = (asked.key.as_str(), asked.expires_ms);
    let (used, mut writes) = uses(&[event], held(&asked.key), now_ms);
    let refused = |seen, writes| ConversionStep {
        seen,
        writes,
        counts_toward_flood: false,
    };
    if used.contains(&true) {
        return refused(conversion::Prior::Duplicate, writes);
    }
    let rejected = asked.rejection.as_ref().and_then(|key| {
        let (_, value) = stored.iter().find(|(k, _)| k == key)?;
        conversion::stored_rejection(value, now_ms)
    });
    if let Some(reason) = rejected {
        return refused(conversion::Prior::Rejected(reason.to_owned()), writes);
    }
    if let Some((click_key, max)) = &asked.approvals {
        let slots = approval_slots(click_key, *max);
        let Some(slot) = free_approval_slot(&slots, stored, now_ms) else {
            return refused(conversion::Prior::Capped, writes);
        };
        let (_, taken) = uses(&[(slot, asked.expires_ms)], held(slot), now_ms);
        writes.extend(taken);
    }
    ConversionStep {
        seen: conversion::Prior::Fresh,
        writes,
        counts_toward_flood: asked.counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::keys::ip_hash;
    use crate::network::wire::tests::{batch, id};
    use crate::network::wire::SubDelta;
    use crate::stored::RETAIN_HOURS;
    use crate::time::DAY_MS;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const T0: u64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

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
    fn stored_text_that_does_not_read_back_is_a_runtime_fault_with_todays_message() {
        use crate::fault::{Blame, Fault};
        let e = History::decode("12").unwrap_err();
        assert_eq!((e.what, e.blame()), ("ip history", Blame::Runtime));
        assert_eq!(e.to_string(), "'12' is not hour:clicks");
        let (_, problems) = NetworkCounts::load([("flood", "{}"), ("nonsense", "1")]);
        assert_eq!(problems, ["flood: hours", "nonsense: unknown key"]);
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
    fn a_conversion_is_fresh_once_per_event_and_takes_one_of_its_clicks_approvals() {
        const EXPIRES: u64 = T0 + 90 * DAY_MS;
        let asked = |event: &str| ConversionUse {
            key: format!("cv/00ff/{event}"),
            expires_ms: EXPIRES,
            counts: true,
            approvals: Some(("cv/00ff/approved".to_owned(), 1)),
            rejection: None,
        };
        // What the object stores, as text, after each step.
        let mut stored: Vec<(String, String)> = Vec::new();
        let mut step = |c: &ConversionUse, now: u64| {
            let keys = conversion_keys(c);
            let read: Vec<_> = stored
                .iter()
                .filter(|(k, _)| keys.contains(k))
                .cloned()
                .collect();
            let step = conversion_step(c, &read, now);
            for (k, t) in &step.writes {
                stored.retain(|(s, _)| s != k);
                stored.push((k.clone(), t.to_string()));
            }
            step
        };
        let first = step(&asked("sale"), T0);
        assert_eq!(
            (first.seen, first.counts_toward_flood),
            (conversion::Prior::Fresh, true)
        );
        let written: Vec<&str> = first.writes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(written, ["cv/00ff/sale", "cv/00ff/approved/0"]);
        // The same event again: a duplicate, not counted.
        let again = step(&asked("sale"), T0 + 1);
        assert_eq!(
            (again.seen, again.counts_toward_flood),
            (conversion::Prior::Duplicate, false)
        );
        // Another event of the click: its one approval is taken, though the event is recorded.
        let other = step(&asked("upsell"), T0 + 2);
        assert_eq!(other.seen, conversion::Prior::Capped);
        assert_eq!(other.writes.len(), 1);
        // Once the slot has expired, a new event takes it.
        let later = step(&asked("renewal"), EXPIRES + 1);
        assert_eq!(later.seen, conversion::Prior::Fresh);
    }

    #[test]
    fn a_rejection_turns_the_clicks_later_conversions_invalid_and_takes_no_approval() {
        const EXPIRES: u64 = T0 + 90 * DAY_MS;
        let asked = |event: &str| ConversionUse {
            key: format!("cv/00ff/{event}"),
            expires_ms: EXPIRES,
            counts: true,
            approvals: Some(("cv/00ff/approved".to_owned(), 2)),
            rejection: Some("rj/00ff".to_owned()),
        };
        let mut stored: Vec<(String, String)> = Vec::new();
        let step = |c: &ConversionUse, now: u64, stored: &mut Vec<(String, String)>| {
            let keys = conversion_keys(c);
            let read: Vec<_> = stored
                .iter()
                .filter(|(k, _)| keys.contains(k))
                .cloned()
                .collect();
            let step = conversion_step(c, &read, now);
            for (k, t) in &step.writes {
                stored.retain(|(s, _)| s != k);
                stored.push((k.clone(), t.to_string()));
            }
            step
        };
        // Before the rejection: approved, one slot taken.
        let before = step(&asked("install"), T0, &mut stored);
        assert_eq!(before.seen, conversion::Prior::Fresh);
        // The MMP rejects the install; the object keeps it beside the click's records.
        let (_, value) = conversion::reject_step(None, "click injection", EXPIRES, T0 + 1);
        stored.push(("rj/00ff".to_owned(), value.unwrap()));
        // After it: the next event is rejected, recorded as used, and takes no approval slot.
        let after = step(&asked("purchase"), T0 + 2, &mut stored);
        assert_eq!(
            (after.seen, after.counts_toward_flood),
            (conversion::Prior::Rejected("click injection".into()), false)
        );
        let written: Vec<&str> = after.writes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(written, ["cv/00ff/purchase"]);
        // A repeat of it is a duplicate first, as any repeat.
        let repeat = step(&asked("purchase"), T0 + 3, &mut stored);
        assert_eq!(repeat.seen, conversion::Prior::Duplicate);
        // Past the rejection's expiry the click is judged on the rest again.
        let later = step(&asked("renewal"), EXPIRES + 1, &mut stored);
        assert_eq!(later.seen, conversion::Prior::Fresh);
    }

    #[test]
    fn a_sub_id_sketch_is_written_only_when_a_batch_adds_to_it() {
        let with_subs = |seq: u64, subs: &[&str]| {
            let mut b = batch(1, seq, "192.0.2.1", 499_000, 1);
            let mut sketch = crate::hll::HyperLogLog::default();
            for s in subs {
                sketch.insert(s);
            }
            b.subs.push(SubDelta {
                offer: id("1"),
                day: 20_000,
                sketch,
            });
            b
        };
        let sub_written = |counts: &mut NetworkCounts| {
            counts
                .take_changes()
                .iter()
                .any(|(key, _)| key.starts_with("sub/"))
        };
        let mut counts = NetworkCounts::default();
        counts.apply(&with_subs(1, &["a", "b"]), T0);
        assert!(sub_written(&mut counts));
        // The same sub IDs from another isolate's batch: the sketch is as it was.
        counts.apply(&with_subs(2, &["b", "a"]), T0);
        assert!(!sub_written(&mut counts));
        counts.apply(&with_subs(3, &["c"]), T0);
        assert!(sub_written(&mut counts));
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
    }

    #[test]
    fn the_sweep_judges_every_family_with_or_without_a_network_prefix() {
        let today = utc_day(T0);
        assert!(expired("@n-1/r/123", &(T0 - 1).to_string(), T0));
        assert!(!expired("@n-1/r/123", &T0.to_string(), T0));
        assert!(expired("cv/00ff/approved/0", "garbage", T0));
        assert!(expired("@n-1/rj/00ff", "garbage", T0));
        assert!(!expired("n/net-1", &(today - 90).to_string(), T0));
        assert!(expired("n/net-1", &(today - 91).to_string(), T0));
        assert!(expired(&format!("@n-1/sub/{}/1", today - 1), "", T0));
        assert!(!expired("@n-1/who-knows", "0", T0));
    }

    #[test]
    fn a_quiet_members_flood_and_batch_records_expire() {
        // Regression: the applied-batch and flood records were never swept, so each made-up
        // `aff_id` left about 440 bytes in its shared object for good.
        let mut object = NetworkCounts::default();
        let hour = (T0 / HOUR_MS) as u32;
        object.apply(&batch(7, 1, "192.0.2.1", hour, 1), T0);
        let stored: Vec<(String, String)> = object
            .take_changes()
            .into_iter()
            .filter_map(|(k, v)| Some((format!("@made-up-1/{k}"), v?)))
            .collect();
        let expired = |key: &str, now: u64| {
            stored
                .iter()
                .find(|(k, _)| k.contains(key))
                .is_some_and(|(k, v)| expired(k, v, now))
        };
        // Kept while a retry or the day's flood state may still need them...
        assert!(!expired("/seen", T0 + 47 * HOUR_MS));
        assert!(!expired("/flood", T0 + 29 * DAY_MS));
        // ...swept once past them.
        assert!(expired("/seen", T0 + 49 * HOUR_MS));
        assert!(expired("/flood", T0 + 31 * DAY_MS));
        assert!(expired("/ip/1/", T0 + 31 * DAY_MS));
        // Unreadable records are left to the load that names them.
        assert!(!NetworkCounts::expired_key("seen", "x", T0 + 90 * DAY_MS));
        assert!(!NetworkCounts::expired_key("flood", "x", T0 + 90 * DAY_MS));
    }
}
