/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_creds.c — the AWS credential chain (kms/creds.c) without a network:
 * the environment, the shared credentials and config files and their
 * profiles, precedence, refusals (half-set keys, missing or unsupported
 * profiles, oversized files), profile settings, the cache and its copies.
 *
 * Each test gets a private HOME so the real ~/.aws is never read, starts from
 * an environment without AWS_* variables, and has instance metadata disabled,
 * so nothing reaches the network.  Container and instance metadata over HTTP
 * are tested against a fake in tests/integration/kms-creds.sh.
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "creds.h"
#include "crypto.h"

/* ---- fixture ------------------------------------------------------------ */

static const char *const AWS_VARS[] = {
	"AWS_ACCESS_KEY_ID",
	"AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN",
	"AWS_PROFILE",
	"AWS_SHARED_CREDENTIALS_FILE",
	"AWS_CONFIG_FILE",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	"AWS_EC2_METADATA_SERVICE_ENDPOINT",
	"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
	"AWS_EC2_METADATA_DISABLED",
};

/* The home directory of the running test. */
static char home[512];

static void clear_aws_env(void)
{
	for (size_t i = 0; i < sizeof(AWS_VARS) / sizeof(AWS_VARS[0]); i++)
		unsetenv(AWS_VARS[i]);
}

static int setup(void **state)
{
	const char *base = getenv("TEST_TMPDIR");
	char aws[600];

	(void)state;
	snprintf(home, sizeof(home), "%s/creds.XXXXXX", base ? base : "/tmp");
	assert_non_null(mkdtemp(home));
	snprintf(aws, sizeof(aws), "%s/.aws", home);
	assert_int_equal(mkdir(aws, 0700), 0);
	clear_aws_env();
	setenv("HOME", home, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	clear_aws_env();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Write ~/.aws/NAME. */
static void aws_file(const char *name, const char *text)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/.aws/%s", home, name);
	write_file(path, text);
}

static struct creds_provider *provider(const char *profile)
{
	struct creds_options opt = { .profile = profile };
	struct creds_provider *p;

	assert_int_equal(creds_provider_new(&p, &opt), 0);
	return p;
}

/* creds_get on a new provider; *c is NULL on failure, err the message. */
static int get(const char *profile, struct kms_creds **c, char *err, size_t len)
{
	struct creds_provider *p = provider(profile);
	int r;

	err[0] = 0;
	r = creds_get(p, c, err, len);
	if (r)
		assert_null(*c);
	creds_provider_free(p);
	return r;
}

/* Expect success with these keys. */
static struct kms_creds *expect_keys(const char *profile, const char *id,
				     const char *secret, const char *token)
{
	struct kms_creds *c;
	char err[1024];
	int r = get(profile, &c, err, sizeof(err));

	if (r) {
		fprintf(stderr, "creds_get: %d: %s\n", r, err);
		fail();
	}
	assert_string_equal(c->access_key_id, id);
	assert_string_equal(c->secret, secret);
	assert_string_equal(c->session_token, token);
	assert_int_equal(c->expiration, 0);
	return c;
}

/* Expect failure r with a message that contains want (and, when not NULL,
 * not the secret never_shown). */
static void expect_error(const char *profile, int r, const char *want,
			 const char *never_shown)
{
	struct kms_creds *c;
	char err[1024];
	int got = get(profile, &c, err, sizeof(err));

	if (got != r || !strstr(err, want)) {
		fprintf(stderr, "got %d \"%s\"\nwant %d \"...%s...\"\n", got,
			err, r, want);
		fail();
	}
	if (never_shown && strstr(err, never_shown)) {
		fprintf(stderr, "message shows a secret: %s\n", err);
		fail();
	}
}

/* ---- the environment ---------------------------------------------------- */

static void env_credentials(void **state)
{
	struct kms_creds *c;

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT0001", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envSecret/0123456789", 1);
	c = expect_keys(NULL, "AKIAENVIRONMENT0001", "envSecret/0123456789",
			"");
	assert_string_equal(c->source, "environment");
	creds_release(c);

	setenv("AWS_SESSION_TOKEN", "envSessionToken==", 1);
	c = expect_keys(NULL, "AKIAENVIRONMENT0001", "envSecret/0123456789",
			"envSessionToken==");
	creds_release(c);

	/* An empty session token is none. */
	setenv("AWS_SESSION_TOKEN", "", 1);
	c = expect_keys(NULL, "AKIAENVIRONMENT0001", "envSecret/0123456789",
			"");
	creds_release(c);
}

