/* SPDX-License-Identifier: Apache-2.0 */
/*
 * state.c — the runtime directory of a mount and the control socket.
 *
 * $CMKFS_RUNTIME_DIR/<uuid>/ (default /run/cmkfs/<uuid>/), mode 0700:
 *   state    key=value lines, written atomically once the mount is usable
 *   pid      the daemon's pid
 *   plain    the FUSE mountpoint of the plaintext file (loop mode)
 *   control  UNIX stream socket, root only
 *
 * Control protocol: the client sends one line, the daemon answers and
 * closes.
 *   "status"    -> key=value lines (pid, uptime, bytes_read, bytes_written,
 *                  reads, writes, io_errors, ..., reencrypt and its
 *                  reencrypt_* figures), then EOF
 *   "shutdown"  -> "ok" once the FUSE mount is gone, the backend flushed
 *                  and the keys wiped; or "error ERRNO MESSAGE" (EBUSY:
 *                  the plaintext file is still in use; nothing changed)
 *   "reencrypt start [N]|pause|resume|rate N"
 *               -> "ok", or "error ERRNO MESSAGE" (rekey.c: the online
 *                  reencryption's job, its pause and its throttle)
 *   "requests"  -> one line per FUSE request the daemon has received and
 *                  not answered yet, "AGE_MS OPCODE UNIQUE WHERE" (OPCODE:
 *                  the FUSE opcode's name, WHERE: the thread), then
 *                  "total N"; for finding requests that hang (the test
 *                  suite's watchdog asks every second)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <linux/fuse.h>

#include "fsd.h"

const char *fsd_runtime_root(void)
{
	const char *r = getenv("CMKFS_RUNTIME_DIR");

	return r && r[0] == '/' ? r : "/run/cmkfs";
}

/* Write path atomically (temporary file, fsync-free: /run is tmpfs). */
static int write_file(const char *dir, const char *name, const char *text)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	size_t len = strlen(text);
	int fd, r = 0;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		r = errno ? -errno : -EIO;
	if (close(fd) && !r)
		r = -errno;
	if (!r && rename(tmp, path))
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

int fsd_state_write(const struct fsd *d)
{
	char text[5 * PATH_MAX + 512], pid[32];
	int r;

	snprintf(text, sizeof(text),
		 "pid=%d\nvolume=%s\nmountpoint=%s\nfuse=%s\nloop=%s\n"
		 "fstype=%s\nfuse_conn=%u\nraw=%d\nread_only=%d\n"
		 "started=%lld\nmetrics=%s\nmetrics_file=%s\n",
		 (int)getpid(), d->volume, d->target, d->fuse_mnt, d->loop,
		 d->fstype_found, d->fuse_conn, d->raw, d->read_only,
		 (long long)d->started,
		 obs_url(d->metrics) ? obs_url(d->metrics) : "",
		 obs_file(d->metrics) ? obs_file(d->metrics) : "");
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	r = write_file(d->rundir, "pid", pid);
	if (!r)
		r = write_file(d->rundir, "state", text);
	return r;
}

void fsd_rundir_remove(const char *dir)
{
	static const char *const names[] = {
		"control", "plain", "pid", "state", ".pid.tmp", ".state.tmp"
	};
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) <
		    (int)sizeof(path))
			unlink(path);
	rmdir(dir);
}

void fsd_remove_rundir(struct fsd *d, bool keep_state)
{
	char path[PATH_MAX];

	if (!keep_state) {
		fsd_rundir_remove(d->rundir);
		return;
	}
	if (snprintf(path, sizeof(path), "%s/control", d->rundir) <
	    (int)sizeof(path))
		unlink(path);
}

