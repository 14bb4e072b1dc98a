#!/usr/bin/python3
"""xts_reference.py — AES-XTS reference cases for the differential test.

Generates random cases (keys, sector sizes, sector numbers, IV offsets,
multi-sector runs) and their ciphertexts computed with Debian's
python3-cryptography, applying the LUKS2/dm-crypt plain64 IV rule on its own:
each sector is encrypted separately under the tweak
    (offset // 512 + k * sector_size // 512 + iv_offset) as 8 little-endian
    bytes, zero-padded to 16.
Output: one case a line, "KEYHEX SECTOR_SIZE OFFSET IV_OFFSET PLAIN CIPHER",
as tests/tools/xts-check.c reads it.

usage: xts_reference.py SEED COUNT
"""
import random
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def plain64(unit):
    return (unit % 2**64).to_bytes(8, "little") + bytes(8)


def encrypt_run(key, sector_size, offset, iv_offset, plain):
    out = bytearray()
    for k in range(len(plain) // sector_size):
        unit = offset // 512 + k * (sector_size // 512) + iv_offset
        enc = Cipher(algorithms.AES(key), modes.XTS(plain64(unit))).encryptor()
        out += enc.update(plain[k * sector_size:(k + 1) * sector_size])
        out += enc.finalize()
    return bytes(out)


def random_key(rng, size):
    while True:
        key = rng.randbytes(size)
        if key[: size // 2] != key[size // 2:]:
            return key


def main():
    seed, count = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    # Edge sectors first, then random ones: sector 0, the last sector whose
    # first 512-byte unit still fits 64 bits, and around 2^32.
    edges = [0, 1, 2**32 // 8 - 1, 2**32 // 8, 2**61 - 2]
    for i in range(count):
        sector_size = rng.choice([512, 4096] * 3 + [1024, 2048])
        key = random_key(rng, 64 if rng.random() < 0.8 else 32)
        nsect = rng.randint(1, 4)
        max_sector = 2**64 // sector_size - nsect
        if i < len(edges):
            sector = min(edges[i], max_sector)
        else:
            sector = rng.randrange(0, min(max_sector, 2**40))
        # IV offsets near 2^64 make the unit number wrap, as it does in
        # dm-crypt's 64-bit arithmetic.
        iv_offset = rng.choice([0, 0, 0, rng.randrange(0, 2**20), 2**64 - 3])
        offset = sector * sector_size
        plain = rng.randbytes(nsect * sector_size)
        cipher = encrypt_run(key, sector_size, offset, iv_offset, plain)
        print(key.hex(), sector_size, offset, iv_offset, plain.hex(), cipher.hex())


if __name__ == "__main__":
    main()
