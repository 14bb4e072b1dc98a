/* SPDX-License-Identifier: Apache-2.0 */
/*
 * files.c — the file operations header changes need to survive a crash:
 * fsync of a file and of the directory entry that names it, and the
 * destruction of header copies (they hold keyslots).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "internal.h"
#include "luks2.h"

int luks2_fsync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		r = -errno;
	close(fd);
	return r;
}

int luks2_fsync_parent(const char *path)
{
	char dir[4096];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		return luks2_fsync_path(".", O_RDONLY | O_DIRECTORY);
	*slash = 0;
	return luks2_fsync_path(slash == dir ? "/" : dir,
				O_RDONLY | O_DIRECTORY);
}

bool luks2_file_exists(const char *path)
{
	struct stat st;

	return path && !lstat(path, &st) && S_ISREG(st.st_mode);
}

/* Zero the whole regular file at path (it holds keyslots), then remove
 * it. */
static void zero_and_unlink(const char *path)
{
	static const char zeros[65536];
	struct stat st;
	int fd;

	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		if (!fstat(fd, &st) && S_ISREG(st.st_mode)) {
			off_t off = 0;

			while (off < st.st_size) {
				size_t n = (size_t)(st.st_size - off);
				ssize_t w;

				if (n > sizeof(zeros))
					n = sizeof(zeros);
				w = pwrite(fd, zeros, n, off);
				if (w <= 0)
					break;
				off += w;
			}
			fsync(fd);
		}
		close(fd);
	}
	if (!unlink(path))
		luks2_fsync_parent(path);
}

void luks2_header_file_destroy(const char *file)
{
	char dead[4096];

	if (!file || (size_t)snprintf(dead, sizeof(dead), "%s.dead", file) >=
			     sizeof(dead))
		return;
	/* Out of the way under another name first, in one step: a crash
	 * while it is being zeroed must not leave a zeroed file where a
	 * header is expected.  What a crash leaves under that name is
	 * zeroed by the next call. */
	if (!rename(file, dead))
		luks2_fsync_parent(file);
	zero_and_unlink(dead);
}
