/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kmsd.h — the pieces of cmkfs-kmsd and how they meet (internal to
 * kms/kmsd/): the durable state (state.c), the KMS actions (actions.c) and
 * the HTTP front end (server.c).
 *
 * The state is one JSON document held in memory under one mutex and written
 * through to disk (temp file, fsync, rename, fsync of the directory) before
 * any mutation is acknowledged.  A key is stored as the KeyMetadata object
 * AWS returns, plus private fields whose names start with '_' (policy, key
 * material, tags, rotation): DescribeKey returns the stored object less
 * those.  Key material is kept sealed (AES-256-GCM) under the master key
 * file and unsealed only for the duration of one request, in secure memory.
 *
 * Thread-safety: every state_* function except state_open/state_close must be
 * called with the state locked (state_lock/state_unlock).
 */
#ifndef CMKFS_KMSD_H
#define CMKFS_KMSD_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define KMSD_MAX_REGIONS    8
#define KMSD_DEFAULT_LISTEN "127.0.0.1:7090"

/* ---- state ----------------------------------------------------------------
 */

struct state;

/* A principal: one access key of the credentials file. */
struct principal {
	char access_key_id[33];
	char secret[65];
	char session_token[257]; /* "" when none */
	int64_t expires;	 /* 0 = never */
	char arn[256]; /* arn:aws:iam::<account>:root|role/...|user/... */
	char account[13];
};

/*
 * Create a new state directory (mode 0700) with a master key, an empty key
 * store for `account` and `region`, and the default listen address.  Fails
 * with -EEXIST if dir already holds a state.  On error, err holds one line.
 */
int state_init(const char *dir, const char *account, const char *region,
	       const char *listen, char *err, size_t errlen);

/* Open an existing state directory.  Refuses (-EPERM, with a message saying
 * which file and how to fix it) files that are group or world accessible. */
int state_open(const char *dir, struct state **out, char *err, size_t errlen);
void state_close(struct state *st);

void state_lock(struct state *st);
void state_unlock(struct state *st);

/* Write the in-memory document to disk durably.  0 or -errno; on failure
 * the in-memory document is reloaded from disk, so what a client was told
 * failed does not survive in memory either (every json_object taken from
 * the state before the call is then invalid) — unless only the directory
 * sync after the rename failed, twice: then the change is in effect but
 * its durability unproven, and the failure says so (state.c says why). */
int state_commit(struct state *st);

/* Forget what changed in memory since the last commit (a request that
 * failed halfway): the document is read again from disk.  0 or -errno
 * (the state is then broken: every later commit fails). */
int state_rollback(struct state *st);

/* The document root and its parts (owned by the state). */
json_object *state_keys(struct state *st);    /* array of key objects */
json_object *state_aliases(struct state *st); /* array */
json_object *state_grants(struct state *st);  /* array */
const char *state_default_region(struct state *st);
const char *state_default_account(struct state *st);
const char *state_listen(struct state *st);

/* Credentials (credentials.json), re-read when the file changes on disk, so
 * `cmkfs-kmsd principal add` works while the service runs. */
bool state_find_principal(struct state *st, const char *access_key_id,
			  struct principal *out);
int state_add_principal(const char *dir, const char *arn, bool session,
			int64_t expires, struct principal *out, char *err,
			size_t errlen);
int state_remove_principal(const char *dir, const char *id_or_arn, char *err,
			   size_t errlen);
/* Call fn for each principal (no secrets needed by callers: listing). */
int state_list_principals(const char *dir,
			  void (*fn)(const struct principal *p, void *arg),
			  void *arg, char *err, size_t errlen);

/* ---- keys ------------------------------------------------------------------
 */

/* Add key material version to key k: 32 random bytes, sealed. */
int state_new_material(struct state *st, json_object *k);

/*
 * Seal `pt` for key k (current material) under the encryption context
 * `ctx` (a JSON object of strings, or NULL), into a malloc'ed blob.  The
 * blob names the key and material version; the context is bound as
 * additional authenticated data, so the blob opens only for the same key and
 * the same context.  0, -ENOMEM, -EIO.
 */
int state_seal(struct state *st, json_object *k, json_object *ctx,
	       const uint8_t *pt, size_t len, uint8_t **blob, size_t *blob_len);

/* The key id a blob names (for Decrypt without KeyId); -EBADMSG if the blob
 * is malformed.  id receives 37 bytes. */
int state_blob_key_id(const uint8_t *blob, size_t len, char id[37]);

/* Open a blob for key k.  Returns 0 with the plaintext in *pt (secure memory,
 * secmem_free it), -EBADMSG when the blob was tampered with, belongs to
 * another key or context, or names material the key does not have. */
int state_open_blob(struct state *st, json_object *k, json_object *ctx,
		    const uint8_t *blob, size_t len, uint8_t **pt,
		    size_t *pt_len);

/* ---- the HTTP front end -------------------------------------------------- */

#define KMSD_MAX_CONNECTIONS 128

