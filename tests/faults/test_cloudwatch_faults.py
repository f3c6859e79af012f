"""CloudWatch misbehaving under a real environment (the RIE): hanging, refusing, erroring, denying.

The init delivery's faults run as provisioned-concurrency inits, which send their record during
init; on-demand inits, which send it with the shutdown record, have their own tests at the end.

Each test runs the extension from the built layer in a real environment whose CloudWatch endpoint
is a ``FaultyCloudWatch`` on 127.0.0.1, and checks the three promises: the function is unharmed
(init within the documented bound, invocations answered, shutdown before the deadline), nothing
that could be delivered is lost or doubled, and the log says in one line what was lost and why.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from concurrency_observer import schema
from concurrency_observer.extension.config import DURATIONS_MS
from concurrency_observer.extension.init_delivery import INIT_DELIVERY_GRACE
from concurrency_observer.local import readback
from concurrency_observer.local.cloudwatch import LocalCloudWatch
from tests.faults.faulty_cloudwatch import (
    ACCEPT,
    DROP,
    FORWARD,
    HANG,
    HUNG,
    Answer,
    FaultyCloudWatch,
    error,
    slow,
    trickle,
)
from tests.faults.helpers import (
    RIE_SHUTDOWN_DEADLINE_S,
    EnvironmentRun,
    data_of,
    expected_data_count,
    run_environment,
)
from tests.lean_metrics import environment_records

pytestmark = pytest.mark.e2e

INIT_BUDGET_S = DURATIONS_MS["INIT_BUDGET_MS"][0] / 1000  # the default, 400 ms
# An answer slower than any per-read timeout would have been (it used to be 1 s).
SLOW_ANSWER_S = 1.2
# What a busy 2-core machine adds on top of the budget (process scheduling, a slow connect, two
# inits measured apart). Generous, yet far below what waiting for the hung request would cost
# (the budget plus the 5 s grace).
SLACK_S = 0.8
# The init delivery's own rules (its budget, its background grace, its retries) apply where the
# record is sent during init, with no request waiting: provisioned concurrency (and SnapStart,
# Managed Instances). An on-demand init sends nothing before its first /event/next; its record
# goes with the shutdown one (the tests under "On-demand" below).
PROVISIONED = {"AWS_LAMBDA_INITIALIZATION_TYPE": schema.INIT_PROVISIONED}


def run_provisioned(
    rie_path: Path, layer_dir: Path, *, extra_env: Mapping[str, str] | None = None, **kwargs: Any
) -> EnvironmentRun:
    """``run_environment`` as a provisioned-concurrency init, which sends its record in init."""
    return run_environment(
        rie_path, layer_dir, extra_env={**PROVISIONED, **(extra_env or {})}, **kwargs
    )


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def assert_function_unharmed(run: EnvironmentRun) -> None:
    """Invocations answered, the shutdown finished before the RIE's deadline, not killed."""
    assert run.invocations_succeeded(), [r.body for r in run.invocations]
    assert run.shutdown.forced is False
    assert run.shutdown.duration_s < RIE_SHUTDOWN_DEADLINE_S, run.output
    assert "Traceback" not in run.output


def emf_documents(run: EnvironmentRun) -> list[dict[str, Any]]:
    """The EMF documents the extension wrote for this run's function (stdout, in the output)."""
    documents = []
    for line in run.output.splitlines():
        if line.startswith('{"_aws"'):
            document = json.loads(line)
            if document.get(schema.FUNCTION_NAME) == run.function_name:
                documents.append(document)
    return documents


