//! Lists in the formats they are published in, read into the entries clickgate keeps: address
//! blocks for the IP lists, AS numbers for `datacenter_asns` and `vpn_asns`.
//!
//! `clickgate list compile` and `config push` read these, and so does the Worker's scheduled run
//! for a feed (`feeds.rs`), so a list a feed fetches is read exactly as the CLI would read it; a
//! click only ever sees the compiled form. Every format refuses what it does not
//! recognise with the line it is on and its text: a list that half-parsed would block or let
//! through the wrong traffic without a word.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::ip::IpNet;

/// The formats [`parse_list`] reads. `docs/config.md` describes each, and the columns it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One address, block or `first-last` range per line, `#` comments: clickgate's own.
    Ips,
    /// Spamhaus DROP and EDROP: `block ; SBL id` lines and `;` comments, or the JSON-lines edition
    /// (`{"cidr": …}` per line, its `metadata` line skipped).
    Spamhaus,
    /// One AS number per line, `AS16509` or `16509`, `#` and `;` comments.
    Asn,
    /// CSV whose first column is an AS number (`asn,name,…`), a header line allowed.
    AsnCsv,
    /// CSV or TSV whose first two columns are a range's first and last address and whose third is
    /// its AS number (`range_start,range_end,AS_number,…`); rows of AS 0 (not routed) are skipped.
    RangeCsv,
    /// AWS `ip-ranges.json`: `prefixes[].ip_prefix`, `ipv6_prefixes[].ipv6_prefix`.
    Aws,
    /// Google Cloud `cloud.json`: `prefixes[].ipv4Prefix` or `.ipv6Prefix`.
    Gcp,
    /// Azure service tags: `values[].properties.addressPrefixes[]`.
    Azure,
    /// Oracle Cloud `public_ip_ranges.json`: `regions[].cidrs[].cidr`.
    Oracle,
    /// Tor's exit list: the `ExitAddress` lines of the exit-addresses format, or one address per
    /// line (the bulk exit list).
    Tor,
    /// Apple's iCloud Private Relay egress ranges: `prefix,country,region,city,` per line.
    IcloudRelay,
}

/// Every format by the name `--format` and a list reference's `format` take.
pub(crate) const FORMATS: &[(&str, Format)] = &[
    ("ips", Format::Ips),
    ("spamhaus", Format::Spamhaus),
    ("asn", Format::Asn),
    ("asn-csv", Format::AsnCsv),
    ("range-csv", Format::RangeCsv),
    ("aws", Format::Aws),
    ("gcp", Format::Gcp),
    ("azure", Format::Azure),
    ("oracle", Format::Oracle),
    ("tor", Format::Tor),
    ("icloud-relay", Format::IcloudRelay),
];

impl FromStr for Format {
    type Err = String;

    fn from_str(name: &str) -> Result<Format, String> {
        FORMATS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<&str> = FORMATS.iter().map(|(n, _)| *n).collect();
                format!("unknown list format `{name}`; one of {}", names.join(", "))
            })
    }
}

impl Format {
    /// The name `--format` and a list reference's `format` take for it.
    pub fn name(self) -> &'static str {
        FORMATS
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("ips", |(n, _)| n)
    }

    /// Whether the format's entries are AS numbers rather than address blocks.
    pub fn is_asn(self) -> bool {
        matches!(self, Format::Asn | Format::AsnCsv)
    }
}

/// One entry of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Net(IpNet),
    Asn(u32),
}

/// A line the format refused: its number (from 1), its text, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub text: String,
    pub problem: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

