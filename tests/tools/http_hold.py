#!/usr/bin/python3
"""http_hold.py HOST:PORT... — hold connections open to HTTP endpoints, as
hostile clients do, until killed: per endpoint, 20 that connect and say
nothing (reconnecting whenever dropped) and one that sends a whole request
and never reads the answer, through the smallest receive window the kernel
allows.  Prints "held" once they are all connected.
"""
import socket
import sys
import time


def lazy_reader(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    s.connect((host, port))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    return s


def main(argv):
    ends = []
    for a in argv[1:]:
        host, port = a.rsplit(":", 1)
        ends.append((host, int(port)))
    held = []
    for host, port in ends:
        held.append(lazy_reader(host, port))
    silent = [(e, socket.create_connection(e)) for e in ends for _ in range(20)]
    print("held", flush=True)
    while True:
        time.sleep(0.5)
        # Dropped silent ones come back: the pressure stays.
        for i, (e, s) in enumerate(silent):
            if s is not None:
                s.setblocking(False)
                try:
                    gone = s.recv(1) == b""
                except BlockingIOError:
                    gone = False
                except OSError:
                    gone = True
                if not gone:
                    continue
                s.close()
            try:
                silent[i] = (e, socket.create_connection(e))
            except OSError:
                silent[i] = (e, None)  # the endpoint is gone: try later

if __name__ == "__main__":
    main(sys.argv)
