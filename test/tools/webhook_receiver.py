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
  /hold/NAME/...            no answer until GET /_release/NAME, then 200 (at once
                            once released): a sender in flight for as long as a
                            test needs

Anything after the mode is free (e.g. the subscription's name).  GET /_count
answers the number of requests recorded; GET /_connections the number of
connections that brought a POST (keep-alive: a sender that reuses its
connections opens few); GET /_reset forgets the attempt counts.

One process, asyncio: a thread per connection (http.server's
ThreadingHTTPServer) made the receiver, not the sender, the limit of the
throughput benchmark.  HTTP/1.1 with keep-alive; Content-Length bodies.

With --light the receiver neither checks signatures nor parses or logs
bodies: it only counts the requests and answers as the path asks, so that
a benchmark can tell the sender's limit from the receiver's.

Usage: webhook_receiver.py --port-file FILE --log FILE [--secret whsec_...] [--port N] [--light]
The chosen port is written to --port-file once the server listens.

Each log line: {"t": unix time, "path", "id", "timestamp", "signature_ok":
true | false | null (no secret given), "headers": {lower-case name: value},
"body": the parsed JSON body (or "raw": the text if not JSON), "answer": status,
"attempt": this id's attempt number on this mode, "peer": the client's port},
written when the request arrives (before a sleep).
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import time


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


class Receiver:
    def __init__(self, log_path, secret, light=False):
        self.log = open(log_path, "a", buffering=1)
        self.secret = secret
        self.light = light
        self.attempts = {}
        self.count = 0
        self.connections = 0
        self.gates = {}

    def gate(self, name):
        """The event that releases the answers to /hold/NAME."""
        return self.gates.setdefault(name, asyncio.Event())

    def behaviour(self, path, msg_id):
        """The answer the path asks for: (status, extra headers, seconds to wait)."""
        parts = [p for p in path.split("?")[0].split("/") if p]
        mode = parts[0] if parts else "ok"
        key = (mode, msg_id)
        attempt = self.attempts.get(key, 0) + 1
        self.attempts[key] = attempt
        try:
            if mode == "fail" and attempt <= int(parts[1]):
                return 500, [], 0, attempt
            if mode == "sleep":
                return 200, [], float(parts[1]), attempt
            if mode == "gone":
                return 410, [], 0, attempt
            if mode == "retry-after" and attempt <= int(parts[2]):
                return 429, [("Retry-After", parts[1])], 0, attempt
            if mode == "status":
                return int(parts[1]), [], 0, attempt
        except (IndexError, ValueError):
            return 400, [], 0, attempt
        return 200, [], 0, attempt

    def record(self, method, path, headers, body, peer, status, attempt):
        msg_id = headers.get("webhook-id")
        timestamp = headers.get("webhook-timestamp")
        rec = {
            "t": time.time(),
            "path": path,
            "peer": peer,
            "id": msg_id,
            "timestamp": timestamp,
            "attempt": attempt,
            "signature_ok": signature_ok(self.secret, msg_id, timestamp, body,
                                         headers.get("webhook-signature")),
            "headers": headers,
            "answer": status,
        }
        try:
            rec["body"] = json.loads(body)
        except ValueError:
            rec["raw"] = body.decode("utf-8", "replace")
        self.log.write(json.dumps(rec, sort_keys=True) + "\n")
        self.count += 1

    async def serve(self, reader, writer):
        """One connection: HTTP/1.1 requests until the client closes it."""
        peer = writer.get_extra_info("peername")[1]
        posted = False
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = h.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                close = headers.get("connection", "").lower() == "close"

                if method == "GET" and path == "/_count":
                    status, extra, out = 200, [], str(self.count).encode()
                elif method == "GET" and path == "/_connections":
                    status, extra, out = 200, [], str(self.connections).encode()
                elif method == "GET" and path == "/_reset":
                    self.attempts.clear()
                    status, extra, out = 200, [], b""
                elif method == "GET" and path.startswith("/_release/"):
                    self.gate(path[len("/_release/"):]).set()
                    status, extra, out = 200, [], b""
                elif method != "POST":
                    status, extra, out = 404, [], b""
                else:
                    if not posted:
                        posted = True
                        self.connections += 1
                    status, extra, wait, attempt = self.behaviour(path, headers.get("webhook-id"))
                    # recorded on arrival: a client that gives up still shows
                    if self.light:
                        self.count += 1
                    else:
                        self.record(method, path, headers, body, peer, status, attempt)
                    if wait:
                        await asyncio.sleep(wait)
                    parts = [p for p in path.split("?")[0].split("/") if p]
                    if len(parts) >= 2 and parts[0] == "hold":
                        await self.gate(parts[1]).wait()
                    out = b"answered %d\n" % status
                head = "HTTP/1.1 %d %s\r\nContent-Length: %d\r\n" % (
                    status, REASONS.get(status, "Status"), len(out))
                head += "".join("%s: %s\r\n" % h for h in extra)
                if close:
                    head += "Connection: close\r\n"
                writer.write(head.encode() + b"\r\n" + out)
                await writer.drain()
                if close:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass                        # the client gave up (a timeout) or spoke nonsense
        finally:
            writer.close()


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 410: "Gone",
           429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


async def run(args):
    receiver = Receiver(args.log, args.secret, args.light)
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", args.port, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, args.port_file)
    async with server:
        await server.serve_forever()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--secret")
    ap.add_argument("--light", action="store_true",
                    help="count requests only: no signature check, no log")
    args = ap.parse_args()
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
