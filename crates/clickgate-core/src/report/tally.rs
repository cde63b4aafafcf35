//! What is counted: a report row's [`Tally`], and where a click or a postback counts.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::click::Id;
use crate::config::Config;
use crate::conversion::{ConversionOutcome, ConversionStatus};
use crate::decide::ClickOutcome;
use crate::fault::Corrupt;
use crate::time::HOUR_MS;

/// The counts of one report row. `clicks = allowed + blocked`; `would_block` are the allowed clicks
/// a rule in monitor mode declined. CR is all conversions over all clicks, whatever their status,
/// as the fraud reports operators know define it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub clicks: u64,
    pub allowed: u64,
    pub blocked: u64,
    pub would_block: u64,
    /// Every postback with a valid transaction id, judged or not.
    pub conversions: u64,
    pub(crate) approved: u64,
    pub invalid: u64,
    /// Blocked and would-block clicks per reason code; a click with two reasons counts under both.
    pub reasons: BTreeMap<String, u64>,
    /// Invalid conversions per reason code.
    pub(crate) conversion_reasons: BTreeMap<String, u64>,
    /// Fetches redirected as link previews: not clicks, but counted, since the User-Agent that
    /// makes one is a claim a click farm can make too.
    pub previews: u64,
}

impl Tally {
    /// Adds one decided click in place: what every click pays, so it allocates only for a new
    /// reason code.
    pub(crate) fn count_click(&mut self, outcome: &ClickOutcome) {
        let blocked = outcome.is_blocked();
        let flagged = outcome.flagged();
        // What its transaction id calls a preview; one blocked or declined is counted as a click,
        // under its reasons.
        if outcome.preview && !blocked && !flagged {
            self.previews += 1;
            return;
        }
        self.clicks += 1;
        self.allowed += u64::from(!blocked);
        self.blocked += u64::from(blocked);
        self.would_block += u64::from(flagged && !blocked);
        if flagged {
            for r in outcome.reasons() {
                match self.reasons.get_mut(r.code.as_str()) {
                    Some(n) => *n += 1,
                    None => {
                        self.reasons.insert(r.code.as_str().to_owned(), 1);
                    }
                }
            }
        }
    }

    /// One postback whose transaction id opened.
    pub fn conversion(outcome: &ConversionOutcome) -> Tally {
        let mut tally = Tally {
            conversions: 1,
            approved: u64::from(outcome.status == ConversionStatus::Approved),
            invalid: u64::from(outcome.status == ConversionStatus::Invalid),
            ..Tally::default()
        };
        if outcome.status == ConversionStatus::Invalid {
            for (code, _) in &outcome.judging.reasons {
                *tally
                    .conversion_reasons
                    .entry(code.as_str().to_owned())
                    .or_default() += 1;
            }
        }
        tally
    }

    pub fn add(&mut self, other: &Tally) {
        self.clicks += other.clicks;
        self.allowed += other.allowed;
        self.blocked += other.blocked;
        self.would_block += other.would_block;
        self.conversions += other.conversions;
        self.approved += other.approved;
        self.invalid += other.invalid;
        self.previews += other.previews;
        for (code, n) in &other.reasons {
            *self.reasons.entry(code.clone()).or_default() += n;
        }
        for (code, n) in &other.conversion_reasons {
            *self.conversion_reasons.entry(code.clone()).or_default() += n;
        }
    }

    /// Conversions per click; `None` without clicks.
    pub(crate) fn cr(&self) -> Option<f64> {
        ratio(self.conversions, self.clicks)
    }

    pub(crate) fn block_rate(&self) -> Option<f64> {
        ratio(self.blocked, self.clicks)
    }

    /// The compact form batches and storage carry: previews, counted later than the rest, are a
    /// tenth field only when there are some, so rows stored before read and write as they were.
    pub(crate) fn to_wire(&self) -> Value {
        let mut wire = json!([
            self.clicks,
            self.allowed,
            self.blocked,
            self.would_block,
            self.conversions,
            self.approved,
            self.invalid,
            self.reasons,
            self.conversion_reasons
        ]);
        if let (Some(fields), true) = (wire.as_array_mut(), self.previews > 0) {
            fields.push(json!(self.previews));
        }
        wire
    }

