/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reencrypt.c — `cmkfs reencrypt`: rewrite a volume's data under a new
 * volume key (offline), bound to a new KMS data key of the same or another
 * CMK; and `--resume` after an interruption or a crash.
 *
 * libcryptsetup 2.6 opens the old and the new volume key with one
 * passphrase, so before the data moves, every key of the volume is put
 * behind one new KMS data key S (the secret of one new aws-kms token):
 *   1. keyslot N: a new random volume key, opened by S    (not used yet)
 *   2. keyslot B: the current volume key, opened by S
 *   3. token for S covering B, then N
 *   4. every other token removed, every other keyslot destroyed (a new
 *      volume key makes them useless; left alone they would keep the old
 *      CMK able to read the part not yet rewritten)
 *   5. reencryption metadata written; data rewritten block by block
 * At the end libcryptsetup destroys B, leaving the token covering N.
 * Steps 1-4 are header writes ordered as `rotate` does: after each, the
 * volume opens through the old token or the new one.  A crash between 1
 * and 3 leaves a keyslot no token covers; the next run's step 4 removes
 * it.  From step 5 on, only `reencrypt --resume` (the token for S)
 * continues, recovering first a block cut off in the middle.
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
	struct kms_options ko;
};

/*
 * Where the header being replaced is kept while a reencryption's end is
 * completed (see crypto/reencrypt.c): beside a volume file; for a block
 * device, under /var/lib/cmkfs, named after the device path.  Not after
 * the UUID: it must be found even when the header cannot be read.
 */
#define STATE_DIR "/var/lib/cmkfs"

int cli_reencrypt_snapshot(const char *volume, char *out, size_t len)
{
	char real[4096];
	struct stat st;
	int n;

	if (stat(volume, &st))
		return cli_error(-errno, "cannot stat %s", volume);
	if (S_ISREG(st.st_mode)) {
		n = snprintf(out, len, "%s.reencrypt-header", volume);
	} else {
		if (!realpath(volume, real))
			return cli_error(-errno, "cannot resolve %s", volume);
		for (char *c = real; *c; c++)
			if (*c == '/')
				*c = '-';
		if (mkdir(STATE_DIR, 0700) && errno != EEXIST)
			return cli_error(-errno, "cannot create %s", STATE_DIR);
		n = snprintf(out, len, STATE_DIR "/%s.reencrypt-header",
			     real + 1);
	}
	if (n < 0 || (size_t)n >= len)
		return cli_error(-ENAMETOOLONG, "%s", volume);
	return 0;
}

/* Rewrite the data (step 5 onwards) and report. */
static int run_data(struct vol *v, const struct args *a, const char *arn)
{
	struct progress p = { .volume = a->volume,
			      .tty = isatty(STDERR_FILENO),
			      .interval = a->interval };
	struct sigaction sa = { .sa_handler = on_signal };
	struct vol_info info;
	char err[512], size[32];
	double t0 = now();
	int r;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	r = vol_reencrypt_run(v, on_progress, &p, err, sizeof(err));
	if (p.tty && r)
		fputc('\n', stderr);
	if (r == -EINTR)
		return cli_error(0,
				 "%s: stopped by signal %d between two blocks; "
				 "nothing is lost: continue with `cmkfs "
				 "reencrypt --resume %s`",
				 a->volume, (int)stop_signal, a->volume);
	if (r)
		return cli_error(0,
				 "%s; the volume is safe and only `cmkfs "
				 "reencrypt --resume %s` continues",
				 err, a->volume);
	if (vol_info(v, &info))
		return cli_error(-EIO, "cannot read the header of %s",
				 a->volume);
	cli_human_size(info.data_size, size, sizeof(size));
	printf("reencrypted %s: %s under a new volume key in %.1f s; "
	       "keyslot %d opens through %s\n",
	       a->volume, size, now() - t0,
	       info.n_keyslots ? info.keyslots[0] : -1, arn);
	return EXIT_OK;
}

/* Step 4: everything but keyslots keep[0..1], token keep_token and the
 * blank mark (reencryption writes nothing of a user's). */
static int remove_others(struct vol *v, const char *volume, const int keep[2],
			 int keep_token)
{
	struct vol_info info;
	char err[512];

	if (vol_info(v, &info))
		return cli_error(-EIO, "cannot read the header of %s", volume);
	for (unsigned i = 0; i < info.n_tokens; i++) {
		if (info.tokens[i] == keep_token ||
		    info.tokens[i] == info.blank_token)
			continue;
		if (vol_token_remove(v, info.tokens[i], err, sizeof(err)))
			return cli_error(0, "cannot reencrypt %s: %s", volume,
					 err);
	}
	for (unsigned i = 0; i < info.n_keyslots + info.n_unbound; i++) {
		int ks = i < info.n_keyslots
				 ? info.keyslots[i]
				 : info.unbound_keyslots[i - info.n_keyslots];

		if (ks == keep[0] || ks == keep[1])
			continue;
		if (vol_keyslot_destroy(v, ks, err, sizeof(err)))
			return cli_error(0, "cannot reencrypt %s: %s", volume,
					 err);
		fprintf(stderr,
			"keyslot %d destroyed: the new volume key makes it "
			"useless\n",
			ks);
	}
	return 0;
}

