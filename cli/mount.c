/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mount.c — `cmkfs mount` and `cmkfs umount`, and the mount part of
 * `cmkfs status`.
 *
 * mount has volume/ lock the volume, unlock it through KMS and hand the key
 * to the daemon (fs/), which serves the plaintext, puts the loop device and
 * filesystem on top and says when the mount is usable.  Without
 * --foreground the command forks first: the child becomes the daemon
 * (setsid) and reports readiness, or the exit code of its failure, through
 * a pipe; the parent waits for it and exits with that code.  The fork comes
 * before the unlock because the key lives in secure memory, which a child
 * does not inherit.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "volume.h"
#include "fs.h"

struct mount_args {
	const char *volume, *dir, *fstype, *log_file;
	bool raw, foreground, read_only, allow_discards, quiet, mkfs;
	unsigned threads;
	enum fsd_fuse_uring fuse_uring;
	unsigned poll_us;
	const char *metrics_listen, *metrics_file;
	unsigned metrics_interval;
	unsigned check_interval, outage_grace; /* seconds */
	enum fsd_on_revoke on_revoke;
	bool revoke_every_key;
	unsigned suspend_timeout; /* seconds, 0: forever */
	bool reencrypt_paused;
	bool insecure;
	const char *key_arn; /* pinned */
	struct kms_options ko;
};

/* What the daemon tells the waiting parent. */
struct ready_msg {
	int code; /* exit code: 0 when mounted */
	int pid;
};

struct ready_ctx {
	int fd; /* pipe to the parent, or -1 in the foreground */
	const char *volume, *target;
};

static void report(int fd, int code)
{
	struct ready_msg m = { .code = code, .pid = (int)getpid() };

	if (fd >= 0 && write(fd, &m, sizeof(m)) != (ssize_t)sizeof(m))
		fprintf(stderr, "cmkfs: cannot report to the mount command\n");
}

static void on_ready(void *arg, const char *blank_kept)
{
	struct ready_ctx *c = arg;

	if (blank_kept)
		fprintf(stderr,
			"cmkfs: error: %s\n"
			"cmkfs: WARNING: %s still carries its blank mark; "
			"remount it to clear it\n",
			blank_kept, c->volume);
	if (c->fd < 0) {
		printf("mounted %s on %s (daemon pid %d, foreground)\n",
		       c->volume, c->target, (int)getpid());
		fflush(stdout);
		/* systemd Type=notify: usable now. */
		if (cli_sd_notify("READY=1"))
			fprintf(stderr, "cmkfs: cannot notify the service "
					"manager that the mount is ready\n");
		return;
	}
	report(c->fd, EXIT_OK);
	close(c->fd);
	c->fd = -1;
}

/* The absolute path of target; with raw it may not exist yet (its
 * directory must). */
static int resolve_target(const char *dir, bool raw, char *out)
{
	char parent[PATH_MAX], *copy, *base;
	struct stat st;

	if (realpath(dir, out)) {
		if (stat(out, &st))
			return -errno;
		if (!raw && !S_ISDIR(st.st_mode))
			return -ENOTDIR;
		if (raw && !S_ISREG(st.st_mode))
			return -EISDIR;
		return 0;
	}
	if (errno != ENOENT || !raw)
		return -errno;
	copy = strdup(dir);
	if (!copy)
		return -ENOMEM;
	if (!realpath(dirname(copy), parent)) {
		free(copy);
		return -errno;
	}
	free(copy);
	copy = strdup(dir);
	if (!copy)
		return -ENOMEM;
	base = basename(copy);
	if (snprintf(out, PATH_MAX, "%s/%s", strcmp(parent, "/") ? parent : "",
		     base) >= PATH_MAX) {
		free(copy);
		return -ENAMETOOLONG;
	}
	free(copy);
	return 0;
}

