#!/bin/bash
# kms-typed: the client's typed calls (GenerateDataKey, Decrypt, ReEncrypt,
# DescribeKey) against cmkfs-kmsd, and every refusal mapped to its status:
# access denied, disabled, invalid state, not found, invalid ciphertext,
# incorrect key, bad signature, region mismatch.
# timeout: 120
. "$(dirname "$0")/../lib.sh"

isolate_aws
PROBE=$CMKFS_BUILD/tests/kms-probe
state=$TEST_TMPDIR/kms
kmsd_init "$state"
kmsd_principal "$state" arn:aws:iam::222222222222:role/db-host > "$TEST_TMPDIR/b.env"
kmsd_start "$state" --region us-east-1 --region eu-west-1

# expect_status STATUS ENVFILE PROBE-ARGS...
expect_status() {
	local want=$1 f=$2 rc=0
	shift 2
	out=$(as "$f" "$PROBE" "$@" 2> "$TEST_TMPDIR/.err") || rc=$?
	if ! printf '%s\n' "$out" | grep -qx "status=$want"; then
		cat "$TEST_TMPDIR/.err" >&2
		fail "kms-probe $*: got '$out', want status=$want"
	fi
	echo "kms-probe $*: $want"
}
root=$state.env
key=$(as "$root" "$CMKFS" kms create-key)
key2=$(as "$root" "$CMKFS" kms create-key)

expect_status ok "$root" roundtrip "$key"
expect_status ok "$root" describe "$key"
expect_status ok "$root" gdk "$key" vol1 "$TEST_TMPDIR/blob"
expect_status ok "$root" decrypt "$key" vol1 "$TEST_TMPDIR/blob"
expect_status ok "$root" decrypt - vol1 "$TEST_TMPDIR/blob"
expect_status invalid-ciphertext "$root" decrypt "$key" vol2 "$TEST_TMPDIR/blob"
expect_status incorrect-key "$root" decrypt "$key2" vol1 "$TEST_TMPDIR/blob"
expect_status access-denied "$TEST_TMPDIR/b.env" decrypt "$key" vol1 "$TEST_TMPDIR/blob"
expect_status not-found "$root" describe "${key%/*}/00000000-0000-4000-8000-000000000000"
as "$root" "$CMKFS" kms disable-key "$key" 2> /dev/null
expect_status disabled "$root" decrypt "$key" vol1 "$TEST_TMPDIR/blob"
as "$root" "$CMKFS" kms schedule-deletion "$key" 2> /dev/null
expect_status invalid-state "$root" decrypt "$key" vol1 "$TEST_TMPDIR/blob"
before=$(wc -l < "$state.log")
expect_status config "$root" describe "arn:aws:kms:eu-west-1:111111111111:key/00000000-0000-4000-8000-000000000000"
[ "$(wc -l < "$state.log")" = "$before" ] || fail "region mismatch sent a request"
sed 's/^export AWS_SECRET_ACCESS_KEY=.*/export AWS_SECRET_ACCESS_KEY=wrong/' "$root" > "$TEST_TMPDIR/wrong.env"
expect_status signature "$TEST_TMPDIR/wrong.env" describe "$key2"
kmsd_stop
