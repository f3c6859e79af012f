"""A CloudWatch dashboard for one function's execution environments.

Public interface:

- ``dashboard_body(function_name, namespace, region, provisioned=None) -> dict``: pure, the
  dashboard body (CloudWatch's dashboard body structure), ready for ``json.dumps``.
- ``put_dashboard(cloudwatch, name, body) -> list[str]``: PutDashboard; returns CloudWatch's
  validation messages (empty when it accepted everything).
- ``default_dashboard_name(function_name)`` and ``console_url(region, name)``.

The live-environments graph is CloudWatch metric math over both metric profiles: the full
profile's ``[FunctionName]`` series and the lean default's ``EnvironmentDelta`` (+1 at init, -1 at
shutdown) per ``[FunctionName, InitType]``, one hidden series per documented init type::

    live = RUNNING_SUM(FILL(inits, 0) - FILL(shutdowns, 0) + FILL(d0, 0) + ... + FILL(d3, 0))

so a function observed under either profile, or both in turn, gets one line. Inits by init type:
the full profile's ``SEARCH`` beside ``(SampleCount + Sum) / 2`` of each EnvironmentDelta.

``FILL(..., 0)``: a period with inits but no shutdowns (or the reverse) has no data point in the
other series, and arithmetic between two series only keeps timestamps present in both.
RUNNING_SUM starts at zero at the left edge of the graph, so environments born before the
dashboard's time range are not counted: pick a range that starts before them (the ``report``
command counts them with its look-back). The breakdowns use ``SEARCH`` so that a new InitType or
ShutdownReason shows up without editing the dashboard.

The share widgets are metric math over the ``[FunctionName, InitType, FirstInvoke]`` series of
``EnvironmentShutdown`` (Sum), at ``SHARE_PERIOD``: the never-invoked share over every init type
(``SUM(SEARCH(...))`` of the ``never`` series over ``SUM(SEARCH(...))`` of all classes) and for
provisioned concurrency, and the proactive share of on-demand environments
(``delayed / (never + prompt + delayed)``). They count environments as they shut down.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final
from urllib.parse import quote

from concurrency_observer.aws.dashboard_records import record_widgets
from concurrency_observer.aws.records import default_log_group
from concurrency_observer.aws.session import aws_errors
from concurrency_observer.errors import UserError
from concurrency_observer.schema import (
    ENVIRONMENT_DELTA,
    ENVIRONMENT_IDLE_TIME,
    ENVIRONMENT_INIT,
    ENVIRONMENT_INVOCATIONS,
    ENVIRONMENT_LIFETIME,
    ENVIRONMENT_SHUTDOWN,
    ENVIRONMENT_TIME_TO_FIRST_INVOKE,
    FIRST_INVOKE,
    FIRST_INVOKE_CLASSES,
    FIRST_INVOKE_DELAYED,
    FIRST_INVOKE_NEVER,
    FUNCTION_NAME,
    INIT_ON_DEMAND,
    INIT_PROVISIONED,
    INIT_TYPE,
    KNOWN_INIT_TYPES,
    SHUTDOWN_REASON,
)

_LEAN_IDS: Final = tuple(f"d{index}" for index in range(len(KNOWN_INIT_TYPES)))
LIVE_EXPRESSION: Final = (
    "RUNNING_SUM(FILL(inits, 0) - FILL(shutdowns, 0)"
    + "".join(f" + FILL({i}, 0)" for i in _LEAN_IDS)
    + ")"
)
PERIOD: Final = 60
# Shares per minute swing between 0 and 100% on a quiet function: the share widgets use 5 minutes.
SHARE_PERIOD: Final = 300
_WIDTH: Final = 12  # two widgets per row on CloudWatch's 24-column grid
_HEIGHT: Final = 6
# CloudWatch's rule for dashboard names.
_DASHBOARD_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,255}")


def default_dashboard_name(function_name: str) -> str:
    """``concurrency-observer-<function>``."""
    return f"concurrency-observer-{function_name}"


def check_dashboard_name(name: str) -> str:
    """``name`` if CloudWatch accepts it as a dashboard name, else a ``UserError``."""
    if not _DASHBOARD_NAME.fullmatch(name):
        raise UserError(
            f"invalid dashboard name {name!r}: use 1 to 255 letters, digits, '-' or '_'"
        )
    return name


def console_url(region: str, name: str) -> str:
    """The CloudWatch console address of dashboard ``name`` in ``region``."""
    if region.startswith("cn-"):
        host = f"{region}.console.amazonaws.cn"
    elif region.startswith("us-gov-"):
        host = f"{region}.console.amazonaws-us-gov.com"
    else:
        host = f"{region}.console.aws.amazon.com"
    return f"https://{host}/cloudwatch/home?region={region}#dashboards/dashboard/{quote(name)}"


def _search(namespace: str, dimension: str, metric: str, function_name: str) -> str:
    # The namespace is quoted: a custom one may hold ':', '#' or spaces. The dimension names are
    # plain words; the quoted values make the terms exact matches, not partial ones.
    schema = f'{{"{namespace}",{FUNCTION_NAME},{dimension}}}'
    terms = f'MetricName="{metric}" {FUNCTION_NAME}="{function_name}"'
    return f"SEARCH('{schema} {terms}', 'Sum', {PERIOD})"


def _class_search(namespace: str, function_name: str, first_invoke: str | None) -> str:
    schema = f'{{"{namespace}",{FUNCTION_NAME},{INIT_TYPE},{FIRST_INVOKE}}}'
    terms = f'MetricName="{ENVIRONMENT_SHUTDOWN}" {FUNCTION_NAME}="{function_name}"'
    if first_invoke is not None:
        terms += f' {FIRST_INVOKE}="{first_invoke}"'
    return f"SUM(SEARCH('{schema} {terms}', 'Sum', {SHARE_PERIOD}))"


def _class_metrics(
    namespace: str, function_name: str, init_type: str, prefix: str
) -> list[list[Any]]:
    """The three FirstInvoke series of one init type, hidden, with ids ``<prefix><class>``."""
    return [
        [
            namespace,
            ENVIRONMENT_SHUTDOWN,
            FUNCTION_NAME,
            function_name,
            INIT_TYPE,
            init_type,
            FIRST_INVOKE,
            first_invoke,
            {"stat": "Sum", "id": f"{prefix}{first_invoke}", "visible": False},
        ]
        for first_invoke in FIRST_INVOKE_CLASSES
    ]


def _share_of(prefix: str, first_invoke: str) -> str:
    """``100 * class / all three classes`` for the series with ids ``<prefix><class>``."""
    every = " + ".join(f"FILL({prefix}{c}, 0)" for c in FIRST_INVOKE_CLASSES)
    return f"100 * FILL({prefix}{first_invoke}, 0) / ({every})"


def share_widgets(function_name: str, namespace: str, region: str, y: int) -> list[dict[str, Any]]:
    """The never-invoked share and the proactive share widgets, side by side at row ``y``."""
    common = {"region": region, "period": SHARE_PERIOD, "yAxis": {"left": {"min": 0, "max": 100}}}
    never_all = _class_search(namespace, function_name, FIRST_INVOKE_NEVER)
    classified = _class_search(namespace, function_name, None)
    never = _widget(
        0,
        y,
        "Never-invoked share of environments shut down (%)",
        [
            [{"expression": f"100 * {never_all} / {classified}", "label": "all", "id": "neverall"}],
            [
                {
                    "expression": _share_of("pc", FIRST_INVOKE_NEVER),
                    "label": INIT_PROVISIONED,
                    "id": "neverpc",
                }
            ],
            *_class_metrics(namespace, function_name, INIT_PROVISIONED, "pc"),
        ],
        **common,
    )
    proactive = _widget(
        _WIDTH,
        y,
        "Proactive share of on-demand environments (%, first invoke after the threshold)",
        [
            [
                {
                    "expression": _share_of("od", FIRST_INVOKE_DELAYED),
                    "label": "proactive",
                    "id": "proactive",
                }
            ],
            [
                {
                    "expression": _share_of("od", FIRST_INVOKE_NEVER),
                    "label": "never invoked",
                    "id": "odneverinvoked",
                }
            ],
            *_class_metrics(namespace, function_name, INIT_ON_DEMAND, "od"),
        ],
        **common,
    )
    return [never, proactive]


def _widget(x: int, y: int, title: str, metrics: list[list[Any]], **extra: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "title": title,
        "view": "timeSeries",
        "period": PERIOD,
        "metrics": metrics,
    }
    properties.update(extra)
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": _WIDTH,
        "height": _HEIGHT,
        "properties": properties,
    }


def _lean(namespace: str, function_name: str, stat: str, prefix: str) -> list[list[Any]]:
    """EnvironmentDelta's ``stat`` per documented init type, hidden, ids ``<prefix><index>``."""
    return [
        [
            namespace,
            ENVIRONMENT_DELTA,
            FUNCTION_NAME,
            function_name,
            INIT_TYPE,
            init_type,
            {"stat": stat, "id": f"{prefix}{index}", "visible": False},
        ]
        for index, init_type in enumerate(KNOWN_INIT_TYPES)
    ]


