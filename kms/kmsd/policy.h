/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy.h — evaluation of KMS key policies (IAM policy JSON) for
 * cmkfs-kmsd (internal to kms/kmsd/).
 *
 * Supported: Version; Statement as an object or an array; Sid; Effect
 * Allow|Deny; Principal "*" or {"AWS": "*" | ARN | account id | [...]};
 * Action / NotAction as a string or array with * and ? wildcards, matched
 * case-insensitively ("kms:GenerateDataKey*"); Resource / NotResource
 * likewise (keys are matched by ARN); Condition with the operators
 * StringEquals, StringNotEquals, StringEqualsIgnoreCase, StringLike,
 * StringNotLike, Bool, each also with an "IfExists" suffix, over the keys
 * kms:EncryptionContext:<k>, kms:CallerAccount, kms:GrantIsForAWSResource,
 * aws:PrincipalArn and kms:ViaService (values: string or array; an array
 * matches if any element does).  Condition key names are case-insensitive,
 * including the encryption context key after kms:EncryptionContext: (as in
 * AWS; ASCII letters only), while values are compared as the operator says;
 * when a request's context has keys differing only in case, an Allow's
 * condition must hold for each of their values and a Deny's for any.  As in
 * IAM, a condition on a key the request lacks is false, except for the
 * negated operators (StringNotEquals, StringNotLike), where it is true — so
 * "Deny unless the context is X" also denies requests with no context — and
 * for ...IfExists, where it is true.  aws:PrincipalArn of an assumed-role
 * session is its role's ARN.
 *
 * Stricter than IAM, so that a policy is refused rather than misread:
 * unknown condition keys or operators, policy variables ("${...}"),
 * wildcards inside principal ARNs, empty lists, unknown Version values,
 * duplicate JSON members (json-c would silently keep the last one) and NUL
 * characters in strings are all invalid.
 *
 * Semantics: an explicit Deny wins; otherwise any matching Allow allows;
 * otherwise the request is implicitly denied.  A principal matches when the
 * statement names "*", the caller's ARN, or the caller's account (as the id
 * or as "arn:aws:iam::<id>:root").  Naming an account stands for "every
 * principal of that account": a local service has no IAM policies to
 * consult, so it treats the account's own IAM as allowing.  Cross-account
 * use therefore works exactly when the key policy names the other account
 * or one of its principals — what AWS requires of the key policy.
 *
 * Thread-safety: reentrant.  Inputs are never modified.
 */
#ifndef CMKFS_KMSD_POLICY_H
#define CMKFS_KMSD_POLICY_H

#include <stdbool.h>
#include <stddef.h>

/* Upper bounds enforced on every policy (AWS: 32 KiB documents). */
#define POLICY_MAX_BYTES      32768
#define POLICY_MAX_STATEMENTS 256

struct policy_kv {
	const char *key;
	const char *value;
};

struct policy_request {
	const char
		*principal_arn; /* "arn:aws:iam::111111111111:role/db-host" */
	const char *account;	/* caller's account: "111111111111" */
	const char *action;	/* "kms:Decrypt" */
	const char *resource;	/* the key's ARN */
	/* The request's encryption context (for kms:EncryptionContext:<k>). */
	const struct policy_kv *context;
	size_t n_context;
	bool grant_is_for_aws_resource; /* CreateGrant with that flag */
	const char *via_service;	/* NULL: not called via a service */
};

enum policy_decision {
	POLICY_IMPLICIT_DENY = 0,
	POLICY_ALLOW,
	POLICY_EXPLICIT_DENY,
};

/*
 * Check that doc (NUL-terminated JSON, at most POLICY_MAX_BYTES) is a policy
 * this evaluator understands.  Returns 0, -ENOMEM, or -EINVAL with a
 * one-line reason
 * in err (for MalformedPolicyDocumentException): not JSON, not an object,
 * no Statement, an Effect other than Allow/Deny, an unsupported element or
 * condition operator, a wrong type, too many statements.
 */
int policy_validate(const char *doc, char *err, size_t errlen);

/*
 * Evaluate doc for rq.  Returns 0 and sets *out; -EINVAL if doc does not
 * validate or rq lacks its action (then *out is POLICY_IMPLICIT_DENY);
 * -ENOMEM.  Statements are numbered from 1 in `why`; text quoted from the
 * policy or request is reduced to printable characters.  When why is not NULL
 * it receives a short explanation naming the deciding statement by Sid or index
 * (e.g. "denied by statement 'DenyDecrypt'" or "no statement allows
 * kms:Decrypt").
 */
int policy_evaluate(const char *doc, const struct policy_request *rq,
		    enum policy_decision *out, char *why, size_t whylen);

/* The default key policy for a new key owned by account (12 digits): the
 * account root gets kms:* on the key.  Returns a malloc'ed JSON string, or
 * NULL for a malformed account or no memory. */
char *policy_default(const char *account);

#endif
