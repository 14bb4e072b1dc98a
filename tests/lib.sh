# lib.sh — helpers for shell tests; source it first:  . "$CMKFS_SRC/tests/lib.sh"
#
# A test is a program: exit 0 passes, 77 skips (only for what truly cannot
# run here; say why with `skip`), anything else fails.  The runner gives each
# test a private $TEST_TMPDIR and cleans up after it; a test that also runs
# alone (outside the runner) gets a temporary directory of its own.
set -eu

: "${CMKFS_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${CMKFS_BUILD:=$CMKFS_SRC/build}"
: "${CMKFS_VECTORS:=$CMKFS_SRC/tests/vectors}"
if [ -z "${TEST_TMPDIR:-}" ]; then
	TEST_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/cmkfs-test.XXXXXX")
	LIB_TMPDIR=$TEST_TMPDIR # ours to remove
	trap 'rm -rf "$LIB_TMPDIR"' EXIT
fi
LIB_TMPDIR=${LIB_TMPDIR:-}
export CMKFS_SRC CMKFS_BUILD CMKFS_VECTORS TEST_TMPDIR
CMKFS=$CMKFS_BUILD/cmkfs
# The FUSE transport of the test's mounts: CMKFS_TEST_TRANSPORT=dev_fuse or
# io_uring (the runner runs each test marked "# transports: both" once per
# transport); every `$CMKFS mount` then uses it.
case ${CMKFS_TEST_TRANSPORT:-} in
dev_fuse | io_uring) CMKFS=$CMKFS_SRC/tests/tools/cmkfs-via ;;
esac

# Debian's interpreter, with Debian's python3-cryptography: not whatever
# python3 comes first on PATH.
PYTHON=/usr/bin/python3

skip() {
	echo "SKIP: $*"
	exit 77
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# fuse_uring_enable: turn FUSE over io_uring on in the kernel for this test
# (skip when the kernel has none); the setting found is restored at exit.
FUSE_URING_PARAM=/sys/module/fuse/parameters/enable_uring
fuse_uring_enable() {
	[ -e $FUSE_URING_PARAM ] || skip "this kernel has no FUSE over io_uring"
	FUSE_URING_ORIG=$(cat $FUSE_URING_PARAM)
	trap 'echo "$FUSE_URING_ORIG" > $FUSE_URING_PARAM; rm -rf "$LIB_TMPDIR"' EXIT
	echo Y > $FUSE_URING_PARAM || fail "cannot enable FUSE over io_uring"
}

need_root() {
	[ "$(id -u)" -eq 0 ] || skip "needs root"
}

# expect_exit CODE CMD...: run CMD, fail unless it exits with CODE.  Its
# stdout and stderr are kept in $out and $err.
expect_exit() {
	local want=$1 rc=0
	shift
	out=$("$@" 2> "$TEST_TMPDIR/.stderr") || rc=$?
	err=$(cat "$TEST_TMPDIR/.stderr")
	if [ "$rc" != "$want" ]; then
		echo "command: $*" >&2
		echo "stdout: $out" >&2
		echo "stderr: $err" >&2
		fail "exit $rc, want $want"
	fi
}

# contains HAYSTACK NEEDLE WHAT: fail unless NEEDLE occurs in HAYSTACK.
contains() {
	case $1 in
	*"$2"*) ;;
	*) printf 'got: %s\n' "$1" >&2; fail "$3: missing '$2'" ;;
	esac
}

# await_output FILE SED-EXPR PID: wait (10 s at most) until `sed -n SED-EXPR`
# finds something in FILE, the output of process PID, and print it; on
# failure show FILE and return 1.
await_output() {
	local file=$1 expr=$2 pid=$3 _ v alive
	for _ in $(seq 100); do
		# Alive before the look: a writer that printed and exited
		# between a look and the check is seen by the next look.
		alive=1
		kill -0 "$pid" 2> /dev/null || alive=0
		v=$(sed -n "$expr" "$file" | head -n1)
		[ -n "$v" ] && printf '%s\n' "$v" && return 0
		[ $alive = 1 ] || break
		sleep 0.1
	done
	cat "$file" >&2
	return 1
}

