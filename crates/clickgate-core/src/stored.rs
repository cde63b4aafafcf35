//! Every name clickgate stores something under, and how long it is kept: the KV keys of the
//! config namespace, the Durable Objects' names, every key family of an object's storage and
//! their retention. The judges say what to remember; this module says under which name, so a
//! stored byte is spelled in one place (the tests below hold today's keys literally, so a change
//! that would strand what is stored fails here). Which of these keys a sweep deletes is
//! [`crate::network::store::expired`]; the directory's listing rule is [`crate::network::directory`].

use crate::click::Id;
use crate::hll::hash64;
use crate::token::NONCE_LEN;

// ---------------------------------------------------------------------------------------------
// KV: the config namespace.

/// The config document.
pub const CONFIG_KEY: &str = "config";
/// The operator's blocklist.
pub const BLOCKLIST_KEY: &str = "blocklist";
/// The feeds' state: what each feed last fetched and when.
pub const FEED_STATE_KEY: &str = "feeds";
/// Keys of lists kept apart start with this; the rest is a hash of the compiled list, so a key's
/// content never changes and an isolate never has to re-read one it has.
pub const LIST_KEY_PREFIX: &str = "iplist/";

/// The KV key a compiled list is stored under.
pub fn list_key(compiled: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(compiled);
    let hex: String = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("{LIST_KEY_PREFIX}{hex}")
}

// ---------------------------------------------------------------------------------------------
// Durable Objects' names.

/// The object that lists the objects with report data. Ids cannot hold `:`, so no network's
/// object has this name.
pub const DIRECTORY: &str = "directory:networks";
/// The objects the networks not in the config share: `unlisted:{n}`.
pub(crate) const SHARED_PREFIX: &str = "unlisted:";

/// The name of shared object `n`.
pub(crate) fn shared_object(n: u64) -> String {
    format!("{SHARED_PREFIX}{n}")
}

/// The name of a network's replay object `shard`.
pub(crate) fn replay_object(network: &Id, shard: u64) -> String {
    format!("replay:{network}:{shard}")
}

// ---------------------------------------------------------------------------------------------
// A network's keys inside a shared object: `@{network}/{key}`.

/// `key` of `network` in a shared object.
pub(crate) fn network_key(network: &str, key: &str) -> String {
    format!("@{network}/{key}")
}

/// A stored key of `network` without its prefix; `None` when it is another network's.
pub(crate) fn strip_network<'a>(network: &str, stored: &'a str) -> Option<&'a str> {
    stored
        .strip_prefix('@')?
        .strip_prefix(network)?
        .strip_prefix('/')
}

/// A stored key without the network prefix a shared object gives it: what the daily sweep judges.
pub(crate) fn inner_key(stored: &str) -> &str {
    stored
        .strip_prefix('@')
        .and_then(|rest| rest.split_once('/'))
        .map_or(stored, |(_, key)| key)
}

// ---------------------------------------------------------------------------------------------
// Retention.

/// The longest duplicate-IP window a rule may ask for (30 days); older hours are dropped.
pub const RETAIN_HOURS: u32 = 24 * 30;
/// An isolate that has not been heard of for this long has stopped; its batch ids are forgotten.
pub(crate) const SEEN_RETAIN_HOURS: u32 = 48;
/// A flood state no batch or conversion has moved for this many days is dropped, as the counts
/// are: a network quiet for a month starts its baseline afresh, and a made-up `aff_id` leaves
/// nothing behind in its shared object.
pub(crate) const FLOOD_RETAIN_DAYS: u64 = RETAIN_HOURS as u64 / 24;
/// The report's hours, and the directory's listings (no report reaches further back).
pub const REPORT_RETAIN_DAYS: u32 = 90;
/// One click's kept decision.
pub const EXPLAIN_RETAIN_DAYS: u32 = 7;

// ---------------------------------------------------------------------------------------------
// An object's storage: the counts.

/// A key of the counts in an object's storage.
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
        if let Some(hour) = parse_hour_key(key) {
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
            StoreKey::Report(hour) => f.write_str(&hour_key(*hour)),
            StoreKey::Explain(hour, nonce) => write!(f, "explain/{hour:08}/{nonce}"),
        }
    }
}

/// The storage key of a network's hour; fixed width, so keys sort by hour.
pub fn hour_key(hour: u32) -> String {
    format!("report/{hour:08}")
}

pub fn parse_hour_key(key: &str) -> Option<u32> {
    let digits = key.strip_prefix("report/")?;
    (digits.len() == 8).then(|| digits.parse().ok()).flatten()
}

