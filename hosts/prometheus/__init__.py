"""Prometheus and Alertmanager as sources: the HTTP under them (http.py), their APIs read
into plain records (api.py), and a fleet sampled through PromQL (sampler.py)."""

from fleetdeck.hosts.prometheus.api import Alertmanager, Matcher, Prometheus
from fleetdeck.hosts.prometheus.http import Auth, HttpSource, SourceError, SourceGarbage

__all__ = [
    "Alertmanager",
    "Auth",
    "HttpSource",
    "Matcher",
    "Prometheus",
    "SourceError",
    "SourceGarbage",
]
