/* SPDX-License-Identifier: Apache-2.0 */
/*
 * actions.h — the KMS action handlers, one file per family, and the table
 * that dispatches to them (actions.c).  Internal to kms/kmsd/.
 */
#ifndef CMKFS_KMSD_ACTIONS_H
#define CMKFS_KMSD_ACTIONS_H

#include "kmsd.h"

typedef int (*action_fn)(struct call *c, json_object *req, json_object *resp,
			 char **secret_b64);

/* actions_keys.c */
int act_create_key(struct call *, json_object *, json_object *, char **);
int act_describe_key(struct call *, json_object *, json_object *, char **);
int act_list_keys(struct call *, json_object *, json_object *, char **);
int act_enable_key(struct call *, json_object *, json_object *, char **);
int act_disable_key(struct call *, json_object *, json_object *, char **);
int act_schedule_key_deletion(struct call *, json_object *, json_object *,
			      char **);
int act_cancel_key_deletion(struct call *, json_object *, json_object *,
			    char **);
int act_enable_key_rotation(struct call *, json_object *, json_object *,
			    char **);
int act_disable_key_rotation(struct call *, json_object *, json_object *,
			     char **);
int act_get_key_rotation_status(struct call *, json_object *, json_object *,
				char **);
int act_rotate_key_on_demand(struct call *, json_object *, json_object *,
			     char **);
int act_put_key_policy(struct call *, json_object *, json_object *, char **);
int act_get_key_policy(struct call *, json_object *, json_object *, char **);
int act_create_alias(struct call *, json_object *, json_object *, char **);
int act_list_aliases(struct call *, json_object *, json_object *, char **);
int act_delete_alias(struct call *, json_object *, json_object *, char **);
int act_update_alias(struct call *, json_object *, json_object *, char **);
int act_tag_resource(struct call *, json_object *, json_object *, char **);
int act_untag_resource(struct call *, json_object *, json_object *, char **);
int act_list_resource_tags(struct call *, json_object *, json_object *,
			   char **);

/* actions_crypto.c */
int act_encrypt(struct call *, json_object *, json_object *, char **);
int act_decrypt(struct call *, json_object *, json_object *, char **);
int act_re_encrypt(struct call *, json_object *, json_object *, char **);
int act_generate_data_key(struct call *, json_object *, json_object *, char **);
int act_generate_data_key_without_plaintext(struct call *, json_object *,
					    json_object *, char **);
int act_generate_random(struct call *, json_object *, json_object *, char **);

/* actions_grants.c */
int act_create_grant(struct call *, json_object *, json_object *, char **);
int act_list_grants(struct call *, json_object *, json_object *, char **);
int act_list_retirable_grants(struct call *, json_object *, json_object *,
			      char **);
int act_revoke_grant(struct call *, json_object *, json_object *, char **);
int act_retire_grant(struct call *, json_object *, json_object *, char **);

#endif
