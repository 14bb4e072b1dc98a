/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.c — option parsing and printing shared by all subcommands.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "volume.h"

void cli_print_usage(const struct cli_cmd *cmd)
{
	fputs(cmd->usage, stdout);
}

int cli_getopt(const struct cli_cmd *cmd, int argc, char **argv,
	       const char *shortopts, const struct option *longopts,
	       int *exit_code)
{
	int c;

	*exit_code = -1;
	opterr = 0; /* we word the errors ourselves */
	c = getopt_long(argc, argv, shortopts, longopts, NULL);
	switch (c) {
	case 'h':
		cli_print_usage(cmd);
		*exit_code = EXIT_OK;
		return -1;
	case '?':
		if (optopt && strchr(shortopts, optopt))
			*exit_code = cli_usage_error(
				cmd, "option -%c needs an argument", optopt);
		else if (optopt)
			*exit_code = cli_usage_error(cmd, "unknown option -%c",
						     optopt);
		else
			*exit_code = cli_usage_error(
				cmd, "unknown option or missing argument: %s",
				argv[optind - 1]);
		return -1;
	case ':':
		*exit_code = cli_usage_error(cmd, "%s needs an argument",
					     argv[optind - 1]);
		return -1;
	case CLI_KEY_ARN_OPT:
		/* --key-arn names AWS keys: a KMIP key is given with --key,
		 * so that no one takes one for the other. */
		if (vol_key_kind_of(optarg) == VOL_KEY_KMIP ||
		    strstr(optarg, "," VOL_KMIP_SCHEME)) {
			*exit_code = cli_usage_error(
				cmd,
				"--key-arn names AWS KMS keys: give the "
				"KMIP key %s with --key",
				optarg);
			return -1;
		}
		return 'k';
	default:
		return c;
	}
}

int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "cmkfs %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; see 'cmkfs %s --help'\n", cmd->name);
	return EXIT_USAGE;
}

void cli_trust(struct vol_trust *t, bool insecure, const char *key_arn)
{
	t->insecure = insecure;
	t->key_arn = key_arn ? key_arn : getenv("CMKFS_KEY_ARN");
	if (t->key_arn && !*t->key_arn)
		t->key_arn = NULL;
	t->kmip_servers = getenv("CMKFS_KMIP_SERVERS");
	if (t->kmip_servers && !*t->kmip_servers)
		t->kmip_servers = NULL;
}

void cli_human_size(uint64_t bytes, char *out, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

int cli_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'K':
	case 'k':
		shift = 10;
		end++;
		break;
	case 'M':
	case 'm':
		shift = 20;
		end++;
		break;
	case 'G':
	case 'g':
		shift = 30;
		end++;
		break;
	case 'T':
	case 't':
		shift = 40;
		end++;
		break;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B' && shift)
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}
