/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ttlv.h — KMIP's TTLV encoding (KMIP 1.x, "Message Encoding"): every item
 * is a 3-byte tag, a 1-byte type, a 4-byte big-endian length and its value,
 * padded with zeros to a multiple of 8 bytes; a Structure's value is the
 * items it holds.  Internal to kms/ (the KMIP client).
 *
 * The encoder writes into secure memory: requests carry secrets (Encrypt's
 * plaintext).  The decoder is for hostile input: it copies nothing, and
 * refuses what is not exactly the format — unknown types, lengths that do
 * not fit the type or the buffer, padding that is not zero, a Boolean
 * other than 0 or 1, structures nested deeper than TTLV_MAX_DEPTH or
 * holding more than TTLV_MAX_ITEMS items in all.
 */
#ifndef CMKFS_KMS_TTLV_H
#define CMKFS_KMS_TTLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ttlv_type {
	TTLV_STRUCTURE = 0x01,
	TTLV_INTEGER = 0x02,
	TTLV_LONG = 0x03,
	TTLV_BIG_INTEGER = 0x04,
	TTLV_ENUMERATION = 0x05,
	TTLV_BOOLEAN = 0x06,
	TTLV_TEXT = 0x07,
	TTLV_BYTES = 0x08,
	TTLV_DATE_TIME = 0x09,
	TTLV_INTERVAL = 0x0a,
};

#define TTLV_MAX_DEPTH 16
#define TTLV_MAX_ITEMS 4096
/* The largest message either side sends or takes. */
#define TTLV_MAX_MESSAGE ((size_t)1 << 20)

/* ---- encoding */

struct ttlv_enc {
	uint8_t *p; /* secure memory */
	size_t len, cap;
	size_t open[TTLV_MAX_DEPTH]; /* offsets of open structures */
	unsigned depth;
	int err; /* the first error (-ENOMEM, -E2BIG, -EINVAL), sticky */
};

/* A structure: begin, its items, end. */
void ttlv_begin(struct ttlv_enc *e, uint32_t tag);
void ttlv_end(struct ttlv_enc *e);
void ttlv_int(struct ttlv_enc *e, uint32_t tag, int32_t v);
void ttlv_long(struct ttlv_enc *e, uint32_t tag, int64_t v);
void ttlv_enum(struct ttlv_enc *e, uint32_t tag, uint32_t v);
void ttlv_bool(struct ttlv_enc *e, uint32_t tag, bool v);
void ttlv_text(struct ttlv_enc *e, uint32_t tag, const char *s);
void ttlv_bytes(struct ttlv_enc *e, uint32_t tag, const void *p, size_t n);
void ttlv_date_time(struct ttlv_enc *e, uint32_t tag, int64_t t);
void ttlv_interval(struct ttlv_enc *e, uint32_t tag, uint32_t seconds);
/* Any item as it was decoded (Big Integer among them): type and value. */
void ttlv_raw(struct ttlv_enc *e, uint32_t tag, uint8_t type, const void *p,
	      size_t n);
/* 0 once every structure is ended and nothing failed, else the error. */
int ttlv_enc_done(const struct ttlv_enc *e);
/* Wipe and free the buffer. */
void ttlv_enc_free(struct ttlv_enc *e);

/* ---- decoding */

/* An item, pointing into the decoded buffer. */
struct ttlv {
	uint32_t tag;
	uint8_t type;
	uint32_t len;	    /* of the value, padding excluded */
	const uint8_t *val; /* the value */
	/* Integer, Long, Enumeration, Boolean, Date-Time, Interval: */
	int64_t num;
	/* Structure: its first item; every item: the next in its
	 * structure. */
	const struct ttlv *child, *next;
};

struct ttlv_items {
	struct ttlv item[TTLV_MAX_ITEMS];
	unsigned n;
};

/*
 * Decode the one item buf holds, exactly len bytes: 0 with the item in
 * *root (its storage in items), or -EBADMSG (malformed; why says what, at
 * which byte), -E2BIG (too deep, too many items).
 */
int ttlv_decode(const uint8_t *buf, size_t len, struct ttlv_items *items,
		const struct ttlv **root, char *why, size_t whylen);

/* The first item tagged tag in structure s (NULL: none, or s is no
 * structure); the next one after it. */
const struct ttlv *ttlv_find(const struct ttlv *s, uint32_t tag);
const struct ttlv *ttlv_find_next(const struct ttlv *after, uint32_t tag);

/* The length a message announces in its first 8 bytes (the item's whole
 * size, header included), or 0 when it cannot be one (not a structure, or
 * longer than TTLV_MAX_MESSAGE). */
size_t ttlv_message_size(const uint8_t head[8]);

#endif
