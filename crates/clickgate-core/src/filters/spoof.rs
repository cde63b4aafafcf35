//! `spoof`: a request that is not what the browser its User-Agent claims would send. A script
//! can copy a browser's User-Agent in one line; the rest of what a browser sends on a navigation
//! (its fetch metadata, its client hints, its content negotiation, its HTTP version and TLS) it
//! has to know about and copy too.
//!
//! What each browser sends, and from which version, is kept as data ([`EXPECTED`]), each row with
//! the public source it was taken from. Every contradiction is a weak sign on its own: people's
//! requests lose headers to privacy tools, proxies downgrade them to HTTP/1.1, apps load links in
//! their own WebViews. So signs are counted by what could have caused them ([`Cause`]), and only
//! several independent causes together make a strong grade; an app's WebView never gets one.

use crate::click::{
    Sent, AT_HTTP_PROTOCOL, AT_TLS_CIPHER, AT_TLS_VERSION, HTTP_PROTOCOL, SENT_HEADERS,
    TLS_CIPHER, TLS_VERSION,
};
use crate::filters::{Hit, Judge, Seen, Settings, Stage, Unavailable};
use crate::ua::{Browser, Grade, Os, UserAgent};
use crate::verdict::ReasonCode;

/// The `spoof` filter; it has no settings of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Spoof;

impl Judge for Spoof {
    const NAME: &'static str = "spoof";
    const POINTS: u32 = 100;
    const STAGE: Stage = Stage::Click;
    const CODES: &'static [ReasonCode] = &[ReasonCode::Spoof];

    fn compile(_settings: &mut impl Settings) -> Self {
        Spoof
    }

    /// `Unavailable` when the click carries no request facts: a replayed log line written under
    /// a config without this filter.
    fn judge_click(&self, seen: &Seen, points: u32) -> Result<Option<Hit>, Unavailable> {
        let sent = seen.client.sent.as_deref().ok_or(Unavailable)?;
        let Some(ua) = seen.client.user_agent.as_ref() else {
            return Ok(None);
        };
        Ok(judge(ua, sent).map(|found| Hit {
            code: ReasonCode::Spoof,
            matched: found.describe(),
            value: found.claim,
            points: points * found.grade.percent() / 100,
        }))
    }
}

/// The engines a User-Agent can claim, as far as what they send differs. Every browser on iOS is
/// WebKit, whatever its name, and its version is the system's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Chromium,
    Gecko,
    WebKit,
}

/// What a browser sends on a navigation, from some version on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sends {
    /// `Sec-CH-UA`, `Sec-CH-UA-Mobile`, `Sec-CH-UA-Platform`, over HTTPS.
    ClientHints,
    /// `Sec-Fetch-Site`, `-Mode`, `-Dest` (and `-User` when a person started it), over HTTPS.
    FetchMetadata,
    /// An `Accept` naming `text/html`.
    NavigationAccept,
    AcceptLanguage,
    AcceptEncoding,
    /// `Upgrade-Insecure-Requests: 1`.
    UpgradeInsecureRequests,
    /// HTTP/2 or later to a server that offers it (every Cloudflare zone does).
    Http2,
    /// TLS 1.2 or later, with an AEAD cipher.
    Tls12,
}

/// One row of what browsers send: the family, the first major version that sends it, and what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expectation {
    pub(crate) family: Family,
    pub from: u32,
    pub(crate) sends: Sends,
}

const fn row(family: Family, from: u32, sends: Sends) -> Expectation {
    Expectation {
        family,
        from,
        sends,
    }
}

/// What browsers send on a navigation, with the public source of each row.
#[rustfmt::skip]
pub(crate) const EXPECTED: &[Expectation] = &[
    // Chrome Platform Status, "User-Agent Client Hints" (shipped in Chrome 89); MDN, Sec-CH-UA,
    // browser compatibility (Chrome 89, Edge 89, Opera 75; Firefox and Safari: no).
    row(Family::Chromium, 89, Sends::ClientHints),
    // MDN, Sec-Fetch-Dest, browser compatibility: Chrome 80 (Sec-Fetch-Site, -Mode and -User from
    // 76); counted from 80, the first version that sends all four.
    row(Family::Chromium, 80, Sends::FetchMetadata),
    // Firefox 90 release notes for developers, "Fetch Metadata request headers" enabled; MDN,
    // Sec-Fetch-Site, browser compatibility: Firefox 90.
    row(Family::Gecko, 90, Sends::FetchMetadata),
    // WebKit, "WebKit Features in Safari 16.4" (Fetch Metadata request headers), Safari and iOS
    // 16.4; counted from 17, the first major version all of whose releases send them.
    row(Family::WebKit, 17, Sends::FetchMetadata),
    // MDN, Accept, "Default values": every browser asks for `text/html` first on a navigation.
    row(Family::Chromium, 1, Sends::NavigationAccept),
    row(Family::Gecko, 1, Sends::NavigationAccept),
    row(Family::WebKit, 1, Sends::NavigationAccept),
    // MDN, Accept-Language: browsers set it from the user interface's and the user's languages.
    row(Family::Chromium, 1, Sends::AcceptLanguage),
    row(Family::Gecko, 1, Sends::AcceptLanguage),
    row(Family::WebKit, 1, Sends::AcceptLanguage),
    // MDN, Accept-Encoding, browser compatibility: every browser sends it (gzip at least).
    row(Family::Chromium, 1, Sends::AcceptEncoding),
    row(Family::Gecko, 1, Sends::AcceptEncoding),
    row(Family::WebKit, 1, Sends::AcceptEncoding),
    // MDN, Upgrade-Insecure-Requests, browser compatibility: Chrome 44.
    row(Family::Chromium, 44, Sends::UpgradeInsecureRequests),
    // Chromium Blog, "Hello HTTP/2, Goodbye SPDY" (HTTP/2 from Chrome 41, SPDY gone in 51).
    row(Family::Chromium, 51, Sends::Http2),
    // Firefox 36 release notes: HTTP/2 fully supported.
    row(Family::Gecko, 36, Sends::Http2),
    // WebKit, Safari 9 (OS X El Capitan and iOS 9) release notes: HTTP/2 supported.
    row(Family::WebKit, 9, Sends::Http2),
    // Chrome Platform Status, "Remove TLS 1.0 and TLS 1.1" (Chrome 84).
    row(Family::Chromium, 84, Sends::Tls12),
    // Firefox 78 release notes: TLS 1.0 and 1.1 disabled.
    row(Family::Gecko, 78, Sends::Tls12),
];

/// The browser a User-Agent claims, as far as the filter judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub(crate) family: Family,
    pub version: u32,
    pub(crate) os: Option<Os>,
    /// `Sec-CH-UA-Mobile`'s answer for this User-Agent, where it has a fixed one.
    pub mobile: Option<bool>,
    /// A Chromium browser other than Chrome and Edge (Opera, Samsung Internet, ...): it sends
    /// client hints under its own brand, from versions of its own. The filter reads it only when
    /// a request came without client hints, and [`judge`] works it out only then.
    pub(crate) other_chromium: bool,
    /// Edge: its client hints name it.
    pub edge: bool,
    /// An app's WebView or a browser the User-Agent names (in-app, regional): what it sends is
    /// the app's choice, so no header's absence counts and its grade stays below `certain`.
    pub(crate) app: bool,
}