def test_hanging_endpoint_costs_init_at_most_its_budget(rie_path: Path, layer_dir: Path) -> None:
    """Opened, then never answered: init within budget+slack, records unconfirmed, no EMF."""
    with FaultyCloudWatch(then=ACCEPT).running() as normal_cloudwatch:
        normal = run_provisioned(rie_path, layer_dir, cloudwatch_url=normal_cloudwatch.url)
    assert len(normal_cloudwatch.accepted_data()) == expected_data_count()
    with FaultyCloudWatch(then=HANG).running() as hanging:
        faulty = run_provisioned(rie_path, layer_dir, cloudwatch_url=hanging.url)

    assert_init_cost_within_budget(normal, faulty)
    assert_function_unharmed(faulty)
    requests = hanging.snapshot()
    assert requests[0].at < faulty.first_invoke_done  # the init record was tried at init
    assert {r.status for r in requests} == {HUNG}
    # One request per record: a request that was sent is awaited, never sent again.
    assert len(requests) == 2
    # The requests may have been taken: writing the records as EMF too could count them twice.
    assert emf_documents(faulty) == []
    init_line, summary = faulty.lines  # one line at init, one at shutdown
    assert "init record still in flight after the init budget" in init_line
    # Shut down 0.1 s after init, its delivery is still waiting in the background: not re-sent
    # (CloudWatch may have taken it), and the line says so beside what was lost and why.
    assert "delivered nothing, unconfirmed shutdown" in summary
    assert "timed out waiting for an answer" in summary
    assert "init record still in flight" in summary


def assert_init_cost_within_budget(normal: EnvironmentRun, faulty: EnvironmentRun) -> None:
    """The faulty run's init and first invoke took at most the init budget (+ slack) more."""
    assert normal.init_duration_ms is not None
    assert faulty.init_duration_ms is not None
    added_init_s = (faulty.init_duration_ms - normal.init_duration_ms) / 1000
    added_first_invoke_s = faulty.invocations[0].latency_s - normal.invocations[0].latency_s
    assert added_init_s < INIT_BUDGET_S + SLACK_S, (normal.output, faulty.output)
    assert added_first_invoke_s < INIT_BUDGET_S + SLACK_S


@pytest.mark.parametrize("fault", ["refused", "dns-fails"])
def test_no_egress_fails_open_to_emf_exactly_once(
    rie_path: Path, layer_dir: Path, fault: str
) -> None:
    """No connection can be opened (a VPC without egress): each record once, as an EMF line."""
    with FaultyCloudWatch(then=ACCEPT).running() as normal_cloudwatch:
        normal = run_provisioned(rie_path, layer_dir, cloudwatch_url=normal_cloudwatch.url)
    # .invalid never resolves (RFC 6761): the lookup fails, with or without a network.
    url = closed_port_url() if fault == "refused" else "https://monitoring.invalid"
    faulty = run_provisioned(rie_path, layer_dir, cloudwatch_url=url)

    assert_init_cost_within_budget(normal, faulty)
    assert_function_unharmed(faulty)
    documents = emf_documents(faulty)
    assert [schema.ENVIRONMENT_INIT in d for d in documents] == [True, False]
    assert [schema.ENVIRONMENT_SHUTDOWN in d for d in documents] == [False, True]
    init, shutdown = documents
    assert faulty.started - 0.01 <= init["_aws"]["Timestamp"] / 1000 <= faulty.first_invoke_done
    assert shutdown["_aws"]["Timestamp"] / 1000 >= faulty.shutdown_began - 0.01
    unreachable = [line for line in faulty.lines if "CloudWatch unreachable" in line]
    assert len(unreachable) == 2  # one line per record written as EMF
    # A resolver that answers at once gives "cannot resolve"; one that hangs, "timed out resolving".
    expected = (
        ("cannot connect",)
        if fault == "refused"
        else ("cannot resolve monitoring.invalid", "timed out resolving monitoring.invalid")
    )
    assert all(any(reason in line for reason in expected) for line in unreachable)
    (init_line,) = [line for line in faulty.lines if " environment of " in line]
    assert "init record delivered" in init_line or "still in flight" in init_line
    summary = faulty.lines[-1]
    assert "delivered shutdown" in summary  # the init record was delivered at init: not re-sent
    assert "lost" not in summary


