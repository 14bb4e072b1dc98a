/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c — the cmkfs-kmsd program (being built: see the issue
 * "cmkfs-kmsd").
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--version")) {
		printf("cmkfs-kmsd %s\n", CMKFS_VERSION);
		return 0;
	}
	fprintf(stderr, "usage: cmkfs-kmsd --version\n");
	return 2;
}
