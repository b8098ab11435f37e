"""Snapshots of the war-room screen, as the incident room sees it, over a real state database
and audit log (tests/war_room_data.py) and the recorded fleet (big-64 and web-01 up, edge-9
down), the clock stopped at 2023-11-14 23:13:20 UTC."""

from __future__ import annotations

from pathlib import Path

from test_war_room import until_board
from war_room_data import build_state, war_room_app


def test_war_room_at_200x60(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A wall screen: the banner 'FLEETDECK WAR ROOM  READ-ONLY: every fix is refused...';
    the P1 (red badge) 'Checkout database out of disk · db-01', responding, acknowledged in
    4m against 15m; the P2 (amber) unacknowledged 15m past its 1h target, in red; wide enough
    for all six tiles in one row on top: CRIT 1 (red), WARN 2 (amber), SILENCED 1 ('1
    acknowledged'), UP 2 'of 3 hosts', DOWN 1 'edge-9' (red), STALE 0 (green); the tab line
    '▶ Alerts', 'next: Fleet health in 20 s'; the alerts, db-01's disk first."""
    audit = tmp_path / "audit.jsonl"
    build_state(audit)
    assert snap_compare(war_room_app(audit), terminal_size=(200, 60), run_before=until_board)


def test_war_room_at_120x40(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The same at 120x40: every part still there, the incident lines within the width."""
    audit = tmp_path / "audit.jsonl"
    build_state(audit)
    assert snap_compare(war_room_app(audit), terminal_size=(120, 40), run_before=until_board)


def test_war_room_fleet_view_at_120x40(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """After n: '▶ Fleet health'; tiles UP 2 'of 3 hosts', DOWN 1 'edge-9' (red), STALE 0
    (green); the hosts worst first: edge-9 down, then web-01 (2C 2W 1U), then big-64."""
    audit = tmp_path / "audit.jsonl"
    build_state(audit)
    assert snap_compare(
        war_room_app(audit), terminal_size=(120, 40), run_before=until_board, press=["n"]
    )


def test_war_room_actions_view_at_120x40(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """After n n: '▶ Latest actions'; alice's gzip on db-01 3m ago verified (green), bob's
    redis restart 9m ago refused (amber), alice's WAL removal 21m ago failed (red)."""
    audit = tmp_path / "audit.jsonl"
    build_state(audit)
    assert snap_compare(
        war_room_app(audit), terminal_size=(120, 40), run_before=until_board, press=["n", "n"]
    )
