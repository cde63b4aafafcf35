//! A rule's filters, one file each: the filter's settings and how they are read from the document,
//! its default points, whether it judges the click or the conversion, what it has counted across
//! clicks, its judgement and its reason codes. The `filters!` list below is the only other place
//! a filter is named (its code, if it has its own, is listed in [`crate::verdict`]): it writes
//! [`FilterKind`] and hands each call to the filter's [`Judge`].
//!
//! Below the config, which holds a rule's filters: so a filter reads its settings through
//! [`Settings`], which the config's compiler provides, and judges what [`Seen`] hands it.

use std::fmt::Debug;
use std::ops::RangeInclusive;

use rustc_hash::FxHashSet;

use crate::click::{ClickParams, ClientInfo, Id};
use crate::ip::IpSet;
use crate::verdict::ReasonCode;

use asn_sets::AsnList;
use referrer::Referrers;
use share::{Measure, ShareBound, ShareSeen, ShareTally, MAX_SHARES};

pub mod share;

/// The AS lists' built-in sets, their data beside them.
pub(crate) mod asn_sets;
mod asn_sets_data;

/// The range of `duplicate_ip.max`, `duplicate_device_id.max` and `sub_id_validity.max`.
pub(crate) const COUNT: RangeInclusive<u32> = 1..=1_000_000;

/// Per-offer-and-affiliate counts kept outside the isolate (a Durable Object), read for this click.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Clicks from this IP on this offer and affiliate in the rule's window, this one included.
    pub ip_clicks: u32,
    /// Distinct sub IDs seen on this offer and affiliate, this one included.
    pub distinct_sub_ids: u32,
    /// Clicks from this device id in the rule's window, this one included, by
    /// [`DeviceScope`](duplicate_device_id::DeviceScope): on the offer (from its device ledger)
    /// and on the offer and affiliate; `None` where it was not read.
    pub device_clicks: [Option<u32>; 2],
    /// The share filters' tallies on this offer and affiliate, each over its window, this click
    /// included where it counts toward one.
    pub shares: [Option<(Measure, ShareTally)>; MAX_SHARES],
}

impl Counters {
    /// The tally of `measure`, when it was read.
    pub fn share(&self, measure: Measure) -> Option<ShareTally> {
        self.shares
            .iter()
            .flatten()
            .find(|(m, _)| *m == measure)
            .map(|(_, t)| *t)
    }
}

/// What a filter needs counted across clicks, for the network's object to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Clicks per IP (as [`Counters::ip_clicks`]) over the last `window_hours`.
    IpClicks { window_hours: u32 },
    /// Distinct sub IDs (as [`Counters::distinct_sub_ids`]).
    DistinctSubIds,
    /// Clicks per device id over the last `window_hours` (as [`Counters::device_clicks`]).
    DeviceClicks {
        window_hours: u32,
        scope: duplicate_device_id::DeviceScope,
    },
    /// A share over the last `window_hours` (as [`Counters::share`]); `clicks` when the rule's
    /// clicks count toward it, not only read it.
    Share {
        measure: Measure,
        window_hours: u32,
        clicks: bool,
    },
}

/// The lists filters and allowlists read, compiled from `lists` in the config.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    pub(crate) allowed_ips: IpSet,
    pub(crate) allowed_affiliates: FxHashSet<Id>,
    pub(crate) allowed_sub_ids: FxHashSet<String>,
    pub fraud_ips: IpSet,
    pub(crate) fraud_device_ids: FxHashSet<String>,
    pub datacenter_asns: AsnList,
    pub datacenter_ips: IpSet,
    pub(crate) vpn_asns: AsnList,
    pub(crate) vpn_ips: IpSet,
    pub(crate) blocked_referrers: Referrers,
    /// Relays that carry people's own traffic (iCloud Private Relay, or one the operator names),
    /// by name: a click from one is never judged by its network.
    pub relays: Vec<(String, IpSet)>,
}

impl Lists {
    /// The relay whose ranges hold `ip`, by name.
    pub fn relay(&self, ip: Option<std::net::IpAddr>) -> Option<&str> {
        let ip = ip?;
        self.relays
            .iter()
            .find(|(_, set)| set.lookup(ip).is_some())
            .map(|(name, _)| name.as_str())
    }
}

/// One click as a rule's filters see it.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub click: &'a ClickParams,
    pub client: &'a ClientInfo,
    pub lists: &'a Lists,
    /// The offer's countries, when it has any.
    pub(crate) geo: Option<&'a geo::Geo>,
    /// The click's value of the parameter the rule reads as its sub ID.
    pub sub_id: Option<&'a str>,
    /// The network's counts for this click, when they could be read.
    pub counters: Option<Counters>,
}

/// What a filter found: its code, what it matched, the click's value that matched, and the points
/// that adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    pub code: ReasonCode,
    pub matched: String,
    pub value: String,
    pub points: u32,
}

/// A filter that could not say: the address it needed was unreadable, or its counts are missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// Which event a filter judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Click,
    Conversion,
}

