#!/bin/bash
# reenc-live: `cmkfs reencrypt` on a mounted volume.  The daemon rewrites
# every byte under a new volume key while fio (aligned, verified) and the
# model test (unaligned, random) read and write through the mount; every
# byte reads back after, and an XTS implementation independent of cmkfs and
# libcryptsetup decrypts the volume with the new key, and the old key is
# nowhere in the daemon's memory after the job.  Pause, resume, the
# throttle, status (text and JSON), refusals while the job runs
# (rotate, header-backup, a second reencrypt), cryptsetup's view during and
# after.  Then a kill -9 before each write the job makes to the volume in
# turn (prepare, inside blocks, between them, the end): each time the next
# mount recovers before any I/O, the job completes, and nothing is lost.
# transports: both
# timeout: 900
. "$(dirname "$0")/../lib.sh"

need_mounts
command -v fio > /dev/null || fail "fio is missing (scripts/deps.sh installs it)"
command -v strace > /dev/null || fail "strace is missing (scripts/deps.sh installs it)"
command -v cryptsetup > /dev/null || fail "cryptsetup is missing (scripts/deps.sh installs it)"
isolate_aws
MODEL="$PYTHON $CMKFS_SRC/tests/tools/io_model.py"
SCAN="$PYTHON $CMKFS_SRC/tests/tools/memscan.py"

kmsd_with_host
key2=$(as "$root" "$CMKFS" kms create-key --description second)
vol=$TEST_TMPDIR/v.img
plain=$TEST_TMPDIR/plain
log=$TEST_TMPDIR/daemon.log
MiB=$((1 << 20))

