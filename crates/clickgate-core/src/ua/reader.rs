//! The reader: a header split into its product tokens and comments, and what its words say of the
//! client, read once per click.

use std::cell::OnceCell;
use std::ops::{Deref, Range};

use super::patterns::{matcher, Class, APP_WORD, LEFT, PRODUCT, RIGHT, START, VERSION};
use super::platform::{platform_at, Browser, Marks, Os, Platform};
use super::signal::{Grade, Kind, Signal};

/// A part of the header: a product token (`name/version`, or a bare word) or a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The name's and the version's byte ranges (the version empty without `/`).
    Product(u16, u16, u16),
    /// The bytes between `(` and `)` (or `[` and `]`, as Facebook's in-app browser writes them).
    Comment(u16, u16),
}

/// A User-Agent header with what it says, read once when the click arrives and passed to every
/// filter, the preview check and the counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserAgent {
    raw: String,
    parts: Vec<Part>,
    reading: Reading,
    marks: Marks,
    /// Read on first use: only the old-OS/browser filter and a weak sign need it.
    platform: OnceCell<Platform>,
}

/// What the header says about the client.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reading {
    /// The strongest sign of automation, if any.
    pub signal: Option<Signal>,
    /// A people's client recognised by name (`instagram`, `yandex`, `feature_phone`, ...).
    pub client: Option<&'static str>,
    /// A link-preview fetcher unfurling a pasted link: not a person clicking.
    pub preview: bool,
    /// An Android app's embedded WebView (`; wv)` in its comment), found in the same pass.
    pub(crate) web_view: bool,
}

impl UserAgent {
    pub fn parse(raw: impl Into<String>) -> UserAgent {
        let mut raw: String = raw.into();
        // The ranges are u16; a header that long is cut (the edge refuses larger headers anyway).
        if raw.len() > usize::from(u16::MAX) {
            let mut end = usize::from(u16::MAX);
            while !raw.is_char_boundary(end) {
                end -= 1;
            }
            raw.truncate(end);
        }
        let parts = split(&raw);
        let platform = OnceCell::new();
        let mut marks = Marks::default();
        let reading = read(&raw, &parts, &mut marks, &platform);
        UserAgent {
            raw,
            parts,
            reading,
            marks,
            platform,
        }
    }