/// Reads a list in `format`: its entries, or every line it refused.
pub fn parse_list(format: Format, text: &str) -> Result<Vec<Entry>, Vec<LineError>> {
    let mut out = Out::default();
    match format {
        Format::Ips => lines(text, &['#'], &mut out, ips_line),
        Format::Spamhaus => lines(text, &[';', '#'], &mut out, spamhaus_line),
        Format::Asn => lines(text, &['#', ';'], &mut out, |line, out| {
            asn(line).map(|a| out.push(Entry::Asn(a)))
        }),
        Format::AsnCsv => csv(text, &mut out, 1, |fields, out| {
            asn(fields[0]).map(|a| out.push(Entry::Asn(a)))
        }),
        Format::RangeCsv => csv(text, &mut out, 3, range_row),
        Format::IcloudRelay => csv(text, &mut out, 4, |fields, out| {
            net(fields[0]).map(|n| out.push(Entry::Net(n)))
        }),
        Format::Tor => lines(text, &['#'], &mut out, tor_line),
        Format::Aws => json(
            text,
            &mut out,
            &[
                &["prefixes", "*", "ip_prefix"],
                &["ipv6_prefixes", "*", "ipv6_prefix"],
            ],
        ),
        Format::Gcp => json(
            text,
            &mut out,
            &[
                &["prefixes", "*", "ipv4Prefix"],
                &["prefixes", "*", "ipv6Prefix"],
            ],
        ),
        Format::Azure => json(
            text,
            &mut out,
            &[&["values", "*", "properties", "addressPrefixes", "*"]],
        ),
        Format::Oracle => json(text, &mut out, &[&["regions", "*", "cidrs", "*", "cidr"]]),
    }
    if out.errors.is_empty() {
        Ok(out.entries)
    } else {
        Err(out.errors)
    }
}

#[derive(Default)]
struct Out {
    entries: Vec<Entry>,
    errors: Vec<LineError>,
}

impl Out {
    fn push(&mut self, entry: Entry) {
        self.entries.push(entry);
    }

    fn refuse(&mut self, line: usize, text: &str, problem: String) {
        self.errors.push(LineError {
            line,
            text: text.to_owned(),
            problem,
        });
    }
}

/// Each line with its comment cut at the first of `comments`, blank ones skipped.
fn lines(
    text: &str,
    comments: &[char],
    out: &mut Out,
    read: impl Fn(&str, &mut Out) -> Result<(), String>,
) {
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split(comments).next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Err(problem) = read(line, out) {
            out.refuse(n + 1, raw, problem);
        }
    }
}

fn net(text: &str) -> Result<IpNet, String> {
    IpNet::parse(text).map_err(|e| e.problem.to_string())
}

fn address(text: &str) -> Result<IpAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{}` is not an IPv4 or IPv6 address", text.trim()))
}

/// An address or block as today's lists hold them (the same messages), or a `first-last` range.
fn ips_line(line: &str, out: &mut Out) -> Result<(), String> {
    match line.split_once('-') {
        Some((first, last)) if !line.contains('/') => {
            let nets = IpNet::cover(address(first)?, address(last)?).map_err(|e| e.to_string())?;
            out.entries.extend(nets.into_iter().map(Entry::Net));
        }
        _ => out.push(Entry::Net(net(line)?)),
    }
    Ok(())
}

fn spamhaus_line(line: &str, out: &mut Out) -> Result<(), String> {
    if !line.starts_with('{') {
        return net(line).map(|n| out.push(Entry::Net(n)));
    }
    let row: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("`{line}` is not a JSON object: {e}"))?;
    if row.get("type").and_then(|t| t.as_str()) == Some("metadata") {
        return Ok(());
    }
    match row.get("cidr").and_then(|c| c.as_str()) {
        Some(cidr) => net(cidr).map(|n| out.push(Entry::Net(n))),
        None => Err(format!("`{line}` has no \"cidr\"")),
    }
}

/// `AS16509`, `as16509` or `16509`.
fn asn(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let digits = t
        .strip_prefix("AS")
        .or_else(|| t.strip_prefix("as"))
        .unwrap_or(t);
    match digits.parse::<u32>() {
        Ok(n) if n > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!("`{t}` is not an AS number (16509 or AS16509)")),
    }
}

/// The exit-addresses format's `ExitAddress <address> <date>` lines, its other keywords skipped,
/// or a bare address per line.
fn tor_line(line: &str, out: &mut Out) -> Result<(), String> {
    let mut words = line.split_whitespace();
    match words.next() {
        Some("ExitAddress") => match words.next() {
            Some(a) => address(a).map(|a| out.push(Entry::Net(IpNet::host(a)))),
            None => Err("`ExitAddress` without an address".into()),
        },
        Some("ExitNode" | "Published" | "LastStatus") => Ok(()),
        _ => address(line).map(|a| out.push(Entry::Net(IpNet::host(a)))),
    }
}

/// Comma- or tab-separated rows of at least `columns` fields; `#` lines and a first line that
/// fails while its first field is not a number or an address (a header) are skipped. Quotes
/// around a field are dropped.
fn csv(
    text: &str,
    out: &mut Out,
    columns: usize,
    read: impl Fn(&[&str], &mut Out) -> Result<(), String>,
) {
    let mut first = true;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let is_first = std::mem::replace(&mut first, false);
        let sep = if line.contains('\t') { '\t' } else { ',' };
        let fields: Vec<&str> = line
            .split(sep)
            .map(|f| f.trim().trim_matches('"').trim())
            .collect();
        if fields.len() < columns {
            out.refuse(
                n + 1,
                raw,
                format!(
                    "`{line}` has {} column{}, the format reads {columns}",
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" }
                ),
            );
            continue;
        }
        if is_first && looks_like_header(fields[0]) {
            continue;
        }
        if let Err(problem) = read(&fields, out) {
            out.refuse(n + 1, raw, problem);
        }
    }
}

