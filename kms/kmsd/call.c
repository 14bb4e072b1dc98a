/* SPDX-License-Identifier: Apache-2.0 */
/*
 * call.c — what every KMS action handler needs: field validation with
 * AWS's error names, key resolution, authorization through the key policy
 * and grants, key-state checks, persisting, paging.  The handlers live in
 * actions_keys.c, actions_crypto.c and actions_grants.c, the dispatch in
 * actions.c; all of them stand on this file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "crypto.h"
#include "policy.h"

int kmsd_call_error(struct call *c, const char *type, const char *fmt, ...)
{
	va_list ap;

	c->error_type = type;
	/* AWS answers 500 for its own faults, 412 for a dry run that would
	 * have succeeded, 400 for everything else. */
	c->http_status = !strcmp(type, "KMSInternalException")	     ? 500
			 : !strcmp(type, "DryRunOperationException") ? 412
								     : 400;
	va_start(ap, fmt);
	vsnprintf(c->message, sizeof(c->message), fmt, ap);
	va_end(ap);
	if (c->http_status == 500)
		c->err = -EIO;
	else if (!strcmp(type, "AccessDeniedException"))
		c->err = -EACCES;
	else if (!strcmp(type, "NotFoundException"))
		c->err = -ENOENT;
	else
		c->err = -EINVAL;
	return c->err;
}

/* ---- request fields ------------------------------------------------------ */

/* AWS phrases field errors as "1 validation error detected: Value at
 * 'keyId' failed to satisfy constraint: ...", with the field's name in
 * lower camel case. */
static void field_name(const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s", name);
	if (out[0] >= 'A' && out[0] <= 'Z')
		out[0] = (char)(out[0] - 'A' + 'a');
}

static int validation(struct call *c, const char *name, const char *what)
{
	char f[64];

	field_name(name, f, sizeof(f));
	return kmsd_call_error(
		c, "ValidationException",
		"1 validation error detected: Value at '%s' failed "
		"to satisfy constraint: %s",
		f, what);
}

static int wrong_type(struct call *c, const char *name, const char *type)
{
	return kmsd_call_error(c, "SerializationException",
			       "Field %s must be %s", name, type);
}

static int bad_length(struct call *c, const char *name, size_t min, size_t max)
{
	char what[96];

	snprintf(what, sizeof(what),
		 "Member must have length between %zu and %zu", min, max);
	return validation(c, name, what);
}

const char *kmsd_req_string(struct call *c, json_object *req, const char *name,
			    bool required, size_t min, size_t max, int *rc)
{
	json_object *v = kmsd_member(req, name);
	size_t len;

	*rc = 0;
	if (!v || json_object_is_type(v, json_type_null)) {
		if (required)
			*rc = validation(c, name, "Member must not be null");
		return NULL;
	}
	if (!json_object_is_type(v, json_type_string)) {
		*rc = wrong_type(c, name, "a string");
		return NULL;
	}
	len = (size_t)json_object_get_string_len(v);
	if (len < min || len > max) {
		*rc = bad_length(c, name, min, max);
		return NULL;
	}
	if (strlen(json_object_get_string(v)) != len) {
		*rc = validation(c, name, "Member must not contain NUL");
		return NULL;
	}
	return json_object_get_string(v);
}

int kmsd_req_int(struct call *c, json_object *req, const char *name,
		 bool required, int64_t min, int64_t max, int64_t *out,
		 bool *present)
{
	json_object *v = kmsd_member(req, name);
	char what[96];
	int64_t n;

	if (present)
		*present = false;
	if (!v || json_object_is_type(v, json_type_null)) {
		if (required)
			return validation(c, name, "Member must not be null");
		return 0;
	}
	if (!json_object_is_type(v, json_type_int))
		return wrong_type(c, name, "an integer");
	n = json_object_get_int64(v);
	if (n < min || n > max) {
		snprintf(what, sizeof(what),
			 "Member must have value between %lld and %lld",
			 (long long)min, (long long)max);
		return validation(c, name, what);
	}
	*out = n;
	if (present)
		*present = true;
	return 0;
}

