"""How fast ``report --all`` ranks hundreds of functions: wall time and AWS calls, against moto.

Generates a namespace of N functions (default 300) in a moto CloudWatch server on 127.0.0.1 (the
harness's ``LocalCloudWatch``, over HTTP like AWS), each with a few environments written exactly
as the extension writes them (every dimension set, the FirstInvoke classes) plus Lambda's
``ConcurrentExecutions``, then times ``aws.ranking.rank_functions`` and counts the API calls it
made (botocore's ``before-call`` event)::

    .venv/bin/python -m benchmarks.report_all [--functions 300] [--environments 4]

What the figure means: the *call counts* carry over to AWS (two ListMetrics listings, paginated
at 500 metrics a page, and ceil(queries / 500) GetMetricData calls per pass). The *wall time* is
moto's: its GetMetricData scans every stored datum for every query, so it grows with
functions x data, where CloudWatch answers a 500-query call in well under a second.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

from concurrency_observer.aws.ranking import LAMBDA_NAMESPACE, rank_functions
from concurrency_observer.aws.report import resolve_window
from concurrency_observer.local.cloudwatch import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    LocalCloudWatch,
)
from concurrency_observer.schema import (
    BASE_DIMENSION_SETS,
    ENVIRONMENT_INIT,
    ENVIRONMENT_LIFETIME,
    ENVIRONMENT_SHUTDOWN,
    FIRST_INVOKE,
    FIRST_INVOKE_CLASSES,
    FIRST_INVOKE_SET,
    FUNCTION_NAME,
    FUNCTION_VERSION,
    INIT_ON_DEMAND,
    INIT_PROVISIONED,
    INIT_TYPE,
    METRIC_UNITS,
    SHUTDOWN_REASON,
    SHUTDOWN_REASON_SET,
)

NAMESPACE = "Bench/ReportAll"
WINDOW = timedelta(hours=1)
LOOKBACK = timedelta(hours=1)


def _datum(
    name: str, value: float, when: datetime, values: dict[str, str], dims: tuple[str, ...]
) -> dict[str, Any]:
    return {
        "MetricName": name,
        "Dimensions": [{"Name": d, "Value": values[d]} for d in dims],
        "Timestamp": when,
        "Value": value,
        "Unit": METRIC_UNITS.get(name, "Count"),
    }


def generate(cloudwatch: Any, functions: int, environments: int, start: datetime) -> int:
    """Write the data set; the number of data points written."""
    data: list[dict[str, Any]] = []
    for index in range(functions):
        name = f"bench-fn-{index:04d}"
        for env in range(environments):
            init_type = INIT_PROVISIONED if (index + env) % 3 == 0 else INIT_ON_DEMAND
            first_invoke = FIRST_INVOKE_CLASSES[(index * 7 + env) % 3]
            values = {
                FUNCTION_NAME: name,
                FUNCTION_VERSION: "1",
                INIT_TYPE: init_type,
                SHUTDOWN_REASON: "spindown",
                FIRST_INVOKE: first_invoke,
            }
            born = start + timedelta(minutes=(index + env * 11) % 50)
            gone = born + timedelta(minutes=5 + env)
            data += [
                _datum(ENVIRONMENT_INIT, 1, born, values, dims) for dims in BASE_DIMENSION_SETS
            ]
            for metric, value in ((ENVIRONMENT_SHUTDOWN, 1.0), (ENVIRONMENT_LIFETIME, 300.0 + env)):
                data += [_datum(metric, value, gone, values, dims) for dims in BASE_DIMENSION_SETS]
            data.append(_datum(ENVIRONMENT_SHUTDOWN, 1, gone, values, SHUTDOWN_REASON_SET))
            data.append(_datum(ENVIRONMENT_SHUTDOWN, 1, gone, values, FIRST_INVOKE_SET))
        lambda_values = {FUNCTION_NAME: name}
        data.append(
            {
                **_datum(
                    "ConcurrentExecutions",
                    1 + index % 4,
                    start + timedelta(minutes=10),
                    lambda_values,
                    (FUNCTION_NAME,),
                ),
                "Unit": "Count",
            }
        )
    observer = [d for d in data if d["MetricName"] != "ConcurrentExecutions"]
    lambda_data = [d for d in data if d["MetricName"] == "ConcurrentExecutions"]
    for namespace, batch in ((NAMESPACE, observer), (LAMBDA_NAMESPACE, lambda_data)):
        for first in range(0, len(batch), 1000):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=batch[first : first + 1000])
    return len(data)


def patient_client(endpoint_url: str, region: str) -> Any:
    """A CloudWatch client that waits for moto's slow answers and never retries (one call each).

    A 500-query GetMetricData over tens of thousands of points takes moto over a minute, past
    botocore's default 60 s read timeout; a retry would only double-count the call.
    """
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    config = Config(retries={"total_max_attempts": 1}, read_timeout=1800, connect_timeout=5)
    return boto3.session.Session(
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        region_name=region,
    ).client("cloudwatch", endpoint_url=endpoint_url, config=config)


def main() -> None:
    """Generate, rank, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=300)
    parser.add_argument("--environments", type=int, default=4, help="per function")
    args = parser.parse_args()
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    start = now - WINDOW
    with LocalCloudWatch() as server:
        cloudwatch = patient_client(server.endpoint_url, server.region)
        began = time.perf_counter()
        points = generate(cloudwatch, args.functions, args.environments, start)
        seeded_s = time.perf_counter() - began
        calls: Counter[str] = Counter()
        queries: Counter[str] = Counter()
        seconds: dict[str, float] = {}
        started: list[float] = []

        def count(params: dict[str, Any], model: Any, **_: Any) -> None:
            calls[model.name] += 1
            queries[model.name] += len(params.get("MetricDataQueries", []))
            started.append(time.perf_counter())

        def done(model: Any, **_: Any) -> None:
            seconds[model.name] = seconds.get(model.name, 0.0) + time.perf_counter() - started.pop()

        # Before the parameters are serialized: one event per API call, with its own parameters;
        # after-call once it is answered (no retries: see patient_client).
        cloudwatch.meta.events.register("before-parameter-build.monitoring", count)
        cloudwatch.meta.events.register("after-call.monitoring", done)
        window = resolve_window(now=now, start=start, end=now, lookback=LOOKBACK)
        began = time.perf_counter()
        ranking = rank_functions(cloudwatch, NAMESPACE, window)
        ranked_s = time.perf_counter() - began
    print(
        f"data set: {args.functions} functions x {args.environments} environments, "
        f"{points} data points written in {seeded_s:.1f} s"
    )
    print(f"report --all: {len(ranking.functions)} functions ranked in {ranked_s:.1f} s")
    for operation in sorted(calls):
        extra = f", {queries[operation]} queries" if queries[operation] else ""
        print(
            f"  {operation}: {calls[operation]} calls{extra}, {seconds.get(operation, 0.0):.1f} s"
        )


if __name__ == "__main__":
    main()
