#!/bin/bash
# bench-smoke: `bench/bench.py --quick --no-peers --db` produces a complete
# report — every configuration and workload has its numbers, pgbench its
# transactions, CPU and statement latencies, results.json
# and every fio JSON parse, the charts are PNGs — and leaves nothing
# mounted, attached or running.  No timing thresholds: those belong in the
# benchmark's report, not in tests.
#
# The cmkfs configurations (null, xts, xts-devfuse, loop-xts) must run when
# the cmkfs under test has `cmkfs mount` (xts-devfuse: and the kernel has FUSE
# over io_uring); a build without it must skip them, saying so.  The kernel's
# FUSE over io_uring setting is as before the run.
# timeout: 360
. "$(dirname "$0")/../lib.sh"

need_root
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -e /dev/loop-control ] || skip "no loop devices"
for tool in fio gnuplot cryptsetup losetup; do
	command -v $tool > /dev/null || fail "$tool is missing (scripts/deps.sh installs it)"
done
isolate_aws

# The bench's temporary directory (mounts, volumes, daemons) goes below the
# test's, where the runner looks for leftovers.
export TMPDIR=$TEST_TMPDIR
# PostgreSQL (--db) runs as the postgres user, which must reach it.
chmod 711 "$TEST_TMPDIR" "$(dirname "$TEST_TMPDIR")"
out=$TEST_TMPDIR/out
uring_was=$(cat $FUSE_URING_PARAM 2> /dev/null || true)
rc=0
$PYTHON "$CMKFS_SRC/bench/bench.py" --quick --no-peers --db --build "$CMKFS_BUILD" \
	--cmkfs "${CMKFS_BENCH_CMKFS:-$CMKFS}" --out "$out" \
	> "$TEST_TMPDIR/stdout" 2> "$TEST_TMPDIR/stderr" || rc=$?
cat "$TEST_TMPDIR/stderr"
[ $rc = 0 ] || fail "bench.py exited $rc"
[ ! -e $FUSE_URING_PARAM ] || [ "$(cat $FUSE_URING_PARAM)" = "$uring_was" ] ||
	fail "the bench left FUSE over io_uring at $(cat $FUSE_URING_PARAM)"

mount_ok=0
"${CMKFS_BENCH_CMKFS:-$CMKFS}" help mount 2> /dev/null | grep -q '^usage: cmkfs mount' && mount_ok=1

$PYTHON - "$out" "$mount_ok" "$CMKFS_SRC/bench/fio/workloads.fio" "$TEST_TMPDIR/stdout" <<'P' || fail "incomplete report"
import json, os, re, sys

out, mount_ok, jobs, stdout = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4]
bad = []
res = json.load(open(os.path.join(out, "results.json")))
want_wls = [m for m in re.findall(r"^\[([^\]]+)\]", open(jobs).read(), re.M)
            if m not in ("global", "prefill")]
assert res["workloads"] == want_wls, (res["workloads"], want_wls)
assert set(res["configs"]) == {"raw", "null", "xts", "xts-devfuse", "loop-xts"}, res["configs"]

ran = [c for c, i in res["configs"].items() if i["ran"]]
uring = os.path.exists("/sys/module/fuse/parameters/enable_uring")
for c, i in res["configs"].items():
    if c == "xts-devfuse" and mount_ok and not uring:
        if i["ran"] or "no FUSE over io_uring" not in (i["skipped"] or ""):
            bad.append(f"{c}: want skipped for want of FUSE over io_uring: {i}")
    elif c == "raw" or mount_ok:
        if not i["ran"]:
            bad.append(f"{c} did not run: {i['skipped']}")
    elif i["ran"] or "cmkfs mount unavailable" not in (i["skipped"] or "") \
            and "needs the xts configuration" not in (i["skipped"] or ""):
        bad.append(f"{c}: want skipped as 'cmkfs mount unavailable': {i}")

