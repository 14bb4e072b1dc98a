/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h — what luks2.c shares with reencrypt.c in crypto/luks2/:
 * the volume handle and the helpers every header change goes through.
 * Internal to crypto/luks2/; other modules see only luks2.h.
 */
#ifndef CMKFS_LUKS2_INTERNAL_H
#define CMKFS_LUKS2_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <libcryptsetup.h>

#define LUKS2_MAX_TOKENS   32 /* LUKS2_TOKENS_MAX; luks2_info.tokens as many */
#define LUKS2_MAX_SEGMENTS 32 /* live segments looked at */
#define SECTOR		   512u /* the unit of libcryptsetup's sizes and offsets */

struct luks2_vol {
	struct crypt_device *cd;
	char *path;
	uint64_t device_size;
	int copy_fd;   /* memfd holding the header area when loaded degraded */
	bool borrowed; /* cd is the host program's (luks2_borrow) */
	char *token_json[LUKS2_MAX_TOKENS]; /* copies from luks2_token_json */
};

/* Before every libcryptsetup call whose failure we report: forget its
 * earlier messages (some are logged as errors on success paths). */
void luks2_lib_begin(void);

/* err = the formatted message. */
void luks2_say(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* err = "<message>: <libcryptsetup's last error, or strerror(-r)>";
 * returns r. */
int luks2_fail(char *err, size_t errlen, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

void luks2_clear_err(char *err, size_t errlen);

/* Before any change: a handle loaded from an in-memory copy of a damaged
 * header is swapped for one on the device (see luks2.c). */
int luks2_make_writable(struct luks2_vol *v, char *err, size_t errlen);

/* cmkfs's keyslot KDF for the next keyslot added through cd. */
int luks2_set_kdf(struct crypt_device *cd, const char *path, char *err,
		  size_t errlen);

/* Before adding a keyslot (or starting anything that makes libcryptsetup
 * derive keys): the header writable, cmkfs's KDF set (else libcryptsetup
 * benchmarks PBKDF2), token copies dropped. */
int luks2_begin_keyslot_add(struct luks2_vol *v, char *err, size_t errlen);

/* Drop the token JSON copies handed out (before a header change). */
void luks2_tokens_forget(struct luks2_vol *v);

/* The blank mark (crypto.h, luks2_is_blank) as a token, and the id of the
 * volume's own, or -ENOENT. */
#define LUKS2_BLANK_TOKEN "{\"type\":\"cmkfs-blank\",\"keyslots\":[]}"
int luks2_blank_token(struct luks2_vol *v);

/* Keyslot exists and is in use (and, when bound, opens the data's volume
 * key): 0, or the error with err said. */
int luks2_check_keyslot(struct luks2_vol *v, int keyslot, bool bound, char *err,
			size_t errlen);

/* The volume key keyslot opens with secret (any keyslot, bound or not):
 * 0, or -errno with err said (-EPERM: the secret does not open it). */
struct crypto_key;
int luks2_key_get(struct luks2_vol *v, int keyslot, const uint8_t *secret,
		  size_t secret_len, struct crypto_key **vk, char *err,
		  size_t errlen);

/* ---- segments.c: the header's segments and digests */
struct json_object;
/* Where the data ends: the end of the file less a partial last sector. */
uint64_t luks2_data_end(struct luks2_vol *v);
/* The digest (in the metadata m) that lists segment id, or NULL. */
struct json_object *luks2_seg_digest(struct json_object *m, const char *id);
/* A segment's size in bytes ("dynamic": up to end, from the start of the
 * device); false when it is neither a number nor "dynamic". */
bool luks2_seg_bytes(struct json_object *seg, uint64_t end, uint64_t *size);

/* The UUID of the LUKS header copies of path (a good copy's, else any
 * copy's, even damaged): 0, -ENOENT when none has one, -errno. */
int luks2_device_uuid(const char *path, char *uuid, size_t len);

/* fsync path (opened with flags), or the directory that holds it: 0 or
 * -errno.  (files.c) */
int luks2_fsync_path(const char *path, int flags);
int luks2_fsync_parent(const char *path);
/* path names a regular file. */
bool luks2_file_exists(const char *path);

#endif
