/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_request.c — libFuzzer target for cmkfs-kmsd's request decoding: the
 * JSON body of every action, through the same parser limits and the action
 * handlers' field validation, against a real (temporary) key store holding
 * one key, one alias and one grant.
 *
 * The body goes through kmsd_json_take_string first, as in the server.
 * Input: first byte picks the action, the rest is the request body.  Any
 * outcome is fine except a crash, a leak or a sanitizer report.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "crypto.h"
#include "kmsd.h"

static const char *const actions[] = {
	"CreateKey",
	"DescribeKey",
	"ListKeys",
	"CreateAlias",
	"ListAliases",
	"DeleteAlias",
	"Encrypt",
	"Decrypt",
	"ReEncrypt",
	"GenerateDataKey",
	"GenerateDataKeyWithoutPlaintext",
	"GenerateRandom",
	"EnableKey",
	"DisableKey",
	"ScheduleKeyDeletion",
	"CancelKeyDeletion",
	"EnableKeyRotation",
	"DisableKeyRotation",
	"GetKeyRotationStatus",
	"RotateKeyOnDemand",
	"PutKeyPolicy",
	"GetKeyPolicy",
	"CreateGrant",
	"ListGrants",
	"RevokeGrant",
	"RetireGrant",
	"ListRetirableGrants",
	"TagResource",
	"UntagResource",
	"ListResourceTags",
	"NoSuchAction",
	"UpdateAlias",
};

static char dir[256];
static struct state *st;
static struct principal caller = {
	.arn = "arn:aws:iam::111111111111:root",
	.account = "111111111111",
};
static unsigned runs;

static void run(const char *action, const char *text)
{
	struct call c = { 0 };
	json_object *req, *resp = NULL;
	char *secret = NULL, *taken = NULL, *body = strdup(text);
	size_t taken_len;
	int r;

	if (!body)
		return;
	/* as the front end does: Plaintext out of the body first */
	r = kmsd_json_take_string(body, strlen(body), "Plaintext", &taken,
				  &taken_len);
	if (r < 0) {
		free(body);
		return;
	}
	if (r == 1) {
		c.taken_name = "Plaintext";
		c.taken = taken;
		c.taken_len = taken_len;
	}
	req = json_tokener_parse(body);
	free(body);
	if (!json_object_is_type(req, json_type_object)) {
		json_object_put(req);
		secmem_free(taken);
		return;
	}
	c.st = st;
	c.caller = &caller;
	c.region = "us-east-1";
	c.request_id = "fuzz";
	c.now = (int64_t)time(NULL);
	state_lock(st);
	kmsd_action_run(&c, action, req, &resp, &secret);
	state_unlock(st);
	json_object_put(resp);
	json_object_put(req);
	secmem_free(secret);
	secmem_free(taken);
}

/* A fresh store with a key, an alias "alias/fuzz" and a grant, so that
 * inputs naming them reach deep into the handlers. */
static void reset(void)
{
	char cmd[300], err[256];

	state_close(st);
	st = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0 ||
	    state_init(dir, "111111111111", "us-east-1", "127.0.0.1:0", err,
		       sizeof(err)) ||
	    state_open(dir, &st, err, sizeof(err))) {
		fprintf(stderr, "fuzz_request: cannot make a state in %s\n",
			dir);
		abort();
	}
	run("CreateKey", "{\"Description\":\"fuzz\"}");
	{
		json_object *k = json_object_array_get_idx(state_keys(st), 0);
		json_object *id = NULL;
		char body[256];

		json_object_object_get_ex(k, "KeyId", &id);
		snprintf(
			body, sizeof(body),
			"{\"AliasName\":\"alias/fuzz\",\"TargetKeyId\":\"%s\"}",
			json_object_get_string(id));
		run("CreateAlias", body);
		run("CreateGrant",
		    "{\"KeyId\":\"alias/fuzz\",\"GranteePrincipal\":"
		    "\"arn:aws:iam::222222222222:role/x\",\"Operations\":[\"Decrypt\"]}");
	}
}

static void cleanup(void)
{
	char cmd[300];

	state_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_request: could not remove %s\n", dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body;

	if (size < 1 || size > 65536)
		return 0;
	/* State on tmpfs where possible: every mutation is fsynced. */
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "%s/cmkfs-fuzz-request.%d",
			 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
			 (int)getpid());
		atexit(cleanup);
	}
	/* Keep the store small: mutations accumulate. */
	if (!st || ++runs % 500 == 0)
		reset();
	body = malloc(size);
	if (!body)
		return 0;
	memcpy(body, data + 1, size - 1);
	body[size - 1] = 0;
	run(actions[data[0] % (sizeof(actions) / sizeof(actions[0]))], body);
	free(body);
	return 0;
}
