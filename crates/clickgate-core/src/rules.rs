//! Judging a click by its rule: which of the rule's filters fire, how their points add up to a
//! fraud probability, and whether that reaches the rule's decline threshold. The rules themselves,
//! as compiled from the document, are in [`crate::config::rules`]; each filter's judgement is in
//! [`crate::filters`].

use crate::click::{ClickParams, ClientInfo};
use crate::config::rules::{Filter, Probability, Rule};
use crate::config::Offer;
use crate::filters::{Lists, Seen};
use crate::verdict::{FaultMode, Reason, ReasonCode};

pub use crate::filters::Counters;

/// What one rule made of one click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub rule_id: String,
    pub score: u32,
    pub(crate) probability: Probability,
    pub reasons: Vec<Reason>,
    /// Filters that could not run (reason `filter_unavailable` when the rule fails closed).
    pub unavailable: Vec<&'static str>,
    pub(crate) declined: bool,
    pub monitor: bool,
}

/// Runs a rule's click filters over one click.
pub(crate) fn assess(
    rule: &Rule,
    lists: &Lists,
    offer: &Offer,
    click: &ClickParams,
    client: &ClientInfo,
    counters: Option<Counters>,
) -> Assessment {
    let mut reasons = Vec::new();
    let mut unavailable = Vec::new();
    let seen = Seen {
        click,
        client,
        lists,
        geo: offer.geo.as_ref(),
        sub_id: rule.sub_id.value(click),
        counters,
    };
    // A share filter of conversions judges clicks too, under a rule that judges both: the
    // affiliate's clicks get its points while its conversions' share is beyond the bound.
    let judges_clicks = |f: &&Filter| f.kind.is_click_level() || f.kind.share().is_some();
    for filter in rule.filters.iter().filter(judges_clicks) {
        match filter.kind.judge_click(&seen, filter.points) {
            Ok(Some(hit)) => reasons.push(Reason {
                code: hit.code,
                rule_id: rule.id.to_string(),
                matched: hit.matched,
                value: hit.value,
                points: hit.points,
            }),
            Ok(None) => {}
            Err(_) => unavailable.push(filter.kind.name()),
        }
    }
    let score = reasons.iter().map(|r| r.points).sum();
    let probability = Probability::from_score(score);
    // A link preview is a chat app unfurling a pasted link: it gets the redirect (what the rule
    // found is still logged) unless the rule's bot filter declines previews by name.
    let preview_passes =
        client.is_preview() && !rule.filters.iter().any(|f| f.kind.declines_previews());
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
