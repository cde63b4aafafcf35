//! The operator's lasting blocklist: affiliates, or one affiliate's sub IDs, refused until an
//! operator removes them (a network's block through the admin API ends at 00:00 UTC; this does
//! not). Kept in the KV key [`crate::stored::BLOCKLIST_KEY`] beside the config document, written only by the
//! admin API (`/admin/blocklist`), and read by each isolate with the config, so a click is checked
//! against it in memory. A change is in force everywhere within the config refresh interval.
//!
//! A sub ID entry is matched against the sub ID the click's deciding rule reads (its
//! `sub_id_param`, `sub1` without a rule), the same parameter the allowlist of sub IDs reads.

use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::click::Id;
use crate::fault::Corrupt;
use crate::log::JsonLine;

/// The most entries the list holds: every isolate reads and keeps the whole list, and a KV value
/// of this many stays well under a megabyte.
pub(crate) const MAX_ENTRIES: usize = 10_000;
const MAX_SUB_ID_LEN: usize = 128;
const MAX_BY_LEN: usize = 128;
const MAX_NOTE_LEN: usize = 256;

/// One listed affiliate, or one sub ID of it; who listed it and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub aff_id: Id,
    /// `None`: every click of the affiliate.
    pub sub_id: Option<String>,
    pub by: String,
    pub at_ms: u64,
    pub note: Option<String>,
}

impl Entry {
    /// An entry from an operator's fields, each checked; `Err` says which is wrong.
    pub fn new(
        aff_id: &str,
        sub_id: Option<&str>,
        by: &str,
        note: Option<&str>,
        at_ms: u64,
    ) -> Result<Entry, String> {
        let aff_id = Id::parse(aff_id).map_err(|e| format!("`aff_id` `{aff_id}` {e}"))?;
        let sub_id = match sub_id {
            Some(s) if s.is_empty() || s.len() > MAX_SUB_ID_LEN => {
                return Err(format!("`sub_id` must be 1 to {MAX_SUB_ID_LEN} bytes"))
            }
            s => s.map(str::to_owned),
        };
        let by = by.trim();
        if by.is_empty() || by.len() > MAX_BY_LEN {
            return Err(format!("`by` must name who asks, 1 to {MAX_BY_LEN} bytes"));
        }
        if note.is_some_and(|n| n.len() > MAX_NOTE_LEN) {
            return Err(format!("`note` must be at most {MAX_NOTE_LEN} bytes"));
        }
        Ok(Entry {
            aff_id,
            sub_id,
            by: by.to_owned(),
            at_ms,
            note: note.map(str::to_owned),
        })
    }

    /// What the entry lists, as a blocked click's reason names it.
    pub(crate) fn listed(&self) -> String {
        match &self.sub_id {
            Some(sub) => format!("affiliate {} sub ID {sub}", self.aff_id),
            None => format!("affiliate {}", self.aff_id),
        }
    }

    fn same_target(&self, aff_id: &Id, sub_id: Option<&str>) -> bool {
        self.aff_id == *aff_id && self.sub_id.as_deref() == sub_id
    }

    /// The entry as the stored list and the admin API write it.
    pub fn to_json(&self) -> String {
        JsonLine::new()
            .str("aff_id", self.aff_id.as_str())
            .opt("sub_id", self.sub_id.as_deref())
            .str("by", &self.by)
            .num("at", self.at_ms)
            .opt("note", self.note.as_deref())
            .finish()
    }

    fn read(v: &Value) -> Option<Entry> {
        let text = |k: &str| v.get(k).and_then(Value::as_str);
        let optional = |k: &str| match v.get(k) {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s.as_str())),
            Some(_) => None,
        };
        let at_ms = v.get("at")?.as_u64()?;
        Entry::new(
            text("aff_id")?,
            optional("sub_id")?,
            text("by")?,
            optional("note")?,
            at_ms,
        )
        .ok()
    }
}

/// The whole list, with each affiliate's entries found by one lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Blocklist {
    entries: Vec<Entry>,
    /// Per affiliate, the indexes of its entries.
    by_affiliate: FxHashMap<Id, Vec<usize>>,
}

