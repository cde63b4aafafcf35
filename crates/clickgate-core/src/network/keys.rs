//! What the isolate's counts and the object's store share: the keys a click touches (their store
//! keys are spelled in [`crate::stored`]), and the per-IP history of clicks. The floor of `network/`: the wire
//! format, the object's store and the isolate's counts all read these, and it reads none of them.

use serde_json::{json, Value};

use crate::click::{ClickParams, ClientInfo, Id};
use crate::config::rules::Rule;
use crate::config::Config;
use crate::fault::Corrupt;
use crate::filters::duplicate_device_id::DeviceScope;
use crate::filters::share::{Measure, ShareTally, MAX_SHARES};
use crate::filters::{Count, Seen};
use crate::hll::hash64;
use crate::network::home::SHARED_OBJECTS;
use crate::report::DEVICE_LEDGERS as LEDGERS;
use crate::stored::{share_hashes, RETAIN_HOURS};
use crate::time::{utc_day, HOUR_MS};
use crate::ua::is_link_preview;

/// Which counts a click's deciding rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CountNeeds {
    /// The duplicate-IP window, when the rule has that filter (the widest, if several).
    pub(crate) ip_window_hours: Option<u32>,
    /// The duplicate-device windows by [`DeviceScope`], when the rule has that filter in the
    /// scope (the widest of each).
    pub(crate) device_window_hours: [Option<u32>; 2],
    pub(crate) sub_ids: bool,
    /// The shares it reads, one per measure (the widest window, and counted by clicks if any of
    /// its filters counts them); a rule's share filters past [`MAX_SHARES`] find no tally.
    pub shares: [Option<ShareNeed>; MAX_SHARES],
}

/// A share a rule reads: over which window, and whether each click counts toward it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShareNeed {
    pub(crate) measure: Measure,
    pub window_hours: u32,
    pub clicks: bool,
}

impl CountNeeds {
    pub(crate) fn of(rule: Option<&Rule>) -> CountNeeds {
        let mut needs = CountNeeds::default();
        for f in rule.iter().flat_map(|r| r.filters.iter()) {
            match f.kind.counts() {
                Some(Count::IpClicks { window_hours }) => {
                    needs.ip_window_hours = needs.ip_window_hours.max(Some(window_hours));
                }
                Some(Count::DeviceClicks {
                    window_hours,
                    scope,
                }) => {
                    let had = &mut needs.device_window_hours[scope as usize];
                    *had = (*had).max(Some(window_hours));
                }
                Some(Count::DistinctSubIds) => needs.sub_ids = true,
                Some(Count::Share {
                    measure,
                    window_hours,
                    clicks,
                }) => needs.need_share(ShareNeed {
                    measure,
                    window_hours,
                    clicks,
                }),
                None => {}
            }
        }
        needs
    }

    fn need_share(&mut self, need: ShareNeed) {
        for slot in &mut self.shares {
            match slot {
                Some(had) if had.measure == need.measure => {
                    had.window_hours = had.window_hours.max(need.window_hours);
                    had.clicks |= need.clicks;
                    return;
                }
                Some(_) => {}
                None => {
                    *slot = Some(need);
                    return;
                }
            }
        }
    }

    pub(crate) fn any(&self) -> bool {
        self.ip_window_hours.is_some() || self.devices() || self.sub_ids || self.shares[0].is_some()
    }

    fn devices(&self) -> bool {
        let [across, pair] = self.device_window_hours;
        across.is_some() || pair.is_some()
    }
}

/// What one click adds to its network's counts, and under which keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickKeys {
    pub network: Id,
    pub offer: Id,
    /// The IP's hash, when the rule counts IPs and the click has an IP.
    pub ip: Option<u64>,
    /// The device id's hash, when the rule counts devices and the click carries one.
    pub device: Option<u64>,
    /// The device's ledger, when the rule counts a device across the offer's affiliates.
    pub(crate) ledger: Option<Id>,
    /// The sub ID, when the rule counts sub IDs and the click carries one.
    pub sub_id: Option<String>,
    pub(crate) needs: CountNeeds,
    /// For each share of `needs` that clicks count toward, whether this click is one of its hits;
    /// `None` where it does not count.
    pub(crate) share_hits: [Option<bool>; MAX_SHARES],
    /// Link previews are judged on the counts but not added to them: nobody clicked.
    pub(crate) adds: bool,
    pub hour: u32,
    pub day: u32,
}

