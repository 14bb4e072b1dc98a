/* SPDX-License-Identifier: Apache-2.0 */
/*
 * curl_global.c — libcurl's process-wide setup (see curl_global.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "crypto.h"
#include "curl_global.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static CURLcode result = CURLE_FAILED_INIT;

static void init(void)
{
	/* Every block curl frees is wiped first: its download buffer keeps
	 * the last response (a Plaintext, temporary credentials) until the
	 * handle goes. */
	result = curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc,
				      secmem_heap_free, secmem_heap_realloc,
				      strdup, calloc);
}

int kms_curl_global_init(void)
{
	/* pthread_once: curl_global_init is not thread-safe in every
	 * build. */
	if (pthread_once(&once, init))
		return -EIO;
	return result == CURLE_OK ? 0 : -EIO;
}