/// A filter's own fields in the document, read by the config's compiler: each call reports a
/// missing, wrong or out-of-range value under the field's path and answers `None` or the default.
pub trait Settings {
    fn u32_in(&mut self, key: &'static str, range: RangeInclusive<u32>) -> Option<u32>;
    fn u64_in(&mut self, key: &'static str, range: RangeInclusive<u64>) -> Option<u64>;
    /// One of the named choices; the first when the field is absent or wrong.
    fn choice<T: Copy>(&mut self, key: &'static str, choices: &[(&'static str, T)]) -> T
    where
        Self: Sized;
    /// The object under `key`, handed to `read` when it is there; its unknown fields are reported.
    fn object(&mut self, key: &'static str, read: &mut dyn FnMut(&mut dyn Settings));
}

/// One filter: what the list below asks of each.
pub(crate) trait Judge: Sized + Clone + PartialEq + Eq + Debug {
    /// Its `type` in the document.
    const NAME: &'static str;
    /// Points a firing filter adds unless the rule sets its own.
    const POINTS: u32;
    const STAGE: Stage;
    /// Every code it fires with.
    const CODES: &'static [ReasonCode];

    /// Its settings, from the filter's object in the document.
    fn compile(settings: &mut impl Settings) -> Self;

    /// What it needs counted across clicks.
    fn counts(&self) -> Option<Count> {
        None
    }

    /// Whether link previews are judged like any client rather than let through.
    fn declines_previews(&self) -> bool {
        false
    }

    /// Its judgement of a click, worth `points` when it fires. Only asked at [`Stage::Click`].
    fn judge_click(&self, _seen: &Seen, _points: u32) -> Result<Option<Hit>, Unavailable> {
        Ok(None)
    }

    /// Its judgement of a conversion `ctit_ms` after its click: the code and why. Only asked at
    /// [`Stage::Conversion`].
    fn judge_conversion(&self, _ctit_ms: u64) -> Option<(ReasonCode, String)> {
        None
    }

    /// What it counts as a share and its bound; `None` for a filter that judges each event alone.
    fn share(&self) -> Option<(Measure, ShareBound)> {
        None
    }

    /// Whether this click is a hit of its share; `None` when it does not count toward one (or
    /// cannot say whether it is a hit).
    fn share_hit(&self, _seen: &Seen) -> Option<bool> {
        None
    }
}

/// A share filter's judgement of a click or a conversion: a hit worth `points` while its tally is
/// beyond its bound; `Err` when the tally could not be read. Not generic over the filter: one copy
/// serves them all.
pub(crate) fn judge_share(
    filter: &'static str,
    share: Option<(Measure, ShareBound)>,
    counters: Option<&Counters>,
    points: u32,
) -> Result<Option<Hit>, Unavailable> {
    let Some((measure, bound)) = share else {
        return Ok(None);
    };
    let tally = counters.and_then(|c| c.share(measure)).ok_or(Unavailable)?;
    let seen = ShareSeen {
        filter,
        measure,
        bound,
        tally,
    };
    Ok(seen.exceeded().then(|| Hit {
        code: measure.code(),
        matched: format!(
            "share above {} of at least {} in {}h",
            share::thousandths(bound.percent * 10),
            bound.min,
            bound.window_hours
        ),
        value: seen.to_json(),
        points,
    }))
}

/// A hit of the client's address in `set`; `Err` when the address could not be read and the list
/// could have held it.
pub(crate) fn ip_hit(
    set: &IpSet,
    client: &ClientInfo,
    code: ReasonCode,
    points: u32,
) -> Result<Option<Hit>, Unavailable> {
    if client.ip_unreadable && !set.is_empty() {
        return Err(Unavailable);
    }
    Ok(client.ip.and_then(|ip| {
        set.lookup(ip).map(|entry| Hit {
            code,
            matched: entry.to_string(),
            value: ip.to_string(),
            points,
        })
    }))
}

/// Writes [`FilterKind`] from the list below, a filter per line: its variant, its file and the
/// type of its settings.
macro_rules! filters {
    ($($variant:ident($file:ident::$settings:ident),)*) => {
        $(pub mod $file;)*

        /// A rule's filter and its settings.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum FilterKind {
            $($variant($file::$settings),)*
        }

        impl FilterKind {
            /// Every filter's `type`, in the list's order.
            pub(crate) const NAMES: &'static [&'static str] = &[$(<$file::$settings as Judge>::NAME,)*];

            /// The filter of `type` `name` with its settings; `None` for a name no filter has.
            pub fn compile(name: &str, settings: &mut impl Settings) -> Option<FilterKind> {
                $(
                    if name == <$file::$settings as Judge>::NAME {
                        return Some(FilterKind::$variant(Judge::compile(settings)));
                    }
                )*
                None
            }

            pub fn name(&self) -> &'static str {
                match self {
                    $(FilterKind::$variant(_) => <$file::$settings as Judge>::NAME,)*
                }
            }

            pub(crate) fn default_points(&self) -> u32 {
                match self {
                    $(FilterKind::$variant(_) => <$file::$settings as Judge>::POINTS,)*
                }
            }

