#!/bin/bash
# kmsd-sdk: cmkfs-kmsd against a client nobody here wrote — the official
# AWS SDK for JavaScript (@aws-sdk/client-kms from npm) drives every action
# and every access rule (tests/sdk/conformance.mjs): key policies, grants,
# key states, regions, signatures, credentials, malformed requests.
# timeout: 300
. "$(dirname "$0")/../lib.sh"

command -v node > /dev/null || fail "node is missing (scripts/deps.sh installs it)"
sdk_install

state=$TEST_TMPDIR/kms
creds=$TEST_TMPDIR/creds
mkdir -p "$creds"
kmsd_init "$state" 111111111111 us-east-1
cp "$state.env" "$creds/root-a.env"
kmsd_principal "$state" arn:aws:iam::111111111111:role/db-host > "$creds/role-a.env"
kmsd_principal "$state" arn:aws:iam::111111111111:role/db-host2 > "$creds/role-a2.env"
kmsd_principal "$state" arn:aws:iam::222222222222:role/db-host > "$creds/role-b.env"
kmsd_principal "$state" arn:aws:iam::111111111111:role/db-host --session-token \
	--expires "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" > "$creds/temp-a.env"
kmsd_principal "$state" arn:aws:iam::111111111111:role/db-host --session-token \
	--expires "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)" > "$creds/expired-a.env"

kmsd_start "$state" --region us-east-1 --region eu-west-1
echo "cmkfs-kmsd at $KMSD_URL"
rc=0
(cd "$SDK_DIR" && KMSD_URL=$KMSD_URL CREDS=$creds node conformance.mjs) || rc=$?
kmsd_stop

# The access log has a line per request and never a secret.
lines=$(wc -l < "$state.log")
[ "$lines" -gt 50 ] || fail "access log has only $lines lines"
grep -q 'action=Decrypt key=arn:aws:kms:us-east-1:111111111111:key/.* outcome=OK' "$state.log" ||
	fail "access log lacks a successful Decrypt"
grep -q 'principal=arn:aws:iam::222222222222:role/db-host action=Decrypt .*outcome=AccessDeniedException' "$state.log" ||
	fail "access log lacks the denied cross-account Decrypt"
for f in "$creds"/*.env; do
	secret=$(sed -n 's/^export AWS_SECRET_ACCESS_KEY=//p' "$f")
	! grep -qF "$secret" "$state.log" || fail "a secret access key is in the access log"
done
[ $rc = 0 ] || fail "SDK conformance failures (above)"
