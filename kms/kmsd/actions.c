/* SPDX-License-Identifier: Apache-2.0 */
/*
 * actions.c — dispatch of KMS actions: one table from the action's name
 * (X-Amz-Target: TrentService.<Action>) to its handler.
 */
#include <string.h>

#include "actions.h"
#include "call.h"
#include "crypto.h"

static const struct {
	const char *name;
	action_fn fn;
} actions[] = {
	{ "CancelKeyDeletion", act_cancel_key_deletion },
	{ "CreateAlias", act_create_alias },
	{ "CreateGrant", act_create_grant },
	{ "CreateKey", act_create_key },
	{ "Decrypt", act_decrypt },
	{ "DeleteAlias", act_delete_alias },
	{ "DescribeKey", act_describe_key },
	{ "DisableKey", act_disable_key },
	{ "DisableKeyRotation", act_disable_key_rotation },
	{ "EnableKey", act_enable_key },
	{ "EnableKeyRotation", act_enable_key_rotation },
	{ "Encrypt", act_encrypt },
	{ "GenerateDataKey", act_generate_data_key },
	{ "GenerateDataKeyWithoutPlaintext",
	  act_generate_data_key_without_plaintext },
	{ "GenerateRandom", act_generate_random },
	{ "GetKeyPolicy", act_get_key_policy },
	{ "GetKeyRotationStatus", act_get_key_rotation_status },
	{ "ListAliases", act_list_aliases },
	{ "ListGrants", act_list_grants },
	{ "ListKeys", act_list_keys },
	{ "ListResourceTags", act_list_resource_tags },
	{ "ListRetirableGrants", act_list_retirable_grants },
	{ "PutKeyPolicy", act_put_key_policy },
	{ "ReEncrypt", act_re_encrypt },
	{ "RetireGrant", act_retire_grant },
	{ "RevokeGrant", act_revoke_grant },
	{ "RotateKeyOnDemand", act_rotate_key_on_demand },
	{ "ScheduleKeyDeletion", act_schedule_key_deletion },
	{ "TagResource", act_tag_resource },
	{ "UntagResource", act_untag_resource },
};

int kmsd_action_run(struct call *c, const char *action, json_object *req,
		    json_object **resp, char **secret_b64)
{
	*resp = NULL;
	*secret_b64 = NULL;
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		if (strcmp(actions[i].name, action))
			continue;
		*resp = json_object_new_object();
		if (!*resp)
			return kmsd_call_error(c, "KMSInternalException",
					       "out of memory");
		if (actions[i].fn(c, req, *resp, secret_b64) == 0)
			return 0;
		json_object_put(*resp);
		*resp = NULL;
		if (*secret_b64) {
			secmem_free(*secret_b64);
			*secret_b64 = NULL;
		}
		return kmsd_failed(c);
	}
	return kmsd_call_error(c, "UnknownOperationException",
			       "Operation %s is not supported by cmkfs-kmsd",
			       action);
}
