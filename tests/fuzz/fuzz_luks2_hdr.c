/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_luks2_hdr.c — libFuzzer target for crypto/luks2/hdr.c, cmkfs's own
 * reading of the LUKS2 binary headers: the input is the start of a device,
 * followed by one byte of mode.  Must never crash, read out of bounds, leak
 * or hang.
 *
 * Random bytes rarely carry a valid SHA-256, so when the mode byte is odd
 * the target first recomputes the checksum of each header copy the bytes
 * claim (as an attacker who rewrites a header does: the checksums are not
 * keyed), so that what lies behind the checksum check is explored too.
 *
 * Invariants: a copy is good only when it has the magic; meta_end is twice
 * a valid metadata size; the UUIDs it reports are terminated.
 *
 * Seeds (corpus/fuzz_luks2_hdr/): both metadata copies of volumes that
 * `cryptsetup luksFormat --type luks2` (2.6.1) made, each followed by its
 * mode byte: luks2-fresh.bin with the default 16 KiB metadata (mode 0),
 * luks2-64k.bin with --luks2-metadata-size 64k (mode 1).  libFuzzer's
 * input limit follows the largest seed.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "hdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Recompute the checksum of a copy at off whose fields claim a size that
 * fits. */
static void fix_checksum(uint8_t *dev, size_t len, uint64_t off)
{
	uint8_t sum[CRYPTO_SHA256_LEN];
	uint64_t n;

	if (off >= len || len - off < HDR_BIN_LEN)
		return;
	n = hdr_be64(dev + off + HDR_OFF_SIZE);
	if (n < HDR_BIN_LEN || n > len - off)
		return;
	memset(dev + off + HDR_OFF_CSUM, 0, HDR_CSUM_LEN);
	if (crypto_sha256(dev + off, (size_t)n, sum) == 0)
		memcpy(dev + off + HDR_OFF_CSUM, sum, sizeof(sum));
}

static bool valid_meta_end(uint64_t end)
{
	uint64_t s = end / 2;

	return end % 2 == 0 && s >= HDR_MIN_SIZE && s <= HDR_MAX_SIZE &&
	       (s & (s - 1)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hdr_copy c;
	struct hdr_scan hs;
	bool fix;
	uint8_t *dev;

	if (!size)
		return 0;
	fix = data[--size] & 1;
	if (size > HDR_SCAN_LEN)
		size = HDR_SCAN_LEN;
	/* An exact-size copy, so that any read past the end is caught. */
	dev = malloc(size ? size : 1);
	if (!dev)
		return 0;
	memcpy(dev, data, size);
	if (fix) {
		fix_checksum(dev, size, 0);
		if (size >= HDR_BIN_LEN)
			fix_checksum(dev, size, hdr_be64(dev + HDR_OFF_SIZE));
	}
	if (hdr_copy_parse(dev, size, 0, true, &c) == 0 && c.good && !c.magic)
		abort();
	if (hdr_scan(dev, size, &hs) == 0) {
		if (!valid_meta_end(hs.meta_end))
			abort();
		if (hs.good_uuid[sizeof(hs.good_uuid) - 1] ||
		    hs.any_uuid[sizeof(hs.any_uuid) - 1])
			abort();
	}
	free(dev);
	return 0;
}
