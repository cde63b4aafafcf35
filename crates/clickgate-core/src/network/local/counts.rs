//! What a click or a conversion adds to its network's counts in this isolate, and what its
//! filters read back: the object's last totals plus this isolate's own since.

use std::collections::{BTreeMap, HashMap};

use crate::click::Id;
use crate::decide::ClickOutcome;
use crate::filters::share::{Measure, ShareTally};
use crate::flood::{FloodView, Thresholds};
use crate::hll::HyperLogLog;
use crate::report::{self, ConversionRow, RowKey, Tally};
use crate::rules::Counters;
use crate::time::{HOUR_MS, MINUTE_MS};
use crate::token::NONCE_LEN;

use super::super::keys::{clamp_u32, ClickKeys};
use super::networks::LocalCounts;

impl LocalCounts {
    /// Counts a click and returns what its filters read: the object's last totals plus this
    /// isolate's clicks since. `None` when the object has not answered for `stale_ms`.
    pub fn record(&mut self, keys: &ClickKeys, now_ms: u64) -> Option<Counters> {
        let policy = self.policy;
        let adds = keys.adds && self.has_room(&keys.network);
        let net = self.touch(&keys.network, now_ms);
        let mut counters = Counters::default();
        let one = adds.then_some(1);
        if let (Some(window), Some(ip)) = (keys.needs.ip_window_hours, keys.ip) {
            counters.ip_clicks = net.clicks(&keys.offer, ip, keys.hour, one, window);
        }
        let [across, pair] = keys.needs.device_window_hours;
        if let (Some(window), Some(device)) = (pair, keys.device) {
            counters.device_clicks[1] =
                Some(net.clicks(&keys.offer, device, keys.hour, one, window));
        }
        if keys.needs.sub_ids {
            let key = (keys.offer.clone(), keys.day);
            let view = net
                .view_subs
                .entry(key.clone())
                .or_insert_with(|| (HyperLogLog::default(), 0));
            if let (Some(sub), true) = (&keys.sub_id, adds) {
                net.pending_subs.entry(key).or_default().insert(sub);
                if view.0.insert(sub) {
                    view.1 = clamp_u32(view.0.estimate());
                }
            }
            counters.distinct_sub_ids = view.1;
        }
        keys.count_shares(adds, &mut counters.shares, |measure, hit, window| {
            net.share(&keys.offer, measure, keys.hour, hit, window)
        });
        if adds && net.pending_since_ms.is_none() {
            net.pending_since_ms = Some(now_ms);
        }
        let read = !net.silent(&policy, now_ms) && !net.forgotten;
        if let (Some(window), Some(device), Some(ledger)) = (across, keys.device, &keys.ledger) {
            counters.device_clicks[0] = self.ledger_clicks(keys, ledger, device, window, now_ms);
        }
        read.then_some(counters)
    }

    /// Counts a click's device in its ledger (see [`keys::ledger`](crate::network::keys::ledger)), a network
    /// of its own here: its clicks are unsent units like any network's, under the same caps.
    /// `None` when the ledger's object has not answered for `stale_ms` or was forgotten.
    fn ledger_clicks(
        &mut self,
        keys: &ClickKeys,
        ledger: &Id,
        device: u64,
        window: u32,
        now_ms: u64,
    ) -> Option<u32> {
        let policy = self.policy;
        // As `admit` counts a unit, with one look-up of the ledger.
        let adds = keys.adds && self.has_room(ledger);
        self.unsent += u64::from(adds);
        self.dropped.full += u64::from(keys.adds && !adds);
        let led = self.touch(ledger, now_ms);
        let n = led.clicks(&keys.offer, device, keys.hour, adds.then_some(1), window);
        if adds {
            led.pending_units += 1;
            led.pending_since_ms.get_or_insert(now_ms);
        }
        (!led.silent(&policy, now_ms) && !led.forgotten).then_some(n)
    }

    /// Counts a conversion toward one share of its click's network and offer (`hit`: whether it
    /// is one of the share's hits; `None`: it only reads, as a duplicate does), and answers the
    /// share over `window_hours`, this conversion included. `None` when the object has not
    /// answered for `stale_ms`, or the network was forgotten and has not heard from it since.
    /// The conversion itself is counted as unsent by [`LocalCounts::record_conversion`].
    pub(crate) fn record_share(
        &mut self,
        network: &Id,
        offer: &Id,
        measure: Measure,
        hit: Option<bool>,
        window_hours: u32,
        now_ms: u64,
    ) -> Option<ShareTally> {
        let policy = self.policy;
        let hit = hit.filter(|_| self.has_room(network));
        let net = self.touch(network, now_ms);
        let hour = (now_ms / HOUR_MS) as u32;
        let tally = net.share(offer, measure, hour, hit, window_hours);
        if hit.is_some() {
            net.pending_since_ms.get_or_insert(now_ms);
        }
        (!net.silent(&policy, now_ms) && !net.forgotten).then_some(tally)
    }