    /// A tally as stored or carried in a batch; one that does not read back is a runtime fault.
    pub(crate) fn from_wire(v: &Value) -> Result<Tally, Corrupt> {
        Tally::read(v).map_err(|e| Corrupt::new("report tally", e))
    }

    pub(super) fn read(v: &Value) -> Result<Tally, String> {
        let a = v
            .as_array()
            .filter(|a| a.len() == 9 || a.len() == 10)
            .ok_or("a tally is 9 or 10 fields")?;
        let n = |i: usize| {
            a[i].as_u64()
                .ok_or_else(|| format!("field {i} is not a count"))
        };
        // Inserted one by one: collecting into a map would bring its own copy of the stable sort.
        let map = |i: usize| -> Result<BTreeMap<String, u64>, String> {
            let mut out = BTreeMap::new();
            for (k, v) in a[i]
                .as_object()
                .ok_or_else(|| format!("field {i} is not an object"))?
            {
                out.insert(k.clone(), v.as_u64().ok_or("a reason count")?);
            }
            Ok(out)
        };
        Ok(Tally {
            clicks: n(0)?,
            allowed: n(1)?,
            blocked: n(2)?,
            would_block: n(3)?,
            conversions: n(4)?,
            approved: n(5)?,
            invalid: n(6)?,
            reasons: map(7)?,
            conversion_reasons: map(8)?,
            previews: if a.len() == 10 { n(9)? } else { 0 },
        })
    }

    pub(super) fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("clicks".into(), json!(self.clicks));
        m.insert("allowed".into(), json!(self.allowed));
        m.insert("blocked".into(), json!(self.blocked));
        m.insert("would_block".into(), json!(self.would_block));
        m.insert("block_rate".into(), json!(self.block_rate()));
        m.insert("conversions".into(), json!(self.conversions));
        m.insert("approved".into(), json!(self.approved));
        m.insert("invalid".into(), json!(self.invalid));
        m.insert("cr".into(), json!(self.cr()));
        m.insert("reasons".into(), json!(self.reasons));
        m.insert("conversion_reasons".into(), json!(self.conversion_reasons));
        m.insert("previews".into(), json!(self.previews));
        m
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    // Rounded to 6 places so that JSON and CSV say the same number.
    (b > 0).then(|| (a as f64 / b as f64 * 1e6).round() / 1e6)
}

/// The advertiser and offer a tally is counted under, within its network and hour; or, with the
/// advertiser [`SUB_ID`](super::SUB_ID) or [`COUNTRY`](super::COUNTRY), the sub ID or country in place of the offer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowKey {
    pub hour: u32,
    /// Empty when the offer names no advertiser.
    pub(crate) advertiser: String,
    pub offer: String,
}

/// Where a postback counts: its click's network and offer, that offer's advertiser as the config
/// has it now, and the hour the postback arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConversionRow {
    pub network: Id,
    pub offer: Id,
    pub(crate) advertiser: String,
    pub hour: u32,
    pub tally: Tally,
}

