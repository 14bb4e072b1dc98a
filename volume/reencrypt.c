/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reencrypt.c — a volume's data rewritten under a new volume key (offline),
 * bound to a new KMS data key of the same or another CMK; and resuming
 * after an interruption or a crash (volume.h, vol_reencrypt_*).  The data
 * copy, its metadata and its crash recovery are crypto/luks2/'s; this file
 * puts the keys in place, in an order a crash cannot break.
 *
 * libcryptsetup 2.6 opens the old and the new volume key with one
 * passphrase, so before the data moves, every key of the volume is put
 * behind one new KMS data key S (the secret of one new aws-kms token):
 *   1. keyslot N: a new random volume key, opened by S    (not used yet)
 *   2. keyslot B: the current volume key, opened by S
 *   3. token for S covering B, then N; and for each other CMK of the
 *      volume (a replica, a break-glass key), S wrapped under it by KMS
 *      Encrypt in its region, in a token covering B and N: every CMK
 *      that opened the volume opens it after
 *   4. every other token removed, every other keyslot destroyed (a new
 *      volume key makes them useless; left alone they would keep the old
 *      secrets able to read the part not yet rewritten)
 *   5. reencryption metadata written; data rewritten block by block
 * At the end libcryptsetup destroys B, leaving the tokens covering N.
 * Steps 1-4 are header writes ordered as a rotation's: after each, the
 * volume opens through the old tokens or the new ones.  A crash between 1
 * and 3 leaves a keyslot no token covers; the next run removes first all
 * but what opens the current key (one token per CMK), and its step 4 the
 * rest.  From step 5 on, only a resume (a token for S)
 * continues, recovering first a block cut off in the middle.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "internal.h"
#include "luks2.h"
#include "volume.h"

/*
 * Where the header being replaced is kept while a reencryption's end is
 * completed (see crypto/luks2/reencrypt.c): beside a volume file; for a
 * block device, under /var/lib/cmkfs, named after the device path.  Not
 * after the UUID: it must be found even when the header cannot be read.
 */
#define STATE_DIR "/var/lib/cmkfs"

struct vol_reencrypt {
	const char *volume;
	int lock_fd;
	struct luks2_vol *v;
	char snapshot[PATH_MAX + 64];
};

int vol_reencrypt_snapshot(const char *volume, char *out, size_t len,
			   struct vol_error *e)
{
	char real[PATH_MAX];
	struct stat st;
	int n;

	if (stat(volume, &st))
		return vol_fail(e, -errno, true, "cannot stat %s", volume);
	if (S_ISREG(st.st_mode)) {
		n = snprintf(out, len, "%s.reencrypt-header", volume);
	} else {
		if (!realpath(volume, real))
			return vol_fail(e, -errno, true, "cannot resolve %s",
					volume);
		for (char *c = real; *c; c++)
			if (*c == '/')
				*c = '-';
		if (mkdir(STATE_DIR, 0700) && errno != EEXIST)
			return vol_fail(e, -errno, true, "cannot create %s",
					STATE_DIR);
		n = snprintf(out, len, STATE_DIR "/%s.reencrypt-header",
			     real + 1);
	}
	if (n < 0 || (size_t)n >= len)
		return vol_fail(e, -ENAMETOOLONG, true, "%s", volume);
	return 0;
}

int vol_reencrypt_cut_off(const char *volume, char *snapshot, size_t len,
			  bool *cut_off, struct vol_error *e)
{
	char dead[PATH_MAX + 128];
	int r;

	*cut_off = false;
	r = vol_reencrypt_snapshot(volume, snapshot, len, e);
	if (r)
		return r;
	/* What a crash left while a finished snapshot was removed. */
	snprintf(dead, sizeof(dead), "%s.dead", snapshot);
	if (access(snapshot, F_OK) && !access(dead, F_OK))
		luks2_header_file_destroy(snapshot);
	*cut_off = access(snapshot, F_OK) == 0;
	return 0;
}

