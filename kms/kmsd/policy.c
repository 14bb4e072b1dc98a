/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy.c — validation and evaluation of KMS key policies (IAM policy JSON)
 * for cmkfs-kmsd.  Not here: storing policies, grants, IAM identity policies.
 *
 * Every call parses the document afresh and validates all of it before any
 * statement is evaluated, so evaluation only ever sees a document that
 * policy_validate() accepts; a policy we do not fully understand is refused
 * rather than half-applied, since a misread Deny is an access leak.
 *
 * Where AWS semantics are subtle (see policy.h for the supported subset):
 *  - A condition over a key absent from the request is false, except for the
 *    negated operators (StringNotEquals, StringNotLike), which are true, and
 *    the ...IfExists forms, which are true; this is what the IAM reference
 *    documents, and it is what makes "Deny unless the encryption context
 *    is X" deny a request carrying no context at all.
 *  - An assumed-role session ARN (arn:aws:sts::A:assumed-role/R/S) is
 *    matched by the role's ARN (arn:aws:iam::A:role/[path/]R) in Principal,
 *    and aws:PrincipalArn holds the role's ARN for such callers, as in AWS.
 *    The role's path is not part of a session ARN, so that value has none.
 *  - Wildcards: '*' any run and '?' one character (a UTF-8 sequence).
 *    Matching is iterative with O(pattern * text) worst case.
 *  - Case-insensitive comparisons are ASCII-only, independent of the locale.
 *
 * Stricter than IAM, because a silently misread policy is worse than a
 * refused one: unknown condition keys, policy variables ("${...}" under
 * Version 2012-10-17), wildcards inside principal ARNs, duplicate object keys
 * and "\u0000" in strings are all errors.  Statements are numbered from 1 in
 * messages.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "policy.h"

/* Containers nest at most this deep; a policy needs 6 (document, Statement
 * array, statement, Condition, operator, value array). */
#define POLICY_MAX_DEPTH 8
/* Elements of one list (Action, Resource, principals, condition values). */
#define POLICY_MAX_VALUES 1000

#define CONTEXT_PREFIX "kms:EncryptionContext:"

/* ---- small string helpers ------------------------------------------------ */

static int ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static bool ascii_caseeq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (ascii_lower((unsigned char)*a) !=
		    ascii_lower((unsigned char)*b))
			return false;
	return *a == *b;
}

/* Does s start with prefix, ignoring ASCII case? */
static bool ascii_caseprefix(const char *s, const char *prefix)
{
	for (; *prefix; s++, prefix++)
		if (ascii_lower((unsigned char)*s) !=
		    ascii_lower((unsigned char)*prefix))
			return false;
	return true;
}

static bool is_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool is_account_id(const char *s)
{
	return strlen(s) == 12 && is_digits(s, 12);
}

/* Bytes in the UTF-8 sequence at s (1 for anything malformed), so that '?'
 * and the '*' backtrack step move by whole characters. */
static size_t u8len(const char *s)
{
	unsigned char c = (unsigned char)s[0];
	size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	size_t n = 1;

	while (n < want && ((unsigned char)s[n] & 0xc0) == 0x80)
		n++;
	return n;
}

/*
 * Wildcard match of the whole text: '*' matches any run (also empty), '?'
 * one character.  On a mismatch the last '*' swallows one more character and
 * matching resumes after it; earlier stars never need revisiting (a later
 * star can absorb whatever they would have), so this is O(|pat| * |txt|) at
 * worst instead of the exponential recursive version.
 */
