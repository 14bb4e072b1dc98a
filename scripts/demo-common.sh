# demo-common.sh — what the demos share (sourced from the tree's top):
# the build's programs ($BUILD, relative to the tree or absolute), and how
# a step and a command are shown.
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
CMKFS=$BUILD/cmkfs
if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B= N=; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
run() { printf '$ %s\n' "$*"; "$@"; }