impl Blocklist {
    /// The stored list; `None`, nothing was ever listed.
    pub(crate) fn read(text: Option<&str>) -> Result<Blocklist, Corrupt> {
        let Some(text) = text else {
            return Ok(Blocklist::default());
        };
        let unreadable = || Corrupt::new("blocklist", "the blocklist in KV is unreadable");
        let doc: Value = serde_json::from_str(text).map_err(|_| unreadable())?;
        let entries = doc
            .get("entries")
            .and_then(Value::as_array)
            .ok_or_else(unreadable)?;
        if entries.len() > MAX_ENTRIES {
            return Err(Corrupt::new(
                "blocklist",
                format!("the blocklist in KV holds over {MAX_ENTRIES} entries"),
            ));
        }
        let entries: Option<Vec<Entry>> = entries.iter().map(Entry::read).collect();
        Ok(Blocklist::of(entries.ok_or_else(unreadable)?))
    }

    fn of(entries: Vec<Entry>) -> Blocklist {
        let mut by_affiliate: FxHashMap<Id, Vec<usize>> = FxHashMap::default();
        for (i, e) in entries.iter().enumerate() {
            by_affiliate.entry(e.aff_id.clone()).or_default().push(i);
        }
        Blocklist {
            entries,
            by_affiliate,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry that refuses a click of this affiliate with this sub ID: the affiliate's own,
    /// or the one of its sub ID.
    pub(crate) fn blocking(&self, aff_id: &Id, sub_id: Option<&str>) -> Option<&Entry> {
        let listed = self.by_affiliate.get(aff_id)?;
        let mut found = listed.iter().map(|&i| &self.entries[i]);
        found.find(|e| e.sub_id.is_none() || e.sub_id.as_deref() == sub_id)
    }

    /// Lists an entry; one for the same affiliate and sub ID is replaced (its who, when and note
    /// are the newest). `Err`: the list is full.
    pub(crate) fn add(&mut self, entry: Entry) -> Result<(), BlocklistFull> {
        let mut entries = std::mem::take(&mut self.entries);
        entries.retain(|e| !e.same_target(&entry.aff_id, entry.sub_id.as_deref()));
        if entries.len() >= MAX_ENTRIES {
            *self = Blocklist::of(entries);
            return Err(BlocklistFull);
        }
        entries.push(entry);
        *self = Blocklist::of(entries);
        Ok(())
    }

    /// Removes the entry of this affiliate and sub ID (`None`: the affiliate's own); the entry
    /// removed, if there was one.
    pub(crate) fn remove(&mut self, aff_id: &Id, sub_id: Option<&str>) -> Option<Entry> {
        let i = self
            .entries
            .iter()
            .position(|e| e.same_target(aff_id, sub_id))?;
        let mut entries = std::mem::take(&mut self.entries);
        let removed = entries.remove(i);
        *self = Blocklist::of(entries);
        Some(removed)
    }

    /// The list as it is stored, and as `GET /admin/blocklist` answers it.
    pub(crate) fn to_json(&self) -> String {
        let entries: Vec<String> = self.entries.iter().map(Entry::to_json).collect();
        format!("{{\"entries\":[{}]}}", entries.join(","))
    }

    /// The config digest with the list in it, so a change of the list is a new config in the
    /// logs; an empty list leaves the digest as the document alone gives it.
    pub(crate) fn digest_with(&self, digest: String) -> String {
        match self.is_empty() {
            true => digest,
            false => super::lists::digest(&format!("{digest}\n{}", self.to_json())),
        }
    }
}

/// Why [`Blocklist::add`] refused an entry: the list holds [`MAX_ENTRIES`], its most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlocklistFull;

impl std::fmt::Display for BlocklistFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the blocklist holds {MAX_ENTRIES} entries, its most: remove some first"
        )
    }
}

