//! Judging a click by its rule: which of the rule's filters fire, how their points add up to a
//! fraud probability, and whether that reaches the rule's decline threshold. The rules themselves,
//! as compiled from the document, are in [`crate::config::rules`].

use rustc_hash::FxHashSet;

use crate::click::{ClickParams, ClientInfo};
use crate::config::rules::{
    referer_parts, BotSettings, FilterKind, Lists, MinVersions, Probability, Rule, SubIdParam,
};
use crate::config::Offer;
use crate::ip::IpSet;
use crate::ua::{is_link_preview, signal_of, Browser, Grade, Kind, Os, Signal};
use crate::verdict::{FaultMode, Reason, ReasonCode};

/// Per-offer-and-affiliate counts kept outside the isolate (a Durable Object), read for this click.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Clicks from this IP on this offer and affiliate in the rule's window, this one included.
    pub ip_clicks: u32,
    /// Distinct sub IDs seen on this offer and affiliate, this one included.
    pub distinct_sub_ids: u32,
}

/// What one rule made of one click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub rule_id: String,
    pub score: u32,
    pub probability: Probability,
    pub reasons: Vec<Reason>,
    /// Filters that could not run (reason `filter_unavailable` when the rule fails closed).
    pub unavailable: Vec<&'static str>,
    pub declined: bool,
    pub monitor: bool,
}

/// Runs a rule's click filters over one click.
pub fn assess(
    rule: &Rule,
    lists: &Lists,
    offer: &Offer,
    click: &ClickParams,
    client: &ClientInfo,
    counters: Option<Counters>,
) -> Assessment {
    let mut reasons = Vec::new();
    let mut unavailable = Vec::new();
    let ua = client.user_agent.as_ref();
    for filter in rule.filters.iter().filter(|f| f.kind.is_click_level()) {
        if let FilterKind::Bot(settings) = filter.kind {
            if let Some(signal) = bot_signal(settings, client) {
                reasons.push(Reason {
                    code: match signal.kind {
                        Kind::Bot => ReasonCode::Bot,
                        Kind::AiAgent => ReasonCode::AiAgent,
                    },
                    rule_id: rule.id.to_string(),
                    matched: signal.describe(),
                    value: ua.map_or("", |u| u.as_str()).to_owned(),
                    points: filter.points * signal.grade.percent() / 100,
                });
            }
            continue;
        }
        let fired = run_filter(
            &filter.kind,
            lists,
            offer,
            click,
            client,
            counters,
            rule.sub_id,
        );
        match fired {
            Ok(Some((code, matched, value))) => reasons.push(Reason {
                code,
                rule_id: rule.id.to_string(),
                matched,
                value,
                points: filter.points,
            }),
            Ok(None) => {}
            Err(()) => unavailable.push(filter.kind.name()),
        }
    }
    let score = reasons.iter().map(|r| r.points).sum();
    let probability = Probability::from_score(score);
    // A link preview is a chat app unfurling a pasted link: it gets the redirect (what the rule
    // found is still logged) unless the rule's bot filter declines previews by name.
    let preview_passes = is_link_preview(ua)
        && !rule
            .filters
            .iter()
            .any(|f| matches!(f.kind, FilterKind::Bot(s) if s.decline_previews));
    let mut declined = rule.threshold.declines(probability) && !preview_passes;
    if !unavailable.is_empty() && rule.on_fault == FaultMode::Closed && !preview_passes {
        declined = true;
        reasons.push(Reason {
            code: ReasonCode::FilterUnavailable,
            rule_id: rule.id.to_string(),
            matched: "on_filter_fault: closed".into(),
            value: unavailable.join(","),
            points: 0,
        });
    }
    Assessment {
        rule_id: rule.id.to_string(),
        score,
        probability,
        reasons,
        unavailable,
        declined,
        monitor: rule.monitor,
    }
}

type Fired = Option<(ReasonCode, String, String)>;

/// The sign the bot filter fires on, after its settings: a preview it declines by name is
/// `certain`, an AI agent it lets through is no sign.
fn bot_signal(settings: BotSettings, client: &ClientInfo) -> Option<Signal> {
    let ua = client.user_agent.as_ref();
    if settings.decline_previews && is_link_preview(ua) {
        let word = ua.map_or("", |u| u.split(['/', ' ']).next().unwrap_or(""));
        return Some(Signal {
            grade: Grade::Certain,
            kind: Kind::Bot,
            token: format!("link preview {word}"),
        });
    }
    signal_of(ua).filter(|s| !(settings.allow_ai_agents && s.kind == Kind::AiAgent))
}

/// A hit of the client's address in `set`; `Err` (the filter is unavailable) when the address
/// could not be read and the list could have matched it.
fn ip_hit(set: &IpSet, client: &ClientInfo, code: ReasonCode) -> Result<Fired, ()> {
    if client.ip_unreadable && !set.is_empty() {
        return Err(());
    }
    Ok(client.ip.and_then(|ip| {
        set.lookup(ip)
            .map(|entry| (code, entry.to_string(), ip.to_string()))
    }))
}

