#!/bin/bash
# volume: cmkfs create / status / unlock-test against cmkfs-kmsd and the
# real cryptsetup — a volume only its KMS key can open, nothing half-made on
# failure, nothing overwritten by mistake, and every revocation path at
# unwrap time with its own message.
# timeout: 240
. "$(dirname "$0")/../lib.sh"

command -v cryptsetup > /dev/null || fail "cryptsetup is missing (scripts/deps.sh installs it)"
isolate_aws

state=$TEST_TMPDIR/kms
kmsd_init "$state"
root=$state.env
host=$TEST_TMPDIR/host.env
other=$TEST_TMPDIR/other.env
kmsd_principal "$state" arn:aws:iam::111111111111:role/db-host > "$host"
kmsd_principal "$state" arn:aws:iam::222222222222:role/db-host > "$other"
kmsd_start "$state" --region us-east-1 --region eu-west-1
key=$(as "$root" "$CMKFS" kms create-key --description volumes)
vols=$TEST_TMPDIR/vols
mkdir -p "$vols"

# nothing but the volumes we expect in the directory: no temporary files
only() {
	local got
	got=$(cd "$vols" && ls -A | xargs)
	[ "$got" = "$*" ] || fail "directory holds '$got', want '$*'"
}

# ---- create ----
expect_exit 0 as "$host" "$CMKFS" create "$vols/a.img" --size 64M --key-arn "$key"
contains "$out" "created $vols/a.img" "create"
contains "$out" "64.0 MiB usable" "create size"
contains "$out" "aes-xts-plain64, 512-bit key, 4096-byte sectors" "create cipher"
uuid=$(printf '%s\n' "$out" | sed -n 's/^  uuid *//p')
[ "$(stat -c %s "$vols/a.img")" = $((80 * 1024 * 1024)) ] || fail "file size $(stat -c %s "$vols/a.img")"
only a.img

# what cryptsetup sees
dump=$(cryptsetup luksDump "$vols/a.img")
for want in "Version:       	2" "UUID:          	$uuid" "cipher: aes-xts-plain64" "sector: 4096 [bytes]" \
	"PBKDF:      pbkdf2" "Iterations: 1000" "aws-kms" "Keyslot:    0"; do
	contains "$dump" "$want" "luksDump"
done
[ "$(printf '%s\n' "$dump" | grep -c '^  [0-9]*: luks2')" = 1 ] || fail "more than one keyslot"

# status, human and JSON
expect_exit 0 "$CMKFS" status "$vols/a.img"
contains "$out" "uuid         $uuid" "status uuid"
contains "$out" "keyslot 0    bound to $key" "status keyslot"
contains "$out" "64.0 MiB at offset 16777216" "status data"
expect_exit 0 "$CMKFS" status --json "$vols/a.img"
$PYTHON - "$out" "$key" <<'P' || fail "status --json"
import json, sys
s = json.loads(sys.argv[1])
assert s["only_kms_keyslots"] is True, s
assert s["data_size"] == 64 << 20 and s["sector_size"] == 4096 and s["encrypted"], s
assert s["keyslots"][0]["key_arn"] == sys.argv[2] and s["keyslots"][0]["kms_bound"], s
P

# unlock-test, and the secret KMS unwraps opens the volume for cryptsetup too
expect_exit 0 as "$host" "$CMKFS" unlock-test "$vols/a.img"
contains "$out" "ok: $vols/a.img unlocks through $key (keyslot 0)" "unlock-test"
unwrap_token "$host" "$vols/a.img" 0 "$TEST_TMPDIR/secret" || fail "the token does not unwrap under the context of its header"
# bound to the header: the UUID and the data segment
cryptsetup token export --token-id 0 "$vols/a.img" | $PYTHON -c '
import json, sys
c = json.load(sys.stdin)["encryption_context"]
assert c == {"cmkfs:volume": sys.argv[1], "cmkfs:segment": "aes-xts-plain64:512:4096:16777216"}, c
' "$uuid" || fail "the token is not bound to the UUID and the data segment"
[ "$(stat -c %s "$TEST_TMPDIR/secret")" = 32 ] || fail "unwrapped secret is not 32 bytes"
cryptsetup open --test-passphrase --key-file "$TEST_TMPDIR/secret" "$vols/a.img" || fail "cryptsetup refuses the KMS secret"
head -c 32 /dev/urandom > "$TEST_TMPDIR/wrong"
cryptsetup open --test-passphrase --key-file "$TEST_TMPDIR/wrong" "$vols/a.img" 2> /dev/null &&
	fail "cryptsetup accepts a random secret"

