#!/bin/bash
# kms-creds: the AWS credential chain over HTTP, against a fake container
# credentials endpoint and a fake EC2 instance metadata service (IMDSv2) on
# loopback (tests/tools/fake_metadata.py): each source, the authorization
# token, precedence, malformed answers, timeouts, and the refresh of
# temporary credentials, counted in the fake's request log.
# timeout: 120
. "$(dirname "$0")/../lib.sh"

PROBE=$CMKFS_BUILD/tests/creds-probe
FAKE=$CMKFS_SRC/tests/tools/fake_metadata.py
[ -x "$PROBE" ] || fail "$PROBE is not built"

# No credentials from the caller: no AWS_* variables, an empty home, and
# instance metadata off unless a case turns it on.
for v in $(env | sed -n 's/^\(AWS_[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$v"
done
export HOME=$TEST_TMPDIR/home
mkdir -p "$HOME"
export AWS_EC2_METADATA_DISABLED=true

FAKE_PID=

# fake_start NAME [OPTIONS...]: the fake metadata service; sets FAKE_URL and
# FAKE_LOG (one line per request: METHOD PATH STATUS).
fake_start() {
	start_fake "$FAKE" "$@"
}

fake_stop() {
	stop_fake
}
trap fake_stop EXIT

# requests METHOD PATH: how many the fake answered with 200.
requests() {
	grep -c "^$1 $2 200\$" "$FAKE_LOG" || true
}

# field NAME LINE: a field of a probe line ("name=value;").
field() {
	printf '%s\n' "$2" | sed -n "s/.*$1=\([^;]*\).*/\1/p"
}

# call N: the probe's line for call N.
call() {
	printf '%s\n' "$out" | grep "^call $1: "
}

# near WANT GOT WHAT: fail unless GOT is within 10 s of WANT.
near() {
	if [ "$2" -lt $(($1 - 10)) ] || [ "$2" -gt $(($1 + 10)) ]; then
		fail "$3: $2, want about $1"
	fi
}

ROLES=/latest/meta-data/iam/security-credentials

# ---- container credentials ----------------------------------------------

fake_start container --auth "Bearer c0ntainer-t0ken" --time-style frac
CONTAINER="AWS_CONTAINER_CREDENTIALS_FULL_URI=$FAKE_URL/creds"
printf 'Bearer c0ntainer-t0ken\n' > "$TEST_TMPDIR/token"

expect_exit 0 env "$CONTAINER" \
	AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$TEST_TMPDIR/token" "$PROBE"
line=$(call 1)
[ "$(field source "$line")" = "container credentials" ] || fail "source: $line"
[ "$(field access-key-id "$line")" = ASIAFAKE000000000001 ] || fail "key id: $line"
[ "$(field secret-length "$line")" = 40 ] || fail "secret length: $line"
[ "$(field session-token "$line")" = yes ] || fail "session token: $line"
near $(($(date +%s) + 3600)) "$(field expiration "$line")" "fractional-second Expiration"
case $out in *fakeSecretAccessKey* | *FakeSessionToken*) fail "the probe printed a secret" ;; esac

# The token from the environment works as well as from a file.
expect_exit 0 env "$CONTAINER" \
	AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer c0ntainer-t0ken" "$PROBE"
contains "$out" "source=container credentials;" "token from the environment"

# A wrong or missing token: the service's refusal, never the token.
expect_exit 1 env "$CONTAINER" \
	AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer wr0ng-t0ken" "$PROBE"
contains "$err" "container credentials from $FAKE_URL/creds: HTTP 401 (EIO)" "wrong token"
case $err in *wr0ng-t0ken*) fail "the error shows the token: $err" ;; esac
expect_exit 1 env "$CONTAINER" "$PROBE"
contains "$err" "HTTP 401" "no token"
[ "$(grep -c '^GET /creds 401$' "$FAKE_LOG")" = 2 ] || fail "the fake saw no refused requests"
expect_exit 1 env "$CONTAINER" \
	AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$TEST_TMPDIR/no-such-token" "$PROBE"
