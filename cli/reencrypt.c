/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reencrypt.c — `cmkfs reencrypt`: rewrite a volume's data under a new
 * volume key (offline), bound to a new KMS data key of the same or another
 * CMK; and `--resume` after an interruption or a crash.  The options, the
 * progress bar and the words; the protocol is volume/reencrypt.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "crypto.h"
#include "luks2.h"
#include "volume.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

/* ---- progress ----------------------------------------------------------- */

struct progress {
	const char *volume;
	bool tty;
	double interval;     /* seconds between plain lines */
	double start, last;  /* monotonic seconds */
	uint64_t first_done; /* where this run started (resume) */
	bool started;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* seconds < 0: unknown yet. */
static void eta_text(double seconds, char *out, size_t len)
{
	long s = seconds >= 0 && seconds < 1e7 ? (long)(seconds + 0.5) : -1;

	if (s < 0)
		snprintf(out, len, "--:--");
	else if (s >= 3600)
		snprintf(out, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60,
			 s % 60);
	else
		snprintf(out, len, "%ld:%02ld", s / 60, s % 60);
}

static int on_progress(uint64_t done, uint64_t total, void *arg)
{
	struct progress *p = arg;
	double t = now(), elapsed, rate;
	char d[32], tot[32], eta[32];
	bool first = !p->started;
	int pct;

	if (first) {
		p->started = true;
		p->first_done = done;
		p->start = p->last = t;
	}
	elapsed = t - p->start;
	rate = elapsed > 0 ? (double)(done - p->first_done) / elapsed : 0;
	pct = total ? (int)(done * 100 / total) : 100;
	cli_human_size(done, d, sizeof(d));
	cli_human_size(total, tot, sizeof(tot));
	eta_text(rate > 0 ? (double)(total - done) / rate : -1, eta,
		 sizeof(eta));
	if (p->tty) {
		char bar[31];
		int fill = pct * 30 / 100;

		memset(bar, '#', (size_t)fill);
		memset(bar + fill, '.', (size_t)(30 - fill));
		bar[30] = 0;
		fprintf(stderr, "\r[%s] %3d%%  %s / %s  %.1f MB/s  ETA %s ",
			bar, pct, d, tot, rate / 1e6, eta);
		if (done >= total)
			fputc('\n', stderr);
	} else if (first || t - p->last >= p->interval || done >= total) {
		fprintf(stderr,
			"reencrypt %s: %d%% (%s of %s), %.1f MB/s, ETA %s\n",
			p->volume, pct, d, tot, rate / 1e6, eta);
		p->last = t;
	}
	return stop_signal != 0;
}

/* ---- the run -------------------------------------------------------------
 */

struct args {
	const char *volume;
	const char *key_arn; /* NULL: the volume's current CMK */
	const char *resilience;
	double interval;
	bool resume;
	/* Online only: control of the daemon's job. */
	bool pause, background;
	bool insecure;		/* a cipher_null volume passes the allow-list */
	struct vol_trust trust; /* --insecure; the current key pinned by
				   CMKFS_KEY_ARN alone (--key-arn is the
				   new one) */
	bool have_rate;
	uint64_t max_rate;
	struct kms_options ko;
};

/* Rewrite the data (step 5 onwards) and report. */
static int run_data(struct vol_reencrypt *job, const struct args *a,
		    const char *arn)
{
	struct progress p = { .volume = a->volume,
			      .tty = isatty(STDERR_FILENO),
			      .interval = a->interval };
	struct sigaction sa = { .sa_handler = on_signal };
	struct luks2_info info;
	struct vol_error e;
	char size[32];
	double t0 = now();
	int r;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	r = vol_reencrypt_data(job, on_progress, &p, &info, &e);
	if (p.tty && r)
		fputc('\n', stderr);
	if (r == -EINTR)
		return cli_error(0,
				 "%s: stopped by signal %d between two blocks; "
				 "nothing is lost: continue with `cmkfs "
				 "reencrypt --resume %s`",
				 a->volume, (int)stop_signal, a->volume);
	if (r)
		return cli_volume_error(a->volume, r, &e);
	cli_human_size(info.data_size, size, sizeof(size));
	printf("reencrypted %s: %s under a new volume key in %.1f s; "
	       "keyslot %d opens through %s\n",
	       a->volume, size, now() - t0,
	       info.n_keyslots ? info.keyslots[0] : -1, arn);
	return EXIT_OK;
}

/* Prepare the header (offline and online alike) and say which keyslots the
 * new volume key made useless. */
static int prepare(const struct args *a, const struct vol_reencrypt_opts *o,
		   struct vol_reencrypt **job, struct vol_reencrypt_start *st,
		   struct vol_error *e)
{
	int rc = vol_reencrypt_start(a->volume, &a->ko, o, job, st, e);

