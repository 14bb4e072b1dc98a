/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hdr.h — cmkfs's own reading of the LUKS2 binary headers (hdr.c;
 * internal to crypto/luks2/): pure functions over bytes already read, so
 * that what comes from disk is checked the same way everywhere, and fuzzed.
 */
#ifndef CMKFS_LUKS2_HDR_H
#define CMKFS_LUKS2_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* LUKS2 on-disk binary header (the LUKS2 specification, section 2). */
#define HDR_BIN_LEN	4096u
#define HDR_MAGIC_LEN	6
#define HDR_OFF_VERSION 6
#define HDR_OFF_SIZE	8
#define HDR_OFF_SEQID	16
#define HDR_OFF_CSUMALG 72
#define HDR_OFF_UUID	168
#define HDR_OFF_OFFSET	256
#define HDR_OFF_CSUM	448
#define HDR_CSUM_LEN	64
#define HDR_MIN_SIZE	(16u << 10)
#define HDR_MAX_SIZE	(4u << 20)
/* The bytes from the start of a device that hold every place a header
 * copy may be: two of the largest metadata areas. */
#define HDR_SCAN_LEN ((size_t)2 * HDR_MAX_SIZE)

/* One header copy, as read. */
struct hdr_copy {
	unsigned version; /* of a LUKS magic of the expected kind, or 0 */
	bool magic;	  /* a LUKS2 magic of the expected kind */
	bool good;	  /* ... and everything else checks out */
	uint64_t size, seqid;
	char uuid[40]; /* where LUKS1 has it too */
};

/*
 * Check the header copy whose first byte is at (which lies at byte off of
 * the device), with len bytes readable from there: what libcryptsetup
 * checks before it trusts a copy, except the JSON parse (a copy with a
 * valid checksum holds what libcryptsetup wrote).  Only SHA-256 checksums,
 * libcryptsetup's default, are verified; another algorithm counts as not
 * good.  Never reads outside [at, at + len).  0, or -ENOMEM / -EIO.
 */
int hdr_copy_parse(const uint8_t *at, size_t len, uint64_t off, bool primary,
		   struct hdr_copy *c);

enum hdr_state {
	HDR_NONE,     /* no LUKS2 header at all (maybe LUKS1, maybe nothing) */
	HDR_CLEAN,    /* both copies good and at the same sequence id */
	HDR_DEGRADED, /* loading would make libcryptsetup rewrite a copy */
};

struct hdr_scan {
	enum hdr_state state;
	uint64_t meta_end;  /* where the two metadata areas end, if known */
	char good_uuid[40]; /* of a good LUKS2 copy, or empty */
	char any_uuid[40];  /* of any LUKS header copy, even damaged */
};

/* Classify the LUKS2 header of a device whose first len bytes are dev
 * (HDR_SCAN_LEN of them hold every possible copy; fewer is a smaller
 * device).  0, or -ENOMEM / -EIO. */
int hdr_scan(const uint8_t *dev, size_t len, struct hdr_scan *hs);

/*
 * The allow-list (allow.c): is the LUKS2 JSON metadata json (json_len
 * bytes, as libcryptsetup loaded it) of a device of device_size bytes one
 * cmkfs may unlock, serve and change?  0, or -EINVAL with why naming the
 * field and its value; -ENOMEM.
 */
#define HDR_ALLOW_INSECURE     (1u << 0) /* a cipher_null-ecb data segment */
#define HDR_ALLOW_REENCRYPTING (1u << 1) /* a forward reencryption's */
int hdr_json_allowed(const char *json, size_t json_len, uint64_t device_size,
		     unsigned flags, char *why, size_t len);

/* Does the LUKS2 segment seg (a JSON object) carry a flag starting with
 * prefix ("backup-"...)?  (segments.c) */
struct json_object;
bool luks2_seg_flag(struct json_object *seg, const char *prefix);

/* Big-endian 64-bit fields. */
uint64_t hdr_be64(const uint8_t *p);
void hdr_put_be64(uint8_t *p, uint64_t v);

#endif
