"""Rolling the layer out: publish, attach, attach-all and detach (boto3, CLI side only).

Planning is pure (a function's configuration in, a step out); ``fleet_update`` applies the steps,
paced. Uses ``aws.session`` for clients and errors; imports nothing of ``local`` or ``cli``.
"""