static bool glob_match(const char *pat, const char *txt, bool icase)
{
	const char *p = pat, *t = txt, *star = NULL, *mark = NULL;

	while (*t) {
		if (*p == '*') {
			star = p++;
			mark = t;
		} else if (*p == '?') {
			p++;
			t += u8len(t);
		} else if (*p && (icase ? ascii_lower((unsigned char)*p) ==
						  ascii_lower((unsigned char)*t)
					: *p == *t)) {
			p++;
			t++;
		} else if (star) {
			p = star + 1;
			mark += u8len(mark);
			t = mark;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return !*p;
}

/* Copy s into dst for an error or decision message: printable ASCII only
 * (the policy and the request are untrusted and the text ends up in logs),
 * cut at 64 characters. */
static const char *printable(char *dst, size_t n, const char *s)
{
	size_t i = 0;

	for (; *s && i + 1 < n; s++) {
		if (i == 64 && i + 4 < n) {
			memcpy(dst + i, "...", 3);
			i += 3;
			break;
		}
		dst[i++] = *s >= 0x20 && *s < 0x7f ? *s : '?';
	}
	dst[i] = 0;
	return dst;
}

#define NAME_BUF 72

/* ---- ARNs ---------------------------------------------------------------- */

/* arn:partition:service:region:account:resource, as slices of the string. */
struct arn {
	const char *partition, *service, *region, *account, *resource;
	size_t partition_len, service_len, region_len, account_len;
};

static int arn_parse(const char *s, struct arn *a)
{
	const char *f[5];
	size_t len[4];

	if (!s || strncmp(s, "arn:", 4) != 0)
		return -EINVAL;
	f[0] = s + 4;
	for (int i = 0; i < 4; i++) {
		const char *c = strchr(f[i], ':');

		if (!c)
			return -EINVAL;
		len[i] = (size_t)(c - f[i]);
		f[i + 1] = c + 1;
	}
	*a = (struct arn){ .partition = f[0],
			   .service = f[1],
			   .region = f[2],
			   .account = f[3],
			   .resource = f[4],
			   .partition_len = len[0],
			   .service_len = len[1],
			   .region_len = len[2],
			   .account_len = len[3] };
	return 0;
}

static bool slice_eq(const char *s, size_t n, const char *z)
{
	return strlen(z) == n && memcmp(s, z, n) == 0;
}

static bool slices_eq(const char *a, size_t an, const char *b, size_t bn)
{
	return an == bn && memcmp(a, b, an) == 0;
}

/* An IAM principal ARN as a key policy may name it: partition, iam or sts,
 * no region, a 12-digit account and a non-empty resource.  No wildcards:
 * IAM refuses them in principals, and matching is exact. */
static bool is_principal_arn(const char *s)
{
	struct arn a;

	if (arn_parse(s, &a) || strpbrk(s, "*?"))
		return false;
	return a.partition_len > 0 &&
	       (slice_eq(a.service, a.service_len, "iam") ||
		slice_eq(a.service, a.service_len, "sts")) &&
	       a.region_len == 0 && a.account_len == 12 &&
	       is_digits(a.account, 12) && a.resource[0];
}

/*
 * For "arn:P:sts::A:assumed-role/ROLE/SESSION" set *role to ROLE (as a
 * slice); false for any other ARN.
 */
static bool assumed_role(const struct arn *a, const char **role,
			 size_t *role_len)
{
	const char *r = a->resource, *slash;

	if (!slice_eq(a->service, a->service_len, "sts") ||
	    strncmp(r, "assumed-role/", 13) != 0)
		return false;
	r += 13;
	slash = strchr(r, '/');
	if (!slash || slash == r || !slash[1] || strchr(slash + 1, '/'))
		return false;
	*role = r;
	*role_len = (size_t)(slash - r);
	return true;
}

/* ---- validation ---------------------------------------------------------- */

struct vctx {
	char *err;
	size_t errlen;
	size_t stmt;	/* 1-based statement being checked, 0 outside */
	bool variables; /* Version 2012-10-17: "${" starts a policy variable */
};

__attribute__((format(printf, 2, 3))) static int fail(struct vctx *v,
						      const char *fmt, ...)
{
	va_list ap;
	size_t off = 0;
	int n;

	if (!v->err || !v->errlen)
		return -EINVAL;
	v->err[0] = 0;
	if (v->stmt) {
		n = snprintf(v->err, v->errlen, "statement %zu: ", v->stmt);
		if (n < 0 || (size_t)n >= v->errlen)
			return -EINVAL;
		off = (size_t)n;
	}
	va_start(ap, fmt);
	vsnprintf(v->err + off, v->errlen - off, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

enum op_base { OP_EQ, OP_NOT_EQ, OP_EQ_ICASE, OP_LIKE, OP_NOT_LIKE, OP_BOOL };

static const struct {
	const char *name;
	enum op_base op;
} operators[] = {
	{ "StringEquals", OP_EQ },
	{ "StringNotEquals", OP_NOT_EQ },
	{ "StringEqualsIgnoreCase", OP_EQ_ICASE },
	{ "StringLike", OP_LIKE },
	{ "StringNotLike", OP_NOT_LIKE },
	{ "Bool", OP_BOOL },
};

/* Operator names are matched exactly, as IAM spells them. */
static int parse_operator(const char *name, enum op_base *op, bool *if_exists)
{
	for (size_t i = 0; i < sizeof(operators) / sizeof(operators[0]); i++) {
		size_t n = strlen(operators[i].name);

		if (strncmp(name, operators[i].name, n) != 0)
			continue;
		if (!name[n] || !strcmp(name + n, "IfExists")) {
			*op = operators[i].op;
			*if_exists = name[n] != 0;
			return 0;
		}
	}
	return -EINVAL;
}

enum ckey {
	CK_CONTEXT,
	CK_CALLER_ACCOUNT,
	CK_GRANT_AWS,
	CK_PRINCIPAL_ARN,
	CK_VIA_SERVICE,
};

/* Condition key names are case-insensitive, the encryption context key
 * after the prefix too (*ctx_key points at it; see request_value). */
static int parse_ckey(const char *name, enum ckey *k, const char **ctx_key)
{
	static const struct {
		const char *name;
		enum ckey key;
	} keys[] = {
		{ "kms:CallerAccount", CK_CALLER_ACCOUNT },
		{ "kms:GrantIsForAWSResource", CK_GRANT_AWS },
		{ "aws:PrincipalArn", CK_PRINCIPAL_ARN },
		{ "kms:ViaService", CK_VIA_SERVICE },
	};

	if (ascii_caseprefix(name, CONTEXT_PREFIX)) {
		*ctx_key = name + strlen(CONTEXT_PREFIX);
		*k = CK_CONTEXT;
		return **ctx_key ? 0 : -EINVAL;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (ascii_caseeq(name, keys[i].name)) {
			*k = keys[i].key;
			*ctx_key = NULL;
			return 0;
		}
	}
	return -EINVAL;
}

/* IAM elements that may hold one value or an array of them. */
static size_t list_len(struct json_object *v)
{
	return json_object_is_type(v, json_type_array)
		       ? json_object_array_length(v)
		       : 1;
}

static struct json_object *list_at(struct json_object *v, size_t i)
{
	return json_object_is_type(v, json_type_array)
		       ? json_object_array_get_idx(v, i)
		       : v;
}

typedef int (*item_check)(struct vctx *v, const char *what, const char *s);

/* A string or a non-empty array of at most POLICY_MAX_VALUES strings, each
 * passing check. */
static int check_strings(struct vctx *v, const char *what,
			 struct json_object *val, item_check check)
{
	size_t n;
	int r;

	if (json_object_is_type(val, json_type_array)) {
		n = json_object_array_length(val);
		if (!n)
			return fail(v, "%s is an empty list", what);
		if (n > POLICY_MAX_VALUES)
			return fail(v, "%s has more than %d values", what,
				    POLICY_MAX_VALUES);
	} else {
		n = 1;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *item = list_at(val, i);

		if (!json_object_is_type(item, json_type_string))
			return fail(v,
				    "%s must be a string or a list of strings",
				    what);
		r = check(v, what, json_object_get_string(item));
		if (r)
			return r;
	}
	return 0;
}

static int check_action(struct vctx *v, const char *what, const char *s)
{
	const char *colon = strchr(s, ':');
	char name[NAME_BUF];

	if (!strcmp(s, "*"))
		return 0;
	/* IAM wants a service prefix: "Decrypt" alone is an error, not an
	 * action that never matches. */
	if (!colon || colon == s || !colon[1] ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789-") != (size_t)(colon - s))
		return fail(v, "%s '%s' is not \"*\" or service:action", what,
			    printable(name, sizeof(name), s));
	return 0;
}

static int check_no_variables(struct vctx *v, const char *what, const char *s)
{
	char name[NAME_BUF];

	/* Under Version 2012-10-17 IAM would substitute ${...}; taking it
	 * literally would silently change what the statement means. */
	if (v->variables && strstr(s, "${"))
		return fail(v, "%s '%s': policy variables are not supported",
			    what, printable(name, sizeof(name), s));
	return 0;
}

static int check_resource(struct vctx *v, const char *what, const char *s)
{
	char name[NAME_BUF];

	if (strcmp(s, "*") != 0 && strncmp(s, "arn:", 4) != 0)
		return fail(v, "%s '%s' is not \"*\" or an ARN", what,
			    printable(name, sizeof(name), s));
	return check_no_variables(v, what, s);
}

static int check_aws_principal(struct vctx *v, const char *what, const char *s)
{
	char name[NAME_BUF];

	if (!strcmp(s, "*") || is_account_id(s) || is_principal_arn(s))
		return 0;
	return fail(v,
		    "%s '%s' is not \"*\", a 12-digit account id or an IAM "
		    "principal ARN",
		    what, printable(name, sizeof(name), s));
}

static int check_service_principal(struct vctx *v, const char *what,
				   const char *s)
{
	if (!*s)
		return fail(v, "%s is empty", what);
	return 0;
}

static int check_principal(struct vctx *v, struct json_object *p)
{
	struct json_object_iterator it, end;
	char name[NAME_BUF];
	int r;

	if (json_object_is_type(p, json_type_string)) {
		if (strcmp(json_object_get_string(p), "*") != 0)
			return fail(v, "Principal must be \"*\" or an object");
		return 0;
	}
	if (!json_object_is_type(p, json_type_object))
		return fail(v, "Principal must be \"*\" or an object");
	if (!json_object_object_length(p))
		return fail(v, "Principal names no principal");
	it = json_object_iter_begin(p);
	end = json_object_iter_end(p);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *type = json_object_iter_peek_name(&it);
		struct json_object *val = json_object_iter_peek_value(&it);

		if (!strcmp(type, "AWS"))
			r = check_strings(v, "Principal AWS", val,
					  check_aws_principal);
		else if (!strcmp(type, "Service"))
			r = check_strings(v, "Principal Service", val,
					  check_service_principal);
		else
			r = fail(v, "unsupported principal type '%s'",
				 printable(name, sizeof(name), type));
		if (r)
			return r;
	}
	return 0;
}

/*
 * Condition values as IAM reads them: strings, with booleans and numbers in
 * their JSON spelling ("true" and true are the same value).  Returns NULL
 * for any other type.
 */
static const char *scalar_string(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_string:
	case json_type_boolean:
	case json_type_int:
	case json_type_double:
		/* For numbers json-c gives the text it parsed (doubles) or
		 * the integer's decimal form. */
		return json_object_get_string(o);
	default:
		return NULL;
	}
}

static int check_scalar(struct vctx *v, const char *op, const char *key,
			enum op_base base, struct json_object *o)
{
	char name[NAME_BUF];
	const char *s = scalar_string(o);
	int64_t i;

	printable(name, sizeof(name), key);
	if (!s)
		return fail(v,
			    "%s %s: values must be strings, booleans or "
			    "numbers",
			    op, name);
	if (json_object_is_type(o, json_type_int)) {
		/* json-c clamps integers it cannot hold; the clamped value
		 * is not what the author wrote. */
		i = json_object_get_int64(o);
		if (i == INT64_MAX || i == INT64_MIN)
			return fail(v, "%s %s: number out of range", op, name);
	}
	if (json_object_is_type(o, json_type_double) &&
	    !isfinite(json_object_get_double(o)))
		return fail(v, "%s %s: number out of range", op, name);
	if (base == OP_BOOL && !ascii_caseeq(s, "true") &&
	    !ascii_caseeq(s, "false"))
		return fail(v, "%s %s: values must be true or false", op, name);
	return check_no_variables(v, "condition value", s);
}

static int check_operator(struct vctx *v, const char *op,
			  struct json_object *keys)
{
	struct json_object_iterator it, end;
	char name[NAME_BUF];
	enum op_base base;
	bool if_exists;
	int r;

	if (parse_operator(op, &base, &if_exists))
		return fail(v, "unsupported condition operator '%s'",
			    printable(name, sizeof(name), op));
	if (!json_object_is_type(keys, json_type_object))
		return fail(v, "condition operator %s must hold an object", op);
	if (!json_object_object_length(keys))
		return fail(v, "condition operator %s names no key", op);
	it = json_object_iter_begin(keys);
	end = json_object_iter_end(keys);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *key = json_object_iter_peek_name(&it);
		struct json_object *val = json_object_iter_peek_value(&it);
		const char *ctx_key;
		enum ckey k;
		size_t n;

		if (parse_ckey(key, &k, &ctx_key))
			return fail(v, "unsupported condition key '%s'",
				    printable(name, sizeof(name), key));
		n = list_len(val);
		if (json_object_is_type(val, json_type_array) && !n)
			return fail(v, "%s %s: empty list of values", op,
				    printable(name, sizeof(name), key));
		if (n > POLICY_MAX_VALUES)
			return fail(v, "%s %s: more than %d values", op,
				    printable(name, sizeof(name), key),
				    POLICY_MAX_VALUES);
		for (size_t i = 0; i < n; i++) {
			r = check_scalar(v, op, key, base, list_at(val, i));
			if (r)
				return r;
		}
	}
	return 0;
}

static int check_condition(struct vctx *v, struct json_object *c)
{
	struct json_object_iterator it, end;
	int r;

	if (!json_object_is_type(c, json_type_object))
		return fail(v, "Condition must be an object");
	it = json_object_iter_begin(c);
	end = json_object_iter_end(c);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		r = check_operator(v, json_object_iter_peek_name(&it),
				   json_object_iter_peek_value(&it));
		if (r)
			return r;
	}
	return 0;
}

static int check_statement(struct vctx *v, struct json_object *st)
{
	struct json_object_iterator it, end;
	bool effect = false, principal = false, action = false;
	bool resource = false;
	char name[NAME_BUF];
	int r;

	if (!json_object_is_type(st, json_type_object))
		return fail(v, "not an object");
	it = json_object_iter_begin(st);
	end = json_object_iter_end(st);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *el = json_object_iter_peek_name(&it);
		struct json_object *val = json_object_iter_peek_value(&it);

		r = 0;
		if (!strcmp(el, "Sid")) {
			if (!json_object_is_type(val, json_type_string))
				r = fail(v, "Sid must be a string");
		} else if (!strcmp(el, "Effect")) {
			if (!json_object_is_type(val, json_type_string) ||
			    (strcmp(json_object_get_string(val), "Allow") !=
				     0 &&
			     strcmp(json_object_get_string(val), "Deny") != 0))
				r = fail(v, "Effect must be \"Allow\" or "
					    "\"Deny\"");
			effect = true;
		} else if (!strcmp(el, "Principal")) {
			r = check_principal(v, val);
			principal = true;
		} else if (!strcmp(el, "NotPrincipal")) {
			r = fail(v, "NotPrincipal is not supported");
		} else if (!strcmp(el, "Action") || !strcmp(el, "NotAction")) {
			if (action)
				r = fail(v, "both Action and NotAction");
			else
				r = check_strings(v, el, val, check_action);
			action = true;
		} else if (!strcmp(el, "Resource") ||
			   !strcmp(el, "NotResource")) {
			if (resource)
				r = fail(v, "both Resource and NotResource");
			else
				r = check_strings(v, el, val, check_resource);
			resource = true;
		} else if (!strcmp(el, "Condition")) {
			r = check_condition(v, val);
		} else {
			r = fail(v, "unsupported element '%s'",
				 printable(name, sizeof(name), el));
		}
		if (r)
			return r;
	}
	if (!effect)
		return fail(v, "no Effect");
	/* A key policy statement without Principal is malformed in AWS. */
	if (!principal)
		return fail(v, "no Principal");
	if (!action)
		return fail(v, "no Action or NotAction");
	return 0;
}

