/* SPDX-License-Identifier: Apache-2.0 */
/*
 * volume.c — `cmkfs create`, `cmkfs status` and `cmkfs unlock-test`: a
 * LUKS2 volume whose only keyslot secret is a data key of the customer's
 * CMK, wrapped in an aws-kms token.
 *
 * create checks the key first, makes the secret through KMS, formats the
 * volume under a temporary name in the target's directory and renames it
 * into place only when it is complete: a KMS refusal, a full disk or a
 * Ctrl-C leaves nothing half-made.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "crypto.h"

#define MIB	    (1024ull * 1024)
#define HEADER_ROOM (16 * MIB) /* libcryptsetup's LUKS2 default offset */

/* ---- helpers
 * ----------------------------------------------------------------- */

/* "10G", "512M", "1T", "4096" (binary units). */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'K':
	case 'k':
		shift = 10;
		end++;
		break;
	case 'M':
	case 'm':
		shift = 20;
		end++;
		break;
	case 'G':
	case 'g':
		shift = 30;
		end++;
		break;
	case 'T':
	case 't':
		shift = 40;
		end++;
		break;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B' && shift)
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

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

static int fsync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd, r = 0;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd))
		r = -errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return r;
}

/* ---- create
 * ------------------------------------------------------------------ */

struct create_args {
	const char *volume, *key_arn, *label, *cipher, *mkfs;
	uint64_t size;
	unsigned sector_size;
	bool force, insecure;
	struct kms_options ko;
};

/* Refuse to destroy what is on an existing target. */
static int check_target(const struct create_args *a, bool *is_block)
{
	struct stat sb;
	char type[64];
	int r;

	*is_block = false;
	if (stat(a->volume, &sb)) {
		if (errno == ENOENT)
			return 0;
		return cli_error(-errno, "cannot create %s", a->volume);
	}
	if (S_ISBLK(sb.st_mode))
		*is_block = true;
	else if (!S_ISREG(sb.st_mode))
		return cli_error(0,
				 "cannot create %s: it is neither a regular "
				 "file nor a block device",
				 a->volume);
	r = vol_probe_signature(a->volume, type, sizeof(type));
	if (r < 0)
		return cli_error(r, "cannot read %s", a->volume);
	if (r > 0 && !a->force)
		return cli_error(
			0,
			"%s holds %s data (a %s signature): refusing "
			"to overwrite it; add --force to destroy it",
			a->volume,
			!strcmp(type, "crypto_LUKS") ? "encrypted" : "", type);
	return 0;
}

