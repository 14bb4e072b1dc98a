/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops.c — the FUSE low-level operations of the plaintext file, and the
 * custom I/O hooks on /dev/fuse.
 *
 * The filesystem is one regular file, the root inode itself (mounted over a
 * regular file, as libfuse's example/single_file.c does).  Its size is the
 * volume's data segment and never changes.  Every request gets exactly one
 * reply, sent by the thread that received it before it takes the next
 * request.  Over io_uring (uring.c), reads, aligned writes and fsync are
 * served there, asynchronously, and every other request comes here through
 * fuse_session_process_buf(), its reply captured by the writev hook.
 *
 * Data path: plaintext offset P lives at backend offset data_offset + P,
 * encrypted per sector with IV = P / 512 (crypto/sector.c).
 *   read   io_uring read of the covering sectors into the worker's buffer,
 *          decrypt in place, reply from the buffer (partial edges: only the
 *          asked range is returned).
 *   write  aligned: encrypt from the FUSE request buffer into the worker's
 *          buffer (the one copy), io_uring write, reply after completion.
 *          Unaligned (only possible on --raw mounts): read and decrypt the
 *          edge sectors, merge, encrypt, write, all under the edge sectors'
 *          stripe locks held exclusively; aligned writes hold their stripes
 *          shared, so a read-modify-write never interleaves with another
 *          write of the same sector.
 *   fsync  writes are acknowledged only after their io_uring completion, so
 *          an fsync of the backend afterwards makes every acknowledged
 *          write durable.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <linux/fuse.h>

#include "fsd.h"

/*
 * FOPEN_PARALLEL_DIRECT_WRITES (Linux 6.2) lets the kernel send several
 * non-extending direct writes on one file at once instead of serialising
 * them on the inode lock.  libfuse 3.14's fuse_file_info has no bit for it,
 * so the open handler marks the reply it is about to send (thread-local
 * flag) and the writev hook of our fuse_custom_io sets the bit in the
 * fuse_open_out it carries.  The hook runs synchronously inside
 * fuse_reply_open() on the same thread, so nothing else can be in between.
 * Kernels that do not know the bit ignore it.
 */
#define FSD_FOPEN_PARALLEL_DIRECT_WRITES (1u << 6)

/* The kernel ABI's reply layout (include/uapi/linux/fuse.h). */
struct fsd_out_header {
	uint32_t len;
	int32_t error;
	uint64_t unique;
};
struct fsd_open_out {
	uint64_t fh;
	uint32_t open_flags;
	uint32_t padding;
};

static __thread bool patch_open_reply;

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct fsd *d = userdata;
	ssize_t res;

	if (patch_open_reply) {
		patch_open_reply = false;
		if (count == 2 &&
		    iov[0].iov_len == sizeof(struct fsd_out_header) &&
		    iov[1].iov_len == sizeof(struct fsd_open_out) &&
		    ((struct fsd_out_header *)iov[0].iov_base)->error == 0)
			((struct fsd_open_out *)iov[1].iov_base)->open_flags |=
				FSD_FOPEN_PARALLEL_DIRECT_WRITES;
	}
	/* A request that came over io_uring is answered there. */
	if (fsd_uring_capture(iov, count, &res))
		return res;
	if (d->uring_wanted &&
	    fsd_uring_send_init_reply(d, fd, iov, count, &res))
		return res;
	return writev(fd, iov, count);
}

/*
 * FUSE_INTERRUPT is dropped here, before libfuse sees it.  Every request of
 * ours is answered whether or not its caller was signalled, after its
 * backend I/O (a large discard is many writes: not interruptible either);
 * the protocol lets a filesystem ignore interrupts
 * (Documentation/filesystems/fuse.rst).  libfuse, given
 * one for a request it does not know — every request served over io_uring
 * (uring.c) — would keep it and later answer it with EAGAIN inside the
 * processing of another request, whose own reply would then be lost.
 */
static bool is_interrupt(const void *buf, ssize_t n)
{
	struct fuse_in_header ih;

	if (n < (ssize_t)sizeof(ih))
		return false;
	memcpy(&ih, buf, sizeof(ih));
	return ih.opcode == FUSE_INTERRUPT;
}

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	struct fsd *d = userdata;
	ssize_t n;

	do {
		n = read(fd, buf, len);
		if (n > 0 && d->uring_wanted && !atomic_load(&d->init_seen))
			fsd_uring_saw_request(d, buf, (size_t)n);
	} while (is_interrupt(buf, n));
	return n;
}

const struct fuse_custom_io fsd_custom_io = {
	.writev = io_writev,
	.read = io_read,
};

