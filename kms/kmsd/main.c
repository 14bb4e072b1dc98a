/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c — the cmkfs-kmsd program: a local AWS-KMS-compatible key service
 * that really enforces access (signatures, key policies, grants, key states,
 * regions), for development, tests and demos of cmkfs without AWS.
 *
 *   cmkfs-kmsd init --state DIR --account ID [--region R] [--listen A:P]
 *   cmkfs-kmsd principal add|list|remove --state DIR ...
 *   cmkfs-kmsd [serve] --state DIR [--listen A:P] [--region R]...
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "crypto.h"
#include "util.h"
#include "kmsd.h"

#define DEFAULT_REGION "us-east-1"
#define DEFAULT_SKEW   300

static const char usage_text[] =
	"usage: cmkfs-kmsd [serve] --state DIR [--listen ADDR:PORT] "
	"[--region R]...\n"
	"                  [--max-skew SECONDS] [--log FILE]\n"
	"                  [--request-timeout SECONDS] "
	"[--per-address-connections N]\n"
	"                  [--metrics-listen [ADDR:]PORT] "
	"[--metrics-file PATH]\n"
	"                  [--metrics-interval SECONDS]\n"
	"       cmkfs-kmsd init --state DIR --account ID [--region R] "
	"[--listen ADDR:PORT]\n"
	"       cmkfs-kmsd principal add --state DIR ARN [--session-token] "
	"[--expires RFC3339]\n"
	"       cmkfs-kmsd principal list --state DIR\n"
	"       cmkfs-kmsd principal remove --state DIR ACCESS_KEY_ID|ARN\n"
	"       cmkfs-kmsd --version | --help\n"
	"\n"
	"A local key service speaking the AWS KMS API (JSON 1.1, SigV4), with\n"
	"key policies, grants, key states and regions enforced as AWS does.\n"
	"\n"
	"serve      answer KMS requests until SIGINT/SIGTERM; ADDR:PORT defaults\n"
	"           to the one given at init (port 0 picks a free port); regions\n"
	"           default to the init region; --max-skew is the allowed clock\n"
	"           difference for signatures (default 300); --log appends the\n"
	"           access log to FILE instead of stderr; a connection whose\n"
	"           request is not in whole within --request-timeout seconds\n"
	"           (default 30) is cut, and one address holds at most\n"
	"           --per-address-connections (default 32, of 128);\n"
	"           Prometheus metrics (requests by action and outcome, "
	"their\n"
	"           latency) on GET /metrics at --metrics-listen (127.0.0.1 "
	"when\n"
	"           only PORT is given) and/or in --metrics-file, rewritten "
	"every\n"
	"           --metrics-interval seconds (default 10)\n"
	"init       create DIR (mode 0700) with a master key, an empty key store\n"
	"           and a credential for the account's root; prints the\n"
	"           environment a client needs\n"
	"principal  add a credential for another principal (a role or user of\n"
	"           this or another account: how key sharing is tried locally),\n"
	"           list them (no secrets), or remove one\n";

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("cmkfs-kmsd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("; see 'cmkfs-kmsd --help'\n", stderr);
	return 2;
}

static int fail(const char *msg)
{
	fprintf(stderr, "cmkfs-kmsd: error: %s\n", msg);
	return 1;
}

static void print_env(const char *listen, const char *region,
		      const struct principal *p)
{
	const char *port = strrchr(listen, ':');
	char host[128];

	snprintf(host, sizeof(host), "%.*s", (int)(port - listen), listen);
	/* A wildcard listen address is not where a client connects. */
	if (!strcmp(host, "0.0.0.0"))
		snprintf(host, sizeof(host), "127.0.0.1");
	printf("# %s\n", p->arn);
	printf("export AWS_ENDPOINT_URL_KMS=http://%s%s\n", host, port);
	/* AWS_REGION for the SDKs and CLI v2, AWS_DEFAULT_REGION for AWS
	 * CLI v1 (and boto3), which read only that one. */
	printf("export AWS_REGION=%s\n", region);
	printf("export AWS_DEFAULT_REGION=%s\n", region);
	printf("export AWS_ACCESS_KEY_ID=%s\n", p->access_key_id);
	printf("export AWS_SECRET_ACCESS_KEY=%s\n", p->secret);
	if (p->session_token[0])
		printf("export AWS_SESSION_TOKEN=%s\n", p->session_token);
	else
		printf("unset AWS_SESSION_TOKEN\n");
}

