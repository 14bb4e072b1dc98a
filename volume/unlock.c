/* SPDX-License-Identifier: Apache-2.0 */
/*
 * unlock.c — opening a volume through its key: each live token (aws-kms
 * or kmip) in turn has its secret unwrapped by the key's service (Decrypt
 * bound to the volume's own header) and handed to what the caller does
 * with it (open a keyslot, add one...); and the same unwrap, repeated while
 * mounted, as the daemon's revocation check.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "fs.h"
#include "internal.h"
#include "luks2.h"
#include "volume.h"

/* Is s (n bytes) an element of the comma-separated list (names hold no
 * comma), compared whole? */
static bool listed(const char *list, const char *s, size_t n)
{
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");

		if (len == n && !strncmp(p, s, n))
			return true;
		p += len;
		p += *p == ',';
	}
	return false;
}

/* Is the key arn pinned by trust, or nothing pinned? */
static bool key_listed(const struct vol_trust *trust, const char *arn)
{
	return !trust || !trust->key_arn ||
	       listed(trust->key_arn, arn, strlen(arn));
}

/* Is the server of the KMIP key arn one trust lists, or none listed (or
 * arn not KMIP's)? */
static bool server_listed(const struct vol_trust *trust, const char *arn)
{
	char host[256], server[300];
	unsigned port;

	if (!trust || !trust->kmip_servers ||
	    vol_key_kind_of(arn) != VOL_KEY_KMIP)
		return true;
	if (!vol_kmip_name(arn, host, &port, NULL))
		return false;
	snprintf(server, sizeof(server), "%s:%u", host, port);
	return listed(trust->kmip_servers, server, strlen(server));
}

bool vol_trusted(const struct vol_trust *trust, const char *arn)
{
	return key_listed(trust, arn) && server_listed(trust, arn);
}

bool vol_token_live(const struct luks2_info *info, const struct vol_token *t)
{
	for (size_t j = 0; j < t->n_keyslots; j++)
		for (unsigned i = 0; i < info->n_keyslots; i++)
			if (info->keyslots[i] == t->keyslots[j])
				return true;
	return false;
}

/* Why a KMIP server did not unwrap (VOL_FAIL_UNWRAP). */
static void kmip_reason(const struct vol_error *e, char *out, size_t len)
{
	switch (e->kms.status) {
	case KMS_ACCESS_DENIED:
	case KMS_INVALID_STATE:
		snprintf(out, len,
			 "the KMIP server refuses this client the key %s (it "
			 "was revoked, destroyed or deactivated, or this "
			 "client's certificate is not allowed to use it)",
			 e->key_arn);
		break;
	case KMS_NOT_FOUND:
		snprintf(out, len, "the KMIP server has no key %s (destroyed?)",
			 e->key_arn);
		break;
	case KMS_INVALID_CIPHERTEXT:
		snprintf(out, len,
			 "its wrapped secret does not decrypt under %s bound "
			 "to this header (%s): the token was copied from "
			 "another volume or tampered with",
			 e->key_arn, e->message);
		break;
	default:
		snprintf(out, len,
			 "the KMIP server did not unwrap the secret "
			 "of %s",
			 e->key_arn);
	}
}

