#!/usr/bin/python3
"""io_model.py — model-based random I/O test of a cmkfs plaintext file.

Random reads, writes (sector-aligned and not, of random lengths, crossing
sector boundaries) and fsyncs on FILE, each checked against an in-memory
copy of what the file must hold.  The model is saved to MODEL so that a
second run (after umount and mount) can check the file against it first.

    io_model.py run FILE MODEL SEED OPS [LO HI [shared]]
                                                 random ops in [LO, HI)
                                                 (default: the whole file),
                                                 then save the model; with
                                                 shared, others write
                                                 outside [LO, HI) meanwhile:
                                                 only the region is checked
                                                 at the end
    io_model.py check FILE MODEL                 the file must equal it
    io_model.py concurrent FILE SEED [BASE]      overlapping unaligned
                                                 writers on 64 KiB at BASE

`run` starts from the model in MODEL when it exists, else from the file's
current contents.  `concurrent`: several threads write 100-byte chunks that
share sectors; each owns every W-th chunk, so a read-modify-write that is not
atomic per sector loses other writers' chunks, which the final check sees.
Prints the seed; exit 0 when every check held, 1 with the first mismatch.
"""
import os
import random
import sys
import threading


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def first_diff(a, b):
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return i
    return min(len(a), len(b))


def read_all(fd, size):
    out = bytearray()
    while len(out) < size:
        chunk = os.pread(fd, min(1 << 20, size - len(out)), len(out))
        if not chunk:
            fail("short read at %d of %d" % (len(out), size))
        out += chunk
    return out


def run(path, model_path, seed, ops, lo=0, hi=None, shared=False):
    rng = random.Random(seed)
    fd = os.open(path, os.O_RDWR)
    size = os.fstat(fd).st_size
    if os.path.exists(model_path):
        with open(model_path, "rb") as f:
            model = bytearray(f.read())
    else:
        model = read_all(fd, size)
    if len(model) != size:
        fail("model has %d bytes, file %d" % (len(model), size))
    if hi is None:
        hi = size
    region = hi - lo
    counts = {"read": 0, "write": 0, "fsync": 0}
    for n in range(ops):
        op = rng.random()
        aligned = rng.random() < 0.4
        if aligned:
            length = 4096 * rng.randint(1, 64)
            off = lo + 4096 * rng.randrange(0, (region - length) // 4096 + 1)
        else:
            length = rng.choice([1, 17, 511, 512, 4095, 4097,
                                 rng.randint(1, 300000)])
            off = lo + rng.randrange(0, region - length + 1)
        if op < 0.45:
            data = rng.randbytes(length)
            if os.pwrite(fd, data, off) != length:
                fail("op %d: short write of %d at %d" % (n, length, off))
            model[off:off + length] = data
            counts["write"] += 1
        elif op < 0.95:
            got = os.pread(fd, length, off)
            want = model[off:off + length]
            if got != want:
                i = first_diff(got, want)
                fail("op %d: read of %d at %d differs at byte %d "
                     "(seed %d)" % (n, length, off, off + i, seed))
            counts["read"] += 1
        else:
            os.fsync(fd)
            counts["fsync"] += 1
    # Past the end: reads are short, writes refused.
    if os.pread(fd, 100, size - 10) != bytes(model[size - 10:]):
        fail("read across the end is not short")
    if os.pread(fd, 100, size) != b"":
        fail("read at the end returns data")
    try:
        os.pwrite(fd, b"x", size)
        fail("a write past the end succeeded")
    except OSError:
        pass
    os.fsync(fd)
    whole = read_all(fd, size)
    if shared:
        if whole[lo:hi] != model[lo:hi]:
            fail("the region differs from the model (seed %d)" % seed)
        model[:lo], model[hi:] = whole[:lo], whole[hi:]
    elif whole != model:
        fail("the whole file differs from the model (seed %d)" % seed)
    os.close(fd)
    with open(model_path, "wb") as f:
        f.write(model)
    print("seed %d: %d reads, %d writes, %d fsyncs: all match" %
          (seed, counts["read"], counts["write"], counts["fsync"]))


def check(path, model_path):
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    with open(model_path, "rb") as f:
        model = f.read()
    got = read_all(fd, size)
    os.close(fd)
    if got != model:
        fail("file differs from the model at byte %d" % first_diff(got, model))
    print("file matches the model (%d bytes)" % size)


def concurrent(path, seed, base=0, writers=4, chunk=100, span=64 * 1024,
               rounds=3000):
    fd = os.open(path, os.O_RDWR)
    nchunks = span // chunk
    last = {}
    lock = threading.Lock()
    errors = []

    def writer(w):
        rng = random.Random(seed * 100 + w)
        mine = list(range(w, nchunks, writers))
        try:
            for _ in range(rounds):
                c = rng.choice(mine)
                data = bytes([rng.randrange(256)]) * chunk
                os.pwrite(fd, data, base + c * chunk)
                with lock:
                    last[c] = data
        except OSError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=writer, args=(w,))
               for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        fail("writer error: " + errors[0])
    got = os.pread(fd, nchunks * chunk, base)
    os.close(fd)
    lost = [c for c, data in last.items()
            if got[c * chunk:(c + 1) * chunk] != data]
    if lost:
        fail("%d of %d chunks lost their last write (e.g. chunk %d): "
             "read-modify-write is not atomic per sector" %
             (len(lost), len(last), lost[0]))
    print("seed %d: %d writers x %d unaligned writes sharing sectors: "
          "no update lost" % (seed, writers, rounds))


def main():
    a = sys.argv[1:]
    if len(a) in (5, 7) and a[0] == "run":
        run(a[1], a[2], int(a[3]), int(a[4]), *[int(x) for x in a[5:]])
    elif len(a) == 8 and a[0] == "run" and a[7] == "shared":
        run(a[1], a[2], int(a[3]), int(a[4]), int(a[5]), int(a[6]), True)
    elif len(a) == 3 and a[0] == "check":
        check(a[1], a[2])
    elif len(a) in (3, 4) and a[0] == "concurrent":
        concurrent(a[1], int(a[2]), *[int(x) for x in a[3:]])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
