/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon.c — fsd_serve(): the life of the daemon, from the volume key to the
 * last wipe.
 *
 * Setup, in order (teardown is the exact reverse, from wherever setup
 * stopped): cipher contexts (the key is freed right after), backend,
 * runtime directory, FUSE session and mount, worker threads, loop device,
 * filesystem (mkfs only on a blank device), control socket, state file,
 * readiness.  Then the main thread waits for a signal, a control request or
 * the end of the FUSE session; the workers serve FUSE requests.
 *
 * Shutdown: stop the FUSE session (unmount; abort the connection through
 * fusectl if something still holds the file), join the workers, fsync the
 * backend through io_uring, wipe every cipher context and buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <unistd.h>

#include <linux/fs.h>
#include <linux/fuse.h>
#include <linux/magic.h>

#include "fsd.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

#define ERR(...) snprintf(err, errlen, __VA_ARGS__)

static int open_backend(struct fsd *d, char *err, size_t errlen)
{
	int flags = (d->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	uint64_t size = 0;
	struct statfs sfs;
	struct stat st;

	d->backend_fd = open(d->volume, flags | O_DIRECT);
	if (d->backend_fd >= 0) {
		d->backend_direct = true;
	} else if (errno == EINVAL) {
		/* A filesystem without O_DIRECT: buffered, said once. */
		fsd_warn("%s: O_DIRECT refused by its filesystem; using "
			 "buffered I/O (fsync still makes writes durable)",
			 d->volume);
		d->backend_fd = open(d->volume, flags);
	}
	if (d->backend_fd < 0) {
		ERR("cannot open %s: %s", d->volume, strerror(errno));
		return -errno;
	}
	if (fstat(d->backend_fd, &st)) {
		ERR("cannot stat %s: %s", d->volume, strerror(errno));
		return -errno;
	}
	d->backend_in_memory =
		S_ISREG(st.st_mode) && !fstatfs(d->backend_fd, &sfs) &&
		(sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC);
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(d->backend_fd, BLKGETSIZE64, &size)) {
			ERR("cannot size %s: %s", d->volume, strerror(errno));
			return -errno;
		}
	} else {
		size = (uint64_t)st.st_size;
	}
	if (d->data_offset + d->data_size > size) {
		ERR("%s is shorter (%" PRIu64 " bytes) than its data segment "
		    "says (%" PRIu64 ")",
		    d->volume, size, d->data_offset + d->data_size);
		return -EINVAL;
	}
	/* No flock: libcryptsetup locks the header with flock on the
	 * volume itself, and header changes (rotate) are legitimate while
	 * mounted.  One daemon per volume is ensured by the runtime
	 * directory, which only one mkdir can create. */
	return 0;
}

static int make_rundir(struct fsd *d, char *err, size_t errlen)
{
	const char *root = fsd_runtime_root();

	if (mkdir(root, 0755) && errno != EEXIST) {
		ERR("cannot create %s: %s", root, strerror(errno));
		return -errno;
	}
	if (snprintf(d->rundir, sizeof(d->rundir), "%s/%s", root, d->uuid) >=
	    (int)sizeof(d->rundir) - 16) {
		d->rundir[0] = 0;
		ERR("%s: path too long", root);
		return -ENAMETOOLONG;
	}
	if (mkdir(d->rundir, 0700)) {
		int e = errno;

		if (e == EEXIST)
			ERR("%s exists: the volume is mounted, or a daemon "
			    "died without cleaning up (run 'cmkfs umount %s')",
			    d->rundir, d->volume);
		else
			ERR("cannot create %s: %s", d->rundir, strerror(e));
		d->rundir[0] = 0;
		return -e;
	}
	return 0;
}

