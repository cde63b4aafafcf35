//! The people's clients the header may name: browsers, in-app browsers and desktop apps, devices'
//! own clients, link-preview fetchers and browsing agents acting for a person. Marked as the
//! patterns of `patterns.rs` are, and scanned in the same pass.

/// Browsing agents acting for a person: `Certain`, reason `ai_agent`.
#[rustfmt::skip]
pub(super) const AI_AGENTS: &[&str] = &[
    "|chatgpt-user", "|chatgpt agent", "|perplexity-user", "|claude-user", "|mistralai-user",
    "|devin|", "|manus|", "|manus-user", "|operator-user", "|gemini-deep-research",
    "|google-notebooklm", "|meta-externalagent", "|kagi-fetcher", "|duckassist", "|googleagent",
    "|amzn-user",
];

/// Link-preview fetchers: sent the redirect, marked `"preview": true`, never counted.
#[rustfmt::skip]
pub(super) const PREVIEWS: &[&str] = &[
    "slackbot", "slack-imgproxy", "facebookexternalhit", "facebookcatalog", "|facebot",
    "twitterbot", "linkedinbot", "^whatsapp|", "telegrambot", "discordbot", "skypeuripreview",
    "applebot", "pinterestbot", "|embedly", "redditbot", "|vkshare", "|iframely",
    "google-pagerenderer", "|mastodon/#", "|viber|", "snap url preview", "microsoftpreview",
    "|cardyb", "kakaotalk-scrap", "line-poker", "|skype-url-preview", "|tumblr/#", "|bitlybot",
    "|yahoo link preview", "|googleother-image", "|googlemessages/#",
];

/// People's clients by name: in-app browsers, regional browsers, desktop apps, text browsers and
/// feature phones. Recognising one outweighs a `Weak` or `Likely` sign, never a `Certain` one.
#[rustfmt::skip]
pub(super) const CLIENTS: &[(&str, &str)] = &[
    ("fban/", "facebook"), ("fbav/", "facebook"), ("fb_iab", "facebook"), ("|fbios", "facebook"),
    ("|messenger|", "facebook"), ("|instagram|", "instagram"), ("|snapchat", "snapchat"),
    ("|musical_ly", "tiktok"), ("|tiktok", "tiktok"), ("bytedancewebview", "tiktok"),
    ("|bytelocale", "tiktok"), ("|trill_", "tiktok"), ("|line/#", "line"),
    ("micromessenger", "wechat"), ("|wechat", "wechat"), ("|whatsapp|", "whatsapp"),
    ("|pinterest|", "pinterest"), ("|twitter for", "x"), ("|twitterandroid", "x"),
    ("|twitter/#", "x"), ("|naver|", "naver"), ("|naver(", "naver"), ("|whale/#", "naver"),
    ("|kakaotalk", "kakaotalk"), ("|kakaostory", "kakaotalk"), ("|telegram|", "telegram"),
    ("|linkedinapp", "linkedin"), ("|gsa/#", "google_app"), ("yabrowser", "yandex"),
    ("yasearchbrowser", "yandex"), ("|yaapp_", "yandex"), ("|yandexsearch", "yandex"),
    ("|yandex|", "yandex"), ("ucbrowser", "uc"), ("|ucweb", "uc"), ("|ubrowser/#", "uc"),
    ("|juc |", "uc"), ("samsungbrowser", "samsung"), ("baiduboxapp", "baidu"),
    ("baidubrowser", "baidu"), ("|bidubrowser", "baidu"), ("|baiduhd", "baidu"),
    ("sogoumobilebrowser", "sogou"), ("|sogousearch", "sogou"), ("|metasr|", "sogou"),
    ("mqqbrowser", "qq"), ("qqbrowser", "qq"), ("|qq/#", "qq"), ("huaweibrowser", "huawei"),
    ("|petalbrowser", "huawei"), ("|petalsearch", "huawei"), ("opera mini", "opera_mini"),
    ("|opios/#", "opera_mini"), ("opera mobi", "opera_mini"), ("|silk/#", "silk"),
    ("|vivaldi/#", "vivaldi"), ("|duckduckgo/#", "duckduckgo"), ("|ddg/#", "duckduckgo"),
    ("|ddg_android", "duckduckgo"), ("|ddg-android", "duckduckgo"),
    ("|electron/#", "electron"), ("|lynx/#", "lynx"), ("|links (", "text_browser"),
    ("|elinks", "text_browser"), ("|w3m/#", "text_browser"),
    // A Java handset's profile, with or without its hyphen (`MIDP-2.0`, `MIDP2.0/CLDC1.1`).
    ("|midp", "feature_phone"), ("|cldc", "feature_phone"), ("|j2me", "feature_phone"),
    ("|kaios", "feature_phone"), ("|series40", "feature_phone"), ("|series60", "feature_phone"),
    ("|symbianos", "feature_phone"), ("|up.browser", "feature_phone"), ("|foma|", "feature_phone"),
    ("|netfront", "feature_phone"), ("|obigo", "feature_phone"), ("|docomo/#", "feature_phone"),
    ("|kddi-", "feature_phone"), ("|softbank/#", "feature_phone"), ("|willcom", "feature_phone"),
    ("|ddipocket", "feature_phone"), ("|untrusted/#", "feature_phone"), ("|nokia", "feature_phone"),
    ("qihoobrowser", "360"), ("|qhbrowser", "360"), ("miuibrowser", "miui"),
    ("vivobrowser", "vivo"), ("heytapbrowser", "heytap"), ("|quark/#", "quark"),
    ("coc_coc_browser", "coccoc"), ("alipayclient", "alipay"), ("__weibo__", "weibo"),
    ("|rakuten", "rakuten"), ("|klarna", "klarna"),
    ("|slack/#", "electron"), ("|discord/#", "electron"),
    ("|googleapp/#", "google_app"), ("|teleca", "feature_phone"), ("|openwave", "feature_phone"),
    ("|polaris|", "feature_phone"), ("|jasmine/#", "feature_phone"), ("|brew|", "feature_phone"),
    // An operator's WAP gateway's mark, and i-mode's European portal.
    ("|up.link/#", "feature_phone"), ("|portalmmm/#", "feature_phone"),
    ("|microsoft office/#", "microsoft_office"), ("|microsoft outlook", "microsoft_office"),
    ("|ms-office", "microsoft_office"), ("|msoffice", "microsoft_office"),
];

