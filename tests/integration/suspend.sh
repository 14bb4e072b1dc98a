#!/bin/bash
# suspend: --on-revoke suspend.  When KMS refuses the key, the
# daemon wipes every key and holds I/O instead of failing it; the time from
# the refusal in KMS to the first held request is measured against the
# documented bound.  While suspended the daemon's memory holds no key and
# no keyslot secret (memory scan), status says so, `cmkfs umount` explains
# why it cannot unmount; when the key is enabled again the held write lands,
# the data reads back, and the key is back in secure memory only.  A header
# rewritten while suspended (a keyslot that opens with the same secret but
# holds another volume key) does not end the suspension; the real header
# put back does.  After a rotation to another CMK while mounted, the resume
# finds the token that gates the volume now, and the checks follow it.
# --suspend-timeout turns a suspension into a shred, and so does stopping
# the daemon (a raw mount with a held write; a filesystem with unwritten
# data: it stops, nothing hangs).  A reencryption stopped by a suspension goes on
# after it.  Then PostgreSQL: pgbench on a suspended volume stalls and goes
# on after the key is enabled again; pg_amcheck is clean and the balances
# hold.
# transports: both
# timeout: 400
. "$(dirname "$0")/../lib.sh"

need_mounts loop
isolate_aws
. "$CMKFS_SRC/tests/pg.sh"
SCAN="$PYTHON $CMKFS_SRC/tests/tools/memscan.py"
kmsd_with_host
vol=$TEST_TMPDIR/v.img
plain=$TEST_TMPDIR/plain
log=$TEST_TMPDIR/daemon.log

daemon_pid() {
	sed -n 's/^pid=//p' "$CMKFS_RUNTIME_DIR/$(cryptsetup luksUUID "$vol")/state"
}
mount_raw() { # [OPTIONS...]
	: > "$log"
	mark=1
	expect_exit 0 as "$host" "$CMKFS" mount --raw "$vol" "$plain" --log "$log" \
		--revocation-check 1 --on-revoke suspend "$@"
}
disable() { as "$root" "$CMKFS" kms disable-key "$key" 2> /dev/null || fail "disable-key"; }
enable() { as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null || fail "enable-key"; }
# held: a 4 KiB direct read of the plaintext file does not finish within
# 0.3 s.  Its process is then killed, but lives on until the daemon answers
# (a FUSE request the daemon has taken waits for its answer, even on
# SIGKILL); timeout does not wait for it.
held() {
	local rc
	rc=$( (timeout -s KILL 0.3 $PYTHON - "$plain" <<'P' > /dev/null 2>&1
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
os.preadv(fd, [mmap.mmap(-1, 4096)], 0)
P
		echo $?) 2> /dev/null)
	[ "$rc" = 137 ]
}
# pwrite_at OFFSET TEXT: TEXT repeated over 4 KiB at OFFSET, direct, then
# fsync; prints ok or the error's name
pwrite_at() {
	$PYTHON - "$plain" "$1" "$2" <<'P'
import errno, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
buf.write((sys.argv[3].encode() * 4096)[:4096])
try:
    os.pwritev(fd, [buf], int(sys.argv[2]))
    os.fsync(fd)
    print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])
P
}
# read_at OFFSET: the first 16 bytes at OFFSET (direct), or the error's name
read_at() {
	$PYTHON - "$plain" "$1" <<'P'
import errno, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
try:
    os.preadv(fd, [buf], int(sys.argv[2]))
    print(buf[:16].decode(errors="replace"))
except OSError as e:
    print(errno.errorcode[e.errno])
P
}
# log_mark: wait_log looks only at what the daemon logs after this
log_mark() { mark=$(($(wc -l < "$log") + 1)); }
wait_log() { # PATTERN SECONDS
	local i
	for i in $(seq $(($2 * 10))); do
		tail -n "+${mark:-1}" "$log" | grep -q "$1" && return 0
		sleep 0.1
	done
	return 1
}
scan_none() { # WHAT: no key, no secret anywhere in the daemon
	local rc=0
	$SCAN "$(daemon_pid)" vk="$vk" vk.lo="${vk:0:64}" vk.hi="${vk:64}" secret="$secret" > "$TEST_TMPDIR/scan" || rc=$?
	[ $rc = 0 ] || fail "$1: key material in the daemon: $(head "$TEST_TMPDIR/scan")"
}

expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 64M --key-arn "$key"
vk=$(volume_key_of "$root" "$vol")
secret=$(xxd -p -c 256 "$TEST_TMPDIR/secret")

# ---- refused: held, not failed; resumed: the held write lands ----
mount_raw --suspend-timeout 0
[ "$(pwrite_at 0 BEFORE-SUSPEND--)" = ok ] || fail "write before the suspension"
t0=$(date +%s.%N)
disable
for _ in $(seq 100); do
	held && break