void vol_failure_reason(const struct vol_error *e, char *out, size_t len)
{
	switch (e->what) {
	case VOL_FAIL_UNWRAP:
		break;
	case VOL_FAIL_KMS_CLIENT:
		if (vol_key_kind_of(e->key_arn) == VOL_KEY_KMIP)
			snprintf(out, len,
				 "no connection to the KMIP server of "
				 "the key %s",
				 e->key_arn);
		else
			snprintf(out, len,
				 "no KMS client for the key %s (region %s)",
				 e->key_arn, e->region);
		return;
	case VOL_FAIL_KEYSLOT:
		snprintf(out, len,
			 "the secret from %s does not open its keyslot: %s",
			 e->key_arn, e->message);
		return;
	case VOL_FAIL_BINDING:
		snprintf(out, len, "%s; %s was not asked", e->message,
			 vol_key_kind_of(e->key_arn) == VOL_KEY_KMIP
				 ? "the KMIP server"
				 : "KMS");
		return;
	default:
		snprintf(out, len, "%s", e->message);
		return;
	}
	if (vol_key_kind_of(e->key_arn) == VOL_KEY_KMIP) {
		kmip_reason(e, out, len);
		return;
	}
	switch (e->kms.status) {
	case KMS_ACCESS_DENIED:
		snprintf(out, len,
			 "the key %s does not let this host decrypt (key "
			 "policy or grant changed, or not shared with this "
			 "account)",
			 e->key_arn);
		break;
	case KMS_DISABLED:
		snprintf(out, len, "the key %s is disabled", e->key_arn);
		break;
	case KMS_INVALID_STATE:
		snprintf(out, len,
			 "the key %s is pending deletion or otherwise unusable",
			 e->key_arn);
		break;
	case KMS_NOT_FOUND:
		snprintf(out, len,
			 "the key %s does not exist in region %s (deleted, or "
			 "the wrong region)",
			 e->key_arn, e->region);
		break;
	case KMS_INVALID_CIPHERTEXT:
	case KMS_INCORRECT_KEY:
		snprintf(out, len,
			 "its wrapped secret does not decrypt under %s bound "
			 "to this header (%s): the header does not match what "
			 "the key was bound to (the header was changed, or the "
			 "token was copied from another volume or tampered "
			 "with)",
			 e->key_arn, e->message);
		break;
	default:
		snprintf(out, len, "KMS did not unwrap the secret of %s",
			 e->key_arn);
	}
}

/* Token tried: what opened the volume or the failure te, kept in e's
 * list; the first failure is also what e explains when nothing opens. */
static void attempted(struct vol_error *e, int token, const char *key_arn,
		      const struct vol_error *te)
{
	struct vol_attempt *a;
	char kms[512];
	size_t n;

	if (te && e->what == VOL_FAIL_NONE) {
		e->what = te->what;
		e->kms = te->kms;
		memcpy(e->key_arn, te->key_arn, sizeof(e->key_arn));
		memcpy(e->region, te->region, sizeof(e->region));
		memcpy(e->message, te->message, sizeof(e->message));
	}
	if (e->n_attempts == VOL_ATTEMPTS_MAX)
		return;
	a = &e->attempts[e->n_attempts++];
	memset(a, 0, sizeof(*a));
	a->token = token;
	a->keyslot = -1;
	snprintf(a->key_arn, sizeof(a->key_arn), "%s", key_arn);
	if (!te)
		return;
	a->what = te->what;
	a->kms = te->kms.status;
	vol_failure_reason(te, a->reason, sizeof(a->reason));
	if (te->what == VOL_FAIL_UNWRAP || te->what == VOL_FAIL_KMS_CLIENT) {
		kms_error_format(&te->kms, kms, sizeof(kms));
		n = strlen(a->reason);
		snprintf(a->reason + n, sizeof(a->reason) - n, ": %s", kms);
	}
}

/* A failure of token t: e said. */
static int token_failed(struct vol_error *e, int r, enum vol_failure what,
			const struct vol_token *t, const struct kms_error *kerr,
			const char *message)
{
	e->what = what;
	if (kerr)
		e->kms = *kerr;
	snprintf(e->message, sizeof(e->message), "%s", message ? message : "");
	snprintf(e->key_arn, sizeof(e->key_arn), "%s", t->key_arn);
	snprintf(e->region, sizeof(e->region), "%s", t->region);
	return r;
}

