/* SPDX-License-Identifier: Apache-2.0 */
/*
 * create.c — `cmkfs create`: the options, the words, and the cleanup of
 * an interrupted create; the protocol itself (key check, KMS secret,
 * temporary file renamed into place) is volume/create.c's.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "luks2.h"
#include "volume.h"

#define MIB (1024ull * 1024)

/* The temporary file of a create in progress, removed if we are
 * interrupted: unlink() is async-signal-safe. */
static char tmp_path[4096];

static void remove_tmp(int sig)
{
	if (tmp_path[0])
		unlink(tmp_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void note_tmp(const char *path, void *arg)
{
	(void)arg;
	/* Cleared before it changes, so that the handler never sees half a
	 * name. */
	tmp_path[0] = 0;
	if (path) {
		snprintf(tmp_path + 1, sizeof(tmp_path) - 1, "%s", path + 1);
		tmp_path[0] = path[0];
	}
}

/* ---- create
 * ------------------------------------------------------------------ */

struct create_args {
	struct vol_create_params p;
	const char *mkfs;
	bool insecure;
	struct kms_options ko;
};

static int create(struct create_args *a)
{
	struct luks2_info info = { 0 };
	struct vol_kms *k = NULL;
	struct vol_error e;
	char hs[32];
	int r, rc;

	rc = cli_key_service(&a->ko, a->p.key_arn, &k);
	if (rc)
		return rc;
	a->p.tmp_file = note_tmp;
	signal(SIGINT, remove_tmp);
	signal(SIGTERM, remove_tmp);
	signal(SIGHUP, remove_tmp);
	r = vol_create(k, &a->p, &info, &e);
	vol_kms_free(k);
	if (r)
		return cli_volume_error(a->p.volume, r, &e);
	cli_human_size(info.data_size, hs, sizeof(hs));
	printf("created %s\n"
	       "  uuid         %s\n"
	       "  size         %s usable\n"
	       "  cipher       %s, %u-bit key, %u-byte sectors\n"
	       "  key          %s\n",
	       a->p.volume, info.uuid, hs, info.cipher, info.key_bytes * 8,
	       info.sector_size, a->p.key_arn);
	if (!strncmp(info.cipher, "cipher_null", 11))
		printf("  WARNING      NOT ENCRYPTED: a cipher_null volume for "
		       "benchmarks only\n");
	return EXIT_OK;
}

static int run_create(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "size", required_argument, NULL, 's' },
		CLI_KEY_LONGOPTS,
		{ "sector-size", required_argument, NULL, 'S' },
		{ "label", required_argument, NULL, 'l' },
		{ "cipher", required_argument, NULL, 'c' },
		{ "insecure", no_argument, NULL, 'I' },
		{ "force", no_argument, NULL, 'f' },
		{ "mkfs", required_argument, NULL, 'm' },
		CLI_KMS_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct create_args a = { .p = { .cipher = "aes-xts-plain64",
					.sector_size = 4096 } };
	uint64_t v;
	int c, rc;

	while ((c = cli_getopt(cmd, argc, argv, "h", longopts, &rc)) != -1) {
		if (cli_kms_option(cmd, c, optarg, &a.ko, &rc) < 0)
			return rc;
		switch (c) {
		case 's':
			if (cli_parse_size(optarg, &a.p.size) || a.p.size < MIB)
				return cli_usage_error(cmd,
						       "--size takes a size "
						       "of at least 1M "
						       "(K, M, G, T: binary)");
			break;
		case 'k':
			a.p.key_arn = optarg;
			break;
		case 'S':
			if (cli_parse_size(optarg, &v) || v < 512 || v > 4096 ||
			    (v & (v - 1)))
				return cli_usage_error(cmd,
						       "--sector-size takes "
						       "512, 1024, 2048 "
						       "or 4096");
			a.p.sector_size = (unsigned)v;
			break;
		case 'l':
			a.p.label = optarg;
			break;
		case 'c':
			if (!strcmp(optarg, "null"))
				a.p.cipher = "cipher_null";
			else if (!strcmp(optarg, "aes-xts-plain64"))
				a.p.cipher = optarg;
			else
				return cli_usage_error(cmd, "--cipher takes "
							    "aes-xts-plain64 "
							    "or null");
			break;
		case 'I':
			a.insecure = true;
			break;
		case 'f':
			a.p.force = true;
			break;
		case 'm':
			if (strcmp(optarg, "ext4") && strcmp(optarg, "xfs"))
				return cli_usage_error(cmd, "--mkfs takes ext4 "
							    "or xfs");
			a.mkfs = optarg;
			break;
		}
	}
	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage_error(cmd, "create takes one VOLUME");
	if (a.mkfs && geteuid() != 0)
		return cli_usage_error(cmd, "--mkfs mounts the volume once: it "
					    "needs root");
	a.p.volume = argv[optind];
	if (!a.p.key_arn)
		return cli_usage_error(cmd,
				       "--key is required: the volume's key, "
				       "an AWS KMS key ARN or a KMIP key "
				       "(kmip://HOST:PORT/UNIQUE-ID)");
	if (a.p.size % a.p.sector_size)
		return cli_usage_error(cmd,
				       "--size must be a multiple of the "
				       "sector size (%u)",
				       a.p.sector_size);
	if (!strcmp(a.p.cipher, "cipher_null") && !a.insecure)
		return cli_usage_error(cmd, "--cipher null makes a volume that "
					    "is NOT ENCRYPTED, for benchmarks; "
					    "say so with --insecure");
	rc = create(&a);
	if (rc || !a.mkfs)
		return rc;
	rc = cli_mkfs_volume(a.p.volume, a.mkfs, &a.ko);
	if (rc)
		fprintf(stderr,
			"cmkfs: %s was created, but has no filesystem yet: "
			"its first `cmkfs mount` will make one\n",
			a.p.volume);
	else
		printf("  filesystem   %s\n", a.mkfs);
	return rc;
}

const struct cli_cmd cli_cmd_create = {
	"create",
	"create a volume whose key only a KMS key can unlock",
	"usage: cmkfs create VOLUME --size SIZE --key KEY [--sector-size N]\n"
	"                    [--label L] [--mkfs ext4|xfs] [--force] [KMS "
	"OPTIONS]\n"
	"\n"
	"Create VOLUME (a new file of SIZE usable bytes plus a 16 MiB header, "
	"fully\n"
	"allocated; or an existing block device, used whole) as a LUKS2 volume:\n"
	"AES-256-XTS with a random 512-bit volume key, whose only keyslot is "
	"opened\n"
	"by a secret wrapped by KEY and bound to the header: an AWS KMS key's "
	"data key\n"
	"(GenerateDataKey, the volume's UUID and data segment as encryption "
	"context)\n"
	"in an aws-kms token, or 32 random bytes a KMIP key wraps with "
	"AES-GCM (the\n"
	"same binding as additional data) in a kmip token.  KEY is an AWS KMS "
	"key ARN\n"
	"(also given as --key-arn ARN) or kmip://HOST:PORT/UNIQUE-ID.\n"
	"The key is checked first (see 'cmkfs check-key').  Anything carrying a\n"
	"LUKS or filesystem signature is refused unless --force.  A failure or\n"
	"Ctrl-C leaves nothing behind.\n"
	"\n"
	"  --size SIZE         usable bytes (K, M, G, T: binary units)\n"
	"  --sector-size N     encryption sector size, 512..4096 (default 4096)\n"
	"  --label L           LUKS label\n"
	"  --mkfs ext4|xfs     make the filesystem now, ready to mount (root: "
	"it\n"
	"                      mounts the volume once)\n"
	"  --cipher null --insecure   a NOT ENCRYPTED volume, for benchmarks\n"
	"\n" CLI_KMS_USAGE,
	run_create,
};
