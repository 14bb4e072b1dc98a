#!/bin/bash
# deb: `make deb` builds the Debian package and lintian finds nothing to
# say about it; the package installs with dpkg -i into a throwaway copy of
# this machine, where the packaged programs do the main job; dpkg --purge
# then leaves nothing of it behind.
#
# The throwaway copy is an overlay over the machine's root, in mount and
# PID namespaces of the test's own (its processes are the only ones it
# sees, and die with it): dpkg, the maintainer scripts and the
# programs see the real system (its packages, /dev/fuse, loop devices), and
# everything they change lands in the overlay's upper layer, which is how
# the test sees what the package left: after the purge that layer may hold
# dpkg's own records and the caches its triggers rebuild, nothing else.  A
# cmkfs already installed on the machine stays untouched.
# timeout: 600
. "$(dirname "$0")/../lib.sh"

need_mounts loop
for tool in dpkg-buildpackage dh lintian unshare chroot; do
	command -v $tool > /dev/null || fail "$tool is missing (scripts/deps.sh installs it)"
done

# The package, built from a copy of the tree; not the jobserver of a
# `make test` above us, nor its BUILD or SAN settings.
out=$TEST_TMPDIR/deb
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$CMKFS_SRC" --no-print-directory \
	deb DEB_OUT="$out" > "$TEST_TMPDIR/deb.log" 2>&1 || {
	tail -n 40 "$TEST_TMPDIR/deb.log"
	fail "make deb failed (log above)"
}
grep -q '^lintian ' "$TEST_TMPDIR/deb.log" || fail "make deb did not run lintian"
version=$(dpkg-parsechangelog -S Version -l "$CMKFS_SRC/debian/changelog")
deb=$out/cmkfs_${version}_amd64.deb
[ -f "$deb" ] || fail "make deb left no $deb"

# Warnings too: make deb fails only on errors.
lintian --display-level '>=warning' "$deb" > "$TEST_TMPDIR/lintian.log" 2>&1 || true
if grep -E '^[EW]: ' "$TEST_TMPDIR/lintian.log"; then
	fail "lintian complains about the package (above)"
fi

# What the package must hold, and the control fields that matter.
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' > "$TEST_TMPDIR/contents"
for f in /usr/bin/cmkfs /usr/bin/cmkfs-kmsd /usr/lib/cmkfs/cmkfs-crypto-speed \
	/usr/lib/cmkfs/bench/bench.py /usr/lib/cmkfs/bench/fio/workloads.fio \
	/lib/systemd/system/cmkfs@.service /lib/modprobe.d/cmkfs.conf \
	/usr/share/man/man8/cmkfs.8.gz /usr/share/man/man8/cmkfs-kmsd.8.gz \
	/usr/share/man/man5/cmkfs.conf.5.gz \
	/usr/share/bash-completion/completions/cmkfs \
	/usr/share/bash-completion/completions/cmkfs-kmsd \
	/usr/share/doc/cmkfs/copyright /usr/share/doc/cmkfs/cmkfs.conf.example; do
	grep -qx "$f" "$TEST_TMPDIR/contents" || fail "the package has no $f"
done
for type in aws-kms kmip; do
	grep -q "/cryptsetup/libcryptsetup-token-$type.so\$" "$TEST_TMPDIR/contents" ||
		fail "the package has no $type token plugin"
done
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libcryptsetup12 libfuse3-3 liburing2 libssl3 libcurl4; do
	contains "$depends" "$lib" "Depends (from \${shlibs:Depends})"
done

# The copy of the machine.  The upper layer lives on a tmpfs of its own:
# an overlay refuses an upper layer inside its lower one.
cp "$deb" "$TEST_TMPDIR/cmkfs.deb"
cp "$CMKFS_SRC/tests/tools/deb-inside.sh" "$TEST_TMPDIR/inside.sh"
cat > "$TEST_TMPDIR/outside.sh" << 'EOF'
set -eu
t=$TEST_TMPDIR ovl=$TEST_TMPDIR/ovl
mkdir "$ovl"
mount -t tmpfs -o mode=0755 cmkfs-deb-test "$ovl"
mkdir "$ovl/upper" "$ovl/work" "$ovl/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$ovl/upper,workdir=$ovl/work" "$ovl/root"
r=$ovl/root
mount --rbind /dev "$r/dev"
mount --rbind /sys "$r/sys"
mount -t proc proc "$r/proc"
mount -t tmpfs tmpfs "$r/run"
mount -t tmpfs tmpfs "$r/tmp"
cp "$t/cmkfs.deb" "$t/inside.sh" "$r/tmp/"
rc=0
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
	CMKFS_TEST_TAG="${CMKFS_TEST_TAG:-}" \
	chroot "$r" /bin/bash /tmp/inside.sh || rc=$?
cp "$r/tmp/inside.log" "$t/" 2> /dev/null || true
[ $rc -eq 0 ] || exit $rc

# What the install, the job and the purge changed on the machine's root:
# dpkg's records at least, or the overlay caught nothing.
cd "$ovl/upper"
[ -f var/lib/dpkg/status ] || { echo "the overlay did not see dpkg's writes" > "$t/left"; exit 0; }
find . -mindepth 1 | sort | while read -r p; do
	f=${p#.}
	# A whiteout: a file of the machine's own cmkfs package, deleted.
	if [ -c "$p" ] && grep -qxF "$f" "$t/host-files"; then continue; fi
	if [ -d "$p" ] && [ ! -L "$p" ]; then
		[ -d "$f" ] || [ "$f" = /etc/cmkfs ] || echo "$f (a new directory)"
		continue
	fi
	case $f in
	/var/lib/dpkg/* | /var/log/dpkg.log | /var/cache/man/* | /etc/ld.so.cache) ;;
	/etc/cmkfs/db.conf) ;; # the administrator's, made by the test
	*) echo "$f" ;;
	esac
done > "$t/left"
EOF
# The machine's own cmkfs package, if any, by the paths the upper layer
# shows (dpkg's /lib/... is /usr/lib/... on a merged /usr).
dpkg-query -L cmkfs 2> /dev/null | while read -r f; do realpath -m "$f"; done \
	> "$TEST_TMPDIR/host-files" || true
rc=0
unshare --mount --pid --fork --propagation private /bin/bash "$TEST_TMPDIR/outside.sh" || rc=$?
cat "$TEST_TMPDIR/inside.log" 2> /dev/null || true
[ $rc -eq 0 ] || fail "the install, job and purge in the copy failed (log above)"
if [ -s "$TEST_TMPDIR/left" ]; then
	cat "$TEST_TMPDIR/left"
	fail "after dpkg --purge, these are left on the machine (above)"
fi
echo "deb: $deb installs, works and purges without a trace"
