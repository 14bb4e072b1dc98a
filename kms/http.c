/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c — libcurl's process-wide setup and the one HTTP exchange of kms/
 * (see http.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"
#include "http.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static CURLcode result = CURLE_FAILED_INIT;

static void init(void)
{
	/* Every block curl frees is wiped first: its download buffer keeps
	 * the last response (a Plaintext, temporary credentials) until the
	 * handle goes. */
	result = curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc,
				      secmem_heap_free, secmem_heap_realloc,
				      strdup, calloc);
}

int kms_curl_global_init(void)
{
	/* pthread_once: curl_global_init is not thread-safe in every
	 * build. */
	if (pthread_once(&once, init))
		return -EIO;
	return result == CURLE_OK ? 0 : -EIO;
}

/* The answer being received, and its limit. */
struct receiving {
	struct kms_http_reply *r;
	size_t max;
	bool nomem;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct receiving *rx = arg;
	struct kms_http_reply *r = rx->r;
	size_t len = size * n;
	char *b;

	if (r->too_big || len > rx->max - r->len) {
		r->too_big = true;
		return 0; /* curl aborts the transfer */
	}
	b = secmem_realloc(r->body, r->len + len + 1);
	if (!b) {
		rx->nomem = true;
		return 0;
	}
	r->body = b;
	memcpy(r->body + r->len, data, len);
	r->len += len;
	r->body[r->len] = 0;
	return len;
}

/* Copy the value of header `name` from a raw header line, trimmed. */
static bool header_value(const char *line, size_t len, const char *name,
			 char *out, size_t outlen)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) || line[n] != ':')
		return false;
	line += n + 1;
	len -= n + 1;
	while (len && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' ||
		       line[len - 1] == ' '))
		len--;
	snprintf(out, outlen, "%.*s", (int)len, line);
	return true;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct receiving *rx = arg;
	size_t len = size * n;

	if (!header_value(data, len, "x-amzn-RequestId", rx->r->request_id,
			  sizeof(rx->r->request_id)))
		header_value(data, len, "X-Amzn-ErrorType", rx->r->error_type,
			     sizeof(rx->r->error_type));
	return len;
}

void kms_http_reply_free(struct kms_http_reply *r)
{
	secmem_free(r->body);
	memset(r, 0, sizeof(*r));
}

/* The header list, wiped before it is freed: lines may carry secrets. */
static void free_headers(struct curl_slist *list)
{
	for (struct curl_slist *l = list; l; l = l->next)
		secmem_wipe(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

CURLcode kms_http_exchange(CURL *h, const struct kms_http_request *rq,
			   struct kms_http_reply *r, char *cerr)
{
	struct receiving rx = { .r = r, .max = rq->max_body };
	bool put = !strcmp(rq->method, "PUT");
	bool post = !strcmp(rq->method, "POST");
	struct curl_slist *list = NULL, *l;
	CURL *own = NULL;
	CURLcode cc;

	kms_http_reply_free(r);
	if (cerr)
		cerr[0] = 0;
	if (kms_curl_global_init())
		return CURLE_FAILED_INIT;
	if (!h) {
		h = own = curl_easy_init();
		if (!h)
			return CURLE_OUT_OF_MEMORY;
	}
	for (size_t i = 0; i < rq->n_headers + put; i++) {
		/* A PUT without a body must not claim a form body. */
		l = curl_slist_append(list, i < rq->n_headers
						    ? rq->headers[i]
						    : "Content-Type:");
		if (!l) {
			cc = CURLE_OUT_OF_MEMORY;
			goto out;
		}
		list = l;
	}
	curl_easy_setopt(h, CURLOPT_URL, rq->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, rq->connect_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, rq->timeout_ms);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (rq->ca_bundle && rq->ca_bundle[0])
		curl_easy_setopt(h, CURLOPT_CAINFO, rq->ca_bundle);
	curl_easy_setopt(h, CURLOPT_NOPROXY, rq->no_proxy ? "*" : NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &rx);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &rx);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
	if (put) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	} else if (post) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE,
				 (long)strlen(rq->body));
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	/* Set or cleared every time: a kept handle must not sign a request
	 * it was not asked to. */
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, rq->sigv4);
	curl_easy_setopt(h, CURLOPT_USERNAME, rq->sigv4 ? rq->user : NULL);
	curl_easy_setopt(h, CURLOPT_PASSWORD, rq->sigv4 ? rq->password : NULL);
	cc = curl_easy_perform(h);
	/* Nothing of this request may outlive it in the options we set: a
	 * kept handle would hold the password and point at freed headers.
	 * (libcurl keeps its own copies of the credentials, in its state and
	 * its connection cache, until the next transfer or the handle's
	 * cleanup; its frees wipe them, and kms_client_free cleans up.) */
	curl_easy_setopt(h, CURLOPT_PASSWORD, NULL);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	if (cc == CURLE_WRITE_ERROR && rx.nomem)
		cc = CURLE_OUT_OF_MEMORY;
	if (cc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
		if (!r->body) {
			r->body = secmem_alloc(1);
			if (!r->body)
				cc = CURLE_OUT_OF_MEMORY;
		}
	}
out:
	free_headers(list);
	if (own)
		curl_easy_cleanup(own);
	return cc;
}
