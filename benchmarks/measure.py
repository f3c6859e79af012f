"""Measure one variant in one round: one real environment under the RIE, from start to exit.

The environment is the local harness's ``LambdaEnvironment``. Invocations go over one keep-alive
connection opened before the clock starts, so warm latencies measure the RIE, the runtime and the
extension, not TCP set-up.
"""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from benchmarks import procfs
from benchmarks.results import Sample
from benchmarks.variants import FALLBACK_MARK, Variant
from concurrency_observer import schema
from concurrency_observer.local import readback
from concurrency_observer.local.environment import INVOKE_PATH, EnvironmentFailed, LambdaEnvironment
from concurrency_observer.local.environment_settings import EnvironmentSettings

# Let the extension finish with the first INVOKE event (back on /event/next) before reading RSS.
_SETTLE_S = 0.05
_SSL_MODULE = "/_ssl."  # the _ssl extension module's file, mapped once ssl is imported


@dataclass(frozen=True)
class Run:
    """What every environment of one benchmark run shares."""

    run_id: str
    warm_invokes: int
    # boto3 clients of the local moto servers, by the name of the variant that sends to each
    cloudwatch_clients: Mapping[str, Any] = field(default_factory=dict)


def namespace_for(run: Run, variant: Variant, round_index: int) -> str:
    """A namespace of this environment's own: moto mixes series across namespaces otherwise."""
    return f"ConcurrencyObserverBench/{run.run_id}/{variant.name}/{round_index}"


def expected_datums(variant: Variant, invoked: bool) -> int:
    """How many data points one environment sends, by the metric tables of docs/metrics.md.

    The lean profile: one ``EnvironmentDelta`` at init and one at shutdown. The full one: each
    metric once per base dimension set; ``EnvironmentShutdown`` also per ``ShutdownReason``;
    ``EnvironmentInvocations`` only when subscribed to INVOKE, ``EnvironmentTimeToFirstInvoke``
    only then and if invoked; ``EnvironmentShutdown`` per ``FirstInvoke`` class only when
    subscribed to INVOKE (invoked or not: a never-invoked environment is of class ``never``).
    """
    if variant.metrics == schema.METRICS_LEAN:
        return 2
    metrics = [
        schema.ENVIRONMENT_INIT,
        schema.ENVIRONMENT_SHUTDOWN,
        schema.ENVIRONMENT_LIFETIME,
        schema.ENVIRONMENT_IDLE_TIME,
    ]
    if variant.subscribes_invoke:
        metrics.append(schema.ENVIRONMENT_INVOCATIONS)
        if invoked:
            metrics.append(schema.ENVIRONMENT_TIME_TO_FIRST_INVOKE)
    extra_shutdown_sets = 2 if variant.subscribes_invoke else 1  # ShutdownReason (+ FirstInvoke)
    return len(metrics) * len(schema.BASE_DIMENSION_SETS) + extra_shutdown_sets


class _Invoker:
    """POSTs invocations over one persistent HTTP/1.1 connection to the RIE."""

    def __init__(self, emulator_url: str) -> None:
        address = urlsplit(emulator_url)
        self._connection = http.client.HTTPConnection(
            address.hostname or "127.0.0.1", address.port, timeout=30
        )
        self._connection.connect()

    def invoke_ms(self) -> float:
        """One invocation's latency in milliseconds; raises on a non-200 or a function error."""
        began = time.perf_counter()
        self._connection.request("POST", INVOKE_PATH, body=b"{}")
        response = self._connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - began) * 1000
        if response.status != 200 or b"errorType" in body:
            raise EnvironmentFailed(f"invoke answered {response.status}: {body[:200]!r}")
        return elapsed

    def close(self) -> None:
        self._connection.close()