static int control_addr(const char *uuid, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if ((size_t)snprintf(sa->sun_path, sizeof(sa->sun_path),
			     "%s/%s/control", fsd_runtime_root(),
			     uuid) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

int fsd_control_listen(struct fsd *d)
{
	struct sockaddr_un sa;
	int r = control_addr(d->uuid, &sa);

	if (r)
		return r;
	d->ctl_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (d->ctl_fd < 0)
		return -errno;
	/* The directory is 0700: only root reaches the socket. */
	if (bind(d->ctl_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(d->ctl_fd, 8))
		return -errno;
	return 0;
}

int fsd_control_recv(int fd, char *line, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t n = 0;

	/* A client that says nothing for a second is dropped: the main
	 * thread must not hang on it. */
	while (n + 1 < len) {
		ssize_t k;

		if (poll(&p, 1, 1000) != 1)
			return -ETIMEDOUT;
		k = read(fd, line + n, 1);
		if (k <= 0)
			return k ? -errno : -EPROTO;
		if (line[n] == '\n') {
			line[n] = 0;
			return 0;
		}
		n++;
	}
	return -EPROTO;
}

unsigned fsd_requests(struct fsd *d, int fd, int64_t now)
{
	unsigned n = 0;
	char where[32];

	for (unsigned i = 0; i < d->nworkers; i++) {
		snprintf(where, sizeof(where), "worker-%u", i);
		n += fsd_busy_print(fd, &d->workers[i].busy, now, where);
	}
	return n + fsd_uring_requests(d, fd, now);
}

void fsd_control_requests(struct fsd *d, int fd)
{
	int64_t now = fsd_now_ms();
	unsigned n = fsd_requests(d, fd, now);

	/* Held requests wait by design while suspended, and end soon after
	 * a resume: a watchdog counts their age from then. */
	if (atomic_load(&d->suspended))
		dprintf(fd, "suspended\n");
	if (atomic_load(&d->resumed_at))
		dprintf(fd, "resumed_ms_ago %lld\n",
			(long long)(now - atomic_load(&d->resumed_at)));
	dprintf(fd, "total %u\n", n);
}

const char *fsd_on_revoke_name(enum fsd_on_revoke how)
{
	switch (how) {
	case FSD_REVOKE_KEEP:
		return "keep";
	case FSD_REVOKE_SUSPEND:
		return "suspend";
	case FSD_REVOKE_SHRED:
		break;
	}
	return "shred";
}

void fsd_control_status(struct fsd *d, int fd)
{
	dprintf(fd,
		"pid=%d\nuptime=%lld\nbytes_read=%" PRIu64
		"\nbytes_written=%" PRIu64 "\nreads=%" PRIu64
		"\nwrites=%" PRIu64 "\nio_errors=%" PRIu64
		"\ncheck_interval=%u\nlast_check_ok=%lld\nnext_check=%lld"
		"\nshredded=%d\non_revoke=%s\nio_uring_threads=%u\naes=%s\n"
		"suspended=%d\nsuspended_since=%lld\nsuspend_timeout=%u\n",
		(int)getpid(), (long long)(time(NULL) - d->started),
		(uint64_t)atomic_load(&d->bytes_read),
		(uint64_t)atomic_load(&d->bytes_written),
		(uint64_t)atomic_load(&d->reads),
		(uint64_t)atomic_load(&d->writes),
		(uint64_t)atomic_load(&d->io_errors), d->check_interval,
		(long long)atomic_load(&d->last_check_ok),
		(long long)atomic_load(&d->next_check),
		(int)atomic_load(&d->shredded),
		fsd_on_revoke_name(d->on_revoke), d->nqueues, d->aes,
		(int)atomic_load(&d->suspended),
		(long long)atomic_load(&d->suspended_since),
		d->suspend_timeout);
	char refusal[sizeof(d->last_refusal)];

	pthread_mutex_lock(&d->check_lock);
	memcpy(refusal, d->last_refusal, sizeof(refusal));
	pthread_mutex_unlock(&d->check_lock);
	dprintf(fd, "last_refusal=%s\n", refusal);
	fsd_rekey_status(d, fd);
}

/* Connect, send req, read everything until EOF (at most len - 1 bytes). */
static int control_exchange(const char *uuid, const char *req, char *reply,
			    size_t len, int timeout_ms)
{
	struct sockaddr_un sa;
	struct pollfd p;
	int64_t deadline;
	size_t n = 0;
	int fd, r = control_addr(uuid, &sa);

	if (r)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    dprintf(fd, "%s\n", req) < 0) {
		r = -errno;
		goto out;
	}
	p.fd = fd;
	p.events = POLLIN;
	/* A signal (the user's Ctrl-C while a command follows a job) must
	 * not turn a live daemon's answer into "no answer": poll and read
	 * again, within the same deadline. */
	deadline = fsd_now_ms() + timeout_ms;
	while (n + 1 < len) {
		int64_t left = deadline - fsd_now_ms();
		ssize_t k;

		r = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r != 1) {
			r = -ETIMEDOUT;
			goto out;
		}
		r = 0;
		k = read(fd, reply + n, len - 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			goto out;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	if (n == 0)
		r = -EPROTO; /* closed without an answer */
out:
	reply[n] = 0;
	close(fd);
	return r;
}

int fsd_control_request(const char *uuid, const char *req, char *reply,
			size_t len, int timeout_ms)
{
	int r;

	/* SIGPIPE if the daemon goes away under us: an error, not death. */
	signal(SIGPIPE, SIG_IGN);
	r = control_exchange(uuid, req, reply, len, timeout_ms);
	if (!r)
		reply[strcspn(reply, "\n")] = 0;
	return r;
}

int fsd_reencrypt_request(const char *uuid, const char *args, char *err,
			  size_t errlen)
{
	char req[96], reply[512];
	long code;
	char *end;
	int r;

	snprintf(req, sizeof(req), "reencrypt %s", args);
	r = fsd_control_request(uuid, req, reply, sizeof(reply), 10000);
	if (r) {
		snprintf(err, errlen, "the daemon does not answer: %s",
			 strerror(-r));
		return r;
	}
	if (!strcmp(reply, "ok"))
		return 0;
	/* "error ERRNO MESSAGE" */
	if (strncmp(reply, "error ", 6) ||
	    (code = strtol(reply + 6, &end, 10)) <= 0 || *end != ' ') {
		snprintf(err, errlen, "the daemon answered: %.200s", reply);
		return -EPROTO;
	}
	snprintf(err, errlen, "%s", end + 1);
	return -(int)code;
}

static void parse_state(char *text, struct fsd_state *st)
{
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *v = strchr(line, '=');

		if (!v)
			continue;
		*v++ = 0;
		if (!strcmp(line, "pid"))
			st->pid = (pid_t)strtol(v, NULL, 10);
		else if (!strcmp(line, "volume"))
			snprintf(st->volume, sizeof(st->volume), "%s", v);
		else if (!strcmp(line, "mountpoint"))
			snprintf(st->mountpoint, sizeof(st->mountpoint), "%s",
				 v);
		else if (!strcmp(line, "fuse"))
			snprintf(st->fuse, sizeof(st->fuse), "%s", v);
		else if (!strcmp(line, "loop"))
			snprintf(st->loop, sizeof(st->loop), "%s", v);
		else if (!strcmp(line, "fstype"))
			snprintf(st->fstype, sizeof(st->fstype), "%s", v);
		else if (!strcmp(line, "fuse_conn"))
			st->fuse_conn = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(line, "raw"))
			st->raw = strtol(v, NULL, 10) != 0;
		else if (!strcmp(line, "read_only"))
			st->read_only = strtol(v, NULL, 10) != 0;
		else if (!strcmp(line, "started"))
			st->started = strtoll(v, NULL, 10);
		else if (!strcmp(line, "metrics"))
			snprintf(st->metrics, sizeof(st->metrics), "%s", v);
		else if (!strcmp(line, "metrics_file"))
			snprintf(st->metrics_file, sizeof(st->metrics_file),
				 "%s", v);
	}
}

static void parse_stats(char *text, struct fsd_state *st)
{
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *v = strchr(line, '=');
		uint64_t x;

		if (!v)
			continue;
		*v++ = 0;
		x = strtoull(v, NULL, 10);
		if (!strcmp(line, "bytes_read"))
			st->bytes_read = x;
		else if (!strcmp(line, "bytes_written"))
			st->bytes_written = x;
		else if (!strcmp(line, "reads"))
			st->reads = x;
		else if (!strcmp(line, "writes"))
			st->writes = x;
		else if (!strcmp(line, "io_errors"))
			st->io_errors = x;
		else if (!strcmp(line, "check_interval"))
			st->check_interval = (unsigned)x;
		else if (!strcmp(line, "io_uring_threads"))
			st->io_uring_threads = (unsigned)x;
		else if (!strcmp(line, "last_check_ok"))
			st->last_check_ok = (int64_t)x;
		else if (!strcmp(line, "next_check"))
			st->next_check = (int64_t)x;
		else if (!strcmp(line, "shredded"))
			st->shredded = x != 0;
		else if (!strcmp(line, "suspended"))
			st->suspended = x != 0;
		else if (!strcmp(line, "suspended_since"))
			st->suspended_since = (int64_t)x;
		else if (!strcmp(line, "suspend_timeout"))
			st->suspend_timeout = (unsigned)x;
		else if (!strcmp(line, "on_revoke"))
			snprintf(st->on_revoke, sizeof(st->on_revoke), "%s", v);
		else if (!strcmp(line, "last_refusal"))
			snprintf(st->last_refusal, sizeof(st->last_refusal),
				 "%s", v);
		else if (!strcmp(line, "aes"))
			snprintf(st->aes, sizeof(st->aes), "%s", v);
		else if (!strcmp(line, "reencrypt"))
			snprintf(st->reencrypt, sizeof(st->reencrypt), "%s", v);
		else if (!strcmp(line, "reencrypt_done"))
			st->reencrypt_done = x;
		else if (!strcmp(line, "reencrypt_total"))
			st->reencrypt_total = x;
		else if (!strcmp(line, "reencrypt_rate"))
			st->reencrypt_rate = x;
		else if (!strcmp(line, "reencrypt_max_rate"))
			st->reencrypt_max_rate = x;
		else if (!strcmp(line, "reencrypt_paused"))
			st->reencrypt_pause = x != 0;
		else if (!strcmp(line, "reencrypt_error"))
			snprintf(st->reencrypt_error,
				 sizeof(st->reencrypt_error), "%s", v);
	}
	st->have_stats = true;
}