/*
 * Reject what json-c would read differently from a person: duplicate object
 * keys (json-c keeps the last, so {"Effect":"Deny","Effect":"Allow"} would
 * read as Allow) and "\u0000" (json-c cuts keys at it).  doc is already
 * known to be valid JSON nested at most POLICY_MAX_DEPTH deep, so a light
 * scan suffices: count the members of each object in the order the objects
 * open ('{'), then compare with what json-c kept, walking its tree in the
 * same (document) order.
 */
static int count_members(const char *doc, size_t len, unsigned *counts,
			 size_t cap, size_t *nobj)
{
	size_t open[POLICY_MAX_DEPTH + 1], depth = 0, n = 0;
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		char c = doc[i];

		if (in_string) {
			if (c == '\\') {
				if (i + 5 < len && doc[i + 1] == 'u' &&
				    !memcmp(doc + i + 2, "0000", 4))
					return -EILSEQ;
				i++;
			} else if (c == '"') {
				in_string = false;
			}
			continue;
		}
		if (c == '"') {
			in_string = true;
		} else if (c == '{') {
			if (depth > POLICY_MAX_DEPTH || n == cap)
				return -EINVAL;
			open[depth++] = n;
			counts[n++] = 0;
		} else if (c == '}' && depth) {
			depth--;
		} else if (c == ':' && depth) {
			counts[open[depth - 1]]++;
		}
	}
	*nobj = n;
	return 0;
}

