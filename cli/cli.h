/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h — conventions shared by every `cmkfs` subcommand (internal to cli/).
 *
 * A command is a row in the table in main.c: a name, a one-line summary, its
 * usage text, and a function that parses its own options with cli_getopt()
 * and returns an exit code.  The protocols are the libraries' (volume/, fs/,
 * kms/): they return 0 or -errno with the detail in an error struct and
 * never print.  A command turns a failure into its exit code and one line on
 * stderr through errors.c (cli_error, cli_kms_error, cli_volume_error), the
 * only place errors are worded for the user.  The two helpers here that
 * wrap one library call and its error (cli_kms_client, cli_check_key)
 * return that exit code with the line already printed.
 */
#ifndef CMKFS_CLI_H
#define CMKFS_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include "kms.h"

/* Exit codes, documented in README.  Stable: scripts depend on them. */
enum cli_exit {
	EXIT_OK = 0,	/* success */
	EXIT_FAIL = 1,	/* the operation failed; stderr says why */
	EXIT_USAGE = 2, /* bad command line; nothing was done */
	EXIT_KMS_DENIED =
		3, /* KMS refused: access, key state, key missing,
		      ciphertext — the key or its policy must change */
	EXIT_KMS_UNAVAILABLE = 4, /* KMS unreachable or failing, after
				     retries: try again later */
};

