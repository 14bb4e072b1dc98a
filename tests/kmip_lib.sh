# kmip_lib.sh — a real KMIP server for the tests that need one (sourced
# after lib.sh): Debian's PyKMIP (pykmip-server) on loopback, with
# certificates made here — a CA (and another CA, whose certificates this
# server does not trust), the server (localhost, 127.0.0.1) and two client
# identities, "host" and "other" — and its administrator, PyKMIP's own
# client (tests/tools/kmip_admin.py), an implementation independent of
# cmkfs's.
#
#   kmip_server_start   makes the certificates (once) in $KMIP_PKI and
#                       starts the server on $KMIP_PORT (the same port and
#                       database when started again)
#   kmip_server_stop    kills it, workers and all
#   kmip_admin ARGS...  kmip_admin.py as "host" (fails the test on error)
#   kmip_env [ID]       the environment cmkfs reads, for identity ID
[ -x /usr/bin/pykmip-server ] || fail "pykmip-server is missing (scripts/deps.sh installs python3-pykmip)"
command -v openssl > /dev/null || fail "openssl is missing"

KMIP_PKI=$TEST_TMPDIR/pki
KMIP_PORT=
KMIP_SERVER_PID=

kmip_cert() { # NAME SUBJECT EXTENSIONS
	local name=$1 pki=$KMIP_PKI
	openssl req -newkey rsa:2048 -nodes -keyout "$pki/$name.key" \
		-out "$pki/$name.csr" -subj "$2" 2> /dev/null
	printf '%b\n' "$3" > "$pki/$name.ext"
	openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
		-CAcreateserial -out "$pki/$name.crt" -days 2 -extfile "$pki/$name.ext" 2> /dev/null ||
		fail "cannot make the certificate $name"
	chmod 600 "$pki/$name.key"
}

kmip_pki() {
	local ca
	mkdir -m 700 "$KMIP_PKI"
	for ca in ca other-ca; do
		openssl req -x509 -newkey rsa:2048 -nodes -keyout "$KMIP_PKI/$ca.key" \
			-out "$KMIP_PKI/$ca.crt" -days 2 -subj "/CN=cmkfs test $ca" 2> /dev/null ||
			fail "cannot make the CA $ca"
	done
	kmip_cert server /CN=localhost "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"
	kmip_cert host /CN=db-host "extendedKeyUsage=clientAuth"
	kmip_cert other /CN=other-host "extendedKeyUsage=clientAuth"
}

kmip_server_start() {
	local conf=$TEST_TMPDIR/pykmip.conf
	[ -d "$KMIP_PKI" ] || kmip_pki
	[ -n "$KMIP_PORT" ] ||
		KMIP_PORT=$($PYTHON -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mkdir -p "$TEST_TMPDIR/policies"
	cat > "$conf" << EOF
[server]
hostname=127.0.0.1
port=$KMIP_PORT
certificate_path=$KMIP_PKI/server.crt
key_path=$KMIP_PKI/server.key
ca_path=$KMIP_PKI/ca.crt
auth_suite=TLS1.2
policy_path=$TEST_TMPDIR/policies
enable_tls_client_auth=True
logging_level=INFO
database_path=$TEST_TMPDIR/pykmip.db
EOF
	: > "$TEST_TMPDIR/pykmip.log"
	# In a process group of its own: it forks workers and takes its time
	# over SIGTERM, so the group is killed at the end.
	TMPDIR=$TEST_TMPDIR setsid /usr/bin/pykmip-server -f "$conf" -l "$TEST_TMPDIR/pykmip.log" \
		> "$TEST_TMPDIR/pykmip.out" 2>&1 &
	KMIP_SERVER_PID=$!
	for _ in $(seq 150); do
		grep -q "Starting connection service" "$TEST_TMPDIR/pykmip.log" 2> /dev/null && return 0
		kill -0 $KMIP_SERVER_PID 2> /dev/null ||
			fail "pykmip-server died: $(tail -n 5 "$TEST_TMPDIR/pykmip.out")"
		sleep 0.1
	done
	fail "pykmip-server did not start"
}

kmip_server_stop() {
	[ -n "$KMIP_SERVER_PID" ] || return 0
	kill -KILL -- -$KMIP_SERVER_PID 2> /dev/null || true
	wait $KMIP_SERVER_PID 2> /dev/null || true
	KMIP_SERVER_PID=
}

kmip_admin() {
	$PYTHON "$CMKFS_SRC/tests/tools/kmip_admin.py" 127.0.0.1 "$KMIP_PORT" "$KMIP_PKI/host.crt" \
		"$KMIP_PKI/host.key" "$KMIP_PKI/ca.crt" "$@" 2> "$TEST_TMPDIR/kmip_admin.err" ||
		fail "kmip_admin $*: $(tail -n 3 "$TEST_TMPDIR/kmip_admin.err")"
}

kmip_env() {
	local id=${1:-host}
	echo "CMKFS_KMIP_CERT=$KMIP_PKI/$id.crt CMKFS_KMIP_KEY=$KMIP_PKI/$id.key CMKFS_KMIP_CA=$KMIP_PKI/ca.crt"
}
