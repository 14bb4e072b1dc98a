/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sigv4.c — unit tests of kms/sigv4.c: every case of the AWS SigV4 test
 * suite (canonical request, string to sign, signature, and acceptance by the
 * verifier), rejections each built from a valid request with one thing
 * wrong, and the canonicalisation rules and limits the suite does not pin
 * down.
 *
 * The suite is read from $CMKFS_VECTORS/sigv4/ (tests/vectors/sigv4, with
 * its licence), one folder per case, never copied into this source.  Mismatches
 * print got and want.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "crypto.h"
#include "sigv4.h"

/* ---- helpers ------------------------------------------------------------ */

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v && *v ? v : dflt;
}

/* dir/file into out; fails the test rather than truncate. */
static void join(char *out, size_t size, const char *dir, const char *file)
{
	int n = snprintf(out, size, "%s/%s", dir, file);

	assert_true(n > 0 && (size_t)n < size);
}

static const char *vector_dir(void)
{
	static char dir[4096];

	snprintf(dir, sizeof(dir), "%s/sigv4",
		 env_or("CMKFS_VECTORS", "tests/vectors"));
	return dir;
}

/* The whole of a file, NUL-terminated, or NULL (reported) if unreadable. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f) {
		fprintf(stderr,
			"cannot open %s: %s\n(CMKFS_VECTORS names the vectors "
			"directory, default tests/vectors)\n",
			path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (cap - n < 4096) {
			char *nb = realloc(buf, cap + 65536);

			assert_non_null(nb);
			buf = nb;
			cap += 65536;
		}
		size_t got = fread(buf + n, 1, cap - n - 1, f);

		if (!got)
			break;
		n += got;
	}
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static char *slurp_in(const char *dir, const char *file)
{
	char path[8192];

	join(path, sizeof(path), dir, file);
	return slurp(path, NULL);
}

static void strip_newlines(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

/* Compare two strings; on mismatch print both and return false. */
static bool same(const char *what, const char *got, const char *want)
{
	if (got && want && !strcmp(got, want))
		return true;
	fprintf(stderr, "mismatch: %s\n--- got:\n%s\n--- want:\n%s\n---\n",
		what, got ? got : "(null)", want ? want : "(null)");
	return false;
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
	uint8_t h[CRYPTO_SHA256_LEN];

	assert_int_equal(crypto_sha256(n ? p : "", n, h), 0);
	for (size_t i = 0; i < sizeof(h); i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* ---- a request under test ----------------------------------------------- */

enum { T_HEADERS = 160, T_NAME = 64, T_VALUE = 20000, T_BODY = 1024 };

struct treq {
	char method[64];
	char target[9000];
	char names[T_HEADERS][T_NAME];
	char *values[T_HEADERS]; /* malloc'ed */
	size_t n;
	char body[T_BODY];
	size_t body_len;
	struct sigv4_header h[T_HEADERS];
	struct sigv4_request req;
};

static struct treq *treq_new(void)
{
	struct treq *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	return t;
}

static void treq_free(struct treq *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->values[i]);
	free(t);
}

static void treq_add(struct treq *t, const char *name, const char *value)
{
	assert_true(t->n < T_HEADERS);
	assert_true(strlen(name) < T_NAME);
	snprintf(t->names[t->n], T_NAME, "%s", name);
	t->values[t->n] = strdup(value);
	assert_non_null(t->values[t->n]);
	t->n++;
}

static void treq_del(struct treq *t, const char *name)
{
	size_t o = 0;

	for (size_t i = 0; i < t->n; i++) {
		if (!strcasecmp(t->names[i], name)) {
			free(t->values[i]);
			continue;
		}
		if (o != i) {
			memcpy(t->names[o], t->names[i], T_NAME);
			t->values[o] = t->values[i];
		}
		o++;
	}
	t->n = o;
}

/* Replace the value of the first header called name, or add it. */
static void treq_set(struct treq *t, const char *name, const char *value)
{
	for (size_t i = 0; i < t->n; i++) {
		if (!strcasecmp(t->names[i], name)) {
			free(t->values[i]);
			t->values[i] = strdup(value);
			assert_non_null(t->values[i]);
			return;
		}
	}
	treq_add(t, name, value);
}

static const char *treq_get(const struct treq *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcasecmp(t->names[i], name))
			return t->values[i];
	return NULL;
}

static void treq_body(struct treq *t, const char *body)
{
	t->body_len = strlen(body);
	assert_true(t->body_len < T_BODY);
	memcpy(t->body, body, t->body_len);
}

static const struct sigv4_request *treq_view(struct treq *t)
{
	for (size_t i = 0; i < t->n; i++) {
		t->h[i].name = t->names[i];
		t->h[i].value = t->values[i];
	}
	t->req = (struct sigv4_request){ .method = t->method,
					 .target = t->target,
					 .headers = t->h,
					 .n_headers = t->n,
					 .body = t->body,
					 .body_len = t->body_len };
	return &t->req;
}

/*
 * Parse a raw HTTP/1.1 request: "METHOD TARGET HTTP/1.1" (the target may
 * hold spaces: the method ends at the first, the version starts after the
 * last), "Name:value" lines with obs-fold continuation lines (kept in the
 * value after a "\n"), a blank line, the body.  The text may end without a
 * newline and without the blank line.
 */
static bool treq_parse(struct treq *t, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	bool first = true, ok = true;

	while (ok && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char *line =
			strndup(p, nl ? (size_t)(nl - p) : (size_t)(end - p));
		size_t n;

		assert_non_null(line);
		n = strlen(line);
		if (n && line[n - 1] == '\r')
			line[--n] = '\0';
		p = nl ? nl + 1 : end;
		if (first) {
			char *sp1 = strchr(line, ' '),
			     *sp2 = strrchr(line, ' ');

			ok = sp1 && sp2 > sp1 &&
			     (size_t)(sp1 - line) < sizeof(t->method) &&
			     (size_t)(sp2 - sp1 - 1) < sizeof(t->target);
			if (ok) {
				*sp1 = *sp2 = '\0';
				snprintf(t->method, sizeof(t->method), "%s",
					 line);
				snprintf(t->target, sizeof(t->target), "%s",
					 sp1 + 1);
			}
			first = false;
		} else if (n == 0) {
			free(line);
			break;
		} else if (line[0] == ' ' || line[0] == '\t') {
			char *v = t->n ? t->values[t->n - 1] : NULL;

			ok = v && asprintf(&t->values[t->n - 1], "%s\n%s", v,
					   line) > 0;
			if (ok)
				free(v);
		} else {
			char *colon = strchr(line, ':');

			ok = colon && (size_t)(colon - line) < T_NAME;
			if (ok) {
				*colon = '\0';
				treq_add(t, line, colon + 1);
			}
		}
		free(line);
	}
	if (!ok || first || (size_t)(end - p) >= T_BODY)
		return false;
	t->body_len = (size_t)(end - p);
	memcpy(t->body, p, t->body_len);
	return true;
}

/* ---- credentials --------------------------------------------------------- */

struct tcred {
	const char *akid;
	struct sigv4_credential cred;
};

/* lookup_arg is a table ending with a NULL akid. */
static bool table_lookup(void *arg, const char *akid,
			 struct sigv4_credential *out)
{
	for (const struct tcred *c = arg; c->akid; c++) {
		if (!strcmp(c->akid, akid)) {
			*out = c->cred;
			return true;
		}
	}
	return false;
}

/* Every secret the tests use: none may ever show in a message. */
static const char *const all_secrets[] = {
	"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	"kms-secret-key",
	"temp-secret-key",
	"old-secret-key",
	"session-token-123",
	NULL,
};

/* ---- the AWS test suite -------------------------------------------------- */

struct vcase {
	char akid[64], secret[128], token[2048], region[64], service[64];
	bool has_token, normalize;
	int64_t now;
	char amz_date[17], date8[9], scope[256];
};

