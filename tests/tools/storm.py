#!/usr/bin/python3
"""storm.py — I/O under stress on a cmkfs plaintext file, every byte checked
against a model, every operation timed.

    storm.py signals FILE SECONDS      verifying workers, signalled
    storm.py bursts FILE SECONDS       bursts of concurrent I/O, idle gaps

signals: 4 worker processes, each owning 4 MiB of FILE (from offset 0), do
random O_DIRECT aligned reads and writes, unaligned pwrite and pread, fsync,
and open/fstat/close, with handlers for SIGUSR1 and SIGURG installed; a
signaller sends them those signals all the time, so that many arrive while a
FUSE request of theirs is in flight (the kernel then sends FUSE_INTERRUPT).
A reaper forks short-lived children that do I/O in the last 16 MiB and kills
each with SIGTERM after a few milliseconds (their errors do not count).

bursts: 32 threads, each owning 1 MiB of FILE (from offset 0), run bursts of
O_DIRECT aligned reads (most of the operations, so that many are in flight
at once), unaligned writes, aligned writes and hole punches
(fallocate PUNCH_HOLE|KEEP_SIZE: the range must read back as zeros); a burst
ends when every thread has done its 8 operations, then everything is idle
for up to 0.1 s.  Run it under `taskset -c 0` to put all requests on one
CPU's queue.

Every read is compared with what the file must hold; at the end each owner
reads its whole region back.  Any failed operation (OSError) is a failure,
reported by operation and errno with a count; a write that failed is
repeated until it succeeds (20 tries), so that the model stays exact.  Any
operation that takes longer than the limit (signals 15 s, bursts 10 s) is a
hang: every operation in flight is reported, the I/O processes are killed
(one stuck in a request may die only when the daemon ends it) and storm.py
exits 1 at once.
Exit 0 when nothing failed.
"""
import collections
import ctypes
import errno
import mmap
import os
import random
import signal
import struct
import sys
import threading
import time
import traceback

MiB = 1 << 20
ALIGN = 4096  # a multiple of the volume's sector size: O_DIRECT alignment

PR_SET_PDEATHSIG = 1
FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong,
                           ctypes.c_longlong]


def punch(fd, off, n):
    """fallocate(PUNCH_HOLE|KEEP_SIZE); 0, or raises OSError"""
    if libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      off, n):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return 0


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def say(line):
    """One line to stdout in one write: several processes share it."""
    os.write(1, (line + "\n").encode())


class Board:
    """What each I/O process or thread is doing, for the watchdog, in
    memory shared with the children forked after it: per slot the start
    time of the operation in flight (0: none), its offset, length and
    name."""
    SLOT = struct.Struct("<dqq32s")

    def __init__(self, labels):
        self.labels = labels
        self.mem = mmap.mmap(-1, len(labels) * self.SLOT.size)

    def begin(self, slot, op, off=0, n=0):
        self.SLOT.pack_into(self.mem, slot * self.SLOT.size,
                            time.monotonic(), off, n, op.encode())

    def end(self, slot):
        self.SLOT.pack_into(self.mem, slot * self.SLOT.size, 0.0, 0, 0, b"")

    def busy(self):
        """(slot, op, offset, length, start) of each operation in flight"""
        out = []
        for i in range(len(self.labels)):
            start, off, n, op = self.SLOT.unpack_from(self.mem,
                                                      i * self.SLOT.size)
            if start:
                out.append((i, op.rstrip(b"\0").decode(), off, n, start))
        return out


