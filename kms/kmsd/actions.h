/* SPDX-License-Identifier: Apache-2.0 */
/*
 * actions.h — what the KMS action handlers share (internal to kms/kmsd/):
 * request field access with AWS-style validation errors, key resolution,
 * authorization (key policy, then grants) and key-state checks.
 *
 * Every helper that fails records the AWS error on the call (call_error) and
 * returns -1, so a handler reads as a list of checks: `if (x) return -1;`.
 * All run with the state locked.
 */
#ifndef CMKFS_KMSD_ACTIONS_H
#define CMKFS_KMSD_ACTIONS_H

#include "kmsd.h"

#define MAX_PLAINTEXT	  4096 /* Encrypt: Plaintext */
#define MAX_BLOB	  6144 /* CiphertextBlob */
#define MAX_DATA_KEY	  1024 /* NumberOfBytes */
#define MAX_CONTEXT	  8192 /* encryption context, total characters */
#define MAX_CONTEXT_PAIRS 64
#define MAX_GRANT_TOKENS  10
#define MAX_TAGS	  50

/* ---- request fields ---- */

/* The string member `name` of req; NULL when absent (required = false) or
 * on error (then -1 was recorded: wrong type, too short/long). */
const char *req_string(struct call *c, json_object *req, const char *name,
		       bool required, size_t min, size_t max, int *rc);
/* Integer member in [min, max]; *out untouched when absent. */
int req_int(struct call *c, json_object *req, const char *name, bool required,
	    int64_t min, int64_t max, int64_t *out, bool *present);
int req_bool(struct call *c, json_object *req, const char *name, bool *out);
/* Base64 member decoded into a malloc'ed buffer (in secure memory when
 * secret is true); *out NULL when absent and not required. */
int req_blob(struct call *c, json_object *req, const char *name, bool required,
	     size_t max, bool secret, uint8_t **out, size_t *len);
/* EncryptionContext-like member: an object of string values (or absent:
 * *out NULL).  *out is borrowed from req. */
int req_context(struct call *c, json_object *req, const char *name,
		json_object **out);
/* GrantTokens: at most 10, each must name an existing grant. */
int req_grant_tokens(struct call *c, json_object *req);

/* ---- keys ---- */

/* Resolve a KeyId (key id, key ARN, alias name or alias ARN) in the call's
 * region: NotFoundException otherwise.  Keys past their deletion date are
 * gone; keys due for automatic rotation are rotated first. */
int key_resolve(struct call *c, const char *key_id, json_object **out);
const char *key_arn(json_object *k);
const char *key_account(json_object *k);
const char *key_state(json_object *k);

/* Key-state checks, AWS's error per state:
 *   usable: Enabled only; Disabled -> DisabledException, PendingDeletion
 *           and PendingImport -> KMSInvalidStateException
 *   managed: anything but PendingDeletion (KMSInvalidStateException) */
int key_check_usable(struct call *c, json_object *k);
int key_check_not_pending_deletion(struct call *c, json_object *k);

/*
 * May the caller perform kms:<op> on k?  Explicit deny in the key policy
 * wins; else an Allow; else a grant for the caller with op among its
 * Operations whose constraints the request's context meets.  Operations
 * that AWS refuses across accounts are refused for callers outside the
 * key's account.  AccessDeniedException naming principal, action and key.
 */
int authorize(struct call *c, json_object *k, const char *op,
	      json_object *context);
/* authorize(), with grants considered only when `grants`; *via (when not
 * NULL) receives the grant that allowed the request, NULL for the policy. */
int authorize_ex(struct call *c, json_object *k, const char *op,
		 json_object *context, bool grants, json_object **via);

/* ---- responses ---- */

/* Persist the state; KMSInternalException when the disk refuses (the
 * in-memory state is then rolled back: touch no state object after a
 * failure).  Handlers call it last. */
int commit(struct call *c);

/* The public KeyMetadata of k: a copy without the private '_' fields. */
json_object *key_metadata(json_object *k);

/* Put one page of items (an array the caller owns) into resp[field] per the
 * request's Limit (1..1000, default 100) and Marker, with Truncated and,
 * when truncated, NextMarker. */
int paginate(struct call *c, json_object *req, json_object *items,
	     json_object *resp, const char *field);

json_object *json_string(const char *s);
json_object *member(json_object *o, const char *name);
const char *member_string(json_object *o, const char *name);

/* ---- handlers (one file each family) ---- */

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
/* The grant authorising caller for op on k under context, or NULL. */
json_object *grant_find(struct call *c, json_object *k, const char *op,
			json_object *context);

#endif
