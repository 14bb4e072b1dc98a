/* SPDX-License-Identifier: Apache-2.0 */
/*
 * actions_crypto.c — the cryptographic KMS actions: Encrypt, Decrypt,
 * ReEncrypt, GenerateDataKey(WithoutPlaintext) and GenerateRandom.
 *
 * Plaintext key material is handled in secure memory only, and its base64
 * form is handed to the HTTP layer as a secure-memory string (secret_b64)
 * that is spliced into the response without passing through json-c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "call.h"
#include "crypto.h"

/* EncryptionAlgorithm fields: only SYMMETRIC_DEFAULT exists here. */
static int check_algorithm(struct call *c, json_object *req, const char *name)
{
	int rc;
	const char *alg = kmsd_req_string(c, req, name, false, 1, 64, &rc);

	if (rc)
		return kmsd_failed(c);
	if (alg && strcmp(alg, "SYMMETRIC_DEFAULT"))
		return kmsd_call_error(c, "InvalidKeyUsageException",
				       "%s %s is not valid for a symmetric key",
				       name, alg);
	return 0;
}

static int add_b64(struct call *c, json_object *resp, const char *name,
		   const uint8_t *data, size_t len)
{
	char *b64 = malloc(B64_ENCODED_SIZE(len));

	if (!b64)
		return kmsd_call_error(c, "KMSInternalException",
				       "out of memory");
	b64_encode(data, len, b64);
	json_object_object_add(resp, name, kmsd_json_string(b64));
	free(b64);
	return 0;
}

/* The secure-memory base64 of a secret, for the response's Plaintext. */
static int secret_to_b64(struct call *c, const uint8_t *data, size_t len,
			 char **out)
{
	*out = secmem_alloc(B64_ENCODED_SIZE(len));
	if (!*out)
		return kmsd_call_error(c, "KMSInternalException",
				       "out of memory");
	b64_encode(data, len, *out);
	return 0;
}

int act_encrypt(struct call *c, json_object *req, json_object *resp,
		char **secret)
{
	json_object *k, *ctx;
	uint8_t *pt = NULL, *blob = NULL;
	size_t len, blob_len;
	const char *id;
	int rc, r = -1;

	(void)secret;
	id = kmsd_req_string(c, req, "KeyId", true, 1, 2048, &rc);
	if (!id || kmsd_req_context(c, req, "EncryptionContext", &ctx) ||
	    kmsd_req_grant_tokens(c, req) ||
	    check_algorithm(c, req, "EncryptionAlgorithm") ||
	    kmsd_req_blob(c, req, "Plaintext", true, MAX_PLAINTEXT, true, &pt,
			  &len))
		goto out;
	if (kmsd_key_resolve(c, id, &k) ||
	    kmsd_authorize(c, k, "Encrypt", ctx) || kmsd_key_check_usable(c, k))
		goto out;
	if (state_seal(c->st, k, ctx, pt, len, &blob, &blob_len)) {
		kmsd_call_error(c, "KMSInternalException", "cannot encrypt");
		goto out;
	}
	if (add_b64(c, resp, "CiphertextBlob", blob, blob_len))
		goto out;
	json_object_object_add(resp, "KeyId",
			       kmsd_json_string(kmsd_key_arn(k)));
	json_object_object_add(resp, "EncryptionAlgorithm",
			       kmsd_json_string("SYMMETRIC_DEFAULT"));
	r = 0;
out:
	secmem_free(pt);
	free(blob);
	return r ? kmsd_failed(c) : 0;
}

/* Find the key a blob names, and check it against an optional KeyId. */
static int blob_key(struct call *c, const uint8_t *blob, size_t len,
		    const char *key_id, json_object **out)
{
	json_object *keys = state_keys(c->st), *named = NULL;
	char id[37], arn[200];

	if (state_blob_key_id(blob, len, id))
		return kmsd_call_error(
			c, "InvalidCiphertextException",
			"The ciphertext is not a valid KMS ciphertext "
			"blob");
	for (size_t i = 0; i < json_object_array_length(keys); i++) {
		json_object *k = json_object_array_get_idx(keys, i);

		if (!strcmp(kmsd_member_string(k, "KeyId"), id) &&
		    !strcmp(kmsd_member_string(k, "_region"), c->region))
			named = k;
	}
	if (key_id) {
		json_object *k;

		if (kmsd_key_resolve(c, key_id, &k))
			return kmsd_failed(c);
		if (k != named)
			return kmsd_call_error(
				c, "IncorrectKeyException",
				"The key ID in the request does not "
				"identify a KMS key that can perform "
				"this operation (the ciphertext was "
				"made under another key)");
	}
	if (!named)
		return kmsd_call_error(
			c, "NotFoundException",
			"The key the ciphertext was made under (%s) "
			"does not exist in %s",
			id, c->region);
	/* Resolve by ARN for the same side effects as any lookup: purge,
	 * due rotation, the key named in the access log. */
	snprintf(arn, sizeof(arn), "%s", kmsd_key_arn(named));
	return kmsd_key_resolve(c, arn, out);
}

