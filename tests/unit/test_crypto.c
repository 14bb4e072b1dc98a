/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_crypto.c — unit tests of crypto/: secure memory, the AES-XTS sector
 * cipher (known-answer vectors, the plain64 IV rule, round trips, argument
 * checks) and the null cipher.
 *
 * Known answers come from files, never from this source: the NIST CAVP cases
 * in $CMKFS_VECTORS/xts/ and the IEEE 1619 cases in
 * $CMKFS_SRC/tests/vectors/ (tests/vectors/README.md: sources, licences).
 * Mismatches print got and want.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cipher.h"
#include "crypto.h"
#include "hex.h"
#include "xts_vaes.h"

/* ---- helpers ------------------------------------------------------------ */

#ifdef __SANITIZE_ADDRESS__
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v && *v ? v : dflt;
}

/* Decode hex into a malloc'ed buffer; fails the test on bad input. */
static uint8_t *unhex(const char *s, size_t *len)
{
	uint8_t *out = hex_decode(s, len);

	assert_non_null(out);
	return out;
}

static void print_hex(const char *label, const uint8_t *p, size_t n)
{
	fprintf(stderr, "  %s ", label);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "%02x", p[i]);
	fputc('\n', stderr);
}

/* Compare with a got/want report on mismatch. */
static void check_bytes(const char *what, const uint8_t *got,
			const uint8_t *want, size_t n)
{
	if (memcmp(got, want, n) != 0) {
		fprintf(stderr, "mismatch: %s\n", what);
		print_hex("got ", got, n);
		print_hex("want", want, n);
		fail();
	}
}

static void fill_random(void *p, size_t n)
{
	assert_int_equal(crypto_random(p, n), 0);
}

/* One known-answer case: the fields of a blank-line-separated block. */
struct kat {
	char name[256];
	char *key, *tweak, *unit, *pt, *ct;
};

static void kat_clear(struct kat *k)
{
	free(k->key);
	free(k->tweak);
	free(k->unit);
	free(k->pt);
	free(k->ct);
	memset(k, 0, sizeof(*k));
}

/*
 * Read "Name = value" blocks from a vector file; call fn for every block that
 * has a key.  "# ..." lines are comments; the last comment before a block
 * names it.  Returns the number of cases run.
 */
static int for_each_kat(const char *path, void (*fn)(const struct kat *))
{
	FILE *f = fopen(path, "r");
	char line[8192], comment[256] = "";
	struct kat k = { 0 };
	int count = 0;

	if (!f) {
		fprintf(stderr,
			"cannot open vector file %s: %s\n"
			"(CMKFS_VECTORS names the vectors directory, "
			"default tests/vectors)\n",
			path, strerror(errno));
		fail();
	}
	for (;;) {
		char *got = fgets(line, sizeof(line), f);
		char *eq, **slot;

		if (got)
			line[strcspn(line, "\r\n")] = 0;
		if (!got || !line[0]) {
			if (k.key) {
				snprintf(k.name, sizeof(k.name), "%s", comment);
				fn(&k);
				count++;
			}
			kat_clear(&k);
			if (!got)
				break;
			continue;
		}
		if (line[0] == '#') {
			snprintf(comment, sizeof(comment), "%.255s", line);
			continue;
		}
		eq = strstr(line, " = ");
		if (!eq) {
			kat_clear(&k);
			fclose(f);
			fail_msg("%s: malformed line '%s'", path, line);
			return -1;
		}
		*eq = 0;
		slot = !strcmp(line, "Key")	   ? &k.key
		       : !strcmp(line, "i")	   ? &k.tweak
		       : !strcmp(line, "DataUnit") ? &k.unit
		       : !strcmp(line, "PT")	   ? &k.pt
		       : !strcmp(line, "CT")	   ? &k.ct
						   : NULL;
		if (slot) {
			free(*slot);
			*slot = strdup(eq + 3);
		}
	}
	fclose(f);
	return count;
}

/* ---- secure memory ------------------------------------------------------ */

static void secmem_alloc_is_zeroed_and_sized(void **state)
{
	(void)state;
	uint8_t *p = secmem_alloc(100);
	uint8_t zero[100] = { 0 };

	assert_non_null(p);
	assert_memory_equal(p, zero, sizeof(zero));
	assert_true(secmem_size(p) >= 100);
	memset(p, 0xa5, secmem_size(p)); /* the whole usable size is ours */
	secmem_free(p);
	secmem_free(NULL);
}

static void secmem_rejects_bad_sizes(void **state)
{
	(void)state;
	errno = 0;
	assert_null(secmem_alloc(0));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(secmem_alloc((size_t)1 << 40));
	assert_int_equal(errno, EINVAL);
}

