/* SPDX-License-Identifier: Apache-2.0 */
/* hex.h — hex decoding for test programs (not part of cmkfs itself). */
#ifndef CMKFS_TESTS_HEX_H
#define CMKFS_TESTS_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Decode the hex string s (either case) into a malloc'ed buffer and set
 * *len.  Returns NULL for odd length, a non-hex digit, or no memory. */
uint8_t *hex_decode(const char *s, size_t *len);

#endif
