/* SPDX-License-Identifier: Apache-2.0 */
/*
 * uring.c — FUSE over io_uring (Linux 6.14+): the kernel hands requests to
 * the daemon through io_uring commands instead of read(2) on /dev/fuse, and
 * takes the reply with the command that fetches the next request.
 *
 * The kernel has one queue per possible CPU and puts a request on the queue
 * of the CPU its task runs on.  Each queue is served by THREADS_MIN / CPUs
 * threads (at least one), each with its own ring and its share of the
 * queue's entries; an entry is a request header and a payload buffer
 * registered with the kernel.  The threads are not pinned: on two CPUs a
 * queue thread pinned to the submitter's CPU halves 1 MiB throughput, the
 * other CPU idling, and a second thread per queue lets both CPUs decrypt.
 * A thread's ring carries both the FUSE commands and the backend I/O, so it
 * has as many requests in flight as it has entries, where a classic worker
 * thread has one:
 *
 *   FUSE CQE: a request in entry e
 *     READ    backend read of the covering sectors into e's payload
 *     WRITE   (sector-aligned) encrypt e's payload in place, backend write
 *     FSYNC   backend fsync
 *     other   served synchronously by the libfuse handlers of ops.c,
 *             through fuse_session_process_buf(); the reply is captured by
 *             the writev hook into e instead of going to /dev/fuse
 *   backend CQE: resubmit the remainder of a short transfer, or finish the
 *     request (decrypt a read in place) and commit the reply with
 *     COMMIT_AND_FETCH, which also re-arms e.
 *
 * Locks: an aligned write holds its sectors' stripes shared from submission
 * to completion, taken with trylock so that a queue thread never blocks
 * while it has I/O in flight.  A write that needs the stripes exclusively
 * (read-modify-write of a partial sector) or finds one taken goes the
 * synchronous way, after the queue has drained its own I/O: then it holds
 * no stripe and cannot deadlock against itself.
 *
 * Requests that arrive while a queue drains are parked; the loop of
 * queue_main serves every parked request before it waits again, so none
 * waits for an unrelated arrival.
 *
 * The connection is set up the classic way (INIT through /dev/fuse, by a
 * classic worker); the INIT reply is marked FUSE_OVER_IO_URING by the hook
 * in ops.c when the kernel offers it; then the queues register.  FORGET and
 * INTERRUPT stay on /dev/fuse, where the read hook of ops.c drops every
 * INTERRUPT before libfuse sees it (why: there).  libfuse 3.14 knows
 * nothing of this transport, hence this file.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>

#include <linux/fuse.h>

#include "fsd.h"

/*
 * The ABI of FUSE over io_uring (include/uapi/linux/fuse.h, protocol 7.42).
 * Debian 12's kernel headers (7.38) predate it.
 */
#define URING_INIT_FLAG2 (1u << 9) /* FUSE_OVER_IO_URING: 1ULL << 41 */

struct uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id; /* echoed in the commit of the reply */
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

struct uring_req_header {
	char in_out[128]; /* fuse_in_header in, fuse_out_header out */
	char op_in[128];  /* the request's first argument (fuse_read_in...) */
	struct uring_ent_in_out ent;
};

enum { URING_CMD_REGISTER = 1, URING_CMD_COMMIT_AND_FETCH = 2 };

