/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h — the one HTTP exchange of kms/ (internal): KMS requests signed
 * with SigV4 and the credential providers' metadata requests go through
 * it, so that both keep answers in secure memory, bound their size, wipe
 * the headers they sent and never leave a password in the options they set
 * (libcurl's own copies go with the next transfer or the handle's cleanup,
 * wiped by the frees kms_curl_global_init installs).
 */
#ifndef CMKFS_KMS_HTTP_H
#define CMKFS_KMS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

/* curl_global_init, once per process and thread-safe, with frees that wipe
 * (curl's receive buffers hold KMS responses, credentials included).
 * 0, or -EIO when libcurl cannot initialise. */
int kms_curl_global_init(void);

struct kms_http_request {
	const char *url;
	const char *method; /* "GET", "PUT" (empty body) or "POST" */
	const char *body;   /* POST only */
	/* Header lines; they may carry secrets (curl's copies are wiped). */
	const char *const *headers;
	size_t n_headers;
	long connect_ms, timeout_ms;
	const char *ca_bundle; /* NULL or "": the system's; the same on every
				  request of a kept handle */
	bool no_proxy;	       /* never through a proxy */
	/* SigV4 signing by libcurl ("aws:amz:REGION:SERVICE"), with the
	 * access key id and secret; NULL: unsigned. */
	const char *sigv4, *user, *password;
	size_t max_body; /* a longer answer aborts the transfer */
};

/* What one exchange brought back. */
struct kms_http_reply {
	char *body; /* secure memory, NUL-terminated; "" when empty */
	size_t len;
	long status;	     /* HTTP status, 0 without an answer */
	bool too_big;	     /* the answer exceeded max_body */
	char request_id[96]; /* x-amzn-RequestId */
	char error_type[96]; /* X-Amzn-ErrorType */
};

/*
 * One exchange on handle h (NULL: a fresh handle, cleaned up after; a
 * kept handle keeps its connection).  The reply is reset first (its old
 * body freed).  Returns libcurl's code: CURLE_OK with r->status and
 * r->body, CURLE_WRITE_ERROR with r->too_big for an answer over max_body,
 * CURLE_OUT_OF_MEMORY, or the transfer's failure, with libcurl's words in
 * cerr (CURL_ERROR_SIZE bytes, or NULL).
 */
CURLcode kms_http_exchange(CURL *h, const struct kms_http_request *rq,
			   struct kms_http_reply *r, char *cerr);

/* Free the reply's body and zero it (accepts a zeroed reply). */
void kms_http_reply_free(struct kms_http_reply *r);

#endif
