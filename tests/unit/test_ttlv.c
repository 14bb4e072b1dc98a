/* SPDX-License-Identifier: Apache-2.0 */
/* test_ttlv.c — KMIP's TTLV encoding (kms/ttlv.c): every type encoded as
 * the format lays it out (tag, type, big-endian length, value padded with
 * zeros to 8 bytes), decoded back, and the decoder's refusals of what is
 * not exactly the format.  The expected bytes are worked out from the
 * format's rules here, field by field. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ttlv.h"

#define TAG 0x420020u

static struct ttlv_items items;

/* Encode one item with fn, compare with want, decode it back. */
static const struct ttlv *round_trip(struct ttlv_enc *e, const uint8_t *want,
				     size_t n)
{
	const struct ttlv *root;
	char why[128];

	assert_int_equal(ttlv_enc_done(e), 0);
	assert_int_equal(e->len, n);
	assert_memory_equal(e->p, want, n);
	assert_int_equal(ttlv_decode(want, n, &items, &root, why, sizeof(why)),
			 0);
	assert_int_equal(root->tag, TAG);
	return root;
}

static void encodes_every_type(void **state)
{
	struct ttlv_enc e = { 0 };
	const struct ttlv *t;

	(void)state;
	/* Integer 8: 4 bytes of value, 4 of padding. */
	static const uint8_t i8[] = { 0x42, 0x00, 0x20, 0x02, 0, 0, 0, 4,
				      0,    0,	  0,	8,    0, 0, 0, 0 };
	ttlv_int(&e, TAG, 8);
	t = round_trip(&e, i8, sizeof(i8));
	assert_int_equal(t->type, TTLV_INTEGER);
	assert_int_equal(t->num, 8);
	ttlv_enc_free(&e);

	/* Integer -2: two's complement, sign kept on decoding. */
	static const uint8_t im2[] = { 0x42, 0x00, 0x20, 0x02, 0, 0, 0, 4,
				       0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0 };
	ttlv_int(&e, TAG, -2);
	assert_int_equal(round_trip(&e, im2, sizeof(im2))->num, -2);
	ttlv_enc_free(&e);

	/* Long 0x0102030405060708. */
	static const uint8_t l[] = { 0x42, 0x00, 0x20, 0x03, 0, 0, 0, 8,
				     1,	   2,	 3,    4,    5, 6, 7, 8 };
	ttlv_long(&e, TAG, 0x0102030405060708);
	assert_int_equal(round_trip(&e, l, sizeof(l))->num, 0x0102030405060708);
	ttlv_enc_free(&e);

	/* Enumeration 255. */
	static const uint8_t en[] = { 0x42, 0x00, 0x20, 0x05, 0, 0, 0, 4,
				      0,    0,	  0,	0xff, 0, 0, 0, 0 };
	ttlv_enum(&e, TAG, 255);
	assert_int_equal(round_trip(&e, en, sizeof(en))->num, 255);
	ttlv_enc_free(&e);

	/* Boolean true: 8 bytes. */
	static const uint8_t b[] = { 0x42, 0x00, 0x20, 0x06, 0, 0, 0, 8,
				     0,	   0,	 0,    0,    0, 0, 0, 1 };
	ttlv_bool(&e, TAG, true);
	assert_int_equal(round_trip(&e, b, sizeof(b))->num, 1);
	ttlv_enc_free(&e);

	/* Text "Hello World": 11 bytes, 5 of padding. */
	static const uint8_t tx[] = { 0x42, 0x00, 0x20, 0x07, 0,   0,
				      0,    11,	  'H',	'e',  'l', 'l',
				      'o',  ' ',  'W',	'o',  'r', 'l',
				      'd',  0,	  0,	0,    0,   0 };
	ttlv_text(&e, TAG, "Hello World");
	t = round_trip(&e, tx, sizeof(tx));
	assert_int_equal(t->len, 11);
	assert_memory_equal(t->val, "Hello World", 11);
	ttlv_enc_free(&e);

	/* Bytes 01 02 03. */
	static const uint8_t by[] = { 0x42, 0x00, 0x20, 0x08, 0, 0, 0, 3,
				      1,    2,	  3,	0,    0, 0, 0, 0 };
	ttlv_bytes(&e, TAG, "\x01\x02\x03", 3);
	assert_int_equal(round_trip(&e, by, sizeof(by))->len, 3);
	ttlv_enc_free(&e);

	/* An empty byte string: a header alone. */
	static const uint8_t none[] = { 0x42, 0x00, 0x20, 0x08, 0, 0, 0, 0 };
	ttlv_bytes(&e, TAG, NULL, 0);
	assert_int_equal(round_trip(&e, none, sizeof(none))->len, 0);
	ttlv_enc_free(&e);

	/* Date-Time 2008-03-14 11:56:40 UTC = 1205495800 = 0x47DA67F8. */
	static const uint8_t dt[] = { 0x42, 0x00, 0x20, 0x09, 0, 0,
				      0,    8,	  0,	0,    0, 0,
				      0x47, 0xda, 0x67, 0xf8 };
	ttlv_date_time(&e, TAG, 1205495800);
	assert_int_equal(round_trip(&e, dt, sizeof(dt))->num, 1205495800);
	ttlv_enc_free(&e);

	/* Interval 10 days = 864000 s = 0x000D2F00. */
	static const uint8_t iv[] = { 0x42, 0x00, 0x20, 0x0a, 0, 0, 0, 4,
				      0,    0x0d, 0x2f, 0,    0, 0, 0, 0 };
	ttlv_interval(&e, TAG, 864000);
	assert_int_equal(round_trip(&e, iv, sizeof(iv))->num, 864000);
	ttlv_enc_free(&e);
}

