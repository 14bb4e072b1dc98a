#!/bin/bash
# xts-differential: cmkfs's sector cipher against an independent AES-XTS
# (Debian's python3-cryptography) applying the LUKS2 plain64 IV rule itself,
# over random keys (AES-128/256), sector sizes 512..4096, sector numbers,
# IV offsets (wrapping past 2^64) and multi-sector runs.  Both AES paths:
# cmkfs's own VAES/AVX-512 code where the CPU has it, and OpenSSL's
# (CMKFS_XTS=openssl).
#
# Seeds: fixed ones, plus one new per run; all are printed for replay:
#   tests/tools/xts_reference.py SEED 300 | build/tests/xts-check
# timeout: 120
. "$(dirname "$0")/../lib.sh"

$PYTHON -c 'import cryptography' 2>/dev/null ||
	fail "python3-cryptography is missing (scripts/deps.sh installs it)"

fresh=${CMKFS_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
for seed in 1 2 3 "$fresh"; do
	echo "seed $seed"
	$PYTHON "$CMKFS_SRC/tests/tools/xts_reference.py" "$seed" 300 \
		> "$TEST_TMPDIR/cases"
	"$CMKFS_BUILD/tests/xts-check" < "$TEST_TMPDIR/cases"
	CMKFS_XTS=openssl "$CMKFS_BUILD/tests/xts-check" < "$TEST_TMPDIR/cases"
done

# The checker must be able to fail: flip one ciphertext bit in one case.
head -n 1 "$TEST_TMPDIR/cases" | awk '{
	c = substr($6, 1, 1); d = (c == "0") ? "1" : "0"
	$6 = d substr($6, 2); print }' > "$TEST_TMPDIR/bad"
if "$CMKFS_BUILD/tests/xts-check" < "$TEST_TMPDIR/bad" > "$TEST_TMPDIR/bad.out"; then
	fail "xts-check accepted a corrupted ciphertext"
fi
grep -q 'encrypt mismatch' "$TEST_TMPDIR/bad.out" || fail "no mismatch report"
echo "corrupted case rejected, as it must be"
