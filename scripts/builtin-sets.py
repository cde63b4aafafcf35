#!/usr/bin/env python3
"""The built-in AS sets: writes crates/clickgate-core/src/filters/asn_sets_data.rs from
data/asn-sets.txt (each set's AS numbers as a sorted array, which the Worker searches by bisection
with nothing built at start), and checks the text against public AS data.

    python3 scripts/builtin-sets.py           # rewrite the data file
    python3 scripts/builtin-sets.py --check   # exit 1 if it is not what the text says
    python3 scripts/builtin-sets.py --verify  # check the text against the pinned sources below
    python3 scripts/builtin-sets.py --verify --quiet  # steps 1 and 2 only (`make test` runs it)

--verify installs the pinned sources once into $CLICKGATE_TOOLS/asn-sources (default
~/.cache/clickgate/tools; offline after that, a few seconds a run) and:
  1. checks every line of data/asn-sets.txt and data/people-asns.txt: the AS number is in the
     source, and the organisation name the source gives it holds the line's name token;
  2. checks no network of data/people-asns.txt is in a set (the core test holds that too);
  3. derives candidate hosting AS numbers from the source by their registered names
     (HOSTING_NAMES below) and prints how much of the candidates' address space the set covers,
     with the largest candidates left out, for review;
  4. maps the second source's cloud and VPN address ranges to AS numbers through the first and
     prints, per provider, the share of its ranges the sets cover.
It exits 1 if a line fails 1 or 2; 3 and 4 are figures for whoever edits the set. The set is kept
by hand and verified here, not generated from the patterns: data/asn-sets.txt says why.

A core test reads the text too, so a hand edit of either that is not carried to the other fails
`cargo test`.
"""

import bisect
import csv
import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "data" / "asn-sets.txt"
PEOPLE = ROOT / "data" / "people-asns.txt"
TARGET = ROOT / "crates" / "clickgate-core" / "src" / "filters" / "asn_sets_data.rs"
SETS = ("hosting", "vpn")

# The pinned sources, each checked against its hash once downloaded. Bumping one: change the
# version and hash, run --verify, fix the lines it reports, and update data/asn-sets.txt's header.
ASN_SOURCE = {
    # Address ranges to AS numbers (RouteViews, the five RIRs' delegations via the NRO) and each
    # AS's organisation name (DB-IP's IP to ASN Lite), all CC-BY-4.0.
    "npm": "@ip-location-db/asn",
    "version": "2.3.2026061719",
    "sha256": "b9425daf2f011c28f8586685d4f89166e77627e2c15fd93c6262c3e2dead6153",
}
RANGE_SOURCE = {
    # Cloud, CDN, VPN, Tor and crawler address ranges, compiled from the operators' own feeds and
    # community lists (its NOTICE names each source and its terms); only compared against here.
    "pypi": "iporigin",
    "version": "1.1.2",
    "sha256": "814efc15b14d568d65887559fc6a5dfb2677ab0b063e2b39d9ae3192f9bc6802",
}

# Hosting candidates: an AS whose registered organisation name matches one of these. Generic
# words first (a server host names itself so), then the big operators whose names say only who
# they are. Reviewed against the source: `\bhost` and not `host` (AFRIHOST, a home ISP), and
# `\bcolo(cation|crossing)` not `colo` (COLOMBIA TELECOMUNICACIONES). A name match is not proof:
# it is what the set is compared with, and data/people-asns.txt is taken out of it.
HOSTING_NAMES = [
    r"\bhost",  # hosting, Hostinger, HostPapa, Hostwinds, HostRoyale
    r"\bvps\b",
    r"\bservers?\b",
    r"\bdata ?cent(er|re)s?\b",
    r"\bcolo(cation|crossing)\b",
    r"\bdedicated\b",
    r"\bcloud\b",
    r"\bamazon\b",
    r"\bgoogle\b",
    r"\bmicrosoft\b",
    r"\boracle\b",
    r"\bdigitalocean\b",
    r"\bovh\b",
    r"\bhetzner\b",
    r"\blinode\b",
    r"\bconstant company\b",  # Vultr
    r"\balibaba\b",
    r"\btencent\b",
    r"\bhuawei\b",
    r"\bcontabo\b",
    r"\bscaleway\b",
    r"\bleaseweb\b",
    r"\bsoftlayer\b",
    r"\bionos\b",
    r"\bnetcup\b",
    r"\bquadranet\b",
    r"\bpsychz\b",
    r"\brackspace\b",
]

