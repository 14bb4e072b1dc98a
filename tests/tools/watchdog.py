#!/usr/bin/python3
"""watchdog.py — fail a test whose cmkfs daemon holds a request too long.

usage: watchdog.py DIR BOUND_S PGID REPORT

Every second, asks each cmkfs daemon whose runtime directory lies in
DIR/run or DIR/*/run (the runtime directories the tests give their mounts)
for the FUSE requests it has received and not answered ("requests" on its
control socket).  No request of a daemon that works takes seconds: one
older than BOUND_S seconds is a request that hangs — unless the daemon
holds its requests by design (--on-revoke suspend: it says "suspended"),
and after a resume (it says "resumed_ms_ago MS") a request's age counts
from the resume.  Then the watchdog
writes every daemon's pending requests to REPORT, kills the test's process
group PGID (TERM, then KILL) so that it fails now rather than at its
timeout, and exits 1.  Exits 0 when killed itself (the test ended).

It never stats anything under DIR but those runtime directories: a hanging
FUSE mount there would hang the watchdog too.
"""
import os
import signal
import socket
import sys
import time


def mountpoints():
    """Mount points, from /proc/self/mountinfo (field 5, octal-escaped)."""
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            p = line.split()[4]
            out.add(p.encode().decode("unicode_escape"))
    return out


def sockets(top):
    """The control sockets of the runtime directories below top."""
    mounts = mountpoints()
    runs = [os.path.join(top, "run")]
    try:
        with os.scandir(top) as it:
            for d in it:
                # d_type, not stat: a FUSE mount here must not be asked.
                if d.path not in mounts and d.is_dir(follow_symlinks=False):
                    runs.append(os.path.join(d.path, "run"))
    except OSError:
        return []
    found = []
    for run in runs:
        if run in mounts:
            continue
        try:
            with os.scandir(run) as it:
                for d in it:
                    found.append(os.path.join(d.path, "control"))
        except OSError:
            pass
    return found


def pending(path):
    """[(age_ms, line)] the daemon at path is serving (age counted from
    its last resume, none while it is suspended), or None."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(path)
        s.sendall(b"requests\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        return None  # gone, starting, stopping or busy: not a hang
    finally:
        s.close()
    out, suspended, resumed = [], False, None
    for line in data.decode(errors="replace").splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[0].isdigit():
            out.append((int(fields[0]), line))
        elif fields == ["suspended"]:
            suspended = True
        elif len(fields) == 2 and fields[0] == "resumed_ms_ago" \
                and fields[1].isdigit():
            resumed = int(fields[1])
    if suspended:
        return [(0, line + " (held: suspended)") for _, line in out]
    if resumed is not None:
        return [(min(age, resumed), line) for age, line in out]
    return out


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    top, bound_ms = sys.argv[1], int(sys.argv[2]) * 1000
    pgid, report = int(sys.argv[3]), sys.argv[4]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(1)
        dump, hung = [], False
        for sock in sockets(top):
            reqs = pending(sock)
            if not reqs:
                continue
            dump.append("daemon %s:" % os.path.dirname(sock))
            for age, line in reqs:
                dump.append("  " + line)
                hung = hung or age > bound_ms
        if not hung:
            continue
        with open(report, "w") as f:
            f.write("WATCHDOG: a FUSE request has waited for its reply for "
                    "more than %d s; pending (AGE_MS OPCODE UNIQUE THREAD):\n"
                    % (bound_ms // 1000))
            f.write("\n".join(dump) + "\n")
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except OSError:
                break
            time.sleep(2)
        sys.exit(1)


if __name__ == "__main__":
    main()
