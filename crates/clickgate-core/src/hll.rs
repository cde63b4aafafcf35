//! A HyperLogLog: the number of distinct sub IDs on an offer and affiliate, in 1 KiB whatever the
//! traffic. A sub-ID flood sends thousands of made-up sub IDs; exact sets of them would grow with
//! the attack.
//!
//! 1,024 registers (precision 10): standard error 1.04 / sqrt(1024) = 3.3%, with linear counting
//! below 2.5 x 1,024 where the raw estimate is biased. The hash is FNV-1a with a SplitMix64
//! finaliser, written out here so that registers stored today mean the same after any upgrade.

const P: u32 = 10;
const M: usize = 1 << P;

#[derive(Clone, PartialEq, Eq)]
pub struct HyperLogLog {
    registers: Box<[u8; M]>,
}

impl std::fmt::Debug for HyperLogLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HyperLogLog(~{})", self.estimate())
    }
}

impl Default for HyperLogLog {
    fn default() -> Self {
        HyperLogLog {
            registers: Box::new([0; M]),
        }
    }
}

/// 64-bit FNV-1a: stable across builds and platforms, which stored sketches, shard numbers and
/// config digests rely on. Its low bits are weak; each use mixes them with a finaliser.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A stable 64-bit hash: FNV-1a, then SplitMix64's finaliser to spread FNV's weak low bits.
pub(crate) fn hash64(bytes: &[u8]) -> u64 {
    let mut h = fnv1a64(bytes);
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl HyperLogLog {
    /// Adds an item; true when the sketch changed (and so may its estimate).
    pub fn insert(&mut self, item: &str) -> bool {
        let h = hash64(item.as_bytes());
        let index = (h >> (64 - P)) as usize;
        // Rank of the first set bit in the remaining 54 bits, 1-based; a sentinel bit caps it.
        let rest = (h << P) | (1 << (P - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        let changed = self.registers[index] < rank;
        if changed {
            self.registers[index] = rank;
        }
        changed
    }

    pub(crate) fn estimate(&self) -> u64 {
        let m = M as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let (sum, zeros) = self.registers.iter().fold((0.0f64, 0u32), |(s, z), &r| {
            (
                s + 1.0 / f64::from(1u32 << r.min(31)),
                z + u32::from(r == 0),
            )
        });
        let raw = alpha * m * m / sum;
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / f64::from(zeros)).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }

    /// The union of two sketches: what one sketch of both streams would hold.
    /// Takes in another sketch's items; false when it held none this one lacked.
    pub fn merge(&mut self, other: &HyperLogLog) -> bool {
        let mut changed = false;
        for (a, b) in self.registers.iter_mut().zip(other.registers.iter()) {
            if *b > *a {
                *a = *b;
                changed = true;
            }
        }
        changed
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.registers.to_vec()
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<HyperLogLog> {
        let registers: [u8; M] = bytes.try_into().ok()?;
        // Ranks above 64 - P + 1 cannot come from `insert`: the bytes are not a sketch of ours.
        if registers.iter().any(|&r| u32::from(r) > 64 - P + 1) {
            return None;
        }
        Some(HyperLogLog {
            registers: Box::new(registers),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn fnv1a_matches_its_published_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    fn sketch(items: impl IntoIterator<Item = String>) -> HyperLogLog {
        let mut h = HyperLogLog::default();
        for i in items {
            h.insert(&i);
        }
        h
    }

    #[test]
    fn empty_and_small_counts_are_exact_or_close() {
        assert_eq!(HyperLogLog::default().estimate(), 0);
        assert_eq!(sketch(["a".to_string()]).estimate(), 1);
        let ten = sketch((0..10).map(|i| format!("sub-{i}")));
        assert_eq!(ten.estimate(), 10);
    }

    #[test]
    fn the_preset_thresholds_are_told_apart() {
        // 500 and 700 sub IDs are the presets' limits: 10% over must read above them.
        for (n, limit) in [(550, 500), (770, 700)] {
            let est = sketch((0..n).map(|i| format!("pub-{i}"))).estimate();
            assert!(est > limit, "{n} distinct read as {est}, not above {limit}");
        }
    }

    #[test]
    fn repeats_do_not_count() {
        let once = sketch((0..300).map(|i| format!("s{i}")));
        let thrice = sketch((0..900).map(|i| format!("s{}", i % 300)));
        assert_eq!(once, thrice);
    }

    #[test]
    fn bytes_round_trip_and_foreign_bytes_are_refused() {
        let h = sketch((0..100).map(|i| i.to_string()));
        assert_eq!(HyperLogLog::from_bytes(&h.to_bytes()), Some(h));
        assert_eq!(HyperLogLog::from_bytes(&[0; 10]), None);
        assert_eq!(HyperLogLog::from_bytes(&[200; M]), None);
    }

    #[test]
    fn hash_is_stable() {
        // Stored sketches depend on these values never changing (computed independently from the
        // FNV-1a and SplitMix64 definitions).
        assert_eq!(hash64(b""), 0xf52a_15e9_a9b5_e89b);
        assert_eq!(hash64(b"sub-1"), 0x0415_2c7f_b634_6808);
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(40))]

            // Within 4 standard errors (13%) across the range the filters use.
            #[test]
            fn estimate_is_within_the_error_bound(n in 1usize..20_000, seed in any::<u32>()) {
                let h = {
                    let mut h = HyperLogLog::default();
                    for i in 0..n { h.insert(&format!("{seed}-{i}")); }
                    h
                };
                let est = h.estimate() as f64;
                let err = (est - n as f64).abs() / n as f64;
                prop_assert!(err <= 0.13 || (est - n as f64).abs() <= 2.0, "n {} est {} err {:.3}", n, est, err);
            }

            // Merging is the union, in any order.
            #[test]
            fn merge_is_union_and_commutative(a in 0usize..3000, b in 0usize..3000, overlap in 0usize..1000) {
                let left: Vec<String> = (0..a).map(|i| format!("x{i}")).collect();
                let right: Vec<String> = (0..b).map(|i| format!("x{}", i + a.saturating_sub(overlap))).collect();
                let mut ab = sketch(left.clone());
                ab.merge(&sketch(right.clone()));
                let mut ba = sketch(right.clone());
                ba.merge(&sketch(left.clone()));
                prop_assert_eq!(&ab, &ba);
                prop_assert_eq!(ab, sketch(left.into_iter().chain(right)));
            }
        }
    }
}
