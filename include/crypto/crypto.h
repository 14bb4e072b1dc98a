/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto.h — the public interface of cmkfs's crypto module: secure memory for
 * key material, the sector cipher that encrypts volume data exactly as
 * dm-crypt does for LUKS2, hashes, MACs and AEAD.  It depends on OpenSSL
 * alone; the LUKS2 volume format is the crypto/luks2/ sub-module (luks2.h).
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
 * Keys
 *
 * A key (a volume key, a keyslot secret) travels as a struct crypto_key:
 * its length and its bytes in one secure-memory allocation the object owns.
 * crypto_key_new makes a zeroed key to fill through crypto_key_data,
 * crypto_key_from a copy of bytes; crypto_key_free wipes and releases it
 * (accepts NULL).  Whoever holds the pointer owns the key; an API that
 * takes ownership says so.
 * ------------------------------------------------------------------------- */

#define CRYPTO_KEY_MAX 64 /* bytes of the largest key (AES-256-XTS) */

struct crypto_key;

/* 0, -EINVAL (len 0 or above CRYPTO_KEY_MAX), -ENOMEM. */
int crypto_key_new(size_t len, struct crypto_key **out);
int crypto_key_from(const void *bytes, size_t len, struct crypto_key **out);
uint8_t *crypto_key_data(struct crypto_key *k);
const uint8_t *crypto_key_bytes(const struct crypto_key *k);
size_t crypto_key_len(const struct crypto_key *k);
void crypto_key_free(struct crypto_key *k);

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
 * Encodings: base64 (RFC 4648, standard alphabet, padded) and hex
 *
 * Constant time: no table indexed by a data byte, no branch on one, since
 * what they carry is often key material.  Decoding is strict: anything but
 * canonical padded base64 is refused.
 * ------------------------------------------------------------------------- */

/* Characters needed to base64-encode n bytes, including the final NUL. */
#define B64_ENCODED_SIZE(n) ((((n) + 2) / 3) * 4 + 1)
/* Upper bound of the bytes a base64 string of len characters decodes to. */
#define B64_DECODED_MAX(len) (((len) / 4) * 3)

/* Encode n bytes into out (B64_ENCODED_SIZE(n) bytes), NUL-terminated.
 * Returns the string length. */
size_t b64_encode(const void *in, size_t n, char *out);

/* Decode len characters of standard padded base64 into out (room for
 * B64_DECODED_MAX(len) bytes).  Returns the decoded length, or -EINVAL for
 * bad characters, bad padding, non-zero padding bits or a length that is not
 * a multiple of 4 (out then holds nothing: what was decoded is wiped). */
long b64_decode(const char *in, size_t len, uint8_t *out);

/* Value of a hex digit (either case), or -1. */
int hex_value(int c);

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void hex_encode(const void *in, size_t n, char *out);

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
