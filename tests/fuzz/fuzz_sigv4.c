/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sigv4.c — libFuzzer target for kms/sigv4.c: arbitrary requests
 * through sigv4_verify (and sigv4_canonical_request), which must never
 * crash, read out of bounds, or accept what it then reports as rejected.
 *
 * Input layout (simple, so that seeds are written by hand):
 *   byte 0    flags: bit 0 normalise paths, bit 1 require x-amz-target to
 *             be signed, bit 2 the credential has a session token, bit 3 it
 *             expires now, bits 4-5 max skew (300 s, 0, 1 day, UINT_MAX)
 *   then      "METHOD\n" "TARGET\n" header lines "Name:value\n" (a line
 *             starting with SP/HT continues the previous value, fold kept),
 *             an empty line, the body.
 * The known credential is the AWS test suite's, and the clock is the
 * suite's, so seeds made from the suite verify successfully.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

/* More than the verifier allows, so its limit is reached. */
enum { MAX_FUZZ_HEADERS = 200 };

#define SUITE_NOW    1440938160 /* 2015-08-30T12:36:00Z */
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_TOKEN                                                            \
	"6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
#define EMPTY_HASH                                                             \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool lookup(void *arg, const char *akid, struct sigv4_credential *out)
{
	const unsigned *flags = arg;

	if (strcmp(akid, "AKIDEXAMPLE") != 0)
		return false;
	out->secret = SUITE_SECRET;
	out->session_token = *flags & 4 ? SUITE_TOKEN : NULL;
	out->expires = *flags & 8 ? SUITE_NOW : 0;
	return true;
}

/* Cut the line at *p (NUL over its '\n') and move *p past it. */
static char *next_line(char **p, char *end)
{
	char *line = *p, *nl = memchr(line, '\n', (size_t)(end - line));

	if (nl) {
		*nl = '\0';
		*p = nl + 1;
	} else {
		*p = end;
	}
	return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const required[] = { "x-amz-target", NULL };
	static const unsigned skews[] = { 300, 0, 86400, UINT32_MAX };
	struct sigv4_header headers[MAX_FUZZ_HEADERS];
	struct sigv4_request req = { 0 };
	struct sigv4_verify_params p = { 0 };
	struct sigv4_result res;
	char *buf, *cur, *end, *value_end = NULL, *canonical = NULL;
	unsigned flags;
	size_t n = 0;
	int r;

	if (size < 1)
		return 0;
	flags = data[0];
	/* A private, NUL-terminated copy: the parse cuts it into strings. */
	buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	cur = buf;
	end = buf + size - 1;

	req.method = next_line(&cur, end);
	req.target = next_line(&cur, end);
	req.body = end;
	while (cur < end) {
		char *line = cur, *nl = memchr(cur, '\n', (size_t)(end - cur));
		char *line_end = nl ? nl : end, *colon;

		cur = nl ? nl + 1 : end;
		if (line_end == line) {
			req.body = cur;
			break;
		}
		if ((*line == ' ' || *line == '\t') && value_end) {
			value_end = line_end;
			continue;
		}
		if (value_end)
			*value_end = '\0';
		value_end = NULL;
		colon = memchr(line, ':', (size_t)(line_end - line));
		if (!colon || n == MAX_FUZZ_HEADERS)
			continue;
		*colon = '\0';
		headers[n].name = line;
		headers[n].value = colon + 1;
		value_end = line_end;
		n++;
	}
	if (value_end)
		*value_end = '\0';
	req.headers = headers;
	req.n_headers = n;
	req.body_len = (size_t)(end - (const char *)req.body);

	p.service = "service";
	p.now = SUITE_NOW;
	p.max_skew = skews[(flags >> 4) & 3];
	p.normalize_path = flags & 1;
	p.required_signed = flags & 2 ? required : NULL;
	p.lookup = lookup;
	p.lookup_arg = &flags;

	r = sigv4_verify(&req, &p, &res);
	/* The result must be consistent and the message a bounded string
	 * without the secret. */
	if ((r == 0) != (res.status == SIGV4_OK) ||
	    (r != 0 && r != -EACCES && r != -ENOMEM && r != -EIO) ||
	    strnlen(res.message, sizeof(res.message)) == sizeof(res.message) ||
	    strstr(res.message, SUITE_SECRET) || !sigv4_status_name(res.status))
		__builtin_trap();

	/* Canonicalisation alone, whatever verify stopped at. */
	if (sigv4_canonical_request(&req, "host", flags & 1, EMPTY_HASH,
				    &canonical) == 0)
		free(canonical);
	free(buf);
	return 0;
}
