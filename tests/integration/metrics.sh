#!/bin/bash
# metrics: a mount's Prometheus metrics (--metrics-listen, --metrics-file)
# and cmkfs-kmsd's, read by Debian's prometheus_client parser
# (tests/tools/metrics_check.py: names, HELP and TYPE, the volume's UUID on
# every sample, histograms cumulative).  During a fio run the counters and
# the backend latency histograms move; the file (given relative) is
# rewritten atomically beside nothing else and removed at unmount; a
# revocation shows up as a refused check and a shred, and in cmkfs-kmsd's
# counts by action and outcome.  A mountpoint with quotes, a backslash and
# UTF-8 in its name comes back whole from the parser.  The endpoint answers
# only GET and HEAD of /metrics, drops slow and oversized requests, keeps
# serving whatever clients send or fail to read, and never holds up an
# unmount or a stop.  A listen address that cannot be used fails the mount
# with the reason.
# transports: both
# timeout: 300
. "$(dirname "$0")/../lib.sh"

need_mounts loop
isolate_aws
command -v fio > /dev/null || fail "fio is missing (scripts/deps.sh installs it)"
CHECK="$PYTHON $CMKFS_SRC/tests/tools/metrics_check.py"
snap() { $CHECK snapshot "$@" || fail "metrics of $1 do not check out"; }
val() { $CHECK value "$@" || fail "no $2 in $1"; }

state=$TEST_TMPDIR/kms
root=$state.env
host=$TEST_TMPDIR/host.env
kmsd_init "$state"
kmsd_principal "$state" arn:aws:iam::111111111111:role/db-host > "$host"
kmsd_start "$state" --metrics-listen 0 --metrics-file "$TEST_TMPDIR/kmsd.prom" --metrics-interval 1
kmsd_url=$(await_output "$state.out" 's/.*metrics on \(http:[^ ]*\).*/\1/p' "$KMSD_PID") ||
	fail "cmkfs-kmsd did not say where its metrics are: $(cat "$state.out")"
key=$(as "$root" "$CMKFS" kms create-key --description volumes)
vol=$TEST_TMPDIR/v.img
mnt="$TEST_TMPDIR/mnt \"q\\ é"
prom=$TEST_TMPDIR/textfile
log=$TEST_TMPDIR/daemon.log
mkdir "$mnt" "$prom"
expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 128M --key-arn "$key"
uuid=$(cryptsetup luksUUID "$vol")

# ---- addresses that cannot be used fail the mount, with the reason ----
kport=${KMSD_URL##*:}
expect_exit 2 "$CMKFS" mount "$vol" "$mnt" --metrics-interval 0
contains "$err" "--metrics-interval takes seconds" "--metrics-interval 0"
for bad in "99999" "10.0.0.1.2:80" "[::1:80" "host.example:80"; do
	expect_exit 1 as "$host" "$CMKFS" mount "$vol" "$mnt" --metrics-listen "$bad"
	contains "$err" "--metrics-listen $bad: expected PORT" "--metrics-listen $bad"
done
expect_exit 1 as "$host" "$CMKFS" mount "$vol" "$mnt" --metrics-listen "127.0.0.1:$kport"
contains "$err" "Address already in use" "--metrics-listen on a port in use"
expect_exit 1 as "$host" "$CMKFS" mount "$vol" "$mnt" --metrics-file "$TEST_TMPDIR/none/x.prom"
contains "$err" "cannot create $TEST_TMPDIR/none/x.prom.tmp: No such file or directory" "--metrics-file in no directory"
mountpoint -q "$mnt" && fail "a failed mount left $mnt mounted"
[ -z "$(ls "$CMKFS_RUNTIME_DIR" 2> /dev/null)" ] || fail "a failed mount left its state"

# ---- the mount's metrics, before and during fio ----
# Relative: the daemon leaves its directory once detached.
expect_exit 0 as "$host" sh -c 'cd "$0" && exec "$@"' "$prom" "$CMKFS" mount "$vol" "$mnt" \
	--log "$log" --revocation-check 2 --metrics-listen 0 --metrics-file cmkfs.prom \
	--metrics-interval 1
expect_exit 0 "$CMKFS" status "$vol"
url=$(echo "$out" | sed -n 's/^  metrics *//p')
case $url in
http://127.0.0.1:*/metrics) ;;
*) fail "cmkfs status names no metrics endpoint on 127.0.0.1: $out" ;;
esac
expect_exit 0 "$CMKFS" status --json "$vol"
[ "$(echo "$out" | $PYTHON -c 'import json, sys; print(json.load(sys.stdin)["mount"]["metrics"])')" = "$url" ] ||
	fail "status --json does not name the endpoint: $out"
