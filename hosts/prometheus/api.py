"""The Prometheus HTTP API and the Alertmanager v2 API: the calls fleetdeck makes, and pure
readers that turn their JSON into plain records (or `SourceGarbage` naming what was odd)."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetdeck.hosts.prometheus.http import HttpSource, SourceGarbage

Labels = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class VectorItem:
    """One series of an instant vector: its labels and its value now."""

    labels: Labels
    value: float


@dataclass(frozen=True, slots=True)
class RuleAlert:
    """An alert as Prometheus's rule engine holds it (`/api/v1/alerts`)."""

    labels: Labels
    annotations: Labels
    state: str  # pending or firing
    active_at: str
    value: str


@dataclass(frozen=True, slots=True)
class Target:
    """One scrape target and its health (`/api/v1/targets`)."""

    labels: Labels
    scrape_url: str
    health: str  # up, down, unknown
    last_error: str
    pool: str


@dataclass(frozen=True, slots=True)
class AmAlert:
    """An alert as Alertmanager holds it (`GET /api/v2/alerts`)."""

    fingerprint: str
    labels: Labels
    annotations: Labels
    state: str  # active, suppressed, unprocessed
    silenced_by: tuple[str, ...]
    inhibited_by: tuple[str, ...]
    starts_at: str
    ends_at: str
    generator_url: str


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher of a silence (equality or regex, positive or negated)."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.is_regex,
            "isEqual": self.is_equal,
        }

    def __str__(self) -> str:
        op = (
            ("=~" if self.is_regex else "=") if self.is_equal else ("!~" if self.is_regex else "!=")
        )
        return f'{self.name}{op}"{self.value}"'


@dataclass(frozen=True, slots=True)
class Silence:
    """A silence as Alertmanager holds it (`/api/v2/silences`)."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: str
    ends_at: str
    created_by: str
    comment: str
    state: str  # active, pending, expired


def _obj(url: str, value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SourceGarbage(url, f"{what}: expected an object, got {type(value).__name__}")
    return value


def _list(url: str, value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise SourceGarbage(url, f"{what}: expected a list, got {type(value).__name__}")
    return value


def _labels(url: str, value: object, what: str) -> dict[str, str]:
    table = _obj(url, value if value is not None else {}, what)
    return {str(k): str(v) for k, v in table.items()}


def _text(item: Mapping[str, Any], key: str) -> str:
    value = item.get(key)
    return "" if value is None else str(value)


def _data(url: str, answer: object) -> Any:
    """The `data` of a Prometheus API answer, after its `status` says success."""
    body = _obj(url, answer, "answer")
    if body.get("status") != "success":
        raise SourceGarbage(url, f"status {body.get('status')!r}: {_text(body, 'error')}")
    return body.get("data")


def parse_vector(url: str, answer: object) -> list[VectorItem]:
    """An instant query's answer; NaN and infinite values are dropped (no figure, not 0)."""
    data = _obj(url, _data(url, answer), "data")
    if data.get("resultType") != "vector":
        raise SourceGarbage(url, f"expected a vector, got {data.get('resultType')!r}")
    items = []
    for entry in _list(url, data.get("result"), "result"):
        series = _obj(url, entry, "series")
        pair = series.get("value")
        if not isinstance(pair, list) or len(pair) != 2:
            raise SourceGarbage(url, f"series value {pair!r} is not [time, value]")
        try:
            value = float(pair[1])
        except (TypeError, ValueError):
            raise SourceGarbage(url, f"series value {pair[1]!r} is not a number") from None
        if math.isfinite(value):
            metric: Any = series.get("metric")
            # Prometheus's labels are strings already: kept as they are, since a fleet's
            # batch holds a hundred thousand series and copying each cost more than the
            # JSON; joining them is the quickest proof that they are all strings
            try:
                "".join(metric.values())
            except (AttributeError, TypeError):
                metric = _labels(url, metric, "metric")
            items.append(VectorItem(metric, value))
    return items


def parse_rule_alerts(url: str, answer: object) -> list[RuleAlert]:
    data = _obj(url, _data(url, answer), "data")
    return [
        RuleAlert(
            labels=_labels(url, item.get("labels"), "labels"),
            annotations=_labels(url, item.get("annotations"), "annotations"),
            state=_text(item, "state"),
            active_at=_text(item, "activeAt"),
            value=_text(item, "value"),
        )
        for item in (_obj(url, a, "alert") for a in _list(url, data.get("alerts"), "alerts"))
    ]


def parse_targets(url: str, answer: object) -> list[Target]:
    data = _obj(url, _data(url, answer), "data")
    return [
        Target(
            labels=_labels(url, item.get("labels"), "labels"),
            scrape_url=_text(item, "scrapeUrl"),
            health=_text(item, "health"),
            last_error=_text(item, "lastError"),
            pool=_text(item, "scrapePool"),
        )
        for item in (
            _obj(url, t, "target") for t in _list(url, data.get("activeTargets"), "activeTargets")
        )
    ]


