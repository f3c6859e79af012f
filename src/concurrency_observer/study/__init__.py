"""The provisioned-concurrency study: the loop, the waits, the saved state and the statistics.

Pure engine, no AWS: it drives a ``ProvisioningTarget`` (set, wait for READY, remove, restore the
provisioned concurrency of one alias) and reads an ``InitCounter`` (environments initialized with
InitType ``provisioned-concurrency`` since a start time), both in ``ports``. ``aws/experiment.py``
implements both over boto3; the local fleet implements them over simulated environments. Time
comes from an injected ``Clock`` (``clock``) so tests and simulations run instantly.

- ``loop.Study``: the repeats, level by level, and the restore at the end;
- ``waits``: until READY, until the count settles, until the shutdowns are seen;
- ``plan``: what to measure; ``state``: what was measured, saved after every repeat;
- ``signals``: SIGTERM and Ctrl-C during a run and during the restore;
- ``summary``: one row per level; ``errors.StudyError``: why a study cannot go on.
"""
