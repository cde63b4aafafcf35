//! The words a verdict is written in: what was decided about a click, why, and what to do when a
//! check cannot run.
//!
//! The ground floor: it imports nothing of the crate, so the judges (rules, signing, flood), the
//! decision, the report and the HTTP answer all spell a verdict the same way. Each enum has one
//! `as_str`, the stable text logs, reports and alerts key on; reading a stored text back is
//! `parse`, and an unknown text is an error for the reader to raise, never a default.

/// Writes `ReasonCode` from its one list, code and text per line: the enum, `ALL` in the list's
/// order, `as_str` and `parse`, so a code cannot be left out of `ALL` or read back as another.
macro_rules! reason_codes {
    ($($code:ident => $text:literal,)*) => {
        /// Why a click was refused or scored: the stable code of each filter, list and check.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ReasonCode {
            $($code,)*
        }

        impl ReasonCode {
            pub const ALL: [ReasonCode; [$($text),*].len()] = [$(ReasonCode::$code,)*];

            /// The code as logs, reports and alerts spell it. Never rename one: stored reports and
            /// operators' alerts key on it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ReasonCode::$code => $text,)*
                }
            }

            pub fn parse(text: &str) -> Option<ReasonCode> {
                match text {
                    $($text => Some(ReasonCode::$code),)*
                    _ => None,
                }
            }
        }
    };
}

reason_codes! {
    // The network's signature (see `signing`).
    MissingSignature => "missing_signature",
    InvalidSignature => "invalid_signature",
    UnknownKey => "unknown_key",
    Expired => "expired",
    Replayed => "replayed",
    ReplayStoreUnavailable => "replay_store_unavailable",
    // The network's flood block (see `flood`).
    ClickFlood => "click_flood",
    FloodCheckUnavailable => "flood_check_unavailable",
    // The account-wide IP blocklist.
    IpBlocklist => "ip_blocklist",
    IpUnreadable => "ip_unreadable",
    // The rules' filters (see `filters`).
    Bot => "bot",
    AiAgent => "ai_agent",
    FraudIp => "fraud_ip",
    FraudDevice => "fraud_device",
    DatacenterAsn => "datacenter_asn",
    DatacenterIp => "datacenter_ip",
    VpnAsn => "vpn_asn",
    VpnIp => "vpn_ip",
    Geo => "geo",
    ReferrerBlacklist => "referrer_blacklist",
    OldOs => "old_os",
    OldBrowser => "old_browser",
    DuplicateIp => "duplicate_ip",
    SubIdValidity => "sub_id_validity",
    Spoof => "spoof",
    FilterUnavailable => "filter_unavailable",
    // A conversion judged against its click (see `conversion`).
    FlaggedClick => "flagged_click",
    MinClickToConversion => "min_click_to_conversion",
    MaxClickToConversion => "max_click_to_conversion",
    DuplicateConversion => "duplicate_conversion",
    ApprovedPerClick => "approved_per_click",
    PreviewClick => "preview_click",
    ThirdPartyRejection => "third_party_rejection",
    // An affiliate's share of conversions or clicks beyond a bound (see `filters::share`).
    ClickSpam => "click_spam",
    LowSessionTime => "low_session_time",
    OldDeviceShare => "old_device_share",
    ListedNetworkShare => "datacenter_vpn_share",
    // The operator's lasting blocklist of affiliates and sub IDs (see `config::blocklist`).
    Blocklisted => "blocklisted",
    // One device id's clicks on an offer (see `filters::duplicate_device_id`).
    DuplicateDeviceId => "duplicate_device_id",
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a filter fired: a stable code for machines, the rule that decided, and what matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: ReasonCode,
    /// The rule or list that fired, e.g. `lists.blocked_ips`.
    pub rule_id: String,
    /// The list entry or pattern that matched.
    pub matched: String,
    /// The click's value that matched it.
    pub value: String,
    /// Points added to the fraud score (0 for hard blocks such as the IP blocklist).
    pub points: u32,
}

/// What a click gets: the offer, or the refusal with every reason that counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Redirect { location: String },
    Block { reasons: Vec<Reason> },
}

/// What became of a click, as the decision log, the fraud report's analytics point, `explain` and
/// the what-if tool write it. Never rename one: operators' queries and alerts key on the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Sent to the offer.
    Redirect,
    /// Refused.
    Block,
    /// Sent to the offer, though its rule in monitor mode would have refused it.
    WouldBlock,
    /// Declined by its rule and sent to the rule's fallback instead of the offer.
    Fallback,
    /// Not decided at all: the config could not judge the click.
    Refused,
    /// `explain`'s words for a click its transaction id says was redirected while a rule in
    /// monitor mode flagged it (what the report counts as `would_block`).
    RedirectFlagged,
    /// `explain`'s words for a link preview's fetch, redirected and counted as nobody's click.
    RedirectPreview,
}

