/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vol-tool.c — drives crypto/luks2/luks2.c from the shell, for the cryptsetup
 * interoperability tests.
 *
 * !!! TEST-ONLY TOOL.  `vol-tool unlock` PRINTS THE VOLUME KEY IN HEX ON
 * !!! STDOUT, so that the tests can compare it with what `cryptsetup
 * !!! luksDump --dump-volume-key` prints.  It is never installed and never
 * !!! part of cmkfs; cmkfs itself never shows a volume key to anyone.
 *
 *   vol-tool format PATH UUID SECRET_FILE [SECTOR [TOKEN_FILE]]
 *   vol-tool unlock PATH KEYSLOT SECRET_FILE   volume key, hex, one line
 *   vol-tool info PATH                         key=value lines
 *   vol-tool token PATH ID                     token ID's JSON
 *
 * SECRET_FILE is read whole (at most 4096 bytes).  Exit 0 on success, 1 on
 * failure with the error on stderr ("vol-tool: errno=N: message"), 2 on
 * usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "luks2.h"

#define SECRET_MAX 4096

static int usage(void)
{
	fprintf(stderr, "usage: vol-tool format PATH UUID SECRET_FILE [SECTOR "
			"[TOKEN_FILE]]\n"
			"       vol-tool unlock PATH KEYSLOT SECRET_FILE\n"
			"       vol-tool info PATH\n"
			"       vol-tool token PATH ID\n");
	return 2;
}

/* A non-negative decimal number, or -1. */
static int number(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	return *s && !*end && v >= 0 && v < 1000000 ? (int)v : -1;
}

static int failed(int r, const char *err)
{
	fprintf(stderr, "vol-tool: errno=%d: %s\n", -r,
		err[0] ? err : strerror(-r));
	return 1;
}

/* Read a whole file into secure memory (the secret, or a token). */
static int read_file(const char *path, uint8_t **out, size_t *len)
{
	uint8_t *buf = secmem_alloc(SECRET_MAX + 1);
	size_t n = 0;
	int fd, r = 0;

	*out = NULL;
	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	for (;;) {
		ssize_t got = read(fd, buf + n, SECRET_MAX + 1 - n);

		if (got < 0) {
			r = -errno;
			break;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n > SECRET_MAX) {
			r = -EFBIG;
			break;
		}
	}
	close(fd);
out:
	if (r) {
		secmem_free(buf);
		return r;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int cmd_format(int argc, char **argv)
{
	struct luks2_format_params p = { .cipher = "aes-xts-plain64" };
	uint8_t *secret = NULL, *token = NULL;
	size_t len, tlen;
	char err[512] = "";
	int r;

	if (argc < 5 || argc > 7)
		return usage();
	p.uuid = argv[3];
	if (argc > 5)
		p.sector_size = (unsigned)number(argv[5]);
	r = read_file(argv[4], &secret, &len);
	if (r) {
		fprintf(stderr, "vol-tool: %s: %s\n", argv[4], strerror(-r));
		return 1;
	}
	if (argc > 6) {
		r = read_file(argv[6], &token, &tlen);
		if (r) {
			fprintf(stderr, "vol-tool: %s: %s\n", argv[6],
				strerror(-r));
			secmem_free(secret);
			return 1;
		}
		token[tlen] = 0;
	}
	r = luks2_format(argv[2], &p, secret, len, (const char *)token, err,
			 sizeof(err));
	secmem_free(secret);
	secmem_free(token);
	return r ? failed(r, err) : 0;
}

static int cmd_unlock(int argc, char **argv)
{
	struct luks2_vol *v = NULL;
	struct crypto_key *vk = NULL;
	uint8_t *secret = NULL;
	size_t len;
	char err[512] = "";
	int r;

	if (argc != 5)
		return usage();
	r = read_file(argv[4], &secret, &len);
	if (r) {
		fprintf(stderr, "vol-tool: %s: %s\n", argv[4], strerror(-r));
		return 1;
	}
	r = luks2_open(argv[2], &v, err, sizeof(err));
	if (!r)
		r = luks2_unlock(v, number(argv[3]), secret, len, &vk, err,
				 sizeof(err));
	secmem_free(secret);
	luks2_close(v);
	if (r)
		return failed(r, err);
	/* Byte by byte: no hex copy of the key is left in our memory. */
	for (size_t i = 0; i < crypto_key_len(vk); i++)
		printf("%02x", crypto_key_bytes(vk)[i]);
	printf("\n");
	crypto_key_free(vk);
	return 0;
}

static void print_list(const char *name, const int *v, unsigned n)
{
	printf("%s=", name);
	for (unsigned i = 0; i < n; i++)
		printf("%s%d", i ? "," : "", v[i]);
	printf("\n");
}

static int cmd_info(int argc, char **argv)
{
	struct luks2_vol *v = NULL;
	struct luks2_info vi;
	char err[512] = "";
	int r;

	if (argc != 3)
		return usage();
	r = luks2_open(argv[2], &v, err, sizeof(err));
	if (r)
		return failed(r, err);
	r = luks2_info(v, &vi);
	if (r) {
		luks2_close(v);
		return failed(r, "luks2_info failed");
	}
	printf("uuid=%s\nlabel=%s\ncipher=%s\nsector_size=%u\n"
	       "key_bytes=%u\ndata_offset=%llu\ndata_size=%llu\n"
	       "device_size=%llu\n",
	       vi.uuid, vi.label, vi.cipher, vi.sector_size, vi.key_bytes,
	       (unsigned long long)vi.data_offset,
	       (unsigned long long)vi.data_size,
	       (unsigned long long)vi.device_size);
	print_list("keyslots", vi.keyslots, vi.n_keyslots);
	print_list("tokens", vi.tokens, vi.n_tokens);
	for (unsigned i = 0; i < vi.n_tokens; i++) {
		const char *json;

		if (luks2_token_json(v, vi.tokens[i], &json) == 0)
			printf("token.%d=%s\n", vi.tokens[i], json);
	}
	luks2_close(v);
	return 0;
}

static int cmd_token(int argc, char **argv)
{
	struct luks2_vol *v = NULL;
	const char *json;
	char err[512] = "";
	int r;

	if (argc != 4)
		return usage();
	r = luks2_open(argv[2], &v, err, sizeof(err));
	if (r)
		return failed(r, err);
	r = luks2_token_json(v, number(argv[3]), &json);
	if (!r)
		printf("%s\n", json);
	luks2_close(v);
	return r ? failed(r, "no such token") : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "format"))
		return cmd_format(argc, argv);
	if (!strcmp(argv[1], "unlock"))
		return cmd_unlock(argc, argv);
	if (!strcmp(argv[1], "info"))
		return cmd_info(argc, argv);
	if (!strcmp(argv[1], "token"))
		return cmd_token(argc, argv);
	return usage();
}
