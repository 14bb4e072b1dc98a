/* SPDX-License-Identifier: Apache-2.0 */
/*
 * luks2.h — the public interface of crypto/luks2/, cmkfs's LUKS2 volume
 * format on top of libcryptsetup (and libblkid for signatures).  The only
 * header other modules include from crypto/luks2/; no libcryptsetup type
 * leaks through it.  It needs crypto.h (secure memory) and nothing of KMS.
 */
#ifndef CMKFS_LUKS2_H
#define CMKFS_LUKS2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------
 * LUKS2 volumes (libcryptsetup)
 *
 * The header work of a cmkfs volume: format, load, unlock a keyslot, add and
 * remove keyslots and tokens, back up and restore the header.  Two header
 * copies, checksums, metadata locking and recovery from a damaged primary
 * header are libcryptsetup's job; this layer only chooses cmkfs's
 * parameters and hides libcryptsetup's types.  It knows nothing of KMS: a
 * keyslot secret is just bytes, a token just JSON.
 *
 * Format (fixed): LUKS2, "aes-xts-plain64" with a 512-bit random volume key
 * (or "cipher_null" for benchmark volumes), encryption sector size 512..4096
 * (default 4096), data segment at libcryptsetup's default offset, keyslots
 * with KDF pbkdf2-sha256 at 1000 iterations and no benchmark: keyslot
 * secrets are full-entropy keys, not passphrases.
 *
 * Errors: 0 or -errno, and a one-line reason in err (never secret bytes).
 * Thread-safety: a struct luks2_vol is used by one thread at a time.
 * ------------------------------------------------------------------------- */

#define LUKS2_KEY_MAX 64 /* bytes of the largest volume key */

struct luks2_vol;

struct luks2_format_params {
	const char *cipher;   /* "aes-xts-plain64" or "cipher_null" */
	unsigned sector_size; /* 512..4096, power of two; 0 = 4096 */
	const char *uuid;     /* the LUKS UUID to use (the caller binds the
				 keyslot secret to it before formatting) */
	const char *label;    /* or NULL */
};

/*
 * Format path (an existing file of its final size, or a block device) as a
 * LUKS2 volume with a fresh random volume key and one keyslot opened by
 * secret.  When token_json is not NULL it is added as a token (it must have
 * "type" — not starting "luks2-" — and "keyslots": [] members) and assigned
 * to that keyslot in the same header write.  The UUID must be lower case
 * (libcryptsetup would store it so, breaking a binding to the exact string);
 * path must hold at least 16 MiB plus one sector, in whole sectors.  Writes
 * nothing outside path; a failure after the header was written zeroes the
 * header area.  -EINVAL (bad parameters, path too small), -EBUSY (device in
 * use), -EIO.
 *
 * cipher_null (benchmarks only: the volume is NOT ENCRYPTED) gets a 32-byte
 * volume key, used by nothing but the keyslot's digest.  Where libcryptsetup
 * cannot check cipher_null through the kernel (no AF_ALG, no device-mapper)
 * the volume is formatted as aes-xts-plain64 and its data segment then
 * rewritten to cipher_null-ecb, checked by loading it with libcryptsetup.
 */
int luks2_format(const char *path, const struct luks2_format_params *p,
		 const uint8_t *secret, size_t secret_len,
		 const char *token_json, char *err, size_t errlen);

/* Where luks2_format puts the data segment, whatever the device. */
#define LUKS2_DATA_OFFSET (16u << 20)

/* What luks2_info will say of the data segment of a volume luks2_format
 * makes with p (uuid, cipher, key_bytes, sector_size, data_offset; the
 * rest zero): what a keyslot secret is bound to before the header
 * exists. */
struct luks2_info;
void luks2_format_info(const struct luks2_format_params *p,
		       struct luks2_info *out);

