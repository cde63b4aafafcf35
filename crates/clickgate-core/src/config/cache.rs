//! The isolate's copy of the config: when to refresh it, and what to keep when a refresh fails.
//!
//! Workers KV is eventually consistent and has had outages lasting hours. So the isolate compiles the
//! document once, serves it from memory, and re-reads KV in the background once the copy is older
//! than the refresh interval. A missing, unreadable or invalid document never replaces a good one:
//! the last good config stays in force and the event says so. Only an isolate that has never loaded
//! a config has to wait for KV.

use std::sync::Arc;

use super::blocklist::Blocklist;
use super::error::ConfigError;
use super::feeds::{digest_fed, FeedStates};
use super::lists::{references, StoredLists};
use super::secrets::Secrets;
use crate::config::Config;
use crate::fault::Corrupt;
use crate::ip::IpSet;
use crate::log::JsonLine;

/// A refresh that has not finished after this long is assumed lost (its request was cancelled), so
/// another may start.
pub(crate) const STUCK_REFRESH_MS: u64 = 10_000;

/// What reading the config key from KV gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Text(String),
    /// A document with `feeds`, and the feeds' state it is compiled with.
    Fed(String, FeedStates),
    Missing,
    Failed(String),
}

/// What a request must do about the config before deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The copy is fresh.
    Nothing,
    /// The copy is stale: serve it, and refresh after the response (`ctx.wait_until`).
    Background,
    /// There is no copy: read KV before answering.
    Blocking,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotEvent {
    Loaded {
        digest: String,
        previous: Option<String>,
    },
    Unchanged {
        digest: String,
    },
    /// The new document was not usable; the previous one is still in force.
    KeptLastGood {
        digest: String,
        problem: String,
    },
    /// Nothing usable was ever loaded.
    NoConfig {
        problem: String,
    },
}

impl SlotEvent {
    /// Whether its line goes to the error stream: the config in force is not the one in KV.
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            SlotEvent::KeptLastGood { .. } | SlotEvent::NoConfig { .. }
        )
    }

    /// A structured log line; `Unchanged` is too frequent to be worth one.
    pub fn log_line(&self) -> Option<String> {
        let level = if self.is_error() { "error" } else { "info" };
        let line = JsonLine::new().str("event", "config").str("level", level);
        let line = match self {
            SlotEvent::Loaded { digest, previous } => line
                .str("status", "loaded")
                .str("config", digest)
                .opt("previous", previous.as_deref()),
            SlotEvent::Unchanged { .. } => return None,
            SlotEvent::KeptLastGood { digest, problem } => line
                .str("status", "kept_last_good")
                .str("config", digest)
                .str("problem", problem),
            SlotEvent::NoConfig { problem } => {
                line.str("status", "no_config").str("problem", problem)
            }
        };
        Some(line.finish())
    }
}

#[derive(Debug)]
pub struct ConfigSlot {
    current: Option<Arc<Config>>,
    checked_at_ms: Option<u64>,
    refreshing_since_ms: Option<u64>,
    refresh_after_ms: u64,
    /// Whether a stale copy is re-read before the request is answered rather than after: for
    /// `make dev`, where a pushed config must answer the very next request.
    wait_when_stale: bool,
    /// The IP lists kept in their own KV keys, decoded. Their keys name their content, so one read
    /// per isolate is enough; lists the config in force no longer uses are dropped.
    lists: StoredLists,
    /// The operator's blocklist as last read from KV, put in force with the next compile.
    blocklist: Blocklist,
}

impl ConfigSlot {
    pub fn new(refresh_after_ms: u64) -> ConfigSlot {
        ConfigSlot {
            current: None,
            checked_at_ms: None,
            refreshing_since_ms: None,
            refresh_after_ms,
            wait_when_stale: false,
            lists: StoredLists::new(),
            blocklist: Blocklist::default(),
        }
    }

