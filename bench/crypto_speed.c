/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto_speed.c — micro-benchmark of the sector cipher on one core.
 *
 * Encrypts and decrypts a 1 MiB buffer in place, sector by sector, through
 * the same sc_encrypt/sc_decrypt calls the data path makes, for 512- and
 * 4096-byte sectors; and times memcpy of the same buffer as the ceiling no
 * cipher can beat.  Prints GB/s (10^9 bytes per second) per configuration.
 *
 * This measures CPU cost only (the buffer stays in cache); what the whole
 * I/O path costs is the job of the fio benchmarks.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"

#define BUF_SIZE (1u << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum op { OP_ENCRYPT, OP_DECRYPT, OP_MEMCPY };

/* Repeat the operation until `seconds` have passed; return GB/s. */
static double run(enum op op, struct sc_ctx *ctx, unsigned char *buf,
		  unsigned char *dst, double seconds)
{
	double start = now(), elapsed;
	unsigned long long bytes = 0;
	uint64_t offset = 0;
	int r = 0;

	do {
		/* Check the clock every 16 MiB: cheap, and short enough to
		 * stop close to the deadline. */
		for (int i = 0; i < 16; i++) {
			switch (op) {
			case OP_ENCRYPT:
				r = sc_encrypt(ctx, offset, buf, buf, BUF_SIZE);
				break;
			case OP_DECRYPT:
				r = sc_decrypt(ctx, offset, buf, buf, BUF_SIZE);
				break;
			case OP_MEMCPY:
				memcpy(dst, buf, BUF_SIZE);
				/* Keep the copy from being optimised out. */
				__asm__ volatile("" : : "r"(dst) : "memory");
				break;
			}
			if (r) {
				fprintf(stderr, "crypto-speed: %s\n",
					crypto_strerror(r));
				exit(1);
			}
			offset += BUF_SIZE;
			bytes += BUF_SIZE;
		}
		elapsed = now() - start;
	} while (elapsed < seconds);
	return (double)bytes / elapsed / 1e9;
}

static void row(bool tsv, const char *name, const char *sector, const char *op,
		double gbs)
{
	if (tsv)
		printf("%s\t%s\t%s\t%.3f\n", name, sector, op, gbs);
	else
		printf("%-16s %7s  %-8s %8.2f\n", name, sector, op, gbs);
	fflush(stdout);
}

/* AES-256-XTS at each sector size, both directions, as label; *impl: what
 * did the AES.  0 or -errno. */
static int time_xts(const char *label, const unsigned char *key,
		    unsigned char *buf, unsigned char *dst, double seconds,
		    bool tsv, const char **impl)
{
	static const unsigned sectors[] = { 512, 4096 };

	for (size_t i = 0; i < sizeof(sectors) / sizeof(sectors[0]); i++) {
		struct sc_params p = { .cipher = "aes-xts-plain64",
				       .sector_size = sectors[i] };
		struct sc_ctx *ctx;
		char size[16];
		int r = sc_open(&ctx, &p, key, 64);

		if (r)
			return r;
		*impl = sc_impl(ctx);
		snprintf(size, sizeof(size), "%u", sectors[i]);
		row(tsv, label, size, "encrypt",
		    run(OP_ENCRYPT, ctx, buf, dst, seconds));
		row(tsv, label, size, "decrypt",
		    run(OP_DECRYPT, ctx, buf, dst, seconds));
		sc_close(ctx);
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: cmkfs-crypto-speed [--seconds S] [--tsv]\n"
		"\n"
		"Time the sector cipher (AES-256-XTS, 512 and 4096-byte sectors) "
		"and memcpy\n"
		"on one core, S seconds each (default 1).  --tsv prints "
		"tab-separated rows\n"
		"(name, sector size, operation, GB/s) for scripts.  Where cmkfs "
		"uses its own\n"
		"VAES/AVX-512 AES-XTS, OpenSSL's follows as aes-256-xts-ossl.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "tsv", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned char *buf, *dst, *key;
	const char *impl;
	double seconds = 1.0;
	bool tsv = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "s:th", longopts, NULL)) != -1) {
		switch (c) {
		case 's': {
			char *end;

			seconds = strtod(optarg, &end);
			if (*end || seconds <= 0 || seconds > 600) {
				fprintf(stderr,
					"crypto-speed: --seconds takes a "
					"number in (0, 600]\n");
				return 2;
			}
			break;
		}
		case 't':
			tsv = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}

	buf = aligned_alloc(4096, BUF_SIZE);
	dst = aligned_alloc(4096, BUF_SIZE);
	key = secmem_alloc(64);
	if (!buf || !dst || !key) {
		fprintf(stderr, "crypto-speed: out of memory\n");
		return 1;
	}
	if ((r = crypto_random(key, 64)) ||
	    (r = crypto_random(buf, BUF_SIZE))) {
		fprintf(stderr, "crypto-speed: %s\n", crypto_strerror(r));
		return 1;
	}
	memcpy(dst, buf, BUF_SIZE);

	if (!tsv)
		printf("%-16s %7s  %-8s %8s\n", "cipher", "sector", "op",
		       "GB/s");
	/* aes-256-xts: the sector cipher as cmkfs runs it (its own VAES
	 * code where the CPU has it); then, if that was not OpenSSL,
	 * aes-256-xts-ossl: OpenSSL's beside it. */
	r = time_xts("aes-256-xts", key, buf, dst, seconds, tsv, &impl);
	if (!r && strcmp(impl, "OpenSSL")) {
		if (setenv("CMKFS_XTS", "openssl", 1)) {
			perror("crypto-speed: setenv");
			return 1;
		}
		r = time_xts("aes-256-xts-ossl", key, buf, dst, seconds, tsv,
			     &impl);
	}
	if (r) {
		fprintf(stderr, "crypto-speed: %s\n", crypto_strerror(r));
		return 1;
	}
	row(tsv, "memcpy", "-", "copy",
	    run(OP_MEMCPY, NULL, buf, dst, seconds));
	secmem_free(key);
	free(buf);
	free(dst);
	return 0;
}
