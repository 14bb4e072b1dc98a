/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fsd.h — internals shared by the files of fs/ (not a public header: other
 * modules include fs.h).  The daemon's state, its per-thread workers, the
 * backend I/O helpers, logging and the mount helpers.
 */
#ifndef CMKFS_FSD_H
#define CMKFS_FSD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>
#include <time.h>

/* libfuse 3.14 API (fuse_session_custom_io needs 3.13+). */
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <liburing.h>

#include "crypto.h"
#include "fs.h"
#include "obs.h"

/* Largest FUSE read/write (max_read, max_write) and the span of sectors it
 * can cover when unaligned. */
#define FSD_MAX_REQ ((size_t)1024 * 1024)
#define FSD_BUF_LEN (FSD_MAX_REQ + (size_t)2 * SC_MAX_SECTOR)

/* Striped per-sector locks for read-modify-write (a power of two). */
#define FSD_LOCKS 1024u

#define FSD_DEFAULT_THREADS 16u
#define FSD_MAX_THREADS	    128u

struct fsd;
struct fsd_queue;

/* Backend I/O, as its latency is counted (metrics.c). */
enum fsd_io_kind { FSD_IO_READ, FSD_IO_WRITE, FSD_IO_FSYNC, FSD_IO_KINDS };
/* The answers of enum fsd_access, as counted. */
#define FSD_ACCESS_KINDS 3

/* The request a thread or a queue entry is serving, as the watchdog sees
 * it (control request "requests"): since is CLOCK_MONOTONIC milliseconds
 * when it arrived, 0 when there is none.  Written by the serving thread,
 * read by the main thread. */
struct fsd_busy {
	_Atomic int64_t since;
	_Atomic uint32_t opcode;
	_Atomic uint64_t unique;
};
/* busy.c: a monotonic clock in ms, never 0 (0 means "no request"). */
int64_t fsd_now_ms(void);
static inline void fsd_busy_begin(struct fsd_busy *b, uint32_t opcode,
				  uint64_t unique)
{
	atomic_store(&b->opcode, opcode);
	atomic_store(&b->unique, unique);
	atomic_store(&b->since, fsd_now_ms());
}
static inline void fsd_busy_end(struct fsd_busy *b)
{
	atomic_store(&b->since, 0);
}
/* One line "AGE_MS OPCODE UNIQUE WHERE" for the request b records, if
 * any, to fd (fd < 0: none written): the requests (0 or 1). */
unsigned fsd_busy_print(int fd, struct fsd_busy *b, int64_t now,
			const char *where);
/* "READ", "WRITE"... for a FUSE opcode. */
const char *fsd_opcode_name(uint32_t opcode);

/* A request's claim on the range [a0, a1) of the data (plaintext offsets)
 * while it reads or writes the backend; a1 == 0: none (rekey.c). */
struct fsd_claim {
	_Atomic uint64_t a0, a1;
};
static inline bool fsd_claim_meets(struct fsd_claim *c, uint64_t h0,
				   uint64_t h1)
{
	uint64_t a1 = atomic_load(&c->a1);

	return a1 && h0 < h1 && h0 < a1 && atomic_load(&c->a0) < h1;
}
static inline void fsd_claim_drop(struct fsd_claim *c)
{
	atomic_store(&c->a1, 0);
}

/* Online reencryption (rekey.c; the job's view is fs.h's struct
 * fsd_rekey). */
enum fsd_job_state {
	FSD_JOB_NONE,
	FSD_JOB_RUNNING,
	FSD_JOB_PAUSED,
	FSD_JOB_DONE,
	FSD_JOB_STOPPED,
	FSD_JOB_FAILED,
	FSD_JOB_STATES
};
/* "none", "running", "paused", "done", "stopped", "failed". */
extern const char *const fsd_job_state_names[FSD_JOB_STATES];

/* The throttle when none is asked for: a block of 4 MiB at most every
 * 100 ms leaves a database most of the backend. */
#define FSD_REKEY_DEFAULT_RATE ((uint64_t)40 << 20)

