"""The report read back from moto's CloudWatch, seeded the way the extension writes its metrics.

Each environment's data points are written with PutMetricData once per dimension set of
schema.py; the expected figures are computed here from the environments themselves (alive at the
end of a period = born before its end and not yet shut down), independently of the report's
running sum.
"""

from __future__ import annotations

import csv
import io
import json
import math
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from moto import mock_aws

from concurrency_observer.aws.report import (
    NoMetricsError,
    ReportRequest,
    read_report,
    resolve_window,
)
from concurrency_observer.aws.session import client
from concurrency_observer.cli.report import report as report_command
from concurrency_observer.errors import AwsError, UserError
from concurrency_observer.figures.usage import nearest_rank
from concurrency_observer.schema import (
    BASE_DIMENSION_SETS,
    ENVIRONMENT_IDLE_TIME,
    ENVIRONMENT_INIT,
    ENVIRONMENT_INVOCATIONS,
    ENVIRONMENT_LIFETIME,
    ENVIRONMENT_SHUTDOWN,
    ENVIRONMENT_TIME_TO_FIRST_INVOKE,
    FIRST_INVOKE,
    FIRST_INVOKE_DELAYED,
    FIRST_INVOKE_NEVER,
    FIRST_INVOKE_PROMPT,
    FIRST_INVOKE_SET,
    FUNCTION_NAME,
    FUNCTION_VERSION,
    INIT_ON_DEMAND,
    INIT_PROVISIONED,
    INIT_TYPE,
    METRIC_UNITS,
    SHUTDOWN_REASON,
    SHUTDOWN_REASON_SET,
)

REGION = "us-east-1"
PERIOD = 60
WINDOW = timedelta(minutes=30)
LOOKBACK = timedelta(minutes=30)


@dataclass(frozen=True)
class Env:
    """One simulated execution environment; times are seconds after the window start."""

    init_type: str
    init_at: float
    shutdown_at: float | None = None
    reason: str = "spindown"
    invocations: int | None = 0  # None: SHUTDOWN-only, so no class either
    time_to_first_invoke: float | None = None
    idle: float = 0.0
    version: str = "1"

    @property
    def lifetime(self) -> float:
        assert self.shutdown_at is not None
        return self.shutdown_at - self.init_at

    @property
    def first_invoke(self) -> str | None:
        """The class the extension gives at shutdown (10 s threshold), None when unknown."""
        if self.invocations is None:
            return None
        if self.invocations == 0:
            return FIRST_INVOKE_NEVER
        assert self.time_to_first_invoke is not None
        return FIRST_INVOKE_PROMPT if self.time_to_first_invoke <= 10 else FIRST_INVOKE_DELAYED


# Staggered births and deaths, two init types: one born in the look-back, one born and gone
# within a single minute, one still alive, one born after the window's end; every FirstInvoke
# class in both init types, and one environment that ran SHUTDOWN-only (no class).
ENVS = (
    Env(INIT_ON_DEMAND, -1200, 370, "spindown", 7, 1.5, 40.0),
    Env(INIT_ON_DEMAND, 10, 605, "spindown", 5, 2.0, 100.0),
    Env(INIT_PROVISIONED, 60, 300, "spindown", 3, 30.0, 50.0),
    Env(INIT_PROVISIONED, 90),
    Env(INIT_ON_DEMAND, 185, 245, "timeout", 0, None, 60.0),
    Env(INIT_PROVISIONED, 700, 1500, "sandboxterminated", 12, 0.8, 20.0),
    Env(INIT_ON_DEMAND, 1000),
    Env(INIT_ON_DEMAND, 1210, 1250, "spindown", 1, 0.5, 10.0),
    Env(INIT_ON_DEMAND, 1900),
    Env(INIT_PROVISIONED, 30, 900, "spindown", 0, None, 870.0),
    Env(INIT_ON_DEMAND, 700, 1300, "spindown", 2, 45.0, 100.0),
    Env(INIT_ON_DEMAND, 680, 800, "spindown", None, None, 120.0),
)


def _dimension_values(env: Env, function: str) -> dict[str, str]:
    return {
        FUNCTION_NAME: function,
        FUNCTION_VERSION: env.version,
        INIT_TYPE: env.init_type,
        SHUTDOWN_REASON: env.reason,
    }


