#!/usr/bin/env python3
"""Regenerates the labelled User-Agent corpus in crates/clickgate-core/tests/corpus/.

Inputs (none is kept in the repository except the templates; see the corpus README):
  --user-agents DIR...  unpacked `npm pack user-agents@VERSION` packages (BSD-2-Clause)
  --ua-parser-js DIR    the `test/` folder of ua-parser-js 1.0.39 (MIT)
  --woothee DIR         the `woothee/testsets/` folder of the woothee npm package 1.11.1 (Apache-2.0)

Outputs:
  browsers-user-agents.txt  real browsers, sorted and front-coded: `N rest` is the previous line's
                            first N characters followed by `rest`
  people-ua-parser-js.tsv   category, label, User-Agent
  people-woothee.tsv        category, label, User-Agent
  bots-woothee.tsv          category, label, User-Agent
  people-templates.tsv      category, client, User-Agent, expanded from inapp-templates.tsv
"""
import argparse
import json
import os
import sys

import yaml

HERE = os.path.join(os.path.dirname(__file__), "..", "crates", "clickgate-core", "tests", "corpus")

# ua-parser-js's browser names, grouped as the corpus counts them.
INAPP = {"Facebook", "Instagram", "TikTok", "Line", "WeChat", "KAKAOTALK", "KAKAOSTORY", "NAVER",
         "Twitter", "Snapchat", "LinkedIn", "weibo", "Alipay", "Klarna", "GSA", "Electron"}
REGIONAL = {"Baidu", "Yandex", "UCBrowser", "Samsung Internet", "QQBrowser", "QQBrowserLite",
            "Huawei Browser", "Sogou Explorer", "Sogou Mobile", "360 Browser", "MIUI Browser",
            "Vivo Browser", "HeyTap", "Quark", "Coc Coc", "Whale", "Opera Mini", "Silk", "Vivaldi",
            "DuckDuckGo", "Smart Lenovo Browser", "LBBROWSER", "2345Explorer", "Maxthon", "Puffin",
            "Opera Mobi", "Opera Coast", "Opera Touch", "Opera GX"}
FEATURE = {"UP.Browser", "NetFront", "Obigo", "Polaris", "Jasmine", "GoBrowser", "Doris",
           "NokiaBrowser", "OviBrowser", "Blazer", "Bolt", "Links", "Lynx", "w3m"}
# Automation that ua-parser-js names as a browser: on the bots side.
AUTOMATION = {"Chrome Headless", "PhantomJS", "Java", "Wget", "urllib"}
# Fixtures labelled by their OS only whose client is a tool.
AUTOMATION_UA = ["HeadlessChrome/", "curl/"]

ANDROID = [("14", "SM-S918B", "UP1A.231005.007"), ("13", "SM-A536B", "TP1A.220624.014"),
           ("12", "Pixel 6", "SQ3A.220705.004"), ("11", "Redmi Note 9 Pro", "RKQ1.200826.002"),
           ("10", "ELE-L29", "HUAWEIELE-L29"), ("13", "CPH2451", "TP1A.220905.001"),
           ("12", "V2120", "SP1A.210812.003"), ("14", "Pixel 8 Pro", "AP1A.240305.019"),
           ("9", "SM-J730F", "PPR1.180610.011"), ("11", "moto g(30)", "RRMS31.Q1-4-33-3"),
           ("13", "2201117TY", "TKQ1.221114.001"), ("10", "LM-Q720", "QKQ1.200108.002")]
IOS = ["15_7_9", "16_6_1", "17_1_2", "17_4", "17_6_1", "18_0", "18_1"]
IPHONES = ["iPhone12,1", "iPhone13,2", "iPhone14,5", "iPhone15,2", "iPhone16,1"]
CHROME = ["109.0.5414.117", "114.0.5735.196", "118.0.5993.111", "120.0.6099.144",
          "124.0.6367.82", "128.0.6613.127", "131.0.6778.135"]