/// A device's own client without the browser form: an app's network stack, a TV, a console, a
/// watch. People's clicks (server-side clicks of app SDKs among them), no sign.
#[rustfmt::skip]
pub(super) const DEVICES: &[&str] = &[
    "|darwin/", "|cfnetwork/", "|dalvik/", "|okhttp/", "|symbian", "|blackberry", "|tizen",
    "|hbbtv", "|roku", "|smarttv", "|smart-tv", "|playstation", "|nintendo", "|xbox", "|watchos",
    "|tvos", "|webos", "|itunes", "|server-bag", "|appletv", "|crkey", "|bravia", "|vizio",
    "|viera", "|watch3|", "|watch4|", "|watch5|", "|watch6|", "|watch7|", "|atc/#",
    // Set-top boxes and signage players, media players, a browser's own fetch stack.
    "|kreatv", "|brightsign", "|antgalio", "|espial", "|streaming player", "|applecoremedia",
    "|stagefright", "|exoplayerlib", "|mozacfetch",
];

/// Browsers that write `compatible;` and name themselves in it.
#[rustfmt::skip]
pub(super) const COMPATIBLE_BROWSERS: &[&str] = &[
    "msie", "trident/", "konqueror", "iemobile", "|ibrowse", "|abrowse", "|netpositive",
    "|webpositive", "|offbyone", "|aweb|", "|fresco", "|ncbrowser", "|oregano", "|infinet",
];

/// Browser words that make a header the browser form even without `Mozilla/`.
#[rustfmt::skip]
pub(super) const BROWSERS: &[&str] = &[
    "|opera", "|gecko/#", "applewebkit/", "|presto/#", "|netsurf", "|dillo/#", "|icab",
    "|midori", "|xombrero", "|uzbl", "|mosaic", "browser|", "|flock/#", "|sleipnir",
    "|amigavoyager", "|quicktime", "|contiki", "|opr/#", "|amaya/#",
    "|hotjava/#", "|xiino/#", "|palmscape/#", "|blazer/#", "|netscape", "|seamonkey",
    "|jig browser",
];