# The second source's labels compared per set; its `cdn`, `bot` and `tor` labels are not.
RANGE_KINDS = {"hosting": "hosting", "vpn": "vpn"}


def parse_lines(path, fields, n_min):
    """The data lines of `path`, each split into `fields` words (the last takes the rest)."""
    rows = []
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split(None, fields - 1)
        if len(words) < n_min:
            sys.exit(f"{path}:{n}: too few words: {line}")
        rows.append((n, words))
    return rows


def read_sets():
    """Each set's lines as {set: {asn: (line, token, network)}}."""
    sets = {name: {} for name in SETS}
    for n, words in parse_lines(SOURCE, 4, 2):
        if words[0] not in sets or not words[1].isdigit():
            sys.exit(f"{SOURCE}:{n}: want `<set> <AS number> <name token> <network>`")
        asn = int(words[1])
        if not 0 < asn < 2**32:
            sys.exit(f"{SOURCE}:{n}: AS{asn} is out of range")
        token = words[2] if len(words) > 2 else ""
        network = words[3] if len(words) > 3 else ""
        sets[words[0]][asn] = (n, token, network)
    return sets


def read_people():
    """data/people-asns.txt as [(line, asn, token, where, network)]."""
    people = []
    for n, words in parse_lines(PEOPLE, 4, 4):
        if not words[0].isdigit():
            sys.exit(f"{PEOPLE}:{n}: want `<AS number> <name token> <country> <network>`")
        people.append((n, int(words[0]), words[1], words[2], words[3]))
    return people


def render(sets):
    out = [
        "//! Written by scripts/builtin-sets.py from data/asn-sets.txt (its header says where the",
        "//! numbers come from and how they were compiled); edit the text and run the script.",
        "",
    ]
    for name in SETS:
        numbers = sorted(sets[name])
        out.append(f"/// The `{name}` set, sorted.")
        out.append("#[rustfmt::skip]")
        out.append(f"pub(crate) const {name.upper()}: &[u32] = &[")
        for i in range(0, len(numbers), 8):
            out.append("    " + " ".join(f"{a}," for a in numbers[i:i + 8]))
        out.append("];")
        out.append("")
    return "\n".join(out)


# --- the sources -----------------------------------------------------------------------------


def cache_dir():
    tools = os.environ.get("CLICKGATE_TOOLS") or Path.home() / ".cache" / "clickgate" / "tools"
    return Path(tools) / "asn-sources"


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetched(kind, spec, into):
    """Downloads one pinned package file into `into` with its registry's own client."""
    name, version = spec[kind], spec["version"]
    if kind == "npm":
        cmd = ["npm", "pack", f"{name}@{version}", "--pack-destination", str(into), "--silent"]
    else:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", f"{name}=={version}", "-d", str(into)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    (file,) = [p for p in into.iterdir() if p.is_file()]
    if sha256(file) != spec["sha256"]:
        sys.exit(f"{file.name}: sha256 {sha256(file)}, pinned {spec['sha256']}")
    return file


def installed(kind, spec):
    """The unpacked package's directory, installing it on first use."""
    name = spec[kind].replace("@", "").replace("/", "-")
    home = cache_dir() / f"{name}-{spec['version']}"
    if (home / ".complete").exists():
        return home
    print(f"==> installing {spec[kind]} {spec['version']} into {home} (one-time)", file=sys.stderr)
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        file = fetched(kind, spec, Path(tmp))
        if kind == "npm":
            with tarfile.open(file) as tar:
                tar.extractall(home, filter="data")
        else:
            with zipfile.ZipFile(file) as whl:
                whl.extractall(home)
    (home / ".complete").write_text(spec["sha256"] + "\n")
    return home


