#!/bin/bash
# kmsd-cli: cmkfs-kmsd's command line — init, principals, refusing state that
# others can read, startup errors — and that the service answers at all.
# timeout: 60
. "$(dirname "$0")/../lib.sh"

state=$TEST_TMPDIR/kms
expect_exit 0 "$KMSD" --version
contains "$out" "cmkfs-kmsd " "--version"
expect_exit 0 "$KMSD" --help
contains "$out" "principal add" "--help"
expect_exit 2 "$KMSD" frobnicate
expect_exit 2 "$KMSD" init --state "$state"
contains "$err" "--account" "init without account"
expect_exit 2 "$KMSD" init --state "$state" --account 12345
contains "$err" "12 digits" "bad account"

# init: private directory and files, the environment a client needs.
expect_exit 0 "$KMSD" init --state "$state" --account 111111111111 --region eu-central-1
for v in AWS_ENDPOINT_URL_KMS=http://127.0.0.1:7090 AWS_REGION=eu-central-1 \
	AWS_DEFAULT_REGION=eu-central-1 AWS_ACCESS_KEY_ID=AKIA AWS_SECRET_ACCESS_KEY=; do
	contains "$out" "export $v" "init output"
done
[ "$(stat -c %a "$state")" = 700 ] || fail "state dir mode $(stat -c %a "$state")"
for f in master.key state.json credentials.json; do
	[ "$(stat -c %a "$state/$f")" = 600 ] || fail "$f mode $(stat -c %a "$state/$f")"
done
[ "$(stat -c %s "$state/master.key")" = 32 ] || fail "master key size"
expect_exit 1 "$KMSD" init --state "$state" --account 111111111111
contains "$err" "already holds a cmkfs-kmsd state" "second init"

# principals
expect_exit 1 "$KMSD" principal add --state "$state" arn:aws:iam::1111:role/x
contains "$err" "not an IAM principal ARN" "bad ARN"
expect_exit 0 "$KMSD" principal add --state "$state" arn:aws:iam::222222222222:role/db-host
contains "$out" "export AWS_ACCESS_KEY_ID=AKIA" "principal add"
contains "$out" "export AWS_DEFAULT_REGION=eu-central-1" "principal add: region for AWS CLI v1"
id=$(printf '%s\n' "$out" | sed -n 's/^export AWS_ACCESS_KEY_ID=//p')
secret=$(printf '%s\n' "$out" | sed -n 's/^export AWS_SECRET_ACCESS_KEY=//p')
expect_exit 0 "$KMSD" principal add --state "$state" arn:aws:iam::222222222222:role/tmp \
	--session-token --expires 2099-01-01T00:00:00Z
contains "$out" "export AWS_ACCESS_KEY_ID=ASIA" "temporary credential prefix"
contains "$out" "export AWS_SESSION_TOKEN=" "session token"
expect_exit 0 "$KMSD" principal list --state "$state"
contains "$out" "$id" "list shows the access key id"
contains "$out" "arn:aws:iam::222222222222:role/db-host" "list shows the principal"
contains "$out" "2099-01-01T00:00:00Z" "list shows the expiry"
case $out in *"$secret"*) fail "principal list printed a secret" ;; esac
expect_exit 0 "$KMSD" principal remove --state "$state" "$id"
expect_exit 0 "$KMSD" principal list --state "$state"
case $out in *"$id"*) fail "removed principal still listed" ;; esac
expect_exit 1 "$KMSD" principal remove --state "$state" "$id"

# State that others can read is refused, with the fix in the message.
chmod 644 "$state/credentials.json"
expect_exit 1 "$KMSD" serve --state "$state" --listen 127.0.0.1:0
contains "$err" "credentials.json is accessible to group or others" "world-readable file"
contains "$err" "chmod 600" "the fix"
chmod 600 "$state/credentials.json"
chmod 755 "$state"
expect_exit 1 "$KMSD" serve --state "$state" --listen 127.0.0.1:0
contains "$err" "chmod 700" "world-readable directory"
chmod 700 "$state"
expect_exit 2 "$KMSD" serve --state "$state" --max-skew lots
expect_exit 1 "$KMSD" serve --state "$state" --listen nowhere:99
contains "$err" "ADDRESS:PORT" "bad listen address"

# It serves, and an unsigned request gets an AWS error, not a crash.
kmsd_start "$state"
resp=$(curl -s -X POST -H 'Content-Type: application/x-amz-json-1.1' \
	-H 'X-Amz-Target: TrentService.ListKeys' -d '{}' "$KMSD_URL/")
contains "$resp" '"__type":"IncompleteSignatureException"' "unsigned request"
resp=$(curl -s "$KMSD_URL/")
contains "$resp" '"__type":"UnknownOperationException"' "GET"
kmsd_stop
grep -q 'outcome=IncompleteSignatureException' "$state.log" || fail "access log"
echo "cmkfs-kmsd command line behaves"
