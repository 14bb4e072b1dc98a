#!/usr/bin/python3
"""memscan.py — search a live process's memory for secrets, from outside.

usage: memscan.py PID NAME=HEX [NAME=HEX ...] [--allow REGION]... [--allow-secmem]

Reads /proc/PID/maps and, through /proc/PID/mem, every readable private or
anonymous mapping (heap, stacks, anonymous memory, the data of loaded
libraries) and searches it for each secret in several forms: its raw bytes,
its hex spelling (lower and upper case) and its base64 spelling (whole, and
the part of it that stays the same at any alignment inside a longer
base64 string).  Mappings whose name is given with --allow (e.g.
"[anon:cmkfs-secmem]") and, with --allow-secmem, cmkfs's secure memory
(mappings locked, excluded from dumps and wiped on fork: VmFlags lo, dd
and wf in /proc/PID/smaps, which is how they are known where the kernel
does not name anonymous mappings) are reported separately and do not
count.  Mappings over 4 GiB are skipped and named on
stderr: only a sanitizer's shadow memory is that large in a cmkfs process,
and reading it would take hours.

Prints one line per hit: "HIT name form address region" (or "ALLOWED ...")
and exits 0 when nothing outside the allowed regions holds a secret, 1 when
something does, 2 on usage errors or when the process cannot be read.  Needs
ptrace access to PID (root, or the same user with a permissive yama).
"""
import base64
import re
import sys

CHUNK = 1 << 20
HUGE = 4 << 30


def forms(secret):
    out = {"raw": secret, "hex": secret.hex().encode(),
           "HEX": secret.hex().upper().encode()}
    for shift in range(3):
        # a secret inside a longer base64 text starts at one of three
        # alignments; the full groups after the first partial one are the
        # same whatever precedes it
        b64 = base64.b64encode(bytes(shift) + secret)
        skip = (shift * 4 + 2) // 3 + (1 if shift else 0)
        core = b64[skip:len(b64) - 4]
        if len(core) >= 16:
            out["base64+%d" % shift] = core
    return out


def secmem_ranges(pid):
    """Start addresses of mappings with cmkfs's secure-memory flags."""
    starts, cur = set(), None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            m = re.match(r"([0-9a-f]+)-[0-9a-f]+ ", line)
            if m:
                cur = int(m.group(1), 16)
            elif line.startswith("VmFlags:"):
                flags = line.split()[1:]
                # locking is best effort in cmkfs; dd and wf are not
                if "dd" in flags and "wf" in flags:
                    starts.add(cur)
    return starts


def regions(pid):
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)",
                         line)
            if not m:
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            perms, inode, name = m.group(3), int(m.group(4)), m.group(5)
            if "r" not in perms or name in ("[vvar]", "[vsyscall]",
                                              "[vvar_vclock]"):
                continue
            # file-backed read-only text cannot have learnt a secret
            if inode and "w" not in perms:
                continue
            yield start, end, perms, name or "[anon]"


def main(argv):
    pid, secrets, allow, secmem = None, {}, set(), False
    args = iter(argv[1:])
    for a in args:
        if a == "--allow":
            allow.add(next(args))
        elif a == "--allow-secmem":
            secmem = True
        elif pid is None:
            pid = int(a)
        else:
            name, _, hexval = a.partition("=")
            secrets[name] = bytes.fromhex(hexval)
    if pid is None or not secrets:
        sys.exit(__doc__)
    patterns = [(n, f, p) for n, s in secrets.items()
                for f, p in forms(s).items()]
    longest = max(len(p) for _, _, p in patterns)
    bad = 0
    try:
        mem = open("/proc/%d/mem" % pid, "rb", buffering=0)
    except OSError as e:
        print("memscan: cannot read process %d: %s" % (pid, e),
              file=sys.stderr)
        return 2
    scanned = 0
    secure = secmem_ranges(pid) if secmem else set()
    with mem:
        for start, end, perms, name in regions(pid):
            if start in secure:
                name = "[secmem]"
                allow.add(name)
            if end - start > HUGE:
                print("memscan: skipped %s mapping 0x%x-0x%x (%d GiB)" %
                      (name, start, end, (end - start) >> 30),
                      file=sys.stderr)
                continue
            pos, tail = start, b""
            while pos < end:
                n = min(CHUNK, end - pos)
                try:
                    mem.seek(pos)
                    data = mem.read(n)
                except OSError:
                    break
                buf = tail + data
                base = pos - len(tail)
                for sname, form, pat in patterns:
                    for m in re.finditer(re.escape(pat), buf):
                        addr = base + m.start()
                        if addr + len(pat) <= base + len(tail) and tail:
                            continue  # seen in the previous chunk
                        kind = "ALLOWED" if name in allow else "HIT"
                        bad += kind == "HIT"
                        print("%s %s %s 0x%x %s %s" % (kind, sname, form,
                                                        addr, perms, name))
                tail = buf[-(longest - 1):] if longest > 1 else b""
                pos += len(data)
                scanned += len(data)
    print("memscan: %d bytes of process %d scanned, %d hit(s) outside "
          "allowed regions" % (scanned, pid, bad), file=sys.stderr)
    return 1 if bad else 0


sys.exit(main(sys.argv))
