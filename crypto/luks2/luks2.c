/* SPDX-License-Identifier: Apache-2.0 */
/*
 * luks2.c — cmkfs's LUKS2 volumes over libcryptsetup: format with cmkfs's
 * fixed parameters, load, unlock a keyslot into secure memory, add and
 * destroy keyslots and tokens, back up and restore the header.  Header
 * layout, checksums, locking and recovery are libcryptsetup's; this file writes
 * LUKS2 metadata itself in one place only (benchmark_null_segment(), for
 * cipher_null benchmark volumes on hosts where libcryptsetup cannot format
 * them), and no libcryptsetup type leaves it.
 *
 * Four things here are not obvious:
 *
 * - Logging.  libcryptsetup prints to stdout/stderr unless given a log
 *   callback, and messages about a device it cannot open come before any
 *   handle exists, so the callback is installed as the library's default
 *   (process-wide; cmkfs is libcryptsetup's only user in its processes).  It
 *   keeps the latest error message, per thread, to complete our own error
 *   lines, and drops everything else.  Debug output (which can show header
 *   JSON) stays off.
 *
 * - Loading never writes.  crypt_load() repairs a damaged or stale header
 *   copy on disk as a side effect.  luks2_open() must not write, so we first
 *   check the two binary headers ourselves (magic, offsets, SHA-256
 *   checksum, sequence ids); only when both copies are intact and agree is
 *   the device handed to crypt_load().  Otherwise the header area is copied
 *   into a sparse memfd of the device's size and loaded from there: the
 *   repair happens in memory.  The first change made through such a handle
 *   reloads from the device, letting libcryptsetup rewrite the damaged copy
 *   together with the change, which writes the header anyway.
 *
 * - Tokens are stored with their keyslot already in "keyslots": one header
 *   write, so a crash cannot leave a token assigned to nothing.
 *
 * - A format that fails after its header reached the device wipes the whole
 *   header area (both copies and the keyslots), so no half-made volume is
 *   left for anything to recognise; a format that fails before writing
 *   (device in use, bad parameters) touches nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libcryptsetup.h>

#include "crypto.h"
#include "hdr.h"
#include "internal.h"
#include "luks2.h"

/* cmkfs's keyslot KDF: the secrets are full-entropy keys, so the KDF only
 * has to be the cheapest libcryptsetup accepts, and never benchmarked. */
#define KDF_ITERATIONS 1000u

/* libcryptsetup's default LUKS2 header area (two 16 KiB metadata copies and
 * the keyslots area), which also sets the default data offset.  A smaller
 * file would be grown by libcryptsetup to fit: we refuse it instead. */

#define LABEL_MAX  47 /* LUKS2 label field, NUL excluded */
#define MAX_TOKENS LUKS2_MAX_TOKENS

/* ---- libcryptsetup's log ------------------------------------------------ */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static _Thread_local char lib_msg[256];
/* Set once this module runs inside another program's libcryptsetup (the
 * token plugin, luks2_borrow): the library's settings are then the host's,
 * never changed here. */
static bool lib_guest;

static void lib_log(int level, const char *msg, void *usrptr)
{
	size_t n = 0;

	(void)usrptr;
	if (level != CRYPT_LOG_ERROR || !msg)
		return;
	/* One line: multi-line messages joined, trailing newline dropped. */
	for (const char *p = msg; *p && n + 1 < sizeof(lib_msg); p++)
		lib_msg[n++] = *p == '\n' ? ' ' : *p;
	while (n && lib_msg[n - 1] == ' ')
		n--;
	lib_msg[n] = 0;
}

static void lib_init_once(void)
{
	crypt_set_debug_level(CRYPT_DEBUG_NONE);
	crypt_set_log_callback(NULL, lib_log, NULL);
	/* Token types are only data to cmkfs: never let a token's type make
	 * libcryptsetup dlopen() a plugin. */
	crypt_token_external_disable();
}

/* Before every libcryptsetup call whose failure we report: forget earlier
 * messages (some are logged as errors on success paths). */
void luks2_lib_begin(void)
{
	if (!__atomic_load_n(&lib_guest, __ATOMIC_RELAXED))
		pthread_once(&lib_once, lib_init_once);
	lib_msg[0] = 0;
}

void luks2_say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int luks2_fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (!err || !errlen)
		return r;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	n = strlen(err);
	if (n + 1 < errlen)
		snprintf(err + n, errlen - n, ": %s",
			 lib_msg[0] ? lib_msg : strerror(-r));
	return r;
}

static void append(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void append(char *err, size_t errlen, const char *fmt, ...)
{
	size_t n = err ? strlen(err) : 0;
	va_list ap;

	if (!err || n + 1 >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - n, fmt, ap);
	va_end(ap);
}

void luks2_clear_err(char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
}

/* ---- devices ------------------------------------------------------------ */

/* Size of a regular file or block device; -EINVAL for anything else. */
static int device_size(const char *path, uint64_t *size, bool *is_file)
{
	struct stat st;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size) < 0)
			r = -errno;
	} else {
		r = -EINVAL;
	}
	if (is_file)
		*is_file = S_ISREG(st.st_mode);
out:
	close(fd);
	return r;
}

static int open_error(const char *path, int r, char *err, size_t errlen)
{
	if (r == -EINVAL)
		luks2_say(err, errlen,
			  "%s is neither a file nor a block device", path);
	else if (r == -ENOENT)
		luks2_say(err, errlen, "%s does not exist", path);
	else
		luks2_say(err, errlen, "cannot open %s: %s", path,
			  strerror(-r));
	return r;
}

/* ---- reading the binary headers ourselves ------------------------------ */

/* The header copy at off of fd (hdr_copy_parse over what is there). */
static int read_hdr_copy(int fd, uint64_t off, bool primary, struct hdr_copy *c)
{
	uint8_t bin[HDR_BIN_LEN], *area;
	uint64_t size;
	ssize_t n;
	int r;

	memset(c, 0, sizeof(*c));
	n = pread(fd, bin, sizeof(bin), (off_t)off);
	if (n < 0)
		return errno ? -errno : -EIO;
	size = (size_t)n == sizeof(bin) ? hdr_be64(bin + HDR_OFF_SIZE) : 0;
	if (size <= HDR_BIN_LEN || size > HDR_MAX_SIZE)
		return hdr_copy_parse(bin, (size_t)n, off, primary, c);
	area = malloc(size);
	if (!area)
		return -ENOMEM;
	n = pread(fd, area, size, (off_t)off);
	r = n < 0 ? (errno ? -errno : -EIO)
		  : hdr_copy_parse(area, (size_t)n, off, primary, c);
	free(area);
	return r;
}

/* Grow *dev, holding the first *len bytes of fd, to hold up to want (fewer
 * at the end of the device), reading only what it does not hold yet.  0 or
 * -errno.  Any read error is one: a copy that cannot be read must not count
 * as absent, or loading would let libcryptsetup repair the header on the
 * device. */
