"""The platform's own account, aggregated: pure functions over environment record dicts.

What ``report`` leads with, and what it shows below (docs/report.md):

- **cold starts felt by a request**: on-demand inits invoked promptly (``firstInvoke`` ``prompt``),
  as a count, as a share of the function's ``Invocations`` (AWS/Lambda, passed in), and their
  init durations; beside them the **inits nobody waited for**: proactive (on-demand, first invoke
  delayed), provisioned, never invoked, Managed Instances (initialized ahead of their traffic),
  SnapStart (restored: see the restore durations), and those whose class is unknown
  (SHUTDOWN only);
- init duration quantiles per init type, failed inits by error type and phase, restore
  durations, per environment on Lambda Managed Instances its invocations and concurrency,
  environments per Availability Zone, runtime versions.

Every figure counts records, so an environment counts once whatever the metric profile. The
records come completed from the platform's lines of their log streams (``figures.platform_join``);
fields a record still lacks are left out of the figure that needs them, and the counts of
records that had them are given, so nothing is guessed: a figure no record gives is ``None``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from concurrency_observer import environment_record as rec
from concurrency_observer import schema
from concurrency_observer.figures.platform_join import FILLED_FROM, Disagreement, PlatformJoin
from concurrency_observer.figures.usage import nearest_rank

PERCENTILES: Final = (50, 90, 99)
# Why an init was not waited for, in the order the report lists them.
PROACTIVE: Final = "proactive"  # on-demand, first invoke later than the threshold
PROVISIONED: Final = "provisioned"
NEVER_INVOKED: Final = "never-invoked"
MANAGED_INSTANCES: Final = "managed-instances"
SNAPSTART: Final = "snapstart"
UNCLASSIFIED: Final = "unclassified"  # no FirstInvoke class (SHUTDOWN only, bash fallback)
NOT_WAITED_FOR: Final = (
    PROACTIVE,
    PROVISIONED,
    NEVER_INVOKED,
    MANAGED_INSTANCES,
    SNAPSTART,
    UNCLASSIFIED,
)
UNKNOWN_ZONE: Final = "unknown"
INIT_SUCCESS: Final = "success"


@dataclass(frozen=True)
class Quantiles:
    """Nearest-rank percentiles (``PERCENTILES``) and the maximum of ``count`` values, ms."""

    count: int
    percentiles: Mapping[int, float]
    maximum: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Quantiles | None:
        """The quantiles of ``values``; ``None`` when there is none."""
        if not values:
            return None
        found = {p: nearest_rank(values, p) for p in PERCENTILES}
        return cls(len(values), {p: v for p, v in found.items() if v is not None}, max(values))

    def as_dict(self) -> dict[str, Any]:
        """The documented JSON shape: ``count``, ``p50``, ``p90``, ``p99``, ``max``."""
        return {
            "count": self.count,
            **{f"p{p}": value for p, value in self.percentiles.items()},
            "max": self.maximum,
        }


@dataclass(frozen=True)
class ColdStarts:
    """How many invocations were cold starts, and the inits nobody waited for.

    Counted over the environments whose class is known (``classified`` of ``environments``): an
    on-demand environment without a ``FirstInvoke`` class (an engine that did not count INVOKE)
    could have been either, so it is in neither count, and when no environment's class is known
    ``felt`` is unknown (``None``), never 0.
    """

    felt: int | None
    invocations: float | None  # AWS/Lambda Invocations over the same window, when known
    init_duration: Quantiles | None  # of the felt ones that carry an init duration
    not_waited_for: Mapping[str, int]
    environments: int = 0
    classified: int = 0  # environments whose class is known (felt or a reason nobody waited)
    # The invocations the share is over: AWS/Lambda's when every class is known, else those
    # the classified environments' records counted (``share_over`` says which).
    share_invocations: float | None = None
    share_over: str | None = None

    @property
    def unclassified(self) -> int:
        """Environments whose class is unknown."""
        return self.environments - self.classified

    @property
    def share(self) -> float | None:
        """``felt`` as a share of the invocations (0-1); ``None`` when either is unknown."""
        if self.felt is None or not self.share_invocations:
            return None
        return self.felt / self.share_invocations


INVOCATIONS_FROM_LAMBDA: Final = "AWS/Lambda Invocations"
INVOCATIONS_FROM_RECORDS: Final = "the classified environments' records"


@dataclass(frozen=True)
class ManagedEnvironment:
    """One Lambda Managed Instances environment: what it served and at most how many at once."""

    environment_id: str
    invocations: int | None
    max_concurrent: int | None
    availability_zone: str | None


@dataclass(frozen=True)
class PlatformFigures:
    """Every figure of this module over one set of records."""

    environments: int
    with_telemetry: int  # records carrying the Telemetry API's init report
    cold_starts: ColdStarts
    init_duration_by_type: Mapping[str, Quantiles]
    failed_inits: int
    failed_by_error_type: Mapping[str, int]
    failed_by_phase: Mapping[str, int]
    restore_duration: Quantiles | None
    managed_instances: tuple[ManagedEnvironment, ...]
    environments_by_zone: Mapping[str, int]
    runtime_versions: Mapping[str, int]
    # The platform's lines in the log group, joined by log stream (figures.platform_join).
    lines: PlatformLinesFigures | None = None


@dataclass(frozen=True)
class PlatformLinesFigures:
    """What the join of the platform's lines to the records found."""

    streams: int  # log streams with platform lines
    joined: int  # records whose stream had platform lines
    filled: int  # records given a field only the lines had
    without_record: int  # streams with platform lines and no record in the scan
    disagreements: tuple[Disagreement, ...] = ()

    @classmethod
    def of(cls, found: PlatformJoin) -> PlatformLinesFigures:
        """The counts of one join."""
        return cls(
            found.streams_with_lines,
            found.joined,
            found.filled,
            found.lines_without_record,
            found.disagreements,
        )

    def as_dict(self) -> dict[str, Any]:
        """The report document's ``platform.platform_lines`` object."""
        return {
            "streams": self.streams,
            "records_joined": self.joined,
            "records_filled": self.filled,
            "streams_without_record": self.without_record,
            "disagreements": [d.as_dict() for d in self.disagreements],
        }


