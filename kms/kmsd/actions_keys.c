/* SPDX-License-Identifier: Apache-2.0 */
/*
 * actions_keys.c — KMS actions that manage keys: creation, description and
 * listing, enable/disable, deletion scheduling, rotation, key policies,
 * aliases and tags.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "call.h"
#include "crypto.h"
#include "policy.h"

#define DAY 86400

/* Look up the KeyId field and resolve it; -errno with the error
 * recorded. */
static int req_key(struct call *c, json_object *req, json_object **k)
{
	int rc;
	const char *id = kmsd_req_string(c, req, "KeyId", true, 1, 2048, &rc);

	*k = NULL;
	if (!id)
		return kmsd_failed(c);
	return kmsd_key_resolve(c, id, k);
}

/* Resolve, then authorize op on the key. */
static int req_key_for(struct call *c, json_object *req, const char *op,
		       json_object **k)
{
	if (req_key(c, req, k) || kmsd_req_grant_tokens(c, req))
		return kmsd_failed(c);
	return kmsd_authorize(c, *k, op, NULL);
}

static void set_state(json_object *k, const char *state)
{
	json_object_object_add(k, "KeyState", kmsd_json_string(state));
	json_object_object_add(
		k, "Enabled",
		json_object_new_boolean(!strcmp(state, "Enabled")));
}

/* Validate a key policy for CreateKey/PutKeyPolicy, including AWS's lockout
 * safety check: unless bypassed, the policy must let the caller change it
 * again later. */
static int check_policy(struct call *c, const char *policy, const char *arn,
			bool bypass)
{
	struct policy_request rq = { 0 };
	enum policy_decision d;
	char err[256];

	if (policy_validate(policy, err, sizeof(err)))
		return kmsd_call_error(c, "MalformedPolicyDocumentException",
				       "The key policy is not valid: %s", err);
	if (bypass)
		return 0;
	rq.principal_arn = c->caller->arn;
	rq.account = c->caller->account;
	rq.action = "kms:PutKeyPolicy";
	rq.resource = arn;
	if (policy_evaluate(policy, &rq, &d, NULL, 0) || d != POLICY_ALLOW)
		return kmsd_call_error(
			c, "MalformedPolicyDocumentException",
			"The new key policy will not allow you to "
			"update the key policy in the future.");
	return 0;
}

/* Validate Tags ([{TagKey, TagValue}]) and merge them into k's tags. */
static int merge_tags(struct call *c, json_object *k, json_object *tags)
{
	json_object *have = kmsd_member(k, "_tags");

	if (!json_object_is_type(tags, json_type_array))
		return kmsd_call_error(c, "SerializationException",
				       "Field Tags must be a list of tags");
	if (!have) {
		have = json_object_new_array();
		json_object_object_add(k, "_tags", have);
	}
	for (size_t i = 0; i < json_object_array_length(tags); i++) {
		json_object *t = json_object_array_get_idx(tags, i), *tag;
		const char *key, *value;
		size_t j;
		int rc;

		key = kmsd_req_string(c, t, "TagKey", true, 1, 128, &rc);
		if (!key)
			return kmsd_failed(c);
		value = kmsd_req_string(c, t, "TagValue", true, 0, 256, &rc);
		if (!value)
			return kmsd_failed(c);
		if (!strncmp(key, "aws:", 4))
			return kmsd_call_error(
				c, "TagException",
				"Tag keys starting with 'aws:' are "
				"reserved");
		for (j = 0; j < json_object_array_length(have); j++)
			if (!strcmp(kmsd_member_string(
					    json_object_array_get_idx(have, j),
					    "TagKey"),
				    key))
				break;
		tag = json_object_new_object();
		json_object_object_add(tag, "TagKey", kmsd_json_string(key));
		json_object_object_add(tag, "TagValue",
				       kmsd_json_string(value));
		if (j < json_object_array_length(have))
			json_object_array_put_idx(have, j, tag);
		else
			json_object_array_add(have, tag);
	}
	if (json_object_array_length(have) > MAX_TAGS)
		return kmsd_call_error(c, "LimitExceededException",
				       "A key can have at most %d tags",
				       MAX_TAGS);
	return 0;
}

