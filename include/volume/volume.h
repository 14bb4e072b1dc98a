/* SPDX-License-Identifier: Apache-2.0 */
/*
 * volume.h — the public interface of cmkfs's volume module: a volume as its
 * users know it, a LUKS2 volume (crypto/luks2/) whose keyslot secrets are
 * wrapped by a customer's KMS key (kms/).  This is the one place the two
 * meet, and where every operation on a volume keeps its order: the aws-kms
 * token and unlocking through it, the CMK rules, create, mount (handing the
 * key and the revocation check to fs/), rotate and re-wrap, offline
 * reencryption, status, header backup and restore, and the lock that keeps
 * cmkfs commands on one volume apart.
 *
 * Errors: functions return 0 or a negative errno and fill a struct
 * vol_error with what the caller needs to explain it; they never print.
 * Secrets never appear in an error.
 *
 * Thread-safety: the functions share no state; an object is used by one
 * thread at a time.  Nothing here installs a signal handler; vol_create
 * blocks SIGINT, SIGTERM and SIGHUP in the calling thread for a moment
 * around the two steps a signal must not split.
 */
#ifndef CMKFS_VOLUME_H
#define CMKFS_VOLUME_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs.h"
#include "kms.h"
#include "luks2.h"

struct crypto_key;
struct fsd_reprove;
struct vol_error;

/* ---------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------- */

enum vol_failure {
	VOL_FAIL_NONE = 0,   /* only the errno says */
	VOL_FAIL_MESSAGE,    /* message is the whole sentence (and, when
				with_errno, the errno says why) */
	VOL_FAIL_KMS,	     /* message says what failed, kms why */
	VOL_FAIL_KMS_CLIENT, /* the KMS client could not be set up: kms */
	VOL_FAIL_UNWRAP,     /* KMS did not unwrap the secret of the key
				key_arn (in region): kms */
	VOL_FAIL_KEYSLOT,    /* the secret from key_arn does not open its
				keyslot: message */
	VOL_FAIL_BINDING,    /* the token of key_arn is not bound to this
				header (message says how), not asked of KMS */
	VOL_FAIL_NO_TOKEN,   /* no aws-kms token covers an active keyslot */
	VOL_FAIL_BUSY,	     /* another cmkfs command holds the volume:
				conflict */
	VOL_FAIL_KEY_UNFIT,  /* the key breaks the CMK rules: key; message
				says what it was for */
	VOL_FAIL_NO_SPACE,   /* bytes could not be allocated (errno) */
};

/* What holds a volume another command wanted (vol_lock). */
enum vol_conflict {
	VOL_CONFLICT_MOUNTED,	    /* it is mounted */
	VOL_CONFLICT_OFFLINE,	    /* an offline change (reencrypt,
				       header-restore) is under way */
	VOL_CONFLICT_HEADER_CHANGE, /* another header change (rotate,
				       reencrypt, header-restore) */
};

/* ---------------------------------------------------------------------------
 * The keys and their tokens
 *
 * A volume's key is named by a string: an AWS KMS key ARN
 * ("arn:aws:kms:REGION:ACCOUNT:key/ID", unwrapped by AWS KMS or
 * cmkfs-kmsd), or a KMIP server's key, "kmip://HOST:PORT/UNIQUE-ID".  The
 * name is what the trust pins, what attempts and status show, and what the
 * members called key_arn below hold, whichever kind it is.
 *
 * A cmkfs volume's keyslot secret is 32 random bytes bound to the header:
 *   volume:  the LUKS UUID
 *   segment: "<cipher>:<key bits>:<sector size>:<data offset>"
 *            (e.g. "aes-xts-plain64:512:4096:16777216")
 * Under an AWS key it is a data key from GenerateDataKey, the two as its
 * encryption context {"cmkfs:volume": ..., "cmkfs:segment": ...}, kept in a
 * LUKS2 token of type "aws-kms":
 *   {"type":"aws-kms","keyslots":["N"],"key_arn":...,"region":...,
 *    "ciphertext":"<base64>","encryption_context":{...},"created":"<RFC 3339>"}
 * Under a KMIP key it comes from our own random source and is wrapped by
 * the server's Encrypt in AES-GCM (a random 12-byte IV of ours, a 16-byte
 * tag), its additional authenticated data the two lines
 *   "cmkfs:volume=<UUID>\ncmkfs:segment=<segment>"
 * kept in a LUKS2 token of type "kmip":
 *   {"type":"kmip","keyslots":["N"],"server":"HOST:PORT",
 *    "unique_identifier":...,"iv":"<base64>","tag":"<base64>",
 *    "ciphertext":"<base64>","authenticated_data":{...},"created":...}
 * Unwrapping always names the key and the binding computed from the header
 * being opened — never the copy in the token — so a blob copied from
 * another volume, a key swapped in the token, or a header whose data
 * segment was changed fails in the key's service.  aws-kms tokens made
 * before the segment was bound carry only "cmkfs:volume" (binding
 * "volume"); they keep opening, and `rotate --rewrap` or a reencryption
 * moves them to the "volume+segment" binding.  Removing the segment from a
 * token's copy does not help an attacker: the ciphertext stays bound to it.
 * ------------------------------------------------------------------------- */