fn looks_like_header(field: &str) -> bool {
    asn(field).is_err() && address(field).is_err() && net(field).is_err()
}

fn range_row(fields: &[&str], out: &mut Out) -> Result<(), String> {
    let number = fields[2];
    let as_number = asn(number).or_else(|e| if number == "0" { Ok(0) } else { Err(e) })?;
    let (first, last) = (address(fields[0])?, address(fields[1])?);
    if as_number == 0 {
        return Ok(());
    }
    out.entries.extend(
        IpNet::cover(first, last)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(Entry::Net),
    );
    Ok(())
}

/// The strings at each of `paths` (`*` walks an array), read as blocks; an entry's problem names
/// the line its text is on.
fn json(text: &str, out: &mut Out, paths: &[&[&str]]) {
    let doc: serde_json::Value = match serde_json::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            let line = e.line().max(1);
            let shown = text.lines().nth(line - 1).unwrap_or("");
            out.refuse(line, shown, format!("not the format's JSON: {e}"));
            return;
        }
    };
    let mut found = 0;
    for path in paths {
        walk(&doc, path, &mut |value| {
            found += 1;
            match value.as_str().map(net) {
                Some(Ok(n)) => out.push(Entry::Net(n)),
                Some(Err(problem)) => {
                    let (line, shown) = line_of(text, value);
                    out.refuse(line, shown, problem);
                }
                None => {
                    let (line, shown) = line_of(text, value);
                    out.refuse(line, shown, format!("`{value}` is not a block"));
                }
            }
        });
    }
    if found == 0 {
        let want: Vec<String> = paths.iter().map(|p| p.join(".")).collect();
        let shown = text.lines().next().unwrap_or("");
        out.refuse(
            1,
            shown,
            format!(
                "no blocks where the format keeps them ({})",
                want.join(", ")
            ),
        );
    }
}

fn walk<'a>(
    value: &'a serde_json::Value,
    path: &[&str],
    f: &mut impl FnMut(&'a serde_json::Value),
) {
    match path.split_first() {
        None => f(value),
        Some((&"*", rest)) => {
            for item in value.as_array().into_iter().flatten() {
                walk(item, rest, f);
            }
        }
        Some((key, rest)) => {
            if let Some(next) = value.get(key) {
                walk(next, rest, f);
            }
        }
    }
}

