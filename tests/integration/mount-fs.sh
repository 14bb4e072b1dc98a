#!/bin/bash
# mount-fs: `cmkfs mount` with a filesystem — ext4 created on the first
# mount of a blank volume (never again), files that survive umount/mount,
# status showing the mount, a busy umount refused with everything left in
# place, nothing left after umount, read-only mounts, a disabled key
# refused with nothing mounted, a killed daemon cleaned up by umount, and
# SIGTERM unmounting everything.
# transports: both
# timeout: 240
. "$(dirname "$0")/../lib.sh"

need_mounts loop
isolate_aws

kmsd_with_host
vol=$TEST_TMPDIR/v.img
mnt=$TEST_TMPDIR/mnt
log=$TEST_TMPDIR/daemon.log
mkdir -p "$mnt"
expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 96M --key-arn "$key"
uuid=$(printf '%s\n' "$out" | sed -n 's/^  uuid *//p')
rundir=$CMKFS_RUNTIME_DIR/$uuid

mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts; }
loops() { losetup -n -l -O NAME,BACK-FILE 2> /dev/null | grep -F "$rundir" || true; }
# nothing of the mount left: filesystem, FUSE file, loop device, daemon, state
nothing_left() {
	mounted "$mnt" && fail "$1: $mnt still mounted"
	grep -qF "$rundir" /proc/mounts && fail "$1: FUSE mount left"
	[ -z "$(loops)" ] || fail "$1: loop device left: $(loops)"
	[ ! -e "$rundir" ] || fail "$1: runtime dir left: $(ls -A "$rundir")"
	if [ -n "${pid:-}" ] && kill -0 "$pid" 2> /dev/null &&
		[ "$(cut -d' ' -f3 "/proc/$pid/stat")" != Z ]; then
		fail "$1: daemon $pid still running"
	fi
	return 0
}
do_mount() {
	expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt" --log "$log" "$@"
	contains "$out" "mounted $vol on $mnt" "mount"
	pid=$(sed -n 's/.*daemon pid \([0-9]*\).*/\1/p' <<< "$out")
	mounted "$mnt" || fail "$mnt is not mounted"
}

# ---- first mount: ext4 is created on the blank device ----
do_mount
[ "$(grep -c 'blank, creating ext4' "$log")" = 1 ] || fail "no mkfs on the first mount"
[ "$(awk -v m="$mnt" '$2 == m { print $3 }' /proc/mounts)" = ext4 ] || fail "not ext4"
dev=$(awk -v m="$mnt" '$2 == m { print $1 }' /proc/mounts)
[ "$(losetup -n -O DIO,LOG-SEC "$dev" | xargs)" = "1 4096" ] ||
	fail "loop device without direct I/O or 4096-byte sectors: $(losetup -n -O DIO,LOG-SEC "$dev")"
head -c 20M /dev/urandom > "$TEST_TMPDIR/ref"
cp "$TEST_TMPDIR/ref" "$mnt/data"
mkdir "$mnt/dir" && echo hello > "$mnt/dir/small"
sync
cmp "$TEST_TMPDIR/ref" "$mnt/data" || fail "read back differs"

expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "mounted      $mnt (ext4 on $dev)" "status mount"
contains "$out" "daemon       pid $pid" "status pid"
contains "$out" " written" "status I/O"
expect_exit 0 "$CMKFS" status --json "$vol"
$PYTHON - "$out" "$mnt" "$dev" "$pid" <<'P' || fail "status --json"
import json, sys
m = json.loads(sys.argv[1])["mount"]
assert m["mountpoint"] == sys.argv[2] and m["loop"] == sys.argv[3], m
assert m["pid"] == int(sys.argv[4]) and m["fstype"] == "ext4" and not m["raw"], m
assert m["bytes_written"] >= 20 << 20, m
P

# ---- busy: a shell with its working directory in the mount ----
(cd "$mnt" && exec sleep 60) &
holder=$!
sleep 0.3
expect_exit 1 "$CMKFS" umount "$mnt"
contains "$err" "$mnt is busy" "busy umount"
mounted "$mnt" || fail "a busy umount unmounted anyway"
[ -n "$(loops)" ] || fail "a busy umount detached the loop device"
kill -0 "$pid" || fail "a busy umount stopped the daemon"
cmp "$TEST_TMPDIR/ref" "$mnt/data" || fail "data after a busy umount"
kill "$holder"
wait "$holder" 2> /dev/null || true

expect_exit 0 "$CMKFS" umount "$mnt"
contains "$out" "unmounted $mnt" "umount"
nothing_left "umount"
expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "mounted      no" "status after umount"

# ---- second mount: no mkfs, the data is there ----
do_mount
[ "$(grep -c 'blank, creating' "$log")" = 1 ] || fail "mkfs ran again"
cmp "$TEST_TMPDIR/ref" "$mnt/data" || fail "data lost across umount/mount"
[ "$(cat "$mnt/dir/small")" = hello ] || fail "small file lost"
if command -v fio > /dev/null; then
	fio --output="$TEST_TMPDIR/fio.out" --name=fs --filename="$mnt/fio" \
		--rw=randwrite --bs=4k --size=16M --direct=1 --ioengine=io_uring \
		--iodepth=16 --verify=crc32c --verify_fatal=1 ||
		{ cat "$TEST_TMPDIR/fio.out"; fail "fio through the loop device"; }
