# concurrency-observer as a Terraform module: it publishes the layer version from the built zip,
# grants PutMetricData (in one namespace only) to the functions' roles, and hands the functions
# the layer ARN and the settings to use (outputs.tf).
#
# What it costs (the project's pricing.py list prices): lean metrics (the default): 1 custom
# metric per function and init type, $0.30 a month each at list price ($0.60 with provisioned
# concurrency beside on-demand), plus log ingestion of the environment records: about 500 bytes
# per environment, $0.25 per million environments; full metrics: 22–31 custom metrics per
# function, $6.60–$9.30 a month at list price, plus the same log ingestion.

resource "aws_lambda_layer_version" "observer" {
  layer_name               = var.layer_name
  description              = "Lambda extension counting execution environments"
  filename                 = var.layer_zip
  source_code_hash         = filebase64sha256(var.layer_zip)
  compatible_runtimes      = var.compatible_runtimes
  compatible_architectures = ["x86_64", "arm64"]
  license_info             = "MIT-0"
  # Published function versions keep pointing at old layer versions: keep them.
  skip_destroy = true
}

resource "aws_iam_policy" "put_metrics" {
  name_prefix = "concurrency-observer-"
  description = "The one permission the observer's extension needs (the cloudwatch sink)"
  # PutMetricData has no resource ARN, so the namespace condition keeps it least-privilege.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "PutConcurrencyObserverMetrics"
      Effect    = "Allow"
      Action    = "cloudwatch:PutMetricData"
      Resource  = "*"
      Condition = { StringEquals = { "cloudwatch:namespace" = var.namespace } }
    }]
  })
}

resource "aws_iam_role_policy_attachment" "put_metrics" {
  for_each   = toset(var.role_names)
  role       = each.value
  policy_arn = aws_iam_policy.put_metrics.arn
}
