"""The packages' arrows run one way, and no module imports itself back (docs/design.md).

cli -> (aws | local | rollout) -> figures -> the contracts at the top (schema.py,
environment_record.py, errors.py, pricing.py, cost_note.py) and the study engine (study/);
reporting renders for the CLI; the extension imports nothing of ours but schema.py and
environment_record.py. Every import counts: at the top, inside a function (a lazy import), under
``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

PACKAGE: Final = "concurrency_observer"
SOURCE: Final = Path(__file__).resolve().parents[2] / "src"

# Modules at the top of the package, below every package: they import only each other.
TOP: Final = "top"

# Each package: the groups it must not import.
FORBIDDEN: Final[Mapping[str, frozenset[str]]] = {
    TOP: frozenset(
        {"extension", "layer", "figures", "aws", "rollout", "local", "reporting", "cli"}
    ),
    "figures": frozenset({"extension", "layer", "aws", "rollout", "local", "reporting", "cli"}),
    "aws": frozenset({"rollout", "local", "reporting", "cli"}),
    "rollout": frozenset({"local", "reporting", "cli"}),
    "local": frozenset({"rollout", "reporting", "cli"}),
    "reporting": frozenset({"cli"}),
    "layer": frozenset({"figures", "aws", "rollout", "local", "reporting", "cli"}),
}
GROUPS: Final = frozenset({"extension", "cli", *FORBIDDEN} - {TOP})
# The extension runs inside Lambda: the standard library, itself and the two contracts only.
EXTENSION_MAY_IMPORT: Final = frozenset(
    {f"{PACKAGE}.schema", f"{PACKAGE}.environment_record", PACKAGE}
)


# The one loop left, on purpose for now: ``extension.sinks`` defines ``DeliveryResult`` and its
# ``create_sink`` imports the chosen sink lazily, while each sink imports ``DeliveryResult`` back.
# Harmless at run time (the package is loaded before a sink); it goes when ``DeliveryResult``
# moves to a module of its own, which the extension's hot path asks to do apart from this move.
ALLOWED_CYCLES: Final = (
    [
        f"{PACKAGE}.extension.sinks",
        f"{PACKAGE}.extension.sinks.cloudwatch",
        f"{PACKAGE}.extension.sinks.emf",
        f"{PACKAGE}.extension.sinks.protocol",
    ],
)


def module_files(source: Path) -> dict[str, Path]:
    """Every module under ``source``, by dotted name (a package by its own name)."""
    found = {}
    for path in sorted((source / PACKAGE).rglob("*.py")):
        parts = path.relative_to(source).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imported(module: str, path: Path, known: Mapping[str, Path]) -> Iterator[str]:
    """The modules of ours that ``module`` imports: ``from P import m`` names module P.m if any."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in known:
                    yield submodule
                elif base in known:
                    yield base


def import_graph(source: Path) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (itself left out)."""
    known = module_files(source)
    return {m: set(_imported(m, p, known)) - {m} for m, p in known.items()}


def group_of(module: str) -> str:
    """``aws`` for ``concurrency_observer.aws.report``; TOP for a module at the top.

    A package this file does not name counts as TOP, so its first import of a package fails here
    until the layout above says where it sits.
    """
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in GROUPS else TOP


def wrong_way(graph: Mapping[str, set[str]]) -> list[str]:
    """Every import that runs against the arrows, as ``a -> b (why)``."""
    found = []
    for module, imported in sorted(graph.items()):
        group = group_of(module)
        for target in sorted(imported):
            target_group = group_of(target)
            if group == "extension":
                if target_group != "extension" and target not in EXTENSION_MAY_IMPORT:
                    found.append(f"{module} -> {target} (the extension)")
            elif target_group in FORBIDDEN.get(group, frozenset()):
                found.append(f"{module} -> {target} ({group} must not import {target_group})")
    return found


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph.get(module, set())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def _tree(root: Path, files: Mapping[str, str]) -> Path:
    """A package tree under ``root`` from ``{relative path: source}``; returns the source root."""
    for relative, text in files.items():
        path = root / PACKAGE / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_arrows_run_one_way() -> None:
    """No module imports a package the layout puts above it."""
    assert wrong_way(import_graph(SOURCE)) == []


def test_no_import_cycle() -> None:
    """No two modules import each other, directly or round a longer loop, even lazily."""
    assert [c for c in cycles(import_graph(SOURCE)) if c not in ALLOWED_CYCLES] == []


def test_the_graph_sees_every_import_form() -> None:
    """Absolute, from-package, lazy and TYPE_CHECKING imports all land in the graph."""
    graph = import_graph(SOURCE)
    assert f"{PACKAGE}.figures.records" in graph[f"{PACKAGE}.aws.ranking"]  # from P import m as n
    assert f"{PACKAGE}.local.fleet_snapshot" in graph[f"{PACKAGE}.reporting.simulation_output"]
    assert f"{PACKAGE}.rollout.observer_settings" in graph[f"{PACKAGE}.rollout.publish"]
    assert f"{PACKAGE}.extension.main" in graph[f"{PACKAGE}.layer.bootstrap"]


def test_a_wrong_way_arrow_is_reported(tmp_path: Path) -> None:
    """Figures importing aws, and the extension importing aws, are both named."""
    source = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "schema.py": "",
            "aws/__init__.py": "",
            "aws/session.py": "",
            "figures/__init__.py": "",
            "figures/usage.py": (
                "def f() -> None:\n    from concurrency_observer.aws import session\n"
            ),
            "extension/__init__.py": "",
            "extension/main.py": (
                "from concurrency_observer import schema\nimport concurrency_observer.aws.session\n"
            ),
        },
    )
    graph = import_graph(source)
    problems = [p for p in wrong_way(graph) if "concurrency_observer.aws.session (" in p]
    assert [p.split(" ->")[0] for p in problems] == [
        f"{PACKAGE}.extension.main",
        f"{PACKAGE}.figures.usage",
    ]


def test_a_lazy_cycle_is_reported(tmp_path: Path) -> None:
    """Two modules that import each other, one of them inside a function, make one cycle."""
    source = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "rollout/__init__.py": "",
            "rollout/publish.py": "def f() -> None:\n    from .settings import x\n",
            "rollout/settings.py": "from concurrency_observer.rollout.publish import f\nx = 1\n",
            "rollout/detach.py": "from concurrency_observer.rollout import settings\n",
        },
    )
    assert cycles(import_graph(source)) == [
        [f"{PACKAGE}.rollout.publish", f"{PACKAGE}.rollout.settings"]
    ]
