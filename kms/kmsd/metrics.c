/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c — what cmkfs-kmsd shows Prometheus (--metrics-listen,
 * --metrics-file): requests by action and outcome, and their latency by
 * action, counted where the access log records them.
 *
 * Label values come from the service's own tables, never from a request:
 * an action is one of those it knows ("(unknown)" otherwise, "-" before
 * one was read), an outcome "OK" or one of the AWS error names it answers
 * with.  The table is bounded all the same; past it, requests are counted
 * under "(other)".
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "obs.h"
#include "kmsd.h"

#define MAX_PAIRS   256
#define MAX_ACTIONS 64
#define OTHER	    "(other)"

struct pair {
	const char *action, *outcome;
	uint64_t n;
};

/* The counts (lock held). */
struct table {
	struct pair pairs[MAX_PAIRS];
	unsigned npairs;
	uint64_t other; /* requests past the table */
	const char *actions[MAX_ACTIONS];
	struct obs_hist time[MAX_ACTIONS];
	unsigned nactions;
};

struct kmsd_metrics {
	pthread_mutex_t lock;
	struct table t;
	time_t started;
	struct obs_server *server;
};

static struct kmsd_metrics metrics = { .lock = PTHREAD_MUTEX_INITIALIZER };

void kmsd_metrics_count(const char *action, const char *outcome, uint64_t ns)
{
	struct table *m = &metrics.t;
	unsigned i;

	pthread_mutex_lock(&metrics.lock);
	for (i = 0; i < m->npairs; i++)
		if (!strcmp(m->pairs[i].action, action) &&
		    !strcmp(m->pairs[i].outcome, outcome))
			break;
	if (i == m->npairs && i < MAX_PAIRS)
		m->pairs[m->npairs++] = (struct pair){ action, outcome, 0 };
	if (i < MAX_PAIRS)
		m->pairs[i].n++;
	else
		m->other++;
	for (i = 0; i < m->nactions; i++)
		if (!strcmp(m->actions[i], action))
			break;
	if (i == m->nactions && i < MAX_ACTIONS)
		m->actions[m->nactions++] = action;
	if (i < MAX_ACTIONS)
		obs_hist_observe(&m->time[i], ns);
	pthread_mutex_unlock(&metrics.lock);
}

static void collect(struct obs_text *t, void *arg)
{
	struct kmsd_metrics *m = arg;
	/* A copy, taken under the lock and formatted after it: a scrape
	 * holds up requests for a copy's time only.  Static: one scrape
	 * at a time, on the metrics thread. */
	static struct table c;
	char l[256];

	pthread_mutex_lock(&m->lock);
	c = m->t;
	pthread_mutex_unlock(&m->lock);

	obs_family(t, "cmkfs_kmsd_start_time_seconds", "gauge",
		   "When the service started (seconds since the epoch).");
	obs_sample(t, "cmkfs_kmsd_start_time_seconds", NULL,
		   (double)m->started);
	obs_family(t, "cmkfs_kmsd_requests_total", "counter",
		   "Requests answered, by action and outcome (OK, or the AWS "
		   "error name answered).");
	for (unsigned i = 0; i < c.npairs; i++) {
		obs_labels(l, sizeof(l), "action", c.pairs[i].action, "outcome",
			   c.pairs[i].outcome, NULL);
		obs_sample_u64(t, "cmkfs_kmsd_requests_total", l, c.pairs[i].n);
	}
	if (c.other) {
		obs_labels(l, sizeof(l), "action", OTHER, "outcome", OTHER,
			   NULL);
		obs_sample_u64(t, "cmkfs_kmsd_requests_total", l, c.other);
	}
	obs_family(t, "cmkfs_kmsd_request_duration_seconds", "histogram",
		   "Time from a request's headers to its answer, by action.");
	for (unsigned i = 0; i < c.nactions; i++) {
		obs_labels(l, sizeof(l), "action", c.actions[i], NULL);
		obs_hist_write(t, "cmkfs_kmsd_request_duration_seconds", l,
			       &c.time[i]);
	}
}

static void warn(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "cmkfs-kmsd: %s\n", msg);
}

int kmsd_metrics_start(const struct server_config *cfg, char *err,
		       size_t errlen)
{
	struct obs_opts o = {
		.listen = cfg->metrics_listen,
		.file = cfg->metrics_file,
		.file_interval = cfg->metrics_interval,
		.collect = collect,
		.arg = &metrics,
		.warn = warn,
	};
	metrics.started = time(NULL);
	if (!o.listen && !o.file)
		return 0;
	return obs_start(&metrics.server, &o, err, errlen);
}

const char *kmsd_metrics_url(void)
{
	return obs_url(metrics.server);
}

void kmsd_metrics_stop(void)
{
	obs_stop(metrics.server, true);
	metrics.server = NULL;
}
