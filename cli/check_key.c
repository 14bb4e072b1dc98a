/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check_key.c — `cmkfs check-key ARN`: the CMK rules (volume/keycheck.c)
 * applied to one key; errors.c words what they find wrong.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "volume.h"

int cli_check_key(struct vol_kms *k, const char *arn, bool quiet,
		  const char *what)
{
	struct vol_key_check c;
	int r;

	r = vol_check_key(k, arn, &c);
	if (r)
		return cli_key_unfit(what, arn, r, &c);
	if (quiet)
		return EXIT_OK;
	if (c.kind == VOL_KEY_KMIP)
		printf("ok: %s is an active AES-256 key on the KMIP server "
		       "%s; this client can Encrypt and Decrypt with it\n",
		       arn, c.client_region);
	else
		printf("ok: %s is a symmetric key with KMS-generated material, "
		       "enabled, in %s; this host can GenerateDataKey and "
		       "Decrypt with it\n",
		       c.info.arn, c.region);
	return EXIT_OK;
}

static int run_check_key(const struct cli_cmd *cmd, int argc, char **argv)
{
	struct kms_options ko = { 0 };
	struct vol_kms *k = NULL;
	int rc = cli_kms_only_options(cmd, argc, argv, &ko);

	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage_error(cmd,
				       "check-key takes one key: an ARN or "
				       "kmip://HOST:PORT/UNIQUE-ID");
	rc = cli_key_service(&ko, argv[optind], &k);
	if (rc)
		return rc;
	rc = cli_check_key(k, argv[optind], false, NULL);
	vol_kms_free(k);
	return rc;
}

const struct cli_cmd cli_cmd_check_key = {
	"check-key",
	"check that a KMS key is fit to protect volumes",
	"usage: cmkfs check-key [KMS OPTIONS] KEY\n"
	"\n"
	"Check the rules a volume's key must meet.  An AWS KMS key (KEY an "
	"ARN): it\n"
	"exists in the region in use, is a symmetric encryption key, has "
	"KMS-generated\n"
	"(not imported) material, is enabled, and this host can "
	"GenerateDataKey and\n"
	"Decrypt with it (a dry round trip under a throwaway encryption "
	"context).\n"
	"A KMIP key (KEY kmip://HOST:PORT/UNIQUE-ID): it exists on the "
	"server, is a\n"
	"symmetric AES-256 key, is Active, its usage mask allows Encrypt and "
	"Decrypt,\n"
	"and this client may use it (a dry AES-GCM round trip).  Each failure "
	"says\n"
	"what to fix; for AWS access failures, the key-policy statement to "
	"add.\n"
	"\n" CLI_KMS_USAGE "\n"
	"Exit status: 0 fit, 1 unfit, 2 usage, 3 KMS refused, 4 KMS "
	"unreachable.\n",
	run_check_key,
};
