/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rotate.c — `cmkfs rotate` (move a volume to another CMK, or re-wrap its
 * secret under the same key's newest material) and `cmkfs header-backup` /
 * `header-restore`.  Header work only: no data is rewritten, so both are
 * safe on a volume in use.
 *
 * Crash safety of a move to another key: every step is one LUKS2 header
 * write (libcryptsetup writes both header copies with a sequence number),
 * and the steps are ordered so that after each one the volume opens with the
 * old CMK or the new one:
 *   1. new keyslot opened by a data key of the new CMK   (old still works)
 *   2. aws-kms token for it                              (both work)
 *   3. old token removed                                 (new works)
 *   4. old keyslot destroyed                             (new works)
 * The token goes before its keyslot so that no token ever names a keyslot
 * number that a later rotation may reuse.  A crash between 1 and 2, or 3
 * and 4, leaves a keyslot no token covers: `status` flags it, and it opens
 * only with a secret no token keeps any more.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "crypto.h"

/* Remove aws-kms tokens that cover no active keyslot: the leftovers of a
 * rotation interrupted between steps 3 and 4. */
static void remove_dangling_tokens(struct vol *v)
{
	struct vol_info info = { 0 };
	char err[512];

	if (vol_info(v, &info))
		return;
	for (unsigned i = 0; i < info.n_tokens; i++) {
		struct kms_token t;
		const char *json;
		bool live;

		if (vol_token_json(v, info.tokens[i], &json) ||
		    kms_token_parse(json, &t, NULL, 0))
			continue;
		live = cli_token_live(&info, &t);
		kms_token_free(&t);
		if (!live &&
		    !vol_token_remove(v, info.tokens[i], err, sizeof(err)))
			fprintf(stderr,
				"removed token %d: it covered no keyslot "
				"(left by an interrupted rotation)\n",
				info.tokens[i]);
	}
}

/* Steps 1-4 above. */
static int move_to_key(struct vol *v, const struct vol_info *info,
		       const struct kms_options *ko, const char *volume,
		       struct unlocked *u, const char *new_arn)
{
	struct kms_options nko = *ko;
	struct kms_client *k = NULL;
	struct kms_error kerr;
	uint8_t *secret = NULL;
	char *token = NULL, err[512], what[4200], region[64];
	int rc, slot, id;

	if (!strcmp(new_arn, u->token.key_arn))
		return cli_error(0,
				 "%s is already bound to %s: use --rewrap to "
				 "re-wrap its secret under the key's newest "
				 "material",
				 volume, new_arn);
	if (!nko.region && kms_arn_region(new_arn, region, sizeof(region)))
		nko.region = region;
	rc = cli_kms_client(&nko, &k);
	if (rc)
		return rc;
	snprintf(what, sizeof(what), "cannot rotate %s", volume);
	rc = cli_check_key(k, new_arn, true, what);
	if (rc)
		goto out;
	if (kms_volume_secret_new(k, new_arn, info->uuid, &secret, &token,
				  &kerr)) {
		rc = cli_kms_error(&kerr,
				   "cannot rotate %s: no data key from %s",
				   volume, new_arn);
		goto out;
	}
	rc = EXIT_FAIL;
	if (vol_keyslot_add(v, u->vk, u->vk_len, secret, KMS_SECRET_BYTES,
			    &slot, err, sizeof(err))) {
		cli_error(0,
			  "cannot rotate %s: %s (the volume still opens with "
			  "%s)",
			  volume, err, u->token.key_arn);
		goto out;
	}
	if (vol_token_add(v, token, slot, &id, err, sizeof(err))) {
		char ignored[512];

		/* No keyslot without its token. */
		vol_keyslot_destroy(v, slot, ignored, sizeof(ignored));
		cli_error(0,
			  "cannot rotate %s: %s (the volume still opens with "
			  "%s)",
			  volume, err, u->token.key_arn);
		goto out;
	}
	if (vol_token_remove(v, u->token_id, err, sizeof(err)) ||
	    vol_keyslot_destroy(v, u->keyslot, err, sizeof(err))) {
		cli_error(0,
			  "rotated %s to %s, but cannot remove the old "
			  "keyslot %d: %s",
			  volume, new_arn, u->keyslot, err);
		goto out;
	}
	printf("rotated %s: keyslot %d now opens through %s; keyslot %d of %s "
	       "destroyed\n",
	       volume, slot, new_arn, u->keyslot, u->token.key_arn);
	rc = EXIT_OK;
out:
	secmem_free(secret);
	free(token);
	kms_client_free(k);
	return rc;
}

/* ReEncrypt the token's blob (to new_arn, or the same key): the new token
 * first, then the old one removed — both open the same keyslot. */
static int rewrap(struct vol *v, const struct vol_info *info,
		  const struct kms_options *ko, const char *volume,
		  struct unlocked *u, const char *new_arn)
{
	struct kms_options tko = *ko;
	struct kms_client *k = NULL;
	struct kms_error kerr;
	char *token = NULL, err[512];
	int rc, id;

	if (!tko.region)
		tko.region = u->token.region;
	rc = cli_kms_client(&tko, &k);
	if (rc)
		return rc;
	if (new_arn) {
		char what[4200];

		snprintf(what, sizeof(what), "cannot re-wrap %s", volume);
		rc = cli_check_key(k, new_arn, true, what);
		if (rc)
			goto out;
	}
	if (kms_volume_rewrap(k, &u->token, info->uuid, new_arn, &token,
			      &kerr)) {
		rc = cli_kms_error(&kerr, "cannot re-wrap the secret of %s",
				   volume);
		goto out;
	}
	rc = EXIT_FAIL;
	if (vol_token_add(v, token, u->keyslot, &id, err, sizeof(err)) ||
	    vol_token_remove(v, u->token_id, err, sizeof(err))) {
		cli_error(0, "cannot re-wrap the secret of %s: %s", volume,
			  err);
		goto out;
	}
	printf("re-wrapped the secret of %s (keyslot %d) under %s\n", volume,
	       u->keyslot, new_arn ? new_arn : u->token.key_arn);
	rc = EXIT_OK;
out:
	free(token);
	kms_client_free(k);
	return rc;
}

static int run_rotate(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "key-arn", required_argument, NULL, 'k' },
		{ "rewrap", no_argument, NULL, 'r' },
		CLI_KMS_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct kms_options ko = { 0 };
	const char *volume, *new_arn = NULL;
	bool do_rewrap = false;
	struct vol_info info = { 0 };
	struct unlocked u = { 0 };
	struct vol *v = NULL;
	int c, rc, fd = -1;

	while ((c = cli_getopt(cmd, argc, argv, "h", longopts, &rc)) != -1) {
		if (cli_kms_option(cmd, c, optarg, &ko, &rc) < 0)
			return rc;
		if (c == 'k')
			new_arn = optarg;
		else if (c == 'r')
			do_rewrap = true;
	}
	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage_error(cmd, "rotate takes one VOLUME");
	if (!new_arn && !do_rewrap)
		return cli_usage_error(cmd, "rotate needs --key-arn NEW, "
					    "--rewrap, or both");
	volume = argv[optind];
	rc = cli_volume_lock(volume, CLI_LOCK_HEADER, &fd);
	if (rc)
		return rc;
	rc = cli_volume_open(volume, 0, &v, &info);
	if (rc)
		goto out;
	/* Proof that the current key still opens the volume, and the volume
	 * key the new keyslot needs. */
	rc = cli_volume_unlock(v, &info, &ko, volume, &u);
	if (rc)
		goto out;
	rc = do_rewrap ? rewrap(v, &info, &ko, volume, &u, new_arn)
		       : move_to_key(v, &info, &ko, volume, &u, new_arn);
	if (!rc)
		remove_dangling_tokens(v);
out:
	cli_unlocked_free(&u);
	vol_close(v);
	if (fd >= 0)
		close(fd);
	return rc;
}

