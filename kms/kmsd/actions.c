/* SPDX-License-Identifier: Apache-2.0 */
/*
 * actions.c — dispatch of KMS actions: one table from the action's name
 * (X-Amz-Target: TrentService.<Action>) to its handler.
 */
#include <stdbool.h>
#include <string.h>

#include "actions.h"
#include "call.h"
#include "crypto.h"

/* dry: the action takes DryRun (as in AWS KMS). */
static const struct {
	const char *name;
	action_fn fn;
	bool dry;
} actions[] = {
	{ "CancelKeyDeletion", act_cancel_key_deletion, false },
	{ "CreateAlias", act_create_alias, false },
	{ "CreateGrant", act_create_grant, true },
	{ "CreateKey", act_create_key, false },
	{ "Decrypt", act_decrypt, true },
	{ "DeleteAlias", act_delete_alias, false },
	{ "DescribeKey", act_describe_key, false },
	{ "DisableKey", act_disable_key, false },
	{ "DisableKeyRotation", act_disable_key_rotation, false },
	{ "EnableKey", act_enable_key, false },
	{ "EnableKeyRotation", act_enable_key_rotation, false },
	{ "Encrypt", act_encrypt, true },
	{ "GenerateDataKey", act_generate_data_key, true },
	{ "GenerateDataKeyWithoutPlaintext",
	  act_generate_data_key_without_plaintext, true },
	{ "GenerateRandom", act_generate_random, false },
	{ "GetKeyPolicy", act_get_key_policy, false },
	{ "GetKeyRotationStatus", act_get_key_rotation_status, false },
	{ "ListAliases", act_list_aliases, false },
	{ "ListGrants", act_list_grants, false },
	{ "ListKeys", act_list_keys, false },
	{ "ListResourceTags", act_list_resource_tags, false },
	{ "ListRetirableGrants", act_list_retirable_grants, false },
	{ "PutKeyPolicy", act_put_key_policy, false },
	{ "ReEncrypt", act_re_encrypt, true },
	{ "RetireGrant", act_retire_grant, true },
	{ "RevokeGrant", act_revoke_grant, true },
	{ "RotateKeyOnDemand", act_rotate_key_on_demand, false },
	{ "ScheduleKeyDeletion", act_schedule_key_deletion, false },
	{ "TagResource", act_tag_resource, false },
	{ "UntagResource", act_untag_resource, false },
};

const char *kmsd_action_known(const char *action)
{
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (!strcmp(actions[i].name, action))
			return actions[i].name;
	return NULL;
}

bool kmsd_json_has_nul(const char *body, size_t len)
{
	/* In valid JSON a backslash only ever starts an escape. */
	for (size_t i = 0; i + 1 < len; i++) {
		if (body[i] != '\\')
			continue;
		if (body[i + 1] == 'u' && len - i >= 6 &&
		    !memcmp(body + i + 2, "0000", 4))
			return true;
		i++; /* the escaped character */
	}
	return false;
}

int kmsd_action_run(struct call *c, const char *action, json_object *req,
		    json_object **resp, char **secret_b64)
{
	*resp = NULL;
	*secret_b64 = NULL;
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		json_object *dry = kmsd_member(req, "DryRun");
		int r;

		if (strcmp(actions[i].name, action))
			continue;
		/* (an action that does not take it ignores it, as AWS
		 * ignores members it does not know) */
		if (!actions[i].dry)
			dry = NULL;
		if (dry && !json_object_is_type(dry, json_type_boolean))
			return kmsd_call_error(c, "SerializationException",
					       "DryRun must be a boolean");
		c->dry_run = dry && json_object_get_boolean(dry);
		*resp = json_object_new_object();
		if (!*resp)
			return kmsd_call_error(c, "KMSInternalException",
					       "out of memory");
		r = actions[i].fn(c, req, *resp, secret_b64);
		/* A dry run that got through everything: no answer. */
		if (!r && c->dry_run)
			r = kmsd_dry_run_done(c);
		if (!r)
			return 0;
		json_object_put(*resp);
		*resp = NULL;
		if (*secret_b64) {
			secmem_free(*secret_b64);
			*secret_b64 = NULL;
		}
		/* Nothing of a failed request stays in memory, to be written
		 * by the next commit (a change made before the failure). */
		if (state_rollback(c->st))
			return kmsd_call_error(c, "KMSInternalException",
					       "cannot reload the key store");
		return kmsd_failed(c);
	}
	return kmsd_call_error(c, "UnknownOperationException",
			       "Operation %s is not supported by cmkfs-kmsd",
			       action);
}
