/* SPDX-License-Identifier: Apache-2.0 */
/* test_token.c — the names of KMIP keys and the kmip token (volume/token.c),
 * both read from an untrusted header: what the allow-list takes, what it
 * refuses, and a token built for a binding parsed back to the same fields
 * and the additional data the server authenticates. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../volume/internal.h" /* several modules have an internal.h */
#include "volume.h"

static void names_on_the_allow_list(void **state)
{
	char host[256], uid[256];
	unsigned port;

	(void)state;
	assert_true(vol_kmip_name("kmip://kms.example.com:5696/8f0e-1", host,
				  &port, uid));
	assert_string_equal(host, "kms.example.com");
	assert_int_equal(port, 5696);
	assert_string_equal(uid, "8f0e-1");
	assert_true(
		vol_kmip_name("kmip://10.0.0.7:1/a:b_c.d", NULL, NULL, NULL));
	assert_int_equal(vol_key_kind_of("kmip://x:1/y"), VOL_KEY_KMIP);
	assert_int_equal(vol_key_kind_of("arn:aws:kms:us-east-1:1:key/x"),
			 VOL_KEY_AWS);
}

static void names_refused(void **state)
{
	static const char *const bad[] = {
		"kmip://",
		"kmip://host/uid",		 /* no port */
		"kmip://host:/uid",		 /* empty port */
		"kmip://host:0/uid",		 /* port 0 */
		"kmip://host:65536/uid",	 /* port too big */
		"kmip://host:0443/uid",		 /* leading zero */
		"kmip://host:44x/uid",		 /* not a number */
		"kmip://:5696/uid",		 /* no host */
		"kmip://-host:5696/uid",	 /* a leading dash */
		"kmip://user@host:5696/uid",	 /* userinfo */
		"kmip://[::1]:5696/uid",	 /* brackets */
		"kmip://host:5696/",		 /* no identifier */
		"kmip://host:5696/a/b",		 /* a slash in it */
		"kmip://host:5696/a,b",		 /* a comma: trust lists */
		"kmip://host:5696/a b",		 /* a space */
		"kmip://host:5696/a\"b",	 /* a quote */
		"kmip://host:5696/a\x01",	 /* a control byte */
		"kmip://host:5696/a\xc3\xa9",	 /* not ASCII */
		"KMIP://host:5696/uid",		 /* the scheme is lower case */
		"arn:aws:kms:us-east-1:1:key/x", /* not KMIP's */
	};
	char host[120], name[200];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vol_kmip_name(bad[i], NULL, NULL, NULL))
			fail_msg("took %s", bad[i]);
	memset(host, 'h', 100);
	snprintf(host + 100, sizeof(host) - 100, ":1/u");
	snprintf(name, sizeof(name), "kmip://%s", host);
	assert_false(vol_kmip_name(name, NULL, NULL, NULL)); /* host > 99 */
}

static const struct vol_binding binding = {
	"0b2c6c4e-6c1a-4f4e-9d0b-4b5f3b4a9c11",
	"aes-xts-plain64:512:4096:16777216",
};

/* A kmip token as vol_token_json_kmip writes it. */
static char *built(void)
{
	struct kmip_wrapped w = { .ct_len = VOL_SECRET_BYTES };

	memset(w.iv, 0x11, sizeof(w.iv));
	memset(w.ct, 0x22, w.ct_len);
	memset(w.tag, 0x33, sizeof(w.tag));
	return vol_token_json_kmip("kmip://localhost:5696/42", &binding, &w);
}

static void token_round_trip(void **state)
{
	char *json = built(), why[256], aad[256];
	struct vol_token t;
	uint8_t want[VOL_SECRET_BYTES];
	size_t n;

	(void)state;
	assert_non_null(json);
	assert_int_equal(vol_token_parse(json, &t, why, sizeof(why)), 0);
	assert_int_equal(t.kind, VOL_KEY_KMIP);
	assert_string_equal(t.key_arn, "kmip://localhost:5696/42");
	assert_string_equal(t.host, "localhost");
	assert_int_equal(t.port, 5696);
	assert_string_equal(t.uid, "42");
	assert_true(t.segment_bound);
	assert_int_equal(t.blob_len, VOL_SECRET_BYTES);
	memset(want, 0x22, sizeof(want));
	assert_memory_equal(t.blob, want, sizeof(want));
	assert_int_equal(t.iv[0], 0x11);
	assert_int_equal(t.tag[15], 0x33);
	assert_int_equal(vol_token_matches(&t, &binding, why, sizeof(why)), 0);
	n = vol_kmip_aad(&binding, true, aad, sizeof(aad));
	assert_int_equal(n, strlen(aad));
	assert_string_equal(
		aad, "cmkfs:volume=0b2c6c4e-6c1a-4f4e-9d0b-4b5f3b4a9c11\n"
		     "cmkfs:segment=aes-xts-plain64:512:4096:16777216");
	vol_token_free(&t);
	free(json);
}

/* json with one substitution (from -> to) must be refused with why
 * containing want. */
static void refused(const char *json, const char *from, const char *to,
		    const char *want)
{
	char buf[4096], why[256];
	const char *p = strstr(json, from);
	struct vol_token t;

	assert_non_null(p);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(p - json), json, to,
		 p + strlen(from));
	if (vol_token_parse(buf, &t, why, sizeof(why)) != -EINVAL)
		fail_msg("took %s", buf);
	if (!strstr(why, want))
		fail_msg("%s: said '%s', not '%s'", buf, why, want);
}

static void token_refusals(void **state)
{
	char *json = built();

	(void)state;
	refused(json, "localhost:5696", "evil.example:5696/x", "server");
	refused(json, "localhost:5696", "localhost", "server");
	refused(json, "\"42\"", "\"4,2\"", "unique_identifier");
	refused(json, "\"42\"", "42", "unique_identifier");
	refused(json, "\"iv\":\"", "\"iv\":\"AAAA", "iv");
	refused(json, "\"tag\":\"", "\"tag\":\"AAAA", "tag");
	refused(json, "\"ciphertext\":\"", "\"ciphertext\":\"AAAA",
		"ciphertext is not 32 bytes");
	refused(json, ",\"cmkfs:segment\"", ",\"x\":\"y\",\"cmkfs:segment\"",
		"which cmkfs does not bind");
	refused(json,
		",\"cmkfs:segment\":\"aes-xts-plain64:512:4096:16777216\"", "",
		"lacks cmkfs:volume or cmkfs:segment");
	refused(json, "\"authenticated_data\"", "\"encryption_context\"",
		"no usable authenticated_data");
	free(json);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_on_the_allow_list),
		cmocka_unit_test(names_refused),
		cmocka_unit_test(token_round_trip),
		cmocka_unit_test(token_refusals),
	};

	return cmocka_run_group_tests_name("token", tests, NULL, NULL);
}
