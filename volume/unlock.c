/* SPDX-License-Identifier: Apache-2.0 */
/*
 * unlock.c — opening a volume through its KMS key: each live aws-kms token
 * in turn has its secret unwrapped by KMS (Decrypt under the volume's own
 * UUID) and handed to what the caller does with it (open a keyslot, add
 * one...); and the same unwrap, repeated while mounted, as the daemon's
 * revocation check.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "fs.h"
#include "internal.h"
#include "luks2.h"
#include "volume.h"

bool vol_token_live(const struct luks2_info *info, const struct vol_token *t)
{
	for (size_t j = 0; j < t->n_keyslots; j++)
		for (unsigned i = 0; i < info->n_keyslots; i++)
			if (info->keyslots[i] == t->keyslots[j])
				return true;
	return false;
}

/* The first failure, kept in e: KMS sees one request per token, and only
 * when no token works is one explained. */
static void first_failure(struct vol_error *e, enum vol_failure what,
			  const struct vol_token *t,
			  const struct kms_error *kerr, const char *message)
{
	if (e->what != VOL_FAIL_NONE)
		return;
	e->what = what;
	if (kerr)
		e->kms = *kerr;
	if (message)
		snprintf(e->message, sizeof(e->message), "%s", message);
	snprintf(e->key_arn, sizeof(e->key_arn), "%s", t->key_arn);
	snprintf(e->region, sizeof(e->region), "%s", t->region);
}

/* Try token number i of the volume: unwrap its secret and hand it to use.
 * 0 when use succeeded (*t filled), 1 when it is not a live aws-kms token,
 * else -errno with the first failure in e. */
static int try_token(struct luks2_vol *v, const struct luks2_info *info,
		     unsigned i, const struct kms_options *ko,
		     const struct vol_trust *trust,
		     const struct vol_secret_use *use, struct vol_token *t,
		     struct vol_error *e)
{
	struct kms_client *k = NULL;
	struct vol_binding b;
	struct kms_error kerr;
	uint8_t *secret = NULL;
	const char *json;
	char err[512];
	size_t len;
	int r;

	if (luks2_token_json(v, info->tokens[i], &json))
		return 1;
	r = vol_token_parse(json, t, err, sizeof(err));
	if (r == -EINVAL) {
		/* An aws-kms token that is malformed: said, never used. */
		char why[512];

		snprintf(why, sizeof(why),
			 "its aws-kms token %d is refused: %.400s",
			 info->tokens[i], err);
		first_failure(e, VOL_FAIL_BINDING, t, NULL, why);
		return r;
	}
	if (r)
		return 1; /* not ours */
	if (!vol_token_live(info, t)) {
		vol_token_free(t);
		return 1;
	}
	/* Bound to this header, as it is now: what the token's copy says
	 * is only compared, to say early what was changed. */
	vol_binding_of(info, &b);
	r = vol_token_matches(t, &b, err, sizeof(err));
	if (!r && trust && trust->key_arn &&
	    strcmp(trust->key_arn, t->key_arn)) {
		snprintf(err, sizeof(err),
			 "its aws-kms token names the key %.200s, not %.200s "
			 "(the key this host is told to trust): the header "
			 "may have been replaced",
			 t->key_arn, trust->key_arn);
		r = -EPERM;
	}
	if (r) {
		first_failure(e, VOL_FAIL_BINDING, t, NULL, err);
		vol_token_free(t);
		return r;
	}
	r = vol_client_for_token(ko, t, &k, &kerr);
	if (r) {
		first_failure(e, VOL_FAIL_KMS_CLIENT, t, &kerr, NULL);
	} else {
		r = vol_secret_unwrap(k, t, &b, &secret, &len, &kerr);
		/* What it was bound to, for the message. */
		snprintf(err, sizeof(err), "volume %s%s%s", b.uuid,
			 t->segment_bound ? ", data segment " : "",
			 t->segment_bound ? b.segment : "");
		if (r)
			first_failure(e, VOL_FAIL_UNWRAP, t, &kerr, err);
	}
	if (!r) {
		r = use->fn(v, t, info->tokens[i], secret, len, use->arg, err,
			    sizeof(err));
		if (r)
			first_failure(e, VOL_FAIL_KEYSLOT, t, NULL, err);
	}
	secmem_free(secret);
	kms_client_free(k);
	if (r)
		vol_token_free(t);
	return r;
}

int vol_with_secret(struct luks2_vol *v, const struct luks2_info *info,
		    const struct kms_options *ko, const struct vol_trust *trust,
		    const struct vol_secret_use *use, struct vol_token *t,
		    struct vol_error *e)
{
	int first = 0, r;

	memset(t, 0, sizeof(*t));
	memset(e, 0, sizeof(*e));
	/* Any token that works will do. */
	for (unsigned i = 0; i < info->n_tokens; i++) {
		r = try_token(v, info, i, ko, trust, use, t, e);
		if (!r)
			return 0;
		if (r < 0 && !first)
			first = r;
	}
	if (first)
		return first;
	e->what = VOL_FAIL_NO_TOKEN;
	return -ENOENT;
}

/* Open the first of the token's keyslots the secret opens. */
static int open_keyslot(struct luks2_vol *v, const struct vol_token *t,
			int token_id, const uint8_t *secret, size_t len,
			void *arg, char *err, size_t errlen)
{
	struct vol_unlocked *out = arg;
	int r = -ENOENT;

	for (size_t j = 0; j < t->n_keyslots; j++) {
		r = luks2_unlock(v, t->keyslots[j], secret, len, &out->vk, err,
				 errlen);
		if (!r) {
			out->keyslot = t->keyslots[j];
			out->token_id = token_id;
			return 0;
		}
	}
	return r;
}

