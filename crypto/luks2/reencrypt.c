/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reencrypt.c — rewriting a volume's data under a new volume key, through
 * libcryptsetup's offline LUKS2 reencryption.  The metadata (segments, the
 * hotzone, its resilience data) and the data copy are libcryptsetup's; this
 * file chooses the parameters, recovers a block cut off by a crash before
 * going on, and turns the library's progress callback into ours.
 *
 * Without device-mapper, libcryptsetup reencrypts "offline": it reads each
 * hotzone, decrypts it with the old key and encrypts it with the new one in
 * userspace, protecting the hotzone with checksums (or a journal copy) in
 * the reencryption keyslot's area first.  Nothing replays an interrupted
 * hotzone by itself, as activating the device would on a dm-crypt host, so
 * resuming always runs the recovery first when the metadata says a hotzone
 * was in flight.
 *
 * One more gap, in libcryptsetup 2.6 itself: after the last block it ends
 * the reencryption in a few header writes (old keyslots destroyed, then
 * the reencryption keyslot).  A crash just before or between them leaves
 * a header whose data is all under the new key but which still says
 * "reencrypting"; resuming that restarts from the first block, rewriting
 * new-key data as if it were old (we have seen it destroy data), and
 * nothing in the public API may change such a header.  So resume checks
 * the metadata first, and when every block is done it ends the
 * reencryption itself, with libcryptsetup's own operations: a fresh header
 * with the same UUID, data offset, sector size, new volume key, a keyslot
 * for the same secret and the same tokens, formatted in a file and
 * restored over the volume's.  The header it replaces is saved first to a
 * snapshot file, restored if that replacement is itself cut off; both are
 * zeroed and removed once the new header opens.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libcryptsetup.h>

#include "crypto.h"
#include "hdr.h"
#include "internal.h"
#include "luks2.h"

/*
 * Hotzone: at most LUKS2_HOTZONE_BYTES (libcryptsetup counts 512-byte
 * sectors).  Each block costs two metadata writes, so larger is faster;
 * smaller bounds the memory used, makes progress visible and, on a mounted
 * volume, bounds how long I/O to the block being rewritten waits.  Without this
 * limit libcryptsetup takes whole volumes of a few hundred MiB in one block.
 * The limit is not stored in the metadata: init and resume both pass it.
 */
#define HOTZONE_SECTORS ((uint32_t)(LUKS2_HOTZONE_BYTES / SECTOR))

#define SEG_NAME 32 /* room for a cipher or mode name */

static int check_resilience(const char *r)
{
	return !r || !strcmp(r, "checksum") || !strcmp(r, "journal") ? 0
								     : -EINVAL;
}

/* ---- files ------------------------------------------------------------- */

/* The header of path into file, durably (temporary name, fsync, rename). */
static int header_save(const char *path, const char *file, char *err,
		       size_t errlen)
{
	char tmp[4096];
	int r;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= sizeof(tmp))
		return -ENAMETOOLONG;
	unlink(tmp);
	r = luks2_header_backup(path, tmp, err, errlen);
	if (!r)
		r = luks2_fsync_path(tmp, O_RDONLY);
	if (!r && rename(tmp, file))
		r = -errno;
	if (!r)
		r = luks2_fsync_parent(file);
	if (r) {
		unlink(tmp);
		if (err && !err[0])
			luks2_say(err, errlen,
				  "cannot save the header of %s "
				  "to %s: %s",
				  path, file, strerror(-r));
	}
	return r;
}

/* The libcryptsetup handle of v again, after its header was replaced. */
static int reload(struct luks2_vol *v, char *err, size_t errlen)
{
	struct crypt_device *cd = NULL;
	int r;

	luks2_lib_begin();
	r = crypt_init(&cd, v->path);
	if (r >= 0) {
		luks2_lib_begin();
		r = crypt_load(cd, CRYPT_LUKS2, NULL);
	}
	if (r < 0) {
		crypt_free(cd);
		return luks2_fail(err, errlen, r, "cannot reload %s", v->path);
	}
	crypt_free(v->cd);
	v->cd = cd;
	luks2_tokens_forget(v);
	return luks2_set_kdf(v->cd, v->path, err, errlen);
}

/* ---- a reencryption whose blocks are all done --------------------------- */

