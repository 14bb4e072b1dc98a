/* SPDX-License-Identifier: Apache-2.0 */
/*
 * service.c — the service that holds a volume's key (volume.h, struct
 * vol_kms) and the keyslot secret's wrapping through it: AWS KMS (or
 * cmkfs-kmsd), which makes the secret itself (GenerateDataKey) and binds it
 * with an encryption context, or a KMIP server, which wraps a secret of
 * ours with AES-GCM and the binding as additional authenticated data.
 * The tokens' JSON is token.c's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "internal.h"
#include "kms.h"
#include "volume.h"

/* err said as a local failure (nothing was sent): -EINVAL. */
static int __attribute__((format(printf, 3, 4)))
config_error(struct kms_error *err, const char *type, const char *fmt, ...)
{
	va_list ap;

	memset(err, 0, sizeof(*err));
	err->status = KMS_CONFIG;
	snprintf(err->type, sizeof(err->type), "%s", type);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int vol_kms_open(const struct kms_options *ko, const char *key,
		 struct vol_kms **out, struct kms_error *err)
{
	struct vol_kms *k = calloc(1, sizeof(*k));
	char host[256];
	unsigned port;
	int r;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	if (!k) {
		config_error(err, "OutOfMemory", "out of memory");
		return -ENOMEM;
	}
	k->kind = vol_key_kind_of(key);
	if (k->kind == VOL_KEY_KMIP) {
		const struct kmip_options o = {
			.cert = ko->kmip_cert,
			.key = ko->kmip_key,
			.ca = ko->kmip_ca,
			.connect_timeout_ms = ko->connect_timeout_ms,
			.timeout_ms = ko->timeout_ms,
			.max_attempts = ko->max_attempts,
			.retry_budget_ms = ko->retry_budget_ms,
		};

		if (!vol_kmip_name(key, host, &port, NULL)) {
			free(k);
			return config_error(err, "InvalidKeyName",
					    "'%.300s' is not a KMIP key name "
					    "(kmip://HOST:PORT/UNIQUE-ID)",
					    key);
		}
		snprintf(k->where, sizeof(k->where), "%s:%u", host, port);
		r = kmip_client_new(&k->kmip, host, port, &o, err);
	} else {
		r = kms_client_new(&k->aws, ko, err);
	}
	if (r) {
		free(k);
		return r;
	}
	*out = k;
	return 0;
}

void vol_kms_free(struct vol_kms *k)
{
	if (!k)
		return;
	kms_client_free(k->aws);
	kmip_client_free(k->kmip);
	free(k);
}

enum vol_key_kind vol_kms_kind(const struct vol_kms *k)
{
	return k->kind;
}

const char *vol_kms_where(const struct vol_kms *k)
{
	return k->kind == VOL_KEY_KMIP ? k->where : kms_client_region(k->aws);
}

int vol_kms_for(const struct kms_options *ko, const char *key,
		struct vol_kms **k, struct vol_error *e)
{
	struct kms_options o = *ko;
	char region[64];
	int r;

	if (!o.region && kms_arn_region(key, region, sizeof(region)))
		o.region = region;
	r = vol_kms_open(&o, key, k, &e->kms);

	if (r)
		e->what = VOL_FAIL_KMS_CLIENT;
	return r;
}

int vol_kms_for_token(const struct kms_options *ko, const struct vol_token *t,
		      struct vol_kms **k, struct kms_error *kerr)
{
	struct kms_options o = *ko;

	if (!o.region && t->kind == VOL_KEY_AWS)
		o.region = t->region;
	return vol_kms_open(&o, t->key_arn, k, kerr);
}

/* Is k the service of key?  Else -EINVAL with err said: a caller's
 * mistake, caught before anything is sent. */
static int serves(const struct vol_kms *k, const char *key,
		  struct kms_error *err)
{
	char host[256], where[300];
	unsigned port;

	memset(err, 0, sizeof(*err));
	if (vol_key_kind_of(key) != k->kind)
		return config_error(err, "WrongService",
				    "the key %.300s is not of this service's "
				    "kind",
				    key);
	if (k->kind == VOL_KEY_KMIP) {
		if (!vol_kmip_name(key, host, &port, NULL))
			return config_error(err, "InvalidKeyName",
					    "'%.300s' is not a KMIP key name",
					    key);
		snprintf(where, sizeof(where), "%s:%u", host, port);
		if (strcmp(where, k->where))
			return config_error(err, "WrongService",
					    "the key %.300s is on another KMIP "
					    "server",
					    key);
	}
	return 0;
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

/* secret wrapped by the KMIP key key bound to all of b: the token. */
static int kmip_wrap(struct vol_kms *k, const char *key,
		     const struct vol_binding *b, const uint8_t *secret,
		     char **token_json, struct kms_error *err)
{
	char uid[256], aad[256];
	size_t aadlen = vol_kmip_aad(b, true, aad, sizeof(aad));
	struct kmip_wrapped w;
	int r;

	if (!vol_kmip_name(key, NULL, NULL, uid) || !aadlen)
		return config_error(err, "InvalidBinding",
				    "the binding of %.300s does not fit", key);
	r = kmip_encrypt(k->kmip, uid, secret, VOL_SECRET_BYTES,
			 (const uint8_t *)aad, aadlen, &w, err);
	if (r)
		return r;
	*token_json = vol_token_json_kmip(key, b, &w);
	return *token_json ? 0 : -ENOMEM;
}

/* What a KMS call through k that returned r made of blob (freed here):
 * the aws-kms token of key bound to all of b.  r, or -ENOMEM. */
static int aws_token(struct vol_kms *k, const char *key,
		     const struct vol_binding *b, int r, uint8_t *blob,
		     size_t blob_len, char **token_json)
{
	if (!r) {
		*token_json = vol_token_json_aws(key, kms_client_region(k->aws),
						 b, blob, blob_len);
		r = *token_json ? 0 : -ENOMEM;
	}
	free(blob);
	return r;
}

int vol_secret_new(struct vol_kms *k, const char *key_arn,
		   const struct vol_binding *b, uint8_t **secret,
		   char **token_json, struct kms_error *err)
{
	struct kms_kv ctx[2];
	size_t n = context_of(b, true, ctx), blob_len = 0;
	uint8_t *blob = NULL;
	int r;

	*token_json = NULL;
	*secret = NULL;
	r = serves(k, key_arn, err);
	if (r)
		return r;
	if (k->kind == VOL_KEY_KMIP) {
		/* The secret is ours, from the kernel's random source; the
		 * server only wraps it. */
		*secret = secmem_alloc(VOL_SECRET_BYTES);
		if (!*secret)
			return -ENOMEM;
		r = crypto_random(*secret, VOL_SECRET_BYTES);
		if (r)
			config_error(err, "NoRandom",
				     "no random bytes for a secret of %.300s",
				     key_arn);
		else
			r = kmip_wrap(k, key_arn, b, *secret, token_json, err);
	} else {
		r = kms_generate_data_key(k->aws, key_arn, ctx, n,
					  VOL_SECRET_BYTES, secret, &blob,
					  &blob_len, err);
		r = aws_token(k, key_arn, b, r, blob, blob_len, token_json);
	}
	if (r) {
		secmem_free(*secret);
		*secret = NULL;
	}
	return r;
}

int vol_secret_wrap(struct vol_kms *k, const char *key_arn,
		    const struct vol_binding *b, const uint8_t *secret,
		    char **token_json, struct kms_error *err)
{
	struct kms_kv ctx[2];
	size_t n = context_of(b, true, ctx), blob_len = 0;
	uint8_t *blob = NULL;
	int r;

	*token_json = NULL;
	r = serves(k, key_arn, err);
	if (r)
		return r;
	if (k->kind == VOL_KEY_KMIP)
		return kmip_wrap(k, key_arn, b, secret, token_json, err);
	r = kms_encrypt(k->aws, key_arn, ctx, n, secret, VOL_SECRET_BYTES,
			&blob, &blob_len, err);
	return aws_token(k, key_arn, b, r, blob, blob_len, token_json);
}

/* 0 when the key of t is Active, else -EKEYREVOKED with err said
 * (KMS_INVALID_STATE), or the failure of Get Attributes. */
static int kmip_key_active(struct vol_kms *k, const struct vol_token *t,
			   struct kms_error *err)
{
	static const char *const states[] = {
		"in no state it names",	 "Pre-Active",	"Active",
		"Deactivated",		 "Compromised", "Destroyed",
		"Destroyed Compromised",
	};
	struct kmip_key_info ki;
	int r = kmip_get_key_info(k->kmip, t->uid, &ki, err);

	if (r)
		return r;
	if (ki.state == KMIP_STATE_ACTIVE)
		return 0;
	memset(err, 0, sizeof(*err));
	if (ki.state < 0) {
		err->status = KMS_PROTOCOL;
		snprintf(err->type, sizeof(err->type), "NoState");
		snprintf(err->message, sizeof(err->message),
			 "the KMIP server did not say the state of %s",
			 t->key_arn);
		return -EPROTO;
	}
	err->status = KMS_INVALID_STATE;
	snprintf(err->type, sizeof(err->type), "KeyNotActive");
	snprintf(err->message, sizeof(err->message),
		 "the key %s is %s, not Active", t->key_arn,
		 ki.state < 7 ? states[ki.state] : states[0]);
	return -EKEYREVOKED;
}

int vol_secret_unwrap(struct vol_kms *k, const struct vol_token *t,
		      const struct vol_binding *b, uint8_t **secret,
		      size_t *len, struct kms_error *err)
{
	struct kms_kv ctx[2];
	size_t n = context_of(b, t->segment_bound, ctx);
	char aad[256];
	size_t aadlen;
	int r;

	*secret = NULL;
	r = serves(k, t->key_arn, err);
	if (r)
		return r;
	if (k->kind == VOL_KEY_KMIP) {
		struct kmip_wrapped w = { .ct_len = t->blob_len };

		/* KMIP lets a key out of the Active state (revoked,
		 * deactivated) still decrypt: only its state says the
		 * customer took it away. */
		r = kmip_key_active(k, t, err);
		if (r)
			return r;

		aadlen = vol_kmip_aad(b, t->segment_bound, aad, sizeof(aad));
		if (!aadlen || t->blob_len > sizeof(w.ct))
			return config_error(err, "InvalidToken",
					    "the token of %.300s does not fit",
					    t->key_arn);
		memcpy(w.iv, t->iv, sizeof(w.iv));
		memcpy(w.tag, t->tag, sizeof(w.tag));
		memcpy(w.ct, t->blob, t->blob_len);
		r = kmip_decrypt(k->kmip, t->uid, &w, (const uint8_t *)aad,
				 aadlen, secret, len, err);
	} else {
		r = kms_decrypt(k->aws, t->key_arn, ctx, n, t->blob,
				t->blob_len, secret, len, err);
	}
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

int vol_secret_rewrap(struct vol_kms *src, const struct vol_token *t,
		      const struct vol_binding *b, struct vol_kms *dst,
		      const char *new_arn, char **token_json,
		      struct kms_error *err)
{
	struct kms_kv from[2], to[2];
	size_t n_from = context_of(b, t->segment_bound, from);
	size_t n_to = context_of(b, true, to);
	const char *key = new_arn ? new_arn : t->key_arn;
	uint8_t *blob = NULL, *secret = NULL;
	size_t blob_len = 0, len;
	int r;

	*token_json = NULL;
	if (!dst)
		dst = src;
	r = serves(src, t->key_arn, err);
	if (!r)
		r = serves(dst, key, err);
	if (r)
		return r;
	if (src->kind == VOL_KEY_KMIP || dst->kind == VOL_KEY_KMIP) {
		r = vol_secret_unwrap(src, t, b, &secret, &len, err);
		if (!r)
			r = vol_secret_wrap(dst, key, b, secret, token_json,
					    err);
		secmem_free(secret);
		return r;
	}
	r = kms_re_encrypt(src->aws, t->key_arn, from, n_from, t->blob,
			   t->blob_len, key, to, n_to, &blob, &blob_len, err);
	return aws_token(src, key, b, r, blob, blob_len, token_json);
}
