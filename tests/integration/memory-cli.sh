#!/bin/bash
# memory-cli: after create, unlock-test, rotate and reencrypt, nothing in the
# cmkfs process's memory holds the volume key, either half of it, or the
# keyslot secret, raw or spelled in hex or base64 — read from outside through
# /proc/PID/mem while the process is stopped at exit
# (CMKFS_DEBUG_STOP_AT_EXIT).  A deliberately leaking process is the control:
# the scanner must find its key.
# timeout: 240
. "$(dirname "$0")/../lib.sh"

[ "$(id -u)" = 0 ] || skip "reading another process's memory needs root"
command -v cryptsetup > /dev/null || fail "cryptsetup is missing (scripts/deps.sh installs it)"
isolate_aws
SCAN="$PYTHON $CMKFS_SRC/tests/tools/memscan.py"

# ---- control: the scanner finds a key a process keeps ----
k=$(openssl rand -hex 64)
$PYTHON -c 'import sys, time, base64
k = bytes.fromhex(sys.argv[1]); copies = [bytearray(k), k.hex(), base64.b64encode(b"x" + k)]
print("ready", flush=True); time.sleep(60)' "$k" > "$TEST_TMPDIR/leaker.out" &
leaker=$!
await_output "$TEST_TMPDIR/leaker.out" 's/^\(ready\)$/\1/p' "$leaker" > /dev/null || fail "the leaking control did not start"
rc=0
$SCAN "$leaker" key="$k" > "$TEST_TMPDIR/control" || rc=$?
kill "$leaker"
wait "$leaker" 2> /dev/null || true
[ $rc = 1 ] || fail "the scanner missed the control's key (exit $rc)"
for form in raw hex base64; do
	grep -q "^HIT key $form" "$TEST_TMPDIR/control" || fail "the scanner missed the $form copy: $(cat "$TEST_TMPDIR/control")"
done
# and a key a process does not hold is not found in it
sleep 60 &
sleeper=$!
rc=0
$SCAN "$sleeper" key="$k" > /dev/null || rc=$?
kill "$sleeper"
[ $rc = 0 ] || fail "the scanner found a key in a process that never had it"

# ---- the data path's cipher contexts: their key schedules (which begin
# with the key itself) live in secure memory only ----
k=$(openssl rand -hex 64)
"$CMKFS_BUILD/tests/keyed" "$k" > "$TEST_TMPDIR/keyed.out" &
keyed=$!
await_output "$TEST_TMPDIR/keyed.out" 's/^\(ready\)$/\1/p' "$keyed" > /dev/null || fail "keyed did not start"
rc=0
$SCAN "$keyed" lo="${k:0:64}" hi="${k:64}" > "$TEST_TMPDIR/keyed.scan" || rc=$?
[ $rc = 1 ] || fail "no key schedule found at all (exit $rc): the scan cannot see them"
rc=0
$SCAN "$keyed" lo="${k:0:64}" hi="${k:64}" --allow-secmem > "$TEST_TMPDIR/keyed.scan" || rc=$?
kill -CONT "$keyed"
wait "$keyed" || fail "keyed failed"
[ $rc = 0 ] || fail "a key schedule outside secure memory: $(cat "$TEST_TMPDIR/keyed.scan")"
echo "cipher contexts: key schedules in secure memory only"

kmsd_up
key1=$(as "$root" "$CMKFS" kms create-key --description one)
key2=$(as "$root" "$CMKFS" kms create-key --description two)
vol=$TEST_TMPDIR/v.img

# scanned LABEL NAME=HEX... -- CMD...: run cmkfs CMD stopped at exit, scan
# it for each secret, then let it exit (it must succeed).
scanned() {
	local label=$1 pid st i rc=0 args=()
	shift
	while [ "$1" != -- ]; do
		args+=("$1")
		shift
	done
	shift
	(. "$root" && export AWS_ENDPOINT_URL_KMS=$KMSD_URL CMKFS_DEBUG_STOP_AT_EXIT=1 &&
		exec "$CMKFS" "$@") > "$TEST_TMPDIR/$label.out" 2>&1 &
	pid=$!
	for i in $(seq 300); do
		st=$(sed 's/.*) \(.\).*/\1/' "/proc/$pid/stat" 2> /dev/null || echo gone)
		[ "$st" = T ] && break
		[ "$st" = gone ] && fail "$label: cmkfs ended without stopping: $(cat "$TEST_TMPDIR/$label.out")"
		sleep 0.1
	done
	[ "$st" = T ] || fail "$label: cmkfs did not stop at exit"
	$SCAN "$pid" "${args[@]}" > "$TEST_TMPDIR/$label.scan" || rc=$?
	kill -CONT "$pid"
	wait "$pid" || fail "$label: cmkfs failed: $(cat "$TEST_TMPDIR/$label.out")"
	[ $rc = 0 ] || fail "$label: key material left in memory: $(cat "$TEST_TMPDIR/$label.scan")"
	echo "$label: nothing left in memory"
}
# the keyslot secret of the volume now (what volume_key_of unwrapped last)
secret() { xxd -p -c 256 "$TEST_TMPDIR/secret"; }

# create: the key exists only after, so scan for it with the process stopped
(. "$root" && export AWS_ENDPOINT_URL_KMS=$KMSD_URL CMKFS_DEBUG_STOP_AT_EXIT=1 &&
	exec "$CMKFS" create "$vol" --size 32M --key-arn "$key1") > "$TEST_TMPDIR/create.out" 2>&1 &
pid=$!
for i in $(seq 300); do
	[ "$(sed 's/.*) \(.\).*/\1/' "/proc/$pid/stat" 2> /dev/null)" = T ] && break
	sleep 0.1
done
vk1=$(volume_key_of "$root" "$vol") || fail "no volume key after create"
s1=$(secret)
rc=0
$SCAN "$pid" vk="$vk1" vk.lo="${vk1:0:64}" vk.hi="${vk1:64}" secret="$s1" > "$TEST_TMPDIR/create.scan" || rc=$?
kill -CONT "$pid"
wait "$pid" || fail "create failed: $(cat "$TEST_TMPDIR/create.out")"
[ $rc = 0 ] || fail "create: key material left in memory: $(cat "$TEST_TMPDIR/create.scan")"
echo "create: nothing left in memory"

scanned unlock-test vk="$vk1" vk.lo="${vk1:0:64}" vk.hi="${vk1:64}" secret="$s1" -- unlock-test "$vol"
scanned rotate vk="$vk1" vk.hi="${vk1:64}" secret="$s1" -- rotate "$vol" --key-arn "$key2"
[ "$(volume_key_of "$root" "$vol")" = "$vk1" ] || fail "rotate changed the volume key"
s2=$(secret)
# the new secret did not exist before: scan a second rotation for the one it
# replaces, and a reencryption for every key involved
scanned rotate-back vk="$vk1" vk.hi="${vk1:64}" secret="$s2" -- rotate "$vol" --key-arn "$key1"
s3=$(secret)
scanned reencrypt vk="$vk1" vk.hi="${vk1:64}" secret="$s3" -- reencrypt "$vol"
vk2=$(volume_key_of "$root" "$vol")
[ "$vk2" != "$vk1" ] || fail "reencrypt kept the volume key"
scanned unlock-test-new vk="$vk2" vk.hi="${vk2:64}" secret="$(secret)" -- unlock-test "$vol"
kmsd_stop
