"""The study's real parts on this machine, for ``experiment --local``: layer, CloudWatch, fleet.

``fleet_study(config, ...)`` builds the layer, starts an embedded CloudWatch (a moto server on
127.0.0.1, for the cloudwatch sink; or ``endpoint_url``) and a ``Fleet`` of real environments
under the RIE, and yields the study's ``ProvisioningTarget`` and counters over them
(``provisioning.py``); leaving it stops the fleet and the server. Kept apart from
``provisioning.py``, whose ports tests drive over a fake fleet: this is the wiring of the real
parts, which changes with the harness (as ``simulation.py`` does), not with how a level is counted.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrency_observer.local.fleet import FleetConfig
    from concurrency_observer.local.provisioning import FleetProvisioning
    from concurrency_observer.study.ports import InitCounter, UsageCounter


@dataclass(frozen=True)
class FleetStudy:
    """What a study runs against on the local fleet, and where its count is read from."""

    target: FleetProvisioning
    counter: InitCounter
    usage: UsageCounter
    source: str  # said to the user: the EMF lines, the embedded CloudWatch, or its URL


@contextmanager
def fleet_study(
    config: FleetConfig,
    *,
    function_name: str,
    sink: str,
    endpoint_url: str | None,
    namespace: str,
) -> Iterator[FleetStudy]:
    """Build the layer, start moto (cloudwatch sink) and the fleet; stop it all on leaving."""
    from concurrency_observer.layer import build_layer, extract_layer  # noqa: PLC0415
    from concurrency_observer.local import rie  # noqa: PLC0415
    from concurrency_observer.local.cloudwatch import (  # noqa: PLC0415
        cloudwatch_client,
        cloudwatch_endpoint,
    )
    from concurrency_observer.local.environment_settings import (  # noqa: PLC0415
        EnvironmentSettings,
        observer_env,
    )
    from concurrency_observer.local.fleet import Fleet, lambda_environment_factory  # noqa: PLC0415
    from concurrency_observer.local.provisioning import (  # noqa: PLC0415
        EmfInitCounter,
        EmfUsageCounter,
        FleetProvisioning,
        cloudwatch_counter,
        cloudwatch_usage_counter,
        fleet_records,
    )

    rie.check_host()
    rie_path = rie.rie_binary()
    with tempfile.TemporaryDirectory(prefix="concurrency-observer-experiment-") as scratch:
        built = build_layer(Path(scratch) / "layer.zip")
        layer_dir = extract_layer(built.path, Path(scratch) / "opt")
        endpoint: AbstractContextManager[str | None] = (
            cloudwatch_endpoint(endpoint_url) if sink == "cloudwatch" else nullcontext(None)
        )
        with endpoint as url:
            settings = EnvironmentSettings(
                function_name=function_name,
                cloudwatch_endpoint=url,
                # The default (lean) profile, as on AWS: the counters read EnvironmentDelta
                # and the records (the full profile's metrics too, when a function has them).
                extra_env=observer_env(sink=sink, namespace=namespace),
            )
            factory = lambda_environment_factory(layer_dir, settings, rie_path=rie_path)
            with Fleet(factory, config) as fleet:
                target = FleetProvisioning(fleet, function_name)
                counter: InitCounter = (
                    cloudwatch_counter(cloudwatch_client(url), function_name, namespace)
                    if url is not None
                    else EmfInitCounter(fleet, function_name, namespace)
                )
                usage: UsageCounter = (
                    cloudwatch_usage_counter(
                        cloudwatch_client(url), function_name, namespace, fleet_records(fleet)
                    )
                    if url is not None
                    else EmfUsageCounter(fleet, function_name, namespace)
                )
                source = "the EMF lines"
                if url is not None:
                    source = url if endpoint_url else "the embedded CloudWatch (moto)"
                yield FleetStudy(target, counter, usage, source)
