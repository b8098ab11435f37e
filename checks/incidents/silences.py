"""Silences and maintenance windows: matchers over an alert's labels, with a start and an end.

A matcher is Alertmanager's syntax, comma-separated: `host=web1`, `check=~disk\\..*`,
`severity!=info`, `target!~/boot.*`. A maintenance window is a silence on one host
(`host=NAME`) or one inventory group (`group=NAME`, matching any of the host's groups) for a
stretch of time that may start later. Silenced alerts are counted, never hidden.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fleetdeck.checks.incidents.store import Store

_PART = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*")


@dataclass(frozen=True, slots=True)
class Match:
    name: str
    op: str
    value: str

    @property
    def pattern(self) -> re.Pattern[str]:
        return _compiled(self.value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        values = labels.get(self.name, "")
        # `group` holds every group of the host: any of them may match.
        candidates = values.split(",") if self.name == "group" and values else [values]
        if self.op in ("=", "!="):
            hit = self.value in candidates
        else:
            hit = any(self.pattern.fullmatch(c) for c in candidates)
        return hit if self.op in ("=", "=~") else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


@functools.lru_cache(maxsize=256)
def _compiled(value: str) -> re.Pattern[str]:
    return re.compile(value)


class MatcherError(ValueError):
    """A matcher that cannot be read; the message says which part and why."""


def parse_matcher(text: str) -> tuple[Match, ...]:
    """`host=web1,check=~disk.*` into its parts; raises `MatcherError`."""
    parts: list[Match] = []
    for raw in text.split(","):
        found = _PART.fullmatch(raw)
        if not raw.strip() or found is None:
            raise MatcherError(f"{raw.strip()!r} is not name=value, name!=value, name=~regex")
        name, op, value = found.groups()
        value = value.strip("\"'")
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as error:
                raise MatcherError(f"{raw.strip()!r}: bad regular expression: {error}") from None
        parts.append(Match(name, op, value))
    if all(m.op in ("!=", "!~") for m in parts):
        raise MatcherError(f"{text!r} only excludes: it would silence everything else")
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    kind: str
    """"silence" or "maintenance"."""
    matcher: tuple[Match, ...]
    starts_at: float
    ends_at: float
    created_at: float
    who: str
    comment: str

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matcher)

    @property
    def text(self) -> str:
        return ",".join(str(m) for m in self.matcher)


def add_silence(
    store: Store,
    matcher: str,
    duration: float,
    who: str,
    comment: str = "",
    *,
    kind: str = "silence",
    starts_at: float | None = None,
) -> Silence:
    """Record a silence (or maintenance window) from `starts_at` (now) for `duration` seconds."""
    parts = parse_matcher(matcher)
    if duration <= 0:
        raise MatcherError("a silence needs a duration above zero")
    now = time.time()
    start = now if starts_at is None else starts_at
    text = json.dumps([[m.name, m.op, m.value] for m in parts])
    with store.write() as db:
        cursor = db.execute(
            "INSERT INTO silences (kind, matcher, starts_at, ends_at, created_at, who, comment)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (kind, text, start, start + duration, now, who, comment),
        )
    assert cursor.lastrowid is not None
    return Silence(cursor.lastrowid, kind, parts, start, start + duration, now, who, comment)


def maintenance_matcher(host: str | None, group: str | None) -> str:
    """The matcher of a maintenance window on one host or one group."""
    if (host is None) == (group is None):
        raise MatcherError("a maintenance window is for one host or one group")
    return f"host={host}" if host is not None else f"group={group}"


def expire_silence(store: Store, silence_id: int, who: str) -> bool:
    """End a silence now; False if there was no such silence still running."""
    now = time.time()
    with store.write() as db:
        cursor = db.execute(
            "UPDATE silences SET ends_at = ?, comment = comment || ? WHERE id = ? AND ends_at > ?",
            (now, f" (expired by {who})", silence_id, now),
        )
    return cursor.rowcount > 0


def silences(store: Store, now: float | None = None, *, current: bool = True) -> list[Silence]:
    """The silences in force or still to come (`current`), or all of them."""
    now = time.time() if now is None else now
    rows = store.read(
        "SELECT * FROM silences WHERE ends_at > ? ORDER BY starts_at, id",
        (now if current else float("-inf"),),
    )
    return [
        Silence(
            row["id"],
            row["kind"],
            tuple(Match(*part) for part in json.loads(row["matcher"])),
            row["starts_at"],
            row["ends_at"],
            row["created_at"],
            row["who"],
            row["comment"],
        )
        for row in rows
    ]


class SilenceIndex:
    """The silences in force at one moment, found by host: most are maintenance windows or
    silences of one host (`host=NAME`), so an alert is tried against its host's and the
    few others, not against every silence (5,000 alerts x 200 silences on a war-room)."""

    def __init__(self, found: Sequence[Silence], now: float) -> None:
        self._by_host: dict[str, list[Silence]] = {}
        self._others: list[Silence] = []
        for silence in found:
            if not silence.active(now):
                continue
            host = next((m.value for m in silence.matcher if (m.name, m.op) == ("host", "=")), None)
            (self._others if host is None else self._by_host.setdefault(host, [])).append(silence)

    def silenced_by(self, labels: Mapping[str, str]) -> Silence | None:
        """The first silence in force that covers these labels."""
        mine = self._by_host.get(labels.get("host", ""), [])
        return next((s for s in (*mine, *self._others) if s.matches(labels)), None)
