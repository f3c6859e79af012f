"""``layer publish --attach-all`` and ``layer detach`` as users run them: exits, one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from concurrency_observer.rollout.observer_settings import METRICS_VARIABLE
from tests.unit.rollout.test_attach_all_moto import layers_of, variables_of, wide_terminal  # noqa: F401
from tests.unit.rollout.test_publish import (  # noqa: F401 (fixtures)
    aws_env,
    lambda_client,
    layer_zip,
    make_function,
)
from tests.unit.rollout.test_publish_cli import run_main

# Fast enough that the CLI's real clock never waits long; pacing itself is tested on a fake one.
FAST = ("--max-per-minute", "60000")


@pytest.fixture
def zip_file(layer_zip: bytes, tmp_path: Path) -> str:  # noqa: F811
    """The layer zip on disk, for --zip (no build per test)."""
    path = tmp_path / "layer.zip"
    path.write_bytes(layer_zip)
    return str(path)


def test_attach_all_then_detach_all_from_the_command_line(
    lambda_client: Any,  # noqa: F811
    zip_file: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--include and --metrics full reach the function; detach --all takes it all off again."""
    make_function(lambda_client, "orders-api")
    make_function(lambda_client, "billing")
    code, out, err = run_main(
        monkeypatch, capsys, "layer", "publish", "--attach-all", "--include", "orders-*",
        "--metrics", "full", "--zip", zip_file, *FAST,
    )  # fmt: skip
    assert code == 0, err
    assert "attached 1" in out
    assert "pacing: at most 60000 updates a minute" in err
    assert "(1 function(s) on full): full metrics: 22–31" in out
    assert variables_of(lambda_client, "orders-api")[METRICS_VARIABLE] == "full"
    assert layers_of(lambda_client, "billing") == []
    code, out, err = run_main(monkeypatch, capsys, "layer", "detach", "--all", *FAST)
    assert code == 0, err
    assert "detached 1, unchanged 1" in out
    assert layers_of(lambda_client, "orders-api") == []
    assert variables_of(lambda_client, "orders-api") == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("publish", "--attach", "a", "--attach-all"), "not both"),
        (("publish", "--include", "a*"), "--include works with --attach-all only"),
        (("detach",), "or give --all"),
        (("detach", "a", "--all"), "or give --all"),
        (("detach", "a", "--exclude", "b"), "work with --all only"),
        (("detach", "--all", "--name", "bad name"), "bad layer name"),
    ],
)
def test_bad_combinations_are_one_line_errors(
    lambda_client: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    """Exit 1 and one line naming the problem, before anything is built or changed."""
    code, _out, err = run_main(monkeypatch, capsys, "layer", *args)
    assert code == 1
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_an_empty_selection_says_so(
    lambda_client: Any,  # noqa: F811
    zip_file: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No function matches: one line with the globs, exit 1."""
    make_function(lambda_client, "billing")
    code, _out, err = run_main(
        monkeypatch, capsys, "layer", "publish", "--attach-all", "--include", "orders-*",
        "--zip", zip_file,
    )  # fmt: skip
    assert code == 1
    assert "no function in this region matches --include orders-*" in err


def test_attach_one_function_then_detach_it(
    lambda_client: Any,  # noqa: F811
    zip_file: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--attach with --metrics full records its settings too, so detach gives the function back."""
    make_function(lambda_client, "fn", variables={"KEEP": "me"})
    code, out, err = run_main(
        monkeypatch, capsys, "layer", "publish", "--attach", "fn", "--metrics", "full",
        "--zip", zip_file,
    )  # fmt: skip
    assert code == 0, err
    assert variables_of(lambda_client, "fn")[METRICS_VARIABLE] == "full"
    code, out, err = run_main(monkeypatch, capsys, "layer", "detach", "fn", *FAST)
    assert code == 0, err
    assert "detached 1" in out
    assert layers_of(lambda_client, "fn") == []
    assert variables_of(lambda_client, "fn") == {"KEEP": "me"}
