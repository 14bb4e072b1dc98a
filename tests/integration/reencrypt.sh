#!/bin/bash
# reencrypt: cmkfs reencrypt rewrites every byte under a new volume key,
# bound to the same or another CMK; a kill -9 at any point (preparing, between
# blocks, in the middle of a block) loses nothing: the volume either still
# opens with its old key, or refuses to unlock until `reencrypt --resume`
# recovers and finishes it.  A blank volume stays blank, and a file that
# does not end on a sector boundary keeps its tail.  The data is checked with an XTS implementation
# independent of cmkfs and libcryptsetup (tests/tools/xts_volume.py).
# timeout: 420
. "$(dirname "$0")/../lib.sh"

command -v cryptsetup > /dev/null || fail "cryptsetup is missing (scripts/deps.sh installs it)"
isolate_aws
XV="$PYTHON $CMKFS_SRC/tests/tools/xts_volume.py"

kmsd_up
key1=$(as "$root" "$CMKFS" kms create-key --description one)
key2=$(as "$root" "$CMKFS" kms create-key --description two)
vol=$TEST_TMPDIR/v.img
expect_exit 0 as "$root" "$CMKFS" create "$vol" --size 96M --key-arn "$key1"
offset=$("$CMKFS_BUILD/tests/vol-tool" info "$vol" | sed -n 's/^data_offset=//p')
size=$("$CMKFS_BUILD/tests/vol-tool" info "$vol" | sed -n 's/^data_size=//p')

# fill SEED / digest: the plaintext through the current volume key
fill() { $XV fill "$vol" "$(volume_key_of "$root" "$vol")" "$offset" "$size" 4096 "$1"; }
digest() { $XV digest "$vol" "$(volume_key_of "$root" "$vol")" "$offset" "$size" 4096; }
reenc_state() {
	expect_exit 0 "$CMKFS" status --json "$vol"
	$PYTHON -c 'import json,sys; print(json.loads(sys.argv[1])["reencryption"])' "$out"
}
bound_to() {
	expect_exit 0 "$CMKFS" status --json "$vol"
	$PYTHON -c 'import json,sys; s = json.loads(sys.argv[1]); print(" ".join(k["key_arn"] for k in s["keyslots"] if k["kms_bound"]), len(s["keyslots"]))' "$out"
}

want=$(fill 1)
vk1=$(volume_key_of "$root" "$vol")
[ "$(digest)" = "$want" ] || fail "the reference cannot read back what it wrote"

