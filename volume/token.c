/* SPDX-License-Identifier: Apache-2.0 */
/*
 * token.c — the LUKS2 tokens that carry a volume's keyslot secret wrapped
 * (volume.h: "The keys and their tokens"): the names of keys, building an
 * aws-kms or kmip token, and parsing one back from a header — hostile
 * input, taken only when every field is on the allow-list.  The wrapping
 * itself is service.c's; the LUKS side (keyslots, tokens on disk) is
 * crypto/luks2/; this file never touches the device or the network.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "crypto.h"
#include "internal.h"
#include "kms.h"
#include "luks2.h"
#include "volume.h"

#define MAX_TOKEN_BLOB ((size_t)6144)

void vol_binding_of(const struct luks2_info *info, struct vol_binding *b)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->uuid, sizeof(b->uuid), "%s", info->uuid);
	snprintf(b->segment, sizeof(b->segment), "%s:%u:%u:%" PRIu64,
		 info->cipher, info->key_bytes * 8, info->sector_size,
		 info->data_offset);
}

static json_object *binding_object(const struct vol_binding *b)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, VOL_CONTEXT_VOLUME,
			       json_object_new_string(b->uuid));
	json_object_object_add(o, VOL_CONTEXT_SEGMENT,
			       json_object_new_string(b->segment));
	return o;
}

static void add_base64(json_object *t, const char *name, const uint8_t *p,
		       size_t n, bool *ok)
{
	char *b64 = malloc(B64_ENCODED_SIZE(n));

	if (!b64) {
		*ok = false;
		return;
	}
	b64_encode(p, n, b64);
	json_object_object_add(t, name, json_object_new_string(b64));
	free(b64);
}

/* A token of type with "keyslots": [] and "created": now, its other members
 * added by the caller (object_done then makes it a string). */
static json_object *object_begin(const char *type)
{
	json_object *t = json_object_new_object();
	char created[40];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(t, "type", json_object_new_string(type));
	json_object_object_add(t, "keyslots", json_object_new_array());
	json_object_object_add(t, "created", json_object_new_string(created));
	return t;
}

static char *object_done(json_object *t, bool ok)
{
	char *json = ok ? strdup(json_object_to_json_string_ext(
				  t, JSON_C_TO_STRING_PLAIN |
					     JSON_C_TO_STRING_NOSLASHESCAPE))
			: NULL;

	json_object_put(t);
	return json;
}

char *vol_token_json_aws(const char *key_arn, const char *region,
			 const struct vol_binding *b, const uint8_t *blob,
			 size_t blob_len)
{
	json_object *t = object_begin(VOL_TOKEN_TYPE);
	char arn_region[64];
	bool ok = true;

	if (kms_arn_region(key_arn, arn_region, sizeof(arn_region)))
		region = arn_region;
	json_object_object_add(t, "key_arn", json_object_new_string(key_arn));
	json_object_object_add(t, "region", json_object_new_string(region));
	add_base64(t, "ciphertext", blob, blob_len, &ok);
	json_object_object_add(t, "encryption_context", binding_object(b));
	return object_done(t, ok);
}

char *vol_token_json_kmip(const char *key, const struct vol_binding *b,
			  const struct kmip_wrapped *w)
{
	json_object *t = object_begin(VOL_TOKEN_TYPE_KMIP);
	char host[256], uid[256], server[300];
	unsigned port;
	bool ok = vol_kmip_name(key, host, &port, uid);

	if (!ok) {
		json_object_put(t);
		return NULL;
	}
	snprintf(server, sizeof(server), "%s:%u", host, port);
	json_object_object_add(t, "server", json_object_new_string(server));
	json_object_object_add(t, "unique_identifier",
			       json_object_new_string(uid));
	add_base64(t, "iv", w->iv, sizeof(w->iv), &ok);
	add_base64(t, "tag", w->tag, sizeof(w->tag), &ok);
	add_base64(t, "ciphertext", w->ct, w->ct_len, &ok);
	json_object_object_add(t, "authenticated_data", binding_object(b));
	return object_done(t, ok);
}