static void secmem_realloc_keeps_contents(void **state)
{
	(void)state;
	const size_t big = (size_t)3 * 4096;
	uint8_t *p = secmem_alloc(16), *q, pattern[16];

	assert_non_null(p);
	fill_random(pattern, sizeof(pattern));
	memcpy(p, pattern, sizeof(pattern));
	q = secmem_realloc(p, big);
	assert_non_null(q);
	assert_memory_equal(q, pattern, sizeof(pattern));
	assert_true(secmem_size(q) >= big);
	secmem_free(q);
	q = secmem_realloc(NULL, 8);
	assert_non_null(q);
	secmem_free(q);
}

static void secmem_counts_live_allocations(void **state)
{
	(void)state;
	struct secmem_stats before, during, after;
	void *a, *b;

	secmem_stats(&before);
	a = secmem_alloc(10);
	b = secmem_alloc(5000);
	assert_non_null(a);
	assert_non_null(b);
	secmem_stats(&during);
	assert_int_equal(during.live_allocs, before.live_allocs + 2);
	assert_true(during.live_bytes >= before.live_bytes + 5010);
	secmem_free(a);
	secmem_free(b);
	secmem_stats(&after);
	assert_int_equal(after.live_allocs, before.live_allocs);
	assert_int_equal(after.live_bytes, before.live_bytes);
}

/* Find the /proc/self/smaps entry containing p; copy its VmFlags and name. */
static int smaps_entry(const void *p, char *flags, size_t flen, char *name,
		       size_t nlen, long *locked_kb)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int in = 0, found = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		const char *name_at;
		char *end;

		/* Header lines: "lo-hi perms offset dev inode [name]". */
		lo = strtoul(line, &end, 16);
		if (*end == '-' && end != line) {
			hi = strtoul(end + 1, &end, 16);
			if (*end != ' ')
				continue;
			if (found)
				break;
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
			if (in) {
				/* The name, if any, is the sixth field. */
				name_at = end;
				for (int field = 0; field < 4 && name_at;
				     field++)
					name_at = strchr(name_at + 1, ' ');
				name_at =
					name_at ? name_at + strspn(name_at, " ")
						: "";
				found = 1;
				snprintf(name, nlen, "%.*s",
					 (int)strcspn(name_at, "\n"), name_at);
			}
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8))
			snprintf(flags, flen, "%.255s", line + 8);
		if (in && !strncmp(line, "Locked:", 7))
			*locked_kb = strtol(line + 7, NULL, 10);
	}
	fclose(f);
	return found ? 0 : -1;
}

static void secmem_mapping_is_protected(void **state)
{
	(void)state;
	char flags[256] = "", name[256] = "";
	struct secmem_stats st;
	long locked_kb = 0;
	uint8_t *p = secmem_alloc(64);

	assert_non_null(p);
	assert_int_equal(smaps_entry(p, flags, sizeof(flags), name,
				     sizeof(name), &locked_kb),
			 0);
	/* dd = MADV_DONTDUMP; wf = MADV_WIPEONFORK. */
	if (!strstr(flags, " dd") || !strstr(flags, " wf")) {
		fprintf(stderr, "VmFlags:%s", flags);
		fail_msg("secure memory lacks dd/wf flags");
	}
	/* Named mappings need CONFIG_ANON_VMA_NAME; when the kernel names
	 * them, ours must carry our name. */
	if (strstr(name, "[anon:"))
		assert_non_null(strstr(name, "cmkfs-secmem"));
	/* Locking may fail for an unprivileged user (recorded, not fatal);
	 * when it did not, the pages must really be locked.  AddressSanitizer
	 * turns mlock() into a no-op, so there is nothing to see under it. */
	secmem_stats(&st);
	if (!SANITIZED && (geteuid() == 0 || st.lock_failures == 0)) {
		assert_non_null(strstr(flags, " lo"));
		assert_true(locked_kb > 0);
	}
	secmem_free(p);
}

/* Run fn(p) in a child process; return its wait status. */
static int child_status(void (*fn)(uint8_t *p, size_t n), uint8_t *p, size_t n)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		fn(p, n);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void write_past_end(uint8_t *p, size_t n)
{
	/* Default action, in case a sanitizer runtime installed a handler. */
	signal(SIGSEGV, SIG_DFL);
	((volatile uint8_t *)p)[n] = 1;
}

static void secmem_guard_page_catches_overrun(void **state)
{
	(void)state;
	uint8_t *p = secmem_alloc(16);
	int status;

	assert_non_null(p);
	/* One byte past the usable end must fault. */
	status = child_status(write_past_end, p, secmem_size(p));
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);
	secmem_free(p);
}

static void exit_1_unless_zero(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			_exit(1);
}

static void secmem_not_inherited_by_children(void **state)
{
	(void)state;
	uint8_t *p = secmem_alloc(32);
	int status;

	assert_non_null(p);
	memset(p, 0x5a, 32);
	/* MADV_WIPEONFORK: the child sees zeros, not the secret. */
	status = child_status(exit_1_unless_zero, p, 32);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(p[0], 0x5a); /* the parent keeps its copy */
	secmem_free(p);
}

