//! Alerts: what the operator's webhook is told without asking (a network's flood block trips or
//! lifts, a signing breaker opens or closes, a config update fails, an offer's share of blocked
//! clicks jumps, a feed fails), at most once per kind and subject per window.
//!
//! Each source raises a [`Raised`] where it decides the event; the isolate keeps them in its
//! [`Alerts`] and, on its next request, [`Alerts::due`] turns those the config's `alerts` section
//! wants and the window lets through into webhook bodies, sent by the edge after the response.
//! Nothing here reads a clock: `now` is passed in, and every piece of state has a fixed bound.

use crate::log::JsonLine;
use crate::time::{rfc3339_ms, HOUR_MS};

/// What an alert is about. Its name is the `kind` of the webhook body and what `alerts.kinds`
/// lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A network's object blocked it for the day (a threshold tripped, or an operator imposed it).
    FloodTripped,
    /// A network's block ended: lifted by an operator, or at 00:00 UTC.
    FloodLifted,
    /// A network's signing breaker opened: its signature failures are only reported.
    BreakerOpened,
    BreakerClosed,
    /// A refreshed config document could not be used; the isolate keeps the last good one.
    ConfigFailed,
    /// An offer's share of blocked clicks rose by `alerts.blocked_share_jump` or more against the
    /// window before ([`BlockedShares`]).
    BlockedShareJump,
    /// A scheduled feed (a list fetched on a timer) failed to update. Raised by the feed's own
    /// code with [`Alerts::raise`]; nothing else raises it.
    FeedFailed,
    /// A network's flagged clicks tripped within [`crate::flood::CONFIG_CHANGE_WINDOW_MS`] of a
    /// config change, at its usual volume: put down to the new rules and not blocked.
    FloodAfterConfigChange,
}

impl Kind {
    pub(crate) const ALL: [Kind; 8] = [
        Kind::FloodTripped,
        Kind::FloodLifted,
        Kind::BreakerOpened,
        Kind::BreakerClosed,
        Kind::ConfigFailed,
        Kind::BlockedShareJump,
        Kind::FeedFailed,
        Kind::FloodAfterConfigChange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::FloodTripped => "flood_tripped",
            Kind::FloodLifted => "flood_lifted",
            Kind::BreakerOpened => "breaker_opened",
            Kind::BreakerClosed => "breaker_closed",
            Kind::ConfigFailed => "config_failed",
            Kind::BlockedShareJump => "blocked_share_jump",
            Kind::FeedFailed => "feed_failed",
            Kind::FloodAfterConfigChange => "flood_after_config_change",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The words of the webhook's `text` before its detail.
    fn headline(self) -> &'static str {
        match self {
            Kind::FloodTripped => "flood block tripped: its clicks are blocked until 00:00 UTC",
            Kind::FloodLifted => "flood block lifted",
            Kind::BreakerOpened => "signing breaker opened: bad signatures are only reported",
            Kind::BreakerClosed => "signing breaker closed: signatures are enforced again",
            Kind::ConfigFailed => "config update failed: the last good config stays in force",
            Kind::BlockedShareJump => "share of blocked clicks jumped",
            Kind::FeedFailed => "feed update failed",
            Kind::FloodAfterConfigChange => {
                "flagged clicks jumped after a config change: not blocked, check the new rules"
            }
        }
    }
}

/// The `alerts` section of the config document.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Where the JSON body is POSTed: a Slack incoming webhook or anything that takes its shape.
    pub(crate) webhook: String,
    /// The kinds sent, one bit each ([`Kind`]'s order); all of them unless `kinds` says otherwise.
    pub(crate) kinds: u8,
    /// At most one alert per kind and subject in this long.
    pub(crate) window_ms: u64,
    /// The rise in an offer's blocked share, window over window, that is a jump (0.3: from 10 %
    /// to 40 %).
    pub(crate) blocked_share_jump: f64,
    /// Clicks an offer needs in each of the two windows before its shares are compared.
    pub(crate) blocked_share_min_clicks: u32,
}

