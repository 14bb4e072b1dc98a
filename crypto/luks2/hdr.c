/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hdr.c — the LUKS2 binary headers read by cmkfs itself (hdr.h): pure
 * functions over a buffer, every read bounded by its length.  What a header
 * says is hostile until its checksum (plain SHA-256, not keyed) matches, and
 * even then only structurally trusted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "hdr.h"

static const uint8_t magic_primary[HDR_MAGIC_LEN] = { 'L', 'U',	 'K',
						      'S', 0xba, 0xbe };
static const uint8_t magic_secondary[HDR_MAGIC_LEN] = { 'S', 'K',  'U',
							'L', 0xba, 0xbe };

uint64_t hdr_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

void hdr_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

int hdr_copy_parse(const uint8_t *at, size_t len, uint64_t off, bool primary,
		   struct hdr_copy *c)
{
	uint8_t sum[CRYPTO_SHA256_LEN], *area;
	int r;

	memset(c, 0, sizeof(*c));
	if (len < HDR_BIN_LEN ||
	    memcmp(at, primary ? magic_primary : magic_secondary,
		   HDR_MAGIC_LEN))
		return 0;
	c->version =
		(unsigned)at[HDR_OFF_VERSION] << 8 | at[HDR_OFF_VERSION + 1];
	memcpy(c->uuid, at + HDR_OFF_UUID, sizeof(c->uuid) - 1);
	if (c->version != 2)
		return 0;
	c->magic = true;
	c->size = hdr_be64(at + HDR_OFF_SIZE);
	c->seqid = hdr_be64(at + HDR_OFF_SEQID);
	if (c->size < HDR_MIN_SIZE || c->size > HDR_MAX_SIZE ||
	    (c->size & (c->size - 1)) || hdr_be64(at + HDR_OFF_OFFSET) != off ||
	    memcmp(at + HDR_OFF_CSUMALG, "sha256", sizeof("sha256")) != 0 ||
	    c->size > len)
		return 0;
	/* The checksum is over the whole area with its own field zeroed. */
	area = malloc(c->size);
	if (!area)
		return -ENOMEM;
	memcpy(area, at, c->size);
	memset(area + HDR_OFF_CSUM, 0, HDR_CSUM_LEN);
	r = crypto_sha256(area, c->size, sum);
	free(area);
	if (r)
		return r;
	c->good = memcmp(sum, at + HDR_OFF_CSUM, sizeof(sum)) == 0;
	return 0;
}

/* The copy at off of dev[0, len), or none when off is past the end. */
static int copy_at(const uint8_t *dev, size_t len, uint64_t off, bool primary,
		   struct hdr_copy *c)
{
	if (off >= len) {
		memset(c, 0, sizeof(*c));
		return 0;
	}
	return hdr_copy_parse(dev + off, len - off, off, primary, c);
}

int hdr_scan(const uint8_t *dev, size_t len, struct hdr_scan *hs)
{
	struct hdr_copy c1, c2 = { 0 };
	int r;

	memset(hs, 0, sizeof(*hs));
	r = copy_at(dev, len, 0, true, &c1);
	if (r)
		return r;
	if (c1.good) {
		r = copy_at(dev, len, c1.size, false, &c2);
		if (r)
			return r;
	} else {
		/* Where libcryptsetup looks for a secondary copy when the
		 * primary does not say. */
		for (uint64_t off = HDR_MIN_SIZE;
		     off <= HDR_MAX_SIZE && !c2.version; off <<= 1) {
			r = copy_at(dev, len, off, false, &c2);
			if (r)
				return r;
		}
	}
	/* Both copies have the same size, the primary's is the offset of
	 * the secondary. */
	hs->meta_end = 2 * (uint64_t)HDR_MAX_SIZE;
	if (c1.good) {
		memcpy(hs->good_uuid, c1.uuid, sizeof(hs->good_uuid));
		hs->meta_end = 2 * c1.size;
	} else if (c2.good) {
		memcpy(hs->good_uuid, c2.uuid, sizeof(hs->good_uuid));
		hs->meta_end = 2 * c2.size;
	}
	if (c1.version)
		memcpy(hs->any_uuid, c1.uuid, sizeof(hs->any_uuid));
	else if (c2.version)
		memcpy(hs->any_uuid, c2.uuid, sizeof(hs->any_uuid));
	if (c1.good && c2.good && c1.seqid == c2.seqid)
		hs->state = HDR_CLEAN;
	else if (c1.magic || c2.magic)
		hs->state = HDR_DEGRADED;
	else
		hs->state = HDR_NONE;
	return 0;
}
