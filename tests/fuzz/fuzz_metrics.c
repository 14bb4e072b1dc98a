/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_metrics.c — libFuzzer target for obs/: the metrics endpoint's
 * request parser (every byte of it from a client), and the label escaping
 * of the exposition text (label values are volume paths and mountpoints,
 * which may hold anything).  Must never crash, leak or hang.
 *
 * Invariants checked: the parser answers one of its statuses, and 200 only
 * for GET or HEAD of /metrics; an escaped label set parses back as the
 * pairs given, whatever the values held, and holds only printable ASCII
 * and valid UTF-8.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <locale.h>
#include <wchar.h>

#include "obs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* out must read as exactly volume="...",mountpoint="..." with only
 * printable ASCII, valid UTF-8 and the format's escapes inside the
 * quotes. */
static void check_labels(const char *out)
{
	static const char *const keys[] = { "volume", "mountpoint" };
	const char *c = out;

	for (unsigned k = 0; k < 2; k++) {
		size_t kl = strlen(keys[k]);

		if (k && *c++ != ',')
			abort();
		if (strncmp(c, keys[k], kl) || c[kl] != '=' || c[kl + 1] != '"')
			abort();
		for (c += kl + 2; *c != '"'; c++) {
			if ((unsigned char)*c >= 0x80) {
				/* UTF-8, as the C library reads it. */
				mbstate_t ms = { 0 };
				wchar_t wc;
				size_t u = mbrtowc(&wc, c, 4, &ms);

				if (u == (size_t)-1 || u == (size_t)-2 || !u)
					abort();
				c += u - 1;
				continue;
			}
			if (!*c || (unsigned char)*c < 0x20 || *c == 0x7f)
				abort();
			if (*c == '\\' &&
			    (c[1] == '\\' || c[1] == '"' || c[1] == 'n'))
				c++;
			else if (*c == '\\')
				abort();
		}
		c++;
	}
	if (*c)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), out[128];
	const char *v2;
	unsigned status;
	bool head;

	if (!s)
		return 0;
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		abort();
	/* Not NUL-terminated on purpose: the parser takes a length. */
	memcpy(s, data, size);
	status = obs_http_parse(s, size, &head);
	if (status != 200 && status != 400 && status != 404 && status != 405 &&
	    status != 505)
		abort();
	if (status == 200 && !(size >= 13 && (!memcmp(s, "GET /metrics", 12) ||
					      !memcmp(s, "HEAD /metrics", 13))))
		abort();

	/* The same bytes as two label values (split at the first NUL). */
	s[size] = 0;
	v2 = s + strlen(s) < s + size ? s + strlen(s) + 1 : "";
	if (obs_labels(out, sizeof(out), "volume", s, "mountpoint", v2, NULL) ==
	    0)
		check_labels(out);
	else if (out[0])
		abort();
	free(s);
	return 0;
}