pub(crate) const DEFAULT_WINDOW_MS: u64 = HOUR_MS;
pub(crate) const DEFAULT_BLOCKED_SHARE_JUMP: f64 = 0.3;
pub(crate) const DEFAULT_BLOCKED_SHARE_MIN_CLICKS: u32 = 100;

impl Settings {
    pub fn new(webhook: String) -> Settings {
        Settings {
            webhook,
            kinds: Kind::ALL.iter().fold(0, |bits, k| bits | k.bit()),
            window_ms: DEFAULT_WINDOW_MS,
            blocked_share_jump: DEFAULT_BLOCKED_SHARE_JUMP,
            blocked_share_min_clicks: DEFAULT_BLOCKED_SHARE_MIN_CLICKS,
        }
    }

    /// Only these kinds are sent.
    pub(crate) fn only(mut self, kinds: &[Kind]) -> Settings {
        self.kinds = kinds.iter().fold(0, |bits, k| bits | k.bit());
        self
    }

    pub(crate) fn wants(&self, kind: Kind) -> bool {
        self.kinds & kind.bit() != 0
    }
}

/// An event worth an alert, as its source decided it: the network or offer it is about (none for
/// the config), and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    pub kind: Kind,
    pub network: Option<String>,
    pub offer: Option<String>,
    pub detail: String,
}

impl Raised {
    /// A scheduled feed that failed to update: about the config, whose feed it is.
    pub fn feed_failed(detail: String) -> Raised {
        Raised {
            kind: Kind::FeedFailed,
            network: None,
            offer: None,
            detail,
        }
    }

    pub fn network(kind: Kind, network: &str, detail: impl Into<String>) -> Raised {
        Raised {
            kind,
            network: Some(network.to_owned()),
            offer: None,
            detail: detail.into(),
        }
    }

    /// The key of its window: one alert per kind and network (or offer) per window.
    fn subject(&self) -> &str {
        self.network
            .as_deref()
            .or(self.offer.as_deref())
            .unwrap_or("")
    }

    /// The webhook's body: Slack's `text`, and the same said field by field for a program.
    pub fn body(&self, config: &str, now_ms: u64) -> String {
        let about = match (&self.network, &self.offer) {
            (Some(n), _) => format!("network {n}: "),
            (None, Some(o)) => format!("offer {o}: "),
            (None, None) => String::new(),
        };
        let text = format!(
            "clickgate: {about}{} ({})",
            self.kind.headline(),
            self.detail
        );
        JsonLine::new()
            .str("text", &text)
            .str("kind", self.kind.as_str())
            .opt("network", self.network.as_deref())
            .opt("offer", self.offer.as_deref())
            .str("detail", &self.detail)
            .str("at", &rfc3339_ms(now_ms))
            .str("config", config)
            .finish()
    }
}

/// What became of a raised alert the settings want.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Due {
    /// A body for the webhook.
    Send {
        url: String,
        kind: Kind,
        body: String,
    },
    /// Held back: one of its kind about its subject went within the window. Its log line, so the
    /// operator can tell an alert held from one never raised.
    Held(String),
}

/// Raised alerts kept until the next request looks at them; past this many the newest are
/// dropped (a request drains them all, so only a burst between two requests can reach it).
const MAX_PENDING: usize = 32;
/// Kind-and-subject pairs whose window is remembered; past it the one sent longest ago is
/// forgotten first, and may be sent again within its window.
const MAX_SENT: usize = 256;

/// When each kind and subject was last sent: at most one per window. Pure over its state: the
/// caller passes `now`. A list, not a map: it is short and looked at only when an alert is raised,
/// and a map's code would cost the Worker more than the scan.
#[derive(Debug, Default)]
pub(crate) struct Dedup {
    sent: Vec<(Kind, String, u64)>,
}

impl Dedup {
    /// Whether an alert of `kind` about `subject` may go at `now_ms`: none went in the
    /// `window_ms` before it. Admitting it starts its window.
    pub(crate) fn admit(&mut self, kind: Kind, subject: &str, window_ms: u64, now_ms: u64) -> bool {
        self.sent
            .retain(|(_, _, at)| now_ms < at.saturating_add(window_ms));
        if self.sent.iter().any(|(k, s, _)| *k == kind && s == subject) {
            return false;
        }
        // Oldest first: past the bound the one sent longest ago is forgotten.
        if self.sent.len() >= MAX_SENT {
            self.sent.remove(0);
        }
        self.sent.push((kind, subject.to_owned(), now_ms));
        true
    }
}

