"""Rollout output never leaks a variable, never reads text as markup, and plans Lambda's 4 KB."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from botocore.exceptions import ClientError
from rich.console import Console

from concurrency_observer.aws.session import client
from concurrency_observer.cli import layer_fleet, main
from concurrency_observer.reporting.fleet_summary import plan_table, summary_table
from concurrency_observer.rollout.fleet_functions import FleetFunction
from concurrency_observer.rollout.fleet_step import Step
from concurrency_observer.rollout.fleet_update import Outcome
from concurrency_observer.rollout.observer_settings import RECORD_VARIABLE
from concurrency_observer.rollout.publish import AttachRefused, layer_spec, plan_publish
from concurrency_observer.rollout.rollout_errors import (
    VARIABLES_LIMIT_BYTES,
    error_summary,
    redacted,
    variables_over_limit,
    variables_size,
)
from tests.unit.rollout.test_attach_all_moto import LAYER, attach, snapshot
from tests.unit.rollout.test_fleet_update import FakeClock
from tests.unit.rollout.test_publish import (  # noqa: F401 (fixtures)
    aws_env,
    lambda_client,
    layer_zip,
    make_function,
)

SECRET = "hunter2-s3cret-value"
HOSTILE = ("[", "[/x]", "[bold]", '[null,"lean"]')
# Lambda's words when the variables pass 4 KB: it quotes the whole map it measured.
LAMBDA_4KB = (
    "Lambda was unable to configure your environment variables because the environment "
    "variables you have provided exceeded the 4KB limit. String measured: {measured}"
)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as wide as their rows, so a reason is never split across lines."""
    monkeypatch.setenv("COLUMNS", "300")


def refusal_of(variables: dict[str, str]) -> ClientError:
    """The ClientError Lambda answers an UpdateFunctionConfiguration over 4 KB with."""
    measured = json.dumps(variables, separators=(",", ":"))
    error = {
        "Code": "InvalidParameterValueException",
        "Message": LAMBDA_4KB.format(measured=measured),
    }
    return ClientError({"Error": error}, "UpdateFunctionConfiguration")


class RefusingLambda:
    """The moto Lambda client, except that each update is refused as Lambda refuses one.

    ``other`` (a function name) gets a refusal whose words hold markup-like brackets instead.
    """

    def __init__(self, inner: Any, other: str = "") -> None:
        self.inner, self.other = inner, other

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def update_function_configuration(self, **arguments: Any) -> Any:
        if str(arguments["FunctionName"]).endswith(f":{self.other}"):
            message = "Layer conflict at [/x] and [bold] in [ " + '[null,"lean"]'
            raise ClientError(
                {"Error": {"Code": "InvalidParameterValueException", "Message": message}},
                "UpdateFunctionConfiguration",
            )
        variables = (arguments.get("Environment") or {}).get("Variables") or {}
        raise refusal_of(variables)


def test_variables_are_measured_as_lambda_measures_them() -> None:
    """Compact JSON, non-ASCII escaped, in bytes; 4,096 fits and 4,097 does not."""
    assert variables_size({"A": "1"}) == len('{"A":"1"}')
    assert variables_size({"A": "é"}) == len('{"A":"\\u00e9"}')
    filler = VARIABLES_LIMIT_BYTES - variables_size({"BIG": ""})
    assert variables_size({"BIG": "x" * filler}) == VARIABLES_LIMIT_BYTES
    assert variables_over_limit({"BIG": "x" * filler}) is None
    reason = variables_over_limit({"BIG": "x" * (filler + 1), "SMALL": SECRET})
    assert reason is not None
    empty = len('{"BIG":"","SMALL":""}')
    assert f"{empty + filler + 1 + len(SECRET)} bytes" in reason
    assert f"BIG ({filler + 1} bytes), SMALL ({len(SECRET)} bytes)" in reason
    assert SECRET not in reason
    assert "xxxx" not in reason


def test_lambdas_refusal_is_summarized_without_a_value() -> None:
    """The 4 KB refusal: which variables and how large; any other: the echo cut, values masked."""
    variables = {"DB_PASSWORD": SECRET, "BIG": "y" * 4100}
    error = refusal_of(variables).response["Error"]
    summary = error_summary(error, variables)
    assert summary.startswith("InvalidParameterValueException: its environment variables would")
    assert "BIG (4100 bytes)" in summary
    assert SECRET not in summary
    # Without the variables (or under the limit by our count), the message is still cut.
    for shown in (error_summary(error), error_summary(error, {"DB_PASSWORD": SECRET})):
        assert SECRET not in shown
        assert "String measured: (not shown: it quotes every variable's value)" in shown
    line = redacted(f"failed:\n  token {SECRET} and {{'a': 1}}", [SECRET])
    assert line == "failed: token *** and {...}"


