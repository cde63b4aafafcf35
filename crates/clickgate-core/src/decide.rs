//! The click decision: a parsed click and a compiled config in, a verdict out.
//!
//! Pure: the time and the random nonce are passed in by the edge, so the same inputs always give the
//! same decision, and the replay tool and the tests run exactly what the Worker runs.
//!
//! A block is a value ([`Decision::Block`]) carrying its reasons; an `Err` here means the request was
//! not a servable click at all (unknown offer), which is the client's problem, not a verdict.

use std::borrow::Cow;

use crate::click::{self, ClickParams, ClientInfo, Id, RequestError};
use crate::config::rules::{Action, Rule, SubIdParam};
use crate::config::{Config, Offer, OfferStatus};
use crate::filters::FilterKind;
use crate::flood::FloodView;
use crate::ip::IpText;
use crate::log::{key, Digits, JsonLine, LogClean};
use crate::rules::{assess, Assessment, Counters};
use crate::signing::SIGNING_PARAMS;
use crate::signing::{Signature, SignatureStatus};
use crate::template::{MacroValues, Template};
use crate::time::rfc3339_ms;
use crate::token::{self, TokenKey, TokenVerdict, NONCE_LEN};
use crate::verdict::{Decision, FaultMode, Reason, ReasonCode, Verdict};

/// Everything about one decided click: what the HTTP layer answers and what the log records.
#[derive(Debug, Clone)]
pub struct ClickOutcome {
    pub transaction_id: String,
    pub decision: Decision,
    pub at_ms: u64,
    pub click: ClickParams,
    pub advertiser_id: Option<Id>,
    pub client: ClientInfo,
    /// A chat app or social site unfurling the link: redirected, but not a person's click.
    pub preview: bool,
    pub(crate) config_digest: String,
    /// What the deciding rule made of the click, when a rule covered it.
    pub assessment: Option<Assessment>,
    /// The allowlist entry that let the click through every filter.
    pub(crate) allowlisted: Option<String>,
    /// What the network's signing policy made of the click, when it has one.
    pub signature: Option<Signature>,
    /// The network's object had not answered this isolate for a while (its flood state is stale).
    pub(crate) flood_unavailable: bool,
    /// The network's flood block this click would have met, its flood mode being `report_only`:
    /// the click goes on as decided, and counts as `would_block`.
    pub(crate) flood_would_block: Option<Reason>,
    /// The link profile the click came in by, where the document declares profiles.
    pub profile: Option<String>,
    /// The relay that carried the click (`lists.relays`), whose network is not held against it.
    pub relay: Option<String>,
    /// Which parameter is the click's sub ID: its rule's, as the lists read it.
    pub(crate) sub_id_param: SubIdParam,
}

/// What the edge learned about a click beyond the request itself.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The duplicate-IP and sub-ID counts (`None`: the rule reads none, or they are unavailable).
    pub counters: Option<Counters>,
    /// The network's signing verdict, when it has a policy.
    pub signature: Option<Signature>,
    /// What the isolate knows of the network's click-flood state.
    pub flood: FloodView,
}

/// Whether a rule of the config judges the request's headers and connection (the `spoof` filter):
/// only then are they read into the click and written to its log line, so the log of a config
/// without the filter is as it was and keeps no header that nothing judged.
pub(crate) fn reads_sent(config: &Config) -> bool {
    config.rules.iter().any(|r| {
        r.filters
            .iter()
            .any(|f| matches!(f.kind, FilterKind::Spoof(_)))
    })
}

/// What the edge reads of a click's request: the headers that cross from the runtime into wasm,
/// and whether `request.cf`'s connection facts do. Each crossing costs on every click, so a config
/// without the `spoof` filter reads only what every click uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    /// Those of [`SPOOF_HEADERS`] the click reads.
    pub headers: &'static [&'static str],
    /// `request.cf`'s `httpProtocol`, `tlsVersion`, `tlsCipher` and the client's own
    /// `Accept-Encoding` (`clientAcceptEncoding`).
    pub connection: bool,
}

/// The headers every click reads: the address, the User-Agent, the referrer, and `accept`, which
/// picks the block page's form.
pub(crate) const CLICK_HEADERS: [&str; 4] = ["cf-connecting-ip", "user-agent", "referer", "accept"];

/// Every header a click can read: those of every click, then the `spoof` filter's own (`accept`,
/// already among the first, is not said twice).
pub(crate) const SPOOF_HEADERS: [&str; 3 + click::SENT_HEADERS.len()] = {
    let mut all = [""; 3 + click::SENT_HEADERS.len()];
    let mut i = 0;
    while i < all.len() {
        all[i] = if i < 3 {
            CLICK_HEADERS[i]
        } else {
            click::SENT_HEADERS[i - 3]
        };
        i += 1;
    }
    all
};

/// What the edge reads under `config`; `None` while the isolate has none loaded, when the click
/// waits for the first and everything is read, since that config may have the filter.
pub fn reads(config: Option<&Config>) -> Reads {
    if config.is_none_or(reads_sent) {
        Reads {
            headers: &SPOOF_HEADERS,
            connection: true,
        }
    } else {
        Reads {
            headers: &CLICK_HEADERS,
            connection: false,
        }
    }
}

/// The click's offer, when the config serves it: a listed offer, or an unlisted one its link
/// profile forwards to the profile's destination. An unknown offer is a 404, a paused one too.
pub(crate) fn servable_offer<'c>(
    config: &'c Config,
    click: &ClickParams,
) -> Result<Cow<'c, Offer>, RequestError> {
    let offer = match config.offers.get(&click.offer_id) {
        Some(offer) => offer,
        None => {
            let unlisted = config.links.of(click).unlisted.as_ref().ok_or_else(|| {
                RequestError::UnknownOffer {
                    offer_id: click.offer_id.clone(),
                }
            })?;
            let mut offer = unlisted.clone();
            offer.id = click.offer_id.clone();
            return Ok(Cow::Owned(offer));
        }
    };
    if offer.status == OfferStatus::Paused {
        return Err(RequestError::OfferPaused {
            offer_id: click.offer_id.clone(),
        });
    }
    Ok(Cow::Borrowed(offer))
}

/// What of the link's query reaches the destination: the parameters its format does not read
/// (nor, for a network with a signing policy, the signature's), unless the offer or profile turns
/// passing on off. `{query}` gets the whole query but the signature's parameters.
fn passed_on(
    config: &Config,
    offer: &Offer,
    click: &ClickParams,
    signed: bool,
    template: &Template,
) -> (String, String) {
    let profile = config.links.of(click);
    let query = &click.link.query;
    let signing = |name: &str| signed && SIGNING_PARAMS.contains(&name);
    let whole = match template.uses_query() {
        true => click::pass_on(query, |name| !signing(name)),
        false => String::new(),
    };
    let on = offer.pass_through.unwrap_or(profile.pass_through);
    let rest = match on || template.uses_passthrough() {
        // The link's format read every parameter: none is left to pass on.
        true if !query.is_empty() && !click.link.all_read => {
            click::pass_on(query, |name| !signing(name) && !profile.format.reads(name))
        }
        _ => String::new(),
    };
    (whole, rest)
}

