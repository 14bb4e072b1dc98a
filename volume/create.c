/* SPDX-License-Identifier: Apache-2.0 */
/*
 * create.c — a new volume (volume.h, vol_create): the key checked first,
 * the keyslot secret made through KMS, the volume formatted under a
 * temporary name in the target's directory and renamed into place only
 * when it is complete, so that a KMS refusal, a full disk or an
 * interruption leaves nothing half-made.  A block device is formatted in
 * place, after the same checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "fs.h"
#include "luks2.h"
#include "internal.h"
#include "volume.h"

/* libcryptsetup's LUKS2 default data offset: the header's room. */
#define HEADER_ROOM (16ull * 1024 * 1024)

/* Refuse to destroy what is on an existing target. */
static int check_target(const struct vol_create_params *p, bool *is_block,
			struct vol_error *e)
{
	struct stat sb;
	char type[64];
	int r;

	*is_block = false;
	if (stat(p->volume, &sb)) {
		if (errno == ENOENT)
			return 0;
		return vol_fail(e, -errno, true, "cannot create %s", p->volume);
	}
	if (S_ISBLK(sb.st_mode))
		*is_block = true;
	else if (!S_ISREG(sb.st_mode))
		return vol_fail(
			e, -EINVAL, false,
			"cannot create %s: it is neither a regular file "
			"nor a block device",
			p->volume);
	r = fsd_probe_signature(p->volume, type, sizeof(type));
	if (r < 0)
		return vol_fail(e, r, true, "cannot read %s", p->volume);
	if (r > 0 && !p->force)
		return vol_fail(
			e, -EEXIST, false,
			"%s holds %s data (a %s signature): refusing to "
			"overwrite it; add --force to destroy it",
			p->volume,
			!strcmp(type, "crypto_LUKS") ? "encrypted" : "", type);
	return 0;
}

/*
 * The two steps whose interruption would leave a file nobody knows of — a
 * temporary file created but not yet named to the tmp_file hook, or renamed
 * into place while the hook still names it — run with the terminating
 * signals of an interactive command blocked (in the calling thread, for a
 * moment; restored after).
 */
static void block_signals(sigset_t *old)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &s, old);
}