    /// Counts a decided click for its network: toward the flood threshold, in the report, and its
    /// decision (`log_line`, as logged, its IP hashed) kept for `explain` when a filter fired on
    /// it. A link preview is nobody's click, but its User-Agent is only a claim any click farm can
    /// make: it counts toward the flood threshold like any click, and in the report as a preview.
    pub fn record_outcome(
        &mut self,
        outcome: &ClickOutcome,
        log_line: &str,
        thresholds: Thresholds,
        nonce: &[u8; NONCE_LEN],
    ) {
        let now_ms = outcome.at_ms;
        let Some(net) = self.admit(&outcome.click.aff_id, now_ms) else {
            return;
        };
        net.count_flood(thresholds, outcome.flagged(), now_ms);
        net.config = u64::from_str_radix(&outcome.config_digest, 16).unwrap_or(0);
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
        let sub_id = outcome.sub_id_param.value(&outcome.click);
        let country = outcome.client.country.as_deref();
        for (tag, value) in [(report::SUB_ID, sub_id), (report::COUNTRY, country)] {
            let value = value.unwrap_or_default();
            let dims = &mut net.pending_dims;
            let at = dims
                .iter()
                .position(|(k, _)| k.hour == hour && k.advertiser == tag && k.offer == value);
            let at = at.unwrap_or_else(|| {
                let key = RowKey {
                    hour,
                    advertiser: tag.to_owned(),
                    offer: value.to_owned(),
                };
                dims.push((key, Tally::default()));
                dims.len() - 1
            });
            dims[at].1.count_click(outcome);
        }
        if report::worth_explaining(outcome) && net.explain_budget.take(now_ms / MINUTE_MS) {
            let key = crate::stored::explain_key(hour, nonce);
            net.pending_explain
                .push((key, report::kept_decision(outcome, log_line)));
        }
    }

    /// Counts a postback in its click's network's report.
    pub(crate) fn record_conversion(&mut self, row: &ConversionRow, now_ms: u64) {
        let Some(net) = self.admit(&row.network, now_ms) else {
            return;
        };
        pending_row(&mut net.pending_report, &row.offer, row.hour, || {
            row.advertiser.clone()
        })
        .add(&row.tally);
        net.pending_since_ms.get_or_insert(now_ms);
    }

    /// Counts one click toward its network's flood threshold (`flagged`: the filters declined
    /// it). A decided click is counted by [`LocalCounts::record_outcome`], which does this and
    /// more; this alone serves the isolate's warm-up and the tests.
    pub(crate) fn record_flood(
        &mut self,
        network: &Id,
        thresholds: Thresholds,
        flagged: bool,
        now_ms: u64,
    ) {
        if let Some(net) = self.admit(network, now_ms) {
            net.count_flood(thresholds, flagged, now_ms);
        }
    }

