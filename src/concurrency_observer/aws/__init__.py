"""The AWS side of the CLI (boto3): publish, report, dashboard, experiment. Not in the layer."""
