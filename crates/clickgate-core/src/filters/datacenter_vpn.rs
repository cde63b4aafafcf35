//! `datacenter_vpn`: the client's network (its ASN) or address in the datacenter or VPN lists;
//! with `share`, the affiliate's share of such clicks beyond a bound (the `ecommerce` strategy's
//! "Below 10%"), not a single click from one.

use crate::filters::asn_sets::{AsnList, AsnSource};
use crate::filters::share::{Measure, ShareBound};
use crate::filters::{
    ip_hit, judge_share, Count, Hit, Judge, Seen, Settings, Stage, Unavailable,
};
use crate::ip::IpSet;
use crate::verdict::ReasonCode;

/// What an unset field of `share` is: a day's clicks, judged from the 100th.
pub(crate) const SHARE: ShareBound = ShareBound {
    percent: 10,
    min: 100,
    window_hours: 24,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DatacenterVpn {
    pub share: Option<ShareBound>,
}

impl Judge for DatacenterVpn {
    const NAME: &'static str = "datacenter_vpn";
    const POINTS: u32 = 60;
    const STAGE: Stage = Stage::Click;
    const CODES: &'static [ReasonCode] = &[
        ReasonCode::DatacenterAsn,
        ReasonCode::DatacenterIp,
        ReasonCode::VpnAsn,
        ReasonCode::VpnIp,
        ReasonCode::ListedNetworkShare,
    ];

    fn compile(settings: &mut impl Settings) -> Self {
        let mut share = None;
        settings.object("share", &mut |s| share = Some(ShareBound::read(s, SHARE)));
        DatacenterVpn { share }
    }

    fn counts(&self) -> Option<Count> {
        self.share.map(|bound| Count::Share {
            measure: Measure::DatacenterVpn,
            window_hours: bound.window_hours,
            clicks: true,
        })
    }

    fn judge_click(&self, seen: &Seen, points: u32) -> Result<Option<Hit>, Unavailable> {
        if self.share.is_some() {
            return judge_share(Self::NAME, self.share(), seen.counters.as_ref(), points);
        }
        self.single(seen, points)
    }

    fn share(&self) -> Option<(Measure, ShareBound)> {
        self.share.map(|bound| (Measure::DatacenterVpn, bound))
    }

    /// A click whose address could not be read where a range list could have held it is not
    /// counted either way.
    fn share_hit(&self, seen: &Seen) -> Option<bool> {
        self.single(seen, 0).ok().map(|hit| hit.is_some())
    }

}

impl DatacenterVpn {
    /// This click's network alone.
    fn single(&self, seen: &Seen, points: u32) -> Result<Option<Hit>, Unavailable> {
        let (lists, client) = (seen.lists, seen.client);
        // A relay's exits live in hosting networks, and the people behind them are people.
        if lists.relay(client.ip).is_some() {
            return Ok(None);
        }
        // An operator's own entry is matched as it always was; one from a built-in set says which.
        let asn_hit = |list: &AsnList, code: ReasonCode| {
            let asn = client.asn?;
            let matched = match list.find(asn)? {
                AsnSource::Own => format!("AS{asn}"),
                AsnSource::Builtin(set) => format!("AS{asn} (builtin:{})", set.name()),
            };
            Some(Hit {
                code,
                matched,
                value: format!("AS{asn}"),
                points,
            })
        };
        let range_hit = |set: &IpSet, code| ip_hit(set, client, code, points).ok().flatten();
        let hit = asn_hit(&lists.datacenter_asns, ReasonCode::DatacenterAsn)
            .or_else(|| range_hit(&lists.datacenter_ips, ReasonCode::DatacenterIp))
            .or_else(|| asn_hit(&lists.vpn_asns, ReasonCode::VpnAsn))
            .or_else(|| range_hit(&lists.vpn_ips, ReasonCode::VpnIp));
        // An ASN hit stands on its own; without one, an unread address leaves the filter unable
        // to say whenever either range list could have held it.
        if hit.is_none() && client.ip_unreadable {
            ip_hit(&lists.datacenter_ips, client, ReasonCode::DatacenterIp, points)?;
            ip_hit(&lists.vpn_ips, client, ReasonCode::VpnIp, points)?;
        }
        Ok(hit)
    }
}