#define VOL_TOKEN_TYPE	      "aws-kms"
#define VOL_TOKEN_TYPE_KMIP   "kmip"
#define VOL_KMIP_SCHEME	      "kmip://"
#define VOL_CONTEXT_VOLUME    "cmkfs:volume"
#define VOL_CONTEXT_SEGMENT   "cmkfs:segment"
#define VOL_SECRET_BYTES      32
#define VOL_TOKEN_MAX_CONTEXT 8

enum vol_key_kind {
	VOL_KEY_AWS,  /* an AWS KMS key ARN */
	VOL_KEY_KMIP, /* kmip://HOST:PORT/UNIQUE-ID */
};
/* The kind of key a name is: a name that starts with kmip:// is KMIP's,
 * anything else is taken for an ARN (and checked as one). */
enum vol_key_kind vol_key_kind_of(const char *key);

/* Is name a well-formed KMIP key name, in its one spelling?  HOST a DNS
 * name of at most 99 lower-case letters, digits, dots and dashes (labels
 * not empty, the last one starting with a letter) or an IPv4 dotted quad
 * without leading zeros, PORT 1 to 65535 without
 * leading zeros, UNIQUE-ID 1 to 128 printable ASCII characters but space,
 * quotes, backslash, slash and comma.  Its parts into host, *port and uid (each
 * 256 bytes) when they are not NULL. */
bool vol_kmip_name(const char *name, char *host, unsigned *port, char *uid);

/* What a secret is bound to, computed from the header being opened (or,
 * at create, the header about to be written). */
struct vol_binding {
	char uuid[40];
	char segment[128]; /* VOL_CONTEXT_SEGMENT's value */
};
void vol_binding_of(const struct luks2_info *info, struct vol_binding *b);

/* The service that holds one key, connected: AWS KMS (or cmkfs-kmsd) in
 * the region ko resolves to (a key ARN of another region is refused by
 * its calls, naming both), or the KMIP server the key's name names, as
 * ko's client identity.  Used by one thread at a
 * time, with keys of its own kind (and, for KMIP, server). */
struct vol_kms;
int vol_kms_open(const struct kms_options *ko, const char *key,
		 struct vol_kms **out, struct kms_error *err);
void vol_kms_free(struct vol_kms *k); /* accepts NULL */
enum vol_key_kind vol_kms_kind(const struct vol_kms *k);
/* The region an AWS client asks, or the KMIP server ("HOST:PORT"). */
const char *vol_kms_where(const struct vol_kms *k);

struct vol_token {
	enum vol_key_kind kind;
	char key_arn[256]; /* the key's name, either kind */
	char region[64];   /* AWS: the key's region; KMIP: "" */
	char created[40];
	uint8_t *blob; /* the wrapped keyslot secret (malloc); KMIP: the
			  GCM ciphertext */
	size_t blob_len;
	/* KMIP: the server, the key's identifier on it, the GCM IV and tag */
	char host[256];
	unsigned port;
	char uid[256];
	uint8_t iv[KMIP_GCM_IV], tag[KMIP_GCM_TAG];
	struct kms_kv context[VOL_TOKEN_MAX_CONTEXT];
	size_t n_context;
	bool segment_bound; /* the context has VOL_CONTEXT_SEGMENT (the
			       binding "volume+segment", else "volume") */
	int keyslots[8];
	size_t n_keyslots;
	char *strings; /* storage for the context (internal) */
};

/*
 * A new keyslot secret bound to b under key_arn, through k (opened for that
 * key): *secret (secure memory, VOL_SECRET_BYTES) and the token JSON
 * (malloc'ed, with "keyslots": [] for the LUKS layer to fill in).
 */
int vol_secret_new(struct vol_kms *k, const char *key_arn,
		   const struct vol_binding *b, uint8_t **secret,
		   char **token_json, struct kms_error *err);