impl Verdict {
    pub(crate) const ALL: [Verdict; 7] = [
        Verdict::Redirect,
        Verdict::Block,
        Verdict::WouldBlock,
        Verdict::Fallback,
        Verdict::Refused,
        Verdict::RedirectFlagged,
        Verdict::RedirectPreview,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Redirect => "redirect",
            Verdict::Block => "block",
            Verdict::WouldBlock => "would_block",
            Verdict::Fallback => "fallback",
            Verdict::Refused => "refused",
            Verdict::RedirectFlagged => "redirect_flagged",
            Verdict::RedirectPreview => "redirect_preview",
        }
    }

    /// A written verdict read back; `None` for a text no verdict writes, for the reader to raise.
    pub fn parse(text: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, not `write_str`: tables print verdicts in aligned columns.
        f.pad(self.as_str())
    }
}

/// What a check does when it cannot run (its store unreachable, its object silent): let the
/// click through, or refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaultMode {
    #[default]
    Open,
    Closed,
}

impl FaultMode {
    pub(crate) const CHOICES: &'static [(&'static str, FaultMode)] =
        &[("open", FaultMode::Open), ("closed", FaultMode::Closed)];
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn every_reason_code_reads_back_as_itself_and_no_two_share_a_text() {
        let mut seen = std::collections::HashSet::new();
        for code in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(code.as_str()), Some(code));
            assert!(seen.insert(code.as_str()), "{code} twice");
        }
    }

    /// Stored reports and operators' alerts key on a code's text: a code may be added, never
    /// renamed, and `ALL` keeps the order codes were listed in.
    #[test]
    fn every_code_keeps_its_text_and_its_place_in_all() {
        const KEPT: [(ReasonCode, &str); 38] = [
            (ReasonCode::MissingSignature, "missing_signature"),
            (ReasonCode::InvalidSignature, "invalid_signature"),
            (ReasonCode::UnknownKey, "unknown_key"),
            (ReasonCode::Expired, "expired"),
            (ReasonCode::Replayed, "replayed"),
            (
                ReasonCode::ReplayStoreUnavailable,
                "replay_store_unavailable",
            ),
            (ReasonCode::ClickFlood, "click_flood"),
            (ReasonCode::FloodCheckUnavailable, "flood_check_unavailable"),
            (ReasonCode::IpBlocklist, "ip_blocklist"),
            (ReasonCode::IpUnreadable, "ip_unreadable"),
            (ReasonCode::Bot, "bot"),
            (ReasonCode::AiAgent, "ai_agent"),
            (ReasonCode::FraudIp, "fraud_ip"),
            (ReasonCode::FraudDevice, "fraud_device"),
            (ReasonCode::DatacenterAsn, "datacenter_asn"),
            (ReasonCode::DatacenterIp, "datacenter_ip"),
            (ReasonCode::VpnAsn, "vpn_asn"),
            (ReasonCode::VpnIp, "vpn_ip"),
            (ReasonCode::Geo, "geo"),
            (ReasonCode::ReferrerBlacklist, "referrer_blacklist"),
            (ReasonCode::OldOs, "old_os"),
            (ReasonCode::OldBrowser, "old_browser"),
            (ReasonCode::DuplicateIp, "duplicate_ip"),
            (ReasonCode::SubIdValidity, "sub_id_validity"),
            (ReasonCode::Spoof, "spoof"),
            (ReasonCode::FilterUnavailable, "filter_unavailable"),
            (ReasonCode::FlaggedClick, "flagged_click"),
            (ReasonCode::MinClickToConversion, "min_click_to_conversion"),
            (ReasonCode::MaxClickToConversion, "max_click_to_conversion"),
            (ReasonCode::DuplicateConversion, "duplicate_conversion"),
            (ReasonCode::ApprovedPerClick, "approved_per_click"),
            (ReasonCode::PreviewClick, "preview_click"),
            (ReasonCode::ClickSpam, "click_spam"),
            (ReasonCode::LowSessionTime, "low_session_time"),
            (ReasonCode::OldDeviceShare, "old_device_share"),
            (ReasonCode::ListedNetworkShare, "datacenter_vpn_share"),
            (ReasonCode::Blocklisted, "blocklisted"),
            (ReasonCode::DuplicateDeviceId, "duplicate_device_id"),
        ];
        let mut rest = ReasonCode::ALL.iter();
        for (code, text) in KEPT {
            assert_eq!(code.as_str(), text);
            assert!(
                rest.any(|c| *c == code),
                "{code} is out of its place in ALL"
            );
        }
    }

    #[test]
    fn an_unknown_reason_code_is_not_read_as_any_other() {
        assert_eq!(ReasonCode::parse("operator"), None);
        assert_eq!(ReasonCode::parse(""), None);
        assert_eq!(ReasonCode::parse("BOT"), None);
    }

    #[test]
    fn every_verdict_reads_back_as_itself_and_no_two_share_a_text() {
        let mut seen = std::collections::HashSet::new();
        for v in Verdict::ALL {
            assert_eq!(Verdict::parse(v.as_str()), Some(v));
            assert!(seen.insert(v.as_str()), "{v} twice");
        }
    }

    #[test]
    fn an_unknown_verdict_is_not_read_as_any_other() {
        assert_eq!(Verdict::parse("allow"), None);
        assert_eq!(Verdict::parse(""), None);
        assert_eq!(Verdict::parse("Block"), None);
    }

    #[test]
    fn a_verdict_pads_to_its_column_like_text() {
        assert_eq!(format!("[{:<12}]", Verdict::Block), "[block       ]");
        assert_eq!(Verdict::WouldBlock.to_string(), "would_block");
    }
}
