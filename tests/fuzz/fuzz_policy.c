/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_policy.c — libFuzzer target for kms/kmsd/policy.c: the input is a key
 * policy document, validated and then evaluated for a few fixed requests
 * (a same-account role, a cross-account role session with an encryption
 * context, an anonymous caller).  Must never crash, leak or hang.
 *
 * Besides crashes it checks two invariants: policy_evaluate() succeeds
 * exactly when policy_validate() does, and an invalid policy decides
 * IMPLICIT_DENY.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct policy_kv context[] = {
	{ "cmkfs:volume", "0b5e3c1e-7a7c-4c2e-9a43-1d2c3b4a5f60" },
	{ "other", "x" },
};

static const struct policy_request requests[] = {
	{
		.principal_arn = "arn:aws:iam::111111111111:role/db-host",
		.account = "111111111111",
		.action = "kms:Decrypt",
		.resource = "arn:aws:kms:eu-west-1:111111111111:key/"
			    "1234abcd-12ab-34cd-56ef-1234567890ab",
	},
	{
		.principal_arn =
			"arn:aws:sts::222222222222:assumed-role/db-host/i-0abc",
		.account = "222222222222",
		.action = "kms:GenerateDataKeyWithoutPlaintext",
		.resource = "arn:aws:kms:eu-west-1:111111111111:key/"
			    "1234abcd-12ab-34cd-56ef-1234567890ab",
		.context = context,
		.n_context = 2,
		.grant_is_for_aws_resource = true,
		.via_service = "rds.eu-west-1.amazonaws.com",
	},
	{
		.action = "kms:CreateGrant",
	},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], why[256];
	char *doc;
	int valid;

	doc = malloc(size + 1);
	if (!doc)
		return 0;
	memcpy(doc, data, size);
	doc[size] = 0;

	valid = policy_validate(doc, err, sizeof(err));
	if (valid != 0 && (valid != -EINVAL || !err[0]))
		abort();
	for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		enum policy_decision d = POLICY_ALLOW;
		int r = policy_evaluate(doc, &requests[i], &d, why,
					sizeof(why));

		if (r != valid || !why[0] || (r && d != POLICY_IMPLICIT_DENY) ||
		    (unsigned)d > POLICY_EXPLICIT_DENY)
			abort();
	}
	free(doc);
	return 0;
}
