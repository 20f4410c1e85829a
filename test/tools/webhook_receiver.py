#!/usr/bin/env python3
"""A loopback webhook receiver for the tests and benchmarks.

Records every request as one JSON line, checks Standard Webhooks signatures
with its own HMAC-SHA256 (Python's hmac, not the extension's code), and
answers as the request's path asks:

  /ok/...                   200
  /fail/N/...               500 to the first N attempts of each webhook-id, then 200
  /sleep/S/...              wait S seconds, then 200 (a client timeout)
  /gone/...                 410 Gone
  /retry-after/S/N/...      429 with Retry-After: S to the first N attempts of each id, then 200
  /status/CODE/...          CODE

Anything after the mode is free (e.g. the subscription's name).  GET /_count
answers the number of requests recorded; GET /_reset forgets the attempt
counts.

Usage: webhook_receiver.py --port-file FILE --log FILE [--secret whsec_...] [--port N]
The chosen port is written to --port-file once the server listens.

Each log line: {"t": unix time, "path", "id", "timestamp", "signature_ok":
true | false | null (no secret given), "headers": {lower-case name: value},
"body": the parsed JSON body (or "raw": the text if not JSON), "answer": status,
"attempt": this id's attempt number on this mode, "peer": the client's port}.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def signature_ok(secret, msg_id, timestamp, body, header):
    """Standard Webhooks: v1,<base64 HMAC-SHA256(key, id.timestamp.body)>, key = base64 after whsec_."""
    if secret is None:
        return None
    if header is None or msg_id is None or timestamp is None:
        return False
    key = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret)
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # a header may carry several space-separated signatures
    for sig in header.split(" "):
        version, _, value = sig.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


class State:
    def __init__(self, log_path, secret):
        self.lock = threading.Lock()
        self.log = open(log_path, "a", buffering=1)
        self.secret = secret
        self.attempts = {}
        self.count = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"       # keep-alive
    # one write per response, sent at once: no 40 ms Nagle/delayed-ACK stall
    wbufsize = -1
    disable_nagle_algorithm = True
    state = None

    def log_message(self, fmt, *args):  # quiet
        pass

    def answer(self, status, extra_headers=(), body=b""):
        self.send_response(status)
        for name, value in extra_headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):
        st = self.state
        if self.path == "/_count":
            with st.lock:
                n = st.count
            self.answer(200, [("Content-Type", "text/plain")], str(n).encode())
        elif self.path == "/_reset":
            with st.lock:
                st.attempts.clear()
            self.answer(200)
        else:
            self.answer(404)

    def do_POST(self):
        st = self.state
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        msg_id = self.headers.get("webhook-id")
        timestamp = self.headers.get("webhook-timestamp")
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        mode = parts[0] if parts else "ok"

        with st.lock:
            attempt = st.attempts.get((mode, msg_id), 0) + 1
            st.attempts[(mode, msg_id)] = attempt

        status, extra = 200, []
        try:
            if mode == "fail" and attempt <= int(parts[1]):
                status = 500
            elif mode == "sleep":
                time.sleep(float(parts[1]))
            elif mode == "gone":
                status = 410
            elif mode == "retry-after" and attempt <= int(parts[2]):
                status, extra = 429, [("Retry-After", parts[1])]
            elif mode == "status":
                status = int(parts[1])
        except (IndexError, ValueError):
            status = 400

        record = {
            "t": time.time(),
            "path": self.path,
            "peer": self.client_address[1],
            "id": msg_id,
            "timestamp": timestamp,
            "attempt": attempt,
            "signature_ok": signature_ok(st.secret, msg_id, timestamp, body,
                                         self.headers.get("webhook-signature")),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "answer": status,
        }
        try:
            record["body"] = json.loads(body)
        except ValueError:
            record["raw"] = body.decode("utf-8", "replace")
        line = json.dumps(record, sort_keys=True)
        with st.lock:
            st.log.write(line + "\n")
            st.count += 1
        try:
            self.answer(status, extra, b"answered %d\n" % status)
        except (BrokenPipeError, ConnectionResetError):
            pass                        # the client gave up (timeout)


class Server(ThreadingHTTPServer):
    # listen()'s backlog: many clients connect at once
    request_queue_size = 1024
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--secret")
    args = ap.parse_args()

    Handler.state = State(args.log, args.secret)
    server = Server(("127.0.0.1", args.port), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