static void encodes_structures(void **state)
{
	struct ttlv_enc e = { 0 };
	const struct ttlv *s, *t;

	(void)state;
	/* { Enumeration 254 tagged 420004, Integer 255 tagged 420005 }:
	 * the structure's length is its two items, 16 bytes each. */
	static const uint8_t want[] = {
		0x42, 0x00, 0x20, 0x01, 0,    0,    0,	  0x20, 0x42, 0x00,
		0x04, 0x05, 0,	  0,	0,    4,    0,	  0,	0,    0xfe,
		0,    0,    0,	  0,	0x42, 0x00, 0x05, 0x02, 0,    0,
		0,    4,    0,	  0,	0,    0xff, 0,	  0,	0,    0,
	};
	ttlv_begin(&e, TAG);
	ttlv_enum(&e, 0x420004, 254);
	ttlv_int(&e, 0x420005, 255);
	ttlv_end(&e);
	s = round_trip(&e, want, sizeof(want));
	assert_int_equal(s->type, TTLV_STRUCTURE);
	t = ttlv_find(s, 0x420005);
	assert_non_null(t);
	assert_int_equal(t->num, 255);
	assert_int_equal(ttlv_find(s, 0x420004)->num, 254);
	assert_null(ttlv_find(s, 0x420006));
	assert_null(ttlv_find_next(t, 0x420005));
	assert_int_equal(ttlv_message_size(want), sizeof(want));
	ttlv_enc_free(&e);

	/* Nested to the limit, and one deeper. */
	for (unsigned i = 0; i < TTLV_MAX_DEPTH; i++)
		ttlv_begin(&e, TAG);
	for (unsigned i = 0; i < TTLV_MAX_DEPTH; i++)
		ttlv_end(&e);
	assert_int_equal(ttlv_enc_done(&e), 0);
	ttlv_enc_free(&e);
	for (unsigned i = 0; i <= TTLV_MAX_DEPTH; i++)
		ttlv_begin(&e, TAG);
	assert_int_equal(ttlv_enc_done(&e), -E2BIG);
	ttlv_enc_free(&e);

	/* Unbalanced, and a tag over 24 bits. */
	ttlv_begin(&e, TAG);
	assert_int_equal(ttlv_enc_done(&e), -EINVAL);
	ttlv_enc_free(&e);
	ttlv_end(&e);
	assert_int_equal(ttlv_enc_done(&e), -EINVAL);
	ttlv_enc_free(&e);
	ttlv_int(&e, 0x1000000, 1);
	assert_int_equal(ttlv_enc_done(&e), -EINVAL);
	ttlv_enc_free(&e);
}

static int decode(const uint8_t *p, size_t n)
{
	const struct ttlv *root;
	char why[128];
	int r = ttlv_decode(p, n, &items, &root, why, sizeof(why));

	if (r)
		assert_true(why[0] != 0);
	return r;
}

