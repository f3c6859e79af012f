"""The environment record (contract: ``concurrency_observer.environment_record``), built as data by
a pure function and written as one compact JSON line on stdout.

Imported at shutdown only: nothing here runs on the init path. ``build_environment_record`` takes
what the lifecycle measured plus an optional mapping of platform facts (the Telemetry API's and the
metadata endpoint's fields), merged in when they are fields of the contract that the extension did
not fill itself. Text is cut to ``MAX_TEXT_LENGTH`` characters (``cut_text``) and the line is
ASCII (``ensure_ascii``), so a hostile function name can neither grow the record without bound nor
split it over two lines.
"""

from __future__ import annotations

import json
import math
import sys

from concurrency_observer import environment_record as contract

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from concurrency_observer.extension.records import Environment, ShutdownFacts

# The platform mapping fills optional fields only, and never one the extension filled from its own
# counts: the invocation fields come from the Telemetry API only where INVOKE is not counted
# (Lambda Managed Instances, SHUTDOWN only).
PLATFORM_FIELDS = contract.OPTIONAL_FIELDS


def _text(raw: str) -> str:
    return contract.cut_text(raw)


def _ms(seconds: float) -> float:
    # Milliseconds with at most 3 decimals; a clock step back must not make a negative duration.
    return round(max(seconds, 0.0) * 1000, 3)


def _platform_value(raw: object) -> object | None:
    """A platform fact as the record carries it: bounded text or a finite number, else ``None``."""
    if isinstance(raw, str):
        return _text(raw)
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and math.isfinite(raw):
        return round(raw, 3)
    return None


def build_environment_record(
    environment: Environment,
    facts: ShutdownFacts,
    *,
    environment_id: str,
    profile: str,
    init_time: float,
    first_invoke: str | None,
    platform: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The record of one environment's life, as a dict (``init_time``: epoch s of its start)."""
    record: dict[str, object] = {
        contract.MARKER_KEY: contract.VERSION,
        contract.FUNCTION_NAME: _text(environment.function_name),
        contract.FUNCTION_VERSION: _text(environment.function_version),
        contract.INIT_TYPE: _text(environment.init_type),
        contract.ENVIRONMENT_ID: environment_id,
        contract.ENGINE: contract.ENGINE_PYTHON,
        contract.METRICS_PROFILE: profile,
        contract.INIT_TIME: round(init_time * 1000),
        contract.SHUTDOWN_TIME: round(facts.timestamp * 1000),
        contract.SHUTDOWN_REASON: _text(facts.reason),
        contract.LIFETIME_MS: _ms(facts.lifetime),
        contract.IDLE_MS: _ms(facts.idle_time),
    }
    platform_idle = _platform_value((platform or {}).get(contract.IDLE_MS))
    if facts.invocations is None and isinstance(platform_idle, (int, float)):
        # INVOKE not counted (Lambda Managed Instances): the Telemetry API's last invocation end
        # gives the idle time, where the lifecycle only knows the init; never over the lifetime.
        record[contract.IDLE_MS] = min(max(float(platform_idle), 0.0), _ms(facts.lifetime))
    if facts.invocations is not None:
        record[contract.INVOCATIONS] = facts.invocations
    if facts.time_to_first_invoke is not None:
        record[contract.TIME_TO_FIRST_INVOKE_MS] = _ms(facts.time_to_first_invoke)
    if first_invoke is not None:
        record[contract.FIRST_INVOKE] = first_invoke
    for name in PLATFORM_FIELDS:
        value = _platform_value((platform or {}).get(name))
        if value is not None and name not in record:
            record[name] = value
    return _readable(record)


def _readable(record: dict[str, object]) -> dict[str, object]:
    """``record`` less the platform facts the reader's validator would drop (a status outside
    its value set, say): a reader never has to repair what the extension wrote."""
    checked, _ = contract.check_record(record)
    if checked is None:  # never expected; the record is still written as built
        return record
    return {name: value for name, value in record.items() if name in checked}


def environment_line(record: Mapping[str, object]) -> str:
    """``record`` as one compact ASCII JSON line, newline included."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=True, allow_nan=False) + "\n"


def _write_stdout(line: str) -> None:
    sys.stdout.write(line)
    sys.stdout.flush()


def write_environment_record(
    record: Mapping[str, object], write: Callable[[str], None] = _write_stdout
) -> str | None:
    """Write ``record`` on stdout (flushed at once); ``None``, or why it could not be written.

    A closed stdout loses the record: there is no other place Lambda delivers to the function's
    log group, and the metrics go on regardless (the caller logs the reason on stderr).
    """
    try:
        write(environment_line(record))
    except (OSError, ValueError) as error:
        return f"cannot write to stdout: {error}"
    return None
