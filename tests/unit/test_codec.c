/* SPDX-License-Identifier: Apache-2.0 */
/* test_codec.c — base64 and hex as the KMS protocol uses them (RFC 4648
 * test vectors, strict decoding). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "crypto.h"

/* RFC 4648 section 10. */
static const char *const rfc4648[][2] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static void b64_rfc4648_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		char enc[16];
		uint8_t dec[16];
		size_t n = strlen(rfc4648[i][0]);

		assert_int_equal(b64_encode(rfc4648[i][0], n, enc),
				 strlen(rfc4648[i][1]));
		assert_string_equal(enc, rfc4648[i][1]);
		assert_int_equal(
			b64_decode(rfc4648[i][1], strlen(rfc4648[i][1]), dec),
			(long)n);
		assert_memory_equal(dec, rfc4648[i][0], n);
	}
}

static void b64_round_trip_all_bytes(void **state)
{
	(void)state;
	uint8_t in[256], out[256];
	char enc[B64_ENCODED_SIZE(256)];

	for (int i = 0; i < 256; i++)
		in[i] = (uint8_t)i;
	for (size_t n = 0; n <= 256; n += 17) {
		size_t len = b64_encode(in, n, enc);

		assert_int_equal(len, B64_ENCODED_SIZE(n) - 1);
		assert_int_equal(b64_decode(enc, len, out), (long)n);
		assert_memory_equal(out, in, n);
	}
}

static void b64_rejects_non_canonical(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"Zg=",	    /* length not a multiple of 4 */
		"Zg==Zg==", /* data after padding */
		"Z===",	    /* three pad characters */
		"Zh==",	    /* non-zero bits under the padding */
		"Zm9=",	    /* likewise, one pad */
		"Zm9v\n",   /* whitespace */
		"Zm-v",	    /* URL-safe alphabet */
		"=Zm9",	    /* padding first */
		"Zm=v",	    /* padding inside */
	};
	uint8_t out[16];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long r = b64_decode(bad[i], strlen(bad[i]), out);

		if (r != -EINVAL)
			fail_msg("'%s' decoded to %ld bytes, want -EINVAL",
				 bad[i], r);
	}
}

/* The decoder maps characters by arithmetic, not by a table: every one of
 * the 256 byte values, in every position of a quantum, decodes to what the
 * RFC 4648 alphabet says, or is refused (padding has its own tests). */
static void b64_every_character(void **state)
{
	(void)state;
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "abcdefghijklmnopqrstuvwxyz0123456789+/";

	for (int c = 0; c < 256; c++) {
		const char *at = c ? strchr(alphabet, c) : NULL;

		for (int pos = 0; pos < 4; pos++) {
			char in[5] = "AAAA";
			uint8_t out[3];
			long r;

			if (c == '=' && pos == 3)
				continue; /* padding: a valid "AAA=" */
			in[pos] = (char)c;
			r = b64_decode(in, 4, out);
			if (!at) {
				if (r != -EINVAL)
					fail_msg("byte %d at %d decoded", c,
						 pos);
				continue;
			}
			assert_int_equal(r, 3);
			/* Its 6 bits, where the position puts them. */
			uint32_t w = (uint32_t)out[0] << 16 |
				     (uint32_t)out[1] << 8 | out[2];
			assert_int_equal((w >> (18 - 6 * pos)) & 63,
					 at - alphabet);
		}
	}
}

static void hex_every_character(void **state)
{
	(void)state;

	for (int c = -128; c < 256; c++) {
		int want = c >= '0' && c <= '9'	  ? c - '0'
			   : c >= 'a' && c <= 'f' ? c - 'a' + 10
			   : c >= 'A' && c <= 'F' ? c - 'A' + 10
						  : -1;

		if (hex_value(c) != want)
			fail_msg("hex_value(%d) = %d, want %d", c, hex_value(c),
				 want);
	}
}

static void hex_encodes_lower_case(void **state)
{
	(void)state;
	char out[9];

	hex_encode("\x00\x9f\xab\xff", 4, out);
	assert_string_equal(out, "009fabff");
	for (int b = 0; b < 256; b++) {
		uint8_t in = (uint8_t)b;
		char want[3];

		snprintf(want, sizeof(want), "%02x", b);
		hex_encode(&in, 1, out);
		assert_string_equal(out, want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(b64_rfc4648_vectors),
		cmocka_unit_test(b64_round_trip_all_bytes),
		cmocka_unit_test(b64_rejects_non_canonical),
		cmocka_unit_test(b64_every_character),
		cmocka_unit_test(hex_every_character),
		cmocka_unit_test(hex_encodes_lower_case),
	};

	return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}
