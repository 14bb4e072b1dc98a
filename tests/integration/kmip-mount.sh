#!/bin/bash
# kmip-mount: a volume bound to a KMIP server's key (PyKMIP,
# tests/kmip_lib.sh), mounted: data written reads back through a new mount
# and matches an XTS independent of cmkfs under the volume key that PyKMIP's
# own client unwraps; the KMIP server down is an outage, not a revocation
# (I/O goes on, warnings are logged, checks succeed again once it is back);
# a client key made readable by others (this host's own setting) is an
# outage too; the key revoked through KMIP (Revoke) shreds the mount within
# two check intervals — reads and writes fail with EIO, no key material stays in the
# daemon's memory — and a new mount is refused.
# transports: both
# timeout: 300
. "$(dirname "$0")/../lib.sh"
. "$CMKFS_SRC/tests/kmip_lib.sh"

need_mounts loop
kmip_server_start
trap 'kmip_server_stop; rm -rf "$LIB_TMPDIR"' EXIT
SCAN="$PYTHON $CMKFS_SRC/tests/tools/memscan.py"
pki=$KMIP_PKI
export CMKFS_KMIP_CERT=$pki/host.crt CMKFS_KMIP_KEY=$pki/host.key CMKFS_KMIP_CA=$pki/ca.crt
KEY=kmip://localhost:$KMIP_PORT/$(kmip_admin create)
vol=$TEST_TMPDIR/v.img
plain=$TEST_TMPDIR/plain
log=$TEST_TMPDIR/daemon.log

io() {
	direct_io "$plain" "$1"
}
mount_raw() { # [OPTIONS...]
	: > "$log"
	expect_exit 0 "$CMKFS" mount --raw "$vol" "$plain" --log "$log" --revocation-check 1 "$@"
}

expect_exit 0 "$CMKFS" create "$vol" --size 32M --key "$KEY"
uuid=$(cryptsetup luksUUID "$vol")

# ---- data written reads back, and is XTS under the volume key ----
mount_raw
head -c 4M /dev/urandom > "$TEST_TMPDIR/data"
dd if="$TEST_TMPDIR/data" of="$plain" bs=1M oflag=direct conv=notrunc status=none ||
	fail "writing through the mount"
expect_exit 0 "$CMKFS" umount "$plain"
mount_raw
cmp -n 4194304 "$TEST_TMPDIR/data" "$plain" || fail "the data did not read back through a new mount"
want=$(sha256sum < "$plain" | cut -d' ' -f1)
cryptsetup luksDump --dump-json-metadata "$vol" > "$TEST_TMPDIR/meta.json"
$PYTHON -c '
import json, sys
m = json.load(open(sys.argv[1]))
t = [t for t in m["tokens"].values() if t["type"] == "kmip"][0]
json.dump(t, open(sys.argv[2], "w"))
seg = m["segments"]["0"]
bits = 8 * next(k["key_size"] for k in m["keyslots"].values() if k["type"] == "luks2")
print("%s:%d:%d:%s" % (seg["encryption"], bits, seg["sector_size"], seg["offset"]))
' "$TEST_TMPDIR/meta.json" "$TEST_TMPDIR/token.json" > "$TEST_TMPDIR/segment"
kmip_admin unwrap "$TEST_TMPDIR/token.json" "$uuid" "$(cat "$TEST_TMPDIR/segment")" "$TEST_TMPDIR/secret"
"$CMKFS_BUILD/tests/vol-tool" unlock "$vol" 0 "$TEST_TMPDIR/secret" > "$TEST_TMPDIR/vk" ||
	fail "the secret PyKMIP unwrapped does not open keyslot 0"
vk=$(tr -d '\n' < "$TEST_TMPDIR/vk")
[ "$(xts_sum "$vol" "$vk")" = "$want" ] || fail "the volume is not XTS of the plaintext under its volume key"
secret=$(xxd -p -c 256 "$TEST_TMPDIR/secret")

# ---- the KMIP server down: an outage, not a revocation ----
kmip_server_stop
sleep 3.5
[ "$(io read)" = ok ] && [ "$(io write)" = ok ] || fail "I/O stopped while the KMIP server was down"
grep -q "cannot check access to $KEY" "$log" || fail "no warning while the KMIP server was down: $(cat "$log")"
grep -q SHREDDED "$log" && fail "shredded because the KMIP server was down"
kmip_server_start
for _ in $(seq 100); do
	grep -q "KMS answers again" "$log" && break
	sleep 0.2
done
grep -q "KMS answers again" "$log" || fail "checks did not succeed again after the server came back: $(tail "$log")"

# ---- this host's own setting broken: an outage too, not a revocation ----
# (a client key made readable by others is refused before it is used)
: > "$log"
chmod 644 "$pki/host.key"
sleep 3.5
[ "$(io read)" = ok ] || fail "I/O stopped while the client key was not private"
grep -q "cannot check access to $KEY" "$log" || fail "no warning with the client key readable: $(cat "$log")"
grep -q "KeyNotPrivate" "$log" || fail "the warning does not say why: $(cat "$log")"
grep -q SHREDDED "$log" && fail "shredded because of this host's own setting"
chmod 600 "$pki/host.key"
for _ in $(seq 100); do
	grep -q "KMS answers again" "$log" && break
	sleep 0.2
done
grep -q "KMS answers again" "$log" || fail "checks did not succeed again with the key private: $(tail "$log")"

# ---- Revoke: shredded within two intervals ----
pid=$(sed -n 's/^pid=//p' "$CMKFS_RUNTIME_DIR/$uuid/state")
kmip_admin revoke "${KEY##*/}"
t=$(until_eio "$plain") || fail "reads still work 10 s after the key was revoked"
echo "revoked: reads fail with EIO after ${t}s"
[ "$(io write)" = EIO ] || fail "writes still work after the shred"
grep -q "SHREDDED: KMS refuses the key $KEY" "$log" || fail "no shred in the log: $(cat "$log")"
rc=0
$SCAN "$pid" vk="$vk" vk.lo="${vk:0:64}" vk.hi="${vk:64}" secret="$secret" > "$TEST_TMPDIR/scan" || rc=$?
[ $rc = 0 ] || fail "key material in the daemon after the shred: $(cat "$TEST_TMPDIR/scan")"
expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "SHREDDED" "status after the shred"
expect_exit 0 "$CMKFS" umount "$plain"
expect_exit 3 "$CMKFS" mount --raw "$vol" "$plain"
contains "$err" "refuses this client the key $KEY" "a mount after the revocation"
