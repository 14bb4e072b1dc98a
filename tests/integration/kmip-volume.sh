#!/bin/bash
# kmip-volume: a volume bound to a KMIP server's key (kmip://HOST:PORT/UID),
# against a real KMIP server (PyKMIP, tests/kmip_lib.sh).  check-key says
# what is wrong with an unfit key; create, status and unlock-test work; the
# client's private key must be private; another client identity the server
# does not allow cannot open the volume, nor can a token naming a server
# off CMKFS_KMIP_SERVERS; a token moved to another volume
# fails its additional data in the server; an independent KMIP client
# (PyKMIP's) unwraps the secret and the stock cryptsetup opens the volume
# with it, and through the kmip token plugin; rotate moves the volume from
# the KMIP key to an AWS KMS key (cmkfs-kmsd) and back, add-key /
# remove-key mix the two kinds, and a reencryption moves it to a new KMIP
# key.
# timeout: 300
. "$(dirname "$0")/../lib.sh"
. "$CMKFS_SRC/tests/kmip_lib.sh"

isolate_aws
kmsd_with_host
kmip_server_start
trap 'kmip_server_stop; kmsd_stop; rm -rf "$LIB_TMPDIR"' EXIT
pki=$KMIP_PKI
export CMKFS_KMIP_CERT=$pki/host.crt CMKFS_KMIP_KEY=$pki/host.key CMKFS_KMIP_CA=$pki/ca.crt
server=localhost:$KMIP_PORT
uid=$(kmip_admin create)
KEY=kmip://$server/$uid
vol=$TEST_TMPDIR/v.img

# ---- check-key: fit, and each way of not being fit ----
expect_exit 0 "$CMKFS" check-key "$KEY"
contains "$out" "active AES-256 key on the KMIP server $server" "check-key of a fit key"
expect_exit 1 "$CMKFS" check-key "kmip://$server/$(kmip_admin create 128)"
contains "$err" "not a symmetric AES-256 key" "check-key of an AES-128 key"
expect_exit 1 "$CMKFS" check-key "kmip://$server/$(kmip_admin create 256 --inactive)"
contains "$err" "is Pre-Active, not Active: activate it" "check-key of a key never activated"
expect_exit 3 "$CMKFS" check-key "kmip://$server/99999"
contains "$err" "has no key kmip://$server/99999" "check-key of an unknown key"
expect_exit 1 "$CMKFS" check-key "kmip://$server"
contains "$err" "not a KMIP key name" "check-key of a malformed name"
# Someone else's key: the server refuses this client.
expect_exit 3 env CMKFS_KMIP_CERT="$pki/other.crt" CMKFS_KMIP_KEY="$pki/other.key" \
	"$CMKFS" check-key "$KEY"
contains "$err" "refuses this client the key $KEY" "check-key as another identity"
# A private key others may read is refused before anything is sent.
cp "$pki/host.key" "$TEST_TMPDIR/open.key"
chmod 644 "$TEST_TMPDIR/open.key"
expect_exit 1 "$CMKFS" check-key --kmip-key "$TEST_TMPDIR/open.key" "$KEY"
contains "$err" "may be read by others (mode 0644): make it private with 'chmod 600" "a readable client key"
expect_exit 1 env CMKFS_KMIP_CERT="$TEST_TMPDIR/none.crt" "$CMKFS" check-key "$KEY"
contains "$err" "no KMIP client certificate at $TEST_TMPDIR/none.crt: set CMKFS_KMIP_CERT" "a missing certificate"

