/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_luks2_json.c — libFuzzer target for what cmkfs reads itself from a
 * LUKS2 header's JSON metadata, which anyone who can write the volume file
 * can rewrite: the allow-list (crypto/luks2/allow.c, hdr_json_allowed) and
 * the token parser (volume/token.c, vol_token_parse: aws-kms and kmip).  The
 * input is the JSON followed by one byte of mode (its low two bits are the
 * allow-list's flags).  Must never crash, read out of bounds, leak or hang.
 *
 * Invariants: a header the allow-list accepts leaves its reason empty, one
 * it refuses gets a terminated, non-empty reason; a parsed token has a
 * ciphertext, keyslots in 0..31 and one to VOL_TOKEN_MAX_CONTEXT context
 * pairs, all terminated; a kmip token a server and identifier on the
 * allow-list, a port, and a secret-sized ciphertext.
 *
 * Seeds (corpus/fuzz_luks2_json/): the metadata of a volume `cryptsetup
 * luksFormat --type luks2` (2.6.1) made with cmkfs's parameters, with and
 * without an aws-kms token, and that token alone; a kmip token.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hdr.h"
#include "volume.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vol_token t;
	char why[256], *json;
	unsigned flags;
	int r;

	if (!size)
		return 0;
	flags = data[--size] & (HDR_ALLOW_INSECURE | HDR_ALLOW_REENCRYPTING);
	/* An exact-size, terminated copy: a read past the end is caught. */
	json = malloc(size + 1);
	if (!json)
		return 0;
	memcpy(json, data, size);
	json[size] = 0;

	memset(why, 'x', sizeof(why));
	r = hdr_json_allowed(json, size, 64ull << 20, flags, why, sizeof(why));
	if (!memchr(why, 0, sizeof(why)) || (r == 0 && why[0]) ||
	    (r == -22 && !why[0]))
		abort();

	if (vol_token_parse(json, &t, why, sizeof(why)) == 0) {
		if (!t.blob || !t.blob_len || !t.n_context ||
		    t.n_context > VOL_TOKEN_MAX_CONTEXT)
			abort();
		if (t.kind == VOL_KEY_KMIP &&
		    (!vol_kmip_name(t.key_arn, NULL, NULL, NULL) || !t.port ||
		     t.blob_len != VOL_SECRET_BYTES || !t.segment_bound))
			abort();
		for (size_t i = 0; i < t.n_keyslots; i++)
			if (t.keyslots[i] < 0 || t.keyslots[i] > 31)
				abort();
		for (size_t i = 0; i < t.n_context; i++)
			if (strlen(t.context[i].key) > size ||
			    strlen(t.context[i].value) > size)
				abort();
		vol_token_free(&t);
	}
	free(json);
	return 0;
}