contains "$err" "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE $TEST_TMPDIR/no-such-token does not exist" "missing token file"

# Plain http to another host would send the token in clear: refused before
# any request.
before=$(wc -l < "$FAKE_LOG")
expect_exit 1 env AWS_CONTAINER_CREDENTIALS_FULL_URI=http://192.0.2.1/creds \
	AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer c0ntainer-t0ken" "$PROBE"
contains "$err" "http to a loopback address" "non-loopback http"
contains "$err" "(EINVAL)" "non-loopback http"
fake_stop

# Malformed answers are refused with a reason.
fake_start malformed --malformed
expect_exit 1 env "AWS_CONTAINER_CREDENTIALS_FULL_URI=$FAKE_URL/creds" "$PROBE"
contains "$err" "container credentials from $FAKE_URL/creds: the answer is not valid JSON (EINVAL)" "malformed JSON"
fake_stop
fake_start nosecret --omit SecretAccessKey
expect_exit 1 env "AWS_CONTAINER_CREDENTIALS_FULL_URI=$FAKE_URL/creds" "$PROBE"
contains "$err" "no SecretAccessKey in the answer" "missing member"
fake_stop
fake_start noexpiry --omit Expiration
expect_exit 1 env "AWS_CONTAINER_CREDENTIALS_FULL_URI=$FAKE_URL/creds" "$PROBE"
contains "$err" "no RFC 3339 Expiration" "missing Expiration"
fake_stop
# A container may hand out credentials without a session token.
fake_start notoken --omit Token
expect_exit 0 env "AWS_CONTAINER_CREDENTIALS_FULL_URI=$FAKE_URL/creds" "$PROBE"
contains "$out" "session-token=no;" "container credentials without Token"
fake_stop

# ---- instance metadata (IMDSv2) --------------------------------------------

fake_start imds --role db-host-role --time-style offset
IMDS="AWS_EC2_METADATA_SERVICE_ENDPOINT=$FAKE_URL"

# The fake holds the client to IMDSv2: without a session token, no answer.
code=$(curl -s -o /dev/null -w '%{http_code}' "$FAKE_URL$ROLES/")
[ "$code" = 401 ] || fail "the fake answered $code without a session token"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$FAKE_URL/latest/api/token")
[ "$code" = 400 ] || fail "the fake gave a token without a TTL ($code)"
: > "$FAKE_LOG"

expect_exit 0 env -u AWS_EC2_METADATA_DISABLED "$IMDS" "$PROBE"
line=$(call 1)
[ "$(field source "$line")" = "instance profile db-host-role" ] || fail "source: $line"
[ "$(field secret-length "$line")" = 40 ] || fail "secret length: $line"
[ "$(field session-token "$line")" = yes ] || fail "session token: $line"
near $(($(date +%s) + 3600)) "$(field expiration "$line")" "Expiration with an offset"
[ "$(requests PUT /latest/api/token)" = 1 ] || fail "no session token was asked for"
[ "$(requests GET "$ROLES/")" = 1 ] || fail "the role name was not asked for"
[ "$(requests GET "$ROLES/db-host-role")" = 1 ] || fail "the role's credentials were not fetched"
grep -q ' 401$' "$FAKE_LOG" && fail "the client sent a request without a session token"

# Something that is not IMDSv2 refuses the token: no credentials there.
expect_exit 1 env -u AWS_EC2_METADATA_DISABLED "$IMDS/elsewhere" "$PROBE"
contains "$err" "no container credentials, instance metadata at $FAKE_URL/elsewhere refused a session token (HTTP 404) (ENOENT)" "not IMDS"

# A trailing '/' on the endpoint is fine.
expect_exit 0 env -u AWS_EC2_METADATA_DISABLED "$IMDS/" "$PROBE"
contains "$out" "source=instance profile db-host-role;" "endpoint with '/'"

