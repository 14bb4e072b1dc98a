#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""fake_metadata.py — a fake EC2 instance metadata service (IMDSv2 only) and
container credentials endpoint, for the tests of cmkfs's credential chain.
Not part of cmkfs.

Serves on 127.0.0.1, on a port the OS picks, printed alone on the first line
of stdout.  Endpoints:

  PUT /latest/api/token                       IMDSv2 session token; needs
        X-aws-ec2-metadata-token-ttl-seconds (1..21600), else 400
  GET /latest/meta-data/iam/security-credentials/        the role name
  GET /latest/meta-data/iam/security-credentials/ROLE    its credentials
        both need X-aws-ec2-metadata-token from the PUT, else 401
  GET /creds                                  container credentials; with
        --auth, the Authorization header must equal it, else 401

Every credentials answer has a new AccessKeyId (ASIAFAKE plus a 12-digit
counter) so a test can tell fetches apart; Expiration is --lifetime seconds
from now.  Each request is logged to --log as "METHOD PATH STATUS".  Exits on
SIGTERM.
"""
import argparse
import http.server
import json
import secrets
import signal
import sys
import threading
import time

IMDS_TOKEN = "/latest/api/token"
IMDS_ROLES = "/latest/meta-data/iam/security-credentials/"


def expiration(lifetime, style):
    t = time.time() + lifetime
    if style == "frac":
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".123456Z"
    if style == "offset":
        # The same instant written in UTC+02:00.
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t + 7200)) + "+02:00"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lifetime", type=int, default=3600,
                    help="seconds from now to each Expiration")
    ap.add_argument("--log", help="request log file")
    ap.add_argument("--auth", help="Authorization the container endpoint wants")
    ap.add_argument("--role", default="cmkfs-test-role")
    ap.add_argument("--no-role", action="store_true",
                    help="the instance has no IAM role (404)")
    ap.add_argument("--code", default="Success", help="IMDS Code member")
    ap.add_argument("--malformed", action="store_true",
                    help="credentials answers are not JSON")
    ap.add_argument("--omit", action="append", default=[],
                    help="leave this member out of credentials answers")
    ap.add_argument("--time-style", choices=["z", "frac", "offset"],
                    default="z", help="how Expiration is written")
    ap.add_argument("--hang", type=float, default=0,
                    help="seconds to wait before answering anything")
    args = ap.parse_args()

    lock = threading.Lock()
    state = {"fetches": 0, "tokens": set()}
    log = open(args.log, "a", encoding="utf-8") if args.log else None

    def credentials(imds):
        with lock:
            state["fetches"] += 1
            n = state["fetches"]
        if args.malformed:
            return '{"AccessKeyId": "ASIAFAKE", "SecretAccessKey": '
        doc = {
            "AccessKeyId": "ASIAFAKE%012d" % n,
            "SecretAccessKey": "fakeSecretAccessKey/" + "x" * 20,
            "Token": "FakeSessionToken" + "t" * 300,
            "Expiration": expiration(args.lifetime, args.time_style),
        }
        if imds:
            doc = {"Code": args.code, "LastUpdated": expiration(0, "z"),
                   "Type": "AWS-HMAC", **doc}
        else:
            doc["RoleArn"] = "arn:aws:iam::111111111111:role/" + args.role
        for m in args.omit:
            doc.pop(m, None)
        return json.dumps(doc, indent=2)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):  # the request log is ours
            pass

        def answer(self, status, body, ctype="text/plain"):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if log:
                with lock:
                    log.write("%s %s %d\n" % (self.command, self.path, status))
                    log.flush()

        def drain(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n)

        def token_ok(self):
            with lock:
                return self.headers.get("X-aws-ec2-metadata-token") in state["tokens"]

        def do_PUT(self):
            self.drain()
            if args.hang:
                time.sleep(args.hang)
            if self.path != IMDS_TOKEN:
                return self.answer(404, "not found")
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.answer(400, "bad TTL")
            tok = secrets.token_urlsafe(40)
            with lock:
                state["tokens"].add(tok)
            return self.answer(200, tok)

        def do_GET(self):
            if args.hang:
                time.sleep(args.hang)
            if self.path.startswith(IMDS_ROLES):
                if not self.token_ok():
                    return self.answer(401, "")
                rest = self.path[len(IMDS_ROLES):]
                if args.no_role:
                    return self.answer(404, "not found")
                if rest == "":
                    return self.answer(200, args.role + "\n")
                if rest == args.role:
                    return self.answer(200, credentials(True), "application/json")
                return self.answer(404, "not found")
            if self.path == "/creds":
                if args.auth is not None and self.headers.get("Authorization") != args.auth:
                    return self.answer(401, '{"message":"bad token"}')
                return self.answer(200, credentials(False), "application/json")
            return self.answer(404, "not found")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
