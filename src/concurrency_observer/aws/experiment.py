"""The study on AWS: provisioned concurrency through the Lambda API, the count through CloudWatch.

``LambdaProvisioning`` is the ``ProvisioningTarget`` of one alias (Put/Get/Delete
ProvisionedConcurrencyConfig); ``CloudWatchInitCounter`` is the ``InitCounter`` (GetMetricData, Sum
of ``EnvironmentInit`` with dimensions ``FunctionName`` and ``InitType=provisioned-concurrency``,
plus the lean default's ``EnvironmentDelta``, (SampleCount + Sum) / 2, under the same dimensions);
``CloudWatchUsageCounter`` counts the shutdowns the same way and the ever-invoked ones from the
environment records (``records``), or from the full profile's FirstInvoke series without them.
Both take boto3 clients, so tests hand in clients wrapped in botocore's ``Stubber``.

The schema has no dimension set with both the version and the InitType, so the count covers the
whole function: provisioned concurrency on another alias or version of the same function during the
study would be counted too. ``other_provisioned_qualifiers`` finds such configurations beforehand.
``aws_study(...)`` puts the parts of one study together from the three clients; ``resolve_region``
says which region a run is in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from concurrency_observer import schema
from concurrency_observer.aws.metrics import MetricQuery, get_metric_series
from concurrency_observer.aws.records import default_log_group, read_records
from concurrency_observer.aws.session import aws_errors
from concurrency_observer.errors import AwsError, UserError
from concurrency_observer.figures import records as record_figures
from concurrency_observer.figures.periods import floor_to_period
from concurrency_observer.figures.record_scan import belongs_to
from concurrency_observer.study.clock import Clock, SystemClock
from concurrency_observer.study.plan import StudyPlan
from concurrency_observer.study.ports import (
    ProgressCallback,
    ProvisioningStatus,
    ReadyResult,
    Usage,
)
from concurrency_observer.study.waits import poll_until_ready

# Provisioned concurrency, US East (N. Virginia), USD per GB-second of configured concurrency
# (aws.amazon.com/lambda/pricing). Other regions charge differently; the estimate says so.
PRICE_PER_GB_SECOND: Final[dict[str, float]] = {
    "x86_64": 0.0000041667,
    "arm64": 0.0000033334,
}
PRICE_REGION: Final = "us-east-1"
# Lambda bills provisioned concurrency from enabling to disabling, rounded up to 5 minutes.
BILLING_INCREMENT_SECONDS: Final = 300
# A guess, for the estimate only: how long a level takes to become READY.
EXPECTED_READY_SECONDS: Final = 120.0
# Metrics land in CloudWatch a minute or two after they are put; the settle wait pays that first.
EXPECTED_METRIC_DELAY_SECONDS: Final = 120.0

# ``--namespace`` not given: the function's CONCURRENCY_OBSERVER_NAMESPACE, else the default.
AUTO_NAMESPACE: Final = "auto"

_CONFLICT_RETRIES: Final = 6
_CONFLICT_BACKOFF_SECONDS: Final = 10.0


@dataclass(frozen=True)
class FunctionFacts:
    """What the study needs to know about the function behind the alias."""

    name: str
    memory_mb: int
    architecture: str
    namespace: str | None
    layers: tuple[str, ...]
    log_group: str = ""  # where its environment records are (LoggingConfig.LogGroup or default)


def describe_function(lambda_client: Any, function: str, qualifier: str) -> FunctionFacts:
    """GetFunctionConfiguration of ``function:qualifier``: plain name, memory, architecture."""
    with aws_errors(f"reading the configuration of {function}:{qualifier}"):
        config = lambda_client.get_function_configuration(
            FunctionName=function, Qualifier=qualifier
        )
    variables = (config.get("Environment") or {}).get("Variables") or {}
    return FunctionFacts(
        name=config["FunctionName"],
        memory_mb=int(config.get("MemorySize", 128)),
        architecture=(config.get("Architectures") or ["x86_64"])[0],
        namespace=variables.get("CONCURRENCY_OBSERVER_NAMESPACE"),
        layers=tuple(layer["Arn"] for layer in config.get("Layers") or []),
        log_group=(config.get("LoggingConfig") or {}).get("LogGroup")
        or default_log_group(config["FunctionName"]),
    )


def other_provisioned_qualifiers(lambda_client: Any, function: str, qualifier: str) -> list[str]:
    """Aliases or versions of ``function`` other than ``qualifier`` with provisioned concurrency."""
    found: list[str] = []
    with aws_errors(f"listing the provisioned concurrency of {function}"):
        paginator = lambda_client.get_paginator("list_provisioned_concurrency_configs")
        for page in paginator.paginate(FunctionName=function):
            for config in page.get("ProvisionedConcurrencyConfigs", []):
                arn = str(config.get("FunctionArn", ""))
                name = arn.rsplit(":", 1)[-1]
                if name != qualifier:
                    found.append(
                        f"{name} ({config.get('RequestedProvisionedConcurrentExecutions')})"
                    )
    return found


class LambdaProvisioning:
    """``ProvisioningTarget`` over the Lambda API for one function alias (or version)."""

    def __init__(
        self,
        lambda_client: Any,
        function: str,
        qualifier: str,
        *,
        poll_interval: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self._client = lambda_client
        self._function = function
        self._qualifier = qualifier
        self._poll_interval = poll_interval
        self._clock = clock or SystemClock()

    @property
    def description(self) -> str:
        """``function:alias``."""
        return f"{self._function}:{self._qualifier}"

    def _get(self) -> dict[str, Any] | None:
        not_found = self._client.exceptions.ProvisionedConcurrencyConfigNotFoundException
        with aws_errors(f"reading the provisioned concurrency of {self.description}"):
            try:
                response: dict[str, Any] = self._client.get_provisioned_concurrency_config(
                    FunctionName=self._function, Qualifier=self._qualifier
                )
            except not_found:
                return None
        return response

    def read_config(self) -> int | None:
        """RequestedProvisionedConcurrentExecutions, or None when the alias has none."""
        config = self._get()
        return None if config is None else int(config["RequestedProvisionedConcurrentExecutions"])

    def set_provisioned(self, level: int) -> None:
        """PutProvisionedConcurrencyConfig, retried while a previous change is still in progress."""
        conflict = self._client.exceptions.ResourceConflictException
        for attempt in range(_CONFLICT_RETRIES):
            with aws_errors(f"putting provisioned concurrency {level} on {self.description}"):
                try:
                    self._client.put_provisioned_concurrency_config(
                        FunctionName=self._function,
                        Qualifier=self._qualifier,
                        ProvisionedConcurrentExecutions=level,
                    )
                    return
                except conflict:
                    # Right after a delete, Lambda may still be tearing the old configuration down.
                    if attempt == _CONFLICT_RETRIES - 1:
                        raise
            self._clock.sleep(_CONFLICT_BACKOFF_SECONDS * (attempt + 1))

    def status(self) -> ProvisioningStatus:
        """Status, requested and allocated counts of the current configuration."""
        config = self._get()
        if config is None:
            raise AwsError(f"{self.description} has no provisioned concurrency configuration")
        return ProvisioningStatus(
            state=config["Status"],
            requested=int(config.get("RequestedProvisionedConcurrentExecutions", 0)),
            allocated=int(config.get("AllocatedProvisionedConcurrentExecutions", 0)),
            reason=str(config.get("StatusReason", "")),
        )

    def wait_ready(self, level: int, timeout: float, on_progress: ProgressCallback) -> ReadyResult:
        """Poll GetProvisionedConcurrencyConfig until READY (FAILED or timeout: ``StudyError``)."""
        return poll_until_ready(
            self.status,
            timeout=timeout,
            interval=self._poll_interval,
            clock=self._clock,
            on_progress=on_progress,
        )

    def remove(self) -> None:
        """DeleteProvisionedConcurrencyConfig; no configuration is not an error."""
        not_found = self._client.exceptions.ProvisionedConcurrencyConfigNotFoundException
        with aws_errors(f"removing the provisioned concurrency of {self.description}"):
            try:
                self._client.delete_provisioned_concurrency_config(
                    FunctionName=self._function, Qualifier=self._qualifier
                )
            except not_found:
                return

    def restore(self, original: int | None) -> str:
        """Put ``original`` back (None: remove any configuration) and say what was done."""
        try:
            if original is None:
                self.remove()
                return f"restored {self.description}: no provisioned concurrency, as before"
            self.set_provisioned(original)
        except AwsError as exc:
            by_hand = (
                f"aws lambda put-provisioned-concurrency-config --function-name {self._function} "
                f"--qualifier {self._qualifier} --provisioned-concurrent-executions {original}"
                if original is not None
                else f"aws lambda delete-provisioned-concurrency-config --function-name "
                f"{self._function} --qualifier {self._qualifier}"
            )
            raise AwsError(f"could not restore {self.description} ({exc}); run: {by_hand}") from exc
        return (
            f"restored {self.description}: provisioned concurrency {original}, as before "
            "(Lambda is bringing it to READY)"
        )


class _ProvisionedSeries:
    """Sums of the function's provisioned-concurrency series over GetMetricData, since a moment.

    The base of both counters the study reads: the same window (whole periods from ``since`` to
    the end of the current one) and the same dimensions, only the queries differ.
    """

    def __init__(
        self,
        cloudwatch_client: Any,
        function_name: str,
        namespace: str = schema.DEFAULT_NAMESPACE,
        *,
        period: int = 60,
        clock: Clock | None = None,
    ) -> None:
        self._client = cloudwatch_client
        self._function = function_name
        self._namespace = namespace
        self._period = period
        self._clock = clock or SystemClock()

    @property
    def resolution_seconds(self) -> float:
        """The query period: CloudWatch sums whole periods."""
        return float(self._period)

    def _provisioned(self, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        return (
            (schema.FUNCTION_NAME, self._function),
            (schema.INIT_TYPE, schema.INIT_PROVISIONED),
            *extra,
        )

    def _totals(self, metric: str, queries: list[MetricQuery], since: datetime) -> dict[str, int]:
        """Each query's Sum over the window, rounded to whole environments."""
        start = floor_to_period(since, self._period)
        end = floor_to_period(self._clock.now(), self._period) + timedelta(seconds=self._period)
        end = max(end, start + timedelta(seconds=self._period))
        with aws_errors(f"reading {metric} for {self._function}"):
            series = get_metric_series(self._client, self._namespace, queries, start, end)
        return {query.id: round(series[query.id].total) for query in queries}

    def _lean(self) -> list[MetricQuery]:
        """The lean profile's EnvironmentDelta (Sum and SampleCount) of provisioned concurrency."""
        delta = schema.ENVIRONMENT_DELTA
        return [
            MetricQuery("net", delta, self._provisioned(), "Sum", self._period),
            MetricQuery("samples", delta, self._provisioned(), "SampleCount", self._period),
        ]