/*
 * From the metadata: is every block done — one data segment, not in
 * reencryption, under the key of the "backup-final" segment?  If so,
 * *keyslot = a keyslot of that key.
 */
static bool all_blocks_done(struct luks2_vol *v, int *keyslot)
{
	json_object *m = NULL, *segments, *data = NULL, *final = NULL, *slots;
	const char *json, *data_id = NULL, *final_id = NULL;
	bool done = false;
	char *end;
	long ks;
	int n = 0;

	luks2_lib_begin();
	if (crypt_dump_json(v->cd, &json, 0) < 0)
		return false;
	m = json_tokener_parse(json);
	if (!m || !json_object_object_get_ex(m, "segments", &segments))
		goto out;
	json_object_object_foreach(segments, id, seg)
	{
		if (luks2_seg_flag(seg, "backup-final")) {
			final_id = id;
		} else if (!luks2_seg_flag(seg, "backup-")) {
			data_id = id;
			n++;
			if (luks2_seg_flag(seg, "in-reencryption"))
				goto out;
		}
	}
	if (n != 1 || !final_id)
		goto out;
	data = luks2_seg_digest(m, data_id);
	final = luks2_seg_digest(m, final_id);
	if (!data || data != final ||
	    !json_object_object_get_ex(final, "keyslots", &slots) ||
	    json_object_array_length(slots) < 1)
		goto out;
	ks = strtol(json_object_get_string(json_object_array_get_idx(slots, 0)),
		    &end, 10);
	if (*end || ks < 0 || ks >= crypt_keyslot_max(CRYPT_LUKS2))
		goto out;
	*keyslot = (int)ks;
	done = true;
out:
	json_object_put(m);
	return done;
}

/* Token id of v as JSON with "keyslots": [keyslot] (free it); NULL when it
 * does not cover old_keyslot. */
static char *token_moved(struct luks2_vol *v, int id, int old_keyslot,
			 int keyslot)
{
	json_object *t, *slots, *arr;
	const char *json;
	char num[16], *out = NULL;
	bool covers = false;

	if (crypt_token_json_get(v->cd, id, &json) < 0)
		return NULL;
	t = json_tokener_parse(json);
	if (!t || !json_object_object_get_ex(t, "keyslots", &slots))
		goto out;
	/* The blank mark is carried on its own (format_final), whatever
	 * keyslots a forged one may name. */
	if (json_object_object_get_ex(t, "type", &arr) && arr &&
	    !strcmp(json_object_get_string(arr), "cmkfs-blank"))
		goto out;
	snprintf(num, sizeof(num), "%d", old_keyslot);
	for (size_t i = 0; i < json_object_array_length(slots); i++)
		if (!strcmp(json_object_get_string(
				    json_object_array_get_idx(slots, i)),
			    num))
			covers = true;
	if (!covers)
		goto out;
	arr = json_object_new_array();
	snprintf(num, sizeof(num), "%d", keyslot);
	if (!arr || json_object_array_add(arr, json_object_new_string(num))) {
		json_object_put(arr);
		goto out;
	}
	json_object_object_add(t, "keyslots", arr);
	json = json_object_to_json_string_ext(t, JSON_C_TO_STRING_PLAIN);
	out = json ? strdup(json) : NULL;
out:
	json_object_put(t);
	return out;
}

/* The data segment's cipher ("aes"), mode ("xts-plain64") and sector
 * size, as a new header or reencryption must repeat them. */
static void segment_params(struct luks2_vol *v, char cipher[static SEG_NAME],
			   char mode[static SEG_NAME], uint32_t *sector_size)
{
	const char *s = crypt_get_cipher(v->cd);
	int n;

	snprintf(cipher, SEG_NAME, "%s", s ? s : "");
	s = crypt_get_cipher_mode(v->cd);
	snprintf(mode, SEG_NAME, "%s", s ? s : "");
	n = crypt_get_sector_size(v->cd);
	*sector_size = n > 0 ? (uint32_t)n : 512u;
}

/* The size to reencrypt in 512-byte sectors when the file ends in a
 * partial sector, else 0 (to the end of the file, the library's default).
 * A resume must say it again: only a crash recovery finds it in the
 * segments. */
