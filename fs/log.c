/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c — the daemon's log: syslog by default, a file with --log, or stderr
 * while it runs in the foreground.  Messages name the volume or the request,
 * never secret bytes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fsd.h"

static FILE *log_fp;	/* --log FILE */
static bool log_stderr; /* foreground without --log */
static bool log_syslog; /* detached without --log */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void fsd_log_open(const char *file, bool to_stderr)
{
	if (file) {
		log_fp = fopen(file, "ae");
		if (log_fp) {
			setvbuf(log_fp, NULL, _IOLBF, 0);
			return;
		}
		fprintf(stderr, "cmkfs: cannot open the log %s; using syslog\n",
			file);
	}
	if (to_stderr) {
		log_stderr = true;
		return;
	}
	openlog("cmkfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = true;
}

void fsd_log_close(void)
{
	if (log_fp)
		fclose(log_fp);
	log_fp = NULL;
	if (log_syslog)
		closelog();
	log_syslog = false;
}

void fsd_log(int prio, const char *fmt, ...)
{
	static const char *const names[] = { "emerg", "alert",	 "crit",
					     "error", "warning", "notice",
					     "info",  "debug" };
	FILE *f = log_fp ? log_fp : log_stderr ? stderr : NULL;
	va_list ap;

	va_start(ap, fmt);
	if (f) {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		pthread_mutex_lock(&log_lock);
		fprintf(f, "%s.%03ldZ cmkfs[%d] %s: ", when,
			ts.tv_nsec / 1000000, (int)getpid(), names[prio & 7]);
		vfprintf(f, fmt, ap);
		fputc('\n', f);
		pthread_mutex_unlock(&log_lock);
	} else if (log_syslog) {
		vsyslog(prio, fmt, ap);
	}
	va_end(ap);
}
