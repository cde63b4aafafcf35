//! Conversion postbacks: an advertiser reports a conversion for a transaction id, and the edge
//! judges it against its click.
//!
//! The transaction id is the click's authenticated token ([`crate::token`]), so the click's time,
//! offer, affiliate and verdict come back without a lookup; a forged id is refused. Checks:
//!
//! - `flagged_click`: the click was blocked, or declined by a rule in monitor mode;
//! - `preview_click`: the click was a link-preview fetcher's (redirected, but nobody clicked);
//! - `min_click_to_conversion` / `max_click_to_conversion`: the time from click to conversion is
//!   outside the window of the rule that judges the offer's conversions (level `conversion` or
//!   `both`);
//! - `click_spam` / `low_session_time`: the share of the offer and affiliate's recent conversions
//!   this long after (or this soon after) their click is beyond the rule's bound, this conversion
//!   counted in (see [`Judging::judge_shares`]);
//! - `duplicate_conversion`: a conversion for the same click and event was already reported (the
//!   network's Durable Object remembers it; see [`Judging::duplicate_key`]);
//! - `third_party_rejection`: another system reported the click's transaction id as rejected
//!   (`POST /rejection`, see [`Rejecting`]), and the offer's conversion rule carries the
//!   `third_party_rejection` filter; the object keeps the rejection beside the click's records.
//!
//! Only conversions in status `approved` (the default), `hold` or `pending` are judged.
//!
//! An advertiser with a `postback_secret` must send it (`secret` parameter or the
//! [`SECRET_HEADER`] header); a postback without it is refused whole. An advertiser without one is
//! still heard, for compatibility (though a postback that carries a secret is refused as one with a
//! wrong secret, so the answer does not tell which advertisers have one), but its conversions never count toward a network's conversion
//! rate, which widens the network's flood ceiling: anyone holding a transaction id (the clicker
//! does: it is in the landing URL) could otherwise raise it. Approved conversions per click are
//! capped (`max_approved_per_click`, default 1), and only the advertiser's `flood_events` count
//! toward the flood threshold.

use serde_json::json;

use crate::click::Id;
use crate::config::postbacks::{PostbackPolicy, MAX_FIELD_LEN};
use crate::config::Config;
use crate::fault::{Blame, Fault};
use crate::filters::share::{Measure, ShareSeen, ShareTally};
use crate::filters::third_party_rejection::ThirdPartyRejection;
use crate::filters::FilterKind;
use crate::log::JsonLine;
use crate::stored::{self, rejection_key};
use crate::template::MacroValues;
use crate::token::{ClickToken, TokenKey, TokenVerdict};
use crate::verdict::ReasonCode;

pub const INVALID_MESSAGE: &str = "clickgate flagged the conversion as fraudulent";
/// How long the duplicate record of a conversion is kept: a click's conversions come within this.
pub const DUPLICATE_WINDOW_MS: u64 = 90 * 86_400_000;
/// The header that may carry the advertiser's postback secret instead of the `secret` parameter.
pub const SECRET_HEADER: &str = "x-postback-secret";
/// Where another system reports a transaction id as rejected (see [`Rejecting`]).
pub use crate::click::REJECTION_PATH;
/// The largest `POST /postback` form body: its few fields at their limits fit many times over.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// A postback as the advertiser sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postback {
    pub transaction_id: String,
    pub event: String,
    pub(crate) amount: Option<String>,
    pub status: String,
    /// The advertiser's postback secret, as presented.
    pub secret: Option<String>,
    /// Every parameter as it came, for a forward URL's `{param:NAME}`.
    pub params: String,
}

impl Postback {
    /// The secret from the [`SECRET_HEADER`] header, when the parameters carried none.
    pub(crate) fn with_header_secret(mut self, header: Option<String>) -> Postback {
        self.secret = self.secret.or(header);
        self
    }
}

/// When a forwarded postback is sent, in milliseconds after the response: at once, then again
/// after a tracker that did not take it (an error, or no answer) has had a moment. All of it
/// within the 30 s the runtime gives work after a response.
pub const FORWARD_SCHEDULE_MS: [u64; 3] = [0, 2_000, 8_000];
/// Forwards one isolate keeps in flight at the most; past it a forward is dropped and logged, so
/// a tracker that hangs cannot pile up work in the isolate.
pub const MAX_FORWARDS_IN_FLIGHT: usize = 256;

/// How a forwarded postback ended, as its log line says: `sent` (the tracker answered 2xx) after
/// `attempts`, or `failed` with the last problem, or `dropped` (too many in flight).
pub fn forward_line(
    transaction_id: &str,
    event: &str,
    result: &str,
    attempts: usize,
    detail: Option<&str>,
    now_ms: u64,
) -> String {
    JsonLine::new()
        .str("event", "forward")
        .str("ts", &crate::time::rfc3339_ms(now_ms))
        .str("result", result)
        .str("transaction_id", transaction_id)
        .str("conversion_event", event)
        .num("attempts", attempts as u64)
        .opt("detail", detail)
        .finish()
}

/// What the network's object knows of a conversion before it is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prior {
    /// Neither this click's event nor too many approvals for the click.
    Fresh,
    /// This click's event was reported before.
    Duplicate,
    /// The click already has its advertiser's `max_approved_per_click` approved conversions.
    Capped,
    /// Another system reported the click rejected, for this reason (asked only when the
    /// conversion's rule carries `third_party_rejection`).
    Rejected(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostbackError {
    Missing(&'static str),
    Invalid {
        name: &'static str,
        problem: String,
    },
    /// The transaction id is not one of ours (forged, damaged, or under another secret).
    UnknownTransaction(String),
    /// The click's advertiser has a postback secret and this postback did not carry it.
    Unauthorized,
}

impl Fault for PostbackError {
    fn blame(&self) -> Blame {
        Blame::Client
    }
}

impl std::fmt::Display for PostbackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostbackError::Missing(name) => write!(f, "`{name}` is required"),
            PostbackError::Invalid { name, problem } => write!(f, "`{name}` {problem}"),
            PostbackError::Unauthorized => {
                f.write_str("the advertiser's postback secret is missing or wrong")
            }
            PostbackError::UnknownTransaction(why) => {
                write!(
                    f,
                    "the transaction id is not one this click filter issued ({why})"
                )
            }
        }
    }
}

