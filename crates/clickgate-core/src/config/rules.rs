//! The rules of the config document, compiled: which clicks a rule covers, which filters it runs
//! with which settings, its decline threshold and action. Also the order rules are chosen in.
//!
//! One rule decides a click. When several cover it, the winner is the highest `priority`, then the
//! most specific scope (most of offers, advertisers and affiliates given as explicit lists), then
//! the newest `created_at`, then the smallest id, so the verdict never depends on the order of the
//! rules in the document.

use std::ops::RangeInclusive;

use rustc_hash::FxHashSet;

use super::error::{err, ConfigError};
use super::fields::{id_value, kind, At, Fields};
use super::json::Value;
use super::offers::Offer;
use super::ranges::RANGES;
use crate::click::{ClickParams, Id, SOURCE_ID, SUB_IDS};
use crate::filters::{
    bot::BotSettings,
    click_spam::{self, ClickSpam},
    datacenter_vpn::{self, DatacenterVpn},
    duplicate_device_id::{self, DuplicateDeviceId},
    duplicate_ip::{self, DuplicateIp},
    fraud_database::FraudDatabase,
    geo::OfferGeo,
    low_session_time::{self, LowSessionTime},
    max_click_to_conversion::MaxClickToConversion,
    min_click_to_conversion::MinClickToConversion,
    old_os_browser::{self, MinVersions},
    referrer::Referrer,
    share::{ShareBound, MAX_SHARES},
    sub_id_validity::SubIdValidity,
    third_party_rejection::ThirdPartyRejection,
    FilterKind, Settings,
};
use crate::ip::sort_indices;
use crate::template::Template;
use crate::time::parse_instant;
use crate::verdict::FaultMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Probability {
    None,
    Low,
    Medium,
    High,
}

impl Probability {
    /// The documented cut-offs: 80 points and up is high, 50 medium, anything above 0 low.
    pub(crate) fn from_score(score: u32) -> Probability {
        match score {
            0 => Probability::None,
            1..=49 => Probability::Low,
            50..=79 => Probability::Medium,
            _ => Probability::High,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Probability::None => "none",
            Probability::Low => "low",
            Probability::Medium => "medium",
            Probability::High => "high",
        }
    }
}

/// The probability from which a rule declines a click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Threshold {
    DoNotDecline,
    High,
    MediumAndHigher,
    LowAndHigher,
}

