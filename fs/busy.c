/* SPDX-License-Identifier: Apache-2.0 */
/*
 * busy.c — what each serving thread is doing and since when (struct
 * fsd_busy in fsd.h): the clock, and the lines of the control socket's
 * "requests" answer, which is how a request that never completes is seen.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include <linux/fuse.h>

#include "fsd.h"

int64_t fsd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* Never 0, which means "no request". */
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1;
}

const char *fsd_opcode_name(uint32_t op)
{
	static const char *const names[] = {
		[FUSE_LOOKUP] = "LOOKUP",	[FUSE_FORGET] = "FORGET",
		[FUSE_GETATTR] = "GETATTR",	[FUSE_SETATTR] = "SETATTR",
		[FUSE_OPEN] = "OPEN",		[FUSE_READ] = "READ",
		[FUSE_WRITE] = "WRITE",		[FUSE_STATFS] = "STATFS",
		[FUSE_RELEASE] = "RELEASE",	[FUSE_FSYNC] = "FSYNC",
		[FUSE_FLUSH] = "FLUSH",		[FUSE_INIT] = "INIT",
		[FUSE_INTERRUPT] = "INTERRUPT", [FUSE_FALLOCATE] = "FALLOCATE",
	};

	return op < sizeof(names) / sizeof(names[0]) && names[op] ? names[op]
								  : "OTHER";
}

unsigned fsd_busy_print(int fd, struct fsd_busy *b, int64_t now,
			const char *where)
{
	int64_t since = atomic_load(&b->since);

	if (!since)
		return 0;
	if (fd >= 0)
		dprintf(fd, "%lld %s %llu %s\n", (long long)(now - since),
			fsd_opcode_name(atomic_load(&b->opcode)),
			(unsigned long long)atomic_load(&b->unique), where);
	return 1;
}
