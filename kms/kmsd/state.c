/* SPDX-License-Identifier: Apache-2.0 */
/*
 * state.c — cmkfs-kmsd's durable state: the key store document, the master
 * key that seals key material at rest, ciphertext blobs, and the
 * credentials file.
 *
 * Files in the state directory (all 0600, the directory 0700):
 *   master.key        32 random bytes: seals every key's material
 *   state.json        keys, aliases, grants (see kmsd.h)
 *   credentials.json  access keys -> principals
 * Every write goes to a temporary file that is fsynced and renamed over the
 * old one, and the directory is fsynced, so a crash at any moment leaves the
 * old or the new document, never a mix.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "util.h"
#include "kmsd.h"

#define STATE_FORMAT	1
#define MAX_STATE_BYTES (64u << 20)
#define MATERIAL_LEN	32

/* Blob layout: magic | key id | material version | IV | ciphertext | tag. */
#define BLOB_MAGIC   "ckb1"
#define BLOB_ID_LEN  36
#define BLOB_HDR_LEN (4 + BLOB_ID_LEN + 4 + CRYPTO_AEAD_IV_LEN)

struct state {
	char *dir;
	pthread_mutex_t lock;
	json_object *root;
	uint8_t *master; /* secure memory, CRYPTO_AEAD_KEY_LEN */
	/* credentials.json as last read, and how to tell it changed */
	json_object *creds;
	struct stat creds_st;
	/* A write failed and the document on disk could not be read back:
	 * memory may hold what clients were told failed.  Refuse changes. */
	bool broken;
};

/* ---- files ----------------------------------------------------------------
 */

static char *path_join(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Replace dir/name with data once: temp file, fsync, rename, fsync dir.
 * 0; -errno with dir/name untouched; or, with *renamed set, -errno when
 * only the directory sync failed. */
static int write_once(const char *dir, const char *tmp, const char *dst,
		      const void *data, size_t len, bool *renamed)
{
	int fd, dfd, r;

	*renamed = false;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	r = write_all(fd, data, len);
	if (!r && fsync(fd))
		r = -errno;
	if (close(fd) && !r)
		r = -errno;
	if (!r && rename(tmp, dst))
		r = -errno;
	if (r) {
		unlink(tmp);
		return r;
	}
	*renamed = true;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd))
		r = -errno;
	if (dfd >= 0)
		close(dfd);
	return r;
}

/*
 * Replace dir/name with data, durably.  When the directory sync after the
 * rename fails, the new document is in effect (this process and any other
 * read it from now on) but may not survive a crash or power loss.  The
 * whole write is done once more (a second fsync of the same directory
 * could report success for what the first lost: Linux reports a writeback
 * error once); if its directory sync fails too, the write fails: the
 * client is told KMSInternalException, and the store read back holds the
 * change.  Acknowledging instead would be worse: a CreateKey or a rotation
 * acknowledged, whose key material a crash then takes back, loses every
 * volume wrapped under it, while the error only makes a client retry (an
 * extra key, an idempotent revocation).  Both failures are said on stderr.
 */
static int write_atomic(const char *dir, const char *name, const void *data,
			size_t len)
{
	char *tmp = NULL, *dst = NULL;
	bool renamed = false;
	int r = -ENOMEM;

	if (asprintf(&tmp, "%s/.%s.tmp", dir, name) < 0) {
		tmp = NULL;
		goto out;
	}
	dst = path_join(dir, name);
	if (!dst)
		goto out;
	for (int attempt = 1; attempt <= 2; attempt++) {
		r = write_once(dir, tmp, dst, data, len, &renamed);
		if (!r || !renamed)
			break;
		fprintf(stderr,
			"cmkfs-kmsd: error: %s/%s was replaced, but syncing the "
			"directory failed (%s): %s\n",
			dir, name, strerror(-r),
			attempt == 1 ? "writing it once more"
				     : "the change is in effect but may not "
				       "survive a crash; the request fails");
	}
out:
	free(tmp);
	free(dst);
	return r;
}