int vol_reencrypt_restore(const char *volume, const char *snapshot,
			  const struct vol_trust *trust, struct vol_error *e)
{
	char err[512];
	int r;

	/* The end of a reencryption was cut off while its header was being
	 * replaced: start again from the header it replaced. */
	r = luks2_reencrypt_restore_snapshot(
		volume, snapshot, VOL_OPEN_TRUST(trust), err, sizeof(err));
	return r ? vol_fail(e, r, false, "%s (the header is kept in %s)", err,
			    snapshot)
		 : 0;
}

bool vol_reencrypt_end_cut_off(const char *volume)
{
	struct vol_error e;
	char snapshot[PATH_MAX + 64];

	return !vol_reencrypt_snapshot(volume, snapshot, sizeof(snapshot),
				       &e) &&
	       access(snapshot, F_OK) == 0;
}

/* What a reencryption keeps: keyslots (up to two) and tokens (the new
 * secret's, one per CMK), and the blank mark. */
struct keep {
	int keyslots[32];
	unsigned n_keyslots;
	int tokens[VOL_DOORS_MAX + 1];
	unsigned n_tokens;
};

static bool kept(const int *list, unsigned n, int x)
{
	for (unsigned i = 0; i < n; i++)
		if (list[i] == x)
			return true;
	return false;
}

/* Step 4: everything but what k keeps (reencryption writes nothing of a
 * user's, so the blank mark stays too). */
static int remove_others(struct luks2_vol *v, const char *volume,
			 const struct keep *k, struct vol_reencrypt_start *st,
			 struct vol_error *e)
{
	struct luks2_info info;
	char err[512];

	if (luks2_info(v, &info))
		return vol_fail(e, -EIO, true, "cannot read the header of %s",
				volume);
	for (unsigned i = 0; i < info.n_tokens; i++) {
		if (kept(k->tokens, k->n_tokens, info.tokens[i]) ||
		    info.tokens[i] == info.blank_token)
			continue;
		if (luks2_token_remove(v, info.tokens[i], err, sizeof(err)))
			return vol_fail(e, -EIO, false,
					"cannot reencrypt %s: %s", volume, err);
	}
	for (unsigned i = 0; i < info.n_keyslots + info.n_unbound; i++) {
		int ks = i < info.n_keyslots
				 ? info.keyslots[i]
				 : info.unbound_keyslots[i - info.n_keyslots];

		if (kept(k->keyslots, k->n_keyslots, ks))
			continue;
		if (luks2_keyslot_destroy(v, ks, err, sizeof(err)))
			return vol_fail(e, -EIO, false,
					"cannot reencrypt %s: %s", volume, err);
		if (st->n_destroyed < VOL_REENCRYPT_NOTES)
			st->destroyed[st->n_destroyed++] = ks;
	}
	return 0;
}

/* What a preparation must not lose to a crash: the keyslot and token
 * that unlocked the volume (u), and for each other CMK one of its tokens
 * and the keyslots of the current key it covers.  Anything else is what
 * a preparation cut off left (keyslots of a next volume key, beside which
 * libcryptsetup takes no other, and extra ones that would fill the keyslot
 * area run after run): removed first. */
static void keep_now(struct luks2_vol *v, const struct luks2_info *info,
		     const struct vol_unlocked *u, struct keep *k)
{
	char seen[VOL_DOORS_MAX + 1][256];
	unsigned n_seen = 1;

	memset(k, 0, sizeof(*k));
	k->keyslots[k->n_keyslots++] = u->keyslot;
	k->tokens[k->n_tokens++] = u->token_id;
	snprintf(seen[0], sizeof(seen[0]), "%s", u->token.key_arn);
	for (unsigned i = 0; i < info->n_tokens; i++) {
		struct vol_token t;
		const char *json;
		bool known = false;

		if (n_seen == VOL_DOORS_MAX + 1 ||
		    luks2_token_json(v, info->tokens[i], &json) ||
		    vol_token_parse(json, &t, NULL, 0))
			continue;
		for (unsigned j = 0; j < n_seen; j++)
			known |= !strcmp(seen[j], t.key_arn);
		if (!known && vol_token_live(info, &t)) {
			snprintf(seen[n_seen++], sizeof(seen[0]), "%s",
				 t.key_arn);
			k->tokens[k->n_tokens++] = info->tokens[i];
			for (size_t j = 0;
			     j < t.n_keyslots && k->n_keyslots < 32; j++)
				if (kept(info->keyslots, info->n_keyslots,
					 t.keyslots[j]))
					k->keyslots[k->n_keyslots++] =
						t.keyslots[j];
		}
		vol_token_free(&t);
	}
}