static int create(const struct create_args *a)
{
	struct vol_format_params fp = { .cipher = a->cipher,
					.sector_size = a->sector_size,
					.label = a->label };
	struct kms_client *k = NULL;
	uint8_t *secret = NULL;
	char uuid[37], *token = NULL, err[512], hs[32], *dir = NULL;
	const char *target = a->volume;
	struct kms_error kerr;
	struct vol_info info = { 0 };
	struct vol *v = NULL;
	bool is_block;
	int fd = -1, rc;

	rc = check_target(a, &is_block);
	if (rc)
		return rc;
	if (!is_block && !a->size)
		return cli_error(0, "creating the file %s needs --size",
				 a->volume);
	if (is_block && a->size)
		return cli_error(0,
				 "%s is a block device: the volume takes all "
				 "of it, drop --size",
				 a->volume);
	rc = cli_kms_client(&a->ko, &k);
	if (rc)
		return rc;
	snprintf(err, sizeof(err), "cannot create %s", a->volume);
	rc = cli_check_key(k, a->key_arn, true, err);
	if (rc)
		goto out;
	if (crypto_uuid(uuid)) {
		rc = cli_error(-EIO, "no randomness");
		goto out;
	}
	fp.uuid = uuid;
	if (kms_volume_secret_new(k, a->key_arn, uuid, &secret, &token,
				  &kerr)) {
		rc = cli_kms_error(&kerr,
				   "cannot create %s: no data key from %s",
				   a->volume, a->key_arn);
		goto out;
	}

	if (!is_block) {
		/* Build it beside the target, then rename it into place. */
		char *copy = strdup(a->volume), *base;

		dir = strdup(a->volume);
		if (!copy || !dir) {
			free(copy);
			rc = cli_error(-ENOMEM, "create");
			goto out;
		}
		base = basename(copy);
		snprintf(tmp_path, sizeof(tmp_path), "%s/.%s.cmkfs-XXXXXX",
			 dirname(dir), base);
		free(copy);
		signal(SIGINT, remove_tmp);
		signal(SIGTERM, remove_tmp);
		signal(SIGHUP, remove_tmp);
		fd = mkostemp(tmp_path, O_CLOEXEC);
		if (fd < 0) {
			tmp_path[0] = 0;
			rc = cli_error(-errno, "cannot create a file beside %s",
				       a->volume);
			goto out;
		}
		/* Fully allocated: a volume must not run out of space later,
		 * in the middle of a database write. */
		rc = posix_fallocate(fd, 0, (off_t)(a->size + HEADER_ROOM));
		if (rc) {
			/* A failed fallocate may keep what it got: give the
			 * space back before saying anything (stderr may be a
			 * file on the same filesystem). */
			unlink(tmp_path);
			tmp_path[0] = 0;
			cli_human_size(a->size + HEADER_ROOM, hs, sizeof(hs));
			rc = cli_error(-rc, "cannot allocate %s for %s", hs,
				       a->volume);
			goto out;
		}
		target = tmp_path;
	}
	if (vol_format(target, &fp, secret, KMS_SECRET_BYTES, token, err,
		       sizeof(err))) {
		rc = cli_error(0, "cannot create %s: %s", a->volume, err);
		goto out;
	}
	secmem_free(secret);
	secret = NULL;
	if (vol_open(target, &v, err, sizeof(err)) || vol_info(v, &info)) {
		rc = cli_error(0, "cannot read back %s: %s", a->volume, err);
		goto out;
	}
	/* Nothing is written yet: its first mount may make a filesystem. */
	if (vol_blank_mark(v, err, sizeof(err))) {
		rc = cli_error(0, "cannot create %s: %s", a->volume, err);
		goto out;
	}
	if (!is_block) {
		/* The header took what libcryptsetup chose: make the data
		 * segment exactly --size. */
		if (info.data_offset + a->size != info.device_size &&
		    ftruncate(fd, (off_t)(info.data_offset + a->size))) {
			rc = cli_error(-errno, "cannot size %s", a->volume);
			goto out;
		}
		if (fsync(fd) || rename(tmp_path, a->volume) ||
		    fsync_dir_of(a->volume)) {
			rc = cli_error(-errno, "cannot put %s in place",
				       a->volume);
			goto out;
		}
		tmp_path[0] = 0;
	}
	cli_human_size(a->size ? a->size : info.data_size, hs, sizeof(hs));
	printf("created %s\n"
	       "  uuid         %s\n"
	       "  size         %s usable\n"
	       "  cipher       %s, %u-bit key, %u-byte sectors\n"
	       "  key          %s\n",
	       a->volume, uuid, hs, info.cipher, info.key_bytes * 8,
	       info.sector_size, a->key_arn);
	if (!strncmp(info.cipher, "cipher_null", 11))
		printf("  WARNING      NOT ENCRYPTED: a cipher_null volume for "
		       "benchmarks only\n");
	rc = EXIT_OK;
out:
	vol_close(v);
	if (fd >= 0)
		close(fd);
	if (tmp_path[0]) {
		unlink(tmp_path);
		tmp_path[0] = 0;
	}
	secmem_free(secret);
	free(token);
	free(dir);
	kms_client_free(k);
	return rc;
}

