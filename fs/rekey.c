/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rekey.c — serving a volume while its data is rewritten under a new volume
 * key (online reencryption).  The job that rewrites it is the mounter's
 * (fs.h, struct fsd_job: libcryptsetup, the keys, KMS); it runs on the
 * daemon's job thread and tells the data path where it stands.  This file
 * keeps the data path right meanwhile:
 *
 *   [0, done)        under the new key: every byte rewritten and committed
 *   [hot0, hot1)     the block being rewritten ("held"): I/O there waits
 *                    until the block is done (one block, LUKS2_HOTZONE_BYTES)
 *   everything else  under the old key
 *
 * hot0 is always done.  A request claims the range of the
 * volume it reads or writes (struct fsd_claim) before it touches the
 * backend and drops it after its last byte is in (after decrypting, for a
 * read), and picks its keys from done when it claims: [a0, split) under the
 * new key, [split, a1) under the old.  The job, to hold a block, publishes
 * it and then waits for every claim it meets to be dropped.  Claims and
 * the block are sequentially consistent atomics (no lock on the data path),
 * so either the request sees the block and backs off, or the job sees the
 * claim and waits for it: a request never straddles a block being
 * rewritten, and a claimed range's keys cannot change under it (done only
 * moves over held blocks).  The key is chosen when the bytes are encrypted
 * for the backend write: nothing of ours caches ciphertext or plaintext to
 * write back later.
 *
 * A classic worker that meets the block waits for it; a FUSE-over-io_uring
 * queue thread never blocks with I/O in flight: the request goes the
 * synchronous way, after the queue has drained (uring.c).
 *
 * The job thread is started by a "reencrypt start" control request, or at
 * once when the mount found a reencryption in progress.  Between two
 * blocks it may be paused, throttled (bytes per second) or stopped
 * (shutdown, a shred): fsd_rekey_step is where it waits, holding no block.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fsd.h"

const char *const fsd_job_state_names[FSD_JOB_STATES] = {
	[FSD_JOB_NONE] = "none",       [FSD_JOB_RUNNING] = "running",
	[FSD_JOB_PAUSED] = "paused",   [FSD_JOB_DONE] = "done",
	[FSD_JOB_STOPPED] = "stopped", [FSD_JOB_FAILED] = "failed",
};

static struct fsd_rekey *rk_of(struct fsd *d)
{
	return &d->rk;
}

/* ---- claims (the data path) --------------------------------------------- */

bool fsd_claim_try(struct fsd *d, struct fsd_claim *c, uint64_t a0, uint64_t a1,
		   uint64_t *split)
{
	struct fsd_rekey *rk = rk_of(d);
	uint64_t h0, h1, done;

	atomic_store(&c->a0, a0);
	atomic_store(&c->a1, a1);
	h0 = atomic_load(&rk->hot0);
	h1 = atomic_load(&rk->hot1);
	if (h0 < h1 && h0 < a1 && a0 < h1) {
		atomic_store(&c->a1, 0);
		return false;
	}
	if (!atomic_load(&rk->two_keys)) {
		*split = a0;
		return true;
	}
	done = atomic_load(&rk->done);
	*split = done < a0 ? a0 : done > a1 ? a1 : done;
	return true;
}

/* Does [a0, a1) meet the held block (rk->lock held: it is stable)? */
static bool held_meets(struct fsd_rekey *rk, uint64_t a0, uint64_t a1)
{
	uint64_t h0 = atomic_load(&rk->hot0), h1 = atomic_load(&rk->hot1);

	return h0 < h1 && h0 < a1 && a0 < h1;
}

int fsd_claim(struct fsd *d, struct fsd_claim *c, uint64_t a0, uint64_t a1,
	      uint64_t *split)
{
	struct fsd_rekey *rk = rk_of(d);

	while (!fsd_claim_try(d, c, a0, a1, split)) {
		pthread_mutex_lock(&rk->lock);
		while (!rk->broken && held_meets(rk, a0, a1))
			pthread_cond_wait(&rk->cond, &rk->lock);
		/* The block a failed job left half rewritten is neither key's
		 * until a restart recovers it. */
		bool broken = rk->broken && held_meets(rk, a0, a1);

		pthread_mutex_unlock(&rk->lock);
		if (broken)
			return -EIO;
	}
	return 0;
}