pub fn decide(
    config: &Config,
    key: &TokenKey,
    click: ClickParams,
    client: ClientInfo,
    observed: Observed,
    now_ms: u64,
    nonce: [u8; NONCE_LEN],
) -> Result<ClickOutcome, RequestError> {
    let Observed {
        counters,
        signature,
        flood,
    } = observed;
    let offer = servable_offer(config, &click)?;
    let offer = offer.as_ref();

    let rule = config.rule_for(offer, &click.aff_id);
    let allowlisted = allowlist_entry(config, &click, &client, sub_id_param(rule));

    let checked = checks_before_the_rule(config, &click, rule, signature.as_ref(), &flood);
    let (flood_would_block, checked) = match checked {
        Err(block) => (None, Err(block)),
        // The hard blocklist; an allowlisted click skips it, and the rule.
        Ok(would_block) if allowlisted.is_none() => (would_block, hard_lists(config, &client)),
        Ok(would_block) => (would_block, Ok(())),
    };
    // The deciding rule judges a click no check blocked and no allowlist let through.
    let assessment = match (&checked, &allowlisted) {
        (Ok(()), None) => rule.map(|r| assess(r, &config.lists, offer, &click, &client, counters)),
        _ => None,
    };

    // A declined click is blocked, sent to the rule's fallback, or (monitor mode) let through.
    let declined_by = assessment.as_ref().filter(|a| a.declined).and(rule);
    let (block_reasons, fallback) = match (checked, declined_by) {
        (Err(reasons), _) => (reasons, None),
        (Ok(()), Some(r)) if !r.monitor => match &r.action {
            Action::Block => {
                let reasons = assessment.as_ref().map(|a| a.reasons.clone());
                (reasons.unwrap_or_default(), None)
            }
            Action::Redirect(t) => (Vec::new(), Some(t)),
        },
        (Ok(()), _) => (Vec::new(), None),
    };
    let preview = client.is_preview();
    let verdict = if !block_reasons.is_empty() {
        TokenVerdict::Blocked
    } else if declined_by.is_some() {
        TokenVerdict::Flagged
    } else if preview {
        TokenVerdict::Preview
    } else {
        TokenVerdict::Redirected
    };
    let transaction_id = token::seal(
        key,
        now_ms,
        nonce,
        verdict,
        [&click.offer_id, &click.aff_id],
        u8::try_from(click.link.profile).unwrap_or(0),
    );

    let decision = if block_reasons.is_empty() {
        let template = fallback.unwrap_or(&offer.landing);
        let signed = config.networks.contains_key(&click.aff_id);
        let (query, passthrough) = passed_on(config, offer, &click, signed, template);
        let subs = [0, 1, 2, 3, 4].map(|i| click.subs[i].as_deref());
        let values = MacroValues {
            transaction_id: &transaction_id,
            offer_id: click.offer_id.as_str(),
            aff_id: click.aff_id.as_str(),
            advertiser_id: offer.advertiser_id.as_ref().map(Id::as_str),
            source_id: click.source_id.as_deref(),
            subs,
            link_query: &click.link.query,
            query: &query,
            passthrough: &passthrough,
            ..Default::default()
        };
        // A template that places the parameters itself gets them there, and only there.
        let location = match template.uses_passthrough() || template.uses_query() {
            true => template.render(&values),
            false => template.render_adding(&values, &passthrough),
        };
        Decision::Redirect { location }
    } else {
        Decision::Block {
            reasons: block_reasons,
        }
    };

    let profile = config.links.named(&click).map(str::to_owned);
    let relay = config.lists.relay(client.ip).map(str::to_owned);
    Ok(ClickOutcome {
        transaction_id,
        decision,
        at_ms: now_ms,
        advertiser_id: offer.advertiser_id.clone(),
        preview,
        click,
        client,
        config_digest: config.digest.clone(),
        assessment,
        allowlisted,
        signature,
        flood_unavailable: flood.unreachable,
        flood_would_block,
        profile,
        relay,
        sub_id_param: sub_id_param(rule),
    })
}

/// The network's checks before the rule, in their order, each returning early with the click's
/// block: its signature, the operator's blocklist, its flood. `Ok` carries the flood block the
/// click would have met, its network's flood mode being `report_only`.
fn checks_before_the_rule(
    config: &Config,
    click: &ClickParams,
    rule: Option<&Rule>,
    signature: Option<&Signature>,
    flood: &FloodView,
) -> Result<Option<Reason>, Vec<Reason>> {
    // A network's signature comes first: a forged click is not made genuine by an allowlist.
    if let Some(sig) = signature.filter(|s| s.blocks()) {
        return Err(vec![signature_block(sig, &click.aff_id)]);
    }
    // An operator's blocklist entry refuses the affiliate (or its sub ID) whatever the allowlists
    // and thresholds say: it is the operator's later, deliberate word.
    if let Some(reason) = blocklist_block(config, click, rule) {
        return Err(vec![reason]);
    }
    // A network over its flood threshold is blocked for the day, but a click it signed validly is
    // let through when its policy exempts signed clicks.
    let signed_exempt = signature.is_some_and(|s| s.valid() && s.flood_exempt);
    if signed_exempt {
        return Ok(None);
    }
    match flood_check(flood, &click.aff_id) {
        FloodCheck::Block(reason) => Err(vec![reason]),
        FloodCheck::WouldBlock(reason) => Ok(Some(reason)),
        FloodCheck::Pass => Ok(None),
    }
}

fn signature_block(sig: &Signature, network: &Id) -> Reason {
    Reason {
        code: sig.code(),
        rule_id: format!("networks.{network}.signing"),
        matched: if sig.valid() {
            "on_replay_store_fault: closed".to_owned()
        } else {
            sig.detail.clone()
        },
        value: sig.kid.clone().unwrap_or_default(),
        points: 0,
    }
}

fn blocklist_block(config: &Config, click: &ClickParams, rule: Option<&Rule>) -> Option<Reason> {
    let sub_id = sub_id_param(rule).value(click);
    let entry = config.blocklist.blocking(&click.aff_id, sub_id)?;
    Some(Reason {
        code: ReasonCode::Blocklisted,
        rule_id: "blocklist".into(),
        matched: entry.listed(),
        value: match &entry.sub_id {
            Some(sub) => sub.clone(),
            None => click.aff_id.to_string(),
        },
        points: 0,
    })
}

/// What the network's flood state makes of a click.
enum FloodCheck {
    Pass,
    Block(Reason),
    /// The block the click would have met, its network's flood mode being `report_only`.
    WouldBlock(Reason),
}

fn flood_check(flood: &FloodView, network: &Id) -> FloodCheck {
    // Named only when the check blocks: most clicks pass.
    let rule_id = || format!("networks.{network}.flood");
    if let Some(f) = &flood.block {
        let reason = Reason {
            code: ReasonCode::ClickFlood,
            rule_id: rule_id(),
            matched: f.cause.as_str().to_owned(),
            value: f.detail.clone(),
            points: 0,
        };
        // An operator's block is meant to block, whatever the thresholds' mode.
        if flood.report_only && f.cause != crate::flood::FloodCause::Operator {
            FloodCheck::WouldBlock(reason)
        } else {
            FloodCheck::Block(reason)
        }
    } else if flood.unreachable && flood.on_fault == FaultMode::Closed {
        FloodCheck::Block(Reason {
            code: ReasonCode::FloodCheckUnavailable,
            rule_id: rule_id(),
            matched: "on_object_fault: closed".into(),
            value: "the network's object has not answered".into(),
            points: 0,
        })
    } else {
        FloodCheck::Pass
    }
}

/// The hard IP blocklist: a block with its reasons, or the way on to the rule.
fn hard_lists(config: &Config, client: &ClientInfo) -> Result<(), Vec<Reason>> {
    let mut reasons = Vec::new();
    if client.ip_unreadable && !config.blocked_ips.is_empty() {
        // The blocklist is a hard block: a click whose address cannot be read is not cleared by
        // it (fail closed).
        reasons.push(Reason {
            code: ReasonCode::IpUnreadable,
            rule_id: "lists.blocked_ips".into(),
            matched: "CF-Connecting-IP is not an IP address".into(),
            value: String::new(),
            points: 0,
        });
    }
    if let Some(ip) = client.ip {
        if let Some(entry) = config.blocked_ips.lookup(ip) {
            reasons.push(Reason {
                code: ReasonCode::IpBlocklist,
                rule_id: "lists.blocked_ips".into(),
                matched: entry.to_string(),
                value: ip.to_string(),
                points: 0,
            });
        }
    }
    match reasons.is_empty() {
        true => Ok(()),
        false => Err(reasons),
    }
}

/// Which parameter is the sub ID: the rule's setting, `sub1` without a rule.
fn sub_id_param(rule: Option<&Rule>) -> SubIdParam {
    rule.map_or(SubIdParam::Sub(0), |r| r.sub_id)
}

