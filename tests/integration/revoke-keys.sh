#!/bin/bash
# revoke-keys: revocation while mounted for a volume two CMKs open (a primary
# in us-east-1, a replica in eu-west-1).  By default access stays while any
# key grants it: disabling the primary changes nothing, disabling both
# shreds.  With --revocation any, disabling either one shreds, and a mount
# needs both.  The mount's log says which keys open the volume and which
# do not, and why.  With --on-revoke suspend and any, the mount stays held
# while either key is refused.  A mount in the middle of a reencryption
# checks both keys too, and an online reencryption keeps both.
# transports: both
# timeout: 240
. "$(dirname "$0")/../lib.sh"

need_mounts
isolate_aws
SCAN="$PYTHON $CMKFS_SRC/tests/tools/memscan.py"
kmsd_up --region us-east-1 --region eu-west-1
key1=$(as "$root" "$CMKFS" kms create-key --description primary)
key2=$(as "$root" "$CMKFS" kms create-key --region eu-west-1 --description dr)
vol=$TEST_TMPDIR/v.img
plain=$TEST_TMPDIR/plain
log=$TEST_TMPDIR/daemon.log
expect_exit 0 as "$root" "$CMKFS" create "$vol" --size 16M --key-arn "$key1"
expect_exit 0 as "$root" "$CMKFS" add-key "$vol" --key-arn "$key2"
vk=$(volume_key_of "$root" "$vol")

key() { # enable|disable N
	local k=$key1 region=us-east-1
	[ "$2" = 2 ] && k=$key2 region=eu-west-1
	as "$root" "$CMKFS" kms "$1-key" "$k" --region $region 2> /dev/null ||
		fail "cannot $1 key $2"
}
io() { direct_io "$plain" "$1"; }
mount_raw() {
	: > "$log"
	expect_exit 0 as "$root" "$CMKFS" mount --raw "$vol" "$plain" --log "$log" --revocation-check 1 "$@"
}
daemon_pid() {
	sed -n 's/^pid=//p' "$CMKFS_RUNTIME_DIR/$(cryptsetup luksUUID "$vol")/state"
}

# ---- the default: a second door ----
mount_raw
grep -q "unlocked through $key1; its key $key2 opens it too" "$log" || fail "the log does not name the second key: $(cat "$log")"
grep -q "KMS refusing every one of its keys revokes access" "$log" || fail "the log does not state the rule"
[ "$(io write)" = ok ] || fail "I/O on a fresh mount"
key disable 1
# a few intervals with only the replica granting access: I/O goes on
for i in 1 2 3 4; do
	sleep 1
	[ "$(io read)" = ok ] || fail "the mount was cut while the replica key still grants access: $(cat "$log")"
done
! grep -q SHREDDED "$log" || fail "shredded while a key still grants access"
grep -q "KMS refuses a key or does not answer: $key1: DisabledException.*; access holds through $key2" "$log" ||
	fail "the log does not warn that only the replica grants access: $(cat "$log")"
key disable 2
until_eio "$plain" > /dev/null || fail "reads still work 10 s after both keys were disabled"
[ "$(io write)" = EIO ] || fail "writes still work after the shred"
grep -q "SHREDDED: KMS refuses the key $key1: DisabledException: .*(and the volume's 1 other key: refused too)" "$log" ||
	fail "the shred does not say both keys refused: $(cat "$log")"
rc=0
$SCAN "$(daemon_pid)" vk="$vk" vk.lo="${vk:0:64}" vk.hi="${vk:64}" > "$TEST_TMPDIR/scan" || rc=$?
[ $rc = 0 ] || fail "key material in the daemon after the shred: $(cat "$TEST_TMPDIR/scan")"
expect_exit 0 "$CMKFS" umount "$plain"

# the primary disabled at mount: the replica opens it, the log says why not
key enable 2
mount_raw
grep -q "its key $key1 does not open it: the key $key1 is disabled" "$log" ||
	fail "the log does not say why the primary does not open it: $(cat "$log")"
[ "$(io read)" = ok ] || fail "a mount through the replica does not read"
expect_exit 0 "$CMKFS" umount "$plain"

