#!/bin/bash
# luks2-cryptsetup: cmkfs's LUKS2 volumes and the real cryptsetup CLI read
# each other.  A volume cmkfs formats (through tests/tools/vol-tool) shows
# cmkfs's parameters in `cryptsetup luksDump`, opens with the secret and
# only with it, and gives cryptsetup the volume key cmkfs unlocks; a volume
# cryptsetup formats (token imported by `cryptsetup token import`) unlocks
# in cmkfs to the key cryptsetup dumps.  Then damage: a zeroed primary
# header still unlocks (from the secondary copy) without anything being
# written; zeroed metadata in both copies is a clean error that leaves the
# data area as it was.
#
# LUKS2 layout with libcryptsetup's defaults, which both tools use here:
#   [0, 16K)    primary copy: 4 KiB binary header + JSON area
#   [16K, 32K)  secondary copy (offset = the primary's hdr_size)
#   [32K, 16M)  keyslots area
#   [16M, end)  data segment
# timeout: 120
. "$(dirname "$0")/../lib.sh"

VT=$CMKFS_BUILD/tests/vol-tool
[ -x "$VT" ] || fail "$VT is missing (make tests first)"
command -v cryptsetup > /dev/null || fail "cryptsetup is missing (scripts/deps.sh installs cryptsetup-bin)"

T=$TEST_TMPDIR
UUID=8d3c6a1e-42b7-4f0e-9c5d-2a7b1e6f9d03
ARN=arn:aws:kms:us-east-1:111111111111:key/x
head -c 32 /dev/urandom > "$T/secret"
head -c 32 /dev/urandom > "$T/wrong"
printf '{"type":"aws-kms","keyslots":[],"key_arn":"%s"}' "$ARN" > "$T/token.json"

# The hex digits of cryptsetup's "MK dump:" block (the last thing it
# prints), on one line.
dumped_key() {
	cryptsetup luksDump --dump-volume-key --key-file "$2" --batch-mode "$1" |
		sed -n '/^MK dump:/,$p' | sed 's/^MK dump://' | tr -d ' \t\n'
}

# sha256 of LEN bytes of FILE from byte OFFSET (both multiples of 1 MiB).
region_sum() {
	dd if="$1" bs=1M skip=$(($2 / 1048576)) count=$(($3 / 1048576)) status=none | sha256sum | cut -d' ' -f1
}

# ---- cmkfs formats, cryptsetup reads --------------------------------------

truncate -s 32M "$T/a.img"
expect_exit 0 "$VT" format "$T/a.img" "$UUID" "$T/secret" 4096 "$T/token.json"

expect_exit 0 cryptsetup luksDump "$T/a.img"
dump=$(printf '%s\n' "$out" | tr -s ' \t' '  ')
contains "$dump" "Version: 2" "luksDump version"
contains "$dump" "UUID: $UUID" "luksDump UUID"
contains "$dump" "cipher: aes-xts-plain64" "data segment cipher"
contains "$dump" "sector: 4096 [bytes]" "sector size"
contains "$dump" "offset: 16777216 [bytes]" "data offset"
contains "$dump" "Key: 512 bits" "volume key size"
contains "$dump" "PBKDF: pbkdf2" "keyslot KDF"
contains "$dump" "Hash: sha256" "keyslot KDF hash"
contains "$dump" "Iterations: 1000" "keyslot KDF iterations"
contains "$dump" "0: aws-kms" "token"
printf '%s\n' "$dump" | grep -q "Time cost" && fail "an argon2 keyslot was made"

expect_exit 0 cryptsetup token export --token-id 0 "$T/a.img"
contains "$out" "\"key_arn\":\"$ARN\"" "exported token"
contains "$out" '"keyslots":["0"]' "exported token's keyslot"

expect_exit 0 cryptsetup open --test-passphrase --key-file "$T/secret" "$T/a.img"
expect_exit 2 cryptsetup open --test-passphrase --key-file "$T/wrong" "$T/a.img"