# Disabled: not one request, and the chain ends with what it tried.
before=$(wc -l < "$FAKE_LOG")
expect_exit 1 env "$IMDS" "$PROBE"
contains "$err" "no AWS credentials: not in the environment, no profile 'default' in ~/.aws/credentials or ~/.aws/config, no container credentials, instance metadata disabled" "disabled"
contains "$err" "(ENOENT)" "disabled"
expect_exit 1 env AWS_EC2_METADATA_DISABLED=True "$IMDS" "$PROBE"
[ "$(wc -l < "$FAKE_LOG")" = "$before" ] || fail "disabled instance metadata was asked"
fake_stop

fake_start failing --code Failed
expect_exit 1 env -u AWS_EC2_METADATA_DISABLED "AWS_EC2_METADATA_SERVICE_ENDPOINT=$FAKE_URL" "$PROBE"
contains "$err" "role cmkfs-test-role: Code is 'Failed', not 'Success' (EIO)" "Code"
fake_stop
fake_start badjson --malformed
expect_exit 1 env -u AWS_EC2_METADATA_DISABLED "AWS_EC2_METADATA_SERVICE_ENDPOINT=$FAKE_URL" "$PROBE"
contains "$err" "the answer is not valid JSON (EINVAL)" "malformed IMDS JSON"
fake_stop
fake_start imdsnotoken --omit Token
expect_exit 1 env -u AWS_EC2_METADATA_DISABLED "AWS_EC2_METADATA_SERVICE_ENDPOINT=$FAKE_URL" "$PROBE"
contains "$err" "role cmkfs-test-role: no Token in the answer (EINVAL)" "IMDS answer without Token"
fake_stop
fake_start norole --no-role
expect_exit 1 env -u AWS_EC2_METADATA_DISABLED "AWS_EC2_METADATA_SERVICE_ENDPOINT=$FAKE_URL" "$PROBE"
contains "$err" "no IAM role in instance metadata at $FAKE_URL (ENOENT)" "no role"
# Nothing listens there any more: unreachable, the end of the chain.
dead=$FAKE_URL
fake_stop
expect_exit 1 env -u AWS_EC2_METADATA_DISABLED "AWS_EC2_METADATA_SERVICE_ENDPOINT=$dead" "$PROBE"
contains "$err" "no container credentials, instance metadata unreachable at $dead (ENOENT)" "unreachable"

# A host that accepts connections but never answers fails fast, too.
fake_start hanging --hang 30
start=$(date +%s)
expect_exit 1 env -u AWS_EC2_METADATA_DISABLED "AWS_EC2_METADATA_SERVICE_ENDPOINT=$FAKE_URL" \
	"$PROBE" --timeout-ms 300
contains "$err" "instance metadata unreachable at $FAKE_URL (ENOENT)" "silent endpoint"
[ $(($(date +%s) - start)) -le 3 ] || fail "a silent endpoint took $(($(date +%s) - start)) s"
fake_stop

# ---- precedence ----------------------------------------------------------

fake_start precedence
ALL="AWS_CONTAINER_CREDENTIALS_FULL_URI=$FAKE_URL/creds AWS_EC2_METADATA_SERVICE_ENDPOINT=$FAKE_URL"
# shellcheck disable=SC2086
expect_exit 0 env -u AWS_EC2_METADATA_DISABLED $ALL \
	AWS_ACCESS_KEY_ID=AKIAENVIRONMENT AWS_SECRET_ACCESS_KEY=envSecret "$PROBE"
contains "$out" "source=environment; access-key-id=AKIAENVIRONMENT;" "environment first"
[ -s "$FAKE_LOG" ] && fail "the environment's credentials still asked the fake"
mkdir -p "$HOME/.aws"
printf '[default]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = s\n' \
	> "$HOME/.aws/credentials"
