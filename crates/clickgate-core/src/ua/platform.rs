//! The OS and the browser a header claims, with their major versions, read from the markers the
//! patterns' pass found.

/// Operating system and browser with their major versions, as far as the User-Agent tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Platform {
    pub(crate) os: Option<(Os, u32)>,
    pub browser: Option<(Browser, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Android,
    Ios,
    Windows,
    MacOs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Browser {
    Chrome,
    Firefox,
    Safari,
    Edge,
}

impl Os {
    pub fn name(self) -> &'static str {
        match self {
            Os::Android => "android",
            Os::Ios => "ios",
            Os::Windows => "windows",
            Os::MacOs => "macos",
        }
    }
}

impl Browser {
    pub fn name(self) -> &'static str {
        match self {
            Browser::Chrome => "chrome",
            Browser::Firefox => "firefox",
            Browser::Safari => "safari",
            Browser::Edge => "edge",
        }
    }
}

/// The number that starts `text` (`"17_4 like"` → 17).
fn leading_number(text: &str) -> Option<u32> {
    let digits: &str = &text[..text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len())];
    digits.parse().ok()
}

/// The markers of the OS and browser versions, found in the same pass as the patterns (ASCII
/// case-insensitive, as they are).
pub(super) const MARKERS: [&str; 12] = [
    "android ",
    "iphone os ",
    "cpu os ",
    "windows nt ",
    "mac os x ",
    "edg/",
    "firefox/",
    "fxios/",
    "chrome/",
    "crios/",
    "safari/",
    "version/",
];
const ANDROID_OS: usize = 0;
const IPHONE_OS: usize = 1;
const CPU_OS: usize = 2;
const WINDOWS_NT: usize = 3;
const MAC_OS_X: usize = 4;
const EDG: usize = 5;
const FIREFOX: usize = 6;
const FXIOS: usize = 7;
const CHROME: usize = 8;
const CRIOS: usize = 9;
const SAFARI: usize = 10;
const VERSION_TOKEN: usize = 11;

/// Where each marker first stands in the header (`u16::MAX`: nowhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Marks(pub(super) [u16; MARKERS.len()]);

impl Default for Marks {
    fn default() -> Marks {
        Marks([u16::MAX; MARKERS.len()])
    }
}

impl Marks {
    fn at(&self, marker: usize) -> Option<usize> {
        let at = self.0[marker];
        (at != u16::MAX).then_some(usize::from(at))
    }

    /// The number right after the marker's first occurrence (`Android 14` → 14).
    fn version(&self, ua: &str, marker: usize) -> Option<u32> {
        self.at(marker)
            .and_then(|i| ua.get(i + MARKERS[marker].len()..))
            .and_then(leading_number)
    }
}

pub(super) fn platform_at(ua: &str, marks: &Marks) -> Platform {
    let os = if let Some(v) = marks.version(ua, ANDROID_OS) {
        Some((Os::Android, v))
    } else if let Some(v) = marks
        .version(ua, IPHONE_OS)
        .or_else(|| marks.version(ua, CPU_OS))
    {
        Some((Os::Ios, v))
    } else if let Some(v) = marks.version(ua, WINDOWS_NT) {
        // NT 10 is Windows 10 and 11; 6.3 is 8.1, 6.1 is 7: report the marketing major.
        let major = match v {
            10 => 10,
            6 => {
                let minor = marks
                    .at(WINDOWS_NT)
                    .and_then(|i| ua.as_bytes().get(i + MARKERS[WINDOWS_NT].len() + 2));
                match minor {
                    Some(b'3' | b'2') => 8,
                    _ => 7,
                }
            }
            v => v,
        };
        Some((Os::Windows, major))
    } else {
        marks.version(ua, MAC_OS_X).map(|v| (Os::MacOs, v))
    };
    let browser = if let Some(v) = marks.version(ua, EDG) {
        Some((Browser::Edge, v))
    } else if let Some(v) = marks
        .version(ua, FIREFOX)
        .or_else(|| marks.version(ua, FXIOS))
    {
        Some((Browser::Firefox, v))
    } else if let Some(v) = marks
        .version(ua, CHROME)
        .or_else(|| marks.version(ua, CRIOS))
    {
        Some((Browser::Chrome, v))
    } else if marks.at(SAFARI).is_some() {
        marks
            .version(ua, VERSION_TOKEN)
            .map(|v| (Browser::Safari, v))
    } else {
        None
    };
    Platform { os, browser }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ua::samples::{platform, ANDROID, IPHONE, WINDOWS};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn platforms_and_versions() {
        assert_eq!(
            platform(IPHONE),
            Platform {
                os: Some((Os::Ios, 17)),
                browser: Some((Browser::Safari, 17))
            }
        );
        assert_eq!(
            platform(ANDROID),
            Platform {
                os: Some((Os::Android, 14)),
                browser: Some((Browser::Chrome, 124))
            }
        );
        assert_eq!(
            platform(WINDOWS),
            Platform {
                os: Some((Os::Windows, 10)),
                browser: Some((Browser::Edge, 124))
            }
        );
        let win7 = "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:52.0) Gecko/20100101 Firefox/52.0";
        assert_eq!(
            platform(win7),
            Platform {
                os: Some((Os::Windows, 7)),
                browser: Some((Browser::Firefox, 52))
            }
        );
        assert_eq!(platform("curl/8.0"), Platform::default());
    }
}
