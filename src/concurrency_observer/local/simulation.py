"""One local simulation: the fleet under a seeded load, then what was recorded read back and judged.

``Simulation(settings, layer_dir, cloudwatch_url, logs_url=...)`` owns a ``Fleet``; ``run(stop)``
brings up the provisioned environments, plays the load, and always closes the fleet (every
environment shut down, staggered), also on error or when ``stop`` is set. ``status()`` is safe to
call from another thread while it runs (the CLI's live display does).

Each environment's output is delivered, at its close, into the function's log group on
``logs_url`` (``local.log_delivery``), as Lambda delivers it. Afterwards ``local.outcome`` builds
the report ``report`` prints (the metrics of either profile, from CloudWatch or the EMF lines, and
the environment records, with FilterLogEvents) and ``verdict_checks(snapshot, recorded)``
compares its figures with the control plane's ground truth, figure by figure: environments
started (inits), stopped (shutdowns), invocations (warm-ups included) and environment records,
per init type and in total; and how each environment was used (its record's FirstInvoke class:
never invoked, first invoked promptly, first invoked after the threshold), per init type.

Two more setups (``SimulationSettings.mode`` and ``runtime``) run extensions that register for
SHUTDOWN only:

- ``managed-instances``: Lambda Managed Instances, the RIE's LMI mode; each environment serves up
  to ``FleetConfig.max_concurrency`` invocations at once and initializes when started. The Python
  extension counts the invocations from the Telemetry API's platform events there;
- ``runtime="bash"``: a custom runtime in bash with every python3 hidden, where the layer's bash
  fallback records inits and shutdowns, nothing about invocations.

``settings.recording()`` says what is recorded; the verdict compares only that, and
``unrecorded_figures`` lists what the control plane knows and the extension cannot record there.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

from concurrency_observer import schema
from concurrency_observer.figures.platform import ColdStarts
from concurrency_observer.figures.report_window import ReportRequest, resolve_window
from concurrency_observer.local import readback
from concurrency_observer.local.cloudwatch import client_for
from concurrency_observer.local.environment_settings import (
    BASH_RUNTIME,
    EnvironmentSettings,
    OutputSink,
    observer_env,
    python3_paths,
)
from concurrency_observer.local.extension_timeline import peak_bounds
from concurrency_observer.local.fleet import Fleet, lambda_environment_factory
from concurrency_observer.local.fleet_config import FleetConfig
from concurrency_observer.local.fleet_snapshot import FleetSnapshot, InvocationOutcome, Outcome
from concurrency_observer.local.lambda_log_lines import (
    LOG_FORMAT_JSON,
    LOG_FORMAT_TEXT,
    LogSettings,
)
from concurrency_observer.local.lambda_metrics import LambdaInvocationsMetric
from concurrency_observer.local.load import (
    LoadProfile,
    arrival_schedule,
    proactive_schedule,
    run_load,
)
from concurrency_observer.local.log_delivery import LambdaLogDelivery
from concurrency_observer.local.setups import (
    MODE_MANAGED_INSTANCES,
    MODE_STANDARD,
    MODES,
    RUNTIME_BASH,
    RUNTIME_PYTHON,
    RUNTIMES,
    SINK_CLOUDWATCH,
)

FUNCTION_PREFIX: Final = "concurrency-observer-local"
# What the verdict compares: the metric and the ground-truth figure it must equal.
# The figure's name: the full profile's metric for inits, shutdowns and invocations (under lean
# they come from EnvironmentDelta and the records), RECORDS for the environment records.
RECORDS: Final = "EnvironmentRecord"
CHECKED_METRICS: Final = (
    (schema.ENVIRONMENT_INIT, "inits (started)"),
    (schema.ENVIRONMENT_SHUTDOWN, "shutdowns (stopped)"),
    (schema.ENVIRONMENT_INVOCATIONS, "invocations"),  # warm-ups included
    (RECORDS, "environment records"),  # one per environment that stopped
)
_PERIOD: Final = 60
_MIN_LOOKBACK: Final = timedelta(minutes=10)
# The report's period: a run lasts about a minute, so 60-second points would hide the fleet's
# shape; the embedded moto server keeps every raw point, so seconds work (CloudWatch keeps such
# high-resolution periods for 3 hours).
_REPORT_PERIOD: Final = 5
_LOAD_WORKER_MARGIN: Final = 8  # throttled and failed invocations return at once
_PROACTIVE_WORKERS: Final = 2
PROMPT_THRESHOLD_VARIABLE: Final = "CONCURRENCY_OBSERVER_PROMPT_THRESHOLD_MS"
FIRST_INVOKE_LABELS: Final = {
    schema.FIRST_INVOKE_NEVER: "shutdowns: never invoked",
    schema.FIRST_INVOKE_PROMPT: "shutdowns: prompt",
    schema.FIRST_INVOKE_DELAYED: "shutdowns: delayed",
}


def unique_function_name() -> str:
    """A function name of its own per run, so no earlier run's data is ever counted in."""
    return f"{FUNCTION_PREFIX}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Recording:
    """What the extension records in a simulated setup, so the verdict compares just that.

    Inits and shutdowns, per init type, always. ``invocations``: it gets INVOKE events (or, on
    Lambda Managed Instances, the Telemetry API's platform.start and platform.report), so it
    records each environment's invocations and ``FirstInvoke`` class; without them (an extension
    registered for SHUTDOWN only, with no Telemetry API) neither exists, and ``why`` says so.
    """

    invocations: bool = True
    classes: bool = True  # the FirstInvoke classes (they need the time to first invoke)
    why: str = ""