class AsnSource:
    """@ip-location-db/asn: each AS's organisation name and announced space, and a lookup of an
    IPv4 range's AS numbers."""

    def __init__(self, home):
        self.home = home
        self.names = {}
        self.v4 = Counter()
        self.v6 = Counter()  # in /48s
        self.starts, self.ends, self.asns = [], [], []
        with open(home / "package" / "asn-ipv4-num.csv", newline="") as f:
            for start, end, asn, org in csv.reader(f):
                start, end, asn = int(start), int(end), int(asn)
                self.names[asn] = org
                self.v4[asn] += end - start + 1
                self.starts.append(start)
                self.ends.append(end)
                self.asns.append(asn)
        with open(home / "package" / "asn-ipv6-num.csv", newline="") as f:
            for start, end, asn, org in csv.reader(f):
                asn = int(asn)
                self.names.setdefault(asn, org)
                self.v6[asn] += (int(end) - int(start) + 1) >> 80

    def overlap(self, start, end):
        """{asn: addresses} of the IPv4 range start..=end."""
        out = Counter()
        i = max(bisect.bisect_right(self.starts, start) - 1, 0)
        while i < len(self.starts) and self.starts[i] <= end:
            lo, hi = max(start, self.starts[i]), min(end, self.ends[i])
            if lo <= hi:
                out[self.asns[i]] += hi - lo + 1
            i += 1
        return out


def range_labels(home):
    """iporigin's IPv4 ranges as [(start, end, provider, kind)], read with its own loader."""
    sys.path.insert(0, str(home))
    from iporigin import _data  # noqa: E402 (the pinned, hash-checked package)

    data = _data._Dataset(_data.DATA_FILE.read_bytes())
    built = data.built_at
    ranges = [(s, e, *data.labels[label])
              for s, e, label in zip(data.v4_starts, data.v4_ends, data.v4_labels)]
    return built, ranges


# --- the checks ------------------------------------------------------------------------------


def holds(org, token):
    """Whether the organisation name holds the token (case-insensitive; `_` stands for a space)."""
    return token.replace("_", " ").lower() in org.lower()


def check_names(src, rows, label):
    """Each (line, asn, token, what) whose AS is missing or named otherwise: printed, counted."""
    failed = 0
    for line, asn, token, what in rows:
        org = src.names.get(asn)
        if org is None:
            print(f"  FAIL {label}:{line} AS{asn} ({what}): not in the source")
        elif not token or not holds(org, token):
            print(f"  FAIL {label}:{line} AS{asn} ({what}): the source names it {org!r}, "
                  f"which does not hold {token!r}")
        else:
            continue
        failed += 1
    return failed


def fmt(n):
    return f"{n:,}"


def share(part, whole):
    return f"{100 * part / whole:.1f}%" if whole else "-"


