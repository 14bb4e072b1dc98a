/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kmip-probe.c — drives the KMIP client (kms/kmip.c) for the tests,
 * printing the kms_status name of each outcome (never key material).
 *
 *   kmip-probe HOST:PORT info UID        Get Attributes: type, algorithm,
 *                                        length, usage mask, state
 *   kmip-probe HOST:PORT wrap UID AAD OUT
 *                                        Encrypt 32 random bytes with AAD;
 *                                        the wrapped secret to OUT, the
 *                                        secret's SHA-256 on stdout
 *   kmip-probe HOST:PORT unwrap UID AAD IN
 *                                        Decrypt IN with AAD; the secret's
 *                                        SHA-256 on stdout
 *
 * The client's certificate, key and CA come from CMKFS_KMIP_CERT,
 * CMKFS_KMIP_KEY and CMKFS_KMIP_CA.  Prints "status=<name>" (the error line
 * on stderr); exits 0 when the status is ok.
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
		fprintf(stderr, "kmip-probe: %s\n", line);
	}
	return err->status == KMS_OK ? 0 : 1;
}

static void print_sha256(const uint8_t *p, size_t n)
{
	uint8_t h[32];

	crypto_sha256(p, n, h);
	printf("sha256=");
	for (size_t i = 0; i < sizeof(h); i++)
		printf("%02x", h[i]);
	printf("\n");
}

int main(int argc, char **argv)
{
	/* The files from the environment, as cmkfs reads it. */
	struct kmip_options o = { 0 };
	struct kmip_client *c = NULL;
	struct kms_error err = { 0 };
	struct kmip_wrapped w;
	char host[256], *colon;
	const char *aad;
	uint8_t *pt = NULL;
	size_t n;
	int r = 0;
	FILE *f;

	if (argc < 4 || strlen(argv[1]) >= sizeof(host) ||
	    !(colon = strrchr(argv[1], ':'))) {
		fprintf(stderr, "usage: kmip-probe HOST:PORT info|wrap|unwrap "
				"UID [AAD FILE] (CMKFS_KMIP_CERT, _KEY, _CA "
				"set)\n");
		return 2;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - argv[1]), argv[1]);
	if (kmip_client_new(&c, host, (unsigned)atoi(colon + 1), &o, &err))
		return report(&err);
	if (!strcmp(argv[2], "info")) {
		struct kmip_key_info ki;

		if (!kmip_get_key_info(c, argv[3], &ki, &err))
			printf("object_type=%lld algorithm=%lld length=%lld "
			       "usage_mask=%lld state=%lld\n",
			       (long long)ki.object_type,
			       (long long)ki.algorithm, (long long)ki.length,
			       (long long)ki.usage_mask, (long long)ki.state);
	} else if (argc == 6 && !strcmp(argv[2], "wrap")) {
		uint8_t secret[32];

		aad = argv[4];
		if (crypto_random(secret, sizeof(secret)))
			return 1;
		r = kmip_encrypt(c, argv[3], secret, sizeof(secret),
				 (const uint8_t *)aad, strlen(aad), &w, &err);
		if (!r) {
			print_sha256(secret, sizeof(secret));
			f = fopen(argv[5], "wb");
			if (!f || fwrite(&w, sizeof(w), 1, f) != 1 || fclose(f))
				return 1;
		}
		secmem_wipe(secret, sizeof(secret));
	} else if (argc == 6 && !strcmp(argv[2], "unwrap")) {
		aad = argv[4];
		f = fopen(argv[5], "rb");
		if (!f || fread(&w, sizeof(w), 1, f) != 1)
			return 1;
		fclose(f);
		r = kmip_decrypt(c, argv[3], &w, (const uint8_t *)aad,
				 strlen(aad), &pt, &n, &err);
		if (!r)
			print_sha256(pt, n);
		secmem_free(pt);
	} else {
		fprintf(stderr, "kmip-probe: unknown request %s\n", argv[2]);
		return 2;
	}
	kmip_client_free(c);
	return report(&err);
}
