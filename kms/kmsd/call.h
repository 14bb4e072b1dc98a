/* SPDX-License-Identifier: Apache-2.0 */
/*
 * call.h — what the KMS action handlers share (call.c; internal to
 * kms/kmsd/): request field access with AWS-style validation errors, key
 * resolution, authorization (key policy, then grants) and key-state checks.
 *
 * Every helper that fails records the AWS error on the call (call_error) and
 * returns -1, so a handler reads as a list of checks: `if (x) return -1;`.
 * All run with the state locked.
 */
#ifndef CMKFS_KMSD_CALL_H
#define CMKFS_KMSD_CALL_H

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
const char *kmsd_req_string(struct call *c, json_object *req, const char *name,
			    bool required, size_t min, size_t max, int *rc);
/* Integer member in [min, max]; *out untouched when absent. */
int kmsd_req_int(struct call *c, json_object *req, const char *name,
		 bool required, int64_t min, int64_t max, int64_t *out,
		 bool *present);
int kmsd_req_bool(struct call *c, json_object *req, const char *name,
		  bool *out);
/* Base64 member decoded into a malloc'ed buffer (in secure memory when
 * secret is true); *out NULL when absent and not required. */
int kmsd_req_blob(struct call *c, json_object *req, const char *name,
		  bool required, size_t max, bool secret, uint8_t **out,
		  size_t *len);
/* EncryptionContext-like member: an object of string values (or absent:
 * *out NULL).  *out is borrowed from req. */
int kmsd_req_context(struct call *c, json_object *req, const char *name,
		     json_object **out);
/* GrantTokens: at most 10, each must name an existing grant. */
int kmsd_req_grant_tokens(struct call *c, json_object *req);

/* ---- keys ---- */

/* Resolve a KeyId (key id, key ARN, alias name or alias ARN) in the call's
 * region: NotFoundException otherwise.  Keys past their deletion date are
 * gone; keys due for automatic rotation are rotated first. */
int kmsd_key_resolve(struct call *c, const char *key_id, json_object **out);
const char *kmsd_key_arn(json_object *k);
const char *kmsd_key_account(json_object *k);
const char *kmsd_key_state(json_object *k);

/* Key-state checks, AWS's error per state:
 *   usable: Enabled only; Disabled -> DisabledException, PendingDeletion
 *           and PendingImport -> KMSInvalidStateException
 *   managed: anything but PendingDeletion (KMSInvalidStateException) */
int kmsd_key_check_usable(struct call *c, json_object *k);
int kmsd_key_check_not_pending_deletion(struct call *c, json_object *k);

/*
 * May the caller perform kms:<op> on k?  Explicit deny in the key policy
 * wins; else an Allow; else a grant for the caller with op among its
 * Operations whose constraints the request's context meets (constraints
 * bind only the operations that take an encryption context).  Operations
 * that AWS refuses across accounts are refused for callers outside the
 * key's account.  AccessDeniedException naming principal, action and key.
 */
int kmsd_authorize(struct call *c, json_object *k, const char *op,
		   json_object *context);
/* kmsd_authorize(), with grants considered only when `grants`; *via (when not
 * NULL) receives the grant that allowed the request, NULL for the policy. */
int kmsd_authorize_ex(struct call *c, json_object *k, const char *op,
		      json_object *context, bool grants, json_object **via);

/* A grant asked for through CreateGrant: its Operations (an array of
 * strings) and the constraints it would carry (NULL when none). */
struct grant_child {
	json_object *ops, *subset, *equals;
};

/* May the caller create `child` on k?  The key policy, as for any op; or a
 * grant of the caller allowing CreateGrant that may give child: a grant
 * passes on no more than it holds (its operations, and constraints at least
 * as strict as its own). */
int kmsd_authorize_create_grant(struct call *c, json_object *k,
				const struct grant_child *child);

/* ---- responses ---- */

/* Persist the state; KMSInternalException when the disk refuses (the
 * in-memory state is then rolled back: touch no state object after a
 * failure).  Handlers call it last. */
int kmsd_commit(struct call *c);

/* The answer to a dry run that would have succeeded:
 * DryRunOperationException (HTTP 412). */
int kmsd_dry_run_done(struct call *c);

/* The public KeyMetadata of k: a copy without the private '_' fields. */
json_object *kmsd_key_metadata(json_object *k);

/* Put one page of items (an array the caller owns) into resp[field] per the
 * request's Limit and Marker, with Truncated and, when truncated,
 * NextMarker.  Limit must be in 1..max (ValidationException otherwise) and
 * defaults to dflt: each List action has its own, per AWS. */
int kmsd_paginate(struct call *c, json_object *req, json_object *items,
		  json_object *resp, const char *field, int64_t max,
		  int64_t dflt);

/* ---- grants ---- */

/* The grant authorising caller for op on k under context, or NULL.  Grant
 * constraints apply only to operations that take an encryption context. */
json_object *kmsd_grant_find(struct call *c, json_object *k, const char *op,
			     json_object *context);
/* The principal a grant names (grantee or retiring principal) is the
 * caller: its ARN, or its account's root. */
bool kmsd_names_caller(struct call *c, const char *principal);
/* Grant g allows op. */
bool kmsd_has_op(json_object *g, const char *op);

#endif
