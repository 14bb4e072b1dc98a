#!/bin/bash
# cli: the conventions of the cmkfs program — help, per-command --help,
# --version, exit codes (0 ok, 1 failure, 2 usage) and one-line errors.
# timeout: 30
. "$(dirname "$0")/../lib.sh"

expect_exit 0 "$CMKFS" --version
contains "$out" "cmkfs " "--version"
contains "$out" "OpenSSL" "--version names the cipher library"
expect_exit 0 "$CMKFS" version
v=$out
expect_exit 0 "$CMKFS" -V
[ "$out" = "$v" ] || fail "'cmkfs -V' and 'cmkfs version' differ"

# Help: overview on stdout, exit 0; each command has usage.
expect_exit 0 "$CMKFS" help
contains "$out" "Commands:" "help"
for flag in --help -h; do
	expect_exit 0 "$CMKFS" $flag
	contains "$out" "Commands:" "cmkfs $flag"
done
cmds=$(printf '%s\n' "$out" | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
[ -n "$cmds" ] || fail "no commands listed"
for c in $cmds; do
	expect_exit 0 "$CMKFS" "$c" --help
	contains "$out" "usage: cmkfs $c" "$c --help"
	h=$out
	expect_exit 0 "$CMKFS" help "$c"
	[ "$out" = "$h" ] || fail "'cmkfs help $c' differs from '$c --help'"
done

# Usage errors: exit 2, one line on stderr, nothing on stdout.
expect_exit 2 "$CMKFS"
contains "$err" "usage: cmkfs" "no arguments"
expect_exit 2 "$CMKFS" no-such-command
contains "$err" "'no-such-command' is not a cmkfs command" "unknown command"
[ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "unknown command: not one line"
[ -z "$out" ] || fail "unknown command printed to stdout"
expect_exit 2 "$CMKFS" version --no-such-option
contains "$err" "see 'cmkfs version --help'" "unknown option"
[ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "unknown option: not one line"
expect_exit 2 "$CMKFS" version extra-argument
expect_exit 2 "$CMKFS" help no-such-command
contains "$err" "no such command" "help of unknown command"
echo "cli conventions hold"