static void restore_signals(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
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

/* The temporary file beside the target, fully allocated (a volume must not
 * run out of space later, in the middle of a database write): its fd, with
 * its name in tmp, or -errno. */
static int make_tmp(const struct vol_create_params *p, char *tmp, size_t len,
		    struct vol_error *e)
{
	char *dir = strdup(p->volume), *copy = strdup(p->volume);
	sigset_t old;
	int fd, r;

	if (!dir || !copy) {
		free(dir);
		free(copy);
		return vol_fail(e, -ENOMEM, true, "cannot create %s",
				p->volume);
	}
	snprintf(tmp, len, "%s/.%s.cmkfs-XXXXXX", dirname(dir), basename(copy));
	free(dir);
	free(copy);
	block_signals(&old);
	fd = mkostemp(tmp, O_CLOEXEC);
	r = fd < 0 ? -errno : 0;
	if (fd >= 0 && p->tmp_file)
		p->tmp_file(tmp, p->tmp_arg);
	restore_signals(&old);
	if (fd < 0)
		return vol_fail(e, r, true, "cannot create a file beside %s",
				p->volume);
	r = posix_fallocate(fd, 0, (off_t)(p->size + HEADER_ROOM));
	if (r) {
		/* A failed fallocate may keep what it got: give the space
		 * back before anyone says anything (stderr may be a file on
		 * the same filesystem). */
		unlink(tmp);
		if (p->tmp_file)
			p->tmp_file(NULL, p->tmp_arg);
		close(fd);
		e->what = VOL_FAIL_NO_SPACE;
		e->bytes = p->size + HEADER_ROOM;
		return -r;
	}
	return fd;
}

int vol_create(struct vol_kms *k, const struct vol_create_params *p,
	       struct luks2_info *info, struct vol_error *e)
{
	struct luks2_format_params fp = { .cipher = p->cipher,
					  .sector_size = p->sector_size,
					  .label = p->label };
	uint8_t *secret = NULL;
	char uuid[37], *token = NULL, err[512], tmp[4096] = "";
	const char *target = p->volume;
	struct luks2_vol *v = NULL;
	bool is_block;
	sigset_t old;
	int fd = -1, r;

	memset(e, 0, sizeof(*e));
	r = check_target(p, &is_block, e);
	if (r)
		return r;
	if (!is_block && !p->size)
		return vol_fail(e, -EINVAL, false,
				"creating the file %s needs --size", p->volume);
	if (is_block && p->size)
		return vol_fail(e, -EINVAL, false,
				"%s is a block device: the volume takes all of "
				"it, drop --size",
				p->volume);
	if (crypto_uuid(uuid))
		return vol_fail(e, -EIO, false, "no randomness");
	fp.uuid = uuid;
	/* Bound to the header about to be written: its UUID and segment. */
	luks2_format_info(&fp, info);
	r = vol_new_secret(k, p->key_arn, true, info, "cannot create",
			   p->volume, &secret, &token, e);
	if (r)
		return r;
	if (!is_block) {
		fd = make_tmp(p, tmp, sizeof(tmp), e);
		if (fd < 0) {
			r = fd;
			tmp[0] = 0;
			goto out;
		}
		target = tmp;
	}
	r = luks2_format(target, &fp, secret, VOL_SECRET_BYTES, token, err,
			 sizeof(err));
	if (r) {
		vol_fail(e, r, false, "cannot create %s: %s", p->volume, err);
		goto out;
	}
	secmem_free(secret);
	secret = NULL;
	/* A null volume is one on purpose: asked for with --insecure. */
	r = luks2_open_flags(
		target,
		strcmp(p->cipher, "cipher_null") ? 0 : LUKS2_OPEN_INSECURE, &v,
		err, sizeof(err));
	if (!r)
		r = luks2_info(v, info);
	if (r) {
		vol_fail(e, r, false, "cannot read back %s: %s", p->volume,
			 err);
		goto out;
	}
	/* Nothing is written yet: its first mount may make a filesystem. */
	r = luks2_blank_mark(v, err, sizeof(err));
	if (r) {
		vol_fail(e, r, false, "cannot create %s: %s", p->volume, err);
		goto out;
	}
	if (!is_block) {
		/* The header took what libcryptsetup chose: make the data
		 * segment exactly the size asked for. */
		if (info->data_offset + p->size != info->device_size &&
		    ftruncate(fd, (off_t)(info->data_offset + p->size))) {
			r = vol_fail(e, -errno, true, "cannot size %s",
				     p->volume);
			goto out;
		}
		if (fsync(fd)) {
			r = vol_fail(e, -errno, true, "cannot put %s in place",
				     p->volume);
			goto out;
		}
		block_signals(&old);
		r = rename(tmp, p->volume) ? -errno : 0;
		if (!r) {
			tmp[0] = 0;
			if (p->tmp_file)
				p->tmp_file(NULL, p->tmp_arg);
		}
		restore_signals(&old);
		if (r) {
			vol_fail(e, r, true, "cannot put %s in place",
				 p->volume);
			goto out;
		}
		r = fsync_dir_of(p->volume);
		if (r) {
			vol_fail(e, r, true,
				 "%s is in place, but its directory cannot be "
				 "synced",
				 p->volume);
			goto out;
		}
		info->data_size = p->size;
		info->device_size = info->data_offset + p->size;
	}
out:
	luks2_close(v);
	if (fd >= 0)
		close(fd);
	if (tmp[0]) {
		unlink(tmp);
		if (p->tmp_file)
			p->tmp_file(NULL, p->tmp_arg);
	}
	secmem_free(secret);
	free(token);
	return r;
}
