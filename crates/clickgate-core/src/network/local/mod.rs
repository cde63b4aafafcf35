//! The counts behind the duplicate-IP and sub-ID filters, shared by every isolate of a network.
//!
//! Each network (affiliate) has one Durable Object that holds its counts; the object is the only
//! place all isolates' clicks meet. A click never waits for it: the isolate counts locally, judges
//! the click on what it knows (the object's last answer plus its own clicks since), and sends what
//! it counted in a batch after the response. The object adds the batch and answers with the
//! totals for the keys in it, which refreshes what the isolate knows.
//!
//! Both halves are pure state machines: [`LocalCounts`] is the isolate's side (record a
//! click, say when to flush, take the answer); [`super::store`] holds the object's (apply a batch
//! exactly once, answer), and [`super::wire`] the batch and the answer between them. The Worker
//! moves the bytes and reads the clock; replay runs the object's counts directly, which is what
//! the edge converges to.
//!
//! What is counted:
//! - clicks per IP on an offer of the network, in whole UTC hours: a window of `W` hours is the
//!   current hour and the `W - 1` before it; hours older than
//!   [`RETAIN_HOURS`](crate::stored::RETAIN_HOURS) are dropped;
//! - distinct sub IDs per offer of the network in the current UTC day, as a [`HyperLogLog`](crate::hll::HyperLogLog).
//!
//! IPs are kept as 64-bit hashes, never as text: the object needs to tell them apart, not read them.
//!
//! Its files: `networks.rs`, the networks an isolate holds counts for (each one's state, the caps
//! on what is unsent, and which are forgotten when there are too many); `counts.rs`, what a click
//! or a conversion adds to them and reads back; and `schedule.rs`, when they are sent, resent and
//! answered. The last two each build on the first.

mod counts;
mod networks;
mod schedule;

pub use networks::{
    Dropped, FlushPolicy, LocalCounts, EVICT_TO, MAX_NETWORKS, MAX_SENDS, MAX_UNSENT,
    MAX_UNSENT_PER_NETWORK,
};
pub use schedule::Flush;

