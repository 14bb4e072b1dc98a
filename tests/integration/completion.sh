#!/bin/bash
# completion: completion/cmkfs.bash completes what the programs' help says —
# every command, every option of each command, the choices of an option,
# files for volumes and directories for mount points — for cmkfs and
# cmkfs-kmsd, in a real bash with the file sourced.
# timeout: 120
. "$(dirname "$0")/../lib.sh"

# complete WORD...: what bash completes for the last word (one per line).
complete_words() {
	bash --norc --noprofile -c '
		source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		case $1 in *cmkfs-kmsd) _cmkfs_kmsd ;; *) _cmkfs ;; esac
		printf "%s\n" "${COMPREPLY[@]}"' _ "$CMKFS_SRC/completion/cmkfs.bash" "$@" | sort
}
# same WHAT GOT WANT: fail unless the two lists are equal as sets.
same() {
	[ "$(printf '%s\n' $2 | sort -u)" = "$(printf '%s\n' $3 | sort -u)" ] ||
		fail "$1: completed '$(echo $2)', want '$(echo $3)'"
}

cmds=$("$CMKFS" help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
[ -n "$cmds" ] || fail "no commands in cmkfs help"
same "cmkfs <tab>" "$(complete_words "$CMKFS" "")" "$cmds --help --version"
same "cmkfs mo<tab>" "$(complete_words "$CMKFS" mo)" "mount"

# Every command's options, as its help lists them (found independently of
# the completion's own parsing; an option quoted in prose is not one).
for c in $cmds; do
	want=$("$CMKFS" help "$c" | $PYTHON -c 'import re, sys
print("\n".join(sorted(set(re.findall(r"(?:^|(?<=[\s\[,|]))--[a-z][a-z0-9-]*", sys.stdin.read(), re.M)))))')
	same "cmkfs $c --<tab>" "$(complete_words "$CMKFS" "$c" --)" "$want"
done
same "mount --poll<tab>" "$(complete_words "$CMKFS" mount --poll)" "--poll-us"

# Choices.
same "mount --fuse-io-uring" "$(complete_words "$CMKFS" mount --fuse-io-uring "")" "auto on off"
same "mount --on-revoke" "$(complete_words "$CMKFS" mount --on-revoke "")" "shred suspend keep"
same "mount --revocation" "$(complete_words "$CMKFS" mount --revocation "")" "all any"
same "create --mkfs" "$(complete_words "$CMKFS" create --mkfs "")" "ext4 xfs"
# An option that takes a free value completes nothing.
same "mount --poll-us" "$(complete_words "$CMKFS" mount --poll-us "")" ""
same "help re<tab>" "$(complete_words "$CMKFS" help re)" "$(printf '%s\n' $cmds | grep '^re')"
same "kms <tab>" "$(complete_words "$CMKFS" kms "")" \
	"call create-key enable-key disable-key cancel-deletion schedule-deletion revoke-grant"

# Files and directories.
mkdir -p "$TEST_TMPDIR/f/dir.d"
touch "$TEST_TMPDIR/f/vol.img"
same "mount VOLUME" "$(complete_words "$CMKFS" mount "$TEST_TMPDIR/f/")" \
	"$TEST_TMPDIR/f/dir.d $TEST_TMPDIR/f/vol.img"
same "mount VOLUME DIR" "$(complete_words "$CMKFS" mount "$TEST_TMPDIR/f/vol.img" "$TEST_TMPDIR/f/")" \
	"$TEST_TMPDIR/f/dir.d"
same "mount --fs ext4 VOLUME DIR" \
	"$(complete_words "$CMKFS" mount --fs ext4 "$TEST_TMPDIR/f/vol.img" "$TEST_TMPDIR/f/")" \
	"$TEST_TMPDIR/f/dir.d"
same "status VOLUME" "$(complete_words "$CMKFS" status "$TEST_TMPDIR/f/v")" "$TEST_TMPDIR/f/vol.img"

# cmkfs-kmsd.
same "cmkfs-kmsd <tab>" "$(complete_words "$KMSD" "")" "serve init principal"
same "cmkfs-kmsd principal" "$(complete_words "$KMSD" principal "")" "add list remove"
same "cmkfs-kmsd --st" "$(complete_words "$KMSD" serve --st)" "--state"
same "cmkfs-kmsd --state" "$(complete_words "$KMSD" serve --state "$TEST_TMPDIR/f/")" "$TEST_TMPDIR/f/dir.d"
echo "ok: completion follows the help"
