#!/bin/bash
# mount-uring: FUSE over io_uring (`mount --fuse-io-uring`).  The
# data-path tests, mount-raw among them, run under this transport too (the
# runner runs them once per transport); here, what is its own: aligned I/O
# in flight while unaligned writes take the synchronous path, with and
# without polling, on a disk and in memory (tmpfs); ext4 through
# the loop device with fsync-heavy fio and a clean fsck; status names the
# transport; `auto` turns the kernel's switch on and uses it, `off` never
# uses io_uring nor touches the switch; a revoked key shreds the mount and
# I/O fails with EIO.
# timeout: 400
. "$(dirname "$0")/../lib.sh"

need_mounts loop
command -v fio > /dev/null || fail "fio is missing (scripts/deps.sh installs it)"
fuse_uring_enable
isolate_aws

kmsd_with_host

# ---- the asynchronous and the synchronous path at once ----
# fio keeps 32 aligned direct I/Os in flight (each thread's own backend I/O)
# while the model-based test's unaligned writes take the synchronous path,
# which first drains that I/O; both verify what they wrote.  Then one
# request at a time, as a database backend does (psync): what the queue
# threads' polling serves.
# mixed VOLUME [MOUNT OPTIONS]
mixed() {
	local raw=$1 plain=$TEST_TMPDIR/plain
	shift
	expect_exit 0 as "$host" "$CMKFS" create "$raw" --size 64M --key-arn "$key"
	expect_exit 0 as "$host" "$CMKFS" mount --raw "$raw" "$plain" --fuse-io-uring on \
		--log "$TEST_TMPDIR/mixed.log" "$@"
	fio --output="$TEST_TMPDIR/fio-mixed.out" --name=fast --filename="$plain" \
		--rw=randwrite --bs=4k --size=32M --loops=4 --ioengine=io_uring \
		--iodepth=32 --direct=1 --verify=crc32c --verify_fatal=1 --verify_state_save=0 &
	fio_pid=$!
	"$PYTHON" "$CMKFS_SRC/tests/tools/io_model.py" run "$plain" \
		"$TEST_TMPDIR/${raw##*/}.model" 3 2500 $((32 << 20)) $((64 << 20)) shared ||
		fail "model-based test beside fio (seed 3, $raw $*)"
	wait $fio_pid || { cat "$TEST_TMPDIR/fio-mixed.out"; fail "fio beside the model-based test ($raw $*)"; }
	fio --output="$TEST_TMPDIR/fio-qd1.out" --name=qd1 --filename="$plain" \
		--rw=randrw --bs=8k --size=32M --offset=32M --number_ios=4000 \
		--ioengine=psync --direct=1 --fdatasync=16 --verify=crc32c \
		--verify_fatal=1 --verify_state_save=0 ||
		{ cat "$TEST_TMPDIR/fio-qd1.out"; fail "fio one request at a time ($raw $*)"; }
	grep -q "error" "$TEST_TMPDIR/mixed.log" && fail "daemon errors: $(grep error "$TEST_TMPDIR/mixed.log")"
	expect_exit 0 "$CMKFS" umount "$plain"
}
mixed "$TEST_TMPDIR/mixed.img"
grep -q "O_DIRECT backend" "$TEST_TMPDIR/mixed.log" || fail "the backend is not said O_DIRECT"
mixed "$TEST_TMPDIR/mixed-nopoll.img" --poll-us 0
# A volume in memory: its I/O is done in the queue thread (no worker).
mkdir "$TEST_TMPDIR/mem"
mount -t tmpfs -o size=80m tmpfs "$TEST_TMPDIR/mem"
mixed "$TEST_TMPDIR/mem/mem.img" --poll-us 1000
grep -q "in-memory (tmpfs) backend" "$TEST_TMPDIR/mixed.log" ||
	fail "the backend in tmpfs is not said in memory"
umount "$TEST_TMPDIR/mem"
for bad in -1 1001 x "" +5 " 5"; do
	expect_exit 2 "$CMKFS" mount --raw "$TEST_TMPDIR/mixed.img" "$TEST_TMPDIR/plain" --poll-us "$bad"
	grep -q -- "--poll-us takes microseconds, 0..1000" <<< "$err" || fail "--poll-us $bad: $err"
done

vol=$TEST_TMPDIR/v.img
mnt=$TEST_TMPDIR/mnt
log=$TEST_TMPDIR/daemon.log
mkdir "$mnt"
expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 256M --key-arn "$key"

# transport MODE: mount with --fuse-io-uring MODE; prints what status says
transport() {
	expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt" --fuse-io-uring "$1" --log "$log"
	expect_exit 0 "$CMKFS" status "$vol"
	sed -n 's/^  transport *//p' <<< "$out"
}

# ---- ext4 over the loop device over io_uring ----
t=$(transport on)
case $t in "FUSE over io_uring ("*" threads)") ;; *) fail "status transport: $t" ;; esac
expect_exit 0 "$CMKFS" status --json "$vol"
$PYTHON -c 'import json,sys; m = json.loads(sys.argv[1])["mount"]; assert m["fuse_transport"] == "io_uring", m' "$out" ||
	fail "status --json transport"
