#!/bin/bash
# token-plugin: the stock cryptsetup opens cmkfs volumes through KMS with
# the build's libcryptsetup-token-aws-kms.so, loaded from this test's own
# directory (tests/tools/token-path.c, preloaded, points libcryptsetup 2.6
# there: it has no --external-tokens-path).  Without device-mapper only
# what needs none is run: `open --test-passphrase --token-only` (the
# unwrap and the keyslot), luksDump (the plugin's dump) and token import
# (its validate).  Checked: it opens with KMS up, and only through the
# plugin; each way KMS refuses (disabled, pending deletion, key policy,
# grant revoked, no such key, another region, a ciphertext under another
# volume's context) fails with the reason `cmkfs unlock-test` gives, as
# does a token copied from another volume and a CMK other than the pinned
# one (KMS not asked); KMS down or silent fails as "missing resource"
# within CMKFS_TOKEN_TIMEOUT; luksDump shows key, region, binding and
# context but not the ciphertext; malformed tokens are refused at import
# and leave the header as it was; a PIN is refused; the secret never shows
# in --debug output; the plugin exports exactly the six symbols of the
# token ABI.
# timeout: 240
. "$(dirname "$0")/../lib.sh"

PLUGIN=$CMKFS_BUILD/libcryptsetup-token-aws-kms.so
SHIM=$CMKFS_BUILD/tests/token-path.so
PIN_TOKEN=$CMKFS_BUILD/tests/pin-token.so
CRYPTSETUP=/sbin/cryptsetup
for f in "$PLUGIN" "$SHIM" "$PIN_TOKEN"; do
	[ -f "$f" ] || fail "$f is not built"
done
[ -x $CRYPTSETUP ] || fail "$CRYPTSETUP is missing (scripts/deps.sh installs cryptsetup-bin)"

T=$TEST_TMPDIR
plugin_setup
TOKENS=$PLUGIN_DIR
PRELOAD=$PLUGIN_PRELOAD
ln -s "$PIN_TOKEN" "$TOKENS/libcryptsetup-token-cmkfs-test-pin.so"

# cs [VAR=VALUE...] ARGS...: the stock cryptsetup, as the database host,
# with the test's plugins.
cs() {
	as "$host" env LD_PRELOAD="$PRELOAD" CMKFS_TEST_TOKEN_DIR="$TOKENS" "$@"
}

# decrypts: how many Decrypt requests the KMS has logged.
decrypts() {
	grep -c ' action=Decrypt ' "$state.log" || true
}

# edit_token VOLUME ID PYTHON: token ID of VOLUME as JSON, changed by the
# Python statements PYTHON (on t), "keyslots" emptied for import.
edit_token() {
	cryptsetup token export --token-id "$2" "$1" | $PYTHON -c "
import json, sys
t = json.load(sys.stdin)
$3
t['keyslots'] = []
print(json.dumps(t))"
}

# ---- the exported symbols: the token ABI, nothing else ----
syms=$(nm -D --defined-only "$PLUGIN" | awk '$2 != "A" { print $3 }' | sort | tr '\n' ' ')
want="cryptsetup_token_buffer_free@@CRYPTSETUP_TOKEN_1.0 cryptsetup_token_dump@@CRYPTSETUP_TOKEN_1.0 cryptsetup_token_open@@CRYPTSETUP_TOKEN_1.0 cryptsetup_token_open_pin@@CRYPTSETUP_TOKEN_1.0 cryptsetup_token_validate@@CRYPTSETUP_TOKEN_1.0 cryptsetup_token_version@@CRYPTSETUP_TOKEN_1.0 "
[ "$syms" = "$want" ] || fail "exported symbols: $syms"
echo "exports exactly the six symbols of CRYPTSETUP_TOKEN_1.0"

isolate_aws
kmsd_with_host
vol=$T/v.img
other_vol=$T/w.img
expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 32M --key-arn "$key"
expect_exit 0 as "$host" "$CMKFS" create "$other_vol" --size 32M --key-arn "$key"
uuid=$(cryptsetup luksUUID "$vol")