impl std::error::Error for BlocklistFull {}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn id(s: &str) -> Id {
        Id::parse(s).unwrap()
    }

    fn entry(aff: &str, sub: Option<&str>) -> Entry {
        Entry::new(aff, sub, "alice", None, 1_000).unwrap()
    }

    #[test]
    fn an_affiliate_entry_blocks_all_its_clicks_and_a_sub_id_entry_only_its_sub_id() {
        let mut list = Blocklist::default();
        list.add(entry("net-7", None)).unwrap();
        list.add(entry("net-8", Some("s1"))).unwrap();
        assert!(list.blocking(&id("net-7"), None).is_some());
        assert!(list.blocking(&id("net-7"), Some("any")).is_some());
        assert_eq!(
            list.blocking(&id("net-8"), Some("s1")).map(Entry::listed),
            Some("affiliate net-8 sub ID s1".to_owned())
        );
        assert!(list.blocking(&id("net-8"), Some("s2")).is_none());
        assert!(list.blocking(&id("net-8"), None).is_none());
        assert!(list.blocking(&id("net-9"), Some("s1")).is_none());
    }

    #[test]
    fn the_stored_list_reads_back_as_written() {
        let mut list = Blocklist::default();
        list.add(entry("net-7", None)).unwrap();
        list.add(Entry::new("net-8", Some("s1"), " bob ", Some("chargebacks \"x\""), 5).unwrap())
            .unwrap();
        let text = list.to_json();
        assert_eq!(Blocklist::read(Some(&text)).unwrap(), list);
        assert!(text.contains(r#""by":"bob","at":5,"note":"chargebacks \"x\"""#));
        assert_eq!(Blocklist::read(None).unwrap(), Blocklist::default());
    }

    #[test]
    fn an_unreadable_stored_list_is_an_error_not_an_empty_list() {
        for bad in [
            "",
            "[]",
            "{}",
            r#"{"entries": [{"aff_id": "n", "by": "a"}]}"#,
            r#"{"entries": [{"aff_id": "n w", "by": "a", "at": 1}]}"#,
            r#"{"entries": [{"aff_id": "n", "by": "a", "at": 1, "sub_id": 7}]}"#,
        ] {
            assert!(Blocklist::read(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn adding_the_same_target_again_replaces_who_and_when() {
        let mut list = Blocklist::default();
        list.add(entry("net-7", Some("s1"))).unwrap();
        list.add(Entry::new("net-7", Some("s1"), "bob", None, 2_000).unwrap())
            .unwrap();
        assert_eq!(list.entries().len(), 1);
        assert_eq!(list.entries()[0].by, "bob");
        assert_eq!(list.entries()[0].at_ms, 2_000);
    }

    #[test]
    fn past_its_limit_the_list_refuses_and_keeps_what_it_holds() {
        let entries = (0..MAX_ENTRIES)
            .map(|i| entry(&format!("a{i}"), None))
            .collect();
        let mut list = Blocklist::of(entries);
        let e = list.add(entry("one-more", None)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the blocklist holds 10000 entries, its most: remove some first"
        );
        assert_eq!(list.entries().len(), MAX_ENTRIES);
        assert!(list.blocking(&id("a9999"), None).is_some());
        // Replacing an entry is not growing the list.
        list.add(entry("a5", None)).unwrap();
        let text = list.to_json();
        assert_eq!(
            Blocklist::read(Some(&text)).unwrap().entries().len(),
            MAX_ENTRIES
        );
        let over = text.replacen(
            "{\"aff_id\"",
            "{\"aff_id\":\"x\",\"by\":\"a\",\"at\":1},{\"aff_id\"",
            1,
        );
        assert!(Blocklist::read(Some(&over)).is_err());
    }

    #[test]
    fn removing_takes_out_only_the_named_target() {
        let mut list = Blocklist::default();
        list.add(entry("net-7", None)).unwrap();
        list.add(entry("net-7", Some("s1"))).unwrap();
        assert_eq!(
            list.remove(&id("net-7"), None).map(|e| e.sub_id),
            Some(None)
        );
        assert!(list.remove(&id("net-7"), None).is_none());
        assert!(list.blocking(&id("net-7"), Some("s1")).is_some());
        assert!(list.blocking(&id("net-7"), Some("s2")).is_none());
    }

    #[test]
    fn an_empty_list_leaves_the_digest_and_a_listed_one_changes_it() {
        let mut list = Blocklist::default();
        assert_eq!(list.digest_with("abc".into()), "abc");
        list.add(entry("net-7", None)).unwrap();
        assert_ne!(list.digest_with("abc".into()), "abc");
    }

    #[test]
    fn fields_out_of_bounds_are_refused() {
        assert!(Entry::new("net 7", None, "a", None, 0).is_err());
        assert!(Entry::new("n", Some(""), "a", None, 0).is_err());
        assert!(Entry::new("n", None, " ", None, 0).is_err());
        assert!(Entry::new("n", None, "a", Some(&"x".repeat(300)), 0).is_err());
    }
}