/// Allowlisted IPs, affiliates and sub IDs pass every filter.
fn allowlist_entry(
    config: &Config,
    click: &ClickParams,
    client: &ClientInfo,
    sub_id: SubIdParam,
) -> Option<String> {
    let lists = &config.lists;
    if let Some(entry) = client.ip.and_then(|ip| lists.allowed_ips.lookup(ip)) {
        return Some(format!("ip {entry}"));
    }
    if lists.allowed_affiliates.contains(&click.aff_id) {
        return Some(format!("affiliate {}", click.aff_id));
    }
    sub_id
        .value(click)
        .filter(|s| lists.allowed_sub_ids.contains(*s))
        .map(|s| format!("sub ID {s}"))
}

/// One reason as the log line writes it.
fn reason_json(r: &Reason) -> String {
    JsonLine::new()
        .plain(key!("code"), r.code.as_str())
        .str(key!("rule_id"), &r.rule_id)
        .str(key!("matched"), &r.matched)
        .str(key!("value"), &r.value)
        .num(key!("points"), u64::from(r.points))
        .finish()
}

impl ClickOutcome {
    /// The reasons behind the verdict: those that blocked the click, or else what the deciding rule
    /// found (a monitored or under-threshold click still shows which filters fired).
    pub(crate) fn reasons(&self) -> &[Reason] {
        match (&self.decision, &self.assessment) {
            (Decision::Block { reasons }, _) => reasons,
            (_, Some(a)) => &a.reasons,
            _ => &[],
        }
    }

    /// The rule or list that decided the click, if one did.
    pub fn rule_id(&self) -> Option<&str> {
        let rule = self.assessment.as_ref().map(|a| a.rule_id.as_str());
        self.reasons().first().map(|r| r.rule_id.as_str()).or(rule)
    }

    pub(crate) fn is_blocked(&self) -> bool {
        matches!(self.decision, Decision::Block { .. })
    }

    /// Blocked, declined by its rule in monitor mode, or let through a flood block in report-only
    /// mode: what the flood threshold counts as flagged, and the report as `would_block`.
    pub(crate) fn flagged(&self) -> bool {
        self.is_blocked()
            || self.assessment.as_ref().is_some_and(|a| a.declined)
            || self.flood_would_block.is_some()
    }

    /// The decision as one JSON log line. It carries every input of the decision (ip, user agent,
    /// referrer, ids, time), so a day of these lines can be replayed through another config.
    /// Absent values are left out.
    pub fn log_line(&self) -> String {
        self.log_line_under(LogClean::All)
    }

    /// A click let through with nothing to tell: redirected, no filter fired, no rule declined or
    /// would have, not allowlisted, not a preview, and nothing it needed was unavailable. The only
    /// decisions the config's `log` may leave out of the log.
    pub(crate) fn clean(&self) -> bool {
        let a = self.assessment.as_ref();
        matches!(self.decision, Decision::Redirect { .. })
            && !self.preview
            && self.allowlisted.is_none()
            && !self.flagged()
            && self.reasons().is_empty()
            && a.is_none_or(|a| a.unavailable.is_empty() && !a.declined)
            && !self.flood_unavailable
            && self.flood_would_block.is_none()
            && self.signature.as_ref().is_none_or(|s| {
                s.status == SignatureStatus::Valid && !s.breaker_open && !s.replay_unavailable
            })
    }

