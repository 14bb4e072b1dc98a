/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_luks2.c — crypto/luks2/luks2.c on real files: format and what the header
 * then says, unlocking (right and wrong secrets, keys in secure memory),
 * keyslots and tokens, header backup and restore, damaged header copies
 * (opened without writing), what luks2_open refuses (nothing, LUKS1, a
 * reencryption), argument checks that must write nothing, and libblkid's
 * view of zeros, LUKS and ext4.
 *
 * Volumes are 32 MiB files under $TEST_TMPDIR (or /tmp).  LUKS1 volumes,
 * reencryptions and ext4 images are made with the real cryptsetup and
 * mkfs.ext4.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "fs.h"
#include "luks2.h"

#define KIB	   1024ul
#define MIB	   (1024ul * KIB)
#define VOL_SIZE   (32ul * MIB)
#define SECRET_LEN 32
#define UUID_A	   "6c0e2a4e-1f7b-4d2c-9a83-0b5d7e9f3a11"
#define UUID_B	   "6c0e2a4e-1f7b-4d2c-9a83-0b5d7e9f3a22"
#define KEY_ARN	   "arn:aws:kms:us-east-1:111111111111:key/x"
#define TOKEN                                                                  \
	"{\"type\":\"aws-kms\",\"keyslots\":[],\"key_arn\":\"" KEY_ARN "\"}"

struct fixture {
	char dir[256];
	char vol[300];
	uint8_t secret[SECRET_LEN];
};

/* ---- helpers ------------------------------------------------------------ */

static void path_in(const struct fixture *f, char *out, size_t len,
		    const char *name)
{
	snprintf(out, len, "%s/%s", f->dir, name);
}

/* A file of size bytes, all zeros (sparse). */
static void make_file(const char *path, uint64_t size)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

/* Overwrite len bytes at off with zeros. */
static void zero_range(const char *path, uint64_t off, size_t len)
{
	uint8_t *z = calloc(1, len);
	int fd = open(path, O_WRONLY);

	assert_non_null(z);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, z, len, (off_t)off), (ssize_t)len);
	close(fd);
	free(z);
}

/* SHA-256 of a whole file: to prove that something did not write. */
static void file_hash(const char *path, uint8_t out[CRYPTO_SHA256_LEN])
{
	uint64_t n = file_size(path);
	uint8_t *buf = malloc(n);
	int fd = open(path, O_RDONLY);

	assert_non_null(buf);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, n, 0), (ssize_t)n);
	close(fd);
	assert_int_equal(crypto_sha256(buf, n, out), 0);
	free(buf);
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle)) {
		fprintf(stderr, "got:  %s\nwant: ...%s...\n", haystack, needle);
		fail();
	}
}

static void format_vol(const char *path, const char *uuid, unsigned sector,
		       const uint8_t *secret, const char *token)
{
	struct luks2_format_params p = {
		.cipher = "aes-xts-plain64",
		.sector_size = sector,
		.uuid = uuid,
	};
	char err[256] = "";
	int r = luks2_format(path, &p, secret, SECRET_LEN, token, err,
			     sizeof(err));

	if (r)
		fprintf(stderr, "luks2_format: %d: %s\n", r, err);
	assert_int_equal(r, 0);
}

static struct luks2_vol *open_vol_flags(const char *path, unsigned flags)
{
	struct luks2_vol *v = NULL;
	char err[256] = "";
	int r = luks2_open_flags(path, flags, &v, err, sizeof(err));

	if (r)
		fprintf(stderr, "luks2_open: %d: %s\n", r, err);
	assert_int_equal(r, 0);
	assert_non_null(v);
	return v;
}

static struct luks2_vol *open_vol(const char *path)
{
	return open_vol_flags(path, 0);
}

/* Unlock keyslot with secret; the key must be in secure memory. */
static struct crypto_key *unlock(struct luks2_vol *v, int keyslot,
				 const uint8_t *secret, size_t *len)
{
	struct crypto_key *vk = NULL;
	char err[256] = "";
	int r = luks2_unlock(v, keyslot, secret, SECRET_LEN, &vk, err,
			     sizeof(err));

	if (r)
		fprintf(stderr, "luks2_unlock: %d: %s\n", r, err);
	assert_int_equal(r, 0);
	assert_non_null(vk);
	*len = crypto_key_len(vk);
	/* secmem_size traps on memory secmem_alloc did not hand out. */
	assert_true(secmem_size(vk) >= *len);
	return vk;
}

/* Two keys of the same length and bytes. */
static bool same_key(const struct crypto_key *a, const struct crypto_key *b)
{
	return crypto_key_len(a) == crypto_key_len(b) &&
	       secmem_equal(crypto_key_bytes(a), crypto_key_bytes(b),
			    crypto_key_len(a));
}

static bool have(const char *cmd)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "command -v %s >/dev/null 2>&1", cmd);
	return system(buf) == 0;
}

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = system(cmd);
	if (r != 0) {
		fprintf(stderr, "command failed (%d): %s\n", r, cmd);
		fail();
	}
}