/* The volume's other CMKs, which keep opening it afterwards: every key
 * but the one that opened it (u) and the chosen one (arn), each proven to
 * open the current volume key now — a token a rewritten header added opens
 * nothing, and must not be handed the new secret.  0 with their ARNs in
 * st->kept, or -errno with e said. */
static int other_cmks(struct luks2_vol *v, const struct luks2_info *info,
		      const struct kms_options *ko,
		      const struct vol_reencrypt_opts *o,
		      const struct vol_unlocked *u, const char *volume,
		      const char *arn, struct vol_reencrypt_start *st,
		      struct vol_error *e)
{
	struct vol_token keys[VOL_DOORS_MAX];
	unsigned n = 0;
	int r;

	r = vol_other_keys(v, info, ko, &o->trust, u->token.key_arn, u->vk,
			   keys, VOL_DOORS_MAX, &n, e);
	for (unsigned i = 0; i < n; i++) {
		if (strcmp(keys[i].key_arn, arn))
			snprintf(st->kept[st->n_kept++], sizeof(st->kept[0]),
				 "%s", keys[i].key_arn);
		vol_token_free(&keys[i]);
	}
	if (r && r != -E2BIG) {
		const struct vol_attempt *a = NULL;

		for (unsigned i = 0; i < e->n_attempts && !a; i++)
			if (e->attempts[i].what != VOL_FAIL_NONE)
				a = &e->attempts[i];
		r = vol_fail(
			e, r, false,
			"cannot reencrypt %.200s: its key %.256s does not "
			"open it now (%.600s): every key of a volume must, "
			"to be kept — enable it, or remove it first (cmkfs "
			"remove-key); nothing was rewritten",
			volume, a ? a->key_arn : "?", a ? a->reason : "?");
	}
	return r;
}

/* Step 3 for another CMK: the new secret wrapped under it (KMS Encrypt in
 * its region), a token covering both keyslots. */
static int other_token(struct luks2_vol *v, const struct luks2_info *info,
		       const struct kms_options *ko, const char *volume,
		       const char *arn, const uint8_t *secret,
		       const struct luks2_reencrypt_params *p, int *id,
		       struct vol_error *e)
{
	struct vol_kms *k = NULL;
	struct vol_binding b;
	char *token = NULL, err[512];
	int r;

	r = vol_kms_for(ko, arn, &k, e);
	if (r)
		return r;
	vol_binding_of(info, &b);
	r = vol_secret_wrap(k, arn, &b, secret, &token, &e->kms);
	vol_kms_free(k);
	if (r) {
		e->what = VOL_FAIL_KMS;
		snprintf(e->message, sizeof(e->message),
			 "cannot reencrypt %.150s: it must keep opening "
			 "through %.150s, which does not wrap its new secret "
			 "(enable the key, or remove it first with `cmkfs "
			 "remove-key`); nothing was rewritten",
			 volume, arn);
		return r;
	}
	r = luks2_token_add(v, token, p->keyslot_old, id, err, sizeof(err));
	if (!r)
		r = luks2_token_assign(v, *id, p->keyslot_new, err,
				       sizeof(err));
	free(token);
	return r ? vol_fail(e, r, false, "cannot reencrypt %s: %s", volume, err)
		 : 0;
}

/* Steps 1-4, then the metadata of step 5. */
static int prepare(struct vol_reencrypt *job, const struct luks2_info *info,
		   const struct kms_options *ko,
		   const struct vol_reencrypt_opts *o,
		   const struct vol_unlocked *u, struct vol_reencrypt_start *st,
		   struct vol_error *e)
{
	struct luks2_reencrypt_params p = { .resilience = o->resilience };
	const char *arn = st->key_arn, *volume = job->volume;
	struct luks2_vol *v = job->v;
	struct vol_kms *k = NULL;
	struct keep keep = { 0 };
	uint8_t *secret = NULL;
	char *token = NULL, err[512];
	int r, id;