# ---- to another CMK, plain progress lines ----
expect_exit 0 as "$root" "$CMKFS" reencrypt "$vol" --key-arn "$key2" --progress-interval 0.05
contains "$out" "reencrypted $vol: 96.0 MiB under a new volume key" "reencrypt"
contains "$out" "opens through $key2" "reencrypt key"
contains "$err" "reencrypt $vol: 100% (96.0 MiB of 96.0 MiB)" "progress lines"
contains "$err" "keyslot 0 destroyed" "old keyslot"
[ "$(printf '%s\n' "$err" | grep -c '^reencrypt ')" -ge 2 ] || fail "one progress line only: $err"
[ "$(reenc_state)" = none ] || fail "state after reencrypt: $(reenc_state)"
[ "$(bound_to)" = "$key2 1" ] || fail "after reencrypt: $(bound_to)"
vk2=$(volume_key_of "$root" "$vol")
[ ${#vk2} = 128 ] && [ "$vk2" != "$vk1" ] || fail "the volume key did not change"
[ "$(digest)" = "$want" ] || fail "the data changed in the reencryption"
# the old volume key no longer reads anything
[ "$($XV digest "$vol" "$vk1" "$offset" "$size" 4096)" != "$want" ] ||
	fail "the old volume key still decrypts the data"
cryptsetup luksDump "$vol" > "$TEST_TMPDIR/dump"
[ "$(grep -c '^  [0-9]*: luks2$' "$TEST_TMPDIR/dump")" = 1 ] ||
	fail "cryptsetup sees other than one keyslot: $(cat "$TEST_TMPDIR/dump")"
as "$root" "$CMKFS" kms disable-key "$key1" 2> /dev/null
expect_exit 0 as "$root" "$CMKFS" unlock-test "$vol"
contains "$out" "unlocks through $key2" "opens without the old key"

# ---- same CMK (the default), journal resilience, on a terminal ----
(. "$root" && export AWS_ENDPOINT_URL_KMS=$KMSD_URL &&
	script -qec "$CMKFS reencrypt $vol --resilience journal" /dev/null) > "$TEST_TMPDIR/tty" ||
	fail "reencrypt on a terminal: $(cat "$TEST_TMPDIR/tty")"
contains "$(cat "$TEST_TMPDIR/tty")" "] 100%  96.0 MiB / 96.0 MiB" "progress bar"
contains "$(cat "$TEST_TMPDIR/tty")" "[##############################]" "full bar"
[ "$(bound_to)" = "$key2 1" ] || fail "after reencrypt on the same key: $(bound_to)"
vk3=$(volume_key_of "$root" "$vol")
[ "$vk3" != "$vk2" ] || fail "the volume key did not change"
[ "$(digest)" = "$want" ] || fail "the data changed in the journal reencryption"

# ---- usage and refusals ----
expect_exit 1 as "$root" "$CMKFS" reencrypt --resume "$vol"
contains "$err" "not being reencrypted" "resume of nothing"
expect_exit 2 "$CMKFS" reencrypt "$vol" --resilience none
expect_exit 2 "$CMKFS" reencrypt --resume "$vol" --key-arn "$key1"
expect_exit 1 as "$root" "$CMKFS" reencrypt "$vol" --key-arn "$key1"
contains "$err" "cannot reencrypt $vol: the key $key1 is Disabled" "unfit new key"
[ "$(digest)" = "$want" ] || fail "a refused reencryption changed the data"
as "$root" "$CMKFS" kms enable-key "$key1" 2> /dev/null

# start runs CMD in the background with its stderr in $TEST_TMPDIR/progress;
# $pid is cmkfs itself (exec), so kill -9 hits it.
start() {
	(. "$root" && export AWS_ENDPOINT_URL_KMS=$KMSD_URL &&
		exec "$CMKFS" reencrypt "$@" --progress-interval 0.01) \
		> /dev/null 2> "$TEST_TMPDIR/progress" &
	pid=$!
}
# wait_for PCT: until a progress line shows at least PCT percent
wait_for() {
	local i p
	for i in $(seq 600); do
		p=$(sed -n 's/^reencrypt [^ ]*: \([0-9]*\)%.*/\1/p' "$TEST_TMPDIR/progress" | tail -1)
		[ -n "$p" ] && [ "$p" -ge "$1" ] && return 0
		kill -0 "$pid" 2> /dev/null || fail "reencrypt ended before $1%: $(cat "$TEST_TMPDIR/progress")"
		sleep 0.01
	done
	fail "no progress to $1%"
}
resume_all() { expect_exit 0 as "$root" "$CMKFS" reencrypt --resume "$vol"; }

# ---- kill -9 in the middle of the data, twice, then resume ----
start "$vol" --key-arn "$key1"
wait_for 20
kill -9 "$pid"
wait "$pid" 2> /dev/null || true
echo "killed at $(tail -1 "$TEST_TMPDIR/progress"): $(reenc_state)"
[ "$(reenc_state)" != none ] || fail "no reencryption after the kill"
expect_exit 1 as "$root" "$CMKFS" unlock-test "$vol"
contains "$err" "reencrypt --resume $vol" "unlock refused mid-reencryption"
expect_exit 1 as "$root" "$CMKFS" reencrypt "$vol"
contains "$err" "already being reencrypted" "fresh start refused"
expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "REENCRYPTION" "status shows it"
start --resume "$vol"
wait_for 60
kill -9 "$pid"
wait "$pid" 2> /dev/null || true
# a revoked key stops the resume with the reason; nothing is lost
as "$root" "$CMKFS" kms disable-key "$key1" 2> /dev/null
expect_exit 3 as "$root" "$CMKFS" reencrypt --resume "$vol"
contains "$err" "the key $key1 is disabled" "resume with a disabled key"
as "$root" "$CMKFS" kms enable-key "$key1" 2> /dev/null
resume_all
[ "$(reenc_state)" = none ] || fail "still reencrypting after resume"
[ "$(bound_to)" = "$key1 1" ] || fail "after the resumed reencryption: $(bound_to)"
[ "$(digest)" = "$want" ] || fail "data lost across kills and resume"

# ---- SIGINT stops cleanly between blocks ----
start "$vol"
wait_for 10
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ $rc = 1 ] || fail "SIGINT: exit $rc"
contains "$(cat "$TEST_TMPDIR/progress")" "stopped by signal 2 between two blocks" "SIGINT message"
[ "$(reenc_state)" = in-progress ] || fail "after SIGINT: $(reenc_state)"
# the progress status shows comes from the header: a part, of all the data
expect_exit 0 "$CMKFS" status --json "$vol"
read -r st done total dsize <<< "$($PYTHON -c 'import json,sys; s = json.loads(sys.argv[1]); r = s["reencrypt"]; print(r["state"], r["done_bytes"], r["total_bytes"], s["data_size"])' "$out")"
[ "$st" = paused ] || fail "reencrypt state after SIGINT: $st"
[ "$done" -gt 0 ] && [ "$done" -lt "$total" ] || fail "done after SIGINT: $done of $total"
[ "$total" = "$size" ] && [ "$dsize" = "$size" ] || fail "sizes after SIGINT: $total, $dsize (data $size)"
expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "reencrypted  " "status text shows the progress"
resume_all
[ "$(digest)" = "$want" ] || fail "data lost across SIGINT and resume"

# ---- kill -9 in the middle of a block: recovered before anything else ----
# A block takes a few ms: a kill right after a progress line lands in the
# next one most of the time; try until one does.
for i in $(seq 30); do
	if [ "$(reenc_state)" = none ]; then
		start "$vol" --key-arn "$key1"
	else
		start --resume "$vol"
	fi
	wait_for 0
	kill -9 "$pid" 2> /dev/null || true
	wait "$pid" 2> /dev/null || true
	[ "$(reenc_state)" != crashed ] || break
done
[ "$(reenc_state)" = crashed ] || fail "30 kills and none in the middle of a block"
echo "kill $i landed in the middle of a block"
expect_exit 1 as "$root" "$CMKFS" unlock-test "$vol"
contains "$err" "interrupted in the middle of a block" "unlock refused after a crash"
expect_exit 0 "$CMKFS" status "$vol"
contains "$out" "REENCRYPTION INTERRUPTED" "status after a crash"
expect_exit 0 "$CMKFS" status --json "$vol"
[ "$($PYTHON -c 'import json,sys; print(json.loads(sys.argv[1])["reencrypt"]["state"])' "$out")" = crashed ] ||
	fail "reencrypt state after a crash: $out"
resume_all
contains "$err" "recovered from the crash that interrupted" "resume after a crash"
[ "$(digest)" = "$want" ] || fail "data lost in the crashed block"

# ---- kill -9 after the last block, before the end is written ----
# libcryptsetup ends a reencryption in a few header writes after the last
# block; a resume from there must not start over (that would rewrite
# new-key data as old), and cmkfs completes the end itself.
for i in $(seq 30); do
	start "$vol" --key-arn "$key1"
	wait_for 100
	kill -9 "$pid" 2> /dev/null || true
	wait "$pid" 2> /dev/null || true
	[ "$(reenc_state)" = none ] || break
	[ "$(digest)" = "$want" ] || fail "kill $i after the last block: data lost"
done
[ "$(reenc_state)" != none ] || fail "30 kills after the last block and none before the end"
echo "kill $i landed between the last block and the end"
resume_all
contains "$out" "every block was done" "resume after the last block"
[ "$(reenc_state)" = none ] || fail "still reencrypting after the end was completed"
[ "$(bound_to)" = "$key1 1" ] || fail "after the completed end: $(bound_to)"
[ "$(digest)" = "$want" ] || fail "data lost when completing the end"
[ ! -e "$vol.reencrypt-header" ] || fail "the header snapshot was left behind"

# ---- kill -9 at random points, from preparation to the end ----
for i in $(seq 12); do
	if [ "$(reenc_state)" = none ]; then
		start "$vol" --key-arn "${key1}"
	else
		start --resume "$vol"
	fi
	sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
	kill -9 "$pid" 2> /dev/null || true
	wait "$pid" 2> /dev/null || true
	echo "kill $i: $(reenc_state), $(tail -1 "$TEST_TMPDIR/progress")"
	case $(reenc_state) in
	none)
		# not started, or finished: it must simply open
		expect_exit 0 as "$root" "$CMKFS" unlock-test "$vol"
		[ "$(digest)" = "$want" ] || fail "kill $i: data lost" ;;
	end-cut-off) ;; # the header may be the old or the new one
	*) expect_exit 1 as "$root" "$CMKFS" unlock-test "$vol" ;;
	esac
