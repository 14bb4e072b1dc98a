#!/bin/bash
# kmip-client: cmkfs's KMIP client (kms/kmip.c, driven by tests/tools/
# kmip-probe) against a real KMIP server, Debian's PyKMIP (pykmip-server),
# started on loopback with certificates made here: a CA, the server, two
# client identities.  Keys are made by PyKMIP's own client
# (tests/tools/kmip_admin.py).  Get Attributes says what a key is; a secret
# wrapped with AES-GCM under additional data unwraps only with the same
# data, only for the identity that owns the key, and not once the key is
# revoked or destroyed; a server that is down, or whose certificate does
# not chain to the CA, is an outage.  A malicious server
# (tests/tools/kmip_evil.py: garbage, huge lengths, truncated, silent,
# nested too deep, bad padding, another operation's answer, control bytes
# in its words) never crashes or hangs the client.
# timeout: 180
. "$(dirname "$0")/../lib.sh"

PROBE=$CMKFS_BUILD/tests/kmip-probe
. "$CMKFS_SRC/tests/kmip_lib.sh"

kmip_server_start
trap 'kmip_server_stop; rm -rf "$LIB_TMPDIR"' EXIT
pki=$KMIP_PKI
port=$KMIP_PORT
admin() { kmip_admin "$@"; }
# probe [IDENTITY] ARGS...: kmip-probe as the host (or IDENTITY), status
# in $out, its error line in $err.
probe() {
	local id=host
	case $1 in host | other) id=$1 && shift ;; esac
	out=$(CMKFS_KMIP_CERT=$pki/$id.crt CMKFS_KMIP_KEY=$pki/$id.key CMKFS_KMIP_CA=${CA:-$pki/ca.crt} \
		"$PROBE" "${SERVER:-localhost:$port}" "$@" 2> "$TEST_TMPDIR/probe.err") || true
	err=$(cat "$TEST_TMPDIR/probe.err")
}
status_is() { # WANT WHAT
	contains "$out" "status=$1" "$2"
}

# ---- what a key is ----
key=$(admin create)
probe info "$key"
status_is ok "info"
contains "$out" "object_type=2 algorithm=3 length=256 usage_mask=12 state=2" "info of an active AES-256 key"
small=$(admin create 128 --inactive)
probe info "$small"
contains "$out" "length=128 usage_mask=12 state=1" "info of an inactive AES-128 key"

# ---- wrap and unwrap under additional data ----
probe wrap "$key" "cmkfs:volume=one" "$TEST_TMPDIR/w1"
status_is ok "wrap"
sum=$(echo "$out" | sed -n 's/^sha256=//p')
[ ${#sum} = 64 ] || fail "wrap printed no secret digest: $out"
probe unwrap "$key" "cmkfs:volume=one" "$TEST_TMPDIR/w1"
status_is ok "unwrap"
contains "$out" "sha256=$sum" "the unwrapped secret"
probe unwrap "$key" "cmkfs:volume=two" "$TEST_TMPDIR/w1"
case $out in *status=ok* | *sha256=*) fail "unwrapped under other additional data: $out" ;; esac
# An inactive key wraps nothing.
probe wrap "$small" "cmkfs:volume=one" "$TEST_TMPDIR/w2"
status_is access-denied "wrap with an inactive key"

# ---- another identity: the key is not its own ----
probe other unwrap "$key" "cmkfs:volume=one" "$TEST_TMPDIR/w1"
status_is access-denied "another client identity"
contains "$err" "PermissionDenied" "another client identity"

# ---- revoked, destroyed, unknown: definitive ----
key2=$(admin create)
probe wrap "$key2" "cmkfs:volume=one" "$TEST_TMPDIR/w3"
status_is ok "wrap with a second key"
admin revoke "$key2"
probe unwrap "$key2" "cmkfs:volume=one" "$TEST_TMPDIR/w3"
status_is access-denied "a revoked key"
admin destroy "$key"
probe unwrap "$key" "cmkfs:volume=one" "$TEST_TMPDIR/w1"
status_is not-found "a destroyed key"
probe info "no-such-key"
status_is not-found "an unknown key"
probe info "$(printf 'bad\001id')"
status_is validation "an identifier with a control byte"

# ---- not the server it should be: an outage, never a refusal ----
CA=$pki/other-ca.crt probe info "$key2"
status_is network "a server certificate of another CA"
contains "$err" "certificate" "a server certificate of another CA"
SERVER=127.0.0.1:1 probe info "$key2"
status_is network "nothing listening"

# ---- a malicious server ----
for mode in garbage huge truncated deep badpad wrongop failure silent; do
	$PYTHON "$CMKFS_SRC/tests/tools/kmip_evil.py" "$pki/server.crt" "$pki/server.key" \
		"$pki/ca.crt" $mode > "$TEST_TMPDIR/evil.out" 2>&1 &
	evil=$!
	evil_port=$(await_output "$TEST_TMPDIR/evil.out" 's/^\([0-9][0-9]*\)$/\1/p' $evil) ||
		fail "the malicious server did not start: $(cat "$TEST_TMPDIR/evil.out")"
	t0=$(date +%s)
	rc=0
	SERVER=localhost:$evil_port probe info x || rc=$?
	kill $evil 2> /dev/null
	wait $evil 2> /dev/null || true
	t=$(($(date +%s) - t0))
	case $mode in
	garbage | huge | deep | badpad | wrongop) want=protocol ;;
	truncated) want=network ;;
	failure) want=access-denied ;;
	silent) want=timeout ;;
	esac
	status_is $want "a malicious server ($mode)"
	[ $t -le 15 ] || fail "a malicious server ($mode) held the client ${t}s"
	case $err in *$'\e'* | *$'\a'*) fail "control bytes of the server reached the error: $err" ;; esac
	echo "malicious server, $mode: $out in ${t}s ($err)"
done
kmip_server_stop