static int read_start(int fd, uint8_t **dev, size_t *len, size_t want)
{
	uint8_t *grown = realloc(*dev, want);
	ssize_t n;

	if (!grown)
		return -ENOMEM;
	*dev = grown;
	while (*len < want) {
		n = pread(fd, *dev + *len, want - *len, (off_t)*len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno ? -errno : -EIO;
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	return 0;
}

/*
 * Classify the LUKS2 header of fd (hdr_scan over its first bytes).  A
 * clean header needs only its two copies read (twice the size the primary
 * claims); anything else is scanned again over every place a copy may be.
 */
static int header_state(int fd, struct hdr_scan *hs)
{
	uint8_t *dev = NULL;
	size_t len = 0, want = HDR_SCAN_LEN;
	int r;

	memset(hs, 0, sizeof(*hs));
	r = read_start(fd, &dev, &len, HDR_BIN_LEN);
	if (!r && len == HDR_BIN_LEN) {
		uint64_t size = hdr_be64(dev + HDR_OFF_SIZE);

		if (size >= HDR_MIN_SIZE && size <= HDR_MAX_SIZE &&
		    !(size & (size - 1)))
			want = 2 * size;
	}
	if (!r)
		r = read_start(fd, &dev, &len, want);
	if (!r)
		r = hdr_scan(dev, len, hs);
	if (!r && hs->state != HDR_CLEAN && want < HDR_SCAN_LEN &&
	    len == want) {
		r = read_start(fd, &dev, &len, HDR_SCAN_LEN);
		if (!r)
			r = hdr_scan(dev, len, hs);
	}
	free(dev);
	return r;
}

int luks2_device_uuid(const char *path, char *uuid, size_t len)
{
	struct hdr_scan hs;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	r = header_state(fd, &hs);
	close(fd);
	if (r)
		return r;
	snprintf(uuid, len, "%s", hs.good_uuid[0] ? hs.good_uuid : hs.any_uuid);
	return uuid[0] ? 0 : -ENOENT;
}

/* Copy [off, off + len) of src to dst, skipping all-zero blocks so that the
 * copy stays sparse (keyslot areas are mostly zeros). */
static int copy_nonzero(int src, int dst, uint64_t off, uint64_t len)
{
	static const uint8_t zero[65536];
	uint8_t *buf = malloc(sizeof(zero));
	int r = 0;

	if (!buf)
		return -ENOMEM;
	while (len) {
		size_t want = len < sizeof(zero) ? (size_t)len : sizeof(zero);
		ssize_t n = pread(src, buf, want, (off_t)off);

		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		if (memcmp(buf, zero, (size_t)n) != 0 &&
		    pwrite(dst, buf, (size_t)n, (off_t)off) != n) {
			r = -EIO;
			break;
		}
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	free(buf);
	return r;
}

static void proc_fd_path(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

/*
 * Load a LUKS2 header from an in-memory copy of v->path's header, so that
 * libcryptsetup's repair of a damaged copy writes to memory.  The copy is a
 * memfd as large as the device and sparse: it holds the two metadata areas
 * and the keyslots in use (a few hundred KiB), enough to unlock, never the
 * data.
 */
static int load_from_copy(struct luks2_vol *v, uint64_t meta_end, char *err,
			  size_t errlen)
{
	uint64_t off, len;
	char proc[64];
	int src, n, r;

	src = open(v->path, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return open_error(v->path, -errno, err, errlen);
	v->copy_fd = memfd_create("cmkfs-luks2-header", MFD_CLOEXEC);
	if (v->copy_fd < 0) {
		r = -errno;
		luks2_say(err, errlen, "memfd_create: %s", strerror(-r));
		goto out;
	}
	if (ftruncate(v->copy_fd, (off_t)v->device_size) < 0) {
		r = -errno;
		luks2_say(err, errlen, "cannot size the header copy: %s",
			  strerror(-r));
		goto out;
	}
	if (meta_end > v->device_size)
		meta_end = v->device_size;
	r = copy_nonzero(src, v->copy_fd, 0, meta_end);
	if (r) {
		luks2_say(err, errlen, "cannot read the header of %s: %s",
			  v->path, strerror(-r));
		goto out;
	}
	proc_fd_path(proc, sizeof(proc), v->copy_fd);
	luks2_lib_begin();
	r = crypt_init(&v->cd, proc);
	if (r < 0) {
		luks2_fail(err, errlen, r, "cannot read the header copy of %s",
			   v->path);
		goto out;
	}
	luks2_lib_begin();
	r = crypt_load(v->cd, CRYPT_LUKS2, NULL);
	if (r < 0) {
		luks2_fail(
			err, errlen, r,
			"the LUKS2 header of %s is damaged and its other copy "
			"cannot replace it",
			v->path);
		goto out;
	}
	/* Now that the header says where they are, the keyslots. */
	n = crypt_keyslot_max(CRYPT_LUKS2);
	for (int i = 0; i < n; i++) {
		if (crypt_keyslot_status(v->cd, i) <= CRYPT_SLOT_INACTIVE ||
		    crypt_keyslot_area(v->cd, i, &off, &len) < 0)
			continue;
		if (off >= v->device_size)
			continue;
		if (len > v->device_size - off)
			len = v->device_size - off;
		r = copy_nonzero(src, v->copy_fd, off, len);
		if (r) {
			luks2_say(err, errlen,
				  "cannot read keyslot %d of %s: %s", i,
				  v->path, strerror(-r));
			goto out;
		}
	}
out:
	close(src);
	return r;
}

/* ---- loading ------------------------------------------------------------ */

void luks2_tokens_forget(struct luks2_vol *v)
{
	for (int i = 0; i < MAX_TOKENS; i++) {
		free(v->token_json[i]);
		v->token_json[i] = NULL;
	}
}

void luks2_close(struct luks2_vol *v)
{
	if (!v)
		return;
	if (!v->borrowed)
		crypt_free(v->cd);
	if (v->copy_fd >= 0)
		close(v->copy_fd);
	luks2_tokens_forget(v);
	free(v->path);
	free(v);
}

/* Why a LUKS2 load failed, in the terms luks2_open() promises; seen: what our
 * own look at the binary headers found. */
static int explain_load_failure(struct luks2_vol *v, int r, enum hdr_state seen,
				char *err, size_t errlen)
{
	if (seen != HDR_NONE && r == -EINVAL)
		return luks2_fail(err, errlen, r,
				  "cannot use the LUKS2 header of %s", v->path);
	if (r == -EINVAL || r == -ENOENT) {
		/* Reading LUKS1 never repairs anything on disk. */
		luks2_lib_begin();
		if (crypt_load(v->cd, CRYPT_LUKS1, NULL) == 0) {
			luks2_say(err, errlen,
				  "%s is a LUKS1 volume; cmkfs needs LUKS2",
				  v->path);
			return -EINVAL;
		}
		luks2_say(err, errlen, "%s is not a LUKS2 volume", v->path);
		return -EINVAL;
	}
	if (r == -EBUSY || r == -EAGAIN)
		return luks2_fail(
			err, errlen, -EBUSY,
			"the header of %s is locked by another process",
			v->path);
	return luks2_fail(err, errlen, r < 0 ? r : -EIO,
			  "cannot read the LUKS2 header of %s", v->path);
}

static int load(struct luks2_vol *v, char *err, size_t errlen)
{
	struct hdr_scan hs;
	int fd, r;

	fd = open(v->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return open_error(v->path, -errno, err, errlen);
	r = header_state(fd, &hs);
	close(fd);
	if (r)
		return luks2_fail(err, errlen, r, "cannot read %s", v->path);
	if (hs.state == HDR_DEGRADED)
		return load_from_copy(v, hs.meta_end, err, errlen);

	luks2_lib_begin();
	r = crypt_init(&v->cd, v->path);
	if (r < 0)
		return luks2_fail(err, errlen, r, "cannot open %s", v->path);
	luks2_lib_begin();
	r = crypt_load(v->cd, CRYPT_LUKS2, NULL);
	if (r < 0)
		return explain_load_failure(v, r, hs.state, err, errlen);
	return 0;
}

/* Refuse volumes libcryptsetup itself would not let us use as they are.
 * A reencryption in progress is refused unless flags allow it: its data
 * is under two keys, and cmkfs serves I/O from one-key volumes only. */
static int check_usable(struct luks2_vol *v, unsigned flags, char *err,
			size_t errlen)
{
	crypt_reencrypt_info ri = crypt_reencrypt_status(v->cd, NULL);
	uint32_t req = 0;
	uint32_t reenc = CRYPT_REQUIREMENT_OFFLINE_REENCRYPT |
			 CRYPT_REQUIREMENT_ONLINE_REENCRYPT;

	if (ri == CRYPT_REENCRYPT_INVALID) {
		luks2_say(err, errlen,
			  "the reencryption metadata of %s is invalid",
			  v->path);
		return -EINVAL;
	}
	if (crypt_persistent_flags_get(v->cd, CRYPT_FLAGS_REQUIREMENTS, &req) <
	    0) {
		luks2_say(err, errlen, "cannot read the requirements of %s",
			  v->path);
		return -EIO;
	}
	if (req & ~reenc) {
		luks2_say(err, errlen,
			  "%s needs LUKS2 features this libcryptsetup does not "
			  "have (requirements 0x%x)",
			  v->path, (unsigned)req);
		return -EINVAL;
	}
	if (ri == CRYPT_REENCRYPT_NONE && !req)
		return 0;
	if (flags & LUKS2_OPEN_REENCRYPTING)
		return 0;
	if (ri == CRYPT_REENCRYPT_CRASH)
		luks2_say(
			err, errlen,
			"%s: a reencryption was interrupted in the middle of "
			"a block; `cmkfs reencrypt --resume %s` recovers that "
			"block and finishes it",
			v->path, v->path);
	else
		luks2_say(err, errlen,
			  "%s is being reencrypted; finish it with `cmkfs "
			  "reencrypt --resume %s`",
			  v->path, v->path);
	return -EBUSY;
}

static int luks2_load(const char *path, struct luks2_vol **out, bool check,
		      unsigned flags, char *err, size_t errlen)
{
	struct luks2_vol *v;
	int r;

	*out = NULL;
	if (!path)
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->copy_fd = -1;
	v->path = strdup(path);
	if (!v->path) {
		r = -ENOMEM;
		goto out;
	}
	r = device_size(path, &v->device_size, NULL);
	if (r) {
		open_error(path, r, err, errlen);
		goto out;
	}
	r = load(v, err, errlen);
	if (r)
		goto out;
	if (check)
		r = check_usable(v, flags, err, errlen);
	if (!r && check && !(flags & LUKS2_OPEN_INSPECT))
		r = luks2_allowed(v, flags, err, errlen);
out:
	if (r) {
		luks2_close(v);
		return r;
	}
	*out = v;
	return 0;
}

int luks2_borrow(struct crypt_device *cd, unsigned flags,
		 struct luks2_vol **out, char *err, size_t errlen)
{
	/* The metadata device has a name of its own only when the header is
	 * detached (--header); otherwise it is the device. */
	const char *path = crypt_get_metadata_device_name(cd)
				   ? crypt_get_metadata_device_name(cd)
				   : crypt_get_device_name(cd);
	struct luks2_vol *v;
	int r;

	__atomic_store_n(&lib_guest, true, __ATOMIC_RELAXED);
	luks2_clear_err(err, errlen);
	*out = NULL;
	if (!path ||
	    strcmp(crypt_get_type(cd) ? crypt_get_type(cd) : "", CRYPT_LUKS2)) {
		luks2_say(err, errlen, "not a LUKS2 volume");
		return -EINVAL;
	}
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->cd = cd;
	v->borrowed = true;
	v->copy_fd = -1;
	v->path = strdup(path);
	r = v->path ? device_size(path, &v->device_size, NULL) : -ENOMEM;
	if (r)
		open_error(path, r, err, errlen);
	if (!r)
		r = check_usable(v, flags, err, errlen);
	if (!r)
		r = luks2_allowed(v, flags, err, errlen);
	if (r) {
		luks2_close(v);
		return r;
	}
	*out = v;
	return 0;
}

int luks2_open(const char *path, struct luks2_vol **out, char *err,
	       size_t errlen)
{
	return luks2_open_flags(path, 0, out, err, errlen);
}

int luks2_open_flags(const char *path, unsigned flags, struct luks2_vol **out,
		     char *err, size_t errlen)
{
	luks2_clear_err(err, errlen);
	return luks2_load(path, out, true, flags, err, errlen);
}

int luks2_allowed(struct luks2_vol *v, unsigned flags, char *err, size_t errlen)
{
	unsigned allow =
		(flags & LUKS2_OPEN_INSECURE ? HDR_ALLOW_INSECURE : 0) |
		(flags & LUKS2_OPEN_REENCRYPTING ? HDR_ALLOW_REENCRYPTING : 0);
	const char *json;
	char why[256];
	int r;

	if (crypt_dump_json(v->cd, &json, 0) < 0) {
		luks2_say(err, errlen, "cannot read the metadata of %s",
			  v->path);
		return -EIO;
	}
	r = hdr_json_allowed(json, strlen(json),
			     flags & LUKS2_OPEN_HEADER_FILE ? UINT64_MAX
							    : v->device_size,
			     allow, why, sizeof(why));
	if (r == -EINVAL)
		luks2_say(err, errlen,
			  "%s: refused: its LUKS2 header is not one cmkfs "
			  "accepts: %s",
			  v->path, why);
	else if (r)
		luks2_say(err, errlen, "%s: cannot check its LUKS2 header",
			  v->path);
	return r;
}

/*
 * Before any change: a handle loaded from an in-memory copy is swapped for
 * one on the device.  That load lets libcryptsetup rewrite the damaged
 * header copy from the good one, which the change is about to write anyway.
 */
int luks2_make_writable(struct luks2_vol *v, char *err, size_t errlen)
{
	struct crypt_device *cd = NULL;
	const char *old_uuid = crypt_get_uuid(v->cd);
	const char *new_uuid, *old_json, *new_json;
	int r;

	if (v->copy_fd < 0)
		return 0;
	luks2_lib_begin();
	r = crypt_init(&cd, v->path);
	if (r < 0)
		return luks2_fail(err, errlen, r, "cannot open %s", v->path);
	luks2_lib_begin();
	r = crypt_load(cd, CRYPT_LUKS2, NULL);
	if (r < 0) {
		luks2_fail(err, errlen, r,
			   "cannot repair the damaged LUKS2 header of %s",
			   v->path);
		goto out;
	}
	new_uuid = crypt_get_uuid(cd);
	/* What was checked (the allow-list, the binding) is what is changed:
	 * the metadata on the device must be the very one loaded from the
	 * copy.  A header rewritten meanwhile is refused, not trusted. */
	if (!old_uuid || !new_uuid || strcmp(old_uuid, new_uuid) != 0 ||
	    crypt_dump_json(v->cd, &old_json, 0) < 0 ||
	    crypt_dump_json(cd, &new_json, 0) < 0 ||
	    strcmp(old_json, new_json) != 0) {
		luks2_say(err, errlen,
			  "the header of %s changed since it was opened",
			  v->path);
		r = -ESTALE;
		goto out;
	}
	crypt_free(v->cd);
	v->cd = cd;
	cd = NULL;
	close(v->copy_fd);
	v->copy_fd = -1;
out:
	crypt_free(cd);
	return r;
}

/* ---- information -------------------------------------------------------- */

/* Size of the data segment: a number, or "dynamic" (to the device's end).
 * Only the JSON metadata says which. */
static int segment_size(struct luks2_vol *v, uint64_t offset, uint64_t *size)
{
	json_object *root = NULL, *segs, *seg = NULL, *jsize;
	const char *json, *s;
	long best = -1;
	int r;

	r = crypt_dump_json(v->cd, &json, 0);
	if (r < 0)
		return r;
	root = json_tokener_parse(json);
	if (!root || !json_object_object_get_ex(root, "segments", &segs)) {
		r = -EINVAL;
		goto out;
	}
	/* The data segment is the lowest-numbered one (there is one unless
	 * a reencryption is under way, which luks2_open refuses). */
	json_object_object_foreach(segs, key, val)
	{
		long id = strtol(key, NULL, 10);

		if (best < 0 || id < best) {
			best = id;
			seg = val;
		}
	}
	if (!seg || !json_object_object_get_ex(seg, "size", &jsize)) {
		r = -EINVAL;
		goto out;
	}
	s = json_object_get_string(jsize);
	if (s && !strcmp(s, "dynamic"))
		*size = v->device_size > offset ? v->device_size - offset : 0;
	else if (s && *s >= '0' && *s <= '9')
		*size = strtoull(s, NULL, 10);
	else
		r = -EINVAL;
out:
	json_object_put(root);
	return r;
}

static bool keyslot_in_use(crypt_keyslot_info ki)
{
	/* Unbound keyslots hold some other key, not the data's. */
	return ki == CRYPT_SLOT_ACTIVE || ki == CRYPT_SLOT_ACTIVE_LAST;
}

int luks2_info(struct luks2_vol *v, struct luks2_info *out)
{
	const char *s, *mode;
	int n, r;

	memset(out, 0, sizeof(*out));
	luks2_lib_begin();
	s = crypt_get_uuid(v->cd);
	snprintf(out->uuid, sizeof(out->uuid), "%s", s ? s : "");
	s = crypt_get_label(v->cd);
	snprintf(out->label, sizeof(out->label), "%s", s ? s : "");
	s = crypt_get_cipher(v->cd);
	mode = crypt_get_cipher_mode(v->cd);
	if (!s || !mode)
		return -EIO;
	snprintf(out->cipher, sizeof(out->cipher), "%s-%s", s, mode);
	n = crypt_get_sector_size(v->cd);
	out->sector_size = n > 0 ? (unsigned)n : SECTOR;
	n = crypt_get_volume_key_size(v->cd);
	out->key_bytes = n > 0 ? (unsigned)n : 0;
	out->data_offset = crypt_get_data_offset(v->cd) * SECTOR;
	out->device_size = v->device_size;
	r = segment_size(v, out->data_offset, &out->data_size);
	if (r)
		return r;
	/* A file that does not end on a sector boundary (a dynamic segment
	 * runs to its end): its last partial sector cannot be encrypted
	 * whole, so it is not part of the data. */
	out->data_tail = out->data_size % out->sector_size;
	out->data_size -= out->data_tail;

	switch (crypt_reencrypt_status(v->cd, NULL)) {
	case CRYPT_REENCRYPT_NONE:
		out->reencrypt = LUKS2_REENCRYPT_NONE;
		break;
	case CRYPT_REENCRYPT_CLEAN:
		out->reencrypt = LUKS2_REENCRYPT_CLEAN;
		break;
	default:
		out->reencrypt = LUKS2_REENCRYPT_CRASHED;
		break;
	}
	if (out->reencrypt != LUKS2_REENCRYPT_NONE) {
		/* The first segment is only the part done: the data is all
		 * of them. */
		uint64_t done;

		r = luks2_reencrypt_progress(v, &done, &out->data_size);
		if (r)
			return r;
		out->data_tail =
			v->device_size - out->data_offset - out->data_size;
	}
	n = crypt_keyslot_max(CRYPT_LUKS2);
	for (int i = 0; i < n; i++) {
		crypt_keyslot_info ki = crypt_keyslot_status(v->cd, i);

		if (keyslot_in_use(ki) && out->n_keyslots < 32)
			out->keyslots[out->n_keyslots++] = i;
		/* During a reencryption its own keyslot looks unbound too:
		 * count only the others, which exist only before. */
		else if (ki == CRYPT_SLOT_UNBOUND &&
			 out->reencrypt == LUKS2_REENCRYPT_NONE &&
			 out->n_unbound < 32)
			out->unbound_keyslots[out->n_unbound++] = i;
	}
	out->blank_token = luks2_blank_token(v);
	n = crypt_token_max(CRYPT_LUKS2);
	for (int i = 0; i < n && out->n_tokens < 32; i++) {
		crypt_token_info ti = crypt_token_status(v->cd, i, NULL);

		if (ti != CRYPT_TOKEN_INVALID && ti != CRYPT_TOKEN_INACTIVE)
			out->tokens[out->n_tokens++] = i;
	}
	return 0;
}

/* ---- tokens ------------------------------------------------------------- */

static bool token_exists(struct luks2_vol *v, int id)
{
	crypt_token_info ti;

	if (id < 0 || id >= MAX_TOKENS)
		return false;
	ti = crypt_token_status(v->cd, id, NULL);
	return ti != CRYPT_TOKEN_INVALID && ti != CRYPT_TOKEN_INACTIVE;
}

int luks2_token_json(struct luks2_vol *v, int id, const char **json)
{
	const char *s;
	int r;

	*json = NULL;
	if (!token_exists(v, id))
		return -ENOENT;
	if (!v->token_json[id]) {
		/* libcryptsetup's string lives only until its next call:
		 * keep our own copy for the promised lifetime. */
		luks2_lib_begin();
		r = crypt_token_json_get(v->cd, id, &s);
		if (r < 0)
			return r;
		v->token_json[id] = strdup(s);
		if (!v->token_json[id])
			return -ENOMEM;
	}
	*json = v->token_json[id];
	return 0;
}

/*
 * Check that json is an object with a non-empty string "type" and an empty
 * "keyslots" array, and return it (serialised) with "keyslots": ["keyslot"]
 * in *out (free it).
 */
static int token_with_keyslot(const char *json, int keyslot, char **out,
			      char *err, size_t errlen)
{
	json_object *tok = NULL, *type, *slots, *arr;
	char num[16];
	const char *s;
	int r = -EINVAL;

	*out = NULL;
	tok = json ? json_tokener_parse(json) : NULL;
	if (!tok || !json_object_is_type(tok, json_type_object)) {
		luks2_say(err, errlen, "the token is not a JSON object");
		goto out;
	}
	if (!json_object_object_get_ex(tok, "type", &type) ||
	    !json_object_is_type(type, json_type_string) ||
	    !json_object_get_string_len(type)) {
		luks2_say(err, errlen, "the token has no \"type\" string");
		goto out;
	}
	if (!json_object_object_get_ex(tok, "keyslots", &slots) ||
	    !json_object_is_type(slots, json_type_array) ||
	    json_object_array_length(slots) != 0) {
		luks2_say(err, errlen,
			  "the token must have an empty \"keyslots\" array");
		goto out;
	}
	arr = json_object_new_array();
	snprintf(num, sizeof(num), "%d", keyslot);
	if (!arr || json_object_array_add(arr, json_object_new_string(num)) ||
	    json_object_object_add(tok, "keyslots", arr)) {
		json_object_put(arr);
		r = -ENOMEM;
		goto out;
	}
	s = json_object_to_json_string_ext(tok, JSON_C_TO_STRING_PLAIN);
	*out = s ? strdup(s) : NULL;
	r = *out ? 0 : -ENOMEM;
out:
	json_object_put(tok);
	return r;
}

static int token_store(struct crypt_device *cd, const char *path,
		       const char *json, int keyslot, int *id, char *err,
		       size_t errlen)
{
	char *full;
	int r;

	r = token_with_keyslot(json, keyslot, &full, err, errlen);
	if (r)
		return r;
	luks2_lib_begin();
	r = crypt_token_json_set(cd, CRYPT_ANY_TOKEN, full);
	free(full);
	if (r < 0)
		return luks2_fail(err, errlen, r, "cannot add the token to %s",
				  path);
	if (id)
		*id = r;
	return 0;
}

/* Keyslot exists and is in use (and, when bound, opens the data's volume
 * key): 0, or the error with err said. */
int luks2_check_keyslot(struct luks2_vol *v, int keyslot, bool bound, char *err,
			size_t errlen)
{
	crypt_keyslot_info ki = crypt_keyslot_status(v->cd, keyslot);

	if (ki == CRYPT_SLOT_INVALID) {
		luks2_say(err, errlen, "%s: there is no keyslot %d", v->path,
			  keyslot);
		return -EINVAL;
	}
	if (ki == CRYPT_SLOT_INACTIVE) {
		luks2_say(err, errlen, "%s: keyslot %d is not in use", v->path,
			  keyslot);
		return -ENOENT;
	}
	if (bound && ki == CRYPT_SLOT_UNBOUND) {
		luks2_say(err, errlen,
			  "%s: keyslot %d does not hold the data's volume key",
			  v->path, keyslot);
		return -EINVAL;
	}
	return 0;
}

/* Before a header change about keyslot: it must be there (bound: opening
 * the data's key), the header writable, cached token JSON dropped. */
static int begin_keyslot_change(struct luks2_vol *v, int keyslot, bool bound,
				char *err, size_t errlen)
{
	int r;

	luks2_clear_err(err, errlen);
	r = luks2_check_keyslot(v, keyslot, bound, err, errlen);
	if (!r)
		r = luks2_make_writable(v, err, errlen);
	if (!r)
		luks2_tokens_forget(v);
	return r;
}

int luks2_token_add(struct luks2_vol *v, const char *token_json, int keyslot,
		    int *id, char *err, size_t errlen)
{
	int r;

	r = begin_keyslot_change(v, keyslot, true, err, errlen);
	if (r)
		return r;
	return token_store(v->cd, v->path, token_json, keyslot, id, err,
			   errlen);
}

int luks2_token_assign(struct luks2_vol *v, int id, int keyslot, char *err,
		       size_t errlen)
{
	int r;

	if (!token_exists(v, id)) {
		luks2_clear_err(err, errlen);
		luks2_say(err, errlen, "%s: there is no token %d", v->path, id);
		return -ENOENT;
	}
	r = begin_keyslot_change(v, keyslot, false, err, errlen);
	if (r)
		return r;
	luks2_lib_begin();
	r = crypt_token_assign_keyslot(v->cd, id, keyslot);
	if (r < 0)
		return luks2_fail(err, errlen, r,
				  "cannot assign keyslot %d to token %d of %s",
				  keyslot, id, v->path);
	return 0;
}

int luks2_token_remove(struct luks2_vol *v, int id, char *err, size_t errlen)
{
	int r;

	luks2_clear_err(err, errlen);
	if (!token_exists(v, id)) {
		luks2_say(err, errlen, "%s: there is no token %d", v->path, id);
		return -ENOENT;
	}
	r = luks2_make_writable(v, err, errlen);
	if (r)
		return r;
	luks2_tokens_forget(v);
	luks2_lib_begin();
	r = crypt_token_json_set(v->cd, id, NULL);
	if (r < 0)
		return luks2_fail(err, errlen, r,
				  "cannot remove token %d of %s", id, v->path);
	return 0;
}

/* ---- the blank mark ------------------------------------------------------ */

int luks2_blank_token(struct luks2_vol *v)
{
	int n = crypt_token_max(CRYPT_LUKS2);

	luks2_lib_begin();
	for (int i = 0; i < n; i++) {
		const char *type = NULL;
		crypt_token_info ti = crypt_token_status(v->cd, i, &type);

		if (ti != CRYPT_TOKEN_INACTIVE && ti != CRYPT_TOKEN_INVALID &&
		    type && !strcmp(type, "cmkfs-blank"))
			return i;
	}
	return -ENOENT;
}

bool luks2_is_blank(struct luks2_vol *v)
{
	return luks2_blank_token(v) >= 0;
}

int luks2_blank_mark(struct luks2_vol *v, char *err, size_t errlen)
{
	int r;

	luks2_clear_err(err, errlen);
	if (luks2_is_blank(v))
		return 0;
	r = luks2_make_writable(v, err, errlen);
	if (r)
		return r;
	luks2_tokens_forget(v);
	luks2_lib_begin();
	r = crypt_token_json_set(v->cd, CRYPT_ANY_TOKEN, LUKS2_BLANK_TOKEN);
	if (r < 0)
		return luks2_fail(err, errlen, r,
				  "cannot mark %s as never written", v->path);
	return 0;
}

int luks2_blank_clear(struct luks2_vol *v, char *err, size_t errlen)
{
	int id, r = 0;

	luks2_clear_err(err, errlen);
	/* Every one: a header may have been given more than one. */
	while (!r && (id = luks2_blank_token(v)) >= 0)
		r = luks2_token_remove(v, id, err, errlen);
	return r;
}

/* ---- keyslots ----------------------------------------------------------- */

int luks2_set_kdf(struct crypt_device *cd, const char *path, char *err,
		  size_t errlen)
{
	const struct crypt_pbkdf_type kdf = {
		.type = CRYPT_KDF_PBKDF2,
		.hash = "sha256",
		.iterations = KDF_ITERATIONS,
		.flags = CRYPT_PBKDF_NO_BENCHMARK,
	};
	int r;

	luks2_lib_begin();
	r = crypt_set_pbkdf_type(cd, &kdf);
	if (r < 0)
		return luks2_fail(err, errlen, r,
				  "%s: cannot set the keyslot KDF", path);
	return 0;
}

int luks2_begin_keyslot_add(struct luks2_vol *v, char *err, size_t errlen)
{
	int r = luks2_make_writable(v, err, errlen);

	if (!r)
		r = luks2_set_kdf(v->cd, v->path, err, errlen);
	if (!r)
		luks2_tokens_forget(v);
	return r;
}

int luks2_key_get(struct luks2_vol *v, int keyslot, const uint8_t *secret,
		  size_t secret_len, struct crypto_key **vk, char *err,
		  size_t errlen)
{
	uint8_t *key;
	size_t n = LUKS2_KEY_MAX;
	int r;

	*vk = NULL;
	key = secmem_alloc(LUKS2_KEY_MAX);
	if (!key)
		return -ENOMEM;
	luks2_lib_begin();
	r = crypt_volume_key_get(v->cd, keyslot, (char *)key, &n,
				 (const char *)secret, secret_len);
	secmem_wipe_stack();
	if (r == -EPERM) {
		luks2_say(err, errlen,
			  "the secret does not open keyslot %d of %s", keyslot,
			  v->path);
		goto out;
	}
	if (r < 0) {
		luks2_fail(err, errlen, r, "cannot open keyslot %d of %s",
			   keyslot, v->path);
		goto out;
	}
	r = crypto_key_from(key, n, vk);
out:
	secmem_free(key);
	return r;
}

int luks2_unlock(struct luks2_vol *v, int keyslot, const uint8_t *secret,
		 size_t secret_len, struct crypto_key **vk, char *err,
		 size_t errlen)
{
	int r;

	luks2_clear_err(err, errlen);
	*vk = NULL;
	if (!secret || !secret_len) {
		luks2_say(err, errlen, "no keyslot secret");
		return -EINVAL;
	}
	r = luks2_check_keyslot(v, keyslot, true, err, errlen);
	if (r)
		return r;
	return luks2_key_get(v, keyslot, secret, secret_len, vk, err, errlen);
}

int luks2_keyslot_add(struct luks2_vol *v, const struct crypto_key *vk,
		      const uint8_t *secret, size_t secret_len, int *keyslot,
		      char *err, size_t errlen)
{
	int r;

	luks2_clear_err(err, errlen);
	if (!vk || crypto_key_len(vk) > LUKS2_KEY_MAX || !secret ||
	    !secret_len) {
		luks2_say(err, errlen,
			  "a keyslot needs a volume key and a secret");
		return -EINVAL;
	}
	r = luks2_begin_keyslot_add(v, err, errlen);
	if (r)
		return r;
	luks2_lib_begin();
	r = crypt_keyslot_add_by_volume_key(
		v->cd, CRYPT_ANY_SLOT, (const char *)crypto_key_bytes(vk),
		crypto_key_len(vk), (const char *)secret, secret_len);
	secmem_wipe_stack();
	if (r == -EPERM) {
		luks2_say(err, errlen, "the volume key is not the key of %s",
			  v->path);
		return r;
	}
	if (r < 0)
		return luks2_fail(err, errlen, r, "cannot add a keyslot to %s",
				  v->path);
	if (keyslot)
		*keyslot = r;
	return 0;
}

int luks2_keyslot_add_new_key(struct luks2_vol *v, const uint8_t *secret,
			      size_t secret_len, int *keyslot, char *err,
			      size_t errlen)
{
	int r, key_size;

	luks2_clear_err(err, errlen);
	if (!secret || !secret_len) {
		luks2_say(err, errlen, "a keyslot needs a secret");
		return -EINVAL;
	}
	r = luks2_begin_keyslot_add(v, err, errlen);
	if (r)
		return r;
	key_size = crypt_get_volume_key_size(v->cd);
	if (key_size <= 0 || key_size > LUKS2_KEY_MAX) {
		luks2_say(err, errlen, "%s: unexpected volume key size %d",
			  v->path, key_size);
		return -EINVAL;
	}
	/* No key given: libcryptsetup generates it from its RNG and stores
	 * it only in the keyslot, so it never passes through our memory. */
	luks2_lib_begin();
	r = crypt_keyslot_add_by_key(v->cd, CRYPT_ANY_SLOT, NULL,
				     (size_t)key_size, (const char *)secret,
				     secret_len, CRYPT_VOLUME_KEY_NO_SEGMENT);
	secmem_wipe_stack();
	if (r < 0)
		return luks2_fail(err, errlen, r,
				  "cannot add a keyslot for a new key to %s",
				  v->path);
	if (keyslot)
		*keyslot = r;
	return 0;
}

int luks2_keyslot_destroy(struct luks2_vol *v, int keyslot, char *err,
			  size_t errlen)
{
	int r;

	/* Tokens lose their reference to the keyslot. */
	r = begin_keyslot_change(v, keyslot, false, err, errlen);
	if (r)
		return r;
	luks2_lib_begin();
	r = crypt_keyslot_destroy(v->cd, keyslot);
	if (r < 0)
		return luks2_fail(err, errlen, r,
				  "cannot destroy keyslot %d of %s", keyslot,
				  v->path);
	return 0;
}

/* ---- format ------------------------------------------------------------- */

static bool valid_uuid(const char *s)
{
	static const char hex[] = "0123456789abcdef";

	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!s[i] || !strchr(hex, s[i])) {
			return false;
		}
	}
	return true;
}

static int check_format_params(const struct luks2_format_params *p,
			       unsigned sector, const uint8_t *secret,
			       size_t secret_len, char *err, size_t errlen)
{
	if (!p->cipher || (strcmp(p->cipher, "aes-xts-plain64") != 0 &&
			   strcmp(p->cipher, "cipher_null") != 0)) {
		luks2_say(
			err, errlen,
			"unsupported cipher %s (cmkfs formats aes-xts-plain64, "
			"and cipher_null for benchmarks)",
			p->cipher ? p->cipher : "(none)");
		return -EINVAL;
	}
	if (sector < SC_MIN_SECTOR || sector > SC_MAX_SECTOR ||
	    (sector & (sector - 1))) {
		luks2_say(
			err, errlen,
			"invalid sector size %u (a power of two from 512 to 4096)",
			sector);
		return -EINVAL;
	}
	/* libcryptsetup would store a normalised (lower-case) UUID; the
	 * caller binds the secret to the exact string, so refuse anything
	 * that would not round-trip. */
	if (!p->uuid || !valid_uuid(p->uuid)) {
		luks2_say(err, errlen,
			  "invalid UUID %s (want lower-case "
			  "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
			  p->uuid ? p->uuid : "(none)");
		return -EINVAL;
	}
	if (p->label && strlen(p->label) > LABEL_MAX) {
		luks2_say(err, errlen, "the label is longer than %d bytes",
			  LABEL_MAX);
		return -EINVAL;
	}
	if (!secret || !secret_len) {
		luks2_say(err, errlen, "no keyslot secret");
		return -EINVAL;
	}
	return 0;
}

/* Whether path now carries a LUKS2 header copy with our UUID: the sign
 * that a failed crypt_format() wrote something. */
static bool our_header_present(const char *path, const char *uuid)
{
	struct hdr_copy c;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool found = false;

	if (fd < 0)
		return false;
	for (uint64_t off = 0; off <= HDR_MAX_SIZE && !found;
	     off = off ? off << 1 : HDR_MIN_SIZE)
		found = read_hdr_copy(fd, off, off == 0, &c) == 0 && c.magic &&
			!strncmp(c.uuid, uuid, sizeof(c.uuid));
	close(fd);
	return found;
}

/* Zero [0, len) of path: both header copies and the keyslots area. */
static int wipe_header_area(struct crypt_device *cd, const char *path,
			    uint64_t len, bool is_file)
{
	int r;

	luks2_lib_begin();
	r = crypt_wipe(cd, path, CRYPT_WIPE_ZERO, 0, len, 0,
		       is_file ? CRYPT_WIPE_NO_DIRECT_IO : 0, NULL, NULL);
	return r < 0 ? r : 0;
}

/* ---- cipher_null benchmark volumes -------------------------------------- */

/*
 * ###########################################################################
 * #  BENCHMARK ONLY.  A volume made here is NOT ENCRYPTED: its data segment #
 * #  uses cipher_null, every byte is stored in the clear.                   #
 * ###########################################################################
 *
 * The one place cmkfs writes LUKS2 metadata itself.  libcryptsetup formats a
 * cipher_null volume only after checking the cipher through the kernel
 * (AF_ALG, or device-mapper), and hosts without either cannot make one at
 * all, although cmkfs serves such volumes in userspace without the kernel.
 * So luks2_format() makes an ordinary aes-xts-plain64 volume there (keyslot,
 * digest and token exactly as for any volume) and this rewrites its data
 * segment's "encryption" to "cipher_null-ecb", what libcryptsetup itself
 * writes for cipher_null.  Nothing else changes.  The volume is brand new:
 * its data area holds nothing that the change could turn into garbage.
 *
 * The LUKS2 on-disk format: two copies, each a 4096-byte binary header and a
 * NUL-padded JSON area, hdr_size bytes in all, the secondary at offset
 * hdr_size.  Both copies get the same JSON and a sequence id one higher;
 * each checksum is SHA-256 over its hdr_size bytes with the checksum field
 * zeroed.  The secondary is written (and synced) first, the primary last.
 * Only a header exactly as libcryptsetup just wrote it is touched: both
 * copies intact, in step, with identical JSON and one aes-xts-plain64 crypt
 * segment.  The caller then has libcryptsetup load the result.
 */
#define NULL_SEGMENT_CIPHER "cipher_null-ecb"

/* The whole header copy (binary header and JSON area) at off, to free;
 * NULL with *r set on failure. */
static uint8_t *read_area(int fd, uint64_t off, uint64_t len, int *r)
{
	uint8_t *buf = malloc(len);
	ssize_t n;

	if (!buf) {
		*r = -ENOMEM;
		return NULL;
	}
	n = pread(fd, buf, len, (off_t)off);
	if (n < 0 || (uint64_t)n != len) {
		*r = n < 0 && errno ? -errno : -EIO;
		free(buf);
		return NULL;
	}
	*r = 0;
	return buf;
}

/* The JSON of a fresh header copy (area, size bytes) with its one data
 * segment made cipher_null: *out, to free. */
static int null_segment_json(const uint8_t *area, uint64_t size, char **out)
{
	const char *text = (const char *)area + HDR_BIN_LEN;
	size_t room = (size_t)size - HDR_BIN_LEN;
	struct json_object *root, *segs, *seg, *o;
	const char *s;
	int r = -EINVAL;

	*out = NULL;
	if (!memchr(text, 0, room))
		return -EINVAL;
	root = json_tokener_parse(text);
	if (!root || !json_object_object_get_ex(root, "segments", &segs) ||
	    !json_object_is_type(segs, json_type_object) ||
	    json_object_object_length(segs) != 1 ||
	    !json_object_object_get_ex(segs, "0", &seg) ||
	    !json_object_object_get_ex(seg, "type", &o) ||
	    strcmp(json_object_get_string(o), "crypt") != 0 ||
	    !json_object_object_get_ex(seg, "encryption", &o) ||
	    strcmp(json_object_get_string(o), "aes-xts-plain64") != 0)
		goto out;
	o = json_object_new_string(NULL_SEGMENT_CIPHER);
	if (!o || json_object_object_add(seg, "encryption", o)) {
		json_object_put(o);
		r = -ENOMEM;
		goto out;
	}
	/* As libcryptsetup serialises its metadata. */
	s = json_object_to_json_string_ext(
		root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s || strlen(s) >= room) {
		r = s ? -ENOSPC : -ENOMEM;
		goto out;
	}
	*out = strdup(s);
	r = *out ? 0 : -ENOMEM;
out:
	json_object_put(root);
	return r;
}

/* Rewrite the data segment of the volume just formatted at path to
 * cipher_null (see above). */
static int benchmark_null_segment(const char *path, char *err, size_t errlen)
{
	struct hdr_copy pri, sec;
	struct hdr_scan hs;
	uint8_t *copy[2] = { NULL, NULL }; /* secondary, primary */
	uint8_t sum[CRYPTO_SHA256_LEN];
	uint64_t off[2], size;
	char *json = NULL;
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return luks2_fail(err, errlen, -errno, "cannot open %s", path);
	r = read_hdr_copy(fd, 0, true, &pri);
	if (!r && pri.good)
		r = read_hdr_copy(fd, pri.size, false, &sec);
	if (r)
		goto io_error;
	if (!pri.good || !sec.good || pri.size != sec.size ||
	    pri.seqid != sec.seqid) {
		luks2_say(err, errlen,
			  "cannot make %s cipher_null: its new LUKS2 header "
			  "copies are damaged or out of step",
			  path);
		r = -EIO;
		goto out;
	}
	size = pri.size;
	off[0] = size;
	off[1] = 0;
	copy[0] = read_area(fd, off[0], size, &r);
	if (copy[0])
		copy[1] = read_area(fd, off[1], size, &r);
	if (!copy[0] || !copy[1])
		goto io_error;
	if (memcmp(copy[0] + HDR_BIN_LEN, copy[1] + HDR_BIN_LEN,
		   size - HDR_BIN_LEN) != 0) {
		luks2_say(err, errlen,
			  "cannot make %s cipher_null: its new LUKS2 header "
			  "copies hold different metadata",
			  path);
		r = -EIO;
		goto out;
	}
	r = null_segment_json(copy[1], size, &json);
	if (r) {
		luks2_say(err, errlen,
			  "cannot make %s cipher_null: its new LUKS2 metadata "
			  "is not as expected (%s)",
			  path, strerror(-r));
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		uint8_t *c = copy[i];

		/* The JSON and its NUL (null_segment_json checked the room),
		 * then NUL padding. */
		memset(c + HDR_BIN_LEN, 0, size - HDR_BIN_LEN);
		memcpy(c + HDR_BIN_LEN, json, strlen(json) + 1);
		hdr_put_be64(c + HDR_OFF_SEQID, pri.seqid + 1);
		memset(c + HDR_OFF_CSUM, 0, HDR_CSUM_LEN);
		r = crypto_sha256(c, size, sum);
		if (r) {
			luks2_fail(err, errlen, r, "cannot checksum %s", path);
			goto out;
		}
		memcpy(c + HDR_OFF_CSUM, sum, sizeof(sum));
		n = pwrite(fd, c, size, (off_t)off[i]);
		if (n < 0 || fsync(fd) < 0)
			r = -errno;
		else if ((uint64_t)n != size)
			r = -EIO;
		if (r)
			goto io_error;
	}
	/* Both copies must now be clean, so that loading never repairs. */
	r = header_state(fd, &hs);
	if (r)
		goto io_error;
	if (hs.state != HDR_CLEAN) {
		luks2_say(err, errlen,
			  "cannot make %s cipher_null: the rewritten header "
			  "does not check out",
			  path);
		r = -EIO;
	}
	goto out;
io_error:
	luks2_fail(err, errlen, r, "cannot make %s cipher_null", path);
out:
	free(json);
	free(copy[0]);
	free(copy[1]);
	close(fd);
	return r;
}

/* libcryptsetup loads what benchmark_null_segment() wrote and sees
 * cipher_null in it. */
static int check_null_volume(const char *path, char *err, size_t errlen)
{
	struct crypt_device *cd = NULL;
	const char *cipher, *mode;
	int r;

	luks2_lib_begin();
	r = crypt_init(&cd, path);
	if (r < 0)
		return luks2_fail(err, errlen, r, "cannot open %s", path);
	luks2_lib_begin();
	r = crypt_load(cd, CRYPT_LUKS2, NULL);
	if (r < 0) {
		luks2_fail(err, errlen, r,
			   "libcryptsetup rejects the cipher_null header of %s",
			   path);
		goto out;
	}
	cipher = crypt_get_cipher(cd);
	mode = crypt_get_cipher_mode(cd);
	if (!cipher || !mode || strcmp(cipher, "cipher_null") != 0 ||
	    strcmp(mode, "ecb") != 0) {
		luks2_say(err, errlen,
			  "libcryptsetup reads %s-%s from the cipher_null "
			  "header of %s",
			  cipher ? cipher : "?", mode ? mode : "?", path);
		r = -EIO;
	}
out:
	crypt_free(cd);
	return r;
}

void luks2_format_info(const struct luks2_format_params *p,
		       struct luks2_info *out)
{
	bool is_null = !strcmp(p->cipher, "cipher_null");

	memset(out, 0, sizeof(*out));
	snprintf(out->uuid, sizeof(out->uuid), "%s", p->uuid ? p->uuid : "");
	snprintf(out->cipher, sizeof(out->cipher), "%s",
		 is_null ? "cipher_null-ecb" : "aes-xts-plain64");
	out->key_bytes = is_null ? 32 : 64;
	out->sector_size = p->sector_size ? p->sector_size : SC_MAX_SECTOR;
	out->data_offset = LUKS2_DATA_OFFSET;
}

int luks2_format(const char *path, const struct luks2_format_params *p,
		 const uint8_t *secret, size_t secret_len,
		 const char *token_json, char *err, size_t errlen)
{
	struct crypt_pbkdf_type kdf = {
		.type = CRYPT_KDF_PBKDF2,
		.hash = "sha256",
		.iterations = KDF_ITERATIONS,
		.flags = CRYPT_PBKDF_NO_BENCHMARK,
	};
	struct crypt_params_luks2 params = { .pbkdf = &kdf };
	struct crypt_device *cd = NULL;
	unsigned sector = p && p->sector_size ? p->sector_size : SC_MAX_SECTOR;
	bool is_null, rewrite_null = false, is_file = false, written = false;
	uint64_t size = 0, after = 0, area = LUKS2_DATA_OFFSET;
	char *token = NULL;
	int r, slot;

	luks2_clear_err(err, errlen);
	if (!path || !p)
		return -EINVAL;
	r = check_format_params(p, sector, secret, secret_len, err, errlen);
	if (r)
		return r;
	if (token_json) {
		/* Checked before anything is written; stored below. */
		r = token_with_keyslot(token_json, 0, &token, err, errlen);
		free(token);
		if (r)
			return r;
	}
	r = device_size(path, &size, &is_file);
	if (r)
		return open_error(path, r, err, errlen);
	if (size < LUKS2_DATA_OFFSET + sector) {
		luks2_say(
			err, errlen,
			"%s is too small (%llu bytes): a LUKS2 volume needs %u "
			"bytes of header and at least one %u-byte sector",
			path, (unsigned long long)size, LUKS2_DATA_OFFSET,
			sector);
		return -EINVAL;
	}
	if (size % sector) {
		luks2_say(
			err, errlen,
			"the size of %s (%llu bytes) is not a multiple of the "
			"sector size %u",
			path, (unsigned long long)size, sector);
		return -EINVAL;
	}

	is_null = !strcmp(p->cipher, "cipher_null");
	params.sector_size = sector;
	params.label = p->label;
	luks2_lib_begin();
	r = crypt_init(&cd, path);
	if (r < 0)
		return luks2_fail(err, errlen, r, "cannot open %s", path);
	luks2_lib_begin();
	/* cipher_null's key is never used; 32 bytes is what cryptsetup
	 * gives it, and a key is still needed for the keyslot's digest. */
	/* Fixed, not aligned to the device: the offset is part of what the
	 * keyslot secret is bound to before the header exists. */
	r = crypt_set_data_offset(cd, LUKS2_DATA_OFFSET / SECTOR);
	if (r < 0) {
		crypt_free(cd);
		return luks2_fail(err, errlen, r, "cannot format %s", path);
	}
	r = crypt_format(cd, CRYPT_LUKS2, is_null ? "cipher_null" : "aes",
			 is_null ? "ecb" : "xts-plain64", p->uuid, NULL,
			 is_null ? 32 : 64, &params);
	secmem_wipe_stack();
	if (is_null && (r == -EIO || r == -ENOTSUP) &&
	    !our_header_present(path, p->uuid)) {
		/* No AF_ALG or device-mapper to check cipher_null with: an
		 * AES-XTS volume with the same 32-byte key size (AES-128-XTS,
		 * a valid key for both), its segment rewritten below. */
		rewrite_null = true;
		crypt_free(cd);
		cd = NULL;
		luks2_lib_begin();
		r = crypt_init(&cd, path);
		if (r < 0)
			return luks2_fail(err, errlen, r, "cannot open %s",
					  path);
		luks2_lib_begin();
		r = crypt_set_data_offset(cd, LUKS2_DATA_OFFSET / SECTOR);
		if (r >= 0)
			r = crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64",
					 p->uuid, NULL, 32, &params);
		secmem_wipe_stack();
	}
	if (r < 0) {
		written = our_header_present(path, p->uuid);
		if (r == -EBUSY) {
			luks2_fail(err, errlen, r, "%s is in use", path);
		} else {
			luks2_fail(err, errlen, r, "cannot format %s", path);
		}
		goto out;
	}
	written = true;
	area = crypt_get_data_offset(cd) * SECTOR;

	r = luks2_set_kdf(cd, path, err, errlen);
	if (r)
		goto out;
	luks2_lib_begin();
	slot = crypt_keyslot_add_by_volume_key(
		cd, CRYPT_ANY_SLOT, NULL, 0, (const char *)secret, secret_len);
	secmem_wipe_stack();
	if (slot < 0) {
		r = luks2_fail(err, errlen, slot, "cannot add a keyslot to %s",
			       path);
		goto out;
	}
	if (token_json) {
		r = token_store(cd, path, token_json, slot, NULL, err, errlen);
		if (r)
			goto out;
	}
	/* libcryptsetup grows a file that is too small for what it chose;
	 * the caller sized it, so that is an error, not a feature. */
	r = device_size(path, &after, NULL);
	if (r) {
		luks2_fail(err, errlen, r, "cannot check %s", path);
		goto out;
	}
	if (area != LUKS2_DATA_OFFSET) {
		luks2_say(err, errlen,
			  "libcryptsetup put the data of %s at %llu, not %u",
			  path, (unsigned long long)area, LUKS2_DATA_OFFSET);
		r = -EIO;
		goto out;
	}
	if (after != size || area + sector > size) {
		luks2_say(
			err, errlen,
			"%s is too small for its LUKS2 header (data would start "
			"at %llu of %llu bytes)",
			path, (unsigned long long)area,
			(unsigned long long)size);
		r = -EINVAL;
		goto out;
	}
	if (rewrite_null) {
		r = benchmark_null_segment(path, err, errlen);
		if (!r)
			r = check_null_volume(path, err, errlen);
	}
out:
	if (r && written) {
		/* Leave nothing that looks like a volume, and the file as
		 * large as it was. */
		if (area > size)
			area = size - size % SECTOR;
		if (wipe_header_area(cd, path, area, is_file) < 0)
			append(err, errlen,
			       " (and wiping the new header failed: %s)",
			       lib_msg[0] ? lib_msg : "I/O error");
		if (is_file && device_size(path, &after, NULL) == 0 &&
		    after > size && truncate(path, (off_t)size) < 0)
			append(err, errlen, " (and truncating it failed: %s)",
			       strerror(errno));
	}
	crypt_free(cd);
	return r;
}

/* ---- header backup ------------------------------------------------------ */

int luks2_header_backup(const char *path, const char *file, char *err,
			size_t errlen)
{
	struct luks2_vol *v = NULL;
	struct stat st;
	int r;

	luks2_clear_err(err, errlen);
	if (!path || !file)
		return -EINVAL;
	if (lstat(file, &st) == 0) {
		luks2_say(err, errlen,
			  "%s already exists; a backup never replaces "
			  "a file",
			  file);
		return -EEXIST;
	}
	/* From a degraded header the backup is of the repaired copy in
	 * memory; the device is not written either way. */
	r = luks2_load(path, &v, false, 0, err, errlen);
	if (r)
		return r;
	luks2_lib_begin();
	r = crypt_header_backup(v->cd, CRYPT_LUKS2, file);
	if (r < 0)
		luks2_fail(err, errlen, r,
			   "cannot back up the header of %s to %s", path, file);
	luks2_close(v);
	return r < 0 ? r : 0;
}

int luks2_header_restore(const char *path, const char *file, char *err,
			 size_t errlen)
{
	struct crypt_device *cd = NULL;
	struct hdr_scan backup, target;
	int fd, r;

	luks2_clear_err(err, errlen);
	if (!path || !file)
		return -EINVAL;
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return open_error(file, -errno, err, errlen);
	r = header_state(fd, &backup);
	close(fd);
	if (r)
		return luks2_fail(err, errlen, r, "cannot read %s", file);
	if (!backup.good_uuid[0]) {
		luks2_say(err, errlen, "%s is not a LUKS2 header backup", file);
		return -EINVAL;
	}
	/* Restoring another volume's header would lock this one's data away
	 * for good.  Only over the same volume's header, damaged or not, or
	 * over what carries no LUKS header at all (it may carry whatever
	 * overwrote the header: that is what restoring repairs). */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return open_error(path, -errno, err, errlen);
	r = header_state(fd, &target);
	close(fd);
	if (r)
		return luks2_fail(err, errlen, r, "cannot read %s", path);
	if (target.any_uuid[0] &&
	    strcmp(target.any_uuid, backup.good_uuid) != 0) {
		luks2_say(
			err, errlen,
			"%s holds LUKS volume %s, but %s is the header of volume %s",
			path, target.any_uuid, file, backup.good_uuid);
		return -EINVAL;
	}
	luks2_lib_begin();
	r = crypt_init(&cd, path);
	if (r < 0)
		return luks2_fail(err, errlen, r, "cannot open %s", path);
	luks2_lib_begin();
	r = crypt_header_restore(cd, CRYPT_LUKS2, file);
	if (r < 0)
		luks2_fail(err, errlen, r,
			   "cannot restore the header of %s from %s", path,
			   file);
	crypt_free(cd);
	return r < 0 ? r : 0;
}

int luks2_header_restore_unblank(const char *path, const char *file, char *err,
				 size_t errlen)
{
	struct luks2_vol *v = NULL;
	char tmp[PATH_MAX];
	int r;

	luks2_clear_err(err, errlen);
	if (snprintf(tmp, sizeof(tmp), "%s.header-restore", path) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	luks2_header_file_destroy(tmp); /* what a crash here left */
	/* A copy of the backup, without the mark, is what is restored. */
	r = luks2_header_backup(file, tmp, err, errlen);
	if (!r)
		r = luks2_open_flags(tmp, LUKS2_OPEN_INSPECT, &v, err, errlen);
	if (!r)
		r = luks2_blank_clear(v, err, errlen);
	luks2_close(v);
	if (!r)
		r = luks2_header_restore(path, tmp, err, errlen);
	luks2_header_file_destroy(tmp);
	return r;
}
