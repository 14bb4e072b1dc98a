#!/bin/bash
# runner: the test runner itself — counts, skip reasons, timeouts, and the
# cleanup it owes after a failing test: leftover (detached) processes,
# mounts below the test's directory, and loop devices backed by files there.
# timeout: 120
. "$(dirname "$0")/../lib.sh"

fake=$TEST_TMPDIR/fake
mkdir -p "$fake/integration"
marker=cmkfs-runner-selftest-$$

cat > "$fake/integration/passes.sh" <<'T'
#!/bin/sh
exit 0
T
cat > "$fake/integration/skips.sh" <<'T'
#!/bin/sh
echo "SKIP: no unicorns on this machine"
exit 77
T
cat > "$fake/integration/hangs.sh" <<'T'
#!/bin/sh
# timeout: 2
sleep 60
T
# Leaves a detached process, a mount and a loop device behind, then fails.
cat > "$fake/integration/leaks.sh" <<T
#!/bin/bash
setsid bash -c 'exec -a $marker sleep 600' < /dev/null > /dev/null 2>&1 &
if [ "\$(id -u)" -eq 0 ]; then
	mkdir "\$TEST_TMPDIR/mnt"
	mount -t tmpfs none "\$TEST_TMPDIR/mnt"
	truncate -s 1M "\$TEST_TMPDIR/backing"
	losetup -f "\$TEST_TMPDIR/backing"
fi
sleep 0.2
exit 3
T
chmod +x "$fake"/integration/*.sh

rc=0
CMKFS_TEST_LOGS=$TEST_TMPDIR/logs "$CMKFS_SRC/tests/run.sh" --suite integration --dir "$fake" > "$TEST_TMPDIR/out" 2>&1 || rc=$?
cat "$TEST_TMPDIR/out"
[ $rc = 1 ] || fail "runner exit $rc with failing tests, want 1"
last=$(tail -n 1 "$TEST_TMPDIR/out")
[ "$last" = "1 passed, 2 failed, 1 skipped" ] || fail "summary line: '$last'"
grep -q '^SKIP  integration/skips .*no unicorns on this machine' "$TEST_TMPDIR/out" ||
	fail "skip reason not shown"
grep -q '^FAIL  integration/hangs .*timed out after 2s' "$TEST_TMPDIR/out" ||
	fail "timeout not reported"
grep -q '^FAIL  integration/leaks .*exit 3' "$TEST_TMPDIR/out" ||
	fail "failure exit code not reported"
grep -q 'left processes, mounts or loop devices behind' "$TEST_TMPDIR/out" ||
	fail "leak not reported"
grep -q 'runner: killed leftover processes' "$TEST_TMPDIR/out" ||
	fail "detached process not found by the runner"

sleep 0.5
if pgrep -f "^$marker" > /dev/null; then
	pkill -f "^$marker"
	fail "the detached process survived the runner"
fi
if [ "$(id -u)" -eq 0 ]; then
	grep -q "cmkfs-test.*/integration-leaks/mnt" /proc/self/mountinfo &&
		fail "mount left behind"
	losetup -n -l -O BACK-FILE | grep -q "integration-leaks/backing" &&
		fail "loop device left behind"
fi
echo "runner cleans up after failing tests"
