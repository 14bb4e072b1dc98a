/* SPDX-License-Identifier: Apache-2.0 */
/*
 * segments.c — reading a LUKS2 header's segments and digests (the JSON
 * libcryptsetup hands out): where the data ends, which key covers which
 * segment, and how far a reencryption has come.  Pure readers over a
 * loaded handle, shared by luks2.c (the data's size) and reencrypt.c.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libcryptsetup.h>

#include "hdr.h"
#include "internal.h"
#include "luks2.h"

/* Where the data ends: the end of the file, less a partial last sector.
 * That sector is not data (luks2_info); libcryptsetup refuses a device that
 * ends in one, to format or to reencrypt. */
uint64_t luks2_data_end(struct luks2_vol *v)
{
	uint64_t offset = crypt_get_data_offset(v->cd) * SECTOR;
	int n = crypt_get_sector_size(v->cd);
	uint64_t ss = n > 0 ? (uint64_t)n : SECTOR;

	if (v->device_size <= offset)
		return v->device_size;
	return v->device_size - (v->device_size - offset) % ss;
}

/* Does segment seg carry a flag that starts with prefix? */
bool luks2_seg_flag(json_object *seg, const char *prefix)
{
	json_object *flags;

	if (!json_object_object_get_ex(seg, "flags", &flags) ||
	    !json_object_is_type(flags, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(flags); i++) {
		const char *f = json_object_get_string(
			json_object_array_get_idx(flags, i));

		if (f && !strncmp(f, prefix, strlen(prefix)))
			return true;
	}
	return false;
}

/* The digest (in m's "digests") that lists segment id, or NULL. */
json_object *luks2_seg_digest(json_object *m, const char *id)
{
	json_object *digests, *segs;

	if (!json_object_object_get_ex(m, "digests", &digests))
		return NULL;
	json_object_object_foreach(digests, name, d)
	{
		(void)name;
		if (!json_object_object_get_ex(d, "segments", &segs))
			continue;
		for (size_t i = 0; i < json_object_array_length(segs); i++)
			if (!strcmp(json_object_get_string(
					    json_object_array_get_idx(segs, i)),
				    id))
				return d;
	}
	return NULL;
}

/* A segment's "size" in bytes: a decimal string, or "dynamic" (from its
 * offset to end, the end of the data; both from the start of the device).
 * False when it is neither. */
bool luks2_seg_bytes(json_object *seg, uint64_t end, uint64_t *size)
{
	json_object *jo, *js;
	const char *o, *s;
	uint64_t off;
	char *e;

	if (!json_object_object_get_ex(seg, "offset", &jo) ||
	    !json_object_object_get_ex(seg, "size", &js))
		return false;
	o = json_object_get_string(jo);
	s = json_object_get_string(js);
	if (!o || !s || *o < '0' || *o > '9')
		return false;
	off = strtoull(o, &e, 10);
	if (*e)
		return false;
	if (!strcmp(s, "dynamic")) {
		*size = end > off ? end - off : 0;
		return true;
	}
	if (*s < '0' || *s > '9')
		return false;
	*size = strtoull(s, &e, 10);
	return !*e;
}

int luks2_reencrypt_progress(struct luks2_vol *v, uint64_t *done,
			     uint64_t *total)
{
	json_object *m = NULL, *segments, *final = NULL;
	uint64_t end = luks2_data_end(v), offset, size, sum = 0;
	const char *json, *final_id = NULL;
	int r = -EINVAL;

	*done = *total = 0;
	offset = crypt_get_data_offset(v->cd) * SECTOR;
	/* (no luks2_lib_begin: its failure is not reported through the
	 * library's messages, and the handle exists, so the library is set
	 * up) */
	if (crypt_dump_json(v->cd, &json, 0) < 0)
		return -EIO;
	m = json_tokener_parse(json);
	if (!m || !json_object_object_get_ex(m, "segments", &segments))
		goto out;
	json_object_object_foreach(
		segments, fid, fseg) if (luks2_seg_flag(fseg, "backup-final"))
		final_id = fid;
	if (!final_id) {
		r = -ENOENT; /* not being reencrypted */
		goto out;
	}
	final = luks2_seg_digest(m, final_id);
	/* The live segments under the new key, the one in reencryption
	 * aside: what is done.  Segment offsets and sizes are relative to
	 * the device; "dynamic" runs to the end of the data. */
	json_object_object_foreach(segments, id, seg)
	{
		if (luks2_seg_flag(seg, "backup-") ||
		    luks2_seg_flag(seg, "in-reencryption") ||
		    luks2_seg_digest(m, id) != final)
			continue;
		if (!luks2_seg_bytes(seg, end, &size))
			goto out;
		sum += size;
	}
	*total = end > offset ? end - offset : 0;
	*done = sum < *total ? sum : *total;
	r = 0;
out:
	json_object_put(m);
	return r;
}