static bool valid_account(const char *a)
{
	if (strlen(a) != 12)
		return false;
	for (int i = 0; i < 12; i++)
		if (a[i] < '0' || a[i] > '9')
			return false;
	return true;
}

static bool valid_region(const char *r)
{
	size_t n = strlen(r);

	if (n < 2 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') ||
		      (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
			return false;
	return true;
}

static int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "account", required_argument, NULL, 'a' },
		{ "region", required_argument, NULL, 'r' },
		{ "listen", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *account = NULL, *region = DEFAULT_REGION;
	const char *listen = KMSD_DEFAULT_LISTEN;
	struct principal p;
	char err[512], arn[64];
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			dir = optarg;
			break;
		case 'a':
			account = optarg;
			break;
		case 'r':
			region = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		default:
			return usage_error("init: bad option");
		}
	}
	if (!dir || !account)
		return usage_error("init needs --state DIR and --account ID");
	if (!valid_account(account))
		return usage_error("--account %s: an account id is 12 digits",
				   account);
	if (!valid_region(region))
		return usage_error("--region %s: not a region name", region);
	if (!strrchr(listen, ':'))
		return usage_error("--listen %s: expected ADDRESS:PORT",
				   listen);
	if (state_init(dir, account, region, listen, err, sizeof(err)))
		return fail(err);
	snprintf(arn, sizeof(arn), "arn:aws:iam::%s:root", account);
	if (state_add_principal(dir, arn, false, 0, &p, err, sizeof(err)))
		return fail(err);
	fprintf(stderr, "cmkfs-kmsd: created %s for account %s in %s\n", dir,
		account, region);
	print_env(listen, region, &p);
	secmem_wipe(&p, sizeof(p));
	return 0;
}

static void list_one(const struct principal *p, void *arg)
{
	char when[32] = "never";

	(void)arg;
	if (p->expires) {
		time_t t = (time_t)p->expires;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	printf("%-22s %-9s %-20s %s\n", p->access_key_id,
	       p->session_token[0] ? "temporary" : "long-term", when, p->arn);
}

static int cmd_principal(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "session-token", no_argument, NULL, 't' },
		{ "expires", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *verb;
	bool session = false;
	int64_t expires = 0;
	struct principal p;
	struct state *st;
	char err[512];
	int c;

	if (argc < 2)
		return usage_error("principal needs add, list or remove");
	verb = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			dir = optarg;
			break;
		case 't':
			session = true;
			break;
		case 'e':
			if (kms_parse_rfc3339(optarg, strlen(optarg), &expires))
				return usage_error("--expires %s: expected "
						   "YYYY-MM-DDTHH:MM:SSZ",
						   optarg);
			break;
		default:
			return usage_error("principal: bad option");
		}
	}
	if (!dir)
		return usage_error("principal needs --state DIR");
	if (!strcmp(verb, "list")) {
		if (optind != argc)
			return usage_error("principal list takes no arguments");
		if (state_list_principals(dir, list_one, NULL, err,
					  sizeof(err)))
			return fail(err);
		return 0;
	}
	if (optind + 1 != argc)
		return usage_error("principal %s needs one argument", verb);
	if (!strcmp(verb, "remove")) {
		if (state_remove_principal(dir, argv[optind], err, sizeof(err)))
			return fail(err);
		fprintf(stderr, "cmkfs-kmsd: removed %s\n", argv[optind]);
		return 0;
	}
	if (strcmp(verb, "add"))
		return usage_error("principal %s: expected add, list or remove",
				   verb);
	/* Opening the state checks its permissions and gives the region and
	 * listen address for the printed environment. */
	if (state_open(dir, &st, err, sizeof(err)))
		return fail(err);
	if (state_add_principal(dir, argv[optind], session, expires, &p, err,
				sizeof(err))) {
		state_close(st);
		return fail(err);
	}
	print_env(state_listen(st), state_default_region(st), &p);
	secmem_wipe(&p, sizeof(p));
	state_close(st);
	return 0;
}