static uint64_t reencrypt_sectors(struct luks2_vol *v)
{
	uint64_t end = luks2_data_end(v);

	return end == v->device_size
		       ? 0
		       : (end - crypt_get_data_offset(v->cd) * SECTOR) / SECTOR;
}

/* Format file (sized like v's data, data_end) as v would be after the end: same
 * UUID, label, cipher, sector size and data offset, key vk, one keyslot
 * for secret, v's tokens of new_keyslot moved to it. */
static int format_final(struct luks2_vol *v, const char *file,
			const uint8_t *vk, size_t vk_len, const uint8_t *secret,
			size_t secret_len, int new_keyslot, char *err,
			size_t errlen)
{
	struct crypt_params_luks2 luks2 = { 0 };
	struct crypt_device *cd = NULL;
	char cipher[SEG_NAME], mode[SEG_NAME], uuid[40], label[48];
	const char *s;
	int fd, r, slot;

	segment_params(v, cipher, mode, &luks2.sector_size);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return luks2_fail(err, errlen, -errno, "cannot create %s",
				  file);
	r = ftruncate(fd, (off_t)luks2_data_end(v)) ? -errno : 0;
	close(fd);
	if (r)
		return luks2_fail(err, errlen, r, "cannot size %s", file);
	s = crypt_get_uuid(v->cd);
	snprintf(uuid, sizeof(uuid), "%s", s ? s : "");
	s = crypt_get_label(v->cd);
	snprintf(label, sizeof(label), "%s", s ? s : "");
	luks2.label = label[0] ? label : NULL;

	luks2_lib_begin();
	r = crypt_init(&cd, file);
	if (r >= 0)
		r = crypt_set_data_offset(cd, crypt_get_data_offset(v->cd));
	if (r >= 0)
		r = luks2_set_kdf(cd, file, err, errlen);
	if (r >= 0) {
		luks2_lib_begin();
		r = crypt_format(cd, CRYPT_LUKS2, cipher, mode, uuid,
				 (const char *)vk, vk_len, &luks2);
		secmem_wipe_stack();
	}
	if (r < 0) {
		luks2_fail(err, errlen, r, "cannot format the final header");
		goto out;
	}
	luks2_lib_begin();
	slot = crypt_keyslot_add_by_volume_key(
		cd, CRYPT_ANY_SLOT, (const char *)vk, vk_len,
		(const char *)secret, secret_len);
	secmem_wipe_stack();
	if (slot < 0) {
		r = luks2_fail(err, errlen, slot,
			       "cannot add a keyslot to the final header");
		goto out;
	}
	for (int id = 0; id < LUKS2_MAX_TOKENS; id++) {
		char *t = token_moved(v, id, new_keyslot, slot);

		if (!t)
			continue;
		luks2_lib_begin();
		r = crypt_token_json_set(cd, id, t);
		free(t);
		if (r < 0) {
			luks2_fail(err, errlen, r,
				   "cannot copy token %d to the final header",
				   id);
			goto out;
		}
	}
	/* Rewriting every sector under another key writes nothing of a
	 * user's: a volume never written stays blank. */
	if (luks2_blank_token(v) >= 0) {
		luks2_lib_begin();
		r = crypt_token_json_set(cd, CRYPT_ANY_TOKEN,
					 LUKS2_BLANK_TOKEN);
		if (r < 0) {
			luks2_fail(err, errlen, r,
				   "cannot copy the blank mark to the final "
				   "header");
			goto out;
		}
	}
	r = 0;
out:
	crypt_free(cd);
	return r;
}