/* Read a whole file of at most max bytes (NUL-terminated) into *out. */
static int read_file(const char *path, size_t max, char **out, size_t *len)
{
	struct stat sb;
	char *buf = NULL;
	size_t got = 0;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb)) {
		r = -errno;
		goto out;
	}
	if ((size_t)sb.st_size > max) {
		r = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			goto out;
		}
		got += (size_t)n;
	}
	buf[got] = 0;
	*out = buf;
	buf = NULL;
	if (len)
		*len = got;
out:
	free(buf);
	close(fd);
	return r;
}

static int write_json(const char *dir, const char *name, json_object *o)
{
	const char *s = json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);

	return s ? write_atomic(dir, name, s, strlen(s)) : -ENOMEM;
}

static int read_json(const char *dir, const char *name, json_object **out,
		     char *err, size_t errlen)
{
	char *path = path_join(dir, name), *text = NULL;
	int r;

	if (!path)
		return -ENOMEM;
	r = read_file(path, MAX_STATE_BYTES, &text, NULL);
	if (r) {
		kms_seterr(err, errlen, "cannot read %s: %s", path,
			   strerror(-r));
		goto out;
	}
	*out = json_tokener_parse(text);
	if (!*out || !json_object_is_type(*out, json_type_object)) {
		json_object_put(*out);
		*out = NULL;
		kms_seterr(err, errlen, "%s is not a valid state file", path);
		r = -EINVAL;
	}
out:
	free(text);
	free(path);
	return r;
}