impl ClickKeys {
    /// Counts the click toward each share its rule reads (its hit, when it `adds`; a read
    /// otherwise) into `shares`, `count(measure, hit, window_hours)` adding to one share and
    /// answering its tally: the isolate's counts and the object's (what replay runs) run this one
    /// loop over their own histories.
    pub(crate) fn count_shares(
        &self,
        adds: bool,
        shares: &mut [Option<(Measure, ShareTally)>; MAX_SHARES],
        mut count: impl FnMut(Measure, Option<bool>, u32) -> ShareTally,
    ) {
        for ((need, hit), slot) in self.needs.shares.iter().zip(&self.share_hits).zip(shares) {
            let Some(need) = need else { continue };
            let tally = count(need.measure, hit.filter(|_| adds), need.window_hours);
            *slot = Some((need.measure, tally));
        }
    }

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
        let device = click
            .device_id
            .as_deref()
            .filter(|_| needs.devices())
            .map(device_hash);
        let ledger = needs.device_window_hours[DeviceScope::Offer as usize]
            .and(device)
            .map(ledger);
        let sub_id = rule
            .filter(|_| needs.sub_ids)
            .and_then(|r| r.sub_id.value(click))
            .map(str::to_owned);
        let mut share_hits = [None; MAX_SHARES];
        if let (Some(rule), true) = (rule, needs.shares.iter().flatten().any(|n| n.clicks)) {
            // The filters that count clicks toward a share judge the click alone here: the
            // offer's countries are no share's business.
            let seen = Seen {
                click,
                client,
                lists: &config.lists,
                geo: None,
                sub_id: rule.sub_id.value(click),
                counters: None,
            };
            for (need, hit) in needs.shares.iter().zip(&mut share_hits) {
                let Some(need) = need.filter(|n| n.clicks) else {
                    continue;
                };
                *hit = rule
                    .filters
                    .iter()
                    .filter(|f| f.kind.share().is_some_and(|(m, _)| m == need.measure))
                    .find_map(|f| f.kind.share_hit(&seen));
            }
        }
        Some(ClickKeys {
            network: click.aff_id.clone(),
            offer: click.offer_id.clone(),
            ip,
            device,
            ledger,
            sub_id,
            needs,
            share_hits,
            adds: !is_link_preview(client.user_agent.as_ref()),
            hour: (now_ms / HOUR_MS) as u32,
            day: utc_day(now_ms),
        })
    }
}

pub fn ip_hash(ip: &str) -> u64 {
    hash64(ip.as_bytes())
}

/// A device id's hash: counted among the offer's per-IP histories, the hash of its text turned by
/// a constant, so that a device id spelt like an IP (or a share's name) counts apart from it.
pub(crate) fn device_hash(device_id: &str) -> u64 {
    hash64(device_id.as_bytes()) ^ 0x6465_7669_6365_2f00
}

/// The network whose object keeps a device's counts on each offer across the offer's affiliates:
/// one of [`SHARED_OBJECTS`] ledgers, `_devices.{n}` with `n` the device's hash modulo their
/// number, each living like a network the config does not list (see [`super::home`]). Every
/// affiliate's click from the device counts there besides in its own network, under the offer
/// (so a hot offer's devices spread over all the ledgers), and the count is exact once the
/// isolates have flushed, as stale as any other count until then. Its batches carry only device
/// histories: no report rows, clicks toward a flood or kept decisions. (An `aff_id` of that form
/// would share the ledger's keys; its own IP histories and a ledger's device histories never
/// share a key.)
pub(crate) fn ledger(device: u64) -> Id {
    Id::known(LEDGERS[(device % SHARED_OBJECTS) as usize])
}

// One ledger per shared object: their names are the report's, which leaves them out.
const _: () = assert!(LEDGERS.len() == SHARED_OBJECTS as usize);

