"""The services domain: systemd units, health endpoints, certificates, logs, security and limits."""