size_t vol_kmip_aad(const struct vol_binding *b, bool segment, char *out,
		    size_t len)
{
	int n = segment ? snprintf(out, len, "%s=%s\n%s=%s", VOL_CONTEXT_VOLUME,
				   b->uuid, VOL_CONTEXT_SEGMENT, b->segment)
			: snprintf(out, len, "%s=%s", VOL_CONTEXT_VOLUME,
				   b->uuid);

	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

enum vol_key_kind vol_key_kind_of(const char *key)
{
	return strncmp(key, VOL_KMIP_SCHEME, strlen(VOL_KMIP_SCHEME))
		       ? VOL_KEY_AWS
		       : VOL_KEY_KMIP;
}

/* Is h (n bytes) a canonical dotted quad: four numbers 0..255 without
 * leading zeros? */
static bool dotted_quad(const char *h, size_t n)
{
	unsigned parts = 0, v = 0, digits = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i == n || h[i] == '.') {
			if (!digits || v > 255 ||
			    (digits > 1 && h[i - digits] == '0'))
				return false;
			parts++;
			v = digits = 0;
		} else if (h[i] >= '0' && h[i] <= '9') {
			v = v * 10 + (unsigned)(h[i] - '0');
			if (++digits > 3)
				return false;
		} else {
			return false;
		}
	}
	return parts == 4;
}

/* Is h (n bytes) a host name in its one spelling: lower-case labels of
 * letters, digits and inner dashes, none empty (no trailing dot), the last
 * one starting with a letter — so that nothing the resolver would read as
 * a number ("127.1", "0x7f000001") passes, and one host is not two names
 * to the comparisons of keys — or else a canonical dotted quad? */
static bool host_valid(const char *h, size_t n)
{
	size_t start = 0;

	if (!n || n > 99)
		return false;
	if (dotted_quad(h, n))
		return true;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && h[i] != '.') {
			if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789-",
				    h[i]))
				return false;
			continue;
		}
		if (i == start || h[start] == '-' || h[i - 1] == '-' ||
		    i - start > 63)
			return false;
		if (i == n && !(h[start] >= 'a' && h[start] <= 'z'))
			return false;
		start = i + 1;
	}
	return true;
}

/* HOST:PORT of a KMIP key name or a kmip token's server (n bytes): its
 * parts, when on the allow-list. */
static bool server_valid(const char *s, size_t n, char *host, unsigned *port)
{
	const char *colon = memrchr(s, ':', n);
	size_t hl = colon ? (size_t)(colon - s) : 0, pl = n - hl - 1;
	unsigned long p = 0;

	if (!colon || !host_valid(s, hl) || !pl || pl > 5 || colon[1] == '0' ||
	    strspn(colon + 1, "0123456789") < pl)
		return false;
	for (size_t i = 1; i <= pl; i++)
		p = p * 10 + (unsigned long)(colon[i] - '0');
	if (!p || p > 65535)
		return false;
	if (host)
		snprintf(host, 256, "%.*s", (int)hl, s);
	if (port)
		*port = (unsigned)p;
	return true;
}