impl Claim {
    /// What the claimed browser sends, one bit a [`Sends`]: the table read once a click, not once
    /// a header.
    fn sends(&self) -> u32 {
        EXPECTED
            .iter()
            .filter(|e| e.family == self.family && self.version >= e.from)
            .fold(0, |all, e| all | 1 << e.sends as u32)
    }

    fn name(&self) -> String {
        let family = match (self.family, self.os) {
            (Family::WebKit, Some(Os::Ios)) => "ios webkit",
            (Family::Chromium, _) if self.edge => "edge",
            (Family::Chromium, _) => "chromium",
            (Family::Gecko, _) => "firefox",
            (Family::WebKit, _) => "safari",
        };
        let app = if self.app { " (app)" } else { "" };
        format!("{family} {}{app}", self.version)
    }
}

/// The product tokens a Chrome, Edge, Firefox or Safari User-Agent carries; another one names a
/// browser of its own.
const PLAIN_PRODUCTS: [&str; 9] = [
    "Mozilla",
    "AppleWebKit",
    "Chrome",
    "Safari",
    "Mobile",
    "Edg",
    "EdgA",
    "Gecko",
    "Firefox",
];

/// Whether `name` is one of [`PLAIN_PRODUCTS`]: as browsers write it first, in any case after.
fn is_plain_product(name: &str) -> bool {
    PLAIN_PRODUCTS.contains(&name) || PLAIN_PRODUCTS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// A whole number as `str::parse::<u32>` reads one (an optional `+`, then digits, no overflow),
/// without its generic machinery: it runs on every judged click, once or twice.
fn number(text: &[u8]) -> Option<u32> {
    let digits = match text {
        [b'+', rest @ ..] => rest,
        _ => text,
    };
    if digits.is_empty() {
        return None;
    }
    let mut n = 0u32;
    for &d in digits {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u32::from(d))?;
    }
    Some(n)
}

/// A version's major part: `131` of `131.0.6778.86`.
fn major(version: &[u8]) -> &[u8] {
    let mut end = 0;
    while end < version.len() && version[end] != b'.' {
        end += 1;
    }
    version.split_at(end).0
}

/// The browser `ua` claims; `None` for a client the filter does not judge: one that says it is
/// automated (the `bot` filter's), a link preview, or a browser outside the table.
pub fn claim(ua: &UserAgent) -> Option<Claim> {
    claim_of(ua, true)
}

/// [`claim`], with [`Claim::other_chromium`] worked out only when `other` asks for it (it reads
/// each of the User-Agent's products against a list); otherwise it is `false`.
fn claim_of(ua: &UserAgent, other: bool) -> Option<Claim> {
    let reading = ua.reading();
    if reading.preview || reading.signal.as_ref().is_some_and(|s| s.grade > Grade::Weak) {
        return None;
    }
    let platform = ua.platform();
    let os = platform.os.map(|(os, _)| os);
    let has = |name: &str| ua.products().any(|(n, _)| n == name || n.eq_ignore_ascii_case(name));
    // Android's WebView marks its comment so: `(Linux; Android 14; Pixel 8; wv)`.
    let webview = reading.web_view;
    let mut other_chromium = false;
    let (family, version) = match (platform.os, platform.browser) {
        (Some((Os::Ios, v)), _) => (Family::WebKit, v),
        (_, Some((Browser::Chrome | Browser::Edge, _))) => {
            // One pass over the products: Chrome's version, and whether another product names a
            // Chromium browser other than Chrome and Edge (Opera, Samsung Internet, ...).
            let mut chrome = None;
            for (name, version) in ua.products() {
                if name == "Chrome" {
                    chrome.get_or_insert(version);
                    if !other {
                        break;
                    }
                }
                other_chromium |= other && !is_plain_product(name);
            }
            (Family::Chromium, number(major(chrome?.as_bytes()))?)
        }
        (_, Some((Browser::Firefox, v))) => (Family::Gecko, v),
        (_, Some((Browser::Safari, v))) => (Family::WebKit, v),
        (_, None) => return None,
    };
    let mobile = match os {
        Some(Os::Windows | Os::MacOs) => Some(false),
        Some(Os::Android) => Some(has("Mobile")),
        _ => None,
    };
    // An iOS app's WebView has no `Safari/` token; Android's says `wv`.
    let app = reading.client.is_some() || webview || (os == Some(Os::Ios) && !has("Safari"));
    Some(Claim {
        family,
        version,
        os,
        mobile,
        other_chromium,
        edge: platform.browser.is_some_and(|(b, _)| b == Browser::Edge),
        app,
    })
}

/// What could have caused a sign. Signs of one cause count once: a privacy tool that strips the
/// `Sec-` headers removes both the client hints and the fetch metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// Client hints present but naming another browser, version or platform.
    Hints,
    /// The `Sec-` headers the browser sends over HTTPS are missing.
    Missing,
    /// Fetch metadata saying the request is not a navigation.
    NotNavigation,
    /// The content negotiation every browser does is missing.
    Content,
    /// A connection no current browser makes.
    Transport,
}

/// One contradiction: its cause, what it is, and the header or field that showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sign {
    pub cause: Cause,
    pub what: String,
    pub field: &'static str,
}

/// What the filter found in a request: the claimed browser, the signs and their grade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub claim: String,
    pub grade: Grade,
    pub signs: Vec<Sign>,
}

impl Found {
    /// `likely: no client hints (sec-ch-ua); HTTP/1.1 (http_protocol)`.
    pub fn describe(&self) -> String {
        let signs: Vec<String> = self
            .signs
            .iter()
            .map(|s| format!("{} ({})", s.what, s.field))
            .collect();
        format!("{}: {}", self.grade.name(), signs.join("; "))
    }
}

/// The signs `sent` gives against the browser `ua` claims, graded by how many independent causes
/// they have: one is `weak`, two `likely`, three or more `certain` (an app's, at most `likely`).
#[inline(never)]
pub fn judge(ua: &UserAgent, sent: &Sent) -> Option<Found> {
    // Whether another Chromium browser is claimed matters only when no client hints came.
    let hints = header(sent, SEC_CH_UA);
    let claim = claim_of(ua, hints.is_none())?;
    let signs = signs(&claim, sent);
    // One bit a cause: the distinct causes counted without a sort of their own.
    let causes = signs.iter().fold(0u32, |seen, s| seen | 1 << s.cause as u32);
    let grade = match causes.count_ones() {
        0 => return None,
        1 => Grade::Weak,
        2 => Grade::Likely,
        _ => Grade::Certain,
    };
    let grade = if claim.app {
        grade.min(Grade::Likely)
    } else {
        grade
    };
    Some(Found {
        claim: claim.name(),
        grade,
        signs,
    })
}