#[cfg(test)]
mod tests {
    use crate::decide::harness::*;
    use crate::filters::share::{Measure, ShareTally, MAX_SHARES};
    use crate::filters::Counters;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn fires_on_a_listed_network_or_range() {
        fires_alone(vec![
                ("datacenter asn", Click { asn: Some(16509), ..Click::default() }, "datacenter_asn"),
                ("datacenter asn as text", Click { asn: Some(14061), ..Click::default() }, "datacenter_asn"),
                ("datacenter ip", Click { ip: "100.64.1.2", ..Click::default() }, "datacenter_ip"),
                ("vpn asn", Click { asn: Some(9009), ..Click::default() }, "vpn_asn"),
                ("vpn ip", Click { ip: "2001:db8:aaaa::5", ..Click::default() }, "vpn_ip"),
        ]);
    }

    #[test]
    fn a_builtin_set_is_named_in_matched_and_combines_with_own_entries_and_exclusions() {
        let doc = r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"}],
            "lists": {"datacenter_asns": {"builtin": "hosting", "add": [64496], "except": [14061]},
                      "vpn_asns": {"builtin": ["vpn"]}},
            "rules": [{"id": "r", "created_at": "2026-11-01", "scope": {"offers": ["1"]},
                       "strategy": {"filters": [{"type": "datacenter_vpn"}]}, "decline": "low_and_higher"}]}"#;
        let cfg = crate::config::Config::compile(doc).unwrap();
        let query = "offer_id=1&aff_id=n";
        let matched = |asn| {
            let out = run(&cfg, Click { query, asn: Some(asn), ..Click::default() });
            out.reasons()
                .iter()
                .map(|r| format!("{} {}", r.code.as_str(), r.matched))
                .collect::<Vec<_>>()
        };
        assert_eq!(matched(16509), ["datacenter_asn AS16509 (builtin:hosting)"]);
        assert_eq!(matched(64496), ["datacenter_asn AS64496"]);
        assert_eq!(matched(9009), ["vpn_asn AS9009 (builtin:vpn)"]);
        assert!(matched(14061).is_empty(), "excluded from the set");
        assert!(matched(7922).is_empty(), "a home ISP");
    }

    #[test]
    fn a_builtin_reference_that_is_not_a_set_is_refused_with_its_path() {
        let problems = |lists: &str| {
            crate::config::tests::problems(&format!(
                r#"{{"version": 1, "offers": [{{"id": "1", "landing_url": "https://x.example/"}}],
                    "lists": {lists}}}"#
            ))
        };
        assert_eq!(
            problems(r#"{"datacenter_asns": {"builtin": "clouds"}}"#),
            [r#"lists.datacenter_asns.builtin: must be "hosting" or "vpn""#]
        );
        assert_eq!(
            problems(r#"{"vpn_asns": {"builtin": ["vpn", "vpn"], "add": ["AS-1"], "only": 1}}"#),
            [
                "lists.vpn_asns.builtin[1]: names a set already named",
                "lists.vpn_asns.add[0]: must be an AS number (16509 or \"AS16509\")",
                "lists.vpn_asns.only: is not a known field (known here: builtin, add, except)",
            ]
        );
        assert_eq!(
            problems(r#"{"vpn_asns": {"add": [1]}}"#),
            ["lists.vpn_asns.builtin: is required"]
        );
        assert_eq!(
            problems(r#"{"datacenter_asns": "hosting"}"#),
            [r#"lists.datacenter_asns: must be an array of AS numbers or {"builtin": "hosting"}, found a string"#]
        );
    }

    #[test]
    fn a_click_from_a_relay_is_never_judged_by_its_network_and_names_the_relay() {
        let doc = r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"}],
            "lists": {"datacenter_asns": {"builtin": "hosting"}, "datacenter_ips": ["192.0.2.0/24"],
                      "relays": {"icloud_private_relay": ["192.0.2.0/27", "2001:db8:4000::/45"],
                                 "office-proxy": ["198.51.100.7"]}},
            "rules": [{"id": "r", "created_at": "2026-11-01", "scope": {"offers": ["1"]},
                       "strategy": {"filters": [{"type": "datacenter_vpn"}]}, "decline": "low_and_higher"}]}"#;
        let cfg = crate::config::Config::compile(doc).unwrap();
        let query = "offer_id=1&aff_id=n";
        let log = |ip, asn| {
            let out = run(&cfg, Click { query, ip, asn: Some(asn), ..Click::default() });
            let line: serde_json::Value = serde_json::from_str(&out.log_line()).unwrap();
            (out.is_blocked(), line["relay"].as_str().map(str::to_owned))
        };
        // The relay's exit is in a hosting network and a listed range: neither counts.
        assert_eq!(log("192.0.2.9", 16509), (false, Some("icloud_private_relay".into())));
        assert_eq!(log("2001:db8:4001::1", 24940), (false, Some("icloud_private_relay".into())));
        assert_eq!(log("198.51.100.7", 16509), (false, Some("office-proxy".into())));
        // Beside the relay's ranges the same networks are judged as ever, and nothing is said.
        assert_eq!(log("192.0.2.40", 3320), (true, None));
        assert_eq!(log("203.0.113.9", 16509), (true, None));
    }

    #[test]
    fn a_relay_must_be_named_and_listed() {
        let problems = |relays: &str| {
            crate::config::tests::problems(&format!(
                r#"{{"version": 1, "offers": [{{"id": "1", "landing_url": "https://x.example/"}}],
                    "lists": {{"relays": {relays}}}}}"#
            ))
        };
        assert_eq!(
            problems(r#"{"Apple Relay": ["192.0.2.0/24"], "r": "192.0.2.0/24", "s": ["nope"]}"#),
            [
                "lists.relays.Apple Relay: a relay's name is 1 to 64 of a-z, 0-9, `_` and `-`",
                r#"lists.relays.r: must be a list of addresses and blocks, or {"kv": "iplist/…"}, found a string"#,
                "lists.relays.s[0]: `nope` is not an IPv4 or IPv6 address",
            ]
        );
        assert_eq!(
            problems("[]"),
            ["lists.relays: must be an object of relays by name, found an array"]
        );
        assert_eq!(
            crate::config::referenced_lists(
                r#"{"lists": {"relays": {"icloud_private_relay": {"kv": "iplist/r"}}}}"#
            ),
            ["iplist/r"]
        );
    }

    #[test]
    fn with_a_share_it_judges_the_affiliates_share_of_listed_networks() {
        let cfg = config(
            r#"{"id": "r", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1"]},
                "decline": "low_and_higher",
                "strategy": {"filters": [{"type": "datacenter_vpn", "share": {"min": 20}}]}}"#,
        );
        let shared = |hits, total| {
            let mut shares = [None; MAX_SHARES];
            shares[1] = Some((Measure::DatacenterVpn, ShareTally { total, hits }));
            Some(Counters { shares, ..Counters::default() })
        };
        // "Below 10%": two of twenty is above it, one of ten short of the minimum count.
        let listed = |counters| run(&cfg, Click { asn: Some(16509), counters, ..Click::default() });
        assert_eq!(codes(&listed(shared(1, 20))), Vec::<&str>::new(), "below");
        assert_eq!(codes(&listed(shared(2, 20))), Vec::<&str>::new(), "at");
        assert_eq!(codes(&listed(shared(3, 20))), ["datacenter_vpn_share"], "above");
        assert_eq!(codes(&listed(shared(10, 10))), Vec::<&str>::new(), "short of its minimum");
    }
}
