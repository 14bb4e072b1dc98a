#!/bin/bash
# header-tamper: the volume header is untrusted input.  Each case rewrites
# a copy of one written volume's LUKS2 metadata as an attacker who can write
# the file would (the JSON edited and both checksums recomputed, or through
# cryptsetup itself), then asks cmkfs to unlock-test and mount it.  Each is
# refused — before any KMS call where the header alone says so, and never
# with a write to the file — or, where the header is still sound, opens with
# its data intact and stores no plaintext.  status names a refused header,
# and the binding of each token.
# transports: both
# timeout: 240
. "$(dirname "$0")/../lib.sh"

need_mounts
isolate_aws
kmsd_with_host
tamper() { $PYTHON "$CMKFS_SRC/tests/tools/luks2-tamper.py" "$@" || fail "luks2-tamper $*"; }

pristine=$TEST_TMPDIR/pristine.img
vol=$TEST_TMPDIR/t.img
plain=$TEST_TMPDIR/plain
expect_exit 0 as "$host" "$CMKFS" create "$pristine" --size 32M --key-arn "$key"
uuid=$(cryptsetup luksUUID "$pristine")
segment="aes-xts-plain64:512:4096:16777216"

# Data to find again: random bytes and a marker, written through a mount.
head -c $((1 << 20)) /dev/urandom > "$TEST_TMPDIR/data"
expect_exit 0 as "$host" "$CMKFS" mount --raw "$pristine" "$plain"
dd if="$TEST_TMPDIR/data" of="$plain" bs=1M seek=3 oflag=direct conv=notrunc status=none ||
	fail "write through the mount"
expect_exit 0 "$CMKFS" umount "$plain"

kms_calls() { wc -l < "$state.log"; }

# refused NAME WANT [before-kms|by-kms]: a fresh copy was tampered with;
# unlock-test and mount both fail saying WANT, nothing is mounted, the file
# is not written.  before-kms: KMS was not asked; by-kms: KMS refused (exit
# 3); else the keyslot did not open (exit 1).
refused() {
	local name=$1 want=$2 sum calls code=1
	[ "${3:-}" = by-kms ] && code=3
	sum=$(sha256sum < "$vol")
	calls=$(kms_calls)
	expect_exit $code as "$host" "$CMKFS" unlock-test "$vol"
	contains "$err" "$want" "$name: unlock-test"
	expect_exit $code as "$host" "$CMKFS" mount --raw "$vol" "$plain"
	contains "$err" "$want" "$name: mount"
	[ ! -e "$plain" ] || fail "$name: a refused mount left $plain"
	grep -q " $plain " /proc/mounts && fail "$name: mounted"
	[ "$(sha256sum < "$vol")" = "$sum" ] || fail "$name: the refused volume was written"
	if [ "${3:-}" = before-kms ]; then
		[ "$(kms_calls)" = "$calls" ] || fail "$name: KMS was asked: $(tail -n 1 "$state.log")"
	fi
	echo "refused: $name"
}
fresh() { cp --sparse=always "$pristine" "$vol"; }

# opens NAME: the tampered copy still unlocks; its data is intact, and a
# marker written through a mount lies nowhere in the file in the clear.
opens() {
	local name=$1
	expect_exit 0 as "$host" "$CMKFS" unlock-test "$vol"
	expect_exit 0 as "$host" "$CMKFS" mount --raw "$vol" "$plain"
	cmp -s <(dd if="$plain" bs=1M skip=3 count=1 iflag=direct status=none) "$TEST_TMPDIR/data" ||
		fail "$name: the data does not read back"
	printf 'CMKFS-TAMPER-PLAINTEXT-%.0s' $(seq 200) |
		dd of="$plain" bs=4096 seek=100 iflag=fullblock oflag=direct,sync conv=notrunc,sync status=none ||
		fail "$name: write"
	expect_exit 0 "$CMKFS" umount "$plain"
	grep -q "CMKFS-TAMPER-PLAINTEXT" "$vol" && fail "$name: plaintext in the volume file"
	echo "opens, data intact: $name"
}

# ---- the data segment: only aes-xts-plain64, refused before KMS ----
fresh
tamper "$vol" 'm["segments"]["0"]["encryption"] = "cipher_null-ecb"'
refused "segment cipher_null" 'segment 0 "encryption" is "cipher_null-ecb"' before-kms
expect_exit 0 "$CMKFS" status --json "$vol"
$PYTHON - "$out" <<'P' || fail "status of a refused header"
import json, sys
s = json.loads(sys.argv[1])
assert s["allow_list"] == "insecure-only" and s["refused"] is None, s
P
# --insecure passes the allow-list, but the key is bound to the segment
expect_exit 1 as "$host" "$CMKFS" mount --raw --insecure "$vol" "$plain"
contains "$err" "the header does not match what the key was bound to" "cipher_null with --insecure"
for enc in aes-cbc-plain aes-xts-plain aes-cbc-essiv:sha256 serpent-xts-plain64; do
	fresh
	tamper "$vol" "m['segments']['0']['encryption'] = '$enc'"
	refused "segment $enc" "cmkfs accepts" before-kms
