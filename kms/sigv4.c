/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sigv4.c — AWS Signature Version 4 on the receiving side: canonical request,
 * string to sign, signing key, and verification of a request cmkfs-kmsd
 * received.  Header signatures only ("Authorization: AWS4-HMAC-SHA256 ...");
 * not presigned URLs, and not the client side (libcurl signs for us there).
 *
 * Everything here parses bytes from the network.  Every input is measured
 * against a hard limit (below) before it is used, every read is bounded by
 * the end of its input, and an error message quotes request bytes only after
 * they have been validated to a small character set.
 *
 * Path encoding is the one AWS uses for every service but S3: the raw path
 * is percent-encoded as it stands, so a "%20" sent on the wire is signed as
 * "%2520" (the client encoded the path once to send it, and once more to
 * sign it).  Query parameters are decoded, then encoded again.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "util.h"
#include "sigv4.h"

/* Hard limits on what a request may contain.  Generous for any real SDK
 * request (KMS requests are "POST /" with a dozen headers); a request beyond
 * them is refused, never truncated. */
enum {
	MAX_METHOD = 32,
	MAX_TARGET = 8192,
	MAX_HEADERS = 128,
	MAX_NAME = 256,	   /* one header name */
	MAX_VALUE = 16384, /* one header value: session tokens are long */
	MAX_HEADER_BYTES = 65536, /* all names and values together */
	MAX_QUERY_PARAMS = 256,
	MAX_SIGNED = 64,       /* names in SignedHeaders */
	MAX_SIGNED_LEN = 2048, /* the SignedHeaders value */
	MAX_AUTH = 4096,       /* the Authorization value */
	MAX_CREDENTIAL = 320,  /* the Credential value */
	MAX_AKID = 128,	       /* IAM: access key ids are \w{16,128} */
	MAX_SCOPE_FIELD = 63,  /* region and service names */
	MAX_SECRET = 512,      /* secret access key (AWS: 40 chars) */
	AMZ_DATE_LEN = 16,     /* "20150830T123600Z" */
	SIG_HEX = 2 * CRYPTO_SHA256_LEN,
};

_Static_assert(sizeof(((struct sigv4_result *)0)->access_key_id) > MAX_AKID,
	       "access_key_id holds any valid access key id");
_Static_assert(sizeof(((struct sigv4_result *)0)->region) > MAX_SCOPE_FIELD,
	       "region holds any valid region");

static const char ALGORITHM[] = "AWS4-HMAC-SHA256";
static const char TERMINATOR[] = "aws4_request";
static const char KEY_PREFIX[4] = "AWS4"; /* no NUL: a key, not a string */
static const char MSG_MISMATCH[] =
	"The request signature we calculated does not match the signature "
	"you provided. Check your AWS Secret Access Key and signing method. "
	"Consult the service documentation for details.";
static const char MSG_BAD_TOKEN[] =
	"The security token included in the request is invalid.";

/* ---- characters ----------------------------------------------------- */

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_lower(unsigned char c)
{
	return c >= 'a' && c <= 'z';
}

static bool is_upper(unsigned char c)
{
	return c >= 'A' && c <= 'Z';
}

static bool is_alnum(unsigned char c)
{
	return is_digit(c) || is_lower(c) || is_upper(c);
}

/* RFC 3986 unreserved: the only bytes SigV4 leaves unencoded. */
static bool is_unreserved(unsigned char c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 9110 token character (header names, methods). */
static bool is_tchar(unsigned char c)
{
	if (is_alnum(c))
		return true;
	switch (c) {
	case '!':
	case '#':
	case '$':
	case '%':
	case '&':
	case '\'':
	case '*':
	case '+':
	case '-':
	case '.':
	case '^':
	case '_':
	case '`':
	case '|':
	case '~':
		return true;
	default:
		return false;
	}
}

/* Optional whitespace around HTTP field values and list elements. */
static bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static unsigned char to_lower(unsigned char c)
{
	return is_upper(c) ? (unsigned char)(c - 'A' + 'a') : c;
}

/* ---- spans of input ------------------------------------------------- */

/* A piece of a longer input: never NUL-terminated by itself. */
struct span {
	const char *p;
	size_t n;
};

static struct span trim(struct span s)
{
	while (s.n && is_ows((unsigned char)s.p[0])) {
		s.p++;
		s.n--;
	}
	while (s.n && is_ows((unsigned char)s.p[s.n - 1]))
		s.n--;
	return s;
}

static bool span_is(struct span s, const char *str)
{
	size_t n = strlen(str);

	return s.n == n && memcmp(s.p, str, n) == 0;
}

/* Byte-wise order, a shorter prefix first. */
static int span_cmp(struct span a, struct span b)
{
	int c = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);

	if (c)
		return c;
	return a.n < b.n ? -1 : a.n > b.n;
}

/* Split *rest at the first sep: return what precedes it and leave *rest
 * after it.  *more tells whether a separator was found. */
