"""The function's own invocation count (``AWS/Lambda`` ``Invocations``), for the cold-start share.

``report`` says how many invocations were cold starts: the environments' records give the cold
starts, Lambda's metric the invocations they are a share of. One GetMetricData query, ``Sum`` over
the report's window, by ``FunctionName`` (with ``--version``: ``FunctionName`` and ``Resource``
``<function>:<version>``, as Lambda publishes per version and alias). Missing (no permission, no
traffic, moto without Lambda's metrics): ``None``, and the share is unknown, not zero.
"""

from __future__ import annotations

from typing import Any, Final

from concurrency_observer.aws.metrics import MetricQuery, get_metric_series
from concurrency_observer.aws.session import aws_errors
from concurrency_observer.errors import AwsError
from concurrency_observer.figures.report_window import ReportRequest
from concurrency_observer.schema import FUNCTION_NAME

LAMBDA_NAMESPACE: Final = "AWS/Lambda"
INVOCATIONS: Final = "Invocations"
RESOURCE: Final = "Resource"
_ONE_DAY: Final = 86_400


def invocations_query(request: ReportRequest) -> MetricQuery:
    """``Sum`` of ``Invocations`` for the function (or its version) per period of the window."""
    dimensions: tuple[tuple[str, str], ...] = ((FUNCTION_NAME, request.function_name),)
    if request.version is not None:
        dimensions += ((RESOURCE, f"{request.function_name}:{request.version}"),)
    # A period that divides CloudWatch's retention granularity: a whole number of minutes.
    period = max(60, min(_ONE_DAY, request.window.period // 60 * 60))
    return MetricQuery("invocations", INVOCATIONS, dimensions, "Sum", period)


def lambda_invocations(cloudwatch: Any, request: ReportRequest) -> float | None:
    """The function's invocations in the report's window; ``None`` when CloudWatch has none."""
    query = invocations_query(request)
    window = request.window
    try:
        with aws_errors("cloudwatch:GetMetricData (AWS/Lambda Invocations)"):
            series = get_metric_series(
                cloudwatch, LAMBDA_NAMESPACE, [query], window.start, window.end
            )[query.id]
    except AwsError:
        return None
    if not series.points:
        return None
    return float(sum(value for _, value in series.points))
