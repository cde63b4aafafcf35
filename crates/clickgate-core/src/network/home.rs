//! Which Durable Object keeps a network's state, and under which keys.
//!
//! A network listed in the config's `networks[]` has an object of its own, named by its id, as it
//! always had. Any other `aff_id` that clicks lives in one of [`SHARED_OBJECTS`] shared objects,
//! `unlisted:{n}`, with `n` a stable hash of the id: made-up ids then cost a bounded number of
//! objects and directory entries, however many there are. Inside a shared object every key of a
//! network is prefixed `@{network}/`; ids hold only `A-Z a-z 0-9 . _ -`, so no prefix is another's
//! prefix and two networks never share a key.
//!
//! The Worker says in the request's query which keys an object is to use ([`Home::space`], written
//! by [`Space::query`]); the object reads that back as a [`Space`]. A request without one uses the keys as they are: an
//! object of its own, or one made before networks were shared.

use crate::click::{BadId, Id};
use crate::config::Config;
use crate::hll::hash64;
use crate::stored::{network_key, shared_object, strip_network, SHARED_PREFIX};

/// How many objects the networks not in the config share.
pub const SHARED_OBJECTS: u64 = 16;
/// A shared object's report covers all its networks: the query that asks for that.
const MEMBERS_QUERY: &str = "members";

/// Where one network's state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Home {
    /// Listed in the config: an object of its own, named by the network.
    Own(Id),
    /// Not listed: its keys in the shared object `unlisted:{object}`.
    Shared { network: Id, object: u64 },
}

impl Home {
    /// The network's home under this config. Not inlined: every path that counts asks it.
    #[inline(never)]
    pub fn of(config: &Config, network: &Id) -> Home {
        if config.listed.contains(network) {
            Home::Own(network.clone())
        } else {
            Home::shared(network)
        }
    }

    /// Both places a network's kept records can be, its home under this config first: a network
    /// added to `networks[]` or taken out of it keeps what it stored before in the other one.
    pub(crate) fn now_and_before(config: &Config, network: &Id) -> [Home; 2] {
        let now = Home::of(config, network);
        let before = match &now {
            Home::Own(network) => Home::shared(network),
            Home::Shared { network, .. } => Home::Own(network.clone()),
        };
        [now, before]
    }

    fn shared(network: &Id) -> Home {
        Home::Shared {
            network: network.clone(),
            object: hash64(network.as_str().as_bytes()) % SHARED_OBJECTS,
        }
    }

    pub fn network(&self) -> &Id {
        match self {
            Home::Own(network) | Home::Shared { network, .. } => network,
        }
    }

    /// The name of the object (what the Durable Object binding is asked for).
    pub fn object(&self) -> String {
        match self {
            Home::Own(network) => network.as_str().to_owned(),
            Home::Shared { object, .. } => shared_object(*object),
        }
    }

    /// Whose keys the network's requests touch in its object.
    pub fn space(&self) -> Space {
        match self {
            Home::Own(_) => Space::Whole,
            Home::Shared { network, .. } => Space::Of(network.clone()),
        }
    }
}

/// Whether `name` is an object the directory may list: a network's own, or a shared one.
pub(crate) fn is_listable(name: &str) -> bool {
    match name.strip_prefix(SHARED_PREFIX) {
        Some(n) => (0..SHARED_OBJECTS).any(|i| i.to_string() == n),
        None => Id::parse(name).is_ok(),
    }
}

/// Whose keys a report request reads in the object the directory lists as `name`: a shared object
/// answers for all its networks.
pub fn report_space(name: &str) -> Space {
    if name.starts_with(SHARED_PREFIX) {
        Space::Members
    } else {
        Space::Whole
    }
}

/// The object's side: whose keys a request reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Space {
    /// The object's keys as they are (an object of its own).
    Whole,
    /// One network's keys in a shared object.
    Of(Id),
    /// Every network of a shared object (its report).
    Members,
}

impl Space {
    /// Reads the request's query (the text after `?`, possibly empty).
    pub(crate) fn from_query(query: &str) -> Result<Space, BadSpace> {
        if query.is_empty() {
            return Ok(Space::Whole);
        }
        if query == MEMBERS_QUERY {
            return Ok(Space::Members);
        }
        let network = query
            .strip_prefix("in=")
            .ok_or_else(|| BadSpace::Unknown(query.to_owned()))?;
        Id::parse(network).map(Space::Of).map_err(BadSpace::Network)
    }

