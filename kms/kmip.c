/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kmip.c — a KMIP 1.4 client: one request per message over mutually
 * authenticated TLS (1.2 or later, the server's certificate checked
 * against the given CA and its name against the host), TTLV encoded
 * (ttlv.c).  The operations cmkfs needs: Encrypt and Decrypt with AES-GCM
 * and additional authenticated data (the keyslot secret's wrapping), and
 * Get Attributes (is the key fit).
 *
 * TLS goes through libcurl's "connect only" mode (curl_easy_send/recv on
 * the connection it set up), so that the one TLS stack of kms/, libcurl on
 * OpenSSL, does certificates, verification and versions here too.
 *
 * Every response is hostile input: its size is bounded before it is read,
 * it is decoded strictly, and every field used is checked for its type
 * and length before it is.  What a server says in words (Result Message)
 * reaches the user only as printable ASCII.
 */
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "crypto.h"
#include "http.h"
#include "kms.h"
#include "ttlv.h"
#include "util.h"

/* Tags (KMIP 1.4, section 9.1.3.1). */
#define T_ATTRIBUTE	     0x420008
#define T_ATTRIBUTE_NAME     0x42000A
#define T_ATTRIBUTE_VALUE    0x42000B
#define T_BATCH_COUNT	     0x42000D
#define T_BATCH_ITEM	     0x42000F
#define T_BLOCK_CIPHER_MODE  0x420011
#define T_CRYPTO_ALGORITHM   0x420028
#define T_CRYPTO_LENGTH	     0x42002A
#define T_CRYPTO_PARAMETERS  0x42002B
#define T_CRYPTO_USAGE_MASK  0x42002C
#define T_IV_COUNTER_NONCE   0x42003D
#define T_OBJECT_TYPE	     0x420057
#define T_OPERATION	     0x42005C
#define T_PROTOCOL_VERSION   0x420069
#define T_PROTOCOL_MAJOR     0x42006A
#define T_PROTOCOL_MINOR     0x42006B
#define T_REQUEST_HEADER     0x420077
#define T_REQUEST_MESSAGE    0x420078
#define T_REQUEST_PAYLOAD    0x420079
#define T_RESPONSE_HEADER    0x42007A
#define T_RESPONSE_MESSAGE   0x42007B
#define T_RESPONSE_PAYLOAD   0x42007C
#define T_RESULT_MESSAGE     0x42007D
#define T_RESULT_REASON	     0x42007E
#define T_RESULT_STATUS	     0x42007F
#define T_STATE		     0x42008D
#define T_UNIQUE_IDENTIFIER  0x420094
#define T_DATA		     0x4200C2
#define T_TAG_LENGTH	     0x4200CE
#define T_AE_ADDITIONAL_DATA 0x4200FE
#define T_AE_TAG	     0x4200FF

/* Operations, result statuses and reasons, modes (section 9.1.3.2). */
#define OP_GET_ATTRIBUTES 0x0B
#define OP_ENCRYPT	  0x1F
#define OP_DECRYPT	  0x20
#define STATUS_SUCCESS	  0

/* The largest answer taken: what cmkfs asks for fits in a few hundred
 * bytes, and an answer is read into locked memory. */
#define KMIP_MAX_RESPONSE ((size_t)64 << 10)
#define MODE_GCM	  9
#define ALG_AES		  3

struct kmip_client {
	CURL *curl; /* NULL after a connection failed */
	curl_socket_t fd;
	long timeout_ms, connect_timeout_ms;
	unsigned max_attempts;
	long retry_budget_ms;
	int64_t first_attempt; /* of the request under way */
	char host[256];
	unsigned port;
	char files[3][300]; /* certificate, key, CA */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A curl failure of the connection as a status: what the peer did (or
 * failed to) is an outage; what our own files say is configuration. */
static enum kms_status curl_status(CURLcode c)
{
	switch (c) {
	case CURLE_OPERATION_TIMEDOUT:
		return KMS_TIMEOUT;
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_URL_MALFORMAT:
	case CURLE_OUT_OF_MEMORY:
		return KMS_CONFIG;
	default:
		return KMS_NETWORK;
	}
}

/* The three files of o (cert, key, ca), each given, else the
 * environment's, else the default in KMIP_DEFAULT_DIR, into files; each
 * there, and the private key private: 0, or -errno with err said (what to
 * set, or the chmod to run). */
static int identity(const struct kmip_options *o, char files[3][300],
		    struct kms_error *err)
{
	static const char *const what[] = { "certificate", "private key",
					    "CA certificate" };
	static const char *const env[] = { "CMKFS_KMIP_CERT", "CMKFS_KMIP_KEY",
					   "CMKFS_KMIP_CA" };
	static const char *const opt[] = { "--kmip-cert", "--kmip-key",
					   "--kmip-ca" };
	static const char *const def[] = { "client.crt", "client.key",
					   "ca.crt" };
	const char *given[] = { o->cert, o->key, o->ca };
	struct stat st;
	int n;