static void secmem_equal_is_exact(void **state)
{
	(void)state;
	uint8_t a[64], b[64];

	fill_random(a, sizeof(a));
	memcpy(b, a, sizeof(b));
	assert_true(secmem_equal(a, b, sizeof(a)));
	assert_true(secmem_equal(a, b, 0));
	b[0] ^= 1;
	assert_false(secmem_equal(a, b, sizeof(a)));
	b[0] ^= 1;
	b[63] ^= 0x80;
	assert_false(secmem_equal(a, b, sizeof(a)));
	assert_true(secmem_equal(a, b, 63));
}

/* A key owns one secure allocation holding its bytes, made and wiped by its
 * constructor and destroyer. */
static void crypto_key_owns_its_bytes(void **state)
{
	(void)state;
	uint8_t bytes[64];
	struct crypto_key *k = NULL, *z = NULL;
	struct secmem_stats before, during, after;

	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)(i * 7 + 1);
	secmem_stats(&before);
	assert_int_equal(crypto_key_from(bytes, sizeof(bytes), &k), 0);
	assert_int_equal(crypto_key_len(k), 64);
	assert_memory_equal(crypto_key_bytes(k), bytes, sizeof(bytes));
	/* In secure memory: secmem_size traps on anything else. */
	assert_true(secmem_size(k) >= 64);
	assert_int_equal(crypto_key_new(32, &z), 0);
	assert_int_equal(crypto_key_len(z), 32);
	for (size_t i = 0; i < 32; i++)
		assert_int_equal(crypto_key_data(z)[i], 0);
	secmem_stats(&during);
	assert_int_equal(during.live_allocs, before.live_allocs + 2);
	crypto_key_free(k);
	crypto_key_free(z);
	crypto_key_free(NULL);
	secmem_stats(&after);
	assert_int_equal(after.live_allocs, before.live_allocs);

	assert_int_equal(crypto_key_new(0, &k), -EINVAL);
	assert_null(k);
	assert_int_equal(crypto_key_new(CRYPTO_KEY_MAX + 1, &k), -EINVAL);
	assert_null(k);
}

static void secmem_wipe_zeroes(void **state)
{
	(void)state;
	uint8_t a[40];

	memset(a, 0xff, sizeof(a));
	secmem_wipe(a + 4, 32);
	assert_int_equal(a[3], 0xff);
	for (int i = 4; i < 36; i++)
		assert_int_equal(a[i], 0);
	assert_int_equal(a[36], 0xff);
	secmem_wipe(NULL, 10); /* tolerated */
}

/* ---- known answers ------------------------------------------------------ */

/* CAVP cases give an arbitrary 128-bit tweak: run them through the raw
 * cipher, below the sector loop. */
static void cavp_case(const struct kat *k)
{
	size_t klen, tlen, plen, clen;
	uint8_t *key = unhex(k->key, &klen), *tw = unhex(k->tweak, &tlen);
	uint8_t *pt = unhex(k->pt, &plen), *ct = unhex(k->ct, &clen);
	uint8_t *buf = malloc(plen);
	struct cipher *c;

	assert_int_equal(tlen, CIPHER_IV_LEN);
	assert_int_equal(plen, clen);
	assert_int_equal(cipher_xts_open(&c, key, klen), 0);
	assert_int_equal(cipher_encrypt(c, tw, pt, buf, plen), 0);
	check_bytes(k->name, buf, ct, plen);
	assert_int_equal(cipher_decrypt(c, tw, ct, buf, clen), 0);
	check_bytes(k->name, buf, pt, plen);
	cipher_close(c);
	free(key), free(tw), free(pt), free(ct), free(buf);
}

static void xts_nist_cavp_vectors(void **state)
{
	(void)state;
	char path[4096];

	snprintf(path, sizeof(path), "%s/xts/cavs-xts.txt",
		 env_or("CMKFS_VECTORS", "tests/vectors"));
	assert_int_equal(for_each_kat(path, cavp_case), 2);
}

/* IEEE 1619 cases are whole 512-byte data units with an integer sequence
 * number: exactly a 512-byte sector at that index, through the public API. */
static void ieee_case(const struct kat *k)
{
	size_t klen, plen, clen;
	uint8_t *key = unhex(k->key, &klen), *pt = unhex(k->pt, &plen);
	uint8_t *ct = unhex(k->ct, &clen), *buf = malloc(plen);
	struct sc_params p = { .cipher = "aes-xts-plain64",
			       .sector_size = 512 };
	uint64_t unit = strtoull(k->unit, NULL, 0);
	struct sc_ctx *ctx;

	assert_int_equal(plen, 512);
	assert_int_equal(sc_open(&ctx, &p, key, klen), 0);
	assert_int_equal(sc_encrypt(ctx, unit * 512, pt, buf, plen), 0);
	check_bytes(k->name, buf, ct, plen);
	assert_int_equal(sc_decrypt(ctx, unit * 512, buf, buf, plen), 0);
	check_bytes(k->name, buf, pt, plen);
	sc_close(ctx);
	free(key), free(pt), free(ct), free(buf);
}