	for (unsigned i = 0; i < st->n_destroyed; i++)
		fprintf(stderr,
			"keyslot %d destroyed: the new volume key makes it "
			"useless\n",
			st->destroyed[i]);
	if (rc)
		return rc;
	for (unsigned i = 0; i < st->n_kept; i++)
		fprintf(stderr, "%s opens it too: its keys keep it\n",
			st->kept[i]);
	if (st->replaced[0])
		fprintf(stderr, "%s no longer opens it: %s replaces it\n",
			st->replaced, st->key_arn);
	return rc;
}

/* ---- a mounted volume: the daemon's job -------------------------------- */

/* Send "reencrypt ARGS" to the daemon: 0 or the exit code. */
static int ask(const struct args *a, const struct fsd_state *st,
	       const char *args)
{
	char err[512];
	int r = fsd_reencrypt_request(st->uuid, args, err, sizeof(err));

	return r ? cli_error(0, "%s: %s", a->volume, err) : 0;
}

/* Follow the job until it ends (or Ctrl-C stops following). */
static int follow(const struct args *a, const struct fsd_state *mounted)
{
	struct progress p = { .volume = a->volume,
			      .tty = isatty(STDERR_FILENO),
			      .interval = a->interval };
	struct sigaction sa = { .sa_handler = on_signal };
	const struct timespec tick = { 0, 250L * 1000 * 1000 };
	bool said_paused = false;
	struct fsd_state st;
	double t0 = now();

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	for (;;) {
		if (fsd_state_by_uuid(mounted->uuid, &st) || !st.alive ||
		    !st.have_stats) {
			if (p.tty && p.started)
				fputc('\n', stderr);
			return cli_error(0,
					 "%s: the daemon is gone; the next "
					 "mount continues the reencryption",
					 a->volume);
		}
		if (strcmp(st.reencrypt, "paused") && st.reencrypt_total &&
		    strcmp(st.reencrypt, "none"))
			on_progress(st.reencrypt_done, st.reencrypt_total, &p);
		if (!strcmp(st.reencrypt, "paused") && !said_paused) {
			fprintf(stderr,
				"%sreencrypt %s: paused; `cmkfs reencrypt "
				"--resume %s` continues it\n",
				p.tty && p.started ? "\n" : "", a->volume,
				a->volume);
			said_paused = true;
		} else if (strcmp(st.reencrypt, "paused")) {
			said_paused = false;
		}
		if (!strcmp(st.reencrypt, "done")) {
			char size[32];

			if (p.tty && st.reencrypt_done < st.reencrypt_total)
				fputc('\n', stderr);
			cli_human_size(st.reencrypt_total, size, sizeof(size));
			printf("reencrypted %s online: %s under a new volume "
			       "key in %.1f s; the old key is gone from the "
			       "header and the daemon\n",
			       a->volume, size, now() - t0);
			return EXIT_OK;
		}
		if (!strcmp(st.reencrypt, "failed") ||
		    !strcmp(st.reencrypt, "stopped")) {
			if (p.tty && p.started)
				fputc('\n', stderr);
			return cli_error(0,
					 "%s: the reencryption %s: %s; `cmkfs "
					 "reencrypt --resume %s` restarts it",
					 a->volume, st.reencrypt,
					 st.reencrypt_error, a->volume);
		}
		if (stop_signal) {
			if (p.tty && p.started)
				fputc('\n', stderr);
			fprintf(stderr,
				"%s: no longer following; the reencryption "
				"goes on in the daemon (`cmkfs status %s`)\n",
				a->volume, a->volume);
			return EXIT_OK;
		}
		nanosleep(&tick, NULL);
	}
}

/* The volume is mounted: prepare the header as offline (unless resuming)
 * and hand the job to the daemon. */
static int reencrypt_online(const struct args *a, const struct fsd_state *st)
{
	const struct vol_reencrypt_opts o = { .key_arn = a->key_arn,
					      .resilience = a->resilience,
					      .online = true,
					      .trust = a->trust };
	/* With a job running or paused, --max-rate only changes its
	 * throttle; else it is the throttle of the job this starts. */
	bool active = !strcmp(st->reencrypt, "running") ||
		      !strcmp(st->reencrypt, "paused");
	bool control = a->pause || (a->have_rate && active && !a->resume);
	bool done_before = false;
	struct vol_reencrypt_start vs;
	struct vol_reencrypt *job;
	struct vol_status hs;
	struct vol_error e;
	char rate[48], start[48];
	int rc;

	/* Nothing is changed unless its daemon can take the job. */
	if (!st->have_stats || !st->reencrypt[0])
		return cli_error(0,
				 "%s is mounted, but its daemon (pid %d) %s: "
				 "nothing was changed",
				 a->volume, (int)st->pid,
				 st->have_stats ? "is of a version that cannot "
						  "reencrypt online; remount it"
						: "does not answer");
	if (st->read_only)
		return cli_error(0,
				 "%s is mounted read-only: a read-only mount "
				 "does not reencrypt; nothing was changed",
				 a->volume);
	/* A daemon whose last job is done, with the header in a
	 * reencryption again (started by a command that did not reach the
	 * daemon): the header says. */
	if (!strcmp(st->reencrypt, "done")) {
		rc = vol_status(a->volume, &hs, &e);
		if (rc)
			return cli_volume_error(a->volume, rc, &e);
		done_before = hs.reencryption == VOL_REENC_NONE;
	}
	/* The throttle goes with the start ("start N"); a job running or
	 * paused gets it at once. */
	snprintf(rate, sizeof(rate), "rate %llu",
		 (unsigned long long)a->max_rate);
	if (a->have_rate)
		snprintf(start, sizeof(start), "start %llu",
			 (unsigned long long)a->max_rate);
	else
		snprintf(start, sizeof(start), "start");
	if (a->have_rate && control) {
		rc = ask(a, st, rate);
		if (rc || !a->pause)
			return rc;
	}
	if (active && !a->pause && !a->resume)
		return cli_error(
			0,
			"%s is already being reencrypted online (%s); "
			"`cmkfs reencrypt --resume|--pause|--max-rate` "
			"control it, `cmkfs status %s` shows it",
			a->volume, st->reencrypt, a->volume);
	if (a->pause) {
		rc = ask(a, st, "pause");
		if (!rc && active)
			printf("%s: the reencryption pauses after the block "
			       "it is on; `cmkfs reencrypt --resume %s` "
			       "continues it\n",
			       a->volume, a->volume);
		else if (!rc)
			printf("%s: no reencryption runs; the next one this "
			       "mount starts waits paused until `cmkfs "
			       "reencrypt --resume %s`\n",
			       a->volume, a->volume);
		return rc;
	}
	if (a->resume && done_before) {
		/* Nothing to do but say so. */
	} else if (a->resume) {
		/* A paused job goes on; a stopped or failed one starts
		 * again (EBUSY: it runs). */
		char err[512];
		int r;

		if (!active) {
			rc = vol_status(a->volume, &hs, &e);
			if (rc)
				return cli_volume_error(a->volume, rc, &e);
			if (hs.reencryption == VOL_REENC_NONE)
				return cli_error(0,
						 "%s is not being reencrypted: "
						 "nothing to resume",
						 a->volume);
		}
		rc = ask(a, st, "resume");
		if (rc)
			return rc;
		r = fsd_reencrypt_request(st->uuid, start, err, sizeof(err));
		if (r == -EBUSY && a->have_rate)
			r = fsd_reencrypt_request(st->uuid, rate, err,
						  sizeof(err));
		if (r && r != -EBUSY)
			return cli_error(0, "%s: %s", a->volume, err);
	} else {
		rc = prepare(a, &o, &job, &vs, &e);
		if (rc)
			return cli_volume_error(a->volume, rc, &e);
		vol_reencrypt_end(job);
		rc = ask(a, st, start);
		if (rc)
			return cli_error(0,
					 "%s: the header is ready for the "
					 "reencryption, but the daemon did not "
					 "start it (above); `cmkfs reencrypt "
					 "--resume %s` starts it",
					 a->volume, a->volume);
		fprintf(stderr,
			"%s: reencrypting online under a new data key of %s\n",
			a->volume, vs.key_arn);
	}
	if (a->background) {
		printf("%s: the reencryption runs in the daemon; `cmkfs status "
		       "%s` shows how far it is\n",
		       a->volume, a->volume);
		return EXIT_OK;
	}
	return follow(a, st);
}

static int reencrypt(const struct args *a)
{
	const struct vol_reencrypt_opts o = { .key_arn = a->key_arn,
					      .resilience = a->resilience,
					      .resume = a->resume,
					      .trust = a->trust };
	struct vol_reencrypt_start st;
	struct vol_reencrypt *job;
	struct vol_error e;
	int rc;

	rc = prepare(a, &o, &job, &st, &e);
	if (rc)
		return cli_volume_error(a->volume, rc, &e);
	if (st.recovered)
		fprintf(stderr,
			"recovered from the crash that interrupted the "
			"reencryption of %s\n",
			a->volume);
	if (!st.finished)
		rc = run_data(job, a, st.key_arn);
	else if (st.recovered)
		printf("reencrypted %s: the block the crash cut off was the "
		       "last one, and with it recovered the reencryption is "
		       "complete; it opens through %s\n",
		       a->volume, st.key_arn);
	else
		printf("reencrypted %s: every block was done; its end, cut "
		       "off, is now complete; it opens through %s\n",
		       a->volume, st.key_arn);
	vol_reencrypt_end(job);
	return rc;
}

static int run_reencrypt(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		CLI_KEY_LONGOPTS,
		{ "resume", no_argument, NULL, 'r' },
		{ "resilience", required_argument, NULL, 'R' },
		{ "progress-interval", required_argument, NULL, 'i' },
		{ "pause", no_argument, NULL, 'p' },
		{ "background", no_argument, NULL, 'b' },
		{ "max-rate", required_argument, NULL, 'm' },
		CLI_INSECURE_LONGOPT,
		CLI_KMS_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct args a = { .resilience = "checksum", .interval = 10 };
	struct fsd_state st;
	char *end;
	int c, rc = -1;

	while ((c = cli_getopt(cmd, argc, argv, "h", longopts, &rc)) != -1) {
		if (cli_kms_option(cmd, c, optarg, &a.ko, &rc) < 0)
			return rc;
		if (c == 'k') {
			a.key_arn = optarg;
		} else if (c == 'r') {
			a.resume = true;
		} else if (c == 'R') {
			if (strcmp(optarg, "checksum") &&
			    strcmp(optarg, "journal"))
				return cli_usage_error(
					cmd,
					"--resilience is checksum or "
					"journal, not '%s'",
					optarg);
			a.resilience = optarg;
		} else if (c == 'p') {
			a.pause = true;
		} else if (c == 'b') {
			a.background = true;
		} else if (c == 'I') {
			a.insecure = true;
		} else if (c == 'm') {
			if (cli_parse_size(optarg, &a.max_rate))
				return cli_usage_error(
					cmd,
					"--max-rate takes bytes per second "
					"(a number with K, M or G; 0: no "
					"limit), not '%s'",
					optarg);
			a.have_rate = true;
		} else if (c == 'i') {
			a.interval = strtod(optarg, &end);
			if (*end || !(a.interval > 0) || a.interval > 86400)
				return cli_usage_error(
					cmd, "--progress-interval takes "
					     "seconds (0 < S <= 86400)");
		}
	}
	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage_error(cmd, "reencrypt takes one VOLUME");
	if (a.resume && a.key_arn)
		return cli_usage_error(cmd, "--resume continues with the key "
					    "chosen at the start: drop "
					    "--key");
	if (a.pause && (a.resume || a.key_arn || a.background))
		return cli_usage_error(cmd, "--pause goes alone (with "
					    "--max-rate at most)");
	a.volume = argv[optind];
	cli_trust(&a.trust, a.insecure, NULL);
	if (fsd_state_find(a.volume, &st) == 0 && st.alive)
		return reencrypt_online(&a, &st);
	if (a.pause || a.have_rate || a.background)
		return cli_usage_error(
			cmd,
			"%s is not mounted: --pause, --max-rate "
			"and --background are for a reencryption "
			"of a mounted volume (offline, Ctrl-C "
			"stops it and --resume continues)",
			a.volume);
	return reencrypt(&a);
}

const struct cli_cmd cli_cmd_reencrypt = {
	"reencrypt",
	"rewrite all data under a new volume key (mounted or not, resumable)",
	"usage: cmkfs reencrypt VOLUME [--key NEW] [--resilience MODE]\n"
	"                       [--progress-interval S] [--background]\n"
	"                       [--max-rate BYTES] [--insecure] [KMS OPTIONS]\n"
	"       cmkfs reencrypt --resume VOLUME [KMS OPTIONS]\n"
	"       cmkfs reencrypt VOLUME --pause | --max-rate BYTES\n"
	"\n"
	"Rewrite every byte of VOLUME under a new random volume key, in place, "
	"with a\n"
	"new data key of NEW (default: the volume's current CMK) opening it.  "
	"Every\n"
	"other keyslot and token is removed first: afterwards nothing that "
	"could open\n"
	"the volume before can read it.\n"
	"\n"
	"Each block is protected while it is rewritten (--resilience checksum, "
	"the\n"
	"default, or journal: slower, and safe where a write can tear), so a "
	"crash or\n"
	"Ctrl-C loses nothing.  `cmkfs reencrypt --resume VOLUME` recovers a "
	"block a\n"
	"crash cut off and continues.\n"
	"\n"
	"Unmounted, the volume cannot be unlocked or mounted until it "
	"finishes.\n"
	"Mounted, the volume's daemon does the work while it serves the data; "
	"this\n"
	"command follows it (Ctrl-C stops following, not the job) or, with\n"
	"--background, returns at once.  --pause stops it between two blocks, "
	"--resume\n"
	"continues, --max-rate throttles it (bytes per second, K/M/G; 0: no "
	"limit;\n"
	"default 40M).  A crash leaves it to the next mount, which recovers "
	"first.\n"
	"\n"
	"Progress goes to stderr: a bar on a terminal, otherwise a line every "
	"S\n"
	"seconds (--progress-interval, default 10).\n"
	"\n" CLI_INSECURE_USAGE "\n" CLI_KMS_USAGE "\n"
	"Exit status: 0 done, 1 failure or interrupted (resume it), 2 usage, "
	"3 KMS\n"
	"refused, 4 KMS unreachable.\n",
	run_reencrypt,
};