# ---- --revocation any: each key holder can cut access ----
expect_exit 3 as "$root" "$CMKFS" mount --raw "$vol" "$plain" --revocation-check 1 --revocation any
contains "$err" "the key $key1 is disabled" "--revocation any needs every key at mount"
key enable 1
mount_raw --revocation any
grep -q "KMS refusing any one of its keys revokes access" "$log" || fail "the log does not state the rule (any)"
[ "$(io read)" = ok ] || fail "I/O on a --revocation any mount"
key disable 2
until_eio "$plain" > /dev/null || fail "--revocation any: reads still work 10 s after the replica key was disabled"
grep -q "SHREDDED: KMS refuses the key $key2: DisabledException" "$log" ||
	fail "the shred does not name the replica key: $(cat "$log")"
expect_exit 0 "$CMKFS" umount "$plain"
key enable 2

# with suspend: held while either key is refused, even though the other
# opens the volume; resumed once both grant access again
wait_log() { # PATTERN SECONDS
	local i
	for i in $(seq $(($2 * 10))); do
		grep -q "$1" "$log" && return 0
		sleep 0.1
	done
	return 1
}
mount_raw --revocation any --on-revoke suspend
key disable 1
wait_log "SUSPENDED: KMS refuses the key $key1: DisabledException" 10 || fail "no suspension: $(cat "$log")"
sleep 3
! grep -q RESUMED "$log" || fail "resumed while the first key is still refused: $(cat "$log")"
expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "SUSPENDED" "status while one key is refused"
key enable 1
wait_log "RESUMED: KMS allows" 10 || fail "no resume once both keys grant access: $(cat "$log")"
[ "$(io read)" = ok ] || fail "no I/O after the resume"
# and the first key is still among those checked
key disable 1
for i in $(seq 100); do
	[ "$(grep -c "SUSPENDED: KMS refuses the key $key1" "$log")" = 2 ] && break
	sleep 0.1
done
[ "$(grep -c "SUSPENDED: KMS refuses the key $key1" "$log")" = 2 ] ||
	fail "the first key was dropped from the checks after a resume: $(cat "$log")"
key enable 1
for i in $(seq 100); do
	[ "$(grep -c RESUMED "$log")" = 2 ] && break
	sleep 0.1
done
[ "$(io read)" = ok ] || fail "no I/O after the second resume"
expect_exit 0 "$CMKFS" umount "$plain"
expect_exit 2 "$CMKFS" mount --raw "$vol" "$plain" --revocation some

# ---- a mount in the middle of a reencryption checks both keys too ----
mount_raw
expect_exit 0 as "$root" "$CMKFS" reencrypt "$vol" --pause
expect_exit 0 as "$root" "$CMKFS" reencrypt "$vol" --background
expect_exit 0 "$CMKFS" umount "$plain"
expect_exit 0 "$CMKFS" status --json "$vol"
contains "$out" '"state":"paused"' "a reencryption held paused"
key disable 2
expect_exit 3 as "$root" "$CMKFS" mount --raw "$vol" "$plain" --revocation-check 1 --revocation any
contains "$err" "the key $key2 is disabled" "--revocation any on a volume being reencrypted"
mount_raw --reencrypt-paused
grep -q "its key $key2 does not open it: the key $key2 is disabled" "$log" ||
	fail "a mount of a volume being reencrypted does not look at its other key: $(cat "$log")"
expect_exit 0 "$CMKFS" umount "$plain"
key enable 2
mount_raw --revocation any --reencrypt-paused
grep -q "its key $key2 opens it too" "$log" || fail "the other key does not open a volume being reencrypted: $(cat "$log")"
expect_exit 0 as "$root" "$CMKFS" reencrypt --resume "$vol"
expect_exit 0 "$CMKFS" umount "$plain"
vk=$(volume_key_of "$root" "$vol")

# ---- an online reencryption keeps both keys ----
mount_raw
dd if=/dev/urandom of="$plain" bs=1M count=4 oflag=direct conv=notrunc status=none
sum=$(sha256sum < "$plain")
expect_exit 0 as "$root" "$CMKFS" reencrypt "$vol"
[ "$(sha256sum < "$plain")" = "$sum" ] || fail "the data changed in the online reencryption"
expect_exit 0 "$CMKFS" umount "$plain"
key disable 1
expect_exit 0 as "$root" "$CMKFS" unlock-test "$vol"
contains "$out" "unlocks through $key2" "the replica after an online reencryption"
vk2=$(volume_key_of "$root" "$vol")
[ -n "$vk2" ] && [ "$vk2" != "$vk" ] || fail "the replica does not open the new volume key"
mount_raw
[ "$(sha256sum < "$plain")" = "$sum" ] || fail "the data read through the replica key differs"
expect_exit 0 "$CMKFS" umount "$plain"
kmsd_stop
