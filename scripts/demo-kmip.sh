#!/bin/bash
# demo-kmip.sh — cmkfs with a KMIP key server instead of AWS KMS, step by
# step: a KMIP server (Debian's PyKMIP) on loopback with certificates made
# here, a customer key on it, a volume bound to that key, mounted, written
# and read; then the customer revokes the key on the KMIP server while the
# volume is mounted: the keys are wiped and I/O fails within seconds, and
# the next mount is refused.  Everything it starts and creates lives in a
# temporary directory and is removed at the end, also on failure or Ctrl-C.
# Mounting needs root (FUSE, loop devices); without it the demo stops
# before that.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/demo-common.sh
PYTHON=/usr/bin/python3

work=$(mktemp -d "${TMPDIR:-/tmp}/cmkfs-demo-kmip.XXXXXX")
server_pid=
export CMKFS_RUNTIME_DIR=$work/run
cleanup() {
	if [ -d "$work/mnt" ] && mountpoint -q "$work/mnt"; then
		"$CMKFS" umount "$work/mnt" > /dev/null 2>&1 || umount -l "$work/mnt"
	fi
	# PyKMIP forks workers: its whole process group goes.
	if [ -n "$server_pid" ]; then
		kill -KILL -- -"$server_pid" 2> /dev/null || true
		wait "$server_pid" 2> /dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

step "Certificates: a CA, the KMIP server's, and the database host's client identity"
pki=$work/pki
mkdir -m 700 "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" \
	-days 1 -subj "/CN=demo CA" 2> /dev/null
cert() { # NAME SUBJECT EXTENSIONS
	openssl req -newkey rsa:2048 -nodes -keyout "$pki/$1.key" -out "$pki/$1.csr" \
		-subj "$2" 2> /dev/null
	printf '%b\n' "$3" > "$pki/$1.ext"
	openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
		-CAcreateserial -out "$pki/$1.crt" -days 1 -extfile "$pki/$1.ext" 2> /dev/null
	chmod 600 "$pki/$1.key"
}
cert server /CN=localhost "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth"
cert host /CN=db-host "extendedKeyUsage=clientAuth"
ls "$pki"/*.crt

step "Start a KMIP server (PyKMIP) on loopback; it trusts client certificates of the CA"
port=$($PYTHON -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/server.conf" << EOF
[server]
hostname=127.0.0.1
port=$port
certificate_path=$pki/server.crt
key_path=$pki/server.key
ca_path=$pki/ca.crt
auth_suite=TLS1.2
policy_path=$work
enable_tls_client_auth=True
database_path=$work/pykmip.db
EOF
TMPDIR=$work setsid /usr/bin/pykmip-server -f "$work/server.conf" -l "$work/server.log" > "$work/server.out" 2>&1 &
server_pid=$!
for _ in $(seq 150); do
	grep -q "Starting connection service" "$work/server.log" 2> /dev/null && break
	sleep 0.1
done
grep -q "Starting connection service" "$work/server.log" || { cat "$work/server.out"; exit 1; }
echo "pykmip-server listens on localhost:$port"
admin() { # the key's owner, through PyKMIP's own client
	printf '$ kmip-admin %s\n' "$*" >&2
	$PYTHON tests/tools/kmip_admin.py 127.0.0.1 "$port" "$pki/host.crt" "$pki/host.key" \
		"$pki/ca.crt" "$@"
}
# The host's identity, as cmkfs reads it (or --kmip-cert, --kmip-key,
# --kmip-ca; default /etc/cmkfs/kmip/client.crt, client.key, ca.crt).
export CMKFS_KMIP_CERT=$pki/host.crt CMKFS_KMIP_KEY=$pki/host.key CMKFS_KMIP_CA=$pki/ca.crt

step "The customer creates an AES-256 key on the KMIP server"
key=kmip://localhost:$port/$(admin create)
echo "$key"

step "The database host checks the key is fit: AES-256, Active, Encrypt and Decrypt allowed"
run "$CMKFS" check-key "$key"

step "The host creates a 64 MiB volume bound to the KMIP key"
run "$CMKFS" create "$work/db.img" --size 64M --key "$key"

step "What is on disk: LUKS2, AES-XTS, and the secret wrapped by the KMIP server (AES-GCM) in a kmip token"
run "$CMKFS" status "$work/db.img"

step "Only the KMIP key can open it: the server unwraps the secret, bound to this header"
run "$CMKFS" unlock-test "$work/db.img"

if [ "$(id -u)" != 0 ]; then
	echo
	echo "Mounting needs root (FUSE, loop devices): run 'sudo make demo-kmip' to see the rest."
	exit 0
fi

step "Mount it with ext4, re-proving access to the key every 2 seconds (default: 60)"
mkdir "$work/mnt"
run "$CMKFS" mount "$work/db.img" "$work/mnt" --revocation-check 2 --log "$work/daemon.log"
run sh -c "printf 'the customer decides who reads this\\n' > '$work/mnt/secret.txt'"
run sync
run cat "$work/mnt/secret.txt"
if grep -q "the customer decides" "$work/db.img"; then
	echo "plaintext found in the volume file!"
	exit 1
fi
echo "grep 'the customer decides' $work/db.img: not found"

step "The customer revokes the key on the KMIP server while the volume is mounted"
admin revoke "${key##*/}"
until_shredded "$work/mnt/secret.txt" "$work/daemon.log"

step "Unmount what is left, and try to mount again: refused, with the reason"
run "$CMKFS" umount "$work/mnt"
if run "$CMKFS" mount "$work/db.img" "$work/mnt"; then
	echo "it should not mount"
	exit 1
fi
echo "(refused, as it must be: a revoked KMIP key never opens the volume again)"