impl Threshold {
    pub(crate) fn declines(self, p: Probability) -> bool {
        match self {
            Threshold::DoNotDecline => false,
            Threshold::High => p >= Probability::High,
            Threshold::MediumAndHigher => p >= Probability::Medium,
            Threshold::LowAndHigher => p >= Probability::Low,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Click,
    Conversion,
    Both,
}

#[derive(Debug, Clone)]
pub enum Action {
    Block,
    /// Send a declined click to a fallback offer instead of the 1021 page.
    Redirect(Template),
}

/// One dimension of a scope: everything but the exclusions, or only the listed ids.
#[derive(Debug, Clone, Default)]
pub struct Dim {
    include: Option<FxHashSet<Id>>,
    exclude: FxHashSet<Id>,
}

impl Dim {
    fn covers(&self, id: Option<&Id>) -> bool {
        let included = match (&self.include, id) {
            (None, _) => true,
            (Some(set), Some(id)) => set.contains(id),
            (Some(_), None) => false,
        };
        included && !id.is_some_and(|id| self.exclude.contains(id))
    }

    fn is_specific(&self) -> bool {
        self.include.is_some()
    }

    /// Every id the dimension names, included or excluded, for checking them against the document.
    pub(crate) fn named_ids(&self) -> impl Iterator<Item = &Id> {
        self.include.iter().flatten().chain(self.exclude.iter())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub offers: Dim,
    pub advertisers: Dim,
    pub(crate) affiliates: Dim,
}

impl Scope {
    /// Whether the scope covers a click on an offer the document does not list (so it has no
    /// entry in the per-offer index) from `aff_id`.
    pub(crate) fn covers_unlisted(&self, offer: &Offer, aff_id: &Id) -> bool {
        self.offers.covers(Some(&offer.id))
            && self.advertisers.covers(offer.advertiser_id.as_ref())
            && self.affiliates.covers(Some(aff_id))
    }

    fn specificity(&self) -> u8 {
        [&self.offers, &self.advertisers, &self.affiliates]
            .iter()
            .filter(|d| d.is_specific())
            .count() as u8
    }
}

/// Which click parameter a rule reads as the sub ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubIdParam {
    Sub(usize),
    SourceId,
}

impl SubIdParam {
    /// The parameter by its name in the click link (`sub1`..`sub5` or `source_id`).
    pub(crate) fn named(name: &str) -> Option<SubIdParam> {
        if name == SOURCE_ID {
            return Some(SubIdParam::SourceId);
        }
        SUB_IDS.iter().position(|s| *s == name).map(SubIdParam::Sub)
    }

    pub(crate) fn value<'a>(&self, click: &'a ClickParams) -> Option<&'a str> {
        match self {
            SubIdParam::Sub(i) => click.subs[*i].as_deref(),
            SubIdParam::SourceId => click.source_id.as_deref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub kind: FilterKind,
    pub points: u32,
}

impl Filter {
    fn new(kind: FilterKind) -> Filter {
        let points = kind.default_points();
        Filter { kind, points }
    }
}

/// The detection strategies of the market's presets, kept as data (Affise's tables for 24metrics).
/// A share is "50% > 1h CTIT" (click spam), "50% < 1min CTIT" (low session time), "60% > Old
/// devices", or the `ecommerce` table's VPN "Below 10%"; the tables give no minimum count or
/// window, so those are the filters' defaults. Duplicate Device ID is "Same offer / All
/// affiliates" with no count or window (the filter's defaults: once in 24 hours), and for `lead`
/// "No duplicates": once in as many hours as the counts keep (720).
pub fn preset(name: &str) -> Option<Vec<Filter>> {
    const HOUR: u64 = 3600;
    const DAY: u64 = 24 * HOUR;
    // (duplicates per IP, min and max seconds to conversion, sub IDs, click spam (percent, past
    // seconds), low session time (percent, under seconds), old devices percent, VPN share
    // percent, hours within which a device clicks an offer once across its affiliates)
    type Table = (
        u32,
        u64,
        u64,
        Option<u32>,
        Option<(u32, u64)>,
        (u32, u64),
        u32,
        Option<u32>,
        Option<u32>,
    );
    let day = duplicate_device_id::DEFAULT.window_hours;
    let (dup_max, min_ctc, max_ctc, sub_ids, spam, short, old, vpn, device_window): Table =
        match name {
            "mobile_cpi" => (
                1,
                20,
                DAY,
                Some(700),
                Some((50, HOUR)),
                (50, 60),
                60,
                None,
                Some(day),
            ),
            "mobile_cpa" => (
                3,
                15,
                DAY,
                Some(700),
                Some((60, 2 * HOUR)),
                (60, 60),
                70,
                None,
                Some(day),
            ),
            "lead" => (
                1,
                25,
                DAY,
                Some(500),
                None,
                (50, 60),
                70,
                None,
                Some(*duplicate_ip::WINDOW_HOURS.end()),
            ),
            "ecommerce" => (
                3,
                40,
                14 * DAY,
                None,
                Some((50, DAY)),
                (50, 60),
                70,
                Some(10),
                None,
            ),
            _ => return None,
        };
    let with_percent = |default: ShareBound, percent| ShareBound { percent, ..default };
    let mut kinds = vec![
        FilterKind::DuplicateIp(DuplicateIp {
            max: dup_max,
            window_hours: 24,
        }),
        FilterKind::FraudDatabase(FraudDatabase),
        FilterKind::Bot(BotSettings::default()),
        FilterKind::DatacenterVpn(DatacenterVpn {
            share: vpn.map(|p| with_percent(datacenter_vpn::SHARE, p)),
        }),
        FilterKind::Geo(OfferGeo),
        FilterKind::Referrer(Referrer),
        FilterKind::OldOsBrowser(MinVersions {
            share: Some(with_percent(old_os_browser::SHARE, old)),
            ..MinVersions::default()
        }),
        FilterKind::MinClickToConversion(MinClickToConversion { seconds: min_ctc }),
        FilterKind::MaxClickToConversion(MaxClickToConversion { seconds: max_ctc }),
        FilterKind::ThirdPartyRejection(ThirdPartyRejection),
    ];
    if let Some(max) = sub_ids {
        kinds.push(FilterKind::SubIdValidity(SubIdValidity { max }));
    }
    if let Some((percent, seconds)) = spam {
        kinds.push(FilterKind::ClickSpam(ClickSpam {
            seconds,
            bound: with_percent(click_spam::DEFAULT.bound, percent),
        }));
    }
    let (percent, seconds) = short;
    kinds.push(FilterKind::LowSessionTime(LowSessionTime {
        seconds,
        bound: with_percent(low_session_time::DEFAULT.bound, percent),
    }));
    kinds.extend(device_window.map(|window_hours| {
        FilterKind::DuplicateDeviceId(DuplicateDeviceId {
            window_hours,
            ..duplicate_device_id::DEFAULT
        })
    }));
    Some(kinds.into_iter().map(Filter::new).collect())
}

pub(crate) const PRESETS: [&str; 4] = ["mobile_cpi", "mobile_cpa", "lead", "ecommerce"];

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: Id,
    pub name: Option<String>,
    pub(crate) enabled: bool,
    pub(crate) created_at_ms: u64,
    pub priority: i64,
    pub scope: Scope,
    pub(crate) level: Level,
    pub monitor: bool,
    pub sub_id: SubIdParam,
    pub filters: Vec<Filter>,
    pub(crate) threshold: Threshold,
    pub action: Action,
    pub(crate) on_fault: FaultMode,
}

/// Precedence, best first: highest priority, most specific scope, newest, then smallest id.
fn precedence(a: &Rule, b: &Rule) -> std::cmp::Ordering {
    (b.priority, b.scope.specificity(), b.created_at_ms)
        .cmp(&(a.priority, a.scope.specificity(), a.created_at_ms))
        .then_with(|| a.id.cmp(&b.id))
}

/// The enabled rules judging `stage` (its own and the `both` ones), best first.
pub(crate) fn in_order(rules: &[Rule], stage: Level) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rules.len())
        .filter(|&i| rules[i].enabled && (rules[i].level == stage || rules[i].level == Level::Both))
        .collect();
    // Ties fall back to the document's order, as the stable sort kept them, so the unstable one
    // (whose copy the Worker has anyway) gives the same order.
    sort_indices(&mut order, &|a, b| {
        precedence(&rules[a], &rules[b]).then(a.cmp(&b))
    });
    order
}