int fsd_crypt(struct fsd_worker *w, bool encrypt, uint64_t off, const void *in,
	      void *out, size_t len, uint64_t split)
{
	int (*op)(struct sc_ctx *, uint64_t, const void *, void *, size_t) =
		encrypt ? sc_encrypt : sc_decrypt;
	struct sc_ctx *lo = w->sc_new ? w->sc_new : w->sc;
	size_t n = split <= off		? 0
		   : split - off >= len ? len
					: (size_t)(split - off);
	int r = 0;

	if ((n && !lo) || (n < len && !w->sc))
		return fsd_keyless(w->fsd); /* shredded or suspended */
	if (n)
		r = op(lo, off, in, out, n);
	if (!r && n < len)
		r = op(w->sc, off + n, (const uint8_t *)in + n,
		       (uint8_t *)out + n, len - n);
	return r;
}

/* ---- the block held by the job ------------------------------------------ */

static bool claims_meet(struct fsd *d, uint64_t h0, uint64_t h1)
{
	for (unsigned i = 0; i < d->nworkers; i++)
		if (fsd_claim_meets(&d->workers[i].claim, h0, h1))
			return true;
	for (unsigned i = 0; i < d->n_uring_claims; i++)
		if (fsd_claim_meets(&d->uring_claims[i], h0, h1))
			return true;
	return false;
}

/* [0, done) is under the new key; no block is held. */
static void release(struct fsd_rekey *rk, uint64_t done)
{
	pthread_mutex_lock(&rk->lock);
	atomic_store(&rk->done, done);
	atomic_store(&rk->hot0, done);
	atomic_store(&rk->hot1, done);
	pthread_cond_broadcast(&rk->cond);
	pthread_mutex_unlock(&rk->lock);
}

/* Should the job stop (rk->lock held)?  A stop because the keys were
 * suspended is remembered: the resume starts the job again. */
static bool must_stop(struct fsd_rekey *rk)
{
	if (atomic_load(&rk->stop) || atomic_load(&rk->d->shredded))
		return true;
	if (!atomic_load(&rk->d->suspended))
		return false;
	rk->again = true;
	return true;
}

/* Hold [done, end): new requests there wait; wait for those in flight.
 * -EINTR (nothing held) when the job is to stop meanwhile. */
static int hold(struct fsd_rekey *rk, uint64_t end)
{
	struct timespec pause = { 0, 20L * 1000 };
	uint64_t done = atomic_load(&rk->done);

	pthread_mutex_lock(&rk->lock);
	atomic_store(&rk->hot1, end);
	pthread_mutex_unlock(&rk->lock);
	/* Requests in flight end within a backend I/O: poll, backing off
	 * from 20 us to 1 ms. */
	while (claims_meet(rk->d, done, end)) {
		bool stop;

		pthread_mutex_lock(&rk->lock);
		stop = must_stop(rk);
		pthread_mutex_unlock(&rk->lock);
		if (stop) {
			release(rk, done);
			return -EINTR;
		}
		nanosleep(&pause, NULL);
		if (pause.tv_nsec < 1000L * 1000)
			pause.tv_nsec *= 2;
	}
	return 0;
}

/* ---- keys ---------------------------------------------------------------- */

int fsd_check_value(const struct fsd *d, struct sc_ctx *sc, uint8_t *out)
{
	memset(out, 0, d->scp.sector_size);
	return sc_encrypt(sc, 0, out, out, d->scp.sector_size);
}

int fsd_keyless(struct fsd *d)
{
	return atomic_load(&d->suspended) && !atomic_load(&d->shredded)
		       ? -EAGAIN
		       : -EIO;
}