/* The file the FUSE session is mounted on. */
static int make_fuse_mountpoint(struct fsd *d, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	int n = d->raw ? snprintf(d->fuse_mnt, sizeof(d->fuse_mnt), "%s",
				  d->target)
		       : snprintf(d->fuse_mnt, sizeof(d->fuse_mnt), "%s/plain",
				  d->rundir);

	if (n >= (int)sizeof(d->fuse_mnt)) {
		ERR("%s: path too long", d->target);
		return -ENAMETOOLONG;
	}
	if (stat(d->fuse_mnt, &st) == 0) {
		if (!S_ISREG(st.st_mode)) {
			ERR("%s is not a regular file: --raw exposes the "
			    "plaintext as a file, mounted over a regular file "
			    "(or a new one)",
			    d->fuse_mnt);
			return -EINVAL;
		}
		return 0;
	}
	fd = open(d->fuse_mnt, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ERR("cannot create %s: %s", d->fuse_mnt, strerror(errno));
		return -errno;
	}
	close(fd);
	d->fuse_mnt_created = true;
	return 0;
}

/* How many io_uring queues to try (0: classic transport); -errno when
 * --fuse-io-uring on cannot be had. */
static int plan_queues(struct fsd *d, char *err, size_t errlen)
{
	char why[256];
	unsigned nq;

	if (d->fuse_uring == FSD_URING_OFF)
		return 0;
	/* auto turns the kernel's switch on too where it may (root): the
	 * fast transport by default (the switch is logged when flipped). */
	if (fsd_uring_enabled(d->fuse_uring == FSD_URING_ON || geteuid() == 0,
			      why, sizeof(why))) {
		if (d->fuse_uring == FSD_URING_AUTO) {
			fsd_info("FUSE through /dev/fuse: %s", why);
			return 0;
		}
		ERR("%s", why);
		return -EOPNOTSUPP;
	}
	nq = fsd_uring_nqueues();
	if (!nq && d->fuse_uring == FSD_URING_ON) {
		ERR("cannot use FUSE over io_uring: too many possible CPUs, "
		    "or /sys/devices/system/cpu/possible unreadable");
		return -EOPNOTSUPP;
	}
	d->uring_wanted = nq > 0;
	return (int)nq;
}

/* The queues, once INIT is done: 0 when they serve, 1 to go on the
 * classic way instead (auto), or -errno. */
static int start_queues(struct fsd *d, unsigned first, unsigned nq, char *err,
			size_t errlen)
{
	char why[256];
	int r;

	if (!d->uring_agreed) {
		snprintf(why, sizeof(why),
			 "the kernel did not offer FUSE over io_uring");
		r = -EOPNOTSUPP;
		goto fail;
	}
	for (unsigned i = first; i < first + fsd_uring_nthreads(nq); i++) {
		r = fsd_worker_init(d, &d->workers[i]);
		if (r) {
			ERR("cannot set up I/O worker %u: %s", i, strerror(-r));
			return r;
		}
	}
	r = fsd_uring_start(d, &d->workers[first], nq, why, sizeof(why));
	if (!r)
		return 0;
	fsd_uring_cancel(d);
fail:
	if (d->fuse_uring == FSD_URING_ON) {
		ERR("%s", why);
		return r;
	}
	fsd_warn("%s; serving through /dev/fuse", why);
	return 1;
}

