//! What a click's request showed of the software that sent it, beyond its User-Agent: the
//! headers and connection facts the `spoof` filter reads, kept in one string.

use std::net::IpAddr;

/// A request size limit, with the others in the click's module: past it a request is refused
/// before anything else is read. Here because [`Sent`]'s spans are sized by it.
pub const MAX_HEADER_VALUE_LEN: usize = 4096;

/// The request headers that show what software sent a click beyond its User-Agent, in the order
/// [`Sent`] holds them: fetch metadata, the Chromium client hints, and the content
/// negotiation every browser does on a navigation.
pub(crate) const SENT_HEADERS: [&str; 11] = [
    "sec-fetch-site",
    "sec-fetch-mode",
    "sec-fetch-dest",
    "sec-fetch-user",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "accept",
    "accept-language",
    "accept-encoding",
    "upgrade-insecure-requests",
];

/// The decision log's names of [`Sent`]'s connection facts.
pub(crate) const HTTP_PROTOCOL: &str = "http_protocol";
pub(crate) const TLS_VERSION: &str = "tls_version";
pub(crate) const TLS_CIPHER: &str = "tls_cipher";
pub(crate) const PLAIN_HTTP: &str = "plain_http";

/// The names of the texts a [`Sent`] holds, in its order: [`SENT_HEADERS`], then the connection
/// facts the runtime gives as text.
pub(crate) const SENT_TEXTS: [&str; SENT_HEADERS.len() + 3] = {
    let mut all = [""; SENT_HEADERS.len() + 3];
    let mut i = 0;
    while i < SENT_HEADERS.len() {
        all[i] = SENT_HEADERS[i];
        i += 1;
    }
    all[i] = HTTP_PROTOCOL;
    all[i + 1] = TLS_VERSION;
    all[i + 2] = TLS_CIPHER;
    all
};

/// Where [`Sent::text`] holds the connection facts.
pub(crate) const AT_HTTP_PROTOCOL: usize = SENT_HEADERS.len();
pub(crate) const AT_TLS_VERSION: usize = SENT_HEADERS.len() + 1;
pub(crate) const AT_TLS_CIPHER: usize = SENT_HEADERS.len() + 2;

/// What a click's request showed of the software that sent it: the headers of [`SENT_HEADERS`]
/// and what the runtime says of the connection. A fact the runtime does not give (locally, or over
/// plain HTTP) is `None`, never a guess, so its absence is never held against the click.
///
/// The texts of [`SENT_TEXTS`] stand one after another in one string: one allocation a click,
/// where a string each cost fourteen, and as many frees. Each text is at most
/// [`MAX_HEADER_VALUE_LEN`] bytes (the edge refuses a longer header before it gets here), so the
/// whole fits the `u16` ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    all: String,
    /// Where each text ends in `all`; it starts where the one before it ends.
    ends: [u16; SENT_TEXTS.len()],
    /// One bit a text the request carried: an absent one and an empty one differ.
    given: u16,
    /// The link came over plain HTTP to a host other than this machine: browsers send neither
    /// fetch metadata nor client hints there, so their absence says nothing.
    pub(crate) plain_http: bool,
}