/// The rules of `order` (the enabled rules judging one stage, best first, from [`in_order`])
/// whose offer and advertiser parts cover `offer`, in that order: the offer's candidates at that
/// stage (see [`Candidates`](super::offers::Candidates)). A click then only checks affiliates,
/// and the first rule that covers it decides.
pub(crate) fn covering(rules: &[Rule], order: &[usize], offer: &Offer) -> Vec<usize> {
    order
        .iter()
        .copied()
        .filter(|&i| {
            let scope = &rules[i].scope;
            scope.offers.covers(Some(&offer.id))
                && scope.advertisers.covers(offer.advertiser_id.as_ref())
        })
        .collect()
}

/// The rule that decides a click on an offer, from the offer's candidates in precedence order.
pub fn select<'a>(rules: &'a [Rule], candidates: &[usize], aff_id: &Id) -> Option<&'a Rule> {
    candidates
        .iter()
        .map(|&i| &rules[i])
        .find(|r| r.scope.affiliates.covers(Some(aff_id)))
}

// ---- compiling rules from the config document ----

fn compile_dim(value: Option<&Value>, path: At, errors: &mut Vec<ConfigError>) -> Dim {
    let ids = |list: &Vec<Value>, path: &At, errors: &mut Vec<ConfigError>| -> FxHashSet<Id> {
        list.iter()
            .enumerate()
            .filter_map(|(i, v)| id_value(v, || format!("{path}[{i}]"), errors))
            .collect()
    };
    match value {
        None => Dim::default(),
        Some(Value::String(s)) if s == "all" => Dim::default(),
        Some(Value::Array(list)) => Dim {
            include: Some(ids(list, &path, errors)),
            exclude: FxHashSet::default(),
        },
        Some(obj @ Value::Object(_)) => {
            let Some(mut f) = Fields::of(obj, path, errors) else {
                return Dim::default();
            };
            let include = match f.get("include") {
                None => None,
                Some(Value::String(s)) if s == "all" => None,
                Some(Value::Array(list)) => Some(ids(list, &At::Key(&f.path, "include"), errors)),
                Some(other) => {
                    errors.push(err(
                        &f.child("include"),
                        format!("must be \"all\" or a list of ids, found {}", kind(other)),
                    ));
                    None
                }
            };
            let exclude = f
                .array("exclude", errors)
                .map(|l| ids(l, &At::Key(&f.path, "exclude"), errors))
                .unwrap_or_default();
            f.finish(errors);
            Dim { include, exclude }
        }
        Some(other) => {
            errors.push(err(
                &path.to_string(),
                format!(
                    "must be \"all\", a list of ids, or {{include, exclude}}; found {}",
                    kind(other)
                ),
            ));
            Dim::default()
        }
    }
}

fn compile_filter(value: &Value, path: At, errors: &mut Vec<ConfigError>) -> Option<Filter> {
    let mut f = Fields::of(value, path, errors)?;
    let kind_name = f.required_string("type", errors);
    let points = f.u32_in("points", RANGES.points, errors);
    let kind = kind_name.and_then(|name| {
        let kind = FilterKind::compile(name, &mut Reading { f: &mut f, errors });
        if kind.is_none() {
            errors.push(err(
                &f.child("type"),
                format!(
                    "unknown filter `{name}`; known: {}",
                    FilterKind::NAMES.join(", ")
                ),
            ));
        }
        kind
    });
    f.finish(errors);
    let kind = kind?;
    let points = points.unwrap_or_else(|| kind.default_points());
    Some(Filter { kind, points })
}

/// A filter's fields as its own file reads them: through the compiler's checks and errors.
struct Reading<'r, 'a, 'p> {
    f: &'r mut Fields<'a, 'p>,
    errors: &'r mut Vec<ConfigError>,
}

impl Settings for Reading<'_, '_, '_> {
    fn u32_in(&mut self, key: &'static str, range: RangeInclusive<u32>) -> Option<u32> {
        self.f.u32_in(key, range, self.errors)
    }

    fn u64_in(&mut self, key: &'static str, range: RangeInclusive<u64>) -> Option<u64> {
        self.f.u64_in(key, range, self.errors)
    }

    fn choice<T: Copy>(&mut self, key: &'static str, choices: &[(&'static str, T)]) -> T {
        self.f.choice(key, choices, self.errors)
    }

    fn object(&mut self, key: &'static str, read: &mut dyn FnMut(&mut dyn Settings)) {
        let Some(value) = self.f.get(key) else {
            return;
        };
        if let Some(mut inner) = Fields::of(value, self.f.child(key), self.errors) {
            read(&mut Reading {
                f: &mut inner,
                errors: self.errors,
            });
            inner.finish(self.errors);
        }
    }
}

