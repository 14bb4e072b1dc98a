/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c — the `cmkfs` program: global options and subcommand dispatch.
 *
 * Every subcommand is one row of `commands` below; `cmkfs help` lists them
 * and `cmkfs help NAME` / `cmkfs NAME --help` print a command's usage.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "cli.h"
#include "crypto.h"

static int cmd_help(const struct cli_cmd *cmd, int argc, char **argv);
static int cmd_version(const struct cli_cmd *cmd, int argc, char **argv);

static const struct cli_cmd cmd_help_def = {
	"help", "show the commands, or one command's usage",
	"usage: cmkfs help [COMMAND]\n"
	"\n"
	"Without COMMAND, list the commands; with it, print its usage\n"
	"(the same as 'cmkfs COMMAND --help').\n",
	cmd_help
};

static const struct cli_cmd cmd_version_def = {
	"version", "print the version of cmkfs and its libraries",
	"usage: cmkfs version\n"
	"\n"
	"Print the cmkfs version and the cipher library it uses.\n"
	"'cmkfs --version' prints the same.\n",
	cmd_version
};

/* In the order `cmkfs help` lists them. */
static const struct cli_cmd *const commands[] = {
	&cli_cmd_create,	&cli_cmd_mount,		 &cli_cmd_umount,
	&cli_cmd_status,	&cli_cmd_unlock_test,	 &cli_cmd_rotate,
	&cli_cmd_add_key,	&cli_cmd_remove_key,	 &cli_cmd_reencrypt,
	&cli_cmd_header_backup, &cli_cmd_header_restore, &cli_cmd_check_key,
	&cli_cmd_kms,		&cli_cmd_bench,		 &cmd_help_def,
	&cmd_version_def,
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct cli_cmd *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(commands[i]->name, name))
			return commands[i];
	return NULL;
}

static void print_overview(FILE *f)
{
	fprintf(f,
		"usage: cmkfs COMMAND [OPTIONS] [ARGS]\n"
		"       cmkfs --version | --help\n"
		"\n"
		"cmkfs keeps a database volume encrypted with AES-XTS under a "
		"key that only\n"
		"your KMS key (CMK) can unlock.\n"
		"\n"
		"Commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-15s %s\n", commands[i]->name,
			commands[i]->summary);
	fprintf(f, "\nRun 'cmkfs COMMAND --help' for a command's options.\n");
}

static const struct option no_longopts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Parse a command that takes only --help; returns an exit code, or -1 to
 * carry on with optind at the first operand. */
static int parse_no_options(const struct cli_cmd *cmd, int argc, char **argv)
{
	int rc;

	while (cli_getopt(cmd, argc, argv, "+h", no_longopts, &rc) != -1)
		;
	return rc;
}

static int cmd_help(const struct cli_cmd *cmd, int argc, char **argv)
{
	const struct cli_cmd *target;
	int rc = parse_no_options(cmd, argc, argv);

	if (rc >= 0)
		return rc;
	if (optind == argc) {
		print_overview(stdout);
		return EXIT_OK;
	}
	if (argc - optind > 1)
		return cli_usage_error(cmd, "too many arguments");
	target = find_command(argv[optind]);
	if (!target)
		return cli_usage_error(cmd, "no such command '%s'",
				       argv[optind]);
	if (!target->usage) {
		/* The command prints its own: the same as NAME --help. */
		char help[] = "--help";
		char *av[] = { argv[optind], help, NULL };

		optind = 1;
		return target->run(target, 2, av);
	}
	cli_print_usage(target);
	return EXIT_OK;
}

static int cmd_version(const struct cli_cmd *cmd, int argc, char **argv)
{
	int rc = parse_no_options(cmd, argc, argv);

	if (rc >= 0)
		return rc;
	if (optind != argc)
		return cli_usage_error(cmd, "takes no arguments");
	printf("cmkfs %s (%s)\n", CMKFS_VERSION, crypto_library_version());
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	const struct cli_cmd *cmd;
	int rc;

	/* Key material passes through this process: no core dumps, no
	 * ptrace by other users. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* Before any library touches OpenSSL. */
	if (crypto_init())
		fprintf(stderr, "cmkfs: warning: OpenSSL's heap is not wiped "
				"on free\n");

	if (argc < 2) {
		print_overview(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return cmd_help(find_command("help"), 1, argv);
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))
		return cmd_version(find_command("version"), 1, argv);

	cmd = find_command(argv[1]);
	if (!cmd) {
		fprintf(stderr,
			"cmkfs: '%s' is not a cmkfs command; see 'cmkfs help'\n",
			argv[1]);
		return EXIT_USAGE;
	}
	/* The command sees argv[0] = its own name, so getopt's messages and
	 * optind work as for a standalone program. */
	optind = 1;
	rc = cmd->run(cmd, argc - 1, argv + 1);
	/* For audits of what a command leaves in memory: stop, so that the
	 * process can be inspected from outside (/proc/PID/mem), and go on
	 * exiting when continued. */
	if (getenv("CMKFS_DEBUG_STOP_AT_EXIT"))
		raise(SIGSTOP);
	return rc;
}