/* ---- fixture: one formatted volume ------------------------------------- */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *base = getenv("TEST_TMPDIR");

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "%s/luks2.XXXXXX",
		 base && *base ? base : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	path_in(f, f->vol, sizeof(f->vol), "vol.img");
	make_file(f->vol, VOL_SIZE);
	assert_int_equal(crypto_random(f->secret, sizeof(f->secret)), 0);
	format_vol(f->vol, UUID_A, 0, f->secret, TOKEN);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	secmem_wipe(f->secret, sizeof(f->secret));
	free(f);
	return 0;
}

/* ---- format and info ---------------------------------------------------- */

static void format_then_info(void **state)
{
	struct fixture *f = *state;
	struct luks2_vol *v = open_vol(f->vol);
	struct luks2_info vi;

	assert_int_equal(luks2_info(v, &vi), 0);
	assert_string_equal(vi.uuid, UUID_A);
	assert_string_equal(vi.label, "");
	assert_string_equal(vi.cipher, "aes-xts-plain64");
	assert_int_equal(vi.sector_size, 4096);
	assert_int_equal(vi.key_bytes, 64);
	assert_int_equal(vi.data_offset, 16 * MIB);
	assert_int_equal(vi.device_size, VOL_SIZE);
	assert_int_equal(vi.data_size, VOL_SIZE - 16 * MIB);
	assert_int_equal(vi.n_keyslots, 1);
	assert_int_equal(vi.keyslots[0], 0);
	assert_int_equal(vi.n_tokens, 1);
	assert_int_equal(vi.tokens[0], 0);
	luks2_close(v);
	/* What cmkfs formats is a LUKS volume to everyone else too. */
	{
		char type[64];

		assert_int_equal(
			fsd_probe_signature(f->vol, type, sizeof(type)), 1);
		assert_string_equal(type, "crypto_LUKS");
	}
}

static void format_512_with_label(void **state)
{
	struct fixture *f = *state;
	struct luks2_format_params p = {
		.cipher = "aes-xts-plain64",
		.sector_size = 512,
		.uuid = UUID_B,
		.label = "pg-data",
	};
	char path[300], err[256] = "";
	struct luks2_info vi;
	struct luks2_vol *v;

	path_in(f, path, sizeof(path), "v512.img");
	make_file(path, 24 * MIB + 512);
	assert_int_equal(luks2_format(path, &p, f->secret, SECRET_LEN, NULL,
				      err, sizeof(err)),
			 0);
	v = open_vol(path);
	assert_int_equal(luks2_info(v, &vi), 0);
	assert_string_equal(vi.uuid, UUID_B);
	assert_string_equal(vi.label, "pg-data");
	assert_int_equal(vi.sector_size, 512);
	assert_int_equal(vi.data_offset, 16 * MIB);
	assert_int_equal(vi.data_size, 8 * MIB + 512);
	assert_int_equal(vi.device_size, 24 * MIB + 512);
	assert_int_equal(vi.n_keyslots, 1);
	assert_int_equal(vi.n_tokens, 0);
	luks2_close(v);
}

static void token_json_names_the_keyslot(void **state)
{
	struct fixture *f = *state;
	struct luks2_vol *v = open_vol(f->vol);
	const char *json, *again;

	assert_int_equal(luks2_token_json(v, 0, &json), 0);
	assert_contains(json, "\"type\":\"aws-kms\"");
	assert_contains(json, KEY_ARN);
	assert_contains(json, "\"keyslots\":[\"0\"]");
	/* The same string until the next change. */
	assert_int_equal(luks2_token_json(v, 0, &again), 0);
	assert_ptr_equal(json, again);
	assert_int_equal(luks2_token_json(v, 1, &again), -ENOENT);
	assert_int_equal(luks2_token_json(v, 99, &again), -ENOENT);
	assert_int_equal(luks2_token_json(v, -1, &again), -ENOENT);
	assert_contains(json, KEY_ARN);
	luks2_close(v);
}

/* ---- unlocking ---------------------------------------------------------- */

static void unlock_right_and_wrong(void **state)
{
	struct fixture *f = *state;
	struct luks2_vol *v = open_vol(f->vol);
	static uint8_t sentinel[64];
	struct crypto_key *vk1, *vk2, *vk = (struct crypto_key *)sentinel;
	uint8_t wrong[SECRET_LEN];
	struct secmem_stats before, after;
	size_t n1, n2;
	char err[256] = "";

	vk1 = unlock(v, 0, f->secret, &n1);
	assert_int_equal(n1, 64);
	vk2 = unlock(v, 0, f->secret, &n2);
	assert_int_equal(n2, 64);
	assert_true(same_key(vk1, vk2));

	memcpy(wrong, f->secret, sizeof(wrong));
	wrong[SECRET_LEN - 1] ^= 1;
	secmem_stats(&before);
	assert_int_equal(
		luks2_unlock(v, 0, wrong, sizeof(wrong), &vk, err, sizeof(err)),
		-EPERM);
	assert_contains(err, "does not open keyslot 0");
	assert_null(vk);
	/* The buffer prepared for the key was released. */
	secmem_stats(&after);
	assert_int_equal(after.live_allocs, before.live_allocs);

	assert_int_equal(luks2_unlock(v, 3, f->secret, SECRET_LEN, &vk, err,
				      sizeof(err)),
			 -ENOENT);
	assert_contains(err, "keyslot 3");
	assert_int_equal(luks2_unlock(v, 99, f->secret, SECRET_LEN, &vk, err,
				      sizeof(err)),
			 -EINVAL);
	assert_int_equal(
		luks2_unlock(v, 0, f->secret, 0, &vk, err, sizeof(err)),
		-EINVAL);

	/* A fresh handle gives the same key: it is the volume's. */
	luks2_close(v);
	v = open_vol(f->vol);
	crypto_key_free(vk2);
	vk2 = unlock(v, 0, f->secret, &n2);
	assert_true(same_key(vk1, vk2));
	crypto_key_free(vk1);
	crypto_key_free(vk2);
	luks2_close(v);
}

