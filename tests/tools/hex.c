/* SPDX-License-Identifier: Apache-2.0 */
/* hex.c — hex decoding into fresh buffers, for test programs. */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "hex.h"

uint8_t *hex_decode(const char *s, size_t *len)
{
	size_t n = strlen(s);
	uint8_t *out;

	if (n % 2)
		return NULL;
	out = malloc(n / 2 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(out);
			return NULL;
		}
		out[i] = (uint8_t)((unsigned)hi << 4 | (unsigned)lo);
	}
	*len = n / 2;
	return out;
}
