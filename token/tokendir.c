/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tokendir.c — print the directory libcryptsetup loads external token
 * plugins from (crypt_token_external_path()), for `make install`.  Exit 1
 * when this libcryptsetup has external tokens disabled.
 */
#include <stdio.h>

#include <libcryptsetup.h>

int main(void)
{
	const char *dir = crypt_token_external_path();

	if (!dir)
		return 1;
	printf("%s\n", dir);
	return 0;
}