void fsd_keys_wipe(struct fsd *d)
{
	/* Each worker's contexts under its lock: a request in flight
	 * finishes with the key it started with, every later one finds
	 * none.  A reencryption's new key goes too, all under key_lock
	 * (the caller's), so that the end of a reencryption (which moves
	 * the new key into place under it) cannot bring one back. */
	for (unsigned i = 0; d->workers && i < d->nworkers; i++) {
		struct fsd_worker *w = &d->workers[i];

		pthread_mutex_lock(&w->sc_lock);
		sc_close(w->sc);
		sc_close(w->sc_new);
		w->sc = w->sc_new = NULL;
		pthread_mutex_unlock(&w->sc_lock);
	}
	sc_close(d->master);
	sc_close(d->master_new);
	d->master = d->master_new = NULL;
}

bool fsd_keys_gone(struct fsd *d)
{
	return atomic_load(&d->shredded) || atomic_load(&d->suspended);
}

bool fsd_rekey_serves(struct fsd_rekey *rk, const struct crypto_key *key)
{
	struct fsd *d = rk->d;
	struct sc_ctx *theirs = NULL, *ours = NULL;
	unsigned ss = d->scp.sector_size;
	uint8_t *a = malloc(2 * (size_t)ss), *b;
	bool same = false;

	if (!a)
		return false;
	b = a + ss;
	pthread_mutex_lock(&d->key_lock);
	if (d->master && !fsd_keys_gone(d))
		sc_dup(d->master, &ours);
	pthread_mutex_unlock(&d->key_lock);
	/* What leaves is ciphertext of nothing, and is wiped anyway. */
	if (ours &&
	    !sc_open(&theirs, &d->scp, crypto_key_bytes(key),
		     crypto_key_len(key)) &&
	    !fsd_check_value(d, ours, a) && !fsd_check_value(d, theirs, b))
		same = !memcmp(a, b, ss);
	sc_close(theirs);
	sc_close(ours);
	secmem_wipe(a, 2 * (size_t)ss);
	free(a);
	return same;
}

/* The new key's contexts: the master and one per worker. */
static int install_new_key(struct fsd *d, struct crypto_key *key)
{
	struct sc_ctx *m = NULL;
	int r;

	r = sc_open(&m, &d->scp, crypto_key_bytes(key), crypto_key_len(key));
	crypto_key_free(key);
	if (r)
		return r;
	pthread_mutex_lock(&d->key_lock);
	if (fsd_keys_gone(d)) {
		pthread_mutex_unlock(&d->key_lock);
		sc_close(m);
		return -EACCES;
	}
	d->master_new = m;
	/* Workers set up later dup the master themselves. */
	for (unsigned i = 0; d->workers && i < d->nworkers && !r; i++) {
		struct fsd_worker *w = &d->workers[i];

		if (!w->sc)
			continue; /* not set up (yet): it dups its own */
		pthread_mutex_lock(&w->sc_lock);
		r = sc_dup(m, &w->sc_new);
		pthread_mutex_unlock(&w->sc_lock);
	}
	if (r) {
		/* None of it stays: nothing uses the new key yet. */
		for (unsigned i = 0; d->workers && i < d->nworkers; i++) {
			struct fsd_worker *w = &d->workers[i];

			pthread_mutex_lock(&w->sc_lock);
			sc_close(w->sc_new);
			w->sc_new = NULL;
			pthread_mutex_unlock(&w->sc_lock);
		}
		sc_close(d->master_new);
		d->master_new = NULL;
	}
	pthread_mutex_unlock(&d->key_lock);
	return r;
}

/* Every byte is under the new key: it becomes the only one, the old one is
 * wiped. */
