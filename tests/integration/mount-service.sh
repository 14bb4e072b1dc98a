#!/bin/bash
# mount-service: what a database host's boot relies on — `create --mkfs`
# makes a ready-to-mount volume; a mounted volume refuses header-restore but
# is reencrypted (by its daemon) and rotated online; a volume being changed
# offline refuses to mount; `mount --foreground` tells the service manager
# it is ready (sd_notify) only once the filesystem is mounted; and the
# systemd unit template is valid.
# transports: both
# timeout: 240
. "$(dirname "$0")/../lib.sh"

need_mounts loop
isolate_aws

kmsd_up
key1=$(as "$root" "$CMKFS" kms create-key --description one)
key2=$(as "$root" "$CMKFS" kms create-key --description two)
vol=$TEST_TMPDIR/v.img
mnt=$TEST_TMPDIR/mnt
mkdir -p "$mnt"
mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts; }

# ---- create --mkfs: the first mount finds a filesystem ----
expect_exit 0 as "$root" "$CMKFS" create "$vol" --size 64M --key-arn "$key1" --mkfs ext4
contains "$out" "filesystem   ext4" "create --mkfs"
mounted "$TEST_TMPDIR" && fail "create --mkfs left a mount"
expect_exit 0 as "$root" "$CMKFS" mount "$vol" "$mnt"
[ "$(findmnt -n -o FSTYPE "$mnt")" = ext4 ] || fail "not ext4 after create --mkfs: $(findmnt -n -o FSTYPE "$mnt")"
[ -d "$mnt/lost+found" ] || fail "no lost+found: the filesystem is not the one create made"
echo "written before the rotation" > "$mnt/note"
sync