/* Recursion is bounded by the tokener's depth limit. */
static int same_members(struct json_object *o, const unsigned *counts,
			size_t nobj, size_t *next, int depth)
{
	struct json_object_iterator it, end;
	int r;

	if (depth > POLICY_MAX_DEPTH)
		return -EINVAL;
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			r = same_members(json_object_array_get_idx(o, i),
					 counts, nobj, next, depth + 1);
			if (r)
				return r;
		}
		return 0;
	}
	if (!json_object_is_type(o, json_type_object))
		return 0;
	if (*next >= nobj ||
	    counts[*next] != (unsigned)json_object_object_length(o))
		return -EINVAL;
	(*next)++;
	it = json_object_iter_begin(o);
	end = json_object_iter_end(o);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		r = same_members(json_object_iter_peek_value(&it), counts, nobj,
				 next, depth + 1);
		if (r)
			return r;
	}
	return 0;
}

static int check_unambiguous(struct vctx *v, const char *doc, size_t len,
			     struct json_object *root)
{
	/* Every object takes two bytes at least, "{}". */
	size_t cap = len / 2 + 1, nobj = 0, next = 0;
	unsigned *counts = calloc(cap, sizeof(*counts));
	int r;

	if (!counts)
		return -ENOMEM;
	r = count_members(doc, len, counts, cap, &nobj);
	if (r == -EILSEQ) {
		r = fail(v, "strings must not contain \\u0000");
		goto out;
	}
	if (r || same_members(root, counts, nobj, &next, 0) || next != nobj)
		r = fail(v, "duplicate key in an object");
out:
	free(counts);
	return r;
}

