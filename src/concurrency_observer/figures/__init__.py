"""The report's figures: pure functions over fetched series and environment records, no AWS.

Imported by the AWS side (``aws.report``), the local harness (``local``) and the renderers
(``reporting``); imports nothing of theirs, only ``schema``, ``environment_record`` and ``pricing``.
"""