struct fsd_rekey {
	struct fsd *d;
	/* The data path's map (see rekey.c): [0, done) under the new key,
	 * [hot0, hot1) held; two_keys: the new key is in use. */
	atomic_bool two_keys;
	_Atomic uint64_t done, hot0, hot1;
	pthread_mutex_t lock; /* the rest; cond: the block moved, or a
				 control request came */
	pthread_cond_t cond;
	bool broken; /* the held block was left half rewritten */
	struct fsd_job job;
	pthread_t thread;
	bool thread_started, running, pause;
	bool again;		    /* stopped by a suspension: start again
				       on resume */
	pthread_mutex_t start_lock; /* one start or stop at a time */
	atomic_bool stop;	    /* read by hold() without the lock */
	enum fsd_job_state state, before;     /* before: when it last started */
	uint64_t total, first_done, max_rate; /* bytes/s, 0: none */
	uint64_t default_rate;		      /* of a job started without one */
	int64_t next_at;	   /* ms: the next block not before */
	int64_t run_ms, run_since; /* time spent running */
	char error[256];
};

/* One FUSE worker thread and everything it owns: its io_uring ring (backend
 * file registered as fixed file 0, its buffer as fixed buffer 0), its cipher
 * context, its bounce buffer and its FUSE request buffer. */
struct fsd_worker {
	struct fsd *fsd;
	pthread_t thread;
	bool started;
	struct io_uring ring;
	bool ring_ok;
	bool fixed_buf;		 /* buf registered with the ring */
	struct sc_ctx *sc;	 /* NULL once shredded */
	struct sc_ctx *sc_new;	 /* the new key while reencrypting */
	pthread_mutex_t sc_lock; /* held while sc or sc_new is in use (see
				    revoke.c) */
	struct fsd_claim claim;	 /* of the request being served */
	uint8_t *buf;		 /* FSD_BUF_LEN bytes, page aligned */
	struct fuse_buf fbuf;
	size_t fbuf_used; /* bytes of fbuf.mem ever filled: what to wipe */
	struct fsd_busy busy;
	/* Its backend I/O's latency, by kind (the thread observes, the
	 * metrics add up every thread's). */
	struct obs_hist io_time[FSD_IO_KINDS];
	/* Called by the thread before it waits at a suspension's gate
	 * (FUSE over io_uring: uring.c), or NULL. */
	void (*before_hold)(struct fsd_worker *w);
	void *hold_arg;
};

struct fsd {
	/* Configuration (strings owned). */
	char *volume, *target, *uuid, *fstype, *log_file;
	bool raw, read_only, allow_discards, detach;
	const char *mkfs; /* fsd_params.mkfs (static) */
	uint64_t data_offset, data_size;
	unsigned sector_size;

	int backend_fd;
	bool backend_direct;	   /* O_DIRECT accepted */
	bool backend_in_memory;	   /* tmpfs or ramfs: I/O never waits */
	struct sc_params scp;	   /* cipher and sector size */
	struct sc_ctx *master;	   /* dup'ed per worker; wiped at exit */
	struct sc_ctx *master_new; /* the new key while reencrypting */
	pthread_mutex_t key_lock;  /* master(_new), against a shred */
	struct fsd_rekey rk;

	/* Revocation checks (revoke.c). */
	struct fsd_reprove reprove;
	unsigned check_interval, outage_grace, suspend_timeout;
	enum fsd_on_revoke on_revoke;
	/* The reencryption job found the key that now gates the volume
	 * refused (why): the checker applies the policy (revoke.c). */
	bool job_refused;
	char job_refusal[512];
	/* --on-revoke keep: the revocation was logged (checker only). */
	bool kept_revoked;
	pthread_t checker;
	bool checker_started, check_stop;
	bool stopping; /* check_lock: the daemon is on its way out */
	pthread_mutex_t check_lock;
	pthread_cond_t check_cond;
	atomic_bool shredded;
	_Atomic int64_t last_check_ok, next_check; /* seconds since epoch */
	_Atomic uint64_t checks[FSD_ACCESS_KINDS]; /* by answer */
	char last_refusal[512];			   /* check_lock */