static const char *json_str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool load_context(const char *dir, struct vcase *c)
{
	char path[8192];
	json_object *root, *creds, *v;
	const char *akid, *secret, *token, *region, *service, *ts;
	struct tm tm;
	bool ok = false;

	memset(c, 0, sizeof(*c));
	join(path, sizeof(path), dir, "context.json");
	root = json_object_from_file(path);
	if (!root) {
		fprintf(stderr, "%s: cannot parse\n", path);
		return false;
	}
	if (!json_object_object_get_ex(root, "credentials", &creds))
		goto out;
	akid = json_str(creds, "access_key_id");
	secret = json_str(creds, "secret_access_key");
	token = json_str(creds, "token");
	region = json_str(root, "region");
	service = json_str(root, "service");
	ts = json_str(root, "timestamp");
	if (!akid || !secret || !region || !service || !ts)
		goto out;
	snprintf(c->akid, sizeof(c->akid), "%s", akid);
	snprintf(c->secret, sizeof(c->secret), "%s", secret);
	snprintf(c->region, sizeof(c->region), "%s", region);
	snprintf(c->service, sizeof(c->service), "%s", service);
	if (token) {
		c->has_token = true;
		snprintf(c->token, sizeof(c->token), "%s", token);
	}
	c->normalize = json_object_object_get_ex(root, "normalize", &v) &&
		       json_object_get_boolean(v);
	memset(&tm, 0, sizeof(tm));
	ts = strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!ts || *ts)
		goto out;
	c->now = (int64_t)timegm(&tm);
	strftime(c->amz_date, sizeof(c->amz_date), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(c->date8, sizeof(c->date8), "%.8s", c->amz_date);
	snprintf(c->scope, sizeof(c->scope), "%s/%s/%s/aws4_request", c->date8,
		 c->region, c->service);
	ok = true;
out:
	if (!ok)
		fprintf(stderr, "%s: missing or malformed fields\n", path);
	json_object_put(root);
	return ok;
}

/* The SignedHeaders value of an Authorization header. */
static bool signed_headers_of(const char *auth, char *out, size_t size)
{
	const char *p = auth ? strstr(auth, "SignedHeaders=") : NULL;
	size_t n;

	if (!p)
		return false;
	p += strlen("SignedHeaders=");
	n = strcspn(p, ", ");
	if (n >= size)
		return false;
	snprintf(out, size, "%.*s", (int)n, p);
	return true;
}

/* Load a case's signed request and context. */
static bool load_case(const char *dir, struct treq *t, struct vcase *c)
{
	size_t len;
	char path[8192], *text;
	bool ok;

	if (!load_context(dir, c))
		return false;
	join(path, sizeof(path), dir, "header-signed-request.txt");
	text = slurp(path, &len);
	if (!text)
		return false;
	ok = treq_parse(t, text, len);
	if (!ok)
		fprintf(stderr, "%s: cannot parse the request\n", path);
	free(text);
	return ok;
}

/* Run every check on one case; true if all pass. */
static bool run_case(const char *dir, const char *name)
{
	struct treq *t = treq_new();
	struct vcase c;
	struct tcred creds[2] = { { NULL, { NULL, NULL, 0 } },
				  { NULL, { NULL, NULL, 0 } } };
	struct sigv4_verify_params p;
	struct sigv4_result res;
	char *want_creq = NULL, *want_sts = NULL, *want_sig = NULL;
	char *creq = NULL, *sts = NULL, sig[65] = "", hash[65], list[512];
	char what[512];
	const struct sigv4_request *req;
	bool ok = false;
	int r;

	if (!load_case(dir, t, &c))
		goto out;
	want_creq = slurp_in(dir, "header-canonical-request.txt");
	want_sts = slurp_in(dir, "header-string-to-sign.txt");
	want_sig = slurp_in(dir, "header-signature.txt");
	if (!want_creq || !want_sts || !want_sig)
		goto out;
	strip_newlines(want_creq);
	strip_newlines(want_sts);
	strip_newlines(want_sig);
	if (!signed_headers_of(treq_get(t, "Authorization"), list,
			       sizeof(list))) {
		fprintf(stderr, "%s: no SignedHeaders\n", name);
		goto out;
	}
	req = treq_view(t);
	sha256_hex(t->body, t->body_len, hash);

	r = sigv4_canonical_request(req, list, c.normalize, hash, &creq);
	snprintf(what, sizeof(what), "%s: canonical request (rc %d)", name, r);
	if (!same(what, creq, want_creq))
		goto out;
	r = sigv4_string_to_sign(c.amz_date, c.scope, creq, &sts);
	snprintf(what, sizeof(what), "%s: string to sign (rc %d)", name, r);
	if (!same(what, sts, want_sts))
		goto out;
	r = sigv4_signature(c.secret, c.date8, c.region, c.service, sts, sig);
	snprintf(what, sizeof(what), "%s: signature (rc %d)", name, r);
	if (!same(what, sig, want_sig))
		goto out;

	creds[0].akid = c.akid;
	creds[0].cred.secret = c.secret;
	creds[0].cred.session_token = c.has_token ? c.token : NULL;
	p = (struct sigv4_verify_params){ .service = "service",
					  .now = c.now,
					  .max_skew = 300,
					  .normalize_path = c.normalize,
					  .lookup = table_lookup,
					  .lookup_arg = creds };
	r = sigv4_verify(req, &p, &res);
	if (r != 0 || res.status != SIGV4_OK) {
		fprintf(stderr, "%s: verify: rc %d, %s: %s\n", name, r,
			sigv4_status_name(res.status), res.message);
		goto out;
	}
	ok = same("verified region", res.region, c.region) &&
	     same("verified access key", res.access_key_id, c.akid);
out:
	free(want_creq);
	free(want_sts);
	free(want_sig);
	free(creq);
	free(sts);
	treq_free(t);
	return ok;
}

static int is_case_dir(const struct dirent *d)
{
	char path[8192];
	struct stat st;

	if (d->d_name[0] == '.')
		return 0;
	join(path, sizeof(path), vector_dir(), d->d_name);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void aws_test_suite(void **state)
{
	(void)state;
	struct dirent **list;
	int folders = scandir(vector_dir(), &list, is_case_dir, alphasort);
	int passed = 0, failed = 0;

	if (folders < 0) {
		fprintf(stderr,
			"cannot read %s: %s\n(CMKFS_VECTORS names the vectors "
			"directory, default tests/vectors)\n",
			vector_dir(), strerror(errno));
		fail();
	}
	for (int i = 0; i < folders; i++) {
		char dir[8192];

		join(dir, sizeof(dir), vector_dir(), list[i]->d_name);
		if (run_case(dir, list[i]->d_name)) {
			passed++;
		} else {
			fprintf(stderr, "FAILED: %s\n", list[i]->d_name);
			failed++;
		}
		free(list[i]);
	}
	free(list);
	fprintf(stderr, "AWS SigV4 suite: %d folders, %d passed, %d failed\n",
		folders, passed, failed);
	assert_int_equal(failed, 0);
	assert_int_equal(passed, folders);
	assert_true(passed >= 30);
}

/* ---- requests of our own, for service "kms" ------------------------------ */

#define KMS_DATE   "20240102T030405Z"
#define KMS_NOW	   1704164645 /* KMS_DATE in epoch seconds */
#define KMS_SIGNED "content-type;host;x-amz-date;x-amz-target"

/* Not const: lookup_arg is a plain pointer. */
static struct tcred kms_creds[] = {
	{ "AKIDKMSTEST", { "kms-secret-key", NULL, 0 } },
	{ "ASIATEMPTEST",
	  { "temp-secret-key", "session-token-123", KMS_NOW + 3600 } },
	{ "ASIAOLDTEST", { "old-secret-key", "old-token", KMS_NOW } },
	{ "AKIDNOSECRET", { NULL, NULL, 0 } },
	{ NULL, { NULL, NULL, 0 } },
};

static const char *const kms_required[] = { "x-amz-target", NULL };

static struct sigv4_verify_params kms_params(void)
{
	return (struct sigv4_verify_params){ .service = "kms",
					     .now = KMS_NOW,
					     .max_skew = 300,
					     .normalize_path = true,
					     .required_signed = kms_required,
					     .lookup = table_lookup,
					     .lookup_arg = kms_creds };
}

/* A KMS Decrypt call as an SDK sends it, not yet signed. */
static struct treq *kms_request(void)
{
	struct treq *t = treq_new();

	snprintf(t->method, sizeof(t->method), "POST");
	snprintf(t->target, sizeof(t->target), "/");
	treq_add(t, "Host", "kms.us-east-1.amazonaws.com");
	treq_add(t, "Content-Type", "application/x-amz-json-1.1");
	treq_add(t, "X-Amz-Target", "TrentService.Decrypt");
	treq_add(t, "X-Amz-Date", KMS_DATE);
	treq_body(t, "{\"CiphertextBlob\":\"AQIDBA==\"}");
	return t;
}

/* How to sign; NULL fields take the defaults in sign(). */
struct how {
	const char *akid, *secret, *date8, *region, *service, *signed_headers;
	bool normalize_off;
};

/* Sign t with the building blocks and set its Authorization header. */
static void sign(struct treq *t, const struct how *how)
{
	const char *akid = how->akid ? how->akid : "AKIDKMSTEST";
	const char *secret = how->secret ? how->secret : "kms-secret-key";
	const char *region = how->region ? how->region : "us-east-1";
	const char *service = how->service ? how->service : "kms";
	const char *list =
		how->signed_headers ? how->signed_headers : KMS_SIGNED;
	const char *date = treq_get(t, "X-Amz-Date");
	char date8[9], hash[65], scope[256], sig[65], auth[1024];
	char *creq = NULL, *sts = NULL;

	assert_non_null(date);
	snprintf(date8, sizeof(date8), "%.8s", how->date8 ? how->date8 : date);
	snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date8, region,
		 service);
	sha256_hex(t->body, t->body_len, hash);
	assert_int_equal(sigv4_canonical_request(treq_view(t), list,
						 !how->normalize_off, hash,
						 &creq),
			 0);
	assert_int_equal(sigv4_string_to_sign(date, scope, creq, &sts), 0);
	assert_int_equal(
		sigv4_signature(secret, date8, region, service, sts, sig), 0);
	snprintf(auth, sizeof(auth),
		 "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
		 "Signature=%s",
		 akid, scope, list, sig);
	treq_set(t, "Authorization", auth);
	free(creq);
	free(sts);
}

