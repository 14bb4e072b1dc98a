/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probe.c — what libblkid recognises on a device or file (fs.h,
 * fsd_probe_signature): so that nothing with data on it is formatted over.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <blkid/blkid.h>

#include "fs.h"

/* Append name to the comma-separated list in type. */
static void add_name(char *type, size_t len, const char *name)
{
	size_t n = strlen(type);

	if (n < len)
		snprintf(type + n, len - n, "%s%s", n ? "," : "", name);
}

static void probe_names(blkid_probe pr, char *type, size_t len)
{
	const char *name;

	if (!blkid_probe_lookup_value(pr, "TYPE", &name, NULL) ||
	    !blkid_probe_lookup_value(pr, "PTTYPE", &name, NULL))
		add_name(type, len, name);
}

int fsd_probe_signature(const char *path, char *type, size_t len)
{
	blkid_probe pr;
	struct stat st;
	char names[256] = "";
	int r;

	if (!path)
		return -EINVAL;
	if (type && len)
		type[0] = 0;
	if (stat(path, &st) < 0)
		return -errno;
	pr = blkid_new_probe_from_filename(path);
	if (!pr)
		return errno ? -errno : -EIO;
	/* Signatures with bad checksums count too: this check exists so
	 * that damaged data is not formatted over either. */
	if (blkid_probe_enable_superblocks(pr, 1) ||
	    blkid_probe_set_superblocks_flags(
		    pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_BADCSUM) ||
	    blkid_probe_enable_partitions(pr, 1) ||
	    blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC)) {
		r = -EIO;
		goto out;
	}
	r = blkid_do_safeprobe(pr);
	if (r == 0) {
		probe_names(pr, names, sizeof(names));
		r = 1;
	} else if (r == 1) {
		r = 0;
	} else if (r == -2) {
		/* Several signatures disagree: name them all. */
		blkid_reset_probe(pr);
		while (blkid_do_probe(pr) == 0)
			probe_names(pr, names, sizeof(names));
		r = 1;
	} else {
		r = -EIO;
	}
	if (r == 1 && !names[0])
		snprintf(names, sizeof(names), "unknown");
	if (r == 1 && type && len)
		snprintf(type, len, "%s", names);
out:
	blkid_free_probe(pr);
	return r;
}
