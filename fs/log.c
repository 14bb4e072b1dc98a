/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c — the daemon's log: a file with --log; else systemd's journal when
 * the daemon's stderr is the journal (a unit's foreground mount) or, once
 * detached, when journald runs; else stderr in the foreground, syslog once
 * detached.  In the journal each entry carries fields of its own besides
 * the message (SYSLOG_IDENTIFIER=cmkfs): CMKFS_VOLUME_UUID and
 * CMKFS_KEY_ARN of the mount, CMKFS_EVENT for what marks the mount's life
 * (mount, shred, suspend, ...), CMKFS_KMS_REQUEST_ID when the entry is
 * about a KMS answer.  Messages name the volume or the request, never
 * secret bytes.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fsd.h"

static FILE *log_fp;	 /* --log FILE */
static bool log_stderr;	 /* foreground without --log */
static bool log_syslog;	 /* detached without --log */
static bool log_journal; /* the journal, before stderr or syslog */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
/* The journal's fields of every entry (fsd_log_context). */
static char ctx_uuid[40], ctx_key[256];
/* The key and KMS request the calling thread's entries are about. */
static __thread char thread_key[256], thread_rid[96];

/* What KMS or a header said reaches a log only as printable text: no
 * forged lines, no escape sequences, nothing journalctl hides as a blob. */
static void printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

void fsd_log_context(const char *uuid, const char *key)
{
	snprintf(ctx_uuid, sizeof(ctx_uuid), "%s", uuid ? uuid : "");
	snprintf(ctx_key, sizeof(ctx_key), "%s", key ? key : "");
	printable(ctx_uuid);
	printable(ctx_key);
}

void fsd_log_kms(const char *key, const char *rid)
{
	snprintf(thread_key, sizeof(thread_key), "%s", key ? key : "");
	snprintf(thread_rid, sizeof(thread_rid), "%s", rid ? rid : "");
	printable(thread_key);
	printable(thread_rid);
}

void fsd_log_open(const char *file, bool to_stderr)
{
	if (file) {
		log_fp = fopen(file, "ae");
		if (log_fp) {
			setvbuf(log_fp, NULL, _IOLBF, 0);
			return;
		}
		fprintf(stderr, "cmkfs: cannot open the log %s; using %s\n",
			file, to_stderr ? "stderr" : "syslog");
	}
	if (to_stderr) {
		log_stderr = true;
		log_journal = obs_journal_is_stderr();
		return;
	}
	/* Syslog stays open behind the journal: what the journal does not
	 * take goes there. */
	openlog("cmkfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = true;
	log_journal = obs_journal_present();
}

void fsd_log_close(void)
{
	if (log_fp)
		fclose(log_fp);
	log_fp = NULL;
	if (log_syslog)
		closelog();
	log_syslog = log_journal = false;
}

/* The entry in the journal: false when it did not take it. */
static bool to_journal(int prio, const char *event, const char *msg)
{
	char pri[4];
	struct obs_field f[8] = {
		{ "MESSAGE", msg },
		{ "PRIORITY", pri },
		{ "SYSLOG_IDENTIFIER", "cmkfs" },
	};
	unsigned n = 3;

	snprintf(pri, sizeof(pri), "%d", prio & 7);
	if (ctx_uuid[0])
		f[n++] = (struct obs_field){ "CMKFS_VOLUME_UUID", ctx_uuid };
	if (thread_key[0] || ctx_key[0])
		f[n++] = (struct obs_field){ "CMKFS_KEY_ARN",
					     thread_key[0] ? thread_key
							   : ctx_key };
	if (event)
		f[n++] = (struct obs_field){ "CMKFS_EVENT", event };
	if (thread_rid[0])
		f[n++] = (struct obs_field){ "CMKFS_KMS_REQUEST_ID",
					     thread_rid };
	return obs_journal_send(f, n) == 0;
}

static void vlog(int prio, const char *event, const char *fmt, va_list ap)
{
	static const char *const names[] = { "emerg", "alert",	 "crit",
					     "error", "warning", "notice",
					     "info",  "debug" };
	FILE *f = log_fp ? log_fp : log_stderr ? stderr : NULL;
	char msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	printable(msg);
	if (log_journal && !log_fp && to_journal(prio, event, msg))
		return;
	if (f) {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		pthread_mutex_lock(&log_lock);
		fprintf(f, "%s.%03ldZ cmkfs[%d] %s: %s\n", when,
			ts.tv_nsec / 1000000, (int)getpid(), names[prio & 7],
			msg);
		pthread_mutex_unlock(&log_lock);
	} else if (log_syslog) {
		syslog(prio, "%s", msg);
	}
}

void fsd_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(prio, NULL, fmt, ap);
	va_end(ap);
}

void fsd_log_event(int prio, const char *event, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(prio, event, fmt, ap);
	va_end(ap);
}