static void sign_default(struct treq *t)
{
	const struct how how = { 0 };

	sign(t, &how);
}

/* The signature hex in t's Authorization header. */
static char *signature_in(struct treq *t)
{
	const char *auth = treq_get(t, "Authorization");
	char *s = auth ? strstr(auth, "Signature=") : NULL;

	assert_non_null(s);
	return s + strlen("Signature=");
}

/* Verify and check status and message prefix (NULL: any message); also
 * that no secret leaked into the message. */
#define EXPECT(t, p, st, prefix) expect_at(__LINE__, (t), (p), (st), (prefix))

static void expect_at(int line, struct treq *t,
		      const struct sigv4_verify_params *p, enum sigv4_status st,
		      const char *prefix)
{
	struct sigv4_result res;
	int r = sigv4_verify(treq_view(t), p, &res);
	bool ok = st == SIGV4_OK ? r == 0 : r == -EACCES;

	ok = ok && res.status == st &&
	     (!prefix || !strncmp(res.message, prefix, strlen(prefix)));
	if (!ok) {
		fprintf(stderr,
			"line %d:\n  got  rc %d %s: '%s'\n  want %s: '%s...'\n",
			line, r, sigv4_status_name(res.status), res.message,
			sigv4_status_name(st), prefix ? prefix : "");
		fail_msg("verification result differs (line %d)", line);
	}
	for (size_t i = 0; all_secrets[i]; i++)
		if (strstr(res.message, all_secrets[i]))
			fail_msg("line %d: message holds a secret: %s", line,
				 res.message);
}

static const char MISMATCH[] =
	"The request signature we calculated does not match the signature "
	"you provided. Check your AWS Secret Access Key and signing method. "
	"Consult the service documentation for details.";
static const char BAD_TOKEN[] =
	"The security token included in the request is invalid.";

/* ---- acceptance ---------------------------------------------------------- */

static void verify_accepts_kms_request(void **state)
{
	(void)state;
	struct sigv4_verify_params p = kms_params();
	struct treq *t = kms_request();
	struct sigv4_result res;

	sign_default(t);
	assert_int_equal(sigv4_verify(treq_view(t), &p, &res), 0);
	assert_int_equal(res.status, SIGV4_OK);
	assert_string_equal(res.message, "");
	assert_string_equal(res.access_key_id, "AKIDKMSTEST");
	assert_string_equal(res.region, "us-east-1");
	/* Another region is only reported: serving it is the caller's call. */
	{
		const struct how how = { .region = "eu-west-3" };

		sign(t, &how);
		assert_int_equal(sigv4_verify(treq_view(t), &p, &res), 0);
		assert_string_equal(res.region, "eu-west-3");
	}
	/* Unsigned headers may change or appear. */
	sign_default(t);
	treq_add(t, "User-Agent", "aws-sdk-js/3");
	treq_set(t, "Content-Length", "28");
	EXPECT(t, &p, SIGV4_OK, NULL);
	/* Whitespace around the value. */
	{
		char auth[1024];

		snprintf(auth, sizeof(auth), " \t%s  ",
			 treq_get(t, "Authorization"));
		treq_set(t, "Authorization", auth);
		EXPECT(t, &p, SIGV4_OK, NULL);
	}
	treq_free(t);
}

/* Components in any order, with or without spaces after the commas. */
static void verify_accepts_component_layouts(void **state)
{
	(void)state;
	struct sigv4_verify_params p = kms_params();
	struct treq *t = kms_request();
	char sig[65], auth[1024];
	const char *cred = "AKIDKMSTEST/20240102/us-east-1/kms/aws4_request";

	sign_default(t);
	snprintf(sig, sizeof(sig), "%.64s", signature_in(t));
	snprintf(auth, sizeof(auth),
		 "AWS4-HMAC-SHA256 Credential=%s,SignedHeaders=%s,Signature=%s",
		 cred, KMS_SIGNED, sig);
	treq_set(t, "Authorization", auth);
	EXPECT(t, &p, SIGV4_OK, NULL);
	snprintf(auth, sizeof(auth),
		 "AWS4-HMAC-SHA256   Credential=%s ,\tSignedHeaders=%s , "
		 "Signature=%s",
		 cred, KMS_SIGNED, sig);
	treq_set(t, "Authorization", auth);
	EXPECT(t, &p, SIGV4_OK, NULL);
	snprintf(auth, sizeof(auth),
		 "AWS4-HMAC-SHA256 Signature=%s, Credential=%s, "
		 "SignedHeaders=%s",
		 sig, cred, KMS_SIGNED);
	treq_set(t, "Authorization", auth);
	EXPECT(t, &p, SIGV4_OK, NULL);
	snprintf(auth, sizeof(auth),
		 "AWS4-HMAC-SHA256 SignedHeaders=%s,Signature=%s,Credential=%s",
		 KMS_SIGNED, sig, cred);
	treq_set(t, "Authorization", auth);
	EXPECT(t, &p, SIGV4_OK, NULL);
	treq_free(t);
}

/* ---- signature mismatches ------------------------------------------------ */

static struct treq *load_vector(const char *name, struct vcase *c)
{
	struct treq *t = treq_new();
	char dir[8192];

	join(dir, sizeof(dir), vector_dir(), name);
	assert_true(load_case(dir, t, c));
	return t;
}

static struct sigv4_verify_params vector_params(const struct vcase *c,
						struct tcred *table)
{
	table[0] = (struct tcred){
		c->akid, { c->secret, c->has_token ? c->token : NULL, 0 }
	};
	table[1] = (struct tcred){ NULL, { NULL, NULL, 0 } };
	return (struct sigv4_verify_params){ .service = "service",
					     .now = c->now,
					     .max_skew = 300,
					     .normalize_path = c->normalize,
					     .lookup = table_lookup,
					     .lookup_arg = table };
}

static void verify_rejects_flipped_signature(void **state)
{
	(void)state;
	static const size_t where[] = { 0, 1, 31, 62, 63 };
	struct vcase c;
	struct treq *t = load_vector("post-vanilla", &c);
	struct tcred table[2];
	struct sigv4_verify_params p = vector_params(&c, table);
	struct sigv4_result res;
	char *sig = signature_in(t), good[65];

	snprintf(good, sizeof(good), "%.64s", sig);
	EXPECT(t, &p, SIGV4_OK, NULL);
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		char was = sig[where[i]];

		sig[where[i]] = was == '0' ? '1' : '0';
		EXPECT(t, &p, SIGV4_INVALID, MISMATCH);
		/* The expected signature is never disclosed. */
		assert_int_equal(sigv4_verify(treq_view(t), &p, &res), -EACCES);
		assert_null(strstr(res.message, good));
		assert_string_equal(res.message, MISMATCH);
		sig[where[i]] = was;
	}
	EXPECT(t, &p, SIGV4_OK, NULL);
	treq_free(t);
}

/* AWS compares the signature with its own lower-case hex: the right
 * signature in upper case (or mixed case) does not match. */
static void verify_rejects_upper_case_signature(void **state)
{
	(void)state;
	struct sigv4_verify_params p = kms_params();
	struct treq *t = kms_request();
	char *sig;
	size_t letters = 0;

	sign_default(t);
	EXPECT(t, &p, SIGV4_OK, NULL);
	sig = signature_in(t);
	for (size_t i = 0; i < 64; i++)
		if (sig[i] >= 'a' && sig[i] <= 'f') {
			sig[i] = (char)(sig[i] - 'a' + 'A');
			letters++;
			/* one digit changed is already a mismatch */
			if (letters == 1)
				EXPECT(t, &p, SIGV4_INVALID, MISMATCH);
		}
	assert_true(letters > 0);
	EXPECT(t, &p, SIGV4_INVALID, MISMATCH);
	treq_free(t);
}