/* In the daemon process: unlock, serve.  Returns the exit code. */
static int serve(const struct mount_args *a, struct vol_mount *m,
		 const char *target, int ready_fd)
{
	struct ready_ctx rc = { .fd = ready_fd,
				.volume = a->volume,
				.target = target };
	const struct vol_mount_params p = {
		.target = target,
		.fstype = a->fstype,
		.raw = a->raw,
		.read_only = a->read_only,
		.allow_discards = a->allow_discards,
		.mkfs = a->mkfs,
		.detach = !a->foreground,
		.log_file = a->log_file,
		.threads = a->threads,
		.fuse_uring = a->fuse_uring,
		.poll_us = a->poll_us,
		.metrics_listen = a->metrics_listen,
		.metrics_file = a->metrics_file,
		.metrics_interval = a->metrics_interval,
		.check_interval = a->check_interval,
		.outage_grace = a->outage_grace,
		.on_revoke = a->on_revoke,
		.revoke_every_key = a->revoke_every_key,
		.suspend_timeout = a->suspend_timeout,
		.reencrypt_paused = a->reencrypt_paused,
		.ko = &a->ko,
		.ready = on_ready,
		.ready_arg = &rc,
	};
	struct vol_error e;
	bool ready;
	int code, r;

	r = vol_mount_serve(m, &p, &ready, &e);
	vol_mount_close(m);
	if (ready) /* the daemon has logged how it ended */
		return r ? EXIT_FAIL : EXIT_OK;
	/* Never became ready: the failure is the command's. */
	code = cli_volume_error(a->volume, r, &e);
	report(rc.fd, code);
	if (rc.fd >= 0)
		close(rc.fd);
	return code;
}

static int do_mount(const struct mount_args *a)
{
	char target[PATH_MAX];
	struct vol_mount *m = NULL;
	static struct vol_trust trust; /* lives as long as m */
	struct vol_error e;
	int pfd[2], r;
	pid_t pid;

	if (geteuid() != 0)
		return cli_error(-EPERM, "mount needs root (FUSE, loop "
					 "devices and mount)");
	cli_trust(&trust, a->insecure, a->key_arn);
	r = vol_mount_open(a->volume, &trust, &m, &e);
	if (r)
		return cli_volume_error(a->volume, r, &e);
	r = resolve_target(a->dir, a->raw, target);
	if (r)
		vol_mount_close(m);
	if (r == -ENOTDIR)
		return cli_error(0,
				 "cannot mount on %s: not a directory (use "
				 "--raw to expose the plaintext as a file)",
				 a->dir);
	if (r == -EISDIR)
		return cli_error(0,
				 "cannot expose the plaintext at %s: --raw "
				 "needs a regular file (or a new path), not a "
				 "directory",
				 a->dir);
	if (r)
		return cli_error(r, "cannot mount on %s", a->dir);
	if (!strncmp(vol_mount_info(m)->cipher, "cipher_null", 11))
		fprintf(stderr,
			"cmkfs: WARNING: %s uses cipher_null: it is "
			"NOT ENCRYPTED (a benchmark volume)\n",
			a->volume);

	if (a->foreground)
		return serve(a, m, target, -1);

	/* The fork comes before the unlock: the key lives in secure memory,
	 * which a child does not inherit. */
	if (pipe2(pfd, O_CLOEXEC)) {
		vol_mount_close(m);
		return cli_error(-errno, "cannot start the daemon");
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		vol_mount_close(m);
		return cli_error(-errno, "cannot start the daemon");
	}
	if (pid == 0) {
		close(pfd[0]);
		setsid();
		exit(serve(a, m, target, pfd[1]));
	}
	close(pfd[1]);
	vol_mount_close(m);
	{
		struct ready_msg msg;
		ssize_t n;

		do
			n = read(pfd[0], &msg, sizeof(msg));
		while (n < 0 && errno == EINTR);
		close(pfd[0]);
		if (n != (ssize_t)sizeof(msg))
			return cli_error(0,
					 "cannot mount %s: the daemon exited "
					 "before the mount was ready (see the "
					 "system log)",
					 a->volume);
		if (msg.code)
			return msg.code; /* the daemon printed why */
		if (!a->quiet)
			printf("mounted %s on %s (daemon pid %d)\n", a->volume,
			       target, msg.pid);
	}
	return EXIT_OK;
}