/// Reads a postback's parameters (from the query and, for POST, a form body).
pub fn parse(params: &str) -> Result<Postback, PostbackError> {
    let mut tid = None;
    let mut event = None;
    let mut amount = None;
    let mut status = None;
    let mut secret = None;
    for (name, value) in crate::click::query_pairs(params) {
        let slot = match name.as_ref() {
            "transaction_id" => &mut tid,
            "event" => &mut event,
            "amount" => &mut amount,
            "status" => &mut status,
            "secret" => &mut secret,
            _ => continue,
        };
        if value.len() > MAX_FIELD_LEN * 2 {
            return Err(PostbackError::Invalid {
                name: static_name(&name),
                problem: "is too long".into(),
            });
        }
        if slot.replace(value.into_owned()).is_some() {
            return Err(PostbackError::Invalid {
                name: static_name(&name),
                problem: "is given more than once".into(),
            });
        }
    }
    let transaction_id = tid
        .filter(|t| !t.is_empty())
        .ok_or(PostbackError::Missing("transaction_id"))?;
    let event = event.unwrap_or_else(|| "conversion".into());
    if event.is_empty() || event.len() > MAX_FIELD_LEN {
        return Err(PostbackError::Invalid {
            name: "event",
            problem: format!("must be 1 to {MAX_FIELD_LEN} bytes"),
        });
    }
    if let Some(a) = &amount {
        if a.parse::<f64>().map_or(true, |x| !x.is_finite()) {
            return Err(PostbackError::Invalid {
                name: "amount",
                problem: format!("`{a}` is not a number"),
            });
        }
    }
    Ok(Postback {
        transaction_id,
        event,
        amount,
        status: status
            .unwrap_or_else(|| "approved".into())
            .to_ascii_lowercase(),
        secret,
        params: params.to_owned(),
    })
}

fn static_name(name: &str) -> &'static str {
    match name {
        "transaction_id" => "transaction_id",
        "event" => "event",
        "amount" => "amount",
        "secret" => "secret",
        _ => "status",
    }
}

/// A postback whose click is known, before the duplicate check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judging {
    pub postback: Postback,
    pub click: ClickToken,
    pub(crate) click_to_conversion_ms: u64,
    pub rule_id: Option<String>,
    /// Reasons found without asking anyone (flagged click, CTIT).
    pub reasons: Vec<(ReasonCode, String)>,
    /// False for statuses that are not judged (`declined`, `rejected`, …).
    pub judged: bool,
    /// Whether the postback carried its advertiser's secret (false when it has none).
    pub(crate) authenticated: bool,
    /// The click's advertiser's policy (see [`click_policy`] when the offer is gone).
    pub policy: PostbackPolicy,
    /// The click's advertiser: its listed offer's, or for an offer the document does not list,
    /// the advertiser of the link profile the click came in by.
    pub advertiser_id: Option<Id>,
    /// Where the object keeps the click's rejection, when the conversion's rule asks for it.
    pub(crate) rejection_key: Option<String>,
    /// The rule's share filters, with their tallies once [`Judging::judge_shares`] has them.
    pub shares: Vec<ShareCheck>,
}

/// One share filter of the conversion's rule: its share (the tally empty until read), its code,
/// and whether this conversion is one of its hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareCheck {
    pub seen: ShareSeen,
    pub code: ReasonCode,
    pub(crate) hit: bool,
    /// Whether the network's counts answered its tally.
    pub read: bool,
}

/// The postback policy of the click's advertiser. An offer removed from the config takes with it
/// the only record of whose it was: its postback is held to the policy of the advertiser whose
/// secret it carries, and refused (`None`) without one, unless no advertiser has a secret, when
/// the defaults ask for none as before. Falling back to the defaults whenever the offer was gone
/// let anyone holding a transaction id have it approved.
///
/// `known` is the click's advertiser when its offer is still served (`Some(None)`: one without an
/// advertiser), `None` when the offer is gone.
fn click_policy(
    config: &Config,
    known: Option<&Option<Id>>,
    presented: Option<&str>,
) -> Option<PostbackPolicy> {
    let known = known.map(|a| a.as_ref().map(|a| config.postbacks.get(a)));
    match known {
        Some(None) => return Some(PostbackPolicy::default()),
        Some(Some(Some(policy))) => return Some(policy.clone()),
        // The offer is gone, or names an advertiser the config no longer declares.
        Some(Some(None)) | None => {}
    }
    let mut secrets = config.postbacks.values().filter(|p| p.secret.is_some());
    let Some(first) = secrets.next() else {
        return Some(PostbackPolicy::default());
    };
    let presented = presented?;
    std::iter::once(first)
        .chain(secrets)
        .find(|p| {
            p.secret
                .as_deref()
                .is_some_and(|s| crate::token::same_secret(presented, s))
        })
        .cloned()
}

/// The click's advertiser: its listed offer's, or, for an offer the document does not list, that
/// of the link profile the click came in by when it serves such offers (`Some(None)`: an offer
/// without an advertiser); `None` when the offer is no longer served.
fn advertiser_of(config: &Config, click: &ClickToken) -> Option<Option<Id>> {
    match config.offers.get(&click.offer_id) {
        Some(offer) => Some(offer.advertiser_id.clone()),
        None => config
            .links
            .profiles
            .get(usize::from(click.profile))
            .and_then(|p| p.unlisted.as_ref())
            .map(|o| o.advertiser_id.clone()),
    }
}

/// The click's advertiser, its postback policy, and whether `presented` is its secret (`false`
/// when it has none and none was sent). A wrong secret, a secret sent where none is expected, or
/// none for a removed offer where secrets are in use is `Unauthorized`: answered otherwise, 401
/// against 200 would tell a prober which advertisers have a secret.
fn authenticate(
    config: &Config,
    click: &ClickToken,
    presented: Option<&str>,
) -> Result<(Option<Id>, PostbackPolicy, bool), PostbackError> {
    let known = advertiser_of(config, click);
    let policy =
        click_policy(config, known.as_ref(), presented).ok_or(PostbackError::Unauthorized)?;
    let authenticated = match (&policy.secret, presented) {
        (Some(expected), presented) => {
            if !crate::token::same_secret(presented.unwrap_or(""), expected) {
                return Err(PostbackError::Unauthorized);
            }
            true
        }
        (None, Some(_)) => return Err(PostbackError::Unauthorized),
        (None, None) => false,
    };
    Ok((known.flatten(), policy, authenticated))
}

/// The answer to `GET /verdict?transaction_id=…`: what clickgate decided about a click, for a
/// tracker that asks before it pays. Only with the click's advertiser's postback secret (the
/// `secret` parameter or the `X-Postback-Secret` header): the id travels in the landing URL, so
/// the clicker has it too; an advertiser without a secret cannot be asked.
pub fn click_verdict(
    config: &Config,
    key: &TokenKey,
    params: &str,
    header_secret: Option<String>,
) -> Result<String, PostbackError> {
    let asked = parse(params)?.with_header_secret(header_secret);
    let click = ClickToken::open(&asked.transaction_id, key)
        .map_err(|e| PostbackError::UnknownTransaction(e.to_string()))?;
    // Only a postback its advertiser's secret authenticates may read the verdict.
    let (_, _, authenticated) = authenticate(config, &click, asked.secret.as_deref())?;
    if !authenticated {
        return Err(PostbackError::Unauthorized);
    }
    let verdict = click.verdict.verdict();
    Ok(json!({
        "transaction_id": asked.transaction_id,
        "verdict": verdict.as_str(),
        // Only a click sent to the offer as a person's can earn a conversion.
        "pay": click.verdict == TokenVerdict::Redirected,
        "clicked_at": crate::time::rfc3339_ms(click.issued_ms),
        "offer_id": click.offer_id.as_str(),
        "aff_id": click.aff_id.as_str(),
    })
    .to_string())
}