struct uring_cmd_req { /* in the SQE's command area (SQE128) */
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

/* Entries per thread: 128 in all, at least 8 and at most 32 per thread;
 * each has a payload buffer of FSD_BUF_LEN bytes, touched only as used. */
#define DEPTH_TOTAL 128u
#define DEPTH_MIN   8u
#define DEPTH_MAX   32u
/* Threads in all, when there are fewer CPUs. */
#define THREADS_MIN 4u
/* More possible CPUs than this: classic transport. */
#define MAX_QUEUES 256u

#define FIXED_BACKEND 0
#define FIXED_FUSE    1

#define TAG_IO 1ul /* user_data of backend I/O; FUSE commands: 0 */

enum io_kind { IO_NONE, IO_READ, IO_WRITE, IO_FSYNC };
/* As the metrics count them. */
static const enum fsd_io_kind io_metric[] = {
	[IO_READ] = FSD_IO_READ,
	[IO_WRITE] = FSD_IO_WRITE,
	[IO_FSYNC] = FSD_IO_FSYNC,
};

struct ent {
	struct fsd_queue *q;
	struct uring_req_header *hdr;
	uint8_t *payload; /* FSD_BUF_LEN bytes */
	struct iovec iov[2];
	bool live;   /* registered and not torn down */
	size_t used; /* payload bytes ever written: what to wipe */
	enum io_kind io;
	uint64_t unique;
	uint64_t pos;	   /* plaintext offset asked (read) */
	uint64_t a0;	   /* first byte of the backend transfer */
	size_t span, done; /* transfer length, bytes done */
	uint64_t io_t0;	   /* obs_now_ns() when the transfer went out */
	size_t size;	   /* bytes asked (read) or written (write) */
	bool datasync;
	bool locked; /* the write holds sectors a0/ss .. (a0+span)/ss-1 */
	struct fsd_claim *claim; /* its range (rekey.c; in d->uring_claims) */
	uint64_t split;		 /* [a0, split) under the new key */
	struct fsd_busy busy;	 /* the request in e, for the watchdog */
};

struct fsd_queue {
	struct fsd *fsd;
	struct fsd_worker *w; /* cipher context; slow path (ops.c) */
	unsigned qid, depth;
	pthread_t thread;
	bool started;
	struct io_uring ring;
	bool ring_ok;
	bool leaving; /* settling before the thread exits (queue_settle) */
	struct ent *ents;
	uint8_t *mem; /* headers, payloads, request buffer */
	size_t mem_len;
	uint8_t *reqbuf; /* a request rebuilt for libfuse */
	size_t reqbuf_used;
	size_t req_len;	      /* of the request being served from it, 0: none */
	unsigned live;	      /* entries registered */
	unsigned io;	      /* backend I/Os in flight */
	struct ent **pending; /* requests that arrived while draining */
	unsigned npending;
	bool spin;	   /* poll before the next wait (see wait_spin) */
	bool taskrun_flag; /* the ring says when it has work for us */
	atomic_bool stop;
	int status; /* of the registration: 1 pending, 0 ok, -errno */
};

/* The reply libfuse sends from the handler running for entry e. */
static __thread struct ent *capture;

static const char *enable_param = "/sys/module/fuse/parameters/enable_uring";

static void mark_used(struct ent *e, size_t n)
{
	if (n > e->used)
		e->used = n < FSD_BUF_LEN ? n : FSD_BUF_LEN;
}

/* ---- the INIT handshake (hooks of ops.c) */

void fsd_uring_saw_request(struct fsd *d, const void *buf, size_t len)
{
	const struct fuse_in_header *ih = buf;
	const struct fuse_init_in *ii =
		(const void *)((const char *)buf + sizeof(*ih));

	if (len < sizeof(*ih) + sizeof(*ii) || ih->opcode != FUSE_INIT)
		return;
	d->init_unique = ih->unique;
	d->uring_offered = ii->major == 7 && ii->minor >= 36 &&
			   (ii->flags & FUSE_INIT_EXT) &&
			   (ii->flags2 & URING_INIT_FLAG2);
	atomic_store(&d->init_seen, true);
}

bool fsd_uring_send_init_reply(struct fsd *d, int fd, struct iovec *iov,
			       int count, ssize_t *res)
{
	struct fuse_out_header *oh = iov[0].iov_base;
	struct fuse_init_out *io = count >= 2 ? iov[1].iov_base : NULL;

	if (!atomic_load(&d->init_seen) || atomic_load(&d->init_replied) ||
	    iov[0].iov_len != sizeof(*oh) || oh->unique != d->init_unique)
		return false;
	if (d->uring_offered && io && !oh->error &&
	    iov[1].iov_len >= sizeof(*io)) {
		io->flags |= FUSE_INIT_EXT;
		io->flags2 |= URING_INIT_FLAG2;
		d->uring_agreed = true;
	}
	*res = writev(fd, iov, count);
	pthread_mutex_lock(&d->uring_lock);
	atomic_store(&d->init_replied, true);
	pthread_cond_broadcast(&d->uring_cond);
	pthread_mutex_unlock(&d->uring_lock);
	return true;
}

bool fsd_uring_wait_init(struct fsd *d, int seconds)
{
	struct timespec until;
	bool done;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += seconds;
	pthread_mutex_lock(&d->uring_lock);
	while (!atomic_load(&d->init_replied) &&
	       pthread_cond_timedwait(&d->uring_cond, &d->uring_lock, &until) !=
		       ETIMEDOUT)
		;
	done = atomic_load(&d->init_replied);
	pthread_mutex_unlock(&d->uring_lock);
	return done;
}

bool fsd_uring_capture(const struct iovec *iov, int count, ssize_t *res)
{
	struct ent *e = capture;
	size_t total = 0, n = 0;

	if (!e)
		return false;
	for (int i = 0; i < count; i++)
		total += iov[i].iov_len;
	if (count < 1 || iov[0].iov_len != sizeof(struct fuse_out_header) ||
	    total - iov[0].iov_len > FSD_BUF_LEN) {
		*res = -1;
		errno = EINVAL;
		return true;
	}
	memcpy(e->hdr->in_out, iov[0].iov_base, iov[0].iov_len);
	for (int i = 1; i < count; i++) {
		memcpy(e->payload + n, iov[i].iov_base, iov[i].iov_len);
		n += iov[i].iov_len;
	}
	e->hdr->ent.payload_sz = (uint32_t)n;
	mark_used(e, n);
	capture = NULL; /* one reply per request */
	*res = (ssize_t)total;
	return true;
}

/* ---- configuration */

unsigned fsd_uring_nqueues(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	char line[256], *p = line, *end;
	unsigned long n = 0, a, b;

	/* "0-1", "0", "0-3,8-11" */
	if (!f)
		return 0;
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	fclose(f);
	while (*p >= '0' && *p <= '9') {
		a = b = strtoul(p, &end, 10);
		if (*end == '-')
			b = strtoul(end + 1, &end, 10);
		if (b < a)
			return 0;
		n += b - a + 1;
		if (*end != ',')
			break;
		p = end + 1;
	}
	return n <= MAX_QUEUES ? (unsigned)n : 0;
}

int fsd_uring_enabled(bool enable, char *err, size_t errlen)
{
	char v = 0;
	FILE *f = fopen(enable_param, "re");

	if (!f) {
		snprintf(err, errlen,
			 "this kernel has no FUSE over io_uring (%s: %s; it "
			 "needs Linux 6.14 or later built with "
			 "CONFIG_FUSE_IO_URING)",
			 enable_param, strerror(errno));
		return -EOPNOTSUPP;
	}
	if (fread(&v, 1, 1, f) != 1)
		v = 0;
	fclose(f);
	/* Opened for writing only to switch it: a read-only sysfs (a
	 * container) that has it on already is fine. */
	if (v != 'Y' && enable) {
		int r = 0;

		f = fopen(enable_param, "we");
		if (!f || fputs("Y\n", f) < 0 || fflush(f))
			r = errno ? -errno : -EIO;
		if (f && fclose(f) && !r)
			r = errno ? -errno : -EIO;
		if (r) {
			snprintf(err, errlen,
				 "cannot enable FUSE over io_uring in %s: %s",
				 enable_param, strerror(-r));
			return r;
		}
		fsd_info("enabled FUSE over io_uring in %s", enable_param);
		v = 'Y';
	}
	if (v != 'Y') {
		snprintf(err, errlen,
			 "FUSE over io_uring is disabled (%s is N; 'cmkfs "
			 "mount --fuse-io-uring on' enables it)",
			 enable_param);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* ---- the queue's ring */

/* An entry has at most one SQE waiting for submission, and the SQ holds
 * two per entry: one submission always makes room. */
static struct io_uring_sqe *get_sqe(struct fsd_queue *q)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&q->ring)))
		io_uring_submit(&q->ring);
	return sqe;
}