static int start_fuse(struct fsd *d, char *err, size_t errlen)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	unsigned nclassic = d->nworkers, nt;
	char fsname[80];
	struct stat st;
	int r, nq;

	nq = plan_queues(d, err, errlen);
	if (nq < 0)
		return nq;

	snprintf(fsname, sizeof(fsname), "fsname=cmkfs:%s", d->uuid);
	/* max_read: 1 MiB reads (the kernel's default is 128 KiB); the
	 * init handler raises max_write, and libfuse derives max_pages. */
	if (fuse_opt_add_arg(&args, "cmkfs") ||
	    fuse_opt_add_arg(&args, "-omax_read=1048576") ||
	    fuse_opt_add_arg(&args, "-osubtype=cmkfs") ||
	    fuse_opt_add_arg(&args, "-oallow_other,default_permissions") ||
	    fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, fsname)) {
		fuse_opt_free_args(&args);
		ERR("out of memory");
		return -ENOMEM;
	}
	d->se = fuse_session_new(&args, &fsd_ops, sizeof(fsd_ops), d);
	fuse_opt_free_args(&args);
	if (!d->se) {
		ERR("cannot create the FUSE session");
		return -ENOMEM;
	}
	if (fuse_session_mount(d->se, d->fuse_mnt)) {
		ERR("cannot mount FUSE on %s (is /dev/fuse there?)",
		    d->fuse_mnt);
		return -EIO;
	}
	d->fuse_mounted = true;
	r = fuse_session_custom_io(d->se, &fsd_custom_io,
				   fuse_session_fd(d->se));
	if (r) {
		ERR("cannot hook the FUSE channel");
		return -EIO;
	}

	/* Classic workers first, then one per io_uring thread. */
	nt = nq ? fsd_uring_nthreads((unsigned)nq) : 0;
	d->workers = calloc(nclassic + nt, sizeof(*d->workers));
	if (!d->workers) {
		ERR("out of memory");
		return -ENOMEM;
	}
	d->nworkers = nclassic + nt;
	for (unsigned i = 0; i < d->nworkers; i++)
		pthread_mutex_init(&d->workers[i].sc_lock, NULL);
	/* With io_uring, one classic worker serves INIT (and later FORGET
	 * and INTERRUPT, which stay on /dev/fuse). */
	r = fsd_workers_start(d, 0, nq ? 1 : nclassic, err, errlen);
	if (r)
		return r;
	/* Once INIT is answered with io_uring, the kernel holds every
	 * request back until all queues are registered. */
	if (nq) {
		if (!fsd_uring_wait_init(d, 10)) {
			ERR("the kernel sent no FUSE INIT within 10 s");
			return -ETIMEDOUT;
		}
		r = start_queues(d, nclassic, (unsigned)nq, err, errlen);
		if (r < 0)
			return r;
		/* Not available after all: the classic way (auto). */
		if (r && (r = fsd_workers_start(d, 1, nclassic, err, errlen)))
			return r;
	}
	/* Served by the workers; also proves the mount answers. */
	if (stat(d->fuse_mnt, &st)) {
		ERR("the FUSE mount on %s does not answer: %s", d->fuse_mnt,
		    strerror(errno));
		return -errno;
	}
	d->fuse_conn = minor(st.st_dev);
	return 0;
}

static int mount_fs(struct fsd *d, char *err, size_t errlen)
{
	char type[64];
	int r;

	r = fsd_loop_attach(d->fuse_mnt, d->sector_size, d->read_only, d->loop,
			    sizeof(d->loop), &d->loop_fd, err, errlen);
	if (r)
		return r;
	r = fsd_probe_signature(d->loop, type, sizeof(type));
	if (r < 0) {
		ERR("cannot read %s: %s", d->loop, strerror(-r));
		return r;
	}
	if (r == 0) {
		if (d->read_only) {
			ERR("%s holds no filesystem yet, and --read-only "
			    "cannot create one",
			    d->volume);
			return -EROFS;
		}
		r = d->mkfs ? 1 : fsd_reads_as_zeros(d->loop, d->data_size);
		if (r == -EINTR) {
			ERR("stopped by a signal while checking that %s reads "
			    "as zeros; nothing was written",
			    d->volume);
			return r;
		}
		if (r < 0) {
			ERR("cannot read %s: %s", d->loop, strerror(-r));
			return r;
		}
		if (!r) {
			ERR("%s holds no filesystem, but it is not blank: it "
			    "was written (through --raw, or by another tool) "
			    "since it was created, so formatting it could "
			    "destroy data.  To make a %s filesystem on it "
			    "anyway, destroying what it holds, mount it with "
			    "--mkfs",
			    d->volume, d->fstype);
			return -ENOTEMPTY;
		}
		fsd_info("%s: %s, creating %s", d->volume,
			 d->mkfs ? d->mkfs : "reads as zeros", d->fstype);
		r = fsd_mkfs(d->fstype, d->loop, err, errlen);
		if (r)
			return r;
		r = fsd_probe_signature(d->loop, type, sizeof(type));
		if (r <= 0) {
			ERR("mkfs.%s left no filesystem on %s", d->fstype,
			    d->loop);
			return -EIO;
		}
	} else if (strcmp(type, d->fstype)) {
		fsd_info("%s holds %s; mounting it as is", d->volume, type);
	}
	if (snprintf(d->fstype_found, sizeof(d->fstype_found), "%s", type) >=
	    (int)sizeof(d->fstype_found)) {
		ERR("%s holds a %s signature: not a filesystem cmkfs mounts",
		    d->volume, type);
		return -EINVAL;
	}
	if (mount(d->loop, d->target, type, d->read_only ? MS_RDONLY : 0,
		  NULL)) {
		r = -errno;
		ERR("cannot mount %s (%s) on %s: %s", d->loop, type, d->target,
		    strerror(errno));
		return r;
	}
	d->fs_mounted = true;
	/* The mount holds the device now; autoclear detaches it at umount. */
	close(d->loop_fd);
	d->loop_fd = -1;
	return 0;
}

