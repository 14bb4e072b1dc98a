/* SPDX-License-Identifier: Apache-2.0 */
/*
 * allow.c — the allow-list a LUKS2 header must pass before cmkfs unlocks,
 * serves or changes the volume behind it.
 *
 * A header's checksums are plain SHA-256, not keyed: whoever can write the
 * volume file can rewrite its metadata and recompute them.  libcryptsetup
 * checks that the metadata is well formed, not that it is what cmkfs
 * made.  A data segment edited to cipher_null, another cipher or mode, or a
 * plaintext ("linear") segment would make the unlocking host write the
 * customer's data in the clear or under a weaker scheme; a keyslot area so
 * edited would store the next keyslot's key material that way.  So this
 * file names what cmkfs accepts and refuses everything else, before any
 * KMS call and before any write, with the field and the value.
 *
 * Accepted: "crypt" segments in aes-xts-plain64 (cipher_null-ecb only when
 * the caller says the volume may be insecure, for benchmark volumes), with
 * a 512-bit key (every "luks2" keyslot holds 64 bytes), sector size a power
 * of two in 512..4096, offset past the keyslots area and inside the device,
 * size whole sectors, no integrity; one segment, or the segments of a
 * forward reencryption (whose exact layout luks2_reencrypt_keys checks) when
 * the caller accepts one; all with the same encryption and sector size;
 * each listed by exactly one digest.  Keyslots: "luks2" ones with a raw
 * aes-xts-plain64 area of a 512-bit key inside the keyslots area, and the
 * reencryption's own, with checksum or journal resilience.  Requirements:
 * only LUKS2's online reencryption.
 *
 * The input is the JSON metadata libcryptsetup loaded (crypt_dump_json):
 * well formed, but written by whoever wrote the file.  A pure function over
 * text, so it is fuzzed (tests/fuzz/fuzz_luks2_allow.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "hdr.h"

#define ALLOWED_CIPHER	  "aes-xts-plain64"
#define ALLOWED_KEY_BYTES 64
#define NULL_CIPHER	  "cipher_null-ecb"
#define REQUIREMENT_REENC "online-reencrypt"
#define HDR_JSON_MAX	  (HDR_MAX_SIZE - HDR_BIN_LEN)
#define INSECURE_ADVICE                                                        \
	" (`--insecure` accepts it, for benchmark volumes that were made "     \
	"NOT ENCRYPTED on purpose)"

static int refuse(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Member name of o if it has that JSON type, else NULL. */
static json_object *member(json_object *o, const char *name, json_type type)
{
	json_object *v;

	return json_object_object_get_ex(o, name, &v) &&
			       json_object_is_type(v, type)
		       ? v
		       : NULL;
}

#define object_member(o, name) member(o, name, json_type_object)
/* (json_object_get_string(NULL) is NULL) */
#define string_member(o, name)                                                 \
	json_object_get_string(member(o, name, json_type_string))

/* A decimal string of at most 19 digits (LUKS2 writes offsets and sizes
 * so): false for anything else. */
static bool decimal(const char *s, uint64_t *out)
{
	size_t n = s ? strspn(s, "0123456789") : 0;

	if (!n || s[n] || n > 19 || (n > 1 && s[0] == '0'))
		return false;
	*out = strtoull(s, NULL, 10);
	return true;
}

/* An integer member in [lo, hi]. */
static bool int_member(json_object *o, const char *name, int64_t lo, int64_t hi,
		       int64_t *out)
{
	json_object *v;

	if (!json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_int))
		return false;
	*out = json_object_get_int64(v);
	return *out >= lo && *out <= hi;
}

/* How many digests list segment id? */
static unsigned digests_of(json_object *digests, const char *id)
{
	unsigned n = 0;

	json_object_object_foreach(digests, name, d)
	{
		json_object *segs;

		(void)name;
		if (!json_object_is_type(d, json_type_object) ||
		    !json_object_object_get_ex(d, "segments", &segs) ||
		    !json_object_is_type(segs, json_type_array))
			continue;
		for (size_t i = 0; i < json_object_array_length(segs); i++) {
			const char *s = json_object_get_string(
				json_object_array_get_idx(segs, i));

			if (s && !strcmp(s, id))
				n++;
		}
	}
	return n;
}

struct layout {
	uint64_t keyslots_start, meta_end, device_size;
	const char *cipher; /* of the first segment: all must agree */
	int64_t sector_size;
	bool insecure;
	bool reencrypting; /* a segment is a reencryption's backup-final */
};

/* Check segment id; the first sets l's cipher and sector size, which the
 * others must share. */
