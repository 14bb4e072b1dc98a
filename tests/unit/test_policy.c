/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_policy.c — unit tests of kms/kmsd/policy.c, the key policy evaluator
 * of cmkfs-kmsd: principals (accounts, roles, role sessions, "*"), actions
 * and resources with wildcards, every condition operator over every key,
 * the Deny/Allow/implicit decision and its explanation, and the validation
 * errors and limits.
 *
 * Cases are tables; policies are written with single quotes for legibility
 * and turned into JSON before use.  A table reports every mismatching case
 * (name, got, want, the evaluator's explanation) before failing.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "policy.h"

/* ---- fixtures ------------------------------------------------------------ */

#define ACCT_A "111111111111" /* owns the key */
#define ACCT_B "222222222222"
#define ACCT_C "333333333333"

#define KEY_ARN                                                                \
	"arn:aws:kms:eu-west-1:111111111111:key/"                              \
	"1234abcd-12ab-34cd-56ef-1234567890ab"
#define OTHER_KEY_ARN                                                          \
	"arn:aws:kms:eu-west-1:111111111111:key/"                              \
	"ffffffff-12ab-34cd-56ef-1234567890ab"

#define A_ROOT		 "arn:aws:iam::111111111111:root"
#define A_ROLE		 "arn:aws:iam::111111111111:role/db-host"
#define A_USER		 "arn:aws:iam::111111111111:user/alice"
#define A_SESSION	 "arn:aws:sts::111111111111:assumed-role/db-host/i-0abc"
#define B_ROOT		 "arn:aws:iam::222222222222:root"
#define B_ROLE		 "arn:aws:iam::222222222222:role/db-host"
#define B_OTHER_ROLE	 "arn:aws:iam::222222222222:role/backup"
#define B_USER_SAME_NAME "arn:aws:iam::222222222222:user/db-host"
#define B_SESSION	 "arn:aws:sts::222222222222:assumed-role/db-host/i-0abc"
#define B_SESSION2	 "arn:aws:sts::222222222222:assumed-role/db-host/i-0def"
#define B_OTHER_SESSION	 "arn:aws:sts::222222222222:assumed-role/backup/i-0abc"
#define C_ROLE		 "arn:aws:iam::333333333333:role/db-host"

static const struct policy_kv CTX_RIGHT[] = { { "cmkfs:volume", "vol-1" } };
static const struct policy_kv CTX_WRONG[] = { { "cmkfs:volume", "vol-2" } };
static const struct policy_kv CTX_UPPER[] = { { "cmkfs:volume", "VOL-1" } };
static const struct policy_kv CTX_OTHER_KEY[] = { { "other", "vol-1" } };
static const struct policy_kv CTX_TWO[] = { { "other", "x" },
					    { "cmkfs:volume", "vol-1" } };
static const struct policy_kv CTX_KEY_UPPER[] = { { "CMKFS:Volume", "vol-1" } };
static const struct policy_kv CTX_TWO_CASES[] = { { "cmkfs:volume", "vol-1" },
						  { "CMKFS:VOLUME", "vol-2" } };

/* A request of principal who (account acct) for action on KEY_ARN. */
#define REQ(who, acct, act)                                                    \
	{                                                                      \
		.principal_arn = (who), .account = (acct), .action = (act),    \
		.resource = KEY_ARN                                            \
	}
/* kms:Decrypt by A's db-host role with an encryption context... */
#define DEC_CTX(kv)                                                            \
	{                                                                      \
		.principal_arn = A_ROLE, .account = ACCT_A,                    \
		.action = "kms:Decrypt", .resource = KEY_ARN, .context = (kv), \
		.n_context = sizeof(kv) / sizeof((kv)[0])                      \
	}
/* ...or with none, ... */
#define DEC REQ(A_ROLE, ACCT_A, "kms:Decrypt")
/* ...by another principal, ... */
#define DEC_AS(who, acct) REQ(who, acct, "kms:Decrypt")
/* ...with kms:GrantIsForAWSResource, ... */
#define DEC_GRANT(b)                                                           \
	{                                                                      \
		.principal_arn = A_ROLE, .account = ACCT_A,                    \
		.action = "kms:Decrypt", .resource = KEY_ARN,                  \
		.grant_is_for_aws_resource = (b)                               \
	}
/* ...via a service, ... */
#define DEC_VIA(s)                                                             \
	{                                                                      \
		.principal_arn = A_ROLE, .account = ACCT_A,                    \
		.action = "kms:Decrypt", .resource = KEY_ARN,                  \
		.via_service = (s)                                             \
	}
/* ...on another resource. */
#define DEC_ON(res)                                                            \
	{                                                                      \
		.principal_arn = A_ROLE, .account = ACCT_A,                    \
		.action = "kms:Decrypt", .resource = (res)                     \
	}

#define ALLOW	 POLICY_ALLOW
#define IMPLICIT POLICY_IMPLICIT_DENY
#define DENY	 POLICY_EXPLICIT_DENY

/* The owner keeps kms:* (as the default policy), so that every table also
 * checks that adding a statement for someone else leaves the owner alone. */
#define OWNER_STMT                                                             \
	"{'Sid':'Owner','Effect':'Allow','Principal':{'AWS':'" A_ROOT "'},"    \
	"'Action':'kms:*','Resource':'*'}"

static const char *decision_name(enum policy_decision d)
{
	switch (d) {
	case POLICY_ALLOW:
		return "ALLOW";
	case POLICY_EXPLICIT_DENY:
		return "EXPLICIT_DENY";
	case POLICY_IMPLICIT_DENY:
		return "IMPLICIT_DENY";
	}
	return "?";
}

/* The policy with single quotes turned into double quotes. */
static char *dq(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	for (char *p = d; *p; p++)
		if (*p == '\'')
			*p = '"';
	return d;
}

static char *printf_alloc(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static char *printf_alloc(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	return s;
}

struct eval_case {
	const char *name;
	const char *policy; /* single-quoted JSON */
	struct policy_request rq;
	enum policy_decision want;
};

/* Evaluate doc (real JSON) for rq; 1 and a report when it is not want. */
static int check_one(const char *name, const char *doc,
		     const struct policy_request *rq, enum policy_decision want)
{
	enum policy_decision got = POLICY_ALLOW;
	char why[256] = "";
	char err[256] = "";
	int r = policy_evaluate(doc, rq, &got, why, sizeof(why));

	if (r != 0) {
		policy_validate(doc, err, sizeof(err));
		fprintf(stderr, "FAIL %s: policy_evaluate returned %d (%s)\n",
			name, r, err);
		return 1;
	}
	if (got != want) {
		fprintf(stderr,
			"FAIL %s\n  got  %s (%s)\n  want %s\n  policy %s\n",
			name, decision_name(got), why, decision_name(want),
			doc);
		return 1;
	}
	return 0;
}

static void run_cases(const struct eval_case *c, size_t n)
{
	int failed = 0;

	for (size_t i = 0; i < n; i++) {
		char *doc = dq(c[i].policy);

		failed += check_one(c[i].name, doc, &c[i].rq, c[i].want);
		free(doc);
	}
	if (failed)
		fail_msg("%d of %zu cases failed", failed, n);
}

#define RUN(table) run_cases((table), sizeof(table) / sizeof((table)[0]))

/* ---- the default policy -------------------------------------------------- */

static void default_policy_text(void **state)
{
	const char *want =
		"{\"Version\":\"2012-10-17\",\"Id\":\"key-default-1\","
		"\"Statement\":[{\"Sid\":\"Enable IAM User Permissions\","
		"\"Effect\":\"Allow\",\"Principal\":{\"AWS\":"
		"\"arn:aws:iam::111111111111:root\"},\"Action\":\"kms:*\","
		"\"Resource\":\"*\"}]}";
	char *doc = policy_default(ACCT_A);
	char err[256] = "x";

	(void)state;
	assert_non_null(doc);
	assert_string_equal(doc, want);
	assert_int_equal(policy_validate(doc, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	free(doc);

	/* Anything but a 12-digit account id would go into the JSON
	 * unescaped. */
	assert_null(policy_default(NULL));
	assert_null(policy_default(""));
	assert_null(policy_default("11111111111"));
	assert_null(policy_default("1111111111111"));
	assert_null(policy_default("11111111111\""));
	assert_null(policy_default("\"},{\"x\":1"));
}

static void default_policy_decisions(void **state)
{
	static const struct {
		const char *name;
		struct policy_request rq;
		enum policy_decision want;
	} cases[] = {
		{ "owner's role", DEC, ALLOW },
		{ "owner's root", DEC_AS(A_ROOT, ACCT_A), ALLOW },
		{ "owner's user", DEC_AS(A_USER, ACCT_A), ALLOW },
		{ "owner's role session", DEC_AS(A_SESSION, ACCT_A), ALLOW },
		{ "owner's ScheduleKeyDeletion",
		  REQ(A_ROLE, ACCT_A, "kms:ScheduleKeyDeletion"), ALLOW },
		{ "other account's role", DEC_AS(B_ROLE, ACCT_B), IMPLICIT },
		{ "other account's root", DEC_AS(B_ROOT, ACCT_B), IMPLICIT },
		{ "anonymous", DEC_AS(NULL, NULL), IMPLICIT },
	};
	char *doc = policy_default(ACCT_A);
	int failed = 0;

	(void)state;
	assert_non_null(doc);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		failed += check_one(cases[i].name, doc, &cases[i].rq,
				    cases[i].want);
	free(doc);
	assert_int_equal(failed, 0);
}

/* ---- principals ---------------------------------------------------------- */

#define SHARE(principal)                                                       \
	"{'Version':'2012-10-17','Statement':[" OWNER_STMT ","                 \
	"{'Sid':'Share','Effect':'Allow','Principal':" principal ","           \
	"'Action':['kms:Decrypt','kms:GenerateDataKey*'],'Resource':'*'}]}"

#define BY_ID	SHARE("{'AWS':'222222222222'}")
#define BY_ROOT SHARE("{'AWS':'" B_ROOT "'}")
#define BY_ROLE SHARE("{'AWS':'" B_ROLE "'}")
#define BY_PATH_ROLE                                                           \
	SHARE("{'AWS':'arn:aws:iam::222222222222:role/app/db-host'}")
#define BY_SESSION   SHARE("{'AWS':'" B_SESSION "'}")
#define BY_LIST	     SHARE("{'AWS':['" B_OTHER_ROLE "','333333333333']}")
#define BY_STAR	     SHARE("'*'")
#define BY_AWS_STAR  SHARE("{'AWS':'*'}")
#define BY_SERVICE   SHARE("{'Service':'rds.amazonaws.com'}")
#define BY_CN_ROOT   SHARE("{'AWS':'arn:aws-cn:iam::222222222222:root'}")
#define BY_ROLE_CASE SHARE("{'AWS':'arn:aws:iam::222222222222:role/DB-host'}")

static void principals(void **state)
{
	static const struct eval_case cases[] = {
		/* An account, by id or by root ARN, stands for all its
		 * principals. */
		{ "id: B's role", BY_ID, DEC_AS(B_ROLE, ACCT_B), ALLOW },
		{ "id: B's root", BY_ID, DEC_AS(B_ROOT, ACCT_B), ALLOW },
		{ "id: B's session", BY_ID, DEC_AS(B_SESSION, ACCT_B), ALLOW },
		{ "id: B, action not shared", BY_ID,
		  REQ(B_ROLE, ACCT_B, "kms:ScheduleKeyDeletion"), IMPLICIT },
		{ "id: C's role", BY_ID, DEC_AS(C_ROLE, ACCT_C), IMPLICIT },
		{ "id: owner still", BY_ID, DEC, ALLOW },
		{ "root: B's role", BY_ROOT, DEC_AS(B_ROLE, ACCT_B), ALLOW },
		{ "root: B's other role", BY_ROOT, DEC_AS(B_OTHER_ROLE, ACCT_B),
		  ALLOW },
		{ "root: C's role", BY_ROOT, DEC_AS(C_ROLE, ACCT_C), IMPLICIT },
		{ "root: other partition", BY_CN_ROOT, DEC_AS(B_ROLE, ACCT_B),
		  IMPLICIT },
		/* A role names itself and its sessions, nothing else. */
		{ "role: that role", BY_ROLE, DEC_AS(B_ROLE, ACCT_B), ALLOW },
		{ "role: its session", BY_ROLE, DEC_AS(B_SESSION, ACCT_B),
		  ALLOW },
		{ "role: another session", BY_ROLE, DEC_AS(B_SESSION2, ACCT_B),
		  ALLOW },
		{ "role: another role", BY_ROLE, DEC_AS(B_OTHER_ROLE, ACCT_B),
		  IMPLICIT },
		{ "role: another role's session", BY_ROLE,
		  DEC_AS(B_OTHER_SESSION, ACCT_B), IMPLICIT },
		{ "role: the account's root", BY_ROLE, DEC_AS(B_ROOT, ACCT_B),
		  IMPLICIT },
		{ "role: user of the same name", BY_ROLE,
		  DEC_AS(B_USER_SAME_NAME, ACCT_B), IMPLICIT },
		{ "role: same name, other account", BY_ROLE,
		  DEC_AS(C_ROLE, ACCT_C), IMPLICIT },
		{ "role: same name, other account's session", BY_ROLE,
		  DEC_AS("arn:aws:sts::333333333333:assumed-role/db-host/s",
			 ACCT_C),
		  IMPLICIT },
		{ "role: ARN is case-sensitive", BY_ROLE_CASE,
		  DEC_AS(B_ROLE, ACCT_B), IMPLICIT },
		{ "role: malformed session ARN", BY_ROLE,
		  DEC_AS("arn:aws:sts::222222222222:assumed-role/db-host",
			 ACCT_B),
		  IMPLICIT },
		{ "role with path: session", BY_PATH_ROLE,
		  DEC_AS(B_SESSION, ACCT_B), ALLOW },
		{ "role with path: other session", BY_PATH_ROLE,
		  DEC_AS(B_OTHER_SESSION, ACCT_B), IMPLICIT },
		/* A session ARN names that session only. */
		{ "session: itself", BY_SESSION, DEC_AS(B_SESSION, ACCT_B),
		  ALLOW },
		{ "session: sibling", BY_SESSION, DEC_AS(B_SESSION2, ACCT_B),
		  IMPLICIT },
		{ "session: its role", BY_SESSION, DEC_AS(B_ROLE, ACCT_B),
		  IMPLICIT },
		{ "list: first", BY_LIST, DEC_AS(B_OTHER_ROLE, ACCT_B), ALLOW },
		{ "list: second (account)", BY_LIST, DEC_AS(C_ROLE, ACCT_C),
		  ALLOW },
		{ "list: neither", BY_LIST, DEC_AS(B_ROLE, ACCT_B), IMPLICIT },
		{ "star: anyone", BY_STAR, DEC_AS(C_ROLE, ACCT_C), ALLOW },
		{ "star: anonymous", BY_STAR, DEC_AS(NULL, NULL), ALLOW },
		{ "AWS star: anyone", BY_AWS_STAR, DEC_AS(C_ROLE, ACCT_C),
		  ALLOW },
		{ "service: never a caller", BY_SERVICE, DEC_AS(B_ROLE, ACCT_B),
		  IMPLICIT },
		{ "service: owner unaffected", BY_SERVICE, DEC, ALLOW },
		{ "id: anonymous", BY_ID, DEC_AS(NULL, NULL), IMPLICIT },
		{ "id: account but no ARN", BY_ID, DEC_AS(NULL, ACCT_B),
		  ALLOW },
	};

	(void)state;
	RUN(cases);
}

/* ---- Deny and Allow ------------------------------------------------------ */

#define DENY_B_DECRYPT                                                         \
	"{'Sid':'DenyDecrypt','Effect':'Deny','Principal':{'AWS':'" ACCT_B     \
	"'},'Action':'kms:Decrypt','Resource':'*'}"
#define ALLOW_ALL                                                              \
	"{'Effect':'Allow','Principal':'*','Action':'kms:*','Resource':'*'}"
#define DENY_THEN_ALLOW "{'Statement':[" DENY_B_DECRYPT "," ALLOW_ALL "]}"
#define ALLOW_THEN_DENY "{'Statement':[" ALLOW_ALL "," DENY_B_DECRYPT "]}"
/* "Deny unless the encryption context names the volume": a request
 * without context must be denied too. */
#define DENY_UNLESS_CONTEXT                                                    \
	"{'Statement':[" ALLOW_ALL ",{'Effect':'Deny','Principal':'*',"        \
	"'Action':'kms:Decrypt','Condition':{'StringNotEquals':"               \
	"{'kms:EncryptionContext:cmkfs:volume':'vol-1'}}}]}"

static void deny_beats_allow(void **state)
{
	static const struct eval_case cases[] = {
		{ "deny first: B decrypt", DENY_THEN_ALLOW,
		  DEC_AS(B_ROLE, ACCT_B), DENY },
		{ "deny first: B encrypt", DENY_THEN_ALLOW,
		  REQ(B_ROLE, ACCT_B, "kms:Encrypt"), ALLOW },
		{ "deny first: C decrypt", DENY_THEN_ALLOW,
		  DEC_AS(C_ROLE, ACCT_C), ALLOW },
		{ "allow first: B decrypt", ALLOW_THEN_DENY,
		  DEC_AS(B_ROLE, ACCT_B), DENY },
		{ "allow first: B encrypt", ALLOW_THEN_DENY,
		  REQ(B_ROLE, ACCT_B, "kms:Encrypt"), ALLOW },
		{ "allow first: C decrypt", ALLOW_THEN_DENY,
		  DEC_AS(C_ROLE, ACCT_C), ALLOW },
		{ "deny alone", "{'Statement':" DENY_B_DECRYPT "}",
		  DEC_AS(B_ROLE, ACCT_B), DENY },
		{ "deny alone, not matching",
		  "{'Statement':" DENY_B_DECRYPT "}", DEC_AS(C_ROLE, ACCT_C),
		  IMPLICIT },
		{ "deny unless context: right", DENY_UNLESS_CONTEXT,
		  DEC_CTX(CTX_RIGHT), ALLOW },
		{ "deny unless context: wrong", DENY_UNLESS_CONTEXT,
		  DEC_CTX(CTX_WRONG), DENY },
		{ "deny unless context: none", DENY_UNLESS_CONTEXT, DEC, DENY },
		{ "deny unless context: other key", DENY_UNLESS_CONTEXT,
		  DEC_CTX(CTX_OTHER_KEY), DENY },
		{ "deny unless context: key in other case", DENY_UNLESS_CONTEXT,
		  DEC_CTX(CTX_KEY_UPPER), ALLOW },
		/* keys differing only in case: a Deny needs one value */
		{ "deny unless context: two cases, one wrong",
		  DENY_UNLESS_CONTEXT, DEC_CTX(CTX_TWO_CASES), DENY },
		{ "deny if context: two cases, one matches",
		  "{'Statement':[" ALLOW_ALL ",{'Effect':'Deny','Principal':"
		  "'*','Action':'kms:Decrypt','Condition':{'StringEquals':"
		  "{'kms:EncryptionContext:cmkfs:volume':'vol-2'}}}]}",
		  DEC_CTX(CTX_TWO_CASES), DENY },
		{ "deny unless context: encrypt", DENY_UNLESS_CONTEXT,
		  REQ(A_ROLE, ACCT_A, "kms:Encrypt"), ALLOW },
	};

	(void)state;
	RUN(cases);
}

/* ---- actions ------------------------------------------------------------- */

#define ACTIONS(a)                                                             \
	"{'Statement':{'Effect':'Allow','Principal':'*','Action':" a "}}"
#define NOT_ACTIONS(a)                                                         \
	"{'Statement':{'Effect':'Allow','Principal':'*','NotAction':" a "}}"
#define DENY_NOT_DECRYPT                                                       \
	"{'Statement':[" ALLOW_ALL ",{'Effect':'Deny','Principal':'*',"        \
	"'NotAction':'kms:Decrypt'}]}"
#define GDK    ACTIONS("'kms:GenerateDataKey*'")
#define REENC  ACTIONS("'kms:ReEncrypt*'")
#define QMARK  ACTIONS("'kms:?ncrypt'")
#define A(act) REQ(A_ROLE, ACCT_A, act)

static void actions(void **state)
{
	static const struct eval_case cases[] = {
		{ "GenerateDataKey* / GenerateDataKey", GDK,
		  A("kms:GenerateDataKey"), ALLOW },
		{ "GenerateDataKey* / WithoutPlaintext", GDK,
		  A("kms:GenerateDataKeyWithoutPlaintext"), ALLOW },
		{ "GenerateDataKey* / Pair", GDK, A("kms:GenerateDataKeyPair"),
		  ALLOW },
		{ "GenerateDataKey* / Decrypt", GDK, A("kms:Decrypt"),
		  IMPLICIT },
		{ "GenerateDataKey* / prefix only", GDK, A("kms:GenerateData"),
		  IMPLICIT },
		{ "ReEncrypt* / From", REENC, A("kms:ReEncryptFrom"), ALLOW },
		{ "ReEncrypt* / To", REENC, A("kms:ReEncryptTo"), ALLOW },
		{ "ReEncrypt* / Encrypt", REENC, A("kms:Encrypt"), IMPLICIT },
		{ "case: pattern", ACTIONS("'KMS:decrypt'"), A("kms:Decrypt"),
		  ALLOW },
		{ "case: action", ACTIONS("'kms:Decrypt'"), A("kms:DECRYPT"),
		  ALLOW },
		{ "case: wildcard", ACTIONS("'kms:generatedatakey*'"),
		  A("kms:GenerateDataKeyWithoutPlaintext"), ALLOW },
		{ "? / Encrypt", QMARK, A("kms:Encrypt"), ALLOW },
		{ "? / Decrypt", QMARK, A("kms:Decrypt"), IMPLICIT },
		{ "? / ncrypt", QMARK, A("kms:ncrypt"), IMPLICIT },
		{ "?? / Decrypt", ACTIONS("'kms:??crypt'"), A("kms:Decrypt"),
		  ALLOW },
		{ "??? / Encrypt", ACTIONS("'kms:???crypt'"), A("kms:Encrypt"),
		  IMPLICIT },
		{ "kms:*", ACTIONS("'kms:*'"), A("kms:Decrypt"), ALLOW },
		{ "kms:* / other service", ACTIONS("'kms:*'"),
		  A("s3:GetObject"), IMPLICIT },
		{ "*", ACTIONS("'*'"), A("kms:Decrypt"), ALLOW },
		{ "anchored at the end", ACTIONS("'kms:Decrypt'"),
		  A("kms:DecryptX"), IMPLICIT },
		{ "anchored at the start", ACTIONS("'kms:Decrypt'"),
		  A("xkms:Decrypt"), IMPLICIT },
		{ "other service", ACTIONS("'s3:*'"), A("kms:Decrypt"),
		  IMPLICIT },
		{ "*crypt", ACTIONS("'kms:*crypt'"), A("kms:Decrypt"), ALLOW },
		{ "*crypt / ReEncryptTo", ACTIONS("'kms:*crypt'"),
		  A("kms:ReEncryptTo"), IMPLICIT },
		{ "array: second", ACTIONS("['kms:Encrypt','kms:Decrypt']"),
		  A("kms:Decrypt"), ALLOW },
		{ "array: none", ACTIONS("['kms:Encrypt','kms:Decrypt']"),
		  A("kms:ReEncryptFrom"), IMPLICIT },
		{ "NotAction: other",
		  NOT_ACTIONS("['kms:Schedule*','kms:Disable*']"),
		  A("kms:Decrypt"), ALLOW },
		{ "NotAction: listed",
		  NOT_ACTIONS("['kms:Schedule*','kms:Disable*']"),
		  A("kms:ScheduleKeyDeletion"), IMPLICIT },
		{ "NotAction: listed by wildcard",
		  NOT_ACTIONS("['kms:Schedule*','kms:Disable*']"),
		  A("kms:DisableKey"), IMPLICIT },
		{ "NotAction: case-insensitive", NOT_ACTIONS("'kms:decrypt'"),
		  A("kms:Decrypt"), IMPLICIT },
		{ "Deny NotAction: the exception", DENY_NOT_DECRYPT,
		  A("kms:Decrypt"), ALLOW },
		{ "Deny NotAction: the rest", DENY_NOT_DECRYPT,
		  A("kms:Encrypt"), DENY },
	};

	(void)state;
	RUN(cases);
}

/* ---- resources ----------------------------------------------------------- */

#define RES(r)                                                                 \
	"{'Statement':{'Effect':'Allow','Principal':'*','Action':'kms:*',"     \
	"'Resource':" r "}}"
#define NOT_RES(r)                                                             \
	"{'Statement':{'Effect':'Allow','Principal':'*','Action':'kms:*',"     \
	"'NotResource':" r "}}"
#define NO_RES "{'Statement':{'Effect':'Allow','Principal':'*','Action':'*'}}"

static void resources(void **state)
{
	static const struct eval_case cases[] = {
		{ "exact", RES("'" KEY_ARN "'"), DEC, ALLOW },
		{ "exact, other key", RES("'" KEY_ARN "'"),
		  DEC_ON(OTHER_KEY_ARN), IMPLICIT },
		{ "case-sensitive", RES("'" KEY_ARN "'"),
		  DEC_ON("arn:aws:kms:eu-west-1:111111111111:key/"
			 "1234ABCD-12ab-34cd-56ef-1234567890ab"),
		  IMPLICIT },
		{ "*", RES("'*'"), DEC, ALLOW },
		{ "key/*", RES("'arn:aws:kms:eu-west-1:111111111111:key/*'"),
		  DEC, ALLOW },
		{ "any region",
		  RES("'arn:aws:kms:*:111111111111:key/1234abcd-*'"), DEC,
		  ALLOW },
		{ "other account's keys",
		  RES("'arn:aws:kms:eu-west-1:222222222222:key/*'"), DEC,
		  IMPLICIT },
		{ "alias is not the key",
		  RES("'arn:aws:kms:eu-west-1:111111111111:alias/*'"), DEC,
		  IMPLICIT },
		{ "? in ARN", RES("'arn:aws:kms:eu-west-?:111111111111:key/*'"),
		  DEC, ALLOW },
		{ "list", RES("['" OTHER_KEY_ARN "','" KEY_ARN "']"), DEC,
		  ALLOW },
		{ "NotResource: other key", NOT_RES("'" OTHER_KEY_ARN "'"), DEC,
		  ALLOW },
		{ "NotResource: this key", NOT_RES("'" KEY_ARN "'"), DEC,
		  IMPLICIT },
		{ "NotResource: wildcard",
		  NOT_RES("'arn:aws:kms:*:111111111111:key/*'"), DEC,
		  IMPLICIT },
		{ "no Resource: the key itself", NO_RES, DEC, ALLOW },
		{ "no Resource, other key", NO_RES, DEC_ON(OTHER_KEY_ARN),
		  ALLOW },
		{ "no resource in request: *", RES("'*'"), DEC_ON(NULL),
		  ALLOW },
		{ "no resource in request: ARN", RES("'" KEY_ARN "'"),
		  DEC_ON(NULL), IMPLICIT },
	};

	(void)state;
	RUN(cases);
}

/* ---- conditions ---------------------------------------------------------- */

#define VOL "'kms:EncryptionContext:cmkfs:volume'"
#define VIA "rds.eu-west-1.amazonaws.com"

struct cond_case {
	const char *name;
	const char *cond; /* the Condition object, single-quoted */
	struct policy_request rq;
	enum policy_decision want;
};

static void conditions(void **state)
{
	static const struct cond_case cases[] = {
		/* StringEquals */
		{ "Equals ctx: right", "{'StringEquals':{" VOL ":'vol-1'}}",
		  DEC_CTX(CTX_RIGHT), ALLOW },
		{ "Equals ctx: wrong", "{'StringEquals':{" VOL ":'vol-1'}}",
		  DEC_CTX(CTX_WRONG), IMPLICIT },
		{ "Equals ctx: missing", "{'StringEquals':{" VOL ":'vol-1'}}",
		  DEC, IMPLICIT },
		{ "Equals ctx: other key only",
		  "{'StringEquals':{" VOL ":'vol-1'}}", DEC_CTX(CTX_OTHER_KEY),
		  IMPLICIT },
		{ "Equals ctx: among others",
		  "{'StringEquals':{" VOL ":'vol-1'}}", DEC_CTX(CTX_TWO),
		  ALLOW },
		{ "Equals ctx: case-sensitive value",
		  "{'StringEquals':{" VOL ":'vol-1'}}", DEC_CTX(CTX_UPPER),
		  IMPLICIT },
		{ "Equals ctx: key prefix case-insensitive",
		  "{'StringEquals':{'KMS:encryptioncontext:cmkfs:volume':"
		  "'vol-1'}}",
		  DEC_CTX(CTX_RIGHT), ALLOW },
		/* AWS: the context key is case-insensitive too, the value
		 * is not (StringEquals) */
		{ "Equals ctx: context key case-insensitive",
		  "{'StringEquals':{'kms:EncryptionContext:CMKFS:Volume':"
		  "'vol-1'}}",
		  DEC_CTX(CTX_RIGHT), ALLOW },
		{ "Equals ctx: request key in other case",
		  "{'StringEquals':{" VOL ":'vol-1'}}", DEC_CTX(CTX_KEY_UPPER),
		  ALLOW },
		{ "Equals ctx: other case, value still case-sensitive",
		  "{'StringEquals':{'kms:EncryptionContext:CMKFS:VOLUME':"
		  "'VOL-1'}}",
		  DEC_CTX(CTX_KEY_UPPER), IMPLICIT },
		/* keys differing only in case: an Allow needs every value */
		{ "Equals ctx: two cases, one value wrong",
		  "{'StringEquals':{" VOL ":'vol-1'}}", DEC_CTX(CTX_TWO_CASES),
		  IMPLICIT },
		{ "Like ctx: two cases, both match",
		  "{'StringLike':{" VOL ":'vol-*'}}", DEC_CTX(CTX_TWO_CASES),
		  ALLOW },
		/* StringNotEquals: a missing key matches (IAM) */
		{ "NotEquals ctx: right",
		  "{'StringNotEquals':{" VOL ":'vol-2'}}", DEC_CTX(CTX_RIGHT),
		  ALLOW },
		{ "NotEquals ctx: wrong",
		  "{'StringNotEquals':{" VOL ":'vol-2'}}", DEC_CTX(CTX_WRONG),
		  IMPLICIT },
		{ "NotEquals ctx: missing",
		  "{'StringNotEquals':{" VOL ":'vol-2'}}", DEC, ALLOW },
		{ "NotEquals ctx: list hit",
		  "{'StringNotEquals':{" VOL ":['vol-2','vol-1']}}",
		  DEC_CTX(CTX_RIGHT), IMPLICIT },
		{ "NotEquals ctx: list miss",
		  "{'StringNotEquals':{" VOL ":['vol-2','vol-3']}}",
		  DEC_CTX(CTX_RIGHT), ALLOW },
		/* StringEqualsIgnoreCase */
		{ "EqualsIgnoreCase: right",
		  "{'StringEqualsIgnoreCase':{" VOL ":'VOL-1'}}",
		  DEC_CTX(CTX_RIGHT), ALLOW },
		{ "EqualsIgnoreCase: upper",
		  "{'StringEqualsIgnoreCase':{" VOL ":'vol-1'}}",
		  DEC_CTX(CTX_UPPER), ALLOW },
		{ "EqualsIgnoreCase: wrong",
		  "{'StringEqualsIgnoreCase':{" VOL ":'VOL-1'}}",
		  DEC_CTX(CTX_WRONG), IMPLICIT },
		{ "EqualsIgnoreCase: missing",
		  "{'StringEqualsIgnoreCase':{" VOL ":'VOL-1'}}", DEC,
		  IMPLICIT },
		/* StringLike */
		{ "Like: *", "{'StringLike':{" VOL ":'vol-*'}}",
		  DEC_CTX(CTX_RIGHT), ALLOW },
		{ "Like: ?", "{'StringLike':{" VOL ":'vol-?'}}",
		  DEC_CTX(CTX_RIGHT), ALLOW },
		{ "Like: no match", "{'StringLike':{" VOL ":'x*'}}",
		  DEC_CTX(CTX_RIGHT), IMPLICIT },
		{ "Like: case-sensitive", "{'StringLike':{" VOL ":'VOL-*'}}",
		  DEC_CTX(CTX_RIGHT), IMPLICIT },
		{ "Like: missing", "{'StringLike':{" VOL ":'*'}}", DEC,
		  IMPLICIT },
		{ "Like: list", "{'StringLike':{" VOL ":['a*','*-1']}}",
		  DEC_CTX(CTX_RIGHT), ALLOW },
		/* StringNotLike */
		{ "NotLike: right", "{'StringNotLike':{" VOL ":'*-2'}}",
		  DEC_CTX(CTX_RIGHT), ALLOW },
		{ "NotLike: wrong", "{'StringNotLike':{" VOL ":'*-2'}}",
		  DEC_CTX(CTX_WRONG), IMPLICIT },
		{ "NotLike: missing", "{'StringNotLike':{" VOL ":'*-2'}}", DEC,
		  ALLOW },
		/* ...IfExists: a missing key satisfies the condition */
		{ "EqualsIfExists: right",
		  "{'StringEqualsIfExists':{" VOL ":'vol-1'}}",
		  DEC_CTX(CTX_RIGHT), ALLOW },
		{ "EqualsIfExists: wrong",
		  "{'StringEqualsIfExists':{" VOL ":'vol-1'}}",
		  DEC_CTX(CTX_WRONG), IMPLICIT },
		{ "EqualsIfExists: missing",
		  "{'StringEqualsIfExists':{" VOL ":'vol-1'}}", DEC, ALLOW },
		{ "NotEqualsIfExists: right",
		  "{'StringNotEqualsIfExists':{" VOL ":'vol-2'}}",
		  DEC_CTX(CTX_RIGHT), ALLOW },
		{ "NotEqualsIfExists: wrong",
		  "{'StringNotEqualsIfExists':{" VOL ":'vol-2'}}",
		  DEC_CTX(CTX_WRONG), IMPLICIT },
		{ "NotEqualsIfExists: missing",
		  "{'StringNotEqualsIfExists':{" VOL ":'vol-2'}}", DEC, ALLOW },
		{ "EqualsIgnoreCaseIfExists: upper",
		  "{'StringEqualsIgnoreCaseIfExists':{" VOL ":'vol-1'}}",
		  DEC_CTX(CTX_UPPER), ALLOW },
		{ "EqualsIgnoreCaseIfExists: wrong",
		  "{'StringEqualsIgnoreCaseIfExists':{" VOL ":'vol-1'}}",
		  DEC_CTX(CTX_WRONG), IMPLICIT },
		{ "EqualsIgnoreCaseIfExists: missing",
		  "{'StringEqualsIgnoreCaseIfExists':{" VOL ":'vol-1'}}", DEC,
		  ALLOW },
		{ "LikeIfExists: right",
		  "{'StringLikeIfExists':{" VOL ":'*1'}}", DEC_CTX(CTX_RIGHT),
		  ALLOW },
		{ "LikeIfExists: wrong",
		  "{'StringLikeIfExists':{" VOL ":'*1'}}", DEC_CTX(CTX_WRONG),
		  IMPLICIT },
		{ "LikeIfExists: missing",
		  "{'StringLikeIfExists':{" VOL ":'*1'}}", DEC, ALLOW },
		{ "NotLikeIfExists: right",
		  "{'StringNotLikeIfExists':{" VOL ":'*2'}}",
		  DEC_CTX(CTX_RIGHT), ALLOW },
		{ "NotLikeIfExists: wrong",
		  "{'StringNotLikeIfExists':{" VOL ":'*2'}}",
		  DEC_CTX(CTX_WRONG), IMPLICIT },
		{ "NotLikeIfExists: missing",
		  "{'StringNotLikeIfExists':{" VOL ":'*2'}}", DEC, ALLOW },
		/* Bool */
		{ "Bool grant 'true': true",
		  "{'Bool':{'kms:GrantIsForAWSResource':'true'}}",
		  DEC_GRANT(true), ALLOW },
		{ "Bool grant 'true': false",
		  "{'Bool':{'kms:GrantIsForAWSResource':'true'}}",
		  DEC_GRANT(false), IMPLICIT },
		{ "Bool grant 'false': false",
		  "{'Bool':{'kms:GrantIsForAWSResource':'false'}}",
		  DEC_GRANT(false), ALLOW },
		{ "Bool grant 'false': true",
		  "{'Bool':{'kms:GrantIsForAWSResource':'false'}}",
		  DEC_GRANT(true), IMPLICIT },
		{ "Bool grant JSON true: true",
		  "{'Bool':{'kms:GrantIsForAWSResource':true}}",
		  DEC_GRANT(true), ALLOW },
		{ "Bool grant JSON true: false",
		  "{'Bool':{'kms:GrantIsForAWSResource':true}}",
		  DEC_GRANT(false), IMPLICIT },
		{ "Bool grant 'TRUE': true",
		  "{'Bool':{'kms:GrantIsForAWSResource':'TRUE'}}",
		  DEC_GRANT(true), ALLOW },
		{ "Bool grant key case",
		  "{'Bool':{'KMS:GRANTISFORAWSRESOURCE':'true'}}",
		  DEC_GRANT(true), ALLOW },
		{ "BoolIfExists grant: true",
		  "{'BoolIfExists':{'kms:GrantIsForAWSResource':'true'}}",
		  DEC_GRANT(true), ALLOW },
		{ "BoolIfExists grant: false (the key is always there)",
		  "{'BoolIfExists':{'kms:GrantIsForAWSResource':'true'}}",
		  DEC_GRANT(false), IMPLICIT },
		{ "StringEquals grant true",
		  "{'StringEquals':{'kms:GrantIsForAWSResource':true}}",
		  DEC_GRANT(true), ALLOW },
		/* kms:CallerAccount */
		{ "CallerAccount: owner",
		  "{'StringEquals':{'kms:CallerAccount':'111111111111'}}", DEC,
		  ALLOW },
		{ "CallerAccount: other",
		  "{'StringEquals':{'kms:CallerAccount':'111111111111'}}",
		  DEC_AS(B_ROLE, ACCT_B), IMPLICIT },
		{ "CallerAccount: number",
		  "{'StringEquals':{'kms:CallerAccount':111111111111}}", DEC,
		  ALLOW },
		{ "CallerAccount: list",
		  "{'StringEquals':{'kms:CallerAccount':['3','111111111111']}}",
		  DEC, ALLOW },
		{ "CallerAccount: missing",
		  "{'StringEquals':{'kms:CallerAccount':'111111111111'}}",
		  DEC_AS(A_ROLE, NULL), IMPLICIT },
		/* aws:PrincipalArn; a role session's is its role's ARN */
		{ "PrincipalArn: role",
		  "{'StringEquals':{'aws:PrincipalArn':'" A_ROLE "'}}", DEC,
		  ALLOW },
		{ "PrincipalArn: user",
		  "{'StringEquals':{'aws:PrincipalArn':'" A_ROLE "'}}",
		  DEC_AS(A_USER, ACCT_A), IMPLICIT },
		{ "PrincipalArn: role session",
		  "{'StringEquals':{'aws:PrincipalArn':'" A_ROLE "'}}",
		  DEC_AS(A_SESSION, ACCT_A), ALLOW },
		{ "PrincipalArn: session ARN is not the value",
		  "{'StringEquals':{'aws:PrincipalArn':'" A_SESSION "'}}",
		  DEC_AS(A_SESSION, ACCT_A), IMPLICIT },
		{ "PrincipalArn: like role/*",
		  "{'StringLike':{'aws:principalarn':"
		  "'arn:aws:iam::111111111111:role/*'}}",
		  DEC, ALLOW },
		{ "PrincipalArn: like role/*, user",
		  "{'StringLike':{'aws:PrincipalArn':"
		  "'arn:aws:iam::111111111111:role/*'}}",
		  DEC_AS(A_USER, ACCT_A), IMPLICIT },
		{ "PrincipalArn: anonymous",
		  "{'StringLike':{'aws:PrincipalArn':'*'}}", DEC_AS(NULL, NULL),
		  IMPLICIT },
		/* kms:ViaService */
		{ "ViaService: via",
		  "{'StringEquals':{'kms:ViaService':'" VIA "'}}", DEC_VIA(VIA),
		  ALLOW },
		{ "ViaService: other service",
		  "{'StringEquals':{'kms:ViaService':'" VIA "'}}",
		  DEC_VIA("ec2.eu-west-1.amazonaws.com"), IMPLICIT },
		{ "ViaService: direct call",
		  "{'StringEquals':{'kms:ViaService':'" VIA "'}}", DEC,
		  IMPLICIT },
		{ "ViaService IfExists: direct call",
		  "{'StringEqualsIfExists':{'kms:ViaService':'" VIA "'}}", DEC,
		  ALLOW },
		{ "ViaService IfExists: other service",
		  "{'StringEqualsIfExists':{'kms:ViaService':'" VIA "'}}",
		  DEC_VIA("ec2.eu-west-1.amazonaws.com"), IMPLICIT },
		{ "ViaService like",
		  "{'StringLike':{'kms:ViaService':'rds.*.amazonaws.com'}}",
		  DEC_VIA(VIA), ALLOW },
		/* values OR, keys AND, operators AND */
		{ "values OR: second",
		  "{'StringEquals':{" VOL ":['x','vol-1']}}",
		  DEC_CTX(CTX_RIGHT), ALLOW },
		{ "values OR: none", "{'StringEquals':{" VOL ":['x','vol-1']}}",
		  DEC_CTX(CTX_WRONG), IMPLICIT },
		{ "keys AND: both",
		  "{'StringEquals':{" VOL ":'vol-1',"
		  "'kms:CallerAccount':'111111111111'}}",
		  DEC_CTX(CTX_RIGHT), ALLOW },
		{ "keys AND: context wrong",
		  "{'StringEquals':{" VOL ":'vol-1',"
		  "'kms:CallerAccount':'111111111111'}}",
		  DEC_CTX(CTX_WRONG), IMPLICIT },
		{ "keys AND: account wrong",
		  "{'StringEquals':{" VOL ":'vol-1',"
		  "'kms:CallerAccount':'222222222222'}}",
		  DEC_CTX(CTX_RIGHT), IMPLICIT },
		{ "operators AND: both",
		  "{'StringEquals':{" VOL ":'vol-1'},"
		  "'StringLike':{'aws:PrincipalArn':'*:role/db-*'}}",
		  DEC_CTX(CTX_RIGHT), ALLOW },
		{ "operators AND: second fails",
		  "{'StringEquals':{" VOL ":'vol-1'},"
		  "'Bool':{'kms:GrantIsForAWSResource':'true'}}",
		  DEC_CTX(CTX_RIGHT), IMPLICIT },
		{ "empty Condition", "{}", DEC, ALLOW },
	};
	int failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *doc = printf_alloc(
			"{'Version':'2012-10-17','Statement':{'Effect':'Allow',"
			"'Principal':'*','Action':'kms:*','Resource':'*',"
			"'Condition':%s}}",
			cases[i].cond);
		char *json = dq(doc);

		failed += check_one(cases[i].name, json, &cases[i].rq,
				    cases[i].want);
		free(json);
		free(doc);
	}
	if (failed)
		fail_msg("%d condition cases failed", failed);
}

/* ---- explanations -------------------------------------------------------- */

static void explanations(void **state)
{
	static const struct {
		const char *policy;
		struct policy_request rq;
		enum policy_decision want;
		const char *why;
	} cases[] = {
		{ DENY_THEN_ALLOW, DEC_AS(B_ROLE, ACCT_B), DENY,
		  "denied by statement 'DenyDecrypt'" },
		{ DENY_UNLESS_CONTEXT, DEC, DENY, "denied by statement 2" },
		{ DENY_THEN_ALLOW, DEC_AS(C_ROLE, ACCT_C), ALLOW,
		  "allowed by statement 2" },
		{ SHARE("{'AWS':'222222222222'}"), DEC_AS(B_ROLE, ACCT_B),
		  ALLOW, "allowed by statement 'Share'" },
		{ SHARE("{'AWS':'222222222222'}"), DEC_AS(C_ROLE, ACCT_C),
		  IMPLICIT, "no statement allows kms:Decrypt" },
		{ SHARE("{'AWS':'222222222222'}"),
		  REQ(B_ROLE, ACCT_B, "kms:ScheduleKeyDeletion"), IMPLICIT,
		  "no statement allows kms:ScheduleKeyDeletion" },
		/* The first matching Allow is named, the first Deny. */
		{ "{'Statement':[{'Sid':'One','Effect':'Allow','Principal':'*',"
		  "'Action':'kms:*'},{'Sid':'Two','Effect':'Allow',"
		  "'Principal':'*','Action':'kms:*'}]}",
		  DEC, ALLOW, "allowed by statement 'One'" },
		{ "{'Statement':[" ALLOW_ALL ",{'Sid':'D1','Effect':'Deny',"
		  "'Principal':'*','Action':'kms:*'},{'Sid':'D2','Effect':"
		  "'Deny','Principal':'*','Action':'kms:*'}]}",
		  DEC, DENY, "denied by statement 'D1'" },
		/* Untrusted text is made printable. */
		{ "{'Statement':{'Sid':'a\\nb','Effect':'Deny','Principal':'*',"
		  "'Action':'*'}}",
		  DEC, DENY, "denied by statement 'a?b'" },
		{ "{'Statement':{'Sid':'','Effect':'Deny','Principal':'*',"
		  "'Action':'*'}}",
		  DEC, DENY, "denied by statement 1" },
	};
	int failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *doc = dq(cases[i].policy);
		enum policy_decision got;
		char why[256] = "";
		int r = policy_evaluate(doc, &cases[i].rq, &got, why,
					sizeof(why));

		if (r || got != cases[i].want ||
		    strcmp(why, cases[i].why) != 0) {
			fprintf(stderr,
				"FAIL case %zu\n  got  %d %s '%s'\n"
				"  want 0 %s '%s'\n",
				i, r, decision_name(got), why,
				decision_name(cases[i].want), cases[i].why);
			failed++;
		}
		free(doc);
	}
	assert_int_equal(failed, 0);
}

static void explanation_buffers(void **state)
{
	char *doc = dq(DENY_THEN_ALLOW);
	struct policy_request rq = DEC_AS(B_ROLE, ACCT_B);
	enum policy_decision got;
	char why[8];

	(void)state;
	/* why is optional, and truncated to its size. */
	assert_int_equal(policy_evaluate(doc, &rq, &got, NULL, 0), 0);
	assert_int_equal(got, DENY);
	memset(why, 'x', sizeof(why));
	assert_int_equal(policy_evaluate(doc, &rq, &got, why, sizeof(why)), 0);
	assert_string_equal(why, "denied ");
	memset(why, 'x', sizeof(why));
	assert_int_equal(policy_evaluate(doc, &rq, &got, why, 0), 0);
	assert_int_equal(why[0], 'x');
	free(doc);
}

/* ---- validation ---------------------------------------------------------- */

#define STMT(body) "{'Statement':{" body "}}"
#define OK_STMT(extra)                                                         \
	STMT("'Effect':'Allow','Principal':'*','Action':'kms:*'" extra)
#define COND(c) OK_STMT(",'Condition':" c)

static void validation_errors(void **state)
{
	static const struct {
		const char *doc;    /* single-quoted */
		const char *reason; /* a part of the reason, or "" */
	} cases[] = {
		{ "", "not JSON" },
		{ "not json", "not JSON" },
		{ "{'Statement':", "not JSON" },
		{ "{'Statement':[]} x", "not JSON" },
		{ "{'Statement':[]}{}", "not JSON" },
		{ "/* c */" OK_STMT(""), "not JSON" },
		{ "{'Statement':[" ALLOW_ALL ",]}", "not JSON" },
		{ "[" ALLOW_ALL "]", "not a JSON object" },
		{ "'x'", "not a JSON object" },
		{ "null", "not a JSON object" },
		{ "{}", "no Statement" },
		{ "{'Version':'2012-10-17'}", "no Statement" },
		{ "{'Statement':[]}", "empty" },
		{ "{'Statement':'x'}", "Statement" },
		{ "{'Statement':null}", "Statement" },
		{ "{'Statement':[1]}", "statement 1: not an object" },
		{ "{'Statement':[" ALLOW_ALL ",[]]}",
		  "statement 2: not an object" },
		{ "{'Statement':" ALLOW_ALL ",'Foo':1}", "'Foo'" },
		{ "{'Statement':" ALLOW_ALL ",'statement':1}", "'statement'" },
		{ "{'Statement':" ALLOW_ALL ",'Version':'2013-01-01'}",
		  "Version" },
		{ "{'Statement':" ALLOW_ALL ",'Version':20121017}", "Version" },
		{ "{'Statement':" ALLOW_ALL ",'Id':5}", "Id" },
		{ STMT("'Effect':'Maybe','Principal':'*','Action':'*'"),
		  "Effect" },
		{ STMT("'Effect':'allow','Principal':'*','Action':'*'"),
		  "Effect" },
		{ STMT("'Effect':true,'Principal':'*','Action':'*'"),
		  "Effect" },
		{ STMT("'Effect':['Allow'],'Principal':'*','Action':'*'"),
		  "Effect" },
		{ STMT("'Principal':'*','Action':'*'"), "no Effect" },
		{ STMT("'Effect':'Allow','Action':'*'"), "no Principal" },
		{ STMT("'Effect':'Allow','Principal':'*'"), "no Action" },
		{ STMT("'Effect':'Allow','NotPrincipal':{'AWS':'" ACCT_B
		       "'},'Action':'*'"),
		  "NotPrincipal is not supported" },
		{ OK_STMT(",'Foo':1"), "'Foo'" },
		{ OK_STMT(",'NotAction':'kms:Decrypt'"),
		  "both Action and NotAction" },
		{ OK_STMT(",'Resource':'*','NotResource':'*'"),
		  "both Resource and NotResource" },
		{ OK_STMT(",'Sid':5"), "Sid" },
		/* Action */
		{ STMT("'Effect':'Allow','Principal':'*','Action':5"),
		  "Action" },
		{ STMT("'Effect':'Allow','Principal':'*','Action':[5]"),
		  "Action" },
		{ STMT("'Effect':'Allow','Principal':'*','Action':{}"),
		  "Action" },
		{ STMT("'Effect':'Allow','Principal':'*','Action':null"),
		  "Action" },
		{ STMT("'Effect':'Allow','Principal':'*','Action':[]"),
		  "Action is an empty list" },
		{ STMT("'Effect':'Allow','Principal':'*','Action':['kms:*',"
		       "['kms:*']]"),
		  "Action" },
		{ STMT("'Effect':'Allow','Principal':'*','Action':'Decrypt'"),
		  "service:action" },
		{ STMT("'Effect':'Allow','Principal':'*','Action':''"),
		  "service:action" },
		{ STMT("'Effect':'Allow','Principal':'*','Action':'kms:'"),
		  "service:action" },
		{ STMT("'Effect':'Allow','Principal':'*','Action':'*:Decrypt'"),
		  "service:action" },
		{ STMT("'Effect':'Allow','Principal':'*','NotAction':7"),
		  "NotAction" },
		/* Resource */
		{ OK_STMT(",'Resource':5"), "Resource" },
		{ OK_STMT(",'Resource':[]"), "Resource" },
		{ OK_STMT(",'Resource':'key/1234'"), "ARN" },
		{ OK_STMT(",'NotResource':['*',1]"), "NotResource" },
		/* Principal */
		{ STMT("'Effect':'Allow','Principal':'someone','Action':'*'"),
		  "Principal" },
		{ STMT("'Effect':'Allow','Principal':5,'Action':'*'"),
		  "Principal" },
		{ STMT("'Effect':'Allow','Principal':['*'],'Action':'*'"),
		  "Principal" },
		{ STMT("'Effect':'Allow','Principal':{},'Action':'*'"),
		  "Principal" },
		{ STMT("'Effect':'Allow','Principal':{'AWS':5},'Action':'*'"),
		  "Principal AWS" },
		{ STMT("'Effect':'Allow','Principal':{'AWS':[]},'Action':'*'"),
		  "Principal AWS" },
		{ STMT("'Effect':'Allow','Principal':{'AWS':'12345'},"
		       "'Action':'*'"),
		  "account id" },
		{ STMT("'Effect':'Allow','Principal':{'AWS':"
		       "'arn:aws:iam::*:root'},'Action':'*'"),
		  "account id" },
		{ STMT("'Effect':'Allow','Principal':{'AWS':"
		       "'arn:aws:iam::111111111111:role/*'},'Action':'*'"),
		  "account id" },
		{ STMT("'Effect':'Allow','Principal':{'AWS':"
		       "'arn:aws:s3:::bucket'},'Action':'*'"),
		  "account id" },
		{ STMT("'Effect':'Allow','Principal':{'AWS':"
		       "'arn:aws:iam::111111111111:'},'Action':'*'"),
		  "account id" },
		{ STMT("'Effect':'Allow','Principal':{'Federated':"
		       "'cognito-identity.amazonaws.com'},'Action':'*'"),
		  "principal type" },
		{ STMT("'Effect':'Allow','Principal':{'aws':'*'},'Action':'*'"),
		  "principal type" },
		{ STMT("'Effect':'Allow','Principal':{'Service':''},"
		       "'Action':'*'"),
		  "Service" },
		/* Condition */
		{ COND("'x'"), "Condition" },
		{ COND("[]"), "Condition" },
		{ COND("{'NumericEquals':{'kms:CallerAccount':'1'}}"),
		  "unsupported condition operator 'NumericEquals'" },
		{ COND("{'ForAnyValue:StringEquals':{" VOL ":'x'}}"),
		  "unsupported condition operator" },
		{ COND("{'Null':{" VOL ":'true'}}"),
		  "unsupported condition operator" },
		{ COND("{'StringEqualsIfExistsIfExists':{" VOL ":'x'}}"),
		  "unsupported condition operator" },
		{ COND("{'stringequals':{" VOL ":'x'}}"),
		  "unsupported condition operator" },
		{ COND("{'StringEquals':'x'}"), "StringEquals" },
		{ COND("{'StringEquals':{}}"), "StringEquals" },
		{ COND("{'StringEquals':{'aws:SourceIp':'10.0.0.1'}}"),
		  "unsupported condition key 'aws:SourceIp'" },
		{ COND("{'StringEquals':{'kms:EncryptionContext:':'x'}}"),
		  "unsupported condition key" },
		{ COND("{'StringEquals':{'kms:EncryptionContextKeys':'x'}}"),
		  "unsupported condition key" },
		{ COND("{'StringEquals':{" VOL ":null}}"), "values" },
		{ COND("{'StringEquals':{" VOL ":{}}}"), "values" },
		{ COND("{'StringEquals':{" VOL ":[]}}"), "empty" },
		{ COND("{'StringEquals':{" VOL ":['x',['y']]}}"), "values" },
		{ COND("{'Bool':{'kms:GrantIsForAWSResource':'yes'}}"),
		  "true or false" },
		{ COND("{'Bool':{'kms:GrantIsForAWSResource':1}}"),
		  "true or false" },
		{ COND("{'StringEquals':{" VOL ":NaN}}"), "range" },
		{ COND("{'StringEquals':{" VOL ":1e999}}"), "range" },
		{ COND("{'StringEquals':{" VOL ":99999999999999999999}}"),
		  "range" },
		/* Policy variables would be substituted by IAM. */
		{ "{'Version':'2012-10-17','Statement':{'Effect':'Allow',"
		  "'Principal':'*','Action':'*','Resource':"
		  "'arn:aws:kms:*:${aws:PrincipalAccount}:key/*'}}",
		  "policy variables" },
		{ "{'Version':'2012-10-17','Statement':{'Effect':'Allow',"
		  "'Principal':'*','Action':'*','Condition':{'StringLike':"
		  "{" VOL ":'${aws:username}'}}}}",
		  "policy variables" },
		/* Ambiguous documents. */
		{ STMT("'Effect':'Deny','Effect':'Allow','Principal':'*',"
		       "'Action':'*'"),
		  "duplicate" },
		{ "{'Statement':" ALLOW_ALL ",'Statement':" ALLOW_ALL "}",
		  "duplicate" },
		{ COND("{'StringEquals':{" VOL ":'a'," VOL ":'b'}}"),
		  "duplicate" },
		{ OK_STMT(",'Sid':'a\\u0000b'"), "\\u0000" },
		{ STMT("'Effect':'Allow','Principal':'*','Action':'*',"
		       "'Sid\\u0000':'x'"),
		  "\\u0000" },
		{ "{'Statement':" ALLOW_ALL ",'Id':'\xff'}", "not JSON" },
		{ "{'Statement':[[[[[[[[[[1]]]]]]]]]]}", "not JSON" },
	};
	int failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *doc = dq(cases[i].doc);
		char err[256] = "", why[300] = "";
		struct policy_request rq = DEC;
		enum policy_decision got = POLICY_ALLOW;
		int r = policy_validate(doc, err, sizeof(err));
		int r2 = policy_evaluate(doc, &rq, &got, why, sizeof(why));

		if (r != -EINVAL || !err[0] || !strstr(err, cases[i].reason) ||
		    r2 != -EINVAL || got != IMPLICIT ||
		    strncmp(why, "invalid policy: ", 16) != 0) {
			fprintf(stderr,
				"FAIL case %zu: %s\n  validate %d '%s' (want "
				"-EINVAL, '%s')\n  evaluate %d %s '%s'\n",
				i, doc, r, err, cases[i].reason, r2,
				decision_name(got), why);
			failed++;
		}
		free(doc);
	}
	assert_int_equal(failed, 0);
}

static void validation_accepts(void **state)
{
	static const char *const docs[] = {
		ALLOW_ALL, /* not wrapped: see below */
		OK_STMT(""),
		"{'Statement':[" ALLOW_ALL "]}",
		"{'Version':'2008-10-17','Statement':" ALLOW_ALL "}",
		"{'Version':'2012-10-17','Id':'x','Statement':" ALLOW_ALL "}",
		" \n{'Statement':" ALLOW_ALL "}\n ",
		OK_STMT(",'Sid':'','Resource':['*','" KEY_ARN "']"),
		OK_STMT(",'NotResource':'" KEY_ARN "'"),
		STMT("'Effect':'Deny','Principal':{'AWS':['*','" ACCT_B
		     "','" B_ROLE "','" B_SESSION "'],'Service':["
		     "'rds.amazonaws.com']},'NotAction':['kms:*','*','s3:Get*']"),
		COND("{}"),
		COND("{'StringEquals':{" VOL ":['a',1,2.5,true,false]}}"),
		COND("{'BoolIfExists':{'kms:GrantIsForAWSResource':false}}"),
		/* Without Version 2012-10-17, ${ is literal text. */
		COND("{'StringLike':{" VOL ":'${x}'}}"),
		/* Keys differing only in case: both conditions apply. */
		COND("{'StringEquals':{" VOL ":'a',"
		     "'kms:EncryptionContext:cmkfs:Volume':'b'}}"),
		/* A colon inside strings is not a member. */
		OK_STMT(",'Sid':'a:b:{c}:\\\"d:'"),
	};
	int failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		char *doc = dq(docs[i]);
		char *wrapped = i == 0 ? printf_alloc("{\"Statement\":%s}", doc)
				       : strdup(doc);
		char err[256] = "";

		assert_non_null(wrapped);
		if (policy_validate(wrapped, err, sizeof(err)) != 0) {
			fprintf(stderr, "FAIL case %zu: %s\n  %s\n", i, wrapped,
				err);
			failed++;
		}
		free(wrapped);
		free(doc);
	}
	assert_int_equal(failed, 0);
}