    /// A slot whose stale copy is re-read before the request it was found by is answered.
    pub fn waiting_when_stale(self) -> ConfigSlot {
        ConfigSlot {
            wait_when_stale: true,
            ..self
        }
    }

    pub fn current(&self) -> Option<Arc<Config>> {
        self.current.clone()
    }

    pub fn need(&self, now_ms: u64) -> Need {
        if self.current.is_none() {
            return Need::Blocking;
        }
        let fresh = self
            .checked_at_ms
            .is_some_and(|t| now_ms.saturating_sub(t) < self.refresh_after_ms);
        let in_flight = self
            .refreshing_since_ms
            .is_some_and(|t| now_ms.saturating_sub(t) < STUCK_REFRESH_MS);
        if fresh || in_flight {
            Need::Nothing
        } else if self.wait_when_stale {
            Need::Blocking
        } else {
            Need::Background
        }
    }

    /// Marks a refresh as started, so concurrent requests in this isolate do not start their own
    /// background refresh. Before any config has loaded there is none to serve meanwhile, so
    /// each request that arrives then reads KV itself.
    pub fn begin(&mut self, now_ms: u64) {
        self.refreshing_since_ms = Some(now_ms);
    }

    /// The list keys a fetched document refers to that this isolate does not hold yet: read them
    /// from KV and hand them to [`ConfigSlot::add_list`] before [`ConfigSlot::finish`].
    pub(crate) fn lists_to_fetch(&self, text: &str) -> Vec<String> {
        self.to_fetch(text).0
    }

    /// [`ConfigSlot::lists_to_fetch`], and whether the document has feeds, whose state is read
    /// from KV too ([`Fetched::Fed`]) and whose lists [`ConfigSlot::fed_lists_to_fetch`] names.
    pub fn to_fetch(&self, text: &str) -> (Vec<String>, bool) {
        let (mut keys, feeds) = references(text);
        keys.retain(|k| !self.lists.contains_key(k));
        (keys, feeds)
    }

    /// The feeds' good lists this isolate does not hold yet.
    pub fn fed_lists_to_fetch(&self, fed: &FeedStates) -> Vec<String> {
        let mut keys = fed.keys();
        keys.retain(|k| !self.lists.contains_key(k));
        keys
    }

    pub fn add_list(&mut self, key: String, bytes: Vec<u8>) -> Result<(), Corrupt> {
        let set = IpSet::from_bytes(bytes).map_err(|e| Corrupt {
            detail: format!("list `{key}` is unreadable: {e}"),
            ..e
        })?;
        self.lists.insert(key, set);
        Ok(())
    }

    /// The blocklist as KV holds it (`None`: nothing was ever listed), read with every refresh
    /// before [`ConfigSlot::finish`]; `Err`: it is unreadable, and the refresh is a failed one.
    pub fn read_blocklist(&mut self, text: Option<&str>) -> Result<(), Corrupt> {
        self.blocklist = Blocklist::read(text)?;
        Ok(())
    }

    /// Compiles a fetched document, the secrets it names read from `secrets` (the Worker's).
    pub fn finish(&mut self, now_ms: u64, fetched: Fetched, secrets: Secrets) -> SlotEvent {
        self.refreshing_since_ms = None;
        self.checked_at_ms = Some(now_ms);
        let problem = match fetched {
            Fetched::Text(text) => self.compile(text, FeedStates::default(), secrets),
            Fetched::Fed(text, fed) => self.compile(text, fed, secrets),
            Fetched::Missing => Err("the config key is missing from KV".to_owned()),
            Fetched::Failed(e) => Err(format!("KV read failed: {e}")),
        };
        let problem = match problem {
            Ok(event) => return event,
            Err(problem) => problem,
        };
        match &self.current {
            Some(c) => SlotEvent::KeptLastGood {
                digest: c.digest.clone(),
                problem,
            },
            None => SlotEvent::NoConfig { problem },
        }
    }