static int check_segment(struct layout *l, json_object *digests, const char *id,
			 json_object *seg, char *why, size_t len)
{
	const char *type = string_member(seg, "type");
	const char *enc = string_member(seg, "encryption");
	const char *off_s = string_member(seg, "offset");
	const char *size_s = string_member(seg, "size");
	uint64_t off, size;
	unsigned n;
	int64_t ss;

	if (!type || strcmp(type, "crypt"))
		return refuse(why, len,
			      "segment %s \"type\" is \"%s\", not \"crypt\": "
			      "its data would not be encrypted",
			      id, type ? type : "(none)");
	if (!enc)
		return refuse(why, len, "segment %s has no \"encryption\"", id);
	if (!strcmp(enc, NULL_CIPHER) && !l->insecure)
		return refuse(why, len,
			      "segment %s \"encryption\" is \"%s\": its data "
			      "is NOT ENCRYPTED" INSECURE_ADVICE,
			      id, enc);
	if (strcmp(enc, ALLOWED_CIPHER) && strcmp(enc, NULL_CIPHER))
		return refuse(why, len,
			      "segment %s \"encryption\" is \"%s\"; cmkfs "
			      "serves only " ALLOWED_CIPHER,
			      id, enc);
	if (json_object_object_get_ex(seg, "integrity", NULL))
		return refuse(why, len,
			      "segment %s has \"integrity\", which cmkfs does "
			      "not serve",
			      id);
	if (!int_member(seg, "sector_size", 512, 4096, &ss) || (ss & (ss - 1)))
		return refuse(why, len,
			      "segment %s \"sector_size\" is not 512, 1024, "
			      "2048 or 4096",
			      id);
	if (!decimal(off_s, &off) || off < l->meta_end ||
	    off > l->device_size || off % (uint64_t)ss)
		return refuse(why, len,
			      "segment %s \"offset\" is \"%s\": not whole "
			      "sectors between the end of the keyslots area "
			      "(%" PRIu64 ") and the end of the device "
			      "(%" PRIu64 ")",
			      id, off_s ? off_s : "(none)", l->meta_end,
			      l->device_size);
	if (!size_s || (strcmp(size_s, "dynamic") &&
			(!decimal(size_s, &size) || size % (uint64_t)ss ||
			 size > l->device_size - off)))
		return refuse(why, len,
			      "segment %s \"size\" is \"%s\": neither "
			      "\"dynamic\" nor whole sectors inside the device",
			      id, size_s ? size_s : "(none)");
	/* A segment with data has exactly one key.  During a reencryption,
	 * its block in flight may have none yet, or both (libcryptsetup lists
	 * it by the old and the new digest while it is rewritten), and its
	 * backups one or none. */
	n = digests_of(digests, id);
	if (!l->reencrypting			     ? n != 1
	    : luks2_seg_flag(seg, "in-reencryption") ? n > 2
	    : luks2_seg_flag(seg, "backup-")	     ? n > 1
						     : n != 1)
		return refuse(why, len,
			      "segment %s is listed by %u digests, not one", id,
			      n);
	if (l->cipher && (strcmp(l->cipher, enc) || l->sector_size != ss))
		return refuse(why, len,
			      "segment %s (%s, sector size %" PRId64
			      ") differs "
			      "from the others (%s, sector size %" PRId64 ")",
			      id, enc, ss, l->cipher, l->sector_size);
	l->cipher = enc;
	l->sector_size = ss;
	return 0;
}

static int check_keyslot(const struct layout *l, const char *id,
			 json_object *ks, char *why, size_t len)
{
	const char *type = string_member(ks, "type");
	json_object *area = object_member(ks, "area");
	const char *atype = area ? string_member(area, "type") : NULL;
	const char *aenc = area ? string_member(area, "encryption") : NULL;
	/* A null volume is formatted with a 256-bit AES-XTS key, which its
	 * keyslot areas inherit (luks2_format). */
	bool null = !strcmp(l->cipher, NULL_CIPHER);
	int64_t area_min = null ? ALLOWED_KEY_BYTES / 2 : ALLOWED_KEY_BYTES;
	uint64_t off, size;
	int64_t n = 0;

	if (type && !strcmp(type, "reencrypt")) {
		if (!atype ||
		    (strcmp(atype, "checksum") && strcmp(atype, "journal")))
			return refuse(why, len,
				      "keyslot %s: reencryption resilience "
				      "\"%s\", not checksum or journal",
				      id, atype ? atype : "(none)");
		return 0;
	}
	if (!type || strcmp(type, "luks2"))
		return refuse(why, len, "keyslot %s \"type\" is \"%s\"", id,
			      type ? type : "(none)");
	/* A null volume's key is never used: its size does not matter. */
	if (!null && !int_member(ks, "key_size", ALLOWED_KEY_BYTES,
				 ALLOWED_KEY_BYTES, &n))
		return refuse(why, len,
			      "keyslot %s \"key_size\" is not %d bytes (a "
			      "512-bit " ALLOWED_CIPHER " key)",
			      id, ALLOWED_KEY_BYTES);
	n = 0;
	if (!atype || strcmp(atype, "raw") || !aenc ||
	    strcmp(aenc, ALLOWED_CIPHER) ||
	    !int_member(area, "key_size", area_min, ALLOWED_KEY_BYTES, &n))
		return refuse(why, len,
			      "keyslot %s's area is \"%s\" in \"%s\" with a "
			      "%" PRId64 "-bit key, not raw in " ALLOWED_CIPHER
			      " with a 512-bit key: the key material it stores "
			      "would be weakly protected",
			      id, atype ? atype : "(none)",
			      aenc ? aenc : "(none)", n * 8);
	if (!decimal(string_member(area, "offset"), &off) ||
	    !decimal(string_member(area, "size"), &size) ||
	    off < l->keyslots_start || size > l->meta_end ||
	    off > l->meta_end - size)
		return refuse(why, len,
			      "keyslot %s's area lies outside the keyslots "
			      "area",
			      id);
	return 0;
}