fi
# umount by volume path works too
expect_exit 0 "$CMKFS" umount "$vol"
nothing_left "umount by volume"

# ---- --fs on a volume that has a filesystem: never formatted over ----
do_mount --fs xfs
[ "$(awk -v m="$mnt" '$2 == m { print $3 }' /proc/mounts)" = ext4 ] || fail "reformatted"
cmp "$TEST_TMPDIR/ref" "$mnt/data" || fail "data after mount --fs xfs"
grep -q "holds ext4; mounting it as is" "$log" || fail "no note of the existing filesystem"
expect_exit 0 "$CMKFS" umount "$mnt"
nothing_left "umount after --fs xfs"

# ---- read-only ----
do_mount --read-only
cmp "$TEST_TMPDIR/ref" "$mnt/data" || fail "read-only data"
touch "$mnt/new" 2> /dev/null && fail "wrote to a read-only mount"
expect_exit 0 "$CMKFS" umount "$mnt"
nothing_left "read-only umount"

# ---- a disabled key: a precise error, nothing mounted or attached ----
as "$state.env" "$CMKFS" kms disable-key "$key" 2> /dev/null
expect_exit 3 as "$host" "$CMKFS" mount "$vol" "$mnt" --log "$log"
contains "$err" "the key $key is disabled" "disabled key"
pid=
nothing_left "disabled key"
as "$state.env" "$CMKFS" kms enable-key "$key" 2> /dev/null

# ---- the daemon killed: umount cleans up, a new mount works ----
do_mount
kill -9 "$pid"
sleep 0.3
expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "is GONE" "status of a dead daemon"
expect_exit 1 as "$host" "$CMKFS" mount "$vol" "$mnt"
contains "$err" "run 'cmkfs umount" "mount over a dead daemon's state"
expect_exit 0 "$CMKFS" umount "$mnt"
contains "$out" "daemon had died; cleaned up" "umount after kill"
nothing_left "umount after kill -9"
do_mount
cmp "$TEST_TMPDIR/ref" "$mnt/data" || fail "data after a crash and remount"
expect_exit 0 "$CMKFS" umount "$mnt"
nothing_left "final umount"

# ---- SIGTERM with the filesystem mounted and idle: the daemon unmounts
# it (everything written back) and exits, leaving nothing (a busy one:
# mount-stop) ----
do_mount
kill -TERM "$pid"
for _ in $(seq 100); do
	kill -0 "$pid" 2> /dev/null || break
	sleep 0.1
done
nothing_left "SIGTERM"
do_mount
cmp "$TEST_TMPDIR/ref" "$mnt/data" || fail "data after SIGTERM and remount"
expect_exit 0 "$CMKFS" umount "$mnt"
nothing_left "umount after SIGTERM and remount"

# ---- xfs on a blank volume (mkfs.xfs wants 300 MiB at least) ----
if command -v mkfs.xfs > /dev/null; then
	xvol=$TEST_TMPDIR/x.img
	expect_exit 0 as "$host" "$CMKFS" create "$xvol" --size 320M --key-arn "$key"
	expect_exit 0 as "$host" "$CMKFS" mount --fs xfs "$xvol" "$mnt" --log "$log"
	[ "$(awk -v m="$mnt" '$2 == m { print $3 }' /proc/mounts)" = xfs ] || fail "not xfs"
	echo xfs > "$mnt/x"
	expect_exit 0 "$CMKFS" umount "$mnt"
	expect_exit 0 as "$host" "$CMKFS" mount "$xvol" "$mnt" --log "$log"
	[ "$(cat "$mnt/x")" = xfs ] || fail "xfs data lost"
	expect_exit 0 "$CMKFS" umount "$xvol"
	mounted "$mnt" && fail "xfs still mounted"
fi

# ---- a failure after the loop device is attached undoes everything ----
expect_exit 0 as "$host" "$CMKFS" create "$TEST_TMPDIR/blank.img" --size 32M --key-arn "$key"
buuid=$(printf '%s\n' "$out" | sed -n 's/^  uuid *//p')
expect_exit 1 as "$host" "$CMKFS" mount --read-only "$TEST_TMPDIR/blank.img" "$mnt" --log "$log"
contains "$err" "holds no filesystem yet, and --read-only cannot create one" "read-only blank"
mounted "$mnt" && fail "mounted after a failed mount"
[ ! -e "$CMKFS_RUNTIME_DIR/$buuid" ] || fail "runtime dir left by a failed mount"
grep -qF "$CMKFS_RUNTIME_DIR/$buuid" /proc/mounts && fail "FUSE mount left by a failed mount"
for _ in $(seq 20); do
	losetup -n -l -O BACK-FILE | grep -qF "$buuid" || break
	sleep 0.1
done
losetup -n -l -O BACK-FILE | grep -qF "$buuid" && fail "loop device left by a failed mount"

# ---- usage errors ----
expect_exit 1 as "$host" "$CMKFS" mount "$vol" "$TEST_TMPDIR/ref"
contains "$err" "not a directory" "mount on a file"
expect_exit 1 "$CMKFS" umount "$TEST_TMPDIR"
contains "$err" "is not a mounted cmkfs volume" "umount of something else"
kmsd_stop
echo ok
