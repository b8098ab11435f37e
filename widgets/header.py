"""The one-line header of a host: name, OS, kernel, uptime, freshness and alert counts."""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from checks.alerts import AlertState
from hosts.sample import HostInfo
from hosts.units import human_duration


class HostHeader(Widget):
    """Who this host is and how fresh its data is; `-stale` when the last poll failed."""

    COMPONENT_CLASSES = {"header--name", "header--dim", "header--firing", "header--stale"}
    DEFAULT_CSS = """
    HostHeader { height: 1; background: $panel; padding: 0 1; }
    HostHeader > .header--name { text-style: bold; }
    HostHeader > .header--dim { color: $text-muted; }
    HostHeader > .header--firing { color: $error; text-style: bold; }
    HostHeader > .header--stale { color: $warning; text-style: bold reverse; }
    """

    info: reactive[HostInfo | None] = reactive(None)
    updated: reactive[float | None] = reactive(None)
    stale_reason: reactive[str | None] = reactive(None)
    alert_counts: reactive[dict[AlertState, int]] = reactive(dict)

    def render(self) -> Text:
        dim = self.get_component_rich_style("header--dim")
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        info = self.info
        if info is None:
            return Text("connecting…", style=dim)
        text.append(info.hostname, self.get_component_rich_style("header--name"))
        text.append(f"  {info.os} · {info.kernel}", dim)
        # Uptime as of the sample, so a frozen screen never claims a host is still up.
        as_of = self.updated if self.updated is not None else time.time()
        text.append(f" · up {human_duration(as_of - info.boot_time)}", dim)
        counts = self.alert_counts
        firing, pending = counts.get(AlertState.FIRING, 0), counts.get(AlertState.PENDING, 0)
        if firing or pending:
            text.append("  ")
            text.append(f"{firing} firing", self.get_component_rich_style("header--firing"))
            text.append(f" {pending} pending", dim)
        if self.stale_reason is not None:
            age = f" {human_duration(time.time() - self.updated)}" if self.updated else ""
            text.append("  ")
            text.append(
                f"STALE{age}: {self.stale_reason}", self.get_component_rich_style("header--stale")
            )
        elif self.updated is not None:
            text.append(f"  updated {time.strftime('%H:%M:%S', time.localtime(self.updated))}", dim)
        return text