int kmsd_req_bool(struct call *c, json_object *req, const char *name, bool *out)
{
	json_object *v = kmsd_member(req, name);

	if (!v || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return wrong_type(c, name, "a boolean");
	*out = json_object_get_boolean(v);
	return 0;
}

int kmsd_req_blob(struct call *c, json_object *req, const char *name,
		  bool required, size_t max, bool secret, uint8_t **out,
		  size_t *len)
{
	const char *s;
	uint8_t *buf;
	size_t slen;
	long n;
	int rc;

	*out = NULL;
	*len = 0;
	/* base64 of max bytes is at most 4 * ceil(max / 3) characters */
	if (c->taken_name && !strcmp(c->taken_name, name)) {
		/* taken out of the body before parsing: a string */
		s = c->taken;
		slen = c->taken_len;
		if (slen < 1 || slen > 4 * ((max + 2) / 3))
			return bad_length(c, name, 1, 4 * ((max + 2) / 3));
	} else {
		s = kmsd_req_string(c, req, name, required, 1,
				    4 * ((max + 2) / 3), &rc);
		if (!s)
			return rc;
		slen = strlen(s);
	}
	buf = secret ? secmem_alloc(B64_DECODED_MAX(slen) + 1)
		     : malloc(B64_DECODED_MAX(slen) + 1);
	if (!buf)
		return kmsd_call_error(c, "KMSInternalException",
				       "out of memory");
	n = b64_decode(s, slen, buf);
	if (n < 1 || (size_t)n > max) {
		if (secret)
			secmem_free(buf);
		else
			free(buf);
		if (n < 0)
			return kmsd_call_error(c, "SerializationException",
					       "Field %s is not valid base64",
					       name);
		char what[96];

		snprintf(what, sizeof(what),
			 "Member must have length between 1 and %zu", max);
		return validation(c, name, what);
	}
	*out = buf;
	*len = (size_t)n;
	return 0;
}

int kmsd_req_context(struct call *c, json_object *req, const char *name,
		     json_object **out)
{
	json_object *v = kmsd_member(req, name);
	size_t total = 0;

	*out = NULL;
	if (!v || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_object))
		return wrong_type(c, name, "a map of strings");
	json_object_object_foreach(v, k, val)
	{
		if (!json_object_is_type(val, json_type_string))
			return wrong_type(c, name, "a map of strings");
		total += strlen(k) + (size_t)json_object_get_string_len(val);
		if (!*k)
			return validation(c, name,
					  "Map keys must not be empty");
	}
	if (json_object_object_length(v) > MAX_CONTEXT_PAIRS)
		return validation(c, name, "Map must have at most 64 entries");
	if (total > MAX_CONTEXT)
		return validation(c, name,
				  "Map must have at most 8192 characters");
	*out = v;
	return 0;
}