def _lean_inits(namespace: str, function_name: str) -> list[list[Any]]:
    """Inits per init type under the lean profile: (SampleCount + Sum) / 2 of EnvironmentDelta."""
    expressions: list[list[Any]] = [
        [
            {
                "expression": f"(c{index} + d{index}) / 2",
                "label": f"{init_type} (lean)",
                "id": f"leaninits{index}",
            }
        ]
        for index, init_type in enumerate(KNOWN_INIT_TYPES)
    ]
    return (
        expressions
        + _lean(namespace, function_name, "Sum", "d")
        + _lean(namespace, function_name, "SampleCount", "c")
    )


def dashboard_body(
    function_name: str,
    namespace: str,
    region: str,
    provisioned: int | None = None,
    log_group: str | None = None,
    *,
    version: str | None = None,
) -> dict[str, Any]:
    """The dashboard: live environments, inits by type, shutdowns by reason, lifetimes, usage.

    The metric widgets answer under either profile (the per-environment ones under full only);
    the Logs Insights widgets read the function's own environment records (of ``version`` only,
    when given) in ``log_group`` (default ``/aws/lambda/<function>``) under both.
    """

    def metric(name: str, stat: str, **options: Any) -> list[Any]:
        return [namespace, name, FUNCTION_NAME, function_name, {"stat": stat, **options}]

    live_extra: dict[str, Any] = {"region": region, "stacked": False, "yAxis": {"left": {"min": 0}}}
    if provisioned is not None:
        live_extra["annotations"] = {
            "horizontal": [{"label": "provisioned concurrency requested", "value": provisioned}]
        }
    common = {"region": region}
    widgets = [
        _widget(
            0,
            0,
            "Live execution environments",
            [
                [{"expression": LIVE_EXPRESSION, "label": "live environments", "id": "live"}],
                metric(ENVIRONMENT_INIT, "Sum", id="inits", visible=False),
                metric(ENVIRONMENT_SHUTDOWN, "Sum", id="shutdowns", visible=False),
                *_lean(namespace, function_name, "Sum", "d"),
            ],
            **live_extra,
        ),
        _widget(
            _WIDTH,
            0,
            "Inits by init type",
            [
                [
                    {
                        "expression": _search(
                            namespace, INIT_TYPE, ENVIRONMENT_INIT, function_name
                        ),
                        "id": "initsbytype",
                    }
                ],
                *_lean_inits(namespace, function_name),
            ],
            stacked=True,
            **common,
        ),
        _widget(
            0,
            _HEIGHT,
            "Shutdowns by reason (full profile)",
            [
                [
                    {
                        "expression": _search(
                            namespace, SHUTDOWN_REASON, ENVIRONMENT_SHUTDOWN, function_name
                        ),
                        "id": "shutdownsbyreason",
                    }
                ]
            ],
            stacked=True,
            **common,
        ),
        _widget(
            _WIDTH,
            _HEIGHT,
            "Environment lifetime (seconds, full profile)",
            [
                metric(ENVIRONMENT_LIFETIME, "Average", label="mean"),
                metric(ENVIRONMENT_LIFETIME, "p90", label="p90"),
                metric(ENVIRONMENT_LIFETIME, "Maximum", label="max"),
            ],
            **common,
        ),
        _widget(
            0,
            2 * _HEIGHT,
            "Invocations per environment (full profile)",
            [
                metric(ENVIRONMENT_INVOCATIONS, "Average", label="mean"),
                metric(ENVIRONMENT_INVOCATIONS, "Maximum", label="max"),
            ],
            **common,
        ),
        _widget(
            _WIDTH,
            2 * _HEIGHT,
            "Idle time and time to first invoke (seconds, mean, full profile)",
            [
                metric(ENVIRONMENT_IDLE_TIME, "Average", label="idle time"),
                metric(ENVIRONMENT_TIME_TO_FIRST_INVOKE, "Average", label="time to first invoke"),
            ],
            **common,
        ),
    ]
    widgets.extend(share_widgets(function_name, namespace, region, 3 * _HEIGHT))
    group = log_group or default_log_group(function_name)
    widgets.extend(record_widgets(group, region, 4 * _HEIGHT, function_name, version))
    return {"widgets": widgets}


def put_dashboard(cloudwatch: Any, name: str, body: dict[str, Any]) -> list[str]:
    """Create or replace dashboard ``name``; CloudWatch's validation messages, if any."""
    with aws_errors("cloudwatch:PutDashboard"):
        response = cloudwatch.put_dashboard(DashboardName=name, DashboardBody=json.dumps(body))
    return [
        str(message.get("Message", message))
        for message in response.get("DashboardValidationMessages", [])
    ]
