"""The provisioned-concurrency study on the local fleet: its ``ProvisioningTarget`` and counters.

``FleetProvisioning`` is what ``LambdaProvisioning`` is on AWS, over a ``Fleet``: putting level N
brings up ``ceil(N x over_provisioning)`` provisioned environments in the background (each
initialized by a warm-up invoke, as the RIE initializes lazily); the status is READY once they
are all initialized; removing shuts them down (staggered). The over-provisioning factor is the
known truth the study must measure: with factor 1.5 and level 4, the count must be 6.

The count is read back the way the AWS study reads it, from what the extension recorded:

- ``cloudwatch_counter(client, ...)``: the AWS study's own ``CloudWatchInitCounter`` against the
  embedded moto server, with a 1-second period instead of CloudWatch's minute (moto keeps the raw
  data points and sums any period), so repeats need not start on whole minutes.
- ``EmfInitCounter``: ``EnvironmentInit`` with InitType ``provisioned-concurrency`` in the EMF
  lines of every environment of the fleet, from the repeat's start.

How the environments were used (created against ever invoked) is read the same two ways, from
``EnvironmentShutdown`` by ``FirstInvoke``: ``cloudwatch_usage_counter`` and ``EmfUsageCounter``.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, Final

from concurrency_observer import schema
from concurrency_observer.aws.experiment import (
    CloudWatchInitCounter,
    CloudWatchUsageCounter,
    RecordSource,
    ever_invoked_in_records,
)
from concurrency_observer.aws.records import parse_record
from concurrency_observer.local import readback
from concurrency_observer.local.emf_report import EmfPoint, emf_points
from concurrency_observer.local.fleet import Fleet
from concurrency_observer.study.clock import Clock, SystemClock
from concurrency_observer.study.ports import (
    ProgressCallback,
    ProvisioningStatus,
    ReadyResult,
    Usage,
)
from concurrency_observer.study.waits import poll_until_ready

LOCAL_PERIOD_SECONDS: Final = 1


class FleetProvisioning:
    """``ProvisioningTarget`` over the local fleet (see the module docstring)."""

    def __init__(
        self,
        fleet: Fleet,
        function_name: str,
        *,
        poll_interval: float = 0.2,
        clock: Clock | None = None,
    ) -> None:
        self._fleet = fleet
        self._function = function_name
        self._poll_interval = poll_interval
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._failure: str | None = None
        self._level: int | None = None

    @property
    def description(self) -> str:
        """``local fleet (function)``."""
        return f"local fleet ({self._function})"

    def read_config(self) -> int | None:
        """The level last put, or None when there is none (a new fleet has none)."""
        with self._lock:
            return self._level

    def set_provisioned(self, level: int) -> None:
        """Start bringing ``ceil(level x factor)`` environments up; returns at once."""
        self._join()
        with self._lock:
            self._level = level
            self._failure = None

        def bring_up() -> None:
            try:
                self._fleet.provision(level)
            except Exception as exc:  # reported as FAILED by status()
                with self._lock:
                    self._failure = str(exc)

        self._worker = threading.Thread(target=bring_up, name="fleet-provision", daemon=True)
        self._worker.start()

    def status(self) -> ProvisioningStatus:
        """READY once every environment of the level is initialized; FAILED with the reason."""
        with self._lock:
            level, failure = self._level or 0, self._failure
        wanted = self._fleet.config.provisioned_environments(level)
        ready = self._fleet.provisioned_ready()
        busy = self._worker is not None and self._worker.is_alive()
        if failure is not None:
            return ProvisioningStatus("FAILED", level, min(ready, level), failure)
        errors = self._fleet.snapshot().errors
        if not busy and ready < wanted:
            reason = errors[-1] if errors else f"only {ready} of {wanted} environments came up"
            return ProvisioningStatus("FAILED", level, min(ready, level), reason)
        if busy or ready < wanted:
            return ProvisioningStatus("IN_PROGRESS", level, min(ready, level))
        return ProvisioningStatus("READY", level, level)

    def wait_ready(self, level: int, timeout: float, on_progress: ProgressCallback) -> ReadyResult:
        """Poll ``status()`` until READY (FAILED or timeout: ``StudyError``)."""
        return poll_until_ready(
            self.status,
            timeout=timeout,
            interval=self._poll_interval,
            clock=self._clock,
            on_progress=on_progress,
        )

    def remove(self) -> None:
        """Shut every provisioned environment down (staggered); waits until they are gone."""
        self._join()
        self._fleet.provision(0)
        with self._lock:
            self._level = None

    def restore(self, original: int | None) -> str:
        """Put ``original`` back (None: none) and say what was done."""
        if original is None:
            self.remove()
            return f"{self.description}: no provisioned environment left"
        self.set_provisioned(original)
        self._join()
        return f"{self.description}: provisioned concurrency {original} put back"

    def _join(self) -> None:
        worker = self._worker
        if worker is not None:
            worker.join()


def cloudwatch_counter(client: Any, function_name: str, namespace: str) -> CloudWatchInitCounter:
    """The AWS study's counter on a moto endpoint, summing 1-second periods."""
    return CloudWatchInitCounter(client, function_name, namespace, period=LOCAL_PERIOD_SECONDS)


