//! Feeds: IP lists the Worker fetches on its Cron Trigger and switches to only when the new one is
//! safe, so a broken upstream can never empty a blocklist.
//!
//! `feeds[]` in the document says where each list comes from, in which format, how often, and by
//! how much it may shrink at one fetch. What the feeds last did is kept apart from the document,
//! in the KV key [`crate::stored::FEED_STATE_KEY`] ([`FeedStates`]): per fed list, the last good fetch (its list's
//! key, time and entry count) and the last error. The isolate reads that state with the document
//! and compiles the two together, the feed's last good list standing in for the list the document
//! names, so the operator's document is never rewritten (a `config push` cannot race a feed), and an
//! isolate keeps its last good config, feeds and all, while KV is down.
//!
//! Every decision is here and takes `now`: whether a feed is due ([`FeedStates::due`]), whether
//! what was fetched may replace the last good list ([`FeedStates::judge`]), and what is recorded
//! and logged ([`FeedStates::record`]). The Worker only fetches and stores.

use super::error::{err, ConfigError};
use super::fields::{kind, At, Fields};
use super::json::Value;
use super::list_formats::{parse_list, Entry, Format};
use super::lists::digest;
use crate::fault::Corrupt;
use crate::ip::{sort_strings, IpSet};
use crate::log::{fault_line, push_json_str, JsonLine};
use crate::stored::{list_key, LIST_KEY_PREFIX};
use crate::time::rfc3339_ms;

/// The Cron Trigger runs every five minutes (wrangler.toml); a feed cannot be asked more often.
pub(crate) const MIN_EVERY_MINUTES: u64 = 5;
/// A week: a feed fetched less often than that is a list to push by hand.
pub(crate) const MAX_EVERY_MINUTES: u64 = 7 * 24 * 60;
/// The share a list may shrink by at one fetch unless the feed says otherwise.
pub(crate) const DEFAULT_MAX_SHRINK: f64 = 0.5;
/// The lists a feed can fill: the document's IP lists.
pub(crate) const FED_LISTS: [&str; 5] = [
    "blocked_ips",
    "allowed_ips",
    "fraud_ips",
    "datacenter_ips",
    "vpn_ips",
];
const PPM: u64 = 1_000_000;

/// The one reader of list text, in any address format: `clickgate list compile` and the feeds
/// both read with [`parse_list`], so a list the CLI compiles is the list a feed would switch to.
/// Every bad line is reported. AS formats are refused when the feed is compiled (a feed fills an
/// address list).
pub fn compile_list(format: Format, text: &str) -> Result<IpSet, Vec<String>> {
    let entries = parse_list(format, text)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    Ok(IpSet::new(entries.into_iter().filter_map(|e| match e {
        Entry::Net(n) => Some(n),
        Entry::Asn(_) => None,
    })))
}

/// One compiled entry of `feeds[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// The list under `lists` it fills; at most one feed per list, so the list names the feed.
    pub list: &'static str,
    pub url: String,
    pub format: Format,
    pub(crate) every_minutes: u64,
    /// The share (in millionths) of the last good list's entries a new list may lose.
    pub(crate) max_shrink_ppm: u64,
}

