output "layer_arn" {
  description = "The layer version to put in each function's `layers`."
  value       = aws_lambda_layer_version.observer.arn
}

output "environment" {
  description = "The settings to merge into each function's environment variables."
  value = {
    CONCURRENCY_OBSERVER_SINK      = var.sink
    CONCURRENCY_OBSERVER_METRICS   = var.metrics
    CONCURRENCY_OBSERVER_NAMESPACE = var.namespace
  }
}

output "policy_arn" {
  description = "The PutMetricData policy, for roles not listed in role_names."
  value       = aws_iam_policy.put_metrics.arn
}
