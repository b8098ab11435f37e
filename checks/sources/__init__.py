"""Prometheus and Alertmanager as sources: their settings (config.py), their alerts and
targets beside fleetdeck's own (alerts.py), and silences through the gate (silence.py)."""

from fleetdeck.checks.sources.config import PromSource, SourcesConfig, parse_sources

__all__ = ["PromSource", "SourcesConfig", "parse_sources"]