/* Load the LUKS2 header of path.  A damaged header copy is recovered from
 * the other in memory only: opening never writes to the device (the first
 * change made through the handle repairs it on disk).  -ENOENT, -EINVAL
 * (not LUKS2, LUKS1, unknown requirements), -EBUSY (a reencryption is in
 * progress or was interrupted), -EIO.  Changes through a handle of a
 * damaged volume may fail with -ESTALE if the header changed meanwhile. */
int luks2_open(const char *path, struct luks2_vol **out, char *err,
	       size_t errlen);
void luks2_close(struct luks2_vol *v); /* accepts NULL */

/*
 * luks2_open with flags.  LUKS2_OPEN_REENCRYPTING also opens a volume whose
 * reencryption is in progress or was interrupted (to inspect, recover,
 * resume or serve it).
 *
 * The header is not trusted: its checksums are not keyed.  Every open
 * checks it against cmkfs's allow-list (crypto/luks2/allow.c: the data
 * segment aes-xts-plain64 with a 512-bit key, sector size 512..4096, an
 * offset past the keyslots, one segment, keyslot areas of the same cipher,
 * no unknown requirement) and refuses anything else with -EINVAL and the
 * field and value in err.  LUKS2_OPEN_INSECURE accepts a cipher_null-ecb
 * segment too (benchmark volumes); LUKS2_OPEN_INSPECT skips the allow-list,
 * to show or copy a header that is never unlocked through the handle
 * (luks2_allowed then says whether it passes).  LUKS2_OPEN_HEADER_FILE: path
 * is a header backup, with no data behind it, so segments are not checked
 * against its size.
 */
#define LUKS2_OPEN_REENCRYPTING (1u << 0)
#define LUKS2_OPEN_INSECURE	(1u << 1)
#define LUKS2_OPEN_INSPECT	(1u << 2)
#define LUKS2_OPEN_HEADER_FILE	(1u << 3)
int luks2_open_flags(const char *path, unsigned flags, struct luks2_vol **out,
		     char *err, size_t errlen);
/*
 * For code that runs inside another program's libcryptsetup (the token
 * plugin): a handle over the host's cd, checked as luks2_open_flags checks
 * (usable, allow-list), that luks2_close leaves to its owner.  From the
 * first call on, this module never changes the library's process-wide
 * settings (log callback, debug level, external tokens): they are the
 * host's.  0, or -errno with err said.
 */
struct crypt_device;
int luks2_borrow(struct crypt_device *cd, unsigned flags,
		 struct luks2_vol **out, char *err, size_t errlen);

/* The allow-list check of luks2_open_flags, for a handle opened with
 * LUKS2_OPEN_INSPECT: 0, or -EINVAL with err said. */
int luks2_allowed(struct luks2_vol *v, unsigned flags, char *err,
		  size_t errlen);

enum luks2_reencrypt {
	LUKS2_REENCRYPT_NONE = 0, /* one key for all data */
	LUKS2_REENCRYPT_CLEAN,	  /* in progress or stopped between blocks:
				     resumable as it is */
	LUKS2_REENCRYPT_CRASHED,  /* cut off in the middle of a block: needs
			     recovery before anything else */
};

struct luks2_info {
	char uuid[40];
	char label[48];
	char cipher[64];      /* "aes-xts-plain64", "cipher_null-ecb" ... */
	unsigned sector_size; /* encryption sector size, bytes */
	unsigned key_bytes;   /* volume key size */
	uint64_t data_offset; /* bytes from the start of the device */
	uint64_t data_size;   /* bytes of the data segment (the plaintext
				 device's size), whole sectors */
	uint64_t data_tail;   /* bytes after the last whole sector of a
				 segment that runs to the end of the file:
				 not used */
	uint64_t device_size; /* bytes of the whole file/device */
	int keyslots[32];     /* active keyslot numbers */
	unsigned n_keyslots;
	int tokens[32]; /* token ids (any type) */
	unsigned n_tokens;
	int blank_token;	  /* the id of the blank mark (below), or < 0 */
	int unbound_keyslots[32]; /* keyslots holding some other key (e.g.
				     a reencryption's next volume key) */
	unsigned n_unbound;
	enum luks2_reencrypt reencrypt;
};