/* Alive: exists and is not a zombie (a daemon killed after its parent
 * exited may wait a while for a reaper). */
static bool process_alive(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	bool alive = false;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	/* "pid (comm) S ...": the state follows the last ')'. */
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
	    p[1] == ' ')
		alive = p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return alive;
}

int fsd_state_by_uuid(const char *uuid, struct fsd_state *st)
{
	char path[PATH_MAX], text[4 * PATH_MAX + 512], reply[4096];
	size_t n;
	FILE *f;

	memset(st, 0, sizeof(*st));
	if (!uuid[0] || strchr(uuid, '/'))
		return -ENOENT;
	snprintf(st->uuid, sizeof(st->uuid), "%s", uuid);
	snprintf(path, sizeof(path), "%s/%s/state", fsd_runtime_root(), uuid);
	f = fopen(path, "re");
	if (!f) {
		/* A directory without state: a daemon still starting, or
		 * one that died while starting. */
		snprintf(path, sizeof(path), "%s/%s", fsd_runtime_root(), uuid);
		return access(path, F_OK) ? -ENOENT : -EAGAIN;
	}
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = 0;
	parse_state(text, st);
	st->alive = process_alive(st->pid);
	if (st->alive &&
	    control_exchange(uuid, "status", reply, sizeof(reply), 2000) == 0)
		parse_stats(reply, st);
	return 0;
}