static void prep_fuse_cmd(struct fsd_queue *q, struct ent *e, unsigned op)
{
	struct io_uring_sqe *sqe = get_sqe(q);
	struct uring_cmd_req *cr;

	memset((void *)sqe, 0, 2 * sizeof(*sqe)); /* SQE128 */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = FIXED_FUSE;
	sqe->flags = IOSQE_FIXED_FILE;
	sqe->cmd_op = op;
	if (op == URING_CMD_REGISTER) {
		sqe->addr = (uint64_t)(uintptr_t)e->iov;
		sqe->len = 2;
	}
	cr = (struct uring_cmd_req *)sqe->cmd;
	cr->qid = (uint16_t)q->qid;
	cr->commit_id = e->hdr->ent.commit_id;
	io_uring_sqe_set_data(sqe, e);
}

/* Send the reply in e (error: -errno; else n payload bytes are the reply
 * arguments) and fetch the next request into e. */
static void commit(struct ent *e, int error, size_t n)
{
	struct fuse_out_header *oh = (struct fuse_out_header *)e->hdr->in_out;

	oh->error = error;
	oh->unique = e->unique;
	oh->len = (uint32_t)(sizeof(*oh) + (error ? 0 : n));
	e->hdr->ent.payload_sz = error ? 0 : (uint32_t)n;
	e->io = IO_NONE;
	fsd_claim_drop(e->claim);
	fsd_busy_end(&e->busy);
	prep_fuse_cmd(e->q, e, URING_CMD_COMMIT_AND_FETCH);
}

/* A data request failed: counted, answered EIO. */
static void commit_eio(struct ent *e)
{
	atomic_fetch_add(&e->q->fsd->io_errors, 1);
	commit(e, -EIO, 0);
}

static void io_done(struct ent *e, int res);

/* A volume in memory (tmpfs, ramfs) is read and written where the request
 * is, synchronously: the kernel cannot do tmpfs I/O without blocking in
 * its view (no FMODE_NOWAIT), so the ring would hand every transfer to a
 * worker thread, two context switches for a memory copy (and an fsync, which
 * the ring always hands to a worker, is nothing there).  Never waits for a
 * device, unless the pages were swapped out.  Small transfers only: a
 * large copy is better left to a worker on another CPU, while this thread
 * decrypts (measured: 1 MiB reads at queue depth 16 lost a third inline).
 */
#define INLINE_MAX (64u << 10)

