# demo-common.sh — what the demos share (sourced from the tree's top):
# the build's programs ($BUILD, relative to the tree or absolute), and how
# a step and a command are shown.
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
CMKFS=$BUILD/cmkfs
if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B= N=; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
run() { printf '$ %s\n' "$*"; "$@"; }

# until_shredded FILE LOG: read FILE with direct I/O (past the page cache,
# down to the volume) every half second until it fails, 20 s at most;
# then the shred as the daemon's LOG has it.
until_shredded() {
	local i err
	printf '$ dd if=%s bs=4k count=1 iflag=direct  (every half second until it fails)\n' "$1"
	for i in $(seq 40); do
		if ! err=$(dd if="$1" of=/dev/null bs=4k count=1 iflag=direct status=none 2>&1); then
			echo "after $((i / 2)).$((i % 2 * 5)) s: ${err#dd: }"
			break
		fi
		sleep 0.5
	done
	echo "the daemon's log:"
	grep SHREDDED "$2" | sed 's/^/  /'
}