    /// The decision's line under the config's `log`: a setting other than `"all"` is named in
    /// every line (`"log"`), so whoever reads the log knows its clean clicks are a sample.
    pub(crate) fn log_line_under(&self, log: LogClean) -> String {
        let verdict = match &self.decision {
            Decision::Redirect { .. } => Verdict::Redirect,
            Decision::Block { .. } => Verdict::Block,
        };
        // The reasons that decided a block, or else what the rule found (a monitored or
        // under-threshold click still shows which filters fired).
        let reasons = self.reasons();
        let reasons_json = match reasons {
            // Most clicks: nothing fired.
            [] => Cow::Borrowed("[]"),
            _ => {
                let mut json = String::from("[");
                for (i, r) in reasons.iter().enumerate() {
                    if i > 0 {
                        json.push(',');
                    }
                    json.push_str(&reason_json(r));
                }
                json.push(']');
                Cow::Owned(json)
            }
        };
        let flood_would_block = self.flood_would_block.as_ref().map(reason_json);
        let a = self.assessment.as_ref();
        let unavailable = a
            .filter(|a| !a.unavailable.is_empty())
            .map(|a| a.unavailable.join(","));
        let c = &self.click;
        let ip = self.client.ip.map(IpText::of);
        let asn = self.client.asn.map(|n| Digits::of(u64::from(n)));
        // What the spoof filter read, for replay to judge again: present only under a config
        // that has the filter.
        let sent = self.client.sent.as_ref().map(|sent| {
            sent.fields()
                .fold(JsonLine::new(), |line, (name, value)| line.str(name, value))
                .finish()
        });
        // The platform's bot signals, present only on a zone that has them.
        let platform = self.client.platform.as_ref().map(|p| {
            let line = JsonLine::new();
            let line = match p.score {
                Some(score) => line.num("bot_score", u64::from(score)),
                None => line,
            };
            line.bool("verified_bot", p.verified_bot)
                .bool("static_resource", p.static_resource)
                .opt("as_organization", p.as_organization.as_deref())
                .finish()
        });
        JsonLine::new()
            .plain(key!("event"), "click")
            .plain(key!("ts"), &rfc3339_ms(self.at_ms))
            .plain(key!("transaction_id"), &self.transaction_id)
            .plain(key!("verdict"), verdict.as_str())
            .opt(key!("rule_id"), self.rule_id())
            .opt_plain(key!("probability"), a.map(|a| a.probability.name()))
            .num(key!("score"), a.map_or(0, |a| u64::from(a.score)))
            .bool(key!("declined"), a.is_some_and(|a| a.declined))
            .bool(key!("monitor"), a.is_some_and(|a| a.monitor))
            .raw(key!("reasons"), &reasons_json)
            .opt_plain(key!("unavailable"), unavailable.as_deref())
            .opt(key!("allowlisted"), self.allowlisted.as_deref())
            .opt_raw(
                key!("signature"),
                self.signature.as_ref().map(Signature::log_json).as_deref(),
            )
            .opt_raw(
                key!("flood_unavailable"),
                self.flood_unavailable.then_some("true"),
            )
            .opt_raw(key!("would_block"), flood_would_block.as_deref())
            .opt(key!("profile"), self.profile.as_deref())
            .plain(key!("offer_id"), c.offer_id.as_str())
            .plain(key!("aff_id"), c.aff_id.as_str())
            .opt_plain(
                key!("advertiser_id"),
                self.advertiser_id.as_ref().map(Id::as_str),
            )
            .opt(key!("source_id"), c.source_id.as_deref())
            .opt(key!("sub1"), c.subs[0].as_deref())
            .opt(key!("sub2"), c.subs[1].as_deref())
            .opt(key!("sub3"), c.subs[2].as_deref())
            .opt(key!("sub4"), c.subs[3].as_deref())
            .opt(key!("sub5"), c.subs[4].as_deref())
            .opt(key!("device_id"), c.device_id.as_deref())
            .opt_plain(key!("ip"), ip.as_ref().map(IpText::as_str))
            // A CF-Connecting-IP that was no address: replay needs it to decide as the edge did.
            .opt_raw(
                key!("ip_unreadable"),
                self.client.ip_unreadable.then_some("true"),
            )
            .opt(key!("country"), self.client.country.as_deref())
            .opt_plain(key!("asn"), asn.as_ref().map(Digits::as_str))
            .opt(key!("relay"), self.relay.as_deref())
            .opt(key!("user_agent"), self.client.user_agent.as_deref())
            .opt_plain(
                key!("client"),
                self.client
                    .user_agent
                    .as_ref()
                    .and_then(|ua| ua.reading().client),
            )
            .opt(key!("referer"), self.client.referer.as_deref())
            .opt_raw(key!("sent"), sent.as_deref())
            .opt_raw(key!("platform"), platform.as_deref())
            .bool(key!("preview"), self.preview)
            .opt_raw(key!("log"), log.line_field().as_deref())
            .str(key!("config"), &self.config_digest)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::click::{route, Route};
    use crate::config::tests::DEMO;
    use crate::signing::SignatureStatus;
    use crate::token::ClickToken;
    use serde_json::Value;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const NOW: u64 = 1_795_435_445_123; // 2026-11-23T12:04:05.123Z

    fn key() -> TokenKey {
        TokenKey::new(b"0123456789abcdef0123456789abcdef-test-only").unwrap()
    }

    fn params(query: &str) -> ClickParams {
        match route("GET", "/c", query).unwrap() {
            Route::Click(c) => c,
            other => panic!("{other:?}"),
        }
    }

    /// A person's phone: the clicks of these tests come from people unless a test says otherwise.
    const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";

    fn from(ip: &str) -> ClientInfo {
        ClientInfo {
            ip: ip.parse().ok(),
            ip_unreadable: false,
            user_agent: Some(PHONE.into()),
            ..ClientInfo::default()
        }
    }

    #[test]
    fn a_flooding_network_in_report_only_is_redirected_and_logged_would_block() {
        let config = Config::compile(DEMO).unwrap();
        let view = |cause| FloodView {
            block: Some(crate::flood::FloodBlock {
                until_ms: NOW + 1,
                cause,
                detail: "700 clicks, ceiling 600".into(),
            }),
            report_only: true,
            ..FloodView::default()
        };
        let go = |flood| {
            decide(
                &config,
                &key(),
                params("offer_id=1001&aff_id=net-7"),
                from("192.0.2.1"),
                Observed {
                    flood,
                    ..Observed::default()
                },
                NOW,
                [7; 8],
            )
            .unwrap()
        };
        let out = go(view(crate::flood::FloodCause::PerMinute));
        assert!(matches!(out.decision, Decision::Redirect { .. }));
        assert!(out.flagged(), "the report counts it as would_block");
        let line: serde_json::Value = serde_json::from_str(&out.log_line()).unwrap();
        assert_eq!(line["verdict"], "redirect");
        assert_eq!(line["would_block"]["code"], "click_flood");
        assert_eq!(line["would_block"]["matched"], "per_minute");
        assert_eq!(line["would_block"]["rule_id"], "networks.net-7.flood");
        let mut tally = crate::report::Tally::default();
        tally.count_click(&out);
        assert_eq!((tally.allowed, tally.would_block), (1, 1));
        // An operator's block is not the thresholds' to report: it blocks.
        let imposed = go(view(crate::flood::FloodCause::Operator));
        assert!(imposed.is_blocked());
        assert!(!imposed.log_line().contains("would_block"));
    }

    #[test]
    fn a_flooding_network_is_blocked_except_for_its_validly_signed_clicks() {
        use crate::config::networks::Mode;
        let config = Config::compile(DEMO).unwrap();
        let flood = FloodView {
            block: Some(crate::flood::FloodBlock {
                until_ms: NOW + 1,
                cause: crate::flood::FloodCause::PerMinute,
                detail: "700 clicks, ceiling 600".into(),
            }),
            ..FloodView::default()
        };
        let go = |observed| {
            decide(
                &config,
                &key(),
                params("offer_id=1001&aff_id=net-7"),
                from("192.0.2.1"),
                observed,
                NOW,
                [7; 8],
            )
            .unwrap()
        };
        let blocked = go(Observed {
            flood: flood.clone(),
            ..Observed::default()
        });
        let Decision::Block { reasons } = &blocked.decision else {
            panic!("{:?}", blocked.decision)
        };
        assert_eq!(
            (reasons[0].code, reasons[0].matched.as_str()),
            (ReasonCode::ClickFlood, "per_minute")
        );
        assert_eq!(blocked.rule_id(), Some("networks.net-7.flood"));
        let valid = |exempt| Signature {
            status: SignatureStatus::Valid,
            detail: String::new(),
            kid: Some("k".into()),
            mode: Mode::Enforce,
            breaker_open: false,
            replay_unavailable: false,
            replay_after_redirect: false,
            on_replay_fault: FaultMode::Open,
            flood_exempt: exempt,
        };
        let signed = go(Observed {
            flood: flood.clone(),
            signature: Some(valid(true)),
            ..Observed::default()
        });
        assert!(matches!(signed.decision, Decision::Redirect { .. }));
        let not_exempt = go(Observed {
            flood,
            signature: Some(valid(false)),
            ..Observed::default()
        });
        assert!(matches!(not_exempt.decision, Decision::Block { .. }));

        // The object silent for too long: open lets the click through and says so, closed refuses.
        let silent = |on_fault| FloodView {
            unreachable: true,
            on_fault,
            ..FloodView::default()
        };
        let open = go(Observed {
            flood: silent(FaultMode::Open),
            ..Observed::default()
        });
        assert!(matches!(open.decision, Decision::Redirect { .. }));
        let line: Value = serde_json::from_str(&open.log_line()).unwrap();
        assert_eq!(line["flood_unavailable"], true);
        let closed = go(Observed {
            flood: silent(FaultMode::Closed),
            ..Observed::default()
        });
        assert_eq!(closed.reasons()[0].code, ReasonCode::FloodCheckUnavailable);
    }

    #[test]
    fn a_bad_signature_blocks_before_anything_else_and_report_only_records_it() {
        use crate::config::networks::Mode;
        let config = Config::compile(DEMO).unwrap();
        let signed = |mode| Observed {
            counters: None,
            flood: FloodView::default(),
            signature: Some(Signature {
                status: SignatureStatus::Failed(ReasonCode::InvalidSignature),
                detail: "the signature does not match".into(),
                kid: None,
                mode,
                breaker_open: false,
                replay_unavailable: false,
                replay_after_redirect: false,
                on_replay_fault: FaultMode::Open,
                flood_exempt: true,
            }),
        };
        let go = |observed| {
            decide(
                &config,
                &key(),
                params("offer_id=1001&aff_id=net-7"),
                from("192.0.2.1"),
                observed,
                NOW,
                [7; 8],
            )
            .unwrap()
        };
        let blocked = go(signed(Mode::Enforce));
        let Decision::Block { reasons } = &blocked.decision else {
            panic!("{:?}", blocked.decision)
        };
        assert_eq!(reasons[0].code, ReasonCode::InvalidSignature);
        assert_eq!(reasons[0].rule_id, "networks.net-7.signing");
        let line: Value = serde_json::from_str(&blocked.log_line()).unwrap();
        assert_eq!(line["signature"]["status"], "invalid_signature");
        assert_eq!(line["signature"]["mode"], "enforce");

        let reported = go(signed(Mode::ReportOnly));
        assert!(matches!(reported.decision, Decision::Redirect { .. }));
        let line: Value = serde_json::from_str(&reported.log_line()).unwrap();
        assert_eq!(line["signature"]["status"], "invalid_signature");
        assert_eq!(line["signature"]["mode"], "report_only");
    }

    fn run(query: &str, ip: &str) -> Result<ClickOutcome, RequestError> {
        let config = Config::compile(DEMO).unwrap();
        decide(
            &config,
            &key(),
            params(query),
            from(ip),
            Observed::default(),
            NOW,
            [7; 8],
        )
    }

    #[test]
    fn clean_click_redirects_with_its_transaction_id() {
        let out = run("offer_id=1001&aff_id=net-7&sub1=a b", "192.0.2.1").unwrap();
        let Decision::Redirect { location } = &out.decision else {
            panic!("{out:?}")
        };
        assert_eq!(
            location,
            &format!(
                "https://shop.example/land?tid={}&o=1001&a=net-7&s1=a%20b",
                out.transaction_id
            )
        );
        let token = ClickToken::open(&out.transaction_id, &key()).unwrap();
        assert_eq!(token.issued_ms, NOW);
        assert_eq!(token.verdict, TokenVerdict::Redirected);
        assert_eq!(
            (token.offer_id.as_str(), token.aff_id.as_str()),
            ("1001", "net-7")
        );
    }

    #[test]
    fn blocklisted_address_and_block_are_blocked_with_reasons() {
        for (ip, entry) in [
            ("203.0.113.7", "203.0.113.7"),
            ("198.51.100.77", "198.51.100.0/24"),
            ("2001:db8:bad::9", "2001:db8:bad::/48"),
        ] {
            let out = run("offer_id=1001&aff_id=net-7", ip).unwrap();
            let Decision::Block { reasons } = &out.decision else {
                panic!("{ip} not blocked")
            };
            assert_eq!(
                reasons,
                &[Reason {
                    code: ReasonCode::IpBlocklist,
                    rule_id: "lists.blocked_ips".into(),
                    matched: entry.into(),
                    value: ip.into(),
                    points: 0,
                }]
            );
            let token = ClickToken::open(&out.transaction_id, &key()).unwrap();
            assert_eq!(token.verdict, TokenVerdict::Blocked);
        }
    }

    #[test]
    fn unknown_and_paused_offers_are_request_errors() {
        assert!(matches!(
            run("offer_id=9&aff_id=1", "192.0.2.1"),
            Err(RequestError::UnknownOffer { .. })
        ));
        assert!(matches!(
            run("offer_id=1002&aff_id=1", "192.0.2.1"),
            Err(RequestError::OfferPaused { .. })
        ));
    }

    #[test]
    fn click_without_a_client_address_is_not_blocked_by_ip_lists() {
        assert!(!run("offer_id=1001&aff_id=1", "").unwrap().is_blocked());
    }

    #[test]
    fn log_line_carries_every_input_and_the_reasons() {
        let out = run(
            "offer_id=1001&aff_id=net-7&sub2=x&source_id=s",
            "198.51.100.77",
        )
        .unwrap();
        let line: Value = serde_json::from_str(&out.log_line()).unwrap();
        assert_eq!(line["event"], "click");
        assert_eq!(line["ts"], "2026-11-23T12:04:05.123Z");
        assert_eq!(line["verdict"], "block");
        assert_eq!(line["rule_id"], "lists.blocked_ips");
        assert_eq!(line["reasons"][0]["code"], "ip_blocklist");
        assert_eq!(line["reasons"][0]["matched"], "198.51.100.0/24");
        assert_eq!(line["ip"], "198.51.100.77");
        assert_eq!(line["sub2"], "x");
        assert_eq!(line["source_id"], "s");
        assert_eq!(line["advertiser_id"], "acme");
        assert_eq!(line["transaction_id"], out.transaction_id.as_str());
        assert!(
            line.get("sub1").is_none(),
            "absent values are left out: {line}"
        );
        assert_eq!(line["user_agent"], PHONE);
    }

    /// The decision line spells the click's fields by `key!`, from literals: they are the
    /// parameters' names, which the what-if tool reads them back by.
    #[test]
    fn the_log_names_the_clicks_fields_as_the_link_does() {
        let query = click::PARAMS
            .iter()
            .enumerate()
            .map(|(i, name)| format!("{name}=v{i}"))
            .collect::<Vec<_>>()
            .join("&");
        let out = run(&query.replace("v0", "1001"), "192.0.2.1").unwrap();
        let line: Value = serde_json::from_str(&out.log_line()).unwrap();
        for (i, name) in click::PARAMS.iter().enumerate() {
            let want = if i == 0 {
                "1001".to_owned()
            } else {
                format!("v{i}")
            };
            assert_eq!(line[name], want.as_str(), "{name} in {line}");
        }
    }

    #[test]
    fn same_inputs_same_decision() {
        // One compiled config judges other clicks between the two (a blocklisted address, a
        // script, another network): nothing they leave behind may change the outcome, which is
        // also the one a fresh config gives and the one these inputs fix.
        let used = Config::compile(DEMO).unwrap();
        let go = |query: &str, client: ClientInfo, nonce: [u8; NONCE_LEN]| {
            decide(
                &used,
                &key(),
                params(query),
                client,
                Observed::default(),
                NOW,
                nonce,
            )
            .unwrap()
        };
        let first = go("offer_id=1001&aff_id=1", from("192.0.2.1"), [7; 8]);
        go("offer_id=1001&aff_id=net-7", from("203.0.113.7"), [1; 8]);
        let script = ClientInfo {
            user_agent: Some("curl/8.5.0".into()),
            ..from("192.0.2.9")
        };
        go("offer_id=1001&aff_id=2&sub1=x", script, [2; 8]);
        let again = go("offer_id=1001&aff_id=1", from("192.0.2.1"), [7; 8]);
        let fresh = run("offer_id=1001&aff_id=1", "192.0.2.1").unwrap();
        for out in [&again, &fresh] {
            assert_eq!(out.transaction_id, first.transaction_id);
            assert_eq!(out.decision, first.decision);
            assert_eq!(out.log_line(), first.log_line());
        }
        assert_eq!(
            ClickToken::open(&first.transaction_id, &key()).unwrap(),
            ClickToken {
                issued_ms: NOW,
                nonce: [7; 8],
                verdict: TokenVerdict::Redirected,
                offer_id: Id::parse("1001").unwrap(),
                aff_id: Id::parse("1").unwrap(),
                profile: 0,
            }
        );
        assert_eq!(
            first.decision,
            Decision::Redirect {
                location: format!(
                    "https://shop.example/land?tid={}&o=1001&a=1&s1=",
                    first.transaction_id
                )
            }
        );
        // Another nonce: another transaction id, and nothing else changes.
        let other = go("offer_id=1001&aff_id=1", from("192.0.2.1"), [8; 8]);
        assert_ne!(other.transaction_id, first.transaction_id);
        assert_eq!(
            other
                .log_line()
                .replace(&other.transaction_id, &first.transaction_id),
            first.log_line()
        );
    }
}

/// The click of a filter's tests and the config it is judged under, through the whole decision:
/// each filter's tests beside it (in `filters/`) and the rules' tests below share them.
#[cfg(test)]
pub(crate) mod harness {
    use super::{decide, ClickOutcome, Observed};
    use crate::click::{route, ClientInfo, Platform, Route, Sent};
    use crate::config::Config;
    use crate::filters::Counters;
    use crate::token::TokenKey;

