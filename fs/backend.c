/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backend.c — the daemon's I/O to the volume: one io_uring ring per worker
 * thread (no SQPOLL: two cores are not enough to spend one polling), with
 * the volume registered as fixed file 0 and the worker's bounce buffer as
 * fixed buffer 0, and the striped sector locks that make read-modify-write
 * of partial sectors atomic per sector.
 *
 * A worker has one request in flight at a time: FUSE's concurrency comes
 * from the number of workers, each blocked in its own ring.  Short
 * transfers, -EAGAIN and -EINTR are resubmitted for the remainder; any other
 * failure is returned to the caller, which answers EIO to that request.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>

#include "fsd.h"

#define RING_ENTRIES 8

int fsd_worker_init(struct fsd *d, struct fsd_worker *w)
{
	struct iovec iov;
	int r;

	memset(w, 0, sizeof(*w));
	w->fsd = d;
	pthread_mutex_init(&w->sc_lock, NULL);
	w->buf = mmap(NULL, FSD_BUF_LEN, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w->buf == MAP_FAILED) {
		w->buf = NULL;
		return -ENOMEM;
	}
	/* Plaintext passes through this buffer: keep it out of core dumps
	 * and children. */
	madvise(w->buf, FSD_BUF_LEN, MADV_DONTDUMP);
	madvise(w->buf, FSD_BUF_LEN, MADV_WIPEONFORK);
	pthread_mutex_lock(&d->key_lock);
	r = d->master ? sc_dup(d->master, &w->sc) : -EIO;
	if (!r && d->master_new)
		r = sc_dup(d->master_new, &w->sc_new);
	pthread_mutex_unlock(&d->key_lock);
	if (r)
		return r;
	r = io_uring_queue_init(RING_ENTRIES, &w->ring, 0);
	if (r)
		return r;
	w->ring_ok = true;
	r = io_uring_register_files(&w->ring, &d->backend_fd, 1);
	if (r)
		return r;
	iov.iov_base = w->buf;
	iov.iov_len = FSD_BUF_LEN;
	/* Registered buffers pin memory (RLIMIT_MEMLOCK for non-root); the
	 * daemon runs as root, but fall back to plain reads if refused. */
	if (io_uring_register_buffers(&w->ring, &iov, 1) == 0)
		w->fixed_buf = true;
	return 0;
}

void fsd_worker_destroy(struct fsd_worker *w)
{
	if (w->ring_ok) {
		/* Drop the ring's reference to the volume now, from this
		 * task: the kernel tears a ring down asynchronously, and a
		 * volume still held after the daemon exits would make, e.g.,
		 * unmounting the filesystem it lives on fail with EBUSY. */
		if (w->fixed_buf)
			io_uring_unregister_buffers(&w->ring);
		io_uring_unregister_files(&w->ring);
		io_uring_queue_exit(&w->ring);
	}
	w->ring_ok = false;
	pthread_mutex_lock(&w->sc_lock);
	sc_close(w->sc);
	sc_close(w->sc_new);
	w->sc = w->sc_new = NULL;
	pthread_mutex_unlock(&w->sc_lock);
	fsd_worker_wipe(w);
	if (w->buf)
		munmap(w->buf, FSD_BUF_LEN);
	w->buf = NULL;
	free(w->fbuf.mem);
	w->fbuf.mem = NULL;
}

bool fsd_worker_keyless(struct fsd_worker *w)
{
	bool none;

	pthread_mutex_lock(&w->sc_lock);
	none = !w->sc;
	pthread_mutex_unlock(&w->sc_lock);
	return none;
}

void fsd_worker_wipe(struct fsd_worker *w)
{
	if (w->buf)
		secmem_wipe(w->buf, FSD_BUF_LEN);
	/* libfuse's receive buffer: the requests read into it, writes'
	 * plaintext among them. */
	if (w->fbuf.mem)
		secmem_wipe(w->fbuf.mem, w->fbuf_used);
}

/* Submit one SQE and wait for its completion: the result, or -errno. */
static int submit_one(struct fsd_worker *w, int op, void *buf, size_t len,
		      uint64_t off, unsigned fsync_flags)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
	struct io_uring_cqe *cqe;
	bool fixed = w->fixed_buf && buf;
	uint64_t t0 = obs_now_ns();
	int r;

	if (!sqe)
		return -EBUSY; /* cannot happen: one SQE in flight at most */
	switch (op) {
	case IORING_OP_READ:
		if (fixed)
			io_uring_prep_read_fixed(sqe, 0, buf, (unsigned)len,
						 off, 0);
		else
			io_uring_prep_read(sqe, 0, buf, (unsigned)len, off);
		break;
	case IORING_OP_WRITE:
		if (fixed)
			io_uring_prep_write_fixed(sqe, 0, buf, (unsigned)len,
						  off, 0);
		else
			io_uring_prep_write(sqe, 0, buf, (unsigned)len, off);
		break;
	default:
		io_uring_prep_fsync(sqe, 0, fsync_flags);
		break;
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	do
		r = io_uring_submit_and_wait(&w->ring, 1);
	while (r == -EINTR || r == -EAGAIN);
	if (r < 0)
		return r;
	do
		r = io_uring_wait_cqe(&w->ring, &cqe);
	while (r == -EINTR);
	if (r < 0)
		return r;
	r = cqe->res;
	io_uring_cqe_seen(&w->ring, cqe);
	obs_hist_observe(&w->io_time[op == IORING_OP_READ    ? FSD_IO_READ
				     : op == IORING_OP_WRITE ? FSD_IO_WRITE
							     : FSD_IO_FSYNC],
			 obs_now_ns() - t0);
	return r;
}