done
held || fail "I/O is not held after the key was disabled: $(cat "$log")"
t=$($PYTHON -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)")
echo "key disabled in KMS -> I/O held after ${t} s (revocation check every 1 s; documented bound: 1 + 0.1 s + one KMS round trip)"
$PYTHON -c "import sys; sys.exit(float(sys.argv[1]) > 3.5)" "$t" ||
	fail "held only after $t s, beyond interval + jitter + a KMS round trip"
wait_log "SUSPENDED: KMS refuses the key $key: DisabledException" 5 || fail "no suspension in the log: $(cat "$log")"
pwrite_at $((1 << 20)) HELD-WRITE-MARKR > "$TEST_TMPDIR/held.out" &
writer=$!
sleep 2
kill -0 "$writer" 2> /dev/null || fail "a write finished while suspended: $(cat "$TEST_TMPDIR/held.out")"
expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "SUSPENDED" "status while suspended"
contains "$out" "DisabledException" "status names the refusal"
expect_exit 0 "$CMKFS" status "$vol" --json
$PYTHON -c 'import json, sys
m = json.loads(sys.argv[1])["mount"]
assert m["suspended"] is True and m["on_revoke"] == "suspend", m
assert m["suspended_since"] > 0 and "DisabledException" in m["last_refusal"], m' "$out" ||
	fail "status --json while suspended: $out"
scan_none "suspended"
expect_exit 1 "$CMKFS" umount "$plain"
contains "$err" "is suspended" "umount while suspended"
enable
wait "$writer" || fail "the held writer failed"
[ "$(cat "$TEST_TMPDIR/held.out")" = ok ] || fail "the held write: $(cat "$TEST_TMPDIR/held.out")"
wait_log "RESUMED: KMS allows $key again" 5 || fail "no resume in the log: $(cat "$log")"
[ "$(read_at 0)" = BEFORE-SUSPEND-- ] || fail "data written before the suspension: $(read_at 0)"
[ "$(read_at $((1 << 20)))" = HELD-WRITE-MARKR ] || fail "the held write: $(read_at $((1 << 20)))"
rc=0
$SCAN "$(daemon_pid)" vk="$vk" vk.lo="${vk:0:64}" vk.hi="${vk:64}" secret="$secret" --allow-secmem > "$TEST_TMPDIR/scan" || rc=$?
[ $rc = 0 ] || fail "key material outside secure memory after the resume: $(head "$TEST_TMPDIR/scan")"
grep -q "^ALLOWED" "$TEST_TMPDIR/scan" || fail "the resumed daemon holds no key"
expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "access last proven" "status after the resume"

# ---- a header rewritten while suspended brings no key of its own ----
slot=$(cryptsetup luksDump --dump-json-metadata "$vol" | $PYTHON -c 'import json, sys; print(next(iter(json.load(sys.stdin)["keyslots"])))')
ss=$(cryptsetup luksDump --dump-json-metadata "$vol" | $PYTHON -c 'import json, sys; print(json.load(sys.stdin)["segments"]["0"]["sector_size"])')
truncate -s 64M "$TEST_TMPDIR/fake.img"
cryptsetup luksFormat --type luks2 -q --uuid "$(cryptsetup luksUUID "$vol")" --key-file "$TEST_TMPDIR/secret" \
	--key-slot "$slot" --cipher aes-xts-plain64 --key-size 512 --sector-size "$ss" --offset 32768 \
	--pbkdf pbkdf2 --pbkdf-force-iterations 1000 "$TEST_TMPDIR/fake.img" || fail "luksFormat of the fake header"
# with the volume's own token: KMS unwraps the same secret for it
tid=$(cryptsetup luksDump --dump-json-metadata "$vol" | $PYTHON -c 'import json, sys; print(next(i for i, t in json.load(sys.stdin)["tokens"].items() if t["type"] == "aws-kms"))')
cryptsetup token export --token-id "$tid" "$vol" > "$TEST_TMPDIR/token.json"
cryptsetup token import --token-id "$tid" --json-file "$TEST_TMPDIR/token.json" "$TEST_TMPDIR/fake.img" ||
	fail "token import into the fake header"
dd if="$vol" of="$TEST_TMPDIR/real.hdr" bs=1M count=16 status=none
log_mark
disable
wait_log "SUSPENDED" 5 || fail "not suspended again"
dd if="$TEST_TMPDIR/fake.img" of="$vol" bs=1M count=16 conv=notrunc status=none
enable
wait_log "no longer opens the volume key this mount served" 10 || fail "a rewritten header: $(tail "$log")"
held || fail "I/O went on under a header rewritten while suspended"
tail -n "+$mark" "$log" | grep -q RESUMED && fail "resumed under a rewritten header: $(cat "$log")"
dd if="$TEST_TMPDIR/real.hdr" of="$vol" bs=1M count=16 conv=notrunc status=none
wait_log "RESUMED" 10 || fail "the real header put back did not resume: $(tail "$log")"
[ "$(read_at $((1 << 20)))" = HELD-WRITE-MARKR ] || fail "data after the header was put back"
expect_exit 0 "$CMKFS" umount "$plain"