static void verify_rejects_modified_request(void **state)
{
	(void)state;
	struct sigv4_verify_params p = kms_params();
	struct treq *t = kms_request();

	/* body */
	sign_default(t);
	treq_body(t, "{\"CiphertextBlob\":\"AQIDBB==\"}");
	EXPECT(t, &p, SIGV4_INVALID, MISMATCH);
	treq_body(t, "");
	EXPECT(t, &p, SIGV4_INVALID, MISMATCH);
	/* a signed header's value */
	treq_body(t, "{\"CiphertextBlob\":\"AQIDBA==\"}");
	EXPECT(t, &p, SIGV4_OK, NULL);
	treq_set(t, "X-Amz-Target", "TrentService.Encrypt");
	EXPECT(t, &p, SIGV4_INVALID, MISMATCH);
	/* a second copy of a signed header */
	treq_set(t, "X-Amz-Target", "TrentService.Decrypt");
	treq_add(t, "x-amz-target", "TrentService.Encrypt");
	EXPECT(t, &p, SIGV4_INVALID, MISMATCH);
	treq_del(t, "x-amz-target");
	treq_add(t, "X-Amz-Target", "TrentService.Decrypt");
	EXPECT(t, &p, SIGV4_OK, NULL);
	/* method, path, query */
	snprintf(t->method, sizeof(t->method), "PUT");
	EXPECT(t, &p, SIGV4_INVALID, MISMATCH);
	snprintf(t->method, sizeof(t->method), "POST");
	snprintf(t->target, sizeof(t->target), "/other");
	EXPECT(t, &p, SIGV4_INVALID, MISMATCH);
	snprintf(t->target, sizeof(t->target), "/?x=1");
	EXPECT(t, &p, SIGV4_INVALID, MISMATCH);
	/* equivalent paths sign alike */
	snprintf(t->target, sizeof(t->target), "//./");
	EXPECT(t, &p, SIGV4_OK, NULL);
	/* the right signature under another secret */
	snprintf(t->target, sizeof(t->target), "/");
	{
		const struct how how = { .secret = "not-the-secret" };

		sign(t, &how);
		EXPECT(t, &p, SIGV4_INVALID, MISMATCH);
	}
	treq_free(t);
}

/* ---- credential and scope ------------------------------------------------ */

static void verify_rejects_unknown_key(void **state)
{
	(void)state;
	struct sigv4_verify_params p = kms_params();
	struct treq *t = kms_request();
	const struct how nobody = { .akid = "AKIDNOBODY" };
	const struct how nosecret = { .akid = "AKIDNOSECRET" };
	struct sigv4_result res;

	sign(t, &nobody);
	EXPECT(t, &p, SIGV4_UNKNOWN_KEY, BAD_TOKEN);
	assert_int_equal(sigv4_verify(treq_view(t), &p, &res), -EACCES);
	assert_string_equal(res.access_key_id, "AKIDNOBODY");
	sign(t, &nosecret);
	EXPECT(t, &p, SIGV4_UNKNOWN_KEY, BAD_TOKEN);
	treq_free(t);
}

static void verify_rejects_bad_scope(void **state)
{
	(void)state;
	struct sigv4_verify_params p = kms_params();
	struct treq *t = kms_request();
	const struct how s3 = { .service = "s3" };
	const struct how day_before = { .date8 = "20240101" };
	const struct how bad_region = { .region = "US_EAST_1" };
	char auth[1024], *at;

	sign(t, &s3);
	EXPECT(t, &p, SIGV4_INVALID,
	       "Credential should be scoped to correct service: 'kms'.");
	sign(t, &day_before);
	EXPECT(t, &p, SIGV4_INVALID,
	       "Date in Credential scope does not match YYYYMMDD from "
	       "ISO-8601 version of date from HTTP: '20240101' != "
	       "'20240102', from '20240102T030405Z'.");
	sign(t, &bad_region);
	EXPECT(t, &p, SIGV4_INVALID,
	       "Credential should be scoped to a valid region.");

	/* Edit the scope of a valid Authorization header. */
	sign_default(t);
	snprintf(auth, sizeof(auth), "%s", treq_get(t, "Authorization"));
	at = strstr(auth, "aws4_request");
	memcpy(at, "aws5_request", 12);
	treq_set(t, "Authorization", auth);
	EXPECT(t, &p, SIGV4_INVALID,
	       "Credential should be scoped with a valid terminator");
	memcpy(at, "aws4_request", 12);
	at = strstr(auth, "/20240102/");
	memcpy(at, "/2024010x/", 10);
	treq_set(t, "Authorization", auth);
	EXPECT(t, &p, SIGV4_INVALID,
	       "Credential should be scoped to a valid date");
	treq_set(
		t, "Authorization",
		"AWS4-HMAC-SHA256 Credential=AKIDKMSTEST/20240102/us-east-1/"
		"kms, SignedHeaders=" KMS_SIGNED ", Signature="
		"0000000000000000000000000000000000000000000000000000000000000000");
	EXPECT(t, &p, SIGV4_INVALID,
	       "Credential should be scoped with a valid terminator");
	treq_set(
		t, "Authorization",
		"AWS4-HMAC-SHA256 Credential=AKIDKMSTEST/20240102/us-east-1/"
		"kms/aws4_request/x, SignedHeaders=" KMS_SIGNED ", Signature="
		"0000000000000000000000000000000000000000000000000000000000000000");
	EXPECT(t, &p, SIGV4_INVALID,
	       "Credential should be scoped with a valid terminator");
	treq_set(
		t, "Authorization",
		"AWS4-HMAC-SHA256 Credential=AKIDKMSTEST/20240102//kms/"
		"aws4_request, SignedHeaders=" KMS_SIGNED ", Signature="
		"0000000000000000000000000000000000000000000000000000000000000000");
	EXPECT(t, &p, SIGV4_INVALID,
	       "Credential should be scoped to a valid region.");
	treq_free(t);
}

/* ---- time ---------------------------------------------------------------- */

static void verify_rejects_clock_skew(void **state)
{
	(void)state;
	struct sigv4_verify_params p = kms_params();
	struct treq *t = kms_request();

	sign_default(t);
	p.now = KMS_NOW + 360;
	EXPECT(t, &p, SIGV4_INVALID,
	       "Signature expired: 20240102T030405Z is now earlier than "
	       "20240102T030505Z (20240102T031005Z - 5 min.)");
	p.now = KMS_NOW - 360;
	EXPECT(t, &p, SIGV4_INVALID,
	       "Signature not yet current: 20240102T030405Z is still later "
	       "than 20240102T030305Z (20240102T025805Z + 5 min.)");
	/* The bounds themselves are within the allowed skew. */
	p.now = KMS_NOW + 300;
	EXPECT(t, &p, SIGV4_OK, NULL);
	p.now = KMS_NOW - 300;
	EXPECT(t, &p, SIGV4_OK, NULL);
	p.now = KMS_NOW + 301;
	EXPECT(t, &p, SIGV4_INVALID, "Signature expired: ");
	p.now = KMS_NOW - 301;
	EXPECT(t, &p, SIGV4_INVALID, "Signature not yet current: ");
	/* A skew that is not whole minutes is given in seconds. */
	p.max_skew = 90;
	p.now = KMS_NOW + 91;
	EXPECT(t, &p, SIGV4_INVALID,
	       "Signature expired: 20240102T030405Z is now earlier than "
	       "20240102T030406Z (20240102T030536Z - 90 s.)");
	/* Clocks at the ends of time: no overflow, a clean rejection. */
	p.max_skew = UINT32_MAX;
	p.now = INT64_MAX;
	EXPECT(t, &p, SIGV4_INVALID, "Signature expired: ");
	p.now = INT64_MIN;
	EXPECT(t, &p, SIGV4_INVALID, "Signature not yet current: ");
	p.max_skew = 0;
	p.now = KMS_NOW;
	EXPECT(t, &p, SIGV4_OK, NULL);
	treq_free(t);
}

/* ---- the Authorization and X-Amz-Date headers ---------------------------- */

#define ZERO_SIG                                                               \
	"0000000000000000000000000000000000000000000000000000000000000000"
#define KMS_CRED "Credential=AKIDKMSTEST/20240102/us-east-1/kms/aws4_request"

static void verify_rejects_missing_authorization(void **state)
{
	(void)state;
	struct sigv4_verify_params p = kms_params();
	struct treq *t = kms_request();
	const char *auth;

	EXPECT(t, &p, SIGV4_INCOMPLETE,
	       "Request is missing Authentication Token");
	sign_default(t);
	auth = treq_get(t, "Authorization");
	treq_add(t, "authorization", auth);
	EXPECT(t, &p, SIGV4_INCOMPLETE,
	       "The request has more than one Authorization header.");
	treq_free(t);
}