int luks2_info(struct luks2_vol *v, struct luks2_info *out);

/* Token `id` as JSON (valid until the next change or luks2_close);
 * -ENOENT if there is none. */
int luks2_token_json(struct luks2_vol *v, int id, const char **json);

/* Add token_json (with "type" and "keyslots": []) assigned to keyslot;
 * *id receives its id. */
int luks2_token_add(struct luks2_vol *v, const char *token_json, int keyslot,
		    int *id, char *err, size_t errlen);
int luks2_token_remove(struct luks2_vol *v, int id, char *err, size_t errlen);

/*
 * The blank mark: a token of type "cmkfs-blank" (no keyslots) that
 * `cmkfs create` puts on a new volume and the first mount that may write
 * removes.  A volume that carries it was never written, so a mount may make
 * its filesystem without destroying anything; one without it that holds no
 * filesystem is not formatted unless asked.  Marking a marked volume and
 * clearing an unmarked one do nothing.  0 or -errno with err said.
 */
bool luks2_is_blank(struct luks2_vol *v);
int luks2_blank_mark(struct luks2_vol *v, char *err, size_t errlen);
int luks2_blank_clear(struct luks2_vol *v, char *err, size_t errlen);

/* Add keyslot (in use, bound or not) to token id's "keyslots". */
int luks2_token_assign(struct luks2_vol *v, int id, int keyslot, char *err,
		       size_t errlen);

/*
 * Open keyslot with secret: *vk the volume key (crypto_key_free it).
 * -EPERM when the secret does not open that keyslot.
 */
struct crypto_key;
int luks2_unlock(struct luks2_vol *v, int keyslot, const uint8_t *secret,
		 size_t secret_len, struct crypto_key **vk, char *err,
		 size_t errlen);

/* A new keyslot opened by secret for the volume key vk; *keyslot receives
 * its number. */
int luks2_keyslot_add(struct luks2_vol *v, const struct crypto_key *vk,
		      const uint8_t *secret, size_t secret_len, int *keyslot,
		      char *err, size_t errlen);
/* A new keyslot opened by secret for a new random volume key of the same
 * size, not used by any data yet (an "unbound" key: the target of a
 * reencryption).  Never opens data on its own: luks2_unlock refuses it. */
int luks2_keyslot_add_new_key(struct luks2_vol *v, const uint8_t *secret,
			      size_t secret_len, int *keyslot, char *err,
			      size_t errlen);

/* Wipe keyslot (its key material area is overwritten).  Tokens naming it
 * lose it from their "keyslots" but stay: remove them too. */
int luks2_keyslot_destroy(struct luks2_vol *v, int keyslot, char *err,
			  size_t errlen);

/*
 * Reencryption: the data rewritten under a new volume key, in place, by
 * libcryptsetup's offline reencryption (userspace crypto; no
 * device-mapper needed).  Each block ("hotzone") is protected by the
 * chosen resilience, so a crash in the middle of one loses nothing: the
 * next luks2_reencrypt_resume() recovers it first.
 *
 * The caller prepares the keyslots: keyslot_old opens the current key and
 * keyslot_new (from luks2_keyslot_add_new_key) the next, both with the same
 * secret (libcryptsetup 2.6 opens both with one passphrase).  When the
 * reencryption ends, libcryptsetup destroys every keyslot of the old key.
 *
 * luks2_reencrypt_init writes the reencryption metadata (from then on,
 * luks2_open refuses the volume until it ends) and readies the handle for
 * luks2_reencrypt_run.  luks2_reencrypt_run rewrites the data, calling progress
 * (when not NULL) after every block; progress returning non-zero stops it
 * cleanly between two blocks (-EINTR; resumable).  Returns 0 when the
 * whole volume is done.
 *
 * luks2_reencrypt_resume readies the handle for a reencryption in progress:
 * it recovers first a block a crash cut off (LUKS2_RESUME_RECOVERED in
 * *what), and when every block is done it ends the reencryption itself
 * (LUKS2_RESUME_FINISHED: do not run; see reencrypt.c for why).  Ending it
 * replaces the header; snapshot names a file, on a filesystem that
 * survives a crash, that holds the header being replaced meanwhile.  If it
 * exists when a command starts, that replacement was cut off:
 * luks2_reencrypt_restore_snapshot puts it back (then resume again).
 * -EPERM when secret opens neither key.
 */