mount_raw() {
	expect_exit 0 as "$host" "$CMKFS" mount --raw "$vol" "$plain" --log "$log" "$@"
}
umount_raw() {
	expect_exit 0 "$CMKFS" umount "$plain"
}
json() { # json PYTHON-EXPR: of `cmkfs status --json`, as s
	expect_exit 0 "$CMKFS" status --json "$vol"
	$PYTHON -c 'import json,sys; s = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$out" "$1"
}
# await_state STATE: the daemon's job reaches it (30 s at most)
await_state() {
	local i
	for i in $(seq 300); do
		[ "$(json 's["reencrypt"]["state"]')" = "$1" ] && return 0
		sleep 0.1
	done
	fail "the reencryption did not reach $1: $(json 's["reencrypt"]')"
}
# fio over [OFF, OFF+SIZE) of the plaintext: write (random order, each
# block once) then verify; verify_only: check what that wrote
fio_region() {
	local off=$1 size=$2 mode=$3
	shift 3
	fio --name=r --filename="$plain" --offset="$off" --size="$size" \
		--rw=randwrite --bsrange=4k-64k --ioengine=libaio --iodepth=8 \
		--direct=1 --verify=crc32c --verify_fatal=1 --randseed=7 \
		${mode:+--verify_only} --output="$TEST_TMPDIR/fio-$off.out" "$@" ||
		{ cat "$TEST_TMPDIR/fio-$off.out"; fail "fio $mode at $off"; }
}
# alive PID: the process exists and is not a zombie (a killed daemon waits
# a while for whoever reaps it)
alive() {
	[ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2> /dev/null
}
# the plaintext's SHA-256 through the mount
plain_sum() { sha256sum < "$plain" | cut -d' ' -f1; }

expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 96M --key-arn "$key"
vk1=$(volume_key_of "$root" "$vol")
mount_raw
fio_region 0 $((40 * MiB)) ""

# ---- to another CMK, while fio and the model test read and write ----
expect_exit 0 as "$host" "$CMKFS" reencrypt "$vol" --key-arn "$key2" --background --max-rate 24M
contains "$out" "the reencryption runs in the daemon" "background start"
fio_region 0 $((40 * MiB)) verify &
fio1_pid=$!
fio_region $((40 * MiB)) $((40 * MiB)) "" &
fio2_pid=$!
$MODEL run "$plain" "$TEST_TMPDIR/model" 11 3000 $((80 * MiB)) $((96 * MiB)) shared \
	> "$TEST_TMPDIR/model.out" 2>&1 &
model_pid=$!
[ "$(json 's["reencrypt"]["state"]')" = running ] || fail "the job is not running during the I/O: $(json 's["reencrypt"]')"
[ "$(json 's["reencrypt"]["max_rate"]')" = $((24 * MiB)) ] || fail "max_rate: $(json 's["reencrypt"]')"
cryptsetup luksDump "$vol" > "$TEST_TMPDIR/dump.during"
grep -q "online-reencrypt" "$TEST_TMPDIR/dump.during" || fail "luksDump during the job shows no reencryption: $(cat "$TEST_TMPDIR/dump.during")"
grep -q "reencrypt" <(sed -n '/^Keyslots:/,/^Tokens:/p' "$TEST_TMPDIR/dump.during") || fail "no reencrypt keyslot during the job"
expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "reencrypt    running online" "status text during the job"
# refused while it runs, the data untouched
expect_exit 1 as "$host" "$CMKFS" rotate "$vol" --key-arn "$key"
contains "$err" "is being changed by another cmkfs command" "rotate during the job"
expect_exit 1 "$CMKFS" header-backup "$vol" "$TEST_TMPDIR/hdr.bak"
contains "$err" "is being changed by another cmkfs command" "header-backup during the job"
[ ! -e "$TEST_TMPDIR/hdr.bak" ] || fail "header-backup wrote a backup during the job"
expect_exit 1 as "$host" "$CMKFS" reencrypt "$vol" --background
contains "$err" "already being reencrypted" "a second reencrypt"
wait $fio1_pid || fail "fio reading during the reencryption"
wait $fio2_pid || fail "fio writing during the reencryption"
wait $model_pid || fail "the model test during the reencryption: $(cat "$TEST_TMPDIR/model.out")"
expect_exit 0 as "$host" "$CMKFS" reencrypt --resume "$vol" --progress-interval 0.5
contains "$out" "reencrypted $vol online: 96.0 MiB under a new volume key" "follow to the end"
[ "$(json 's["reencrypt"]["state"]')" = done ] || fail "state after: $(json 's["reencrypt"]')"
[ "$(json 's["reencrypt"]["done_bytes"] == s["reencrypt"]["total_bytes"] == 96 << 20')" = True ] ||
	fail "bytes after: $(json 's["reencrypt"]')"
grep -q "reencryption done: every byte is under the new key" "$log" || fail "log: $(cat "$log")"
fio_region 0 $((40 * MiB)) verify
fio_region $((40 * MiB)) $((40 * MiB)) verify
$MODEL check "$plain" "$TEST_TMPDIR/model" > "$TEST_TMPDIR/model.out" 2>&1 ||
	fail "the model after the reencryption: $(cat "$TEST_TMPDIR/model.out")"
vk2=$(volume_key_of "$root" "$vol")
[ ${#vk2} = 128 ] && [ "$vk2" != "$vk1" ] || fail "the volume key did not change"
# the old key is gone from the daemon's memory, the new one only in its
# secure memory
pid=$(json 's["mount"]["pid"]')
rc=0
$SCAN "$pid" vk1="$vk1" vk1.lo="${vk1:0:64}" vk1.hi="${vk1:64}" > "$TEST_TMPDIR/scan" || rc=$?
[ $rc = 0 ] || fail "the old volume key is still in the daemon after the job: $(cat "$TEST_TMPDIR/scan")"
rc=0
$SCAN "$pid" vk2="$vk2" vk2.lo="${vk2:0:64}" vk2.hi="${vk2:64}" --allow-secmem > "$TEST_TMPDIR/scan" || rc=$?
[ $rc = 0 ] || fail "the new volume key outside secure memory: $(cat "$TEST_TMPDIR/scan")"
grep -q "^ALLOWED" "$TEST_TMPDIR/scan" || fail "the scan did not even find the new key in secure memory"
sum=$(plain_sum)
[ "$(xts_sum "$vol" "$vk2")" = "$sum" ] || fail "the independent XTS does not read the plaintext with the new key"
[ "$(xts_sum "$vol" "$vk1")" != "$sum" ] || fail "the old volume key still reads the data"
cryptsetup luksDump "$vol" > "$TEST_TMPDIR/dump.after"
grep -q "online-reencrypt" "$TEST_TMPDIR/dump.after" && fail "luksDump after still shows a reencryption"
[ "$(grep -c '^  [0-9]*: luks2$' "$TEST_TMPDIR/dump.after")" = 1 ] ||
	fail "cryptsetup sees other than one keyslot: $(cat "$TEST_TMPDIR/dump.after")"
# the new KMS-unwrapped secret opens it for the standard tools
cryptsetup open --test-passphrase --key-file "$TEST_TMPDIR/secret" "$vol" ||
	fail "cryptsetup does not open the volume with the new secret"
[ "$(json '" ".join(k["key_arn"] for k in s["keyslots"])')" = "$key2" ] ||
	fail "bound to: $(json 's["keyslots"]')"
echo "online to another CMK: done, data intact"

# ---- the revocation check follows the new key ----
as "$root" "$CMKFS" kms disable-key "$key" 2> /dev/null
expect_exit 0 as "$host" "$CMKFS" unlock-test "$vol"
contains "$out" "unlocks through $key2" "opens without the first key"
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null

# ---- pause, resume, the throttle ----
expect_exit 0 as "$host" "$CMKFS" reencrypt "$vol" --background --max-rate 8M
await_state running
# Ctrl-C stops following, not the job; a signal that cuts short one of the
# follower's status queries (here the EINTR is injected into its second and
# third poll) does not make a live daemon look gone.  (LeakSanitizer cannot
# run under ptrace: off for this one command in a sanitizer build.)
expect_exit 0 as "$host" timeout --preserve-status -s INT 1.5 \
	strace -f -qq -o /dev/null -e trace=poll,ppoll -e inject=poll,ppoll:error=EINTR:when=2..3 \
	env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$CMKFS" reencrypt --resume "$vol"
contains "$err" "no longer following; the reencryption goes on" "Ctrl-C while following"
[ "$(json 's["reencrypt"]["state"]')" = running ] || fail "Ctrl-C stopped the job: $(json 's["reencrypt"]')"
expect_exit 0 as "$host" "$CMKFS" reencrypt "$vol" --pause
contains "$out" "pauses after the block it is on" "pause"
await_state paused
d1=$(json 's["reencrypt"]["done_bytes"]')
sleep 1
[ "$(json 's["reencrypt"]["done_bytes"]')" = "$d1" ] || fail "a paused job went on"
[ "$(json 's["reencrypt"]["rate"]')" = 0 ] || fail "rate while paused: $(json 's["reencrypt"]')"
expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "REENCRYPTION STOPPED on a mounted volume" "status text while paused"
# requests across the boundary (new key below, old above) are served at
# once while nothing is held, and read back after the job
total=$(json 's["reencrypt"]["total_bytes"]')
[ "$d1" -gt 0 ] && [ "$d1" -lt "$total" ] || fail "paused at $d1 of $total"
head -c 8192 /dev/urandom > "$TEST_TMPDIR/across"
timeout 10 dd if="$TEST_TMPDIR/across" of="$plain" bs=8192 count=1 seek=$((d1 - 4096)) \
	oflag=direct,seek_bytes conv=notrunc status=none || fail "a write across the boundary while paused"
timeout 10 dd if="$plain" of="$TEST_TMPDIR/across.back" bs=8192 count=1 skip=$((d1 - 4096)) \
	iflag=direct,skip_bytes status=none || fail "a read across the boundary while paused"
cmp -s "$TEST_TMPDIR/across" "$TEST_TMPDIR/across.back" || fail "a write across the boundary reads back wrong"
sum=$(plain_sum)
expect_exit 0 as "$host" "$CMKFS" reencrypt "$vol" --max-rate 1G
[ "$(json 's["reencrypt"]["max_rate"]')" = $((1 << 30)) ] || fail "max_rate: $(json 's["reencrypt"]')"
[ "$(json 's["reencrypt"]["state"]')" = paused ] || fail "--max-rate resumed a paused job"
expect_exit 0 as "$host" "$CMKFS" reencrypt --resume "$vol"
contains "$out" "reencrypted $vol online" "resume after pause"
grep -q "reencryption paused at" "$log" || fail "no pause in the log"
grep -q "reencryption resumed" "$log" || fail "no resume in the log"
[ "$(plain_sum)" = "$sum" ] || fail "the data changed in the paused reencryption"
timeout 10 dd if="$plain" of="$TEST_TMPDIR/across.back" bs=8192 count=1 skip=$((d1 - 4096)) \
	iflag=direct,skip_bytes status=none || fail "a read across the old boundary"
cmp -s "$TEST_TMPDIR/across" "$TEST_TMPDIR/across.back" || fail "the write across the boundary was not reencrypted right"
expect_exit 2 as "$host" "$CMKFS" reencrypt "$vol" --pause --resume
expect_exit 2 as "$host" "$CMKFS" reencrypt "$vol" --max-rate fast
echo "pause, resume, throttle, requests across the boundary: ok"

# ---- stopped by umount; a read-only mount serves both keys and writes
# nothing; the next read-write mount goes on ----
expect_exit 0 as "$host" "$CMKFS" reencrypt "$vol" --background --max-rate 8M
sleep 1
umount_raw
expect_exit 2 as "$host" "$CMKFS" reencrypt "$vol" --pause
contains "$err" "is not mounted" "--pause on an unmounted volume"
[ "$(json 's["reencrypt"]["state"]')" = paused ] || fail "after umount: $(json 's["reencrypt"]')"
d1=$(json 's["reencrypt"]["done_bytes"]')
hdr=$(head -c $((16 * MiB)) "$vol" | sha256sum)
mount_raw --read-only
[ "$(plain_sum)" = "$sum" ] || fail "a read-only mount in the middle of a reencryption reads wrong"
expect_exit 1 as "$host" "$CMKFS" reencrypt --resume "$vol"
contains "$err" "a read-only mount does not reencrypt" "resume on a read-only mount"
umount_raw
[ "$(head -c $((16 * MiB)) "$vol" | sha256sum)" = "$hdr" ] || fail "a read-only mount wrote the header"
[ "$(json 's["reencrypt"]["done_bytes"]')" = "$d1" ] || fail "a read-only mount went on with the job"
: > "$log"
mount_raw --revocation-check 1
grep -q "continuing its reencryption at $d1 of" "$log" || fail "the next mount did not go on: $(cat "$log")"
expect_exit 0 as "$host" "$CMKFS" reencrypt --resume "$vol"
[ "$(plain_sum)" = "$sum" ] || fail "the data changed across umount and mount"
echo "umount, read-only mount, remount: ok"

# ---- revocation of the new CMK during the job: both keys shredded, the
# job stops; once KMS allows again, the next mount finishes it ----
expect_exit 0 as "$host" "$CMKFS" reencrypt "$vol" --background --max-rate 4M
await_state running
as "$root" "$CMKFS" kms disable-key "$key2" 2> /dev/null
for i in $(seq 100); do
	[ "$(json 's["mount"]["shredded"]')" = True ] && break
	sleep 0.1
done
[ "$(json 's["mount"]["shredded"]')" = True ] || fail "no shred after the new CMK was disabled"
await_state paused
[ "$(json 's["reencrypt"]["error"]')" = "stopped: the keys were shredded" ] || fail "job after the shred: $(json 's["reencrypt"]')"
[ "$(direct_io "$plain" read)" = EIO ] || fail "reads after the shred: $(direct_io "$plain" read)"
grep -q "SHREDDED" "$log" || fail "no shred in the log"
as "$root" "$CMKFS" kms enable-key "$key2" 2> /dev/null
umount_raw
mount_raw
expect_exit 0 as "$host" "$CMKFS" reencrypt --resume "$vol"
[ "$(plain_sum)" = "$sum" ] || fail "the data changed across the revocation"
umount_raw
echo "revocation during the job: ok"

# ---- the new CMK refuses the daemon (it lets the command prepare the
# header): the job's refusal is a revocation, acted on at once ----
key3=$(as "$root" "$CMKFS" kms create-key --description third)
policy() { # policy KEY DENY: the host denied Decrypt when DENY is 1
	local pol
	pol=$($PYTHON -c 'import json, sys
st = [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
       "Action": "kms:*", "Resource": "*"}]
if sys.argv[2] == "1":
    st.append({"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::111111111111:role/db-host"},
               "Action": "kms:Decrypt", "Resource": "*"})
print(json.dumps({"KeyId": sys.argv[1], "PolicyName": "default",
                  "Policy": json.dumps({"Version": "2012-10-17", "Statement": st})}))' "$1" "$2")
	as "$root" "$CMKFS" kms call PutKeyPolicy "$pol" > /dev/null || fail "PutKeyPolicy $1"
}
policy "$key3" 1
mount_raw --revocation-check 3600
expect_exit 1 as "$root" "$CMKFS" reencrypt "$vol" --key-arn "$key3"
contains "$err" "the reencryption failed" "a job the new CMK refuses"
for i in $(seq 100); do
	[ "$(json 's["mount"]["shredded"]')" = True ] && break
	sleep 0.1
done
[ "$(json 's["mount"]["shredded"]')" = True ] || fail "no shred after the job's refusal: $(cat "$log")"
grep -q "SHREDDED: .*$key3" "$log" || fail "the shred does not name the new CMK: $(grep SHREDDED "$log")"
policy "$key3" 0
umount_raw
mount_raw
expect_exit 0 as "$host" "$CMKFS" reencrypt --resume "$vol"
[ "$(plain_sum)" = "$sum" ] || fail "the data changed across the refused job"
[ "$(json '" ".join(k["key_arn"] for k in s["keyslots"])')" = "$key3" ] ||
	fail "bound to: $(json 's["keyslots"]')"
umount_raw
echo "the job's KMS refusal: ok"

# ---- kill -9 before each write the job makes to the volume ----
# A small volume (two blocks of data) whose job starts paused, then runs
# with strace attached to the daemon: SIGKILL before its Nth write to the
# volume (libcryptsetup's: the data path writes through io_uring).  The
# next mount recovers and holds the job (--reencrypt-paused) for the next
# N.  A first loop kills the command that prepares the header instead.
vol=$TEST_TMPDIR/small.img
expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 8M --key-arn "$key"
mount_raw
fio_region 0 $((8 * MiB)) ""
sum=$(plain_sum)
expect_exit 0 as "$host" "$CMKFS" reencrypt "$vol" --pause
# (the command's writes are the header's alone, whatever serves the data:
# under one transport)
[ "${CMKFS_TEST_TRANSPORT:-dev_fuse}" = dev_fuse ] || prepare_kills=0
for n in $(seq "${prepare_kills:-100}"); do
	rc=0
	{ (. "$host" && export AWS_ENDPOINT_URL_KMS=$KMSD_URL &&
		export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 &&
		exec strace -f -qq -o /dev/null -P "$vol" -e trace=write \
			-e inject=write:signal=SIGKILL:when="$n" \
			"$CMKFS" reencrypt "$vol" --background) > /dev/null 2> "$TEST_TMPDIR/kill.err" || rc=$?
	} 2> /dev/null
	[ $rc = 0 ] || [ $rc = 137 ] || fail "prepare: exit $rc: $(cat "$TEST_TMPDIR/kill.err")"
	[ "$(plain_sum)" = "$sum" ] || fail "a kill before the command's write $n changed the data"
	[ $rc = 0 ] && break
	# killed after the metadata was written: only a resume starts it
	[ "$(json 's["reencryption"]')" = in-progress ] && break
done
if [ "${prepare_kills:-100}" = 0 ]; then
	expect_exit 0 as "$host" "$CMKFS" reencrypt "$vol" --background
else
	[ $rc = 0 ] || [ "$(json 's["reencryption"]')" = in-progress ] ||
		fail "100 writes and the preparation did not end"
	echo "the command preparing the header killed before each of its $((n - 1)) writes: data intact"
fi
umount_raw
# every run below starts from this: prepared, nothing rewritten yet
cp "$vol" "$TEST_TMPDIR/prepared.img"
states=
for n in $(seq 400); do
	cp "$TEST_TMPDIR/prepared.img" "$vol"
	mount_raw --reencrypt-paused
	pid=$(json 's["mount"]["pid"]')
	strace -f -qq -o /dev/null -p "$pid" -P "$vol" -e trace=write \
		-e inject=write:signal=SIGKILL:when="$n" 2> /dev/null &
	strace_pid=$!
	for i in $(seq 200); do
		[ "$(sed -n 's/^TracerPid:[[:space:]]*//p' "/proc/$pid/status")" = 0 ] || break
		sleep 0.01
	done
	: > "$log"
	# (the kill may come before the daemon has answered: then this
	# fails, and the daemon is dead below)
	as "$host" "$CMKFS" reencrypt "$vol" --resume --max-rate 0 --background > /dev/null 2>&1 || true
	for i in $(seq 400); do
		alive "$pid" || break
		grep -q "reencryption done" "$log" && break
		sleep 0.02
	done
	kill -9 "$strace_pid" 2> /dev/null || true
	wait "$strace_pid" 2> /dev/null || true
	if alive "$pid"; then
		[ "$(json 's["reencrypt"]["state"]')" = done ] || fail "neither killed nor done: $(json 's["reencrypt"]')"
		break
	fi
	state=$(json 's["reencryption"]')
	case " $states " in *" $state "*) ;; *) states="$states $state" ;; esac
	umount_raw
	if [ "$state" = crashed ] && [ -z "${ro_refused:-}" ]; then
		expect_exit 1 as "$host" "$CMKFS" mount --raw --read-only "$vol" "$plain" --log "$log"
		contains "$err" "mount it read-write once to recover it" "a read-only mount of a crashed reencryption"
		ro_refused=1
	fi
	: > "$log"
	mount_raw
	[ "$(plain_sum)" = "$sum" ] || fail "a kill before the daemon's write $n ($state) lost data: $(cat "$log")"
	if grep -q "being reencrypted" "$log"; then
		for i in $(seq 400); do
			grep -q "reencryption done" "$log" && break
			sleep 0.02
		done
	fi
	[ "$(json 's["reencryption"]')" = none ] || fail "after a kill before write $n ($state), the job did not complete: $(cat "$log")"
	[ "$(plain_sum)" = "$sum" ] || fail "after a kill before write $n ($state), the completed job lost data"
	fio_region 0 $((8 * MiB)) verify
	recovered=$(grep -c "recovered the block\|end of its reencryption, cut off" "$log" || true)
	echo "daemon killed before its write $n: $state; remounted (recovered: $recovered), completed, data intact"
	umount_raw
done
alive "$pid" || fail "400 writes and the job did not end"
echo "daemon killed before each of its $((n - 1)) writes; states seen:$states"
for s in crashed in-progress; do
	contains "$states" "$s" "the states the kills left"
done
[ -n "${ro_refused:-}" ] || fail "no read-only mount of a crashed reencryption was tried"
[ "$(plain_sum)" = "$sum" ] || fail "the data changed"
vk=$(volume_key_of "$root" "$vol")
[ "$(xts_sum "$vol" "$vk")" = "$sum" ] || fail "the independent XTS does not read the plaintext after the kills"
umount_raw
cryptsetup luksDump "$vol" > "$TEST_TMPDIR/dump.small"
grep -q "online-reencrypt" "$TEST_TMPDIR/dump.small" && fail "still in reencryption after the kills"
expect_exit 0 as "$host" "$CMKFS" unlock-test "$vol"
kmsd_stop
