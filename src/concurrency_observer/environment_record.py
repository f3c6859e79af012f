"""The environment record: one JSON line per execution environment, written at its SHUTDOWN.

The lean default metric profile keeps one CloudWatch metric (``schema.ENVIRONMENT_DELTA``, +1 at
init and -1 at shutdown, per ``[FunctionName, InitType]``); everything else an environment's life
tells (version, shutdown reason, lifetime, invocations, first-invoke class, the platform's own
account of it) goes into this record, which the extension writes on stdout: Lambda delivers it to
the function's own log group, as it does for every engine and sink, with no extra permission, no
network and no API quota on the extension's side. ``report`` reads the records back and computes
exact figures from them (docs/design.md, "The environment record").

Pure standard library and no I/O, like ``schema``: the Python extension, the CLI and the tests
import it; ``layer/fallback.sh`` writes the same keys (a stated subset, ``BASH_FIELDS``).
tests/unit/test_record_contract.py pins every name below as a literal: renaming one breaks the
records already in users' log groups.

The wire format: one compact JSON object on one line, keys in any order, unknown keys ignored by
readers. Times are epoch milliseconds (integers); durations are milliseconds (numbers, at most
3 decimals); absent means unknown, never zero.

The reader's side is here too: ``check_record`` is the one validator every reader applies
(``aws.records``, and through it report, ``--all``, experiment and simulate), and the Python
writer runs it on what it built so that it never writes a field a reader would drop.
"""

from __future__ import annotations

import math

from concurrency_observer import schema

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Final

# The marker key and the format's version: a reader takes a line as a record when it is a JSON
# object whose MARKER_KEY holds VERSION. A later incompatible format gets another VERSION.
MARKER_KEY: Final = "concurrencyObserver"
VERSION: Final = "environment/1"

# Who the environment belongs to (the same values as the metric dimensions).
FUNCTION_NAME: Final = "functionName"
FUNCTION_VERSION: Final = "functionVersion"
INIT_TYPE: Final = "initType"
# A random id drawn when the environment's life starts (for SnapStart: at each restore), so two
# records never share one; 16 lower-case hex digits.
ENVIRONMENT_ID: Final = "environmentId"
ENGINE: Final = "engine"  # which program wrote the record: ENGINE_PYTHON or ENGINE_BASH
METRICS_PROFILE: Final = "metrics"  # the metric profile it ran with: PROFILE_LEAN or PROFILE_FULL

# Its life, as the extension saw it.
INIT_TIME: Final = "initTime"  # epoch ms: the extension's start (for SnapStart: the restore)
SHUTDOWN_TIME: Final = "shutdownTime"  # epoch ms: SHUTDOWN (or SIGTERM)
SHUTDOWN_REASON: Final = "shutdownReason"  # schema.normalize_shutdown_reason of the event's
LIFETIME_MS: Final = "lifetimeMs"  # shutdown - init
# shutdown - last INVOKE (or init when never invoked or not counted); on Lambda Managed Instances
# (SHUTDOWN only) shutdown - the last invocation's end by the Telemetry API, when it gave them all.
IDLE_MS: Final = "idleMs"
INVOCATIONS: Final = "invocations"  # INVOKE events served; absent when not counted
TIME_TO_FIRST_INVOKE_MS: Final = "timeToFirstInvokeMs"  # absent when never invoked or not counted
FIRST_INVOKE: Final = "firstInvoke"  # schema.FIRST_INVOKE_CLASSES; absent when not known

# The platform's own account (the Telemetry API and the metadata endpoint), when available.
INIT_DURATION_MS: Final = "initDurationMs"  # platform.initReport metrics.durationMs
INIT_STATUS: Final = "initStatus"  # platform.initReport status: success, error, failure, timeout
INIT_ERROR_TYPE: Final = "initErrorType"  # platform.initReport errorType, when not success
INIT_PHASE: Final = "initPhase"  # platform.initReport phase: init, or invoke (a re-init)
RESTORE_DURATION_MS: Final = "restoreDurationMs"  # platform.restoreReport (SnapStart)
RUNTIME_VERSION: Final = "runtimeVersion"  # platform.initStart runtimeVersion
AVAILABILITY_ZONE_ID: Final = "availabilityZoneId"  # the metadata endpoint's AvailabilityZoneID
MAX_CONCURRENT_INVOCATIONS: Final = "maxConcurrentInvocations"  # most in flight at once (LMI)

