/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.c — option parsing and error reporting shared by all subcommands.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "crypto.h"

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

int cli_error(int err, const char *fmt, ...)
{
	va_list ap;

	fputs("cmkfs: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (err)
		fprintf(stderr, ": %s", crypto_strerror(err));
	fputc('\n', stderr);
	return EXIT_FAIL;
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
