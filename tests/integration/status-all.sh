#!/bin/bash
# status-all: `cmkfs status --all [--json]` lists every volume mounted on
# the host — none, two (a filesystem and a raw file, each with its mount
# point, daemon and transport), one after an unmount, one whose daemon died
# (said so) — and refuses a VOLUME or --check-key beside --all.
# timeout: 120
. "$(dirname "$0")/../lib.sh"

need_mounts loop
isolate_aws
kmsd_with_host

# all_json: the volumes `status --all --json` lists, "volume mountpoint
# alive transport" one per line, sorted.
all_json() {
	expect_exit 0 "$CMKFS" status --all --json
	$PYTHON -c 'import json, sys
for v in json.loads(sys.argv[1]):
    m = v["mount"]
    assert v["uuid"] and m["pid"] > 0, v
    print(v["volume"], m["mountpoint"], m["alive"], m.get("fuse_transport"))' "$out" | sort ||
		fail "status --all --json: $out"
}

expect_exit 0 "$CMKFS" status --all
[ "$out" = "no cmkfs volume is mounted" ] || fail "status --all, nothing mounted: $out"
[ "$(all_json)" = "" ] || fail "status --all --json, nothing mounted"

a=$TEST_TMPDIR/a.img b=$TEST_TMPDIR/b.img
mkdir "$TEST_TMPDIR/mnt"
for v in "$a" "$b"; do
	expect_exit 0 as "$host" "$CMKFS" create "$v" --size 64M --key-arn "$key"
done
expect_exit 0 as "$host" "$CMKFS" mount "$a" "$TEST_TMPDIR/mnt" --fuse-io-uring off
expect_exit 0 as "$host" "$CMKFS" mount --raw "$b" "$TEST_TMPDIR/plain" --fuse-io-uring off

got=$(all_json)
want=$(printf '%s\n' "$a $TEST_TMPDIR/mnt True dev_fuse" "$b $TEST_TMPDIR/plain True dev_fuse" | sort)
[ "$got" = "$want" ] || fail "status --all --json: got '$got', want '$want'"
expect_exit 0 "$CMKFS" status --all
for v in "$a" "$b"; do
	contains "$out" "$v: mounted cmkfs volume" "status --all"
done
contains "$out" "  mounted      $TEST_TMPDIR/mnt (ext4 on /dev/loop" "status --all: the filesystem"
contains "$out" "  mounted      $TEST_TMPDIR/plain (plaintext file)" "status --all: the raw file"
[ "$(grep -c '^  transport    /dev/fuse' <<< "$out")" = 2 ] || fail "status --all: transports: $out"

expect_exit 0 "$CMKFS" umount "$TEST_TMPDIR/mnt"
[ "$(all_json)" = "$b $TEST_TMPDIR/plain True dev_fuse" ] || fail "status --all after an unmount: $(all_json)"

# A daemon killed: still listed, as gone.
pid=$(sed -n 's/.*pid \([0-9]*\),.*/\1/p' <<< "$("$CMKFS" status --all)" | head -n1)
[ -n "$pid" ] || fail "no daemon pid in status --all"
kill -9 "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
expect_exit 0 "$CMKFS" status --all
contains "$out" "daemon       pid $pid is GONE" "status --all with a dead daemon"
[ "$(all_json | awk '{ print $3 }')" = False ] || fail "status --all --json: a dead daemon alive"
expect_exit 0 "$CMKFS" umount "$TEST_TMPDIR/plain"
expect_exit 0 "$CMKFS" status --all
[ "$out" = "no cmkfs volume is mounted" ] || fail "status --all at the end: $out"

expect_exit 2 "$CMKFS" status --all "$a"
expect_exit 2 "$CMKFS" status --all --check-key
kmsd_stop
echo "ok: status --all lists the host's mounts"