int act_create_key(struct call *c, json_object *req, json_object *resp,
		   char **secret)
{
	const char *policy, *description, *usage, *spec, *cmk_spec, *origin;
	json_object *k, *tags = kmsd_member(req, "Tags");
	char id[37], arn[160], *dflt = NULL;
	bool bypass = false, multi = false;
	int rc;

	(void)secret;
	policy = kmsd_req_string(c, req, "Policy", false, 1, POLICY_MAX_BYTES,
				 &rc);
	if (rc)
		return kmsd_failed(c);
	description =
		kmsd_req_string(c, req, "Description", false, 0, 8192, &rc);
	if (rc)
		return kmsd_failed(c);
	usage = kmsd_req_string(c, req, "KeyUsage", false, 1, 64, &rc);
	if (rc)
		return kmsd_failed(c);
	spec = kmsd_req_string(c, req, "KeySpec", false, 1, 64, &rc);
	if (rc)
		return kmsd_failed(c);
	cmk_spec = kmsd_req_string(c, req, "CustomerMasterKeySpec", false, 1,
				   64, &rc);
	if (rc)
		return kmsd_failed(c);
	origin = kmsd_req_string(c, req, "Origin", false, 1, 64, &rc);
	if (rc ||
	    kmsd_req_bool(c, req, "BypassPolicyLockoutSafetyCheck", &bypass) ||
	    kmsd_req_bool(c, req, "MultiRegion", &multi))
		return kmsd_failed(c);
	if (usage && strcmp(usage, "ENCRYPT_DECRYPT"))
		return kmsd_call_error(
			c, "UnsupportedOperationException",
			"KeyUsage %s is not supported by cmkfs-kmsd "
			"(only ENCRYPT_DECRYPT)",
			usage);
	if ((spec && strcmp(spec, "SYMMETRIC_DEFAULT")) ||
	    (cmk_spec && strcmp(cmk_spec, "SYMMETRIC_DEFAULT")))
		return kmsd_call_error(
			c, "UnsupportedOperationException",
			"KeySpec %s is not supported by cmkfs-kmsd "
			"(only SYMMETRIC_DEFAULT)",
			spec ? spec : cmk_spec);
	if (origin && strcmp(origin, "AWS_KMS") && strcmp(origin, "EXTERNAL"))
		return kmsd_call_error(
			c, "UnsupportedOperationException",
			"Origin %s is not supported by cmkfs-kmsd "
			"(AWS_KMS or EXTERNAL)",
			origin);
	if (multi)
		return kmsd_call_error(c, "UnsupportedOperationException",
				       "Multi-Region keys are not supported by "
				       "cmkfs-kmsd");
	if (crypto_uuid(id))
		return kmsd_call_error(c, "KMSInternalException",
				       "no randomness");
	snprintf(arn, sizeof(arn), "arn:aws:kms:%s:%s:key/%s", c->region,
		 c->caller->account, id);
	if (policy && check_policy(c, policy, arn, bypass))
		return kmsd_failed(c);
	if (!policy) {
		dflt = policy_default(c->caller->account);
		if (!dflt)
			return kmsd_call_error(c, "KMSInternalException",
					       "out of memory");
	}

	k = json_object_new_object();
	json_object_object_add(k, "AWSAccountId",
			       kmsd_json_string(c->caller->account));
	json_object_object_add(k, "KeyId", kmsd_json_string(id));
	json_object_object_add(k, "Arn", kmsd_json_string(arn));
	json_object_object_add(k, "CreationDate",
			       json_object_new_int64(c->now));
	json_object_object_add(
		k, "Description",
		kmsd_json_string(description ? description : ""));
	json_object_object_add(k, "KeyUsage",
			       kmsd_json_string("ENCRYPT_DECRYPT"));
	json_object_object_add(k, "KeySpec",
			       kmsd_json_string("SYMMETRIC_DEFAULT"));
	json_object_object_add(k, "CustomerMasterKeySpec",
			       kmsd_json_string("SYMMETRIC_DEFAULT"));
	json_object_object_add(k, "Origin",
			       kmsd_json_string(origin ? origin : "AWS_KMS"));
	json_object_object_add(k, "KeyManager", kmsd_json_string("CUSTOMER"));
	json_object_object_add(k, "MultiRegion", json_object_new_boolean(0));
	{
		json_object *algs = json_object_new_array();

		json_object_array_add(algs,
				      kmsd_json_string("SYMMETRIC_DEFAULT"));
		json_object_object_add(k, "EncryptionAlgorithms", algs);
	}
	json_object_object_add(k, "_region", kmsd_json_string(c->region));
	json_object_object_add(k, "_policy",
			       kmsd_json_string(policy ? policy : dflt));
	free(dflt);
	/* An EXTERNAL key waits for imported material, which this service
	 * never receives: it stays PendingImport and unusable. */
	if (origin && !strcmp(origin, "EXTERNAL")) {
		set_state(k, "PendingImport");
	} else {
		set_state(k, "Enabled");
		if (state_new_material(c->st, k)) {
			json_object_put(k);
			return kmsd_call_error(c, "KMSInternalException",
					       "cannot create key material");
		}
	}
	if (tags && merge_tags(c, k, tags)) {
		json_object_put(k);
		return kmsd_failed(c);
	}
	json_object_array_add(state_keys(c->st), k);
	snprintf(c->key_arn, sizeof(c->key_arn), "%s", arn);
	json_object_object_add(resp, "KeyMetadata", kmsd_key_metadata(k));
	return kmsd_commit(c);
}

