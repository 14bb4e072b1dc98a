/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status.c — what a volume is, gathered once (volume.h, vol_status): its
 * header, its keyslots and the KMS keys that open them, and where a
 * reencryption stands.  No KMS request is made.
 */
#include <string.h>

#include "internal.h"
#include "luks2.h"
#include "volume.h"

/* The aws-kms token covering keyslot ks, or -1. */
static int token_for(struct luks2_vol *v, const struct luks2_info *info, int ks,
		     struct vol_token *t)
{
	for (unsigned i = 0; i < info->n_tokens; i++) {
		const char *json;

		if (luks2_token_json(v, info->tokens[i], &json) ||
		    vol_token_parse(json, t, NULL, 0))
			continue;
		for (size_t j = 0; j < t->n_keyslots; j++)
			if (t->keyslots[j] == ks)
				return info->tokens[i];
		vol_token_free(t);
	}
	return -1;
}

const char *vol_reencryption_name(enum vol_reencryption r)
{
	static const char *const names[] = {
		[VOL_REENC_NONE] = "none",
		[VOL_REENC_IN_PROGRESS] = "in-progress",
		[VOL_REENC_CRASHED] = "crashed",
		[VOL_REENC_END_CUT_OFF] = "end-cut-off",
	};

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

int vol_status(const char *volume, struct vol_status *out, struct vol_error *e)
{
	struct luks2_vol *v = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	memset(e, 0, sizeof(*e));
	r = vol_open_info(volume, LUKS2_OPEN_REENCRYPTING | LUKS2_OPEN_INSPECT,
			  &v, &out->info, e);
	if (r)
		return r;
	if (!luks2_allowed(v, LUKS2_OPEN_REENCRYPTING, out->refused,
			   sizeof(out->refused)))
		out->allowed = VOL_ALLOWED;
	else if (!luks2_allowed(v,
				LUKS2_OPEN_REENCRYPTING | LUKS2_OPEN_INSECURE,
				NULL, 0))
		out->allowed = VOL_ALLOWED_INSECURE;
	else
		out->allowed = VOL_REFUSED;
	if (out->allowed != VOL_REFUSED)
		out->refused[0] = 0;
	if (vol_reencrypt_end_cut_off(volume))
		out->reencryption = VOL_REENC_END_CUT_OFF;
	else if (out->info.reencrypt == LUKS2_REENCRYPT_CLEAN)
		out->reencryption = VOL_REENC_IN_PROGRESS;
	else if (out->info.reencrypt == LUKS2_REENCRYPT_CRASHED)
		out->reencryption = VOL_REENC_CRASHED;
	if (out->info.reencrypt != LUKS2_REENCRYPT_NONE)
		luks2_reencrypt_progress(v, &out->reencrypt_done,
					 &out->reencrypt_total);
	out->only_kms_keyslots = true;
	for (unsigned i = 0; i < out->info.n_keyslots; i++) {
		struct vol_status_slot *s = &out->slots[out->n_slots++];
		struct vol_token t;

		s->keyslot = out->info.keyslots[i];
		s->token = token_for(v, &out->info, s->keyslot, &t);
		if (s->token < 0) {
			out->only_kms_keyslots = false;
			continue;
		}
		memcpy(s->key_arn, t.key_arn, sizeof(s->key_arn));
		memcpy(s->region, t.region, sizeof(s->region));
		memcpy(s->created, t.created, sizeof(s->created));
		s->segment_bound = t.segment_bound;
		vol_token_free(&t);
	}
	luks2_close(v);
	return 0;
}