@dataclass(frozen=True)
class SimulationSettings:
    """Everything ``simulate`` asks for (defaults: docs/simulate.md says why these)."""

    provisioned: int = 2
    rate: float = 4.0
    duration: float = 40.0
    work_ms: int = 300
    bursts: int = 2
    burst_size: int = 8
    seed: int = 1
    proactive_rate: float = 0.0  # on-demand inits ahead of demand, per second (seeded Poisson)
    provisioned_lead: float = 0.0  # seconds between provisioned concurrency READY and the load
    fleet: FleetConfig = field(default_factory=FleetConfig)
    sink: str = SINK_CLOUDWATCH
    namespace: str = schema.DEFAULT_NAMESPACE
    function_name: str = FUNCTION_PREFIX
    log_level: str | None = None  # the extension's; None keeps its default
    mode: str = MODE_STANDARD  # managed-instances: the fleet's max_concurrency per environment
    runtime: str = RUNTIME_PYTHON
    metrics: str = schema.DEFAULT_METRICS_PROFILE  # CONCURRENCY_OBSERVER_METRICS: lean or full
    # LoggingConfig: the format of the platform's lines in the log group (Managed Instances:
    # JSON only), and JSON's system log level (WARN drops them).
    log_format: str | None = None  # None: Text, or JSON on Managed Instances
    system_log_level: str = "INFO"

    def __post_init__(self) -> None:
        if self.mode not in MODES or self.runtime not in RUNTIMES:
            raise ValueError(f"unknown mode {self.mode!r} or runtime {self.runtime!r}")
        if self.managed_instances and self.log_format == LOG_FORMAT_TEXT:
            raise ValueError("Lambda Managed Instances writes the JSON log format only")
        self.log_settings()  # raises ValueError on an unknown format or level
        if self.metrics not in schema.METRICS_PROFILES:
            raise ValueError(f"unknown metric profile {self.metrics!r}")

    @property
    def managed_instances(self) -> bool:
        """Whether the environments are Lambda Managed Instances ones."""
        return self.mode == MODE_MANAGED_INSTANCES

    @property
    def compares_init_durations(self) -> bool:
        """Whether the verdict holds the records' init durations to the RIE's INIT REPORTs:
        the Python extension in the RIE's default mode (its LMI mode prints no INIT REPORT)."""
        return not self.managed_instances and self.runtime != RUNTIME_BASH

    def log_settings(self) -> LogSettings:
        """How the platform's lines are written into the log group (local.lambda_log_lines)."""
        default = LOG_FORMAT_JSON if self.managed_instances else LOG_FORMAT_TEXT
        return LogSettings(
            log_format=self.log_format or default,
            system_log_level=self.system_log_level,
            runtime_version=f"{self.runtime}:rie",
        )

    def recording(self) -> Recording:
        """What the extension records in these environments (the verdict compares only that)."""
        # Lambda Managed Instances lets an extension register for SHUTDOWN only, but the
        # Telemetry API's platform.start/report (the RIE's LMI mode implements it) give the
        # records each environment's invocations and FirstInvoke class all the same. Without
        # python3 the layer's bash engine counts INVOKE itself: everything is recorded there too.
        if self.managed_instances and self.runtime == RUNTIME_BASH:
            return Recording(
                classes=False,
                why="on Managed Instances the bash engine gets SHUTDOWN only and has no Telemetry "
                "API: its invocations come from the platform's REPORT lines, which give no time "
                "to first invoke",
            )
        return Recording()

    def environment_settings(
        self, cloudwatch_url: str | None, output_sink: OutputSink | None = None
    ) -> EnvironmentSettings:
        """How each environment is run: the mode, the runtime, the extension's variables, and
        where its output is delivered at its close (the function's log group)."""
        settings = EnvironmentSettings(
            function_name=self.function_name,
            cloudwatch_endpoint=cloudwatch_url,
            extra_env=simulation_env(self),
            output_sink=output_sink,
            # The RIE's default mode only stubs the Telemetry API: the harness serves it (its LMI
            # mode has the real one; the bash fallback cannot listen).
            emulate_telemetry=self.compares_init_durations,
        )
        if self.managed_instances:
            return replace(settings, max_concurrency=self.fleet.max_concurrency)
        if self.runtime == RUNTIME_BASH:
            search_path = settings.environ()["PATH"]
            return replace(
                settings,
                runtime_command=("/bin/bash", str(BASH_RUNTIME)),
                hidden_paths=python3_paths(search_path),
            )
        return settings

    def profile(self) -> LoadProfile:
        """The arrival process of the load."""
        return LoadProfile(
            rate=self.rate,
            duration=self.duration,
            seed=self.seed,
            bursts=self.bursts,
            burst_size=self.burst_size,
        )

    def proactive_schedule(self) -> list[float]:
        """When the control plane initializes an on-demand environment ahead of demand."""
        return proactive_schedule(self.proactive_rate, self.duration, self.seed)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class SimulationStatus:
    """What the live display shows: the phase, the load's progress and the fleet's truth."""

    phase: str
    scheduled: int
    sent: int
    elapsed: float
    fleet: FleetSnapshot


