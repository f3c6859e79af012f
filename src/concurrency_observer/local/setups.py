"""The setups ``simulate`` can run, by name: light enough for ``--help`` to import.

- mode ``standard``: Lambda's usual environments, one invocation at a time each;
  ``managed-instances``: Lambda Managed Instances (the RIE's LMI mode), several at once each.
- runtime ``python``: the Python runtime and the Python extension; ``bash``: a custom runtime in
  bash with no python3 in the environment, where the layer's bash fallback records.
"""

from __future__ import annotations

from typing import Final

MODE_STANDARD: Final = "standard"
MODE_MANAGED_INSTANCES: Final = "managed-instances"
MODES: Final = (MODE_STANDARD, MODE_MANAGED_INSTANCES)
RUNTIME_PYTHON: Final = "python"
RUNTIME_BASH: Final = "bash"
RUNTIMES: Final = (RUNTIME_PYTHON, RUNTIME_BASH)
SINK_CLOUDWATCH: Final = "cloudwatch"
SINK_EMF: Final = "emf"  # the only one the bash fallback writes
DEFAULT_MAX_CONCURRENCY: Final = 4  # invocations at once per Managed Instances environment
