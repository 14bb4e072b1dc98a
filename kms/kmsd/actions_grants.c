/* SPDX-License-Identifier: Apache-2.0 */
/*
 * actions_grants.c — KMS grants: CreateGrant, ListGrants,
 * ListRetirableGrants, RevokeGrant, RetireGrant.  The lookup authorization
 * falls back to when the key policy does not allow a request is call.c's.
 *
 * Grants take effect at once here (AWS makes them eventually consistent and
 * offers grant tokens to use them immediately; tokens are accepted and
 * checked, but not needed).  Revoking or retiring one withdraws it at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "call.h"
#include "crypto.h"

/* Operations a grant on a symmetric encryption key may allow. */
static const char *const grant_ops[] = {
	"Decrypt",	   "Encrypt",
	"GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
	"ReEncryptFrom",   "ReEncryptTo",
	"CreateGrant",	   "RetireGrant",
	"DescribeKey",
};

static bool valid_op(const char *op)
{
	for (size_t i = 0; i < sizeof(grant_ops) / sizeof(grant_ops[0]); i++)
		if (!strcmp(grant_ops[i], op))
			return true;
	return false;
}

/* A principal ARN a grant may name. */
static int check_principal(struct call *c, const char *field, const char *p)
{
	if (strncmp(p, "arn:aws:iam::", 13) && strncmp(p, "arn:aws:sts::", 13))
		return kmsd_call_error(
			c, "ValidationException",
			"1 validation error detected: Value at '%s' "
			"failed to satisfy constraint: Member must "
			"be an IAM principal ARN",
			field);
	return 0;
}

static int check_operations(struct call *c, json_object *ops)
{
	size_t n;

	if (!json_object_is_type(ops, json_type_array))
		return kmsd_call_error(
			c, "ValidationException",
			"1 validation error detected: Value at "
			"'operations' failed to satisfy constraint: "
			"Member must not be null");
	n = json_object_array_length(ops);
	if (n < 1 || n > sizeof(grant_ops) / sizeof(grant_ops[0]))
		return kmsd_call_error(
			c, "ValidationException",
			"Operations must list 1 to %zu operations",
			sizeof(grant_ops) / sizeof(grant_ops[0]));
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(ops, i);

		if (!json_object_is_type(o, json_type_string) ||
		    !valid_op(json_object_get_string(o)))
			return kmsd_call_error(
				c, "ValidationException",
				"'%s' is not a grant operation for "
				"a symmetric encryption key",
				json_object_get_string(o));
	}
	return 0;
}

static int check_constraints(struct call *c, json_object *cons)
{
	json_object *v;
	int n = 0;

	if (!cons)
		return 0;
	if (!json_object_is_type(cons, json_type_object))
		return kmsd_call_error(c, "SerializationException",
				       "Field Constraints must be an object");
	json_object_object_foreach(cons, name, val)
	{
		if (strcmp(name, "EncryptionContextSubset") &&
		    strcmp(name, "EncryptionContextEquals"))
			return kmsd_call_error(c, "ValidationException",
					       "Unknown grant constraint %s",
					       name);
		(void)val;
		n++;
	}
	if (n > 1)
		return kmsd_call_error(c, "ValidationException",
				       "Use EncryptionContextSubset or "
				       "EncryptionContextEquals, not both");
	if (kmsd_req_context(c, cons, "EncryptionContextSubset", &v) ||
	    kmsd_req_context(c, cons, "EncryptionContextEquals", &v))
		return kmsd_failed(c);
	return 0;
}

