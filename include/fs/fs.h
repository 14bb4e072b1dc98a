/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs.h — the public interface of cmkfs's fs module: the daemon that serves a
 * volume's plaintext as one file over FUSE (libfuse3 low-level API, io_uring
 * backend, AES-XTS through crypto/), and the mount orchestration around it
 * (loop device, filesystem, runtime state, control socket).
 *
 * This is the only header other modules include from fs/.  No libfuse or
 * liburing type leaks through it.
 *
 * Runtime state of a mounted volume lives in $CMKFS_RUNTIME_DIR/<uuid>/
 * (default /run/cmkfs/<uuid>/), mode 0700:
 *   state    key=value lines: pid, volume, mountpoint, fuse, loop, fstype,
 *            raw, read_only, started (written once the mount is usable)
 *   pid      the daemon's pid (for systemd PIDFile= and scripts)
 *   plain    the FUSE mountpoint of the plaintext file (not with --raw)
 *   control  the daemon's control socket (UNIX stream, root only): one
 *            request line, one reply; "status" answers key=value lines,
 *            "shutdown" answers "ok" or "error ERRNO MESSAGE", so do
 *            "reencrypt start|pause|resume|rate" (see fs/state.c for the
 *            exact protocol).
 *
 * Errors: 0 or -errno, with a one-line reason in err (never secret bytes).
 */
#ifndef CMKFS_FS_H
#define CMKFS_FS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How the kernel hands FUSE requests over: io_uring when the kernel has it
 * enabled (auto), enabling it if need be (on), or read(2) on /dev/fuse. */
enum fsd_fuse_uring { FSD_URING_AUTO, FSD_URING_ON, FSD_URING_OFF };

/* fsd_params.poll_us: the default, and the most a mount may ask. */
#define FSD_POLL_US_DEFAULT 50u
#define FSD_POLL_US_MAX	    1000u

struct crypto_key;

/* The answer of one revocation check. */
enum fsd_access {
	FSD_ACCESS_OK,		/* the key still opens the volume */
	FSD_ACCESS_REFUSED,	/* a definitive refusal: the on-revoke
				   policy applies */
	FSD_ACCESS_UNAVAILABLE, /* the key service did not answer (an
				   outage, after its own retries) */
};

/*
 * How the daemon re-proves, while mounted, that this host may still open the
 * volume: the mounter builds it (the daemon knows nothing of how keys are
 * kept).  check is called from the daemon's checker thread, one call at a
 * time, and must return within a bounded time; when the answer is not
 * FSD_ACCESS_OK it writes one line to why saying what the service answered
 * (never secret bytes); with FSD_ACCESS_OK, a line in why is a warning
 * (access holds, but not through every key), logged at each check.  key names
 * the key in the log.  check == NULL: no checks.
 */
struct fsd_reprove {
	enum fsd_access (*check)(void *arg, char *why, size_t len);
	void *arg;
	const char *key;
	/* For --on-revoke suspend: the same proof, and with it the volume
	 * keys again, as a mount gets them (the secret unwrapped, every
	 * keyslot of the token it re-proves opened from the header as it
	 * is now, allow-list and pinning applied): up to max keys in keys
	 * (*n of them; the caller frees them), each to be recognised by
	 * what it encrypts.  NULL: a suspended mount cannot resume. */
	enum fsd_access (*unlock)(void *arg, struct crypto_key **keys,
				  unsigned max, unsigned *n, char *why,
				  size_t len);
	/* The key the last answer of check or unlock was about when a
	 * volume opens through several (called on the thread that got the
	 * answer), or NULL: key. */
	const char *(*about)(void *arg);
	/* The KMS request id of the answer why gave ("" when none), for the
	 * log (called as about is), or NULL. */
	const char *(*request_id)(void *arg);
};

/* What a definitive refusal does (fs/revoke.c, fs/suspend.c). */
enum fsd_on_revoke {
	FSD_REVOKE_SHRED,   /* wipe the keys, fail all I/O (the default) */
	FSD_REVOKE_KEEP,    /* log it and serve on */
	FSD_REVOKE_SUSPEND, /* wipe the keys, hold I/O until access
			       returns, then resume; shred after the
			       suspend timeout */
};

/*
 * Online reencryption: the data rewritten under a new volume key while it
 * is served.  The job that rewrites it (header, keys, KMS) is the
 * mounter's; the daemon runs it on its own thread and keeps the data path
 * right meanwhile (fs/rekey.c): the job tells it where it stands.
 *
 * run rewrites the data, calling fsd_rekey_begin once it has both keys,
 * then fsd_rekey_step before every block, then fsd_rekey_end; it returns
 * 0 when every byte is under the new key, -EINTR when a step said stop,
 * else -errno with why said.  It is started by a "reencrypt start" control
 * request, or at once when the mount found one in progress (key_new).
 */
struct fsd_rekey;
struct fsd_job {
	int (*run)(void *arg, struct fsd_rekey *rk, char *why, size_t len);
	void *arg;
};