/// Offers whose blocked share is followed; past it a new offer is followed once an old one's
/// windows have passed.
const MAX_OFFERS: usize = 256;

/// An offer's clicks and blocked clicks in the current window (by its index since the epoch) and
/// the one before, and whether this window raised its jump already.
#[derive(Debug, Clone, Copy, Default)]
struct Share {
    window: u64,
    clicks: u32,
    blocked: u32,
    before: (u32, u32),
    raised: bool,
}

/// The blocked-share jump, per offer, over the clicks this isolate decided: once the current
/// window (whole windows of `alerts.window_seconds` since the epoch) holds at least
/// `blocked_share_min_clicks` clicks, and the window before held as many, a blocked share that
/// rose by `blocked_share_jump` or more over the window before's is a jump, raised once per window.
#[derive(Debug, Default)]
pub(crate) struct BlockedShares {
    offers: Vec<(String, Share)>,
}

impl BlockedShares {
    /// Counts one decided click; the jump it completes, if it does.
    pub(crate) fn record(
        &mut self,
        s: &Settings,
        offer: &str,
        blocked: bool,
        now_ms: u64,
    ) -> Option<Raised> {
        let window = now_ms / s.window_ms.max(1);
        let at = match self.offers.iter().position(|(o, _)| o == offer) {
            Some(at) => at,
            None => {
                if self.offers.len() >= MAX_OFFERS {
                    self.offers.retain(|(_, sh)| sh.window + 1 >= window);
                    if self.offers.len() >= MAX_OFFERS {
                        return None;
                    }
                }
                self.offers.push((offer.to_owned(), Share::default()));
                self.offers.len() - 1
            }
        };
        let share = &mut self.offers[at].1;
        if share.window != window {
            share.before = if share.window + 1 == window {
                (share.clicks, share.blocked)
            } else {
                (0, 0)
            };
            *share = Share {
                window,
                before: share.before,
                ..Share::default()
            };
        }
        share.clicks = share.clicks.saturating_add(1);
        share.blocked = share.blocked.saturating_add(u32::from(blocked));
        let min = s.blocked_share_min_clicks.max(1);
        let (clicks_before, blocked_before) = share.before;
        if share.raised || share.clicks < min || clicks_before < min {
            return None;
        }
        let now = f64::from(share.blocked) / f64::from(share.clicks);
        let then = f64::from(blocked_before) / f64::from(clicks_before);
        if now - then < s.blocked_share_jump {
            return None;
        }
        share.raised = true;
        Some(Raised {
            kind: Kind::BlockedShareJump,
            network: None,
            offer: Some(offer.to_owned()),
            detail: format!(
                "{} of {} clicks blocked this window, {} of {} the window before",
                share.blocked, share.clicks, blocked_before, clicks_before
            ),
        })
    }
}

/// What one isolate keeps for alerts: those raised and not yet looked at, the windows of those
/// sent, and the offers' blocked shares.
#[derive(Debug, Default)]
pub(crate) struct Alerts {
    pending: Vec<Raised>,
    dedup: Dedup,
    shares: BlockedShares,
}

impl Alerts {
    /// Keeps an event for the next request to send (or not).
    pub(crate) fn raise(&mut self, raised: Raised) {
        if self.pending.len() < MAX_PENDING {
            self.pending.push(raised);
        }
    }

    /// Counts a decided click toward its offer's blocked share (only with `alerts` configured).
    pub(crate) fn click(
        &mut self,
        settings: Option<&Settings>,
        offer: &str,
        blocked: bool,
        now_ms: u64,
    ) {
        if let Some(s) = settings {
            if let Some(jump) = self.shares.record(s, offer, blocked, now_ms) {
                self.raise(jump);
            }
        }
    }