grep -q "metrics on $url" "$log" || fail "the log does not say where the metrics are"

s=$TEST_TMPDIR/s
snap "$url" "$s.0" --label "uuid=$uuid"
[ "$(val "$s.0" cmkfs_info uuid="$uuid" volume="$vol" mountpoint="$mnt")" = 1 ] ||
	fail "cmkfs_info does not describe the mount (its mountpoint: $mnt)"
if [ -n "${CMKFS_TEST_TRANSPORT:-}" ]; then
	[ "$(val "$s.0" cmkfs_info transport="$CMKFS_TEST_TRANSPORT")" = 1 ] ||
		fail "cmkfs_info names another transport than $CMKFS_TEST_TRANSPORT"
fi
fio --name=metrics --filename="$mnt/data" --size=32M --rw=randrw --bs=4k \
	--direct=1 --ioengine=io_uring --iodepth=8 --time_based --runtime=4 \
	--fsync=16 > "$TEST_TMPDIR/fio.log" 2>&1 &
fio_pid=$!
sleep 2
snap "$url" "$s.1" --label "uuid=$uuid"
wait $fio_pid || fail "fio failed: $(cat "$TEST_TMPDIR/fio.log")"
snap "$url" "$s.2" --label "uuid=$uuid"
more() { # NAME [K=V]...: grew from snapshot 0 to 1 and from 1 to 2
	local a b c
	a=$(val "$s.0" "$@") b=$(val "$s.1" "$@") c=$(val "$s.2" "$@")
	$PYTHON -c "import sys; a, b, c = map(float, sys.argv[1:]); sys.exit(not a < b <= c)" "$a" "$b" "$c" ||
		fail "$* did not grow during fio: $a, $b, $c"
}
more cmkfs_reads_total
more cmkfs_writes_total
more cmkfs_read_bytes_total
more cmkfs_written_bytes_total
more cmkfs_backend_io_duration_seconds_count op=read
more cmkfs_backend_io_duration_seconds_count op=write
more cmkfs_backend_io_duration_seconds_sum op=read
[ "$(val "$s.2" cmkfs_backend_io_duration_seconds_count op=fsync)" -gt 0 ] ||
	fail "fio's fsyncs reached no backend fsync"
val "$s.1" cmkfs_fuse_requests_in_flight > /dev/null
[ "$(val "$s.2" cmkfs_io_errors_total)" = 0 ] || fail "I/O errors counted without any"
[ "$(val "$s.2" cmkfs_shredded)" = 0 ] || fail "shredded before any revocation"
[ "$(val "$s.2" cmkfs_revocation_checks_total result=ok)" -ge 1 ] ||
	fail "no successful revocation check counted"
[ "$(val "$s.2" cmkfs_revocation_check_interval_seconds)" = 2 ] || fail "the check interval"
[ "$(val "$s.2" cmkfs_reencrypt_state state=none)" = 1 ] || fail "a reencryption state without one"

# The file: rewritten every second, nothing else left beside it.
sleep 1.5
snap "$prom/cmkfs.prom" "$s.f" --label "uuid=$uuid"
r2=$(val "$s.2" cmkfs_reads_total) rf=$(val "$s.f" cmkfs_reads_total)
[ "$rf" -ge "$r2" ] || fail "the metrics file is stale: $rf reads, the endpoint said $r2"
if ls -A "$prom" | grep -vx 'cmkfs\.prom\(\.tmp\)\?'; then
	fail "beside the metrics file (above)"