fn run_filter(
    kind: &FilterKind,
    lists: &Lists,
    offer: &Offer,
    click: &ClickParams,
    client: &ClientInfo,
    counters: Option<Counters>,
    sub_id: SubIdParam,
) -> Result<Fired, ()> {
    Ok(match kind {
        // Judged in `assess`, which scales its points by the sign's grade.
        FilterKind::Bot(_) => None,
        FilterKind::FraudDatabase => ip_hit(&lists.fraud_ips, client, ReasonCode::FraudIp)?
            .or_else(|| {
                let device = click.device_id.as_deref()?;
                lists.fraud_device_ids.contains(device).then(|| {
                    (
                        ReasonCode::FraudDevice,
                        device.to_owned(),
                        device.to_owned(),
                    )
                })
            }),
        FilterKind::DatacenterVpn => {
            let asn_hit = |set: &FxHashSet<u32>, code: ReasonCode| {
                let asn = client.asn?;
                set.contains(&asn)
                    .then(|| (code, format!("AS{asn}"), format!("AS{asn}")))
            };
            let range_hit = |set: &IpSet, code| ip_hit(set, client, code).ok().flatten();
            let hit = asn_hit(&lists.datacenter_asns, ReasonCode::DatacenterAsn)
                .or_else(|| range_hit(&lists.datacenter_ips, ReasonCode::DatacenterIp))
                .or_else(|| asn_hit(&lists.vpn_asns, ReasonCode::VpnAsn))
                .or_else(|| range_hit(&lists.vpn_ips, ReasonCode::VpnIp));
            // An ASN hit stands on its own; without one, an unread address leaves the filter
            // unable to say whenever either range list could have held it.
            if hit.is_none() && client.ip_unreadable {
                ip_hit(&lists.datacenter_ips, client, ReasonCode::DatacenterIp)?;
                ip_hit(&lists.vpn_ips, client, ReasonCode::VpnIp)?;
            }
            hit
        }
        FilterKind::Geo => match (&offer.geo, client.country.as_deref()) {
            (Some(geo), Some(country)) if !geo.allows(country) => {
                Some((ReasonCode::Geo, geo.describe(), country.to_owned()))
            }
            _ => None,
        },
        FilterKind::Referrer => client.referer.as_deref().and_then(|referer| {
            if lists.blocked_referrers.is_empty() {
                return None;
            }
            let (host, path) = referer_parts(referer)?;
            let pattern = lists.blocked_referrers.find(&host, &path)?;
            Some((
                ReasonCode::ReferrerBlacklist,
                pattern.text.clone(),
                referer.to_owned(),
            ))
        }),
        FilterKind::OldOsBrowser(min) => client
            .user_agent
            .as_ref()
            .and_then(|ua| old_platform(&ua.platform(), min)),
        FilterKind::DuplicateIp { max, window_hours } => {
            if client.ip_unreadable {
                return Err(());
            }
            let c = counters.ok_or(())?;
            (c.ip_clicks > *max).then(|| {
                let ip = client.ip.map(|ip| ip.to_string()).unwrap_or_default();
                (
                    ReasonCode::DuplicateIp,
                    format!("more than {max} in {window_hours}h"),
                    format!("{ip}: {}", c.ip_clicks),
                )
            })
        }
        FilterKind::SubIdValidity { max } => {
            let c = counters.ok_or(())?;
            (c.distinct_sub_ids > *max).then(|| {
                let sub = sub_id.value(click).unwrap_or("");
                (
                    ReasonCode::SubIdValidity,
                    format!("more than {max} sub IDs"),
                    format!("{sub}: {}", c.distinct_sub_ids),
                )
            })
        }
        FilterKind::MinClickToConversion { .. } | FilterKind::MaxClickToConversion { .. } => None,
    })
}

fn old_platform(p: &crate::ua::Platform, min: &MinVersions) -> Fired {
    if let Some((os, v)) = p.os {
        let floor = match os {
            Os::Android => min.android,
            Os::Ios => min.ios,
            Os::Windows => min.windows,
            Os::MacOs => min.macos,
        };
        if v < floor {
            return Some((
                ReasonCode::OldOs,
                format!("{} < {floor}", os.name()),
                format!("{} {v}", os.name()),
            ));
        }
    }
    if let Some((b, v)) = p.browser {
        let floor = match b {
            Browser::Chrome => min.chrome,
            Browser::Firefox => min.firefox,
            Browser::Safari => min.safari,
            Browser::Edge => min.edge,
        };
        if v < floor {
            return Some((
                ReasonCode::OldBrowser,
                format!("{} < {floor}", b.name()),
                format!("{} {v}", b.name()),
            ));
        }
    }
    None
}