/* Parse a token of either type.  -ENOMSG for a token of another type;
 * -EINVAL with a reason in why for a malformed one (missing or malformed
 * fields, a region that is not its key's AWS region, a KMIP server or
 * identifier off the allow-list of vol_kmip_name, a binding with other
 * keys than the two above, or a KMIP one without both); -ENOMEM. */
int vol_token_parse(const char *json, struct vol_token *out, char *why,
		    size_t whylen);
void vol_token_free(struct vol_token *t); /* accepts a zeroed token */

/* True when token t covers at least one active keyslot of the volume. */
bool vol_token_live(const struct luks2_info *info, const struct vol_token *t);

/* Does the token's copy of its binding match b?  0, or -EINVAL with why
 * saying what differs (a token copied from another volume, or a header
 * changed since the secret was bound to it): nothing need be asked. */
int vol_token_matches(const struct vol_token *t, const struct vol_binding *b,
		      char *why, size_t len);

/*
 * Unwrap the token's secret through k (opened for its key): KMS Decrypt
 * with KeyId = its key and the context of b (with the segment when the
 * token is segment-bound), or KMIP Decrypt with b as the additional data —
 * the header's own values, not what the token claims, so that a token
 * copied from another volume or a header changed fails there.  *secret in
 * secure memory.
 */
int vol_secret_unwrap(struct vol_kms *k, const struct vol_token *t,
		      const struct vol_binding *b, uint8_t **secret,
		      size_t *len, struct kms_error *err);

/* The same secret (VOL_SECRET_BYTES), wrapped under another key_arn
 * through k (opened for it) and bound to b (for a second CMK of one
 * keyslot): *token_json as vol_secret_new makes it. */
int vol_secret_wrap(struct vol_kms *k, const char *key_arn,
		    const struct vol_binding *b, const uint8_t *secret,
		    char **token_json, struct kms_error *err);

/*
 * Re-wrap the token's secret (src: opened for its key) under new_arn
 * through dst (opened for it; NULL, with new_arn NULL: the same key, e.g.
 * to move to its newest material after a KMS rotation).  Between two AWS
 * keys, KMS ReEncrypt: the secret never leaves KMS; where a KMIP key is
 * either end it is unwrapped here, in secure memory, and wrapped again
 * (with a fresh IV).  The new token is bound to all of b, whatever the old
 * one was.  *token_json is the new token ("keyslots": []).
 */
int vol_secret_rewrap(struct vol_kms *src, const struct vol_token *t,
		      const struct vol_binding *b, struct vol_kms *dst,
		      const char *new_arn, char **token_json,
		      struct kms_error *err);

/* ---------------------------------------------------------------------------
 * Unlocking through KMS
 * ------------------------------------------------------------------------- */

/*
 * What a command trusts of a volume's header beyond the allow-list (every
 * header is untrusted input: README).  The header names the key that opens
 * it, and whoever can write the file can replace the header with one whose
 * token is under a key of theirs that this host may also use: key_arn pins
 * the CMK, and a token of any other key is refused before KMS is asked.
 * A NULL trust is the default: no cipher_null, any key.
 */
struct vol_trust {
	bool insecure;		  /* a cipher_null data segment passes too
				     (LUKS2_OPEN_INSECURE: benchmark volumes) */
	const char *key_arn;	  /* the only CMK to unwrap through, or a
				     comma-separated list of them, or NULL */
	const char *skip_key_arn; /* a CMK not to unwrap through (the one
				     being removed), or NULL */
	const char *kmip_servers; /* "HOST:PORT[,HOST:PORT...]": the only
				     KMIP servers a token may send this host
				     to (CMKFS_KMIP_SERVERS), or NULL: any
				     (the CA still decides whom to trust) */
};

/* May a token of the key arn be unwrapped under trust (which may be
 * NULL)?  For a KMIP key, its server must be on the list too. */
bool vol_trusted(const struct vol_trust *trust, const char *arn);

/* What a caller does with a keyslot secret unwrapped through KMS: 0 when it
 * served, else -errno with err said (the next token is tried). */
struct vol_secret_use {
	int (*fn)(struct luks2_vol *v, const struct vol_token *t, int token_id,
		  const uint8_t *secret, size_t len, void *arg, char *err,
		  size_t errlen);
	void *arg;
};

/*
 * Unwrap the secrets of volume v's live aws-kms tokens in order until use
 * succeeds with one: 0 and *t = that token (vol_token_free it), with
 * e->attempts saying why each token before it failed.  When none does, the
 * first token's failure is what e explains (KMS sees one request per
 * token): VOL_FAIL_KMS_CLIENT, VOL_FAIL_UNWRAP, VOL_FAIL_KEYSLOT, or
 * VOL_FAIL_NO_TOKEN; e->attempts lists every token's.  The region of each
 * token's key is the one the token records unless ko names one.
 */
