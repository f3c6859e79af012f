"""What the extension costs each Lambda environment, side by side with no extension and the floor.

Runs real environments under the AWS Runtime Interface Emulator (the local harness), variants
interleaved round-robin so slow drift of a shared machine hits them all alike, and prints the
medians over rounds, the ratios against the floor and the cost targets
(docs/design.md), each PASS or FAIL::

    .venv/bin/python -m benchmarks.extension_cost            # 40 rounds, ~3-4 min on 2 cores
    .venv/bin/python -m benchmarks.extension_cost --quick    # 15 rounds, under a minute, rougher
    .venv/bin/python -m benchmarks.extension_cost --rounds 60 --warm-invokes 500 --json out.json

Needs what the local environments need: Linux, root or user namespaces, the RIE (downloaded from
PyPI on first use), and ``openssl`` for the https variant. Exit status 0 when every target
passed, 1 when one failed, 2 on a setup error. docs/benchmarks.md explains every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks import procfs, report
from benchmarks.measure import Run, measure
from benchmarks.results import (
    CLOUDWATCH,
    CLOUDWATCH_HTTPS,
    NONE,
    Sample,
    SslCost,
    evaluate,
    summarize,
)
from benchmarks.tls_moto import HttpsCloudWatch
from benchmarks.variants import ALL_VARIANTS, Endpoint, Variant, make_variants, prepare_layers
from concurrency_observer.errors import UserError
from concurrency_observer.local import readback, rie
from concurrency_observer.local.cloudwatch import LocalCloudWatch

DEFAULT_ROUNDS = 40
DEFAULT_WARM_INVOKES = 300
QUICK_ROUNDS = 15
QUICK_WARM_INVOKES = 100
_SSL_PROBES = 5
_REPORT_WIDTH = 140  # wide enough for the tables when the output goes to a file


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; ``--quick`` changes only the defaults of the two counts."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.extension_cost",
        description="Measure what the extension costs each Lambda environment under the RIE.",
    )
    parser.add_argument("--rounds", type=int, help=f"rounds of every variant ({DEFAULT_ROUNDS})")
    parser.add_argument(
        "--warm-invokes",
        type=int,
        help=f"warm invokes per environment ({DEFAULT_WARM_INVOKES})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_ROUNDS} rounds of {QUICK_WARM_INVOKES} warm invokes (about a minute)",
    )
    parser.add_argument(
        "--variants",
        default=",".join(ALL_VARIANTS),
        help="comma-separated subset of " + ", ".join(ALL_VARIANTS) + " (none and floor always)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="rounds run first and thrown away (1)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also save every raw number")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS
    if args.warm_invokes is None:
        args.warm_invokes = QUICK_WARM_INVOKES if args.quick else DEFAULT_WARM_INVOKES
    if args.rounds < 1 or args.warm_invokes < 1 or args.warmup < 0:
        parser.error("--rounds and --warm-invokes must be at least 1, --warmup at least 0")
    unknown = set(args.variants.split(",")) - set(ALL_VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    wanted = {NONE, "floor", *args.variants.split(",")}
    args.variants = tuple(v for v in ALL_VARIANTS if v in wanted)
    return args


def ssl_cost(ours: Path, https: HttpsCloudWatch | None) -> SslCost:
    """``import ssl``'s resident memory in the python3 the layers' launchers run (medians).

    ``ours`` is our extracted layer: what ssl adds on top of our cloudwatch sink's modules;
    ``https``, if running, is shaken hands with to measure what a whole HTTPS client costs.
    """
    # The environments put the runtime's bin directory first on PATH, as Lambda does.
    python = str(Path(sys.executable).parent / "python3")

    def median_kb(code: str, env: dict[str, str] | None = None) -> int:
        probes = sorted(procfs.python_rss_kb(python, code, env) for _ in range(_SSL_PROBES))
        return probes[_SSL_PROBES // 2]

    code_dir = ours / "concurrency-observer"
    cloudwatch = (
        f"import sys; sys.path.insert(0, {str(code_dir)!r}); "
        "import concurrency_observer.extension.main; "
        "import concurrency_observer.extension.sinks.cloudwatch"
    )
    bare, alone = median_kb("pass"), median_kb("import ssl")
    floor, floor_ssl = median_kb("import json, socket"), median_kb("import json, socket, ssl")
    sink, sink_ssl = median_kb(cloudwatch), median_kb(cloudwatch + "; import ssl")
    cost = SslCost(
        standalone_mb=(alone - bare) / 1024,
        over_floor_mb=(floor_ssl - floor) / 1024,
        over_ours_mb=(sink_ssl - sink) / 1024,
    )
    if https is None:
        return cost
    port = https.endpoint_url.rsplit(":", 1)[1]
    handshake = (
        "import json, socket, ssl\n"
        "context = ssl.create_default_context()\n"
        "{trust}"
        f"raw = socket.create_connection(('127.0.0.1', {port}))\n"
        "context.wrap_socket(raw, server_hostname='127.0.0.1').close()"
    )
    # Like the environments: the test certificate alone, through OpenSSL's SSL_CERT_FILE; then
    # as on AWS: the system's trust store (no SSL_CERT_FILE), with the test certificate added.
    alone_store = median_kb(handshake.format(trust=""), {"SSL_CERT_FILE": str(https.cert)})
    system_store = median_kb(
        handshake.format(trust=f"context.load_verify_locations(cafile={str(https.cert)!r})\n"),
        {},
    )
    return replace(
        cost,
        https_client_mb=(alone_store - floor) / 1024,
        https_client_system_store_mb=(system_store - floor) / 1024,
    )


def warm_up_cloudwatch(client: Any) -> None:
    """Make moto load its CloudWatch backend now, not during the first environment's init."""
    client.put_metric_data(
        Namespace="ConcurrencyObserverBench/warm-up",
        MetricData=[{"MetricName": "WarmUp", "Value": 1.0, "Unit": "Count"}],
    )
    readback.read_cloudwatch(client, "ConcurrencyObserverBench/warm-up", datetime.now(timezone.utc))


