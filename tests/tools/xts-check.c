/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xts-check.c — checks cmkfs's sector cipher against cases computed by an
 * independent implementation (tests/tools/xts_reference.py).
 *
 * Reads one case per line on stdin:
 *     KEYHEX SECTOR_SIZE OFFSET IV_OFFSET PLAINHEX CIPHERHEX
 * (OFFSET in bytes within the data segment, IV_OFFSET in 512-byte units) and
 * checks that sc_encrypt(PLAIN) == CIPHER and sc_decrypt(CIPHER) == PLAIN.
 * Prints got/want for the first mismatch of each case; exits 1 if any case
 * failed, 0 if all passed (and at least one was read).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode into a malloc'ed buffer; NULL on bad hex. */
static uint8_t *unhex(const char *s, size_t *len)
{
	size_t n = strlen(s);
	uint8_t *out;

	if (n % 2)
		return NULL;
	out = malloc(n / 2 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(out);
			return NULL;
		}
		out[i] = (uint8_t)((unsigned)hi << 4 | (unsigned)lo);
	}
	*len = n / 2;
	return out;
}

static void report(unsigned long lineno, const char *what, const uint8_t *got,
		   const uint8_t *want, size_t n)
{
	size_t i = 0;

	while (i < n && got[i] == want[i])
		i++;
	printf("case %lu: %s mismatch at byte %zu\n  got  ", lineno, what, i);
	for (size_t j = i; j < n && j < i + 32; j++)
		printf("%02x", got[j]);
	printf("\n  want ");
	for (size_t j = i; j < n && j < i + 32; j++)
		printf("%02x", want[j]);
	printf("\n");
}

int main(void)
{
	static char line[1 << 20];
	unsigned long lineno = 0, failed = 0, passed = 0;

	while (fgets(line, sizeof(line), stdin)) {
		char *f[6], *save = NULL;
		uint8_t *key, *pt, *ct, *buf;
		size_t klen, plen, clen;
		struct sc_params p = { .cipher = "aes-xts-plain64" };
		uint64_t offset;
		struct sc_ctx *ctx;
		int n = 0, r;

		lineno++;
		for (char *t = strtok_r(line, " \n", &save); t && n < 6;
		     t = strtok_r(NULL, " \n", &save))
			f[n++] = t;
		if (n != 6) {
			printf("case %lu: malformed line\n", lineno);
			return 2;
		}
		key = unhex(f[0], &klen);
		pt = unhex(f[4], &plen);
		ct = unhex(f[5], &clen);
		if (!key || !pt || !ct || plen != clen) {
			printf("case %lu: malformed hex\n", lineno);
			return 2;
		}
		p.sector_size = (unsigned)strtoul(f[1], NULL, 10);
		offset = strtoull(f[2], NULL, 10);
		p.iv_offset = strtoull(f[3], NULL, 10);
		buf = malloc(plen);
		r = sc_open(&ctx, &p, key, klen);
		if (r) {
			printf("case %lu: sc_open: %s\n", lineno,
			       crypto_strerror(r));
			return 1;
		}
		r = sc_encrypt(ctx, offset, pt, buf, plen);
		if (r || memcmp(buf, ct, plen) != 0) {
			if (r)
				printf("case %lu: encrypt: %s\n", lineno,
				       crypto_strerror(r));
			else
				report(lineno, "encrypt", buf, ct, plen);
			failed++;
		} else if ((r = sc_decrypt(ctx, offset, ct, buf, plen)) ||
			   memcmp(buf, pt, plen) != 0) {
			if (r)
				printf("case %lu: decrypt: %s\n", lineno,
				       crypto_strerror(r));
			else
				report(lineno, "decrypt", buf, pt, plen);
			failed++;
		} else {
			passed++;
		}
		sc_close(ctx);
		secmem_wipe(key, klen);
		free(key), free(pt), free(ct), free(buf);
	}
	printf("xts-check: %lu cases agree, %lu differ\n", passed, failed);
	return failed || !passed ? 1 : 0;
}