static void inline_io(struct ent *e)
{
	struct fsd *d = e->q->fsd;
	size_t done = e->done;
	ssize_t n = 0;

	e->q->io++;
	if (e->io == IO_FSYNC) {
		n = e->datasync ? fdatasync(d->backend_fd)
				: fsync(d->backend_fd);
		io_done(e, n ? -errno : 0);
		return;
	}
	while (done < e->span) {
		uint8_t *p = e->payload + done;
		off_t off = (off_t)(d->data_offset + e->a0 + done);

		n = e->io == IO_READ
			    ? pread(d->backend_fd, p, e->span - done, off)
			    : pwrite(d->backend_fd, p, e->span - done, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			errno = EIO; /* not from a blocking tmpfs descriptor */
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (done > e->done || n == 0)
		io_done(e, (int)(done - e->done));
	else
		io_done(e, -errno);
}

static void submit_io(struct ent *e)
{
	struct fsd_queue *q = e->q;
	struct io_uring_sqe *sqe;
	uint64_t off = q->fsd->data_offset + e->a0 + e->done;
	uint8_t *p = e->payload + e->done;
	unsigned n = (unsigned)(e->span - e->done);

	e->io_t0 = obs_now_ns();
	if (q->fsd->backend_in_memory && e->span - e->done <= INLINE_MAX) {
		inline_io(e);
		return;
	}
	sqe = get_sqe(q);

	/* The payloads are not registered buffers: pinning every entry's
	 * megabyte up front would cost more memory than the per-I/O page
	 * pinning costs time (measured: no gain at 1 MiB). */
	switch (e->io) {
	case IO_READ:
		io_uring_prep_read(sqe, FIXED_BACKEND, p, n, off);
		break;
	case IO_WRITE:
		io_uring_prep_write(sqe, FIXED_BACKEND, p, n, off);
		break;
	default:
		io_uring_prep_fsync(sqe, FIXED_BACKEND,
				    e->datasync ? IORING_FSYNC_DATASYNC : 0);
		break;
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)e | TAG_IO);
	q->io++;
}

static void unlock_write(struct ent *e)
{
	uint64_t ss = e->q->fsd->sector_size;

	if (e->locked)
		fsd_unlock_sectors(e->q->fsd, e->a0 / ss,
				   (e->a0 + e->span) / ss - 1);
	e->locked = false;
}

/* ---- the data path */

static void slow_path(struct ent *e);

/* A read: start it and return true; false when it meets a block being
 * reencrypted (the synchronous path waits for it). */
static bool start_read(struct ent *e)
{
	const struct fuse_read_in *ri = (const void *)e->hdr->op_in;
	struct fsd *d = e->q->fsd;
	uint64_t pos = ri->offset;

	e->size = fsd_read_span(d, pos, ri->size, &e->a0, &e->span);
	if (!e->size) {
		commit(e, 0, 0);
		return true;
	}
	if (!fsd_claim_try(d, e->claim, e->a0, e->a0 + e->span, &e->split))
		return false;
	e->pos = pos;
	mark_used(e, e->span);
	e->done = 0;
	e->io = IO_READ;
	submit_io(e);
	return true;
}

static void finish_read(struct ent *e)
{
	struct fsd *d = e->q->fsd;
	struct fsd_worker *w = e->q->w;
	int r;

	pthread_mutex_lock(&w->sc_lock);
	r = fsd_crypt(w, false, e->a0, e->payload, e->payload, e->span,
		      e->split);
	pthread_mutex_unlock(&w->sc_lock);
	if (r == -EAGAIN && e->q->leaving) {
		commit_eio(e); /* no waiting for keys on the way out */
		return;
	}
	if (r == -EAGAIN) {
		/* Suspended meanwhile (nothing was decrypted): the request
		 * waits for the keys the synchronous way. */
		fsd_claim_drop(e->claim);
		e->io = IO_NONE;
		slow_path(e);
		return;
	}
	if (r) {
		commit_eio(e);
		return;
	}
	if (e->pos != e->a0)
		memmove(e->payload, e->payload + (e->pos - e->a0), e->size);
	atomic_fetch_add(&d->bytes_read, e->size);
	atomic_fetch_add(&d->reads, 1);
	commit(e, 0, e->size);
}

/* An aligned write inside the segment, its stripes free: start it and
 * return true.  Anything else is left to the synchronous path. */
static bool start_write(struct ent *e)
{
	const struct fuse_write_in *wi = (const void *)e->hdr->op_in;
	struct fsd *d = e->q->fsd;
	struct fsd_worker *w = e->q->w;
	uint64_t ss = d->sector_size, pos = wi->offset;
	size_t size = wi->size;
	int r;

	if (d->read_only || size == 0 || pos % ss || size % ss ||
	    size > FSD_MAX_REQ || size != e->hdr->ent.payload_sz ||
	    pos >= d->data_size || size > d->data_size - pos)
		return false;
	if (!fsd_trylock_sectors(d, pos / ss, (pos + size) / ss - 1))
		return false;
	if (!fsd_claim_try(d, e->claim, pos, pos + size, &e->split)) {
		fsd_unlock_sectors(d, pos / ss, (pos + size) / ss - 1);
		return false;
	}
	e->a0 = pos;
	e->span = e->size = size;
	e->done = 0;
	e->locked = true;
	pthread_mutex_lock(&w->sc_lock);
	r = fsd_crypt(w, true, pos, e->payload, e->payload, size, e->split);
	pthread_mutex_unlock(&w->sc_lock);
	if (r == -EAGAIN) {
		/* Suspended (nothing was encrypted): the synchronous path
		 * waits for the keys. */
		unlock_write(e);
		fsd_claim_drop(e->claim);
		return false;
	}
	if (r) {
		/* Shredded: the plaintext it brought goes at once. */
		secmem_wipe(e->payload, size);
		unlock_write(e);
		commit_eio(e);
		return true;
	}
	e->io = IO_WRITE;
	submit_io(e);
	return true;
}

static void finish_write(struct ent *e)
{
	struct fsd *d = e->q->fsd;
	struct fuse_write_out wo = { .size = (uint32_t)e->size };

	unlock_write(e);
	atomic_fetch_add(&d->bytes_written, e->size);
	atomic_fetch_add(&d->writes, 1);
	memcpy(e->payload, &wo, sizeof(wo));
	commit(e, 0, sizeof(wo));
}

static void io_done(struct ent *e, int res)
{
	struct fsd *d = e->q->fsd;

	e->q->io--;
	obs_hist_observe(&e->q->w->io_time[io_metric[e->io]],
			 obs_now_ns() - e->io_t0);
	if (res == -EAGAIN || res == -EINTR) {
		submit_io(e);
		return;
	}
	if (res == 0 && e->io != IO_FSYNC)
		res = -EIO; /* end of the volume inside the segment */
	if (res < 0) {
		if (e->io == IO_FSYNC)
			fsd_err("%s: fsync: %s", d->volume, strerror(-res));
		else
			fsd_err("%s %s: %zu bytes at offset %llu: %s",
				d->volume, e->io == IO_WRITE ? "write" : "read",
				e->span - e->done,
				(unsigned long long)(d->data_offset + e->a0 +
						     e->done),
				strerror(-res));
		unlock_write(e);
		commit_eio(e);
		return;
	}
	if (e->io != IO_FSYNC) {
		e->done += (size_t)res;
		if (e->done < e->span) {
			submit_io(e); /* short transfer: the rest */
			return;
		}
	}
	if (e->io == IO_READ)
		finish_read(e);
	else if (e->io == IO_WRITE)
		finish_write(e);
	else
		commit(e, 0, 0);
}

static void reap(struct fsd_queue *q, bool draining);

/* Wait for every backend I/O of the queue; requests that arrive meanwhile
 * are parked for queue_main.  0, or the ring's error (I/O still in
 * flight). */
static int drain(struct fsd_queue *q)
{
	while (q->io) {
		int r = io_uring_submit_and_wait(&q->ring, 1);

		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
			return r;
		reap(q, true);
	}
	return 0;
}

/* Any request, through libfuse and the handlers of ops.c, synchronously. */
static void slow_path(struct ent *e)
{
	struct fsd_queue *q = e->q;
	const struct fuse_in_header *ih = (const void *)e->hdr->in_out;
	size_t psz = e->hdr->ent.payload_sz, len = ih->len, oplen;
	bool shredded = atomic_load(&q->fsd->shredded);
	struct fuse_buf buf = { 0 };
	int r;

	if (len < sizeof(*ih) + psz || psz > FSD_BUF_LEN ||
	    (oplen = len - sizeof(*ih) - psz) > sizeof(e->hdr->op_in)) {
		fsd_err("FUSE request %u over io_uring: bad length %zu",
			ih->opcode, len);
		commit(e, -EIO, 0);
		return;
	}
	/* Exclusive stripe locks may be needed, or a wait for a block being
	 * reencrypted: hold no stripe and no claim ourselves.  A ring that
	 * fails to drain still has I/O holding them: this request fails
	 * instead of deadlocking on them. */
	if (ih->opcode == FUSE_WRITE || ih->opcode == FUSE_FALLOCATE ||
	    ih->opcode == FUSE_READ) {
		r = drain(q);
		if (r) {
			fsd_err("FUSE queue %u: cannot wait for its I/O: %s",
				q->qid, strerror(-r));
			commit_eio(e);
			return;
		}
	}
	memcpy(q->reqbuf, ih, sizeof(*ih));
	memcpy(q->reqbuf + sizeof(*ih), e->hdr->op_in, oplen);
	memcpy(q->reqbuf + sizeof(*ih) + oplen, e->payload, psz);
	if (len > q->reqbuf_used)
		q->reqbuf_used = len;
	q->req_len = len;
	/* With the keys gone, what a write brings is refused (shredded) or
	 * held (suspended): the payload's copy goes now, the request
	 * buffer's once served, if the keys were shredded meanwhile. */
	if (shredded || atomic_load(&q->fsd->suspended))
		secmem_wipe(e->payload, psz);
	buf.mem = q->reqbuf;
	buf.size = len;
	capture = e;
	fuse_session_process_buf(q->fsd->se, &buf);
	q->req_len = 0;
	if (shredded || atomic_load(&q->fsd->shredded))
		secmem_wipe(q->reqbuf, len);
	fsd_busy_end(&e->busy);
	if (capture) {
		/* No reply: every request of ours gets one; be safe. */
		capture = NULL;
		commit(e, -EIO, 0);
		return;
	}
	prep_fuse_cmd(q, e, URING_CMD_COMMIT_AND_FETCH);
}

/* A request has arrived in e. */
static void dispatch(struct ent *e)
{
	const struct fuse_in_header *ih = (const void *)e->hdr->in_out;
	const struct fuse_fsync_in *fi;

	e->unique = ih->unique;
	mark_used(e, e->hdr->ent.payload_sz);
	switch (ih->opcode) {
	case FUSE_READ:
		if (start_read(e))
			return;
		break;
	case FUSE_WRITE:
		if (start_write(e))
			return;
		break;
	case FUSE_FSYNC:
		fi = (const void *)e->hdr->op_in;
		e->datasync = fi->fsync_flags & 1; /* FUSE_FSYNC_FDATASYNC */
		e->io = IO_FSYNC;
		e->span = e->done = 0;
		submit_io(e);
		return;
	default:
		break;
	}
	slow_path(e);
}

static void handle_cqe(struct fsd_queue *q, uint64_t ud, int res, bool draining)
{
	struct ent *e = (struct ent *)(uintptr_t)(ud & ~TAG_IO);
	const struct fuse_in_header *ih = (const void *)e->hdr->in_out;

	if (ud & TAG_IO) {
		io_done(e, res);
		return;
	}
	if (res < 0) {
		/* Torn down: unmounted, aborted, or the ring is closing. */
		if (e->live && res != -ENOTCONN && res != -ECANCELED &&
		    !atomic_load(&q->stop))
			fsd_err("FUSE queue %u: %s", q->qid, strerror(-res));
		if (e->live)
			q->live--;
		e->live = false;
		return;
	}
	fsd_busy_begin(&e->busy, ih->opcode, ih->unique);
	if (draining) {
		q->pending[q->npending++] = e;
		return;
	}
	dispatch(e);
}

/* Handle every completion there is.  Each is consumed before it is
 * handled: handling may drain, which reaps too. */
static void reap(struct fsd_queue *q, bool draining)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&q->ring, &cqe) == 0) {
		uint64_t ud = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&q->ring, cqe);
		handle_cqe(q, ud, res, draining);
	}
}

