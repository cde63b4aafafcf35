//! `datacenter_vpn`: the client's network (its ASN) or address in the datacenter or VPN lists.

use crate::filters::asn_sets::{AsnList, AsnSource};
use crate::filters::{ip_hit, Hit, Judge, Seen, Settings, Stage, Unavailable};
use crate::ip::IpSet;
use crate::verdict::ReasonCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DatacenterVpn;

impl Judge for DatacenterVpn {
    const NAME: &'static str = "datacenter_vpn";
    const POINTS: u32 = 60;
    const STAGE: Stage = Stage::Click;
    const CODES: &'static [ReasonCode] = &[
        ReasonCode::DatacenterAsn,
        ReasonCode::DatacenterIp,
        ReasonCode::VpnAsn,
        ReasonCode::VpnIp,
    ];

    fn compile(_: &mut impl Settings) -> Self {
        DatacenterVpn
    }

    fn judge_click(&self, seen: &Seen, points: u32) -> Result<Option<Hit>, Unavailable> {
        let (lists, client) = (seen.lists, seen.client);
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
}
