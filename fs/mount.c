/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mount.c — what goes on top of the plaintext file and comes off again:
 * the loop device (LOOP_CONFIGURE through /dev/loop-control, no losetup),
 * mkfs, and fsd_umount(), which `cmkfs umount` drives.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <linux/fs.h>
#include <linux/loop.h>

#include "fsd.h"

#define ERR(...) snprintf(err, errlen, __VA_ARGS__)

/* FS_IOC_SHUTDOWN (ext4's EXT4_IOC_SHUTDOWN, xfs's XFS_IOC_GOINGDOWN: one
 * number), not in Debian 12's kernel headers. */
#define FSD_IOC_SHUTDOWN	_IOR('X', 125, uint32_t)
#define FSD_SHUTDOWN_FLUSH	0u /* freeze (flushing all), then down */
#define FSD_SHUTDOWN_NOLOGFLUSH 2u /* down at once */

int fsd_loop_attach(const char *file, unsigned bs, bool ro, char *dev,
		    size_t devlen, int *fd, char *err, size_t errlen)
{
	struct loop_config cfg;
	struct loop_info64 info;
	int ctl, back = -1, lfd = -1, r = 0;

	*fd = -1;
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		ERR("cannot open /dev/loop-control: %s", strerror(errno));
		return -errno;
	}
	/* The loop device does direct I/O on the file: open it so. */
	back = open(file, (ro ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC);
	if (back < 0) {
		r = -errno;
		ERR("cannot open %s: %s", file, strerror(errno));
		goto out;
	}
	/* Another process may take the free device between GET_FREE and
	 * CONFIGURE: then it is busy, try the next. */
	for (int tries = 0; tries < 16; tries++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);

		if (n < 0) {
			r = -errno;
			ERR("no free loop device: %s", strerror(errno));
			goto out;
		}
		snprintf(dev, devlen, "/dev/loop%d", n);
		lfd = open(dev, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (lfd < 0) {
			r = -errno;
			ERR("cannot open %s: %s", dev, strerror(errno));
			goto out;
		}
		memset(&cfg, 0, sizeof(cfg));
		cfg.fd = (unsigned)back;
		cfg.block_size = bs;
		cfg.info.lo_flags = LO_FLAGS_DIRECT_IO | LO_FLAGS_AUTOCLEAR |
				    (ro ? LO_FLAGS_READ_ONLY : 0);
		snprintf((char *)cfg.info.lo_file_name,
			 sizeof(cfg.info.lo_file_name), "%s", file);
		if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0)
			break;
		r = -errno;
		close(lfd);
		lfd = -1;
		if (r != -EBUSY) {
			ERR("cannot attach %s to %s: %s", file, dev,
			    strerror(-r));
			goto out;
		}
	}
	if (lfd < 0) {
		ERR("cannot attach %s: every free loop device was taken", file);
		goto out;
	}
	r = 0;
	if (ioctl(lfd, LOOP_GET_STATUS64, &info) == 0 &&
	    !(info.lo_flags & LO_FLAGS_DIRECT_IO))
		fsd_warn("%s: the kernel refused direct I/O; the page cache "
			 "holds plaintext",
			 dev);
	*fd = lfd;
	lfd = -1;
out:
	if (lfd >= 0)
		close(lfd);
	if (back >= 0)
		close(back);
	close(ctl);
	if (r)
		dev[0] = 0;
	return r;
}

int fsd_loop_detach(const char *dev, const char *file)
{
	char path[128], back[PATH_MAX];
	FILE *f;
	bool ours = false;
	int fd, r = 0;

	if (strncmp(dev, "/dev/loop", 9))
		return -EINVAL;
	snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file",
		 dev + 5);
	f = fopen(path, "re");
	if (!f)
		return 0; /* already detached */
	if (fgets(back, sizeof(back), f)) {
		back[strcspn(back, "\n")] = 0;
		ours = !strcmp(back, file);
	}
	fclose(f);
	if (!ours)
		return 0; /* reused by someone else since */
	fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENXIO ? 0 : -errno;
	if (ioctl(fd, LOOP_CLR_FD, 0) && errno != ENXIO)
		r = -errno;
	close(fd);
	return r;
}