static struct fsd *fsd_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* A data request failed (backend error, or the key shredded). */
static void reply_eio(fuse_req_t req)
{
	atomic_fetch_add(&fsd_of(req)->io_errors, 1);
	fuse_reply_err(req, EIO);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_write = FSD_MAX_REQ;
	conn->max_read = FSD_MAX_REQ; /* must match -o max_read */
	/* The loop device keeps up to max_background async direct I/Os in
	 * flight; the kernel default (12) would cap its queue depth. */
	conn->max_background = 256;
	conn->congestion_threshold = 192;
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	/* Every byte passes the cipher: no splice, no writeback cache. */
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
			FUSE_CAP_SPLICE_MOVE | FUSE_CAP_WRITEBACK_CACHE);
}

static void fill_attr(const struct fsd *d, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = FUSE_ROOT_ID;
	st->st_mode = S_IFREG | (d->read_only ? 0400 : 0600);
	st->st_nlink = 1;
	st->st_size = (off_t)d->data_size;
	st->st_blksize = (blksize_t)d->sector_size;
	st->st_blocks = (blkcnt_t)(d->data_size / 512);
	st->st_atime = st->st_mtime = st->st_ctime = d->started;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(fsd_of(req), &st);
	fuse_reply_attr(req, &st, 3600);
}

/* The file's size, mode and owner are fixed; times are accepted (and
 * ignored) so that tools that touch them do not fail. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fsd *d = fsd_of(req);
	struct stat st;

	(void)ino;
	(void)fi;
	if ((to_set & FUSE_SET_ATTR_SIZE) &&
	    (uint64_t)attr->st_size != d->data_size) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (to_set &
	    (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fill_attr(d, &st);
	fuse_reply_attr(req, &st, 3600);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent;
	(void)name;
	fuse_reply_err(req, ENOTDIR);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fsd *d = fsd_of(req);

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (d->read_only && (fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (fi->flags & O_TRUNC) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fi->direct_io = 1; /* plaintext is never cached by the kernel */
	fi->keep_cache = 0;
	patch_open_reply = true;
	if (fuse_reply_open(req, fi))
		patch_open_reply = false;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fsd *d = fsd_of(req);
	struct fsd_worker *w = fsd_self;
	uint64_t pos = (uint64_t)off, a0 = 0, split;
	size_t span = 0;
	int r;

	(void)ino;
	(void)fi;
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	size = fsd_read_span(d, pos, size, &a0, &span);
	if (!size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* The key may have been shredded (revoke.c): then nothing is read;
	 * or suspended (suspend.c): then the read waits for it at the gate
	 * and starts again. */
	do {
		r = fsd_claim(d, &w->claim, a0, a0 + span, &split);
		if (r)
			break;
		pthread_mutex_lock(&w->sc_lock);
		r = w->sc ? fsd_backend_read(w, w->buf, span, a0)
			  : fsd_keyless(d);
		if (!r)
			r = fsd_crypt(w, false, a0, w->buf, w->buf, span,
				      split);
		pthread_mutex_unlock(&w->sc_lock);
		fsd_claim_drop(&w->claim);
	} while (r == -EAGAIN && !fsd_gate_wait(d));
	if (r) {
		reply_eio(req);
		return;
	}
	atomic_fetch_add(&d->bytes_read, size);
	atomic_fetch_add(&d->reads, 1);
	fuse_reply_buf(req, (const char *)w->buf + (pos - a0), size);
	/* The plaintext stays in the buffer until the next request overwrites
	 * it; it is wiped when the worker ends. */
}

/* write_range once: -EAGAIN when the keys are suspended (nothing
 * written). */
