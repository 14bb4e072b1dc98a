/* SPDX-License-Identifier: Apache-2.0 */
/*
 * unlock_test.c — `cmkfs unlock-test`: prove, now, that the volume unlocks
 * through its KMS key, without mounting it.
 */
#include <stdio.h>

#include "cli.h"
#include "volume.h"

static int run_unlock_test(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		CLI_INSECURE_LONGOPT,
		CLI_KEY_LONGOPTS,
		CLI_KMS_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct kms_options ko = { 0 };
	struct vol_access acc;
	struct vol_trust trust;
	struct vol_error e;
	const char *pin = NULL;
	bool insecure = false;
	int c, rc;

	while ((c = cli_getopt(cmd, argc, argv, "h", longopts, &rc)) != -1) {
		if (cli_kms_option(cmd, c, optarg, &ko, &rc) < 0)
			return rc;
		if (c == 'I')
			insecure = true;
		else if (c == 'k')
			pin = optarg;
	}
	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage_error(cmd, "unlock-test takes one VOLUME");
	cli_trust(&trust, insecure, pin);
	rc = vol_unlock_test(argv[optind], &ko, &trust, &acc, &e);
	if (rc)
		return cli_volume_error(argv[optind], rc, &e);
	for (unsigned i = 0; i < e.n_attempts; i++)
		if (e.attempts[i].what == VOL_FAIL_NONE)
			printf("ok: %s unlocks through %s (keyslot %d)\n",
			       argv[optind], e.attempts[i].key_arn,
			       e.attempts[i].keyslot);
	cli_attempts(&e, true);
	return EXIT_OK;
}

const struct cli_cmd cli_cmd_unlock_test = {
	"unlock-test",
	"prove the volume unlocks through its KMS key, now",
	"usage: cmkfs unlock-test VOLUME [--key KEY] [--insecure] [KMS "
	"OPTIONS]\n"
	"\n"
	"For each of the volume's KMS keys (CMKs), unwrap its keyslot secret "
	"through\n"
	"KMS (Decrypt naming the key and the volume's encryption context) and "
	"open\n"
	"its keyslot, without mounting: one line per key that opens it, a "
	"note for\n"
	"each that does not.\n"
	"Exit 0 when one unlocks; otherwise the precise reason: key disabled, "
	"pending\n"
	"deletion, not shared or no longer allowed, deleted or in another "
	"region,\n"
	"token copied from another volume or tampered with, KMS unreachable.\n"
	"The region defaults to the one recorded in the token.  A header that "
	"is\n"
	"not on the allow-list (see README) is refused before any KMS call.\n"
	"\n" CLI_PIN_USAGE CLI_INSECURE_USAGE "\n" CLI_KMS_USAGE "\n"
	"Exit status: 0 unlocks, 1 failure, 3 KMS refused, 4 KMS unreachable.\n",
	run_unlock_test,
};
