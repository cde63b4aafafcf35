//! `datacenter_vpn`: the client's network (its ASN) or address in the datacenter or VPN lists;
//! with `share`, the affiliate's share of such clicks beyond a bound (the `ecommerce` strategy's
//! "Below 10%"), not a single click from one.

use rustc_hash::FxHashSet;

use crate::filters::share::{Measure, ShareBound};
use crate::filters::{
    ip_hit, judge_share, Count, Hit, Judge, Seen, Settings, Stage, Unavailable,
};
use crate::ip::IpSet;
use crate::verdict::ReasonCode;

/// What an unset field of `share` is: a day's clicks, judged from the 100th.
pub const SHARE: ShareBound = ShareBound {
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
        let asn_hit = |set: &FxHashSet<u32>, code: ReasonCode| {
            let asn = client.asn?;
            set.contains(&asn).then(|| Hit {
                code,
                matched: format!("AS{asn}"),
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
    use crate::filters::share::{Measure, Tally, MAX_SHARES};
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
    fn with_a_share_it_judges_the_affiliates_share_of_listed_networks() {
        let cfg = config(
            r#"{"id": "r", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1"]},
                "decline": "low_and_higher",
                "strategy": {"filters": [{"type": "datacenter_vpn", "share": {"min": 20}}]}}"#,
        );
        let shared = |hits, total| {
            let mut shares = [None; MAX_SHARES];
            shares[1] = Some((Measure::DatacenterVpn, Tally { total, hits }));
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