def test_no_egress_under_the_lean_default(rie_path: Path, layer_dir: Path) -> None:
    """Lean, no connection: +1 and -1 once each as EMF, and the record before the -1's attempt."""
    faulty = run_provisioned(
        rie_path,
        layer_dir,
        cloudwatch_url=closed_port_url(),
        extra_env={"CONCURRENCY_OBSERVER_METRICS": "lean"},
    )
    assert_function_unharmed(faulty)
    documents = emf_documents(faulty)
    assert [d[schema.ENVIRONMENT_DELTA] for d in documents] == [1, -1]
    init, shutdown = documents
    assert faulty.started - 0.01 <= init["_aws"]["Timestamp"] / 1000 <= faulty.first_invoke_done
    (record,) = environment_records(faulty.output, faulty.function_name)
    assert (record["metrics"], record["invocations"]) == ("lean", len(faulty.invocations))
    assert record["shutdownTime"] <= shutdown["_aws"]["Timestamp"] + 1
    lines = faulty.output.splitlines()
    record_at = next(i for i, line in enumerate(lines) if '"environment/1"' in line)
    shutdown_at = next(i for i, line in enumerate(lines) if '"EnvironmentDelta":-1' in line)
    assert record_at < shutdown_at  # written before the delivery that failed open
    assert sum("CloudWatch unreachable" in line for line in faulty.lines) == 2


def test_errors_then_success_deliver_each_record_once(
    rie_path: Path, layer_dir: Path, cloudwatch: LocalCloudWatch
) -> None:
    """500, 503 and Throttling before both deliveries: each datum stored once, at its own time."""
    errors: list[Answer] = [
        error(500, "InternalFailure"),
        error(503, "ServiceUnavailable"),
        error(400, "Throttling"),
    ]
    faulty = FaultyCloudWatch(errors, then=FORWARD, forward_to=cloudwatch.endpoint_url)

    def errors_again_at_shutdown() -> None:
        assert faulty.wait_for_accepted(1, timeout=INIT_BUDGET_S + INIT_DELIVERY_GRACE)
        faulty.set_script([error(503, "ServiceUnavailable"), error(400, "ThrottlingException")])

    with faulty.running():
        run = run_provisioned(
            rie_path, layer_dir, cloudwatch_url=faulty.url, before_shutdown=errors_again_at_shutdown
        )
    assert_function_unharmed(run)
    requests = faulty.snapshot()
    assert sum(not r.accepted for r in requests) == 5  # every scripted error was met
    accepted = faulty.accepted_data()
    assert len(accepted) == len({(d.name, d.dimensions) for d in accepted})  # no datum twice
    assert len(accepted) == expected_data_count()
    (init,) = data_of(accepted, schema.ENVIRONMENT_INIT, run.function_name)
    (shutdown,) = data_of(accepted, schema.ENVIRONMENT_SHUTDOWN, run.function_name)
    assert run.started - 0.01 <= init.timestamp <= run.first_invoke_done
    assert run.shutdown_began - 0.01 <= shutdown.timestamp <= run.shutdown_done

    # moto, behind the faulty front, stored exactly one init and one shutdown.
    since = datetime.fromtimestamp(run.started, tz=timezone.utc)
    summaries = readback.read_cloudwatch(cloudwatch.client(), run.namespace, since)
    for metric in (schema.ENVIRONMENT_INIT, schema.ENVIRONMENT_SHUTDOWN):
        stored = readback.find(summaries, metric, FunctionName=run.function_name)
        assert stored is not None
        assert (stored.samples, stored.total) == (1, 1.0)


