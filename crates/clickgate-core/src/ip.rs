//! IP addresses and CIDR blocks, and a set of them that answers "which entry covers this address?"
//!
//! Lists reach tens of thousands of blocks, so the set is a sorted vector of disjoint ranges searched
//! by bisection. CIDR blocks are either nested or disjoint, never partly overlapping, so dropping every
//! block that lies inside a wider one leaves disjoint ranges without losing any address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::fault::{Corrupt, Invalid};
use crate::log::Digits;

/// One list entry: an address or a CIDR block, IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// The network address; IPv4 is kept as its IPv4-mapped IPv6 form so both families share one type.
    addr: u128,
    /// Prefix length counted over the full 128 bits.
    prefix: u8,
    v4: bool,
}

const V4_MAPPED: u128 = 0xffff_u128 << 32;

impl IpNet {
    /// Parses `203.0.113.7`, `198.51.100.0/24`, `2001:db8::1` or `2001:db8::/32`.
    ///
    /// A block with host bits set (`10.0.0.1/8`) is refused rather than silently widened: in a
    /// blocklist that is almost always a typo, and guessing would block the wrong traffic.
    ///
    /// Addresses and blocks come from the operator's lists, so a bad one is the operator's.
    pub fn parse(text: &str) -> Result<IpNet, Invalid> {
        IpNet::read(text).map_err(Invalid::operator)
    }

    fn read(text: &str) -> Result<IpNet, String> {
        let text = text.trim();
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| format!("`{addr_text}` is not an IPv4 or IPv6 address"))?;
        let (bits, max) = match addr {
            IpAddr::V4(a) => (V4_MAPPED | u128::from(u32::from(a)), 32u8),
            IpAddr::V6(a) => (u128::from(a), 128u8),
        };
        let prefix = match prefix_text {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && !p.starts_with('+') => n,
                _ => return Err(format!("prefix `/{p}` must be a number from 0 to {max}")),
            },
        };
        let full_prefix = prefix + (128 - max);
        let net = IpNet {
            addr: bits,
            prefix: full_prefix,
            v4: max == 32,
        };
        if net.addr & !net.mask() != 0 {
            let fixed = IpNet {
                addr: net.addr & net.mask(),
                ..net
            };
            return Err(format!("`{text}` has host bits set; the block is {fixed}"));
        }
        Ok(net)
    }

    fn mask(&self) -> u128 {
        if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix))
        }
    }

    fn first(&self) -> u128 {
        self.addr
    }

    fn last(&self) -> u128 {
        self.addr | !self.mask()
    }

    /// One address as its own block.
    pub(crate) fn host(addr: IpAddr) -> IpNet {
        IpNet {
            addr: ip_bits(addr),
            prefix: 128,
            v4: addr.is_ipv4(),
        }
    }

    /// The fewest blocks that cover `first..=last` exactly: how a list written as ranges
    /// (`192.0.2.10-192.0.2.20`) becomes entries. Both ends must be of one family, in order.
    pub(crate) fn cover(first: IpAddr, last: IpAddr) -> Result<Vec<IpNet>, BadRange> {
        let v4 = match (first, last) {
            (IpAddr::V4(_), IpAddr::V4(_)) => true,
            (IpAddr::V6(_), IpAddr::V6(_)) => false,
            _ => return Err(BadRange::Families { first, last }),
        };
        let (mut at, end) = (ip_bits(first), ip_bits(last));
        if at > end {
            return Err(BadRange::Reversed { first, last });
        }
        let floor = if v4 { 96 } else { 0 };
        let mut nets = Vec::new();
        loop {
            // The widest block that starts at `at` (its alignment) and ends by `end`.
            let mut prefix = 128 - at.trailing_zeros().min(128 - floor) as u8;
            let net = |prefix| IpNet {
                addr: at,
                prefix,
                v4,
            };
            while net(prefix).last() > end {
                prefix += 1;
            }
            let block = net(prefix);
            nets.push(block);
            match block.last().checked_add(1) {
                Some(next) if next <= end => at = next,
                _ => return Ok(nets),
            }
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = ip_bits(ip);
        bits & self.mask() == self.addr
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.v4 {
            let a = Ipv4Addr::from(self.addr as u32);
            if self.prefix == 128 {
                write!(f, "{a}")
            } else {
                write!(f, "{a}/{}", self.prefix - 96)
            }
        } else {
            let a = Ipv6Addr::from(self.addr);
            if self.prefix == 128 {
                write!(f, "{a}")
            } else {
                write!(f, "{a}/{}", self.prefix)
            }
        }
    }
}

