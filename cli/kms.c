/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kms.c — `cmkfs kms`: any KMS action, and thin wrappers for the key
 * operations an operator needs (create, enable/disable, deletion, grants);
 * plus the KMS option handling every KMS command shares.
 * The same commands work against AWS KMS and cmkfs-kmsd.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "volume.h"

#define MAX_BODY (1u << 20)

/* ---- shared KMS plumbing ------------------------------------------------- */

int cli_kms_option(const struct cli_cmd *cmd, int c, const char *arg,
		   struct kms_options *o, int *exit_code)
{
	char *end;
	long v;

	switch (c) {
	case CLI_KMS_OPT_BASE + 0:
		o->region = arg;
		return 1;
	case CLI_KMS_OPT_BASE + 1:
		o->profile = arg;
		return 1;
	case CLI_KMS_OPT_BASE + 2:
		o->endpoint = arg;
		return 1;
	case CLI_KMS_OPT_BASE + 3:
		v = strtol(arg, &end, 10);
		if (*end || v < 1 || v > 600) {
			*exit_code = cli_usage_error(
				cmd, "--kms-timeout takes seconds, 1 to 600");
			return -1;
		}
		o->timeout_ms = v * 1000;
		return 1;
	case CLI_KMS_OPT_BASE + 4:
		o->debug = true;
		return 1;
	case CLI_KMS_OPT_BASE + 5:
		o->kmip_cert = arg;
		return 1;
	case CLI_KMS_OPT_BASE + 6:
		o->kmip_key = arg;
		return 1;
	case CLI_KMS_OPT_BASE + 7:
		o->kmip_ca = arg;
		return 1;
	default:
		return 0;
	}
}

int cli_kms_only_options(const struct cli_cmd *cmd, int argc, char **argv,
			 struct kms_options *o)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		CLI_KMS_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	while ((c = cli_getopt(cmd, argc, argv, "h", longopts, &rc)) != -1)
		if (cli_kms_option(cmd, c, optarg, o, &rc) < 0)
			return rc;
	return rc;
}

int cli_kms_client(const struct kms_options *o, struct kms_client **out)
{
	struct kms_error err;

	if (kms_client_new(out, o, &err))
		return cli_kms_error(&err, "cannot set up the KMS client");
	return EXIT_OK;
}

int cli_key_service(const struct kms_options *o, const char *key,
		    struct vol_kms **out)
{
	struct kms_error err;

	if (vol_kms_open(o, key, out, &err))
		return cli_kms_error(&err,
				     "cannot reach the service of the "
				     "key %s",
				     key);
	return EXIT_OK;
}

/* ---- cmkfs kms ------------------------------------------------------------
 */

/* Read a request body: inline JSON, @FILE, or - for stdin. */
static char *read_body(const char *arg)
{
	FILE *f = NULL;
	char *buf;
	size_t n = 0;

	if (strcmp(arg, "-") && arg[0] != '@')
		return strdup(arg);
	f = strcmp(arg, "-") ? fopen(arg + 1, "r") : stdin;
	if (!f)
		return NULL;
	buf = malloc(MAX_BODY + 1);
	if (buf) {
		n = fread(buf, 1, MAX_BODY + 1, f);
		if (n > MAX_BODY || ferror(f)) {
			free(buf);
			buf = NULL;
			errno = n > MAX_BODY ? EFBIG : EIO;
		} else {
			buf[n] = 0;
		}
	}
	if (f != stdin)
		fclose(f);
	return buf;
}

/* Print a JSON response: pretty on a terminal, as received otherwise. */
static void print_json(const char *text)
{
	json_object *o;

	if (!isatty(STDOUT_FILENO)) {
		printf("%s\n", text);
		return;
	}
	o = json_tokener_parse(text);
	printf("%s\n", o ? json_object_to_json_string_ext(
				   o, JSON_C_TO_STRING_PRETTY |
					      JSON_C_TO_STRING_NOSLASHESCAPE)
			 : text);
	json_object_put(o);
}

/* Call action with body; print the response or the error. */
static int call(struct kms_client *k, const char *action, const char *body,
		bool print, json_object **resp)
{
	struct kms_error err;
	char *out = NULL;

	if (kms_call(k, action, body, &out, &err))
		return cli_kms_error(&err, "%s", action);
	if (print)
		print_json(out);
	if (resp)
		*resp = json_tokener_parse(out);
	free(out);
	return EXIT_OK;
}

