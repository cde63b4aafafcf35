//! Written by scripts/builtin-sets.py from data/asn-sets.txt (its header says where the
//! numbers come from and how they were compiled); edit the text and run the script.

/// The `hosting` set, sorted.
#[rustfmt::skip]
pub(crate) const HOSTING: &[u32] = &[
    7203, 7979, 8075, 8100, 8560, 8849, 8987, 11878,
    12876, 14061, 14618, 15169, 15395, 16265, 16276, 16509,
    19994, 20473, 22612, 24940, 25697, 27357, 29447, 30633,
    31898, 32613, 33070, 36351, 36352, 37963, 40021, 40676,
    42708, 45090, 45102, 47583, 51167, 53667, 54253, 54290,
    55990, 56630, 58061, 60781, 63023, 63949, 132203, 133478,
    134963, 136907, 141995, 197540, 200350, 202053, 395954, 396356,
    396982,
];

/// The `vpn` set, sorted.
#[rustfmt::skip]
pub(crate) const VPN: &[u32] = &[
    9009, 60068, 62371, 136787, 207137, 209103, 212238,
];