def _datum(
    name: str, value: float, when: datetime, dimensions: dict[str, str], dims: tuple[str, ...]
) -> dict[str, Any]:
    return {
        "MetricName": name,
        "Dimensions": [{"Name": d, "Value": dimensions[d]} for d in dims],
        "Timestamp": when,
        "Value": value,
        "Unit": METRIC_UNITS[name],
    }


def seed(
    cloudwatch: Any, namespace: str, function: str, t0: datetime, envs: tuple[Env, ...]
) -> None:
    """PutMetricData exactly as the extension does: each datum once per dimension set."""
    data: list[dict[str, Any]] = []
    for env in envs:
        values = _dimension_values(env, function)
        if env.first_invoke is not None:
            values[FIRST_INVOKE] = env.first_invoke
        born = t0 + timedelta(seconds=env.init_at)
        data += [_datum(ENVIRONMENT_INIT, 1, born, values, dims) for dims in BASE_DIMENSION_SETS]
        if env.shutdown_at is None:
            continue
        gone = t0 + timedelta(seconds=env.shutdown_at)
        at_shutdown = [
            (ENVIRONMENT_SHUTDOWN, 1.0),
            (ENVIRONMENT_LIFETIME, env.lifetime),
            (ENVIRONMENT_IDLE_TIME, env.idle),
        ]
        if env.invocations is not None:
            at_shutdown.append((ENVIRONMENT_INVOCATIONS, float(env.invocations)))
        if env.time_to_first_invoke is not None:
            at_shutdown.append((ENVIRONMENT_TIME_TO_FIRST_INVOKE, env.time_to_first_invoke))
        for name, value in at_shutdown:
            data += [_datum(name, value, gone, values, dims) for dims in BASE_DIMENSION_SETS]
        data.append(_datum(ENVIRONMENT_SHUTDOWN, 1, gone, values, SHUTDOWN_REASON_SET))
        if env.first_invoke is not None:
            data.append(_datum(ENVIRONMENT_SHUTDOWN, 1, gone, values, FIRST_INVOKE_SET))
    for first in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[first : first + 500])