/* End a reencryption whose blocks are all done (see the top of the file). */
static int finish(struct luks2_vol *v, const uint8_t *secret, size_t secret_len,
		  int new_keyslot, const char *snapshot, char *err,
		  size_t errlen)
{
	struct crypto_key *check = NULL;
	uint8_t *vk = NULL;
	size_t vk_len = LUKS2_KEY_MAX;
	char fresh[4096];
	int r, slot = -1;

	if (!snapshot) {
		luks2_say(err, errlen,
			  "%s: ending the reencryption needs a file to keep "
			  "the header in meanwhile",
			  v->path);
		return -EINVAL;
	}
	if ((size_t)snprintf(fresh, sizeof(fresh), "%s.new", snapshot) >=
	    sizeof(fresh))
		return -ENAMETOOLONG;
	vk = secmem_alloc(LUKS2_KEY_MAX);
	if (!vk)
		return -ENOMEM;
	luks2_lib_begin();
	r = crypt_volume_key_get(v->cd, new_keyslot, (char *)vk, &vk_len,
				 (const char *)secret, secret_len);
	secmem_wipe_stack();
	if (r < 0) {
		luks2_fail(err, errlen, r, "%s: cannot open keyslot %d",
			   v->path, new_keyslot);
		goto out;
	}
	if (!luks2_file_exists(snapshot)) {
		r = header_save(v->path, snapshot, err, errlen);
		if (r)
			goto out;
	}
	r = format_final(v, fresh, vk, vk_len, secret, secret_len, new_keyslot,
			 err, errlen);
	if (!r)
		r = luks2_header_restore(v->path, fresh, err, errlen);
	if (!r)
		r = reload(v, err, errlen);
	if (r)
		goto out;
	/* The new header must open to the same key before the snapshot
	 * goes. */
	for (int i = 0; i < crypt_keyslot_max(CRYPT_LUKS2) && slot < 0; i++)
		if (crypt_keyslot_status(v->cd, i) >= CRYPT_SLOT_ACTIVE)
			slot = i;
	r = luks2_unlock(v, slot, secret, secret_len, &check, err, errlen);
	if (!r && (crypto_key_len(check) != vk_len ||
		   !secmem_equal(crypto_key_bytes(check), vk, vk_len))) {
		luks2_say(err, errlen,
			  "%s: the new header does not open the new key",
			  v->path);
		r = -EIO;
	}
	if (!r)
		luks2_header_file_destroy(snapshot);
out:
	unlink(fresh);
	crypto_key_free(check);
	secmem_free(vk);
	return r;
}

/* The snapshot is written over the header: only one cmkfs wrote (a
 * regular file of this user that no one else may write), of this very
 * volume, on the allow-list — checked before anything is written. */
static int check_snapshot(const char *path, const char *snapshot,
			  unsigned flags, char *err, size_t errlen)
{
	char mine[40], theirs[40];
	struct luks2_vol *s = NULL;
	struct stat st;
	int r;

	if (lstat(snapshot, &st) || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 022)) {
		luks2_say(err, errlen,
			  "%s is not a header cmkfs kept (a regular file of "
			  "this user that no one else may write): not "
			  "restored over %s",
			  snapshot, path);
		return -EPERM;
	}
	r = luks2_open_flags(snapshot,
			     flags | LUKS2_OPEN_REENCRYPTING |
				     LUKS2_OPEN_HEADER_FILE,
			     &s, err, errlen);
	if (r)
		return r;
	snprintf(theirs, sizeof(theirs), "%s", crypt_get_uuid(s->cd) ?: "");
	luks2_close(s);
	r = luks2_device_uuid(path, mine, sizeof(mine));
	if (r || strcmp(mine, theirs)) {
		luks2_say(err, errlen,
			  "%s holds the header of volume %s, not of %s (%s): "
			  "not restored",
			  snapshot, theirs, path, r ? "no UUID" : mine);
		return -EINVAL;
	}
	return 0;
}

int luks2_reencrypt_restore_snapshot(const char *path, const char *snapshot,
				     unsigned flags, char *err, size_t errlen)
{
	int r;

	luks2_clear_err(err, errlen);
	if (!luks2_file_exists(snapshot))
		return -ENOENT;
	r = check_snapshot(path, snapshot, flags, err, errlen);
	return r ? r : luks2_header_restore(path, snapshot, err, errlen);
}

/* ---- both keys, for a reencryption served while it runs ---------------- */

/* A keyslot of the digest that segment seg_id has, or -1. */
static int keyslot_of(json_object *m, const char *seg_id)
{
	json_object *d = luks2_seg_digest(m, seg_id), *slots;
	const char *s;
	char *end;
	long ks;

	if (!d || !json_object_object_get_ex(d, "keyslots", &slots) ||
	    json_object_array_length(slots) < 1)
		return -1;
	s = json_object_get_string(json_object_array_get_idx(slots, 0));
	if (!s || *s < '0' || *s > '9')
		return -1;
	ks = strtol(s, &end, 10);
	return *end || ks >= crypt_keyslot_max(CRYPT_LUKS2) ? -1 : (int)ks;
}