	for (int i = 0; i < 3; i++) {
		const char *s =
			given[i] && *given[i] ? given[i] : getenv(env[i]);

		n = s && *s ? snprintf(files[i], 300, "%s", s)
			    : snprintf(files[i], 300, "%s/%s", KMIP_DEFAULT_DIR,
				       def[i]);
		if (n < 0 || n >= 300)
			return kms_set_error(err, KMS_CONFIG,
					     "NoClientIdentity",
					     "the path of the KMIP client %s "
					     "is too long",
					     what[i]);
		if (stat(files[i], &st) || !S_ISREG(st.st_mode))
			return kms_set_error(
				err, KMS_CONFIG, "NoClientIdentity",
				"no KMIP client %s at %.280s: set %s (or %s) "
				"to its PEM file",
				what[i], files[i], env[i], opt[i]);
		/* Whoever can read the key is this client to the server. */
		if (i == 1 && (st.st_mode & 077))
			return kms_set_error(
				err, KMS_CONFIG, "KeyNotPrivate",
				"the KMIP client's private key %.280s may be "
				"%s by others (mode %04o): make it private "
				"with 'chmod 600 %.280s'",
				files[i], st.st_mode & 022 ? "written" : "read",
				(unsigned)(st.st_mode & 07777), files[i]);
	}
	return 0;
}

/* After attempt failed with err: whether to try again (a connection that
 * failed or dropped, up to max_attempts, within the retry budget), once a
 * pause has passed.  A timeout is not tried again: a server that does not
 * answer would hold the caller max_attempts times as long. */
static bool retry_after(const struct kmip_client *c, unsigned attempt,
			const struct kms_error *err)
{
	long ms = 200L * attempt;
	struct timespec pause = { ms / 1000, (ms % 1000) * 1000000L };

	if (err->status != KMS_NETWORK || attempt >= c->max_attempts ||
	    now_ms() + ms - c->first_attempt > c->retry_budget_ms)
		return false;
	nanosleep(&pause, NULL);
	return true;
}

/* A TLS connection to the server, as c says: 0, or -errno with err
 * said. */
static int connect_tls(struct kmip_client *c, struct kms_error *err)
{
	char url[320];
	CURLcode r;

	curl_easy_cleanup(c->curl);
	/* libcurl's global state as the KMS client has it: set up once,
	 * with frees that wipe (the TLS records held the secrets). */
	c->curl = kms_curl_global_init() ? NULL : curl_easy_init();
	if (!c->curl) {
		kms_set_error(err, KMS_CONFIG, "OutOfMemory", "out of memory");
		return -ENOMEM;
	}
	snprintf(url, sizeof(url), "https://%s:%u", c->host, c->port);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 c->connect_timeout_ms);
	curl_easy_setopt(c->curl, CURLOPT_SSLVERSION,
			 (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->files[2]);
	curl_easy_setopt(c->curl, CURLOPT_SSLCERT, c->files[0]);
	curl_easy_setopt(c->curl, CURLOPT_SSLKEY, c->files[1]);
	r = curl_easy_perform(c->curl);
	if (r == CURLE_OK)
		r = curl_easy_getinfo(c->curl, CURLINFO_ACTIVESOCKET, &c->fd);
	if (r != CURLE_OK) {
		kms_set_error(err, curl_status(r), "ConnectionFailed",
			      "cannot reach the KMIP server %s:%u: %s", c->host,
			      c->port, curl_easy_strerror(r));
		curl_easy_cleanup(c->curl);
		c->curl = NULL;
		return -EIO;
	}
	return 0;
}

int kmip_client_new(struct kmip_client **out, const char *host, unsigned port,
		    const struct kmip_options *opts, struct kms_error *err)
{
	struct kmip_client *c = calloc(1, sizeof(*c));
	int r;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	if (!c) {
		kms_set_error(err, KMS_CONFIG, "OutOfMemory", "out of memory");
		return -ENOMEM;
	}
	if (!port || port > 65535 || strlen(host) >= sizeof(c->host) ||
	    !*host || strpbrk(host, "/@?#[] ")) {
		free(c);
		kms_set_error(err, KMS_CONFIG, "InvalidEndpoint",
			      "not a KMIP server address: %.200s:%u", host,
			      port);
		return -EINVAL;
	}
	if (identity(opts, c->files, err)) {
		free(c);
		return -EINVAL;
	}
	snprintf(c->host, sizeof(c->host), "%s", host);
	c->port = port;
	c->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 10000;
	c->connect_timeout_ms =
		opts->connect_timeout_ms ? opts->connect_timeout_ms : 3000;
	c->max_attempts = opts->max_attempts ? opts->max_attempts : 3;
	c->retry_budget_ms =
		opts->retry_budget_ms ? opts->retry_budget_ms : 30000;
	c->first_attempt = now_ms();
	for (unsigned attempt = 1;; attempt++) {
		r = connect_tls(c, err);
		err->attempts = attempt;
		if (!r || !retry_after(c, attempt, err))
			break;
	}
	if (r) {
		free(c);
		return r;
	}
	*out = c;
	return 0;
}

void kmip_client_free(struct kmip_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl); /* accepts NULL */
	free(c);
}

