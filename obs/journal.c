/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journal.c — log entries with fields of their own, sent to systemd's
 * journal over its native protocol: one datagram per entry to
 * /run/systemd/journal/socket, each field "NAME=value\n", or, for a value
 * holding a newline, "NAME\n", its length as 64-bit little-endian, the
 * value, "\n" (systemd's "Native Journal Protocol").  Done here rather than
 * through libsystemd's sd_journal_send(): the protocol is small and stable,
 * and the daemon then links nothing more.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "obs.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

bool obs_journal_is_stderr(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char end;

	if (!e || sscanf(e, "%llu:%llu%c", &dev, &ino, &end) != 2 ||
	    fstat(STDERR_FILENO, &st))
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

static int journal_fd = -1;
static pthread_mutex_t journal_lock = PTHREAD_MUTEX_INITIALIZER;

static int journal_open(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX,
				  .sun_path = JOURNAL_SOCKET };
	int fd;

	if (journal_fd >= 0)
		return 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int r = -errno;

		close(fd);
		return r;
	}
	journal_fd = fd;
	return 0;
}

bool obs_journal_present(void)
{
	int r;

	pthread_mutex_lock(&journal_lock);
	r = journal_open();
	pthread_mutex_unlock(&journal_lock);
	return r == 0;
}

/* sendmsg() only reads what an iovec points to. */
static struct iovec bytes(const void *p, size_t len)
{
	return (struct iovec){ .iov_base = (void *)(uintptr_t)p,
			       .iov_len = len };
}

int obs_journal_send(const struct obs_field *f, unsigned n)
{
	/* Each field: name, "=" or "\n" + length, value, "\n". */
	struct iovec iov[5 * OBS_JOURNAL_MAX_FIELDS];
	uint64_t lens[OBS_JOURNAL_MAX_FIELDS];
	struct msghdr mh = { .msg_iov = iov };
	unsigned k = 0;
	int r = 0;

	if (n > OBS_JOURNAL_MAX_FIELDS)
		return -E2BIG;
	for (unsigned i = 0; i < n; i++) {
		size_t len = strlen(f[i].value);

		iov[k++] = bytes(f[i].name, strlen(f[i].name));
		if (memchr(f[i].value, '\n', len)) {
			lens[i] = htole64((uint64_t)len);
			iov[k++] = bytes("\n", 1);
			iov[k++] = bytes(&lens[i], sizeof(lens[i]));
		} else {
			iov[k++] = bytes("=", 1);
		}
		iov[k++] = bytes(f[i].value, len);
		iov[k++] = bytes("\n", 1);
	}
	mh.msg_iovlen = k;
	pthread_mutex_lock(&journal_lock);
	/* Never waits: a journald that stops reading (its queue full:
	 * EAGAIN) costs the entry, which the caller logs elsewhere, not a
	 * thread of ours.  One that restarted is connected to again, once. */
	for (int tries = 0; tries < 2; tries++) {
		r = journal_open();
		if (r ||
		    sendmsg(journal_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
			break;
		r = -errno;
		if (r == -EAGAIN)
			break;
		close(journal_fd);
		journal_fd = -1;
	}
	pthread_mutex_unlock(&journal_lock);
	return r;
}