/// Where each header stands in [`Sent`], found when the crate is compiled: a click looks
/// its headers up by position, not by name.
const SEC_FETCH_SITE: usize = at("sec-fetch-site");
const SEC_FETCH_MODE: usize = at("sec-fetch-mode");
const SEC_FETCH_DEST: usize = at("sec-fetch-dest");
const SEC_FETCH_USER: usize = at("sec-fetch-user");
const SEC_CH_UA: usize = at("sec-ch-ua");
const SEC_CH_UA_MOBILE: usize = at("sec-ch-ua-mobile");
const SEC_CH_UA_PLATFORM: usize = at("sec-ch-ua-platform");
const ACCEPT: usize = at("accept");
const ACCEPT_LANGUAGE: usize = at("accept-language");
const ACCEPT_ENCODING: usize = at("accept-encoding");
const UPGRADE_INSECURE_REQUESTS: usize = at("upgrade-insecure-requests");

const fn at(name: &str) -> usize {
    let mut i = 0;
    while i < SENT_HEADERS.len() {
        let (a, b) = (SENT_HEADERS[i].as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("not one of SENT_HEADERS")
}

/// A text of the request in a sign's words. Every text the filter shows stands between character
/// boundaries of [`Sent`]'s string (its ends are ASCII bytes or a whole text's), so it is UTF-8
/// and reads as the request sent it.
#[inline(never)]
fn shown(text: &[u8]) -> &str {
    std::str::from_utf8(text).unwrap_or("(not UTF-8)")
}

/// Every contradiction, in the order of [`Cause`].
fn signs(claim: &Claim, sent: &Sent) -> Vec<Sign> {
    let mut signs = Vec::new();
    let mut sign = |cause, what: String, field| signs.push(Sign { cause, what, field });
    let expected = claim.sends();
    let sends = |what: Sends| expected & 1 << what as u32 != 0;
    let header = |at: usize| header(sent, at);

    let hints = header(SEC_CH_UA);
    let (mode, dest) = (header(SEC_FETCH_MODE), header(SEC_FETCH_DEST));
    if let Some(hints) = hints {
        hints_contradict(claim, hints, |what| sign(Cause::Hints, what, "sec-ch-ua"));
        if claim.family == Family::Chromium {
            let mobile = header(SEC_CH_UA_MOBILE).map(|m| m == b"?1");
            if let (Some(said), Some(claimed)) = (mobile, claim.mobile) {
                if said != claimed {
                    let what = if said { "mobile" } else { "not mobile" };
                    sign(Cause::Hints, format!("client hints say {what}"), "sec-ch-ua-mobile");
                }
            }
            let platform = header(SEC_CH_UA_PLATFORM).map(unquoted);
            if let Some(said) = platform.filter(|p| platform_contradicts(claim.os, p)) {
                let said = shown(said);
                sign(Cause::Hints, format!("client hints say {said}"), "sec-ch-ua-platform");
            }
        }
    }

    // Browsers send the `Sec-` headers only to secure origins; an app's WebView sends what the
    // app lets it.
    if !claim.app && !sent.plain_http {
        if claim.family == Family::Chromium
            && sends(Sends::ClientHints)
            && !claim.other_chromium
            && hints.is_none()
        {
            sign(Cause::Missing, "no client hints".into(), "sec-ch-ua");
        }
        let fetch = [SEC_FETCH_SITE, SEC_FETCH_USER];
        if sends(Sends::FetchMetadata)
            && mode.is_none()
            && dest.is_none()
            && fetch.iter().all(|h| header(*h).is_none())
        {
            sign(Cause::Missing, "no fetch metadata".into(), "sec-fetch-*");
        }
    }

    // A click on a link is a navigation, whoever sends it.
    if let Some(mode) = mode.filter(|m| !same_ignoring_case(m, b"navigate")) {
        sign(Cause::NotNavigation, format!("fetch mode {}", shown(mode)), "sec-fetch-mode");
    }
    let frames: [&[u8]; 3] = [b"document", b"iframe", b"frame"];
    if let Some(dest) = dest.filter(|d| !frames.iter().any(|f| same_ignoring_case(d, f))) {
        sign(Cause::NotNavigation, format!("fetch destination {}", shown(dest)), "sec-fetch-dest");
    }

    if sends(Sends::NavigationAccept)
        && !header(ACCEPT).is_some_and(|a| contains_ignoring_case(a, b"text/html"))
    {
        sign(Cause::Content, "no navigation Accept".into(), "accept");
    }
    if sends(Sends::AcceptLanguage) && header(ACCEPT_LANGUAGE).is_none_or(|l| l == b"*") {
        sign(Cause::Content, "no Accept-Language".into(), "accept-language");
    }
    if sends(Sends::AcceptEncoding) && header(ACCEPT_ENCODING).is_none() {
        sign(Cause::Content, "no Accept-Encoding".into(), "accept-encoding");
    }
    if sends(Sends::UpgradeInsecureRequests)
        && header(UPGRADE_INSECURE_REQUESTS).is_none()
    {
        sign(
            Cause::Content,
            "no Upgrade-Insecure-Requests".into(),
            "upgrade-insecure-requests",
        );
    }

    // Only what the runtime says: locally there is no protocol or TLS to judge. Browsers speak
    // HTTP/1.1 over plain HTTP, so the version counts only over TLS.
    let tls = sent.bytes(AT_TLS_VERSION);
    if let (Some(protocol), Some(_)) = (sent.bytes(AT_HTTP_PROTOCOL), tls) {
        if sends(Sends::Http2)
            && protocol.get(..6).is_some_and(|p| same_ignoring_case(p, b"http/1"))
        {
            sign(Cause::Transport, shown(protocol).to_owned(), HTTP_PROTOCOL);
        }
    }
    if sends(Sends::Tls12) {
        if let Some(old) = tls.filter(|v| below_tls12(v)) {
            sign(Cause::Transport, format!("{}, below TLS 1.2", shown(old)), TLS_VERSION);
        } else if let Some(cipher) = sent.bytes(AT_TLS_CIPHER).filter(|c| !is_aead(c)) {
            sign(Cause::Transport, format!("cipher {}, not AEAD", shown(cipher)), TLS_CIPHER);
        }
    }
    signs
}

/// The header at `at` of [`SENT_HEADERS`], trimmed of white space; an empty one is none. A
/// header's value rarely has any at its ends, and this runs for each header the filter reads on
/// every click: only then is the Unicode-aware trim called.
fn header(sent: &Sent, at: usize) -> Option<&[u8]> {
    let value = sent.bytes(at)?;
    match (value.first(), value.last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => Some(value),
        _ => Some(sent.text(at)?.trim().as_bytes()).filter(|v| !v.is_empty()),
    }
}

/// `value` without the quotes at its ends: `Windows` of `"Windows"`.
fn unquoted(mut value: &[u8]) -> &[u8] {
    while let [b'"', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b'"'] = value {
        value = rest;
    }
    value
}

/// What client hints in `hints` contradict in the claim, each handed to `found`: hints from a
/// browser that sends none, a headless brand, no Chromium brand, another major version, Chrome's
/// brand on Edge.
fn hints_contradict(claim: &Claim, hints: &[u8], mut found: impl FnMut(String)) {
    if claim.family != Family::Chromium {
        return found("client hints from a browser that sends none".into());
    }
    // One pass over the brands (it runs on every click under the filter): a headless brand
    // decides at once, otherwise the first of each Chromium brand counts.
    let (mut chromium, mut chrome, mut edge) = (None, None, None);
    for (brand, version) in quoted_pairs(hints) {
        if brand.windows(8).any(|w| w[0] == b'H' && w == b"Headless") {
            return found(format!("client hints name {}", shown(brand)));
        }
        let first = match brand {
            b"Chromium" => &mut chromium,
            b"Google Chrome" => &mut chrome,
            b"Microsoft Edge" => &mut edge,
            _ => continue,
        };
        first.get_or_insert(version);
    }
    let Some(major) = chromium.or(chrome).or(edge).map(major) else {
        return found("client hints name no Chromium brand".into());
    };
    if number(major) != Some(claim.version) {
        found(format!("client hints say version {}", shown(major)));
    }
    if claim.edge && edge.is_none() && chrome.is_some() {
        found("client hints name Google Chrome".into());
    }
}

/// The brands of a `Sec-CH-UA` value with their major versions: `"Chromium";v="131", ...`.
/// A brand may hold `;`, `,` or `=` (the grease brands do), never a quote: the quoted strings,
/// found by their quotes, are brand and version in turn.
#[cfg(test)]
fn brands(hints: &str) -> impl Iterator<Item = (&str, &str)> {
    let text = |t| std::str::from_utf8(t).unwrap_or("not UTF-8");
    quoted_pairs(hints.as_bytes()).map(move |(brand, version)| (text(brand), text(major(version))))
}

/// The quoted strings of `hints` two by two: each brand with its whole version. One pass over
/// the value, each byte looked at once.
fn quoted_pairs(hints: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = hints;
    std::iter::from_fn(move || Some((quoted(&mut rest)?, quoted(&mut rest)?)))
}

/// The first quoted string of `text`, and `text` moved past its closing quote; `None` when no
/// string closes. A plain loop: a `Sec-CH-UA` value is short, and a searcher costs more to set
/// up than the scan.
fn quoted<'a>(text: &mut &'a [u8]) -> Option<&'a [u8]> {
    let bytes = *text;
    let mut open = 0;
    while *bytes.get(open)? != b'"' {
        open += 1;
    }
    let mut close = open + 1;
    while *bytes.get(close)? != b'"' {
        close += 1;
    }
    *text = bytes.get(close + 1..)?;
    bytes.get(open + 1..close)
}