int act_describe_key(struct call *c, json_object *req, json_object *resp,
		     char **secret)
{
	json_object *k;

	(void)secret;
	if (req_key_for(c, req, "DescribeKey", &k))
		return kmsd_failed(c);
	json_object_object_add(resp, "KeyMetadata", kmsd_key_metadata(k));
	return 0;
}

int act_list_keys(struct call *c, json_object *req, json_object *resp,
		  char **secret)
{
	json_object *keys = state_keys(c->st), *items = json_object_new_array();
	int r;

	(void)secret;
	for (size_t i = 0; i < json_object_array_length(keys); i++) {
		json_object *k = json_object_array_get_idx(keys, i), *e;

		if (strcmp(kmsd_key_account(k), c->caller->account) ||
		    strcmp(kmsd_member_string(k, "_region"), c->region))
			continue;
		e = json_object_new_object();
		json_object_object_add(
			e, "KeyId",
			kmsd_json_string(kmsd_member_string(k, "KeyId")));
		json_object_object_add(e, "KeyArn",
				       kmsd_json_string(kmsd_key_arn(k)));
		json_object_array_add(items, e);
	}
	r = kmsd_paginate(c, req, items, resp, "Keys", 1000, 100);
	json_object_put(items);
	return r;
}

int act_enable_key(struct call *c, json_object *req, json_object *resp,
		   char **secret)
{
	json_object *k;

	(void)resp, (void)secret;
	if (req_key_for(c, req, "EnableKey", &k) ||
	    kmsd_key_check_not_pending_deletion(c, k))
		return kmsd_failed(c);
	if (!strcmp(kmsd_key_state(k), "PendingImport"))
		return kmsd_key_check_usable(c, k);
	set_state(k, "Enabled");
	return kmsd_commit(c);
}

int act_disable_key(struct call *c, json_object *req, json_object *resp,
		    char **secret)
{
	json_object *k;

	(void)resp, (void)secret;
	if (req_key_for(c, req, "DisableKey", &k) ||
	    kmsd_key_check_not_pending_deletion(c, k))
		return kmsd_failed(c);
	if (!strcmp(kmsd_key_state(k), "PendingImport"))
		return kmsd_key_check_usable(c, k);
	set_state(k, "Disabled");
	return kmsd_commit(c);
}

int act_schedule_key_deletion(struct call *c, json_object *req,
			      json_object *resp, char **secret)
{
	int64_t days = 30, when;
	json_object *k;

	(void)secret;
	if (req_key_for(c, req, "ScheduleKeyDeletion", &k) ||
	    kmsd_req_int(c, req, "PendingWindowInDays", false, 7, 30, &days,
			 NULL) ||
	    kmsd_key_check_not_pending_deletion(c, k))
		return kmsd_failed(c);
	when = c->now + days * DAY;
	set_state(k, "PendingDeletion");
	json_object_object_add(k, "DeletionDate", json_object_new_int64(when));
	json_object_object_add(k, "PendingDeletionWindowInDays",
			       json_object_new_int64(days));
	json_object_object_add(resp, "KeyId",
			       kmsd_json_string(kmsd_key_arn(k)));
	json_object_object_add(resp, "DeletionDate",
			       json_object_new_int64(when));
	json_object_object_add(resp, "KeyState",
			       kmsd_json_string("PendingDeletion"));
	json_object_object_add(resp, "PendingWindowInDays",
			       json_object_new_int64(days));
	return kmsd_commit(c);
}

