"""Incidents: alert state that lasts (acks, silences, maintenance, flap damping), incidents
with their timeline, and the post-incident report (runbook R05, I1-I4). Headless: the store is
SQLite in fleetdeck's data directory, shared by every console and command on the machine."""