#[cfg(test)]
mod tests {
    use crate::ua::samples::{grade, signal, IPHONE};
    use crate::ua::{is_link_preview, Grade, Kind, UserAgent};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn ai_agents_are_their_own_kind() {
        for (ua, token) in [
            ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ChatGPT-User/1.0; +https://openai.com/bot)", "ChatGPT-User"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Devin/1.0", "Devin"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/132.0.0.0 Safari/537.36 Manus/1.0", "Manus"),
            ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Perplexity-User/1.0; +https://perplexity.ai/perplexity-user)", "Perplexity-User"),
        ] {
            assert_eq!(signal(ua), Some((Grade::Certain, Kind::AiAgent, token.to_owned())), "{ua}");
        }
        // An AI company's crawler is a crawler.
        assert_eq!(signal("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)").map(|s| s.1), Some(Kind::Bot));
    }

    #[test]
    fn people_clients_are_named_and_outweigh_weak_signs() {
        let cases = [
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBDV/iPhone14,2;FBMD/iPhone;FBSN/iOS;FBSV/17.0;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]", "facebook"),
            ("[FBAN/FB4A;FBAV/440.0.0.33.116;FBBV/123;FBDM/{density=2.75};FBLC/en_US;FBCR/T-Mobile;FBMF/samsung;FBBD/samsung;FBPN/com.facebook.katana;FBDV/SM-G991U;FBSV/13;FBOP/1;FBCA/arm64-v8a:;]", "facebook"),
            ("Mozilla/5.0 (Linux; Android 13; SM-S911B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 Snapchat/12.65.0.35 (SM-S911B; Android 13#S911BXXU3BWK5#33; gzip; )", "snapchat"),
            ("Mozilla/5.0 (Linux; Android 12; V2120 Build/SP1A.210812.003; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/112.0.5615.136 Mobile Safari/537.36 trill_310503 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly app_version/31.5.3 ByteLocale/en ByteFullLocale/en Region/US BytedanceWebview/d8a21c6", "tiktok"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Safari Line/13.16.0", "line"),
            ("Mozilla/5.0 (Linux; Android 13; 2201117TY Build/TKQ1.221114.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/111.0.5563.116 Mobile Safari/537.36 XWEB/5235 MMWEBSDK/20230701 MMWEBID/6311 MicroMessenger/8.0.40.2420(0x28002837) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64", "wechat"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [Pinterest/iOS]", "pinterest"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 NAVER(inapp; search; 1000; 12.1.3)", "naver"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 KAKAOTALK 10.2.5", "kakaotalk"),
            ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 YaBrowser/23.11.3.74.00 SA/3 Mobile Safari/537.36", "yandex"),
            ("UCWEB/2.0 (MIDP-2.0; U; zh-CN; HTC EVO 3D X515m) U2/1.0.0 UCBrowser/10.4.0.558 U2/1.0.0 Mobile", "uc"),
            ("Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36", "samsung"),
            ("Mozilla/5.0 (Linux; Android 10; ELE-AL00; HMSCore 6.11.0.302) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.1.303 Mobile Safari/537.36", "huawei"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.35.131 Chrome/118.0.5993.159 Electron/27.1.0 Safari/537.36 Sonic Slack_SSB/4.35.131", "electron"),
            ("Lynx/2.9.0dev.10 libwww-FM/2.14 SSL-MM/1.4.1 GNUTLS/3.7.8", "lynx"),
            ("Nokia303/14.87 CLDC-1.1", "feature_phone"),
            // DuckDuckGo's Android app under its own short name.
            ("ddg_android/5.180.0 (com.duckduckgo.mobile.android; Android API 34)", "duckduckgo"),
        ];
        for (ua, client) in cases {
            let read = UserAgent::parse(ua);
            assert_eq!(read.reading().client, Some(client), "{ua}");
            assert_eq!(read.reading().signal, None, "{ua}");
        }
        // A certain sign still wins: a crawler that names a portal is a crawler.
        let yandex_bot =
            UserAgent::parse("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)");
        assert_eq!(
            yandex_bot.reading().signal.as_ref().map(|s| s.grade),
            Some(Grade::Certain)
        );
    }

    #[test]
    fn search_portals_own_apps_are_people() {
        for ua in [
            "Mozilla/5.0 (Linux; arm_64; Android 12; SM-A125F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.5993.111 YaApp_Android/23.93.1 YaSearchBrowser/23.93.1 BroPP/1.0 SA/3 Mobile Safari/537.36",
            "Mozilla/5.0 (Linux; Android 12; NOH-AN00 Build/HUAWEINOH-AN00; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/99.0.4844.88 Mobile Safari/537.36 T7/13.32 SP-engine/2.70.0 baiduboxapp/13.32.0.10 (Baidu; P1 12) NABar/1.0",
            "Mozilla/5.0 (Linux; Android 10; HMA-AL00) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/88.0.4324.93 Mobile Safari/537.36 SogouMobileBrowser/5.34.1",
        ] {
            assert_eq!(grade(ua), None, "{ua}");
        }
    }

    #[test]
    fn link_previews_are_recognised() {
        for ua in [
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
            "WhatsApp/2.23.20.0 A",
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "TelegramBot (like TwitterBot)",
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36 GoogleMessages/20.2",
        ] {
            assert!(is_link_preview(Some(&UserAgent::parse(ua))), "{ua}");
        }
        assert!(!is_link_preview(Some(&UserAgent::parse(IPHONE))));
        assert!(!is_link_preview(None));
        // WhatsApp named inside a browser's header is not its preview fetcher.
        assert!(!is_link_preview(Some(&UserAgent::parse(
            "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36 WhatsApp/2.23.20.0"
        ))));
    }

    #[test]
    fn app_network_stacks_and_devices_are_not_bots() {
        for ua in [
            "Dalvik/2.1.0 (Linux; U; Android 13; SM-A536B Build/TP1A)",
            "MyApp/3.2 CFNetwork/1490.0.4 Darwin/23.2.0",
            "Roku4640X/DVP-7.70 (297.70E04154A)",
            "HbbTV/1.5.1 (+DRM;Samsung;SmartTV2021:UAU7000;T-KSU2EDEUC-1506.0;KantSU2e;)",
        ] {
            assert_eq!(signal(ua), None, "{ua}");
        }
    }

    #[test]
    fn niche_browsers_devices_and_desktop_apps_are_not_programs() {
        // Browsers without the `Mozilla/` form, TV and signage players, media stacks, a browser's
        // own fetcher: no sign. A desktop app that names its OS in short is at most weak.
        for ua in [
            "OPR/80.0.4170.0 SetTopOS/2.0, KreaTV/4.1 (Vendor, STB-100, wired)",
            "amaya/11.4 libwww/5.4.2",
            "HotJava/3.0",
            "Xiino/2.1 [en] (v. 4.1; 160x160; c16)",
            "Mozilla/5.0 (compatible; IBrowse 3.0; AmigaOS4.1)",
            // The browsers that wore the crawlers' `compatible;` dress named themselves.
            "Mozilla/3.0 (compatible; NetPositive/2.2.1; BeOS)",
            "HbbTV/1.2.1 (;;;;) Mozilla/5.0 (compatible; ANTGalio/3.3.0; Linux)",
            "HTC Streaming Player htc_asia / 1.0 / 4.1",
            "AppleCoreMedia/1.0.0.21C62 (iPhone; U; CPU OS 17_2 like Mac OS X; en_us)",
            "MozacFetch/121.0.1",
        ] {
            assert_eq!(signal(ua), None, "{ua}");
        }
        for (ua, client) in [
            ("GoogleApp/15.2.34.29.arm64", "google_app"),
            ("ACME-X10/1.0 Teleca/Q7", "feature_phone"),
            (
                "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Word 16.0.17328; Pro)",
                "microsoft_office",
            ),
        ] {
            let read = UserAgent::parse(ua);
            assert_eq!(read.reading().client, Some(client), "{ua}");
            assert_eq!(read.reading().signal, None, "{ua}");
        }
        assert_eq!(
            grade("GameLauncher/3.1.4 (Launcher) 0a1b2c3d (win10 x64)"),
            Some(Grade::Weak)
        );
    }
}
