/* SPDX-License-Identifier: Apache-2.0 */
/*
 * suspend.c — `--on-revoke suspend`: a revocation that stalls I/O instead
 * of failing it, and ends by itself when access returns (what luksSuspend
 * and luksResume do on dm-crypt, with KMS in the place of the passphrase).
 *
 * Suspending wipes every cipher context, as a shred does, having set
 * `suspended` first: a data request that then finds no key (under its
 * worker's sc_lock, so never half-way through one) waits at the gate
 * instead of failing, and starts again once the keys are back.  Nothing of
 * a key stays behind; what recognises the keys later is one sector of
 * zeros encrypted by each key served (kcv, taken under key_lock in the
 * same hold as the wipe) — ciphertext, as any sector of zeros on the
 * volume is.
 *
 * The checker (revoke.c) keeps proving access while suspended.  When KMS
 * allows the key again, the mounter's unlock hook unwraps the keyslot
 * secret and opens the keyslots from the header as it is now, allow-list
 * and pinning applied as at mount.  Each key the data path served must
 * come back, recognised by its check sector: a header replaced meanwhile
 * brings no key of its own into service.  The keys go back into the
 * masters and every worker's contexts under key_lock, where a shred wipes
 * them, so the two cannot interleave; only then is `suspended` cleared
 * and the gate opened.  A reencryption's job, stopped by the suspension
 * at its next block, starts again.
 *
 * After suspend_timeout seconds (0: never) the checker shreds: the held
 * requests and every later one fail with EIO.  A daemon stopped while
 * suspended shreds too (fsd_revoke_stopping): what it holds cannot be
 * encrypted.
 *
 * What this cannot reach: the kernel's caches above the daemon (the page
 * cache of the filesystem on top) keep what they hold, as with
 * luksSuspend; a held write's plaintext waits in its request buffer until
 * it is written or failed; over io_uring the last replies stay in the
 * queues' entries, which the kernel may fill at any moment (uring.c wipes
 * them once shredded).  Before it waits at the gate, a thread wipes what
 * else its own buffers hold.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "fsd.h"

/* Most keys an unlock may hand back: a token opens two keyslots while a
 * reencryption is in progress; more would be a header we did not make. */
#define UNLOCK_MAX 4

void fsd_suspend_init(struct fsd *d)
{
	pthread_mutex_init(&d->gate_lock, NULL);
	pthread_cond_init(&d->gate_cond, NULL);
}

void fsd_suspend_free(struct fsd *d)
{
	for (unsigned i = 0; i < 2; i++) {
		free(d->kcv[i]);
		d->kcv[i] = NULL;
	}
	pthread_mutex_destroy(&d->gate_lock);
	pthread_cond_destroy(&d->gate_cond);
}

int fsd_gate_wait(struct fsd *d)
{
	struct fsd_worker *w = fsd_self;

	/* What the thread served before has no business waiting here: its
	 * bounce buffer, and its receive buffer past the request it holds. */
	if (w && w->buf)
		secmem_wipe(w->buf, FSD_BUF_LEN);
	if (w && w->fbuf.mem && w->fbuf_used > w->fbuf.size)
		secmem_wipe((uint8_t *)w->fbuf.mem + w->fbuf.size,
			    w->fbuf_used - w->fbuf.size);
	if (w && w->before_hold)
		w->before_hold(w);
	pthread_mutex_lock(&d->gate_lock);
	while (atomic_load(&d->suspended) && !atomic_load(&d->shredded))
		pthread_cond_wait(&d->gate_cond, &d->gate_lock);
	pthread_mutex_unlock(&d->gate_lock);
	return atomic_load(&d->shredded) ? -EIO : 0;
}

int fsd_suspend(struct fsd *d, const char *why)
{
	unsigned ss = d->scp.sector_size;
	bool kept = true;
	char until[96];

	if (atomic_load(&d->shredded))
		return 0;
	if (atomic_load(&d->suspended)) {
		fsd_log_event(LOG_WARNING, "suspended",
			      "%s: still SUSPENDED: %s", d->volume, why);
		return 0;
	}
	pthread_mutex_lock(&d->key_lock);
	for (unsigned i = 0; i < 2; i++) {
		struct sc_ctx *sc = i ? d->master_new : d->master;

		free(d->kcv[i]);
		d->kcv[i] = sc ? malloc(ss) : NULL;
		if (sc && (!d->kcv[i] || fsd_check_value(d, sc, d->kcv[i])))
			kept = false;
	}
	if (kept) {
		atomic_store(&d->suspended_mono, fsd_now_ms());
		atomic_store(&d->suspended_since, (int64_t)time(NULL));
		atomic_store(&d->suspended, true);
		fsd_keys_wipe(d);
	}
	pthread_mutex_unlock(&d->key_lock);
	if (!kept)
		return -ENOMEM;
	secmem_wipe_stack();
	if (d->suspend_timeout)
		snprintf(until, sizeof(until), "shredded after %u s",
			 d->suspend_timeout);
	else
		snprintf(until, sizeof(until), "no time limit");
	fsd_log_event(LOG_CRIT, "suspend",
		      "%s: SUSPENDED: %s; every key wiped from memory, reads "
		      "and writes wait until KMS allows the key again (%s)",
		      d->volume, why, until);
	/* Each worker wipes its own buffers. */
	fsd_kick_workers(d);
	return 0;
}