int act_cancel_key_deletion(struct call *c, json_object *req, json_object *resp,
			    char **secret)
{
	json_object *k;

	(void)secret;
	if (req_key_for(c, req, "CancelKeyDeletion", &k))
		return kmsd_failed(c);
	if (strcmp(kmsd_key_state(k), "PendingDeletion"))
		return kmsd_call_error(c, "KMSInvalidStateException",
				       "%s is not pending deletion.",
				       kmsd_key_arn(k));
	/* AWS leaves a key whose deletion was cancelled disabled. */
	set_state(k, "Disabled");
	json_object_object_del(k, "DeletionDate");
	json_object_object_del(k, "PendingDeletionWindowInDays");
	json_object_object_add(resp, "KeyId",
			       kmsd_json_string(kmsd_key_arn(k)));
	return kmsd_commit(c);
}

/* Rotation applies only to keys whose material KMS generated. */
static int check_rotatable(struct call *c, json_object *k)
{
	if (!strcmp(kmsd_member_string(k, "Origin"), "EXTERNAL"))
		return kmsd_call_error(
			c, "UnsupportedOperationException",
			"%s has imported key material: rotation is "
			"not supported",
			kmsd_key_arn(k));
	return kmsd_key_check_usable(c, k);
}

int act_enable_key_rotation(struct call *c, json_object *req, json_object *resp,
			    char **secret)
{
	int64_t period = 365;
	json_object *k, *rot;

	(void)resp, (void)secret;
	if (req_key_for(c, req, "EnableKeyRotation", &k) ||
	    kmsd_req_int(c, req, "RotationPeriodInDays", false, 90, 2560,
			 &period, NULL) ||
	    check_rotatable(c, k))
		return kmsd_failed(c);
	rot = json_object_new_object();
	json_object_object_add(rot, "enabled", json_object_new_boolean(1));
	json_object_object_add(rot, "period_days",
			       json_object_new_int64(period));
	json_object_object_add(rot, "next",
			       json_object_new_int64(c->now + period * DAY));
	json_object_object_add(k, "_rotation", rot);
	return kmsd_commit(c);
}

int act_disable_key_rotation(struct call *c, json_object *req,
			     json_object *resp, char **secret)
{
	json_object *k;

	(void)resp, (void)secret;
	if (req_key_for(c, req, "DisableKeyRotation", &k) ||
	    check_rotatable(c, k))
		return kmsd_failed(c);
	json_object_object_del(k, "_rotation");
	return kmsd_commit(c);
}

int act_get_key_rotation_status(struct call *c, json_object *req,
				json_object *resp, char **secret)
{
	json_object *k, *rot;
	bool on;

	(void)secret;
	if (req_key_for(c, req, "GetKeyRotationStatus", &k))
		return kmsd_failed(c);
	if (!strcmp(kmsd_member_string(k, "Origin"), "EXTERNAL"))
		return check_rotatable(c, k);
	rot = kmsd_member(k, "_rotation");
	on = rot && json_object_get_boolean(kmsd_member(rot, "enabled"));
	json_object_object_add(resp, "KeyRotationEnabled",
			       json_object_new_boolean(on));
	json_object_object_add(resp, "KeyId",
			       kmsd_json_string(kmsd_key_arn(k)));
	if (on) {
		json_object_object_add(
			resp, "RotationPeriodInDays",
			json_object_get(kmsd_member(rot, "period_days")));
		json_object_object_add(
			resp, "NextRotationDate",
			json_object_get(kmsd_member(rot, "next")));
	}
	return 0;
}

int act_rotate_key_on_demand(struct call *c, json_object *req,
			     json_object *resp, char **secret)
{
	json_object *k;

	(void)secret;
	if (req_key_for(c, req, "RotateKeyOnDemand", &k) ||
	    check_rotatable(c, k))
		return kmsd_failed(c);
	/* New material becomes current; old versions stay, so every blob
	 * made before the rotation still decrypts. */
	if (state_new_material(c->st, k))
		return kmsd_call_error(c, "KMSInternalException",
				       "cannot create key material");
	json_object_object_add(resp, "KeyId",
			       kmsd_json_string(kmsd_key_arn(k)));
	return kmsd_commit(c);
}