/// Where a share is counted: among the offer's per-IP histories, as two of them, its events and
/// its hits, each under a hash of the measure's name in place of an IP's (an IP's hash is of its
/// text, which is never a share's name). So a share is added, sent, applied exactly once, pruned
/// and expired as a duplicate-IP count is, with no code of its own in the isolate, the wire or
/// the object.
pub(crate) fn share_keys(measure: Measure) -> (u64, u64) {
    share_hashes(&measure.tag())
}

/// A share's tally from its two histories ([`share_keys`]), `count(key, add)` adding `add` under
/// `key`, if any, and answering its clicks over the window: an event adds 1 to the events, and 1
/// or 0 to the hits (both keys go out with every event, so an answer, the totals of a batch's
/// keys, tells an isolate of the others' hits too).
pub(crate) fn share_tally(
    measure: Measure,
    hit: Option<bool>,
    mut count: impl FnMut(u64, Option<u32>) -> u32,
) -> ShareTally {
    let (events, hits) = share_keys(measure);
    ShareTally {
        total: count(events, hit.map(|_| 1)),
        hits: count(hits, hit.map(u32::from)),
    }
}

// ---------------------------------------------------------------------------------------------
// Clicks per hour for one IP on one offer.

/// (UTC hour since the epoch, clicks), oldest first, one entry per hour that had clicks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History(pub(super) Vec<(u32, u32)>);

impl History {
    pub fn add(&mut self, hour: u32, clicks: u32) {
        match self.0.binary_search_by_key(&hour, |(h, _)| *h) {
            Ok(i) => self.0[i].1 = self.0[i].1.saturating_add(clicks),
            Err(i) => self.0.insert(i, (hour, clicks)),
        }
    }

    /// Clicks in the `window` hours ending with `hour` (that hour included).
    pub(crate) fn in_window(&self, hour: u32, window: u32) -> u32 {
        let from = hour.saturating_sub(window.saturating_sub(1));
        self.0
            .iter()
            .rev()
            .take_while(|(h, _)| *h >= from)
            .filter(|(h, _)| *h <= hour)
            .fold(0u32, |sum, (_, c)| sum.saturating_add(*c))
    }

    /// Drops the hours no window can reach any more.
    pub(crate) fn prune(&mut self, hour: u32) {
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

    /// A history as the object stored it; text that does not read back is a runtime fault.
    pub fn decode(text: &str) -> Result<History, Corrupt> {
        History::read(text).map_err(|e| Corrupt::new("ip history", e))
    }

    fn read(text: &str) -> Result<History, String> {
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

    pub(super) fn to_json(&self) -> Value {
        Value::Array(self.0.iter().map(|(h, c)| json!([h, c])).collect())
    }

    pub(super) fn from_json(v: &Value) -> Result<History, String> {
        let mut history = History::default();
        for pair in v.as_array().ok_or("history is not a list")? {
            let (h, c) = (u32_at(pair, 0)?, u32_at(pair, 1)?);
            history.add(h, c);
        }
        Ok(history)
    }
}

pub(super) fn clamp_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Item `i` of a JSON array as a `u32`.
pub(super) fn u32_at(v: &Value, i: usize) -> Result<u32, String> {
    v.get(i)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("item {i} must be a whole number below 2^32"))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn every_ledger_is_named_as_an_id_reads_and_devices_spread_over_them() {
        for name in LEDGERS {
            assert_eq!(Id::parse(name), Ok(Id::known(name)));
            assert!(crate::report::is_ledger(name));
        }
        assert!(!crate::report::is_ledger("_devices.16") && !crate::report::is_ledger("net-7"));
        let used: std::collections::BTreeSet<_> = (0..200)
            .map(|i| ledger(device_hash(&format!("gaid-{i}"))))
            .collect();
        assert_eq!(used.len(), LEDGERS.len());
    }

    #[test]
    fn a_device_id_never_counts_as_the_ip_or_share_spelt_the_same() {
        assert_ne!(device_hash("192.0.2.1"), ip_hash("192.0.2.1"));
        assert_ne!(device_hash("D"), device_hash("E"));
    }
}