/* The reason is always NUL-terminated, whatever the buffer. */
static void validation_error_buffers(void **state)
{
	char err[10];

	(void)state;
	assert_int_equal(policy_validate("[]", NULL, 0), -EINVAL);
	memset(err, 'x', sizeof(err));
	assert_int_equal(policy_validate("[]", err, 0), -EINVAL);
	assert_int_equal(err[0], 'x');
	assert_int_equal(policy_validate("[]", err, 1), -EINVAL);
	assert_string_equal(err, "");
	assert_int_equal(policy_validate("[]", err, sizeof(err)), -EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_int_equal(
		policy_validate("{\"Statement\":[1]}", err, sizeof(err)),
		-EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_int_equal(policy_validate(NULL, err, sizeof(err)), -EINVAL);
	assert_true(err[0] != 0);
}

/* ---- limits -------------------------------------------------------------- */

/* A valid policy of exactly size bytes, padded with spaces. */
static char *policy_of_size(size_t size)
{
	const char *body = "{\"Statement\":{\"Effect\":\"Allow\","
			   "\"Principal\":\"*\",\"Action\":\"kms:*\"}}";
	size_t n = strlen(body);
	char *doc = malloc(size + 1);

	assert_non_null(doc);
	assert_true(size >= n);
	memset(doc, ' ', size);
	memcpy(doc + size - n, body, n);
	doc[size] = 0;
	return doc;
}

/* A policy of n statements, Deny of kms:Decrypt the last one. */
static char *policy_of_statements(size_t n)
{
	const char *allow = "{\"Effect\":\"Allow\",\"Principal\":\"*\","
			    "\"Action\":\"kms:Encrypt\"},";
	const char *deny = "{\"Effect\":\"Deny\",\"Principal\":\"*\","
			   "\"Action\":\"kms:Decrypt\"}]}";
	char *doc = malloc(16 + n * strlen(allow) + strlen(deny));
	char *p = doc;

	assert_non_null(doc);
	p += sprintf(p, "{\"Statement\":[");
	for (size_t i = 0; i + 1 < n; i++)
		p += sprintf(p, "%s", allow);
	sprintf(p, "%s", deny);
	return doc;
}

/* A policy whose Action lists n actions, kms:Decrypt the last. */
static char *policy_of_actions(size_t n)
{
	char *doc = malloc(80 + n * 16);
	char *p = doc;

	assert_non_null(doc);
	p += sprintf(p, "{\"Statement\":{\"Effect\":\"Allow\","
			"\"Principal\":\"*\",\"Action\":[");
	for (size_t i = 0; i + 1 < n; i++)
		p += sprintf(p, "\"kms:X%zu\",", i);
	sprintf(p, "\"kms:Decrypt\"]}}");
	return doc;
}

static void limits(void **state)
{
	struct policy_request rq = DEC;
	enum policy_decision got;
	char err[256];
	char *doc;

	(void)state;
	doc = policy_of_size(POLICY_MAX_BYTES);
	assert_int_equal(policy_validate(doc, err, sizeof(err)), 0);
	free(doc);
	doc = policy_of_size(POLICY_MAX_BYTES + 1);
	err[0] = 0;
	assert_int_equal(policy_validate(doc, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "larger than"));
	free(doc);

	/* Statement count: the Deny at the end must be seen. */
	doc = policy_of_statements(POLICY_MAX_STATEMENTS);
	assert_true(strlen(doc) <= POLICY_MAX_BYTES);
	assert_int_equal(policy_evaluate(doc, &rq, &got, NULL, 0), 0);
	assert_int_equal(got, DENY);
	free(doc);
	doc = policy_of_statements(POLICY_MAX_STATEMENTS + 1);
	assert_true(strlen(doc) <= POLICY_MAX_BYTES);
	err[0] = 0;
	assert_int_equal(policy_validate(doc, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "statements"));
	free(doc);

	/* Values per list. */
	doc = policy_of_actions(1000);
	assert_true(strlen(doc) <= POLICY_MAX_BYTES);
	assert_int_equal(policy_evaluate(doc, &rq, &got, NULL, 0), 0);
	assert_int_equal(got, ALLOW);
	free(doc);
	doc = policy_of_actions(1001);
	assert_true(strlen(doc) <= POLICY_MAX_BYTES);
	err[0] = 0;
	assert_int_equal(policy_validate(doc, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "1000"));
	free(doc);
}

/* ---- wildcards ----------------------------------------------------------- */

/* The caller's value comes from the request: patterns with many stars
 * against a long text must stay polynomial. */
static void wildcard_backtracking_is_bounded(void **state)
{
	enum { STARS = 100, TEXT = 20000 };
	char pattern[2 * STARS + 2], *text = malloc(TEXT + 1), *doc;
	const size_t end = 2 * (size_t)STARS;
	struct policy_request rq = DEC;
	enum policy_decision got;
	struct timespec t0, t1;
	double secs;

	(void)state;
	assert_non_null(text);
	for (size_t i = 0; i < STARS; i++) {
		pattern[2 * i] = '*';
		pattern[2 * i + 1] = 'a';
	}
	pattern[end] = 'b';
	pattern[end + 1] = 0;
	memset(text, 'a', TEXT);
	text[TEXT] = 0;
	rq.via_service = text;
	doc = printf_alloc("{\"Statement\":{\"Effect\":\"Allow\","
			   "\"Principal\":\"*\",\"Action\":\"kms:*\","
			   "\"Condition\":{\"StringLike\":{\"kms:ViaService\":"
			   "\"%s\"}}}}",
			   pattern);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(policy_evaluate(doc, &rq, &got, NULL, 0), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(got, IMPLICIT);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* 100 * 20000 steps: milliseconds; exponential would not end. */
	if (secs > 5.0)
		fail_msg("took %.1f s", secs);
	/* And the same pattern does match once the text ends in b. */
	text[TEXT - 1] = 'b';
	assert_int_equal(policy_evaluate(doc, &rq, &got, NULL, 0), 0);
	assert_int_equal(got, ALLOW);
	free(doc);
	free(text);
}

/* '?' is one character, not one byte. */
static void wildcard_utf8(void **state)
{
	static const struct {
		const char *pattern, *text;
		enum policy_decision want;
	} cases[] = {
		{ "?", "\xc3\xa9", ALLOW },	     /* é */
		{ "?", "\xe2\x82\xac", ALLOW },	     /* € */
		{ "??", "\xe2\x82\xac", IMPLICIT },  /* one char only */
		{ "*??", "\xe2\x82\xac", IMPLICIT }, /* stars too */
		{ "*?", "\xe2\x82\xac", ALLOW },
		/* a star that backtracks by bytes would let '?' take part of
		 * a character and match these */
		{ "*???x*", "\xe2\x82\xacxx\xe2\x82\xac", IMPLICIT },
		{ "*??x?", "\xe2\x82\xacx\xe2\x82\xac", IMPLICIT },
		{ "*??x?", "a\xe2\x82\xacx\xe2\x82\xac", ALLOW },
		{ "a?c",
		  "a\xf0\x9f\x94\x91"
		  "c",
		  ALLOW }, /* 4 bytes */
		{ "a*c",
		  "a\xf0\x9f\x94\x91"
		  "c",
		  ALLOW },
		{ "\xc3\xa9*", "\xc3\xa9t\xc3\xa9", ALLOW },
		{ "?", "", IMPLICIT },
		{ "*", "", ALLOW },
		{ "", "", ALLOW },
		{ "", "x", IMPLICIT },
		{ "**", "x", ALLOW },
		{ "a*b*c", "aXbYbZc", ALLOW },
		{ "a*b*c", "aXbYbZ", IMPLICIT },
	};
	int failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *doc = printf_alloc(
			"{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":"
			"\"*\",\"Action\":\"kms:*\",\"Condition\":{"
			"\"StringLike\":{\"kms:ViaService\":\"%s\"}}}}",
			cases[i].pattern);
		struct policy_request rq = DEC_VIA(cases[i].text);
		char name[64];

		snprintf(name, sizeof(name), "utf-8 case %zu", i);
		failed += check_one(name, doc, &rq, cases[i].want);
		free(doc);
	}
	assert_int_equal(failed, 0);
}

/* ---- requests ------------------------------------------------------------ */

static void bad_requests(void **state)
{
	char *doc = policy_default(ACCT_A);
	struct policy_request rq = REQ(A_ROLE, ACCT_A, NULL);
	struct policy_request ok = DEC;
	enum policy_decision got = POLICY_ALLOW;
	char why[128] = "";

	(void)state;
	assert_non_null(doc);
	assert_int_equal(policy_evaluate(doc, NULL, &got, why, sizeof(why)),
			 -EINVAL);
	assert_int_equal(got, IMPLICIT);
	assert_true(why[0] != 0);
	got = POLICY_ALLOW;
	assert_int_equal(policy_evaluate(doc, &rq, &got, NULL, 0), -EINVAL);
	assert_int_equal(got, IMPLICIT);
	assert_int_equal(policy_evaluate(doc, &ok, NULL, NULL, 0), -EINVAL);
	ok.n_context = 1; /* with context == NULL */
	got = POLICY_ALLOW;
	assert_int_equal(policy_evaluate(doc, &ok, &got, NULL, 0), -EINVAL);
	assert_int_equal(got, IMPLICIT);
	got = POLICY_ALLOW;
	assert_int_equal(policy_evaluate(NULL, &rq, &got, NULL, 0), -EINVAL);
	assert_int_equal(got, IMPLICIT);
	free(doc);
}

/* Reentrant: threads evaluating at once get the same answers. */
struct thread_arg {
	const char *doc;
	int mismatches;
};

static void *evaluate_many(void *p)
{
	struct thread_arg *a = p;
	const struct policy_request deny = DEC_AS(B_ROLE, ACCT_B);
	const struct policy_request allow = DEC_AS(C_ROLE, ACCT_C);

	for (int i = 0; i < 500; i++) {
		enum policy_decision d1, d2;

		if (policy_evaluate(a->doc, &deny, &d1, NULL, 0) ||
		    policy_evaluate(a->doc, &allow, &d2, NULL, 0) ||
		    d1 != DENY || d2 != ALLOW)
			a->mismatches++;
	}
	return NULL;
}

static void concurrent_evaluation(void **state)
{
	char *doc = dq(DENY_THEN_ALLOW);
	pthread_t t[4];
	struct thread_arg args[4];

	(void)state;
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ .doc = doc };
		assert_int_equal(
			pthread_create(&t[i], NULL, evaluate_many, &args[i]),
			0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(args[i].mismatches, 0);
	}
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(default_policy_text),
		cmocka_unit_test(default_policy_decisions),
		cmocka_unit_test(principals),
		cmocka_unit_test(deny_beats_allow),
		cmocka_unit_test(actions),
		cmocka_unit_test(resources),
		cmocka_unit_test(conditions),
		cmocka_unit_test(explanations),
		cmocka_unit_test(explanation_buffers),
		cmocka_unit_test(validation_errors),
		cmocka_unit_test(validation_accepts),
		cmocka_unit_test(validation_error_buffers),
		cmocka_unit_test(limits),
		cmocka_unit_test(wildcard_backtracking_is_bounded),
		cmocka_unit_test(wildcard_utf8),
		cmocka_unit_test(bad_requests),
		cmocka_unit_test(concurrent_evaluation),
	};

	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