def run_rounds(
    run: Run, variants: list[Variant], rounds: int, warmup: int, console: Console
) -> list[Sample]:
    """Every variant once per round, round-robin, the first variant rotating each round.

    The first ``warmup`` rounds are run the same way and thrown away: the first environments of
    a run pay for cold disk caches and lazy imports in the servers.
    """
    samples: list[Sample] = []
    for index in range(-warmup, rounds):
        began = time.monotonic()
        shift = index % len(variants)
        this_round = [measure(run, v, index) for v in variants[shift:] + variants[:shift]]
        problems = sum(len(s.errors) for s in this_round)
        label = "warm-up round" if index < 0 else f"round {index + 1}/{rounds}"
        console.log(
            f"{label}: {time.monotonic() - began:.1f} s"
            + (f", [red]{problems} problem(s)[/]" if problems else "")
        )
        for sample in this_round:
            for error in sample.errors:
                console.log(f"  {sample.variant}: {error}", highlight=False)
        if index >= 0:
            samples += this_round
    return samples


def measure_all(
    args: argparse.Namespace, log: Console
) -> tuple[list[Variant], list[Sample], SslCost]:
    """Start the local CloudWatch servers, run every round, and measure ``import ssl``."""
    run_id = f"{int(time.time())}-{os.getpid()}"
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="extension-cost-")))
        layers = prepare_layers(workdir)
        endpoints: dict[str, Endpoint] = {}
        clients: dict[str, Any] = {}
        if CLOUDWATCH in args.variants:
            local = stack.enter_context(LocalCloudWatch())
            endpoints[CLOUDWATCH] = Endpoint(local.endpoint_url)
            clients[CLOUDWATCH] = local.client()
        tls: HttpsCloudWatch | None = None
        if CLOUDWATCH_HTTPS in args.variants:
            tls = stack.enter_context(HttpsCloudWatch(workdir))
            endpoints[CLOUDWATCH_HTTPS] = Endpoint(tls.endpoint_url, tls.cert)
            clients[CLOUDWATCH_HTTPS] = tls.client()
        for client in clients.values():
            warm_up_cloudwatch(client)
        variants = make_variants(layers, endpoints, args.variants)
        run = Run(run_id, args.warm_invokes, clients)
        log.log(
            f"{len(variants)} variants x {args.rounds} rounds (+{args.warmup} warm-up), "
            f"{args.warm_invokes} warm invokes each"
        )
        samples = run_rounds(run, variants, args.rounds, args.warmup, log)
        return variants, samples, ssl_cost(layers.ours, tls)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables; the exit status says whether every target held."""
    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else _REPORT_WIDTH)
    log = Console(stderr=True)
    began = time.monotonic()
    try:
        rie.check_host()
        rie.rie_binary()  # download before the clock starts
        variants, samples, ssl = measure_all(args, log)
    except (UserError, RuntimeError, OSError, subprocess.CalledProcessError) as error:
        log.print(f"error: {error}", highlight=False)
        return 2
    summaries = summarize(samples, [v.name for v in variants])
    targets = evaluate(summaries, ssl)
    report.print_report(console, summaries, targets, ssl)
    elapsed = time.monotonic() - began
    console.print(f"{len(samples)} environments measured; the run took {elapsed:.0f} s")
    if args.json is not None:
        settings: dict[str, object] = {
            "rounds": args.rounds,
            "warmup_rounds": args.warmup,
            "warm_invokes": args.warm_invokes,
            "variants": list(args.variants),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "elapsed_s": round(elapsed, 1),
        }
        try:
            report.write_json(
                args.json,
                settings=settings,
                samples=samples,
                summaries=summaries,
                targets=targets,
                ssl=ssl,
            )
        except OSError as error:
            log.print(f"error: cannot write {args.json}: {error}", highlight=False)
            return 2
    return 0 if all(t.passed for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