static void env_half_set_names_the_missing_one(void **state)
{
	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT0001", 1);
	expect_error(NULL, -EINVAL, "AWS_SECRET_ACCESS_KEY is not", NULL);
	unsetenv("AWS_ACCESS_KEY_ID");
	setenv("AWS_SECRET_ACCESS_KEY", "halfSetSecretValue", 1);
	expect_error(NULL, -EINVAL, "AWS_ACCESS_KEY_ID is not",
		     "halfSetSecretValue");
	/* An empty variable counts as unset. */
	setenv("AWS_ACCESS_KEY_ID", "", 1);
	expect_error(NULL, -EINVAL, "AWS_ACCESS_KEY_ID is not",
		     "halfSetSecretValue");
}

static void env_refuses_bad_values(void **state)
{
	char longer[300];

	(void)state;
	memset(longer, 'k', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = 0;
	setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT0001", 1);
	setenv("AWS_SECRET_ACCESS_KEY", longer, 1);
	expect_error(NULL, -EINVAL,
		     "AWS_SECRET_ACCESS_KEY is longer than 256 characters",
		     longer);
	/* A line break would inject a header into a signed request. */
	setenv("AWS_SECRET_ACCESS_KEY", "secret\r\nX-Evil: 1", 1);
	expect_error(NULL, -EINVAL, "AWS_SECRET_ACCESS_KEY contains", "Evil");
}

static void env_wins_over_files(void **state)
{
	struct kms_creds *c;

	(void)state;
	aws_file("credentials", "[default]\n"
				"aws_access_key_id = AKIAFILE\n"
				"aws_secret_access_key = fileSecret\n");
	setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT0001", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envSecret", 1);
	c = expect_keys(NULL, "AKIAENVIRONMENT0001", "envSecret", "");
	creds_release(c);
	/* ... even over an explicitly chosen profile: the chain's order. */
	setenv("AWS_PROFILE", "default", 1);
	c = expect_keys(NULL, "AKIAENVIRONMENT0001", "envSecret", "");
	creds_release(c);
}

/* ---- shared files ------------------------------------------------------- */

static void credentials_file_default_profile(void **state)
{
	struct kms_creds *c;

	(void)state;
	aws_file("credentials",
		 "# written by hand\n"
		 "; another comment style\n"
		 "[other]\n"
		 "aws_access_key_id=AKIAOTHER\n"
		 "aws_secret_access_key=otherSecret\n"
		 "\n"
		 "  [ default ]   # the one we want\n"
		 "aws_access_key_id\t=   AKIADEFAULT0001   \n"
		 "aws_secret_access_key =defaultSecret/xyz+abc ; trailing\r\n"
		 "   # an indented comment\n"
		 "aws_session_token = defaultToken\n"
		 "\n"
		 "[third]\n"
		 "aws_access_key_id = AKIATHIRD\n");
	c = expect_keys(NULL, "AKIADEFAULT0001", "defaultSecret/xyz+abc",
			"defaultToken");
	assert_string_equal(c->source, "profile default (~/.aws/credentials)");
	creds_release(c);
	c = expect_keys("other", "AKIAOTHER", "otherSecret", "");
	assert_string_equal(c->source, "profile other (~/.aws/credentials)");
	creds_release(c);
}

