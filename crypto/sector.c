/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sector.c — the sector loop: splits a run of sectors into data units, gives
 * each its dm-crypt plain64 IV, and hands it to the cipher library.  Also the
 * null cipher, which shares the loop's checks but only copies.
 *
 * No cipher library is included here (see cipher.h): the IV rule, the
 * alignment rules and the cipher-name table are the same whatever does AES.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cipher.h"
#include "crypto.h"
#include "xts_vaes.h"

enum sc_kind { SC_XTS, SC_NULL };

struct sc_ctx {
	enum sc_kind kind;
	unsigned sector_size;
	unsigned sector_shift; /* log2(sector_size) */
	uint64_t iv_offset;
	/* SC_XTS: vaes when the CPU has it (AES-256), else cipher. */
	struct cipher *cipher;
	struct xts_vaes *vaes;
};

static const struct {
	const char *name;
	enum sc_kind kind;
} cipher_names[] = {
	{ "aes-xts-plain64", SC_XTS },
	{ "cipher_null", SC_NULL },
	/* libcryptsetup spells a null segment "cipher_null-ecb". */
	{ "cipher_null-ecb", SC_NULL },
};

static int sector_shift(unsigned size)
{
	if (size < SC_MIN_SECTOR || size > SC_MAX_SECTOR || (size & (size - 1)))
		return -EINVAL;
	return __builtin_ctz(size);
}

int sc_open(struct sc_ctx **out, const struct sc_params *p, const uint8_t *key,
	    size_t key_len)
{
	struct sc_ctx *ctx;
	size_t i;
	int shift, r;

	*out = NULL;
	if (!p->cipher)
		return -EINVAL;
	for (i = 0; i < sizeof(cipher_names) / sizeof(cipher_names[0]); i++)
		if (!strcmp(p->cipher, cipher_names[i].name))
			break;
	if (i == sizeof(cipher_names) / sizeof(cipher_names[0]))
		return -ENOTSUP;
	shift = sector_shift(p->sector_size);
	if (shift < 0)
		return shift;

	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->kind = cipher_names[i].kind;
	ctx->sector_size = p->sector_size;
	ctx->sector_shift = (unsigned)shift;
	ctx->iv_offset = p->iv_offset;
	if (ctx->kind == SC_XTS) {
		r = xts_vaes_open(&ctx->vaes, key, key_len);
		if (r == -ENOTSUP) /* no VAES here, or an AES-128 key */
			r = cipher_xts_open(&ctx->cipher, key, key_len);
		secmem_wipe_stack(); /* the key schedule's temporaries */
		if (r) {
			free(ctx);
			return r;
		}
	}
	*out = ctx;
	return 0;
}

int sc_dup(const struct sc_ctx *src, struct sc_ctx **out)
{
	struct sc_ctx *ctx = malloc(sizeof(*ctx));
	int r;

	*out = NULL;
	if (!ctx)
		return -ENOMEM;
	*ctx = *src;
	if (src->cipher || src->vaes) {
		r = src->vaes ? xts_vaes_dup(src->vaes, &ctx->vaes)
			      : cipher_dup(src->cipher, &ctx->cipher);
		secmem_wipe_stack();
		if (r) {
			free(ctx);
			return r;
		}
	}
	*out = ctx;
	return 0;
}

void sc_close(struct sc_ctx *ctx)
{
	if (!ctx)
		return;
	cipher_close(ctx->cipher);
	xts_vaes_close(ctx->vaes);
	free(ctx);
}

/* plain64: the 512-byte unit number, little-endian, zero-padded to 16. */
static void plain64_iv(uint8_t iv[static CIPHER_IV_LEN], uint64_t unit)
{
	for (int i = 0; i < 8; i++)
		iv[i] = (uint8_t)(unit >> (8 * i));
	memset(iv + 8, 0, 8);
}

static int crypt_run(struct sc_ctx *ctx, bool enc, uint64_t offset,
		     const void *in, void *out, size_t len)
{
	const size_t mask = ctx->sector_size - 1;
	const uint64_t units_per_sector = ctx->sector_size / SC_MIN_SECTOR;
	const unsigned char *src = in;
	unsigned char *dst = out;
	uint8_t iv[CIPHER_IV_LEN];
	uint64_t unit;
	int r = 0;

	if ((offset & mask) || (len & mask))
		return -EINVAL;
	if (ctx->kind == SC_NULL) {
		if (in != out && len)
			memmove(out, in, len);
		return 0;
	}
	unit = offset / SC_MIN_SECTOR + ctx->iv_offset;
	if (ctx->vaes) {
		xts_vaes_run(ctx->vaes, enc, unit, units_per_sector, src, dst,
			     ctx->sector_size, len >> ctx->sector_shift);
		return 0;
	}
	for (size_t done = 0; done < len; done += ctx->sector_size) {
		plain64_iv(iv, unit);
		r = enc ? cipher_encrypt(ctx->cipher, iv, src + done,
					 dst + done, ctx->sector_size)
			: cipher_decrypt(ctx->cipher, iv, src + done,
					 dst + done, ctx->sector_size);
		if (r)
			break;
		unit += units_per_sector;
	}
	return r;
}

int sc_encrypt(struct sc_ctx *ctx, uint64_t offset, const void *in, void *out,
	       size_t len)
{
	return crypt_run(ctx, true, offset, in, out, len);
}

int sc_decrypt(struct sc_ctx *ctx, uint64_t offset, const void *in, void *out,
	       size_t len)
{
	return crypt_run(ctx, false, offset, in, out, len);
}

unsigned sc_sector_size(const struct sc_ctx *ctx)
{
	return ctx->sector_size;
}

const char *sc_cipher(const struct sc_ctx *ctx)
{
	return ctx->kind == SC_NULL ? "cipher_null" : "aes-xts-plain64";
}

const char *sc_impl(const struct sc_ctx *ctx)
{
	if (ctx->kind == SC_NULL)
		return "none";
	return ctx->vaes ? "VAES/AVX-512" : "OpenSSL";
}

bool sc_is_null(const struct sc_ctx *ctx)
{
	return ctx->kind == SC_NULL;
}

int crypto_random(void *buf, size_t n)
{
	return cipher_random(buf, n);
}

int crypto_uuid(char out[static 37])
{
	uint8_t b[16];
	int r = crypto_random(b, sizeof(b));

	if (r)
		return r;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(
		out, 37,
		"%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

int crypto_init(void)
{
	return cipher_library_init();
}

const char *crypto_library_version(void)
{
	return cipher_library_version();
}

const char *crypto_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -EKEYREJECTED:
		return "the XTS key has two identical halves, which XTS forbids";
	case -ENOTSUP:
		return "unsupported cipher (cmkfs supports aes-xts-plain64, and "
		       "cipher_null for benchmarks)";
	case -EINVAL:
		return "invalid argument (sector size must be a power of two "
		       "from 512 to 4096, key 32 or 64 bytes, I/O whole sectors)";
	case -EIO:
		return "the cipher library failed";
	case -ENOMEM:
		return "out of memory";
	default:
		return strerror(-err);
	}
}