expect_exit 0 "$VT" unlock "$T/a.img" 0 "$T/secret"
ours=$out
[ ${#ours} -eq 128 ] || fail "vol-tool printed a ${#ours}-digit key"
theirs=$(dumped_key "$T/a.img" "$T/secret")
[ ${#theirs} -eq 128 ] || fail "cryptsetup dumped a ${#theirs}-digit key"
[ "$ours" = "$theirs" ] || fail "volume keys differ: vol-tool $ours, cryptsetup $theirs"
echo "cmkfs-made volume: cryptsetup agrees on parameters, secret and key"

expect_exit 1 "$VT" unlock "$T/a.img" 0 "$T/wrong"
contains "$err" "errno=1:" "wrong secret is EPERM"
contains "$err" "does not open keyslot 0" "wrong secret"

# ---- cryptsetup formats, cmkfs reads --------------------------------------

truncate -s 32M "$T/b.img"
expect_exit 0 cryptsetup luksFormat --type luks2 --cipher aes-xts-plain64 \
	--key-size 512 --sector-size 4096 --pbkdf pbkdf2 \
	--pbkdf-force-iterations 1000 --key-file "$T/secret" --batch-mode "$T/b.img"
expect_exit 0 cryptsetup token import --json-file "$T/token.json" --key-slot 0 "$T/b.img"

expect_exit 0 "$VT" unlock "$T/b.img" 0 "$T/secret"
ours=$out
theirs=$(dumped_key "$T/b.img" "$T/secret")
[ ${#theirs} -eq 128 ] || fail "cryptsetup dumped a ${#theirs}-digit key"
[ "$ours" = "$theirs" ] || fail "volume keys differ: vol-tool $ours, cryptsetup $theirs"
expect_exit 0 "$VT" info "$T/b.img"
info=$out
contains "$info" "cipher=aes-xts-plain64" "info cipher"
contains "$info" "sector_size=4096" "info sector size"
contains "$info" "key_bytes=64" "info key size"
contains "$info" "data_offset=16777216" "info data offset"
contains "$info" "data_size=16777216" "info data size"
contains "$info" "keyslots=0" "info keyslots"
contains "$info" "tokens=0" "info tokens"
contains "$info" "\"key_arn\":\"$ARN\"" "info token JSON"
contains "$info" '"keyslots":["0"]' "info token keyslot"
echo "cryptsetup-made volume: cmkfs agrees on key and token"

# ---- damage -----------------------------------------------------------------

# Data in the data segment, so that its checksum means something.
dd if=/dev/urandom of="$T/a.img" bs=1M seek=16 count=16 conv=notrunc status=none
key=$(dumped_key "$T/a.img" "$T/secret")
data=$(region_sum "$T/a.img" 16777216 16777216)

# Primary copy gone: the secondary opens it, and nothing is written.
cp "$T/a.img" "$T/c.img"
dd if=/dev/zero of="$T/c.img" bs=4096 count=1 conv=notrunc status=none
before=$(sha256sum < "$T/c.img")
expect_exit 0 "$VT" unlock "$T/c.img" 0 "$T/secret"
[ "$out" = "$key" ] || fail "unlock from the secondary header gave another key"
expect_exit 0 "$VT" info "$T/c.img"
contains "$out" "uuid=$UUID" "info from the secondary header"
[ "$(sha256sum < "$T/c.img")" = "$before" ] || fail "reading a damaged header wrote to the volume"
echo "primary header zeroed: unlocked from the secondary copy, nothing written"

# Both metadata copies gone (first 32 KiB; the keyslots area and the data
# are left): a clean error, and the data segment is untouched.
dd if=/dev/zero of="$T/a.img" bs=32K count=1 conv=notrunc status=none
before=$(sha256sum < "$T/a.img")
expect_exit 1 "$VT" unlock "$T/a.img" 0 "$T/secret"
contains "$err" "is not a LUKS2 volume" "both copies zeroed"
expect_exit 1 "$VT" info "$T/a.img"
[ "$(sha256sum < "$T/a.img")" = "$before" ] || fail "a failed open wrote to the volume"
[ "$(region_sum "$T/a.img" 16777216 16777216)" = "$data" ] || fail "the data segment changed"

# Both JSON areas damaged, binary headers intact: a "damaged" error.
cp "$T/c.img" "$T/d.img"
dd if=/dev/zero of="$T/d.img" bs=4096 seek=5 count=3 conv=notrunc status=none
before=$(sha256sum < "$T/d.img")
expect_exit 1 "$VT" unlock "$T/d.img" 0 "$T/secret"
contains "$err" "damaged" "both copies damaged"
[ "$(sha256sum < "$T/d.img")" = "$before" ] || fail "a failed open wrote to the volume"
[ "$(region_sum "$T/d.img" 16777216 16777216)" = "$data" ] || fail "the data segment changed"
echo "both header copies damaged: clean errors, data segment unchanged"

# The key comparisons compare something: two volumes, two keys.
[ "$key" != "$(dumped_key "$T/b.img" "$T/secret")" ] ||
	fail "two volumes dumped the same key"
exit 0