class Simulation:
    """One run of the fleet under load; see the module docstring."""

    def __init__(
        self,
        settings: SimulationSettings,
        layer_dir: Path,
        cloudwatch_url: str | None,
        *,
        rie_path: Path | None = None,
        keep_logs: bool = False,
        logs_url: str | None = None,
    ) -> None:
        """``keep_logs`` keeps each environment's log file after it stops (``work_dir``);
        ``logs_url``: the CloudWatch Logs endpoint each environment's output is delivered to, as
        Lambda does (``local.log_delivery``), where ``report`` reads the records back."""
        self.settings = settings
        # Lambda's own Invocations metric, put where the records go (moto serves both).
        self.lambda_metric = LambdaInvocationsMetric(settings.function_name)
        self._lambda_metric_url = cloudwatch_url or logs_url
        self.delivery: LambdaLogDelivery | None = None
        if logs_url is not None:
            self.delivery = LambdaLogDelivery(
                client_for("logs", logs_url),
                settings.function_name,
                log_settings=settings.log_settings(),
            )
        environment = settings.environment_settings(cloudwatch_url, self.delivery)
        self.fleet = Fleet(
            lambda_environment_factory(
                layer_dir, environment, rie_path=rie_path, keep_work_dir=keep_logs
            ),
            settings.fleet,
        )
        self.schedule = arrival_schedule(settings.profile())
        self.proactive = settings.proactive_schedule()
        self.started_at = datetime.now(timezone.utc)
        self.ended_at: datetime | None = None
        self._began = time.monotonic()
        self._lock = threading.Lock()
        self._sent = 0
        self._phase = "starting"
        self._payload = {"sleep_ms": settings.work_ms}

    def run(self, stop: threading.Event | None = None) -> FleetSnapshot:
        """Provision, play the load, close the fleet (always); the final ground truth."""
        stop = stop or threading.Event()
        try:
            self._set_phase(f"bringing up {self.settings.provisioned} provisioned")
            self.fleet.provision(self.settings.provisioned)
            lead = self.settings.provisioned_lead if self.settings.provisioned else 0.0
            if lead > 0:
                self._set_phase(f"provisioned, the load starts in {lead:g}s")
                stop.wait(lead)  # set: run_load below sends nothing
            self._set_phase("load")
            load_over = threading.Event()
            ahead = threading.Thread(
                target=run_load,
                args=(self.fleet.initialize_ahead, self.proactive),
                kwargs={"workers": _PROACTIVE_WORKERS, "stop": load_over},
                name="proactive-inits",
                daemon=True,
            )
            ahead.start()
            try:
                run_load(
                    self._invoke,
                    self.schedule,
                    workers=self.settings.fleet.max_environments + _LOAD_WORKER_MARGIN,
                    stop=stop,
                )
            finally:
                load_over.set()  # ended or stopped: no more inits ahead of demand either
                ahead.join()
            self._set_phase("shutting down")
        finally:
            self.fleet.close()
            self.ended_at = datetime.now(timezone.utc)
            if self._lambda_metric_url is not None:  # once the load is over: no timing changes
                self.lambda_metric.publish(client_for("cloudwatch", self._lambda_metric_url))
            self._set_phase("done")
        return self.fleet.snapshot()

    def _invoke(self) -> InvocationOutcome:
        with self._lock:
            self._sent += 1
        began = time.time()
        outcome = self.fleet.invoke(self._payload)
        if outcome.outcome is Outcome.SERVED:
            self.lambda_metric.served(began)
        return outcome

    def _set_phase(self, phase: str) -> None:
        with self._lock:
            self._phase = phase

    def status(self) -> SimulationStatus:
        """The progress now (thread-safe)."""
        with self._lock:
            phase, sent = self._phase, self._sent
        return SimulationStatus(
            phase=phase,
            scheduled=len(self.schedule),
            sent=sent,
            elapsed=time.monotonic() - self._began,
            fleet=self.fleet.snapshot(),
        )

    def emf_documents(self) -> list[dict[str, Any]]:
        """The EMF documents in every environment's output (the ``emf`` sink's records)."""
        documents: list[dict[str, Any]] = []
        for environment in self.fleet.environments():
            documents.extend(readback.emf_documents(getattr(environment, "output", "")))
        return documents


