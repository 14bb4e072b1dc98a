/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench.c — `cmkfs bench`: the benchmark suite (bench/bench.py) on the
 * user's own machine, from an installed cmkfs or from a build tree.
 *
 * The command parses nothing itself: it finds bench.py and the programs the
 * bench drives beside the running executable and execs python3 on it with
 * the user's arguments, so that `cmkfs bench --help` is bench.py's own help
 * under the name `cmkfs bench`.  It is not a wrapper that stays around: the
 * bench's signal handling and cleanup are bench.py's.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/*
 * Where the bench's files lie relative to the directory of the cmkfs
 * executable, tried in this order.  `make install` gives the first,
 * `make` the second (build/cmkfs beside the source tree's bench/).
 */
static const struct bench_layout {
	const char *what;
	const char *script;
	const char *kmsd;
	const char *crypto_speed;
	const char *fix; /* what to do when a file is missing */
} layouts[] = {
	{ "installed", "../lib/cmkfs/bench/bench.py", "cmkfs-kmsd",
	  "../lib/cmkfs/cmkfs-crypto-speed", "reinstall cmkfs (make install)" },
	{ "build tree", "../bench/bench.py", "cmkfs-kmsd", "cmkfs-crypto-speed",
	  "run make" },
};

#define N_LAYOUTS (sizeof(layouts) / sizeof(layouts[0]))

/* dir/rel into out (PATH_MAX bytes), each leading "../" of rel taking the
 * last component off dir: dir is the real path of the executable's
 * directory, so this is where the kernel would go, and reads better in
 * messages.  0 or -ENAMETOOLONG. */
static int join(char *out, const char *dir, const char *rel)
{
	size_t len = strlen(dir);
	int n;

	while (!strncmp(rel, "../", 3)) {
		while (len > 0 && dir[len - 1] != '/')
			len--;
		if (len > 0)
			len--; /* the slash */
		rel += 3;
	}
	n = snprintf(out, PATH_MAX, "%.*s/%s", (int)len, dir, rel);
	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* The resolved path of dir/rel into out (PATH_MAX bytes), and into path
 * the unresolved one for messages: 0, or -errno (-ENOENT when it does not
 * exist). */
static int resolve(char *out, char *path, const char *dir, const char *rel)
{
	int rc = join(path, dir, rel);

	if (rc)
		return rc;
	if (!realpath(path, out))
		return -errno;
	return 0;
}

/* A program the bench drives, rel in layout l: 0 and its path in out, or
 * the error printed and the exit code. */
static int find_program(char *out, const char *dir, const char *rel,
			const struct bench_layout *l)
{
	char path[PATH_MAX];
	int rc = resolve(out, path, dir, rel);

	if (rc == -ENOENT)
		return cli_error(0, "bench: %s is missing (%s layout): %s",
				 path, l->what, l->fix);
	if (rc)
		return cli_error(rc, "bench: %s", path);
	return 0;
}

static int cmd_bench(const struct cli_cmd *cmd, int argc, char **argv)
{
	static char opt_cmkfs[] = "--cmkfs", opt_kmsd[] = "--kmsd",
		    opt_speed[] = "--crypto-speed", python[] = "python3";
	char exe[PATH_MAX], dir[PATH_MAX], script[PATH_MAX], kmsd[PATH_MAX],
		speed[PATH_MAX], tried[N_LAYOUTS][PATH_MAX];
	const struct bench_layout *l = NULL;
	char **av;
	char *slash;
	ssize_t n;
	int i = 0, rc;

	(void)cmd;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return cli_error(-errno, "bench: cannot find the cmkfs "
					 "executable (/proc/self/exe)");
	exe[n] = '\0';
	memcpy(dir, exe, (size_t)n + 1);
	slash = strrchr(dir, '/');
	if (!slash)
		return cli_error(0, "bench: /proc/self/exe is not a path: %s",
				 exe);
	*slash = '\0';

	for (size_t k = 0; k < N_LAYOUTS && !l; k++)
		if (!resolve(script, tried[k], dir, layouts[k].script))
			l = &layouts[k];
	if (!l)
		return cli_error(0,
				 "bench: the benchmark suite is not installed "
				 "beside %s (no %s, no %s): reinstall cmkfs "
				 "(make install)",
				 exe, tried[0], tried[1]);
	rc = find_program(kmsd, dir, l->kmsd, l);
	if (rc)
		return rc;
	rc = find_program(speed, dir, l->crypto_speed, l);
	if (rc)
		return rc;

	/* python3 SCRIPT [--cmkfs EXE] --kmsd K --crypto-speed S ARGS...:
	 * the user's arguments last, so that theirs win. */
	av = calloc((size_t)argc + 8, sizeof(*av));
	if (!av)
		return cli_error(-ENOMEM, "bench");
	av[i++] = python;
	av[i++] = script;
	/* $CMKFS_BENCH_CMKFS names another cmkfs to measure (bench.py). */
	if (!getenv("CMKFS_BENCH_CMKFS")) {
		av[i++] = opt_cmkfs;
		av[i++] = exe;
	}
	av[i++] = opt_kmsd;
	av[i++] = kmsd;
	av[i++] = opt_speed;
	av[i++] = speed;
	for (int k = 1; k < argc; k++)
		av[i++] = argv[k];
	av[i] = NULL;
	if (setenv("CMKFS_BENCH_PROG", "cmkfs bench", 1)) {
		rc = cli_error(-errno, "bench");
		goto out;
	}

	/* Debian's interpreter, as `make bench` uses; else the one on PATH. */
	execv("/usr/bin/python3", av);
	if (errno == ENOENT)
		execvp(python, av);
	if (errno == ENOENT)
		rc = cli_error(0, "bench: python3 is not installed; the "
				  "benchmark needs it (Debian: apt-get install "
				  "python3)");
	else
		rc = cli_error(-errno, "bench: cannot run python3");
out:
	free(av);
	return rc;
}

/* NULL usage: `cmkfs bench --help` and `cmkfs help bench` show bench.py's
 * own help (main.c). */
const struct cli_cmd cli_cmd_bench = {
	"bench", "run the benchmark suite on this machine (as root)", NULL,
	cmd_bench
};
