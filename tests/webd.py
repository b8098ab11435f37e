"""A small real web server for the HTTP health and TLS tests, run inside a namespace host:

    python3 tests/webd.py --http PORT [--tls PORT:CHAIN:KEY ...]

On every port: /ok answers 200 "ok", /fail 503, /slow 200 after SLOW seconds, /moved 302 to
/ok, /denied 401; a TLS port serves the certificates of CHAIN (the leaf first, then whatever
intermediates the file holds: leaving one out is the "missing intermediate" story). It prints
"ready" once every port listens, and serves until killed.
"""

from __future__ import annotations

import argparse
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW = 1.0


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(SLOW)
        status, body, headers = {
            "/ok": (200, b"ok\n", {}),
            "/slow": (200, b"ok, slowly\n", {}),
            "/fail": (503, b"database unavailable\x1b[31m\n", {}),
            "/moved": (302, b"", {"Location": "/ok"}),
            "/denied": (401, b"who are you\n", {}),
        }.get(self.path, (404, b"not here\n", {}))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(port: int, context: ssl.SSLContext | None) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, action="append", default=[])
    parser.add_argument("--tls", action="append", default=[])
    args = parser.parse_args()
    for port in args.http:
        serve(port, None)
    for spec in args.tls:
        port, chain, key = spec.split(":")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, key)
        serve(int(port), context)
    print("ready", flush=True)
    sys.stdin.read() if not sys.stdin.isatty() else None
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