int vol_token_secret(struct luks2_vol *v, const struct luks2_info *info,
		     int token_id, const struct kms_options *ko,
		     const struct vol_trust *trust, struct vol_token *t,
		     uint8_t **secret, size_t *len, struct vol_error *e)
{
	struct vol_kms *k = NULL;
	struct vol_binding b;
	struct kms_error kerr;
	const char *json;
	char err[512];
	int r;

	memset(t, 0, sizeof(*t));
	memset(e, 0, sizeof(*e));
	*secret = NULL;
	if (luks2_token_json(v, token_id, &json))
		return 1;
	r = vol_token_parse(json, t, err, sizeof(err));
	if (r == -EINVAL) {
		/* A token of ours that is malformed: said, never used. */
		char why[512];

		snprintf(why, sizeof(why), "its token %d is refused: %.400s",
			 token_id, err);
		return token_failed(e, r, VOL_FAIL_BINDING, t, NULL, why);
	}
	if (r == -ENOMSG)
		return 1; /* not ours */
	if (r)
		return token_failed(e, r, VOL_FAIL_MESSAGE, t, NULL,
				    "cannot read a token");
	if (!vol_token_live(info, t) ||
	    (trust && trust->skip_key_arn &&
	     !strcmp(trust->skip_key_arn, t->key_arn))) {
		vol_token_free(t);
		return 1;
	}
	/* Bound to this header, as it is now: what the token's copy says
	 * is only compared, to say early what was changed. */
	vol_binding_of(info, &b);
	r = vol_token_matches(t, &b, err, sizeof(err));
	if (!r && !server_listed(trust, t->key_arn)) {
		snprintf(err, sizeof(err),
			 "its token names the KMIP server %.120s:%u, not one "
			 "of %.200s (CMKFS_KMIP_SERVERS, the servers this host "
			 "is told to use): the header may have been replaced",
			 t->host, t->port, trust->kmip_servers);
		r = -EPERM;
	} else if (!r && !key_listed(trust, t->key_arn)) {
		snprintf(err, sizeof(err),
			 "its token names the key %.200s, not %.200s "
			 "(the key%s this host is told to trust): the header "
			 "may have been replaced",
			 t->key_arn, trust->key_arn,
			 strchr(trust->key_arn, ',') ? "s" : "");
		r = -EPERM;
	}
	if (r) {
		token_failed(e, r, VOL_FAIL_BINDING, t, NULL, err);
		goto out;
	}
	r = vol_kms_for_token(ko, t, &k, &kerr);
	if (r) {
		token_failed(e, r, VOL_FAIL_KMS_CLIENT, t, &kerr, NULL);
		goto out;
	}
	r = vol_secret_unwrap(k, t, &b, secret, len, &kerr);
	if (r) {
		/* What it was bound to, for the message. */
		snprintf(err, sizeof(err), "volume %s%s%s", b.uuid,
			 t->segment_bound ? ", data segment " : "",
			 t->segment_bound ? b.segment : "");
		token_failed(e, r, VOL_FAIL_UNWRAP, t, &kerr, err);
	}
	vol_kms_free(k);
out:
	if (r)
		vol_token_free(t);
	return r;
}

/* Try token number i of the volume: unwrap its secret and hand it to use.
 * 0 when use succeeded (*t filled), 1 when it is not a live aws-kms token,
 * else -errno with the failure in e's attempts. */
static int try_token(struct luks2_vol *v, const struct luks2_info *info,
		     unsigned i, const struct kms_options *ko,
		     const struct vol_trust *trust,
		     const struct vol_secret_use *use, struct vol_token *t,
		     struct vol_error *e)
{
	struct vol_error te;
	uint8_t *secret = NULL;
	char err[512];
	size_t len;
	int r;

	r = vol_token_secret(v, info, info->tokens[i], ko, trust, t, &secret,
			     &len, &te);
	if (r > 0)
		return r;
	if (!r) {
		r = use->fn(v, t, info->tokens[i], secret, len, use->arg, err,
			    sizeof(err));
		if (r)
			token_failed(&te, r, VOL_FAIL_KEYSLOT, t, NULL, err);
	}
	secmem_free(secret);
	attempted(e, info->tokens[i], r ? te.key_arn : t->key_arn,
		  r ? &te : NULL);
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
		if (!r) {
			/* Opened: the failures before are notes, not the
			 * error. */
			e->what = VOL_FAIL_NONE;
			return 0;
		}
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
	const struct vol_secret_use use = { open_keyslot, &u };
	struct luks2_vol *v = NULL;
	int r, first = 0;

