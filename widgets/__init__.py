"""Reusable Textual widgets that render plain data handed to them; they never connect anywhere."""

from widgets.cells import Cell, num
from widgets.containers import ContainersPane, ContainerTable
from widgets.database import DatabasePane
from widgets.findings_tables import AlertsTable, FindingsTable
from widgets.header import HostHeader
from widgets.resource_tables import DisksTable, NetworkTable, ProcessTable
from widgets.row_table import Column, RowTable
from widgets.summary import CpuPane, LoadPane, MemoryPane

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
