/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kms.h — the public interface of cmkfs's KMS client: AWS KMS, or
 * cmkfs-kmsd, over HTTP(S) with SigV4, the AWS credential chain, bounded
 * retries and typed errors.  The only header other modules include from
 * kms/; no curl or json-c type leaks through it.
 *
 * The same code talks to AWS and to cmkfs-kmsd: only the endpoint differs,
 * resolved as the AWS SDKs do (see kms_client_new).
 *
 * Errors: functions return 0 or a negative errno, and fill a struct
 * kms_error with the typed status, the service's error name and message, and
 * the request id.  Secrets never appear in messages.
 *
 * Thread-safety: a client is used by one thread at a time (it keeps one
 * connection alive).  Threads that call KMS concurrently each create one.
 */
#ifndef CMKFS_KMS_H
#define CMKFS_KMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kms_status {
	KMS_OK = 0,
	/* Definitive answers about the key or the caller: never retried. */
	KMS_ACCESS_DENIED,	/* AccessDeniedException */
	KMS_DISABLED,		/* DisabledException */
	KMS_INVALID_STATE,	/* KMSInvalidStateException */
	KMS_NOT_FOUND,		/* NotFoundException */
	KMS_INVALID_CIPHERTEXT, /* InvalidCiphertextException */
	KMS_INCORRECT_KEY,	/* IncorrectKeyException */
	KMS_SIGNATURE,		/* Invalid/IncompleteSignatureException,
				   UnrecognizedClientException,
				   ExpiredTokenException */
	KMS_VALIDATION,	  /* ValidationException, SerializationException */
	KMS_UNSUPPORTED,  /* UnsupportedOperation/UnknownOperation... */
	KMS_CLIENT_ERROR, /* any other 4xx answer */
	/* Transient: retried with backoff, reported once retries run out. */
	KMS_THROTTLED, /* ThrottlingException, HTTP 429 */
	KMS_SERVICE,   /* 5xx, KMSInternalException,
			  DependencyTimeoutException,
			  KeyUnavailableException */
	KMS_NETWORK,   /* cannot connect, connection dropped */
	KMS_TIMEOUT,   /* connect or request timeout */
	/* Local: nothing was sent. */
	KMS_CONFIG,   /* no region or credentials, bad endpoint,
			 key ARN of another region */
	KMS_PROTOCOL, /* malformed response */
};

struct kms_error {
	enum kms_status status;
	char type[96]; /* the service's error name, or ours for local
			  errors (e.g. "RegionMismatch") */
	char message[512];
	char request_id[96]; /* x-amzn-RequestId, "" when none */
	long http_status;    /* 0 when no response */
	unsigned attempts;   /* requests sent */
};

/* True for statuses worth retrying (throttling, service, network). */
bool kms_status_transient(enum kms_status st);
/* A stable name for a status ("access-denied", ...). */
const char *kms_status_name(enum kms_status st);
/* One line for the user: "<type>: <message> (request id <id>)". */
void kms_error_format(const struct kms_error *err, char *out, size_t len);

struct kms_options {
	const char *endpoint;	 /* explicit endpoint URL (--kms-endpoint) */
	const char *region;	 /* explicit region (--region) */
	const char *profile;	 /* explicit profile (--profile) */
	long connect_timeout_ms; /* per attempt; 0 = 3000 */
	long timeout_ms;	 /* per attempt; 0 = 10000 */
	unsigned max_attempts;	 /* 0 = 5 */
	long retry_budget_ms;	 /* total time for all attempts; 0 = 30000 */
	bool debug; /* one line per attempt on stderr: action, status,
		       request id, timing; never bodies or headers */
	/* KMIP keys (kmip://): PEM files of this client's certificate and
	 * private key and of the CA the servers' certificates chain to; NULL:
	 * see struct kmip_options. */
	const char *kmip_cert, *kmip_key, *kmip_ca;
};

struct kms_client;