    /// What this isolate knows of the network's flood state: the block in force as the object last
    /// answered (it ends by itself at its `until`, 00:00 UTC, even if no answer comes), and whether
    /// the object has stopped answering.
    pub(crate) fn flood_view(
        &self,
        network: &Id,
        thresholds: &Thresholds,
        now_ms: u64,
    ) -> FloodView {
        let net = self.networks.get(network);
        FloodView {
            block: net
                .and_then(|n| n.block.clone())
                .filter(|b| now_ms < b.until_ms),
            unreachable: net.is_some_and(|n| n.silent(&self.policy, now_ms)),
            on_fault: thresholds.on_fault,
            report_only: thresholds.mode == crate::flood::FloodMode::ReportOnly,
        }
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

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::super::Flush;
    use super::*;
    use crate::flood::Event;
    use crate::network::keys::{device_hash, share_keys};
    use crate::network::store::NetworkCounts;
    use crate::network::wire::tests::id;
    use crate::time::DAY_MS;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

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
    fn previews_read_the_counts_without_adding_to_them() {
        let mut local = LocalCounts::new(1, policy());
        let mut preview = keys("192.0.2.1", Some("a"), T0);
        preview.adds = false;
        let c = local.record(&preview, T0).unwrap();
        assert_eq!((c.ip_clicks, c.distinct_sub_ids), (0, 0));
        assert_eq!(local.flush(&id("net"), T0 + 5_000), Flush::Nothing);
    }

    #[test]
    fn share_counts_are_applied_exactly_once_and_kept_under_their_own_key() {
        let (net, offer) = (id("net"), id("1"));
        let over = Measure::CtitOver(3600);
        let mut objects = Objects::default();
        let mut local = LocalCounts::new(7, policy());
        for hit in [true, true, false] {
            local.record_share(&net, &offer, over, Some(hit), 24, T0);
        }
        let t = local.record_share(&net, &offer, over, None, 24, T0);
        assert_eq!(
            t,
            Some(ShareTally { total: 3, hits: 2 }),
            "a read adds nothing"
        );
        let Flush::Send(b) = local.wake(&net, T0 + 1_000) else {
            panic!("due")
        };
        assert_eq!(
            b.ips.len(),
            2,
            "the share's events and its hits, one hour each"
        );
        let reply = objects.apply(&b, T0 + 1_000);
        // The answer lost, the batch sent again: the object counts it once.
        let again = objects.apply(&b, T0 + 2_000);
        assert!(again.duplicate);
        assert_eq!(again.ips, reply.ips);
        let (events, hits) = share_keys(over);
        let stored = |key: u64| objects.0[&net][&format!("ip/1/{key:016x}")].clone();
        let hour = T0 / HOUR_MS;
        assert_eq!(
            (stored(events), stored(hits)),
            (format!("{hour}:3"), format!("{hour}:2"))
        );
        local.acked(&net, b.seq, reply, T0 + 2_000);
        // What the isolate knows now is the object's total, not the batch out added twice.
        let t = local.record_share(&net, &offer, over, Some(true), 24, T0 + 3_000);
        assert_eq!(t, Some(ShareTally { total: 4, hits: 3 }));
        // Another isolate hears of them with its first answer.
        let mut other = LocalCounts::new(8, policy());
        other.record_share(&net, &offer, over, Some(false), 24, T0 + 3_000);
        let Flush::Send(b) = other.wake(&net, T0 + 4_000) else {
            panic!("due")
        };
        let reply = objects.apply(&b, T0 + 4_000);
        other.acked(&net, b.seq, reply, T0 + 4_000);
        let t = other.record_share(&net, &offer, over, None, 24, T0 + 4_000);
        assert_eq!(
            t,
            Some(ShareTally { total: 4, hits: 2 }),
            "the first isolate's fourth is unsent"
        );
    }

    #[test]
    fn a_share_outside_its_window_is_not_counted() {
        let (net, offer) = (id("net"), id("1"));
        let under = Measure::CtitUnder(60);
        let mut local = LocalCounts::new(7, policy());
        local.record_share(&net, &offer, under, Some(true), 2, T0);
        let one_hour = T0 + HOUR_MS;
        let two_hours = T0 + 2 * HOUR_MS;
        let read =
            |local: &mut LocalCounts, at| local.record_share(&net, &offer, under, None, 2, at);
        assert_eq!(
            read(&mut local, one_hour),
            Some(ShareTally { total: 1, hits: 1 }),
            "the hour before"
        );
        assert_eq!(
            read(&mut local, two_hours),
            Some(ShareTally::default()),
            "two hours before"
        );
    }

    #[test]
    fn a_share_goes_unavailable_while_its_object_is_silent() {
        let (net, offer) = (id("net"), id("1"));
        let mut local = LocalCounts::new(7, policy());
        local.record_share(&net, &offer, Measure::OldDevices, Some(true), 24, T0);
        let Flush::Send(_) = local.wake(&net, T0 + 1_000) else {
            panic!("due")
        };
        let silent = T0 + 1_000 + policy().stale_ms;
        let t = local.record_share(&net, &offer, Measure::OldDevices, Some(true), 24, silent);
        assert_eq!(t, None);
    }

    /// Offers 1 and 2, one rule counting a device across each offer's affiliates (once a day)
    /// and on the offer and affiliate (twice).
    fn device_config() -> crate::config::Config {
        crate::config::Config::compile(
            r#"{"version": 1,
                "offers": [{"id": "1", "landing_url": "https://x.example/"},
                           {"id": "2", "landing_url": "https://y.example/"}],
                "rules": [{"id": "r", "created_at": "2026-11-01", "scope": {"offers": ["1", "2"]},
                           "strategy": {"filters": [
                             {"type": "duplicate_device_id"},
                             {"type": "duplicate_device_id", "scope": "offer_affiliate", "max": 2}]}}]}"#,
        )
        .unwrap()
    }

    /// The keys of a click on `offer` through `network` from device `device`.
    fn device_keys(offer: &str, network: &str, device: &str, now_ms: u64) -> ClickKeys {
        let query = format!("offer_id={offer}&aff_id={network}&device_id={device}");
        let Ok(crate::click::Route::Click(click)) = crate::click::route("GET", "/c", &query) else {
            panic!("{query}")
        };
        let client = crate::click::ClientInfo::default();
        ClickKeys::of(&device_config(), &click, &client, now_ms).unwrap()
    }

    /// Flushes `network` of `local` to its object and takes the answer.
    fn flush_to(local: &mut LocalCounts, objects: &mut Objects, network: &Id, now: u64) {
        let Flush::Send(b) = local.wake(network, now) else {
            panic!("{network}: nothing due")
        };
        let reply = objects.apply(&b, now);
        assert_eq!(local.acked(network, b.seq, reply, now), Flush::Nothing);
    }