/* The new key (ownership moves) and where the job stands: [0, done) of
 * the data is under it, [done, total) under the volume's key.  On a mount
 * that serves one key, done must be 0.  0, or -errno with why said. */
/* Is key the one the data path serves (the old key of a reencryption)?
 * Checked by what each encrypts, never by comparing bytes in the open. */
bool fsd_rekey_serves(struct fsd_rekey *rk, const struct crypto_key *key);
int fsd_rekey_begin(struct fsd_rekey *rk, struct crypto_key *new_key,
		    uint64_t done, uint64_t total, char *why, size_t len);
/* Before each block, with nothing in flight: [0, done) is under the new
 * key (committed), and the next block is [done, next).  Waits while the
 * job is paused or throttled, then holds the block (I/O to it waits until
 * the next step) and returns 0; -EINTR: stop (shutdown, shred); -EIO: the
 * job left the blocks it was given. */
int fsd_rekey_step(struct fsd_rekey *rk, uint64_t done, uint64_t next);
/* The job ended; the header on disk (read again after a failure: not
 * what libcryptsetup holds in memory) says how: */
enum fsd_rekey_how {
	FSD_REKEY_ALL_NEW,     /* every byte is under the new key: the old
				  key is wiped */
	FSD_REKEY_STOPPED,     /* stopped between blocks, [0, done) under
				  the new key: the hold goes */
	FSD_REKEY_HELD_BROKEN, /* anything else (cut off inside the held
				  block, a header that cannot be read): I/O
				  to the held block fails until a restart
				  recovers it */
};
void fsd_rekey_end(struct fsd_rekey *rk, enum fsd_rekey_how how, uint64_t done);

/* What the daemon serves and how the result is mounted. */
struct fsd_params {
	const char *volume; /* the volume file or block device */
	const char *target; /* user-facing mountpoint: a directory, or with
			       raw, the path of the plaintext file */
	const char *uuid;   /* LUKS UUID: names the runtime directory */
	const char *cipher; /* from the header, never from a flag */
	uint64_t data_offset, data_size;
	unsigned sector_size;

	/* The volume key.  fsd_serve takes ownership: it builds its cipher
	 * contexts and frees (wipes) the key before it mounts anything,
	 * whatever the outcome. */
	struct crypto_key *key;

	/* A reencryption in progress: [0, rekey_done) of the data is under
	 * key_new (ownership moves as for key), the rest under key, and
	 * the job is started once the mount is usable.  job.run == NULL: no
	 * online reencryption.  rekey_max_rate: bytes/s (0: the default). */
	struct crypto_key *key_new;
	uint64_t rekey_done;
	struct fsd_job job;
	uint64_t rekey_max_rate;
	bool rekey_paused; /* the job waits for a "reencrypt resume" */

	const char *fstype; /* "ext4" (default when NULL) or "xfs" */
	/* Make the filesystem when the device holds none, and why (for the
	 * log): the volume was never written (its blank mark: "blank"), or
	 * the user asked.  NULL: a device without a filesystem is formatted
	 * only when it reads as zeros all through, and refused when not. */
	const char *mkfs;
	bool raw; /* expose the plaintext file at target */
	bool read_only;
	bool allow_discards;  /* see fs/README.md: discards as zero writes */
	bool detach;	      /* redirect stdio to /dev/null once ready */
	const char *log_file; /* NULL: syslog, or stderr when !detach */
	unsigned threads;     /* FUSE worker threads; 0 = default (16) */
	enum fsd_fuse_uring fuse_uring;
	/* FUSE over io_uring: microseconds a queue thread that was just busy
	 * polls its ring before it sleeps (fs/uring.c, wait_spin); 0: never
	 * polls.  At most FSD_POLL_US_MAX. */
	unsigned poll_us;

	/* Revocation checks (fs/revoke.c): reprove.check every
	 * check_interval seconds (0: never); what it points to must stay
	 * valid until fsd_serve returns; each wait is check_interval plus
	 * up to a tenth of it (jitter, so that hosts do not ask in step).
	 * outage_grace: seconds of nothing but FSD_ACCESS_UNAVAILABLE after
	 * which the policy applies too (0: never).  suspend_timeout:
	 * seconds a suspended mount holds I/O before it shreds (0:
	 * forever). */
	struct fsd_reprove reprove;
	unsigned check_interval;
	enum fsd_on_revoke on_revoke;
	unsigned outage_grace;
	unsigned suspend_timeout;

	/* Metrics in the Prometheus text format (fs/metrics.c): served on
	 * GET /metrics at metrics_listen ("PORT" on 127.0.0.1, or
	 * "ADDR:PORT"), and/or written to metrics_file every
	 * metrics_interval seconds (0: 10); NULL: not. */
	const char *metrics_listen, *metrics_file;
	unsigned metrics_interval;

