"""What a command needs beyond the base install, and the one line that says how to get it.

The local commands (``simulate``, ``experiment --local``) run real Lambda environments with the
AWS Python runtime client (``awslambdaric``) and, for the ``cloudwatch`` sink, an embedded moto
server. Both come with the ``local`` extra; a CLI installed without it (``pipx install
concurrency-observer``) would otherwise fail later with a bare ``No module named 'moto'``.
"""

from __future__ import annotations

import importlib.util
from typing import Final

from concurrency_observer.errors import UserError

LOCAL_EXTRA_INSTALL: Final = "pip install 'concurrency-observer[local]'"


def require_local_extra(command: str, *, moto: bool = True) -> None:
    """Raise a one-line ``UserError`` naming the install command if ``command`` lacks a module.

    ``moto`` is needed only for the embedded CloudWatch (the ``cloudwatch`` sink without
    ``--endpoint-url``); the runtime client always.
    """
    needed = ("awslambdaric", "moto") if moto else ("awslambdaric",)
    missing = [module for module in needed if importlib.util.find_spec(module) is None]
    if missing:
        raise UserError(
            f"{command} needs {' and '.join(missing)} (the [local] extra): {LOCAL_EXTRA_INSTALL}"
        )
