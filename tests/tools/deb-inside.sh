#!/bin/bash
# deb-inside.sh — run by tests/integration/deb.sh as root inside its
# throwaway copy of the machine (an overlay root, /tmp and /run fresh
# tmpfs): install /tmp/cmkfs.deb with dpkg -i, check what it installed and
# that it started and enabled nothing, do the main job with the packaged
# programs only (cmkfs-kmsd, a CMK, a volume created, mounted, written, read
# back, unmounted; the packaged token plugin opens it for cryptsetup), then
# dpkg --purge and check that every file of the package is gone.  Its
# output goes to /tmp/inside.log.
set -eu
exec > /tmp/inside.log 2>&1
fail() {
	echo "FAIL: $*"
	exit 1
}
contains() {
	case $1 in *"$2"*) ;; *) fail "$3: no '$2' in: $1" ;; esac
}
cd /tmp
kmsd_pid=
cleanup() {
	rc=$?
	[ $rc -eq 0 ] || [ ! -f /tmp/kms.out ] || sed 's/^/cmkfs-kmsd: /' /tmp/kms.out
	if mountpoint -q /tmp/mnt 2> /dev/null; then
		cmkfs umount /tmp/mnt || umount -l /tmp/mnt
	fi
	[ -z "$kmsd_pid" ] || kill "$kmsd_pid" 2> /dev/null || true
}
trap cleanup EXIT

[ ! -e /usr/bin/cmkfs ] || dpkg --purge cmkfs > /dev/null ||
	fail "cannot take the machine's own cmkfs out of the copy"