def test_init_record_delivered_late_in_the_background(rie_path: Path, layer_dir: Path) -> None:
    """CloudWatch down during init, back 1 s later: the init record lands then, stamped at init."""
    faulty = FaultyCloudWatch(then=error(503, "ServiceUnavailable"))

    def recover_then_wait() -> None:
        time.sleep(1.0)
        faulty.set_script([], then=ACCEPT)
        assert faulty.wait_for_accepted(1, timeout=INIT_BUDGET_S + INIT_DELIVERY_GRACE)

    with faulty.running():
        run = run_provisioned(
            rie_path,
            layer_dir,
            cloudwatch_url=faulty.url,
            before_shutdown=recover_then_wait,
        )
    assert_function_unharmed(run)
    init_line, summary = run.lines
    assert "init record still in flight after the init budget" in init_line
    assert "delivered shutdown" in summary
    init_delivery, shutdown_delivery = [r for r in faulty.snapshot() if r.accepted]
    assert init_delivery.at >= run.first_invoke_done + 0.9
    (init,) = data_of(faulty.accepted_data(), schema.ENVIRONMENT_INIT, run.function_name)
    assert run.started - 0.01 <= init.timestamp <= run.first_invoke_done
    assert len(faulty.accepted_data()) == expected_data_count()
    assert shutdown_delivery.at >= run.shutdown_began


def test_init_record_given_up_is_sent_at_shutdown_with_its_time(
    rie_path: Path, layer_dir: Path
) -> None:
    """CloudWatch down all through the init delivery's time: the record goes at shutdown."""
    faulty = FaultyCloudWatch(then=error(400, "Throttling"))

    def outlast_the_init_delivery() -> None:
        first = faulty.snapshot()[0].at
        time.sleep(max(0.0, first + INIT_BUDGET_S + INIT_DELIVERY_GRACE + 0.3 - time.time()))
        faulty.set_script([], then=ACCEPT)

    with faulty.running():
        run = run_provisioned(
            rie_path,
            layer_dir,
            cloudwatch_url=faulty.url,
            before_shutdown=outlast_the_init_delivery,
        )
    assert_function_unharmed(run)
    *_, summary = run.lines
    assert "delivered init+shutdown" in summary
    requests = faulty.snapshot()
    throttled = [r for r in requests if not r.accepted]
    # Backoff with jitter, capped at 1 s: a handful of attempts over 5.4 s, not a storm.
    assert 3 <= len(throttled) <= 30
    (delivery,) = [r for r in requests if r.accepted]
    assert delivery.at >= run.shutdown_began
    assert len(delivery.data) == expected_data_count()
    (init,) = data_of(delivery.data, schema.ENVIRONMENT_INIT, run.function_name)
    assert run.started - 0.01 <= init.timestamp <= run.first_invoke_done
    assert delivery.at - init.timestamp > INIT_DELIVERY_GRACE


def test_slow_answer_at_shutdown_is_waited_for_not_sent_twice(
    rie_path: Path, layer_dir: Path
) -> None:
    """CloudWatch answering after 1.2 s at shutdown: one request, stored once."""
    faulty = FaultyCloudWatch(then=ACCEPT)
    with faulty.running():
        run = run_provisioned(
            rie_path,
            layer_dir,
            cloudwatch_url=faulty.url,
            before_shutdown=lambda: faulty.set_script([slow(SLOW_ANSWER_S)]),
        )
    assert_function_unharmed(run)
    at_shutdown = [r for r in faulty.snapshot() if r.at >= run.shutdown_began]
    assert len(at_shutdown) == 1  # a sent request is awaited, never re-sent
    assert at_shutdown[0].accepted
    assert len(data_of(faulty.accepted_data(), schema.ENVIRONMENT_SHUTDOWN, run.function_name)) == 1
    *_, summary = run.lines
    assert "delivered shutdown" in summary


def test_access_denied_is_one_line_and_no_retry_storm(rie_path: Path, layer_dir: Path) -> None:
    """403 AccessDenied: one request at init, one at shutdown, a clear line; the function fine."""
    with FaultyCloudWatch(then=error(403, "AccessDenied")).running() as denying:
        run = run_provisioned(rie_path, layer_dir, cloudwatch_url=denying.url, invocations=5)
    assert_function_unharmed(run)
    requests = denying.snapshot()
    assert [r.status for r in requests] == [403, 403]
    assert requests[0].at < run.first_invoke_done <= run.shutdown_began <= requests[1].at
    init_line, summary = run.lines
    assert "HTTP 403 AccessDenied" in init_line
    assert "lost init+shutdown (HTTP 403 AccessDenied" in summary


