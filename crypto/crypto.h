/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto.h — the public interface of cmkfs's crypto module: secure memory for
 * key material and the sector cipher that encrypts volume data exactly as
 * dm-crypt does for LUKS2.
 *
 * This is the only header other modules include from crypto/.  No OpenSSL
 * type or header leaks through it: the cipher context is opaque, and the
 * OpenSSL code lives in one file (crypto/cipher_openssl.c).
 *
 * Errors: every function that can fail returns 0 or a negative errno value.
 * Meanings specific to this module are listed per function; crypto_strerror()
 * turns them into a sentence for the user.
 */
#ifndef CMKFS_CRYPTO_H
#define CMKFS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------
 * Secure memory
 *
 * Every secret in cmkfs (volume key, keyslot secret, KMS plaintext and its
 * encodings) lives in memory from secmem_alloc().  Each allocation is its own
 * anonymous mapping, surrounded by inaccessible guard pages, excluded from
 * core dumps (MADV_DONTDUMP), not inherited by children (MADV_WIPEONFORK),
 * named "cmkfs-secmem" in /proc/PID/maps where the kernel supports naming,
 * and locked in RAM when the process may lock memory.  Locking is best
 * effort: a failure is counted (secmem_stats) rather than fatal, because an
 * unprivileged user with a small RLIMIT_MEMLOCK must still be able to run the
 * tools; the daemon, which runs as root, reports it.
 *
 * Freeing wipes the whole allocation with a store the compiler cannot elide,
 * then unlocks and unmaps it.  All functions are thread-safe.
 * ------------------------------------------------------------------------- */

/* Allocate n bytes (n > 0) of zeroed secure memory.  Returns NULL with errno
 * set (ENOMEM, EINVAL for n == 0 or absurd sizes). */
void *secmem_alloc(size_t n);

/* Resize, keeping the first min(old, n) bytes; the old block is wiped and
 * released.  secmem_realloc(NULL, n) is secmem_alloc(n).  On failure returns
 * NULL, sets errno and leaves p untouched. */
void *secmem_realloc(void *p, size_t n);

/* Wipe and release.  Accepts NULL. */
void secmem_free(void *p);

/* Usable size of an allocation (at least what was asked for). */
size_t secmem_size(const void *p);

/* Overwrite n bytes at p with zeros; never optimised away.  For any memory
 * that held a secret, secure or not (e.g. a stack buffer). */
void secmem_wipe(void *p, size_t n);

/* Constant-time comparison: true when the n bytes at a and b are equal.  The
 * time taken depends on n only, never on the contents. */
bool secmem_equal(const void *a, const void *b, size_t n);

/*
 * Wiping replacements for free() and realloc() on the ordinary heap, for
 * libraries whose buffers may hold key material we cannot keep out of them
 * (curl's receive buffers, OpenSSL's TLS records and HMAC states): the whole
 * block (malloc_usable_size) is zeroed before it is freed, and realloc never
 * leaves a moved block behind unwiped.  Install them with the library's
 * allocator hooks (curl_global_init_mem; crypto_init does OpenSSL's).
 */
void secmem_heap_free(void *p);
void *secmem_heap_realloc(void *p, size_t n);

/*
 * Zero the SECMEM_STACK_WIPE bytes of stack below the caller's frame: the
 * dead frames of library calls that handled a key (libcryptsetup, OpenSSL)
 * and may have left it there.  Call it right after such a call returns.
 */
#define SECMEM_STACK_WIPE (64u * 1024u)
void secmem_wipe_stack(void);

struct secmem_stats {
	size_t live_allocs;   /* allocations not yet freed */
	size_t live_bytes;    /* bytes mapped for them, guard pages excluded */
	size_t lock_failures; /* allocations that could not be mlock'ed */
};

/* Snapshot of the counters (for status output and tests). */
void secmem_stats(struct secmem_stats *st);

/* ---------------------------------------------------------------------------
 * Sector cipher
 *
 * Encrypts and decrypts runs of whole sectors of a volume's data segment.
 * The IV of a sector is dm-crypt's "plain64": the little-endian 64-bit number
 * of the 512-byte unit where the sector starts, counted from the start of the
 * data segment, plus iv_offset, zero-padded to 16 bytes.  With 4096-byte
 * sectors, sector N therefore uses IV 8*N (LUKS2 never sets dm-crypt's
 * iv_large_sectors), which is what makes cmkfs volumes readable by dm-crypt
 * and the reverse.
 *
 * Ciphers:
 *   "aes-xts-plain64"  AES-XTS with a 32-byte (AES-128) or 64-byte (AES-256)
 *                      key; cmkfs creates 64-byte keys.
 *   "cipher_null"      copies data unchanged, key ignored (key_len may be 0).
 *                      For benchmarks only: isolates I/O cost from crypto.
 *
 * A context holds the expanded key; only the IV changes per sector.  A context
 * is not thread-safe: give each thread its own (sc_dup), so the data path
 * takes no lock.
 * ------------------------------------------------------------------------- */