def verify(listed, quiet):
    sets = read_sets()
    people = read_people()
    src = AsnSource(installed("npm", ASN_SOURCE))
    print(f"source: {ASN_SOURCE['npm']} {ASN_SOURCE['version']} (CC-BY-4.0: RouteViews, NRO, "
          f"DB-IP): {fmt(len(src.names))} AS numbers with an organisation name")

    failed = 0
    for name in SETS:
        rows = [(n, asn, token, network) for asn, (n, token, network) in sets[name].items()]
        bad = check_names(src, rows, SOURCE.name)
        print(f"{name}: {len(rows)} lines, {len(rows) - bad} named as the line says, {bad} failed")
        failed += bad
    rows = [(n, asn, token, f"{network}, {where}") for n, asn, token, where, network in people]
    bad = check_names(src, rows, PEOPLE.name)
    countries = {where for *_, where, _ in people} - {"relay"}
    print(f"people: {len(rows)} networks ({len(countries)} countries' carriers and ISPs, and "
          f"relays), {len(rows) - bad} named as the line says, {bad} failed")
    failed += bad
    people_asns = {asn for _, asn, *_ in people}
    for name in SETS:
        for asn in sorted(people_asns & set(sets[name])):
            print(f"  FAIL AS{asn} carries people and is in `{name}`")
            failed += 1
    if quiet:
        if failed:
            sys.exit(f"{failed} line(s) failed: see FAIL above")
        return

    # 3. The hosting set against the name-derived candidates.
    pattern = re.compile("|".join(HOSTING_NAMES), re.I)
    named = {asn for asn, org in src.names.items() if pattern.search(org)}
    kept_out = named & people_asns
    candidates = named - people_asns
    hosting = set(sets["hosting"])
    both = hosting & candidates
    v4 = lambda asns: sum(src.v4[a] for a in asns)  # noqa: E731
    v6 = lambda asns: sum(src.v6[a] for a in asns)  # noqa: E731
    print(f"hosting candidates by name ({len(HOSTING_NAMES)} patterns): {fmt(len(candidates))} "
          f"AS numbers, {fmt(v4(candidates))} IPv4 addresses, {fmt(v6(candidates))} IPv6 /48s "
          f"({len(kept_out)} people networks matched and left out: "
          f"{', '.join(f'AS{a}' for a in sorted(kept_out))})")
    print(f"  the hosting set: {len(hosting)} AS numbers, {len(both)} of them candidates; they "
          f"hold {share(v4(both), v4(candidates))} of the candidates' IPv4 space and "
          f"{share(v6(both), v6(candidates))} of their IPv6")
    for asn in sorted(hosting - candidates):
        print(f"  in the set, not a candidate by name: AS{asn} {src.names.get(asn)!r}")
    print(f"  the {listed} largest candidates not in a set (IPv4 addresses, AS, name):")
    everything = hosting | set(sets["vpn"])
    left = sorted(candidates - everything, key=lambda a: (-src.v4[a], a))
    for asn in left[:listed]:
        print(f"    {src.v4[asn]:>11,}  AS{asn:<7} {src.names[asn]}")

    # 4. The second source's ranges, through the first source's AS numbers.
    home = installed("pypi", RANGE_SOURCE)
    built, ranges = range_labels(home)
    print(f"cross-check: {RANGE_SOURCE['pypi']} {RANGE_SOURCE['version']} (built "
          f"{time.strftime('%Y-%m-%d', time.gmtime(built))}, IPv4 ranges mapped to AS numbers "
          f"through the source above)")
    per = defaultdict(Counter)
    for start, end, provider, kind in ranges:
        if kind in RANGE_KINDS.values():
            per[(kind, provider)].update(src.overlap(start, end))
    for set_name, kind in RANGE_KINDS.items():
        covered = set(sets[set_name])
        total = sum(sum(c.values()) for (k, _), c in per.items() if k == kind)
        inside = sum(c[a] for (k, _), c in per.items() if k == kind for a in covered)
        carried = sum(c[a] for (k, _), c in per.items() if k == kind for a in people_asns)
        print(f"  `{kind}` ranges: {fmt(total)} IPv4 addresses, {share(inside, total)} of them in "
              f"ASes of the `{set_name}` set, {share(carried, total)} in people networks (which "
              f"stay out), {share(inside, total - carried)} of the rest in the set")
        for (k, provider), c in sorted(per.items(), key=lambda kv: -sum(kv[1].values())):
            if k != kind:
                continue
            whole = sum(c.values())
            top = [(a, n) for a, n in c.most_common(3) if n * 20 >= whole]
            notes = ", ".join(
                f"AS{a} {share(n, whole)}{'' if a in covered else ' (not in the set)'}"
                f"{' (CARRIES PEOPLE)' if a in people_asns else ''}"
                for a, n in top)
            print(f"    {provider:<20} {fmt(whole):>12}  {share(sum(c[a] for a in covered), whole)}"
                  f" in the set; largest: {notes}")
    if failed:
        sys.exit(f"{failed} line(s) failed: see FAIL above")


def main():
    args = sys.argv[1:]
    if "--verify" in args:
        verify(listed=30, quiet="--quiet" in args)
        return
    text = render(read_sets())
    if "--check" in args:
        if TARGET.read_text() != text:
            sys.exit(f"{TARGET} is not what {SOURCE} says: run scripts/builtin-sets.py")
        return
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