const struct cli_cmd cli_cmd_rotate = {
	"rotate",
	"move a volume to another KMS key, or re-wrap its secret",
	"usage: cmkfs rotate VOLUME --key-arn NEW [KMS OPTIONS]\n"
	"       cmkfs rotate VOLUME --rewrap [--key-arn NEW] [KMS OPTIONS]\n"
	"\n"
	"Header work only, no data rewritten, safe while the volume is in use.\n"
	"\n"
	"--key-arn NEW moves the volume to another CMK: the current key must "
	"still\n"
	"unlock it; NEW is checked as 'cmkfs check-key' does; a data key of "
	"NEW\n"
	"opens a new keyslot with its own aws-kms token; then the old keyslot "
	"and\n"
	"token are destroyed.  A crash at any point leaves a volume that opens "
	"with\n"
	"the old key or the new one.\n"
	"\n"
	"--rewrap re-encrypts the wrapped secret with KMS ReEncrypt (the secret "
	"never\n"
	"leaves KMS): under the same key, it moves to the key's newest material "
	"after\n"
	"a KMS key rotation; with --key-arn, under another key.\n"
	"\n"
	"The volume's data key (what encrypts the data) is unchanged: rotating "
	"it\n"
	"means re-encrypting all data ('cmkfs reencrypt', coming).\n"
	"\n" CLI_KMS_USAGE,
	run_rotate,
};

/* ---- header backup and restore ---------------------------------------- */

/* Does the volume carry the blank mark now?  Not when its header does not
 * open (a damaged one is what a restore is for). */
static bool carries_blank_mark(const char *volume)
{
	struct vol *v = NULL;
	char err[512];
	bool blank;

	if (vol_open_flags(volume, VOL_OPEN_REENCRYPTING, &v, err, sizeof(err)))
		return false;
	blank = vol_is_blank(v);
	vol_close(v);
	return blank;
}

static int header_restore(const char *volume, const char *file)
{
	char err[512];
	bool was_blank;
	int fd = -1, rc;

	rc = cli_volume_lock(volume, CLI_LOCK_OFFLINE, &fd);
	if (rc)
		return rc;
	/* A backup made before the volume was first written carries its
	 * blank mark: it survives only onto a volume that still has one (never
	 * written since). */
	was_blank = carries_blank_mark(volume);
	if (was_blank)
		rc = vol_header_restore(volume, file, err, sizeof(err));
	else
		rc = vol_header_restore_unblank(volume, file, err, sizeof(err));
	close(fd);
	if (rc)
		return cli_error(0, "%s", err);
	fprintf(stderr, "restored the header of %s from %s\n", volume, file);
	return EXIT_OK;
}

static int run_header(const struct cli_cmd *cmd, int argc, char **argv,
		      bool restore)
{
	char err[512];
	int rc = cli_kms_only_options(cmd, argc, argv,
				      &(struct kms_options){ 0 });

	if (rc >= 0)
		return rc;
	if (argc - optind != 2)
		return cli_usage_error(cmd, "takes VOLUME FILE");
	if (restore)
		return header_restore(argv[optind], argv[optind + 1]);
	if (vol_header_backup(argv[optind], argv[optind + 1], err, sizeof(err)))
		return cli_error(0, "%s", err);
	fprintf(stderr, "saved the header of %s to %s\n", argv[optind],
		argv[optind + 1]);
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
