#!/bin/bash
# demo.sh — cmkfs at work, step by step, on a local KMS (cmkfs-kmsd) in a
# temporary directory; everything it starts and creates is removed at the
# end, also on failure or Ctrl-C.
#
# What is shown is what exists today: a volume whose key only the customer's
# KMS key (CMK) can unlock, rotation to another CMK, and revocation at unlock
# time.  Mounting arrives next; this demo will grow with it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
CMKFS=$PWD/$BUILD/cmkfs
KMSD=$PWD/$BUILD/cmkfs-kmsd
if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B= N=; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
run() { printf '$ %s\n' "$*"; "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/cmkfs-demo.XXXXXX")
kmsd_pid=
cleanup() {
	[ -n "$kmsd_pid" ] && kill "$kmsd_pid" 2> /dev/null && wait "$kmsd_pid" 2> /dev/null
	rm -rf "$work"
}
trap cleanup EXIT

step "Start a local KMS: cmkfs-kmsd, an AWS-KMS-compatible service that enforces access"
"$KMSD" init --state "$work/kms" --account 111111111111 --region us-east-1 > "$work/admin.env"
"$KMSD" principal add --state "$work/kms" arn:aws:iam::111111111111:role/db-host > "$work/host.env"
"$KMSD" serve --state "$work/kms" --listen 127.0.0.1:0 --log "$work/kms.log" > "$work/kms.out" 2>&1 &
kmsd_pid=$!
for _ in $(seq 50); do
	url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/kms.out")
	[ -n "$url" ] && break
	sleep 0.1
done
[ -n "$url" ] || { cat "$work/kms.out"; exit 1; }
echo "cmkfs-kmsd listens on $url; two principals: the account's admin (root) and the database host's role"
export AWS_ENDPOINT_URL_KMS=$url
admin() { (. "$work/admin.env" && export AWS_ENDPOINT_URL_KMS=$url && run "$@"); }
host() { (. "$work/host.env" && export AWS_ENDPOINT_URL_KMS=$url && run "$@"); }

step "The admin creates a customer-managed key (CMK) for the database volumes"
key=$(admin "$CMKFS" kms create-key --description "db volumes" | tee /dev/stderr | tail -n1)

step "The database host checks the key is fit: symmetric, KMS-generated, enabled, usable"
host "$CMKFS" check-key "$key"

step "The host creates a 64 MiB volume bound to the CMK"
host "$CMKFS" create "$work/db.img" --size 64M --key-arn "$key"

step "What is on disk: LUKS2, AES-XTS, and the KMS-wrapped secret in a token"
run "$CMKFS" status "$work/db.img"

step "Only the CMK can open it: unwrap the secret through KMS and open the keyslot"
host "$CMKFS" unlock-test "$work/db.img"

step "Rotate to a new CMK: header only, the data stays as it is"
key2=$(admin "$CMKFS" kms create-key --description "db volumes 2027" | tail -n1)
host "$CMKFS" rotate "$work/db.img" --key-arn "$key2"

step "The customer revokes: disable the CMK in KMS"
admin "$CMKFS" kms disable-key "$key2"
host "$CMKFS" unlock-test "$work/db.img" && { echo "it should not unlock"; exit 1; }
echo "(refused, as it must be: without the CMK nobody can open the volume)"

step "The customer re-enables the CMK: the volume opens again"
admin "$CMKFS" kms enable-key "$key2"
host "$CMKFS" unlock-test "$work/db.img"

step "Every KMS request is in the service's access log (never a secret)"
tail -n 5 "$work/kms.log"

step "The sector cipher's cost on this machine (one core, 1 MiB buffers)"
run "$PWD/$BUILD/cmkfs-crypto-speed" --seconds 0.3

echo
echo "Next on the roadmap: 'cmkfs mount' (FUSE + io_uring + loop + ext4), benchmarks,"
echo "and revocation while mounted.  See README.md."