int vol_with_secret(struct luks2_vol *v, const struct luks2_info *info,
		    const struct kms_options *ko, const struct vol_trust *trust,
		    const struct vol_secret_use *use, struct vol_token *t,
		    struct vol_error *e);

/*
 * One token alone, as vol_with_secret tries each (for a program that walks
 * the tokens itself, such as the token plugin): token token_id of v, if it
 * is a live aws-kms token, checked against the header (binding, trust) and
 * its secret unwrapped through KMS.  0 with *t and *secret (secure memory);
 * 1 when it is not a live aws-kms token; -errno with e said (what,
 * key_arn, region, kms, message; no attempts).
 */
int vol_token_secret(struct luks2_vol *v, const struct luks2_info *info,
		     int token_id, const struct kms_options *ko,
		     const struct vol_trust *trust, struct vol_token *t,
		     uint8_t **secret, size_t *len, struct vol_error *e);

/* An unlocked volume: its volume key and what opened it. */
struct vol_unlocked {
	struct crypto_key *vk;
	int keyslot;
	int token_id;
	struct vol_token token;
};

/* vol_with_secret with "open a keyslot of the token": the volume key.
 * vol_unlocked_free wipes it (and accepts a zeroed struct). */
int vol_unlock(struct luks2_vol *v, const struct luks2_info *info,
	       const struct kms_options *ko, const struct vol_trust *trust,
	       struct vol_unlocked *out, struct vol_error *e);
void vol_unlocked_free(struct vol_unlocked *u);

/* Open volume and unlock it through KMS, as a mount would, with every
 * live aws-kms token in turn (each of its CMKs), then wipe the keys: proof
 * of which keys open it now.  0 when at least one does, *out saying the
 * first and e->attempts every token (keyslot, or why not); or -errno with
 * e said as vol_with_secret says it. */
struct vol_access {
	int keyslot;
	char key_arn[256];
};
int vol_unlock_test(const char *volume, const struct kms_options *ko,
		    const struct vol_trust *trust, struct vol_access *out,
		    struct vol_error *e);

/*
 * The revocation check a mount hands the daemon (fs.h, struct fsd_reprove):
 * every call makes a fresh KMS client (its receive buffers held the
 * secret's encoding and are wiped when it is freed), unwraps the token's
 * secret as a mount does and wipes it at once.  A definitive KMS refusal is
 * FSD_ACCESS_REFUSED, a transient failure (already retried by the client)
 * FSD_ACCESS_UNAVAILABLE.  Its unlock (for --on-revoke suspend) opens
 * every keyslot of the token from the header of volume, read again under
 * trust.  All it points to must outlive the daemon.
 */
/* The most CMKs a volume may have (add-key refuses more); a header with
 * more is refused where they all count (reencryption, --revocation any). */
#define VOL_KEYS_MAX  8
#define VOL_DOORS_MAX (VOL_KEYS_MAX - 1)

struct vol_reprove {
	pthread_mutex_t lock; /* token changes when an online reencryption
				 starts (the one that opens the new key) */
	struct vol_token *token;
	/* The volume's other CMKs: tokens of other keys, each proven at
	 * mount to open a keyslot of the volume key served (vol_reprove_
	 * doors).  A check refuses when KMS refuses every key (the default),
	 * or with every_key, when it refuses any one of them. */
	struct vol_token doors[VOL_DOORS_MAX];
	unsigned n_doors;
	bool every_key;
	char about[256];     /* the key the last answer was about */
	char request_id[96]; /* the KMS request of that answer, or "" */
	const struct vol_binding *binding;
	const struct kms_options *ko;
	const char *volume;
	const struct vol_trust *trust;
};
void vol_reprove_hook(struct vol_reprove *r, struct fsd_reprove *out);

/*
 * The other doors of the volume, for the checks: every live aws-kms token
 * of v (as read, with info) of another CMK than r->token's whose secret,
 * unwrapped through KMS as an unlock does, opens a keyslot to vk — the key
 * the mount serves, so that a token a rewritten header adds counts for
 * nothing.  e->attempts says each key's outcome.  0; with r->every_key,
 * -errno with e said when one of them does not open it (every key must
 * grant access from the start).  vol_reprove_free releases the doors.
 */
int vol_reprove_doors(struct vol_reprove *r, struct luks2_vol *v,
		      const struct luks2_info *info,
		      const struct crypto_key *vk, struct vol_error *e);