def managed_instances_fleet(fleet: FleetConfig, max_concurrency: int) -> FleetConfig:
    """``fleet`` as a Lambda Managed Instances control plane: ``max_concurrency`` invocations at
    once per environment, each initialized when started, with InitType lambda-managed-instances."""
    return replace(
        fleet,
        max_concurrency=max_concurrency,
        init_on_start=True,
        demand_init_type=schema.INIT_MANAGED_INSTANCES,
    )


def simulation_env(settings: SimulationSettings) -> dict[str, str]:
    """The extension's variables in the simulated environments: the metric profile asked for
    (``--metrics``), and the threshold the fleet uses."""
    env = observer_env(
        settings.sink, settings.namespace, settings.log_level, metrics=settings.metrics
    )
    threshold_ms = round(settings.fleet.prompt_threshold * 1000)
    env[PROMPT_THRESHOLD_VARIABLE] = str(threshold_ms)
    if settings.managed_instances and settings.runtime == RUNTIME_BASH:
        # The LMI runtime has python3: the front door is told to run the bash engine.
        env[ENGINE_VARIABLE] = "bash"
    return env


ENGINE_VARIABLE: Final = "CONCURRENCY_OBSERVER_ENGINE"

# --- what was recorded, and the verdict --------------------------------------------------------

RecordedKey = tuple[str, str | None] | tuple[str, str, str]
Recorded = Mapping[RecordedKey, float]
"""Recorded sums by (metric, init type); init type None is the ``[FunctionName]`` total; and
``EnvironmentShutdown`` by (metric, init type, FirstInvoke class)."""