# ---- KMS up: it opens, through the plugin and KMS ----
n=$(decrypts)
expect_exit 0 cs $CRYPTSETUP open --test-passphrase --token-only -v "$vol"
contains "$out" "Key slot 0 unlocked" "open through the plugin"
contains "$out" "keyslot secret unwrapped by KMS key $key" "the plugin's verbose line"
[ "$(decrypts)" = $((n + 1)) ] || fail "the open did not make exactly one KMS Decrypt"
expect_exit 0 cs $CRYPTSETUP open --test-passphrase --token-type aws-kms "$vol"
expect_exit 1 cs $CRYPTSETUP open --test-passphrase --token-only -v --disable-external-tokens "$vol"
contains "$out$err" "No usable token is available" "without plugins"
expect_exit 0 cs CMKFS_KEY_ARN="$key" $CRYPTSETUP open --test-passphrase --token-only "$vol"
echo "opens through the plugin with KMS up (and the pinned key)"

# ---- --debug shows neither the secret nor the ciphertext ----
unwrap_token "$root" "$vol" 0 "$T/secret" || fail "cannot unwrap the secret independently"
[ "$(stat -c %s "$T/secret")" = 32 ] || fail "the unwrapped secret is not 32 bytes"
hex=$(od -An -tx1 -v "$T/secret" | tr -d " \n")
b64=$(base64 -w0 < "$T/secret")
ct=$(cryptsetup token export --token-id 0 "$vol" | $PYTHON -c 'import json,sys; print(json.load(sys.stdin)["ciphertext"])')
expect_exit 0 cs $CRYPTSETUP open --test-passphrase --token-only --debug "$vol"
all="$out$err"
contains "$all" "aws-kms token 0: KMS within" "the plugin's debug lines"
contains "$all" "Trying to load $TOKENS/libcryptsetup-token-aws-kms.so" "the build's plugin, from the test's directory"
for s in "$hex" "${hex^^}" "${b64%%=*}" "$ct"; do
	case $all in *"$s"*) fail "--debug output holds the secret or the ciphertext ($s)" ;; esac
done
echo "--debug: no secret, no ciphertext"
expect_exit 0 cs CMKFS_TOKEN_TIMEOUT=" 5" $CRYPTSETUP open --test-passphrase --token-only --token-id 0 "$vol"
contains "$err" "CMKFS_TOKEN_TIMEOUT is not a number of seconds" "a malformed timeout is said at the error level"

# ---- luksDump: the plugin's dump, never the whole ciphertext ----
expect_exit 0 cs $CRYPTSETUP luksDump "$vol"
dump=$out
contains "$dump" "0: aws-kms" "luksDump token"
contains "$dump" "	key:        $key" "dump: key"
contains "$dump" "	region:     us-east-1" "dump: region"
contains "$dump" "	binding:    volume+segment" "dump: binding"
contains "$dump" "	context:    cmkfs:volume=$uuid" "dump: volume context"
contains "$dump" "	context:    cmkfs:segment=aes-xts-plain64:512:4096:16777216" "dump: segment context"
contains "$dump" "	created:    20" "dump: created"
contains "$dump" "	ciphertext: $(base64 -d <<< "$ct" | wc -c) bytes, ${ct:0:16}..." "dump: ciphertext size and prefix"
case $dump in *"$ct"* | *"${ct:0:24}"*) fail "luksDump shows the ciphertext" ;; esac
expect_exit 0 cryptsetup luksDump --disable-external-tokens "$vol"
case $out in *"	key:  "*) fail "the dump without plugins has the plugin's lines" ;; esac
echo "luksDump: key ARN, region, binding and context; not the ciphertext"

# ---- refusals: the reason `cmkfs unlock-test` gives, -ENOENT ----
# refused WHAT TEXT... : the open fails, cryptsetup says no usable token,
# and the plugin's line has each TEXT.
refused() {
	local what=$1 s
	shift
	expect_exit 1 cs ${env_extra:-} $CRYPTSETUP open --test-passphrase --token-only -v ${token_id:+--token-id $token_id} "$vol"
	contains "$out$err" "No usable token" "$what: cryptsetup's verdict"
	for s in "$@"; do
		contains "$out$err" "$s" "$what"
	done
	echo "refused, $what: $(printf '%s\n%s\n' "$out" "$err" | grep -m1 'cannot unlock\|refused' | cut -c1-200)..."
}

as "$root" "$CMKFS" kms disable-key "$key" 2> /dev/null
refused "key disabled" "aws-kms token 0: cannot unlock $vol: the key $key is disabled: DisabledException"
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null

as "$root" "$CMKFS" kms schedule-deletion "$key" --days 7 > /dev/null 2>&1
refused "key pending deletion" "the key $key is pending deletion or otherwise unusable: KMSInvalidStateException"
as "$root" "$CMKFS" kms cancel-deletion "$key" > /dev/null 2>&1
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null