    /// A fetched document put in force, or why it cannot be.
    fn compile(
        &mut self,
        text: String,
        fed: FeedStates,
        secrets: Secrets,
    ) -> Result<SlotEvent, String> {
        let previous = self.current.as_ref().map(|c| c.digest.clone());
        let digest = self.blocklist.digest_with(digest_fed(&text, &fed));
        if previous.as_deref() == Some(digest.as_str()) {
            return Ok(SlotEvent::Unchanged { digest });
        }
        let mut config = Config::compile_digested(&text, digest, (&self.lists, &fed), secrets)
            .map_err(|e| summarize(&e))?;
        config.blocklist = self.blocklist.clone();
        self.lists.retain(|k, _| config.stored_lists.contains(k));
        let digest = config.digest.clone();
        self.current = Some(Arc::new(config));
        Ok(SlotEvent::Loaded { digest, previous })
    }
}

/// A document put in force as an isolate's first request puts one: through a slot, the blocklist
/// read, each IP list the document keeps in its own KV key handed over as KV gives it (every one
/// holding `list`). Module start runs this on a small document so that the code of that path is
/// compiled before the first click needs it; `None` if the document does not compile.
pub fn warm_up(text: &str, list: &IpSet) -> Option<Arc<Config>> {
    let mut slot = ConfigSlot::new(1);
    slot.read_blocklist(None).ok()?;
    for key in slot.lists_to_fetch(text) {
        slot.add_list(key, list.to_bytes()).ok()?;
    }
    slot.finish(0, Fetched::Text(text.to_owned()), Secrets::None);
    slot.current()
}

