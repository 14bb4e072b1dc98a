#!/bin/bash
# mount-errors: a backend that fails writes (a volume on a full tmpfs) —
# each failed write is an error to its writer (EIO), never a silent
# success; the daemon keeps serving, counts the errors, and unmounts clean.
# transports: both
# timeout: 120
. "$(dirname "$0")/../lib.sh"

need_mounts
isolate_aws

kmsd_with_host
expect_exit 0 as "$host" "$CMKFS" create "$TEST_TMPDIR/v.img" --size 64M --key-arn "$key"

# A sparse copy on a 20 MiB tmpfs: the 16 MiB header fits, and about 4 MiB
# of data; writes past that fail with ENOSPC on the backend.
small=$TEST_TMPDIR/small
mkdir -p "$small"
mount -t tmpfs -o size=20m tmpfs "$small"
cp --sparse=always "$TEST_TMPDIR/v.img" "$small/v.img"
plain=$TEST_TMPDIR/plain
expect_exit 0 as "$host" "$CMKFS" mount --raw "$small/v.img" "$plain" --log "$TEST_TMPDIR/daemon.log"

$PYTHON - "$plain" <<'P' || fail "a failed backend write was not an error"
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
buf = os.urandom(1 << 20)
for i in range(64):
    try:
        os.pwrite(fd, buf, i << 20)
    except OSError as e:
        assert e.errno == errno.EIO, "write %d: %s, want EIO" % (i, e)
        assert i >= 1, "the first MiB should fit"
        break
else:
    sys.exit("64 MiB acknowledged on a backend with room for 4")
# what was acknowledged reads back; the daemon still serves
assert os.pread(fd, 1 << 20, 0) == buf, "acknowledged data lost"
os.fsync(fd)
os.close(fd)
print("write %d failed with EIO; earlier writes intact" % i)
P
expect_exit 0 "$CMKFS" status --json "$small/v.img"
$PYTHON -c 'import json,sys; m = json.loads(sys.argv[1])["mount"]; assert m["alive"] and m["io_errors"] > 0, m' "$out" ||
	fail "errors not counted in status"
grep -q "No space left on device" "$TEST_TMPDIR/daemon.log" || fail "the backend error is not logged"
expect_exit 0 "$CMKFS" umount "$plain"
umount "$small"
kmsd_stop
echo ok