/* {"KeyId": key} plus optional extra members. */
static char *key_body(const char *key, const char *extra_name,
		      json_object *extra)
{
	json_object *o = json_object_new_object();
	char *s;

	json_object_object_add(o, "KeyId", json_object_new_string(key));
	if (extra_name)
		json_object_object_add(o, extra_name, extra);
	s = strdup(json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

static int sub_call(const struct cli_cmd *cmd, struct kms_client *k, int argc,
		    char **argv)
{
	char *body;
	int rc;

	if (argc < 1 || argc > 2)
		return cli_usage_error(cmd,
				       "kms call takes ACTION [JSON|@FILE|-]");
	body = read_body(argc == 2 ? argv[1] : "{}");
	if (!body)
		return cli_error(-errno, "cannot read the request body %s",
				 argv[1]);
	rc = call(k, argv[0], body, true, NULL);
	free(body);
	return rc;
}

static int sub_create_key(const struct cli_cmd *cmd, struct kms_client *k,
			  const char *description, const char *policy_arg,
			  const char *origin, int argc)
{
	json_object *o = json_object_new_object(), *resp = NULL, *md, *arn;
	char *policy = NULL;
	int rc;

	if (argc)
		return json_object_put(o),
		       cli_usage_error(cmd,
				       "kms create-key takes no arguments");
	if (description)
		json_object_object_add(o, "Description",
				       json_object_new_string(description));
	if (origin)
		json_object_object_add(o, "Origin",
				       json_object_new_string(origin));
	if (policy_arg) {
		policy = read_body(policy_arg);
		if (!policy) {
			json_object_put(o);
			return cli_error(-errno, "cannot read the policy %s",
					 policy_arg);
		}
		json_object_object_add(o, "Policy",
				       json_object_new_string(policy));
		free(policy);
	}
	rc = call(k, "CreateKey",
		  json_object_to_json_string_ext(
			  o, JSON_C_TO_STRING_PLAIN |
				     JSON_C_TO_STRING_NOSLASHESCAPE),
		  false, &resp);
	json_object_put(o);
	if (rc)
		return rc;
	/* The ARN alone on stdout, for scripts: KEY=$(cmkfs kms create-key) */
	if (json_object_object_get_ex(resp, "KeyMetadata", &md) &&
	    json_object_object_get_ex(md, "Arn", &arn))
		printf("%s\n", json_object_get_string(arn));
	json_object_put(resp);
	return EXIT_OK;
}

/* enable-key, disable-key, schedule-deletion, cancel-deletion */
static int sub_key_action(const struct cli_cmd *cmd, struct kms_client *k,
			  const char *verb, const char *action, long days,
			  int argc, char **argv)
{
	json_object *extra = NULL, *resp = NULL, *v;
	char *body;
	int rc;

	if (argc != 1)
		return cli_usage_error(cmd, "kms %s takes one KEY", verb);
	if (days)
		extra = json_object_new_int64(days);
	body = key_body(argv[0], days ? "PendingWindowInDays" : NULL, extra);
	if (!body)
		return cli_error(-ENOMEM, "kms %s", verb);
	rc = call(k, action, body, false, &resp);
	free(body);
	if (rc)
		return rc;
	if (json_object_object_get_ex(resp, "DeletionDate", &v))
		fprintf(stderr,
			"%s: deletion scheduled at %s (epoch seconds); "
			"cancel with 'cmkfs kms cancel-deletion %s'\n",
			argv[0], json_object_get_string(v), argv[0]);
	else
		fprintf(stderr, "%s: %s done\n", argv[0], verb);
	json_object_put(resp);
	return EXIT_OK;
}

static int sub_revoke_grant(const struct cli_cmd *cmd, struct kms_client *k,
			    int argc, char **argv)
{
	char *body;
	int rc;

	if (argc != 2)
		return cli_usage_error(cmd,
				       "kms revoke-grant takes KEY GRANT_ID");
	body = key_body(argv[0], "GrantId", json_object_new_string(argv[1]));
	if (!body)
		return cli_error(-ENOMEM, "kms revoke-grant");
	rc = call(k, "RevokeGrant", body, false, NULL);
	free(body);
	if (!rc)
		fprintf(stderr, "%s: grant %s revoked\n", argv[0], argv[1]);
	return rc;
}

static int run_kms(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "description", required_argument, NULL, 'd' },
		{ "policy", required_argument, NULL, 'p' },
		{ "origin", required_argument, NULL, 'o' },
		{ "days", required_argument, NULL, 'D' },
		CLI_KMS_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *description = NULL, *policy = NULL, *origin = NULL, *sub;
	struct kms_options ko = { 0 };
	struct kms_client *k = NULL;
	long days = 0;
	char *end;
	int c, rc;

	/* Options may come before or after the subcommand's operands. */
	while ((c = cli_getopt(cmd, argc, argv, "h", longopts, &rc)) != -1) {
		if (cli_kms_option(cmd, c, optarg, &ko, &rc) < 0)
			return rc;
		switch (c) {
		case 'd':
			description = optarg;
			break;
		case 'p':
			policy = optarg;
			break;
		case 'o':
			origin = optarg;
			break;
		case 'D':
			days = strtol(optarg, &end, 10);
			if (*end || days < 7 || days > 30)
				return cli_usage_error(cmd,
						       "--days takes 7 to 30");
			break;
		}
	}
	if (rc >= 0)
		return rc;
	if (optind >= argc)
		return cli_usage_error(cmd, "which kms subcommand?");
	sub = argv[optind++];
	argc -= optind;
	argv += optind;
	if (strcmp(sub, "call") && strcmp(sub, "create-key") &&
	    strcmp(sub, "enable-key") && strcmp(sub, "disable-key") &&
	    strcmp(sub, "schedule-deletion") &&
	    strcmp(sub, "cancel-deletion") && strcmp(sub, "revoke-grant"))
		return cli_usage_error(cmd, "no kms subcommand '%s'", sub);
	rc = cli_kms_client(&ko, &k);
	if (rc)
		return rc;
	if (!strcmp(sub, "call"))
		rc = sub_call(cmd, k, argc, argv);
	else if (!strcmp(sub, "create-key"))
		rc = sub_create_key(cmd, k, description, policy, origin, argc);
	else if (!strcmp(sub, "enable-key"))
		rc = sub_key_action(cmd, k, sub, "EnableKey", 0, argc, argv);
	else if (!strcmp(sub, "disable-key"))
		rc = sub_key_action(cmd, k, sub, "DisableKey", 0, argc, argv);
	else if (!strcmp(sub, "schedule-deletion"))
		rc = sub_key_action(cmd, k, sub, "ScheduleKeyDeletion",
				    days ? days : 30, argc, argv);
	else if (!strcmp(sub, "cancel-deletion"))
		rc = sub_key_action(cmd, k, sub, "CancelKeyDeletion", 0, argc,
				    argv);
	else
		rc = sub_revoke_grant(cmd, k, argc, argv);
	kms_client_free(k);
	return rc;
}

const struct cli_cmd cli_cmd_kms = {
	"kms",
	"talk to KMS: any action, and key management shortcuts",
	"usage: cmkfs kms call ACTION [JSON|@FILE|-]\n"
	"       cmkfs kms create-key [--description D] [--policy @FILE] "
	"[--origin AWS_KMS|EXTERNAL]\n"
	"       cmkfs kms enable-key|disable-key|cancel-deletion KEY\n"
	"       cmkfs kms schedule-deletion KEY [--days 7..30]\n"
	"       cmkfs kms revoke-grant KEY GRANT_ID\n"
	"\n"
	"call sends any KMS action (e.g. DescribeKey) with the JSON request\n"
	"(inline, from FILE, or - for stdin) and prints the JSON response, "
	"pretty on\n"
	"a terminal.  create-key prints the new key's ARN.  KEY is a key id, "
	"key ARN,\n"
	"alias name (alias/NAME) or alias ARN.  The same commands work against "
	"AWS KMS\n"
	"and cmkfs-kmsd.\n"
	"\n" CLI_KMS_USAGE "\n"
	"Exit status: 0 ok, 1 failure, 2 usage, 3 KMS refused (access, key "
	"state,\n"
	"missing key), 4 KMS unreachable after retries.\n",
	run_kms,
};
