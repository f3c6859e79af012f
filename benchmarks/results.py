"""The raw figures of one run, their medians over rounds, and the cost targets (docs/design.md).

Every "added" figure is paired within a round (variant minus the no-extension environment of the
same round), so slow drift of a shared machine cancels out; then the median over rounds is taken.
Ratios are against the floor, the minimal ``socket``+``json`` extension, measured in the same run.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

NONE = "none"
FLOOR = "floor"
EMF = "emf"
EMF_FULL = "emf-full"
CLOUDWATCH = "cloudwatch"
CLOUDWATCH_HTTPS = "cloudwatch-https"
SHUTDOWN_ONLY = "shutdown-only"
FALLBACK = "fallback"
TELEMETRY = "telemetry"
# The Telemetry listener is on by default only while it keeps the Python extension within these.
TELEMETRY_INIT_LIMIT = 1.2  # x the floor's added init
TELEMETRY_RSS_LIMIT_MB = 1.0  # over today's extension (emf, telemetry off)

SHUTDOWN_DEADLINE_MS = 2000.0  # what the RIE (and Lambda) give extensions after SHUTDOWN
# "Well inside" the deadline: half of it, leaving the other half for a slow Lambda host.
SHUTDOWN_TARGET_MS = SHUTDOWN_DEADLINE_MS / 2
WARM_P50_SLACK_MS = 0.2


@dataclass
class Sample:
    """What one environment of one variant measured in one round (times in ms, memory in KiB)."""

    variant: str
    round: int
    init_report_ms: float | None = None  # the RIE's "INIT REPORT(durationMs: ...)"
    cold_invoke_ms: float | None = None  # client-side latency of the first (cold) invoke
    register_ms: float | None = None  # RIE log: INIT START until the extension registered
    cpu_ms: float | None = None  # extension's CPU time after the first invoke (schedstat)
    rss_kb: int | None = None  # extension process after the first invoke
    hwm_kb: int | None = None
    ssl_loaded: bool | None = None
    warm_ms: list[float] = field(default_factory=list)
    shutdown_ms: float | None = None  # SIGTERM to the RIE until it exited
    records_expected: int | None = None
    records_delivered: int | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def warm_p50(self) -> float | None:
        """Median client latency of the warm invokes."""
        return percentile(self.warm_ms, 50) if self.warm_ms else None

    @property
    def warm_p99(self) -> float | None:
        """99th percentile client latency of the warm invokes."""
        return percentile(self.warm_ms, 99) if self.warm_ms else None

    @property
    def delivered_all(self) -> bool | None:
        """Whether every expected record (EMF line or CloudWatch datum) arrived."""
        if self.records_expected is None:
            return None
        return self.records_delivered == self.records_expected


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile with linear interpolation (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


@dataclass(frozen=True)
class Summary:
    """One variant's medians over rounds; ``added_*``, ``*_overhead``: paired with ``none``."""

    variant: str
    rounds: int
    init_report_ms: float | None
    added_init_ms: float | None
    cold_invoke_ms: float | None
    added_cold_ms: float | None
    register_ms: float | None
    cpu_ms: float | None
    rss_mb: float | None
    hwm_mb: float | None
    ssl_loaded: bool | None
    warm_p50_ms: float | None
    warm_p99_ms: float | None
    p50_overhead_ms: float | None
    p99_overhead_ms: float | None
    shutdown_ms: float | None
    shutdown_max_ms: float | None
    delivered_rounds: int
    checked_rounds: int
    errors: tuple[str, ...]


def _paired(
    samples: Sequence[Sample], baseline: dict[int, Sample], figure: Callable[[Sample], float | None]
) -> float | None:
    """Median over rounds of ``figure(sample) - figure(baseline of the same round)``."""
    differences: list[float | None] = []
    for sample in samples:
        base = baseline.get(sample.round)
        mine, theirs = figure(sample), figure(base) if base else None
        differences.append(mine - theirs if mine is not None and theirs is not None else None)
    return _median(differences)