impl Judging {
    /// Opens the transaction id and runs the checks that need no state.
    pub fn new(
        config: &Config,
        key: &TokenKey,
        postback: Postback,
        now_ms: u64,
    ) -> Result<Judging, PostbackError> {
        let click = ClickToken::open(&postback.transaction_id, key)
            .map_err(|e| PostbackError::UnknownTransaction(e.to_string()))?;
        let (advertiser_id, policy, authenticated) =
            authenticate(config, &click, postback.secret.as_deref())?;
        let ctit = now_ms.saturating_sub(click.issued_ms);
        let judged = matches!(postback.status.as_str(), "approved" | "hold" | "pending");
        let rule = config.conversion_rule(&click.offer_id, &click.aff_id);
        let mut reasons = Vec::new();
        let rejection_key = rule
            .filter(|r| judged && r.filters.iter().any(carries_rejections))
            .map(|_| rejection_key(&postback.transaction_id));
        if judged {
            match click.verdict {
                TokenVerdict::Redirected => {}
                TokenVerdict::Blocked => {
                    reasons.push((ReasonCode::FlaggedClick, "the click was blocked".to_owned()))
                }
                TokenVerdict::Flagged => reasons.push((
                    ReasonCode::FlaggedClick,
                    "the click was declined and still redirected".to_owned(),
                )),
                // The fetcher that unfurled a pasted link got the landing URL, not a person.
                TokenVerdict::Preview => reasons.push((
                    ReasonCode::PreviewClick,
                    "the click was a link-preview fetcher's".to_owned(),
                )),
            }
            reasons.extend(
                rule.iter()
                    .flat_map(|r| r.filters.iter())
                    .filter_map(|f| f.kind.judge_conversion(ctit)),
            );
        }
        let shares = rule
            .iter()
            .flat_map(|r| r.filters.iter())
            .filter(|_| judged)
            .filter_map(|f| {
                let (measure, bound) = f.kind.share()?;
                Some(ShareCheck {
                    seen: ShareSeen {
                        filter: f.kind.name(),
                        measure,
                        bound,
                        tally: ShareTally::default(),
                    },
                    code: measure.code(),
                    hit: measure.conversion_hit(ctit)?,
                    read: false,
                })
            })
            .collect();
        Ok(Judging {
            postback,
            click_to_conversion_ms: ctit,
            rule_id: rule.map(|r| r.id.to_string()),
            click,
            reasons,
            judged,
            authenticated,
            policy,
            advertiser_id,
            rejection_key,
            shares,
        })
    }

    /// Judges the rule's share filters. `tally` counts this conversion toward a measure's share
    /// (with whether it is a hit, or `None` to read only, as for a duplicate, which must not be
    /// counted twice) and answers the share over the window, or `None` where the network's counts
    /// cannot say: that filter is skipped, so an advertiser's postback is not refused for an
    /// outage of ours.
    pub(crate) fn judge_shares(
        &mut self,
        duplicate: bool,
        mut tally: impl FnMut(Measure, Option<bool>, u32) -> Option<ShareTally>,
    ) {
        for check in &mut self.shares {
            let seen = &mut check.seen;
            let hit = (!duplicate).then_some(check.hit);
            let Some(t) = tally(seen.measure, hit, seen.bound.window_hours) else {
                continue;
            };
            seen.tally = t;
            check.read = true;
            if seen.exceeded() {
                self.reasons.push((check.code, seen.to_json()));
            }
        }
    }

