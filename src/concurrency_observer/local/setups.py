"""The setups ``simulate`` can run, by name: light enough for ``--help`` to import.

- mode ``standard``: Lambda's usual environments, one invocation at a time each;
  ``managed-instances``: Lambda Managed Instances (the RIE's LMI mode), several at once each.
- runtime ``python``: the Python runtime and the Python extension; ``bash``: a custom runtime in
  bash with no python3 in the environment, where the layer's bash fallback records.

``check_setup`` and ``function_log_format`` say which of them combine with which options.
"""

from __future__ import annotations

from typing import Final

from concurrency_observer.errors import UserError

MODE_STANDARD: Final = "standard"
MODE_MANAGED_INSTANCES: Final = "managed-instances"
MODES: Final = (MODE_STANDARD, MODE_MANAGED_INSTANCES)
RUNTIME_PYTHON: Final = "python"
RUNTIME_BASH: Final = "bash"
RUNTIMES: Final = (RUNTIME_PYTHON, RUNTIME_BASH)
SINK_CLOUDWATCH: Final = "cloudwatch"
SINK_EMF: Final = "emf"  # the only one the bash fallback writes
DEFAULT_MAX_CONCURRENCY: Final = 4  # invocations at once per Managed Instances environment


def check_setup(
    given: set[str], *, mode: str, runtime: str, sink: str, provisioned: int, pc_max_lifetime: float
) -> tuple[str, int, float]:
    """Refuse options the mode or runtime cannot honour; the sink, provisioned and lifetime to use.

    Lambda Managed Instances has no provisioned concurrency (nor its recycling): their defaults
    become 0 there, and asking for them is refused. The bash fallback writes EMF lines only: the
    emf sink is implied, and asking for cloudwatch is refused. A lifetime under a second is
    refused (0 means never recycle).
    """
    if mode != MODE_MANAGED_INSTANCES and "max_concurrency" in given:
        raise UserError("--max-concurrency is for --mode managed-instances")
    if mode == MODE_MANAGED_INSTANCES:
        for option, value in (("provisioned", provisioned), ("pc_max_lifetime", pc_max_lifetime)):
            if option in given and value:
                flag = "--" + option.replace("_", "-")
                raise UserError(
                    f"{flag} does not apply to --mode managed-instances: Lambda Managed Instances "
                    "has no provisioned concurrency"
                )
        provisioned, pc_max_lifetime = 0, 0.0
    if runtime == RUNTIME_BASH:
        if "sink" in given and sink != SINK_EMF:
            raise UserError(
                "--runtime bash records with the layer's bash engine, which writes EMF lines "
                "only: use --sink emf (the default there)"
            )
        if "endpoint_url" in given:
            raise UserError("--endpoint-url does not apply to --runtime bash: it writes EMF lines")
        sink = SINK_EMF
    if 0 < pc_max_lifetime < 1:
        raise UserError("--pc-max-lifetime must be at least 1 second (or 0: never recycle)")
    return sink, provisioned, pc_max_lifetime


def function_log_format(chosen: str | None, mode: str) -> str | None:
    """LoggingConfig.LogFormat's spelling; text is refused on Managed Instances (JSON only)."""
    if chosen is None:
        return None
    if chosen.lower() == "text" and mode == MODE_MANAGED_INSTANCES:
        raise UserError("--log-format text: Lambda Managed Instances writes JSON logs only")
    return "JSON" if chosen.lower() == "json" else "Text"