/* ---- keyslots ----------------------------------------------------------- */

static void keyslot_add_then_destroy(void **state)
{
	struct fixture *f = *state;
	struct luks2_vol *v = open_vol(f->vol);
	uint8_t second[SECRET_LEN], bogus[64];
	struct crypto_key *vk, *vk2, *none = NULL, *bogus_key;
	struct luks2_info vi;
	const char *json;
	char err[256] = "";
	size_t n, n2;
	int slot = -1;

	assert_int_equal(crypto_random(second, sizeof(second)), 0);
	vk = unlock(v, 0, f->secret, &n);
	assert_int_equal(luks2_keyslot_add(v, vk, second, sizeof(second), &slot,
					   err, sizeof(err)),
			 0);
	assert_int_equal(slot, 1);
	vk2 = unlock(v, slot, second, &n2);
	assert_int_equal(n2, n);
	assert_true(same_key(vk, vk2));
	crypto_key_free(vk2);
	/* The new keyslot uses cmkfs's KDF too: the CLI shows it below. */

	/* A key that is not the volume's makes no keyslot. */
	assert_int_equal(crypto_random(bogus, sizeof(bogus)), 0);
	assert_int_equal(crypto_key_from(bogus, sizeof(bogus), &bogus_key), 0);
	assert_int_equal(luks2_keyslot_add(v, bogus_key, second, sizeof(second),
					   &slot, err, sizeof(err)),
			 -EPERM);
	crypto_key_free(bogus_key);
	assert_contains(err, "not the key");
	assert_int_equal(luks2_info(v, &vi), 0);
	assert_int_equal(vi.n_keyslots, 2);

	assert_int_equal(luks2_keyslot_destroy(v, 0, err, sizeof(err)), 0);
	assert_int_equal(luks2_unlock(v, 0, f->secret, SECRET_LEN, &none, err,
				      sizeof(err)),
			 -ENOENT);
	assert_int_equal(luks2_unlock(v, 1, f->secret, SECRET_LEN, &none, err,
				      sizeof(err)),
			 -EPERM);
	assert_int_equal(luks2_keyslot_destroy(v, 0, err, sizeof(err)),
			 -ENOENT);
	assert_int_equal(luks2_keyslot_destroy(v, 77, err, sizeof(err)),
			 -EINVAL);
	/* The token no longer names the destroyed keyslot. */
	assert_int_equal(luks2_token_json(v, 0, &json), 0);
	assert_contains(json, "\"keyslots\":[]");
	luks2_close(v);

	/* All of it is on disk. */
	v = open_vol(f->vol);
	assert_int_equal(luks2_info(v, &vi), 0);
	assert_int_equal(vi.n_keyslots, 1);
	assert_int_equal(vi.keyslots[0], 1);
	assert_int_equal(luks2_unlock(v, 0, f->secret, SECRET_LEN, &none, err,
				      sizeof(err)),
			 -ENOENT);
	vk2 = unlock(v, 1, second, &n2);
	assert_true(same_key(vk, vk2));
	crypto_key_free(vk);
	crypto_key_free(vk2);
	luks2_close(v);
	if (have("cryptsetup"))
		run("cryptsetup luksDump '%s' | tr -d ' \\t' | "
		    "grep -c '^Iterations:1000$' | grep -qx 2",
		    f->vol);
}

/* ---- tokens ------------------------------------------------------------- */

