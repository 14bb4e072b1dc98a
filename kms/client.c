/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client.c — the KMS client: AWS KMS JSON 1.1 over libcurl, signed with
 * libcurl's own SigV4 (CURLOPT_AWS_SIGV4), with bounded retries of transient
 * failures and errors turned into kms_status.
 *
 * libcurl 7.88 quirks we work around: it signs X-Amz-Date itself and
 * mis-signs one set by the caller, and an empty X-Amz-Security-Token header
 * breaks the signature — so we never set the date, and add the token header
 * only when there is a token.  The body goes only through
 * CURLOPT_POSTFIELDS, which is what libcurl hashes for the signature.
 *
 * Responses are received into secure memory.  Responses carrying key
 * material (Plaintext) are never handed to json-c whole: the Plaintext
 * member is decoded straight from the secure buffer into secure memory and
 * blanked there before the rest is parsed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "http.h"
#include "creds.h"
#include "crypto.h"
#include "kms.h"
#include "util.h"

#define MAX_RESPONSE	(1u << 20)
#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS	5000

struct kms_client {
	CURL *curl;
	struct creds_provider *creds;
	char region[64];
	char endpoint[512];
	char url[560];
	char ca_bundle[1024];
	long connect_ms, timeout_ms, budget_ms;
	unsigned max_attempts;
	bool debug;
};

/* ---- errors -----------------------------------------------------------------
 */

static const struct {
	const char *type;
	enum kms_status status;
} error_types[] = {
	{ "AccessDeniedException", KMS_ACCESS_DENIED },
	{ "DisabledException", KMS_DISABLED },
	{ "KMSInvalidStateException", KMS_INVALID_STATE },
	{ "NotFoundException", KMS_NOT_FOUND },
	{ "InvalidCiphertextException", KMS_INVALID_CIPHERTEXT },
	{ "IncorrectKeyException", KMS_INCORRECT_KEY },
	{ "InvalidSignatureException", KMS_SIGNATURE },
	{ "IncompleteSignatureException", KMS_SIGNATURE },
	{ "UnrecognizedClientException", KMS_SIGNATURE },
	{ "ExpiredTokenException", KMS_SIGNATURE },
	{ "InvalidClientTokenId", KMS_SIGNATURE },
	{ "SignatureDoesNotMatch", KMS_SIGNATURE },
	{ "ValidationException", KMS_VALIDATION },
	{ "SerializationException", KMS_VALIDATION },
	{ "UnsupportedOperationException", KMS_UNSUPPORTED },
	{ "UnknownOperationException", KMS_UNSUPPORTED },
	{ "ThrottlingException", KMS_THROTTLED },
	{ "TooManyRequestsException", KMS_THROTTLED },
	{ "KMSInternalException", KMS_SERVICE },
	{ "DependencyTimeoutException", KMS_SERVICE },
	{ "KeyUnavailableException", KMS_SERVICE },
	{ "InternalFailure", KMS_SERVICE },
	{ "ServiceUnavailable", KMS_SERVICE },
};

bool kms_status_transient(enum kms_status st)
{
	return st == KMS_THROTTLED || st == KMS_SERVICE || st == KMS_NETWORK ||
	       st == KMS_TIMEOUT;
}

const char *kms_status_name(enum kms_status st)
{
	static const char *const names[] = {
		[KMS_OK] = "ok",
		[KMS_ACCESS_DENIED] = "access-denied",
		[KMS_DISABLED] = "disabled",
		[KMS_INVALID_STATE] = "invalid-state",
		[KMS_NOT_FOUND] = "not-found",
		[KMS_INVALID_CIPHERTEXT] = "invalid-ciphertext",
		[KMS_INCORRECT_KEY] = "incorrect-key",
		[KMS_SIGNATURE] = "signature",
		[KMS_VALIDATION] = "validation",
		[KMS_UNSUPPORTED] = "unsupported",
		[KMS_CLIENT_ERROR] = "client-error",
		[KMS_THROTTLED] = "throttled",
		[KMS_SERVICE] = "service-error",
		[KMS_NETWORK] = "network",
		[KMS_TIMEOUT] = "timeout",
		[KMS_CONFIG] = "config",
		[KMS_PROTOCOL] = "protocol",
	};

	if ((unsigned)st < sizeof(names) / sizeof(names[0]) && names[st])
		return names[st];
	return "unknown";
}

