"""Reusable Textual widgets that render plain data handed to them; they never connect anywhere."""

from fleetdeck.widgets.cells import Cell, num
from fleetdeck.widgets.containers import ContainersPane, ContainerTable
from fleetdeck.widgets.database import DatabasePane
from fleetdeck.widgets.findings_tables import AlertsTable, FindingsTable
from fleetdeck.widgets.header import HostHeader
from fleetdeck.widgets.resource_tables import DisksTable, NetworkTable, ProcessTable
from fleetdeck.widgets.row_table import Column, RowTable
from fleetdeck.widgets.summary import CpuPane, LoadPane, MemoryPane

__all__ = [
    "AlertsTable",
    "Cell",
    "Column",
    "ContainerTable",
    "ContainersPane",
    "CpuPane",
    "DatabasePane",
    "DisksTable",
    "FindingsTable",
    "HostHeader",
    "LoadPane",
    "MemoryPane",
    "NetworkTable",
    "ProcessTable",
    "RowTable",
    "num",
]
