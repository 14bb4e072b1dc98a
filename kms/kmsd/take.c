/* SPDX-License-Identifier: Apache-2.0 */
/*
 * take.c — taking a secret string member out of a request body before
 * json-c parses it (kmsd_json_take_string, kmsd.h).
 *
 * json-c copies every string it parses into buffers of the ordinary heap
 * (the string objects, and its tokener's growing buffer, reallocated as a
 * string grows) and frees them without a wipe; it has no allocator hook.
 * Encrypt's Plaintext would linger there.  So the front end finds the member
 * in the raw body (secure memory) first, copies its value into secure
 * memory, and blanks it in the body; json-c then parses a body without it.
 *
 * This reads only as much JSON as it needs: the top-level object's members
 * and where each value ends.  The body is still parsed by json-c (strictly)
 * afterwards, which refuses whatever is not JSON.  Every read is bounds
 * checked; nothing here recurses.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "crypto.h"
#include "kmsd.h"

struct scan {
	const char *s;
	size_t n, i;
};

static bool at(const struct scan *p, char ch)
{
	return p->i < p->n && p->s[p->i] == ch;
}

static void skip_ws(struct scan *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
			       p->s[p->i] == '\n' || p->s[p->i] == '\r'))
		p->i++;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * At the opening quote of a string: move past its closing quote.  When out
 * is not NULL, the string's characters go there unescaped (at most `room`
 * bytes; the string is longer when *len > room): an escape of a character
 * outside ASCII, or of NUL, becomes '?' — nothing that needs it can be
 * base64 or a member name compared here.  false when the string is not
 * JSON.
 */
static bool read_string(struct scan *p, char *out, size_t room, size_t *len)
{
	size_t k = 0;

	p->i++;
	while (p->i < p->n) {
		unsigned char ch = (unsigned char)p->s[p->i++];

		if (ch == '"') {
			if (len)
				*len = k;
			return true;
		}
		if (ch < 0x20)
			return false;
		if (ch == '\\') {
			if (p->i >= p->n)
				return false;
			ch = (unsigned char)p->s[p->i++];
			switch (ch) {
			case '"':
			case '\\':
			case '/':
				break;
			case 'b':
				ch = '\b';
				break;
			case 'f':
				ch = '\f';
				break;
			case 'n':
				ch = '\n';
				break;
			case 'r':
				ch = '\r';
				break;
			case 't':
				ch = '\t';
				break;
			case 'u': {
				unsigned v = 0;

				if (p->n - p->i < 4)
					return false;
				for (int d = 0; d < 4; d++) {
					int x = hex_digit(p->s[p->i++]);

					if (x < 0)
						return false;
					v = v << 4 | (unsigned)x;
				}
				ch = v && v < 0x80 ? (unsigned char)v : '?';
				break;
			}
			default:
				return false;
			}
		}
		if (out && k < room)
			out[k] = (char)ch;
		k++;
	}
	return false;
}

/* Move past one value (any JSON value, nested ones included).  Structure
 * inside it is left for json-c to check; strings are followed exactly, so
 * that brackets and quotes inside them are not taken for structure. */
static bool skip_value(struct scan *p)
{
	size_t depth = 0;

	do {
		skip_ws(p);
		if (p->i >= p->n)
			return false;
		switch (p->s[p->i]) {
		case '"':
			if (!read_string(p, NULL, 0, NULL))
				return false;
			break;
		case '{':
		case '[':
			depth++;
			p->i++;
			break;
		case '}':
		case ']':
			if (!depth)
				return false;
			depth--;
			p->i++;
			break;
		default: /* a number, a literal, or ',' and ':' inside */
			p->i++;
			while (p->i < p->n &&
			       !strchr(" \t\r\n,:{}[]\"", p->s[p->i]))
				p->i++;
			break;
		}
	} while (depth);
	return true;
}

int kmsd_json_take_string(char *body, size_t len, const char *name, char **out,
			  size_t *out_len)
{
	struct scan p = { body, len, 0 };
	size_t name_len = strlen(name), vstart = 0, vend = 0, n;
	bool found = false;
	unsigned seen = 0;
	char key[64];

	*out = NULL;
	*out_len = 0;
	if (!body || name_len >= sizeof(key))
		return -EINVAL;
	skip_ws(&p);
	if (!at(&p, '{'))
		return -EINVAL;
	p.i++;
	skip_ws(&p);
	if (at(&p, '}'))
		goto end;
	for (;;) {
		size_t klen, start;

		skip_ws(&p);
		if (!at(&p, '"') || !read_string(&p, key, sizeof(key), &klen))
			return -EINVAL;
		skip_ws(&p);
		if (!at(&p, ':'))
			return -EINVAL;
		p.i++;
		skip_ws(&p);
		start = p.i;
		if (!skip_value(&p))
			return -EINVAL;
		if (klen == name_len && !memcmp(key, name, klen)) {
			/* json-c would keep the last of two: refuse them */
			if (seen++)
				return -EINVAL;
			/* not a string: left for json-c (and its type error) */
			found = body[start] == '"';
			vstart = start;
			vend = p.i;
		}
		skip_ws(&p);
		if (at(&p, '}'))
			break;
		if (!at(&p, ','))
			return -EINVAL;
		p.i++;
	}
end:
	p.i++;
	skip_ws(&p);
	if (p.i != p.n)
		return -EINVAL;
	if (!found)
		return 0;
	/* The value, unescaped, is never longer than it is in the body. */
	*out = secmem_alloc(vend - vstart);
	if (!*out)
		return -ENOMEM;
	p.i = vstart;
	if (!read_string(&p, *out, vend - vstart - 1, &n)) {
		secmem_free(*out);
		*out = NULL;
		return -EINVAL;
	}
	(*out)[n] = '\0';
	*out_len = n;
	/* "..." becomes 0 and spaces: a number, which no one reads (the body
	 * is parsed after this: the stores cannot be dropped) */
	memset(body + vstart, ' ', vend - vstart);
	body[vstart] = '0';
	return 1;
}
