"""What the state database costs a large fleet: alert transitions written by 1,000 hosts'
recorders (one transaction per host evaluation that changed something, fsynced), and the
reads a console or war-room screen makes on every refresh (the alert list with silences
applied, one host's marks), with many alerts and silences in the file.

    .venv/bin/python benchmarks/incident_state.py [--hosts 1000] [--alerts 5] [--silences 200]

Prints the time per evaluation round and per read; the file is made in a temporary directory.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fleetdeck.checks.alerts import AlertTracker
from fleetdeck.checks.incidents.alertlog import AlertRecorder, stored_alerts
from fleetdeck.checks.incidents.config import IncidentSettings
from fleetdeck.checks.incidents.silences import add_silence
from fleetdeck.checks.incidents.store import Store
from fleetdeck.checks.model import Finding, Status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=5, help="alerts per host")
    parser.add_argument("--silences", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        store = Store(Path(directory) / "state.db")
        settings = IncidentSettings()
        trackers = [
            AlertTracker(f"host-{n:04d}", 0.0, hook=AlertRecorder(store, f"host-{n:04d}", settings))
            for n in range(args.hosts)
        ]
        bad = [
            Finding("disk.space", Status.CRIT, f"/srv/{m}", f"/srv/{m} 95% used")
            for m in range(args.alerts)
        ]
        for n in range(args.silences):
            add_silence(store, f"host=host-{n:04d}", 3600, "bench")

        def round_of(findings: list[Finding], at: float) -> float:
            start = time.perf_counter()
            for tracker in trackers:
                tracker.update(findings, at)
            return time.perf_counter() - start

        fire = round_of(bad, 1.0)
        quiet = round_of(bad, 2.0)  # nothing changed: nothing written
        start = time.perf_counter()
        listed = stored_alerts(store)
        read = time.perf_counter() - start
        recorder = trackers[0].hook
        assert isinstance(recorder, AlertRecorder)
        start = time.perf_counter()
        recorder.marks()
        marks = time.perf_counter() - start
        resolve = round_of([], 3.0)
        print(f"{args.hosts} hosts x {args.alerts} alerts, {args.silences} silences")
        print(
            f"  all fire (pending+firing written): {fire:8.3f} s for the round, "
            f"{fire / args.hosts * 1000:6.2f} ms per host"
        )
        print(f"  nothing changed:                   {quiet:8.3f} s for the round")
        print(f"  all resolve:                       {resolve:8.3f} s for the round")
        print(f"  alert list ({len(listed)} alerts):        {read * 1000:8.1f} ms")
        print(f"  one host's marks:                  {marks * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
