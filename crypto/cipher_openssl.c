/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cipher_openssl.c — everything cmkfs asks of OpenSSL 3: the AES-XTS data
 * units under crypto/sector.c, SHA-256 and HMAC for KMS signatures, AES-GCM
 * for KMS blobs, and the random generator.  The only file of cmkfs that
 * includes OpenSSL headers.
 *
 * Why not plain EVP: a sector is one XTS data unit, so every sector needs a
 * new IV.  With OpenSSL 3.0, EVP_CipherInit_ex2(ctx, NULL, NULL, iv, ...)
 * re-queries the IV length from the provider through an OSSL_PARAM lookup
 * (a chain of strcmp) on every call: about 65 ns here, 11% of the time AES-XTS
 * takes for a 4096-byte sector.  So we resolve the cipher with EVP (honouring
 * the library's configuration and provider choice, FIPS included), then call
 * that provider's XTS implementation through its public dispatch table
 * (OSSL_PROVIDER_query_operation, see provider-cipher(7)): setting an IV is
 * then a 16-byte copy, and the sector loop runs at the bare cipher's speed.
 *
 * Each `struct cipher` holds two provider contexts, one keyed for encryption
 * and one for decryption: an AES key schedule is direction-specific.  Key
 * schedules live in memory the provider allocates; it cleanses them when the
 * context is freed (freectx).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#include "cipher.h"
#include "crypto.h"

/* One provider's implementation of one XTS variant. */
struct xts_impl {
	EVP_CIPHER *fetched; /* holds a reference on the provider */
	void *provctx;
	OSSL_FUNC_cipher_newctx_fn *newctx;
	OSSL_FUNC_cipher_dupctx_fn *dupctx;
	OSSL_FUNC_cipher_freectx_fn *freectx;
	OSSL_FUNC_cipher_encrypt_init_fn *einit;
	OSSL_FUNC_cipher_decrypt_init_fn *dinit;
	OSSL_FUNC_cipher_update_fn *update;
};

struct cipher {
	const struct xts_impl *impl;
	void *enc; /* provider context keyed for encryption */
	void *dec; /* ... and for decryption */
};

static struct xts_impl xts128, xts256;

/* Set while this thread creates a keyed cipher context: see ossl_malloc. */
static _Thread_local bool secret_allocs;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

/* True if `name` is one of the colon-separated names in `names`. */
static bool has_name(const char *names, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = names; p && *p;) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && !strncasecmp(p, name, n))
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static void resolve(struct xts_impl *impl, const char *name)
{
	const OSSL_ALGORITHM *algs, *a;
	const OSSL_PROVIDER *prov;
	EVP_CIPHER *c;
	int no_cache = 0;

	c = EVP_CIPHER_fetch(NULL, name, NULL);
	if (!c)
		goto fail;
	prov = EVP_CIPHER_get0_provider(c);
	algs = prov ? OSSL_PROVIDER_query_operation(prov, OSSL_OP_CIPHER,
						    &no_cache)
		    : NULL;
	for (a = algs; a && a->algorithm_names; a++)
		if (has_name(a->algorithm_names, name))
			break;
	if (!a || !a->algorithm_names)
		goto fail_unquery;
	for (const OSSL_DISPATCH *d = a->implementation; d->function_id; d++) {
		switch (d->function_id) {
		case OSSL_FUNC_CIPHER_NEWCTX:
			impl->newctx = OSSL_FUNC_cipher_newctx(d);
			break;
		case OSSL_FUNC_CIPHER_DUPCTX:
			impl->dupctx = OSSL_FUNC_cipher_dupctx(d);
			break;
		case OSSL_FUNC_CIPHER_FREECTX:
			impl->freectx = OSSL_FUNC_cipher_freectx(d);
			break;
		case OSSL_FUNC_CIPHER_ENCRYPT_INIT:
			impl->einit = OSSL_FUNC_cipher_encrypt_init(d);
			break;
		case OSSL_FUNC_CIPHER_DECRYPT_INIT:
			impl->dinit = OSSL_FUNC_cipher_decrypt_init(d);
			break;
		case OSSL_FUNC_CIPHER_UPDATE:
			impl->update = OSSL_FUNC_cipher_update(d);
			break;
		}
	}
	OSSL_PROVIDER_unquery_operation(prov, OSSL_OP_CIPHER, algs);
	if (!impl->newctx || !impl->dupctx || !impl->freectx || !impl->einit ||
	    !impl->dinit || !impl->update)
		goto fail;
	impl->provctx = OSSL_PROVIDER_get0_provider_ctx(prov);
	impl->fetched = c;
	return;

fail_unquery:
	if (algs)
		OSSL_PROVIDER_unquery_operation(prov, OSSL_OP_CIPHER, algs);
fail:
	EVP_CIPHER_free(c);
	memset(impl, 0, sizeof(*impl));
	ERR_clear_error();
}