/// `feeds[]`.
pub(super) fn compile_feeds(list: Option<&Vec<Value>>, errors: &mut Vec<ConfigError>) -> Vec<Feed> {
    let mut feeds: Vec<Feed> = Vec::new();
    // Every list a feed names, the feed's other fields right or wrong: a second feed of a list
    // is reported even when the first has another problem.
    let mut fed_before: Vec<&'static str> = Vec::new();
    for (i, item) in list.into_iter().flatten().enumerate() {
        let Some(mut f) = Fields::of(item, At::Item("feeds", i), errors) else {
            continue;
        };
        let url = text(&mut f, "url", errors).and_then(|u| {
            let ok = (u.starts_with("https://") || u.starts_with("http://"))
                && u.len() <= 2048
                && !u.contains(char::is_whitespace);
            if !ok {
                errors.push(err(
                    &f.child("url"),
                    "must be an http:// or https:// URL of at most 2048 bytes, without spaces",
                ));
            }
            ok.then(|| u.to_owned())
        });
        let format = text(&mut f, "format", errors).and_then(|name| match name.parse::<Format>() {
            Ok(format) if format.is_asn() => {
                errors.push(err(
                    &f.child("format"),
                    format!("`{name}` is a list of AS numbers; a feed fills an address list"),
                ));
                None
            }
            Ok(format) => Some(format),
            Err(problem) => {
                errors.push(err(&f.child("format"), problem));
                None
            }
        });
        let every = f.required("every", errors).and_then(|v| {
            let minutes = v.as_str().and_then(parse_every);
            if minutes.is_none() {
                let found = v.as_str().map_or_else(|| kind(v).to_owned(), |s| format!("\"{s}\""));
                errors.push(err(
                    &f.child("every"),
                    format!(
                        "must be a time such as \"30m\", \"6h\" or \"1d\", from {MIN_EVERY_MINUTES}m to 7d, found {found}"
                    ),
                ));
            }
            minutes
        });
        let fed = text(&mut f, "list", errors).and_then(|name| {
            let known = FED_LISTS.iter().find(|l| **l == name).copied();
            if known.is_none() {
                errors.push(err(
                    &f.child("list"),
                    format!(
                        "must name an IP list under `lists` ({}), found \"{name}\"",
                        FED_LISTS.join(", ")
                    ),
                ));
            } else if fed_before.contains(&name) {
                errors.push(err(
                    &f.child("list"),
                    format!("`{name}` is fed by an earlier feed; a list has one feed"),
                ));
            }
            fed_before.extend(known);
            known
        });
        let max_shrink = f
            .f64_in("max_shrink", 0.0..=1.0, errors)
            .unwrap_or(DEFAULT_MAX_SHRINK);
        f.finish(errors);
        if let (Some(url), Some(format), Some(every_minutes), Some(list)) =
            (url, format, every, fed)
        {
            feeds.push(Feed {
                list,
                url,
                format,
                every_minutes,
                max_shrink_ppm: (max_shrink * PPM as f64).round() as u64,
            });
        }
    }
    feeds
}

/// A required string field, its name read once (so an unknown field's message names it once).
fn text<'a>(
    f: &mut Fields<'a, '_>,
    key: &'static str,
    errors: &mut Vec<ConfigError>,
) -> Option<&'a str> {
    let v = f.required(key, errors)?;
    let s = v.as_str();
    if s.is_none() {
        errors.push(err(
            &f.child(key),
            format!("must be a string, found {}", kind(v)),
        ));
    }
    s
}

/// `"30m"`, `"6h"`, `"1d"` in minutes, within the bounds.
fn parse_every(text: &str) -> Option<u64> {
    let unit = match text.as_bytes().last()? {
        b'm' => 1,
        b'h' => 60,
        b'd' => 24 * 60,
        _ => return None,
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let minutes = digits.parse::<u64>().ok()?.checked_mul(unit)?;
    (MIN_EVERY_MINUTES..=MAX_EVERY_MINUTES)
        .contains(&minutes)
        .then_some(minutes)
}

/// A feed's last list that passed: the key it is stored under (its content hash), when it was
/// fetched, and how many entries it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Good {
    pub kv: String,
    pub at_ms: u64,
    pub entries: u64,
}

/// What a feed last did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedState {
    /// The list it fills, which names the feed.
    pub list: String,
    /// The URL of the fetches below: a feed pointed elsewhere starts afresh.
    pub url: String,
    pub(crate) tried_at_ms: Option<u64>,
    pub good: Option<Good>,
    /// The last refusal or failure, with its time; kept after a later success, to be seen.
    pub error: Option<(u64, String)>,
}

/// Every feed's state: the document kept under [`crate::stored::FEED_STATE_KEY`]. A handful of feeds, so a list
/// searched in turn (a map's code cost the Worker's size more than it could save).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedStates(pub Vec<FeedState>);

/// What a fetch may do to its feed's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// The list may replace the last good one: store `bytes` under `kv` (unless `stored` says the
    /// key is already the list in force), then [`FeedStates::record`] it.
    Accept {
        kv: String,
        bytes: Vec<u8>,
        entries: u64,
        stored: bool,
    },
    /// The last good list stays; why.
    Refuse(String),
}