static void xts_ieee1619_vectors(void **state)
{
	(void)state;
	char path[4096];

	snprintf(path, sizeof(path), "%s/tests/vectors/ieee1619-xts.txt",
		 env_or("CMKFS_SRC", "."));
	assert_int_equal(for_each_kat(path, ieee_case), 2);
}

/* ---- the sector loop ---------------------------------------------------- */

static void plain64(uint8_t iv[16], uint64_t unit)
{
	memset(iv, 0, 16);
	for (int i = 0; i < 8; i++)
		iv[i] = (uint8_t)(unit >> (8 * i));
}

/* Sector N of a 4096-byte-sector volume uses IV 8*N, little-endian: compare
 * the sector API with the raw cipher under that explicit tweak. */
static void xts_iv_of_4k_sector_is_8n(void **state)
{
	(void)state;
	static const uint64_t sectors[] = {
		0, 1, 2, 255, 256, 0x123456789ULL, (UINT64_MAX / 4096) - 1
	};
	struct sc_params p = { .cipher = "aes-xts-plain64",
			       .sector_size = 4096 };
	uint8_t key[64], pt[4096], got[4096], want[4096], iv[16];
	struct sc_ctx *ctx;
	struct cipher *c;

	fill_random(key, sizeof(key));
	fill_random(pt, sizeof(pt));
	assert_int_equal(sc_open(&ctx, &p, key, sizeof(key)), 0);
	assert_int_equal(cipher_xts_open(&c, key, sizeof(key)), 0);
	for (size_t i = 0; i < sizeof(sectors) / sizeof(sectors[0]); i++) {
		uint64_t n = sectors[i];

		assert_int_equal(sc_encrypt(ctx, n * 4096, pt, got, 4096), 0);
		plain64(iv, 8 * n);
		assert_int_equal(cipher_encrypt(c, iv, pt, want, 4096), 0);
		check_bytes("4096-byte sector N under IV 8N", got, want, 4096);
		/* ... and not under IV N (the iv_large_sectors rule). */
		if (n) {
			plain64(iv, n);
			assert_int_equal(cipher_encrypt(c, iv, pt, want, 4096),
					 0);
			assert_memory_not_equal(got, want, 4096);
		}
	}
	cipher_close(c);
	sc_close(ctx);
	secmem_wipe(key, sizeof(key));
}

/* iv_offset shifts every IV by a number of 512-byte units. */
static void xts_iv_offset_is_added(void **state)
{
	(void)state;
	struct sc_params p = { .cipher = "aes-xts-plain64",
			       .sector_size = 1024,
			       .iv_offset = 77 };
	uint8_t key[64], pt[2048], got[2048], want[1024], iv[16];
	struct sc_ctx *ctx;
	struct cipher *c;

	fill_random(key, sizeof(key));
	fill_random(pt, sizeof(pt));
	assert_int_equal(sc_open(&ctx, &p, key, sizeof(key)), 0);
	assert_int_equal(cipher_xts_open(&c, key, sizeof(key)), 0);
	/* Two sectors starting at sector 5: units 10+77 and 12+77. */
	assert_int_equal(sc_encrypt(ctx, (uint64_t)5 * 1024, pt, got, 2048), 0);
	plain64(iv, 10 + 77);
	assert_int_equal(cipher_encrypt(c, iv, pt, want, 1024), 0);
	check_bytes("first sector", got, want, 1024);
	plain64(iv, 12 + 77);
	assert_int_equal(cipher_encrypt(c, iv, pt + 1024, want, 1024), 0);
	check_bytes("second sector", got + 1024, want, 1024);
	cipher_close(c);
	sc_close(ctx);
}

/* A run of sectors encrypts exactly like the sectors one by one. */
static void xts_run_equals_sector_by_sector(void **state)
{
	(void)state;
	static const unsigned sizes[] = { 512, 1024, 2048, 4096 };
	enum { LEN = 64 * 1024 };
	uint8_t *pt = malloc(LEN), *run = malloc(LEN), *one = malloc(LEN);
	uint8_t key[64];

	fill_random(key, sizeof(key));
	fill_random(pt, LEN);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct sc_params p = { .cipher = "aes-xts-plain64",
				       .sector_size = sizes[i] };
		uint64_t base = 1000 * (uint64_t)sizes[i];
		struct sc_ctx *ctx;

		assert_int_equal(sc_open(&ctx, &p, key, sizeof(key)), 0);
		assert_int_equal(sc_encrypt(ctx, base, pt, run, LEN), 0);
		for (size_t off = 0; off < LEN; off += sizes[i])
			assert_int_equal(sc_encrypt(ctx, base + off, pt + off,
						    one + off, sizes[i]),
					 0);
		check_bytes("run vs single sectors", run, one, LEN);
		sc_close(ctx);
	}
	free(pt), free(run), free(one);
}

