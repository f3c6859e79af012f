"""The extension that runs inside Lambda: standard library only, imported lazily, cheap to start.

Modules: ``main`` (entry point), ``event_loop`` (register, then ``/event/next`` until SHUTDOWN),
``lifecycle`` (the environment's counts and its init and shutdown records, shut down once),
``init_delivery`` (the init record's background delivery), ``interruptions`` (SIGTERM),
``config``, ``events``, ``extensions_api`` (Extensions API client), ``http11`` (a minimal
HTTP/1.1 client on ``socket``), ``records`` (metric records as data), ``sinks`` (``emf``,
``cloudwatch``), ``sigv4`` (request signing), ``frozen`` (value classes), ``log``.
This package imports nothing at load: each module imports what it needs.
"""
