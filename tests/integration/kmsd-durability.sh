#!/bin/bash
# kmsd-durability: kill -9 cmkfs-kmsd while a client creates keys and grants
# as fast as it can; after a restart on the same state, everything the client
# saw acknowledged is there.  Three kills, at different moments.
# timeout: 240
. "$(dirname "$0")/../lib.sh"

command -v node > /dev/null || fail "node is missing (scripts/deps.sh installs it)"
sdk_install
state=$TEST_TMPDIR/kms
creds=$TEST_TMPDIR/creds
acks=$TEST_TMPDIR/acks
mkdir -p "$creds"
kmsd_init "$state"
cp "$state.env" "$creds/root-a.env"
: > "$acks"

for round in 1 2 3; do
	kmsd_start "$state"
	(cd "$SDK_DIR" && KMSD_URL=$KMSD_URL CREDS=$creds node durability.mjs load "$acks") &
	load=$!
	sleep "$round.$((RANDOM % 10))"
	kill -9 "$KMSD_PID"
	wait "$KMSD_PID" 2> /dev/null || true
	wait "$load" || true
	echo "round $round: $(grep -c '^key ' "$acks") keys, $(grep -c '^grant ' "$acks") grants acknowledged so far"
	kmsd_start "$state"
	(cd "$SDK_DIR" && KMSD_URL=$KMSD_URL CREDS=$creds node durability.mjs verify "$acks") ||
		fail "acknowledged keys or grants lost after kill -9 (round $round)"
	kmsd_stop
done
[ "$(grep -c '^grant ' "$acks")" -ge 3 ] || fail "the load made too little progress to mean anything"
