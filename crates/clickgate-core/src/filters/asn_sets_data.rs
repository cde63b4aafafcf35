//! Written by scripts/builtin-sets.py from data/asn-sets.txt (its header says where the
//! numbers come from and how they were compiled); edit the text and run the script.

/// The `hosting` set, sorted.
#[rustfmt::skip]
pub const HOSTING: &[u32] = &[
    8075, 8100, 8560, 12876, 14061, 14618, 15169, 16265,
    16276, 16509, 20473, 24940, 31898, 36351, 36352, 37963,
    40676, 45090, 45102, 47583, 51167, 54290, 60781, 63949,
    132203, 136907, 197540, 396982,
];

/// The `vpn` set, sorted.
#[rustfmt::skip]
pub const VPN: &[u32] = &[
    9009, 60068, 62371, 136787, 207137,
];
