"""The dashboard: its body, and PutDashboard through the CLI read back with GetDashboard (moto)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from moto import mock_aws

from concurrency_observer.aws.dashboard import (
    LIVE_EXPRESSION,
    check_dashboard_name,
    console_url,
    dashboard_body,
    default_dashboard_name,
)
from concurrency_observer.aws.session import client
from concurrency_observer.cli.dashboard import dashboard as dashboard_command
from concurrency_observer.errors import UserError
from concurrency_observer.schema import (
    ENVIRONMENT_DELTA,
    ENVIRONMENT_INIT,
    ENVIRONMENT_INVOCATIONS,
    ENVIRONMENT_LIFETIME,
    ENVIRONMENT_SHUTDOWN,
    FUNCTION_NAME,
    KNOWN_INIT_TYPES,
)

REGION = "eu-west-1"


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """Fake credentials, no host AWS configuration, and moto's in-process CloudWatch."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CONCURRENCY_OBSERVER_NAMESPACE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    with mock_aws():
        yield client("cloudwatch", REGION)


def _widget(body: dict[str, Any], title: str) -> dict[str, Any]:
    return next(w for w in body["widgets"] if w["properties"]["title"] == title)


def test_cli_puts_a_dashboard_that_reads_back(cloudwatch: Any) -> None:
    """The stored body is JSON with the live graph's metric math over the function's series."""
    function = f"fn-{uuid.uuid4().hex[:8]}"
    result = CliRunner().invoke(
        dashboard_command,
        ["--function", function, "--namespace", "Custom/NS", "--region", REGION],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    name = default_dashboard_name(function)
    assert console_url(REGION, name) in result.stdout

    body = json.loads(cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert titles == [
        "Live execution environments",
        "Inits by init type",
        "Shutdowns by reason (full profile)",
        "Environment lifetime (seconds, full profile)",
        "Invocations per environment (full profile)",
        "Idle time and time to first invoke (seconds, mean, full profile)",
        "Never-invoked share of environments shut down (%)",
        "Proactive share of on-demand environments (%, first invoke after the threshold)",
        "Shutdowns by reason (environment records)",
        "Why the environments exist: never, prompt, delayed (environment records)",
        "Environment lifetime, ms (environment records)",
        "Invocations, idle and time to first invoke per environment (records)",
    ]
    live = _widget(body, "Live execution environments")["properties"]
    expression, inits, shutdowns, *lean = live["metrics"]
    assert len(lean) == len(KNOWN_INIT_TYPES)
    assert expression[0]["expression"] == LIVE_EXPRESSION
    assert "RUNNING_SUM" in expression[0]["expression"]
    assert inits[:4] == ["Custom/NS", ENVIRONMENT_INIT, FUNCTION_NAME, function]
    assert inits[4]["id"] == "inits"
    assert inits[4]["stat"] == "Sum"
    assert shutdowns[:4] == ["Custom/NS", ENVIRONMENT_SHUTDOWN, FUNCTION_NAME, function]
    assert shutdowns[4]["id"] == "shutdowns"
    assert live["region"] == REGION
    assert "annotations" not in live
    by_type = _widget(body, "Inits by init type")["properties"]["metrics"][0][0]["expression"]
    assert by_type.startswith("SEARCH(")
    assert by_type == (
        f"""SEARCH('{{"Custom/NS",FunctionName,InitType}} MetricName="EnvironmentInit" """
        f"""FunctionName="{function}"', 'Sum', 60)"""
    )
    lifetime = _widget(body, "Environment lifetime (seconds, full profile)")["properties"][
        "metrics"
    ]
    assert {m[1] for m in lifetime} == {ENVIRONMENT_LIFETIME}
    assert [m[4]["stat"] for m in lifetime] == ["Average", "p90", "Maximum"]
    invocations = _widget(body, "Invocations per environment (full profile)")["properties"][
        "metrics"
    ]
    assert {m[1] for m in invocations} == {ENVIRONMENT_INVOCATIONS}


def test_the_lean_metric_feeds_the_live_graph_and_the_inits_by_type() -> None:
    """EnvironmentDelta per init type: its Sum joins the running sum, (SampleCount + Sum) / 2 the
    inits; each id an expression names is a hidden metric of the same widget."""
    body = dashboard_body("fn", "NS", "us-east-1")
    live = _widget(body, "Live execution environments")["properties"]["metrics"]
    hidden = {m[-1]["id"]: m for m in live if not isinstance(m[0], dict)}
    for index, init_type in enumerate(KNOWN_INIT_TYPES):
        assert f"FILL(d{index}, 0)" in LIVE_EXPRESSION
        assert hidden[f"d{index}"][:6] == [
            "NS",
            ENVIRONMENT_DELTA,
            FUNCTION_NAME,
            "fn",
            "InitType",
            init_type,
        ]
        assert hidden[f"d{index}"][6] == {"stat": "Sum", "id": f"d{index}", "visible": False}
    inits = _widget(body, "Inits by init type")["properties"]["metrics"]
    expressions = {m[0]["id"]: m[0]["expression"] for m in inits if isinstance(m[0], dict)}
    ids = {m[-1]["id"]: m[-1]["stat"] for m in inits if not isinstance(m[0], dict)}
    assert expressions["leaninits0"] == "(c0 + d0) / 2"
    assert ids["c0"] == "SampleCount"
    assert ids["d0"] == "Sum"


def test_record_widgets_query_the_records_with_logs_insights() -> None:
    """Log widgets over the function's log group (or the one given), filtered on the marker."""
    body = dashboard_body("fn", "NS", "us-east-1", log_group="/custom/fn")
    logs = [w for w in body["widgets"] if w["type"] == "log"]
    assert len(logs) == 4
    for widget in logs:
        query = widget["properties"]["query"]
        assert query.startswith(
            "SOURCE '/custom/fn' | filter concurrencyObserver = \"environment/1\" | "
            'filter functionName = "fn" | filter lifetimeMs >= 0 and lifetimeMs <= 2678400000 '
        )
        assert " | stats " in query
        assert widget["properties"]["region"] == "us-east-1"
        assert widget["properties"]["view"] in ("table", "timeSeries")
    reasons = _widget(body, "Shutdowns by reason (environment records)")["properties"]["query"]
    assert reasons.endswith("stats count(*) as shutdowns by shutdownReason")
    default = dashboard_body("fn", "NS", "us-east-1")
    assert all(
        "SOURCE '/aws/lambda/fn'" in w["properties"]["query"]
        for w in default["widgets"]
        if w["type"] == "log"
    )


def test_record_widgets_name_the_function_and_its_version() -> None:
    """In a shared group each query keeps the function's own records (and version), sane ones."""
    body = dashboard_body("orders", "NS", "us-east-1", log_group="/shared/app", version="3")
    queries = [w["properties"]["query"] for w in body["widgets"] if w["type"] == "log"]
    assert len(queries) == 4
    for query in queries:
        assert '| filter functionName = "orders" and functionVersion = "3" |' in query
        assert "abs(lifetimeMs - (shutdownTime - initTime)) <= 1000" in query
        assert "idleMs <= lifetimeMs + 1000" in query
        assert "invocations <= 2147483647" in query
    quoted = dashboard_body('we"ird\\', "NS", "us-east-1")
    query = next(w["properties"]["query"] for w in quoted["widgets"] if w["type"] == "log")
    assert 'filter functionName = "we\\"ird\\\\" |' in query


def test_share_widgets_are_metric_math_over_the_first_invoke_series() -> None:
    """Each share divides one FirstInvoke class by all three, over the exact dimension set."""
    body = dashboard_body("fn", "NS", "us-east-1")
    never = _widget(body, "Never-invoked share of environments shut down (%)")["properties"]
    proactive = _widget(
        body, "Proactive share of on-demand environments (%, first invoke after the threshold)"
    )["properties"]
    expressions = {
        m[0]["id"]: m[0]["expression"]
        for m in never["metrics"] + proactive["metrics"]
        if isinstance(m[0], dict)
    }
    assert expressions["proactive"] == (
        "100 * FILL(oddelayed, 0) / (FILL(odnever, 0) + FILL(odprompt, 0) + FILL(oddelayed, 0))"
    )
    assert expressions["neverpc"].startswith("100 * FILL(pcnever, 0) / (")
    assert expressions["neverall"] == (
        """100 * SUM(SEARCH('{"NS",FunctionName,InitType,FirstInvoke} """
        """MetricName="EnvironmentShutdown" FunctionName="fn" FirstInvoke="never"', 'Sum', 300))"""
        """ / SUM(SEARCH('{"NS",FunctionName,InitType,FirstInvoke} """
        """MetricName="EnvironmentShutdown" FunctionName="fn"', 'Sum', 300))"""
    )
    # Every id an expression names is a hidden metric of the widget, with the class set.
    for properties, prefix, init_type in (
        (never, "pc", "provisioned-concurrency"),
        (proactive, "od", "on-demand"),
    ):
        hidden = {m[-1]["id"]: m for m in properties["metrics"] if not isinstance(m[0], dict)}
        assert set(hidden) == {f"{prefix}never", f"{prefix}prompt", f"{prefix}delayed"}
        for metric_id, metric in hidden.items():
            assert metric[:8] == [
                "NS", ENVIRONMENT_SHUTDOWN, FUNCTION_NAME, "fn", "InitType", init_type,
                "FirstInvoke", metric_id.removeprefix(prefix),
            ]  # fmt: skip
            assert metric[8] == {"stat": "Sum", "id": metric_id, "visible": False}
        assert properties["period"] == 300


def test_provisioned_line_and_custom_name(cloudwatch: Any) -> None:
    """--provisioned draws a horizontal annotation; --name picks the dashboard's name."""
    function = f"fn-{uuid.uuid4().hex[:8]}"
    name = f"my-board-{uuid.uuid4().hex[:6]}"
    result = CliRunner().invoke(
        dashboard_command,
        ["--function", function, "--name", name, "--provisioned", "50"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    body = json.loads(cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"])
    live = _widget(body, "Live execution environments")["properties"]
    assert live["annotations"]["horizontal"][0]["value"] == 50
    assert live["metrics"][1][:2] == ["ConcurrencyObserver", ENVIRONMENT_INIT]


def test_bad_names_are_user_errors() -> None:
    """A dashboard name with a space, or an ARN given as the function, is a one-line error."""
    with pytest.raises(UserError, match="invalid dashboard name"):
        check_dashboard_name("my board")
    result = CliRunner().invoke(
        dashboard_command, ["--function", "arn:aws:lambda:us-east-1:123456789012:function:f"]
    )
    assert isinstance(result.exception, UserError)
    assert "not an ARN" in str(result.exception)


def test_body_widgets_fit_the_grid() -> None:
    """Widgets sit on CloudWatch's 24-column grid without overlapping."""
    body = dashboard_body("fn", "NS", "us-east-1")
    cells = set()
    for widget in body["widgets"]:
        assert widget["x"] + widget["width"] <= 24
        for x in range(widget["x"], widget["x"] + widget["width"]):
            for y in range(widget["y"], widget["y"] + widget["height"]):
                assert (x, y) not in cells
                cells.add((x, y))


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("us-east-1", "us-east-1.console.aws.amazon.com"),
        ("cn-north-1", "cn-north-1.console.amazonaws.cn"),
        ("us-gov-west-1", "us-gov-west-1.console.amazonaws-us-gov.com"),
    ],
)
def test_console_url_per_partition(region: str, host: str) -> None:
    """The console URL uses the partition's console host and names the dashboard."""
    url = console_url(region, "board_1")
    assert url.startswith(f"https://{host}/cloudwatch/home?region={region}#dashboards/")
    assert url.endswith("/board_1")