    pub(crate) const NOW: u64 = 1_795_435_445_123;
    pub(crate) const BROWSER: &str =
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 \
                           (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";

    /// Offers 1 (advertiser acme, geo deny CN) and 2 (advertiser zeta); `rules` is spliced in.
    pub(crate) fn config(rules: &str) -> Config {
        let text = format!(
            r#"{{"version": 1,
            "advertisers": [{{"id": "acme"}}, {{"id": "zeta"}}],
            "offers": [
              {{"id": "1", "advertiser_id": "acme", "landing_url": "https://shop.example/?t={{transaction_id}}", "geo": {{"deny": ["CN"]}}}},
              {{"id": "2", "advertiser_id": "zeta", "landing_url": "https://zeta.example/?t={{transaction_id}}"}}
            ],
            "lists": {{
              "blocked_ips": ["203.0.113.0/24"],
              "allowed_ips": ["192.0.2.200"], "allowed_affiliates": ["trusted"], "allowed_sub_ids": ["vip"],
              "fraud_ips": ["198.51.100.66"], "fraud_device_ids": ["bad-device"],
              "datacenter_asns": [16509, "AS14061"], "datacenter_ips": ["100.64.0.0/10"],
              "vpn_asns": [9009], "vpn_ips": ["2001:db8:aaaa::/48"],
              "blocked_referrers": ["*.spam.example", "ads.example/cheap"]
            }},
            "rules": [{rules}]}}"#
        );
        Config::compile(&text).unwrap_or_else(|e| panic!("{e:#?}"))
    }