static void verify_rejects_malformed_authorization(void **state)
{
	(void)state;
	static const struct {
		const char *auth, *prefix;
	} bad[] = {
		{ "AWS4-HMAC-SHA256 SignedHeaders=" KMS_SIGNED
		  ", Signature=" ZERO_SIG,
		  "Authorization header requires 'Credential' parameter." },
		{ "AWS4-HMAC-SHA256 " KMS_CRED ", SignedHeaders=" KMS_SIGNED,
		  "Authorization header requires 'Signature' parameter." },
		{ "AWS4-HMAC-SHA256 " KMS_CRED ", Signature=" ZERO_SIG,
		  "Authorization header requires 'SignedHeaders' parameter." },
		{ "AWS4-HMAC-SHA256",
		  "Authorization header requires 'Credential' parameter. "
		  "Authorization header requires 'SignedHeaders' parameter. "
		  "Authorization header requires 'Signature' parameter." },
		{ "AWS4-HMAC-SHA512 " KMS_CRED ", SignedHeaders=" KMS_SIGNED
		  ", Signature=" ZERO_SIG,
		  "Unsupported Authorization algorithm" },
		{ "aws4-hmac-sha256 " KMS_CRED ", SignedHeaders=" KMS_SIGNED
		  ", Signature=" ZERO_SIG,
		  "Unsupported Authorization algorithm" },
		{ "AWS AKIDKMSTEST:frJIUN8DYpKDtOLCwo//yllqDzg=",
		  "Unsupported Authorization algorithm" },
		{ "", "Unsupported Authorization algorithm" },
		{ "AWS4-HMAC-SHA256 " KMS_CRED ", " KMS_CRED
		  ", SignedHeaders=" KMS_SIGNED ", Signature=" ZERO_SIG,
		  "Authorization header has more than one 'Credential' "
		  "parameter." },
		{ "AWS4-HMAC-SHA256 " KMS_CRED ", SignedHeaders=" KMS_SIGNED
		  ", Signature=" ZERO_SIG ", Signature=" ZERO_SIG,
		  "Authorization header has more than one 'Signature' "
		  "parameter." },
		{ "AWS4-HMAC-SHA256 " KMS_CRED ", SignedHeaders=" KMS_SIGNED
		  ", Signature=000000000000000000000000000000000000000000000000"
		  "000000000000000g",
		  "Authorization header's Signature must be 64 hexadecimal "
		  "digits." },
		{ "AWS4-HMAC-SHA256 " KMS_CRED ", SignedHeaders=" KMS_SIGNED
		  ", Signature=" ZERO_SIG "0",
		  "Authorization header's Signature must be 64 hexadecimal" },
		{ "AWS4-HMAC-SHA256 " KMS_CRED ", SignedHeaders=" KMS_SIGNED
		  ", Signature=",
		  "Authorization header's Signature must be 64 hexadecimal" },
		{ "AWS4-HMAC-SHA256 " KMS_CRED ", SignedHeaders=" KMS_SIGNED
		  ", Signature=" ZERO_SIG ", Foo=bar",
		  "Authorization header has an unknown component" },
		{ "AWS4-HMAC-SHA256 " KMS_CRED ", SignedHeaders=" KMS_SIGNED
		  ", Signature " ZERO_SIG,
		  "Authorization header component is not a key=value pair" },
		{ "AWS4-HMAC-SHA256 " KMS_CRED ",, SignedHeaders=" KMS_SIGNED
		  ", Signature=" ZERO_SIG,
		  "Authorization header has an empty component." },
		{ "AWS4-HMAC-SHA256 " KMS_CRED ", SignedHeaders=" KMS_SIGNED
		  ", Signature=" ZERO_SIG ",",
		  "Authorization header has an empty component." },
		{ "AWS4-HMAC-SHA256 " KMS_CRED " SignedHeaders=" KMS_SIGNED
		  " Signature=" ZERO_SIG,
		  "Authorization header requires 'SignedHeaders' parameter." },
		{ "AWS4-HMAC-SHA256 Credential=AKIDKMSTEST, SignedHeaders=" KMS_SIGNED
		  ", Signature=" ZERO_SIG,
		  "Authorization header's Credential is malformed" },
		{ "AWS4-HMAC-SHA256 Credential=/20240102/us-east-1/kms/"
		  "aws4_request, SignedHeaders=" KMS_SIGNED
		  ", Signature=" ZERO_SIG,
		  "Authorization header's Credential is malformed" },
		{ "AWS4-HMAC-SHA256 Credential=AKID-KMS/20240102/us-east-1/"
		  "kms/aws4_request, SignedHeaders=" KMS_SIGNED
		  ", Signature=" ZERO_SIG,
		  "Authorization header's Credential is malformed" },
	};
	struct sigv4_verify_params p = kms_params();
	struct treq *t = kms_request();
	char auth[8192], good[1024];
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		treq_set(t, "Authorization", bad[i].auth);
		EXPECT(t, &p, SIGV4_INCOMPLETE, bad[i].prefix);
	}

	/* Over-long fields. */
	memset(good, 'A', 200);
	snprintf(auth, sizeof(auth),
		 "AWS4-HMAC-SHA256 Credential=%.200s/20240102/us-east-1/kms/"
		 "aws4_request, SignedHeaders=" KMS_SIGNED
		 ", Signature=" ZERO_SIG,
		 good);
	treq_set(t, "Authorization", auth);
	EXPECT(t, &p, SIGV4_INCOMPLETE,
	       "Authorization header's Credential is malformed");
	memset(good, 'A', 400);
	snprintf(auth, sizeof(auth),
		 "AWS4-HMAC-SHA256 Credential=%.400s/20240102/us-east-1/kms/"
		 "aws4_request, SignedHeaders=" KMS_SIGNED
		 ", Signature=" ZERO_SIG,
		 good);
	treq_set(t, "Authorization", auth);
	EXPECT(t, &p, SIGV4_INCOMPLETE,
	       "Authorization header's Credential is too long.");
	n = (size_t)snprintf(auth, sizeof(auth),
			     "AWS4-HMAC-SHA256 " KMS_CRED ", SignedHeaders=");
	while (n < 3000)
		n += (size_t)snprintf(auth + n, sizeof(auth) - n, "x-h%zu;", n);
	snprintf(auth + n, sizeof(auth) - n, "zz, Signature=" ZERO_SIG);
	treq_set(t, "Authorization", auth);
	EXPECT(t, &p, SIGV4_INCOMPLETE,
	       "Authorization header's SignedHeaders is too long.");
	while (n < 5000)
		n += (size_t)snprintf(auth + n, sizeof(auth) - n, "x-h%zu;", n);
	treq_set(t, "Authorization", auth);
	EXPECT(t, &p, SIGV4_INCOMPLETE,
	       "The Authorization header is too long.");

	/* Every truncation of a valid header is incomplete. */
	sign_default(t);
	snprintf(good, sizeof(good), "%s", treq_get(t, "Authorization"));
	for (n = 0; n < strlen(good); n++) {
		snprintf(auth, sizeof(auth), "%.*s", (int)n, good);
		treq_set(t, "Authorization", auth);
		EXPECT(t, &p, SIGV4_INCOMPLETE, NULL);
	}
	treq_set(t, "Authorization", good);
	EXPECT(t, &p, SIGV4_OK, NULL);
	treq_free(t);
}

static void verify_rejects_bad_date(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"20240102T030405",
		"20240102T030405ZZ",
		"2024-01-02T03:04:05Z",
		"20240102 030405Z",
		"20240102t030405z",
		"20241302T030405Z",
		"20240002T030405Z",
		"20240100T030405Z",
		"20240132T030405Z",
		"20230229T030405Z", /* not a leap year */
		"21000229T030405Z", /* nor is 2100 */
		"20240431T030405Z",
		"20240102T240405Z",
		"20240102T036005Z",
		"20240102T030460Z",
		"00000102T030405Z",
		"2024O102T030405Z",
		"+0240102T030405Z",
		"Tue, 02 Jan 2024 03:04:05 GMT",
	};
	struct sigv4_verify_params p = kms_params();
	struct treq *t = kms_request();

	sign_default(t);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		treq_set(t, "X-Amz-Date", bad[i]);
		EXPECT(t, &p, SIGV4_INCOMPLETE,
		       "X-Amz-Date must be in ISO-8601 basic format");
	}
	treq_del(t, "X-Amz-Date");
	EXPECT(t, &p, SIGV4_INCOMPLETE,
	       "Authorization header requires existence of a 'X-Amz-Date' "
	       "header.");
	treq_add(t, "X-Amz-Date", KMS_DATE);
	treq_add(t, "x-amz-date", KMS_DATE);
	EXPECT(t, &p, SIGV4_INCOMPLETE,
	       "The request has more than one X-Amz-Date header.");
	treq_del(t, "X-Amz-Date");

	/* Leap days that exist are accepted, whitespace around is not part
	 * of the value. */
	treq_add(t, "X-Amz-Date", "20240229T000000Z");
	p.now = 1709164800;
	sign_default(t);
	EXPECT(t, &p, SIGV4_OK, NULL);
	treq_set(t, "X-Amz-Date", " 20240229T000000Z\t");
	EXPECT(t, &p, SIGV4_OK, NULL);
	treq_set(t, "X-Amz-Date", "20000229T000000Z");
	sign_default(t);
	p.now = 951782400;
	EXPECT(t, &p, SIGV4_OK, NULL);
	treq_free(t);
}