/*
 * Parse and validate doc.  On success *root owns the document and *stmts
 * points into it (an object or an array of objects).
 */
static int parse_policy(const char *doc, struct vctx *v,
			struct json_object **root, struct json_object **stmts)
{
	struct json_tokener *tok = NULL;
	struct json_object *obj = NULL, *statement = NULL;
	struct json_object_iterator it, end;
	char name[NAME_BUF];
	size_t len, n;
	int r;

	*root = NULL;
	*stmts = NULL;
	if (!doc)
		return fail(v, "no policy");
	len = strnlen(doc, POLICY_MAX_BYTES + 1);
	if (len > POLICY_MAX_BYTES)
		return fail(v, "policy is larger than %d bytes",
			    POLICY_MAX_BYTES);
	tok = json_tokener_new_ex(POLICY_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
					    JSON_TOKENER_VALIDATE_UTF8);
	/* Including the NUL tells json-c the text ends there ("null" or a
	 * bare number would otherwise wait for more). */
	obj = json_tokener_parse_ex(tok, doc, (int)len + 1);
	if (!obj) {
		enum json_tokener_error e = json_tokener_get_error(tok);

		/* json-c represents a parsed "null" as NULL. */
		if (e == json_tokener_success)
			r = fail(v, "policy is not a JSON object");
		else if (e == json_tokener_continue)
			r = fail(v, "not JSON: unexpected end of document");
		else
			r = fail(v, "not JSON: %s at offset %zu",
				 json_tokener_error_desc(e),
				 json_tokener_get_parse_end(tok));
		goto out;
	}
	if (json_tokener_get_parse_end(tok) != len) {
		r = fail(v, "not JSON: trailing data at offset %zu",
			 json_tokener_get_parse_end(tok));
		goto out;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		r = fail(v, "policy is not a JSON object");
		goto out;
	}
	r = check_unambiguous(v, doc, len, obj);
	if (r)
		goto out;