pub(crate) fn conversion_row(
    config: &Config,
    outcome: &ConversionOutcome,
    now_ms: u64,
) -> ConversionRow {
    let click = &outcome.judging.click;
    ConversionRow {
        network: click.aff_id.clone(),
        offer: click.offer_id.clone(),
        advertiser: config
            .offers
            .get(&click.offer_id)
            .and_then(|o| o.advertiser_id.as_ref())
            .map_or_else(String::new, |a| a.to_string()),
        hour: (now_ms / HOUR_MS) as u32,
        tally: Tally::conversion(outcome),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::conversion;
    use crate::report::fixtures::*;
    use crate::time::HOUR_MS;
    #[cfg(not(target_arch = "wasm32"))]
    use proptest::prelude::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_click_counts_as_allowed_blocked_or_would_block_with_its_reasons() {
        let allowed = tally_of(&click("offer_id=1&aff_id=n1", "192.0.2.1", BROWSER, NOW));
        assert_eq!(
            (allowed.clicks, allowed.allowed, allowed.blocked),
            (1, 1, 0)
        );
        assert!(allowed.reasons.is_empty());

        let blocked = tally_of(&click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW));
        assert_eq!(
            (blocked.clicks, blocked.allowed, blocked.blocked),
            (1, 0, 1)
        );
        assert_eq!(blocked.reasons.get("ip_blocklist"), Some(&1));

        // Offer 2's rule is in monitor mode: a bot is redirected but counted as would-block.
        let monitored = tally_of(&click(
            "offer_id=2&aff_id=n1",
            "192.0.2.1",
            "curl/8.4.0",
            NOW,
        ));
        assert_eq!(
            (monitored.allowed, monitored.blocked, monitored.would_block),
            (1, 0, 1)
        );
        assert_eq!(monitored.reasons.get("bot"), Some(&1));
    }

    #[test]
    fn a_link_preview_is_counted_as_a_preview_not_a_click() {
        use crate::network::local::{Flush, FlushPolicy, LocalCounts};
        // Offer 2's rule runs the bot filter: the preview fetcher is redirected, and counted
        // (its User-Agent is a claim), but as a preview: the clicks and their rates stay people's.
        let preview = click(
            "offer_id=2&aff_id=n1",
            "192.0.2.1",
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            NOW,
        );
        assert!(preview.preview && !preview.is_blocked());
        let mut isolate = LocalCounts::new(1, FlushPolicy::default());
        isolate.record_outcome(&preview, &preview.log_line(), Default::default(), &[1; 8]);
        // The same click from a browser is a click.
        let person = click("offer_id=2&aff_id=n1", "192.0.2.1", BROWSER, NOW);
        isolate.record_outcome(&person, &person.log_line(), Default::default(), &[2; 8]);
        let Flush::Send(batch) = isolate.flush(&person.click.aff_id, NOW + 60_000) else {
            panic!("a batch is due")
        };
        // The offer's row, and the same counts under the sub ID and the country (none: "").
        assert_eq!(batch.report.len(), 3);
        for (key, t) in &batch.report[1..] {
            assert_eq!(key.offer, "");
            assert_eq!(t, &batch.report[0].1);
        }
        let tally = &batch.report[0].1;
        assert_eq!((tally.clicks, tally.allowed, tally.previews), (1, 1, 1));
        assert_eq!(batch.flood, vec![(NOW / crate::time::MINUTE_MS, 2, 0)]);
        assert_eq!(Tally::from_wire(&tally.to_wire()).as_ref(), Ok(tally));
    }

    #[test]
    fn rows_are_keyed_by_hour_advertiser_and_offer() {
        let row_of = |out: &ClickOutcome| {
            use crate::network::local::{Flush, FlushPolicy, LocalCounts};
            let mut isolate = LocalCounts::new(1, FlushPolicy::default());
            isolate.record_outcome(out, "", Default::default(), &[1; 8]);
            let Flush::Send(batch) = isolate.flush(&out.click.aff_id, NOW + 60_000) else {
                panic!("a batch is due")
            };
            batch.report[0].0.clone()
        };
        let out = click("offer_id=1&aff_id=n1", "192.0.2.1", BROWSER, NOW + 5);
        assert_eq!(
            row_of(&out),
            RowKey {
                hour: (NOW / HOUR_MS) as u32,
                advertiser: "adv".into(),
                offer: "1".into()
            }
        );
        let out = click("offer_id=2&aff_id=n1", "192.0.2.1", BROWSER, NOW);
        assert_eq!(row_of(&out).advertiser, "");
    }

    #[test]
    fn conversions_count_by_status_with_invalid_reasons() {
        let config = Config::compile(CONFIG).unwrap();
        let flagged = click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW);
        let clean = click("offer_id=1&aff_id=n1", "192.0.2.1", BROWSER, NOW);
        let judge = |tid: &str, status: &str| {
            let p = conversion::parse(&format!("transaction_id={tid}&status={status}")).unwrap();
            conversion::Judging::new(&config, &key(), p, NOW + 60_000)
                .unwrap()
                .finish(Some(crate::conversion::Prior::Fresh))
        };
        let invalid = judge(&flagged.transaction_id, "approved");
        let row = conversion_row(&config, &invalid, NOW + 60_000);
        let tally = row.tally;
        assert_eq!(row.network.as_str(), "n1");
        assert_eq!((row.advertiser.as_str(), row.offer.as_str()), ("adv", "1"));
        assert_eq!(row.hour, ((NOW + 60_000) / HOUR_MS) as u32);
        assert_eq!(
            (tally.conversions, tally.approved, tally.invalid),
            (1, 0, 1)
        );
        assert_eq!(tally.conversion_reasons.get("flagged_click"), Some(&1));

        let approved = Tally::conversion(&judge(&clean.transaction_id, "approved"));
        assert_eq!(
            (approved.conversions, approved.approved, approved.invalid),
            (1, 1, 0)
        );
        // Not judged, still a conversion for CR.
        let declined = Tally::conversion(&judge(&clean.transaction_id, "declined"));
        assert_eq!(
            (declined.conversions, declined.approved, declined.invalid),
            (1, 0, 0)
        );
    }

    #[test]
    fn a_batch_carries_the_digest_of_the_config_its_clicks_were_decided_under() {
        // The network's object tells a rule change from a flood by it (crate::flood::ConfigSeen).
        use crate::flood::Thresholds;
        use crate::network::local::{Flush, FlushPolicy, LocalCounts};
        let mut isolate = LocalCounts::new(1, FlushPolicy::default());
        let out = click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW);
        let digest = u64::from_str_radix(&out.config_digest, 16).unwrap();
        assert_ne!(digest, 0, "{}", out.config_digest);
        isolate.record_outcome(&out, "", Thresholds::default(), &[7; 8]);
        let Flush::Send(batch) = isolate.flush(&out.click.aff_id, NOW + 60_000) else {
            panic!("a batch is due")
        };
        assert_eq!(batch.config, digest);
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest! {
        #[test]
        fn adding_tallies_sums_every_field_in_any_order(
            parts in proptest::collection::vec(
                (proptest::array::uniform8(0u64..1000), 0usize..3, 0u64..1000, 0usize..3, 0u64..1000),
                0..20,
            )
        ) {
            let codes = ["bot", "geo", "referrer"];
            let tallies: Vec<Tally> = parts
                .iter()
                .map(|(n, r, rn, c, cn)| Tally {
                    clicks: n[0],
                    allowed: n[1],
                    blocked: n[2],
                    would_block: n[3],
                    conversions: n[4],
                    approved: n[5],
                    invalid: n[6],
                    reasons: BTreeMap::from([(codes[*r].to_owned(), *rn)]),
                    conversion_reasons: BTreeMap::from([(codes[*c].to_owned(), *cn)]),
                    previews: n[7],
                })
                .collect();
            // The sum, field by field, straight from the parts.
            let field = |i: usize| parts.iter().map(|(n, ..)| n[i]).sum::<u64>();
            let (mut reasons, mut conversion_reasons) = (BTreeMap::new(), BTreeMap::new());
            for (_, r, rn, c, cn) in &parts {
                *reasons.entry(codes[*r].to_owned()).or_insert(0) += rn;
                *conversion_reasons.entry(codes[*c].to_owned()).or_insert(0) += cn;
            }
            let expected = Tally {
                clicks: field(0),
                allowed: field(1),
                blocked: field(2),
                would_block: field(3),
                conversions: field(4),
                approved: field(5),
                invalid: field(6),
                reasons,
                conversion_reasons,
                previews: field(7),
            };
            let mut forward = Tally::default();
            tallies.iter().for_each(|t| forward.add(t));
            let mut backward = Tally::default();
            tallies.iter().rev().for_each(|t| backward.add(t));
            prop_assert_eq!(&forward, &expected);
            prop_assert_eq!(&backward, &expected);
            prop_assert_eq!(Tally::from_wire(&forward.to_wire()).unwrap(), forward);
        }
    }
}