done
fresh
tamper "$vol" 'm["segments"]["0"]["type"] = "linear"; m["segments"]["0"].pop("encryption"); m["segments"]["0"].pop("sector_size"); m["segments"]["0"].pop("iv_tweak")'
refused "a linear (plaintext) segment" "" before-kms
fresh
tamper "$vol" 'm["segments"]["0"]["integrity"] = {"type": "hmac(sha256)", "journal_encryption": "none", "journal_integrity": "none"}'
refused "integrity added" "" before-kms

# ---- where the data lies ----
fresh
tamper "$vol" 'm["segments"]["0"]["offset"] = str(8 << 20)'
refused "offset into the keyslots area" "LUKS2 header" before-kms
fresh
tamper "$vol" 'm["segments"]["1"] = dict(m["segments"]["0"], offset=str(24 << 20)); m["segments"]["0"]["size"] = str(8 << 20); m["digests"]["0"]["segments"].append("1")'
refused "a second segment" "" before-kms

# ---- a sound header whose segment changed: the binding refuses it ----
fresh
tamper "$vol" 'm["segments"]["0"]["sector_size"] = 512'
refused "sector size 4096 -> 512" "the header does not match what the key was bound to" before-kms
contains "$err" "$segment" "the binding names what the key was bound to"
fresh
tamper "$vol" 'm["segments"]["0"]["offset"] = str(17 << 20)'
refused "data offset moved" "the header does not match what the key was bound to" before-kms
# ...also when the attacker edits the token's copy to match: KMS refuses
fresh
tamper "$vol" 'm["segments"]["0"]["sector_size"] = 512
for t in m["tokens"].values():
    if t["type"] == "aws-kms":
        t["encryption_context"]["cmkfs:segment"] = "aes-xts-plain64:512:512:16777216"'
refused "sector size changed, token copy too" "the header does not match what the key was bound to" by-kms
# ...or strips the segment from it
fresh
tamper "$vol" '[t["encryption_context"].pop("cmkfs:segment") for t in m["tokens"].values() if t["type"] == "aws-kms"]; m["segments"]["0"]["sector_size"] = 512'
refused "segment binding stripped from the token" "the header does not match what the key was bound to" by-kms

# ---- keyslots ----
fresh
tamper "$vol" 'm["keyslots"]["0"]["area"]["encryption"] = "cipher_null-ecb"'
refused "keyslot area cipher_null" "weakly" before-kms
fresh
tamper "$vol" 'm["keyslots"]["0"]["key_size"] = 32'
refused "keyslot key size 256 bits" "" before-kms
# a keyslot an attacker can open (its own key, known passphrase): the data
# is never served or written under it
fresh
printf 'attacker' > "$TEST_TMPDIR/pass"
expect_exit 0 cryptsetup luksAddKey --batch-mode --unbound --key-size 512 --pbkdf pbkdf2 \
	--pbkdf-force-iterations 1000 "$vol" "$TEST_TMPDIR/pass"
opens "an unbound keyslot with a known passphrase"
# ...and the data segment rebound to that key's digest
fresh
expect_exit 0 cryptsetup luksAddKey --batch-mode --unbound --key-size 512 --pbkdf pbkdf2 \
	--pbkdf-force-iterations 1000 "$vol" "$TEST_TMPDIR/pass"
tamper "$vol" 'd = [k for k, v in m["digests"].items() if "1" in v["keyslots"]][0]
m["digests"][d]["segments"] = ["0"]'
refused "the segment listed by the attacker key's digest too" "" before-kms
fresh
expect_exit 0 cryptsetup luksAddKey --batch-mode --unbound --key-size 512 --pbkdf pbkdf2 \
	--pbkdf-force-iterations 1000 "$vol" "$TEST_TMPDIR/pass"
tamper "$vol" 'd = [k for k, v in m["digests"].items() if "1" in v["keyslots"]][0]
m["digests"][d]["segments"] = ["0"]; m["digests"]["0"]["segments"] = []'
refused "the segment moved to the attacker key's digest" ""

# ---- tokens ----
fresh
tamper "$vol" "[t['encryption_context'].__setitem__('cmkfs:volume', '00000000-1111-2222-3333-444444444444') for t in m['tokens'].values() if t['type'] == 'aws-kms']"
refused "token context edited to another UUID" "made for volume 00000000-1111-2222-3333-444444444444" before-kms
expect_exit 0 as "$host" "$CMKFS" create "$TEST_TMPDIR/other.img" --size 8M --key-arn "$key"
fresh
tamper "$vol" --token-from "$TEST_TMPDIR/other.img" 'ts = {i: t for i, t in other["tokens"].items() if t["type"] == "aws-kms"}
for i, t in ts.items():
    t["keyslots"] = ["0"]; m["tokens"][i] = t'