pub(crate) fn compile_rule(value: &Value, path: At, errors: &mut Vec<ConfigError>) -> Option<Rule> {
    let mut f = Fields::of(value, path, errors)?;
    let id = f.id("id", true, errors);
    let name = f.string("name", errors).map(str::to_owned);
    let enabled = f.choice("status", &[("active", true), ("paused", false)], errors);
    let created_at_ms = match f.required("created_at", errors) {
        Some(Value::String(s)) => parse_instant(s)
            .map_err(|p| errors.push(err(&f.child("created_at"), p)))
            .ok(),
        Some(other) => {
            errors.push(err(
                &f.child("created_at"),
                format!("must be an RFC 3339 time, found {}", kind(other)),
            ));
            None
        }
        None => None,
    };
    let priority = f
        .i64_in("priority", RANGES.priority, errors)
        .unwrap_or_default();
    let scope = match f.required("scope", errors) {
        Some(v) => {
            let mut sf = Fields::of(v, At::Key(&f.path, "scope"), errors);
            let scope = match sf.as_mut() {
                Some(sf) => Scope {
                    offers: compile_dim(sf.get("offers"), At::Key(&sf.path, "offers"), errors),
                    advertisers: compile_dim(
                        sf.get("advertisers"),
                        At::Key(&sf.path, "advertisers"),
                        errors,
                    ),
                    affiliates: compile_dim(
                        sf.get("affiliates"),
                        At::Key(&sf.path, "affiliates"),
                        errors,
                    ),
                },
                None => Scope::default(),
            };
            if let Some(sf) = sf {
                sf.finish(errors);
                if scope.specificity() == 0 {
                    errors.push(err(
                        &f.child("scope"),
                        "at least one of offers, advertisers and affiliates must be a list of specific ids",
                    ));
                }
            }
            Some(scope)
        }
        None => None,
    };
    let level = f.choice(
        "level",
        &[
            ("click", Level::Click),
            ("conversion", Level::Conversion),
            ("both", Level::Both),
        ],
        errors,
    );
    let monitor = match f.get("ignore_results") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            errors.push(err(
                &f.child("ignore_results"),
                format!("must be true or false, found {}", kind(other)),
            ));
            false
        }
    };
    let sub_id = match f
        .string("sub_id_param", errors)
        .map(|name| (name, SubIdParam::named(name)))
    {
        None => SubIdParam::Sub(0),
        Some((_, Some(param))) => param,
        Some((other, None)) => {
            errors.push(err(
                &f.child("sub_id_param"),
                format!("must be sub1..sub5 or source_id, found \"{other}\""),
            ));
            SubIdParam::Sub(0)
        }
    };
    let filters = match f.required("strategy", errors) {
        Some(Value::String(name)) => preset(name).or_else(|| {
            errors.push(err(
                &f.child("strategy"),
                format!("unknown preset `{name}`; known: {}", PRESETS.join(", ")),
            ));
            None
        }),
        Some(obj @ Value::Object(_)) => {
            let mut sf = Fields::of(obj, At::Key(&f.path, "strategy"), errors)?;
            let list = match sf.required_array("filters", errors) {
                Some(list) if !list.is_empty() => {
                    let at = At::Key(&sf.path, "filters");
                    let filters: Vec<Filter> = list
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| compile_filter(v, At::Index(&at, i), errors))
                        .collect();
                    // The counts a click reads hold a fixed number of shares.
                    // Counted without a sort, which would cost the Worker a routine of its own.
                    let mut measures = Vec::new();
                    for (m, _) in filters.iter().filter_map(|f| f.kind.share()) {
                        if !measures.contains(&m) {
                            measures.push(m);
                        }
                    }
                    if measures.len() > MAX_SHARES {
                        errors.push(err(
                            &sf.child("filters"),
                            format!("may count at most {MAX_SHARES} different shares"),
                        ));
                    }
                    Some(filters)
                }
                Some(_) => {
                    errors.push(err(&sf.child("filters"), "must list at least one filter"));
                    None
                }
                None => None,
            };
            sf.finish(errors);
            list
        }
        Some(other) => {
            errors.push(err(
                &f.child("strategy"),
                format!(
                    "must be a preset name or {{\"filters\": [...]}}, found {}",
                    kind(other)
                ),
            ));
            None
        }
        None => None,
    };
    let threshold = match f.string("decline", errors) {
        None | Some("high") => Threshold::High,
        Some("medium_and_higher") => Threshold::MediumAndHigher,
        Some("low_and_higher") => Threshold::LowAndHigher,
        Some("do_not_decline") => Threshold::DoNotDecline,
        Some(other) => {
            errors.push(err(
                &f.child("decline"),
                format!("must be do_not_decline, high, medium_and_higher or low_and_higher, found \"{other}\""),
            ));
            Threshold::High
        }
    };
    let action = match f.get("action") {
        None => Some(Action::Block),
        Some(Value::String(s)) if s == "block" => Some(Action::Block),
        Some(obj @ Value::Object(_)) => {
            let mut af = Fields::of(obj, f.child("action"), errors)?;
            let t = af.template("redirect", errors);
            af.finish(errors);
            t.map(Action::Redirect)
        }
        Some(other) => {
            errors.push(err(
                &f.child("action"),
                format!("must be \"block\" or {{\"redirect\": URL}}, found {other}"),
            ));
            None
        }
    };
    let on_fault = f.choice("on_filter_fault", FaultMode::CHOICES, errors);
    f.finish(errors);
    Some(Rule {
        id: id?,
        name,
        enabled,
        created_at_ms: created_at_ms?,
        priority,
        scope: scope?,
        level,
        monitor,
        sub_id,
        filters: filters?,
        threshold,
        action: action?,
        on_fault,
    })
}