fn summarize(errors: &[ConfigError]) -> String {
    let shown: Vec<String> = errors.iter().take(5).map(ToString::to_string).collect();
    let more = errors.len().saturating_sub(shown.len());
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    format!("the config in KV is invalid: {}{tail}", shown.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::DEMO;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const REFRESH: u64 = 30_000;

    fn loaded() -> ConfigSlot {
        let mut s = ConfigSlot::new(REFRESH);
        assert!(matches!(
            s.finish(1_000, Fetched::Text(DEMO.into()), Secrets::None),
            SlotEvent::Loaded { previous: None, .. }
        ));
        s
    }

    #[test]
    fn empty_slot_must_block_and_reports_no_config() {
        let mut s = ConfigSlot::new(REFRESH);
        assert_eq!(s.need(0), Need::Blocking);
        assert!(matches!(
            s.finish(0, Fetched::Missing, Secrets::None),
            SlotEvent::NoConfig { .. }
        ));
        assert_eq!(s.need(1), Need::Blocking);
        assert!(s.current().is_none());
    }

    #[test]
    fn fresh_copy_needs_nothing_stale_copy_refreshes_in_background() {
        let s = loaded();
        assert_eq!(s.need(1_000 + REFRESH - 1), Need::Nothing);
        assert_eq!(s.need(1_000 + REFRESH), Need::Background);
    }

    #[test]
    fn one_refresh_at_a_time_unless_it_is_stuck() {
        let mut s = loaded();
        let t = 1_000 + REFRESH;
        s.begin(t);
        assert_eq!(s.need(t + 1), Need::Nothing);
        assert_eq!(s.need(t + STUCK_REFRESH_MS), Need::Background);
    }

    #[test]
    fn broken_document_keeps_the_last_good_one() {
        let mut s = loaded();
        let good = s.current().unwrap().digest.clone();
        for fetched in [
            Fetched::Text("{not json".into()),
            Fetched::Text(r#"{"version": 1, "offers": []}"#.into()),
            Fetched::Missing,
            Fetched::Failed("timeout".into()),
        ] {
            let event = s.finish(50_000, fetched.clone(), Secrets::None);
            let SlotEvent::KeptLastGood { digest, problem } = &event else {
                panic!("{fetched:?}: {event:?}")
            };
            assert_eq!(digest, &good);
            assert!(!problem.is_empty());
            let line = event.log_line().unwrap();
            assert!(
                line.contains(r#""level":"error","status":"kept_last_good""#),
                "{line}"
            );
            assert!(event.is_error());
            assert_eq!(s.current().unwrap().digest, good);
        }
        // A failed refresh still counts as a check: no retry storm against a KV that is down.
        assert_eq!(s.need(50_001), Need::Nothing);
    }

    #[test]
    fn same_text_is_not_recompiled_and_new_text_replaces() {
        let mut s = loaded();
        assert!(matches!(
            s.finish(40_000, Fetched::Text(DEMO.into()), Secrets::None),
            SlotEvent::Unchanged { .. }
        ));
        let changed = DEMO.replace("Spring", "Summer");
        let SlotEvent::Loaded { digest, previous } =
            s.finish(80_000, Fetched::Text(changed), Secrets::None)
        else {
            panic!()
        };
        assert_ne!(Some(digest.clone()), previous);
        assert_eq!(s.current().unwrap().digest, digest);
    }

    #[test]
    fn invalid_document_summary_names_the_field() {
        let mut s = ConfigSlot::new(REFRESH);
        let SlotEvent::NoConfig { problem } = s.finish(
            0,
            Fetched::Text(r#"{"version":1,"offers":[{"id":"1"}]}"#.into()),
            Secrets::None,
        ) else {
            panic!()
        };
        assert!(
            problem.contains("offers[0].landing_url: is required"),
            "{problem}"
        );
    }

    #[test]
    fn lists_in_their_own_keys_are_read_once_and_dropped_when_unused() {
        use crate::ip::IpNet;
        use crate::stored::list_key;
        let bytes = IpSet::new([IpNet::parse("192.0.2.0/24").unwrap()]).to_bytes();
        let key = list_key(&bytes);
        let with_list = DEMO.replacen(
            r#""lists": {"#,
            &format!(r#""lists": {{"vpn_ips": {{"kv": "{key}"}}, "#),
            1,
        );
        assert_ne!(with_list, DEMO, "the demo has a lists object to extend");
        let mut s = ConfigSlot::new(30_000);
        assert_eq!(s.lists_to_fetch(&with_list), vec![key.clone()]);
        // Before the list arrives the document cannot compile; nothing is in force.
        assert!(matches!(
            s.finish(0, Fetched::Text(with_list.clone()), Secrets::None),
            SlotEvent::NoConfig { .. }
        ));
        assert!(s
            .add_list(key.clone(), b"garbage".to_vec())
            .unwrap_err()
            .detail
            .contains("unreadable"));
        s.add_list(key.clone(), bytes).unwrap();
        assert!(s.lists_to_fetch(&with_list).is_empty());
        assert!(matches!(
            s.finish(1, Fetched::Text(with_list.clone()), Secrets::None),
            SlotEvent::Loaded { .. }
        ));
        assert_eq!(s.current().unwrap().lists.vpn_ips.len(), 1);
        // A document without the list drops it; going back would read it again.
        assert!(matches!(
            s.finish(2, Fetched::Text(DEMO.into()), Secrets::None),
            SlotEvent::Loaded { .. }
        ));
        assert_eq!(s.lists_to_fetch(&with_list), vec![key]);
    }

    #[test]
    fn a_feed_switching_its_list_reloads_the_document_and_a_missing_list_keeps_the_last_good() {
        use crate::config::feeds::{Feed, FeedStates, Good};
        use crate::config::list_formats::Format;
        use crate::ip::IpNet;
        let url = "https://lists.example/fraud.txt";
        let doc = DEMO.replacen(
            r#""version": 1,"#,
            &format!(r#""version": 1, "feeds": [{{"url": "{url}", "format": "ips", "every": "1h", "list": "fraud_ips"}}],"#),
            1,
        );
        let feed = Feed {
            list: "fraud_ips",
            url: url.to_owned(),
            format: Format::Ips,
            every_minutes: 60,
            max_shrink_ppm: 500_000,
        };
        let mut s = ConfigSlot::new(REFRESH);
        let (keys, feeds) = s.to_fetch(&doc);
        assert!(keys.is_empty() && feeds);
        assert!(!s.to_fetch(DEMO).1);
        assert!(matches!(
            s.finish(
                0,
                Fetched::Fed(doc.clone(), FeedStates::default()),
                Secrets::None
            ),
            SlotEvent::Loaded { .. }
        ));
        let first = s.current().unwrap().digest.clone();
        let bytes = IpSet::new([IpNet::parse("198.51.100.0/24").unwrap()]).to_bytes();
        let kv = crate::stored::list_key(&bytes);
        let mut fed = FeedStates::default();
        fed.record(
            &feed,
            1,
            Ok(Good {
                kv: kv.clone(),
                at_ms: 1,
                entries: 1,
            }),
        );
        // The state arrived before its list: the config in force stays.
        assert!(matches!(
            s.finish(2, Fetched::Fed(doc.clone(), fed.clone()), Secrets::None),
            SlotEvent::KeptLastGood { .. }
        ));
        assert_eq!(s.fed_lists_to_fetch(&fed), vec![kv.clone()]);
        s.add_list(kv, bytes).unwrap();
        assert!(matches!(
            s.finish(3, Fetched::Fed(doc.clone(), fed.clone()), Secrets::None),
            SlotEvent::Loaded { .. }
        ));
        let now = s.current().unwrap();
        assert_ne!(now.digest, first);
        assert!(now
            .lists
            .fraud_ips
            .lookup("198.51.100.9".parse().unwrap())
            .is_some());
        // A refusal recorded since leaves the lists as they were: nothing to compile again.
        fed.record(&feed, 4, Err("the list is empty".into()));
        assert!(matches!(
            s.finish(5, Fetched::Fed(doc, fed), Secrets::None),
            SlotEvent::Unchanged { .. }
        ));
    }

    #[test]
    fn a_slot_waiting_when_stale_reads_before_it_answers() {
        // After `config push --local`, make dev answered from the old copy for the refresh
        // interval: the request that found it stale was served first, and refreshed after.
        let mut s = ConfigSlot::new(1_000).waiting_when_stale();
        s.begin(0);
        s.finish(0, Fetched::Text(DEMO.into()), Secrets::None);
        assert_eq!(s.need(999), Need::Nothing);
        assert_eq!(s.need(1_000), Need::Blocking);
        s.begin(1_000);
        assert_eq!(s.need(1_001), Need::Nothing, "one refresh at a time");
        let mut background = ConfigSlot::new(1_000);
        background.finish(0, Fetched::Text(DEMO.into()), Secrets::None);
        assert_eq!(background.need(1_000), Need::Background);
    }

    #[test]
    fn a_blocklist_change_reloads_the_config_and_an_emptied_one_gives_the_document_digest() {
        let mut s = loaded();
        let alone = s.current().unwrap().digest.clone();
        let listed = r#"{"entries":[{"aff_id":"net-7","by":"alice","at":5}]}"#;
        s.read_blocklist(Some(listed)).unwrap();
        let SlotEvent::Loaded { digest, .. } =
            s.finish(40_000, Fetched::Text(DEMO.into()), Secrets::None)
        else {
            panic!("a new blocklist is a new config")
        };
        assert_ne!(digest, alone);
        let config = s.current().unwrap();
        let net7 = crate::click::Id::parse("net-7").unwrap();
        assert!(config.blocklist.blocking(&net7, None).is_some());
        assert!(s.read_blocklist(Some("{not json")).is_err());
        s.read_blocklist(Some(r#"{"entries":[]}"#)).unwrap();
        s.finish(80_000, Fetched::Text(DEMO.into()), Secrets::None);
        let config = s.current().unwrap();
        assert_eq!(config.digest, alone);
        assert!(config.blocklist.blocking(&net7, None).is_none());
    }
}