static struct span split(struct span *rest, char sep, bool *more)
{
	const char *at = memchr(rest->p, sep, rest->n);
	struct span head = *rest;

	*more = at != NULL;
	if (at) {
		head.n = (size_t)(at - rest->p);
		rest->p = at + 1;
		rest->n -= head.n + 1;
	} else {
		rest->p += rest->n;
		rest->n = 0;
	}
	return head;
}

/* Copy into a fixed array; the caller has checked s.n < size. */
static void span_copy(char *dst, struct span s)
{
	memcpy(dst, s.p, s.n);
	dst[s.n] = '\0';
}

/* A received header name (any case, NUL-terminated) against a lower-case
 * name given as a span. */
static bool name_is(const char *received, struct span lower)
{
	for (size_t i = 0; i < lower.n; i++) {
		if (!received[i] || to_lower((unsigned char)received[i]) !=
					    (unsigned char)lower.p[i])
			return false;
	}
	return received[lower.n] == '\0';
}

/* ---- growing output buffer ------------------------------------------ */

/* Always NUL-terminated once anything was added.  The first failure sticks
 * (err) and turns later appends into no-ops, so callers check once. */
struct buf {
	char *p;
	size_t len, cap;
	int err;
};

static void buf_add(struct buf *b, const void *s, size_t n)
{
	if (b->err)
		return;
	if (!b->p || b->cap - b->len <= n) {
		size_t cap = b->cap ? b->cap : 512;
		char *np;

		while (cap - b->len <= n) {
			if (cap > SIZE_MAX / 2) {
				b->err = -ENOMEM;
				return;
			}
			cap *= 2;
		}
		np = realloc(b->p, cap);
		if (!np) {
			b->err = -ENOMEM;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

static void buf_adds(struct buf *b, struct span s)
{
	buf_add(b, s.p, s.n);
}

/* Drop everything after the first keep bytes. */
static void buf_truncate(struct buf *b, size_t keep)
{
	if (b->p && keep <= b->len) {
		b->len = keep;
		b->p[keep] = '\0';
	}
}

/* ---- the request as a whole ----------------------------------------- */

/*
 * Check that req is usable and within the limits, so that later code may
 * call strlen on its strings.  -EINVAL for a caller's mistake (NULL where a
 * string must be), -EBADMSG for a request that is malformed or too large.
 */
static int check_request(const struct sigv4_request *req)
{
	size_t n, total = 0;

	if (!req->method || !req->target || (req->n_headers && !req->headers) ||
	    (req->body_len && !req->body))
		return -EINVAL;
	n = strnlen(req->method, MAX_METHOD + 1);
	if (n == 0 || n > MAX_METHOD)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)req->method[i]))
			return -EBADMSG;
	if (strnlen(req->target, MAX_TARGET + 1) > MAX_TARGET)
		return -EBADMSG;
	if (req->n_headers > MAX_HEADERS)
		return -EBADMSG;
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct sigv4_header *h = &req->headers[i];
		size_t nl, vl;

		if (!h->name || !h->value)
			return -EINVAL;
		nl = strnlen(h->name, MAX_NAME + 1);
		vl = strnlen(h->value, MAX_VALUE + 1);
		if (nl > MAX_NAME || vl > MAX_VALUE)
			return -EBADMSG;
		total += nl + vl;
		if (total > MAX_HEADER_BYTES)
			return -EBADMSG;
	}
	return 0;
}

/* The first header called name (lower case) and how many there are. */
static const char *find_header(const struct sigv4_request *req,
			       const char *name, size_t *count)
{
	struct span want = { name, strlen(name) };
	const char *first = NULL;

	*count = 0;
	for (size_t i = 0; i < req->n_headers; i++) {
		if (name_is(req->headers[i].name, want)) {
			if (!first)
				first = req->headers[i].value;
			(*count)++;
		}
	}
	return first;
}

/* ---- SignedHeaders -------------------------------------------------- */

/* 1..MAX_SIGNED lower-case header names, ';'-separated, strictly ascending
 * (which also rules out duplicates). */
static bool signed_list_ok(struct span list)
{
	struct span prev = { NULL, 0 };
	size_t count = 0;
	bool more = true;

	if (list.n == 0 || list.n > MAX_SIGNED_LEN)
		return false;
	while (more) {
		struct span name = split(&list, ';', &more);

		if (name.n == 0 || name.n > MAX_NAME || ++count > MAX_SIGNED)
			return false;
		for (size_t i = 0; i < name.n; i++) {
			unsigned char c = (unsigned char)name.p[i];

			if (!is_tchar(c) || is_upper(c))
				return false;
		}
		if (prev.p && span_cmp(prev, name) >= 0)
			return false;
		prev = name;
	}
	return true;
}

static bool signed_list_has(struct span list, const char *name)
{
	bool more = true;

	while (more)
		if (span_is(split(&list, ';', &more), name))
			return true;
	return false;
}

/* ---- canonical request ---------------------------------------------- */

