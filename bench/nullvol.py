#!/usr/bin/python3
"""nullvol.py — turn a freshly created cmkfs volume into a cipher_null volume.

    ##################################################################
    #  BENCHMARK ONLY.  A volume rewritten by this tool is NOT       #
    #  ENCRYPTED: its data segment uses cipher_null, every byte is   #
    #  stored in the clear.  Never use it for data you care about.   #
    ##################################################################

Why it exists: the benchmark compares cmkfs with AES-XTS against cmkfs with
no cipher at all, to separate the cost of FUSE and io_uring from the cost of
the cipher.  libcryptsetup cannot format a cipher_null volume on a host
without AF_ALG or device-mapper (it checks the cipher through the kernel), so
the bench creates an ordinary AES-XTS volume with `cmkfs create` and rewrites
its LUKS2 metadata here: the data segment's "encryption" becomes
"cipher_null-ecb".  Keyslots, digests and tokens are untouched, so the volume
still unlocks through KMS exactly like the product's volumes; the daemon
takes the cipher from the header and serves the data unchanged.  Only run it
on a volume whose data area holds nothing yet (the old ciphertext would read
back as garbage plaintext).

LUKS2 on-disk format (both header copies, the secondary at offset hdr_size):
a 4096-byte binary header (big-endian: magic[6], version u16, hdr_size u64,
seqid u64, label[48], csum_alg[32], salt[64], uuid[40], subsystem[48],
hdr_offset u64, padding, csum[64] at offset 448) followed by the JSON area
up to hdr_size, NUL-padded.  csum = hash(csum_alg) over the hdr_size bytes
with the csum field zeroed.  Each write bumps seqid in both copies.

usage: bench/nullvol.py VOLUME
"""

import hashlib
import json
import os
import struct
import sys

MAGIC = (b"LUKS\xba\xbe", b"SKUL\xba\xbe")
CSUM_OFF, CSUM_LEN = 448, 64
BIN_SIZE = 4096
NULL_CIPHER = "cipher_null-ecb"


class HeaderError(Exception):
    pass


def _read_copy(f, offset, magic):
    """One header copy at offset: (binary bytes, seqid, hdr_size, metadata)."""
    f.seek(offset)
    head = f.read(BIN_SIZE)
    if len(head) != BIN_SIZE or head[:6] != magic:
        raise HeaderError(f"no LUKS2 header at offset {offset}")
    version, hdr_size, seqid = struct.unpack_from(">HQQ", head, 6)
    if version != 2:
        raise HeaderError(f"LUKS version {version} at offset {offset}, want 2")
    if not (2 * BIN_SIZE <= hdr_size <= 4 << 20) or hdr_size % BIN_SIZE:
        raise HeaderError(f"implausible hdr_size {hdr_size}")
    alg = head[72:104].split(b"\0", 1)[0].decode()
    if alg != "sha256":
        raise HeaderError(f"checksum algorithm {alg!r}, only sha256 handled")
    area = f.read(hdr_size - BIN_SIZE)
    if len(area) != hdr_size - BIN_SIZE:
        raise HeaderError("short JSON area")
    zeroed = head[:CSUM_OFF] + bytes(CSUM_LEN) + head[CSUM_OFF + CSUM_LEN:]
    want = hashlib.sha256(zeroed + area).digest()
    if head[CSUM_OFF:CSUM_OFF + 32] != want:
        raise HeaderError(f"checksum mismatch in the header at offset {offset}")
    meta = json.loads(area.split(b"\0", 1)[0])
    return head, seqid, hdr_size, meta


def _build_copy(head, seqid, hdr_size, meta):
    text = json.dumps(meta, separators=(",", ":")).encode()
    if len(text) >= hdr_size - BIN_SIZE:
        raise HeaderError("rewritten metadata does not fit the JSON area")
    area = text + bytes(hdr_size - BIN_SIZE - len(text))
    head = bytearray(head)
    struct.pack_into(">Q", head, 16, seqid)
    head[CSUM_OFF:CSUM_OFF + CSUM_LEN] = bytes(CSUM_LEN)
    head[CSUM_OFF:CSUM_OFF + 32] = hashlib.sha256(bytes(head) + area).digest()
    return bytes(head) + area


def make_null(path):
    """Rewrite the volume at path to cipher_null; returns the segments changed."""
    with open(path, "r+b") as f:
        head1, seq1, hdr_size, meta = _read_copy(f, 0, MAGIC[0])
        head2, seq2, hdr_size2, meta2 = _read_copy(f, hdr_size, MAGIC[1])
        if hdr_size2 != hdr_size or seq1 != seq2 or meta != meta2:
            raise HeaderError("the two header copies differ: repair the "
                              "volume with cryptsetup first")
        changed = []
        for name, seg in meta.get("segments", {}).items():
            if seg.get("type") == "crypt":
                seg["encryption"] = NULL_CIPHER
                changed.append(name)
        if not changed:
            raise HeaderError("no crypt segment to rewrite")
        seqid = seq1 + 1
        # Secondary first: should this stop half-way, the primary (read
        # first by libcryptsetup) still describes the old volume whole.
        f.seek(hdr_size)
        f.write(_build_copy(head2, seqid, hdr_size, meta))
        f.flush()
        os.fsync(f.fileno())
        f.seek(0)
        f.write(_build_copy(head1, seqid, hdr_size, meta))
        f.flush()
        os.fsync(f.fileno())
    return changed


def main(argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    try:
        segs = make_null(argv[1])
    except (OSError, ValueError, HeaderError) as e:
        print(f"nullvol: {argv[1]}: {e}", file=sys.stderr)
        return 1
    print(f"nullvol: {argv[1]}: segment {', '.join(segs)} now {NULL_CIPHER} "
          "-- NOT ENCRYPTED, benchmark only")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
