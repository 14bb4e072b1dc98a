#!/bin/sh
# crypto.sh — the crypto ceiling: cmkfs's sector cipher against OpenSSL's own
# `openssl speed` on the same machine, in the same run.
#
# The target is that cmkfs's AES-256-XTS at 4096-byte sectors runs at >= 90%
# of `openssl speed -evp aes-256-xts` at 4096-byte blocks: the sector loop
# (one IV set per sector) must cost next to nothing over the bare cipher.
#
#   BUILD=build bench/crypto.sh [SECONDS]
set -eu
BUILD=${BUILD:-build}
SECS=${1:-3}

machine=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
echo "machine: $(nproc) cores, ${machine:-unknown CPU}, $(uname -r)"
echo "cmkfs sector cipher, one core, ${SECS}s per row:"
out=$("$BUILD/cmkfs-crypto-speed" --seconds "$SECS" --tsv)
printf '%s\n' "$out" | awk -F'\t' '{ printf "  %-12s %6s %-8s %8.2f GB/s\n", $1, $2, $3, $4 }'

# openssl speed prints, per block size, kB/s in thousands ("123456.78k").
echo "openssl speed -evp aes-256-xts, 4096-byte blocks, ${SECS}s:"
ossl=$(openssl speed -evp aes-256-xts -bytes 4096 -seconds "$SECS" 2>/dev/null |
	awk '/^AES-256-XTS|^aes-256-xts/ { v = $NF; sub(/k$/, "", v); print v * 1000 / 1e9 }')
if [ -z "$ossl" ]; then
	echo "  (could not parse openssl speed output)"
	exit 1
fi
printf '  %-12s %6s %-8s %8.2f GB/s\n' openssl 4096 encrypt "$ossl"

ours=$(printf '%s\n' "$out" | awk -F'\t' '$1 == "aes-256-xts" && $2 == 4096 && $3 == "encrypt" { print $4 }')
awk -v a="$ours" -v b="$ossl" 'BEGIN {
	r = a / b
	printf "ratio cmkfs/openssl at 4096: %.3f (target >= 0.90): %s\n", r, (r >= 0.90) ? "met" : "NOT met"
}'
