/* SPDX-License-Identifier: Apache-2.0 */
/*
 * header.c — a volume's LUKS2 header saved to a file and restored from it
 * (volume.h, vol_header_backup and vol_header_restore).
 */
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "luks2.h"
#include "volume.h"

int vol_header_backup(const char *volume, const char *file, struct vol_error *e)
{
	char err[512];
	int fd = -1, r;

	memset(e, 0, sizeof(*e));
	/* Not while the header changes under another command (an online
	 * reencryption rewrites it at every block): such a copy would be
	 * stale at once, and restoring it would undo progress the data has
	 * made. */
	r = vol_lock(volume, VOL_LOCK_HEADER, &fd, e);
	if (r)
		return r;
	r = luks2_header_backup(volume, file, err, sizeof(err));
	close(fd);
	return r ? vol_fail(e, r, false, "%s", err) : 0;
}

/* Does the volume carry the blank mark now?  Not when its header does not
 * open (a damaged one is what a restore is for). */
static bool carries_blank_mark(const char *volume)
{
	struct luks2_vol *v = NULL;
	char err[512];
	bool blank;

	if (luks2_open_flags(volume,
			     LUKS2_OPEN_REENCRYPTING | LUKS2_OPEN_INSPECT, &v,
			     err, sizeof(err)))
		return false;
	blank = luks2_is_blank(v);
	luks2_close(v);
	return blank;
}

int vol_header_restore(const char *volume, const char *file,
		       struct vol_error *e)
{
	char err[512];
	int fd = -1, r;

	memset(e, 0, sizeof(*e));
	r = vol_lock(volume, VOL_LOCK_OFFLINE, &fd, e);
	if (r)
		return r;
	/* A backup made before the volume was first written carries its
	 * blank mark: it survives only onto a volume that still has one
	 * (never written since), or the next mount could format over data
	 * written meanwhile. */
	if (carries_blank_mark(volume))
		r = luks2_header_restore(volume, file, err, sizeof(err));
	else
		r = luks2_header_restore_unblank(volume, file, err,
						 sizeof(err));
	close(fd);
	return r ? vol_fail(e, r, false, "%s", err) : 0;
}
