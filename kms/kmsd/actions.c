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

/* DRY_RUN: the action takes DryRun (as in AWS KMS); MUTATES: it changes
 * the store (what it changed before failing is rolled back). */
#define DRY_RUN (1u << 0)
#define MUTATES (1u << 1)
static const struct {
	const char *name;
	action_fn fn;
	unsigned flags;
} actions[] = {
	{ "CancelKeyDeletion", act_cancel_key_deletion, MUTATES },
	{ "CreateAlias", act_create_alias, MUTATES },
	{ "CreateGrant", act_create_grant, DRY_RUN | MUTATES },
	{ "CreateKey", act_create_key, MUTATES },
	{ "Decrypt", act_decrypt, DRY_RUN },
	{ "DeleteAlias", act_delete_alias, MUTATES },
	{ "DescribeKey", act_describe_key, 0 },
	{ "DisableKey", act_disable_key, MUTATES },
	{ "DisableKeyRotation", act_disable_key_rotation, MUTATES },
	{ "EnableKey", act_enable_key, MUTATES },
	{ "EnableKeyRotation", act_enable_key_rotation, MUTATES },
	{ "Encrypt", act_encrypt, DRY_RUN },
	{ "GenerateDataKey", act_generate_data_key, DRY_RUN },
	{ "GenerateDataKeyWithoutPlaintext",
	  act_generate_data_key_without_plaintext, DRY_RUN },
	{ "GenerateRandom", act_generate_random, 0 },
	{ "GetKeyPolicy", act_get_key_policy, 0 },
	{ "GetKeyRotationStatus", act_get_key_rotation_status, 0 },
	{ "ListAliases", act_list_aliases, 0 },
	{ "ListGrants", act_list_grants, 0 },
	{ "ListKeys", act_list_keys, 0 },
	{ "ListResourceTags", act_list_resource_tags, 0 },
	{ "ListRetirableGrants", act_list_retirable_grants, 0 },
	{ "PutKeyPolicy", act_put_key_policy, MUTATES },
	{ "ReEncrypt", act_re_encrypt, DRY_RUN },
	{ "RetireGrant", act_retire_grant, DRY_RUN | MUTATES },
	{ "RevokeGrant", act_revoke_grant, DRY_RUN | MUTATES },
	{ "RotateKeyOnDemand", act_rotate_key_on_demand, MUTATES },
	{ "ScheduleKeyDeletion", act_schedule_key_deletion, MUTATES },
	{ "TagResource", act_tag_resource, MUTATES },
	{ "UntagResource", act_untag_resource, MUTATES },
	{ "UpdateAlias", act_update_alias, MUTATES },
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

bool kmsd_utf8_valid(const uint8_t *s, size_t len)
{
	/* RFC 3629: no overlong forms, no surrogates, nothing past
	 * U+10FFFF (json-c's own check is of the byte structure only). */
	for (size_t i = 0; i < len;) {
		uint8_t b = s[i];
		size_t n;
		uint8_t lo = 0x80, hi = 0xbf;

		if (b < 0x80) {
			i++;
			continue;
		}
		if (b >= 0xc2 && b <= 0xdf)
			n = 1;
		else if (b >= 0xe0 && b <= 0xef)
			n = 2;
		else if (b >= 0xf0 && b <= 0xf4)
			n = 3;
		else
			return false;
		if (b == 0xe0)
			lo = 0xa0;
		else if (b == 0xed)
			hi = 0x9f;
		else if (b == 0xf0)
			lo = 0x90;
		else if (b == 0xf4)
			hi = 0x8f;
		if (len - i <= n || s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
		i += n + 1;
	}
	return true;
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
		if (!(actions[i].flags & DRY_RUN))
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
		/* Nothing of a failed change stays in memory, to be written by
		 * the next commit.  (Only for actions that change the store:
		 * reading it back costs, and any principal can make a read
		 * fail.) */
		if ((actions[i].flags & MUTATES) && state_rollback(c->st))
			return kmsd_call_error(c, "KMSInternalException",
					       "cannot reload the key store");
		return kmsd_failed(c);
	}
	return kmsd_call_error(c, "UnknownOperationException",
			       "Operation %s is not supported by cmkfs-kmsd",
			       action);
}
