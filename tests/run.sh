#!/bin/bash
# run.sh — cmkfs's test runner.
#
# Runs every test as its own program with a timeout, and reports each as
# PASS, FAIL (non-zero exit, killed by the timeout, or by the watchdog) or
# SKIP (exit 77: the test cannot run here, e.g. no /dev/fuse).  Ends with
# the FUSE transports the data-path tests ran under, and one line
#     N passed, N failed, N skipped
# and exits 1 if anything failed.
#
# Tests:
#   unit/NAME         cmocka programs built into $BUILD/tests/unit/
#   integration/NAME  executable scripts tests/integration/NAME.sh
# A script may set its own timeout with a line "# timeout: SECONDS".
#
# Transports: a script with a line "# transports: both" (the data-path
# tests) runs once per FUSE transport, as NAME[dev_fuse] and NAME[io_uring],
# with CMKFS_TEST_TRANSPORT set (tests/lib.sh makes every mount use it);
# io_uring only where the kernel has FUSE over io_uring.  The kernel's
# enable_uring setting is restored after every test.
#
# Watchdog: while a test runs, tests/tools/watchdog.py asks its cmkfs
# daemons every second for the requests they have not answered; one older
# than CMKFS_TEST_WATCHDOG seconds (default 20) fails the test at once, with
# what was pending in its log.
#
# Each test gets a private directory in $TEST_TMPDIR and a tag in its
# environment (CMKFS_TEST_TAG).  After each test — pass, fail or timeout —
# the runner kills every process still carrying the tag (daemons that
# detached included), unmounts whatever is mounted below the test's
# directory, detaches loop devices backed by files there, and removes it.
#
# usage: tests/run.sh [--suite unit|integration] [--list] [--dir DIR] [PATTERN...]
#   PATTERN: run only tests whose name contains it.
#   --dir DIR: take integration tests from DIR/integration (default: tests).
#   CMKFS_KEEP=1 keeps a failed test's directory for inspection.
set -u
cd "$(dirname "$0")/.." || exit 1
SRC=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$SRC/$BUILD ;; esac
DEFAULT_TIMEOUT=${CMKFS_TEST_TIMEOUT:-300}

suite=
list=0
testdir=tests
patterns=()
while [ $# -gt 0 ]; do
	case $1 in
	--suite) suite=$2; shift 2 ;;
	--list) list=1; shift ;;
	--dir) testdir=$2; shift 2 ;;
	-h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	*) patterns+=("$1"); shift ;;
	esac
done

# Published test vectors, with their licences: tests/vectors/.
export CMKFS_SRC=$SRC CMKFS_BUILD=$BUILD
export CMKFS_VECTORS=${CMKFS_VECTORS:-$SRC/tests/vectors}
export CMKFS_TEST_TAG=cmkfs-test-$$-$(date +%s)
WATCHDOG_S=${CMKFS_TEST_WATCHDOG:-20}
URING_PARAM=/sys/module/fuse/parameters/enable_uring
LOGDIR=${CMKFS_TEST_LOGS:-$BUILD/test-logs}
mkdir -p "$LOGDIR"
RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/cmkfs-test.XXXXXX") || exit 1

