#!/usr/bin/env python3
"""A loopback HTTP proxy in front of an S3 server that fails some requests.

Usage: fault_proxy.py LISTEN_PORT UPSTREAM_PORT EVERY
Every EVERY-th request (1st, EVERY+1-th, ...) is answered with a failure
instead of being forwarded, cycling through: 500 InternalError, 503 SlowDown,
and a connection closed without any response. The rest are forwarded as they
are (the Host header included, so signatures still match what was signed).
"""
import http.client
import itertools
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LISTEN_PORT, UPSTREAM_PORT, EVERY = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
counter = itertools.count()
lock = threading.Lock()
FAULTS = [(500, "InternalError"), (503, "SlowDown"), None]


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with lock:
            n = next(counter)
        if n % EVERY == 0:
            fault = FAULTS[(n // EVERY) % len(FAULTS)]
            if fault is None:
                self.close_connection = True
                self.connection.close()
                return
            status, code = fault
            xml = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(xml)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(xml)
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
        if self.command != "HEAD":
            self.wfile.write(data)
        upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", LISTEN_PORT), Proxy).serve_forever()