dpkg -i /tmp/cmkfs.deb || fail "dpkg -i failed"
status=$(dpkg-query -W -f '${db:Status-Status} ${Version}' cmkfs)
version=${status#installed }
[ "$status" = "installed $version" ] || fail "after dpkg -i, cmkfs is '$status'"
dpkg -L cmkfs > /tmp/files

# Installed where the system looks for each piece.
command -v cmkfs | grep -qx /usr/bin/cmkfs || fail "cmkfs is not /usr/bin/cmkfs"
[ "$(cmkfs --version | cut -d' ' -f1-2)" = "cmkfs $version" ] ||
	fail "cmkfs --version says '$(cmkfs --version)', the package is $version"
[ "$(cmkfs-kmsd --version | cut -d' ' -f1-2)" = "cmkfs-kmsd $version" ] ||
	fail "cmkfs-kmsd --version says '$(cmkfs-kmsd --version)'"
contains "$(cmkfs help)" "  mount " "cmkfs help"
contains "$(cmkfs bench --help)" "usage: cmkfs bench" "cmkfs bench --help"
[ "$(man -w cmkfs)" = /usr/share/man/man8/cmkfs.8.gz ] || fail "man -w cmkfs: $(man -w cmkfs)"
[ "$(man -w cmkfs.conf)" = /usr/share/man/man5/cmkfs.conf.5.gz ] ||
	fail "man -w cmkfs.conf: $(man -w cmkfs.conf)"
contains "$(MANWIDTH=80 man cmkfs-kmsd 2> /dev/null)" "serve" "man cmkfs-kmsd"
contains "$(bash -c '. /usr/share/bash-completion/completions/cmkfs; complete -p cmkfs cmkfs-kmsd')" \
	"-F _cmkfs_kmsd cmkfs-kmsd" "bash completion"
modprobe --showconfig | grep -qx "options fuse enable_uring=1" ||
	fail "modprobe does not read the package's enable_uring=1"
grep -q '^ExecStart=/usr/bin/cmkfs mount ' /lib/systemd/system/cmkfs@.service ||
	fail "the unit does not run /usr/bin/cmkfs"
# systemd's own check of the unit, as an instance (its man pages too).
mkdir /tmp/unit
cp /lib/systemd/system/cmkfs@.service /tmp/unit/cmkfs@db.service
systemd-analyze verify /tmp/unit/cmkfs@db.service || fail "systemd-analyze verify: the unit"

# Nothing started, nothing enabled.
if pgrep -x cmkfs || pgrep -x cmkfs-kmsd; then
	fail "installing started a cmkfs process"
fi
if find /etc/systemd -name 'cmkfs*' | grep .; then fail "installing enabled a unit"; fi

# The main job, with the packaged programs.
cmkfs-kmsd init --state /tmp/kms --account 111111111111 --region us-east-1 > /tmp/root.env
cmkfs-kmsd principal add --state /tmp/kms arn:aws:iam::111111111111:role/db-host > /tmp/host.env
cmkfs-kmsd serve --state /tmp/kms --listen 127.0.0.1:0 > /tmp/kms.out 2>&1 &
kmsd_pid=$!
url=
for _ in $(seq 100); do
	url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' /tmp/kms.out)
	[ -n "$url" ] && break
	sleep 0.1
done
[ -n "$url" ] || fail "the packaged cmkfs-kmsd did not start: $(cat /tmp/kms.out)"
export AWS_ENDPOINT_URL_KMS=$url AWS_EC2_METADATA_DISABLED=true HOME=/tmp/home
mkdir /tmp/home
# The environment files name the default endpoint: point them at ours.
as() { (. "$1" && export AWS_ENDPOINT_URL_KMS=$url && shift && "$@"); }
key=$(as /tmp/root.env cmkfs kms create-key --description volumes)
as /tmp/host.env cmkfs create /tmp/db.img --size 64M --key-arn "$key"
mkdir /tmp/mnt
# /sys is the machine's own: --fuse-io-uring auto would turn the kernel's
# switch on for real, past the copy.
as /tmp/host.env cmkfs mount --fuse-io-uring off /tmp/db.img /tmp/mnt
secret="packaged cmkfs keeps this $(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
echo "$secret" > /tmp/mnt/secret.txt
sync
contains "$(cmkfs status --all)" /tmp/mnt "cmkfs status --all"
cmkfs umount /tmp/mnt
if grep -q "$secret" /tmp/db.img; then fail "the plaintext is on the volume"; fi
[ -z "$(losetup -j /tmp/db.img)" ] || fail "umount left a loop device on the volume"
as /tmp/host.env cmkfs mount --fuse-io-uring off /tmp/db.img /tmp/mnt
[ "$(cat /tmp/mnt/secret.txt)" = "$secret" ] || fail "the file did not come back"
cmkfs umount /tmp/mnt
# The packaged token plugin, where libcryptsetup looks: luksDump shows the
# token through it, and it unwraps the keyslot's secret through KMS.
contains "$(cryptsetup luksDump /tmp/db.img)" "$key" "luksDump through the plugin"
as /tmp/host.env cryptsetup open --test-passphrase --token-only /tmp/db.img ||
	fail "cryptsetup could not open the volume through the packaged plugin"
kill "$kmsd_pid"
wait "$kmsd_pid" 2> /dev/null || true
kmsd_pid=

# Purge: the package is gone, and every file it had with it; what the
# administrator made (a volume's config) stays.
mkdir /etc/cmkfs
cp /usr/share/doc/cmkfs/cmkfs.conf.example /etc/cmkfs/db.conf
dpkg --purge cmkfs || fail "dpkg --purge failed"
status=$(dpkg-query -W -f '${db:Status-Status}' cmkfs 2> /dev/null || true)
[ -z "$status" ] || [ "$status" = not-installed ] || fail "after purge, cmkfs is '$status'"
while read -r f; do
	[ -d "$f" ] && continue # a directory others share (or /lib, a link)
	[ ! -e "$f" ] && [ ! -L "$f" ] || fail "$f is still there after purge"
done < /tmp/files
for d in /usr/lib/cmkfs /usr/share/doc/cmkfs; do
	[ ! -e $d ] || fail "$d is still there after purge"
done
[ -f /etc/cmkfs/db.conf ] || fail "purge removed the administrator's /etc/cmkfs/db.conf"
echo "inside: installed, worked and purged"