	memset(out, 0, sizeof(*out));
	memset(e, 0, sizeof(*e));
	out->keyslot = -1;
	r = vol_open_info(volume, VOL_OPEN_TRUST(trust), &v, &info, e);
	if (r)
		return r;
	/* Every token, not only until one works: each CMK is a door, and
	 * this says which ones open now. */
	for (unsigned i = 0; i < info.n_tokens; i++) {
		r = try_token(v, &info, i, ko, trust, &use, &u.token, e);
		if (!r) {
			e->attempts[e->n_attempts - 1].keyslot = u.keyslot;
			if (out->keyslot < 0) {
				out->keyslot = u.keyslot;
				memcpy(out->key_arn, u.token.key_arn,
				       sizeof(out->key_arn));
			}
		} else if (r < 0 && !first) {
			first = r;
		}
		vol_unlocked_free(&u);
	}
	luks2_close(v);
	if (out->keyslot >= 0) {
		e->what = VOL_FAIL_NONE;
		return 0;
	}
	if (first)
		return first;
	e->what = VOL_FAIL_NO_TOKEN;
	return -ENOENT;
}

/* ---- revocation checks -------------------------------------------------- */

/* Is st, the answer about token t's key, a refusal (else an outage)?  For
 * a KMIP key only what the server says of the key or of this client is:
 * not found, not allowed, not Active, a wrapping that does not verify.  A
 * server's odd answer, or a setting of this host's (a client key made
 * readable, a certificate being replaced), is not the customer taking the
 * key away. */
static bool refusal(const struct vol_token *t, enum kms_status st)
{
	if (t->kind != VOL_KEY_KMIP)
		return !kms_status_transient(st);
	switch (st) {
	case KMS_ACCESS_DENIED:
	case KMS_NOT_FOUND:
	case KMS_INVALID_STATE:
	case KMS_INVALID_CIPHERTEXT:
		return true;
	default:
		return false;
	}
}

/* Token t's secret, unwrapped as a mount does and wiped at once: whether
 * KMS still grants access through its key, with why said when not (what
 * KMS answered; where the answer is not about the key the log names,
 * rp->about, "its key KEY: " first). */
static enum fsd_access reprove_one(const struct vol_reprove *rp,
				   const struct vol_token *t, char *why,
				   size_t len, char *rid, size_t rlen)
{
	struct vol_kms *k = NULL;
	struct kms_error kerr;
	uint8_t *secret = NULL;
	char line[600];
	size_t n;
	int r;

	memset(&kerr, 0, sizeof(kerr));
	r = vol_kms_for_token(rp->ko, t, &k, &kerr);
	if (!r)
		r = vol_secret_unwrap(k, t, rp->binding, &secret, &n, &kerr);
	vol_kms_free(k);
	secmem_free(secret);
	snprintf(rid, rlen, "%s", r ? kerr.request_id : "");
	if (!r)
		return FSD_ACCESS_OK;
	kms_error_format(&kerr, line, sizeof(line));
	if (t == rp->token || rp->every_key)
		snprintf(why, len, "%s", line);
	else
		snprintf(why, len, "its key %.255s: %.500s", t->key_arn, line);
	return refusal(t, kerr.status) ? FSD_ACCESS_REFUSED
				       : FSD_ACCESS_UNAVAILABLE;
}

/* The doors of rp (rp->lock held): the key that opened the volume, then
 * the others.  Every one must grant access (every_key), or any one. */
