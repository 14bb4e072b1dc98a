/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check_key.c — `cmkfs check-key ARN`, and the words for what the CMK
 * rules (volume/keycheck.c) find wrong with a key: what is wrong and how to
 * fix it; for access failures, the key-policy statement to add for the
 * caller's principal.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "volume.h"

/* The caller's principal as KMS names it in an AccessDenied message
 * ("User: arn:aws:iam::...:role/x is not authorized ..."). */
static void caller_from_message(const char *msg, char *out, size_t len)
{
	const char *p = strstr(msg, "User: ");
	size_t n;

	snprintf(out, len, "arn:aws:iam::<ACCOUNT>:role/<YOUR-ROLE>");
	if (!p)
		return;
	p += 6;
	n = strcspn(p, " ");
	/* An assumed-role session is granted through its role. */
	if (!strncmp(p, "arn:aws:sts::", 13) && strstr(p, ":assumed-role/")) {
		const char *role = strstr(p, ":assumed-role/") + 14;
		size_t rn = strcspn(role, "/ ");

		snprintf(out, len, "arn:aws:iam::%.12s:role/%.*s", p + 13,
			 (int)rn, role);
		return;
	}
	snprintf(out, len, "%.*s", (int)n, p);
}

static void print_statement(const char *principal)
{
	fprintf(stderr,
		"Add this statement to the key policy (or an equivalent grant):\n"
		"{\n"
		"    \"Sid\": \"Allow cmkfs to use the key\",\n"
		"    \"Effect\": \"Allow\",\n"
		"    \"Principal\": {\n"
		"        \"AWS\": \"%s\"\n"
		"    },\n"
		"    \"Action\": [\n"
		"        \"kms:Encrypt\",\n"
		"        \"kms:Decrypt\",\n"
		"        \"kms:ReEncrypt*\",\n"
		"        \"kms:GenerateDataKey*\",\n"
		"        \"kms:DescribeKey\"\n"
		"    ],\n"
		"    \"Resource\": \"*\"\n"
		"}\n",
		principal);
}

/* A KMS failure during the check, worded for this command. */
static int check_failed(const char *prefix, const char *arn,
			const struct vol_key_check *c)
{
	const char *region = c->client_region;
	char who[300];
	int rc;

	switch (c->kms.status) {
	case KMS_ACCESS_DENIED:
		rc = cli_kms_error(&c->kms,
				   "%sthe key %s is not usable by this "
				   "host's principal (%s refused)",
				   prefix, arn, c->step);
		caller_from_message(c->kms.message, who, sizeof(who));
		print_statement(who);
		return rc;
	case KMS_NOT_FOUND:
		return cli_kms_error(
			&c->kms,
			"%sthe key %s does not exist in region %s, "
			"or is not shared with this account: "
			"check the ARN, create the key in %s, or "
			"share it through its key policy",
			prefix, arn, region, region);
	case KMS_DISABLED:
		return cli_kms_error(&c->kms,
				     "%sthe key %s is disabled: enable it with "
				     "'cmkfs kms enable-key %s'",
				     prefix, arn, arn);
	case KMS_INVALID_STATE:
		return cli_kms_error(&c->kms,
				     "%sthe key %s cannot be used in its state "
				     "(pending deletion or import)",
				     prefix, arn);
	default:
		return cli_kms_error(&c->kms, "%scannot check the key %s (%s)",
				     prefix, arn, c->step);
	}
}

/* What makes the key unfit, worded; prefix says what the check was for
 * ("cannot create X: "), so that a failed check reads as one line about the
 * caller's operation. */