/// The address as 128 bits, IPv4 and IPv4-mapped IPv6 alike (a client behind a dual-stack proxy
/// shows up as `::ffff:198.51.100.9` and must match `198.51.100.0/24`).
fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => V4_MAPPED | u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Parses a list file: one address or block per line, `#` to the end of a line is a comment, blank
/// lines are skipped. Every bad line is reported, as `line N: problem`.
pub fn parse_list(text: &str) -> Result<IpSet, Vec<String>> {
    let mut errors = Vec::new();
    let mut nets = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        match IpNet::parse(entry) {
            Ok(net) => nets.push(net),
            Err(e) => errors.push(format!("line {}: {e}", n + 1)),
        }
    }
    if errors.is_empty() {
        Ok(IpSet::new(nets))
    } else {
        Err(errors)
    }
}

/// Parses a client address as the edge reports it (`CF-Connecting-IP`).
pub(crate) fn parse_client_ip(text: &str) -> Option<IpAddr> {
    text.trim().parse().ok()
}

/// The client's address from the `CF-Connecting-IP` header: `Ok(None)` without one (a local run),
/// `Err` with the problem when it is there but no address. The runtime sets this header itself,
/// so an unparseable value is a fault, not a client's choice: the decision treats the IP checks
/// as unavailable (see [`crate::click::ClientInfo::ip_unreadable`]) and the edge logs it.
pub(crate) fn client_ip(header: Option<&str>) -> Result<Option<IpAddr>, String> {
    match header {
        None => Ok(None),
        Some(text) => parse_client_ip(text).map(Some).ok_or_else(|| {
            // The fault line's JSON escapes whatever the value holds; 64 characters say enough.
            let shown: String = text.chars().take(64).collect();
            format!("CF-Connecting-IP `{shown}` is not an IP address")
        }),
    }
}

/// Why [`IpNet::cover`] covers no range: its ends are of two families, or out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadRange {
    Families { first: IpAddr, last: IpAddr },
    Reversed { first: IpAddr, last: IpAddr },
}

impl std::fmt::Display for BadRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadRange::Families { first, last } => {
                write!(f, "`{first}` and `{last}` are not of one family")
            }
            BadRange::Reversed { first, last } => write!(f, "`{first}` comes after `{last}`"),
        }
    }
}

impl std::error::Error for BadRange {}

/// An address as text, written in place: `Display` goes through the formatting machinery, a
/// call per octet or group, and every decision line writes the client's address. The same text
/// as `Display` (a test holds it to it): an IPv4-mapped address as `::ffff:` and dotted quad, the
/// first longest run of two or more zero groups as `::`, groups in lowercase hex.
pub(crate) struct IpText {
    buf: [u8; 39],
    len: usize,
}

impl IpText {
    pub(crate) fn of(ip: IpAddr) -> IpText {
        let mut text = IpText {
            buf: [0; 39],
            len: 0,
        };
        match ip {
            IpAddr::V4(v4) => text.v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => {
                    text.put(b"::ffff:");
                    text.v4(v4);
                }
                None => text.v6(v6.segments()),
            },
        }
        text
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII was written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }

    fn put(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    fn v4(&mut self, ip: Ipv4Addr) {
        for (i, octet) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                self.put(b".");
            }
            self.put(Digits::of(u64::from(octet)).as_str().as_bytes());
        }
    }

    fn v6(&mut self, groups: [u16; 8]) {
        // The first longest run of zero groups, as (start, length).
        let (mut longest, mut run) = ((0, 0), (0, 0));
        for (i, &group) in groups.iter().enumerate() {
            if group == 0 {
                run = if run.1 == 0 {
                    (i, 1)
                } else {
                    (run.0, run.1 + 1)
                };
                if run.1 > longest.1 {
                    longest = run;
                }
            } else {
                run = (0, 0);
            }
        }
        if longest.1 > 1 {
            self.groups(&groups[..longest.0]);
            self.put(b"::");
            self.groups(&groups[longest.0 + longest.1..]);
        } else {
            self.groups(&groups);
        }
    }

    fn groups(&mut self, groups: &[u16]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, &group) in groups.iter().enumerate() {
            if i > 0 {
                self.put(b":");
            }
            let mut shift = 12;
            while shift > 0 && group >> shift == 0 {
                shift -= 4;
            }
            loop {
                self.put(&[HEX[usize::from(group >> shift & 15)]]);
                if shift == 0 {
                    break;
                }
                shift -= 4;
            }
        }
    }
}

