/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ttlv.c — KMIP's TTLV encoding: a bounded encoder into secure memory and a
 * strict, copy-free decoder for hostile input (see ttlv.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "ttlv.h"

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static size_t padded(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* ---- encoding */

/* Room for n more bytes: a pointer to them, zeroed, or NULL. */
static uint8_t *grow(struct ttlv_enc *e, size_t n)
{
	uint8_t *p;

	if (e->err)
		return NULL;
	if (n > TTLV_MAX_MESSAGE - e->len) {
		e->err = -E2BIG;
		return NULL;
	}
	if (e->len + n > e->cap) {
		size_t cap = e->cap ? e->cap : 512;

		while (cap < e->len + n)
			cap *= 2;
		p = secmem_realloc(e->p, cap);
		if (!p) {
			e->err = -ENOMEM;
			return NULL;
		}
		e->p = p;
		e->cap = cap;
	}
	p = e->p + e->len;
	memset(p, 0, n);
	e->len += n;
	return p;
}

static uint8_t *header(struct ttlv_enc *e, uint32_t tag, uint8_t type,
		       size_t len)
{
	uint8_t *p;

	if (tag > 0xffffff || len > UINT32_MAX) {
		if (!e->err)
			e->err = -EINVAL;
		return NULL;
	}
	p = grow(e, 8 + padded(len));
	if (!p)
		return NULL;
	put_be(p, tag, 3);
	p[3] = type;
	put_be(p + 4, len, 4);
	return p + 8;
}

void ttlv_begin(struct ttlv_enc *e, uint32_t tag)
{
	if (!e->err && e->depth == TTLV_MAX_DEPTH)
		e->err = -E2BIG;
	if (header(e, tag, TTLV_STRUCTURE, 0))
		e->open[e->depth++] = e->len - 8;
}

void ttlv_end(struct ttlv_enc *e)
{
	size_t at;

	if (e->err)
		return;
	if (!e->depth) {
		e->err = -EINVAL;
		return;
	}
	at = e->open[--e->depth];
	put_be(e->p + at + 4, e->len - at - 8, 4);
}

void ttlv_raw(struct ttlv_enc *e, uint32_t tag, uint8_t type, const void *v,
	      size_t n)
{
	uint8_t *p = header(e, tag, type, n);

	if (p && n)
		memcpy(p, v, n);
}

static void number(struct ttlv_enc *e, uint32_t tag, uint8_t type, uint64_t v,
		   unsigned n)
{
	uint8_t *p = header(e, tag, type, n);

	if (p)
		put_be(p, v, n);
}

void ttlv_int(struct ttlv_enc *e, uint32_t tag, int32_t v)
{
	number(e, tag, TTLV_INTEGER, (uint32_t)v, 4);
}

void ttlv_long(struct ttlv_enc *e, uint32_t tag, int64_t v)
{
	number(e, tag, TTLV_LONG, (uint64_t)v, 8);
}

void ttlv_enum(struct ttlv_enc *e, uint32_t tag, uint32_t v)
{
	number(e, tag, TTLV_ENUMERATION, v, 4);
}

void ttlv_bool(struct ttlv_enc *e, uint32_t tag, bool v)
{
	number(e, tag, TTLV_BOOLEAN, v, 8);
}

void ttlv_text(struct ttlv_enc *e, uint32_t tag, const char *s)
{
	ttlv_raw(e, tag, TTLV_TEXT, s, strlen(s));
}

void ttlv_bytes(struct ttlv_enc *e, uint32_t tag, const void *p, size_t n)
{
	ttlv_raw(e, tag, TTLV_BYTES, p, n);
}

void ttlv_date_time(struct ttlv_enc *e, uint32_t tag, int64_t t)
{
	number(e, tag, TTLV_DATE_TIME, (uint64_t)t, 8);
}

void ttlv_interval(struct ttlv_enc *e, uint32_t tag, uint32_t seconds)
{
	number(e, tag, TTLV_INTERVAL, seconds, 4);
}

int ttlv_enc_done(const struct ttlv_enc *e)
{
	return e->err ? e->err : e->depth ? -EINVAL : 0;
}

void ttlv_enc_free(struct ttlv_enc *e)
{
	secmem_free(e->p); /* wipes */
	*e = (struct ttlv_enc){ 0 };
}

/* ---- decoding */

struct dec {
	const uint8_t *buf;
	struct ttlv_items *items;
	char *why;
	size_t whylen;
};

static int bad(struct dec *d, const uint8_t *at, int r, const char *what)
{
	snprintf(d->why, d->whylen, "%s at byte %zu", what,
		 (size_t)(at - d->buf));
	return r;
}

/* The length a fixed-size type must have; 0: variable (checked apart). */
static uint32_t fixed_len(uint8_t type)
{
	switch (type) {
	case TTLV_INTEGER:
	case TTLV_ENUMERATION:
	case TTLV_INTERVAL:
		return 4;
	case TTLV_LONG:
	case TTLV_BOOLEAN:
	case TTLV_DATE_TIME:
		return 8;
	default:
		return 0;
	}
}

/* The items of [p, end), each appended to the arena, linked as siblings;
 * *first: the first of them (NULL when none). */
static int items(struct dec *d, const uint8_t *p, const uint8_t *end,
		 unsigned depth, const struct ttlv **first)
{
	struct ttlv *prev = NULL;

	*first = NULL;
	if (depth > TTLV_MAX_DEPTH)
		return bad(d, p, -E2BIG, "structures nested too deep");
	while (p < end) {
		struct ttlv *t;
		uint32_t len, want;
		size_t room = (size_t)(end - p);
		int r;

		if (room < 8)
			return bad(d, p, -EBADMSG, "a truncated item header");
		if (d->items->n == TTLV_MAX_ITEMS)
			return bad(d, p, -E2BIG, "too many items");
		t = &d->items->item[d->items->n++];
		*t = (struct ttlv){ .tag = (uint32_t)get_be(p, 3),
				    .type = p[3],
				    .len = (uint32_t)get_be(p + 4, 4) };
		len = t->len;
		if (t->type < TTLV_STRUCTURE || t->type > TTLV_INTERVAL)
			return bad(d, p, -EBADMSG, "an unknown item type");
		if (padded(len) > room - 8)
			return bad(d, p, -EBADMSG,
				   "an item longer than its "
				   "container");
		want = fixed_len(t->type);
		if ((want && len != want) ||
		    (t->type == TTLV_BIG_INTEGER && (!len || len % 8)) ||
		    (t->type == TTLV_STRUCTURE && len % 8))
			return bad(d, p, -EBADMSG,
				   "a length its type does not allow");
		t->val = p + 8;
		for (size_t i = len; i < padded(len); i++)
			if (t->val[i])
				return bad(d, t->val + i, -EBADMSG,
					   "padding that is not zero");
		switch (t->type) {
		case TTLV_STRUCTURE:
			r = items(d, t->val, t->val + len, depth + 1,
				  &t->child);
			if (r)
				return r;
			break;
		case TTLV_INTEGER:
			t->num = (int32_t)(uint32_t)get_be(t->val, 4);
			break;
		case TTLV_ENUMERATION:
		case TTLV_INTERVAL:
			t->num = (int64_t)get_be(t->val, 4);
			break;
		case TTLV_BOOLEAN:
			t->num = (int64_t)get_be(t->val, 8);
			if (t->num != 0 && t->num != 1)
				return bad(d, t->val, -EBADMSG,
					   "a Boolean neither 0 nor 1");
			break;
		case TTLV_LONG:
		case TTLV_DATE_TIME:
			t->num = (int64_t)get_be(t->val, 8);
			break;
		default:
			break;
		}
		if (prev)
			prev->next = t;
		else
			*first = t;
		prev = t;
		p += 8 + padded(len);
	}
	return 0;
}

int ttlv_decode(const uint8_t *buf, size_t len, struct ttlv_items *its,
		const struct ttlv **root, char *why, size_t whylen)
{
	struct dec d = { buf, its, why, whylen };
	int r;

	its->n = 0;
	*root = NULL;
	why[0] = 0;
	if (len > TTLV_MAX_MESSAGE)
		return bad(&d, buf, -E2BIG, "a message over the size limit");
	r = items(&d, buf, buf + len, 0, root);
	if (r)
		return r;
	if (!*root || (*root)->next)
		return bad(&d, buf, -EBADMSG, "not exactly one item");
	return 0;
}

const struct ttlv *ttlv_find(const struct ttlv *s, uint32_t tag)
{
	if (!s || s->type != TTLV_STRUCTURE)
		return NULL;
	for (const struct ttlv *t = s->child; t; t = t->next)
		if (t->tag == tag)
			return t;
	return NULL;
}

const struct ttlv *ttlv_find_next(const struct ttlv *after, uint32_t tag)
{
	for (const struct ttlv *t = after ? after->next : NULL; t; t = t->next)
		if (t->tag == tag)
			return t;
	return NULL;
}

size_t ttlv_message_size(const uint8_t head[8])
{
	uint64_t len = get_be(head + 4, 4);

	if (head[3] != TTLV_STRUCTURE || len % 8 || len > TTLV_MAX_MESSAGE - 8)
		return 0;
	return (size_t)len + 8;
}