	it = json_object_iter_begin(obj);
	end = json_object_iter_end(obj);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *el = json_object_iter_peek_name(&it);
		struct json_object *val = json_object_iter_peek_value(&it);
		const char *s;

		if (!strcmp(el, "Statement")) {
			statement = val;
		} else if (!strcmp(el, "Version")) {
			s = json_object_is_type(val, json_type_string)
				    ? json_object_get_string(val)
				    : "";
			if (strcmp(s, "2012-10-17") != 0 &&
			    strcmp(s, "2008-10-17") != 0) {
				r = fail(v, "Version must be \"2012-10-17\" or "
					    "\"2008-10-17\"");
				goto out;
			}
			v->variables = !strcmp(s, "2012-10-17");
		} else if (!strcmp(el, "Id")) {
			if (!json_object_is_type(val, json_type_string)) {
				r = fail(v, "Id must be a string");
				goto out;
			}
		} else {
			r = fail(v, "unsupported element '%s'",
				 printable(name, sizeof(name), el));
			goto out;
		}
	}
	if (!statement) {
		r = fail(v, "no Statement");
		goto out;
	}
	if (json_object_is_type(statement, json_type_array)) {
		n = json_object_array_length(statement);
		if (!n) {
			r = fail(v, "Statement is empty");
			goto out;
		}
		if (n > POLICY_MAX_STATEMENTS) {
			r = fail(v, "more than %d statements",
				 POLICY_MAX_STATEMENTS);
			goto out;
		}
	} else if (json_object_is_type(statement, json_type_object)) {
		n = 1;
	} else {
		r = fail(v, "Statement must be an object or an array");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		v->stmt = i + 1;
		r = check_statement(v, list_at(statement, i));
		if (r)
			goto out;
	}
	v->stmt = 0;
	*root = obj;
	*stmts = statement;
	obj = NULL;
out:
	json_object_put(obj);
	json_tokener_free(tok);
	return r;
}

int policy_validate(const char *doc, char *err, size_t errlen)
{
	struct vctx v = { .err = err, .errlen = errlen };
	struct json_object *root, *stmts;
	int r;

	if (err && errlen)
		err[0] = 0;
	r = parse_policy(doc, &v, &root, &stmts);
	json_object_put(root);
	return r;
}

/* ---- evaluation ---------------------------------------------------------- */

struct ectx {
	const struct policy_request *rq;
	struct arn caller; /* parsed rq->principal_arn (partition "aws" at
			      least, for callers without one) */
	const char *role;  /* assumed-role caller: the role name */
	size_t role_len;   /* 0: not an assumed-role session */
	const char *principal_arn_key; /* the value of aws:PrincipalArn */
	char *role_arn;		       /* owned, when that is built */
};

/* One entry of Principal {"AWS": ...} against the caller. */
static bool aws_principal_matches(const struct ectx *e, const char *id)
{
	const struct policy_request *rq = e->rq;
	struct arn a;
	const char *name;

	if (!strcmp(id, "*"))
		return true;
	/* An account stands for all of its principals (see policy.h). */
	if (is_account_id(id))
		return rq->account && !strcmp(id, rq->account);
	if (rq->principal_arn && !strcmp(id, rq->principal_arn))
		return true;
	if (arn_parse(id, &a) || !slice_eq(a.service, a.service_len, "iam") ||
	    !slices_eq(a.partition, a.partition_len, e->caller.partition,
		       e->caller.partition_len))
		return false;
	if (!strcmp(a.resource, "root"))
		return rq->account &&
		       slice_eq(a.account, a.account_len, rq->account);
	/* A role names its sessions.  Role names are unique in an account
	 * whatever their path, and a session ARN carries no path, so the
	 * last component of the role ARN is what to compare. */
	if (e->role_len && !strncmp(a.resource, "role/", 5) &&
	    slices_eq(a.account, a.account_len, e->caller.account,
		      e->caller.account_len)) {
		name = strrchr(a.resource, '/') + 1;
		return slice_eq(e->role, e->role_len, name);
	}
	return false;
}