int fsd_state_each(int (*fn)(const struct fsd_state *st, void *arg), void *arg)
{
	struct fsd_state *st = malloc(sizeof(*st));
	struct dirent *de;
	DIR *dir;
	int r = 0;

	if (!st)
		return -ENOMEM;
	dir = opendir(fsd_runtime_root());
	if (!dir) {
		free(st);
		return errno == ENOENT ? 0 : -errno;
	}
	while (!r && (de = readdir(dir))) {
		if (de->d_name[0] != '.' && !fsd_state_by_uuid(de->d_name, st))
			r = fn(st, arg);
	}
	closedir(dir);
	free(st);
	return r;
}

struct find {
	const char *want;
	struct fsd_state *st;
};

static int found(const struct fsd_state *st, void *arg)
{
	struct find *f = arg;
	char got[PATH_MAX];

	if (strcmp(st->mountpoint, f->want) &&
	    !(realpath(st->volume, got) && !strcmp(got, f->want)))
		return 0;
	*f->st = *st;
	return 1;
}

int fsd_state_find(const char *path, struct fsd_state *st)
{
	char want[PATH_MAX];
	struct find f = { want, st };
	int r;

	memset(st, 0, sizeof(*st));
	if (!realpath(path, want))
		return -errno;
	r = fsd_state_each(found, &f);
	return r == 1 ? 0 : r ? r : -ENOENT;
}
