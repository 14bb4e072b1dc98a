#!/bin/bash
# burst-one-cpu: no request waits for another to come.  Over io_uring the
# kernel queues a request on the queue of the CPU its task runs on, so I/O
# pinned to CPU 0 puts everything on one queue, where an unaligned write or
# a hole punch first drains its thread's own I/O while further requests
# arrive: those must be served afterwards even if nothing else comes.
# Bursts of 32 threads (O_DIRECT aligned reads, many in flight, with
# unaligned pwrites, aligned writes and fallocate punches on an
# --allow-discards mount), each burst followed by an idle gap, for 30 s
# (tests/tools/storm.py bursts).  Every byte read is checked (punched ranges
# read as zeros), no operation may take 10 s, the daemon logs no error.
# transports: both
# timeout: 120
. "$(dirname "$0")/../lib.sh"

need_mounts
command -v taskset > /dev/null || fail "taskset is missing (util-linux)"
STORM_PREFIX="taskset -c 0" storm bursts 30 --allow-discards
echo ok