static int queue_setup(struct fsd_queue *q)
{
	struct fsd *d = q->fsd;
	struct io_uring_params p = { 0 };
	size_t hdrs =
		((size_t)q->depth * sizeof(struct uring_req_header) + 4095) &
		~(size_t)4095;
	int fds[2] = { d->backend_fd, fuse_session_fd(d->se) };
	int r;

	q->mem_len = hdrs + (size_t)q->depth * FSD_BUF_LEN + FSD_BUF_LEN + 4096;
	q->mem = mmap(NULL, q->mem_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (q->mem == MAP_FAILED) {
		q->mem = NULL;
		return -ENOMEM;
	}
	/* Plaintext passes through: out of core dumps and children. */
	madvise(q->mem, q->mem_len, MADV_DONTDUMP);
	madvise(q->mem, q->mem_len, MADV_WIPEONFORK);
	q->reqbuf = q->mem + hdrs + (size_t)q->depth * FSD_BUF_LEN;
	q->ents = calloc(q->depth, sizeof(*q->ents));
	q->pending = calloc(q->depth, sizeof(struct ent *));
	if (!q->ents || !q->pending)
		return -ENOMEM;
	for (unsigned i = 0; i < q->depth; i++) {
		struct ent *e = &q->ents[i];

		e->q = q;
		e->claim = &d->uring_claims[(size_t)(q - d->queues) * q->depth +
					    i];
		e->hdr = (struct uring_req_header *)(void *)q->mem + i;
		e->payload = q->mem + hdrs + (size_t)i * FSD_BUF_LEN;
		e->iov[0].iov_base = e->hdr;
		e->iov[0].iov_len = sizeof(*e->hdr);
		e->iov[1].iov_base = e->payload;
		e->iov[1].iov_len = FSD_BUF_LEN;
	}
	/* Completions are reaped only by this thread, when it waits; the
	 * ring flags the completions it holds for us (IORING_SQ_TASKRUN), so
	 * that wait_spin can see them without a system call. */
	p.flags = IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER |
		  IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
	r = io_uring_queue_init_params(2 * q->depth + 2, &q->ring, &p);
	q->taskrun_flag = !r;
	if (r == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_SQE128;
		r = io_uring_queue_init_params(2 * q->depth + 2, &q->ring, &p);
	}
	if (r)
		return r;
	q->ring_ok = true;
	return io_uring_register_files(&q->ring, fds, 2);
}

/* Register every entry; errors come back at once, requests later. */
static int queue_register(struct fsd_queue *q)
{
	struct io_uring_cqe *cqe;
	int r = 0;

	for (unsigned i = 0; i < q->depth; i++) {
		q->ents[i].hdr->ent.commit_id = 0;
		q->ents[i].live = true;
		prep_fuse_cmd(q, &q->ents[i], URING_CMD_REGISTER);
	}
	q->live = q->depth;
	r = io_uring_submit(&q->ring);
	if (r < 0)
		return r;
	while (io_uring_peek_cqe(&q->ring, &cqe) == 0) {
		struct ent *e = io_uring_cqe_get_data(cqe);

		if (cqe->res < 0) {
			r = cqe->res;
			e->live = false;
			q->live--;
			io_uring_cqe_seen(&q->ring, cqe);
			continue;
		}
		q->pending[q->npending++] = e;
		io_uring_cqe_seen(&q->ring, cqe);
	}
	return r < 0 ? r : 0;
}

static void report(struct fsd_queue *q, int status)
{
	pthread_mutex_lock(&q->fsd->uring_lock);
	q->status = status;
	pthread_cond_broadcast(&q->fsd->uring_cond);
	pthread_mutex_unlock(&q->fsd->uring_lock);
}

static void queue_free(struct fsd_queue *q, bool quiet);

/* After a shred: wipe the plaintext of every entry, the request buffer and
 * the cipher context's buffer.  A write in flight keeps its [0, span), the
 * ciphertext that must still reach the volume intact; what an earlier,
 * larger request left beyond it goes.  A read in flight is wiped whole:
 * without keys it can only fail, whatever the kernel puts there. */
static void wipe_entry(struct ent *e)
{
	size_t keep = e->io == IO_WRITE ? e->span : 0;

	if (e->used > keep)
		secmem_wipe(e->payload + keep, e->used - keep);
}

static void queue_wipe_idle(struct fsd_queue *q)
{
	for (unsigned i = 0; i < q->depth; i++)
		wipe_entry(&q->ents[i]);
	secmem_wipe(q->reqbuf, q->reqbuf_used);
	fsd_worker_wipe(q->w);
}

/* Before the thread waits at a suspension's gate (suspend.c): the replies
 * prepared so far go to the kernel now rather than after the suspension,
 * and what the thread's own buffers hold besides the request being served
 * goes.  (The idle entries' payloads are the kernel's to fill with the next
 * request at any moment: they are wiped only once the keys are shredded,
 * when every request fails anyway.) */
static void queue_before_hold(struct fsd_worker *w)
{
	struct fsd_queue *q = w->hold_arg;

	io_uring_submit(&q->ring);
	if (q->reqbuf_used > q->req_len)
		secmem_wipe(q->reqbuf + q->req_len,
			    q->reqbuf_used - q->req_len);
}

/*
 * Waiting without sleeping.  A thread that sleeps in io_uring_enter is
 * woken by an inter-processor interrupt when a request or a backend
 * completion arrives for it, and on a virtual machine that costs more than
 * a small request itself (measured on a 2-CPU virtual machine: 7 us per wake-up
 * across CPUs, 3.5 on one CPU, against 2 us for a 4 KiB read of tmpfs).
 * At queue depth 1 a request costs two or three of them: the request, the
 * backend completion (none in memory), the reply (that one wakes the
 * caller, asleep in the kernel: it stays).  So a thread that was busy a
 * moment ago and has no backend I/O in flight polls its ring for up to
 * poll_ns for the next request first: the kernel queues our
 * completions as task work and, with IORING_SETUP_TASKRUN_FLAG, flags them
 * in the shared ring, which is read without a system call.  It yields
 * between looks: the caller it waits for may need this very CPU to make the
 * next request (a plain spin made queue depth 1 slower, not faster).
 *
 * Adaptive, so that an idle volume costs nothing: a thread polls only if
 * its last wait ended within poll_ns (a stream of requests), and at most
 * half the CPUs poll at once (the callers need the rest).  Returns true
 * when there are completions to reap.
 */
static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool stopping(struct fsd_queue *q)
{
	return atomic_load(&q->stop) || fuse_session_exited(q->fsd->se) ||
	       atomic_load(&q->fsd->shredded);
}

static bool wait_spin(struct fsd_queue *q)
{
	struct fsd *d = q->fsd;
	unsigned n = atomic_load(&d->spinners);
	bool got = false;
	int64_t end;

	/* Not while a device works for us: measured on a virtio disk, a
	 * thread polling for its own read's completion made 4 KiB reads at
	 * queue depth 1 slower (84 us p50, against 56 without polling). */
	if (!q->spin || !q->taskrun_flag || q->io)
		return false;
	do
		if (n >= atomic_load(&d->max_spinners))
			return false;
	while (!atomic_compare_exchange_weak(&d->spinners, &n, n + 1));
	end = mono_ns() + d->poll_ns;
	while (!stopping(q)) {
		if (IO_URING_READ_ONCE(*q->ring.sq.kflags) & IORING_SQ_TASKRUN)
			io_uring_get_events(&q->ring);
		if (io_uring_cq_ready(&q->ring)) {
			got = true;
			break;
		}
		if (mono_ns() >= end)
			break;
		sched_yield();
	}
	atomic_fetch_sub(&d->spinners, 1);
	q->spin = got;
	return got;
}

/* Serve the requests parked while the queue drained. */
static void serve_parked(struct fsd_queue *q)
{
	while (q->npending) {
		struct ent *batch[DEPTH_MAX];
		unsigned n = q->npending;

		memcpy(batch, q->pending, n * sizeof(struct ent *));
		q->npending = 0;
		for (unsigned i = 0; i < n; i++)
			dispatch(batch[i]);
	}
}

/* Before a queue thread leaves: its backend I/O completes and every
 * request it took is answered — those parked meanwhile with EIO, starting
 * nothing new, so that it ends however busy the callers are — so that no
 * caller waits for ever and no transfer still uses a buffer when it is
 * unmapped.  False if the ring failed with I/O still in flight. */
static bool queue_settle(struct fsd_queue *q)
{
	q->leaving = true;
	while (q->ring_ok && (q->io || q->npending)) {
		while (q->npending)
			commit_eio(q->pending[--q->npending]);
		if (drain(q)) {
			fsd_err("FUSE queue %u: %u transfers still in flight "
				"at exit",
				q->qid, q->io);
			return false;
		}
	}
	return true;
}

static void *queue_main(void *arg)
{
	struct fsd_queue *q = arg;
	struct fsd *d = q->fsd;
	struct __kernel_timespec backstop = { .tv_sec = 1 };
	struct io_uring_cqe *cqe;
	uint64_t one = 1;
	bool wiped = false, settled;
	sigset_t usr1, waiting;
	int64_t t0;
	int r;

	fsd_self = q->w;
	/* The kick of a stop or a shred (SIGUSR1) is let in only while the
	 * thread sleeps in its ring, as ppoll does: one that comes between
	 * the last look at the flags and the sleep stays pending and ends the
	 * sleep at once. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &waiting);
	sigdelset(&waiting, SIGUSR1);

	r = queue_setup(q);
	if (!r)
		r = queue_register(q);
	report(q, r);
	while (!r && q->live && !atomic_load(&q->stop) &&
	       !fuse_session_exited(d->se)) {
		/* Serve every parked request before waiting: a dispatch may
		 * drain, and park new arrivals in pending[]. */
		serve_parked(q);
		/* A shred sets its flag, wipes the keys, then kicks us.  Once
		 * our key is gone nothing can be encrypted or decrypted here
		 * any more: with every reply prepared so far taken by the
		 * kernel (it copies a reply as it takes it), the plaintext the
		 * entries hold can go — even a request the kernel is just
		 * putting there would fail.  Not while merely suspended: that
		 * request must reach us intact.  Looked at before every wait,
		 * so a kick that came while busy is not needed. */
		r = io_uring_submit(&q->ring);
		if (!wiped && r >= 0 && atomic_load(&d->shredded) &&
		    !io_uring_sq_ready(&q->ring) && fsd_worker_keyless(q->w)) {
			queue_wipe_idle(q);
			wiped = true;
		}
		if (r >= 0 && wait_spin(q)) {
			r = 0;
			reap(q, false);
			continue;
		}
		if (r >= 0 &&
		    (atomic_load(&q->stop) || fuse_session_exited(d->se)))
			break;
		/* A kick that ends a wait which also submitted is used up
		 * without -EINTR, so the sleep has a backstop.  (Without
		 * IORING_FEAT_EXT_ARG liburing would post its own timeout
		 * CQE, but FUSE over io_uring has it: Linux 6.14 against
		 * 5.11.) */
		t0 = mono_ns();
		r = io_uring_submit_and_wait_timeout(
			&q->ring, &cqe, 1,
			q->ring.features & IORING_FEAT_EXT_ARG ? &backstop
							       : NULL,
			&waiting);
		q->spin = mono_ns() - t0 < d->poll_ns;
		if (r == -EINTR || r == -EAGAIN || r == -EBUSY || r == -ETIME) {
			r = 0;
			continue;
		}
		if (r < 0) {
			fsd_err("FUSE queue %u: %s", q->qid, strerror(-r));
			break;
		}
		r = 0;
		reap(q, false);
	}
	/* Replies prepared since the last submission still go to the kernel:
	 * a request held at a suspension and failed by the stop, say, was
	 * answered just as the session ended, and its caller waits for it. */
	settled = queue_settle(q);
	if (q->ring_ok)
		io_uring_submit(&q->ring);
	queue_free(q, settled);
	if (atomic_fetch_sub(&d->live_workers, 1) == 1 &&
	    write(d->done_efd, &one, sizeof(one)) < 0)
		fsd_err("cannot signal the end of the workers");
	return NULL;
}

