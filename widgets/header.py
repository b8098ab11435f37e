"""The one-line header of a host: name, OS, kernel, uptime, freshness and alert counts."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from fleetdeck.checks.alerts import AlertState
from fleetdeck.hosts.sample import HostInfo
from fleetdeck.hosts.units import human_duration
from fleetdeck.widgets.repaint import PaintedText


class HostHeader(Widget):
    """Who this host is and how fresh its data is; `-stale` when the last poll failed."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "header--name",
        "header--dim",
        "header--firing",
        "header--stale",
    }
    DEFAULT_CSS = """
    HostHeader {
        height: 1; background: $panel; padding: 0 1;
        text-wrap: nowrap; text-overflow: ellipsis;
    }
    HostHeader > .header--name { text-style: bold; }
    HostHeader > .header--dim { color: $text-muted; }
    HostHeader > .header--firing { color: $error; text-style: bold; }
    HostHeader > .header--stale { color: $warning; text-style: bold reverse; }
    """

    # Each figure's watcher repaints the cells that changed (a whole repaint rewrote the
    # full width of the line each second for the time's last digit).
    host: reactive[str] = reactive("", repaint=False)
    info: reactive[HostInfo | None] = reactive(None, repaint=False)
    updated: reactive[float | None] = reactive(None, repaint=False)
    stale_reason: reactive[str | None] = reactive(None, repaint=False)
    alert_counts: reactive[dict[AlertState, int]] = reactive(dict, repaint=False)

    overdue: reactive[bool] = reactive(False, repaint=False)

    def __init__(self, host: str = "", max_age: float = 2.0, **kwargs: Any) -> None:
        """`max_age`: seconds after which data with no newer sample is shown as stale."""
        super().__init__(**kwargs)
        self.set_reactive(HostHeader.host, host)
        self.max_age = max_age
        self._received: float | None = None
        self._painted = PaintedText()

    def on_mount(self) -> None:
        self.set_interval(1.0, self._check_age)

    def watch_updated(self, updated: float | None) -> None:
        self._received = time.monotonic() if updated is not None else None
        self._painted.repaint(self)

    def watch_host(self) -> None:
        self._painted.repaint(self)

    def watch_info(self) -> None:
        self._painted.repaint(self)

    def watch_stale_reason(self) -> None:
        self._painted.repaint(self)

    def watch_alert_counts(self) -> None:
        self._painted.repaint(self)

    def watch_overdue(self) -> None:
        self._painted.repaint(self)

    @property
    def age(self) -> float | None:
        """Seconds since the data on screen arrived."""
        return None if self._received is None else time.monotonic() - self._received

    def _check_age(self) -> None:
        age = self.age
        self.overdue = age is not None and age > self.max_age
        if self.overdue or self.stale_reason is not None:
            self._painted.repaint(self)  # the age shown goes on growing

    def render(self) -> Text:
        """Most urgent first, so a narrow terminal cuts the OS name, not the alert counts."""
        dim = self.get_component_rich_style("header--dim")
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        info = self.info
        text.append(
            info.hostname if info else self.host, self.get_component_rich_style("header--name")
        )
        counts = self.alert_counts
        firing, pending = counts.get(AlertState.FIRING, 0), counts.get(AlertState.PENDING, 0)
        if firing:
            text.append(" · ")
            text.append(f"{firing} firing", self.get_component_rich_style("header--firing"))
        if pending:
            text.append(f" · {pending} pending", dim)
        if self.stale_reason is not None or self.overdue:
            age = f" {human_duration(self.age)}" if self.age is not None else ""
            reason = self.stale_reason or "no new sample"
            text.append(" · ")
            text.append(f"STALE{age}: {reason}", self.get_component_rich_style("header--stale"))
        elif self.updated is not None:
            text.append(f" · {time.strftime('%H:%M:%S', time.localtime(self.updated))}", dim)
        else:
            text.append(" · connecting…", dim)
        if info is not None:
            # Uptime as of the sample, so a frozen screen never claims a host is still up.
            as_of = self.updated if self.updated is not None else time.time()
            text.append(f" · up {human_duration(as_of - info.boot_time)}", dim)
            text.append(f" · {info.os} · {info.kernel}", dim)
        return text