#define SC_MIN_SECTOR 512u
#define SC_MAX_SECTOR 4096u

struct sc_ctx;

struct sc_params {
	const char *cipher;   /* "aes-xts-plain64" or "cipher_null" */
	unsigned sector_size; /* power of two, SC_MIN_SECTOR..SC_MAX_SECTOR */
	uint64_t
		iv_offset; /* added to every IV, in 512-byte units (LUKS2: 0) */
};

/*
 * Create a context.  The key is copied into the context (in secure memory, or
 * into the cipher library's key schedule); the caller keeps ownership of key
 * and should wipe it when done.
 *
 * Returns 0 and sets *out, or:
 *   -EINVAL        bad sector size, or key length wrong for the cipher
 *   -ENOTSUP       unknown cipher name
 *   -EKEYREJECTED  an XTS key whose two halves are identical (XTS forbids it)
 *   -ENOMEM
 */
int sc_open(struct sc_ctx **out, const struct sc_params *p, const uint8_t *key,
	    size_t key_len);

/* A second context with the same key and parameters, for another thread.
 * Returns 0 or -ENOMEM. */
int sc_dup(const struct sc_ctx *src, struct sc_ctx **out);

/* Wipe the key schedule and free.  Accepts NULL. */
void sc_close(struct sc_ctx *ctx);

/*
 * Encrypt or decrypt len bytes starting at byte offset `offset` of the data
 * segment.  offset and len must be multiples of the sector size (else
 * -EINVAL, and nothing is written).  in == out works in place; otherwise the
 * buffers must not overlap.  len == 0 is a no-op.
 *
 * Returns 0, -EINVAL, or -EIO if the cipher library fails (not expected once
 * the context was created).
 */
int sc_encrypt(struct sc_ctx *ctx, uint64_t offset, const void *in, void *out,
	       size_t len);
int sc_decrypt(struct sc_ctx *ctx, uint64_t offset, const void *in, void *out,
	       size_t len);

unsigned sc_sector_size(const struct sc_ctx *ctx);
const char *sc_cipher(const struct sc_ctx *ctx);
/* What does the AES: "VAES/AVX-512" (cmkfs's own, on CPUs that have it,
 * for AES-256; CMKFS_XTS=openssl in the environment turns it off),
 * "OpenSSL", or "none" (cipher_null). */
const char *sc_impl(const struct sc_ctx *ctx);

/* True for ciphers that do not encrypt (cipher_null): callers must say so
 * loudly wherever a volume using one is shown or mounted. */
bool sc_is_null(const struct sc_ctx *ctx);

/* ---------------------------------------------------------------------------
 * Hashes, MACs and authenticated encryption (for KMS signatures and blobs)
 * ------------------------------------------------------------------------- */

#define CRYPTO_SHA256_LEN   32
#define CRYPTO_AEAD_KEY_LEN 32 /* AES-256-GCM */
#define CRYPTO_AEAD_IV_LEN  12
#define CRYPTO_AEAD_TAG_LEN 16

/* SHA-256 of len bytes.  0 or -EIO. */
int crypto_sha256(const void *data, size_t len,
		  uint8_t out[static CRYPTO_SHA256_LEN]);

/* HMAC-SHA-256.  The caller wipes the key and, when it is itself a secret
 * (e.g. a derived SigV4 signing key), the output.  0 or -EIO. */
int crypto_hmac_sha256(const void *key, size_t key_len, const void *data,
		       size_t len, uint8_t out[static CRYPTO_SHA256_LEN]);

/*
 * AES-256-GCM.  seal writes len bytes of ciphertext followed by the
 * CRYPTO_AEAD_TAG_LEN-byte tag to out (len + 16 bytes; may equal pt).  open
 * takes that layout (ct_len includes the tag) and writes ct_len - 16 bytes
 * of plaintext, or nothing useful and -EBADMSG when the tag, the key, the IV
 * or the AAD do not match.  An IV must never repeat under one key: use
 * crypto_random() for it.  Return 0, -EBADMSG (open), -EINVAL or -EIO.
 */
int crypto_aead_seal(const uint8_t key[static CRYPTO_AEAD_KEY_LEN],
		     const uint8_t iv[static CRYPTO_AEAD_IV_LEN],
		     const void *aad, size_t aad_len, const void *pt,
		     size_t len, uint8_t *out);