def parse_am_alerts(url: str, answer: object) -> list[AmAlert]:
    alerts = []
    for entry in _list(url, answer, "alerts"):
        item = _obj(url, entry, "alert")
        status = _obj(url, item.get("status") or {}, "status")
        alerts.append(
            AmAlert(
                fingerprint=_text(item, "fingerprint"),
                labels=_labels(url, item.get("labels"), "labels"),
                annotations=_labels(url, item.get("annotations"), "annotations"),
                state=_text(status, "state"),
                silenced_by=tuple(map(str, _list(url, status.get("silencedBy") or [], "ids"))),
                inhibited_by=tuple(map(str, _list(url, status.get("inhibitedBy") or [], "ids"))),
                starts_at=_text(item, "startsAt"),
                ends_at=_text(item, "endsAt"),
                generator_url=_text(item, "generatorURL"),
            )
        )
    return alerts


def parse_silence(url: str, entry: object) -> Silence:
    item = _obj(url, entry, "silence")
    matchers = tuple(
        Matcher(
            name=_text(m, "name"),
            value=_text(m, "value"),
            is_regex=bool(m.get("isRegex")),
            is_equal=bool(m.get("isEqual", True)),
        )
        for m in (_obj(url, x, "matcher") for x in _list(url, item.get("matchers"), "matchers"))
    )
    status = _obj(url, item.get("status") or {}, "status")
    return Silence(
        id=_text(item, "id"),
        matchers=matchers,
        starts_at=_text(item, "startsAt"),
        ends_at=_text(item, "endsAt"),
        created_by=_text(item, "createdBy"),
        comment=_text(item, "comment"),
        state=_text(status, "state"),
    )


def iso(moment: dt.datetime) -> str:
    """A time as Alertmanager reads it (RFC 3339, UTC)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Prometheus:
    """The Prometheus HTTP API calls fleetdeck makes."""

    def __init__(self, source: HttpSource) -> None:
        self.source = source

    @property
    def url(self) -> str:
        return self.source.url

    async def query(self, promql: str) -> list[VectorItem]:
        """An instant vector, read in a worker thread: a fleet's answer is megabytes of JSON,
        and the console's loop keeps drawing meanwhile."""
        answer = await self.source.call("GET", "/api/v1/query", params={"query": promql})
        url = self.source.endpoint("/api/v1/query")
        return await asyncio.to_thread(parse_vector, url, answer)

    async def alerts(self) -> list[RuleAlert]:
        answer = await self.source.call("GET", "/api/v1/alerts")
        return parse_rule_alerts(self.source.endpoint("/api/v1/alerts"), answer)

    async def targets(self) -> list[Target]:
        answer = await self.source.call("GET", "/api/v1/targets", params={"state": "active"})
        return parse_targets(self.source.endpoint("/api/v1/targets"), answer)


class Alertmanager:
    """The Alertmanager v2 API calls fleetdeck makes."""

    def __init__(self, source: HttpSource) -> None:
        self.source = source

    @property
    def url(self) -> str:
        return self.source.url

    async def alerts(self) -> list[AmAlert]:
        answer = await self.source.call("GET", "/api/v2/alerts")
        return parse_am_alerts(self.source.endpoint("/api/v2/alerts"), answer)

    async def silences(self) -> list[Silence]:
        path = "/api/v2/silences"
        answer = await self.source.call("GET", path)
        url = self.source.endpoint(path)
        return [parse_silence(url, entry) for entry in _list(url, answer, "silences")]

    async def silence(self, silence_id: str) -> Silence:
        path = f"/api/v2/silence/{urllib.parse.quote(silence_id, safe='')}"
        return parse_silence(self.source.endpoint(path), await self.source.call("GET", path))

    async def create_silence(
        self,
        matchers: Sequence[Matcher],
        starts: dt.datetime,
        ends: dt.datetime,
        created_by: str,
        comment: str,
    ) -> str:
        """Post a new silence; its id."""
        path = "/api/v2/silences"
        body = {
            "matchers": [m.to_json() for m in matchers],
            "startsAt": iso(starts),
            "endsAt": iso(ends),
            "createdBy": created_by,
            "comment": comment,
        }
        answer = _obj(
            self.source.endpoint(path), await self.source.call("POST", path, body=body), "answer"
        )
        silence_id = _text(answer, "silenceID")
        if not silence_id:
            raise SourceGarbage(self.source.endpoint(path), "no silenceID in the answer")
        return silence_id

    async def expire_silence(self, silence_id: str) -> None:
        await self.source.call(
            "DELETE", f"/api/v2/silence/{urllib.parse.quote(silence_id, safe='')}"
        )
