//! The rules of the config document, compiled: which clicks a rule covers, which filters it runs
//! with which settings, its decline threshold and action, and the offers' geo settings. Also the
//! order rules are chosen in.
//!
//! One rule decides a click. When several cover it, the winner is the highest `priority`, then the
//! most specific scope (most of offers, advertisers and affiliates given as explicit lists), then
//! the newest `created_at`, then the smallest id, so the verdict never depends on the order of the
//! rules in the document.

use crate::config::Value;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::click::{ClickParams, Id, SOURCE_ID, SUB_IDS};
use crate::config::{err, id_value, kind, ConfigError, Fields, Offer, RANGES};
use crate::fault::Invalid;
use crate::ip::IpSet;
use crate::template::Template;
use crate::time::parse_instant;
use crate::verdict::FaultMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Probability {
    None,
    Low,
    Medium,
    High,
}

impl Probability {
    /// The documented cut-offs: 80 points and up is high, 50 medium, anything above 0 low.
    pub fn from_score(score: u32) -> Probability {
        match score {
            0 => Probability::None,
            1..=49 => Probability::Low,
            50..=79 => Probability::Medium,
            _ => Probability::High,
        }
    }

    pub fn name(self) -> &'static str {
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
pub enum Threshold {
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
pub enum Level {
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
    pub fn named_ids(&self) -> impl Iterator<Item = &Id> {
        self.include.iter().flatten().chain(self.exclude.iter())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub offers: Dim,
    pub advertisers: Dim,
    pub affiliates: Dim,
}

impl Scope {
    /// Whether the scope covers a click on an offer the document does not list (so it has no
    /// entry in the per-offer index) from `aff_id`.
    pub fn covers_unlisted(&self, offer: &Offer, aff_id: &Id) -> bool {
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
    pub fn named(name: &str) -> Option<SubIdParam> {
        if name == SOURCE_ID {
            return Some(SubIdParam::SourceId);
        }
        SUB_IDS.iter().position(|s| *s == name).map(SubIdParam::Sub)
    }

    pub fn value<'a>(&self, click: &'a ClickParams) -> Option<&'a str> {
        match self {
            SubIdParam::Sub(i) => click.subs[*i].as_deref(),
            SubIdParam::SourceId => click.source_id.as_deref(),
        }
    }
}

/// Minimum OS and browser major versions; older ones count as old devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinVersions {
    pub android: u32,
    pub ios: u32,
    pub windows: u32,
    pub macos: u32,
    pub chrome: u32,
    pub firefox: u32,
    pub safari: u32,
    pub edge: u32,
}

impl Default for MinVersions {
    fn default() -> Self {
        MinVersions {
            android: 8,
            ios: 13,
            windows: 10,
            macos: 10,
            chrome: 100,
            firefox: 100,
            safari: 13,
            edge: 100,
        }
    }
}

/// What the bot filter does with the two kinds of automation an operator may want through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BotSettings {
    /// Link-preview fetchers are redirected whatever the rule finds, unless this is set
    /// (`"previews": "decline"`): then the bot filter fires on them at `certain`.
    pub decline_previews: bool,
    /// AI browsing agents fire as `ai_agent` (the default) or are let through
    /// (`"ai_agents": "redirect"`).
    pub allow_ai_agents: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterKind {
    Bot(BotSettings),
    FraudDatabase,
    DatacenterVpn,
    Geo,
    Referrer,
    OldOsBrowser(MinVersions),
    /// More than `max` clicks from one IP on one offer and affiliate within the window.
    DuplicateIp {
        max: u32,
        window_hours: u32,
    },
    /// More than `max` distinct sub IDs on one offer and affiliate.
    SubIdValidity {
        max: u32,
    },
    /// Conversion-level: judged when the postback arrives, not at the click.
    MinClickToConversion {
        seconds: u64,
    },
    MaxClickToConversion {
        seconds: u64,
    },
}

impl FilterKind {
    pub fn name(&self) -> &'static str {
        match self {
            FilterKind::Bot(_) => "bot",
            FilterKind::FraudDatabase => "fraud_database",
            FilterKind::DatacenterVpn => "datacenter_vpn",
            FilterKind::Geo => "geo",
            FilterKind::Referrer => "referrer",
            FilterKind::OldOsBrowser(_) => "old_os_browser",
            FilterKind::DuplicateIp { .. } => "duplicate_ip",
            FilterKind::SubIdValidity { .. } => "sub_id_validity",
            FilterKind::MinClickToConversion { .. } => "min_click_to_conversion",
            FilterKind::MaxClickToConversion { .. } => "max_click_to_conversion",
        }
    }

