#!/usr/bin/python3
"""kmip_evil.py CERT KEY CA MODE — a KMIP server that answers every request
wrongly, for the tests: TLS with client certificates like a real one, then
per connection, after reading the request:

  garbage    bytes that are no TTLV at all
  huge       a header announcing a 4 GiB message, then nothing
  truncated  a header announcing 1 KiB, 100 bytes of it, then close
  silent     nothing, the connection kept open
  deep       structures nested 40 deep
  badpad     a valid answer but for one padding byte
  wrongop    a valid, successful answer to another operation
  failure    a refusal with a Result Message full of control bytes

Prints the port it listens on (127.0.0.1), then serves until killed.
"""
import socket
import ssl
import struct
import sys
import threading
import time


def item(tag, typ, value):
    pad = (8 - len(value) % 8) % 8
    return struct.pack(">I", tag)[1:] + bytes([typ]) + \
        struct.pack(">I", len(value)) + value + b"\0" * pad


def struct_(tag, *items):
    return item(tag, 0x01, b"".join(items))


def enum(tag, v):
    return item(tag, 0x05, struct.pack(">I", v))


def integer(tag, v):
    return item(tag, 0x02, struct.pack(">i", v))


def response(op, status, *payload_or_reason):
    header = struct_(0x42007A,
                     struct_(0x420069, integer(0x42006A, 1),
                             integer(0x42006B, 4)),
                     item(0x420092, 0x09, struct.pack(">q", int(time.time()))),
                     integer(0x42000D, 1))
    batch = struct_(0x42000F, enum(0x42005C, op), enum(0x42007F, status),
                    *payload_or_reason)
    return struct_(0x42007B, header, batch)


def answer(mode):
    if mode == "garbage":
        return b"HTTP/1.1 200 OK\r\n\r\nnot kmip at all"
    if mode == "huge":
        return b"\x42\x00\x7b\x01\xff\xff\xff\xf0"
    if mode == "truncated":
        return b"\x42\x00\x7b\x01\x00\x00\x04\x00" + b"\0" * 100
    if mode == "deep":
        m = b""
        for _ in range(40):
            m = struct_(0x42007B, m)
        return m
    if mode == "badpad":
        m = bytearray(response(0x0B, 0, struct_(0x42007C)))
        m[-25] = 1  # inside the Batch Count's padding... somewhere padded
        return bytes(m)
    if mode == "wrongop":
        return response(0x01, 0, struct_(0x42007C,
                                         item(0x420094, 0x07, b"1")))
    if mode == "failure":
        return response(0x0B, 1, enum(0x42007E, 0x0C),
                        item(0x42007D, 0x07,
                             b"denied\n\x1b[31mFORGED LINE\x07"))
    return None


def serve(conn, mode):
    try:
        conn.recv(65536)
        a = answer(mode)
        if a is None:  # silent
            time.sleep(60)
        else:
            conn.sendall(a)
            if mode == "huge":
                time.sleep(60)
    except OSError:
        pass
    finally:
        conn.close()


def main(argv):
    cert, key, ca, mode = argv[1:5]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    print(s.getsockname()[1], flush=True)
    while True:
        c, _ = s.accept()
        try:
            t = ctx.wrap_socket(c, server_side=True)
        except (OSError, ssl.SSLError):
            c.close()
            continue
        threading.Thread(target=serve, args=(t, mode), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv)
