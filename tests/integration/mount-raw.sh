#!/bin/bash
# mount-raw: `cmkfs mount --raw` against cmkfs-kmsd — the plaintext file
# verified by fio (aligned, unaligned) and by a model-based random I/O test,
# before and after umount/mount; concurrent unaligned writers sharing
# sectors lose nothing; the volume holds no plaintext, and its data segment
# is AES-XTS-plain64 exactly as dm-crypt writes it (checked with an
# independent implementation), and reads back the same through either AES
# (cmkfs's VAES code, OpenSSL's); size changes refused; status shows the
# mount.
# transports: both
# timeout: 240
. "$(dirname "$0")/../lib.sh"

need_mounts
command -v fio > /dev/null || fail "fio is missing (scripts/deps.sh installs it)"
isolate_aws

kmsd_with_host
vol=$TEST_TMPDIR/v.img
plain=$TEST_TMPDIR/plain
expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 64M --key-arn "$key"
uuid=$(printf '%s\n' "$out" | sed -n 's/^  uuid *//p')

mount_raw() {
	expect_exit 0 as "$host" "$CMKFS" mount --raw "$vol" "$plain" --log "$TEST_TMPDIR/daemon.log"
	contains "$out" "mounted $vol on $plain" "mount --raw"
	[ "$(stat -c %s "$plain")" = $((64 << 20)) ] || fail "plaintext size $(stat -c %s "$plain")"
}
umount_raw() {
	expect_exit 0 "$CMKFS" umount "$plain"
	grep -q " $plain " /proc/mounts && fail "still mounted after umount"
	[ ! -e "$CMKFS_RUNTIME_DIR/$uuid" ] || fail "runtime dir left behind"
	[ ! -e "$plain" ] || fail "the created plaintext path was not removed"
}
fio_job() {
	fio --output="$TEST_TMPDIR/fio.out" --filename="$plain" --verify=crc32c \
		--verify_fatal=1 "$@" || { cat "$TEST_TMPDIR/fio.out"; fail "fio $*"; }
}

mount_raw
[ -S "$CMKFS_RUNTIME_DIR/$uuid/control" ] || fail "no control socket"
# The AES is cmkfs's own VAES code where the CPU has it, else OpenSSL's.
aes=OpenSSL
flags=" $(grep -m1 '^flags' /proc/cpuinfo) "
[[ $flags == *" vaes "* && $flags == *" avx512f "* && $flags == *" avx512bw "* &&
	$flags == *" avx512vl "* ]] && aes=VAES/AVX-512
grep -q "AES by $aes)" "$TEST_TMPDIR/daemon.log" || fail "the daemon does not say it uses $aes"
grep -q "^pid=" "$CMKFS_RUNTIME_DIR/$uuid/state" || fail "no state"

# fio: aligned direct I/O through io_uring, and unaligned buffered I/O.
fio_job --name=aligned --rw=randwrite --bs=4k --size=16M --direct=1 \
	--ioengine=io_uring --iodepth=16
fio_job --name=big --rw=write --bs=1M --size=8M --offset=16M --direct=1 \
	--ioengine=io_uring --iodepth=4
fio_job --name=unaligned --rw=randwrite --bsrange=1000-9000 --size=8M \
	--offset=24M --ioengine=psync

# The model: random aligned and unaligned I/O against an in-memory copy,
# in the second half (fio's data stays in the first, for its verify later).
model=$TEST_TMPDIR/model
M="$PYTHON $CMKFS_SRC/tests/tools/io_model.py"
$M concurrent "$plain" 2 $((32 << 20)) || fail "concurrent unaligned writers"
$M run "$plain" "$model" 1 1500 $((32 << 20)) $((64 << 20)) ||
	fail "model-based test (seed 1)"

# A distinctive pattern at a known sector, for the ciphertext checks.
$PYTHON - "$plain" "$model" <<'P'
import os, sys
pattern = b"CMKFS-PLAINTEXT-MARKER-" * 1024
data = pattern[:5 * 4096]
for path in sys.argv[1:]:
    fd = os.open(path, os.O_WRONLY)
    os.pwrite(fd, data, 9000 * 4096)
    os.fsync(fd)
    os.close(fd)
P

# Size changes are refused; status shows the mount.
truncate -s 1M "$plain" 2> /dev/null && fail "truncate succeeded"
[ "$(stat -c %s "$plain")" = $((64 << 20)) ] || fail "size changed"
expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "mounted      $plain (plaintext file)" "status mount"
contains "$out" "daemon       pid" "status daemon"
contains "$out" "AES by       $aes" "status AES"
expect_exit 0 "$CMKFS" status --json "$vol"
$PYTHON - "$out" "$plain" "$aes" <<'P' || fail "status --json mount"
import json, sys
m = json.loads(sys.argv[1])["mount"]
assert m["mountpoint"] == sys.argv[2] and m["raw"] and m["alive"], m
assert m["aes"] == sys.argv[3], m
assert m["bytes_written"] > 32 << 20 and m["bytes_read"] > 0, m
P
# A second mount of the same volume is refused.
expect_exit 1 as "$host" "$CMKFS" mount --raw "$vol" "$TEST_TMPDIR/plain2"
contains "$err" "is already mounted on $plain" "double mount"