int kmsd_req_grant_tokens(struct call *c, json_object *req)
{
	json_object *v = kmsd_member(req, "GrantTokens"), *grants;
	size_t n;

	if (!v || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return wrong_type(c, "GrantTokens", "a list of strings");
	n = json_object_array_length(v);
	if (n > MAX_GRANT_TOKENS)
		return validation(c, "GrantTokens",
				  "Member must have length less than or equal "
				  "to 10");
	grants = state_grants(c->st);
	for (size_t i = 0; i < n; i++) {
		json_object *t = json_object_array_get_idx(v, i);
		bool found = false;

		if (!json_object_is_type(t, json_type_string) ||
		    json_object_get_string_len(t) < 1 ||
		    json_object_get_string_len(t) > 8192)
			return kmsd_call_error(c, "InvalidGrantTokenException",
					       "The grant token is invalid");
		for (size_t g = 0; g < json_object_array_length(grants); g++) {
			const char *tok = kmsd_member_string(
				json_object_array_get_idx(grants, g), "_token");

			if (tok && !strcmp(tok, json_object_get_string(t)))
				found = true;
		}
		if (!found)
			return kmsd_call_error(
				c, "InvalidGrantTokenException",
				"The grant token is invalid or has "
				"been retired");
	}
	return 0;
}

/* ---- keys ---------------------------------------------------------------- */

const char *kmsd_key_arn(json_object *k)
{
	return kmsd_member_string(k, "Arn");
}

const char *kmsd_key_account(json_object *k)
{
	return kmsd_member_string(k, "AWSAccountId");
}

const char *kmsd_key_state(json_object *k)
{
	return kmsd_member_string(k, "KeyState");
}

/* Remove keys whose deletion date has passed, with their aliases and
 * grants, as AWS does when the waiting period ends. */
static int purge_deleted(struct call *c)
{
	json_object *keys = state_keys(c->st);
	bool changed = false;

	for (size_t i = json_object_array_length(keys); i-- > 0;) {
		json_object *k = json_object_array_get_idx(keys, i);
		json_object *when = kmsd_member(k, "DeletionDate");
		const char *id = kmsd_member_string(k, "KeyId");
		json_object *lists[2] = { state_aliases(c->st),
					  state_grants(c->st) };
		const char *fields[2] = { "TargetKeyId", "_key_id" };

		if (!when || !id || json_object_get_int64(when) > c->now ||
		    strcmp(kmsd_key_state(k), "PendingDeletion"))
			continue;
		for (int l = 0; l < 2; l++)
			for (size_t j = json_object_array_length(lists[l]);
			     j-- > 0;) {
				const char *t = kmsd_member_string(
					json_object_array_get_idx(lists[l], j),
					fields[l]);

				if (t && !strcmp(t, id))
					json_object_array_del_idx(lists[l], j,
								  1);
			}
		json_object_array_del_idx(keys, i, 1);
		changed = true;
	}
	return changed ? state_commit(c->st) : 0;
}

/* Automatic rotation: when a key's rotation date has passed, add material
 * now (lazily, on first use). */
static int rotate_if_due(struct call *c, json_object *k)
{
	json_object *rot = kmsd_member(k, "_rotation");
	json_object *next = kmsd_member(rot, "next");
	int64_t period;

	if (!rot || !json_object_get_boolean(kmsd_member(rot, "enabled")) ||
	    !next || json_object_get_int64(next) > c->now)
		return 0;
	period = json_object_get_int64(kmsd_member(rot, "period_days"));
	if (state_new_material(c->st, k))
		return -EIO;
	json_object_object_add(rot, "next",
			       json_object_new_int64(c->now + period * 86400));
	return state_commit(c->st);
}

static json_object *find_key(struct call *c, const char *field,
			     const char *value, const char *account)
{
	json_object *keys = state_keys(c->st);

	for (size_t i = 0; i < json_object_array_length(keys); i++) {
		json_object *k = json_object_array_get_idx(keys, i);
		const char *v = kmsd_member_string(k, field);
		const char *region = kmsd_member_string(k, "_region");

		if (v && !strcmp(v, value) && region &&
		    !strcmp(region, c->region) &&
		    (!account || !strcmp(kmsd_key_account(k), account)))
			return k;
	}
	return NULL;
}

static json_object *find_alias(struct call *c, const char *name,
			       const char *account)
{
	json_object *aliases = state_aliases(c->st);

	for (size_t i = 0; i < json_object_array_length(aliases); i++) {
		json_object *a = json_object_array_get_idx(aliases, i);
		const char *n = kmsd_member_string(a, "AliasName");

		if (n && !strcmp(n, name) &&
		    !strcmp(kmsd_member_string(a, "_region"), c->region) &&
		    !strcmp(kmsd_member_string(a, "_account"), account))
			return a;
	}
	return NULL;
}

/* "arn:aws:kms:REGION:ACCOUNT:RESOURCE": split into parts, or false. */
static bool split_kms_arn(const char *arn, char region[64], char account[13],
			  const char **resource)
{
	const char *p, *q;

	if (strncmp(arn, "arn:aws:kms:", 12))
		return false;
	p = arn + 12;
	q = strchr(p, ':');
	if (!q || q == p || (size_t)(q - p) >= 64)
		return false;
	memcpy(region, p, (size_t)(q - p));
	region[q - p] = 0;
	p = q + 1;
	q = strchr(p, ':');
	if (!q || q - p != 12)
		return false;
	memcpy(account, p, 12);
	account[12] = 0;
	*resource = q + 1;
	return true;
}

int kmsd_key_resolve(struct call *c, const char *key_id, json_object **out)
{
	char region[64], account[13];
	const char *resource;
	json_object *k = NULL, *a;

	/* A failed commit reloads the state: no object taken from it before
	 * survives, so stop here. */
	if (purge_deleted(c))
		return kmsd_call_error(c, "KMSInternalException",
				       "cannot persist the key store");
	if (split_kms_arn(key_id, region, account, &resource)) {
		/* An ARN names its region: a key of another region does not
		 * exist here — the "CMK in the wrong region" failure. */
		if (strcmp(region, c->region))
			return kmsd_call_error(
				c, "NotFoundException",
				"Key '%s' does not exist: it names "
				"region %s, this request is for %s",
				key_id, region, c->region);
		if (!strncmp(resource, "key/", 4)) {
			k = find_key(c, "KeyId", resource + 4, account);
		} else if (!strncmp(resource, "alias/", 6)) {
			a = find_alias(c, resource, account);
			if (a)
				k = find_key(
					c, "KeyId",
					kmsd_member_string(a, "TargetKeyId"),
					NULL);
		}
	} else if (!strncmp(key_id, "alias/", 6)) {
		a = find_alias(c, key_id, c->caller->account);
		if (a)
			k = find_key(c, "KeyId",
				     kmsd_member_string(a, "TargetKeyId"),
				     NULL);
	} else {
		k = find_key(c, "KeyId", key_id, c->caller->account);
	}
	if (!k)
		return kmsd_call_error(c, "NotFoundException",
				       "Key '%s' does not exist", key_id);
	if (rotate_if_due(c, k))
		return kmsd_call_error(c, "KMSInternalException",
				       "cannot persist the key store");
	snprintf(c->key_arn, sizeof(c->key_arn), "%s", kmsd_key_arn(k));
	*out = k;
	return 0;
}

int kmsd_key_check_usable(struct call *c, json_object *k)
{
	const char *s = kmsd_key_state(k);

	if (!strcmp(s, "Enabled"))
		return 0;
	if (!strcmp(s, "Disabled"))
		return kmsd_call_error(c, "DisabledException",
				       "%s is disabled.", kmsd_key_arn(k));
	return kmsd_call_error(c, "KMSInvalidStateException", "%s is %s.",
			       kmsd_key_arn(k), s);
}

int kmsd_key_check_not_pending_deletion(struct call *c, json_object *k)
{
	if (!strcmp(kmsd_key_state(k), "PendingDeletion"))
		return kmsd_call_error(c, "KMSInvalidStateException",
				       "%s is pending deletion.",
				       kmsd_key_arn(k));
	return 0;
}

/* Operations AWS allows on a key of another account (when the key policy
 * or a grant permits); all others are refused across accounts. */
static bool cross_account_op(const char *op)
{
	static const char *const ops[] = {
		"Decrypt",	   "Encrypt",
		"GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
		"ReEncryptFrom",   "ReEncryptTo",
		"DescribeKey",	   "CreateGrant",
		"ListGrants",	   "RevokeGrant",
		"RetireGrant",	   "GetKeyRotationStatus",
	};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(ops[i], op))
			return true;
	return false;
}

