//! An AS list of the config (`datacenter_asns`, `vpn_asns`): the operator's own numbers, the
//! built-in sets it names, and the numbers it takes out of those sets.
//!
//! The sets are sorted arrays compiled into the Worker (`asn_sets_data.rs`, written from
//! `data/asn-sets.txt`): nothing is built when an isolate starts, and a lookup is a bisection.

use rustc_hash::FxHashSet;

use crate::filters::asn_sets_data::{HOSTING, VPN};

/// A built-in set of AS numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinSet {
    /// Clouds and server hosts.
    Hosting,
    /// Networks run by VPN and proxy services, or rented mostly as their exits.
    Vpn,
}

impl BuiltinSet {
    /// Every set by the name the config gives it.
    pub(crate) const ALL: &'static [(&'static str, BuiltinSet)] =
        &[("hosting", BuiltinSet::Hosting), ("vpn", BuiltinSet::Vpn)];

    pub fn name(self) -> &'static str {
        match self {
            BuiltinSet::Hosting => "hosting",
            BuiltinSet::Vpn => "vpn",
        }
    }

    pub(crate) fn numbers(self) -> &'static [u32] {
        match self {
            BuiltinSet::Hosting => HOSTING,
            BuiltinSet::Vpn => VPN,
        }
    }

    pub fn contains(self, asn: u32) -> bool {
        self.numbers().binary_search(&asn).is_ok()
    }
}

/// Where an AS number in a list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsnSource {
    /// The operator's own entry.
    Own,
    Builtin(BuiltinSet),
}

/// An AS list: the operator's entries, and the built-in sets it uses less its exclusions.
#[derive(Debug, Clone, Default)]
pub struct AsnList {
    own: FxHashSet<u32>,
    builtin: Vec<BuiltinSet>,
    except: FxHashSet<u32>,
}

impl AsnList {
    /// The exclusions take numbers out of the built-in sets only: a number the operator lists
    /// itself is meant.
    pub fn new(own: FxHashSet<u32>, builtin: Vec<BuiltinSet>, except: FxHashSet<u32>) -> Self {
        AsnList {
            own,
            builtin,
            except,
        }
    }

    /// Where `asn` is in the list from, if it is.
    pub fn find(&self, asn: u32) -> Option<AsnSource> {
        if self.own.contains(&asn) {
            return Some(AsnSource::Own);
        }
        if self.except.contains(&asn) {
            return None;
        }
        self.builtin
            .iter()
            .find(|set| set.contains(asn))
            .map(|set| AsnSource::Builtin(*set))
    }

    pub fn contains(&self, asn: &u32) -> bool {
        self.find(*asn).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.own.is_empty() && self.builtin.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The sets as data/asn-sets.txt writes them: what scripts/builtin-sets.py compiles.
    fn from_text(set: &str) -> Vec<u32> {
        let mut numbers: Vec<u32> = include_str!("../../../../data/asn-sets.txt")
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                (words.next()? == set).then(|| words.next()?.parse().ok())?
            })
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        numbers
    }

    #[test]
    fn the_compiled_sets_are_the_text_sorted() {
        for (name, set) in BuiltinSet::ALL {
            assert!(!set.numbers().is_empty(), "{name}");
            assert_eq!(
                set.numbers(),
                from_text(name),
                "{name}: run scripts/builtin-sets.py"
            );
        }
    }

    /// Networks that carry people (data/people-asns.txt): the big mobile carriers and home ISPs
    /// of the countries with the most traffic, and the relays of people's own traffic, each
    /// checked against its registered name by `scripts/builtin-sets.py --verify`. A click from
    /// one of them is a person's until something else says not.
    fn people() -> Vec<(u32, &'static str)> {
        include_str!("../../../../data/people-asns.txt")
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .map(|l| {
                let mut words = l.splitn(4, char::is_whitespace);
                let asn = words.next().and_then(|w| w.parse().ok());
                (asn.unwrap_or_else(|| panic!("not an AS number: {l}")), l)
            })
            .collect()
    }

    #[test]
    fn no_network_that_carries_people_is_in_a_builtin_set() {
        let people = people();
        // The list is read, not skipped: the big ones of several countries are in it.
        assert!(people.len() >= 100, "{} networks", people.len());
        for asn in [7922, 3320, 55836, 4134, 28573, 13335] {
            assert!(people.iter().any(|(a, _)| *a == asn), "AS{asn}");
        }
        for (name, set) in BuiltinSet::ALL {
            for (asn, line) in &people {
                assert!(!set.contains(*asn), "AS{asn} ({line}) is in `{name}`");
            }
        }
    }

    #[test]
    fn own_entries_and_exclusions_combine_with_the_sets() {
        let list = AsnList::new(
            [64496, 16509].into_iter().collect(),
            vec![BuiltinSet::Hosting, BuiltinSet::Vpn],
            [16509, 14061].into_iter().collect(),
        );
        assert_eq!(list.find(64496), Some(AsnSource::Own));
        // Listed by the operator and excluded from the sets: the operator's entry stands.
        assert_eq!(list.find(16509), Some(AsnSource::Own));
        assert_eq!(list.find(14061), None);
        assert_eq!(
            list.find(24940),
            Some(AsnSource::Builtin(BuiltinSet::Hosting))
        );
        assert_eq!(list.find(9009), Some(AsnSource::Builtin(BuiltinSet::Vpn)));
        assert_eq!(list.find(7922), None);
        assert!(AsnList::default().is_empty() && AsnList::default().find(16509).is_none());
    }
}