struct luks2_reencrypt_params {
	int keyslot_old;
	int keyslot_new;
	const char *resilience; /* "checksum" (default) or "journal" */
};

#define LUKS2_RESUME_RECOVERED (1u << 0)
#define LUKS2_RESUME_FINISHED  (1u << 1)

int luks2_reencrypt_init(struct luks2_vol *v, const uint8_t *secret,
			 size_t secret_len,
			 const struct luks2_reencrypt_params *p, char *err,
			 size_t errlen);
int luks2_reencrypt_resume(struct luks2_vol *v, const uint8_t *secret,
			   size_t secret_len, const char *snapshot,
			   unsigned *what, char *err, size_t errlen);
/* progress(done, total): bytes under the new key so far (committed in the
 * header), of total.  It is called with no block in flight; the next block
 * is [done, done + LUKS2_HOTZONE_BYTES) or what is left of the data. */
#define LUKS2_HOTZONE_BYTES ((uint64_t)4 << 20)
typedef int (*luks2_progress_fn)(uint64_t done, uint64_t total, void *arg);
int luks2_reencrypt_run(struct luks2_vol *v, luks2_progress_fn progress,
			void *arg, char *err, size_t errlen);
/* How far a reencryption has come, from the segments: *done bytes of the
 * data under the new key, of *total.  0, -ENOENT when the volume is not
 * being reencrypted, -EINVAL for segments it cannot read, -EIO. */
int luks2_reencrypt_progress(struct luks2_vol *v, uint64_t *done,
			     uint64_t *total);
/*
 * Serving a volume while it is reencrypted: both volume keys of a forward
 * reencryption stopped between blocks (after luks2_reencrypt_resume), each
 * checked by its digest, and *done, the bytes at the start of the data
 * already under the new key (the rest is under the old).  The segments must
 * be exactly that layout; anything else is -EINVAL (the header is not
 * trusted).  -EPERM when secret does not open both.
 */
int luks2_reencrypt_keys(struct luks2_vol *v, const uint8_t *secret,
			 size_t secret_len, struct crypto_key **old_vk,
			 struct crypto_key **new_vk, uint64_t *done, char *err,
			 size_t errlen);
/* The snapshot must be a regular file of this user that no one else may
 * write, hold the header of this volume (its UUID) and pass the allow-list
 * (flags: LUKS2_OPEN_INSECURE), or nothing is written. */
int luks2_reencrypt_restore_snapshot(const char *path, const char *snapshot,
				     unsigned flags, char *err, size_t errlen);

/* Zero a header backup file (it holds keyslots) and remove it, first
 * renaming it to FILE.dead (which a crash may leave: the next call on the
 * same name zeroes and removes it too). */
void luks2_header_file_destroy(const char *file);

/* Copy the LUKS2 header of path to file (which must not exist), or restore
 * it from file. */
int luks2_header_backup(const char *path, const char *file, char *err,
			size_t errlen);
int luks2_header_restore(const char *path, const char *file, char *err,
			 size_t errlen);
/* The same, with every blank mark of the backup left out, in one header
 * write: for a volume that may have been written since the backup was made
 * (the mark would let its next mount format it over its data).  The backup
 * file itself is not changed. */
int luks2_header_restore_unblank(const char *path, const char *file, char *err,
				 size_t errlen);

#endif /* CMKFS_LUKS2_H */