refused "token copied from another volume" "copied from another volume" before-kms
fresh
tamper "$vol" --token-from "$TEST_TMPDIR/other.img" "ts = {i: t for i, t in other['tokens'].items() if t['type'] == 'aws-kms'}
for i, t in ts.items():
    t['keyslots'] = ['0']; t['encryption_context']['cmkfs:volume'] = '$uuid'; m['tokens'][i] = t"
refused "token copied, its context edited" "the header does not match what the key was bound to" by-kms
fresh
tamper "$vol" '[t["encryption_context"].__setitem__("cmkfs:extra", "x") for t in m["tokens"].values() if t["type"] == "aws-kms"]'
refused "token context with an unknown key" "" before-kms
# the region picks the KMS endpoint: a region name, and the key's own
fresh
tamper "$vol" '[t.__setitem__("region", "x@127.0.0.1:9/") for t in m["tokens"].values() if t["type"] == "aws-kms"]'
refused "token region naming another host" "region is not its key's AWS region" before-kms
fresh
tamper "$vol" '[t.__setitem__("region", "eu-west-1") for t in m["tokens"].values() if t["type"] == "aws-kms"]'
refused "token region not its key's" "region is not its key's AWS region" before-kms

# ---- a whole header replaced by one of the attacker's: same UUID and
# segment, its own volume key, a token under a key this host may also use.
# The binding cannot tell (its values are public); pinning the CMK can ----
att=$(as "$root" "$CMKFS" kms create-key --description attacker) || fail "attacker key"
as "$host" "$CMKFS" kms call GenerateDataKey "{\"KeyId\":\"$att\",\"NumberOfBytes\":32,\"EncryptionContext\":{\"cmkfs:volume\":\"$uuid\",\"cmkfs:segment\":\"$segment\"}}" > "$TEST_TMPDIR/att.gdk" ||
	fail "GenerateDataKey under the attacker's key"
$PYTHON - "$TEST_TMPDIR/att.gdk" "$TEST_TMPDIR/att.secret" "$TEST_TMPDIR/att.token" "$att" "$uuid" "$segment" <<'P' || fail "the attacker's token"
import base64, json, sys
g = json.load(open(sys.argv[1]))
open(sys.argv[2], "wb").write(base64.b64decode(g["Plaintext"]))
json.dump({"type": "aws-kms", "keyslots": ["0"], "key_arn": sys.argv[4], "region": "us-east-1",
           "ciphertext": g["CiphertextBlob"],
           "encryption_context": {"cmkfs:volume": sys.argv[5], "cmkfs:segment": sys.argv[6]},
           "created": "2026-01-01T00:00:00Z"}, open(sys.argv[3], "w"))
P
head -c 64 /dev/urandom > "$TEST_TMPDIR/att.vk"
fresh
expect_exit 0 cryptsetup luksFormat -q --type luks2 --uuid "$uuid" --cipher aes-xts-plain64 --key-size 512 \
	--sector-size 4096 --offset 32768 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--volume-key-file "$TEST_TMPDIR/att.vk" --key-file "$TEST_TMPDIR/att.secret" "$vol"
expect_exit 0 cryptsetup token import --json-file "$TEST_TMPDIR/att.token" --token-id 0 "$vol"
# pinned by --key-arn, or by CMKFS_KEY_ARN (the systemd unit's config)
calls=$(kms_calls)
expect_exit 1 as "$host" "$CMKFS" unlock-test --key-arn "$key" "$vol"
contains "$err" "names the key $att, not $key" "a replaced header, pinned key"
expect_exit 1 as "$host" "$CMKFS" mount --raw --key-arn "$key" "$vol" "$plain"
contains "$err" "the header may have been replaced" "mount of a replaced header, pinned key"
expect_exit 1 as "$host" env CMKFS_KEY_ARN="$key" "$CMKFS" mount --raw "$vol" "$plain"
contains "$err" "names the key $att, not $key" "mount, pinned by CMKFS_KEY_ARN"
[ ! -e "$plain" ] || fail "a refused mount left $plain"
[ "$(kms_calls)" = "$calls" ] || fail "KMS was asked for a token of an unpinned key"
echo "refused: a replaced header whose token is under another key (pinned)"
# the sound volume opens with the key pinned
fresh
expect_exit 0 as "$host" "$CMKFS" unlock-test --key-arn "$key" "$vol"
expect_exit 0 as "$host" env CMKFS_KEY_ARN="$key" "$CMKFS" unlock-test "$vol"