    /// `{"click_spam":{"share":0.62,…},…}`: the shares read, or `None`.
    fn shares_json(&self) -> Option<String> {
        let read: Vec<String> = self
            .shares
            .iter()
            .filter(|c| c.read)
            .map(|c| format!(r#""{}":{}"#, c.seen.filter, c.seen.to_json()))
            .collect();
        (!read.is_empty()).then(|| format!("{{{}}}", read.join(",")))
    }

    /// The network object to ask whether this click's event was reported before, the key it keeps
    /// the answer under, and until when: 90 days after the click, and never less than 90 days
    /// after this report (a conversion window may be longer, and a record that expired as it was
    /// written would let the same event be approved again and again); `None` when the status is
    /// not judged.
    pub(crate) fn duplicate_key(&self) -> Option<(Id, String, u64)> {
        self.judged.then(|| {
            let key = stored::event_key(&self.postback.transaction_id, &self.postback.event);
            (
                self.click.aff_id.clone(),
                key,
                self.click.issued_ms + self.click_to_conversion_ms + DUPLICATE_WINDOW_MS,
            )
        })
    }

    /// Whether the conversion is approved if the object has seen neither its event nor too many
    /// approvals for its click.
    pub(crate) fn approvable(&self) -> bool {
        self.judged && self.reasons.is_empty()
    }

    /// Whether an approved conversion counts toward the network's conversion rate: only with its
    /// advertiser's secret, and only for the advertiser's `flood_events`.
    pub fn counts_toward_flood(&self) -> bool {
        self.approvable()
            && self.authenticated
            && self.policy.flood_events.contains(&self.postback.event)
    }

    /// The key under which the object keeps the click's approvals, and how many it may hold;
    /// `None` when this conversion cannot be approved anyway.
    pub(crate) fn approvals_key(&self) -> Option<(String, u32)> {
        self.approvable().then(|| {
            let key = stored::approvals_key(&self.postback.transaction_id);
            (key, self.policy.max_approved_per_click)
        })
    }

    /// The verdict, given what the network's object had seen of this click: nothing, the same
    /// event before, or its approvals already at the cap. `None`: the object was not asked, or
    /// could not say; the conversion is judged on the other checks, so an advertiser's postback
    /// is not refused for an outage of ours.
    pub fn finish(mut self, seen: Option<Prior>) -> ConversionOutcome {
        match seen.unwrap_or(Prior::Fresh) {
            Prior::Fresh => {}
            _ if !self.judged => {}
            Prior::Duplicate => self.reasons.push((
                ReasonCode::DuplicateConversion,
                format!(
                    "event `{}` was already reported for this click",
                    self.postback.event
                ),
            )),
            Prior::Capped => self.reasons.push((
                ReasonCode::ApprovedPerClick,
                format!(
                    "the click already has {} approved conversion(s), the advertiser's maximum",
                    self.policy.max_approved_per_click
                ),
            )),
            Prior::Rejected(reason) => self
                .reasons
                .push(ThirdPartyRejection::judge_rejected(&reason)),
        }
        let status = match (self.judged, self.reasons.is_empty()) {
            (false, _) => ConversionStatus::NotJudged,
            (true, true) => ConversionStatus::Approved,
            (true, false) => ConversionStatus::Invalid,
        };
        ConversionOutcome {
            status,
            judging: self,
        }
    }
}

fn carries_rejections(filter: &crate::config::rules::Filter) -> bool {
    matches!(filter.kind, FilterKind::ThirdPartyRejection(_))
}

/// A transaction id another system reports as rejected (`POST /rejection`, `clickgate reject`):
/// an MMP that rejected the install, a tracker that rejected the conversion. Only with the click's
/// advertiser's postback secret, as `/verdict`: the id travels in the landing URL, so a clicker
/// could otherwise reject clicks that are not theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejecting {
    pub transaction_id: String,
    pub reason: String,
    /// The click's network: its object keeps the rejection.
    pub network: Id,
    /// [`rejection_key`] of the transaction id.
    pub key: String,
    /// Kept until then: as long as a conversion record, counted from now.
    pub expires_ms: u64,
    /// Whether the rule judging the offer's conversions carries `third_party_rejection` now; a
    /// rejection is kept either way, for a rule that takes the filter up later.
    pub judged: bool,
}

impl Rejecting {
    /// Reads `transaction_id`, `reason` and `secret` (or the [`SECRET_HEADER`] header) and opens
    /// the transaction id. A forged or damaged id is [`PostbackError::UnknownTransaction`]; an
    /// advertiser without a secret cannot reject.
    pub fn new(
        config: &Config,
        key: &TokenKey,
        params: &str,
        header_secret: Option<String>,
        now_ms: u64,
    ) -> Result<Rejecting, PostbackError> {
        let (mut tid, mut reason, mut secret) = (None, None, None);
        for (name, value) in crate::click::query_pairs(params) {
            let (slot, name) = match name.as_ref() {
                "transaction_id" => (&mut tid, "transaction_id"),
                "reason" => (&mut reason, "reason"),
                "secret" => (&mut secret, "secret"),
                _ => continue,
            };
            if value.len() > MAX_FIELD_LEN * 2 {
                return Err(PostbackError::Invalid {
                    name,
                    problem: "is too long".into(),
                });
            }
            if slot.replace(value.into_owned()).is_some() {
                return Err(PostbackError::Invalid {
                    name,
                    problem: "is given more than once".into(),
                });
            }
        }
        let transaction_id = tid
            .filter(|t| !t.is_empty())
            .ok_or(PostbackError::Missing("transaction_id"))?;
        let reason = reason
            .filter(|r| !r.trim().is_empty())
            .ok_or(PostbackError::Missing("reason"))?;
        if reason.len() > MAX_FIELD_LEN {
            return Err(PostbackError::Invalid {
                name: "reason",
                problem: format!("must be at most {MAX_FIELD_LEN} bytes"),
            });
        }
        let click = ClickToken::open(&transaction_id, key)
            .map_err(|e| PostbackError::UnknownTransaction(e.to_string()))?;
        let presented = secret.or(header_secret);
        let (_, _, authenticated) = authenticate(config, &click, presented.as_deref())?;
        if !authenticated {
            return Err(PostbackError::Unauthorized);
        }
        let judged = config
            .conversion_rule(&click.offer_id, &click.aff_id)
            .is_some_and(|r| r.filters.iter().any(carries_rejections));
        Ok(Rejecting {
            key: rejection_key(&transaction_id),
            transaction_id,
            reason,
            network: click.aff_id,
            expires_ms: now_ms.max(click.issued_ms) + DUPLICATE_WINDOW_MS,
            judged,
        })
    }

    /// The answer to the reporting system: the reason kept (the first one reported, when the id
    /// was rejected before: a repeated report changes nothing), and whether this report was new.
    pub fn answer(&self, kept: &Rejected) -> String {
        JsonLine::new()
            .str("transaction_id", &self.transaction_id)
            .str("status", "rejected")
            .str("reason", &kept.reason)
            .bool("new", kept.new)
            .bool("judged", self.judged)
            .finish()
    }
}

/// What the network's object holds of a click's rejection after a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub reason: String,
    /// False when the click was already rejected: the report was a repeat.
    pub new: bool,
}

/// The reason a stored rejection (`{expires ms}\n{reason}`) gives, while it has not expired.
pub(crate) fn stored_rejection(value: &str, now_ms: u64) -> Option<&str> {
    let (expires, reason) = value.split_once('\n')?;
    (expires.parse::<u64>().ok()? >= now_ms).then_some(reason)
}

/// The object's step for a rejection report, given what it holds under the key: the rejection
/// kept, and the value to store when it changes. The first unexpired reason stays, so a report
/// sent twice (a retry whose answer was lost) is answered the same and writes nothing.
pub fn reject_step(
    stored: Option<&str>,
    reason: &str,
    expires_ms: u64,
    now_ms: u64,
) -> (Rejected, Option<String>) {
    if let Some(kept) = stored.and_then(|v| stored_rejection(v, now_ms)) {
        let rejected = Rejected {
            reason: kept.to_owned(),
            new: false,
        };
        return (rejected, None);
    }
    let rejected = Rejected {
        reason: reason.to_owned(),
        new: true,
    };
    (rejected, Some(format!("{expires_ms}\n{reason}")))
}

/// Whether a stored rejection is past its expiry (or unreadable): what the object's daily sweep
/// deletes.
pub(crate) fn rejection_expired(key: &str, value: &str, now_ms: u64) -> bool {
    stored::is_rejection(key) && stored_rejection(value, now_ms).is_none()
}

/// The first slot that holds no unexpired approval (`stored`: the slots' stored values); `None`:
/// the click has all the approvals it may have.
pub(crate) fn free_approval_slot<'a>(
    slots: &'a [String],
    stored: &[(String, String)],
    now_ms: u64,
) -> Option<&'a str> {
    // A slot is a use record like any other (`cv/…`): the sweep's expiry rule says if it is held.
    let taken = |slot: &String| {
        stored
            .iter()
            .any(|(k, v)| k == slot && !crate::signing::use_record_expired(k, v, now_ms))
    };
    slots.iter().find(|s| !taken(s)).map(String::as_str)
}

/// What became of a conversion: approved, judged invalid, or not judged (a postback status such
/// as `declined` that is not ours to judge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversionStatus {
    Approved,
    Invalid,
    NotJudged,
}

impl ConversionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversionStatus::Approved => "approved",
            ConversionStatus::Invalid => "invalid",
            ConversionStatus::NotJudged => "not_judged",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionOutcome {
    pub status: ConversionStatus,
    pub(crate) judging: Judging,
}

