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

/* One row of out for each aws-kms token covering keyslot ks (several
 * CMKs may share one, after a reencryption): false when none does. */
static bool rows_for(struct luks2_vol *v, int ks, struct vol_status *out)
{
	const struct luks2_info *info = &out->info;
	bool any = false;

	for (unsigned i = 0; i < info->n_tokens; i++) {
		struct vol_status_slot *s = &out->slots[out->n_slots];
		struct vol_token t;
		const char *json;
		bool covers = false;

		if (out->n_slots == VOL_STATUS_ROWS ||
		    luks2_token_json(v, info->tokens[i], &json) ||
		    vol_token_parse(json, &t, NULL, 0))
			continue;
		for (size_t j = 0; j < t.n_keyslots; j++)
			covers |= t.keyslots[j] == ks;
		if (covers) {
			s->keyslot = ks;
			s->token = info->tokens[i];
			memcpy(s->key_arn, t.key_arn, sizeof(s->key_arn));
			memcpy(s->region, t.region, sizeof(s->region));
			memcpy(s->created, t.created, sizeof(s->created));
			s->segment_bound = t.segment_bound;
			out->n_slots++;
			any = true;
		}
		vol_token_free(&t);
	}
	return any;
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
		int ks = out->info.keyslots[i];

		if (rows_for(v, ks, out) || out->n_slots == VOL_STATUS_ROWS)
			continue;
		out->only_kms_keyslots = false;
		out->slots[out->n_slots++] =
			(struct vol_status_slot){ .keyslot = ks, .token = -1 };
	}
	luks2_close(v);
	return 0;
}
