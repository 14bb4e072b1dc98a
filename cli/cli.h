/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h — conventions shared by every `cmkfs` subcommand (internal to cli/).
 *
 * A command is a row in the table in main.c: a name, a one-line summary, its
 * usage text, and a function that parses its own options with cli_getopt()
 * and returns an exit code.  Internal functions return 0 or -errno; a command
 * turns a failure into its exit code and one line on stderr with
 * cli_error(), the only place errors are worded for the user.
 */
#ifndef CMKFS_CLI_H
#define CMKFS_CLI_H

#include <getopt.h>

/* Exit codes, documented in README.  Stable: scripts depend on them. */
enum cli_exit {
	EXIT_OK = 0,	/* success */
	EXIT_FAIL = 1,	/* the operation failed; stderr says why */
	EXIT_USAGE = 2, /* bad command line; nothing was done */
};

struct cli_cmd {
	const char *name;
	const char *summary; /* one line, for `cmkfs help` */
	const char *usage;   /* full text, for `cmkfs NAME --help` */
	int (*run)(const struct cli_cmd *cmd, int argc, char **argv);
};

/*
 * getopt_long for a subcommand, with the conventions every command shares:
 * -h/--help prints the command's usage to stdout and makes the command exit
 * 0; an unknown option or a missing argument prints a one-line hint to stderr
 * and makes it exit 2.  Those two cases return -1 and set *exit_code; at the
 * end of the options it returns -1 with *exit_code = -1 (carry on).
 * Otherwise it returns the option as getopt_long does.
 */
int cli_getopt(const struct cli_cmd *cmd, int argc, char **argv,
	       const char *shortopts, const struct option *longopts,
	       int *exit_code);

/* Print the usage of cmd to stdout. */
void cli_print_usage(const struct cli_cmd *cmd);

/* "cmkfs NAME: <message>; see 'cmkfs NAME --help'" on stderr; returns
 * EXIT_USAGE. */
int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * The one place an internal error becomes text: prints
 *   "cmkfs: error: <message>: <reason>"
 * on one line to stderr, where reason comes from err (a negative errno, or 0
 * for none), and returns EXIT_FAIL.  The message must never contain secrets.
 */
int cli_error(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
