"""What the Host screen does to the alert under the cursor: open an incident from it,
acknowledge it, silence it, open its runbook's wizard.

fleetdeck's own alerts are acted on in the state database (`checks/incidents`), as the
`fleetdeck alerts` and `fleetdeck incident` commands do, with the OS user as who; an
Alertmanager alert is silenced through the console's action gate (`checks/sources/silence`),
so a read-only console refuses it and the attempt is audited. Whatever cannot be done (no
state database, no alert under the cursor, an alert with no runbook) is said in a notice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleetdeck.checks.alerts import Alert
from fleetdeck.checks.audit import Operator
from fleetdeck.checks.incidents.alertlog import AckError, AlertRecorder, acknowledge, stored_alerts
from fleetdeck.checks.incidents.board import UNREADABLE, BoardAlert
from fleetdeck.checks.incidents.incidents import IncidentError, add_note, open_incident
from fleetdeck.checks.incidents.silences import MatcherError, add_silence
from fleetdeck.checks.incidents.store import Store, StoreError, shared_store, state_path
from fleetdeck.hosts.units import human_duration
from fleetdeck.tui.incident_modal import OpenIncident, priority_of
from fleetdeck.widgets import AlertsTable
from fleetdeck.widgets.findings_tables import headline

if TYPE_CHECKING:
    from fleetdeck.tui.host_screen import HostScreen

SILENCE_FOR = 3600.0
"""How long "Silence alert" silences: an hour, then it notifies again unless renewed
(`fleetdeck alerts expire ID` ends a fleetdeck silence sooner)."""


def _who() -> str:
    return Operator.current().user


def _under_cursor(screen: HostScreen) -> Alert | BoardAlert | None:
    alert = screen.query_one(AlertsTable).under_cursor()
    if alert is None or (isinstance(alert, BoardAlert) and alert.name == UNREADABLE):
        screen.notify(f"{screen.host_name}: no alert under the cursor", severity="warning")
        return None
    return alert


def _store(screen: HostScreen) -> Store | None:
    """The state database the host's alerts are kept in (the settings' one if they are not
    kept, for an incident on the host); None, said, if it cannot be opened."""
    hook = screen.host_watch.alerts.hook
    if isinstance(hook, AlertRecorder):
        return hook.store
    try:
        return shared_store(state_path(screen.host_watch.config.incidents.state))
    except StoreError as error:
        screen.notify(str(error), title="state database", severity="error")
        return None


def _stored_id(store: Store, alert: Alert) -> int | None:
    """The alert's id in the state database (None: not recorded, or no longer there)."""
    found = stored_alerts(store, host=alert.host)
    return next((a.id for a in found if a.key == alert.key), None)


def open_incident_from(screen: HostScreen) -> None:
    """Ask a title and severity (from the alert under the cursor, else the host), then
    record the incident with the alert and the host it covers."""
    alert = screen.query_one(AlertsTable).under_cursor()
    host = screen.host_name
    if isinstance(alert, Alert):
        title, severity = headline(alert.target, alert.summary, host), alert.severity.value
    elif isinstance(alert, BoardAlert) and alert.name != UNREADABLE:
        title, severity = f"{alert.name}: {alert.summary}", alert.severity
    else:
        title, severity = "", "WARN"
    title = f"{host}: {title}" if title else ""

    def write(answer: tuple[str, str] | None) -> None:
        store = _store(screen) if answer is not None else None
        if answer is None or store is None:
            return
        try:
            number = _stored_id(store, alert) if isinstance(alert, Alert) else None
            ids = [number] if number is not None else []
            made = open_incident(store, answer[0], answer[1], _who(), hosts=[host], alert_ids=ids)
            if isinstance(alert, BoardAlert):  # not in the state database: named in a note
                said = f"opened from {alert.source}'s alert {alert.name}: {alert.summary}"
                add_note(store, made.id, _who(), said)
        except (IncidentError, StoreError) as error:
            screen.notify(str(error), title="incident", severity="error")
            return
        screen.notify(f"incident {made.id} opened ({made.severity}): {made.title}")

    screen.app.push_screen(OpenIncident(host, title, priority_of(severity)), write)


def acknowledge_under_cursor(screen: HostScreen) -> None:
    """Acknowledge fleetdeck's alert under the cursor (who: the OS user)."""
    alert = _under_cursor(screen)
    if alert is None:
        return
    if isinstance(alert, BoardAlert):
        screen.notify(
            f"{alert.source} has no acknowledgement: silence it (S) or open an incident (i)",
            severity="warning",
        )
        return
    store = _store(screen)
    if store is None:
        return
    try:
        number = _stored_id(store, alert)
        if number is None:
            raise AckError(f"{alert.check} on {alert.host} is not in {store.path} yet")
        acknowledge(store, number, _who())
    except (AckError, StoreError) as error:
        screen.notify(str(error), title="acknowledge", severity="error")
        return
    screen.notify(f"alert {number} acknowledged by {_who()}")
    screen.host_watch.poll_now()  # the list shows it at once


def silence_under_cursor(screen: HostScreen) -> None:
    """Silence the alert under the cursor for SILENCE_FOR: fleetdeck's in the state
    database (this host, check and target), Alertmanager's through the action gate."""
    alert = _under_cursor(screen)
    if alert is None:
        return
    if isinstance(alert, BoardAlert):
        _silence_in_alertmanager(screen, alert)
        return
    store = _store(screen)
    if store is None:
        return
    parts = [f"host={alert.host}", f"check={alert.check}"]
    if alert.target and "," not in alert.target:  # a matcher's parts are split on commas
        parts.append(f"target={alert.target}")
    try:
        made = add_silence(store, ",".join(parts), SILENCE_FOR, _who(), "silenced from the console")
    except (MatcherError, StoreError) as error:
        screen.notify(str(error), title="silence", severity="error")
        return
    screen.notify(f"silence {made.id}: {made.text} for {human_duration(SILENCE_FOR)}")
    screen.host_watch.poll_now()


def _silence_in_alertmanager(screen: HostScreen, row: BoardAlert) -> None:
    from fleetdeck.checks.sources.silence import alert_finding, silence_host, silence_verifier
    from fleetdeck.hosts.prometheus.api import Alertmanager

    alert = screen.source_alerts.get(row)
    http = next(
        (s for s in screen.console.config.sources.alertmanager if alert and s.url == alert.source),
        None,
    )
    if alert is None or http is None:
        screen.notify(f"{row.name}: no longer listed; refresh (r)", severity="warning")
        return
    am = Alertmanager(http)
    finding = alert_finding(alert, SILENCE_FOR, _who(), f"silenced from {screen.host_name}")
    fix = finding.fixes[0]

    async def apply() -> None:
        result = await screen.console.gate.apply(
            silence_host(am), finding, fix, silence_verifier(am, fix)
        )
        said = f"{fix.title}: {result.outcome.value}: {result.message}"
        screen.notify(said, severity="information" if result.done else "warning")
        screen.console.read_sources_now()

    screen.run_worker(apply(), group="silence", exit_on_error=False)


def open_runbook(screen: HostScreen, alert: Alert) -> None:
    """Open the wizard the alert's rule's runbook names (S5 -> storage)."""
    hook = screen.host_watch.alerts.hook
    rule = hook.rule(alert.check, alert.target) if isinstance(hook, AlertRecorder) else None
    if rule is None or rule.wizard is None:
        said = f"runbook {rule.runbook} has no wizard" if rule and rule.runbook else "no runbook"
        screen.notify(f"{alert.check}: {said}", severity="warning")
        return
    screen.console.open_wizard(screen.host_watch, rule.wizard)