    /// Points a firing filter adds unless the rule sets its own.
    fn default_points(&self) -> u32 {
        match self {
            FilterKind::Bot(_) | FilterKind::FraudDatabase | FilterKind::Geo => 100,
            FilterKind::DatacenterVpn | FilterKind::Referrer | FilterKind::DuplicateIp { .. } => 60,
            FilterKind::SubIdValidity { .. } => 40,
            FilterKind::OldOsBrowser(_) => 30,
            FilterKind::MinClickToConversion { .. } | FilterKind::MaxClickToConversion { .. } => {
                100
            }
        }
    }

    pub(crate) fn is_click_level(&self) -> bool {
        !matches!(
            self,
            FilterKind::MinClickToConversion { .. } | FilterKind::MaxClickToConversion { .. }
        )
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
pub fn preset(name: &str) -> Option<Vec<Filter>> {
    const DAY: u64 = 24 * 3600;
    let (dup_max, min_ctc, max_ctc, sub_ids) = match name {
        "mobile_cpi" => (1, 20, DAY, Some(700)),
        "mobile_cpa" => (3, 15, DAY, Some(700)),
        "lead" => (1, 25, DAY, Some(500)),
        "ecommerce" => (3, 40, 14 * DAY, None),
        _ => return None,
    };
    let mut kinds = vec![
        FilterKind::DuplicateIp {
            max: dup_max,
            window_hours: 24,
        },
        FilterKind::FraudDatabase,
        FilterKind::Bot(BotSettings::default()),
        FilterKind::DatacenterVpn,
        FilterKind::Geo,
        FilterKind::Referrer,
        FilterKind::OldOsBrowser(MinVersions::default()),
        FilterKind::MinClickToConversion { seconds: min_ctc },
        FilterKind::MaxClickToConversion { seconds: max_ctc },
    ];
    if let Some(max) = sub_ids {
        kinds.push(FilterKind::SubIdValidity { max });
    }
    Some(kinds.into_iter().map(Filter::new).collect())
}

pub const PRESETS: [&str; 4] = ["mobile_cpi", "mobile_cpa", "lead", "ecommerce"];

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: Id,
    pub name: Option<String>,
    pub enabled: bool,
    pub created_at_ms: u64,
    pub priority: i64,
    pub scope: Scope,
    pub level: Level,
    pub monitor: bool,
    pub sub_id: SubIdParam,
    pub filters: Vec<Filter>,
    pub threshold: Threshold,
    pub action: Action,
    pub on_fault: FaultMode,
}

/// Host or host-and-path pattern for the referrer blacklist: `spam.example` (and its subdomains
/// with `*.spam.example`), or `ads.example/cheap` for a path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefererPattern {
    pub(crate) text: String,
    host: String,
    any_subdomain: bool,
    path_prefix: String,
}

impl RefererPattern {
    /// A pattern from the operator's referrer blocklist: a bad one is the operator's.
    pub fn parse(text: &str) -> Result<RefererPattern, Invalid> {
        RefererPattern::read(text).map_err(Invalid::operator)
    }