	r = other_cmks(v, info, ko, o, u, volume, arn, st, e);
	if (r)
		return r;
	if (strcmp(arn, u->token.key_arn))
		snprintf(st->replaced, sizeof(st->replaced), "%s",
			 u->token.key_arn);
	r = vol_kms_for(ko, arn, &k, e);
	if (r)
		return r;
	/* A new CMK is checked; the current one already opened the volume. */
	r = vol_new_secret(k, arn, o->key_arn != NULL, info, "cannot reencrypt",
			   volume, &secret, &token, e);
	if (r)
		goto out;
	keep_now(v, info, u, &keep);
	r = remove_others(v, volume, &keep, st, e);
	if (r)
		goto out;
	r = luks2_keyslot_add_new_key(v, secret, VOL_SECRET_BYTES,
				      &p.keyslot_new, err, sizeof(err));
	if (!r)
		r = luks2_keyslot_add(v, u->vk, secret, VOL_SECRET_BYTES,
				      &p.keyslot_old, err, sizeof(err));
	if (!r)
		r = luks2_token_add(v, token, p.keyslot_old, &id, err,
				    sizeof(err));
	if (!r)
		r = luks2_token_assign(v, id, p.keyslot_new, err, sizeof(err));
	if (r) {
		vol_fail(e, r, false,
			 "cannot reencrypt %s: %s (nothing was rewritten; the "
			 "volume still opens with %s)",
			 volume, err, u->token.key_arn);
		goto out;
	}
	memset(&keep, 0, sizeof(keep));
	keep.keyslots[keep.n_keyslots++] = p.keyslot_old;
	keep.keyslots[keep.n_keyslots++] = p.keyslot_new;
	keep.tokens[keep.n_tokens++] = id;
	/* Every other CMK of the volume opens the new key too. */
	for (unsigned i = 0; i < st->n_kept && !r; i++) {
		r = other_token(v, info, ko, volume, st->kept[i], secret, &p,
				&id, e);
		if (!r)
			keep.tokens[keep.n_tokens++] = id;
	}
	if (!r)
		r = remove_others(v, volume, &keep, st, e);
	if (r)
		goto out;
	r = luks2_reencrypt_init(v, secret, VOL_SECRET_BYTES, &p, err,
				 sizeof(err));
	if (r)
		vol_fail(e, r, false,
			 "cannot reencrypt %s: %s (nothing was rewritten; the "
			 "volume opens with %s)",
			 volume, err, arn);
out:
	secmem_free(secret);
	free(token);
	vol_kms_free(k);
	return r;
}

struct resume {
	const char *snapshot;
	unsigned what; /* LUKS2_RESUME_* */
};

/* Resume with the secret of a token: the vol_with_secret use. */
static int resume_with(struct luks2_vol *v, const struct vol_token *t,
		       int token_id, const uint8_t *secret, size_t len,
		       void *arg, char *err, size_t errlen)
{
	struct resume *r = arg;

	(void)t;
	(void)token_id;
	return luks2_reencrypt_resume(v, secret, len, r->snapshot, &r->what,
				      err, errlen);
}

static int resume(struct vol_reencrypt *job, const struct luks2_info *info,
		  const struct kms_options *ko,
		  const struct vol_reencrypt_opts *o,
		  struct vol_reencrypt_start *st, struct vol_error *e)
{
	struct resume res = { .snapshot = job->snapshot };
	const struct vol_secret_use use = { resume_with, &res };
	struct vol_token t;
	int r;