/* A stop (SIGTERM, SIGINT, SIGHUP: blocked, for the main loop's signalfd)
 * waiting while we are still starting up. */
static bool stop_pending(void)
{
	sigset_t p;

	return !sigpending(&p) &&
	       (sigismember(&p, SIGTERM) == 1 || sigismember(&p, SIGINT) == 1 ||
		sigismember(&p, SIGHUP) == 1);
}

int fsd_reads_as_zeros(const char *dev, uint64_t size)
{
	const size_t chunk = (size_t)1 << 20;
	uint64_t off = 0, next_log = 0;
	int64_t t0 = fsd_now_ms();
	uint8_t *buf;
	int fd, r = 1;

	fd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = mmap(NULL, chunk, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		close(fd);
		return -ENOMEM;
	}
	while (r == 1 && off < size) {
		size_t want = size - off < chunk ? (size_t)(size - off) : chunk;
		ssize_t n;

		/* Terabytes take minutes: a stop does not wait for them. */
		if (stop_pending()) {
			r = -EINTR;
			break;
		}
		n = pread(fd, buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n ? -errno : -EIO;
			break;
		}
		for (ssize_t i = 0; i < n; i++)
			if (buf[i]) {
				r = 0;
				break;
			}
		off += (uint64_t)n;
		/* A large zeroed volume takes a while: say how far. */
		if (fsd_now_ms() - t0 >= 10000 && off >= next_log) {
			fsd_info("%s: %llu of %llu MiB read as zeros", dev,
				 (unsigned long long)(off >> 20),
				 (unsigned long long)(size >> 20));
			next_log = off + size / 10;
		}
	}
	/* What was read is plaintext: zeros, or the start of the data. */
	secmem_wipe(buf, chunk);
	munmap(buf, chunk);
	close(fd);
	return r;
}

int fsd_mkfs(const char *type, const char *dev, char *err, size_t errlen)
{
	char prog[32];
	pid_t pid;
	int st;

	if (strcmp(type, "ext4") && strcmp(type, "xfs")) {
		ERR("cannot create a %s filesystem: ext4 or xfs", type);
		return -EINVAL;
	}
	snprintf(prog, sizeof(prog), "mkfs.%s", type);
	pid = fork();
	if (pid < 0) {
		ERR("cannot run %s: %s", prog, strerror(errno));
		return -errno;
	}
	if (pid == 0) {
		sigset_t none;

		/* mkfs gets the signals the daemon keeps for its main
		 * thread (SIGTERM, SIGINT...) back: a stop interrupts it. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* No discard: the daemon refuses them, and they would only
		 * slow mkfs down.  The device holds no filesystem: no -f/-F
		 * (mkfs.xfs refuses to overwrite other signatures). */
		if (!strcmp(type, "ext4"))
			execlp(prog, prog, "-q", "-E", "nodiscard", dev,
			       (char *)NULL);
		else
			execlp(prog, prog, "-q", "-K", dev, (char *)NULL);
		fprintf(stderr, "cmkfs: cannot run %s: %s\n", prog,
			strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			ERR("%s: %s", prog, strerror(errno));
			return -errno;
		}
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		ERR("%s %s failed (status %d)", prog, dev,
		    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		return -EIO;
	}
	return 0;
}

/* Wait up to ms for process pid to exit. */
static bool wait_exit(pid_t pid, int ms)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	bool gone;

	if (pfd < 0)
		return errno == ESRCH;
	{
		struct pollfd p = { .fd = pfd, .events = POLLIN };

		gone = poll(&p, 1, ms) == 1;
	}
	close(pfd);
	return gone;
}

static bool loop_bound(const char *dev)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file",
		 dev + 5);
	return access(path, F_OK) == 0;
}

/* Does the metrics file at path describe the mount uuid (its samples
 * carry uuid="UUID" from the first line on)? */
static bool metrics_file_is(const char *path, const char *uuid)
{
	char head[4096], want[64];
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, head, sizeof(head) - 1);
	close(fd);
	if (n <= 0)
		return false;
	head[n] = 0;
	snprintf(want, sizeof(want), "uuid=\"%s\"", uuid);
	return strstr(head, want) != NULL;
}

