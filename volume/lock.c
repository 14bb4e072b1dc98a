/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lock.c — the lock that keeps cmkfs commands on one volume apart
 * (volume.h, vol_lock).
 *
 * Two bytes of an open file description lock (fcntl F_OFD_SETLK), not
 * flock(): libcryptsetup flock()s the volume itself for each metadata
 * write, and a flock of ours on another descriptor of the same file would
 * deadlock against it.  The two kinds of lock do not interact.  Byte 0 is
 * the header-change lock (two concurrent rotations would each keep their
 * own keyslot and destroy the other's); byte 1 is held shared by every
 * mount of the volume.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "volume.h"

#define LOCK_BYTE_HEADER  0
#define LOCK_BYTE_MOUNTED 1

/* 0, -EBUSY with e->conflict said, or another -errno. */
static int lock_byte(int fd, short type, off_t byte, enum vol_lock_kind kind,
		     struct vol_error *e)
{
	struct flock fl = { .l_type = type,
			    .l_whence = SEEK_SET,
			    .l_start = byte,
			    .l_len = 1 };

	if (!fcntl(fd, F_OFD_SETLK, &fl))
		return 0;
	if (errno != EAGAIN && errno != EACCES)
		return -errno;
	e->what = VOL_FAIL_BUSY;
	if (kind == VOL_LOCK_MOUNTED)
		e->conflict = VOL_CONFLICT_OFFLINE;
	else if (byte == LOCK_BYTE_MOUNTED)
		e->conflict = VOL_CONFLICT_MOUNTED;
	else
		e->conflict = VOL_CONFLICT_HEADER_CHANGE;
	return -EBUSY;
}

int vol_lock(const char *volume, enum vol_lock_kind kind, int *fd,
	     struct vol_error *e)
{
	int r = 0;

	memset(e, 0, sizeof(*e));
	*fd = open(volume,
		   (kind == VOL_LOCK_MOUNTED ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	switch (kind) {
	case VOL_LOCK_HEADER:
		r = lock_byte(*fd, F_WRLCK, LOCK_BYTE_HEADER, kind, e);
		break;
	case VOL_LOCK_MOUNTED:
		r = lock_byte(*fd, F_RDLCK, LOCK_BYTE_MOUNTED, kind, e);
		break;
	case VOL_LOCK_OFFLINE:
		r = lock_byte(*fd, F_WRLCK, LOCK_BYTE_MOUNTED, kind, e);
		if (!r)
			r = lock_byte(*fd, F_WRLCK, LOCK_BYTE_HEADER, kind, e);
		break;
	}
	if (r) {
		close(*fd);
		*fd = -1;
	}
	return r;
}