def test_a_retry_read_then_dropped_is_never_sent_a_third_time(
    rie_path: Path, layer_dir: Path
) -> None:
    """503, then the retry read and the connection closed: the init record goes no third time."""
    faulty = FaultyCloudWatch([error(503, "ServiceUnavailable"), DROP], then=ACCEPT)
    with faulty.running():
        run = run_provisioned(
            rie_path,
            layer_dir,
            cloudwatch_url=faulty.url,
            before_shutdown=lambda: time.sleep(0.5),  # the init delivery is over by then
        )
    assert_function_unharmed(run)
    carrying_init = [
        r for r in faulty.snapshot() if data_of(r.data, schema.ENVIRONMENT_INIT, run.function_name)
    ]
    # Refused once (503: not taken), read once and dropped (maybe taken): never a third time.
    assert [r.status for r in carrying_init] == [503, HUNG]
    accepted = faulty.accepted_data()
    assert data_of(accepted, schema.ENVIRONMENT_INIT, run.function_name) == []
    assert len(data_of(accepted, schema.ENVIRONMENT_SHUTDOWN, run.function_name)) == 1
    assert emf_documents(run) == []  # a request that may have been taken is never written as EMF
    init_line, summary = run.lines
    assert "init record sent but unconfirmed, not re-sent" in init_line
    assert "delivered shutdown" in summary


def test_a_trickling_answer_cannot_stretch_the_shutdown(rie_path: Path, layer_dir: Path) -> None:
    """CloudWatch answering a byte every 100 ms at shutdown: the extension leaves in time."""
    faulty = FaultyCloudWatch(then=ACCEPT)
    with faulty.running():
        run = run_provisioned(
            rie_path,
            layer_dir,
            cloudwatch_url=faulty.url,
            before_shutdown=lambda: faulty.set_script([trickle(0.1)]),
        )
    assert_function_unharmed(run)  # before the RIE's 2 s deadline, not killed
    at_shutdown = [r for r in faulty.snapshot() if r.at >= run.shutdown_began]
    assert len(at_shutdown) == 1  # sent once, never again
    assert emf_documents(run) == []
    *_, summary = run.lines
    assert "unconfirmed shutdown" in summary
    assert "timed out waiting for an answer" in summary


# On-demand: a request waits on the init, so nothing goes on the network before the first
# /event/next; the init datum goes in the shutdown request, stamped at init.


@pytest.mark.parametrize("init_type", [schema.INIT_ON_DEMAND, schema.INIT_PROVISIONED])
def test_init_datum_stored_once_with_its_time(
    rie_path: Path, layer_dir: Path, cloudwatch: LocalCloudWatch, init_type: str
) -> None:
    """On-demand: one request, at shutdown, carries the init datum; provisioned: sent in init."""
    faulty = FaultyCloudWatch(then=FORWARD, forward_to=cloudwatch.endpoint_url)
    with faulty.running():
        run = run_environment(
            rie_path,
            layer_dir,
            cloudwatch_url=faulty.url,
            extra_env={"AWS_LAMBDA_INITIALIZATION_TYPE": init_type},
        )
    assert_function_unharmed(run)
    requests = faulty.snapshot()
    assert all(r.accepted for r in requests)
    carrying_init = [
        r for r in requests if data_of(r.data, schema.ENVIRONMENT_INIT, run.function_name)
    ]
    if init_type == schema.INIT_ON_DEMAND:
        (request,) = requests  # nothing before: init and shutdown in one request
        assert request.at >= run.shutdown_began
        assert len(request.data) == expected_data_count()
        assert "init record kept for the shutdown delivery" in run.lines[0]
    else:
        (request,) = carrying_init
        assert request.at < run.first_invoke_done
        assert len(requests) == 2
    (init,) = data_of(faulty.accepted_data(), schema.ENVIRONMENT_INIT, run.function_name)
    assert run.started - 0.01 <= init.timestamp <= run.first_invoke_done
    init_types = {d.dimension(schema.INIT_TYPE) for d in faulty.accepted_data()}
    assert init_types == {init_type, None}  # the [FunctionName, InitType] set, and the others
    assert "delivered init+shutdown" in run.lines[-1] or init_type != schema.INIT_ON_DEMAND
    # moto, behind the faulty front, stored exactly one init and one shutdown, read by botocore.
    since = datetime.fromtimestamp(run.started, tz=timezone.utc)
    summaries = readback.read_cloudwatch(cloudwatch.client(), run.namespace, since)
    for metric in (schema.ENVIRONMENT_INIT, schema.ENVIRONMENT_SHUTDOWN):
        stored = readback.find(summaries, metric, FunctionName=run.function_name)
        assert stored is not None
        assert (stored.samples, stored.total) == (1, 1.0)