tests=()
if [ -z "$suite" ] || [ "$suite" = unit ]; then
	for t in "$BUILD"/tests/unit/*; do
		[ -x "$t" ] && tests+=("unit/$(basename "$t")")
	done
fi
# Both transports where the kernel has FUSE over io_uring (and we may turn
# it on: root).
transports=(dev_fuse)
uring_orig=
if [ -w $URING_PARAM ]; then
	transports+=(io_uring)
	uring_orig=$(cat $URING_PARAM)
fi
if [ -z "$suite" ] || [ "$suite" = integration ]; then
	for t in "$testdir"/integration/*.sh; do
		[ -x "$t" ] || continue
		t=integration/$(basename "$t" .sh)
		# (in the header: the comments before the first command)
		if sed '/^[^#]/q' "$testdir/$t.sh" | grep -q '^# transports: both'; then
			for tr in "${transports[@]}"; do
				tests+=("$t[$tr]")
			done
		else
			tests+=("$t")
		fi
	done
fi
selected=()
for t in "${tests[@]}"; do
	if [ ${#patterns[@]} -eq 0 ]; then
		selected+=("$t")
		continue
	fi
	for p in "${patterns[@]}"; do
		case $t in *"$p"*) selected+=("$t"); break ;; esac
	done
done
if [ $list = 1 ]; then
	printf '%s\n' "${selected[@]}"
	exit 0
fi

# Kill every process whose environment carries this run's tag, except the
# runner itself.  Detached daemons (setsid, double fork) are found too.
kill_tagged() {
	local sig=$1 pids="" p
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" = $$ ] && continue
		if grep -qzx "CMKFS_TEST_TAG=$CMKFS_TEST_TAG" \
			"/proc/$p/environ" 2>/dev/null; then
			pids="$pids $p"
		fi
	done
	[ -n "$pids" ] && kill "-$sig" $pids 2>/dev/null
	[ -n "$pids" ]
}

# Undo what a test left below its directory: processes, mounts (deepest
# first), loop devices.  Reports what it had to clean, so a test that leaks
# is visible even when it passed.
cleanup_test() {
	local dir=$1 log=$2 n=0 m dev back loops=()
	if kill_tagged TERM; then
		sleep 0.5
		kill_tagged KILL && sleep 0.2
		echo "runner: killed leftover processes" >> "$log"
		n=$((n + 1))
	fi
	# The loop devices first: once a file they stand on is unmounted
	# lazily, its path no longer says where it was.
	while read -r dev back; do
		case $back in "$dir"/*) loops+=("$dev $back") ;; esac
	done < <(losetup -n -l -O NAME,BACK-FILE 2>/dev/null)
	# /proc/self/mountinfo field 5 is the mount point (octal-escaped).
	for m in $(awk -v d="$dir" 'index($5, d) == 1 { print $5 }' \
			/proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
		echo "runner: unmounted $m" >> "$log"
		n=$((n + 1))
	done
	for m in "${loops[@]}"; do
		losetup -d "${m%% *}" 2>/dev/null
		echo "runner: detached ${m%% *} (${m#* })" >> "$log"
		n=$((n + 1))
	done
	[ $n -gt 0 ] && leaked=1
	return 0
}

# The kernel's FUSE-over-io_uring setting as the run found it.
restore_uring() {
	[ -n "$uring_orig" ] && echo "$uring_orig" > $URING_PARAM 2> /dev/null
	return 0
}

current_dir=
on_signal() {
	echo
	echo "run.sh: interrupted; cleaning up"
	[ -n "$current_dir" ] && cleanup_test "$current_dir" /dev/null
	restore_uring
	rm -rf "$RUNDIR"
	exit 130
}
trap on_signal INT TERM

passed=0 failed=0 skipped=0
failed_names=()
for t in "${selected[@]}"; do
	# NAME[TRANSPORT]: the test NAME under that transport.
	transport=
	case $t in *\]) transport=${t##*[}; transport=${transport%]} ;; esac
	base=${t%\[*}
	name=${t//\//-}
	name=${name//[\[\]]/-}
	name=${name%-}
	log=$LOGDIR/$name.log
	dir=$RUNDIR/$name
	hung=$RUNDIR/$name.hung
	mkdir -p "$dir"
	current_dir=$dir
	case $t in
	unit/*) cmd=("$BUILD/tests/$t"); limit=$DEFAULT_TIMEOUT ;;
	integration/*)
		cmd=("$(cd "$testdir" && pwd)/$base.sh")
		limit=$(sed -n 's/^# timeout: *\([0-9][0-9]*\).*/\1/p' "${cmd[0]}" | head -n1)
		limit=${limit:-$DEFAULT_TIMEOUT}
		;;
	esac
	start=$EPOCHREALTIME
	# timeout kills the test's whole process group on expiry (it leads
	# that group); anything that escaped it is found by its tag in
	# cleanup_test.
	( cd "$dir" && TEST_TMPDIR=$dir CMKFS_TEST_TRANSPORT=$transport \
		exec timeout --kill-after=10 "$limit" "${cmd[@]}" ) \
		> "$log" 2>&1 < /dev/null &
	tpid=$!
	/usr/bin/python3 "$SRC/tests/tools/watchdog.py" "$dir" "$WATCHDOG_S" \
		"$tpid" "$hung" 2>> "$LOGDIR/watchdog.log" &
	wpid=$!
	wait $tpid
	rc=$?
	kill $wpid 2> /dev/null
	wait $wpid 2> /dev/null
	secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')
	leaked=0
	cleanup_test "$dir" "$log"
	restore_uring
	current_dir=
	if [ -s "$hung" ]; then
		cat "$hung" >> "$log"
		rc=1
	fi
	case $rc in
	0)
		passed=$((passed + 1))
		printf 'PASS  %-40s %6.1fs\n' "$t" "$secs"
		;;
	77)
		skipped=$((skipped + 1))
		why=$(grep -m1 '^SKIP:' "$log" | cut -c7-)
		printf 'SKIP  %-40s %s\n' "$t" "${why:-(no reason given)}"
		;;
	*)
		failed=$((failed + 1))
		failed_names+=("$t")
		if [ -s "$hung" ]; then
			what="a request hung: watchdog"
		elif [ $rc = 124 ] || [ $rc = 137 ]; then
			what="timed out after ${limit}s"
		else
			what="exit $rc"
		fi
		printf 'FAIL  %-40s %6.1fs  (%s; log: %s)\n' "$t" "$secs" "$what" "$log"
		tail -n 40 "$log" | sed 's/^/    | /'
		;;
	esac
	[ $leaked = 1 ] && echo "      note: $t left processes, mounts or loop devices behind (see its log)"
	if [ $rc != 0 ] && [ $rc != 77 ] && [ "${CMKFS_KEEP:-0}" = 1 ]; then
		echo "      kept: $dir"
	else
		rm -rf "$dir"
	fi
	rm -f "$hung"
done
rmdir "$RUNDIR" 2>/dev/null

[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
if [ ${#transports[@]} = 2 ]; then
	echo "FUSE transports: /dev/fuse and io_uring (each data-path test ran under both)"
else
	echo "FUSE transports: /dev/fuse only (this kernel has no FUSE over io_uring)"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] && [ $((passed + skipped)) -gt 0 ]