# ---- requirements, and two copies that disagree ----
fresh
tamper "$vol" 'm["config"]["requirements"] = {"mandatory": ["online-reencrypt-v2"]}'
refused "reencryption requirement forged" "" before-kms
fresh
tamper "$vol" 'm["config"]["requirements"] = {"mandatory": ["opal"]}'
refused "unknown requirement" "" before-kms
fresh
tamper "$vol" 'm["segments"]["0"]["size"] = str(4 << 20)
m["segments"]["1"] = dict(m["segments"]["0"], offset=str(20 << 20), size="dynamic")
m["segments"]["2"] = dict(m["segments"]["0"], flags=["backup-final"])
m["digests"]["0"]["segments"] += ["1", "2"]'
refused "reencryption segments without a reencryption" "" before-kms
expect_exit 0 "$CMKFS" status --json "$vol"
$PYTHON - "$out" <<'P' || fail "status of reencryption segments without a reencryption"
import json, sys
s = json.loads(sys.argv[1])
assert s["allow_list"] == "refused" and "disagree" in s["refused"], s
P
fresh
tamper "$vol" --copy secondary --newer 'm["segments"]["0"]["encryption"] = "cipher_null-ecb"'
refused "a newer secondary copy with cipher_null" "" before-kms
fresh
tamper "$vol" --copy secondary --newer 'm["segments"]["0"]["sector_size"] = 512'
refused "a newer secondary copy with another sector size" "" before-kms

# ---- a volume whose secret was bound before the segment was: it keeps
# opening, and `rotate --rewrap` binds the segment too ----
fresh
unwrap_token "$host" "$vol" 0 "$TEST_TMPDIR/current" || fail "unwrap the current secret"
as "$host" "$CMKFS" kms call GenerateDataKey "{\"KeyId\":\"$key\",\"NumberOfBytes\":32,\"EncryptionContext\":{\"cmkfs:volume\":\"$uuid\"}}" > "$TEST_TMPDIR/gdk" ||
	fail "GenerateDataKey"
$PYTHON - "$TEST_TMPDIR/gdk" "$TEST_TMPDIR/old.secret" "$TEST_TMPDIR/old.token" "$key" "$uuid" <<'P' || fail "an old-style token"
import base64, json, sys
g = json.load(open(sys.argv[1]))
open(sys.argv[2], "wb").write(base64.b64decode(g["Plaintext"]))
json.dump({"type": "aws-kms", "keyslots": ["1"], "key_arn": sys.argv[4], "region": "us-east-1",
           "ciphertext": g["CiphertextBlob"], "encryption_context": {"cmkfs:volume": sys.argv[5]},
           "created": "2026-01-01T00:00:00Z"}, open(sys.argv[3], "w"))
P
expect_exit 0 cryptsetup luksAddKey -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$TEST_TMPDIR/current" --key-slot 1 "$vol" "$TEST_TMPDIR/old.secret"
expect_exit 0 cryptsetup token import --json-file "$TEST_TMPDIR/old.token" "$vol"
expect_exit 0 cryptsetup token remove --token-id 0 "$vol"
expect_exit 0 cryptsetup luksKillSlot -q --key-file "$TEST_TMPDIR/old.secret" "$vol" 0
expect_exit 0 "$CMKFS" status --json "$vol"
$PYTHON - "$out" <<'P' || fail "status of an old-style volume"
import json, sys
s = json.loads(sys.argv[1])
assert [(k["keyslot"], k["binding"]) for k in s["keyslots"]] == [(1, "volume")], s
P
expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "binding volume only" "status text of an old-style volume"
opens "a volume bound before the segment was"
expect_exit 0 as "$host" "$CMKFS" rotate --rewrap "$vol"
expect_exit 0 "$CMKFS" status --json "$vol"
$PYTHON - "$out" <<'P' || fail "status after rotate --rewrap"
import json, sys
s = json.loads(sys.argv[1])
assert [(k["keyslot"], k["binding"]) for k in s["keyslots"]] == [(1, "volume+segment")], s
P
opens "the same after rotate --rewrap"
cp --sparse=always "$vol" "$TEST_TMPDIR/rewrapped.img"
tamper "$vol" 'm["segments"]["0"]["sector_size"] = 512'
refused "sector size changed after rotate --rewrap" "the header does not match what the key was bound to" before-kms

# ---- the untouched volume still opens; status shows its binding ----
fresh
opens "the untouched copy"
expect_exit 0 "$CMKFS" status --json "$vol"
$PYTHON - "$out" <<'P' || fail "status of a sound volume"
import json, sys
s = json.loads(sys.argv[1])
assert s["allow_list"] == "pass" and s["refused"] is None, s
assert [k["binding"] for k in s["keyslots"]] == ["volume+segment"], s
P
kmsd_stop
echo "ok"
