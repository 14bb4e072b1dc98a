/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check_key.c — `cmkfs check-key ARN`: the CMK rules, checked before a
 * volume is bound to a key.  The key must exist in the region in use, be a
 * symmetric encryption key, have KMS-generated material (not imported),
 * be enabled, and the caller must be able to GenerateDataKey and Decrypt
 * with it — proven by a dry round trip under a throwaway encryption context.
 * Every failure says what is wrong and how to fix it; for access failures,
 * the key-policy statement to add for the caller's principal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "crypto.h"

/* What the check is for, prefixed to every message ("cannot create X: "),
 * so that a failed check reads as one line about the caller's operation. */
static const char *prefix = "";
static char prefix_buf[4200];

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
static int check_failed(const char *arn, const char *step,
			const struct kms_error *err, const char *region)
{
	char who[300];
	int rc;

	switch (err->status) {
	case KMS_ACCESS_DENIED:
		rc = cli_kms_error(err,
				   "%sthe key %s is not usable by this "
				   "host's principal (%s refused)",
				   prefix, arn, step);
		caller_from_message(err->message, who, sizeof(who));
		print_statement(who);
		return rc;
	case KMS_NOT_FOUND:
		return cli_kms_error(
			err,
			"%sthe key %s does not exist in region %s, "
			"or is not shared with this account: "
			"check the ARN, create the key in %s, or "
			"share it through its key policy",
			prefix, arn, region, region);
	case KMS_DISABLED:
		return cli_kms_error(err,
				     "%sthe key %s is disabled: enable it with "
				     "'cmkfs kms enable-key %s'",
				     prefix, arn, arn);
	case KMS_INVALID_STATE:
		return cli_kms_error(err,
				     "%sthe key %s cannot be used in its state "
				     "(pending deletion or import)",
				     prefix, arn);
	default:
		return cli_kms_error(err, "%scannot check the key %s (%s)",
				     prefix, arn, step);
	}
}

/* The dry round trip: a data key under a throwaway context must decrypt. */
static int round_trip(struct kms_client *k, const char *arn)
{
	uint8_t *dk = NULL, *blob = NULL, *back = NULL, nonce[16];
	char nonce_hex[33];
	struct kms_kv ctx = { "cmkfs:check-key", nonce_hex };
	struct kms_error err;
	size_t blob_len, back_len;
	int rc = EXIT_OK;

	if (crypto_random(nonce, sizeof(nonce)))
		return cli_error(-EIO, "no randomness");
	for (size_t i = 0; i < sizeof(nonce); i++)
		snprintf(nonce_hex + 2 * i, 3, "%02x", nonce[i]);
	if (kms_generate_data_key(k, arn, &ctx, 1, 32, &dk, &blob, &blob_len,
				  &err))
		return check_failed(arn, "GenerateDataKey", &err,
				    kms_client_region(k));
	if (kms_decrypt(k, arn, &ctx, 1, blob, blob_len, &back, &back_len,
			&err)) {
		rc = check_failed(arn, "Decrypt", &err, kms_client_region(k));
	} else if (back_len != 32 || !secmem_equal(back, dk, 32)) {
		rc = cli_error(0,
			       "%sKMS decrypted the test data key of %s to "
			       "something else: this is not a KMS to trust",
			       prefix, arn);
	}
	secmem_free(dk);
	secmem_free(back);
	free(blob);
	return rc;
}

int cli_check_key(struct kms_client *k, const char *arn, bool quiet,
		  const char *what)
{
	struct kms_key_info info;
	struct kms_error err;
	char region[64];
	int rc;

	prefix = "";
	if (what) {
		snprintf(prefix_buf, sizeof(prefix_buf), "%s: ", what);
		prefix = prefix_buf;
	}

	if (!kms_arn_region(arn, region, sizeof(region)) ||
	    !strstr(arn, ":key/"))
		return cli_error(0,
				 "%s'%s' is not a key ARN "
				 "(arn:aws:kms:REGION:ACCOUNT:key/KEY-ID): a "
				 "volume must name its key by ARN",
				 prefix, arn);
	if (kms_describe_key(k, arn, &info, &err))
		return check_failed(arn, "DescribeKey", &err,
				    kms_client_region(k));
	if (strcmp(info.spec, "SYMMETRIC_DEFAULT") ||
	    strcmp(info.usage, "ENCRYPT_DECRYPT"))
		return cli_error(0,
				 "%sthe key %s is %s for %s: cmkfs needs a "
				 "symmetric encryption key (KeySpec "
				 "SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT)",
				 prefix, arn, info.spec, info.usage);
	if (!strcmp(info.origin, "EXTERNAL"))
		return cli_error(0,
				 "%sthe key %s uses imported key material "
				 "(Origin EXTERNAL): cmkfs needs a key whose "
				 "material KMS generated, so that it cannot "
				 "be lost or leaked outside KMS",
				 prefix, arn);
	if (strcmp(info.origin, "AWS_KMS"))
		return cli_error(
			0,
			"%sthe key %s has Origin %s: cmkfs needs a key "
			"with KMS-generated material (AWS_KMS)",
			prefix, arn, info.origin);
	if (!strcmp(info.state, "PendingDeletion")) {
		char when[32] = "?";
		time_t t = (time_t)info.deletion_date;
		struct tm tm;

		if (t && gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		return cli_error(
			0,
			"%sthe key %s is scheduled for deletion on %s: "
			"cancel with 'cmkfs kms cancel-deletion %s', "
			"then 'cmkfs kms enable-key %s'",
			prefix, arn, when, arn, arn);
	}
	if (!info.enabled || strcmp(info.state, "Enabled"))
		return cli_error(
			0,
			"%sthe key %s is %s: enable it with 'cmkfs kms "
			"enable-key %s'",
			prefix, arn, info.state, arn);
	rc = round_trip(k, arn);
	if (!rc && !quiet)
		printf("ok: %s is a symmetric key with KMS-generated material, "
		       "enabled, in %s; this host can GenerateDataKey and "
		       "Decrypt with it\n",
		       info.arn, region);
	return rc;
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
