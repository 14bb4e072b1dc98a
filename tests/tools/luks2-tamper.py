#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""luks2-tamper: rewrite a LUKS2 header's JSON metadata as an attacker who
can write the volume file would, and recompute its checksums (plain SHA-256
over the header area, not keyed).  For the tampered-header tests only.

usage: luks2-tamper.py VOLUME CODE [--copy both|primary|secondary]
                       [--newer] [--token-from OTHER_VOLUME]

CODE is Python run with `m`, the metadata (a dict), to change in place;
`other` is OTHER_VOLUME's metadata when given.  --copy chooses which header
copies are rewritten (default both); --newer also raises the rewritten
copies' sequence id, so that a reader prefers them.  The JSON is written
back compact, zero padded, in the same area; everything else is kept.
"""
import argparse
import hashlib
import json
import struct
import sys

BIN = 4096
MAGIC = {0: b"LUKS\xba\xbe", 1: b"SKUL\xba\xbe"}
OFF_SIZE, OFF_SEQID, OFF_CSUM = 8, 16, 448
CSUM_LEN = 64


def read_copy(f, off, primary):
    f.seek(off)
    b = bytearray(f.read(BIN))
    if b[:6] != MAGIC[0 if primary else 1]:
        raise SystemExit(f"no LUKS2 header copy at {off}")
    size, = struct.unpack(">Q", b[OFF_SIZE:OFF_SIZE + 8])
    f.seek(off)
    area = bytearray(f.read(size))
    text = bytes(area[BIN:]).split(b"\0", 1)[0]
    return area, json.loads(text)


def write_copy(f, off, area, meta, newer):
    size = len(area)
    text = json.dumps(meta, separators=(",", ":")).encode()
    if len(text) >= size - BIN:
        raise SystemExit("the edited metadata does not fit its area")
    area[BIN:] = text + b"\0" * (size - BIN - len(text))
    if newer:
        seq, = struct.unpack(">Q", area[OFF_SEQID:OFF_SEQID + 8])
        area[OFF_SEQID:OFF_SEQID + 8] = struct.pack(">Q", seq + 1)
    area[OFF_CSUM:OFF_CSUM + CSUM_LEN] = b"\0" * CSUM_LEN
    digest = hashlib.sha256(bytes(area)).digest()
    area[OFF_CSUM:OFF_CSUM + len(digest)] = digest
    f.seek(off)
    f.write(area)


def load_meta(path):
    with open(path, "rb") as f:
        return read_copy(f, 0, True)[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("volume")
    p.add_argument("code")
    p.add_argument("--copy", choices=("both", "primary", "secondary"),
                   default="both")
    p.add_argument("--newer", action="store_true")
    p.add_argument("--token-from")
    a = p.parse_args()
    other = load_meta(a.token_from) if a.token_from else None
    with open(a.volume, "r+b") as f:
        primary, meta = read_copy(f, 0, True)
        offsets = {"primary": [0], "secondary": [len(primary)],
                   "both": [0, len(primary)]}[a.copy]
        for off in offsets:
            area, m = read_copy(f, off, off == 0)
            exec(a.code, {"m": m, "other": other})
            write_copy(f, off, area, m, a.newer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