static void xts_round_trip_in_and_out_of_place(void **state)
{
	(void)state;
	static const unsigned sizes[] = { 512, 4096 };
	static const size_t keylens[] = { 32, 64 };
	enum { LEN = 32 * 1024 };
	uint8_t *pt = malloc(LEN), *a = malloc(LEN), *b = malloc(LEN);
	uint8_t key[64];

	for (size_t k = 0; k < 2; k++) {
		for (size_t i = 0; i < 2; i++) {
			struct sc_params p = { .cipher = "aes-xts-plain64",
					       .sector_size = sizes[i] };
			struct sc_ctx *ctx;

			fill_random(key, sizeof(key));
			fill_random(pt, LEN);
			assert_int_equal(sc_open(&ctx, &p, key, keylens[k]), 0);
			/* out of place */
			assert_int_equal(sc_encrypt(ctx, 0, pt, a, LEN), 0);
			assert_memory_not_equal(a, pt, LEN);
			assert_int_equal(sc_decrypt(ctx, 0, a, b, LEN), 0);
			check_bytes("out-of-place round trip", b, pt, LEN);
			/* in place gives the same ciphertext */
			memcpy(b, pt, LEN);
			assert_int_equal(sc_encrypt(ctx, 0, b, b, LEN), 0);
			check_bytes("in-place ciphertext", b, a, LEN);
			assert_int_equal(sc_decrypt(ctx, 0, b, b, LEN), 0);
			check_bytes("in-place round trip", b, pt, LEN);
			sc_close(ctx);
		}
	}
	free(pt), free(a), free(b);
}

/* The VAES path against OpenSSL, sector by sector: random keys, every
 * sector size, runs of 1 to 9 sectors, units near 0 and near 2^64 (where
 * the plain64 IV wraps), both directions, in place and out of place. */
static void xts_vaes_equals_openssl(void **state)
{
	(void)state;
	enum { MAX = 9 * 4096 };
	static const unsigned sizes[] = { 512, 1024, 2048, 4096 };
	static const uint64_t units[] = { 0, 1, 7, 0x123456789abcdefull,
					  UINT64_MAX - 20 };
	uint8_t *pt = malloc(MAX), *got = malloc(MAX), *want = malloc(MAX);
	uint8_t key[64], iv[16];
	char what[128];

	if (!xts_vaes_usable())
		skip(); /* no VAES/AVX-512 here: sc_* use OpenSSL */
	for (int k = 0; k < 4; k++) {
		struct xts_vaes *x, *dup;
		struct cipher *c;

		fill_random(key, sizeof(key));
		assert_int_equal(xts_vaes_open(&x, key, sizeof(key)), 0);
		assert_int_equal(xts_vaes_dup(x, &dup), 0);
		xts_vaes_close(x);
		assert_int_equal(cipher_xts_open(&c, key, sizeof(key)), 0);
		for (size_t si = 0; si < sizeof(sizes) / sizeof(*sizes); si++)
			for (size_t ui = 0; ui < sizeof(units) / sizeof(*units);
			     ui++) {
				unsigned ss = sizes[si], step = ss / 512;
				size_t n = 1 + ((size_t)k * 2 + ui) % 9;

				fill_random(pt, n * ss);
				for (int enc = 0; enc < 2; enc++) {
					for (size_t i = 0; i < n; i++) {
						plain64(iv,
							units[ui] + i * step);
						assert_int_equal(
							(enc ? cipher_encrypt
							     : cipher_decrypt)(
								c, iv,
								pt + i * ss,
								want + i * ss,
								ss),
							0);
					}
					snprintf(what, sizeof(what),
						 "key %d sector %u unit %llu "
						 "x%zu %s",
						 k, ss,
						 (unsigned long long)units[ui],
						 n,
						 enc ? "encrypt" : "decrypt");
					xts_vaes_run(dup, enc, units[ui], step,
						     pt, got, ss, n);
					check_bytes(what, got, want, n * ss);
					memcpy(got, pt, n * ss);
					xts_vaes_run(dup, enc, units[ui], step,
						     got, got, ss, n);
					check_bytes(what, got, want, n * ss);
				}
			}
		cipher_close(c);
		xts_vaes_close(dup);
	}
	/* The identical-halves rule, as for OpenSSL. */
	memcpy(key + 32, key, 32);
	{
		struct xts_vaes *x;

		assert_int_equal(xts_vaes_open(&x, key, sizeof(key)),
				 -EKEYREJECTED);
		/* AES-128 keys are OpenSSL's (sc_open falls back). */
		assert_int_equal(xts_vaes_open(&x, key, 32), -ENOTSUP);
	}
	free(pt), free(got), free(want);
}