    fn read(text: &str) -> Result<RefererPattern, String> {
        let lower = text.trim().to_ascii_lowercase();
        let (host_part, path) = match lower.find('/') {
            Some(i) => (&lower[..i], &lower[i..]),
            None => (lower.as_str(), ""),
        };
        let (any_subdomain, host) = match host_part.strip_prefix("*.") {
            Some(h) => (true, h),
            None => (false, host_part),
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
        if host.is_empty()
            || !host.chars().all(valid)
            || host.starts_with('.')
            || lower.contains("://")
        {
            return Err(format!("`{text}` is not a host pattern (`spam.example`, `*.spam.example`, `spam.example/path`)"));
        }
        Ok(RefererPattern {
            text: text.trim().to_owned(),
            host: host.to_owned(),
            any_subdomain,
            path_prefix: path.to_owned(),
        })
    }

    /// `*.spam.example` is its subdomains only, not `spam.example` itself (which
    /// [`Referrers::find`] never asks it about either).
    fn matches(&self, host: &str, path: &str) -> bool {
        let host_ok = if self.any_subdomain {
            host.len() > self.host.len()
                && host.ends_with(&self.host)
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host == self.host
        };
        host_ok && path.starts_with(&self.path_prefix)
    }
}

/// Splits a Referer header into lower-cased host and path.
pub(crate) fn referer_parts(referer: &str) -> Option<(String, String)> {
    let rest = referer.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority
        .rsplit('@')
        .next()?
        .split(':')
        .next()?
        .to_ascii_lowercase();
    let path = rest[end..]
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    Some((host, path))
}

/// The lists filters and allowlists read, compiled from `lists` in the config.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    pub allowed_ips: IpSet,
    pub allowed_affiliates: FxHashSet<Id>,
    pub allowed_sub_ids: FxHashSet<String>,
    pub fraud_ips: IpSet,
    pub fraud_device_ids: FxHashSet<String>,
    pub datacenter_asns: FxHashSet<u32>,
    pub datacenter_ips: IpSet,
    pub vpn_asns: FxHashSet<u32>,
    pub vpn_ips: IpSet,
    pub blocked_referrers: Referrers,
}

/// The referrer blacklist, indexed by host: a click's referrer is looked up under its host and, for
/// `*.` patterns, under each parent domain, instead of being compared with every pattern.
#[derive(Debug, Clone, Default)]
pub struct Referrers {
    exact: FxHashMap<String, Vec<RefererPattern>>,
    wildcard: FxHashMap<String, Vec<RefererPattern>>,
}

impl Referrers {
    pub fn insert(&mut self, p: RefererPattern) {
        let map = if p.any_subdomain {
            &mut self.wildcard
        } else {
            &mut self.exact
        };
        map.entry(p.host.clone()).or_default().push(p);
    }

    pub fn len(&self) -> usize {
        self.exact
            .values()
            .chain(self.wildcard.values())
            .map(Vec::len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn find(&self, host: &str, path: &str) -> Option<&RefererPattern> {
        let exact = self.exact.get(host).into_iter().flatten();
        let parents = host
            .match_indices('.')
            .filter_map(|(i, _)| self.wildcard.get(&host[i + 1..]))
            .flatten();
        exact.chain(parents).find(|p| p.matches(host, path))
    }
}

/// Precedence, best first: highest priority, most specific scope, newest, then smallest id.
fn precedence(a: &Rule, b: &Rule) -> std::cmp::Ordering {
    (b.priority, b.scope.specificity(), b.created_at_ms)
        .cmp(&(a.priority, a.scope.specificity(), a.created_at_ms))
        .then_with(|| a.id.cmp(&b.id))
}

/// The enabled rules judging `stage` (its own and the `both` ones), best first.
pub fn in_order(rules: &[Rule], stage: Level) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rules.len())
        .filter(|&i| rules[i].enabled && (rules[i].level == stage || rules[i].level == Level::Both))
        .collect();
    order.sort_by(|&a, &b| precedence(&rules[a], &rules[b]));
    order
}