/// The storage key of one click's explanation: its hour and its transaction id's nonce.
pub(crate) fn explain_key(hour: u32, nonce: &[u8]) -> String {
    let mut key = format!("explain/{hour:08}/");
    for b in nonce {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

/// The hashes a share is counted under, in place of an IP's, as its events and its hits (see
/// [`crate::network::keys::share_keys`]).
pub(crate) fn share_hashes(tag: &str) -> (u64, u64) {
    (
        hash64(format!("share/{tag}/events").as_bytes()),
        hash64(format!("share/{tag}/hits").as_bytes()),
    )
}

// ---------------------------------------------------------------------------------------------
// An object's storage: one-time use records, each valued with its expiry in milliseconds.

/// A network's click id, in its replay object: `r/` and the hash of both.
pub(crate) fn replay_key(network: &Id, click_id: &str) -> String {
    format!("r/{}", hash64(format!("{network}\n{click_id}").as_bytes()))
}

/// A click's conversion event: `cv/` and the hash of its transaction id and event.
pub(crate) fn event_key(transaction_id: &str, event: &str) -> String {
    format!(
        "cv/{:016x}",
        hash64(format!("{transaction_id}\n{event}").as_bytes())
    )
}

/// Where a click's approvals are kept, one slot each (see [`approval_slots`]).
pub(crate) fn approvals_key(transaction_id: &str) -> String {
    format!("cv/{:016x}/approved", hash64(transaction_id.as_bytes()))
}

/// The storage keys of a click's `max` approval slots under its approvals key; each holds when its
/// approval expires, like any use record.
pub(crate) fn approval_slots(click_key: &str, max: u32) -> Vec<String> {
    (0..max).map(|n| format!("{click_key}/{n}")).collect()
}

/// Whether `key` is a use record (a click id, a conversion event, an approval slot).
pub(crate) fn is_use_record(key: &str) -> bool {
    key.starts_with("r/") || key.starts_with("cv/")
}

/// The key under which a click's rejection is kept in its network's object: `rj/` and the hash of
/// its transaction id, so a conversion finds it from the id alone.
pub(crate) fn rejection_key(transaction_id: &str) -> String {
    format!("rj/{:016x}", hash64(transaction_id.as_bytes()))
}

pub(crate) fn is_rejection(key: &str) -> bool {
    key.starts_with("rj/")
}

// ---------------------------------------------------------------------------------------------
// An object's storage: listings, `n/{name}` → the last UTC day with report data (the directory's
// objects, a shared object's networks).

pub const LISTING_PREFIX: &str = "n/";

pub fn listing_key(name: &str) -> String {
    format!("{LISTING_PREFIX}{name}")
}

/// The name a listing key lists; `None` when the key is not a listing.
pub(crate) fn listed_name(key: &str) -> Option<&str> {
    key.strip_prefix(LISTING_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn id(s: &str) -> Id {
        Id::parse(s).unwrap()
    }

    /// Today's keys, spelled out: what is already stored must be found under the same bytes.
    #[test]
    fn every_key_is_spelled_as_it_was_stored() {
        let counts = [
            (StoreKey::Seen, "seen"),
            (StoreKey::Flood, "flood"),
            (
                StoreKey::Ip(id("offer-1"), 0x12ba_66e1_b50a_1879),
                "ip/offer-1/12ba66e1b50a1879",
            ),
            (StoreKey::Sub(id("offer-1"), 20_454), "sub/20454/offer-1"),
            (StoreKey::Report(490_896), "report/00490896"),
            (
                StoreKey::Explain(490_896, "0011223344556677".into()),
                "explain/00490896/0011223344556677",
            ),
        ];
        for (key, text) in counts {
            assert_eq!(key.to_string(), text);
            assert_eq!(StoreKey::parse(text), Some(key), "{text}");
        }
        assert_eq!(
            explain_key(490_896, &[0, 0x11, 0xab, 0xff]),
            "explain/00490896/0011abff"
        );
        assert_eq!(parse_hour_key("report/00490896"), Some(490_896));
        assert_eq!(
            share_hashes("old"),
            (13_632_541_544_542_551_856, 11_571_479_705_412_839_873)
        );
        assert_eq!(
            share_hashes("under10"),
            (5_666_924_547_326_395_798, 5_763_007_123_108_697_338)
        );
        assert_eq!(
            replay_key(&id("net-7"), "click-abc"),
            "r/2655187078409851726"
        );
        assert_eq!(event_key("tx-1", "sale"), "cv/e8ebf8d62aa05147");
        assert_eq!(approvals_key("tx-1"), "cv/939abadfb6cad517/approved");
        assert_eq!(
            approval_slots("cv/0000000000000001/approved", 2),
            [
                "cv/0000000000000001/approved/0",
                "cv/0000000000000001/approved/1"
            ]
        );
        assert_eq!(rejection_key("tx-1"), "rj/939abadfb6cad517");
        assert_eq!(listing_key("unlisted:6"), "n/unlisted:6");
        assert_eq!(listed_name("n/net-7"), Some("net-7"));
    }

    #[test]
    fn every_name_outside_the_counts_is_spelled_as_it_was() {
        assert_eq!(CONFIG_KEY, "config");
        assert_eq!(BLOCKLIST_KEY, "blocklist");
        assert_eq!(FEED_STATE_KEY, "feeds");
        assert_eq!(list_key(b"10.0.0.0/8\n"), "iplist/9b4e456139331a2ec582ecfb");
        assert_eq!(DIRECTORY, "directory:networks");
        assert_eq!(shared_object(6), "unlisted:6");
        assert_eq!(replay_object(&id("net-7"), 6), "replay:net-7:6");
        assert_eq!(network_key("net-7", "seen"), "@net-7/seen");
        assert_eq!(strip_network("net-7", "@net-7/seen"), Some("seen"));
        assert_eq!(strip_network("net-7", "@net-70/seen"), None);
        assert_eq!(inner_key("@net-7/ip/o/1"), "ip/o/1");
        assert_eq!(inner_key("flood"), "flood");
    }

    #[test]
    fn retention_is_as_documented() {
        assert_eq!(
            (
                RETAIN_HOURS,
                SEEN_RETAIN_HOURS,
                FLOOD_RETAIN_DAYS,
                REPORT_RETAIN_DAYS,
                EXPLAIN_RETAIN_DAYS
            ),
            (720, 48, 30, 90, 7)
        );
    }
}