void vol_reprove_free(struct vol_reprove *r);

/* ---------------------------------------------------------------------------
 * The CMK rules
 *
 * Checked before a volume is bound to a key (create, rotate, reencrypt,
 * status --check-key, check-key): the key exists in the region in use, is a
 * symmetric encryption key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT) with
 * KMS-generated material (Origin AWS_KMS, not imported), is enabled, and
 * the caller can GenerateDataKey and Decrypt with it — a dry round trip
 * under a throwaway encryption context.  A KMIP key: it exists on the
 * server, is a symmetric AES-256 key, is Active, its usage mask allows
 * Encrypt and Decrypt, and this client may use it — a dry GCM round trip
 * under throwaway additional data.
 * ------------------------------------------------------------------------- */

enum vol_key_problem {
	VOL_KEY_OK = 0,
	VOL_KEY_NOT_ARN,	  /* not a key ARN: a volume names its key by
				     ARN */
	VOL_KEY_KMS,		  /* KMS refused or failed step: kms */
	VOL_KEY_NOT_SYMMETRIC,	  /* info.spec / info.usage */
	VOL_KEY_IMPORTED,	  /* Origin EXTERNAL */
	VOL_KEY_ORIGIN,		  /* another Origin: info.origin */
	VOL_KEY_PENDING_DELETION, /* info.deletion_date */
	VOL_KEY_NOT_ENABLED,	  /* info.state */
	VOL_KEY_BAD_ROUND_TRIP,	  /* KMS decrypted the test data key to
				     something else */
	/* KMIP keys (kmip: what Get Attributes said) */
	VOL_KEY_NOT_AES256, /* not a Symmetric Key, or not AES-256 */
	VOL_KEY_NOT_ACTIVE, /* its State is not Active */
	VOL_KEY_USAGE,	    /* its usage mask lacks Encrypt or Decrypt */
};

struct vol_key_check {
	enum vol_key_problem problem;
	const char *step;	  /* the KMS action that failed (VOL_KEY_KMS) */
	char region[64];	  /* the region the ARN names */
	char client_region[64];	  /* the region the client asked */
	struct kms_key_info info; /* from DescribeKey, once it answered */
	enum vol_key_kind kind;
	struct kmip_key_info kmip; /* from Get Attributes (KMIP) */
	struct kms_error kms;
};

/* 0 when arn (a key name of either kind; k opened for it) is fit to
 * protect volumes; -EKEYREJECTED with out->problem saying why not; -EIO
 * (no randomness). */
int vol_check_key(struct vol_kms *k, const char *arn,
		  struct vol_key_check *out);

/* One aws-kms token tried by an unlock: what opened the volume, or why
 * that key did not. */
struct vol_attempt {
	int token;
	char key_arn[256];
	enum vol_failure what; /* VOL_FAIL_NONE: it opened the volume */
	int keyslot;	       /* the keyslot it opened, or -1 */
	enum kms_status kms;   /* KMS's answer, for VOL_FAIL_UNWRAP and
				  VOL_FAIL_KMS_CLIENT */
	char reason[900];      /* why not, one line (vol_failure_reason
				  and KMS's error) */
};
#define VOL_ATTEMPTS_MAX 8

/* What went wrong (the Errors section above says which member means
 * what for each failure).  An unlock also lists every token it tried in
 * attempts, in order, whether it succeeded or not. */
struct vol_error {
	enum vol_failure what;
	bool with_errno;
	enum vol_conflict conflict;
	char key_arn[256];
	char region[64];
	char message[512];
	uint64_t bytes;
	struct kms_error kms;
	struct vol_key_check key;
	struct vol_attempt attempts[VOL_ATTEMPTS_MAX];
	unsigned n_attempts;
};

/* Why an unlock through e->key_arn failed (VOL_FAIL_UNWRAP,
 * VOL_FAIL_KMS_CLIENT, VOL_FAIL_KEYSLOT, VOL_FAIL_BINDING), in one
 * sentence that follows "cannot unlock VOLUME: " — KMS's own error line
 * not included: "the key ARN is disabled". */
void vol_failure_reason(const struct vol_error *e, char *out, size_t len);

/* ---------------------------------------------------------------------------
 * Creating a volume
 * ------------------------------------------------------------------------- */

