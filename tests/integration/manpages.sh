#!/bin/bash
# manpages: the built man pages — cmkfs(8), cmkfs-kmsd(8), cmkfs.conf(5) —
# pass mandoc's lint and man's warnings, render, and say what the programs'
# help says: every command of `cmkfs help` has its section, and every option
# of each command's help (and of `cmkfs-kmsd --help`) is in the page.  The
# checker is shown a page with one option taken out first, and must object.
# timeout: 60
. "$(dirname "$0")/../lib.sh"

for tool in mandoc man; do
	command -v $tool > /dev/null || fail "$tool is missing (scripts/deps.sh installs it)"
done
man_dir=$CMKFS_BUILD/man
for page in cmkfs.8 cmkfs-kmsd.8 cmkfs.conf.5; do
	f=$man_dir/$page
	[ -s "$f" ] || fail "$page was not built"
	lint=$(mandoc -T lint -W warning "$f" 2>&1) || true
	[ -z "$lint" ] || fail "mandoc -T lint $page: $lint"
	warn=$(MANWIDTH=80 MANPAGER=cat man --warnings -l "$f" 2>&1 > "$TEST_TMPDIR/$page.txt")
	[ -z "$warn" ] || fail "man --warnings $page: $warn"
	grep -q "^NAME" "$TEST_TMPDIR/$page.txt" || fail "$page renders without NAME"
	! grep -q "@[A-Z_]*@" "$f" || fail "$page keeps a template placeholder"
done
grep -q "cmkfs $("$CMKFS" --version | awk '{ print $2 }')" "$man_dir/cmkfs.8" ||
	fail "cmkfs.8 does not name this version"

# The help of every command, as the checker reads it.
"$CMKFS" help > "$TEST_TMPDIR/help" || fail "cmkfs help failed"
for c in $(awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }' "$TEST_TMPDIR/help"); do
	"$CMKFS" help "$c" > "$TEST_TMPDIR/help.$c" || fail "cmkfs help $c failed"
done
"$KMSD" --help > "$TEST_TMPDIR/help.kmsd" || fail "cmkfs-kmsd --help failed"

check() {
	$PYTHON - "$TEST_TMPDIR" "$1" "$2" <<'P'
import glob, os, re, sys

tmp, page, kmsd = sys.argv[1], open(sys.argv[2]).read(), open(sys.argv[3]).read()

def plain(roff):
    return re.sub(r"\\f[BIR]", "", roff).replace("\\-", "-").replace("\\e", "\\")

def options(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))

sections = re.split(r'^\.S[HS] "?([^"\n]+)"?$', page, flags=re.M)
sect = {plain(sections[i]): plain(sections[i + 1]) for i in range(1, len(sections), 2)}
bad = []
cmds = re.findall(r"^  (\S+)\s", open(os.path.join(tmp, "help")).read().split("Commands:", 1)[1], re.M)
for c in cmds:
    if c not in sect:
        bad.append(f"no section for '{c}'")
        continue
    have = options(sect[c]) | options(sect.get("KMS OPTIONS", ""))
    for o in sorted(options(open(os.path.join(tmp, f"help.{c}")).read()) - have):
        bad.append(f"{c}: {o} is in 'cmkfs help {c}' but not in the page")
for o in sorted(options(open(os.path.join(tmp, "help.kmsd")).read()) - options(plain(kmsd))):
    bad.append(f"cmkfs-kmsd: {o} is in its --help but not in the page")
for b in bad:
    print("bad:", b)
sys.exit(1 if bad else 0)
P
}

# The checker can fail: the page without one of mount's options.
sed '/^\\fB\\-\\-poll\\-us\\fR/d' "$man_dir/cmkfs.8" > "$TEST_TMPDIR/cut.8"
cmp -s "$TEST_TMPDIR/cut.8" "$man_dir/cmkfs.8" && fail "could not cut --poll-us out of the page"
out=$(check "$TEST_TMPDIR/cut.8" "$man_dir/cmkfs-kmsd.8") &&
	fail "the checker passed a page without --poll-us"
contains "$out" "mount: --poll-us" "the checker's objection"

check "$man_dir/cmkfs.8" "$man_dir/cmkfs-kmsd.8" || fail "the man pages and the help disagree"
echo "ok: man pages lint clean and carry every command and option"