static bool principal_matches(const struct ectx *e, struct json_object *p)
{
	struct json_object *aws;

	if (json_object_is_type(p, json_type_string))
		return true; /* validated: "*" */
	/* "Service" principals never match: local callers are IAM
	 * principals, never AWS services. */
	if (!json_object_object_get_ex(p, "AWS", &aws))
		return false;
	for (size_t i = 0; i < list_len(aws); i++)
		if (aws_principal_matches(
			    e, json_object_get_string(list_at(aws, i))))
			return true;
	return false;
}

static bool list_matches(struct json_object *list, const char *s, bool icase)
{
	for (size_t i = 0; i < list_len(list); i++)
		if (glob_match(json_object_get_string(list_at(list, i)), s,
			       icase))
			return true;
	return false;
}

/*
 * The request's values for a condition key, one per call (*pos starts at 0),
 * then NULL.  Only kms:EncryptionContext:<k> may have several: AWS compares
 * the context key in the condition key case-insensitively (the value as the
 * operator says), so a context holding both "Dept" and "dept" gives both
 * values.  Case is folded for ASCII letters only.
 */
static const char *request_value(const struct ectx *e, const char *key,
				 size_t *pos)
{
	const struct policy_request *rq = e->rq;
	const char *ctx_key;
	enum ckey k;

	if (parse_ckey(key, &k, &ctx_key))
		return NULL; /* not reached: validated */
	if (k == CK_CONTEXT) {
		for (; *pos < rq->n_context; (*pos)++)
			if (rq->context[*pos].key &&
			    ascii_caseeq(rq->context[*pos].key, ctx_key))
				return rq->context[(*pos)++].value;
		return NULL;
	}
	if ((*pos)++)
		return NULL;
	switch (k) {
	case CK_CONTEXT:
		return NULL; /* above */
	case CK_CALLER_ACCOUNT:
		return rq->account;
	case CK_GRANT_AWS:
		return rq->grant_is_for_aws_resource ? "true" : "false";
	case CK_PRINCIPAL_ARN:
		return e->principal_arn_key;
	case CK_VIA_SERVICE:
		return rq->via_service;
	}
	return NULL;
}

static bool value_matches(enum op_base base, const char *want, const char *got)
{
	switch (base) {
	case OP_EQ:
	case OP_NOT_EQ:
		return !strcmp(want, got);
	case OP_EQ_ICASE:
	case OP_BOOL:
		return ascii_caseeq(want, got);
	case OP_LIKE:
	case OP_NOT_LIKE:
		return glob_match(want, got, false);
	}
	return false;
}

/* Does the condition operator `op` with its keys hold for the request?
 * For a key the request has several values of (context keys differing only
 * in case), the answer that refuses more is taken: an Allow's condition must
 * hold for every value, a Deny's for any. */
static bool operator_matches(const struct ectx *e, const char *op,
			     struct json_object *keys, bool deny)
{
	struct json_object_iterator it, end;
	enum op_base base;
	bool if_exists;

	if (parse_operator(op, &base, &if_exists))
		return false; /* not reached: validated */
	it = json_object_iter_begin(keys);
	end = json_object_iter_end(keys);
	/* Keys of one operator AND together; values of one key OR. */
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		struct json_object *vals = json_object_iter_peek_value(&it);
		const char *name = json_object_iter_peek_name(&it), *got;
		bool negated = base == OP_NOT_EQ || base == OP_NOT_LIKE;
		bool seen = false, all = true, some = false;
		size_t pos = 0;

		while ((got = request_value(e, name, &pos))) {
			bool any = false;

			for (size_t i = 0; i < list_len(vals) && !any; i++)
				any = value_matches(
					base, scalar_string(list_at(vals, i)),
					got);
			seen = true;
			if (any == negated)
				all = false;
			else
				some = true;
		}
		if (!seen) {
			/* IAM: an absent key fails a condition, except that a
			 * negated one holds, and ...IfExists holds. */
			if (if_exists || negated)
				continue;
			return false;
		}
		if (!(deny ? some : all))
			return false;
	}
	return true;
}

static bool statement_matches(const struct ectx *e, struct json_object *st)
{
	const struct policy_request *rq = e->rq;
	const char *resource = rq->resource ? rq->resource : "";
	struct json_object *val;
	bool deny;

	json_object_object_get_ex(st, "Principal", &val);
	if (!principal_matches(e, val))
		return false;
	if (json_object_object_get_ex(st, "Action", &val)) {
		if (!list_matches(val, rq->action, true))
			return false;
	} else if (json_object_object_get_ex(st, "NotAction", &val)) {
		if (list_matches(val, rq->action, true))
			return false;
	}
	/* No Resource in a key policy means the key the policy is on. */
	if (json_object_object_get_ex(st, "Resource", &val)) {
		if (!list_matches(val, resource, false))
			return false;
	} else if (json_object_object_get_ex(st, "NotResource", &val)) {
		if (list_matches(val, resource, false))
			return false;
	}
	json_object_object_get_ex(st, "Effect", &val);
	deny = !strcmp(json_object_get_string(val), "Deny");
	if (json_object_object_get_ex(st, "Condition", &val)) {
		struct json_object_iterator it = json_object_iter_begin(val);
		struct json_object_iterator end = json_object_iter_end(val);

		for (; !json_object_iter_equal(&it, &end);
		     json_object_iter_next(&it))
			if (!operator_matches(
				    e, json_object_iter_peek_name(&it),
				    json_object_iter_peek_value(&it), deny))
				return false;
	}
	return true;
}

