"""The function the local environments run: ``handler.handler``, loaded by ``awslambdaric``.

This directory is the environment's ``LAMBDA_TASK_ROOT`` and working directory, so the runtime
imports ``handler`` as a top-level module, as Lambda does from ``/var/task``.
"""