    #[test]
    fn a_device_is_counted_across_the_offers_affiliates_in_its_ledger_and_per_affiliate_at_home() {
        let mut objects = Objects(HashMap::new());
        let (mut a, mut b) = (LocalCounts::new(1, policy()), LocalCounts::new(2, policy()));
        let at_a = device_keys("1", "net-a", "D", T0);
        let ledger = at_a.ledger.clone().expect("the device's ledger");
        assert_eq!(ledger, crate::network::keys::ledger(device_hash("D")));
        assert_eq!(at_a.device, Some(device_hash("D")));
        // A's click and B's, each on its own affiliate, before either isolate flushed.
        let seen = a.record(&at_a, T0).unwrap();
        assert_eq!(seen.device_clicks, [Some(1), Some(1)]);
        let seen = b.record(&device_keys("1", "net-b", "D", T0), T0).unwrap();
        assert_eq!(
            seen.device_clicks,
            [Some(1), Some(1)],
            "B has not heard of A's"
        );
        let seen = a.record(&device_keys("1", "net-c", "D", T0), T0).unwrap();
        assert_eq!(seen.device_clicks, [Some(2), Some(1)], "A knows its own");
        // Through the ledger's object each learns the other's.
        let later = T0 + 1_000;
        flush_to(&mut a, &mut objects, &ledger, later);
        flush_to(&mut b, &mut objects, &ledger, later);
        let seen = b
            .record(&device_keys("1", "net-b", "D", later), later)
            .unwrap();
        assert_eq!(seen.device_clicks, [Some(4), Some(2)]);
        // Another offer, or another device, starts from one.
        let seen = b
            .record(&device_keys("2", "net-b", "D", later), later)
            .unwrap();
        assert_eq!(seen.device_clicks, [Some(1), Some(1)]);
        let seen = b
            .record(&device_keys("1", "net-b", "E", later), later)
            .unwrap();
        assert_eq!(seen.device_clicks, [Some(1), Some(1)]);
        // The ledger's batch holds device histories only, as hashes: no report row, click
        // toward a flood or decision, and no device id as text.
        let stored = &objects.0[&ledger];
        let known = |k: &String| ["seen", "flood"].contains(&k.as_str()) || k.starts_with("ip/1/");
        assert!(stored.keys().all(known), "{stored:?}");
        assert_eq!(objects.day_clicks(&ledger), 0);
        assert!(!stored.values().any(|v| v.contains('D')), "{stored:?}");
    }

    #[test]
    fn a_device_window_takes_its_last_hours_and_no_earlier_one() {
        let mut local = LocalCounts::new(1, policy());
        local.record(&device_keys("1", "net-a", "D", T0), T0);
        // 24 hours: the current hour and the 23 before it.
        let edge = T0 + 23 * HOUR_MS;
        let seen = local
            .record(&device_keys("1", "net-b", "D", edge), edge)
            .unwrap();
        assert_eq!(seen.device_clicks[0], Some(2));
        let past = T0 + 24 * HOUR_MS;
        let seen = local
            .record(&device_keys("1", "net-b", "D", past), past)
            .unwrap();
        assert_eq!(
            seen.device_clicks[0],
            Some(2),
            "the first click is out, the second in"
        );
    }

    #[test]
    fn a_silent_ledger_leaves_only_the_offer_wide_count_unread() {
        let mut objects = Objects(HashMap::new());
        let mut local = LocalCounts::new(1, policy());
        let keys = device_keys("1", "net-a", "D", T0);
        let ledger = keys.ledger.clone().unwrap();
        local.record(&keys, T0);
        flush_to(&mut local, &mut objects, &id("net-a"), T0 + 1_000);
        // The ledger's batch goes out and is never answered.
        assert!(matches!(local.wake(&ledger, T0 + 1_000), Flush::Send(_)));
        let late = T0 + 1_000 + policy().stale_ms;
        let seen = local
            .record(&device_keys("1", "net-a", "D", late), late)
            .unwrap();
        assert_eq!(seen.device_clicks, [None, Some(2)]);
    }

    #[test]
    fn previews_read_a_device_count_without_adding_to_it() {
        let mut local = LocalCounts::new(1, policy());
        local.record(&device_keys("1", "net-a", "D", T0), T0);
        let preview = ClickKeys {
            adds: false,
            ..device_keys("1", "net-b", "D", T0)
        };
        assert_eq!(
            local.record(&preview, T0).unwrap().device_clicks,
            [Some(1), Some(0)]
        );
        assert_eq!(
            local.record(&preview, T0).unwrap().device_clicks,
            [Some(1), Some(0)]
        );
    }
}