static void retire_old_key(struct fsd *d)
{
	struct fsd_rekey *rk = rk_of(d);

	/* Under key_lock, as a shred or a suspension wipes them: after
	 * one, nothing is moved back into place.  A suspension's check
	 * values move the same way: the key to recognise on resume is the
	 * new one now. */
	pthread_mutex_lock(&d->key_lock);
	if (atomic_load(&d->suspended) && d->kcv[1]) {
		free(d->kcv[0]);
		d->kcv[0] = d->kcv[1];
		d->kcv[1] = NULL;
	}
	for (unsigned i = 0; !fsd_keys_gone(d) && i < d->nworkers; i++) {
		struct fsd_worker *w = &d->workers[i];

		pthread_mutex_lock(&w->sc_lock);
		if (w->sc_new) {
			sc_close(w->sc);
			w->sc = w->sc_new;
			w->sc_new = NULL;
		}
		pthread_mutex_unlock(&w->sc_lock);
	}
	if (d->master_new && !fsd_keys_gone(d)) {
		sc_close(d->master);
		d->master = d->master_new;
		d->master_new = NULL;
	}
	pthread_mutex_unlock(&d->key_lock);
	atomic_store(&rk->two_keys, false);
	pthread_mutex_lock(&rk->lock);
	atomic_store(&rk->done, 0);
	atomic_store(&rk->hot0, 0);
	atomic_store(&rk->hot1, 0);
	pthread_mutex_unlock(&rk->lock);
}

/* ---- the job's side (fs.h) ----------------------------------------------- */

static int64_t now_ms(void)
{
	return fsd_now_ms();
}

int fsd_rekey_begin(struct fsd_rekey *rk, struct crypto_key *new_key,
		    uint64_t done, uint64_t total, char *why, size_t len)
{
	struct fsd *d = rk->d;
	int r = 0;

	if (total != d->data_size || done > total) {
		crypto_key_free(new_key);
		snprintf(why, len,
			 "the header says %" PRIu64 " of %" PRIu64
			 " bytes are done, but the volume serves %" PRIu64,
			 done, total, d->data_size);
		return -EINVAL;
	}
	if (atomic_load(&rk->two_keys)) {
		/* A job that stopped earlier: the keys are in place, and the
		 * header must be where the data path thinks it is (or past
		 * the block a failed job left, once recovered). */
		uint64_t at = atomic_load(&rk->done);

		crypto_key_free(new_key);
		if (done != at &&
		    !(rk->broken && done == atomic_load(&rk->hot1))) {
			snprintf(why, len,
				 "the header says %" PRIu64
				 " bytes are done, the daemon %" PRIu64
				 "; remount the volume",
				 done, at);
			return -ESTALE;
		}
	} else if (done != 0) {
		crypto_key_free(new_key);
		snprintf(why, len,
			 "the reencryption is %" PRIu64
			 " bytes in, but this mount serves one key; remount "
			 "the volume",
			 done);
		return -ESTALE;
	} else {
		r = install_new_key(d, new_key);
		if (r) {
			snprintf(
				why, len, "cannot set up the new key: %s",
				r == -EACCES
					? "the keys were wiped (shredded or suspended)"
					: crypto_strerror(r));
			return r;
		}
		atomic_store(&rk->done, 0);
		atomic_store(&rk->two_keys, true);
	}
	pthread_mutex_lock(&rk->lock);
	rk->broken = false;
	rk->total = total;
	rk->first_done = done;
	rk->run_ms = 0;
	rk->run_since = now_ms();
	rk->next_at = 0;
	if (rk->state != FSD_JOB_PAUSED)
		rk->state = FSD_JOB_RUNNING;
	pthread_mutex_unlock(&rk->lock);
	release(rk, done);
	return 0;
}

/* Wait (rk->lock held) for a control request, ms at most, and never more
 * than a slice: a shred does not signal us, the loop looks again. */
static void wait_slice(struct fsd_rekey *rk, int64_t ms)
{
	struct timespec until;

	if (ms <= 0 || ms > 250)
		ms = 250;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long)ms * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&rk->cond, &rk->lock, &until);
}