    /// The request's query that names this space (empty for the object's keys as they are).
    pub fn query(&self) -> String {
        match self {
            Space::Whole => String::new(),
            Space::Of(network) => format!("in={network}"),
            Space::Members => MEMBERS_QUERY.to_owned(),
        }
    }

    /// The stored key of `key` in this space.
    pub fn key(&self, key: &str) -> String {
        match self {
            Space::Of(network) => network_key(network.as_str(), key),
            Space::Whole | Space::Members => key.to_owned(),
        }
    }

    /// A stored key of this space without its prefix; `None` when it is another space's.
    pub fn strip<'a>(&self, stored: &'a str) -> Option<&'a str> {
        match self {
            Space::Of(network) => strip_network(network.as_str(), stored),
            Space::Whole | Space::Members => Some(stored),
        }
    }

    /// The name under which the object holding this space lists itself in the directory, for a
    /// batch of `network`.
    pub fn listing(&self, network: &Id) -> String {
        match self {
            Space::Of(network) => Home::shared(network).object(),
            Space::Whole | Space::Members => network.as_str().to_owned(),
        }
    }

    /// Whether the batch of `network` belongs in this space (a shared object's request names the
    /// network whose keys it touches; a batch of another is refused, so nothing mixes).
    pub(crate) fn admits(&self, network: &Id) -> bool {
        match self {
            Space::Of(n) => n == network,
            Space::Whole => true,
            Space::Members => false,
        }
    }
}

/// Why a request's query names no [`Space`]: a query of another kind, or `in=` without an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadSpace {
    Unknown(String),
    Network(BadId),
}

impl std::fmt::Display for BadSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadSpace::Unknown(query) => write!(f, "unknown query `{query}`"),
            BadSpace::Network(e) => write!(f, "in: {e}"),
        }
    }
}

impl std::error::Error for BadSpace {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored::inner_key;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn id(s: &str) -> Id {
        Id::parse(s).unwrap()
    }

    fn config(listed: &[&str]) -> Config {
        let networks: Vec<String> = listed
            .iter()
            .map(|n| format!(r#"{{"id":"{n}"}}"#))
            .collect();
        let text = format!(
            r#"{{"version":1,"advertisers":[{{"id":"a","name":"A"}}],
                "offers":[{{"id":"1","name":"o","advertiser_id":"a",
                            "landing_url":"https://shop.example/"}}],
                "networks":[{}]}}"#,
            networks.join(",")
        );
        Config::compile(&text).unwrap()
    }

    #[test]
    fn a_listed_network_keeps_its_own_object_and_its_keys_as_they_are() {
        let home = Home::of(&config(&["net-1"]), &id("net-1"));
        assert_eq!(home, Home::Own(id("net-1")));
        assert_eq!(home.object(), "net-1");
        assert_eq!(home.space(), Space::Whole);
        assert_eq!(Space::Whole.query(), "");
        let space = Space::from_query("").unwrap();
        assert_eq!(space, Space::Whole);
        assert_eq!(space.key("flood"), "flood");
        assert_eq!(space.listing(&id("net-1")), "net-1");
    }

    #[test]
    fn an_unlisted_network_lives_in_a_shared_object_under_its_own_prefix() {
        let home = Home::of(&config(&["net-1"]), &id("made-up-9"));
        let object = home.object();
        assert!(object.starts_with("unlisted:"), "{object}");
        assert!(is_listable(&object), "{object}");
        assert_eq!(home.space().query(), "in=made-up-9");
        let space = Space::from_query("in=made-up-9").unwrap();
        assert_eq!(space.key("report/00012345"), "@made-up-9/report/00012345");
        assert_eq!(
            space.strip("@made-up-9/report/00012345"),
            Some("report/00012345")
        );
        assert_eq!(space.strip("@made-up-90/report/00012345"), None);
        assert_eq!(space.listing(&id("made-up-9")), object);
        assert!(space.admits(&id("made-up-9")) && !space.admits(&id("made-up-90")));
        assert_eq!(
            inner_key("@made-up-9/ip/1001/00000000000000ff"),
            "ip/1001/00000000000000ff"
        );
        assert_eq!(inner_key("n/made-up-9"), "n/made-up-9");
    }

