/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mount.c — a volume served by the daemon (volume.h, vol_mount_*): locked
 * as mounted, unlocked through KMS in the serving process, its key handed
 * to fs/ with the revocation check, and its blank mark dropped once
 * something may have been written.  Forking, readiness reports and the
 * words are the caller's.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "internal.h"
#include "luks2.h"
#include "volume.h"

struct vol_mount {
	char name[PATH_MAX];   /* as the caller named it, for messages */
	char volume[PATH_MAX]; /* absolute */
	int lock_fd;
	const struct vol_trust *trust; /* the caller's, outliving m */
	struct luks2_vol *v;
	struct luks2_info info;
};

int vol_mount_open(const char *volume, const struct vol_trust *trust,
		   struct vol_mount **out, struct vol_error *e)
{
	struct vol_mount *m;
	struct fsd_state st;
	int r;

	*out = NULL;
	memset(e, 0, sizeof(*e));
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->lock_fd = -1;
	m->trust = trust;
	snprintf(m->name, sizeof(m->name), "%s", volume);
	if (!realpath(volume, m->volume)) {
		r = vol_fail(e, -errno, true, "cannot mount %s", volume);
		goto fail;
	}
	/* Held by the daemon (the descriptor is inherited) for as long as it
	 * serves: reencrypt and header-restore wait for it to go. */
	r = vol_lock(m->volume, VOL_LOCK_MOUNTED, &m->lock_fd, e);
	if (r)
		goto fail;
	/* One being reencrypted is served too (vol_mount_serve). */
	r = vol_open_info(volume,
			  LUKS2_OPEN_REENCRYPTING | VOL_OPEN_TRUST(trust),
			  &m->v, &m->info, e);
	if (r)
		goto fail;
	r = fsd_state_by_uuid(m->info.uuid, &st);
	if (r == 0 && st.alive) {
		r = vol_fail(e, -EBUSY, false,
			     "%s is already mounted on %s (daemon pid %d)",
			     volume, st.mountpoint, (int)st.pid);
		goto fail;
	}
	if (r != -ENOENT) {
		r = vol_fail(e, -EBUSY, false,
			     "%s has the state of a daemon that died or is "
			     "still starting in %s/%s; run 'cmkfs umount %s' "
			     "first",
			     volume, fsd_runtime_root(), m->info.uuid, volume);
		goto fail;
	}
	*out = m;
	return 0;
fail:
	vol_mount_close(m);
	return r;
}

const struct luks2_info *vol_mount_info(const struct vol_mount *m)
{
	return &m->info;
}

void vol_mount_close(struct vol_mount *m)
{
	if (!m)
		return;
	luks2_close(m->v);
	if (m->lock_fd >= 0)
		close(m->lock_fd);
	free(m);
}

/* The volume has been written: it no longer carries the blank mark. */
static int clear_blank(struct luks2_vol *v, const char *volume,
		       struct vol_error *e)
{
	char err[512];
	int r = luks2_blank_clear(v, err, sizeof(err));

	return r ? vol_fail(e, r, false,
			    "cannot clear the blank mark of %s: %s", volume,
			    err)
		 : 0;
}

struct serving {
	struct vol_mount *m;
	const struct vol_mount_params *p;
	bool clear_blank; /* the filesystem is made: drop the blank mark */
	bool ready;
};

static void on_ready(void *arg)
{
	struct serving *s = arg;
	struct vol_error e = { .message = "" };
	char err[512];

	s->ready = true;
	if (s->clear_blank) {
		struct luks2_vol *v = NULL;

		/* A mark left behind would let a later mount format a volume
		 * whose filesystem signature is gone: the caller says so. */
		if (luks2_open_flags(s->m->volume, VOL_OPEN_TRUST(s->m->trust),
				     &v, err, sizeof(err)))
			snprintf(e.message, sizeof(e.message), "%s", err);
		else
			clear_blank(v, s->m->name, &e);
		luks2_close(v);
	}
	if (s->p->ready)
		s->p->ready(s->p->ready_arg, e.message[0] ? e.message : NULL);
}

/*
 * A volume being reencrypted (or whose reencryption's end was cut off) is
 * readied before any I/O: a block a crash cut off is recovered, an end cut
 * off completed; then it is served with both keys and the job continues
 * (online.c).  0 with *rekey set when it is served so, or unlocked as any
 * other (*rekey false) when nothing was left to do.
 */
