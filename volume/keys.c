/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keys.c — a volume's CMKs: adding one (a keyslot opened by a data key of
 * the new CMK, and its token) and removing one (its tokens, and the
 * keyslots no other token covers), one header write at a time, so that
 * after any of them the volume opens as before or as after (volume.h,
 * vol_add_key and vol_remove_key): the new keyslot before its token, as a
 * rotation (rotate.c); but the removed key's keyslots before its tokens —
 * the other way round from a rotation, whose old key stays able to open
 * until the end anyway — so that a removal cut off never leaves a keyslot
 * the removed key's secret still opens with no token to say so (and to
 * remove it by): what it leaves is tokens that open nothing, which a run
 * again removes (and add-key first, since a new keyslot could take the
 * number one of them names).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "internal.h"
#include "luks2.h"
#include "volume.h"

/* The aws-kms tokens of the header: those of arn, live (ids in of_arn) or
 * covering no active keyslot (dangling: what a removal cut off between its
 * keyslots and its tokens left); how many live ones of other keys, and how
 * many keys in all. */
struct census {
	int of_arn[32], dangling[32];
	unsigned n_of_arn, n_dangling, n_others, n_keys;
	bool other_trusted; /* a live token of another key the trust allows */
};

static void count_tokens(struct luks2_vol *v, const struct luks2_info *info,
			 const char *arn, const struct vol_trust *trust,
			 struct census *c)
{
	char keys[32][256];

	memset(c, 0, sizeof(*c));
	for (unsigned i = 0; i < info->n_tokens; i++) {
		struct vol_token t;
		const char *json;
		bool live, known = false;

		if (luks2_token_json(v, info->tokens[i], &json) ||
		    vol_token_parse(json, &t, NULL, 0))
			continue;
		live = vol_token_live(info, &t);
		if (!strcmp(t.key_arn, arn)) {
			if (live)
				c->of_arn[c->n_of_arn++] = info->tokens[i];
			else
				c->dangling[c->n_dangling++] = info->tokens[i];
		} else if (live) {
			c->n_others++;
			c->other_trusted |= vol_trusted(trust, t.key_arn);
		}
		for (unsigned j = 0; j < c->n_keys && live; j++)
			known |= !strcmp(keys[j], t.key_arn);
		if (live && !known)
			snprintf(keys[c->n_keys++], sizeof(keys[0]), "%s",
				 t.key_arn);
		vol_token_free(&t);
	}
}

/* The volume locked for a header change and read: *fd, *v and *info for
 * close_unlocked to release. */
static int lock_open(const char *volume, const struct vol_trust *trust, int *fd,
		     struct luks2_vol **v, struct luks2_info *info,
		     struct vol_error *e)
{
	int r = vol_lock(volume, VOL_LOCK_HEADER, fd, e);

	return r ? r : vol_open_info(volume, VOL_OPEN_TRUST(trust), v, info, e);
}

/* Unlocked through one of its keys but skip: proof that such a key opens
 * it, and the volume key. */
static int unlock_but(struct luks2_vol *v, const struct luks2_info *info,
		      const struct kms_options *ko,
		      const struct vol_trust *trust, const char *skip,
		      struct vol_key_change *out, struct vol_unlocked *u,
		      struct vol_error *e)
{
	struct vol_trust t = trust ? *trust : (struct vol_trust){ 0 };
	int r;

	t.skip_key_arn = skip;
	r = vol_unlock(v, info, ko, &t, u, e);
	if (!r)
		snprintf(out->opened_by, sizeof(out->opened_by), "%s",
			 u->token.key_arn);
	return r;
}

static void close_unlocked(int fd, struct luks2_vol *v, struct vol_unlocked *u)
{
	vol_unlocked_free(u);
	luks2_close(v);
	if (fd >= 0)
		close(fd);
}