struct vol_create_params {
	const char *volume;  /* a new file (or one to overwrite, with force),
				or a block device used whole */
	const char *key_arn; /* the CMK, checked first (vol_check_key) */
	const char *cipher;  /* "aes-xts-plain64" or "cipher_null" */
	const char *label;   /* or NULL */
	uint64_t size;	     /* usable bytes of a file, a multiple of
				sector_size; 0 for a block device */
	unsigned sector_size;
	bool force; /* overwrite what carries a LUKS or filesystem
		       signature */
	/* Called with the temporary file's name once it exists, and with
	 * NULL once it is renamed into place or removed: so that a signal
	 * handler can remove it (vol_create installs none). */
	void (*tmp_file)(const char *path, void *arg);
	void *tmp_arg;
};

/*
 * Create a volume: a fresh UUID, a keyslot secret from GenerateDataKey under
 * key_arn bound to it, the LUKS2 header with that keyslot and its aws-kms
 * token and the blank mark; a file is built beside the target, fully
 * allocated, and renamed into place when complete.  0 with *info the new
 * volume's, or -errno with e said (nothing is left behind).
 */
int vol_create(struct vol_kms *k, const struct vol_create_params *p,
	       struct luks2_info *info, struct vol_error *e);

/* ---------------------------------------------------------------------------
 * Rotation: another CMK, or the secret re-wrapped
 *
 * Header work only, safe on a volume in use, under the header lock.  A move
 * to another CMK adds a keyslot opened by a data key of the new CMK and its
 * token, then removes the old token and keyslot, so that a crash at any
 * point leaves a volume that opens with the old key or the new one.  A
 * re-wrap has KMS ReEncrypt the token's blob (to another key, or to the same
 * key's newest material): the secret never leaves KMS, the keyslot stays.
 * ------------------------------------------------------------------------- */

#define VOL_ROTATED_MAX 32

struct vol_rotated {
	int old_keyslot, new_keyslot; /* the same for a re-wrap */
	char old_key_arn[256];
	char key_arn[256]; /* the key the volume now opens through */
	/* aws-kms tokens that covered no keyslot (left by an interrupted
	 * rotation), removed afterwards */
	int removed_tokens[VOL_ROTATED_MAX];
	unsigned n_removed;
};

/* Move volume to new_arn (rewrap false), or re-wrap its secret under
 * new_arn or, when NULL, the same key (rewrap true).  trust applies to the
 * current key.  The current key must
 * still unlock it; new_arn must meet the CMK rules.  0 with *out filled,
 * or -errno with e said. */
int vol_rotate(const char *volume, const struct kms_options *ko,
	       const char *new_arn, bool rewrap, const struct vol_trust *trust,
	       struct vol_rotated *out, struct vol_error *e);

/* ---------------------------------------------------------------------------
 * More than one CMK
 *
 * A volume may open through several CMKs — a replica in another region for
 * disaster recovery, a break-glass key in another account — each with its
 * own keyslot whose secret is a data key of that CMK, and its own aws-kms
 * token.  Adding one is a rotation's steps 1 and 2 (keyslot, then token);
 * removing one destroys its keyslots (not one another key's token still
 * covers), then removes its tokens: after any step the volume opens as
 * before or as after, and a run again finishes a removal cut off.
 * ------------------------------------------------------------------------- */

struct vol_key_change {
	char key_arn[256];   /* the key added or removed */
	char opened_by[256]; /* the key that proved the volume opens */
	int keyslots[8];     /* added (one) or destroyed */
	unsigned n_keyslots;
	int tokens[8]; /* added (one) or removed */
	unsigned n_tokens;
};

/* Add new_arn, after the CMK rules are checked (vol_check_key), the
 * volume unlocked by a key it already has (trust applies to it): 0 with
 * *out filled, or -errno with e said; -EEXIST when new_arn already opens
 * it. */
int vol_add_key(const char *volume, const struct kms_options *ko,
		const char *new_arn, const struct vol_trust *trust,
		struct vol_key_change *out, struct vol_error *e);

/* Remove every aws-kms token of arn and the keyslots only they cover,
 * once another of the volume's keys has opened it (trust applies to
 * that one): 0 with *out filled, or -errno with e said; -ENOENT when arn
 * has no token, -EPERM when it is the only key left. */
int vol_remove_key(const char *volume, const struct kms_options *ko,
		   const char *arn, const struct vol_trust *trust,
		   struct vol_key_change *out, struct vol_error *e);