class CloudWatchInitCounter(_ProvisionedSeries):
    """``InitCounter`` over GetMetricData: provisioned inits under either metric profile, the
    Sum of ``EnvironmentInit`` (full) plus ``(SampleCount + Sum) / 2`` of ``EnvironmentDelta``."""

    def count(self, since: datetime) -> int:
        """Environments initialized for provisioned concurrency from ``since`` to now."""
        metric = schema.ENVIRONMENT_INIT
        query = MetricQuery("inits", metric, self._provisioned(), "Sum", self._period)
        totals = self._totals(metric, [query, *self._lean()], since)
        return totals["inits"] + (totals["samples"] + totals["net"]) // 2


# The environment records of provisioned concurrency shut down in [since, now] (aws.records or,
# locally, the fleet's own output); None: the FirstInvoke classes come from the full metrics.
RecordSource = Callable[[datetime, datetime], Sequence[Mapping[str, Any]]]


def log_group_records(logs: Any, log_group: str, function_name: str) -> RecordSource:
    """A ``RecordSource`` reading ``function_name``'s own records in ``log_group``
    (FilterLogEvents, the validator and the rule of whose record it is, as ``report``)."""

    def read(since: datetime, until: datetime) -> Sequence[Mapping[str, Any]]:
        return read_records(logs, log_group, since, until).of_function(function_name).records

    return read


