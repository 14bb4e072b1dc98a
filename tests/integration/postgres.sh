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
PG=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -n1)
[ -x "$PG/initdb" ] || fail "PostgreSQL is missing (scripts/deps.sh installs it)"
id postgres > /dev/null 2>&1 || fail "no postgres user (the postgresql package makes it)"

kmsd_with_host
vol=$TEST_TMPDIR/v.img
mnt=$TEST_TMPDIR/mnt
sock=$TEST_TMPDIR/pgsock # the server's socket and log
mkdir -p "$mnt" "$sock"
# the postgres user must reach the data directory and socket below here
chmod 755 "$TEST_TMPDIR" "$(dirname "$TEST_TMPDIR")"
chown postgres "$sock"
port=$($PYTHON -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pg() { runuser -u postgres -- "$@"; }
sql() { pg "$PG/psql" -X -q -t -A -h "$sock" -p "$port" -d postgres -c "$1"; }
pg_start() {
	pg "$PG/pg_ctl" -D "$mnt/pgdata" -l "$sock/pg.log" -w -t 60 \
		-o "-k $sock -p $port -c listen_addresses=127.0.0.1" start > /dev/null ||
		fail "PostgreSQL did not start: $(tail -n 20 "$sock/pg.log")"
}
pg_stop() { pg "$PG/pg_ctl" -D "$mnt/pgdata" -w -m fast stop > /dev/null; }
# every relation and index page checked, then pgbench's invariant: what the
# history says was moved is what the accounts, tellers and branches hold
check_db() {
	pg "$PG/pg_amcheck" -h "$sock" -p "$port" --heapallindexed -d postgres > "$TEST_TMPDIR/amcheck" 2>&1 ||
		fail "$1: pg_amcheck found corruption: $(cat "$TEST_TMPDIR/amcheck")"
	local sums
	sums=$(sql "SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers), (SELECT sum(bbalance) FROM pgbench_branches), (SELECT coalesce(sum(delta), 0) FROM pgbench_history)")
	IFS='|' read -r a t b h <<< "$sums"
	[ "$a" = "$h" ] && [ "$t" = "$h" ] && [ "$b" = "$h" ] ||
		fail "$1: balances do not add up (accounts $a, tellers $t, branches $b, history $h)"
	echo "$1: amcheck clean; balances $a = $t = $b = history $h ($(sql 'SELECT count(*) FROM pgbench_history') transactions)"
}

expect_exit 0 as "$host" "$CMKFS" create "$vol" --size 384M --key-arn "$key" --mkfs ext4
expect_exit 0 as "$host" "$CMKFS" mount "$vol" "$mnt"
install -d -o postgres -m 700 "$mnt/pgdata"
pg "$PG/initdb" --data-checksums -D "$mnt/pgdata" -U postgres --auth=trust > "$TEST_TMPDIR/initdb.log" 2>&1 ||
	fail "initdb: $(tail -n 20 "$TEST_TMPDIR/initdb.log")"
pg_start
sql "CREATE EXTENSION amcheck" || fail "no amcheck extension (postgresql-contrib)"
pg "$PG/pgbench" -q -i -s 4 -h "$sock" -p "$port" postgres > "$TEST_TMPDIR/pgbench-init.log" 2>&1 ||
	fail "pgbench -i: $(tail "$TEST_TMPDIR/pgbench-init.log")"
pg "$PG/pgbench" -n -c 4 -j 2 -T 6 -h "$sock" -p "$port" postgres > "$TEST_TMPDIR/pgbench.log" 2>&1 ||
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
pg "$PG/pgbench" -n -c 4 -j 2 -T 12 -h "$sock" -p "$port" postgres > "$TEST_TMPDIR/pgbench-reenc.log" 2>&1 &
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
pg "$PG/pgbench" -n -c 4 -j 2 -T 30 -h "$sock" -p "$port" postgres > "$TEST_TMPDIR/pgbench-crash.log" 2>&1 &
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
