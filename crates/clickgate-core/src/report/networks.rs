//! Many networks' hours, in bounded memory however many ids clients made up.

use std::collections::BTreeMap;

use super::bounds::{MAX_NETWORKS_NAMED, OTHER};
use super::hours::HourRows;

/// The networks a report has read, held in bounded memory however many ids clients made up.
///
/// Every `aff_id` that clicks is a network, so a report over made-up ids reads as many networks as
/// were made up. At most [`MAX_NETWORKS_NAMED`] of them keep their name: whenever twice as many are
/// held, the ones with the fewest clicks (previews and conversions included; ties by name) are
/// folded into one network named [`OTHER`], hour by hour and row by row. Nothing is dropped: the
/// totals and every hour, day, advertiser and offer stay exact; only the long tail of networks
/// loses its names, and [`Networks::count`] still says how many there were.
///
/// A shared object folds its members this way before it answers, and the report folds the objects'
/// answers into one, so neither holds more than twice the cap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks {
    /// Each named network's hours, in hour order.
    pub(super) named: BTreeMap<String, Hours>,
    pub(super) other: Hours,
    /// Networks folded into `other`.
    pub(super) folded: u64,
}

/// One network's hours, in hour order.
pub(super) type Hours = Vec<(u32, HourRows)>;

/// Adds an hour's rows to a network's hours, keeping them in hour order.
pub(super) fn add_hour(hours: &mut Hours, hour: u32, rows: HourRows) {
    match hours.binary_search_by_key(&hour, |(h, _)| *h) {
        Ok(i) => hours[i].1.merge(&rows),
        Err(i) => hours.insert(i, (hour, rows)),
    }
}

impl Networks {
    /// Adds one network's hours; a network already held sums them into its own.
    pub fn add(&mut self, network: &str, hours: Hours) {
        // A device ledger is listed among its shared object's networks, with no report rows.
        if is_ledger(network) {
            return;
        }
        let held = match self.named.get_mut(network) {
            Some(held) => held,
            None => self.named.entry(network.to_owned()).or_default(),
        };
        for (hour, rows) in hours {
            add_hour(held, hour, rows);
        }
        if self.named.len() > 2 * MAX_NETWORKS_NAMED {
            self.fold_to(MAX_NETWORKS_NAMED);
        }
    }

    /// Adds what another object answered.
    pub fn merge(&mut self, other: Networks) {
        for (hour, rows) in other.other {
            add_hour(&mut self.other, hour, rows);
        }
        self.folded += other.folded;
        for (network, hours) in other.named {
            self.add(&network, hours);
        }
    }

    /// Folds every network but the `keep` with the most clicks into [`OTHER`]; of networks that
    /// weigh the same, the first by name keep theirs.
    pub(super) fn fold_to(&mut self, keep: usize) {
        if self.named.len() <= keep {
            return;
        }
        let weights: Vec<u64> = self.named.values().map(weight).collect();
        let mut kept = heaviest(&weights, keep).into_iter();
        let named = std::mem::take(&mut self.named);
        for (network, hours) in named {
            if kept.next().unwrap_or(true) {
                self.named.insert(network, hours);
            } else {
                for (hour, rows) in hours {
                    add_hour(&mut self.other, hour, rows);
                }
                self.folded += 1;
            }
        }
    }

    /// How many networks were read: the named ones and the folded ones. A network whose hours are
    /// in two objects (its own, and a shared one from before it was listed) counts once, unless
    /// one of the two folded it.
    pub fn count(&self) -> usize {
        self.named.len() + self.folded as usize
    }

    /// The networks held by name; at most twice [`MAX_NETWORKS_NAMED`].
    pub fn named(&self) -> usize {
        self.named.len()
    }

    /// The rows held, named networks' and folded ones': what the memory a report takes grows with.
    pub fn rows(&self) -> usize {
        let rows = |hours: &Hours| {
            hours
                .iter()
                .map(|(_, h)| h.rows.len() + h.dims.len())
                .sum::<usize>()
        };
        self.named.values().map(rows).sum::<usize>() + rows(&self.other)
    }

    /// Each network's hours by its name, the folded ones under [`OTHER`].
    pub(crate) fn parts(&self) -> impl Iterator<Item = (&str, &Hours)> {
        self.named
            .iter()
            .map(|(n, h)| (n.as_str(), h))
            .chain((!self.other.is_empty() || self.folded > 0).then_some((OTHER, &self.other)))
    }
}

/// Which of `weights` are the `keep` heaviest; of those that weigh the same, the first.
pub(super) fn heaviest(weights: &[u64], keep: usize) -> Vec<bool> {
    // The lightest weight kept: the largest `cut` that at least `keep` weigh, found by halving
    // rather than by sorting (a sort of its own would cost the Worker its code).
    let at_least = |c: u64| weights.iter().filter(|w| **w >= c).count();
    let (mut cut, mut high) = (0, weights.iter().copied().max().unwrap_or(0));
    while cut < high {
        let mid = cut + (high - cut).div_ceil(2);
        if at_least(mid) >= keep {
            cut = mid;
        } else {
            high = mid - 1;
        }
    }
    // Those heavier are all kept; of those that weigh `cut`, the first fill the rest.
    let mut at_cut = keep.saturating_sub(weights.iter().filter(|w| **w > cut).count());
    weights
        .iter()
        .map(|&w| {
            let kept = w > cut || (w == cut && at_cut > 0);
            at_cut -= usize::from(kept && w == cut);
            kept
        })
        .collect()
}

/// What a network weighs when the tail is folded: everything it counted.
fn weight(hours: &Hours) -> u64 {
    hours
        .iter()
        .flat_map(|(_, h)| h.rows.values())
        .map(|t| t.clicks + t.previews + t.conversions)
        .sum()
}

/// The device ledgers' names (`network::keys::ledger` picks one): networks whose batches carry
/// device counts and no report rows, which the report leaves out.
pub const DEVICE_LEDGERS: [&str; 16] = [
    "_devices.0",
    "_devices.1",
    "_devices.2",
    "_devices.3",
    "_devices.4",
    "_devices.5",
    "_devices.6",
    "_devices.7",
    "_devices.8",
    "_devices.9",
    "_devices.10",
    "_devices.11",
    "_devices.12",
    "_devices.13",
    "_devices.14",
    "_devices.15",
];

/// Whether `network` names a device ledger rather than an affiliate.
pub fn is_ledger(network: &str) -> bool {
    DEVICE_LEDGERS.contains(&network)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_fold_keeps_the_heaviest_networks_and_the_first_by_name_of_equals() {
        let h = 500_000;
        let mut n = Networks::default();
        for (name, clicks) in [("d", 5), ("a", 1), ("c", 9), ("b", 5), ("e", 5)] {
            n.add(name, network(&[(h, &[("adv", "1", tally(clicks, 0, ""))])]));
        }
        n.fold_to(3);
        assert_eq!(
            n.parts().map(|(k, _)| k).collect::<Vec<_>>(),
            ["b", "c", "d", OTHER]
        );
        assert_eq!((n.count(), n.named(), n.folded), (5, 3, 2));
        let folded: u64 = n
            .other
            .iter()
            .flat_map(|(_, r)| r.rows.values())
            .map(|t| t.clicks)
            .sum();
        assert_eq!(folded, 6);
        // Already within the cap: nothing moves.
        let before = n.clone();
        n.fold_to(3);
        assert_eq!(n, before);
    }
}