    /// The OS and browser with their major versions, as far as the header tells.
    pub(crate) fn platform(&self) -> Platform {
        *self
            .platform
            .get_or_init(|| platform_at(&self.raw, &self.marks))
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn reading(&self) -> &Reading {
        &self.reading
    }

    /// The product tokens, as `(name, version)`; the version is empty when the token has none.
    pub(crate) fn products(&self) -> impl Iterator<Item = (&str, &str)> {
        self.parts.iter().filter_map(|p| match *p {
            Part::Product(start, slash, end) => Some((
                &self.raw[usize::from(start)..usize::from(slash)],
                self.raw
                    .get(usize::from(slash) + 1..usize::from(end))
                    .unwrap_or(""),
            )),
            Part::Comment(..) => None,
        })
    }

    /// The comments, each split at `;` into its trimmed items.
    pub fn comments(&self) -> impl Iterator<Item = Vec<&str>> {
        self.parts.iter().filter_map(|p| match *p {
            Part::Comment(start, end) => Some(
                self.raw[usize::from(start)..usize::from(end)]
                    .split(';')
                    .map(str::trim)
                    .collect(),
            ),
            Part::Product(..) => None,
        })
    }
}

impl Deref for UserAgent {
    type Target = str;
    fn deref(&self) -> &str {
        &self.raw
    }
}

impl From<&str> for UserAgent {
    fn from(raw: &str) -> UserAgent {
        UserAgent::parse(raw)
    }
}

impl From<String> for UserAgent {
    fn from(raw: String) -> UserAgent {
        UserAgent::parse(raw)
    }
}

/// The sign the bot filter judges for a click's User-Agent, whether or not it sent one.
pub fn signal_of(user_agent: Option<&UserAgent>) -> Option<Signal> {
    match user_agent {
        Some(ua) => ua.reading.signal.clone(),
        None => Some(Signal::no_user_agent()),
    }
}

pub fn is_link_preview(user_agent: Option<&UserAgent>) -> bool {
    user_agent.is_some_and(|ua| ua.reading.preview)
}

/// Splits a header into product tokens and comments. Never fails: whatever is not a comment is a
/// run of product tokens separated by whitespace; an unclosed comment runs to the end.
fn split(ua: &str) -> Vec<Part> {
    let b = ua.as_bytes();
    let mut parts = Vec::with_capacity(8);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            open @ (b'(' | b'[') => {
                let close = if open == b'(' { b')' } else { b']' };
                let mut depth = 1;
                let mut j = i + 1;
                while j < b.len() && depth > 0 {
                    if b[j] == open {
                        depth += 1;
                    } else if b[j] == close {
                        depth -= 1;
                    }
                    j += 1;
                }
                let end = if depth == 0 { j - 1 } else { j };
                parts.push(Part::Comment((i + 1) as u16, end as u16));
                i = j;
            }
            c if c.is_ascii_whitespace() || c == b';' || c == b',' => i += 1,
            _ => {
                let start = i;
                let mut slash = None;
                while i < b.len()
                    && !matches!(b[i], b'(' | b'[' | b';' | b',')
                    && !b[i].is_ascii_whitespace()
                {
                    if b[i] == b'/' && slash.is_none() {
                        slash = Some(i);
                    }
                    i += 1;
                }
                let slash = slash.unwrap_or(i);
                parts.push(Part::Product(start as u16, slash as u16, i as u16));
            }
        }
    }
    parts
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Whether a match at `start..end` stands where its flags say.
fn placed(ua: &str, parts: &[Part], start: usize, end: usize, flags: u8) -> bool {
    let b = ua.as_bytes();
    if flags & START != 0 && start != 0 {
        return false;
    }
    if flags & LEFT != 0 && start > 0 && is_word(b[start - 1]) && is_word(b[start]) {
        return false;
    }
    if flags & RIGHT != 0 && end < b.len() && is_word(b[end]) && is_word(b[end - 1]) {
        // A plural `s` that ends the word still ends it (`spiders`, `monitors`).
        let plural =
            b[end].eq_ignore_ascii_case(&b's') && b.get(end + 1).is_none_or(|&c| !is_word(c));
        if !plural {
            return false;
        }
    }
    if flags & VERSION != 0
        && !(b.get(end) == Some(&b'/') && b.get(end + 1).is_some_and(u8::is_ascii_digit))
    {
        return false;
    }
    if flags & PRODUCT != 0 {
        // The run of name bytes around the match; a product name is followed by `/`, or is a bare
        // word outside the comments.
        let delimiter = |c: u8| {
            c.is_ascii_whitespace() || matches!(c, b'(' | b')' | b'[' | b']' | b';' | b',' | b'/')
        };
        let run_end = b[end..]
            .iter()
            .position(|&c| delimiter(c))
            .map_or(b.len(), |p| end + p);
        if b.get(run_end) != Some(&b'/') && in_comment(parts, start) {
            return false;
        }
    }
    true
}

fn in_comment(parts: &[Part], at: usize) -> bool {
    parts
        .iter()
        .any(|p| matches!(*p, Part::Comment(s, e) if usize::from(s) <= at && at < usize::from(e)))
}

/// Whether a match stands in the device-model item of an Android comment (`Linux; Android 7.0;
/// M bot 54`, `Android 13; Spider 8 Build/...`): phone makers name models with any word. A crawler
/// that names itself there writes a version (`Googlebot/2.1`), a URL or `compatible`.
fn in_model_name(ua: &str, parts: &[Part], start: usize, end: usize) -> bool {
    let Some((from, to)) = parts.iter().find_map(|p| match *p {
        Part::Comment(s, e) if usize::from(s) <= start && end <= usize::from(e) => {
            Some((usize::from(s), usize::from(e)))
        }
        _ => None,
    }) else {
        return false;
    };
    let comment = &ua[from..to];
    let at = start - from;
    let item_start = comment[..at].rfind(';').map_or(0, |i| i + 1);
    let item_end = comment[at..].find(';').map_or(comment.len(), |i| at + i);
    let item = &comment[item_start..item_end];
    let android_before = comment[..item_start].split(';').any(|i| {
        let i = i.trim_start().as_bytes();
        i.len() >= 7
            && i[..7].eq_ignore_ascii_case(b"android")
            && i.get(7).is_none_or(|&c| c == b' ' || c.is_ascii_digit())
    });
    if !android_before {
        return false;
    }
    // The word's own version: `Name/2.1` after the rest of the word.
    let b = ua.as_bytes();
    let word_end = b[end..]
        .iter()
        .position(|&c| !(is_word(c) || c == b'_' || c == b'-'))
        .map_or(b.len(), |p| end + p);
    let versioned =
        b.get(word_end) == Some(&b'/') && b.get(word_end + 1).is_some_and(u8::is_ascii_digit);
    let lower = |needle: &str| {
        item.as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    // `+` signs an address (`+http://`, `+name[at]host`); a model's own `+` stands after a
    // number (`53+`).
    let signed = item
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'+' && w[1].is_ascii_alphabetic());
    !versioned && !lower("compatible") && !lower("http") && !signed
}