/* Refuse anything others could read: the state holds secrets. */
static int check_private(const char *path, bool is_dir, char *err,
			 size_t errlen)
{
	struct stat sb;

	if (stat(path, &sb)) {
		int e = errno;

		kms_seterr(err, errlen, "cannot access %s: %s", path,
			   strerror(e));
		return -e;
	}
	if (sb.st_uid != geteuid()) {
		kms_seterr(err, errlen,
			   "%s belongs to uid %u, not to us (uid %u)", path,
			   (unsigned)sb.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (sb.st_mode & 077) {
		kms_seterr(
			err, errlen,
			"%s is accessible to group or others (mode %03o); it "
			"holds secrets: run chmod %s %s",
			path, (unsigned)(sb.st_mode & 0777),
			is_dir ? "700" : "600", path);
		return -EPERM;
	}
	return 0;
}

/* ---- init / open ----------------------------------------------------------
 */

static int load_master(struct state *st, char *err, size_t errlen)
{
	char *path = path_join(st->dir, "master.key");
	int fd = -1, r = -ENOMEM;
	ssize_t n;

	if (!path)
		return -ENOMEM;
	st->master = secmem_alloc(CRYPTO_AEAD_KEY_LEN);
	if (!st->master)
		goto out;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		kms_seterr(err, errlen, "cannot open %s: %s", path,
			   strerror(-r));
		goto out;
	}
	n = read(fd, st->master, CRYPTO_AEAD_KEY_LEN);
	if (n != CRYPTO_AEAD_KEY_LEN) {
		r = -EINVAL;
		kms_seterr(err, errlen, "%s must hold exactly %d bytes", path,
			   CRYPTO_AEAD_KEY_LEN);
		goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return r;
}

int state_init(const char *dir, const char *account, const char *region,
	       const char *listen, char *err, size_t errlen)
{
	uint8_t key[CRYPTO_AEAD_KEY_LEN];
	json_object *root = NULL, *creds = NULL;
	char *path = NULL;
	int fd = -1, r;

	/* A directory we create is made 0700 whatever the umask; an existing
	 * one is used as it is (never chmod'ed: it could be anyone's), and
	 * state_open refuses it if others can read it. */
	if (mkdir(dir, 0700) == 0) {
		if (chmod(dir, 0700)) {
			r = -errno;
			kms_seterr(err, errlen, "cannot chmod %s: %s", dir,
				   strerror(-r));
			return r;
		}
	} else if (errno != EEXIST) {
		r = -errno;
		kms_seterr(err, errlen, "cannot create %s: %s", dir,
			   strerror(-r));
		return r;
	}
	path = path_join(dir, "master.key");
	if (!path)
		return -ENOMEM;
	/* O_EXCL: never overwrite the key that seals existing material. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		if (r == -EEXIST)
			kms_seterr(
				err, errlen,
				"%s already holds a cmkfs-kmsd state; remove the "
				"directory to start over",
				dir);
		else
			kms_seterr(err, errlen, "cannot create %s: %s", path,
				   strerror(-r));
		goto out;
	}
	r = crypto_random(key, sizeof(key));
	if (!r)
		r = write_all(fd, key, sizeof(key));
	secmem_wipe(key, sizeof(key));
	if (!r && fsync(fd))
		r = -errno;
	if (r) {
		kms_seterr(err, errlen, "cannot write %s: %s", path,
			   strerror(-r));
		goto out;
	}

	root = json_object_new_object();
	json_object_object_add(root, "format",
			       json_object_new_int(STATE_FORMAT));
	json_object_object_add(root, "account",
			       json_object_new_string(account));
	json_object_object_add(root, "region", json_object_new_string(region));
	json_object_object_add(root, "listen", json_object_new_string(listen));
	json_object_object_add(root, "keys", json_object_new_array());
	json_object_object_add(root, "aliases", json_object_new_array());
	json_object_object_add(root, "grants", json_object_new_array());
	creds = json_object_new_object();
	json_object_object_add(creds, "principals", json_object_new_array());
	r = write_json(dir, "state.json", root);
	if (!r)
		r = write_json(dir, "credentials.json", creds);
	if (r)
		kms_seterr(err, errlen, "cannot write the state in %s: %s", dir,
			   strerror(-r));
out:
	if (fd >= 0)
		close(fd);
	if (r && r != -EEXIST)
		unlink(path);
	json_object_put(root);
	json_object_put(creds);
	free(path);
	return r;
}

void state_close(struct state *st)
{
	if (!st)
		return;
	json_object_put(st->root);
	json_object_put(st->creds);
	secmem_free(st->master);
	pthread_mutex_destroy(&st->lock);
	free(st->dir);
	free(st);
}

int state_open(const char *dir, struct state **out, char *err, size_t errlen)
{
	static const char *const files[] = { "master.key", "state.json",
					     "credentials.json" };
	struct state *st;
	int r;

	*out = NULL;
	r = check_private(dir, true, err, errlen);
	if (r)
		return r;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *p = path_join(dir, files[i]);

		if (!p)
			return -ENOMEM;
		r = check_private(p, false, err, errlen);
		free(p);
		if (r)
			return r;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->lock, NULL);
	st->dir = strdup(dir);
	if (!st->dir) {
		r = -ENOMEM;
		goto fail;
	}
	r = load_master(st, err, errlen);
	if (!r)
		r = read_json(dir, "state.json", &st->root, err, errlen);
	if (r)
		goto fail;
	if (!json_object_is_type(state_keys(st), json_type_array) ||
	    !json_object_is_type(state_aliases(st), json_type_array) ||
	    !json_object_is_type(state_grants(st), json_type_array) ||
	    !state_default_account(st) || !state_default_region(st)) {
		kms_seterr(err, errlen, "%s/state.json is damaged", dir);
		r = -EINVAL;
		goto fail;
	}
	*out = st;
	return 0;
fail:
	state_close(st);
	return r;
}

void state_lock(struct state *st)
{
	pthread_mutex_lock(&st->lock);
}

void state_unlock(struct state *st)
{
	pthread_mutex_unlock(&st->lock);
}

int state_commit(struct state *st)
{
	json_object *old = NULL;
	int r;

	if (st->broken)
		return -EIO;
	r = write_json(st->dir, "state.json", st->root);
	if (r && read_json(st->dir, "state.json", &old, NULL, 0) == 0) {
		json_object_put(st->root);
		st->root = old;
	} else if (r) {
		st->broken = true;
	}
	return r;
}

int state_rollback(struct state *st)
{
	json_object *disk = NULL;
	int r = read_json(st->dir, "state.json", &disk, NULL, 0);

	if (r) {
		st->broken = true;
		return r;
	}
	json_object_put(st->root);
	st->root = disk;
	return 0;
}

/* ---- JSON members (kmsd.h) ----------------------------------------------- */

json_object *kmsd_json_string(const char *s)
{
	return json_object_new_string(s ? s : "");
}

json_object *kmsd_member(json_object *o, const char *name)
{
	json_object *v = NULL;

	if (o)
		json_object_object_get_ex(o, name, &v);
	return v;
}

const char *kmsd_member_string(json_object *o, const char *name)
{
	json_object *v = kmsd_member(o, name);

	return json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

/* ---- the document's parts -------------------------------------------------
 */

json_object *state_keys(struct state *st)
{
	return kmsd_member(st->root, "keys");
}

json_object *state_aliases(struct state *st)
{
	return kmsd_member(st->root, "aliases");
}

json_object *state_grants(struct state *st)
{
	return kmsd_member(st->root, "grants");
}

const char *state_default_region(struct state *st)
{
	return kmsd_member_string(st->root, "region");
}

const char *state_default_account(struct state *st)
{
	return kmsd_member_string(st->root, "account");
}

const char *state_listen(struct state *st)
{
	const char *l = kmsd_member_string(st->root, "listen");

	return l ? l : KMSD_DEFAULT_LISTEN;
}

/* ---- credentials ----------------------------------------------------------
 */

static bool principal_from_json(json_object *o, struct principal *p)
{
	const char *id = kmsd_member_string(o, "access_key_id");
	const char *secret = kmsd_member_string(o, "secret_access_key");
	const char *arn = kmsd_member_string(o, "arn");
	const char *account = kmsd_member_string(o, "account");
	const char *token = kmsd_member_string(o, "session_token");
	json_object *exp = kmsd_member(o, "expires");

	if (!id || !secret || !arn || !account ||
	    strlen(id) >= sizeof(p->access_key_id) ||
	    strlen(secret) >= sizeof(p->secret) ||
	    strlen(arn) >= sizeof(p->arn) ||
	    strlen(account) >= sizeof(p->account) ||
	    (token && strlen(token) >= sizeof(p->session_token)))
		return false;
	memset(p, 0, sizeof(*p));
	snprintf(p->access_key_id, sizeof(p->access_key_id), "%s", id);
	snprintf(p->secret, sizeof(p->secret), "%s", secret);
	snprintf(p->arn, sizeof(p->arn), "%s", arn);
	snprintf(p->account, sizeof(p->account), "%s", account);
	if (token)
		snprintf(p->session_token, sizeof(p->session_token), "%s",
			 token);
	p->expires = exp ? json_object_get_int64(exp) : 0;
	return true;
}

/* Re-read credentials.json when it changed (inode, size or mtime). */
static void refresh_creds(struct state *st)
{
	char *path = path_join(st->dir, "credentials.json");
	json_object *fresh = NULL;
	struct stat sb;

	if (!path)
		return;
	if (stat(path, &sb) == 0 &&
	    (!st->creds || sb.st_ino != st->creds_st.st_ino ||
	     sb.st_size != st->creds_st.st_size ||
	     sb.st_mtim.tv_sec != st->creds_st.st_mtim.tv_sec ||
	     sb.st_mtim.tv_nsec != st->creds_st.st_mtim.tv_nsec) &&
	    (sb.st_mode & 077) == 0 &&
	    read_json(st->dir, "credentials.json", &fresh, NULL, 0) == 0) {
		json_object_put(st->creds);
		st->creds = fresh;
		st->creds_st = sb;
	}
	free(path);
}

bool state_find_principal(struct state *st, const char *access_key_id,
			  struct principal *out)
{
	json_object *list;

	refresh_creds(st);
	list = kmsd_member(st->creds, "principals");
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *o = json_object_array_get_idx(list, i);
		const char *id = kmsd_member_string(o, "access_key_id");

		if (id && !strcmp(id, access_key_id))
			return principal_from_json(o, out);
	}
	return false;
}

/* "arn:aws:iam::<12 digits>:root|user/...|role/..." -> account. */
static bool parse_principal_arn(const char *arn, char account[13])
{
	const char *p = arn + strlen("arn:aws:iam::"), *rest;

	if (strncmp(arn, "arn:aws:iam::", 13) || strlen(arn) > 255)
		return false;
	for (int i = 0; i < 12; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	if (p[12] != ':')
		return false;
	rest = p + 13;
	if (strcmp(rest, "root") && strncmp(rest, "role/", 5) &&
	    strncmp(rest, "user/", 5))
		return false;
	if (!strcmp(rest, "role/") || !strcmp(rest, "user/"))
		return false;
	for (const char *c = rest; *c; c++)
		if (*c <= ' ' || *c == '"' || *c == '\\' || *c == 0x7f)
			return false;
	memcpy(account, p, 12);
	account[12] = 0;
	return true;
}

/* Random characters from alphabet (of size n, a power of two <= 64). */
static int random_chars(char *out, size_t len, const char *alphabet, unsigned n)
{
	uint8_t buf[128];
	int r;

	if (len > sizeof(buf))
		return -EINVAL;
	r = crypto_random(buf, len);
	if (r)
		return r;
	for (size_t i = 0; i < len; i++)
		out[i] = alphabet[buf[i] % n];
	out[len] = 0;
	secmem_wipe(buf, sizeof(buf));
	return 0;
}

int state_add_principal(const char *dir, const char *arn, bool session,
			int64_t expires, struct principal *out, char *err,
			size_t errlen)
{
	static const char upper32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	json_object *creds = NULL, *list, *o;
	struct principal p = { 0 };
	int r;

	if (!parse_principal_arn(arn, p.account)) {
		kms_seterr(
			err, errlen,
			"'%s' is not an IAM principal ARN "
			"(arn:aws:iam::<12-digit account>:root, :role/NAME or "
			":user/NAME)",
			arn);
		return -EINVAL;
	}
	r = check_private(dir, true, err, errlen);
	if (r)
		return r;
	r = read_json(dir, "credentials.json", &creds, err, errlen);
	if (r)
		return r;
	list = kmsd_member(creds, "principals");
	if (!json_object_is_type(list, json_type_array)) {
		kms_seterr(err, errlen, "%s/credentials.json is damaged", dir);
		r = -EINVAL;
		goto out;
	}
	/* AKIA... for long-term keys, ASIA... for temporary ones, as AWS. */
	memcpy(p.access_key_id, session ? "ASIA" : "AKIA", 4);
	r = random_chars(p.access_key_id + 4, 16, upper32, 32);
	if (!r)
		r = random_chars(p.secret, 40, b64, 64);
	if (!r && session)
		r = random_chars(p.session_token, 120, b64, 64);
	if (r)
		goto out;
	snprintf(p.arn, sizeof(p.arn), "%s", arn);
	p.expires = expires;

	o = json_object_new_object();
	json_object_object_add(o, "access_key_id",
			       json_object_new_string(p.access_key_id));
	json_object_object_add(o, "secret_access_key",
			       json_object_new_string(p.secret));
	json_object_object_add(o, "arn", json_object_new_string(p.arn));
	json_object_object_add(o, "account", json_object_new_string(p.account));
	if (session)
		json_object_object_add(o, "session_token",
				       json_object_new_string(p.session_token));
	if (expires)
		json_object_object_add(o, "expires",
				       json_object_new_int64(expires));
	json_object_array_add(list, o);
	r = write_json(dir, "credentials.json", creds);
	if (r) {
		kms_seterr(err, errlen, "cannot write %s/credentials.json: %s",
			   dir, strerror(-r));
		goto out;
	}
	*out = p;
out:
	secmem_wipe(&p, sizeof(p));
	json_object_put(creds);
	return r;
}

int state_remove_principal(const char *dir, const char *id_or_arn, char *err,
			   size_t errlen)
{
	json_object *creds = NULL, *list;
	size_t removed = 0;
	int r;

	r = read_json(dir, "credentials.json", &creds, err, errlen);
	if (r)
		return r;
	list = kmsd_member(creds, "principals");
	for (size_t i = json_object_array_length(list); i-- > 0;) {
		json_object *o = json_object_array_get_idx(list, i);
		const char *id = kmsd_member_string(o, "access_key_id");
		const char *arn = kmsd_member_string(o, "arn");

		if ((id && !strcmp(id, id_or_arn)) ||
		    (arn && !strcmp(arn, id_or_arn))) {
			json_object_array_del_idx(list, i, 1);
			removed++;
		}
	}
	if (!removed) {
		kms_seterr(err, errlen, "no access key or principal '%s' in %s",
			   id_or_arn, dir);
		r = -ENOENT;
	} else {
		r = write_json(dir, "credentials.json", creds);
		if (r)
			kms_seterr(err, errlen, "cannot write credentials: %s",
				   strerror(-r));
	}
	json_object_put(creds);
	return r;
}

int state_list_principals(const char *dir,
			  void (*fn)(const struct principal *p, void *arg),
			  void *arg, char *err, size_t errlen)
{
	json_object *creds = NULL, *list;
	struct principal p;
	int r;

	r = read_json(dir, "credentials.json", &creds, err, errlen);
	if (r)
		return r;
	list = kmsd_member(creds, "principals");
	for (size_t i = 0; i < json_object_array_length(list); i++)
		if (principal_from_json(json_object_array_get_idx(list, i), &p))
			fn(&p, arg);
	secmem_wipe(&p, sizeof(p));
	json_object_put(creds);
	return 0;
}

/* ---- key material and blobs ------------------------------------------- */

static const char *key_id_of(json_object *k)
{
	return kmsd_member_string(k, "KeyId");
}

/* AAD for sealed material: binds it to its key and version. */
static int material_aad(json_object *k, int64_t version, char *aad, size_t len)
{
	int n = snprintf(aad, len, "%s:%lld", key_id_of(k), (long long)version);

	return n > 0 && (size_t)n < len ? n : -EINVAL;
}

int state_new_material(struct state *st, json_object *k)
{
	uint8_t iv[CRYPTO_AEAD_IV_LEN],
		sealed[CRYPTO_AEAD_IV_LEN + MATERIAL_LEN + CRYPTO_AEAD_TAG_LEN];
	char b64[B64_ENCODED_SIZE(sizeof(sealed))], aad[80];
	json_object *mats = kmsd_member(k, "_materials"), *m;
	uint8_t *material = secmem_alloc(MATERIAL_LEN);
	int64_t version = 1;
	int r, n;

	if (!material)
		return -ENOMEM;
	if (!mats) {
		mats = json_object_new_array();
		json_object_object_add(k, "_materials", mats);
	}
	version = (int64_t)json_object_array_length(mats) + 1;
	n = material_aad(k, version, aad, sizeof(aad));
	r = n < 0 ? n : crypto_random(material, MATERIAL_LEN);
	if (!r)
		r = crypto_random(iv, sizeof(iv));
	if (!r)
		r = crypto_aead_seal(st->master, iv, aad, (size_t)n, material,
				     MATERIAL_LEN, sealed + sizeof(iv));
	secmem_free(material);
	if (r)
		return r;
	memcpy(sealed, iv, sizeof(iv));
	b64_encode(sealed, sizeof(sealed), b64);
	m = json_object_new_object();
	json_object_object_add(m, "version", json_object_new_int64(version));
	json_object_object_add(m, "sealed", json_object_new_string(b64));
	json_object_object_add(m, "created",
			       json_object_new_int64((int64_t)time(NULL)));
	json_object_array_add(mats, m);
	json_object_object_add(k, "_current", json_object_new_int64(version));
	return 0;
}

/* Unseal material `version` of k into secure memory. */
static int unseal_material(struct state *st, json_object *k, int64_t version,
			   uint8_t **out)
{
	uint8_t sealed[CRYPTO_AEAD_IV_LEN + MATERIAL_LEN + CRYPTO_AEAD_TAG_LEN];
	json_object *mats = kmsd_member(k, "_materials"), *m;
	const char *b64;
	char aad[80];
	long n;
	int len, r;

	if (version < 1 || (size_t)version > json_object_array_length(mats))
		return -EBADMSG;
	m = json_object_array_get_idx(mats, (size_t)version - 1);
	b64 = kmsd_member_string(m, "sealed");
	if (!b64 || strlen(b64) != B64_ENCODED_SIZE(sizeof(sealed)) - 1)
		return -EIO;
	n = b64_decode(b64, strlen(b64), sealed);
	if (n != (long)sizeof(sealed))
		return -EIO;
	len = material_aad(k, version, aad, sizeof(aad));
	if (len < 0)
		return len;
	*out = secmem_alloc(MATERIAL_LEN);
	if (!*out)
		return -ENOMEM;
	r = crypto_aead_open(st->master, sealed, aad, (size_t)len,
			     sealed + CRYPTO_AEAD_IV_LEN,
			     sizeof(sealed) - CRYPTO_AEAD_IV_LEN, *out);
	if (r) {
		/* The master key does not open our own material: the state
		 * was tampered with or the wrong master.key is in place. */
		secmem_free(*out);
		*out = NULL;
		return -EIO;
	}
	return 0;
}

/* Canonical encoding of an encryption context for the AAD: pairs sorted by
 * key, each as 4-byte big-endian length + bytes, key then value. */
static int context_bytes(json_object *ctx, uint8_t **out, size_t *len)
{
	struct json_object_iterator it, end;
	const char **keys = NULL;
	size_t n = 0, total = 0, o = 0;
	uint8_t *buf;

	*out = NULL;
	*len = 0;
	if (!ctx)
		return 0;
	n = (size_t)json_object_object_length(ctx);
	if (!n)
		return 0;
	keys = calloc(n, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	n = 0;
	it = json_object_iter_begin(ctx);
	end = json_object_iter_end(ctx);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *k = json_object_iter_peek_name(&it);
		size_t j = n++;

		/* insertion sort: contexts are small */
		while (j > 0 && strcmp(keys[j - 1], k) > 0) {
			keys[j] = keys[j - 1];
			j--;
		}
		keys[j] = k;
		total += 8 + strlen(k) +
			 strlen(json_object_get_string(kmsd_member(ctx, k)));
	}
	buf = malloc(total ? total : 1);
	if (!buf) {
		free(keys);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const char *parts[2] = { keys[i],
					 json_object_get_string(
						 kmsd_member(ctx, keys[i])) };

		for (int p = 0; p < 2; p++) {
			uint32_t l = (uint32_t)strlen(parts[p]);

			buf[o++] = (uint8_t)(l >> 24);
			buf[o++] = (uint8_t)(l >> 16);
			buf[o++] = (uint8_t)(l >> 8);
			buf[o++] = (uint8_t)l;
			memcpy(buf + o, parts[p], l);
			o += l;
		}
	}
	free(keys);
	*out = buf;
	*len = o;
	return 0;
}

/* AAD = blob header || canonical context. */
static int blob_aad(const uint8_t *hdr, json_object *ctx, uint8_t **aad,
		    size_t *len)
{
	uint8_t *cb;
	size_t cl;
	int r = context_bytes(ctx, &cb, &cl);

	if (r)
		return r;
	*aad = malloc(BLOB_HDR_LEN + cl);
	if (!*aad) {
		free(cb);
		return -ENOMEM;
	}
	memcpy(*aad, hdr, BLOB_HDR_LEN);
	if (cl)
		memcpy(*aad + BLOB_HDR_LEN, cb, cl);
	*len = BLOB_HDR_LEN + cl;
	free(cb);
	return 0;
}

int state_seal(struct state *st, json_object *k, json_object *ctx,
	       const uint8_t *pt, size_t len, uint8_t **blob, size_t *blob_len)
{
	const char *id = key_id_of(k);
	int64_t version = json_object_get_int64(kmsd_member(k, "_current"));
	uint8_t *material = NULL, *out = NULL, *aad = NULL;
	size_t aad_len;
	int r;

	if (!id || strlen(id) != BLOB_ID_LEN)
		return -EINVAL;
	r = unseal_material(st, k, version, &material);
	if (r)
		return r;
	r = -ENOMEM;
	out = malloc(BLOB_HDR_LEN + len + CRYPTO_AEAD_TAG_LEN);
	if (!out)
		goto out;
	memcpy(out, BLOB_MAGIC, 4);
	memcpy(out + 4, id, BLOB_ID_LEN);
	for (int i = 0; i < 4; i++)
		out[4 + BLOB_ID_LEN + i] = (uint8_t)(version >> (24 - 8 * i));
	r = crypto_random(out + 4 + BLOB_ID_LEN + 4, CRYPTO_AEAD_IV_LEN);
	if (!r)
		r = blob_aad(out, ctx, &aad, &aad_len);
	if (!r)
		r = crypto_aead_seal(material, out + 4 + BLOB_ID_LEN + 4, aad,
				     aad_len, pt, len, out + BLOB_HDR_LEN);
	if (r)
		goto out;
	*blob = out;
	*blob_len = BLOB_HDR_LEN + len + CRYPTO_AEAD_TAG_LEN;
	out = NULL;
out:
	free(out);
	free(aad);
	secmem_free(material);
	return r;
}

int state_blob_key_id(const uint8_t *blob, size_t len, char id[37])
{
	if (len < BLOB_HDR_LEN + CRYPTO_AEAD_TAG_LEN ||
	    memcmp(blob, BLOB_MAGIC, 4) != 0)
		return -EBADMSG;
	for (int i = 0; i < BLOB_ID_LEN; i++) {
		char c = (char)blob[4 + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      c == '-'))
			return -EBADMSG;
		id[i] = c;
	}
	id[BLOB_ID_LEN] = 0;
	return 0;
}

int state_open_blob(struct state *st, json_object *k, json_object *ctx,
		    const uint8_t *blob, size_t len, uint8_t **pt,
		    size_t *pt_len)
{
	uint8_t *material = NULL, *aad = NULL, *out = NULL;
	const char *id = key_id_of(k);
	char blob_id[37];
	int64_t version = 0;
	size_t aad_len, n;
	int r;

	r = state_blob_key_id(blob, len, blob_id);
	if (r || !id || strcmp(blob_id, id))
		return -EBADMSG;
	for (int i = 0; i < 4; i++)
		version = version << 8 | blob[4 + BLOB_ID_LEN + i];
	r = unseal_material(st, k, version, &material);
	if (r)
		return r == -EIO ? -EIO : -EBADMSG;
	n = len - BLOB_HDR_LEN - CRYPTO_AEAD_TAG_LEN;
	r = -ENOMEM;
	out = secmem_alloc(n ? n : 1);
	if (!out)
		goto out;
	r = blob_aad(blob, ctx, &aad, &aad_len);
	if (!r)
		r = crypto_aead_open(material, blob + 4 + BLOB_ID_LEN + 4, aad,
				     aad_len, blob + BLOB_HDR_LEN,
				     len - BLOB_HDR_LEN, out);
	if (r)
		goto out;
	*pt = out;
	*pt_len = n;
	out = NULL;
out:
	secmem_free(out);
	free(aad);
	secmem_free(material);
	return r;
}
