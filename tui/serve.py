"""`fleetdeck serve`: the console (or the war room) in a browser, through textual-serve.

textual-serve runs one console process per browser tab and carries its screen over a
websocket. Around it, fleetdeck adds what a console that can change hosts needs:

- it listens on 127.0.0.1 unless told otherwise;
- every request needs the access token printed at start: in the URL (`?token=`), or in the
  cookie the first good request sets, which the page's own requests (static files, the
  websocket) then carry; anything else is refused with 403, and a websocket opened from
  another site's page (an Origin that is not this server) is refused too;
- the console runs `--read-only` unless `--allow-fixes` is given (the war room always is);
- the page loads nothing from the internet: textual-serve's page asks Google Fonts for its
  font, so fleetdeck serves its own copy of the page (serve_page/app_index.html) that uses the
  font file textual-serve ships in its static folder instead.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
import secrets
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from textual_serve.server import Server

PAGE = Path(__file__).parent / "serve_page"
COOKIE = "fleetdeck_token"
DEFAULT_PORT = 8000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TokenServer(Server):
    """textual-serve's server behind an access token, on loopback by default."""

    def __init__(self, command: str, token: str, host: str, port: int, title: str) -> None:
        super().__init__(command, host=host, port=port, title=title, templates_path=PAGE)
        self.token = token

    @property
    def url(self) -> str:
        """What to open: the server's address with the token."""
        return f"{self.public_url}/?token={self.token}"

    async def _make_app(self) -> web.Application:
        # textual-serve builds its aiohttp application here (a private method, the one place
        # where its routes exist but nothing runs yet): the guard goes in front of them all.
        app = await super()._make_app()
        app.middlewares.append(self.guard)
        return app

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Refuse (403) a request without the token, or a websocket from another origin."""
        given = request.query.get("token") or request.cookies.get(COOKIE) or ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            raise web.HTTPForbidden(
                text="fleetdeck serve: this needs the access token: open the URL that "
                "`fleetdeck serve` printed when it started\n"
            )
        origin = request.headers.get("Origin")
        if request.path == "/ws" and origin is not None and origin != self.public_url:
            raise web.HTTPForbidden(text=f"fleetdeck serve: websocket from {origin} refused\n")
        response = await handler(request)
        if "token" in request.query and not response.prepared:
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
        return response

    def initialize_logging(self) -> None:
        """One plain line per request on stderr, the token masked (textual-serve's rich
        tracebacks would print every local variable of a failing request)."""
        logging.basicConfig(level=logging.INFO, format="fleetdeck serve: %(message)s")
        token = self.token

        def masked(record: logging.LogRecord) -> bool:
            record.msg = str(record.msg).replace(token, "***")
            record.args = tuple(
                a.replace(token, "***") if isinstance(a, str) else a for a in record.args or ()
            )
            return True

        for handler in logging.getLogger().handlers:
            handler.addFilter(masked)

    async def on_startup(self, app: web.Application) -> None:
        """Nothing: textual-serve prints its banner here, before it listens."""

    def serve(self, debug: bool = False) -> None:
        """textual-serve's `serve`, saying where to go only once the port is listening (its
        own says so before binding, which may then fail)."""
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, self.request_exit)
        print(f"fleetdeck serve: each browser tab runs {self.command}", flush=True)
        web.run_app(
            self._make_app(),
            host=self.host,
            port=self.port,
            handle_signals=False,
            loop=loop,
            print=lambda *_: print(f"fleetdeck serve: open {self.url}", flush=True),
        )


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
    fleet_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    """`serve`'s options; `parents` and `fleet_options` give it the console's own (settings
    file, interval, inventory), without resetting those given before the command."""
    from fleetdeck.tui.wizard_cli import audit_option

    serve = commands.add_parser(
        "serve",
        parents=parents,
        help="the console in a browser, on 127.0.0.1 with an access token",
        description="Serve the console through textual-serve: one console per browser tab, "
        "read-only unless --allow-fixes. The URL with its access token is printed at start; "
        "requests without it are refused (403). The page loads nothing from the internet.",
    )
    serve.add_argument(
        "--war-room",
        "-w",
        action="store_true",
        default=argparse.SUPPRESS,  # `fleetdeck -w serve` keeps the one given before
        help="serve the war-room screen",
    )
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})"
    )
    serve.add_argument(
        "--bind",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address to listen on (default 127.0.0.1; anything else puts the console on the "
        "network over plain HTTP, guarded by the token alone)",
    )
    serve.add_argument(
        "--allow-fixes",
        action="store_true",
        help="let the served console apply fixes (each still confirmed and audited); "
        "ignored with --war-room",
    )
    fleet_options(serve)
    audit_option(serve, defaults=False)


def console_argv(args: argparse.Namespace) -> list[str]:
    """The console each browser tab runs: this Python, the options `serve` was given, and
    --read-only unless fixes are allowed."""
    argv = [sys.executable, "-m", "fleetdeck", "--interval", str(args.interval)]
    if args.config is not None:
        argv += ["--config", str(args.config)]
    if args.audit_log is not None:
        argv += ["--audit-log", str(args.audit_log)]
    for inventory in args.inventory or ():
        argv += ["--inventory", str(inventory)]
    if args.host:
        argv += ["--host", args.host]
    if args.tag:
        argv += ["--tag", args.tag]
    if args.inventory:
        argv += ["--known-hosts", str(args.known_hosts)]
    if args.accept_new:
        argv.append("--accept-new")
    if args.postgres:
        argv.append("--postgres")
    if args.prometheus is not None:  # a fleet watched through PromQL (given before `serve`)
        argv.append(f"--prometheus={args.prometheus}" if args.prometheus else "--prometheus")
    if args.war_room:
        argv.append("--war-room")
    if args.war_room or not args.allow_fixes:
        argv.append("--read-only")
    return argv


def run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        print(f"fleetdeck serve: no such port: {args.port}", file=sys.stderr)
        return 2
    command = shlex.join(console_argv(args))
    title = "fleetdeck war room" if args.war_room else "fleetdeck"
    server = TokenServer(command, secrets.token_urlsafe(24), args.bind, args.port, title)
    try:
        server.serve()
    except OSError as error:  # the port is taken, the address is not this machine's
        print(
            f"fleetdeck serve: cannot listen on {args.bind}:{args.port}: {error}", file=sys.stderr
        )
        return 2
    return 0