static void abort_connection(struct fsd *d)
{
	char path[128];
	int fd;

	if (!d->fuse_conn)
		return;
	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/abort",
		 d->fuse_conn);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		fsd_warn("cannot abort FUSE connection %u: %s", d->fuse_conn,
			 strerror(errno));
		return;
	}
	if (write(fd, "1", 1) < 0)
		fsd_warn("cannot abort FUSE connection %u: %s", d->fuse_conn,
			 strerror(errno));
	close(fd);
}

/* Stop serving: end the FUSE session and join the workers. */
static void stop_fuse(struct fsd *d)
{
	if (!d->se)
		return;
	fuse_session_exit(d->se);
	if (d->fuse_mounted && umount2(d->fuse_mnt, MNT_DETACH) &&
	    errno != EINVAL)
		fsd_warn("cannot unmount %s: %s", d->fuse_mnt, strerror(errno));
	d->fuse_mounted = false;
	/* The session ends when the last user of the file lets go; a loop
	 * device left attached (daemon signalled while the filesystem is
	 * mounted) would hold it for ever: abort the connection then. */
	if (d->workers && !fsd_workers_done(d, 500)) {
		/* Interrupt the workers' reads of /dev/fuse: they see the
		 * session has exited and return.  Repeated, because a worker
		 * may enter read() just after a kick.  The kernel aborts the
		 * connection when our /dev/fuse descriptor closes. */
		for (int k = 0; k < 30 && !fsd_workers_done(d, 100); k++)
			fsd_kick_workers(d);
		if (!fsd_workers_done(d, 0)) {
			abort_connection(d);
			if (!fsd_workers_done(d, 2000))
				fsd_err("FUSE workers do not stop");
		}
	}
	for (unsigned i = 0; d->workers && i < d->nworkers; i++)
		if (d->workers[i].started && !atomic_load(&d->live_workers)) {
			pthread_join(d->workers[i].thread, NULL);
			d->workers[i].started = false;
		}
	if (!atomic_load(&d->live_workers))
		fsd_uring_join(d);
	/* The connection is dead by now, so this only releases libfuse's
	 * copy of the mountpoint (it would run fusermount3 otherwise). */
	if (!atomic_load(&d->live_workers) && atomic_load(&d->conn_dead))
		fuse_session_unmount(d->se);
}

/* Flush and wipe: the end of every path out of fsd_serve.  Returns the
 * result of the final fsync. */