def test_a_refused_fleet_update_never_prints_a_value_and_brackets_stay_text(
    lambda_client: Any,  # noqa: F811
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every update refused: the summary and progress lines name the refusal, never the secret."""
    make_function(lambda_client, "app", variables={"DB_PASSWORD": SECRET, "GLOB": "logs/[/]*.gz"})
    make_function(lambda_client, "odd", variables={"A": "1"})
    clock = FakeClock()
    code = attach(RefusingLambda(lambda_client, other="odd"), layer_zip, clock)
    captured = capsys.readouterr()
    assert code == 1
    shown = captured.out + captured.err
    assert SECRET not in shown
    assert "logs/[/]*.gz" not in shown
    assert "failed 2" in captured.out
    assert "String measured: (not shown" in captured.out
    for text in HOSTILE:  # the other refusal's words, as they are, in the summary and progress
        assert text in captured.out
        assert text in captured.err


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    monkeypatch.setattr(sys, "argv", ["concurrency-observer", *args])
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_attach_one_refused_function_is_one_line_without_the_secret(
    lambda_client: Any,  # noqa: F811
    layer_zip: bytes,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Any,
) -> None:
    """``layer publish --attach app`` refused by Lambda: exit 1, one line, no value in it."""
    make_function(lambda_client, "app", variables={"DB_PASSWORD": SECRET})
    proxy = RefusingLambda(lambda_client)
    monkeypatch.setattr(
        sys.modules["concurrency_observer.cli.layer"],
        "client",
        lambda service, region=None: proxy if service == "lambda" else client(service, region),
    )
    zip_path = tmp_path / "layer.zip"
    zip_path.write_bytes(layer_zip)
    code, out, err = _run(
        monkeypatch, capsys, "layer", "publish", "--attach", "app", "--zip", str(zip_path)
    )
    assert code == 1
    assert SECRET not in out + err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert "UpdateFunctionConfiguration app: InvalidParameterValueException" in line
    assert "(published arn:aws:lambda:" in line


def _almost_full(extra: int = 0) -> dict[str, str]:
    """Variables a little under 4 KB: ours (about 150 bytes) would push them over."""
    base = {"DB_PASSWORD": SECRET, "CONFIG": ""}
    filler = VARIABLES_LIMIT_BYTES - 60 - variables_size(base) + extra
    return {**base, "CONFIG": "c" * filler}


def test_plans_skip_a_function_ours_would_push_over_4kb(
    lambda_client: Any,  # noqa: F811
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """attach-all: skipped in the plan and the run, with the sizes; --attach f,g: none changed."""
    make_function(lambda_client, "small", variables={"A": "1"})
    make_function(lambda_client, "big", variables=_almost_full())
    before = snapshot(lambda_client)
    clock = FakeClock()
    assert attach(lambda_client, layer_zip, clock, dry_run=True) == 0
    plan = capsys.readouterr().out
    assert "4 KB limit of 4096; largest: CONFIG" in plan
    with pytest.raises(AttachRefused, match=r"big: its environment variables would be \d+ bytes"):
        plan_publish(lambda_client, layer_spec(lambda_client), len(layer_zip), ("small", "big"))
    assert snapshot(lambda_client) == before
    assert lambda_client.list_layer_versions(LayerName=LAYER)["LayerVersions"] == []
    assert attach(lambda_client, layer_zip, clock) == 0
    out = capsys.readouterr().out
    assert "attached 1, skipped 1" in out
    assert snapshot(lambda_client)["big"] == before["big"]
    assert SECRET not in plan + out


def test_every_field_of_the_tables_is_shown_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """``[``, ``[/x]``, ``[bold]`` in name, runtime, reason and detail: no MarkupError, shown."""
    monkeypatch.setenv("COLUMNS", "400")
    hostile = " ".join(HOSTILE)
    runtime = f"python3.12{hostile}"
    function = FleetFunction(
        name=f"fn{hostile}",
        arn="arn:aws:lambda:us-east-1:123456789012:function:fn",
        runtime=runtime,
        package_type="Zip",
        code_size=0,
        layers=(),
        variables={},
        environment_error=None,
        revision_id=None,
    )
    console = Console(record=True, width=400)  # markup on: the cells must not need it off
    console.print(plan_table([Step(function, "skip", f"why {hostile}")]))
    console.print(summary_table([Outcome(function.name, "failed", f"detail {hostile}")]))
    text = console.export_text()
    for expected in (function.name, runtime, f"why {hostile}", f"detail {hostile}"):
        assert expected in text


def test_a_hand_edited_record_and_bracketed_values_do_not_stop_a_run(
    lambda_client: Any,  # noqa: F811
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Dry run, real run and detach --all finish; the bad record's text is shown as it is."""
    make_function(lambda_client, "glob", variables={"GLOB": "logs/[/]*.gz"})
    make_function(lambda_client, "edited", variables={RECORD_VARIABLE: "[/x] [bold] ["})
    clock = FakeClock()
    assert attach(lambda_client, layer_zip, clock, dry_run=True) == 0
    assert attach(lambda_client, layer_zip, clock) == 0
    code = layer_fleet.detach(
        lambda_client, LAYER, (), include=(), exclude=(), max_per_minute=4, dry_run=False,
        clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "attached 1, skipped 1" in out
    assert "detached 1, skipped 1" in out
    assert "is not JSON: '[/x] [bold] ['" in out