ENGINE_PYTHON: Final = "python"
ENGINE_BASH: Final = "bash"
PROFILE_LEAN: Final = "lean"
PROFILE_FULL: Final = "full"
PROFILES: Final = (PROFILE_LEAN, PROFILE_FULL)

# Always present in a record of either engine.
REQUIRED_FIELDS: Final = (
    MARKER_KEY,
    FUNCTION_NAME,
    FUNCTION_VERSION,
    INIT_TYPE,
    ENVIRONMENT_ID,
    ENGINE,
    METRICS_PROFILE,
    INIT_TIME,
    SHUTDOWN_TIME,
    SHUTDOWN_REASON,
    LIFETIME_MS,
    IDLE_MS,
)
# Present when known (INVOKE counted, the Telemetry API or the metadata endpoint answered).
OPTIONAL_FIELDS: Final = (
    INVOCATIONS,
    TIME_TO_FIRST_INVOKE_MS,
    FIRST_INVOKE,
    INIT_DURATION_MS,
    INIT_STATUS,
    INIT_ERROR_TYPE,
    INIT_PHASE,
    RESTORE_DURATION_MS,
    RUNTIME_VERSION,
    AVAILABILITY_ZONE_ID,
    MAX_CONCURRENT_INVOCATIONS,
)
# What the bash engine may write: its own counts of INVOKE (when registered for it), and no
# Telemetry API field (bash cannot listen).
BASH_FIELDS: Final = (*REQUIRED_FIELDS, INVOCATIONS, TIME_TO_FIRST_INVOKE_MS, FIRST_INVOKE)

# The bound on text a record carries from outside, and the one rule both engines cut it by
# (characters, never a UTF-8 sequence split): schema.py says why.
MAX_TEXT_LENGTH: Final = schema.MAX_TEXT_LENGTH
cut_text: Final = schema.cut_text

# -- The reader's side: one validator, used by every reader (aws.records and what builds on it) ---
#
# A function's log group holds whatever the function prints, and a function that logs the events it
# receives can be made to print a line shaped like a record. So a reader counts a record only when
# every required field has its type (a bool is not an int), is finite, lies in its range and agrees
# with the others; an optional field that fails the same checks is dropped from the record alone.

# No execution environment lives this long: Lambda recycles on-demand and provisioned environments
# within hours, and a Lambda Managed Instances instance within days; a record claiming more (a
# lifetime, an idle time, an init duration) is not one the extension wrote.
MAX_LIFETIME_MS: Final = 31 * 24 * 3600 * 1000
# The writer takes the lifetime and both instants from one clock (they agree to a millisecond);
# the reader allows a second, so a rounding or a small clock step never refuses a true record.
LIFETIME_TOLERANCE_MS: Final = 1000
# Epoch milliseconds a record's instants can take at all: from Lambda's launch (2014-11-13) to
# 2100-01-01. A reader given a window narrows this to the window's plausible span.
EARLIEST_EPOCH_MS: Final = 1_415_836_800_000
LATEST_EPOCH_MS: Final = 4_102_444_800_000
MAX_COUNT: Final = 2**31 - 1  # invocations, concurrent invocations: an int32, as CloudWatch's
ENVIRONMENT_ID_LENGTH: Final = 16
# Shutdown reasons a reader keeps as they are (Lambda's, the extension's own SIGTERM, the RIE's);
# any other well-formed reason is read as OTHER_REASON.
READ_SHUTDOWN_REASONS: Final = ("spindown", "timeout", "failure", "sigterm", "sandboxterminated")
OTHER_REASON: Final = "other"
INIT_STATUSES: Final = ("success", "error", "failure", "timeout")
INIT_PHASES: Final = ("init", "invoke")
FIRST_INVOKE_CLASSES: Final = ("never", "prompt", "delayed")  # schema.FIRST_INVOKE_CLASSES
# An init type is a dimension value: at most 32 characters of [a-z0-9_.-] (schema.safe_token).
_INIT_TYPE_CHARACTERS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")
_INIT_TYPE_MAX_LENGTH: Final = 32
_HEX: Final = frozenset("0123456789abcdef")