fi
[ "$(stat -c %a "$prom/cmkfs.prom")" = 644 ] || fail "the metrics file is not 0644"

# ---- what a client sends cannot hurt the endpoint ----
hostport=${url#http://}
hostport=${hostport%/metrics}
$PYTHON - "${hostport%:*}" "${hostport##*:}" << 'EOF' || fail "the endpoint mishandled a hostile client"
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])

def ask(data):
    s = socket.create_connection((host, port), timeout=10)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # answered (and closed) before all of it was sent
    got = b""
    while True:
        try:
            c = s.recv(65536)
        except ConnectionResetError:
            break
        if not c:
            break
        got += c
    s.close()
    return got

def status(data):
    got = ask(data)
    return int(got.split(b" ", 2)[1]) if got.startswith(b"HTTP/1.1 ") else None, got

cases = [
    (b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 405),
    (b"PUT /metrics HTTP/1.1\r\n\r\n", 405),
    (b"GET /nothing HTTP/1.1\r\n\r\n", 404),
    (b"GET /metricsx HTTP/1.1\r\n\r\n", 404),
    (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
    (b"garbage\r\n\r\n", 400),
    (b"GET /metrics\r\n\r\n", 400),
    (b"GET  /metrics HTTP/1.1\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\x00\xff\r\n\r\n", 400),
    (b"A" * 9000, 431),
    (b"GET /metrics?x=1 HTTP/1.0\n\n", 200),
]
for data, want in cases:
    got, raw = status(data)
    if got != want:
        sys.exit("%r: answered %r, not %d" % (data[:40], raw[:80], want))
    if want == 405 and b"\r\nAllow: GET, HEAD\r\n" not in raw:
        sys.exit("405 without Allow")
got, raw = status(b"HEAD /metrics HTTP/1.1\r\n\r\n")
head, _, body = raw.partition(b"\r\n\r\n")
if got != 200 or body or b"Content-Length: 0" in head:
    sys.exit("HEAD: %r" % raw[:200])
# A silent client and a slow one are dropped unanswered within the
# deadline (2 s), and a scrape behind them is answered.
silent = socket.create_connection((host, port), timeout=10)
t0 = time.time()
got, raw = status(b"GET /metrics HTTP/1.1\r\n\r\n")
if got != 200 or time.time() - t0 > 6:
    sys.exit("a scrape behind a silent client: %r after %.1f s" % (got, time.time() - t0))
try:
    answered = silent.recv(100)
except ConnectionResetError:
    answered = b""  # dropped with a reset: what is wanted
if answered:
    sys.exit("the silent client was answered: %r" % answered)
slow = socket.create_connection((host, port), timeout=10)
t0 = time.time()
try:
    for b in b"GET /metrics HTTP/1.1\r\nX-Slow: yes\r\n\r\n":
        slow.sendall(bytes([b]))
        time.sleep(0.5)
except OSError:
    pass  # dropped: what is wanted
try:
    answer = slow.recv(100)
except OSError:
    answer = b""
if answer:
    sys.exit("a client sending a byte every 0.5 s was answered: %r" % answer)
if time.time() - t0 > 8:
    sys.exit("a slow client held the endpoint %.1f s" % (time.time() - t0))
EOF
snap "$url" "$s.3" --label "uuid=$uuid"

# Clients that hold connections (tests/tools/http_hold.py), coming back
# whenever they are dropped: silent ones, ones that ask and never read, and
# ones that go on sending after their request, on both endpoints.  A scrape
# still gets through, and (below) the unmount and the stop do not wait for
# them.
khostport=${kmsd_url#http://}
$PYTHON "$CMKFS_SRC/tests/tools/http_hold.py" "$hostport" "${khostport%/metrics}" \
	> "$TEST_TMPDIR/hold.out" 2>&1 &
hold_pid=$!
await_output "$TEST_TMPDIR/hold.out" 's/^\(held\)$/\1/p' "$hold_pid" > /dev/null ||
	fail "the hostile clients could not connect: $(cat "$TEST_TMPDIR/hold.out")"
t0=$(date +%s%N)
snap "$url" "$s.h" --label "uuid=$uuid"
snap "$kmsd_url" "$s.hk" --prefix cmkfs_kmsd_
t=$((($(date +%s%N) - t0) / 1000000))
[ $t -lt 8000 ] || fail "scrapes behind hostile clients took $t ms"
echo "scrapes behind 38 hostile clients each: $t ms for both"

# ---- a revocation: refused checks and a shred, in both services ----
as "$root" "$CMKFS" kms disable-key "$key" 2> /dev/null
for _ in $(seq 50); do
	snap "$url" "$s.r" --label "uuid=$uuid"
	[ "$(val "$s.r" cmkfs_shredded)" = 1 ] && break
	sleep 0.2
done
[ "$(val "$s.r" cmkfs_shredded)" = 1 ] || fail "no shred in the metrics 10 s after the key was disabled"
[ "$(val "$s.r" cmkfs_revocation_checks_total result=refused)" -ge 1 ] ||
	fail "the refused check is not counted"
sleep 1.5
snap "$prom/cmkfs.prom" "$s.rf" --label "uuid=$uuid"
[ "$(val "$s.rf" cmkfs_shredded)" = 1 ] || fail "the metrics file does not show the shred"
snap "$kmsd_url" "$s.k" --prefix cmkfs_kmsd_
[ "$(val "$s.k" cmkfs_kmsd_requests_total action=Decrypt outcome=OK)" -ge 2 ] ||
	fail "cmkfs-kmsd counted no successful Decrypt"
[ "$(val "$s.k" cmkfs_kmsd_requests_total action=Decrypt outcome=DisabledException)" -ge 1 ] ||
	fail "cmkfs-kmsd counted no refused Decrypt"
[ "$(val "$s.k" cmkfs_kmsd_request_duration_seconds_count action=Decrypt)" -ge 3 ] ||
	fail "cmkfs-kmsd timed no Decrypt"
snap "$TEST_TMPDIR/kmsd.prom" "$s.kf" --prefix cmkfs_kmsd_

# ---- the file and the endpoint go with the mount ----
t0=$(date +%s%N)
expect_exit 0 "$CMKFS" umount "$mnt"
t=$((($(date +%s%N) - t0) / 1000000))
[ $t -lt 8000 ] || fail "the unmount took $t ms with hostile clients on the endpoint"
[ ! -e "$prom/cmkfs.prom" ] || fail "the metrics file outlived the mount"
[ -z "$(ls -A "$prom")" ] || fail "left beside the metrics file: $(ls -A "$prom")"
if curl -fsS -o /dev/null "$url" 2> /dev/null; then fail "the endpoint outlived the mount"; fi
# A daemon killed outright leaves its file; the cleanup of the dead mount
# removes it.
as "$root" "$CMKFS" kms enable-key "$key" 2> /dev/null
expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt" --metrics-file "$prom/cmkfs.prom"
[ -f "$prom/cmkfs.prom" ] || fail "no metrics file"
kill -9 "$(sed -n 's/^pid=//p' "$CMKFS_RUNTIME_DIR/$uuid/state")"
sleep 0.5
expect_exit 0 "$CMKFS" umount "$mnt"
[ ! -e "$prom/cmkfs.prom" ] || fail "the metrics file of a dead mount outlived its cleanup"

t0=$(date +%s%N)
kmsd_stop
t=$((($(date +%s%N) - t0) / 1000000))
[ $t -lt 8000 ] || fail "cmkfs-kmsd took $t ms to stop with hostile clients on its endpoint"
kill $hold_pid
[ ! -e "$TEST_TMPDIR/kmsd.prom" ] || fail "cmkfs-kmsd's metrics file outlived it"
