/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.h — small helpers the KMS client and the local service share
 * (internal to kms/): error text into a caller's buffer or a typed error,
 * and calendar
 * dates as the protocol writes them.
 */
#ifndef CMKFS_KMS_UTIL_H
#define CMKFS_KMS_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "kms.h"

/* err = the formatted message; nothing when err is NULL or len 0. */
void kms_seterr(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A typed error: status, type (the service's error name, or ours) and the
 * formatted message; the other fields of err are left as they are.
 * Returns -1. */
int kms_set_error(struct kms_error *err, enum kms_status st, const char *type,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar. */
int64_t kms_days_from_civil(int64_t y, int m, int d);

/* Days in month m (1..12) of year y. */
int kms_days_in_month(int y, int m);

/*
 * "2026-11-23T19:00:00Z", with optional fractional seconds and a "Z" or
 * "+HH:MM" offset (n characters at s, no NUL needed), to epoch seconds.
 * Fractions are dropped: expiring a fraction of a second early is
 * harmless.  0 or -EINVAL.
 */
int kms_parse_rfc3339(const char *s, size_t n, int64_t *out);

#endif