static void uri_encode(struct buf *b, struct span s, bool keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < s.n; i++) {
		unsigned char c = (unsigned char)s.p[i];

		if (is_unreserved(c) || (keep_slash && c == '/')) {
			buf_addc(b, (char)c);
		} else {
			char e[3] = { '%', digits[c >> 4], digits[c & 15] };

			buf_add(b, e, sizeof(e));
		}
	}
}

/*
 * The canonical URI of path (which starts with '/' or is empty).  With
 * normalize, RFC 3986 dot segments are resolved and empty segments dropped
 * (so "//a//" is "/a/"); a path ending in '/', "." or ".." keeps its
 * trailing slash, as remove_dot_segments does.
 */
static void canonical_path(struct buf *b, struct span path, bool normalize)
{
	size_t base = b->len;
	bool slash_end = false, more = path.n > 0;

	if (!normalize) {
		if (path.n)
			uri_encode(b, path, true);
		else
			buf_addc(b, '/');
		return;
	}
	if (path.n) {
		path.p++; /* the leading '/' */
		path.n--;
	}
	while (more) {
		struct span seg = split(&path, '/', &more);

		if (!seg.n || span_is(seg, ".")) {
			slash_end = true;
		} else if (span_is(seg, "..")) {
			/* Output is "/seg/seg...": drop the last "/seg". */
			size_t end = b->len;

			while (end > base && b->p[end - 1] != '/')
				end--;
			buf_truncate(b, end > base ? end - 1 : base);
			slash_end = true;
		} else {
			buf_addc(b, '/');
			uri_encode(b, seg, false);
			slash_end = false;
		}
	}
	if (b->len == base || slash_end)
		buf_addc(b, '/');
}

/* Decode the %XX escapes of s and encode the bytes again into out (room
 * for 3 * s.n bytes), setting *len.  -EINVAL on a broken escape. */