static int teardown(struct fsd *d, bool ready, bool keep_state)
{
	int r = 0;

	/* The metrics go with the mount (their thread reads the workers).
	 * The checker first (a resume could start the job again), then
	 * the job, between two blocks: the header stays resumable. */
	fsd_metrics_stop(d);
	fsd_revoke_stopping(d);
	fsd_revoke_stop(d);
	fsd_rekey_stop(d);
	/* Once ready, the filesystem on top is the CLI's to unmount. */
	if (!ready && d->fs_mounted && umount2(d->target, 0))
		fsd_warn("cannot unmount %s: %s", d->target, strerror(errno));
	if (d->loop_fd >= 0)
		close(d->loop_fd); /* autoclear detaches the device */
	d->loop_fd = -1;
	stop_fuse(d);
	if (d->backend_fd >= 0 && d->workers && d->workers[0].ring_ok &&
	    !atomic_load(&d->live_workers) && !d->read_only)
		r = fsd_backend_fsync(&d->workers[0], false);
	if (d->workers && !atomic_load(&d->live_workers))
		for (unsigned i = 0; i < d->nworkers; i++)
			fsd_worker_destroy(&d->workers[i]);
	pthread_mutex_lock(&d->key_lock);
	sc_close(d->master);
	sc_close(d->master_new);
	d->master = d->master_new = NULL;
	pthread_mutex_unlock(&d->key_lock);
	if (atomic_load(&d->live_workers)) {
		/* Workers that would not stop still use the session and
		 * their contexts: leave them to the process exit. */
		fsd_err("exiting with FUSE workers still running");
		r = -EBUSY;
	} else if (d->se) {
		fuse_session_destroy(d->se);
	}
	d->se = NULL;
	if (d->ctl_fd >= 0)
		close(d->ctl_fd);
	d->ctl_fd = -1;
	if (d->fuse_mnt_created && unlink(d->fuse_mnt) && errno != ENOENT)
		fsd_warn("cannot remove %s: %s", d->fuse_mnt, strerror(errno));
	if (d->rundir[0])
		fsd_remove_rundir(d, keep_state);
	if (d->backend_fd >= 0 && close(d->backend_fd) && !r)
		r = -errno;
	d->backend_fd = -1;
	return r;
}

static void free_fsd(struct fsd *d)
{
	if (d->done_efd >= 0)
		close(d->done_efd);
	for (unsigned i = 0; i < FSD_LOCKS; i++)
		pthread_rwlock_destroy(&d->locks[i]);
	fsd_rekey_free(d);
	/* Workers still running (they would not stop) keep their memory. */
	if (!atomic_load(&d->live_workers)) {
		fsd_uring_free(d);
		free(d->workers);
		fsd_suspend_free(d);
	}
	free(d->volume);
	free(d->target);
	free(d->uuid);
	free(d->fstype);
	free(d);
}

/* Wait up to ms for the loop device to let go of our file. */
static bool loop_released(const struct fsd *d, int ms)
{
	for (; ms > 0 && fsd_loop_in_use(d); ms -= 50)
		usleep(50 * 1000);
	return !fsd_loop_in_use(d);
}

/*
 * Stopped by a signal (systemd's stop, kill) with the filesystem on top
 * still mounted: what it has not written yet must reach the volume before
 * we stop serving.  Unmount it, which writes everything back through us.
 * When it is busy, or lives on elsewhere (a bind mount, a move, another
 * mount namespace, a lazy unmount with files open), shut it down after a
 * flush (FS_IOC_SHUTDOWN with a freeze first) wherever this mount
 * namespace shows it: all it held is on the volume, and every later write
 * fails with EIO instead of vanishing; the mount stays for 'cmkfs umount'.
 * Where it cannot be seen, sync(2), which reaches every superblock, writes
 * it back; what is written there after we exit is lost.
 */
