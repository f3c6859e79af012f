# An example root: two functions (Python and Node.js) observed through the module. Build the layer
# first (`concurrency-observer layer build` at the repository root), then terraform init/apply.
#
# What it costs (the project's pricing.py list prices): lean metrics (the default): 1 custom
# metric per function and init type, $0.30 a month each at list price ($0.60 with provisioned
# concurrency beside on-demand), plus log ingestion of the environment records: about 500 bytes
# per environment, $0.25 per million environments; full metrics: 22–31 custom metrics per
# function, $6.60–$9.30 a month at list price, plus the same log ingestion.

provider "aws" {
  region = var.region
}

module "observer" {
  source     = "./modules/concurrency-observer"
  layer_zip  = "${path.module}/../../dist/concurrency-observer-layer.zip"
  role_names = [aws_iam_role.function.name]
  metrics    = var.metrics
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  name_prefix        = "observed-function-"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

resource "aws_iam_role_policy_attachment" "logs" {
  role       = aws_iam_role.function.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

data "archive_file" "python" {
  type        = "zip"
  source_file = "${path.module}/../sam/function/app.py"
  output_path = "${path.module}/build/python.zip"
}

resource "aws_lambda_function" "python" {
  function_name    = "observed-python"
  role             = aws_iam_role.function.arn
  runtime          = "python3.13"
  handler          = "app.handler"
  filename         = data.archive_file.python.output_path
  source_code_hash = data.archive_file.python.output_base64sha256
  layers           = [module.observer.layer_arn]
  environment {
    variables = merge(module.observer.environment, { LOG_LEVEL = "INFO" })
  }
}

data "archive_file" "node" {
  type                    = "zip"
  source_content          = "exports.handler = async () => ({ ok: true });"
  source_content_filename = "index.js"
  output_path             = "${path.module}/build/node.zip"
}

# No Python 3.10+ here: the layer's bash fallback records init and shutdown (EMF lines).
resource "aws_lambda_function" "node" {
  function_name    = "observed-node"
  role             = aws_iam_role.function.arn
  runtime          = "nodejs22.x"
  handler          = "index.handler"
  filename         = data.archive_file.node.output_path
  source_code_hash = data.archive_file.node.output_base64sha256
  layers           = [module.observer.layer_arn]
  environment {
    variables = module.observer.environment
  }
}

output "functions" {
  description = "Pass each to `concurrency-observer report --function`."
  value       = [aws_lambda_function.python.function_name, aws_lambda_function.node.function_name]
}