done
[ "$(reenc_state)" = none ] || resume_all
[ ! -e "$vol.reencrypt-header" ] || fail "the header snapshot was left behind"
[ "$(digest)" = "$want" ] || fail "data lost across random kills"
expect_exit 0 as "$root" "$CMKFS" unlock-test "$vol"
[ "$(bound_to)" = "$key1 1" ] || fail "after the kills: $(bound_to)"
echo "random kills: every byte reads back"

# ---- a blank volume stays blank; a file that does not end on a sector
# boundary (its last partial sector is not data) is reencrypted and keeps
# its tail, through a kill -9 at every step: before each of its writes to
# the volume in turn (strace), then a resume ----
json_field() {
	expect_exit 0 "$CMKFS" status --json "$vol"
	$PYTHON -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$out" "$1"
}
vol=$TEST_TMPDIR/tail.img
expect_exit 0 as "$root" "$CMKFS" create "$vol" --size 8M --key-arn "$key1"
printf 'tail' >> "$vol"
[ "$(json_field unused_tail)" = 4 ] || fail "unused tail: $(json_field unused_tail)"
[ "$(json_field blank)" = True ] || fail "a new volume is not marked blank"
expect_exit 0 as "$root" "$CMKFS" reencrypt "$vol" --key-arn "$key2"
[ "$(json_field blank)" = True ] || fail "the reencryption of a blank volume dropped its blank mark"
[ "$(bound_to)" = "$key2 1" ] || fail "after the reencryption with a tail: $(bound_to)"
offset=$("$CMKFS_BUILD/tests/vol-tool" info "$vol" | sed -n 's/^data_offset=//p')
size=$("$CMKFS_BUILD/tests/vol-tool" info "$vol" | sed -n 's/^data_size=//p')
want=$(fill 3)
states=
for n in $(seq 200); do
	rc=0
	# (LeakSanitizer cannot run under ptrace: no leak check in an ASan
	# build for these runs; the resumes keep theirs)
	(. "$root" && export AWS_ENDPOINT_URL_KMS=$KMSD_URL &&
		export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 &&
		exec strace -f -qq -o /dev/null -P "$vol" -e trace=write \
			-e inject=write:signal=SIGKILL:when="$n" \
			"$CMKFS" reencrypt "$vol" --resilience journal) > /dev/null 2> "$TEST_TMPDIR/kill.err" || rc=$?
	state=$(reenc_state)
	echo "kill before write $n: exit $rc, $state"
	[ $rc = 0 ] || [ $rc = 137 ] || fail "reencrypt failed: $(cat "$TEST_TMPDIR/kill.err")"
	case " $states " in *" $state "*) ;; *) states="$states $state" ;; esac
	if [ $rc = 0 ]; then
		[ "$state" = none ] || fail "reencrypt succeeded but left the state $state"
		break
	fi
	[ "$state" = none ] || resume_all
	[ "$(reenc_state)" = none ] || fail "kill before write $n: still $(reenc_state) after resume"
	[ "$(digest)" = "$want" ] || fail "kill before write $n ($state): data lost"
done
[ $rc = 0 ] || fail "200 writes and the reencryption did not end"
echo "killed before each of $((n - 1)) writes; states seen:$states"
for s in crashed in-progress; do
	contains "$states" "$s" "the states the kills left"
done
[ "$(tail -c 4 "$vol")" = tail ] || fail "the partial last sector was rewritten"
expect_exit 0 as "$root" "$CMKFS" unlock-test "$vol"
kmsd_stop
