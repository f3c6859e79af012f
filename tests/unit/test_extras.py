"""The local commands name the missing extra in one line (tests/install runs them for real)."""

from __future__ import annotations

import importlib.util

import pytest

from concurrency_observer.cli import extras
from concurrency_observer.errors import UserError


def test_nothing_missing_passes() -> None:
    """With the dev install (which has the extra), nothing is raised."""
    extras.require_local_extra("simulate")


@pytest.mark.parametrize(
    ("absent", "moto", "named"),
    [
        ({"moto"}, True, "moto"),
        ({"moto"}, False, None),
        ({"awslambdaric"}, False, "awslambdaric"),
        ({"moto", "awslambdaric"}, True, "awslambdaric and moto"),
    ],
)
def test_missing_modules_are_named_with_the_install_line(
    monkeypatch: pytest.MonkeyPatch, absent: set[str], moto: bool, named: str | None
) -> None:
    """Each missing module is named, with ``pip install 'concurrency-observer[local]'``."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name in absent else real(name)
    )
    if named is None:
        extras.require_local_extra("simulate", moto=moto)
        return
    with pytest.raises(UserError) as raised:
        extras.require_local_extra("simulate", moto=moto)
    message = str(raised.value)
    assert message == (
        f"simulate needs {named} (the [local] extra): pip install 'concurrency-observer[local]'"
    )