int fsd_rekey_step(struct fsd_rekey *rk, uint64_t done, uint64_t next)
{
	struct fsd *d = rk->d;
	int64_t t;

	if (done < atomic_load(&rk->done) || done > atomic_load(&rk->hot1) ||
	    next < done || next > rk->total) {
		/* The library rewrote something we did not hold, or goes
		 * backwards: stop before it goes further. */
		fsd_err("%s: reencryption at %" PRIu64
			" (next block to %" PRIu64
			"), but the block held was [%" PRIu64 ", %" PRIu64
			"): stopping it",
			d->volume, done, next, atomic_load(&rk->hot0),
			atomic_load(&rk->hot1));
		return -EIO;
	}
	release(rk, done);
	/* The last call, after the last block: the end comes now, paused or
	 * throttled or not (stop and shred are for blocks). */
	if (done == rk->total)
		return 0;
	pthread_mutex_lock(&rk->lock);
	for (;;) {
		if (must_stop(rk)) {
			pthread_mutex_unlock(&rk->lock);
			return -EINTR;
		}
		if (rk->pause) {
			if (rk->state == FSD_JOB_RUNNING) {
				rk->state = FSD_JOB_PAUSED;
				rk->run_ms += now_ms() - rk->run_since;
				fsd_info("%s: reencryption paused at %" PRIu64
					 " of %" PRIu64 " bytes",
					 d->volume, done, rk->total);
			}
			wait_slice(rk, 0);
			continue;
		}
		t = now_ms();
		if (rk->state == FSD_JOB_PAUSED) {
			rk->state = FSD_JOB_RUNNING;
			rk->run_since = t;
			rk->next_at = 0;
			fsd_info("%s: reencryption resumed", d->volume);
		}
		if (t >= rk->next_at)
			break;
		/* The throttle: the block may not start before next_at. */
		wait_slice(rk, rk->next_at - t);
	}
	if (rk->max_rate)
		rk->next_at =
			t + (int64_t)((next - done) * 1000 / rk->max_rate);
	pthread_mutex_unlock(&rk->lock);
	return hold(rk, next);
}

void fsd_rekey_end(struct fsd_rekey *rk, enum fsd_rekey_how how, uint64_t done)
{
	struct fsd *d = rk->d;
	uint64_t h0 = atomic_load(&rk->hot0), h1 = atomic_load(&rk->hot1);

	/* What the header says must be what the data path allows: the
	 * start of the held block (it was not touched) or its end (it was
	 * done and committed), or, when all is done, the last block held. */
	if (how == FSD_REKEY_ALL_NEW && done == rk->total && h1 == rk->total) {
		release(rk, rk->total);
		retire_old_key(d);
		return;
	}
	if (how == FSD_REKEY_STOPPED &&
	    (done == h0 || (h0 < h1 && done == h1))) {
		release(rk, done);
		return;
	}
	/* The hold stays, over what the header and the data path dispute
	 * too: I/O there fails until a restart recovers it. */
	pthread_mutex_lock(&rk->lock);
	if (how != FSD_REKEY_HELD_BROKEN && done < h0)
		atomic_store(&rk->hot0, h0 = done);
	if (how != FSD_REKEY_HELD_BROKEN && done > h1 && done <= rk->total)
		atomic_store(&rk->hot1, h1 = done);
	rk->broken = h0 < h1;
	pthread_cond_broadcast(&rk->cond);
	pthread_mutex_unlock(&rk->lock);
	if (h0 < h1)
		fsd_err("%s: the reencryption stopped inside [%" PRIu64
			", %" PRIu64 ") (the header says %s%" PRIu64
			" bytes are done): I/O there fails until `cmkfs "
			"reencrypt --resume` recovers it",
			d->volume, h0, h1,
			how == FSD_REKEY_HELD_BROKEN ? "not how many; " : "",
			done);
}

/* ---- the job thread ------------------------------------------------------ */

