#!/bin/bash
# revocation: while mounted, the daemon re-proves access to the KMS key
# every interval.  Disabling the key, scheduling its deletion, a key policy
# no longer allowing the host, or revoking the grant it used shreds the
# keys within two intervals: reads and writes fail with EIO, the daemon's
# memory holds no key any more, re-enabling does not bring the mount back,
# and a new mount works.  With a filesystem on top, a shred shuts it down:
# even a file in its page cache no longer reads, and no plaintext stays in
# the daemon's memory.  With --on-revoke keep, I/O goes on and the log
# says so.  KMS down is not a revocation: I/O goes on, warnings are logged,
# and checks succeed again when it is back.  While mounted, only secure
# memory holds the key.
# transports: both
# timeout: 300
. "$(dirname "$0")/../lib.sh"

need_mounts loop
isolate_aws
SCAN="$PYTHON $CMKFS_SRC/tests/tools/memscan.py"
state=$TEST_TMPDIR/kms
root=$state.env
host=$TEST_TMPDIR/host.env
other=$TEST_TMPDIR/other.env # another account: reaches a key only by a grant
kmsd_init "$state"
kmsd_principal "$state" arn:aws:iam::111111111111:role/db-host > "$host"
kmsd_principal "$state" arn:aws:iam::222222222222:role/db-host > "$other"
kmsd_start "$state"
key=$(as "$root" "$CMKFS" kms create-key --description volumes)
plain=$TEST_TMPDIR/plain
log=$TEST_TMPDIR/daemon.log

# io OP: one 4 KiB direct read or write at the start of the plaintext file;
# prints "ok" or the error name
io() {
	direct_io "$plain" "$1"
}
daemon_pid() {
	local uuid
	uuid=$(cryptsetup luksUUID "$1")
	sed -n 's/^pid=//p' "$CMKFS_RUNTIME_DIR/$uuid/state"
}
mount_raw() { # VOLUME [OPTIONS...], as the host (or as $who)
	local v=$1
	shift
	: > "$log"
	expect_exit 0 as "${who:-$host}" "$CMKFS" mount --raw "$v" "$plain" --log "$log" --revocation-check 1 "$@"
}

expect_exit 0 as "$host" "$CMKFS" create "$TEST_TMPDIR/v.img" --size 32M --key-arn "$key"
vol=$TEST_TMPDIR/v.img
vk=$(volume_key_of "$root" "$vol")
secret=$(xxd -p -c 256 "$TEST_TMPDIR/secret") # the keyslot secret, from KMS

# ---- mounted: the key only in secure memory; checks pass ----
mount_raw "$vol"
[ "$(io write)" = ok ] && [ "$(io read)" = ok ] || fail "I/O on a fresh mount"
sleep 2.5
expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "access last proven" "status shows the checks"
pid=$(daemon_pid "$vol")
rc=0
$SCAN "$pid" vk="$vk" vk.lo="${vk:0:64}" vk.hi="${vk:64}" secret="$secret" --allow-secmem > "$TEST_TMPDIR/scan" || rc=$?
[ $rc = 0 ] || fail "key material outside secure memory while mounted: $(cat "$TEST_TMPDIR/scan")"
grep -q "^ALLOWED" "$TEST_TMPDIR/scan" || fail "the scan did not even find the key in secure memory"

