"""One real environment under the RIE with the extension from the built layer, read back.

Each sink gets one run per metric profile (module fixtures): start with provisioned-concurrency,
invoke 3 times, SIGTERM; the tests then check what CloudWatch (moto) or the EMF lines recorded, the
environment record in the output, the extension's log volume, and that nothing was left running.
The default (lean) runs must leave exactly one metric stream, EnvironmentDelta per [FunctionName,
InitType]; the full runs (``CONCURRENCY_OBSERVER_METRICS=full``) today's six metrics. The first
invoke comes right after init, so the cloudwatch run (default 10 s threshold) is classified
``prompt``; the full emf run sets the threshold to 0 ms, so the same gap makes it ``delayed``: the
setting reaches the extension in the layer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from concurrency_observer import schema
from concurrency_observer.aws.report import ReportRequest, read_report, resolve_window
from concurrency_observer.local import ports, readback
from concurrency_observer.local.cloudwatch import LocalCloudWatch
from concurrency_observer.local.environment import LambdaEnvironment
from concurrency_observer.local.environment_results import InvokeResult, ShutdownResult
from concurrency_observer.local.environment_settings import EnvironmentSettings, observer_env
from concurrency_observer.local.process_session import processes_in_session
from tests.lean_metrics import environment_records, lean_counts

pytestmark = pytest.mark.e2e

INVOCATIONS = 3
FULL = {"CONCURRENCY_OBSERVER_METRICS": "full"}
LOG_PREFIX = "[concurrency-observer]"
RIE_SIGTERM_LINE = "Received signal signal=terminated"


@dataclass(frozen=True)
class Run:
    """What one environment did and left behind."""

    function_name: str
    namespace: str
    output: str
    invocations: list[InvokeResult]
    shutdown: ShutdownResult
    session_id: int
    emulator_port: int
    summaries: list[readback.MetricSummary]


def run_environment(
    rie_path: Path,
    layer_dir: Path,
    sink: str,
    cloudwatch: LocalCloudWatch | None,
    extra_env: dict[str, str] | None = None,
) -> Run:
    """Start one provisioned-concurrency environment, invoke it, SIGTERM it, read it back."""
    function_name = f"e2e-{uuid.uuid4().hex[:10]}"
    namespace = f"E2E/{uuid.uuid4().hex[:12]}"  # moto's GetMetricData ignores namespaces
    settings = EnvironmentSettings(
        function_name=function_name,
        init_type=schema.INIT_PROVISIONED,
        cloudwatch_endpoint=None if cloudwatch is None else cloudwatch.endpoint_url,
        # The default init budget (400 ms), on purpose: on a loaded 2-core machine moto's first
        # PutMetricData can take longer, and the exactly-once assertions below then check that a
        # slow init delivery is awaited at shutdown, not sent twice.
        extra_env={**observer_env(sink=sink, namespace=namespace), **(extra_env or {})},
    )
    since = datetime.now(timezone.utc)
    environment = LambdaEnvironment(layer_dir, settings, name=sink, rie_path=rie_path).start()
    try:
        port = int(environment.emulator_url.rsplit(":", 1)[1])
        results = [environment.invoke({"sleep_ms": 1}) for _ in range(INVOCATIONS)]
        stopped = environment.shutdown()
    finally:
        environment.close()
    assert environment.session_id is not None
    summaries = (
        readback.read_cloudwatch(cloudwatch.client(), namespace, since)
        if cloudwatch is not None
        else readback.read_emf(environment.output, namespace)
    )
    return Run(
        function_name,
        namespace,
        environment.output,
        results,
        stopped,
        environment.session_id,
        port,
        summaries,
    )


@pytest.fixture(scope="module")
def cloudwatch_run(rie_path: Path, layer_dir: Path, cloudwatch: LocalCloudWatch) -> Run:
    """The environment with the cloudwatch sink and the full profile, writing to moto."""
    return run_environment(rie_path, layer_dir, "cloudwatch", cloudwatch, FULL)


@pytest.fixture(scope="module")
def emf_run(rie_path: Path, layer_dir: Path) -> Run:
    """The environment with the emf sink and the full profile (no CloudWatch endpoint at all)."""
    threshold = {"CONCURRENCY_OBSERVER_PROMPT_THRESHOLD_MS": "0", **FULL}
    return run_environment(rie_path, layer_dir, "emf", None, threshold)


@pytest.fixture(scope="module")
def lean_cloudwatch_run(rie_path: Path, layer_dir: Path, cloudwatch: LocalCloudWatch) -> Run:
    """The environment with the cloudwatch sink and the default (lean) profile."""
    return run_environment(rie_path, layer_dir, "cloudwatch", cloudwatch)


@pytest.fixture(scope="module")
def lean_emf_run(rie_path: Path, layer_dir: Path) -> Run:
    """The environment with the emf sink and the default (lean) profile."""
    return run_environment(rie_path, layer_dir, "emf", None)


def one(run: Run, metric: str, **dimensions: str) -> readback.MetricSummary:
    """The series of ``metric`` with exactly FunctionName plus ``dimensions``; fails if absent."""
    found = readback.find(run.summaries, metric, FunctionName=run.function_name, **dimensions)
    assert found is not None, f"no {metric} series for {dimensions}: {run.summaries}"
    return found


BASE_SETS: list[dict[str, str]] = [
    {},
    {"FunctionVersion": "$LATEST"},
    {"InitType": schema.INIT_PROVISIONED},
]


def test_invocations_succeeded(cloudwatch_run: Run) -> None:
    """Every invocation answered 200 from the same runtime process, in order."""
    payloads: list[Any] = [r.payload for r in cloudwatch_run.invocations]
    assert [r.status for r in cloudwatch_run.invocations] == [200] * INVOCATIONS
    assert [p["invocation"] for p in payloads] == list(range(1, INVOCATIONS + 1))
    assert len({p["pid"] for p in payloads}) == 1
    assert payloads[0]["init_type"] == schema.INIT_PROVISIONED


@pytest.mark.parametrize("dimensions", BASE_SETS, ids=["fn", "fn-version", "fn-inittype"])
def test_cloudwatch_one_init_per_dimension_set(
    cloudwatch_run: Run, dimensions: dict[str, str]
) -> None:
    """EnvironmentInit holds exactly one datum of 1 in each dimension set."""
    init = one(cloudwatch_run, schema.ENVIRONMENT_INIT, **dimensions)
    assert (init.samples, init.total) == (1, 1.0)


@pytest.mark.parametrize(
    "dimensions",
    [*BASE_SETS, {"ShutdownReason": "sandboxterminated"}],
    ids=["fn", "fn-version", "fn-inittype", "fn-reason"],
)
def test_cloudwatch_one_shutdown_per_dimension_set(
    cloudwatch_run: Run, dimensions: dict[str, str]
) -> None:
    """EnvironmentShutdown holds exactly one datum of 1 per set, the reason SandboxTerminated."""
    shutdown = one(cloudwatch_run, schema.ENVIRONMENT_SHUTDOWN, **dimensions)
    assert (shutdown.samples, shutdown.total) == (1, 1.0)


def test_cloudwatch_first_invoke_class(cloudwatch_run: Run) -> None:
    """EnvironmentShutdown per [FunctionName, InitType, FirstInvoke]: one datum, class prompt."""
    by_class = {
        dict(s.dimensions).get(schema.FIRST_INVOKE): s
        for s in cloudwatch_run.summaries
        if s.name == schema.ENVIRONMENT_SHUTDOWN and schema.FIRST_INVOKE in dict(s.dimensions)
    }
    assert list(by_class) == [schema.FIRST_INVOKE_PROMPT]
    prompt = one(
        cloudwatch_run,
        schema.ENVIRONMENT_SHUTDOWN,
        InitType=schema.INIT_PROVISIONED,
        FirstInvoke=schema.FIRST_INVOKE_PROMPT,
    )
    assert (prompt.samples, prompt.total) == (1, 1.0)
    others = [s for s in cloudwatch_run.summaries if s.name != schema.ENVIRONMENT_SHUTDOWN]
    assert all(schema.FIRST_INVOKE not in dict(s.dimensions) for s in others)


def test_report_reads_the_class_back(cloudwatch_run: Run, cloudwatch: LocalCloudWatch) -> None:
    """``report`` over that run: one PC environment, created, ended, invoked promptly."""
    window = resolve_window(now=datetime.now(timezone.utc), since=timedelta(minutes=10))
    request = ReportRequest(cloudwatch_run.function_name, window, cloudwatch_run.namespace)
    report = read_report(cloudwatch.client(), request)
    usage = report.usage_by_init_type[schema.INIT_PROVISIONED]
    assert (usage.created, usage.shut_down, usage.prompt, usage.never, usage.delayed) == (
        1,
        1,
        1,
        0,
        0,
    )
    assert report.reconciliation is not None
    assert report.reconciliation.ever_invoked == 1


def test_cloudwatch_invocations_and_lifetime(cloudwatch_run: Run) -> None:
    """The shutdown record counts the 3 invocations and a positive lifetime."""
    invocations = one(cloudwatch_run, schema.ENVIRONMENT_INVOCATIONS)
    lifetime = one(cloudwatch_run, schema.ENVIRONMENT_LIFETIME)
    assert (invocations.samples, invocations.total) == (1, float(INVOCATIONS))
    assert lifetime.samples == 1
    assert lifetime.total > 0
    assert lifetime.unit == schema.UNIT_SECONDS


def test_cloudwatch_matches_ground_truth(cloudwatch_run: Run) -> None:
    """The verdict simulate prints: no discrepancy with 1 init, 1 shutdown, 3 invocations."""
    truth = readback.GroundTruth(inits=1, shutdowns=1, invocations=INVOCATIONS)
    assert truth.discrepancies(cloudwatch_run.summaries, cloudwatch_run.function_name) == []


def test_emf_one_init_line_then_one_shutdown_line(emf_run: Run) -> None:
    """The emf sink writes exactly two EMF documents: the init, then the shutdown with values."""
    documents = readback.emf_documents(emf_run.output)
    assert len(documents) == 2
    init, shutdown = documents
    assert init[schema.ENVIRONMENT_INIT] == 1
    assert init[schema.INIT_TYPE] == schema.INIT_PROVISIONED
    assert schema.ENVIRONMENT_SHUTDOWN not in init
    assert shutdown[schema.ENVIRONMENT_SHUTDOWN] == 1
    assert shutdown[schema.SHUTDOWN_REASON] == "sandboxterminated"
    assert shutdown[schema.ENVIRONMENT_INVOCATIONS] == INVOCATIONS
    assert shutdown[schema.ENVIRONMENT_LIFETIME] > 0
    assert shutdown[schema.FIRST_INVOKE] == schema.FIRST_INVOKE_DELAYED  # threshold 0 ms
    assert schema.FIRST_INVOKE not in init
    namespaces = {
        directive["Namespace"]
        for document in documents
        for directive in document["_aws"]["CloudWatchMetrics"]
    }
    assert namespaces == {emf_run.namespace}


def test_emf_matches_ground_truth_per_dimension_set(emf_run: Run) -> None:
    """Read as CloudWatch Logs would, the EMF lines give one init and one shutdown per set."""
    for dimensions in BASE_SETS:
        assert one(emf_run, schema.ENVIRONMENT_INIT, **dimensions).samples == 1
        assert one(emf_run, schema.ENVIRONMENT_SHUTDOWN, **dimensions).samples == 1
    delayed = {"InitType": schema.INIT_PROVISIONED, "FirstInvoke": schema.FIRST_INVOKE_DELAYED}
    assert one(emf_run, schema.ENVIRONMENT_SHUTDOWN, **delayed).samples == 1
    truth = readback.GroundTruth(inits=1, shutdowns=1, invocations=INVOCATIONS)
    assert truth.discrepancies(emf_run.summaries, emf_run.function_name) == []


@pytest.mark.parametrize("run_name", ["lean_cloudwatch_run", "lean_emf_run"])
def test_lean_writes_one_metric_stream(request: pytest.FixtureRequest, run_name: str) -> None:
    """Default: one stream, EnvironmentDelta per FunctionName+InitType: 1 init, 1 shutdown."""
    run: Run = request.getfixturevalue(run_name)
    (stream,) = run.summaries
    assert (stream.name, stream.unit) == (schema.ENVIRONMENT_DELTA, schema.UNIT_COUNT)
    assert dict(stream.dimensions) == {
        "FunctionName": run.function_name,
        "InitType": schema.INIT_PROVISIONED,
    }
    assert (stream.samples, stream.total) == (2, 0.0)  # +1 and -1
    assert (stream.minimum, stream.maximum) == (-1.0, 1.0)
    assert lean_counts(run.summaries, run.function_name) == {schema.INIT_PROVISIONED: (1, 1)}


def test_lean_list_metrics_shows_one_metric(
    lean_cloudwatch_run: Run, cloudwatch: LocalCloudWatch
) -> None:
    """ListMetrics (botocore, moto) on the run's namespace: the one metric a user is billed for."""
    pages = cloudwatch.client().get_paginator("list_metrics")
    listed = {
        (m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"]))
        for page in pages.paginate(Namespace=lean_cloudwatch_run.namespace)
        for m in page["Metrics"]
    }
    assert listed == {
        (
            "EnvironmentDelta",
            (
                ("FunctionName", lean_cloudwatch_run.function_name),
                ("InitType", schema.INIT_PROVISIONED),
            ),
        )
    }


def test_lean_emf_lines(lean_emf_run: Run) -> None:
    """The emf sink under the default profile: +1 then -1, nothing else."""
    documents = readback.emf_documents(lean_emf_run.output)
    assert [d[schema.ENVIRONMENT_DELTA] for d in documents] == [1, -1]
    assert all(
        set(d) == {"_aws", "FunctionName", "InitType", "EnvironmentDelta"} for d in documents
    )


@pytest.mark.parametrize(
    ("run_name", "profile", "first_invoke"),
    [
        ("lean_cloudwatch_run", "lean", "prompt"),
        ("lean_emf_run", "lean", "prompt"),
        ("cloudwatch_run", "full", "prompt"),
        ("emf_run", "full", "delayed"),  # threshold 0 ms
    ],
)
def test_one_environment_record(
    request: pytest.FixtureRequest, run_name: str, profile: str, first_invoke: str
) -> None:
    """Whatever the sink and profile: the record once in the output, with the environment's life."""
    run: Run = request.getfixturevalue(run_name)
    (record,) = environment_records(run.output)
    assert record["functionName"] == run.function_name
    assert (record["engine"], record["metrics"]) == ("python", profile)
    assert record["initType"] == schema.INIT_PROVISIONED
    assert record["functionVersion"] == "$LATEST"
    assert record["invocations"] == INVOCATIONS
    assert record["firstInvoke"] == first_invoke
    assert record["shutdownReason"] == "sandboxterminated"
    assert record["lifetimeMs"] > 0
    assert 0 <= record["idleMs"] <= record["lifetimeMs"]
    assert 0 <= record["timeToFirstInvokeMs"] <= record["lifetimeMs"]
    assert record["initTime"] < record["shutdownTime"]
    assert len(record["environmentId"]) == 16


@pytest.mark.parametrize("run_name", ["cloudwatch_run", "emf_run"])
def test_default_log_level_writes_one_line_at_init_and_one_at_shutdown(
    request: pytest.FixtureRequest, run_name: str
) -> None:
    """At the default level the extension writes at most one log line per phase."""
    run: Run = request.getfixturevalue(run_name)
    before, marker, after = run.output.partition(RIE_SIGTERM_LINE)
    assert marker, "the RIE never logged the SIGTERM"
    count = sum(LOG_PREFIX in line for line in before.splitlines())
    assert count <= 1, before
    assert sum(LOG_PREFIX in line for line in after.splitlines()) <= 1, after


@pytest.mark.parametrize(
    "run_name", ["cloudwatch_run", "emf_run", "lean_cloudwatch_run", "lean_emf_run"]
)
def test_sigterm_shutdown_leaves_nothing_running(
    request: pytest.FixtureRequest, run_name: str
) -> None:
    """After SIGTERM the environment exited by itself and no process or port is left."""
    run: Run = request.getfixturevalue(run_name)
    assert run.shutdown.forced is False
    assert run.shutdown.exit_code == 0
    assert processes_in_session(run.session_id) == []
    assert not ports.is_listening(run.emulator_port)