static int ready_reencrypting(struct vol_mount *m,
			      const struct vol_mount_params *p,
			      struct vol_online *o, struct vol_unlocked *u,
			      struct fsd_params *fp, bool *rekey,
			      struct vol_error *e)
{
	struct vol_rekey *k = &o->ready;
	int r;

	luks2_close(m->v);
	m->v = NULL;
	r = vol_rekey_ready(m->volume, p->ko, p->read_only, m->trust, k, e);
	if (r)
		return r;
	if (k->finished) {
		fp->notice = "the end of its reencryption, cut off, is "
			     "complete";
		vol_rekey_free(k);
		r = vol_open_info(m->volume, VOL_OPEN_TRUST(m->trust), &m->v,
				  &m->info, e);
		return r ? r
			 : vol_unlock(m->v, &m->info, p->ko, m->trust, u, e);
	}
	fp->notice = k->recovered ? "recovered the block of its reencryption "
				    "a crash cut off, before any I/O"
				  : NULL;
	if (luks2_is_blank(k->v) && !p->read_only)
		return vol_fail(e, -EBUSY, false,
				"%s was never written and its reencryption is "
				"unfinished: finish it first (`cmkfs "
				"reencrypt --resume %s`) or mount it "
				"--read-only",
				m->name, m->name);
	*rekey = true;
	u->vk = k->old_vk;
	fp->key_new = k->new_vk;
	k->old_vk = k->new_vk = NULL;
	fp->rekey_done = k->done;
	/* The token that opens both keys is the one re-proved. */
	u->token = k->token;
	memset(&k->token, 0, sizeof(k->token));
	return 0;
}

/* The volume's other CMKs, proven to open the key the mount serves, for
 * the revocation checks (rp->token opened it); said in one line, with the
 * key that opened it and each that does not and why.  With every_key,
 * each must. */
static int other_keys(struct luks2_vol *v, const struct luks2_info *info,
		      struct vol_reprove *rp, const struct crypto_key *vk,
		      char *said, size_t len, struct vol_error *e)
{
	size_t n;
	int r;

	r = vol_reprove_doors(rp, v, info, vk, e);
	if (r)
		return r;
	n = (size_t)snprintf(said, len, "unlocked through %s",
			     rp->token->key_arn);
	for (unsigned i = 0; i < e->n_attempts && n < len; i++) {
		const struct vol_attempt *a = &e->attempts[i];

		if (a->what == VOL_FAIL_NONE)
			n += (size_t)snprintf(said + n, len - n,
					      "; its key %s opens it too",
					      a->key_arn);
		else
			n += (size_t)snprintf(said + n, len - n,
					      "; its key %s does not open it: "
					      "%s",
					      a->key_arn, a->reason);
	}
	if (rp->n_doors && n < len)
		snprintf(said + n, len - n, "; KMS refusing %s revokes access",
			 rp->every_key ? "any one of its keys"
				       : "every one of its keys");
	return 0;
}

