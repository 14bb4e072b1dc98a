/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rotate.c — moving a volume to another CMK, or re-wrapping its secret
 * (volume.h, vol_rotate).  Header work only: no data is rewritten, so both
 * are safe on a volume in use.
 *
 * Crash safety of a move to another key: every step is one LUKS2 header
 * write (libcryptsetup writes both header copies with a sequence number),
 * and the steps are ordered so that after each one the volume opens with the
 * old CMK or the new one:
 *   1. new keyslot opened by a data key of the new CMK   (old still works)
 *   2. aws-kms token for it                              (both work)
 *   3. old token removed                                 (new works)
 *   4. old keyslot destroyed                             (new works)
 * The token goes before its keyslot so that no token ever names a keyslot
 * number that a later rotation may reuse.  A crash between 1 and 2, or 3
 * and 4, leaves a keyslot no token covers: `status` flags it, and it opens
 * only with a secret no token keeps any more.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "luks2.h"
#include "internal.h"
#include "volume.h"

/* Steps 1-4 above. */
static int move_to_key(struct luks2_vol *v, const struct luks2_info *info,
		       const struct kms_options *ko, const char *volume,
		       const struct vol_unlocked *u, const char *new_arn,
		       struct vol_rotated *out, struct vol_error *e)
{
	struct vol_kms *k = NULL;
	uint8_t *secret = NULL;
	char *token = NULL, err[512];
	int r, slot, id;

	if (!strcmp(new_arn, u->token.key_arn))
		return vol_fail(e, -EALREADY, false,
				"%s is already bound to %s: use --rewrap to "
				"re-wrap its secret under the key's newest "
				"material",
				volume, new_arn);
	r = vol_kms_for(ko, new_arn, &k, e);
	if (r)
		return r;
	r = vol_new_secret(k, new_arn, true, info, "cannot rotate", volume,
			   &secret, &token, e);
	if (r)
		goto out;
	r = vol_keyslot_with_token(v, u->vk, secret, token, &slot, &id, err,
				   sizeof(err));
	if (r) {
		vol_fail(
			e, r, false,
			"cannot rotate %s: %s (the volume still opens with %s)",
			volume, err, u->token.key_arn);
		goto out;
	}
	out->new_keyslot = slot;
	r = luks2_token_remove(v, u->token_id, err, sizeof(err));
	if (!r)
		r = luks2_keyslot_destroy(v, u->keyslot, err, sizeof(err));
	if (r)
		vol_fail(
			e, r, false,
			"rotated %s to %s, but cannot remove the old keyslot %d: "
			"%s",
			volume, new_arn, u->keyslot, err);
out:
	secmem_free(secret);
	free(token);
	vol_kms_free(k);
	return r;
}

/* Re-wrap the token's secret (to new_arn, or the same key): the new token
 * first, then the old one removed — both open the same keyslot. */
static int rewrap(struct luks2_vol *v, const struct luks2_info *info,
		  const struct kms_options *ko, const char *volume,
		  const struct vol_unlocked *u, const char *new_arn,
		  struct vol_rotated *out, struct vol_error *e)
{
	struct vol_kms *k = NULL, *dst = NULL;
	struct vol_binding b;
	char *token = NULL, err[512];
	int r, id;

	r = vol_kms_for_token(ko, &u->token, &k, &e->kms);
	if (r) {
		e->what = VOL_FAIL_KMS_CLIENT;
		return r;
	}
	if (new_arn) {
		r = vol_kms_for(ko, new_arn, &dst, e);
		if (!r)
			r = vol_check_new_key(dst, new_arn, "cannot re-wrap",
					      volume, e);
		if (r)
			goto out;
	}
	vol_binding_of(info, &b);
	r = vol_secret_rewrap(k, &u->token, &b, dst, new_arn, &token, &e->kms);
	if (r) {
		e->what = VOL_FAIL_KMS;
		snprintf(e->message, sizeof(e->message),
			 "cannot re-wrap the secret of %s", volume);
		goto out;
	}
	r = luks2_token_add(v, token, u->keyslot, &id, err, sizeof(err));
	if (!r)
		r = luks2_token_remove(v, u->token_id, err, sizeof(err));
	if (r) {
		vol_fail(e, r, false, "cannot re-wrap the secret of %s: %s",
			 volume, err);
		goto out;
	}
	out->new_keyslot = u->keyslot;
out:
	free(token);
	vol_kms_free(dst);
	vol_kms_free(k);
	return r;
}

/* Remove tokens that cover no active keyslot: the leftovers of a
 * rotation interrupted between steps 3 and 4. */
static void remove_dangling_tokens(struct luks2_vol *v, struct vol_rotated *out)
{
	struct luks2_info info = { 0 };
	char err[512];

	if (luks2_info(v, &info))
		return;
	for (unsigned i = 0; i < info.n_tokens; i++) {
		struct vol_token t;
		const char *json;
		bool live;

		if (luks2_token_json(v, info.tokens[i], &json) ||
		    vol_token_parse(json, &t, NULL, 0))
			continue;
		live = vol_token_live(&info, &t);
		vol_token_free(&t);
		if (!live &&
		    !luks2_token_remove(v, info.tokens[i], err, sizeof(err)) &&
		    out->n_removed < VOL_ROTATED_MAX)
			out->removed_tokens[out->n_removed++] = info.tokens[i];
	}
}

int vol_rotate(const char *volume, const struct kms_options *ko,
	       const char *new_arn, bool rewrap_only,
	       const struct vol_trust *trust, struct vol_rotated *out,
	       struct vol_error *e)
{
	struct luks2_info info = { 0 };
	struct vol_unlocked u = { 0 };
	struct luks2_vol *v = NULL;
	int r, fd = -1;

	memset(out, 0, sizeof(*out));
	memset(e, 0, sizeof(*e));
	if (!new_arn && !rewrap_only)
		return vol_fail(e, -EINVAL, false,
				"moving %s to another key needs its ARN",
				volume);
	r = vol_lock(volume, VOL_LOCK_HEADER, &fd, e);
	if (r)
		return r;
	r = vol_open_info(volume, VOL_OPEN_TRUST(trust), &v, &info, e);
	if (r)
		goto out;
	/* Proof that the current key still opens the volume, and the volume
	 * key the new keyslot needs. */
	r = vol_unlock(v, &info, ko, trust, &u, e);
	if (r)
		goto out;
	out->old_keyslot = u.keyslot;
	snprintf(out->old_key_arn, sizeof(out->old_key_arn), "%s",
		 u.token.key_arn);
	snprintf(out->key_arn, sizeof(out->key_arn), "%s",
		 new_arn ? new_arn : u.token.key_arn);
	r = rewrap_only
		    ? rewrap(v, &info, ko, volume, &u, new_arn, out, e)
		    : move_to_key(v, &info, ko, volume, &u, new_arn, out, e);
	if (!r)
		remove_dangling_tokens(v, out);
out:
	vol_unlocked_free(&u);
	luks2_close(v);
	if (fd >= 0)
		close(fd);
	return r;
}