def _number(record: Mapping[str, Any], name: str) -> float | None:
    value = record.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _text(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    return value if isinstance(value, str) and value else None


def init_type_of(record: Mapping[str, Any]) -> str:
    """The record's init type (a missing one is ``on-demand``, as the extension normalizes it)."""
    return _text(record, rec.INIT_TYPE) or schema.INIT_ON_DEMAND


_BY_INIT_TYPE: Final = {
    schema.INIT_PROVISIONED: PROVISIONED,
    schema.INIT_MANAGED_INSTANCES: MANAGED_INSTANCES,
    schema.INIT_SNAP_START: SNAPSTART,
}
_BY_CLASS: Final = {
    schema.FIRST_INVOKE_PROMPT: None,
    schema.FIRST_INVOKE_DELAYED: PROACTIVE,
    schema.FIRST_INVOKE_NEVER: NEVER_INVOKED,
}


def why_not_waited_for(record: Mapping[str, Any]) -> str | None:
    """``None`` for a cold start felt by a request, else why nobody waited for this init."""
    init_type = init_type_of(record)
    if init_type in _BY_INIT_TYPE:
        return _BY_INIT_TYPE[init_type]
    return _BY_CLASS.get(_text(record, rec.FIRST_INVOKE) or "", UNCLASSIFIED)


def cold_starts(records: Sequence[Mapping[str, Any]], invocations: float | None) -> ColdStarts:
    """Cold starts felt by a request beside the inits nobody waited for.

    ``invocations``: AWS/Lambda's over the window. When some classes are unknown the share is
    taken over the classified environments only: their felt cold starts over the invocations
    their records counted (unknown if any of them did not count).
    """
    felt: list[Mapping[str, Any]] = []
    not_waited: Counter[str] = Counter()
    for record in records:
        why = why_not_waited_for(record)
        if why is None:
            felt.append(record)
        else:
            not_waited[why] += 1
    unclassified = not_waited[UNCLASSIFIED]
    classified = len(records) - unclassified
    served = invocations
    source = INVOCATIONS_FROM_LAMBDA if invocations is not None else None
    if unclassified:
        counted = [
            _number(r, rec.INVOCATIONS) for r in records if why_not_waited_for(r) != UNCLASSIFIED
        ]
        known = [n for n in counted if n is not None]
        complete = bool(counted) and len(known) == len(counted)
        served = sum(known) if complete else None
        source = INVOCATIONS_FROM_RECORDS if complete else None
    durations = [d for r in felt if (d := _number(r, rec.INIT_DURATION_MS)) is not None]
    return ColdStarts(
        felt=len(felt) if classified else None,
        invocations=invocations,
        init_duration=Quantiles.of(durations),
        not_waited_for={why: not_waited[why] for why in NOT_WAITED_FOR if not_waited[why]},
        environments=len(records),
        classified=classified,
        share_invocations=served,
        share_over=source,
    )


def _from_telemetry(record: Mapping[str, Any]) -> bool:
    """Whether the record's own init status came with it (not filled from the platform's lines)."""
    filled = record.get(FILLED_FROM)
    return not (isinstance(filled, list) and rec.INIT_STATUS in filled)


def platform_figures(
    records: Iterable[Mapping[str, Any]],
    invocations: float | None = None,
    lines: PlatformJoin | None = None,
) -> PlatformFigures:
    """Aggregate ``records`` (dicts as read back); ``invocations``: AWS/Lambda's, same window.

    ``lines``: the join that filled the records from the platform's lines, when one was made.
    """
    records = list(records)
    by_type: dict[str, list[float]] = {}
    failed_types: Counter[str] = Counter()
    failed_phases: Counter[str] = Counter()
    restores: list[float] = []
    zones: Counter[str] = Counter()
    runtimes: Counter[str] = Counter()
    managed: list[ManagedEnvironment] = []
    with_telemetry = 0
    for record in records:
        duration = _number(record, rec.INIT_DURATION_MS)
        if duration is not None:
            by_type.setdefault(init_type_of(record), []).append(duration)
        status = _text(record, rec.INIT_STATUS)
        if status is not None:
            with_telemetry += _from_telemetry(record)
            if status != INIT_SUCCESS:
                failed_types[_text(record, rec.INIT_ERROR_TYPE) or status] += 1
                failed_phases[_text(record, rec.INIT_PHASE) or "unknown"] += 1
        restore = _number(record, rec.RESTORE_DURATION_MS)
        if restore is not None:
            restores.append(restore)
        zone = _text(record, rec.AVAILABILITY_ZONE_ID)
        zones[zone or UNKNOWN_ZONE] += 1
        runtime = _text(record, rec.RUNTIME_VERSION)
        if runtime is not None:
            runtimes[runtime] += 1
        if init_type_of(record) == schema.INIT_MANAGED_INSTANCES:
            served, most = (
                _number(record, rec.INVOCATIONS),
                _number(record, rec.MAX_CONCURRENT_INVOCATIONS),
            )
            managed.append(
                ManagedEnvironment(
                    environment_id=str(record.get(rec.ENVIRONMENT_ID, "")),
                    invocations=None if served is None else round(served),
                    max_concurrent=None if most is None else round(most),
                    availability_zone=zone,
                )
            )
    init_quantiles = {t: q for t, values in sorted(by_type.items()) if (q := Quantiles.of(values))}
    return PlatformFigures(
        environments=len(records),
        with_telemetry=with_telemetry,
        cold_starts=cold_starts(records, invocations),
        init_duration_by_type=init_quantiles,
        failed_inits=sum(failed_types.values()),
        failed_by_error_type=dict(failed_types.most_common()),
        failed_by_phase=dict(failed_phases.most_common()),
        restore_duration=Quantiles.of(restores),
        managed_instances=tuple(sorted(managed, key=lambda m: m.environment_id)),
        environments_by_zone=dict(sorted(zones.items())),
        runtime_versions=dict(runtimes.most_common()),
        lines=None if lines is None else PlatformLinesFigures.of(lines),
    )


def _quantiles(found: Quantiles | None) -> dict[str, Any] | None:
    return None if found is None else found.as_dict()


def cold_starts_section(figures: PlatformFigures) -> dict[str, Any]:
    """The report document's ``cold_starts`` section (docs/report.md)."""
    cold = figures.cold_starts
    share = cold.share
    return {
        "felt": cold.felt,
        "environments": cold.environments,
        "classified": cold.classified,
        "invocations": cold.invocations,
        "share": None if share is None else round(share, 6),
        "share_invocations": None if share is None else cold.share_invocations,
        "share_over": None if share is None else cold.share_over,
        "init_duration_ms": _quantiles(cold.init_duration),
        "not_waited_for": dict(cold.not_waited_for),
    }


def platform_section(figures: PlatformFigures) -> dict[str, Any]:
    """The report document's ``platform`` section (docs/report.md)."""
    return {
        "environments": figures.environments,
        "with_telemetry": figures.with_telemetry,
        "init_duration_ms_by_init_type": {
            init_type: found.as_dict() for init_type, found in figures.init_duration_by_type.items()
        },
        "failed_inits": {
            "total": figures.failed_inits,
            "by_error_type": dict(figures.failed_by_error_type),
            "by_phase": dict(figures.failed_by_phase),
        },
        "restore_duration_ms": _quantiles(figures.restore_duration),
        "managed_instances": [
            {
                "environment_id": managed.environment_id,
                "invocations": managed.invocations,
                "max_concurrent_invocations": managed.max_concurrent,
                "availability_zone_id": managed.availability_zone,
            }
            for managed in figures.managed_instances
        ],
        "environments_by_availability_zone": dict(figures.environments_by_zone),
        "runtime_versions": dict(figures.runtime_versions),
        "platform_lines": None if figures.lines is None else figures.lines.as_dict(),
    }