int kmsd_authorize(struct call *c, json_object *k, const char *op,
		   json_object *context)
{
	return kmsd_authorize_ex(c, k, op, context, true, NULL);
}

static json_object *grant_find(struct call *c, json_object *k, const char *op,
			       json_object *context,
			       const struct grant_child *child);

/* kmsd_authorize_ex(), and for CreateGrant through a grant, only a grant
 * that may give what `child` asks (NULL: any grant allowing op). */
static int authorize(struct call *c, json_object *k, const char *op,
		     json_object *context, bool grants, json_object **via,
		     const struct grant_child *child)
{
	struct policy_kv kv[64];
	struct policy_request rq = { 0 };
	enum policy_decision d = POLICY_IMPLICIT_DENY;
	const char *policy = kmsd_member_string(k, "_policy");
	char action[80], why[160] = "";
	size_t n = 0;

	snprintf(action, sizeof(action), "kms:%s", op);
	if (strcmp(c->caller->account, kmsd_key_account(k)) &&
	    !cross_account_op(op))
		return kmsd_call_error(
			c, "AccessDeniedException",
			"User: %s is not authorized to perform: %s "
			"on resource: %s because %s cannot be "
			"performed on a key in another account",
			c->caller->arn, action, kmsd_key_arn(k), action);
	if (context) {
		json_object_object_foreach(context, ck, cv)
		{
			/* req_context bounds contexts; never evaluate a
			 * policy on part of one (a Deny could hide). */
			if (n == sizeof(kv) / sizeof(kv[0]))
				return kmsd_call_error(
					c, "ValidationException",
					"too many encryption context "
					"pairs");
			kv[n].key = ck;
			kv[n].value = json_object_get_string(cv);
			n++;
		}
	}
	rq.principal_arn = c->caller->arn;
	rq.account = c->caller->account;
	rq.action = action;
	rq.resource = kmsd_key_arn(k);
	rq.context = kv;
	rq.n_context = n;
	if (via)
		*via = NULL;
	if (policy && policy_evaluate(policy, &rq, &d, why, sizeof(why)) == 0 &&
	    d == POLICY_ALLOW)
		return 0;
	if (d == POLICY_EXPLICIT_DENY)
		return kmsd_call_error(
			c, "AccessDeniedException",
			"User: %s is not authorized to perform: %s "
			"on resource: %s with an explicit deny in a "
			"resource-based policy (%s)",
			c->caller->arn, action, kmsd_key_arn(k), why);
	if (grants) {
		json_object *g = grant_find(c, k, op, context, child);

		if (g) {
			if (via)
				*via = g;
			return 0;
		}
		/* A grant allows CreateGrant, but not this grant. */
		if (child && grant_find(c, k, op, context, NULL))
			return kmsd_call_error(
				c, "AccessDeniedException",
				"User: %s is not authorized to perform: %s "
				"on resource: %s: a grant created through a "
				"grant may allow only operations of that grant, "
				"with constraints at least as strict",
				c->caller->arn, action, kmsd_key_arn(k));
	}
	return kmsd_call_error(c, "AccessDeniedException",
			       "User: %s is not authorized to perform: %s on "
			       "resource: %s because no resource-based policy "
			       "allows the %s action",
			       c->caller->arn, action, kmsd_key_arn(k), action);
}

