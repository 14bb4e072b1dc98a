#!/bin/bash
# kms-client: cmkfs's KMS client and its commands against a real
# cmkfs-kmsd — `kms call`, the key wrappers, `check-key` on good and unfit
# keys (disabled, pending deletion, imported material, another region, not
# shared) — and against a fault-injecting fake: bounded retries of
# throttling, 5xx and dropped connections, none of client errors, and every
# way AWS spells an error type.
# timeout: 180
. "$(dirname "$0")/../lib.sh"

isolate_aws

state=$TEST_TMPDIR/kms
kmsd_init "$state" 111111111111 us-east-1
root=$state.env
roleb=$TEST_TMPDIR/role-b.env
kmsd_principal "$state" arn:aws:iam::222222222222:role/db-host > "$roleb"
kmsd_start "$state" --region us-east-1 --region eu-west-1


# ---- kms call and the wrappers ----
expect_exit 0 as "$root" "$CMKFS" kms create-key --description "volume key"
key=$out
case $key in arn:aws:kms:us-east-1:111111111111:key/*) ;; *) fail "create-key printed '$key'" ;; esac
expect_exit 0 as "$root" "$CMKFS" kms call DescribeKey "{\"KeyId\":\"$key\"}"
contains "$out" '"KeyState":"Enabled"' "DescribeKey response"
echo "{\"KeyId\":\"$key\"}" > "$TEST_TMPDIR/req.json"
expect_exit 0 as "$root" "$CMKFS" kms call DescribeKey @"$TEST_TMPDIR/req.json"
contains "$out" '"Description":"volume key"' "body from a file"
expect_exit 0 as "$root" "$CMKFS" kms call DescribeKey - < "$TEST_TMPDIR/req.json"
contains "$out" "$key" "body from stdin"
expect_exit 3 as "$root" "$CMKFS" kms call Decrypt '{"CiphertextBlob":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}'
contains "$err" "cmkfs: error: Decrypt: InvalidCiphertextException: " "KMS error line"
contains "$err" "(request id " "request id in the error"
[ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "KMS error is not one line: $err"
expect_exit 1 as "$root" "$CMKFS" kms call FrobnicateKey '{}'
contains "$err" "UnknownOperationException" "unknown action"
expect_exit 2 as "$root" "$CMKFS" kms frobnicate

# ---- check-key: a fit key, then every way a key is unfit ----
expect_exit 0 as "$root" "$CMKFS" check-key "$key"
contains "$out" "ok: $key is a symmetric key" "check-key ok"

expect_exit 0 as "$root" "$CMKFS" kms disable-key "$key"
expect_exit 1 as "$root" "$CMKFS" check-key "$key"
contains "$err" "is Disabled: enable it with 'cmkfs kms enable-key $key'" "disabled key"
expect_exit 0 as "$root" "$CMKFS" kms enable-key "$key"

expect_exit 0 as "$root" "$CMKFS" kms create-key --origin EXTERNAL
ext=$out
expect_exit 1 as "$root" "$CMKFS" check-key "$ext"
contains "$err" "imported key material (Origin EXTERNAL)" "EXTERNAL key"

expect_exit 0 as "$root" "$CMKFS" kms create-key
doomed=$out
expect_exit 0 as "$root" "$CMKFS" kms schedule-deletion "$doomed" --days 7
contains "$err" "cancel with 'cmkfs kms cancel-deletion" "schedule-deletion hint"
expect_exit 1 as "$root" "$CMKFS" check-key "$doomed"
contains "$err" "is scheduled for deletion on" "pending deletion"
expect_exit 0 as "$root" "$CMKFS" kms cancel-deletion "$doomed"

# Another region: refused before any request, naming both regions.
expect_exit 0 as "$root" env AWS_REGION=eu-west-1 "$CMKFS" kms create-key
west=$out
before=$(wc -l < "$state.log")
expect_exit 1 as "$root" "$CMKFS" check-key "$west"
contains "$err" "RegionMismatch" "region mismatch type"
contains "$err" "is in region eu-west-1, but this client uses region us-east-1" "both regions named"
[ "$(wc -l < "$state.log")" = "$before" ] || fail "a request was sent despite the region mismatch"
expect_exit 0 as "$root" env AWS_REGION=eu-west-1 "$CMKFS" check-key "$west"

# Not shared with another account's role: the statement to add.
expect_exit 3 as "$roleb" "$CMKFS" check-key "$key"
contains "$err" "AccessDeniedException" "not shared"
contains "$err" '"AWS": "arn:aws:iam::222222222222:role/db-host"' "statement names the caller"
contains "$err" '"kms:GenerateDataKey*"' "statement lists the actions"
# Shared for DescribeKey only: the round trip is what fails.
expect_exit 0 as "$root" "$CMKFS" kms create-key --policy @<(cat <<P
{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"},
 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:role/db-host"},"Action":"kms:DescribeKey","Resource":"*"}]}
P
)
half=$out
expect_exit 3 as "$roleb" "$CMKFS" check-key "$half"
contains "$err" "GenerateDataKey refused" "round trip step named"
expect_exit 1 as "$root" "$CMKFS" check-key "not-an-arn"
contains "$err" "is not a key ARN" "bad ARN"

# No region anywhere: a clear configuration error.
expect_exit 1 env -u AWS_REGION HOME="$HOME" "$CMKFS" check-key "$key"
contains "$err" "no AWS region" "missing region"
kmsd_stop

# ---- retries against a fault injector ----
fake_call() {
	AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIAFAKE AWS_SECRET_ACCESS_KEY=secret \
		"$CMKFS" kms call ListKeys --kms-endpoint "http://127.0.0.1:$FAKE_PORT" --debug-kms "$@"
}
requests() { wc -l < "$FAKE_LOG"; }

# scenario: script, exit code, requests, text in stderr
while IFS='|' read -r script want_rc want_n text; do
	start_fake "$CMKFS_SRC/tests/tools/fake_kms.py" fake --script "$script" --slow 3
	expect_exit "$want_rc" fake_call --kms-timeout 1
	n=$(requests)
	stop_fake
	[ "$n" = "$want_n" ] || fail "script $script: $n requests, want $want_n"
	contains "$err" "$text" "script $script"
	echo "script $script: exit $want_rc after $n requests"
done <<'S'
503,503,ok|0|3|attempt 3: OK
429,throttle-ns,throttle-hdr,ok|0|4|attempt 2: ThrottlingException: rate exceeded
drop,drop,ok|0|3|attempt 3: OK
slow,ok|0|2|attempt 1: Timeout
503|4|5|gave up after 5 attempts
denied|3|1|AccessDeniedException: User: arn:aws:iam::1:role/x is not authorized
S
grep -q 'auth=True' "$FAKE_LOG" || fail "requests were not signed"
grep -q 'token=True' "$FAKE_LOG" && fail "an empty session token header was sent"
echo "kms client and commands behave"
