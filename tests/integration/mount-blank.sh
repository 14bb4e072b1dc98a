#!/bin/bash
# mount-blank: a mount formats only what holds nothing.  `cmkfs create`
# marks a new volume blank (a cmkfs-blank token); its first mount makes the
# filesystem and drops the mark.  A volume written through --raw (no
# filesystem signature) is refused, with the way out (--mkfs), and keeps its
# data, even after a header backup made before the write is restored;
# --mkfs formats it; a volume that reads as zeros all through is formatted
# (a stop during that check is not kept waiting); so is one made by
# `create --mkfs`.  A volume file that does not end on a sector boundary:
# the partial sector is left out of the plaintext (and status says so), so
# I/O at the end works.
# transports: both
# timeout: 240
. "$(dirname "$0")/../lib.sh"

need_mounts loop
isolate_aws
kmsd_with_host
vol=$TEST_TMPDIR/v.img
plain=$TEST_TMPDIR/plain
mnt=$TEST_TMPDIR/mnt
log=$TEST_TMPDIR/daemon.log
mkdir "$mnt"

blank_tokens() {
	cryptsetup luksDump --dump-json-metadata "$1" |
		$PYTHON -c 'import json, sys
print(sum(t["type"] == "cmkfs-blank" for t in json.load(sys.stdin)["tokens"].values()))'
}
fstype() { awk -v m="$mnt" '$2 == m { print $3 }' /proc/mounts; }
# write_marker FILE: a marker at 1 MiB through the plaintext file
write_marker() {
	$PYTHON -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, b"RAW-DATA-MARKER " * 256, 1 << 20)
os.fsync(fd)' "$1"
}
has_marker() {
	$PYTHON -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
sys.exit(os.pread(fd, 4096, 1 << 20) != b"RAW-DATA-MARKER " * 256)' "$1"
}

# ---- a new volume is marked blank; its first mount formats it ----
expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 64M --key-arn "$key"
[ "$(blank_tokens "$vol")" = 1 ] || fail "create did not mark the volume blank"
expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt" --log "$log"
grep -q "blank, creating ext4" "$log" || fail "the blank volume was not formatted: $(cat "$log")"
[ "$(fstype)" = ext4 ] || fail "not ext4 after the first mount"
[ "$(blank_tokens "$vol")" = 0 ] || fail "the blank mark stayed after the filesystem was made"
expect_exit 0 "$CMKFS" umount "$mnt"

# ---- written through --raw: never formatted without --mkfs ----
expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 64M --key-arn "$key" --force
expect_exit 0 as "$host" "$CMKFS" mount --raw "$vol" "$plain"
[ "$(blank_tokens "$vol")" = 0 ] || fail "a --raw mount kept the blank mark"
write_marker "$plain"
expect_exit 0 "$CMKFS" umount "$plain"
: > "$log"
expect_exit 1 as "$host" "$CMKFS" mount "$vol" "$mnt" --log "$log"
contains "$err" "holds no filesystem, but it is not blank" "mount of a written volume"
contains "$err" "--mkfs" "the way out"
grep -q "creating" "$log" && fail "a written volume was formatted: $(cat "$log")"
grep -q " $mnt " /proc/mounts && fail "mounted although refused"
expect_exit 0 as "$host" "$CMKFS" mount --raw "$vol" "$plain"
has_marker "$plain" || fail "the refused mount changed the data"
expect_exit 0 "$CMKFS" umount "$plain"
# --mkfs formats it
expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt" --mkfs --log "$log"
grep -q "no filesystem and --mkfs, creating ext4" "$log" || fail "--mkfs did not format: $(cat "$log")"
echo kept > "$mnt/file"
expect_exit 0 "$CMKFS" umount "$mnt"
# ...and never again: a filesystem is mounted as it is, even with --mkfs
expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt" --mkfs --log "$log"
[ "$(cat "$mnt/file")" = kept ] || fail "--mkfs formatted an existing filesystem"
expect_exit 0 "$CMKFS" umount "$mnt"

# ---- a header backup made before the first write: restoring it does not
# bring the blank mark back (the next mount would format the data) ----
expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 64M --key-arn "$key" --force
rm -f "$TEST_TMPDIR/hdr" "$TEST_TMPDIR/hdr2"
expect_exit 0 "$CMKFS" header-backup "$vol" "$TEST_TMPDIR/hdr"
expect_exit 0 "$CMKFS" header-restore "$vol" "$TEST_TMPDIR/hdr"
[ "$(blank_tokens "$vol")" = 1 ] || fail "restoring onto a never-written volume dropped its blank mark"
expect_exit 0 as "$host" "$CMKFS" mount --raw "$vol" "$plain"
write_marker "$plain"
expect_exit 0 "$CMKFS" umount "$plain"
expect_exit 0 "$CMKFS" header-restore "$vol" "$TEST_TMPDIR/hdr"
[ "$(blank_tokens "$vol")" = 0 ] || fail "the restored header carries the blank mark"
expect_exit 1 as "$host" "$CMKFS" mount "$vol" "$mnt"
contains "$err" "not blank" "mount after restoring a pre-write backup"
expect_exit 0 as "$host" "$CMKFS" mount --raw "$vol" "$plain"
has_marker "$plain" || fail "the data is gone after the header restore"
expect_exit 0 "$CMKFS" umount "$plain"