/* The same plaintext in two sectors must give different ciphertexts. */
static void xts_equal_sectors_differ(void **state)
{
	(void)state;
	struct sc_params p = { .cipher = "aes-xts-plain64",
			       .sector_size = 4096 };
	uint8_t key[64], buf[8192];
	struct sc_ctx *ctx;

	fill_random(key, sizeof(key));
	memset(buf, 'A', sizeof(buf));
	assert_int_equal(sc_open(&ctx, &p, key, sizeof(key)), 0);
	assert_int_equal(sc_encrypt(ctx, 0, buf, buf, sizeof(buf)), 0);
	assert_memory_not_equal(buf, buf + 4096, 4096);
	sc_close(ctx);
}

static void xts_rejects_misaligned_io(void **state)
{
	(void)state;
	struct sc_params p = { .cipher = "aes-xts-plain64",
			       .sector_size = 4096 };
	uint8_t key[64], in[8192], out[8192], before[8192];
	struct sc_ctx *ctx;

	fill_random(key, sizeof(key));
	fill_random(in, sizeof(in));
	fill_random(out, sizeof(out));
	memcpy(before, out, sizeof(out));
	assert_int_equal(sc_open(&ctx, &p, key, sizeof(key)), 0);
	assert_int_equal(sc_encrypt(ctx, 512, in, out, 4096), -EINVAL);
	assert_int_equal(sc_encrypt(ctx, 0, in, out, 4095), -EINVAL);
	assert_int_equal(sc_encrypt(ctx, 0, in, out, 4096 + 512), -EINVAL);
	assert_int_equal(sc_decrypt(ctx, 1, in, out, 4096), -EINVAL);
	assert_int_equal(sc_decrypt(ctx, 4096, in, out, 100), -EINVAL);
	/* nothing was written */
	assert_memory_equal(out, before, sizeof(out));
	assert_int_equal(sc_encrypt(ctx, 4096, in, out, 0), 0);
	sc_close(ctx);
}

static void xts_rejects_identical_key_halves(void **state)
{
	(void)state;
	struct sc_params p = { .cipher = "aes-xts-plain64",
			       .sector_size = 512 };
	uint8_t key[64];
	struct sc_ctx *ctx = (struct sc_ctx *)1;

	fill_random(key, 32);
	memcpy(key + 32, key, 32);
	assert_int_equal(sc_open(&ctx, &p, key, 64), -EKEYREJECTED);
	assert_null(ctx);
	memcpy(key + 16, key, 16);
	assert_int_equal(sc_open(&ctx, &p, key, 32), -EKEYREJECTED);
	assert_non_null(strstr(crypto_strerror(-EKEYREJECTED), "identical"));
	/* One differing bit is enough. */
	key[63] ^= 1;
	assert_int_equal(sc_open(&ctx, &p, key, 64), 0);
	sc_close(ctx);
}

static void sc_rejects_bad_parameters(void **state)
{
	(void)state;
	static const unsigned bad_sizes[] = { 0, 256, 511, 1000, 3072, 8192 };
	uint8_t key[64];
	struct sc_ctx *ctx;
	struct sc_params p = { .cipher = "aes-xts-plain64" };

	fill_random(key, sizeof(key));
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		p.sector_size = bad_sizes[i];
		assert_int_equal(sc_open(&ctx, &p, key, 64), -EINVAL);
	}
	p.sector_size = 4096;
	assert_int_equal(sc_open(&ctx, &p, key, 48), -EINVAL);
	assert_int_equal(sc_open(&ctx, &p, key, 16), -EINVAL);
	p.cipher = "aes-cbc-essiv:sha256";
	assert_int_equal(sc_open(&ctx, &p, key, 64), -ENOTSUP);
	p.cipher = NULL;
	assert_int_equal(sc_open(&ctx, &p, key, 64), -EINVAL);
	sc_close(NULL);
}