/* ---- SignedHeaders ------------------------------------------------------- */

static void verify_requires_signed_headers(void **state)
{
	(void)state;
	static const struct {
		const char *list, *prefix;
	} bad[] = {
		{ "content-type;host;x-amz-date",
		  "'x-amz-target' must be a 'SignedHeader' in the AWS "
		  "Authorization." },
		{ "content-type;x-amz-date;x-amz-target",
		  "'host' must be a 'SignedHeader'" },
		{ "content-type;host;x-amz-target",
		  "'x-amz-date' must be a 'SignedHeader'" },
	};
	static const char *const malformed[] = {
		"host;content-type;x-amz-date;x-amz-target",
		"content-type;Host;x-amz-date;x-amz-target",
		"content-type;host;host;x-amz-date;x-amz-target",
		"content-type;host;;x-amz-date;x-amz-target",
		"content-type;host;x-amz-date;x-amz-target;",
		";content-type;host;x-amz-date;x-amz-target",
		"content-type;host;x amz;x-amz-date;x-amz-target",
		"",
	};
	struct sigv4_verify_params p = kms_params();
	struct treq *t = kms_request();
	char auth[1024];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct how how = { .signed_headers = bad[i].list };

		sign(t, &how);
		EXPECT(t, &p, SIGV4_INVALID, bad[i].prefix);
	}
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		snprintf(auth, sizeof(auth),
			 "AWS4-HMAC-SHA256 " KMS_CRED
			 ", SignedHeaders=%s, Signature=" ZERO_SIG,
			 malformed[i]);
		treq_set(t, "Authorization", auth);
		EXPECT(t, &p, SIGV4_INVALID,
		       "SignedHeaders must be lower-case header names, sorted "
		       "and separated by ';'.");
	}
	/* Signed but not sent. */
	treq_set(t, "Authorization",
		 "AWS4-HMAC-SHA256 " KMS_CRED ", SignedHeaders=content-type;"
		 "host;x-amz-date;x-amz-foo;x-amz-target, Signature=" ZERO_SIG);
	EXPECT(t, &p, SIGV4_INVALID,
	       "Header 'x-amz-foo' is in SignedHeaders but not in the "
	       "request.");
	/* Several required names; NULL list means only the two. */
	{
		static const char *const two[] = { "content-type",
						   "x-amz-target", NULL };

		sign_default(t);
		p.required_signed = two;
		EXPECT(t, &p, SIGV4_OK, NULL);
		p.required_signed = NULL;
		EXPECT(t, &p, SIGV4_OK, NULL);
	}
	treq_free(t);
}

/* ---- session tokens and expiry ------------------------------------------- */

static void verify_checks_session_token(void **state)
{
	(void)state;
	struct sigv4_verify_params p = kms_params();
	struct treq *t = kms_request();
	const struct how temp = { .akid = "ASIATEMPTEST",
				  .secret = "temp-secret-key" };
	const struct how temp_signed = {
		.akid = "ASIATEMPTEST",
		.secret = "temp-secret-key",
		.signed_headers = "content-type;host;x-amz-date;"
				  "x-amz-security-token;x-amz-target"
	};

	/* missing */
	sign(t, &temp);
	EXPECT(t, &p, SIGV4_UNKNOWN_KEY, BAD_TOKEN);
	/* right, unsigned, with whitespace around */
	treq_set(t, "X-Amz-Security-Token", " session-token-123 ");
	EXPECT(t, &p, SIGV4_OK, NULL);
	/* wrong: other value, prefix, longer, empty */
	treq_set(t, "X-Amz-Security-Token", "session-token-124");
	EXPECT(t, &p, SIGV4_UNKNOWN_KEY, BAD_TOKEN);
	treq_set(t, "X-Amz-Security-Token", "session-token-12");
	EXPECT(t, &p, SIGV4_UNKNOWN_KEY, BAD_TOKEN);
	treq_set(t, "X-Amz-Security-Token", "session-token-1234");
	EXPECT(t, &p, SIGV4_UNKNOWN_KEY, BAD_TOKEN);
	treq_set(t, "X-Amz-Security-Token", "");
	EXPECT(t, &p, SIGV4_UNKNOWN_KEY, BAD_TOKEN);
	/* twice */
	treq_set(t, "X-Amz-Security-Token", "session-token-123");
	treq_add(t, "x-amz-security-token", "session-token-123");
	EXPECT(t, &p, SIGV4_UNKNOWN_KEY, BAD_TOKEN);
	treq_del(t, "X-Amz-Security-Token");
	/* right, signed */
	treq_add(t, "X-Amz-Security-Token", "session-token-123");
	sign(t, &temp_signed);
	EXPECT(t, &p, SIGV4_OK, NULL);
	/* a token the permanent credential does not have */
	sign_default(t);
	EXPECT(t, &p, SIGV4_UNKNOWN_KEY, BAD_TOKEN);
	treq_free(t);

	/* The suite's case, against credentials without or with another
	 * token. */
	{
		struct vcase c;
		struct tcred table[2];
		struct sigv4_verify_params vp;

		t = load_vector("get-vanilla-with-session-token", &c);
		vp = vector_params(&c, table);
		EXPECT(t, &vp, SIGV4_OK, NULL);
		table[0].cred.session_token = NULL;
		EXPECT(t, &vp, SIGV4_UNKNOWN_KEY, BAD_TOKEN);
		table[0].cred.session_token = "another-token";
		EXPECT(t, &vp, SIGV4_UNKNOWN_KEY, BAD_TOKEN);
		treq_del(t, "X-Amz-Security-Token");
		table[0].cred.session_token = c.token;
		EXPECT(t, &vp, SIGV4_INVALID,
		       "Header 'x-amz-security-token' is in SignedHeaders");
		treq_free(t);
	}
}

static void verify_rejects_expired_credential(void **state)
{
	(void)state;
	struct sigv4_verify_params p = kms_params();
	struct treq *t = kms_request();
	const struct how old = { .akid = "ASIAOLDTEST",
				 .secret = "old-secret-key" };

	treq_add(t, "X-Amz-Security-Token", "old-token");
	sign(t, &old);
	/* Expired exactly now; a second earlier it was valid. */
	EXPECT(t, &p, SIGV4_EXPIRED_TOKEN,
	       "The security token included in the request is expired");
	p.now = KMS_NOW - 1;
	EXPECT(t, &p, SIGV4_OK, NULL);
	/* A wrong token says so, not "expired". */
	p.now = KMS_NOW;
	treq_set(t, "X-Amz-Security-Token", "older-token");
	EXPECT(t, &p, SIGV4_UNKNOWN_KEY, BAD_TOKEN);
	treq_free(t);
}

/* ---- payload hash ---------------------------------------------------------
 */

static void verify_checks_content_sha256(void **state)
{
	(void)state;
	struct sigv4_verify_params p = kms_params();
	struct treq *t = kms_request();
	const struct how with_hash = {
		.signed_headers = "content-type;host;x-amz-content-sha256;"
				  "x-amz-date;x-amz-target"
	};
	char hash[65];

	sha256_hex(t->body, t->body_len, hash);
	treq_add(t, "X-Amz-Content-Sha256", hash);
	sign(t, &with_hash);
	EXPECT(t, &p, SIGV4_OK, NULL);
	/* unsigned, right */
	sign_default(t);
	EXPECT(t, &p, SIGV4_OK, NULL);
	/* unsigned, wrong: upper case, another hash, a keyword */
	hash[0] = hash[0] == 'a' ? 'b' : 'a';
	treq_set(t, "X-Amz-Content-Sha256", hash);
	EXPECT(t, &p, SIGV4_INVALID,
	       "The provided 'x-amz-content-sha256' header does not match "
	       "what was computed.");
	treq_set(t, "X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD");
	EXPECT(t, &p, SIGV4_INVALID,
	       "The provided 'x-amz-content-sha256' header");
	treq_free(t);

	/* The suite's signed form post, with a body changed in transit. */
	{
		struct vcase c;
		struct tcred table[2];
		struct sigv4_verify_params vp;

		t = load_vector("post-x-www-form-urlencoded", &c);
		vp = vector_params(&c, table);
		EXPECT(t, &vp, SIGV4_OK, NULL);
		treq_body(t, "Param1=value2");
		EXPECT(t, &vp, SIGV4_INVALID,
		       "The provided 'x-amz-content-sha256' header");
		treq_free(t);
	}
}

