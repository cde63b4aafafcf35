//! When an isolate's counts go to their network's object: a batch sent after an interval or once
//! full, one at a time, resent as it was until it is answered or has had its sends, and the
//! answer taken back.

use std::collections::BTreeMap;

use crate::alerts::Raised;
use crate::click::Id;
use crate::hll::HyperLogLog;
use crate::report::RowKey;
use crate::time::utc_day;

use super::super::keys::clamp_u32;
use super::super::wire::{Batch, IpDelta, Reply, SubDelta};
use super::networks::{batch_name, InFlight, LocalCounts, MAX_SENDS};

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
/// Alerts from the objects' answers kept until the isolate's next request takes them.
const MAX_ALERTS_KEPT: usize = 16;

/// An isolate-wide look ([`LocalCounts::stranded`]) starts at most this many networks' steps: the
/// rest are looked at by the next.
const MAX_STRANDED_STEPS: usize = 16;

impl LocalCounts {
    /// Every network's due step, not only the clicked one's: a network that went quiet after its
    /// batch failed is resent by any other click (or the isolate's timer). Looks at most once per
    /// flush interval, and starts at most a few networks' steps per look.
    pub(crate) fn stranded(&mut self, now_ms: u64) -> Vec<(Id, Flush)> {
        if now_ms < self.next_look_ms {
            return Vec::new();
        }
        self.next_look_ms = now_ms + self.policy.interval_ms;
        let waiting: Vec<Id> = self
            .networks
            .iter()
            .filter(|(_, n)| !n.idle())
            .map(|(id, _)| id.clone())
            .collect();
        waiting
            .into_iter()
            .filter_map(|id| {
                let step = self.flush(&id, now_ms);
                (step != Flush::Nothing).then_some((id, step))
            })
            .take(MAX_STRANDED_STEPS)
            .collect()
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
            + net.pending_dims.len()
            + net.pending_explain.len();
        let clicks: u32 = net.pending_flood.values().map(|(c, _)| c).sum();
        let due = since + policy.interval_ms;
        if keys < policy.max_keys && clicks < policy.max_clicks && now_ms < due {
            return arm(&mut net.timer_due_ms, now_ms, due - now_ms);
        }
        net.in_flight_ips = std::mem::take(&mut net.pending_ips);
        let mut batch = Batch {
            isolate: net.name,
            seq: 0,
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
            config: net.config,
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
        batch.report.append(&mut net.pending_dims);
        net.pending_since_ms = None;
        let units = std::mem::take(&mut net.pending_units);
        if batch.is_empty() {
            self.unsent = self.unsent.saturating_sub(u64::from(units));
            return Flush::Nothing;
        }
        // Numbered only when sent: the object counts an isolate's batches as done up to the first
        // number it has not seen, so a number never sent would keep every later one on its list.
        net.next_seq += 1;
        batch.seq = net.next_seq;
        net.in_flight = Some((
            batch.clone(),
            InFlight {
                first_sent_ms: now_ms,
                last_sent_ms: now_ms,
                retry_at_ms: None,
                failures: 0,
                units,
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
        let units = match &net.in_flight {
            Some((b, f)) if b.seq == seq => f.units,
            _ => return Flush::Nothing,
        };
        self.unsent = self.unsent.saturating_sub(u64::from(units));
        net.in_flight = None;
        net.in_flight_ips.clear();
        net.forgotten = false;
        net.block = reply.block.clone();
        // At most a trip and a lift per answer; kept bounded all the same.
        let room = MAX_ALERTS_KEPT.saturating_sub(self.alerts.len());
        for (kind, detail) in reply.alerts.into_iter().take(room) {
            self.alerts
                .push(Raised::network(kind, network.as_str(), detail));
        }
        if net.known_ips.len() + reply.ips.len() > MAX_KNOWN_KEYS {
            net.known_ips.clear();
        }
        for (offer, ip, history) in reply.ips {
            net.known_ips.insert((offer, ip), history);
        }
        let today = utc_day(now_ms);
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

    /// Sending batch `seq` failed (or its answer was unreadable): it is resent as it is, later,
    /// or dropped after [`MAX_SENDS`] sends (its clicks logged as lost), the pending clicks then
    /// going out under a new name.
    pub fn failed(&mut self, network: &Id, seq: u64, now_ms: u64) -> Flush {
        let policy = self.policy;
        let fresh = batch_name(self.isolate, self.evictions + 1);
        let Some(net) = self.networks.get_mut(network) else {
            return Flush::Nothing;
        };
        match &mut net.in_flight {
            Some((batch, state)) if batch.seq == seq && state.failures + 1 >= MAX_SENDS => {
                let units = state.units;
                net.in_flight = None;
                net.in_flight_ips.clear();
                net.name = fresh;
                net.next_seq = 0;
                self.evictions += 1;
                self.unsent = self.unsent.saturating_sub(u64::from(units));
                self.dropped.unanswered += u64::from(units);
                self.flush(network, now_ms)
            }
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

    /// A batch that a drive took to send but did not, its time being up: due again at once, for
    /// the isolate-wide look ([`LocalCounts::stranded`]), and not counted as a failed send. Taken
    /// and left unsent, it would pass for a send under way until `stale_ms` had gone by.
    pub fn put_back(&mut self, network: &Id, seq: u64, now_ms: u64) {
        if let Some(net) = self.networks.get_mut(network) {
            match &mut net.in_flight {
                Some((batch, state)) if batch.seq == seq => state.retry_at_ms = Some(now_ms),
                _ => {}
            }
        }
    }
}

/// How late a timer may be before it counts as lost. A grace past the time it was due, not an
/// object call's deadline as [`click_ids::LOST_AFTER_MS`](crate::network::click_ids::LOST_AFTER_MS) is: no click waits on this timer,
/// so it need not follow that deadline when it changes.
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
    use super::super::tests::*;
    use super::*;
    use crate::flood::{Event, FloodState, Thresholds};
    use crate::network::local::FlushPolicy;
    use crate::network::store::NetworkCounts;
    use crate::network::wire::tests::id;
    use crate::time::DAY_MS;
    use std::collections::HashMap;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_flush_with_nothing_to_send_uses_no_batch_number() {
        // A click the rule counts that brings nothing to count (no IP, no sub ID) still starts
        // the interval; the flush after it has nothing to send. The next batch must still be 1:
        // the object marks an isolate's batches done up to the first number it has not seen.
        let net = id("net");
        let mut local = LocalCounts::new(7, policy());
        let mut empty = keys("192.0.2.1", None, T0);
        empty.ip = None;
        local.record(&empty, T0);
        assert_eq!(local.flush(&net, T0 + 1_000), Flush::Nothing);
        local.record(&keys("192.0.2.1", None, T0 + 2_000), T0 + 2_000);
        let Flush::Send(b) = local.flush(&net, T0 + 3_000) else {
            panic!("due")
        };
        assert_eq!(b.seq, 1);
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
    fn a_trip_is_alerted_in_the_answer_to_the_batch_that_tripped_it_and_no_other() {
        use crate::alerts::{Kind, Raised};
        let net = id("net");
        let t = Thresholds {
            per_minute: Some(5),
            ..Thresholds::default()
        };
        let mut object = NetworkCounts::default();
        let mut local = LocalCounts::new(1, policy());
        let send = |local: &mut LocalCounts, object: &mut NetworkCounts, clicks, at| {
            for i in 0..clicks {
                local.record_flood(&net, t, false, at + i);
            }
            let Flush::Send(b) = local.wake(&net, at + 1_000) else {
                panic!("due")
            };
            let reply = object.apply(&b, at + 1_000);
            let again = object.apply(&b, at + 1_500);
            assert!(again.alerts.is_empty(), "a retried batch alerts nothing");
            local.acked(&net, b.seq, reply, at + 1_000);
            local.take_alerts()
        };
        assert!(send(&mut local, &mut object, 3, T0).is_empty());
        assert_eq!(
            send(&mut local, &mut object, 3, T0 + 2_000),
            [Raised::network(
                Kind::FloodTripped,
                "net",
                "per_minute: 6 clicks, ceiling 5"
            )]
        );
        // Clicks under the block trip nothing more.
        assert!(send(&mut local, &mut object, 10, T0 + 4_000).is_empty());
        // An operator's lift and block are answered with their own change.
        object.operate(Event::Lift { by: "ops".into() }, T0 + 6_000);
        assert_eq!(
            object.take_alerts(),
            [(Kind::FloodLifted, "lifted by ops".to_owned())]
        );
        object.operate(Event::Impose { by: "ops".into() }, T0 + 7_000);
        assert_eq!(
            object.take_alerts(),
            [(Kind::FloodTripped, "imposed by ops".to_owned())]
        );
        // The block ends with the day: the first batch of the next one says so.
        let next_day = (T0 / DAY_MS + 1) * DAY_MS + 60_000;
        assert_eq!(
            send(&mut local, &mut object, 1, next_day),
            [Raised::network(
                Kind::FloodLifted,
                "net",
                "the UTC day ended"
            )]
        );
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

    /// One click for `network`, its first batch sent at T0 + 1 s and failed: the retry is armed
    /// 2 s later.
    fn first_batch_failed(network: &Id) -> (LocalCounts, Batch) {
        let mut local = LocalCounts::new(1, policy());
        local.record_flood(network, Thresholds::default(), false, T0);
        let Flush::Send(b) = local.wake(network, T0 + 1_000) else {
            panic!("due")
        };
        assert_eq!(
            local.failed(network, b.seq, T0 + 1_100),
            Flush::WakeIn(2_000)
        );
        (local, b)
    }

    #[test]
    fn a_quiet_networks_failed_batch_is_resent_when_another_network_clicks() {
        // Regression: a batch was retried only by its own network's drive, which stops after a
        // few steps; a network that went quiet kept its clicks out of the report until it clicked.
        let (quiet, busy) = (id("quiet"), id("busy"));
        let (mut local, b) = first_batch_failed(&quiet);
        // That timer is lost with its drive; much later another network clicks.
        local.record_flood(&busy, Thresholds::default(), false, T0 + 40_000);
        let steps = local.stranded(T0 + 40_000);
        assert!(
            steps.contains(&(quiet.clone(), Flush::Send(b.clone()))),
            "{steps:?}"
        );
        assert!(steps.iter().any(|(n, _)| *n == busy), "{steps:?}");
        // Looked at once per interval: the next click within it starts nothing more.
        assert_eq!(local.stranded(T0 + 40_500), Vec::new());
        // Answered, the quiet network has nothing left out.
        let reply = NetworkCounts::default().apply(&b, T0 + 41_000);
        assert_eq!(
            local.acked(&quiet, b.seq, reply, T0 + 41_000),
            Flush::Nothing
        );
        let later = local.stranded(T0 + 42_000);
        assert!(later.iter().all(|(n, _)| *n != quiet), "{later:?}");
    }

    #[test]
    fn a_batch_taken_by_a_drive_whose_time_ran_out_is_sent_by_the_next_look() {
        // Regression: a drive whose time ran out after waking for a retry had taken the batch to
        // send, which then passed for a send under way: another network's clicks did not resend
        // it until the stale bound (30 s) had gone by.
        let (quiet, busy) = (id("quiet"), id("busy"));
        let (mut local, b) = first_batch_failed(&quiet);
        // The drive wakes for the retry, takes the batch, and its time is up.
        assert_eq!(local.wake(&quiet, T0 + 3_100), Flush::Send(b.clone()));
        local.put_back(&quiet, b.seq, T0 + 3_100);
        // Another network's click, well within the stale bound, sends it.
        local.record_flood(&busy, Thresholds::default(), false, T0 + 5_000);
        let steps = local.stranded(T0 + 5_000);
        assert!(
            steps.contains(&(quiet.clone(), Flush::Send(b.clone()))),
            "{steps:?}"
        );
        // Put back is not a failure: the batch still has its sends left.
        let reply = NetworkCounts::default().apply(&b, T0 + 5_100);
        assert_eq!(
            local.acked(&quiet, b.seq, reply, T0 + 5_100),
            Flush::Nothing
        );
        assert_eq!(local.dropped().total(), 0);
        // A stale sequence number changes nothing.
        local.put_back(&quiet, b.seq + 7, T0 + 6_000);
        assert!(local.networks[&quiet].in_flight.is_none());
    }

    #[test]
    fn a_batch_unanswered_after_its_last_send_is_dropped_and_logged() {
        let net = id("net");
        let mut local = LocalCounts::new(1, policy());
        let mut objects = Objects::default();
        local.record_flood(&net, Thresholds::default(), false, T0);
        let Flush::Send(b) = local.wake(&net, T0 + 1_000) else {
            panic!("due")
        };
        local.record_flood(&net, Thresholds::default(), false, T0 + 1_001);
        let mut now = T0 + 1_000;
        for send in 1..MAX_SENDS {
            let Flush::WakeIn(ms) = local.failed(&net, b.seq, now) else {
                panic!("send {send} is retried")
            };
            now += ms;
            assert_eq!(local.wake(&net, now), Flush::Send(b.clone()));
        }
        // The last send fails: the batch is dropped, and the click since goes out on its own.
        let Flush::Send(next) = local.failed(&net, b.seq, now + 1) else {
            panic!("the pending click is overdue")
        };
        assert_eq!(local.dropped().unanswered, 1);
        assert!(local
            .take_drop_line()
            .unwrap()
            .contains("1 in batches unanswered"));
        // Under a new name, numbered from 1: the object takes it, with no gap left in its list.
        assert_ne!(next.isolate, b.isolate);
        assert_eq!(next.seq, 1);
        assert!(!objects.apply(&next, now + 2).duplicate);
        assert_eq!(objects.day_clicks(&net), 1);
        assert_eq!(local.unsent, 1);
    }
}