def summarize(samples: Sequence[Sample], variants: Sequence[str]) -> list[Summary]:
    """One ``Summary`` per variant, in ``variants`` order."""
    baseline = {s.round: s for s in samples if s.variant == NONE}
    summaries = []
    for variant in variants:
        mine = [s for s in samples if s.variant == variant]
        checked = [s for s in mine if s.delivered_all is not None]
        rss = _median([s.rss_kb for s in mine])
        hwm = _median([s.hwm_kb for s in mine])
        ssl = [s.ssl_loaded for s in mine if s.ssl_loaded is not None]
        shutdowns = [s.shutdown_ms for s in mine if s.shutdown_ms is not None]
        summaries.append(
            Summary(
                variant=variant,
                rounds=len(mine),
                init_report_ms=_median([s.init_report_ms for s in mine]),
                added_init_ms=_paired(mine, baseline, lambda s: s.init_report_ms),
                cold_invoke_ms=_median([s.cold_invoke_ms for s in mine]),
                added_cold_ms=_paired(mine, baseline, lambda s: s.cold_invoke_ms),
                register_ms=_median([s.register_ms for s in mine]),
                cpu_ms=_median([s.cpu_ms for s in mine]),
                rss_mb=rss / 1024 if rss is not None else None,
                hwm_mb=hwm / 1024 if hwm is not None else None,
                ssl_loaded=any(ssl) if ssl else None,
                warm_p50_ms=_median([s.warm_p50 for s in mine]),
                warm_p99_ms=_median([s.warm_p99 for s in mine]),
                p50_overhead_ms=_paired(mine, baseline, lambda s: s.warm_p50),
                p99_overhead_ms=_paired(mine, baseline, lambda s: s.warm_p99),
                shutdown_ms=_median(shutdowns),
                shutdown_max_ms=max(shutdowns) if shutdowns else None,
                delivered_rounds=sum(1 for s in checked if s.delivered_all),
                checked_rounds=len(checked),
                errors=tuple(e for s in mine for e in s.errors),
            )
        )
    return summaries


def ratio(value: float | None, floor: float | None) -> float | None:
    """``value / floor``, or ``None`` when either is unknown or the floor is not positive."""
    if value is None or floor is None or floor <= 0:
        return None
    return value / floor


@dataclass(frozen=True)
class SslCost:
    """What ``import ssl`` adds to a ``python3 -I -S`` process, in MiB.

    ``standalone`` is the issue's definition (``import ssl`` minus ``pass``); ``over_floor`` is
    what ssl adds on top of the floor's own imports (``socket``, ``json``); ``over_ours`` what it
    adds on top of our extension's modules with the cloudwatch sink, which already load OpenSSL's
    libcrypto through ``hashlib``/``hmac``. ``https_client`` is what any HTTPS client adds to the
    floor's modules: ``import ssl``, ``ssl.create_default_context()`` and one handshake with the
    local https server, trusting its certificate alone (as the benchmark's environments do);
    ``https_client_system_store`` the same with the system's trust store loaded, as on AWS.
    """

    standalone_mb: float
    over_floor_mb: float
    over_ours_mb: float
    https_client_mb: float | None = None
    https_client_system_store_mb: float | None = None


@dataclass(frozen=True)
class Target:
    """One cost target: what it says, what was measured, and whether it holds."""

    name: str
    rule: str
    measured: str
    passed: bool | None  # None: not measured (a variant failed or the RIE printed nothing)


def _fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def _init_target(name: str, mine: Summary, floor: Summary, limit: float) -> Target:
    # INIT REPORT is the RIE's own measure of the init phase; the client's cold latency is the
    # fallback for an RIE that prints none.
    use_report = mine.added_init_ms is not None and floor.added_init_ms is not None
    added, base = (
        (mine.added_init_ms, floor.added_init_ms)
        if use_report
        else (mine.added_cold_ms, floor.added_cold_ms)
    )
    r = ratio(added, base)
    source = "INIT REPORT" if use_report else "cold invoke"
    return Target(
        name,
        f"added init <= {limit}x floor's ({source})",
        f"{_fmt(added, ' ms')} vs {_fmt(base, ' ms')} = {_fmt(r, 'x', 2)}",
        None if r is None else r <= limit,
    )


