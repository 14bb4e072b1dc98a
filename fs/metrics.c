/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c — what a mount shows Prometheus (--metrics-listen,
 * --metrics-file): traffic, errors, backend I/O latency, requests in
 * flight, the revocation checks, shred and suspension, reencryption.
 *
 * Every sample carries the volume's UUID (label uuid), so that the files
 * of several mounts can sit side by side in node_exporter's textfile
 * directory.  Nothing here reads a key; the metrics are collected on the
 * server's own thread from the counters the data path keeps.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "obs.h"
#include "fsd.h"

/* Labels of cmkfs_info: two paths and change. */
#define LABELS_MAX (2 * PATH_MAX + 512)

static const char *const io_names[FSD_IO_KINDS] = {
	[FSD_IO_READ] = "read",
	[FSD_IO_WRITE] = "write",
	[FSD_IO_FSYNC] = "fsync",
};
static const char *const access_names[] = {
	[FSD_ACCESS_OK] = "ok",
	[FSD_ACCESS_REFUSED] = "refused",
	[FSD_ACCESS_UNAVAILABLE] = "unavailable",
};

/* One sample of a family of its own: HELP, TYPE, value. */
static void one(struct obs_text *t, const char *name, const char *type,
		const char *help, const char *labels, double v)
{
	obs_family(t, name, type, help);
	obs_sample(t, name, labels, v);
}