int kmsd_authorize_ex(struct call *c, json_object *k, const char *op,
		      json_object *context, bool grants, json_object **via)
{
	return authorize(c, k, op, context, grants, via, NULL);
}

int kmsd_authorize_create_grant(struct call *c, json_object *k,
				const struct grant_child *child)
{
	return authorize(c, k, "CreateGrant", NULL, true, NULL, child);
}

/* ---- responses ------------------------------------------------------------
 */

int kmsd_commit(struct call *c)
{
	int r;

	/* A dry run stops where it would have changed something (its
	 * changes in memory are rolled back with the failure). */
	if (c->dry_run)
		return kmsd_dry_run_done(c);
	r = state_commit(c->st);

	if (r)
		return kmsd_call_error(c, "KMSInternalException",
				       "cannot persist the key store: %s",
				       strerror(-r));
	return 0;
}

int kmsd_dry_run_done(struct call *c)
{
	return kmsd_call_error(c, "DryRunOperationException",
			       "The request would have succeeded, but the "
			       "DryRun option is set.");
}

json_object *kmsd_key_metadata(json_object *k)
{
	json_object *md = json_object_new_object();

	json_object_object_foreach(k, name, val)
	{
		json_object *copy = NULL;

		if (name[0] == '_')
			continue;
		if (json_object_deep_copy(val, &copy, NULL) == 0)
			json_object_object_add(md, name, copy);
	}
	return md;
}