def expected_document(envs: tuple[Env, ...], start: datetime, window: timedelta) -> dict[str, Any]:
    """The figures worked out from the environments, in the JSON document's shape."""
    end_offset = window.total_seconds()

    def in_window(offset: float | None) -> bool:
        return offset is not None and 0 <= offset < end_offset

    def alive_at(offset: float, env: Env) -> bool:
        return env.init_at < offset and (env.shutdown_at is None or env.shutdown_at >= offset)

    born = [e for e in envs if in_window(e.init_at)]
    gone = [e for e in envs if in_window(e.shutdown_at)]
    types = sorted({e.init_type for e in envs})
    series: list[dict[str, Any]] = []
    for minute in range(int(end_offset // PERIOD)):
        period_end = (minute + 1) * PERIOD
        series.append(
            {
                "timestamp": (start + timedelta(seconds=minute * PERIOD)).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
                "total": sum(alive_at(period_end, e) for e in envs),
                "peak": None,  # the metric path: no records, so no exact peak per period
                "by_init_type": {
                    t: sum(alive_at(period_end, e) for e in envs if e.init_type == t) for t in types
                },
            }
        )
    peak = max(point["total"] for point in series)

    def distribution(values: list[float]) -> dict[str, Any]:
        return {
            "count": len(values),
            "mean": sum(values) / len(values) if values else None,
            "max": max(values) if values else None,
            "total": float(sum(values)),
        }

    return {
        "inits": {
            "total": len(born),
            "by_init_type": {t: sum(e.init_type == t for e in born) for t in types},
        },
        "shutdowns": {
            "total": len(gone),
            "by_reason": {
                r: sum(e.reason == r for e in gone)
                for r in sorted({e.reason for e in envs if e.shutdown_at is not None})
            },
        },
        "live": {
            "at_start": sum(alive_at(0, e) for e in envs),
            "peak": peak,
            "peak_at": next(p["timestamp"] for p in series if p["total"] == peak),
            "current": series[-1]["total"],
            "series": series,
        },
        "lifetime_seconds": distribution([e.lifetime for e in gone]),
        "idle_time_seconds": distribution([e.idle for e in gone]),
        "time_to_first_invoke_seconds": distribution(
            [e.time_to_first_invoke for e in gone if e.time_to_first_invoke is not None]
        ),
        "invocations_per_environment": distribution(
            [float(e.invocations) for e in gone if e.invocations is not None]
        ),
        **expected_usage(envs, born, gone, types, series),
    }


def expected_usage(
    envs: tuple[Env, ...],
    born: list[Env],
    gone: list[Env],
    types: list[str],
    series: list[dict[str, Any]],
) -> dict[str, Any]:
    """The FirstInvoke breakdown, shares, quantiles and PC reconciliation, by hand."""

    def share(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    by_type: dict[str, Any] = {}
    for init_type in types:
        ended = [e for e in gone if e.init_type == init_type]
        classes = [e.first_invoke for e in ended]
        classified = sum(c is not None for c in classes)
        by_type[init_type] = {
            "created": sum(e.init_type == init_type for e in born),
            "shut_down": len(ended),
            "never_invoked": classes.count(FIRST_INVOKE_NEVER),
            "invoked_promptly": classes.count(FIRST_INVOKE_PROMPT),
            "invoked_delayed": classes.count(FIRST_INVOKE_DELAYED),
            "unclassified": classes.count(None),
            "never_invoked_share": share(classes.count(FIRST_INVOKE_NEVER), classified),
            "invoked_delayed_share": share(classes.count(FIRST_INVOKE_DELAYED), classified),
        }
    all_classes = [e.first_invoke for e in gone if e.first_invoke is not None]
    on_demand = by_type[INIT_ON_DEMAND]
    lifetimes = [e.lifetime for e in gone]
    # PC replacements: per minute, inits that did not take the live PC count above its peak.
    pc = [e for e in envs if e.init_type == INIT_PROVISIONED]
    peak, replaced = 0, 0
    for minute in range(-int(LOOKBACK.total_seconds() // PERIOD), len(series)):
        end = (minute + 1) * PERIOD
        alive = sum(e.init_at < end and (e.shutdown_at is None or e.shutdown_at >= end) for e in pc)
        created = sum(minute * PERIOD <= e.init_at < end for e in pc)
        recycled = created - min(max(alive - peak, 0), created)
        replaced += recycled if minute >= 0 else 0
        peak = max(peak, alive)
    pc_usage = by_type[INIT_PROVISIONED]
    return {
        "environments_by_init_type": by_type,
        "shares": {
            "never_invoked": share(all_classes.count(FIRST_INVOKE_NEVER), len(all_classes)),
            "proactive": share(
                on_demand["invoked_delayed"],
                on_demand["shut_down"] - on_demand["unclassified"],
            ),
        },
        "lifetime_quantiles": {
            "source": "per-period-means",  # moto has no percentile statistics
            **{f"p{p}": nearest_rank(lifetimes, p) for p in (50, 90, 99)},
        },
        "pc_replaced": replaced,
        "pc_peak_live": max(
            sum(p["by_init_type"][INIT_PROVISIONED] for p in series[i : i + 1])
            for i in range(len(series))
        ),
        "pc_usage": pc_usage,
    }


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials and a region; nothing from the host's AWS configuration."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CONCURRENCY_OBSERVER_NAMESPACE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


@pytest.fixture
def cloudwatch(aws_env: None) -> Iterator[Any]:
    """A CloudWatch client on moto's in-process backend."""
    with mock_aws():
        yield client("cloudwatch", REGION)


@dataclass(frozen=True)
class Seeded:
    """A namespace and function unique to the test (moto ignores the namespace in some queries)."""

    namespace: str
    function: str
    start: datetime


@pytest.fixture
def seeded(cloudwatch: Any) -> Seeded:
    """ENVS written to moto; the window starts 40 minutes ago, on a minute boundary."""
    suffix = uuid.uuid4().hex[:8]
    now = datetime.now(timezone.utc)
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=40)
    namespace, function = f"Test/{suffix}", f"fn-{suffix}"
    seed(cloudwatch, namespace, function, start, ENVS)
    return Seeded(namespace, function, start)


def _cli_json(seeded: Seeded, *extra: str) -> tuple[dict[str, Any], str]:
    args = [
        "--function", seeded.function,
        "--namespace", seeded.namespace,
        "--region", REGION,
        "--start", seeded.start.isoformat(),
        "--end", (seeded.start + WINDOW).isoformat(),
        "--lookback", "30m",
        "--period", str(PERIOD),
        *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(report_command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def test_json_figures_equal_the_hand_computed_ones(seeded: Seeded) -> None:
    """Every figure of ``report --format json`` matches the environments' own arithmetic."""
    document, _ = _cli_json(seeded, "--format", "json", "--provisioned", "2")
    expected = expected_document(ENVS, seeded.start, WINDOW)
    for key in ("inits", "shutdowns", "live"):
        assert document[key] == expected[key], key
    for key in (
        "lifetime_seconds",
        "idle_time_seconds",
        "time_to_first_invoke_seconds",
        "invocations_per_environment",
    ):
        assert document[key] == pytest.approx(expected[key]), key
    assert document["provisioned"] == {
        "requested": 2,
        "peak_ratio": pytest.approx(expected["live"]["peak"] / 2),
    }
    assert document["function"] == seeded.function
    assert document["breakdown_scope"] == "function"
    assert document["window"]["lookback_start"] == (seeded.start - LOOKBACK).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert document["warnings"] == []
    # The seed is rich enough to mean something: look-back, same-minute env, after-window env.
    assert expected["live"]["at_start"] == 1
    assert expected["inits"]["total"] == 10


def test_usage_figures_equal_the_hand_computed_ones(seeded: Seeded) -> None:
    """Classes per init type, shares, lifetime quantiles and the PC reconciliation, by hand."""
    document, _ = _cli_json(seeded, "--format", "json", "--provisioned", "2")
    expected = expected_document(ENVS, seeded.start, WINDOW)
    # Exact: the same divisions of the same whole numbers.
    assert document["environments_by_init_type"] == expected["environments_by_init_type"]
    assert document["shares"] == expected["shares"]
    assert document["lifetime_quantiles"] == expected["lifetime_quantiles"]
    pc = expected["pc_usage"]
    hours = WINDOW.total_seconds() / 3600
    assert document["provisioned_concurrency"] == (
        {
            "source": "option",
            "requested": 2,
            "allocated": None,
            "environments_created": pc["created"],
            "peak_live": expected["pc_peak_live"],
            "peak_to_requested": expected["pc_peak_live"] / 2,
            "shut_down": pc["shut_down"],
            "ever_invoked": pc["invoked_promptly"] + pc["invoked_delayed"],
            "never_invoked": pc["never_invoked"],
            "unclassified": pc["unclassified"],
            "replaced": expected["pc_replaced"],
            "replaced_per_hour": expected["pc_replaced"] / hours,
        }
    )
    # Every class occurs, the PC side recycles, and one shutdown is unclassified.
    assert expected["pc_replaced"] >= 1
    assert all(expected["shares"].values())
    assert expected["environments_by_init_type"][INIT_ON_DEMAND]["unclassified"] == 1
    assert any("no FirstInvoke class" in note for note in document["notes"])
    assert any("approximated from per-period means" in note for note in document["notes"])
    # The survival curve: age 0, then each nearest-rank percentile of the lifetimes, then the max.
    lifetimes = [
        e.lifetime for e in ENVS if e.shutdown_at is not None and 0 <= e.shutdown_at < 1800
    ]
    expected_curve = [
        {"seconds": 0.0, "surviving_share": 1.0},
        *(
            {"seconds": nearest_rank(lifetimes, p), "surviving_share": 1 - p / 100}
            for p in (1, 5, 10, 25, 50, 75, 90, 95, 99)
        ),
        {"seconds": max(lifetimes), "surviving_share": 0.0},
    ]
    assert document["lifetime_survival"] == expected_curve


def test_csv_has_the_same_numbers_as_json(seeded: Seeded) -> None:
    """The CSV rows carry exactly the JSON document's figures, by JSON path."""
    document, _ = _cli_json(seeded, "--format", "json", "--provisioned", "2")
    args = [
        "--function", seeded.function, "--namespace", seeded.namespace, "--region", REGION,
        "--start", seeded.start.isoformat(), "--end", (seeded.start + WINDOW).isoformat(),
        "--lookback", "30m", "--format", "csv", "--provisioned", "2",
    ]  # fmt: skip
    result = CliRunner().invoke(report_command, args, catch_exceptions=False)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    cells = {(r["section"], r["key"], r["timestamp"]): r["value"] for r in rows}
    assert cells[("inits", "total", "")] == str(document["inits"]["total"])
    for init_type, count in document["inits"]["by_init_type"].items():
        assert cells[("inits", f"by_init_type.{init_type}", "")] == str(count)
    for reason, count in document["shutdowns"]["by_reason"].items():
        assert cells[("shutdowns", f"by_reason.{reason}", "")] == str(count)
    for name in ("at_start", "peak", "current"):
        assert cells[("live", name, "")] == str(document["live"][name])
    for point in document["live"]["series"]:
        assert cells[("live", "series.total", point["timestamp"])] == str(point["total"])
        for init_type, count in point["by_init_type"].items():
            key = ("live", f"series.by_init_type.{init_type}", point["timestamp"])
            assert cells[key] == str(count)
    for name, value in document["provisioned_concurrency"].items():
        assert cells[("provisioned_concurrency", name, "")] == ("" if value is None else str(value))
    for init_type, usage in document["environments_by_init_type"].items():
        for name, value in usage.items():
            key = ("environments_by_init_type", f"{init_type}.{name}", "")
            assert cells[key] == ("" if value is None else str(value))
    assert cells[("lifetime_quantiles", "p50", "")] == str(document["lifetime_quantiles"]["p50"])
    assert cells[("lifetime_survival", "0.surviving_share", "")] == "1.0"
    for section in (
        "lifetime_seconds",
        "invocations_per_environment",
        "time_to_first_invoke_seconds",
    ):
        for name, value in document[section].items():
            cell = cells[(section, name, "")]
            assert cell == "" if value is None else math.isclose(float(cell), value), (
                section,
                name,
            )


def test_png_chart_is_a_valid_image(seeded: Seeded, tmp_path: Path) -> None:
    """``--plot`` writes a PNG that matplotlib reads back at the chart's size."""
    from matplotlib.image import imread

    chart = tmp_path / "live.png"
    _, stderr = _cli_json(seeded, "--format", "json", "--plot", str(chart), "--provisioned", "3")
    data = chart.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (1000, 800)  # live environments above, lifetime survival below
    assert imread(chart).shape[:2] == (800, 1000)
    assert str(chart) in stderr


def test_table_format_shows_the_figures(seeded: Seeded) -> None:
    """The default table names the function and shows the init and shutdown breakdowns."""
    args = [
        "--function", seeded.function, "--namespace", seeded.namespace, "--region", REGION,
        "--start", seeded.start.isoformat(), "--end", (seeded.start + WINDOW).isoformat(),
        "--lookback", "30m",
    ]  # fmt: skip
    result = CliRunner().invoke(report_command, args, catch_exceptions=False)
    expected = expected_document(ENVS, seeded.start, WINDOW)
    assert result.exit_code == 0
    assert seeded.function in result.stdout
    assert "provisioned-concurrency" in result.stdout
    assert "sandboxterminated" in result.stdout
    assert f"{expected['live']['peak']} at" in result.stdout
    assert "Why the environments exist" in result.stdout
    assert "proactive share of on-demand 20%" in " ".join(result.stdout.split())  # 1 late of 5
    assert "lifetime quantiles (s): p50" in result.stdout


def test_version_totals_and_all_versions_breakdown(cloudwatch: Any) -> None:
    """With a version, totals are that version's; breakdowns say they cover all versions."""
    suffix = uuid.uuid4().hex[:8]
    namespace, function = f"Test/{suffix}", f"fn-{suffix}"
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=20)
    envs = (
        Env(INIT_ON_DEMAND, 30, 200, "spindown", 2, 1.0, 5.0, version="1"),
        Env(INIT_PROVISIONED, 40, None, version="1"),
        Env(INIT_ON_DEMAND, 50, 400, "timeout", 4, 1.0, 5.0, version="2"),
    )
    seed(cloudwatch, namespace, function, start, envs)
    window = resolve_window(
        now=datetime.now(timezone.utc), start=start, end=start + timedelta(minutes=10)
    )
    result = read_report(cloudwatch, ReportRequest(function, window, namespace, version="1"))
    document = result.to_dict()
    assert document["inits"] == {
        "total": 2,  # version 1 only
        "by_init_type": {INIT_ON_DEMAND: 2, INIT_PROVISIONED: 1},  # all versions
    }
    assert document["shutdowns"]["total"] == 1
    assert document["breakdown_scope"] == "all-versions"
    assert any("all versions" in note for note in document["notes"])
    assert all(point["by_init_type"] == {} for point in document["live"]["series"])
    assert document["live"]["current"] == 1


def test_unknown_version_is_no_data(seeded: Seeded, cloudwatch: Any) -> None:
    """A version with no data is reported as such, though other versions have breakdowns."""
    window = resolve_window(now=datetime.now(timezone.utc), start=seeded.start)
    request = ReportRequest(seeded.function, window, seeded.namespace, version="99")
    with pytest.raises(NoMetricsError, match=f"no data for {seeded.function} version 99"):
        read_report(cloudwatch, request)


def test_since_and_start_together_are_refused() -> None:
    """--since and --start contradict each other: a one-line error before any AWS call."""
    result = CliRunner().invoke(
        report_command, ["--function", "fn", "--since", "1h", "--start", "2026-11-27T00:00Z"]
    )
    assert isinstance(result.exception, UserError)
    assert "either --since or --start" in str(result.exception)


def test_short_lookback_is_reported(seeded: Seeded, cloudwatch: Any) -> None:
    """An environment born before the look-back and shut down inside it raises a warning."""
    window = resolve_window(
        now=datetime.now(timezone.utc),
        start=seeded.start,
        end=seeded.start + WINDOW,
        lookback=timedelta(minutes=5),
    )
    result = read_report(cloudwatch, ReportRequest(seeded.function, window, seeded.namespace))
    assert any("more shutdowns than inits" in w for w in result.warnings)
    assert any("longer than the look-back" in w for w in result.warnings)
    # The on-demand environment born before the look-back drives its type's count below zero.
    assert min(point.by_init_type[INIT_ON_DEMAND] for point in result.live) < 0


def test_unknown_function_gets_a_clear_message(cloudwatch: Any) -> None:
    """A function with no metrics at all: one line naming the function and what to check."""
    window = resolve_window(now=datetime.now(timezone.utc), since=timedelta(hours=1))
    request = ReportRequest(f"nobody-{uuid.uuid4().hex[:8]}", window, "Test/none")
    with pytest.raises(
        NoMetricsError, match="no concurrency-observer metrics or records for function nobody"
    ):
        read_report(cloudwatch, request)


def test_window_without_data_says_metrics_exist(seeded: Seeded, cloudwatch: Any) -> None:
    """A known function but an empty window: the message says to move the window."""
    window = resolve_window(
        now=datetime.now(timezone.utc),
        start=seeded.start - timedelta(hours=5),
        end=seeded.start - timedelta(hours=4),
        lookback=timedelta(0),
    )
    with pytest.raises(NoMetricsError, match="metrics exist for the function"):
        read_report(cloudwatch, ReportRequest(seeded.function, window, seeded.namespace))


def test_missing_permission_is_one_line(aws_env: None) -> None:
    """AccessDenied from ListMetrics becomes an AwsError naming the action and the fix."""
    from botocore.stub import Stubber

    cloudwatch = client("cloudwatch", REGION)
    window = resolve_window(now=datetime.now(timezone.utc), since=timedelta(hours=1))
    with Stubber(cloudwatch) as stubber:
        stubber.add_client_error(
            "list_metrics", service_error_code="AccessDenied", http_status_code=403
        )
        with pytest.raises(AwsError, match=r"cloudwatch:ListMetrics: AccessDenied.*IAM"):
            read_report(cloudwatch, ReportRequest("fn", window))