# ---- mounted: header-restore refused; reencrypt runs in the daemon,
# rotation is allowed ----
expect_exit 0 "$CMKFS" header-backup "$vol" "$TEST_TMPDIR/hdr"
expect_exit 1 "$CMKFS" header-restore "$vol" "$TEST_TMPDIR/hdr"
contains "$err" "is mounted: unmount it first" "header-restore while mounted"
expect_exit 0 as "$root" "$CMKFS" reencrypt "$vol"
contains "$out" "reencrypted $vol online" "reencrypt while mounted"
expect_exit 0 as "$root" "$CMKFS" rotate "$vol" --key-arn "$key2"
echo "written after" >> "$mnt/note"
expect_exit 0 as "$root" "$CMKFS" umount "$mnt"
# the host pins the CMK (CMKFS_KEY_ARN, as the unit's config does): pinned
# to the key the volume left, the mount is refused and says why
expect_exit 1 as "$root" env CMKFS_KEY_ARN="$key1" "$CMKFS" mount "$vol" "$mnt"
contains "$err" "names the key $key2, not $key1" "mount pinned to the key before the rotation"
mounted "$mnt" && fail "mounted through a key that is not the pinned one"
expect_exit 0 as "$root" env CMKFS_KEY_ARN="$key2" "$CMKFS" mount "$vol" "$mnt"
[ "$(cat "$mnt/note")" = "written before the rotation
written after" ] || fail "data across an online rotation: $(cat "$mnt/note")"
expect_exit 0 as "$root" "$CMKFS" umount "$mnt"

# ---- being changed offline: mount refused ----
$PYTHON -c 'import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 2, 0))
print("locked", flush=True)
time.sleep(60)' "$vol" > "$TEST_TMPDIR/locker.out" &
locker=$!
await_output "$TEST_TMPDIR/locker.out" 's/^\(locked\)$/\1/p' "$locker" > /dev/null || fail "could not lock the volume"
expect_exit 1 as "$root" "$CMKFS" mount "$vol" "$mnt"
contains "$err" "is being changed offline by another cmkfs command" "mount while locked"
mounted "$mnt" && fail "mounted while being changed offline"
kill "$locker"
wait "$locker" 2> /dev/null || true

# ---- --foreground: READY=1 only once mounted ----
$PYTHON -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
msg = s.recv(4096).decode()
mounted = any(l.split()[1] == sys.argv[2] for l in open("/proc/mounts"))
print("%s %s" % (msg.strip(), "mounted" if mounted else "NOT-MOUNTED"), flush=True)' \
	"$TEST_TMPDIR/notify" "$mnt" > "$TEST_TMPDIR/notify.out" &
listener=$!
await_output "$TEST_TMPDIR/notify.out" 's/^\(listening\)$/\1/p' "$listener" > /dev/null || fail "no notify listener"
(. "$root" && export AWS_ENDPOINT_URL_KMS=$KMSD_URL NOTIFY_SOCKET=$TEST_TMPDIR/notify &&
	exec "$CMKFS" mount --foreground "$vol" "$mnt") > "$TEST_TMPDIR/fg.out" 2>&1 &
fg=$!
got=$(await_output "$TEST_TMPDIR/notify.out" 's/^\(READY=1 .*\)$/\1/p' "$listener") ||
	fail "no READY=1 from mount --foreground: $(cat "$TEST_TMPDIR/fg.out")"
[ "$got" = "READY=1 mounted" ] || fail "notified before the mount was usable: $got"
[ "$(cat "$mnt/note" | wc -l)" = 2 ] || fail "foreground mount does not show the data"
expect_exit 0 "$CMKFS" umount "$mnt"
wait "$fg" || fail "mount --foreground exited $? after umount: $(cat "$TEST_TMPDIR/fg.out")"
wait "$listener" 2> /dev/null || true

# ---- a mount pinned to its CMK is reencrypted online to another: the
# daemon takes the new key (the header was prepared by one who held the
# key it serves), and the next mount must be pinned to the new CMK ----
expect_exit 0 as "$root" "$CMKFS" mount --key-arn "$key2" "$vol" "$mnt"
expect_exit 0 as "$root" "$CMKFS" reencrypt "$vol" --key-arn "$key1"
contains "$out" "reencrypted $vol online" "online reencryption to another CMK of a pinned mount"
echo "written under key one" >> "$mnt/note"
expect_exit 0 as "$root" "$CMKFS" umount "$mnt"
expect_exit 1 as "$root" "$CMKFS" mount --key-arn "$key2" "$vol" "$mnt"
contains "$err" "names the key $key1, not $key2" "the pin after the CMK changed"
expect_exit 0 as "$root" "$CMKFS" mount --key-arn "$key1" "$vol" "$mnt"
[ "$(tail -n 1 "$mnt/note")" = "written under key one" ] || fail "data across the online reencryption: $(cat "$mnt/note")"
expect_exit 0 as "$root" "$CMKFS" umount "$mnt"

# ---- the unit template, as make install writes it ----
if command -v systemd-analyze > /dev/null; then
	unit=$TEST_TMPDIR/cmkfs@db.service
	sed "s|/usr/local/bin/|$CMKFS_BUILD/|g" "$CMKFS_SRC/systemd/cmkfs@.service" > "$unit"
	# Its Documentation= pages, where man finds them.
	mkdir -p "$TEST_TMPDIR/man/man8" "$TEST_TMPDIR/man/man5"
	cp "$CMKFS_BUILD"/man/*.8 "$TEST_TMPDIR/man/man8/"
	cp "$CMKFS_BUILD"/man/*.5 "$TEST_TMPDIR/man/man5/"
	MANPATH=$TEST_TMPDIR/man systemd-analyze verify "$unit" > "$TEST_TMPDIR/verify" 2>&1 ||
		fail "systemd-analyze verify: $(cat "$TEST_TMPDIR/verify")"
	[ ! -s "$TEST_TMPDIR/verify" ] || fail "systemd-analyze verify: $(cat "$TEST_TMPDIR/verify")"
	grep -q '^Type=notify$' "$unit" || fail "the unit is not Type=notify"
	grep -q '^ExecStart=.*cmkfs mount --foreground' "$unit" || fail "the unit does not mount in the foreground"
	grep -q '^ExecStop=.*cmkfs umount' "$unit" || fail "the unit does not unmount on stop"
else
	echo "systemd-analyze not installed: the unit file was not verified"
fi
kmsd_stop
