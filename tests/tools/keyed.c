/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyed.c — a process holding keyed AES-XTS sector-cipher contexts, for the
 * memory tests: where do the key schedules live?  (TEST-ONLY TOOL.)
 *
 *   keyed KEYHEX     key two contexts (sc_open, sc_dup) with the 64-byte
 *                    key, wipe the key, print "ready", stop (SIGSTOP);
 *                    when continued, free the contexts and exit 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "hex.h"

int main(int argc, char **argv)
{
	struct sc_params p = { .cipher = "aes-xts-plain64",
			       .sector_size = 4096 };
	struct sc_ctx *a = NULL, *b = NULL;
	uint8_t *key = NULL;
	size_t len = 0;
	int r;

	if (crypto_init() || argc != 2 || !(key = hex_decode(argv[1], &len)) ||
	    len != 64) {
		fprintf(stderr, "usage: keyed KEYHEX (64 bytes)\n");
		return 2;
	}
	r = sc_open(&a, &p, key, 64);
	if (!r)
		r = sc_dup(a, &b);
	secmem_wipe(key, len);
	free(key);
	/* The argument itself is in our memory too: blank it. */
	secmem_wipe(argv[1], strlen(argv[1]));
	if (r) {
		fprintf(stderr, "keyed: %s\n", crypto_strerror(r));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	raise(SIGSTOP);
	sc_close(a);
	sc_close(b);
	return 0;
}
