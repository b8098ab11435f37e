"""The layers of ARCHITECTURE.md hold: imports run only downward, tui -> widgets -> checks ->
hosts; within checks/, a domain package imports the core (and hosts), never another domain nor
the assembly modules that know every domain; settings modules import no check; and checks/
and hosts/ run headless, without Textual or Rich.

The import rules are read from the source (every import, lazy and type-only ones included), so
a new module is held to them the day it is written.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAYERS = ("hosts", "checks", "widgets", "tui")  # each imports only itself and those before it
CORE = {
    "model",
    "actions",
    "audit",
    "alerts",
    "wizards",
    "hostcheck",
    "secrets",
    "settings",
    "sampled",
    "access",
    "domain",
    "owners",
}
ASSEMBLY = {"__init__", "catalog", "config", "registry", "runner", "watch", "scheduler"}
DOMAINS = {
    "resources",
    "network",
    "storage",
    "database",
    "containers",
    "incidents",
    "sources",
    "services",
}

# Imports the rules refuse that are still there, each with what removes it. The test fails
# when one disappears too, so this list only shrinks.
KNOWN: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(("fleetdeck", *parts)).removesuffix(".__init__")


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for top in LAYERS for p in (REPO / top).rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """Every fleetdeck module `path` imports; `from pkg import mod` counts as importing mod."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield full if full in modules else node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def _edges() -> Iterator[tuple[str, str]]:
    modules = _modules()
    for name, path in sorted(modules.items()):
        for target in sorted(set(_imports(path, modules))):
            if target.startswith("fleetdeck.") and target != name:
                yield name, target


def _checks_part(module: str) -> tuple[str, str] | None:
    """("core" | "assembly" | "domain", name) for a module of checks/, else None."""
    parts = module.split(".")
    if parts[:2] != ["fleetdeck", "checks"]:
        return None
    name = parts[2] if len(parts) > 2 else "__init__"
    if name in DOMAINS:
        return "domain", name
    assert name in CORE | ASSEMBLY, f"{module}: add it to CORE or ASSEMBLY in this test"
    return ("core" if name in CORE else "assembly"), name


def _is_settings(module: str) -> bool:
    """A settings module: `config`, `settings`, or one part of a domain's table
    (`services/probe_config.py`, the probes' keys of `[services]`)."""
    settings = module.endswith((".config", ".settings", "_config"))
    return settings and _checks_part(module) is not None


def _refusal(source: str, target: str) -> str | None:
    """Why the import source -> target breaks a rule, or None."""
    layer = LAYERS.index(source.split(".")[1])
    if LAYERS.index(target.split(".")[1]) > layer:
        return "imports a layer above its own"
    mine, theirs = _checks_part(source), _checks_part(target)
    if mine is None or theirs is None:
        return None
    if _is_settings(source) and not (_is_settings(target) or target == "fleetdeck.checks.model"):
        return "a settings module imports a check module"
    if mine[0] == "core" and theirs[0] != "core":
        return "the core imports a domain or an assembly module"
    if mine[0] == "domain" and theirs[0] == "assembly":
        return "a domain imports an assembly module"
    if mine[0] == "domain" and theirs[0] == "domain" and theirs != mine:
        return "a domain imports another domain"
    return None


def test_imports_run_downward_and_domains_import_only_the_core() -> None:
    refused = {(s, t): why for s, t in _edges() if (why := _refusal(s, t))}
    new = {edge: why for edge, why in refused.items() if edge not in KNOWN}
    assert not new, "\n".join(f"{s} -> {t}: {why}" for (s, t), why in new.items())
    assert set(KNOWN) <= set(refused), f"paid off, drop from KNOWN: {set(KNOWN) - set(refused)}"


def test_the_rules_refuse_what_they_say() -> None:
    """The rule checker itself, on imports that would break each rule."""
    assert _refusal("fleetdeck.hosts.ssh", "fleetdeck.checks.model")
    assert _refusal("fleetdeck.checks.model", "fleetdeck.widgets.cells")
    assert _refusal("fleetdeck.checks.network.wizard", "fleetdeck.checks.storage.config")
    assert _refusal("fleetdeck.checks.network.wizard", "fleetdeck.checks.catalog")
    assert _refusal("fleetdeck.checks.wizards", "fleetdeck.checks.registry")
    assert _refusal("fleetdeck.checks.storage.config", "fleetdeck.checks.storage.cleanup")
    assert _refusal("fleetdeck.checks.network.wizard", "fleetdeck.checks.network.parse") is None
    assert _refusal("fleetdeck.checks.network.wizard", "fleetdeck.checks.wizards") is None
    assert _refusal("fleetdeck.checks.runner", "fleetdeck.checks.storage.wizard") is None
    assert _refusal("fleetdeck.tui.app", "fleetdeck.hosts.ssh") is None


def test_checks_and_hosts_import_without_textual_or_rich() -> None:
    code = (
        "import sys, fleetdeck.checks, fleetdeck.hosts, fleetdeck.checks.runner\n"
        "import fleetdeck.checks.alerts, fleetdeck.hosts.samplers\n"
        "import fleetdeck.tui.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'textual', 'rich'})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_the_local_console_does_not_load_ssh() -> None:
    """Watching this machine needs no SSH: asyncssh and its crypto stay unloaded (memory)."""
    code = (
        "import sys, fleetdeck.tui.app, fleetdeck.tui.cli\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'asyncssh', 'yaml'})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