static void release_fs(struct fsd *d)
{
	bool busy = false;
	int r;

	if (d->raw || !d->loop[0])
		return;
	if (fsd_fs_is_ours(d)) {
		busy = umount2(d->target, 0) != 0;
		if (busy) {
			fsd_warn("%s: cannot unmount %s: %s", d->volume,
				 d->target, strerror(errno));
		} else {
			fsd_info("%s: unmounted %s", d->volume, d->target);
			if (loop_released(d, 2000))
				return;
		}
	} else if (!fsd_loop_in_use(d)) {
		return;
	}
	if (!busy)
		fsd_warn("%s: the filesystem on %s is still mounted elsewhere "
			 "(a bind mount, another mount namespace or a lazy "
			 "unmount with files open)",
			 d->volume, d->loop);
	if (fsd_fs_shutdown(d, true) == 0) {
		fsd_warn("%s: the filesystem is flushed to the volume and shut "
			 "down (further I/O there fails)",
			 d->volume);
	} else {
		sync();
		fsd_warn("%s: the filesystem cannot be shut down from here: "
			 "flushed with sync(2); what is written there from now "
			 "on is lost",
			 d->volume);
	}
	r = fsd_loop_flush(d, false);
	if (r && r != -ENOENT)
		fsd_err("%s: cannot flush %s: %s", d->volume, d->loop,
			strerror(-r));
	fsd_warn("%s: unmount it, then run 'cmkfs umount %s'", d->volume,
		 d->target);
}

/* A "shutdown" request: agree only when nothing uses the plaintext file
 * any more, so that a busy mount is reported and left intact. */
static int control_shutdown(struct fsd *d)
{
	/* The loop device may let go of the file a moment after its last
	 * close; a filesystem still mounted on it never does. */
	if (!d->raw && !loop_released(d, 2000))
		return -EBUSY;
	d->fs_mounted = false; /* unmounted by the caller */
	if (umount2(d->fuse_mnt, 0)) {
		if (errno == EBUSY)
			return -EBUSY;
		if (errno != EINVAL)
			return -errno;
	}
	d->fuse_mounted = false;
	return 0;
}

/* Answer one control connection; may start the shutdown, keeping the
 * connection in *client for the final answer. */
static void handle_control(struct fsd *d, bool *stop, int *client)
{
	int fd = accept4(d->ctl_fd, NULL, NULL, SOCK_CLOEXEC);
	char line[64];
	int r;

	if (fd < 0)
		return;
	if (fsd_control_recv(fd, line, sizeof(line))) {
		close(fd);
		return;
	}
	if (!strcmp(line, "status")) {
		fsd_control_status(d, fd);
	} else if (!strcmp(line, "requests")) {
		fsd_control_requests(d, fd);
	} else if (!strncmp(line, "reencrypt ", 10)) {
		char why[256];

		r = fsd_rekey_control(d, line + 10, why, sizeof(why));
		if (r)
			dprintf(fd, "error %d %s\n", -r, why);
		else
			dprintf(fd, "ok\n");
	} else if (!strcmp(line, "shutdown")) {
		r = control_shutdown(d);
		if (!r) {
			fsd_info("shutdown requested");
			*stop = true;
			*client = fd;
			return;
		}
		dprintf(fd, "error %d %s\n", -r,
			r == -EBUSY ? "the plaintext file is still in use"
				    : strerror(-r));
	} else {
		dprintf(fd, "error %d unknown request\n", EINVAL);
	}
	close(fd);
}

