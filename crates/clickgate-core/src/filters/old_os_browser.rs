//! `old_os_browser`: an operating system or browser older than the rule's minimum major versions;
//! with `share`, the affiliate's share of such clicks beyond a bound ("60% > Old devices"), not a
//! single old device.

use std::ops::RangeInclusive;

use crate::filters::share::{Measure, ShareBound};
use crate::filters::{judge_share, Count, Hit, Judge, Seen, Settings, Stage, Unavailable};
use crate::ua::{Browser, Os, Platform};
use crate::verdict::ReasonCode;

/// The range of every `min.*`.
pub(crate) const MAJOR_VERSION: RangeInclusive<u32> = 0..=999;

/// What an unset field of `share` is: a day's clicks, judged from the 100th.
pub(crate) const SHARE: ShareBound = ShareBound {
    percent: 60,
    min: 100,
    window_hours: 24,
};

/// Minimum OS and browser major versions; older ones count as old devices. With `share`, the
/// filter judges the affiliate's share of old devices on the offer rather than the click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinVersions {
    pub share: Option<ShareBound>,
    pub android: u32,
    pub ios: u32,
    pub windows: u32,
    pub macos: u32,
    pub chrome: u32,
    pub firefox: u32,
    pub safari: u32,
    pub edge: u32,
}

impl Default for MinVersions {
    fn default() -> Self {
        MinVersions {
            share: None,
            android: 8,
            ios: 13,
            windows: 10,
            macos: 10,
            chrome: 100,
            firefox: 100,
            safari: 13,
            edge: 100,
        }
    }
}

impl Judge for MinVersions {
    const NAME: &'static str = "old_os_browser";
    const POINTS: u32 = 30;
    const STAGE: Stage = Stage::Click;
    const CODES: &'static [ReasonCode] = &[
        ReasonCode::OldOs,
        ReasonCode::OldBrowser,
        ReasonCode::OldDeviceShare,
    ];

    fn compile(settings: &mut impl Settings) -> Self {
        let mut min = MinVersions::default();
        settings.object("min", &mut |m| {
            let slots: [(&'static str, &mut u32); 8] = [
                ("android", &mut min.android),
                ("ios", &mut min.ios),
                ("windows", &mut min.windows),
                ("macos", &mut min.macos),
                ("chrome", &mut min.chrome),
                ("firefox", &mut min.firefox),
                ("safari", &mut min.safari),
                ("edge", &mut min.edge),
            ];
            for (key, slot) in slots {
                if let Some(n) = m.u32_in(key, MAJOR_VERSION) {
                    *slot = n;
                }
            }
        });
        settings.object("share", &mut |s| min.share = Some(ShareBound::read(s, SHARE)));
        min
    }

    fn counts(&self) -> Option<Count> {
        self.share.map(|bound| Count::Share {
            measure: Measure::OldDevices,
            window_hours: bound.window_hours,
            clicks: true,
        })
    }

    fn judge_click(&self, seen: &Seen, points: u32) -> Result<Option<Hit>, Unavailable> {
        if self.share.is_some() {
            return judge_share(Self::NAME, self.share(), seen.counters.as_ref(), points);
        }
        Ok(self.single(seen, points))
    }

    fn share(&self) -> Option<(Measure, ShareBound)> {
        self.share.map(|bound| (Measure::OldDevices, bound))
    }

    /// Every click counts toward the share; one without a User-Agent is not an old device.
    fn share_hit(&self, seen: &Seen) -> Option<bool> {
        Some(self.single(seen, 0).is_some())
    }

}

impl MinVersions {
    /// This click's device alone.
    fn single(&self, seen: &Seen, points: u32) -> Option<Hit> {
        seen.client
            .user_agent
            .as_ref()
            .and_then(|ua| self.older(&ua.platform(), points))
    }

    fn older(&self, p: &Platform, points: u32) -> Option<Hit> {
        if let Some((os, v)) = p.os {
            let floor = match os {
                Os::Android => self.android,
                Os::Ios => self.ios,
                Os::Windows => self.windows,
                Os::MacOs => self.macos,
            };
            if v < floor {
                return Some(Hit {
                    code: ReasonCode::OldOs,
                    matched: format!("{} < {floor}", os.name()),
                    value: format!("{} {v}", os.name()),
                    points,
                });
            }
        }
        if let Some((b, v)) = p.browser {
            let floor = match b {
                Browser::Chrome => self.chrome,
                Browser::Firefox => self.firefox,
                Browser::Safari => self.safari,
                Browser::Edge => self.edge,
            };
            if v < floor {
                return Some(Hit {
                    code: ReasonCode::OldBrowser,
                    matched: format!("{} < {floor}", b.name()),
                    value: format!("{} {v}", b.name()),
                    points,
                });
            }
        }
        None
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
    fn fires_on_an_old_os_or_browser() {
        fires_alone(vec![
                (
                    "old os",
                    Click { ua: "Mozilla/5.0 (Linux; Android 6.0; X) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36", ..Click::default() },
                    "old_os",
                ),
                (
                    "old browser",
                    Click { ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/80.0.0.0 Safari/537.36", ..Click::default() },
                    "old_browser",
                ),
        ]);
    }

    fn shared(hits: u32, total: u32) -> Option<Counters> {
        let mut shares = [None; MAX_SHARES];
        shares[0] = Some((Measure::OldDevices, ShareTally { total, hits }));
        Some(Counters {
            shares,
            ..Counters::default()
        })
    }

    #[test]
    fn with_a_share_it_judges_the_affiliates_share_of_old_devices_not_the_click() {
        let cfg = config(
            r#"{"id": "r", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1"]},
                "decline": "low_and_higher",
                "strategy": {"filters": [{"type": "old_os_browser", "share": {"percent": 60, "min": 10}}]}}"#,
        );
        let old = "Mozilla/5.0 (Linux; Android 6.0; X) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36";
        let click = |counters| run(&cfg, Click { ua: old, counters, ..Click::default() });
        assert_eq!(codes(&click(shared(5, 10))), Vec::<&str>::new(), "below");
        assert_eq!(codes(&click(shared(6, 10))), Vec::<&str>::new(), "at");
        let above = click(shared(7, 10));
        assert_eq!(codes(&above), ["old_device_share"], "above");
        assert_eq!(
            above.reasons()[0].value,
            r#"{"share":0.7,"bound":0.6,"old":7,"of":10}"#
        );
        assert_eq!(codes(&click(shared(9, 9))), Vec::<&str>::new(), "short of its minimum");
        // A current browser from an affiliate past the bound is judged on the share all the same.
        let current = run(&cfg, Click { counters: shared(10, 10), ..Click::default() });
        assert_eq!(codes(&current), ["old_device_share"]);
        let unread = click(None);
        assert_eq!(unread.assessment.unwrap().unavailable, ["old_os_browser"]);
    }
}
