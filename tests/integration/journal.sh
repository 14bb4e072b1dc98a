#!/bin/bash
# journal: under systemd the daemon logs to the journal with fields of its
# own.  A mount in the foreground whose stderr is the journal's stream (as a
# unit's is: $JOURNAL_STREAM names it) and a detached mount on a host where
# journald runs both send entries tagged cmkfs with CMKFS_VOLUME_UUID,
# CMKFS_KEY_ARN and CMKFS_EVENT; `journalctl -t cmkfs` shows a revocation
# as exactly one critical entry, carrying the KMS request id of the refusal
# (the one cmkfs-kmsd's access log has); with --on-revoke keep too, the
# checks that find it still revoked warn.  A journald that goes away
# mid-mount costs nothing but the entries.
#
# The journald is the test's own, in mount and PID namespaces where /run
# and /var/log are fresh tmpfs: the machine's journal, if any, sees
# nothing, and what the test starts ends with it.
# timeout: 180
. "$(dirname "$0")/../lib.sh"

need_mounts loop
JOURNALD=/lib/systemd/systemd-journald
for tool in $JOURNALD journalctl systemd-cat unshare; do
	command -v $tool > /dev/null || fail "$tool is missing (scripts/deps.sh installs systemd)"
done
if [ -z "${CMKFS_JOURNAL_NS:-}" ]; then
	rc=0
	# Its own PID namespace too: whatever it starts dies with it.
	CMKFS_JOURNAL_NS=1 unshare --mount --pid --fork --mount-proc \
		--propagation private /bin/bash "$0" || rc=$?
	exit $rc
fi

# ---- our own journald ----
mount -t tmpfs cmkfs-journal-run /run
mount -t tmpfs cmkfs-journal-log /var/log
mkdir -p /run/systemd/journal /run/log /run/cryptsetup /run/mount
$JOURNALD > "$TEST_TMPDIR/journald.out" 2>&1 &
journald_pid=$!
jctl() { journalctl -D /run/log/journal --no-pager "$@"; }
for _ in $(seq 100); do
	[ -S /run/systemd/journal/socket ] && break
	sleep 0.05
done
[ -S /run/systemd/journal/socket ] || fail "journald did not start: $(cat "$TEST_TMPDIR/journald.out")"

isolate_aws
kmsd_with_host
vol=$TEST_TMPDIR/v.img
mnt=$TEST_TMPDIR/mnt
mkdir "$mnt"
expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 64M --key-arn "$key"
uuid=$(cryptsetup luksUUID "$vol")

# entries FILTER...: the journal's cmkfs entries matching journalctl's
# FILTERs (FIELD=VALUE), one JSON object per line.
entries() { jctl -t cmkfs -o json "$@" 2> /dev/null || true; }
# field NAME: that field of each entry on stdin, one per line.
field() {
	$PYTHON -c '
import json, sys
for line in sys.stdin:
    print(json.loads(line).get(sys.argv[1], ""))' "$1"
}
await_entry() { # FILTER...: wait up to 10 s for a matching entry
	local _
	for _ in $(seq 100); do
		[ -n "$(entries "$@")" ] && return 0
		sleep 0.1
	done
	fail "no journal entry $*: $(entries)"
}

# ---- a unit's foreground mount: stderr is the journal's stream ----
(
	. "$host"
	export AWS_ENDPOINT_URL_KMS=$KMSD_URL
	exec systemd-cat -t cmkfs-unit /bin/bash -c \
		'export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2); exec "$0" "$@"' \
		"$CMKFS" mount --foreground "$vol" "$mnt" --revocation-check 1
) &
fg_pid=$!
await_entry CMKFS_EVENT=mount
e=$(entries CMKFS_EVENT=mount)
[ "$(echo "$e" | field CMKFS_VOLUME_UUID)" = "$uuid" ] || fail "mount entry: no CMKFS_VOLUME_UUID=$uuid: $e"
[ "$(echo "$e" | field CMKFS_KEY_ARN)" = "$key" ] || fail "mount entry: no CMKFS_KEY_ARN=$key: $e"
[ "$(echo "$e" | field PRIORITY)" = 6 ] || fail "mount entry: not info: $e"
contains "$(echo "$e" | field MESSAGE)" "mounted on $mnt" "mount entry"
mountpoint -q "$mnt" || fail "the foreground mount is not mounted"
# The daemon's entries are the journal's, not lines of the stream.
if jctl -t cmkfs-unit -o cat 2> /dev/null | grep "mounted on"; then
	fail "the daemon wrote its log to the stream as plain lines"