def supervise(children, board, limit):
    """Wait for the child processes (pid -> name), watching the board.  A
    slot busy with the same operation for more than limit seconds (seen
    twice, so that a torn read of the slot cannot fool us) is a hang: report
    every operation in flight, kill the children, do not wait for them (they
    may be stuck in the kernel until the daemon answers).  True when every
    child exited 0."""
    ok = True
    suspects = set()
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            name = children.pop(pid)
            if os.WIFSIGNALED(status):
                say("FAIL: %s killed by signal %d" %
                    (name, os.WTERMSIG(status)))
                ok = False
            elif os.WEXITSTATUS(status):
                if os.WEXITSTATUS(status) != 1:  # 1: it said what failed
                    say("FAIL: %s exited %d" %
                        (name, os.WEXITSTATUS(status)))
                ok = False
            continue
        now = time.monotonic()
        busy = board.busy()
        late = {(i, start) for i, _, _, _, start in busy
                if now - start > limit}
        if late & suspects:
            say("FAIL: hang: an operation has not returned in %d s; in "
                "flight:" % limit)
            for i, op, off, n, start in busy:
                what = "%s of %d bytes at %d" % (op, n, off) if n else op
                say("  %s: %s, for %.1f s" %
                    (board.labels[i], what, now - start))
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            return False
        suspects = late
        time.sleep(0.5)
    return ok