static void *job_main(void *arg)
{
	struct fsd_rekey *rk = arg;
	struct fsd *d = rk->d;
	char why[sizeof(rk->error)] = "";
	int r;

	fsd_info("%s: reencryption started", d->volume);
	r = rk->job.run(rk->job.arg, rk, why, sizeof(why));
	pthread_mutex_lock(&rk->lock);
	/* A suspension that came while the job was not between blocks (it
	 * then fails for want of a key) stops it as one between blocks
	 * does. */
	if (r && r != -EINTR && r != -ENOENT && must_stop(rk) && rk->again)
		r = -EINTR;
	if (r == -ENOENT && rk->before == FSD_JOB_DONE) {
		/* A start that raced the end of the job before: nothing was
		 * left to do. */
		rk->state = FSD_JOB_DONE;
		rk->running = false;
		pthread_mutex_unlock(&rk->lock);
		return NULL;
	}
	if (r == 0) {
		rk->state = FSD_JOB_DONE;
		rk->error[0] = 0;
	} else if (r == -EINTR) {
		rk->state = FSD_JOB_STOPPED;
		snprintf(rk->error, sizeof(rk->error), "%s",
			 atomic_load(&d->shredded) ? "stopped: the keys were "
						     "shredded"
			 : atomic_load(&d->suspended)
				 ? "stopped: access to the key is suspended; "
				   "it goes on when access returns"
				 : "stopped");
	} else {
		rk->state = FSD_JOB_FAILED;
		snprintf(rk->error, sizeof(rk->error), "%s",
			 why[0] ? why : strerror(-r));
	}
	if (rk->state != FSD_JOB_PAUSED && rk->run_since)
		rk->run_ms += now_ms() - rk->run_since;
	rk->run_since = 0;
	rk->running = false;
	pthread_cond_broadcast(&rk->cond); /* a resume may wait for this */
	pthread_mutex_unlock(&rk->lock);
	if (r == 0)
		fsd_info("%s: reencryption done: every byte is under the new "
			 "key; the old one is wiped",
			 d->volume);
	else if (r == -EINTR)
		fsd_info(
			"%s: reencryption stopped at %" PRIu64 " of %" PRIu64
			" bytes; a later mount, or 'cmkfs reencrypt --resume', "
			"continues it",
			d->volume, (uint64_t)atomic_load(&rk->done), rk->total);
	else
		fsd_err("%s: reencryption failed: %s", d->volume, rk->error);
	/* The key that now gates the volume refused: a revocation, for the
	 * checker to act on, when this mount checks for them at all. */
	if (r == -EKEYREVOKED && d->check_interval) {
		pthread_mutex_lock(&d->check_lock);
		snprintf(d->job_refusal, sizeof(d->job_refusal), "%s", why);
		d->job_refused = true;
		pthread_cond_broadcast(&d->check_cond);
		pthread_mutex_unlock(&d->check_lock);
	}
	return NULL;
}

/* Start the job thread, throttled to rate (bytes/s; have_rate false:
 * the mount's default): 0, -EBUSY (running), -EOPNOTSUPP, -EACCES. */
static int job_start(struct fsd *d, bool have_rate, uint64_t rate)
{
	struct fsd_rekey *rk = rk_of(d);
	int r;

	if (!rk->job.run)
		return -EOPNOTSUPP;
	/* One start (or stop) at a time: the control requests and a
	 * resume may both join the job before and start one. */
	pthread_mutex_lock(&rk->start_lock);
	pthread_mutex_lock(&rk->lock);
	if (rk->running) {
		pthread_mutex_unlock(&rk->lock);
		pthread_mutex_unlock(&rk->start_lock);
		return -EBUSY;
	}
	if (rk->thread_started) {
		pthread_mutex_unlock(&rk->lock);
		pthread_join(rk->thread, NULL);
		pthread_mutex_lock(&rk->lock);
		rk->thread_started = false;
	}
	/* (after the join: the job before may have shredded) */
	if (atomic_load(&d->shredded) || atomic_load(&d->suspended)) {
		pthread_mutex_unlock(&rk->lock);
		pthread_mutex_unlock(&rk->start_lock);
		return atomic_load(&d->shredded) ? -EACCES : -EAGAIN;
	}
	rk->before = rk->state;
	rk->max_rate = have_rate ? rate : rk->default_rate;
	rk->next_at = 0;
	rk->running = true;
	atomic_store(&rk->stop, false);
	rk->state = rk->pause ? FSD_JOB_PAUSED : FSD_JOB_RUNNING;
	rk->error[0] = 0;
	r = -pthread_create(&rk->thread, NULL, job_main, rk);
	if (r) {
		rk->running = false;
		rk->state = rk->before;
	} else {
		rk->thread_started = true;
	}
	pthread_mutex_unlock(&rk->lock);
	pthread_mutex_unlock(&rk->start_lock);
	return r;
}

