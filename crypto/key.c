/* SPDX-License-Identifier: Apache-2.0 */
/*
 * key.c — a key as a typed object (crypto.h, struct crypto_key): its length
 * and its bytes in one secure-memory allocation that it owns, made by one
 * constructor and wiped by one destroyer.
 */
#include <errno.h>
#include <string.h>

#include "crypto.h"

struct crypto_key {
	size_t len;
	uint8_t bytes[];
};

int crypto_key_new(size_t len, struct crypto_key **out)
{
	struct crypto_key *k;

	*out = NULL;
	if (!len || len > CRYPTO_KEY_MAX)
		return -EINVAL;
	k = secmem_alloc(sizeof(*k) + len);
	if (!k)
		return -ENOMEM;
	k->len = len;
	*out = k;
	return 0;
}

int crypto_key_from(const void *bytes, size_t len, struct crypto_key **out)
{
	int r = crypto_key_new(len, out);

	if (!r)
		memcpy((*out)->bytes, bytes, len);
	return r;
}

uint8_t *crypto_key_data(struct crypto_key *k)
{
	return k->bytes;
}

const uint8_t *crypto_key_bytes(const struct crypto_key *k)
{
	return k->bytes;
}

size_t crypto_key_len(const struct crypto_key *k)
{
	return k->len;
}

void crypto_key_free(struct crypto_key *k)
{
	secmem_free(k); /* wipes it all */
}