/// A list of ASNs: numbers, or strings like "AS16509".
pub(crate) fn compile_asns(
    list: &[Value],
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> FxHashSet<u32> {
    // Sized for the list at once: growing a table step by step to 2,000 numbers rehashed them
    // all half a dozen times, half of compiling the list.
    let mut out = FxHashSet::with_capacity_and_hasher(list.len(), Default::default());
    for (i, v) in list.iter().enumerate() {
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s
                .strip_prefix("AS")
                .or(s.strip_prefix("as"))
                .unwrap_or(s)
                .parse()
                .ok(),
            _ => None,
        };
        match n {
            Some(n) if n > 0 && n <= u64::from(u32::MAX) => {
                out.insert(n as u32);
            }
            _ => errors.push(err(
                &format!("{path}[{i}]"),
                "must be an AS number (16509 or \"AS16509\")",
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::duplicate_device_id::DeviceScope;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn probability_cut_offs() {
        assert_eq!(Probability::from_score(0), Probability::None);
        assert_eq!(Probability::from_score(30), Probability::Low);
        assert_eq!(Probability::from_score(49), Probability::Low);
        assert_eq!(Probability::from_score(50), Probability::Medium);
        assert_eq!(Probability::from_score(79), Probability::Medium);
        assert_eq!(Probability::from_score(80), Probability::High);
    }

    #[test]
    fn thresholds() {
        use Probability::*;
        assert!(!Threshold::DoNotDecline.declines(High));
        assert!(Threshold::High.declines(High) && !Threshold::High.declines(Medium));
        assert!(
            Threshold::MediumAndHigher.declines(Medium)
                && !Threshold::MediumAndHigher.declines(Low)
        );
        assert!(Threshold::LowAndHigher.declines(Low) && !Threshold::LowAndHigher.declines(None));
    }

    /// The published strategy tables (Affise's "Detection strategy" section for 24metrics): per
    /// preset, duplicate IPs allowed in the last 24 h, the minimum and maximum click-to-conversion
    /// time in seconds, and the sub IDs allowed per offer and affiliate (eCommerce checks none).
    /// Name, duplicates per IP, min and max seconds to conversion, sub IDs; click spam (percent,
    /// past seconds), low session time (percent, under seconds), old devices percent, VPN
    /// percent; the hours within which a device id clicks an offer once across its affiliates.
    type Published = (
        &'static str,
        u32,
        u64,
        u64,
        Option<u32>,
        Option<(u32, u64)>,
        (u32, u64),
        u32,
        Option<u32>,
        Option<u32>,
    );
    const PUBLISHED: [Published; 4] = [
        (
            "mobile_cpi",
            1,
            20,
            24 * 3600,
            Some(700),
            Some((50, 3600)),
            (50, 60),
            60,
            None,
            Some(24),
        ),
        (
            "mobile_cpa",
            3,
            15,
            24 * 3600,
            Some(700),
            Some((60, 7200)),
            (60, 60),
            70,
            None,
            Some(24),
        ),
        (
            "lead",
            1,
            25,
            24 * 3600,
            Some(500),
            None,
            (50, 60),
            70,
            None,
            Some(720),
        ),
        (
            "ecommerce",
            3,
            40,
            14 * 24 * 3600,
            None,
            Some((50, 86_400)),
            (50, 60),
            70,
            Some(10),
            None,
        ),
    ];

    #[test]
    fn every_preset_value_is_the_published_one_and_the_readme_table_says_so() {
        let readme = include_str!("../../../../docs/config.md");
        assert_eq!(PRESETS.len(), PUBLISHED.len());
        for (name, dup, min_s, max_s, sub_ids, spam, short, old, vpn, device) in PUBLISHED {
            let share = |defaults: ShareBound, percent| ShareBound {
                percent,
                ..defaults
            };
            let mut expected = vec![
                FilterKind::DuplicateIp(DuplicateIp {
                    max: dup,
                    window_hours: 24,
                }),
                FilterKind::FraudDatabase(FraudDatabase),
                FilterKind::Bot(BotSettings::default()),
                FilterKind::DatacenterVpn(DatacenterVpn {
                    share: vpn.map(|p| share(datacenter_vpn::SHARE, p)),
                }),
                FilterKind::Geo(OfferGeo),
                FilterKind::Referrer(Referrer),
                FilterKind::OldOsBrowser(MinVersions {
                    share: Some(share(old_os_browser::SHARE, old)),
                    ..MinVersions::default()
                }),
                FilterKind::MinClickToConversion(MinClickToConversion { seconds: min_s }),
                FilterKind::MaxClickToConversion(MaxClickToConversion { seconds: max_s }),
                FilterKind::ThirdPartyRejection(ThirdPartyRejection),
            ];
            expected.extend(sub_ids.map(|max| FilterKind::SubIdValidity(SubIdValidity { max })));
            expected.extend(spam.map(|(percent, seconds)| {
                FilterKind::ClickSpam(ClickSpam {
                    seconds,
                    bound: share(click_spam::DEFAULT.bound, percent),
                })
            }));
            expected.push(FilterKind::LowSessionTime(LowSessionTime {
                seconds: short.1,
                bound: share(low_session_time::DEFAULT.bound, short.0),
            }));
            expected.extend(device.map(|window_hours| {
                FilterKind::DuplicateDeviceId(DuplicateDeviceId {
                    max: 1,
                    window_hours,
                    scope: DeviceScope::Offer,
                })
            }));
            let expected: Vec<Filter> = expected.into_iter().map(Filter::new).collect();
            assert_eq!(preset(name), Some(expected), "{name}");
            let max = if max_s == 24 * 3600 {
                "24 h".to_owned()
            } else {
                format!("{} days", max_s / 86_400)
            };
            let subs = sub_ids.map_or("–".to_owned(), |n| n.to_string());
            let row = format!("| `{name}` | {dup} | {subs} | {min_s} s / {max} |");
            assert!(readme.contains(&row), "README lacks the row {row}");
            let device = device.map_or("–".to_owned(), |hours| format!("1 per {hours} h"));
            let line = readme.lines().find(|l| l.starts_with(&row)).unwrap();
            assert!(
                line.ends_with(&format!("| {device} |")),
                "{line}: device {device}"
            );
        }
    }

    #[test]
    fn presets_follow_the_published_tables() {
        let cpi = preset("mobile_cpi").unwrap();
        assert!(
            cpi.contains(&Filter::new(FilterKind::DuplicateIp(DuplicateIp {
                max: 1,
                window_hours: 24
            })))
        );
        assert!(
            cpi.contains(&Filter::new(FilterKind::SubIdValidity(SubIdValidity {
                max: 700
            })))
        );
        assert!(cpi.contains(&Filter::new(FilterKind::MinClickToConversion(
            MinClickToConversion { seconds: 20 }
        ))));
        let lead = preset("lead").unwrap();
        assert!(
            lead.contains(&Filter::new(FilterKind::SubIdValidity(SubIdValidity {
                max: 500
            })))
        );
        assert!(lead.contains(&Filter::new(FilterKind::MinClickToConversion(
            MinClickToConversion { seconds: 25 }
        ))));
        let cpa = preset("mobile_cpa").unwrap();
        assert!(
            cpa.contains(&Filter::new(FilterKind::DuplicateIp(DuplicateIp {
                max: 3,
                window_hours: 24
            })))
        );
        let shop = preset("ecommerce").unwrap();
        assert!(shop.contains(&Filter::new(FilterKind::MaxClickToConversion(
            MaxClickToConversion {
                seconds: 14 * 86_400
            }
        ))));
        assert!(!shop
            .iter()
            .any(|f| matches!(f.kind, FilterKind::SubIdValidity(_))));
        assert!(preset("nope").is_none());
        for name in PRESETS {
            assert!(
                preset(name)
                    .unwrap()
                    .iter()
                    .any(|f| f.kind == FilterKind::Bot(BotSettings::default())),
                "{name}"
            );
        }
    }

    /// Affise's "Advanced Anti-fraud" article, section "Detection strategy", its four tables
    /// (Mobile CPI, Mobile CPA, Lead Offers, eCommerce), row by row as published: the preset, the
    /// filter's name and its setting details, and the filter, with its settings, that carries
    /// the row in the preset.
    // One row a line, as the tables print them.
    #[rustfmt::skip]
    fn published_tables() -> Vec<(&'static str, &'static str, &'static str, FilterKind)> {
        const DAY: u64 = 86_400;
        let dup_ip = |max| FilterKind::DuplicateIp(DuplicateIp { max, window_hours: 24 });
        let min = |seconds| FilterKind::MinClickToConversion(MinClickToConversion { seconds });
        let max = |seconds| FilterKind::MaxClickToConversion(MaxClickToConversion { seconds });
        let sub_ids = |max| FilterKind::SubIdValidity(SubIdValidity { max });
        let fraud_db = || FilterKind::FraudDatabase(FraudDatabase);
        let bot = || FilterKind::Bot(BotSettings::default());
        let vpn = || FilterKind::DatacenterVpn(DatacenterVpn { share: None });
        let rejection = || FilterKind::ThirdPartyRejection(ThirdPartyRejection);
        let referrer = || FilterKind::Referrer(Referrer);
        let device = |window_hours| FilterKind::DuplicateDeviceId(DuplicateDeviceId { max: 1, window_hours, scope: DeviceScope::Offer });
        let percent = |default: ShareBound, percent| ShareBound { percent, ..default };
        let click_spam = |p, seconds| FilterKind::ClickSpam(ClickSpam { seconds, bound: percent(click_spam::DEFAULT.bound, p) });
        let short_sessions = |p, seconds| FilterKind::LowSessionTime(LowSessionTime { seconds, bound: percent(low_session_time::DEFAULT.bound, p) });
        let old_share = |p| FilterKind::OldOsBrowser(MinVersions { share: Some(percent(old_os_browser::SHARE, p)), ..MinVersions::default() });
        let vpn_share = |p| FilterKind::DatacenterVpn(DatacenterVpn { share: Some(percent(datacenter_vpn::SHARE, p)) });
        const HOUR: u64 = 3600;
        const MINUTE: u64 = 60;
        let none = "No configuration options";
        let sync = "Sync with other fraud system";
        let global = "Global IP / Device ID based";
        vec![
            // Mobile CPI
            ("mobile_cpi", "Duplicate IP", "Last 24h / 1 IP (same offer / same affiliate)", dup_ip(1)),
            ("mobile_cpi", "Duplicate Device ID", "Same offer / All affiliates", device(24)),
            ("mobile_cpi", "Fraud Database", global, fraud_db()),
            ("mobile_cpi", "ClickSpam", "50% > 1h CTIT", click_spam(50, HOUR)),
            ("mobile_cpi", "Low Session Time Anomaly", "50% < 1min CTIT", short_sessions(50, MINUTE)),
            ("mobile_cpi", "Min Click To Install Time", "20s", min(20)),
            ("mobile_cpi", "Bot", none, bot()),
            ("mobile_cpi", "VPN / Proxies", none, vpn()),
            ("mobile_cpi", "Third Party Rejection", sync, rejection()),
            ("mobile_cpi", "Max Click to Conversion Time", "24h", max(DAY)),
            ("mobile_cpi", "Sub ID Validity Check", "More than 700 SubIDs (per offer + affiliate)", sub_ids(700)),
            ("mobile_cpi", "Referrer URL", none, referrer()),
            ("mobile_cpi", "OLD OS / Browser", "60% > Old devices", old_share(60)),
            // Mobile CPA
            ("mobile_cpa", "Duplicate IP", "Last 24h / 3 IP (same offer / same affiliate)", dup_ip(3)),
            ("mobile_cpa", "Duplicate Device ID", "Same offer / All affiliates", device(24)),
            ("mobile_cpa", "Fraud Database", global, fraud_db()),
            ("mobile_cpa", "ClickSpam", "60% > 2h CTIT", click_spam(60, 2 * HOUR)),
            ("mobile_cpa", "Low Session Time Anomaly", "60% < 1min CTIT", short_sessions(60, MINUTE)),
            ("mobile_cpa", "Min Click To Conversion Time", "15s", min(15)),
            ("mobile_cpa", "Bot", none, bot()),
            ("mobile_cpa", "VPN / Proxies", none, vpn()),
            ("mobile_cpa", "Third Party Rejection", sync, rejection()),
            ("mobile_cpa", "Max Click to Conversion Time", "24h", max(DAY)),
            ("mobile_cpa", "Sub ID Validity Check", "More than 700 SubIDs (per offer + affiliate)", sub_ids(700)),
            ("mobile_cpa", "Referrer URL Blacklist", none, referrer()),
            ("mobile_cpa", "OLD OS / Browser", "70% > Old devices", old_share(70)),
            // Lead Offers
            ("lead", "Duplicate IP", "Last 24h / 1 IP (same offer / same affiliate)", dup_ip(1)),
            ("lead", "Duplicate Device ID", "No duplicates (same offer / all affiliates)", device(720)),
            ("lead", "Fraud Database", global, fraud_db()),
            ("lead", "Low Session Time Anomaly", "50% < 1min CTIT", short_sessions(50, MINUTE)),
            ("lead", "Min Click To Conversion Time", "25s", min(25)),
            ("lead", "Bot", none, bot()),
            ("lead", "VPN / Proxies", none, vpn()),
            ("lead", "Third Party Rejection", sync, rejection()),
            ("lead", "Max Click to Conversions Time", "24h", max(DAY)),
            ("lead", "Sub ID Validity Check", "More than 500 SubIDs (per offer + affiliate)", sub_ids(500)),
            ("lead", "Referrer URL Blacklist", none, referrer()),
            ("lead", "OLD OS / Browser", "70% > Old devices", old_share(70)),
            // eCommerce
            ("ecommerce", "Duplicate IP", "Last 24h / 3 IP (same offer / same affiliate)", dup_ip(3)),
            ("ecommerce", "Fraud Database", global, fraud_db()),
            ("ecommerce", "Click Spam", "50% > 24h CTCT", click_spam(50, DAY)),
            ("ecommerce", "Low Session Time Anomaly", "50% < 1min CTIT", short_sessions(50, MINUTE)),
            ("ecommerce", "Min Click To Conversion Time", "40s", min(40)),
            ("ecommerce", "Bot", none, bot()),
            ("ecommerce", "VPN / Proxies", "Below 10%", vpn_share(10)),
            ("ecommerce", "Third Party Rejection", sync, rejection()),
            ("ecommerce", "Max Click to Conversions Time", "14 days", max(14 * DAY)),
            ("ecommerce", "Referrer URL Blacklist", none, referrer()),
            ("ecommerce", "OLD OS / Browser", "70% > Old devices", old_share(70)),
        ]
    }

    #[test]
    fn every_preset_carries_its_published_table_row_by_row() {
        let tables = published_tables();
        for name in PRESETS {
            let filters = preset(name).unwrap();
            // What the preset must hold: each row's filter, and the offer's own countries, which
            // the tables leave to the network's offer settings.
            let mut expected = vec![Filter::new(FilterKind::Geo(OfferGeo))];
            for (_, filter, setting, kind) in tables.iter().filter(|row| row.0 == name) {
                let want = Filter::new(kind.clone());
                assert!(
                    filters.contains(&want),
                    "{name} drops \"{filter} | {setting}\": no {want:?}"
                );
                expected.push(want);
            }
            assert_eq!(
                filters.len(),
                expected.len(),
                "{name} holds a filter no row asks for: {filters:?}"
            );
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            // Each offer's candidates, worked out when first asked for (the stages and offers asked
            // in either order, each twice), are the rules testing every rule on that offer picks,
            // in precedence order; an offer the document does not list has none.
            #[test]
            fn an_offers_candidates_are_every_rule_covering_it_best_first(
                rules in proptest::collection::vec((0usize..7, 0usize..3, 0i64..3, any::<bool>()), 0..10),
                conversions_first in any::<bool>(),
            ) {
                const SCOPES: [&str; 7] = [
                    r#"{"offers": ["1"]}"#,
                    r#"{"offers": ["2", "3"], "affiliates": ["x"]}"#,
                    r#"{"advertisers": ["a"]}"#,
                    r#"{"offers": {"include": "all", "exclude": ["2"]}, "affiliates": ["y"]}"#,
                    r#"{"advertisers": {"include": "all", "exclude": ["b"]}, "affiliates": ["z"]}"#,
                    r#"{"offers": ["1", "3"], "advertisers": ["b"]}"#,
                    r#"{"offers": {"include": ["1", "2"], "exclude": ["1"]}}"#,
                ];
                let rules: Vec<String> = rules.iter().enumerate().map(|(i, &(scope, level, priority, active))| {
                    format!(
                        r#"{{"id": "r{i}", "created_at": "2026-11-0{}", "priority": {priority}, "scope": {},
                           "level": "{}", "status": "{}", "strategy": "lead"}}"#,
                        i % 9 + 1, SCOPES[scope], ["click", "conversion", "both"][level],
                        if active { "active" } else { "paused" },
                    )
                }).collect();
                let doc = format!(
                    r#"{{"version": 1, "advertisers": [{{"id": "a"}}, {{"id": "b"}}],
                       "offers": [{{"id": "1", "advertiser_id": "a", "landing_url": "https://x.example/"}},
                                  {{"id": "2", "advertiser_id": "a", "landing_url": "https://x.example/"}},
                                  {{"id": "3", "advertiser_id": "b", "landing_url": "https://x.example/"}}],
                       "rules": [{}]}}"#,
                    rules.join(",")
                );
                let config = crate::config::Config::compile(&doc).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                let stages = match conversions_first {
                    true => [Level::Conversion, Level::Click],
                    false => [Level::Click, Level::Conversion],
                };
                for stage in stages.into_iter().chain(stages) {
                    let mut order: Vec<usize> = (0..config.rules.len())
                        .filter(|&i| {
                            let r = &config.rules[i];
                            r.enabled && (r.level == stage || r.level == Level::Both)
                        })
                        .collect();
                    order.sort_by(|&a, &b| precedence(&config.rules[a], &config.rules[b]));
                    let unlisted = crate::click::Id::parse("4").unwrap();
                    prop_assert!(config.candidates(&unlisted, stage).is_empty());
                    for (id, offer) in &config.offers {
                        let every: Vec<usize> = order.iter().copied().filter(|&i| {
                            let s = &config.rules[i].scope;
                            s.offers.covers(Some(id)) && s.advertisers.covers(offer.advertiser_id.as_ref())
                        }).collect();
                        prop_assert_eq!(config.candidates(id, stage), &every[..], "offer {} at {:?}", id.as_str(), stage);
                    }
                }
            }
        }
    }

    #[test]
    fn a_rule_counting_more_shares_than_a_click_holds_is_refused() {
        let doc = |filters: &str| {
            format!(
                r#"{{"version": 1, "offers": [{{"id": "1", "landing_url": "https://x.example/"}}],
                    "rules": [{{"id": "r", "created_at": "2026-11-01", "scope": {{"offers": ["1"]}},
                               "strategy": {{"filters": [{filters}]}}}}]}}"#
            )
        };
        let four = r#"{"type": "click_spam"}, {"type": "low_session_time"},
            {"type": "old_os_browser", "share": {}}, {"type": "datacenter_vpn", "share": {}}"#;
        assert!(crate::config::Config::compile(&doc(four)).is_ok());
        // The same measure twice is one share.
        let same = format!(r#"{four}, {{"type": "click_spam", "points": 10}}"#);
        assert!(crate::config::Config::compile(&doc(&same)).is_ok());
        let five = format!(r#"{four}, {{"type": "click_spam", "seconds": 7200}}"#);
        let errors = crate::config::Config::compile(&doc(&five)).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "rules[0].strategy.filters: may count at most 4 different shares"
        );
    }
}
