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
"""

from __future__ import annotations

from concurrency_observer import schema

TYPE_CHECKING = False
if TYPE_CHECKING:
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