# Why a line that looked like a record was refused (the report's notes count lines by these).
REFUSED_TOO_LONG: Final = "too long"
REFUSED_TOO_DEEP: Final = "too deeply nested"
REFUSED_MALFORMED: Final = "not valid JSON"
REFUSED_VERSION: Final = "unknown format version"
REFUSED_MISSING: Final = "missing field"
REFUSED_TYPE: Final = "wrong type"
REFUSED_RANGE: Final = "out of range"
REFUSED_INCONSISTENT: Final = "inconsistent"
REFUSED_REASONS: Final = (
    REFUSED_TOO_LONG,
    REFUSED_TOO_DEEP,
    REFUSED_MALFORMED,
    REFUSED_VERSION,
    REFUSED_MISSING,
    REFUSED_TYPE,
    REFUSED_RANGE,
    REFUSED_INCONSISTENT,
)


class _Refused(Exception):
    """A required field failed a check: the record is not counted (``reason``: REFUSED_*)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)  # type: ignore[arg-type]


def _text_ok(value: object) -> bool:
    """Non-empty, bounded and encodable text (a lone surrogate cannot be printed or billed)."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT_LENGTH:
        return False
    if value.isascii():  # what the extension writes: no surrogate possible
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _required_text(document: Mapping[str, object], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str):
        raise _Refused(REFUSED_TYPE)
    if not _text_ok(value):
        raise _Refused(REFUSED_RANGE)
    return value


def _required_int(document: Mapping[str, object], name: str, low: int, high: int) -> int:
    value = document.get(name)
    if not _is_int(value):
        raise _Refused(REFUSED_TYPE)
    assert isinstance(value, int)
    if not low <= value <= high:
        raise _Refused(REFUSED_RANGE)
    return value


def _required_duration(document: Mapping[str, object], name: str) -> float:
    value = document.get(name)
    if not (_is_int(value) or isinstance(value, float)):
        raise _Refused(REFUSED_TYPE)
    assert isinstance(value, int | float)
    if not math.isfinite(value) or not 0 <= value <= MAX_LIFETIME_MS:
        raise _Refused(REFUSED_RANGE)
    return value


def _one_of(document: Mapping[str, object], name: str, allowed: tuple[str, ...]) -> str:
    value = _required_text(document, name)
    if value not in allowed:
        raise _Refused(REFUSED_RANGE)
    return value


def _init_type(document: Mapping[str, object]) -> str:
    value = _required_text(document, INIT_TYPE)
    if len(value) > _INIT_TYPE_MAX_LENGTH or not set(value) <= _INIT_TYPE_CHARACTERS:
        raise _Refused(REFUSED_RANGE)
    return value


def _environment_id(document: Mapping[str, object]) -> str:
    value = _required_text(document, ENVIRONMENT_ID)
    if len(value) != ENVIRONMENT_ID_LENGTH or not set(value) <= _HEX:
        raise _Refused(REFUSED_RANGE)
    return value


def read_shutdown_reason(raw: str) -> str:
    """A record's shutdown reason as readers count it: a known one, else ``other``."""
    return raw if raw in READ_SHUTDOWN_REASONS else OTHER_REASON