static void credentials_file_beats_config_file(void **state)
{
	struct kms_creds *c;

	(void)state;
	aws_file("credentials", "[dev]\n"
				"aws_access_key_id = AKIACREDFILE\n"
				"aws_secret_access_key = credFileSecret\n");
	aws_file("config", "[profile dev]\n"
			   "region = eu-west-1\n"
			   "aws_access_key_id = AKIACONFIGFILE\n"
			   "aws_secret_access_key = configFileSecret\n"
			   "aws_session_token = configFileToken\n");
	/* As a set: no token from the config file joins the pair. */
	c = expect_keys("dev", "AKIACREDFILE", "credFileSecret", "");
	creds_release(c);
	/* Without the credentials file, the config file's keys serve. */
	aws_file("credentials", "");
	c = expect_keys("dev", "AKIACONFIGFILE", "configFileSecret",
			"configFileToken");
	assert_string_equal(c->source, "profile dev (~/.aws/config)");
	creds_release(c);
}

static void config_file_sections(void **state)
{
	struct kms_creds *c;

	(void)state;
	aws_file("config", "[default]\n"
			   "aws_access_key_id = AKIACONFIGDEFAULT\n"
			   "aws_secret_access_key = configDefaultSecret\n"
			   "[profile   dev ]\n"
			   "aws_access_key_id = AKIACONFIGDEV\n"
			   "aws_secret_access_key = configDevSecret\n"
			   "[bare]\n"
			   "aws_access_key_id = AKIANOTAPROFILE\n"
			   "aws_secret_access_key = notAProfileSecret\n"
			   "[profilex]\n"
			   "aws_access_key_id = AKIANOTAPROFILE\n"
			   "aws_secret_access_key = notAProfileSecret\n");
	c = expect_keys(NULL, "AKIACONFIGDEFAULT", "configDefaultSecret", "");
	creds_release(c);
	c = expect_keys("dev", "AKIACONFIGDEV", "configDevSecret", "");
	creds_release(c);
	/* "[bare]" is not a profile in the config file, "[profilex]" not
	 * "[profile x]". */
	expect_error("bare", -EINVAL, "profile 'bare' not found", NULL);
	expect_error("x", -EINVAL, "profile 'x' not found", NULL);
	/* "[profile default]" names the default profile too. */
	aws_file("config", "[profile default]\n"
			   "aws_access_key_id = AKIAPROFILEDEFAULT\n"
			   "aws_secret_access_key = profileDefaultSecret\n");
	c = expect_keys(NULL, "AKIAPROFILEDEFAULT", "profileDefaultSecret", "");
	creds_release(c);
}

static void nested_sections_and_unknown_keys_are_ignored(void **state)
{
	struct kms_creds *c;

	(void)state;
	aws_file("config", "[default]\n"
			   "region = us-east-1\n"
			   "s3 =\n"
			   "  aws_access_key_id = AKIANESTED\n"
			   "  max_concurrent_requests = 20\n"
			   "aws_access_key_id = AKIATOPLEVEL\n"
			   "cli_pager =\n"
			   "output = json\n"
			   "aws_secret_access_key = topLevelSecret\n"
			   "[sso-session corp]\n"
			   "sso_start_url = https://example.awsapps.com/start\n"
			   "[services local]\n"
			   "kms =\n"
			   "  endpoint_url = http://127.0.0.1:7090\n");
	c = expect_keys(NULL, "AKIATOPLEVEL", "topLevelSecret", "");
	creds_release(c);
}

static void aws_profile_and_explicit_profile(void **state)
{
	struct creds_provider *p;
	struct kms_creds *c;

	(void)state;
	aws_file("credentials", "[default]\n"
				"aws_access_key_id = AKIADEFAULT\n"
				"aws_secret_access_key = defaultSecret\n"
				"[a]\n"
				"aws_access_key_id = AKIAPROFILEA\n"
				"aws_secret_access_key = secretA\n"
				"[b]\n"
				"aws_access_key_id = AKIAPROFILEB\n"
				"aws_secret_access_key = secretB\n");
	p = provider(NULL);
	assert_string_equal(creds_profile_name(p), "default");
	creds_provider_free(p);

	setenv("AWS_PROFILE", "a", 1);
	p = provider(NULL);
	assert_string_equal(creds_profile_name(p), "a");
	creds_provider_free(p);
	c = expect_keys(NULL, "AKIAPROFILEA", "secretA", "");
	creds_release(c);

	/* The option beats AWS_PROFILE. */
	p = provider("b");
	assert_string_equal(creds_profile_name(p), "b");
	creds_provider_free(p);
	c = expect_keys("b", "AKIAPROFILEB", "secretB", "");
	creds_release(c);
}

