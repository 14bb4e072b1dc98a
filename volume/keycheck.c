/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keycheck.c — the CMK rules (volume.h, vol_check_key), checked before a
 * volume is bound to a key: the key exists in the region in use, is a
 * symmetric encryption key with KMS-generated material (not imported), is
 * enabled, and the caller can GenerateDataKey and Decrypt with it — proven
 * by a dry round trip under a throwaway encryption context.  What is wrong
 * is returned as data; the command line words it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "internal.h"
#include "volume.h"

/* A KMS failure at step. */
static int kms_failed(struct vol_key_check *out, const char *step)
{
	out->problem = VOL_KEY_KMS;
	out->step = step;
	return -EKEYREJECTED;
}

/* The dry round trip: a data key under a throwaway context must decrypt
 * to itself. */
static int round_trip(struct kms_client *k, const char *arn,
		      struct vol_key_check *out)
{
	uint8_t *dk = NULL, *blob = NULL, *back = NULL, nonce[16];
	char nonce_hex[33];
	struct kms_kv ctx = { "cmkfs:check-key", nonce_hex };
	size_t blob_len, back_len;
	int r = 0;

	if (crypto_random(nonce, sizeof(nonce)))
		return -EIO;
	hex_encode(nonce, sizeof(nonce), nonce_hex);
	if (kms_generate_data_key(k, arn, &ctx, 1, 32, &dk, &blob, &blob_len,
				  &out->kms))
		return kms_failed(out, "GenerateDataKey");
	if (kms_decrypt(k, arn, &ctx, 1, blob, blob_len, &back, &back_len,
			&out->kms)) {
		r = kms_failed(out, "Decrypt");
	} else if (back_len != 32 || !secmem_equal(back, dk, 32)) {
		out->problem = VOL_KEY_BAD_ROUND_TRIP;
		r = -EKEYREJECTED;
	}
	secmem_free(dk);
	secmem_free(back);
	free(blob);
	return r;
}

/* KMIP's values (KMIP 1.4, 9.1.3.2): Object Type Symmetric Key,
 * Cryptographic Algorithm AES, State Active, usage mask bits Encrypt and
 * Decrypt. */
#define KMIP_SYMMETRIC_KEY 2
#define KMIP_AES	   3
#define KMIP_USE_ENCRYPT   0x04
#define KMIP_USE_DECRYPT   0x08

/* The KMIP rules: Get Attributes, then a dry GCM round trip under
 * throwaway additional data. */
static int check_kmip(struct vol_kms *k, const char *key,
		      struct vol_key_check *out)
{
	const struct kmip_key_info *i = &out->kmip;
	uint8_t secret[32], nonce[16], *back = NULL;
	char uid[256], aad[64];
	struct kmip_wrapped w;
	size_t back_len;
	int r = 0;

	snprintf(out->client_region, sizeof(out->client_region), "%s",
		 vol_kms_where(k));
	if (!vol_kmip_name(key, NULL, NULL, uid)) {
		out->problem = VOL_KEY_NOT_ARN;
		return -EKEYREJECTED;
	}
	if (kmip_get_key_info(k->kmip, uid, &out->kmip, &out->kms))
		return kms_failed(out, "Get Attributes");
	if (i->object_type != KMIP_SYMMETRIC_KEY || i->algorithm != KMIP_AES ||
	    i->length != 256)
		out->problem = VOL_KEY_NOT_AES256;
	else if (i->state != KMIP_STATE_ACTIVE)
		out->problem = VOL_KEY_NOT_ACTIVE;
	else if (i->usage_mask < 0 ||
		 (i->usage_mask & (KMIP_USE_ENCRYPT | KMIP_USE_DECRYPT)) !=
			 (KMIP_USE_ENCRYPT | KMIP_USE_DECRYPT))
		out->problem = VOL_KEY_USAGE;
	if (out->problem != VOL_KEY_OK)
		return -EKEYREJECTED;
	if (crypto_random(nonce, sizeof(nonce)))
		return -EIO;
	memcpy(aad, "cmkfs:check-key=", 16);
	hex_encode(nonce, sizeof(nonce), aad + 16);
	/* One way out from here: the test secret is wiped. */
	if (crypto_random(secret, sizeof(secret))) {
		r = -EIO;
	} else if (kmip_encrypt(k->kmip, uid, secret, sizeof(secret),
				(const uint8_t *)aad, strlen(aad), &w,
				&out->kms)) {
		r = kms_failed(out, "Encrypt");
	} else if (kmip_decrypt(k->kmip, uid, &w, (const uint8_t *)aad,
				strlen(aad), &back, &back_len, &out->kms)) {
		r = kms_failed(out, "Decrypt");
	} else if (back_len != sizeof(secret) ||
		   !secmem_equal(back, secret, sizeof(secret))) {
		out->problem = VOL_KEY_BAD_ROUND_TRIP;
		r = -EKEYREJECTED;
	}
	secmem_free(back);
	explicit_bzero(secret, sizeof(secret));
	return r;
}

int vol_check_key(struct vol_kms *vk, const char *arn,
		  struct vol_key_check *out)
{
	struct kms_client *k = vk->aws;

	memset(out, 0, sizeof(*out));
	out->kind = vol_key_kind_of(arn);
	if (out->kind != vk->kind) {
		out->problem = VOL_KEY_NOT_ARN;
		return -EKEYREJECTED;
	}
	if (out->kind == VOL_KEY_KMIP)
		return check_kmip(vk, arn, out);
	snprintf(out->client_region, sizeof(out->client_region), "%s",
		 kms_client_region(k));
	if (!kms_arn_region(arn, out->region, sizeof(out->region)) ||
	    !strstr(arn, ":key/")) {
		out->problem = VOL_KEY_NOT_ARN;
		return -EKEYREJECTED;
	}
	if (kms_describe_key(k, arn, &out->info, &out->kms))
		return kms_failed(out, "DescribeKey");
	if (strcmp(out->info.spec, "SYMMETRIC_DEFAULT") ||
	    strcmp(out->info.usage, "ENCRYPT_DECRYPT"))
		out->problem = VOL_KEY_NOT_SYMMETRIC;
	else if (!strcmp(out->info.origin, "EXTERNAL"))
		out->problem = VOL_KEY_IMPORTED;
	else if (strcmp(out->info.origin, "AWS_KMS"))
		out->problem = VOL_KEY_ORIGIN;
	else if (!strcmp(out->info.state, "PendingDeletion"))
		out->problem = VOL_KEY_PENDING_DELETION;
	else if (!out->info.enabled || strcmp(out->info.state, "Enabled"))
		out->problem = VOL_KEY_NOT_ENABLED;
	if (out->problem != VOL_KEY_OK)
		return -EKEYREJECTED;
	return round_trip(k, arn, out);
}