int fsd_rekey_init(struct fsd *d, struct fsd_params *p)
{
	struct fsd_rekey *rk = rk_of(d);

	rk->d = d;
	pthread_mutex_init(&rk->lock, NULL);
	pthread_mutex_init(&rk->start_lock, NULL);
	pthread_cond_init(&rk->cond, NULL);
	rk->job = p->job;
	rk->default_rate =
		p->rekey_max_rate ? p->rekey_max_rate : FSD_REKEY_DEFAULT_RATE;
	rk->max_rate = rk->default_rate;
	rk->pause = p->rekey_paused;
	if (!p->key_new)
		return 0;
	/* A reencryption in progress: both keys from the start. */
	atomic_store(&rk->done, p->rekey_done);
	atomic_store(&rk->hot0, p->rekey_done);
	atomic_store(&rk->hot1, p->rekey_done);
	rk->total = d->data_size;
	rk->state = FSD_JOB_STOPPED;
	snprintf(rk->error, sizeof(rk->error), "not started");
	atomic_store(&rk->two_keys, true);
	return install_new_key(d, p->key_new);
}

int fsd_rekey_autostart(struct fsd *d)
{
	if (!atomic_load(&d->rk.two_keys) || !d->rk.job.run)
		return 0;
	fsd_info("%s: continuing its reencryption at %" PRIu64 " of %" PRIu64
		 " bytes",
		 d->volume, (uint64_t)atomic_load(&d->rk.done), d->data_size);
	return job_start(d, false, 0);
}

void fsd_rekey_after_resume(struct fsd *d)
{
	struct fsd_rekey *rk = rk_of(d);
	int r;

	/* A job that saw the suspension is on its way out (within a
	 * block): once it is, it starts again.  One that did not see it
	 * goes on by itself. */
	pthread_mutex_lock(&rk->lock);
	while (rk->running && rk->again)
		pthread_cond_wait(&rk->cond, &rk->lock);
	if (!rk->again) {
		pthread_mutex_unlock(&rk->lock);
		return;
	}
	rk->again = false;
	pthread_mutex_unlock(&rk->lock);
	fsd_info("%s: continuing its reencryption at %" PRIu64 " of %" PRIu64
		 " bytes",
		 d->volume, (uint64_t)atomic_load(&rk->done), d->data_size);
	r = job_start(d, true, rk->max_rate);
	if (r)
		fsd_err("%s: cannot continue its reencryption: %s", d->volume,
			strerror(-r));
}

void fsd_rekey_stop(struct fsd *d)
{
	struct fsd_rekey *rk = rk_of(d);

	if (!rk->d)
		return;
	pthread_mutex_lock(&rk->start_lock);
	pthread_mutex_lock(&rk->lock);
	atomic_store(&rk->stop, true);
	pthread_cond_broadcast(&rk->cond);
	pthread_mutex_unlock(&rk->lock);
	if (rk->thread_started)
		pthread_join(rk->thread, NULL);
	rk->thread_started = false;
	pthread_mutex_unlock(&rk->start_lock);
}