/* What a dead daemon left: unmount lazily, detach, abort, forget. */
static int cleanup_dead(const struct fsd_state *st, char *err, size_t errlen)
{
	char path[PATH_MAX + 32];
	int fd;

	if (!st->raw && st->mountpoint[0] &&
	    umount2(st->mountpoint, MNT_DETACH) && errno != EINVAL &&
	    errno != ENOENT) {
		ERR("cannot unmount %s: %s", st->mountpoint, strerror(errno));
		return -errno;
	}
	if (st->loop[0]) {
		fsd_loop_detach(st->loop, st->fuse);
		/* Autoclear detaches the device once the lazily unmounted
		 * filesystem lets go of it (its writes fail fast now that the
		 * daemon is gone): give it a moment, so that umount returns
		 * with nothing left. */
		for (int i = 0; i < 100 && loop_bound(st->loop); i++)
			usleep(50 * 1000);
	}
	if (st->fuse_conn) {
		snprintf(path, sizeof(path),
			 "/sys/fs/fuse/connections/%u/abort", st->fuse_conn);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (write(fd, "1", 1) < 0)
				(void)0; /* already gone */
			close(fd);
		}
	}
	if (st->fuse[0] && umount2(st->fuse, MNT_DETACH) && errno != EINVAL &&
	    errno != ENOENT) {
		ERR("cannot unmount %s: %s", st->fuse, strerror(errno));
		return -errno;
	}
	/* Its metrics file would go on saying the mount is there: it goes,
	 * if it is still this mount's (another may write there now). */
	if (st->metrics_file[0] && metrics_file_is(st->metrics_file, st->uuid))
		unlink(st->metrics_file);
	snprintf(path, sizeof(path), "%s/%s", fsd_runtime_root(), st->uuid);
	fsd_rundir_remove(path);
	return 0;
}

int fsd_umount(const struct fsd_state *st, char *err, size_t errlen)
{
	char reply[256];
	int r;

	err[0] = 0;
	if (!st->alive)
		return cleanup_dead(st, err, errlen);
	if (st->suspended && !st->read_only) {
		/* Unmounting writes back what the filesystem holds, which
		 * waits for the keys as every write does. */
		ERR("%s is suspended: KMS refused its key (%s); the writes it "
		    "holds wait for access to return, and so would an "
		    "unmount.  Restore access (it resumes by itself), or stop "
		    "the daemon (kill -TERM %d, or systemctl stop): the held "
		    "writes are then lost",
		    st->mountpoint,
		    st->last_refusal[0] ? st->last_refusal : "no reason kept",
		    (int)st->pid);
		return -EAGAIN;
	}
	if (!st->raw) {
		if (umount2(st->mountpoint, 0) && errno != EINVAL) {
			r = -errno;
			if (r == -EBUSY)
				ERR("%s is busy: a process has a file open or "
				    "its working directory there (see 'fuser "
				    "-vm %s'); nothing was unmounted",
				    st->mountpoint, st->mountpoint);
			else
				ERR("cannot unmount %s: %s", st->mountpoint,
				    strerror(-r));
			return r;
		}
		r = fsd_loop_detach(st->loop, st->fuse);
		if (r) {
			ERR("%s unmounted, but %s does not detach: %s",
			    st->mountpoint, st->loop, strerror(-r));
			return r;
		}
	}
	r = fsd_control_request(st->uuid, "shutdown", reply, sizeof(reply),
				60000);
	if ((r == -ENOENT || r == -ECONNREFUSED) && wait_exit(st->pid, 30000)) {
		/* No control socket: the daemon was already shutting down
		 * (signalled); it is gone now, finish what it left. */
		return cleanup_dead(st, err, errlen);
	}
	if (r) {
		ERR("the daemon (pid %d) does not answer: %s", (int)st->pid,
		    strerror(-r));
		return r;
	}
	if (strncmp(reply, "ok", 2)) {
		char *msg = NULL;
		long e = 0;

		if (!strncmp(reply, "error ", 6))
			e = strtol(reply + 6, &msg, 10);
		if (e > 0 && e < 4096) {
			msg += strspn(msg, " ");
			if (e == EBUSY && st->raw)
				ERR("%s is busy: a process has it open (see "
				    "'fuser -v %s'); nothing was unmounted",
				    st->mountpoint, st->mountpoint);
			else
				ERR("the daemon could not stop: %s", msg);
			return (int)-e;
		}
		ERR("the daemon answered '%s'", reply);
		return -EPROTO;
	}
	if (!wait_exit(st->pid, 30000)) {
		ERR("the daemon (pid %d) did not exit", (int)st->pid);
		return -ETIMEDOUT;
	}
	return 0;
}

