"""`fleetdeck serve`'s server: textual-serve's, behind the access token (see `tui/serve.py`
for what it guards and why). Kept apart from the command's options so that building the
command line, which every start of fleetdeck does, imports neither aiohttp nor textual-serve.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from textual_serve.server import Server

PAGE = Path(__file__).parent / "serve_page"
COOKIE = "fleetdeck_token"
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