impl ConversionOutcome {
    /// Where this conversion is passed on, when its advertiser forwards to a tracker: an approved
    /// one to the `approved` URL, a judged invalid one to `rejected` (or nowhere). A duplicate of
    /// an event already judged goes nowhere: each event reaches the tracker once.
    pub fn forward_url(&self) -> Option<String> {
        let j = &self.judging;
        let forward = j.policy.forward.as_ref()?;
        let (template, status) = match self.status {
            ConversionStatus::Approved => (&forward.approved, "approved"),
            ConversionStatus::Invalid
                if !j
                    .reasons
                    .iter()
                    .any(|(c, _)| *c == ReasonCode::DuplicateConversion) =>
            {
                (forward.rejected.as_ref()?, "rejected")
            }
            _ => return None,
        };
        let values = MacroValues {
            transaction_id: &j.postback.transaction_id,
            offer_id: j.click.offer_id.as_str(),
            aff_id: j.click.aff_id.as_str(),
            advertiser_id: j.advertiser_id.as_ref().map(Id::as_str),
            link_query: &j.postback.params,
            status,
            reason: j.reasons.first().map_or("", |(c, _)| c.as_str()),
            event: &j.postback.event,
            ..Default::default()
        };
        Some(template.render(&values))
    }

    /// The JSON answer to the advertiser.
    pub fn answer(&self) -> String {
        let j = &self.judging;
        let mut body = json!({
            "status": self.status.as_str(),
            "transaction_id": j.postback.transaction_id,
            "event": j.postback.event,
            "reasons": j.reasons.iter().map(|(code, _)| code.as_str()).collect::<Vec<_>>(),
        });
        if self.status == ConversionStatus::Invalid {
            body["message"] = json!(INVALID_MESSAGE);
        }
        let mut text = body.to_string();
        // Spliced in as text: the shares' decimals are written without floating point, which
        // the Worker would otherwise format.
        if let (Some(shares), Some(b'}')) = (j.shares_json(), text.as_bytes().last()) {
            text.pop();
            text.push_str(",\"shares\":");
            text.push_str(&shares);
            text.push('}');
        }
        text
    }