/* ---------------------------------------------------------------------------
 * Reencryption (offline): every byte under a new volume key
 *
 * The volume, locked against every other cmkfs command, gets a new random
 * volume key opened, like the current one, by a fresh KMS data key of the
 * chosen CMK (default: the one that opens it), wrapped too under each of
 * its other CMKs; every other keyslot and token is destroyed first, so
 * that no old secret can read it afterwards; then libcryptsetup rewrites
 * the data block by block,
 * each block protected by the chosen resilience.  Until it ends the volume
 * cannot be unlocked; a resume recovers a block a crash cut off, and
 * completes an end that was itself cut off.
 * ------------------------------------------------------------------------- */

struct vol_reencrypt;

struct vol_reencrypt_opts {
	const char *key_arn;	/* NULL: the volume's current CMK */
	const char *resilience; /* "checksum" or "journal" */
	bool resume;		/* continue one in progress */
	bool online; /* the volume is mounted: only prepare the header (the
			daemon runs the data; vol_reencrypt_data is not for
			this job) under the header-change lock */
	struct vol_trust trust; /* of the current header and key */
};

#define VOL_REENCRYPT_NOTES 32

/* What vol_reencrypt_start did, for the caller to tell. */
struct vol_reencrypt_start {
	char key_arn[256]; /* the key the volume opens through afterwards */
	char kept[VOL_DOORS_MAX][256]; /* its other keys, which open it
					  afterwards too */
	unsigned n_kept;
	char replaced[256]; /* the key key_arn replaces, or "" */
	int destroyed[VOL_REENCRYPT_NOTES]; /* keyslots destroyed */
	unsigned n_destroyed;
	bool recovered; /* resume: a block a crash cut off was recovered */
	bool finished;	/* resume: every block was done; the end is now
			   complete, and there is no data to run */
};

typedef int (*vol_progress_fn)(uint64_t done, uint64_t total, void *arg);

/*
 * Start (or, with o->resume, resume) the reencryption of volume: 0 with
 * *job ready for vol_reencrypt_data (unless st->finished), or -errno with e
 * said.  vol_reencrypt_data rewrites the data, calling progress after every
 * block (non-zero from it stops cleanly between two blocks: -EINTR,
 * resumable); 0 when the whole volume is done, with *info the header as it
 * ends.  vol_reencrypt_end releases the job and the lock (accepts NULL).
 */
int vol_reencrypt_start(const char *volume, const struct kms_options *ko,
			const struct vol_reencrypt_opts *o,
			struct vol_reencrypt **job,
			struct vol_reencrypt_start *st, struct vol_error *e);
int vol_reencrypt_data(struct vol_reencrypt *job, vol_progress_fn progress,
		       void *arg, struct luks2_info *info, struct vol_error *e);
void vol_reencrypt_end(struct vol_reencrypt *job);

/* The file where the header being replaced is kept while the end of a
 * reencryption is completed (it exists only while that is cut off): 0, or
 * -errno with e said.  vol_reencrypt_end_cut_off: whether it exists. */
int vol_reencrypt_snapshot(const char *volume, char *out, size_t len,
			   struct vol_error *e);
bool vol_reencrypt_end_cut_off(const char *volume);

/* ---------------------------------------------------------------------------
 * Status: what a volume is, gathered once (no KMS request)
 * ------------------------------------------------------------------------- */

enum vol_reencryption {
	VOL_REENC_NONE = 0,
	VOL_REENC_IN_PROGRESS, /* stopped between blocks: resumable */
	VOL_REENC_CRASHED,     /* cut off in the middle of a block */
	VOL_REENC_END_CUT_OFF, /* its end was cut off: resume completes it */
};

struct vol_status_slot {
	int keyslot;
	int token; /* the aws-kms token covering it, -1: none (a keyslot
		      that opens without KMS) */
	char key_arn[256];
	char region[64];
	char created[40];
	bool segment_bound; /* binding "volume+segment", else "volume" */
};

#define VOL_STATUS_ROWS 64

/* Does the header pass the allow-list (luks2_allowed)? */
enum vol_allowed {
	VOL_ALLOWED = 0,
	VOL_ALLOWED_INSECURE, /* only with --insecure: NOT ENCRYPTED */
	VOL_REFUSED,	      /* never: refused says why */
};

struct vol_status {
	struct luks2_info info;
	enum vol_reencryption reencryption;
	/* A reencryption's progress, from the header: bytes of the data
	 * under the new key, of all (0 and 0 without one). */
	uint64_t reencrypt_done, reencrypt_total;
	/* A row per keyslot and aws-kms token covering it (one per CMK
	 * that opens the keyslot), or per keyslot no token covers. */
	struct vol_status_slot slots[VOL_STATUS_ROWS];
	unsigned n_slots;
	bool only_kms_keyslots; /* every keyslot is bound to a KMS key */
	enum vol_allowed allowed;
	char refused[512];
};