static int run_create(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "size", required_argument, NULL, 's' },
		{ "key-arn", required_argument, NULL, 'k' },
		{ "sector-size", required_argument, NULL, 'S' },
		{ "label", required_argument, NULL, 'l' },
		{ "cipher", required_argument, NULL, 'c' },
		{ "insecure", no_argument, NULL, 'I' },
		{ "force", no_argument, NULL, 'f' },
		{ "mkfs", required_argument, NULL, 'm' },
		CLI_KMS_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct create_args a = { .cipher = "aes-xts-plain64",
				 .sector_size = 4096 };
	uint64_t v;
	int c, rc;

	while ((c = cli_getopt(cmd, argc, argv, "h", longopts, &rc)) != -1) {
		if (cli_kms_option(cmd, c, optarg, &a.ko, &rc) < 0)
			return rc;
		switch (c) {
		case 's':
			if (parse_size(optarg, &a.size) || a.size < MIB)
				return cli_usage_error(cmd,
						       "--size takes a size "
						       "of at least 1M "
						       "(K, M, G, T: binary)");
			break;
		case 'k':
			a.key_arn = optarg;
			break;
		case 'S':
			if (parse_size(optarg, &v) || v < 512 || v > 4096 ||
			    (v & (v - 1)))
				return cli_usage_error(cmd,
						       "--sector-size takes "
						       "512, 1024, 2048 "
						       "or 4096");
			a.sector_size = (unsigned)v;
			break;
		case 'l':
			a.label = optarg;
			break;
		case 'c':
			if (!strcmp(optarg, "null"))
				a.cipher = "cipher_null";
			else if (!strcmp(optarg, "aes-xts-plain64"))
				a.cipher = optarg;
			else
				return cli_usage_error(cmd, "--cipher takes "
							    "aes-xts-plain64 "
							    "or null");
			break;
		case 'I':
			a.insecure = true;
			break;
		case 'f':
			a.force = true;
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
	a.volume = argv[optind];
	if (!a.key_arn)
		return cli_usage_error(cmd,
				       "--key-arn is required: the volume's "
				       "key is a KMS key");
	if (a.size % a.sector_size)
		return cli_usage_error(cmd,
				       "--size must be a multiple of the "
				       "sector size (%u)",
				       a.sector_size);
	if (!strcmp(a.cipher, "cipher_null") && !a.insecure)
		return cli_usage_error(cmd, "--cipher null makes a volume that "
					    "is NOT ENCRYPTED, for benchmarks; "
					    "say so with --insecure");
	rc = create(&a);
	if (rc || !a.mkfs)
		return rc;
	rc = cli_mkfs_volume(a.volume, a.mkfs, &a.ko);
	if (rc)
		fprintf(stderr,
			"cmkfs: %s was created, but has no filesystem yet: "
			"its first `cmkfs mount` will make one\n",
			a.volume);
	else
		printf("  filesystem   %s\n", a.mkfs);
	return rc;
}

const struct cli_cmd cli_cmd_create = {
	"create",
	"create a volume whose key only a KMS key can unlock",
	"usage: cmkfs create VOLUME --size SIZE --key-arn ARN [--sector-size N]\n"
	"                    [--label L] [--mkfs ext4|xfs] [--force] [KMS "
	"OPTIONS]\n"
	"\n"
	"Create VOLUME (a new file of SIZE usable bytes plus a 16 MiB header, "
	"fully\n"
	"allocated; or an existing block device, used whole) as a LUKS2 volume:\n"
	"AES-256-XTS with a random 512-bit volume key, whose only keyslot is "
	"opened\n"
	"by a data key of the KMS key ARN (GenerateDataKey with the encryption\n"
	"context {\"cmkfs:volume\": \"<UUID>\"}), kept wrapped in an aws-kms "
	"token.\n"
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

/* ---- status
 * ------------------------------------------------------------------ */

/* The aws-kms token covering keyslot ks, or -1. */
static int token_for(struct vol *v, const struct vol_info *info, int ks,
		     struct kms_token *t)
{
	for (unsigned i = 0; i < info->n_tokens; i++) {
		const char *json;

		if (vol_token_json(v, info->tokens[i], &json) ||
		    kms_token_parse(json, t, NULL, 0))
			continue;
		for (size_t j = 0; j < t->n_keyslots; j++)
			if (t->keyslots[j] == ks)
				return info->tokens[i];
		kms_token_free(t);
	}
	return -1;
}

/* The reencryption state for status: "none", "in-progress", "crashed",
 * or "end-cut-off" when reencrypt was completing its end. */
static const char *reencrypt_state(const char *volume,
				   const struct vol_info *info)
{
	static const char *const names[] = {
		[VOL_REENCRYPT_NONE] = "none",
		[VOL_REENCRYPT_CLEAN] = "in-progress",
		[VOL_REENCRYPT_CRASHED] = "crashed",
	};
	char snapshot[4200];

	if (!cli_reencrypt_snapshot(volume, snapshot, sizeof(snapshot)) &&
	    access(snapshot, F_OK) == 0)
		return "end-cut-off";
	return names[info->reencrypt];
}

static int run_status(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ "check-key", no_argument, NULL, 'c' },
		CLI_KMS_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct kms_options ko = { 0 };
	struct vol_info info = { 0 };
	struct vol *v = NULL;
	bool json = false, check = false, unbound = false;
	int failed = 0;
	json_object *o = NULL, *slots = NULL;
	char hs[32];
	int c, rc;

	while ((c = cli_getopt(cmd, argc, argv, "h", longopts, &rc)) != -1) {
		if (cli_kms_option(cmd, c, optarg, &ko, &rc) < 0)
			return rc;
		if (c == 'j')
			json = true;
		else if (c == 'c')
			check = true;
	}
	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage_error(cmd, "status takes one VOLUME");
	rc = cli_volume_open(argv[optind], VOL_OPEN_REENCRYPTING, &v, &info);
	if (rc)
		return rc;
	cli_human_size(info.data_size, hs, sizeof(hs));
	if (json) {
		o = json_object_new_object();
		slots = json_object_new_array();
		json_object_object_add(o, "volume",
				       json_object_new_string(argv[optind]));
		json_object_object_add(o, "uuid",
				       json_object_new_string(info.uuid));
		json_object_object_add(o, "label",
				       json_object_new_string(info.label));
		json_object_object_add(o, "cipher",
				       json_object_new_string(info.cipher));
		json_object_object_add(
			o, "encrypted",
			json_object_new_boolean(
				strncmp(info.cipher, "cipher_null", 11) != 0));
		json_object_object_add(
			o, "key_bits",
			json_object_new_int((int)info.key_bytes * 8));
		json_object_object_add(
			o, "sector_size",
			json_object_new_int((int)info.sector_size));
		json_object_object_add(
			o, "data_offset",
			json_object_new_int64((int64_t)info.data_offset));
		json_object_object_add(
			o, "data_size",
			json_object_new_int64((int64_t)info.data_size));
		json_object_object_add(
			o, "unused_tail",
			json_object_new_int64((int64_t)info.data_tail));
		json_object_object_add(
			o, "blank",
			json_object_new_boolean(info.blank_token >= 0));
		json_object_object_add(o, "reencryption",
				       json_object_new_string(reencrypt_state(
					       argv[optind], &info)));
		json_object_object_add(o, "keyslots", slots);
	} else {
		printf("%s: cmkfs volume (LUKS2)\n"
		       "  uuid         %s\n",
		       argv[optind], info.uuid);
		if (info.label[0])
			printf("  label        %s\n", info.label);
		if (!strncmp(info.cipher, "cipher_null", 11))
			printf("  cipher       %s: NOT ENCRYPTED (benchmark "
			       "volume)\n",
			       info.cipher);
		else
			printf("  cipher       %s, %u-bit key\n", info.cipher,
			       info.key_bytes * 8);
		printf("  sector size  %u\n"
		       "  data         %s at offset %llu (%llu bytes)\n",
		       info.sector_size, hs,
		       (unsigned long long)info.data_offset,
		       (unsigned long long)info.data_size);
		if (info.data_tail)
			printf("  unused       the last %llu bytes of the file: "
			       "not a whole sector\n",
			       (unsigned long long)info.data_tail);
		if (info.blank_token >= 0)
			printf("  blank        never written: its first mount "
			       "makes the filesystem\n");
		if (!strcmp(reencrypt_state(argv[optind], &info),
			    "end-cut-off"))
			printf("  REENCRYPTION END CUT OFF: finish it with "
			       "`cmkfs reencrypt --resume %s`\n",
			       argv[optind]);
		else if (info.reencrypt == VOL_REENCRYPT_CLEAN)
			printf("  REENCRYPTION IN PROGRESS: the volume cannot be "
			       "unlocked until `cmkfs reencrypt --resume %s` "
			       "finishes it\n",
			       argv[optind]);
		else if (info.reencrypt == VOL_REENCRYPT_CRASHED)
			printf("  REENCRYPTION INTERRUPTED by a crash in the "
			       "middle of a block: `cmkfs reencrypt --resume "
			       "%s` recovers it and finishes\n",
			       argv[optind]);
	}
	for (unsigned i = 0; i < info.n_keyslots; i++) {
		struct kms_token t;
		int tok = token_for(v, &info, info.keyslots[i], &t);

		if (tok < 0)
			unbound = true;
		if (json) {
			json_object *s = json_object_new_object();

			json_object_object_add(
				s, "keyslot",
				json_object_new_int(info.keyslots[i]));
			json_object_object_add(
				s, "kms_bound",
				json_object_new_boolean(tok >= 0));
			if (tok >= 0) {
				json_object_object_add(
					s, "token", json_object_new_int(tok));
				json_object_object_add(
					s, "key_arn",
					json_object_new_string(t.key_arn));
				json_object_object_add(
					s, "region",
					json_object_new_string(t.region));
				json_object_object_add(
					s, "created",
					json_object_new_string(t.created));
			}
			json_object_array_add(slots, s);
		} else if (tok >= 0) {
			printf("  keyslot %-4d bound to %s\n"
			       "               (region %s, token %d, created %s)\n",
			       info.keyslots[i], t.key_arn, t.region, tok,
			       t.created[0] ? t.created : "?");
		} else {
			printf("  keyslot %-4d NOT BOUND to a KMS key: whoever "
			       "has its passphrase can open this volume without "
			       "KMS; remove it (cryptsetup luksKillSlot)\n",
			       info.keyslots[i]);
		}
		if (tok >= 0 && check) {
			struct kms_options tko = ko;
			struct kms_client *k;

			if (!tko.region)
				tko.region = t.region;
			int r = cli_kms_client(&tko, &k);

			if (!r) {
				r = cli_check_key(k, t.key_arn, json, NULL);
				kms_client_free(k);
			}
			if (r && !json)
				printf("  key check    FAILED for %s (above)\n",
				       t.key_arn);
			if (r && !failed)
				failed = r; /* the first failure decides */
		}
		if (tok >= 0)
			kms_token_free(&t);
	}
	cli_status_mount(info.uuid, json ? o : NULL);
	if (json) {
		json_object_object_add(o, "only_kms_keyslots",
				       json_object_new_boolean(!unbound));
		printf("%s\n",
		       json_object_to_json_string_ext(
			       o, JSON_C_TO_STRING_PRETTY |
					  JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else if (!info.n_keyslots) {
		printf("  keyslots     none: this volume cannot be opened\n");
	}
	vol_close(v);
	return failed;
}

const struct cli_cmd cli_cmd_status = {
	"status",
	"show a volume: format, keyslots, the KMS keys they need",
	"usage: cmkfs status VOLUME [--json] [--check-key [KMS OPTIONS]]\n"
	"\n"
	"Show the volume's UUID, cipher, sector size, data offset and size, "
	"and each\n"
	"keyslot with the KMS key it is bound to.  A keyslot no aws-kms token "
	"covers\n"
	"is flagged: it would let a passphrase open the volume without KMS.  "
	"No KMS\n"
	"request is made unless --check-key, which checks each key as "
	"'cmkfs\n"
	"check-key' does.\n"
	"\n" CLI_KMS_USAGE,
	run_status,
};

/* ---- unlock-test
 * ------------------------------------------------------------- */

/* Why an unwrap failed, in the volume's terms. */
static int unwrap_failed(const char *volume, const struct kms_token *t,
			 const struct kms_error *e)
{
	switch (e->status) {
	case KMS_ACCESS_DENIED:
		return cli_kms_error(e,
				     "cannot unlock %s: the key %s does not "
				     "let this host decrypt (key policy or "
				     "grant changed, or not shared with this "
				     "account)",
				     volume, t->key_arn);
	case KMS_DISABLED:
		return cli_kms_error(e,
				     "cannot unlock %s: the key %s is disabled",
				     volume, t->key_arn);
	case KMS_INVALID_STATE:
		return cli_kms_error(e,
				     "cannot unlock %s: the key %s is pending "
				     "deletion or otherwise unusable",
				     volume, t->key_arn);
	case KMS_NOT_FOUND:
		return cli_kms_error(e,
				     "cannot unlock %s: the key %s does not "
				     "exist in region %s (deleted, or the "
				     "wrong region)",
				     volume, t->key_arn, t->region);
	case KMS_INVALID_CIPHERTEXT:
	case KMS_INCORRECT_KEY:
		return cli_kms_error(
			e,
			"cannot unlock %s: its wrapped secret does "
			"not decrypt under %s and the volume's "
			"context (the token was copied from "
			"another volume or tampered with)",
			volume, t->key_arn);
	default:
		return cli_kms_error(e, "cannot unlock %s through %s", volume,
				     t->key_arn);
	}
}

/*
 * Locks between cmkfs commands on one volume: two bytes of an open file
 * description lock (fcntl F_OFD_SETLK), not flock(): libcryptsetup flock()s
 * the volume itself for each metadata write, and a flock of ours on another
 * descriptor of the same file would deadlock against it.  The two kinds of
 * lock do not interact.  Byte 0 is the header-change lock (two concurrent
 * rotations would each keep their own keyslot and destroy the other's);
 * byte 1 is held shared by every mount of the volume.
 */
#define LOCK_BYTE_HEADER  0
#define LOCK_BYTE_MOUNTED 1

static int lock_byte(int fd, short type, off_t byte)
{
	struct flock fl = { .l_type = type,
			    .l_whence = SEEK_SET,
			    .l_start = byte,
			    .l_len = 1 };

	return fcntl(fd, F_OFD_SETLK, &fl) ? -errno : 0;
}

static int lock_failed(const char *volume, int r, enum cli_lock kind,
		       off_t byte)
{
	if (r != -EAGAIN && r != -EACCES)
		return cli_error(r, "cannot lock %s", volume);
	if (kind == CLI_LOCK_MOUNTED)
		return cli_error(
			0,
			"%s is being changed offline by another cmkfs "
			"command (reencrypt, header-restore): mount it "
			"when that is done",
			volume);
	if (byte == LOCK_BYTE_MOUNTED)
		return cli_error(0,
				 "%s is mounted: unmount it first "
				 "(cmkfs umount)",
				 volume);
	return cli_error(0,
			 "%s is being changed by another cmkfs command "
			 "(rotate, reencrypt, header-restore): try again when "
			 "it is done",
			 volume);
}

int cli_volume_lock(const char *volume, enum cli_lock kind, int *fd)
{
	int r = 0;

	*fd = open(volume,
		   (kind == CLI_LOCK_MOUNTED ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (*fd < 0)
		return cli_error(-errno, "cannot open %s", volume);
	switch (kind) {
	case CLI_LOCK_HEADER:
		r = lock_byte(*fd, F_WRLCK, LOCK_BYTE_HEADER);
		if (r)
			r = lock_failed(volume, r, kind, LOCK_BYTE_HEADER);
		break;
	case CLI_LOCK_MOUNTED:
		r = lock_byte(*fd, F_RDLCK, LOCK_BYTE_MOUNTED);
		if (r)
			r = lock_failed(volume, r, kind, LOCK_BYTE_MOUNTED);
		break;
	case CLI_LOCK_OFFLINE:
		r = lock_byte(*fd, F_WRLCK, LOCK_BYTE_MOUNTED);
		if (r) {
			r = lock_failed(volume, r, kind, LOCK_BYTE_MOUNTED);
			break;
		}
		r = lock_byte(*fd, F_WRLCK, LOCK_BYTE_HEADER);
		if (r)
			r = lock_failed(volume, r, kind, LOCK_BYTE_HEADER);
		break;
	}
	if (r) {
		close(*fd);
		*fd = -1;
	}
	return r;
}

int cli_volume_open(const char *path, unsigned flags, struct vol **v,
		    struct vol_info *info)
{
	char err[512];

	if (vol_open_flags(path, flags, v, err, sizeof(err)))
		return cli_error(0, "%s", err);
	if (vol_info(*v, info)) {
		vol_close(*v);
		*v = NULL;
		return cli_error(-EIO, "cannot read the header of %s", path);
	}
	return EXIT_OK;
}

bool cli_token_live(const struct vol_info *info, const struct kms_token *t)
{
	for (size_t j = 0; j < t->n_keyslots; j++)
		for (unsigned i = 0; i < info->n_keyslots; i++)
			if (info->keyslots[i] == t->keyslots[j])
				return true;
	return false;
}

/* The first token's failure, explained once no token has worked: kept
 * rather than asked again, so KMS sees one request per token. */
struct failure {
	enum { NONE, UNWRAP, USE } kind;
	struct kms_token t; /* key_arn and region only */
	struct kms_error kerr;
	char err[512];
};

/* Try token number i of the volume: unwrap its secret and hand it to use.
 * 0 when use succeeded (*t filled), -1 when it is not a live aws-kms
 * token, else an exit code — with the reason recorded in f when it is the
 * first (or printed, when it is not a KMS or keyslot failure). */
static int try_token(struct vol *v, const struct vol_info *info, unsigned i,
		     const struct kms_options *ko,
		     const struct cli_secret_use *use, struct kms_token *t,
		     struct failure *f)
{
	struct kms_options tko = *ko;
	struct kms_client *k = NULL;
	struct kms_error kerr;
	uint8_t *secret = NULL;
	const char *json;
	char err[512];
	size_t len;
	int rc;

	if (vol_token_json(v, info->tokens[i], &json) ||
	    kms_token_parse(json, t, NULL, 0))
		return -1; /* not ours */
	if (!cli_token_live(info, t)) {
		kms_token_free(t);
		return -1;
	}
	/* The key's region unless told otherwise: the ARN says where the key
	 * lives. */
	if (!tko.region)
		tko.region = t->region;
	rc = cli_kms_client(&tko, &k);
	if (!rc &&
	    kms_volume_secret_unwrap(k, t, info->uuid, &secret, &len, &kerr)) {
		rc = EXIT_FAIL;
		if (f->kind == NONE) {
			f->kind = UNWRAP;
			f->kerr = kerr;
		}
	} else if (!rc && use->fn(v, t, info->tokens[i], secret, len, use->arg,
				  err, sizeof(err))) {
		rc = EXIT_FAIL;
		if (f->kind == NONE) {
			f->kind = USE;
			snprintf(f->err, sizeof(f->err), "%s", err);
		}
	}
	if (rc && f->t.key_arn[0] == 0) {
		snprintf(f->t.key_arn, sizeof(f->t.key_arn), "%s", t->key_arn);
		snprintf(f->t.region, sizeof(f->t.region), "%s", t->region);
	}
	secmem_free(secret);
	kms_client_free(k);
	if (rc)
		kms_token_free(t);
	return rc;
}

int cli_volume_secret(struct vol *v, const struct vol_info *info,
		      const struct kms_options *ko, const char *volume,
		      const struct cli_secret_use *use, struct kms_token *t)
{
	struct failure f = { .kind = NONE };
	int first = 0, rc;

	memset(t, 0, sizeof(*t));
	/* Any token that works will do; only when none does is the first
	 * one's failure explained. */
	for (unsigned i = 0; i < info->n_tokens; i++) {
		rc = try_token(v, info, i, ko, use, t, &f);
		if (!rc)
			return 0;
		if (rc > 0 && !first)
			first = rc;
	}
	switch (f.kind) {
	case UNWRAP:
		return unwrap_failed(volume, &f.t, &f.kerr);
	case USE:
		return cli_error(0,
				 "cannot unlock %s: the secret from %s does "
				 "not open its keyslot: %s",
				 volume, f.t.key_arn, f.err);
	case NONE:
		break;
	}
	if (first)
		return first; /* already printed (e.g. KMS settings) */
	return cli_error(0,
			 "%s has no aws-kms token for any of its keyslots: "
			 "nothing can unlock it through KMS",
			 volume);
}

/* Open the first of the token's keyslots the secret opens. */
static int open_keyslot(struct vol *v, const struct kms_token *t, int token_id,
			const uint8_t *secret, size_t len, void *arg, char *err,
			size_t errlen)
{
	struct unlocked *out = arg;
	int r = -ENOENT;

	for (size_t j = 0; j < t->n_keyslots; j++) {
		r = vol_unlock(v, t->keyslots[j], secret, len, &out->vk,
			       &out->vk_len, err, errlen);

		if (!r) {
			out->keyslot = t->keyslots[j];
			out->token_id = token_id;
			return 0;
		}
	}
	return r;
}

int cli_volume_unlock(struct vol *v, const struct vol_info *info,
		      const struct kms_options *ko, const char *volume,
		      struct unlocked *out)
{
	const struct cli_secret_use use = { open_keyslot, out };

	memset(out, 0, sizeof(*out));
	return cli_volume_secret(v, info, ko, volume, &use, &out->token);
}

void cli_unlocked_free(struct unlocked *u)
{
	secmem_free(u->vk);
	kms_token_free(&u->token);
	memset(u, 0, sizeof(*u));
}

static int run_unlock_test(const struct cli_cmd *cmd, int argc, char **argv)
{
	struct kms_options ko = { 0 };
	struct unlocked u = { 0 };
	struct vol_info info = { 0 };
	struct vol *v = NULL;
	int rc = cli_kms_only_options(cmd, argc, argv, &ko);

	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage_error(cmd, "unlock-test takes one VOLUME");
	rc = cli_volume_open(argv[optind], 0, &v, &info);
	if (rc)
		return rc;
	rc = cli_volume_unlock(v, &info, &ko, argv[optind], &u);
	if (!rc)
		printf("ok: %s unlocks through %s (keyslot %d)\n", argv[optind],
		       u.token.key_arn, u.keyslot);
	cli_unlocked_free(&u);
	vol_close(v);
	return rc;
}

const struct cli_cmd cli_cmd_unlock_test = {
	"unlock-test",
	"prove the volume unlocks through its KMS key, now",
	"usage: cmkfs unlock-test VOLUME [KMS OPTIONS]\n"
	"\n"
	"Unwrap the volume's keyslot secret through KMS (Decrypt naming the key "
	"and\n"
	"the volume's encryption context) and open its keyslot, without "
	"mounting.\n"
	"Exit 0 when it unlocks; otherwise the precise reason: key disabled, "
	"pending\n"
	"deletion, not shared or no longer allowed, deleted or in another "
	"region,\n"
	"token copied from another volume or tampered with, KMS unreachable.\n"
	"The region defaults to the one recorded in the token.\n"
	"\n" CLI_KMS_USAGE "\n"
	"Exit status: 0 unlocks, 1 failure, 3 KMS refused, 4 KMS unreachable.\n",
	run_unlock_test,
};
