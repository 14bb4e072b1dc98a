/* SPDX-License-Identifier: Apache-2.0 */
/*
 * errors.c — the one place where a failure becomes words on stderr and an
 * exit code: a negative errno (cli_error), a KMS error (cli_kms_error), a
 * key the CMK rules refuse (cli_key_unfit: what is wrong and how to fix it;
 * for access failures, the key-policy statement to add for the caller's
 * principal), and a volume error (cli_volume_error).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

/* ---- the CMK rules ------------------------------------------------------ */

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

/* A KMIP server's refusal during the check. */
static int kmip_check_failed(const char *prefix, const char *key,
			     const struct vol_key_check *c)
{
	switch (c->kms.status) {
	case KMS_ACCESS_DENIED:
		return cli_kms_error(
			&c->kms,
			"%sthe KMIP server %s refuses this client the key %s "
			"(%s): the key must be owned by, or shared with, the "
			"identity of this client's certificate, and be Active",
			prefix, c->client_region, key, c->step);
	case KMS_NOT_FOUND:
		return cli_kms_error(
			&c->kms,
			"%sthe KMIP server %s has no key %s: check "
			"its unique identifier",
			prefix, c->client_region, key);
	default:
		return cli_kms_error(&c->kms, "%scannot check the key %s (%s)",
				     prefix, key, c->step);
	}
}

/* A KMS failure during the check, worded for this command. */
static int check_failed(const char *prefix, const char *arn,
			const struct vol_key_check *c)
{
	const char *region = c->client_region;
	char who[300];
	int rc;

	if (c->kind == VOL_KEY_KMIP)
		return kmip_check_failed(prefix, arn, c);
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

/* A KMIP State as KMIP names it. */
static const char *kmip_state(int64_t s)
{
	static const char *const names[] = {
		"?",
		"Pre-Active",
		"Active",
		"Deactivated",
		"Compromised",
		"Destroyed",
		"Destroyed Compromised",
	};

	return s > 0 && s < 7 ? names[s] : "in an unknown state";
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
		if (c->kind == VOL_KEY_KMIP)
			return cli_error(0,
					 "%s'%s' is not a KMIP key name "
					 "(kmip://HOST:PORT/UNIQUE-ID)",
					 prefix, arn);
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
				 "%sthe key's service decrypted the test "
				 "secret of %s to something else: this is not "
				 "a service to trust",
				 prefix, arn);
	case VOL_KEY_NOT_AES256:
		return cli_error(
			0,
			"%sthe KMIP object %s is not a symmetric "
			"AES-256 key (Object Type %s, Cryptographic "
			"Algorithm %lld, Length %lld): create one with "
			"algorithm AES and length 256",
			prefix, arn,
			c->kmip.object_type == 2 ? "Symmetric Key" : "other",
			(long long)c->kmip.algorithm,
			(long long)c->kmip.length);
	case VOL_KEY_NOT_ACTIVE:
		return cli_error(0, "%sthe KMIP key %s is %s, not Active: %s",
				 prefix, arn, kmip_state(c->kmip.state),
				 c->kmip.state == 1
					 ? "activate it on the server"
					 : "a key out of the Active state "
					   "never wraps again; use another");
	case VOL_KEY_USAGE:
		return cli_error(0,
				 "%sthe KMIP key %s may not be used to "
				 "Encrypt and Decrypt (Cryptographic Usage "
				 "Mask 0x%llx): create it with both",
				 prefix, arn,
				 (unsigned long long)c->kmip.usage_mask);
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

/* ---- volumes --------------------------------------------------------------
 */

void cli_attempts(const struct vol_error *e, bool all)
{
	for (unsigned i = 0; i < e->n_attempts; i++) {
		const struct vol_attempt *a = &e->attempts[i];

		if (a->what != VOL_FAIL_NONE && (all || i))
			fprintf(stderr, "cmkfs: note: %s did not open it: %s\n",
				a->key_arn[0] ? a->key_arn : "a token",
				a->reason);
	}
}

/* Not one aws-kms token opened the volume: the first one's failure says
 * why (and the exit code), then every other one's. */
static int unlock_failed(const char *volume, const struct vol_error *e)
{
	char why[900];
	int rc;

	vol_failure_reason(e, why, sizeof(why));
	if (e->what == VOL_FAIL_UNWRAP)
		rc = cli_kms_error(&e->kms, "cannot unlock %s: %s", volume,
				   why);
	else
		rc = cli_error(0, "cannot unlock %s: %s", volume, why);
	cli_attempts(e, false);
	return rc;
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
	case VOL_FAIL_KEYSLOT:
	case VOL_FAIL_BINDING:
		return unlock_failed(volume, e);
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