# ---- create, status, unlock-test ----
expect_exit 2 "$CMKFS" create "$vol" --size 32M --key-arn "$KEY"
contains "$err" "give the KMIP key $KEY with --key" "--key-arn with a KMIP key"
expect_exit 2 "$CMKFS" unlock-test "$vol" --key-arn "arn:aws:kms:us-east-1:111111111111:key/x,$KEY"
contains "$err" "with --key" "--key-arn with a KMIP key in a list"
expect_exit 0 "$CMKFS" create "$vol" --size 32M --key "$KEY"
contains "$out" "key          $KEY" "create"
uuid=$(cryptsetup luksUUID "$vol")
expect_exit 0 "$CMKFS" status "$vol" --json
$PYTHON -c '
import json, sys
s = json.loads(sys.argv[1])
rows = [k for k in s["keyslots"] if k.get("kms_bound")]
assert len(rows) == 1 and rows[0]["kind"] == "kmip" and rows[0]["key_arn"] == sys.argv[2], rows
assert rows[0]["binding"] == "volume+segment", rows
' "$out" "$KEY" || fail "status --json: $out"
token=$(cryptsetup luksDump --dump-json-metadata "$vol" | $PYTHON -c '
import json, sys
t = [t for t in json.load(sys.stdin)["tokens"].values() if t["type"] == "kmip"]
assert len(t) == 1
print(json.dumps(t[0], separators=(",", ":")))')
contains "$token" "\"server\":\"$server\"" "the kmip token names its server"
contains "$token" "\"unique_identifier\":\"$uid\"" "the kmip token names its key"
contains "$token" "\"authenticated_data\":{\"cmkfs:volume\":\"$uuid\"" "the kmip token's binding"
expect_exit 0 "$CMKFS" unlock-test "$vol"
contains "$out" "$KEY" "unlock-test names the key"
expect_exit 0 "$CMKFS" status "$vol" --check-key
contains "$out" "(KMIP, token" "status of a KMIP-bound keyslot"
contains "$out" "active AES-256 key on the KMIP server" "status --check-key"
expect_exit 0 "$CMKFS" unlock-test "$vol" --key "$KEY"
# The servers this host is told to use: a token naming another is refused
# before anything connects.
expect_exit 1 env CMKFS_KMIP_SERVERS=kms.example:5696 "$CMKFS" unlock-test "$vol"
contains "$err" "names the KMIP server $server, not one of kms.example:5696" "a server off CMKFS_KMIP_SERVERS"
expect_exit 0 env CMKFS_KMIP_SERVERS="kms.example:5696,$server" "$CMKFS" unlock-test "$vol"
expect_exit 1 env CMKFS_KMIP_SERVERS=kms.example:5696 "$CMKFS" unlock-test "$vol" --key "$KEY"
contains "$err" "names the KMIP server $server, not one of" "a pinned key on a server off the list"
expect_exit 1 "$CMKFS" unlock-test "$vol" --key "kmip://$server/other"
contains "$err" "not kmip://$server/other" "a volume whose key is not the pinned one"

# ---- another client identity: not allowed by the server ----
expect_exit 3 env CMKFS_KMIP_CERT="$pki/other.crt" CMKFS_KMIP_KEY="$pki/other.key" \
	"$CMKFS" unlock-test "$vol"
contains "$err" "refuses this client the key $KEY" "unlock-test as another identity"

# ---- the server down: an outage, not a refusal ----
kmip_server_stop
expect_exit 4 "$CMKFS" unlock-test "$vol"
contains "$err" "cannot reach the KMIP server" "unlock-test with the server down"
kmip_server_start
expect_exit 0 "$CMKFS" unlock-test "$vol"

# ---- a token moved to another volume: its additional data fails ----
vol2=$TEST_TMPDIR/v2.img
expect_exit 0 "$CMKFS" create "$vol2" --size 32M --key "$KEY"
uuid2=$(cryptsetup luksUUID "$vol2")
# As copied, the token's own binding says it is another volume's.
echo "$token" | sed 's/"keyslots":\["[0-9]*"\]/"keyslots":[]/' > "$TEST_TMPDIR/moved.json"
expect_exit 0 cryptsetup token remove --token-id 0 "$vol2"
expect_exit 0 cryptsetup token import --json-file "$TEST_TMPDIR/moved.json" --token-id 0 --key-slot 0 "$vol2"
expect_exit 1 "$CMKFS" unlock-test "$vol2"
contains "$err" "made for volume $uuid, not this one ($uuid2): it was copied from another volume; the KMIP server was not asked" "a copied token, as copied"
# Its binding edited to claim this volume: the server's GCM check fails.
sed "s/$uuid/$uuid2/" "$TEST_TMPDIR/moved.json" > "$TEST_TMPDIR/forged.json"
expect_exit 0 cryptsetup token remove --token-id 0 "$vol2"
expect_exit 0 cryptsetup token import --json-file "$TEST_TMPDIR/forged.json" --token-id 0 --key-slot 0 "$vol2"
rc=0
"$CMKFS" unlock-test "$vol2" > /dev/null 2> "$TEST_TMPDIR/forged.err" || rc=$?
[ $rc != 0 ] || fail "a token moved to another volume opened it"
grep -q "did not unwrap\|does not decrypt" "$TEST_TMPDIR/forged.err" ||
	fail "a forged binding: $(cat "$TEST_TMPDIR/forged.err")"

# ---- interop: PyKMIP's client unwraps, the stock cryptsetup opens ----
segment=$(cryptsetup luksDump --dump-json-metadata "$vol" | $PYTHON -c '
import json, sys
m = json.load(sys.stdin)
seg = m["segments"]["0"]
bits = 8 * next(k["key_size"] for k in m["keyslots"].values() if k["type"] == "luks2")
print("%s:%d:%d:%s" % (seg["encryption"], bits, seg["sector_size"], seg["offset"]))')
echo "$token" > "$TEST_TMPDIR/token.json"
kmip_admin unwrap "$TEST_TMPDIR/token.json" "$uuid" "$segment" "$TEST_TMPDIR/secret"
[ "$(stat -c %s "$TEST_TMPDIR/secret")" = 32 ] || fail "PyKMIP unwrapped no 32-byte secret"
expect_exit 0 cryptsetup open --test-passphrase --key-file "$TEST_TMPDIR/secret" "$vol"
# The same secret under another volume's binding: refused by the server.
(kmip_admin unwrap "$TEST_TMPDIR/token.json" "$uuid2" "$segment" "$TEST_TMPDIR/secret2") > /dev/null 2>&1 &&
	fail "the server unwrapped under another volume's binding"
[ ! -s "$TEST_TMPDIR/secret2" ] || fail "a secret was written for another volume's binding"
# The token plugin, as systemd-cryptsetup would use it.
plugin_setup
nobody=$TEST_TMPDIR/nobody.env
: > "$nobody"
expect_exit 0 plugin_cryptsetup "$nobody" open --test-passphrase --token-only --token-type kmip "$vol"
expect_exit 0 plugin_cryptsetup "$nobody" luksDump "$vol"
contains "$out" "key:        $KEY" "luksDump through the kmip plugin"
expect_exit 1 env CMKFS_KMIP_SERVERS=kms.example:5696 LD_PRELOAD="$PLUGIN_PRELOAD" \
	CMKFS_TEST_TOKEN_DIR="$PLUGIN_DIR" cryptsetup open --test-passphrase --token-only --token-type kmip "$vol"
expect_exit 1 env CMKFS_KMIP_CERT="$pki/other.crt" CMKFS_KMIP_KEY="$pki/other.key" \
	LD_PRELOAD="$PLUGIN_PRELOAD" CMKFS_TEST_TOKEN_DIR="$PLUGIN_DIR" \
	cryptsetup open --test-passphrase --token-only --token-type kmip "$vol"

# ---- rotate: KMIP -> AWS KMS -> KMIP; add-key and remove-key mix ----
as "$host" true || fail "no host principal"
expect_exit 0 as "$host" "$CMKFS" rotate "$vol" --key "$key"
contains "$out" "$key" "rotate to the AWS key"
expect_exit 0 as "$host" "$CMKFS" unlock-test "$vol" --key "$key"
KEY2=kmip://$server/$(kmip_admin create)
expect_exit 0 as "$host" "$CMKFS" rotate "$vol" --key "$KEY2"
expect_exit 0 as "$host" "$CMKFS" unlock-test "$vol" --key "$KEY2"
expect_exit 1 as "$host" "$CMKFS" unlock-test "$vol" --key "$key"
# Re-wrap under the same KMIP key: a fresh IV, the same keyslot.
iv=$(cryptsetup luksDump --dump-json-metadata "$vol" | grep -o '"iv":"[^"]*"')
expect_exit 0 as "$host" "$CMKFS" rotate "$vol" --rewrap
[ "$(cryptsetup luksDump --dump-json-metadata "$vol" | grep -o '"iv":"[^"]*"')" != "$iv" ] ||
	fail "a re-wrap kept the IV"
expect_exit 0 as "$host" "$CMKFS" add-key "$vol" --key "$key"
expect_exit 0 as "$host" "$CMKFS" unlock-test "$vol" --key "$key"
expect_exit 0 as "$host" "$CMKFS" unlock-test "$vol" --key "$KEY2"
expect_exit 0 as "$host" "$CMKFS" remove-key "$vol" --key "$KEY2"
expect_exit 1 as "$host" "$CMKFS" unlock-test "$vol" --key "$KEY2"
expect_exit 0 as "$host" "$CMKFS" unlock-test "$vol" --key "$key"
# Every byte under a new volume key, opened by a new KMIP key.
KEY3=kmip://$server/$(kmip_admin create)
expect_exit 0 as "$host" "$CMKFS" reencrypt "$vol" --key "$KEY3"
expect_exit 0 as "$host" "$CMKFS" unlock-test "$vol" --key "$KEY3"
expect_exit 1 as "$host" "$CMKFS" unlock-test "$vol" --key "$key"
echo "kmip volume: check-key, create, unlock, identities, AAD, interop, plugin, rotate, add/remove-key"
