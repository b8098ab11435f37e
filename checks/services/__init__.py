"""The services domain: systemd units (R02), the journal's error lines (R06), the service
recovery wizard (C6), and the Services pane's reader. The endpoint probes (HTTP health, TLS,
security, limits) live beside them in modules of their own."""
