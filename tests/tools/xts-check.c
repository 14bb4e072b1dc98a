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
#include "hex.h"

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

/* Run one direction of a case into buf; report and return false on a
 * mismatch or an error. */
static bool check(struct sc_ctx *ctx, bool enc, unsigned long lineno,
		  uint64_t offset, const uint8_t *in, const uint8_t *want,
		  uint8_t *buf, size_t len)
{
	const char *what = enc ? "encrypt" : "decrypt";
	int r = enc ? sc_encrypt(ctx, offset, in, buf, len)
		    : sc_decrypt(ctx, offset, in, buf, len);

	if (r) {
		printf("case %lu: %s: %s\n", lineno, what, crypto_strerror(r));
		return false;
	}
	if (memcmp(buf, want, len) != 0) {
		report(lineno, what, buf, want, len);
		return false;
	}
	return true;
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
		key = hex_decode(f[0], &klen);
		pt = hex_decode(f[4], &plen);
		ct = hex_decode(f[5], &clen);
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
		if (check(ctx, true, lineno, offset, pt, ct, buf, plen) &&
		    check(ctx, false, lineno, offset, ct, pt, buf, plen))
			passed++;
		else
			failed++;
		sc_close(ctx);
		secmem_wipe(key, klen);
		free(key), free(pt), free(ct), free(buf);
	}
	printf("xts-check: %lu cases agree, %lu differ\n", passed, failed);
	return failed || !passed ? 1 : 0;
}
