#!/usr/bin/python3
"""xts_volume.py — read and write a LUKS2 volume's data segment the way
dm-crypt does (aes-xts-plain64, one tweak per sector: the little-endian
number of its first 512-byte unit), with Debian's python3-cryptography:
an implementation independent of cmkfs and of libcryptsetup.

usage: xts_volume.py fill   VOLUME KEYHEX OFFSET SIZE SECTOR SEED
       xts_volume.py digest VOLUME KEYHEX OFFSET SIZE SECTOR

fill writes SIZE bytes of pseudo-random plaintext (from SEED) encrypted
at byte OFFSET of VOLUME; both print the SHA-256 of the plaintext, so a
digest after a reencryption must print what the fill printed.
"""
import hashlib
import os
import random
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

CHUNK = 1 << 20


def tweak(unit):
    return unit.to_bytes(8, "little") + bytes(8)


def crypt(key, sector, pos, data, encrypt):
    out = bytearray()
    for k in range(0, len(data), sector):
        c = Cipher(algorithms.AES(key), modes.XTS(tweak((pos + k) // 512)))
        op = c.encryptor() if encrypt else c.decryptor()
        out += op.update(data[k:k + sector]) + op.finalize()
    return bytes(out)


def main(argv):
    if len(argv) < 7 or argv[1] not in ("fill", "digest"):
        sys.exit(__doc__)
    mode, path, key = argv[1], argv[2], bytes.fromhex(argv[3])
    offset, size, sector = int(argv[4]), int(argv[5]), int(argv[6])
    rng = random.Random(int(argv[7])) if mode == "fill" else None
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDWR if rng else os.O_RDONLY)
    for pos in range(0, size, CHUNK):
        n = min(CHUNK, size - pos)
        if rng:
            plain = rng.randbytes(n)
            os.pwrite(fd, crypt(key, sector, pos, plain, True), offset + pos)
        else:
            plain = crypt(key, sector, pos, os.pread(fd, n, offset + pos),
                          False)
        h.update(plain)
    if rng:
        os.fsync(fd)
    os.close(fd)
    print(h.hexdigest())


main(sys.argv)
