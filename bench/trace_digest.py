#!/usr/bin/env python3
"""Digests `chainbreak trace --format json` output without holding it in memory.

At city scale the JSON lists every contact with its evidence: gigabytes on one line (4.2 GB at
100,000 persons, K=10). This reads it as a stream (stdin or a file), keeps the first 64 KiB
(--head FILE), and prints one small JSON object:

  {"bytes", "hash", "tiers": [{"tier", "category", "count", "listed"}], "contacts_hash"}

`hash`: the output's own "hash" (the last one in the stream). `listed`: the contacts found in
the tier's list; `contacts_hash`: the benchmark hash recomputed from them (null unless every
tier lists as many contacts as its count). It scans tokens with one regular expression rather
than parsing: every "person_id" after the first "tiers" key is taken as a contact's id (the
evidence names people as "exposed_to"), and "tier" keys start the tiers.

Usage: chainbreak trace ... --format json | trace_digest.py [--head FILE] > digest.json
       trace_digest.py FILE
"""

import argparse
import hashlib
import json
import re
import sys

TOKEN = re.compile(rb'"(tiers)"\s*:|"(tier|category|count|person_id|hash)"\s*:\s*'
                   rb'(?:"((?:[^"\\]|\\.)*)"|(-?\d+))')
KEEP = 4096          # bytes kept back at a chunk's end so no token is cut in two


def digest(stream, head_out=None, chunk=1 << 24):
    total = 0
    head = bytearray()
    in_tiers = False
    tiers = []
    ids = []             # (tier, id bytes)
    out_hash = None
    buf = b""
    eof = False
    while not eof:
        block = stream.read(chunk)
        eof = not block
        total += len(block)
        if len(head) < 65536:
            head += block[:65536 - len(head)]
        buf += block
        cut = len(buf) if eof else max(0, len(buf) - KEEP)
        resume = None
        last_end = 0
        for m in TOKEN.finditer(buf):
            if m.start() >= cut:
                resume = m.start()          # matches do not overlap: earlier ones end before it
                break
            last_end = m.end()
            key = m.group(1) or m.group(2)
            sval, ival = m.group(3), m.group(4)
            if key == b"tiers":
                in_tiers = True
            elif key == b"hash" and sval is not None:
                out_hash = sval.decode()
            elif not in_tiers:
                continue
            elif key == b"tier" and ival is not None:
                tiers.append({"tier": int(ival), "category": None, "count": None, "listed": 0})
            elif key == b"category" and tiers and sval is not None and tiers[-1]["category"] is None:
                tiers[-1]["category"] = sval.decode()
            elif key == b"count" and tiers and ival is not None and tiers[-1]["count"] is None:
                tiers[-1]["count"] = int(ival)
            elif key == b"person_id" and tiers and sval is not None:
                tiers[-1]["listed"] += 1
                ids.append((tiers[-1]["tier"], json.loads(b'"' + sval + b'"').encode()))
        if resume is None:
            resume = max(cut, last_end)
        buf = buf[resume:]
    if head_out:
        with open(head_out, "wb") as f:
            f.write(bytes(head))
    complete = bool(tiers) and all(t["count"] == t["listed"] for t in tiers)
    contacts_hash = None
    if complete:
        h = hashlib.sha256()
        for t, i in sorted(x for x in ids if x[0] in (1, 2)):
            h.update(b"%d\t%s\n" % (t, i))
        contacts_hash = h.hexdigest()
    return {"bytes": total, "hash": out_hash, "tiers": tiers, "contacts_hash": contacts_hash}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", nargs="?", help="chainbreak's stdout (default: standard input)")
    ap.add_argument("--head", help="write the first 64 KiB of the output here")
    a = ap.parse_args(argv)
    if a.file:
        with open(a.file, "rb") as f:
            d = digest(f, a.head)
    else:
        d = digest(sys.stdin.buffer, a.head)
    print(json.dumps(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
