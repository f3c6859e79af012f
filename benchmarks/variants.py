"""The environments compared side by side: each a layer directory for ``/opt`` and its settings.

1. ``none``: an empty ``extensions/``, the baseline every "added" figure is paired with;
2. ``floor``: ``benchmarks/floor_layer``, a ``socket``+``json`` extension, the yardstick;
3. ``emf``: ours, writing EMF lines to stdout (every variant of ours runs the default metric
   profile, lean, unless named ``-full``);
3b. ``emf-full``: the same with ``CONCURRENCY_OBSERVER_METRICS=full`` (the six metrics);
4. ``cloudwatch``: ours, PutMetricData to the local moto server (http, 127.0.0.1);
5. ``cloudwatch-https``: the same over TLS to a moto server with a self-signed certificate, so
   the sink imports ``ssl`` and shakes hands as it does on AWS;
6. ``shutdown-only``: ours with the ``emf`` sink, registered for SHUTDOWN alone, so the only
   difference from ``emf`` is the INVOKE subscription (the Python extension, held to it with
   ``CONCURRENCY_OBSERVER_ENGINE=python``: the launcher would pick the fallback for this setting);
7. ``fallback``: the same settings through the launcher's own choice, the layer's bash fallback:
   what runs on every runtime without python3 3.10+, and for SHUTDOWN only + ``emf``;
8. ``telemetry``: ``emf`` subscribed to the Telemetry API, its listener fed by the harness's
   emulator (the RIE's default mode only stubs the API) with each init's and each invoke's
   platform events, as on Lambda. ``emf`` and the others run with the Telemetry API off
   (``CONCURRENCY_OBSERVER_TELEMETRY=off``): today's extension, the yardstick of its cost.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.results import (
    CLOUDWATCH,
    CLOUDWATCH_HTTPS,
    EMF,
    EMF_FULL,
    FALLBACK,
    FLOOR,
    NONE,
    SHUTDOWN_ONLY,
    TELEMETRY,
)
from concurrency_observer.layer import build_layer, extract_layer

FLOOR_LAYER = Path(__file__).resolve().parent / "floor_layer"
ALL_VARIANTS = (
    NONE,
    FLOOR,
    EMF,
    EMF_FULL,
    CLOUDWATCH,
    CLOUDWATCH_HTTPS,
    SHUTDOWN_ONLY,
    FALLBACK,
    TELEMETRY,
)
# What our layer logs when its bash engine runs; a variant checks it ran the engine it names.
FALLBACK_MARK = "bash engine"


@dataclass(frozen=True)
class Variant:
    """One thing to compare: a layer for ``/opt`` and the environment variables it runs with."""

    name: str
    layer: Path
    settings: Mapping[str, str] = field(default_factory=dict)
    sink: str | None = None  # which sink's records to count at shutdown (None: no records)
    subscribes_invoke: bool = True
    engine: str | None = None  # ours: "python" or "bash" (the fallback); None: not our layer
    metrics: str = "lean"  # ours: the metric profile (CONCURRENCY_OBSERVER_METRICS)
    emulate_telemetry: bool = False  # the harness serves the Telemetry API (the RIE stubs it)

    @property
    def has_extension(self) -> bool:
        """Whether the layer starts an extension (every variant but ``none``)."""
        return self.name != NONE


@dataclass(frozen=True)
class Layers:
    """The three layer directories the variants mount: no extension, the floor, ours."""

    none: Path
    floor: Path
    ours: Path


def prepare_layers(workdir: Path) -> Layers:
    """Lay out the three layers under ``workdir``; ours from the package's own layer zip."""
    none = workdir / "layer-none"
    (none / "extensions").mkdir(parents=True)
    floor = workdir / "layer-floor"
    shutil.copytree(FLOOR_LAYER, floor)
    for launcher in (floor / "extensions").iterdir():
        launcher.chmod(0o755)  # a checkout may have lost the bit; Lambda needs it
    built = build_layer(workdir / "concurrency-observer-layer.zip")
    ours = extract_layer(built.path, workdir / "layer-ours")
    return Layers(none=none, floor=floor, ours=ours)


@dataclass(frozen=True)
class Endpoint:
    """A local CloudWatch for a ``cloudwatch`` variant: its URL and, for https, its certificate."""

    url: str
    cert: Path | None = None


def make_variants(
    layers: Layers,
    endpoints: Mapping[str, Endpoint],
    names: tuple[str, ...] = ALL_VARIANTS,
) -> list[Variant]:
    """The variants named in ``names``; a cloudwatch variant only with its endpoint."""
    emf = {"CONCURRENCY_OBSERVER_SINK": "emf", "CONCURRENCY_OBSERVER_TELEMETRY": "off"}
    shutdown_only = {**emf, "CONCURRENCY_OBSERVER_EVENTS": "SHUTDOWN"}
    made = {
        NONE: Variant(NONE, layers.none),
        FLOOR: Variant(FLOOR, layers.floor),
        EMF: Variant(EMF, layers.ours, emf, sink="emf", engine="python"),
        EMF_FULL: Variant(
            EMF_FULL,
            layers.ours,
            {**emf, "CONCURRENCY_OBSERVER_METRICS": "full"},
            sink="emf",
            engine="python",
            metrics="full",
        ),
        SHUTDOWN_ONLY: Variant(
            SHUTDOWN_ONLY,
            layers.ours,
            {**shutdown_only, "CONCURRENCY_OBSERVER_ENGINE": "python"},
            sink="emf",
            subscribes_invoke=False,
            engine="python",
        ),
        FALLBACK: Variant(
            FALLBACK, layers.ours, shutdown_only, sink="emf", subscribes_invoke=False, engine="bash"
        ),
        TELEMETRY: Variant(
            TELEMETRY,
            layers.ours,
            {**emf, "CONCURRENCY_OBSERVER_TELEMETRY": "on"},
            sink="emf",
            engine="python",
            emulate_telemetry=True,
        ),
    }
    for name, endpoint in endpoints.items():
        # The harness sets the region and dummy credentials; the certificate is trusted through
        # OpenSSL's own SSL_CERT_FILE, so the extension's code runs as on AWS.
        settings = {
            "CONCURRENCY_OBSERVER_SINK": "cloudwatch",
            "CONCURRENCY_OBSERVER_TELEMETRY": "off",
            "AWS_ENDPOINT_URL_CLOUDWATCH": endpoint.url,
        }
        if endpoint.cert is not None:
            settings["SSL_CERT_FILE"] = str(endpoint.cert)
        made[name] = Variant(name, layers.ours, settings, sink="cloudwatch", engine="python")
    return [made[name] for name in names if name in made]
