#!/bin/bash
# bench-install: `make install` into a DESTDIR carries the benchmark (and
# the man pages, the bash completion, and the modprobe.d file that turns
# FUSE over io_uring on at boot), and the
# installed `cmkfs bench` runs it — help under its own name, a short real
# run (raw and xts, one workload) whose results land in
# ./cmkfs-bench-<timestamp> with the installed cmkfs, cmkfs-kmsd and
# cmkfs-crypto-speed — and says what to do when python3 or a bench file
# is missing.  bench-smoke checks the report's contents in full.
# timeout: 120
. "$(dirname "$0")/../lib.sh"

dest=$TEST_TMPDIR/dest
bin=$dest/usr/local/bin
lib=$dest/usr/local/lib/cmkfs
# Not the jobserver of a `make test` above us.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$CMKFS_SRC" --no-print-directory \
	install BUILD="$CMKFS_BUILD" DESTDIR="$dest" PREFIX=/usr/local \
	> "$TEST_TMPDIR/install.log" 2>&1 || {
	cat "$TEST_TMPDIR/install.log"
	fail "make install failed"
}
share=$dest/usr/local/share
for f in "$bin/cmkfs" "$bin/cmkfs-kmsd" "$lib/cmkfs-crypto-speed" \
	"$lib/bench/bench.py" "$lib/bench/fio/workloads.fio" \
	"$share/man/man8/cmkfs.8" "$share/man/man8/cmkfs-kmsd.8" \
	"$share/man/man5/cmkfs.conf.5" \
	"$share/bash-completion/completions/cmkfs" \
	"$share/bash-completion/completions/cmkfs-kmsd" \
	"$dest/usr/local/lib/modprobe.d/cmkfs.conf"; do
	[ -f "$f" ] || fail "make install did not install ${f#"$dest"}"
done
# The fuse module's FUSE over io_uring at boot, as modprobe reads it.
modprobe -C "$dest/usr/local/lib/modprobe.d/cmkfs.conf" --showconfig |
	grep -qx "options fuse enable_uring=1" || fail "modprobe.d/cmkfs.conf does not enable_uring"

# Help: bench.py's, named `cmkfs bench`, the same both ways.
expect_exit 0 "$bin/cmkfs" bench --help
contains "$out" "usage: cmkfs bench" "bench --help"
contains "$out" "./cmkfs-bench-<time>" "bench --help: default results"
h=$out
expect_exit 0 "$bin/cmkfs" help bench
[ "$out" = "$h" ] || fail "'cmkfs help bench' differs from 'cmkfs bench --help'"
expect_exit 0 "$bin/cmkfs" help
contains "$out" "  bench " "cmkfs help lists bench"
expect_exit 2 "$bin/cmkfs" bench --no-such-option
contains "$err" "cmkfs bench: error:" "bench usage error"

# Missing pieces: what to do, exit 1.
mv "$lib/bench/bench.py" "$TEST_TMPDIR/bench.py"
expect_exit 1 "$bin/cmkfs" bench --help
contains "$err" "$lib/bench/bench.py" "no bench.py"
contains "$err" "reinstall cmkfs" "no bench.py"
mv "$TEST_TMPDIR/bench.py" "$lib/bench/bench.py"
mv "$lib/cmkfs-crypto-speed" "$TEST_TMPDIR/speed"
expect_exit 1 "$bin/cmkfs" bench --help
contains "$err" "$lib/cmkfs-crypto-speed is missing" "no cmkfs-crypto-speed"
contains "$err" "reinstall cmkfs" "no cmkfs-crypto-speed"
mv "$TEST_TMPDIR/speed" "$lib/cmkfs-crypto-speed"
# No python3 at all: /usr/bin hidden in a mount namespace of our own.
if [ "$(id -u)" -eq 0 ] && unshare -m true 2> /dev/null; then
	expect_exit 1 unshare -m /bin/sh -c \
		'mount -t tmpfs none /usr/bin && PATH=/nonexistent exec "$0" bench --help' \
		"$bin/cmkfs"
	contains "$err" "python3 is not installed" "no python3"
	contains "$err" "apt-get install python3" "no python3"
fi

# A real run, as short as the bench allows, from a directory of our own.
need_root
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -e /dev/loop-control ] || skip "no loop devices"
for tool in fio cryptsetup losetup; do
	command -v $tool > /dev/null || fail "$tool is missing (scripts/deps.sh installs it)"
done
isolate_aws
unset CMKFS_BENCH_CMKFS
export TMPDIR=$TEST_TMPDIR # the bench's mounts and volumes, for the runner
mkdir "$TEST_TMPDIR/cwd"
rc=0
(cd "$TEST_TMPDIR/cwd" && exec "$bin/cmkfs" bench --quick --no-peers \
	--only '^(raw|xts)$|^randread-4k-qd1$' --size 16M) \
	> "$TEST_TMPDIR/stdout" 2> "$TEST_TMPDIR/stderr" || rc=$?
cat "$TEST_TMPDIR/stderr"
[ $rc = 0 ] || fail "cmkfs bench exited $rc"
outs=$(ls -d "$TEST_TMPDIR"/cwd/cmkfs-bench-* 2> /dev/null) ||
	fail "no ./cmkfs-bench-<timestamp> in the current directory"
[ "$(printf '%s\n' "$outs" | wc -l)" = 1 ] || fail "results in more than one directory: $outs"
contains "$(cat "$TEST_TMPDIR/stderr")" "$outs/report.md" "stderr names the results"
[ -s "$outs/report.md" ] || fail "no report.md in $outs"

mount_ok=0
"$bin/cmkfs" help mount 2> /dev/null | grep -q '^usage: cmkfs mount' && mount_ok=1
$PYTHON - "$outs" "$mount_ok" "$bin" "$lib" "$TEST_TMPDIR/stdout" <<'P' || fail "incomplete results"
import json, os, sys

out, mount_ok, bindir, lib, stdout = sys.argv[1:6]
bad = []
res = json.load(open(os.path.join(out, "results.json")))
if res["workloads"] != ["randread-4k-qd1"]:
    bad.append(f"workloads {res['workloads']}")
if os.path.realpath(res["params"]["cmkfs"]) != os.path.realpath(
        os.path.join(bindir, "cmkfs")):
    bad.append(f"measured {res['params']['cmkfs']}, not the installed cmkfs")
want = ["raw", "xts"] if mount_ok == "1" else ["raw"]
ran = [c for c, i in res["configs"].items() if i["ran"]]
if ran != want:
    bad.append(f"ran {ran}, want {want}: {res['configs']}")
for c in ran:
    s = res["summary"].get("randread-4k-qd1", {}).get(c)
    if not s or not s["iops"]["median"] > 0:
        bad.append(f"no numbers for {c}: {s}")
if not any(r["cipher"] == "aes-256-xts" for r in res["crypto"]["cmkfs"]):
    bad.append(f"no crypto ceiling from {lib}/cmkfs-crypto-speed")
report = open(os.path.join(out, "report.md")).read()
if report.strip() != open(stdout).read().strip():
    bad.append("stdout is not the report")
if "| xts | ran" not in report and mount_ok == "1":
    bad.append("report: xts did not run")
for b in bad:
    print("bad:", b)
sys.exit(1 if bad else 0)
P

bench_left_nothing
echo "ok: installed cmkfs bench wrote $outs"