class Owner:
    """Checked I/O on a region that only its owner writes: the model is what
    the region must hold; errors are counted by operation and errno."""

    def __init__(self, name, path, lo, size, board, slot, rng):
        self.name, self.lo, self.size = name, lo, size
        self.board, self.slot, self.rng = board, slot, rng
        self.dfd = os.open(path, os.O_RDWR | os.O_DIRECT)
        self.bfd = os.open(path, os.O_RDWR)
        self.buf = mmap.mmap(-1, 256 * 1024)  # page-aligned, for O_DIRECT
        self.model = bytearray(size)
        self.ops = 0
        self.errors = collections.Counter()
        self.first = {}
        self.mismatches = []

    def call(self, op, off, n, fn, *args):
        """fn(*args) as operation op on [off, off + n); None when it failed
        (counted)."""
        self.ops += 1
        self.board.begin(self.slot, op, off, n)
        try:
            return fn(*args)
        except OSError as e:
            key = (op, errname(e))
            self.errors[key] += 1
            if key not in self.first:
                # Now, in case a hang stops us before the report.
                self.first[key] = "%d bytes at %d" % (n, off)
                say("%s: %s of %d bytes at %d failed: %s (first %s)" %
                    (self.name, op, n, off, e.strerror, key[1]))
            return None
        finally:
            self.board.end(self.slot)

    def check(self, op, off, n, got):
        """got, read at off, must be the n bytes written there."""
        want = self.model[off - self.lo:off - self.lo + n]
        if got == want:
            return
        if len(got) != n:
            self.mismatches.append("%s of %d bytes at %d: %d bytes came" %
                                   (op, n, off, len(got)))
            return
        i = next(k for k in range(n) if got[k] != want[k])
        self.mismatches.append("%s of %d bytes at %d: byte %d is %d, was "
                               "written %d" % (op, n, off, off + i, got[i],
                                               want[i]))

    def record(self, off, data):
        self.model[off - self.lo:off - self.lo + len(data)] = data

    def span(self, unit, most):
        """A random range of the region: (offset, length), both multiples
        of unit, length at most most."""
        n = unit * self.rng.randint(1, most // unit)
        return self.lo + unit * self.rng.randrange((self.size - n) // unit +
                                                   1), n

    def retry(self, op, off, n, fn, *args):
        """A write until it succeeds: the model stays exact."""
        for _ in range(20):
            if self.call(op, off, n, fn, *args) is not None:
                return True
        self.mismatches.append("%s of %d bytes at %d failed 20 times: "
                               "giving up" % (op, n, off))
        return False

    # ---- the operations

    def dread(self):
        off, n = self.span(ALIGN, len(self.buf) // 4)
        got = self.call("O_DIRECT read", off, n, os.preadv, self.dfd,
                        [memoryview(self.buf)[:n]], off)
        if got is not None:
            self.check("O_DIRECT read", off, n, self.buf[:got])

    def dwrite(self, off=None, n=None):
        if off is None:
            off, n = self.span(ALIGN, len(self.buf) // 4)
        data = self.rng.randbytes(n)
        self.buf[:n] = data
        view = memoryview(self.buf)[:n]
        if self.retry("O_DIRECT write", off, n, os.pwritev, self.dfd, [view],
                      off):
            self.record(off, data)
            return True
        return False

    def pread(self):
        off, n = self.span(1, 20000)
        got = self.call("pread", off, n, os.pread, self.bfd, n, off)
        if got is not None:
            self.check("pread", off, n, got)

    def pwrite(self):
        off, n = self.span(1, 20000)
        data = self.rng.randbytes(n)
        if self.retry("unaligned pwrite", off, n, os.pwrite, self.bfd, data,
                      off):
            self.record(off, data)
            return True
        return False

    def punch(self):
        off, n = self.span(1, 20000)
        if self.retry("punch", off, n, punch, self.bfd, off, n):
            self.record(off, bytes(n))
            return True
        return False

    def fsync(self):
        self.call("fsync", self.lo, 0, os.fsync, self.bfd)

    def reopen(self, path):
        fd = self.call("open", self.lo, 0, os.open, path, os.O_RDWR)
        if fd is not None:
            self.call("fstat", self.lo, 0, os.fstat, fd)
            self.call("close", self.lo, 0, os.close, fd)

    def fill(self):
        """Known content in the whole region, by aligned writes."""
        step = len(self.buf)
        return all(self.dwrite(off, step)
                   for off in range(self.lo, self.lo + self.size, step))

    def final_check(self):
        step = len(self.buf)
        for off in range(self.lo, self.lo + self.size, step):
            got = self.call("final O_DIRECT read", off, step, os.preadv,
                            self.dfd, [memoryview(self.buf)[:step]], off)
            if got is not None:
                self.check("final O_DIRECT read", off, step, self.buf[:got])

    def report(self):
        """Print what went wrong; True when nothing did."""
        bad = sum(self.errors.values())
        if bad:
            say("FAIL: %s: %d of %d operations failed: %s" %
                (self.name, bad, self.ops, ", ".join(
                    "%s %s x%d (first: %s)" % (op, e, c, self.first[op, e])
                    for (op, e), c in self.errors.most_common())))
        if self.mismatches:
            say("FAIL: %s: %d wrong reads or lost writes; first: %s" %
                (self.name, len(self.mismatches),
                 "; ".join(self.mismatches[:3])))
        return not bad and not self.mismatches


# ---- signals

WORKERS = 4
REGION = 4 * MiB
SCRATCH = 48 * MiB  # the short-lived children's; up to the 64 MiB end


caught = [0]  # signals a worker's handler saw


def count_signal(sig, frame):
    caught[0] += 1


def worker(path, board, slot, deadline):
    w = Owner(board.labels[slot], path, slot * REGION, REGION, board, slot,
              random.Random(slot))
    ops = [w.dread, w.dread, w.dwrite, w.pread, w.pread, w.pwrite, w.pwrite,
           lambda: w.reopen(path), w.fsync]
    if w.fill():
        while time.monotonic() < deadline:
            w.rng.choice(ops)()
    w.final_check()
    ok = w.report()
    say("%s: %d operations, %d signals caught%s" %
        (w.name, w.ops, caught[0], "" if ok else " (FAILED)"))
    return ok


def signaller(pids, deadline):
    rng = random.Random(99)
    sent = 0
    while time.monotonic() < deadline:
        try:
            os.kill(rng.choice(pids),
                    rng.choice((signal.SIGUSR1, signal.SIGURG)))
            sent += 1
        except ProcessLookupError:
            pass  # a worker that has finished
        time.sleep(0.0002)
    say("signaller: %d signals sent" % sent)
    return True


def doomed(path, seed, parent):
    """I/O in the scratch area until SIGTERM ends it; errors are fine."""
    # Killed with the reaper, should the watchdog kill it.
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        return
    rng = random.Random(seed)
    buf = mmap.mmap(-1, 64 * 1024)
    dfd = os.open(path, os.O_RDWR | os.O_DIRECT)
    while True:
        off = SCRATCH + ALIGN * rng.randrange(3000)
        try:
            k = rng.random()
            if k < 0.3:
                os.preadv(dfd, [buf], off)
            elif k < 0.6:
                os.pwritev(dfd, [buf], off)
            elif k < 0.9:
                fd = os.open(path, os.O_RDWR)
                os.pwrite(fd, b"doomed" * rng.randint(1, 500), off + 7)
                os.close(fd)
            else:
                os.pread(dfd, 100, off + 1)
        except OSError:
            pass


def reaper(path, board, slot, deadline):
    rng = random.Random(7)
    me = os.getpid()
    n = 0
    while time.monotonic() < deadline:
        pid = os.fork()
        if pid == 0:
            try:
                doomed(path, n, me)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.005, 0.05))
        board.begin(slot, "SIGTERM a child, reap it")
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        board.end(slot)
        n += 1
    say("reaper: %d short-lived children killed with SIGTERM" % n)
    return True


def spawn(children, name, fn, *args):
    """Run fn(*args) in a child process: exit 0 if it returns True, 1 if
    False, 2 if it raises."""
    pid = os.fork()
    if pid == 0:
        code = 2
        try:
            code = 0 if fn(*args) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    children[pid] = name


def signals(path, seconds):
    labels = ["worker %d" % i for i in range(WORKERS)] + ["reaper"]
    board = Board(labels)
    deadline = time.monotonic() + seconds
    children = {}
    # Handlers, not SIG_IGN: an ignored signal never interrupts a wait.  Set
    # before the fork, so that no signal finds a worker without them.
    signal.signal(signal.SIGUSR1, count_signal)
    signal.signal(signal.SIGURG, count_signal)
    for i in range(WORKERS):
        spawn(children, labels[i], worker, path, board, i, deadline)
    workers = list(children)
    spawn(children, "signaller", signaller, workers, deadline)
    spawn(children, "reaper", reaper, path, board, WORKERS, deadline)
    return supervise(children, board, 15)


# ---- bursts

THREADS = 32
SLICE = 1 * MiB


def burst_io(path, board, deadline):
    """The threads, their bursts and the idle gaps between them."""
    owners = [Owner(board.labels[i], path, i * SLICE, SLICE, board, i,
                    random.Random(i)) for i in range(THREADS)]
    go = threading.Barrier(THREADS + 1)
    finished = threading.Barrier(THREADS + 1)
    done = threading.Event()

    def run(w):
        # Mostly reads, so that many are in flight when a write or a punch
        # takes the synchronous path.
        ops = [w.dread] * 10 + [w.pwrite] * 4 + [w.punch] * 2 + [w.dwrite]
        try:
            w.fill()  # a failure is reported at the end
            while True:
                go.wait()
                if done.is_set():
                    break
                for _ in range(8):
                    w.rng.choice(ops)()
                finished.wait()
            w.final_check()
        except BaseException:
            # A bug here: the others would wait at the barrier for ever.
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(2)

    threads = [threading.Thread(target=run, args=(w,)) for w in owners]
    for t in threads:
        t.start()
    rng = random.Random(1)
    n = 0
    while time.monotonic() < deadline:
        go.wait()
        finished.wait()
        n += 1
        time.sleep(rng.uniform(0, 0.1))  # idle: no request till the next
    done.set()
    go.wait()
    for t in threads:
        t.join()
    ok = all([w.report() for w in owners])
    say("%d bursts, %d operations by %d threads%s" %
        (n, sum(w.ops for w in owners), THREADS,
         "" if ok else " (FAILED)"))
    return ok


def bursts(path, seconds):
    board = Board(["thread %d" % i for i in range(THREADS)])
    children = {}
    spawn(children, "burst process", burst_io, path, board,
          time.monotonic() + seconds)
    return supervise(children, board, 10)


def main():
    a = sys.argv[1:]
    if len(a) != 3 or a[0] not in ("signals", "bursts"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    ok = (signals if a[0] == "signals" else bursts)(a[1], float(a[2]))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