/*
 * The live segments of a forward reencryption stopped between blocks, as
 * the data path will trust them: from the data offset to the end of the
 * data without a gap, those under the new key (the digest of backup-final)
 * first, then those under the old one (the digest of backup-previous), none
 * in reencryption.  *done: the bytes under the new key.  The header is
 * untrusted: anything else is refused.
 */
static int forward_layout(struct luks2_vol *v, json_object *m, int *ks_old,
			  int *ks_new, uint64_t *done)
{
	json_object *segments, *dnew, *dold;
	const char *fin = NULL, *prev = NULL;
	uint64_t start = crypt_get_data_offset(v->cd) * SECTOR,
		 end = luks2_data_end(v), at = start, size;
	bool in_old = false;
	char key[16];

	if (!json_object_object_get_ex(m, "segments", &segments))
		return -EINVAL;
	json_object_object_foreach(segments, fid, fseg)
	{
		if (luks2_seg_flag(fseg, "backup-final"))
			fin = fid;
		else if (luks2_seg_flag(fseg, "backup-previous"))
			prev = fid;
	}
	if (!fin || !prev || !(dnew = luks2_seg_digest(m, fin)) ||
	    !(dold = luks2_seg_digest(m, prev)) || dnew == dold)
		return -EINVAL;
	/* Live segments are numbered 0..n-1 in data order. */
	for (int i = 0; i < LUKS2_MAX_SEGMENTS; i++) {
		json_object *seg, *jo, *d;
		const char *o;
		char *e;

		snprintf(key, sizeof(key), "%d", i);
		if (!json_object_object_get_ex(segments, key, &seg) ||
		    luks2_seg_flag(seg, "backup-"))
			break;
		if (luks2_seg_flag(seg, "in-reencryption") ||
		    !json_object_object_get_ex(seg, "offset", &jo) ||
		    !(o = json_object_get_string(jo)) || *o < '0' || *o > '9' ||
		    strtoull(o, &e, 10) != at || *e ||
		    !luks2_seg_bytes(seg, end, &size) || size > end - at)
			return -EINVAL;
		/* One segment under each key at most: what libcryptsetup
		 * itself resumes from (it takes the first segment's size as
		 * the progress). */
		d = luks2_seg_digest(m, key);
		if (d == dnew && !in_old && at == start)
			*done = size;
		else if (d == dold && !in_old)
			in_old = true;
		else
			return -EINVAL;
		at += size;
	}
	if (at != end)
		return -EINVAL;
	if (!in_old)
		*done = end - start;
	*ks_new = keyslot_of(m, fin);
	*ks_old = keyslot_of(m, prev);
	return *ks_new < 0 || *ks_old < 0 ? -EINVAL : 0;
}

int luks2_reencrypt_keys(struct luks2_vol *v, const uint8_t *secret,
			 size_t secret_len, struct crypto_key **old_vk,
			 struct crypto_key **new_vk, uint64_t *done, char *err,
			 size_t errlen)
{
	struct crypt_params_reencrypt params = { 0 };
	json_object *m = NULL;
	const char *json;
	int r, ks_old = -1, ks_new = -1;

	luks2_clear_err(err, errlen);
	*old_vk = *new_vk = NULL;
	*done = 0;
	/* Resilience "none" commits no progress per block: nothing the data
	 * path could follow (and a crash would corrupt data). */
	if (crypt_reencrypt_status(v->cd, &params) != CRYPT_REENCRYPT_CLEAN ||
	    params.mode != CRYPT_REENCRYPT_REENCRYPT ||
	    params.direction != CRYPT_REENCRYPT_FORWARD || !params.resilience ||
	    (strcmp(params.resilience, "checksum") &&
	     strcmp(params.resilience, "journal"))) {
		luks2_say(err, errlen,
			  "%s is not in a forward reencryption with checksum "
			  "or journal resilience stopped between two blocks",
			  v->path);
		return -EINVAL;
	}
	luks2_lib_begin();
	if (crypt_dump_json(v->cd, &json, 0) < 0)
		return luks2_fail(err, errlen, -EIO, "cannot read %s", v->path);
	m = json_tokener_parse(json);
	r = m ? forward_layout(v, m, &ks_old, &ks_new, done) : -EINVAL;
	json_object_put(m);
	if (r) {
		luks2_say(err, errlen,
			  "%s: the reencryption's segments are not the ones "
			  "a forward reencryption leaves",
			  v->path);
		return r;
	}
	r = luks2_key_get(v, ks_old, secret, secret_len, old_vk, err, errlen);
	if (!r)
		r = luks2_key_get(v, ks_new, secret, secret_len, new_vk, err,
				  errlen);
	if (r) {
		crypto_key_free(*old_vk);
		*old_vk = NULL;
	}
	return r;
}

