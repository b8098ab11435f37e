"""fleetdeck: a terminal operations console for one host or a fleet.

The code lives in four folders at the top of the repository, `tui/`, `widgets/`, `checks/`
and `hosts/` (ARCHITECTURE.md), and is imported as `fleetdeck.tui`, `fleetdeck.widgets`,
`fleetdeck.checks` and `fleetdeck.hosts`: installed, only the name `fleetdeck` is taken, so no
other distribution's `checks` or `hosts` is shadowed. A wheel maps each subpackage to its folder
(pyproject's `package-dir`); in a clone, the four links beside this file do the same for mypy,
the benchmarks and `python -m fleetdeck` run from the clone's root.
"""