/* An open descriptor of the filesystem mounted on our loop device at dir,
 * or -1 (not mounted there, or something else is). */
static int fs_on_loop_at(const struct fsd *d, const char *dir)
{
	struct stat dev, st;
	int fd;

	if (d->raw || !d->loop[0] || stat(d->loop, &dev) ||
	    !S_ISBLK(dev.st_mode))
		return -1;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) || st.st_dev != dev.st_rdev) {
		close(fd);
		return -1;
	}
	return fd;
}

static int fs_on_loop(const struct fsd *d)
{
	return fs_on_loop_at(d, d->target);
}

/* Undo mountinfo's octal escapes ("\040" for a space...) in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++, o++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				    (s[3] - '0'));
			s += 3;
		} else {
			*o = *s;
		}
	}
	*o = 0;
}

/* The device and mountpoint of a /proc/self/mountinfo line ("ID PARENT
 * MAJ:MIN ROOT MOUNTPOINT ..."); *dir points into line, still escaped. */
static bool mountinfo_entry(char *line, dev_t *devno, char **dir)
{
	char *save = NULL, *field[5], *end;
	unsigned long maj, min;

	for (int i = 0; i < 5; i++) {
		field[i] = strtok_r(i ? NULL : line, " ", &save);
		if (!field[i])
			return false;
	}
	maj = strtoul(field[2], &end, 10);
	if (end == field[2] || *end != ':')
		return false;
	min = strtoul(end + 1, &end, 10);
	if (*end)
		return false;
	*devno = makedev(maj, min);
	*dir = field[4];
	return true;
}

/* The filesystem on our loop device, open: at the target, else at the
 * first mount of it this mount namespace shows (a bind mount, a move); -1
 * when there is none. */
static int fs_anywhere(const struct fsd *d)
{
	char line[8192], *dir;
	struct stat dev;
	dev_t devno;
	FILE *f;
	int fd = fs_on_loop(d);

	if (fd >= 0 || d->raw || !d->loop[0] || stat(d->loop, &dev))
		return fd;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -1;
	while (fd < 0 && fgets(line, sizeof(line), f))
		if (mountinfo_entry(line, &devno, &dir) &&
		    devno == dev.st_rdev) {
			unescape(dir);
			fd = fs_on_loop_at(d, dir);
		}
	fclose(f);
	return fd;
}

bool fsd_fs_is_ours(const struct fsd *d)
{
	int fd = fs_on_loop(d);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

bool fsd_loop_in_use(const struct fsd *d)
{
	char path[128], back[PATH_MAX];
	FILE *f;
	bool used = false;

	if (!d->loop[0])
		return false;
	snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file",
		 d->loop + 5);
	f = fopen(path, "re");
	if (f) {
		used = fgets(back, sizeof(back), f) &&
		       !strncmp(back, d->fuse_mnt, strlen(d->fuse_mnt));
		fclose(f);
	}
	return used;
}

int fsd_fs_shutdown(const struct fsd *d, bool flush)
{
	uint32_t how = flush ? FSD_SHUTDOWN_FLUSH : FSD_SHUTDOWN_NOLOGFLUSH;
	int fd = fs_anywhere(d), r = 0;

	if (fd < 0)
		return -ENOENT;
	if (ioctl(fd, FSD_IOC_SHUTDOWN, &how))
		r = -errno;
	close(fd);
	return r;
}

int fsd_loop_flush(const struct fsd *d, bool invalidate)
{
	int fd, r = 0;

	if (d->raw || !d->loop[0])
		return -ENOENT;
	fd = open(d->loop, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* BLKFLSBUF writes back and then drops the device's own page cache
	 * (metadata the filesystem read through it). */
	if (invalidate ? ioctl(fd, BLKFLSBUF, 0) : fsync(fd))
		r = -errno;
	close(fd);
	return r;
}