/* ---- limits and arguments -------------------------------------------------
 */

static void verify_enforces_limits(void **state)
{
	(void)state;
	struct sigv4_verify_params p = kms_params();
	struct treq *t = kms_request();
	const char *too_big = "The request is malformed or exceeds the limits";
	char *big = malloc(20000);

	assert_non_null(big);
	sign_default(t);
	/* 128 headers are fine, 129 are not. */
	while (t->n < 128)
		treq_add(t, "X-Filler", "x");
	EXPECT(t, &p, SIGV4_OK, NULL);
	treq_add(t, "X-Filler", "x");
	EXPECT(t, &p, SIGV4_INVALID, too_big);
	treq_del(t, "X-Filler");
	/* One value of 16 KiB is fine, one byte more is not. */
	memset(big, 'v', 16384);
	big[16384] = '\0';
	treq_add(t, "X-Filler", big);
	EXPECT(t, &p, SIGV4_OK, NULL);
	big[16384] = 'v';
	big[16385] = '\0';
	treq_set(t, "X-Filler", big);
	EXPECT(t, &p, SIGV4_INVALID, too_big);
	/* 64 KiB of headers in all. */
	big[16384] = '\0';
	treq_set(t, "X-Filler", big);
	for (int i = 0; i < 2; i++)
		treq_add(t, "X-Filler", big);
	EXPECT(t, &p, SIGV4_OK, NULL);
	treq_add(t, "X-Filler", big);
	EXPECT(t, &p, SIGV4_INVALID, too_big);
	treq_del(t, "X-Filler");
	/* A header name of 257 bytes (treq names are shorter: patch the
	 * view). */
	memset(big, 'n', 257);
	big[257] = '\0';
	treq_add(t, "X-Filler", "x");
	{
		struct sigv4_header h[T_HEADERS];
		struct sigv4_request req = *treq_view(t);
		struct sigv4_result res;

		memcpy(h, t->h, t->n * sizeof(h[0]));
		h[t->n - 1].name = big;
		req.headers = h;
		assert_int_equal(sigv4_verify(&req, &p, &res), -EACCES);
		assert_int_equal(res.status, SIGV4_INVALID);
		big[256] = '\0';
		assert_int_equal(sigv4_verify(&req, &p, &res), 0);
	}
	treq_del(t, "X-Filler");
	/* Target of 8192 bytes is fine (the signature is not). */
	memset(t->target, 'a', 8192);
	t->target[0] = '/';
	t->target[8192] = '\0';
	EXPECT(t, &p, SIGV4_INVALID, MISMATCH);
	t->target[8192] = 'a';
	t->target[8193] = '\0';
	EXPECT(t, &p, SIGV4_INVALID, too_big);
	snprintf(t->target, sizeof(t->target), "/");
	/* Methods are tokens of at most 32 bytes. */
	snprintf(t->method, sizeof(t->method), "PO ST");
	EXPECT(t, &p, SIGV4_INVALID, too_big);
	snprintf(t->method, sizeof(t->method), "%s", "");
	EXPECT(t, &p, SIGV4_INVALID, too_big);
	memset(t->method, 'P', 33);
	t->method[33] = '\0';
	EXPECT(t, &p, SIGV4_INVALID, too_big);
	snprintf(t->method, sizeof(t->method), "POST");
	EXPECT(t, &p, SIGV4_OK, NULL);
	/* 256 query parameters are fine, 257 are not. */
	{
		size_t n = (size_t)snprintf(t->target, sizeof(t->target), "/?");

		for (int i = 0; i < 256; i++)
			n += (size_t)snprintf(t->target + n,
					      sizeof(t->target) - n, "p%d=%d&",
					      i, i);
		EXPECT(t, &p, SIGV4_INVALID, MISMATCH);
		snprintf(t->target + n, sizeof(t->target) - n, "x=1");
		EXPECT(t, &p, SIGV4_INVALID,
		       "The request target or a signed header value is "
		       "malformed.");
	}
	free(big);
	treq_free(t);
}

static void verify_rejects_bad_arguments(void **state)
{
	(void)state;
	struct sigv4_verify_params p = kms_params();
	struct treq *t = kms_request();
	struct sigv4_result res;
	const struct sigv4_request *req;

	sign_default(t);
	req = treq_view(t);
	assert_int_equal(sigv4_verify(req, &p, NULL), -EINVAL);
	assert_int_equal(sigv4_verify(NULL, &p, &res), -EINVAL);
	assert_int_equal(res.status, SIGV4_INVALID);
	assert_int_equal(sigv4_verify(req, NULL, &res), -EINVAL);
	p.lookup = NULL;
	assert_int_equal(sigv4_verify(req, &p, &res), -EINVAL);
	assert_int_equal(res.status, SIGV4_INVALID);
	p = kms_params();
	p.service = NULL;
	assert_int_equal(sigv4_verify(req, &p, &res), -EINVAL);
	p = kms_params();
	t->req.method = NULL;
	assert_int_equal(sigv4_verify(&t->req, &p, &res), -EINVAL);
	req = treq_view(t);
	t->h[0].value = NULL;
	assert_int_equal(sigv4_verify(req, &p, &res), -EINVAL);
	assert_int_equal(res.status, SIGV4_INVALID);
	req = treq_view(t);
	t->req.body = NULL;
	assert_int_equal(sigv4_verify(req, &p, &res), -EINVAL);
	req = treq_view(t);
	assert_int_equal(sigv4_verify(req, &p, &res), 0);
	treq_free(t);
}

static void status_names(void **state)
{
	(void)state;
	assert_string_equal(sigv4_status_name(SIGV4_OK), "OK");
	assert_string_equal(sigv4_status_name(SIGV4_INCOMPLETE),
			    "IncompleteSignatureException");
	assert_string_equal(sigv4_status_name(SIGV4_INVALID),
			    "InvalidSignatureException");
	assert_string_equal(sigv4_status_name(SIGV4_UNKNOWN_KEY),
			    "UnrecognizedClientException");
	assert_string_equal(sigv4_status_name(SIGV4_EXPIRED_TOKEN),
			    "ExpiredTokenException");
	assert_string_equal(sigv4_status_name((enum sigv4_status)99),
			    "InternalFailure");
}

/* ---- canonicalisation beyond the suite ------------------------------------
 */

#define EMPTY_HASH                                                             \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* The first two lines of the canonical request (path and query) of a GET
 * of target with a Host header. */
static void check_target(const char *target, bool normalize,
			 const char *want_path, const char *want_query)
{
	struct treq *t = treq_new();
	char *creq = NULL, want[4096], what[256];
	int r;

	snprintf(t->method, sizeof(t->method), "GET");
	snprintf(t->target, sizeof(t->target), "%s", target);
	treq_add(t, "Host", "h");
	r = sigv4_canonical_request(treq_view(t), "host", normalize, EMPTY_HASH,
				    &creq);
	snprintf(want, sizeof(want), "GET\n%s\n%s\nhost:h\n\nhost\n%s",
		 want_path, want_query, EMPTY_HASH);
	snprintf(what, sizeof(what), "target '%s'%s (rc %d)", target,
		 normalize ? "" : " unnormalised", r);
	if (!same(what, creq, want))
		fail();
	free(creq);
	treq_free(t);
}

static void canonical_uri_rules(void **state)
{
	(void)state;
	/* Encoding: unreserved kept, the rest %XX in upper case, a
	 * percent-encoded path encoded again (every service but S3). */
	check_target("/a%20b/c d/%2F/%7e", true, "/a%2520b/c%20d/%252F/%257e",
		     "");
	check_target("/a%20b", false, "/a%2520b", "");
	check_target("/\x01\x7f\xff:@!$&'()*+,;=", true,
		     "/%01%7F%FF%3A%40%21%24%26%27%28%29%2A%2B%2C%3B%3D", "");
	/* Normalisation. */
	check_target("", true, "/", "");
	check_target("", false, "/", "");
	check_target("/", true, "/", "");
	check_target("?x=1", true, "/", "x=1");
	check_target("/a/b/../c", true, "/a/c", "");
	check_target("/a/b/..", true, "/a/", "");
	check_target("/a/b/.", true, "/a/b/", "");
	check_target("/../a", true, "/a", "");
	check_target("/../../", true, "/", "");
	check_target("/a/./b/./", true, "/a/b/", "");
	check_target("//a///b//", true, "/a/b/", "");
	check_target("/.../a/..b/.c", true, "/.../a/..b/.c", "");
	check_target("/a/b/c/../../..", true, "/", "");
	check_target("/a/b/c/../../../d", true, "/d", "");
	check_target("/%2E%2E/a", true, "/%252E%252E/a", "");
	check_target("/a/../b", false, "/a/../b", "");
	check_target("//", false, "//", "");
}