/// Whether `Sec-CH-UA-Platform`'s value names another system than the User-Agent's.
fn platform_contradicts(os: Option<Os>, said: &[u8]) -> bool {
    let Some(os) = os else {
        return false;
    };
    let named = match said {
        b"Windows" => Os::Windows,
        b"macOS" => Os::MacOs,
        b"Android" => Os::Android,
        b"iOS" => Os::Ios,
        // A Linux box claiming any of the four.
        b"Linux" | b"Chrome OS" | b"Chromium OS" => return true,
        _ => return false,
    };
    named != os
}

/// Whether `version`, as the runtime names TLS versions, is below TLS 1.2: `TLSv1`, `TLSv1.0`,
/// `TLSv1.1` or `SSLv3`.
fn below_tls12(version: &[u8]) -> bool {
    match version {
        [b'T', b'L', b'S', b'v', b'1', rest @ ..] => matches!(rest, [] | [b'.', b'0' | b'1']),
        _ => version == b"SSLv3",
    }
}

/// Whether a cipher, as the runtime names it, is one browsers choose (GCM or ChaCha20-Poly1305).
fn is_aead(cipher: &[u8]) -> bool {
    contains_ignoring_case(cipher, b"gcm") || contains_ignoring_case(cipher, b"chacha20")
}

/// Whether `text` holds `lower` (in lower case) in any case, without a lowered copy (it runs on
/// every click): a window is compared only where its first letter matches.
fn contains_ignoring_case(text: &[u8], lower: &[u8]) -> bool {
    let Some((&first, rest)) = lower.split_first() else {
        return true;
    };
    text.iter().enumerate().any(|(at, b)| {
        b.to_ascii_lowercase() == first
            && text
                .get(at + 1..at + 1 + rest.len())
                .is_some_and(|w| same_ignoring_case(w, rest))
    })
}

