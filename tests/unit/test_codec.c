/* SPDX-License-Identifier: Apache-2.0 */
/* test_codec.c — base64 and hex as the KMS protocol uses them (RFC 4648
 * test vectors, strict decoding). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"

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

static void hex_encodes_lower_case(void **state)
{
	(void)state;
	char out[9];

	hex_encode("\x00\x9f\xab\xff", 4, out);
	assert_string_equal(out, "009fabff");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(b64_rfc4648_vectors),
		cmocka_unit_test(b64_round_trip_all_bytes),
		cmocka_unit_test(b64_rejects_non_canonical),
		cmocka_unit_test(hex_encodes_lower_case),
	};

	return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}