static int check_policy_name(struct call *c, json_object *req)
{
	int rc;
	const char *name =
		kmsd_req_string(c, req, "PolicyName", false, 1, 128, &rc);

	if (rc)
		return kmsd_failed(c);
	if (name && strcmp(name, "default"))
		return kmsd_call_error(
			c, "NotFoundException",
			"No such key policy '%s': the only policy "
			"name is 'default'",
			name);
	return 0;
}

int act_put_key_policy(struct call *c, json_object *req, json_object *resp,
		       char **secret)
{
	const char *policy;
	bool bypass = false;
	json_object *k;
	int rc;

	(void)resp, (void)secret;
	if (req_key_for(c, req, "PutKeyPolicy", &k) ||
	    check_policy_name(c, req))
		return kmsd_failed(c);
	policy = kmsd_req_string(c, req, "Policy", true, 1, POLICY_MAX_BYTES,
				 &rc);
	if (!policy ||
	    kmsd_req_bool(c, req, "BypassPolicyLockoutSafetyCheck", &bypass) ||
	    kmsd_key_check_not_pending_deletion(c, k) ||
	    check_policy(c, policy, kmsd_key_arn(k), bypass))
		return kmsd_failed(c);
	json_object_object_add(k, "_policy", kmsd_json_string(policy));
	return kmsd_commit(c);
}

int act_get_key_policy(struct call *c, json_object *req, json_object *resp,
		       char **secret)
{
	json_object *k;

	(void)secret;
	if (req_key_for(c, req, "GetKeyPolicy", &k) ||
	    check_policy_name(c, req))
		return kmsd_failed(c);
	json_object_object_add(
		resp, "Policy",
		kmsd_json_string(kmsd_member_string(k, "_policy")));
	json_object_object_add(resp, "PolicyName", kmsd_json_string("default"));
	return 0;
}

/* ---- aliases ------------------------------------------------------------- */

static int check_alias_name(struct call *c, const char *name)
{
	if (strncmp(name, "alias/", 6) || !name[6])
		return kmsd_call_error(
			c, "ValidationException",
			"1 validation error detected: Value at "
			"'aliasName' failed to satisfy constraint: "
			"Member must start with 'alias/'");
	if (!strncmp(name, "alias/aws/", 10))
		return kmsd_call_error(
			c, "InvalidAliasNameException",
			"Alias names starting with 'alias/aws/' are "
			"reserved for AWS managed keys");
	for (const char *p = name + 6; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '/' || *p == '_' ||
		      *p == '-'))
			return kmsd_call_error(
				c, "ValidationException",
				"1 validation error detected: Value "
				"at 'aliasName' failed to satisfy "
				"constraint: Member must satisfy "
				"regular expression pattern: "
				"^[a-zA-Z0-9:/_-]+$");
	return 0;
}

static json_object *alias_lookup(struct call *c, const char *name,
				 size_t *index)
{
	json_object *aliases = state_aliases(c->st);

	for (size_t i = 0; i < json_object_array_length(aliases); i++) {
		json_object *a = json_object_array_get_idx(aliases, i);

		if (!strcmp(kmsd_member_string(a, "AliasName"), name) &&
		    !strcmp(kmsd_member_string(a, "_region"), c->region) &&
		    !strcmp(kmsd_member_string(a, "_account"),
			    c->caller->account)) {
			if (index)
				*index = i;
			return a;
		}
	}
	return NULL;
}

/* AliasName and TargetKeyId of CreateAlias and UpdateAlias, checked (the
 * target a key, not an alias): 0, or -1 with the call's error set. */
static int alias_and_target(struct call *c, json_object *req, const char **name,
			    const char **target)
{
	int rc;

	*name = kmsd_req_string(c, req, "AliasName", true, 1, 256, &rc);
	if (!*name || check_alias_name(c, *name))
		return -1;
	*target = kmsd_req_string(c, req, "TargetKeyId", true, 1, 2048, &rc);
	if (!*target)
		return -1;
	if (!strncmp(*target, "alias/", 6) || strstr(*target, ":alias/")) {
		kmsd_call_error(c, "ValidationException",
				"TargetKeyId must be a key id or key ARN, "
				"not an alias");
		return -1;
	}
	return 0;
}