/// The word of the header around a match, for the reason (`Googlebot` for a `bot` match).
fn word_around(ua: &str, start: usize, end: usize) -> &str {
    let b = ua.as_bytes();
    let part = |c: u8| is_word(c) || matches!(c, b'-' | b'_' | b'.' | b'!');
    let from = b[..start]
        .iter()
        .rposition(|&c| !part(c))
        .map_or(0, |p| p + 1);
    let to = b[end..]
        .iter()
        .position(|&c| !part(c))
        .map_or(b.len(), |p| end + p);
    let word = ua.get(from..to).unwrap_or("");
    if word.is_empty() {
        ua.get(start..end).unwrap_or("")
    } else {
        word
    }
}

/// The first automation match of a kind: its start and end.
type Hit = Option<(usize, usize)>;

/// `platform` is filled when the outdated-engine sign needed it, so the filters don't read it again.
fn read(ua: &str, parts: &[Part], marks: &mut Marks, platform: &OnceCell<Platform>) -> Reading {
    if ua.trim().is_empty() {
        return Reading {
            signal: Some(Signal::no_user_agent()),
            ..Reading::default()
        };
    }
    let m = matcher();
    let (mut ai, mut payload): (Hit, Hit) = (None, None);
    let mut exceptions: Vec<Range<usize>> = Vec::new();
    let mut candidates: Vec<(usize, usize, u8)> = Vec::new();
    let mut client = None;
    let (mut preview, mut device, mut browser, mut url) = (false, false, false, None);
    let (mut system, mut domain): (bool, Hit) = (false, None);
    let (mut compatible, mut named_browser, mut web_view) = (false, false, false);
    let mut mozilla = false;
    let mut engine_compatible: Hit = None;
    m.each_hit(ua, |p, start, end| {
        if !placed(ua, parts, start, end, p.flags) {
            return;
        }
        match p.class {
            Class::Crawler | Class::Library => candidates.push((start, end, p.flags)),
            Class::Ai => {
                ai.get_or_insert((start, end));
            }
            Class::Payload => {
                payload.get_or_insert((start, end));
            }
            Class::Preview => preview = true,
            Class::Client(name) => {
                client.get_or_insert(name);
            }
            Class::Device => device = true,
            Class::System => system = true,
            Class::Domain => {
                // A name with a letter before the dot (not a version's `1.7610.EU`), and no
                // further label after it (`.com.samsung`).
                let b = ua.as_bytes();
                let label = b[..start]
                    .iter()
                    .rposition(|&c| !(is_word(c) || c == b'-'))
                    .map_or(0, |p| p + 1);
                let named = b[label..start].iter().any(u8::is_ascii_alphabetic);
                // Nor a word going on (`.rus.`: no plural here).
                let last = !b
                    .get(end)
                    .is_some_and(|&c| is_word(c) || matches!(c, b'.' | b'_' | b'-'));
                if named && last {
                    domain.get_or_insert((start, end));
                }
            }
            Class::Browser => browser = true,
            Class::Mozilla => mozilla = true,
            Class::CompatibleBrowser => {
                named_browser = true;
                browser = true;
            }
            Class::Exception => exceptions.push(start..end),
            Class::Url => {
                url.get_or_insert((start, end));
            }
            Class::Compatible => compatible = true,
            Class::WebView => web_view = true,
            Class::EngineCompatible => {
                engine_compatible.get_or_insert((start, end));
            }
            Class::Mark(i) => {
                if marks.0[i] == u16::MAX {
                    marks.0[i] = start as u16;
                }
            }
        }
    });
    // The leftmost word not inside an exception (`CUBOT` phones), not a phone's model name, not an
    // app's name in its own web view; another one still counts. A product named from its first
    // letter (`|catchpoint`) is no maker's word for a model: it counts in the model item too.
    let bot: Hit = candidates
        .into_iter()
        .filter(|&(start, end, flags)| {
            let excepted = exceptions.iter().any(|e| e.start <= start && end <= e.end);
            let app_name = web_view && flags & APP_WORD != 0;
            let model = flags & LEFT == 0 && in_model_name(ua, parts, start, end);
            !(excepted || app_name || model)
        })
        .map(|(start, end, _)| (start, end))
        .min();
    let certain = |kind: Kind, (start, end): (usize, usize)| {
        Some(Signal::new(
            Grade::Certain,
            kind,
            word_around(ua, start, end),
        ))
    };
    // A URL signed the crawlers' way (`+http://`), or a domain standing as a product with its
    // version or a path (`Criticalcss.com/2.0`, `adbeat.com/policy`, outside the comments where
    // device builds live), is a self-declared fetcher, whatever else the header claims. A bare
    // domain after a browser's header is a corporate filter's annotation or a small browser's
    // homepage as often: only a weaker sign.
    let signed = url.filter(|&(start, _)| ua[..start].trim_end().ends_with('+'));
    let domain_product = domain
        .filter(|&(start, end)| ua.as_bytes().get(end) == Some(&b'/') && !in_comment(parts, start));
    let signal = if let Some(hit) = payload {
        Some(Signal::new(
            Grade::Certain,
            Kind::Bot,
            format!("payload {}", ua.get(hit.0..hit.1).unwrap_or("")),
        ))
    } else if let Some(hit) = ai {
        certain(Kind::AiAgent, hit)
    } else if let Some(hit) = bot {
        certain(Kind::Bot, hit)
    } else if let Some((start, end)) = signed.or(domain_product) {
        Some(Signal::new(
            Grade::Certain,
            Kind::Bot,
            format!("address {}", word_around(ua, start, end)),
        ))
    } else if let Some((start, end)) = engine_compatible {
        Some(Signal::new(
            Grade::Certain,
            Kind::Bot,
            ua.get(start..end).unwrap_or("").trim_end_matches(';'),
        ))
    } else if client.is_some() || preview {
        None
    } else {
        // `Mozilla/` makes the browser form only with something a browser writes after it: a
        // platform comment, an OS, a device. Alone, or followed by a program's name
        // (`Mozilla/5.0 Acme/1.0`), it is a program's dress.
        let commented = parts.iter().any(|p| matches!(p, Part::Comment(..)));
        let form = Form {
            // A TV or set-top box writes `compatible;` with its own words.
            compatible: compatible && !named_browser && !device,
            dressed: crawler_dress(ua, parts),
            browser: browser || (mozilla && (commented || system || device)),
            unplaced: mozilla && commented && !browser && !system && !device,
            device,
            system,
        };
        weaker_sign(ua, url.or(domain), form, || {
            *platform.get_or_init(|| platform_at(ua, marks))
        })
    };
    Reading {
        signal,
        client,
        preview,
        web_view,
    }
}

