"""`fleetdeck alerts`, `fleetdeck incident` and `fleetdeck report incident`: the state
database from the command line (headless: no Textual). Who acted is the OS user unless
`--who` says otherwise; every command names the database it used in its errors.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from fleetdeck.checks.config import ConfigError, load_config
from fleetdeck.checks.incidents.alertlog import AckError, acknowledge, counts, stored_alerts
from fleetdeck.checks.incidents.board import UNREADABLE, BoardAlert, board_alerts
from fleetdeck.checks.incidents.config import IncidentSettings, parse_duration
from fleetdeck.checks.incidents.incidents import (
    IncidentError,
    IncidentStatus,
    add_note,
    list_incidents,
    open_incident,
    set_status,
    update_incident,
)
from fleetdeck.checks.incidents.report import build_report, render_markdown
from fleetdeck.checks.incidents.silences import (
    MatcherError,
    add_silence,
    expire_silence,
    maintenance_matcher,
    silences,
)
from fleetdeck.checks.incidents.store import Store, StoreError, state_path
from fleetdeck.checks.model import aligned
from fleetdeck.checks.settings import value_error
from fleetdeck.hosts.prometheus.http import HttpSource
from fleetdeck.hosts.units import human_duration
from fleetdeck.tui.alert_sources import alertmanager_sources
from fleetdeck.tui.wizard_cli import audit_option, since_time

_STATUSES = [s.value for s in IncidentStatus if s is not IncidentStatus.OPENED]


def _state_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="the state database (default: $FLEETDECK_STATE_DB, [alerts] state, or state.db "
        "in fleetdeck's data directory)",
    )
    parser.add_argument("--who", help="who acts (default: the OS user)")


def _duration(text: str) -> float:
    try:
        return parse_duration(text, "--for", value_error)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alerts = commands.add_parser(
        "alerts",
        help="alerts kept in the state database: list, acknowledge, silence",
        description="List the alerts every console on this machine recorded, with their "
        "state (firing, flapping, acknowledged, pending, silenced) and how many are silenced; "
        "then every [[sources.alertmanager]]'s alerts with their source (silenced ones too; a "
        "source that cannot be read is one line naming it).",
    )
    _state_options(alerts)
    alerts.add_argument("--json", action="store_true", help="print JSON")
    alerts.add_argument("--all", action="store_true", help="resolved alerts too")
    verbs = alerts.add_subparsers(dest="verb", metavar="VERB")
    ack = verbs.add_parser("ack", help="acknowledge an alert: who, when, a note")
    ack.add_argument("id", type=int, help="the alert's id (fleetdeck alerts)")
    ack.add_argument("--note", default="", help="why, or what is being done")
    _state_options(ack)
    silence = verbs.add_parser(
        "silence", help="silence the alerts a matcher covers for a while (counted, not hidden)"
    )
    silence.add_argument("matcher", help="e.g. host=web1,check=~disk\\..*")
    silence.add_argument(
        "--for",
        dest="duration",
        type=_duration,
        required=True,
        metavar="DURATION",
        help="how long: 90s, 30m, 2h, 1d",
    )
    silence.add_argument("--comment", default="", help="why")
    _state_options(silence)
    window = verbs.add_parser("maintenance", help="a maintenance window on a host or a group")
    target = window.add_mutually_exclusive_group(required=True)
    target.add_argument("--host")
    target.add_argument("--group", help="an inventory tag or group")
    window.add_argument(
        "--start", type=since_time, metavar="WHEN", help="an ISO time (default: now)"
    )
    window.add_argument("--for", dest="duration", type=_duration, required=True, metavar="DURATION")
    window.add_argument("--comment", default="", help="what the work is")
    _state_options(window)
    expire = verbs.add_parser("expire", help="end a silence or maintenance window now")
    expire.add_argument("id", type=int)
    _state_options(expire)
    listing = verbs.add_parser("silences", help="list silences and maintenance windows")
    listing.add_argument("--json", action="store_true")
    _state_options(listing)

    incident = commands.add_parser(
        "incident",
        help="incidents: open, note, status, update, list (runbook I1, I2)",
        description="Incidents in the state database. Statuses follow runbook I2: "
        + ", ".join(_STATUSES),
    )
    steps = incident.add_subparsers(dest="verb", metavar="VERB", required=True)
    opening = steps.add_parser("open", help="open an incident from alerts or hosts")
    opening.add_argument("title")
    opening.add_argument("--severity", default="P3", help="P1 to P4 (default P3)")
    opening.add_argument("--alert", type=int, action="append", default=[], metavar="ID")
    opening.add_argument("--host", action="append", default=[])
    opening.add_argument("--owner")
    opening.add_argument("--impact", default="", help="who or what is affected")
    _state_options(opening)
    note = steps.add_parser("note", help="add a note (or a follow-up with --followup)")
    note.add_argument("id", type=int)
    note.add_argument("text")
    note.add_argument("--followup", action="store_true", help="a follow-up for the report")
    _state_options(note)
    status = steps.add_parser("status", help="move to an I2 step")
    status.add_argument("id", type=int)
    status.add_argument("status", choices=_STATUSES)
    status.add_argument("--note", default="")
    _state_options(status)
    update = steps.add_parser("update", help="severity, owner, impact, more hosts or alerts")
    update.add_argument("id", type=int)
    update.add_argument("--severity")
    update.add_argument("--owner")
    update.add_argument("--impact")
    update.add_argument("--alert", type=int, action="append", default=[], metavar="ID")
    update.add_argument("--host", action="append", default=[])
    _state_options(update)
    listed = steps.add_parser("list", help="list incidents, open ones first")
    listed.add_argument("--open", action="store_true", help="open ones only")
    listed.add_argument("--json", action="store_true")
    _state_options(listed)

    report = commands.add_parser("report", help="reports: the post-incident report (I4)")
    kinds = report.add_subparsers(dest="verb", metavar="KIND", required=True)
    post = kinds.add_parser("incident", help="the post-incident report of one incident")
    post.add_argument("id", type=int)
    post.add_argument("--format", choices=("md", "json"), default="md")
    post.add_argument("--output", type=Path, metavar="FILE", help="write here, not stdout")
    audit_option(post, defaults=False)
    _state_options(post)


def run(args: argparse.Namespace) -> int:
    """Run `alerts`, `incident` or `report`; errors are one line naming the file, exit 1."""
    try:
        config = load_config(args.config, required=args.config is not None)
    except ConfigError as error:
        print(f"fleetdeck: {error}", file=sys.stderr)
        return 3
    settings = config.incidents
    try:
        store = Store(state_path(args.state or settings.state))
    except StoreError as error:
        print(f"fleetdeck: {error}", file=sys.stderr)
        return 1
    who = args.who or _user()
    try:
        if args.command == "alerts":
            return _alerts(args, store, settings, who, config.sources.alertmanager)
        if args.command == "incident":
            return _incident(args, store, who)
        return _report(args, store, settings)
    except (StoreError, AckError, MatcherError, IncidentError) as error:
        print(f"fleetdeck: {error}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _alerts(
    args: argparse.Namespace,
    store: Store,
    settings: IncidentSettings,
    who: str,
    sources: Sequence[HttpSource] = (),
) -> int:
    """The alerts verbs; the listing adds every `[[sources.alertmanager]]`'s alerts."""
    if args.verb == "ack":
        acknowledge(store, args.id, who, args.note)
        print(f"alert {args.id} acknowledged by {who}")
        return 0
    if args.verb in ("silence", "maintenance"):
        kind = "silence" if args.verb == "silence" else "maintenance"
        matcher = args.matcher if kind == "silence" else maintenance_matcher(args.host, args.group)
        start = args.start.timestamp() if getattr(args, "start", None) else None
        made = add_silence(
            store, matcher, args.duration, who, args.comment, kind=kind, starts_at=start
        )
        print(f"{kind} {made.id}: {made.text} for {human_duration(args.duration)}")
        return 0
    if args.verb == "expire":
        if not expire_silence(store, args.id, who):
            print(f"fleetdeck: no silence {args.id} still running in {store.path}", file=sys.stderr)
            return 1
        print(f"silence {args.id} expired")
        return 0
    now = time.time()
    if args.verb == "silences":
        found = silences(store, now)
        if args.json:
            print(
                json.dumps(
                    [
                        {
                            "id": s.id,
                            "kind": s.kind,
                            "matcher": s.text,
                            "starts_at": s.starts_at,
                            "ends_at": s.ends_at,
                            "who": s.who,
                            "comment": s.comment,
                        }
                        for s in found
                    ],
                    indent=2,
                )
            )
            return 0
        rows = [["ID", "KIND", "MATCHER", "ENDS IN", "BY", "COMMENT"]]
        rows += [
            [str(s.id), s.kind, s.text, human_duration(s.ends_at - now), s.who, s.comment]
            for s in found
        ]
        print("\n".join(aligned(rows)) if found else "no silences")
        return 0
    alerts = stored_alerts(
        store, flap_count=settings.flap_count, now=now, include_resolved=args.all
    )
    tally = counts(alerts)
    others = asyncio.run(board_alerts([], alertmanager_sources(sources), now)) if sources else []
    if args.json:
        listed = {"alerts": [a.to_json() for a in alerts], "counts": tally}
        print(json.dumps({**listed, "sources": [_source_json(a) for a in others]}, indent=2))
        return 0
    rows = [["ID", "STATE", "SEV", "HOST", "CHECK", "TARGET", "SINCE", "SUMMARY"]]
    for a in alerts:
        rows.append(
            [
                str(a.id),
                a.shown,
                a.severity,
                a.host,
                a.check,
                a.target,
                human_duration(now - a.active_since),
                a.summary,
            ]
        )
    if alerts:
        print("\n".join(aligned(rows)))
    said = [f"{n} {state}" for state, n in tally.items() if n]
    print(", ".join(said) if said else "no alerts")
    if others:
        _print_sources(others, now)
    return 0