def ever_invoked_in_records(
    records: Sequence[Mapping[str, Any]], function_name: str, since: datetime
) -> int | None:
    """Provisioned environments of ``function_name`` shut down since ``since`` and ever invoked
    (FirstInvoke prompt or delayed), from their records; None when there is no such record."""
    mine = [r for r in records if belongs_to(r, function_name)]
    lives = [
        life
        for life in record_figures.lives(mine)
        if life.init_type == schema.INIT_PROVISIONED and life.shutdown >= since
    ]
    if not lives:
        return None
    invoked = (schema.FIRST_INVOKE_PROMPT, schema.FIRST_INVOKE_DELAYED)
    return sum(1 for life in lives if life.first_invoke in invoked)


class CloudWatchUsageCounter(_ProvisionedSeries):
    """``UsageCounter`` over GetMetricData: provisioned shutdowns (``EnvironmentShutdown``, plus
    ``(SampleCount - Sum) / 2`` of ``EnvironmentDelta``), and how many were ever invoked: from the
    environment records when a ``records`` source is given and has some, else ``FirstInvoke``
    (prompt + delayed) of the full profile."""

    def __init__(
        self,
        cloudwatch_client: Any,
        function_name: str,
        namespace: str = schema.DEFAULT_NAMESPACE,
        *,
        period: int = 60,
        clock: Clock | None = None,
        records: RecordSource | None = None,
    ) -> None:
        super().__init__(cloudwatch_client, function_name, namespace, period=period, clock=clock)
        self.records = records

    def usage(self, since: datetime) -> Usage:
        """Provisioned environments shut down from ``since`` to now, and those ever invoked."""
        metric = schema.ENVIRONMENT_SHUTDOWN
        invoked = (schema.FIRST_INVOKE_PROMPT, schema.FIRST_INVOKE_DELAYED)
        queries = [MetricQuery("all", metric, self._provisioned(), "Sum", self._period)]
        queries += [
            MetricQuery(
                usage,
                metric,
                self._provisioned((schema.FIRST_INVOKE, usage)),
                "Sum",
                self._period,
            )
            for usage in invoked
        ]
        totals = self._totals(metric, [*queries, *self._lean()], since)
        shut_down = totals["all"] + (totals["samples"] - totals["net"]) // 2
        from_records = None
        if self.records is not None:
            found = self.records(since, self._clock.now())
            from_records = ever_invoked_in_records(found, self._function, since)
        if from_records is None:
            from_records = sum(totals[u] for u in invoked)
        return Usage(shut_down=shut_down, invoked=from_records)