static enum fsd_access reprove_doors(struct vol_reprove *rp, char *why,
				     size_t len)
{
	enum fsd_access a, worst = FSD_ACCESS_OK;
	char one[800], rid[sizeof(rp->request_id)];
	bool unavailable = false;

	snprintf(rp->about, sizeof(rp->about), "%s", rp->token->key_arn);
	rp->request_id[0] = 0;
	for (unsigned i = 0; i <= rp->n_doors; i++) {
		const struct vol_token *t = i ? &rp->doors[i - 1] : rp->token;

		a = reprove_one(rp, t, one, sizeof(one), rid, sizeof(rid));
		if (rp->every_key) {
			if (a == FSD_ACCESS_OK || worst == FSD_ACCESS_REFUSED)
				continue;
			/* The first refusal decides; an outage is kept
			 * until one comes. */
			if (worst == FSD_ACCESS_OK || a == FSD_ACCESS_REFUSED) {
				snprintf(why, len, "%s", one);
				snprintf(rp->request_id, sizeof(rp->request_id),
					 "%s", rid);
				snprintf(rp->about, sizeof(rp->about), "%s",
					 t->key_arn);
			}
			worst = a;
			continue;
		}
		if (a == FSD_ACCESS_OK) {
			/* One door is enough; the first key's answer said. */
			if (i) {
				char first[800];

				snprintf(first, sizeof(first), "%s", why);
				snprintf(why, len,
					 "%.255s: %.500s; access holds through "
					 "%.255s",
					 rp->token->key_arn, first, t->key_arn);
			}
			return FSD_ACCESS_OK;
		}
		if (!i) {
			snprintf(why, len, "%s", one);
			snprintf(rp->request_id, sizeof(rp->request_id), "%s",
				 rid);
		}
		unavailable |= a == FSD_ACCESS_UNAVAILABLE;
	}
	if (rp->every_key)
		return worst;
	if (rp->n_doors) {
		size_t n = strlen(why);

		snprintf(why + n, len - n,
			 " (and the volume's %u other key%s: "
			 "%s)",
			 rp->n_doors, rp->n_doors > 1 ? "s" : "",
			 unavailable ? "not all reachable" : "refused too");
	}
	return unavailable ? FSD_ACCESS_UNAVAILABLE : FSD_ACCESS_REFUSED;
}

static enum fsd_access reprove_check(void *arg, char *why, size_t len)
{
	struct vol_reprove *rp = arg;
	enum fsd_access a;

	pthread_mutex_lock(&rp->lock);
	a = reprove_doors(rp, why, len);
	pthread_mutex_unlock(&rp->lock);
	return a;
}

/* Does a keyslot of token t open to the volume key arg (the one served)? */
static int opens_served(struct luks2_vol *v, const struct vol_token *t,
			int token_id, const uint8_t *secret, size_t len,
			void *arg, char *err, size_t errlen)
{
	const struct crypto_key *vk = *(const struct crypto_key **)arg;
	int r = -ENOENT;

	(void)token_id;
	for (size_t j = 0; j < t->n_keyslots; j++) {
		struct crypto_key *k = NULL;
		bool same;

		r = luks2_unlock(v, t->keyslots[j], secret, len, &k, err,
				 errlen);
		if (r)
			continue;
		same = crypto_key_len(k) == crypto_key_len(vk) &&
		       secmem_equal(crypto_key_bytes(k), crypto_key_bytes(vk),
				    crypto_key_len(k));
		crypto_key_free(k);
		if (same)
			return 0;
		snprintf(err, errlen,
			 "its keyslot %d opens another volume key than the "
			 "one served",
			 t->keyslots[j]);
		r = -EPERM;
	}
	return r;
}

/* Is arn among the first n of keys? */
static bool among(const struct vol_token *keys, unsigned n, const char *arn)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(keys[i].key_arn, arn))
			return true;
	return false;
}

int vol_other_keys(struct luks2_vol *v, const struct luks2_info *info,
		   const struct kms_options *ko, const struct vol_trust *trust,
		   const char *opened_by, const struct crypto_key *vk,
		   struct vol_token *out, unsigned max, unsigned *n,
		   struct vol_error *e)
{
	struct vol_trust tr = trust ? *trust : (struct vol_trust){ 0 };
	const struct vol_secret_use use = { opens_served, &vk };
	char failed[32][256];
	unsigned n_failed = 0;
	int r, first = 0, first_of[32];

