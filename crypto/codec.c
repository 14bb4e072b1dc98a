/* SPDX-License-Identifier: Apache-2.0 */
/*
 * codec.c — base64 and hex (crypto.h, "Encodings") in constant time: the
 * bytes they carry are often key material (a KMS plaintext, a data key), so
 * no table is indexed by a data byte and no branch depends on one.  Each
 * character is mapped by arithmetic on masks: for a range test,
 * ((lo - 1 - c) & (c - (hi + 1))) is negative exactly when lo <= c <= hi,
 * and an arithmetic right shift (what gcc and clang do for int) turns that
 * into an all-ones or all-zeros mask.  Only lengths and the position of the
 * padding, which are public, steer the control flow; whether a string was
 * valid is decided once, after the whole string was read.
 */
#include <errno.h>
#include <limits.h>

#include "crypto.h"

/* -1 (all ones) when x < 0, else 0. */
static int neg_mask(int x)
{
	return x >> (sizeof(int) * CHAR_BIT - 1);
}

/* -1 when lo <= c <= hi, else 0. */
static int in_range(int c, int lo, int hi)
{
	return neg_mask((lo - 1 - c) & (c - (hi + 1)));
}

/* The base64 character of a 6-bit value. */
static char b64_char(unsigned v)
{
	int x = (int)v, c = x + 'A';

	c += neg_mask(25 - x) & ('a' - 'A' - 26);	 /* 26..: a-z */
	c -= neg_mask(51 - x) & ('a' - 26 - ('0' - 52)); /* 52..: 0-9 */
	c -= neg_mask(61 - x) & ('0' - 52 + 62 - '+');	 /* 62: + */
	c += neg_mask(62 - x) & ('/' - '+' - 1);	 /* 63: / */
	return (char)c;
}

/* The value of a base64 character, or -1. */
static int b64_value(unsigned char ch)
{
	int c = ch, v = -1;

	v += in_range(c, 'A', 'Z') & (c - 'A' + 1);
	v += in_range(c, 'a', 'z') & (c - 'a' + 26 + 1);
	v += in_range(c, '0', '9') & (c - '0' + 52 + 1);
	v += in_range(c, '+', '+') & (62 + 1);
	v += in_range(c, '/', '/') & (63 + 1);
	return v;
}

size_t b64_encode(const void *in, size_t n, char *out)
{
	const uint8_t *p = in;
	size_t o = 0, i = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
			     p[i + 2];

		out[o++] = b64_char(v >> 18);
		out[o++] = b64_char((v >> 12) & 63);
		out[o++] = b64_char((v >> 6) & 63);
		out[o++] = b64_char(v & 63);
	}
	if (n - i) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (n - i == 2)
			v |= (uint32_t)p[i + 1] << 8;
		out[o++] = b64_char(v >> 18);
		out[o++] = b64_char((v >> 12) & 63);
		out[o++] = n - i == 2 ? b64_char((v >> 6) & 63) : '=';
		out[o++] = '=';
	}
	out[o] = 0;
	return o;
}

long b64_decode(const char *in, size_t len, uint8_t *out)
{
	size_t o = 0, pad = 0;
	int bad = 0;

	if (len % 4)
		return -EINVAL;
	/* Padding: one or two '=' at the very end, nowhere else. */
	if (len && in[len - 1] == '=')
		pad = len >= 2 && in[len - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < len; i += 4) {
		size_t data = i + 4 == len ? 4 - pad : 4;
		uint32_t w = 0;

		for (size_t j = 0; j < 4; j++) {
			int v = j < data ? b64_value((unsigned char)in[i + j])
					 : 0;

			bad |= v; /* the sign bit stays once set */
			w |= (uint32_t)(v & 63) << (18 - 6 * j);
		}
		/* Canonical form only: bits under the padding are zero. */
		if (pad == 1 && i + 4 == len)
			bad |= -(int)((w & 0xff) != 0);
		if (pad == 2 && i + 4 == len)
			bad |= -(int)((w & 0xffff) != 0);
		out[o++] = (uint8_t)(w >> 16);
		if (data > 2)
			out[o++] = (uint8_t)(w >> 8);
		if (data > 3)
			out[o++] = (uint8_t)w;
	}
	if (bad < 0) {
		secmem_wipe(out, o);
		return -EINVAL;
	}
	return (long)o;
}

int hex_value(int c)
{
	int v = -1;

	v += in_range(c, '0', '9') & (c - '0' + 1);
	v += in_range(c, 'a', 'f') & (c - 'a' + 10 + 1);
	v += in_range(c, 'A', 'F') & (c - 'A' + 10 + 1);
	return v;
}

/* The lower-case hex digit of a 4-bit value. */
static char hex_digit(int x)
{
	return (char)(x + '0' + (neg_mask(9 - x) & ('a' - '0' - 10)));
}

void hex_encode(const void *in, size_t n, char *out)
{
	const uint8_t *p = in;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex_digit(p[i] >> 4);
		out[2 * i + 1] = hex_digit(p[i] & 15);
	}
	out[2 * n] = 0;
}