void kms_error_format(const struct kms_error *err, char *out, size_t len)
{
	int n = snprintf(out, len, "%s: %s", err->type[0] ? err->type : "error",
			 err->message);

	if (n >= 0 && (size_t)n < len && err->request_id[0])
		snprintf(out + n, len - (size_t)n, " (request id %s)",
			 err->request_id);
}

/* The errno a status stands for at the module's edge. */
static int status_errno(enum kms_status st)
{
	switch (st) {
	case KMS_OK:
		return 0;
	case KMS_ACCESS_DENIED:
	case KMS_SIGNATURE:
		return -EACCES;
	case KMS_NOT_FOUND:
		return -ENOENT;
	case KMS_DISABLED:
	case KMS_INVALID_STATE:
		return -EKEYREVOKED;
	case KMS_INVALID_CIPHERTEXT:
	case KMS_INCORRECT_KEY:
		return -EBADMSG;
	case KMS_TIMEOUT:
		return -ETIMEDOUT;
	case KMS_NETWORK:
		return -EHOSTUNREACH;
	case KMS_CONFIG:
	case KMS_VALIDATION:
		return -EINVAL;
	case KMS_PROTOCOL:
		return -EPROTO;
	default:
		return -EIO;
	}
}

/* "ns#Name:suffix" -> "Name", as the AWS protocols allow. */
static void clean_type(const char *in, char *out, size_t len)
{
	const char *hash = strchr(in, '#');
	size_t n;

	if (hash)
		in = hash + 1;
	n = strcspn(in, ":");
	snprintf(out, len, "%.*s", (int)n, in);
}

static enum kms_status classify(const char *type, long http)
{
	for (size_t i = 0; i < sizeof(error_types) / sizeof(error_types[0]);
	     i++)
		if (!strcmp(error_types[i].type, type))
			return error_types[i].status;
	if (http == 429)
		return KMS_THROTTLED;
	if (http >= 500)
		return KMS_SERVICE;
	return KMS_CLIENT_ERROR;
}

/* ---- setup
 * ------------------------------------------------------------------- */

const char *kms_arn_region(const char *key_id, char *region, size_t len)
{
	const char *p, *end;

	if (!key_id || strncmp(key_id, "arn:", 4))
		return NULL;
	/* arn:PARTITION:kms:REGION:ACCOUNT:... */
	p = strchr(key_id + 4, ':');
	if (!p || strncmp(p, ":kms:", 5))
		return NULL;
	p += 5;
	end = strchr(p, ':');
	if (!end || (size_t)(end - p) >= len)
		return NULL;
	snprintf(region, len, "%.*s", (int)(end - p), p);
	return region;
}