/// A set of addresses and blocks. Lookup is O(log n) and reports the entry that matched.
///
/// The set is kept in its compiled form (see [`IpSet::to_bytes`]): sorted, disjoint entries of
/// [`ENTRY_BYTES`] each, searched by bisection where they lie. A list read from its own KV key is
/// therefore checked in one pass and used as it arrived, with nothing parsed, sorted or copied,
/// which is what keeps a fresh isolate's first click cheap; cloning shares it.
#[derive(Clone)]
pub struct IpSet {
    /// The compiled form, header included.
    bytes: Arc<Vec<u8>>,
}

/// The compiled form as stored in KV: `CGIP1`, the entry count (u32, little endian), then per
/// entry the 16-byte network address (big endian, IPv4 in its mapped form), the prefix length over
/// 128 bits, and 4 or 6.
const LIST_MAGIC: &[u8; 5] = b"CGIP1";
const HEADER_BYTES: usize = LIST_MAGIC.len() + 4;
const ENTRY_BYTES: usize = 18;

impl Default for IpSet {
    fn default() -> Self {
        IpSet::new([])
    }
}

impl fmt::Debug for IpSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IpSet({} entries)", self.len())
    }
}

/// Sorts indices by `cmp`, which must tell apart any two whose items differ (by the indices
/// themselves last, where the stable order is meant), so the unstable sort has one order to give.
/// Every index sort of the core goes through this one copy (the comparator behind a reference): a
/// sort is 2 to 3 KB of the Worker per element type and comparator. Here because the address sets
/// were its first caller.
pub(crate) fn sort_indices(order: &mut [usize], cmp: &dyn Fn(usize, usize) -> std::cmp::Ordering) {
    order.sort_unstable_by(|&a, &b| cmp(a, b));
}

/// `strings` in order, through [`sort_indices`].
pub(crate) fn sort_strings(strings: Vec<String>) -> Vec<String> {
    let mut order: Vec<usize> = (0..strings.len()).collect();
    sort_indices(&mut order, &|a, b| strings[a].cmp(&strings[b]));
    let mut taken: Vec<Option<String>> = strings.into_iter().map(Some).collect();
    order.iter().filter_map(|&i| taken[i].take()).collect()
}

impl IpSet {
    pub fn new(entries: impl IntoIterator<Item = IpNet>) -> IpSet {
        IpSet::of(entries.into_iter().collect())
    }

    // Not generic, so each caller's iterator does not bring its own copy of the sort.
    fn of(all: Vec<IpNet>) -> IpSet {
        // Widest first among equal starts, so the sweep keeps the covering block; among the same
        // block written twice (as IPv4 and as IPv4-mapped IPv6), the first written. The unstable
        // sort with the position as the last key orders as a stable one would, without its copy.
        let mut order: Vec<usize> = (0..all.len()).collect();
        sort_indices(&mut order, &|a, b| {
            let (x, y) = (&all[a], &all[b]);
            x.first()
                .cmp(&y.first())
                .then(y.last().cmp(&x.last()))
                .then(a.cmp(&b))
        });
        let mut kept: Vec<IpNet> = Vec::with_capacity(all.len());
        for net in order.into_iter().map(|i| all[i]) {
            match kept.last() {
                Some(k) if net.first() <= k.last() => {} // nested in `k`
                _ => kept.push(net),
            }
        }
        let mut bytes = Vec::with_capacity(HEADER_BYTES + kept.len() * ENTRY_BYTES);
        bytes.extend_from_slice(LIST_MAGIC);
        bytes.extend_from_slice(&(kept.len() as u32).to_le_bytes());
        for net in &kept {
            bytes.extend_from_slice(&net.addr.to_be_bytes());
            bytes.push(net.prefix);
            bytes.push(if net.v4 { 4 } else { 6 });
        }
        IpSet {
            bytes: Arc::new(bytes),
        }
    }

