//! `fraud_database`: the client's address in the fraud IP list, or the click's device id in the
//! fraud device list.

use crate::filters::{ip_hit, Hit, Judge, Seen, Settings, Stage, Unavailable};
use crate::verdict::ReasonCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FraudDatabase;

impl Judge for FraudDatabase {
    const NAME: &'static str = "fraud_database";
    const POINTS: u32 = 100;
    const STAGE: Stage = Stage::Click;
    const CODES: &'static [ReasonCode] = &[ReasonCode::FraudIp, ReasonCode::FraudDevice];

    fn compile(_: &mut impl Settings) -> Self {
        FraudDatabase
    }

    fn judge_click(&self, seen: &Seen, points: u32) -> Result<Option<Hit>, Unavailable> {
        let lists = seen.lists;
        Ok(
            ip_hit(&lists.fraud_ips, seen.client, ReasonCode::FraudIp, points)?.or_else(|| {
                let device = seen.click.device_id.as_deref()?;
                lists.fraud_device_ids.contains(device).then(|| Hit {
                    code: ReasonCode::FraudDevice,
                    matched: device.to_owned(),
                    value: device.to_owned(),
                    points,
                })
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::decide::harness::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn fires_on_a_listed_address_or_device() {
        fires_alone(vec![
                ("fraud ip", Click { ip: "198.51.100.66", ..Click::default() }, "fraud_ip"),
                ("fraud device", Click { query: "offer_id=1&aff_id=n&device_id=bad-device", ..Click::default() }, "fraud_device"),
        ]);
    }
}
