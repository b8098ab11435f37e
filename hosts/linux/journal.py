"""Readers of `journalctl -o json` output, and the folding of messages into kinds.

Each line is one JSON object. journald keeps a field that is not valid UTF-8 as an array of
byte values, and a field too large to print (over journalctl's limit) as null: both are read
here, the bytes decoded with replacement, so no entry is lost to its encoding. A line that is
not a JSON object (a truncated last line, a warning journalctl printed on stdout) is counted,
never guessed at.

`fold` turns a message into its kind: the numbers, ids, addresses and hex values that differ
between two occurrences of the same error become placeholders, so "lost connection to
10.0.0.7 after 31 ms" and "... 10.0.0.9 after 2 ms" are one kind, counted together.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

PRIORITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


@dataclass(frozen=True, slots=True)
class Entry:
    """One journal entry: when (Unix seconds), which unit or program, how bad, what it said."""

    at: float | None
    unit: str
    priority: int | None
    message: str
    cursor: str

    @property
    def source(self) -> str:
        """What wrote it, for grouping: its unit, else its syslog identifier."""
        return self.unit or "(no unit)"

    def line(self) -> bytes:
        """As a log view line: an RFC 3339 UTC time, a space, the message (as the engine
        sends container lines with timestamps=True), raw text for the view to escape."""
        stamp = (
            datetime.fromtimestamp(self.at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            if self.at is not None
            else "-"
        )
        return f"{stamp} {self.message}".encode(errors="replace")  # JSON may hold lone surrogates


@dataclass(frozen=True, slots=True)
class Parsed:
    entries: list[Entry]
    unreadable: int
    """Lines that were not a JSON object."""


def parse_json_lines(text: str) -> Parsed:
    entries, unreadable = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            unreadable += 1
            continue
        if not isinstance(record, dict):
            unreadable += 1
            continue
        entries.append(_entry(record))
    return Parsed(entries, unreadable)


def _entry(record: dict[str, object]) -> Entry:
    # systemd's own lines about a unit ("Failed to start x.service") name it in UNIT; they
    # come from init.scope, which would lump every unit's start failures together.
    names = ("UNIT", "_SYSTEMD_UNIT", "SYSLOG_IDENTIFIER", "_COMM")
    unit = next((text for text in (_field(record.get(n)) for n in names) if text), "")
    stamp = _field(record.get("__REALTIME_TIMESTAMP"))
    priority = _field(record.get("PRIORITY"))
    message = record.get("MESSAGE")
    return Entry(
        at=int(stamp) / 1e6 if stamp.isdecimal() else None,
        unit=unit,
        priority=int(priority) if priority.isdecimal() else None,
        message="(message too large for journalctl to print)"
        if message is None
        else _field(message),
        cursor=_field(record.get("__CURSOR")),
    )


def _field(value: object) -> str:
    """A field's text: a string as it is, an array of byte values decoded with replacement
    (journald's form for text that is not UTF-8), anything else empty."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value).decode(errors="replace")
    return ""


_FOLDS = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<id>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<addr>"),
    (re.compile(r"(?<![\w:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])", re.I), "<addr>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{12,}\b", re.I), "<id>"),
    (re.compile(r"\d+"), "#"),
)
FOLD_CHARS = 400
"""A kind is made from the message's first characters: a huge message costs no more."""


def fold(message: str) -> str:
    """The message's kind: uuids and long hex ids as <id>, 0x... as <hex>, IPv4 (with port)
    and IPv6 addresses as <addr>, every other run of digits as #, spaces squeezed."""
    text = message[:FOLD_CHARS]
    for pattern, placeholder in _FOLDS:
        text = pattern.sub(placeholder, text)
    return " ".join(text.split())


def priority_name(priority: int | None) -> str:
    if priority is None or not 0 <= priority < len(PRIORITIES):
        return "?"
    return PRIORITIES[priority]
