/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xts_vaes.h — AES-256-XTS on VAES/AVX-512 for runs of sectors (crypto/
 * internal; see xts_vaes.c).  A context is one key, used by one thread at a
 * time, like a struct cipher.
 */
#ifndef CMKFS_CRYPTO_XTS_VAES_H
#define CMKFS_CRYPTO_XTS_VAES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct xts_vaes;

/* The CPU and the OS support it, and CMKFS_XTS is not "openssl". */
bool xts_vaes_usable(void);

/* key: 64 bytes (K1 then K2).  0, -ENOTSUP (another key length, or not
 * usable here), -EKEYREJECTED (identical halves), -ENOMEM. */
int xts_vaes_open(struct xts_vaes **out, const uint8_t *key, size_t key_len);
int xts_vaes_dup(const struct xts_vaes *src, struct xts_vaes **out);
/* Wipe and free; accepts NULL. */
void xts_vaes_close(struct xts_vaes *x);

/* Encrypt (enc) or decrypt sectors data units of sector_size bytes (a
 * multiple of 512) from in to out (in == out allowed); the first has the
 * plain64 IV unit, each next one unit + unit_step. */
void xts_vaes_run(const struct xts_vaes *x, bool enc, uint64_t unit,
		  uint64_t unit_step, const uint8_t *in, uint8_t *out,
		  size_t sector_size, size_t sectors);

#endif