static void refuses_what_is_not_the_format(void **state)
{
	uint8_t m[64];

	(void)state;
	static const uint8_t i8[] = { 0x42, 0x00, 0x20, 0x02, 0, 0, 0, 4,
				      0,    0,	  0,	8,    0, 0, 0, 0 };
	assert_int_equal(decode(i8, sizeof(i8)), 0);
	/* Truncated anywhere. */
	for (size_t n = 1; n < sizeof(i8); n++)
		assert_int_equal(decode(i8, n), -EBADMSG);
	/* Trailing bytes: a second, partial item. */
	memcpy(m, i8, sizeof(i8));
	memset(m + 16, 0, 8);
	assert_int_equal(decode(m, 20), -EBADMSG);
	/* Two items at the top: not one message. */
	memcpy(m + 16, i8, sizeof(i8));
	assert_int_equal(decode(m, 32), -EBADMSG);
	/* Padding that is not zero. */
	memcpy(m, i8, sizeof(i8));
	m[15] = 1;
	assert_int_equal(decode(m, 16), -EBADMSG);
	/* An Integer of 8 bytes, an unknown type, type 0. */
	memcpy(m, i8, sizeof(i8));
	m[7] = 8;
	assert_int_equal(decode(m, 16), -EBADMSG);
	memcpy(m, i8, sizeof(i8));
	m[3] = 0x0b;
	assert_int_equal(decode(m, 16), -EBADMSG);
	m[3] = 0;
	assert_int_equal(decode(m, 16), -EBADMSG);
	/* A Boolean of 2. */
	static const uint8_t b2[] = { 0x42, 0x00, 0x20, 0x06, 0, 0, 0, 8,
				      0,    0,	  0,	0,    0, 0, 0, 2 };
	assert_int_equal(decode(b2, sizeof(b2)), -EBADMSG);
	/* A Big Integer of 4 bytes. */
	static const uint8_t bi[] = { 0x42, 0x00, 0x20, 0x04, 0, 0, 0, 4,
				      0,    0,	  0,	1,    0, 0, 0, 0 };
	assert_int_equal(decode(bi, sizeof(bi)), -EBADMSG);
	/* A length of 4 GiB - 1: longer than anything. */
	memcpy(m, i8, sizeof(i8));
	m[3] = TTLV_BYTES;
	memset(m + 4, 0xff, 4);
	assert_int_equal(decode(m, 16), -EBADMSG);
	/* A structure whose length overruns its item, or stops inside one. */
	static const uint8_t s[] = { 0x42, 0x00, 0x20, 0x01, 0, 0, 0, 0x18,
				     0x42, 0x00, 0x04, 0x02, 0, 0, 0, 4,
				     0,	   0,	 0,    1,    0, 0, 0, 0 };
	assert_int_equal(decode(s, sizeof(s)), -EBADMSG);
	memcpy(m, s, sizeof(s));
	m[7] = 0x08;
	assert_int_equal(decode(m, 16), -EBADMSG);
	m[7] = 0x10; /* what it should say */
	assert_int_equal(decode(m, sizeof(s)), 0);
	/* The header of a message: only a structure, within the limit. */
	assert_int_equal(ttlv_message_size(i8), 0);
	memcpy(m, s, 8);
	m[4] = 0x10; /* 256 MiB */
	assert_int_equal(ttlv_message_size(m), 0);
}

static void refuses_too_deep_or_too_many(void **state)
{
	uint8_t *m = calloc(1, 8 * (TTLV_MAX_ITEMS + 2));
	size_t depth = TTLV_MAX_DEPTH + 2;

	(void)state;
	assert_non_null(m);
	/* Structures nested one deeper than the limit: each holds the
	 * next, the innermost nothing. */
	for (size_t i = 0; i < depth; i++) {
		uint8_t *h = m + 8 * i;

		h[0] = 0x42;
		h[2] = 0x20;
		h[3] = TTLV_STRUCTURE;
		h[7] = (uint8_t)(8 * (depth - 1 - i));
	}
	assert_int_equal(decode(m, 8 * depth), -E2BIG);
	assert_int_equal(decode(m + 16, 8 * (depth - 2)), 0);
	/* A structure of one item too many (empty byte strings). */
	memset(m, 0, 8 * (TTLV_MAX_ITEMS + 2));
	m[0] = 0x42;
	m[3] = TTLV_STRUCTURE;
	m[4] = (uint8_t)((8 * TTLV_MAX_ITEMS) >> 24);
	m[5] = (uint8_t)((8 * TTLV_MAX_ITEMS) >> 16);
	m[6] = (uint8_t)((8 * TTLV_MAX_ITEMS) >> 8);
	m[7] = (uint8_t)(8 * TTLV_MAX_ITEMS);
	for (size_t i = 1; i <= TTLV_MAX_ITEMS; i++) {
		m[8 * i] = 0x42;
		m[8 * i + 3] = TTLV_BYTES;
	}
	assert_int_equal(decode(m, 8 * (TTLV_MAX_ITEMS + 1)), -E2BIG);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(encodes_every_type),
		cmocka_unit_test(encodes_structures),
		cmocka_unit_test(refuses_what_is_not_the_format),
		cmocka_unit_test(refuses_too_deep_or_too_many),
	};

	return cmocka_run_group_tests_name("ttlv", tests, NULL, NULL);
}
