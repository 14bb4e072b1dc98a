/* SPDX-License-Identifier: Apache-2.0 */
/*
 * errors.c — the one place where a failure becomes words on stderr and an
 * exit code: a negative errno (cli_error), a KMS error (cli_kms_error), and
 * a volume error (cli_volume_error), which says what the user can do.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "cli.h"
#include "crypto.h"
#include "volume.h"

int cli_error(int err, const char *fmt, ...)
{
	va_list ap;

	fputs("cmkfs: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (err)
		fprintf(stderr, ": %s", crypto_strerror(err));
	fputc('\n', stderr);
	return EXIT_FAIL;
}

int cli_kms_error(const struct kms_error *err, const char *fmt, ...)
{
	char line[900];
	va_list ap;

	fputs("cmkfs: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	kms_error_format(err, line, sizeof(line));
	fprintf(stderr, ": %s\n", line);
	switch (err->status) {
	case KMS_ACCESS_DENIED:
	case KMS_DISABLED:
	case KMS_INVALID_STATE:
	case KMS_NOT_FOUND:
	case KMS_INVALID_CIPHERTEXT:
	case KMS_INCORRECT_KEY:
	case KMS_SIGNATURE:
		return EXIT_KMS_DENIED;
	default:
		return kms_status_transient(err->status) ? EXIT_KMS_UNAVAILABLE
							 : EXIT_FAIL;
	}
}

/* KMS did not unwrap the secret of e->key_arn. */
static int unwrap_failed(const char *volume, const struct vol_error *e)
{
	switch (e->kms.status) {
	case KMS_ACCESS_DENIED:
		return cli_kms_error(&e->kms,
				     "cannot unlock %s: the key %s does not "
				     "let this host decrypt (key policy or "
				     "grant changed, or not shared with this "
				     "account)",
				     volume, e->key_arn);
	case KMS_DISABLED:
		return cli_kms_error(&e->kms,
				     "cannot unlock %s: the key %s is disabled",
				     volume, e->key_arn);
	case KMS_INVALID_STATE:
		return cli_kms_error(&e->kms,
				     "cannot unlock %s: the key %s is pending "
				     "deletion or otherwise unusable",
				     volume, e->key_arn);
	case KMS_NOT_FOUND:
		return cli_kms_error(&e->kms,
				     "cannot unlock %s: the key %s does not "
				     "exist in region %s (deleted, or the "
				     "wrong region)",
				     volume, e->key_arn, e->region);
	case KMS_INVALID_CIPHERTEXT:
	case KMS_INCORRECT_KEY:
		return cli_kms_error(
			&e->kms,
			"cannot unlock %s: its wrapped secret does "
			"not decrypt under %s and the volume's "
			"context (the token was copied from "
			"another volume or tampered with)",
			volume, e->key_arn);
	default:
		return cli_kms_error(&e->kms, "cannot unlock %s through %s",
				     volume, e->key_arn);
	}
}

/* Another cmkfs command holds the volume. */
static int busy(const char *volume, enum vol_conflict c)
{
	switch (c) {
	case VOL_CONFLICT_OFFLINE:
		return cli_error(
			0,
			"%s is being changed offline by another cmkfs "
			"command (reencrypt, header-restore): mount it "
			"when that is done",
			volume);
	case VOL_CONFLICT_MOUNTED:
		return cli_error(0,
				 "%s is mounted: unmount it first "
				 "(cmkfs umount)",
				 volume);
	case VOL_CONFLICT_HEADER_CHANGE:
		break;
	}
	return cli_error(0,
			 "%s is being changed by another cmkfs command "
			 "(rotate, reencrypt, header-restore): try again when "
			 "it is done",
			 volume);
}

int cli_volume_error(const char *volume, int r, const struct vol_error *e)
{
	char size[32];

	switch (e->what) {
	case VOL_FAIL_NONE:
		break;
	case VOL_FAIL_MESSAGE:
		return cli_error(e->with_errno ? r : 0, "%s", e->message);
	case VOL_FAIL_KMS_CLIENT:
		return cli_kms_error(&e->kms, "cannot set up the KMS client");
	case VOL_FAIL_UNWRAP:
		return unwrap_failed(volume, e);
	case VOL_FAIL_KEYSLOT:
		return cli_error(0,
				 "cannot unlock %s: the secret from %s does "
				 "not open its keyslot: %s",
				 volume, e->key_arn, e->message);
	case VOL_FAIL_NO_TOKEN:
		return cli_error(0,
				 "%s has no aws-kms token for any of its "
				 "keyslots: nothing can unlock it through KMS",
				 volume);
	case VOL_FAIL_BUSY:
		return busy(volume, e->conflict);
	case VOL_FAIL_KMS:
		return cli_kms_error(&e->kms, "%s", e->message);
	case VOL_FAIL_KEY_UNFIT:
		return cli_key_unfit(e->message, e->key_arn, r, &e->key);
	case VOL_FAIL_NO_SPACE:
		cli_human_size(e->bytes, size, sizeof(size));
		return cli_error(r, "cannot allocate %s for %s", size, volume);
	}
	return cli_error(r, "%s", volume);
}