int act_create_grant(struct call *c, json_object *req, json_object *resp,
		     char **secret)
{
	json_object *k, *g, *ops = kmsd_member(req, "Operations");
	json_object *cons = kmsd_member(req, "Constraints"), *copy = NULL;
	struct grant_child child = { .ops = ops };
	const char *key_id, *grantee, *retiring, *name;
	uint8_t raw[32], tok[48];
	char grant_id[65], token[B64_ENCODED_SIZE(sizeof(tok))], issuer[64];
	int rc;

	(void)secret;
	key_id = kmsd_req_string(c, req, "KeyId", true, 1, 2048, &rc);
	if (!key_id)
		return kmsd_failed(c);
	grantee =
		kmsd_req_string(c, req, "GranteePrincipal", true, 1, 256, &rc);
	if (!grantee || check_principal(c, "granteePrincipal", grantee))
		return kmsd_failed(c);
	retiring = kmsd_req_string(c, req, "RetiringPrincipal", false, 1, 256,
				   &rc);
	if (rc ||
	    (retiring && check_principal(c, "retiringPrincipal", retiring)))
		return kmsd_failed(c);
	name = kmsd_req_string(c, req, "Name", false, 1, 256, &rc);
	if (rc || check_operations(c, ops) || check_constraints(c, cons) ||
	    kmsd_req_grant_tokens(c, req))
		return kmsd_failed(c);
	child.subset = kmsd_member(cons, "EncryptionContextSubset");
	child.equals = kmsd_member(cons, "EncryptionContextEquals");
	if (kmsd_key_resolve(c, key_id, &k) ||
	    kmsd_authorize_create_grant(c, k, &child) ||
	    kmsd_key_check_not_pending_deletion(c, k))
		return kmsd_failed(c);
	if (crypto_random(raw, sizeof(raw)) || crypto_random(tok, sizeof(tok)))
		return kmsd_call_error(c, "KMSInternalException",
				       "no randomness");
	hex_encode(raw, sizeof(raw), grant_id);
	b64_encode(tok, sizeof(tok), token);
	snprintf(issuer, sizeof(issuer), "arn:aws:iam::%s:root",
		 c->caller->account);

	g = json_object_new_object();
	json_object_object_add(g, "KeyId", kmsd_json_string(kmsd_key_arn(k)));
	json_object_object_add(g, "GrantId", kmsd_json_string(grant_id));
	if (name)
		json_object_object_add(g, "Name", kmsd_json_string(name));
	json_object_object_add(g, "CreationDate",
			       json_object_new_int64(c->now));
	json_object_object_add(g, "GranteePrincipal",
			       kmsd_json_string(grantee));
	if (retiring)
		json_object_object_add(g, "RetiringPrincipal",
				       kmsd_json_string(retiring));
	json_object_object_add(g, "IssuingAccount", kmsd_json_string(issuer));
	json_object_deep_copy(ops, &copy, NULL);
	json_object_object_add(g, "Operations", copy);
	if (cons) {
		copy = NULL;
		json_object_deep_copy(cons, &copy, NULL);
		json_object_object_add(g, "Constraints", copy);
	}
	json_object_object_add(
		g, "_key_id", kmsd_json_string(kmsd_member_string(k, "KeyId")));
	json_object_object_add(g, "_token", kmsd_json_string(token));
	json_object_array_add(state_grants(c->st), g);
	json_object_object_add(resp, "GrantId", kmsd_json_string(grant_id));
	json_object_object_add(resp, "GrantToken", kmsd_json_string(token));
	secmem_wipe(tok, sizeof(tok));
	return kmsd_commit(c);
}

/* Grants matching fn's test, as public GrantListEntry objects, paginated
 * into resp["Grants"]. */
static int list(struct call *c, json_object *req, json_object *resp,
		bool (*match)(struct call *c, json_object *g, const void *arg),
		const void *arg)
{
	json_object *grants = state_grants(c->st),
		    *items = json_object_new_array();
	int r;

	for (size_t i = 0; i < json_object_array_length(grants); i++) {
		json_object *g = json_object_array_get_idx(grants, i);

		if (match(c, g, arg))
			json_object_array_add(items, kmsd_key_metadata(g));
	}
	r = kmsd_paginate(c, req, items, resp, "Grants", 100, 50);
	json_object_put(items);
	return r;
}

struct grant_filter {
	const char *key_id, *grant_id, *grantee;
};

static bool match_key(struct call *c, json_object *g, const void *arg)
{
	const struct grant_filter *f = arg;

	(void)c;
	return !strcmp(kmsd_member_string(g, "_key_id"), f->key_id) &&
	       (!f->grant_id ||
		!strcmp(kmsd_member_string(g, "GrantId"), f->grant_id)) &&
	       (!f->grantee ||
		!strcmp(kmsd_member_string(g, "GranteePrincipal"), f->grantee));
}

int act_list_grants(struct call *c, json_object *req, json_object *resp,
		    char **secret)
{
	struct grant_filter f = { 0 };
	const char *key_id;
	json_object *k;
	int rc;

	(void)secret;
	key_id = kmsd_req_string(c, req, "KeyId", true, 1, 2048, &rc);
	if (!key_id)
		return kmsd_failed(c);
	f.grant_id = kmsd_req_string(c, req, "GrantId", false, 1, 128, &rc);
	if (rc)
		return kmsd_failed(c);
	f.grantee =
		kmsd_req_string(c, req, "GranteePrincipal", false, 1, 256, &rc);
	if (rc || kmsd_key_resolve(c, key_id, &k) ||
	    kmsd_authorize(c, k, "ListGrants", NULL))
		return kmsd_failed(c);
	f.key_id = kmsd_member_string(k, "KeyId");
	return list(c, req, resp, match_key, &f);
}

static bool match_retiring(struct call *c, json_object *g, const void *arg)
{
	const char *r = kmsd_member_string(g, "RetiringPrincipal");
	const char *key_arn_of_grant = kmsd_member_string(g, "KeyId");
	char prefix[96];

	snprintf(prefix, sizeof(prefix), "arn:aws:kms:%s:", c->region);
	return r && !strcmp(r, arg) &&
	       !strncmp(key_arn_of_grant, prefix, strlen(prefix));
}