struct cli_cmd {
	const char *name;
	const char *summary; /* one line, for `cmkfs help` */
	const char *usage;   /* full text, for `cmkfs NAME --help`; NULL when
				run() answers --help itself (`cmkfs help NAME`
				then calls it with --help) */
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

/* A command's key, in its option table: --key KEY (an AWS KMS key ARN or
 * kmip://HOST:PORT/UNIQUE-ID) and --key-arn ARN (AWS only: cli_getopt
 * refuses a KMIP name there), both returned as 'k'. */
#define CLI_KEY_ARN_OPT 0x0fff
#define CLI_KEY_LONGOPTS                                                       \
	{ "key", required_argument, NULL, 'k' },                               \
	{                                                                      \
		"key-arn", required_argument, NULL, CLI_KEY_ARN_OPT            \
	}

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

/* bytes as "12.3 MiB" (binary units) into out. */
void cli_human_size(uint64_t bytes, char *out, size_t len);

/* "10G", "512M", "1T", "4096" (binary units; "KiB", "MB" suffixes too):
 * 0, or -EINVAL. */
int cli_parse_size(const char *s, uint64_t *out);

/* ---- KMS options shared by every command that talks to KMS ---- */

/* Long options: --region, --profile, --kms-endpoint, --kms-timeout,
 * --debug-kms.  Include in a command's option table with CLI_KMS_LONGOPTS. */
#define CLI_KMS_OPT_BASE 0x1000

/* --insecure of the commands that open a volume: a cipher_null (NOT
 * ENCRYPTED) benchmark volume passes the header allow-list. */
#define CLI_INSECURE_LONGOPT                                                   \
	{                                                                      \
		"insecure", no_argument, NULL, 'I'                             \
	}
#define CLI_INSECURE_USAGE                                                     \
	"  --insecure          accept a cipher_null volume (NOT ENCRYPTED: "   \
	"benchmarks only);\n"                                                  \
	"                      any other header off the allow-list is "        \
	"refused\n"
/* The pinned CMK (--key-arn of mount and unlock-test; CMKFS_KEY_ARN). */
#define CLI_PIN_USAGE                                                           \
	"  --key KEY[,KEY...]  the only keys (ARNs, kmip:// names) the volume " \
	"may open\n"                                                            \
	"                      through (default: CMKFS_KEY_ARN; --key-arn for " \
	"ARNs):\n"                                                              \
	"                      a header whose token names another key is "      \
	"refused before\n"                                                      \
	"                      the key's service is asked\n"

/* The trust of a command that opens a volume (volume.h): --insecure, and
 * the CMK key_arn pins (when NULL: CMKFS_KEY_ARN, if set). */
struct vol_trust;
void cli_trust(struct vol_trust *t, bool insecure, const char *key_arn);
#define CLI_KMS_LONGOPTS                                                       \
	{ "region", required_argument, NULL, CLI_KMS_OPT_BASE + 0 },           \
		{ "profile", required_argument, NULL, CLI_KMS_OPT_BASE + 1 },  \
		{ "kms-endpoint", required_argument, NULL,                     \
		  CLI_KMS_OPT_BASE + 2 },                                      \
		{ "kms-timeout", required_argument, NULL,                      \
		  CLI_KMS_OPT_BASE + 3 },                                      \
		{ "debug-kms", no_argument, NULL, CLI_KMS_OPT_BASE + 4 },      \
		{ "kmip-cert", required_argument, NULL,                        \
		  CLI_KMS_OPT_BASE + 5 },                                      \
		{ "kmip-key", required_argument, NULL, CLI_KMS_OPT_BASE + 6 }, \
	{                                                                      \
		"kmip-ca", required_argument, NULL, CLI_KMS_OPT_BASE + 7       \
	}
#define CLI_KMS_USAGE                                                           \
	"KMS options:\n"                                                        \
	"  --region R          AWS region (default: AWS_REGION, "               \
	"AWS_DEFAULT_REGION,\n"                                                 \
	"                      the profile's region)\n"                         \
	"  --profile P         shared config/credentials profile (default: "    \
	"AWS_PROFILE)\n"                                                        \
	"  --kms-endpoint URL  KMS endpoint (default: AWS_ENDPOINT_URL_KMS, "   \
	"AWS_ENDPOINT_URL,\n"                                                   \
	"                      the profile's endpoint_url, else AWS)\n"         \
	"  --kms-timeout S     seconds per attempt (default 10); transient "    \
	"failures are\n"                                                        \
	"                      retried with backoff for up to 30 s\n"           \
	"  --debug-kms         one line per KMS request on stderr (never "      \
	"bodies)\n"                                                             \
	"  --kmip-cert F, --kmip-key F, --kmip-ca F\n"                          \
	"                      for kmip:// keys: this client's certificate, "   \
	"its private\n"                                                         \
	"                      key (mode 0600) and the servers' CA, PEM files " \
	"(default:\n"                                                           \
	"                      CMKFS_KMIP_CERT, CMKFS_KMIP_KEY, "               \
	"CMKFS_KMIP_CA, else\n"                                                 \
	"                      /etc/cmkfs/kmip/client.crt, client.key, "        \
	"ca.crt)\n"

/* Handle option c if it is a KMS option (1), else 0; -1 on a bad value
 * (message printed, exit code in *exit_code). */
int cli_kms_option(const struct cli_cmd *cmd, int c, const char *arg,
		   struct kms_options *o, int *exit_code);

/* Parse a command that takes only --help and the KMS options: an exit code,
 * or -1 to carry on with optind at the first operand. */
int cli_kms_only_options(const struct cli_cmd *cmd, int argc, char **argv,
			 struct kms_options *o);

/* A client from the options, or an error printed and the exit code. */
int cli_kms_client(const struct kms_options *o, struct kms_client **out);
/* The service that holds key (volume.h, vol_kms_open), or an error printed
 * and the exit code. */
struct vol_kms;
int cli_key_service(const struct kms_options *o, const char *key,
		    struct vol_kms **out);

/* The one place a KMS error becomes text: "cmkfs: error: <what>: <Type>:
 * <message> (request id ...)"; returns EXIT_KMS_DENIED,
 * EXIT_KMS_UNAVAILABLE or EXIT_FAIL according to the error. */
int cli_kms_error(const struct kms_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The CMK rules (check_key.c): 0 when the key ARN is fit to protect
 * volumes, else the exit code, with what to fix printed (each message
 * prefixed by "<what>: " when what is not NULL).  quiet: no "ok" line.
 * Shared by check-key, create and status --check-key. */
int cli_check_key(struct vol_kms *k, const char *arn, bool quiet,
		  const char *what);
/* What vol_check_key found wrong with arn (r its return), worded as
 * cli_check_key does; returns the exit code. */
struct vol_key_check;
int cli_key_unfit(const char *what, const char *arn, int r,
		  const struct vol_key_check *c);

/* The one place a volume error becomes text (errors.c): the failure e
 * explains (or r, when e names none) worded for volume, on stderr; returns
 * the exit code (EXIT_KMS_DENIED, EXIT_KMS_UNAVAILABLE for KMS failures). */
struct vol_error;
int cli_volume_error(const char *volume, int r, const struct vol_error *e);
/* A note on stderr for each aws-kms token an unlock tried that did not
 * open the volume (the first one too when all, i.e. after a success). */
void cli_attempts(const struct vol_error *e, bool all);

/* sd_notify: send state (e.g. "READY=1") to $NOTIFY_SOCKET when the
 * service manager set it; 0 when sent or not asked for, else -errno. */
int cli_sd_notify(const char *state);

/* The mount of volume uuid, for `status` (mount.c): text lines on stdout,
 * or a "mount" member (null when not mounted) added to json object o. */
struct json_object;
void cli_status_mount(const char *uuid, struct json_object *o);

/* Make the filesystem fstype ("ext4", "xfs") on a blank volume, as its
 * first mount would (mount.c: mounts it on a temporary directory and
 * unmounts it).  Needs root.  0, or the error printed and the exit code. */
int cli_mkfs_volume(const char *volume, const char *fstype,
		    const struct kms_options *ko);

/* Commands defined outside main.c. */
extern const struct cli_cmd cli_cmd_kms;
extern const struct cli_cmd cli_cmd_check_key;
extern const struct cli_cmd cli_cmd_create;
extern const struct cli_cmd cli_cmd_status;
extern const struct cli_cmd cli_cmd_unlock_test;
extern const struct cli_cmd cli_cmd_rotate;
extern const struct cli_cmd cli_cmd_add_key;
extern const struct cli_cmd cli_cmd_remove_key;
extern const struct cli_cmd cli_cmd_reencrypt;
extern const struct cli_cmd cli_cmd_header_backup;
extern const struct cli_cmd cli_cmd_header_restore;
extern const struct cli_cmd cli_cmd_mount;
extern const struct cli_cmd cli_cmd_umount;
extern const struct cli_cmd cli_cmd_bench;

#endif
