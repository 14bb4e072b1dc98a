#!/bin/sh
# deps.sh — install every Debian package cmkfs needs to build, test and benchmark.
#
# Idempotent: packages already installed are left alone, and nothing is
# downloaded when everything is present.  `make test` and `make demo` call
# `deps.sh --check` first and run the installer only when it reports a gap, so
# each of them works on its own on a fresh Debian 12 machine (as root).
#
#   scripts/deps.sh           install what is missing (needs root)
#   scripts/deps.sh --check   exit 0 if nothing is missing, 1 otherwise
#   scripts/deps.sh --list    print the package list
set -eu

# Build: compiler, pkg-config and the -dev package of every library we link;
# python3 turns the programs' help into their man pages.
BUILD="build-essential pkg-config python3
libssl-dev libfuse3-dev liburing-dev libcurl4-openssl-dev libcryptsetup-dev
libjson-c-dev libmicrohttpd-dev libcmocka-dev libblkid-dev"

# Test: the real components the tests start, and the independent checkers.
# python3-cryptography is Debian's (for /usr/bin/python3): the reference
# AES-XTS implementation of the differential and ciphertext tests; strace
# kills a process at its Nth write (crash tests at every step);
# python3-prometheus-client parses the metrics as Prometheus does;
# python3-pykmip is the KMIP server (and an independent client) of the KMIP
# tests;
# systemd-analyze checks the packaged unit.
TEST="python3-cryptography python3-prometheus-client python3-pykmip fuse3
cryptsetup-bin util-linux e2fsprogs xfsprogs fio postgresql postgresql-contrib
procps psmisc kmod curl strace systemd clang libclang-rt-14-dev cppcheck
clang-tidy"

# Benchmarks: charts, and the peer we compare against.
BENCH="gnuplot-nox gocryptfs"

# The Debian package (`make deb`): its build tools and lintian.
PACKAGE="debhelper dpkg-dev lintian"

# Analysis of the Python (bench/, tests/tools/, scripts/), and of the man
# pages (mandoc -T lint; man --warnings, from man-db and groff).
LINT="pyflakes3 mandoc man-db groff-base"

PKGS=$(echo $BUILD $TEST $BENCH $PACKAGE $LINT)

# Node.js runs the AWS SDK conformance tests.  Any node >= 18 will do, and a
# host that already has one from elsewhere must keep it: Debian's nodejs and
# npm packages conflict with the common third-party builds.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
	PKGS="$PKGS nodejs npm"

missing() {
	for p in $PKGS; do
		s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
		[ "$s" = installed ] || printf '%s\n' "$p"
	done
}

case "${1:-}" in
--list)
	printf '%s\n' $PKGS
	exit 0
	;;
--check)
	m=$(missing)
	[ -z "$m" ] && exit 0
	echo "deps: missing packages:" $m >&2
	exit 1
	;;
"") ;;
*)
	echo "usage: $0 [--check|--list]" >&2
	exit 2
	;;
esac

m=$(missing)
if [ -z "$m" ]; then
	echo "deps: all $(echo $PKGS | wc -w) packages present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:" $m >&2
	echo "deps: run as root (or: sudo $0) to install them" >&2
	exit 1
fi
echo "deps: installing:" $m
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when a first attempt cannot find a package
# (a fresh image ships without lists; a warm one should not hit the network).
# shellcheck disable=SC2086
if ! apt-get install -y -q --no-install-recommends $m; then
	apt-get update -q
	apt-get install -y -q --no-install-recommends $m
fi
# The Debian PostgreSQL package starts a cluster on install; the tests start
# their own servers on private ports and never use it.
echo "deps: done"
