"""The benchmark's tables (rich) and its raw numbers as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.results import FLOOR, NONE, Sample, SslCost, Summary, Target, ratio


def _num(value: float | None, digits: int = 1, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _times(value: float | None) -> str:
    return "" if value is None else f" ({value:.2f}x)"


def _https_client(ssl: SslCost) -> str:
    if ssl.https_client_mb is None or ssl.https_client_system_store_mb is None:
        return ""
    return (
        f". A whole HTTPS client (import ssl, create_default_context(), one handshake) adds "
        f"{ssl.https_client_mb:.1f} MB to the floor's modules trusting one certificate (as here), "
        f"{ssl.https_client_system_store_mb:.1f} MB with the system's trust store (as on AWS)"
    )


def init_memory_table(summaries: Sequence[Summary], ssl: SslCost) -> Table:
    """Init time and the extension's memory: medians over rounds, ratios against the floor."""
    floor = next(s for s in summaries if s.variant == FLOOR)
    table = Table(
        title="Init and memory (medians over rounds; 'added': minus 'none' of the same round; "
        "(Nx): against the floor)",
        title_justify="left",
        caption="to register: INIT START to the extension's registration in the RIE's log (the "
        "runtime starts only after it); ext. CPU: the extension's CPU time after the first "
        "invoke, which load on the machine does not inflate. "
        f"import ssl costs {ssl.standalone_mb:.1f} MB alone (python3 -I -S -c "
        f"'import ssl' minus 'pass'), {ssl.over_floor_mb:.1f} MB on top of the floor's "
        f"socket+json, {ssl.over_ours_mb:.1f} MB on top of our cloudwatch sink's modules"
        + _https_client(ssl),
        caption_justify="left",
    )
    for header in ("variant", "INIT REPORT ms", "added init ms", "cold invoke ms", "added cold ms"):
        table.add_column(header, justify="left" if header == "variant" else "right")
    table.add_column("to register ms", justify="right")
    table.add_column("ext. CPU ms", justify="right")
    table.add_column("ext. RSS MB", justify="right")
    table.add_column("ssl", justify="center")
    for s in summaries:
        if s.variant == NONE:
            table.add_row(s.variant, _num(s.init_report_ms), "", _num(s.cold_invoke_ms))
            continue
        table.add_row(
            s.variant,
            _num(s.init_report_ms),
            _num(s.added_init_ms, signed=True)
            + _times(ratio(s.added_init_ms, floor.added_init_ms)),
            _num(s.cold_invoke_ms),
            _num(s.added_cold_ms, signed=True)
            + _times(ratio(s.added_cold_ms, floor.added_cold_ms)),
            _num(s.register_ms),
            _num(s.cpu_ms) + _times(ratio(s.cpu_ms, floor.cpu_ms)),
            _num(s.rss_mb) + _times(ratio(s.rss_mb, floor.rss_mb)),
            "" if s.ssl_loaded is None else ("yes" if s.ssl_loaded else "no"),
        )
    return table


def invoke_shutdown_table(summaries: Sequence[Summary]) -> Table:
    """Warm invoke latency and shutdown: medians over rounds, overheads paired with ``none``."""
    table = Table(
        title="Warm invokes and shutdown (client latency over one keep-alive connection; "
        "overhead: minus 'none' of the same round)",
        title_justify="left",
    )
    for header in (
        "variant",
        "warm p50 ms",
        "p50 overhead ms",
        "warm p99 ms",
        "p99 overhead ms",
        "shutdown ms (max)",
        "all records delivered",
    ):
        table.add_column(header, justify="left" if header == "variant" else "right")
    for s in summaries:
        baseline = s.variant == NONE
        table.add_row(
            s.variant,
            _num(s.warm_p50_ms, 3),
            "" if baseline else _num(s.p50_overhead_ms, 3, signed=True),
            _num(s.warm_p99_ms, 3),
            "" if baseline else _num(s.p99_overhead_ms, 3, signed=True),
            f"{_num(s.shutdown_ms, 0)} ({_num(s.shutdown_max_ms, 0)})",
            f"{s.delivered_rounds}/{s.checked_rounds} rounds" if s.checked_rounds else "",
        )
    return table


def targets_table(targets: Sequence[Target]) -> Table:
    """The cost targets (docs/design.md), each with what was measured and PASS/FAIL."""
    table = Table(title="Targets (docs/design.md)", title_justify="left")
    for header in ("target", "rule", "measured", "result"):
        table.add_column(header)
    for t in targets:
        verdict = {True: "[green]PASS[/]", False: "[red]FAIL[/]", None: "[yellow]n/a[/]"}
        table.add_row(t.name, t.rule, t.measured, verdict[t.passed])
    return table


def print_report(
    console: Console, summaries: Sequence[Summary], targets: Sequence[Target], ssl: SslCost
) -> None:
    """Both tables, then every error a variant hit."""
    console.print(init_memory_table(summaries, ssl))
    console.print(invoke_shutdown_table(summaries))
    console.print(targets_table(targets))
    for s in summaries:
        for error in dict.fromkeys(s.errors):  # each distinct error once
            console.print(f"[red]{s.variant}:[/] {error}", markup=True, highlight=False)


def write_json(
    path: Path,
    *,
    settings: dict[str, object],
    samples: Sequence[Sample],
    summaries: Sequence[Summary],
    targets: Sequence[Target],
    ssl: SslCost,
) -> None:
    """Every raw sample (each warm latency too), the medians, the targets and the settings."""
    document = {
        "settings": settings,
        "ssl_cost": asdict(ssl),
        "summaries": [asdict(s) for s in summaries],
        "targets": [asdict(t) for t in targets],
        "samples": [asdict(s) | {"warm_p50": s.warm_p50, "warm_p99": s.warm_p99} for s in samples],
    }
    path.write_text(json.dumps(document, indent=1) + "\n")