# ---- nothing overwritten by mistake ----
expect_exit 1 as "$host" "$CMKFS" create "$vols/a.img" --size 64M --key-arn "$key"
contains "$err" "holds encrypted data (a crypto_LUKS signature): refusing to overwrite it; add --force" "LUKS refused"
truncate -s 32M "$vols/fs.img"
mkfs.ext4 -q -F "$vols/fs.img"
expect_exit 1 as "$host" "$CMKFS" create "$vols/fs.img" --size 64M --key-arn "$key"
contains "$err" "ext4 signature" "ext4 refused"
expect_exit 0 as "$host" "$CMKFS" create "$vols/fs.img" --size 8M --key-arn "$key" --sector-size 512 --force
expect_exit 0 "$CMKFS" status "$vols/fs.img"
contains "$out" "sector size  512" "sector size 512"
only a.img fs.img

# ---- failures leave nothing behind ----
expect_exit 3 as "$other" "$CMKFS" create "$vols/b.img" --size 8M --key-arn "$key"
contains "$err" '"AWS": "arn:aws:iam::222222222222:role/db-host"' "statement for the unshared principal"
as "$root" "$CMKFS" kms disable-key "$key" 2> /dev/null
expect_exit 1 as "$host" "$CMKFS" create "$vols/b.img" --size 8M --key-arn "$key"
contains "$err" "is Disabled" "disabled key refused"
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null
if [ "$(id -u)" = 0 ]; then
	# a full filesystem: a small tmpfs (the runner unmounts it if we fail)
	mkdir -p "$TEST_TMPDIR/small"
	mount -t tmpfs -o size=8m tmpfs "$TEST_TMPDIR/small"
	expect_exit 1 as "$host" "$CMKFS" create "$TEST_TMPDIR/small/b.img" --size 64M --key-arn "$key"
	contains "$err" "cannot allocate 80.0 MiB for $TEST_TMPDIR/small/b.img: No space left on device" "no space"
	[ -z "$(ls -A "$TEST_TMPDIR/small")" ] || fail "a full disk left files behind"
	umount "$TEST_TMPDIR/small"
fi
expect_exit 2 as "$host" "$CMKFS" create "$vols/b.img" --size 8M
expect_exit 2 as "$host" "$CMKFS" create "$vols/b.img" --size 8M --key-arn "$key" --cipher null
only a.img fs.img

# ---- revocation at unwrap time, each with its own message ----
unlock() { expect_exit "$1" as "$host" "$CMKFS" unlock-test "$vols/a.img"; }
as "$root" "$CMKFS" kms disable-key "$key" 2> /dev/null
unlock 3
contains "$err" "the key $key is disabled" "disabled"
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null
unlock 0

as "$root" "$CMKFS" kms schedule-deletion "$key" 2> /dev/null
unlock 3
contains "$err" "is pending deletion" "pending deletion"
as "$root" "$CMKFS" kms cancel-deletion "$key" 2> /dev/null
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null
unlock 0

# key policy no longer allowing the host's role
as "$root" "$CMKFS" kms call PutKeyPolicy "{\"KeyId\":\"$key\",\"PolicyName\":\"default\",\"Policy\":\"{\\\"Statement\\\":[{\\\"Effect\\\":\\\"Allow\\\",\\\"Principal\\\":{\\\"AWS\\\":\\\"arn:aws:iam::111111111111:root\\\"},\\\"Action\\\":\\\"kms:*\\\",\\\"Resource\\\":\\\"*\\\"},{\\\"Effect\\\":\\\"Deny\\\",\\\"Principal\\\":{\\\"AWS\\\":\\\"arn:aws:iam::111111111111:role/db-host\\\"},\\\"Action\\\":\\\"kms:Decrypt\\\",\\\"Resource\\\":\\\"*\\\"}]}\"}" > /dev/null
unlock 3
contains "$err" "does not let this host decrypt" "policy change"
contains "$err" "AccessDeniedException" "policy change error name"