umount_raw

# The volume holds no plaintext...
grep -q "CMKFS-PLAINTEXT-MARKER" "$vol" && fail "plaintext found in the volume"
# ...and its data segment decrypts, under the volume key, with an
# independent AES-XTS (python3-cryptography), IV = 8 * sector, little-endian.
unwrap_token "$host" "$vol" 0 "$TEST_TMPDIR/secret" || fail "the token does not unwrap under the context of its header"
vk=$("$CMKFS_BUILD/tests/vol-tool" unlock "$vol" 0 "$TEST_TMPDIR/secret")
$PYTHON - "$vol" "$model" "$vk" <<'P' || fail "ciphertext is not AES-XTS-plain64 of the plaintext"
import sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
vol, model, key = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
data_offset = 16 << 20
with open(vol, "rb") as v, open(model, "rb") as m:
    for sector in [0, 1, 4000, 8192, 8193, 9000, 9004, 16383]:
        v.seek(data_offset + sector * 4096)
        ct = v.read(4096)
        m.seek(sector * 4096)
        want = m.read(4096)
        tweak = (sector * 8).to_bytes(8, "little") + bytes(8)
        d = Cipher(algorithms.AES(key), modes.XTS(tweak)).decryptor()
        got = d.update(ct) + d.finalize()
        if got != want:
            sys.exit("sector %d: decrypts to something else" % sector)
print("8 sectors decrypt to what was written")
P

# Remount, with OpenSSL's AES-XTS doing the work: everything written is
# still there (the remount after this one reads what OpenSSL wrote).
CMKFS_XTS=openssl mount_raw
grep -q "AES by OpenSSL)" "$TEST_TMPDIR/daemon.log" ||
	fail "CMKFS_XTS=openssl: the daemon does not say it uses OpenSSL"
$M check "$plain" "$model" || fail "data changed across umount/mount"
fio --output="$TEST_TMPDIR/fio.out" --name=aligned --filename="$plain" \
	--rw=randwrite --bs=4k --size=16M --direct=1 --ioengine=io_uring \
	--iodepth=16 --verify=crc32c --verify_fatal=1 --verify_only ||
	{ cat "$TEST_TMPDIR/fio.out"; fail "fio verify after remount"; }
$M run "$plain" "$model" 2 1000 $((32 << 20)) $((64 << 20)) ||
	fail "model-based test (seed 2)"
# Discards: refused by default; with --allow-discards a punched range
# reads back as zeros (served as encrypted zero writes), and only it.
fallocate -p -o $((40 << 20)) -l 65536 "$plain" 2> /dev/null &&
	fail "a punch was accepted without --allow-discards"
umount_raw
expect_exit 0 as "$host" "$CMKFS" mount --raw --allow-discards "$vol" "$plain"
fallocate -p -o $(((40 << 20) + 100)) -l 70000 "$plain" || fail "punch refused with --allow-discards"
$PYTHON - "$plain" "$model" <<'P' || fail "punched range"
import sys
lo, hi = (40 << 20) + 100, (40 << 20) + 70100
with open(sys.argv[1], "rb") as f, open(sys.argv[2], "rb") as m:
    f.seek(lo - 5000); got = f.read(hi - lo + 10000)
    m.seek(lo - 5000); want = bytearray(m.read(hi - lo + 10000))
want[5000:5000 + hi - lo] = bytes(hi - lo)
assert got == bytes(want), "punched range or its neighbours wrong"
P
# An existing regular file can be the mountpoint too: it is hidden, kept.
umount_raw
echo "keep me" > "$plain"
mount_raw
expect_exit 0 "$CMKFS" umount "$vol"
[ "$(cat "$plain")" = "keep me" ] || fail "the overmounted file changed"

# SIGTERM: the daemon flushes, wipes, unmounts its file and is gone.
mount_raw
pid=$(sed -n 's/.*daemon pid \([0-9]*\).*/\1/p' <<< "$out")
kill -TERM "$pid"
for _ in $(seq 50); do
	[ -e "$CMKFS_RUNTIME_DIR/$uuid" ] || break
	sleep 0.1
done
[ ! -e "$CMKFS_RUNTIME_DIR/$uuid" ] || fail "runtime dir left after SIGTERM"
for _ in $(seq 100); do
	kill -0 "$pid" 2> /dev/null || break
	sleep 0.1
done
kill -0 "$pid" 2> /dev/null && fail "the daemon is still running 10 s after SIGTERM"
grep -q " $plain " /proc/mounts && fail "still mounted after SIGTERM"
grep -q "flushed, keys wiped, exiting" "$TEST_TMPDIR/daemon.log" || fail "no clean exit logged"
[ "$(cat "$plain")" = "keep me" ] || fail "the overmounted file changed"
kmsd_stop
echo "ok"