static int unfit(const char *prefix, const char *arn, int r,
		 const struct vol_key_check *c)
{
	const struct kms_key_info *i = &c->info;
	char when[32] = "?";
	time_t t = (time_t)i->deletion_date;
	struct tm tm;

	switch (c->problem) {
	case VOL_KEY_OK:
		break;
	case VOL_KEY_NOT_ARN:
		return cli_error(0,
				 "%s'%s' is not a key ARN "
				 "(arn:aws:kms:REGION:ACCOUNT:key/KEY-ID): a "
				 "volume must name its key by ARN",
				 prefix, arn);
	case VOL_KEY_KMS:
		return check_failed(prefix, arn, c);
	case VOL_KEY_NOT_SYMMETRIC:
		return cli_error(0,
				 "%sthe key %s is %s for %s: cmkfs needs a "
				 "symmetric encryption key (KeySpec "
				 "SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT)",
				 prefix, arn, i->spec, i->usage);
	case VOL_KEY_IMPORTED:
		return cli_error(0,
				 "%sthe key %s uses imported key material "
				 "(Origin EXTERNAL): cmkfs needs a key whose "
				 "material KMS generated, so that it cannot "
				 "be lost or leaked outside KMS",
				 prefix, arn);
	case VOL_KEY_ORIGIN:
		return cli_error(
			0,
			"%sthe key %s has Origin %s: cmkfs needs a key "
			"with KMS-generated material (AWS_KMS)",
			prefix, arn, i->origin);
	case VOL_KEY_PENDING_DELETION:
		if (t && gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		return cli_error(
			0,
			"%sthe key %s is scheduled for deletion on %s: "
			"cancel with 'cmkfs kms cancel-deletion %s', "
			"then 'cmkfs kms enable-key %s'",
			prefix, arn, when, arn, arn);
	case VOL_KEY_NOT_ENABLED:
		return cli_error(
			0,
			"%sthe key %s is %s: enable it with 'cmkfs kms "
			"enable-key %s'",
			prefix, arn, i->state, arn);
	case VOL_KEY_BAD_ROUND_TRIP:
		return cli_error(0,
				 "%sKMS decrypted the test data key of %s to "
				 "something else: this is not a KMS to trust",
				 prefix, arn);
	}
	return cli_error(r, "%scannot check the key %s", prefix, arn);
}

int cli_key_unfit(const char *what, const char *arn, int r,
		  const struct vol_key_check *c)
{
	char prefix[1200] = "";

	if (what)
		snprintf(prefix, sizeof(prefix), "%s: ", what);
	return unfit(prefix, arn, r, c);
}

int cli_check_key(struct kms_client *k, const char *arn, bool quiet,
		  const char *what)
{
	struct vol_key_check c;
	int r;

	r = vol_check_key(k, arn, &c);
	if (r)
		return cli_key_unfit(what, arn, r, &c);
	if (!quiet)
		printf("ok: %s is a symmetric key with KMS-generated material, "
		       "enabled, in %s; this host can GenerateDataKey and "
		       "Decrypt with it\n",
		       c.info.arn, c.region);
	return EXIT_OK;
}

static int run_check_key(const struct cli_cmd *cmd, int argc, char **argv)
{
	struct kms_options ko = { 0 };
	struct kms_client *k = NULL;
	int rc = cli_kms_only_options(cmd, argc, argv, &ko);

	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage_error(cmd, "check-key takes one key ARN");
	rc = cli_kms_client(&ko, &k);
	if (rc)
		return rc;
	rc = cli_check_key(k, argv[optind], false, NULL);
	kms_client_free(k);
	return rc;
}

const struct cli_cmd cli_cmd_check_key = {
	"check-key",
	"check that a KMS key is fit to protect volumes",
	"usage: cmkfs check-key [KMS OPTIONS] KEY-ARN\n"
	"\n"
	"Check the rules a volume's key must meet: it exists in the region in "
	"use, is\n"
	"a symmetric encryption key, has KMS-generated (not imported) "
	"material, is\n"
	"enabled, and this host can GenerateDataKey and Decrypt with it (a "
	"dry round\n"
	"trip under a throwaway encryption context).  Each failure says what "
	"to fix;\n"
	"for access failures, the key-policy statement to add.\n"
	"\n" CLI_KMS_USAGE "\n"
	"Exit status: 0 fit, 1 unfit, 2 usage, 3 KMS refused, 4 KMS "
	"unreachable.\n",
	run_check_key,
};