/// The line that holds a value's text, found by its first occurrence (the parsed document keeps
/// no positions).
fn line_of<'t>(text: &'t str, value: &serde_json::Value) -> (usize, &'t str) {
    let needle = value.to_string();
    let at = text.find(&needle).unwrap_or(0);
    let line = text[..at].matches('\n').count();
    (line + 1, text.lines().nth(line).unwrap_or("").trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../tests/lists/", $name))
        };
    }

    /// The entries as text: blocks as clickgate writes them, AS numbers as `AS…`.
    fn read(format: &str, text: &str) -> Vec<String> {
        let entries =
            parse_list(format.parse().unwrap(), text).unwrap_or_else(|e| panic!("{format}: {e:?}"));
        entries
            .iter()
            .map(|e| match e {
                Entry::Net(n) => n.to_string(),
                Entry::Asn(a) => format!("AS{a}"),
            })
            .collect()
    }

    fn refused(format: &str, text: &str) -> Vec<String> {
        match parse_list(format.parse().unwrap(), text) {
            Ok(entries) => panic!("{format} took {text:?} as {entries:?}"),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn each_published_format_reads_its_fixture() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "ips",
                fixture!("plain.txt"),
                &[
                    "192.0.2.0/24",
                    "198.51.100.7",
                    "203.0.113.10/31",
                    "203.0.113.12/30",
                    "203.0.113.16/30",
                    "203.0.113.20",
                    "2001:db8::/48",
                ],
            ),
            (
                "spamhaus",
                fixture!("drop.txt"),
                &["192.0.2.0/25", "198.51.100.0/24", "203.0.113.128/26"],
            ),
            (
                "spamhaus",
                fixture!("drop_v4.json"),
                &["192.0.2.0/25", "198.51.100.0/24"],
            ),
            (
                "asn",
                fixture!("asns.txt"),
                &["AS64496", "AS64497", "AS64498", "AS65536"],
            ),
            (
                "asn-csv",
                fixture!("asn-name.csv"),
                &["AS64496", "AS64500", "AS65537"],
            ),
            (
                "range-csv",
                fixture!("ip2asn.tsv"),
                &[
                    "192.0.2.0/24",
                    "203.0.113.0/29",
                    "203.0.113.8/31",
                    "2001:db8::/48",
                ],
            ),
            (
                "range-csv",
                fixture!("ranges.csv"),
                &["192.0.2.0/25", "203.0.113.5"],
            ),
            (
                "aws",
                fixture!("aws.json"),
                &["192.0.2.0/24", "198.51.100.0/25", "2001:db8:1000::/36"],
            ),
            (
                "gcp",
                fixture!("gcp.json"),
                &["192.0.2.0/26", "203.0.113.0/24", "2001:db8:2000::/44"],
            ),
            (
                "azure",
                fixture!("azure.json"),
                &[
                    "192.0.2.0/24",
                    "198.51.100.64/26",
                    "2001:db8:3000::/40",
                    "203.0.113.0/27",
                ],
            ),
            (
                "oracle",
                fixture!("oracle.json"),
                &["192.0.2.0/24", "198.51.100.0/28", "203.0.113.0/25"],
            ),
            (
                "tor",
                fixture!("tor-exit-addresses.txt"),
                &["192.0.2.17", "198.51.100.33", "2001:db8::33"],
            ),
            (
                "tor",
                fixture!("tor-bulk.txt"),
                &["192.0.2.17", "198.51.100.33", "203.0.113.99"],
            ),
            (
                "icloud-relay",
                fixture!("icloud-egress.csv"),
                &["192.0.2.0/27", "192.0.2.32/27", "2001:db8:4000::/45"],
            ),
        ];
        for (format, text, want) in cases {
            assert_eq!(read(format, text), *want, "{format}");
        }
    }

    #[test]
    fn ranges_split_into_the_fewest_blocks_of_either_family() {
        assert_eq!(read("ips", "0.0.0.0-255.255.255.255"), ["0.0.0.0/0"]);
        assert_eq!(
            read("ips", "192.0.2.255-192.0.3.0"),
            ["192.0.2.255", "192.0.3.0"]
        );
        assert_eq!(read("ips", "::-::1"), ["::/127"]);
        assert_eq!(
            read("ips", "2001:db8::-2001:db8::ffff:ffff:ffff:ffff"),
            ["2001:db8::/64"]
        );
        assert_eq!(
            read("ips", "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ["::/0"]
        );
        for (line, want) in [
            ("192.0.2.9-192.0.2.1", "`192.0.2.9` comes after `192.0.2.1`"),
            ("192.0.2.1-2001:db8::", "are not of one family"),
            ("192.0.2.1-", "`` is not an IPv4 or IPv6 address"),
        ] {
            let got = refused("ips", line);
            assert!(
                got[0].starts_with("line 1: ") && got[0].contains(want),
                "{got:?}"
            );
        }
    }

    #[test]
    fn every_bad_line_is_named_with_its_number_and_text() {
        assert_eq!(
            refused("ips", "192.0.2.0/24\n10.0.0.1/8\nnope\n"),
            [
                "line 2: `10.0.0.1/8` has host bits set; the block is 10.0.0.0/8",
                "line 3: `nope` is not an IPv4 or IPv6 address",
            ]
        );
        assert_eq!(
            refused("asn", "AS64496\nAS-1\n4294967296\nAS0\n"),
            [
                "line 2: `AS-1` is not an AS number (16509 or AS16509)",
                "line 3: `4294967296` is not an AS number (16509 or AS16509)",
                "line 4: `AS0` is not an AS number (16509 or AS16509)",
            ]
        );
        // An AS list is not an address list, nor the other way round.
        assert_eq!(
            refused("ips", "AS64496\n"),
            ["line 1: `AS64496` is not an IPv4 or IPv6 address"]
        );
        assert_eq!(
            refused("asn", "192.0.2.0/24\n"),
            ["line 1: `192.0.2.0/24` is not an AS number (16509 or AS16509)"]
        );
        assert_eq!(
            refused("spamhaus", "192.0.2.0/24 ; SBL1\n{\"sblid\": \"SBL2\"}\n"),
            ["line 2: `{\"sblid\": \"SBL2\"}` has no \"cidr\""]
        );
        assert_eq!(
            refused(
                "tor",
                "ExitNode AB\nExitAddress\nExitAddress 300.1.1.1 2026-12-01\n"
            ),
            [
                "line 2: `ExitAddress` without an address",
                "line 3: `300.1.1.1` is not an IPv4 or IPv6 address",
            ]
        );
        assert_eq!(
            refused(
                "range-csv",
                "192.0.2.0,192.0.2.9,64496\n192.0.2.10,192.0.2.20\n"
            ),
            ["line 2: `192.0.2.10,192.0.2.20` has 2 columns, the format reads 3"]
        );
        assert_eq!(
            refused(
                "icloud-relay",
                "192.0.2.0/27,GB,GB-EN,London,\n192.0.2.33/27,US,US-CA,LA,\n"
            ),
            ["line 2: `192.0.2.33/27` has host bits set; the block is 192.0.2.32/27"]
        );
        // A header is skipped only on the first line.
        assert_eq!(
            refused("asn-csv", "asn,name\n64496,A\nasn,name\n"),
            ["line 3: `asn` is not an AS number (16509 or AS16509)"]
        );
    }

    #[test]
    fn truncated_downloads_are_refused_not_half_read() {
        let aws = fixture!("aws.json");
        let cut = &aws[..aws.len() / 2];
        let got = refused("aws", cut);
        assert_eq!(got.len(), 1);
        assert!(got[0].contains("not the format's JSON"), "{got:?}");
        // A line cut in the middle of an address.
        assert_eq!(
            refused("spamhaus", "; DROP\n192.0.2.0/24 ; SBL1\n198.51."),
            ["line 3: `198.51.` is not an IPv4 or IPv6 address"]
        );
        assert_eq!(
            refused(
                "range-csv",
                "192.0.2.0\t192.0.2.255\t64496\tUS\tX\n198.51.100.0\t198.5"
            ),
            ["line 2: `198.51.100.0\t198.5` has 2 columns, the format reads 3"]
        );
        let spamhaus = fixture!("drop_v4.json");
        let got = refused("spamhaus", &spamhaus[..20]);
        assert!(
            got[0].starts_with("line 1: `{\"cidr\":\"192.0.2.0/2` is not a JSON object"),
            "{got:?}"
        );
    }

    #[test]
    fn a_document_of_another_format_is_refused_with_where_its_blocks_were_looked_for() {
        // Google's file read as AWS's: valid JSON, no block where AWS keeps them.
        assert_eq!(
            refused("aws", fixture!("gcp.json")),
            ["line 1: no blocks where the format keeps them (prefixes.*.ip_prefix, ipv6_prefixes.*.ipv6_prefix)"]
        );
        let bad = fixture!("oracle.json").replace("198.51.100.0/28", "198.51.100.1/28");
        assert_eq!(
            refused("oracle", &bad),
            ["line 8: `198.51.100.1/28` has host bits set; the block is 198.51.100.0/28"]
        );
        let bad = fixture!("azure.json").replace("\"203.0.113.0/27\"", "27");
        assert_eq!(refused("azure", &bad), ["line 32: `27` is not a block"]);
        assert_eq!(
            "csv".parse::<Format>().unwrap_err(),
            "unknown list format `csv`; one of ips, spamhaus, asn, asn-csv, range-csv, aws, gcp, azure, oracle, tor, icloud-relay"
        );
    }
}