/* Wait until fd is ready for events, or the deadline: 0 or -ETIMEDOUT. */
static int wait_fd(curl_socket_t fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		struct pollfd p = { .fd = fd, .events = events };
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int send_all(struct kmip_client *c, const uint8_t *p, size_t len,
		    int64_t deadline, struct kms_error *err)
{
	while (len) {
		size_t n = 0;
		CURLcode r = curl_easy_send(c->curl, p, len, &n);

		if (r == CURLE_AGAIN) {
			if (wait_fd(c->fd, POLLOUT, deadline))
				goto timeout;
			continue;
		}
		if (r != CURLE_OK) {
			kms_set_error(err, KMS_NETWORK, "ConnectionFailed",
				      "sending to the KMIP server %s:%u: %s",
				      c->host, c->port, curl_easy_strerror(r));
			return -EIO;
		}
		p += n;
		len -= n;
	}
	return 0;
timeout:
	kms_set_error(err, KMS_TIMEOUT, "Timeout",
		      "the KMIP server %s:%u took more than %ld ms", c->host,
		      c->port, c->timeout_ms);
	return -ETIMEDOUT;
}

static int recv_n(struct kmip_client *c, uint8_t *p, size_t len,
		  int64_t deadline, struct kms_error *err)
{
	while (len) {
		size_t n = 0;
		CURLcode r = curl_easy_recv(c->curl, p, len, &n);

		if (r == CURLE_AGAIN) {
			if (wait_fd(c->fd, POLLIN, deadline)) {
				kms_set_error(err, KMS_TIMEOUT, "Timeout",
					      "the KMIP server %s:%u took more "
					      "than %ld ms to answer",
					      c->host, c->port, c->timeout_ms);
				return -ETIMEDOUT;
			}
			continue;
		}
		if (r != CURLE_OK || n == 0) {
			kms_set_error(err, KMS_NETWORK, "ConnectionFailed",
				      "the KMIP server %s:%u %s", c->host,
				      c->port,
				      r ? curl_easy_strerror(r)
					: "closed the connection mid-answer");
			return -EIO;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* A response: the whole message, in secure memory (Decrypt's carries the
 * secret), its size checked from its header before the rest is read. */
static int receive(struct kmip_client *c, uint8_t **msg, size_t *len,
		   int64_t deadline, struct kms_error *err)
{
	uint8_t head[8];
	size_t size;
	int r;

	*msg = NULL;
	r = recv_n(c, head, sizeof(head), deadline, err);
	if (r)
		return r;
	size = ttlv_message_size(head);
	if (!size || size > KMIP_MAX_RESPONSE) {
		kms_set_error(
			err, KMS_PROTOCOL, "MalformedResponse",
			"the KMIP server %s:%u answered something that is "
			"not a KMIP message (or one over %zu bytes)",
			c->host, c->port, KMIP_MAX_RESPONSE);
		return -EPROTO;
	}
	*msg = secmem_alloc(size);
	if (!*msg) {
		kms_set_error(err, KMS_CONFIG, "OutOfMemory", "out of memory");
		return -ENOMEM;
	}
	memcpy(*msg, head, sizeof(head));
	r = recv_n(c, *msg + sizeof(head), size - sizeof(head), deadline, err);
	if (r) {
		secmem_free(*msg);
		*msg = NULL;
		return r;
	}
	*len = size;
	return 0;
}

/* Printable ASCII of a server's words, for a message. */
static void printable(char *out, size_t outlen, const struct ttlv *t)
{
	size_t n = 0;

	if (!outlen)
		return;
	for (uint32_t i = 0; t && i < t->len && n + 1 < outlen; i++)
		out[n++] = t->val[i] >= 0x20 && t->val[i] < 0x7f
				   ? (char)t->val[i]
				   : '?';
	out[n] = 0;
}

static const char *reason_name(int64_t r)
{
	static const char *const names[] = {
		[0x01] = "ItemNotFound",
		[0x02] = "ResponseTooLarge",
		[0x03] = "AuthenticationNotSuccessful",
		[0x04] = "InvalidMessage",
		[0x05] = "OperationNotSupported",
		[0x06] = "MissingData",
		[0x07] = "InvalidField",
		[0x08] = "FeatureNotSupported",
		[0x0A] = "CryptographicFailure",
		[0x0B] = "IllegalOperation",
		[0x0C] = "PermissionDenied",
		[0x0D] = "ObjectArchived",
		[0x24] = "BadCryptographicParameters",
	};

	if (r == 0x100)
		return "GeneralFailure";
	return r > 0 && r < (int64_t)(sizeof(names) / sizeof(names[0])) &&
			       names[r]
		       ? names[r]
		       : "OperationFailed";
}

/* What a refusal means for the key: definitive, or worth another try. */
static enum kms_status reason_status(int64_t r)
{
	switch (r) {
	case 0x01: /* Item Not Found */
		return KMS_NOT_FOUND;
	case 0x03: /* Authentication Not Successful */
	case 0x0C: /* Permission Denied */
		return KMS_ACCESS_DENIED;
	case 0x0A: /* Cryptographic Failure: a tag or AAD that do not
		      match */
		return KMS_INVALID_CIPHERTEXT;
	case 0x0B: /* Illegal Operation: the key's state forbids it */
	case 0x0D: /* Object Archived */
		return KMS_INVALID_STATE;
	case 0x05:
	case 0x08:
		return KMS_UNSUPPORTED;
	default: /* General Failure (0x100), Invalid Message, Response Too
		    Large, Operation Pending...: the server's own trouble, or
		    no reason given */
		return KMS_SERVICE;
	}
}

/*
 * Send the request e holds (a Request Message of one batch item, op) and
 * read the answer: 0 with the response's payload in *payload (pointing into
 * *msg, which the caller frees with secmem_free, and items), or -errno with
 * err said.
 */
static int call(struct kmip_client *c, struct ttlv_enc *e, uint32_t op,
		struct ttlv_items *items, uint8_t **msg,
		const struct ttlv **payload, struct kms_error *err)
{
	int64_t deadline;
	const struct ttlv *root, *item, *t;
	char why[160], words[256];
	size_t len;
	int r;

	*msg = NULL;
	*payload = NULL;
	r = ttlv_enc_done(e);
	if (r) {
		kms_set_error(err, KMS_CONFIG, "RequestTooLarge",
			      "cannot encode the KMIP request: %s",
			      strerror(-r));
		return r;
	}
	/* A connection that failed is not used again: the request goes once
	 * more on a new one (every request cmkfs makes may be repeated). */
	c->first_attempt = now_ms();
	for (unsigned attempt = 1;; attempt++) {
		deadline = now_ms() + c->timeout_ms;
		r = c->curl ? 0 : connect_tls(c, err);
		if (!r)
			r = send_all(c, e->p, e->len, deadline, err);
		if (!r)
			r = receive(c, msg, &len, deadline, err);
		err->attempts = attempt;
		if (!r)
			break;
		curl_easy_cleanup(c->curl);
		c->curl = NULL;
		if (!retry_after(c, attempt, err))
			return r;
	}
	r = ttlv_decode(*msg, len, items, &root, why, sizeof(why));
	if (r) {
		kms_set_error(
			err, KMS_PROTOCOL, "MalformedResponse",
			"the KMIP server %s:%u answered a malformed message: "
			"%s",
			c->host, c->port, why);
		return -EPROTO;
	}
	item = ttlv_find(root, T_BATCH_ITEM);
	if (root->tag != T_RESPONSE_MESSAGE ||
	    !ttlv_find(root, T_RESPONSE_HEADER) || !item ||
	    ttlv_find_next(item, T_BATCH_ITEM) ||
	    !(t = ttlv_find(item, T_RESULT_STATUS)) ||
	    t->type != TTLV_ENUMERATION) {
		kms_set_error(
			err, KMS_PROTOCOL, "MalformedResponse",
			"the KMIP server %s:%u answered no single batch item "
			"with a result",
			c->host, c->port);
		return -EPROTO;
	}
	if (t->num != STATUS_SUCCESS) {
		const struct ttlv *reason = ttlv_find(item, T_RESULT_REASON);
		int64_t rn = reason && reason->type == TTLV_ENUMERATION
				     ? reason->num
				     : 0;
		const struct ttlv *m = ttlv_find(item, T_RESULT_MESSAGE);

		printable(words, sizeof(words),
			  m && m->type == TTLV_TEXT ? m : NULL);
		kms_set_error(err, reason_status(rn), reason_name(rn), "%s",
			      words[0] ? words : "the KMIP server refused");
		return -EPERM;
	}
	t = ttlv_find(item, T_OPERATION);
	*payload = ttlv_find(item, T_RESPONSE_PAYLOAD);
	if (!t || t->type != TTLV_ENUMERATION || t->num != op || !*payload ||
	    (*payload)->type != TTLV_STRUCTURE) {
		kms_set_error(
			err, KMS_PROTOCOL, "MalformedResponse",
			"the KMIP server %s:%u answered another operation, or "
			"no payload",
			c->host, c->port);
		return -EPROTO;
	}
	return 0;
}

/* Request Message { Request Header { Protocol Version 1.4, Batch Count 1 },
 * Batch Item { Operation, Request Payload { ... */
static void request_begin(struct ttlv_enc *e, uint32_t op)
{
	ttlv_begin(e, T_REQUEST_MESSAGE);
	ttlv_begin(e, T_REQUEST_HEADER);
	ttlv_begin(e, T_PROTOCOL_VERSION);
	ttlv_int(e, T_PROTOCOL_MAJOR, 1);
	ttlv_int(e, T_PROTOCOL_MINOR, 4);
	ttlv_end(e);
	ttlv_int(e, T_BATCH_COUNT, 1);
	ttlv_end(e);
	ttlv_begin(e, T_BATCH_ITEM);
	ttlv_enum(e, T_OPERATION, op);
	ttlv_begin(e, T_REQUEST_PAYLOAD);
}

/* ... } } } */
static void request_end(struct ttlv_enc *e)
{
	ttlv_end(e);
	ttlv_end(e);
	ttlv_end(e);
}

/* A Byte String item of exactly n bytes (n 0: any length up to max). */
static const struct ttlv *bytes_of(const struct ttlv *s, uint32_t tag, size_t n,
				   size_t max)
{
	const struct ttlv *t = ttlv_find(s, tag);

	if (!t || t->type != TTLV_BYTES || (n && t->len != n) ||
	    (!n && (!t->len || t->len > max)))
		return NULL;
	return t;
}

static void gcm_parameters(struct ttlv_enc *e)
{
	ttlv_begin(e, T_CRYPTO_PARAMETERS);
	ttlv_enum(e, T_BLOCK_CIPHER_MODE, MODE_GCM);
	ttlv_enum(e, T_CRYPTO_ALGORITHM, ALG_AES);
	ttlv_int(e, T_TAG_LENGTH, KMIP_GCM_TAG);
	ttlv_end(e);
}

/* What a request is built from, checked before anything is sent: the
 * key's identifier comes from a volume's header. */
static int args_ok(const char *uid, size_t n, size_t aadlen,
		   struct kms_error *err)
{
	size_t ul = strlen(uid);

	for (size_t i = 0; i < ul; i++)
		if (uid[i] < 0x20 || uid[i] > 0x7e)
			ul = 0;
	if (!ul || ul > 255 || !n || n > KMIP_MAX_SECRET || aadlen > 4096) {
		kms_set_error(
			err, KMS_VALIDATION, "InvalidArgument",
			"a KMIP key identifier of 1 to 255 printable "
			"characters, a secret of 1 to %d bytes and at most "
			"4096 bytes of additional data, please",
			KMIP_MAX_SECRET);
		return -EINVAL;
	}
	return 0;
}

static struct ttlv_items *items_new(struct kms_error *err)
{
	struct ttlv_items *it = malloc(sizeof(*it));

	if (!it)
		kms_set_error(err, KMS_CONFIG, "OutOfMemory", "out of memory");
	return it;
}

int kmip_encrypt(struct kmip_client *c, const char *uid, const uint8_t *pt,
		 size_t n, const uint8_t *aad, size_t aadlen,
		 struct kmip_wrapped *w, struct kms_error *err)
{
	struct ttlv_enc e = { 0 };
	struct ttlv_items *it;
	const struct ttlv *p, *ct, *tag;
	uint8_t *msg = NULL;
	int r;

	memset(w, 0, sizeof(*w));
	memset(err, 0, sizeof(*err));
	it = items_new(err);
	r = args_ok(uid, n, aadlen, err);
	if (r || !it) {
		free(it);
		return r ? r : -ENOMEM;
	}
	/* The IV is ours: a fresh random one, not the server's choice. */
	r = crypto_random(w->iv, sizeof(w->iv));
	if (r) {
		kms_set_error(err, KMS_CONFIG, "NoRandom",
			      "no random bytes: %s", strerror(-r));
		free(it);
		return r;
	}
	request_begin(&e, OP_ENCRYPT);
	ttlv_text(&e, T_UNIQUE_IDENTIFIER, uid);
	gcm_parameters(&e);
	ttlv_bytes(&e, T_DATA, pt, n);
	ttlv_bytes(&e, T_IV_COUNTER_NONCE, w->iv, sizeof(w->iv));
	ttlv_bytes(&e, T_AE_ADDITIONAL_DATA, aad, aadlen);
	request_end(&e);
	r = call(c, &e, OP_ENCRYPT, it, &msg, &p, err);
	ttlv_enc_free(&e);
	if (!r) {
		ct = bytes_of(p, T_DATA, n, 0);
		tag = bytes_of(p, T_AE_TAG, KMIP_GCM_TAG, 0);
		if (!ct || !tag) {
			kms_set_error(err, KMS_PROTOCOL, "MalformedResponse",
				      "the KMIP server %s:%u answered Encrypt "
				      "without a ciphertext of %zu bytes and a "
				      "%d-byte tag",
				      c->host, c->port, n, KMIP_GCM_TAG);
			r = -EPROTO;
		} else {
			memcpy(w->ct, ct->val, n);
			w->ct_len = n;
			memcpy(w->tag, tag->val, KMIP_GCM_TAG);
		}
	}
	secmem_free(msg);
	free(it);
	return r;
}

int kmip_decrypt(struct kmip_client *c, const char *uid,
		 const struct kmip_wrapped *w, const uint8_t *aad,
		 size_t aadlen, uint8_t **pt, size_t *n, struct kms_error *err)
{
	struct ttlv_enc e = { 0 };
	struct ttlv_items *it;
	const struct ttlv *p, *d;
	uint8_t *msg = NULL;
	int r;

	*pt = NULL;
	*n = 0;
	memset(err, 0, sizeof(*err));
	it = items_new(err);
	r = args_ok(uid, w->ct_len, aadlen, err);
	if (r || !it) {
		free(it);
		return r ? r : -ENOMEM;
	}
	request_begin(&e, OP_DECRYPT);
	ttlv_text(&e, T_UNIQUE_IDENTIFIER, uid);
	gcm_parameters(&e);
	ttlv_bytes(&e, T_DATA, w->ct, w->ct_len);
	ttlv_bytes(&e, T_IV_COUNTER_NONCE, w->iv, sizeof(w->iv));
	ttlv_bytes(&e, T_AE_ADDITIONAL_DATA, aad, aadlen);
	ttlv_bytes(&e, T_AE_TAG, w->tag, sizeof(w->tag));
	request_end(&e);
	r = call(c, &e, OP_DECRYPT, it, &msg, &p, err);
	ttlv_enc_free(&e);
	if (!r) {
		d = bytes_of(p, T_DATA, w->ct_len, 0);
		*pt = d ? secmem_alloc(d->len) : NULL;
		if (!d) {
			kms_set_error(err, KMS_PROTOCOL, "MalformedResponse",
				      "the KMIP server %s:%u answered Decrypt "
				      "without %zu bytes of plaintext",
				      c->host, c->port, w->ct_len);
			r = -EPROTO;
		} else if (!*pt) {
			kms_set_error(err, KMS_CONFIG, "OutOfMemory",
				      "out of memory");
			r = -ENOMEM;
		} else {
			memcpy(*pt, d->val, d->len);
			*n = d->len;
		}
	}
	secmem_free(msg); /* wipes the plaintext it held */
	free(it);
	return r;
}

/* The value of attribute name in a Get Attributes payload, or NULL. */
static const struct ttlv *attribute(const struct ttlv *p, const char *name)
{
	size_t len = strlen(name);

	for (const struct ttlv *a = ttlv_find(p, T_ATTRIBUTE); a;
	     a = ttlv_find_next(a, T_ATTRIBUTE)) {
		const struct ttlv *nm = ttlv_find(a, T_ATTRIBUTE_NAME);

		if (nm && nm->type == TTLV_TEXT && nm->len == len &&
		    !memcmp(nm->val, name, len))
			return ttlv_find(a, T_ATTRIBUTE_VALUE);
	}
	return NULL;
}

int kmip_get_key_info(struct kmip_client *c, const char *uid,
		      struct kmip_key_info *ki, struct kms_error *err)
{
	static const char *const names[] = {
		"Object Type",
		"Cryptographic Algorithm",
		"Cryptographic Length",
		"Cryptographic Usage Mask",
		"State",
	};
	struct ttlv_enc e = { 0 };
	struct ttlv_items *it;
	const struct ttlv *p, *v;
	uint8_t *msg = NULL;
	int64_t *out[] = { &ki->object_type, &ki->algorithm, &ki->length,
			   &ki->usage_mask, &ki->state };
	int r;

	memset(ki, 0, sizeof(*ki));
	memset(err, 0, sizeof(*err));
	it = items_new(err);
	r = args_ok(uid, 1, 0, err);
	if (r || !it) {
		free(it);
		return r ? r : -ENOMEM;
	}
	request_begin(&e, OP_GET_ATTRIBUTES);
	ttlv_text(&e, T_UNIQUE_IDENTIFIER, uid);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		ttlv_text(&e, T_ATTRIBUTE_NAME, names[i]);
	request_end(&e);
	r = call(c, &e, OP_GET_ATTRIBUTES, it, &msg, &p, err);
	ttlv_enc_free(&e);
	for (size_t i = 0; !r && i < sizeof(names) / sizeof(names[0]); i++) {
		v = attribute(p, names[i]);
		/* Enumerations, an Integer (length, usage mask): a number
		 * either way; absent: -1. */
		*out[i] = v && (v->type == TTLV_ENUMERATION ||
				v->type == TTLV_INTEGER)
				  ? v->num
				  : -1;
	}
	secmem_free(msg);
	free(it);
	return r;
}