/* In the queue's own thread: a SINGLE_ISSUER ring takes registrations
 * from its submitter only. */
static void queue_free(struct fsd_queue *q, bool quiet)
{
	if (q->ring_ok) {
		/* As for the workers' rings (backend.c): let go of the
		 * volume and of /dev/fuse now, from this task. */
		io_uring_unregister_files(&q->ring);
		io_uring_queue_exit(&q->ring);
	}
	q->ring_ok = false;
	if (q->mem) {
		/* Plaintext was in what was used; wiping the rest would
		 * only fault it in. */
		for (unsigned i = 0; q->ents && i < q->depth; i++) {
			secmem_wipe(q->ents[i].hdr, sizeof(*q->ents[i].hdr));
			wipe_entry(&q->ents[i]);
		}
		secmem_wipe(q->reqbuf, q->reqbuf_used);
		/* With transfers still in flight (a failed ring), the kernel
		 * may yet copy into or out of the buffers: leaked, never
		 * handed back for another mapping to reuse. */
		if (quiet)
			munmap(q->mem, q->mem_len);
	}
	q->mem = NULL;
	free(q->pending);
	q->pending = NULL;
	/* q->ents stays for the watchdog's readers until fsd_uring_free. */
}

unsigned fsd_uring_nthreads(unsigned nq)
{
	return nq >= THREADS_MIN ? nq : (THREADS_MIN + nq - 1) / nq * nq;
}

