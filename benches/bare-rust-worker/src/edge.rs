use std::borrow::Cow;

use worker::event;
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::JsValue;
use worker::worker_sys::web_sys;

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The fetch handler, called with the runtime's request (the entry module drops env and ctx,
/// which this Worker never reads).
#[wasm_bindgen(js_name = fetch)]
#[allow(unreachable_pub)] // wasm-bindgen exports only `pub` functions
pub fn handle(req: web_sys::Request) -> Result<JsValue, JsValue> {
    let url = req.url();
    let query = query_of(&url);
    #[cfg(feature = "log")]
    let offer = {
        let mut link = Link::default();
        for (name, value) in pairs(query) {
            let slot = match name.as_ref() {
                "offer_id" => &mut link.offer_id,
                "aff_id" => &mut link.aff_id,
                "source_id" => &mut link.source_id,
                "sub1" => &mut link.sub1,
                _ => continue,
            };
            // URLSearchParams.get answers the first.
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        log::write(&req, &link);
        link.offer_id.unwrap_or_default()
    };
    #[cfg(not(feature = "log"))]
    let offer = pairs(query)
        .find(|(name, _)| name == "offer_id")
        .map(|(_, value)| value)
        .unwrap_or_default();
    redirect(&offer)
}

fn redirect(offer: &str) -> Result<JsValue, JsValue> {
    let headers = web_sys::Headers::new()?;
    headers.set(
        "location",
        &format!("https://shop.example/landing?offer={offer}"),
    )?;
    let init = web_sys::ResponseInit::new();
    init.set_status(302);
    init.set_headers(&headers);
    Ok(web_sys::Response::new_with_opt_str_and_init(None, &init)?.into())
}

/// The parameters the log line carries.
#[cfg(feature = "log")]
#[derive(Default)]
struct Link<'a> {
    offer_id: Option<Cow<'a, str>>,
    aff_id: Option<Cow<'a, str>>,
    source_id: Option<Cow<'a, str>>,
    sub1: Option<Cow<'a, str>>,
}

fn query_of(url: &str) -> &str {
    let Some((_, rest)) = url.split_once('?') else {
        return "";
    };
    rest.split_once('#').map_or(rest, |(query, _)| query)
}

/// The query's pairs, decoded as URLSearchParams decodes them.
fn pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(name), decode(value))
    })
}

fn decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(feature = "log")]
mod log {
    use std::cell::RefCell;

    use worker::js_sys::Date;
    use worker::wasm_bindgen::JsValue;
    use worker::worker_sys::ext::RequestExt as _;
    use worker::worker_sys::web_sys;

    use super::Link;

    thread_local! {
        // An isolate runs one request at a time on one thread; the pool lives as long as it.
        static RANDOM: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
    }

    /// The line benches/bare-logging-worker.js writes, field for field.
    pub(super) fn write(req: &web_sys::Request, link: &Link<'_>) {
        let headers = req.headers();
        let header = |name| headers.get(name).ok().flatten();
        let cf = req.cf();
        let country = cf.as_ref().and_then(|cf| cf.country().ok().flatten());
        let asn = cf.as_ref().and_then(|cf| cf.asn().ok().flatten());
        let mut line = String::with_capacity(512);
        line.push_str(r#"{"event":"click","ts":""#);
        line.push_str(&iso_ms(Date::now() as u64));
        line.push_str(r#"","transaction_id":""#);
        uuid_v4(&mut line);
        line.push_str(
            r#"","verdict":"redirect","score":0,"declined":false,"monitor":false,"reasons":[]"#,
        );
        field(&mut line, "offer_id", link.offer_id.as_deref().or(Some("")));
        field(&mut line, "aff_id", link.aff_id.as_deref());
        field(&mut line, "source_id", link.source_id.as_deref());
        field(&mut line, "sub1", link.sub1.as_deref());
        field(&mut line, "ip", header("cf-connecting-ip").as_deref());
        if let Some(country) = country {
            field(&mut line, "country", Some(&country));
        }
        line.push_str(r#","asn":""#);
        match asn {
            Some(asn) => line.push_str(&asn.to_string()),
            None => line.push_str("undefined"),
        }
        line.push('"');
        field(&mut line, "user_agent", header("user-agent").as_deref());
        line.push_str(r#","preview":false}"#);
        web_sys::console::log_1(&JsValue::from_str(&line));
    }

    /// `,"key":"value"`, or `,"key":null`.
    fn field(line: &mut String, key: &str, value: Option<&str>) {
        line.push_str(",\"");
        line.push_str(key);
        line.push_str("\":");
        let Some(value) = value else {
            line.push_str("null");
            return;
        };
        line.push('"');
        for c in value.chars() {
            match c {
                '"' => line.push_str("\\\""),
                '\\' => line.push_str("\\\\"),
                c if (c as u32) < 0x20 => line.push_str(&format!("\\u{:04x}", c as u32)),
                c => line.push(c),
            }
        }
        line.push('"');
    }

    /// `2026-11-23T10:04:05.123Z`, as `Date.prototype.toISOString` writes it.
    fn iso_ms(ms: u64) -> String {
        let secs = ms / 1000;
        let rem = secs % 86_400;
        // Days to a civil date (Howard Hinnant's algorithm), for days since 1970.
        let z = (secs / 86_400) as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            ms % 1000
        )
    }

    /// A random (version 4) UUID, as `crypto.randomUUID` gives, from random bytes drawn 4 KiB at
    /// a time as clickgate draws its nonces.
    fn uuid_v4(line: &mut String) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut b = [0u8; 16];
        RANDOM.with(|pool| {
            let (bytes, used) = &mut *pool.borrow_mut();
            if bytes.len() < *used + b.len() {
                bytes.resize(4096, 0);
                // A failed draw leaves zeros: the id only has to look like one here.
                let _ = getrandom::fill(bytes);
                *used = 0;
            }
            b.copy_from_slice(&bytes[*used..*used + 16]);
            *used += 16;
        });
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        for (i, byte) in b.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                line.push('-');
            }
            line.push(HEX[usize::from(byte >> 4)] as char);
            line.push(HEX[usize::from(byte & 15)] as char);
        }
    }
}