# ---- a volume that reads as zeros all through is formatted ----
expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 64M --key-arn "$key" --force
expect_exit 0 as "$host" "$CMKFS" mount --raw "$vol" "$plain"
dd if=/dev/zero of="$plain" bs=1M count=64 conv=notrunc,fsync status=none ||
	fail "zeroing the volume"
expect_exit 0 "$CMKFS" umount "$plain"
: > "$log"
expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt" --log "$log"
grep -q "reads as zeros, creating ext4" "$log" || fail "a zeroed volume was not formatted: $(cat "$log")"
expect_exit 0 "$CMKFS" umount "$mnt"
# one byte is enough to refuse
expect_exit 0 as "$host" "$CMKFS" mount --raw "$vol" "$plain"
dd if=/dev/zero of="$plain" bs=1M count=64 conv=notrunc,fsync status=none
printf x | dd of="$plain" bs=1 seek=$((64 * 1048576 - 1)) conv=notrunc,fsync status=none
expect_exit 0 "$CMKFS" umount "$plain"
expect_exit 1 as "$host" "$CMKFS" mount "$vol" "$mnt"
contains "$err" "not blank" "a volume with one byte at its end"

# ---- a stop while a large volume is checked for zeros is not kept
# waiting (a cipher_null volume grown sparse to 64 GiB: it reads as zeros
# and takes no room) ----
big=$TEST_TMPDIR/big.img
expect_exit 0 as "$host" "$CMKFS" create "$big" --size 16M --key-arn "$key" --cipher null --insecure
truncate -s 64G "$big"
cryptsetup token remove --token-id "$(cryptsetup luksDump --dump-json-metadata "$big" |
	$PYTHON -c 'import json, sys
print([i for i, t in json.load(sys.stdin)["tokens"].items() if t["type"] == "cmkfs-blank"][0])')" "$big" ||
	fail "cannot remove the blank mark"
: > "$log"
(. "$host" && export AWS_ENDPOINT_URL_KMS=$KMSD_URL &&
	exec "$CMKFS" mount --foreground --insecure "$big" "$mnt" --log "$log") > /dev/null 2> "$TEST_TMPDIR/fg.err" &
pid=$!
big_uuid=$(cryptsetup luksUUID "$big")
# the check runs once the loop device stands on the daemon's plaintext
for _ in $(seq 100); do
	losetup -n -l -O BACK-FILE | grep -q "$big_uuid/plain" && break
	kill -0 "$pid" 2> /dev/null || fail "the mount ended early: $(cat "$log")"
	sleep 0.1
done
sleep 0.5
kill -TERM "$pid"
for _ in $(seq 50); do
	kill -0 "$pid" 2> /dev/null || break
	sleep 0.1
done
kill -0 "$pid" 2> /dev/null && fail "SIGTERM during the zero check of 64 GiB did not stop the mount within 5 s: $(cat "$log")"
wait "$pid" 2> /dev/null || true
grep -q "stopped by a signal while checking that $big reads as zeros" "$TEST_TMPDIR/fg.err" ||
	fail "the stop did not come during the zero check: $(cat "$TEST_TMPDIR/fg.err" "$log")"
grep -q " $mnt " /proc/mounts && fail "mounted although stopped"

# ---- create --mkfs: ready to mount, the mark gone ----
expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 64M --key-arn "$key" --force --mkfs ext4
[ "$(blank_tokens "$vol")" = 0 ] || fail "create --mkfs left the blank mark"
: > "$log"
expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt" --log "$log"
grep -q "creating" "$log" && fail "create --mkfs's filesystem was made again"
[ "$(fstype)" = ext4 ] || fail "create --mkfs: not ext4"
expect_exit 0 "$CMKFS" umount "$mnt"

# ---- a volume file that does not end on a sector boundary ----
expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 64M --key-arn "$key" --force
truncate -s +1000 "$vol"
expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "unused       the last 1000 bytes of the file: not a whole sector" "status of a partial sector"
contains "$out" "(67108864 bytes)" "data size of a partial sector"
expect_exit 0 "$CMKFS" status --json "$vol"
$PYTHON -c 'import json, sys
v = json.loads(sys.argv[1])
assert v["data_size"] == 64 << 20 and v["unused_tail"] == 1000, v' "$out" || fail "status --json of a partial sector"
expect_exit 0 as "$host" "$CMKFS" mount --raw "$vol" "$plain"
[ "$(stat -c %s "$plain")" = $((64 << 20)) ] || fail "plaintext size $(stat -c %s "$plain")"
# the last sector, through the page-aligned direct path and the unaligned one
dd if=/dev/urandom of="$TEST_TMPDIR/tail" bs=4096 count=1 status=none
dd if="$TEST_TMPDIR/tail" of="$plain" bs=4096 seek=$((64 * 256 - 1)) oflag=direct conv=notrunc status=none ||
	fail "direct write of the last sector"
cmp <(dd if="$plain" bs=4096 skip=$((64 * 256 - 1)) iflag=direct status=none) "$TEST_TMPDIR/tail" ||
	fail "the last sector reads back wrong"
printf 'end' | dd of="$plain" bs=1 seek=$((64 * 1048576 - 3)) conv=notrunc status=none ||
	fail "unaligned write at the end"
[ "$(tail -c 3 "$plain")" = end ] || fail "unaligned read at the end"
expect_exit 0 "$CMKFS" umount "$plain"
kmsd_stop
echo ok