    /// The compiled form: what `clickgate config push` stores in a list's own KV key.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.as_ref().clone()
    }

    /// Takes a compiled list as read from KV, refusing anything that is not exactly what
    /// [`IpSet::to_bytes`] writes: entries out of order or overlapping would answer lookups wrongly.
    /// Bytes that are not a list of ours are a runtime fault.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<IpSet, Corrupt> {
        IpSet::read(bytes).map_err(|e| Corrupt::new("compiled ip list", e))
    }

    fn read(bytes: Vec<u8>) -> Result<IpSet, String> {
        let body = bytes
            .strip_prefix(LIST_MAGIC)
            .ok_or("not a compiled IP list (no CGIP1 header)")?;
        let (count, entries) = body.split_at_checked(4).ok_or("truncated header")?;
        let count = u32::from_le_bytes(count.try_into().unwrap_or_default()) as usize;
        if entries.len() != count * ENTRY_BYTES {
            return Err(format!(
                "{} bytes of entries for {count} entries of {ENTRY_BYTES}",
                entries.len()
            ));
        }
        // A fresh isolate checks a 50,000-entry list within its first click, in code the engine
        // compiled for a first run, where every operation counts: the checks are made on each
        // address as the two 64-bit words wasm loads it as (little-endian), with the host bits
        // in that order too. Turning each word into a big-endian number first (no wasm
        // instruction does it) cost more than the checks themselves; so did working out each
        // entry's host bits, now looked up in a table of the 65 a word can have.
        let mut hosts = [0u64; 65];
        for (p, host) in (0u32..).zip(hosts.iter_mut()) {
            *host = host_word(p);
        }
        check_entries(entries, &hosts).map_err(|(i, problem)| format!("entry {i} {problem}"))?;
        Ok(IpSet {
            bytes: Arc::new(bytes),
        })
    }

    pub fn len(&self) -> usize {
        (self.bytes.len() - HEADER_BYTES) / ENTRY_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entry(&self, i: usize) -> IpNet {
        let at = HEADER_BYTES + i * ENTRY_BYTES;
        decode_entry(&self.bytes[at..at + ENTRY_BYTES])
    }

    /// The entry covering `ip`, if any.
    pub fn lookup(&self, ip: IpAddr) -> Option<IpNet> {
        let bits = ip_bits(ip);
        // The first entry starting after `bits`; the one before it is the only candidate.
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid).first() <= bits {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let candidate = self.entry(lo.checked_sub(1)?);
        (bits <= candidate.last()).then_some(candidate)
    }
}

/// An entry's address as the two words wasm loads it as: bytes 0-7 and 8-15, little-endian.
fn words(chunk: &[u8]) -> (u64, u64) {
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&chunk[..8]);
    lo.copy_from_slice(&chunk[8..16]);
    (u64::from_le_bytes(hi), u64::from_le_bytes(lo))
}

/// Checks a compiled list's entries, each against `hosts` ([`host_word`] of every prefix over a
/// word) and against the one before; the first that fails, with what is wrong with it. One pass,
/// nothing allocated.
fn check_entries(entries: &[u8], hosts: &[u64; 65]) -> Result<(), (usize, &'static str)> {
    let mut previous_last: Option<(u64, u64)> = None;
    for (i, chunk) in entries.chunks_exact(ENTRY_BYTES).enumerate() {
        let (hi, lo) = words(chunk);
        let (prefix, family) = (usize::from(chunk[16]), chunk[17]);
        if prefix > 128 {
            return Err((i, NOT_A_NETWORK));
        }
        let (host_hi, host_lo) = (hosts[prefix.min(64)], hosts[prefix.max(64) - 64]);
        // The first four bytes of an IPv4-mapped address's low half: 00 00 ff ff.
        let valid = match family {
            4 => prefix >= 96 && hi == 0 && lo as u32 == 0xffff_0000,
            6 => true,
            _ => false,
        } && hi & host_hi == 0
            && lo & host_lo == 0;
        if !valid {
            return Err((i, NOT_A_NETWORK));
        }
        if previous_last.is_some_and(|(last_hi, last_lo)| match in_address_order(hi, last_hi) {
            std::cmp::Ordering::Equal => in_address_order(lo, last_lo).is_le(),
            order => order.is_lt(),
        }) {
            return Err((i, "overlaps or precedes the one before"));
        }
        previous_last = Some((hi | host_hi, lo | host_lo));
    }
    Ok(())
}

