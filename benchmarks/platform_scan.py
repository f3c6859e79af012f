"""What reading the platform's lines costs ``report``: FilterLogEvents calls and bytes.

The baseline is the scan of the records alone (``aws.records.RECORD_FILTER_PATTERN``); beside it
the same scan that also returns the platform's lines (``RECORD_AND_PLATFORM_PATTERN``), in both
log formats. The log group is filled the way the harness fills it (``local.log_delivery``: each
environment's RIE output rewritten as Lambda's lines) on an in-process moto, for ``--environments``
environments of ``--invocations`` invocations each (one line of the function's own per
invocation)::

    .venv/bin/python -m benchmarks.platform_scan
    .venv/bin/python -m benchmarks.platform_scan --environments 1000 --invocations 50

moto does not parse ``?`` (OR) patterns and returns every event for them, so beside what moto
returned the table gives what AWS returns: the events whose message holds one of the pattern's
terms (AWS matches a quoted term as an exact phrase), and the calls those take at AWS's page
limits (10,000 events or 1 MB a call).
"""

from __future__ import annotations

import argparse
import json
import math
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from rich.console import Console
from rich.table import Table

from concurrency_observer import environment_record as rec
from concurrency_observer.aws.records import read_records
from concurrency_observer.figures.platform_lines import FILTER_TERMS
from concurrency_observer.local.lambda_log_lines import (
    LOG_FORMAT_JSON,
    LOG_FORMAT_TEXT,
    LogSettings,
)
from concurrency_observer.local.log_delivery import LambdaLogDelivery

REGION: Final = "us-east-1"
_PAGE_EVENTS: Final = 10_000
_PAGE_BYTES: Final = 1_048_576


def environment_output(index: int, invocations: int, now_ms: int) -> str:
    """One on-demand environment's RIE output: its init, the invocations, its record."""
    stamp = "04 Dec 2026 16:55:32,{:03d} [INFO] (rapid) "
    lines = [
        stamp.format(203) + "INIT START(type: on-demand, phase: init)",
        stamp.format(210) + "External agent concurrency-observer (id) registered",
        stamp.format(300) + "INIT RTDONE(status: success)",
        stamp.format(301) + "INIT REPORT(durationMs: 97.500000)",
    ]
    for call in range(invocations):
        request = str(uuid.UUID(int=index * 1_000_000 + call))
        lines += [
            f"START RequestId: {request} Version: $LATEST",
            f"2026-12-04T16:55:33.000Z\t{request}\tINFO\thandled order {call}",
            f"END RequestId: {request}",
            f"REPORT RequestId: {request}\tDuration: 12.25 ms\tBilled Duration: 13 ms",
        ]
    record = {
        rec.MARKER_KEY: rec.VERSION,
        rec.FUNCTION_NAME: "bench",
        rec.FUNCTION_VERSION: "$LATEST",
        rec.INIT_TYPE: "on-demand",
        rec.ENVIRONMENT_ID: f"{index:016x}",
        rec.ENGINE: rec.ENGINE_BASH,
        rec.METRICS_PROFILE: rec.PROFILE_LEAN,
        rec.INIT_TIME: now_ms - 60_000,
        rec.SHUTDOWN_TIME: now_ms,
        rec.SHUTDOWN_REASON: "spindown",
        rec.LIFETIME_MS: 60_000,
        rec.IDLE_MS: 50_000,
        rec.INVOCATIONS: invocations,
    }
    return "\n".join([*lines, json.dumps(record)])


@dataclass(frozen=True)
class ScanCost:
    """One scan: what moto returned, and what AWS would."""

    moto_calls: int
    moto_bytes: int
    aws_events: int
    aws_bytes: int
    records: int
    filled: int  # records whose stream had platform lines

    @property
    def aws_calls(self) -> int:
        """Calls at AWS's page limits (at least one)."""
        by_events = math.ceil(self.aws_events / _PAGE_EVENTS)
        by_bytes = math.ceil(self.aws_bytes / _PAGE_BYTES)
        return max(1, by_events, by_bytes)


def _aws_share(logs: Any, group: str, terms: tuple[str, ...]) -> tuple[int, int]:
    """Events and bytes of the group whose message holds one of ``terms``."""
    events = size = 0
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
        for event in page["events"]:
            message = event["message"]
            if any(term in message for term in terms):
                events += 1
                size += len(message.encode("utf-8"))
    return events, size


def measure_format(log_format: str, environments: int, invocations: int) -> dict[str, ScanCost]:
    """The baseline scan and the combined one over a group filled in ``log_format``."""
    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    with mock_aws():
        logs = boto3.client("logs", region_name=REGION)
        delivery = LambdaLogDelivery(logs, "bench", log_settings=LogSettings(log_format))
        now_ms = int(time.time() * 1000)
        for index in range(environments):
            delivery.deliver(environment_output(index, invocations, now_ms))
        group = delivery.log_group
        now = datetime.now(timezone.utc)
        start = now - timedelta(minutes=5)
        costs = {}
        for name, with_lines in (("records only", False), ("records + platform lines", True)):
            scan = read_records(logs, group, start, now, platform_lines=with_lines)
            terms = (rec.MARKER_KEY, *FILTER_TERMS) if with_lines else (rec.MARKER_KEY,)
            aws_events, aws_bytes = _aws_share(logs, group, terms)
            streams = scan.log_streams
            joined = sum(
                1
                for r in scan.records
                if streams.get(str(r[rec.ENVIRONMENT_ID])) in scan.platform.by_stream
            )
            costs[name] = ScanCost(
                scan.pages, scan.bytes_returned, aws_events, aws_bytes, len(scan.records), joined
            )
        return costs


def main(argv: list[str] | None = None) -> None:
    """Measure both formats and print them side by side."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--environments", type=int, default=200)
    parser.add_argument("--invocations", type=int, default=20, help="per environment")
    args = parser.parse_args(argv)
    table = Table(
        title=f"FilterLogEvents for {args.environments} environments x {args.invocations} "
        "invocations (moto; AWS: the events a term matches, at 10,000 events / 1 MB a call)"
    )
    for column in (
        "log format",
        "pattern",
        "records",
        "joined",
        "AWS calls",
        "AWS events",
        "AWS bytes",
        "moto calls",
        "moto bytes",
    ):
        table.add_column(column, justify="left" if column in ("log format", "pattern") else "right")
    for log_format in (LOG_FORMAT_TEXT, LOG_FORMAT_JSON):
        for name, cost in measure_format(log_format, args.environments, args.invocations).items():
            table.add_row(
                log_format,
                name,
                str(cost.records),
                str(cost.filled),
                str(cost.aws_calls),
                f"{cost.aws_events:,}",
                f"{cost.aws_bytes:,}",
                str(cost.moto_calls),
                f"{cost.moto_bytes:,}",
            )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