policy() { # EXTRA-STATEMENT: the key policy, the root allowed everything
	printf '{"KeyId":"%s","PolicyName":"default","Policy":%s}' "$key" "$($PYTHON -c '
import json, sys
st = [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:*", "Resource": "*"}]
st += json.loads(sys.argv[1])
print(json.dumps(json.dumps({"Version": "2012-10-17", "Statement": st})))' "$1")"
}
as "$root" "$CMKFS" kms call PutKeyPolicy "$(policy '[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111111111111:role/db-host"},"Action":"kms:Decrypt","Resource":"*"}]')" > /dev/null ||
	fail "PutKeyPolicy"
refused "key policy denies the host" "the key $key does not let this host decrypt" "AccessDeniedException"
as "$root" "$CMKFS" kms call PutKeyPolicy "$(policy '[]')" > /dev/null || fail "PutKeyPolicy back"
expect_exit 0 cs $CRYPTSETUP open --test-passphrase --token-only "$vol"

n=$(decrypts)
env_extra=CMKFS_KEY_ARN=${key%/*}/00000000-0000-0000-0000-000000000000 \
	refused "another key pinned" "its token names the key $key, not ${key%/*}/00000000-0000-0000-0000-000000000000 (the key this host is told to trust)" "KMS was not asked"
[ "$(decrypts)" = "$n" ] || fail "KMS was asked although the token's key is not the pinned one"

# Tokens under another key (one that does not exist; one in another
# region) and a ciphertext of another volume under this volume's context:
# bound to this header, so validate lets them in; KMS refuses them.
edit_token "$vol" 0 "t['key_arn'] = t['key_arn'].rsplit('/', 1)[0] + '/00000000-0000-0000-0000-000000000000'" > "$T/nokey.json"
edit_token "$vol" 0 "t['key_arn'] = t['key_arn'].replace('us-east-1', 'eu-west-1'); t['region'] = 'eu-west-1'" > "$T/region.json"
edit_token "$other_vol" 0 "t['encryption_context']['cmkfs:volume'] = '$uuid'" > "$T/forged.json"
expect_exit 0 cs $CRYPTSETUP token import --json-file "$T/nokey.json" --key-slot 0 --token-id 5 "$vol"
expect_exit 0 cs $CRYPTSETUP token import --json-file "$T/region.json" --key-slot 0 --token-id 6 "$vol"
expect_exit 0 cs $CRYPTSETUP token import --json-file "$T/forged.json" --key-slot 0 --token-id 7 "$vol"
token_id=5 refused "no such key" "aws-kms token 5: cannot unlock $vol: the key ${key%/*}/00000000-0000-0000-0000-000000000000 does not exist in region us-east-1" "NotFoundException"
token_id=6 refused "key in another region" "does not exist in region eu-west-1" "NotFoundException"
token_id=7 refused "another volume's ciphertext" "its wrapped secret does not decrypt under $key bound to this header (volume $uuid" "InvalidCiphertextException"
for id in 5 6 7; do
	expect_exit 0 cryptsetup token remove --token-id $id "$vol"
done

# A token copied from another volume as it is: validate refuses its import;
# stored without the plugin, the plugin refuses it before KMS.
cryptsetup token export --token-id 0 "$other_vol" > "$T/copied.json"
before=$(sha256sum < "$vol")
expect_exit 1 cs $CRYPTSETUP token import --json-file "$T/copied.json" --key-slot 0 --token-id 8 "$vol"
contains "$out$err" "aws-kms token refused: its token was made for volume $(cryptsetup luksUUID "$other_vol"), not this one ($uuid): it was copied from another volume" "copied token at import"
[ "$(sha256sum < "$vol")" = "$before" ] || fail "a refused import changed the header"
expect_exit 0 cryptsetup token import --disable-external-tokens --json-file "$T/copied.json" --key-slot 0 --token-id 8 "$vol"
n=$(decrypts)
token_id=8 refused "token copied from another volume" "it was copied from another volume"
[ "$(decrypts)" = "$n" ] || fail "KMS was asked for a token copied from another volume"
expect_exit 0 cryptsetup token remove --token-id 8 "$vol"

# A grant revoked: another account's host reaches a key only by a grant.
other=$T/other.env
kmsd_principal "$state" arn:aws:iam::222222222222:role/db-host > "$other"
key2=$(as "$root" "$CMKFS" kms create-key --description granted)
grant=$(as "$root" "$CMKFS" kms call CreateGrant "{\"KeyId\":\"$key2\",\"GranteePrincipal\":\"arn:aws:iam::222222222222:role/db-host\",\"Operations\":[\"Decrypt\",\"GenerateDataKey\",\"DescribeKey\"]}" |
	$PYTHON -c 'import json,sys; print(json.load(sys.stdin)["GrantId"])') || fail "CreateGrant"
expect_exit 0 as "$other" "$CMKFS" create "$T/g.img" --size 32M --key-arn "$key2"
expect_exit 0 as "$other" env LD_PRELOAD="$PRELOAD" CMKFS_TEST_TOKEN_DIR="$TOKENS" $CRYPTSETUP open --test-passphrase --token-only "$T/g.img"
as "$root" "$CMKFS" kms revoke-grant "$key2" "$grant" > /dev/null 2>&1 || fail "revoke-grant"
expect_exit 1 as "$other" env LD_PRELOAD="$PRELOAD" CMKFS_TEST_TOKEN_DIR="$TOKENS" $CRYPTSETUP open --test-passphrase --token-only "$T/g.img"
contains "$out$err" "the key $key2 does not let this host decrypt" "grant revoked"
contains "$out$err" "AccessDeniedException" "grant revoked"
echo "refused, grant revoked: AccessDeniedException"

# ---- a PIN is refused ----
# Next to a failing aws-kms token, a token that wants a PIN makes the CLI
# ask for one and try every token again with it.
expect_exit 0 cs $CRYPTSETUP token import --json-file <(printf '{"type":"cmkfs-test-pin","keyslots":[]}') --key-slot 0 --token-id 9 "$other_vol"
as "$root" "$CMKFS" kms disable-key "$key" 2> /dev/null
expect_exit 1 cs $CRYPTSETUP open --test-passphrase --token-only "$other_vol" <<< 1234
contains "$out$err" "is disabled: DisabledException" "the first pass, without a PIN"
contains "$out$err" "aws-kms token 0 takes no PIN" "open_pin with a PIN"
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null
expect_exit 0 cryptsetup token remove --token-id 9 "$other_vol"
echo "a PIN is refused"

# ---- malformed tokens: refused at import, the header unchanged ----
good=$(cryptsetup token export --token-id 0 "$vol")
# bad NAME REASON PYTHON: a token of this volume changed by PYTHON (on t)
# is refused by validate, with REASON.
bad() {
	local name=$1 why=$2
	edit_token "$vol" 0 "$3" > "$T/$name.json"
	before=$(sha256sum < "$vol")
	expect_exit 1 cs $CRYPTSETUP token import --json-file "$T/$name.json" --key-slot 0 "$vol"
	contains "$out$err" "aws-kms token refused: $why" "malformed token ($name)"
	contains "$out$err" "Failed to import token" "malformed token ($name)"
	[ "$(sha256sum < "$vol")" = "$before" ] || fail "the refused import of $name changed the header"
}
bad no-arn "the aws-kms token lacks key_arn or region" "del t['key_arn']"
bad arn-number "the aws-kms token lacks key_arn or region" "t['key_arn'] = 12"
bad bad-region "the aws-kms token's region is not its key's AWS region" "t['region'] = 'us-east-1.attacker.example'"
bad other-region "the aws-kms token's region is not its key's AWS region" "t['region'] = 'eu-west-1'"
bad no-ciphertext "the aws-kms token has no usable ciphertext" "del t['ciphertext']"
bad bad-base64 "the aws-kms token's ciphertext is not base64" "t['ciphertext'] = '%%%not*base64%%%'"
bad ciphertext-list "the aws-kms token has no usable ciphertext" "t['ciphertext'] = [t['ciphertext']]"
bad context-string "the token has no usable encryption_context" "t['encryption_context'] = 'cmkfs'"
bad context-number "the token's encryption_context values must be strings of printable ASCII" "t['encryption_context']['cmkfs:volume'] = 7"
bad extra-context "the token's encryption_context has \"aws:extra\", which cmkfs does not bind" "t['encryption_context']['aws:extra'] = 'x'"
bad region-nul "the aws-kms token lacks key_arn or region" "t['region'] = 'us-east-1\\x00.evil.example'"
bad arn-nul "the aws-kms token lacks key_arn or region" "t['key_arn'] += '\\x00junk'"
bad arn-escape "the aws-kms token lacks key_arn or region" "t['key_arn'] = 'x\\x1b[31m\\x07'"
bad arn-not-arn "the aws-kms token's key_arn is not a KMS key ARN" "t['key_arn'] = 'alias/volumes'"
bad arn-trailing "the aws-kms token's key_arn is not a KMS key ARN" "t['key_arn'] += ' x'"
bad context-nul "the token's encryption_context values must be strings of printable ASCII" "t['encryption_context']['cmkfs:volume'] += '\\x00x'"
# Without the plugin the same import goes in: validate is what refused it.
expect_exit 0 cryptsetup token import --disable-external-tokens --json-file "$T/bad-base64.json" --key-slot 0 --token-id 10 "$vol"
expect_exit 0 cs $CRYPTSETUP luksDump "$vol"
contains "$out" "invalid:    the aws-kms token's ciphertext is not base64" "dump of a malformed token"
expect_exit 0 cryptsetup token remove --token-id 10 "$vol"
[ "$(cryptsetup token export --token-id 0 "$vol")" = "$good" ] || fail "token 0 changed"
echo "malformed tokens refused at import (16 kinds), header unchanged"

# ---- KMS unreachable: -EAGAIN, within CMKFS_TOKEN_TIMEOUT ----
# bounded SECONDS: the open fails as a missing resource within SECONDS
# and a generous margin (a bound, not a measurement); secs = its time.
bounded() {
	local limit=$1 t0
	t0=$EPOCHREALTIME
	expect_exit 1 cs CMKFS_TOKEN_TIMEOUT="$limit" $CRYPTSETUP open --test-passphrase --token-only -v --token-id 0 "$vol"
	secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	contains "$out$err" "requires additional missing resource" "KMS unreachable: cryptsetup's verdict"
	contains "$out$err" "aws-kms token 0: cannot unlock $vol: KMS did not unwrap the secret of $key" "KMS unreachable"
	awk -v s="$secs" -v l="$limit" 'BEGIN { exit !(s <= l + 15) }' ||
		fail "the open took ${secs}s with CMKFS_TOKEN_TIMEOUT=$limit"
}
# A service that accepts connections and never answers.
$PYTHON -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
time.sleep(600)' > "$T/silent.out" &
silent=$!
trap 'kill $silent 2> /dev/null || true; rm -rf "$LIB_TMPDIR"' EXIT
port=$(await_output "$T/silent.out" '1s/^\([0-9][0-9]*\)$/\1/p' $silent) || fail "the silent service did not start"
real_url=$KMSD_URL
KMSD_URL=http://127.0.0.1:$port
bounded 4
contains "$out$err" "Timeout: " "KMS silent"
awk -v s="$secs" 'BEGIN { exit !(s >= 2) }' || fail "a silent KMS was given up after ${secs}s only"
echo "KMS silent: missing resource after ${secs}s (CMKFS_TOKEN_TIMEOUT=4)"
# Several tokens (copies of the volume's, as a header writer could add)
# share one budget, and libcryptsetup's walk over all of them — what
# systemd-cryptsetup does — goes on past each -EAGAIN.
for id in 11 12 13 14; do
	cryptsetup token export --token-id 0 "$vol" > "$T/copy.json"
	expect_exit 0 cryptsetup token import --disable-external-tokens --json-file "$T/copy.json" --token-id $id --key-slot 0 "$vol"
done
t0=$EPOCHREALTIME
expect_exit 1 cs CMKFS_TOKEN_TIMEOUT=4 $CRYPTSETUP open --test-passphrase --token-only --debug "$vol"
secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
contains "$out$err" "Token 0 (aws-kms) open failed with -11" "the walk over every token: -EAGAIN"
contains "$out$err" "not tried: the KMS time of this volume (CMKFS_TOKEN_TIMEOUT, for all its tokens) is spent" "one budget for every token"
awk -v s="$secs" 'BEGIN { exit !(s <= 4 + 15) }' || fail "five tokens with KMS silent took ${secs}s with CMKFS_TOKEN_TIMEOUT=4"
echo "KMS silent, five tokens: ${secs}s in all (CMKFS_TOKEN_TIMEOUT=4)"
kill $silent
wait $silent 2> /dev/null || true
KMSD_URL=$real_url
kmsd_stop
bounded 3
contains "$out$err" "NetworkError" "KMS down"
echo "KMS down: missing resource after ${secs}s (CMKFS_TOKEN_TIMEOUT=3)"
exit 0
