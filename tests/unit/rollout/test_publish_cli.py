"""``concurrency-observer layer publish`` as users run it: output, exit codes, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from concurrency_observer.cli import main
from concurrency_observer.rollout.sink import SINK_VARIABLE
from tests.unit.rollout.test_publish import (  # noqa: F401 (fixtures)
    attached,
    aws_env,
    configuration,
    lambda_client,
    layer_zip,
    make_function,
    other_layer,
)

CONSOLE_SCRIPT = Path(sys.executable).with_name("concurrency-observer")


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Run the console entry point in-process; (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["concurrency-observer", *args])
    code = 0
    try:
        main()
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_dry_run_prints_the_diff_and_changes_nothing(
    lambda_client: Any,  # noqa: F811
    layer_zip: bytes,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The function and the layer list are the same after as before, and the diff was shown."""
    keep = other_layer(lambda_client, "keep")
    make_function(lambda_client, "fn", layers=(keep,), variables={"A": "1"})
    before = configuration(lambda_client, "fn")
    code, out, _ = run_main(
        monkeypatch, capsys, "layer", "publish", "--attach", "fn", "--sink", "emf", "--dry-run"
    )
    assert code == 0
    assert f"+ {SINK_VARIABLE}=emf" in out
    assert "+ concurrency-observer:1" in out
    assert "nothing was changed" in out
    assert configuration(lambda_client, "fn") == before
    listed = lambda_client.list_layer_versions(LayerName="concurrency-observer")
    assert listed["LayerVersions"] == []


def test_publish_prints_only_the_arn_on_stdout(
    lambda_client: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Scripts can capture the LayerVersionArn; it is the version AWS now has, attached."""
    make_function(lambda_client, "a")
    make_function(lambda_client, "b")
    code, out, err = run_main(monkeypatch, capsys, "layer", "publish", "--attach", "a,b")
    assert code == 0
    arn = out.strip()
    assert arn.endswith(":layer:concurrency-observer:1")
    assert "\n" not in arn
    assert "attached to b" in err
    assert configuration(lambda_client, "a")[0] == [arn]
    assert configuration(lambda_client, "b")[0] == [arn]


def test_a_refused_function_exits_1_with_one_line(
    lambda_client: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A function with 5 layers already: exit 1, a single 'error:' line naming it, no traceback."""
    others = tuple(other_layer(lambda_client, f"l{i}") for i in range(5))
    make_function(lambda_client, "full", layers=others)
    code, out, err = run_main(monkeypatch, capsys, "layer", "publish", "--attach", "full")
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("error: not attaching the layer to any function; full: it already has 5")


def test_a_nodejs_function_is_attached_with_one_line_on_the_fallback(
    lambda_client: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A Node.js function gets the layer and emf; stderr has one line on what is recorded."""
    make_function(lambda_client, "node", runtime="nodejs22.x")
    code, out, err = run_main(monkeypatch, capsys, "layer", "publish", "--attach", "node")
    assert code == 0, err
    arn = out.strip()
    assert configuration(lambda_client, "node") == ([arn], attached({}, "emf"))
    records = [line for line in err.splitlines() if "records:" in line]
    assert len(records) == 1
    assert "bash engine" in records[0]


@pytest.fixture
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (any free port); its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_an_aws_error_is_one_stderr_line_and_exit_1(moto_server: str, tmp_path: Path) -> None:
    """The console script, pointed at moto by AWS_ENDPOINT_URL: a missing function is one line."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") or key == "AWS_CA_BUNDLE"
    }
    env.update(
        AWS_ENDPOINT_URL=moto_server,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="eu-west-1",
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
    )
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "layer", "publish", "--attach", "ghost"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: GetFunctionConfiguration ghost: ResourceNotFoundException")
    assert "check the name and the region" in lines[0]
