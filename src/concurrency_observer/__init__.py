"""concurrency-observer: count the Lambda execution environments a function really gets.

This package is also shipped, in part, inside the Lambda layer (``schema`` and ``extension``), so
this module imports nothing.
"""

__version__ = "0.1.0"