static void canonical_query_rules(void **state)
{
	(void)state;
	check_target("/?b=2&a=1&a=0", true, "/", "a=0&a=1&b=2");
	check_target("/?a&b=", true, "/", "a=&b=");
	check_target("/?&&a=1&&", true, "/", "a=1");
	check_target("/?", true, "/", "");
	check_target("/?a=b=c", true, "/", "a=b%3Dc");
	check_target("/?k=%7e%41+b", true, "/", "k=~A%2Bb");
	check_target("/?%61=1", true, "/", "a=1");
	check_target("/?a%20b=c%2fd", true, "/", "a%20b=c%2Fd");
	check_target("/?k=%00", true, "/", "k=%00");
	/* By key first: "a" sorts before "a-", though "a=" > "a-=". */
	check_target("/?a-=2&a=1", true, "/", "a=1&a-=2");
	check_target("/?=v&a=1", true, "/", "=v&a=1");
	check_target("/p?x=1?y", true, "/p", "x=1%3Fy");
	check_target("/?Z=1&a=1&_=1&~=1&-=1&.=1&0=1", true, "/",
		     "-=1&.=1&0=1&Z=1&_=1&a=1&~=1");
}

/* The canonical headers block for the given headers, all signed. */
static void check_headers(const char *const *hdrs, const char *list,
			  const char *want_block)
{
	struct treq *t = treq_new();
	char *creq = NULL, want[4096];

	snprintf(t->method, sizeof(t->method), "GET");
	snprintf(t->target, sizeof(t->target), "/");
	for (size_t i = 0; hdrs[i]; i += 2)
		treq_add(t, hdrs[i], hdrs[i + 1]);
	assert_int_equal(sigv4_canonical_request(treq_view(t), list, true,
						 EMPTY_HASH, &creq),
			 0);
	snprintf(want, sizeof(want), "GET\n/\n\n%s\n%s\n%s", want_block, list,
		 EMPTY_HASH);
	if (!same("canonical headers", creq, want))
		fail();
	free(creq);
	treq_free(t);
}

static void canonical_header_rules(void **state)
{
	(void)state;
	static const char *const trim[] = {
		"A", "  a \t  b   c  ", "B", "\t", "C", "x\r\n\ty\n  z",
		"D", "\r\n continued",	NULL
	};
	static const char *const join[] = { "X-M", "1",	    "x-m", " 2 ",
					    "X-m", "",	    "X-M", "3",
					    "Y",   "other", NULL };

	check_headers(trim, "a;b;c;d", "a:a b c\nb:\nc:x y z\nd:continued\n");
	check_headers(join, "x-m", "x-m:1,2,,3\n");
}

static void canonical_rejects_malformed(void **state)
{
	(void)state;
	static const char *const targets[] = {
		"/?a=%zz",
		"/?a=%4",
		"/?a=%",
		"/?%g0=1",
		"a/b",
		"*",
		"http://example.com/",
	};
	static const char *const values[] = { "a\rb",	"a\nb", "a\r\n",
					      "a\r\nb", "a\n",	"\r \n" };
	static const char *const lists[] = { "",	  "Host",  "x;host",
					     "host;host", "host;", ";host",
					     "host;zz" };
	struct treq *t = treq_new();
	const struct sigv4_request *req;
	static char untouched[] = "untouched";
	char *creq = untouched;

	snprintf(t->method, sizeof(t->method), "GET");
	snprintf(t->target, sizeof(t->target), "/");
	treq_add(t, "Host", "h");
	req = treq_view(t);
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		snprintf(t->target, sizeof(t->target), "%s", targets[i]);
		assert_int_equal(sigv4_canonical_request(req, "host", true,
							 EMPTY_HASH, &creq),
				 -EINVAL);
		assert_null(creq);
	}
	snprintf(t->target, sizeof(t->target), "/");
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		assert_int_equal(sigv4_canonical_request(req, lists[i], true,
							 EMPTY_HASH, &creq),
				 -EINVAL);
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		treq_set(t, "Host", values[i]);
		req = treq_view(t);
		assert_int_equal(sigv4_canonical_request(req, "host", true,
							 EMPTY_HASH, &creq),
				 -EINVAL);
	}
	treq_set(t, "Host", "h");
	req = treq_view(t);
	/* The payload hash: 64 lower-case hex digits. */
	assert_int_equal(
		sigv4_canonical_request(req, "host", true, "abc", &creq),
		-EINVAL);
	assert_int_equal(
		sigv4_canonical_request(
			req, "host", true,
			"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
			&creq),
		-EINVAL);
	assert_int_equal(sigv4_canonical_request(req, "host", true,
						 EMPTY_HASH "0", &creq),
			 -EINVAL);
	assert_int_equal(
		sigv4_canonical_request(NULL, "host", true, EMPTY_HASH, &creq),
		-EINVAL);
	assert_int_equal(
		sigv4_canonical_request(req, NULL, true, EMPTY_HASH, &creq),
		-EINVAL);
	assert_int_equal(
		sigv4_canonical_request(req, "host", true, NULL, &creq),
		-EINVAL);
	assert_int_equal(
		sigv4_canonical_request(req, "host", true, EMPTY_HASH, NULL),
		-EINVAL);
	assert_int_equal(
		sigv4_canonical_request(req, "host", true, EMPTY_HASH, &creq),
		0);
	free(creq);
	treq_free(t);
}

static void signing_blocks_reject_bad_arguments(void **state)
{
	(void)state;
	static char untouched[] = "untouched";
	char sig[65], *sts = untouched, *long_secret;

	assert_int_equal(sigv4_string_to_sign(NULL, "s", "c", &sts), -EINVAL);
	assert_null(sts);
	assert_int_equal(sigv4_string_to_sign("d", NULL, "c", &sts), -EINVAL);
	assert_int_equal(sigv4_string_to_sign("d", "s", NULL, &sts), -EINVAL);
	assert_int_equal(sigv4_string_to_sign("d", "s", "c", NULL), -EINVAL);
	assert_int_equal(sigv4_signature(NULL, "d", "r", "s", "x", sig),
			 -EINVAL);
	assert_string_equal(sig, "");
	assert_int_equal(sigv4_signature("k", NULL, "r", "s", "x", sig),
			 -EINVAL);
	assert_int_equal(sigv4_signature("k", "d", "r", "s", NULL, sig),
			 -EINVAL);
	assert_int_equal(sigv4_signature("k", "d", "r", "s", "x", NULL),
			 -EINVAL);
	long_secret = malloc(514);
	assert_non_null(long_secret);
	memset(long_secret, 'k', 513);
	long_secret[513] = '\0';
	assert_int_equal(sigv4_signature(long_secret, "d", "r", "s", "x", sig),
			 -EINVAL);
	long_secret[512] = '\0';
	assert_int_equal(sigv4_signature(long_secret, "d", "r", "s", "x", sig),
			 0);
	assert_int_equal(strlen(sig), 64);
	free(long_secret);
}

/* ---- test list ----------------------------------------------------------- */

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(aws_test_suite),
		cmocka_unit_test(verify_accepts_kms_request),
		cmocka_unit_test(verify_accepts_component_layouts),
		cmocka_unit_test(verify_rejects_flipped_signature),
		cmocka_unit_test(verify_rejects_upper_case_signature),
		cmocka_unit_test(verify_rejects_modified_request),
		cmocka_unit_test(verify_rejects_unknown_key),
		cmocka_unit_test(verify_rejects_bad_scope),
		cmocka_unit_test(verify_rejects_clock_skew),
		cmocka_unit_test(verify_rejects_missing_authorization),
		cmocka_unit_test(verify_rejects_malformed_authorization),
		cmocka_unit_test(verify_rejects_bad_date),
		cmocka_unit_test(verify_requires_signed_headers),
		cmocka_unit_test(verify_checks_session_token),
		cmocka_unit_test(verify_rejects_expired_credential),
		cmocka_unit_test(verify_checks_content_sha256),
		cmocka_unit_test(verify_enforces_limits),
		cmocka_unit_test(verify_rejects_bad_arguments),
		cmocka_unit_test(status_names),
		cmocka_unit_test(canonical_uri_rules),
		cmocka_unit_test(canonical_query_rules),
		cmocka_unit_test(canonical_header_rules),
		cmocka_unit_test(canonical_rejects_malformed),
		cmocka_unit_test(signing_blocks_reject_bad_arguments),
	};

	return cmocka_run_group_tests_name("sigv4", tests, NULL, NULL);
}