int vol_unlock(struct luks2_vol *v, const struct luks2_info *info,
	       const struct kms_options *ko, const struct vol_trust *trust,
	       struct vol_unlocked *out, struct vol_error *e)
{
	const struct vol_secret_use use = { open_keyslot, out };

	memset(out, 0, sizeof(*out));
	return vol_with_secret(v, info, ko, trust, &use, &out->token, e);
}

void vol_unlocked_free(struct vol_unlocked *u)
{
	crypto_key_free(u->vk);
	vol_token_free(&u->token);
	memset(u, 0, sizeof(*u));
}

int vol_unlock_test(const char *volume, const struct kms_options *ko,
		    const struct vol_trust *trust, struct vol_access *out,
		    struct vol_error *e)
{
	struct luks2_info info = { 0 };
	struct vol_unlocked u = { 0 };
	struct luks2_vol *v = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	memset(e, 0, sizeof(*e));
	r = vol_open_info(volume, VOL_OPEN_TRUST(trust), &v, &info, e);
	if (r)
		return r;
	r = vol_unlock(v, &info, ko, trust, &u, e);
	if (!r) {
		out->keyslot = u.keyslot;
		memcpy(out->key_arn, u.token.key_arn, sizeof(out->key_arn));
	}
	vol_unlocked_free(&u);
	luks2_close(v);
	return r;
}

/* ---- revocation checks -------------------------------------------------- */

/* The token's secret, unwrapped as a mount does (rp->lock held): 0, or
 * -errno with kerr said. */
static int reprove_unwrap(struct vol_reprove *rp, uint8_t **secret, size_t *n,
			  struct kms_error *kerr)
{
	struct kms_client *k = NULL;
	int r;

	memset(kerr, 0, sizeof(*kerr));
	r = vol_client_for_token(rp->ko, rp->token, &k, kerr);
	if (!r)
		r = vol_secret_unwrap(k, rp->token, rp->binding, secret, n,
				      kerr);
	kms_client_free(k);
	return r;
}

static enum fsd_access reprove_failed(const struct kms_error *kerr, char *why,
				      size_t len)
{
	kms_error_format(kerr, why, len);
	return kms_status_transient(kerr->status) ? FSD_ACCESS_UNAVAILABLE
						  : FSD_ACCESS_REFUSED;
}

static enum fsd_access reprove_check(void *arg, char *why, size_t len)
{
	struct vol_reprove *rp = arg;
	struct kms_error kerr;
	uint8_t *secret = NULL;
	size_t n;
	int r;

	pthread_mutex_lock(&rp->lock);
	r = reprove_unwrap(rp, &secret, &n, &kerr);
	pthread_mutex_unlock(&rp->lock);
	secmem_free(secret);
	return r ? reprove_failed(&kerr, why, len) : FSD_ACCESS_OK;
}

/* Every keyslot of token t the secret opens: their keys, up to max. */
struct opened {
	struct crypto_key **keys;
	unsigned max, *n;
};

static int open_keyslots(struct luks2_vol *v, const struct vol_token *t,
			 int token_id, const uint8_t *secret, size_t len,
			 void *arg, char *err, size_t errlen)
{
	struct opened *o = arg;

	(void)token_id;
	for (size_t j = 0; j < t->n_keyslots && *o->n < o->max; j++)
		if (!luks2_unlock(v, t->keyslots[j], secret, len,
				  &o->keys[*o->n], err, errlen))
			(*o->n)++;
	return *o->n ? 0 : -ENOENT;
}

/* The check, and with it the volume keys, found as a mount finds them: the
 * header read again (allow-list and the mount's trust applied), each live
 * aws-kms token tried with the encryption context of the header as it is
 * now, and every keyslot of the first that works opened — so a rotation
 * while mounted is followed.  The daemon recognises which keys it served;
 * the token that opened them is the one re-proved from now on. */
static enum fsd_access reprove_unlock(void *arg, struct crypto_key **keys,
				      unsigned max, unsigned *n, char *why,
				      size_t len)
{
	struct vol_reprove *rp = arg;
	struct opened o = { keys, max, n };
	const struct vol_secret_use use = { open_keyslots, &o };
	struct luks2_info info;
	struct luks2_vol *v = NULL;
	struct vol_token t, old;
	struct vol_error e;
	int r;

	*n = 0;
	r = vol_open_info(rp->volume,
			  LUKS2_OPEN_REENCRYPTING | VOL_OPEN_TRUST(rp->trust),
			  &v, &info, &e);
	if (!r)
		r = vol_with_secret(v, &info, rp->ko, rp->trust, &use, &t, &e);
	luks2_close(v);
	if (!r) {
		pthread_mutex_lock(&rp->lock);
		old = *rp->token;
		*rp->token = t;
		pthread_mutex_unlock(&rp->lock);
		vol_token_free(&old);
		return FSD_ACCESS_OK;
	}
	if (e.what == VOL_FAIL_UNWRAP || e.what == VOL_FAIL_KMS_CLIENT) {
		kms_error_format(&e.kms, why, len);
		return kms_status_transient(e.kms.status)
			       ? FSD_ACCESS_UNAVAILABLE
			       : FSD_ACCESS_REFUSED;
	}
	snprintf(why, len, "the volume cannot be opened again: %.400s",
		 e.what == VOL_FAIL_NO_TOKEN ? "it has no usable aws-kms token"
		 : e.message[0]		     ? e.message
					     : strerror(-r));
	return FSD_ACCESS_REFUSED;
}

void vol_reprove_hook(struct vol_reprove *r, struct fsd_reprove *out)
{
	out->check = reprove_check;
	out->unlock = reprove_unlock;
	out->arg = r;
	out->key = r->token->key_arn;
}
