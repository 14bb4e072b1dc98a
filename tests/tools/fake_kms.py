#!/usr/bin/python3
"""fake_kms.py — a fault-injecting stand-in for KMS, to test the client's
retries and error parsing (it checks no signatures: cmkfs-kmsd does that).

Each request gets the next answer from --script (a comma-separated list);
the last one repeats.  Answers:
  ok            200 {"Keys":[],"Truncated":false}
  503 / 500     that status, {"__type":"ServiceUnavailableException"...}
  429           429 ThrottlingException
  throttle-ns   400, __type "com.amazonaws.kms#ThrottlingException"
  throttle-hdr  400, type only in X-Amzn-ErrorType ("ThrottlingException:http://...")
  denied        400 AccessDeniedException with a capital-M "Message"
  drop          close the connection without answering
  slow          answer ok after --slow seconds
Prints the port on its first line; appends one line per request to --log
(the X-Amz-Target and whether an Authorization header was present).

usage: fake_kms.py --script LIST [--log FILE] [--slow SECONDS]
"""
import argparse
import http.server
import json
import socketserver
import sys
import time

args = None
count = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", f"fake-{count}")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        global count
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        script = args.script.split(",")
        step = script[min(count, len(script) - 1)]
        count += 1
        if args.log:
            with open(args.log, "a") as f:
                f.write(f"{self.headers.get('X-Amz-Target')} "
                        f"auth={'Authorization' in self.headers} "
                        f"token={'X-Amz-Security-Token' in self.headers}\n")
        if step == "ok":
            self.answer(200, {"Keys": [], "Truncated": False})
        elif step in ("500", "503"):
            self.answer(int(step), {"__type": "ServiceUnavailableException",
                                    "message": "try later"})
        elif step == "429":
            self.answer(429, {"__type": "ThrottlingException", "message": "slow down"})
        elif step == "throttle-ns":
            self.answer(400, {"__type": "com.amazonaws.kms#ThrottlingException",
                              "message": "rate exceeded"})
        elif step == "throttle-hdr":
            self.answer(400, {"message": "rate exceeded"},
                        [("X-Amzn-ErrorType", "ThrottlingException:http://internal.amazon.com/")])
        elif step == "denied":
            self.answer(400, {"__type": "AccessDeniedException",
                              "Message": "User: arn:aws:iam::1:role/x is not authorized"})
        elif step == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
        elif step == "slow":
            time.sleep(args.slow)
            self.answer(200, {"Keys": [], "Truncated": False})
        else:
            sys.exit(f"fake_kms: unknown step {step}")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--script", required=True)
    p.add_argument("--log")
    p.add_argument("--slow", type=float, default=5)
    args = p.parse_args()
    srv = Server(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
