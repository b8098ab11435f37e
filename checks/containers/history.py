"""What containers did over time: restart counts and memory, kept across readings.

The engine says only how often it has restarted a container in all (`RestartCount`, since
the container was created or last started by hand) and how much memory it uses now. A
restart loop ("3 restarts in 10 minutes") and a leak ("growing 4 MiB a minute") are about
time, so they need readings kept from one refresh to the next: `ContainerHistory` keeps them,
one per Docker link (`history_for(link)`), bounded, for whoever reads the engine (the Host
screen's containers pane on every refresh, the container checks on every run) to feed and
the checks to read. A restart is dated by the reading that first saw the count grow, so with
readings every few seconds it is dated to within those seconds; a reading the link served
from its inspect cache (up to a minute old) dates it later, never earlier.

`memory_trend` is the least-squares slope of the samples since the container last started,
with R² saying how well a straight line explains them (steady growth, not a saw-tooth).
"""

from __future__ import annotations

import itertools
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from fleetdeck.hosts.docker.link import Container, ContainerStats
from fleetdeck.hosts.metrics import least_squares

__all__ = [
    "ContainerHistory",
    "MemoryPoint",
    "MemoryTrend",
    "RestartWatch",
    "history_for",
    "memory_trend",
]


@dataclass(frozen=True, slots=True)
class MemoryPoint:
    """One memory reading of a running container."""

    at: float
    """When (the history's clock: time.monotonic)."""
    value: int
    """What the trend is drawn on: anonymous memory when the engine reports it (heap and
    stacks; page cache comes and goes on its own), else the memory in use."""
    used: int
    """Memory in use as `docker stats` shows it: what the limit is compared with."""
    limit: int | None


@dataclass(frozen=True, slots=True)
class RestartWatch:
    """What the kept readings say about one container's restarts in a window."""

    restarts: int
    """Restarts the engine made that the readings saw happen within the window."""
    watched: float
    """Seconds of the window the readings cover (first reading to the last)."""
    readings: int
    count: int
    """The engine's restart count at the last reading."""

    def covers(self, window: float) -> bool:
        return self.watched >= window * 0.99


@dataclass(frozen=True, slots=True)
class MemoryTrend:
    """The least-squares line through a container's memory samples."""

    rate: float
    """Bytes per second (negative: shrinking)."""
    fit: float
    """R²: 1 is a straight line, 0 no line at all."""
    samples: int
    span: float

    @property
    def mib_per_minute(self) -> float:
        return self.rate * 60 / 2**20


def memory_trend(
    points: Sequence[tuple[float, float]], min_samples: int, min_span: float
) -> MemoryTrend | None:
    """The slope of (time, bytes) points by least squares and its R²; None with fewer than
    `min_samples` points, or spanning less than `min_span` seconds."""
    if len(points) < max(min_samples, 2):
        return None
    span = points[-1][0] - points[0][0]
    if span < min_span or span <= 0:
        return None
    fitted = least_squares(points)
    if fitted is None:
        return None
    slope, fit = fitted
    return MemoryTrend(slope, fit, len(points), span)


@dataclass(frozen=True, slots=True)
class _Mark:
    at: float
    count: int
    started_raw: str
    started: datetime | None


class _Series:
    """One container's readings: restart marks (only changes, and the newest), memory."""

    __slots__ = ("first", "last", "marks", "memory", "memory_start")

    def __init__(self, size: int) -> None:
        self.marks: deque[_Mark] = deque(maxlen=64)
        self.memory: deque[MemoryPoint] = deque(maxlen=size)
        self.memory_start = ""
        self.first = 0.0
        self.last = 0.0


