#!/usr/bin/python3
"""http_hold.py HOST:PORT... — press on HTTP endpoints as hostile clients
do, until killed.  Per endpoint, kept up all along (each one reconnects
whenever it is dropped):
  - 20 that connect and say nothing;
  - 16 that send a whole request and never read the answer, through the
    smallest receive window the kernel allows;
  - 2 that send a request, then stream junk without end.
Prints "held" once they are all connected.
"""
import socket
import sys
import threading
import time

REQUEST = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"


def silent(e):
    return socket.create_connection(e)


def lazy(e):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    s.connect(e)
    s.sendall(REQUEST)
    return s


def blaster(e):
    junk = b"x" * 65536
    while True:
        try:
            s = socket.create_connection(e)
            s.sendall(REQUEST)
            while True:
                s.sendall(junk)
        except OSError:
            time.sleep(0.05)


def dropped(s):
    """Closed or reset by the server (looked at without reading)."""
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def main(argv):
    ends = []
    for a in argv[1:]:
        host, port = a.rsplit(":", 1)
        ends.append((host, int(port)))
    held = [[make, e, make(e)] for e in ends
            for make in [silent] * 20 + [lazy] * 16]
    for e in ends:
        for _ in range(2):
            threading.Thread(target=blaster, args=(e,), daemon=True).start()
    print("held", flush=True)
    while True:
        time.sleep(0.2)
        for h in held:
            make, e, s = h
            if s is not None and not dropped(s):
                continue
            if s is not None:
                s.close()
            try:
                h[2] = make(e)
            except OSError:
                h[2] = None  # the endpoint is gone: try later


if __name__ == "__main__":
    main(sys.argv)
