#!/bin/bash
# postgres: a database on a mounted cmkfs volume, end to end — PostgreSQL
# (Debian's, as the postgres user, on loopback) with data checksums on ext4
# over cmkfs; pgbench; umount and mount again; pg_amcheck and the pgbench
# balance invariant hold.  The volume is reencrypted online (every byte
# under a new volume key) while pgbench runs, and checked again.  Then the
# daemon is killed (-9) under a pgbench run: `cmkfs umount` cleans up, the volume mounts again, PostgreSQL
# recovers from its WAL, and amcheck and the invariant still hold.
# transports: both
# timeout: 300
. "$(dirname "$0")/../lib.sh"

need_mounts loop
isolate_aws
. "$CMKFS_SRC/tests/pg.sh"

kmsd_with_host
vol=$TEST_TMPDIR/v.img
mnt=$TEST_TMPDIR/mnt
mkdir -p "$mnt"
pg_setup "$mnt"

expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 384M --key-arn "$key" --mkfs ext4
expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt"
pg_init 4
pgbench_run "$TEST_TMPDIR/pgbench.log" -c 4 -j 2 -T 6 ||
	fail "pgbench: $(tail "$TEST_TMPDIR/pgbench.log"; tail -n 20 "$sock/pg.log")"
grep '^tps' "$TEST_TMPDIR/pgbench.log"
check_db "after pgbench"
pg_stop

# ---- a clean umount and mount: the database is as it was ----
expect_exit 0 as "$host" "$CMKFS" umount "$mnt"
expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt"
pg_start
check_db "after umount and mount"

# ---- every byte under a new volume key while pgbench runs ----
pgbench_run "$TEST_TMPDIR/pgbench-reenc.log" -c 4 -j 2 -T 12 &
bench=$!
sleep 1
expect_exit 0 as "$host" "$CMKFS" reencrypt "$vol" --max-rate 48M --progress-interval 2
contains "$out" "reencrypted $vol online: 384.0 MiB under a new volume key" "online reencryption"
kill -0 "$bench" 2> /dev/null || fail "pgbench ended before the reencryption did"
wait "$bench" || fail "pgbench during the reencryption: $(tail "$TEST_TMPDIR/pgbench-reenc.log"; tail -n 20 "$sock/pg.log")"
echo "pgbench during the online reencryption: $(grep '^tps' "$TEST_TMPDIR/pgbench-reenc.log")"
check_db "after the online reencryption"
pg_stop
expect_exit 0 as "$host" "$CMKFS" umount "$mnt"
expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt"
pg_start
check_db "after the online reencryption, umount and mount"

# ---- the daemon killed under load ----
pgbench_run "$TEST_TMPDIR/pgbench-crash.log" -c 4 -j 2 -T 30 &
bench=$!
sleep 4
postmaster=$(head -n1 "$mnt/pgdata/postmaster.pid")
uuid=$(cryptsetup luksUUID "$vol")
daemon=$(sed -n 's/^pid=//p' "$CMKFS_RUNTIME_DIR/$uuid/state")
[ -n "$daemon" ] || fail "no daemon pid in the runtime state"
kill -9 "$daemon"
wait "$bench" 2> /dev/null || true
# PostgreSQL cannot go on without its disk: stop it the hard way too (a
# crash of the whole host would have done the same)
pkill -9 -P "$postmaster" 2> /dev/null || true
kill -9 "$postmaster" 2> /dev/null || true
for i in $(seq 50); do
	kill -0 "$postmaster" 2> /dev/null || break
	sleep 0.1
done
expect_exit 0 "$CMKFS" umount "$mnt"
contains "$out" "its daemon had died; cleaned up" "umount after the daemon died"
mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts; }
mounted "$mnt" && fail "still mounted after umount"
expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt"
pg_start
grep -q "database system was interrupted\|redo starts\|recovery" "$sock/pg.log" ||
	fail "PostgreSQL did not recover from its WAL: $(tail -n 20 "$sock/pg.log")"
check_db "after the daemon was killed"
pg_stop
expect_exit 0 as "$host" "$CMKFS" umount "$mnt"
kmsd_stop