/*
 * A client.  Region: opt->region, AWS_REGION, AWS_DEFAULT_REGION, the
 * profile's region.  Endpoint: opt->endpoint, AWS_ENDPOINT_URL_KMS,
 * AWS_ENDPOINT_URL, the profile's endpoint_url, else
 * https://kms.<region>.amazonaws.com.  Credentials: the AWS chain
 * (environment, shared files and profile, container, EC2 instance metadata
 * IMDSv2), resolved at the first call and refreshed before they expire.
 * TLS peers are always verified (AWS_CA_BUNDLE names extra CAs).
 * Returns 0, or -EINVAL with err->status KMS_CONFIG, or -ENOMEM.
 */
int kms_client_new(struct kms_client **out, const struct kms_options *opt,
		   struct kms_error *err);
void kms_client_free(struct kms_client *c);

const char *kms_client_region(const struct kms_client *c);
const char *kms_client_endpoint(const struct kms_client *c);

/*
 * Send any action with a JSON request body; on success *response is the
 * malloc'ed JSON response.  For responses that carry key material
 * (Decrypt, GenerateDataKey, GenerateRandom, ...) use the typed calls
 * below instead: this one returns it in ordinary memory.
 * Returns 0, or -EACCES (access denied or bad signature), -ENOENT (not
 * found), -EKEYREVOKED (disabled / invalid state), -EBADMSG (invalid
 * ciphertext, incorrect key), -ETIMEDOUT, -EHOSTUNREACH (network), -EINVAL
 * (config, validation), -EPROTO, -EIO; err says which.
 */
int kms_call(struct kms_client *c, const char *action, const char *body,
	     char **response, struct kms_error *err);

/* An encryption context: n pairs of key and value. */
struct kms_kv {
	const char *key;
	const char *value;
};

/*
 * GenerateDataKey under key_id (a key ARN, key id or alias) with the given
 * context.  *plaintext (nbytes, secure memory: secmem_free it) and the
 * malloc'ed *blob.  A key ARN naming another region fails before sending.
 */
int kms_generate_data_key(struct kms_client *c, const char *key_id,
			  const struct kms_kv *ctx, size_t n_ctx, size_t nbytes,
			  uint8_t **plaintext, uint8_t **blob, size_t *blob_len,
			  struct kms_error *err);

/* Decrypt blob (KeyId = key_id, always sent when not NULL) under ctx;
 * *plaintext in secure memory. */
int kms_decrypt(struct kms_client *c, const char *key_id,
		const struct kms_kv *ctx, size_t n_ctx, const uint8_t *blob,
		size_t blob_len, uint8_t **plaintext, size_t *pt_len,
		struct kms_error *err);

/* Encrypt pt_len (at most 4096) bytes of plaintext under key_id with ctx:
 * *blob (malloc'ed).  The request that carries the plaintext is built and
 * wiped in secure memory. */
int kms_encrypt(struct kms_client *c, const char *key_id,
		const struct kms_kv *ctx, size_t n_ctx,
		const uint8_t *plaintext, size_t pt_len, uint8_t **blob,
		size_t *blob_len, struct kms_error *err);

/* ReEncrypt blob from src_key (ctx src) to dst_key (ctx dst): the
 * plaintext never leaves KMS.  *out is malloc'ed. */
int kms_re_encrypt(struct kms_client *c, const char *src_key,
		   const struct kms_kv *src_ctx, size_t n_src,
		   const uint8_t *blob, size_t blob_len, const char *dst_key,
		   const struct kms_kv *dst_ctx, size_t n_dst, uint8_t **out,
		   size_t *out_len, struct kms_error *err);

struct kms_key_info {
	char arn[256];
	char key_id[64];
	char account[16];
	char state[32];	 /* Enabled, Disabled, PendingDeletion, ... */
	char spec[48];	 /* KeySpec */
	char usage[32];	 /* KeyUsage */
	char origin[32]; /* AWS_KMS, EXTERNAL, ... */
	char manager[16];
	bool enabled;
	int64_t deletion_date; /* 0 when not scheduled */
};