impl Sent {
    /// From the request: `header` reads one of [`SENT_HEADERS`], `url` is the link as received,
    /// and the connection facts are the runtime's (`request.cf`'s `httpProtocol`, `tlsVersion`
    /// and `tlsCipher`; an empty one is none).
    pub fn read<'a>(
        header: impl Fn(&str) -> Option<&'a str>,
        url: &str,
        http_protocol: Option<&str>,
        tls_version: Option<&str>,
        tls_cipher: Option<&str>,
    ) -> Sent {
        let mut texts = [None; SENT_TEXTS.len()];
        for (text, name) in texts.iter_mut().zip(SENT_HEADERS) {
            *text = header(name);
        }
        texts[AT_HTTP_PROTOCOL] = http_protocol;
        texts[AT_TLS_VERSION] = tls_version;
        texts[AT_TLS_CIPHER] = tls_cipher;
        Sent::of(texts, url)
    }

    /// [`Sent::read`] past its lookups. Not inlined: the Worker reads a click in two places
    /// (module start and the fetch handler), and one copy serves both.
    #[inline(never)]
    fn of(mut texts: [Option<&str>; SENT_TEXTS.len()], url: &str) -> Sent {
        for at in [AT_HTTP_PROTOCOL, AT_TLS_VERSION, AT_TLS_CIPHER] {
            texts[at] = texts[at].filter(|v| !v.trim().is_empty());
        }
        Sent {
            plain_http: plain_http(url),
            ..Sent::from_texts(texts)
        }
    }

    /// The texts of [`SENT_TEXTS`]' places, in one string of their total length. A text past
    /// [`MAX_HEADER_VALUE_LEN`] keeps its first bytes up to it, cut at a character's start.
    fn from_texts(texts: [Option<&str>; SENT_TEXTS.len()]) -> Sent {
        let len = texts
            .iter()
            .flatten()
            .map(|t| t.len().min(MAX_HEADER_VALUE_LEN));
        let mut sent = Sent {
            all: String::with_capacity(len.sum()),
            ..Sent::default()
        };
        for (at, text) in texts.into_iter().enumerate() {
            if let Some(text) = text {
                sent.all.push_str(bounded(text));
                sent.given |= 1 << at;
            }
            // Below u16::MAX: each text is bounded (see the assertion below `Sent`).
            sent.ends[at] = sent.all.len() as u16;
        }
        sent
    }

    /// The text at `at` of [`SENT_TEXTS`], when the request carried it.
    pub(crate) fn text(&self, at: usize) -> Option<&str> {
        let end = *self.ends.get(at)?;
        if self.given & 1 << at == 0 {
            return None;
        }
        let start = at.checked_sub(1).map_or(0, |before| self.ends[before]);
        self.all.get(usize::from(start)..usize::from(end))
    }

    /// [`Sent::text`]'s bytes: what the `spoof` filter reads on every click, where the text
    /// would check its character boundaries again on each lookup. They stand between two
    /// character boundaries of the string.
    pub(crate) fn bytes(&self, at: usize) -> Option<&[u8]> {
        let end = usize::from(*self.ends.get(at)?);
        if self.given & 1 << at == 0 {
            return None;
        }
        let start = at
            .checked_sub(1)
            .map_or(0, |before| usize::from(self.ends[before]));
        self.all.as_bytes().get(start..end)
    }

    /// One of [`SENT_HEADERS`]' values, when the request carried it.
    pub fn header(&self, name: &str) -> Option<&str> {
        SENT_HEADERS
            .iter()
            .position(|n| *n == name)
            .and_then(|at| self.text(at))
    }

    /// `request.cf.httpProtocol`: `HTTP/1.1`, `HTTP/2`, `HTTP/3`.
    pub fn http_protocol(&self) -> Option<&str> {
        self.text(AT_HTTP_PROTOCOL)
    }

    /// `request.cf.tlsVersion` and `tlsCipher`: `TLSv1.3`, `AEAD-AES128-GCM-SHA256`.
    pub fn tls_version(&self) -> Option<&str> {
        self.text(AT_TLS_VERSION)
    }

    pub fn tls_cipher(&self) -> Option<&str> {
        self.text(AT_TLS_CIPHER)
    }

    /// Every fact the request carried, as the decision log names them, in a fixed order.
    pub(crate) fn fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let plain = self.plain_http.then_some((PLAIN_HTTP, "true"));
        (0..SENT_TEXTS.len())
            .filter_map(|at| Some((SENT_TEXTS[at], self.text(at)?)))
            .chain(plain)
    }

    /// Read back from [`Sent::fields`]' names (the decision log's `sent` object).
    pub(crate) fn from_fields<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Sent {
        Sent {
            plain_http: get(PLAIN_HTTP) == Some("true"),
            ..Sent::from_texts(SENT_TEXTS.map(get))
        }
    }
}

// Every text at its longest fits `Sent::ends`, and each has a bit of `Sent::given`.
const _: () = assert!(SENT_TEXTS.len() * MAX_HEADER_VALUE_LEN <= u16::MAX as usize);
const _: () = assert!(SENT_TEXTS.len() <= u16::BITS as usize);

/// `text`, or its first bytes up to [`MAX_HEADER_VALUE_LEN`] cut at a character's start.
fn bounded(text: &str) -> &str {
    let mut end = text.len().min(MAX_HEADER_VALUE_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Whether `url` is plain HTTP to a host that is not this machine (browsers treat `localhost` and
/// loopback addresses as secure, and send them what they send over HTTPS).
fn plain_http(url: &str) -> bool {
    let Some(rest) = url
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("http://"))
        .map(|_| &url[7..])
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    let local = host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    !local
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Browsers send fetch metadata and client hints to secure origins only, and a loopback
    /// host is one even over plain HTTP.
    #[test]
    fn plain_http_is_a_remote_host_without_tls() {
        for (url, plain) in [
            ("http://clicks.example/c?x=https://a", true),
            ("HTTP://clicks.example:8080/c", true),
            ("http://user@10.0.0.1/c", true),
            ("https://clicks.example/c", false),
            ("http://localhost:8787/c", false),
            ("http://app.localhost/c", false),
            ("http://127.0.0.1:8787/c", false),
            ("http://[::1]:8787/c", false),
            ("/c?offer_id=1", false),
            ("", false),
        ] {
            assert_eq!(super::plain_http(url), plain, "{url}");
        }
    }
}
