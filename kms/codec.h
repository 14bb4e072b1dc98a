/* SPDX-License-Identifier: Apache-2.0 */
/*
 * codec.h — base64 and hex, as KMS's JSON protocol uses them (internal to
 * kms/).  Strict decoding: anything but canonical padded base64 is refused,
 * since decoded bytes are often key material or ciphertext blobs.
 */
#ifndef CMKFS_KMS_CODEC_H
#define CMKFS_KMS_CODEC_H

#include <stddef.h>
#include <stdint.h>

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
 * a multiple of 4. */
long b64_decode(const char *in, size_t len, uint8_t *out);

/* Value of a hex digit (either case), or -1. */
int hex_value(int c);

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void hex_encode(const void *in, size_t n, char *out);

#endif