fio --output="$TEST_TMPDIR/fio.out" --directory="$mnt" --name=db --rw=randrw \
	--bs=4k --size=32M --numjobs=2 --ioengine=io_uring --iodepth=16 \
	--direct=1 --fsync=8 --verify=crc32c --verify_fatal=1 ||
	{ cat "$TEST_TMPDIR/fio.out"; fail "fio on ext4 over io_uring"; }
fio --output="$TEST_TMPDIR/fio.out" --directory="$mnt" --name=big --rw=write \
	--bs=1M --size=64M --ioengine=psync --end_fsync=1 --verify=md5 \
	--verify_fatal=1 || { cat "$TEST_TMPDIR/fio.out"; fail "buffered fio on ext4"; }
sha=$(sha256sum < "$mnt"/big.0.0)
expect_exit 0 "$CMKFS" umount "$mnt"
# The filesystem is clean, through a /dev/fuse mount this time.
expect_exit 0 as "$host" "$CMKFS" mount --raw "$vol" "$TEST_TMPDIR/plain" --fuse-io-uring off
e2fsck -fn "$TEST_TMPDIR/plain" > "$TEST_TMPDIR/fsck.out" 2>&1 ||
	{ cat "$TEST_TMPDIR/fsck.out"; fail "e2fsck after io_uring writes"; }
expect_exit 0 "$CMKFS" umount "$TEST_TMPDIR/plain"

# ---- auto and off ----
[ "$(transport auto)" = "FUSE over io_uring (4 threads)" ] ||
	[ "$(nproc --all)" != 2 ] || fail "auto with io_uring enabled: $(transport auto)"
[ "$(sha256sum < "$mnt"/big.0.0)" = "$sha" ] || fail "data changed"
expect_exit 0 "$CMKFS" umount "$mnt"
[ "$(transport off)" = /dev/fuse ] || fail "off used io_uring"
expect_exit 0 "$CMKFS" umount "$mnt"
# auto, as root, turns the kernel's switch on, and says so once.
echo N > $FUSE_URING_PARAM
: > "$log"
[ "$(transport auto)" != /dev/fuse ] || fail "auto left io_uring switched off"
[ "$(cat $FUSE_URING_PARAM)" = Y ] || fail "auto did not enable io_uring"
[ "$(grep -c "enabled FUSE over io_uring" "$log")" = 1 ] || fail "auto's enabling not logged once"
expect_exit 0 "$CMKFS" umount "$mnt"
# off leaves it alone.
echo N > $FUSE_URING_PARAM
[ "$(transport off)" = /dev/fuse ] || fail "off used io_uring"
[ "$(cat $FUSE_URING_PARAM)" = N ] || fail "off touched the kernel's switch"
expect_exit 0 "$CMKFS" umount "$mnt"
# on enables it.
[ "$(transport on)" != /dev/fuse ] || fail "on did not use io_uring"
[ "$(cat $FUSE_URING_PARAM)" = Y ] || fail "on did not enable io_uring"
grep -q "enabled FUSE over io_uring" "$log" || fail "enabling not logged"
expect_exit 0 "$CMKFS" umount "$mnt"
# Where the switch cannot be written (sysfs read-only, as in a container),
# auto uses io_uring when it is on and /dev/fuse, saying why, when it is off.
ro_transport() {
	: > "$log"
	unshare -m --propagation private bash -c '
		mount --bind -o ro /sys/module/fuse/parameters /sys/module/fuse/parameters &&
		. "$1" && export AWS_ENDPOINT_URL_KMS=$6 &&
		"$2" mount --raw "$3" "$4" --fuse-io-uring auto --log "$5" > /dev/null &&
		"$2" status "$3" | sed -n "s/^  transport *//p" && "$2" umount "$4" > /dev/null' \
		_ "$host" "$CMKFS" "$vol" "$TEST_TMPDIR/plain" "$log" "$KMSD_URL"
}
echo Y > $FUSE_URING_PARAM
t=$(ro_transport) || fail "mount with sysfs read-only: $t"
case $t in "FUSE over io_uring ("*) ;; *) fail "auto, read-only sysfs, switch on: $t" ;; esac
echo N > $FUSE_URING_PARAM
t=$(ro_transport) || fail "mount with sysfs read-only: $t"
[ "$t" = /dev/fuse ] || fail "auto, read-only sysfs, switch off: $t"
grep -q "FUSE through /dev/fuse: cannot enable FUSE over io_uring" "$log" ||
	fail "auto's fallback not logged: $(cat "$log")"
[ "$(cat $FUSE_URING_PARAM)" = N ] || fail "the switch changed behind a read-only sysfs"

# ---- revocation over io_uring: the shred fails I/O with EIO ----
plain=$TEST_TMPDIR/plain
expect_exit 0 as "$host" "$CMKFS" mount --raw "$vol" "$plain" --fuse-io-uring on \
	--revocation-check 1 --log "$log"
io() {
	direct_io "$plain" "$1"
}
[ "$(io write)" = ok ] && [ "$(io read)" = ok ] || fail "I/O before the revocation"
as "$root" "$CMKFS" kms disable-key "$key" 2> /dev/null
for _ in $(seq 100); do
	[ "$(io read)" = EIO ] && break
	sleep 0.1
done
[ "$(io read)" = EIO ] || fail "reads still work 10 s after the key was disabled"
[ "$(io write)" = EIO ] || fail "writes still work after the shred"
grep -q "SHREDDED" "$log" || fail "no shred logged"
expect_exit 0 "$CMKFS" umount "$plain"
kmsd_stop