/* Open a blob for k under ctx; InvalidCiphertextException on any mismatch
 * (tampering, another context, another key). */
static int open_blob(struct call *c, json_object *k, json_object *ctx,
		     const uint8_t *blob, size_t len, uint8_t **pt,
		     size_t *pt_len)
{
	int r = state_open_blob(c->st, k, ctx, blob, len, pt, pt_len);

	if (r == -EBADMSG)
		return kmsd_call_error(
			c, "InvalidCiphertextException",
			"The ciphertext cannot be decrypted: it was "
			"tampered with, or the encryption context "
			"differs from the one it was made with");
	if (r)
		return kmsd_call_error(c, "KMSInternalException",
				       "cannot decrypt with %s",
				       kmsd_key_arn(k));
	return 0;
}

int act_decrypt(struct call *c, json_object *req, json_object *resp,
		char **secret)
{
	uint8_t *blob = NULL, *pt = NULL;
	size_t blob_len, len;
	json_object *k, *ctx;
	const char *id;
	int rc, r = -1;

	id = kmsd_req_string(c, req, "KeyId", false, 1, 2048, &rc);
	if (rc || kmsd_req_context(c, req, "EncryptionContext", &ctx) ||
	    kmsd_req_grant_tokens(c, req) ||
	    check_algorithm(c, req, "EncryptionAlgorithm") ||
	    kmsd_req_blob(c, req, "CiphertextBlob", true, MAX_BLOB, false,
			  &blob, &blob_len))
		goto out;
	if (blob_key(c, blob, blob_len, id, &k) ||
	    kmsd_authorize(c, k, "Decrypt", ctx) ||
	    kmsd_key_check_usable(c, k) ||
	    open_blob(c, k, ctx, blob, blob_len, &pt, &len) ||
	    secret_to_b64(c, pt, len, secret))
		goto out;
	json_object_object_add(resp, "KeyId",
			       kmsd_json_string(kmsd_key_arn(k)));
	json_object_object_add(resp, "EncryptionAlgorithm",
			       kmsd_json_string("SYMMETRIC_DEFAULT"));
	r = 0;
out:
	secmem_free(pt);
	free(blob);
	return r ? kmsd_failed(c) : 0;
}

int act_re_encrypt(struct call *c, json_object *req, json_object *resp,
		   char **secret)
{
	uint8_t *blob = NULL, *pt = NULL, *out_blob = NULL;
	json_object *src = NULL, *dst = NULL, *src_ctx, *dst_ctx;
	size_t blob_len, len, out_len;
	const char *src_id, *dst_id;
	char src_arn[256];
	int rc, r = -1;

	(void)secret;
	src_id = kmsd_req_string(c, req, "SourceKeyId", false, 1, 2048, &rc);
	if (rc)
		return kmsd_failed(c);
	dst_id =
		kmsd_req_string(c, req, "DestinationKeyId", true, 1, 2048, &rc);
	if (!dst_id ||
	    kmsd_req_context(c, req, "SourceEncryptionContext", &src_ctx) ||
	    kmsd_req_context(c, req, "DestinationEncryptionContext",
			     &dst_ctx) ||
	    kmsd_req_grant_tokens(c, req) ||
	    check_algorithm(c, req, "SourceEncryptionAlgorithm") ||
	    check_algorithm(c, req, "DestinationEncryptionAlgorithm") ||
	    kmsd_req_blob(c, req, "CiphertextBlob", true, MAX_BLOB, false,
			  &blob, &blob_len))
		goto out;
	if (blob_key(c, blob, blob_len, src_id, &src) ||
	    kmsd_authorize(c, src, "ReEncryptFrom", src_ctx) ||
	    kmsd_key_check_usable(c, src))
		goto out;
	snprintf(src_arn, sizeof(src_arn), "%s", kmsd_key_arn(src));
	if (kmsd_key_resolve(c, dst_id, &dst) ||
	    kmsd_authorize(c, dst, "ReEncryptTo", dst_ctx) ||
	    kmsd_key_check_usable(c, dst) ||
	    open_blob(c, src, src_ctx, blob, blob_len, &pt, &len))
		goto out;
	if (state_seal(c->st, dst, dst_ctx, pt, len, &out_blob, &out_len)) {
		kmsd_call_error(c, "KMSInternalException", "cannot encrypt");
		goto out;
	}
	if (add_b64(c, resp, "CiphertextBlob", out_blob, out_len))
		goto out;
	json_object_object_add(resp, "SourceKeyId", kmsd_json_string(src_arn));
	json_object_object_add(resp, "KeyId",
			       kmsd_json_string(kmsd_key_arn(dst)));
	json_object_object_add(resp, "SourceEncryptionAlgorithm",
			       kmsd_json_string("SYMMETRIC_DEFAULT"));
	json_object_object_add(resp, "DestinationEncryptionAlgorithm",
			       kmsd_json_string("SYMMETRIC_DEFAULT"));
	r = 0;
out:
	secmem_free(pt);
	free(blob);
	free(out_blob);
	return r ? kmsd_failed(c) : 0;
}

