/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds-probe.c — drives cmkfs's AWS credential chain (kms/creds.c) for the
 * integration tests; not part of cmkfs itself.
 *
 * usage: creds-probe [--profile NAME] [--count N] [--delay-ms MS]
 *                    [--timeout-ms MS]
 *
 * Prints "profile=NAME", then for each of N calls to creds_get (MS apart)
 *     call I: source=...; access-key-id=...; secret-length=N;
 *     session-token=yes|no; expiration=EPOCH
 * on one line, flushed at once so a test can act between calls.  Never the
 * secret or the token themselves.  On an error prints
 *     creds-probe: call I: MESSAGE (ENAME)
 * on stderr and exits 1; bad usage exits 2.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "creds.h"

static void usage(void)
{
	fprintf(stderr, "usage: creds-probe [--profile NAME] [--count N] "
			"[--delay-ms MS] [--timeout-ms MS]\n");
	exit(2);
}

static long number(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		usage();
	return v;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "profile", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct creds_options opt = { 0 };
	struct creds_provider *p;
	long count = 1, delay = 0;
	char err[1024];
	int c, r;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			opt.profile = optarg;
			break;
		case 'n':
			count = number(optarg);
			break;
		case 'd':
			delay = number(optarg);
			break;
		case 't':
			opt.timeout_ms = number(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || count < 1)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	r = creds_provider_new(&p, &opt);
	if (r) {
		fprintf(stderr, "creds-probe: %s\n", strerror(-r));
		return 1;
	}
	printf("profile=%s\n", creds_profile_name(p));
	for (long i = 1; i <= count; i++) {
		struct kms_creds *k;

		if (i > 1 && delay)
			sleep_ms(delay);
		r = creds_get(p, &k, err, sizeof(err));
		if (r) {
			fprintf(stderr, "creds-probe: call %ld: %s (%s)\n", i,
				err, strerrorname_np(-r));
			creds_provider_free(p);
			return 1;
		}
		printf("call %ld: source=%s; access-key-id=%s; "
		       "secret-length=%zu; session-token=%s; "
		       "expiration=%" PRId64 "\n",
		       i, k->source, k->access_key_id, strlen(k->secret),
		       k->session_token[0] ? "yes" : "no", k->expiration);
		creds_release(k);
	}
	creds_provider_free(p);
	return 0;
}
