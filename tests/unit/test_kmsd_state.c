/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_kmsd_state.c — cmkfs-kmsd's key store: initialisation and the
 * permission checks, credentials, sealed key material, and ciphertext blobs
 * bound to their key, material version and encryption context.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "kmsd.h"

/* The next fail_dir_fsync fsyncs of a directory fail with EIO (this
 * definition takes the place of libc's for the whole program, the key
 * store's included). */
static int fail_dir_fsync;

int fsync(int fd)
{
	struct stat sb;

	if (fail_dir_fsync > 0 && fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		fail_dir_fsync--;
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_fsync, fd);
}

struct fixture {
	char dir[256];
	struct state *st;
	json_object *key;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *base = getenv("TEST_TMPDIR");
	char err[256];

	snprintf(f->dir, sizeof(f->dir), "%s/kmsd-state.XXXXXX",
		 base ? base : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(state_init(f->dir, "111111111111", "us-east-1",
				    "127.0.0.1:0", err, sizeof(err)),
			 0);
	assert_int_equal(state_open(f->dir, &f->st, err, sizeof(err)), 0);
	/* A key as CreateKey makes it: KeyId plus material. */
	f->key = json_object_new_object();
	json_object_object_add(
		f->key, "KeyId",
		json_object_new_string("0b5e3f62-7d0c-4b8e-9a51-8d8a4f2f1c11"));
	assert_int_equal(state_new_material(f->st, f->key), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[300];

	json_object_put(f->key);
	state_close(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static json_object *context(const char *k1, const char *v1, const char *k2,
			    const char *v2)
{
	json_object *c = json_object_new_object();

	if (k1)
		json_object_object_add(c, k1, json_object_new_string(v1));
	if (k2)
		json_object_object_add(c, k2, json_object_new_string(v2));
	return c;
}

static void init_refuses_existing_state(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";

	assert_int_equal(state_init(f->dir, "111111111111", "us-east-1",
				    "127.0.0.1:0", err, sizeof(err)),
			 -EEXIST);
	assert_non_null(strstr(err, "already holds"));
}

static void open_refuses_readable_files(void **state)
{
	struct fixture *f = *state;
	char path[300], err[256] = "";
	struct state *st;

	snprintf(path, sizeof(path), "%s/master.key", f->dir);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(state_open(f->dir, &st, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "master.key"));
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(state_open(f->dir, &st, err, sizeof(err)), 0);
	state_close(st);
}

static void blob_round_trip_and_context_binding(void **state)
{
	struct fixture *f = *state;
	json_object *ctx = context("cmkfs:volume", "v1", "b", "2");
	json_object *same = context("b", "2", "cmkfs:volume", "v1");
	json_object *other = context("cmkfs:volume", "v2", "b", "2");
	json_object *fewer = context("cmkfs:volume", "v1", NULL, NULL);
	uint8_t *blob, *pt;
	size_t len, n;
	char id[37];

	assert_int_equal(state_seal(f->st, f->key, ctx,
				    (const uint8_t *)"secret", 6, &blob, &len),
			 0);
	assert_int_equal(state_blob_key_id(blob, len, id), 0);
	assert_string_equal(id, "0b5e3f62-7d0c-4b8e-9a51-8d8a4f2f1c11");
	/* the plaintext is not in the blob */
	assert_null(memmem(blob, len, "secret", 6));
	/* member order does not matter, values and members do */
	assert_int_equal(
		state_open_blob(f->st, f->key, same, blob, len, &pt, &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(pt, "secret", 6);
	secmem_free(pt);
	assert_int_equal(
		state_open_blob(f->st, f->key, other, blob, len, &pt, &n),
		-EBADMSG);
	assert_int_equal(
		state_open_blob(f->st, f->key, fewer, blob, len, &pt, &n),
		-EBADMSG);
	assert_int_equal(
		state_open_blob(f->st, f->key, NULL, blob, len, &pt, &n),
		-EBADMSG);
	/* every byte matters */
	for (size_t i = 0; i < len; i++) {
		blob[i] ^= 0x20;
		assert_int_not_equal(
			state_open_blob(f->st, f->key, ctx, blob, len, &pt, &n),
			0);
		blob[i] ^= 0x20;
	}
	assert_int_equal(
		state_open_blob(f->st, f->key, ctx, blob, len - 1, &pt, &n),
		-EBADMSG);
	free(blob);
	json_object_put(ctx);
	json_object_put(same);
	json_object_put(other);
	json_object_put(fewer);
}

static void blob_of_another_key_is_refused(void **state)
{
	struct fixture *f = *state;
	json_object *k2 = json_object_new_object();
	uint8_t *blob, *pt;
	size_t len, n;

	json_object_object_add(
		k2, "KeyId",
		json_object_new_string("11111111-2222-4333-8444-555555555555"));
	assert_int_equal(state_new_material(f->st, k2), 0);
	assert_int_equal(state_seal(f->st, f->key, NULL, (const uint8_t *)"x",
				    1, &blob, &len),
			 0);
	assert_int_equal(state_open_blob(f->st, k2, NULL, blob, len, &pt, &n),
			 -EBADMSG);
	/* Same id, other material (another state's key, say): also refused. */
	json_object_object_add(
		k2, "KeyId",
		json_object_new_string("0b5e3f62-7d0c-4b8e-9a51-8d8a4f2f1c11"));
	assert_int_not_equal(
		state_open_blob(f->st, k2, NULL, blob, len, &pt, &n), 0);
	free(blob);
	json_object_put(k2);
}

static void old_blobs_open_after_rotation(void **state)
{
	struct fixture *f = *state;
	uint8_t *old, *fresh, *pt;
	size_t ol, fl, n;

	assert_int_equal(state_seal(f->st, f->key, NULL, (const uint8_t *)"old",
				    3, &old, &ol),
			 0);
	assert_int_equal(state_new_material(f->st, f->key), 0);
	assert_int_equal(state_seal(f->st, f->key, NULL, (const uint8_t *)"new",
				    3, &fresh, &fl),
			 0);
	/* material version is in the header: 1 then 2 */
	assert_int_equal(old[4 + 36 + 3], 1);
	assert_int_equal(fresh[4 + 36 + 3], 2);
	assert_int_equal(state_open_blob(f->st, f->key, NULL, old, ol, &pt, &n),
			 0);
	assert_memory_equal(pt, "old", 3);
	secmem_free(pt);
	assert_int_equal(
		state_open_blob(f->st, f->key, NULL, fresh, fl, &pt, &n), 0);
	assert_memory_equal(pt, "new", 3);
	secmem_free(pt);
	free(old);
	free(fresh);
}

static void state_survives_reopen(void **state)
{
	struct fixture *f = *state;
	json_object *copy = NULL;
	uint8_t *blob, *pt;
	struct state *st2;
	size_t len, n;
	char err[256];

	/* Store the key, commit, reopen: the blob still opens. */
	assert_int_equal(json_object_deep_copy(f->key, &copy, NULL), 0);
	state_lock(f->st);
	json_object_array_add(state_keys(f->st), copy);
	assert_int_equal(state_commit(f->st), 0);
	state_unlock(f->st);
	assert_int_equal(state_seal(f->st, f->key, NULL,
				    (const uint8_t *)"keep", 4, &blob, &len),
			 0);
	assert_int_equal(state_open(f->dir, &st2, err, sizeof(err)), 0);
	assert_int_equal(json_object_array_length(state_keys(st2)), 1);
	assert_int_equal(
		state_open_blob(st2,
				json_object_array_get_idx(state_keys(st2), 0),
				NULL, blob, len, &pt, &n),
		0);
	assert_memory_equal(pt, "keep", 4);
	secmem_free(pt);
	free(blob);
	state_close(st2);
}

/* The directory sync after the rename fails once: the write is done again
 * and succeeds.  It fails twice: the change is in effect (what a reopen
 * reads, and what memory holds) but the commit fails, its durability
 * unproven. */
static void failed_directory_sync_after_rename(void **state)
{
	struct fixture *f = *state;
	json_object *copy = NULL;
	struct principal p, q;
	struct state *st2;
	char err[256] = "";
	int r;

	assert_int_equal(json_object_deep_copy(f->key, &copy, NULL), 0);
	state_lock(f->st);
	json_object_array_add(state_keys(f->st), copy);
	fail_dir_fsync = 1;
	r = state_commit(f->st);
	assert_int_equal(fail_dir_fsync, 0);
	assert_int_equal(r, 0);
	assert_int_equal(json_object_array_length(state_keys(f->st)), 1);
	/* twice: refused, but in effect */
	copy = NULL;
	assert_int_equal(json_object_deep_copy(f->key, &copy, NULL), 0);
	json_object_array_add(state_keys(f->st), copy);
	fail_dir_fsync = 2;
	r = state_commit(f->st);
	fail_dir_fsync = 0;
	assert_int_equal(r, -EIO);
	assert_int_equal(json_object_array_length(state_keys(f->st)), 2);
	state_unlock(f->st);
	assert_int_equal(state_open(f->dir, &st2, err, sizeof(err)), 0);
	assert_int_equal(json_object_array_length(state_keys(st2)), 2);
	state_close(st2);
	/* a later commit goes on as usual */
	state_lock(f->st);
	assert_int_equal(state_commit(f->st), 0);
	state_unlock(f->st);
	/* the same for credentials: once is retried */
	fail_dir_fsync = 1;
	r = state_add_principal(f->dir, "arn:aws:iam::222222222222:role/db",
				false, 0, &p, err, sizeof(err));
	fail_dir_fsync = 0;
	assert_int_equal(r, 0);
	state_lock(f->st);
	assert_true(state_find_principal(f->st, p.access_key_id, &q));
	state_unlock(f->st);
}

static void principals_add_find_remove(void **state)
{
	struct fixture *f = *state;
	struct principal p, q;
	char err[256] = "";

	assert_int_equal(
		state_add_principal(f->dir, "arn:aws:iam::222222222222:role/db",
				    true, 4102444800, &p, err, sizeof(err)),
		0);
	assert_memory_equal(p.access_key_id, "ASIA", 4);
	assert_int_equal(strlen(p.access_key_id), 20);
	assert_int_equal(strlen(p.secret), 40);
	assert_true(strlen(p.session_token) > 100);
	assert_string_equal(p.account, "222222222222");
	state_lock(f->st);
	assert_true(state_find_principal(f->st, p.access_key_id, &q));
	state_unlock(f->st);
	assert_string_equal(q.arn, "arn:aws:iam::222222222222:role/db");
	assert_string_equal(q.secret, p.secret);
	assert_int_equal(q.expires, 4102444800);
	assert_int_equal(state_remove_principal(f->dir, p.access_key_id, err,
						sizeof(err)),
			 0);
	state_lock(f->st);
	assert_false(state_find_principal(f->st, p.access_key_id, &q));
	state_unlock(f->st);
	assert_int_equal(state_add_principal(f->dir, "arn:aws:iam::2222:root",
					     false, 0, &p, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(
		state_add_principal(f->dir, "arn:aws:iam::222222222222:group/x",
				    false, 0, &p, err, sizeof(err)),
		-EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(init_refuses_existing_state,
						setup, teardown),
		cmocka_unit_test_setup_teardown(open_refuses_readable_files,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			blob_round_trip_and_context_binding, setup, teardown),
		cmocka_unit_test_setup_teardown(blob_of_another_key_is_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(old_blobs_open_after_rotation,
						setup, teardown),
		cmocka_unit_test_setup_teardown(state_survives_reopen, setup,
						teardown),
		cmocka_unit_test_setup_teardown(principals_add_find_remove,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			failed_directory_sync_after_rename, setup, teardown),
	};

	return cmocka_run_group_tests_name("kmsd-state", tests, NULL, NULL);
}