/* NumberOfBytes or KeySpec (AES_128/AES_256): exactly one. */
static int data_key_size(struct call *c, json_object *req, size_t *n)
{
	const char *spec;
	bool have_n;
	int64_t bytes = 0;
	int rc;

	if (kmsd_req_int(c, req, "NumberOfBytes", false, 1, MAX_DATA_KEY,
			 &bytes, &have_n))
		return kmsd_failed(c);
	spec = kmsd_req_string(c, req, "KeySpec", false, 1, 32, &rc);
	if (rc)
		return kmsd_failed(c);
	if (have_n == (spec != NULL))
		return kmsd_call_error(
			c, "ValidationException",
			"Please specify either number of bytes or "
			"key spec (one of them, not both).");
	if (spec) {
		if (!strcmp(spec, "AES_256"))
			bytes = 32;
		else if (!strcmp(spec, "AES_128"))
			bytes = 16;
		else
			return kmsd_call_error(
				c, "ValidationException",
				"1 validation error detected: Value "
				"at 'keySpec' failed to satisfy "
				"constraint: Member must satisfy enum "
				"value set: [AES_256, AES_128]");
	}
	*n = (size_t)bytes;
	return 0;
}

static int generate_data_key(struct call *c, json_object *req,
			     json_object *resp, char **secret, const char *op)
{
	uint8_t *pt = NULL, *blob = NULL;
	size_t n = 0, blob_len;
	json_object *k, *ctx;
	const char *id;
	int rc, r = -1;

	id = kmsd_req_string(c, req, "KeyId", true, 1, 2048, &rc);
	if (!id || kmsd_req_context(c, req, "EncryptionContext", &ctx) ||
	    kmsd_req_grant_tokens(c, req) || data_key_size(c, req, &n))
		goto out;
	if (kmsd_key_resolve(c, id, &k) || kmsd_authorize(c, k, op, ctx) ||
	    kmsd_key_check_usable(c, k))
		goto out;
	pt = secmem_alloc(n);
	if (!pt || crypto_random(pt, n) ||
	    state_seal(c->st, k, ctx, pt, n, &blob, &blob_len)) {
		kmsd_call_error(c, "KMSInternalException",
				"cannot make a data key");
		goto out;
	}
	if (secret && secret_to_b64(c, pt, n, secret))
		goto out;
	if (add_b64(c, resp, "CiphertextBlob", blob, blob_len))
		goto out;
	json_object_object_add(resp, "KeyId",
			       kmsd_json_string(kmsd_key_arn(k)));
	r = 0;
out:
	secmem_free(pt);
	free(blob);
	return r ? kmsd_failed(c) : 0;
}

int act_generate_data_key(struct call *c, json_object *req, json_object *resp,
			  char **secret)
{
	return generate_data_key(c, req, resp, secret, "GenerateDataKey");
}

int act_generate_data_key_without_plaintext(struct call *c, json_object *req,
					    json_object *resp, char **secret)
{
	(void)secret;
	return generate_data_key(c, req, resp, NULL,
				 "GenerateDataKeyWithoutPlaintext");
}

int act_generate_random(struct call *c, json_object *req, json_object *resp,
			char **secret)
{
	int64_t n = 0;
	uint8_t *buf;
	int r;

	(void)resp;
	if (kmsd_req_int(c, req, "NumberOfBytes", true, 1, MAX_DATA_KEY, &n,
			 NULL))
		return kmsd_failed(c);
	buf = secmem_alloc((size_t)n);
	if (!buf || crypto_random(buf, (size_t)n)) {
		secmem_free(buf);
		return kmsd_call_error(c, "KMSInternalException",
				       "no randomness");
	}
	r = secret_to_b64(c, buf, (size_t)n, secret);
	secmem_free(buf);
	return r;
}