	if (info->reencrypt == LUKS2_REENCRYPT_NONE)
		return vol_fail(e, -EINVAL, false,
				"%s is not being reencrypted: nothing to "
				"resume",
				job->volume);
	r = vol_with_secret(job->v, info, ko, &o->trust, &use, &t, e);
	if (r)
		return r;
	st->recovered = res.what & LUKS2_RESUME_RECOVERED;
	st->finished = res.what & LUKS2_RESUME_FINISHED;
	snprintf(st->key_arn, sizeof(st->key_arn), "%s", t.key_arn);
	vol_token_free(&t);
	return 0;
}

static int start(struct vol_reencrypt *job, const struct kms_options *ko,
		 const struct vol_reencrypt_opts *o,
		 struct vol_reencrypt_start *st, struct vol_error *e)
{
	struct luks2_info info = { 0 };
	struct vol_unlocked u = { 0 };
	bool cut_off;
	int r;

	r = vol_reencrypt_cut_off(job->volume, job->snapshot,
				  sizeof(job->snapshot), &cut_off, e);
	if (r)
		return r;
	if (cut_off && !o->resume)
		return vol_fail(e, -EBUSY, false,
				"the end of a reencryption of %s was cut off: "
				"finish it with `cmkfs reencrypt --resume %s`",
				job->volume, job->volume);
	if (cut_off) {
		r = vol_reencrypt_restore(job->volume, job->snapshot, &o->trust,
					  e);
		if (r)
			return r;
	}
	r = vol_open_info(job->volume,
			  LUKS2_OPEN_REENCRYPTING | VOL_OPEN_TRUST(&o->trust),
			  &job->v, &info, e);
	if (r)
		return r;
	if (o->resume)
		return resume(job, &info, ko, o, st, e);
	if (info.reencrypt != LUKS2_REENCRYPT_NONE)
		return vol_fail(e, -EBUSY, false,
				"%s is already being reencrypted: continue "
				"with `cmkfs reencrypt --resume %s`",
				job->volume, job->volume);
	if (strcmp(info.cipher, "aes-xts-plain64"))
		return vol_fail(e, -EINVAL, false,
				"cannot reencrypt %s: its cipher is %s",
				job->volume, info.cipher);
	r = vol_unlock(job->v, &info, ko, &o->trust, &u, e);
	if (r)
		return r;
	snprintf(st->key_arn, sizeof(st->key_arn), "%s",
		 o->key_arn ? o->key_arn : u.token.key_arn);
	r = prepare(job, &info, ko, o, &u, st, e);
	/* The old volume key is no longer needed by anything. */
	vol_unlocked_free(&u);
	return r;
}

int vol_reencrypt_start(const char *volume, const struct kms_options *ko,
			const struct vol_reencrypt_opts *o,
			struct vol_reencrypt **out,
			struct vol_reencrypt_start *st, struct vol_error *e)
{
	struct vol_reencrypt *job;
	int r;

	*out = NULL;
	memset(st, 0, sizeof(*st));
	memset(e, 0, sizeof(*e));
	job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	job->volume = volume;
	r = vol_lock(volume, o->online ? VOL_LOCK_HEADER : VOL_LOCK_OFFLINE,
		     &job->lock_fd, e);
	if (r) {
		free(job);
		return r;
	}
	r = start(job, ko, o, st, e);
	if (r) {
		vol_reencrypt_end(job);
		return r;
	}
	*out = job;
	return 0;
}

int vol_reencrypt_data(struct vol_reencrypt *job, vol_progress_fn progress,
		       void *arg, struct luks2_info *info, struct vol_error *e)
{
	char err[512];
	int r;

	memset(e, 0, sizeof(*e));
	r = luks2_reencrypt_run(job->v, progress, arg, err, sizeof(err));
	if (r == -EINTR)
		return r;
	if (r)
		return vol_fail(e, r, false,
				"%s; the volume is safe and only `cmkfs "
				"reencrypt --resume %s` continues",
				err, job->volume);
	if (luks2_info(job->v, info))
		return vol_fail(e, -EIO, true, "cannot read the header of %s",
				job->volume);
	return 0;
}

void vol_reencrypt_end(struct vol_reencrypt *job)
{
	if (!job)
		return;
	luks2_close(job->v);
	if (job->lock_fd >= 0)
		close(job->lock_fd);
	free(job);
}