# shellcheck disable=SC2086
expect_exit 0 env -u AWS_EC2_METADATA_DISABLED $ALL "$PROBE"
contains "$out" "source=profile default (~/.aws/credentials);" "files before the container"
rm "$HOME/.aws/credentials"
# shellcheck disable=SC2086
expect_exit 0 env -u AWS_EC2_METADATA_DISABLED $ALL "$PROBE"
contains "$out" "source=container credentials;" "container before instance metadata"
[ "$(requests PUT /latest/api/token)" = 0 ] || fail "instance metadata asked despite container credentials"
expect_exit 0 env -u AWS_EC2_METADATA_DISABLED "AWS_EC2_METADATA_SERVICE_ENDPOINT=$FAKE_URL" "$PROBE"
contains "$out" "source=instance profile cmkfs-test-role;" "instance metadata last"
fake_stop

# ---- refresh -------------------------------------------------------------

# 60 s left is inside the refresh window (300 s): every call fetches.
fake_start short --lifetime 60
expect_exit 0 env "AWS_CONTAINER_CREDENTIALS_FULL_URI=$FAKE_URL/creds" "$PROBE" --count 2
[ "$(requests GET /creds)" = 2 ] || fail "short-lived container credentials: $(requests GET /creds) fetches, want 2"
[ "$(field access-key-id "$(call 2)")" = ASIAFAKE000000000002 ] || fail "the refresh did not take: $out"
: > "$FAKE_LOG"
expect_exit 0 env -u AWS_EC2_METADATA_DISABLED "AWS_EC2_METADATA_SERVICE_ENDPOINT=$FAKE_URL" \
	"$PROBE" --count 3
[ "$(requests GET "$ROLES/cmkfs-test-role")" = 3 ] || fail "short-lived instance credentials: $(requests GET "$ROLES/cmkfs-test-role") fetches, want 3"
fake_stop

# An hour left: fetched once, then served from the cache.
fake_start long --lifetime 3600
expect_exit 0 env "AWS_CONTAINER_CREDENTIALS_FULL_URI=$FAKE_URL/creds" "$PROBE" --count 2
[ "$(requests GET /creds)" = 1 ] || fail "long-lived container credentials: $(requests GET /creds) fetches, want 1"
[ "$(field access-key-id "$(call 1)")" = "$(field access-key-id "$(call 2)")" ] ||
	fail "the cache did not serve: $out"
: > "$FAKE_LOG"
expect_exit 0 env -u AWS_EC2_METADATA_DISABLED "AWS_EC2_METADATA_SERVICE_ENDPOINT=$FAKE_URL" \
	"$PROBE" --count 2
[ "$(requests GET "$ROLES/cmkfs-test-role")" = 1 ] || fail "long-lived instance credentials fetched more than once"
fake_stop

# probe_then_stop LIFETIME: two calls 2 s apart, the fake stopped between
# them; sets rc, out and err.
probe_then_stop() {
	fake_start "fallback$1" --lifetime "$1"
	env "AWS_CONTAINER_CREDENTIALS_FULL_URI=$FAKE_URL/creds" "$PROBE" --count 2 \
		--delay-ms 2000 > "$TEST_TMPDIR/probe.out" 2> "$TEST_TMPDIR/probe.err" &
	local pid=$! _
	for _ in $(seq 50); do
		grep -q '^call 1:' "$TEST_TMPDIR/probe.out" && break
		sleep 0.1
	done
	fake_stop
	rc=0
	wait "$pid" || rc=$?
	out=$(cat "$TEST_TMPDIR/probe.out")
	err=$(cat "$TEST_TMPDIR/probe.err")
}

# A refresh that fails while the credentials are still valid keeps them.
probe_then_stop 120
[ "$rc" = 0 ] || fail "a failed refresh of valid credentials failed the call: $err"
[ "$(field access-key-id "$(call 2)")" = ASIAFAKE000000000001 ] || fail "fallback: $out"
# Once they have expired, it is an error.
probe_then_stop 0
[ "$rc" = 1 ] || fail "expired credentials were served: $out"
contains "$err" "call 2: cannot refresh the credentials from container credentials: container credentials from http://127.0.0.1:" "expired"
contains "$err" "(EIO)" "expired"

echo "the credential chain behaves"