static void missing_selected_profile_is_an_error(void **state)
{
	(void)state;
	aws_file("credentials", "[default]\n"
				"aws_access_key_id = AKIADEFAULT\n"
				"aws_secret_access_key = defaultSecret\n");
	expect_error("nope", -EINVAL,
		     "profile 'nope' not found in ~/.aws/credentials or "
		     "~/.aws/config",
		     NULL);
	setenv("AWS_PROFILE", "gone", 1);
	expect_error(NULL, -EINVAL, "profile 'gone' not found", NULL);
	/* A selected profile without keys is an error too, not a reason to
	 * fall through to another identity. */
	aws_file("config", "[profile regiononly]\nregion = eu-west-1\n");
	expect_error("regiononly", -EINVAL,
		     "profile 'regiononly' (~/.aws/config) has no "
		     "aws_access_key_id",
		     NULL);
}

static void half_set_profile_is_an_error(void **state)
{
	(void)state;
	aws_file("credentials", "[default]\n"
				"aws_access_key_id = AKIADEFAULT\n"
				"[other]\n"
				"aws_secret_access_key = lonelySecret\n");
	expect_error(NULL, -EINVAL,
		     "profile 'default' in ~/.aws/credentials has "
		     "aws_access_key_id but no aws_secret_access_key",
		     NULL);
	expect_error("other", -EINVAL,
		     "has aws_secret_access_key but no aws_access_key_id",
		     "lonelySecret");
}

static void unsupported_profiles_are_refused_by_name(void **state)
{
	static const struct {
		const char *setting;
		const char *want;
	} cases[] = {
		{ "role_arn = arn:aws:iam::111111111111:role/admin\n",
		  "uses role_arn" },
		{ "source_profile = default\n", "uses source_profile" },
		{ "credential_process = /usr/bin/get-creds\n",
		  "uses credential_process" },
		{ "sso_start_url = https://example.awsapps.com/start\n",
		  "uses sso_start_url" },
		{ "sso_session = corp\n", "uses sso_session" },
		{ "web_identity_token_file = /var/run/token\n",
		  "uses web_identity_token_file" },
	};
	char text[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "[profile admin]\n%s",
			 cases[i].setting);
		aws_file("config", text);
		expect_error("admin", -EINVAL, cases[i].want, NULL);
		expect_error("admin", -EINVAL,
			     "profile 'admin' in ~/.aws/config", NULL);
	}
	/* Static keys beside a role would be another identity than the
	 * SDKs': refused even for the implicit default profile. */
	aws_file("credentials",
		 "[default]\n"
		 "aws_access_key_id = AKIADEFAULT\n"
		 "aws_secret_access_key = defaultSecret\n"
		 "role_arn = arn:aws:iam::111111111111:role/x\n");
	expect_error(NULL, -EINVAL, "uses role_arn, which cmkfs does not",
		     "defaultSecret");
}

static void implicit_default_falls_through_to_enoent(void **state)
{
	(void)state;
	/* No files at all. */
	expect_error(NULL, -ENOENT,
		     "no AWS credentials: not in the environment, no profile "
		     "'default' in ~/.aws/credentials or ~/.aws/config, no "
		     "container credentials, instance metadata disabled",
		     NULL);
	/* Other profiles only. */
	aws_file("credentials", "[other]\n"
				"aws_access_key_id = AKIAOTHER\n"
				"aws_secret_access_key = otherSecret\n");
	expect_error(NULL, -ENOENT, "no profile 'default'", NULL);
	/* A default profile of an unsupported kind: skipped, and said so. */
	aws_file("config", "[default]\n"
			   "region = eu-west-1\n"
			   "role_arn = arn:aws:iam::111111111111:role/x\n"
			   "credential_source = Ec2InstanceMetadata\n");
	expect_error(NULL, -ENOENT,
		     "profile 'default' in ~/.aws/config uses role_arn (not "
		     "supported)",
		     NULL);
	/* A default profile with settings but no keys. */
	aws_file("config", "[default]\nregion = eu-west-1\n");
	expect_error(NULL, -ENOENT, "instance metadata disabled", NULL);
	/* Disabled is case-insensitive. */
	setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
	expect_error(NULL, -ENOENT, "instance metadata disabled", NULL);
}