/// Whether the header is only `Mozilla/x` and one comment naming a product with its version
/// (`Mozilla/5.0 (compatible; Acme/1.0)`).
fn crawler_dress(ua: &str, parts: &[Part]) -> bool {
    let [Part::Product(start, slash, _), Part::Comment(from, to)] = *parts else {
        return false;
    };
    let (start, slash, from, to) = (
        usize::from(start),
        usize::from(slash),
        usize::from(from),
        usize::from(to),
    );
    let b = ua.as_bytes();
    ua[start..slash].eq_ignore_ascii_case("mozilla")
        && (from..to.saturating_sub(1))
            .any(|i| b[i] == b'/' && b[i + 1].is_ascii_digit() && i > from && is_word(b[i - 1]))
}

/// What a header's words say of its form.
struct Form {
    /// `compatible;` without a browser or a device that writes it.
    compatible: bool,
    /// Nothing but `Mozilla/5.0 (compatible; Name/1.0; …)`.
    dressed: bool,
    /// A browser's words (`Mozilla/` with a comment, `Opera`, `Gecko/`, `...Browser`).
    browser: bool,
    /// `Mozilla/` and a comment, with no engine, browser, OS or device named anywhere.
    unplaced: bool,
    /// A device's own client (an app's network stack, a TV, a console).
    device: bool,
    /// An OS named.
    system: bool,
}