/* "statement 'Sid'" or "statement N" (1-based) into buf. */
static const char *statement_name(char *buf, size_t n, struct json_object *st,
				  size_t index)
{
	struct json_object *sid;
	char name[NAME_BUF];

	if (json_object_object_get_ex(st, "Sid", &sid) &&
	    json_object_get_string_len(sid) > 0)
		snprintf(buf, n, "statement '%s'",
			 printable(name, sizeof(name),
				   json_object_get_string(sid)));
	else
		snprintf(buf, n, "statement %zu", index + 1);
	return buf;
}

static int ectx_init(struct ectx *e, const struct policy_request *rq)
{
	*e = (struct ectx){ .rq = rq, .principal_arn_key = rq->principal_arn };
	if (arn_parse(rq->principal_arn, &e->caller)) {
		e->caller = (struct arn){ .partition = "aws",
					  .partition_len = 3,
					  .service = "",
					  .region = "",
					  .account = "",
					  .resource = "" };
		return 0;
	}
	if (!assumed_role(&e->caller, &e->role, &e->role_len))
		return 0;
	/* aws:PrincipalArn of a role session is the role's ARN. */
	if (asprintf(&e->role_arn, "arn:%.*s:iam::%.*s:role/%.*s",
		     (int)e->caller.partition_len, e->caller.partition,
		     (int)e->caller.account_len, e->caller.account,
		     (int)e->role_len, e->role) < 0) {
		e->role_arn = NULL;
		return -ENOMEM;
	}
	e->principal_arn_key = e->role_arn;
	return 0;
}

int policy_evaluate(const char *doc, const struct policy_request *rq,
		    enum policy_decision *out, char *why, size_t whylen)
{
	struct json_object *root = NULL, *stmts = NULL, *allow = NULL;
	char err[256] = "", who[NAME_BUF + 16], name[NAME_BUF];
	struct vctx v = { .err = err, .errlen = sizeof(err) };
	size_t allow_index = 0;
	struct ectx e = { 0 };
	int r;

	if (why && whylen)
		why[0] = 0;
	if (!out)
		return -EINVAL;
	*out = POLICY_IMPLICIT_DENY;
	if (!rq || !rq->action || (rq->n_context && !rq->context)) {
		if (why && whylen)
			snprintf(why, whylen, "invalid request");
		return -EINVAL;
	}
	r = parse_policy(doc, &v, &root, &stmts);
	if (r) {
		if (why && whylen)
			snprintf(why, whylen, "invalid policy: %s", err);
		return r;
	}
	r = ectx_init(&e, rq);
	if (r)
		goto out;
	for (size_t i = 0; i < list_len(stmts); i++) {
		struct json_object *st = list_at(stmts, i), *effect;

		if (!statement_matches(&e, st))
			continue;
		json_object_object_get_ex(st, "Effect", &effect);
		if (!strcmp(json_object_get_string(effect), "Deny")) {
			/* An explicit Deny ends evaluation: nothing can
			 * override it. */
			*out = POLICY_EXPLICIT_DENY;
			if (why && whylen)
				snprintf(why, whylen, "denied by %s",
					 statement_name(who, sizeof(who), st,
							i));
			goto out;
		}
		if (!allow) {
			allow = st;
			allow_index = i;
		}
	}
	if (allow) {
		*out = POLICY_ALLOW;
		if (why && whylen)
			snprintf(why, whylen, "allowed by %s",
				 statement_name(who, sizeof(who), allow,
						allow_index));
	} else if (why && whylen) {
		snprintf(why, whylen, "no statement allows %s",
			 printable(name, sizeof(name), rq->action));
	}
out:
	free(e.role_arn);
	json_object_put(root);
	return r;
}

char *policy_default(const char *account)
{
	char *doc;

	/* The account goes into JSON unescaped: only a real id may. */
	if (!account || !is_account_id(account)) {
		errno = EINVAL;
		return NULL;
	}
	if (asprintf(&doc,
		     "{\"Version\":\"2012-10-17\",\"Id\":\"key-default-1\","
		     "\"Statement\":[{\"Sid\":\"Enable IAM User Permissions\","
		     "\"Effect\":\"Allow\","
		     "\"Principal\":{\"AWS\":\"arn:aws:iam::%s:root\"},"
		     "\"Action\":\"kms:*\",\"Resource\":\"*\"}]}",
		     account) < 0)
		return NULL;
	return doc;
}