impl FeedStates {
    /// The stored state; `None`, no feed has run yet.
    pub fn read(text: Option<&str>) -> Result<FeedStates, Corrupt> {
        let Some(text) = text else {
            return Ok(FeedStates::default());
        };
        serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| {
                v.as_object()?
                    .iter()
                    .map(|(list, s)| read_state(list, s))
                    .collect()
            })
            .map(FeedStates)
            .ok_or_else(|| Corrupt::new("feed state", "the feeds' state in KV is unreadable"))
    }

    /// The state of the feed of `list`.
    pub fn get(&self, list: &str) -> Option<&FeedState> {
        self.0.iter().find(|s| s.list == list)
    }

    /// The state as it is stored.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_str(&mut out, &s.list);
            out.push(':');
            let mut line = JsonLine::new().str("url", &s.url);
            if let Some(t) = s.tried_at_ms {
                line = line.num("tried_at", t);
            }
            if let Some(g) = &s.good {
                let good = JsonLine::new()
                    .str("kv", &g.kv)
                    .num("at", g.at_ms)
                    .num("entries", g.entries)
                    .finish();
                line = line.raw("good", &good);
            }
            if let Some((at, problem)) = &s.error {
                let error = JsonLine::new()
                    .num("at", *at)
                    .str("problem", problem)
                    .finish();
                line = line.raw("error", &error);
            }
            out.push_str(&line.finish());
        }
        out.push('}');
        out
    }

    /// A feed's state while its URL is the one the document names: the state of a feed pointed
    /// elsewhere since is not its own.
    fn of(&self, feed: &Feed) -> Option<&FeedState> {
        self.get(feed.list).filter(|s| s.url == feed.url)
    }

    /// The lists the feeds hold in force, by the list each fills, for the feeds the document names.
    pub(crate) fn in_force(&self, feeds: &[Feed]) -> Vec<(&'static str, String)> {
        feeds
            .iter()
            .filter_map(|f| Some((f.list, self.of(f)?.good.as_ref()?.kv.clone())))
            .collect()
    }

    /// Every list key a good fetch left, whatever the document: what an isolate reads before it
    /// compiles the document with this state (the compile takes those its feeds name).
    pub fn keys(&self) -> Vec<String> {
        let mut keys = sort_strings(
            self.0
                .iter()
                .filter_map(|s| Some(s.good.as_ref()?.kv.clone()))
                .collect(),
        );
        keys.dedup();
        keys
    }

    /// Whether the feed is to be fetched at `now_ms`: never tried (at this URL), or tried `every`
    /// ago or more. A failed fetch waits its interval too, so a broken upstream is not hammered.
    pub fn due(&self, feed: &Feed, now_ms: u64) -> bool {
        match self.of(feed).and_then(|s| s.tried_at_ms) {
            None => true,
            Some(t) => now_ms.saturating_sub(t) >= feed.every_minutes * 60_000,
        }
    }

    /// Whether what was fetched (`Err`: the fetch failed, and why) may replace the feed's last
    /// good list: it must parse, hold an entry, and keep at least `1 - max_shrink` of the last
    /// good list's entries. A first fetch has nothing to shrink from.
    pub fn judge(&self, feed: &Feed, fetched: Result<&str, String>) -> Judgement {
        let text = match fetched {
            Ok(text) => text,
            Err(e) => return Judgement::Refuse(format!("the fetch failed: {e}")),
        };
        let set = match compile_list(feed.format, text) {
            Ok(set) => set,
            Err(errors) => {
                let more = match errors.len() {
                    0 | 1 => String::new(),
                    n => format!(" (and {} more)", n - 1),
                };
                let first = errors.first().map_or("", String::as_str);
                return Judgement::Refuse(format!(
                    "the list does not read as `{}`: {first}{more}",
                    feed.format.name()
                ));
            }
        };
        let entries = set.len() as u64;
        if entries == 0 {
            return Judgement::Refuse("the list is empty".to_owned());
        }
        let last = self.of(feed).and_then(|s| s.good.as_ref());
        if let Some(last) = last {
            let lost = last.entries.saturating_sub(entries);
            if u128::from(lost) * u128::from(PPM)
                > u128::from(feed.max_shrink_ppm) * u128::from(last.entries)
            {
                return Judgement::Refuse(format!(
                    "the list shrank from {} to {entries} entries, more than max_shrink {} allows",
                    last.entries,
                    feed.max_shrink_ppm as f64 / PPM as f64
                ));
            }
        }
        let bytes = set.to_bytes();
        let kv = list_key(&bytes);
        Judgement::Accept {
            stored: last.is_some_and(|l| l.kv == kv),
            kv,
            bytes,
            entries,
        }
    }

    /// Records how a due feed's fetch ended at `now_ms`: `Ok`, its list is the last good one now
    /// (stored under its key); `Err`, why the last good list stays. The log line is returned:
    /// a refusal is a fault line.
    pub fn record(&mut self, feed: &Feed, now_ms: u64, outcome: Result<Good, String>) -> String {
        let at = match self.0.iter().position(|s| s.list == feed.list) {
            Some(at) => at,
            None => {
                self.0.push(FeedState::default());
                self.0.len() - 1
            }
        };
        let state = &mut self.0[at];
        if state.list != feed.list || state.url != feed.url {
            *state = FeedState {
                list: feed.list.to_owned(),
                url: feed.url.clone(),
                ..FeedState::default()
            };
        }
        state.tried_at_ms = Some(now_ms);
        match outcome {
            Ok(good) => {
                let line = JsonLine::new()
                    .str("event", "feed")
                    .str("level", "info")
                    .str("list", feed.list)
                    .str("url", &feed.url)
                    .str(
                        "status",
                        match &state.good {
                            Some(g) if g.kv == good.kv => "unchanged",
                            _ => "switched",
                        },
                    )
                    .str("kv", &good.kv)
                    .num("entries", good.entries)
                    .finish();
                state.good = Some(good);
                line
            }
            Err(problem) => {
                let line = fault_line(
                    "feed",
                    &format!(
                        "lists.{} from {}: {problem}; {}",
                        feed.list,
                        feed.url,
                        match &state.good {
                            Some(g) => format!("its last good list ({}) stays in force", g.kv),
                            None => "the document's own list stays in force".to_owned(),
                        }
                    ),
                );
                state.error = Some((now_ms, problem));
                line
            }
        }
    }

    /// `GET /admin/feeds`: each feed the document names, with its last good fetch and last error.
    pub fn status_json(&self, feeds: &[Feed], now_ms: u64) -> String {
        let mut out = String::from("{\"feeds\":[");
        for (i, feed) in feeds.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let state = self.of(feed);
            let mut line = JsonLine::new()
                .str("list", feed.list)
                .str("url", &feed.url)
                .str("format", feed.format.name())
                .num("every_minutes", feed.every_minutes)
                .raw(
                    "max_shrink",
                    &(feed.max_shrink_ppm as f64 / PPM as f64).to_string(),
                )
                .bool("due", self.due(feed, now_ms));
            let good = state.and_then(|s| s.good.as_ref()).map(|g| {
                JsonLine::new()
                    .str("at", &rfc3339_ms(g.at_ms))
                    .num("entries", g.entries)
                    .str("hash", g.kv.trim_start_matches(LIST_KEY_PREFIX))
                    .str("kv", &g.kv)
                    .finish()
            });
            line = line.raw("last_good", good.as_deref().unwrap_or("null"));
            let error = state.and_then(|s| s.error.as_ref()).map(|(at, problem)| {
                JsonLine::new()
                    .str("at", &rfc3339_ms(*at))
                    .str("problem", problem)
                    .finish()
            });
            line = line.raw("last_error", error.as_deref().unwrap_or("null"));
            out.push_str(&line.finish());
        }
        out.push_str("]}");
        out
    }
}