static void file_locations_from_the_environment(void **state)
{
	char cpath[600], kpath[600], want[700];
	struct kms_creds *c;

	(void)state;
	snprintf(cpath, sizeof(cpath), "%s/my-credentials", home);
	snprintf(kpath, sizeof(kpath), "%s/my-config", home);
	write_file(cpath, "[default]\n"
			  "aws_access_key_id = AKIAELSEWHERE\n"
			  "aws_secret_access_key = elsewhereSecret\n");
	write_file(kpath, "[profile k]\n"
			  "aws_access_key_id = AKIAELSEWHEREK\n"
			  "aws_secret_access_key = elsewhereSecretK\n");
	aws_file("credentials", "[default]\n"
				"aws_access_key_id = AKIANOTTHISONE\n"
				"aws_secret_access_key = notThisSecret\n");
	setenv("AWS_SHARED_CREDENTIALS_FILE", cpath, 1);
	setenv("AWS_CONFIG_FILE", kpath, 1);
	c = expect_keys(NULL, "AKIAELSEWHERE", "elsewhereSecret", "");
	snprintf(want, sizeof(want), "profile default (%s)", cpath);
	assert_string_equal(c->source, want);
	creds_release(c);
	c = expect_keys("k", "AKIAELSEWHEREK", "elsewhereSecretK", "");
	creds_release(c);
	/* "~/" is the home directory. */
	setenv("AWS_SHARED_CREDENTIALS_FILE", "~/my-credentials", 1);
	c = expect_keys(NULL, "AKIAELSEWHERE", "elsewhereSecret", "");
	assert_string_equal(c->source, "profile default (~/my-credentials)");
	creds_release(c);
	/* The error names the files as configured. */
	snprintf(want, sizeof(want), "in ~/my-credentials or %s", kpath);
	expect_error("missing", -EINVAL, want, NULL);
}

static void oversized_files_and_lines_are_refused(void **state)
{
	size_t big = (1u << 20) + 1, n;
	char *text = malloc(big + 64);

	(void)state;
	assert_non_null(text);
	n = (size_t)snprintf(text, big, "[default]\n# ");
	memset(text + n, 'x', big);
	text[n + big] = 0;
	aws_file("credentials", text);
	expect_error(NULL, -EINVAL,
		     "~/.aws/credentials is larger than 1024 KiB", NULL);

	/* A line over the limit, in a file under it. */
	n = (size_t)snprintf(text, big, "[default]\naws_secret_access_key = ");
	memset(text + n, 's', 9000);
	text[n + 9000] = 0;
	aws_file("credentials", text);
	expect_error(NULL, -EINVAL,
		     "line 2 of ~/.aws/credentials is longer than 8192", NULL);

	/* A value over its field, in a line under the limit. */
	n = (size_t)snprintf(text, big,
			     "[default]\naws_access_key_id = AKIA\n"
			     "aws_secret_access_key = ");
	memset(text + n, 's', 300);
	text[n + 300] = 0;
	aws_file("credentials", text);
	expect_error(NULL, -EINVAL,
		     "aws_secret_access_key on line 3 of ~/.aws/credentials "
		     "is longer than 256 characters",
		     "ssssssssssssssss");
	free(text);
}