int fsd_serve(struct fsd_params *p, char *err, size_t errlen)
{
	struct sc_params scp = { .cipher = p->cipher,
				 .sector_size = p->sector_size };
	struct signalfd_siginfo si;
	struct fsd *d = calloc(1, sizeof(*d));
	bool ready = false, stop = false, signalled = false;
	int sfd = -1, client = -1, r;
	sigset_t sigs;
	pthread_condattr_t ca;

	err[0] = 0;
	if (!d) {
		crypto_key_free(p->key);
		crypto_key_free(p->key_new);
		p->key = p->key_new = NULL;
		ERR("out of memory");
		return -ENOMEM;
	}
	d->backend_fd = d->loop_fd = d->ctl_fd = d->done_efd = -1;
	pthread_mutex_init(&d->key_lock, NULL);
	pthread_mutex_init(&d->check_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->check_cond, &ca);
	pthread_condattr_destroy(&ca);
	fsd_suspend_init(d);
	pthread_mutex_init(&d->uring_lock, NULL);
	pthread_cond_init(&d->uring_cond, NULL);
	d->fuse_uring = p->fuse_uring;
	d->poll_ns = (int64_t)(p->poll_us < FSD_POLL_US_MAX ? p->poll_us
							    : FSD_POLL_US_MAX) *
		     1000;
	d->reprove = p->reprove;
	d->check_interval = p->check_interval;
	d->outage_grace = p->outage_grace;
	d->on_revoke = p->on_revoke;
	d->suspend_timeout = p->suspend_timeout;
	for (unsigned i = 0; i < FSD_LOCKS; i++)
		pthread_rwlock_init(&d->locks[i], NULL);
	d->volume = strdup(p->volume);
	d->target = strdup(p->target);
	d->uuid = strdup(p->uuid);
	d->fstype = strdup(p->fstype ? p->fstype : "ext4");
	d->raw = p->raw;
	d->read_only = p->read_only;
	d->allow_discards = p->allow_discards;
	d->mkfs = p->mkfs;
	d->data_offset = p->data_offset;
	d->data_size = p->data_size;
	d->sector_size = p->sector_size;
	d->nworkers = p->threads ? p->threads : FSD_DEFAULT_THREADS;
	if (d->nworkers > FSD_MAX_THREADS)
		d->nworkers = FSD_MAX_THREADS;
	d->started = time(NULL);

	/* The keys go into cipher contexts and nowhere else. */
	d->scp = scp;
	r = sc_open(&d->master, &scp, crypto_key_bytes(p->key),
		    crypto_key_len(p->key));
	crypto_key_free(p->key);
	p->key = NULL;
	if (!r)
		r = fsd_rekey_init(d, p);
	else
		crypto_key_free(p->key_new);
	p->key_new = NULL;
	if (!d->volume || !d->target || !d->uuid || !d->fstype) {
		ERR("out of memory");
		r = -ENOMEM;
		goto out;
	}
	if (r) {
		ERR("cannot set up the cipher of %s: %s", d->volume,
		    crypto_strerror(r));
		goto out;
	}
	d->aes = sc_impl(d->master);

	fsd_log_open(p->log_file, !p->detach);
	fsd_log_context(d->uuid, d->reprove.key);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
		fsd_warn("cannot make the daemon non-dumpable: %s",
			 strerror(errno));
	/* We serve I/O that memory reclaim may wait for (the loop device on
	 * top of us): let our own allocations not recurse into it. */
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0))
		fsd_warn("PR_SET_IO_FLUSHER refused (%s): under memory "
			 "pressure the loop device may stall",
			 strerror(errno));
	if (p->notice)
		fsd_info("%s: %s", d->volume, p->notice);
	if (sc_is_null(d->master))
		fsd_warn("%s: cipher_null: this volume is NOT ENCRYPTED",
			 d->volume);

	/* Signals are for the main thread only, through a signalfd; the
	 * workers inherit the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	/* SIGUSR1: a no-op handler without SA_RESTART, unblocked only in
	 * the workers, to interrupt their reads at shutdown. */
	sigaction(SIGUSR1, &(struct sigaction){ .sa_handler = fsd_on_usr1 },
		  NULL);
	sigaddset(&sigs, SIGUSR1);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->done_efd = eventfd(0, EFD_CLOEXEC);
	if (sfd < 0 || d->done_efd < 0) {
		r = -errno;
		ERR("cannot set up signal handling: %s", strerror(errno));
		goto out;
	}

	r = open_backend(d, err, errlen);
	if (!r)
		r = make_rundir(d, err, errlen);
	if (!r)
		r = make_fuse_mountpoint(d, err, errlen);
	if (!r)
		r = start_fuse(d, err, errlen);
	if (!r && !d->raw)
		r = mount_fs(d, err, errlen);
	if (!r)
		r = fsd_control_listen(d);
	if (!r)
		r = fsd_metrics_start(d, p, err, errlen);
	if (!r)
		r = fsd_state_write(d);
	if (r) {
		if (!err[0])
			ERR("cannot record the runtime state in %s: %s",
			    d->rundir, strerror(-r));
		goto out;
	}
	if (atomic_load(&d->rk.two_keys))
		fsd_info("%s: being reencrypted: %" PRIu64 " of %" PRIu64
			 " bytes are under the new key, the rest under the old",
			 d->volume, (uint64_t)atomic_load(&d->rk.done),
			 d->data_size);
	fsd_log_event(
		LOG_INFO, "mount",
		"%s mounted on %s%s%s (pid %d, %s, %s backend, AES by %s)",
		d->volume, d->target, d->loop[0] ? " through " : "", d->loop,
		(int)getpid(), d->nqueues ? "FUSE over io_uring" : "/dev/fuse",
		d->backend_in_memory && d->nqueues ? "in-memory (tmpfs)"
		: d->backend_direct		   ? "O_DIRECT"
						   : "buffered",
		d->aes);
	r = fsd_revoke_start(d);
	if (r) {
		ERR("cannot start the revocation checks: %s", strerror(-r));
		goto out;
	}
	if (d->check_interval)
		fsd_info("%s: access to %s re-checked every %u s; on "
			 "revocation: %s",
			 d->volume, d->reprove.key, d->check_interval,
			 fsd_on_revoke_name(d->on_revoke));
	ready = true;
	if (p->ready)
		p->ready(p->ready_arg);
	r = fsd_rekey_autostart(d);
	if (r)
		fsd_err("%s: cannot start its reencryption: %s", d->volume,
			strerror(-r));
	if (p->detach) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			close(null);
		}
		if (chdir("/"))
			fsd_warn("cannot chdir to /");
	}

	while (!stop) {
		struct pollfd pfd[3] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = d->ctl_fd, .events = POLLIN },
			{ .fd = d->done_efd, .events = POLLIN },
		};

		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			fsd_err("poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents & POLLIN &&
		    read(sfd, &si, sizeof(si)) == sizeof(si)) {
			fsd_info("signal %u: shutting down", si.ssi_signo);
			signalled = stop = true;
		}
		if (pfd[1].revents & POLLIN)
			handle_control(d, &stop, &client);
		if (pfd[2].revents & POLLIN) {
			fsd_info("%s: the FUSE mount went away; shutting down",
				 d->fuse_mnt);
			d->fuse_mounted = false;
			stop = true;
		}
	}
	/* What a suspended mount holds cannot be encrypted, and the
	 * unmount below would wait for it: it is dropped. */
	fsd_revoke_stopping(d);
	if (signalled)
		release_fs(d);
	r = 0;
out:;
	/* A signal with the filesystem still mounted on the loop device
	 * leaves the state for 'cmkfs umount' to finish the job. */
	bool keep = ready && signalled && fsd_loop_in_use(d);
	int fr = teardown(d, ready, keep);

	if (ready) {
		if (fr)
			fsd_err("%s: final flush failed: %s", d->volume,
				strerror(-fr));
		else if (atomic_load(&d->shredded))
			fsd_log_event(LOG_INFO, "unmount",
				      "%s: exiting; its keys were shredded "
				      "before (writes that came after the "
				      "shred failed)",
				      d->volume);
		else
			fsd_log_event(LOG_INFO, "unmount",
				      "%s: flushed, keys wiped, exiting",
				      d->volume);
		r = fr;
	}
	if (client >= 0) {
		char line[160];
		int n = fr ? snprintf(line, sizeof(line), "error %d %s\n", -fr,
				      strerror(-fr))
			   : snprintf(line, sizeof(line), "ok\n");

		if (write(client, line, (size_t)n) < 0)
			fsd_warn("cannot answer the shutdown request");
		close(client);
	}
	if (sfd >= 0)
		close(sfd);
	fsd_log_close();
	free_fsd(d);
	return r;
}
