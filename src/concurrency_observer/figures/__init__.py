"""The report's figures: pure functions over fetched series and environment records, no AWS.

Imported by the AWS side (``aws.report``), the local harness (``local``) and the renderers
(``reporting``); imports nothing of theirs, only the modules at the top (``schema``,
``environment_record``, ``errors``, ``pricing``).
"""