int cli_mkfs_volume(const char *volume, const char *fstype,
		    const struct kms_options *ko)
{
	char dir[] = "/tmp/cmkfs-mkfs.XXXXXX", err[1024];
	struct mount_args a = { .volume = volume,
				.dir = dir,
				.fstype = fstype,
				.quiet = true,
				.poll_us = FSD_POLL_US_DEFAULT };
	struct fsd_state st;
	int rc, r;

	if (!mkdtemp(dir))
		return cli_error(-errno, "cannot make a filesystem on %s",
				 volume);
	a.ko = *ko;
	/* The first mount of a blank volume makes its filesystem. */
	rc = do_mount(&a);
	if (!rc) {
		r = fsd_state_find(dir, &st);
		if (!r)
			r = fsd_umount(&st, err, sizeof(err));
		else
			snprintf(err, sizeof(err), "%s", strerror(-r));
		if (r)
			rc = cli_error(0,
				       "cannot unmount %s after making its "
				       "filesystem: %s",
				       volume, err);
	}
	rmdir(dir);
	return rc;
}

static int run_mount(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "fs", required_argument, NULL, 't' },
		{ "mkfs", no_argument, NULL, 'M' },
		{ "raw", no_argument, NULL, 'r' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "read-only", no_argument, NULL, 'o' },
		{ "allow-discards", no_argument, NULL, 'd' },
		{ "log", required_argument, NULL, 'l' },
		{ "threads", required_argument, NULL, 'T' },
		{ "fuse-io-uring", required_argument, NULL, 'U' },
		{ "poll-us", required_argument, NULL, 'p' },
		{ "metrics-listen", required_argument, NULL, 'm' },
		{ "metrics-file", required_argument, NULL, 'F' },
		{ "metrics-interval", required_argument, NULL, 'i' },
		{ "revocation-check", required_argument, NULL, 'C' },
		{ "revocation", required_argument, NULL, 'W' },
		{ "on-revoke", required_argument, NULL, 'R' },
		{ "kms-outage-grace", required_argument, NULL, 'G' },
		{ "suspend-timeout", required_argument, NULL, 'S' },
		{ "reencrypt-paused", no_argument, NULL, 'P' },
		CLI_INSECURE_LONGOPT,
		CLI_KEY_LONGOPTS,
		CLI_KMS_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct mount_args a = { .fstype = "ext4",
				.poll_us = FSD_POLL_US_DEFAULT,
				.check_interval = 60,
				.suspend_timeout = 300 };
	unsigned long v;
	bool fs_given = false;
	char *end;
	int c, rc;

	while ((c = cli_getopt(cmd, argc, argv, "h", longopts, &rc)) != -1) {
		if (cli_kms_option(cmd, c, optarg, &a.ko, &rc) < 0)
			return rc;
		switch (c) {
		case 't':
			if (strcmp(optarg, "ext4") && strcmp(optarg, "xfs"))
				return cli_usage_error(cmd, "--fs takes ext4 "
							    "or xfs");
			a.fstype = optarg;
			fs_given = true;
			break;
		case 'M':
			a.mkfs = true;
			break;
		case 'r':
			a.raw = true;
			break;
		case 'f':
			a.foreground = true;
			break;
		case 'o':
			a.read_only = true;
			break;
		case 'd':
			a.allow_discards = true;
			break;
		case 'P':
			a.reencrypt_paused = true;
			break;
		case 'I':
			a.insecure = true;
			break;
		case 'k':
			a.key_arn = optarg;
			break;
		case 'l':
			a.log_file = optarg;
			break;
		case 'T':
			a.threads = (unsigned)strtoul(optarg, &end, 10);
			if (*end || a.threads < 1 || a.threads > 128)
				return cli_usage_error(cmd, "--threads takes "
							    "1..128");
			break;
		case 'U':
			if (!strcmp(optarg, "auto"))
				a.fuse_uring = FSD_URING_AUTO;
			else if (!strcmp(optarg, "on"))
				a.fuse_uring = FSD_URING_ON;
			else if (!strcmp(optarg, "off"))
				a.fuse_uring = FSD_URING_OFF;
			else
				return cli_usage_error(cmd, "--fuse-io-uring "
							    "takes auto, on "
							    "or off");
			break;
		case 'p':
			v = strtoul(optarg, &end, 10);
			if (*optarg < '0' || *optarg > '9' || *end ||
			    v > FSD_POLL_US_MAX)
				return cli_usage_error(
					cmd,
					"--poll-us takes microseconds, "
					"0..%u",
					FSD_POLL_US_MAX);
			a.poll_us = (unsigned)v;
			break;
		case 'm':
			a.metrics_listen = optarg;
			break;
		case 'F':
			if (!*optarg)
				return cli_usage_error(cmd, "--metrics-file "
							    "takes a path");
			a.metrics_file = optarg;
			break;
		case 'i':
			v = strtoul(optarg, &end, 10);
			if (*optarg < '0' || *optarg > '9' || *end || v < 1 ||
			    v > 3600)
				return cli_usage_error(
					cmd, "--metrics-interval "
					     "takes seconds, 1..3600");
			a.metrics_interval = (unsigned)v;
			break;
		case 'C':
		case 'G':
		case 'S':
			v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || v > 86400)
				return cli_usage_error(
					cmd,
					"--%s takes seconds, "
					"0..86400",
					c == 'C'   ? "revocation-check"
					: c == 'G' ? "kms-outage-grace"
						   : "suspend-timeout");
			if (c == 'C')
				a.check_interval = (unsigned)v;
			else if (c == 'G')
				a.outage_grace = (unsigned)v;
			else
				a.suspend_timeout = (unsigned)v;
			break;
		case 'R':
			if (!strcmp(optarg, "shred"))
				a.on_revoke = FSD_REVOKE_SHRED;
			else if (!strcmp(optarg, "keep"))
				a.on_revoke = FSD_REVOKE_KEEP;
			else if (!strcmp(optarg, "suspend"))
				a.on_revoke = FSD_REVOKE_SUSPEND;
			else
				return cli_usage_error(cmd, "--on-revoke takes "
							    "shred, suspend "
							    "or keep");
			break;
		case 'W':
			if (strcmp(optarg, "all") && strcmp(optarg, "any"))
				return cli_usage_error(cmd,
						       "--revocation takes "
						       "all or any");
			a.revoke_every_key = !strcmp(optarg, "any");
			break;
		}
	}
	if (rc >= 0)
		return rc;
	if (argc - optind != 2)
		return cli_usage_error(cmd, "mount takes VOLUME and DIR");
	if (a.on_revoke == FSD_REVOKE_SUSPEND && !a.check_interval)
		return cli_usage_error(cmd, "--on-revoke suspend needs "
					    "revocation checks: "
					    "--revocation-check must not be 0");
	if (a.raw && (fs_given || a.mkfs))
		return cli_usage_error(cmd, "--raw exposes the plaintext "
					    "file: no filesystem, drop --fs "
					    "and --mkfs");
	a.volume = argv[optind];
	a.dir = argv[optind + 1];
	return do_mount(&a);
}

