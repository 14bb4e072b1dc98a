#!/bin/bash
# kmsd-hygiene: cmkfs-kmsd keeps its state and its access log exact under
# requests that fail or race with time — DeleteAlias deletes the alias it
# names even when resolving its key purges a key past its deletion date (and
# that key's aliases, shifting the list); a request that fails halfway
# leaves nothing in memory for the next write to persist; the access log
# names only actions it knows, never the client's header bytes; strings with
# NUL or invalid UTF-8 are refused at the door; Encrypt's plaintext is not
# left in the ordinary heap (as root: a memory scan).  A client that
# trickles its request a byte at a time is cut at --request-timeout (silence
# alone would never end it), while a kept-alive connection answering
# request after request for longer is not; one address holds at most
# --per-address-connections connections, and the others still get in.
# (The SDK conformance test covers DryRun and the refusals through the
# official client.)
# timeout: 90
. "$(dirname "$0")/../lib.sh"

isolate_aws
kmsd_up
call() { as "$root" "$CMKFS" kms call "$@"; }
aliases() {
	call ListAliases '{}' | $PYTHON -c 'import json, sys
print(" ".join(sorted(a["AliasName"] for a in json.load(sys.stdin)["Aliases"])))'
}

# ---- DeleteAlias when resolving its key purges another key's alias ----
k1=$(as "$root" "$CMKFS" kms create-key --description doomed)
k2=$(as "$root" "$CMKFS" kms create-key --description target)
k3=$(as "$root" "$CMKFS" kms create-key --description other)
for a in "doomed $k1" "target $k2" "other $k3"; do
	set -- $a
	expect_exit 0 call CreateAlias "{\"AliasName\":\"alias/$1\",\"TargetKeyId\":\"$2\"}"
done
expect_exit 0 call ScheduleKeyDeletion "{\"KeyId\":\"$k1\",\"PendingWindowInDays\":7}"
# seven days pass: the deletion date is moved into the past on disk
kmsd_stop
$PYTHON - "$state/state.json" "${k1##*/}" <<'P' || fail "cannot age the key"
import json, sys, time
path, kid = sys.argv[1], sys.argv[2]
s = json.load(open(path))
[k] = [k for k in s["keys"] if k["KeyId"] == kid]
k["DeletionDate"] = int(time.time()) - 3600
json.dump(s, open(path, "w"))
P
kmsd_start "$state"
expect_exit 0 call DeleteAlias '{"AliasName":"alias/target"}'
[ "$(aliases)" = "alias/other" ] || fail "DeleteAlias alias/target left: $(aliases)"
echo "DeleteAlias deletes the alias it names while a purge shifts the list"