static void resolve_all(void)
{
	resolve(&xts128, "AES-128-XTS");
	resolve(&xts256, "AES-256-XTS");
}

void cipher_close(struct cipher *c)
{
	if (!c)
		return;
	if (c->enc)
		c->impl->freectx(c->enc);
	if (c->dec)
		c->impl->freectx(c->dec);
	free(c);
}

int cipher_xts_open(struct cipher **out, const uint8_t *key, size_t key_len)
{
	struct cipher *c;
	int r = -ENOMEM;

	*out = NULL;
	if (key_len != 32 && key_len != 64)
		return -EINVAL;
	/* OpenSSL refuses XTS keys whose halves are equal when encrypting
	 * (and in FIPS mode also when decrypting) with a generic error.  Check
	 * here, in constant time, so both directions fail the same clear way.
	 */
	if (secmem_equal(key, key + key_len / 2, key_len / 2))
		return -EKEYREJECTED;

	pthread_once(&resolve_once, resolve_all);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->impl = key_len == 32 ? &xts128 : &xts256;
	if (!c->impl->newctx) {
		free(c);
		return -ENOTSUP;
	}
	secret_allocs = true;
	c->enc = c->impl->newctx(c->impl->provctx);
	c->dec = c->impl->newctx(c->impl->provctx);
	if (!c->enc || !c->dec)
		goto out;
	r = -EIO;
	if (c->impl->einit(c->enc, key, key_len, NULL, 0, NULL) != 1 ||
	    c->impl->dinit(c->dec, key, key_len, NULL, 0, NULL) != 1)
		goto out;
	secret_allocs = false;
	*out = c;
	return 0;
out:
	secret_allocs = false;
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
	c->impl = src->impl;
	secret_allocs = true;
	c->enc = c->impl->dupctx(src->enc);
	c->dec = c->impl->dupctx(src->dec);
	secret_allocs = false;
	if (!c->enc || !c->dec) {
		ERR_clear_error();
		cipher_close(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

static int crypt_unit(const struct xts_impl *impl,
		      OSSL_FUNC_cipher_encrypt_init_fn *init, void *ctx,
		      const uint8_t *iv, const void *in, void *out, size_t len)
{
	size_t outl = 0;

	if (init(ctx, NULL, 0, iv, CIPHER_IV_LEN, NULL) != 1 ||
	    impl->update(ctx, out, &outl, len, in, len) != 1 || outl != len) {
		ERR_clear_error();
		return -EIO;
	}
	return 0;
}

int cipher_encrypt(struct cipher *c, const uint8_t iv[static CIPHER_IV_LEN],
		   const void *in, void *out, size_t len)
{
	return crypt_unit(c->impl, c->impl->einit, c->enc, iv, in, out, len);
}

int cipher_decrypt(struct cipher *c, const uint8_t iv[static CIPHER_IV_LEN],
		   const void *in, void *out, size_t len)
{
	return crypt_unit(c->impl, c->impl->dinit, c->dec, iv, in, out, len);
}

/* ---- hashes and AEAD (crypto.h) ---------------------------------------- */

int crypto_sha256(const void *data, size_t len,
		  uint8_t out[static CRYPTO_SHA256_LEN])
{
	unsigned int n = 0;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != CRYPTO_SHA256_LEN) {
		ERR_clear_error();
		return -EIO;
	}
	return 0;
}

int crypto_hmac_sha256(const void *key, size_t key_len, const void *data,
		       size_t len, uint8_t out[static CRYPTO_SHA256_LEN])
{
	unsigned int n = 0;

	if (key_len > INT_MAX ||
	    !HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) ||
	    n != CRYPTO_SHA256_LEN) {
		ERR_clear_error();
		return -EIO;
	}
	return 0;
}

/* One GCM pass; enc selects seal or open.  For open, tag is read from
 * in + len; for seal it is written to out + len. */
static int gcm(int enc, const uint8_t *key, const uint8_t *iv, const void *aad,
	       size_t aad_len, const uint8_t *in, size_t len, uint8_t *out,
	       uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n, r = -EIO;

	if (!ctx)
		return -ENOMEM;
	if (len > INT_MAX || aad_len > INT_MAX) {
		r = -EINVAL;
		goto out;
	}
	if (EVP_CipherInit_ex2(ctx, EVP_aes_256_gcm(), key, iv, enc, NULL) != 1)
		goto out;
	if (aad_len && EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
		goto out;
	if (len && EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG,
					CRYPTO_AEAD_TAG_LEN, tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(ctx, out + len, &n) != 1) {
		r = enc ? -EIO : -EBADMSG;
		goto out;
	}
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG,
				       CRYPTO_AEAD_TAG_LEN, tag) != 1)
		goto out;
	r = 0;
out:
	ERR_clear_error();
	EVP_CIPHER_CTX_free(ctx);
	return r;
}

