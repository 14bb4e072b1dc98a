#!/bin/bash
# mount-stop: a daemon stopped with SIGTERM (systemd's stop, `kill`) while
# its filesystem holds data not yet written back loses none of it.  Idle:
# the daemon unmounts the filesystem itself, which writes everything back
# through it, and leaves nothing behind.  Busy (a process inside it): the
# daemon flushes the filesystem and shuts it down — further writes fail
# instead of vanishing — and `cmkfs umount` finishes once it is free.
# Alive elsewhere (a bind mount): the daemon's unmount leaves it mounted,
# so it finds it there and flushes and shuts it down as a busy one.
# Either way, the next mount has every byte.
# transports: both
# timeout: 180
. "$(dirname "$0")/../lib.sh"

need_mounts loop
isolate_aws
kmsd_with_host
vol=$TEST_TMPDIR/v.img
mnt=$TEST_TMPDIR/mnt
log=$TEST_TMPDIR/daemon.log
mkdir "$mnt"
expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 128M --key-arn "$key"
uuid=$(printf '%s\n' "$out" | sed -n 's/^  uuid *//p')

do_mount() {
	expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt" --log "$log"
	pid=$(sed -n 's/.*daemon pid \([0-9]*\).*/\1/p' <<< "$out")
}
# dirty NAME: 20 MB of random data into the filesystem, not synced (still
# in the page cache when the daemon is stopped); its checksum in $sum
dirty() {
	head -c 20M /dev/urandom > "$TEST_TMPDIR/ref"
	sum=$(sha256sum < "$TEST_TMPDIR/ref")
	cp "$TEST_TMPDIR/ref" "$mnt/$1"
	[ "$(awk '/^Dirty:/ { print $2 }' /proc/meminfo)" -gt 1000 ] ||
		echo "note: little dirty data left; the stop may find it written already"
}
stop_daemon() {
	kill -TERM "$pid"
	for _ in $(seq 150); do
		kill -0 "$pid" 2> /dev/null || return 0
		sleep 0.1
	done
	fail "the daemon did not exit within 15 s of SIGTERM"
}

# ---- idle: the daemon unmounts the filesystem itself ----
do_mount
dirty idle
stop_daemon
grep -q "unmounted $mnt" "$log" || fail "the daemon did not unmount: $(cat "$log")"
grep -q " $mnt " /proc/mounts && fail "still mounted after SIGTERM"
[ ! -e "$CMKFS_RUNTIME_DIR/$uuid" ] || fail "runtime state left after a clean stop"
do_mount
[ "$(sha256sum < "$mnt/idle")" = "$sum" ] || fail "data written before SIGTERM is lost (idle)"
expect_exit 0 "$CMKFS" umount "$mnt"

# ---- busy: flushed and shut down; umount finishes once free ----
: > "$log"
do_mount
dirty busy
(cd "$mnt" && exec sleep 600) &
holder=$!
sleep 0.2
stop_daemon
grep -q "cannot unmount $mnt" "$log" && grep -q "flushed to the volume and shut down" "$log" ||
	fail "no flush and shutdown of the busy filesystem: $(cat "$log")"
(echo late > "$mnt/late") 2> /dev/null && fail "a write after the stop succeeded (it would be lost)"
kill "$holder"
wait "$holder" 2> /dev/null || true
expect_exit 0 "$CMKFS" umount "$mnt"
contains "$out" "its daemon had died; cleaned up" "umount after a stop while busy"
do_mount
[ "$(sha256sum < "$mnt/busy")" = "$sum" ] || fail "data written before SIGTERM is lost (busy)"
[ "$(sha256sum < "$mnt/idle")" != "" ] || fail "the first file is gone"
expect_exit 0 "$CMKFS" umount "$mnt"

# ---- elsewhere: a bind mount keeps the filesystem alive after the
# daemon's own unmount; that unmount is not taken for a clean one ----
other=$TEST_TMPDIR/other
mkdir "$other"
: > "$log"
do_mount
mount --bind "$mnt" "$other" || fail "cannot bind-mount $mnt"
dirty elsewhere
stop_daemon
grep -q "is still mounted elsewhere" "$log" ||
	fail "the daemon took the unmount of $mnt for a clean stop: $(cat "$log")"
grep -q "flushed to the volume and shut down" "$log" ||
	fail "the bind mount was not found and shut down: $(cat "$log")"
(echo late > "$other/late") 2> /dev/null && fail "a write through the bind mount after the stop succeeded (it would be lost)"
umount "$other" 2> /dev/null || umount -l "$other"
expect_exit 0 "$CMKFS" umount "$mnt"
do_mount
[ "$(sha256sum < "$mnt/elsewhere")" = "$sum" ] ||
	fail "data written before SIGTERM is lost (bind-mounted elsewhere)"
e2fsck_out=$TEST_TMPDIR/fsck
expect_exit 0 "$CMKFS" umount "$mnt"
expect_exit 0 as "$host" "$CMKFS" mount --raw "$vol" "$TEST_TMPDIR/plain"
e2fsck -fn "$TEST_TMPDIR/plain" > "$e2fsck_out" 2>&1 || fail "e2fsck after the stops: $(cat "$e2fsck_out")"
expect_exit 0 "$CMKFS" umount "$TEST_TMPDIR/plain"
kmsd_stop
echo ok
