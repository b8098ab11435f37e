"""Figures of the code's shape: files and lines per package, and the import cycles.

    .venv/bin/python scripts/code_map.py [ROOT]

ROOT is a checkout of fleetdeck (default: this one); to measure an older commit, extract it
first (`git archive COMMIT | tar -x -C /tmp/old`). The import graph is read the way
`tests/test_layers.py` reads it (every import, lazy and type-only ones included), with that
checkout's own copy of the test, so both trees are measured by their own rules. A cycle is a
strongly connected group of modules that import each other, directly or not.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

FOLDERS = ("checks", "hosts", "widgets", "tui")


def _layers_test(root: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("layers_at_root", root / "tests/test_layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def packages(root: Path) -> dict[str, tuple[int, int]]:
    """(files, lines) per package: each folder's top level, and each subpackage of it."""
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for folder in FOLDERS:
        for path in (root / folder).rglob("*.py"):
            parts = path.relative_to(root).parts
            key = "/".join(parts[:2]) + "/" if len(parts) > 2 else f"{folder}/ (top level)"
            lines = len(path.read_text().splitlines())
            for name in (key, f"{folder}/ (all)"):
                found[name][0] += 1
                found[name][1] += lines
    return {name: (files, lines) for name, (files, lines) in sorted(found.items())}


def cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target in edges:
        graph[source].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else Path(__file__).resolve().parent.parent).resolve()
    print(f"{'package':<32} {'files':>5} {'lines':>7}")
    for name, (files, lines) in packages(root).items():
        print(f"{name:<32} {files:>5} {lines:>7}")
    found = cycles(_layers_test(root)._edges())
    print(f"\nimport cycles: {len(found)}")
    for group in found:
        print("  " + " <-> ".join(m.removeprefix("fleetdeck.") for m in group))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