	memset(e, 0, sizeof(*e));
	*n = 0;
	tr.skip_key_arn = opened_by;
	for (unsigned i = 0; i < info->n_tokens; i++) {
		struct vol_token t;
		const char *json;
		char arn[256] = "";
		bool known = false;

		/* One proof per key: a key whose token opened is done. */
		if (!luks2_token_json(v, info->tokens[i], &json) &&
		    !vol_token_parse(json, &t, NULL, 0)) {
			memcpy(arn, t.key_arn, sizeof(arn));
			known = among(out, *n, arn);
			vol_token_free(&t);
		}
		if (known)
			continue;
		r = try_token(v, info, i, ko, &tr, &use, &t, e);
		if (r < 0 && n_failed < 32) {
			memcpy(failed[n_failed], arn, sizeof(arn));
			first_of[n_failed++] = r;
		}
		if (r)
			continue;
		if (*n == max) {
			vol_token_free(&t);
			return vol_fail(e, -E2BIG, false,
					"the volume opens through more than "
					"%u keys, more than cmkfs follows",
					max + 1);
		}
		out[(*n)++] = t;
	}
	/* A key fails when none of its tokens opened. */
	for (unsigned i = 0; i < n_failed && !first; i++)
		if (!among(out, *n, failed[i]))
			first = first_of[i];
	return first;
}

int vol_reprove_doors(struct vol_reprove *rp, struct luks2_vol *v,
		      const struct luks2_info *info,
		      const struct crypto_key *vk, struct vol_error *e)
{
	int r = vol_other_keys(v, info, rp->ko, rp->trust, rp->token->key_arn,
			       vk, rp->doors, VOL_DOORS_MAX, &rp->n_doors, e);

	if (r && (rp->every_key || r == -ENOMEM))
		return r;
	e->what = VOL_FAIL_NONE;
	return 0;
}

void vol_reprove_free(struct vol_reprove *rp)
{
	for (unsigned i = 0; i < rp->n_doors; i++)
		vol_token_free(&rp->doors[i]);
	rp->n_doors = 0;
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
	rp->request_id[0] = 0;
	r = vol_open_info(rp->volume,
			  LUKS2_OPEN_REENCRYPTING | VOL_OPEN_TRUST(rp->trust),
			  &v, &info, &e);
	if (!r)
		r = vol_with_secret(v, &info, rp->ko, rp->trust, &use, &t, &e);
	luks2_close(v);
	if (!r) {
		enum fsd_access a;

		pthread_mutex_lock(&rp->lock);
		/* The keys the checks ask about stay those of the mount: a
		 * token of another of them (it opened while the first is
		 * still refused) changes nothing, one of a key the mount did
		 * not know (a rotation while mounted) takes the first's
		 * place. */
		if (among(rp->doors, rp->n_doors, t.key_arn)) {
			old = t;
		} else {
			old = *rp->token;
			*rp->token = t;
		}
		snprintf(rp->about, sizeof(rp->about), "%s", t.key_arn);
		/* Every key must grant access again, not only one. */
		a = rp->every_key ? reprove_doors(rp, why, len) : FSD_ACCESS_OK;
		pthread_mutex_unlock(&rp->lock);
		vol_token_free(&old);
		if (a != FSD_ACCESS_OK) {
			while (*n) {
				crypto_key_free(keys[--*n]);
				keys[*n] = NULL;
			}
		}
		return a;
	}
	if (e.what == VOL_FAIL_UNWRAP || e.what == VOL_FAIL_KMS_CLIENT) {
		kms_error_format(&e.kms, why, len);
		snprintf(rp->request_id, sizeof(rp->request_id), "%s",
			 e.kms.request_id);
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

static const char *reprove_about(void *arg)
{
	const struct vol_reprove *rp = arg;

	return rp->about;
}

static const char *reprove_request_id(void *arg)
{
	const struct vol_reprove *rp = arg;

	return rp->request_id;
}

void vol_reprove_hook(struct vol_reprove *r, struct fsd_reprove *out)
{
	out->check = reprove_check;
	out->unlock = reprove_unlock;
	out->arg = r;
	out->key = r->token->key_arn;
	out->about = reprove_about;
	out->request_id = reprove_request_id;
}
