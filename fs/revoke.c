/* SPDX-License-Identifier: Apache-2.0 */
/*
 * revoke.c — the kill switch: while mounted, the daemon re-proves every
 * check_interval seconds that the customer's key still lets this host open
 * the volume, through the check the mounter hands it (struct fsd_reprove in
 * fs.h: for an aws-kms token, the very Decrypt a mount makes, with key
 * state, key policy, grants and region all in it).  This file knows nothing
 * of KMS; it only acts on the answer.
 *
 * A definitive refusal (access denied, key disabled or pending deletion,
 * key gone, ciphertext rejected) triggers the on-revoke policy: "shred"
 * wipes every cipher context — the only copies of the volume key — and
 * fails all further reads and writes with EIO, leaving the mount in place
 * for `cmkfs umount`, with the filesystem on it shut down and every
 * buffer of plaintext wiped; "suspend" wipes them too but holds I/O until
 * access returns (suspend.c), shredding after the suspend timeout; "keep"
 * logs loudly and carries on (what EBS does).
 * Transient failures (network, throttling, 5xx, timeouts — already retried
 * with backoff by the check) never shred; after outage_grace seconds of
 * nothing but failures the policy applies (0: never).
 *
 * Each wait between checks is the interval plus up to a tenth of it,
 * drawn anew each time, so that a fleet mounted together does not ask KMS
 * in step.  The worst case from a revocation to the last request served
 * with the key is therefore interval + interval / 10 + the time the check
 * itself may take (the KMS client's attempt timeout and retry budget).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fsd.h"

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

void fsd_shred(struct fsd *d, const char *why)
{
	int r;

	if (atomic_exchange(&d->shredded, true))
		return;
	pthread_mutex_lock(&d->key_lock);
	fsd_keys_wipe(d);
	pthread_mutex_unlock(&d->key_lock);
	/* Requests held by a suspension fail now: it is over. */
	atomic_store(&d->suspended, false);
	pthread_mutex_lock(&d->gate_lock);
	pthread_cond_broadcast(&d->gate_cond);
	pthread_mutex_unlock(&d->gate_lock);
	/* A reencryption's job sees the shred at its next step (within a
	 * block, or a slice of its pause) and stops, wiping both keys. */
	secmem_wipe_stack();
	fsd_log_event(LOG_CRIT, "shred",
		      "%s: SHREDDED: %s; every key wiped from memory, all "
		      "reads and writes now fail (EIO); unmount with 'cmkfs "
		      "umount %s'",
		      d->volume, why, d->target);
	/* No plaintext may be served any more, not even from the caches
	 * above us: the filesystem on the loop device is shut down (cached
	 * reads fail with EIO too; what it had not written is lost — it
	 * could not be encrypted any more), the loop device's own cache is
	 * dropped, and every thread wipes its buffers. */
	r = fsd_fs_shutdown(d, false);
	if (r && r != -ENOENT)
		fsd_err("%s: cannot shut down the filesystem on %s: %s; its "
			"cached files stay readable until it is unmounted",
			d->volume, d->target, strerror(-r));
	else if (!r)
		fsd_err("%s: filesystem on %s shut down", d->volume, d->target);
	else if (!d->raw && fsd_loop_in_use(d))
		fsd_err("%s: the filesystem on %s is mounted neither at %s nor "
			"anywhere else in this mount namespace (lazily "
			"unmounted, or in another namespace): its cached files "
			"stay readable until it is unmounted",
			d->volume, d->loop, d->target);
	r = fsd_loop_flush(d, true);
	if (r && r != -ENOENT)
		fsd_warn("%s: cannot drop the cache of %s: %s", d->volume,
			 d->loop, strerror(-r));
	fsd_kick_workers(d);
}

/* The key the last answer was about and the KMS request it came from,
 * on the entries the checker logs about it. */
static void note_request_id(struct fsd *d)
{
	fsd_log_kms(fsd_reprove_about(d),
		    d->reprove.request_id
			    ? d->reprove.request_id(d->reprove.arg)
			    : NULL);
}

/* For the metrics. */
static void count_check(struct fsd *d, enum fsd_access a)
{
	if ((unsigned)a < FSD_ACCESS_KINDS)
		atomic_fetch_add(&d->checks[a], 1);
}

/* One check, and the stack it used wiped: the check handled the key's
 * secret. */
static enum fsd_access check_once(struct fsd *d, char *why, size_t len)
{
	enum fsd_access a;