    /// What to do now with each raised alert the settings want: send it, or log it held back by
    /// its window; those not wanted are dropped. No settings: nothing is sent and nothing is kept.
    pub(crate) fn due(
        &mut self,
        settings: Option<&Settings>,
        config: &str,
        now_ms: u64,
    ) -> Vec<Due> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let raised = std::mem::take(&mut self.pending);
        let Some(s) = settings else {
            return Vec::new();
        };
        raised
            .into_iter()
            .filter(|r| s.wants(r.kind))
            .map(
                |r| match self.dedup.admit(r.kind, r.subject(), s.window_ms, now_ms) {
                    true => Due::Send {
                        url: s.webhook.clone(),
                        kind: r.kind,
                        body: r.body(config, now_ms),
                    },
                    false => Due::Held(
                        JsonLine::new()
                            .str("event", "alert")
                            .str("ts", &rfc3339_ms(now_ms))
                            .str("kind", r.kind.as_str())
                            .str("result", "held")
                            .str("subject", r.subject())
                            .str("detail", &r.detail)
                            .finish(),
                    ),
                },
            )
            .collect()
    }
}

/// How an alert's delivery ended: `sent` after `attempts` (the webhook answered 2xx) on stdout,
/// or a fault line naming the kind and the last problem.
pub fn delivery_line(kind: Kind, sent: Result<usize, (usize, &str)>, now_ms: u64) -> String {
    match sent {
        Ok(attempts) => JsonLine::new()
            .str("event", "alert")
            .str("ts", &rfc3339_ms(now_ms))
            .str("kind", kind.as_str())
            .str("result", "sent")
            .num("attempts", attempts as u64)
            .finish(),
        Err((attempts, problem)) => crate::log::fault_line(
            "alert_webhook",
            &format!(
                "{} alert not delivered after {attempts} attempts: {problem}",
                kind.as_str()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const T0: u64 = 1_796_000_400_000; // 2026-11-30T01:00:00Z, a window's start
    const W: u64 = DEFAULT_WINDOW_MS;

    fn settings() -> Settings {
        Settings::new("https://hooks.example/alerts".into())
    }

    fn trip(network: &str) -> Raised {
        Raised::network(
            Kind::FloodTripped,
            network,
            "per_minute: 5 clicks, ceiling 5",
        )
    }

    #[test]
    fn one_alert_per_kind_and_network_per_window_to_the_millisecond() {
        let mut d = Dedup::default();
        assert!(d.admit(Kind::FloodTripped, "net-a", W, T0));
        assert!(!d.admit(Kind::FloodTripped, "net-a", W, T0));
        assert!(!d.admit(Kind::FloodTripped, "net-a", W, T0 + W - 1));
        assert!(d.admit(Kind::FloodTripped, "net-a", W, T0 + W));
        // The window starts again with the one sent.
        assert!(!d.admit(Kind::FloodTripped, "net-a", W, T0 + 2 * W - 1));
        assert!(d.admit(Kind::FloodTripped, "net-a", W, T0 + 2 * W));
    }

    #[test]
    fn two_networks_and_two_kinds_each_have_their_own_window() {
        let mut d = Dedup::default();
        assert!(d.admit(Kind::FloodTripped, "net-a", W, T0));
        assert!(d.admit(Kind::FloodTripped, "net-b", W, T0 + 1));
        assert!(d.admit(Kind::FloodLifted, "net-a", W, T0 + 2));
        assert!(d.admit(Kind::BreakerOpened, "net-a", W, T0 + 3));
        for (kind, net) in [
            (Kind::FloodTripped, "net-a"),
            (Kind::FloodTripped, "net-b"),
            (Kind::FloodLifted, "net-a"),
            (Kind::BreakerOpened, "net-a"),
        ] {
            assert!(!d.admit(kind, net, W, T0 + 10), "{kind:?} {net}");
        }
        assert!(d.admit(Kind::BreakerOpened, "net-b", W, T0 + 10));
    }

    #[test]
    fn the_windows_remembered_stay_within_their_bound() {
        let mut d = Dedup::default();
        for i in 0..(MAX_SENT as u64 * 3) {
            assert!(d.admit(Kind::FloodTripped, &format!("net-{i}"), W, T0 + i));
            assert!(d.sent.len() <= MAX_SENT);
        }
        // The newest are still held to their window; the oldest were forgotten first.
        let last = MAX_SENT as u64 * 3 - 1;
        assert!(!d.admit(Kind::FloodTripped, &format!("net-{last}"), W, T0 + last));
        assert!(d.admit(Kind::FloodTripped, "net-0", W, T0 + last));
        // Windows that ended are dropped, whatever the bound.
        d.admit(Kind::FloodLifted, "net-x", W, T0 + last + W);
        assert_eq!(d.sent.len(), 1);
    }

    #[test]
    fn due_sends_each_raised_alert_once_per_window_holds_the_rest_and_drops_kinds_not_wanted() {
        let mut a = Alerts::default();
        let s = settings();
        a.raise(trip("net-a"));
        a.raise(trip("net-a"));
        a.raise(trip("net-b"));
        let due = a.due(Some(&s), "cfg1", T0);
        assert_eq!(
            sent(&due),
            [("net-a", Kind::FloodTripped), ("net-b", Kind::FloodTripped)]
        );
        let held = r#""kind":"flood_tripped","result":"held","subject":"net-a""#;
        assert!(
            matches!(&due[1], Due::Held(line) if line.contains(held)),
            "{due:?}"
        );
        // Raised again within the window: held; the queue is empty after each look.
        a.raise(trip("net-a"));
        let due = a.due(Some(&s), "cfg1", T0 + W - 1);
        assert!(matches!(&due[..], [Due::Held(_)]), "{due:?}");
        assert!(a.due(Some(&s), "cfg1", T0 + W).is_empty());
        a.raise(trip("net-a"));
        let due = a.due(Some(&s), "cfg1", T0 + W);
        assert_eq!(sent(&due), [("net-a", Kind::FloodTripped)]);

        let only = settings().only(&[Kind::BreakerOpened]);
        a.raise(trip("net-c"));
        a.raise(Raised::network(Kind::BreakerOpened, "net-c", "x"));
        let due = a.due(Some(&only), "cfg1", T0);
        assert_eq!(sent(&due), [("net-c", Kind::BreakerOpened)]);
        assert_eq!(due.len(), 1, "a kind not wanted is not even held: {due:?}");
        // Without an `alerts` section nothing is sent, and nothing waits for one.
        a.raise(trip("net-d"));
        assert!(a.due(None, "cfg1", T0).is_empty());
        assert!(a.due(Some(&s), "cfg1", T0).is_empty());
    }

    /// The network and kind of each body to send, checking it goes to the webhook.
    fn sent(due: &[Due]) -> Vec<(&str, Kind)> {
        due.iter()
            .filter_map(|d| match d {
                Due::Send { url, kind, body } => {
                    assert_eq!(url, "https://hooks.example/alerts");
                    let network = ["net-a", "net-b", "net-c", "net-d"]
                        .into_iter()
                        .find(|n| body.contains(&format!(r#""network":"{n}""#)))?;
                    Some((network, *kind))
                }
                Due::Held(_) => None,
            })
            .collect()
    }

    #[test]
    fn raised_alerts_waiting_for_a_request_are_bounded() {
        let mut a = Alerts::default();
        for i in 0..(MAX_PENDING * 2) {
            a.raise(trip(&format!("net-{i}")));
        }
        assert_eq!(a.due(Some(&settings()), "cfg1", T0).len(), MAX_PENDING);
    }

    #[test]
    fn the_body_is_slack_text_with_the_same_said_field_by_field() {
        let body = trip("net-flood").body("3f2a9c", T0);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["text"],
            "clickgate: network net-flood: flood block tripped: its clicks are blocked until \
             00:00 UTC (per_minute: 5 clicks, ceiling 5)"
        );
        assert_eq!(v["kind"], "flood_tripped");
        assert_eq!(v["network"], "net-flood");
        assert_eq!(v["detail"], "per_minute: 5 clicks, ceiling 5");
        assert_eq!(v["at"], "2026-11-30T01:00:00.000Z");
        assert_eq!(v["config"], "3f2a9c");
        assert!(v.get("offer").is_none());
        let config = Raised {
            kind: Kind::ConfigFailed,
            network: None,
            offer: None,
            detail: "KV: \"timeout\"".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&config.body("c", T0)).unwrap();
        assert_eq!(
            v["text"],
            "clickgate: config update failed: the last good config stays in force (KV: \"timeout\")"
        );
    }

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("flood"), None);
        assert_eq!(Kind::parse("feed_failed"), Some(Kind::FeedFailed));
    }

    /// Counts `clicks` clicks of `offer`, `blocked` of them blocked and spread evenly among them,
    /// from `at`; the jumps raised.
    fn clicks(
        b: &mut BlockedShares,
        s: &Settings,
        offer: &str,
        (clicks, blocked): (u32, u32),
        at: u64,
    ) -> Vec<Raised> {
        (0..clicks)
            .filter_map(|i| {
                let blocked = (i + 1) * blocked / clicks > i * blocked / clicks;
                b.record(s, offer, blocked, at + u64::from(i))
            })
            .collect()
    }

    #[test]
    fn an_offers_blocked_share_jump_is_raised_once_when_the_window_holds_enough_clicks() {
        let s = Settings {
            blocked_share_min_clicks: 10,
            ..settings()
        };
        let mut b = BlockedShares::default();
        assert!(clicks(&mut b, &s, "1001", (20, 2), T0).is_empty());
        // 10 % before; the next window reaches 10 clicks at 50 %: a rise of 0.4.
        let jumps = clicks(&mut b, &s, "1001", (30, 15), T0 + W);
        assert_eq!(jumps.len(), 1, "{jumps:?}");
        assert_eq!(jumps[0].offer.as_deref(), Some("1001"));
        assert_eq!(
            jumps[0].detail,
            "5 of 10 clicks blocked this window, 2 of 20 the window before"
        );
        // Another offer's share is its own.
        assert!(clicks(&mut b, &s, "1002", (20, 0), T0 + W).is_empty());
    }

    #[test]
    fn a_rise_below_the_jump_or_a_window_short_of_clicks_raises_nothing() {
        let s = Settings {
            blocked_share_min_clicks: 10,
            blocked_share_jump: 0.3,
            ..settings()
        };
        let mut b = BlockedShares::default();
        clicks(&mut b, &s, "1001", (20, 2), T0);
        // 10 % to 35 %: 0.25, under the jump.
        assert!(clicks(&mut b, &s, "1001", (20, 7), T0 + W).is_empty());
        // The window before held 9 clicks: too few to compare against.
        let mut b = BlockedShares::default();
        clicks(&mut b, &s, "1001", (9, 0), T0);
        assert!(clicks(&mut b, &s, "1001", (20, 20), T0 + W).is_empty());
        // A quiet window in between: the window before the jump is empty.
        let mut b = BlockedShares::default();
        clicks(&mut b, &s, "1001", (20, 0), T0);
        assert!(clicks(&mut b, &s, "1001", (20, 20), T0 + 2 * W).is_empty());
    }

    #[test]
    fn the_offers_followed_stay_within_their_bound() {
        let s = settings();
        let mut b = BlockedShares::default();
        for i in 0..(MAX_OFFERS * 2) {
            b.record(&s, &format!("o{i}"), false, T0);
        }
        assert_eq!(b.offers.len(), MAX_OFFERS);
        // Two windows on, the old offers make room.
        b.record(&s, "new", false, T0 + 2 * W);
        assert_eq!(b.offers.len(), 1);
    }

    #[test]
    fn a_delivery_ends_in_a_sent_line_or_a_fault_line() {
        let sent: serde_json::Value =
            serde_json::from_str(&delivery_line(Kind::FloodLifted, Ok(2), T0)).unwrap();
        assert_eq!(
            (&sent["event"], &sent["result"], &sent["attempts"]),
            (&"alert".into(), &"sent".into(), &2.into())
        );
        let failed: serde_json::Value = serde_json::from_str(&delivery_line(
            Kind::FloodTripped,
            Err((3, "connection refused")),
            T0,
        ))
        .unwrap();
        assert_eq!(failed["event"], "fault");
        assert_eq!(failed["what"], "alert_webhook");
        assert_eq!(
            failed["problem"],
            "flood_tripped alert not delivered after 3 attempts: connection refused"
        );
    }
}