# ---- disable the key: shredded within two intervals ----
as "$root" "$CMKFS" kms disable-key "$key" 2> /dev/null
t=$(until_eio "$plain") || fail "reads still work 10 s after the key was disabled"
echo "disabled: reads fail with EIO after ${t}s"
[ "$(io write)" = EIO ] || fail "writes still work after the shred"
grep -q "SHREDDED: KMS refuses the key $key: DisabledException" "$log" || fail "no shred in the log: $(cat "$log")"
grep -q "request id" "$log" || fail "the shred does not name the KMS request"
rc=0
$SCAN "$pid" vk="$vk" vk.lo="${vk:0:64}" vk.hi="${vk:64}" secret="$secret" > "$TEST_TMPDIR/scan" || rc=$?
[ $rc = 0 ] || fail "key material in the daemon after the shred: $(cat "$TEST_TMPDIR/scan")"
expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "SHREDDED" "status after the shred"
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null
sleep 2
[ "$(io read)" = EIO ] || fail "re-enabling the key brought a shredded mount back"
expect_exit 0 "$CMKFS" umount "$plain"
mount_raw "$vol"
[ "$(io read)" = ok ] || fail "a new mount after re-enabling does not work"
expect_exit 0 "$CMKFS" umount "$plain"

# ---- a filesystem on top: shut down, no plaintext served or kept ----
mnt=$TEST_TMPDIR/mnt
mkdir "$mnt"
: > "$log"
expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt" --mkfs --log "$log" --revocation-check 1
marker=CMKFS-DATA-MARKER-7f3a9c2e51d04b8a
$PYTHON -c 'import sys; sys.stdout.write((sys.argv[1] + "\n") * 40000)' "$marker" > "$mnt/data"
sync
# Read back through the daemon (plaintext in its buffers), then once more
# from the page cache, where it stays.
echo 3 > /proc/sys/vm/drop_caches
[ "$(grep -c "$marker" "$mnt/data")" = 40000 ] && cat "$mnt/data" > /dev/null ||
	fail "the file does not read back"
pid=$(daemon_pid "$vol")
as "$root" "$CMKFS" kms disable-key "$key" 2> /dev/null
for _ in $(seq 100); do
	grep -q "SHREDDED" "$log" && break
	sleep 0.1
done
sleep 0.5 # the filesystem is shut down, the threads wipe their buffers
cat "$mnt/data" > /dev/null 2> "$TEST_TMPDIR/cat.err" && fail "a cached file still reads after the shred"
grep -q "Input/output error" "$TEST_TMPDIR/cat.err" || fail "cat after the shred: $(cat "$TEST_TMPDIR/cat.err")"
(echo x > "$mnt/new") 2> /dev/null && fail "a file could be created after the shred"
rc=0
hexmarker=$(printf %s "$marker" | xxd -p -c 256)
$SCAN "$pid" marker="$hexmarker" vk="$vk" secret="$secret" > "$TEST_TMPDIR/scan" || rc=$?
[ $rc = 0 ] || fail "plaintext or key material in the daemon after the shred: $(head "$TEST_TMPDIR/scan")"
grep -q "filesystem on $mnt shut down" "$log" || fail "no shutdown of the filesystem logged: $(cat "$log")"
expect_exit 0 "$CMKFS" status "$vol"
errors=$(sed -n 's/.* written, \([0-9]*\) errors$/\1/p' <<< "$out")
[ "${errors:-0}" -gt 0 ] || fail "status counts no errors after failed I/O: $out"
expect_exit 0 "$CMKFS" umount "$mnt"
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null