@dataclass(frozen=True)
class Check:
    """One figure of the verdict: what the control plane knows against what was recorded.

    ``accepted``: where the control plane knows the figure only within bounds (environments near
    the threshold, either class right; the peak on instants known to the millisecond), every
    value in ``[low, high]`` is right; ``truth`` is one of them.
    """

    metric: str
    label: str
    init_type: str | None  # None: all init types ([FunctionName])
    truth: int
    recorded: float
    first_invoke: str | None = None  # a FirstInvoke class: EnvironmentShutdown of that class
    accepted: tuple[int, int] | None = None

    @property
    def exact(self) -> bool:
        """Equal to a truth known exactly (sums of whole numbers: no tolerance)."""
        return self.accepted is None and self.recorded == self.truth

    @property
    def matches(self) -> bool:
        """Exactly equal, or within the bounds the control plane knows the figure to."""
        if self.accepted is None:
            return self.recorded == self.truth
        low, high = self.accepted
        return low <= self.recorded <= high

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "metric": self.metric,
            "figure": self.label,
            "init_type": self.init_type or "all",
            "first_invoke": self.first_invoke,
            "truth": self.truth,
            "accepted": None if self.accepted is None else list(self.accepted),
            "recorded": self.recorded,
            "matches": self.matches,
        }


def _truth(snapshot: FleetSnapshot, metric: str) -> Mapping[str, int]:
    return {
        schema.ENVIRONMENT_INIT: snapshot.started,
        schema.ENVIRONMENT_SHUTDOWN: snapshot.stopped,
        schema.ENVIRONMENT_INVOCATIONS: snapshot.invocations,
        RECORDS: snapshot.stopped,
    }[metric]


NOT_EXPECTED: Final = " (recorded, not expected here)"


def verdict_checks(
    snapshot: FleetSnapshot, recorded: Recorded, recording: Recording | None = None
) -> list[Check]:
    """Every figure ``recording`` says is recorded, per init type and in total.

    A figure the extension does not record there (``unrecorded_figures``) is left out, unless
    something was recorded for it anyway: then it is checked against 0, so a SHUTDOWN-only
    extension that counts invocations is a mismatch.
    """
    checks = []
    for check in _every_figure(snapshot, recorded):
        if _is_recorded(check, recording or Recording()):
            checks.append(check)
        elif check.recorded:
            checks.append(replace(check, label=check.label + NOT_EXPECTED, truth=0))
    return checks


def unrecorded_figures(snapshot: FleetSnapshot, recording: Recording | None = None) -> list[Check]:
    """The figures the control plane knows and the extension does not record in this setup.

    Each with its truth and ``recorded`` 0: the CLI shows them as "not recorded", not compared.
    """
    recording = recording or Recording()
    return [c for c in _every_figure(snapshot, {}) if not _is_recorded(c, recording)]


def _is_recorded(check: Check, recording: Recording) -> bool:
    """Inits and shutdowns always; invocations and FirstInvoke classes only with INVOKE events."""
    if check.first_invoke:
        return recording.invocations and recording.classes
    return recording.invocations or check.metric != schema.ENVIRONMENT_INVOCATIONS


def _every_figure(snapshot: FleetSnapshot, recorded: Recorded) -> list[Check]:
    """Every checked figure per init type (any type either side knows) and in total.

    Then every FirstInvoke class of ``EnvironmentShutdown`` for each init type that has
    shutdowns on either side.
    """
    checks = []
    for metric, label in CHECKED_METRICS:
        truth = _truth(snapshot, metric)
        types = set(truth) | {k[1] for k, v in recorded.items() if k[0] == metric and k[1] and v}
        for init_type in sorted(types):
            found = recorded.get((metric, init_type), 0.0)
            checks.append(Check(metric, label, init_type, truth.get(init_type, 0), found))
        found = recorded.get((metric, None), 0.0)
        checks.append(Check(metric, label, None, sum(truth.values()), found))
    shutdown = schema.ENVIRONMENT_SHUTDOWN
    stopped_types = {t for t, n in snapshot.stopped.items() if n}
    stopped_types |= {k[1] for k, v in recorded.items() if len(k) == 3 and v and k[1]}
    for init_type in sorted(t for t in stopped_types if t):
        for usage in schema.FIRST_INVOKE_CLASSES:
            truth_count = snapshot.first_invoke.get((init_type, usage), 0)
            found = recorded.get((shutdown, init_type, usage), 0.0)
            label = FIRST_INVOKE_LABELS[usage]
            accepted = either_way_bounds(snapshot, init_type, usage)
            checks.append(Check(shutdown, label, init_type, truth_count, found, usage, accepted))
    return checks