int kmsd_paginate(struct call *c, json_object *req, json_object *items,
		  json_object *resp, const char *field, int64_t max,
		  int64_t dflt)
{
	size_t n = json_object_array_length(items), start = 0;
	json_object *page = json_object_new_array();
	const char *marker;
	int64_t limit = dflt;
	char *end, next[24];
	int rc;

	if (kmsd_req_int(c, req, "Limit", false, 1, max, &limit, NULL)) {
		json_object_put(page);
		return kmsd_failed(c);
	}
	marker = kmsd_req_string(c, req, "Marker", false, 1, 320, &rc);
	if (rc) {
		json_object_put(page);
		return kmsd_failed(c);
	}
	/* Markers are the decimal index of the next item: opaque to
	 * clients, and checked like any input. */
	if (marker) {
		unsigned long long m = strtoull(marker, &end, 10);

		if (*end || m > n) {
			json_object_put(page);
			return kmsd_call_error(c, "InvalidMarkerException",
					       "The marker is not valid");
		}
		start = (size_t)m;
	}
	for (size_t i = start; i < n && i < start + (size_t)limit; i++)
		json_object_array_add(
			page,
			json_object_get(json_object_array_get_idx(items, i)));
	json_object_object_add(resp, field, page);
	json_object_object_add(
		resp, "Truncated",
		json_object_new_boolean(start + (size_t)limit < n));
	if (start + (size_t)limit < n) {
		snprintf(next, sizeof(next), "%zu", start + (size_t)limit);
		json_object_object_add(resp, "NextMarker",
				       kmsd_json_string(next));
	}
	return 0;
}

/* ---- grants -------------------------------------------------------------- */

bool kmsd_names_caller(struct call *c, const char *principal)
{
	char root[64];

	if (!principal)
		return false;
	if (!strcmp(principal, c->caller->arn))
		return true;
	snprintf(root, sizeof(root), "arn:aws:iam::%s:root",
		 c->caller->account);
	return !strcmp(principal, root) ||
	       !strcmp(principal, c->caller->account);
}

bool kmsd_has_op(json_object *g, const char *op)
{
	json_object *ops = kmsd_member(g, "Operations");

	for (size_t i = 0; i < json_object_array_length(ops); i++)
		if (!strcmp(json_object_get_string(
				    json_object_array_get_idx(ops, i)),
			    op))
			return true;
	return false;
}

/* Are a and b equal, ignoring the case of ASCII letters? */
static bool key_caseeq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		int x = (unsigned char)*a, y = (unsigned char)*b;

		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return false;
	}
	return *a == *b;
}

/* The value under key in ctx, keys compared as key_caseeq: NULL when none,
 * and *ambiguous set when two keys match with different values. */
static const char *value_of(json_object *ctx, const char *key, bool *ambiguous)
{
	const char *found = NULL;

	if (!ctx)
		return NULL;
	json_object_object_foreach(ctx, k, v)
	{
		if (!key_caseeq(k, key))
			continue;
		if (found && strcmp(found, json_object_get_string(v)))
			*ambiguous = true;
		found = json_object_get_string(v);
	}
	return found;
}