def evaluate(summaries: Sequence[Summary], ssl: SslCost) -> list[Target]:
    """The cost targets against this run's medians."""
    by_name = {s.variant: s for s in summaries}
    floor = by_name[FLOOR]
    targets: list[Target] = []
    if EMF in by_name:
        targets.append(_init_target("init, emf", by_name[EMF], floor, 1.5))
    for name in (CLOUDWATCH, CLOUDWATCH_HTTPS):
        if name in by_name:
            targets.append(_init_target(f"init, {name}", by_name[name], floor, 2.5))
    if EMF in by_name:
        r = ratio(by_name[EMF].rss_mb, floor.rss_mb)
        targets.append(
            Target(
                "RSS, emf",
                "extension RSS <= 1.15x floor's",
                f"{_fmt(by_name[EMF].rss_mb, ' MB')} vs {_fmt(floor.rss_mb, ' MB')}"
                f" = {_fmt(r, 'x', 2)}",
                None if r is None else r <= 1.15,
            )
        )
    # The target is about HTTPS: measured as such when the https variant ran, else estimated
    # from the http variant's RSS plus what ssl adds to our modules.
    https_measured = by_name.get(CLOUDWATCH_HTTPS)
    if https_measured is not None and https_measured.rss_mb is not None:
        targets.append(_cloudwatch_rss_target(https_measured, floor, ssl))
    elif CLOUDWATCH in by_name:
        targets.append(_cloudwatch_rss_target(by_name[CLOUDWATCH], floor, ssl))
    for summary in summaries:
        if summary.variant in (NONE, FLOOR):
            continue
        gap = (
            summary.p50_overhead_ms - floor.p50_overhead_ms
            if summary.p50_overhead_ms is not None and floor.p50_overhead_ms is not None
            else None
        )
        targets.append(
            Target(
                f"warm p50, {summary.variant}",
                f"p50 overhead <= floor's + {WARM_P50_SLACK_MS} ms",
                f"{_fmt(summary.p50_overhead_ms, ' ms', 3)} vs floor "
                f"{_fmt(floor.p50_overhead_ms, ' ms', 3)} (gap {_fmt(gap, ' ms', 3)})",
                None if gap is None else gap <= WARM_P50_SLACK_MS,
            )
        )
    if TELEMETRY in by_name:
        targets.extend(_telemetry_targets(by_name[TELEMETRY], by_name.get(EMF), floor))
    for summary in summaries:
        if summary.variant in (NONE, FLOOR):
            continue
        worst = summary.shutdown_max_ms
        delivered = f"{summary.delivered_rounds}/{summary.checked_rounds} rounds delivered all"
        complete = summary.checked_rounds > 0 and summary.delivered_rounds == summary.checked_rounds
        targets.append(
            Target(
                f"shutdown, {summary.variant}",
                f"all records delivered, exit <= {SHUTDOWN_TARGET_MS:.0f} ms (deadline 2 s)",
                f"max {_fmt(worst, ' ms', 0)}, {delivered}",
                None if worst is None else complete and worst <= SHUTDOWN_TARGET_MS,
            )
        )
    return targets


def _telemetry_targets(mine: Summary, today: Summary | None, floor: Summary) -> list[Target]:
    """Whether the Telemetry listener may be on by default: added init within 1.2x the floor's,
    RSS within 1 MB of today's extension (``emf`` with the Telemetry API off)."""
    init = _init_target("init, telemetry (default on?)", mine, floor, TELEMETRY_INIT_LIMIT)
    today_mb = today.rss_mb if today is not None else None
    extra = mine.rss_mb - today_mb if mine.rss_mb is not None and today_mb is not None else None
    rss = Target(
        "RSS, telemetry (default on?)",
        f"RSS <= emf's + {TELEMETRY_RSS_LIMIT_MB:.0f} MB",
        f"{_fmt(mine.rss_mb, ' MB')} vs {_fmt(today_mb, ' MB')} (+{_fmt(extra, ' MB', 2)})",
        None if extra is None else extra <= TELEMETRY_RSS_LIMIT_MB,
    )
    return [init, rss]


def _cloudwatch_rss_target(mine: Summary, floor: Summary, ssl: SslCost) -> Target:
    # Against the local endpoint (http) the sink never imports ssl; on AWS it does (https). So
    # when ssl was not loaded, hold the figure plus what ssl adds on top of the floor's modules
    # against the limit: the RSS this variant would have on AWS.
    name = f"RSS, {mine.variant}"
    if mine.rss_mb is None or floor.rss_mb is None:
        return Target(name, "RSS <= floor's + ssl", "n/a", None)
    limit = floor.rss_mb + ssl.standalone_mb
    estimate = mine.rss_mb if mine.ssl_loaded else mine.rss_mb + ssl.over_ours_mb
    how = "ssl loaded" if mine.ssl_loaded else f"no ssl over http, + {ssl.over_ours_mb:.1f} MB"
    client = ""
    if mine.ssl_loaded and ssl.https_client_mb is not None:
        client = f"; floor + an HTTPS client: {floor.rss_mb + ssl.https_client_mb:.1f} MB"
    return Target(
        name,
        f"RSS <= floor's + import ssl ({ssl.standalone_mb:.1f} MB)",
        f"{estimate:.1f} MB ({how}) vs {limit:.1f} MB{client}",
        estimate <= limit,
    )