int hdr_json_allowed(const char *json, size_t json_len, uint64_t device_size,
		     unsigned flags, char *why, size_t len)
{
	json_tokener *tok;
	json_object *m = NULL, *segs, *keyslots, *digests, *config, *req;
	struct layout l = { .device_size = device_size,
			    .insecure = flags & HDR_ALLOW_INSECURE };
	uint64_t json_size, keyslots_size;
	bool reenc_required = false;
	unsigned n_live = 0, n_segs = 0;
	int r = -EINVAL;

	if (!len)
		return -EINVAL;
	why[0] = 0;
	if (json_len > HDR_JSON_MAX)
		return refuse(why, len, "the metadata is too large");
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	m = json_tokener_parse_ex(tok, json, (int)json_len);
	json_tokener_free(tok);
	if (!m || !json_object_is_type(m, json_type_object)) {
		refuse(why, len, "the metadata is not a JSON object");
		goto out;
	}
	segs = object_member(m, "segments");
	keyslots = object_member(m, "keyslots");
	digests = object_member(m, "digests");
	config = object_member(m, "config");
	if (!segs || !keyslots || !digests || !config) {
		refuse(why, len,
		       "the metadata lacks segments, keyslots, digests or "
		       "config");
		goto out;
	}
	if (!decimal(string_member(config, "json_size"), &json_size) ||
	    !decimal(string_member(config, "keyslots_size"), &keyslots_size) ||
	    json_size > HDR_JSON_MAX || keyslots_size > device_size) {
		refuse(why, len,
		       "config \"json_size\" or \"keyslots_size\" is not a "
		       "size that fits the device");
		goto out;
	}
	l.keyslots_start = 2 * (json_size + HDR_BIN_LEN);
	l.meta_end = l.keyslots_start + keyslots_size;

	/* Requirements: LUKS2's online reencryption, and nothing else. */
	req = object_member(config, "requirements");
	if (req && json_object_object_get_ex(req, "mandatory", &req)) {
		for (size_t i = 0; json_object_is_type(req, json_type_array) &&
				   i < json_object_array_length(req);
		     i++) {
			const char *s = json_object_get_string(
				json_object_array_get_idx(req, i));

			if (!s || strncmp(s, REQUIREMENT_REENC,
					  strlen(REQUIREMENT_REENC))) {
				refuse(why, len,
				       "config requires \"%s\", which cmkfs "
				       "does not know",
				       s ? s : "(not a string)");
				goto out;
			}
			reenc_required = true;
		}
	}

	json_object_object_foreach(segs, fid, fseg)
	{
		if (!json_object_is_type(fseg, json_type_object)) {
			refuse(why, len, "segment %s is not an object", fid);
			goto out;
		}
		if (luks2_seg_flag(fseg, "backup-final"))
			l.reencrypting = true;
	}
	/* A reencryption has both its segments and its requirement (which
	 * makes libcryptsetup treat it as one): segments alone would relax
	 * the rules below for a volume nothing reencrypts. */
	if (l.reencrypting != reenc_required) {
		refuse(why, len,
		       "the segments and the requirements disagree on whether "
		       "a reencryption is in progress");
		goto out;
	}
	json_object_object_foreach(segs, sid, seg)
	{
		if (!luks2_seg_flag(seg, "backup-"))
			n_live++;
		n_segs++;
		r = check_segment(&l, digests, sid, seg, why, len);
		if (r)
			goto out;
		r = -EINVAL;
	}
	if (!n_live) {
		refuse(why, len, "the metadata has no data segment");
		goto out;
	}
	if (l.reencrypting && !(flags & HDR_ALLOW_REENCRYPTING)) {
		refuse(why, len, "the volume is being reencrypted");
		goto out;
	}
	if (!l.reencrypting && n_segs != 1) {
		refuse(why, len,
		       "the metadata has %u segments; cmkfs serves a volume "
		       "of one",
		       n_segs);
		goto out;
	}
	json_object_object_foreach(keyslots, kid, ks)
	{
		if (!json_object_is_type(ks, json_type_object)) {
			refuse(why, len, "keyslot %s is not an object", kid);
			goto out;
		}
		r = check_keyslot(&l, kid, ks, why, len);
		if (r)
			goto out;
		r = -EINVAL;
	}
	r = 0;
out:
	json_object_put(m);
	return r;
}
