"""The AWS side of the CLI (boto3): publish, report, dashboard, experiment. Never shipped in the layer."""