def either_way_bounds(
    snapshot: FleetSnapshot, init_type: str, usage: str
) -> tuple[int, int] | None:
    """The counts of class ``usage`` that are right given the environments near the threshold.

    Those are counted delayed (their upper bound's class); any of them may be prompt instead.
    ``None`` when none is near (only the exact count is right).
    """
    near = snapshot.either_way.get(init_type, 0)
    count = snapshot.first_invoke.get((init_type, usage), 0)
    if not near or usage == schema.FIRST_INVOKE_NEVER:
        return None
    if usage == schema.FIRST_INVOKE_PROMPT:
        return count, count + near
    return count - near, count


# The report's headline, "how many invocations were cold starts": its two figures, in total.
COLD_STARTS_FELT: Final = "ColdStartsFelt"
LAMBDA_INVOCATIONS: Final = "AWS/Lambda Invocations"


def cold_start_checks(
    snapshot: FleetSnapshot, cold: ColdStarts | None, recording: Recording | None = None
) -> list[Check]:
    """The cold-start share's two figures against the control plane (``cold``: the report's).

    Invocations: those the fleet served (Lambda's metric, which the harness emits, counts no
    held warm-up). Cold starts felt by a request: on-demand inits first invoked promptly, known
    only where the extension records FirstInvoke classes (else ``unrecorded_cold_starts``).
    """
    invocations = Check(
        LAMBDA_INVOCATIONS,
        "invocations (AWS/Lambda)",
        None,
        snapshot.served,
        float(cold.invocations or 0.0) if cold else 0.0,
    )
    if not (recording or Recording()).invocations:
        return [invocations]
    # Unknown where it should be known: NaN equals nothing, so the check fails and says so.
    felt = 0.0 if cold is None else float("nan") if cold.felt is None else float(cold.felt)
    return [invocations, replace(_felt(snapshot), recorded=felt)]


def unrecorded_cold_starts(
    snapshot: FleetSnapshot, recording: Recording | None = None
) -> list[Check]:
    """Cold starts felt, when the extension cannot tell them (no FirstInvoke classes)."""
    return [] if (recording or Recording()).invocations else [_felt(snapshot)]


def _felt(snapshot: FleetSnapshot) -> Check:
    od, prompt = schema.INIT_ON_DEMAND, schema.FIRST_INVOKE_PROMPT
    truth = snapshot.first_invoke.get((od, prompt), 0)
    accepted = either_way_bounds(snapshot, od, prompt)
    return Check(COLD_STARTS_FELT, "cold starts felt", None, truth, 0.0, accepted=accepted)


# The report's peak, exact from the records' instants, against the same instants by the RIE.
PEAK_LIVE: Final = "PeakLive"


def peak_checks(snapshot: FleetSnapshot, report_peak: int | None) -> list[Check]:
    """The report's peak of live environments against the peak over the same instants: each
    extension's start and SHUTDOWN as the RIE logged them (``FleetSnapshot.spans``).

    Compared only when the report's peak is from the records (``report_peak``, else ``None``)
    and every stopped environment has its span; the control plane's own peak, from sending
    each init to the environment's exit, is wider and shown beside it, not compared.
    """
    if report_peak is None or snapshot.spans_missing or not snapshot.spans:
        return []
    low, high = peak_bounds(snapshot.spans)
    accepted = None if low == high else (low, high)
    label = "peak live (records' instants)"
    return [Check(PEAK_LIVE, label, None, low, float(report_peak), accepted=accepted)]


def report_request(settings: SimulationSettings, since: datetime, until: datetime) -> ReportRequest:
    """The report's request: the run's own minutes, with a look-back longer than any lifetime.

    Nothing of this function lived before the run (its name is new), so the look-back only
    silences the report's "lived longer than the look-back" warning. It stays short: moto scans
    every stored point once per period.
    """
    lookback = max(_MIN_LOOKBACK, until - since + timedelta(seconds=_PERIOD))
    window = resolve_window(
        now=until, period=_REPORT_PERIOD, lookback=lookback, start=since, end=until
    )
    return ReportRequest(
        function_name=settings.function_name,
        window=window,
        namespace=settings.namespace,
        provisioned=settings.provisioned,
    )