/* The contexts of the keys the data path served, out of what the unlock
 * brought: m[0] for kcv[0], m[1] for kcv[1] (when there is one).  0, or
 * -errno with why said. */
static int recognise(struct fsd *d, struct crypto_key **keys, unsigned n,
		     struct sc_ctx **m, char *why, size_t len)
{
	unsigned ss = d->scp.sector_size;
	uint8_t *cv = malloc(ss);
	int r = 0;

	if (!cv)
		return -ENOMEM;
	pthread_mutex_lock(&d->key_lock);
	for (unsigned k = 0; k < n && !r; k++) {
		struct sc_ctx *sc = NULL;
		bool used = false;

		r = sc_open(&sc, &d->scp, crypto_key_bytes(keys[k]),
			    crypto_key_len(keys[k]));
		if (!r)
			r = fsd_check_value(d, sc, cv);
		for (unsigned i = 0; !r && i < 2 && !used; i++)
			if (d->kcv[i] && !m[i] && !memcmp(cv, d->kcv[i], ss)) {
				m[i] = sc;
				used = true;
			}
		if (!used)
			sc_close(sc);
	}
	for (unsigned i = 0; !r && i < 2; i++)
		if (d->kcv[i] && !m[i]) {
			snprintf(why, len,
				 "the header no longer opens the %s this mount "
				 "served (it was replaced or rewritten "
				 "meanwhile)",
				 i ? "new volume key of its reencryption"
				   : "volume key");
			r = -EPERM;
		}
	pthread_mutex_unlock(&d->key_lock);
	secmem_wipe(cv, ss);
	free(cv);
	if (r == -ENOMEM)
		snprintf(why, len, "out of memory");
	else if (r && r != -EPERM)
		snprintf(why, len, "cannot set up the key: %s", strerror(-r));
	return r;
}

/* The masters back, and every set-up worker's contexts: under key_lock,
 * unless shredded meanwhile (then -EACCES).  On failure nothing stays. */
static int reinstall(struct fsd *d, struct sc_ctx **m)
{
	int r = 0;

	pthread_mutex_lock(&d->key_lock);
	if (atomic_load(&d->shredded)) {
		pthread_mutex_unlock(&d->key_lock);
		return -EACCES;
	}
	d->master = m[0];
	d->master_new = m[1];
	m[0] = m[1] = NULL;
	for (unsigned i = 0; d->workers && i < d->nworkers && !r; i++) {
		struct fsd_worker *w = &d->workers[i];

		if (!w->buf)
			continue; /* not set up (yet): it dups its own */
		pthread_mutex_lock(&w->sc_lock);
		r = sc_dup(d->master, &w->sc);
		if (!r && d->master_new)
			r = sc_dup(d->master_new, &w->sc_new);
		pthread_mutex_unlock(&w->sc_lock);
	}
	if (r)
		fsd_keys_wipe(d);
	else
		/* Cleared under key_lock: a request that finds no key
		 * (under its sc_lock, after this worker's was set) sees
		 * the suspension, and waits for the gate below. */
		atomic_store(&d->suspended, false);
	pthread_mutex_unlock(&d->key_lock);
	return r;
}

enum fsd_access fsd_resume(struct fsd *d, char *why, size_t len)
{
	struct crypto_key *keys[UNLOCK_MAX] = { 0 };
	struct sc_ctx *m[2] = { 0 };
	enum fsd_access a;
	unsigned n = 0;
	int r = 0;

	why[0] = 0;
	if (!d->reprove.unlock) {
		snprintf(why, len, "this mount has no way to unlock again");
		return FSD_ACCESS_REFUSED;
	}
	a = d->reprove.unlock(d->reprove.arg, keys, UNLOCK_MAX, &n, why, len);
	if (a == FSD_ACCESS_OK)
		r = recognise(d, keys, n > UNLOCK_MAX ? UNLOCK_MAX : n, m, why,
			      len);
	for (unsigned i = 0; i < UNLOCK_MAX; i++)
		crypto_key_free(keys[i]);
	secmem_wipe_stack();
	if (a != FSD_ACCESS_OK) {
		if (!why[0])
			snprintf(why, len, "no reason given");
		return a;
	}
	if (!r)
		r = reinstall(d, m);
	sc_close(m[0]);
	sc_close(m[1]);
	if (r) {
		if (r != -EPERM)
			snprintf(why, len, "cannot put the keys back: %s",
				 r == -EACCES ? "shredded meanwhile"
					      : strerror(-r));
		return FSD_ACCESS_REFUSED;
	}
	atomic_store(&d->resumed_at, fsd_now_ms());
	pthread_mutex_lock(&d->gate_lock);
	pthread_cond_broadcast(&d->gate_cond);
	pthread_mutex_unlock(&d->gate_lock);
	fsd_log_event(
		LOG_NOTICE, "resume",
		"%s: RESUMED: KMS allows %s again after %lld s suspended; the "
		"keys are re-derived from the header, held I/O goes on",
		d->volume, fsd_reprove_about(d),
		(long long)(time(NULL) - atomic_load(&d->suspended_since)));
	fsd_rekey_after_resume(d);
	return FSD_ACCESS_OK;
}
