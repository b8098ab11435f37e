"""The `health` parameter: the host's `[[services.http]]` entries that name a unit (`unit =
"NAME"`), as one JSON list, which is how a unit's endpoints reach the units check and the
service wizard (their parameters are strings). The settings give it (`config._params`, from
the merged per-group and per-host endpoints), `--health` takes the same text, checked here as
the settings file's entries are. What is done with it: `unit_health.py`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict

from fleetdeck.checks.services.probe_config import HttpEndpoint, parse_http
from fleetdeck.checks.settings import value_error

HEALTH = "health"
"""The parameter that carries the endpoints that name a unit."""


def health_param(endpoints: Sequence[HttpEndpoint]) -> str:
    """The endpoints that name a unit, as the `health` parameter ("" when none does)."""
    owned = [asdict(e) for e in endpoints if e.unit]
    return json.dumps(owned) if owned else ""


def parse_health(text: str) -> str:
    """The `health` parameter (`--health`), checked as the settings' entries are, normalised."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("health endpoints as a JSON list of [[services.http]] tables") from None
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise ValueError("health endpoints as a JSON list of [[services.http]] tables")
    endpoints = [parse_http(e, f"health[{i}]", value_error) for i, e in enumerate(data)]
    missing = next((i for i, e in enumerate(endpoints) if not e.unit), None)
    if missing is not None:
        raise ValueError(f"health[{missing}].unit: missing: the unit the endpoint belongs to")
    return health_param(endpoints)


def endpoints_by_unit(params: Mapping[str, str]) -> dict[str, tuple[HttpEndpoint, ...]]:
    """The `health` parameter (as `parse_health` or `health_param` gave it) by unit."""
    found: dict[str, tuple[HttpEndpoint, ...]] = {}
    for data in json.loads(params.get(HEALTH) or "[]"):
        endpoint = HttpEndpoint(**data)
        found[endpoint.unit] = (*found.get(endpoint.unit, ()), endpoint)
    return found
