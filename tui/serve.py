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
import secrets
import shlex
import sys
from collections.abc import Callable

DEFAULT_PORT = 8000


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
    from fleetdeck.tui.serve_server import TokenServer

    server = TokenServer(command, secrets.token_urlsafe(24), args.bind, args.port, title)
    try:
        server.serve()
    except OSError as error:  # the port is taken, the address is not this machine's
        print(
            f"fleetdeck serve: cannot listen on {args.bind}:{args.port}: {error}", file=sys.stderr
        )
        return 2
    return 0
