"""Diagnostics: checks, findings, alert rules, fixes and the settings they read.

No Textual and no Rich here: the CLI's `check` command and the tests use this headless.
"""
