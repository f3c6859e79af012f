"""An Aspect that puts concurrency-observer on every Lambda ``Function`` of a scope.

Applied to a stack (or the whole app), it gives each ``aws_lambda.Function``, including ones added
later and ones built by other constructs: the observer's layer, its settings as environment
variables, and the one permission the extension needs, ``cloudwatch:PutMetricData`` limited to
the observer's namespace (PutMetricData has no resource ARN, so the condition is what keeps it
least-privilege).

What it costs (the project's pricing.py list prices): lean metrics (the default): 1 custom metric
per function and init type, $0.30 a month each at list price ($0.60 with provisioned concurrency
beside on-demand), plus log ingestion of the environment records: about 500 bytes per
environment, $0.25 per million environments; full metrics: 22–31 custom metrics per function,
$6.60–$9.30 a month at list price, plus the same log ingestion.
"""

from __future__ import annotations

import jsii
from aws_cdk import IAspect
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import IConstruct

DEFAULT_NAMESPACE = "ConcurrencyObserver"


@jsii.implements(IAspect)
class ConcurrencyObserver:
    """``Aspects.of(stack).add(ConcurrencyObserver(layer))``: observe every function in it."""

    def __init__(
        self,
        layer: lambda_.ILayerVersion,
        *,
        sink: str = "cloudwatch",
        metrics: str = "lean",
        namespace: str = DEFAULT_NAMESPACE,
    ) -> None:
        if sink not in ("cloudwatch", "emf"):
            raise ValueError(f"sink must be cloudwatch or emf, not {sink!r}")
        if metrics not in ("lean", "full"):
            raise ValueError(f"metrics must be lean or full, not {metrics!r}")
        self.layer = layer
        self.settings = {
            "CONCURRENCY_OBSERVER_SINK": sink,
            "CONCURRENCY_OBSERVER_METRICS": metrics,
            "CONCURRENCY_OBSERVER_NAMESPACE": namespace,
        }
        self.namespace = namespace

    def visit(self, node: IConstruct) -> None:
        """Called by CDK for every construct in the scope; acts on Lambda functions only."""
        if not isinstance(node, lambda_.Function):
            return
        node.add_layers(self.layer)
        for name, value in self.settings.items():
            node.add_environment(name, value)
        node.add_to_role_policy(
            iam.PolicyStatement(
                sid="PutConcurrencyObserverMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": self.namespace}},
            )
        )