    pub(crate) const ALL_FILTERS: &str = r#"{"filters": [{"type": "bot"}, {"type": "fraud_database"}, {"type": "datacenter_vpn"},
        {"type": "geo"}, {"type": "referrer"}, {"type": "old_os_browser"},
        {"type": "duplicate_ip", "max": 2}, {"type": "sub_id_validity", "max": 10}]}"#;

    pub(crate) fn rule(id: &str, extra: &str) -> String {
        format!(
            r#"{{"id": "{id}", "created_at": "2026-11-01T00:00:00Z", "scope": {{"offers": ["1", "2"]}},
               "strategy": {ALL_FILTERS} {extra}}}"#
        )
    }

    pub(crate) struct Click<'a> {
        pub(crate) query: &'a str,
        pub(crate) ip: &'a str,
        pub(crate) ua: &'a str,
        pub(crate) referer: Option<&'a str>,
        pub(crate) country: Option<&'a str>,
        pub(crate) asn: Option<u32>,
        pub(crate) counters: Option<Counters>,
        /// What the request showed the spoof filter; `None` as under a config without it.
        pub(crate) sent: Option<&'a Sent>,
        /// The platform's bot signals; `None` as on a zone without Bot Management.
        pub(crate) platform: Option<&'a Platform>,
    }

    impl Default for Click<'_> {
        fn default() -> Self {
            Click {
                query: "offer_id=1&aff_id=net-7&sub1=s1",
                ip: "192.0.2.10",
                ua: BROWSER,
                referer: None,
                country: Some("DE"),
                asn: Some(3320),
                counters: Some(Counters {
                    ip_clicks: 1,
                    distinct_sub_ids: 1,
                    ..Counters::default()
                }),
                sent: None,
                platform: None,
            }
        }
    }

    pub(crate) fn run(config: &Config, c: Click) -> ClickOutcome {
        let Ok(Route::Click(params)) = route("GET", "/c", c.query) else {
            panic!("{}", c.query)
        };
        let client = ClientInfo {
            ip: c.ip.parse().ok(),
            ip_unreadable: c.ip == UNREADABLE,
            user_agent: Some(c.ua)
                .filter(|u| !u.is_empty())
                .map(crate::ua::UserAgent::parse),
            referer: c.referer.map(str::to_owned),
            country: c.country.map(str::to_owned),
            asn: c.asn,
            sent: c.sent.cloned().map(Box::new),
            platform: c.platform.cloned().map(Box::new),
        };
        let key = TokenKey::new(b"0123456789abcdef0123456789abcdef-test-only").unwrap();
        decide(
            config,
            &key,
            params,
            client,
            Observed {
                counters: c.counters,
                ..Observed::default()
            },
            NOW,
            [3; 8],
        )
        .unwrap()
    }

    pub(crate) fn codes(out: &ClickOutcome) -> Vec<&'static str> {
        out.reasons().iter().map(|r| r.code.as_str()).collect()
    }

    /// A `Click::ip` that stands for a `CF-Connecting-IP` header that is not an address.
    pub(crate) const UNREADABLE: &str = "unreadable";

    /// Each named click, under a rule with every click filter that declines from low, is blocked
    /// for the one code given.
    pub(crate) fn fires_alone(cases: Vec<(&str, Click, &str)>) {
        let cfg = config(&rule("r", r#", "decline": "low_and_higher""#));
        for (name, click, want) in cases {
            let out = run(&cfg, click);
            assert!(
                out.is_blocked(),
                "{name}: not blocked: {:?}",
                out.assessment
            );
            assert_eq!(codes(&out), [want], "{name}");
        }
    }
}

#[cfg(test)]
mod rule_tests {
    use super::harness::*;
    use super::*;
    use crate::config::rules::Probability;
    use crate::token::ClickToken;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn points_add_up_to_the_probability_the_threshold_reads() {
        // Datacenter alone is 60 points: medium.
        let dc = Click {
            asn: Some(16509),
            ..Click::default()
        };
        for (decline, blocked) in [
            ("high", false),
            ("medium_and_higher", true),
            ("low_and_higher", true),
            ("do_not_decline", false),
        ] {
            let cfg = config(&rule("r", &format!(r#", "decline": "{decline}""#)));
            let out = run(&cfg, Click { ..dc });
            assert_eq!(out.is_blocked(), blocked, "{decline}");
            let a = out.assessment.unwrap();
            assert_eq!(
                (a.score, a.probability),
                (60, Probability::Medium),
                "{decline}"
            );
        }
        // Datacenter and an old browser: 90, high.
        let cfg = config(&rule("r", r#", "decline": "high""#));
        let both = Click {
            asn: Some(16509),
            ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/80.0.0.0 Safari/537.36",
            ..Click::default()
        };
        let out = run(&cfg, both);
        assert!(out.is_blocked());
        assert_eq!(out.assessment.unwrap().score, 90);
    }

    #[test]
    fn custom_points_override_the_defaults() {
        let rule = r#"{"id": "r", "created_at": "2026-11-01", "scope": {"offers": ["1"]}, "decline": "high",
                       "strategy": {"filters": [{"type": "old_os_browser", "points": 85}]}}"#;
        let old = Click { ua: "Mozilla/5.0 (Linux; Android 6.0; X) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36", ..Click::default() };
        assert!(run(&config(rule), old).is_blocked());
    }

    #[test]
    fn a_known_client_is_named_in_the_log() {
        let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                  Mobile/15E148 Instagram 307.0.0.34.111 (iPhone14,5; iOS 17_1; en_US@calendar=gregorian; en-US; scale=3.00)";
        let out = run(
            &config(&rule("r", "")),
            Click {
                ua,
                ..Click::default()
            },
        );
        assert!(!out.is_blocked());
        let line: serde_json::Value = serde_json::from_str(&out.log_line()).unwrap();
        assert_eq!(line["client"], "instagram");
    }

    #[test]
    fn monitor_mode_redirects_and_records_the_would_be_block() {
        let cfg = config(&rule("r", r#", "ignore_results": true"#));
        let out = run(
            &cfg,
            Click {
                ua: "python-requests/2.31",
                ..Click::default()
            },
        );
        let Decision::Redirect { location } = &out.decision else {
            panic!("monitor mode blocked")
        };
        assert!(location.starts_with("https://shop.example/"));
        let a = out.assessment.as_ref().unwrap();
        assert!(a.declined && a.monitor);
        let token = ClickToken::open(
            &out.transaction_id,
            &TokenKey::new(b"0123456789abcdef0123456789abcdef-test-only").unwrap(),
        )
        .unwrap();
        assert_eq!(token.verdict, TokenVerdict::Flagged);
        let line: serde_json::Value = serde_json::from_str(&out.log_line()).unwrap();
        assert_eq!(
            (
                line["verdict"].as_str(),
                line["declined"].as_bool(),
                line["monitor"].as_bool()
            ),
            (Some("redirect"), Some(true), Some(true))
        );
        assert_eq!(line["reasons"][0]["code"], "bot");
        assert_eq!(line["rule_id"], "r");
    }

    #[test]
    fn fallback_action_sends_declined_clicks_elsewhere() {
        let cfg = config(&rule(
            "r",
            r#", "action": {"redirect": "https://fallback.example/?t={transaction_id}"}"#,
        ));
        let out = run(
            &cfg,
            Click {
                ua: "curl/8",
                ..Click::default()
            },
        );
        let Decision::Redirect { location } = &out.decision else {
            panic!()
        };
        assert_eq!(
            location,
            &format!("https://fallback.example/?t={}", out.transaction_id)
        );
    }

    #[test]
    fn allowlists_override_every_filter_and_the_blocklist() {
        let cfg = config(&rule(
            "r",
            r#", "decline": "low_and_higher", "sub_id_param": "sub2""#,
        ));
        let bad = || Click {
            ua: "curl/8",
            asn: Some(16509),
            country: Some("CN"),
            ..Click::default()
        };
        for (name, click, entry) in [
            (
                "ip",
                Click {
                    ip: "192.0.2.200",
                    ..bad()
                },
                "ip 192.0.2.200",
            ),
            (
                "affiliate",
                Click {
                    query: "offer_id=1&aff_id=trusted",
                    ..bad()
                },
                "affiliate trusted",
            ),
            (
                "sub id",
                Click {
                    query: "offer_id=1&aff_id=n&sub2=vip",
                    ..bad()
                },
                "sub ID vip",
            ),
        ] {
            let out = run(&cfg, click);
            assert!(!out.is_blocked(), "{name}");
            assert_eq!(out.allowlisted.as_deref(), Some(entry), "{name}");
        }
        // The sub ID allowlist reads the rule's sub ID parameter, not any sub.
        assert!(run(
            &cfg,
            Click {
                query: "offer_id=1&aff_id=n&sub1=vip",
                ..bad()
            }
        )
        .is_blocked());
        // The hard blocklist is overridden too.
        let no_rules = config("");
        assert!(run(
            &no_rules,
            Click {
                ip: "203.0.113.9",
                ..Click::default()
            }
        )
        .is_blocked());
        assert!(!run(
            &no_rules,
            Click {
                ip: "203.0.113.9",
                query: "offer_id=1&aff_id=trusted",
                ..Click::default()
            }
        )
        .is_blocked());
    }

    #[test]
    fn a_blocklisted_affiliate_or_sub_id_is_blocked_even_when_allowlisted() {
        use crate::config::blocklist::Entry;
        let mut cfg = config(&rule("r", r#", "sub_id_param": "sub2""#));
        let listed = |aff, sub| Entry::new(aff, sub, "alice", None, 1).unwrap();
        cfg.blocklist.add(listed("trusted", None)).unwrap();
        cfg.blocklist.add(listed("n", Some("bad"))).unwrap();
        let clean = |query| Click {
            query,
            ..Click::default()
        };
        let out = run(&cfg, clean("offer_id=1&aff_id=trusted&sub2=x"));
        assert_eq!(codes(&out), ["blocklisted"]);
        assert_eq!(out.reasons()[0].matched, "affiliate trusted");
        let line: serde_json::Value = serde_json::from_str(&out.log_line()).unwrap();
        assert_eq!(line["reasons"][0]["code"], "blocklisted");
        assert_eq!(line["reasons"][0]["rule_id"], "blocklist");
        let out = run(&cfg, clean("offer_id=1&aff_id=n&sub2=bad"));
        assert_eq!(codes(&out), ["blocklisted"]);
        assert_eq!(out.reasons()[0].value, "bad");
        // Only the listed sub ID, read from the rule's sub ID parameter, and only its affiliate.
        for query in [
            "offer_id=1&aff_id=n&sub2=good",
            "offer_id=1&aff_id=n&sub1=bad",
            "offer_id=1&aff_id=other&sub2=bad",
            "offer_id=1&aff_id=n",
        ] {
            assert!(!run(&cfg, clean(query)).is_blocked(), "{query}");
        }
    }

    #[test]
    fn precedence_priority_then_specificity_then_newest_then_id() {
        // Each rule declines on a different signal, so which one decided is visible in the codes.
        let r = |id: &str, filter: &str, scope: &str, created: &str, priority: i64| {
            format!(
                r#"{{"id": "{id}", "created_at": "{created}", "priority": {priority}, "scope": {scope},
                   "decline": "low_and_higher", "strategy": {{"filters": [{{"type": "{filter}"}}]}}}}"#
            )
        };
        let broad = r#"{"offers": ["1", "2"]}"#;
        let narrow = r#"{"offers": ["1"], "affiliates": ["net-7"]}"#;
        let click = || Click {
            ua: "curl/8",
            asn: Some(16509),
            ..Click::default()
        };
        let decided = |rules: Vec<String>| {
            run(&config(&rules.join(",")), click())
                .assessment
                .unwrap()
                .rule_id
        };

        // priority beats specificity
        assert_eq!(
            decided(vec![
                r("a", "bot", narrow, "2026-01-01", 0),
                r("b", "datacenter_vpn", broad, "2026-01-01", 5)
            ]),
            "b"
        );
        // specificity beats newest
        assert_eq!(
            decided(vec![
                r("a", "bot", narrow, "2026-01-01", 0),
                r("b", "datacenter_vpn", broad, "2026-06-01", 0)
            ]),
            "a"
        );
        // newest wins a tie on both
        assert_eq!(
            decided(vec![
                r("a", "bot", broad, "2026-01-01", 0),
                r("b", "datacenter_vpn", broad, "2026-06-01", 0)
            ]),
            "b"
        );
        // the smaller id wins a full tie
        assert_eq!(
            decided(vec![
                r("b", "bot", broad, "2026-01-01", 0),
                r("a", "datacenter_vpn", broad, "2026-01-01", 0)
            ]),
            "a"
        );
        // a rule whose scope excludes the affiliate does not decide
        let excl = r#"{"offers": ["1"], "affiliates": {"include": "all", "exclude": ["net-7"]}}"#;
        assert_eq!(
            decided(vec![
                r("a", "bot", excl, "2026-06-01", 9),
                r("b", "datacenter_vpn", broad, "2026-01-01", 0)
            ]),
            "b"
        );
        // advertiser scope
        let adv = r#"{"advertisers": ["acme"]}"#;
        assert_eq!(decided(vec![r("z", "bot", adv, "2026-06-01", 0)]), "z");
    }

    #[test]
    fn paused_and_conversion_only_rules_do_not_judge_clicks() {
        let cfg = config(
            &[
                rule("p", r#", "status": "paused""#),
                rule("c", r#", "level": "conversion""#),
            ]
            .join(","),
        );
        let out = run(
            &cfg,
            Click {
                ua: "curl/8",
                ..Click::default()
            },
        );
        assert!(!out.is_blocked());
        assert!(out.assessment.is_none());
    }

    #[test]
    fn an_unparseable_client_ip_no_longer_skips_the_blocklist_or_the_ip_filters() {
        let unreadable = || Click {
            ip: UNREADABLE,
            ..Click::default()
        };
        // The blocklist fails closed: it cannot clear an address it cannot read.
        let out = run(&config(&rule("r", "")), unreadable());
        assert!(out.is_blocked());
        assert_eq!(codes(&out), ["ip_unreadable"]);
        assert_eq!(out.reasons()[0].rule_id, "lists.blocked_ips");
        // Without a blocklist, the rule's IP filters are unavailable and follow its fault mode.
        let no_blocklist = |rules: &str| {
            let mut cfg = config(rules);
            cfg.blocked_ips = crate::ip::IpSet::new(Vec::new());
            cfg
        };
        let open = run(&no_blocklist(&rule("r", "")), unreadable());
        assert!(!open.is_blocked());
        assert_eq!(
            open.assessment.unwrap().unavailable,
            ["fraud_database", "datacenter_vpn", "duplicate_ip"]
        );
        let closed = run(
            &no_blocklist(&rule("r", r#", "on_filter_fault": "closed""#)),
            unreadable(),
        );
        assert_eq!(codes(&closed), ["filter_unavailable"]);
        // An ASN hit needs no address: the filter still fires on it.
        let by_asn = run(
            &no_blocklist(&rule("r", r#", "decline": "low_and_higher""#)),
            Click {
                asn: Some(16509),
                ..unreadable()
            },
        );
        assert!(
            codes(&by_asn).contains(&"datacenter_asn"),
            "{:?}",
            codes(&by_asn)
        );
        // A missing header is not a fault (local runs have none): nothing to block on.
        let absent = run(
            &config(&rule("r", "")),
            Click {
                ip: "",
                ..Click::default()
            },
        );
        assert!(!absent.is_blocked());
    }

    #[test]
    fn a_filter_that_cannot_run_follows_the_fault_mode() {
        let no_counters = || Click {
            counters: None,
            ..Click::default()
        };
        let open = run(&config(&rule("r", "")), no_counters());
        assert!(!open.is_blocked());
        assert_eq!(
            open.assessment.unwrap().unavailable,
            ["duplicate_ip", "sub_id_validity"]
        );
        let closed = run(
            &config(&rule("r", r#", "on_filter_fault": "closed""#)),
            no_counters(),
        );
        assert!(closed.is_blocked());
        assert_eq!(codes(&closed), ["filter_unavailable"]);
        let line: serde_json::Value = serde_json::from_str(&closed.log_line()).unwrap();
        assert_eq!(line["unavailable"], "duplicate_ip,sub_id_validity");
    }

    #[test]
    fn presets_run_at_the_click() {
        let preset = r#"{"id": "cpi", "created_at": "2026-11-01", "scope": {"offers": ["1"]}, "strategy": "mobile_cpi"}"#;
        let cfg = config(preset);
        assert_eq!(
            codes(&run(
                &cfg,
                Click {
                    ua: "Go-http-client/2.0",
                    ..Click::default()
                }
            )),
            ["bot"]
        );
        // mobile_cpi allows one click per IP a day
        let second = Click {
            counters: Some(Counters {
                ip_clicks: 2,
                distinct_sub_ids: 1,
                ..Counters::default()
            }),
            ..Click::default()
        };
        assert!(run(&cfg, second)
            .assessment
            .unwrap()
            .reasons
            .iter()
            .any(|r| r.code == ReasonCode::DuplicateIp));
    }

    #[test]
    fn invalid_rules_are_reported_with_their_paths() {
        let text = r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x/"}], "rules": [
            {"id": "a", "created_at": "soon", "scope": {"offers": "all"}, "strategy": "fast", "decline": "always",
             "level": "sometimes", "action": {"redirect": "ftp://x"}, "sub_id_param": "sub9", "on_filter_fault": "maybe"},
            {"id": "b", "created_at": "2026-11-01", "scope": {"offers": ["1"]},
             "strategy": {"filters": [{"type": "telepathy"}, {"type": "bot", "points": -1}]}},
            {"id": "b", "created_at": "2026-11-01", "scope": {"offers": ["1"]}, "strategy": "lead"},
            {"id": "c", "created_at": "2026-11-01", "scope": {"offers": {"include": "all", "exclude": ["9999"]},
             "advertisers": ["ghost"]}, "strategy": "lead"}
        ]}"#;
        let got: Vec<String> = Config::compile(text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        for want in [
            "rules[0].created_at: `soon` is not a UTC time",
            "rules[0].scope: at least one of offers, advertisers and affiliates must be a list",
            "rules[0].level: must be",
            "rules[0].sub_id_param: must be sub1..sub5 or source_id",
            "rules[0].strategy: unknown preset `fast`; known: mobile_cpi, mobile_cpa, lead, ecommerce",
            "rules[0].decline: must be do_not_decline",
            "rules[0].action.redirect: must start with https://",
            "rules[0].on_filter_fault: must be \"open\" or \"closed\"",
            "rules[1].strategy.filters[0].type: unknown filter `telepathy`",
            "rules[1].strategy.filters[1].points: must be a whole number from 0 to 1000",
            "rules[2].id: `b` is declared twice",
            "rules[3].scope.offers: offer `9999` is not in offers",
            "rules[3].scope.advertisers: advertiser `ghost` is not in advertisers",
        ] {
            assert!(got.iter().any(|g| g.starts_with(want)), "missing {want:?} in {got:#?}");
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn arb_rule(i: usize) -> impl Strategy<Value = String> {
            let filters = ["bot", "datacenter_vpn", "geo", "old_os_browser", "referrer"];
            (0i64..3, 0usize..3, 1u32..28, proptest::sample::select(filters.to_vec()), any::<bool>()).prop_map(
                move |(priority, scope, day, filter, monitor)| {
                    let scope = [r#"{"offers": ["1"]}"#, r#"{"offers": ["1", "2"], "affiliates": ["net-7"]}"#, r#"{"advertisers": ["acme"]}"#][scope];
                    format!(
                        r#"{{"id": "r{i}", "created_at": "2026-11-{day:02}", "priority": {priority}, "scope": {scope},
                           "ignore_results": {monitor}, "decline": "low_and_higher", "strategy": {{"filters": [{{"type": "{filter}"}}]}}}}"#
                    )
                },
            )
        }

        fn arb_click() -> impl Strategy<Value = (String, String, u32, String)> {
            (
                proptest::sample::select(vec![
                    "curl/8",
                    BROWSER,
                    "Mozilla/5.0 (Linux; Android 5.0) Chrome/40.0 Safari/537.36",
                ]),
                proptest::sample::select(vec![
                    "192.0.2.10",
                    "192.0.2.200",
                    "203.0.113.5",
                    "100.64.0.1",
                ]),
                proptest::sample::select(vec![3320u32, 16509, 9009]),
                proptest::sample::select(vec!["net-7", "trusted", "other"]),
            )
                .prop_map(|(ua, ip, asn, aff)| (ua.to_owned(), ip.to_owned(), asn, aff.to_owned()))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            // The same rules in any order give the same verdict, rule and reasons.
            #[test]
            fn verdict_does_not_depend_on_rule_order(
                rules in (0usize..5).prop_flat_map(|n| (0..n).map(arb_rule).collect::<Vec<_>>()),
                shuffle in any::<proptest::sample::Index>(),
                (ua, ip, asn, aff) in arb_click(),
            ) {
                let mut reordered = rules.clone();
                if !reordered.is_empty() {
                    let k = shuffle.index(reordered.len());
                    reordered.rotate_left(k);
                    reordered.reverse();
                }
                let query = format!("offer_id=1&aff_id={aff}");
                let click = || Click { query: &query, ip: &ip, ua: &ua, asn: Some(asn), ..Click::default() };
                let a = run(&config(&rules.join(",")), click());
                let b = run(&config(&reordered.join(",")), click());
                prop_assert_eq!(a.decision, b.decision);
                prop_assert_eq!(a.assessment, b.assessment);
            }

            // Whatever the rules and the click, an allowlisted affiliate's click is never blocked.
            #[test]
            fn allowlisted_clicks_are_never_blocked(
                rules in (0usize..5).prop_flat_map(|n| (0..n).map(arb_rule).collect::<Vec<_>>()),
                (ua, ip, asn, _) in arb_click(),
            ) {
                let click = Click { query: "offer_id=1&aff_id=trusted", ip: &ip, ua: &ua, asn: Some(asn), ..Click::default() };
                prop_assert!(!run(&config(&rules.join(",")), click).is_blocked());
            }
        }

        /// Two link formats on two hosts (clickgate's own and CAKE's, whose parameters are other
        /// names), offers passing the link's other parameters on by themselves or by a macro.
        fn two_formats() -> Config {
            Config::compile(
                r#"{"version": 1, "advertisers": [{"id": "acme"}],
                    "offers": [{"id": "1", "advertiser_id": "acme", "landing_url": "https://shop.example/?t={sub1}"},
                               {"id": "2", "advertiser_id": "acme", "landing_url": "https://shop.example/p?{passthrough}#f"}],
                    "links": [{"id": "cake", "preset": "cake", "host": "cake.example"},
                              {"id": "own", "preset": "clickgate"}]}"#,
            )
            .unwrap_or_else(|e| panic!("{e:#?}"))
        }

        /// `click::route` reads by clickgate's own format, not by the format of the profile the
        /// click is decided under (here CAKE's, the first): it leaves the query to be walked.
        #[test]
        fn a_link_read_by_another_format_is_walked() {
            let Ok(click::Route::Click(click)) =
                click::route("GET", "/c", "offer_id=2&aff_id=net-7")
            else {
                panic!("not a click");
            };
            let key = TokenKey::new(&[5; 32]).unwrap();
            let out = decide(
                &two_formats(),
                &key,
                click,
                ClientInfo::default(),
                Observed::default(),
                NOW,
                [7; 8],
            );
            assert_eq!(
                out.map(|o| o.decision),
                Ok(Decision::Redirect {
                    location: "https://shop.example/p?offer_id=2&aff_id=net-7#f".into()
                })
            );
        }

        proptest! {
            // A link its format read whole skips the walk for what to pass on (`all_read`): the
            // walk would have found nothing, so the click goes where the walk sends it.
            #[test]
            fn a_link_read_whole_goes_where_the_walk_sends_it(
                host in proptest::sample::select(vec!["cake.example", "other.example"]),
                offer in proptest::sample::select(vec!["1", "2"]),
                pairs in proptest::collection::vec((
                    proptest::sample::select(vec!["sub1", "source_id", "s1", "s2", "sig", "x", "su%62", "+"]),
                    "[a-z0-9%+]{0,4}",
                ), 0..4),
            ) {
                let config = two_formats();
                let (offer_param, aff_param) = match host {
                    "cake.example" => ("c", "a"),
                    _ => ("offer_id", "aff_id"),
                };
                let mut query = format!("{offer_param}={offer}&{aff_param}=net-7");
                for (name, value) in &pairs {
                    query.push_str(&format!("&{name}={value}"));
                }
                let Ok(click) = config.links.route("GET", &format!("https://{host}/c?{query}")) else {
                    return Ok(());
                };
                let mut walked = click.clone();
                walked.link.all_read = false;
                let key = TokenKey::new(&[5; 32]).unwrap();
                let client = ClientInfo { ip: "192.0.2.1".parse().ok(), ..ClientInfo::default() };
                let go = |click: ClickParams| {
                    decide(&config, &key, click, client.clone(), Observed::default(), NOW, [7; 8])
                        .map(|o| o.decision)
                };
                prop_assert_eq!(go(click), go(walked));
            }
        }
    }
}