def test_on_demand_hanging_endpoint_costs_init_nothing(rie_path: Path, layer_dir: Path) -> None:
    """A CloudWatch that never answers is not met before SHUTDOWN; one request, unconfirmed."""
    with FaultyCloudWatch(then=HANG).running() as hanging:
        run = run_environment(rie_path, layer_dir, cloudwatch_url=hanging.url)
    assert_function_unharmed(run)
    (request,) = hanging.snapshot()  # sent once at shutdown, never again
    assert request.at >= run.shutdown_began
    assert request.status == HUNG
    assert len(request.data) == expected_data_count()
    assert emf_documents(run) == []  # it may have been taken: no EMF copy
    summary = run.lines[-1]
    assert "unconfirmed init+shutdown" in summary
    assert "timed out waiting for an answer" in summary


def test_on_demand_no_egress_fails_open_at_shutdown(rie_path: Path, layer_dir: Path) -> None:
    """No connection: +1 and -1 once each as EMF lines at shutdown, the +1 stamped at init."""
    run = run_environment(
        rie_path,
        layer_dir,
        cloudwatch_url=closed_port_url(),
        extra_env={"CONCURRENCY_OBSERVER_METRICS": "lean"},
    )
    assert_function_unharmed(run)
    documents = emf_documents(run)
    assert [d[schema.ENVIRONMENT_DELTA] for d in documents] == [1, -1]
    init, shutdown = documents
    assert run.started - 0.01 <= init["_aws"]["Timestamp"] / 1000 <= run.first_invoke_done
    assert shutdown["_aws"]["Timestamp"] / 1000 >= run.shutdown_began - 0.01
    assert sum("CloudWatch unreachable" in line for line in run.lines) == 1  # one delivery
    assert "lost" not in run.lines[-1]


def test_on_demand_retries_at_shutdown_store_each_datum_once(
    rie_path: Path, layer_dir: Path, cloudwatch: LocalCloudWatch
) -> None:
    """503 and throttling at shutdown: retried, then the init and shutdown data stored once."""
    errors: list[Answer] = [error(503, "ServiceUnavailable"), error(400, "Throttling")]
    faulty = FaultyCloudWatch(errors, then=FORWARD, forward_to=cloudwatch.endpoint_url)
    with faulty.running():
        run = run_environment(rie_path, layer_dir, cloudwatch_url=faulty.url)
    assert_function_unharmed(run)
    requests = faulty.snapshot()
    assert [r.status for r in requests] == [503, 400, 200]
    assert min(r.at for r in requests) >= run.shutdown_began
    accepted = faulty.accepted_data()
    assert len(accepted) == expected_data_count()
    (init,) = data_of(accepted, schema.ENVIRONMENT_INIT, run.function_name)
    assert run.started - 0.01 <= init.timestamp <= run.first_invoke_done
