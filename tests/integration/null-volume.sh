#!/bin/bash
# null-volume: `cmkfs create --cipher null --insecure` makes a benchmark
# volume that is NOT ENCRYPTED — refused without --insecure; status and
# mount say so; cryptsetup reads its data segment as cipher_null-ecb; it
# unlocks through KMS like any volume; and what is written through a raw
# mount lands in the volume file unchanged (the intended behaviour).
# transports: both
# timeout: 120
. "$(dirname "$0")/../lib.sh"

need_mounts
isolate_aws

kmsd_with_host
vol=$TEST_TMPDIR/null.img
plain=$TEST_TMPDIR/plain

# Without --insecure: a usage error, and nothing created.
expect_exit 2 as "$host" "$CMKFS" create "$vol" --size 64M --key-arn "$key" --cipher null
contains "$err" "NOT ENCRYPTED" "create --cipher null without --insecure"
[ ! -e "$vol" ] || fail "a refused create left $vol"

expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 64M --key-arn "$key" --cipher null --insecure
contains "$out" "cipher       cipher_null-ecb" "create"
contains "$out" "NOT ENCRYPTED" "create warning"
uuid=$(printf '%s\n' "$out" | sed -n 's/^  uuid *//p')
[ -n "$uuid" ] || fail "create printed no uuid"

expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "cipher_null-ecb: NOT ENCRYPTED" "status"
expect_exit 0 "$CMKFS" status --json "$vol"
$PYTHON - "$out" <<'P' || fail "status --json"
import json, sys
s = json.loads(sys.argv[1])
assert s["cipher"] == "cipher_null-ecb" and s["encrypted"] is False, s
P

# cryptsetup parses the header; the data segment is cipher_null, the
# keyslot still AES-XTS.
dump=$(cryptsetup luksDump "$vol") || fail "cryptsetup luksDump"
contains "$dump" "cipher: cipher_null-ecb" "luksDump segment"
contains "$dump" "Cipher:     aes-xts-plain64" "luksDump keyslot"
contains "$dump" "$uuid" "luksDump uuid"

# The header allow-list refuses a cipher_null volume, before any KMS
# call, unless --insecure says it is one on purpose.
assert_status_allow() {
	expect_exit 0 "$CMKFS" status --json "$vol"
	$PYTHON - "$out" "$1" <<'P' || fail "status --json allow_list"
import json, sys
s = json.loads(sys.argv[1])
assert s["allow_list"] == sys.argv[2], s
P
}
assert_status_allow insecure-only
calls=$(wc -l < "$state.log")
expect_exit 1 as "$host" "$CMKFS" unlock-test "$vol"
contains "$err" "segment 0 \"encryption\" is \"cipher_null-ecb\"" "unlock-test without --insecure"
contains "$err" "--insecure" "unlock-test names the way out"
expect_exit 1 as "$host" "$CMKFS" mount --raw "$vol" "$plain"
contains "$err" "NOT ENCRYPTED" "mount without --insecure"
[ ! -e "$plain" ] || fail "a refused mount left $plain"
[ "$(wc -l < "$state.log")" = "$calls" ] || fail "a refused volume was unwrapped through KMS: $(tail -n 2 "$state.log")"
expect_exit 0 as "$host" "$CMKFS" unlock-test --insecure "$vol"
contains "$out" "ok: $vol unlocks through $key (keyslot 0)" "unlock-test"

# Mounted raw: a warning, and the data goes to the file as it is.
expect_exit 0 as "$host" "$CMKFS" mount --raw --insecure "$vol" "$plain" --log "$TEST_TMPDIR/daemon.log"
contains "$err" "NOT ENCRYPTED" "mount warning"
[ "$(stat -c %s "$plain")" = $((64 << 20)) ] || fail "plaintext size $(stat -c %s "$plain")"
$PYTHON - "$plain" <<'P'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, (b"CMKFS-NULL-CIPHER-MARKER-" * 1000)[:8192], 1234 * 4096 + 100)
os.fsync(fd)
os.close(fd)
P
expect_exit 0 "$CMKFS" umount "$plain"
grep -q " $plain " /proc/mounts && fail "still mounted after umount"
grep -q "NOT ENCRYPTED" "$TEST_TMPDIR/daemon.log" || fail "the daemon did not warn"

# The pattern is in the volume file, at data offset + its offset.
$PYTHON - "$vol" <<'P' || fail "the written pattern is not in the volume file"
import sys
want = (b"CMKFS-NULL-CIPHER-MARKER-" * 1000)[:8192]
with open(sys.argv[1], "rb") as f:
    f.seek((16 << 20) + 1234 * 4096 + 100)
    got = f.read(len(want))
assert got == want, "data at the expected place differs"
P
kmsd_stop
echo "ok"
