"""The metric schema: the contract between the extension and users' dashboards, alarms and reports.

Pure standard library and no I/O: the extension (inside Lambda) and the CLI (report, dashboard,
simulate) both import it, so the names below can never drift apart. docs/design.md ("The metric
contract") has the table; tests/unit/test_metric_contract.py pins it.
"""

from __future__ import annotations

# typing only for type checkers: the extension imports this module at every Lambda cold start, and
# importing typing there costs milliseconds (docs/design.md, "Nothing heavy at cold start").
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

DEFAULT_NAMESPACE: Final = "ConcurrencyObserver"

# Metric names.
ENVIRONMENT_INIT: Final = "EnvironmentInit"
ENVIRONMENT_SHUTDOWN: Final = "EnvironmentShutdown"
ENVIRONMENT_LIFETIME: Final = "EnvironmentLifetime"
ENVIRONMENT_INVOCATIONS: Final = "EnvironmentInvocations"
ENVIRONMENT_IDLE_TIME: Final = "EnvironmentIdleTime"
ENVIRONMENT_TIME_TO_FIRST_INVOKE: Final = "EnvironmentTimeToFirstInvoke"
# The lean profile's one metric (the default): +1 at init, -1 at shutdown, under LEAN_DIMENSION_SET
# only. Sum is the net change, SampleCount is inits + shutdowns, so inits = (SampleCount + Sum) / 2,
# shutdowns = (SampleCount - Sum) / 2, and live environments = RUNNING_SUM(Sum). One custom metric
# per (function, init type); the six metrics above are the full profile (METRICS_FULL).
ENVIRONMENT_DELTA: Final = "EnvironmentDelta"

# Units, in CloudWatch's own spelling.
UNIT_COUNT: Final = "Count"
UNIT_SECONDS: Final = "Seconds"

METRIC_UNITS: Final[dict[str, str]] = {
    ENVIRONMENT_INIT: UNIT_COUNT,
    ENVIRONMENT_SHUTDOWN: UNIT_COUNT,
    ENVIRONMENT_LIFETIME: UNIT_SECONDS,
    ENVIRONMENT_INVOCATIONS: UNIT_COUNT,
    ENVIRONMENT_IDLE_TIME: UNIT_SECONDS,
    ENVIRONMENT_TIME_TO_FIRST_INVOKE: UNIT_SECONDS,
    ENVIRONMENT_DELTA: UNIT_COUNT,
}

# Dimension names.
FUNCTION_NAME: Final = "FunctionName"
FUNCTION_VERSION: Final = "FunctionVersion"
INIT_TYPE: Final = "InitType"
SHUTDOWN_REASON: Final = "ShutdownReason"

# Every datum is emitted once per dimension set; EnvironmentShutdown also per SHUTDOWN_REASON_SET.
BASE_DIMENSION_SETS: Final[tuple[tuple[str, ...], ...]] = (
    (FUNCTION_NAME,),
    (FUNCTION_NAME, FUNCTION_VERSION),
    (FUNCTION_NAME, INIT_TYPE),
)
SHUTDOWN_REASON_SET: Final[tuple[str, ...]] = (FUNCTION_NAME, SHUTDOWN_REASON)
# The lean profile's only dimension set.
LEAN_DIMENSION_SET: Final[tuple[str, ...]] = (FUNCTION_NAME, INIT_TYPE)

# Metric profiles (CONCURRENCY_OBSERVER_METRICS): lean (default) writes ENVIRONMENT_DELTA only and
# puts everything else in the environment record (environment_record.py); full writes the six
# metrics under every dimension set above, as before the lean default. Both write the record.
METRICS_LEAN: Final = "lean"
METRICS_FULL: Final = "full"
METRICS_PROFILES: Final = (METRICS_LEAN, METRICS_FULL)
DEFAULT_METRICS_PROFILE: Final = METRICS_LEAN