	/* Suspended (suspend.c): no key anywhere, data requests wait at the
	 * gate until the keys are back or shredded.  kcv: one sector of
	 * zeros encrypted by each key served (old, new) before it was
	 * wiped, to recognise them again. */
	atomic_bool suspended;
	_Atomic int64_t suspended_since; /* seconds since the epoch */
	_Atomic int64_t suspended_mono;	 /* fsd_now_ms() */
	_Atomic int64_t resumed_at;	 /* fsd_now_ms() of the last resume */
	pthread_mutex_t gate_lock;
	pthread_cond_t gate_cond;
	uint8_t *kcv[2];

	/* Runtime directory and what lives there. */
	char rundir[PATH_MAX];
	char fuse_mnt[PATH_MAX];
	bool fuse_mnt_created; /* we created the file: remove it at exit */
	unsigned fuse_conn;
	char loop[64];
	char fstype_found[16]; /* what is on the loop device */
	int loop_fd;	       /* held until the filesystem is mounted */
	bool fs_mounted;
	int ctl_fd; /* listening control socket */

	struct fuse_session *se;
	bool fuse_mounted;
	unsigned nworkers; /* classic workers, then one per queue */
	struct fsd_worker *workers;

	/* FUSE over io_uring (uring.c): wanted (enabled and possible),
	 * offered by the kernel in INIT (init_unique), agreed in our reply
	 * (sent: init_replied); then served by nqueues queues. */
	enum fsd_fuse_uring fuse_uring;
	bool uring_wanted, uring_offered, uring_agreed;
	atomic_bool init_seen, init_replied;
	uint64_t init_unique;
	struct fsd_queue *queues;
	unsigned nqueues;		    /* threads */
	int64_t poll_ns;		    /* uring.c: wait_spin */
	atomic_uint spinners, max_spinners; /* polling now, at most */
	struct fsd_claim *uring_claims;	    /* one per queue entry (rekey.c) */
	unsigned n_uring_claims;
	pthread_mutex_t uring_lock;
	pthread_cond_t uring_cond;
	atomic_uint live_workers;
	atomic_bool conn_dead; /* a worker saw ENODEV */
	int done_efd;	       /* eventfd: the last worker has exited */

	pthread_rwlock_t locks[FSD_LOCKS];

	/* io_errors: data requests (read, write, fsync, discard) answered
	 * with an error, a shredded key's refusals included. */
	atomic_uint_fast64_t bytes_read, bytes_written, reads, writes,
		io_errors;
	time_t started;
	const char *aes;	    /* what does the AES (sc_impl) */
	struct obs_server *metrics; /* metrics.c; NULL: none */
};

/* ---- metrics.c */
/* Serve the metrics as p asks (--metrics-listen, --metrics-file), from
 * now on: 0, or -errno with err said.  Stop: before the workers go; the
 * file goes with the mount. */
int fsd_metrics_start(struct fsd *d, const struct fsd_params *p, char *err,
		      size_t errlen);
void fsd_metrics_stop(struct fsd *d);

/* ---- log.c */
void fsd_log_open(const char *file, bool to_stderr);
void fsd_log_close(void);
void fsd_log(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* An entry that marks a moment of the mount's life (event: "mount",
 * "shred", "suspend", ...; CMKFS_EVENT in the journal). */