/* The aws-kms tokens that cover no active keyslot. */
static int remove_dangling(struct luks2_vol *v, const char *volume,
			   const struct luks2_info *info, struct vol_error *e)
{
	char err[512];

	for (unsigned i = 0; i < info->n_tokens; i++) {
		struct vol_token t;
		const char *json;
		bool live;

		if (luks2_token_json(v, info->tokens[i], &json) ||
		    vol_token_parse(json, &t, NULL, 0))
			continue;
		live = vol_token_live(info, &t);
		vol_token_free(&t);
		if (!live &&
		    luks2_token_remove(v, info->tokens[i], err, sizeof(err)))
			return vol_fail(e, -EIO, false, "%s: %s", volume, err);
	}
	return 0;
}

int vol_add_key(const char *volume, const struct kms_options *ko,
		const char *new_arn, const struct vol_trust *trust,
		struct vol_key_change *out, struct vol_error *e)
{
	struct luks2_info info = { 0 };
	struct vol_unlocked u = { 0 };
	struct luks2_vol *v = NULL;
	struct vol_kms *k = NULL;
	struct census c;
	uint8_t *secret = NULL;
	char *token = NULL, err[512];
	int r, fd = -1, slot, id;

	memset(out, 0, sizeof(*out));
	memset(e, 0, sizeof(*e));
	snprintf(out->key_arn, sizeof(out->key_arn), "%s", new_arn);
	/* Proof that a key the volume has opens it, and the volume key the
	 * new keyslot needs. */
	r = lock_open(volume, trust, &fd, &v, &info, e);
	if (!r)
		r = unlock_but(v, &info, ko, trust, NULL, out, &u, e);
	if (r)
		goto out;
	count_tokens(v, &info, new_arn, NULL, &c);
	if (c.n_of_arn) {
		r = vol_fail(e, -EEXIST, false,
			     "%s already opens through %s (token %d)", volume,
			     new_arn, c.of_arn[0]);
		goto out;
	}
	if (c.n_keys >= VOL_KEYS_MAX) {
		r = vol_fail(e, -E2BIG, false,
			     "%s already opens through %u keys, the most a "
			     "volume may have: remove one first (cmkfs "
			     "remove-key)",
			     volume, c.n_keys);
		goto out;
	}
	/* Tokens a cut-off removal left name keyslots that no longer
	 * exist: the new keyslot may take one's number, so they go first. */
	r = remove_dangling(v, volume, &info, e);
	if (r)
		goto out;
	r = vol_kms_for(ko, new_arn, &k, e);
	if (r)
		goto out;
	r = vol_new_secret(k, new_arn, true, &info, "cannot add a key to",
			   volume, &secret, &token, e);
	if (r)
		goto out;
	r = vol_keyslot_with_token(v, u.vk, secret, token, &slot, &id, err,
				   sizeof(err));
	if (r) {
		vol_fail(e, r, false, "cannot add %s to %s: %s", new_arn,
			 volume, err);
		goto out;
	}
	out->keyslots[out->n_keyslots++] = slot;
	out->tokens[out->n_tokens++] = id;
out:
	secmem_free(secret);
	free(token);
	vol_kms_free(k);
	close_unlocked(fd, v, &u);
	return r;
}

/* Is keyslot ks covered by a live aws-kms token other than those of the
 * key being removed? */
static bool covered_by_other(struct luks2_vol *v, const struct luks2_info *info,
			     const char *arn, int ks)
{
	bool covered = false;

	for (unsigned i = 0; i < info->n_tokens && !covered; i++) {
		struct vol_token t;
		const char *json;

		if (luks2_token_json(v, info->tokens[i], &json) ||
		    vol_token_parse(json, &t, NULL, 0))
			continue;
		if (strcmp(t.key_arn, arn))
			for (size_t j = 0; j < t.n_keyslots; j++)
				covered |= t.keyslots[j] == ks;
		vol_token_free(&t);
	}
	return covered;
}

/* The keyslots only the tokens of arn (c) cover, then those tokens: a
 * crash in between leaves tokens that cover nothing (which a run again
 * removes), never a keyslot the removed key's secret still opens. */
