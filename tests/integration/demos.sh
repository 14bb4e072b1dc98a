#!/bin/bash
# demos: `make demo` and `make demo-kmip` (scripts/demo.sh, demo-kmip.sh)
# run to their end, and what they show happens: the plaintext is nowhere in
# the volume file, the revocation while mounted shreds the mount, and the
# next mount is refused.
# timeout: 240
. "$(dirname "$0")/../lib.sh"

need_mounts loop
# Their directory: a short path, as a mount's control socket below it must
# fit a socket address.
tmp=$(mktemp -d /tmp/cmkfs-demos.XXXXXX)
trap 'rm -rf "$tmp" "$LIB_TMPDIR"' EXIT
for demo in demo demo-kmip; do
	rc=0
	BUILD=$CMKFS_BUILD TMPDIR=$tmp "$CMKFS_SRC/scripts/$demo.sh" > "$TEST_TMPDIR/$demo.out" 2>&1 || rc=$?
	[ $rc = 0 ] || fail "$demo exited $rc: $(tail -n 20 "$TEST_TMPDIR/$demo.out")"
	out=$(cat "$TEST_TMPDIR/$demo.out")
	contains "$out" "grep 'the customer decides'" "$demo: the plaintext looked for"
	contains "$out" ": not found" "$demo: no plaintext in the volume"
	contains "$out" "SHREDDED" "$demo: the shred"
	contains "$out" "Input/output error" "$demo: I/O after the revocation"
	contains "$out" "(refused, as it must be" "$demo: the mount after the revocation"
	# It removes what it made.
	left=$(find "$tmp" -mindepth 1 -maxdepth 1)
	[ -z "$left" ] || fail "$demo left $left behind"
	echo "$demo: ran to its end"
done