bool kms_region_valid(const char *region)
{
	size_t words = 0, n;
	const char *p = region;

	if (!region || strlen(region) > 32)
		return false;
	/* [a-z]+(-[a-z]+)*-[0-9]+, two words at least */
	for (;;) {
		n = strspn(p, "abcdefghijklmnopqrstuvwxyz");
		if (!n)
			break;
		words++;
		p += n;
		if (*p++ != '-')
			return false;
	}
	n = strspn(p, "0123456789");
	return words >= 2 && n >= 1 && !p[n];
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

int kms_client_new(struct kms_client **out, const struct kms_options *opt,
		   struct kms_error *err)
{
	struct creds_options co = { 0 };
	struct kms_client *c;
	const char *v;
	char setting[512];

	memset(err, 0, sizeof(*err));
	*out = NULL;
	if (kms_curl_global_init())
		return kms_set_error(err, KMS_CONFIG, "CurlInit",
				     "libcurl failed to initialise"),
		       -EIO;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	co.profile = opt->profile;
	if (creds_provider_new(&c->creds, &co)) {
		free(c);
		return -ENOMEM;
	}

	/* Region, as the SDKs look for it. */
	if ((v = opt->region) || (v = env("AWS_REGION")) ||
	    (v = env("AWS_DEFAULT_REGION")))
		snprintf(c->region, sizeof(c->region), "%s", v);
	else if (creds_profile_setting(c->creds, "region", setting,
				       sizeof(setting)) == 0)
		snprintf(c->region, sizeof(c->region), "%.63s", setting);
	if (!c->region[0]) {
		kms_client_free(c);
		return kms_set_error(
			       err, KMS_CONFIG, "NoRegion",
			       "no AWS region: use --region, set AWS_REGION, "
			       "or set region in profile '%s'",
			       opt->profile ? opt->profile : "default"),
		       -EINVAL;
	}
	if (!kms_region_valid(c->region)) {
		kms_client_free(c);
		return kms_set_error(err, KMS_CONFIG, "BadRegion",
				     "'%.64s' is not an AWS region name (like "
				     "us-east-1)",
				     c->region),
		       -EINVAL;
	}
	/* Endpoint: explicit, service-specific, global, profile, AWS. */
	if ((v = opt->endpoint) || (v = env("AWS_ENDPOINT_URL_KMS")) ||
	    (v = env("AWS_ENDPOINT_URL")))
		snprintf(c->endpoint, sizeof(c->endpoint), "%s", v);
	else if (creds_profile_setting(c->creds, "endpoint_url", setting,
				       sizeof(setting)) == 0)
		snprintf(c->endpoint, sizeof(c->endpoint), "%s", setting);
	else
		snprintf(c->endpoint, sizeof(c->endpoint),
			 "https://kms.%s.amazonaws.com", c->region);
	if (strncmp(c->endpoint, "https://", 8) &&
	    strncmp(c->endpoint, "http://", 7)) {
		kms_client_free(c);
		return kms_set_error(err, KMS_CONFIG, "BadEndpoint",
				     "KMS endpoint '%s' is not an http(s) URL",
				     opt->endpoint ? opt->endpoint
						   : "(from the "
						     "environment)"),
		       -EINVAL;
	}
	/* The service answers on "/": drop a trailing slash before adding
	 * one. */
	snprintf(c->url, sizeof(c->url), "%.*s/",
		 (int)(strlen(c->endpoint) -
		       (c->endpoint[strlen(c->endpoint) - 1] == '/')),
		 c->endpoint);
	if ((v = env("AWS_CA_BUNDLE")))
		snprintf(c->ca_bundle, sizeof(c->ca_bundle), "%s", v);
	c->connect_ms =
		opt->connect_timeout_ms > 0 ? opt->connect_timeout_ms : 3000;
	c->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : 10000;
	c->max_attempts = opt->max_attempts ? opt->max_attempts : 5;
	c->budget_ms = opt->retry_budget_ms > 0 ? opt->retry_budget_ms : 30000;
	c->debug = opt->debug;
	c->curl = curl_easy_init();
	if (!c->curl) {
		kms_client_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void kms_client_free(struct kms_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	creds_provider_free(c->creds);
	free(c);
}

const char *kms_client_region(const struct kms_client *c)
{
	return c->region;
}

const char *kms_client_endpoint(const struct kms_client *c)
{
	return c->endpoint;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Parse an error body ({"__type": ..., "message"|"Message": ...}) and the
 * X-Amzn-ErrorType header into err. */
static void parse_error(const struct kms_http_reply *r, long http,
			struct kms_error *err)
{
	json_object *o = NULL, *v;
	char raw[96] = "";

	if (r->body && r->len)
		o = json_tokener_parse((const char *)r->body);
	if (o && json_object_object_get_ex(o, "__type", &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(raw, sizeof(raw), "%s", json_object_get_string(v));
	else if (r->error_type[0])
		snprintf(raw, sizeof(raw), "%s", r->error_type);
	clean_type(raw, err->type, sizeof(err->type));
	if (!err->type[0])
		snprintf(err->type, sizeof(err->type), "HTTP%ld", http);
	err->message[0] = 0;
	if (o &&
	    (json_object_object_get_ex(o, "message", &v) ||
	     json_object_object_get_ex(o, "Message", &v)) &&
	    json_object_is_type(v, json_type_string))
		snprintf(err->message, sizeof(err->message), "%s",
			 json_object_get_string(v));
	if (!err->message[0])
		snprintf(err->message, sizeof(err->message),
			 "the service answered HTTP %ld", http);
	err->status = classify(err->type, http);
	json_object_put(o);
}

/* Map a transfer failure (no HTTP answer) into err. */
static void transfer_error(CURLcode cc, const char *url, struct kms_error *err)
{
	enum kms_status st = KMS_NETWORK;

	if (cc == CURLE_OPERATION_TIMEDOUT)
		st = KMS_TIMEOUT;
	/* Retrying cannot fix a bad URL or a certificate that fails. */
	else if (cc == CURLE_URL_MALFORMAT ||
		 cc == CURLE_UNSUPPORTED_PROTOCOL ||
		 cc == CURLE_PEER_FAILED_VERIFICATION ||
		 cc == CURLE_SSL_CACERT_BADFILE)
		st = KMS_CONFIG;
	kms_set_error(err, st, st == KMS_TIMEOUT ? "Timeout" : "NetworkError",
		      "cannot reach KMS at %s: %s", url,
		      curl_easy_strerror(cc));
}

/* Sleep before retry `attempt` (1-based): full jitter over a capped
 * exponential, so clients that failed together do not retry together. */
static long backoff_ms(unsigned attempt)
{
	long cap = BACKOFF_BASE_MS << (attempt < 6 ? attempt : 6);
	uint32_t r = 0;

	if (cap > BACKOFF_CAP_MS)
		cap = BACKOFF_CAP_MS;
	if (crypto_random(&r, sizeof(r)))
		r = (uint32_t)rand();
	return (long)(r % (uint32_t)(cap + 1));
}

static int attempt(struct kms_client *c, const char *action, const char *body,
		   const struct kms_creds *cr, struct kms_http_reply *r,
		   long *http, struct kms_error *err)
{
	char target[128], sigv4[128], *token_hdr = NULL;
	/* No "Expect:" header tricks: libcurl 7.88 would sign the empty
	 * header it never sends.  Bodies stay far below the size at which it
	 * adds "Expect: 100-continue". */
	const char *headers[3] = { "Content-Type: application/x-amz-json-1.1",
				   target, NULL };
	struct kms_http_request rq = {
		.url = c->url,
		.method = "POST",
		.body = body,
		.headers = headers,
		.n_headers = 2,
		.connect_ms = c->connect_ms,
		.timeout_ms = c->timeout_ms,
		.ca_bundle = c->ca_bundle,
		.sigv4 = sigv4,
		.user = cr->access_key_id,
		.password = cr->secret,
		.max_body = MAX_RESPONSE,
	};
	CURLcode cc;

	snprintf(target, sizeof(target), "X-Amz-Target: TrentService.%s",
		 action);
	snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:kms", c->region);
	if (cr->session_token[0]) {
		size_t n = strlen(cr->session_token) + 32;

		token_hdr = secmem_alloc(n);
		if (!token_hdr)
			return kms_set_error(err, KMS_CONFIG, "OutOfMemory",
					     "out of memory"),
			       -ENOMEM;
		snprintf(token_hdr, n, "X-Amz-Security-Token: %s",
			 cr->session_token);
		headers[rq.n_headers++] = token_hdr;
	}
	cc = kms_http_exchange(c->curl, &rq, r, NULL);
	secmem_free(token_hdr);
	*http = 0;
	if (cc == CURLE_WRITE_ERROR && r->too_big) {
		kms_set_error(err, KMS_PROTOCOL, "ResponseTooLarge",
			      "the KMS response exceeds %u bytes",
			      MAX_RESPONSE);
		return -EPROTO;
	}
	if (cc == CURLE_OUT_OF_MEMORY)
		return kms_set_error(err, KMS_CONFIG, "OutOfMemory",
				     "out of memory"),
		       -ENOMEM;
	if (cc != CURLE_OK) {
		transfer_error(cc, c->url, err);
		return -1;
	}
	*http = r->status;
	snprintf(err->request_id, sizeof(err->request_id), "%s", r->request_id);
	err->http_status = *http;
	if (*http != 200) {
		parse_error(r, *http, err);
		return -1;
	}
	return 0;
}

/*
 * Send action with body, retrying transient failures within the attempt
 * and time budgets.  On success the response is in *r (secure memory).
 */
static int send_request(struct kms_client *c, const char *action,
			const char *body, struct kms_http_reply *r,
			struct kms_error *err)
{
	struct kms_creds *cr = NULL;
	struct timespec t0;
	char why[512];
	long http;
	int rc;

	memset(err, 0, sizeof(*err));
	memset(r, 0, sizeof(*r));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned n = 1;; n++) {
		long wait;

		rc = creds_get(c->creds, &cr, why, sizeof(why));
		if (rc) {
			kms_set_error(err,
				      rc == -EIO || rc == -ETIMEDOUT
					      ? KMS_NETWORK
					      : KMS_CONFIG,
				      "NoCredentials", "%s", why);
		} else {
			kms_http_reply_free(r);
			err->attempts = n;
			rc = attempt(c, action, body, cr, r, &http, err);
			creds_release(cr);
			cr = NULL;
			if (c->debug)
				fprintf(stderr,
					"kms: %s attempt %u: %s%s%s (request id "
					"%s) after %ld ms\n",
					action, n, rc ? err->type : "OK",
					rc ? ": " : "", rc ? err->message : "",
					err->request_id[0] ? err->request_id
							   : "-",
					ms_since(&t0));
			if (!rc)
				return 0;
		}
		if (rc == -ENOMEM || rc == -EPROTO ||
		    !kms_status_transient(err->status) || n >= c->max_attempts)
			break;
		wait = backoff_ms(n);
		if (ms_since(&t0) + wait >= c->budget_ms)
			break;
		usleep((useconds_t)wait * 1000);
	}
	kms_http_reply_free(r);
	if (err->attempts > 1 && kms_status_transient(err->status)) {
		size_t l = strlen(err->message);

		snprintf(err->message + l, sizeof(err->message) - l,
			 " (gave up after %u attempts)", err->attempts);
	}
	return status_errno(err->status) ? status_errno(err->status) : -EIO;
}

/* ---- generic call
 * ------------------------------------------------------------ */

int kms_call(struct kms_client *c, const char *action, const char *body,
	     char **response, struct kms_error *err)
{
	struct kms_http_reply r;
	int rc;

	*response = NULL;
	rc = send_request(c, action, body && *body ? body : "{}", &r, err);
	if (rc)
		return rc;
	*response = strdup(r.len ? (const char *)r.body : "{}");
	kms_http_reply_free(&r);
	return *response ? 0 : -ENOMEM;
}

/* ---- typed calls
 * ------------------------------------------------------------- */

/* Fail before sending when an ARN names another region than ours. */
static int check_region(struct kms_client *c, const char *key_id,
			struct kms_error *err)
{
	char region[64];

	memset(err, 0, sizeof(*err));
	if (kms_arn_region(key_id, region, sizeof(region)) &&
	    strcmp(region, c->region))
		return kms_set_error(
			       err, KMS_CONFIG, "RegionMismatch",
			       "the key %s is in region %s, but this client "
			       "uses region %s: use --region %s (or "
			       "AWS_REGION)",
			       key_id, region, c->region, region),
		       -EINVAL;
	return 0;
}

static void add_context(json_object *req, const char *name,
			const struct kms_kv *ctx, size_t n)
{
	json_object *o;

	if (!n)
		return;
	o = json_object_new_object();
	for (size_t i = 0; i < n; i++)
		json_object_object_add(o, ctx[i].key,
				       json_object_new_string(ctx[i].value));
	json_object_object_add(req, name, o);
}

static void add_blob(json_object *req, const char *name, const uint8_t *blob,
		     size_t len)
{
	char *b64 = malloc(B64_ENCODED_SIZE(len));

	if (!b64)
		return;
	b64_encode(blob, len, b64);
	json_object_object_add(req, name, json_object_new_string(b64));
	free(b64);
}

/* Serialise req and send it. */
static int send_json(struct kms_client *c, const char *action, json_object *req,
		     struct kms_http_reply *r, struct kms_error *err)
{
	const char *body = json_object_to_json_string_ext(
		req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	if (!body)
		return kms_set_error(err, KMS_CONFIG, "OutOfMemory",
				     "out of memory"),
		       -ENOMEM;
	return send_request(c, action, body, r, err);
}

/* Skip a JSON string starting at s[i] == '"'; returns the index after the
 * closing quote, or 0 on malformed input. */
static size_t skip_string(const char *s, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (s[i] == '\\') {
			i++;
			continue;
		}
		if (s[i] == '"')
			return i + 1;
	}
	return 0;
}

/* Skip one JSON value (bounded nesting); index after it, or 0. */
static size_t skip_value(const char *s, size_t len, size_t i)
{
	int depth = 0;

	do {
		while (i < len && strchr(" \t\r\n", s[i]))
			i++;
		if (i >= len)
			return 0;
		if (s[i] == '"') {
			i = skip_string(s, len, i);
			if (!i)
				return 0;
		} else if (s[i] == '{' || s[i] == '[') {
			if (++depth > 64)
				return 0;
			i++;
			continue;
		} else if (s[i] == '}' || s[i] == ']') {
			depth--;
			i++;
		} else if (s[i] == ',' || s[i] == ':') {
			i++;
			continue;
		} else {
			while (i < len && !strchr(",}] \t\r\n", s[i]))
				i++;
		}
	} while (depth > 0);
	return i;
}

/*
 * Find the top-level string member `name` of the JSON object in r, decode
 * its base64 into secure memory (*out, *out_len) and overwrite the value in
 * r with 'A's, so that json-c never sees it.  -ENOENT if absent, -EPROTO
 * if malformed.
 */
static int take_secret(struct kms_http_reply *r, const char *name,
		       uint8_t **out, size_t *out_len)
{
	char *s = (char *)r->body, *b64 = NULL;
	size_t len = r->len, i = 0, n = strlen(name);
	int rc = -ENOENT;

	while (i < len && strchr(" \t\r\n", s[i]))
		i++;
	if (i >= len || s[i++] != '{')
		return -EPROTO;
	for (;;) {
		size_t key, key_end, val, val_end, k = 0;

		while (i < len && strchr(" \t\r\n,", s[i]))
			i++;
		if (i >= len)
			return -EPROTO;
		if (s[i] == '}')
			return rc;
		if (s[i] != '"')
			return -EPROTO;
		key = i + 1;
		key_end = skip_string(s, len, i);
		if (!key_end)
			return -EPROTO;
		i = key_end;
		while (i < len && strchr(" \t\r\n", s[i]))
			i++;
		if (i >= len || s[i++] != ':')
			return -EPROTO;
		while (i < len && strchr(" \t\r\n", s[i]))
			i++;
		val = i;
		val_end = skip_value(s, len, i);
		if (!val_end)
			return -EPROTO;
		i = val_end;
		if (key_end - 1 - key != n || memcmp(s + key, name, n) ||
		    s[val] != '"')
			continue;
		if (*out) { /* a second Plaintext: not what KMS sends */
			secmem_free(*out);
			*out = NULL;
			return -EPROTO;
		}
		/* Unescape into secure memory: base64 has no escapes but
		 * "\/", which JSON encoders may emit for '/'. */
		b64 = secmem_alloc(val_end - val);
		if (!b64)
			return -ENOMEM;
		for (size_t j = val + 1; j < val_end - 1; j++) {
			if (s[j] == '\\' && j + 1 < val_end - 1 &&
			    s[j + 1] == '/')
				j++;
			else if (s[j] == '\\') {
				secmem_free(b64);
				return -EPROTO;
			}
			b64[k++] = s[j];
		}
		*out = secmem_alloc(B64_DECODED_MAX(k) + 1);
		if (!*out) {
			secmem_free(b64);
			return -ENOMEM;
		}
		{
			long d = b64_decode(b64, k, *out);

			secmem_free(b64);
			if (d < 0) {
				secmem_free(*out);
				*out = NULL;
				return -EPROTO;
			}
			*out_len = (size_t)d;
		}
		memset(s + val + 1, 'A', val_end - val - 2);
		rc = 0;
	}
}

/* Parse what remains of r (after take_secret) as a JSON object. */
static json_object *parse_reply(const struct kms_http_reply *r)
{
	json_object *o =
		r->body ? json_tokener_parse((const char *)r->body) : NULL;

	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static const char *get_string(json_object *o, const char *name)
{
	json_object *v;

	if (!json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Decode the base64 member `name` of o into a malloc'ed buffer. */
static int get_blob(json_object *o, const char *name, uint8_t **out,
		    size_t *len)
{
	const char *s = get_string(o, name);
	long n;

	if (!s)
		return -EPROTO;
	*out = malloc(B64_DECODED_MAX(strlen(s)) + 1);
	if (!*out)
		return -ENOMEM;
	n = b64_decode(s, strlen(s), *out);
	if (n < 1) {
		free(*out);
		*out = NULL;
		return -EPROTO;
	}
	*len = (size_t)n;
	return 0;
}

static int protocol_error(struct kms_error *err, const char *action)
{
	return kms_set_error(err, KMS_PROTOCOL, "MalformedResponse",
			     "the %s response is not what KMS sends", action),
	       -EPROTO;
}

int kms_generate_data_key(struct kms_client *c, const char *key_id,
			  const struct kms_kv *ctx, size_t n_ctx, size_t nbytes,
			  uint8_t **plaintext, uint8_t **blob, size_t *blob_len,
			  struct kms_error *err)
{
	json_object *req, *resp = NULL;
	struct kms_http_reply r;
	size_t pt_len = 0;
	int rc;

	*plaintext = NULL;
	*blob = NULL;
	rc = check_region(c, key_id, err);
	if (rc)
		return rc;
	req = json_object_new_object();
	json_object_object_add(req, "KeyId", json_object_new_string(key_id));
	json_object_object_add(req, "NumberOfBytes",
			       json_object_new_int64((int64_t)nbytes));
	add_context(req, "EncryptionContext", ctx, n_ctx);
	rc = send_json(c, "GenerateDataKey", req, &r, err);
	json_object_put(req);
	if (rc)
		return rc;
	if (take_secret(&r, "Plaintext", plaintext, &pt_len) ||
	    pt_len != nbytes || !(resp = parse_reply(&r)) ||
	    get_blob(resp, "CiphertextBlob", blob, blob_len)) {
		secmem_free(*plaintext);
		*plaintext = NULL;
		rc = protocol_error(err, "GenerateDataKey");
	}
	json_object_put(resp);
	kms_http_reply_free(&r);
	return rc;
}

int kms_decrypt(struct kms_client *c, const char *key_id,
		const struct kms_kv *ctx, size_t n_ctx, const uint8_t *blob,
		size_t blob_len, uint8_t **plaintext, size_t *pt_len,
		struct kms_error *err)
{
	json_object *req;
	struct kms_http_reply r;
	int rc;

	*plaintext = NULL;
	rc = check_region(c, key_id, err);
	if (rc)
		return rc;
	req = json_object_new_object();
	add_blob(req, "CiphertextBlob", blob, blob_len);
	if (key_id)
		json_object_object_add(req, "KeyId",
				       json_object_new_string(key_id));
	add_context(req, "EncryptionContext", ctx, n_ctx);
	rc = send_json(c, "Decrypt", req, &r, err);
	json_object_put(req);
	if (rc)
		return rc;
	if (take_secret(&r, "Plaintext", plaintext, pt_len)) {
		secmem_free(*plaintext);
		*plaintext = NULL;
		rc = protocol_error(err, "Decrypt");
	}
	kms_http_reply_free(&r);
	return rc;
}

int kms_encrypt(struct kms_client *c, const char *key_id,
		const struct kms_kv *ctx, size_t n_ctx,
		const uint8_t *plaintext, size_t pt_len, uint8_t **blob,
		size_t *blob_len, struct kms_error *err)
{
	json_object *req, *resp;
	struct kms_http_reply r;
	const char *rest;
	char *body;
	size_t n;
	int rc;

	*blob = NULL;
	rc = check_region(c, key_id, err);
	if (rc)
		return rc;
	if (pt_len > 4096)
		return kms_set_error(err, KMS_VALIDATION, "TooLarge",
				     "Encrypt takes at most 4096 bytes"),
		       -EINVAL;
	/* The request without its plaintext goes through json-c (whose
	 * buffers are not wiped); the plaintext is put in front of it in
	 * secure memory: {"Plaintext":"<base64>", + the rest after its '{'. */
	req = json_object_new_object();
	json_object_object_add(req, "KeyId", json_object_new_string(key_id));
	add_context(req, "EncryptionContext", ctx, n_ctx);
	rest = json_object_to_json_string_ext(
		req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	n = rest ? 16 + B64_ENCODED_SIZE(pt_len) + strlen(rest) : 0;
	body = n ? secmem_alloc(n) : NULL;
	if (!body) {
		json_object_put(req);
		return kms_set_error(err, KMS_CONFIG, "OutOfMemory",
				     "out of memory"),
		       -ENOMEM;
	}
	snprintf(body, n, "{\"Plaintext\":\"");
	b64_encode(plaintext, pt_len, body + strlen(body));
	snprintf(body + strlen(body), n - strlen(body), "\",%s", rest + 1);
	json_object_put(req);
	rc = send_request(c, "Encrypt", body, &r, err);
	secmem_free(body);
	if (rc)
		return rc;
	resp = parse_reply(&r);
	if (!resp || get_blob(resp, "CiphertextBlob", blob, blob_len))
		rc = protocol_error(err, "Encrypt");
	json_object_put(resp);
	kms_http_reply_free(&r);
	return rc;
}

int kms_re_encrypt(struct kms_client *c, const char *src_key,
		   const struct kms_kv *src_ctx, size_t n_src,
		   const uint8_t *blob, size_t blob_len, const char *dst_key,
		   const struct kms_kv *dst_ctx, size_t n_dst, uint8_t **out,
		   size_t *out_len, struct kms_error *err)
{
	json_object *req, *resp;
	struct kms_http_reply r;
	int rc;

	*out = NULL;
	rc = check_region(c, src_key, err);
	if (!rc)
		rc = check_region(c, dst_key, err);
	if (rc)
		return rc;
	req = json_object_new_object();
	add_blob(req, "CiphertextBlob", blob, blob_len);
	if (src_key)
		json_object_object_add(req, "SourceKeyId",
				       json_object_new_string(src_key));
	json_object_object_add(req, "DestinationKeyId",
			       json_object_new_string(dst_key));
	add_context(req, "SourceEncryptionContext", src_ctx, n_src);
	add_context(req, "DestinationEncryptionContext", dst_ctx, n_dst);
	rc = send_json(c, "ReEncrypt", req, &r, err);
	json_object_put(req);
	if (rc)
		return rc;
	resp = parse_reply(&r);
	if (!resp || get_blob(resp, "CiphertextBlob", out, out_len))
		rc = protocol_error(err, "ReEncrypt");
	json_object_put(resp);
	kms_http_reply_free(&r);
	return rc;
}

static void copy_field(json_object *o, const char *name, char *out, size_t len)
{
	const char *s = get_string(o, name);

	snprintf(out, len, "%s", s ? s : "");
}

int kms_describe_key(struct kms_client *c, const char *key_id,
		     struct kms_key_info *out, struct kms_error *err)
{
	json_object *req, *resp, *md, *v;
	struct kms_http_reply r;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = check_region(c, key_id, err);
	if (rc)
		return rc;
	req = json_object_new_object();
	json_object_object_add(req, "KeyId", json_object_new_string(key_id));
	rc = send_json(c, "DescribeKey", req, &r, err);
	json_object_put(req);
	if (rc)
		return rc;
	resp = parse_reply(&r);
	if (!resp || !json_object_object_get_ex(resp, "KeyMetadata", &md) ||
	    !get_string(md, "Arn")) {
		rc = protocol_error(err, "DescribeKey");
		goto out;
	}
	copy_field(md, "Arn", out->arn, sizeof(out->arn));
	copy_field(md, "KeyId", out->key_id, sizeof(out->key_id));
	copy_field(md, "AWSAccountId", out->account, sizeof(out->account));
	copy_field(md, "KeyState", out->state, sizeof(out->state));
	copy_field(md, "KeySpec", out->spec, sizeof(out->spec));
	if (!out->spec[0])
		copy_field(md, "CustomerMasterKeySpec", out->spec,
			   sizeof(out->spec));
	copy_field(md, "KeyUsage", out->usage, sizeof(out->usage));
	copy_field(md, "Origin", out->origin, sizeof(out->origin));
	copy_field(md, "KeyManager", out->manager, sizeof(out->manager));
	out->enabled = json_object_object_get_ex(md, "Enabled", &v) &&
		       json_object_get_boolean(v);
	if (json_object_object_get_ex(md, "DeletionDate", &v))
		out->deletion_date = (int64_t)json_object_get_double(v);
out:
	json_object_put(resp);
	kms_http_reply_free(&r);
	return rc;
}