/* ---- starting ----------------------------------------------------------- */

int luks2_reencrypt_init(struct luks2_vol *v, const uint8_t *secret,
			 size_t secret_len,
			 const struct luks2_reencrypt_params *p, char *err,
			 size_t errlen)
{
	const char *resilience =
		p && p->resilience ? p->resilience : "checksum";
	struct crypt_params_luks2 luks2 = { 0 };
	struct crypt_params_reencrypt params = {
		.mode = CRYPT_REENCRYPT_REENCRYPT,
		.direction = CRYPT_REENCRYPT_FORWARD,
		.resilience = resilience,
		.hash = "sha256",
		.max_hotzone_size = HOTZONE_SECTORS,
		.luks2 = &luks2,
	};
	char cipher[SEG_NAME], mode[SEG_NAME];
	int r;

	luks2_clear_err(err, errlen);
	if (!p || !secret || !secret_len || check_resilience(resilience)) {
		luks2_say(err, errlen,
			  "reencryption needs two keyslots, a secret and a "
			  "resilience of \"checksum\" or \"journal\"");
		return -EINVAL;
	}
	r = luks2_check_keyslot(v, p->keyslot_old, true, err, errlen);
	if (!r)
		r = luks2_check_keyslot(v, p->keyslot_new, false, err, errlen);
	if (!r)
		r = luks2_begin_keyslot_add(v, err, errlen);
	if (r)
		return r;

	/* The same cipher and sector size as now: only the key changes. */
	segment_params(v, cipher, mode, &luks2.sector_size);
	params.device_size = reencrypt_sectors(v);

	luks2_lib_begin();
	r = crypt_reencrypt_init_by_passphrase(
		v->cd, NULL, (const char *)secret, secret_len, p->keyslot_old,
		p->keyslot_new, cipher, mode, &params);
	secmem_wipe_stack();
	if (r == -EPERM) {
		luks2_say(err, errlen,
			  "%s: the secret does not open keyslots %d and %d",
			  v->path, p->keyslot_old, p->keyslot_new);
		return r;
	}
	if (r < 0)
		return luks2_fail(err, errlen, r,
				  "cannot start reencrypting %s", v->path);
	return 0;
}

/* Load the reencryption in progress (resume or recovery, as params say),
 * opening its keys with secret. */
static int load_keys(struct luks2_vol *v, const uint8_t *secret,
		     size_t secret_len,
		     const struct crypt_params_reencrypt *params,
		     const char *what, char *err, size_t errlen)
{
	int r;

	luks2_lib_begin();
	r = crypt_reencrypt_init_by_passphrase(
		v->cd, NULL, (const char *)secret, secret_len, CRYPT_ANY_SLOT,
		CRYPT_ANY_SLOT, NULL, NULL, params);
	secmem_wipe_stack();
	if (r == -EPERM) {
		luks2_say(err, errlen,
			  "%s: the secret opens none of its keyslots", v->path);
		return r;
	}
	if (r < 0)
		return luks2_fail(err, errlen, r, "%s %s", what, v->path);
	return 0;
}

