/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cipher.h — crypto/'s internal interface to a cipher library (not public).
 *
 * A `struct cipher` is one AES-XTS key, expanded once, able to process one
 * data unit per call under a caller-given 16-byte tweak.  It knows nothing of
 * sectors or IV rules: crypto/sector.c builds those on top.  Exactly one file
 * implements this interface per cipher library (cipher_openssl.c today), so
 * changing library means writing one file.
 */
#ifndef CMKFS_CRYPTO_CIPHER_H
#define CMKFS_CRYPTO_CIPHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CIPHER_IV_LEN 16

struct cipher;

/* key_len 32 (AES-128-XTS) or 64 (AES-256-XTS).  0, -EINVAL (length),
 * -EKEYREJECTED (identical halves), -ENOMEM, -EIO. */
int cipher_xts_open(struct cipher **out, const uint8_t *key, size_t key_len);
int cipher_dup(const struct cipher *src, struct cipher **out);
void cipher_close(struct cipher *c);

/* One data unit of len bytes (len >= 16) under the given tweak; in == out is
 * allowed.  0 or -EIO. */
int cipher_encrypt(struct cipher *c, const uint8_t iv[static CIPHER_IV_LEN],
		   const void *in, void *out, size_t len);
int cipher_decrypt(struct cipher *c, const uint8_t iv[static CIPHER_IV_LEN],
		   const void *in, void *out, size_t len);

int cipher_random(void *buf, size_t n);
const char *cipher_library_version(void);

/* Route OpenSSL's heap through the wiping free/realloc: 0 or -EBUSY. */
int cipher_library_init(void);

#endif