int kms_describe_key(struct kms_client *c, const char *key_id,
		     struct kms_key_info *out, struct kms_error *err);

/* The region an ARN names ("arn:aws:kms:REGION:..."), or NULL when key_id is
 * not an ARN; region receives at most len bytes. */
const char *kms_arn_region(const char *key_id, char *region, size_t len);

/* Is region an AWS region name: lower-case words and a number joined by
 * dashes ("us-east-1", "us-gov-west-1")?  The region becomes part of the
 * endpoint's host name, so nothing else is accepted from anywhere. */
bool kms_region_valid(const char *region);

/* ---- KMIP key servers (kms/kmip.c) ----------------------------------------
 *
 * KMIP 1.4 over mutually authenticated TLS: the client's certificate and
 * key, and the CA the server's certificate must chain to (its name must
 * match the host).  Errors fill the same struct kms_error: a refusal of
 * the server (Result Reason) as a definitive status, a connection that
 * fails or times out as KMS_NETWORK or KMS_TIMEOUT.
 */
#define KMIP_GCM_IV	12
#define KMIP_GCM_TAG	16
#define KMIP_MAX_SECRET 64

/* The client's identity.  A file not given is CMKFS_KMIP_CERT,
 * CMKFS_KMIP_KEY or CMKFS_KMIP_CA, else KMIP_DEFAULT_DIR/client.crt,
 * client.key or ca.crt.  The private key must be a regular file no one but
 * its owner may read or write (mode 0600 or 0400): anything else is
 * refused before it is used. */
#define KMIP_DEFAULT_DIR "/etc/cmkfs/kmip"
struct kmip_options {
	const char *cert, *key, *ca; /* PEM files */
	long connect_timeout_ms;     /* 0 = 3000 */
	long timeout_ms;	     /* a request and its answer; 0 = 10000 */
	unsigned max_attempts;	     /* a connection that fails or drops is made
					again, a request sent again, up to this
					many times; 0 = 3 */
	long retry_budget_ms;	     /* ... as long as this much time from the
					first try allows; 0 = 30000 */
};

struct kmip_client;

/* Connect (TLS handshake included) to host:port.  0, or -errno with err
 * said. */
int kmip_client_new(struct kmip_client **out, const char *host, unsigned port,
		    const struct kmip_options *o, struct kms_error *err);
void kmip_client_free(struct kmip_client *c);

/* A secret wrapped by a server's key with AES-GCM: the IV (ours, random),
 * the ciphertext and the tag. */
struct kmip_wrapped {
	uint8_t iv[KMIP_GCM_IV];
	uint8_t ct[KMIP_MAX_SECRET];
	size_t ct_len;
	uint8_t tag[KMIP_GCM_TAG];
};

/* Encrypt n bytes (at most KMIP_MAX_SECRET) under the key uid with AES-GCM,
 * aad authenticated with them. */
int kmip_encrypt(struct kmip_client *c, const char *uid, const uint8_t *pt,
		 size_t n, const uint8_t *aad, size_t aadlen,
		 struct kmip_wrapped *w, struct kms_error *err);
/* Decrypt w with the key uid and the same aad: the plaintext in secure
 * memory (*pt, *n; secmem_free it). */
int kmip_decrypt(struct kmip_client *c, const char *uid,
		 const struct kmip_wrapped *w, const uint8_t *aad,
		 size_t aadlen, uint8_t **pt, size_t *n, struct kms_error *err);

/* What a key is, as Get Attributes says (-1 for what it does not say):
 * Object Type, Cryptographic Algorithm, Cryptographic Length, Cryptographic
 * Usage Mask, State (KMIP's enumeration values). */
struct kmip_key_info {
	int64_t object_type, algorithm, length, usage_mask, state;
};
#define KMIP_STATE_ACTIVE 2
int kmip_get_key_info(struct kmip_client *c, const char *uid,
		      struct kmip_key_info *ki, struct kms_error *err);

#endif
