"""Where the extension's start-up time and memory go, module by module: the profile behind a miss.

Imports what the extension imports at cold start (``main`` and the chosen sink's module, from the
built layer) in ``python3 -I -S -B`` as the launcher runs it, and prints, for the modules that
cost the most:

- the import time from ``-X importtime`` (self and cumulative, medians of a few runs);
- the resident memory each adds, measured by importing the modules one by one in the order
  Python completed them (children first), so each step loads that module alone.

::

    .venv/bin/python -m benchmarks.import_cost --sink cloudwatch --https
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from concurrency_observer.layer import build_layer, extract_layer

_RUNS = 5
# Imported by every python3 -I -S before any code runs: not the extension's to pay for.
_RSS_STEPS = """
import sys
def rss():
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
sys.path.insert(0, sys.argv[1])
steps, previous = [], rss()
for statement in sys.argv[2:]:
    before = set(sys.modules)
    try:
        exec(statement)
    except Exception:  # a module of an import cycle cannot load first: its importer will
        for name in set(sys.modules) - before:
            del sys.modules[name]
    now = rss()
    steps.append([statement, now - previous])
    previous = now
print(__import__('json').dumps(steps))
"""


@dataclass(frozen=True)
class ModuleCost:
    """One module's import: its self and cumulative time (µs), what it added to RSS (KiB)."""

    name: str
    self_us: float
    cumulative_us: float
    rss_kb: int


def _python() -> str:
    # The python3 the environments' launchers run: the runtime's, first on PATH.
    return str(Path(sys.executable).parent / "python3")


def _statements(sink: str, https: bool) -> list[str]:
    statements = [
        "import concurrency_observer.extension.main",
        f"import concurrency_observer.extension.sinks.{sink}",
    ]
    if https:
        # What the cloudwatch sink does on its first https request (http11._default_tls_context).
        statements.append("import ssl; ssl.create_default_context()")
    return statements


def import_times(code_dir: Path, statements: list[str]) -> list[tuple[str, float, float]]:
    """``(module, self µs, cumulative µs)`` in completion order, medians over a few runs."""
    program = f"import sys; sys.path.insert(0, {str(code_dir)!r}); " + "; ".join(statements)
    runs: list[list[tuple[str, int, int]]] = []
    for _ in range(_RUNS):
        stderr = subprocess.run(
            [_python(), "-I", "-S", "-B", "-X", "importtime", "-c", program],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        rows = []
        for line in stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line:
                continue
            raw_self, raw_cumulative, raw_name = line.removeprefix("import time:").split("|")
            if raw_self.strip().isdigit():
                rows.append((raw_name.strip(), int(raw_self), int(raw_cumulative)))
        runs.append(rows)
    by_name: dict[str, list[tuple[int, int]]] = {}
    for rows in runs:
        for module, self_us, cumulative_us in rows:
            by_name.setdefault(module, []).append((self_us, cumulative_us))
    order = [module for module, _, _ in runs[0]]
    return [
        (
            name,
            statistics.median(s for s, _ in by_name[name]),
            statistics.median(c for _, c in by_name[name]),
        )
        for name in order
    ]


def rss_steps(code_dir: Path, statements: list[str]) -> list[tuple[str, int]]:
    """What each statement adds to RSS (KiB), run one after the other in one process."""
    out = subprocess.run(
        [_python(), "-I", "-S", "-B", "-c", _RSS_STEPS, str(code_dir), *statements],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [(str(statement), int(kb)) for statement, kb in json.loads(out)]


def profile(code_dir: Path, sink: str, https: bool) -> list[ModuleCost]:
    """Every module the extension's cold start imports, with its time and memory."""
    statements = _statements(sink, https)
    times = import_times(code_dir, statements)
    # Children complete first, so importing in completion order loads one new module per step
    # (a module inside an import cycle fails alone and is counted with the one importing it).
    steps = rss_steps(code_dir, [f"import {name}" for name, _, _ in times] + statements[-1:])
    rss = {statement.removeprefix("import "): kb for statement, kb in steps}
    costs = [ModuleCost(name, s, c, rss.get(name, 0)) for name, s, c in times]
    if https:
        costs.append(ModuleCost("ssl.create_default_context()", 0, 0, steps[-1][1]))
    return costs


def _table(title: str, costs: list[ModuleCost]) -> Table:
    table = Table(title=title, title_justify="left")
    for header in ("module", "adds RSS KB", "self ms", "cumulative ms"):
        table.add_column(header, justify="left" if header == "module" else "right")
    for cost in costs:
        table.add_row(
            cost.name,
            str(cost.rss_kb),
            f"{cost.self_us / 1000:.2f}",
            f"{cost.cumulative_us / 1000:.2f}",
        )
    return table


def main(argv: list[str] | None = None) -> int:
    """Print the costliest modules by time and by memory."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.import_cost", description=__doc__)
    parser.add_argument("--sink", choices=("emf", "cloudwatch"), default="emf")
    parser.add_argument("--https", action="store_true", help="also import ssl and make a context")
    parser.add_argument("--top", type=int, default=15, help="rows per table (15)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="import-cost-") as workdir:
        layer = extract_layer(build_layer(Path(workdir) / "layer.zip").path, Path(workdir) / "l")
        costs = profile(layer / "concurrency-observer", args.sink, args.https)
    console = Console()
    what = f"sink {args.sink}{' over https' if args.https else ''}"
    total_ms = sum(c.self_us for c in costs) / 1000
    total_mb = sum(c.rss_kb for c in costs) / 1024
    console.print(
        f"Cold-start imports, {what}: {len(costs)} modules, {total_mb:.1f} MB, {total_ms:.1f} ms "
        "(sum of self times; -X importtime inflates them)"
    )
    for title, key in (
        ("by memory", lambda c: c.rss_kb),
        ("by import time", lambda c: c.self_us),
    ):
        console.print(
            _table(f"Top {args.top} {title}", sorted(costs, key=key, reverse=True)[: args.top])
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
