/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kms-probe.c — drives the typed KMS client calls for the tests, printing
 * the kms_status name of each outcome (never key material).
 *
 *   kms-probe roundtrip KEY          GenerateDataKey, Decrypt, ReEncrypt to
 *                                    KEY under another context, Decrypt
 *                                    again; checks the data key survives
 *   kms-probe gdk KEY CTX OUT        GenerateDataKey under {"t": CTX}, the
 *                                    blob to OUT
 *   kms-probe decrypt KEY CTX IN     Decrypt IN under {"t": CTX} (KEY "-":
 *                                    no KeyId)
 *   kms-probe describe KEY           DescribeKey
 *
 * Prints "status=<name>" (and the error line on stderr); exits 0 when the
 * status is ok.  The client is configured from the environment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "kms.h"

static int report(const struct kms_error *err)
{
	char line[900];

	printf("status=%s\n", kms_status_name(err->status));
	if (err->status != KMS_OK) {
		kms_error_format(err, line, sizeof(line));
		fprintf(stderr, "kms-probe: %s\n", line);
	}
	return err->status == KMS_OK ? 0 : 1;
}

static int write_file(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(p, 1, n, f) == n;

	if (f)
		ok = fclose(f) == 0 && ok;
	return ok ? 0 : -1;
}

static uint8_t *read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(65536);

	if (!f || !buf) {
		if (f)
			fclose(f);
		free(buf);
		return NULL;
	}
	*n = fread(buf, 1, 65536, f);
	fclose(f);
	return buf;
}

static int roundtrip(struct kms_client *k, const char *key,
		     struct kms_error *err)
{
	struct kms_kv a = { "t", "first" }, b = { "t", "second" };
	uint8_t *dk = NULL, *blob = NULL, *back = NULL, *blob2 = NULL;
	size_t blen, back_len, blen2;
	int r = -1;

	if (kms_generate_data_key(k, key, &a, 1, 32, &dk, &blob, &blen, err) ||
	    kms_decrypt(k, key, &a, 1, blob, blen, &back, &back_len, err))
		goto out;
	if (back_len != 32 || !secmem_equal(dk, back, 32)) {
		fprintf(stderr, "kms-probe: Decrypt returned another key\n");
		goto out;
	}
	secmem_free(back);
	back = NULL;
	if (kms_re_encrypt(k, key, &a, 1, blob, blen, key, &b, 1, &blob2,
			   &blen2, err) ||
	    kms_decrypt(k, key, &b, 1, blob2, blen2, &back, &back_len, err))
		goto out;
	if (back_len != 32 || !secmem_equal(dk, back, 32)) {
		fprintf(stderr, "kms-probe: ReEncrypt changed the key\n");
		goto out;
	}
	/* the old context no longer opens the re-encrypted blob */
	secmem_free(back);
	back = NULL;
	if (!kms_decrypt(k, key, &a, 1, blob2, blen2, &back, &back_len, err)) {
		fprintf(stderr, "kms-probe: wrong context accepted\n");
		goto out;
	}
	memset(err, 0, sizeof(*err));
	r = 0;
out:
	secmem_free(dk);
	secmem_free(back);
	free(blob);
	free(blob2);
	return r;
}

int main(int argc, char **argv)
{
	struct kms_options opt = { .max_attempts = 2 };
	struct kms_client *k;
	struct kms_error err = { 0 };
	int rc = 2;

	if (argc < 3) {
		fprintf(stderr, "usage: see the comment in kms-probe.c\n");
		return 2;
	}
	if (kms_client_new(&k, &opt, &err))
		return report(&err);
	if (!strcmp(argv[1], "roundtrip")) {
		if (roundtrip(k, argv[2], &err) && err.status == KMS_OK)
			err.status = KMS_PROTOCOL;
		rc = report(&err);
	} else if (!strcmp(argv[1], "gdk") && argc == 5) {
		struct kms_kv ctx = { "t", argv[3] };
		uint8_t *dk, *blob;
		size_t n;

		if (!kms_generate_data_key(k, argv[2], &ctx, 1, 32, &dk, &blob,
					   &n, &err)) {
			if (write_file(argv[4], blob, n))
				err.status = KMS_PROTOCOL;
			secmem_free(dk);
			free(blob);
		}
		rc = report(&err);
	} else if (!strcmp(argv[1], "decrypt") && argc == 5) {
		struct kms_kv ctx = { "t", argv[3] };
		uint8_t *blob, *pt = NULL;
		size_t n, len;

		blob = read_file(argv[4], &n);
		if (!blob) {
			fprintf(stderr, "kms-probe: cannot read %s\n", argv[4]);
		} else {
			kms_decrypt(k, strcmp(argv[2], "-") ? argv[2] : NULL,
				    &ctx, 1, blob, n, &pt, &len, &err);
			secmem_free(pt);
			free(blob);
			rc = report(&err);
		}
	} else if (!strcmp(argv[1], "describe")) {
		struct kms_key_info info;

		if (!kms_describe_key(k, argv[2], &info, &err))
			printf("state=%s origin=%s spec=%s arn=%s\n",
			       info.state, info.origin, info.spec, info.arn);
		rc = report(&err);
	} else {
		fprintf(stderr, "kms-probe: unknown command %s\n", argv[1]);
	}
	kms_client_free(k);
	return rc;
}
