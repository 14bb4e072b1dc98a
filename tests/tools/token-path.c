/* SPDX-License-Identifier: Apache-2.0 */
/*
 * token-path.c — an LD_PRELOAD shim for tests: libcryptsetup 2.6 looks for
 * token plugins only where crypt_token_external_path() says (2.7 added
 * --external-tokens-path), and calls it through its PLT, so this
 * definition, loaded first, points it at the directory in
 * CMKFS_TEST_TOKEN_DIR — a test's own, holding the build's plugin.
 * Without that variable it answers what libcryptsetup would.
 */
#include <dlfcn.h>
#include <stdlib.h>

const char *crypt_token_external_path(void);

const char *crypt_token_external_path(void)
{
	const char *dir = getenv("CMKFS_TEST_TOKEN_DIR");
	const char *(*real)(void);

	if (dir && *dir == '/')
		return dir;
	*(void **)&real = dlsym(RTLD_NEXT, "crypt_token_external_path");
	return real ? real() : NULL;
}