# ---- rotated while mounted: the resume finds the token that gates it now ----
key2=$(as "$root" "$CMKFS" kms create-key --description rotated)
mount_raw --suspend-timeout 0
expect_exit 0 as "$host" "$CMKFS" rotate "$vol" --key-arn "$key2"
log_mark
disable # the old key: the mount re-proves the token it was opened with
wait_log "SUSPENDED" 5 || fail "not suspended after the old key was disabled: $(tail "$log")"
wait_log "RESUMED" 10 || fail "no resume through the rotated token: $(tail "$log")"
[ "$(read_at $((1 << 20)))" = HELD-WRITE-MARKR ] || fail "data after a resume through the rotated token"
log_mark
as "$root" "$CMKFS" kms disable-key "$key2" 2> /dev/null || fail "disable-key 2"
wait_log "SUSPENDED: KMS refuses the key $key2" 5 || fail "the checks do not follow the rotated token: $(tail "$log")"
as "$root" "$CMKFS" kms enable-key "$key2" 2> /dev/null || fail "enable-key 2"
wait_log "RESUMED" 10 || fail "no resume after the new key came back: $(tail "$log")"
enable
expect_exit 0 "$CMKFS" umount "$plain"
expect_exit 0 as "$host" "$CMKFS" rotate "$vol" --key-arn "$key"

# ---- --suspend-timeout: the suspension ends in a shred ----
mount_raw --suspend-timeout 2
disable
wait_log "SUSPENDED" 5 || fail "not suspended: $(cat "$log")"
pwrite_at 8192 SHRED-HELD-WRITE > "$TEST_TMPDIR/shredheld.out" &
writer=$!
r=$(read_at 0) # held, then failed when the timeout shreds
[ "$r" = EIO ] || fail "a read held past --suspend-timeout: $r"
wait "$writer"
[ "$(cat "$TEST_TMPDIR/shredheld.out")" = EIO ] || fail "a write held past --suspend-timeout: $(cat "$TEST_TMPDIR/shredheld.out")"
grep -q "SHREDDED: suspended for longer than --suspend-timeout (2 s)" "$log" || fail "timeout: $(cat "$log")"
enable
sleep 2
[ "$(read_at 0)" = EIO ] || fail "a shredded mount came back"
# the held write's plaintext went with the shred, as the keys did
rc=0
$SCAN "$(daemon_pid)" vk="$vk" vk.lo="${vk:0:64}" vk.hi="${vk:64}" secret="$secret" \
	held="$(printf SHRED-HELD-WRITE | xxd -p)" > "$TEST_TMPDIR/scan" || rc=$?
[ $rc = 0 ] || fail "shredded after the timeout: key or held plaintext in the daemon: $(head "$TEST_TMPDIR/scan")"
expect_exit 0 "$CMKFS" umount "$plain"

# ---- the daemon stopped while suspended: held writes fail, nothing hangs ----
mount_raw --suspend-timeout 0
pid=$(daemon_pid)
disable
wait_log "SUSPENDED" 5 || fail "not suspended: $(cat "$log")"
pwrite_at 8192 LOST-WRITE------ > "$TEST_TMPDIR/lost.out" &
writer=$!
sleep 1
kill -TERM "$pid"
wait "$writer"
[ "$(cat "$TEST_TMPDIR/lost.out")" = EIO ] || fail "a write held when the daemon stopped: $(cat "$TEST_TMPDIR/lost.out")"
for _ in $(seq 100); do
	kill -0 "$pid" 2> /dev/null || break
	sleep 0.1
done
kill -0 "$pid" 2> /dev/null && fail "the daemon did not exit while suspended"
grep -q "stopping while access to the key is suspended" "$log" || fail "stop while suspended: $(cat "$log")"
"$CMKFS" umount "$plain" > /dev/null 2>&1 || true
enable

