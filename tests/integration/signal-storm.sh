#!/bin/bash
# signal-storm: signals change no reply.  A signal to a process that waits
# for a FUSE request makes the kernel send FUSE_INTERRUPT; the daemon must
# still answer that request, and every later one, with its real result.
# Four processes verify their own regions of a --raw plaintext file (O_DIRECT
# aligned reads and writes, unaligned pwrite and pread, fsync, open/fstat/
# close) while a fifth sends them SIGUSR1 or SIGURG (handlers installed)
# every 0.2 ms or so, and short-lived children doing I/O are killed with
# SIGTERM; for 20 s (tests/tools/storm.py signals).  No operation of the
# workers may fail (EAGAIN, EIO...), every read must match, no operation may
# take 15 s, and the daemon logs no error.
# transports: both
# timeout: 120
. "$(dirname "$0")/../lib.sh"

need_mounts
storm signals 20
echo ok
