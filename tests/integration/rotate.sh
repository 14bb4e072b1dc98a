#!/bin/bash
# rotate: cmkfs rotate (another CMK; --rewrap under the newest material or
# another key), header-backup/-restore — the data key never changes, a
# crash at any point leaves a volume that opens with the old or the new
# key, and two rotations never run at once.
# timeout: 240
. "$(dirname "$0")/../lib.sh"

command -v cryptsetup > /dev/null || fail "cryptsetup is missing (scripts/deps.sh installs it)"
isolate_aws
VOLTOOL=$CMKFS_BUILD/tests/vol-tool

kmsd_up
key1=$(as "$root" "$CMKFS" kms create-key --description one)
key2=$(as "$root" "$CMKFS" kms create-key --description two)
vol=$TEST_TMPDIR/v.img
expect_exit 0 as "$root" "$CMKFS" create "$vol" --size 16M --key-arn "$key1"
uuid=$(cryptsetup luksUUID "$vol")

volume_key() { volume_key_of "$root" "$vol"; }
bound_to() {
	expect_exit 0 "$CMKFS" status --json "$vol"
	$PYTHON -c 'import json,sys; s = json.loads(sys.argv[1]); print(" ".join(k["key_arn"] for k in s["keyslots"] if k["kms_bound"]), len(s["keyslots"]))' "$out"
}
vk=$(volume_key)
[ ${#vk} = 128 ] || fail "volume key '$vk'"

# ---- to another CMK ----
expect_exit 0 as "$root" "$CMKFS" rotate "$vol" --key-arn "$key2"
contains "$out" "now opens through $key2" "rotate"
[ "$(bound_to)" = "$key2 1" ] || fail "after rotate: $(bound_to)"
[ "$(volume_key)" = "$vk" ] || fail "the volume key changed"
as "$root" "$CMKFS" kms disable-key "$key1" 2> /dev/null
expect_exit 0 as "$root" "$CMKFS" unlock-test "$vol"
contains "$out" "unlocks through $key2" "opens without the old key"
expect_exit 1 as "$root" "$CMKFS" rotate "$vol" --key-arn "$key2"
contains "$err" "already bound to $key2" "same key"
expect_exit 1 as "$root" "$CMKFS" rotate "$vol" --key-arn "$key1"
contains "$err" "cannot rotate $vol: the key $key1 is Disabled" "unfit new key"
[ "$(bound_to)" = "$key2 1" ] || fail "a refused rotation changed the volume"
expect_exit 2 as "$root" "$CMKFS" rotate "$vol"

# ---- re-wrap under the newest material, then under another key ----
old_blob=$(cryptsetup token export --token-id 1 "$vol" 2> /dev/null || cryptsetup luksDump --dump-json-metadata "$vol")
as "$root" "$CMKFS" kms call RotateKeyOnDemand "{\"KeyId\":\"$key2\"}" > /dev/null
expect_exit 0 as "$root" "$CMKFS" rotate "$vol" --rewrap
contains "$out" "re-wrapped the secret of $vol" "rewrap"
new_meta=$(cryptsetup luksDump --dump-json-metadata "$vol")
$PYTHON - "$new_meta" <<'P' || fail "the re-wrapped blob is not under material version 2"
import base64, json, sys
m = json.loads(sys.argv[1])
toks = [t for t in m["tokens"].values() if t["type"] == "aws-kms"]
assert len(toks) == 1, toks
blob = base64.b64decode(toks[0]["ciphertext"])
assert blob[40:44] == b"\0\0\0\2", blob[:44]
P
[ "$(volume_key)" = "$vk" ] || fail "rewrap changed the volume key"
as "$root" "$CMKFS" kms enable-key "$key1" 2> /dev/null
expect_exit 0 as "$root" "$CMKFS" rotate "$vol" --rewrap --key-arn "$key1"
[ "$(bound_to)" = "$key1 1" ] || fail "after rewrap to key1: $(bound_to)"
expect_exit 0 as "$root" "$CMKFS" unlock-test "$vol"

# ---- the current key must still work ----
as "$root" "$CMKFS" kms disable-key "$key1" 2> /dev/null
expect_exit 3 as "$root" "$CMKFS" rotate "$vol" --key-arn "$key2"
contains "$err" "the key $key1 is disabled" "rotate needs the current key"
as "$root" "$CMKFS" kms enable-key "$key1" 2> /dev/null

# ---- one rotation at a time ----
# (a POSIX record lock, which conflicts with cmkfs's open file description lock)
$PYTHON -c 'import fcntl, sys, time; f = open(sys.argv[1], "rb+"); fcntl.lockf(f, fcntl.LOCK_EX); time.sleep(3)' "$vol" &
holder=$!
sleep 0.5
expect_exit 1 as "$root" "$CMKFS" rotate "$vol" --key-arn "$key2"
contains "$err" "is being changed by another cmkfs command" "locked"
wait "$holder"
# two at once: at most one wins, the loser fails cleanly, the volume opens
rc1=0 rc2=0
as "$root" "$CMKFS" rotate "$vol" --key-arn "$key2" > /dev/null 2>&1 & p1=$!
as "$root" "$CMKFS" rotate "$vol" --key-arn "$key2" > /dev/null 2>&1 & p2=$!
wait "$p1" || rc1=$?
wait "$p2" || rc2=$?
[ $rc1 = 0 ] || [ $rc2 = 0 ] || fail "both concurrent rotations failed ($rc1, $rc2)"
[ "$(bound_to)" = "$key2 1" ] || fail "after concurrent rotations: $(bound_to)"
expect_exit 0 as "$root" "$CMKFS" unlock-test "$vol"

# ---- kill -9 at random points: always opens with one key or the other ----
keys=("$key1" "$key2")
for i in $(seq 20); do
	target=${keys[$((i % 2))]}
	# exec in the background subshell: $! must be cmkfs itself, or kill -9
	# would leave it running
	(. "$root" && export AWS_ENDPOINT_URL_KMS=$KMSD_URL &&
		exec "$CMKFS" rotate "$vol" --key-arn "$target") > /dev/null 2>&1 &
	pid=$!
	sleep "0.0$((RANDOM % 10))"
	kill -9 "$pid" 2> /dev/null || true
	wait "$pid" 2> /dev/null || true
	if ! as "$root" "$CMKFS" unlock-test "$vol" > /dev/null; then
		cryptsetup luksDump --dump-json-metadata "$vol" >&2
		fail "kill $i: the volume no longer opens"
	fi
	if [ "$(volume_key)" != "$vk" ]; then
		cryptsetup luksDump --dump-json-metadata "$vol" >&2
		cat "$TEST_TMPDIR/candidates" >&2
		fail "kill $i: the volume key changed"
	fi
done
echo "20 rotations killed at random points: the volume always opened"

# ---- header backup and restore ----
expect_exit 0 "$CMKFS" header-backup "$vol" "$TEST_TMPDIR/hdr"
expect_exit 1 "$CMKFS" header-backup "$vol" "$TEST_TMPDIR/hdr"
before=$(bound_to)
other=$( [ "${before%% *}" = "$key1" ] && echo "$key2" || echo "$key1")
expect_exit 0 as "$root" "$CMKFS" rotate "$vol" --key-arn "$other"
expect_exit 0 "$CMKFS" header-restore "$vol" "$TEST_TMPDIR/hdr"
[ "$(bound_to)" = "$before" ] || fail "restore: $(bound_to), want $before"
expect_exit 0 as "$root" "$CMKFS" unlock-test "$vol"
kmsd_stop