int act_list_retirable_grants(struct call *c, json_object *req,
			      json_object *resp, char **secret)
{
	const char *who;
	int rc;

	(void)secret;
	who = kmsd_req_string(c, req, "RetiringPrincipal", true, 1, 256, &rc);
	if (!who)
		return kmsd_failed(c);
	/* Only about principals of the caller's own account. */
	if (strncmp(who, "arn:aws:iam::", 13) || strlen(who) < 26 ||
	    strncmp(who + 13, c->caller->account, 12) || who[25] != ':')
		return kmsd_call_error(
			c, "AccessDeniedException",
			"User: %s may list retirable grants only of "
			"principals in account %s",
			c->caller->arn, c->caller->account);
	return list(c, req, resp, match_retiring, who);
}

static int check_grant_id(struct call *c, const char *id)
{
	size_t n = strlen(id);

	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			n = 0;
	if (n != 64)
		return kmsd_call_error(c, "InvalidGrantIdException",
				       "'%s' is not a grant id", id);
	return 0;
}

/* Index of the grant on key k with this id, or -1 (NotFoundException). */
static long grant_index(struct call *c, json_object *k, const char *grant_id)
{
	json_object *grants = state_grants(c->st);

	for (size_t i = 0; i < json_object_array_length(grants); i++) {
		json_object *g = json_object_array_get_idx(grants, i);

		if (!strcmp(kmsd_member_string(g, "GrantId"), grant_id) &&
		    !strcmp(kmsd_member_string(g, "_key_id"),
			    kmsd_member_string(k, "KeyId")))
			return (long)i;
	}
	return kmsd_call_error(c, "NotFoundException",
			       "Grant %s does not exist on %s", grant_id,
			       kmsd_key_arn(k));
}

int act_revoke_grant(struct call *c, json_object *req, json_object *resp,
		     char **secret)
{
	const char *key_id, *grant_id;
	json_object *k;
	long i;
	int rc;

	(void)resp, (void)secret;
	key_id = kmsd_req_string(c, req, "KeyId", true, 1, 2048, &rc);
	if (!key_id)
		return kmsd_failed(c);
	grant_id = kmsd_req_string(c, req, "GrantId", true, 1, 128, &rc);
	if (!grant_id || check_grant_id(c, grant_id) ||
	    kmsd_key_resolve(c, key_id, &k) ||
	    kmsd_authorize(c, k, "RevokeGrant", NULL))
		return kmsd_failed(c);
	i = grant_index(c, k, grant_id);
	if (i < 0)
		return kmsd_failed(c);
	json_object_array_del_idx(state_grants(c->st), (size_t)i, 1);
	return kmsd_commit(c);
}

int act_retire_grant(struct call *c, json_object *req, json_object *resp,
		     char **secret)
{
	const char *token, *key_id, *grant_id;
	json_object *grants = state_grants(c->st), *g, *k;
	char gid[129] = "", karn[2049] = "";
	long index;
	int rc;

	(void)resp, (void)secret;
	token = kmsd_req_string(c, req, "GrantToken", false, 1, 8192, &rc);
	if (rc)
		return kmsd_failed(c);
	key_id = kmsd_req_string(c, req, "KeyId", false, 1, 2048, &rc);
	if (rc)
		return kmsd_failed(c);
	grant_id = kmsd_req_string(c, req, "GrantId", false, 1, 128, &rc);
	if (rc)
		return kmsd_failed(c);
	if (token) {
		for (size_t i = 0; i < json_object_array_length(grants); i++) {
			g = json_object_array_get_idx(grants, i);
			if (!strcmp(kmsd_member_string(g, "_token"), token)) {
				snprintf(gid, sizeof(gid), "%s",
					 kmsd_member_string(g, "GrantId"));
				snprintf(karn, sizeof(karn), "%s",
					 kmsd_member_string(g, "KeyId"));
			}
		}
		if (!gid[0])
			return kmsd_call_error(
				c, "InvalidGrantTokenException",
				"The grant token is invalid or the "
				"grant was retired");
	} else if (key_id && grant_id) {
		if (check_grant_id(c, grant_id))
			return kmsd_failed(c);
		snprintf(gid, sizeof(gid), "%s", grant_id);
		snprintf(karn, sizeof(karn), "%s", key_id);
	} else {
		return kmsd_call_error(
			c, "ValidationException",
			"Specify GrantToken, or KeyId and GrantId");
	}
	if (kmsd_key_resolve(c, karn, &k))
		return kmsd_failed(c);
	index = grant_index(c, k, gid);
	if (index < 0)
		return kmsd_failed(c);
	g = json_object_array_get_idx(state_grants(c->st), (size_t)index);
	/* Who may retire: the retiring principal, the grantee when the grant
	 * allows RetireGrant, or whoever the key policy lets do it. */
	if (!kmsd_names_caller(c, kmsd_member_string(g, "RetiringPrincipal")) &&
	    !(kmsd_names_caller(c, kmsd_member_string(g, "GranteePrincipal")) &&
	      kmsd_has_op(g, "RetireGrant")) &&
	    kmsd_authorize_ex(c, k, "RetireGrant", NULL, false, NULL))
		return kmsd_failed(c);
	json_object_array_del_idx(state_grants(c->st), (size_t)index, 1);
	return kmsd_commit(c);
}