    #[test]
    fn a_network_that_moved_is_looked_for_where_it_is_and_where_it_was() {
        // Listed in the config now: its own object first, then the shared one it clicked in
        // before it was listed; unlisted now, the other way round.
        let listed = Home::now_and_before(&config(&["net-1"]), &id("net-1"));
        assert_eq!(listed[0], Home::Own(id("net-1")));
        assert_eq!(listed[1], Home::of(&config(&[]), &id("net-1")));
        let unlisted = Home::now_and_before(&config(&[]), &id("net-1"));
        assert_eq!(unlisted, [listed[1].clone(), listed[0].clone()]);
    }

    #[test]
    fn the_same_id_always_finds_the_same_shared_object() {
        // The object and the keys are part of what is stored: a hash or a prefix that changed
        // between isolates or versions would split a network's counts. These are the ones stored.
        let empty = config(&[]);
        let object = |network: &str| Home::of(&empty, &id(network)).object();
        let objects: Vec<String> = (0..16).map(|i| object(&format!("made-up-{i}"))).collect();
        assert_eq!(
            objects,
            [6, 11, 13, 9, 11, 13, 15, 6, 5, 6, 14, 15, 15, 4, 14, 15]
                .map(|n| format!("unlisted:{n}"))
        );
        let stored: Vec<(String, String)> = ["net-7", "a", "Z.9_x-y"]
            .into_iter()
            .map(|n| {
                let home = Home::of(&empty, &id(n));
                (home.object(), home.space().key("ip/1001/00000000000000ff"))
            })
            .collect();
        assert_eq!(
            stored,
            [
                ("unlisted:6", "@net-7/ip/1001/00000000000000ff"),
                ("unlisted:8", "@a/ip/1001/00000000000000ff"),
                ("unlisted:13", "@Z.9_x-y/ip/1001/00000000000000ff"),
            ]
            .map(|(o, k)| (o.to_owned(), k.to_owned()))
        );
        let distinct: std::collections::BTreeSet<String> =
            (0..1000).map(|i| object(&format!("made-up-{i}"))).collect();
        assert_eq!(
            distinct.len() as u64,
            SHARED_OBJECTS,
            "1,000 ids use every object"
        );
    }

    #[test]
    fn only_networks_and_shared_objects_are_listable_and_queries_are_read_strictly() {
        for name in ["net-7", "unlisted:0", "unlisted:15"] {
            assert!(is_listable(name), "{name}");
        }
        for name in [
            "unlisted:16",
            "unlisted:01",
            "unlisted:",
            "unlisted:x",
            "a/b",
            "",
        ] {
            assert!(!is_listable(name), "{name}");
        }
        assert_eq!(report_space("unlisted:3").query(), "members");
        assert_eq!(report_space("net-7"), Space::Whole);
        assert_eq!(Space::from_query("members").unwrap(), Space::Members);
        let problem = |query: &str| Space::from_query(query).unwrap_err().to_string();
        assert!(
            problem("in=a/b").starts_with("in: "),
            "{}",
            problem("in=a/b")
        );
        assert!(problem("in=").starts_with("in: "));
        assert_eq!(problem("x=1"), "unknown query `x=1`");
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        const ID: &str = "[A-Za-z0-9._-]{0,40}[A-Za-z0-9_-][A-Za-z0-9._-]{0,23}";
        const KEY: &str = "[a-z]{1,8}(/[A-Za-z0-9._-]{0,20}){0,3}";

        proptest! {
            #[test]
            fn two_networks_never_share_a_key(a in ID, b in ID, ka in KEY, kb in KEY) {
                prop_assume!(a != b);
                let (sa, sb) = (Space::Of(id(&a)), Space::Of(id(&b)));
                let stored = sa.key(&ka);
                prop_assert_ne!(&stored, &sb.key(&kb));
                // Nor does one read the other's keys back as its own.
                prop_assert_eq!(sb.strip(&stored), None);
                prop_assert_eq!(sa.strip(&stored), Some(ka.as_str()));
                prop_assert_eq!(inner_key(&stored), ka.as_str());
            }

            #[test]
            fn a_network_stays_in_one_shared_object(
                a in ID,
                others in proptest::collection::btree_set(ID, 0..4),
            ) {
                // Whichever other networks the config lists, an unlisted one keeps its object.
                prop_assume!(!others.contains(&a));
                let listed: Vec<&str> = others.iter().map(String::as_str).collect();
                let home = Home::of(&config(&listed), &id(&a));
                prop_assert_eq!(&home, &Home::of(&config(&[]), &id(&a)));
                prop_assert!(is_listable(&home.object()));
                prop_assert_eq!(Space::Of(id(&a)).listing(&id(&a)), home.object());
            }
        }
    }
}