const struct cli_cmd cli_cmd_mount = {
	"mount",
	"unlock a volume through KMS and mount it",
	"usage: cmkfs mount VOLUME DIR [--fs ext4|xfs] [--mkfs] [--read-only]\n"
	"                   [--allow-discards] [--foreground] [--log FILE]\n"
	"                   [--reencrypt-paused] [--key KEY] [--insecure]\n"
	"                   [KMS OPTIONS]\n"
	"       cmkfs mount VOLUME FILE --raw [...]\n"
	"\n"
	"Unlock VOLUME through its KMS key and start its daemon, which serves "
	"the\n"
	"plaintext as one file over FUSE (every byte AES-XTS-encrypted on its "
	"way\n"
	"to the volume).  By default that file goes on a loop device (direct "
	"I/O,\n"
	"the volume's sector size) whose filesystem is mounted on DIR; on the "
	"first\n"
	"mount of a volume never written since `cmkfs create`, the filesystem "
	"is\n"
	"created (--fs, default ext4).  A volume that holds no filesystem but "
	"has\n"
	"been written (e.g. through --raw) is refused unless it reads as zeros "
	"all\n"
	"through, or --mkfs says to format it; a filesystem is never "
	"formatted.\n"
	"With --raw the plaintext file itself appears at FILE (a regular "
	"file,\n"
	"hidden while mounted, or a new path, created and removed again by "
	"umount).\n"
	"\n"
	"Returns when the mount is usable; on failure nothing stays mounted or\n"
	"attached.  The daemon detaches and logs to syslog (or --log FILE); "
	"its state\n"
	"is in /run/cmkfs/UUID/.  Needs root.\n"
	"\n"
	"  --fs ext4|xfs       filesystem to create on a blank volume\n"
	"  --mkfs              create it when the volume holds no filesystem, "
	"even\n"
	"                      if it was written: destroys what it holds\n"
	"  --raw               expose the plaintext file, no loop device\n"
	"  --read-only         serve and mount read-only\n"
	"  --allow-discards    accept discards (served as zero writes: they "
	"free no\n"
	"                      space on the volume; see README)\n"
	"  --foreground        stay attached (systemd Type=notify, "
	"debugging);\n"
	"                      logs to stderr unless --log\n"
	"  --log FILE          log to FILE instead of syslog\n"
	"  --threads N         FUSE worker threads without io_uring (default "
	"16)\n"
	"  --fuse-io-uring auto|on|off  take FUSE requests over io_uring "
	"(Linux\n"
	"                      6.14+: several in flight per thread, one "
	"thread per\n"
	"                      CPU): auto (the default) uses it where the "
	"kernel\n"
	"                      has it, turning it on (fuse module parameter\n"
	"                      enable_uring) if it is off; on fails without "
	"it;\n"
	"                      off never uses it nor touches the parameter\n"
	"  --poll-us N         over io_uring, a thread busy a moment ago "
	"polls for\n"
	"                      the next request up to N microseconds before "
	"it\n"
	"                      sleeps (default 50; 0: never): a wake-up "
	"costs more\n"
	"                      than a small request; CPU for latency\n"
	"  --metrics-listen [ADDR:]PORT  serve Prometheus metrics on "
	"GET /metrics\n"
	"                      at ADDR:PORT (127.0.0.1 when only PORT is "
	"given; 0\n"
	"                      picks a free port, 'cmkfs status' says "
	"which)\n"
	"  --metrics-file PATH write them to PATH (atomically: for "
	"node_exporter's\n"
	"                      textfile collector, PATH ending in .prom) "
	"every\n"
	"                      --metrics-interval seconds (default 10); "
	"removed at\n"
	"                      unmount\n"
	"  --revocation-check S  re-prove access to the KMS key every S "
	"seconds\n"
	"                      (default 60; 0: never) with the Decrypt a "
	"mount makes\n"
	"  --on-revoke shred|suspend|keep  when KMS refuses: wipe the keys "
	"and fail\n"
	"                      all I/O with EIO (shred, the default); wipe "
	"them and\n"
	"                      hold I/O until KMS allows the key again, "
	"then go on\n"
	"                      (suspend); or only log (keep)\n"
	"  --revocation all|any  for a volume several CMKs open: access is "
	"revoked\n"
	"                      when KMS refuses all of them (all, the "
	"default: a\n"
	"                      disaster-recovery key is a second door), or "
	"any one\n"
	"                      of them (any: each key holder can cut "
	"access; every\n"
	"                      key must open the volume at mount).  The keys "
	"are\n"
	"                      those of the header at mount: add-key and "
	"remove-key\n"
	"                      count from the next mount\n"
	"  --suspend-timeout S  a suspended mount shreds after S seconds "
	"(default\n"
	"                      300; 0: never)\n"
	"  --kms-outage-grace S  after S seconds of KMS unreachable, act as "
	"if\n"
	"                      revoked (default 0: never; outages never "
	"shred)\n"
	"  --reencrypt-paused  a volume whose reencryption is unfinished is "
	"served\n"
	"                      (a block a crash cut off recovered first) but "
	"the\n"
	"                      reencryption waits for `cmkfs reencrypt "
	"--resume`;\n"
	"                      by default it continues at once\n" CLI_PIN_USAGE
		CLI_INSECURE_USAGE "\n" CLI_KMS_USAGE "\n"
	"Exit status: 0 mounted, 1 failure, 3 KMS refused, 4 KMS unreachable.\n",
	run_mount,
};