# ---- a request that fails halfway changes nothing, now or later ----
expect_exit 1 call TagResource "{\"KeyId\":\"$k3\",\"Tags\":[{\"TagKey\":\"early\",\"TagValue\":\"1\"},{\"TagKey\":\"aws:reserved\",\"TagValue\":\"x\"}]}"
contains "$err" "TagException" "a reserved tag key"
expect_exit 0 call TagResource "{\"KeyId\":\"$k3\",\"Tags\":[{\"TagKey\":\"later\",\"TagValue\":\"2\"}]}"
kmsd_stop
kmsd_start "$state"
tags=$(call ListResourceTags "{\"KeyId\":\"$k3\"}" | $PYTHON -c 'import json, sys
print(" ".join(sorted(t["TagKey"] for t in json.load(sys.stdin)["Tags"])))')
[ "$tags" = later ] || fail "tags after a failed TagResource and a later write: $tags"
echo "a failed TagResource leaves nothing behind"

# ---- the access log: known action names only ----
as "$root" "$CMKFS" kms call "Decrypt principal=forged outcome=OK" "{}" > /dev/null 2>&1 && fail "an unknown action succeeded"
grep -q "principal=forged" "$state.log" && fail "a forged field reached the access log: $(grep forged "$state.log")"
grep -q "action=(unknown)" "$state.log" || fail "no line for the unknown action"
echo "the access log names only actions it knows"

# ---- Encrypt's plaintext is not left in the ordinary heap ----
# json-c copies the strings it parses into malloc'ed buffers and frees them
# unwiped: the Plaintext (base64 in the body) must never get there.  Scanned
# from outside, after the requests are answered; secure memory is allowed.
if [ "$(id -u)" = 0 ]; then
	pts=()
	for n in 3000 700; do
		pt=$(openssl rand -hex $n)
		pts+=("pt$n=$pt")
		b64=$(printf '%s' "$pt" | xxd -r -p | base64 -w0)
		expect_exit 0 call Encrypt "{\"KeyId\":\"$k3\",\"Plaintext\":\"$b64\",\"EncryptionContext\":{\"Plaintext\":\"not this one\"}}"
	done
	# and one with its slashes escaped, as JSON allows
	pt=$(openssl rand -hex 900)
	pts+=("pt900=$pt")
	b64=$(printf '%s' "$pt" | xxd -r -p | base64 -w0 | sed 's|/|\\/|g')
	expect_exit 0 call Encrypt "{\"KeyId\":\"$k3\",\"Plaintext\":\"$b64\"}"
	rc=0
	$PYTHON "$CMKFS_SRC/tests/tools/memscan.py" "$KMSD_PID" "${pts[@]}" --allow-secmem \
		> "$TEST_TMPDIR/kmsd.scan" || rc=$?
	[ $rc = 0 ] || fail "Encrypt's plaintext outside secure memory (exit $rc): $(cat "$TEST_TMPDIR/kmsd.scan")"
	echo "Encrypt's plaintext stays in secure memory"
else
	echo "memory scan skipped: reading another process's memory needs root"
fi

# ---- slow clients: a deadline for the whole request, a limit per address ----
kmsd_stop
kmsd_start "$state" --request-timeout 3 --per-address-connections 4
$PYTHON - "${KMSD_URL##*:}" <<'P' || fail "request deadline and per-address limit"
import http.client, socket, sys, time
port = int(sys.argv[1])

def conn():
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10)
    return s

def closed(s, within):
    # the server closed s (EOF or reset) within `within` seconds
    s.settimeout(within)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False

# a request trickled a byte every 0.5 s: never silent, cut at the deadline
s = conn()
t0 = time.monotonic()
cut = None
for b in b"POST / HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 100:
    try:
        s.send(bytes([b]))
    except OSError:
        cut = time.monotonic() - t0
        break
    if closed(s, 0.5):
        cut = time.monotonic() - t0
        break
assert cut is not None, "a trickling client was never cut"
assert 2.5 <= cut <= 6, "cut after %.1f s, the deadline is 3 s" % cut
print("trickled request cut after %.1f s" % cut)

# a kept-alive connection answering a request every 0.5 s for 5 s stays
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for i in range(10):
    c.request("POST", "/", body=b"{}", headers={"Content-Type": "application/x-amz-json-1.1"})
    r = c.getresponse()
    r.read()
    assert r.status == 400, r.status  # unsigned: refused, but answered
    time.sleep(0.5)
c.close()
print("a kept-alive connection served 10 requests over 5 s")

# four connections from one address: a fifth is turned away, then served
# once one of them goes.  (Until the service has seen the connections
# above go, they still count: four are opened until all four stay.)
for _ in range(50):
    held = [conn() for _ in range(4)]
    time.sleep(0.3)
    if not any(closed(h, 0.05) for h in held):
        break
    for h in held:
        h.close()
    time.sleep(0.2)
else:
    raise AssertionError("four connections from one address do not stay")
fifth = conn()
assert closed(fifth, 2), "a fifth connection from one address was kept"
held.pop().close()
time.sleep(0.3)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request("POST", "/", body=b"{}")
assert c.getresponse().status == 400
print("one address holds at most 4 connections")
P
grep -q "connection from 127.0.0.1 cut: no whole request within 3 s" "$state.log" || fail "the cut is not in the access log"

kmsd_stop
echo "ok"