class ContainerHistory:
    """Readings of a host's containers, by container id, bounded in containers, marks and
    samples. `add` after every listing (and `stats`, if read); the checks read it back.

    `gap` thins the memory samples (one kept per `gap` seconds), `size` bounds them per
    container, `keep` is how long a restart mark is kept; containers that a full listing no
    longer shows are forgotten."""

    def __init__(
        self,
        *,
        size: int = 360,
        gap: float = 2.0,
        keep: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.gap = gap
        self.keep = keep
        self.clock = clock
        self._series: dict[str, _Series] = {}

    def __contains__(self, container_id: object) -> bool:
        return container_id in self._series

    def add(
        self,
        containers: Iterable[Container],
        stats: Mapping[str, ContainerStats] | None = None,
        *,
        at: float | None = None,
        complete: bool = True,
    ) -> None:
        """Keep one reading of each container (its memory too when `stats` has it).
        `complete`: this is every container there is, so any other is forgotten."""
        now = self.clock() if at is None else at
        seen = set()
        for container in containers:
            seen.add(container.id)
            series = self._series.get(container.id)
            if series is None:
                series = self._series[container.id] = _Series(self.size)
                series.first = now
            series.last = max(series.last, now)
            self._mark(series, container, now)
            reading = (stats or {}).get(container.id)
            if reading is not None:
                self._memory(series, container, reading, now)
        if complete:
            for gone in set(self._series) - seen:
                del self._series[gone]

    def restarts(self, container_id: str, window: float, now: float | None = None) -> RestartWatch:
        """The restarts the readings saw within the last `window` seconds. A count that
        went down was reset by a start by hand: the new count is what came after it."""
        series = self._series.get(container_id)
        if series is None or not series.marks:
            return RestartWatch(0, 0.0, 0, 0)
        now = self.clock() if now is None else now
        cutoff = now - window
        restarts = 0
        marks = list(series.marks)
        for before, after in itertools.pairwise(marks):
            if after.at >= cutoff:
                grew = after.count - before.count
                restarts += grew if grew >= 0 else after.count
        watched = min(series.last, now) - max(series.first, cutoff)
        readings = sum(1 for m in marks if m.at >= cutoff)
        return RestartWatch(restarts, max(watched, 0.0), readings, marks[-1].count)

    def watched(self, container_id: str) -> float:
        """Seconds from the first reading of this container to the last."""
        series = self._series.get(container_id)
        return series.last - series.first if series else 0.0

    def memory(self, container_id: str) -> list[MemoryPoint]:
        """The memory samples since the container last started, oldest first."""
        series = self._series.get(container_id)
        return list(series.memory) if series else []

    def _mark(self, series: _Series, container: Container, now: float) -> None:
        mark = _Mark(now, container.restart_count, container.started_raw, container.started_at)
        marks = series.marks
        if marks and (marks[-1].count, marks[-1].started_raw) == (mark.count, mark.started_raw):
            return
        if marks and mark.count < marks[-1].count and not _later(mark, marks[-1]):
            # A lower count with no newer start: a reading older than the last one (two
            # readers' answers crossing), not a start by hand, which resets the count as it
            # starts the container anew. Taking it for a reset would count twice.
            return
        marks.append(mark)
        while len(marks) > 1 and marks[1].at < now - self.keep:
            marks.popleft()  # the newest mark older than `keep` stays: the baseline

    def _memory(
        self, series: _Series, container: Container, reading: ContainerStats, now: float
    ) -> None:
        if series.memory_start != container.started_raw:  # restarted: memory starts afresh
            series.memory.clear()
            series.memory_start = container.started_raw
        if series.memory and now - series.memory[-1].at < self.gap:
            return
        value = reading.memory_anon if reading.memory_anon is not None else reading.memory_used
        point = MemoryPoint(now, value, reading.memory_used, reading.memory_limit)
        series.memory.append(point)


def _later(mark: _Mark, than: _Mark) -> bool:
    """Whether `mark`'s container start is newer than `than`'s (unknown: assume it is)."""
    if mark.started is None or than.started is None:
        return True
    return mark.started > than.started


_HISTORIES: weakref.WeakKeyDictionary[object, ContainerHistory] = weakref.WeakKeyDictionary()


def history_for(link: object) -> ContainerHistory:
    """The one history of a Docker link's containers (made on first use, gone with the
    link): the console keeps one link per host, so its pane and its wizards share it."""
    found = _HISTORIES.get(link)
    if found is None:
        found = _HISTORIES[link] = ContainerHistory()
    return found