/* A duplicated context encrypts identically and outlives its source. */
static void sc_dup_is_independent(void **state)
{
	(void)state;
	struct sc_params p = { .cipher = "aes-xts-plain64",
			       .sector_size = 4096 };
	uint8_t key[64], pt[4096], a[4096], b[4096];
	struct sc_ctx *ctx, *dup;

	fill_random(key, sizeof(key));
	fill_random(pt, sizeof(pt));
	assert_int_equal(sc_open(&ctx, &p, key, sizeof(key)), 0);
	assert_int_equal(sc_encrypt(ctx, (uint64_t)4096 * 9, pt, a, 4096), 0);
	assert_int_equal(sc_dup(ctx, &dup), 0);
	sc_close(ctx);
	assert_int_equal(sc_encrypt(dup, (uint64_t)4096 * 9, pt, b, 4096), 0);
	check_bytes("dup ciphertext", b, a, 4096);
	assert_int_equal(sc_decrypt(dup, (uint64_t)4096 * 9, b, b, 4096), 0);
	check_bytes("dup round trip", b, pt, 4096);
	assert_int_equal(sc_sector_size(dup), 4096);
	assert_string_equal(sc_cipher(dup), "aes-xts-plain64");
	assert_false(sc_is_null(dup));
	sc_close(dup);
}

/* Contexts duplicated for several threads run concurrently without sharing
 * state: each thread's output equals the single-threaded one. */
enum { N_THREADS = 4, THREAD_LEN = 256 * 1024 };

struct thread_job {
	struct sc_ctx *ctx;
	const uint8_t *pt;
	uint8_t *out;
	int rc;
};

static void *thread_encrypt(void *arg)
{
	struct thread_job *job = arg;

	/* Many calls, so the threads really overlap. */
	for (int round = 0; round < 20 && !job->rc; round++)
		job->rc = sc_encrypt(job->ctx, (uint64_t)round * THREAD_LEN,
				     job->pt, job->out, THREAD_LEN);
	return NULL;
}

static void sc_contexts_per_thread(void **state)
{
	(void)state;
	struct sc_params p = { .cipher = "aes-xts-plain64",
			       .sector_size = 4096 };
	struct thread_job jobs[N_THREADS];
	pthread_t tids[N_THREADS];
	uint8_t key[64], *pt = malloc(THREAD_LEN), *want = malloc(THREAD_LEN);
	struct sc_ctx *master;

	assert_non_null(pt);
	assert_non_null(want);
	fill_random(key, sizeof(key));
	fill_random(pt, THREAD_LEN);
	assert_int_equal(sc_open(&master, &p, key, sizeof(key)), 0);
	assert_int_equal(sc_encrypt(master, (uint64_t)19 * THREAD_LEN, pt, want,
				    THREAD_LEN),
			 0);
	for (int i = 0; i < N_THREADS; i++) {
		jobs[i] = (struct thread_job){ .pt = pt,
					       .out = malloc(THREAD_LEN) };
		assert_non_null(jobs[i].out);
		assert_int_equal(sc_dup(master, &jobs[i].ctx), 0);
		assert_int_equal(pthread_create(&tids[i], NULL, thread_encrypt,
						&jobs[i]),
				 0);
	}
	for (int i = 0; i < N_THREADS; i++) {
		assert_int_equal(pthread_join(tids[i], NULL), 0);
		assert_int_equal(jobs[i].rc, 0);
		check_bytes("thread output", jobs[i].out, want, THREAD_LEN);
		sc_close(jobs[i].ctx);
		free(jobs[i].out);
	}
	sc_close(master);
	free(pt);
	free(want);
}

/* ---- null cipher -------------------------------------------------------- */

static void null_cipher_copies(void **state)
{
	(void)state;
	struct sc_params p = { .cipher = "cipher_null", .sector_size = 4096 };
	uint8_t in[8192], out[8192];
	struct sc_ctx *ctx, *dup;

	fill_random(in, sizeof(in));
	assert_int_equal(sc_open(&ctx, &p, NULL, 0), 0);
	assert_true(sc_is_null(ctx));
	assert_string_equal(sc_cipher(ctx), "cipher_null");
	assert_int_equal(sc_encrypt(ctx, 8192, in, out, sizeof(in)), 0);
	assert_memory_equal(out, in, sizeof(in));
	memset(out, 0, sizeof(out));
	assert_int_equal(sc_decrypt(ctx, 0, in, out, sizeof(in)), 0);
	assert_memory_equal(out, in, sizeof(in));
	assert_int_equal(sc_encrypt(ctx, 0, in, in, sizeof(in)), 0);
	/* Same alignment rules as the real cipher. */
	assert_int_equal(sc_encrypt(ctx, 512, in, out, 4096), -EINVAL);
	assert_int_equal(sc_decrypt(ctx, 0, in, out, 100), -EINVAL);
	assert_int_equal(sc_dup(ctx, &dup), 0);
	assert_true(sc_is_null(dup));
	sc_close(dup);
	sc_close(ctx);
	/* libcryptsetup's spelling of the null segment is accepted too. */
	p.cipher = "cipher_null-ecb";
	assert_int_equal(sc_open(&ctx, &p, NULL, 0), 0);
	assert_true(sc_is_null(ctx));
	sc_close(ctx);
}

/* ---- hashes and AEAD ---------------------------------------------------- */