fi

# ---- a revocation: one critical entry, with the refusal's request id ----
as "$root" "$CMKFS" kms disable-key "$key" 2> /dev/null
await_entry CMKFS_EVENT=shred
sleep 1.5 # a second check would refuse again: it must not log another
crit=$(entries -p crit)
[ "$(echo "$crit" | grep -c .)" = 1 ] || fail "not one critical entry for the revocation: $crit"
[ "$(echo "$crit" | field CMKFS_EVENT)" = shred ] || fail "the critical entry is no shred: $crit"
[ "$(echo "$crit" | field PRIORITY)" = 2 ] || fail "the shred entry is not critical: $crit"
[ "$(echo "$crit" | field CMKFS_VOLUME_UUID)" = "$uuid" ] || fail "the shred entry names no volume: $crit"
contains "$(echo "$crit" | field MESSAGE)" "SHREDDED: KMS refuses the key $key" "the shred entry"
rid=$(echo "$crit" | field CMKFS_KMS_REQUEST_ID)
[ -n "$rid" ] || fail "the shred entry has no CMKFS_KMS_REQUEST_ID: $crit"
grep "request_id=$rid " "$state.log" | grep -q "action=Decrypt .*outcome=DisabledException" ||
	fail "request id $rid is not cmkfs-kmsd's refused Decrypt: $(grep "$rid" "$state.log")"
[ "$(jctl -t cmkfs -p crit -o cat | grep -c .)" = 1 ] || fail "journalctl -t cmkfs -p crit: not one line"
expect_exit 0 "$CMKFS" umount "$mnt"
wait $fg_pid || fail "the foreground mount exited with $?"
await_entry CMKFS_EVENT=unmount

# ---- a detached mount on a host where journald runs ----
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null
expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt"
[ "$(entries CMKFS_EVENT=mount | grep -c .)" = 2 ] || fail "the detached mount logged no mount entry: $(entries)"
[ "$(entries CMKFS_EVENT=mount | tail -n 1 | field CMKFS_VOLUME_UUID)" = "$uuid" ] ||
	fail "the detached mount's entry has no CMKFS_VOLUME_UUID"
expect_exit 0 "$CMKFS" umount "$mnt"

# ---- --on-revoke keep: one critical entry, warnings after ----
expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt" --on-revoke keep --revocation-check 1
as "$root" "$CMKFS" kms disable-key "$key" 2> /dev/null
await_entry CMKFS_EVENT=revoked-kept
sleep 2.5 # two more checks, refused too
kept=$(entries CMKFS_EVENT=revoked-kept)
[ "$(echo "$kept" | field PRIORITY | grep -c '^2$')" = 1 ] ||
	fail "--on-revoke keep: not one critical entry: $kept"
[ "$(echo "$kept" | field PRIORITY | grep -c '^4$')" -ge 1 ] ||
	fail "--on-revoke keep: the later refusals are not warnings: $kept"
[ "$(entries -p crit | grep -c .)" = 2 ] || fail "not two critical entries for two revocations: $(entries -p crit)"
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null

# journald goes away: the mount serves on and unmounts cleanly.
kill $journald_pid
wait $journald_pid 2> /dev/null || true
echo "written with no journal" > "$mnt/note"
sync
expect_exit 0 "$CMKFS" umount "$mnt"
kmsd_stop
