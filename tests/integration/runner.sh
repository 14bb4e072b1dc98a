#!/bin/bash
# runner: the test runner itself — counts, skip reasons, timeouts, the
# cleanup it owes after a failing test (leftover (detached) processes,
# mounts below the test's directory, loop devices backed by files there),
# a test run once per FUSE transport, and the watchdog failing a test whose
# daemon holds a request: a volume whose backend lies on another cmkfs
# mount, whose daemon is stopped.
# timeout: 180
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
cat > "$fake/integration/transported.sh" <<'T'
#!/bin/sh
# transports: both
echo "$CMKFS_TEST_TRANSPORT" >> "$TRANSPORTS_SEEN"
T
# A: a volume on a loop device over the plaintext file of B; B's daemon
# stopped, a read from A waits for ever in A's daemon.
cat > "$fake/integration/hung.sh" <<'T'
#!/bin/bash
# timeout: 100
. "$CMKFS_SRC/tests/lib.sh"
need_mounts loop
isolate_aws
kmsd_with_host
as "$host" "$CMKFS" create "$TEST_TMPDIR/b.img" --size 40M --key-arn "$key" > /dev/null
as "$host" "$CMKFS" mount --raw "$TEST_TMPDIR/b.img" "$TEST_TMPDIR/b" > /dev/null
loop=$(losetup -f --show "$TEST_TMPDIR/b")
as "$host" "$CMKFS" create "$loop" --key-arn "$key" > /dev/null
as "$host" "$CMKFS" mount --raw "$loop" "$TEST_TMPDIR/a" > /dev/null
kill -STOP "$(cat "$CMKFS_RUNTIME_DIR/$(cryptsetup luksUUID "$TEST_TMPDIR/b.img")/pid")"
dd if="$TEST_TMPDIR/a" of=/dev/null bs=4096 count=1 iflag=direct
echo "the read came back"
T
chmod +x "$fake"/integration/*.sh

rc=0
export TRANSPORTS_SEEN=$TEST_TMPDIR/transports
transports=1
[ -w /sys/module/fuse/parameters/enable_uring ] && transports=2
CMKFS_TEST_WATCHDOG=3 CMKFS_TEST_LOGS=$TEST_TMPDIR/logs "$CMKFS_SRC/tests/run.sh" --suite integration --dir "$fake" > "$TEST_TMPDIR/out" 2>&1 || rc=$?
cat "$TEST_TMPDIR/out"
[ $rc = 1 ] || fail "runner exit $rc with failing tests, want 1"
last=$(tail -n 1 "$TEST_TMPDIR/out")
want_failed=2
[ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ] && want_failed=3
[ "$last" = "$((1 + transports)) passed, $want_failed failed, $((1 + 3 - want_failed)) skipped" ] ||
	fail "summary line: '$last'"
if [ $transports = 2 ]; then
	[ "$(sort "$TRANSPORTS_SEEN" | xargs)" = "dev_fuse io_uring" ] ||
		fail "transports seen: $(cat "$TRANSPORTS_SEEN")"
	grep -q '^PASS  integration/transported\[io_uring\]' "$TEST_TMPDIR/out" ||
		fail "no io_uring run reported"
	grep -q '^FUSE transports: /dev/fuse and io_uring' "$TEST_TMPDIR/out" ||
		fail "transports not named"
else
	grep -q '^FUSE transports: /dev/fuse only' "$TEST_TMPDIR/out" || fail "transports not named"
fi
if [ $want_failed = 3 ]; then
	grep -q '^FAIL  integration/hung .*a request hung: watchdog' "$TEST_TMPDIR/out" ||
		fail "the watchdog did not catch the hung request"
	grep -q '^WATCHDOG: a FUSE request has waited' "$TEST_TMPDIR/logs/integration-hung.log" ||
		fail "no watchdog report in the log"
	grep -Eq '^  [0-9]+ READ [0-9]+ ' "$TEST_TMPDIR/logs/integration-hung.log" ||
		fail "the watchdog report does not name the pending read"
	grep -q "the read came back" "$TEST_TMPDIR/logs/integration-hung.log" &&
		fail "the hung read came back"
	grep -q "runner: detached .*integration-hung/b)" "$TEST_TMPDIR/logs/integration-hung.log" ||
		fail "the loop device over the stopped daemon's file was not detached"
fi
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