def _required(
    document: Mapping[str, object], not_before_ms: int, not_after_ms: int
) -> dict[str, object]:
    missing = [name for name in REQUIRED_FIELDS if name not in document]
    if missing:
        raise _Refused(REFUSED_MISSING)
    init = _required_int(document, INIT_TIME, not_before_ms, not_after_ms)
    shutdown = _required_int(document, SHUTDOWN_TIME, not_before_ms, not_after_ms)
    lifetime = _required_duration(document, LIFETIME_MS)
    idle = _required_duration(document, IDLE_MS)
    if shutdown < init or abs(lifetime - (shutdown - init)) > LIFETIME_TOLERANCE_MS:
        raise _Refused(REFUSED_INCONSISTENT)
    if idle > lifetime + LIFETIME_TOLERANCE_MS:
        raise _Refused(REFUSED_INCONSISTENT)
    return {
        MARKER_KEY: VERSION,
        FUNCTION_NAME: _required_text(document, FUNCTION_NAME),
        FUNCTION_VERSION: _required_text(document, FUNCTION_VERSION),
        INIT_TYPE: _init_type(document),
        ENVIRONMENT_ID: _environment_id(document),
        ENGINE: _one_of(document, ENGINE, (ENGINE_PYTHON, ENGINE_BASH)),
        METRICS_PROFILE: _one_of(document, METRICS_PROFILE, PROFILES),
        INIT_TIME: init,
        SHUTDOWN_TIME: shutdown,
        SHUTDOWN_REASON: read_shutdown_reason(_required_text(document, SHUTDOWN_REASON)),
        LIFETIME_MS: lifetime,
        IDLE_MS: idle,
    }


def _optional_ok(name: str, value: object, record: Mapping[str, object]) -> bool:
    """Whether optional field ``name`` holds a value a reader can count (else it is dropped)."""
    lifetime = record[LIFETIME_MS]
    assert isinstance(lifetime, int | float)
    if name in _OPTIONAL_VALUE_SETS:
        return value in _OPTIONAL_VALUE_SETS[name]
    if name in (INVOCATIONS, MAX_CONCURRENT_INVOCATIONS):
        return _is_int(value) and 0 <= value <= MAX_COUNT  # type: ignore[operator]
    if name in (TIME_TO_FIRST_INVOKE_MS, INIT_DURATION_MS, RESTORE_DURATION_MS):
        # Time to first invoke lies within the life; the platform's durations within any life.
        high = (
            lifetime + LIFETIME_TOLERANCE_MS if name == TIME_TO_FIRST_INVOKE_MS else MAX_LIFETIME_MS
        )
        return _is_number(value) and 0 <= value <= high  # type: ignore[operator]
    # Free text the report prints (error type, runtime version, zone): printable only.
    return _text_ok(value) and str(value).isprintable()


_OPTIONAL_VALUE_SETS: Final = {
    FIRST_INVOKE: FIRST_INVOKE_CLASSES,
    INIT_STATUS: INIT_STATUSES,
    INIT_PHASE: INIT_PHASES,
}


def check_record(
    document: object, *, not_before_ms: int | None = None, not_after_ms: int | None = None
) -> tuple[dict[str, object] | None, str | None]:
    """``(record, None)`` when ``document`` is a record a reader may count, else ``(None, why)``.

    ``record`` holds the contract's fields only: the required ones as checked (the shutdown reason
    read with ``read_shutdown_reason``), the optional ones that pass their checks (a bad one is
    dropped, the rest of the record still counts). ``not_before_ms``/``not_after_ms``: the span the
    record's instants must lie in (the reader's window, widened by a lifetime and the delivery
    slack); the absolute bounds apply either way. ``why`` is one of ``REFUSED_REASONS``. Never
    raises, whatever ``document`` is.
    """
    if not isinstance(document, dict):
        return None, REFUSED_TYPE
    if document.get(MARKER_KEY) != VERSION:
        return None, REFUSED_VERSION
    low = max(EARLIEST_EPOCH_MS, EARLIEST_EPOCH_MS if not_before_ms is None else not_before_ms)
    high = min(LATEST_EPOCH_MS, LATEST_EPOCH_MS if not_after_ms is None else not_after_ms)
    try:
        record = _required(document, low, high)
    except _Refused as refused:
        return None, refused.reason
    for name in OPTIONAL_FIELDS:
        value = document.get(name)
        if value is not None and _optional_ok(name, value, record):
            record[name] = value
    return record, None
