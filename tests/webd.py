"""A small real web server for the HTTP health, TLS and security tests, run inside a
namespace host:

    python3 tests/webd.py --http PORT [--tls PORT:CHAIN:KEY ...] [--access-log PATH]

On every port: /ok answers 200 "ok", /fail 503, /slow 200 after SLOW seconds, /moved 302 to
/ok, /denied 401; with --access-log each request is written there in the combined format, as
nginx does. A TLS port serves the certificates of CHAIN (the leaf first, then whatever
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
ACCESS_LOG: str | None = None
LOCK = threading.Lock()


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

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Each request in the combined log format, as nginx writes it, when asked to."""
        if ACCESS_LOG is None:
            return
        when = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
        line = f'{self.client_address[0]} - - [{when}] "{self.requestline}" {code} {size} "-" "-"\n'
        with LOCK, open(ACCESS_LOG, "a") as log:
            log.write(line)


def serve(port: int, context: ssl.SSLContext | None) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, action="append", default=[])
    parser.add_argument("--tls", action="append", default=[])
    parser.add_argument("--access-log")
    args = parser.parse_args()
    global ACCESS_LOG
    ACCESS_LOG = args.access_log
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
