/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h — what the files of volume/ share (internal to volume/).
 */
#ifndef CMKFS_VOLUME_INTERNAL_H
#define CMKFS_VOLUME_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "volume.h"

struct luks2_vol;
struct luks2_info;

/* The luks2_open_flags of trust (a struct vol_trust *, or NULL). */
#define VOL_OPEN_TRUST(trust)                                                  \
	((trust) && (trust)->insecure ? LUKS2_OPEN_INSECURE : 0u)

/* e: VOL_FAIL_MESSAGE, the formatted sentence (followed by r's errno text
 * when with_errno); returns r. */
int vol_fail(struct vol_error *e, int r, bool with_errno, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* luks2_open_flags and luks2_info: 0, or -errno with e said. */
int vol_open_info(const char *path, unsigned flags, struct luks2_vol **v,
		  struct luks2_info *info, struct vol_error *e);

/* The service that holds a key (volume.h): one client, of its kind. */
struct vol_kms {
	enum vol_key_kind kind;
	struct kms_client *aws;
	struct kmip_client *kmip;
	char where[300]; /* KMIP: "HOST:PORT" */
};

/* The service that holds key (vol_kms_open), for an AWS key in the
 * region its ARN names unless ko names one: 0, or -errno with e said
 * (VOL_FAIL_KMS_CLIENT). */
int vol_kms_for(const struct kms_options *ko, const char *key,
		struct vol_kms **k, struct vol_error *e);

/* The service that holds the key of token t: an AWS one in the region the
 * token records unless ko names one.  0, or -errno with the reason in
 * kerr. */
struct vol_token;
int vol_kms_for_token(const struct kms_options *ko, const struct vol_token *t,
		      struct vol_kms **k, struct kms_error *kerr);

/* The token JSON (token.c, malloc'ed, "keyslots": []) of a secret bound to
 * all of b: wrapped by AWS key key_arn (its region, else region, is
 * recorded) into blob, or by KMIP key key into w. */
char *vol_token_json_aws(const char *key_arn, const char *region,
			 const struct vol_binding *b, const uint8_t *blob,
			 size_t blob_len);
struct kmip_wrapped;
char *vol_token_json_kmip(const char *key, const struct vol_binding *b,
			  const struct kmip_wrapped *w);
/* The additional data a KMIP wrapping authenticates, b (its segment too
 * when segment) as "cmkfs:volume=UUID\ncmkfs:segment=SEGMENT", into out:
 * its length, 0 when it does not fit. */
size_t vol_kmip_aad(const struct vol_binding *b, bool segment, char *out,
		    size_t len);

/* The CMK rules for arn, before anything is bound to it: 0, or -errno with
 * e said (VOL_FAIL_KEY_UNFIT, "<what> <volume>"). */
int vol_check_new_key(struct vol_kms *k, const char *arn, const char *what,
		      const char *volume, struct vol_error *e);

/* A new keyslot secret bound to the header info describes (its UUID and
 * data segment) under arn (vol_secret_new),
 * the CMK rules checked first when check (vol_check_new_key); a KMS
 * refusal said as "<what> <volume>: no data key from <arn>"
 * (VOL_FAIL_KMS). */
int vol_new_secret(struct vol_kms *k, const char *arn, bool check,
		   const struct luks2_info *info, const char *what,
		   const char *volume, uint8_t **secret, char **token,
		   struct vol_error *e);

/*
 * The volume's keys other than opened_by, each proven to open a keyslot to
 * vk (the volume key in use) by its token's secret unwrapped through KMS:
 * a token a rewritten header adds opens nothing and counts for nothing.
 * Their tokens go to out (at most max; *n of them), e->attempts says each
 * try.  0 when every other key is proven; else the -errno of the first
 * that is not (out still holds those that are), -E2BIG with e said when
 * there are more than max.
 */
int vol_other_keys(struct luks2_vol *v, const struct luks2_info *info,
		   const struct kms_options *ko, const struct vol_trust *trust,
		   const char *opened_by, const struct crypto_key *vk,
		   struct vol_token *out, unsigned max, unsigned *n,
		   struct vol_error *e);

/* A new keyslot for volume key vk opened by secret (VOL_SECRET_BYTES),
 * then token_json assigned to it, each one header write: a crash between
 * the two leaves a keyslot whose secret nothing keeps (status shows it);
 * a token that cannot be added takes its keyslot away again.  0 with *slot
 * and *id, or -errno with err said. */
struct crypto_key;
int vol_keyslot_with_token(struct luks2_vol *v, const struct crypto_key *vk,
			   const uint8_t *secret, const char *token_json,
			   int *slot, int *id, char *err, size_t errlen);

/* The file that keeps the header an end of a reencryption replaces
 * (vol_reencrypt_snapshot) in snapshot, what a crash left of its removal
 * cleaned up: 0 with *cut_off when such an end was cut off.
 * vol_reencrypt_restore puts that header back (then resume again). */
int vol_reencrypt_cut_off(const char *volume, char *snapshot, size_t len,
			  bool *cut_off, struct vol_error *e);
int vol_reencrypt_restore(const char *volume, const char *snapshot,
			  const struct vol_trust *trust, struct vol_error *e);

/* ---- online reencryption (online.c) */

/* A volume being reencrypted, readied to be served while the job goes on:
 * a block a crash cut off recovered, an end cut off completed (finished:
 * nothing more to do; read_only: neither, the volume is not written, and
 * one that needs either is refused), else both volume keys and where the job
 * stands
 * ([0, done) of total under new_vk); v holds the reencryption loaded,
 * token the token that opens both keys. */
struct vol_rekey {
	struct luks2_vol *v;
	struct crypto_key *old_vk, *new_vk;
	uint64_t done, total;
	bool recovered, finished;
	struct vol_token token;
	char snapshot[PATH_MAX + 64];
};
int vol_rekey_ready(const char *volume, const struct kms_options *ko,
		    bool read_only, const struct vol_trust *trust,
		    struct vol_rekey *out, struct vol_error *e);
void vol_rekey_free(struct vol_rekey *k); /* accepts a zeroed one */

/* The daemon's job (fs.h, struct fsd_job) for volume, unwrapping through
 * ko; ready: what the mount readied (moved to the job when it starts).
 * The revocation check follows the token that opens the new key. */
struct vol_online {
	const char *volume, *name;
	const struct kms_options *ko;
	const struct vol_trust *trust; /* the mount's */
	struct vol_reprove *reprove;
	struct vol_rekey ready;
};
void vol_online_job(struct vol_online *o, struct fsd_job *job);

#endif