static int run_umount(const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fsd_state st;
	char err[1024];
	int rc, r;

	while (cli_getopt(cmd, argc, argv, "h", longopts, &rc) != -1)
		;
	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage_error(cmd, "umount takes one DIR or VOLUME");
	if (geteuid() != 0)
		return cli_error(-EPERM, "umount needs root");
	r = fsd_state_find(argv[optind], &st);
	if (r == -ENOENT)
		return cli_error(0, "%s is not a mounted cmkfs volume",
				 argv[optind]);
	if (r)
		return cli_error(r, "cannot look up %s", argv[optind]);
	r = fsd_umount(&st, err, sizeof(err));
	if (r)
		return cli_error(0, "cannot unmount %s: %s", argv[optind], err);
	printf("unmounted %s (%s)%s\n", st.mountpoint, st.volume,
	       st.alive ? "" : ": its daemon had died; cleaned up");
	return EXIT_OK;
}

const struct cli_cmd cli_cmd_umount = {
	"umount",
	"unmount a volume, flush it and wipe its keys",
	"usage: cmkfs umount DIR|FILE|VOLUME\n"
	"\n"
	"Unmount the filesystem (a busy one is reported and left mounted), "
	"detach the\n"
	"loop device, and have the daemon flush the volume, wipe every key "
	"and exit;\n"
	"wait for it and report any failure.  Given the volume, or a --raw "
	"file, the\n"
	"same.  When the daemon has died, clean up what it left.\n",
	run_umount,
};

