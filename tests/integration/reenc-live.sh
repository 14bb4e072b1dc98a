#!/bin/bash
# reenc-live: `cmkfs reencrypt` on a mounted volume.
# transports: both
# timeout: 600
. "$(dirname "$0")/../lib.sh"

need_mounts
command -v fio > /dev/null || fail "fio is missing (scripts/deps.sh installs it)"
isolate_aws
XV="$PYTHON $CMKFS_SRC/tests/tools/xts_volume.py"

kmsd_with_host
vol=$TEST_TMPDIR/v.img
plain=$TEST_TMPDIR/plain
log=$TEST_TMPDIR/daemon.log
expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 96M --key-arn "$key"
offset=$("$CMKFS_BUILD/tests/vol-tool" info "$vol" | sed -n 's/^data_offset=//p')
size=$("$CMKFS_BUILD/tests/vol-tool" info "$vol" | sed -n 's/^data_size=//p')

expect_exit 0 as "$host" "$CMKFS" mount --raw "$vol" "$plain" --log "$log"
fio --name=fill --filename="$plain" --rw=write --bs=1M --direct=1 --verify=crc32c \
	--do_verify=0 --output="$TEST_TMPDIR/fio.out" || fail "fill"
expect_exit 0 as "$host" "$CMKFS" reencrypt "$vol" --progress-interval 0.2 --max-rate 0
echo "$out"; echo "$err"
cat "$log"
fio --name=fill --filename="$plain" --rw=read --bs=1M --direct=1 --verify=crc32c \
	--output="$TEST_TMPDIR/fio.out" || { cat "$TEST_TMPDIR/fio.out"; fail "verify"; }
expect_exit 0 "$CMKFS" umount "$plain"
cryptsetup luksDump "$vol"