static void collect(struct obs_text *t, void *arg)
{
	struct fsd *d = arg;
	struct fsd_rekey_progress rp;
	static char l[LABELS_MAX]; /* on the metrics thread only */
	char id[128];

	obs_labels(id, sizeof(id), "uuid", d->uuid, NULL);

	/* Not the key: a rotation changes it under the checker's lock,
	 * and 'cmkfs status' says it. */
	obs_family(t, "cmkfs_info", "gauge",
		   "The mount: volume, mountpoint, FUSE transport, AES "
		   "implementation, revocation policy (always 1).");
	if (obs_labels(l, sizeof(l), "uuid", d->uuid, "volume", d->volume,
		       "mountpoint", d->target, "transport",
		       d->nqueues ? "io_uring" : "dev_fuse", "aes", d->aes,
		       "on_revoke", fsd_on_revoke_name(d->on_revoke), "version",
		       CMKFS_VERSION, NULL))
		obs_labels(l, sizeof(l), "uuid", d->uuid, NULL);
	obs_sample(t, "cmkfs_info", l, 1);
	one(t, "cmkfs_start_time_seconds", "gauge",
	    "When the mount started (seconds since the epoch).", id,
	    (double)d->started);

	/* Traffic and errors, as the FUSE requests saw them. */
	one(t, "cmkfs_read_bytes_total", "counter",
	    "Plaintext bytes read through the mount.", id,
	    (double)atomic_load(&d->bytes_read));
	one(t, "cmkfs_written_bytes_total", "counter",
	    "Plaintext bytes written through the mount.", id,
	    (double)atomic_load(&d->bytes_written));
	one(t, "cmkfs_reads_total", "counter", "Read requests answered.", id,
	    (double)atomic_load(&d->reads));
	one(t, "cmkfs_writes_total", "counter", "Write requests answered.", id,
	    (double)atomic_load(&d->writes));
	one(t, "cmkfs_io_errors_total", "counter",
	    "Data requests (read, write, fsync, discard) answered with an "
	    "error, a shredded key's refusals included.",
	    id, (double)atomic_load(&d->io_errors));
	one(t, "cmkfs_fuse_requests_in_flight", "gauge",
	    "FUSE requests being served now.", id,
	    (double)fsd_requests(d, -1, fsd_now_ms()));

	/* Backend I/O: each thread keeps its own histograms. */
	obs_family(t, "cmkfs_backend_io_duration_seconds", "histogram",
		   "Time from submitting an I/O to the encrypted volume to "
		   "its completion, by operation.");
	for (unsigned k = 0; k < FSD_IO_KINDS; k++) {
		struct obs_hist h = { 0 };

		for (unsigned i = 0; i < d->nworkers; i++)
			obs_hist_add(&h, &d->workers[i].io_time[k]);
		obs_labels(l, sizeof(l), "uuid", d->uuid, "op", io_names[k],
			   NULL);
		obs_hist_write(t, "cmkfs_backend_io_duration_seconds", l, &h);
	}

	/* Revocation. */
	one(t, "cmkfs_revocation_check_interval_seconds", "gauge",
	    "Seconds between two checks that KMS still lets this host "
	    "decrypt the volume's key (0: no checks).",
	    id, d->check_interval);
	obs_family(t, "cmkfs_revocation_checks_total", "counter",
		   "Access checks by result: ok, refused (a definitive "
		   "refusal: the revocation policy applies), unavailable (KMS "
		   "did not answer: an outage, not a revocation).");
	for (unsigned a = 0; a < FSD_ACCESS_KINDS; a++) {
		obs_labels(l, sizeof(l), "uuid", d->uuid, "result",
			   access_names[a], NULL);
		obs_sample(t, "cmkfs_revocation_checks_total", l,
			   (double)atomic_load(&d->checks[a]));
	}
	one(t, "cmkfs_revocation_last_success_timestamp_seconds", "gauge",
	    "When KMS last confirmed access (seconds since the epoch; the "
	    "mount's own unlock counts).",
	    id, (double)atomic_load(&d->last_check_ok));
	one(t, "cmkfs_shredded", "gauge",
	    "1 once the keys were wiped for good after a revocation: every "
	    "I/O fails.",
	    id, atomic_load(&d->shredded));
	one(t, "cmkfs_suspended", "gauge",
	    "1 while the keys are wiped and I/O is held until access returns "
	    "(--on-revoke suspend).",
	    id, atomic_load(&d->suspended));

	/* Reencryption. */
	fsd_rekey_progress(d, &rp);
	obs_family(t, "cmkfs_reencrypt_state", "gauge",
		   "The online reencryption's state (1 for the current one).");
	for (unsigned i = 0; i < FSD_JOB_STATES; i++) {
		obs_labels(l, sizeof(l), "uuid", d->uuid, "state",
			   fsd_job_state_names[i], NULL);
		obs_sample(t, "cmkfs_reencrypt_state", l,
			   !strcmp(rp.state, fsd_job_state_names[i]));
	}
	one(t, "cmkfs_reencrypt_done_bytes", "gauge",
	    "Bytes of the data already under the new volume key.", id,
	    (double)rp.done);
	one(t, "cmkfs_reencrypt_total_bytes", "gauge",
	    "Bytes of the data to reencrypt (0: none under way).", id,
	    (double)rp.total);
}

static void warn(void *arg, const char *msg)
{
	struct fsd *d = arg;

	fsd_warn("%s: %s", d->volume, msg);
}

int fsd_metrics_start(struct fsd *d, const struct fsd_params *p, char *err,
		      size_t errlen)
{
	struct obs_opts o = {
		.listen = p->metrics_listen,
		.file = p->metrics_file,
		.file_interval = p->metrics_interval,
		.collect = collect,
		.arg = d,
		.warn = warn,
	};
	int r;

	if (!o.listen && !o.file)
		return 0;
	r = obs_start(&d->metrics, &o, err, errlen);
	if (r)
		return r;
	if (obs_url(d->metrics))
		fsd_info("%s: metrics on %s", d->volume, obs_url(d->metrics));
	if (o.file)
		fsd_info("%s: metrics written to %s every %u s", d->volume,
			 o.file, o.file_interval ? o.file_interval : 10);
	return 0;
}

void fsd_metrics_stop(struct fsd *d)
{
	obs_stop(d->metrics, true);
	d->metrics = NULL;
}
