"""A CDK app whose stack's every function is observed: two functions, one Aspect, one layer.

Build the layer first (``concurrency-observer layer build`` at the repository root), then
``cdk deploy`` here. The zip's path can be given as context: ``cdk synth -c layerZip=PATH``.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from observer_aspect import ConcurrencyObserver

HERE = Path(__file__).resolve().parent
DEFAULT_ZIP = HERE.parents[1] / "dist" / "concurrency-observer-layer.zip"


class ObservedStack(cdk.Stack):
    """Your functions, as they are, plus the layer and the Aspect (the last lines)."""

    def __init__(self, scope: Construct, construct_id: str, layer_zip: str, metrics: str) -> None:
        super().__init__(scope, construct_id)
        lambda_.Function(
            self,
            "Orders",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler="index.handler",
            code=lambda_.Code.from_inline("def handler(event, context):\n    return 'ok'\n"),
        )
        # No Python 3.10+ here: the layer's bash fallback records init and shutdown (EMF lines).
        lambda_.Function(
            self,
            "Notify",
            runtime=lambda_.Runtime.NODEJS_22_X,
            architecture=lambda_.Architecture.ARM_64,
            handler="index.handler",
            code=lambda_.Code.from_inline("exports.handler = async () => ({ ok: true });"),
        )

        layer = lambda_.LayerVersion(
            self,
            "ObserverLayer",
            layer_version_name="concurrency-observer",
            code=lambda_.Code.from_asset(layer_zip),
            # No compatible_runtimes: CDK would refuse every function whose runtime is not
            # listed (nodejs20.x, say), while the layer runs on all of them (docs/aws.md).
            compatible_architectures=[lambda_.Architecture.X86_64, lambda_.Architecture.ARM_64],
            license="MIT-0",
            description="Lambda extension counting execution environments",
            # Published function versions keep pointing at old layer versions: keep them.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        cdk.Aspects.of(self).add(ConcurrencyObserver(layer, metrics=metrics))


app = cdk.App()
ObservedStack(
    app,
    "ObservedStack",
    layer_zip=str(app.node.try_get_context("layerZip") or DEFAULT_ZIP),
    metrics=str(app.node.try_get_context("metrics") or "lean"),
)
app.synth()
