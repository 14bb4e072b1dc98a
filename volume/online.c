/* SPDX-License-Identifier: Apache-2.0 */
/*
 * online.c — a mounted volume reencrypted while it is served (volume.h):
 * the job the daemon runs on its own thread (struct fsd_job), and the
 * preparation of a volume found being reencrypted when it is mounted.
 *
 * The command prepares the reencryption exactly as offline (volume/
 * reencrypt.c, steps 1-4 and the metadata of step 5) while the daemon
 * serves the old key, then asks the daemon to start.  The job then does
 * what a resume does: one token now opens both volume keys (libcryptsetup
 * 2.6 opens both with one passphrase), so it unwraps that token's secret
 * through KMS, recovers a block a crash cut off, gets both keys, hands the
 * new one and where the job stands to the data path (fs/rekey.c), and runs
 * libcryptsetup's reencryption, which calls back between blocks: there
 * the data path releases the block just done and holds the next.
 *
 * The revocation check follows the token that opens both keys (the one the
 * mount had may be gone from the header).  While the job runs it holds the
 * volume's header-change lock, so rotate, header-backup and another
 * reencrypt are refused with a clear message rather than racing
 * libcryptsetup's header writes.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "fs.h"
#include "internal.h"
#include "luks2.h"
#include "volume.h"

/* ---- readying a volume being reencrypted --------------------------------- */

struct ready_use {
	struct vol_rekey *out;
	const char *snapshot;
	bool read_only; /* write nothing: no recovery, no end */
};

/* With the secret of the token that opens both keys: recover, then both
 * keys (or nothing more when the recovery or the end finished it). */
static int ready_with(struct luks2_vol *v, const struct vol_token *t,
		      int token_id, const uint8_t *secret, size_t len,
		      void *arg, char *err, size_t errlen)
{
	struct ready_use *u = arg;
	struct vol_rekey *out = u->out;
	unsigned what = 0;
	int r;

	(void)t;
	(void)token_id;
	if (!u->read_only) {
		r = luks2_reencrypt_resume(v, secret, len, u->snapshot, &what,
					   err, errlen);
		if (r)
			return r;
	}
	out->recovered |= (what & LUKS2_RESUME_RECOVERED) != 0;
	out->finished = what & LUKS2_RESUME_FINISHED;
	if (out->finished)
		return 0;
	return luks2_reencrypt_keys(v, secret, len, &out->old_vk, &out->new_vk,
				    &out->done, err, errlen);
}

int vol_rekey_ready(const char *volume, const struct kms_options *ko,
		    bool read_only, const struct vol_trust *trust,
		    struct vol_rekey *out, struct vol_error *e)
{
	struct ready_use u = { .out = out,
			       .snapshot = out->snapshot,
			       .read_only = read_only };
	const struct vol_secret_use use = { ready_with, &u };
	struct luks2_info info = { 0 };
	bool cut_off;
	int r;

	memset(out, 0, sizeof(*out));
	memset(e, 0, sizeof(*e));
	r = vol_reencrypt_cut_off(volume, out->snapshot, sizeof(out->snapshot),
				  &cut_off, e);
	if (r)
		return r;
	if (cut_off && read_only)
		return vol_fail(
			e, -EROFS, false,
			"the end of the reencryption of %s was cut off: "
			"mount it read-write once to complete it",
			volume);
	if (cut_off) {
		r = vol_reencrypt_restore(volume, out->snapshot, trust, e);
		if (r)
			return r;
		out->recovered = true;
	}
	r = vol_open_info(volume,
			  LUKS2_OPEN_REENCRYPTING | VOL_OPEN_TRUST(trust),
			  &out->v, &info, e);
	if (r)
		return r;
	if (info.reencrypt == LUKS2_REENCRYPT_NONE) {
		vol_rekey_free(out);
		return vol_fail(e, -ENOENT, false,
				"%s is not being reencrypted", volume);
	}
	if (info.reencrypt == LUKS2_REENCRYPT_CRASHED && read_only) {
		vol_rekey_free(out);
		return vol_fail(
			e, -EROFS, false,
			"a crash cut off a block of the reencryption of "
			"%s: mount it read-write once to recover it",
			volume);
	}
	out->total = info.data_size;
	r = vol_with_secret(out->v, &info, ko, trust, &use, &out->token, e);
	if (r)
		vol_rekey_free(out);
	return r;
}

