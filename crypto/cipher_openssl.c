/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cipher_openssl.c — AES-XTS through OpenSSL 3 EVP; the only file of cmkfs
 * that includes OpenSSL headers.
 *
 * Each `struct cipher` holds two EVP contexts, one keyed for encryption and
 * one for decryption: an AES key schedule is direction-specific, and
 * re-keying per sector would cost more than the sector itself.  Per data unit
 * only the IV is set (EVP_CipherInit_ex2 with no cipher and no key), which
 * OpenSSL implements as a plain IV copy.
 *
 * The EVP_CIPHER is fetched once per process: an implicit fetch on every init
 * would take the provider lock on the hot path.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/rand.h>

#include "cipher.h"
#include "crypto.h"

struct cipher {
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
};

static EVP_CIPHER *xts128, *xts256;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void fetch_ciphers(void)
{
	xts128 = EVP_CIPHER_fetch(NULL, "AES-128-XTS", NULL);
	xts256 = EVP_CIPHER_fetch(NULL, "AES-256-XTS", NULL);
}

void cipher_close(struct cipher *c)
{
	if (!c)
		return;
	/* EVP_CIPHER_CTX_free cleanses the provider context (key schedule)
	 * before releasing it. */
	EVP_CIPHER_CTX_free(c->enc);
	EVP_CIPHER_CTX_free(c->dec);
	free(c);
}

int cipher_xts_open(struct cipher **out, const uint8_t *key, size_t key_len)
{
	const EVP_CIPHER *type;
	struct cipher *c;
	int r = -ENOMEM;

	*out = NULL;
	if (key_len != 32 && key_len != 64)
		return -EINVAL;
	/* OpenSSL refuses XTS keys whose halves are equal when encrypting (and
	 * in FIPS mode also when decrypting) with a generic error.  Check here,
	 * in constant time, so both directions fail the same precise way. */
	if (secmem_equal(key, key + key_len / 2, key_len / 2))
		return -EKEYREJECTED;

	pthread_once(&fetch_once, fetch_ciphers);
	type = key_len == 32 ? xts128 : xts256;
	if (!type)
		return -ENOTSUP;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->enc = EVP_CIPHER_CTX_new();
	c->dec = EVP_CIPHER_CTX_new();
	if (!c->enc || !c->dec)
		goto out;
	r = -EIO;
	if (EVP_EncryptInit_ex2(c->enc, type, key, NULL, NULL) != 1 ||
	    EVP_DecryptInit_ex2(c->dec, type, key, NULL, NULL) != 1)
		goto out;
	*out = c;
	return 0;
out:
	ERR_clear_error();
	cipher_close(c);
	return r;
}

int cipher_dup(const struct cipher *src, struct cipher **out)
{
	struct cipher *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->enc = EVP_CIPHER_CTX_new();
	c->dec = EVP_CIPHER_CTX_new();
	if (!c->enc || !c->dec || EVP_CIPHER_CTX_copy(c->enc, src->enc) != 1 ||
	    EVP_CIPHER_CTX_copy(c->dec, src->dec) != 1) {
		ERR_clear_error();
		cipher_close(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

static int crypt_unit(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *iv,
		      const void *in, void *out, size_t len)
{
	int outl;

	if (len > INT_MAX)
		return -EINVAL;
	if (EVP_CipherInit_ex2(ctx, NULL, NULL, iv, enc, NULL) != 1 ||
	    EVP_CipherUpdate(ctx, out, &outl, in, (int)len) != 1 ||
	    (size_t)outl != len) {
		ERR_clear_error();
		return -EIO;
	}
	return 0;
}

int cipher_encrypt(struct cipher *c, const uint8_t iv[static CIPHER_IV_LEN],
		   const void *in, void *out, size_t len)
{
	return crypt_unit(c->enc, 1, iv, in, out, len);
}

int cipher_decrypt(struct cipher *c, const uint8_t iv[static CIPHER_IV_LEN],
		   const void *in, void *out, size_t len)
{
	return crypt_unit(c->dec, 0, iv, in, out, len);
}

int cipher_random(void *buf, size_t n)
{
	if (n > INT_MAX)
		return -EINVAL;
	if (RAND_priv_bytes(buf, (int)n) != 1) {
		ERR_clear_error();
		return -EIO;
	}
	return 0;
}

const char *cipher_library_version(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}