static int write_once(struct fsd *d, struct fsd_worker *w, const void *data,
		      size_t size, uint64_t pos)
{
	uint64_t ss = d->sector_size, a0 = pos / ss * ss,
		 a1 = (pos + size + ss - 1) / ss * ss;
	uint64_t first = a0 / ss, last = a1 / ss - 1;
	uint64_t head = UINT64_MAX, tail = UINT64_MAX, split;
	size_t span = (size_t)(a1 - a0);
	int r = 0;

	if (pos % ss)
		head = first;
	if ((pos + size) % ss)
		tail = last;
	/* The range first (it may wait for a block being reencrypted),
	 * then the stripes. */
	r = fsd_claim(d, &w->claim, a0, a1, &split);
	if (r)
		return r;
	fsd_lock_sectors(d, first, last, head, tail);
	pthread_mutex_lock(&w->sc_lock);
	if (!w->sc) {
		r = fsd_keyless(d); /* shredded or suspended */
		goto out;
	}
	if (head == UINT64_MAX && tail == UINT64_MAX) {
		r = fsd_crypt(w, true, a0, data, w->buf, span, split);
		goto write;
	}
	/* Read-modify-write of the partial edge sectors. */
	if (head != UINT64_MAX) {
		r = fsd_backend_read(w, w->buf, ss, a0);
		if (!r)
			r = fsd_crypt(w, false, a0, w->buf, w->buf, ss, split);
	}
	if (!r && tail != UINT64_MAX && (tail != head || head == UINT64_MAX)) {
		r = fsd_backend_read(w, w->buf + span - ss, ss, a1 - ss);
		if (!r)
			r = fsd_crypt(w, false, a1 - ss, w->buf + span - ss,
				      w->buf + span - ss, ss, split);
	}
	if (r)
		goto out;
	memcpy(w->buf + (pos - a0), data, size);
	r = fsd_crypt(w, true, a0, w->buf, w->buf, span, split);
write:
	if (!r)
		r = fsd_backend_write(w, w->buf, span, a0);
out:
	pthread_mutex_unlock(&w->sc_lock);
	fsd_unlock_sectors(d, first, last);
	fsd_claim_drop(&w->claim);
	return r;
}

/* Write size bytes of plaintext from data at pos (already clipped to the
 * segment); while the keys are suspended, wait for them.  0 or -errno. */
static int write_range(struct fsd *d, struct fsd_worker *w, const void *data,
		       size_t size, uint64_t pos)
{
	int r;

	do
		r = write_once(d, w, data, size, pos);
	while (r == -EAGAIN && !fsd_gate_wait(d));
	return r;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fsd *d = fsd_of(req);
	uint64_t pos = (uint64_t)off;

	(void)ino;
	(void)fi;
	if (d->read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (off < 0 || size > FSD_MAX_REQ) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (size == 0) {
		fuse_reply_write(req, 0);
		return;
	}
	/* Like a block device: no writing at or past the end; a write that
	 * straddles it is short. */
	if (pos >= d->data_size) {
		fuse_reply_err(req, ENOSPC);
		return;
	}
	if (size > d->data_size - pos)
		size = (size_t)(d->data_size - pos);
	if (write_range(d, fsd_self, buf, size, pos)) {
		reply_eio(req);
		return;
	}
	atomic_fetch_add(&d->bytes_written, size);
	atomic_fetch_add(&d->writes, 1);
	fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* close(2): nothing is buffered here, durability is fsync's job. */
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	if (fsd_backend_fsync(fsd_self, datasync != 0))
		reply_eio(req);
	else
		fuse_reply_err(req, 0);
}

/*
 * Discards.  Punching the ciphertext would make the range read back as the
 * decryption of zeros (garbage), while the loop device turns the block
 * layer's WRITE_ZEROES into FALLOC_FL_PUNCH_HOLE and expects zeros.  So
 * without --allow-discards every fallocate mode is refused (the loop device
 * then stops sending them and the block layer writes zeros itself); with
 * it, punch and zero-range are served by writing encrypted zeros, which
 * keeps the data correct but frees no space on the backend.
 */
static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			 off_t len, struct fuse_file_info *fi)
{
	struct fsd *d = fsd_of(req);
	struct fsd_worker *w = fsd_self;
	uint64_t pos = (uint64_t)off, end;
	int r = 0;

	(void)ino;
	(void)fi;
	if (!d->allow_discards || d->read_only ||
	    !(mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) ||
	    ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	end = pos + (uint64_t)len;
	if (end > d->data_size)
		end = d->data_size;
	/* The zero source sits in the bounce buffer's upper half, past the
	 * span write_range() works in (at most 256 KiB + two sectors).  A
	 * range may be gigabytes long: a daemon that is stopping does not
	 * finish it (the request fails; what is written stays zeros). */
	while (!r && pos < end) {
		if (fuse_session_exited(d->se)) {
			r = -EINTR;
			break;
		}
		size_t n = end - pos > FSD_MAX_REQ / 4 ? FSD_MAX_REQ / 4
						       : (size_t)(end - pos);

		memset(w->buf + FSD_BUF_LEN / 2, 0, n);
		r = write_range(d, w, w->buf + FSD_BUF_LEN / 2, n, pos);
		pos += n;
	}
	if (r)
		reply_eio(req);
	else
		fuse_reply_err(req, 0);
}

const struct fuse_lowlevel_ops fsd_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.fallocate = op_fallocate,
};
