#!/usr/bin/env python3
"""Writes crates/clickgate-core/src/filters/asn_sets_data.rs from data/asn-sets.txt: each set's
AS numbers as a sorted array, which the Worker searches by bisection with nothing built at start.

    python3 scripts/builtin-sets.py          # rewrite the data file
    python3 scripts/builtin-sets.py --check  # exit 1 if it is not what the text says

data/asn-sets.txt says where its numbers come from and why it is kept by hand: no registry
package carries such a list. A core test reads the text too, so a hand edit of either that is not
carried to the other fails `cargo test`.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "data" / "asn-sets.txt"
TARGET = ROOT / "crates" / "clickgate-core" / "src" / "filters" / "asn_sets_data.rs"
SETS = ("hosting", "vpn")


def read_sets(text):
    sets = {name: set() for name in SETS}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if len(words) < 2 or words[0] not in sets or not words[1].isdigit():
            sys.exit(f"{SOURCE}:{n}: want `<set> <AS number> <network> <source>`: {line}")
        asn = int(words[1])
        if not 0 < asn < 2**32:
            sys.exit(f"{SOURCE}:{n}: AS{asn} is out of range")
        sets[words[0]].add(asn)
    return sets


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
        out.append(f"pub const {name.upper()}: &[u32] = &[")
        for i in range(0, len(numbers), 8):
            out.append("    " + " ".join(f"{a}," for a in numbers[i:i + 8]))
        out.append("];")
        out.append("")
    return "\n".join(out)


def main():
    text = render(read_sets(SOURCE.read_text()))
    if "--check" in sys.argv[1:]:
        if TARGET.read_text() != text:
            sys.exit(f"{TARGET} is not what {SOURCE} says: run scripts/builtin-sets.py")
        return
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
