/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keys.c — `cmkfs add-key` and `cmkfs remove-key`: a volume's second (or
 * third...) KMS key, and taking one away (volume/keys.c keeps the crash
 * order).  Header work only, safe on a mounted volume.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "volume.h"

static int run_key_change(const struct cli_cmd *cmd, int argc, char **argv,
			  bool add)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		CLI_KEY_LONGOPTS,
		CLI_INSECURE_LONGOPT,
		CLI_KMS_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct kms_options ko = { 0 };
	const char *volume, *arn = NULL;
	struct vol_key_change out;
	struct vol_trust trust;
	struct vol_error e;
	bool insecure = false;
	int c, rc;

	while ((c = cli_getopt(cmd, argc, argv, "h", longopts, &rc)) != -1) {
		if (cli_kms_option(cmd, c, optarg, &ko, &rc) < 0)
			return rc;
		if (c == 'k')
			arn = optarg;
		else if (c == 'I')
			insecure = true;
	}
	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage_error(cmd, "takes one VOLUME");
	if (!arn)
		return cli_usage_error(cmd, "needs --key KEY");
	volume = argv[optind];
	/* --key-arn is the key added or removed: the one that opens the
	 * volume is pinned by CMKFS_KEY_ARN alone. */
	cli_trust(&trust, insecure, NULL);
	rc = add ? vol_add_key(volume, &ko, arn, &trust, &out, &e)
		 : vol_remove_key(volume, &ko, arn, &trust, &out, &e);
	if (rc)
		return cli_volume_error(volume, rc, &e);
	if (add)
		printf("added %s to %s: keyslot %d, token %d (opened through "
		       "%s)\n",
		       arn, volume, out.keyslots[0], out.tokens[0],
		       out.opened_by);
	else
		printf("removed %s from %s: %u token(s), %u keyslot(s) "
		       "destroyed; it opens through %s\n",
		       arn, volume, out.n_tokens, out.n_keyslots,
		       out.opened_by);
	return EXIT_OK;
}

static int run_add_key(const struct cli_cmd *cmd, int argc, char **argv)
{
	return run_key_change(cmd, argc, argv, true);
}

static int run_remove_key(const struct cli_cmd *cmd, int argc, char **argv)
{
	return run_key_change(cmd, argc, argv, false);
}

const struct cli_cmd cli_cmd_add_key = {
	"add-key",
	"let another KMS key open the volume too",
	"usage: cmkfs add-key VOLUME --key KEY [--insecure] [KMS OPTIONS]\n"
	"\n"
	"A second door: a replica key in another region for disaster recovery, "
	"or a\n"
	"break-glass key in another account or on a KMIP server.  KEY (an ARN "
	"or\n"
	"kmip://HOST:PORT/UNIQUE-ID) is checked as 'cmkfs "
	"check-key'\n"
	"does; a key the volume already has must open it first; then a new "
	"keyslot\n"
	"opened by a fresh secret of KEY (bound to this volume) and its own\n"
	"token are added.  The client asks the region the ARN names.  "
	"A\n"
	"crash at any point leaves a volume that opens as before.  Header work "
	"only,\n"
	"safe while mounted (a mount finds the new key at its next revocation "
	"check\n"
	"that needs it: see --revocation in 'cmkfs help mount').\n"
	"CMKFS_KEY_ARN, when set, pins the key that opens the volume.\n"
	"\n" CLI_INSECURE_USAGE "\n" CLI_KMS_USAGE,
	run_add_key,
};

const struct cli_cmd cli_cmd_remove_key = {
	"remove-key",
	"take a KMS key's access to the volume away",
	"usage: cmkfs remove-key VOLUME --key KEY [--insecure] [KMS "
	"OPTIONS]\n"
	"\n"
	"Remove every token of KEY and the keyslots no other key's "
	"token\n"
	"covers.  KEY itself need not work any more (a lost or deleted key can "
	"be\n"
	"removed), but another of the volume's keys must open it first, so "
	"that\n"
	"removing a key never locks anyone out; the last key is never removed "
	"(use\n"
	"'cmkfs rotate' to move to another).  A crash at any point leaves a "
	"volume\n"
	"that opens.  Header work only.\n"
	"\n" CLI_INSECURE_USAGE "\n" CLI_KMS_USAGE,
	run_remove_key,
};