int fsd_uring_start(struct fsd *d, struct fsd_worker *workers, unsigned nq,
		    char *err, size_t errlen)
{
	unsigned n = fsd_uring_nthreads(nq), depth = DEPTH_TOTAL / n;
	long cpus;
	int r = 0;

	if (depth < DEPTH_MIN)
		depth = DEPTH_MIN;
	if (depth > DEPTH_MAX)
		depth = DEPTH_MAX;
	d->queues = calloc(n, sizeof(*d->queues));
	/* Every entry's claim in one array the reencryption job scans. */
	d->uring_claims = calloc((size_t)n * depth, sizeof(*d->uring_claims));
	if (!d->queues || !d->uring_claims)
		return -ENOMEM;
	d->n_uring_claims = n * depth;
	d->nqueues = n;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	atomic_store(&d->max_spinners, cpus >= 4 ? (unsigned)cpus / 2 : 1u);
	for (unsigned i = 0; i < n; i++) {
		struct fsd_queue *q = &d->queues[i];

		q->fsd = d;
		q->w = &workers[i];
		q->w->before_hold = queue_before_hold;
		q->w->hold_arg = q;
		q->qid = i % nq;
		q->depth = depth;
		q->status = 1;
		atomic_fetch_add(&d->live_workers, 1);
		r = pthread_create(&q->thread, NULL, queue_main, q);
		if (r) {
			atomic_fetch_sub(&d->live_workers, 1);
			snprintf(err, errlen,
				 "cannot start a FUSE queue thread: %s",
				 strerror(r));
			return -r;
		}
		q->started = true;
	}
	pthread_mutex_lock(&d->uring_lock);
	for (unsigned i = 0; i < n; i++) {
		while (d->queues[i].status == 1)
			pthread_cond_wait(&d->uring_cond, &d->uring_lock);
		if (d->queues[i].status < 0 && !r)
			r = d->queues[i].status;
	}
	pthread_mutex_unlock(&d->uring_lock);
	if (r)
		snprintf(err, errlen,
			 "cannot register FUSE over io_uring queues: %s",
			 strerror(-r));
	else
		fsd_info("FUSE over io_uring: %u queues, %u threads of %u "
			 "requests",
			 nq, n, depth);
	return r;
}

