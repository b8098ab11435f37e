"""The PostgreSQL domain: the database checks, wizard, fixes, pane and settings table."""