void vol_rekey_free(struct vol_rekey *k)
{
	luks2_close(k->v);
	crypto_key_free(k->old_vk);
	crypto_key_free(k->new_vk);
	vol_token_free(&k->token);
	k->v = NULL;
	k->old_vk = k->new_vk = NULL;
}

/* ---- the job --------------------------------------------------------------
 */

/* A failure of the job in one line, for the log and the status. */
static void say_failure(const char *name, int r, const struct vol_error *e,
			char *why, size_t len)
{
	char kms[512];

	switch (e->what) {
	case VOL_FAIL_MESSAGE:
		snprintf(why, len, "%s%s%s", e->message,
			 e->with_errno ? ": " : "",
			 e->with_errno ? strerror(-r) : "");
		return;
	case VOL_FAIL_KMS_CLIENT:
	case VOL_FAIL_UNWRAP:
	case VOL_FAIL_KMS:
		kms_error_format(&e->kms, kms, sizeof(kms));
		snprintf(why, len,
			 "%s: KMS did not unwrap the secret of %s: %s", name,
			 e->key_arn, kms);
		return;
	case VOL_FAIL_KEYSLOT:
		snprintf(why, len,
			 "%s: the secret from %s does not open its keyslots: "
			 "%s",
			 name, e->key_arn, e->message);
		return;
	case VOL_FAIL_NO_TOKEN:
		snprintf(why, len, "%s: no token opens the reencryption's keys",
			 name);
		return;
	case VOL_FAIL_BINDING:
		snprintf(why, len, "%s: %s", name, e->message);
		return;
	default:
		snprintf(why, len, "%s: %s", name, strerror(-r));
	}
}

struct step {
	struct fsd_rekey *rk;
	int r; /* what stopped it */
};

static int on_block(uint64_t done, uint64_t total, void *arg)
{
	struct step *s = arg;
	uint64_t next = total - done > LUKS2_HOTZONE_BYTES
				? done + LUKS2_HOTZONE_BYTES
				: total;

	s->r = fsd_rekey_step(s->rk, done, next);
	return s->r != 0;
}

/* The token the revocation check unwraps becomes t (whose old contents go
 * back to the caller). */
static void reprove_follow(struct vol_reprove *rp, struct vol_token *t)
{
	struct vol_token old;

	pthread_mutex_lock(&rp->lock);
	old = *rp->token;
	*rp->token = *t;
	*t = old;
	pthread_mutex_unlock(&rp->lock);
}

/* Where the reencryption stands on disk. */
static enum fsd_rekey_how on_disk(const struct vol_online *o, uint64_t *done)
{
	enum fsd_rekey_how how = FSD_REKEY_HELD_BROKEN;
	struct luks2_vol *v = NULL;
	struct luks2_info info;
	uint64_t total;
	char err[512];

	*done = 0;
	if (luks2_open_flags(o->volume,
			     LUKS2_OPEN_REENCRYPTING | VOL_OPEN_TRUST(o->trust),
			     &v, err, sizeof(err)) ||
	    luks2_info(v, &info))
		goto out;
	if (info.reencrypt == LUKS2_REENCRYPT_NONE) {
		*done = info.data_size;
		how = FSD_REKEY_ALL_NEW;
	} else if (info.reencrypt == LUKS2_REENCRYPT_CLEAN &&
		   !luks2_reencrypt_progress(v, done, &total)) {
		how = FSD_REKEY_STOPPED;
	}
out:
	luks2_close(v);
	return how;
}