# isolate_aws: nothing of the host's AWS setup reaches the test — a private
# HOME (no ~/.aws), no AWS_* settings, no instance metadata lookups.
isolate_aws() {
	export HOME=$TEST_TMPDIR/home AWS_EC2_METADATA_DISABLED=true
	mkdir -p "$HOME"
	unset AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL \
		AWS_ENDPOINT_URL_KMS AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
		AWS_SESSION_TOKEN
}

# ---- cmkfs-kmsd ---------------------------------------------------------------

KMSD=$CMKFS_BUILD/cmkfs-kmsd

# kmsd_init DIR [ACCOUNT [REGION]]: create a state; the root credential's
# environment goes to DIR.env (source it to act as that root).
kmsd_init() {
	local dir=$1 account=${2:-111111111111} region=${3:-us-east-1}
	"$KMSD" init --state "$dir" --account "$account" --region "$region" \
		> "$dir.env" || fail "cmkfs-kmsd init failed"
}

# kmsd_up [SERVE OPTIONS...]: a fresh cmkfs-kmsd with its state in
# $TEST_TMPDIR/kms, started; sets state (that directory) and root (the
# account root's environment file, for `as`).
kmsd_up() {
	state=$TEST_TMPDIR/kms
	root=$state.env
	kmsd_init "$state"
	kmsd_start "$state" "$@"
}

# kmsd_with_host: like kmsd_up, with a principal for the database host
# (its environment file in $host) and a CMK ($key) made by the root.
kmsd_with_host() {
	state=$TEST_TMPDIR/kms
	root=$state.env
	host=$TEST_TMPDIR/host.env
	kmsd_init "$state"
	kmsd_principal "$state" arn:aws:iam::111111111111:role/db-host > "$host"
	kmsd_start "$state"
	key=$(as "$root" "$CMKFS" kms create-key --description volumes)
}

# need_mounts [loop]: root and /dev/fuse (and loop devices) or skip; the
# test's mounts keep their runtime state below its directory, apart from
# real ones.
need_mounts() {
	need_root
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	[ "${1:-}" != loop ] || [ -c /dev/loop-control ] || skip "no loop devices"
	export CMKFS_RUNTIME_DIR=$TEST_TMPDIR/run
}

# kmsd_principal DIR ARN [OPTIONS...]: add a principal; its environment
# goes to stdout.
kmsd_principal() {
	local dir=$1 arn=$2
	shift 2
	"$KMSD" principal add --state "$dir" "$arn" "$@" ||
		fail "cmkfs-kmsd principal add $arn failed"
}

# kmsd_start DIR [SERVE OPTIONS...]: start the service on a free loopback
# port; sets KMSD_PID and KMSD_URL (http://127.0.0.1:PORT).  The access log
# goes to DIR.log.  The runner kills it if the test does not.
kmsd_start() {
	local dir=$1
	shift
	"$KMSD" serve --state "$dir" --listen 127.0.0.1:0 --log "$dir.log" "$@" \
		> "$dir.out" 2>&1 &
	KMSD_PID=$!
	KMSD_URL=$(await_output "$dir.out" 's/.*listening on \(http:[^ ]*\).*/\1/p' "$KMSD_PID") ||
		fail "cmkfs-kmsd did not start"
}

kmsd_stop() {
	[ -n "${KMSD_PID:-}" ] || return 0
	kill "$KMSD_PID" 2> /dev/null || true
	wait "$KMSD_PID" 2> /dev/null || true
	KMSD_PID=
}