static int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "region", required_argument, NULL, 'r' },
		{ "max-skew", required_argument, NULL, 'k' },
		{ "log", required_argument, NULL, 'g' },
		{ "request-timeout", required_argument, NULL, 't' },
		{ "per-address-connections", required_argument, NULL, 'a' },
		{ "metrics-listen", required_argument, NULL, 'm' },
		{ "metrics-file", required_argument, NULL, 'f' },
		{ "metrics-interval", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	struct server_config cfg = { .max_skew = DEFAULT_SKEW,
				     .request_timeout = 30,
				     .per_address = 32 };
	unsigned long v;
	const char *dir = NULL;
	struct state *st;
	char err[512], listen[128], region[64], *end;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			dir = optarg;
			break;
		case 'l':
			cfg.listen = optarg;
			break;
		case 'r':
			if (!valid_region(optarg))
				return usage_error("--region %s: not a region "
						   "name",
						   optarg);
			if (cfg.n_regions == KMSD_MAX_REGIONS)
				return usage_error("at most 8 regions");
			cfg.regions[cfg.n_regions++] = optarg;
			break;
		case 'k':
			cfg.max_skew = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !*optarg || cfg.max_skew > 86400)
				return usage_error("--max-skew %s: seconds, "
						   "0..86400",
						   optarg);
			break;
		case 'g':
			cfg.log_path = optarg;
			break;
		case 'm':
			cfg.metrics_listen = optarg;
			break;
		case 'f':
			if (!*optarg)
				return usage_error("--metrics-file takes a "
						   "path");
			cfg.metrics_file = optarg;
			break;
		case 'i':
			v = strtoul(optarg, &end, 10);
			if (*end || *optarg < '0' || *optarg > '9' || !v ||
			    v > 3600)
				return usage_error("--metrics-interval %s: "
						   "seconds, 1..3600",
						   optarg);
			cfg.metrics_interval = (unsigned)v;
			break;
		case 't':
		case 'a':
			v = strtoul(optarg, &end, 10);
			if (*end || !*optarg || !v ||
			    v > (c == 't' ? 3600 : KMSD_MAX_CONNECTIONS))
				return usage_error("--%s %s: %s",
						   c == 't' ? "request-timeout"
							    : "per-address-"
							      "connections",
						   optarg,
						   c == 't' ? "seconds, 1..3600"
							    : "1..128");
			if (c == 't')
				cfg.request_timeout = (unsigned)v;
			else
				cfg.per_address = (unsigned)v;
			break;
		default:
			return usage_error("bad option");
		}
	}
	if (!dir)
		return usage_error("serve needs --state DIR");
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (state_open(dir, &st, err, sizeof(err)))
		return fail(err);
	/* Copies: a request that fails reads the store back, and nothing
	 * taken from the old one survives that. */
	if (!cfg.listen) {
		snprintf(listen, sizeof(listen), "%s", state_listen(st));
		cfg.listen = listen;
	}
	if (!cfg.n_regions) {
		snprintf(region, sizeof(region), "%s",
			 state_default_region(st));
		cfg.regions[cfg.n_regions++] = region;
	}
	r = kmsd_server_run(st, &cfg, err, sizeof(err));
	state_close(st);
	if (r)
		return fail(err);
	fprintf(stderr, "cmkfs-kmsd: stopped\n");
	return 0;
}

int main(int argc, char **argv)
{
	/* The master key lives in this process: keep it out of core dumps
	 * and away from ptrace by other users. */
	prctl(PR_SET_DUMPABLE, 0);
	/* Before any library touches OpenSSL: key material passes through
	 * its heap (HMAC states, GCM contexts). */
	if (crypto_init())
		fprintf(stderr, "cmkfs-kmsd: warning: OpenSSL's heap is not "
				"wiped on free\n");
	if (argc >= 2 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "--version")) {
		printf("cmkfs-kmsd %s (%s)\n", CMKFS_VERSION,
		       crypto_library_version());
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "init"))
		return cmd_init(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "principal"))
		return cmd_principal(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "serve"))
		return cmd_serve(argc - 1, argv + 1);
	if (argc >= 2 && argv[1][0] != '-')
		return usage_error("unknown command '%s'", argv[1]);
	return cmd_serve(argc, argv);
}