void fsd_rekey_free(struct fsd *d)
{
	struct fsd_rekey *rk = rk_of(d);

	if (!rk->d)
		return;
	sc_close(d->master_new);
	d->master_new = NULL;
	pthread_mutex_destroy(&rk->lock);
	pthread_mutex_destroy(&rk->start_lock);
	pthread_cond_destroy(&rk->cond);
	rk->d = NULL;
}

/* ---- control and status ---------------------------------------------------
 */

int fsd_rekey_control(struct fsd *d, const char *args, char *why, size_t len)
{
	struct fsd_rekey *rk = rk_of(d);
	uint64_t rate = 0;
	char *end;
	int r;
	bool with_rate = !strncmp(args, "start ", 6) && args[6] >= '0' &&
			 args[6] <= '9' &&
			 ((rate = strtoull(args + 6, &end, 10)), !*end);

	if (!strcmp(args, "start") || with_rate) {
		r = job_start(d, with_rate, with_rate ? rate : 0);
		if (r == -EBUSY)
			snprintf(why, len, "a reencryption is already running");
		else if (r == -EOPNOTSUPP)
			snprintf(why, len,
				 "a read-only mount does not reencrypt: "
				 "mount it read-write");
		else if (r == -EACCES)
			snprintf(why, len, "the keys were shredded");
		else if (r == -EAGAIN)
			snprintf(why, len,
				 "access to the key is suspended (KMS refused "
				 "it): start it again once the mount has "
				 "resumed");
		else if (r)
			snprintf(why, len, "%s", strerror(-r));
		return r;
	}
	pthread_mutex_lock(&rk->lock);
	if (!strcmp(args, "pause")) {
		rk->pause = true;
	} else if (!strcmp(args, "resume")) {
		rk->pause = false;
	} else if (!strncmp(args, "rate ", 5) && args[5] >= '0' &&
		   args[5] <= '9' &&
		   ((rate = strtoull(args + 5, &end, 10)), !*end)) {
		rk->max_rate = rate;
		rk->next_at = 0;
		if (rate)
			fsd_info("%s: reencryption throttled to %" PRIu64
				 " bytes/s",
				 d->volume, rate);
		else
			fsd_info("%s: reencryption not throttled", d->volume);
	} else {
		pthread_mutex_unlock(&rk->lock);
		snprintf(why, len, "unknown reencrypt request");
		return -EINVAL;
	}
	pthread_cond_broadcast(&rk->cond);
	pthread_mutex_unlock(&rk->lock);
	return 0;
}

void fsd_rekey_progress(struct fsd *d, struct fsd_rekey_progress *p)
{
	struct fsd_rekey *rk = rk_of(d);
	enum fsd_job_state state;
	int64_t ms;

	pthread_mutex_lock(&rk->lock);
	state = rk->state;
	p->state = fsd_job_state_names[state];
	p->done = atomic_load(&rk->done);
	if (state == FSD_JOB_DONE)
		p->done = rk->total;
	ms = rk->run_ms + (rk->run_since && state == FSD_JOB_RUNNING
				   ? now_ms() - rk->run_since
				   : 0);
	p->rate = ms > 0 && p->done > rk->first_done
			  ? (p->done - rk->first_done) * 1000 / (uint64_t)ms
			  : 0;
	snprintf(p->error, sizeof(p->error), "%s", rk->error);
	p->total = rk->total;
	p->max_rate = rk->max_rate;
	p->paused = rk->pause;
	pthread_mutex_unlock(&rk->lock);
}

void fsd_rekey_status(struct fsd *d, int fd)
{
	struct fsd_rekey_progress p;

	fsd_rekey_progress(d, &p);
	dprintf(fd,
		"reencrypt=%s\nreencrypt_done=%" PRIu64
		"\nreencrypt_total=%" PRIu64 "\nreencrypt_rate=%" PRIu64
		"\nreencrypt_max_rate=%" PRIu64 "\nreencrypt_paused=%d\n"
		"reencrypt_error=%s\n",
		p.state, p.done, p.total, p.rate, p.max_rate, (int)p.paused,
		p.error);
}