# The AWS SDK for JavaScript, installed from npm into the build directory
# (once per lock file) for the conformance tests.
sdk_install() {
	local dir=$CMKFS_BUILD/sdk
	mkdir -p "$dir"
	if ! cmp -s "$CMKFS_SRC/tests/sdk/package-lock.json" "$dir/package-lock.json" ||
		[ ! -d "$dir/node_modules/@aws-sdk/client-kms" ]; then
		cp "$CMKFS_SRC/tests/sdk/package.json" "$CMKFS_SRC/tests/sdk/package-lock.json" "$dir/"
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) ||
			fail "npm ci of the AWS SDK failed (is the npm registry reachable?)"
	fi
	cp "$CMKFS_SRC"/tests/sdk/*.mjs "$dir/"
	SDK_DIR=$dir
}

# ---- fakes and principals ---------------------------------------------------

# start_fake SCRIPT NAME [OPTIONS...]: start a Python fake service that
# prints its port on its first line and logs requests to --log; sets
# FAKE_PID, FAKE_PORT, FAKE_URL and FAKE_LOG ($TEST_TMPDIR/NAME.log).
start_fake() {
	local script=$1 name=$2
	shift 2
	FAKE_LOG=$TEST_TMPDIR/$name.log
	: > "$FAKE_LOG"
	"$PYTHON" "$script" --log "$FAKE_LOG" "$@" > "$TEST_TMPDIR/$name.out" 2>&1 &
	FAKE_PID=$!
	FAKE_PORT=$(await_output "$TEST_TMPDIR/$name.out" '1s/^\([0-9][0-9]*\)$/\1/p' "$FAKE_PID") ||
		fail "the fake service $name did not start"
	FAKE_URL=http://127.0.0.1:$FAKE_PORT
}

stop_fake() {
	[ -n "${FAKE_PID:-}" ] || return 0
	kill "$FAKE_PID" 2> /dev/null || true
	wait "$FAKE_PID" 2> /dev/null || true
	FAKE_PID=
}

# as ENVFILE CMD...: run CMD as the principal whose environment ENVFILE
# holds (as printed by cmkfs-kmsd), against the running cmkfs-kmsd.  (In
# the background, $! is a shell, not CMD: to kill CMD itself, start it with
# a subshell that execs it.)
as() {
	local f=$1
	shift
	(. "$f" && export AWS_ENDPOINT_URL_KMS=$KMSD_URL && exec "$@")
}

# unwrap_token ENVFILE VOLUME TOKEN_ID OUT: the keyslot secret of aws-kms
# token TOKEN_ID of VOLUME, unwrapped by a KMS Decrypt as the principal of
# ENVFILE, into OUT — independently of cmkfs: the encryption context is
# computed from the header as README documents it (the volume's UUID, and
# "<cipher>:<key bits>:<sector size>:<offset>" of its data segment when the
# token is bound to it), never copied from the token.
unwrap_token() {
	local env=$1 vol=$2 id=$3 out=$4 req
	req=$(cryptsetup luksDump --dump-json-metadata "$vol" | $PYTHON -c '
import json, sys
m = json.load(sys.stdin)
t, seg = m["tokens"][sys.argv[1]], m["segments"]["0"]
bits = 8 * next(k["key_size"] for k in m["keyslots"].values() if k["type"] == "luks2")
ctx = {"cmkfs:volume": sys.argv[2]}
if "cmkfs:segment" in t["encryption_context"]:
    ctx["cmkfs:segment"] = "%s:%d:%d:%s" % (seg["encryption"], bits, seg["sector_size"], seg["offset"])
print(t["key_arn"].split(":")[3])
print(json.dumps({"CiphertextBlob": t["ciphertext"], "KeyId": t["key_arn"], "EncryptionContext": ctx}))
' "$id" "$(cryptsetup luksUUID "$vol")") || return 1
	# (in the region of the token's key: a volume may have keys in several)
	as "$env" "$CMKFS" kms call Decrypt "${req#*$'\n'}" --region "${req%%$'\n'*}" |
		$PYTHON -c 'import json,sys,base64; sys.stdout.buffer.write(base64.b64decode(json.load(sys.stdin)["Plaintext"]))' > "$out"
}

# plugin_setup: the build's token plugin, for the stock cryptsetup: a
# directory of this test's holding it (PLUGIN_DIR), and what to preload
# (PLUGIN_PRELOAD) so that libcryptsetup 2.6, which has no
# --external-tokens-path, looks there (tests/tools/token-path.c reads
# CMKFS_TEST_TOKEN_DIR).  Under `make asan` the plugin is instrumented and
# cryptsetup is not: the ASan runtime must be the first library of the
# process (it replaces malloc before anything allocates, and refuses to
# start otherwise), so it is preloaded ahead of the shim; UBSan's runtime
# comes in with the plugin.  cryptsetup 2.6.1 leaks nothing on the paths
# the tests run, so the leak check stays on (with tests/lsan.supp) and
# covers the plugin too — linked -z nodelete, it stays mapped until exit
# and its frames are symbolised.
plugin_setup() {
	local plugin=$CMKFS_BUILD/libcryptsetup-token-aws-kms.so type
	local shim=$CMKFS_BUILD/tests/token-path.so asan
	[ -f "$plugin" ] && [ -f "$shim" ] || fail "the token plugin or its shim is not built"
	PLUGIN_DIR=$TEST_TMPDIR/tokens
	mkdir -p "$PLUGIN_DIR"
	for type in aws-kms kmip; do
		[ -f "$CMKFS_BUILD/libcryptsetup-token-$type.so" ] || fail "the $type token plugin is not built"
		ln -sf "$CMKFS_BUILD/libcryptsetup-token-$type.so" "$PLUGIN_DIR/libcryptsetup-token-$type.so"
	done
	PLUGIN_PRELOAD=$shim
	asan=$(ldd "$plugin" | awk '$1 ~ /^libasan\.so/ { print $3 }')
	if [ -n "$asan" ]; then
		PLUGIN_PRELOAD="$asan $shim"
		echo "ASan build: preloading $asan"
	fi
}

# plugin_cryptsetup ENVFILE ARGS...: the stock cryptsetup as the principal
# of ENVFILE, with the plugin (plugin_setup first).
plugin_cryptsetup() {
	local env=$1
	shift
	as "$env" env LD_PRELOAD="$PLUGIN_PRELOAD" CMKFS_TEST_TOKEN_DIR="$PLUGIN_DIR" /sbin/cryptsetup "$@"
}

# volume_key_of ENVFILE VOLUME: unwrap the secret of each aws-kms token of
# VOLUME through KMS (as the principal of ENVFILE) and print the volume key
# the first that works opens, in hex — through the test-only vol-tool, for
# comparing keys and decrypting data independently of cmkfs.
volume_key_of() {
	local env=$1 vol=$2 id slot
	cryptsetup luksDump --dump-json-metadata "$vol" | $PYTHON -c '
import json, sys
m = json.load(sys.stdin)
for i, t in sorted(m["tokens"].items()):
    if t["type"] == "aws-kms":
        for k in t["keyslots"]:
            print(i, k)' > "$TEST_TMPDIR/candidates"
	while read -r id slot; do
		unwrap_token "$env" "$vol" "$id" "$TEST_TMPDIR/secret" || continue
		"$CMKFS_BUILD/tests/vol-tool" unlock "$vol" "$slot" "$TEST_TMPDIR/secret" 2> /dev/null && return 0
	done < "$TEST_TMPDIR/candidates"
	return 1
}

# xts_sum VOLUME KEYHEX: the SHA-256 of VOLUME's data segment decrypted with
# the volume key KEYHEX by an XTS independent of cmkfs
# (tests/tools/xts_volume.py), to compare with the plaintext's
xts_sum() {
	local info
	info=$("$CMKFS_BUILD/tests/vol-tool" info "$1") || return 1
	$PYTHON "$CMKFS_SRC/tests/tools/xts_volume.py" digest "$1" "$2" \
		"$(sed -n 's/^data_offset=//p' <<< "$info")" \
		"$(sed -n 's/^data_size=//p' <<< "$info")" \
		"$(sed -n 's/^sector_size=//p' <<< "$info")"
}

# until_eio FILE: read FILE (direct_io) until a read fails with EIO, 10 s
# at most; prints the seconds it took, or fails (returns 1).
until_eio() {
	local i
	for i in $(seq 100); do
		[ "$(direct_io "$1" read)" = EIO ] && { echo "$((i / 10)).$((i % 10))"; return 0; }
		sleep 0.1
	done
	return 1
}

# direct_io FILE read|write: one 4 KiB O_DIRECT read or write at the start of
# FILE; prints "ok" or the error's name (EIO...).
direct_io() {
	$PYTHON - "$1" "$2" <<'P'
import errno, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
try:
    if sys.argv[2] == "read":
        os.preadv(fd, [buf], 0)
    else:
        buf.write(b"x" * 4096)
        os.pwritev(fd, [buf], 0)
    print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])
P
}

# bench_left_nothing: fail if a bench run below $TEST_TMPDIR left a mount, a
# loop device or its directory behind.
bench_left_nothing() {
	grep -q " $TEST_TMPDIR/cmkfs-bench" /proc/self/mountinfo && fail "the bench left a mount"
	# (a detached loop device lets go of its file asynchronously)
	for _ in $(seq 20); do
		losetup -n -l -O BACK-FILE | grep -q "^$TEST_TMPDIR/cmkfs-bench" || break
		sleep 0.1
	done
	losetup -n -l -O BACK-FILE | grep -q "^$TEST_TMPDIR/cmkfs-bench" && fail "the bench left a loop device"
	ls -d "$TEST_TMPDIR"/cmkfs-bench.* 2> /dev/null && fail "the bench left its directory"
	return 0
}

# storm MODE SECONDS [MOUNT OPTIONS...]: tests/tools/storm.py MODE for
# SECONDS on the plaintext file of a fresh --raw mount (a new host and key
# from kmsd_with_host) over the run's transport, under $STORM_PREFIX (e.g.
# "taskset -c 0"); fails when the tool does or the daemon logs an error.
# A process stuck in a request the daemon never answers keeps the file
# open: then the daemon is stopped with SIGTERM, which fails those requests
# and frees the processes, before the test fails.
storm() {
	local mode=$1 secs=$2 vol=$TEST_TMPDIR/v.img plain=$TEST_TMPDIR/plain
	local log=$TEST_TMPDIR/daemon.log daemon rc=0
	shift 2
	[ "${CMKFS_TEST_TRANSPORT:-}" != io_uring ] || fuse_uring_enable
	isolate_aws
	kmsd_with_host
	expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 64M --key-arn "$key"
	expect_exit 0 as "$host" "$CMKFS" mount --raw "$vol" "$plain" --log "$log" "$@"
	daemon=$(sed -n 's/.*daemon pid \([0-9]*\).*/\1/p' <<< "$out")
	[ -n "$daemon" ] || fail "no daemon pid in: $out"
	# The transport asked for is the one tested.
	case ${CMKFS_TEST_TRANSPORT:-} in
	io_uring) grep -q "FUSE over io_uring: " "$log" || fail "the mount does not use io_uring" ;;
	dev_fuse) ! grep -q "FUSE over io_uring: " "$log" || fail "the mount uses io_uring" ;;
	esac
	${STORM_PREFIX:-} "$PYTHON" "$CMKFS_SRC/tests/tools/storm.py" "$mode" "$plain" "$secs" || rc=$?
	if ! "$CMKFS" umount "$plain" > "$TEST_TMPDIR/umount.out" 2>&1; then
		cat "$TEST_TMPDIR/umount.out" >&2
		kill -TERM "$daemon"
		for _ in $(seq 100); do
			kill -0 "$daemon" 2> /dev/null || break
			sleep 0.1
		done
	fi
	kmsd_stop
	[ $rc = 0 ] || fail "storm.py $mode (transport ${CMKFS_TEST_TRANSPORT:-default})"
	! grep -E '\] (emerg|alert|crit|error): ' "$log" || fail "the daemon logged errors"
}