static int requote(struct span s, char *out, size_t *len)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < s.n; i++) {
		unsigned char c = (unsigned char)s.p[i];

		if (c == '%') {
			int hi, lo;

			if (s.n - i < 3)
				return -EINVAL;
			hi = hex_value(s.p[i + 1]);
			lo = hex_value(s.p[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (is_unreserved(c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = digits[c >> 4];
			out[o++] = digits[c & 15];
		}
	}
	*len = o;
	return 0;
}

struct qparam {
	struct span key, value;
};

static int qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = span_cmp(x->key, y->key);

	return c ? c : span_cmp(x->value, y->value);
}

/*
 * The canonical query string of query (what follows '?'): parameters split
 * on '&' (empty ones dropped), each key and value re-encoded, '=' always
 * present, sorted by key then value.  '+' is an ordinary character here, as
 * RFC 3986 has it, not a space.  -EINVAL on a broken escape, -EBADMSG for
 * too many parameters, -ENOMEM.
 */
static int canonical_query(struct buf *b, struct span query)
{
	struct qparam *params = NULL;
	size_t count = 0;
	char *scratch = NULL, *o;
	bool more = true;
	int r = 0;

	if (!query.n)
		return 0;
	params = calloc(MAX_QUERY_PARAMS, sizeof(*params));
	/* Re-encoding at most triples the bytes. */
	scratch = malloc(3 * query.n);
	if (!params || !scratch) {
		r = -ENOMEM;
		goto out;
	}
	o = scratch;
	while (more) {
		struct span param = split(&query, '&', &more), key;
		struct qparam *qp;
		bool has_value;

		if (!param.n)
			continue;
		if (count == MAX_QUERY_PARAMS) {
			r = -EBADMSG;
			goto out;
		}
		qp = &params[count];
		key = split(&param, '=', &has_value);
		qp->key.p = o;
		r = requote(key, o, &qp->key.n);
		if (r)
			goto out;
		o += qp->key.n;
		qp->value.p = o;
		r = requote(param, o, &qp->value.n);
		if (r)
			goto out;
		o += qp->value.n;
		count++;
	}
	qsort(params, count, sizeof(*params), qparam_cmp);
	for (size_t i = 0; i < count; i++) {
		if (i)
			buf_addc(b, '&');
		buf_adds(b, params[i].key);
		buf_addc(b, '=');
		buf_adds(b, params[i].value);
	}
out:
	free(scratch);
	free(params);
	return r;
}

/*
 * One header value, canonical: leading and trailing whitespace dropped, and
 * every run of whitespace inside, obs-folds (CRLF or LF followed by SP/HT)
 * included, turned into one space.  -EINVAL for a CR or LF that is not part
 * of an obs-fold: that would let a value forge a line of the canonical
 * request.
 */
static int canonical_value(struct buf *b, struct span v)
{
	bool any = false, space = false;
	size_t i = 0;

	while (i < v.n) {
		unsigned char c = (unsigned char)v.p[i];

		if (is_ows(c)) {
			space = any;
			i++;
		} else if (c == '\r' || c == '\n') {
			if (c == '\r')
				i++;
			if (i >= v.n || v.p[i] != '\n')
				return -EINVAL;
			i++;
			if (i >= v.n || !is_ows((unsigned char)v.p[i]))
				return -EINVAL;
			space = any;
		} else {
			if (space)
				buf_addc(b, ' ');
			buf_addc(b, (char)c);
			space = false;
			any = true;
			i++;
		}
	}
	return 0;
}

/* "name:value\n" for each signed name (a list signed_list_ok accepted);
 * repeated headers joined with ',' in arrival order.  -EINVAL when a signed
 * header is absent or has a bad value. */
static int canonical_headers(struct buf *b, const struct sigv4_request *req,
			     struct span list)
{
	bool more = true;

	while (more) {
		struct span name = split(&list, ';', &more);
		bool found = false;

		buf_adds(b, name);
		buf_addc(b, ':');
		for (size_t i = 0; i < req->n_headers; i++) {
			const struct sigv4_header *h = &req->headers[i];
			struct span v = { h->value, strlen(h->value) };
			int r;

			if (!name_is(h->name, name))
				continue;
			if (found)
				buf_addc(b, ',');
			r = canonical_value(b, v);
			if (r)
				return r;
			found = true;
		}
		if (!found)
			return -EINVAL;
		buf_addc(b, '\n');
	}
	return 0;
}

static bool is_hash_hex(const char *s)
{
	for (size_t i = 0; i < SIG_HEX; i++)
		if (!is_digit((unsigned char)s[i]) &&
		    !(s[i] >= 'a' && s[i] <= 'f'))
			return false;
	return s[SIG_HEX] == '\0';
}

int sigv4_canonical_request(const struct sigv4_request *req,
			    const char *signed_headers, bool normalize_path,
			    const char *payload_hash, char **out)
{
	struct buf b = { 0 };
	struct span target, path, list;
	bool has_query;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!req || !signed_headers || !payload_hash)
		return -EINVAL;
	if (check_request(req))
		return -EINVAL;
	list.p = signed_headers;
	list.n = strnlen(signed_headers, MAX_SIGNED_LEN + 1);
	if (!signed_list_ok(list) || !is_hash_hex(payload_hash))
		return -EINVAL;
	target.p = req->target;
	target.n = strlen(req->target);
	path = split(&target, '?', &has_query);
	/* Origin form only ("/..."); an empty path is "/". */
	if (path.n && path.p[0] != '/')
		return -EINVAL;

	buf_add(&b, req->method, strlen(req->method));
	buf_addc(&b, '\n');
	canonical_path(&b, path, normalize_path);
	buf_addc(&b, '\n');
	r = canonical_query(&b, target);
	if (r)
		goto out;
	buf_addc(&b, '\n');
	r = canonical_headers(&b, req, list);
	if (r)
		goto out;
	buf_addc(&b, '\n');
	buf_adds(&b, list);
	buf_addc(&b, '\n');
	buf_add(&b, payload_hash, SIG_HEX);
	r = b.err;
	if (!r) {
		*out = b.p;
		b.p = NULL;
	}
out:
	free(b.p);
	return r == -EBADMSG ? -EINVAL : r;
}

/* ---- string to sign and signature ----------------------------------- */

int sigv4_string_to_sign(const char *amz_date, const char *scope,
			 const char *canonical_request, char **out)
{
	uint8_t h[CRYPTO_SHA256_LEN];
	char hex[SIG_HEX + 1];
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!amz_date || !scope || !canonical_request)
		return -EINVAL;
	r = crypto_sha256(canonical_request, strlen(canonical_request), h);
	if (r)
		return r;
	hex_encode(h, sizeof(h), hex);
	if (asprintf(out, "%s\n%s\n%s\n%s", ALGORITHM, amz_date, scope, hex) <
	    0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

int sigv4_signature(const char *secret, const char *date8, const char *region,
		    const char *service, const char *string_to_sign,
		    char out_hex[65])
{
	/* "AWS4" + secret, then kDate, kRegion, kService, kSigning: each
	 * HMAC keyed by the previous one, alternating between a and b. */
	char k_secret[sizeof(KEY_PREFIX) + MAX_SECRET];
	uint8_t a[CRYPTO_SHA256_LEN], b[CRYPTO_SHA256_LEN];
	size_t n;
	int r;

	if (!out_hex)
		return -EINVAL;
	out_hex[0] = '\0';
	if (!secret || !date8 || !region || !service || !string_to_sign)
		return -EINVAL;
	n = strnlen(secret, MAX_SECRET + 1);
	if (n > MAX_SECRET)
		return -EINVAL;
	memcpy(k_secret, KEY_PREFIX, sizeof(KEY_PREFIX));
	memcpy(k_secret + sizeof(KEY_PREFIX), secret, n);
	r = crypto_hmac_sha256(k_secret, sizeof(KEY_PREFIX) + n, date8,
			       strlen(date8), a);
	if (!r)
		r = crypto_hmac_sha256(a, sizeof(a), region, strlen(region), b);
	if (!r)
		r = crypto_hmac_sha256(b, sizeof(b), service, strlen(service),
				       a);
	if (!r)
		r = crypto_hmac_sha256(a, sizeof(a), TERMINATOR,
				       sizeof(TERMINATOR) - 1, b);
	if (!r)
		r = crypto_hmac_sha256(b, sizeof(b), string_to_sign,
				       strlen(string_to_sign), a);
	if (!r)
		hex_encode(a, sizeof(a), out_hex);
	secmem_wipe(k_secret, sizeof(k_secret));
	secmem_wipe(a, sizeof(a));
	secmem_wipe(b, sizeof(b));
	return r;
}

/* ---- dates ---------------------------------------------------------- */

static unsigned digits_value(const char *s, size_t n)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	return v;
}

/* Strict ISO 8601 basic format, UTC: "YYYYMMDDTHHMMSSZ" naming a real
 * calendar date and time (no leap second). */
static bool parse_amz_date(struct span s, int64_t *t)
{
	static const char shape[] = "ddddddddTddddddZ";
	unsigned y, mo, d, h, mi, se;

	if (s.n != AMZ_DATE_LEN)
		return false;
	for (size_t i = 0; i < AMZ_DATE_LEN; i++) {
		unsigned char c = (unsigned char)s.p[i];

		if (shape[i] == 'd' ? !is_digit(c)
				    : c != (unsigned char)shape[i])
			return false;
	}
	y = digits_value(s.p, 4);
	mo = digits_value(s.p + 4, 2);
	d = digits_value(s.p + 6, 2);
	h = digits_value(s.p + 9, 2);
	mi = digits_value(s.p + 11, 2);
	se = digits_value(s.p + 13, 2);
	if (y < 1 || mo < 1 || mo > 12 || d < 1 ||
	    (int)d > kms_days_in_month((int)y, (int)mo) || h > 23 || mi > 59 ||
	    se > 59)
		return false;
	*t = kms_days_from_civil(y, (int)mo, (int)d) * 86400 +
	     (int64_t)h * 3600 + (int64_t)mi * 60 + se;
	return true;
}

/* The basic format of t for messages; "?" outside years 1970..9999. */
static void format_amz_date(int64_t t, char out[AMZ_DATE_LEN + 1])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t < 0 || t > 253402300799 || !gmtime_r(&tt, &tm) ||
	    strftime(out, AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) !=
		    AMZ_DATE_LEN)
		snprintf(out, AMZ_DATE_LEN + 1, "?");
}

