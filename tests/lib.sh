# lib.sh — helpers for shell tests; source it first:  . "$CMKFS_SRC/tests/lib.sh"
#
# A test is a program: exit 0 passes, 77 skips (only for what truly cannot
# run here; say why with `skip`), anything else fails.  The runner gives each
# test a private $TEST_TMPDIR and cleans up after it; a test that also runs
# alone (outside the runner) gets a temporary directory of its own.
set -eu

: "${CMKFS_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${CMKFS_BUILD:=$CMKFS_SRC/build}"
: "${CMKFS_VECTORS:=$CMKFS_SRC/../shared/vectors}"
if [ -z "${TEST_TMPDIR:-}" ]; then
	TEST_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/cmkfs-test.XXXXXX")
	trap 'rm -rf "$TEST_TMPDIR"' EXIT
fi
export CMKFS_SRC CMKFS_BUILD CMKFS_VECTORS TEST_TMPDIR
CMKFS=$CMKFS_BUILD/cmkfs

# Debian's interpreter, with Debian's python3-cryptography: not whatever
# python3 comes first on PATH.
PYTHON=/usr/bin/python3

skip() {
	echo "SKIP: $*"
	exit 77
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

need_root() {
	[ "$(id -u)" -eq 0 ] || skip "needs root"
}

# expect_exit CODE CMD...: run CMD, fail unless it exits with CODE.  Its
# stdout and stderr are kept in $out and $err.
expect_exit() {
	local want=$1 rc=0
	shift
	out=$("$@" 2> "$TEST_TMPDIR/.stderr") || rc=$?
	err=$(cat "$TEST_TMPDIR/.stderr")
	if [ "$rc" != "$want" ]; then
		echo "command: $*" >&2
		echo "stdout: $out" >&2
		echo "stderr: $err" >&2
		fail "exit $rc, want $want"
	fi
}

# contains HAYSTACK NEEDLE WHAT: fail unless NEEDLE occurs in HAYSTACK.
contains() {
	case $1 in
	*"$2"*) ;;
	*) printf 'got: %s\n' "$1" >&2; fail "$3: missing '$2'" ;;
	esac
}