def _source_json(alert: BoardAlert) -> dict[str, object]:
    return {
        "source": alert.source,
        "host": alert.host,
        "alert": alert.name,
        "severity": alert.severity,
        "state": alert.state,
        "since": alert.since,
        "summary": alert.summary,
    }


def _print_sources(alerts: Sequence[BoardAlert], now: float) -> None:
    """The other engines' alerts, after fleetdeck's own: silenced ones listed and counted; a
    source that could not be read is its line (`source unreadable`, UNKNOWN, why)."""
    rows = [["SOURCE", "STATE", "SEV", "HOST", "ALERT", "SINCE", "SUMMARY"]]
    rows += [
        [a.source, a.state, a.severity, a.host, a.name, human_duration(now - a.since), a.summary]
        for a in alerts
    ]
    print()
    print("\n".join(aligned(rows)))
    unread = sum(1 for a in alerts if a.name == UNREADABLE)
    silenced = sum(1 for a in alerts if a.state == "silenced")
    said = f"{len(alerts) - unread - silenced} firing, {silenced} silenced"
    print(said + (f", {unread} source(s) unreadable" if unread else ""))


def _incident(args: argparse.Namespace, store: Store, who: str) -> int:
    if args.verb == "open":
        made = open_incident(
            store,
            args.title,
            args.severity,
            who,
            hosts=args.host,
            alert_ids=args.alert,
            owner=args.owner,
            impact=args.impact,
        )
        print(f"incident {made.id} opened ({made.severity}): {made.title}")
        return 0
    if args.verb == "note":
        add_note(store, args.id, who, args.text, kind="followup" if args.followup else "note")
        print(f"incident {args.id}: {'follow-up' if args.followup else 'note'} added")
        return 0
    if args.verb == "status":
        changed = set_status(store, args.id, args.status, who, args.note)
        print(f"incident {changed.id} is {changed.status.value}")
        return 0
    if args.verb == "update":
        update_incident(
            store,
            args.id,
            who,
            severity=args.severity,
            owner=args.owner,
            impact=args.impact,
            hosts=args.host,
            alert_ids=args.alert,
        )
        print(f"incident {args.id} updated")
        return 0
    found = list_incidents(store, open_only=args.open)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": i.id,
                        "title": i.title,
                        "severity": i.severity,
                        "status": i.status.value,
                        "owner": i.owner,
                        "opened_at": i.opened_at,
                        "hosts": list(i.hosts),
                        "alerts": list(i.alert_ids),
                    }
                    for i in found
                ],
                indent=2,
            )
        )
        return 0
    now = time.time()
    rows = [["ID", "SEV", "STATUS", "AGE", "OWNER", "HOSTS", "TITLE"]]
    rows += [
        [
            str(i.id),
            i.severity,
            i.status.value,
            human_duration(now - i.opened_at),
            i.owner or "-",
            ",".join(i.hosts) or "-",
            i.title,
        ]
        for i in found
    ]
    print("\n".join(aligned(rows)) if found else "no incidents")
    return 0


def _report(args: argparse.Namespace, store: Store, settings: IncidentSettings) -> int:
    from fleetdeck.checks.audit import default_audit_path

    audit = (getattr(args, "audit_log", None) or default_audit_path()).expanduser()
    report = build_report(store, args.id, audit, settings.targets)
    text = json.dumps(report, indent=2) + "\n" if args.format == "json" else render_markdown(report)
    if args.output is not None:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0
