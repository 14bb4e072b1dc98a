/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rotate.c — `cmkfs rotate` (move a volume to another CMK, or re-wrap its
 * secret under the same key's newest material; the crash-ordered protocol
 * is volume/rotate.c's) and `cmkfs header-backup` / `header-restore`.
 * Header work only: no data is rewritten, so both are safe on a volume in
 * use.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "volume.h"

static int run_rotate(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		CLI_KEY_LONGOPTS,
		{ "rewrap", no_argument, NULL, 'r' },
		CLI_INSECURE_LONGOPT,
		CLI_KMS_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct kms_options ko = { 0 };
	const char *volume, *new_arn = NULL;
	bool do_rewrap = false, insecure = false;
	struct vol_rotated out;
	struct vol_trust trust;
	struct vol_error ve;
	int c, rc;

	while ((c = cli_getopt(cmd, argc, argv, "h", longopts, &rc)) != -1) {
		if (cli_kms_option(cmd, c, optarg, &ko, &rc) < 0)
			return rc;
		if (c == 'k')
			new_arn = optarg;
		else if (c == 'r')
			do_rewrap = true;
		else if (c == 'I')
			insecure = true;
	}
	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage_error(cmd, "rotate takes one VOLUME");
	if (!new_arn && !do_rewrap)
		return cli_usage_error(cmd, "rotate needs --key NEW, "
					    "--rewrap, or both");
	volume = argv[optind];
	/* --key-arn is the new key: the current one is pinned by
	 * CMKFS_KEY_ARN alone. */
	cli_trust(&trust, insecure, NULL);
	rc = vol_rotate(volume, &ko, new_arn, do_rewrap, &trust, &out, &ve);
	if (rc)
		return cli_volume_error(volume, rc, &ve);
	if (do_rewrap)
		printf("re-wrapped the secret of %s (keyslot %d) under %s\n",
		       volume, out.new_keyslot, out.key_arn);
	else
		printf("rotated %s: keyslot %d now opens through %s; keyslot %d "
		       "of %s destroyed\n",
		       volume, out.new_keyslot, out.key_arn, out.old_keyslot,
		       out.old_key_arn);
	for (unsigned i = 0; i < out.n_removed; i++)
		fprintf(stderr,
			"removed token %d: it covered no keyslot (left by an "
			"interrupted rotation)\n",
			out.removed_tokens[i]);
	return EXIT_OK;
}

const struct cli_cmd cli_cmd_rotate = {
	"rotate",
	"move a volume to another KMS key, or re-wrap its secret",
	"usage: cmkfs rotate VOLUME --key NEW [--insecure] [KMS OPTIONS]\n"
	"       cmkfs rotate VOLUME --rewrap [--key NEW] [--insecure]\n"
	"                    [KMS OPTIONS]\n"
	"\n"
	"Header work only, no data rewritten, safe while the volume is in use.\n"
	"\n"
	"--key NEW moves the volume to another key (an ARN, or a KMIP key,\n"
	"kmip://HOST:PORT/UNIQUE-ID: either kind to either): the current key "
	"must "
	"still\n"
	"unlock it; NEW is checked as 'cmkfs check-key' does; a data key of "
	"NEW\n"
	"opens a new keyslot with its own token; then the old keyslot "
	"and\n"
	"token are destroyed.  A crash at any point leaves a volume that opens "
	"with\n"
	"the old key or the new one.\n"
	"\n"
	"--rewrap re-encrypts the wrapped secret with KMS ReEncrypt (the secret "
	"never\n"
	"leaves KMS): under the same key, it moves to the key's newest material "
	"after\n"
	"a KMS key rotation; with --key, under another key.  Where a KMIP key "
	"is\n"
	"either end, the secret is unwrapped here (in locked memory) and "
	"wrapped again\n"
	"with a fresh IV.\n"
	"\n"
	"The volume's data key (what encrypts the data) is unchanged: rotating "
	"it\n"
	"means re-encrypting all data ('cmkfs reencrypt', mounted or not).\n"
	"\n" CLI_INSECURE_USAGE "\n" CLI_KMS_USAGE,
	run_rotate,
};

/* ---- header backup and restore ---------------------------------------- */

static int run_header(const struct cli_cmd *cmd, int argc, char **argv,
		      bool restore)
{
	struct vol_error e;
	int rc = cli_kms_only_options(cmd, argc, argv,
				      &(struct kms_options){ 0 });

	if (rc >= 0)
		return rc;
	if (argc - optind != 2)
		return cli_usage_error(cmd, "takes VOLUME FILE");
	rc = restore ? vol_header_restore(argv[optind], argv[optind + 1], &e)
		     : vol_header_backup(argv[optind], argv[optind + 1], &e);
	if (rc)
		return cli_volume_error(argv[optind], rc, &e);
	fprintf(stderr, "%s the header of %s %s %s\n",
		restore ? "restored" : "saved", argv[optind],
		restore ? "from" : "to", argv[optind + 1]);
	return EXIT_OK;
}

static int run_header_backup(const struct cli_cmd *cmd, int argc, char **argv)
{
	return run_header(cmd, argc, argv, false);
}

static int run_header_restore(const struct cli_cmd *cmd, int argc, char **argv)
{
	return run_header(cmd, argc, argv, true);
}

const struct cli_cmd cli_cmd_header_backup = {
	"header-backup",
	"save the volume's LUKS2 header (keyslots, tokens) to a file",
	"usage: cmkfs header-backup VOLUME FILE\n"
	"\n"
	"Copy the LUKS2 header of VOLUME — both metadata copies and the "
	"keyslot\n"
	"area — to FILE, which must not exist.  The header holds no secret in "
	"the\n"
	"clear: its keyslots open only with secrets KMS unwraps.\n",
	run_header_backup,
};

const struct cli_cmd cli_cmd_header_restore = {
	"header-restore",
	"restore the volume's LUKS2 header from a backup",
	"usage: cmkfs header-restore VOLUME FILE\n"
	"\n"
	"Write the header saved in FILE back onto VOLUME: the keyslots and "
	"tokens\n"
	"of the backup replace the current ones.  Refused when FILE holds the "
	"header\n"
	"of another volume.\n",
	run_header_restore,
};