/* 0 with *out filled, or -errno with e said.  A volume in reencryption
 * opens too, and so does one off the allow-list (shown, never unlocked). */
int vol_status(const char *volume, struct vol_status *out, struct vol_error *e);
/* "none", "in-progress", "crashed", "end-cut-off". */
const char *vol_reencryption_name(enum vol_reencryption r);

/* ---------------------------------------------------------------------------
 * Mounting: the volume served by the daemon (fs/)
 *
 * vol_mount_open locks the volume as mounted (the lock lives as long as the
 * descriptor, which a forked daemon inherits), reads its header (checked
 * against the allow-list and trust, which must outlive m) and refuses
 * a volume some daemon already serves.  vol_mount_serve, in the process
 * that will serve it, unlocks it through KMS, hands the key and the
 * revocation check to fsd_serve and returns when the daemon ends: 0 after a
 * clean shutdown, or -errno with e said and *was_ready telling whether the
 * mount had become usable.  A blank volume may get its filesystem; its
 * blank mark goes once something may have been written (before serving a
 * raw mount, once the filesystem is made otherwise).  vol_mount_close
 * releases the header and, in the process that calls it, the lock.
 * ------------------------------------------------------------------------- */

struct vol_mount;

struct vol_mount_params {
	const char *target; /* absolute: a directory, or with raw the path
			       of the plaintext file */
	const char *fstype; /* "ext4" or "xfs" */
	bool raw, read_only, allow_discards;
	bool mkfs;   /* make a filesystem where there is none */
	bool detach; /* stdio to /dev/null once ready */
	const char *log_file;
	unsigned threads;
	enum fsd_fuse_uring fuse_uring;
	unsigned poll_us;			   /* fsd_params.poll_us */
	const char *metrics_listen, *metrics_file; /* fsd_params' */
	unsigned metrics_interval;
	unsigned check_interval, outage_grace; /* seconds */
	enum fsd_on_revoke on_revoke;
	bool revoke_every_key;	     /* --revocation any: every CMK of the
					volume must grant access, not one */
	unsigned suspend_timeout;    /* seconds, 0: forever */
	uint64_t reencrypt_max_rate; /* bytes/s of an online reencryption;
					0: the default */
	bool reencrypt_paused;	     /* an unfinished one waits for a resume */
	const struct kms_options *ko;
	/* Called in the daemon once the mount is usable; blank_kept: why the
	 * blank mark could not be cleared (a later mount could format the
	 * volume: say so), or NULL. */
	void (*ready)(void *arg, const char *blank_kept);
	void *ready_arg;
};

int vol_mount_open(const char *volume, const struct vol_trust *trust,
		   struct vol_mount **m, struct vol_error *e);
const struct luks2_info *vol_mount_info(const struct vol_mount *m);
int vol_mount_serve(struct vol_mount *m, const struct vol_mount_params *p,
		    bool *was_ready, struct vol_error *e);
void vol_mount_close(struct vol_mount *m);

/* ---------------------------------------------------------------------------
 * Header backup and restore
 *
 * backup copies the LUKS2 header (both metadata copies and the keyslot
 * area) to file, which must not exist.  restore writes it back, with the
 * volume locked against every other cmkfs command (it must not be mounted);
 * a backup's blank mark survives only onto a volume that still carries one,
 * so that a restored header never lets a mount format over data.
 * ------------------------------------------------------------------------- */

int vol_header_backup(const char *volume, const char *file,
		      struct vol_error *e);
int vol_header_restore(const char *volume, const char *file,
		       struct vol_error *e);

/* ---------------------------------------------------------------------------
 * The volume lock
 *
 * Keeps cmkfs commands on one volume apart (open file description locks,
 * which do not meet libcryptsetup's flock()s): *fd holds the lock until
 * closed.  Kinds:
 *   VOL_LOCK_HEADER   one header change at a time (rotate)
 *   VOL_LOCK_MOUNTED  shared, held while the volume is mounted
 *   VOL_LOCK_OFFLINE  nothing else at all: not mounted, no header change
 *                     (reencrypt, header-restore)
 * 0, -EBUSY with e->conflict when another command holds it, or the -errno
 * of opening the volume.
 * ------------------------------------------------------------------------- */

enum vol_lock_kind { VOL_LOCK_HEADER, VOL_LOCK_MOUNTED, VOL_LOCK_OFFLINE };
int vol_lock(const char *volume, enum vol_lock_kind kind, int *fd,
	     struct vol_error *e);

#endif /* CMKFS_VOLUME_H */
