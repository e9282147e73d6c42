#!/usr/bin/env python3
"""The demo model's training corpus: the fortune cookies of Debian's `fortunes`
and `fortunes-min` packages (BSD licence; see demo/model/README.md), one
fortune per record, ASCII art files left out.

    python3 demo/make_corpus.py OUT.txt      (needs: apt-get install fortunes fortunes-min)

Records are separated by a line holding only "%", as in the fortune files.
"""
import os
import sys

FORTUNE_DIR = "/usr/share/games/fortunes"
SKIP = {"art", "ascii-art"}  # pictures, not prose


def main():
    out = sys.argv[1]
    records = []
    for name in sorted(os.listdir(FORTUNE_DIR)):
        path = os.path.join(FORTUNE_DIR, name)
        if "." in name or name in SKIP or not os.path.isfile(path):
            continue  # .dat indexes and .u8 duplicates
        text = open(path, encoding="utf-8", errors="replace").read()
        for record in text.split("\n%\n"):
            record = record.strip("\n%")
            if record.strip():
                records.append(record.rstrip())
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n%\n".join(records) + "\n")
    print(f"{out}: {len(records)} fortunes, {os.path.getsize(out) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