int act_create_alias(struct call *c, json_object *req, json_object *resp,
		     char **secret)
{
	const char *name, *target;
	json_object *k, *a;
	char arn[400];

	(void)resp, (void)secret;
	if (alias_and_target(c, req, &name, &target))
		return kmsd_failed(c);
	if (kmsd_key_resolve(c, target, &k) ||
	    kmsd_authorize(c, k, "CreateAlias", NULL) ||
	    kmsd_key_check_not_pending_deletion(c, k))
		return kmsd_failed(c);
	if (alias_lookup(c, name, NULL))
		return kmsd_call_error(
			c, "AlreadyExistsException",
			"An alias with the name %s already exists", name);
	snprintf(arn, sizeof(arn), "arn:aws:kms:%s:%s:%s", c->region,
		 c->caller->account, name);
	a = json_object_new_object();
	json_object_object_add(a, "AliasName", kmsd_json_string(name));
	json_object_object_add(a, "AliasArn", kmsd_json_string(arn));
	json_object_object_add(
		a, "TargetKeyId",
		kmsd_json_string(kmsd_member_string(k, "KeyId")));
	json_object_object_add(a, "CreationDate",
			       json_object_new_int64(c->now));
	json_object_object_add(a, "LastUpdatedDate",
			       json_object_new_int64(c->now));
	json_object_object_add(a, "_region", kmsd_json_string(c->region));
	json_object_object_add(a, "_account",
			       kmsd_json_string(c->caller->account));
	json_object_array_add(state_aliases(c->st), a);
	return kmsd_commit(c);
}

int act_list_aliases(struct call *c, json_object *req, json_object *resp,
		     char **secret)
{
	json_object *aliases = state_aliases(c->st), *items, *k = NULL;
	const char *key_id;
	int rc, r;

	(void)secret;
	key_id = kmsd_req_string(c, req, "KeyId", false, 1, 2048, &rc);
	if (rc || (key_id && kmsd_key_resolve(c, key_id, &k)))
		return kmsd_failed(c);
	items = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(aliases); i++) {
		json_object *a = json_object_array_get_idx(aliases, i);

		if (strcmp(kmsd_member_string(a, "_region"), c->region) ||
		    strcmp(kmsd_member_string(a, "_account"),
			   c->caller->account) ||
		    (k && strcmp(kmsd_member_string(a, "TargetKeyId"),
				 kmsd_member_string(k, "KeyId"))))
			continue;
		json_object_array_add(items, kmsd_key_metadata(a));
	}
	r = kmsd_paginate(c, req, items, resp, "Aliases", 100, 50);
	json_object_put(items);
	return r;
}

int act_delete_alias(struct call *c, json_object *req, json_object *resp,
		     char **secret)
{
	json_object *a, *k;
	const char *name;
	char target[128];
	size_t index;
	int rc;

	(void)resp, (void)secret;
	name = kmsd_req_string(c, req, "AliasName", true, 1, 256, &rc);
	if (!name)
		return kmsd_failed(c);
	a = alias_lookup(c, name, NULL);
	if (!a)
		return kmsd_call_error(c, "NotFoundException",
				       "Alias %s does not exist", name);
	/* Resolving the key may purge keys past their deletion date, with
	 * their aliases: nothing taken from the alias list before survives
	 * it, so the alias is looked up again after. */
	snprintf(target, sizeof(target), "%s",
		 kmsd_member_string(a, "TargetKeyId"));
	if (kmsd_key_resolve(c, target, &k) ||
	    kmsd_authorize(c, k, "DeleteAlias", NULL))
		return kmsd_failed(c);
	a = alias_lookup(c, name, &index);
	if (!a || strcmp(kmsd_member_string(a, "TargetKeyId"), target))
		return kmsd_call_error(c, "NotFoundException",
				       "Alias %s does not exist", name);
	json_object_array_del_idx(state_aliases(c->st), index, 1);
	return kmsd_commit(c);
}