static void malformed_lines_are_refused(void **state)
{
	(void)state;
	aws_file("credentials", "[default\n"
				"aws_access_key_id = AKIA\n");
	expect_error(NULL, -EINVAL,
		     "line 1 of ~/.aws/credentials: section header without ']'",
		     NULL);
	aws_file("credentials", "[default]\n"
				"aws_access_key_id AKIA\n");
	expect_error(NULL, -EINVAL, "line 2 of ~/.aws/credentials: expected",
		     NULL);
	/* Junk in other profiles is not ours to judge. */
	aws_file("credentials", "[other]\n"
				"this is not a property\n"
				"[default]\n"
				"aws_access_key_id = AKIA\n"
				"aws_secret_access_key = s\n");
	creds_release(expect_keys(NULL, "AKIA", "s", ""));
}

/* ---- profile settings --------------------------------------------------- */

static void profile_settings_come_from_the_config_file(void **state)
{
	struct creds_provider *p;
	char out[64];

	(void)state;
	aws_file("config", "[default]\n"
			   "region = us-east-2\n"
			   "[profile dev]\n"
			   "region = eu-central-1  # Frankfurt\n"
			   "endpoint_url = http://127.0.0.1:7090\n"
			   "aws_secret_access_key = devSecret\n"
			   "services =\n"
			   "  region = nested-is-not-ours\n");
	aws_file("credentials", "[dev]\n"
				"output = text\n"
				"aws_access_key_id = AKIADEV\n"
				"aws_secret_access_key = devSecret\n");
	p = provider("dev");
	assert_int_equal(creds_profile_setting(p, "region", out, sizeof(out)),
			 0);
	assert_string_equal(out, "eu-central-1");
	assert_int_equal(
		creds_profile_setting(p, "endpoint_url", out, sizeof(out)), 0);
	assert_string_equal(out, "http://127.0.0.1:7090");
	/* Not from the credentials file. */
	assert_int_equal(creds_profile_setting(p, "output", out, sizeof(out)),
			 -ENOENT);
	assert_int_equal(creds_profile_setting(p, "services", out, sizeof(out)),
			 -ENOENT);
	/* Secrets are not handed out into ordinary memory. */
	assert_int_equal(creds_profile_setting(p, "aws_secret_access_key", out,
					       sizeof(out)),
			 -EINVAL);
	assert_int_equal(creds_profile_setting(p, "region", out, 5), -ERANGE);
	creds_provider_free(p);

	p = provider(NULL);
	assert_int_equal(creds_profile_setting(p, "region", out, sizeof(out)),
			 0);
	assert_string_equal(out, "us-east-2");
	assert_int_equal(
		creds_profile_setting(p, "endpoint_url", out, sizeof(out)),
		-ENOENT);
	creds_provider_free(p);

	p = provider("absent");
	assert_int_equal(creds_profile_setting(p, "region", out, sizeof(out)),
			 -ENOENT);
	creds_provider_free(p);
}

static void profile_setting_without_config_file(void **state)
{
	struct creds_provider *p;
	char out[64];

	(void)state;
	p = provider(NULL);
	assert_int_equal(creds_profile_setting(p, "region", out, sizeof(out)),
			 -ENOENT);
	creds_provider_free(p);
}

/* ---- container and instance metadata configuration ---------------------- */

static void container_uris_are_checked_before_any_request(void **state)
{
	(void)state;
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.7/creds",
	       1);
	expect_error(NULL, -EINVAL, "http to a loopback address", NULL);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI",
	       "http://127.0.0.1@192.0.2.7/creds", 1);
	expect_error(NULL, -EINVAL, "http://192.0.2.7/creds", NULL);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "ftp://127.0.0.1/creds",
	       1);
	expect_error(NULL, -EINVAL, "only https", NULL);
	unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "v2/credentials", 1);
	expect_error(NULL, -EINVAL, "does not start with '/'", NULL);
}

static void imds_endpoint_is_checked(void **state)
{
	(void)state;
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "ftp://127.0.0.1", 1);
	expect_error(NULL, -EINVAL, "not an http or https URL", NULL);
	unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv5", 1);
	expect_error(NULL, -EINVAL, "neither IPv4 nor IPv6", NULL);
}

/* ---- the cache ---------------------------------------------------------- */

