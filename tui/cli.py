"""The `fleetdeck` command: the console by default, `check` for a headless run.

The headless paths import neither Textual nor the screens, so `check` starts fast and runs
where there is no terminal at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import traceback
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from fleetdeck.checks.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from fleetdeck.checks.runner import Report
    from fleetdeck.hosts.inventory.records import HostSpec, Inventory
    from fleetdeck.hosts.postgres.targets import PgTarget


def _version() -> str:
    try:
        return version("fleetdeck")
    except PackageNotFoundError:
        return "0+unknown"


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError("interval must be between 0.1 and 3600 seconds")
    return value


def _common(defaults: bool) -> argparse.ArgumentParser:
    """Options that may stand before or after the command. The command's copies default to
    SUPPRESS, so `fleetdeck --config X check` keeps X instead of resetting it."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        default=None if defaults else argparse.SUPPRESS,
        metavar="FILE",
        help="settings file (default: config.toml in the user config dir)",
    )
    common.add_argument(
        "--interval",
        type=_interval,
        default=1.0 if defaults else argparse.SUPPRESS,
        metavar="SECONDS",
        help="seconds between samples (default 1)",
    )
    return common


def build_parser(words: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line; given the words to parse, without the wizards' options
    (and the wizards' imports) unless the words may name the `wizard` command: the help of
    another command, or the commands' list, shows none of them."""
    parser = argparse.ArgumentParser(
        prog="fleetdeck",
        description="Terminal operations console: live resources, findings and alerts.",
        parents=[_common(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"fleetdeck {_version()}")
    _fleet_options(parser)
    parser.add_argument(
        "--read-only", action="store_true", help="never change anything (war-room screens)"
    )
    parser.add_argument(
        "-w",
        "--war-room",
        action="store_true",
        help="the war-room screen: incidents, alerts, fleet and latest actions, rotating on a "
        "timer; always read-only",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="without an inventory: watch this machine's PostgreSQL too (the database pane "
        "and wizard), the libpq way (PG* variables, the default socket, ~/.pgpass); with one, "
        "each host's [[host.postgres]] targets are watched anyway",
    )
    parser.add_argument(
        "--prometheus",
        nargs="?",
        const="",
        metavar="URL",
        help="watch the hosts this Prometheus scrapes node_exporter on, through PromQL "
        "(without URL: the settings' first [[sources.prometheus]]); inventory hosts keep SSH "
        "for wizards and fixes",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser(
        "check",
        parents=[_common(defaults=False)],
        help="run the checks once and exit 0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN (Nagios)",
        description="Run every check once on this machine and report. Exit status follows "
        "the Nagios plugin convention: 0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN (usage mistakes "
        "too). CPU is a rate: it is measured over --interval and graded only when that "
        "covers the CPU window (60 s by default); shorter runs report it ungraded. "
        "The storage checks use the [storage] settings for each host. The PostgreSQL "
        "targets an inventory host lists are checked through its SSH connection; a "
        "database that cannot be reached is that target's db.reachable CRIT. The "
        "container checks ask each host's Docker engine (the inventory's docker endpoint, "
        "else the default); a host with no Docker is OK.",
    )
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    from fleetdeck.checks.catalog import DOMAINS

    for domain in DOMAINS:
        if domain.switch is not None:
            check.add_argument(f"--no-{domain.name}", action="store_true", help=domain.switch)
    check.add_argument(
        "--postgres",
        action="store_true",
        help="without an inventory: check this machine's PostgreSQL too, the libpq way (PG* "
        "variables, the default socket, ~/.pgpass or PGPASSFILE); with one, each host's "
        "[[host.postgres]] targets are checked anyway. Thresholds: [thresholds.database]",
    )
    _fleet_options(check, defaults=False)
    hosts = commands.add_parser(
        "hosts",
        help="list the hosts an inventory resolves to",
        description="Read the inventories (fleetdeck TOML, ssh_config, Ansible INI or YAML; "
        "the format is detected) and list the hosts as fleetdeck will reach them.",
    )
    hosts.add_argument(
        "-i",
        "--inventory",
        type=Path,
        action="append",
        required=True,
        metavar="FILE",
        help="an inventory file; repeat for more",
    )
    hosts.add_argument("--json", action="store_true", help="print JSON instead of a table")
    from fleetdeck.tui.wizard_cli import add_parsers, audit_option, tier_option

    audit_option(parser)
    tier_option(parser)
    wizards = words is None or "wizard" in words
    add_parsers(commands, lambda p: _fleet_options(p, defaults=True), wizards)
    from fleetdeck.tui import incident_cli

    incident_cli.add_parsers(commands)
    from fleetdeck.tui import serve

    serve.add_parser(commands, [_common(defaults=False)], lambda p: _fleet_options(p, False))
    return parser


def _fleet_options(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    """The inventory options; on `check` they default to SUPPRESS like `_common`'s."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "-i",
        "--inventory",
        type=Path,
        action="append",
        default=default(None),
        metavar="FILE",
        help="watch (or check) the hosts of this inventory over SSH; repeatable",
    )
    parser.add_argument(
        "--host", default=default(None), metavar="NAME", help="only this host of the inventory"
    )
    parser.add_argument(
        "--tag", default=default(None), metavar="TAG", help="only hosts with this tag or group"
    )
    parser.add_argument(
        "--known-hosts",
        type=Path,
        default=default(Path("~/.ssh/known_hosts")),
        metavar="FILE",
        help="host keys to trust (default ~/.ssh/known_hosts); unknown keys are refused",
    )
    parser.add_argument(
        "--accept-new",
        action="store_true",
        default=default(False),
        help="add unknown host keys to the known_hosts file (changed keys are still refused)",
    )


def run_hosts(args: argparse.Namespace) -> int:
    from fleetdeck.checks.model import aligned
    from fleetdeck.hosts.inventory.load import load_inventory
    from fleetdeck.hosts.inventory.records import InventoryError

    try:
        inventory = load_inventory(args.inventory)
    except InventoryError as error:
        for problem in error.problems:
            print(f"fleetdeck: {problem}", file=sys.stderr)
        return 2
    for warning in inventory.warnings:
        print(f"fleetdeck: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps([_host_json(h) for h in inventory.hosts], indent=2))
        return 0
    rows = [("NAME", "ADDRESS", "PORT", "USER", "JUMP", "TIER", "TAGS/GROUPS", "POSTGRES", "FROM")]
    for h in inventory.hosts:
        rows.append(
            (h.name, h.address, str(h.port), h.user or "-", h.jump or "-", h.tier or "-",
             ",".join(h.labels) or "-", ",".join(t.label for t in h.postgres) or "-",
             str(h.origin or "-"))
        )  # fmt: skip
    print("\n".join(aligned(rows)))
    return 0


def _host_json(h: HostSpec) -> dict[str, object]:
    return {
        "name": h.name,
        "address": h.address,
        "port": h.port,
        "user": h.user,
        "jump": h.jump,
        "identity_files": list(h.identity_files),
        "tags": list(h.tags),
        "groups": list(h.groups),
        "tier": h.tier,
        "source": str(h.origin) if h.origin else None,
        "postgres": [_pg_json(t) for t in h.postgres],
    }


def _pg_json(target: PgTarget) -> dict[str, object]:
    """A target as the inventory gives it: the *name* of a password variable, never a value
    (the inventory holds no password)."""
    return {
        "name": target.name,
        "label": target.label,
        "host": target.host,
        "port": target.port,
        "dbname": target.dbname,
        "user": target.user,
        "service": target.service,
        "sslmode": target.sslmode,
        "password_env": target.password_env,
    }


def _load(path: Path | None) -> Config:
    return load_config(path, required=path is not None)


def _skipped(args: argparse.Namespace) -> frozenset[str]:
    """The domains `check` leaves out: those whose `--no-NAME` switch is given, and those
    that switch also turns off (`--no-storage` leaves out the container checks too)."""
    from fleetdeck.checks.catalog import DOMAINS

    off = {d.name for d in DOMAINS if getattr(args, f"no_{d.name}", False)}
    return frozenset(d.name for d in DOMAINS if d.name in off or off & set(d.also_off_with))


def run_check(args: argparse.Namespace) -> int:
    from fleetdeck.checks.runner import Report, check_local, to_json, to_table

    try:
        config = _load(args.config)
    except ConfigError as error:
        print(f"fleetdeck: {error}", file=sys.stderr)
        return 3
    if args.inventory:
        report = _check_inventory(args, config)
        if report is None:
            return 3
    else:
        host = socket.gethostname()
        checked = check_local(host, config, args.interval, args.postgres, _skipped(args))
        report = Report((asyncio.run(checked),))
    print(to_json(report) if args.json else to_table(report))
    return report.exit_code


def _selected(args: argparse.Namespace) -> tuple[Inventory, tuple[HostSpec, ...]] | None:
    """The inventory and the hosts the options pick; problems printed, None if unusable."""
    from fleetdeck.hosts.inventory.load import load_inventory
    from fleetdeck.hosts.inventory.records import InventoryError

    try:
        inventory = load_inventory(args.inventory)
    except InventoryError as error:
        for problem in error.problems:
            print(f"fleetdeck: {problem}", file=sys.stderr)
        return None
    for warning in inventory.warnings:
        print(f"fleetdeck: warning: {warning}", file=sys.stderr)
    hosts = inventory.select(args.host, args.tag)
    if not hosts:
        wanted = f"host {args.host!r}" if args.host else f"tag {args.tag!r}"
        print(f"fleetdeck: no {wanted} in the inventory", file=sys.stderr)
        return None
    return inventory, hosts


def _check_inventory(args: argparse.Namespace, config: Config) -> Report | None:
    from fleetdeck.checks.runner import check_fleet
    from fleetdeck.hosts.ssh import SSHOptions

    selected = _selected(args)
    if selected is None:
        return None
    inventory, hosts = selected
    options = SSHOptions(known_hosts=args.known_hosts, accept_new=args.accept_new)
    fleet = check_fleet(inventory, hosts, options, config, args.interval, _skipped(args))
    return asyncio.run(fleet)


def _raise_fd_limit() -> None:
    """One socket per host: a fleet of a thousand needs more than the usual 1024 fds."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))


def run_console(args: argparse.Namespace) -> int:
    try:
        config = _load(args.config)
    except ConfigError as error:
        print(
            f"fleetdeck: {error}\nfleetdeck: not starting on a broken configuration.",
            file=sys.stderr,
        )
        return 2
    from fleetdeck.tui.app import Settings, make_app, make_fleet_app

    # Textual sizes the screen with shutil.get_terminal_size, which believes COLUMNS and LINES
    # over the terminal. Exported ones (some shells, sudo and CI setups) would pin the console
    # to its first size and ignore every resize; the terminal itself always knows better.
    # Under `fleetdeck serve` there is no terminal: COLUMNS is the browser's width, which
    # textual-serve hands its web driver that way.
    if "TEXTUAL_DRIVER" not in os.environ:
        for name in ("COLUMNS", "LINES"):
            os.environ.pop(name, None)

    settings = Settings(
        interval=args.interval,
        read_only=args.read_only or args.war_room,
        audit_log=args.audit_log,
        postgres=args.postgres,
        war_room=args.war_room,
    )
    if args.prometheus is not None:
        from fleetdeck.tui.prom_fleet import run_prom_console

        chosen = _selected(args) if args.inventory else None
        if args.inventory and chosen is None:
            return 2
        return run_prom_console(args, config, settings, chosen[0] if chosen else None)
    if args.inventory:
        from fleetdeck.hosts.ssh import SSHOptions

        selected = _selected(args)
        if selected is None:
            return 2
        inventory, hosts = selected
        _raise_fd_limit()
        options = SSHOptions(known_hosts=args.known_hosts, accept_new=args.accept_new)
        app = make_fleet_app(settings, config, inventory, hosts, options)
    else:
        app = make_app(settings, config, socket.gethostname())
    app.run()
    return app.return_code or 0


def main(argv: list[str] | None = None) -> int:
    """The command line; everything it prints has control characters escaped."""
    from fleetdeck.tui.terminal import escaped_output

    with escaped_output():
        try:
            return _main(argv)
        except Exception:
            # Python prints a traceback after the streams are put back, raw: one whose
            # message holds a host's or a file's text must be escaped like the rest.
            traceback.print_exc()
            return 1  # Python's own exit status for an uncaught exception


def _main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser(words).parse_args(words)
    except SystemExit as done:
        # A usage mistake is argparse's exit 2, which Nagios reads as CRITICAL: `check`
        # exits 3 (UNKNOWN) instead, so a typo in a monitoring command pages nobody.
        if done.code == 2 and ("check" in words or "wizard" in words):
            raise SystemExit(3) from None
        raise
    if args.command == "check":
        return run_check(args)
    if args.command == "hosts":
        return run_hosts(args)
    if args.command in ("alerts", "incident", "report"):
        from fleetdeck.tui.incident_cli import run

        return run(args)
    if args.command == "serve":
        from fleetdeck.tui import serve

        return serve.run(args)
    if args.command == "audit":
        from fleetdeck.tui.wizard_cli import run_audit

        return run_audit(args)
    if args.command == "wizard":
        from fleetdeck.tui.wizard_cli import run_wizard

        try:
            config = _load(args.config)
        except ConfigError as error:
            print(f"fleetdeck: {error}", file=sys.stderr)
            return 3
        return run_wizard(args, config)
    return run_console(args)


if __name__ == "__main__":
    sys.exit(main())