int vol_mount_serve(struct vol_mount *m, const struct vol_mount_params *p,
		    bool *was_ready, struct vol_error *e)
{
	struct serving s = { .m = m, .p = p };
	const struct luks2_info *info = &m->info;
	struct vol_online online = { .volume = m->volume,
				     .name = m->name,
				     .ko = p->ko,
				     .trust = m->trust };
	struct fsd_params fp = { 0 };
	struct vol_unlocked u = { 0 };
	struct vol_reprove reprove = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct vol_binding binding;
	bool rekey = false;
	char err[1024], doors_said[2048] = "", notice[2200];
	int r;

	*was_ready = false;
	memset(e, 0, sizeof(*e));
	/* The token that unlocked it is what the revocation checks unwrap,
	 * with the volume's other CMKs; it lives until the daemon ends. */
	reprove.token = &u.token;
	vol_binding_of(info, &binding);
	reprove.binding = &binding;
	reprove.ko = p->ko;
	reprove.volume = m->volume;
	reprove.trust = m->trust;
	reprove.every_key = p->revoke_every_key;
	if (info->reencrypt != LUKS2_REENCRYPT_NONE ||
	    vol_reencrypt_end_cut_off(m->volume))
		r = ready_reencrypting(m, p, &online, &u, &fp, &rekey, e);
	else
		r = vol_unlock(m->v, info, p->ko, m->trust, &u, e);
	if (!r && m->v) {
		r = other_keys(m->v, info, &reprove, u.vk, doors_said,
			       sizeof(doors_said), e);
	} else if (!r) {
		/* In the middle of a reencryption: the other keys' tokens
		 * open its keyslot of the current key too. */
		struct luks2_info ri;

		r = luks2_info(online.ready.v, &ri)
			    ? vol_fail(e, -EIO, false,
				       "cannot read the header of %s", m->name)
			    : other_keys(online.ready.v, &ri, &reprove, u.vk,
					 doors_said, sizeof(doors_said), e);
	}
	if (!r) {
		snprintf(notice, sizeof(notice), "%s%s%s",
			 fp.notice ? fp.notice : "", fp.notice ? "; " : "",
			 doors_said);
		fp.notice = notice;
	}
	if (r) {
		vol_reprove_free(&reprove);
		vol_rekey_free(&online.ready);
		vol_unlocked_free(&u);
		return r;
	}
	/* Never written: the mount may make its filesystem.  A raw mount
	 * may write anything, so the mark goes before it serves; a filesystem
	 * mount drops it once the filesystem is there. */
	fp.mkfs = !rekey && luks2_is_blank(m->v) ? "blank"
		  : p->mkfs			 ? "no filesystem and --mkfs"
						 : NULL;
	if (!r && fp.mkfs && !p->read_only && !rekey) {
		if (p->raw)
			r = clear_blank(m->v, m->name, e);
		else
			s.clear_blank = true;
	}
	luks2_close(m->v);
	m->v = NULL;
	if (r) {
		vol_reprove_free(&reprove);
		vol_rekey_free(&online.ready);
		vol_unlocked_free(&u);
		return r;
	}
	fp.volume = m->volume;
	fp.target = p->target;
	fp.uuid = info->uuid;
	fp.cipher = strncmp(info->cipher, "cipher_null", 11) ? info->cipher
							     : "cipher_null";
	fp.data_offset = info->data_offset;
	fp.data_size = info->data_size;
	fp.sector_size = info->sector_size;
	fp.key = u.vk; /* ownership moves to the daemon */
	u.vk = NULL;
	vol_reprove_hook(&reprove, &fp.reprove);
	online.reprove = &reprove;
	/* A read-only mount writes nothing: it serves both keys of a
	 * reencryption, but does not go on with it. */
	if (!p->read_only)
		vol_online_job(&online, &fp.job);
	fp.rekey_max_rate = p->reencrypt_max_rate;
	fp.rekey_paused = p->reencrypt_paused;
	fp.check_interval = p->check_interval;
	fp.on_revoke = p->on_revoke;
	fp.suspend_timeout = p->suspend_timeout;
	fp.outage_grace = p->outage_grace;
	fp.fstype = p->fstype;
	fp.raw = p->raw;
	fp.read_only = p->read_only;
	fp.allow_discards = p->allow_discards;
	fp.detach = p->detach;
	fp.log_file = p->log_file;
	fp.threads = p->threads;
	fp.fuse_uring = p->fuse_uring;
	fp.poll_us = p->poll_us;
	fp.metrics_listen = p->metrics_listen;
	fp.metrics_file = p->metrics_file;
	fp.metrics_interval = p->metrics_interval;
	fp.ready = on_ready;
	fp.ready_arg = &s;
	r = fsd_serve(&fp, err, sizeof(err));
	vol_reprove_free(&reprove);
	vol_rekey_free(&online.ready);
	vol_unlocked_free(&u);
	*was_ready = s.ready;
	if (!r && !s.ready) /* not expected: fsd_serve fails before ready */
		return vol_fail(e, -EIO, false,
				"cannot mount %s: the daemon ended before the "
				"mount was ready",
				m->name);
	if (r && !s.ready)
		return vol_fail(e, r, false, "cannot mount %s: %s", m->name,
				err);
	if (r)
		return vol_fail(e, r, false,
				"%s: the final flush failed (see the log)",
				m->name);
	return 0;
}