	why[0] = 0;
	a = d->reprove.check(d->reprove.arg, why, len);
	secmem_wipe_stack();
	count_check(d, a);
	note_request_id(d);
	if (a != FSD_ACCESS_OK && !why[0])
		snprintf(why, len, "no reason given");
	return a;
}

/* The last refusal, for status: one line of printable ASCII (what KMS
 * said is not ours to trust, and status prints it to a terminal). */
static void note_refusal(struct fsd *d, const char *why)
{
	pthread_mutex_lock(&d->check_lock);
	snprintf(d->last_refusal, sizeof(d->last_refusal), "%s", why);
	for (char *c = d->last_refusal; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	pthread_mutex_unlock(&d->check_lock);
}

static void apply_policy(struct fsd *d, const char *why)
{
	int r;

	note_refusal(d, why);
	switch (d->on_revoke) {
	case FSD_REVOKE_KEEP:
		/* One critical entry per revocation; the checks that find
		 * it still revoked warn. */
		fsd_log_event(d->kept_revoked ? LOG_WARNING : LOG_CRIT,
			      "revoked-kept",
			      "%s: ACCESS REVOKED but --on-revoke keep: still "
			      "serving: %s",
			      d->volume, why);
		d->kept_revoked = true;
		break;
	case FSD_REVOKE_SUSPEND:
		/* Under check_lock, against fsd_revoke_stopping: a daemon
		 * on its way out never starts holding what it must flush. */
		pthread_mutex_lock(&d->check_lock);
		r = d->stopping ? -ESHUTDOWN : fsd_suspend(d, why);
		pthread_mutex_unlock(&d->check_lock);
		if (!r)
			break;
		if (r == -ENOMEM)
			fsd_err("%s: cannot suspend (out of memory): shredding "
				"instead",
				d->volume);
		fsd_shred(d, why);
		break;
	case FSD_REVOKE_SHRED:
		fsd_shred(d, why);
		break;
	}
}

static void revoked(struct fsd *d, const char *what, const char *answer)
{
	char why[1200];

	snprintf(why, sizeof(why), "%s %s: %s", what, fsd_reprove_about(d),
		 answer);
	apply_policy(d, why);
}

/* The next wait: the interval and up to a tenth of it more (ms). */
static int64_t next_wait_ms(const struct fsd *d, unsigned *seed)
{
	int64_t ms = (int64_t)d->check_interval * 1000;

	return ms + (int64_t)(rand_r(seed) % (unsigned)(ms / 10 + 1));
}

/* A time on check_cond's clock, CLOCK_MONOTONIC (daemon.c), as
 * fsd_now_ms() counts it: a clock step neither hurries a check nor ends a
 * suspension early. */
static struct timespec at_ms(int64_t ms)
{
	struct timespec t = { .tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000 };

	return t;
}

/* While suspended: try to resume; past the suspend timeout, shred. */
static void while_suspended(struct fsd *d, char *why, size_t len)
{
	int64_t since = atomic_load(&d->suspended_since);
	enum fsd_access a;

	/* Until the answer comes, entries are about no KMS request (the
	 * resume's among them: it succeeded). */
	fsd_log_kms(fsd_reprove_about(d), NULL);
	a = fsd_resume(d, why, len);

	count_check(d, a);
	note_request_id(d);
	switch (a) {
	case FSD_ACCESS_OK:
		atomic_store(&d->last_check_ok, now_s());
		return;
	case FSD_ACCESS_REFUSED:
		note_refusal(d, why);
		fsd_warn("%s: still suspended (for %lld s): %s", d->volume,
			 (long long)(now_s() - since), why);
		break;
	case FSD_ACCESS_UNAVAILABLE:
		fsd_warn("%s: still suspended (for %lld s), KMS does not "
			 "answer: %s",
			 d->volume, (long long)(now_s() - since), why);
		break;
	}
	if (d->suspend_timeout &&
	    fsd_now_ms() - atomic_load(&d->suspended_mono) >=
		    (int64_t)d->suspend_timeout * 1000) {
		char shred[1200];

		pthread_mutex_lock(&d->check_lock);
		snprintf(shred, sizeof(shred),
			 "suspended for longer than --suspend-timeout (%u s); "
			 "last refusal: %s",
			 d->suspend_timeout, d->last_refusal);
		pthread_mutex_unlock(&d->check_lock);
		fsd_shred(d, shred);
	}
}

static void *checker_main(void *arg)
{
	struct fsd *d = arg;
	int64_t outage_since = 0;
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	char why[1024];

	pthread_mutex_lock(&d->check_lock);
	while (!d->check_stop && !atomic_load(&d->shredded)) {
		int64_t now = fsd_now_ms(), due = now + next_wait_ms(d, &seed);
		bool suspended = atomic_load(&d->suspended);
		struct timespec until;

		/* A suspension's end comes on time, checks or not. */
		if (suspended && d->suspend_timeout) {
			int64_t end = atomic_load(&d->suspended_mono) +
				      (int64_t)d->suspend_timeout * 1000;

			if (end < due)
				due = end;
		}
		until = at_ms(due);
		atomic_store(&d->next_check,
			     now_s() + (due - now + 999) / 1000);
		while (!d->check_stop && !d->job_refused &&
		       pthread_cond_timedwait(&d->check_cond, &d->check_lock,
					      &until) != ETIMEDOUT)
			;
		if (d->check_stop)
			break;
		if (d->job_refused) {
			/* The reencryption's job unwrapped the token that now
			 * gates the volume: KMS refused (rekey.c). */
			char refusal[sizeof(d->job_refusal)];

			d->job_refused = false;
			snprintf(refusal, sizeof(refusal), "%s",
				 d->job_refusal);
			pthread_mutex_unlock(&d->check_lock);
			fsd_log_kms(fsd_reprove_about(d), NULL);
			apply_policy(d, refusal);
			pthread_mutex_lock(&d->check_lock);
			continue;
		}
		if (suspended) {
			pthread_mutex_unlock(&d->check_lock);
			while_suspended(d, why, sizeof(why));
			outage_since = 0;
			pthread_mutex_lock(&d->check_lock);
			continue;
		}
		pthread_mutex_unlock(&d->check_lock);

		switch (check_once(d, why, sizeof(why))) {
		case FSD_ACCESS_OK:
			atomic_store(&d->last_check_ok, now_s());
			d->kept_revoked = false;
			if (why[0])
				fsd_warn("%s: KMS refuses a key or does not "
					 "answer: %s",
					 d->volume, why);
			if (outage_since)
				fsd_info("%s: KMS answers again; access to %s "
					 "confirmed",
					 d->volume, d->reprove.key);
			outage_since = 0;
			break;
		case FSD_ACCESS_REFUSED:
			revoked(d, "KMS refuses the key", why);
			break;
		case FSD_ACCESS_UNAVAILABLE:
			if (!outage_since)
				outage_since = now_s();
			fsd_log_event(LOG_WARNING, "kms-unavailable",
				      "%s: cannot check access to %s: %s "
				      "(KMS unreachable or failing for %lld "
				      "s; serving on)",
				      d->volume, fsd_reprove_about(d), why,
				      (long long)(now_s() - outage_since));
			if (d->outage_grace &&
			    now_s() - outage_since >= (int64_t)d->outage_grace)
				revoked(d,
					"KMS outage longer than the grace "
					"period for",
					why);
			break;
		}
		pthread_mutex_lock(&d->check_lock);
	}
	atomic_store(&d->next_check, 0);
	pthread_mutex_unlock(&d->check_lock);
	return NULL;
}

int fsd_revoke_start(struct fsd *d)
{
	int r;

	atomic_store(&d->last_check_ok, now_s()); /* the mount's unlock */
	if (!d->reprove.check)
		d->check_interval = 0;
	if (!d->check_interval)
		return 0;
	r = pthread_create(&d->checker, NULL, checker_main, d);
	if (r)
		return -r;
	d->checker_started = true;
	return 0;
}

void fsd_revoke_stopping(struct fsd *d)
{
	bool suspended;

	pthread_mutex_lock(&d->check_lock);
	d->stopping = true;
	suspended = atomic_load(&d->suspended);
	pthread_mutex_unlock(&d->check_lock);
	if (suspended)
		fsd_shred(d, "the daemon is stopping while access to the key "
			     "is suspended: the writes it held are lost");
}

void fsd_revoke_stop(struct fsd *d)
{
	if (!d->checker_started)
		return;
	pthread_mutex_lock(&d->check_lock);
	d->check_stop = true;
	pthread_cond_signal(&d->check_cond);
	pthread_mutex_unlock(&d->check_lock);
	/* A check in progress finishes first (its retries are bounded). */
	pthread_join(d->checker, NULL);
	d->checker_started = false;
}