void fsd_log_event(int prio, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The volume's UUID and key ARN, on every journal entry from now on. */
void fsd_log_context(const char *uuid, const char *key);
/* The key and the KMS request (its id) the calling thread's entries are
 * about from now on (NULL or "": the mount's key, no request). */
void fsd_log_kms(const char *key, const char *rid);
#define fsd_err(...)  fsd_log(LOG_ERR, __VA_ARGS__)
#define fsd_warn(...) fsd_log(LOG_WARNING, __VA_ARGS__)
#define fsd_info(...) fsd_log(LOG_INFO, __VA_ARGS__)

/* ---- backend.c */
/* Ring, cipher context and buffer of a worker: 0 or -errno. */
int fsd_worker_init(struct fsd *d, struct fsd_worker *w);
/* Release everything of a worker (its cipher context wiped); accepts a
 * half-built one. */
void fsd_worker_destroy(struct fsd_worker *w);
/* Read or write len bytes at plaintext-relative backend offset off (the
 * data offset is added here) to/from buf, which lies inside w->buf.
 * Short transfers and -EAGAIN are resubmitted.  0 or -errno. */
int fsd_backend_read(struct fsd_worker *w, void *buf, size_t len, uint64_t off);
int fsd_backend_write(struct fsd_worker *w, const void *buf, size_t len,
		      uint64_t off);
/* fsync (datasync: fdatasync) of the backend through the ring. */
int fsd_backend_fsync(struct fsd_worker *w, bool datasync);

/* Has a shred closed the worker's cipher context? */
bool fsd_worker_keyless(struct fsd_worker *w);
/* A worker's own plaintext buffers, wiped (by the worker itself). */
void fsd_worker_wipe(struct fsd_worker *w);
/* The worker of the calling thread (set by the worker loop). */
extern __thread struct fsd_worker *fsd_self;
/* A read of size bytes at pos, clipped to the segment and to FSD_MAX_REQ:
 * the bytes it returns (0: none), and the sector-aligned backend range
 * covering them in *a0, *span. */
size_t fsd_read_span(const struct fsd *d, uint64_t pos, size_t size,
		     uint64_t *a0, size_t *span);

/* Lock the stripes of sectors [first, last]; the stripes of the edge
 * sectors head/tail (UINT64_MAX for none) exclusively, the others shared.
 * Always in ascending stripe order, so two writers never deadlock. */
void fsd_lock_sectors(struct fsd *d, uint64_t first, uint64_t last,
		      uint64_t head, uint64_t tail);
void fsd_unlock_sectors(struct fsd *d, uint64_t first, uint64_t last);
/* Lock the stripes of sectors [first, last] shared if none is taken
 * exclusively, without waiting: true when locked. */
bool fsd_trylock_sectors(struct fsd *d, uint64_t first, uint64_t last);

/* ---- uring.c */
/* The number of queues the kernel will want (one per possible CPU), or 0
 * when they cannot be counted or would be too many. */
unsigned fsd_uring_nqueues(void);
/* 0 when FUSE over io_uring is enabled in the kernel (with enable: after
 * enabling it); else -errno with the reason in err. */
int fsd_uring_enabled(bool enable, char *err, size_t errlen);
/* The /dev/fuse hooks of ops.c, for the INIT handshake: note the INIT
 * request (and whether the kernel offers io_uring); send our reply to it
 * on fd, marked FUSE_OVER_IO_URING when offered (true: it was that reply,
 * *res is what writev returned).  The daemon waits for that reply (false
 * after seconds without). */
void fsd_uring_saw_request(struct fsd *d, const void *buf, size_t len);
bool fsd_uring_send_init_reply(struct fsd *d, int fd, struct iovec *iov,
			       int count, ssize_t *res);
bool fsd_uring_wait_init(struct fsd *d, int seconds);
/* Capture the reply of a request that came over io_uring (true: captured,
 * *res is what writev would have returned). */
bool fsd_uring_capture(const struct iovec *iov, int count, ssize_t *res);
/* The threads that serve nq kernel queues. */
unsigned fsd_uring_nthreads(unsigned nq);
/* Start the threads of nq queues, workers[i] lending its cipher context
 * and buffer to thread i, and wait until every queue is registered: 0, or
 * -errno with the reason in err (then call fsd_uring_cancel). */
int fsd_uring_start(struct fsd *d, struct fsd_worker *workers, unsigned nq,
		    char *err, size_t errlen);
/* Interrupt the queue threads' waits (they end once the session has
 * exited); join them; stop, join and forget them all. */
void fsd_uring_kick(struct fsd *d);
void fsd_uring_join(struct fsd *d);
void fsd_uring_cancel(struct fsd *d);
void fsd_uring_free(struct fsd *d);

/* Write the requests the queue threads are serving to fd, one line each
 * ("AGE_MS OPCODE UNIQUE WHERE"): their number. */
unsigned fsd_uring_requests(struct fsd *d, int fd, int64_t now);

/* ---- revoke.c */
/* Start the periodic access check (nothing when disabled); stop it. */
int fsd_revoke_start(struct fsd *d);
void fsd_revoke_stop(struct fsd *d);
/* The daemon is on its way out: no suspension starts from now on, and one
 * in force ends in a shred (what it holds could not be flushed). */
void fsd_revoke_stopping(struct fsd *d);
/* The key the last access answer was about (reprove.about, else
 * reprove.key); on the checker's thread. */
static inline const char *fsd_reprove_about(const struct fsd *d)
{
	const char *k =
		d->reprove.about ? d->reprove.about(d->reprove.arg) : NULL;

	return k && *k ? k : d->reprove.key;
}
/* Wipe every key now and fail all further I/O with EIO; why is logged. */
void fsd_shred(struct fsd *d, const char *why);

/* ---- suspend.c */
/* Wipe every key and hold data requests from now on; why is logged.  0,
 * or -ENOMEM with nothing done (the caller shreds instead). */
int fsd_suspend(struct fsd *d, const char *why);
/* While suspended: prove access and take the keys back (the held
 * requests go on).  FSD_ACCESS_OK once resumed; else why says what kept
 * it suspended. */
enum fsd_access fsd_resume(struct fsd *d, char *why, size_t len);
/* The gate: wait while suspended.  0 once the keys are back, -EIO when
 * they were shredded instead.  The calling worker's bounce buffer is
 * wiped first. */
int fsd_gate_wait(struct fsd *d);
/* Set up and free the gate and the key check values. */
void fsd_suspend_init(struct fsd *d);
void fsd_suspend_free(struct fsd *d);

/* ---- rekey.c */
/* Claim [a0, a1) for a request: *split, where the new key's part ends
 * ([a0, split) under the new key, the rest under the old).  _try: false
 * when the range meets the block being rewritten (nothing claimed); the
 * other waits until it is done: 0, or -EIO when a failed job left it
 * broken. */
bool fsd_claim_try(struct fsd *d, struct fsd_claim *c, uint64_t a0, uint64_t a1,
		   uint64_t *split);
int fsd_claim(struct fsd *d, struct fsd_claim *c, uint64_t a0, uint64_t a1,
	      uint64_t *split);
/* Encrypt or decrypt [off, off + len) with the worker's keys split at
 * split; sc_lock held.  0, or fsd_keyless()'s answer when they are gone. */
int fsd_crypt(struct fsd_worker *w, bool encrypt, uint64_t off, const void *in,
	      void *out, size_t len, uint64_t split);
/* The keys are gone from memory: shredded, or suspended. */
bool fsd_keys_gone(struct fsd *d);
/* What a data request that found no key answers (sc_lock held): -EAGAIN
 * while suspended (wait at the gate, then try again), -EIO once shredded. */
int fsd_keyless(struct fsd *d);
/* Close every cipher context, the workers' and the masters' (key_lock
 * held by the caller; sc_lock of each worker taken in turn). */
void fsd_keys_wipe(struct fsd *d);
/* A key's check value: one sector of zeros at sector 0 encrypted by sc
 * into out (sector_size bytes).  Equal only under the same key. */
int fsd_check_value(const struct fsd *d, struct sc_ctx *sc, uint8_t *out);
/* Set up from the parameters (both keys when a reencryption is in
 * progress); start the job if so once serving; stop and join it; free. */
int fsd_rekey_init(struct fsd *d, struct fsd_params *p);
int fsd_rekey_autostart(struct fsd *d);
/* After a suspension ended: the job it stopped starts again. */
void fsd_rekey_after_resume(struct fsd *d);
void fsd_rekey_stop(struct fsd *d);
void fsd_rekey_free(struct fsd *d);
/* Control requests "reencrypt ARGS" (start, pause, resume, rate N): 0 or
 * -errno with why said; the status lines. */
int fsd_rekey_control(struct fsd *d, const char *args, char *why, size_t len);
void fsd_rekey_status(struct fsd *d, int fd);
/* Where the job stands, as status says it: state "none", "running",
 * "paused", "done", "stopped", "failed"; bytes done of total; the rate it
 * ran at and its limit (bytes/s, 0: none). */
struct fsd_rekey_progress {
	const char *state;
	uint64_t done, total, rate, max_rate;
	bool paused;
	char error[256];
};
void fsd_rekey_progress(struct fsd *d, struct fsd_rekey_progress *p);

/* ---- ops.c */
extern const struct fuse_lowlevel_ops fsd_ops;
extern const struct fuse_custom_io fsd_custom_io;

/* ---- workers.c */
/* Set up and start the classic transport's workers [from, to): 0, or
 * -errno with the reason in err. */
int fsd_workers_start(struct fsd *d, unsigned from, unsigned to, char *err,
		      size_t errlen);
/* Wait up to ms for every worker to have exited. */
bool fsd_workers_done(struct fsd *d, int ms);
/* Wake every worker and queue thread (SIGUSR1): at shutdown, and after a
 * shred so that each wipes its own buffers. */
void fsd_kick_workers(struct fsd *d);
/* The SIGUSR1 handler: does nothing, so that the signal interrupts a
 * worker's blocking read. */
void fsd_on_usr1(int sig);

/* ---- mount.c */
/* Attach file to a free loop device (direct I/O, logical block size bs,
 * autoclear): 0 with the device name in dev and an open fd to it in *fd
 * (keep it open until the filesystem is mounted, or the device goes away). */
int fsd_loop_attach(const char *file, unsigned bs, bool ro, char *dev,
		    size_t devlen, int *fd, char *err, size_t errlen);
/* Detach dev if it is still backed by file (it may have been reused). */
int fsd_loop_detach(const char *dev, const char *file);
/* Is the filesystem on our loop device mounted at the target? */
bool fsd_fs_is_ours(const struct fsd *d);
/* Is the loop device still backed by our file (a filesystem on it still
 * mounted somewhere: at the target, through a bind mount, in another mount
 * namespace, or lazily unmounted but still open)? */
bool fsd_loop_in_use(const struct fsd *d);
/* Shut the filesystem on our loop device down (FS_IOC_SHUTDOWN): every
 * later access to it, cached reads included, fails with EIO.  flush: first
 * write back everything (through the daemon; it must still serve), else
 * at once.  It is looked for at the target, then at every mount this mount
 * namespace shows; -ENOENT when there is none. */
int fsd_fs_shutdown(const struct fsd *d, bool flush);
/* Flush the loop device's own cache (invalidate: BLKFLSBUF, which also
 * drops it; else fsync).  -ENOENT without a loop device. */
int fsd_loop_flush(const struct fsd *d, bool invalidate);
/* 1 when the first size bytes of dev read as zeros, 0 when not (it stops
 * at the first byte that is not), or -errno (-EINTR: a stop signal is
 * pending). */
int fsd_reads_as_zeros(const char *dev, uint64_t size);
/* Run mkfs.TYPE on dev; 0 or -errno. */
int fsd_mkfs(const char *type, const char *dev, char *err, size_t errlen);

/* ---- state.c */
int fsd_state_write(const struct fsd *d);
/* "shred", "keep", "suspend". */
const char *fsd_on_revoke_name(enum fsd_on_revoke how);
/* The control socket: listen in the runtime directory; read one request
 * line (without its newline) from a connection; answer "status". */
int fsd_control_listen(struct fsd *d);
int fsd_control_recv(int fd, char *line, size_t len);
void fsd_control_status(struct fsd *d, int fd);
/* Answer "requests": what every thread is serving, and since when (and
 * whether the keys are suspended, and how long ago they came back). */
void fsd_control_requests(struct fsd *d, int fd);
/* The requests being served now, written to fd as "requests" says them
 * (fd < 0: only counted): their number. */
unsigned fsd_requests(struct fsd *d, int fd, int64_t now);
/* Remove the runtime directory (keep_state: only the control socket and
 * the plaintext mountpoint go, the state stays for 'cmkfs umount'). */
void fsd_remove_rundir(struct fsd *d, bool keep_state);
/* Remove a runtime directory and its files. */
void fsd_rundir_remove(const char *dir);
/* Send a request to the daemon of uuid and read its one-line answer
 * (without the newline), waiting at most timeout_ms.  0 or -errno. */
int fsd_control_request(const char *uuid, const char *req, char *reply,
			size_t len, int timeout_ms);

#endif