static int remove_tokens(struct luks2_vol *v, const struct luks2_info *info,
			 const char *volume, const char *arn,
			 const struct census *c, struct vol_key_change *out,
			 struct vol_error *e)
{
	int gone[32];
	unsigned n_gone = 0;
	char err[512];

	for (unsigned i = 0; i < c->n_of_arn; i++) {
		struct vol_token t;
		const char *json;

		if (luks2_token_json(v, c->of_arn[i], &json) ||
		    vol_token_parse(json, &t, NULL, 0))
			continue;
		for (size_t j = 0; j < t.n_keyslots; j++) {
			int ks = t.keyslots[j];
			bool active = false;

			for (unsigned k = 0; k < info->n_keyslots; k++)
				active |= info->keyslots[k] == ks;
			for (unsigned k = 0; k < n_gone; k++)
				active &= gone[k] != ks;
			if (!active || covered_by_other(v, info, arn, ks))
				continue;
			if (luks2_keyslot_destroy(v, ks, err, sizeof(err))) {
				vol_token_free(&t);
				return vol_fail(e, -EIO, false,
						"cannot remove %s from %s: "
						"cannot destroy its keyslot "
						"%d: %s",
						arn, volume, ks, err);
			}
			gone[n_gone++] = ks;
			if (out->n_keyslots < 8)
				out->keyslots[out->n_keyslots++] = ks;
		}
		vol_token_free(&t);
	}
	for (unsigned i = 0; i < c->n_of_arn + c->n_dangling; i++) {
		int id = i < c->n_of_arn ? c->of_arn[i]
					 : c->dangling[i - c->n_of_arn];

		if (luks2_token_remove(v, id, err, sizeof(err)))
			return vol_fail(e, -EIO, false,
					"destroyed the keyslots of %s in %s, "
					"but cannot remove its token %d: %s",
					arn, volume, id, err);
		if (out->n_tokens < 8)
			out->tokens[out->n_tokens++] = id;
	}
	return 0;
}

int vol_remove_key(const char *volume, const struct kms_options *ko,
		   const char *arn, const struct vol_trust *trust,
		   struct vol_key_change *out, struct vol_error *e)
{
	struct luks2_info info = { 0 };
	struct vol_unlocked u = { 0 };
	struct luks2_vol *v = NULL;
	struct census c;
	int r, fd = -1;

	memset(out, 0, sizeof(*out));
	memset(e, 0, sizeof(*e));
	snprintf(out->key_arn, sizeof(out->key_arn), "%s", arn);
	r = lock_open(volume, trust, &fd, &v, &info, e);
	if (r)
		goto out;
	count_tokens(v, &info, arn, trust, &c);
	if (!c.n_of_arn && !c.n_dangling) {
		r = vol_fail(e, -ENOENT, false,
			     "%s has no token of %s (`cmkfs status` "
			     "lists its keys; give the key's full ARN)",
			     volume, arn);
		goto out;
	}
	if (!c.n_of_arn) {
		/* A removal cut off after its keyslots went: its tokens open
		 * nothing; finish it. */
		r = remove_tokens(v, &info, volume, arn, &c, out, e);
		goto out;
	}
	if (c.n_others && !c.other_trusted) {
		r = vol_fail(e, -EPERM, false,
			     "another key must open %s before %s is removed, "
			     "but this host is pinned to %s (--key-arn or "
			     "CMKFS_KEY_ARN): pin it to a key that stays",
			     volume, arn, trust->key_arn);
		goto out;
	}
	if (!c.n_others) {
		r = vol_fail(e, -EPERM, false,
			     "%s is the only key that opens %s: add another "
			     "first (cmkfs add-key), or move the volume to "
			     "another key (cmkfs rotate)",
			     arn, volume);
		goto out;
	}
	/* Proof that what stays opens the volume, so that removing a key
	 * never locks anyone out. */
	r = unlock_but(v, &info, ko, trust, arn, out, &u, e);
	if (!r)
		r = remove_tokens(v, &info, volume, arn, &c, out, e);
out:
	close_unlocked(fd, v, &u);
	return r;
}
