#!/bin/bash
# multikey: a volume that more than one CMK opens — a replica key in a second
# region, added and removed with cmkfs add-key / remove-key; unlock-test says
# which key opens it and why each other does not, and so does the stock
# cryptsetup with the token plugin; the last key is never
# removed and a removal never locks anyone out; a kill -9 before every
# header write of either leaves a volume that opens with its key unchanged;
# rotate --rewrap and reencrypt keep every key — each proven to open the
# volume, so a token a rewritten header adds is never handed the new
# secret — and a reencryption a key cannot follow stops before anything is
# rewritten; a volume has at most eight keys.
# timeout: 300
. "$(dirname "$0")/../lib.sh"

command -v strace > /dev/null || fail "strace is missing (scripts/deps.sh installs it)"
isolate_aws

kmsd_up --region us-east-1 --region eu-west-1
key1=$(as "$root" "$CMKFS" kms create-key --description primary)
key2=$(as "$root" "$CMKFS" kms create-key --region eu-west-1 --description dr)
case $key2 in arn:aws:kms:eu-west-1:*) ;; *) fail "no key in eu-west-1: '$key2'" ;; esac
vol=$TEST_TMPDIR/v.img
expect_exit 0 as "$root" "$CMKFS" create "$vol" --size 16M --key-arn "$key1"
vk=$(volume_key_of "$root" "$vol")
[ ${#vk} = 128 ] || fail "volume key '$vk'"

unbound() { # keyslots no aws-kms token covers
	expect_exit 0 "$CMKFS" status --json "$vol"
	$PYTHON -c 'import json,sys; s = json.loads(sys.argv[1]); print(sum(1 for k in s["keyslots"] if not k["kms_bound"]))' "$out"
}
keys_of() {
	expect_exit 0 "$CMKFS" status --json "$vol"
	$PYTHON -c 'import json,sys; s = json.loads(sys.argv[1]); print(" ".join(sorted(k["key_arn"] for k in s["keyslots"] if k["kms_bound"])))' "$out"
}

# ---- add a key in another region ----
expect_exit 0 as "$root" "$CMKFS" add-key "$vol" --key-arn "$key2"
contains "$out" "added $key2 to $vol" "add-key"
contains "$out" "opened through $key1" "add-key names the key that opened it"
[ "$(keys_of)" = "$(printf '%s\n' "$key1" "$key2" | sort | xargs)" ] || fail "status: $(keys_of)"
expect_exit 0 as "$root" "$CMKFS" unlock-test "$vol"
contains "$out" "unlocks through $key1" "unlock-test, key 1"
contains "$out" "unlocks through $key2" "unlock-test, key 2"
expect_exit 1 as "$root" "$CMKFS" add-key "$vol" --key-arn "$key2"
contains "$err" "already opens through $key2" "the same key twice"
expect_exit 2 as "$root" "$CMKFS" add-key "$vol"
# an unfit key is refused before anything is written
before=$(cryptsetup luksDump --dump-json-metadata "$vol")
key3=$(as "$root" "$CMKFS" kms create-key --description third)
as "$root" "$CMKFS" kms disable-key "$key3" 2> /dev/null
expect_exit 1 as "$root" "$CMKFS" add-key "$vol" --key-arn "$key3"
contains "$err" "$key3 is Disabled" "add-key checks the new key"
[ "$(cryptsetup luksDump --dump-json-metadata "$vol")" = "$before" ] || fail "a refused add-key changed the header"

# ---- the first region's key disabled: the replica opens it ----
as "$root" "$CMKFS" kms disable-key "$key1" 2> /dev/null
expect_exit 0 as "$root" "$CMKFS" unlock-test "$vol"
contains "$out" "unlocks through $key2" "the replica opens it"
contains "$err" "$key1 did not open it: the key $key1 is disabled" "why key 1 did not"
# the token plugin: the stock cryptsetup tries each key's token in turn
plugin_setup
expect_exit 0 plugin_cryptsetup "$root" open --test-passphrase --token-only -v "$vol"
contains "$out$err" "aws-kms token 0: cannot unlock $vol: the key $key1 is disabled" "plugin: the first key's reason"
contains "$out$err" "Key slot 1 unlocked" "plugin: opens through the replica"
# both disabled: the first key's reason decides, the other is listed
as "$root" "$CMKFS" kms disable-key "$key2" --region eu-west-1 2> /dev/null
expect_exit 3 as "$root" "$CMKFS" unlock-test "$vol"
contains "$err" "cannot unlock $vol: the key $key1 is disabled" "both disabled"
contains "$err" "$key2 did not open it: the key $key2 is disabled" "both disabled, key 2"

# ---- remove-key: never the last, never locking out ----
expect_exit 3 as "$root" "$CMKFS" remove-key "$vol" --key-arn "$key1"
contains "$err" "the key $key2 is disabled" "removal needs a remaining key that opens"
[ "$(keys_of)" = "$(printf '%s\n' "$key1" "$key2" | sort | xargs)" ] || fail "a refused removal changed the volume"
as "$root" "$CMKFS" kms enable-key "$key1" 2> /dev/null
as "$root" "$CMKFS" kms enable-key "$key2" --region eu-west-1 2> /dev/null
expect_exit 1 as "$root" "$CMKFS" remove-key "$vol" --key-arn "$key3"
contains "$err" "has no token of $key3" "removing a key it does not have"
expect_exit 0 as "$root" "$CMKFS" remove-key "$vol" --key-arn "$key1"
contains "$out" "removed $key1 from $vol: 1 token(s), 1 keyslot(s)" "remove-key"
[ "$(keys_of)" = "$key2" ] || fail "after remove-key: $(keys_of)"
expect_exit 1 as "$root" "$CMKFS" remove-key "$vol" --key-arn "$key2"
contains "$err" "$key2 is the only key that opens $vol" "the last key"
expect_exit 0 as "$root" "$CMKFS" unlock-test "$vol"
contains "$out" "unlocks through $key2" "after removal"
# pinned to a key: the others are refused before KMS is asked
expect_exit 0 as "$root" "$CMKFS" add-key "$vol" --key-arn "$key1"
expect_exit 0 as "$root" env CMKFS_KEY_ARN="$key1" "$CMKFS" unlock-test "$vol"
contains "$out" "unlocks through $key1" "pinned"
contains "$err" "not $key1 (the key this host is told to trust)" "pinned: the other key refused"
expect_exit 0 as "$root" env CMKFS_KEY_ARN="$key2,$key1" "$CMKFS" unlock-test "$vol"
contains "$out" "unlocks through $key1" "pinned to both, key 1"
contains "$out" "unlocks through $key2" "pinned to both, key 2"
expect_exit 1 as "$root" env CMKFS_KEY_ARN="$key2" "$CMKFS" unlock-test "$vol" --key-arn "$key3,${key1}x"
contains "$err" "(the keys this host is told to trust)" "pinned to a list without either key"

# pinned to the key being removed: said as such
expect_exit 1 as "$root" env CMKFS_KEY_ARN="$key1" "$CMKFS" remove-key "$vol" --key-arn "$key1"
contains "$err" "this host is pinned to $key1 (--key-arn or CMKFS_KEY_ARN): pin it to a key that stays" "pinned removal"

# ---- a token a rewritten header adds counts for nothing ----
# (a key this host may use, the volume's public context values, a keyslot
# of the volume, a ciphertext that opens nothing)
key4=$(as "$root" "$CMKFS" kms create-key --description intruder)
$PYTHON - "$vol" "$key4" "$(cryptsetup luksUUID "$vol")" > "$TEST_TMPDIR/rogue.json" <<'P'
import base64, json, os, subprocess, sys
m = json.loads(subprocess.check_output(["cryptsetup", "luksDump", "--dump-json-metadata", sys.argv[1]]))
ctx = next(t["encryption_context"] for t in m["tokens"].values() if t["type"] == "aws-kms")
print(json.dumps({"type": "aws-kms", "keyslots": [sorted(m["keyslots"])[0]], "key_arn": sys.argv[2],
                  "region": "us-east-1", "ciphertext": base64.b64encode(os.urandom(184)).decode(),
                  "encryption_context": ctx, "created": "2026-12-01T00:00:00Z"}))
P
cryptsetup token import --json-file "$TEST_TMPDIR/rogue.json" "$vol" || fail "cannot add the rogue token"
expect_exit 0 as "$root" "$CMKFS" unlock-test "$vol"
contains "$err" "$key4 did not open it" "the rogue token opens nothing"
expect_exit 1 as "$root" "$CMKFS" reencrypt "$vol"
contains "$err" "its key $key4 does not open it now" "reencrypt refuses to hand the new secret to a key that never opened the volume"
[ "$(volume_key_of "$root" "$vol")" = "$vk" ] || fail "the refused reencryption changed the volume key"
expect_exit 0 as "$root" "$CMKFS" remove-key "$vol" --key-arn "$key4"
[ "$(keys_of)" = "$(printf '%s\n' "$key1" "$key2" | sort | xargs)" ] || fail "after removing the rogue token: $(keys_of)"

# ---- rotate --rewrap and reencrypt keep every key ----
expect_exit 0 as "$root" "$CMKFS" rotate "$vol" --rewrap
[ "$(keys_of)" = "$(printf '%s\n' "$key1" "$key2" | sort | xargs)" ] || fail "after rotate --rewrap: $(keys_of)"
# a key that cannot wrap the new secret stops the reencryption before
# anything is rewritten
as "$root" "$CMKFS" kms disable-key "$key2" --region eu-west-1 2> /dev/null
expect_exit 1 as "$root" "$CMKFS" reencrypt "$vol"
contains "$err" "its key $key2 does not open it now (the key $key2 is disabled" "reencrypt with a disabled second key"
[ "$(volume_key_of "$root" "$vol")" = "$vk" ] || fail "a refused reencryption changed the volume key"
as "$root" "$CMKFS" kms enable-key "$key2" --region eu-west-1 2> /dev/null
expect_exit 0 as "$root" "$CMKFS" unlock-test "$vol"
contains "$out" "unlocks through $key2" "after a refused reencryption"
expect_exit 0 as "$root" "$CMKFS" reencrypt "$vol"
contains "$err" "opens it too: its keys keep it" "reencrypt says which keys it keeps"
[ "$(keys_of)" = "$(printf '%s\n' "$key1" "$key2" | sort | xargs)" ] || fail "after reencrypt: $(keys_of)"
vk2=$(volume_key_of "$root" "$vol")
[ "$vk2" != "$vk" ] || fail "reencrypt kept the volume key"
as "$root" "$CMKFS" kms disable-key "$key1" 2> /dev/null
expect_exit 0 as "$root" "$CMKFS" unlock-test "$vol"
contains "$out" "unlocks through $key2" "the replica opens the reencrypted volume"
[ "$(volume_key_of "$root" "$vol")" = "$vk2" ] || fail "the replica opens another key than the new one"
as "$root" "$CMKFS" kms enable-key "$key1" 2> /dev/null
vk=$vk2

# ---- kill -9 before each header write of add-key and remove-key ----
# (strace delivers SIGKILL as the Nth write(2) to the volume starts)
cp "$vol" "$TEST_TMPDIR/base.img"
killed_at() { # OP ARN N: exit status of cmkfs OP killed before write N
	local rc=0
	{ (. "$root" && export AWS_ENDPOINT_URL_KMS=$KMSD_URL &&
		export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 &&
		exec strace -f -qq -o /dev/null -P "$vol" -e trace=write,pwrite64 \
			-e inject=write,pwrite64:signal=SIGKILL:when="$3" \
			"$CMKFS" "$1" "$vol" --key-arn "$2") > /dev/null 2> "$TEST_TMPDIR/kill.err" || rc=$?
	} 2> /dev/null
	echo $rc
}
for op in remove-key add-key; do
	total=0
	for n in $(seq 60); do
		cp "$TEST_TMPDIR/base.img" "$vol"
		[ $op = add-key ] && expect_exit 0 as "$root" "$CMKFS" remove-key "$vol" --key-arn "$key1"
		rc=$(killed_at $op "$key1" "$n")
		[ "$rc" = 0 ] || [ "$rc" = 137 ] || fail "$op killed before write $n: exit $rc: $(cat "$TEST_TMPDIR/kill.err")"
		if ! as "$root" "$CMKFS" unlock-test "$vol" > /dev/null 2>&1; then
			cryptsetup luksDump --dump-json-metadata "$vol" >&2
			fail "$op killed before write $n: the volume no longer opens"
		fi
		[ "$(volume_key_of "$root" "$vol")" = "$vk" ] || fail "$op killed before write $n: the volume key changed"
		# and the operation run again completes (or says it is done:
		# the kill came after the last write that mattered)
		if [ "$rc" = 137 ]; then
			again=0
			as "$root" "$CMKFS" $op "$vol" --key-arn "$key1" > /dev/null 2> "$TEST_TMPDIR/again.err" || again=$?
			[ $again = 0 ] || grep -Eq "has no token of|already opens through" "$TEST_TMPDIR/again.err" ||
				fail "$op killed before write $n, then run again: exit $again: $(cat "$TEST_TMPDIR/again.err")"
			case $op in
			add-key) [ "$(keys_of)" = "$(printf '%s\n' "$key1" "$key2" | sort | xargs)" ] ;;
			remove-key) [ "$(keys_of)" = "$key2" ] && [ "$(unbound)" = 0 ] ;;
			esac || fail "$op killed before write $n, then run again: $(keys_of), $(unbound) keyslot(s) no token covers"
		fi
		[ "$rc" = 0 ] && break
		total=$n
	done
	[ "$rc" = 0 ] || fail "$op: 60 writes and it did not end"
	echo "$op killed before each of its $total writes: the volume always opened, its key unchanged"
done

# ---- at most eight keys ----
small=$TEST_TMPDIR/small.img
expect_exit 0 as "$root" "$CMKFS" create "$small" --size 1M --key-arn "$key1"
for i in 2 3 4 5 6 7 8; do
	k=$(as "$root" "$CMKFS" kms create-key --description "k$i")
	expect_exit 0 as "$root" "$CMKFS" add-key "$small" --key-arn "$k"
done
k=$(as "$root" "$CMKFS" kms create-key --description k9)
expect_exit 1 as "$root" "$CMKFS" add-key "$small" --key-arn "$k"
contains "$err" "already opens through 8 keys, the most a volume may have" "a ninth key"
expect_exit 0 as "$root" "$CMKFS" reencrypt "$small"
expect_exit 0 as "$root" "$CMKFS" unlock-test "$small"
[ "$(grep -c "^ok: " <<< "$out")" = 8 ] || fail "after reencrypt, not every one of 8 keys opens it: $out"
kmsd_stop
