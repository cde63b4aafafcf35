//! `duplicate_ip`: more than `max` clicks from one IP on one offer and affiliate within the
//! window, as the network's object counted them.

use std::ops::RangeInclusive;

use crate::filters::{Count, Hit, Judge, Seen, Settings, Stage, Unavailable, COUNT};
use crate::verdict::ReasonCode;

/// The range of `window_hours`: the counters keep 720 hours.
pub(crate) const WINDOW_HOURS: RangeInclusive<u32> = 1..=720;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateIp {
    pub max: u32,
    pub window_hours: u32,
}

impl Judge for DuplicateIp {
    const NAME: &'static str = "duplicate_ip";
    const POINTS: u32 = 60;
    const STAGE: Stage = Stage::Click;
    const CODES: &'static [ReasonCode] = &[ReasonCode::DuplicateIp];

    fn compile(settings: &mut impl Settings) -> Self {
        let (max, window_hours) = read_count(settings);
        DuplicateIp { max, window_hours }
    }

    fn counts(&self) -> Option<Count> {
        Some(Count::IpClicks {
            window_hours: self.window_hours,
        })
    }

    fn judge_click(&self, seen: &Seen, points: u32) -> Result<Option<Hit>, Unavailable> {
        if seen.client.ip_unreadable {
            return Err(Unavailable);
        }
        let c = seen.counters.ok_or(Unavailable)?;
        let DuplicateIp { max, window_hours } = *self;
        Ok((c.ip_clicks > max).then(|| {
            let ip = seen.client.ip.map(|ip| ip.to_string()).unwrap_or_default();
            count_hit(ReasonCode::DuplicateIp, (max, window_hours), &ip, c.ip_clicks, points)
        }))
    }
}

/// `max` (default 1) and `window_hours` (default 24): the duplicate-device filter reads the same.
#[inline(never)]
pub(crate) fn read_count(settings: &mut impl Settings) -> (u32, u32) {
    (
        settings.u32_in("max", COUNT).unwrap_or(1),
        settings.u32_in("window_hours", WINDOW_HOURS).unwrap_or(24),
    )
}

/// A count's hit: more than `max` in `window_hours`, and what was counted `n` times (`ip: n`).
/// Not inlined: the duplicate-device filter's hit is written by the same code.
#[inline(never)]
pub(crate) fn count_hit(
    code: ReasonCode,
    (max, window_hours): (u32, u32),
    counted: &str,
    n: u32,
    points: u32,
) -> Hit {
    Hit {
        code,
        matched: format!("more than {max} in {window_hours}h"),
        value: format!("{counted}: {n}"),
        points,
    }
}

#[cfg(test)]
mod tests {
    use crate::decide::harness::*;
    use crate::filters::Counters;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn fires_beyond_its_clicks_per_ip() {
        fires_alone(vec![
                ("duplicate ip", Click { counters: Some(Counters { ip_clicks: 3, distinct_sub_ids: 1, ..Counters::default() }), ..Click::default() }, "duplicate_ip"),
        ]);
    }
}