/// Whether `text` is `lower` (in lower case) in any case. Browsers write these words in lower
/// case, so the plain comparison comes first; then byte by byte from the end, where `HTTP/2`
/// and `HTTP/1` differ.
#[inline(never)]
fn same_ignoring_case(text: &[u8], lower: &[u8]) -> bool {
    text == lower
        || text.len() == lower.len()
            && text
                .iter()
                .rev()
                .zip(lower.iter().rev())
                .all(|(t, l)| t.to_ascii_lowercase() == *l)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ua::UserAgent;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A request's headers, by name.
    type Headers = Vec<(&'static str, String)>;

    pub(crate) const CHROME_131: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const FIREFOX_133: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
    const SAFARI_17: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15";
    const IPHONE_17: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";

    /// Chrome's navigation: the fetch metadata of a link followed from another site, its client
    /// hints, its Accept and its content negotiation.
    pub(crate) fn chrome_headers(major: u32, platform: &str, mobile: bool) -> Headers {
        vec![
            ("sec-ch-ua", format!("\"Google Chrome\";v=\"{major}\", \"Chromium\";v=\"{major}\", \"Not_A Brand\";v=\"24\"")),
            ("sec-ch-ua-mobile", if mobile { "?1" } else { "?0" }.into()),
            ("sec-ch-ua-platform", format!("\"{platform}\"")),
            ("upgrade-insecure-requests", "1".into()),
            ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7".into()),
            ("sec-fetch-site", "cross-site".into()),
            ("sec-fetch-mode", "navigate".into()),
            ("sec-fetch-user", "?1".into()),
            ("sec-fetch-dest", "document".into()),
            ("accept-encoding", "gzip, deflate, br, zstd".into()),
            ("accept-language", "de-DE,de;q=0.9,en;q=0.8".into()),
        ]
    }

    /// Firefox's and Safari's navigation: no client hints.
    fn gecko_webkit_headers() -> Headers {
        vec![
            ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8".into()),
            ("accept-language", "en-GB,en;q=0.9".into()),
            ("accept-encoding", "gzip, deflate, br".into()),
            ("upgrade-insecure-requests", "1".into()),
            ("sec-fetch-site", "cross-site".into()),
            ("sec-fetch-mode", "navigate".into()),
            ("sec-fetch-user", "?1".into()),
            ("sec-fetch-dest", "document".into()),
        ]
    }

    /// What each HTTP library sends by default beyond the User-Agent it is given.
    pub(crate) fn script_headers(tool: &str) -> Headers {
        let h = |pairs: &[(&'static str, &str)]| pairs.iter().map(|(n, v)| (*n, (*v).to_owned())).collect();
        match tool {
            "curl" => h(&[("accept", "*/*")]),
            "python-requests" => h(&[("accept", "*/*"), ("accept-encoding", "gzip, deflate")]),
            "go" => h(&[("accept-encoding", "gzip")]),
            "node-fetch" => h(&[
                ("accept", "*/*"),
                ("accept-language", "*"),
                ("sec-fetch-mode", "cors"),
                ("accept-encoding", "gzip, deflate"),
            ]),
            other => panic!("{other}"),
        }
    }

    /// The protocol each tool speaks to an HTTPS server that offers HTTP/2: curl and Go's
    /// client negotiate it, Python's and Node's stay on HTTP/1.1.
    pub(crate) fn script_protocol(tool: &str) -> &'static str {
        match tool {
            "curl" | "go" => "HTTP/2",
            _ => "HTTP/1.1",
        }
    }

    pub(crate) const H2: Option<(&str, &str, &str)> = Some(("HTTP/2", "TLSv1.3", "AEAD-AES128-GCM-SHA256"));

    const H3: Option<(&str, &str, &str)> = Some(("HTTP/3", "TLSv1.3", "AEAD-CHACHA20-POLY1305-SHA256"));

    /// A browser's logged request, judged as sent (no protocol or TLS facts, as locally) and over
    /// HTTP/2 and HTTP/3 with a browser's TLS: no sign on any of them.
    fn assert_no_sign_over_each_transport(ua: &UserAgent, logged: &Sent, name: &serde_json::Value) {
        for transport in [None, H2, H3] {
            let sent = match transport {
                Some((protocol, tls, cipher)) => Sent::from_fields(|n| match n {
                    HTTP_PROTOCOL => Some(protocol),
                    TLS_VERSION => Some(tls),
                    TLS_CIPHER => Some(cipher),
                    _ => logged.fields().find(|(f, _)| *f == n).map(|(_, v)| v),
                }),
                None => logged.clone(),
            };
            assert_eq!(judge(ua, &sent), None, "{name} over {transport:?}");
        }
    }

    pub(crate) fn sent(headers: &[(&'static str, String)], transport: Option<(&str, &str, &str)>) -> Sent {
        let (protocol, tls, cipher) =
            transport.map_or((None, None, None), |(p, t, c)| (Some(p), Some(t), Some(c)));
        let header = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        Sent::read(header, "https://clicks.example/c?offer_id=1", protocol, tls, cipher)
    }

    fn without(mut headers: Headers, names: &[&str]) -> Headers {
        headers.retain(|(n, _)| !names.contains(n) && !names.iter().any(|p| p.ends_with('*') && n.starts_with(&p[..p.len() - 1])));
        headers
    }

    fn with(mut headers: Headers, name: &'static str, value: &str) -> Headers {
        headers.retain(|(n, _)| *n != name);
        headers.push((name, value.to_owned()));
        headers
    }

    fn grade(ua: &str, sent: &Sent) -> Option<Grade> {
        judge(&UserAgent::parse(ua), sent).map(|f| f.grade)
    }

    fn chrome_ua(major: u32) -> String {
        CHROME_131.replace("131", &major.to_string())
    }

    #[test]
    fn real_browsers_show_no_sign() {
        let cases: [(&str, Vec<_>); 5] = [
            (CHROME_131, chrome_headers(131, "Windows", false)),
            ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", chrome_headers(131, "Android", true)),
            (FIREFOX_133, gecko_webkit_headers()),
            (SAFARI_17, gecko_webkit_headers()),
            (IPHONE_17, gecko_webkit_headers()),
        ];
        for (ua, headers) in cases {
            for transport in [H2, Some(("HTTP/3", "TLSv1.3", "AEAD-CHACHA20-POLY1305-SHA256")), None] {
                let sent = sent(&headers, transport);
                assert_eq!(judge(&UserAgent::parse(ua), &sent), None, "{ua} over {transport:?}");
            }
        }
        // Debian's Chromium 156, headless, following a link to the Worker on this machine (the
        // end-to-end suite's `headless_chromium_…` test prints them): Chromium names no vendor.
        let chromium = [
            ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/jxl,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"),
            ("accept-encoding", "gzip, deflate, br, zstd"),
            ("accept-language", "en-US,en;q=0.9"),
            ("sec-ch-ua", r#""Not:A-Brand";v="8", "Chromium";v="156""#),
            ("sec-ch-ua-mobile", "?0"),
            ("sec-ch-ua-platform", "\"Linux\""),
            ("sec-fetch-dest", "document"),
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-site", "none"),
            ("sec-fetch-user", "?1"),
            ("upgrade-insecure-requests", "1"),
        ]
        .map(|(n, v)| (n, v.to_owned()));
        let linux = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        assert_eq!(grade(linux, &sent(&chromium, None)), None);
        assert_eq!(grade(linux, &sent(&chromium, H2)), None);
        // Edge names itself in its hints; Chrome on iOS is WebKit and sends none.
        let edge = format!("{CHROME_131} Edg/131.0.0.0");
        let edge_hints = with(chrome_headers(131, "Windows", false), "sec-ch-ua", r#""Microsoft Edge";v="131", "Chromium";v="131", "Not_A Brand";v="24""#);
        assert_eq!(grade(&edge, &sent(&edge_hints, H2)), None);
        let crios = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1";
        assert_eq!(grade(crios, &sent(&gecko_webkit_headers(), H2)), None);
    }

    /// Real browsers' navigations as the Worker logged them (tests/e2e/fixtures/browsers.json,
    /// captured by the end-to-end suite's `real_browsers_…` test): Chromium and Firefox headless,
    /// on the desktop and in mobile emulation. None shows a sign, as served locally and over each
    /// connection they make when deployed; without their `Sec-` headers and Accept-Language, each
    /// is `likely`, so the filter did judge them.
    #[test]
    fn captured_browsers_show_no_sign() {
        let fixtures: serde_json::Value =
            serde_json::from_str(include_str!("../../../../tests/e2e/fixtures/browsers.json")).unwrap();
        let browsers = fixtures.as_array().unwrap();
        let names: Vec<_> = browsers.iter().filter_map(|b| b["browser"].as_str()).collect();
        for family in ["chromium", "firefox"] {
            for mobile in [false, true] {
                let found = names.iter().any(|n| n.starts_with(family) && n.contains(", headless,") == mobile);
                assert!(found, "no {family} (mobile: {mobile}) in {names:?}");
            }
        }
        for b in browsers {
            let (name, ua) = (&b["browser"], UserAgent::parse(b["user_agent"].as_str().unwrap()));
            assert!(claim(&ua).is_some(), "{name} is not judged");
            let logged = Sent::from_fields(|n| b["sent"][n].as_str());
            assert_no_sign_over_each_transport(&ua, &logged, name);
            let stripped = Sent::from_fields(|n| {
                let dropped = n.starts_with("sec-") || n == "accept-language";
                b["sent"][n].as_str().filter(|_| !dropped)
            });
            assert_eq!(judge(&ua, &stripped).map(|f| f.grade), Some(Grade::Likely), "{name} stripped");
        }
    }

    /// Safari (macOS and iOS) and Android's WebView, their navigations as their vendors and MDN
    /// document them (tests/e2e/fixtures/published-browsers.json, each with its sources): no
    /// sign, so no spoof points, locally and over each connection they make. Each is judged: a
    /// request that contradicts it gets a sign.
    #[test]
    fn published_safari_and_webview_show_no_sign() {
        let fixtures: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../tests/e2e/fixtures/published-browsers.json"
        ))
        .unwrap();
        let browsers = fixtures.as_array().unwrap();
        let claims: Vec<_> = browsers
            .iter()
            .map(|b| claim(&UserAgent::parse(b["user_agent"].as_str().unwrap())).map(|c| c.name()))
            .collect();
        for want in ["safari 17", "ios webkit 17", "chromium 131 (app)"] {
            assert!(claims.contains(&Some(want.into())), "no {want} in {claims:?}");
        }
        for b in browsers {
            assert!(!b["source"].as_str().unwrap_or("").is_empty());
            let (name, ua) = (&b["browser"], UserAgent::parse(b["user_agent"].as_str().unwrap()));
            let logged = Sent::from_fields(|n| b["sent"][n].as_str());
            assert_no_sign_over_each_transport(&ua, &logged, name);
            // A script's request under the same User-Agent is judged.
            let script = Sent::from_fields(|n| (n == "accept").then_some("*/*"));
            assert!(judge(&ua, &script).is_some(), "{name} is not judged");
        }
    }

    /// Each browser family's first version that sends what the table says, and the one before.
    #[test]
    fn each_expectation_starts_at_its_first_version() {
        let no_hints = without(chrome_headers(0, "Windows", false), &["sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform"]);
        let no_fetch = |h: Vec<_>| without(h, &["sec-fetch-*"]);
        let cases: Vec<(String, Headers, Option<Grade>)> = vec![
            // Client hints from Chrome 89.
            (chrome_ua(88), no_hints.clone(), None),
            (chrome_ua(89), no_hints.clone(), Some(Grade::Weak)),
            // Fetch metadata from Chrome 80 (before client hints, so none expected).
            (chrome_ua(79), no_fetch(no_hints.clone()), None),
            (chrome_ua(80), no_fetch(no_hints.clone()), Some(Grade::Weak)),
            // Firefox from 90.
            (FIREFOX_133.replace("133", "89"), no_fetch(gecko_webkit_headers()), None),
            (FIREFOX_133.replace("133", "90"), no_fetch(gecko_webkit_headers()), Some(Grade::Weak)),
            // Safari and every iOS browser from 17 (16.4 within 16).
            (SAFARI_17.replace("17.4", "16.6"), no_fetch(gecko_webkit_headers()), None),
            (SAFARI_17.to_owned(), no_fetch(gecko_webkit_headers()), Some(Grade::Weak)),
            (IPHONE_17.replace("17_4", "16_6").replace("17.4", "16.6"), no_fetch(gecko_webkit_headers()), None),
            (IPHONE_17.to_owned(), no_fetch(gecko_webkit_headers()), Some(Grade::Weak)),
        ];
        for (ua, headers, want) in cases {
            let sent = sent(&headers, H2);
            assert_eq!(grade(&ua, &sent), want, "{ua}");
        }
        // Chrome from 51 speaks HTTP/2 to a server that offers it; Chrome 50 might not.
        let old = without(chrome_headers(0, "Windows", false), &["sec-*"]);
        let h1 = Some(("HTTP/1.1", "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"));
        assert_eq!(grade(&chrome_ua(50), &sent(&old, h1)), None);
        assert_eq!(grade(&chrome_ua(51), &sent(&old, h1)), Some(Grade::Weak));
        // TLS below 1.2 from Chrome 84 and Firefox 78; an old but real one is left alone.
        let tls10 = Some(("HTTP/2", "TLSv1", "ECDHE-RSA-AES128-SHA"));
        let fetch_no_hints = without(chrome_headers(0, "Windows", false), &["sec-ch-*"]);
        assert_eq!(grade(&chrome_ua(83), &sent(&fetch_no_hints, tls10)), None);
        assert_eq!(grade(&chrome_ua(84), &sent(&fetch_no_hints, tls10)), Some(Grade::Weak));
        let fx = without(gecko_webkit_headers(), &["sec-fetch-*"]);
        assert_eq!(grade(&FIREFOX_133.replace("133", "77"), &sent(&fx, tls10)), None);
        assert_eq!(grade(&FIREFOX_133.replace("133", "78"), &sent(&fx, tls10)), Some(Grade::Weak));
    }

    /// What a person's request may lose on its way never makes more than a weak sign alone.
    #[test]
    fn proxies_privacy_tools_and_a_missing_language_are_weak_alone() {
        let full = chrome_headers(131, "Windows", false);
        let proxy = Some(("HTTP/1.1", "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384"));
        let cases = [
            ("an HTTP/1.1 proxy", sent(&full, proxy), Grade::Weak),
            ("no Accept-Language", sent(&without(full.clone(), &["accept-language"]), H2), Grade::Weak),
            ("Accept-Language: *", sent(&with(full.clone(), "accept-language", "*"), H2), Grade::Weak),
            ("a tool that strips the Sec- headers", sent(&without(full.clone(), &["sec-*"]), H2), Grade::Weak),
            ("a UA switcher (Chrome claiming 120)", sent(&full, H2), Grade::Weak),
        ];
        for (name, sent, want) in cases {
            let ua = if name.contains("switcher") { chrome_ua(120) } else { CHROME_131.to_owned() };
            let found = judge(&UserAgent::parse(&ua), &sent).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(found.grade, want, "{name}: {}", found.describe());
        }
        // A proxy that also strips them: two causes, still below `certain`.
        let both = sent(&without(full.clone(), &["sec-*"]), proxy);
        assert_eq!(grade(CHROME_131, &both), Some(Grade::Likely));
        // Chrome claiming Safari through a UA switcher: its hints contradict, nothing else does.
        assert_eq!(grade(SAFARI_17, &sent(&full, H2)), Some(Grade::Weak));
        // Over plain HTTP to a remote host, browsers send no Sec- headers.
        let stripped = without(full, &["sec-*"]);
        let header = |name: &str| stripped.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        let plain = Sent::read(header, "http://clicks.example/c", None, None, None);
        assert!(plain.plain_http);
        assert_eq!(grade(CHROME_131, &plain), None);
    }

    #[test]
    fn webviews_and_in_app_browsers_never_reach_certain() {
        let android_wv = "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UQ1A.240205.004; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.39 Mobile Safari/537.36";
        let ios_app = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 320.0.2.34.109";
        let samsung = "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36";
        let bare = script_headers("node-fetch");
        let webview = with(chrome_headers(131, "Android", true), "sec-ch-ua", r#""Android WebView";v="131", "Chromium";v="131""#);
        let samsung_hints = with(chrome_headers(121, "Android", true), "sec-ch-ua", r#""Chromium";v="121", "Not A(Brand";v="99", "Samsung Internet";v="25.0""#);
        for (ua, headers) in [(android_wv, webview), (ios_app, gecko_webkit_headers()), (samsung, samsung_hints)] {
            // What each sends when it follows a link.
            assert_eq!(grade(ua, &sent(&headers, H2)), None, "{ua}");
            let worst = sent(&bare, Some(("HTTP/1.1", "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")));
            let g = grade(ua, &worst).unwrap_or_else(|| panic!("{ua}"));
            assert!(g <= Grade::Likely, "{ua}: {g:?}");
        }
        // No Sec- headers and no client hints: nothing, for an app decides what its WebView sends.
        let stripped = without(chrome_headers(131, "Android", true), &["sec-*"]);
        assert_eq!(grade(android_wv, &sent(&stripped, H2)), None);
        assert_eq!(grade(ios_app, &sent(&without(gecko_webkit_headers(), &["sec-*"]), H2)), None);
    }

    #[test]
    fn previews_bots_and_unknown_browsers_are_not_judged() {
        let bare = sent(&[], Some(("HTTP/1.1", "TLSv1", "AES128-SHA")));
        for ua in [
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/131.0.0.0",
            "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko",
            "curl/8.4.0",
        ] {
            assert_eq!(grade(ua, &bare), None, "{ua}");
        }
    }

    /// Scripts sending a current browser's User-Agent with their own default headers: each is
    /// `likely` at least (a `medium_and_higher` rule declines it), and the grades the filter
    /// reference gives for a Chrome User-Agent hold.
    #[test]
    fn scripts_claiming_a_browser_are_at_least_likely() {
        let with_chrome = [
            ("curl", Grade::Likely),
            ("python-requests", Grade::Certain),
            ("go", Grade::Likely),
            ("node-fetch", Grade::Certain),
        ];
        for (tool, as_chrome) in with_chrome {
            let transport = Some((script_protocol(tool), "TLSv1.3", "AEAD-AES256-GCM-SHA384"));
            let mut grades = Vec::new();
            for ua in [CHROME_131, FIREFOX_133, SAFARI_17, IPHONE_17] {
                let found = judge(&UserAgent::parse(ua), &sent(&script_headers(tool), transport));
                let found = found.unwrap_or_else(|| panic!("{tool} as {ua}"));
                assert!(found.grade >= Grade::Likely, "{tool} as {ua}: {}", found.describe());
                grades.push(format!("{} {}", found.claim, found.grade.name()));
            }
            println!("{tool}: {}", grades.join(", "));
            assert!(grades[0].ends_with(as_chrome.name()), "{tool}: {grades:?}");
        }
        // Python over HTTP/1.1 with a Chrome UA: every cause at once.
        let python = sent(&script_headers("python-requests"), Some(("HTTP/1.1", "TLSv1.3", "AEAD-AES256-GCM-SHA384")));
        let found = judge(&UserAgent::parse(CHROME_131), &python).unwrap();
        assert_eq!(
            found.describe(),
            "certain: no client hints (sec-ch-ua); no fetch metadata (sec-fetch-*); no navigation Accept (accept); \
             no Accept-Language (accept-language); no Upgrade-Insecure-Requests (upgrade-insecure-requests); HTTP/1.1 (http_protocol)"
        );
        assert_eq!(found.claim, "chromium 131");
    }

    #[test]
    fn client_hints_that_contradict_the_user_agent() {
        let full = chrome_headers(131, "Windows", false);
        let cases = [
            (with(full.clone(), "sec-ch-ua", r#""HeadlessChrome";v="131", "Chromium";v="131""#), "client hints name HeadlessChrome (sec-ch-ua)"),
            (with(full.clone(), "sec-ch-ua", r#""Chromium";v="120", "Not:A-Brand";v="8""#), "client hints say version 120 (sec-ch-ua)"),
            (with(full.clone(), "sec-ch-ua", r#""Not;A=Brand";v="99""#), "client hints name no Chromium brand (sec-ch-ua)"),
            (with(full.clone(), "sec-ch-ua-platform", "\"Linux\""), "client hints say Linux (sec-ch-ua-platform)"),
            (with(full.clone(), "sec-ch-ua-mobile", "?1"), "client hints say mobile (sec-ch-ua-mobile)"),
        ];
        for (headers, want) in cases {
            let found = judge(&UserAgent::parse(CHROME_131), &sent(&headers, H2)).unwrap();
            assert_eq!(found.describe(), format!("weak: {want}"));
        }
        // Hints from another brand, no fetch metadata and HTTP/1.1: three causes, `certain`.
        let headless = without(with(full, "sec-ch-ua", r#""HeadlessChrome";v="131""#), &["sec-fetch-*"]);
        let found = judge(&UserAgent::parse(CHROME_131), &sent(&headless, Some(("HTTP/1.1", "TLSv1.3", "AEAD-AES128-GCM-SHA256")))).unwrap();
        assert_eq!(found.grade, Grade::Certain, "{}", found.describe());
        // Firefox sends no hints at all.
        let fx = with(gecko_webkit_headers(), "sec-ch-ua", r#""Chromium";v="131""#);
        assert_eq!(judge(&UserAgent::parse(FIREFOX_133), &sent(&fx, H2)).unwrap().describe(), "weak: client hints from a browser that sends none (sec-ch-ua)");
    }

    /// The filter's own number reader reads what `str::parse` reads, and refuses what it refuses.
    #[test]
    fn numbers_read_as_parse_reads_them() {
        for text in ["131", "0131", "+131", "", "+", "-1", "-0", "1a", "4294967295", "4294967296", "99999999999", " 1", "١"] {
            assert_eq!(number(text.as_bytes()), text.parse::<u32>().ok(), "{text:?}");
        }
    }

    #[test]
    fn a_grease_brand_may_hold_any_separator() {
        let all = |hints| brands(hints).collect::<Vec<_>>();
        assert_eq!(
            all(r#""Not;A=Brand";v="99", "Chromium";v="131.0.6778.86", "Google Chrome";v="131""#),
            [("Not;A=Brand", "99"), ("Chromium", "131"), ("Google Chrome", "131")]
        );
        assert_eq!(all(r#""Chromium""#), []);
        assert_eq!(all(""), []);
    }
}

#[cfg(test)]
mod decision_tests {
    use super::tests::{chrome_headers, script_headers, sent, CHROME_131, H2};
    use crate::config::Config;
    use crate::decide::harness::*;
    use crate::decide::{decide, reads_sent, Observed};
    use crate::token::TokenKey;
    use crate::whatif::from_log_line;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn spoof_rule(decline: &str) -> Config {
        config(&format!(
            r#"{{"id": "s", "created_at": "2026-11-01", "scope": {{"offers": ["1"]}}, "decline": "{decline}",
                "strategy": {{"filters": [{{"type": "spoof"}}]}}}}"#
        ))
    }

    #[test]
    fn a_script_claiming_chrome_is_declined_from_medium_and_a_browser_is_not() {
        let curl = sent(&script_headers("curl"), H2);
        let chrome = sent(&chrome_headers(131, "Windows", false), H2);
        for (decline, curl_blocked) in [("medium_and_higher", true), ("high", false)] {
            let cfg = spoof_rule(decline);
            let click = |sent| Click {
                ua: CHROME_131,
                sent: Some(sent),
                ..Click::default()
            };
            let out = run(&cfg, click(&curl));
            assert_eq!(out.is_blocked(), curl_blocked, "{decline}");
            assert_eq!(codes(&out), ["spoof"]);
            assert_eq!(out.assessment.as_ref().map(|a| a.score), Some(60));
            assert_eq!(
                out.reasons()[0].matched,
                "likely: no client hints (sec-ch-ua); no fetch metadata (sec-fetch-*); \
                 no navigation Accept (accept); no Accept-Language (accept-language); \
                 no Accept-Encoding (accept-encoding); \
                 no Upgrade-Insecure-Requests (upgrade-insecure-requests)"
            );
            assert_eq!(out.reasons()[0].value, "chromium 131");
            let out = run(&cfg, click(&chrome));
            assert!(!out.is_blocked() && codes(&out).is_empty(), "{decline}");
        }
    }

    /// Replay judges a click again from its log line alone: the line carries every header and
    /// connection fact the filter read, and a line written without them cannot be judged.
    #[test]
    fn the_log_line_carries_what_replay_needs_to_judge_again() {
        let cfg = spoof_rule("medium_and_higher");
        assert!(reads_sent(&cfg));
        let python = sent(
            &script_headers("python-requests"),
            Some(("HTTP/1.1", "TLSv1.3", "AEAD-AES256-GCM-SHA384")),
        );
        let out = run(
            &cfg,
            Click {
                ua: CHROME_131,
                sent: Some(&python),
                ..Click::default()
            },
        );
        let line = out.log_line();
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            json["sent"],
            serde_json::json!({"accept": "*/*", "accept-encoding": "gzip, deflate",
                "http_protocol": "HTTP/1.1", "tls_version": "TLSv1.3",
                "tls_cipher": "AEAD-AES256-GCM-SHA384"})
        );
        let recorded = from_log_line(&line).clicks.remove(0);
        assert_eq!(recorded.client.sent.as_deref(), Some(&python));
        let key = TokenKey::new(&[7u8; 32]).unwrap();
        let again = |client| {
            decide(
                &cfg,
                &key,
                recorded.click.clone(),
                client,
                Observed::default(),
                recorded.at_ms,
                [0; 8],
            )
            .unwrap()
        };
        let replayed = again(recorded.client.clone());
        assert_eq!(replayed.reasons(), out.reasons());
        assert!(replayed.is_blocked());
        // A line from before the filter: it cannot say, and the rule's fault mode decides.
        let mut old = recorded.client.clone();
        old.sent = None;
        let unjudged = again(old);
        assert!(!unjudged.is_blocked());
        assert_eq!(unjudged.assessment.unwrap().unavailable, ["spoof"]);
    }

    /// What crosses from the runtime into wasm is the config's to say: under every other filter,
    /// none of the headers only this filter reads and no connection fact; under a config with it
    /// (in any rule), all of them; and all while the isolate has no config yet, since the one the
    /// click waits for may have it.
    #[test]
    fn the_edge_reads_the_filters_headers_and_connection_only_under_a_config_with_it() {
        use crate::click::SENT_HEADERS;
        use crate::decide::{reads, CLICK_HEADERS};
        let only_spoof: Vec<&str> = SENT_HEADERS
            .into_iter()
            .filter(|h| !CLICK_HEADERS.contains(h))
            .collect();
        assert_eq!(only_spoof.len(), SENT_HEADERS.len() - 1, "accept is read by every click");
        let every_other = reads(Some(&config(&rule("r", ""))));
        assert!(!every_other.connection);
        assert_eq!(every_other.headers, CLICK_HEADERS);
        for header in &only_spoof {
            assert!(!every_other.headers.contains(header), "{header}");
        }
        let second_rule = config(&format!(
            r#"{}, {{"id": "s", "created_at": "2026-11-01", "scope": {{"offers": ["2"]}},
                "strategy": {{"filters": [{{"type": "spoof"}}]}}}}"#,
            rule("r", "")
        ));
        for under in [Some(&spoof_rule("high")), Some(&second_rule), None] {
            let all = reads(under);
            assert!(all.connection, "{:?}", under.map(|c| c.rules.len()));
            // Each of them once, and nothing else.
            assert_eq!(all.headers.len(), CLICK_HEADERS.len() + only_spoof.len());
            for header in CLICK_HEADERS.iter().chain(&only_spoof) {
                assert!(all.headers.contains(header), "{header}");
            }
        }
    }

    /// The edge reads the filter's headers into the click, and the log line carries them, only
    /// under a config that has the filter: every other config's line is as it was.
    #[test]
    fn only_a_config_with_the_filter_keeps_the_headers() {
        use crate::isolate::{Arrival, ClickStep, Effect, Isolate, Parts};
        use std::sync::Arc;
        let line_under = |cfg: Config| {
            let mut headers = chrome_headers(131, "Windows", false);
            headers.push(("user-agent", CHROME_131.to_owned()));
            let parts = Parts {
                method: "GET".into(),
                url: "https://clicks.example/c?offer_id=1&aff_id=net-7".into(),
                headers,
                http_protocol: Some("HTTP/2".into()),
                tls_version: Some("TLSv1.3".into()),
                tls_cipher: Some("AEAD-AES128-GCM-SHA256".into()),
                ..Parts::default()
            };
            let arrival = Arrival::read(parts).unwrap();
            let key = TokenKey::new(&[7u8; 32]).unwrap();
            let step = Isolate::default().click(arrival, &Arc::new(cfg), || Some(key), NOW, || {
                Ok([1; 8])
            });
            let ClickStep::Done(answered) = step else {
                panic!("asked")
            };
            let line = answered.effects.iter().find_map(|e| match e {
                Effect::Log(line) => Some(line.clone()),
                _ => None,
            });
            serde_json::from_str::<serde_json::Value>(&line.unwrap()).unwrap()
        };
        let without = line_under(config(&rule("r", "")));
        assert!(!reads_sent(&config(&rule("r", ""))));
        assert_eq!(without.get("sent"), None);
        let with = line_under(spoof_rule("medium_and_higher"));
        assert_eq!(with["verdict"], "redirect");
        assert_eq!(with["sent"]["sec-fetch-mode"], "navigate");
        assert_eq!(with["sent"]["http_protocol"], "HTTP/2");
        assert_eq!(with["sent"].as_object().unwrap().len(), 14);
    }
}