for w in want_wls:
    for c in ran:
        s = res["summary"].get(w, {}).get(c)
        if not s:
            bad.append(f"no summary for {c} {w}")
            continue
        for k in ("mbps", "iops", "p50_us", "p99_us", "cpu_s_per_gib"):
            if not s.get(k) or not s[k]["median"] > 0:
                bad.append(f"{c} {w}: no {k}: {s.get(k)}")

runs = res["runs"]
if len(runs) != len(want_wls) * len(ran) * res["params"]["repeat"]:
    bad.append(f"{len(runs)} runs")
for r in runs:
    j = json.load(open(os.path.join(out, r["fio_json"])))
    if j["jobs"][0]["jobname"] != r["workload"]:
        bad.append(f"{r['fio_json']}: job {j['jobs'][0]['jobname']}")

# the ratios of whatever pairs ran, for every workload
for a, b in (("xts", "null"), ("xts", "raw"), ("loop-xts", "xts"),
             ("xts", "xts-devfuse")):
    if a in ran and b in ran:
        for kind in ("ratios", "ratios_p99"):
            got = res[kind].get(f"{a}/{b}", {})
            if sorted(got) != sorted(want_wls):
                bad.append(f"{kind} {a}/{b} for {sorted(got)}")

crypto = res["crypto"]
if not any(r["cipher"] == "aes-256-xts" and r["sector"] == "4096" for r in crypto["cmkfs"]):
    bad.append(f"no cmkfs crypto ceiling: {crypto}")
if not crypto["openssl_gbps"]:
    bad.append("no openssl speed number")

db = res["db"]
if db.get("skipped") or db.get("error"):
    bad.append(f"pgbench did not run: {db}")
else:
    want = {("plain-loop", m) for m in ("read-write", "select-only")}
    if mount_ok:
        want |= {("cmkfs-ext4", m) for m in ("read-write", "select-only")}
    if {(r["setup"], r["mode"]) for r in db["runs"]} != want:
        bad.append(f"pgbench runs: {db['runs']}")
    for r in db["runs"]:
        if not (r["tps"] or 0) > 0 or not (r["cpu_ms_per_tx"] or 0) > 0:
            bad.append(f"pgbench run without TPS or CPU: {r}")
        # (select-only may read the page cache alone: the daemon idles)
        if r["setup"] == "cmkfs-ext4" and (r["daemon_ms_per_tx"] is None or
                r["mode"] == "read-write" and not r["daemon_ms_per_tx"] > 0):
            bad.append(f"pgbench on cmkfs without the daemon's CPU: {r}")
        if r["mode"] == "read-write" and not {"UPDATE pgbench_accounts", "END"} <= set(r["statements_ms"]):
            bad.append(f"pgbench read-write without statement latencies: {r}")

report = open(os.path.join(out, "report.md")).read()
if report.strip() != open(stdout).read().strip():
    bad.append("stdout is not the report")
for w in want_wls:
    sect = report.split(f"## {w}\n", 1)
    if len(sect) != 2:
        bad.append(f"report: no section {w}")
        continue
    sect = sect[1].split("\n## ", 1)[0]
    for c in ran:
        row = [l for l in sect.splitlines() if l.startswith(f"| {c} |")]
        if not row or "—" in row[0]:
            bad.append(f"report: {w} {c}: {row}")
for k in ("machine:", "backing store:", "page cache:", "Crypto ceiling",
          "## PostgreSQL (pgbench)", "| END |"):
    if k not in report:
        bad.append(f"report: no '{k}'")

for png in ("throughput.png", "latency-p50.png", "latency-p99.png", "cpu.png"):
    p = os.path.join(out, png)
    if not os.path.exists(p) or open(p, "rb").read(8) != b"\x89PNG\r\n\x1a\n":
        bad.append(f"{png} missing or not a PNG")
    elif f"({png})" not in report:
        bad.append(f"report does not show {png}")

for b in bad:
    print("bad:", b)
sys.exit(1 if bad else 0)
P

bench_left_nothing
echo "ok: report complete in $out"