            pub(crate) fn stage(&self) -> Stage {
                match self {
                    $(FilterKind::$variant(_) => <$file::$settings as Judge>::STAGE,)*
                }
            }

            pub(crate) fn is_click_level(&self) -> bool {
                self.stage() == Stage::Click
            }

            pub fn codes(&self) -> &'static [ReasonCode] {
                match self {
                    $(FilterKind::$variant(_) => <$file::$settings as Judge>::CODES,)*
                }
            }

            pub(crate) fn counts(&self) -> Option<Count> {
                match self {
                    $(FilterKind::$variant(s) => s.counts(),)*
                }
            }

            pub(crate) fn declines_previews(&self) -> bool {
                match self {
                    $(FilterKind::$variant(s) => s.declines_previews(),)*
                }
            }

            pub(crate) fn judge_click(&self, seen: &Seen, points: u32) -> Result<Option<Hit>, Unavailable> {
                match self {
                    $(FilterKind::$variant(s) => s.judge_click(seen, points),)*
                }
            }

            pub(crate) fn judge_conversion(&self, ctit_ms: u64) -> Option<(ReasonCode, String)> {
                match self {
                    $(FilterKind::$variant(s) => s.judge_conversion(ctit_ms),)*
                }
            }

            pub fn share(&self) -> Option<(Measure, ShareBound)> {
                match self {
                    $(FilterKind::$variant(s) => s.share(),)*
                }
            }

            pub(crate) fn share_hit(&self, seen: &Seen) -> Option<bool> {
                match self {
                    $(FilterKind::$variant(s) => s.share_hit(seen),)*
                }
            }

        }
    };
}

filters! {
    Bot(bot::BotSettings),
    FraudDatabase(fraud_database::FraudDatabase),
    DatacenterVpn(datacenter_vpn::DatacenterVpn),
    Geo(geo::OfferGeo),
    Referrer(referrer::Referrer),
    OldOsBrowser(old_os_browser::MinVersions),
    Spoof(spoof::Spoof),
    DuplicateIp(duplicate_ip::DuplicateIp),
    SubIdValidity(sub_id_validity::SubIdValidity),
    MinClickToConversion(min_click_to_conversion::MinClickToConversion),
    MaxClickToConversion(max_click_to_conversion::MaxClickToConversion),
    ThirdPartyRejection(third_party_rejection::ThirdPartyRejection),
    ClickSpam(click_spam::ClickSpam),
    LowSessionTime(low_session_time::LowSessionTime),
    DuplicateDeviceId(duplicate_device_id::DuplicateDeviceId),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::rules::Probability;
    use crate::config::Config;
    use crate::decide::harness::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_clean_click_fires_no_filter() {
        let cfg = config(&rule("r", r#", "decline": "low_and_higher""#));
        let clean = run(&cfg, Click::default());
        assert!(!clean.is_blocked());
        assert_eq!(
            clean.assessment.as_ref().unwrap().probability,
            Probability::None
        );
    }

    /// A reason's code names the filter that fired: two filters sharing one would blur the report.
    #[test]
    fn no_two_filters_share_a_name_or_a_code() {
        let names: std::collections::HashSet<_> = FilterKind::NAMES.iter().collect();
        assert_eq!(names.len(), FilterKind::NAMES.len());
        let mut codes = std::collections::HashSet::new();
        for name in FilterKind::NAMES {
            let doc = format!(
                r#"{{"version": 1, "offers": [{{"id": "1", "landing_url": "https://x.example/"}}],
                    "rules": [{{"id": "r", "created_at": "2026-11-01", "scope": {{"offers": ["1"]}},
                               "strategy": {{"filters": [{{"type": "{name}"}}]}}}}]}}"#
            );
            let config = Config::compile(&doc).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let kind = &config.rules[0].filters[0].kind;
            assert_eq!(kind.name(), *name);
            assert!(!kind.codes().is_empty(), "{name} has no code");
            for code in kind.codes() {
                assert!(codes.insert(*code), "{code} is {name}'s and another's");
                assert_ne!(*code, ReasonCode::FilterUnavailable, "{name}");
            }
        }
    }

    #[test]
    fn an_unknown_filter_is_refused_with_every_filter_named() {
        let doc = r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"}],
            "rules": [{"id": "r", "created_at": "2026-11-01", "scope": {"offers": ["1"]},
                       "strategy": {"filters": [{"type": "telepathy"}]}}]}"#;
        let errors = Config::compile(doc).unwrap_err();
        // A filter added later is named after these, in the list's order.
        assert_eq!(errors.len(), 1, "{errors:?}");
        let text = errors[0].to_string();
        assert!(
            text.starts_with(
                "rules[0].strategy.filters[0].type: unknown filter `telepathy`; known: bot, \
                 fraud_database, datacenter_vpn, geo, referrer, old_os_browser, spoof, \
                 duplicate_ip, sub_id_validity, min_click_to_conversion, max_click_to_conversion, \
                 third_party_rejection, click_spam, low_session_time, duplicate_device_id"
            ),
            "{text}"
        );
    }
}