/* Steps 1-4, then the metadata of step 5. */
static int prepare(struct vol *v, const struct vol_info *info,
		   const struct args *a, const struct unlocked *u,
		   const char *arn)
{
	const struct vol_reencrypt_params rp = { .resilience = a->resilience };
	struct vol_reencrypt_params p = rp;
	struct kms_options nko = a->ko;
	struct kms_client *k = NULL;
	struct kms_error kerr;
	uint8_t *secret = NULL;
	char *token = NULL, err[512], what[4200], region[64];
	int rc, id, keep[2];

	if (!nko.region && kms_arn_region(arn, region, sizeof(region)))
		nko.region = region;
	rc = cli_kms_client(&nko, &k);
	if (rc)
		return rc;
	snprintf(what, sizeof(what), "cannot reencrypt %s", a->volume);
	if (a->key_arn) {
		rc = cli_check_key(k, arn, true, what);
		if (rc)
			goto out;
	}
	if (kms_volume_secret_new(k, arn, info->uuid, &secret, &token, &kerr)) {
		rc = cli_kms_error(&kerr,
				   "cannot reencrypt %s: no data key from %s",
				   a->volume, arn);
		goto out;
	}
	/* Everything but the keyslot and token that unlocked the volume goes
	 * first (step 4 would destroy it anyway): a preparation cut off
	 * leaves keyslots behind, an unbound one among them, next to which
	 * libcryptsetup refuses another, and each would fill the keyslot
	 * area further.  The volume opens all along with what unlocked it. */
	keep[0] = keep[1] = u->keyslot;
	rc = remove_others(v, a->volume, keep, u->token_id);
	if (rc)
		goto out;
	rc = EXIT_FAIL;
	if (vol_keyslot_add_new_key(v, secret, KMS_SECRET_BYTES, &p.keyslot_new,
				    err, sizeof(err)) ||
	    vol_keyslot_add(v, u->vk, u->vk_len, secret, KMS_SECRET_BYTES,
			    &p.keyslot_old, err, sizeof(err)) ||
	    vol_token_add(v, token, p.keyslot_old, &id, err, sizeof(err)) ||
	    vol_token_assign(v, id, p.keyslot_new, err, sizeof(err))) {
		cli_error(0,
			  "cannot reencrypt %s: %s (nothing was rewritten; the "
			  "volume still opens with %s)",
			  a->volume, err, u->token.key_arn);
		goto out;
	}
	keep[0] = p.keyslot_old;
	keep[1] = p.keyslot_new;
	rc = remove_others(v, a->volume, keep, id);
	if (rc)
		goto out;
	if (vol_reencrypt_init(v, secret, KMS_SECRET_BYTES, &p, err,
			       sizeof(err))) {
		rc = cli_error(0,
			       "cannot reencrypt %s: %s (nothing was "
			       "rewritten; the volume opens with %s)",
			       a->volume, err, arn);
		goto out;
	}
	rc = EXIT_OK;
out:
	secmem_free(secret);
	free(token);
	kms_client_free(k);
	return rc;
}

struct resume {
	const char *snapshot;
	unsigned what; /* VOL_RESUME_* */
};

/* Resume with the secret of a token: the cli_volume_secret callback. */
static int resume_with(struct vol *v, const struct kms_token *t, int token_id,
		       const uint8_t *secret, size_t len, void *arg, char *err,
		       size_t errlen)
{
	struct resume *r = arg;

	(void)t;
	(void)token_id;
	return vol_reencrypt_resume(v, secret, len, r->snapshot, &r->what, err,
				    errlen);
}

