#!/usr/bin/env python3
"""A loopback HTTP proxy in front of an S3 server that fails some requests.

Usage: fault_proxy.py LISTEN_PORT UPSTREAM_PORT EVERY [options]

Every EVERY-th request (1st, EVERY+1-th, ...; EVERY 0: none) is answered with a
failure instead of being forwarded, cycling through: 500 InternalError, 503
SlowDown, and a connection closed without any response. The rest are forwarded
as they are (the Host header included, so signatures still match what was
signed). Options:

  --log FILE                append "start SEQ METHOD PATH" when a request
                            arrives and "end SEQ METHOD PATH STATUS" when it is
                            answered (STATUS "dropped": closed unanswered), and
                            "outage start"/"outage end"
  --deny METHOD:TEXT        answer 403 AccessDenied to METHOD requests whose
                            path contains TEXT (METHOD * for any), repeatable
  --outage-after TEXT:N:S   after the N-th forwarded request whose path
                            contains TEXT was answered, drop every request for
                            S seconds (an outage), then forward again
  --exit-after TEXT:N       after the N-th forwarded request whose path
                            contains TEXT was answered, exit at once (a crash)
  --truncate METHOD:TEXT:N  the first N forwarded METHOD requests whose path
                            contains TEXT get half their body, then the
                            connection closes (a cut mid-transfer)
A request's Range header, when it has one, ends its "start" log line.
"""
import argparse
import http.client
import itertools
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("listen_port", type=int)
parser.add_argument("upstream_port", type=int)
parser.add_argument("every", type=int)
parser.add_argument("--log")
parser.add_argument("--deny", action="append", default=[])
parser.add_argument("--outage-after")
parser.add_argument("--exit-after")
parser.add_argument("--truncate")
args = parser.parse_args()

LISTEN_PORT, UPSTREAM_PORT, EVERY = args.listen_port, args.upstream_port, args.every
counter = itertools.count()
lock = threading.Lock()
FAULTS = [(500, "InternalError"), (503, "SlowDown"), None]
DENY = [tuple(d.split(":", 1)) for d in args.deny]
log_file = open(args.log, "a", buffering=1) if args.log else None


def log(line):
    if log_file:
        with lock:
            log_file.write(line + "\n")
            log_file.flush()


class Trigger:
    """Counts answered requests whose path contains a text; fires at the N-th."""

    def __init__(self, spec, fields):
        parts = spec.split(":") if spec else []
        self.text = parts[0] if parts else None
        self.count = int(parts[1]) if len(parts) > 1 else 0
        self.extra = float(parts[2]) if len(parts) > 2 and fields > 2 else 0.0
        self.seen = 0

    def hit(self, path):
        if self.text is None or self.text not in path:
            return False
        with lock:
            self.seen += 1
            return self.seen == self.count


outage = Trigger(args.outage_after, 3)
crash = Trigger(args.exit_after, 2)
outage_until = [0.0]
truncate = args.truncate.split(":") if args.truncate else None
truncate_left = [int(truncate[2]) if truncate else 0]


def in_outage():
    if outage_until[0] == 0.0:
        return False
    if time.monotonic() < outage_until[0]:
        return True
    outage_until[0] = 0.0
    log("outage end")
    return False


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer_error(self, status, code):
        xml = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(xml)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(xml)

    def drop(self, seq):
        log(f"end {seq} {self.command} {self.path} dropped")
        self.close_connection = True
        self.connection.close()

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with lock:
            n = next(counter)
        byte_range = self.headers.get("Range")
        log(f"start {n} {self.command} {self.path}" + (f" {byte_range}" if byte_range else ""))
        if in_outage():
            return self.drop(n)
        if EVERY > 0 and n % EVERY == 0:
            fault = FAULTS[(n // EVERY) % len(FAULTS)]
            if fault is None:
                return self.drop(n)
            self.answer_error(*fault)
            log(f"end {n} {self.command} {self.path} {fault[0]}")
            return
        for method, text in DENY:
            if method in ("*", self.command) and text in self.path:
                self.answer_error(403, "AccessDenied")
                log(f"end {n} {self.command} {self.path} 403")
                return
        upstream = http.client.HTTPConnection("127.0.0.1", UPSTREAM_PORT, timeout=60)
        headers = {k: v for k, v in self.headers.items()}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for k, v in response.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", response.getheader("Content-Length") if self.command == "HEAD"
                         else str(len(data)))
        self.end_headers()
        cut = False
        if truncate and truncate[0] == self.command and truncate[1] in self.path:
            with lock:
                cut = truncate_left[0] > 0
                truncate_left[0] -= 1 if cut else 0
        if cut:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            upstream.close()
            log(f"end {n} {self.command} {self.path} truncated {len(data) // 2}")
            self.close_connection = True
            self.connection.close()
            return
        # Logged before the client can see the answer: once it has, it may send
        # its next request, whose "start" must come after this "end".
        log(f"end {n} {self.command} {self.path} {response.status}")
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()
        upstream.close()
        if outage.hit(self.path):
            outage_until[0] = time.monotonic() + outage.extra
            log("outage start")
        if crash.hit(self.path):
            log("exit")
            os._exit(0)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.allow_reuse_address = True
ThreadingHTTPServer(("127.0.0.1", LISTEN_PORT), Proxy).serve_forever()