def tsv(name, rows):
    with open(os.path.join(HERE, name), "w") as f:
        for row in sorted(set(rows)):
            f.write("\t".join(row) + "\n")
    print(name, len(set(rows)), file=sys.stderr)


def user_agents(dirs):
    seen = set()
    for d in dirs:
        with open(os.path.join(d, "dist", "user-agents.json")) as f:
            seen |= {e["userAgent"] for e in json.load(f)}
    lines, prev = [], ""
    for ua in sorted(seen):
        n = 0
        while n < min(len(ua), len(prev)) and ua[n] == prev[n]:
            n += 1
        lines.append(f"{n} {ua[n:]}")
        prev = ua
    with open(os.path.join(HERE, "browsers-user-agents.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("browsers-user-agents.txt", len(seen), file=sys.stderr)


def ua_parser_js(folder):
    rows, bots = [], []
    # The media-player fixtures are players, not browsers; only the HTTP tools among them are kept,
    # on the bots side.
    for name in ["browser", "device", "os", "engine", "cpu", "mediaplayer"]:
        with open(os.path.join(folder, f"{name}-test.json")) as f:
            for e in json.load(f):
                ua = e["ua"].strip()
                label = e["expect"].get("name") if name in ("browser", "mediaplayer") else None
                if label in AUTOMATION or any(t in ua for t in AUTOMATION_UA):
                    bots.append(("automation", label or e["desc"], ua))
                    continue
                if name == "mediaplayer":
                    continue
                category = ("inapp" if label in INAPP else "regional" if label in REGIONAL
                            else "feature_phone" if label in FEATURE else "browser")
                rows.append((category, f"{name}:{label or e['desc']}", ua))
    # The same header can stand under several fixtures: keep its first label.
    first = {}
    for row in rows:
        first.setdefault(row[2], row)
    tsv("people-ua-parser-js.tsv", first.values())
    return bots


def woothee(folder):
    people, bots = [], []
    for file in sorted(os.listdir(folder)):
        with open(os.path.join(folder, file)) as f:
            for e in yaml.safe_load(f) or []:
                ua, cat = str(e.get("target") or "").strip(), e.get("category")
                if not ua or cat == "UNKNOWN":
                    continue
                name = e.get("name", "")
                if cat in ("crawler", "misc") or name == "Mobile Transcoder":
                    bots.append((cat, name, ua))
                elif name == "UNKNOWN":
                    # woothee could not name a browser: not labelled people (Instapaper's fetcher,
                    # an aggregator bot, an RSS app are among them).
                    continue
                else:
                    kind = "feature_phone" if cat == "mobilephone" else "browser"
                    people.append((kind, f"{cat}:{name}", ua))
    tsv("people-woothee.tsv", people)
    return bots


def templates():
    rows = []
    with open(os.path.join(HERE, "inapp-templates.tsv")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            client, category, template = line.rstrip("\n").split("\t")
            ios_shape = "{ios}" in template
            for k in range(21 if ios_shape else 24):
                android, model, build = ANDROID[k % len(ANDROID)]
                ios = IOS[k % len(IOS)]
                values = {"{android}": android, "{model}": model, "{build}": build,
                          "{chrome}": CHROME[(k * 3) % len(CHROME)], "{ios}": ios,
                          "{iosdot}": ios.replace("_", "."), "{iphone}": IPHONES[(k * 2) % len(IPHONES)],
                          "{v}": str(10 + (k * 7) % 90)}
                ua = template
                for key, value in values.items():
                    ua = ua.replace(key, value)
                rows.append((category, client, ua))
    tsv("people-templates.tsv", rows)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--user-agents", nargs="+", required=True)
    p.add_argument("--ua-parser-js", required=True)
    p.add_argument("--woothee", required=True)
    a = p.parse_args()
    user_agents(a.user_agents)
    bots = ua_parser_js(a.ua_parser_js) + woothee(a.woothee)
    tsv("bots-labelled.tsv", bots)
    templates()


if __name__ == "__main__":
    main()