static void token_add_and_remove(void **state)
{
	struct fixture *f = *state;
	struct luks2_vol *v = open_vol(f->vol);
	struct luks2_info vi;
	const char *json;
	char err[256] = "";
	int id = -1;

	assert_int_equal(
		luks2_token_add(v,
				"{\"type\":\"aws-kms\",\"keyslots\":[],"
				"\"key_arn\":\"arn:2\"}",
				0, &id, err, sizeof(err)),
		0);
	assert_int_equal(id, 1);
	assert_int_equal(luks2_token_json(v, 1, &json), 0);
	assert_contains(json, "arn:2");
	assert_contains(json, "\"keyslots\":[\"0\"]");

	/* What the interface requires of a token. */
	assert_int_equal(luks2_token_add(v, "{\"keyslots\":[]}", 0, &id, err,
					 sizeof(err)),
			 -EINVAL);
	assert_contains(err, "type");
	assert_int_equal(luks2_token_add(v,
					 "{\"type\":\"aws-kms\",\"keyslots\":"
					 "[\"0\"]}",
					 0, &id, err, sizeof(err)),
			 -EINVAL);
	assert_contains(err, "keyslots");
	assert_int_equal(luks2_token_add(v, "{\"type\":\"aws-kms\"}", 0, &id,
					 err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(
		luks2_token_add(v, "not json", 0, &id, err, sizeof(err)),
		-EINVAL);
	assert_int_equal(luks2_token_add(v, TOKEN, 5, &id, err, sizeof(err)),
			 -ENOENT);

	assert_int_equal(luks2_token_remove(v, 0, err, sizeof(err)), 0);
	assert_int_equal(luks2_token_json(v, 0, &json), -ENOENT);
	assert_int_equal(luks2_token_remove(v, 0, err, sizeof(err)), -ENOENT);
	assert_int_equal(luks2_token_remove(v, 40, err, sizeof(err)), -ENOENT);
	luks2_close(v);

	v = open_vol(f->vol);
	assert_int_equal(luks2_info(v, &vi), 0);
	assert_int_equal(vi.n_tokens, 1);
	assert_int_equal(vi.tokens[0], 1);
	luks2_close(v);
}

/* ---- header backup and restore ----------------------------------------- */

static void backup_corrupt_restore(void **state)
{
	struct fixture *f = *state;
	char backup[300], other[300], err[256] = "";
	struct luks2_vol *v = open_vol(f->vol);
	struct crypto_key *vk, *vk2;
	size_t n, n2;

	vk = unlock(v, 0, f->secret, &n);
	luks2_close(v);
	path_in(f, backup, sizeof(backup), "hdr.backup");
	assert_int_equal(luks2_header_backup(f->vol, backup, err, sizeof(err)),
			 0);
	assert_int_equal(luks2_header_backup(f->vol, backup, err, sizeof(err)),
			 -EEXIST);
	assert_contains(err, "already exists");

	/* Both metadata copies gone: no longer a volume at all. */
	zero_range(f->vol, 0, 32 * KIB);
	v = NULL;
	assert_int_equal(luks2_open(f->vol, &v, err, sizeof(err)), -EINVAL);
	assert_null(v);

	assert_int_equal(luks2_header_restore(f->vol, backup, err, sizeof(err)),
			 0);
	v = open_vol(f->vol);
	vk2 = unlock(v, 0, f->secret, &n2);
	assert_int_equal(n2, n);
	assert_true(same_key(vk, vk2));
	crypto_key_free(vk2);
	luks2_close(v);

	/* Never over another volume's header. */
	path_in(f, other, sizeof(other), "other.img");
	make_file(other, VOL_SIZE);
	format_vol(other, UUID_B, 0, f->secret, NULL);
	assert_int_equal(luks2_header_restore(other, backup, err, sizeof(err)),
			 -EINVAL);
	assert_contains(err, UUID_B);
	v = open_vol(other);
	luks2_close(v);
	/* ... even a damaged one. */
	zero_range(other, 0, 4096);
	assert_int_equal(luks2_header_restore(other, backup, err, sizeof(err)),
			 -EINVAL);
	assert_contains(err, UUID_B);

	/* Over whatever overwrote the header, restoring is the repair. */
	run("mkfs.ext4 -q -F '%s' >/dev/null 2>&1", f->vol);
	assert_int_equal(luks2_open(f->vol, &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(luks2_header_restore(f->vol, backup, err, sizeof(err)),
			 0);
	v = open_vol(f->vol);
	vk2 = unlock(v, 0, f->secret, &n2);
	assert_true(same_key(vk, vk2));
	crypto_key_free(vk2);
	luks2_close(v);
	crypto_key_free(vk);

	/* Nor from something that is not a backup. */
	unlink(backup);
	make_file(backup, 4096);
	assert_int_equal(luks2_header_restore(f->vol, backup, err, sizeof(err)),
			 -EINVAL);
	assert_contains(err, "not a LUKS2 header backup");
}

/* ---- damaged header copies ---------------------------------------------- */

/* Damage one copy; luks2_open, luks2_info and luks2_unlock must work and must
 * not write; the first change repairs the damaged copy. */
static void one_damaged_copy(struct fixture *f, uint64_t off)
{
	uint8_t h1[CRYPTO_SHA256_LEN], h2[CRYPTO_SHA256_LEN];
	struct luks2_vol *v = open_vol(f->vol);
	struct crypto_key *vk, *vk2;
	uint8_t magic[6], second[SECRET_LEN];
	char backup[300], err[256] = "";
	struct luks2_info vi;
	size_t n, n2;
	int id, fd, slot;

	/* Two keyslots: the in-memory copy must carry both. */
	assert_int_equal(crypto_random(second, sizeof(second)), 0);
	vk = unlock(v, 0, f->secret, &n);
	assert_int_equal(luks2_keyslot_add(v, vk, second, sizeof(second), &slot,
					   err, sizeof(err)),
			 0);
	luks2_close(v);
	zero_range(f->vol, off, 4096);
	file_hash(f->vol, h1);

	v = open_vol(f->vol);
	assert_int_equal(luks2_info(v, &vi), 0);
	assert_string_equal(vi.uuid, UUID_A);
	assert_int_equal(vi.n_keyslots, 2);
	assert_int_equal(vi.n_tokens, 1);
	assert_int_equal(vi.device_size, VOL_SIZE);
	assert_int_equal(vi.data_size, VOL_SIZE - 16 * MIB);
	vk2 = unlock(v, 0, f->secret, &n2);
	assert_true(same_key(vk, vk2));
	crypto_key_free(vk2);
	vk2 = unlock(v, slot, second, &n2);
	assert_true(same_key(vk, vk2));
	crypto_key_free(vk2);
	file_hash(f->vol, h2);
	assert_memory_equal(h1, h2, sizeof(h1));

	/* A backup is taken from the good copy, still without writing. */
	path_in(f, backup, sizeof(backup), "degraded.backup");
	assert_int_equal(luks2_header_backup(f->vol, backup, err, sizeof(err)),
			 0);
	file_hash(f->vol, h2);
	assert_memory_equal(h1, h2, sizeof(h1));

	/* A change writes, and repairs on the way. */
	assert_int_equal(luks2_token_add(v, TOKEN, 0, &id, err, sizeof(err)),
			 0);
	luks2_close(v);
	fd = open(f->vol, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, magic, sizeof(magic), (off_t)off), 6);
	close(fd);
	assert_memory_equal(magic, off ? "SKUL\xba\xbe" : "LUKS\xba\xbe", 6);
	v = open_vol(f->vol);
	assert_int_equal(luks2_info(v, &vi), 0);
	assert_int_equal(vi.n_tokens, 2);
	vk2 = unlock(v, 0, f->secret, &n2);
	assert_true(same_key(vk, vk2));
	crypto_key_free(vk);
	crypto_key_free(vk2);
	luks2_close(v);
}

static void damaged_primary_header(void **state)
{
	one_damaged_copy(*state, 0);
}

static void damaged_secondary_header(void **state)
{
	one_damaged_copy(*state, 16 * KIB);
}

/* A handle loaded from the good copy of a damaged header must not write
 * over a header someone rewrote since (same UUID): the allow-list and the
 * binding were checked on what it loaded, not on that. */
static void degraded_header_changed_before_a_write(void **state)
{
	struct fixture *f = *state;
	struct luks2_vol *v;
	char err[256] = "";
	int id;

	zero_range(f->vol, 16 * KIB, 4096);
	v = open_vol(f->vol);
	/* The other writer (it repairs the damaged copy on the way). */
	run("cryptsetup token import --token-id 5 '%s' <<'E'\n"
	    "{\"type\":\"other\",\"keyslots\":[]}\nE",
	    f->vol);
	assert_int_equal(luks2_token_add(v, TOKEN, 0, &id, err, sizeof(err)),
			 -ESTALE);
	assert_contains(err, "changed since it was opened");
	luks2_close(v);
}

static void damaged_json_in_both_copies(void **state)
{
	struct fixture *f = *state;
	struct luks2_vol *v = NULL;
	char err[256] = "";

	/* Binary headers intact, both JSON areas gone. */
	zero_range(f->vol, 4096, 12 * KIB);
	zero_range(f->vol, 16 * KIB + 4096, 12 * KIB);
	assert_int_equal(luks2_open(f->vol, &v, err, sizeof(err)), -EINVAL);
	assert_null(v);
	assert_contains(err, "damaged");
}

/* ---- what luks2_open refuses --------------------------------------------- */

static void open_refuses_non_luks2(void **state)
{
	struct fixture *f = *state;
	char path[300], keyfile[300], err[256] = "";
	struct luks2_vol *v = NULL;

	path_in(f, path, sizeof(path), "zero.img");
	make_file(path, VOL_SIZE);
	assert_int_equal(luks2_open(path, &v, err, sizeof(err)), -EINVAL);
	assert_null(v);
	assert_contains(err, "is not a LUKS2 volume");
	assert_int_equal(luks2_open("/nonexistent/vol", &v, err, sizeof(err)),
			 -ENOENT);
	assert_int_equal(luks2_open("/dev/null", &v, err, sizeof(err)),
			 -EINVAL);

	if (!have("cryptsetup")) {
		fprintf(stderr, "cryptsetup missing\n");
		fail();
	}
	path_in(f, path, sizeof(path), "luks1.img");
	path_in(f, keyfile, sizeof(keyfile), "luks1.key");
	make_file(path, VOL_SIZE);
	run("head -c 32 /dev/urandom > '%s' && cryptsetup luksFormat "
	    "--type luks1 --pbkdf-force-iterations 1000 --key-file '%s' "
	    "--batch-mode '%s' >/dev/null 2>&1",
	    keyfile, keyfile, path);
	assert_int_equal(luks2_open(path, &v, err, sizeof(err)), -EINVAL);
	assert_null(v);
	assert_contains(err, "is a LUKS1 volume; cmkfs needs LUKS2");

	/* A LUKS2 header on a file cut short: libcryptsetup's reason. */
	assert_int_equal(truncate(f->vol, (off_t)MIB), 0);
	assert_int_equal(luks2_open(f->vol, &v, err, sizeof(err)), -EINVAL);
	assert_null(v);
	assert_contains(err, "cannot use the LUKS2 header");
	assert_contains(err, "too small");
}

static void open_refuses_reencryption(void **state)
{
	struct fixture *f = *state;
	char keyfile[300], err[256] = "";
	struct luks2_vol *v = NULL;
	int fd;

	path_in(f, keyfile, sizeof(keyfile), "secret.key");
	fd = open(keyfile, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, f->secret, SECRET_LEN), SECRET_LEN);
	close(fd);
	run("cryptsetup reencrypt --init-only --key-file '%s' --pbkdf pbkdf2 "
	    "--pbkdf-force-iterations 1000 --batch-mode '%s' >/dev/null 2>&1",
	    keyfile, f->vol);
	assert_int_equal(luks2_open(f->vol, &v, err, sizeof(err)), -EBUSY);
	assert_null(v);
	assert_contains(err, "reencrypt");
}

/* ---- argument checks ---------------------------------------------------- */

/* luks2_format(path) must fail with want, and leave path as it was. */
static void format_fails(const char *path, const struct luks2_format_params *p,
			 const uint8_t *secret, size_t len, const char *token,
			 int want, const char *reason)
{
	uint8_t h1[CRYPTO_SHA256_LEN], h2[CRYPTO_SHA256_LEN];
	char err[256] = "";
	bool exists = access(path, F_OK) == 0;
	int r;

	if (exists)
		file_hash(path, h1);
	r = luks2_format(path, p, secret, len, token, err, sizeof(err));
	if (r != want)
		fprintf(stderr, "luks2_format: got %d (%s), want %d\n", r, err,
			want);
	assert_int_equal(r, want);
	assert_contains(err, reason);
	if (exists) {
		file_hash(path, h2);
		assert_memory_equal(h1, h2, sizeof(h1));
	}
}

static void format_checks_arguments(void **state)
{
	struct fixture *f = *state;
	const struct luks2_format_params good = {
		.cipher = "aes-xts-plain64",
		.uuid = UUID_B,
	};
	struct luks2_format_params p;
	char path[300], small[300];
	static const unsigned bad_sectors[] = { 256, 1000, 8192, 3 * 512 };

	path_in(f, path, sizeof(path), "new.img");
	make_file(path, VOL_SIZE);
	for (size_t i = 0; i < sizeof(bad_sectors) / sizeof(bad_sectors[0]);
	     i++) {
		p = good;
		p.sector_size = bad_sectors[i];
		format_fails(path, &p, f->secret, SECRET_LEN, NULL, -EINVAL,
			     "sector size");
	}
	p = good;
	p.uuid = NULL;
	format_fails(path, &p, f->secret, SECRET_LEN, NULL, -EINVAL, "UUID");
	p.uuid = "not-a-uuid";
	format_fails(path, &p, f->secret, SECRET_LEN, NULL, -EINVAL, "UUID");
	p.uuid = "6C0E2A4E-1F7B-4D2C-9A83-0B5D7E9F3A11";
	format_fails(path, &p, f->secret, SECRET_LEN, NULL, -EINVAL, "UUID");
	p.uuid = "6c0e2a4e1f7b-4d2c-9a83-0b5d7e9f3a11-";
	format_fails(path, &p, f->secret, SECRET_LEN, NULL, -EINVAL, "UUID");
	p = good;
	p.cipher = "aes-cbc-essiv:sha256";
	format_fails(path, &p, f->secret, SECRET_LEN, NULL, -EINVAL,
		     "unsupported cipher");
	p.cipher = NULL;
	format_fails(path, &p, f->secret, SECRET_LEN, NULL, -EINVAL,
		     "unsupported cipher");
	p = good;
	p.label = "0123456789012345678901234567890123456789012345678";
	format_fails(path, &p, f->secret, SECRET_LEN, NULL, -EINVAL, "label");
	format_fails(path, &good, NULL, 0, NULL, -EINVAL, "secret");
	format_fails(path, &good, f->secret, 0, NULL, -EINVAL, "secret");
	format_fails(path, &good, f->secret, SECRET_LEN, "{\"type\":1}",
		     -EINVAL, "type");
	format_fails(path, &good, f->secret, SECRET_LEN,
		     "{\"type\":\"aws-kms\",\"keyslots\":[\"0\"]}", -EINVAL,
		     "keyslots");

	/* Too small for the header plus a sector; not whole sectors. */
	path_in(f, small, sizeof(small), "small.img");
	make_file(small, 16 * MIB);
	format_fails(small, &good, f->secret, SECRET_LEN, NULL, -EINVAL,
		     "too small");
	assert_int_equal(file_size(small), 16 * MIB);
	make_file(small, 20 * MIB + 512);
	format_fails(small, &good, f->secret, SECRET_LEN, NULL, -EINVAL,
		     "multiple of the sector size");
	format_fails("/nonexistent/x.img", &good, f->secret, SECRET_LEN, NULL,
		     -ENOENT, "does not exist");
	assert_int_equal(fsd_probe_signature(path, NULL, 0), 0);
}

/* A failure after the header was written leaves no volume behind: here
 * libcryptsetup refuses the token (a reserved type without the members its
 * handler needs) after the header and keyslot are on disk. */
static void failed_format_leaves_no_header(void **state)
{
	struct fixture *f = *state;
	const struct luks2_format_params p = {
		.cipher = "aes-xts-plain64",
		.uuid = UUID_B,
	};
	char path[300], type[64], err[256] = "";
	struct luks2_vol *v = NULL;

	path_in(f, path, sizeof(path), "half.img");
	make_file(path, VOL_SIZE);
	assert_int_equal(luks2_format(path, &p, f->secret, SECRET_LEN,
				      "{\"type\":\"luks2-keyring\","
				      "\"keyslots\":[]}",
				      err, sizeof(err)),
			 -EINVAL);
	assert_contains(err, "token");
	assert_int_equal(fsd_probe_signature(path, type, sizeof(type)), 0);
	assert_int_equal(file_size(path), VOL_SIZE);
	assert_int_equal(luks2_open(path, &v, err, sizeof(err)), -EINVAL);

	/* The same over an existing volume: it is gone too. */
	assert_int_equal(luks2_format(f->vol, &p, f->secret, SECRET_LEN,
				      "{\"type\":\"luks2-keyring\","
				      "\"keyslots\":[]}",
				      err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(fsd_probe_signature(f->vol, type, sizeof(type)), 0);
}

/* cipher_null (benchmarks only, NOT ENCRYPTED).  Where libcryptsetup can
 * check the cipher through the kernel (AF_ALG or device-mapper) it formats
 * the volume itself; elsewhere luks2_format rewrites a fresh AES-XTS volume's
 * data segment.  Either way: a header libcryptsetup and cryptsetup load as
 * cipher_null-ecb, both copies intact, a 32-byte key in a real keyslot that
 * only the secret opens, the token assigned to it, and keyslots can still
 * be added. */
static void cipher_null_volume(void **state)
{
	struct fixture *f = *state;
	const struct luks2_format_params p = {
		.cipher = "cipher_null",
		.uuid = UUID_B,
	};
	uint8_t wrong[SECRET_LEN], second[SECRET_LEN];
	char path[300], err[256] = "";
	const char *json;
	struct luks2_info vi;
	struct luks2_vol *v;
	struct crypto_key *vk = NULL, *vk2;
	size_t n, n2;
	int r, slot = -1;

	path_in(f, path, sizeof(path), "null.img");
	make_file(path, VOL_SIZE);
	r = luks2_format(path, &p, f->secret, SECRET_LEN, TOKEN, err,
			 sizeof(err));
	if (r)
		fprintf(stderr, "luks2_format: %d: %s\n", r, err);
	assert_int_equal(r, 0);
	assert_int_equal(file_size(path), VOL_SIZE);
	/* The header allow-list takes it only when told it may be insecure,
	 * and says why. */
	v = NULL;
	assert_int_equal(luks2_open(path, &v, err, sizeof(err)), -EINVAL);
	assert_null(v);
	assert_contains(err, "\"encryption\" is \"cipher_null-ecb\"");
	assert_contains(err, "--insecure");
	v = open_vol_flags(path, LUKS2_OPEN_INSECURE);
	assert_int_equal(luks2_info(v, &vi), 0);
	assert_string_equal(vi.cipher, "cipher_null-ecb");
	assert_string_equal(vi.uuid, UUID_B);
	assert_int_equal(vi.key_bytes, 32);
	assert_int_equal(vi.sector_size, 4096);
	assert_int_equal(vi.data_offset, 16 * MIB);
	assert_int_equal(vi.data_size, VOL_SIZE - 16 * MIB);
	assert_int_equal(vi.n_keyslots, 1);
	assert_int_equal(vi.keyslots[0], 0);
	assert_int_equal(vi.n_tokens, 1);
	assert_int_equal(luks2_token_json(v, vi.tokens[0], &json), 0);
	assert_contains(json, "\"keyslots\":[\"0\"]");
	assert_contains(json, KEY_ARN);

	vk = unlock(v, 0, f->secret, &n);
	assert_int_equal(n, 32);
	memset(wrong, 0, sizeof(wrong));
	assert_int_equal(luks2_unlock(v, 0, wrong, sizeof(wrong), &vk2, err,
				      sizeof(err)),
			 -EPERM);
	/* A second keyslot for the same key (what rotation does). */
	memset(second, 0x5a, sizeof(second));
	assert_int_equal(luks2_keyslot_add(v, vk, second, sizeof(second), &slot,
					   err, sizeof(err)),
			 0);
	luks2_close(v);
	v = open_vol_flags(path, LUKS2_OPEN_INSECURE);
	vk2 = unlock(v, slot, second, &n2);
	assert_int_equal(n2, n);
	assert_true(same_key(vk2, vk));
	crypto_key_free(vk);
	crypto_key_free(vk2);
	assert_int_equal(luks2_info(v, &vi), 0);
	assert_string_equal(vi.cipher, "cipher_null-ecb");
	luks2_close(v);

	/* cryptsetup itself parses it. */
	if (!have("cryptsetup")) {
		fprintf(stderr, "cryptsetup missing\n");
		fail();
	}
	run("cryptsetup luksDump '%s' | grep -q 'cipher: *cipher_null-ecb'",
	    path);
	run("cryptsetup isLuks --type luks2 '%s'", path);
}

/* ---- libblkid ----------------------------------------------------------- */

static void probe_signatures(void **state)
{
	struct fixture *f = *state;
	char path[300], type[64];

	path_in(f, path, sizeof(path), "zeros.img");
	make_file(path, VOL_SIZE);
	assert_int_equal(fsd_probe_signature(path, type, sizeof(type)), 0);
	assert_string_equal(type, "");
	assert_int_equal(fsd_probe_signature(f->vol, type, sizeof(type)), 1);
	assert_string_equal(type, "crypto_LUKS");
	/* Still recognised with one damaged header copy. */
	zero_range(f->vol, 0, 4096);
	assert_int_equal(fsd_probe_signature(f->vol, type, sizeof(type)), 1);

	if (!have("mkfs.ext4")) {
		fprintf(stderr, "mkfs.ext4 missing\n");
		fail();
	}
	path_in(f, path, sizeof(path), "ext4.img");
	make_file(path, VOL_SIZE);
	run("mkfs.ext4 -q -F '%s' >/dev/null 2>&1", path);
	assert_int_equal(fsd_probe_signature(path, type, sizeof(type)), 1);
	assert_string_equal(type, "ext4");
	assert_int_equal(
		fsd_probe_signature("/nonexistent/x", type, sizeof(type)),
		-ENOENT);
}

/* ---- libcryptsetup stays quiet ------------------------------------------ */

static void library_prints_nothing(void **state)
{
	struct fixture *f = *state;
	const struct luks2_format_params p = {
		.cipher = "cipher_null",
		.uuid = UUID_B,
	};
	char out[300], path[300], err[256] = "";
	int saved1 = dup(1), saved2 = dup(2), fd, r1, r2;
	struct luks2_vol *v = NULL;
	struct crypto_key *vk = NULL;

	path_in(f, out, sizeof(out), "output");
	path_in(f, path, sizeof(path), "quiet.img");
	make_file(path, VOL_SIZE);
	fd = open(out, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(fd >= 0 && saved1 >= 0 && saved2 >= 0);
	fflush(stdout);
	fflush(stderr);
	dup2(fd, 1);
	dup2(fd, 2);
	/* Calls on which libcryptsetup logs errors (no device-mapper here,
	 * wrong passphrase, unreadable metadata). */
	(void)luks2_format(path, &p, f->secret, SECRET_LEN, NULL, err,
			   sizeof(err));
	r1 = luks2_open(f->vol, &v, err, sizeof(err));
	if (!r1)
		(void)luks2_unlock(v, 0, (const uint8_t *)"x", 1, &vk, err,
				   sizeof(err));
	luks2_close(v);
	v = NULL;
	zero_range(f->vol, 4096, 12 * KIB);
	zero_range(f->vol, 16 * KIB + 4096, 12 * KIB);
	r2 = luks2_open(f->vol, &v, err, sizeof(err));
	luks2_close(v);
	fflush(stdout);
	fflush(stderr);
	dup2(saved1, 1);
	dup2(saved2, 2);
	close(saved1);
	close(saved2);
	close(fd);
	assert_int_equal(r1, 0);
	assert_int_equal(r2, -EINVAL);
	if (file_size(out)) {
		run("echo 'printed:'; cat '%s'", out);
		fail();
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(format_then_info, setup,
						teardown),
		cmocka_unit_test_setup_teardown(format_512_with_label, setup,
						teardown),
		cmocka_unit_test_setup_teardown(token_json_names_the_keyslot,
						setup, teardown),
		cmocka_unit_test_setup_teardown(unlock_right_and_wrong, setup,
						teardown),
		cmocka_unit_test_setup_teardown(keyslot_add_then_destroy, setup,
						teardown),
		cmocka_unit_test_setup_teardown(token_add_and_remove, setup,
						teardown),
		cmocka_unit_test_setup_teardown(backup_corrupt_restore, setup,
						teardown),
		cmocka_unit_test_setup_teardown(damaged_primary_header, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			degraded_header_changed_before_a_write, setup,
			teardown),
		cmocka_unit_test_setup_teardown(damaged_secondary_header, setup,
						teardown),
		cmocka_unit_test_setup_teardown(damaged_json_in_both_copies,
						setup, teardown),
		cmocka_unit_test_setup_teardown(open_refuses_non_luks2, setup,
						teardown),
		cmocka_unit_test_setup_teardown(open_refuses_reencryption,
						setup, teardown),
		cmocka_unit_test_setup_teardown(format_checks_arguments, setup,
						teardown),
		cmocka_unit_test_setup_teardown(failed_format_leaves_no_header,
						setup, teardown),
		cmocka_unit_test_setup_teardown(cipher_null_volume, setup,
						teardown),
		cmocka_unit_test_setup_teardown(probe_signatures, setup,
						teardown),
		cmocka_unit_test_setup_teardown(library_prints_nothing, setup,
						teardown),
	};

	return cmocka_run_group_tests_name("luks2", tests, NULL, NULL);
}
