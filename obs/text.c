/* SPDX-License-Identifier: Apache-2.0 */
/*
 * text.c — the Prometheus text exposition format (0.0.4): metric families,
 * samples with escaped labels, and latency histograms.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs.h"

void obs_text_free(struct obs_text *t)
{
	free(t->p);
	*t = (struct obs_text){ 0 };
}

static void vappend(struct obs_text *t, const char *fmt, va_list ap)
{
	va_list again;
	int n;

	if (t->failed)
		return;
	va_copy(again, ap);
	n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0,
		      fmt, ap);
	if (n >= 0 && (size_t)n >= (t->p ? t->cap - t->len : 0)) {
		size_t cap = t->cap ? t->cap : 4096;
		char *p;

		while (cap - t->len <= (size_t)n)
			cap *= 2;
		p = realloc(t->p, cap);
		if (!p) {
			t->failed = true;
			va_end(again);
			return;
		}
		t->p = p;
		t->cap = cap;
		n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, again);
	}
	va_end(again);
	if (n < 0)
		t->failed = true;
	else
		t->len += (size_t)n;
}

void obs_printf(struct obs_text *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vappend(t, fmt, ap);
	va_end(ap);
}

void obs_family(struct obs_text *t, const char *name, const char *type,
		const char *help)
{
	obs_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The length of the valid UTF-8 sequence at p (up to end), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (*p >= 0xc2 && *p <= 0xdf)
		n = 2;
	else if (*p >= 0xe0 && *p <= 0xef)
		n = 3;
	else if (*p >= 0xf0 && *p <= 0xf4)
		n = 4;
	else
		return 0;
	/* No overlong forms, no surrogates, nothing past U+10FFFF. */
	if (*p == 0xe0)
		lo = 0xa0;
	else if (*p == 0xed)
		hi = 0x9f;
	else if (*p == 0xf0)
		lo = 0x90;
	else if (*p == 0xf4)
		hi = 0x8f;
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

int obs_labels(char *out, size_t len, ...)
{
	size_t n = 0;
	const char *k;
	va_list ap;

	if (!len)
		return -ENOSPC;
	va_start(ap, len);
	while ((k = va_arg(ap, const char *))) {
		const char *v = va_arg(ap, const char *);
		size_t kl = strlen(k);

		/* k="v", before the escapes: 4 bytes and a NUL at most. */
		if (n + kl + 5 > len)
			goto full;
		if (n)
			out[n++] = ',';
		memcpy(out + n, k, kl);
		n += kl;
		out[n++] = '=';
		out[n++] = '"';
		for (const unsigned char *c = (const unsigned char *)v,
					 *end = c + (v ? strlen(v) : 0);
		     c < end;) {
			char esc = *c == '\\'	? '\\'
				   : *c == '"'	? '"'
				   : *c == '\n' ? 'n'
						: 0;
			size_t u = *c >= 0x80 ? utf8_len(c, end) : 0;

			if (n + (esc ? 2 : u ? u : 1) + 2 > len)
				goto full;
			if (esc) {
				out[n++] = '\\';
				out[n++] = esc;
				c++;
			} else if (u) {
				memcpy(out + n, c, u);
				n += u;
				c += u;
			} else {
				out[n++] =
					*c < 0x20 || *c > 0x7e ? '?' : (char)*c;
				c++;
			}
		}
		out[n++] = '"';
	}
	va_end(ap);
	out[n] = 0;
	return 0;
full:
	va_end(ap);
	out[0] = 0;
	return -ENOSPC;
}

static void sample_head(struct obs_text *t, const char *name,
			const char *labels)
{
	if (labels && *labels)
		obs_printf(t, "%s{%s} ", name, labels);
	else
		obs_printf(t, "%s ", name);
}

void obs_sample(struct obs_text *t, const char *name, const char *labels,
		double value)
{
	sample_head(t, name, labels);
	if (isnan(value))
		obs_printf(t, "NaN\n");
	else if (isinf(value))
		obs_printf(t, "%s\n", value > 0 ? "+Inf" : "-Inf");
	else
		obs_printf(t, "%.17g\n", value);
}

void obs_sample_u64(struct obs_text *t, const char *name, const char *labels,
		    uint64_t value)
{
	sample_head(t, name, labels);
	obs_printf(t, "%llu\n", (unsigned long long)value);
}

/* ---- histograms */

/* Upper bounds in nanoseconds, and as the le label says them. */
static const uint64_t bound_ns[OBS_HIST_BUCKETS] = {
	10000,	    25000,	50000,	    100000,	 250000,
	500000,	    1000000,	2500000,    5000000,	 10000000,
	25000000,   50000000,	100000000,  250000000,	 500000000,
	1000000000, 2500000000, 5000000000, 10000000000,
};
static const char *const bound_le[OBS_HIST_BUCKETS] = {
	"1e-05",  "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001",
	"0.0025", "0.005",   "0.01",  "0.025",	"0.05",	   "0.1",    "0.25",
	"0.5",	  "1",	     "2.5",   "5",	"10",
};

void obs_hist_observe(struct obs_hist *h, uint64_t ns)
{
	unsigned i = 0;

	while (i < OBS_HIST_BUCKETS && ns > bound_ns[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

void obs_hist_add(struct obs_hist *into, const struct obs_hist *h)
{
	for (unsigned i = 0; i <= OBS_HIST_BUCKETS; i++)
		atomic_store_explicit(
			&into->bucket[i],
			atomic_load_explicit(&into->bucket[i],
					     memory_order_relaxed) +
				atomic_load_explicit(&h->bucket[i],
						     memory_order_relaxed),
			memory_order_relaxed);
	atomic_store_explicit(
		&into->sum_ns,
		atomic_load_explicit(&into->sum_ns, memory_order_relaxed) +
			atomic_load_explicit(&h->sum_ns, memory_order_relaxed),
		memory_order_relaxed);
}

void obs_hist_write(struct obs_text *t, const char *name, const char *labels,
		    const struct obs_hist *h)
{
	const char *sep = labels && *labels ? "," : "";
	uint64_t cum = 0;

	if (!labels)
		labels = "";
	/* The count is the buckets' sum, read once: _count and the +Inf
	 * bucket always agree. */
	for (unsigned i = 0; i <= OBS_HIST_BUCKETS; i++) {
		cum += atomic_load_explicit(&h->bucket[i],
					    memory_order_relaxed);
		obs_printf(t, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels,
			   sep, i < OBS_HIST_BUCKETS ? bound_le[i] : "+Inf",
			   (unsigned long long)cum);
	}
	obs_printf(
		t, "%s_sum%s%s%s %.9f\n", name, *labels ? "{" : "", labels,
		*labels ? "}" : "",
		(double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) /
			1e9);
	obs_printf(t, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels,
		   *labels ? "}" : "", (unsigned long long)cum);
}

uint64_t obs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