static bool uid_valid(const char *u)
{
	size_t n = strlen(u);

	if (!n || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if (u[i] <= 0x20 || u[i] > 0x7e || strchr("\"'\\/,", u[i]))
			return false;
	return true;
}

bool vol_kmip_name(const char *name, char *host, unsigned *port, char *uid)
{
	size_t sl = strlen(VOL_KMIP_SCHEME);
	const char *s, *slash;

	if (vol_key_kind_of(name) != VOL_KEY_KMIP)
		return false;
	s = name + sl;
	slash = strchr(s, '/');
	if (!slash || !server_valid(s, (size_t)(slash - s), host, port) ||
	    !uid_valid(slash + 1))
		return false;
	if (uid)
		snprintf(uid, 256, "%s", slash + 1);
	return true;
}

/* A string of printable ASCII only, NUL included: what another reader
 * of the token sees is what was checked, and no field can carry control
 * characters into a log or a terminal.  NULL for anything else. */
static const char *clean_string(json_object *v)
{
	const char *s;
	size_t n;

	if (!json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (strlen(s) != n)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return NULL;
	return s;
}

static const char *string_member(json_object *o, const char *name)
{
	json_object *v;

	if (!json_object_object_get_ex(o, name, &v))
		return NULL;
	return clean_string(v);
}

/* Is arn a KMS key's ARN, "arn:PARTITION:kms:REGION:ACCOUNT:key/ID"
 * (ACCOUNT twelve digits, ID letters, digits and dashes)?  A volume
 * always names its keys so. */
static bool key_arn_valid(const char *arn)
{
	char region[64];
	const char *p;
	size_t n;

	if (strncmp(arn, "arn:aws", 7) ||
	    !kms_arn_region(arn, region, sizeof(region)) ||
	    !kms_region_valid(region))
		return false;
	p = arn + 7;
	p += strspn(p, "abcdefghijklmnopqrstuvwxyz-");
	if (strncmp(p, ":kms:", 5))
		return false;
	p += 5 + strlen(region);
	if (*p++ != ':' || strspn(p, "0123456789") != 12)
		return false;
	p += 12;
	if (strncmp(p, ":key/", 5))
		return false;
	p += 5;
	n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789-");
	return n > 0 && n <= 128 && !p[n];
}

/* Copy a string member into a fixed field; false if absent or too long. */
static bool copy_member(json_object *o, const char *name, char *out, size_t len)
{
	const char *s = string_member(o, name);

	if (!s || strlen(s) >= len)
		return false;
	memcpy(out, s, strlen(s) + 1);
	return true;
}

/* The members only an aws-kms token has: 0, or -EINVAL with why said. */
static int parse_aws(json_object *t, struct vol_token *out, char *why,
		     size_t whylen)
{
	char arn_region[64];

	if (!copy_member(t, "key_arn", out->key_arn, sizeof(out->key_arn)) ||
	    !copy_member(t, "region", out->region, sizeof(out->region))) {
		snprintf(why, whylen,
			 "the aws-kms token lacks key_arn or region (strings "
			 "of printable ASCII)");
		return -EINVAL;
	}
	if (!key_arn_valid(out->key_arn)) {
		snprintf(why, whylen,
			 "the aws-kms token's key_arn is not a KMS key ARN");
		return -EINVAL;
	}
	/* The region picks the KMS endpoint this host asks: only a region
	 * name, the key's own. */
	if (!kms_region_valid(out->region) ||
	    !kms_arn_region(out->key_arn, arn_region, sizeof(arn_region)) ||
	    strcmp(arn_region, out->region)) {
		snprintf(why, whylen,
			 "the aws-kms token's region is not its key's AWS "
			 "region");
		return -EINVAL;
	}
	return 0;
}

/* Exactly n bytes of base64 member name into out. */
static bool fixed_base64(json_object *t, const char *name, uint8_t *out,
			 size_t n)
{
	const char *b64 = string_member(t, name);
	uint8_t buf[64];

	if (!b64 || strlen(b64) != B64_ENCODED_SIZE(n) - 1 ||
	    B64_DECODED_MAX(strlen(b64)) > sizeof(buf) ||
	    b64_decode(b64, strlen(b64), buf) != (long)n)
		return false;
	memcpy(out, buf, n);
	return true;
}

/* The members only a kmip token has: 0, or -EINVAL with why said.  The
 * server picks whom this host connects to and the identifier goes into a
 * request: both on vol_kmip_name's allow-list. */
static int parse_kmip(json_object *t, struct vol_token *out, char *why,
		      size_t whylen)
{
	const char *server = string_member(t, "server");
	const char *uid = string_member(t, "unique_identifier");

	out->kind = VOL_KEY_KMIP;
	if (server && uid && strlen(server) < 100 && strlen(uid) < 140)
		snprintf(out->key_arn, sizeof(out->key_arn), "%s%.99s/%.139s",
			 VOL_KMIP_SCHEME, server, uid);
	if (!server || !uid ||
	    !vol_kmip_name(out->key_arn, out->host, &out->port, out->uid)) {
		out->key_arn[0] = 0;
		snprintf(why, whylen,
			 "the kmip token's server (HOST:PORT) or "
			 "unique_identifier is missing or malformed");
		return -EINVAL;
	}
	if (!fixed_base64(t, "iv", out->iv, sizeof(out->iv)) ||
	    !fixed_base64(t, "tag", out->tag, sizeof(out->tag))) {
		snprintf(why, whylen,
			 "the kmip token's iv (%d bytes) or tag (%d bytes) is "
			 "missing or malformed",
			 KMIP_GCM_IV, KMIP_GCM_TAG);
		return -EINVAL;
	}
	return 0;
}

/* The binding member of the token (name), copied into out: 0, or -EINVAL
 * with why said. */
static int parse_binding(json_object *t, const char *name,
			 struct vol_token *out, char *why, size_t whylen)
{
	size_t strings = 0, used = 0;
	json_object *v;

	if (!json_object_object_get_ex(t, name, &v) ||
	    !json_object_is_type(v, json_type_object) ||
	    json_object_object_length(v) < 1 ||
	    json_object_object_length(v) > VOL_TOKEN_MAX_CONTEXT) {
		snprintf(why, whylen, "the token has no usable %s", name);
		return -EINVAL;
	}
	json_object_object_foreach(v, k, val)
	{
		if (!clean_string(val)) {
			snprintf(why, whylen,
				 "the token's %s values must be strings of "
				 "printable ASCII",
				 name);
			return -EINVAL;
		}
		if (strcmp(k, VOL_CONTEXT_VOLUME) &&
		    strcmp(k, VOL_CONTEXT_SEGMENT)) {
			snprintf(why, whylen,
				 "the token's %s has \"%.64s\", which cmkfs "
				 "does not bind",
				 name, k);
			return -EINVAL;
		}
		out->segment_bound |= !strcmp(k, VOL_CONTEXT_SEGMENT);
		strings += strlen(k) + 1 +
			   (size_t)json_object_get_string_len(val) + 1;
	}
	out->strings = malloc(strings ? strings : 1);
	if (!out->strings)
		return -ENOMEM;
	json_object_object_foreach(v, k2, val2)
	{
		size_t kl = strlen(k2) + 1,
		       vl = strlen(json_object_get_string(val2)) + 1;

		memcpy(out->strings + used, k2, kl);
		out->context[out->n_context].key = out->strings + used;
		used += kl;
		memcpy(out->strings + used, json_object_get_string(val2), vl);
		out->context[out->n_context].value = out->strings + used;
		used += vl;
		out->n_context++;
	}
	return 0;
}

int vol_token_parse(const char *json, struct vol_token *out, char *why,
		    size_t whylen)
{
	json_object *t = json_tokener_parse(json), *v;
	const char *type, *b64, *tname;
	char none[1];
	bool kmip;
	long n;
	int r = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (!why || !whylen) {
		why = none;
		whylen = sizeof(none);
	}
	if (!json_object_is_type(t, json_type_object)) {
		snprintf(why, whylen, "the token is not a JSON object");
		goto out;
	}
	type = string_member(t, "type");
	kmip = type && !strcmp(type, VOL_TOKEN_TYPE_KMIP);
	if (!type || (!kmip && strcmp(type, VOL_TOKEN_TYPE))) {
		snprintf(why, whylen, "not an aws-kms or kmip token");
		r = -ENOMSG;
		goto out;
	}
	tname = kmip ? "kmip" : "aws-kms";
	r = kmip ? parse_kmip(t, out, why, whylen)
		 : parse_aws(t, out, why, whylen);
	if (r)
		goto out;
	r = -EINVAL;
	copy_member(t, "created", out->created, sizeof(out->created));
	b64 = string_member(t, "ciphertext");
	if (!b64 || strlen(b64) > 4 * ((MAX_TOKEN_BLOB + 2) / 3)) {
		snprintf(why, whylen, "the %s token has no usable ciphertext",
			 tname);
		goto out;
	}
	out->blob = malloc(B64_DECODED_MAX(strlen(b64)) + 1);
	if (!out->blob) {
		r = -ENOMEM;
		goto out;
	}
	n = b64_decode(b64, strlen(b64), out->blob);
	/* What cmkfs wraps under a KMIP key is the secret itself: GCM
	 * keeps its length. */
	if (n < 1 || (kmip && n != VOL_SECRET_BYTES)) {
		snprintf(why, whylen,
			 kmip ? "the kmip token's ciphertext is not %d bytes "
				"of base64"
			      : "the aws-kms token's ciphertext is not base64",
			 VOL_SECRET_BYTES);
		goto out;
	}
	out->blob_len = (size_t)n;
	if (json_object_object_get_ex(t, "keyslots", &v) &&
	    json_object_is_type(v, json_type_array)) {
		for (size_t i = 0;
		     i < json_object_array_length(v) && out->n_keyslots < 8;
		     i++) {
			const char *s =
				clean_string(json_object_array_get_idx(v, i));
			char *end;
			long k = s ? strtol(s, &end, 10) : -1;

			if (!s || *end || k < 0 || k > 31) {
				snprintf(why, whylen,
					 "the %s token names a bad keyslot",
					 tname);
				goto out;
			}
			out->keyslots[out->n_keyslots++] = (int)k;
		}
	}
	r = parse_binding(t, kmip ? "authenticated_data" : "encryption_context",
			  out, why, whylen);
	/* A kmip token was bound to the segment from the first. */
	if (!r && kmip && (!out->segment_bound || out->n_context != 2)) {
		snprintf(why, whylen,
			 "the kmip token's authenticated_data lacks %s or %s",
			 VOL_CONTEXT_VOLUME, VOL_CONTEXT_SEGMENT);
		r = -EINVAL;
	}
out:
	if (r)
		vol_token_free(out);
	json_object_put(t);
	return r;
}

void vol_token_free(struct vol_token *t)
{
	if (!t)
		return;
	free(t->blob);
	free(t->strings);
	memset(t, 0, sizeof(*t));
}

/* The value of key in t's context, or NULL. */
static const char *context_value(const struct vol_token *t, const char *key)
{
	for (size_t i = 0; i < t->n_context; i++)
		if (!strcmp(t->context[i].key, key))
			return t->context[i].value;
	return NULL;
}

int vol_token_matches(const struct vol_token *t, const struct vol_binding *b,
		      char *why, size_t len)
{
	const char *uuid = context_value(t, VOL_CONTEXT_VOLUME);
	const char *seg = context_value(t, VOL_CONTEXT_SEGMENT);

	if (!uuid || strcmp(uuid, b->uuid)) {
		snprintf(why, len,
			 "its token was made for volume %.40s, not "
			 "this one (%s): it was copied from another volume",
			 uuid ? uuid : "(none)", b->uuid);
		return -EINVAL;
	}
	if (seg && strcmp(seg, b->segment)) {
		snprintf(why, len,
			 "the header does not match what the key was bound "
			 "to: the data segment was %.100s and the header now "
			 "says %s (the header was changed)",
			 seg, b->segment);
		return -EINVAL;
	}
	return 0;
}
