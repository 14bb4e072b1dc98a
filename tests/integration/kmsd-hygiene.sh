#!/bin/bash
# kmsd-hygiene: cmkfs-kmsd keeps its state and its access log exact under
# requests that fail or race with time — DeleteAlias deletes the alias it
# names even when resolving its key purges a key past its deletion date (and
# that key's aliases, shifting the list); a request that fails halfway
# leaves nothing in memory for the next write to persist; the access log
# names only actions it knows, never the client's header bytes; strings with
# NUL or invalid UTF-8 are refused at the door.  (The SDK conformance test
# covers DryRun and the refusals through the official client.)
# timeout: 60
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

kmsd_stop
echo "ok"