/*
 * UpdateAlias: point an alias of the caller's account and region at another
 * key of that account and region.  AWS wants kms:UpdateAlias on the alias
 * (an IAM permission: here, as for actions that need no key, any principal
 * of the alias's account has it) and in the key policies of both the
 * current and the new key.  A key ARN of another account fails there
 * (UpdateAlias is not an operation AWS allows across accounts).  The
 * current key may be in any state; the new one may not be pending
 * deletion.  (AWS also wants both keys of the same
 * type and usage: every key here is a symmetric encryption key.)
 */
int act_update_alias(struct call *c, json_object *req, json_object *resp,
		     char **secret)
{
	const char *name, *target;
	json_object *a, *cur, *k;
	char cur_id[128];

	(void)resp, (void)secret;
	if (alias_and_target(c, req, &name, &target))
		return kmsd_failed(c);
	a = alias_lookup(c, name, NULL);
	if (!a)
		return kmsd_call_error(c, "NotFoundException",
				       "Alias %s does not exist", name);
	/* Resolving a key may purge keys past their deletion date, with
	 * their aliases: the alias is looked up again after. */
	snprintf(cur_id, sizeof(cur_id), "%s",
		 kmsd_member_string(a, "TargetKeyId"));
	if (kmsd_key_resolve(c, cur_id, &cur) ||
	    kmsd_authorize(c, cur, "UpdateAlias", NULL) ||
	    kmsd_key_resolve(c, target, &k) ||
	    kmsd_authorize(c, k, "UpdateAlias", NULL) ||
	    kmsd_key_check_not_pending_deletion(c, k))
		return kmsd_failed(c);
	a = alias_lookup(c, name, NULL);
	if (!a || strcmp(kmsd_member_string(a, "TargetKeyId"), cur_id))
		return kmsd_call_error(c, "NotFoundException",
				       "Alias %s does not exist", name);
	json_object_object_add(
		a, "TargetKeyId",
		kmsd_json_string(kmsd_member_string(k, "KeyId")));
	json_object_object_add(a, "LastUpdatedDate",
			       json_object_new_int64(c->now));
	return kmsd_commit(c);
}

/* ---- tags ---------------------------------------------------------------- */

int act_tag_resource(struct call *c, json_object *req, json_object *resp,
		     char **secret)
{
	json_object *k, *tags = kmsd_member(req, "Tags");

	(void)resp, (void)secret;
	if (req_key_for(c, req, "TagResource", &k) ||
	    kmsd_key_check_not_pending_deletion(c, k))
		return kmsd_failed(c);
	if (!tags)
		return kmsd_call_error(
			c, "ValidationException",
			"1 validation error detected: Value at "
			"'tags' failed to satisfy constraint: Member "
			"must not be null");
	if (merge_tags(c, k, tags))
		return kmsd_failed(c);
	return kmsd_commit(c);
}

int act_untag_resource(struct call *c, json_object *req, json_object *resp,
		       char **secret)
{
	json_object *k, *keys = kmsd_member(req, "TagKeys"), *have;

	(void)resp, (void)secret;
	if (req_key_for(c, req, "UntagResource", &k) ||
	    kmsd_key_check_not_pending_deletion(c, k))
		return kmsd_failed(c);
	if (!json_object_is_type(keys, json_type_array))
		return kmsd_call_error(
			c, "SerializationException",
			"Field TagKeys must be a list of strings");
	have = kmsd_member(k, "_tags");
	for (size_t i = 0; i < json_object_array_length(keys); i++) {
		const char *name = json_object_get_string(
			json_object_array_get_idx(keys, i));

		for (size_t j = json_object_array_length(have); j-- > 0;)
			if (name &&
			    !strcmp(kmsd_member_string(
					    json_object_array_get_idx(have, j),
					    "TagKey"),
				    name))
				json_object_array_del_idx(have, j, 1);
	}
	return kmsd_commit(c);
}

int act_list_resource_tags(struct call *c, json_object *req, json_object *resp,
			   char **secret)
{
	json_object *k, *have, *empty = NULL;
	int r;

	(void)secret;
	if (req_key_for(c, req, "ListResourceTags", &k))
		return kmsd_failed(c);
	have = kmsd_member(k, "_tags");
	if (!have)
		have = empty = json_object_new_array();
	r = kmsd_paginate(c, req, have, resp, "Tags", 50, 50);
	json_object_put(empty);
	return r;
}
