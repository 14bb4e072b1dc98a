/* SPDX-License-Identifier: Apache-2.0 */
/*
 * curl_global.h — libcurl's process-wide setup, shared by the KMS client and
 * the credential providers (internal to kms/).
 */
#ifndef CMKFS_CURL_GLOBAL_H
#define CMKFS_CURL_GLOBAL_H

/* curl_global_init, once per process and thread-safe, with frees that wipe
 * (curl's receive buffers hold KMS responses, credentials included).
 * 0, or -EIO when libcurl cannot initialise. */
int kms_curl_global_init(void);

#endif