/// For each offer, the rules that can judge its clicks, best first. The offer and advertiser parts
/// of a scope are fixed per offer, so they are resolved once with the config; a click then only
/// checks affiliates, and the first rule that covers it decides. An offer no rule covers is left
/// out (a lookup reads it as no rules): keying every one of 100,000 offers twice was a tenth of
/// compiling such a document.
pub fn index_by_offer(
    rules: &[Rule],
    offers: &FxHashMap<Id, Offer>,
    stage: Level,
) -> FxHashMap<Id, Vec<usize>> {
    // `stage` is Click or Conversion: the rules judging that stage are its own and the `both` ones.
    let order = in_order(rules, stage);
    if order.is_empty() {
        return FxHashMap::default();
    }
    // Lists by position, so a rule covering every offer pushes without hashing an id per offer.
    let all: Vec<&Offer> = offers.values().collect();
    // Only rules naming their offers look offers up by id; without one, no id is hashed here.
    let named = order
        .iter()
        .any(|&i| rules[i].scope.offers.include.is_some());
    let position: FxHashMap<&Id, usize> = match named {
        true => all.iter().enumerate().map(|(n, o)| (&o.id, n)).collect(),
        false => FxHashMap::default(),
    };
    let mut lists: Vec<Vec<usize>> = vec![Vec::new(); all.len()];
    // Rule by rule in precedence order, so each offer's list comes out best first. A rule naming
    // its offers visits only those: testing every rule against every offer cost a fresh isolate's
    // first click about a millisecond with 100 rules and 100 offers.
    for i in order {
        let scope = &rules[i].scope;
        let covered = |offer: &Offer| {
            scope.offers.covers(Some(&offer.id))
                && scope.advertisers.covers(offer.advertiser_id.as_ref())
        };
        match &scope.offers.include {
            Some(named) => {
                for &n in named.iter().filter_map(|id| position.get(id)) {
                    if covered(all[n]) {
                        lists[n].push(i);
                    }
                }
            }
            None => {
                for (n, offer) in all.iter().enumerate() {
                    if covered(offer) {
                        lists[n].push(i);
                    }
                }
            }
        }
    }
    all.iter()
        .zip(lists)
        .filter(|(_, list)| !list.is_empty())
        .map(|(o, list)| (o.id.clone(), list))
        .collect()
}

/// The rule that decides a click on an offer, from the offer's candidates in precedence order.
pub fn select<'a>(rules: &'a [Rule], candidates: &[usize], aff_id: &Id) -> Option<&'a Rule> {
    candidates
        .iter()
        .map(|&i| &rules[i])
        .find(|r| r.scope.affiliates.covers(Some(aff_id)))
}

/// Countries an offer accepts: only the listed ones, or all but the listed ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Geo {
    Allow(Vec<String>),
    Deny(Vec<String>),
}

impl Geo {
    pub(crate) fn allows(&self, country: &str) -> bool {
        let listed = |list: &[String]| list.iter().any(|c| c.eq_ignore_ascii_case(country));
        match self {
            Geo::Allow(list) => listed(list),
            Geo::Deny(list) => !listed(list),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Geo::Allow(list) => format!("allow {}", list.join(",")),
            Geo::Deny(list) => format!("deny {}", list.join(",")),
        }
    }
}

// ---- compiling rules from the config document ----

