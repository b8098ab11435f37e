"""A process that writes to a state database for ever, for the crash and concurrency tests.

`python incident_writer.py DB TAG [COUNT]` records alerts of host TAG through the real
`AlertTracker` and `AlertRecorder`, then loops: a note on its incident, an acknowledgement,
a silence. After each call returns it prints what was written (`note ID TEXT`, `ack ALERT AT`,
`silence ID`), flushed, so the parent knows what was acknowledged as written. Without COUNT
it runs until killed.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from fleetdeck.checks.alerts import AlertTracker
from fleetdeck.checks.incidents.alertlog import AlertRecorder, acknowledge, stored_alerts
from fleetdeck.checks.incidents.config import IncidentSettings
from fleetdeck.checks.incidents.incidents import add_note, open_incident
from fleetdeck.checks.incidents.silences import add_silence
from fleetdeck.checks.incidents.store import Store
from fleetdeck.checks.model import Finding, Status


def main() -> None:
    store = Store(Path(sys.argv[1]))
    tag = sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else None
    recorder = AlertRecorder(store, tag, IncidentSettings())
    tracker = AlertTracker(tag, 0.0, hook=recorder)
    findings = [
        Finding("disk.space", Status.CRIT, f"/srv/{n}", f"{90 + n}% used") for n in range(3)
    ]
    tracker.update(findings, 1000.0)
    tracker.update(findings, 1001.0)
    assert recorder.error is None, recorder.error
    alerts = [a for a in stored_alerts(store) if a.host == tag]
    incident = open_incident(store, f"{tag} disks", "P2", tag, alert_ids=[a.id for a in alerts])
    print(f"ready {incident.id}", flush=True)
    for n in itertools.count(1) if count is None else range(1, count + 1):
        text = f"{tag} note {n}"
        add_note(store, incident.id, tag, text)
        print(f"note {incident.id} {text}", flush=True)
        alert = alerts[n % len(alerts)]
        at = acknowledge(store, alert.id, tag, f"ack {n}")
        print(f"ack {alert.id} {at!r}", flush=True)
        silence = add_silence(store, f"host={tag},target=/srv/{n}", 3600, tag, f"silence {n}")
        print(f"silence {silence.id}", flush=True)
    store.close()


if __name__ == "__main__":
    main()
