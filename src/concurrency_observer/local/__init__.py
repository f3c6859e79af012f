"""Real Lambda execution environments on this machine, and an embedded CloudWatch.

Library code for ``simulate``, the fleet, the benchmarks and the fault-injection tests:

- ``rie.rie_binary()``: the AWS Runtime Interface Emulator, taken from the pinned ``aws-sam-cli``
  wheel and cached; ``rie.check_host()`` says in one line why this machine cannot run it.
- ``cloudwatch.LocalCloudWatch``: a moto server on 127.0.0.1 (context manager), and
  ``cloudwatch.cloudwatch_client(endpoint_url)`` for it or any other endpoint.
- ``environment.LambdaEnvironment``: ONE environment (the RIE in private mount and PID namespaces,
  the layer on ``/opt``, ``awslambdaric`` running ``function/handler.py``): ``start``, ``invoke``,
  ``shutdown``, captured ``output``.
- ``readback``: the metrics an environment sent, read back from CloudWatch or from EMF lines.
- ``ports.free_port()``: loopback ports that no two environments of this process share.

Nothing here is imported by the extension; moto and boto3 are imported only where used.
"""
