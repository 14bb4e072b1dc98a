/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_ttlv.c — libFuzzer target for kms/ttlv.c, the KMIP TTLV decoder that
 * reads what a KMIP server sends.  Must never crash, leak or hang.
 *
 * Invariant checked: whatever the decoder accepts, the encoder writes back
 * byte for byte (the format has one encoding per item, and the decoder
 * refuses everything else: non-zero padding, lengths its type does not
 * allow, structures that do not add up).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ttlv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void encode(struct ttlv_enc *e, const struct ttlv *t)
{
	for (; t; t = t->next) {
		if (t->type == TTLV_STRUCTURE) {
			ttlv_begin(e, t->tag);
			encode(e, t->child);
			ttlv_end(e);
		} else {
			ttlv_raw(e, t->tag, t->type, t->val, t->len);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ttlv_items items;
	const struct ttlv *root;
	struct ttlv_enc e = { 0 };
	char why[128];

	if (ttlv_decode(data, size, &items, &root, why, sizeof(why))) {
		if (!why[0])
			abort(); /* a refusal always says why */
		return 0;
	}
	encode(&e, root);
	if (ttlv_enc_done(&e) || e.len != size || memcmp(e.p, data, size))
		abort();
	ttlv_enc_free(&e);
	return 0;
}