/* ---- status ---- */

static void print_suspended(const struct fsd_state *st)
{
	long long left = (long long)(st->suspended_since +
				     (int64_t)st->suspend_timeout - time(NULL));

	printf("  SUSPENDED    for %lld s: KMS refused the key (%s); every "
	       "key is wiped, I/O waits until access returns\n",
	       (long long)(time(NULL) - st->suspended_since), st->last_refusal);
	if (st->suspend_timeout)
		printf("               shredded in %lld s unless access "
		       "returns\n",
		       left > 0 ? left : 0);
	else
		printf("               no time limit (--suspend-timeout 0)\n");
}

void cli_status_mount(const char *uuid, json_object *o)
{
	struct fsd_state st;
	char r[32], w[32];
	long long up;

	if (fsd_state_by_uuid(uuid, &st)) {
		if (o)
			json_object_object_add(o, "mount", NULL);
		else
			printf("  mounted      no\n");
		return;
	}
	up = st.started ? (long long)time(NULL) - st.started : 0;
	if (o) {
		json_object *m = json_object_new_object();

		json_object_object_add(m, "mountpoint",
				       json_object_new_string(st.mountpoint));
		json_object_object_add(m, "raw",
				       json_object_new_boolean(st.raw));
		json_object_object_add(m, "loop",
				       json_object_new_string(st.loop));
		json_object_object_add(m, "fstype",
				       json_object_new_string(st.fstype));
		json_object_object_add(m, "fuse",
				       json_object_new_string(st.fuse));
		json_object_object_add(m, "pid", json_object_new_int(st.pid));
		json_object_object_add(m, "alive",
				       json_object_new_boolean(st.alive));
		json_object_object_add(m, "read_only",
				       json_object_new_boolean(st.read_only));
		json_object_object_add(m, "uptime", json_object_new_int64(up));
		if (st.have_stats) {
			json_object_object_add(
				m, "shredded",
				json_object_new_boolean(st.shredded));
			json_object_object_add(
				m, "on_revoke",
				json_object_new_string(st.on_revoke));
			json_object_object_add(
				m, "suspended",
				json_object_new_boolean(st.suspended));
			json_object_object_add(
				m, "suspended_since",
				st.suspended ? json_object_new_int64(
						       st.suspended_since)
					     : NULL);
			json_object_object_add(
				m, "suspend_timeout",
				json_object_new_int((int)st.suspend_timeout));
			json_object_object_add(
				m, "last_refusal",
				st.last_refusal[0] ? json_object_new_string(
							     st.last_refusal)
						   : NULL);
			json_object_object_add(
				m, "fuse_transport",
				json_object_new_string(st.io_uring_threads
							       ? "io_uring"
							       : "dev_fuse"));
			json_object_object_add(m, "aes",
					       json_object_new_string(st.aes));
			json_object_object_add(
				m, "metrics",
				st.metrics[0]
					? json_object_new_string(st.metrics)
					: NULL);
			json_object_object_add(
				m, "revocation_check",
				json_object_new_int((int)st.check_interval));
			json_object_object_add(
				m, "last_check_ok",
				json_object_new_int64(st.last_check_ok));
			json_object_object_add(
				m, "next_check",
				json_object_new_int64(st.next_check));
			json_object_object_add(
				m, "bytes_read",
				json_object_new_int64((int64_t)st.bytes_read));
			json_object_object_add(
				m, "bytes_written",
				json_object_new_int64(
					(int64_t)st.bytes_written));
			json_object_object_add(
				m, "io_errors",
				json_object_new_int64((int64_t)st.io_errors));
		}
		json_object_object_add(o, "mount", m);
		return;
	}
	if (st.raw)
		printf("  mounted      %s (plaintext file)%s\n", st.mountpoint,
		       st.read_only ? ", read-only" : "");
	else
		printf("  mounted      %s (%s on %s)%s\n", st.mountpoint,
		       st.fstype, st.loop, st.read_only ? ", read-only" : "");
	if (!st.alive) {
		printf("  daemon       pid %d is GONE: run 'cmkfs umount %s'\n",
		       (int)st.pid, st.mountpoint);
		return;
	}
	printf("  daemon       pid %d, up %lld s\n", (int)st.pid, up);
	if (st.have_stats) {
		cli_human_size(st.bytes_read, r, sizeof(r));
		cli_human_size(st.bytes_written, w, sizeof(w));
		printf("  I/O          %s read, %s written, %llu errors\n", r,
		       w, (unsigned long long)st.io_errors);
		if (st.io_uring_threads)
			printf("  transport    FUSE over io_uring (%u threads)\n",
			       st.io_uring_threads);
		else
			printf("  transport    /dev/fuse\n");
		if (st.aes[0] && strcmp(st.aes, "none"))
			printf("  AES by       %s\n", st.aes);
		if (st.metrics[0])
			printf("  metrics      %s\n", st.metrics);
		if (st.shredded)
			printf("  SHREDDED     KMS refused the key: every key is "
			       "wiped, all I/O fails; unmount it\n");
		else if (st.suspended)
			print_suspended(&st);
		else if (!st.check_interval)
			printf("  revocation   not checked while mounted\n");
		else
			printf("  revocation   access last proven %lld s ago, "
			       "next check in %lld s\n",
			       (long long)(time(NULL) - st.last_check_ok),
			       st.next_check
				       ? (long long)(st.next_check - time(NULL))
				       : 0LL);
	}
}