/*
 * Every pair of `need` is in ctx (and, when exact, ctx has no other key).
 * As AWS compares grant constraints, keys match case-insensitively (ASCII
 * letters), values exactly.  A ctx with keys differing only in case and
 * holding different values under them meets no constraint on that key.
 */
static bool context_covers(json_object *ctx, json_object *need, bool exact)
{
	bool ambiguous = false;

	if (!need)
		return true;
	json_object_object_foreach(need, nk, nv)
	{
		const char *got = value_of(ctx, nk, &ambiguous);

		if (!got || ambiguous ||
		    strcmp(got, json_object_get_string(nv)))
			return false;
	}
	if (!exact || !ctx)
		return true;
	json_object_object_foreach(ctx, ck, cv)
	{
		(void)cv;
		if (!value_of(need, ck, &ambiguous))
			return false;
	}
	return true;
}

/* The operations that take an encryption context: the only ones grant
 * constraints apply to.  AWS does not apply them to DescribeKey or
 * RetireGrant, and to CreateGrant only as a bound on the grants made
 * (grant_gives_child). */
static bool op_takes_context(const char *op)
{
	static const char *const ops[] = {
		"Encrypt",	   "Decrypt",
		"ReEncryptFrom",   "ReEncryptTo",
		"GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
	};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(ops[i], op))
			return true;
	return false;
}

static bool constraints_met(json_object *g, const char *op, json_object *ctx)
{
	json_object *cons = kmsd_member(g, "Constraints");
	json_object *subset = kmsd_member(cons, "EncryptionContextSubset");
	json_object *equals = kmsd_member(cons, "EncryptionContextEquals");

	if (!op_takes_context(op))
		return true;
	if (subset && !context_covers(ctx, subset, false))
		return false;
	if (equals && !context_covers(ctx, equals, true))
		return false;
	return true;
}

/*
 * May a grantee pass on grant g as `child`?  AWS: its operations must be
 * some or all of g's, and its constraints at least as strict as g's: an
 * EncryptionContextSubset may gain pairs but not lose any, and may become
 * an EncryptionContextEquals holding at least its pairs; an
 * EncryptionContextEquals must stay the same.  An unconstrained g bounds
 * nothing.
 */
static bool grant_gives_child(json_object *g, const struct grant_child *child)
{
	json_object *cons = kmsd_member(g, "Constraints");
	json_object *subset = kmsd_member(cons, "EncryptionContextSubset");
	json_object *equals = kmsd_member(cons, "EncryptionContextEquals");

	/* An empty subset is met by every context: it bounds nothing. */
	if (subset && !json_object_object_length(subset))
		subset = NULL;
	for (size_t i = 0; i < json_object_array_length(child->ops); i++)
		if (!kmsd_has_op(
			    g, json_object_get_string(json_object_array_get_idx(
				       child->ops, i))))
			return false;
	if (equals)
		return child->equals &&
		       context_covers(child->equals, equals, true);
	if (subset)
		return (child->subset &&
			context_covers(child->subset, subset, false)) ||
		       (child->equals &&
			context_covers(child->equals, subset, false));
	return true;
}

static json_object *grant_find(struct call *c, json_object *k, const char *op,
			       json_object *context,
			       const struct grant_child *child)
{
	json_object *grants = state_grants(c->st);
	const char *id = kmsd_member_string(k, "KeyId");

	for (size_t i = 0; i < json_object_array_length(grants); i++) {
		json_object *g = json_object_array_get_idx(grants, i);

		if (!strcmp(kmsd_member_string(g, "_key_id"), id) &&
		    kmsd_names_caller(
			    c, kmsd_member_string(g, "GranteePrincipal")) &&
		    kmsd_has_op(g, op) && constraints_met(g, op, context) &&
		    (!child || grant_gives_child(g, child)))
			return g;
	}
	return NULL;
}

json_object *kmsd_grant_find(struct call *c, json_object *k, const char *op,
			     json_object *context)
{
	return grant_find(c, k, op, context, NULL);
}
