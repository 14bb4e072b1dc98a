/* SPDX-License-Identifier: Apache-2.0 */
/*
 * workers.c — the FUSE worker threads of the classic transport: each reads
 * requests from /dev/fuse and serves them through the FUSE operations
 * (ops.c); SIGUSR1 interrupts their reads, at shutdown and after a shred.
 * The io_uring transport's queue threads are uring.c's.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <linux/fuse.h>

#include "fsd.h"

void fsd_on_usr1(int sig)
{
	(void)sig;
}

static void *worker_main(void *arg)
{
	struct fsd_worker *w = arg;
	struct fsd *d = w->fsd;
	uint64_t one = 1;
	bool wiped = false;
	sigset_t usr1;

	fsd_self = w;
	/* SIGUSR1 interrupts our read of /dev/fuse at shutdown. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	while (!fuse_session_exited(d->se)) {
		int r;

		/* Once a shred or a suspension has closed our key (it then
		 * kicks us out of our read), the plaintext in our buffers
		 * goes; every later request's is wiped once it is served,
		 * until the keys are back. */
		if (!fsd_worker_keyless(w))
			wiped = false;
		else if (!wiped) {
			fsd_worker_wipe(w);
			wiped = true;
		}
		r = fuse_session_receive_buf(d->se, &w->fbuf);
		if (r == -EINTR || r == -EAGAIN || r == -ENOENT)
			continue;
		if (r == -ENODEV)
			atomic_store(&d->conn_dead, true);
		if (r <= 0)
			break; /* -ENODEV: unmounted or aborted */
		if (w->fbuf.size > w->fbuf_used)
			w->fbuf_used = w->fbuf.size;
		if (w->fbuf.size >= sizeof(struct fuse_in_header)) {
			const struct fuse_in_header *ih = w->fbuf.mem;

			fsd_busy_begin(&w->busy, ih->opcode, ih->unique);
		}
		fuse_session_process_buf(d->se, &w->fbuf);
		fsd_busy_end(&w->busy);
		if (wiped)
			secmem_wipe(w->fbuf.mem, w->fbuf.size);
	}
	if (atomic_fetch_sub(&d->live_workers, 1) == 1 &&
	    write(d->done_efd, &one, sizeof(one)) < 0)
		fsd_err("cannot signal the end of the workers");
	return NULL;
}

int fsd_workers_start(struct fsd *d, unsigned from, unsigned to, char *err,
		      size_t errlen)
{
	int r;

	for (unsigned i = from; i < to; i++) {
		r = fsd_worker_init(d, &d->workers[i]);
		if (r) {
			snprintf(err, errlen, "cannot set up I/O worker %u: %s",
				 i, strerror(-r));
			return r;
		}
	}
	for (unsigned i = from; i < to; i++) {
		atomic_fetch_add(&d->live_workers, 1);
		r = pthread_create(&d->workers[i].thread, NULL, worker_main,
				   &d->workers[i]);
		if (r) {
			atomic_fetch_sub(&d->live_workers, 1);
			snprintf(err, errlen,
				 "cannot start a worker thread: %s",
				 strerror(r));
			return -r;
		}
		d->workers[i].started = true;
	}
	return 0;
}

bool fsd_workers_done(struct fsd *d, int ms)
{
	struct pollfd pfd = { .fd = d->done_efd, .events = POLLIN };

	if (!atomic_load(&d->live_workers))
		return true;
	return poll(&pfd, 1, ms) == 1;
}

void fsd_kick_workers(struct fsd *d)
{
	for (unsigned i = 0; i < d->nworkers; i++)
		if (d->workers[i].started)
			pthread_kill(d->workers[i].thread, SIGUSR1);
	fsd_uring_kick(d);
}