int crypto_aead_seal(const uint8_t key[static CRYPTO_AEAD_KEY_LEN],
		     const uint8_t iv[static CRYPTO_AEAD_IV_LEN],
		     const void *aad, size_t aad_len, const void *pt,
		     size_t len, uint8_t *out)
{
	return gcm(1, key, iv, aad, aad_len, pt, len, out, out + len);
}

int crypto_aead_open(const uint8_t key[static CRYPTO_AEAD_KEY_LEN],
		     const uint8_t iv[static CRYPTO_AEAD_IV_LEN],
		     const void *aad, size_t aad_len, const uint8_t *ct,
		     size_t ct_len, void *out)
{
	uint8_t tag[CRYPTO_AEAD_TAG_LEN];
	size_t len;
	int r;

	if (ct_len < CRYPTO_AEAD_TAG_LEN)
		return -EBADMSG;
	len = ct_len - CRYPTO_AEAD_TAG_LEN;
	memcpy(tag, ct + len, sizeof(tag));
	r = gcm(0, key, iv, aad, aad_len, ct, len, out, tag);
	if (r)
		secmem_wipe(out, len); /* never hand out unauthenticated data */
	return r;
}

/* ---- random ------------------------------------------------------------- */

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

/*
 * OpenSSL's heap.  Everything it frees is wiped first.  The cipher contexts
 * go further: an AES key schedule begins with the key itself, so the
 * provider contexts cmkfs keys are allocated in secure memory — while a
 * thread creates or duplicates one (secret_allocs set), OpenSSL's
 * allocations come from secmem_alloc and are remembered, so that its
 * realloc and free find them again.  There are a few per data-path thread.
 */
static pthread_mutex_t secret_lock = PTHREAD_MUTEX_INITIALIZER;
static void **secret_ptrs;
static size_t n_secret, cap_secret;

static bool secret_remember(void *p)
{
	bool ok = true;

	pthread_mutex_lock(&secret_lock);
	if (n_secret == cap_secret) {
		size_t cap = cap_secret ? cap_secret * 2 : 64;
		void **grown = realloc(secret_ptrs, cap * sizeof(*grown));

		if (grown) {
			secret_ptrs = grown;
			cap_secret = cap;
		} else {
			ok = false;
		}
	}
	if (ok)
		secret_ptrs[n_secret++] = p;
	pthread_mutex_unlock(&secret_lock);
	return ok;
}

/* Forget p if it is a secure allocation: true when it was. */
static bool secret_forget(void *p)
{
	bool found = false;

	pthread_mutex_lock(&secret_lock);
	for (size_t i = 0; i < n_secret; i++)
		if (secret_ptrs[i] == p) {
			secret_ptrs[i] = secret_ptrs[--n_secret];
			found = true;
			break;
		}
	pthread_mutex_unlock(&secret_lock);
	return found;
}

static void *ossl_malloc(size_t n, const char *file, int line)
{
	void *p;

	(void)file;
	(void)line;
	if (!secret_allocs)
		return malloc(n);
	p = secmem_alloc(n ? n : 1);
	if (p && !secret_remember(p)) {
		secmem_free(p);
		p = NULL;
	}
	return p;
}

static void ossl_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	if (p && secret_forget(p))
		secmem_free(p);
	else
		secmem_heap_free(p);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
	void *q;

	if (!p)
		return ossl_malloc(n, file, line);
	if (!secret_forget(p))
		return secmem_heap_realloc(p, n);
	q = n ? secmem_realloc(p, n) : NULL;
	if (!n)
		secmem_free(p);
	if (q && !secret_remember(q)) {
		secmem_free(q);
		q = NULL;
	} else if (!q && n) {
		secret_remember(p); /* p is still valid */
	}
	return q;
}

int cipher_library_init(void)
{
	/* Refused once OpenSSL has allocated anything. */
	return CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free)
		       ? 0
		       : -EBUSY;
}

const char *cipher_library_version(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}