/* t + delta, saturating instead of overflowing. */
static int64_t add_sat(int64_t t, int64_t delta)
{
	int64_t r;

	if (__builtin_add_overflow(t, delta, &r))
		return delta > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

/* ---- verification --------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int
reject(struct sigv4_result *res, enum sigv4_status st, const char *fmt, ...)
{
	va_list ap;

	res->status = st;
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
	return -EACCES;
}

/* What the Authorization header says, each field validated. */
struct auth {
	char akid[MAX_AKID + 1];
	char scope[MAX_CREDENTIAL + 1]; /* date/region/service/terminator */
	char signed_headers[MAX_SIGNED_LEN + 1];
	char signature[SIG_HEX + 1]; /* hex digits, as sent */
};

static bool is_akid(struct span s)
{
	if (s.n == 0 || s.n > MAX_AKID)
		return false;
	for (size_t i = 0; i < s.n; i++)
		if (!is_alnum((unsigned char)s.p[i]) && s.p[i] != '_')
			return false;
	return true;
}

/* Credential, SignedHeaders and Signature, each exactly once, in any
 * order, separated by ',' with optional whitespace. */
static int parse_components(struct span v, struct span *cred, struct span *list,
			    struct span *sig, struct sigv4_result *res)
{
	static const char *const keys[] = { "Credential", "SignedHeaders",
					    "Signature" };
	struct span *slots[] = { cred, list, sig };
	bool seen[3] = { false, false, false }, more = v.n > 0;
	char missing[sizeof(res->message)] = "";
	size_t used = 0;

	while (more) {
		struct span comp = trim(split(&v, ',', &more)), key, value;
		bool has_eq;
		size_t k;

		if (!comp.n)
			return reject(res, SIGV4_INCOMPLETE,
				      "Authorization header has an empty "
				      "component.");
		key = split(&comp, '=', &has_eq);
		if (!has_eq)
			return reject(res, SIGV4_INCOMPLETE,
				      "Authorization header component is not a "
				      "key=value pair (missing equal-sign).");
		value = trim(comp);
		for (k = 0; k < 3 && !span_is(key, keys[k]); k++)
			;
		if (k == 3)
			return reject(res, SIGV4_INCOMPLETE,
				      "Authorization header has an unknown "
				      "component; expected Credential, "
				      "SignedHeaders and Signature.");
		if (seen[k])
			return reject(res, SIGV4_INCOMPLETE,
				      "Authorization header has more than one "
				      "'%s' parameter.",
				      keys[k]);
		seen[k] = true;
		*slots[k] = value;
	}
	for (size_t k = 0; k < 3 && used < sizeof(missing); k++) {
		if (seen[k])
			continue;
		used += (size_t)snprintf(
			missing + used, sizeof(missing) - used,
			"%sAuthorization header requires '%s' parameter.",
			used ? " " : "", keys[k]);
	}
	if (used)
		return reject(res, SIGV4_INCOMPLETE, "%s", missing);
	return 0;
}

static int parse_authorization(const char *value, struct auth *a,
			       struct sigv4_result *res)
{
	struct span v = trim((struct span){ value, strlen(value) });
	/* parse_components sets all three or fails. */
	struct span alg, cred = { "", 0 }, list = { "", 0 }, sig = { "", 0 };
	struct span akid;
	size_t n = 0;
	bool has_scope;
	int r;

	if (v.n > MAX_AUTH)
		return reject(res, SIGV4_INCOMPLETE,
			      "The Authorization header is too long.");
	while (n < v.n && !is_ows((unsigned char)v.p[n]))
		n++;
	alg.p = v.p;
	alg.n = n;
	if (!span_is(alg, ALGORITHM))
		return reject(res, SIGV4_INCOMPLETE,
			      "Unsupported Authorization algorithm: only "
			      "AWS4-HMAC-SHA256 is accepted.");
	v.p += n;
	v.n -= n;
	r = parse_components(trim(v), &cred, &list, &sig, res);
	if (r)
		return r;

	if (cred.n > MAX_CREDENTIAL)
		return reject(res, SIGV4_INCOMPLETE,
			      "Authorization header's Credential is too long.");
	akid = split(&cred, '/', &has_scope);
	if (!is_akid(akid) || !has_scope)
		return reject(res, SIGV4_INCOMPLETE,
			      "Authorization header's Credential is malformed: "
			      "expected '<access key id>/<YYYYMMDD>/<region>/"
			      "<service>/aws4_request'.");
	span_copy(a->akid, akid);
	span_copy(a->scope, cred);

	if (list.n > MAX_SIGNED_LEN)
		return reject(res, SIGV4_INCOMPLETE,
			      "Authorization header's SignedHeaders is too "
			      "long.");
	span_copy(a->signed_headers, list);

	/* Kept as sent: AWS compares the signature as a string with its own
	 * lower-case hex, so one in upper case does not match (a mismatch,
	 * not a malformed header: the digits are hex). */
	if (sig.n != SIG_HEX)
		goto bad_sig;
	for (size_t i = 0; i < SIG_HEX; i++) {
		if (hex_value(sig.p[i]) < 0)
			goto bad_sig;
		a->signature[i] = sig.p[i];
	}
	a->signature[SIG_HEX] = '\0';
	return 0;
bad_sig:
	return reject(res, SIGV4_INCOMPLETE,
		      "Authorization header's Signature must be 64 hexadecimal "
		      "digits.");
}

/* The scope must read "<date of X-Amz-Date>/<region>/<p->service>/
 * aws4_request".  The region is only reported: the caller decides whether
 * it serves it. */
static int check_scope(const struct auth *a, const char *amz_date,
		       const struct sigv4_verify_params *p,
		       struct sigv4_result *res)
{
	struct span rest = { a->scope, strlen(a->scope) }, f[4];
	bool more = true, date_ok;
	size_t nf = 0;

	while (more && nf < 4)
		f[nf++] = split(&rest, '/', &more);
	if (more || nf != 4 || !span_is(f[3], TERMINATOR))
		return reject(res, SIGV4_INVALID,
			      "Credential should be scoped with a valid "
			      "terminator: 'aws4_request'.");
	date_ok = f[0].n == 8;
	for (size_t i = 0; date_ok && i < 8; i++)
		date_ok = is_digit((unsigned char)f[0].p[i]);
	if (!date_ok)
		return reject(res, SIGV4_INVALID,
			      "Credential should be scoped to a valid date "
			      "(YYYYMMDD).");
	if (memcmp(f[0].p, amz_date, 8) != 0)
		return reject(res, SIGV4_INVALID,
			      "Date in Credential scope does not match "
			      "YYYYMMDD from ISO-8601 version of date from "
			      "HTTP: '%.8s' != '%.8s', from '%s'.",
			      f[0].p, amz_date, amz_date);
	if (f[1].n == 0 || f[1].n > MAX_SCOPE_FIELD)
		goto bad_region;
	for (size_t i = 0; i < f[1].n; i++) {
		unsigned char c = (unsigned char)f[1].p[i];

		if (!is_lower(c) && !is_digit(c) && c != '-')
			goto bad_region;
	}
	span_copy(res->region, f[1]);
	if (!span_is(f[2], p->service))
		return reject(res, SIGV4_INVALID,
			      "Credential should be scoped to correct service: "
			      "'%.64s'.",
			      p->service);
	return 0;
bad_region:
	return reject(res, SIGV4_INVALID,
		      "Credential should be scoped to a valid region.");
}

static int check_signed_headers(const struct sigv4_request *req,
				const struct auth *a,
				const struct sigv4_verify_params *p,
				struct sigv4_result *res)
{
	static const char *const always[] = { "host", "x-amz-date" };
	struct span list = { a->signed_headers, strlen(a->signed_headers) };
	bool more = true;

	if (!signed_list_ok(list))
		return reject(res, SIGV4_INVALID,
			      "SignedHeaders must be lower-case header names, "
			      "sorted and separated by ';'.");
	for (size_t i = 0; i < 2; i++)
		if (!signed_list_has(list, always[i]))
			return reject(res, SIGV4_INVALID,
				      "'%s' must be a 'SignedHeader' in the "
				      "AWS Authorization.",
				      always[i]);
	for (size_t i = 0; p->required_signed && p->required_signed[i]; i++)
		if (!signed_list_has(list, p->required_signed[i]))
			return reject(res, SIGV4_INVALID,
				      "'%.64s' must be a 'SignedHeader' in the "
				      "AWS Authorization.",
				      p->required_signed[i]);
	while (more) {
		struct span name = split(&list, ';', &more);
		size_t i;

		for (i = 0; i < req->n_headers; i++)
			if (name_is(req->headers[i].name, name))
				break;
		if (i == req->n_headers)
			return reject(res, SIGV4_INVALID,
				      "Header '%.*s' is in SignedHeaders but "
				      "not in the request.",
				      (int)(name.n < 64 ? name.n : 64), name.p);
	}
	return 0;
}

static int check_clock(int64_t t, const char *amz_date,
		       const struct sigv4_verify_params *p,
		       struct sigv4_result *res)
{
	char now[AMZ_DATE_LEN + 1], limit[AMZ_DATE_LEN + 1];
	int64_t skew = p->max_skew;
	const char *unit = p->max_skew % 60 ? "s." : "min.";
	unsigned amount = p->max_skew % 60 ? p->max_skew : p->max_skew / 60;

	/* t lies within years 1..9999, so comparing against now +- skew
	 * (saturated) needs no subtraction that could overflow. */
	if (t < add_sat(p->now, -skew)) {
		format_amz_date(p->now, now);
		format_amz_date(add_sat(p->now, -skew), limit);
		return reject(res, SIGV4_INVALID,
			      "Signature expired: %s is now earlier than %s "
			      "(%s - %u %s)",
			      amz_date, limit, now, amount, unit);
	}
	if (t > add_sat(p->now, skew)) {
		format_amz_date(p->now, now);
		format_amz_date(add_sat(p->now, skew), limit);
		return reject(res, SIGV4_INVALID,
			      "Signature not yet current: %s is still later "
			      "than %s (%s + %u %s)",
			      amz_date, limit, now, amount, unit);
	}
	return 0;
}

/* Compare digests rather than the tokens, so that the time taken does not
 * even depend on the token's length. */
static int token_matches(const char *want, const char *got, bool *match)
{
	struct span g = trim((struct span){ got, strlen(got) });
	uint8_t hw[CRYPTO_SHA256_LEN], hg[CRYPTO_SHA256_LEN];
	int r;

	*match = false;
	r = crypto_sha256(want, strlen(want), hw);
	if (!r)
		r = crypto_sha256(g.p, g.n, hg);
	if (!r)
		*match = secmem_equal(hw, hg, sizeof(hw));
	secmem_wipe(hw, sizeof(hw));
	secmem_wipe(hg, sizeof(hg));
	return r;
}

static int check_token(const struct sigv4_request *req,
		       const struct sigv4_credential *cred,
		       struct sigv4_result *res)
{
	size_t count;
	const char *got = find_header(req, "x-amz-security-token", &count);
	bool match = false;
	int r;

	if (!cred->session_token)
		return count ? reject(res, SIGV4_UNKNOWN_KEY, "%s",
				      MSG_BAD_TOKEN)
			     : 0;
	if (count != 1)
		return reject(res, SIGV4_UNKNOWN_KEY, "%s", MSG_BAD_TOKEN);
	r = token_matches(cred->session_token, got, &match);
	if (r)
		return r;
	return match ? 0 : reject(res, SIGV4_UNKNOWN_KEY, "%s", MSG_BAD_TOKEN);
}

/* The hex SHA-256 of the body; an x-amz-content-sha256 header, if sent,
 * must say the same. */
static int check_payload(const struct sigv4_request *req,
			 char hash[SIG_HEX + 1], struct sigv4_result *res)
{
	uint8_t h[CRYPTO_SHA256_LEN];
	const char *sent;
	size_t count;
	int r;

	r = crypto_sha256(req->body_len ? req->body : "", req->body_len, h);
	if (r)
		return r;
	hex_encode(h, sizeof(h), hash);
	sent = find_header(req, "x-amz-content-sha256", &count);
	if (count > 1 ||
	    (count == 1 &&
	     !span_is(trim((struct span){ sent, strlen(sent) }), hash)))
		return reject(res, SIGV4_INVALID,
			      "The provided 'x-amz-content-sha256' header does "
			      "not match what was computed.");
	return 0;
}

const char *sigv4_status_name(enum sigv4_status st)
{
	switch (st) {
	case SIGV4_OK:
		return "OK";
	case SIGV4_INCOMPLETE:
		return "IncompleteSignatureException";
	case SIGV4_INVALID:
		return "InvalidSignatureException";
	case SIGV4_UNKNOWN_KEY:
		return "UnrecognizedClientException";
	case SIGV4_EXPIRED_TOKEN:
		return "ExpiredTokenException";
	}
	return "InternalFailure";
}

int sigv4_verify(const struct sigv4_request *req,
		 const struct sigv4_verify_params *p, struct sigv4_result *res)
{
	struct sigv4_credential cred = { NULL, NULL, 0 };
	char amz_date[AMZ_DATE_LEN + 1], date8[9], payload[SIG_HEX + 1];
	char expected[SIG_HEX + 1] = "";
	char *canonical = NULL, *sts = NULL;
	struct auth a;
	struct span date;
	const char *v;
	size_t count;
	int64_t t;
	int r;

	if (!res)
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	if (!req || !p || !p->service || !p->lookup ||
	    strnlen(p->service, MAX_SCOPE_FIELD + 1) > MAX_SCOPE_FIELD) {
		r = -EINVAL;
		goto out;
	}
	r = check_request(req);
	if (r == -EBADMSG)
		r = reject(res, SIGV4_INVALID,
			   "The request is malformed or exceeds the limits of "
			   "the signature verifier.");
	if (r)
		goto out;

	v = find_header(req, "authorization", &count);
	if (!count) {
		r = reject(res, SIGV4_INCOMPLETE,
			   "Request is missing Authentication Token "
			   "(no Authorization header).");
		goto out;
	}
	if (count > 1) {
		r = reject(res, SIGV4_INCOMPLETE,
			   "The request has more than one Authorization "
			   "header.");
		goto out;
	}
	r = parse_authorization(v, &a, res);
	if (r)
		goto out;
	snprintf(res->access_key_id, sizeof(res->access_key_id), "%s", a.akid);

	v = find_header(req, "x-amz-date", &count);
	if (count != 1) {
		r = reject(res, SIGV4_INCOMPLETE,
			   count ? "The request has more than one X-Amz-Date "
				   "header."
				 : "Authorization header requires existence of "
				   "a 'X-Amz-Date' header.");
		goto out;
	}
	date = trim((struct span){ v, strlen(v) });
	if (!parse_amz_date(date, &t)) {
		r = reject(res, SIGV4_INCOMPLETE,
			   "X-Amz-Date must be in ISO-8601 basic format "
			   "(YYYYMMDD'T'HHMMSS'Z').");
		goto out;
	}
	span_copy(amz_date, date);

	r = check_scope(&a, amz_date, p, res);
	if (!r)
		r = check_signed_headers(req, &a, p, res);
	if (!r)
		r = check_clock(t, amz_date, p, res);
	if (r)
		goto out;

	if (!p->lookup(p->lookup_arg, a.akid, &cred) || !cred.secret) {
		r = reject(res, SIGV4_UNKNOWN_KEY, "%s", MSG_BAD_TOKEN);
		goto out;
	}
	r = check_token(req, &cred, res);
	if (r)
		goto out;
	if (cred.expires != 0 && p->now >= cred.expires) {
		r = reject(res, SIGV4_EXPIRED_TOKEN,
			   "The security token included in the request is "
			   "expired");
		goto out;
	}
	r = check_payload(req, payload, res);
	if (r)
		goto out;

	r = sigv4_canonical_request(req, a.signed_headers, p->normalize_path,
				    payload, &canonical);
	if (r == -EINVAL) {
		r = reject(res, SIGV4_INVALID,
			   "The request target or a signed header value is "
			   "malformed.");
		goto out;
	}
	if (r)
		goto out;
	r = sigv4_string_to_sign(amz_date, a.scope, canonical, &sts);
	if (r)
		goto out;
	/* check_scope proved the scope is "YYYYMMDD/region/service/..." with
	 * the service equal to p->service. */
	memcpy(date8, a.scope, 8);
	date8[8] = '\0';
	r = sigv4_signature(cred.secret, date8, res->region, p->service, sts,
			    expected);
	if (r)
		goto out;
	if (!secmem_equal(expected, a.signature, SIG_HEX)) {
		r = reject(res, SIGV4_INVALID, "%s", MSG_MISMATCH);
		goto out;
	}
	res->status = SIGV4_OK;
out:
	if (r && r != -EACCES) {
		/* Fail closed for callers that look at the status only. */
		res->status = SIGV4_INVALID;
		snprintf(res->message, sizeof(res->message),
			 "Internal error while verifying the request "
			 "signature.");
	}
	secmem_wipe(expected, sizeof(expected));
	free(canonical);
	free(sts);
	return r;
}