/// What the tests of every file here share, and the tests of many isolates and their object
/// together.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::click::Id;
    use crate::filters::share::Measure;
    use crate::flood::FloodState;
    use crate::network::keys::{ip_hash, ClickKeys, CountNeeds};
    use crate::network::store::NetworkCounts;
    use crate::network::wire::tests::id;
    use crate::network::wire::{Batch, Reply};
    use crate::time::{DAY_MS, HOUR_MS};
    use std::collections::HashMap;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    pub(super) const T0: u64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

    pub(super) fn keys(ip: &str, sub: Option<&str>, now_ms: u64) -> ClickKeys {
        ClickKeys {
            network: id("net"),
            offer: id("1"),
            ip: Some(ip_hash(ip)),
            device: None,
            ledger: None,
            sub_id: sub.map(str::to_owned),
            needs: CountNeeds {
                ip_window_hours: Some(24),
                sub_ids: true,
                ..CountNeeds::default()
            },
            share_hits: Default::default(),
            adds: true,
            hour: (now_ms / HOUR_MS) as u32,
            day: (now_ms / DAY_MS) as u32,
        }
    }

    pub(super) fn policy() -> FlushPolicy {
        FlushPolicy {
            interval_ms: 1_000,
            max_keys: 100,
            max_clicks: 1_000,
            stale_ms: 30_000,
            max_backoff_ms: 8_000,
        }
    }

    /// Every network's object as storage only, the way the Worker runs them: each batch loads the
    /// keys, applies, and stores what changed.
    #[derive(Default)]
    pub(super) struct Objects(pub(super) HashMap<Id, HashMap<String, String>>);

    impl Objects {
        pub(super) fn apply(&mut self, b: &Batch, now: u64) -> Reply {
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

        pub(super) fn day_clicks(&self, network: &Id) -> u64 {
            FloodState::decode(&self.0[network]["flood"])
                .unwrap()
                .day_clicks
        }
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

    /// One moment of many isolates sharing one network's object, as the runtime would run them:
    /// an isolate whose retry is due wakes, the one that just counted (`counted`) flushes, and
    /// each batch sent is applied by the object at once and answered. Returns the isolates the
    /// object answered.
    fn drive(
        isolates: &mut [LocalCounts],
        due: &mut [Option<u64>],
        object: &mut NetworkCounts,
        net: &Id,
        counted: usize,
        now: u64,
    ) -> Vec<usize> {
        let mut answered = Vec::new();
        for (j, local) in isolates.iter_mut().enumerate() {
            let step = if due[j].is_some_and(|t| t <= now) {
                due[j] = None;
                local.wake(net, now)
            } else if j == counted {
                local.flush(net, now)
            } else {
                Flush::Nothing
            };
            match step {
                Flush::WakeIn(ms) => due[j] = Some(now + ms),
                Flush::Send(b) => {
                    let reply = object.apply(&b, now);
                    answered.push(j);
                    if let Flush::WakeIn(ms) = local.acked(net, b.seq, reply, now) {
                        due[j] = Some(now + ms);
                    }
                }
                Flush::Nothing => {}
            }
        }
        answered
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
            drive(&mut isolates, &mut due, &mut object, &net, i, now);
        }
        let past_limit = passed - limit;
        // Each isolate sees one click per second here: at most `limit` before it hears back. The
        // simulation is deterministic: the README quotes its figure, checked here word for word.
        let bound = 10 * limit;
        assert_eq!(past_limit, 18, "clicks passed past the limit");
        let readme = include_str!("../../../../../docs/config.md");
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

    #[test]
    fn a_share_lags_the_object_by_what_other_isolates_counted_since_the_last_answer() {
        // Ten isolates, one affiliate's conversions round-robin across them every 100 ms for a
        // minute. Each judges on the object's totals as of its last answer plus its own
        // conversions since: what it lacks is the others' conversions after that answer.
        let (net, offer) = (id("net"), id("1"));
        let over = Measure::CtitOver(3600);
        let mut object = NetworkCounts::default();
        let mut isolates: Vec<LocalCounts> =
            (0..10).map(|i| LocalCounts::new(i, policy())).collect();
        let mut answered = [T0; 10];
        let mut due: Vec<Option<u64>> = vec![None; 10];
        let (mut most_missing, mut oldest_view) = (0, 0);
        for n in 0..600u64 {
            let now = T0 + n * 100;
            let i = (n % 10) as usize;
            let seen = isolates[i]
                .record_share(&net, &offer, over, Some(n % 2 == 0), 24, now)
                .unwrap();
            let exact = n as u32 + 1;
            if n >= 10 {
                most_missing = most_missing.max(exact - seen.total);
                oldest_view = oldest_view.max(now - answered[i]);
            }
            for j in drive(&mut isolates, &mut due, &mut object, &net, i, now) {
                answered[j] = now;
            }
        }
        // Deterministic: docs/config.md quotes both figures, checked here word for word.
        assert_eq!((most_missing, oldest_view), (27, 2_000));
        let doc = include_str!("../../../../../docs/config.md");
        let flat = doc.split_whitespace().collect::<Vec<_>>().join(" ");
        let sentence = format!(
            "simulation of 10 isolates taking one affiliate's conversions in turn every 100 ms, \
             the share an isolate judged on lacked at most {most_missing} of them, and the \
             object's answer it stood on was at most {oldest_view} ms old."
        );
        assert!(flat.contains(&sentence), "docs/config.md lacks: {sentence}");
        // And the object counted every conversion exactly once.
        let counted = object.count_share(&offer, over, (T0 / HOUR_MS) as u32, None, 24);
        assert!(
            600 - counted.total <= 10,
            "{} not yet flushed",
            600 - counted.total
        );
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use crate::network::keys::History;
        use crate::network::wire::tests::batch;
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