struct server_config {
	const char *listen; /* "ADDR:PORT"; port 0 = pick one */
	const char *regions[KMSD_MAX_REGIONS];
	size_t n_regions;
	unsigned max_skew;    /* seconds */
	const char *log_path; /* NULL: stderr */
	/* A request must arrive whole within request_timeout seconds of the
	 * connection (or of the answer before it on the same connection),
	 * and one address may hold at most per_address connections. */
	unsigned request_timeout, per_address;
	/* Metrics (metrics.c): GET /metrics on metrics_listen, and/or
	 * metrics_file rewritten every metrics_interval seconds; NULL: not. */
	const char *metrics_listen, *metrics_file;
	unsigned metrics_interval;
};

/* ---- metrics.c */
/* One answered request: its action and outcome (static strings of the
 * service's own), and how long it took. */
void kmsd_metrics_count(const char *action, const char *outcome, uint64_t ns);
/* Serve them as cfg says; where (NULL: no endpoint); stop. */
int kmsd_metrics_start(const struct server_config *cfg, char *err,
		       size_t errlen);
const char *kmsd_metrics_url(void);
void kmsd_metrics_stop(void);

/* Serve until SIGINT/SIGTERM.  Prints "listening on http://ADDR:PORT" on
 * stdout once requests are accepted.  0 or -errno (err says why). */
int kmsd_server_run(struct state *st, const struct server_config *cfg,
		    char *err, size_t errlen);

/* ---- actions ---------------------------------------------------------------
 */

/* Who is calling, where, and the error a handler reports. */
struct call {
	struct state *st;
	const struct principal *caller;
	const char *region;
	const char *request_id;
	int64_t now;
	bool dry_run; /* DryRun: everything but the effect (kmsd_commit) and
			 the answer */
	/* A string member the front end took out of the body before parsing
	 * (kmsd_json_take_string), in secure memory: kmsd_req_blob reads
	 * member taken_name from here, not from the parsed request.  NULL:
	 * none. */
	const char *taken_name, *taken;
	size_t taken_len;
	/* filled by handlers */
	char key_arn[256];	/* the key acted on, for the access log */
	const char *error_type; /* AWS error name; NULL on success */
	int http_status;
	char message[512];
	int err; /* the -errno of the recorded error */
};

/*
 * Run action (e.g. "Decrypt") with request body req.  On success returns 0
 * and *resp holds the response object (and, for actions that return key
 * material, *secret_b64 a secure-memory string to insert as "Plaintext",
 * which the caller must secmem_free); on failure returns a negative errno
 * with call->error_type, ->http_status and ->message set.
 */
int kmsd_action_run(struct call *call, const char *action, json_object *req,
		    json_object **resp, char **secret_b64);

/* The name of action as cmkfs-kmsd knows it (a constant string), or NULL:
 * what the access log says, never the client's own bytes. */
const char *kmsd_action_known(const char *action);

/* Does the JSON text body (valid JSON, len bytes) hold a string with a
 * NUL character (\u0000)?  C strings would cut it there, making
 * "x\u0000y" and "x" the same context, policy value or name. */
bool kmsd_json_has_nul(const char *body, size_t len);

/*
 * Take the string member `name` of the top-level JSON object in body (len
 * bytes, as received) out of it before json-c parses it: json-c keeps the
 * strings it parses in ordinary heap it frees unwiped, no place for a
 * secret.  When the object has one member `name` and its value is a
 * string, the value, unescaped, goes to *out (secure memory, NUL-terminated,
 * *out_len bytes; secmem_free it) and the value in body becomes a number.
 * Returns 1 when taken; 0 when there is no such member or its value is not
 * a string (body untouched); -EINVAL when body is not a JSON object as far
 * as this reads, or has `name` twice; -ENOMEM.  An escape of a character
 * outside ASCII, or of NUL, reads as '?'.
 */
int kmsd_json_take_string(char *body, size_t len, const char *name, char **out,
			  size_t *out_len);

/* Is s (len bytes) well-formed UTF-8 (RFC 3629: no overlong form, no
 * surrogate, nothing past U+10FFFF)?  What is stored is handed back to
 * SDK clients, which decode strictly. */
bool kmsd_utf8_valid(const uint8_t *s, size_t len);

/* Member name of object o (NULL when o is NULL or lacks it), and the same
 * when it is a string; a JSON string of s ("" for NULL). */
json_object *kmsd_member(json_object *o, const char *name);
const char *kmsd_member_string(json_object *o, const char *name);
json_object *kmsd_json_string(const char *s);

/* Record an AWS-named error on call; returns its errno (negative, also in
 * call->err: -EACCES for access denied, -ENOENT for a key or grant not
 * found, -EIO for KMS's own faults, -EINVAL for everything else), for
 * `return kmsd_call_error(...)`. */
int kmsd_call_error(struct call *call, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The error recorded on call, for a failure passed on: `return
 * kmsd_failed(c)`.  When (by mistake) none was recorded, it records a
 * KMSInternalException, so that a failure never turns into success or into
 * an answer without an error. */
static inline int kmsd_failed(struct call *call)
{
	if (!call->err)
		kmsd_call_error(call, "KMSInternalException",
				"internal error: a failure without a reason");
	return call->err < 0 ? call->err : -EIO;
}

#endif