def fleet_records(fleet: Fleet) -> RecordSource:
    """The environment records in the fleet's outputs (what Lambda would deliver to the log
    group), as a ``RecordSource``: the study reads the ever-invoked ones from them."""

    def read(since: datetime, until: datetime) -> list[dict[str, Any]]:
        found = []
        for environment in fleet.environments():
            for line in str(getattr(environment, "output", "")).splitlines():
                record = parse_record(line)
                if record is not None:
                    found.append(record)
        return found

    return read


def cloudwatch_usage_counter(
    client: Any, function_name: str, namespace: str, records: RecordSource | None = None
) -> CloudWatchUsageCounter:
    """The AWS study's usage counter (shut down, ever invoked) on a moto endpoint, 1-s periods."""
    return CloudWatchUsageCounter(
        client, function_name, namespace, period=LOCAL_PERIOD_SECONDS, records=records
    )


class EmfUsageCounter:
    """``UsageCounter`` over the EMF lines of the fleet's environments (the ``emf`` sink)."""

    def __init__(self, fleet: Fleet, function_name: str, namespace: str) -> None:
        self._fleet = fleet
        self._function = function_name
        self._namespace = namespace

    def usage(self, since: datetime) -> Usage:
        """Provisioned ``EnvironmentShutdown`` stamped at or after ``since``, by FirstInvoke."""
        documents: list[dict[str, Any]] = []
        for environment in self._fleet.environments():
            documents.extend(readback.emf_documents(getattr(environment, "output", "")))
        shut_down = invoked = 0.0
        for point in emf_points(documents, self._namespace):
            names = dict(point.dimensions)
            if _lean_provisioned(point, self._function, since) and point.value < 0:
                shut_down -= point.value  # EnvironmentDelta's -1: a shutdown (lean profile)
                continue
            if (
                point.metric != schema.ENVIRONMENT_SHUTDOWN
                or point.timestamp < since
                or names.get(schema.FUNCTION_NAME) != self._function
                or names.get(schema.INIT_TYPE) != schema.INIT_PROVISIONED
            ):
                continue
            if set(names) == {schema.FUNCTION_NAME, schema.INIT_TYPE}:
                shut_down += point.value
            elif set(names) == set(schema.FIRST_INVOKE_SET) and names[schema.FIRST_INVOKE] in (
                schema.FIRST_INVOKE_PROMPT,
                schema.FIRST_INVOKE_DELAYED,
            ):
                invoked += point.value
        from_records = ever_invoked_in_records(
            fleet_records(self._fleet)(since, since), self._function, since
        )
        if from_records is not None:
            invoked = from_records
        return Usage(shut_down=round(shut_down), invoked=round(invoked))


class EmfInitCounter:
    """``InitCounter`` over the EMF lines the fleet's environments wrote (the ``emf`` sink)."""

    def __init__(self, fleet: Fleet, function_name: str, namespace: str) -> None:
        self._fleet = fleet
        self._function = function_name
        self._namespace = namespace

    @property
    def resolution_seconds(self) -> float:
        """Every line carries its own millisecond timestamp: no period to align on."""
        return 0.0

    def count(self, since: datetime) -> int:
        """Provisioned ``EnvironmentInit`` values stamped at or after ``since``."""
        documents: list[dict[str, Any]] = []
        for environment in self._fleet.environments():
            documents.extend(readback.emf_documents(getattr(environment, "output", "")))
        wanted = frozenset(
            {(schema.FUNCTION_NAME, self._function), (schema.INIT_TYPE, schema.INIT_PROVISIONED)}
        )
        points = emf_points(documents, self._namespace)
        full = sum(
            point.value
            for point in points
            if point.metric == schema.ENVIRONMENT_INIT
            and point.dimensions == wanted
            and point.timestamp >= since
        )
        # The lean profile's EnvironmentDelta: +1 at each init.
        lean = sum(
            1
            for point in points
            if _lean_provisioned(point, self._function, since) and point.value > 0
        )
        return round(full + lean)


def _lean_provisioned(point: EmfPoint, function_name: str, since: datetime) -> bool:
    """An EnvironmentDelta value of ``function_name``'s provisioned concurrency since ``since``."""
    wanted = frozenset(
        {(schema.FUNCTION_NAME, function_name), (schema.INIT_TYPE, schema.INIT_PROVISIONED)}
    )
    return (
        point.metric == schema.ENVIRONMENT_DELTA
        and point.dimensions == wanted
        and point.timestamp >= since
    )