/// One feed's stored state; `None` when a field is missing or of the wrong kind.
fn read_state(list: &str, s: &serde_json::Value) -> Option<FeedState> {
    let num = |v: &serde_json::Value, k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    let text = |v: &serde_json::Value, k: &str| Some(v.get(k)?.as_str()?.to_owned());
    let good = match s.get("good") {
        None => None,
        Some(g) => Some(Good {
            kv: text(g, "kv")?,
            at_ms: num(g, "at")?,
            entries: num(g, "entries")?,
        }),
    };
    let error = match s.get("error") {
        None => None,
        Some(e) => Some((num(e, "at")?, text(e, "problem")?)),
    };
    Some(FeedState {
        list: list.to_owned(),
        url: text(s, "url")?,
        tried_at_ms: num(s, "tried_at"),
        good,
        error,
    })
}

/// [`digest`] of a document compiled with the feeds' state: a feed switching its list changes it,
/// so the isolate compiles the document again; without a good feed list it is the document's own.
pub(crate) fn digest_fed(text: &str, fed: &FeedStates) -> String {
    let keys = fed.keys();
    if keys.is_empty() {
        return digest(text);
    }
    digest(&format!("{text}\n{}", keys.join("\n")))
}

/// The feeds of a document, compiled alone: what the scheduled run reads, without the lists the
/// rest of the document needs. `Err` holds every problem, and says the first and how many there are.
pub fn feeds_of(text: &str) -> Result<Vec<Feed>, InvalidFeeds> {
    feeds_in(text).map_err(|errors| InvalidFeeds { errors })
}