# grant revoked: another account's role may use the key only through a grant
gkey=$(as "$root" "$CMKFS" kms create-key --description granted)
expect_exit 3 as "$other" "$CMKFS" create "$vols/g.img" --size 8M --key-arn "$gkey"
grant=$(as "$root" "$CMKFS" kms call CreateGrant "{\"KeyId\":\"$gkey\",\"GranteePrincipal\":\"arn:aws:iam::222222222222:role/db-host\",\"Operations\":[\"GenerateDataKey\",\"Decrypt\",\"DescribeKey\"]}" |
	$PYTHON -c 'import json,sys; print(json.load(sys.stdin)["GrantId"])')
expect_exit 0 as "$other" "$CMKFS" create "$vols/g.img" --size 8M --key-arn "$gkey"
expect_exit 0 as "$other" "$CMKFS" unlock-test "$vols/g.img"
as "$root" "$CMKFS" kms revoke-grant "$gkey" "$grant" 2> /dev/null
expect_exit 3 as "$other" "$CMKFS" unlock-test "$vols/g.img"
contains "$err" "does not let this host decrypt" "grant revoked"

# wrong region: explicitly asking another region than the key's
expect_exit 1 as "$root" "$CMKFS" unlock-test "$vols/fs.img" --region eu-west-1
contains "$err" "is in region us-east-1, but this client uses region eu-west-1" "wrong region"

# a token copied from another volume: its copy of the context names the
# other volume, so KMS is not even asked...
cryptsetup token export --token-id 0 "$vols/fs.img" > "$TEST_TMPDIR/foreign.json"
cryptsetup token export --token-id 0 "$vols/a.img" > "$TEST_TMPDIR/own.json"
cryptsetup token remove --token-id 0 "$vols/a.img"
cryptsetup token import --json-file "$TEST_TMPDIR/foreign.json" --token-id 0 "$vols/a.img"
expect_exit 1 as "$root" "$CMKFS" unlock-test "$vols/a.img"
contains "$err" "was made for volume $(cryptsetup luksUUID "$vols/fs.img"), not this one" "token of another volume"
# ...and with that copy edited to this volume's, KMS refuses the context
$PYTHON -c '
import json, sys
t = json.load(open(sys.argv[1]))
t["encryption_context"] = json.load(open(sys.argv[2]))["encryption_context"]
json.dump(t, open(sys.argv[1], "w"))' "$TEST_TMPDIR/foreign.json" "$TEST_TMPDIR/own.json"
cryptsetup token remove --token-id 0 "$vols/a.img"
cryptsetup token import --json-file "$TEST_TMPDIR/foreign.json" --token-id 0 "$vols/a.img"
expect_exit 3 as "$root" "$CMKFS" unlock-test "$vols/a.img"
contains "$err" "copied from another volume or tampered with" "context mismatch"
contains "$err" "InvalidCiphertextException" "context mismatch error name"

# a keyslot no token covers is flagged
cryptsetup luksAddKey --batch-mode --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$TEST_TMPDIR/secret" "$vols/a.img" "$TEST_TMPDIR/wrong" 2> /dev/null ||
	fail "cryptsetup luksAddKey failed"
expect_exit 0 "$CMKFS" status "$vols/a.img"
contains "$out" "keyslot 1    NOT BOUND to a KMS key" "unbound keyslot flagged"
expect_exit 0 "$CMKFS" status --json "$vols/a.img"
$PYTHON -c 'import json,sys; s = json.loads(sys.argv[1]); assert s["only_kms_keyslots"] is False and not s["keyslots"][1]["kms_bound"], s' "$out" ||
	fail "unbound keyslot not flagged in JSON"
# damaged headers: the primary alone is recovered from (in memory: opening
# writes nothing); with both copies gone, a clear error and nothing written
expect_exit 0 as "$root" "$CMKFS" create "$vols/h.img" --size 8M --key-arn "$key"
dd if=/dev/zero of="$vols/h.img" bs=4096 count=1 conv=notrunc status=none
sum=$(sha256sum < "$vols/h.img")
expect_exit 0 as "$root" "$CMKFS" unlock-test "$vols/h.img"
[ "$(sha256sum < "$vols/h.img")" = "$sum" ] || fail "unlock-test wrote to a damaged volume"
dd if=/dev/zero of="$vols/h.img" bs=4096 count=8 conv=notrunc status=none
sum=$(sha256sum < "$vols/h.img")
expect_exit 1 as "$root" "$CMKFS" unlock-test "$vols/h.img"
contains "$err" "is not a LUKS2 volume" "both headers gone"
[ "$(sha256sum < "$vols/h.img")" = "$sum" ] || fail "a failed unlock-test wrote to the volume"
kmsd_stop
echo "volumes behave"
