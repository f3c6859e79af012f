variable "layer_zip" {
  description = "Path of the layer zip that `concurrency-observer layer build` writes."
  type        = string
}

variable "layer_name" {
  description = "Name of the layer."
  type        = string
  default     = "concurrency-observer"
}

variable "compatible_runtimes" {
  description = "What `layer publish` lists (metadata only: the layer runs on every runtime)."
  type        = list(string)
  default = [
    "python3.10", "python3.11", "python3.12", "python3.13", "python3.14", "python3.15",
    "nodejs22.x", "nodejs24.x", "nodejs26.x", "java21", "java25", "dotnet10", "ruby3.4",
    "ruby4.0", "provided.al2023",
  ]
}

variable "role_names" {
  description = "IAM roles of the observed functions: each gets the PutMetricData policy."
  type        = list(string)
}

variable "sink" {
  description = "CONCURRENCY_OBSERVER_SINK: cloudwatch (PutMetricData) or emf (log lines)."
  type        = string
  default     = "cloudwatch"
  validation {
    condition     = contains(["cloudwatch", "emf"], var.sink)
    error_message = "The sink is cloudwatch or emf."
  }
}

variable "metrics" {
  description = "CONCURRENCY_OBSERVER_METRICS: lean (1 custom metric per function and init type) or full (22–31 per function)."
  type        = string
  default     = "lean"
  validation {
    condition     = contains(["lean", "full"], var.metrics)
    error_message = "The metric profile is lean or full."
  }
}

variable "namespace" {
  description = "CONCURRENCY_OBSERVER_NAMESPACE, and the IAM condition's namespace."
  type        = string
  default     = "ConcurrencyObserver"
}