/// Why [`feeds_of`] read no feeds: the document's problems, with their paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFeeds {
    pub errors: Vec<ConfigError>,
}

impl std::fmt::Display for InvalidFeeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = self
            .errors
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        match self.errors.len() {
            0 | 1 => write!(f, "the config in KV is invalid: {first}"),
            n => write!(
                f,
                "the config in KV is invalid: {first} (and {} more)",
                n - 1
            ),
        }
    }
}

impl std::error::Error for InvalidFeeds {}

fn feeds_in(text: &str) -> Result<Vec<Feed>, Vec<ConfigError>> {
    let (doc, mut errors) =
        super::json::parse(text).map_err(|e| vec![err("", format!("is not valid JSON: {e}"))])?;
    let Some(top) = doc.as_object() else {
        return Err(vec![err(
            "",
            format!("must be an object, found {}", kind(&doc)),
        )]);
    };
    let list = match top.get("feeds") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a),
        Some(other) => {
            errors.push(err(
                "feeds",
                format!("must be an array, found {}", kind(other)),
            ));
            None
        }
    };
    let feeds = compile_feeds(list, &mut errors);
    if errors.is_empty() {
        Ok(feeds)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::DEMO;
    use crate::config::Secrets;
    use crate::config::{Config, StoredLists};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const URL: &str = "https://lists.example/hosting.txt";
    /// 2026-06-01T00:00:00Z.
    const T0: u64 = 1_780_272_000_000;

    fn feed(max_shrink_ppm: u64) -> Feed {
        Feed {
            list: "datacenter_ips",
            url: URL.to_owned(),
            format: Format::Ips,
            every_minutes: 60,
            max_shrink_ppm,
        }
    }

    /// `n` distinct /32s, one per line.
    fn list_of(n: u32) -> String {
        (0..n)
            .map(|i| format!("10.{}.{}.1\n", i / 256, i % 256))
            .collect()
    }

    /// The state after a good fetch of `n` entries at `T0`.
    fn after_good(f: &Feed, n: u32) -> FeedStates {
        let mut states = FeedStates::default();
        let Judgement::Accept { kv, entries, .. } = states.judge(f, Ok(&list_of(n))) else {
            panic!("{n} entries refused")
        };
        states.record(
            f,
            T0,
            Ok(Good {
                kv,
                at_ms: T0,
                entries,
            }),
        );
        states
    }

    fn refusal(states: &FeedStates, f: &Feed, fetched: Result<&str, String>) -> String {
        match states.judge(f, fetched) {
            Judgement::Refuse(why) => why,
            accepted => panic!("accepted: {accepted:?}"),
        }
    }

    #[test]
    fn a_first_fetch_has_nothing_to_shrink_from_and_is_accepted() {
        let states = FeedStates::default();
        let Judgement::Accept {
            kv,
            bytes,
            entries,
            stored,
        } = states.judge(
            &feed(500_000),
            Ok("# hosting\n192.0.2.0/24\n\n2001:db8::/32 # v6\n"),
        )
        else {
            panic!()
        };
        assert_eq!(entries, 2);
        assert!(!stored);
        assert_eq!(kv, list_key(&bytes));
        assert_eq!(IpSet::from_bytes(bytes).unwrap().len(), 2);
    }

    #[test]
    fn an_empty_list_is_refused_even_first() {
        let f = feed(1_000_000);
        assert_eq!(
            refusal(&FeedStates::default(), &f, Ok("")),
            "the list is empty"
        );
        assert_eq!(
            refusal(&after_good(&f, 10), &f, Ok("# only comments\n\n")),
            "the list is empty"
        );
    }

    #[test]
    fn a_broken_list_is_refused_naming_its_first_bad_line() {
        let why = refusal(
            &FeedStates::default(),
            &feed(500_000),
            Ok("192.0.2.1\n<html>\n999.1.1.1\n"),
        );
        assert!(
            why.starts_with("the list does not read as `ips`: line 2: "),
            "{why}"
        );
        assert!(why.ends_with(" (and 1 more)"), "{why}");
    }

    #[test]
    fn a_failed_fetch_is_refused_with_its_cause() {
        assert_eq!(
            refusal(
                &FeedStates::default(),
                &feed(500_000),
                Err("the server answered 503".into())
            ),
            "the fetch failed: the server answered 503"
        );
    }

    #[test]
    fn a_list_shrunk_by_more_than_max_shrink_is_refused_and_one_at_the_bound_accepted() {
        let f = feed(500_000);
        let states = after_good(&f, 10);
        let why = refusal(&states, &f, Ok(&list_of(4)));
        assert_eq!(
            why,
            "the list shrank from 10 to 4 entries, more than max_shrink 0.5 allows"
        );
        // Exactly half lost is within a bound of one half.
        assert!(matches!(
            states.judge(&f, Ok(&list_of(5))),
            Judgement::Accept { entries: 5, .. }
        ));
        // Growing is never a shrink; the same list again is already stored.
        assert!(matches!(
            states.judge(&f, Ok(&list_of(11))),
            Judgement::Accept { entries: 11, .. }
        ));
        assert!(matches!(
            states.judge(&f, Ok(&list_of(10))),
            Judgement::Accept { stored: true, .. }
        ));
        // A bound of nothing refuses any loss; a bound of everything still refuses an empty list.
        let strict = feed(0);
        assert!(matches!(
            after_good(&strict, 10).judge(&strict, Ok(&list_of(9))),
            Judgement::Refuse(_)
        ));
        let loose = feed(PPM);
        assert!(matches!(
            after_good(&loose, 10).judge(&loose, Ok(&list_of(1))),
            Judgement::Accept { entries: 1, .. }
        ));
    }

    #[test]
    fn a_feed_is_due_when_never_tried_then_every_interval_and_after_a_failure_too() {
        let f = feed(500_000);
        let mut states = FeedStates::default();
        assert!(states.due(&f, T0));
        states.record(&f, T0, Err("the list is empty".into()));
        assert!(!states.due(&f, T0 + 59 * 60_000));
        assert!(states.due(&f, T0 + 60 * 60_000));
        // A clock that went back is not a reason to fetch.
        assert!(!states.due(&f, T0 - 1));
        // Pointed at another URL, the feed starts afresh.
        let moved = Feed {
            url: "https://other.example/list.txt".into(),
            ..f
        };
        assert!(states.due(&moved, T0 + 1));
    }

    #[test]
    fn a_refusal_keeps_the_last_good_list_and_is_a_fault_line() {
        let f = feed(500_000);
        let mut states = after_good(&f, 10);
        let good = states.get("datacenter_ips").unwrap().good.clone().unwrap();
        let line = states.record(&f, T0 + 3_600_000, Err("the list is empty".into()));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            (v["event"].as_str(), v["what"].as_str()),
            (Some("fault"), Some("feed"))
        );
        let problem = v["problem"].as_str().unwrap();
        assert!(
            problem.contains(
                "lists.datacenter_ips from https://lists.example/hosting.txt: the list is empty"
            ),
            "{problem}"
        );
        assert!(problem.contains(&format!("its last good list ({}) stays in force", good.kv)));
        let state = &states.get("datacenter_ips").unwrap();
        assert_eq!(state.good.as_ref(), Some(&good));
        assert_eq!(
            state.error,
            Some((T0 + 3_600_000, "the list is empty".into()))
        );
        assert_eq!(state.tried_at_ms, Some(T0 + 3_600_000));
        assert_eq!(states.in_force(&[f]), vec![("datacenter_ips", good.kv)]);
    }

    #[test]
    fn a_switch_is_logged_with_the_new_key_and_the_same_list_again_as_unchanged() {
        let f = feed(500_000);
        let mut states = after_good(&f, 10);
        let Judgement::Accept { kv, entries, .. } = states.judge(&f, Ok(&list_of(12))) else {
            panic!()
        };
        let line = states.record(
            &f,
            T0 + 1,
            Ok(Good {
                kv: kv.clone(),
                at_ms: T0 + 1,
                entries,
            }),
        );
        assert!(line.contains(r#""status":"switched""#), "{line}");
        assert!(line.contains(&kv));
        let line = states.record(
            &f,
            T0 + 2,
            Ok(Good {
                kv,
                at_ms: T0 + 2,
                entries,
            }),
        );
        assert!(line.contains(r#""status":"unchanged""#), "{line}");
    }

    #[test]
    fn the_state_reads_back_as_it_was_written_and_a_corrupt_one_is_named() {
        let f = feed(500_000);
        let mut states = after_good(&f, 3);
        states.record(&f, T0 + 5, Err("a \"quoted\"\nproblem".into()));
        let text = states.to_json();
        assert_eq!(FeedStates::read(Some(&text)).unwrap(), states);
        assert_eq!(FeedStates::read(None).unwrap(), FeedStates::default());
        for bad in ["[]", "{", r#"{"vpn_ips": {"good": {"kv": "iplist/x"}}}"#] {
            let e = FeedStates::read(Some(bad)).unwrap_err();
            assert_eq!(e.what, "feed state", "{bad}");
        }
    }

    #[test]
    fn the_status_names_every_feed_with_its_last_good_fetch_and_last_error() {
        let f = feed(500_000);
        let mut states = after_good(&f, 3);
        states.record(&f, T0 + 60_000, Err("the list is empty".into()));
        let other = Feed {
            list: "vpn_ips",
            ..feed(250_000)
        };
        let v: serde_json::Value =
            serde_json::from_str(&states.status_json(&[f, other], T0 + 60_000)).unwrap();
        let feeds = v["feeds"].as_array().unwrap();
        assert_eq!(feeds.len(), 2);
        assert_eq!(feeds[0]["last_good"]["entries"], 3);
        assert_eq!(feeds[0]["last_good"]["at"], "2026-06-01T00:00:00.000Z");
        assert_eq!(feeds[0]["last_good"]["hash"].as_str().unwrap().len(), 24);
        assert_eq!(feeds[0]["last_error"]["problem"], "the list is empty");
        assert_eq!(feeds[0]["due"], false);
        assert_eq!(feeds[1]["last_good"], serde_json::Value::Null);
        assert_eq!(feeds[1]["max_shrink"], 0.25);
        assert_eq!(feeds[1]["due"], true);
    }

    fn with_feeds(feeds: &str) -> String {
        DEMO.replacen(
            r#""version": 1,"#,
            &format!(r#""version": 1, "feeds": {feeds},"#),
            1,
        )
    }

    #[test]
    fn feeds_compile_with_their_defaults() {
        let doc = with_feeds(
            r#"[{"url": "https://lists.example/a.txt", "format": "ips", "every": "6h", "list": "fraud_ips"},
                {"url": "http://lists.example/b.txt", "format": "ips", "every": "5m", "list": "vpn_ips", "max_shrink": 0.1}]"#,
        );
        let c = Config::compile(&doc).unwrap();
        assert_eq!(c.feeds.len(), 2);
        assert_eq!(
            (c.feeds[0].every_minutes, c.feeds[0].max_shrink_ppm),
            (360, 500_000)
        );
        assert_eq!(
            (
                c.feeds[1].list,
                c.feeds[1].every_minutes,
                c.feeds[1].max_shrink_ppm
            ),
            ("vpn_ips", 5, 100_000)
        );
        assert_eq!(feeds_of(&doc).unwrap(), c.feeds);
        assert_eq!(
            feeds_of(&with_feeds(r#"{"url": 1}"#))
                .unwrap_err()
                .to_string(),
            "the config in KV is invalid: feeds: must be an array, found an object"
        );
    }

    #[test]
    fn a_feed_s_every_problem_is_named_with_its_path() {
        let doc = with_feeds(
            r#"[{"url": "ftp://x", "format": "drop", "every": "1m", "list": "datacenter_asns", "max_shrink": 1.5, "extra": 1},
                {"url": "https://a.example/", "format": "ips", "every": 30, "list": "fraud_ips"},
                {"url": "https://a.example/", "format": "ips", "every": "8d", "list": "fraud_ips"},
                {"list": "vpn_ips"}]"#,
        );
        let problems = crate::config::tests::problems(&doc);
        let expected = [
            "feeds[0].url: must be an http:// or https:// URL of at most 2048 bytes, without spaces",
            "feeds[0].format: unknown list format `drop`; one of ips, spamhaus, asn, asn-csv, range-csv, aws, gcp, azure, oracle, tor, icloud-relay",
            "feeds[0].every: must be a time such as \"30m\", \"6h\" or \"1d\", from 5m to 7d, found \"1m\"",
            "feeds[0].list: must name an IP list under `lists` (blocked_ips, allowed_ips, fraud_ips, datacenter_ips, vpn_ips), found \"datacenter_asns\"",
            "feeds[0].max_shrink: must be a number from 0 to 1, found 1.5",
            "feeds[0].extra: is not a known field (known here: url, format, every, list, max_shrink)",
            "feeds[1].every: must be a time such as \"30m\", \"6h\" or \"1d\", from 5m to 7d, found a number",
            "feeds[2].every: must be a time such as \"30m\", \"6h\" or \"1d\", from 5m to 7d, found \"8d\"",
            "feeds[2].list: `fraud_ips` is fed by an earlier feed; a list has one feed",
            "feeds[3].url: is required",
            "feeds[3].format: is required",
            "feeds[3].every: is required",
        ];
        for e in expected {
            assert!(
                problems.iter().any(|p| p == e),
                "missing {e:?} in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
        assert_eq!("ips".parse::<Format>(), Ok(Format::Ips));
    }

    #[test]
    fn the_document_in_force_uses_the_feed_s_last_good_list_in_place_of_its_own() {
        let doc = with_feeds(&format!(
            r#"[{{"url": "{URL}", "format": "ips", "every": "1h", "list": "datacenter_ips"}}]"#
        ));
        let f = feed(500_000);
        let states = after_good(&f, 3);
        let good = states.get("datacenter_ips").unwrap().good.clone().unwrap();
        let set = compile_list(Format::Ips, &list_of(3)).unwrap();
        let stored = StoredLists::from([(good.kv.clone(), set)]);
        // Before any good fetch the document's own list (here none) is in force.
        assert!(Config::compile(&doc)
            .unwrap()
            .lists
            .datacenter_ips
            .is_empty());
        let c = Config::compile_fed(&doc, &stored, &states, Secrets::None).unwrap();
        assert_eq!(c.lists.datacenter_ips.len(), 3);
        assert!(c.stored_lists.contains(&good.kv));
        assert_ne!(c.digest, Config::compile(&doc).unwrap().digest);
        // The state of a feed the document now points elsewhere is not used.
        let moved = doc.replace(URL, "https://other.example/list.txt");
        let c = Config::compile_fed(&moved, &stored, &states, Secrets::None).unwrap();
        assert!(c.lists.datacenter_ips.is_empty());
        // A good list the store does not hold (yet) refuses the compile: the last good config stays.
        let errors =
            Config::compile_fed(&doc, &StoredLists::new(), &states, Secrets::None).unwrap_err();
        assert_eq!(errors[0].path, "lists.datacenter_ips");
        assert!(errors[0].problem.contains("is not in KV"));
    }
}
