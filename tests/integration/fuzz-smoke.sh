#!/bin/bash
# fuzz-smoke: every libFuzzer target (tests/fuzz/) for a few seconds from its
# seed corpus — the parsers of untrusted input (SigV4 requests, key
# policies, KMS request bodies) must survive.  `make fuzz` runs them longer.
# timeout: 240
. "$(dirname "$0")/../lib.sh"

seconds=${CMKFS_FUZZ_SECONDS:-10}
n=0
for f in "$CMKFS_BUILD"/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	mkdir -p "$TEST_TMPDIR/$name"
	seeds=$CMKFS_SRC/tests/fuzz/corpus/$name
	echo "== $name, ${seconds}s"
	[ -d "$seeds" ] || seeds=
	rc=0
	"$f" -max_total_time="$seconds" -print_final_stats=1 \
		-artifact_prefix="$TEST_TMPDIR/" "$TEST_TMPDIR/$name" $seeds \
		> "$TEST_TMPDIR/$name.log" 2>&1 || rc=$?
	tail -n 40 "$TEST_TMPDIR/$name.log"
	[ $rc = 0 ] || fail "$name failed (exit $rc; the crashing input is in the test's directory: CMKFS_KEEP=1 keeps it)"
	n=$((n + 1))
done
[ $n -ge 1 ] || fail "no fuzz targets were built (clang missing?)"