/// The signs of the header's form, for a header with no certain word and no known client.
fn weaker_sign(
    ua: &str,
    url: Hit,
    form: Form,
    platform: impl FnOnce() -> Platform,
) -> Option<Signal> {
    let Form {
        compatible,
        dressed,
        browser,
        unplaced,
        device,
        system,
    } = form;
    // A program: neither the browser form, nor a device, an OS or a known app: a self-declared
    // tool (`Zapier`, `NodePing`, `findlinks/2.0`), as certain as a crawler's name.
    let program = !browser && !device && !system;
    // Browsers never put a URL or an e-mail address in their User-Agent; crawlers sign with one.
    // Signed the crawlers' way (`+http://`), or in a program's or a `compatible;` header, it is
    // certain; in a browser's form it is likely (a desktop app may name its site).
    let signed = |grade_if_plain: Grade, plus: bool| {
        if plus || program || compatible {
            Grade::Certain
        } else {
            grade_if_plain
        }
    };
    if let Some((start, end)) = url {
        let plus = ua[..start].trim_end().ends_with('+');
        return Some(Signal::new(
            signed(Grade::Likely, plus),
            Kind::Bot,
            format!("address {}", word_around(ua, start, end)),
        ));
    }
    // An e-mail address; `@` before a digit is a version (`android@150.0`), and a locale's
    // `@calendar=` or `@numbers=` is no address.
    let b = ua.as_bytes();
    if let Some(at) = (1..b.len()).find(|&i| {
        b[i] == b'@' && is_word(b[i - 1]) && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic) && {
            let rest = &ua[i + 1..];
            let host = &rest[..rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
                .unwrap_or(rest.len())];
            host.contains('.') && !host.ends_with('.')
        }
    }) {
        return Some(Signal::new(
            signed(Grade::Likely, false),
            Kind::Bot,
            format!("e-mail {}", word_around(ua, at, at + 1)),
        ));
    }
    // Nothing but `Mozilla/5.0 (compatible; Name/1.0; …)` is the dress crawlers have worn since
    // the 1990s; the browsers that wrote it named themselves (MSIE, NetPositive, IBrowse, ...).
    if compatible {
        return Some(Signal::new(
            if dressed {
                Grade::Certain
            } else {
                Grade::Likely
            },
            Kind::Bot,
            "compatible; without a browser",
        ));
    }
    // Every browser writes its platform in the comment after `Mozilla/`; an old handset or a
    // desktop app may leave it out too, so this is likely, not certain.
    if unplaced {
        return Some(Signal::new(
            Grade::Likely,
            Kind::Bot,
            "Mozilla/ without a platform",
        ));
    }
    // Every browser and in-app web view has the browser form; a device's own client has its
    // device's words. A header with neither is a program; one that names only an OS is an
    // unknown app or a program on that OS.
    if !browser && !device {
        let mut words = ua.trim().split(['/', ' ', '(', ';']);
        let mut first = words.next().unwrap_or("");
        if first.eq_ignore_ascii_case("mozilla") {
            // The program's own name, past the `Mozilla/5.0` it wears.
            first = words
                .find(|w| w.starts_with(|c: char| c.is_ascii_alphabetic()))
                .unwrap_or(first);
        }
        let grade = if program { Grade::Certain } else { Grade::Weak };
        return Some(Signal::new(
            grade,
            Kind::Bot,
            format!("not a browser: {first}"),
        ));
    }
    // An engine years older than the OS it claims: no such browser ships; scripts pick a stale
    // string and an OS separately.
    let platform = platform();
    if let (Some((os, os_v)), Some((browser, v))) = (platform.os, platform.browser) {
        let stale = match (os, browser) {
            (Os::Windows, Browser::Chrome) => os_v >= 10 && v < 40,
            (Os::Windows, Browser::Firefox) => os_v >= 10 && v < 30,
            (Os::Android, Browser::Chrome) => os_v >= 10 && v < 60,
            (Os::MacOs, Browser::Chrome) => os_v >= 11 && v < 80,
            _ => false,
        };
        if stale {
            return Some(Signal::new(
                Grade::Weak,
                Kind::Bot,
                format!(
                    "outdated engine {} {v} on {} {os_v}",
                    browser.name(),
                    os.name()
                ),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ua::samples::{grade, signal, ANDROID, IPHONE, WINDOWS};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn the_header_is_split_into_products_and_comments() {
        let ua = UserAgent::parse(ANDROID);
        let products: Vec<_> = ua.products().collect();
        assert_eq!(
            products,
            [
                ("Mozilla", "5.0"),
                ("AppleWebKit", "537.36"),
                ("Chrome", "124.0.0.0"),
                ("Mobile", ""),
                ("Safari", "537.36")
            ]
        );
        let comments: Vec<_> = ua.comments().collect();
        assert_eq!(
            comments,
            [
                vec!["Linux", "Android 14", "Pixel 8"],
                vec!["KHTML, like Gecko"]
            ]
        );
        // Facebook's bracketed form is a comment too; an unclosed one runs to the end.
        let fb = UserAgent::parse("Mozilla/5.0 (iPhone) [FBAN/FBIOS;FBAV/450.0.0.38.108]");
        assert_eq!(
            fb.comments().nth(1),
            Some(vec!["FBAN/FBIOS", "FBAV/450.0.0.38.108"])
        );
        let open = UserAgent::parse("Foo/1 (a; b");
        assert_eq!(open.comments().next(), Some(vec!["a", "b"]));
        assert_eq!(&*open, "Foo/1 (a; b");
    }

    #[test]
    fn browsers_are_not_bots() {
        for ua in [
            IPHONE,
            ANDROID,
            WINDOWS,
            "Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36",
            "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)",
            "Mozilla/5.0 (compatible; Konqueror/4.5; Linux) KHTML/4.5.4 (like Gecko)",
            // An i-mode handset's browser names only its model and its network.
            "Mozilla/4.08 (P906i;FOMA;c300;TB)",
        ] {
            assert_eq!(signal(ua), None, "{ua}");
        }
    }

    #[test]
    fn words_count_only_on_their_boundaries() {
        // Each of these once matched an automation word inside a longer word or a device name.
        for ua in [
            // `ruby`: HTC's phone in a comment is not the language's HTTP client.
            "Mozilla/5.0 (Linux; U; Android 2.3.4; en-us; HTC Ruby Build/GRJ22) AppleWebKit/533.1 (KHTML, like Gecko) Version/4.0 Mobile Safari/533.1",
            // `perl`: a phone model.
            "Mozilla/5.0 (Linux; Android 8.1.0; Perla) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.73 Mobile Safari/537.36",
            // `rust` inside UC Browser's `UNTRUSTED/1.0`.
            "Nokia5130c-2/2.0 (07.97) Profile/MIDP-2.1 Configuration/CLDC-1.1 UNTRUSTED/1.0 UCWEB/8.9",
            // `rss` inside a model name and an Android build id.
            "Mozilla/5.0 (Linux; Android 11; ANDERSSON TBX-1011) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/110.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Linux; Android 12; moto g(30) Build/S1RSS32.38-20-7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
            // `bot` inside a company's name in an IE token.
            "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.1; Banca Caboto; .NET CLR 2.0.50727)",
            // `agent` inside a TV app and an Android web view library.
            "Mozilla/5.0 (Linux; Android 9; MagentaTV One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/104.0.0.0 Safari/537.36",
            // `.com` inside a build string.
            "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014.com.samsung) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
        ] {
            assert_eq!(signal(ua), None, "{ua}");
        }
    }

    #[test]
    fn certain_signs_name_the_word_that_showed_them() {
        let cases = [
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot"),
            ("curl/8.4.0", "curl"),
            ("python-requests/2.31.0", "python-requests"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0.0.0 Safari/537.36", "HeadlessChrome"),
            ("Go-http-client/2.0", "Go-http-client"),
            ("Java/1.8.0_151", "Java"),
            ("libwww-perl/6.72", "libwww-perl"),
            ("Ruby", "Ruby"),
            ("SomeFetcher/1.0", "SomeFetcher"),
            ("Mozilla/5.0 (compatible; SeznamBot/4.0; +https://o-seznam.cz/)", "SeznamBot"),
            ("Mozilla/5.0 (Linux; Android 9; CUBOT X19) python-requests/2.31", "python-requests"),
        ];
        for (ua, token) in cases {
            assert_eq!(
                signal(ua),
                Some((Grade::Certain, Kind::Bot, token.to_owned())),
                "{ua}"
            );
        }
    }

    #[test]
    fn signs_of_the_form_are_graded() {
        let cases = [
            ("", Grade::Weak),
            ("   ", Grade::Weak),
            // A program: no browser, device, OS or known app named.
            ("Zyborg/1.0", Grade::Certain),
            ("findlinks/2.0 (+http://wortschatz.uni-leipzig.de/findlinks/)", Grade::Certain),
            // An app nobody knows, on an OS it names.
            ("SomeApp/2.0 (Linux; Android 13; SM-A536B)", Grade::Weak),
            // A URL signed the crawlers' way, or in a `compatible;` header.
            ("Mozilla/5.0 (compatible; Acme/1.0; +https://acme.example/about)", Grade::Certain),
            ("Mozilla/5.0 (compatible; Genieo/1.0 http://www.genieo.com/webfilter.html)", Grade::Certain),
            // A domain as a product of its own.
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.0 Safari/537.36 Criticalcss.com/2.0.0", Grade::Certain),
            // A URL or an address in a browser's form.
            ("Mozilla/5.0 (Windows NT 6.1; WOW64; https://top.mail.ru/passremind) AppleWebKit/537.22 (KHTML, like Gecko)", Grade::Likely),
            ("Mozilla/5.0 (X11; Linux) Acme ops@acme.example", Grade::Likely),
            // Nothing but Mozilla and `compatible; Name/version`: the crawlers' dress.
            ("Mozilla/5.0 (compatible; Zeppelin/1.0)", Grade::Certain),
            ("Mozilla/5.0 (compatible; Zeppelin/2.1; research)", Grade::Certain),
            // Without its version, or with more after it, only likely.
            ("Mozilla/5.0 (compatible; Zeppelin)", Grade::Likely),
            ("Mozilla/5.0 (compatible; Zeppelin/1.0) AppleWebKit/537.36", Grade::Likely),
            // `Mozilla/` alone, or before a program's name, is no browser: a browser writes its
            // platform after it.
            ("Mozilla/5.0", Grade::Certain),
            ("Mozilla/5.0 Zeppelin/1.0", Grade::Certain),
            ("Mozilla/5.0 zeppelin_probe", Grade::Certain),
            // With a comment that names no platform, only likely: a handset or desktop app may
            // write one.
            ("Mozilla/5.0 (Zeppelin Sync)", Grade::Likely),
            // Chrome 31 never ran on Windows 10.
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/31.0.1650.63 Safari/537.36", Grade::Weak),
        ];
        for (ua, want) in cases {
            assert_eq!(grade(ua), Some(want), "{ua:?}");
        }
        // The reason names the program, not the `Mozilla/5.0` it wears.
        assert_eq!(
            signal("Mozilla/5.0 Zeppelin/1.0").map(|s| s.2),
            Some("not a browser: Zeppelin".to_string())
        );
        assert_eq!(
            signal("Mozilla/5.0").map(|s| s.2),
            Some("not a browser: Mozilla".to_string())
        );
        // An OS or a device after `Mozilla/` keeps the browser form.
        assert_eq!(grade("Mozilla/5.0 (Inferno) Charon/4.0"), None);
        assert_eq!(grade("Mozilla/5.0 (Linux; Android 13) Zeppelin/1.0"), None);
        // A version's dots are no domain.
        assert_eq!(
            grade("Mozilla/5.0 (Nintendo 3DS; U; ; en) Version/1.7610.EU"),
            None
        );
        assert_eq!(signal_of(None), Some(Signal::no_user_agent()));
        assert_eq!(Signal::no_user_agent().describe(), "weak: (no user agent)");
    }

    #[test]
    fn ecosia_version_after_at_sign_is_not_an_email_address() {
        // The real-browser corpus caught this: `android@150.0.0.0` is a version, not an address.
        let ecosia = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/150.0.0.0 Mobile Safari/537.36 (Ecosia android@150.0.0.0)";
        assert_eq!(signal(ecosia), None);
    }

    #[test]
    fn instagram_locale_calendar_is_not_an_email_address() {
        let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                  Mobile/15E148 Instagram 307.0.0.34.111 (iPhone14,5; iOS 17_1; en_US@calendar=gregorian; en-US; scale=3.00; 1170x2532; 532277017)";
        let read = UserAgent::parse(ua);
        assert_eq!(read.reading().signal, None);
        assert_eq!(read.reading().client, Some("instagram"));
    }

    #[test]
    fn phone_models_named_with_crawler_words_are_phones() {
        // Makers name phones and tablets with any word; the model item of an Android comment is
        // a device, unless a crawler writes its own version, URL or `compatible` there.
        for ua in [
            "Mozilla/5.0 (Linux; Android 12; Robo Bot 8 Build/SP1A.210812.016) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Mobile Safari/537.36",
            "Mozilla/5.0 (Linux; Android 10; SPIDER X2) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/110.0.5481.153 Mobile Safari/537.36",
            "Mozilla/5.0 (Linux; U; Android 8.1.0; en-us; KidBot_Tab7 Build/O11019) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/61.0.3163.98 Safari/537.36",
            "Mozilla/5.0 (Linux; Android 9; Crawler Pro 5; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/96.0.4664.45 Mobile Safari/537.36",
            // A `+` after the model's number is part of its name, not a crawler's signature.
            "Mozilla/5.0 (Linux; Android 8.1.0; Kids bot 60+ Build/O11019) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.110 Mobile Safari/537.36",
        ] {
            assert_eq!(signal(ua), None, "{ua}");
        }
        for ua in [
            "Mozilla/5.0 (Linux; Android 10; K; ExampleBot/1.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
            "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (Linux; Android 11; compatible; AcmeSpider +https://acme.example/spider) AppleWebKit/537.36",
            "Mozilla/5.0 (Linux; Android 11; AcmeSpider +ops[at]acme.example) AppleWebKit/537.36",
        ] {
            assert_eq!(grade(ua), Some(Grade::Certain), "{ua}");
        }
    }

    #[test]
    fn app_names_in_their_own_web_view_are_apps() {
        // An app that embeds a web view appends its name, and document scanners, price monitors
        // or code checkers are apps people use; outside a web view the same word is a tool's.
        for ua in [
            "Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/UQ1A.240105.004; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 DocScanner/3.1.0",
            "Mozilla/5.0 (Linux; Android 13; SM-A146B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.193 Mobile Safari/537.36 PriceMonitor/2.4.1",
        ] {
            assert_eq!(signal(ua), None, "{ua}");
        }
        for ua in [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 SiteScanner/1.0",
            "Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/UQ1A.240105.004; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 ExampleBot/1.0",
        ] {
            assert_eq!(grade(ua), Some(Grade::Certain), "{ua}");
        }
    }

    #[test]
    fn people_of_issue_27_never_reach_certain() {
        // Feature phones that write only a model and a Java profile, a filtering proxy's domain
        // after a complete header, small browsers naming their homepage (sources in
        // tests/corpus/categories.tsv).
        let feature_phones = [
            "SAMSUNG-GT-E1200/1.0 Profile/MIDP-2.0 Configuration/CLDC-1.1",
            "Micromax X1i Profile/MIDP-2.0 Configuration/CLDC-1.1",
            "BenQ-CF61/1.00/WAP2.0/MIDP2.0/CLDC1.0",
            "ZTE-F160/Build.001 MIDP2.0 CLDC1.1",
            "SEC-SGHX210/1.0 UP.Link/6.3.1.13.0",
            "portalmmm/2.0 N410i(c20;TB)",
        ];
        for ua in feature_phones {
            let read = UserAgent::parse(ua);
            assert_eq!(read.reading().client, Some("feature_phone"), "{ua}");
            assert_eq!(read.reading().signal, None, "{ua}");
        }
        for ua in [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 corp.example.com",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0 example.net",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15 domain=example.org",
            "Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US) AppleWebKit/533.3 (KHTML, like Gecko) QtWeb Internet Browser/3.7 http://www.QtWeb.net",
            "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1; Avant Browser [avantbrowser.com]; .NET CLR 1.1.4322)",
        ] {
            assert_eq!(grade(ua), Some(Grade::Likely), "{ua}");
        }
        // A domain with a version or a path after a browser's header is a tool signing its name.
        for ua in [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 sitespeed.io/30.0.0",
            "Mozilla/5.0 (iPad; CPU OS 15_3_1 like Mac OS X) adbeat.com/policy AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.3.1 Mobile/15E148 Safari/604.1",
        ] {
            assert_eq!(grade(ua), Some(Grade::Certain), "{ua}");
        }
    }

    #[test]
    fn a_firmware_label_is_no_domain() {
        // `.rus` in a build label is a word going on, not `.ru` with a plural.
        for ua in [
            "Mozilla/5.0 (Linux; Android 4.4.2; TB-700 Build/KOT49H.rus.acme.20140101) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/44.0.2403.133 Safari/537.36",
            "Mozilla/5.0 Linux; Android 4.2.2; TB-800 Build/V2.0.JELLYBEAN.rus.acme AppleWebKit/537.36 KHTML, like Gecko Chrome/44.0.2403.133 Safari/537.36",
        ] {
            assert_eq!(signal(ua), None, "{ua}");
        }
    }

    #[test]
    fn compatible_inside_the_engine_comment_is_a_dressed_fetcher() {
        assert_eq!(
            signal("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko; compatible; AcmeSnap/1.2) Chrome/120.0.0.0 Safari/537.36"),
            Some((Grade::Certain, Kind::Bot, "like Gecko; compatible".into()))
        );
        // A named crawler in the same place is reported by its name.
        assert_eq!(
            signal("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36"),
            Some((Grade::Certain, Kind::Bot, "bingbot".into()))
        );
    }

    #[test]
    fn a_long_header_is_cut_on_a_character_boundary() {
        let long = "é".repeat(40_000);
        let ua = UserAgent::parse(long);
        assert!(ua.len() <= usize::from(u16::MAX));
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::super::*;
        use crate::ua::samples::platform;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(ua in "\\PC{0,200}") {
                let read = UserAgent::parse(ua.as_str());
                let _ = read.products().count() + read.comments().count();
                let _ = platform(&ua);
            }

            #[test]
            fn reading_is_the_same_however_the_header_is_cased(ua in "[ -~]{0,120}") {
                // The patterns are case-insensitive; boundaries look only at letters and digits.
                let lower = UserAgent::parse(ua.to_ascii_lowercase());
                let upper = UserAgent::parse(ua.to_ascii_uppercase());
                prop_assert_eq!(lower.reading().signal.as_ref().map(|s| s.grade), upper.reading().signal.as_ref().map(|s| s.grade));
                prop_assert_eq!(lower.reading().client, upper.reading().client);
            }
        }
    }
}
