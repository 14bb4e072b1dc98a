#!/bin/bash
# demo.sh — cmkfs at work, step by step, on a local KMS (cmkfs-kmsd) in a
# temporary directory; everything it starts and creates is removed at the
# end, also on failure or Ctrl-C.
#
# The main job: a database host creates a volume bound to the customer's KMS
# key (CMK), mounts it with ext4, writes and reads files whose every byte is
# AES-XTS-encrypted on the volume, rotates to another CMK while mounted,
# unmounts; and the customer's revocation: while mounted, the keys are
# wiped and I/O fails within seconds; the next mount is refused.  Mounting
# needs root (FUSE, loop devices); without it the demo stops before that.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/demo-common.sh
KMSD=$BUILD/cmkfs-kmsd

work=$(mktemp -d "${TMPDIR:-/tmp}/cmkfs-demo.XXXXXX")
kmsd_pid=
# The demo's mounts keep their state here, away from real ones.
export CMKFS_RUNTIME_DIR=$work/run
cleanup() {
	if [ -d "$work/mnt" ] && mountpoint -q "$work/mnt"; then
		"$CMKFS" umount "$work/mnt" > /dev/null 2>&1 || umount -l "$work/mnt"
	fi
	if [ -n "$kmsd_pid" ]; then
		kill "$kmsd_pid" 2> /dev/null || true
		wait "$kmsd_pid" 2> /dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

step "Start a local KMS: cmkfs-kmsd, an AWS-KMS-compatible service that enforces access"
"$KMSD" init --state "$work/kms" --account 111111111111 --region us-east-1 > "$work/admin.env"
"$KMSD" principal add --state "$work/kms" arn:aws:iam::111111111111:role/db-host > "$work/host.env"
: > "$work/kms.out" # there before the service opens it: the loop below reads it
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

if [ "$(id -u)" != 0 ]; then
	echo
	echo "Mounting needs root (FUSE, loop devices): run 'sudo make demo' to see the rest."
	exit 0
fi

step "Mount it: KMS unwraps the key, the daemon serves the plaintext over FUSE, ext4 goes on a loop device"
mkdir "$work/mnt"
host "$CMKFS" mount "$work/db.img" "$work/mnt"
run findmnt -n -o SOURCE,FSTYPE,SIZE "$work/mnt"

step "The database writes and reads files as on any disk"
run sh -c "seq 1 20000 | sed 's/^/row /' > '$work/mnt/table.txt'"
run sh -c "printf 'the customer decides who reads this\\n' > '$work/mnt/secret.txt'"
run sync
run ls -l "$work/mnt"
run tail -n 2 "$work/mnt/table.txt"

step "On the volume every byte is ciphertext: the plaintext is nowhere in the file"
if grep -q "the customer decides" "$work/db.img"; then
	echo "plaintext found in the volume file!"
	exit 1
fi
echo "grep 'the customer decides' $work/db.img: not found"

step "status shows the mount: directory, loop device, daemon, I/O so far"
run "$CMKFS" status "$work/db.img"

step "Rotate to a new CMK while mounted: header only, no downtime, the data stays as it is"
key2=$(admin "$CMKFS" kms create-key --description "db volumes 2027" | tail -n1)
host "$CMKFS" rotate "$work/db.img" --key-arn "$key2"
run cat "$work/mnt/secret.txt"

step "Unmount: the filesystem goes, the loop device is detached, the daemon flushes and wipes its keys"
run "$CMKFS" umount "$work/mnt"

step "Mount again, re-proving access to the CMK every 2 seconds (default: 60)"
host "$CMKFS" mount "$work/db.img" "$work/mnt" --revocation-check 2 --log "$work/daemon.log"
run cat "$work/mnt/secret.txt"

step "The customer revokes while it is mounted: disable the CMK in KMS"
admin "$CMKFS" kms disable-key "$key2"
until_shredded "$work/mnt/table.txt" "$work/daemon.log"
run "$CMKFS" status "$work/db.img"

step "Unmount what is left, and try to mount again: refused, with the reason"
run "$CMKFS" umount "$work/mnt"
if host "$CMKFS" mount "$work/db.img" "$work/mnt"; then
	echo "it should not mount"
	exit 1
fi
echo "(refused, as it must be: without the CMK nobody can read the volume, mounted or not)"

step "The customer re-enables the CMK: the volume mounts again, data intact"
admin "$CMKFS" kms enable-key "$key2"
host "$CMKFS" mount "$work/db.img" "$work/mnt"
run cat "$work/mnt/secret.txt"
run "$CMKFS" umount "$work/mnt"

step "Every KMS request is in the service's access log (never a secret)"
tail -n 5 "$work/kms.log"

step "The sector cipher's cost on this machine (one core, 1 MiB buffers)"
run "$BUILD/cmkfs-crypto-speed" --seconds 0.3

echo
echo "What encryption costs on this machine: make bench.  See README.md."