    /// The conversion's line in the decision log.
    pub fn log_line(&self, now_ms: u64) -> String {
        let j = &self.judging;
        let mut reasons = String::from("[");
        for (i, (code, detail)) in j.reasons.iter().enumerate() {
            if i > 0 {
                reasons.push(',');
            }
            reasons.push_str(
                &JsonLine::new()
                    .str("code", code.as_str())
                    .str("detail", detail)
                    .finish(),
            );
        }
        reasons.push(']');
        JsonLine::new()
            .str("event", "conversion")
            .str("ts", &crate::time::rfc3339_ms(now_ms))
            .str("status", self.status.as_str())
            .str("transaction_id", &j.postback.transaction_id)
            .str("conversion_event", &j.postback.event)
            .str("postback_status", &j.postback.status)
            .opt("amount", j.postback.amount.as_deref())
            .str("offer_id", j.click.offer_id.as_str())
            .str("aff_id", j.click.aff_id.as_str())
            .str("click_ts", &crate::time::rfc3339_ms(j.click.issued_ms))
            .num(
                "click_to_conversion_seconds",
                j.click_to_conversion_ms / 1000,
            )
            .opt("rule_id", j.rule_id.as_deref())
            .bool("authenticated", j.authenticated)
            .raw("reasons", &reasons)
            .opt_raw("shares", j.shares_json().as_deref())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored::approval_slots;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const NOW: u64 = 1_795_435_445_123;

    fn key() -> TokenKey {
        TokenKey::new(b"0123456789abcdef0123456789abcdef-test-only").unwrap()
    }

    fn config() -> Config {
        Config::compile(
            r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"},
                                         {"id": "2", "landing_url": "https://x.example/"}],
                "rules": [{"id": "ctit", "created_at": "2026-11-01", "scope": {"offers": ["1"]}, "level": "conversion",
                           "strategy": {"filters": [{"type": "min_click_to_conversion", "seconds": 20},
                                                    {"type": "max_click_to_conversion", "seconds": 3600}]}}]}"#,
        )
        .unwrap()
    }

    fn tid(offer: &str, verdict: TokenVerdict, clicked_ms: u64) -> String {
        ClickToken {
            issued_ms: clicked_ms,
            nonce: [1; 8],
            verdict,
            offer_id: Id::parse(offer).unwrap(),
            aff_id: Id::parse("net-7").unwrap(),
            profile: 0,
        }
        .seal(&key())
    }

    fn judge(query: &str, duplicate: bool) -> Result<ConversionOutcome, PostbackError> {
        let postback = parse(query)?;
        Ok(
            Judging::new(&config(), &key(), postback, NOW)?.finish(Some(if duplicate {
                Prior::Duplicate
            } else {
                Prior::Fresh
            })),
        )
    }

    fn codes(o: &ConversionOutcome) -> Vec<&'static str> {
        o.judging.reasons.iter().map(|(c, _)| c.as_str()).collect()
    }

    #[test]
    fn a_conversion_in_the_window_is_approved() {
        let t = tid("1", TokenVerdict::Redirected, NOW - 600_000);
        let o = judge(&format!("transaction_id={t}&amount=12.50"), false).unwrap();
        assert_eq!(
            (o.status.as_str(), o.judging.click_to_conversion_ms),
            ("approved", 600_000)
        );
        assert_eq!(o.judging.rule_id.as_deref(), Some("ctit"));
        let answer: serde_json::Value = serde_json::from_str(&o.answer()).unwrap();
        assert_eq!(answer["status"], "approved");
        assert!(answer.get("message").is_none());
    }

    #[test]
    fn a_conversion_on_a_link_preview_is_not_a_persons() {
        // In the window, fresh, nothing else wrong: only the click's preview mark declines it.
        let previewed = tid("1", TokenVerdict::Preview, NOW - 600_000);
        let o = judge(&format!("transaction_id={previewed}"), false).unwrap();
        assert_eq!(
            (o.status.as_str(), codes(&o)),
            ("invalid", vec!["preview_click"])
        );
        assert!(!o.judging.approvable() && !o.judging.counts_toward_flood());
        // Not judged in a status that is not judged.
        let o = judge(
            &format!("transaction_id={previewed}&status=declined"),
            false,
        )
        .unwrap();
        assert_eq!(
            (o.status.as_str(), codes(&o)),
            ("not_judged", Vec::<&str>::new())
        );
    }

    #[test]
    fn each_check_has_its_reason() {
        let too_soon = tid("1", TokenVerdict::Redirected, NOW - 5_000);
        assert_eq!(
            codes(&judge(&format!("transaction_id={too_soon}"), false).unwrap()),
            ["min_click_to_conversion"]
        );
        let too_late = tid("1", TokenVerdict::Redirected, NOW - 7_200_000);
        assert_eq!(
            codes(&judge(&format!("transaction_id={too_late}"), false).unwrap()),
            ["max_click_to_conversion"]
        );
        let flagged = tid("1", TokenVerdict::Flagged, NOW - 600_000);
        let o = judge(&format!("transaction_id={flagged}"), false).unwrap();
        assert_eq!(
            (o.status.as_str(), codes(&o)),
            ("invalid", vec!["flagged_click"])
        );
        let answer: serde_json::Value = serde_json::from_str(&o.answer()).unwrap();
        assert_eq!(answer["message"], INVALID_MESSAGE);
        let fine = tid("1", TokenVerdict::Redirected, NOW - 600_000);
        assert_eq!(
            codes(&judge(&format!("transaction_id={fine}"), true).unwrap()),
            ["duplicate_conversion"]
        );
        // Offer 2 has no conversion rule: no CTIT window, the other checks still hold.
        let other = tid("2", TokenVerdict::Redirected, NOW - 1_000);
        assert_eq!(
            judge(&format!("transaction_id={other}"), false)
                .unwrap()
                .status
                .as_str(),
            "approved"
        );
    }

    #[test]
    fn only_approved_hold_and_pending_are_judged() {
        let flagged = tid("1", TokenVerdict::Blocked, NOW - 1_000);
        for status in ["hold", "Pending"] {
            assert_eq!(
                judge(&format!("transaction_id={flagged}&status={status}"), false)
                    .unwrap()
                    .status
                    .as_str(),
                "invalid"
            );
        }
        let o = judge(&format!("transaction_id={flagged}&status=declined"), true).unwrap();
        assert_eq!((o.status.as_str(), codes(&o).len()), ("not_judged", 0));
        assert_eq!(
            Judging::new(
                &config(),
                &key(),
                parse(&format!("transaction_id={flagged}&status=declined")).unwrap(),
                NOW
            )
            .unwrap()
            .duplicate_key(),
            None
        );
    }

    #[test]
    fn forged_and_malformed_postbacks_are_refused() {
        let t = tid("1", TokenVerdict::Redirected, NOW - 600_000);
        let mut forged = t.clone().into_bytes();
        forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(matches!(
            judge(&format!("transaction_id={forged}"), false),
            Err(PostbackError::UnknownTransaction(_))
        ));
        assert_eq!(
            judge("event=sale", false),
            Err(PostbackError::Missing("transaction_id"))
        );
        assert!(matches!(
            judge(&format!("transaction_id={t}&amount=lots"), false),
            Err(PostbackError::Invalid { name: "amount", .. })
        ));
        assert!(matches!(
            judge(&format!("transaction_id={t}&transaction_id={t}"), false),
            Err(PostbackError::Invalid { .. })
        ));
    }

    #[test]
    fn the_duplicate_key_is_per_click_and_event() {
        let t = tid("1", TokenVerdict::Redirected, NOW - 600_000);
        let key_of = |q: &str| {
            Judging::new(&config(), &key(), parse(q).unwrap(), NOW)
                .unwrap()
                .duplicate_key()
                .unwrap()
        };
        let sale = key_of(&format!("transaction_id={t}&event=sale"));
        assert_eq!(sale.0.as_str(), "net-7");
        assert_eq!(
            sale,
            key_of(&format!("transaction_id={t}&event=sale&amount=3"))
        );
        assert_ne!(
            sale.1,
            key_of(&format!("transaction_id={t}&event=install")).1
        );
        // Kept 90 days from the report: for a recent click about 90 days after it, and for a
        // click reported 120 days on, still 90 days from then, not already expired.
        assert_eq!(sale.2, NOW + DUPLICATE_WINDOW_MS);
        let old = tid("1", TokenVerdict::Redirected, NOW - 120 * 86_400_000);
        let late = key_of(&format!("transaction_id={old}&event=sale"));
        assert_eq!(late.2, NOW + DUPLICATE_WINDOW_MS);
    }

    fn with_advertisers(advertisers: &str) -> Config {
        Config::compile(&format!(
            r#"{{"version": 1, "advertisers": {advertisers},
                "offers": [{{"id": "1", "advertiser_id": "acme", "landing_url": "https://x.example/"}}]}}"#
        ))
        .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn a_clicker_cannot_mint_approved_conversions_for_an_advertiser_with_a_secret() {
        // The clicker holds the transaction id (it is in the landing URL); it once got an
        // approved conversion per event name it made up.
        let config = with_advertisers(
            r#"[{"id": "acme", "postback_secret": "acme-postback-secret", "flood_events": ["sale"]}]"#,
        );
        let t = tid("1", TokenVerdict::Redirected, NOW - 600_000);
        let judging = |q: &str, header: Option<&str>| {
            let p = parse(q)
                .unwrap()
                .with_header_secret(header.map(str::to_owned));
            Judging::new(&config, &key(), p, NOW)
        };
        for (q, header) in [
            (format!("transaction_id={t}&event=sale"), None),
            (format!("transaction_id={t}&event=sale&secret=guess"), None),
            (
                format!("transaction_id={t}&event=sale"),
                Some("acme-postback-secre"),
            ),
        ] {
            assert_eq!(judging(&q, header), Err(PostbackError::Unauthorized), "{q}");
        }
        let by_param = judging(
            &format!("transaction_id={t}&event=sale&secret=acme-postback-secret"),
            None,
        )
        .unwrap();
        assert!(by_param.authenticated && by_param.counts_toward_flood());
        let by_header = judging(
            &format!("transaction_id={t}&event=sale"),
            Some("acme-postback-secret"),
        )
        .unwrap();
        assert!(by_header.counts_toward_flood());
        // Only the advertiser's flood events count toward the network's conversion rate.
        let install = judging(
            &format!("transaction_id={t}&event=install&secret=acme-postback-secret"),
            None,
        )
        .unwrap();
        assert!(install.approvable() && !install.counts_toward_flood());
    }

    #[test]
    fn a_removed_offers_postback_still_needs_a_secret() {
        // Regression: an offer gone from the config took its advertiser's policy with it, and the
        // defaults asked for no secret, so anyone holding the transaction id got it approved.
        let config = with_advertisers(
            r#"[{"id": "acme", "postback_secret": "acme-postback-secret", "max_approved_per_click": 2},
                {"id": "plain"}]"#,
        );
        let gone = tid("9", TokenVerdict::Redirected, NOW - 600_000);
        let judging = |q: String| Judging::new(&config, &key(), parse(&q).unwrap(), NOW);
        for q in [
            format!("transaction_id={gone}"),
            format!("transaction_id={gone}&secret=guess-guess-guess"),
        ] {
            assert_eq!(judging(q.clone()), Err(PostbackError::Unauthorized), "{q}");
        }
        // The secret of an advertiser of the config authenticates it, under that one's policy.
        let j = judging(format!("transaction_id={gone}&secret=acme-postback-secret")).unwrap();
        assert!(j.authenticated && j.approvable());
        assert_eq!(j.policy.max_approved_per_click, 2);
        // Where no advertiser has a secret there is none to ask for: judged as before.
        let open = with_advertisers(r#"[{"id": "acme"}]"#);
        let p = parse(&format!("transaction_id={gone}")).unwrap();
        let j = Judging::new(&open, &key(), p, NOW).unwrap();
        assert!(!j.authenticated && j.approvable());
    }

    #[test]
    fn without_a_secret_postbacks_are_judged_but_never_count_toward_the_flood() {
        let config = with_advertisers(r#"[{"id": "acme"}]"#);
        let t = tid("1", TokenVerdict::Redirected, NOW - 600_000);
        let j = Judging::new(
            &config,
            &key(),
            parse(&format!("transaction_id={t}")).unwrap(),
            NOW,
        )
        .unwrap();
        assert!(!j.authenticated && j.approvable() && !j.counts_toward_flood());
        let line: serde_json::Value =
            serde_json::from_str(&j.clone().finish(Some(Prior::Fresh)).log_line(NOW)).unwrap();
        assert_eq!(line["authenticated"], false);
        assert_eq!(j.finish(Some(Prior::Fresh)).status.as_str(), "approved");
    }

    #[test]
    fn a_secret_sent_to_an_advertiser_without_one_is_refused_so_401_does_not_tell_which_have_one() {
        // A wrong secret got 401 from an advertiser with a secret and 200 from one without: a
        // prober learnt which advertisers' postbacks could be forged without a secret.
        let config = with_advertisers(r#"[{"id": "acme"}]"#);
        let t = tid("1", TokenVerdict::Redirected, NOW - 600_000);
        for (q, header) in [
            (format!("transaction_id={t}&secret=guess"), None),
            (format!("transaction_id={t}&secret="), None),
            (format!("transaction_id={t}"), Some("guess")),
        ] {
            let p = parse(&q)
                .unwrap()
                .with_header_secret(header.map(str::to_owned));
            assert_eq!(
                Judging::new(&config, &key(), p, NOW),
                Err(PostbackError::Unauthorized),
                "{q} {header:?}"
            );
        }
    }

    #[test]
    fn approved_conversions_per_click_are_capped() {
        let config = with_advertisers(r#"[{"id": "acme", "max_approved_per_click": 3}]"#);
        let t = tid("1", TokenVerdict::Redirected, NOW - 600_000);
        let judging = |event: &str| {
            let q = format!("transaction_id={t}&event={event}");
            Judging::new(&config, &key(), parse(&q).unwrap(), NOW).unwrap()
        };
        // One approvals key per click, whatever the event: made-up event names share it.
        let (key_a, max) = judging("a").approvals_key().unwrap();
        assert_eq!((judging("b").approvals_key().unwrap().0, max), (key_a, 3));
        let capped = judging("c").finish(Some(Prior::Capped));
        assert_eq!(capped.status.as_str(), "invalid");
        assert_eq!(codes(&capped), ["approved_per_click"]);
        // The object could not say: judged on the other checks, not refused for the outage.
        assert_eq!(judging("d").finish(None).status.as_str(), "approved");
        // A conversion that is not approvable takes no approval.
        let flagged = tid("1", TokenVerdict::Blocked, NOW - 600_000);
        let q = format!("transaction_id={flagged}");
        let j = Judging::new(&config, &key(), parse(&q).unwrap(), NOW).unwrap();
        assert_eq!(j.approvals_key(), None);
        // Defaults: one approval per click, the `conversion` event counts toward the flood.
        let plain = with_advertisers(r#"[{"id": "acme"}]"#);
        let q = format!("transaction_id={t}");
        let j = Judging::new(&plain, &key(), parse(&q).unwrap(), NOW).unwrap();
        assert_eq!(j.approvals_key().unwrap().1, 1);
        assert_eq!(j.policy.flood_events, ["conversion"]);
    }

    #[test]
    fn a_click_takes_approval_slots_until_none_is_free() {
        let slots = approval_slots("cv/00ff/approved", 2);
        assert_eq!(slots, ["cv/00ff/approved/0", "cv/00ff/approved/1"]);
        let held = |k: &str, until: u64| (k.to_owned(), until.to_string());
        assert_eq!(
            free_approval_slot(&slots, &[], NOW),
            Some("cv/00ff/approved/0")
        );
        let one = [held("cv/00ff/approved/0", NOW + 1)];
        assert_eq!(
            free_approval_slot(&slots, &one, NOW),
            Some("cv/00ff/approved/1")
        );
        let both = [
            held("cv/00ff/approved/0", NOW),
            held("cv/00ff/approved/1", NOW + 1),
        ];
        assert_eq!(free_approval_slot(&slots, &both, NOW), None);
        // An expired approval frees its slot; so does an unreadable record.
        let expired = [
            held("cv/00ff/approved/0", NOW - 1),
            held("cv/00ff/approved/1", NOW),
        ];
        assert_eq!(
            free_approval_slot(&slots, &expired, NOW),
            Some("cv/00ff/approved/0")
        );
        let garbled = [("cv/00ff/approved/0".to_owned(), "x".to_owned())];
        assert_eq!(
            free_approval_slot(&slots, &garbled, NOW),
            Some("cv/00ff/approved/0")
        );
        // The daily sweep expires the slots as it does every other use record.
        assert!(crate::signing::use_record_expired(
            "cv/00ff/approved/0",
            &(NOW - 1).to_string(),
            NOW
        ));
    }

    #[test]
    fn postback_settings_are_validated_with_their_paths() {
        let problems = |advertisers: &str| -> Vec<String> {
            let text = format!(
                r#"{{"version": 1, "advertisers": {advertisers},
                    "offers": [{{"id": "1", "landing_url": "https://x.example/"}}]}}"#
            );
            Config::compile(&text)
                .err()
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            problems(
                r#"[{"id": "a", "postback_secret": "short", "max_approved_per_click": 0,
                     "flood_events": ["sale", ""]}]"#
            ),
            [
                "advertisers[0].postback_secret: must be at least 16 bytes",
                "advertisers[0].max_approved_per_click: must be a whole number from 1 to 100, found 0",
                "advertisers[0].flood_events[1]: must be an event name of 1 to 128 bytes",
            ]
        );
        assert_eq!(
            problems(r#"[{"id": "a", "max_approved_per_click": 4294967297}]"#),
            ["advertisers[0].max_approved_per_click: must be a whole number from 1 to 100, found 4294967297"]
        );
        assert!(problems(r#"[{"id": "a", "max_approved_per_click": 100}]"#).is_empty());
    }

    /// Offer 1's conversions are judged by a rule reading rejections; offer 2 has no rule.
    fn rejecting_config(advertiser: &str) -> Config {
        Config::compile(&format!(
            r#"{{"version": 1, "advertisers": [{advertiser}],
                "offers": [{{"id": "1", "advertiser_id": "acme", "landing_url": "https://x.example/"}},
                           {{"id": "2", "advertiser_id": "acme", "landing_url": "https://x.example/"}}],
                "rules": [{{"id": "mmp", "created_at": "2026-11-01", "scope": {{"offers": ["1"]}},
                           "level": "conversion",
                           "strategy": {{"filters": [{{"type": "third_party_rejection"}}]}}}}]}}"#
        ))
        .unwrap_or_else(|e| panic!("{e:?}"))
    }

    const ACME: &str = r#"{"id": "acme", "postback_secret": "acme-postback-secret"}"#;

    #[test]
    fn a_rejection_needs_a_transaction_id_we_issued_a_reason_and_the_advertisers_secret() {
        let config = rejecting_config(ACME);
        let t = tid("1", TokenVerdict::Redirected, NOW - 600_000);
        let reject = |q: &str, header: Option<&str>| {
            Rejecting::new(&config, &key(), q, header.map(str::to_owned), NOW)
        };
        let ok = reject(
            &format!("transaction_id={t}&reason=install+rejected&secret=acme-postback-secret"),
            None,
        )
        .unwrap();
        assert_eq!(
            (ok.network.as_str(), ok.reason.as_str(), ok.judged),
            ("net-7", "install rejected", true)
        );
        assert_eq!(ok.key, rejection_key(&t));
        assert_eq!(ok.expires_ms, NOW + DUPLICATE_WINDOW_MS);
        // The header carries the secret as for a postback.
        let by_header = reject(
            &format!("transaction_id={t}&reason=r"),
            Some("acme-postback-secret"),
        );
        assert!(by_header.is_ok());
        // Bad auth: none, a wrong one.
        for q in [
            format!("transaction_id={t}&reason=r"),
            format!("transaction_id={t}&reason=r&secret=acme-postback-secre"),
        ] {
            assert_eq!(reject(&q, None), Err(PostbackError::Unauthorized), "{q}");
        }
        // An id this filter never issued, or one damaged on the way.
        let forged = format!("{}x", &t[..t.len() - 1]);
        for q in [
            "transaction_id=nope&reason=r&secret=acme-postback-secret".to_owned(),
            format!("transaction_id={forged}&reason=r&secret=acme-postback-secret"),
        ] {
            assert!(
                matches!(reject(&q, None), Err(PostbackError::UnknownTransaction(_))),
                "{q}"
            );
        }
        let missing = |q: &str| reject(q, None).unwrap_err();
        assert_eq!(
            missing("reason=r"),
            PostbackError::Missing("transaction_id")
        );
        assert_eq!(
            missing(&format!("transaction_id={t}&reason=+")),
            PostbackError::Missing("reason")
        );
        let long = "r".repeat(MAX_FIELD_LEN + 1);
        assert!(matches!(
            missing(&format!("transaction_id={t}&reason={long}")),
            PostbackError::Invalid { name: "reason", .. }
        ));
        // Offer 2's conversions read no rejections: kept all the same, and the answer says so.
        let t2 = tid("2", TokenVerdict::Redirected, NOW - 600_000);
        let unread = reject(
            &format!("transaction_id={t2}&reason=r&secret=acme-postback-secret"),
            None,
        )
        .unwrap();
        assert!(!unread.judged);
    }

    #[test]
    fn an_advertiser_without_a_secret_cannot_reject() {
        let config = rejecting_config(r#"{"id": "acme"}"#);
        let t = tid("1", TokenVerdict::Redirected, NOW - 600_000);
        let q = format!("transaction_id={t}&reason=r");
        assert_eq!(
            Rejecting::new(&config, &key(), &q, None, NOW),
            Err(PostbackError::Unauthorized)
        );
    }

    #[test]
    fn a_rejection_is_kept_once_with_its_first_reason_until_it_expires() {
        let (first, write) = reject_step(None, "click injection", NOW + 10, NOW);
        assert_eq!(
            first,
            Rejected {
                reason: "click injection".into(),
                new: true
            }
        );
        let stored = write.unwrap();
        assert_eq!(stored_rejection(&stored, NOW + 10), Some("click injection"));
        // Sent again, with another reason: nothing changes.
        let (again, write) = reject_step(Some(&stored), "other", NOW + 20, NOW + 1);
        assert_eq!(
            (again.reason.as_str(), again.new, write),
            ("click injection", false, None)
        );
        // Past its expiry it is gone: the sweep deletes it, a new report starts afresh.
        assert_eq!(stored_rejection(&stored, NOW + 11), None);
        assert!(rejection_expired("rj/00ff", &stored, NOW + 11));
        assert!(!rejection_expired("rj/00ff", &stored, NOW + 10));
        assert!(rejection_expired("rj/00ff", "garbage", NOW));
        assert!(!rejection_expired("cv/00ff", "garbage", NOW));
        assert!(
            reject_step(Some(&stored), "later", NOW + 90, NOW + 11)
                .0
                .new
        );
    }

    #[test]
    fn a_rejected_clicks_conversion_is_invalid_with_the_reason_given() {
        let config = rejecting_config(ACME);
        let t = tid("1", TokenVerdict::Redirected, NOW - 600_000);
        let judging = |offer_tid: &str| {
            let q = format!("transaction_id={offer_tid}&secret=acme-postback-secret");
            Judging::new(&config, &key(), parse(&q).unwrap(), NOW).unwrap()
        };
        let j = judging(&t);
        assert_eq!(j.rejection_key, Some(rejection_key(&t)));
        let o = j.finish(Some(Prior::Rejected("install rejected by the MMP".into())));
        assert_eq!(
            (o.status.as_str(), codes(&o)),
            ("invalid", vec!["third_party_rejection"])
        );
        assert!(o.log_line(NOW).contains("install rejected by the MMP"));
        // The report counts it among the invalid conversions' reasons.
        let tally = crate::report::Tally::conversion(&o);
        assert_eq!(
            (
                tally.invalid,
                tally.conversion_reasons.get("third_party_rejection")
            ),
            (1, Some(&1))
        );
        // Not rejected: approved as ever.
        assert_eq!(
            judging(&t).finish(Some(Prior::Fresh)).status.as_str(),
            "approved"
        );
        // A rule without the filter does not ask.
        let t2 = tid("2", TokenVerdict::Redirected, NOW - 600_000);
        assert_eq!(judging(&t2).rejection_key, None);
        // A status that is not judged does not ask either.
        let q = format!("transaction_id={t}&status=declined&secret=acme-postback-secret");
        let declined = Judging::new(&config, &key(), parse(&q).unwrap(), NOW).unwrap();
        assert_eq!(declined.rejection_key, None);
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parsing_never_panics(q in "\\PC{0,200}") {
                let _ = parse(&q);
            }
        }
    }
}
