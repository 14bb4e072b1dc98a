/* SPDX-License-Identifier: Apache-2.0 */
/*
 * token.c — the KMS side of a cmkfs volume: making a keyslot secret under
 * the volume's CMK, the aws-kms LUKS2 token that carries it wrapped, and
 * unwrapping it again.  The LUKS side (keyslots, tokens on disk) is
 * crypto/luks2/; this file never touches the device.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "crypto.h"
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

/* The encryption context of b, the segment left out for a token made
 * before it was bound: the number of pairs. */
static size_t context_of(const struct vol_binding *b, bool segment,
			 struct kms_kv ctx[2])
{
	ctx[0] = (struct kms_kv){ VOL_CONTEXT_VOLUME, b->uuid };
	ctx[1] = (struct kms_kv){ VOL_CONTEXT_SEGMENT, b->segment };
	return segment ? 2 : 1;
}

/* The aws-kms token for a secret wrapped under all of b, "keyslots": []
 * (malloc). */
static char *token_build(struct kms_client *c, const char *key_arn,
			 const struct vol_binding *b, const uint8_t *blob,
			 size_t blob_len)
{
	json_object *t, *o;
	char region[64], created[40], *b64, *json;
	time_t now = time(NULL);
	struct tm tm;

	b64 = malloc(B64_ENCODED_SIZE(blob_len));
	if (!b64)
		return NULL;
	b64_encode(blob, blob_len, b64);
	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!kms_arn_region(key_arn, region, sizeof(region)))
		snprintf(region, sizeof(region), "%s", kms_client_region(c));

	t = json_object_new_object();
	o = json_object_new_object();
	json_object_object_add(o, VOL_CONTEXT_VOLUME,
			       json_object_new_string(b->uuid));
	json_object_object_add(o, VOL_CONTEXT_SEGMENT,
			       json_object_new_string(b->segment));
	json_object_object_add(t, "type",
			       json_object_new_string(VOL_TOKEN_TYPE));
	json_object_object_add(t, "keyslots", json_object_new_array());
	json_object_object_add(t, "key_arn", json_object_new_string(key_arn));
	json_object_object_add(t, "region", json_object_new_string(region));
	json_object_object_add(t, "ciphertext", json_object_new_string(b64));
	json_object_object_add(t, "encryption_context", o);
	json_object_object_add(t, "created", json_object_new_string(created));
	json = strdup(json_object_to_json_string_ext(
		t, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(t);
	free(b64);
	return json;
}

int vol_secret_new(struct kms_client *c, const char *key_arn,
		   const struct vol_binding *b, uint8_t **secret,
		   char **token_json, struct kms_error *err)
{
	struct kms_kv ctx[2];
	size_t n = context_of(b, true, ctx);
	uint8_t *blob = NULL;
	size_t blob_len;
	int r;

	*token_json = NULL;
	r = kms_generate_data_key(c, key_arn, ctx, n, VOL_SECRET_BYTES, secret,
				  &blob, &blob_len, err);
	if (r)
		return r;
	*token_json = token_build(c, key_arn, b, blob, blob_len);
	free(blob);
	if (!*token_json) {
		secmem_free(*secret);
		*secret = NULL;
		return -ENOMEM;
	}
	return 0;
}

int vol_secret_wrap(struct kms_client *c, const char *key_arn,
		    const struct vol_binding *b, const uint8_t *secret,
		    char **token_json, struct kms_error *err)
{
	struct kms_kv ctx[2];
	size_t n = context_of(b, true, ctx);
	uint8_t *blob = NULL;
	size_t blob_len;
	int r;

	*token_json = NULL;
	r = kms_encrypt(c, key_arn, ctx, n, secret, VOL_SECRET_BYTES, &blob,
			&blob_len, err);
	if (r)
		return r;
	*token_json = token_build(c, key_arn, b, blob, blob_len);
	free(blob);
	return *token_json ? 0 : -ENOMEM;
}

int vol_secret_rewrap(struct kms_client *c, const struct vol_token *t,
		      const struct vol_binding *b, const char *new_arn,
		      char **token_json, struct kms_error *err)
{
	struct kms_kv src[2], dst_ctx[2];
	size_t n_src = context_of(b, t->segment_bound, src);
	size_t n_dst = context_of(b, true, dst_ctx);
	const char *dst = new_arn ? new_arn : t->key_arn;
	uint8_t *blob = NULL;
	size_t blob_len;
	int r;

	*token_json = NULL;
	r = kms_re_encrypt(c, t->key_arn, src, n_src, t->blob, t->blob_len, dst,
			   dst_ctx, n_dst, &blob, &blob_len, err);
	if (r)
		return r;
	*token_json = token_build(c, dst, b, blob, blob_len);
	free(blob);
	return *token_json ? 0 : -ENOMEM;
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

int vol_token_parse(const char *json, struct vol_token *out, char *why,
		    size_t whylen)
{
	json_object *t = json_tokener_parse(json), *v;
	const char *type, *b64;
	char none[1], arn_region[64];
	size_t strings = 0, used = 0;
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
	if (!type || strcmp(type, VOL_TOKEN_TYPE)) {
		snprintf(why, whylen, "not an aws-kms token");
		r = -ENOMSG;
		goto out;
	}
	if (!copy_member(t, "key_arn", out->key_arn, sizeof(out->key_arn)) ||
	    !copy_member(t, "region", out->region, sizeof(out->region))) {
		snprintf(why, whylen,
			 "the aws-kms token lacks key_arn or region (strings "
			 "of printable ASCII)");
		goto out;
	}
	if (!key_arn_valid(out->key_arn)) {
		snprintf(why, whylen,
			 "the aws-kms token's key_arn is not a KMS key ARN");
		goto out;
	}
	/* The region picks the KMS endpoint this host asks: only a region
	 * name, the key's own. */
	if (!kms_region_valid(out->region) ||
	    !kms_arn_region(out->key_arn, arn_region, sizeof(arn_region)) ||
	    strcmp(arn_region, out->region)) {
		snprintf(why, whylen,
			 "the aws-kms token's region is not its key's AWS "
			 "region");
		goto out;
	}
	copy_member(t, "created", out->created, sizeof(out->created));
	b64 = string_member(t, "ciphertext");
	if (!b64 || strlen(b64) > 4 * ((MAX_TOKEN_BLOB + 2) / 3)) {
		snprintf(why, whylen,
			 "the aws-kms token has no usable ciphertext");
		goto out;
	}
	out->blob = malloc(B64_DECODED_MAX(strlen(b64)) + 1);
	if (!out->blob) {
		r = -ENOMEM;
		goto out;
	}
	n = b64_decode(b64, strlen(b64), out->blob);
	if (n < 1) {
		snprintf(why, whylen,
			 "the aws-kms token's ciphertext is not base64");
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
				snprintf(
					why, whylen,
					"the aws-kms token names a bad keyslot");
				goto out;
			}
			out->keyslots[out->n_keyslots++] = (int)k;
		}
	}
	if (!json_object_object_get_ex(t, "encryption_context", &v) ||
	    !json_object_is_type(v, json_type_object) ||
	    json_object_object_length(v) < 1 ||
	    json_object_object_length(v) > VOL_TOKEN_MAX_CONTEXT) {
		snprintf(why, whylen,
			 "the aws-kms token has no usable encryption_context");
		goto out;
	}
	json_object_object_foreach(v, k, val)
	{
		if (!clean_string(val)) {
			snprintf(why, whylen,
				 "the token's encryption_context "
				 "values must be strings of printable "
				 "ASCII");
			goto out;
		}
		if (strcmp(k, VOL_CONTEXT_VOLUME) &&
		    strcmp(k, VOL_CONTEXT_SEGMENT)) {
			snprintf(why, whylen,
				 "the token's encryption_context has "
				 "\"%.64s\", which cmkfs does not bind",
				 k);
			goto out;
		}
		out->segment_bound |= !strcmp(k, VOL_CONTEXT_SEGMENT);
		strings += strlen(k) + 1 +
			   (size_t)json_object_get_string_len(val) + 1;
	}
	out->strings = malloc(strings ? strings : 1);
	if (!out->strings) {
		r = -ENOMEM;
		goto out;
	}
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
	r = 0;
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
			 "its aws-kms token was made for volume %.40s, not "
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

int vol_secret_unwrap(struct kms_client *c, const struct vol_token *t,
		      const struct vol_binding *b, uint8_t **secret,
		      size_t *len, struct kms_error *err)
{
	struct kms_kv ctx[2];
	size_t n = context_of(b, t->segment_bound, ctx);
	int r = kms_decrypt(c, t->key_arn, ctx, n, t->blob, t->blob_len, secret,
			    len, err);

	/* A secret of another size is not one cmkfs made: refuse to use it. */
	if (!r && *len != VOL_SECRET_BYTES) {
		secmem_free(*secret);
		*secret = NULL;
		memset(err, 0, sizeof(*err));
		err->status = KMS_PROTOCOL;
		snprintf(err->type, sizeof(err->type), "BadSecret");
		snprintf(err->message, sizeof(err->message),
			 "the token of key %s unwraps to %zu bytes, not %d",
			 t->key_arn, *len, VOL_SECRET_BYTES);
		return -EPROTO;
	}
	return r;
}
