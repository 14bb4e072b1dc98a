# tests/pg.sh — PostgreSQL on a mounted cmkfs volume, for the tests that
# run a database (source after lib.sh).  pg_setup MOUNTPOINT: Debian's
# PostgreSQL found, a socket directory and a free loopback port chosen; then
# pg_init makes the cluster with pgbench's tables in MOUNTPOINT/pgdata,
# pg_start/pg_stop run the server as the postgres user, sql runs a query,
# and check_db checks every page (pg_amcheck) and pgbench's invariant.

# pg_setup MOUNTPOINT
pg_setup() {
	PG=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -n1)
	[ -x "$PG/initdb" ] || fail "PostgreSQL is missing (scripts/deps.sh installs it)"
	id postgres > /dev/null 2>&1 || fail "no postgres user (the postgresql package makes it)"
	pg_mnt=$1
	sock=$TEST_TMPDIR/pgsock # the server's socket and log
	mkdir -p "$sock"
	# the postgres user must reach the data directory and socket below here
	chmod 755 "$TEST_TMPDIR" "$(dirname "$TEST_TMPDIR")"
	chown postgres "$sock"
	port=$($PYTHON -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
}
pg() { runuser -u postgres -- "$@"; }
sql() { pg "$PG/psql" -X -q -t -A -h "$sock" -p "$port" -d postgres -c "$1"; }
pg_start() {
	pg "$PG/pg_ctl" -D "$pg_mnt/pgdata" -l "$sock/pg.log" -w -t 60 \
		-o "-k $sock -p $port -c listen_addresses=127.0.0.1" start > /dev/null ||
		fail "PostgreSQL did not start: $(tail -n 20 "$sock/pg.log")"
}
pg_stop() { pg "$PG/pg_ctl" -D "$pg_mnt/pgdata" -w -m fast stop > /dev/null; }
# pg_init SCALE: initdb with data checksums, start, amcheck, pgbench -i
pg_init() {
	install -d -o postgres -m 700 "$pg_mnt/pgdata"
	pg "$PG/initdb" --data-checksums -D "$pg_mnt/pgdata" -U postgres --auth=trust > "$TEST_TMPDIR/initdb.log" 2>&1 ||
		fail "initdb: $(tail -n 20 "$TEST_TMPDIR/initdb.log")"
	pg_start
	sql "CREATE EXTENSION amcheck" || fail "no amcheck extension (postgresql-contrib)"
	pg "$PG/pgbench" -q -i -s "$1" -h "$sock" -p "$port" postgres > "$TEST_TMPDIR/pgbench-init.log" 2>&1 ||
		fail "pgbench -i: $(tail "$TEST_TMPDIR/pgbench-init.log")"
}
# pgbench_run LOG ARGS...: pgbench on the database, its output in LOG
pgbench_run() {
	local log=$1
	shift
	pg "$PG/pgbench" -n -h "$sock" -p "$port" "$@" postgres > "$log" 2>&1
}
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