static int reencrypt(const struct args *a)
{
	struct vol_info info = { 0 };
	struct unlocked u = { 0 };
	struct kms_token t = { 0 };
	struct vol *v = NULL;
	char err[512], snapshot[4200];
	int rc, fd;

	rc = cli_volume_lock(a->volume, CLI_LOCK_OFFLINE, &fd);
	if (rc)
		return rc;
	rc = cli_reencrypt_snapshot(a->volume, snapshot, sizeof(snapshot));
	if (rc)
		goto out;
	{
		char dead[4300];

		/* What a crash left while a finished snapshot was removed. */
		snprintf(dead, sizeof(dead), "%s.dead", snapshot);
		if (access(snapshot, F_OK) && !access(dead, F_OK))
			vol_header_file_destroy(snapshot);
	}
	if (access(snapshot, F_OK) == 0) {
		/* The end of a reencryption was cut off while its header was
		 * being replaced: start again from the header it replaced. */
		if (!a->resume) {
			rc = cli_error(
				0,
				"the end of a reencryption of %s was cut "
				"off: finish it with `cmkfs reencrypt "
				"--resume %s`",
				a->volume, a->volume);
			goto out;
		}
		if (vol_reencrypt_restore_snapshot(a->volume, snapshot, err,
						   sizeof(err))) {
			rc = cli_error(0, "%s (the header is kept in %s)", err,
				       snapshot);
			goto out;
		}
	}
	if (vol_open_flags(a->volume, VOL_OPEN_REENCRYPTING, &v, err,
			   sizeof(err))) {
		rc = cli_error(0, "%s", err);
		goto out;
	}
	if (vol_info(v, &info)) {
		rc = cli_error(-EIO, "cannot read the header of %s", a->volume);
		goto out;
	}
	if (a->resume) {
		struct resume res = { .snapshot = snapshot };
		const struct cli_secret_use use = { resume_with, &res };

		if (info.reencrypt == VOL_REENCRYPT_NONE) {
			rc = cli_error(0,
				       "%s is not being reencrypted: nothing "
				       "to resume",
				       a->volume);
			goto out;
		}
		rc = cli_volume_secret(v, &info, &a->ko, a->volume, &use, &t);
		if (rc)
			goto out;
		if (res.what & VOL_RESUME_RECOVERED)
			fprintf(stderr,
				"recovered from the crash that interrupted the "
				"reencryption of %s\n",
				a->volume);
		if (!(res.what & VOL_RESUME_FINISHED))
			rc = run_data(v, a, t.key_arn);
		else if (res.what & VOL_RESUME_RECOVERED)
			printf("reencrypted %s: the block the crash cut off "
			       "was the last one, and with it recovered the "
			       "reencryption is complete; it opens through "
			       "%s\n",
			       a->volume, t.key_arn);
		else
			printf("reencrypted %s: every block was done; its end, "
			       "cut off, is now complete; it opens through "
			       "%s\n",
			       a->volume, t.key_arn);
		goto out;
	}
	if (info.reencrypt != VOL_REENCRYPT_NONE) {
		rc = cli_error(0,
			       "%s is already being reencrypted: continue "
			       "with `cmkfs reencrypt --resume %s`",
			       a->volume, a->volume);
		goto out;
	}
	if (strcmp(info.cipher, "aes-xts-plain64")) {
		rc = cli_error(0, "cannot reencrypt %s: its cipher is %s",
			       a->volume, info.cipher);
		goto out;
	}
	rc = cli_volume_unlock(v, &info, &a->ko, a->volume, &u);
	if (rc)
		goto out;
	{
		const char *arn = a->key_arn ? a->key_arn : u.token.key_arn;
		char *arn_copy = strdup(arn);

		if (!arn_copy) {
			rc = cli_error(-ENOMEM, "cannot reencrypt %s",
				       a->volume);
			goto out;
		}
		rc = prepare(v, &info, a, &u, arn_copy);
		/* The old volume key is no longer needed by anything. */
		cli_unlocked_free(&u);
		if (!rc)
			rc = run_data(v, a, arn_copy);
		free(arn_copy);
	}
out:
	cli_unlocked_free(&u);
	kms_token_free(&t);
	vol_close(v);
	close(fd);
	return rc;
}

static int run_reencrypt(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "key-arn", required_argument, NULL, 'k' },
		{ "resume", no_argument, NULL, 'r' },
		{ "resilience", required_argument, NULL, 'R' },
		{ "progress-interval", required_argument, NULL, 'i' },
		CLI_KMS_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct args a = { .resilience = "checksum", .interval = 10 };
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
					    "--key-arn");
	a.volume = argv[optind];
	return reencrypt(&a);
}

const struct cli_cmd cli_cmd_reencrypt = {
	"reencrypt",
	"rewrite all data under a new volume key (offline, resumable)",
	"usage: cmkfs reencrypt VOLUME [--key-arn NEW] [--resilience MODE]\n"
	"                       [--progress-interval S] [KMS OPTIONS]\n"
	"       cmkfs reencrypt --resume VOLUME [KMS OPTIONS]\n"
	"\n"
	"Rewrite every byte of VOLUME under a new random volume key, in place, "
	"with a\n"
	"new data key of NEW (default: the volume's current CMK) opening it.  "
	"The\n"
	"volume must not be mounted.  Every other keyslot and token is removed "
	"first:\n"
	"afterwards nothing that could open the volume before can read it.\n"
	"\n"
	"Each block is protected while it is rewritten (--resilience checksum, "
	"the\n"
	"default, or journal: slower, and safe where a write can tear), so a "
	"crash or\n"
	"Ctrl-C loses nothing.  Until it finishes the volume cannot be "
	"unlocked or\n"
	"mounted; `cmkfs reencrypt --resume VOLUME` recovers a block a crash "
	"cut off\n"
	"and continues.\n"
	"\n"
	"Progress goes to stderr: a bar on a terminal, otherwise a line every "
	"S\n"
	"seconds (--progress-interval, default 10).\n"
	"\n" CLI_KMS_USAGE "\n"
	"Exit status: 0 done, 1 failure or interrupted (resume it), 2 usage, "
	"3 KMS\n"
	"refused, 4 KMS unreachable.\n",
	run_reencrypt,
};