void fsd_uring_kick(struct fsd *d)
{
	for (unsigned i = 0; i < d->nqueues; i++)
		if (d->queues[i].started)
			pthread_kill(d->queues[i].thread, SIGUSR1);
}

void fsd_uring_cancel(struct fsd *d)
{
	for (unsigned i = 0; i < d->nqueues; i++)
		atomic_store(&d->queues[i].stop, true);
	fsd_uring_kick(d);
	fsd_uring_join(d);
	fsd_uring_free(d);
}

void fsd_uring_join(struct fsd *d)
{
	for (unsigned i = 0; i < d->nqueues; i++)
		if (d->queues[i].started) {
			pthread_join(d->queues[i].thread, NULL);
			d->queues[i].started = false;
		}
}

unsigned fsd_uring_requests(struct fsd *d, int fd, int64_t now)
{
	unsigned n = 0;
	char where[64];

	for (unsigned i = 0; i < d->nqueues; i++) {
		struct fsd_queue *q = &d->queues[i];

		for (unsigned j = 0; q->ents && j < q->depth; j++) {
			snprintf(where, sizeof(where),
				 "queue-%u/thread-%u/entry-%u", q->qid, i, j);
			n += fsd_busy_print(fd, &q->ents[j].busy, now, where);
		}
	}
	return n;
}

void fsd_uring_free(struct fsd *d)
{
	for (unsigned i = 0; i < d->nqueues; i++)
		free(d->queues[i].ents);
	free(d->queues);
	d->queues = NULL;
	d->nqueues = 0;
	free(d->uring_claims);
	d->uring_claims = NULL;
	d->n_uring_claims = 0;
}