static int job_run(void *arg, struct fsd_rekey *rk, char *why, size_t len)
{
	struct vol_online *o = arg;
	struct step s = { .rk = rk };
	struct vol_rekey k = o->ready;
	enum fsd_rekey_how how;
	struct vol_error e;
	uint64_t done;
	char err[512];
	int lock = -1, r;

	memset(&o->ready, 0, sizeof(o->ready));
	r = vol_lock(o->volume, VOL_LOCK_HEADER, &lock, &e);
	if (r) {
		snprintf(why, len,
			 "another command is changing the header of %s; "
			 "start the reencryption again when it is done",
			 o->name);
		goto out;
	}
	if (!k.v) {
		/* The header was prepared while mounted, maybe for another
		 * CMK than the one the mount is pinned to: any key may open
		 * the new keyslot here, as long as the old one is the key
		 * this mount serves (checked below) — proof that whoever
		 * prepared it held that key. */
		struct vol_trust job = {
			.insecure = o->trust && o->trust->insecure,
			.kmip_servers =
				o->trust ? o->trust->kmip_servers : NULL,
		};

		r = vol_rekey_ready(o->volume, o->ko, false, &job, &k, &e);
		if (r) {
			say_failure(o->name, r, &e, why, len);
			/* The header's token now gates the volume (the one
			 * the mount had is gone from it): KMS refusing it is
			 * a revocation. */
			if (e.what == VOL_FAIL_UNWRAP &&
			    !kms_status_transient(e.kms.status))
				r = -EKEYREVOKED;
			goto out;
		}
	}
	if (k.old_vk && !fsd_rekey_serves(rk, k.old_vk)) {
		snprintf(why, len,
			 "the volume key the header of %s reencrypts from is "
			 "not the one this mount serves: the header was "
			 "replaced; nothing was rewritten",
			 o->name);
		r = -EPERM;
		goto out;
	}
	if (k.token.key_arn[0])
		reprove_follow(o->reprove, &k.token);
	if (k.finished) {
		/* Its end, cut off, is complete now (or was): every byte is
		 * under the new key. */
		r = fsd_rekey_begin(rk, NULL, k.total, k.total, why, len);
		if (!r)
			fsd_rekey_end(rk, FSD_REKEY_ALL_NEW, k.total);
		goto out;
	}
	/* The daemon already serves the old key (the header's: the
	 * command that started this unlocked it), and after a mount that
	 * readied it, the new one too. */
	crypto_key_free(k.old_vk);
	k.old_vk = NULL;
	r = fsd_rekey_begin(rk, k.new_vk, k.done, k.total, why, len);
	k.new_vk = NULL;
	if (r)
		goto out;
	r = luks2_reencrypt_run(k.v, on_block, &s, err, sizeof(err));
	if (r == -EINTR && s.r == -EINTR) {
		r = -EINTR; /* asked to stop */
	} else if (s.r == -EIO) {
		snprintf(why, len,
			 "libcryptsetup left the block the daemon held; "
			 "stopped to protect the data");
		r = -EIO;
	} else if (r) {
		snprintf(why, len, "%s", err);
	}
	/* What the data path may serve now comes from the header on disk:
	 * after a failure, what libcryptsetup holds in memory may be ahead
	 * of it.  A block cut off in the middle stays held (its I/O fails)
	 * until a restart recovers it. */
	vol_rekey_free(&k);
	how = on_disk(o, &done);
	if (how == FSD_REKEY_ALL_NEW)
		r = 0; /* complete on disk, whatever came after */
	if (!r && how != FSD_REKEY_ALL_NEW) {
		snprintf(why, len,
			 "libcryptsetup ended, but the header of %s does not "
			 "say the reencryption is complete",
			 o->name);
		r = -EIO;
	}
	fsd_rekey_end(rk, how, done);
out:
	vol_rekey_free(&k);
	if (lock >= 0)
		close(lock);
	return r;
}

void vol_online_job(struct vol_online *o, struct fsd_job *job)
{
	job->run = job_run;
	job->arg = o;
}