# ---- the shred while requests come one at a time ----
# Over io_uring the queue threads poll between requests (--poll-us): a
# shred that lands while they poll must still wipe what their entries hold
# before they sleep.  A reader streams 4 KiB direct reads of marked data,
# one at a time, until the shred fails them; then nothing of it is left.
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null
mount_raw "$vol" --poll-us 1000
marker=CMKFS-POLL-MARKER-3c9e71a0b5d2
$PYTHON - "$plain" "$marker" <<'P' || fail "cannot write the marked data"
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_DIRECT)
line = (sys.argv[2] + "\n").encode()
buf = mmap.mmap(-1, 1 << 20)
buf.write(line * ((1 << 20) // len(line)))
os.pwritev(fd, [buf], 0)
os.fsync(fd)
P
$PYTHON - "$plain" > "$TEST_TMPDIR/reader.out" <<'P' &
import errno, mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
end, i = time.time() + 20, 0
while time.time() < end:
    try:
        os.preadv(fd, [buf], (i % 256) * 4096)
    except OSError as e:
        print("EIO" if e.errno == errno.EIO else e)
        break
    i += 1
print(i, "reads")
P
reader=$!
sleep 1
pid=$(daemon_pid "$vol")
as "$root" "$CMKFS" kms disable-key "$key" 2> /dev/null
wait $reader
grep -q "^EIO" "$TEST_TMPDIR/reader.out" || fail "the streaming reader saw no EIO: $(cat "$TEST_TMPDIR/reader.out")"
sleep 0.5 # the threads wipe their buffers
rc=0
hexmarker=$(printf %s "$marker" | xxd -p -c 256)
$SCAN "$pid" marker="$hexmarker" vk="$vk" > "$TEST_TMPDIR/scan" || rc=$?
[ $rc = 0 ] || fail "plaintext read one request at a time stays after the shred: $(head "$TEST_TMPDIR/scan")"
expect_exit 0 "$CMKFS" umount "$plain"
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null

# ---- schedule-deletion, then the host removed from the key policy ----
as "$root" "$CMKFS" kms schedule-deletion "$key" --days 7 > /dev/null 2>&1
expect_exit 3 as "$host" "$CMKFS" mount --raw "$vol" "$plain"
contains "$err" "is pending deletion" "mount with a key pending deletion"
as "$root" "$CMKFS" kms cancel-deletion "$key" > /dev/null 2>&1
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null
mount_raw "$vol"
as "$root" "$CMKFS" kms schedule-deletion "$key" --days 7 > /dev/null 2>&1
until_eio "$plain" > /dev/null || fail "reads still work after the key was scheduled for deletion"
grep -q "SHREDDED: KMS refuses the key $key: KMSInvalidStateException" "$log" || fail "pending deletion: $(cat "$log")"
expect_exit 0 "$CMKFS" umount "$plain"
as "$root" "$CMKFS" kms cancel-deletion "$key" > /dev/null 2>&1
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null

mount_raw "$vol"
as "$root" "$CMKFS" kms call PutKeyPolicy "{\"KeyId\":\"$key\",\"PolicyName\":\"default\",\"Policy\":\"{\\\"Version\\\":\\\"2012-10-17\\\",\\\"Statement\\\":[{\\\"Effect\\\":\\\"Allow\\\",\\\"Principal\\\":{\\\"AWS\\\":\\\"arn:aws:iam::111111111111:root\\\"},\\\"Action\\\":\\\"kms:*\\\",\\\"Resource\\\":\\\"*\\\"},{\\\"Effect\\\":\\\"Deny\\\",\\\"Principal\\\":{\\\"AWS\\\":\\\"arn:aws:iam::111111111111:role/db-host\\\"},\\\"Action\\\":\\\"kms:Decrypt\\\",\\\"Resource\\\":\\\"*\\\"}]}\"}" > /dev/null ||
	fail "PutKeyPolicy"
until_eio "$plain" > /dev/null || fail "reads still work after the key policy denied the host"
grep -q "SHREDDED: KMS refuses the key $key: AccessDeniedException" "$log" || fail "policy change: $(cat "$log")"
expect_exit 0 "$CMKFS" umount "$plain"

# ---- a grant revoked: another account's role uses a key only by a grant ----
key2=$(as "$root" "$CMKFS" kms create-key --description granted)
grant=$(as "$root" "$CMKFS" kms call CreateGrant "{\"KeyId\":\"$key2\",\"GranteePrincipal\":\"arn:aws:iam::222222222222:role/db-host\",\"Operations\":[\"Decrypt\",\"GenerateDataKey\",\"DescribeKey\"]}" |
	$PYTHON -c 'import json,sys; print(json.load(sys.stdin)["GrantId"])') || fail "CreateGrant"
vol2=$TEST_TMPDIR/g.img
expect_exit 0 as "$other" "$CMKFS" create "$vol2" --size 32M --key-arn "$key2"
who=$other mount_raw "$vol2"
[ "$(io read)" = ok ] || fail "mount through the grant"
as "$root" "$CMKFS" kms revoke-grant "$key2" "$grant" > /dev/null 2>&1 || fail "revoke-grant"
until_eio "$plain" > /dev/null || fail "reads still work after the grant was revoked"
grep -q "SHREDDED: KMS refuses the key $key2: AccessDeniedException" "$log" || fail "grant revoked: $(cat "$log")"
expect_exit 0 "$CMKFS" umount "$plain"

# ---- --on-revoke keep: I/O goes on, loudly ----
as "$root" "$CMKFS" kms call PutKeyPolicy "{\"KeyId\":\"$key\",\"PolicyName\":\"default\",\"Policy\":\"{\\\"Version\\\":\\\"2012-10-17\\\",\\\"Statement\\\":[{\\\"Effect\\\":\\\"Allow\\\",\\\"Principal\\\":{\\\"AWS\\\":\\\"arn:aws:iam::111111111111:root\\\"},\\\"Action\\\":\\\"kms:*\\\",\\\"Resource\\\":\\\"*\\\"}]}\"}" > /dev/null ||
	fail "PutKeyPolicy back"
mount_raw "$vol" --on-revoke keep
as "$root" "$CMKFS" kms disable-key "$key" 2> /dev/null
sleep 3
[ "$(io read)" = ok ] && [ "$(io write)" = ok ] || fail "--on-revoke keep stopped I/O"
grep -q "ACCESS REVOKED but --on-revoke keep" "$log" || fail "keep: nothing logged: $(cat "$log")"
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null
expect_exit 0 "$CMKFS" umount "$plain"

# ---- at rest: no plaintext on disk, nothing opens it without KMS ----
mount_raw "$vol"
$PYTHON -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.pwrite(fd, b"AT-REST-MARKER-%08d " % 7 * 512, 1 << 20)
os.fsync(fd)' "$plain"
expect_exit 0 "$CMKFS" umount "$plain"
grep -q "AT-REST-MARKER" "$vol" && fail "plaintext in the volume file"
as "$root" "$CMKFS" kms disable-key "$key" 2> /dev/null
expect_exit 3 as "$host" "$CMKFS" unlock-test "$vol"
expect_exit 3 as "$host" "$CMKFS" mount --raw "$vol" "$plain"
head -c 32 /dev/urandom > "$TEST_TMPDIR/guess"
cryptsetup open --test-passphrase --key-file "$TEST_TMPDIR/guess" "$vol" 2> /dev/null &&
	fail "cryptsetup opened the volume without the KMS-unwrapped secret"
[ "$(cryptsetup luksDump "$vol" | grep -c '^  [0-9]*: luks2$')" = 1 ] ||
	fail "a keyslot besides the KMS-bound one"
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null

# ---- KMS down: not a revocation ----
mount_raw "$vol" --kms-timeout 1
port=${KMSD_URL##*:}
kmsd_stop
sleep 4
[ "$(io read)" = ok ] && [ "$(io write)" = ok ] || fail "I/O stopped while KMS was down"
grep -q "cannot check access to $key" "$log" || fail "no warning while KMS was down: $(cat "$log")"
grep -q SHREDDED "$log" && fail "shredded because KMS was down"
"$KMSD" serve --state "$state" --listen "127.0.0.1:$port" --log "$state.log" > "$state.out" 2>&1 &
KMSD_PID=$!
for i in $(seq 100); do
	grep -q "KMS answers again" "$log" && break
	sleep 0.2
done
grep -q "KMS answers again" "$log" || fail "checks did not succeed again after KMS came back: $(tail "$log")"
[ "$(io read)" = ok ] || fail "I/O after KMS came back"
expect_exit 0 "$CMKFS" umount "$plain"
kmsd_stop