static void long_term_credentials_are_resolved_once(void **state)
{
	struct creds_provider *p;
	struct kms_creds *c;
	char err[256];

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIAFIRST", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "firstSecret", 1);
	p = provider(NULL);
	assert_int_equal(creds_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c->access_key_id, "AKIAFIRST");
	creds_release(c);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	assert_int_equal(creds_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c->access_key_id, "AKIAFIRST");
	assert_string_equal(c->secret, "firstSecret");
	creds_release(c);
	creds_provider_free(p);
}

static void copies_live_in_secure_memory(void **state)
{
	struct secmem_stats before, during, after;
	struct creds_provider *p;
	struct kms_creds *a, *b;
	char err[256];

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIASECMEM", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secmemSecret", 1);
	p = provider(NULL);
	/* The first call also allocates the cache. */
	assert_int_equal(creds_get(p, &a, err, sizeof(err)), 0);
	secmem_stats(&before);
	assert_int_equal(creds_get(p, &b, err, sizeof(err)), 0);
	secmem_stats(&during);
	assert_int_equal(during.live_allocs, before.live_allocs + 1);
	assert_true(a != b);
	assert_true(secmem_size(b) >= sizeof(*b));
	creds_release(b);
	secmem_stats(&after);
	assert_int_equal(after.live_allocs, before.live_allocs);
	creds_release(a);
	creds_provider_free(p);
	/* The provider freed its cache too: nothing left behind. */
	secmem_stats(&after);
	assert_int_equal(after.live_allocs, before.live_allocs - 2);
	creds_release(NULL);
	creds_provider_free(NULL);
}

struct thread_arg {
	struct creds_provider *p;
	int failures;
};

static void *get_many(void *arg)
{
	struct thread_arg *t = arg;
	char err[256];

	for (int i = 0; i < 200; i++) {
		struct kms_creds *c;

		if (creds_get(t->p, &c, err, sizeof(err)) != 0 ||
		    strcmp(c->access_key_id, "AKIATHREADS") != 0)
			t->failures++;
		creds_release(c);
	}
	return NULL;
}

static void shared_provider_across_threads(void **state)
{
	struct thread_arg args[8];
	pthread_t th[8];
	struct creds_provider *p;

	(void)state;
	aws_file("credentials", "[default]\n"
				"aws_access_key_id = AKIATHREADS\n"
				"aws_secret_access_key = threadsSecret\n");
	p = provider(NULL);
	for (int i = 0; i < 8; i++) {
		args[i] = (struct thread_arg){ .p = p };
		assert_int_equal(
			pthread_create(&th[i], NULL, get_many, &args[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].failures, 0);
	}
	creds_provider_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(env_credentials, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			env_half_set_names_the_missing_one, setup, teardown),
		cmocka_unit_test_setup_teardown(env_refuses_bad_values, setup,
						teardown),
		cmocka_unit_test_setup_teardown(env_wins_over_files, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			credentials_file_default_profile, setup, teardown),
		cmocka_unit_test_setup_teardown(
			credentials_file_beats_config_file, setup, teardown),
		cmocka_unit_test_setup_teardown(config_file_sections, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			nested_sections_and_unknown_keys_are_ignored, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			aws_profile_and_explicit_profile, setup, teardown),
		cmocka_unit_test_setup_teardown(
			missing_selected_profile_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(half_set_profile_is_an_error,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			unsupported_profiles_are_refused_by_name, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			implicit_default_falls_through_to_enoent, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			file_locations_from_the_environment, setup, teardown),
		cmocka_unit_test_setup_teardown(
			oversized_files_and_lines_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_lines_are_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			profile_settings_come_from_the_config_file, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			profile_setting_without_config_file, setup, teardown),
		cmocka_unit_test_setup_teardown(
			container_uris_are_checked_before_any_request, setup,
			teardown),
		cmocka_unit_test_setup_teardown(imds_endpoint_is_checked, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			long_term_credentials_are_resolved_once, setup,
			teardown),
		cmocka_unit_test_setup_teardown(copies_live_in_secure_memory,
						setup, teardown),
		cmocka_unit_test_setup_teardown(shared_provider_across_threads,
						setup, teardown),
	};

	return cmocka_run_group_tests_name("creds", tests, NULL, NULL);
}