# How the environment was used, known at SHUTDOWN when the extension counts INVOKE events:
# EnvironmentShutdown is also emitted per FIRST_INVOKE_SET, so CloudWatch sums each class directly
# (never-invoked provisioned environments, proactive on-demand inits) without percentile tricks.
FIRST_INVOKE: Final = "FirstInvoke"
FIRST_INVOKE_SET: Final[tuple[str, ...]] = (FUNCTION_NAME, INIT_TYPE, FIRST_INVOKE)
FIRST_INVOKE_NEVER: Final = "never"  # shut down without a single INVOKE
FIRST_INVOKE_PROMPT: Final = "prompt"  # first INVOKE within the threshold of init
FIRST_INVOKE_DELAYED: Final = "delayed"  # first INVOKE later: a proactive init when on-demand
FIRST_INVOKE_CLASSES: Final = (FIRST_INVOKE_NEVER, FIRST_INVOKE_PROMPT, FIRST_INVOKE_DELAYED)
# The threshold's default, seconds (CONCURRENCY_OBSERVER_PROMPT_THRESHOLD_MS sets it): the gap
# above which Datadog's extension also calls an on-demand init proactive.
DEFAULT_PROMPT_THRESHOLD_S: Final = 10.0

# Values of AWS_LAMBDA_INITIALIZATION_TYPE that Lambda documents.
INIT_ON_DEMAND: Final = "on-demand"
INIT_PROVISIONED: Final = "provisioned-concurrency"
INIT_SNAP_START: Final = "snap-start"
INIT_MANAGED_INSTANCES: Final = "lambda-managed-instances"
KNOWN_INIT_TYPES: Final = (
    INIT_ON_DEMAND,
    INIT_PROVISIONED,
    INIT_SNAP_START,
    INIT_MANAGED_INSTANCES,
)

# Shutdown reasons Lambda documents; the RIE sends others (SandboxTerminated), which are kept.
KNOWN_SHUTDOWN_REASONS: Final = ("spindown", "timeout", "failure")
UNKNOWN_TOKEN: Final = "unknown"  # noqa: S105 (a dimension value, not a secret)

# Text a record or a dimension carries from outside (an environment variable, an event): a function
# name is at most 140 characters in Lambda, a version 128 (an alias or $LATEST); anything longer is
# cut, so a hostile value cannot make a record, or the work of escaping it, grow without bound.
MAX_TEXT_LENGTH: Final = 256


def cut_text(value: str) -> str:
    """``value`` cut to its first ``MAX_TEXT_LENGTH`` characters: the one rule both engines
    follow, before anything else is done with a value (stripped, escaped, made a token).

    A character is a code point; a byte of the environment that is no well-formed UTF-8 is one
    character of its own (Python decodes the environment with ``surrogateescape``: one code point
    per such byte). A UTF-8 sequence is never split. ``layer/fallback.sh``'s ``capped`` counts the
    same way over bytes, so both engines keep the same value (tests/unit/test_fallback.py).
    """
    return value[:MAX_TEXT_LENGTH]


# A dimension value must stay a short, safe token: it becomes a CloudWatch dimension (max 1024
# chars) and a dashboard label, and it comes from outside (an event, an environment variable).
_TOKEN_MAX_LENGTH: Final = 32
_TOKEN_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")


def safe_token(raw: object) -> str:
    """Lower-case ``raw`` and bound it to a short token of ``[a-z0-9_.-]``; ``unknown`` if empty."""
    if not isinstance(raw, str):
        return UNKNOWN_TOKEN
    token = _unsafe_runs_as_dashes(raw.strip().lower()).strip("-")
    return token[:_TOKEN_MAX_LENGTH] or UNKNOWN_TOKEN


def _unsafe_runs_as_dashes(text: str) -> str:
    """``text`` with each run of characters outside ``[a-z0-9_.-]`` replaced by one ``-``: what
    ``re.sub(r"[^a-z0-9_.-]+", "-", text)`` does, without importing ``re`` (about 6 ms at every
    cold start, where this runs before the first ``/event/next``)."""
    kept: list[str] = []
    in_run = False
    for char in text:
        if char in _TOKEN_CHARS:
            kept.append(char)
            in_run = False
        elif not in_run:
            kept.append("-")
            in_run = True
    return "".join(kept)


def normalize_init_type(raw: str | None) -> str:
    """The InitType for an ``AWS_LAMBDA_INITIALIZATION_TYPE`` value (missing: on-demand)."""
    if raw is None or not raw.strip():
        return INIT_ON_DEMAND
    return safe_token(raw)


def normalize_shutdown_reason(raw: object) -> str:
    """The ShutdownReason for a SHUTDOWN event's ``shutdownReason`` (``Spindown``: ``spindown``)."""
    return safe_token(raw)