int luks2_reencrypt_resume(struct luks2_vol *v, const uint8_t *secret,
			   size_t secret_len, const char *snapshot,
			   unsigned *what, char *err, size_t errlen)
{
	struct crypt_params_reencrypt params = {
		.max_hotzone_size = HOTZONE_SECTORS,
		.flags = CRYPT_REENCRYPT_RESUME_ONLY,
	};
	crypt_reencrypt_info ri;
	int r, keyslot;

	luks2_clear_err(err, errlen);
	*what = 0;
	if (!secret || !secret_len) {
		luks2_say(err, errlen, "no keyslot secret");
		return -EINVAL;
	}
	r = luks2_begin_keyslot_add(v, err, errlen);
	if (r)
		return r;
	ri = crypt_reencrypt_status(v->cd, NULL);
	if (ri == CRYPT_REENCRYPT_NONE) {
		luks2_say(err, errlen, "%s is not being reencrypted", v->path);
		return -ENOENT;
	}
	if (ri == CRYPT_REENCRYPT_CRASH) {
		/* What `cryptsetup repair` does: replay or undo the hotzone
		 * from its checksums or journal, leaving a clean state. */
		struct crypt_params_reencrypt rec = {
			.flags = CRYPT_REENCRYPT_RECOVERY,
		};

		r = load_keys(v, secret, secret_len, &rec,
			      "cannot recover the interrupted reencryption of",
			      err, errlen);
		if (r)
			return r;
		*what |= LUKS2_RESUME_RECOVERED;
		/* The block cut off was the last one: completing it, the
		 * library ended the reencryption too (as after a last block
		 * not cut off). */
		if (crypt_reencrypt_status(v->cd, NULL) ==
		    CRYPT_REENCRYPT_NONE) {
			*what |= LUKS2_RESUME_FINISHED;
			return 0;
		}
	}
	if (all_blocks_done(v, &keyslot)) {
		r = finish(v, secret, secret_len, keyslot, snapshot, err,
			   errlen);
		if (!r)
			*what |= LUKS2_RESUME_FINISHED;
		return r;
	}
	params.device_size = reencrypt_sectors(v);
	return load_keys(v, secret, secret_len, &params,
			 "cannot resume the reencryption of", err, errlen);
}

/* ---- running ------------------------------------------------------------ */

struct progress_ctx {
	struct luks2_vol *v;
	luks2_progress_fn fn;
	void *arg;
	bool stopped, called, astray;
};

/*
 * libcryptsetup calls this between two blocks, with no data I/O in flight
 * and the block before committed, and once more after the last.  Its
 * offset lags one block behind (it is the start of the block just done),
 * so what is done is read from the committed segments instead; a caller
 * that serves the data meanwhile relies on it being exact.
 */
static int on_progress(uint64_t size, uint64_t offset, void *usrptr)
{
	struct progress_ctx *c = usrptr;
	uint64_t done, total;

	if (!c->fn)
		return 0;
	if (luks2_reencrypt_progress(c->v, &done, &total)) {
		/* The last call may come with the metadata already gone. */
		if (crypt_reencrypt_status(c->v->cd, NULL) !=
		    CRYPT_REENCRYPT_NONE) {
			c->astray = true;
			return 1;
		}
		done = total = size;
	}
	/* The first call's offset is exact (later ones lag): where the
	 * library starts must be where the segments say it stands. */
	if (!c->called && offset != done) {
		c->astray = true;
		return 1;
	}
	c->called = true;
	if (c->fn(done, total, c->arg)) {
		c->stopped = true;
		return 1;
	}
	return 0;
}

int luks2_reencrypt_run(struct luks2_vol *v, luks2_progress_fn progress,
			void *arg, char *err, size_t errlen)
{
	struct progress_ctx c = { .v = v, .fn = progress, .arg = arg };
	crypt_reencrypt_info ri;
	int r;

	luks2_clear_err(err, errlen);
	luks2_tokens_forget(v);
	luks2_lib_begin();
	r = crypt_reencrypt_run(v->cd, on_progress, &c);
	secmem_wipe_stack();
	if (c.astray) {
		luks2_say(err, errlen,
			  "%s: the reencryption's segments do not say where "
			  "libcryptsetup stands: stopped",
			  v->path);
		return -EINVAL;
	}
	if (r < 0)
		return luks2_fail(err, errlen, r, "reencryption of %s failed",
				  v->path);
	ri = crypt_reencrypt_status(v->cd, NULL);
	if (ri == CRYPT_REENCRYPT_NONE)
		return 0;
	if (c.stopped && ri == CRYPT_REENCRYPT_CLEAN) {
		luks2_say(err, errlen, "the reencryption of %s was stopped",
			  v->path);
		return -EINTR;
	}
	luks2_say(err, errlen, "the reencryption of %s did not finish",
		  v->path);
	return -EIO;
}