# ---- a filesystem with unwritten data, stopped while suspended ----
fmnt=$TEST_TMPDIR/fmnt
fvol=$TEST_TMPDIR/f.img
mkdir -p "$fmnt"
expect_exit 0 as "$host" "$CMKFS" create "$fvol" --size 64M --key-arn "$key"
: > "$log"
mark=1
expect_exit 0 as "$host" "$CMKFS" mount "$fvol" "$fmnt" --log "$log" --revocation-check 1 --on-revoke suspend --suspend-timeout 0
pid=$(sed -n 's/^pid=//p' "$CMKFS_RUNTIME_DIR/$(cryptsetup luksUUID "$fvol")/state")
disable
wait_log "SUSPENDED" 5 || fail "not suspended: $(cat "$log")"
head -c 4M /dev/urandom > "$fmnt/unwritten" # in the page cache only
kill -TERM "$pid"
for _ in $(seq 150); do
	kill -0 "$pid" 2> /dev/null || break
	sleep 0.1
done
kill -0 "$pid" 2> /dev/null && fail "the daemon of a suspended filesystem did not stop: $(tail "$log")"
grep -q "stopping while access to the key is suspended" "$log" || fail "stop with a filesystem: $(cat "$log")"
"$CMKFS" umount "$fmnt" > /dev/null 2>&1 || true
grep -q " $fmnt " /proc/mounts && fail "the filesystem is still mounted"
enable

# ---- a reencryption stopped by a suspension goes on after it ----
mount_raw --suspend-timeout 0
[ "$(pwrite_at $((40 << 20)) REENCRYPT-MARKER)" = ok ] || fail "write before the reencryption"
expect_exit 0 as "$host" "$CMKFS" reencrypt "$vol" --max-rate 8M --background
sleep 2
disable
wait_log "reencryption stopped" 10 || fail "the job did not stop at the suspension: $(cat "$log")"
enable
wait_log "continuing its reencryption" 10 || fail "the job did not go on: $(cat "$log")"
for _ in $(seq 300); do
	grep -q "reencryption done" "$log" && break
	sleep 0.1
done
grep -q "reencryption done" "$log" || fail "the reencryption did not finish: $(tail "$log")"
[ "$(read_at 0)" = BEFORE-SUSPEND-- ] && [ "$(read_at $((40 << 20)))" = REENCRYPT-MARKER ] &&
	[ "$(read_at $((1 << 20)))" = HELD-WRITE-MARKR ] || fail "data after the reencryption across a suspension"
sum=$(sha256sum < "$plain" | cut -d' ' -f1)
expect_exit 0 "$CMKFS" umount "$plain"
vk2=$(volume_key_of "$root" "$vol")
[ "$vk2" != "$vk" ] || fail "the volume key did not change"
[ "$(xts_sum "$vol" "$vk2")" = "$sum" ] || fail "the independent XTS does not read the plaintext with the new key"

# ---- PostgreSQL: pgbench stalls while suspended and goes on ----
pvol=$TEST_TMPDIR/pg.img
mnt=$TEST_TMPDIR/mnt
mkdir -p "$mnt"
expect_exit 0 as "$host" "$CMKFS" create "$pvol" --size 256M --key-arn "$key" --mkfs ext4
pvk=$(volume_key_of "$root" "$pvol")
psecret=$(xxd -p -c 256 "$TEST_TMPDIR/secret")
: > "$log"
mark=1
expect_exit 0 as "$host" "$CMKFS" mount "$pvol" "$mnt" --log "$log" --revocation-check 1 --on-revoke suspend --suspend-timeout 120
pg_setup "$mnt"
pg_init 2
pgbench_run "$TEST_TMPDIR/pgbench.log" -c 4 -j 2 -T 16 -P 1 &
bench=$!
sleep 3
disable
wait_log "SUSPENDED" 5 || fail "not suspended under pgbench: $(cat "$log")"
sleep 5
kill -0 "$bench" 2> /dev/null || fail "pgbench ended while the volume was suspended: $(tail "$TEST_TMPDIR/pgbench.log")"
rc=0
$SCAN "$(sed -n 's/^pid=//p' "$CMKFS_RUNTIME_DIR/$(cryptsetup luksUUID "$pvol")/state")" vk="$pvk" vk.lo="${pvk:0:64}" vk.hi="${pvk:64}" secret="$psecret" > "$TEST_TMPDIR/scan" || rc=$?
[ $rc = 0 ] || fail "key material in the daemon while pgbench was suspended: $(head "$TEST_TMPDIR/scan")"
enable
wait_log "RESUMED" 10 || fail "pgbench's volume did not resume: $(tail "$log")"
wait "$bench" || fail "pgbench across the suspension: $(tail "$TEST_TMPDIR/pgbench.log"; tail -n 20 "$sock/pg.log")"
echo "pgbench across a suspension: $(grep '^tps' "$TEST_TMPDIR/pgbench.log")"
grep -q "^progress: .* 0.0 tps" "$TEST_TMPDIR/pgbench.log" || fail "pgbench never stalled: $(cat "$TEST_TMPDIR/pgbench.log")"
check_db "after a suspension under pgbench"
pg_stop
expect_exit 0 "$CMKFS" umount "$mnt"
kmsd_stop