	/* A line the daemon logs about the volume once its log is open (what
	 * the mounter did before serving), or NULL. */
	const char *notice;

	/* Called once, in the daemon, when the mount is usable: the caller
	 * reports readiness (e.g. to the parent that waits for it). */
	void (*ready)(void *arg);
	void *ready_arg;
};

/*
 * Run the daemon in the calling process: open the backend, mount the FUSE
 * file, attach the loop device, create the filesystem when the device holds
 * none and may be formatted (see mkfs), mount it, record the runtime state,
 * call p->ready, then serve until SIGTERM/SIGINT, a "shutdown" request on the
 * control socket, or the FUSE mount going away; flush the backend, wipe every
 * key and return.
 *
 * Before ready: a failure undoes everything done so far and returns -errno
 * with the reason in err.  After ready: returns 0 on a clean shutdown, or
 * -errno when the final flush failed (logged).  Call it from a
 * single-threaded process; it blocks signals in the process and starts its
 * own threads.
 */
int fsd_serve(struct fsd_params *p, char *err, size_t errlen);

/* The runtime state of one mount. */
struct fsd_state {
	char uuid[40];
	pid_t pid;
	bool alive; /* the daemon process exists */
	char volume[PATH_MAX];
	char mountpoint[PATH_MAX]; /* user-facing */
	char fuse[PATH_MAX];	   /* FUSE mountpoint of the plaintext */
	char loop[64];		   /* "/dev/loopN", empty with raw */
	char fstype[16];
	unsigned fuse_conn; /* fusectl connection number, 0 = unknown */
	bool raw, read_only;
	int64_t started; /* seconds since the epoch */

	/* From the daemon over the control socket (have_stats false when
	 * it does not answer). */
	bool have_stats;
	uint64_t bytes_read, bytes_written, reads, writes, io_errors;
	unsigned check_interval;	   /* 0: no revocation checks */
	unsigned io_uring_threads;	   /* 0: requests through /dev/fuse */
	int64_t last_check_ok, next_check; /* seconds since the epoch */
	bool shredded;
	/* --on-revoke suspend: I/O held since suspended_since (seconds
	 * since the epoch), after KMS answered last_refusal. */
	bool suspended;
	int64_t suspended_since;
	unsigned suspend_timeout;
	char on_revoke[16];
	char last_refusal[512];
	char aes[24];	  /* what does the AES: "VAES/AVX-512", "OpenSSL" */
	char metrics[96]; /* the metrics' URL, empty: none */
	char metrics_file[PATH_MAX]; /* --metrics-file, empty: none */
	/* Online reencryption: "none", "running", "paused", "done",
	 * "stopped", "failed" (error says why); bytes done of total, the
	 * rate it ran at and its limit (bytes/s, 0: none). */
	char reencrypt[16];
	uint64_t reencrypt_done, reencrypt_total, reencrypt_rate,
		reencrypt_max_rate;
	bool reencrypt_pause; /* asked to pause */
	char reencrypt_error[256];
};

/* Send "reencrypt ARGS" (start [RATE], pause, resume, rate RATE; RATE in
 * bytes/s, 0: none; a job started without one gets the mount's default) to
 * the daemon of
 * uuid: 0, or -errno with its answer in err. */
int fsd_reencrypt_request(const char *uuid, const char *args, char *err,
			  size_t errlen);

/* The mount of volume uuid: 0 with *st filled, -ENOENT when not mounted,
 * other -errno when the state cannot be read.  Asks the daemon for its
 * counters when it is alive. */
int fsd_state_by_uuid(const char *uuid, struct fsd_state *st);

/* fn(state, arg) for every mount of this host (those whose state can be
 * read), in no order, until fn returns non-zero: 0, fn's value, -errno. */
int fsd_state_each(int (*fn)(const struct fsd_state *st, void *arg), void *arg);

/* The mount whose user-facing mountpoint or volume is path (compared after
 * realpath): 0, -ENOENT, -errno. */
int fsd_state_find(const char *path, struct fsd_state *st);

/*
 * Unmount what st describes: the filesystem (fails with -EBUSY and changes
 * nothing when it is in use), the loop device, then the daemon is asked to
 * flush, wipe its keys and exit, and waited for.  When the daemon is dead,
 * cleans up what it left (lazy unmounts, loop detach, FUSE connection
 * abort, runtime directory).  0 or -errno with the reason in err.
 */
int fsd_umount(const struct fsd_state *st, char *err, size_t errlen);

/* The runtime root ($CMKFS_RUNTIME_DIR or /run/cmkfs). */
const char *fsd_runtime_root(void);

/* What libblkid recognises on path (LUKS, a filesystem, a partition
 * table...): 1 with its name in type ("crypto_LUKS", "ext4"...; several
 * comma-separated when they disagree), 0 when nothing, -errno.  So that
 * nothing with data on it is formatted over by mistake. */
int fsd_probe_signature(const char *path, char *type, size_t len);

#endif /* CMKFS_FS_H */