int crypto_aead_open(const uint8_t key[static CRYPTO_AEAD_KEY_LEN],
		     const uint8_t iv[static CRYPTO_AEAD_IV_LEN],
		     const void *aad, size_t aad_len, const uint8_t *ct,
		     size_t ct_len, void *out);

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
 * Thread-safety: a struct vol is used by one thread at a time.
 * ------------------------------------------------------------------------- */

#define VOL_KEY_MAX 64 /* bytes of the largest volume key */

struct vol;

struct vol_format_params {
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
int vol_format(const char *path, const struct vol_format_params *p,
	       const uint8_t *secret, size_t secret_len, const char *token_json,
	       char *err, size_t errlen);

/* Load the LUKS2 header of path.  A damaged header copy is recovered from
 * the other in memory only: opening never writes to the device (the first
 * change made through the handle repairs it on disk).  -ENOENT, -EINVAL
 * (not LUKS2, LUKS1, unknown requirements), -EBUSY (a reencryption is in
 * progress or was interrupted), -EIO.  Changes through a handle of a
 * damaged volume may fail with -ESTALE if the header changed meanwhile. */
int vol_open(const char *path, struct vol **out, char *err, size_t errlen);
void vol_close(struct vol *v); /* accepts NULL */

/* vol_open with flags: VOL_OPEN_REENCRYPTING also opens a volume whose
 * reencryption is in progress or was interrupted (to inspect, recover or
 * resume it: never to serve its data). */
#define VOL_OPEN_REENCRYPTING (1u << 0)
int vol_open_flags(const char *path, unsigned flags, struct vol **out,
		   char *err, size_t errlen);

enum vol_reencrypt {
	VOL_REENCRYPT_NONE = 0, /* one key for all data */
	VOL_REENCRYPT_CLEAN,	/* in progress or stopped between blocks:
				   resumable as it is */
	VOL_REENCRYPT_CRASHED,	/* cut off in the middle of a block: needs
				   recovery before anything else */
};

struct vol_info {
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
	enum vol_reencrypt reencrypt;
};

int vol_info(struct vol *v, struct vol_info *out);

/* Token `id` as JSON (valid until the next change or vol_close);
 * -ENOENT if there is none. */
int vol_token_json(struct vol *v, int id, const char **json);

/* Add token_json (with "type" and "keyslots": []) assigned to keyslot;
 * *id receives its id. */
int vol_token_add(struct vol *v, const char *token_json, int keyslot, int *id,
		  char *err, size_t errlen);
int vol_token_remove(struct vol *v, int id, char *err, size_t errlen);

/*
 * The blank mark: a token of type "cmkfs-blank" (no keyslots) that
 * `cmkfs create` puts on a new volume and the first mount that may write
 * removes.  A volume that carries it was never written, so a mount may make
 * its filesystem without destroying anything; one without it that holds no
 * filesystem is not formatted unless asked.  Marking a marked volume and
 * clearing an unmarked one do nothing.  0 or -errno with err said.
 */
bool vol_is_blank(struct vol *v);
int vol_blank_mark(struct vol *v, char *err, size_t errlen);
int vol_blank_clear(struct vol *v, char *err, size_t errlen);

/* Add keyslot (in use, bound or not) to token id's "keyslots". */
int vol_token_assign(struct vol *v, int id, int keyslot, char *err,
		     size_t errlen);

/*
 * Open keyslot with secret: the volume key in secure memory (*vk, *vk_len;
 * secmem_free it).  -EPERM when the secret does not open that keyslot.
 */
int vol_unlock(struct vol *v, int keyslot, const uint8_t *secret,
	       size_t secret_len, uint8_t **vk, size_t *vk_len, char *err,
	       size_t errlen);

/* A new keyslot opened by secret for the volume key vk; *keyslot receives
 * its number. */
int vol_keyslot_add(struct vol *v, const uint8_t *vk, size_t vk_len,
		    const uint8_t *secret, size_t secret_len, int *keyslot,
		    char *err, size_t errlen);
/* A new keyslot opened by secret for a new random volume key of the same
 * size, not used by any data yet (an "unbound" key: the target of a
 * reencryption).  Never opens data on its own: vol_unlock refuses it. */
int vol_keyslot_add_new_key(struct vol *v, const uint8_t *secret,
			    size_t secret_len, int *keyslot, char *err,
			    size_t errlen);

/* Wipe keyslot (its key material area is overwritten).  Tokens naming it
 * lose it from their "keyslots" but stay: remove them too. */
int vol_keyslot_destroy(struct vol *v, int keyslot, char *err, size_t errlen);

/*
 * Reencryption: the data rewritten under a new volume key, in place, by
 * libcryptsetup's offline reencryption (userspace crypto; no
 * device-mapper needed).  Each block ("hotzone") is protected by the
 * chosen resilience, so a crash in the middle of one loses nothing: the
 * next vol_reencrypt_resume() recovers it first.
 *
 * The caller prepares the keyslots: keyslot_old opens the current key and
 * keyslot_new (from vol_keyslot_add_new_key) the next, both with the same
 * secret (libcryptsetup 2.6 opens both with one passphrase).  When the
 * reencryption ends, libcryptsetup destroys every keyslot of the old key.
 *
 * vol_reencrypt_init writes the reencryption metadata (from then on,
 * vol_open refuses the volume until it ends) and readies the handle for
 * vol_reencrypt_run.  vol_reencrypt_run rewrites the data, calling progress
 * (when not NULL) after every block; progress returning non-zero stops it
 * cleanly between two blocks (-EINTR; resumable).  Returns 0 when the
 * whole volume is done.
 *
 * vol_reencrypt_resume readies the handle for a reencryption in progress:
 * it recovers first a block a crash cut off (VOL_RESUME_RECOVERED in
 * *what), and when every block is done it ends the reencryption itself
 * (VOL_RESUME_FINISHED: do not run; see reencrypt.c for why).  Ending it
 * replaces the header; snapshot names a file, on a filesystem that
 * survives a crash, that holds the header being replaced meanwhile.  If it
 * exists when a command starts, that replacement was cut off:
 * vol_reencrypt_restore_snapshot puts it back (then resume again).
 * -EPERM when secret opens neither key.
 */
struct vol_reencrypt_params {
	int keyslot_old;
	int keyslot_new;
	const char *resilience; /* "checksum" (default) or "journal" */
};

#define VOL_RESUME_RECOVERED (1u << 0)
#define VOL_RESUME_FINISHED  (1u << 1)

int vol_reencrypt_init(struct vol *v, const uint8_t *secret, size_t secret_len,
		       const struct vol_reencrypt_params *p, char *err,
		       size_t errlen);
int vol_reencrypt_resume(struct vol *v, const uint8_t *secret,
			 size_t secret_len, const char *snapshot,
			 unsigned *what, char *err, size_t errlen);
typedef int (*vol_progress_fn)(uint64_t done, uint64_t total, void *arg);
int vol_reencrypt_run(struct vol *v, vol_progress_fn progress, void *arg,
		      char *err, size_t errlen);
int vol_reencrypt_restore_snapshot(const char *path, const char *snapshot,
				   char *err, size_t errlen);

/* Zero a header backup file (it holds keyslots) and remove it, first
 * renaming it to FILE.dead (which a crash may leave: the next call on the
 * same name zeroes and removes it too). */
void vol_header_file_destroy(const char *file);

/* What libblkid recognises on path (LUKS, a filesystem, a partition
 * table...): 1 with its name in type ("crypto_LUKS", "ext4"...), 0 when
 * nothing, -errno.  So that nothing with data on it is formatted over by
 * mistake. */
int vol_probe_signature(const char *path, char *type, size_t len);

/* Copy the LUKS2 header of path to file (which must not exist), or restore
 * it from file. */
int vol_header_backup(const char *path, const char *file, char *err,
		      size_t errlen);
int vol_header_restore(const char *path, const char *file, char *err,
		       size_t errlen);
/* The same, with every blank mark of the backup left out, in one header
 * write: for a volume that may have been written since the backup was made
 * (the mark would let its next mount format it over its data).  The backup
 * file itself is not changed. */
int vol_header_restore_unblank(const char *path, const char *file, char *err,
			       size_t errlen);

/* ---------------------------------------------------------------------------
 * Misc
 * ------------------------------------------------------------------------- */

/*
 * Process-wide setup, to call first in main(), before anything uses OpenSSL
 * (libcurl and libcryptsetup do): every heap block OpenSSL frees is wiped
 * first (secmem_heap_free).  0, or -EBUSY when OpenSSL has allocated
 * already (too late: nothing changed).
 */
int crypto_init(void);

/* Fill buf with n bytes from the cryptographic RNG.  0 or -EIO. */
int crypto_random(void *buf, size_t n);

/* A new random (version 4) UUID, lower case, NUL-terminated.  0 or -EIO. */
int crypto_uuid(char out[static 37]);

/* A sentence describing err (a negative errno) in this module's terms, e.g.
 * -EKEYREJECTED → "the XTS key has two identical halves". Never NULL. */
const char *crypto_strerror(int err);

/* Version string of the cipher library in use (for --version). */
const char *crypto_library_version(void);

#endif /* CMKFS_CRYPTO_H */