const NOT_A_NETWORK: &str = "is not a network address and prefix";

/// The host bits of a word of [`words`] under a prefix of `p` bits over it (64 or more: none):
/// the bytes past the prefix's last, and the low bits of the byte it ends in.
#[inline(always)]
fn host_word(p: u32) -> u64 {
    if p >= 64 {
        return 0;
    }
    let byte = p / 8;
    (0xff >> (p % 8)) << (8 * byte) | u64::MAX.checked_shl(8 * (byte + 1)).unwrap_or(0)
}

/// How two words of [`words`] order as the address bytes they hold: by their first differing
/// byte, which is the lowest one set in their xor.
#[inline(always)]
fn in_address_order(a: u64, b: u64) -> std::cmp::Ordering {
    let at = (a ^ b).trailing_zeros() & !7;
    match at {
        64 => std::cmp::Ordering::Equal,
        _ => ((a >> at) & 0xff).cmp(&((b >> at) & 0xff)),
    }
}

fn decode_entry(chunk: &[u8]) -> IpNet {
    let mut addr = [0u8; 16];
    addr.copy_from_slice(&chunk[..16]);
    IpNet {
        addr: u128::from_be_bytes(addr),
        prefix: chunk[16],
        v4: chunk[17] == 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn set(entries: &[&str]) -> IpSet {
        IpSet::new(entries.iter().map(|e| IpNet::parse(e).unwrap()))
    }

    #[test]
    fn list_files_skip_comments_and_report_every_bad_line() {
        let set = parse_list("# datacenters\n192.0.2.0/24  # one\n\n2001:db8::/32\r\n").unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(
            parse_list("192.0.2.0/24\n10.0.0.1/8\nnope\n").unwrap_err(),
            vec![
                "line 2: `10.0.0.1/8` has host bits set; the block is 10.0.0.0/8".to_owned(),
                "line 3: `nope` is not an IPv4 or IPv6 address".to_owned(),
            ]
        );
    }

    #[test]
    fn compiled_lists_round_trip_and_damaged_ones_are_refused() {
        let s = set(&[
            "198.51.100.0/24",
            "198.51.100.7",
            "2001:db8::/32",
            "203.0.113.9",
            "::/0",
        ]);
        let bytes = s.to_bytes();
        let back = IpSet::from_bytes(bytes.to_vec()).unwrap();
        assert_eq!(back.len(), s.len());
        for probe in [
            "198.51.100.200",
            "2001:db8::1",
            "203.0.113.9",
            "192.0.2.1",
            "::1",
        ] {
            assert_eq!(back.lookup(ip(probe)), s.lookup(ip(probe)), "{probe}");
        }
        assert!(IpSet::from_bytes(b"nope".to_vec()).is_err());
        assert!(IpSet::from_bytes(bytes[..bytes.len() - 1].to_vec()).is_err());
        // Two entries swapped: out of order.
        let two = set(&["192.0.2.0/24", "198.51.100.0/24"]).to_bytes();
        let mut swapped = two[..9].to_vec();
        swapped.extend_from_slice(&two[9 + ENTRY_BYTES..]);
        swapped.extend_from_slice(&two[9..9 + ENTRY_BYTES]);
        assert!(IpSet::from_bytes(swapped.to_vec())
            .unwrap_err()
            .detail
            .contains("overlaps or precedes"));
        // Host bits set in an entry.
        let mut host_bits = two.clone();
        host_bits[9 + 15] = 1;
        assert!(IpSet::from_bytes(host_bits.to_vec()).is_err());
    }

    #[test]
    fn the_halves_check_as_the_whole_address_does() {
        // The check of a stored list reads each address as two little-endian words; here against the
        // 128-bit reading it replaced, for every prefix length and family byte, on addresses
        // with and without host bits, IPv4-mapped or not.
        fn whole(chunk: &[u8], previous_last: Option<u128>) -> (bool, bool, u128) {
            let net = decode_entry(chunk);
            let valid = net.prefix <= 128
                && matches!(chunk[17], 4 | 6)
                && (!net.v4 || (net.prefix >= 96 && net.addr >> 32 == V4_MAPPED >> 32))
                && net.addr & !net.mask() == 0;
            let after = previous_last.is_none_or(|last| net.first() > last);
            (valid, after, if valid { net.last() } else { 0 })
        }
        let addrs: [u128; 10] = [
            0,
            1 << 120 | 0xff,
            2 << 120,
            (0x2001_0db8 << 96) | 0xff << 72,
            V4_MAPPED | 0xc000_0200,
            V4_MAPPED | 0xc000_0201,
            0x2001_0db8 << 96,
            (0x2001_0db8 << 96) | 1 << 64,
            (0x2001_0db8 << 96) | 1,
            u128::MAX,
        ];
        for &addr in &addrs {
            for prefix in 0..=130u8 {
                for family in [4u8, 5, 6] {
                    let mut chunk = addr.to_be_bytes().to_vec();
                    chunk.extend([prefix, family]);
                    for &before in &addrs {
                        let (valid, after, last) = whole(&chunk, Some(before));
                        let mut bytes = LIST_MAGIC.to_vec();
                        bytes.extend(2u32.to_le_bytes());
                        // An entry whose last address is `before`: a /128, read as IPv6.
                        bytes.extend(before.to_be_bytes());
                        bytes.extend([128, 6]);
                        bytes.extend(&chunk);
                        let read = IpSet::read(bytes).err();
                        let want = match (valid, after) {
                            (false, _) => Some("entry 1 is not a network address and prefix"),
                            (true, false) => Some("entry 1 overlaps or precedes the one before"),
                            (true, true) => None,
                        };
                        assert_eq!(
                            read.as_deref(),
                            want,
                            "{addr:x}/{prefix} ({family}) after {before:x}"
                        );
                        if valid {
                            let p = u32::from(prefix);
                            let host = |p| u64::from_be_bytes(host_word(p).to_le_bytes());
                            let (hi, lo) = (host(p), host(p.saturating_sub(64)));
                            assert_eq!(last, addr | (u128::from(hi) << 64 | u128::from(lo)));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn parses_addresses_and_blocks_of_both_families() {
        for text in [
            "203.0.113.7",
            "198.51.100.0/24",
            "0.0.0.0/0",
            "2001:db8::1",
            "2001:db8::/32",
            "::/0",
        ] {
            assert_eq!(IpNet::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn refuses_bad_entries_with_a_reason() {
        let cases = [
            ("10.0.0.1/8", "host bits set; the block is 10.0.0.0/8"),
            ("10.0.0.0/33", "from 0 to 32"),
            ("2001:db8::/129", "from 0 to 128"),
            ("10.0.0.0/", "must be a number"),
            ("10.0.0.0/+8", "must be a number"),
            ("300.1.1.1", "not an IPv4 or IPv6 address"),
            ("example.com", "not an IPv4 or IPv6 address"),
            ("", "not an IPv4 or IPv6 address"),
        ];
        for (text, want) in cases {
            let err = IpNet::parse(text).unwrap_err();
            assert_eq!(err.by, crate::fault::Blame::Operator);
            assert!(err.problem.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn lookup_reports_the_covering_entry() {
        let s = set(&["203.0.113.7", "198.51.100.0/24", "2001:db8:bad::/48"]);
        assert_eq!(
            s.lookup(ip("203.0.113.7")).unwrap().to_string(),
            "203.0.113.7"
        );
        assert_eq!(
            s.lookup(ip("198.51.100.200")).unwrap().to_string(),
            "198.51.100.0/24"
        );
        assert_eq!(
            s.lookup(ip("2001:db8:bad:1::5")).unwrap().to_string(),
            "2001:db8:bad::/48"
        );
        assert!(s.lookup(ip("203.0.113.8")).is_none());
        assert!(s.lookup(ip("198.51.101.0")).is_none());
        assert!(s.lookup(ip("2001:db8:bae::1")).is_none());
    }

    #[test]
    fn ipv4_mapped_ipv6_client_matches_ipv4_block() {
        let s = set(&["198.51.100.0/24"]);
        assert!(s.lookup(ip("::ffff:198.51.100.9")).is_some());
    }

    #[test]
    fn nested_blocks_keep_the_widest() {
        let s = set(&["10.1.2.0/24", "10.0.0.0/8", "10.1.2.3", "10.0.0.0/8"]);
        assert_eq!(s.len(), 1);
        assert_eq!(s.lookup(ip("10.1.2.3")).unwrap().to_string(), "10.0.0.0/8");
    }

    #[test]
    fn empty_set_matches_nothing() {
        assert!(IpSet::default().lookup(ip("1.1.1.1")).is_none());
    }

    #[test]
    fn edges_of_a_block_are_inside_and_neighbours_outside() {
        let s = set(&["192.0.2.64/26"]);
        assert!(s.lookup(ip("192.0.2.64")).is_some());
        assert!(s.lookup(ip("192.0.2.127")).is_some());
        assert!(s.lookup(ip("192.0.2.63")).is_none());
        assert!(s.lookup(ip("192.0.2.128")).is_none());
    }

    #[test]
    fn an_address_is_written_as_display_writes_it() {
        for text in [
            "0.0.0.0",
            "9.10.99.100",
            "255.255.255.255",
            "::",
            "::1",
            "1::",
            "::ffff:192.0.2.1",
            "::192.0.2.1",
            "1:0:0:1:0:0:0:1",
            "1:0:0:1:0:0:1:1",
            "0:1:0:1:0:1:0:1",
            "2001:db8:0:abcd:f:ff:fff:ffff",
            "fe80::1:2",
        ] {
            let ip = ip(text);
            assert_eq!(IpText::of(ip).as_str(), ip.to_string(), "{text}");
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// Groups drawn mostly from zero and short values, so runs of zeros of every length come
        /// up, and from the IPv4-mapped prefix.
        fn arb_v6() -> impl Strategy<Value = Ipv6Addr> {
            let group = prop_oneof![Just(0u16), Just(0xffff), 1u16..0x20, any::<u16>()];
            proptest::array::uniform8(group).prop_map(Ipv6Addr::from)
        }

        proptest! {
            #[test]
            fn any_address_is_written_as_display_writes_it(
                v4 in any::<u32>(),
                v6 in arb_v6(),
            ) {
                for ip in [IpAddr::V4(Ipv4Addr::from(v4)), IpAddr::V6(v6)] {
                    let text = IpText::of(ip);
                    prop_assert_eq!(text.as_str(), ip.to_string());
                }
            }
        }

        fn arb_net() -> impl Strategy<Value = IpNet> {
            prop_oneof![
                (any::<u32>(), 0u8..=32).prop_map(|(a, p)| {
                    let masked = if p == 0 {
                        0
                    } else {
                        a & (u32::MAX << (32 - u32::from(p)))
                    };
                    IpNet::parse(&format!("{}/{p}", Ipv4Addr::from(masked))).unwrap()
                }),
                (any::<u128>(), 0u8..=128).prop_map(|(a, p)| {
                    let masked = if p == 0 {
                        0
                    } else {
                        a & (u128::MAX << (128 - u32::from(p)))
                    };
                    IpNet::parse(&format!("{}/{p}", Ipv6Addr::from(masked))).unwrap()
                }),
            ]
        }

        /// An entry as stored: mostly a network of either family from a small range, so that
        /// neighbours often touch, nest or overlap; otherwise any address (IPv4-mapped, or that
        /// with a high bit set), prefix and family byte, host bits cleared or not.
        fn arb_entry() -> impl Strategy<Value = (u128, u8, u8)> {
            let masked = |addr: u128, prefix: u8| match prefix {
                0 => 0,
                1..=128 => addr & u128::MAX << (128 - u32::from(prefix)),
                _ => addr,
            };
            prop_oneof![
                3 => (0u128..0x400, 6u8..=10, any::<bool>()).prop_map(move |(at, bits, v6)| {
                    let (base, prefix) = match v6 {
                        false => (V4_MAPPED | 0x0a00_0000, 118 + bits),
                        true => (0x2001_0db8 << 96, 118 + bits),
                    };
                    (masked(base | at, prefix), prefix, if v6 { 6 } else { 4 })
                }),
                1 => (any::<u128>(), 0u8..=130, 3u8..=7, any::<bool>())
                    .prop_map(move |(a, p, f, clear)| (if clear { masked(a, p) } else { a }, p, f)),
                1 => (any::<u32>(), 0u128..3, 90u8..=130, 3u8..=7, any::<bool>()).prop_map(
                    move |(a, high, p, f, clear)| {
                        let addr = (high << 100) | V4_MAPPED | u128::from(a);
                        (if clear { masked(addr, p) } else { addr }, p, f)
                    }
                ),
            ]
        }

        proptest! {
            // The bisection must agree with checking every entry by hand.
            #[test]
            fn lookup_agrees_with_linear_scan(
                nets in proptest::collection::vec(arb_net(), 0..40),
                probes in proptest::collection::vec(any::<u32>(), 1..40),
            ) {
                let s = IpSet::new(nets.clone());
                for p in probes {
                    // Probe near the entries too, not only at random.
                    for candidate in [IpAddr::V4(Ipv4Addr::from(p))]
                        .into_iter()
                        .chain(nets.iter().map(|n| {
                            if n.v4 { IpAddr::V4(Ipv4Addr::from((n.addr as u32) ^ (p & 0xff))) }
                            else { IpAddr::V6(Ipv6Addr::from(n.addr ^ u128::from(p & 0xff))) }
                        }))
                    {
                        let linear = nets.iter().any(|n| n.contains(candidate));
                        let found = s.lookup(candidate);
                        prop_assert_eq!(found.is_some(), linear);
                        if let Some(entry) = found {
                            prop_assert!(entry.contains(candidate));
                        }
                    }
                }
            }

            #[test]
            fn display_round_trips(net in arb_net()) {
                prop_assert_eq!(IpNet::parse(&net.to_string()).unwrap(), net);
            }

            #[test]
            fn parse_never_panics(text in "\\PC{0,50}") {
                let _ = IpNet::parse(&text);
            }

            // The check of a stored list agrees, entry by entry, with the 128-bit reading it
            // replaced, on lists made of good and bad entries alike: the same first entry refused,
            // for the same reason.
            #[test]
            fn a_stored_list_is_checked_as_the_whole_addresses_are(
                mut entries in proptest::collection::vec(arb_entry(), 0..12),
                sorted in any::<bool>(),
            ) {
                // In address order, most of a list passes and what is left is its overlaps.
                if sorted {
                    entries.sort();
                }
                let mut bytes = LIST_MAGIC.to_vec();
                bytes.extend((entries.len() as u32).to_le_bytes());
                for (addr, prefix, family) in &entries {
                    bytes.extend(addr.to_be_bytes());
                    bytes.extend([*prefix, *family]);
                }
                let by_whole = entries.iter().enumerate().try_fold(None, |last, (i, &(addr, prefix, family))| {
                    let net = IpNet { addr, prefix, v4: family == 4 };
                    let valid = prefix <= 128
                        && matches!(family, 4 | 6)
                        && (family != 4 || (prefix >= 96 && addr >> 32 == V4_MAPPED >> 32))
                        && addr & !net.mask() == 0;
                    if !valid {
                        return Err(format!("entry {i} is not a network address and prefix"));
                    }
                    if last.is_some_and(|last| addr <= last) {
                        return Err(format!("entry {i} overlaps or precedes the one before"));
                    }
                    Ok(Some(net.last()))
                });
                prop_assert_eq!(IpSet::read(bytes).err(), by_whole.err());
            }

            // A compiled list reads back as the same set, and damaged bytes never panic.
            #[test]
            fn compiled_lists_read_back_as_the_same_set(
                nets in proptest::collection::vec(arb_net(), 0..40),
                flip in any::<(usize, u8)>(),
            ) {
                let s = IpSet::new(nets);
                let bytes = s.to_bytes();
                let back = IpSet::from_bytes(bytes.to_vec()).unwrap();
                prop_assert_eq!(back.to_bytes(), bytes.clone());
                let mut damaged = bytes.clone();
                let at = flip.0 % damaged.len();
                damaged[at] ^= flip.1 | 1;
                let _ = IpSet::from_bytes(damaged.to_vec());
            }
        }
    }
}