@dataclass(frozen=True)
class CostEstimate:
    """The provisioned-concurrency charge of the repeats still to run, expected and worst case."""

    gb_seconds: float
    expected_usd: float
    worst_usd: float
    price_per_gb_second: float
    architecture: str
    memory_mb: int

    def summary(self, region: str | None) -> str:
        """The estimate in a sentence, with its assumptions."""
        note = (
            ""
            if region == PRICE_REGION
            else f" (prices are {PRICE_REGION}'s; {region or 'your region'} may differ)"
        )
        return (
            f"estimated cost: about {_usd(self.expected_usd)}, at most {_usd(self.worst_usd)} if "
            f"every wait runs to its timeout: {self.memory_mb} MB {self.architecture} at "
            f"${self.price_per_gb_second:.10f}/GB-s of configured concurrency, billed by 5 minutes"
            f"{note}"
        )


def _usd(amount: float) -> str:
    """Dollars with cents, or four decimals below a cent (a small study costs less than one)."""
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.4f}"


def _billed_seconds(seconds: float) -> float:
    return math.ceil(seconds / BILLING_INCREMENT_SECONDS) * BILLING_INCREMENT_SECONDS


def estimate_cost(
    levels: list[int],
    plan: StudyPlan,
    memory_mb: int,
    architecture: str,
) -> CostEstimate:
    """The charge of holding each of ``levels`` (one entry per repeat) for the time a repeat takes.

    Expected: READY after ``EXPECTED_READY_SECONDS``, then the metric delay and the settle period.
    Worst: every wait runs to its timeout. Each hold is rounded up to Lambda's 5-minute increment.
    You pay for the configured concurrency, not for the extra environments Lambda may start.
    """
    price = PRICE_PER_GB_SECOND.get(architecture, PRICE_PER_GB_SECOND["x86_64"])
    gigabytes = memory_mb / 1024
    expected_hold = _billed_seconds(
        EXPECTED_READY_SECONDS + EXPECTED_METRIC_DELAY_SECONDS + plan.settle
    )
    worst_hold = _billed_seconds(plan.ready_timeout + plan.settle_timeout)
    concurrency = sum(levels)
    gb_seconds = concurrency * gigabytes * expected_hold
    return CostEstimate(
        gb_seconds=gb_seconds,
        expected_usd=gb_seconds * price,
        worst_usd=concurrency * gigabytes * worst_hold * price,
        price_per_gb_second=price,
        architecture=architecture,
        memory_mb=memory_mb,
    )


def resolve_region(region: str | None) -> str:
    """--region, or the region of the standard AWS configuration (no network call)."""
    if region:
        return region
    import boto3  # noqa: PLC0415

    resolved = boto3.session.Session().region_name
    if not resolved:
        raise UserError("no region set (use --region or set AWS_REGION)")
    return str(resolved)


@dataclass(frozen=True)
class AwsStudy:
    """What a study runs against on AWS, and what to warn about before it starts."""

    facts: FunctionFacts
    namespace: str  # AUTO_NAMESPACE resolved
    target: LambdaProvisioning
    counter: CloudWatchInitCounter
    usage: CloudWatchUsageCounter
    others: list[str]  # other_provisioned_qualifiers: counted too


def aws_study(
    lambda_client: Any,
    cloudwatch_client: Any,
    logs_client: Any,
    *,
    function: str,
    alias: str,
    namespace: str,
    plan: StudyPlan,
    clock: Clock,
) -> AwsStudy:
    """Read the function's facts, then build the target and the counters over the clients."""
    facts = describe_function(lambda_client, function, alias)
    if namespace == AUTO_NAMESPACE:
        namespace = facts.namespace or schema.DEFAULT_NAMESPACE
    target = LambdaProvisioning(
        lambda_client, function, alias, poll_interval=min(plan.poll_interval, 10.0), clock=clock
    )
    counter = CloudWatchInitCounter(cloudwatch_client, facts.name, namespace, clock=clock)
    usage = CloudWatchUsageCounter(
        cloudwatch_client,
        facts.name,
        namespace,
        clock=clock,
        records=log_group_records(logs_client, facts.log_group, facts.name),
    )
    others = other_provisioned_qualifiers(lambda_client, function, alias)
    return AwsStudy(facts, namespace, target, counter, usage, others)