def measure(run: Run, variant: Variant, round_index: int) -> Sample:
    """Start, invoke cold, read the extension's memory, invoke warm, shut down, check records."""
    sample = Sample(variant.name, round_index)
    namespace = namespace_for(run, variant, round_index)
    function_name = f"bench-{variant.name}-{round_index}"
    settings = EnvironmentSettings(
        function_name=function_name,
        extra_env={
            **variant.settings,
            "CONCURRENCY_OBSERVER_NAMESPACE": namespace,
        },
        emulate_telemetry=variant.emulate_telemetry,
    )
    since = datetime.now(timezone.utc)
    environment = LambdaEnvironment(variant.layer, settings, name=f"bench-{variant.name}")
    try:
        environment.start()
        invoker = _Invoker(environment.emulator_url)
        try:
            sample.cold_invoke_ms = invoker.invoke_ms()
            time.sleep(_SETTLE_S)
            _read_extension(environment, variant, sample)
            sample.warm_ms = [invoker.invoke_ms() for _ in range(run.warm_invokes)]
        finally:
            invoker.close()
        result = environment.shutdown()
        sample.shutdown_ms = result.duration_s * 1000
        if result.forced:
            sample.errors.append("shutdown: the RIE did not exit in time and was killed")
    except (EnvironmentFailed, OSError, http.client.HTTPException) as error:
        sample.errors.append(f"round {round_index}: {error}")
    finally:
        environment.close()
    output = environment.output
    sample.init_report_ms = environment.init_duration_ms()
    sample.register_ms = time_to_register(output)
    _check_registration(output, variant, sample)
    if variant.sink is not None and sample.shutdown_ms is not None:
        try:
            _count_records(run, variant, sample, output=output, namespace=namespace, since=since)
        except Exception as error:  # botocore's errors: one variant's failure must not end the run
            sample.errors.append(f"reading the records back: {error}")
    return sample


def _read_extension(environment: LambdaEnvironment, variant: Variant, sample: Sample) -> None:
    session = environment.session_id
    pids = procfs.extension_processes(session) if session is not None else []
    if not variant.has_extension:
        if pids:
            sample.errors.append(f"no-extension variant runs extension processes {pids}")
        return
    # One process (the bash engine, or an extension that registers itself), or two: the shell
    # front door waiting and the Python engine, its child. The extension's cost is their sum.
    if not 1 <= len(pids) <= 2:
        sample.errors.append(f"expected one or two extension processes, found {pids}")
        return
    try:
        memories = [procfs.memory(pid) for pid in pids]
        sample.cpu_ms = sum(procfs.cpu_ms(pid) for pid in pids)
    except (OSError, KeyError) as error:
        sample.errors.append(f"cannot read the extension's /proc entries: {error}")
        return
    sample.rss_kb = sum(memory.rss_kb for memory in memories)
    sample.hwm_kb = sum(memory.hwm_kb for memory in memories)
    sample.ssl_loaded = any(procfs.maps_module(pid, _SSL_MODULE) for pid in pids)


# The RIE's log lines start "27 Nov 2026 17:31:33,863 [INFO] (rapid) ...".
_RAPID_LINE = re.compile(r"^(\d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2}),(\d{3}) \[\w+\] \(rapid\) (.*)$")


def time_to_register(output: str) -> float | None:
    """Milliseconds from the RIE's ``INIT START`` to its log line of an extension registering.

    The RIE starts the runtime only once every extension has registered, so this is the part of
    an extension's start-up that adds to init one for one; what it does after registering runs
    beside the runtime's own start-up.
    """
    started: datetime | None = None
    for line in output.splitlines():
        match = _RAPID_LINE.match(line)
        if match is None:
            continue
        stamp = datetime.strptime(match.group(1), "%d %b %Y %H:%M:%S").replace(
            microsecond=int(match.group(2)) * 1000
        )
        message = match.group(3)
        if message.startswith("INIT START"):
            started = stamp
        elif started is not None and message.startswith("External agent"):
            return (stamp - started).total_seconds() * 1000
    return None


def _check_registration(output: str, variant: Variant, sample: Sample) -> None:
    """An extension that failed to register, or the other engine of ours, is an error."""
    if not variant.has_extension:
        return
    events = "[INVOKE SHUTDOWN]" if variant.subscribes_invoke else "[SHUTDOWN]"
    if f"registered, subscribed to {events}" not in output:
        sample.errors.append(f"the RIE did not log a registration for {events}")
    if variant.engine is not None and (FALLBACK_MARK in output) != (variant.engine == "bash"):
        sample.errors.append(f"the layer did not run its {variant.engine} engine")


def _count_records(
    run: Run, variant: Variant, sample: Sample, *, output: str, namespace: str, since: datetime
) -> None:
    sample.records_expected = expected_datums(variant, invoked=sample.cold_invoke_ms is not None)
    if variant.sink == "emf":
        series = readback.read_emf(output, namespace)
    elif variant.name in run.cloudwatch_clients:
        client = run.cloudwatch_clients[variant.name]
        series = readback.read_cloudwatch(client, namespace, since)
    else:
        return
    sample.records_delivered = sum(s.samples for s in series)
    if sample.records_delivered != sample.records_expected:
        sample.errors.append(
            f"{variant.sink} records: {sample.records_delivered} data points arrived, "
            f"{sample.records_expected} expected"
        )