/* FIPS 180-2 "abc"; RFC 4231 test case 1. */
static void sha256_and_hmac_known_answers(void **state)
{
	(void)state;
	uint8_t out[CRYPTO_SHA256_LEN], key[20];
	size_t n;
	uint8_t *want;

	assert_int_equal(crypto_sha256("abc", 3, out), 0);
	want = unhex(
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		&n);
	check_bytes("sha256(abc)", out, want, n);
	free(want);
	memset(key, 0x0b, sizeof(key));
	assert_int_equal(
		crypto_hmac_sha256(key, sizeof(key), "Hi There", 8, out), 0);
	want = unhex(
		"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
		&n);
	check_bytes("RFC 4231 case 1", out, want, n);
	free(want);
}

/* GCM specification (McGrew & Viega) test cases 13 and 14: AES-256, zero
 * key and IV, empty and one zero block of plaintext. */
static void aead_known_answers(void **state)
{
	(void)state;
	uint8_t key[32] = { 0 }, iv[12] = { 0 }, zero[16] = { 0 }, out[32];
	size_t n;
	uint8_t *want;

	assert_int_equal(crypto_aead_seal(key, iv, NULL, 0, NULL, 0, out), 0);
	want = unhex("530f8afbc74536b9a963b4f1c4cb738b", &n);
	check_bytes("GCM test case 13", out, want, n);
	free(want);
	assert_int_equal(crypto_aead_seal(key, iv, NULL, 0, zero, 16, out), 0);
	want = unhex(
		"cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919",
		&n);
	check_bytes("GCM test case 14", out, want, n);
	free(want);
}

static void aead_detects_tampering(void **state)
{
	(void)state;
	uint8_t key[32], iv[12], pt[100], ct[116], back[100];

	fill_random(key, sizeof(key));
	fill_random(iv, sizeof(iv));
	fill_random(pt, sizeof(pt));
	assert_int_equal(crypto_aead_seal(key, iv, "ctx", 3, pt, 100, ct), 0);
	assert_int_equal(crypto_aead_open(key, iv, "ctx", 3, ct, 116, back), 0);
	check_bytes("GCM round trip", back, pt, 100);
	/* wrong AAD, flipped ciphertext bit, flipped tag bit, short input */
	assert_int_equal(crypto_aead_open(key, iv, "ctY", 3, ct, 116, back),
			 -EBADMSG);
	ct[5] ^= 1;
	assert_int_equal(crypto_aead_open(key, iv, "ctx", 3, ct, 116, back),
			 -EBADMSG);
	ct[5] ^= 1;
	ct[115] ^= 0x80;
	assert_int_equal(crypto_aead_open(key, iv, "ctx", 3, ct, 116, back),
			 -EBADMSG);
	assert_int_equal(crypto_aead_open(key, iv, "ctx", 3, ct, 15, back),
			 -EBADMSG);
	/* wrong key */
	ct[115] ^= 0x80;
	key[0] ^= 1;
	assert_int_equal(crypto_aead_open(key, iv, "ctx", 3, ct, 116, back),
			 -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(secmem_alloc_is_zeroed_and_sized),
		cmocka_unit_test(secmem_rejects_bad_sizes),
		cmocka_unit_test(crypto_key_owns_its_bytes),
		cmocka_unit_test(secmem_realloc_keeps_contents),
		cmocka_unit_test(secmem_counts_live_allocations),
		cmocka_unit_test(secmem_mapping_is_protected),
		cmocka_unit_test(secmem_guard_page_catches_overrun),
		cmocka_unit_test(secmem_not_inherited_by_children),
		cmocka_unit_test(secmem_equal_is_exact),
		cmocka_unit_test(secmem_wipe_zeroes),
		cmocka_unit_test(xts_nist_cavp_vectors),
		cmocka_unit_test(xts_ieee1619_vectors),
		cmocka_unit_test(xts_iv_of_4k_sector_is_8n),
		cmocka_unit_test(xts_iv_offset_is_added),
		cmocka_unit_test(xts_run_equals_sector_by_sector),
		cmocka_unit_test(xts_vaes_equals_openssl),
		cmocka_unit_test(xts_round_trip_in_and_out_of_place),
		cmocka_unit_test(xts_equal_sectors_differ),
		cmocka_unit_test(xts_rejects_misaligned_io),
		cmocka_unit_test(xts_rejects_identical_key_halves),
		cmocka_unit_test(sc_rejects_bad_parameters),
		cmocka_unit_test(sc_dup_is_independent),
		cmocka_unit_test(sc_contexts_per_thread),
		cmocka_unit_test(null_cipher_copies),
		cmocka_unit_test(sha256_and_hmac_known_answers),
		cmocka_unit_test(aead_known_answers),
		cmocka_unit_test(aead_detects_tampering),
	};

	return cmocka_run_group_tests_name("crypto", tests, NULL, NULL);
}
