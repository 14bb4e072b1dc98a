/* SPDX-License-Identifier: Apache-2.0 */
/*
 * obs.h — the public interface of cmkfs's obs module: what the daemons
 * show of themselves to the people who run them.  Metrics in the
 * Prometheus text exposition format (version 0.0.4), served on a small
 * local HTTP endpoint (GET /metrics) and/or written atomically to a file
 * for node_exporter's textfile collector; log entries with fields of their
 * own in systemd's journal.
 *
 * The module sits below fs/ and kms/ and uses nothing but libc: both
 * cmkfs's mount daemon and cmkfs-kmsd use it.  It never sees a secret;
 * what a metric says is up to the caller's collect function.
 *
 * Errors: 0 or -errno, with a one-line reason in err.
 */
#ifndef CMKFS_OBS_H
#define CMKFS_OBS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* ---- the exposition text */

/* A growing buffer of exposition text.  After an allocation failure it
 * stays failed and ignores further writes (failed is checked once, by
 * whoever serves the text). */
struct obs_text {
	char *p;
	size_t len, cap;
	bool failed;
};

void obs_text_free(struct obs_text *t);
void obs_printf(struct obs_text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The # HELP and # TYPE lines of a metric family (type: "counter",
 * "gauge", "histogram"). */
void obs_family(struct obs_text *t, const char *name, const char *type,
		const char *help);

/* A label set, "k1=\"v1\",k2=\"v2\"", built into a caller's buffer; values
 * are escaped as the format wants (\\, \", \n), valid UTF-8 is kept, and
 * any other byte that is not printable ASCII (control bytes, invalid
 * UTF-8) becomes '?'.  Pairs of key and value, then NULL.  0, or
 * -ENOSPC when it did not fit (out is then empty). */
int obs_labels(char *out, size_t len, ...) __attribute__((sentinel));

/* One sample: name{labels} value (labels may be NULL or ""). */
void obs_sample(struct obs_text *t, const char *name, const char *labels,
		double value);
void obs_sample_u64(struct obs_text *t, const char *name, const char *labels,
		    uint64_t value);

/* ---- latency histograms */

/* Bucket bounds, in seconds: 10 µs to 10 s (then +Inf). */
#define OBS_HIST_BUCKETS 19

/* Observed by any number of threads (relaxed atomics: a scrape may see
 * one observation half counted, never a torn number). */
struct obs_hist {
	_Atomic uint64_t bucket[OBS_HIST_BUCKETS + 1]; /* not cumulative */
	_Atomic uint64_t sum_ns;
};

void obs_hist_observe(struct obs_hist *h, uint64_t ns);
/* Add what h holds to into (which only the caller uses). */
void obs_hist_add(struct obs_hist *into, const struct obs_hist *h);
/* name_bucket{labels,le="..."} cumulative, name_sum, name_count. */
void obs_hist_write(struct obs_text *t, const char *name, const char *labels,
		    const struct obs_hist *h);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t obs_now_ns(void);

/* ---- serving it */

/*
 * "ADDR:PORT", "[ADDR6]:PORT" (numeric addresses), or with
 * default_host, "PORT" alone, meaning default_host:PORT.  0, or -EINVAL.
 */
int obs_parse_listen(const char *spec, const char *default_host,
		     struct sockaddr_storage *ss, socklen_t *len);

/* Fill t with the current metrics (called on the server's thread). */
typedef void (*obs_collect_fn)(struct obs_text *t, void *arg);

struct obs_opts {
	/* GET /metrics on this address ("PORT" alone: 127.0.0.1:PORT; port
	 * 0 picks a free one), or NULL. */
	const char *listen;
	/* This file (relative: to the current directory at start),
	 * rewritten every file_interval seconds (write a sibling, then
	 * rename over it), or NULL. */
	const char *file;
	unsigned file_interval;
	obs_collect_fn collect;
	void *arg;
	/* A line for the caller's log (what failed, never what the metrics
	 * say), or NULL.  Said once per failure, not at every interval. */
	void (*warn)(void *arg, const char *msg);
};

struct obs_server;

/* Bind (before returning: a port in use fails here) and start the
 * server's thread; the file is written once at once.  0, or -errno with
 * err said. */
int obs_start(struct obs_server **s, const struct obs_opts *o, char *err,
	      size_t errlen);
/* "http://127.0.0.1:PORT/metrics" with the port bound, or NULL without
 * an endpoint. */
const char *obs_url(const struct obs_server *s);
/* The file's absolute path, or NULL without one. */
const char *obs_file(const struct obs_server *s);
/* Stop and free (NULL: nothing); takes one poll of the server's thread.
 * remove_file: the file goes too (what it described is gone), unless
 * another writer replaced it since. */
void obs_stop(struct obs_server *s, bool remove_file);

/* Write text to path atomically (a sibling PATH.tmp, renamed over path;
 * mode 0644); what was written in *written (NULL: not wanted).  0 or
 * -errno with err said. */
int obs_write_file(const char *path, const struct obs_text *t,
		   struct stat *written, char *err, size_t errlen);

/* ---- the journal */

/* One field of a journal entry: NAME (upper case, digits, underscores)
 * and its value (any text; a newline is sent in the binary form). */
struct obs_field {
	const char *name, *value;
};
#define OBS_JOURNAL_MAX_FIELDS 16

/* Is stderr systemd's journal stream (a unit's StandardError=journal:
 * $JOURNAL_STREAM names it)?  Then entries belong in the journal, with
 * their fields, rather than as lines on stderr. */
bool obs_journal_is_stderr(void);
/* Does the journal's native socket take entries (journald runs)? */
bool obs_journal_present(void);
/* Send one entry (MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and the caller's
 * own fields): 0, or -errno when the journal did not take it. */
int obs_journal_send(const struct obs_field *f, unsigned n);

/* The HTTP request in buf[0, len) (the request line and headers, up to
 * the blank line): the status to answer (200 for GET or HEAD /metrics;
 * 400, 404, 405, 505 otherwise), *head set for HEAD.  Exposed for the
 * fuzz target. */
unsigned obs_http_parse(const char *buf, size_t len, bool *head);

#endif /* CMKFS_OBS_H */
