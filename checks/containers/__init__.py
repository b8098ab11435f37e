"""The Docker containers domain: the container checks, wizard, fixes, pane and settings table."""
