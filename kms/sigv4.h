/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sigv4.h — AWS Signature Version 4: canonical request, string to sign,
 * signature, and full verification of a received request (internal to kms/).
 *
 * cmkfs-kmsd verifies every request with sigv4_verify(); the building blocks
 * are exposed so the unit tests can check each step against the published
 * AWS SigV4 test suite.  The client side signs through libcurl and does not
 * use this file.
 *
 * Thread-safety: all functions are reentrant; no global state.
 */
#ifndef CMKFS_KMS_SIGV4_H
#define CMKFS_KMS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sigv4_header {
	const char *name;  /* as received, any case */
	const char *value; /* as received: untrimmed, may contain obs-folds */
};

/* A request as received.  Headers in arrival order; a name may repeat. */
struct sigv4_request {
	const char *method; /* "POST" */
	const char *target; /* request-target: raw path and optional "?query" */
	const struct sigv4_header *headers;
	size_t n_headers;
	const void *body;
	size_t body_len;
};

/* Why a verification failed; each maps to the AWS error name given. */
enum sigv4_status {
	SIGV4_OK = 0,
	SIGV4_INCOMPLETE,    /* IncompleteSignatureException: missing or
				malformed Authorization / X-Amz-Date */
	SIGV4_INVALID,	     /* InvalidSignatureException: mismatch, wrong
				scope, skew/expired, unsigned required header */
	SIGV4_UNKNOWN_KEY,   /* UnrecognizedClientException: access key or
				session token not recognised */
	SIGV4_EXPIRED_TOKEN, /* ExpiredTokenException: temporary credential
				past its expiry */
};

/* AWS error name ("InvalidSignatureException", ...) for a status. */
const char *sigv4_status_name(enum sigv4_status st);

/* What the verifier learns about an access key from the caller. */
struct sigv4_credential {
	const char *secret;	   /* secret access key */
	const char *session_token; /* NULL when the credential has none */
	int64_t expires;	   /* epoch seconds; 0 = never */
};

/* Look up an access key id; fill *out and return true if known.  The
 * strings must stay valid until sigv4_verify returns. */
typedef bool (*sigv4_lookup_fn)(void *arg, const char *access_key_id,
				struct sigv4_credential *out);

struct sigv4_verify_params {
	const char *service; /* expected scope service, e.g. "kms" */
	int64_t now;	     /* current time, epoch seconds (injectable) */
	unsigned max_skew;   /* allowed |now - request time|, seconds */
	bool normalize_path; /* RFC 3986 dot-segment/slash normalisation
				(true for every service but S3) */
	/* Lower-case header names that must be among SignedHeaders, NULL
	 * terminated; "host" and "x-amz-date" are always required. */
	const char *const *required_signed;
	sigv4_lookup_fn lookup;
	void *lookup_arg;
};

struct sigv4_result {
	enum sigv4_status status;
	char message[256];	 /* AWS-style message for the error body; never
				    contains secrets or the expected signature */
	char access_key_id[129]; /* from the Credential, when parsed */
	char region[64];	 /* from the credential scope, when parsed */
};

/*
 * Verify req.  Returns 0 when the signature is valid (res->status ==
 * SIGV4_OK), -EACCES when it is not (res says why), -ENOMEM.
 * The signature comparison is constant-time.  The payload hash is always
 * computed from the body; an x-amz-content-sha256 header, if present, must
 * match it.  The request date comes from X-Amz-Date (basic ISO 8601,
 * "20150830T123600Z"); the scope date must equal its first 8 characters.
 * If the credential has a session token, X-Amz-Security-Token must be present
 * and equal (signed or not); if it has none, the header must be absent.
 */
int sigv4_verify(const struct sigv4_request *req,
		 const struct sigv4_verify_params *p, struct sigv4_result *res);

/* ---- building blocks (exposed for the test vectors) ------------------- */

/*
 * The canonical request for req, covering the headers named in
 * signed_headers (";"-separated, lower case, as in the Authorization
 * header), with payload_hash (64 lower-case hex chars) as its last line.
 * Returns 0 and a malloc'ed string in *out, -EINVAL on a malformed target or
 * a signed header that is absent, -ENOMEM.
 */
int sigv4_canonical_request(const struct sigv4_request *req,
			    const char *signed_headers, bool normalize_path,
			    const char *payload_hash, char **out);

/* "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256(canonical)>".
 * Returns 0 and a malloc'ed string in *out, or -ENOMEM / -EIO. */
int sigv4_string_to_sign(const char *amz_date, const char *scope,
			 const char *canonical_request, char **out);

/* Lower-case hex signature of string_to_sign under the key derived from
 * secret, date (YYYYMMDD), region and service.  Intermediate keys are wiped.
 * Returns 0 or -EIO. */
int sigv4_signature(const char *secret, const char *date8, const char *region,
		    const char *service, const char *string_to_sign,
		    char out_hex[65]);

#endif