pub(crate) fn compile_geo(value: &Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Geo> {
    let mut f = Fields::of(value, path, errors)?;
    let allow = f.array("allow", errors);
    let deny = f.array("deny", errors);
    f.finish(errors);
    let countries = |list: &Vec<Value>, key: &str, errors: &mut Vec<ConfigError>| -> Vec<String> {
        let mut out = Vec::new();
        for (i, v) in list.iter().enumerate() {
            match v.as_str() {
                Some(c) if c.len() == 2 && c.chars().all(|c| c.is_ascii_alphabetic()) => {
                    out.push(c.to_ascii_uppercase())
                }
                _ => errors.push(err(
                    &format!("{path}.{key}[{i}]"),
                    "must be a two-letter country code (ISO 3166-1)",
                )),
            }
        }
        out
    };
    match (allow, deny) {
        (Some(a), None) => Some(Geo::Allow(countries(a, "allow", errors))),
        (None, Some(d)) => Some(Geo::Deny(countries(d, "deny", errors))),
        _ => {
            errors.push(err(path, "give exactly one of allow and deny"));
            None
        }
    }
}

fn compile_dim(value: Option<&Value>, path: &str, errors: &mut Vec<ConfigError>) -> Dim {
    let ids = |list: &Vec<Value>, path: &str, errors: &mut Vec<ConfigError>| -> FxHashSet<Id> {
        list.iter()
            .enumerate()
            .filter_map(|(i, v)| id_value(v, || format!("{path}[{i}]"), errors))
            .collect()
    };
    match value {
        None => Dim::default(),
        Some(Value::String(s)) if s == "all" => Dim::default(),
        Some(Value::Array(list)) => Dim {
            include: Some(ids(list, path, errors)),
            exclude: FxHashSet::default(),
        },
        Some(obj @ Value::Object(_)) => {
            let Some(mut f) = Fields::of(obj, path, errors) else {
                return Dim::default();
            };
            let include = match f.get("include") {
                None => None,
                Some(Value::String(s)) if s == "all" => None,
                Some(Value::Array(list)) => Some(ids(list, &format!("{path}.include"), errors)),
                Some(other) => {
                    errors.push(err(
                        &format!("{path}.include"),
                        format!("must be \"all\" or a list of ids, found {}", kind(other)),
                    ));
                    None
                }
            };
            let exclude = f
                .array("exclude", errors)
                .map(|l| ids(l, &format!("{path}.exclude"), errors))
                .unwrap_or_default();
            f.finish(errors);
            Dim { include, exclude }
        }
        Some(other) => {
            errors.push(err(
                path,
                format!(
                    "must be \"all\", a list of ids, or {{include, exclude}}; found {}",
                    kind(other)
                ),
            ));
            Dim::default()
        }
    }
}

fn compile_filter(value: &Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Filter> {
    let mut f = Fields::of(value, path, errors)?;
    let kind_name = f.required_string("type", errors);
    let points = f.u32_in("points", RANGES.points, errors);
    let kind = match kind_name {
        None => None,
        Some("bot") => Some(FilterKind::Bot(BotSettings {
            decline_previews: f.choice(
                "previews",
                &[("redirect", false), ("decline", true)],
                errors,
            ),
            allow_ai_agents: f.choice(
                "ai_agents",
                &[("decline", false), ("redirect", true)],
                errors,
            ),
        })),
        Some("fraud_database") => Some(FilterKind::FraudDatabase),
        Some("datacenter_vpn") => Some(FilterKind::DatacenterVpn),
        Some("geo") => Some(FilterKind::Geo),
        Some("referrer") => Some(FilterKind::Referrer),
        Some("old_os_browser") => {
            let mut min = MinVersions::default();
            if let Some(m) = f.get("min") {
                if let Some(mut mf) = Fields::of(m, f.child("min"), errors) {
                    let slots: [(&'static str, &mut u32); 8] = [
                        ("android", &mut min.android),
                        ("ios", &mut min.ios),
                        ("windows", &mut min.windows),
                        ("macos", &mut min.macos),
                        ("chrome", &mut min.chrome),
                        ("firefox", &mut min.firefox),
                        ("safari", &mut min.safari),
                        ("edge", &mut min.edge),
                    ];
                    for (key, slot) in slots {
                        if let Some(n) = mf.u32_in(key, RANGES.major_version, errors) {
                            *slot = n;
                        }
                    }
                    mf.finish(errors);
                }
            }
            Some(FilterKind::OldOsBrowser(min))
        }
        Some("duplicate_ip") => Some(FilterKind::DuplicateIp {
            max: f.u32_in("max", RANGES.count, errors).unwrap_or(1),
            window_hours: f
                .u32_in("window_hours", RANGES.window_hours, errors)
                .unwrap_or(24),
        }),
        Some("sub_id_validity") => Some(FilterKind::SubIdValidity {
            max: f.u32_in("max", RANGES.count, errors).unwrap_or(700),
        }),
        Some("min_click_to_conversion") => Some(FilterKind::MinClickToConversion {
            seconds: f
                .u64_in("seconds", RANGES.min_click_to_conversion, errors)
                .unwrap_or(20),
        }),
        Some("max_click_to_conversion") => Some(FilterKind::MaxClickToConversion {
            seconds: f
                .u64_in("seconds", RANGES.max_click_to_conversion, errors)
                .unwrap_or(86_400),
        }),
        Some(other) => {
            errors.push(err(
                &f.child("type"),
                format!(
                    "unknown filter `{other}`; known: bot, fraud_database, datacenter_vpn, geo, referrer, \
                     old_os_browser, duplicate_ip, sub_id_validity, min_click_to_conversion, max_click_to_conversion"
                ),
            ));
            None
        }
    };
    f.finish(errors);
    let kind = kind?;
    let points = points.unwrap_or_else(|| kind.default_points());
    Some(Filter { kind, points })
}

pub(crate) fn compile_rule(
    value: &Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Rule> {
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
    let scope_path = f.child("scope");
    let scope = match f.required("scope", errors) {
        Some(v) => {
            let mut sf = Fields::of(v, &scope_path, errors);
            let scope = match sf.as_mut() {
                Some(sf) => Scope {
                    offers: compile_dim(sf.get("offers"), &sf.child("offers"), errors),
                    advertisers: compile_dim(
                        sf.get("advertisers"),
                        &sf.child("advertisers"),
                        errors,
                    ),
                    affiliates: compile_dim(sf.get("affiliates"), &sf.child("affiliates"), errors),
                },
                None => Scope::default(),
            };
            if let Some(sf) = sf {
                sf.finish(errors);
                if scope.specificity() == 0 {
                    errors.push(err(
                        &scope_path,
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
    let strategy_path = f.child("strategy");
    let filters = match f.required("strategy", errors) {
        Some(Value::String(name)) => preset(name).or_else(|| {
            errors.push(err(
                &strategy_path,
                format!("unknown preset `{name}`; known: {}", PRESETS.join(", ")),
            ));
            None
        }),
        Some(obj @ Value::Object(_)) => {
            let mut sf = Fields::of(obj, &strategy_path, errors)?;
            let list = match sf.required_array("filters", errors) {
                Some(list) if !list.is_empty() => Some(
                    list.iter()
                        .enumerate()
                        .filter_map(|(i, v)| {
                            compile_filter(v, &format!("{strategy_path}.filters[{i}]"), errors)
                        })
                        .collect(),
                ),
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
                &strategy_path,
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
    let mut out = FxHashSet::default();
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
    const PUBLISHED: [(&str, u32, u64, u64, Option<u32>); 4] = [
        ("mobile_cpi", 1, 20, 24 * 3600, Some(700)),
        ("mobile_cpa", 3, 15, 24 * 3600, Some(700)),
        ("lead", 1, 25, 24 * 3600, Some(500)),
        ("ecommerce", 3, 40, 14 * 24 * 3600, None),
    ];

    #[test]
    fn every_preset_value_is_the_published_one_and_the_readme_table_says_so() {
        let readme = include_str!("../../../../docs/config.md");
        assert_eq!(PRESETS.len(), PUBLISHED.len());
        for (name, dup, min_s, max_s, sub_ids) in PUBLISHED {
            let mut expected = vec![
                FilterKind::DuplicateIp {
                    max: dup,
                    window_hours: 24,
                },
                FilterKind::FraudDatabase,
                FilterKind::Bot(BotSettings::default()),
                FilterKind::DatacenterVpn,
                FilterKind::Geo,
                FilterKind::Referrer,
                FilterKind::OldOsBrowser(MinVersions::default()),
                FilterKind::MinClickToConversion { seconds: min_s },
                FilterKind::MaxClickToConversion { seconds: max_s },
            ];
            expected.extend(sub_ids.map(|max| FilterKind::SubIdValidity { max }));
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
        }
    }

    #[test]
    fn presets_follow_the_published_tables() {
        let cpi = preset("mobile_cpi").unwrap();
        assert!(cpi.contains(&Filter::new(FilterKind::DuplicateIp {
            max: 1,
            window_hours: 24
        })));
        assert!(cpi.contains(&Filter::new(FilterKind::SubIdValidity { max: 700 })));
        assert!(cpi.contains(&Filter::new(FilterKind::MinClickToConversion {
            seconds: 20
        })));
        let lead = preset("lead").unwrap();
        assert!(lead.contains(&Filter::new(FilterKind::SubIdValidity { max: 500 })));
        assert!(
            lead.contains(&Filter::new(FilterKind::MinClickToConversion {
                seconds: 25
            }))
        );
        let cpa = preset("mobile_cpa").unwrap();
        assert!(cpa.contains(&Filter::new(FilterKind::DuplicateIp {
            max: 3,
            window_hours: 24
        })));
        let shop = preset("ecommerce").unwrap();
        assert!(
            shop.contains(&Filter::new(FilterKind::MaxClickToConversion {
                seconds: 14 * 86_400
            }))
        );
        assert!(!shop
            .iter()
            .any(|f| matches!(f.kind, FilterKind::SubIdValidity { .. })));
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

    #[test]
    fn referrer_patterns() {
        let p = RefererPattern::parse("*.spam.example").unwrap();
        assert!(p.matches("a.spam.example", "/"));
        assert!(!p.matches("spam.example.com", "/"));
        assert!(!p.matches("notspam.example", "/"));
        let p = RefererPattern::parse("ads.example/cheap").unwrap();
        assert!(p.matches("ads.example", "/cheap/x"));
        assert!(!p.matches("ads.example", "/good"));
        let scheme = RefererPattern::parse("https://x.example").unwrap_err();
        assert_eq!(scheme.by, crate::fault::Blame::Operator);
        assert!(RefererPattern::parse("").is_err());
        assert_eq!(
            referer_parts("https://User@News.Example:8443/A/b?q=1#f"),
            Some(("news.example".into(), "/a/b".into()))
        );
        assert_eq!(referer_parts("not a url"), None);
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            // Indexing rule by rule, visiting only the offers a rule names, gives every offer the
            // same candidates in the same order as testing each rule against each offer.
            #[test]
            fn index_by_offer_matches_testing_every_rule_on_every_offer(
                rules in proptest::collection::vec((0usize..7, 0usize..3, 0i64..3, any::<bool>()), 0..10),
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
                for (stage, index) in [(Level::Click, &config.rules_by_offer), (Level::Conversion, &config.conversion_rules_by_offer)] {
                    let mut order: Vec<usize> = (0..config.rules.len())
                        .filter(|&i| {
                            let r = &config.rules[i];
                            r.enabled && (r.level == stage || r.level == Level::Both)
                        })
                        .collect();
                    order.sort_by(|&a, &b| precedence(&config.rules[a], &config.rules[b]));
                    prop_assert!(index.keys().all(|id| config.offers.contains_key(id)));
                    for (id, offer) in &config.offers {
                        let every: Vec<usize> = order.iter().copied().filter(|&i| {
                            let s = &config.rules[i].scope;
                            s.offers.covers(Some(id)) && s.advertisers.covers(offer.advertiser_id.as_ref())
                        }).collect();
                        let listed = index.get(id).map_or(&[][..], Vec::as_slice);
                        prop_assert_eq!(listed, &every[..], "offer {}", id.as_str());
                    }
                }
            }
        }
    }
}