static int transfer(struct fsd_worker *w, bool write, uint8_t *buf, size_t len,
		    uint64_t off)
{
	uint64_t base = w->fsd->data_offset + off;
	size_t done = 0;
	int r;

	while (done < len) {
		r = submit_one(w, write ? IORING_OP_WRITE : IORING_OP_READ,
			       buf + done, len - done, base + done, 0);
		if (r == -EAGAIN || r == -EINTR)
			continue;
		if (r == 0)
			r = -EIO; /* end of the volume inside the segment */
		if (r < 0) {
			fsd_err("%s %s: %zu bytes at offset %llu: %s",
				w->fsd->volume, write ? "write" : "read",
				len - done, (unsigned long long)(base + done),
				strerror(-r));
			return r;
		}
		done += (size_t)r;
	}
	return 0;
}

int fsd_backend_read(struct fsd_worker *w, void *buf, size_t len, uint64_t off)
{
	return transfer(w, false, buf, len, off);
}

int fsd_backend_write(struct fsd_worker *w, const void *buf, size_t len,
		      uint64_t off)
{
	/* The ring only reads from buf for a write. */
	return transfer(w, true, (uint8_t *)(uintptr_t)buf, len, off);
}

int fsd_backend_fsync(struct fsd_worker *w, bool datasync)
{
	int r;

	do
		r = submit_one(w, IORING_OP_FSYNC, NULL, 0, 0,
			       datasync ? IORING_FSYNC_DATASYNC : 0);
	while (r == -EAGAIN || r == -EINTR);
	if (r < 0)
		fsd_err("%s: fsync: %s", w->fsd->volume, strerror(-r));
	return r < 0 ? r : 0;
}

/* The stripes of sectors [first, last] as at most two ascending ranges. */
static unsigned stripe_ranges(uint64_t first, uint64_t last, unsigned lo[2],
			      unsigned hi[2])
{
	unsigned a = (unsigned)(first % FSD_LOCKS);
	unsigned b = (unsigned)(last % FSD_LOCKS);

	if (last - first + 1 >= FSD_LOCKS) {
		lo[0] = 0;
		hi[0] = FSD_LOCKS - 1;
		return 1;
	}
	if (a <= b) {
		lo[0] = a;
		hi[0] = b;
		return 1;
	}
	lo[0] = 0;
	hi[0] = b;
	lo[1] = a;
	hi[1] = FSD_LOCKS - 1;
	return 2;
}

void fsd_lock_sectors(struct fsd *d, uint64_t first, uint64_t last,
		      uint64_t head, uint64_t tail)
{
	unsigned lo[2], hi[2], n = stripe_ranges(first, last, lo, hi);
	unsigned hs = (unsigned)(head % FSD_LOCKS);
	unsigned ts = (unsigned)(tail % FSD_LOCKS);

	for (unsigned k = 0; k < n; k++)
		for (unsigned i = lo[k]; i <= hi[k]; i++)
			if ((head != UINT64_MAX && i == hs) ||
			    (tail != UINT64_MAX && i == ts))
				pthread_rwlock_wrlock(&d->locks[i]);
			else
				pthread_rwlock_rdlock(&d->locks[i]);
}

void fsd_unlock_sectors(struct fsd *d, uint64_t first, uint64_t last)
{
	unsigned lo[2], hi[2], n = stripe_ranges(first, last, lo, hi);

	for (unsigned k = 0; k < n; k++)
		for (unsigned i = lo[k]; i <= hi[k]; i++)
			pthread_rwlock_unlock(&d->locks[i]);
}

bool fsd_trylock_sectors(struct fsd *d, uint64_t first, uint64_t last)
{
	unsigned lo[2], hi[2], n = stripe_ranges(first, last, lo, hi);
	unsigned held = 0;

	for (unsigned k = 0; k < n; k++)
		for (unsigned i = lo[k]; i <= hi[k]; i++) {
			if (pthread_rwlock_tryrdlock(&d->locks[i]))
				goto undo;
			held++;
		}
	return true;
undo:
	/* Let go of the first held stripes, in the order taken. */
	for (unsigned k = 0; k < n && held; k++)
		for (unsigned i = lo[k]; i <= hi[k] && held; i++, held--)
			pthread_rwlock_unlock(&d->locks[i]);
	return false;
}

__thread struct fsd_worker *fsd_self;

size_t fsd_read_span(const struct fsd *d, uint64_t pos, size_t size,
		     uint64_t *a0, size_t *span)
{
	uint64_t ss = d->sector_size;

	if (pos >= d->data_size || size == 0)
		return 0;
	if (size > d->data_size - pos)
		size = (size_t)(d->data_size - pos);
	if (size > FSD_MAX_REQ)
		size = FSD_MAX_REQ; /* a short read; the kernel asks again */
	*a0 = pos / ss * ss;
	*span = (size_t)((pos + size + ss - 1) / ss * ss - *a0);
	return size;
}
